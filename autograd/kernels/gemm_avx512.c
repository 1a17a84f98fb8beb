/*
 * gemm_avx512.c — AVX-512 kernels for thin matrix products that a general
 * sgemm handles poorly: convolution's tall, thin product with a short inner
 * dimension (forward: (N*OH*OW, C*KH*KW) @ (C*KH*KW, FN), K = 25) and its
 * weight gradient, a small output summed over a very long K (dW: (FN, K)^T
 * ... over K = N*OH*OW), and a dense layer's weight gradient with few
 * outputs. General sgemm spends most of its time packing panels for these;
 * here the operands are already in a usable layout:
 *
 *   tall:  C(i, :) = sum_k A(i, k) * op(B)(k, :) — op(B) (K <= 1024, N <= 128)
 *          is packed once into a (K, NP) block padded to whole vectors, and
 *          each group of 3, 4 (or 8) rows of C is a set of register accumulators.
 *   long:  C = op(A) op(B) with A stored (K, M) and B stored (K, N <= 32):
 *          the sum of one outer product per k. Each slice of K goes through
 *          a padded copy of B's rows (in L1) and register tiles of 6 rows of C.
 *   narrow: C = A^T B with A stored (K, M) and N <= 16 (a dense layer's
 *          x^T dy with 10 outputs): the vectors run along M, down a column
 *          of C, because row k of A is contiguous in M. A strip of 32 rows
 *          of C keeps 2 x J accumulators (J <= 12 columns per pass), per k
 *          two loads of A and J broadcasts of B, read in place (no packing);
 *          each 16 x J block is transposed in registers before it is
 *          stored. Vectorising along N instead (as a general sgemm's
 *          kernels do) fills 10 of 16 lanes: OpenBLAS 0.3.21's SkylakeX
 *          kernels run 100 x 10 x 100 at about 100 GFLOP/s, this at ~140.
 *
 * Tall's tails (N <= 64): rows of C are stored as whole vectors when C's
 * rows are back to back and the next row is written later by the same
 * thread (the extra lanes land there and are overwritten); otherwise lane
 * by lane. Wider tiles, and narrow, use masked stores.
 *
 * Tall and long use generic vectors of 16 floats (one zmm register; GCC
 * and Clang), narrow the intrinsics for its masks and shuffles; the tiles
 * are sized for AVX-512's 32 registers. This file is compiled
 * for AVX-512 alone and runs only where isa.c found it (gemm_avx2.c has the
 * AVX2 kernels, tiled for 16 registers); gemm.c decides per shape whether
 * they or the BLAS run a product. The caller splits the rows (tall, narrow) or K (long) across the
 * thread pool.
 * Sums are formed in a different order than the BLAS's (and with fused
 * multiply-adds), so results agree with it to rounding, not bit for bit.
 */
#include "sg_kernels.h"

#include <immintrin.h>
#include <limits.h>
#include <string.h>

/* Compiled with -ffp-contract=fast (meson.build): -std=c11 would otherwise
 * keep a * b + c from becoming fused multiply-adds, and these kernels are
 * nothing but multiply-adds. */

typedef float v16f __attribute__((vector_size(64)));
typedef int v16i __attribute__((vector_size(64)));

