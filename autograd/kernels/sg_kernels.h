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
 * the reference every other one is tested against: bit for bit in
 * tests/test_kernel_levels.c (the matrix products, whose own kernels
 * contract, are not bit for bit and are tested in tests/test_kernels.c).
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
#include <stdint.h>

/* ---- building one level's variant ----
 * meson compiles each kernel source with -DSG_KISA=<name> and
 * -DSG_KISA_LEVEL=<sg_isa value>; SG_K(f) is f's name in that variant. */
#define SG_KCAT2(a, b) a##_##b
#define SG_KCAT(a, b) SG_KCAT2(a, b)
#define SG_K(name) SG_KCAT(name, SG_KISA)

/* ---- the own kernels for thin products (convolution's, a dense layer's dW) ----
 * Only where a level has them (AVX2, AVX-512); gemm.c decides per shape
 * (and per level, from measurements) whether they or the BLAS run.
 *
 *   tall: C(M,N) = A(M,K) @ op(B)(K,N), A not transposed, K <= 1024,
 *         N <= 128. op(B) is packed once (tall_pack) into K rows of
 *         tall_width(N) floats; tall() computes rows [i0, i1) of C (or adds
 *         them to C) and writes nothing outside those rows and N columns.
 *   long: C(M,N) = A^T @ B, A stored (K, M), B stored (K, N), M <= 64,
 *         N <= 32, K long: P (M, 32) += the products of rows [k0, k1);
 *         P's columns >= N stay 0; nothing is read past B's last row.
 *   narrow: C(M,N) = A^T @ B, A stored (K, M), B stored (K, N), N <= 16,
 *         any M, K >= 1 (a dense layer's weight gradient x^T dy with few
 *         outputs): rows [i0, i1) of C (or added to them); nothing written
 *         outside those rows and N columns, nothing read outside columns
 *         [i0, i1) of A's K rows and the N columns of B's. */
#define SG_GEMM_TALL_MAX_K 1024
#define SG_GEMM_TALL_MAX_N 128
#define SG_GEMM_LONG_MAX_M 64
#define SG_GEMM_LONG_MAX_N 32
#define SG_GEMM_LONG_P_COLS 32 /* row length of long()'s partial product P */
#define SG_GEMM_NARROW_MAX_N 16

/* The widths w[0..count) that cut n (<= 16 * most) into as few parts of at
 * most `most` as possible, as even as possible (wider first): the panels of
 * the AVX2 tiles, the column passes of narrow. Returns the count. */
static inline int sg_even_parts(int n, int most, int w[16])
{
    const int count = (n + most - 1) / most;
    for (int j = 0; j < count; j++)
        w[j] = n / count + (j < n % count);
    return count;
}

typedef int (*sg_gemm_tall_width_fn)(int N);
typedef void (*sg_gemm_tall_pack_fn)(bool tb, int N, int K, const float *B, int ldb, float *Bp);
typedef void (*sg_gemm_tall_fn)(int i0, int i1, int N, int K, const float *A, int lda, const float *Bp,
                                float *C, int ldc, bool accumulate);
typedef void (*sg_gemm_long_fn)(int k0, int k1, int K, int M, int N, const float *A, int lda,
                                const float *B, int ldb, float *P);
typedef void (*sg_gemm_narrow_fn)(int i0, int i1, int N, int K, const float *A, int lda, const float *B, int ldb,
                                  float *C, int ldc, bool accumulate);

/* ---- elementwise (elementwise.c) ---- */
typedef enum sg_kbin { SG_KBIN_ADD, SG_KBIN_SUB, SG_KBIN_MUL, SG_KBIN_DIV, SG_KBIN_GT, SG_KBIN_EQ } sg_kbin;
typedef enum sg_kun {
    SG_KUN_NEG, SG_KUN_EXP, SG_KUN_LOG, SG_KUN_RELU, SG_KUN_POW, SG_KUN_ADDS, SG_KUN_MULS
} sg_kun;

/* A broadcasting binary op with its dims coalesced (ops_elementwise.c):
 * m dims, innermost first; y is contiguous with dims dim[0..m), and a and
 * b step by ca[d] and cb[d] (0 where broadcast) along dim d. */
typedef struct sg_kbcast {
    int m;
    size_t dim[SG_MAX_DIMS], ca[SG_MAX_DIMS], cb[SG_MAX_DIMS];
} sg_kbcast;

