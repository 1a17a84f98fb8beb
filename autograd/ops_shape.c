/*
 * ops_shape.c — reshape (a view), permute/transpose, broadcast_to, slice and
 * concat along any axis, and their local derivatives (each the adjoint
 * shape op: reshape back, inverse permutation, sum_to, concat with zeros,
 * slices).
 *
 * permute simplifies the permutation first (dims of size 1 dropped, dims
 * that stay neighbours merged); what remains is usually a copy or a batch
 * of 2-D transposes, e.g. conv2d's (N, OH*OW, FN) <-> (N, FN, OH*OW), done
 * in 8x8 register tiles across threads. Other permutations walk the output
 * in order with an odometer over the input.
 */
#include "sg_float64.h"
#include "sg_internal.h"
#include "sg_kernels.h"
#include "sg_parallel.h"

sg_tensor *sg_reshape(sg_tensor *x, int ndim, const int *shape)
{
    SG_CHECK_INPUT("reshape", x);
    char bx[96], bs[96];
    if (ndim < 0 || ndim > SG_MAX_DIMS || (ndim && !shape)) {
        sg_set_error("reshape: bad target rank %d for %s", ndim, sg_shape_str(x, bx, sizeof bx));
        return NULL;
    }
    int out[SG_MAX_DIMS];
    int infer = -1;
    int64_t known = 1; /* saturates: a wrapped product must never match */
    for (int i = 0; i < ndim; i++) {
        out[i] = shape[i];
        if (shape[i] == -1 && infer < 0) {
            infer = i;
        } else if (shape[i] < 0) {
            sg_set_error("reshape: bad dim %d in %s", shape[i], sg_fmt_shape(ndim, shape, bs, sizeof bs));
            return NULL;
        } else {
            known = sg_count_mul(known, shape[i]);
        }
    }
    if (infer >= 0) {
        if (known == 0 || (int64_t)x->size % known) {
            sg_set_error("reshape: cannot reshape %s into %s", sg_shape_str(x, bx, sizeof bx),
                         sg_fmt_shape(ndim, shape, bs, sizeof bs));
            return NULL;
        }
        out[infer] = (int)((int64_t)x->size / known);
        known = sg_count_mul(known, out[infer]);
    }
    if (known != (int64_t)x->size) {
        sg_set_error("reshape: cannot reshape %s (%zu elements) into %s", sg_shape_str(x, bx, sizeof bx),
                     x->size, sg_fmt_shape(ndim, shape, bs, sizeof bs));
        return NULL;
    }
    sg_tensor *y = sg_alloc_view("reshape", x, ndim, out);
    return y ? sg_record(y, SG_OP_RESHAPE, &x, 1) : NULL;
}

sg_tensor *sg_flatten(sg_tensor *x)
{
    SG_CHECK_INPUT("flatten", x);
    if (x->ndim < 1) {
        sg_set_error("flatten: needs at least 1 dim, got a scalar");
        return NULL;
    }
    /* the product of the trailing dims, not size / shape[0]: with N = 0,
     * (0, 3, 4) flattens to (0, 12). It cannot pass INT_MAX: a shape's
     * nonzero dims obey the element limit (sizes.c). */
    int64_t rest = 1;
    for (int i = 1; i < x->ndim; i++)
        rest = sg_count_mul(rest, x->shape[i]);
    int shape[2] = {x->shape[0], (int)rest};
    return sg_reshape(x, 2, shape);
}

/* The loops are the per-level kernels of kernels/shape.c (transpose,
 * permute_walk, broadcast). */
typedef struct transpose_ctx {
    float *y;
    const float *x;
    size_t R, C; /* each (R, C) block of x becomes a (C, R) block of y */
} transpose_ctx;

static void transpose_range(void *arg, size_t lo, size_t hi)
{
    const transpose_ctx *c = arg;
    sg_kern->transpose(c->y, c->x, c->R, c->C, lo, hi);
}

/* y = x with dims reordered by perm (x's shape `xs`, n dims).
 * The permutation is first simplified: dims of size 1 dropped, and output
 * dims that are neighbours in x too merged into one. What remains is most
 * often a copy, a 2-D transpose or a batch of them ((N,HW,C) <-> (N,C,HW),
 * the layout changes of conv2d), done in tiles; anything else takes the
 * general odometer walk, contiguous on the output side (both kernels of
 * kernels/shape.c). */
