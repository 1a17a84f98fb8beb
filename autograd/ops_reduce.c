/*
 * ops_reduce.c — sum and max over chosen axes (keepdims or not), sum_to (the
 * adjoint of broadcasting), and mean as a composition.
 *
 * The kernel first simplifies the shape: dims of size 1 are dropped and
 * neighbouring dims that are both reduced (or both kept) are merged. The
 * common results get direct loops, split across threads when large:
 *   (R)        everything         -> one run
 *   (O, R)     trailing dims      -> one run per row (softmax, 2x2 pooling)
 *   (R, K)     leading dims       -> column sums (a bias gradient)
 *   (A, R, K)  middle dims        -> a batch of column sums
 *   (R, K, S)  outer and inner    -> per channel: the bias gradient of an
 *                                    NCHW convolution, batch norm's sums
 *   (A, R, B, S) dims 1 and 3     -> windows: max pooling with stride = size
 *                                    as a reshape to (N*C*OH, k, OW, k)
 * Anything else takes the general walk: the output indexed with the
 * input's rank and a stride of 0 on reduced dims, the input walked row by
 * row with an odometer over the outer dims.
 *
 * max's local derivative is a composition (mask of the maxima, shared
 * evenly among ties); without create_graph, when the reduced dims trail or
 * form windows, it runs as one pass that computes the same values.
 */
#include "sg_float64.h"
#include "sg_internal.h"
#include "sg_kernels.h"
#include "sg_parallel.h"

#include <math.h>

/* The loops are the per-level kernels of kernels/reduce.c; this file
 * plans which one runs and splits it across threads. */

typedef struct red_ctx {
    const float *x;
    float *y;
    size_t R, K, S; /* rows: (outer, R) -> (outer); batch: (A, R, K) -> (A, K);
                       channels: (R, K, S) -> (K); windows: (A, R, K, S) -> (A, K) */
    int kind;
} red_ctx;

static void rows_range(void *arg, size_t lo, size_t hi)
{
    const red_ctx *c = arg;
    sg_kern->reduce_rows(c->kind, c->y, c->x, c->R, lo, hi);
}

/* rows (outer, inner) -> (outer): reduce the last axis */
static void reduce_rows(const float *x, float *y, size_t outer, size_t inner, int kind)
{
    red_ctx c = {.x = x, .y = y, .R = inner, .kind = kind};
    sg_parallel_for(outer, outer * inner, rows_range, &c);
}

typedef struct cols_ctx {
    const float *x;
    float *part; /* (blocks, inner) partial results */
    size_t outer, inner, blocks;
    int kind;
} cols_ctx;

static void cols_blocks(void *arg, size_t lo, size_t hi)
{
    const cols_ctx *c = arg;
    const float init = c->kind == 0 ? 0.f : -INFINITY;
    for (size_t b = lo; b < hi; b++) {
        size_t o0 = c->outer * b / c->blocks, o1 = c->outer * (b + 1) / c->blocks;
        float *p = c->part + b * c->inner;
        for (size_t i = 0; i < c->inner; i++)
            p[i] = init;
        sg_kern->reduce_cols(c->kind, p, c->x + o0 * c->inner, o1 - o0, c->inner);
    }
}

/* columns (outer, inner) -> (inner): reduce the first axis into y, which
 * holds the initial values already. A large reduction with a short row
 * (the bias gradient (N*OH*OW, C) -> (C)) is cut into COL_BLOCKS blocks of
 * rows, reduced into partial rows (on as many threads as there are), and
 * the partial rows are combined in order at the end. The cut depends on
 * the shape only, never on the thread count, so the sums are the same on
 * any number of threads (docs/design.md, "Determinism"). */