/* ---- unfold and fold (unfold.c) ----
 * The geometry of one image and its windows: x (C, H, W), OH x OW window
 * positions (sg_window_out), w's strides >= 1. Image n's columns are
 * (OH*OW, C*KH*KW), rows (oh, ow), columns (c, kh, kw). */
typedef struct sg_kwindow {
    int C, H, W, OH, OW;
    sg_window w;
} sg_kwindow;

/* ---- optimizer updates (optim_update.c) ----
 * One parameter's update (optim/optim.c): w (n) is updated in place from
 * its gradient g and the kind's state buffers s0, s1 (n each, or NULL).
 * Weight decay is folded in per element: gi = g + l2·w (L2), w ← shrink·w
 * (decoupled). The formulas are on the kernels (optim_update.c) and follow
 * torch.optim's single-tensor code path. */
typedef struct sg_kupdate {
    float lr, l2, shrink;
    long t;                       /* this update's t >= 1 */
    float momentum, dampening;    /* momentum, Nesterov */
    bool nesterov;
    float alpha;                  /* RMSProp */
    float beta1, beta2;           /* Adam */
    float eps;                    /* AdaGrad, RMSProp, Adam */
    float lr_decay;               /* AdaGrad */
    size_t n;
    float *restrict w;
    const float *restrict g;
    float *restrict s0, *restrict s1;
} sg_kupdate;