static inline v16f vload(const float *p)
{
    v16f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void vstore(float *p, v16f v) { memcpy(p, &v, sizeof v); }

static inline v16f vbroadcast(float x) { return (v16f){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x}; }

/* Write n (<= 16) lanes of v to c, added to what is there if accumulate.
 * With spill (and not accumulating), all 16 lanes are stored: the caller
 * knows that lanes past n land on the start of the next row of C, which it
 * stores whole afterwards. */
static inline void put(float *c, v16f v, int n, bool accumulate, bool spill)
{
    if (n == 16 || (spill && !accumulate)) {
        vstore(c, accumulate ? vload(c) + v : v);
        return;
    }
    float t[16];
    vstore(t, v);
    for (int i = 0; i < n; i++)
        c[i] = accumulate ? c[i] + t[i] : t[i];
}

/* ---- tall ---- */

/* The accumulators are named variables (not arrays) so that they stay in
 * registers: 8 rows x 16 columns, or 4 rows x 32 columns. */
#define SG_ROW(r) (a0 + (size_t)(r) * lda)

static void tall16(int i0, int i1, int N, int K, const float *A, int lda, const float *Bp, float *C, int ldc,
                   bool acc)
{
    int i = i0;
    for (; i + 8 <= i1; i += 8) {
        const float *a0 = A + (size_t)i * lda;
        v16f c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0}, c4 = {0}, c5 = {0}, c6 = {0}, c7 = {0};
        for (int k = 0; k < K; k++) {
            v16f b = vload(Bp + (size_t)k * 16);
            c0 += vbroadcast(SG_ROW(0)[k]) * b;
            c1 += vbroadcast(SG_ROW(1)[k]) * b;
            c2 += vbroadcast(SG_ROW(2)[k]) * b;
            c3 += vbroadcast(SG_ROW(3)[k]) * b;
            c4 += vbroadcast(SG_ROW(4)[k]) * b;
            c5 += vbroadcast(SG_ROW(5)[k]) * b;
            c6 += vbroadcast(SG_ROW(6)[k]) * b;
            c7 += vbroadcast(SG_ROW(7)[k]) * b;
        }
        float *c = C + (size_t)i * ldc;
        const bool sp = ldc == N; /* rows back to back: lanes past N spill into the next row */
        put(c, c0, N, acc, sp);
        put(c + ldc, c1, N, acc, sp);
        put(c + 2 * (size_t)ldc, c2, N, acc, sp);
        put(c + 3 * (size_t)ldc, c3, N, acc, sp);
        put(c + 4 * (size_t)ldc, c4, N, acc, sp);
        put(c + 5 * (size_t)ldc, c5, N, acc, sp);
        put(c + 6 * (size_t)ldc, c6, N, acc, sp);
        put(c + 7 * (size_t)ldc, c7, N, acc, sp && i + 8 < i1); /* the next row is ours */
    }
    for (; i < i1; i++) {
        const float *a = A + (size_t)i * lda;
        v16f c0 = {0};
        for (int k = 0; k < K; k++)
            c0 += vbroadcast(a[k]) * vload(Bp + (size_t)k * 16);
        put(C + (size_t)i * ldc, c0, N, acc, false);
    }
}

static void tall32(int i0, int i1, int N, int K, const float *A, int lda, const float *Bp, float *C, int ldc,
                   bool acc)
{
    const int n1 = N - 16;
    int i = i0;
    for (; i + 4 <= i1; i += 4) {
        const float *a0 = A + (size_t)i * lda;
        v16f c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0}, c30 = {0}, c31 = {0};
        for (int k = 0; k < K; k++) {
            v16f b0 = vload(Bp + (size_t)k * 32), b1 = vload(Bp + (size_t)k * 32 + 16);
            v16f x0 = vbroadcast(SG_ROW(0)[k]), x1 = vbroadcast(SG_ROW(1)[k]);
            v16f x2 = vbroadcast(SG_ROW(2)[k]), x3 = vbroadcast(SG_ROW(3)[k]);
            c00 += x0 * b0;
            c01 += x0 * b1;
            c10 += x1 * b0;
            c11 += x1 * b1;
            c20 += x2 * b0;
            c21 += x2 * b1;
            c30 += x3 * b0;
            c31 += x3 * b1;
        }
        float *c = C + (size_t)i * ldc;
        const bool sp = ldc == N; /* rows back to back: lanes past N spill into the next row */
        put(c, c00, 16, acc, true);
        put(c + 16, c01, n1, acc, sp);
        c += ldc;
        put(c, c10, 16, acc, true);
        put(c + 16, c11, n1, acc, sp);
        c += ldc;
        put(c, c20, 16, acc, true);
        put(c + 16, c21, n1, acc, sp);
        c += ldc;
        put(c, c30, 16, acc, true);
        put(c + 16, c31, n1, acc, sp && i + 4 < i1); /* the next row is ours */
    }
    for (; i < i1; i++) {
        const float *a = A + (size_t)i * lda;
        v16f c0 = {0}, c1 = {0};
        for (int k = 0; k < K; k++) {
            v16f x = vbroadcast(a[k]);
            c0 += x * vload(Bp + (size_t)k * 32);
            c1 += x * vload(Bp + (size_t)k * 32 + 16);
        }
        put(C + (size_t)i * ldc, c0, 16, acc, true);
        put(C + (size_t)i * ldc + 16, c1, n1, acc, false);
    }
}