static void permute_data(float *restrict y, const float *restrict x, int n, const int *xs,
                           const int *perm)
{
    /* drop size-1 dims: map old dim -> new dim */
    int keep[SG_MAX_DIMS], nk = 0, map[SG_MAX_DIMS];
    for (int i = 0; i < n; i++) {
        map[i] = -1;
        if (xs[i] != 1) {
            map[i] = nk;
            keep[nk++] = xs[i];
        }
    }
    int p1[SG_MAX_DIMS], np = 0;
    for (int i = 0; i < n; i++)
        if (map[perm[i]] >= 0)
            p1[np++] = map[perm[i]];
    /* merge runs p1[i+1] == p1[i] + 1: groups of consecutive x dims */
    int gstart[SG_MAX_DIMS], glen[SG_MAX_DIMS], ng = 0;
    for (int i = 0; i < np; i++) {
        if (ng && p1[i] == gstart[ng - 1] + glen[ng - 1]) {
            glen[ng - 1]++;
        } else {
            gstart[ng] = p1[i];
            glen[ng++] = 1;
        }
    }
    /* group sizes and the order of groups in x */
    size_t gsize[SG_MAX_DIMS];
    int q[SG_MAX_DIMS]; /* q[i]: rank in x of output group i */
    for (int g = 0; g < ng; g++) {
        gsize[g] = 1;
        for (int k = 0; k < glen[g]; k++)
            gsize[g] *= (size_t)keep[gstart[g] + k];
        q[g] = 0;
        for (int h = 0; h < ng; h++)
            q[g] += gstart[h] < gstart[g];
    }
    size_t total = 1;
    for (int g = 0; g < ng; g++)
        total *= gsize[g];
    if (ng <= 1) {
        memcpy(y, x, total * sizeof(float));
        return;
    }
    if (ng == 2 || (ng == 3 && q[0] == 0)) {
        /* (B, R, C) -> (B, C, R): output groups [batch,] C then R */
        size_t B = ng == 3 ? gsize[0] : 1;
        size_t Cn = gsize[ng - 2], R = gsize[ng - 1];
        transpose_ctx c = {.y = y, .x = x, .R = R, .C = Cn};
        sg_parallel_for(B, 2 * total, transpose_range, &c);
        return;
    }
    /* general: x strides of each output group, odometer over all but the last */
    size_t xstride_of[SG_MAX_DIMS]; /* by x-rank */
    size_t gx_size[SG_MAX_DIMS];
    for (int g = 0; g < ng; g++)
        gx_size[q[g]] = gsize[g];
    size_t r = 1;
    for (int k = ng - 1; k >= 0; k--) {
        xstride_of[k] = r;
        r *= gx_size[k];
    }
    size_t st[SG_MAX_DIMS];
    for (int g = 0; g < ng; g++)
        st[g] = xstride_of[q[g]];
    sg_kern->permute_walk(y, x, ng, gsize, st);
}

sg_tensor *sg_permute(sg_tensor *x, const int *perm, int n_perm)
{
    SG_CHECK_INPUT("permute", x);
    int n = x->ndim;
    char bx[96];
    if (n_perm != n) {
        sg_set_error("permute: a permutation of %d entries for %s, which has %d dims", n_perm,
                     sg_shape_str(x, bx, sizeof bx), n);
        return NULL;
    }
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
    sg_tensor *y = sg_alloc("permute", x->dtype, n, shape);
    if (!y)
        return NULL;
    memcpy(y->attr.perm, perm, (size_t)n * sizeof(int));
    if (y->size && x->dtype == SG_FLOAT64)
        sg64_permute(y->data64, x->data64, n, x->shape, perm);
    else if (y->size)
        permute_data(y->data, x->data, n, x->shape, perm);
    return sg_finish(y, SG_OP_PERMUTE, &x, 1);
}

sg_tensor *sg_transpose(sg_tensor *x)
{
    SG_CHECK_INPUT("transpose", x);
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
    return sg_permute(x, perm, x->ndim);
}

sg_tensor *sg_broadcast_to(sg_tensor *x, int ndim, const int *shape)
{
    SG_CHECK_INPUT("broadcast_to", x);
    char bx[96], bs[96];
    int tmp[SG_MAX_DIMS];
    if (ndim < x->ndim || ndim > SG_MAX_DIMS || (ndim && !shape) ||
        sg_broadcast_shapes(x->ndim, x->shape, ndim, shape, tmp) != ndim ||
        memcmp(tmp, shape, (size_t)ndim * sizeof(int)) != 0) {
        sg_set_error("broadcast_to: cannot broadcast %s to %s", sg_shape_str(x, bx, sizeof bx),
                     shape ? sg_fmt_shape(ndim, shape, bs, sizeof bs) : "(null)");
        return NULL;
    }
    sg_tensor *y = sg_alloc("broadcast_to", x->dtype, ndim, shape);
    if (!y)
        return NULL;
    sg_broadcast_fill(x, y);
    return sg_finish(y, SG_OP_BROADCAST_TO, &x, 1);
}