/* One level's kernels. */
typedef struct sg_kernels {
    sg_isa isa;
    /* C += op(A) op(B), the cache-blocked loops used without a BLAS; op(A)
     * is (M, K), op(B) (K, N), lda/ldb/ldc row lengths as stored. */
    void (*gemm_blocked)(bool ta, bool tb, int M, int N, int K, const float *A, int lda, const float *B,
                         int ldb, float *C, int ldc);
    /* the own thin kernels, NULL where the level has none; they take
     * N >= gemm_tall_min_n (tall) and N >= gemm_long_min_n (long); narrow
     * any 1 <= N <= SG_GEMM_NARROW_MAX_N */
    int gemm_tall_min_n, gemm_long_min_n;
    sg_gemm_tall_width_fn gemm_tall_width;
    sg_gemm_tall_pack_fn gemm_tall_pack;
    sg_gemm_tall_fn gemm_tall;
    sg_gemm_long_fn gemm_long;
    sg_gemm_narrow_fn gemm_narrow;

    /* ---- elementwise (elementwise.c); any split of [0, n) gives the same values ---- */
    /* y[i] = a[i*sa] (k) b[i*sb], i < n; sa, sb in {0, 1} (0: a scalar operand);
     * GT and EQ give 1.f or 0.f */
    void (*binary)(sg_kbin k, float *restrict y, const float *restrict a, size_t sa, const float *restrict b,
                   size_t sb, size_t n);
    /* rows [o0, o1) of y = a (k) b broadcast as bc describes; a row is
     * bc->dim[0] floats */
    void (*binary_rows)(sg_kbin k, float *restrict y, const float *restrict a, const float *restrict b,
                        const sg_kbcast *bc, size_t o0, size_t o1);
    /* y[i] = f(x[i]), i < n: -x, exp, log, max(x, 0), x^p, x + p, x * p */
    void (*unary)(sg_kun k, float *restrict y, const float *restrict x, float p, size_t n);
    /* dx[i] = dy[i] * (x[i] > 0 ? 1 : 0), i < n (relu's local derivative) */
    void (*relu_grad)(float *restrict dx, const float *restrict x, const float *restrict dy, size_t n);
    /* y[i] = (float)x[i] / div, i < n (a dataset's pixels, div 255 or 1) */
    void (*bytes_to_float)(float *restrict y, const uint8_t *restrict x, float div, size_t n);

    /* ---- reductions (reduce.c): kind 0 = sum, 1 = max ----
     * A run is summed in four partial sums (elements i % 4 == 0..3, the
     * tail into the first), added as init + ((p0 + p1) + (p2 + p3)); runs
     * are combined in the order of their outer index. Max starts at -inf. */
    /* y[0] = the reduction of x[0..n) */
    void (*reduce_all)(int kind, float *restrict y, const float *restrict x, size_t n);
    /* x (outer, inner) -> y (outer): y[o] for rows o in [lo, hi) */
    void (*reduce_rows)(int kind, float *restrict y, const float *restrict x, size_t inner, size_t lo,
                        size_t hi);
    /* x (outer, inner): y[i] (op)= x[o][i] for every o in order; y (inner)
     * holds the starting values */
    void (*reduce_cols)(int kind, float *restrict y, const float *restrict x, size_t outer, size_t inner);
    /* x (R, K, S) -> y (K): y[k] (op)= runs x[r][k][0..S) in the order of r,
     * for k in [lo, hi); y holds the starting values */
    void (*reduce_channels)(int kind, float *restrict y, const float *restrict x, size_t R, size_t K,
                            size_t S, size_t lo, size_t hi);
    /* x (A, R, B, S) -> y (A, B): y[a][b] = the reduction of the R x S
     * window, for a in [lo, hi) */
    void (*reduce_windows)(int kind, float *restrict y, const float *restrict x, size_t R, size_t B,
                           size_t S, size_t lo, size_t hi);
    /* any reduction: x has shape[0..ndim), ndim >= 1, the dims in `mask`
     * reduced; y (x's shape without them) holds the starting values */
    void (*reduce_general)(int kind, float *restrict y, const float *restrict x, int ndim, const int *shape,
                           uint32_t mask);
    /* max's local derivative, x (outer, inner), y = max over rows (outer),
     * dy (outer): dx[o][i] = (x[o][i] == y[o]) * (dy[o] / count of maxima
     * in row o), rows o in [lo, hi) */
    void (*max_grad_rows)(float *restrict dx, const float *restrict x, const float *restrict y,
                          const float *restrict dy, size_t inner, size_t lo, size_t hi);
    /* the same for windows: x, dx (A, R, B, S), y, dy (A, B), a in [lo, hi) */
    void (*max_grad_windows)(float *restrict dx, const float *restrict x, const float *restrict y,
                             const float *restrict dy, size_t R, size_t B, size_t S, size_t lo, size_t hi);

    /* ---- unfold / fold (unfold.c) ---- */
    /* im2col: cols (N*OH*OW, C*KH*KW) from x (N, C, H, W), the bands
     * [lo, hi) only, band = n * OH + oh (the OW rows of output row oh of
     * image n); entries outside the image read w.pad_value */
    void (*unfold)(float *restrict cols, const float *restrict x, const sg_kwindow *g, size_t lo, size_t hi);
    /* col2im: images [lo, hi) of x (N, C, H, W) = the sums of the column
     * entries that came from each pixel (padding entries dropped); x is
     * overwritten, not added to */
    void (*fold)(float *restrict x, const float *restrict cols, const sg_kwindow *g, size_t lo, size_t hi);

    /* ---- shape ops (shape.c) ---- */
    /* blocks b in [lo, hi) of x, each (R, C), into y's (C, R) blocks:
     * y[b][j][i] = x[b][i][j] */
    void (*transpose)(float *restrict y, const float *restrict x, size_t R, size_t C, size_t lo, size_t hi);
    /* y, contiguous with dims gsize[0..ng) (ng >= 1), takes x at offset
     * sum(index[g] * st[g]) */
    void (*permute_walk)(float *restrict y, const float *restrict x, int ng, const size_t *gsize,
                         const size_t *st);
    /* y (shape[0..ndim)) = x (xshape[0..xndim)) broadcast to it (NumPy rules; x's
     * shape must broadcast to y's) */
    void (*broadcast)(float *restrict y, const float *restrict x, int ndim, const int *shape, int xndim,
                      const int *xshape);

    /* ---- optimizer updates (optim_update.c): elements [lo, hi) of a->w ---- */
    void (*update_sgd)(const sg_kupdate *a, size_t lo, size_t hi);      /* w -= lr·g */
    void (*update_momentum)(const sg_kupdate *a, size_t lo, size_t hi); /* s0: velocity */
    void (*update_adagrad)(const sg_kupdate *a, size_t lo, size_t hi);  /* s0: sum of g² */
    void (*update_rmsprop)(const sg_kupdate *a, size_t lo, size_t hi);  /* s0: mean of g² */
    void (*update_adam)(const sg_kupdate *a, size_t lo, size_t hi);     /* s0, s1: moments m, v */
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
