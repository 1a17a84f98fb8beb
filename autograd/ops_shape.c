/*
 * ops_shape.c — reshape (a view), permute/transpose, broadcast_to, slice and
 * concat along any axis, and their local derivatives (each the adjoint
 * shape op: reshape back, inverse permutation, sum_to, concat with zeros,
 * slices).
 */
#include "sg_internal.h"

#define NULL_CHECK(name, x)                                  \
    do {                                                     \
        if (!(x)) {                                          \
            if (!sg_has_error())                             \
                sg_set_error("%s: NULL input", name);        \
            return NULL;                                     \
        }                                                    \
    } while (0)

sg_tensor *sg_reshape(sg_tensor *x, int ndim, const int *shape)
{
    NULL_CHECK("reshape", x);
    char bx[96], bs[96];
    if (ndim < 0 || ndim > SG_MAX_DIMS || (ndim && !shape)) {
        sg_set_error("reshape: bad target rank %d for %s", ndim, sg_shape_str(x, bx, sizeof bx));
        return NULL;
    }
    int out[SG_MAX_DIMS];
    int infer = -1;
    size_t known = 1;
    for (int i = 0; i < ndim; i++) {
        out[i] = shape[i];
        if (shape[i] == -1 && infer < 0) {
            infer = i;
        } else if (shape[i] < 0) {
            sg_set_error("reshape: bad dim %d in %s", shape[i], sg_fmt_shape(ndim, shape, bs, sizeof bs));
            return NULL;
        } else {
            known *= (size_t)shape[i];
        }
    }
    if (infer >= 0) {
        if (known == 0 || x->size % known) {
            sg_set_error("reshape: cannot reshape %s into %s", sg_shape_str(x, bx, sizeof bx),
                         sg_fmt_shape(ndim, shape, bs, sizeof bs));
            return NULL;
        }
        out[infer] = (int)(x->size / known);
        known *= (size_t)out[infer];
    }
    if (known != x->size) {
        sg_set_error("reshape: cannot reshape %s (%zu elements) into %s", sg_shape_str(x, bx, sizeof bx),
                     x->size, sg_fmt_shape(ndim, shape, bs, sizeof bs));
        return NULL;
    }
    sg_tensor *y = sg_alloc_view("reshape", x, ndim, out);
    return y ? sg_record(y, SG_OP_RESHAPE, &x, 1) : NULL;
}

sg_tensor *sg_flatten(sg_tensor *x)
{
    NULL_CHECK("flatten", x);
    if (x->ndim < 1) {
        sg_set_error("flatten: needs at least 1 dim, got a scalar");
        return NULL;
    }
    int shape[2] = {x->shape[0], x->shape[0] ? (int)(x->size / (size_t)x->shape[0]) : 0};
    return sg_reshape(x, 2, shape);
}

sg_tensor *sg_permute(sg_tensor *x, const int *perm)
{
    NULL_CHECK("permute", x);
    int n = x->ndim;
    char bx[96];
    if (!perm && n) {
        sg_set_error("permute: NULL permutation for %s", sg_shape_str(x, bx, sizeof bx));
        return NULL;
    }
    uint32_t seen = 0;
    int shape[SG_MAX_DIMS];
    for (int i = 0; i < n; i++) {
        if (perm[i] < 0 || perm[i] >= n || (seen & (1u << perm[i]))) {
            sg_set_error("permute: %d is not a valid permutation entry for %s", perm[i],
                         sg_shape_str(x, bx, sizeof bx));
            return NULL;
        }
        seen |= 1u << perm[i];
        shape[i] = x->shape[perm[i]];
    }
    sg_tensor *y = sg_alloc("permute", n, shape);
    if (!y)
        return NULL;
    memcpy(y->attr.perm, perm, (size_t)n * sizeof(int));
    if (y->size) {
        size_t xs[SG_MAX_DIMS], r = 1; /* x's strides */
        for (int i = n - 1; i >= 0; i--) {
            xs[i] = r;
            r *= (size_t)x->shape[i];
        }
        size_t st[SG_MAX_DIMS]; /* stride in x of each output dim */
        for (int i = 0; i < n; i++)
            st[i] = xs[perm[i]];
        if (n == 0) {
            y->data[0] = x->data[0];
        } else {
            size_t inner = (size_t)shape[n - 1], outer = y->size / inner, s_in = st[n - 1];
            int idx[SG_MAX_DIMS] = {0};
            size_t off = 0;
            float *restrict dst = y->data;
            const float *restrict src = x->data;
            for (size_t o = 0; o < outer; o++, dst += inner) {
                for (size_t i = 0; i < inner; i++)
                    dst[i] = src[off + i * s_in];
                for (int d = n - 2; d >= 0; d--) {
                    off += st[d];
                    if (++idx[d] < shape[d])
                        break;
                    off -= st[d] * (size_t)shape[d];
                    idx[d] = 0;
                }
            }
        }
    }
    return sg_finish(y, SG_OP_PERMUTE, &x, 1);
}

