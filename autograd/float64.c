/*
 * float64.c — the float64 paths of the primitives, the cast primitive, and
 * dtype promotion.
 *
 * float64 exists for checking gradients (central differences in float32
 * confirm a derivative only to about 1e-3 relative), so these loops aim at
 * exactness and clarity, not speed: plain C on one thread, compiled once
 * (not per instruction-set level), each op's float32 path untouched. The
 * values follow the float32 kernels' rules (pow's special exponents, max's
 * comparison `v > m`, unfold's rows and columns) so both dtypes compute the
 * same function; products use the BLAS's dgemm where it is linked.
 *
 * Index walks: a tensor of rank n seen through strides (0 on a broadcast
 * or reduced dim) is walked in row-major order of the result with an
 * odometer; every op here is a special case of that walk.
 */
#include "sg_internal.h"
#include "sg_kernels.h"

#include <math.h>
#ifdef SG_HAVE_CBLAS
#include <cblas.h>
#endif

/* Strides of x's dims seen in rank n (right-aligned, NumPy broadcasting):
 * 0 where x has no such dim or a dim of 1, the row-major stride otherwise. */
static void view_strides(const sg_tensor *x, int n, size_t *st)
{
    size_t r = 1;
    for (int i = n - 1; i >= 0; i--) {
        int ix = i - (n - x->ndim);
        int d = ix >= 0 ? x->shape[ix] : 1;
        st[i] = d == 1 ? 0 : r;
        r *= (size_t)d;
    }
}

/* Advance the odometer idx over shape (rank n), updating offsets off[k]
 * by strides st[k][dim] for each of the m walked operands. */
static void odometer_next(int n, const int *shape, int *idx, int m, size_t *off, size_t (*st)[SG_MAX_DIMS])
{
    for (int d = n - 1; d >= 0; d--) {
        if (++idx[d] < shape[d]) {
            for (int k = 0; k < m; k++)
                off[k] += st[k][d];
            return;
        }
        idx[d] = 0;
        for (int k = 0; k < m; k++)
            off[k] -= st[k][d] * (size_t)(shape[d] - 1);
    }
}

static double bin_value(sg_kbin k, double a, double b)
{
    switch (k) {
    case SG_KBIN_ADD: return a + b;
    case SG_KBIN_SUB: return a - b;
    case SG_KBIN_MUL: return a * b;
    case SG_KBIN_DIV: return a / b;
    case SG_KBIN_GT: return a > b ? 1.0 : 0.0;
    case SG_KBIN_EQ: return a == b ? 1.0 : 0.0;
    }
    return NAN;
}

void sg64_binary(sg_kbin k, sg_tensor *y, const sg_tensor *a, const sg_tensor *b)
{
    int n = y->ndim, idx[SG_MAX_DIMS] = {0};
    size_t st[2][SG_MAX_DIMS], off[2] = {0, 0};
    view_strides(a, n, st[0]);
    view_strides(b, n, st[1]);
    for (size_t i = 0; i < y->size; i++) {
        y->data64[i] = bin_value(k, a->data64[off[0]], b->data64[off[1]]);
        odometer_next(n, y->shape, idx, 2, off, st);
    }
}

void sg64_unary(sg_kun k, double *restrict y, const double *restrict x, double p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        switch (k) {
        case SG_KUN_NEG: y[i] = -v; break;
        case SG_KUN_EXP: y[i] = exp(v); break;
        case SG_KUN_LOG: y[i] = log(v); break;
        case SG_KUN_RELU: y[i] = v > 0.0 ? v : 0.0; break;
        case SG_KUN_ADDS: y[i] = v + p; break;
        case SG_KUN_MULS: y[i] = v * p; break;
        case SG_KUN_POW: /* the float32 kernel's special exponents */
            y[i] = p == 2.0 ? v * v : p == 1.0 ? v : p == -1.0 ? 1.0 / v : p == 0.5 ? sqrt(v) : pow(v, p);
            break;
        }
    }
}

void sg64_reduce(double *restrict y, const double *restrict x, int ndim, const int *shape, uint32_t mask,
                 int kind)
{
    /* y's strides in x's rank, 0 on reduced dims */
    size_t st[1][SG_MAX_DIMS], r = 1, ysize = 1, xsize = sg_shape_size(ndim, shape);
    for (int i = ndim - 1; i >= 0; i--) {
        bool red = (mask >> i) & 1u;
        st[0][i] = red ? 0 : r;
        if (!red) {
            r *= (size_t)shape[i];
            ysize *= (size_t)shape[i];
        }
    }
    for (size_t i = 0; i < ysize; i++)
        y[i] = kind == 0 ? 0.0 : -INFINITY;
    int idx[SG_MAX_DIMS] = {0};
    size_t off[1] = {0};
    for (size_t i = 0; i < xsize; i++) {
        double v = x[i];
        if (kind == 0)
            y[off[0]] += v;
        else
            y[off[0]] = v > y[off[0]] ? v : y[off[0]];
        odometer_next(ndim, shape, idx, 1, off, st);
    }
}

void sg64_broadcast(sg_tensor *y, const sg_tensor *x)
{
    int idx[SG_MAX_DIMS] = {0};
    size_t st[1][SG_MAX_DIMS], off[1] = {0};
    view_strides(x, y->ndim, st[0]);
    for (size_t i = 0; i < y->size; i++) {
        y->data64[i] = x->data64[off[0]];
        odometer_next(y->ndim, y->shape, idx, 1, off, st);
    }
}

