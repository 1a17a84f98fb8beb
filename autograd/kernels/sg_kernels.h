/*
 * sg_kernels.h — the engine's numeric kernels and how one set of them is
 * chosen for the CPU at hand (private to the library).
 *
 * Kernels take raw pointers and sizes, outputs first: no tensors, no error
 * messages, no recording (those stay in the op files). Each kernel source in
 * this folder is compiled once per instruction-set level, with that level's
 * flags only (meson.build): the same C becomes a generic (baseline x86-64 or
 * any other architecture), an AVX2+FMA and an AVX-512 variant, each with its
 * own symbol suffix (SG_K). Kernels that are written for one level by hand
 * (the thin matrix products of convolution, gemm_avx2.c and
 * gemm_avx512.c) have their own files, compiled for that level alone.
 *
 * Each level's variant fills one table of function pointers, sg_kernels
 * (table.c). isa.c picks a table at load time from the CPU's features
 * (cpuid through __builtin_cpu_supports), lowered by the environment
 * variable SG_ISA or by sg_set_isa(), and publishes it in sg_kern. Code of a
 * level above the CPU's is therefore never called, and the generic table is
 * the reference every other one is tested against (tests/test_kernels.c).
 *
 * This is the approach of OpenBLAS's DYNAMIC_ARCH (one kernel set per core
 * type, chosen at run time) and of ggml's CPU variants (one build of the
 * same sources per instruction-set level).
 */
#ifndef SG_KERNELS_H
#define SG_KERNELS_H

#include "sg_autograd.h" /* sg_isa */

#include <stdbool.h>
#include <stddef.h>

/* ---- building one level's variant ----
 * meson compiles each kernel source with -DSG_KISA=<name> and
 * -DSG_KISA_LEVEL=<sg_isa value>; SG_K(f) is f's name in that variant. */
#define SG_KCAT2(a, b) a##_##b
#define SG_KCAT(a, b) SG_KCAT2(a, b)
#define SG_K(name) SG_KCAT(name, SG_KISA)

/* ---- the own kernels for convolution's thin products ----
 * Only where a level has them (AVX2, AVX-512); gemm.c decides per shape
 * (and per level, from measurements) whether they or the BLAS run.
 *
 *   tall: C(M,N) = A(M,K) @ op(B)(K,N), A not transposed, K <= 1024,
 *         N <= 64. op(B) is packed once (tall_pack) into K rows of
 *         tall_width(N) floats; tall() computes rows [i0, i1) of C (or adds
 *         them to C) and writes nothing outside those rows and N columns.
 *   long: C(M,N) = A^T @ B, A stored (K, M), B stored (K, N), M <= 64,
 *         N <= 32, K long: P (M, 32) += the products of rows [k0, k1);
 *         P's columns >= N stay 0; nothing is read past B's last row. */
#define SG_GEMM_TALL_MAX_K 1024
#define SG_GEMM_TALL_MAX_N 64
#define SG_GEMM_LONG_MAX_M 64
#define SG_GEMM_LONG_MAX_N 32
#define SG_GEMM_LONG_P_COLS 32 /* row length of long()'s partial product P */

typedef int (*sg_gemm_tall_width_fn)(int N);
typedef void (*sg_gemm_tall_pack_fn)(bool tb, int N, int K, const float *B, int ldb, float *Bp);
typedef void (*sg_gemm_tall_fn)(int i0, int i1, int N, int K, const float *A, int lda, const float *Bp,
                                float *C, int ldc, bool accumulate);
typedef void (*sg_gemm_long_fn)(int k0, int k1, int K, int M, int N, const float *A, int lda,
                                const float *B, int ldb, float *P);

/* One level's kernels. */
typedef struct sg_kernels {
    sg_isa isa;
    /* C += op(A) op(B), the cache-blocked loops used without a BLAS; op(A)
     * is (M, K), op(B) (K, N), lda/ldb/ldc row lengths as stored. */
    void (*gemm_blocked)(bool ta, bool tb, int M, int N, int K, const float *A, int lda, const float *B,
                         int ldb, float *C, int ldc);
    /* the own thin kernels, NULL where the level has none; they take
     * N >= gemm_tall_min_n (tall) and N >= gemm_long_min_n (long) */
    int gemm_tall_min_n, gemm_long_min_n;
    sg_gemm_tall_width_fn gemm_tall_width;
    sg_gemm_tall_pack_fn gemm_tall_pack;
    sg_gemm_tall_fn gemm_tall;
    sg_gemm_long_fn gemm_long;
} sg_kernels;

/* The variants built into this library (isa.c lists which exist). */
extern const sg_kernels sg_kernels_generic;
#ifdef SG_KERNELS_X86
extern const sg_kernels sg_kernels_avx2;
extern const sg_kernels sg_kernels_avx512;
#endif

/* The kernels in use: set before main() runs (isa.c), changed only by
 * sg_set_isa(). */
extern const sg_kernels *sg_kern;

/* The level to use on a CPU whose best is `cpu` when SG_ISA is `want`
 * (NULL or "" when unset). A level the CPU lacks or an unknown name is
 * refused (*refused set) and gives `cpu`. `note` (len bytes) receives what
 * became of SG_ISA ("SG_ISA=avx2", "SG_ISA=avx512: this CPU supports at
 * most avx2", ...), or "" when it is unset. */
sg_isa sg_isa_choose(const char *want, sg_isa cpu, bool *refused, char *note, size_t len);

/* ---- matrix products (gemm.c) ---- */
/* C(M,N) = op(A) op(B) (+ C if accumulate); lda/ldb/ldc are row lengths as
 * stored. Chooses the own thin kernels, the BLAS or the blocked loops and
 * splits large products across the thread pool. */
void sg_sgemm(bool ta, bool tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
              float *C, int ldc, bool accumulate);

/* A batch of products y_i = op(a_i) op(b_i) (+ y_i if accumulate), i <
 * batch: operand i starts at a + i * sa (a stride of 0 shares the operand
 * across the batch), y_i at y + i * sy with row length N. With start, each
 * y_i is first a copy of that (M, N) block. Small products run whole, one
 * per thread, over the batch. */
typedef struct sg_gemm_batch {
    bool ta, tb, accumulate;
    int M, N, K, lda, ldb;
    const float *a, *b;
    float *y;
    size_t sa, sb, sy;
    const float *start;
} sg_gemm_batch;
void sg_sgemm_batch(const sg_gemm_batch *job, size_t batch);

/* Which kernel sg_sgemm runs for this product on the current level:
 * "tall", "long", "blas" or "blocked" (for benchmarks and tests). */
const char *sg_sgemm_choice(bool ta, bool tb, int M, int N, int K);

/* What runs the products on the current level, in words ("OpenBLAS 0.3.21
 * SkylakeX, own tall/long kernels for thin products"), into buf; returns
 * buf. */
char *sg_sgemm_describe(char *buf, size_t len);

#endif /* SG_KERNELS_H */