/* One row of 32 < N <= 64 values from four vectors; only the last
 * non-empty vector is partial (and may spill, see put). */
static inline void put64(float *c, const v16f v[4], int N, bool acc, bool spill)
{
    put(c, v[0], 16, acc, true);
    put(c + 16, v[1], 16, acc, true);
    if (N <= 48) {
        put(c + 32, v[2], N - 32, acc, spill);
        return;
    }
    put(c + 32, v[2], 16, acc, true);
    put(c + 48, v[3], N - 48, acc, spill);
}

static void tall64(int i0, int i1, int N, int K, const float *A, int lda, const float *Bp, float *C, int ldc,
                   bool acc)
{
    int i = i0;
    for (; i + 4 <= i1; i += 4) {
        const float *a0 = A + (size_t)i * lda;
        v16f c00 = {0}, c01 = {0}, c02 = {0}, c03 = {0}, c10 = {0}, c11 = {0}, c12 = {0}, c13 = {0};
        v16f c20 = {0}, c21 = {0}, c22 = {0}, c23 = {0}, c30 = {0}, c31 = {0}, c32 = {0}, c33 = {0};
        for (int k = 0; k < K; k++) {
            const float *b = Bp + (size_t)k * 64;
            v16f b0 = vload(b), b1 = vload(b + 16), b2 = vload(b + 32), b3 = vload(b + 48);
            v16f x = vbroadcast(SG_ROW(0)[k]);
            c00 += x * b0;
            c01 += x * b1;
            c02 += x * b2;
            c03 += x * b3;
            x = vbroadcast(SG_ROW(1)[k]);
            c10 += x * b0;
            c11 += x * b1;
            c12 += x * b2;
            c13 += x * b3;
            x = vbroadcast(SG_ROW(2)[k]);
            c20 += x * b0;
            c21 += x * b1;
            c22 += x * b2;
            c23 += x * b3;
            x = vbroadcast(SG_ROW(3)[k]);
            c30 += x * b0;
            c31 += x * b1;
            c32 += x * b2;
            c33 += x * b3;
        }
        const v16f rows[4][4] = {{c00, c01, c02, c03}, {c10, c11, c12, c13}, {c20, c21, c22, c23},
                                 {c30, c31, c32, c33}};
        for (int r = 0; r < 4; r++)
            put64(C + (size_t)(i + r) * ldc, rows[r], N, acc, ldc == N && (r < 3 || i + 4 < i1));
    }
    for (; i < i1; i++) {
        const float *a = A + (size_t)i * lda;
        v16f c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
        for (int k = 0; k < K; k++) {
            const float *b = Bp + (size_t)k * 64;
            v16f x = vbroadcast(a[k]);
            c0 += x * vload(b);
            c1 += x * vload(b + 16);
            c2 += x * vload(b + 32);
            c3 += x * vload(b + 48);
        }
        const v16f row[4] = {c0, c1, c2, c3};
        put64(C + (size_t)i * ldc, row, N, acc, false);
    }
}

/* 64 < N <= 128 (an affine layer's input gradient dy W^T over a short K,
 * 100 x 100 x 10 in the MLP): a tile of R rows x V vectors (V = 5..8, the
 * packed width over 16) keeps R x V <= 28 accumulators; op(B)'s V vectors
 * of row k are mostly the multiply-adds' memory operands (read from L1),
 * A's R values are broadcast. The accumulators are an array indexed by
 * constants once the always-inline body is instantiated for one (R, V) and
 * its loops unrolled: GCC -O3 then keeps them in registers (without the
 * unroll pragmas it kept the array on the stack and copied it around each
 * tile: 1.86 against 1.53 us for 100 x 100 x 10). The last, partial vector
 * of a row goes out as a masked store. */
