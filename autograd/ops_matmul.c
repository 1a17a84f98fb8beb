/*
 * ops_matmul.c — matrix product with transpose flags (2-D, batched, a
 * batch of matrices times one shared matrix, and one shared matrix times a
 * batch, as convolution's W @ cols_n^T) on top of sg_sgemm, which uses
 * a BLAS when one was found at build time and a cache-blocked loop nest
 * otherwise.
 *
 * The flags let backward express dA = dY op(B)^T and dB = op(A)^T dY without
 * materialising a transpose.
 *
 * sg_sgemm picks per shape: convolution's thin products (a short inner
 * dimension, or a small output over a very long one) go to the engine's
 * own kernels (gemm_small.c); everything else to the BLAS, with OpenBLAS
 * held at one thread and the product cut into pieces (rows of C, columns,
 * or slices of K summed afterwards) that the engine's thread pool runs.
 */
#include "sg_internal.h"
#include "sg_parallel.h"
#include "sg_gemm.h"

#ifdef SG_HAVE_CBLAS
#include <cblas.h>
#endif

/* ---- sgemm ---- */

#ifndef SG_HAVE_CBLAS
/* C(i, j) over a block: op(A) is M x K, op(B) is K x N. The i-k-j order keeps
 * the innermost loop contiguous in B and C so the compiler vectorises it. */
static void gemm_nn(int M, int N, int K, const float *restrict A, int lda,
                    const float *restrict B, int ldb, float *restrict C, int ldc)
{
    enum { KB = 256, NB = 1024 };
    for (int k0 = 0; k0 < K; k0 += KB) {
        int k1 = k0 + KB < K ? k0 + KB : K;
        for (int j0 = 0; j0 < N; j0 += NB) {
            int j1 = j0 + NB < N ? j0 + NB : N;
            for (int i = 0; i < M; i++) {
                float *restrict c = C + (size_t)i * ldc;
                for (int k = k0; k < k1; k++) {
                    float a = A[(size_t)i * lda + k];
                    const float *restrict b = B + (size_t)k * ldb;
                    for (int j = j0; j < j1; j++)
                        c[j] += a * b[j];
                }
            }
        }
    }
}

static void gemm_tn(int M, int N, int K, const float *restrict A, int lda,
                    const float *restrict B, int ldb, float *restrict C, int ldc)
{
    for (int k = 0; k < K; k++) {
        const float *restrict b = B + (size_t)k * ldb;
        const float *restrict a = A + (size_t)k * lda;
        for (int i = 0; i < M; i++) {
            float av = a[i];
            float *restrict c = C + (size_t)i * ldc;
            for (int j = 0; j < N; j++)
                c[j] += av * b[j];
        }
    }
}

static void gemm_nt(int M, int N, int K, const float *restrict A, int lda,
                    const float *restrict B, int ldb, float *restrict C, int ldc)
{
    for (int i = 0; i < M; i++) {
        const float *restrict a = A + (size_t)i * lda;
        for (int j = 0; j < N; j++) {
            const float *restrict b = B + (size_t)j * ldb;
            float acc = 0.f;
            for (int k = 0; k < K; k++)
                acc += a[k] * b[k];
            C[(size_t)i * ldc + j] += acc;
        }
    }
}

static void gemm_tt(int M, int N, int K, const float *restrict A, int lda,
                    const float *restrict B, int ldb, float *restrict C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float acc = 0.f;
            for (int k = 0; k < K; k++)
                acc += A[(size_t)k * lda + i] * B[(size_t)j * ldb + k];
            C[(size_t)i * ldc + j] += acc;
        }
}
#endif

/* One product on the calling thread: C = op(A) op(B) (+ C). */
static void gemm1(bool ta, bool tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float *C, int ldc, bool accumulate)
{
    if (M == 0 || N == 0)
        return;
#ifdef SG_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K,
                1.f, A, lda, B, ldb, accumulate ? 1.f : 0.f, C, ldc);
