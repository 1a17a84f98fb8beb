/*
 * table.c — one level's table of kernels (compiled once per level with
 * -DSG_KISA=<name> -DSG_KISA_LEVEL=<sg_isa>, like every kernel source).
 */
#include "sg_kernels.h"

void SG_K(sg_gemm_blocked)(bool ta, bool tb, int M, int N, int K, const float *A, int lda, const float *B,
                           int ldb, float *C, int ldc);

void SG_K(sg_k_binary)(sg_kbin k, float *restrict y, const float *restrict a, size_t sa,
                       const float *restrict b, size_t sb, size_t n);
void SG_K(sg_k_binary_rows)(sg_kbin k, float *restrict y, const float *restrict a, const float *restrict b,
                            const sg_kbcast *bc, size_t o0, size_t o1);
void SG_K(sg_k_unary)(sg_kun k, float *restrict y, const float *restrict x, float p, size_t n);
void SG_K(sg_k_relu_grad)(float *restrict dx, const float *restrict x, const float *restrict dy, size_t n);
void SG_K(sg_k_bytes_to_float)(float *restrict y, const uint8_t *restrict x, float div, size_t n);

void SG_K(sg_k_reduce_all)(int kind, float *restrict y, const float *restrict x, size_t n);
void SG_K(sg_k_reduce_rows)(int kind, float *restrict y, const float *restrict x, size_t inner, size_t lo,
                            size_t hi);
void SG_K(sg_k_reduce_cols)(int kind, float *restrict y, const float *restrict x, size_t outer, size_t inner);
void SG_K(sg_k_reduce_channels)(int kind, float *restrict y, const float *restrict x, size_t R, size_t K,
                                size_t S, size_t lo, size_t hi);
void SG_K(sg_k_reduce_windows)(int kind, float *restrict y, const float *restrict x, size_t R, size_t B,
                               size_t S, size_t lo, size_t hi);
void SG_K(sg_k_reduce_general)(int kind, float *restrict y, const float *restrict x, int ndim,
                               const int *shape, uint32_t mask);
void SG_K(sg_k_max_grad_rows)(float *restrict dx, const float *restrict x, const float *restrict y,
                              const float *restrict dy, size_t inner, size_t lo, size_t hi);
void SG_K(sg_k_max_grad_windows)(float *restrict dx, const float *restrict x, const float *restrict y,
                                 const float *restrict dy, size_t R, size_t B, size_t S, size_t lo,
                                 size_t hi);

void SG_K(sg_k_unfold)(float *restrict cols, const float *restrict x, const sg_kwindow *g, size_t lo,
                       size_t hi);
void SG_K(sg_k_fold)(float *restrict x, const float *restrict cols, const sg_kwindow *g, size_t lo,
                     size_t hi);

void SG_K(sg_k_transpose)(float *restrict y, const float *restrict x, size_t R, size_t C, size_t lo,
                          size_t hi);
void SG_K(sg_k_permute_walk)(float *restrict y, const float *restrict x, int ng, const size_t *gsize,
                             const size_t *st);
void SG_K(sg_k_broadcast)(float *restrict y, const float *restrict x, int ndim, const int *shape, int xndim,
                          const int *xshape);

void SG_K(sg_k_update_sgd)(const sg_kupdate *a, size_t lo, size_t hi);
void SG_K(sg_k_update_momentum)(const sg_kupdate *a, size_t lo, size_t hi);
void SG_K(sg_k_update_adagrad)(const sg_kupdate *a, size_t lo, size_t hi);
void SG_K(sg_k_update_rmsprop)(const sg_kupdate *a, size_t lo, size_t hi);
void SG_K(sg_k_update_adam)(const sg_kupdate *a, size_t lo, size_t hi);

/* The hand-written thin products: levels with a gemm_<level>.c (meson
 * defines SG_KISA_THIN for them). The smallest N each takes: the AVX-512
 * tiles store whole 16-float rows that spill into the next row of C, which
 * needs N >= 8 (tall) and pad B's rows to 32 from 16 (long). */
#ifdef SG_KISA_THIN
#if SG_KISA_LEVEL == 2
#define SG_GEMM_TALL_MIN_N 8
#define SG_GEMM_LONG_MIN_N 16
#else
#define SG_GEMM_TALL_MIN_N 1
#define SG_GEMM_LONG_MIN_N 1
#endif
int SG_K(sg_gemm_tall_width)(int N);
void SG_K(sg_gemm_tall_pack)(bool tb, int N, int K, const float *B, int ldb, float *Bp);
void SG_K(sg_gemm_tall)(int i0, int i1, int N, int K, const float *A, int lda, const float *Bp, float *C,
                        int ldc, bool accumulate);
void SG_K(sg_gemm_long)(int k0, int k1, int K, int M, int N, const float *A, int lda, const float *B, int ldb,
                        float *P);
void SG_K(sg_gemm_narrow)(int i0, int i1, int N, int K, const float *A, int lda, const float *B, int ldb,
                          float *C, int ldc, bool accumulate);
#define SG_THIN(f) SG_K(f)
#else
#define SG_THIN(f) NULL
#define SG_GEMM_TALL_MIN_N 0
#define SG_GEMM_LONG_MIN_N 0
#endif

const sg_kernels SG_K(sg_kernels) = {
    .isa = SG_KISA_LEVEL,
    .gemm_blocked = SG_K(sg_gemm_blocked),
    .gemm_tall_min_n = SG_GEMM_TALL_MIN_N,
    .gemm_long_min_n = SG_GEMM_LONG_MIN_N,
    .gemm_tall_width = SG_THIN(sg_gemm_tall_width),
    .gemm_tall_pack = SG_THIN(sg_gemm_tall_pack),
    .gemm_tall = SG_THIN(sg_gemm_tall),
    .gemm_long = SG_THIN(sg_gemm_long),
    .gemm_narrow = SG_THIN(sg_gemm_narrow),
    .binary = SG_K(sg_k_binary),
    .binary_rows = SG_K(sg_k_binary_rows),
    .unary = SG_K(sg_k_unary),
    .relu_grad = SG_K(sg_k_relu_grad),
    .bytes_to_float = SG_K(sg_k_bytes_to_float),
    .reduce_all = SG_K(sg_k_reduce_all),
    .reduce_rows = SG_K(sg_k_reduce_rows),
    .reduce_cols = SG_K(sg_k_reduce_cols),
    .reduce_channels = SG_K(sg_k_reduce_channels),
    .reduce_windows = SG_K(sg_k_reduce_windows),
    .reduce_general = SG_K(sg_k_reduce_general),
    .max_grad_rows = SG_K(sg_k_max_grad_rows),
    .max_grad_windows = SG_K(sg_k_max_grad_windows),
    .unfold = SG_K(sg_k_unfold),
    .fold = SG_K(sg_k_fold),
    .transpose = SG_K(sg_k_transpose),
    .permute_walk = SG_K(sg_k_permute_walk),
    .broadcast = SG_K(sg_k_broadcast),
    .update_sgd = SG_K(sg_k_update_sgd),
    .update_momentum = SG_K(sg_k_update_momentum),
    .update_adagrad = SG_K(sg_k_update_adagrad),
    .update_rmsprop = SG_K(sg_k_update_rmsprop),
    .update_adam = SG_K(sg_k_update_adam),
};