sg_tensor *sg_transpose(sg_tensor *x)
{
    NULL_CHECK("transpose", x);
    if (x->ndim < 2) {
        char b[96];
        sg_set_error("transpose: needs at least 2 dims, got %s", sg_shape_str(x, b, sizeof b));
        return NULL;
    }
    int perm[SG_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        perm[i] = i;
    perm[x->ndim - 1] = x->ndim - 2;
    perm[x->ndim - 2] = x->ndim - 1;
    return sg_permute(x, perm);
}

sg_tensor *sg_broadcast_to(sg_tensor *x, int ndim, const int *shape)
{
    NULL_CHECK("broadcast_to", x);
    char bx[96], bs[96];
    int tmp[SG_MAX_DIMS];
    if (ndim < x->ndim || ndim > SG_MAX_DIMS || (ndim && !shape) ||
        sg_broadcast_shapes(x->ndim, x->shape, ndim, shape, tmp) != ndim ||
        memcmp(tmp, shape, (size_t)ndim * sizeof(int)) != 0) {
        sg_set_error("broadcast_to: cannot broadcast %s to %s", sg_shape_str(x, bx, sizeof bx),
                     shape ? sg_fmt_shape(ndim, shape, bs, sizeof bs) : "(null)");
        return NULL;
    }
    sg_tensor *y = sg_alloc("broadcast_to", ndim, shape);
    if (!y)
        return NULL;
    if (y->size) {
        if (x->size == 1) {
            for (size_t i = 0; i < y->size; i++)
                y->data[i] = x->data[0];
        } else if (ndim == 0) {
            y->data[0] = x->data[0];
        } else {
            size_t st[SG_MAX_DIMS], r = 1;
            for (int i = ndim - 1; i >= 0; i--) {
                int ix = i - (ndim - x->ndim);
                int d = ix >= 0 ? x->shape[ix] : 1;
                st[i] = d == 1 ? 0 : r;
                r *= (size_t)d;
            }
            size_t inner = (size_t)shape[ndim - 1], outer = y->size / inner, s_in = st[ndim - 1];
            int idx[SG_MAX_DIMS] = {0};
            size_t off = 0;
            float *dst = y->data;
            for (size_t o = 0; o < outer; o++, dst += inner) {
                if (s_in)
                    memcpy(dst, x->data + off, inner * sizeof(float));
                else
                    for (size_t i = 0; i < inner; i++)
                        dst[i] = x->data[off];
                for (int d = ndim - 2; d >= 0; d--) {
                    off += st[d];
                    if (++idx[d] < shape[d])
                        break;
                    off -= st[d] * (size_t)shape[d];
                    idx[d] = 0;
                }
            }
        }
    }
    return sg_finish(y, SG_OP_BROADCAST_TO, &x, 1);
}

/* outer = prod(shape[:axis]), inner = prod(shape[axis+1:]) */
static void split_at(const sg_tensor *x, int axis, size_t *outer, size_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= (size_t)x->shape[i];
    for (int i = axis + 1; i < x->ndim; i++)
        *inner *= (size_t)x->shape[i];
}

sg_tensor *sg_slice(sg_tensor *x, int axis, int start, int stop)
{
    NULL_CHECK("slice", x);
    char b[96];
    int ax = axis < 0 ? axis + x->ndim : axis;
    if (ax < 0 || ax >= x->ndim) {
        sg_set_error("slice: axis %d is out of range for %s", axis, sg_shape_str(x, b, sizeof b));
        return NULL;
    }
    int len = x->shape[ax];
    if (start < 0 || stop > len || start > stop) {
        sg_set_error("slice: [%d, %d) is out of range for axis %d of %s", start, stop, axis,
                     sg_shape_str(x, b, sizeof b));
        return NULL;
    }
    int shape[SG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[ax] = stop - start;
    sg_tensor *y = sg_alloc("slice", x->ndim, shape);
    if (!y)
        return NULL;
    size_t outer, inner;
    split_at(x, ax, &outer, &inner);
    size_t chunk = (size_t)(stop - start) * inner;
    for (size_t o = 0; o < outer; o++)
        memcpy(y->data + o * chunk, x->data + (o * (size_t)len + (size_t)start) * inner,
               chunk * sizeof(float));
    y->attr.sl.axis = ax;
    y->attr.sl.start = start;
    return sg_finish(y, SG_OP_SLICE, &x, 1);
}

sg_tensor *sg_concat(sg_tensor *const *xs, int n, int axis)
{
    if (!xs || n < 1) {
        if (!sg_has_error())
            sg_set_error("concat: needs at least one tensor");
        return NULL;
    }
    for (int i = 0; i < n; i++)
        NULL_CHECK("concat", xs[i]);
    char b0[96], bi[96];
    int nd = xs[0]->ndim;
    int ax = axis < 0 ? axis + nd : axis;
    if (ax < 0 || ax >= nd) {
        sg_set_error("concat: axis %d is out of range for %s", axis, sg_shape_str(xs[0], b0, sizeof b0));
        return NULL;
    }
    int shape[SG_MAX_DIMS];
    memcpy(shape, xs[0]->shape, sizeof shape);
    shape[ax] = 0;
    for (int i = 0; i < n; i++) {
        bool ok = xs[i]->ndim == nd;
        for (int d = 0; ok && d < nd; d++)
            ok = d == ax || xs[i]->shape[d] == xs[0]->shape[d];
        if (!ok) {
            sg_set_error("concat: shapes %s and %s differ outside axis %d",
                         sg_shape_str(xs[0], b0, sizeof b0), sg_shape_str(xs[i], bi, sizeof bi), axis);
            return NULL;
        }
        shape[ax] += xs[i]->shape[ax];
    }
    sg_tensor *y = sg_alloc("concat", nd, shape);
    if (!y)
        return NULL;
    size_t outer, inner;
    split_at(y, ax, &outer, &inner);
    size_t row = (size_t)shape[ax] * inner, at = 0;
    for (int i = 0; i < n; i++) {
        size_t chunk = (size_t)xs[i]->shape[ax] * inner;
        for (size_t o = 0; o < outer; o++)
            memcpy(y->data + o * row + at, xs[i]->data + o * chunk, chunk * sizeof(float));
        at += chunk;
    }
    y->attr.axis = ax;
    return sg_finish(y, SG_OP_CONCAT, xs, n);
}

/* ---- local derivatives ---- */

void sg_bw_reshape(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    sg_tensor *x = y->in[0];
    gx[0] = sg_reshape(gy, x->ndim, x->shape);
}

void sg_bw_permute(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    int inv[SG_MAX_DIMS];
    for (int i = 0; i < y->ndim; i++)
        inv[y->attr.perm[i]] = i;
    gx[0] = sg_permute(gy, inv);
}

void sg_bw_broadcast_to(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    sg_tensor *x = y->in[0];
    gx[0] = sg_sum_to(gy, x->ndim, x->shape);
}

void sg_bw_slice(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    /* place gy back between zero blocks: concat is recorded, so this
     * differentiates again */
    sg_tensor *x = y->in[0];
    int ax = y->attr.sl.axis, start = y->attr.sl.start, stop = start + y->shape[ax];
    sg_tensor *parts[3];
    int n = 0, shape[SG_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    if (start > 0) {
        shape[ax] = start;
        parts[n++] = sg_zeros(x->ndim, shape);
    }
    parts[n++] = gy;
    if (stop < x->shape[ax]) {
        shape[ax] = x->shape[ax] - stop;
        parts[n++] = sg_zeros(x->ndim, shape);
    }
    gx[0] = n == 1 ? gy : sg_concat(parts, n, ax);
}

void sg_bw_concat(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    int ax = y->attr.axis, at = 0;
    for (int i = 0; i < y->n_in; i++) {
        int len = y->in[i]->shape[ax];
        if (y->in[i]->requires_grad)
            gx[i] = sg_slice(gy, ax, at, at + len);
        at += len;
    }
}