static void reduce_cols(const float *restrict x, float *restrict y, size_t outer, size_t inner, int kind)
{
    enum { PART = 4096, COL_BLOCKS = 8 };
    const size_t blocks = COL_BLOCKS;
    if (outer * inner >= SG_PAR_MIN && blocks * inner <= PART && outer >= blocks * 8) {
        float part[PART];
        cols_ctx c = {.x = x, .part = part, .outer = outer, .inner = inner, .blocks = blocks, .kind = kind};
        sg_parallel_for(blocks, outer * inner, cols_blocks, &c);
        sg_kern->reduce_cols(kind, y, part, blocks, inner);
        return;
    }
    sg_kern->reduce_cols(kind, y, x, outer, inner);
}

static void channels_range(void *arg, size_t lo, size_t hi)
{
    const red_ctx *c = arg;
    sg_kern->reduce_channels(c->kind, c->y, c->x, c->R, c->K, c->S, lo, hi);
}

static void batch_cols_range(void *arg, size_t lo, size_t hi)
{
    const red_ctx *c = arg;
    for (size_t a = lo; a < hi; a++)
        reduce_cols(c->x + a * c->R * c->K, c->y + a * c->K, c->R, c->K, c->kind);
}

static void windows_range(void *arg, size_t lo, size_t hi)
{
    const red_ctx *c = arg;
    sg_kern->reduce_windows(c->kind, c->y, c->x, c->R, c->K, c->S, lo, hi);
}

/* x's shape with size-1 dims dropped and neighbours that are both reduced
 * (or both kept) merged: the groups alternate kept / reduced. */
static int coalesce(int ndim, const int *shape, uint32_t mask, size_t *gsize, bool *gred)
{
    int ng = 0;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == 1)
            continue;
        bool red = (mask >> i) & 1u;
        if (ng && gred[ng - 1] == red) {
            gsize[ng - 1] *= (size_t)shape[i];
        } else {
            gsize[ng] = (size_t)shape[i];
            gred[ng++] = red;
        }
    }
    return ng;
}

/* y = the reduction (kind 0 = sum, 1 = max) of x (shape[0..ndim)) over
 * the dims in mask; y holds x's shape without them (or with them as 1). */
static void reduce_data(float *restrict y, const float *restrict x, int ndim, const int *shape, uint32_t mask,
                        int kind)
{
    const float init = kind == 0 ? 0.f : -INFINITY;
    const size_t xsize = sg_shape_size(ndim, shape);
    size_t ysize = 1;
    for (int i = 0; i < ndim; i++)
        if (!(mask & (1u << i)))
            ysize *= (size_t)shape[i];
    if (xsize == 0) {
        for (size_t i = 0; i < ysize; i++)
            y[i] = init;
        return;
    }
    if (ndim == 0) {
        y[0] = x[0];
        return;
    }
    size_t gsize[SG_MAX_DIMS];
    bool gred[SG_MAX_DIMS];
    int ng = coalesce(ndim, shape, mask, gsize, gred);
    if (ng == 0 || (ng == 1 && !gred[0])) { /* nothing reduced: a copy */
        memcpy(y, x, xsize * sizeof(float));
        return;
    }
    if (ng == 1) { /* everything */
        sg_kern->reduce_all(kind, y, x, xsize);
        return;
    }
    if (ng == 2 && gred[1]) {
        reduce_rows(x, y, gsize[0], gsize[1], kind);
        return;
    }
    if (ng == 4 && gred[1]) { /* (A, R, B, S): windows */
        red_ctx c = {.x = x, .y = y, .R = gsize[1], .K = gsize[2], .S = gsize[3], .kind = kind};
        sg_parallel_for(gsize[0], xsize, windows_range, &c);
        return;
    }
    for (size_t i = 0; i < ysize; i++)
        y[i] = init;
    if (ng == 2) {
        reduce_cols(x, y, gsize[0], gsize[1], kind);
        return;
    }
    if (ng == 3 && !gred[0]) { /* (A, R, K) -> (A, K): a batch of column reductions */
        red_ctx c = {.x = x, .y = y, .R = gsize[1], .K = gsize[2], .kind = kind};
        sg_parallel_for(gsize[0], xsize, batch_cols_range, &c);
        return;
    }
    if (ng == 3) { /* (R, K, S) -> (K) */
        red_ctx c = {.x = x, .y = y, .R = gsize[0], .K = gsize[1], .S = gsize[2], .kind = kind};
        sg_parallel_for(gsize[1], xsize, channels_range, &c);
        return;
    }
    sg_kern->reduce_general(kind, y, x, ndim, shape, mask);
}

