/*
 * ops_matmul.c — matrix product with transpose flags (2-D, batched, a
 * batch of matrices times one shared matrix, and one shared matrix times a
 * batch, as convolution's W @ cols_n^T), and addmm (c + a @ b): the shape
 * checks, the recording and the local derivatives. The products themselves
 * are sg_sgemm's (kernels/gemm.c), which picks the BLAS, the level's own
 * kernels or blocked loops per shape and splits them across the threads.
 *
 * The flags let backward express dA = dY op(B)^T and dB = op(A)^T dY without
 * materialising a transpose.
 */
#include "sg_float64.h"
#include "sg_internal.h"
#include "sg_kernels.h"

/* ---- the op ---- */

/* y = op(a) op(b), plus c broadcast to y's shape when c is given: the
 * checks and the products of matmul and addmm (`op` names the caller).
 * With `into` (and no c), the product is added to that tensor, which must
 * have the product's shape and dtype, and returned: backward's in-place
 * accumulation into a parameter's gradient (sg_grad_sink). */
static sg_tensor *product(const char *op, sg_tensor *c, sg_tensor *a, sg_tensor *b, bool ta, bool tb,
                          sg_tensor *into)
{
    char ba[96], bb[96]; /* the shapes, formatted only for an error message */
#define SG_MM_SHAPES() (sg_shape_str(a, ba, sizeof ba), sg_shape_str(b, bb, sizeof bb))
    if (a->ndim < 2 || b->ndim < 2) {
        SG_MM_SHAPES();
        sg_set_error("%s: shapes %s and %s: both need at least 2 dims", op, ba, bb);
        return NULL;
    }
    int ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
    int br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
    int M = ta ? ac : ar, K = ta ? ar : ac, Kb = tb ? bc : br, N = tb ? br : bc;
    if (K != Kb) {
        SG_MM_SHAPES();
        sg_set_error("%s: shapes %s%s and %s%s do not align (%d != %d)", op, ba, ta ? "^T" : "", bb,
                     tb ? "^T" : "", K, Kb);
        return NULL;
    }
    bool shared_b = b->ndim == 2 && a->ndim > 2, shared_a = a->ndim == 2 && b->ndim > 2;
    if (!shared_a && !shared_b && a->ndim != b->ndim) {
        SG_MM_SHAPES();
        sg_set_error("%s: shapes %s and %s have different batch ranks", op, ba, bb);
        return NULL;
    }
    const sg_tensor *batched = shared_a ? b : a; /* its batch dims are y's */
    size_t batch = 1;
    for (int i = 0; i < batched->ndim - 2; i++) {
        if (!shared_a && !shared_b && a->shape[i] != b->shape[i]) {
            SG_MM_SHAPES();
            sg_set_error("%s: batch dims of %s and %s differ", op, ba, bb);
            return NULL;
        }
        batch *= (size_t)batched->shape[i];
    }
#undef SG_MM_SHAPES
    int shape[SG_MAX_DIMS];
    memcpy(shape, batched->shape, sizeof shape);
    shape[batched->ndim - 2] = M;
    shape[batched->ndim - 1] = N;
    if (c) {
        int t[SG_MAX_DIMS];
        int nd = batched->ndim;
        if (c->ndim > nd || sg_broadcast_shapes(c->ndim, c->shape, nd, shape, t) != nd ||
            memcmp(t, shape, (size_t)nd * sizeof(int)) != 0) {
            char bc_[96], by[96];
            sg_set_error("%s: %s does not broadcast to the product's shape %s", op,
                         sg_shape_str(c, bc_, sizeof bc_), sg_fmt_shape(nd, shape, by, sizeof by));
            return NULL;
        }
    }
    if (into && (c || into->dtype != batched->dtype || into->ndim != batched->ndim ||
                 memcmp(into->shape, shape, (size_t)into->ndim * sizeof(int)) != 0)) {
        char bi[96], by[96];
        sg_set_error("%s: cannot add the %s product into a %s tensor", op,
                     sg_fmt_shape(batched->ndim, shape, by, sizeof by), sg_shape_str(into, bi, sizeof bi));
        return NULL;
    }
    sg_tensor *y = into ? into : sg_alloc(op, batched->dtype, batched->ndim, shape);
    if (!y)
        return NULL;
    bool acc = c != NULL || into; /* start from c (or into's values), add the products to it */
    /* c the same (M, N) block for every product of a batch (the conv bias):
     * each product's block is filled from one copy just before its sgemm,
     * which then finds it in cache (one pass over y fewer than filling y
     * first). Outside a scope (no scratch) y is filled first. */
    bool per_matrix = !(shared_b && !ta) && K != 0;
    float *start = NULL;
    if (c && per_matrix && batch > 1 && c->ndim <= 2 && y->dtype == SG_FLOAT32)
        start = sg_scope_alloc((size_t)M * N * sizeof(float));
    if (start) {
        sg_tensor block = *y;
        block.data = start;
        block.ndim = 2;
        block.shape[0] = M;
        block.shape[1] = N;
        block.size = (size_t)M * N;
        sg_broadcast_fill(c, &block);
    } else if (c) {
        sg_broadcast_fill(c, y);
    }
    if (y->size == 0) {
        /* nothing to compute (and batch * M may not fit an int) */
    } else if (y->dtype == SG_FLOAT64) {
        size_t sa = shared_a ? 0 : (size_t)ar * ac, sb = shared_b ? 0 : (size_t)br * bc, sy = (size_t)M * N;
        for (size_t i = 0; i < batch; i++)
            sg64_gemm(ta, tb, M, N, K, a->data64 + i * sa, ac, b->data64 + i * sb, bc, y->data64 + i * sy, N, acc);
    } else if (shared_b && !ta) {
        /* (..., M, K) @ (K, N): one product with the batch folded into M */
        int rows = (int)(batch * (size_t)M); /* not a->size / K: K may be 0 */
        sg_sgemm(false, tb, rows, N, K, a->data, ac, b->data, bc, y->data, N, acc);
    } else if (K == 0) { /* an empty sum: c, into's values, or zeros */
        if (!c && !into)
            memset(y->data, 0, y->size * sizeof(float));
    } else {
        sg_gemm_batch j = {.ta = ta, .tb = tb, .accumulate = acc, .M = M, .N = N, .K = K, .lda = ac, .ldb = bc,
                       .a = a->data, .b = b->data, .y = y->data,
                       .sa = shared_a ? 0 : (size_t)ar * ac, .sb = shared_b ? 0 : (size_t)br * bc,
                       .sy = (size_t)M * N, .start = start};
        sg_sgemm_batch(&j, batch);
    }
    if (!into) {
        y->attr.mm.ta = ta;
        y->attr.mm.tb = tb;
    }
    return y;
}