void sg64_permute(double *restrict y, const double *restrict x, int n, const int *xs, const int *perm)
{
    size_t xst[SG_MAX_DIMS], st[1][SG_MAX_DIMS], r = 1, total = 1;
    int ys[SG_MAX_DIMS] = {0}, idx[SG_MAX_DIMS] = {0};
    for (int i = n - 1; i >= 0; i--) {
        xst[i] = r;
        r *= (size_t)xs[i];
    }
    for (int i = 0; i < n; i++) {
        ys[i] = xs[perm[i]];
        st[0][i] = xst[perm[i]];
        total *= (size_t)ys[i];
    }
    size_t off[1] = {0};
    for (size_t i = 0; i < total; i++) {
        y[i] = x[off[0]];
        odometer_next(n, ys, idx, 1, off, st);
    }
}

void sg64_gemm(bool ta, bool tb, int M, int N, int K, const double *A, int lda, const double *B, int ldb,
               double *C, int ldc, bool accumulate)
{
    if (M == 0 || N == 0)
        return;
#ifdef SG_HAVE_CBLAS
    if (K > 0) {
        cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.0,
                    A, lda, B, ldb, accumulate ? 1.0 : 0.0, C, ldc);
        return;
    }
#endif
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = accumulate ? C[(size_t)i * ldc + j] : 0.0;
            for (int k = 0; k < K; k++)
                s += A[ta ? (size_t)k * lda + i : (size_t)i * lda + k] *
                     B[tb ? (size_t)j * ldb + k : (size_t)k * ldb + j];
            C[(size_t)i * ldc + j] = s;
        }
}

/* The window element (row of image n at output pixel (oh, ow), column
 * (c, kh, kw)) and where it reads from: the flat index into x, or -1 for
 * padding. */
static ptrdiff_t window_src(const sg_kwindow *g, int n, int c, int oh, int ow, int kh, int kw)
{
    const sg_window *w = &g->w;
    int ih = oh * w->sh - w->ph + kh, iw = ow * w->sw - w->pw + kw;
    if (ih < 0 || ih >= g->H || iw < 0 || iw >= g->W)
        return -1;
    return (((ptrdiff_t)n * g->C + c) * g->H + ih) * g->W + iw;
}

/* im2col (fold = false) or its adjoint col2im (fold = true) of N images:
 * cols is (N*OH*OW, C*KH*KW) as in ops_unfold.c. */
void sg64_window(bool fold, double *restrict cols, double *restrict x, const sg_kwindow *g, int N)
{
    const sg_window *w = &g->w;
    size_t ncols = (size_t)g->C * w->kh * w->kw;
    if (fold)
        memset(x, 0, (size_t)N * g->C * g->H * g->W * sizeof(double));
    for (int n = 0; n < N; n++)
        for (int oh = 0; oh < g->OH; oh++)
            for (int ow = 0; ow < g->OW; ow++) {
                double *row = cols + (((size_t)n * g->OH + oh) * g->OW + ow) * ncols;
                size_t j = 0;
                for (int c = 0; c < g->C; c++)
                    for (int kh = 0; kh < w->kh; kh++)
                        for (int kw = 0; kw < w->kw; kw++, j++) {
                            ptrdiff_t s = window_src(g, n, c, oh, ow, kh, kw);
                            if (fold) {
                                if (s >= 0)
                                    x[s] += row[j];
                            } else {
                                row[j] = s >= 0 ? x[s] : (double)w->pad_value;
                            }
                        }
            }
}

/* ---- cast and promotion ---- */

sg_tensor *sg_to_dtype(sg_tensor *x, sg_dtype dtype)
{
    SG_CHECK_INPUT("to_dtype", x);
    if (dtype != SG_FLOAT32 && dtype != SG_FLOAT64) {
        sg_set_error("to_dtype: unknown dtype %d", (int)dtype);
        return NULL;
    }
    if (x->dtype == dtype)
        return x; /* like torch's .to(): the tensor itself */
    sg_tensor *y = sg_alloc("to_dtype", dtype, x->ndim, x->shape);
    if (!y)
        return NULL;
    if (dtype == SG_FLOAT64)
        for (size_t i = 0; i < x->size; i++)
            y->data64[i] = x->data[i];
    else
        for (size_t i = 0; i < x->size; i++)
            y->data[i] = (float)x->data64[i];
    /* no NaN check: a float64 value past FLT_MAX becoming inf is the
     * conversion's rule, not a fault of this op */
    return sg_record(y, SG_OP_CAST, &x, 1);
}

/* The gradient goes back converted to the input's dtype. */
void sg_bw_cast(sg_tensor *y, sg_tensor *gy, sg_tensor **gx) { gx[0] = sg_to_dtype(gy, y->in[0]->dtype); }

/* torch.result_type for tensors of the two floating dtypes: float64 if
 * either is, except that a 0-d tensor does not promote one with dims. */
static sg_dtype result_type(const sg_tensor *a, const sg_tensor *b)
{
    if (a->dtype == b->dtype)
        return a->dtype;
    if ((a->ndim == 0) != (b->ndim == 0))
        return a->ndim ? a->dtype : b->dtype;
    return SG_FLOAT64;
}

int sg_promote_mixed(sg_tensor **a, sg_tensor **b)
{
    sg_dtype dt = result_type(*a, *b);
    *a = sg_to_dtype(*a, dt);
    *b = sg_to_dtype(*b, dt);
    return *a && *b ? 0 : -1;
}

int sg_promote_all(sg_tensor **xs, int n)
{
    sg_dtype dt = xs[0]->dtype;
    for (int i = 1; i < n; i++)
        dt = xs[i]->dtype == SG_FLOAT64 || dt == SG_FLOAT64 ? SG_FLOAT64 : SG_FLOAT32;
    for (int i = 0; i < n; i++)
        if (!(xs[i] = sg_to_dtype(xs[i], dt)))
            return -1;
    return 0;
}