static inline __attribute__((always_inline)) void
wide_tile(const int R, const int V, int K, const float *a0, int lda, const float *Bp, float *c, int ldc, int N,
          bool acc)
{
    const int np = 16 * V;
    v16f s[4][8];
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++)
        _Pragma("GCC unroll 8") for (int v = 0; v < V; v++)
            s[r][v] = (v16f){0};
    for (int k = 0; k < K; k++) {
        const float *b = Bp + (size_t)k * np;
        _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
            const v16f x = vbroadcast(SG_ROW(r)[k]);
            _Pragma("GCC unroll 8") for (int v = 0; v < V; v++)
                s[r][v] += x * vload(b + 16 * v);
        }
    }
    /* the last vector's lanes of C: a masked store writes them alone */
    const __mmask16 m = (__mmask16)((1u << (N - 16 * (V - 1))) - 1);
    _Pragma("GCC unroll 4") for (int r = 0; r < R; r++) {
        float *cr = c + (size_t)r * ldc;
        _Pragma("GCC unroll 8") for (int v = 0; v < V - 1; v++)
            vstore(cr + 16 * v, acc ? vload(cr + 16 * v) + s[r][v] : s[r][v]);
        float *cl = cr + 16 * (V - 1);
        __m512 x = (__m512)s[r][V - 1];
        _mm512_mask_storeu_ps(cl, m, acc ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, cl), x) : x);
    }
}

#define WIDE_ROWS(V) ((V) == 8 ? 3 : 4) /* rows per tile for V vectors */
#define WIDE_INSTANCE(V)                                                                                        \
    static void wide##V(int i0, int i1, int N, int K, const float *A, int lda, const float *Bp, float *C,       \
                        int ldc, bool acc)                                                                    \
    {                                                                                                          \
        enum { H = WIDE_ROWS(V) };                                                                             \
        int i = i0;                                                                                            \
        for (; i + H <= i1; i += H)                                                                            \
            wide_tile(H, V, K, A + (size_t)i * lda, lda, Bp, C + (size_t)i * ldc, ldc, N, acc);     \
        const float *a = A + (size_t)i * lda;                                                                  \
        float *c = C + (size_t)i * ldc;                                                                        \
        switch (i1 - i) { /* the rows left: fewer than H */                                                   \
        case 3:                                                                                                \
            wide_tile(3, V, K, a, lda, Bp, c, ldc, N, acc);                                             \
            break;                                                                                             \
        case 2:                                                                                                \
            wide_tile(2, V, K, a, lda, Bp, c, ldc, N, acc);                                             \
            break;                                                                                             \
        case 1:                                                                                                \
            wide_tile(1, V, K, a, lda, Bp, c, ldc, N, acc);                                             \
            break;                                                                                             \
        default:                                                                                               \
            break;                                                                                             \
        }                                                                                                      \
    }
WIDE_INSTANCE(5)
WIDE_INSTANCE(6)
WIDE_INSTANCE(7)
WIDE_INSTANCE(8)

int sg_gemm_tall_width_avx512(int N) { return N <= 16 ? 16 : N <= 32 ? 32 : N <= 64 ? 64 : (N + 15) / 16 * 16; }

void sg_gemm_tall_pack_avx512(bool tb, int N, int K, const float *B, int ldb, float *Bp)
{
    const int np = sg_gemm_tall_width_avx512(N);
    if (tb && ldb <= INT_MAX / 16) {
        /* op(B)'s row k is B's column k: 16 of its values per gather (B's
         * rows n0..n0+15 at offset k), the lanes past N masked to 0 */
        const __m512i rows = _mm512_mullo_epi32(
            _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(ldb));
        for (int n0 = 0; n0 < np; n0 += 16) {
            const int left = N - n0;
            const __mmask16 m = left >= 16 ? 0xffff : left <= 0 ? 0 : (__mmask16)((1u << left) - 1);
            const float *b = B + (size_t)(left > 0 ? n0 : 0) * ldb;
            for (int k = 0; k < K; k++)
                _mm512_storeu_ps(Bp + (size_t)k * np + n0,
                                 _mm512_mask_i32gather_ps(_mm512_setzero_ps(), m, rows, b + k, 4));
        }
        return;
    }
    for (int k = 0; k < K; k++) {
        float *restrict d = Bp + (size_t)k * np;
        if (!tb)
            memcpy(d, B + (size_t)k * ldb, (size_t)N * sizeof *d);
        else
            for (int n = 0; n < N; n++)
                d[n] = B[(size_t)n * ldb + k];
        for (int n = N; n < np; n++)
            d[n] = 0.f;
    }
}

