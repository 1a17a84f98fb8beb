/*
 * ops_reduce.c — sum and max over chosen axes (keepdims or not), sum_to (the
 * adjoint of broadcasting), and mean as a composition.
 *
 * One kernel serves all: the output is indexed with the input's rank and a
 * stride of 0 on reduced dims; the input is walked row by row (its last dim
 * is the tight loop) with an odometer over the outer dims.
 */
#include "sg_internal.h"

#include <math.h>

void sg_reduce_kernel(const sg_tensor *x, sg_tensor *y, uint32_t mask, int kind)
{
    float init = kind == 0 ? 0.f : -INFINITY;
    for (size_t i = 0; i < y->size; i++)
        y->data[i] = init;
    if (x->size == 0)
        return;
    int n = x->ndim;
    if (n == 0) {
        y->data[0] = x->data[0];
        return;
    }
    size_t st[SG_MAX_DIMS]; /* output strides in the input's rank */
    size_t r = 1;
    for (int i = n - 1; i >= 0; i--) {
        st[i] = (mask & (1u << i)) ? 0 : r;
        if (!(mask & (1u << i)))
            r *= (size_t)x->shape[i];
    }
    size_t inner = (size_t)x->shape[n - 1], outer = x->size / inner;
    bool inner_reduced = st[n - 1] == 0;
    int idx[SG_MAX_DIMS] = {0};
    size_t off = 0;
    const float *restrict src = x->data;
    float *restrict dst = y->data;
    for (size_t o = 0; o < outer; o++, src += inner) {
        if (inner_reduced) {
            float acc = dst[off];
            if (kind == 0)
                for (size_t i = 0; i < inner; i++) acc += src[i];
            else
                for (size_t i = 0; i < inner; i++) acc = src[i] > acc ? src[i] : acc;
            dst[off] = acc;
        } else if (kind == 0) {
            for (size_t i = 0; i < inner; i++) dst[off + i] += src[i];
        } else {
            for (size_t i = 0; i < inner; i++)
                dst[off + i] = src[i] > dst[off + i] ? src[i] : dst[off + i];
        }
        for (int d = n - 2; d >= 0; d--) {
            off += st[d];
            if (++idx[d] < x->shape[d])
                break;
            off -= st[d] * (size_t)x->shape[d];
            idx[d] = 0;
        }
    }
}

static sg_tensor *reduce(enum sg_op op, sg_tensor *x, const int *axes, int n_axes, bool keep)
{
    const char *name = sg_op_table[op].name;
    if (!x) {
        if (!sg_has_error())
            sg_set_error("%s: NULL input", name);
        return NULL;
    }
    uint32_t mask;
    if (sg_axes_mask(name, x->ndim, axes, n_axes, &mask) < 0)
        return NULL;
    if (op == SG_OP_MAX && x->size == 0) {
        char b[96];
        sg_set_error("max: empty input %s has no maximum", sg_shape_str(x, b, sizeof b));
        return NULL;
    }
    int shape[SG_MAX_DIMS];
    int nd = sg_reduced_shape(x->ndim, x->shape, mask, keep, shape);
    sg_tensor *y = sg_alloc(name, nd, shape);
    if (!y)
        return NULL;
    sg_reduce_kernel(x, y, mask, op == SG_OP_SUM ? 0 : 1);
    y->attr.red.mask = mask;
    y->attr.red.keep = keep;
    return sg_finish(y, op, &x, 1);
}

sg_tensor *sg_sum(sg_tensor *x, const int *axes, int n_axes, bool keepdims)
{
    return reduce(SG_OP_SUM, x, axes, n_axes, keepdims);
}

sg_tensor *sg_max(sg_tensor *x, const int *axes, int n_axes, bool keepdims)
{
    return reduce(SG_OP_MAX, x, axes, n_axes, keepdims);
}

sg_tensor *sg_mean(sg_tensor *x, const int *axes, int n_axes, bool keepdims)
{
    sg_tensor *s = sg_sum(x, axes, n_axes, keepdims);
    if (!s)
        return NULL;
    size_t count = s->size ? x->size / s->size : 0;
    return sg_mul_scalar(s, count ? 1.f / (float)count : NAN);
}

sg_tensor *sg_sum_all(sg_tensor *x) { return sg_sum(x, NULL, 0, false); }
sg_tensor *sg_mean_all(sg_tensor *x) { return sg_mean(x, NULL, 0, false); }

sg_tensor *sg_sum_to(sg_tensor *x, int ndim, const int *shape)
{
    if (!x) {
        if (!sg_has_error())
            sg_set_error("sum_to: NULL input");
        return NULL;
    }
    char bx[96], bs[96];
    if (ndim < 0 || ndim > x->ndim || (ndim && !shape)) {
        sg_set_error("sum_to: cannot sum %s down to %d dims", sg_shape_str(x, bx, sizeof bx), ndim);
        return NULL;
    }
    uint32_t mask = 0;
    int lead = x->ndim - ndim;
    for (int i = 0; i < x->ndim; i++) {
        if (i < lead) {
            mask |= 1u << i;
            continue;
        }
        int t = shape[i - lead];
        if (t == x->shape[i])
            continue;
        if (t != 1) {
            sg_set_error("sum_to: cannot sum %s down to %s", sg_shape_str(x, bx, sizeof bx),
                         sg_fmt_shape(ndim, shape, bs, sizeof bs));
            return NULL;
        }
        mask |= 1u << i;
    }
    sg_tensor *y = sg_alloc("sum_to", ndim, shape);
    if (!y)
        return NULL;
    /* reduce with keepdims over x's rank, then the leading dims vanish */
    int kshape[SG_MAX_DIMS];
    sg_reduced_shape(x->ndim, x->shape, mask, true, kshape);
    sg_tensor tmp = *y; /* same data, x's rank */
    tmp.ndim = x->ndim;
    memcpy(tmp.shape, kshape, sizeof kshape);
    sg_reduce_kernel(x, &tmp, mask, 0);
    return sg_finish(y, SG_OP_SUM_TO, &x, 1);
}

/* ---- local derivatives ---- */

/* gy reshaped to the keepdims shape of a reduction of x */
static sg_tensor *keepdims_view(sg_tensor *g, const sg_tensor *y, const sg_tensor *x)
{
    if (y->attr.red.keep)
        return g;
    int shape[SG_MAX_DIMS];
    int nd = sg_reduced_shape(x->ndim, x->shape, y->attr.red.mask, true, shape);
    return sg_reshape(g, nd, shape);
}

void sg_bw_sum(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    sg_tensor *x = y->in[0];
    gx[0] = sg_broadcast_to(keepdims_view(gy, y, x), x->ndim, x->shape);
}

void sg_bw_max(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    sg_tensor *x = y->in[0];
    /* the maximum's gradient is shared evenly among tied elements */
    sg_tensor *mask = sg_eq(x, keepdims_view(y, y, x));
    int axes[SG_MAX_DIMS], n = 0;
    for (int i = 0; i < x->ndim; i++)
        if (y->attr.red.mask & (1u << i))
            axes[n++] = i;
    sg_tensor *count = sg_sum(mask, axes, n, true);
    gx[0] = sg_mul(mask, sg_div(keepdims_view(gy, y, x), count));
}

void sg_bw_sum_to(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    sg_tensor *x = y->in[0];
    gx[0] = sg_broadcast_to(gy, x->ndim, x->shape);
}
