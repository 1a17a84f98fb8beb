/*
 * ops_elementwise.c — add, sub, mul, div (NumPy broadcasting), the unary
 * primitives, the 0/1 comparisons, and their local derivatives.
 *
 * Broadcasting: both inputs are viewed with the output's rank, a stride of 0
 * on every broadcast dim; the innermost dim is a tight loop and the outer
 * dims are walked with an odometer. Equal shapes and scalar operands take
 * direct loops. Backward sums a broadcast input's gradient back to its shape.
 * Large tensors are split into blocks (or blocks of rows) across threads.
 *
 * relu's local derivative is dy * (x > 0); without create_graph (nothing to
 * record) it runs as one fused pass with the same values.
 */
#include "sg_float64.h"
#include "sg_internal.h"
#include "sg_kernels.h"
#include "sg_parallel.h"

/* The loops are the per-level kernels of kernels/elementwise.c; bin_name
 * is indexed by their sg_kbin. */
static const char *bin_name[] = {"add", "sub", "mul", "div", "gt", "eq"};

typedef struct bin_ctx {
    sg_kbin k;
    float *y;
    const float *a, *b;
    size_t sa, sb;
    /* broadcasting: coalesced dims, innermost first */
    sg_kbcast bc;
    size_t rows_per, outer;
} bin_ctx;

static void bin_block_range(void *arg, size_t lo, size_t hi)
{
    const bin_ctx *c = arg;
    sg_kern->binary(c->k, c->y + lo, c->a + lo * c->sa, c->sa, c->b + lo * c->sb, c->sb, hi - lo);
}

/* The binary kernel over n elements, in blocks across threads when large. */
static void bin_blocks(sg_kbin k, float *y, const float *a, size_t sa, const float *b, size_t sb,
                       size_t n)
{
    bin_ctx c = {.k = k, .y = y, .a = a, .b = b, .sa = sa, .sb = sb};
    sg_parallel_for_elems(n, n, bin_block_range, &c);
}

/* chunks [lo, hi) of rows_per rows of the broadcasting case */
static void bin_row_range(void *arg, size_t lo, size_t hi)
{
    const bin_ctx *c = arg;
    size_t o0 = lo * c->rows_per, o1 = hi * c->rows_per < c->outer ? hi * c->rows_per : c->outer;
    sg_kern->binary_rows(c->k, c->y, c->a, c->b, &c->bc, o0, o1);
}

/* The broadcasting case. Both inputs get strides in the output's rank (0
 * where broadcast); dims of size 1 are dropped and neighbouring dims that
 * step the same way in a and b are merged, so (N*OH*OW, C) + (C) becomes
 * rows of C and (N,C,H,W) * (1,C,1,1) becomes (N, C, H*W). The innermost
 * dim is a tight loop; the rows are split across threads, each starting
 * its odometer from its first row. */
static void bin_broadcast(sg_kbin k, sg_tensor *y, const sg_tensor *a, const sg_tensor *b, int n,
                          const int *shape)
{
    size_t st_a[SG_MAX_DIMS], st_b[SG_MAX_DIMS];
    size_t ra = 1, rb = 1;
    for (int i = n - 1; i >= 0; i--) {
        int ia = i - (n - a->ndim), ib = i - (n - b->ndim);
        int da = ia >= 0 ? a->shape[ia] : 1, db = ib >= 0 ? b->shape[ib] : 1;
        st_a[i] = da == 1 ? 0 : ra;
        st_b[i] = db == 1 ? 0 : rb;
        ra *= (size_t)da;
        rb *= (size_t)db;
    }
    /* coalesce, from the innermost dim outwards */
    bin_ctx c = {.k = k, .y = y->data, .a = a->data, .b = b->data};
    int m = 0; /* dims kept, stored innermost first */
    for (int i = n - 1; i >= 0; i--) {
        if (shape[i] == 1)
            continue;
        sg_kbcast *bc = &c.bc;
        if (m && st_a[i] == bc->ca[m - 1] * bc->dim[m - 1] && st_b[i] == bc->cb[m - 1] * bc->dim[m - 1]) {
            bc->dim[m - 1] *= (size_t)shape[i];
            continue;
        }
        bc->ca[m] = st_a[i];
        bc->cb[m] = st_b[i];
        bc->dim[m++] = (size_t)shape[i];
    }
    if (m == 0) { /* every dim is 1 */
        sg_kern->binary(k, y->data, a->data, 0, b->data, 0, 1);
        return;
    }
    c.bc.m = m;
    const size_t inner = c.bc.dim[0];
    c.outer = y->size / inner;
    c.rows_per = inner >= SG_PAR_BLOCK ? 1 : SG_PAR_BLOCK / inner;
    sg_parallel_for((c.outer + c.rows_per - 1) / c.rows_per, y->size, bin_row_range, &c);
}