static sg_tensor *reduce(enum sg_op op, sg_tensor *x, const int *axes, int n_axes, bool keep)
{
    const char *name = sg_op_table[op].name;
    SG_CHECK_INPUT(name, x);
    uint32_t mask;
    if (sg_axes_mask(name, x->ndim, axes, n_axes, &mask) < 0)
        return NULL;
    /* Empty tensors: a sum over an empty axis is 0 (reduce_data fills the
     * initial value); a max over one has no value, so it is an error
     * naming that axis; an empty input whose reduced axes are all
     * non-empty gives the empty result of the right shape. */
    for (int i = 0; op == SG_OP_MAX && i < x->ndim; i++) {
        if ((mask >> i & 1u) && x->shape[i] == 0) {
            char b[96];
            sg_set_error("max: axis %d of %s is empty and has no maximum", i, sg_shape_str(x, b, sizeof b));
            return NULL;
        }
    }
    int shape[SG_MAX_DIMS];
    int nd = sg_reduced_shape(x->ndim, x->shape, mask, keep, shape);
    sg_tensor *y = sg_alloc(name, x->dtype, nd, shape);
    if (!y)
        return NULL;
    if (x->dtype == SG_FLOAT64)
        sg64_reduce(y->data64, x->data64, x->ndim, x->shape, mask, op == SG_OP_SUM ? 0 : 1);
    else
        reduce_data(y->data, x->data, x->ndim, x->shape, mask, op == SG_OP_SUM ? 0 : 1);
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
    SG_API_BEGIN("mean");
    sg_tensor *s = sg_sum(x, axes, n_axes, keepdims), *y = NULL;
    if (s) {
        size_t count = s->size ? x->size / s->size : 0;
        /* 1/count in the tensor's precision (float32: as it always was) */
        double scale = !count ? NAN : x->dtype == SG_FLOAT64 ? 1.0 / (double)count : (double)(1.f / (float)count);
        y = sg_mul_scalar(s, scale);
    }
    SG_API_END();
    return y;
}

sg_tensor *sg_sum_all(sg_tensor *x)
{
    SG_API_BEGIN("sum_all");
    sg_tensor *y = sg_sum(x, NULL, 0, false);
    SG_API_END();
    return y;
}

sg_tensor *sg_mean_all(sg_tensor *x)
{
    SG_API_BEGIN("mean_all");
    sg_tensor *y = sg_mean(x, NULL, 0, false);
    SG_API_END();
    return y;
}

/* The one-axis forms: an axis instead of an array and a count. */
sg_tensor *sg_sum_axis(sg_tensor *x, int axis, bool keepdims)
{
    SG_API_BEGIN("sum_axis");
    sg_tensor *y = sg_sum(x, &axis, 1, keepdims);
    SG_API_END();
    return y;
}

sg_tensor *sg_mean_axis(sg_tensor *x, int axis, bool keepdims)
{
    SG_API_BEGIN("mean_axis");
    sg_tensor *y = sg_mean(x, &axis, 1, keepdims);
    SG_API_END();
    return y;
}

sg_tensor *sg_max_axis(sg_tensor *x, int axis, bool keepdims)
{
    SG_API_BEGIN("max_axis");
    sg_tensor *y = sg_max(x, &axis, 1, keepdims);
    SG_API_END();
    return y;
}