#else
    if (!accumulate)
        for (int i = 0; i < M; i++)
            memset(C + (size_t)i * ldc, 0, (size_t)N * sizeof(float));
    if (!ta && !tb)
        gemm_nn(M, N, K, A, lda, B, ldb, C, ldc);
    else if (ta && !tb)
        gemm_tn(M, N, K, A, lda, B, ldb, C, ldc);
    else if (!ta && tb)
        gemm_nt(M, N, K, A, lda, B, ldb, C, ldc);
    else
        gemm_tt(M, N, K, A, lda, B, ldb, C, ldc);
#endif
}

/* ---- splitting a product across the pool ----
 * OpenBLAS runs single-threaded inside each piece. Rows of C are split when
 * op(A) has enough of them, else columns; a product with a small C and a
 * long K (the convolution's weight gradient, (25, 30) over K = 57600) is
 * split along K into partial products that are summed at the end. */

enum split_kind { SPLIT_M, SPLIT_N, SPLIT_K };

typedef struct gemm_job {
    enum split_kind kind;
    bool ta, tb, accumulate;
    int M, N, K, lda, ldb, ldc, pieces;
    const float *A, *B;
    float *C;
    float *part; /* SPLIT_K: (pieces, M, N) partial products */
} gemm_job;

static void gemm_pieces(void *arg, size_t lo, size_t hi)
{
    const gemm_job *j = arg;
    for (size_t p = lo; p < hi; p++) {
        if (j->kind == SPLIT_M) {
            int i0 = (int)((size_t)j->M * p / j->pieces), i1 = (int)((size_t)j->M * (p + 1) / j->pieces);
            const float *a = j->ta ? j->A + i0 : j->A + (size_t)i0 * j->lda;
            gemm1(j->ta, j->tb, i1 - i0, j->N, j->K, a, j->lda, j->B, j->ldb, j->C + (size_t)i0 * j->ldc,
                  j->ldc, j->accumulate);
        } else if (j->kind == SPLIT_N) {
            int c0 = (int)((size_t)j->N * p / j->pieces), c1 = (int)((size_t)j->N * (p + 1) / j->pieces);
            const float *b = j->tb ? j->B + (size_t)c0 * j->ldb : j->B + c0;
            gemm1(j->ta, j->tb, j->M, c1 - c0, j->K, j->A, j->lda, b, j->ldb, j->C + c0, j->ldc,
                  j->accumulate);
        } else {
            int k0 = (int)((size_t)j->K * p / j->pieces), k1 = (int)((size_t)j->K * (p + 1) / j->pieces);
            const float *a = j->ta ? j->A + (size_t)k0 * j->lda : j->A + k0;
            const float *b = j->tb ? j->B + k0 : j->B + (size_t)k0 * j->ldb;
            gemm1(j->ta, j->tb, j->M, j->N, k1 - k0, a, j->lda, b, j->ldb,
                  j->part + p * (size_t)j->M * j->N, j->N, false);
        }
    }
}

#if SG_HAVE_GEMM_SMALL
typedef struct small_job {
    int M, N, K, lda, ldb, ldc, pieces, np;
    const float *A, *B, *Bp;
    float *C, *part;
    bool accumulate;
} small_job;

/* tall: items are groups of 4 rows of C */
static void tall_range(void *arg, size_t lo, size_t hi)
{
    const small_job *j = arg;
    int i0 = (int)(lo * 4), i1 = (int)(hi * 4) < j->M ? (int)(hi * 4) : j->M;
    sg_gemm_tall(i0, i1, j->N, j->K, j->A, j->lda, j->Bp, j->C, j->ldc, j->accumulate);
}

/* long: items are slices of K, each summed into its own partial product */
static void long_range(void *arg, size_t lo, size_t hi)
{
    const small_job *j = arg;
    for (size_t p = lo; p < hi; p++) {
        float *part = j->part + p * (size_t)j->M * j->np;
        memset(part, 0, (size_t)j->M * j->np * sizeof(float));
        int k0 = (int)((size_t)j->K * p / j->pieces), k1 = (int)((size_t)j->K * (p + 1) / j->pieces);
        sg_gemm_long(k0, k1, j->K, j->M, j->N, j->A, j->lda, j->B, j->ldb, part);
    }
}