/* A 1-D operand, NumPy's way: a (K) as (1,K), b (K) as (K,1), and that dim
 * removed from the product: reshape, matmul, reshape, all recorded. Its
 * transpose flag is ignored (a vector is its own transpose). */
static sg_tensor *matmul_vector(sg_tensor *a, sg_tensor *b, bool ta, bool tb)
{
    bool va = a->ndim == 1, vb = b->ndim == 1;
    int Ka = va ? a->shape[0] : a->shape[a->ndim - (ta ? 2 : 1)];
    int Kb = vb ? b->shape[0] : b->shape[b->ndim - (tb ? 1 : 2)];
    if (Ka != Kb) {
        char ba[96], bb[96];
        sg_set_error("matmul: shapes %s%s and %s%s do not align (%d != %d)", sg_shape_str(a, ba, sizeof ba),
                     ta && !va ? "^T" : "", sg_shape_str(b, bb, sizeof bb), tb && !vb ? "^T" : "", Ka, Kb);
        return NULL;
    }
    sg_tensor *a2 = va ? sg_reshape(a, 2, (int[]){1, Ka}) : a;
    sg_tensor *b2 = vb ? sg_reshape(b, 2, (int[]){Kb, 1}) : b;
    sg_tensor *y = sg_matmul_t(a2, b2, ta && !va, tb && !vb);
    if (!y)
        return NULL;
    int shape[SG_MAX_DIMS], nd = 0;
    for (int i = 0; i < y->ndim; i++)
        if (!((va && i == y->ndim - 2) || (vb && i == y->ndim - 1)))
            shape[nd++] = y->shape[i];
    return sg_reshape(y, nd, shape);
}

sg_tensor *sg_matmul_t(sg_tensor *a, sg_tensor *b, bool ta, bool tb)
{
    SG_CHECK_INPUT("matmul", a);
    SG_CHECK_INPUT("matmul", b);
    if (a->ndim == 0 || b->ndim == 0) {
        char ba[96], bb[96];
        sg_set_error("matmul: shapes %s and %s: a 0-d operand has no matrix product (use sg_mul)",
                     sg_shape_str(a, ba, sizeof ba), sg_shape_str(b, bb, sizeof bb));
        return NULL;
    }
    if (a->ndim == 1 || b->ndim == 1) {
        SG_API_BEGIN("matmul");
        sg_tensor *y = matmul_vector(a, b, ta, tb);
        SG_API_END();
        return y;
    }
    if (sg_promote(&a, &b) < 0)
        return NULL;
    sg_tensor *in[2] = {a, b};
    return sg_finish(product("matmul", NULL, a, b, ta, tb, NULL), SG_OP_MATMUL, in, 2);
}