static sg_tensor *binary(sg_kbin k, enum sg_op op, sg_tensor *a, sg_tensor *b)
{
    SG_CHECK_INPUT(bin_name[k], a);
    SG_CHECK_INPUT(bin_name[k], b);
    if (sg_promote(&a, &b) < 0)
        return NULL;
    int shape[SG_MAX_DIMS];
    int n = sg_broadcast_shapes(a->ndim, a->shape, b->ndim, b->shape, shape);
    if (n < 0 || n > SG_MAX_DIMS) {
        char ba[96], bb[96];
        sg_set_error("%s: shapes %s and %s cannot be broadcast together", bin_name[k],
                     sg_shape_str(a, ba, sizeof ba), sg_shape_str(b, bb, sizeof bb));
        return NULL;
    }
    sg_tensor *y = sg_alloc(bin_name[k], a->dtype, n, shape);
    if (!y)
        return NULL;
    if (y->size == 0) {
        /* nothing to compute */
    } else if (y->dtype == SG_FLOAT64) {
        sg64_binary(k, y, a, b);
    } else if (a->size == y->size && b->size == y->size) {
        bin_blocks(k, y->data, a->data, 1, b->data, 1, y->size);
    } else if (b->size == 1 && a->size == y->size) {
        bin_blocks(k, y->data, a->data, 1, b->data, 0, y->size);
    } else if (a->size == 1 && b->size == y->size) {
        bin_blocks(k, y->data, a->data, 0, b->data, 1, y->size);
    } else {
        bin_broadcast(k, y, a, b, n, shape);
    }
    if (k == SG_KBIN_GT || k == SG_KBIN_EQ)
        return y; /* masks carry no gradient */
    sg_tensor *in[2] = {a, b};
    return sg_finish(y, op, in, 2);
}

sg_tensor *sg_add(sg_tensor *a, sg_tensor *b) { return binary(SG_KBIN_ADD, SG_OP_ADD, a, b); }
sg_tensor *sg_sub(sg_tensor *a, sg_tensor *b) { return binary(SG_KBIN_SUB, SG_OP_SUB, a, b); }
sg_tensor *sg_mul(sg_tensor *a, sg_tensor *b) { return binary(SG_KBIN_MUL, SG_OP_MUL, a, b); }
sg_tensor *sg_div(sg_tensor *a, sg_tensor *b) { return binary(SG_KBIN_DIV, SG_OP_DIV, a, b); }
sg_tensor *sg_gt(sg_tensor *a, sg_tensor *b) { return binary(SG_KBIN_GT, SG_OP_LEAF, a, b); }
sg_tensor *sg_eq(sg_tensor *a, sg_tensor *b) { return binary(SG_KBIN_EQ, SG_OP_LEAF, a, b); }

/* ---- unary ---- */

typedef struct un_ctx {
    sg_kun k;
    float *y;
    const float *x;
    float p; /* the float32 kernels compute with p rounded to float */
} un_ctx;

static void un_block_range(void *arg, size_t lo, size_t hi)
{
    const un_ctx *c = arg;
    sg_kern->unary(c->k, c->y + lo, c->x + lo, c->p, hi - lo);
}