void sg_broadcast_fill(const sg_tensor *x, sg_tensor *y)
{
    if (y->dtype == SG_FLOAT64)
        sg64_broadcast(y, x);
    else
        sg_kern->broadcast(y->data, x->data, y->ndim, y->shape, x->ndim, x->shape);
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
    SG_CHECK_INPUT("slice", x);
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
    sg_tensor *y = sg_alloc("slice", x->dtype, x->ndim, shape);
    if (!y)
        return NULL;
    size_t outer, inner;
    split_at(x, ax, &outer, &inner);
    size_t chunk = (size_t)(stop - start) * inner, esz = sg_dtype_size(x->dtype);
    char *yb = y->bytes;
    const char *xb = x->bytes;
    for (size_t o = 0; o < outer; o++)
        memcpy(yb + o * chunk * esz, xb + (o * (size_t)len + (size_t)start) * inner * esz, chunk * esz);
    y->attr.sl.axis = ax;
    y->attr.sl.start = start;
    return sg_finish(y, SG_OP_SLICE, &x, 1);
}

static sg_tensor *concat_promoted(sg_tensor *const *xs, int n, int axis);

sg_tensor *sg_concat(sg_tensor *const *xs, int n, int axis)
{
    if (n < 1) {
        sg_set_error("concat: needs at least one tensor, got %d", n);
        return NULL;
    }
    if (!xs) {
        sg_set_error("concat: NULL array of %d tensors", n);
        return NULL;
    }
    for (int i = 0; i < n; i++)
        SG_CHECK_INPUT("concat", xs[i]);
    for (int i = 1; i < n; i++)
        if (xs[i]->dtype != xs[0]->dtype)
            return concat_promoted(xs, n, axis);
    char b0[96], bi[96];
    int nd = xs[0]->ndim;
    int ax = axis < 0 ? axis + nd : axis;
    if (ax < 0 || ax >= nd) {
        sg_set_error("concat: axis %d is out of range for %s", axis, sg_shape_str(xs[0], b0, sizeof b0));
        return NULL;
    }
    int shape[SG_MAX_DIMS];
    int64_t dims[SG_MAX_DIMS];
    for (int d = 0; d < nd; d++)
        dims[d] = xs[0]->shape[d];
    dims[ax] = 0;
    for (int i = 0; i < n; i++) {
        bool ok = xs[i]->ndim == nd;
        for (int d = 0; ok && d < nd; d++)
            ok = d == ax || xs[i]->shape[d] == xs[0]->shape[d];
        if (!ok) {
            sg_set_error("concat: shapes %s and %s differ outside axis %d",
                         sg_shape_str(xs[0], b0, sizeof b0), sg_shape_str(xs[i], bi, sizeof bi), axis);
            return NULL;
        }
        dims[ax] = sg_count_add(dims[ax], xs[i]->shape[ax]);
    }
    if (!sg_shape_fits("concat", "output", nd, dims, shape))
        return NULL;
    sg_tensor *y = sg_alloc("concat", xs[0]->dtype, nd, shape);
    if (!y)
        return NULL;
    size_t outer, inner;
    split_at(y, ax, &outer, &inner);
    size_t row = (size_t)shape[ax] * inner, at = 0, esz = sg_dtype_size(y->dtype);
    char *yb = y->bytes;
    for (int i = 0; i < n; i++) {
        size_t chunk = (size_t)xs[i]->shape[ax] * inner;
        const char *xb = xs[i]->bytes;
        for (size_t o = 0; o < outer; o++)
            memcpy(yb + (o * row + at) * esz, xb + o * chunk * esz, chunk * esz);
        at += chunk;
    }
    y->attr.axis = ax;
    return sg_finish(y, SG_OP_CONCAT, xs, n);
}

/* Inputs of both dtypes: concat their float64 conversions (a recorded
 * cast each, so gradients go back in each input's dtype). */
static sg_tensor *concat_promoted(sg_tensor *const *xs, int n, int axis)
{
    sg_tensor **conv = malloc((size_t)n * sizeof *conv);
    if (!conv) {
        sg_set_error("concat: out of memory for %d inputs", n);
        return NULL;
    }
    memcpy(conv, xs, (size_t)n * sizeof *conv);
    sg_tensor *y = sg_promote_all(conv, n) == 0 ? sg_concat(conv, n, axis) : NULL;
    free(conv);
    return y;
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
    gx[0] = sg_permute(gy, inv, y->ndim);
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
        parts[n++] = sg_full_dtype(gy ? gy->dtype : x->dtype, 0.0, x->ndim, shape);
    }
    parts[n++] = gy;
    if (stop < x->shape[ax]) {
        shape[ax] = x->shape[ax] - stop;
        parts[n++] = sg_full_dtype(gy ? gy->dtype : x->dtype, 0.0, x->ndim, shape);
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