/* The shapes of convolution (sg_gemm.h); false if the product is not one. */
static bool gemm_small(bool ta, bool tb, int M, int N, int K, const float *A, int lda, const float *B,
                       int ldb, float *C, int ldc, bool accumulate)
{
    if (sg_gemm_tall_ok(ta, M, N, K)) {
        /* the packed op(B): on the stack when small, else from the scope */
        enum { STACK_FLOATS = 64 * 64 };
        float stack_bp[STACK_FLOATS];
        size_t need = (size_t)K * sg_gemm_tall_width(N);
        float *bp = need <= STACK_FLOATS ? stack_bp : sg_scope_alloc(need * sizeof(float));
        if (!bp)
            return false; /* no scope open: the BLAS does it */
        sg_gemm_tall_pack(tb, N, K, B, ldb, bp);
        small_job j = {.M = M, .N = N, .K = K, .lda = lda, .ldc = ldc, .A = A, .Bp = bp, .C = C,
                       .accumulate = accumulate};
        sg_parallel_for(((size_t)M + 3) / 4, (size_t)M * (size_t)(N + K), tall_range, &j);
        return true;
    }
    if (sg_gemm_long_ok(ta, tb, M, N, K)) {
        enum { MAXP = 8 };
        const int np = 32;
        int T = sg_parallel_threads((size_t)K * (size_t)(M + N));
        int pieces = T > 1 ? 2 * T : 1;
        if (pieces > MAXP)
            pieces = MAXP;
        float part[MAXP * SG_GEMM_LONG_MAX_M * 32];
        small_job j = {.M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .pieces = pieces, .np = np,
                       .A = A, .B = B, .part = part};
        sg_parallel_for((size_t)pieces, (size_t)K * (size_t)(M + N), long_range, &j);
        for (int i = 0; i < M; i++) {
            float *restrict c = C + (size_t)i * ldc;
            for (int q = 0; q < N; q++) {
                float acc = 0.f;
                for (int p = 0; p < pieces; p++)
                    acc += part[((size_t)p * M + i) * np + q];
                c[q] = accumulate ? c[q] + acc : acc;
            }
        }
        return true;
    }
    return false;
}
#endif

/* Below this many flops a product runs on the calling thread. */
#define SG_GEMM_PAR_FLOPS 2e6

static void gemm_split(bool ta, bool tb, int M, int N, int K, const float *A, int lda, const float *B,
                       int ldb, float *C, int ldc, bool accumulate);
static void blas_one_thread(void);

