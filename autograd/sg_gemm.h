/*
 * sg_gemm.h — the engine's own kernels for the thin products convolution
 * makes (gemm_small.c); private to autograd/. sg_sgemm (ops_matmul.c)
 * decides per shape whether they or the BLAS run a product.
 */
#ifndef SG_GEMM_H
#define SG_GEMM_H

#include <stdbool.h>

#if defined(__GNUC__) && !defined(__clang__) && (defined(__AVX512F__) || defined(__AVX2__))
#define SG_HAVE_GEMM_SMALL 1
#else
#define SG_HAVE_GEMM_SMALL 0
#endif

#define SG_GEMM_TALL_MAX_K 1024 /* inner dimension of a "tall" product */
#define SG_GEMM_TALL_MAX_N 64   /* and its columns */
#define SG_GEMM_LONG_MAX_M 64   /* output of a "long" product (M, N) */
#define SG_GEMM_LONG_MAX_N 32

#if SG_HAVE_GEMM_SMALL
/* Tall: C(M,N) = A(M,K) @ op(B)(K,N), A not transposed, M large, K and N
 * small (N >= 8, so that a row's padding lanes fit in the next row). */
bool sg_gemm_tall_ok(bool ta, int M, int N, int K);
/* Row length of the packed op(B): N rounded up to 16, 32 or 64. */
int sg_gemm_tall_width(int N);
/* Pack op(B) into Bp (K, sg_gemm_tall_width(N)), zero padded. */
void sg_gemm_tall_pack(bool tb, int N, int K, const float *B, int ldb, float *Bp);
/* Rows [i0, i1) of C = A @ Bp (+ C if accumulate). */
void sg_gemm_tall(int i0, int i1, int N, int K, const float *A, int lda, const float *Bp, float *C, int ldc,
                  bool accumulate);

/* Long: C(M,N) = A^T @ B with A stored (K,M), B stored (K,N), M, N small. */
bool sg_gemm_long_ok(bool ta, bool tb, int M, int N, int K);
/* P (M, 32) += the products of rows [k0, k1); P's columns >= N stay 0. */
void sg_gemm_long(int k0, int k1, int K, int M, int N, const float *A, int lda, const float *B, int ldb,
                  float *P);
#endif

#endif /* SG_GEMM_H */