void sg_gemm_tall_avx512(int i0, int i1, int N, int K, const float *A, int lda, const float *Bp, float *C, int ldc,
                  bool accumulate)
{
    if (N <= 16)
        tall16(i0, i1, N, K, A, lda, Bp, C, ldc, accumulate);
    else if (N <= 32)
        tall32(i0, i1, N, K, A, lda, Bp, C, ldc, accumulate);
    else if (N <= 64)
        tall64(i0, i1, N, K, A, lda, Bp, C, ldc, accumulate);
    else if (N <= 80)
        wide5(i0, i1, N, K, A, lda, Bp, C, ldc, accumulate);
    else if (N <= 96)
        wide6(i0, i1, N, K, A, lda, Bp, C, ldc, accumulate);
    else if (N <= 112)
        wide7(i0, i1, N, K, A, lda, Bp, C, ldc, accumulate);
    else
        wide8(i0, i1, N, K, A, lda, Bp, C, ldc, accumulate);
}

/* ---- long ---- */

enum { KS = 128 }; /* rows of B copied (padded) per slice: it and A's slice stay in L1 */

/* P(M, 32) += A[k0:k1]^T @ B[k0:k1], A stored (K, M) row stride lda,
 * B stored (K, 16 <= N <= 32) row stride ldb; P's padding columns stay 0.
 * B's rows are copied as whole vectors (masked), except its very last row. */
void sg_gemm_long_avx512(int k0, int k1, int K, int M, int N, const float *A, int lda, const float *B, int ldb,
                  float *P)
{
    float bp[KS * 32] __attribute__((aligned(64)));
    v16i keep; /* all ones in lanes 16 + n < N */
    for (int n = 0; n < 16; n++)
        keep[n] = 16 + n < N ? -1 : 0;
    for (int ks = k0; ks < k1; ks += KS) {
        int nk = ks + KS < k1 ? KS : k1 - ks;
        for (int k = 0; k < nk; k++) {
            float *d = bp + (size_t)k * 32;
            const float *b = B + (size_t)(ks + k) * ldb;
            if (ks + k + 1 < K) { /* whole vectors: reading past N stays inside B */
                vstore(d, vload(b));
                vstore(d + 16, (v16f)((v16i)vload(b + 16) & keep));
            } else {
                for (int n = 0; n < 32; n++)
                    d[n] = n < N ? b[n] : 0.f;
            }
        }
        const float *as = A + (size_t)ks * lda;
        int m = 0;
        for (; m + 6 <= M; m += 6) { /* 6 rows of C: 12 accumulators */
            v16f c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
            v16f c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
            for (int k = 0; k < nk; k++) {
                const float *a = as + (size_t)k * lda + m;
                v16f b0 = vload(bp + (size_t)k * 32), b1 = vload(bp + (size_t)k * 32 + 16);
                v16f x = vbroadcast(a[0]);
                c00 += x * b0;
                c01 += x * b1;
                x = vbroadcast(a[1]);
                c10 += x * b0;
                c11 += x * b1;
                x = vbroadcast(a[2]);
                c20 += x * b0;
                c21 += x * b1;
                x = vbroadcast(a[3]);
                c30 += x * b0;
                c31 += x * b1;
                x = vbroadcast(a[4]);
                c40 += x * b0;
                c41 += x * b1;
                x = vbroadcast(a[5]);
                c50 += x * b0;
                c51 += x * b1;
            }
            float *p = P + (size_t)m * 32;
            const v16f acc[12] = {c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51};
            for (int q = 0; q < 12; q++)
                vstore(p + 16 * q, vload(p + 16 * q) + acc[q]);
        }
        for (; m + 2 <= M; m += 2) {
            v16f c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0};
            for (int k = 0; k < nk; k++) {
                const float *a = as + (size_t)k * lda + m;
                v16f b0 = vload(bp + (size_t)k * 32), b1 = vload(bp + (size_t)k * 32 + 16);
                v16f x0 = vbroadcast(a[0]), x1 = vbroadcast(a[1]);
                c00 += x0 * b0;
                c01 += x0 * b1;
                c10 += x1 * b0;
                c11 += x1 * b1;
            }
            float *p = P + (size_t)m * 32;
            vstore(p, vload(p) + c00);
            vstore(p + 16, vload(p + 16) + c01);
            vstore(p + 32, vload(p + 32) + c10);
            vstore(p + 48, vload(p + 48) + c11);
        }
        for (; m < M; m++) {
            v16f c0 = {0}, c1 = {0};
            for (int k = 0; k < nk; k++) {
                v16f x = vbroadcast(as[(size_t)k * lda + m]);
                c0 += x * vload(bp + (size_t)k * 32);
                c1 += x * vload(bp + (size_t)k * 32 + 16);
            }
            float *p = P + (size_t)m * 32;
            vstore(p, vload(p) + c0);
            vstore(p + 16, vload(p + 16) + c1);
        }
    }
}