static sg_tensor *unary(sg_kun k, enum sg_op op, sg_tensor *x, double p)
{
    const char *name = sg_op_table[op].name;
    SG_CHECK_INPUT(name, x);
    sg_tensor *y = sg_alloc(name, x->dtype, x->ndim, x->shape);
    if (!y)
        return NULL;
    if (x->dtype == SG_FLOAT64) {
        sg64_unary(k, y->data64, x->data64, p, x->size);
    } else {
        un_ctx c = {.k = k, .y = y->data, .x = x->data, .p = (float)p};
        sg_parallel_for_elems(x->size, x->size, un_block_range, &c);
    }
    y->attr.p = p;
    return sg_finish(y, op, &x, 1);
}

sg_tensor *sg_neg(sg_tensor *x) { return unary(SG_KUN_NEG, SG_OP_NEG, x, 0.0); }
sg_tensor *sg_exp(sg_tensor *x) { return unary(SG_KUN_EXP, SG_OP_EXP, x, 0.0); }
sg_tensor *sg_log(sg_tensor *x) { return unary(SG_KUN_LOG, SG_OP_LOG, x, 0.0); }
sg_tensor *sg_relu(sg_tensor *x) { return unary(SG_KUN_RELU, SG_OP_RELU, x, 0.0); }
sg_tensor *sg_pow(sg_tensor *x, double p) { return unary(SG_KUN_POW, SG_OP_POW, x, p); }
sg_tensor *sg_add_scalar(sg_tensor *x, double s) { return unary(SG_KUN_ADDS, SG_OP_ADD_SCALAR, x, s); }
sg_tensor *sg_mul_scalar(sg_tensor *x, double s) { return unary(SG_KUN_MULS, SG_OP_MUL_SCALAR, x, s); }

/* derived conveniences: compositions, no backward of their own */
/* wrappers: their messages name them, not the primitives they are made of */
sg_tensor *sg_rsub_scalar(double s, sg_tensor *x)
{
    SG_API_BEGIN("rsub_scalar");
    sg_tensor *y = sg_add_scalar(sg_neg(x), s);
    SG_API_END();
    return y;
}

sg_tensor *sg_rdiv_scalar(double s, sg_tensor *x)
{
    SG_API_BEGIN("rdiv_scalar");
    sg_tensor *y = sg_mul_scalar(sg_pow(x, -1.0), s);
    SG_API_END();
    return y;
}

sg_tensor *sg_sqrt(sg_tensor *x)
{
    SG_API_BEGIN("sqrt");
    sg_tensor *y = sg_pow(x, 0.5);
    SG_API_END();
    return y;
}

sg_tensor *sg_square(sg_tensor *x)
{
    SG_API_BEGIN("square");
    sg_tensor *y = sg_pow(x, 2.0);
    SG_API_END();
    return y;
}

/* ---- local derivatives, written with the ops above ---- */

/* Sum a gradient back to the shape of the input it belongs to. */
static sg_tensor *unbroadcast(sg_tensor *g, const sg_tensor *x)
{
    if (!g || sg_same_shape(g, x))
        return g;
    return sg_sum_to(g, x->ndim, x->shape);
}

#define NEEDS(y, i) ((y)->in[i]->requires_grad)

void sg_bw_add(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    if (NEEDS(y, 0)) gx[0] = unbroadcast(gy, y->in[0]);
    if (NEEDS(y, 1)) gx[1] = unbroadcast(gy, y->in[1]);
}

void sg_bw_sub(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    if (NEEDS(y, 0)) gx[0] = unbroadcast(gy, y->in[0]);
    if (NEEDS(y, 1)) gx[1] = unbroadcast(sg_neg(gy), y->in[1]);
}

void sg_bw_mul(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    if (NEEDS(y, 0)) gx[0] = unbroadcast(sg_mul(gy, y->in[1]), y->in[0]);
    if (NEEDS(y, 1)) gx[1] = unbroadcast(sg_mul(gy, y->in[0]), y->in[1]);
}

/* At b = 0: da = dy / 0 = ±inf, db = -dy a / 0 = ∓inf (NaN for a = 0),
 * PyTorch's `grad / other` and `-grad * self / other^2`. */
