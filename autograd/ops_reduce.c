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
#include "sg_internal.h"
#include "sg_parallel.h"

#include <math.h>

/* Sum (kind 0) or max (kind 1) of a contiguous run, starting from `init`. */
static inline float reduce_run(const float *restrict s, size_t n, int kind, float init)
{
    if (kind == 0) {
        /* four partial sums: vectorises, and rounds no worse than one */
        float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
        size_t i = 0;
        for (; i + 4 <= n; i += 4) {
            a0 += s[i];
            a1 += s[i + 1];
            a2 += s[i + 2];
            a3 += s[i + 3];
        }
        for (; i < n; i++)
            a0 += s[i];
        return init + ((a0 + a1) + (a2 + a3));
    }
    float m = init;
    for (size_t i = 0; i < n; i++)
        m = s[i] > m ? s[i] : m;
    return m;
}

/* The general walk: y (already initialised) combined with every x element. */
static void reduce_general(const sg_tensor *x, float *restrict dst, uint32_t mask, int kind)
{
    int n = x->ndim;
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
    for (size_t o = 0; o < outer; o++, src += inner) {
        if (inner_reduced) {
            dst[off] = reduce_run(src, inner, kind, dst[off]);
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

typedef struct red_ctx {
    const float *x;
    float *y;
    size_t R, K, S; /* rows: (outer, R) -> (outer); batch: (A, R, K) -> (A, K);
                       channels: (R, K, S) -> (K) */
    int kind;
} red_ctx;

static void rows_range(void *arg, size_t lo, size_t hi)
{
    const red_ctx *c = arg;
    const float *restrict x = c->x;
    float *restrict y = c->y;
    const size_t inner = c->R;
    const float init = c->kind == 0 ? 0.f : -INFINITY;
    if (inner == 4 && c->kind == 1) { /* 2x2 max pooling windows */
        for (size_t o = lo; o < hi; o++) {
            const float *s = x + 4 * o;
            float m = s[0] > init ? s[0] : init;
            m = s[1] > m ? s[1] : m;
            m = s[2] > m ? s[2] : m;
            y[o] = s[3] > m ? s[3] : m;
        }
        return;
    }
    for (size_t o = lo; o < hi; o++)
        y[o] = reduce_run(x + o * inner, inner, c->kind, init);
}

/* rows (outer, inner) -> (outer): reduce the last axis */
static void reduce_rows(const float *x, float *y, size_t outer, size_t inner, int kind)
{
    red_ctx c = {.x = x, .y = y, .R = inner, .kind = kind};
    sg_parallel_for(outer, outer * inner, rows_range, &c);
}

/* y[i] (op)= x[o][i] over the rows o of a (outer, inner) block */
static void cols_serial(const float *restrict x, float *restrict y, size_t outer, size_t inner, int kind)
{
    for (size_t o = 0; o < outer; o++) {
        const float *restrict s = x + o * inner;
        if (kind == 0)
            for (size_t i = 0; i < inner; i++) y[i] += s[i];
        else
            for (size_t i = 0; i < inner; i++) y[i] = s[i] > y[i] ? s[i] : y[i];
    }
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
        cols_serial(c->x + o0 * c->inner, p, o1 - o0, c->inner, c->kind);
    }
}

/* columns (outer, inner) -> (inner): reduce the first axis into y, which
 * holds the initial values already. With threads and a short row (the bias
 * gradient (N*OH*OW, C) -> (C)), blocks of rows are reduced into partial
 * rows in parallel, and the partial rows are combined at the end. */
static void reduce_cols(const float *restrict x, float *restrict y, size_t outer, size_t inner, int kind)
{
    enum { PART = 4096 };
    int nt = sg_parallel_threads(outer * inner);
    size_t blocks = (size_t)nt * 4;
    if (nt > 1 && blocks * inner <= PART && outer >= blocks * 8) {
        float part[PART];
        cols_ctx c = {.x = x, .part = part, .outer = outer, .inner = inner, .blocks = blocks, .kind = kind};
        sg_parallel_for(blocks, outer * inner, cols_blocks, &c);
        cols_serial(part, y, blocks, inner, kind);
        return;
    }
    cols_serial(x, y, outer, inner, kind);
}

enum { RUNS = 8 };

/* reduce_run's sum (kind 0) of RUNS runs s + r * stride at once, without
 * `init`: out[r] = (a0 + a1) + (a2 + a3) as reduce_run forms it. One run's
 * four partial sums are one chain of dependent additions (about one float
 * per cycle); eight runs are eight independent chains that overlap. GCC
 * and Clang hold the four partial sums of a run in one 4-float vector (the
 * same additions, lane for lane); other compilers sum run after run. */
#if defined(__GNUC__)
typedef float sg_v4 __attribute__((vector_size(16)));

static void sum_runs(const float *restrict s, size_t stride, size_t n, float *restrict out)
{
    sg_v4 a[RUNS];
    for (int r = 0; r < RUNS; r++)
        a[r] = (sg_v4){0.f, 0.f, 0.f, 0.f};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int r = 0; r < RUNS; r++) {
            sg_v4 v;
            memcpy(&v, s + r * stride + i, sizeof v);
            a[r] += v;
        }
    for (; i < n; i++)
        for (int r = 0; r < RUNS; r++)
            a[r][0] += s[r * stride + i];
    for (int r = 0; r < RUNS; r++)
        out[r] = (a[r][0] + a[r][1]) + (a[r][2] + a[r][3]);
}
#else
/* reduce_run from 0: 0 + x differs from x only for x = -0, and adding -0 or
 * +0 to the caller's sum (which starts at +0, so is never -0) is the same */
static void sum_runs(const float *restrict s, size_t stride, size_t n, float *restrict out)
{
    for (int r = 0; r < RUNS; r++)
        out[r] = reduce_run(s + r * stride, n, 0, 0.f);
}
#endif

/* (R, K, S) -> (K): y[k] (op)= the runs x[r][k][0..S) in the order of r
 * (the order of the general walk, so the same sums), channels split over
 * threads. */
static void channels_range(void *arg, size_t lo, size_t hi)
{
    const red_ctx *c = arg;
    const size_t stride = c->K * c->S;
    for (size_t k = lo; k < hi; k++) {
        float acc = c->y[k];
        size_t r = 0;
        if (c->kind == 0) {
            float part[RUNS];
            for (; r + RUNS <= c->R; r += RUNS) {
                sum_runs(c->x + (r * c->K + k) * c->S, stride, c->S, part);
                for (int q = 0; q < RUNS; q++)
                    acc = acc + part[q]; /* reduce_run's init + partial, in the order of r */
            }
        }
        for (; r < c->R; r++)
            acc = reduce_run(c->x + (r * c->K + k) * c->S, c->S, c->kind, acc);
        c->y[k] = acc;
    }
}

static void batch_cols_range(void *arg, size_t lo, size_t hi)
{
    const red_ctx *c = arg;
    for (size_t a = lo; a < hi; a++)
        reduce_cols(c->x + a * c->R * c->K, c->y + a * c->K, c->R, c->K, c->kind);
}

/* x's shape with size-1 dims dropped and neighbours that are both reduced
 * (or both kept) merged: the groups alternate kept / reduced. */
static int coalesce(const sg_tensor *x, uint32_t mask, size_t *gsize, bool *gred)
{
    int ng = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (x->shape[i] == 1)
            continue;
        bool red = (mask >> i) & 1u;
        if (ng && gred[ng - 1] == red) {
            gsize[ng - 1] *= (size_t)x->shape[i];
        } else {
            gsize[ng] = (size_t)x->shape[i];
            gred[ng++] = red;
        }
    }
    return ng;
}

