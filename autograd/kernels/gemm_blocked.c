/*
 * gemm_blocked.c — C += op(A) op(B) as plain loop nests, for builds without
 * a BLAS (compiled once per level, so the compiler vectorises the inner
 * loops for each instruction set).
 *
 * Each transpose case has the loop order that keeps the innermost loop
 * contiguous where it can: i-k-j for A B, A^T B and A B^T (rows of B, or
 * of a transposed copy of a block of B, and of C), dot products along K for
 * A^T B^T. The first three are blocked over K and N so that a block of B
 * stays in cache while the rows of op(A) pass.
 *
 * Every case sums its products apart from C — over a block of K (KB terms),
 * over all of K for the dot products of A^T B^T — and then adds
 * that sum to C, as a BLAS does with its blocks of K: C takes one addition
 * per block, not one per term. Added term by term, a product that
 * accumulates into C (beta = 1: a batch of images adding their dW, addmm's
 * bias placed in C first) rounds each term against the whole running
 * total; in the data-parallel equivalence test (test_mpi) 1 process and
 * 2 ranks then differed by 1.96e-6 on SimpleConvNet's conv1.b, against
 * 1.5e-7 to 5.7e-7 with OpenBLAS at any level (docs/distributed.md).
 */
#include "sg_kernels.h"

enum { KB = 256, NB = 1024 }; /* a block of K, a block of columns */

/* c[0..n) += the sum kept in acc, which is then cleared for the next row */
static inline void add_row_sum(float *restrict c, float *restrict acc, int n)
{
    for (int j = 0; j < n; j++) {
        c[j] += acc[j];
        acc[j] = 0.f;
    }
}

/* A B and A^T B: element (i, k) of op(A) is A[i * si + k * sk] (si = lda,
 * sk = 1 for A; si = 1, sk = lda for A^T), the inner loop runs along rows
 * of B and C either way. */
static void gemm_rows(int M, int N, int K, const float *restrict A, size_t si, size_t sk, const float *restrict B,
                      int ldb, float *restrict C, int ldc)
{
    float acc[NB] = {0};
    for (int k0 = 0; k0 < K; k0 += KB) {
        int k1 = k0 + KB < K ? k0 + KB : K;
        for (int j0 = 0; j0 < N; j0 += NB) {
            int jn = (j0 + NB < N ? j0 + NB : N) - j0;
            for (int i = 0; i < M; i++) {
                for (int k = k0; k < k1; k++) {
                    float a = A[(size_t)i * si + (size_t)k * sk];
                    const float *restrict b = B + (size_t)k * ldb + j0;
                    for (int j = 0; j < jn; j++)
                        acc[j] += a * b[j];
                }
                add_row_sum(C + (size_t)i * ldc + j0, acc, jn);
            }
        }
    }
}

/* A·Bᵀ: a block of B (TN of its rows, KB of its columns) is copied
 * transposed to the stack, and the block is then an A·B product, vectorised
 * along the columns of C like gemm_rows. (Dot products along K, one sum per
 * element of C, ran at 4-7 GFLOP/s: each add waited for the one before.) */
enum { TN = 64 }; /* KB x TN floats of B transposed: 64 KB of stack */

static void gemm_nt(int M, int N, int K, const float *restrict A, int lda, const float *restrict B, int ldb,
                    float *restrict C, int ldc)
{
    float bt[KB * TN];
    float acc[TN] = {0};
    for (int j0 = 0; j0 < N; j0 += TN) {
        const int jn = (j0 + TN < N ? j0 + TN : N) - j0;
        for (int k0 = 0; k0 < K; k0 += KB) {
            const int kn = (k0 + KB < K ? k0 + KB : K) - k0;
            for (int j = 0; j < jn; j++) {
                const float *restrict b = B + (size_t)(j0 + j) * ldb + k0;
                for (int k = 0; k < kn; k++)
                    bt[k * jn + j] = b[k];
            }
            for (int i = 0; i < M; i++) {
                const float *restrict a = A + (size_t)i * lda + k0;
                for (int k = 0; k < kn; k++) {
                    const float x = a[k];
                    const float *restrict b = bt + k * jn;
                    for (int j = 0; j < jn; j++)
                        acc[j] += x * b[j];
                }
                add_row_sum(C + (size_t)i * ldc + j0, acc, jn);
            }
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
        gemm_rows(M, N, K, A, (size_t)lda, 1, B, ldb, C, ldc);
    else if (ta && !tb)
        gemm_rows(M, N, K, A, 1, (size_t)lda, B, ldb, C, ldc);
    else if (!ta && tb)
        gemm_nt(M, N, K, A, lda, B, ldb, C, ldc);
    else
        gemm_tt(M, N, K, A, lda, B, ldb, C, ldc);
}