sg_tensor *sg_addmm_t(sg_tensor *c, sg_tensor *a, sg_tensor *b, bool ta, bool tb)
{
    SG_CHECK_INPUT("addmm", c);
    SG_CHECK_INPUT("addmm", a);
    SG_CHECK_INPUT("addmm", b);
    /* torch.result_type of the three: a 0-d c takes the product's dtype */
    if (sg_promote(&a, &b) < 0)
        return NULL;
    if (c->dtype != a->dtype && c->ndim == 0)
        c = sg_to_dtype(c, a->dtype);
    else if (c->dtype != a->dtype && (sg_promote(&c, &a) < 0 || sg_promote(&a, &b) < 0))
        return NULL;
    if (!c)
        return NULL;
    sg_tensor *in[3] = {c, a, b};
    return sg_finish(product("addmm", c, a, b, ta, tb, NULL), SG_OP_ADDMM, in, 3);
}

sg_tensor *sg_addmm(sg_tensor *c, sg_tensor *a, sg_tensor *b) { return sg_addmm_t(c, a, b, false, false); }

sg_tensor *sg_matmul(sg_tensor *a, sg_tensor *b) { return sg_matmul_t(a, b, false, false); }

/* The product of x's dims but the last (the rows of x seen as a matrix). */
static size_t rows_of(const sg_tensor *x)
{
    size_t r = 1;
    for (int i = 0; i < x->ndim - 1; i++)
        r *= (size_t)x->shape[i];
    return r;
}

/* True if the values of x and y share memory. */
static bool overlap(const sg_tensor *x, const sg_tensor *y)
{
    const char *xb = x->bytes, *yb = y->bytes;
    return xb < yb + y->size * sg_dtype_size(y->dtype) && yb < xb + x->size * sg_dtype_size(x->dtype);
}

/* op(a) op(b) as an input's gradient: added straight into `into` (the
 * input's own gradient buffer, from sg_grad_sink) when there is one and
 * neither operand reads it (sg_matmul(sg_grad(w), w)), returning the
 * marker sg_grad_added; else a new product (recorded under create_graph)
 * that the pass accumulates. */
static sg_tensor *grad_product(sg_tensor *into, sg_tensor *a, sg_tensor *b, bool ta, bool tb)
{
    if (into && a->dtype == into->dtype && b->dtype == into->dtype && !overlap(into, a) && !overlap(into, b))
        return product("matmul", NULL, a, b, ta, tb, into) ? &sg_grad_added : NULL;
    return sg_matmul_t(a, b, ta, tb);
}

/* A shared operand's gradient is the sum over the batch of the per-item
 * gradients: a batched product reduced by sum_to (or, for a shared b next
 * to an untransposed batch, one product of the flattened batch). Where an
 * input's gradient is one product of its own shape (a linear layer's dW),
 * it may go straight into the input's .grad (sg_grad_sink). */
static void product_grads(sg_tensor *a, sg_tensor *b, bool ta, bool tb, sg_tensor *gy, sg_tensor **gx)
{
    if (a->requires_grad) {
        bool shared_a = a->ndim == 2 && b->ndim > 2;
        sg_tensor *into = shared_a ? NULL : sg_grad_sink(a);
        gx[0] = ta ? grad_product(into, b, gy, tb, true) : grad_product(into, gy, b, false, !tb);
        if (shared_a)
            gx[0] = sg_sum_to(gx[0], 2, a->shape);
    }
    if (!b->requires_grad)
        return;
    bool shared_b = b->ndim == 2 && a->ndim > 2;
    if (shared_b && !ta) {
        int K = a->shape[a->ndim - 1], N = gy->shape[gy->ndim - 1];
        int a2[2] = {-1, K}, g2[2] = {-1, N};
        a2[0] = g2[0] = (int)rows_of(a); /* not a->size / K: K may be 0 */
        sg_tensor *af = sg_reshape(a, 2, a2), *gf = sg_reshape(gy, 2, g2);
        sg_tensor *into = af && gf ? sg_grad_sink(b) : NULL;
        gx[1] = tb ? grad_product(into, gf, af, true, false) : grad_product(into, af, gf, true, false);
        return;
    }
    sg_tensor *into = shared_b ? NULL : sg_grad_sink(b);
    gx[1] = tb ? grad_product(into, gy, a, true, ta) : grad_product(into, a, gy, !ta, false);
    if (shared_b)
        gx[1] = sg_sum_to(gx[1], 2, b->shape);
}

void sg_bw_matmul(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    product_grads(y->in[0], y->in[1], y->attr.mm.ta, y->attr.mm.tb, gy, gx);
}

/* y = c + op(a) op(b): dc = sum_to(dy, c's shape), then matmul's. */
void sg_bw_addmm(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    sg_tensor *c = y->in[0];
    if (c->requires_grad)
        gx[0] = sg_sum_to(gy, c->ndim, c->shape);
    product_grads(y->in[1], y->in[2], y->attr.mm.ta, y->attr.mm.tb, gy, gx + 1);
}