/* ---- narrow ---- */

/* The 16 x 16 block whose column j is v[j] (lane r: row r of C), stored
 * as rows: transposed in registers (unpack, then shuffles of pairs, of
 * 128-bit quarters twice: 64 shuffles), then rows [0, rows) of it, J
 * values each, with a masked store (added to C's values when acc). */
static inline __attribute__((always_inline)) void narrow_store(__m512 v[16], int J, float *c, int ldc, int rows,
                                                                bool acc)
{
    __m512 t[16];
    for (int j = 0; j < 16; j += 2) {
        t[j] = _mm512_unpacklo_ps(v[j], v[j + 1]);
        t[j + 1] = _mm512_unpackhi_ps(v[j], v[j + 1]);
    }
    for (int j = 0; j < 16; j += 4) { /* v[j + q]: columns q, q + 4, q + 8, q + 12 of rows j .. j + 3 */
        v[j] = _mm512_shuffle_ps(t[j], t[j + 2], 0x44);
        v[j + 1] = _mm512_shuffle_ps(t[j], t[j + 2], 0xEE);
        v[j + 2] = _mm512_shuffle_ps(t[j + 1], t[j + 3], 0x44);
        v[j + 3] = _mm512_shuffle_ps(t[j + 1], t[j + 3], 0xEE);
    }
    for (int j = 0; j < 16; j += 8)
        for (int q = 0; q < 4; q++) {
            t[j + q] = _mm512_shuffle_f32x4(v[j + q], v[j + q + 4], 0x88);
            t[j + q + 4] = _mm512_shuffle_f32x4(v[j + q], v[j + q + 4], 0xDD);
        }
    for (int q = 0; q < 8; q++) { /* v[q]: row q */
        v[q] = _mm512_shuffle_f32x4(t[q], t[q + 8], 0x88);
        v[q + 8] = _mm512_shuffle_f32x4(t[q], t[q + 8], 0xDD);
    }
    const __mmask16 m = (__mmask16)((1u << J) - 1);
    for (int q = 0; q < rows; q++) {
        float *cr = c + (size_t)q * ldc;
        _mm512_mask_storeu_ps(cr, m, acc ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, cr), v[q]) : v[q]);
    }
}

/* One strip of C: S (1 or 2) vectors of 16 rows x J (<= 12) columns, the
 * rows [0, rows) of it that exist (A's loads masked past them). The
 * accumulators p<j> (rows 0-15) and q<j> (rows 16-31) are named variables
 * so that they stay in registers: 24 + 2 rows of A + a broadcast <= 32. */
#define NW_ACC(j) __m512 p##j = _mm512_setzero_ps(), q##j = _mm512_setzero_ps()
#define NW_FMA(j)                                                                                          \
    if (J > j) {                                                                                           \
        const __m512 x = _mm512_set1_ps(b[j]);                                                             \
        p##j = _mm512_fmadd_ps(a0, x, p##j);                                                               \
        if (S > 1)                                                                                         \
            q##j = _mm512_fmadd_ps(a1, x, q##j);                                                           \
    }

