/*
 * sg_float64.h — the float64 paths of the primitives (float64.c) and dtype
 * promotion: internal to the engine. Each op file calls these when its
 * input is float64 and keeps its float32 path (the per-level kernels) as
 * it was.
 */
#ifndef SG_FLOAT64_H
#define SG_FLOAT64_H

#include "sg_internal.h"
#include "sg_kernels.h"

/* y = a k b with NumPy broadcasting to y's shape (all float64). */
void sg64_binary(sg_kbin k, sg_tensor *y, const sg_tensor *a, const sg_tensor *b);
/* y = k(x) elementwise over n values, p the scalar of pow/add/mul. */
void sg64_unary(sg_kun k, double *restrict y, const double *restrict x, double p, size_t n);
/* y = sum (kind 0) or max (kind 1) of x (shape[0..ndim)) over the dims in
 * mask; y holds the kept dims in order. */
void sg64_reduce(double *restrict y, const double *restrict x, int ndim, const int *shape, uint32_t mask,
                 int kind);
/* y = x broadcast to y's shape. */
void sg64_broadcast(sg_tensor *y, const sg_tensor *x);
/* y = x (shape xs, n dims) with dims reordered: y.shape[i] = xs[perm[i]]. */
void sg64_permute(double *restrict y, const double *restrict x, int n, const int *xs, const int *perm);
/* C (M,N) = op(A) op(B) (+ C when accumulate), row-major with leading
 * dimensions as cblas_dgemm. */
void sg64_gemm(bool ta, bool tb, int M, int N, int K, const double *A, int lda, const double *B, int ldb,
               double *C, int ldc, bool accumulate);
/* unfold (fold = false: cols from x) or fold (fold = true: x = sums of
 * cols) of N images with geometry g. */
void sg64_window(bool fold, double *restrict cols, double *restrict x, const sg_kwindow *g, int N);

/* Mixed dtypes (torch.result_type): replace *a and *b by their conversion
 * (a recorded cast) to the common dtype. 0, or -1 with a message. Inline
 * for the common case, one dtype, which every op of two tensors checks. */
int sg_promote_mixed(sg_tensor **a, sg_tensor **b); /* the dtypes differ */
static inline int sg_promote(sg_tensor **a, sg_tensor **b)
{
    return (*a)->dtype == (*b)->dtype ? 0 : sg_promote_mixed(a, b);
}
/* The same for n tensors (concat): float64 if any is. */
int sg_promote_all(sg_tensor **xs, int n);

#endif /* SG_FLOAT64_H */
