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
#include "sg_internal.h"
#include "sg_parallel.h"

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

#if defined(__GNUC__) && !defined(__clang__)
#define SG_VEC_TRANSPOSE 1
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

/* An 8x8 tile: dst[j][i] = src[i][j], in registers (three rounds of
 * shuffles, as _MM_TRANSPOSE8 does; GCC's generic vectors compile to AVX
 * shuffles, or to pairs of SSE ones without AVX). */
static inline void transpose8x8(float *dst, size_t ld, const float *src, size_t ls)
{
    v8f r[8], t[8], u[8];
    for (int i = 0; i < 8; i++)
        memcpy(&r[i], src + (size_t)i * ls, sizeof r[i]);
    const v8i lo = {0, 8, 1, 9, 4, 12, 5, 13}, hi = {2, 10, 3, 11, 6, 14, 7, 15};
    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shuffle(r[i], r[i + 1], lo);
        t[i + 1] = __builtin_shuffle(r[i], r[i + 1], hi);
    }
    const v8i lo2 = {0, 1, 8, 9, 4, 5, 12, 13}, hi2 = {2, 3, 10, 11, 6, 7, 14, 15};
    for (int i = 0; i < 8; i += 4) {
        u[i] = __builtin_shuffle(t[i], t[i + 2], lo2);
        u[i + 1] = __builtin_shuffle(t[i], t[i + 2], hi2);
        u[i + 2] = __builtin_shuffle(t[i + 1], t[i + 3], lo2);
        u[i + 3] = __builtin_shuffle(t[i + 1], t[i + 3], hi2);
    }
    const v8i lo4 = {0, 1, 2, 3, 8, 9, 10, 11}, hi4 = {4, 5, 6, 7, 12, 13, 14, 15};
    for (int i = 0; i < 4; i++) {
        v8f a = __builtin_shuffle(u[i], u[i + 4], lo4), b = __builtin_shuffle(u[i], u[i + 4], hi4);
        memcpy(dst + (size_t)i * ld, &a, sizeof a);
        memcpy(dst + (size_t)(i + 4) * ld, &b, sizeof b);
    }
}
#endif

/* Transpose a (rows, cols) block of src (row stride ls) into dst (row
 * stride ld): dst[j][i] = src[i][j], in 8x8 tiles held in registers. The
 * tiles are walked along the longer side: with many source rows, strips of
 * 8 rows (all their columns) at a time; with few, strips of 8 columns (all
 * the rows), so each finished piece of dst is contiguous and the lines being
 * filled stay in L1. Ragged edges go element by element. */
static void transpose_2d(float *restrict dst, size_t ld, const float *restrict src, size_t ls, size_t rows,
                         size_t cols)
{
#ifdef SG_VEC_TRANSPOSE
    const size_t r8 = rows & ~(size_t)7, c8 = cols & ~(size_t)7;
    if (rows >= cols) {
        for (size_t i0 = 0; i0 < r8; i0 += 8) {
            for (size_t j = 0; j < c8; j += 8)
                transpose8x8(dst + j * ld + i0, ld, src + i0 * ls + j, ls);
            for (size_t j = c8; j < cols; j++)
                for (size_t i = i0; i < i0 + 8; i++)
                    dst[j * ld + i] = src[i * ls + j];
        }
        for (size_t i = r8; i < rows; i++)
            for (size_t j = 0; j < cols; j++)
                dst[j * ld + i] = src[i * ls + j];
    } else {
        for (size_t j0 = 0; j0 < c8; j0 += 8) {
            for (size_t i = 0; i < r8; i += 8)
                transpose8x8(dst + j0 * ld + i, ld, src + i * ls + j0, ls);
            for (size_t j = j0; j < j0 + 8; j++)
                for (size_t i = r8; i < rows; i++)
                    dst[j * ld + i] = src[i * ls + j];
        }
        for (size_t j = c8; j < cols; j++)
            for (size_t i = 0; i < rows; i++)
                dst[j * ld + i] = src[i * ls + j];
    }
#else
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++)
            dst[j * ld + i] = src[i * ls + j];
#endif
}

typedef struct transpose_ctx {
    float *y;
    const float *x;
    size_t R, C; /* each (R, C) block of x becomes a (C, R) block of y */
} transpose_ctx;

static void transpose_batch(void *arg, size_t lo, size_t hi)
{
    const transpose_ctx *c = arg;
    const size_t plane = c->R * c->C;
    for (size_t b = lo; b < hi; b++)
        transpose_2d(c->y + b * plane, c->R, c->x + b * plane, c->C, c->R, c->C);
}

/* y = x with dims reordered by perm (x's shape `xs`, n dims).
 * The permutation is first simplified: dims of size 1 dropped, and output
 * dims that are neighbours in x too merged into one. What remains is most
 * often a copy, a 2-D transpose or a batch of them ((N,HW,C) <-> (N,C,HW),
 * the layout changes of conv2d), done in tiles; anything else takes the
 * general odometer walk, contiguous on the output side. */
static void permute_kernel(float *restrict y, const float *restrict x, int n, const int *xs,
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
        sg_parallel_for(B, 2 * total, transpose_batch, &c);
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
    size_t inner = gsize[ng - 1], outer = total / inner, s_in = st[ng - 1];
    size_t idx[SG_MAX_DIMS] = {0};
    size_t off = 0;
    for (size_t o = 0; o < outer; o++, y += inner) {
        for (size_t i = 0; i < inner; i++)
            y[i] = x[off + i * s_in];
        for (int d = ng - 2; d >= 0; d--) {
            off += st[d];
            if (++idx[d] < gsize[d])
                break;
            off -= st[d] * gsize[d];
            idx[d] = 0;
        }
    }
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
    if (y->size)
        permute_kernel(y->data, x->data, n, x->shape, perm);
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
    sg_broadcast_fill(x, y);
    return sg_finish(y, SG_OP_BROADCAST_TO, &x, 1);
}

void sg_broadcast_fill(const sg_tensor *x, sg_tensor *y)
{
    const int ndim = y->ndim, *shape = y->shape;
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