void sg_bw_div(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    sg_tensor *a = y->in[0], *b = y->in[1];
    if (NEEDS(y, 0)) gx[0] = unbroadcast(sg_div(gy, b), a);
    /* d(a/b)/db = -a/b^2, written from the inputs so it differentiates again */
    if (NEEDS(y, 1)) gx[1] = unbroadcast(sg_neg(sg_div(sg_mul(gy, a), sg_mul(b, b))), b);
}

void sg_bw_neg(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    SG_UNUSED(y);
    gx[0] = sg_neg(gy);
}

/* dx = dy * p * x^(p-1), and dx = 0 for p = 0 (PyTorch's pow_backward:
 * zeros_like(x) when the exponent is 0), so x^0 has derivative 0 even at
 * x = 0 instead of 0 * 0^-1 = NaN. The derivative of x^1 is 1 * x^0, whose
 * own derivative is then 0, so every higher derivative of an integer power
 * at 0 is finite (d2/dx2 x = 0, d3/dx3 x^2 = 0). At x = 0 with 0 < p < 1
 * (sqrt) the derivative is +inf, like PyTorch's sqrt'(0); a negative base
 * with a non-integer p is NaN in the forward pass and in the derivative. */
void sg_bw_pow(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    double p = y->attr.p;
    sg_tensor *x = y->in[0];
    if (p == 0.0) {
        gx[0] = gy ? sg_zeros_like(x) : NULL;
        return;
    }
    /* p - 1 in the tensor's precision: for float32 as before (float) */
    double pm1 = x->dtype == SG_FLOAT64 ? p - 1.0 : (double)((float)p - 1.f);
    gx[0] = sg_mul(gy, sg_mul_scalar(sg_pow(x, pm1), p));
}

void sg_bw_add_scalar(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    SG_UNUSED(y);
    gx[0] = gy;
}

void sg_bw_mul_scalar(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    gx[0] = sg_mul_scalar(gy, y->attr.p);
}

/* exp overflows to inf and so does its derivative (PyTorch's
 * `grad * result`); at -inf both are 0. */
void sg_bw_exp(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    /* dy/dx = exp(x) = y; y has x as input, so this differentiates again */
    gx[0] = sg_mul(gy, y);
}

/* dx = dy / x: +inf at x = 0 (log'(0) = +inf, log''(0) = -inf), PyTorch's
 * `grad / self`; for x < 0 the value is NaN and the derivative 1/x. */
void sg_bw_log(sg_tensor *y, sg_tensor *gy, sg_tensor **gx) { gx[0] = sg_div(gy, y->in[0]); }

typedef struct relu_grad_ctx {
    float *g;
    const float *x, *gy;
} relu_grad_ctx;

static void relu_grad_range(void *arg, size_t lo, size_t hi)
{
    const relu_grad_ctx *c = arg;
    sg_kern->relu_grad(c->g + lo, c->x + lo, c->gy + lo, hi - lo);
}

/* dx = dy * (x > 0) in one pass: what sg_mul(gy, sg_gt(x, 0)) computes,
 * value for value, without the mask tensor. */
static sg_tensor *relu_grad(sg_tensor *x, sg_tensor *gy)
{
    if (!gy)
        return NULL;
    sg_tensor *g = sg_alloc("relu_backward", x->dtype, x->ndim, x->shape);
    if (!g)
        return NULL;
    relu_grad_ctx c = {.g = g->data, .x = x->data, .gy = gy->data};
    sg_parallel_for_elems(x->size, x->size, relu_grad_range, &c);
    return g;
}

/* relu'(0) = 0 (x > 0, PyTorch's threshold_backward); the mask is a
 * constant, so every higher derivative is 0. */
void sg_bw_relu(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    if (!sg_tl_grad_enabled && y->dtype == SG_FLOAT32 && sg_same_shape(gy, y)) {
        /* no graph to record (no create_graph): the fused kernel */
        gx[0] = relu_grad(y->in[0], gy);
        return;
    }
    sg_tensor *zero = sg_full_dtype(y->dtype, 0.0, 0, NULL);
    gx[0] = sg_mul(gy, sg_gt(y->in[0], zero));
}
