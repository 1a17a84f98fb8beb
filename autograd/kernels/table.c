/*
 * table.c — one level's table of kernels (compiled once per level with
 * -DSG_KISA=<name> -DSG_KISA_LEVEL=<sg_isa>, like every kernel source).
 */
#include "sg_kernels.h"

void SG_K(sg_gemm_blocked)(bool ta, bool tb, int M, int N, int K, const float *A, int lda, const float *B,
                           int ldb, float *C, int ldc);

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
};