static inline __attribute__((always_inline)) void narrow_strip(const int S, const int J, int K, const float *A,
                                                                int lda, const float *B, int ldb, float *C,
                                                                int ldc, int rows, bool acc)
{
    NW_ACC(0);
    NW_ACC(1);
    NW_ACC(2);
    NW_ACC(3);
    NW_ACC(4);
    NW_ACC(5);
    NW_ACC(6);
    NW_ACC(7);
    NW_ACC(8);
    NW_ACC(9);
    NW_ACC(10);
    NW_ACC(11);
    const __mmask16 m0 = rows >= 16 ? 0xffff : (__mmask16)((1u << rows) - 1);
    const __mmask16 m1 = rows >= 32 ? 0xffff : rows > 16 ? (__mmask16)((1u << (rows - 16)) - 1) : 0;
    for (int k = 0; k < K; k++) {
        const float *a = A + (size_t)k * lda, *b = B + (size_t)k * ldb;
        const __m512 a0 = _mm512_maskz_loadu_ps(m0, a);
        const __m512 a1 = S > 1 ? _mm512_maskz_loadu_ps(m1, a + 16) : a0;
        NW_FMA(0)
        NW_FMA(1)
        NW_FMA(2)
        NW_FMA(3)
        NW_FMA(4)
        NW_FMA(5)
        NW_FMA(6)
        NW_FMA(7)
        NW_FMA(8)
        NW_FMA(9)
        NW_FMA(10)
        NW_FMA(11)
    }
    const __m512 z = _mm512_setzero_ps();
    __m512 v[16] = {p0, p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11, z, z, z, z};
    narrow_store(v, J, C, ldc, rows < 16 ? rows : 16, acc);
    if (S > 1) {
        __m512 w[16] = {q0, q1, q2, q3, q4, q5, q6, q7, q8, q9, q10, q11, z, z, z, z};
        narrow_store(w, J, C + (size_t)16 * ldc, ldc, rows - 16, acc);
    }
}
#undef NW_ACC
#undef NW_FMA

typedef void narrow_fn(int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int rows,
                       bool acc);
#define NW_INST(S, J)                                                                                      \
    static void narrow_##S##_##J(int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, \
                                 int rows, bool acc)                                                       \
    {                                                                                                      \
        narrow_strip(S, J, K, A, lda, B, ldb, C, ldc, rows, acc);                                          \
    }
#define NW_INST_J(S)                                                                                       \
    NW_INST(S, 1)                                                                                          \
    NW_INST(S, 2)                                                                                          \
    NW_INST(S, 3)                                                                                          \
    NW_INST(S, 4)                                                                                          \
    NW_INST(S, 5)                                                                                          \
    NW_INST(S, 6)                                                                                          \
    NW_INST(S, 7)                                                                                          \
    NW_INST(S, 8)                                                                                          \
    NW_INST(S, 9)                                                                                          \
    NW_INST(S, 10)                                                                                         \
    NW_INST(S, 11)                                                                                         \
    NW_INST(S, 12)
NW_INST_J(1)
NW_INST_J(2)
#define NW_ROW(S)                                                                                          \
    {NULL,          narrow_##S##_1, narrow_##S##_2,  narrow_##S##_3,  narrow_##S##_4,                      \
     narrow_##S##_5, narrow_##S##_6, narrow_##S##_7,  narrow_##S##_8,  narrow_##S##_9,                     \
     narrow_##S##_10, narrow_##S##_11, narrow_##S##_12}
static narrow_fn *const narrow_strips[2][13] = {NW_ROW(1), NW_ROW(2)};
#undef NW_INST
#undef NW_INST_J
#undef NW_ROW

/* Rows [i0, i1) of C = A^T B: strips of 32 rows (16 for the last few),
 * each through the columns in as few even passes of <= 12 as N needs
 * (one for N <= 12); a strip's rows of A stay in L1 between passes. */
void sg_gemm_narrow_avx512(int i0, int i1, int N, int K, const float *A, int lda, const float *B, int ldb,
                           float *C, int ldc, bool accumulate)
{
    int w[16];
    const int passes = sg_even_parts(N, 12, w);
    for (int i = i0; i < i1; i += 32) {
        const int rows = i1 - i < 32 ? i1 - i : 32;
        for (int p = 0, c0 = 0; p < passes; c0 += w[p++])
            narrow_strips[rows > 16][w[p]](K, A + i, lda, B + c0, ldb, C + (size_t)i * ldc + c0, ldc, rows,
                                           accumulate);
    }
}