/* (A, R, B, S) with dims 1 and 3 reduced: y[a][b] = reduce of the R x S
 * window x[a][0..R)[b][0..S). */
typedef struct win_ctx {
    const float *x, *y_in; /* y_in, gy: the backward's forward result and gradient */
    float *y;
    const float *gy;
    size_t R, B, S;
    int kind;
} win_ctx;

static void windows_range(void *arg, size_t lo, size_t hi)
{
    const win_ctx *c = arg;
    const size_t R = c->R, B = c->B, S = c->S;
    const float init = c->kind == 0 ? 0.f : -INFINITY;
    if (R == 2 && S == 2 && c->kind == 1) { /* 2x2 max pooling: straight-line code */
        for (size_t a = lo; a < hi; a++) {
            const float *restrict r0 = c->x + a * 4 * B, *restrict r1 = r0 + 2 * B;
            float *restrict ya = c->y + a * B;
            for (size_t b = 0; b < B; b++) {
                float m = r0[2 * b] > init ? r0[2 * b] : init;
                m = r0[2 * b + 1] > m ? r0[2 * b + 1] : m;
                m = r1[2 * b] > m ? r1[2 * b] : m;
                ya[b] = r1[2 * b + 1] > m ? r1[2 * b + 1] : m;
            }
        }
        return;
    }
    for (size_t a = lo; a < hi; a++) {
        const float *restrict xa = c->x + a * R * B * S;
        float *restrict ya = c->y + a * B;
        for (size_t b = 0; b < B; b++)
            ya[b] = reduce_run(xa + b * S, S, c->kind, init);
        for (size_t r = 1; r < R; r++)
            for (size_t b = 0; b < B; b++)
                ya[b] = reduce_run(xa + (r * B + b) * S, S, c->kind, ya[b]);
    }
}

