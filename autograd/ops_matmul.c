/*
 * ops_matmul.c — matrix product with transpose flags (2-D, batched, and a
 * batch of matrices times one shared matrix) on top of sg_sgemm, which uses
 * a BLAS when one was found at build time and a cache-blocked loop nest
 * otherwise.
 *
 * The flags let backward express dA = dY op(B)^T and dB = op(A)^T dY without
 * materialising a transpose.
 */
#include "sg_internal.h"

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

void sg_sgemm(bool ta, bool tb, int M, int N, int K, const float *A, int lda,
              const float *B, int ldb, float *C, int ldc, bool accumulate)
{
    if (M == 0 || N == 0)
        return;
#ifdef SG_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                M, N, K, 1.f, A, lda, B, ldb, accumulate ? 1.f : 0.f, C, ldc);
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

/* ---- the op ---- */

sg_tensor *sg_matmul_t(sg_tensor *a, sg_tensor *b, bool ta, bool tb)
{
    if (!a || !b) {
        if (!sg_has_error())
            sg_set_error("matmul: NULL input");
        return NULL;
    }
    char ba[96], bb[96];
    sg_shape_str(a, ba, sizeof ba);
    sg_shape_str(b, bb, sizeof bb);
    if (a->ndim < 2 || b->ndim < 2) {
        sg_set_error("matmul: shapes %s and %s: both need at least 2 dims", ba, bb);
        return NULL;
    }
    int ar = a->shape[a->ndim - 2], ac = a->shape[a->ndim - 1];
    int br = b->shape[b->ndim - 2], bc = b->shape[b->ndim - 1];
    int M = ta ? ac : ar, K = ta ? ar : ac, Kb = tb ? bc : br, N = tb ? br : bc;
    if (K != Kb) {
        sg_set_error("matmul: shapes %s%s and %s%s do not align (%d != %d)", ba, ta ? "^T" : "", bb,
                     tb ? "^T" : "", K, Kb);
        return NULL;
    }
    bool shared_b = b->ndim == 2 && a->ndim > 2;
    if (shared_b && ta) {
        sg_set_error("matmul: a batched %s^T times a shared matrix %s is not supported", ba, bb);
        return NULL;
    }
    if (!shared_b && a->ndim != b->ndim) {
        sg_set_error("matmul: shapes %s and %s have different batch ranks", ba, bb);
        return NULL;
    }
    size_t batch = 1;
    for (int i = 0; !shared_b && i < a->ndim - 2; i++) {
        if (a->shape[i] != b->shape[i]) {
            sg_set_error("matmul: batch dims of %s and %s differ", ba, bb);
            return NULL;
        }
        batch *= (size_t)a->shape[i];
    }
    int shape[SG_MAX_DIMS];
    memcpy(shape, a->shape, sizeof shape);
    shape[a->ndim - 2] = M;
    shape[a->ndim - 1] = N;
    sg_tensor *y = sg_alloc("matmul", a->ndim, shape);
    if (!y)
        return NULL;
    if (shared_b) {
        /* (..., M, K) @ (K, N): one product with the batch folded into M */
        int rows = (int)(a->size / (size_t)ac);
        sg_sgemm(false, tb, rows, N, K, a->data, ac, b->data, bc, y->data, N, false);
    } else if (K == 0) {
        memset(y->data, 0, y->size * sizeof(float));
    } else {
        size_t sa = (size_t)ar * ac, sb = (size_t)br * bc, sy = (size_t)M * N;
        for (size_t i = 0; i < batch; i++)
            sg_sgemm(ta, tb, M, N, K, a->data + i * sa, ac, b->data + i * sb, bc, y->data + i * sy,
                     N, false);
    }
    y->attr.mm.ta = ta;
    y->attr.mm.tb = tb;
    sg_tensor *in[2] = {a, b};
    return sg_finish(y, SG_OP_MATMUL, in, 2);
}

sg_tensor *sg_matmul(sg_tensor *a, sg_tensor *b) { return sg_matmul_t(a, b, false, false); }

void sg_bw_matmul(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    sg_tensor *a = y->in[0], *b = y->in[1];
    bool ta = y->attr.mm.ta, tb = y->attr.mm.tb;
    if (a->requires_grad)
        gx[0] = ta ? sg_matmul_t(b, gy, tb, true) : sg_matmul_t(gy, b, false, !tb);
    if (!b->requires_grad)
        return;
    if (b->ndim == 2 && a->ndim > 2) {
        /* shared b: its gradient sums over the batch, i.e. one product of
         * the flattened batch */
        int K = a->shape[a->ndim - 1], N = gy->shape[gy->ndim - 1];
        int a2[2] = {(int)(a->size / (size_t)K), K}, g2[2] = {a2[0], N};
        sg_tensor *af = sg_reshape(a, 2, a2), *gf = sg_reshape(gy, 2, g2);
        gx[1] = tb ? sg_matmul_t(gf, af, true, false) : sg_matmul_t(af, gf, true, false);
        return;
    }
    gx[1] = tb ? sg_matmul_t(gy, a, true, ta) : sg_matmul_t(a, gy, !ta, false);
}