sg_tensor *sg_sum_to(sg_tensor *x, int ndim, const int *shape)
{
    SG_CHECK_INPUT("sum_to", x);
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
    sg_tensor *y = sg_alloc("sum_to", x->dtype, ndim, shape);
    if (!y)
        return NULL;
    /* y holds x's shape without the reduced dims (the leading ones vanish) */
    if (x->dtype == SG_FLOAT64)
        sg64_reduce(y->data64, x->data64, x->ndim, x->shape, mask, 0);
    else
        reduce_data(y->data, x->data, x->ndim, x->shape, mask, 0);
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

/* If the dims max reduced are x's trailing ones (ignoring dims of size 1),
 * the number of values per row; else 0. */
static size_t max_row_length(const sg_tensor *y, const sg_tensor *x)
{
    uint32_t mask = y->attr.red.mask;
    int first = -1; /* first reduced dim of size > 1; all after it must be reduced */
    for (int i = 0; i < x->ndim; i++) {
        if (x->shape[i] == 1)
            continue;
        bool red = (mask >> i) & 1u;
        if (red && first < 0)
            first = i;
        else if (!red && first >= 0)
            return 0;
    }
    size_t inner = 1;
    for (int i = first < 0 ? x->ndim : first; i < x->ndim; i++)
        inner *= (size_t)x->shape[i];
    return x->size && y->size * inner == x->size ? inner : 0;
}

/* The composition of sg_bw_max in one pass over rows of `inner` values or
 * over windows (kernels/reduce.c: max_grad_rows, max_grad_windows). */
typedef struct max_grad_ctx {
    float *g;
    const float *x, *y, *gy;
    size_t inner, R, B, S;
} max_grad_ctx;

static void max_grad_range(void *arg, size_t lo, size_t hi)
{
    const max_grad_ctx *c = arg;
    sg_kern->max_grad_rows(c->g, c->x, c->y, c->gy, c->inner, lo, hi);
}

static sg_tensor *max_grad_rows(sg_tensor *y, sg_tensor *gy, size_t inner)
{
    sg_tensor *x = y->in[0];
    sg_tensor *g = sg_alloc("max_backward", x->dtype, x->ndim, x->shape);
    if (!g)
        return NULL;
    max_grad_ctx c = {.g = g->data, .x = x->data, .y = y->data, .gy = gy->data, .inner = inner};
    sg_parallel_for(y->size, x->size, max_grad_range, &c);
    return g;
}

static void max_grad_windows_range(void *arg, size_t lo, size_t hi)
{
    const max_grad_ctx *c = arg;
    sg_kern->max_grad_windows(c->g, c->x, c->y, c->gy, c->R, c->B, c->S, lo, hi);
}

static sg_tensor *max_grad_windows(sg_tensor *y, sg_tensor *gy, const size_t *gsize)
{
    sg_tensor *x = y->in[0];
    sg_tensor *g = sg_alloc("max_backward", x->dtype, x->ndim, x->shape);
    if (!g)
        return NULL;
    max_grad_ctx c = {.g = g->data, .x = x->data, .y = y->data, .gy = gy->data,
                      .R = gsize[1], .B = gsize[2], .S = gsize[3]};
    sg_parallel_for(gsize[0], x->size, max_grad_windows_range, &c);
    return g;
}

/* Ties share dy evenly: k elements equal to the maximum get dy / k each
 * (PyTorch's amax and max(): evenly_distribute_backward), -inf and +inf
 * maxima included. An empty input with non-empty reduced axes has an empty
 * gradient. */
void sg_bw_max(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    sg_tensor *x = y->in[0];
    if (!sg_tl_grad_enabled && x->dtype == SG_FLOAT32 && gy && gy->size == y->size && x->size > 0) {
        /* no graph to record (no create_graph): one pass for rows or windows */
        size_t inner = max_row_length(y, x), gsize[SG_MAX_DIMS];
        bool gred[SG_MAX_DIMS];
        if (inner > 0) {
            gx[0] = max_grad_rows(y, gy, inner);
            return;
        }
        if (coalesce(x->ndim, x->shape, y->attr.red.mask, gsize, gred) == 4 && gred[1]) {
            gx[0] = max_grad_windows(y, gy, gsize);
            return;
        }
    }
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