void sg_reduce_kernel(const sg_tensor *x, sg_tensor *y, uint32_t mask, int kind)
{
    const float init = kind == 0 ? 0.f : -INFINITY;
    if (x->size == 0) {
        for (size_t i = 0; i < y->size; i++)
            y->data[i] = init;
        return;
    }
    int n = x->ndim;
    if (n == 0) {
        y->data[0] = x->data[0];
        return;
    }
    size_t gsize[SG_MAX_DIMS];
    bool gred[SG_MAX_DIMS];
    int ng = coalesce(x, mask, gsize, gred);
    float *restrict dst = y->data;
    if (ng == 0 || (ng == 1 && !gred[0])) { /* nothing reduced: a copy */
        memcpy(dst, x->data, x->size * sizeof(float));
        return;
    }
    if (ng == 1) { /* everything */
        dst[0] = reduce_run(x->data, x->size, kind, init);
        return;
    }
    if (ng == 2 && gred[1]) {
        reduce_rows(x->data, dst, gsize[0], gsize[1], kind);
        return;
    }
    if (ng == 4 && gred[1]) { /* (A, R, B, S): windows */
        win_ctx c = {.x = x->data, .y = dst, .R = gsize[1], .B = gsize[2], .S = gsize[3], .kind = kind};
        sg_parallel_for(gsize[0], x->size, windows_range, &c);
        return;
    }
    for (size_t i = 0; i < y->size; i++)
        dst[i] = init;
    if (ng == 2) {
        reduce_cols(x->data, dst, gsize[0], gsize[1], kind);
        return;
    }
    if (ng == 3 && !gred[0]) { /* (A, R, K) -> (A, K): a batch of column reductions */
        red_ctx c = {.x = x->data, .y = dst, .R = gsize[1], .K = gsize[2], .kind = kind};
        sg_parallel_for(gsize[0], x->size, batch_cols_range, &c);
        return;
    }
    if (ng == 3) { /* (R, K, S) -> (K) */
        red_ctx c = {.x = x->data, .y = dst, .R = gsize[0], .K = gsize[1], .S = gsize[2], .kind = kind};
        sg_parallel_for(gsize[1], x->size, channels_range, &c);
        return;
    }
    reduce_general(x, dst, mask, kind);
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

/* The composition of sg_bw_max in one pass over rows of `inner` values
 * (max pooling's windows, softmax's shift): per row, count the elements
 * equal to the maximum, then dx = (x == max) * (dy / count), the same
 * values the composition computes. */
typedef struct max_grad_ctx {
    float *g;
    const float *x, *y, *gy;
    size_t inner;
} max_grad_ctx;

static void max_grad_range(void *arg, size_t lo, size_t hi)
{
    const max_grad_ctx *c = arg;
    const size_t inner = c->inner;
    if (inner == 4) { /* 2x2 pooling windows: straight-line code per row */
        const float *restrict x = c->x, *restrict y = c->y, *restrict gy = c->gy;
        float *restrict g = c->g;
        for (size_t o = lo; o < hi; o++) {
            const float m = y[o];
            float e0 = x[4 * o] == m ? 1.f : 0.f, e1 = x[4 * o + 1] == m ? 1.f : 0.f;
            float e2 = x[4 * o + 2] == m ? 1.f : 0.f, e3 = x[4 * o + 3] == m ? 1.f : 0.f;
            const float share = gy[o] / (((e0 + e1) + e2) + e3);
            g[4 * o] = e0 * share;
            g[4 * o + 1] = e1 * share;
            g[4 * o + 2] = e2 * share;
            g[4 * o + 3] = e3 * share;
        }
        return;
    }
    for (size_t o = lo; o < hi; o++) {
        const float *restrict xs = c->x + o * inner;
        float *restrict d = c->g + o * inner;
        const float m = c->y[o];
        float count = 0.f;
        for (size_t i = 0; i < inner; i++)
            count += xs[i] == m ? 1.f : 0.f;
        const float share = c->gy[o] / count;
        for (size_t i = 0; i < inner; i++)
            d[i] = (xs[i] == m ? 1.f : 0.f) * share;
    }
}

static sg_tensor *max_grad_rows(sg_tensor *y, sg_tensor *gy, size_t inner)
{
    sg_tensor *x = y->in[0];
    sg_tensor *g = sg_alloc("max_backward", x->ndim, x->shape);
    if (!g)
        return NULL;
    max_grad_ctx c = {.g = g->data, .x = x->data, .y = y->data, .gy = gy->data, .inner = inner};
    sg_parallel_for(y->size, x->size, max_grad_range, &c);
    return g;
}

/* The same for windows (A, R, B, S) -> (A, B): per window, count the
 * maxima, then share dy among them. */
static void max_grad_windows_range(void *arg, size_t lo, size_t hi)
{
    const win_ctx *c = arg;
    const size_t R = c->R, B = c->B, S = c->S;
    if (R == 2 && S == 2) { /* 2x2 windows: straight-line code per window */
        for (size_t a = lo; a < hi; a++) {
            const float *restrict r0 = c->x + a * 4 * B, *restrict r1 = r0 + 2 * B;
            float *restrict g0 = c->y + a * 4 * B, *restrict g1 = g0 + 2 * B;
            const float *restrict m = c->y_in + a * B, *restrict gy = c->gy + a * B;
            for (size_t b = 0; b < B; b++) {
                float e0 = r0[2 * b] == m[b] ? 1.f : 0.f, e1 = r0[2 * b + 1] == m[b] ? 1.f : 0.f;
                float e2 = r1[2 * b] == m[b] ? 1.f : 0.f, e3 = r1[2 * b + 1] == m[b] ? 1.f : 0.f;
                const float share = gy[b] / (((e0 + e1) + e2) + e3);
                g0[2 * b] = e0 * share;
                g0[2 * b + 1] = e1 * share;
                g1[2 * b] = e2 * share;
                g1[2 * b + 1] = e3 * share;
            }
        }
        return;
    }
    for (size_t a = lo; a < hi; a++) {
        const float *restrict xa = c->x + a * R * B * S;
        float *restrict ga = c->y + a * R * B * S;
        for (size_t b = 0; b < B; b++) {
            const float m = c->y_in[a * B + b];
            float count = 0.f;
            for (size_t r = 0; r < R; r++)
                for (size_t s = 0; s < S; s++)
                    count += xa[(r * B + b) * S + s] == m ? 1.f : 0.f;
            const float share = c->gy[a * B + b] / count;
            for (size_t r = 0; r < R; r++)
                for (size_t s = 0; s < S; s++) {
                    size_t i = (r * B + b) * S + s;
                    ga[i] = (xa[i] == m ? 1.f : 0.f) * share;
                }
        }
    }
}

static sg_tensor *max_grad_windows(sg_tensor *y, sg_tensor *gy, const size_t *gsize)
{
    sg_tensor *x = y->in[0];
    sg_tensor *g = sg_alloc("max_backward", x->ndim, x->shape);
    if (!g)
        return NULL;
    win_ctx c = {.x = x->data, .y_in = y->data, .y = g->data, .gy = gy->data,
                 .R = gsize[1], .B = gsize[2], .S = gsize[3]};
    sg_parallel_for(gsize[0], x->size, max_grad_windows_range, &c);
    return g;
}

void sg_bw_max(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    sg_tensor *x = y->in[0];
    if (!sg_tl_grad_enabled && gy && gy->size == y->size && x->size > 0) {
        /* no graph to record (no create_graph): one pass for rows or windows */
        size_t inner = max_row_length(y, x), gsize[SG_MAX_DIMS];
        bool gred[SG_MAX_DIMS];
        if (inner > 0) {
            gx[0] = max_grad_rows(y, gy, inner);
            return;
        }
        if (coalesce(x, y->attr.red.mask, gsize, gred) == 4 && gred[1]) {
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
