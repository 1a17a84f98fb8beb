/*
 * gemm_blocked.c — C += op(A) op(B) as plain loop nests, for builds without
 * a BLAS (compiled once per level, so the compiler vectorises the inner
 * loops for each instruction set).
 *
 * Each transpose case has the loop order that keeps the innermost loop
 * contiguous where it can: i-k-j for A B (rows of B and C), k-i-j for A^T B,
 * dot products along K for A B^T and A^T B^T. A B is blocked over K and N
 * so that a block of B stays in cache while the rows of A pass.
 */
#include "sg_kernels.h"

static void gemm_nn(int M, int N, int K, const float *restrict A, int lda, const float *restrict B, int ldb,
                    float *restrict C, int ldc)
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

static void gemm_tn(int M, int N, int K, const float *restrict A, int lda, const float *restrict B, int ldb,
                    float *restrict C, int ldc)
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

static void gemm_nt(int M, int N, int K, const float *restrict A, int lda, const float *restrict B, int ldb,
                    float *restrict C, int ldc)
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

static void gemm_tt(int M, int N, int K, const float *restrict A, int lda, const float *restrict B, int ldb,
                    float *restrict C, int ldc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float acc = 0.f;
            for (int k = 0; k < K; k++)
                acc += A[(size_t)k * lda + i] * B[(size_t)j * ldb + k];
            C[(size_t)i * ldc + j] += acc;
        }
}

void SG_K(sg_gemm_blocked)(bool ta, bool tb, int M, int N, int K, const float *A, int lda, const float *B,
                           int ldb, float *C, int ldc)
{
    if (!ta && !tb)
        gemm_nn(M, N, K, A, lda, B, ldb, C, ldc);
    else if (ta && !tb)
        gemm_tn(M, N, K, A, lda, B, ldb, C, ldc);
    else if (!ta && tb)
        gemm_nt(M, N, K, A, lda, B, ldb, C, ldc);
    else
        gemm_tt(M, N, K, A, lda, B, ldb, C, ldc);
}