void sg_sgemm(bool ta, bool tb, int M, int N, int K, const float *A, int lda,
              const float *B, int ldb, float *C, int ldc, bool accumulate)
{
    if (M == 0 || N == 0)
        return;
#if SG_HAVE_GEMM_SMALL
    if (gemm_small(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate))
        return;
#endif
    gemm_split(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

/* OpenBLAS runs one thread inside each piece of a product (or in the whole
 * product when the engine uses one thread). The setting is left at 1:
 * raising it again would make OpenBLAS start threads (after a fork(), on
 * every call), and its idle threads would compete with the pool. Small
 * products, which OpenBLAS runs on one thread anyway, leave it untouched. */
static void blas_one_thread(void)
{
#if defined(SG_HAVE_CBLAS) && defined(OPENBLAS_VERSION)
    if (openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
#endif
}

static void gemm_split(bool ta, bool tb, int M, int N, int K, const float *A, int lda, const float *B,
                       int ldb, float *C, int ldc, bool accumulate)
{
    double flops = 2.0 * M * N * K;
    int T = 1;
    if (flops >= SG_GEMM_PAR_FLOPS) {
        blas_one_thread();
        T = sg_parallel_threads(SG_PAR_MIN);
    }
    if (T <= 1 || K == 0) {
        gemm1(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
        return;
    }
    enum { PART_MAX = 1 << 15 }; /* floats of partial products on the stack */
    gemm_job j = {.ta = ta, .tb = tb, .accumulate = accumulate, .M = M, .N = N, .K = K, .lda = lda,
                  .ldb = ldb, .ldc = ldc, .A = A, .B = B, .C = C, .pieces = T};
    /* One piece per thread. Each piece packs its share of one operand and
     * all of the other, so the split is chosen to repeat the least copying:
     * rows of C repeat op(B) (K*N), columns repeat op(A) (M*K), and slices
     * of K instead write T partial products (M*N each) to be summed. */
    const double rep_m = (double)K * N, rep_n = (double)M * K, rep_k = 2.0 * M * N;
    const int min_rows = 16; /* rows (columns, K) per piece worth a call */
    bool can_m = M >= T * min_rows, can_n = N >= T * min_rows;
    bool can_k = K >= T * 64 && (size_t)T * M * N <= PART_MAX;
    if (can_k && (!can_m || rep_k < rep_m) && (!can_n || rep_k < rep_n))
        j.kind = SPLIT_K;
    else if (can_m && (!can_n || rep_m <= rep_n))
        j.kind = SPLIT_M;
    else if (can_n)
        j.kind = SPLIT_N;
    else {
        gemm1(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
        return;
    }
    float part[j.kind == SPLIT_K ? (size_t)j.pieces * M * N : 1];
    j.part = part;
    sg_parallel_for((size_t)j.pieces, SG_PAR_MIN, gemm_pieces, &j);
    if (j.kind == SPLIT_K) {
        size_t mn = (size_t)M * N;
        for (int i = 0; i < M; i++) {
            float *restrict c = C + (size_t)i * ldc;
            for (int q = 0; q < N; q++) {
                float acc = accumulate ? c[q] : 0.f;
                for (int p = 0; p < j.pieces; p++)
                    acc += part[p * mn + (size_t)i * N + q];
                c[q] = acc;
            }
        }
    }
}

/* ---- the op ---- */

/* A batch of products y_i = op(a_i) op(b_i); a stride of 0 shares an
 * operand. Small products run whole, one per thread, over the batch. */
typedef struct batch_job {
    bool ta, tb, accumulate;
    int M, N, K, lda, ldb;
    const float *a, *b;
    float *y;
    size_t sa, sb, sy;
    const float *start; /* or NULL: each y_i starts as a copy of this (M, N) block */
} batch_job;

static void batch_range(void *arg, size_t lo, size_t hi)
{
    const batch_job *j = arg;
    for (size_t i = lo; i < hi; i++) {
        float *y = j->y + i * j->sy;
        if (j->start)
            memcpy(y, j->start, j->sy * sizeof(float));
        sg_sgemm(j->ta, j->tb, j->M, j->N, j->K, j->a + i * j->sa, j->lda, j->b + i * j->sb, j->ldb, y, j->N,
                 j->accumulate);
    }
}

static void gemm_batch(const batch_job *j, size_t batch)
{
    double flops = 2.0 * j->M * j->N * j->K;
    if (batch > 1 && flops < SG_GEMM_PAR_FLOPS) {
        blas_one_thread(); /* the pool's threads each call the BLAS */
        sg_parallel_for(batch, batch * (j->sy + j->sa + j->sb), batch_range, (void *)j);
    } else {
        batch_range((void *)j, 0, batch);
    }
}

/* y = op(a) op(b), plus c broadcast to y's shape when c is given: the
 * checks and the products of matmul and addmm (`op` names the caller). */
static sg_tensor *product(const char *op, sg_tensor *c, sg_tensor *a, sg_tensor *b, bool ta, bool tb)
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
    sg_tensor *y = sg_alloc(op, batched->ndim, shape);
    if (!y)
        return NULL;
    bool acc = c != NULL; /* start from c, add the products to it */
    /* c the same (M, N) block for every product of a batch (the conv bias):
     * each product's block is filled from one copy just before its sgemm,
     * which then finds it in cache (one pass over y fewer than filling y
     * first). Outside a scope (no scratch) y is filled first. */
    bool per_matrix = !(shared_b && !ta) && K != 0;
    float *start = NULL;
    if (c && per_matrix && batch > 1 && c->ndim <= 2)
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
    if (shared_b && !ta) {
        /* (..., M, K) @ (K, N): one product with the batch folded into M */
        int rows = (int)(a->size / (size_t)ac);
        sg_sgemm(false, tb, rows, N, K, a->data, ac, b->data, bc, y->data, N, acc);
    } else if (K == 0) {
        if (!c)
            memset(y->data, 0, y->size * sizeof(float));
    } else {
        batch_job j = {.ta = ta, .tb = tb, .accumulate = acc, .M = M, .N = N, .K = K, .lda = ac, .ldb = bc,
                       .a = a->data, .b = b->data, .y = y->data,
                       .sa = shared_a ? 0 : (size_t)ar * ac, .sb = shared_b ? 0 : (size_t)br * bc,
                       .sy = (size_t)M * N, .start = start};
        gemm_batch(&j, batch);
    }
    y->attr.mm.ta = ta;
    y->attr.mm.tb = tb;
    return y;
}

sg_tensor *sg_matmul_t(sg_tensor *a, sg_tensor *b, bool ta, bool tb)
{
    if (!a || !b) {
        if (!sg_has_error())
            sg_set_error("matmul: NULL input");
        return NULL;
    }
    sg_tensor *in[2] = {a, b};
    return sg_finish(product("matmul", NULL, a, b, ta, tb), SG_OP_MATMUL, in, 2);
}

sg_tensor *sg_addmm_t(sg_tensor *c, sg_tensor *a, sg_tensor *b, bool ta, bool tb)
{
    if (!c || !a || !b) {
        if (!sg_has_error())
            sg_set_error("addmm: NULL input");
        return NULL;
    }
    sg_tensor *in[3] = {c, a, b};
    return sg_finish(product("addmm", c, a, b, ta, tb), SG_OP_ADDMM, in, 3);
}

sg_tensor *sg_addmm(sg_tensor *c, sg_tensor *a, sg_tensor *b) { return sg_addmm_t(c, a, b, false, false); }

sg_tensor *sg_matmul(sg_tensor *a, sg_tensor *b) { return sg_matmul_t(a, b, false, false); }

/* A shared operand's gradient is the sum over the batch of the per-item
 * gradients: a batched product reduced by sum_to (or, for a shared b next
 * to an untransposed batch, one product of the flattened batch). */
static void product_grads(sg_tensor *a, sg_tensor *b, bool ta, bool tb, sg_tensor *gy, sg_tensor **gx)
{
    if (a->requires_grad) {
        gx[0] = ta ? sg_matmul_t(b, gy, tb, true) : sg_matmul_t(gy, b, false, !tb);
        if (a->ndim == 2 && b->ndim > 2)
            gx[0] = sg_sum_to(gx[0], 2, a->shape);
    }
    if (!b->requires_grad)
        return;
    bool shared_b = b->ndim == 2 && a->ndim > 2;
    if (shared_b && !ta) {
        int K = a->shape[a->ndim - 1], N = gy->shape[gy->ndim - 1];
        int a2[2] = {(int)(a->size / (size_t)K), K}, g2[2] = {a2[0], N};
        sg_tensor *af = sg_reshape(a, 2, a2), *gf = sg_reshape(gy, 2, g2);
        gx[1] = tb ? sg_matmul_t(gf, af, true, false) : sg_matmul_t(af, gf, true, false);
        return;
    }
    gx[1] = tb ? sg_matmul_t(gy, a, true, ta) : sg_matmul_t(a, gy, !ta, false);
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
