/*
 * gemm_avx2.c — the own thin products for AVX2: convolution's (tall, long)
 * and a dense layer's weight gradient (narrow); their contract is in
 * sg_kernels.h, and gemm.c decides where they run.
 *
 * The same three products as gemm_avx512.c, written for what AVX2 has: sixteen
 * ymm registers of 8 floats. gemm_avx512.c's tiles of 16-float vectors need
 * 32+ ymm registers when compiled for AVX2, and spill on every k.
 *
 *   tall:  C(i, :) = sum_k A(i, k) * op(B)(k, :). op(B) is packed once into
 *          Bp (K, NP), NP = N rounded up to 8, zero padded (but see the dot
 *          columns below). C is cut into blocks of R rows and panels of V
 *          ymm vectors (8V columns); a block-panel tile keeps R x V
 *          accumulators in registers over the whole of K, and per k loads
 *          V vectors of Bp and broadcasts R values of A:
 *              R x V accumulators + V row vectors + 1 broadcast <= 16 ymm,
 *          with R x V <= 12 (8x1, 6x2, 4x3; 2x4 for a last few rows): 12
 *          independent chains of fused multiply-adds hide their 4-cycle
 *          latency on 2 FMA ports. (3x4 would need 17 and clang spills.)
 *          A row block goes through every panel before the next block, so
 *          its R rows of A (R x K floats) are read from memory once and from
 *          L1 for the other panels.
 *          When N % 8 is 1 or 2 (and K >= 8) those last columns would make a
 *          vector of mostly padding, K multiply-adds per row for 1 or 2
 *          values: they are dot products along k instead (dot_tile: vectors
 *          of a row of A times a column of op(B), 4 rows x 2 columns of
 *          accumulators, summed across lanes at the end), and Bp keeps them
 *          as columns. N = 25: 4 + a lane sum instead of 30 per row.
 *   long:  P(M, 32) += sum_k A(k, :)^T B(k, :) with A stored (K, M), B (K, N):
 *          the same tiles with rows of P for rows of the tile (broadcasts
 *          from row k of A) and vectors of row k of B, read in place. K is
 *          cut into slices of about 24 KB of A and B (SLICE_FLOATS) that stay
 *          in L1 while every tile of P passes over it; a tile's accumulators
 *          are added into P at the end of each slice. The mask that clears
 *          the lanes past N is one more register: in the 4x3 tile (16
 *          without it) GCC reloads it from the stack each k, a load, no store.
 *
 *   narrow: C = A^T B with A stored (K, M) and N <= 16, vectors along M
 *          (as in gemm_avx512.c): strips of 16 rows (2 vectors) x J <= 6
 *          columns per pass, 12 accumulators + 2 rows of A + a broadcast,
 *          each 8 x J block transposed in registers (transpose8) and
 *          stored by put(). A strip with fewer than 16 rows loads A masked.
 *
 * Tiles are instances of one always-inline body per product with the shape
 * (R, V) as compile-time constants. The accumulators are named variables,
 * not arrays: GCC keeps a small array of vectors in memory and loads and
 * stores it on every k.
 *
 * Edges. Tall: the last block of a range has the rows left (R < the block
 * height), and a panel's last vector may have fewer than 8 columns of C: it
 * is stored in pieces of 4, 2 and 1 floats, never past column N-1 (other
 * threads own the other rows of C; a masked store costs more on some AMD
 * cores). So exactly rows [i0,i1) x columns [0,N) are written; the dot
 * columns read the last K % 8 values of a row of A with a masked load.
 * Long: B is read in whole vectors, lanes past N are cleared with a mask
 * (they hold the next row or padding), so P's columns >= N get + 0; the last
 * few rows of B, where a whole vector would read past its end, are first
 * copied into a zero-padded stack buffer.
 *
 * Sums are formed in their own order with fused multiply-adds: results
 * agree with a BLAS's to rounding, not bit for bit. No allocation; the only
 * aligned accesses are to this file's own stack buffers.
 */
#include "sg_kernels.h"

#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

enum {
    MAX_V = 4, /* vectors per tile row: 32 columns */
    MAX_ACC = 12, /* accumulators per tile */
};

/* Vectors per panel for tiles of r rows: r x V <= 12 accumulators, and
 * with V vectors of B and a broadcast within 16 registers (3 x 4 is not). */
static int vmax_for(int r)
{
    int v = MAX_ACC / r;
    while (v > 1 && r * v + v + 1 > 16)
        v--;
    return v > MAX_V ? MAX_V : v;
}

/* Store the first n (1..8) lanes of v at c, added to c's values when acc.
 * A partial vector goes out as pieces of 4, 2 and 1 floats. */
INLINE void put(float *c, __m256 v, int n, bool acc)
{
    if (n >= 8) {
        if (acc)
            v = _mm256_add_ps(v, _mm256_loadu_ps(c));
        _mm256_storeu_ps(c, v);
        return;
    }
    __m128 h = _mm256_castps256_ps128(v);
    if (n >= 4) {
        if (acc)
            h = _mm_add_ps(h, _mm_loadu_ps(c));
        _mm_storeu_ps(c, h);
        h = _mm256_extractf128_ps(v, 1);
        c += 4;
        n -= 4;
    }
    if (n >= 2) {
        double d;
        if (acc) {
            memcpy(&d, c, sizeof d);
            h = _mm_add_ps(h, _mm_castpd_ps(_mm_set_sd(d)));
        }
        d = _mm_cvtsd_f64(_mm_castps_pd(h));
        memcpy(c, &d, sizeof d);
        h = _mm_movehl_ps(h, h);
        c += 2;
        n -= 2;
    }
    if (n) {
        if (acc)
            h = _mm_add_ss(h, _mm_load_ss(c));
        _mm_store_ss(c, h);
    }
}

/* One row of a tall tile: V vectors to c, the last holding n - 8(V-1) columns. */
INLINE void put_row(float *c, const int V, __m256 v0, __m256 v1, __m256 v2, __m256 v3, int n, bool acc)
{
    put(c, v0, n, acc);
    if (V > 1)
        put(c + 8, v1, n - 8, acc);
    if (V > 2)
        put(c + 16, v2, n - 16, acc);
    if (V > 3)
        put(c + 24, v3, n - 24, acc);
}

/* P's row p (whole vectors) += the tile's row. */
INLINE void add_row(float *p, const int V, __m256 v0, __m256 v1, __m256 v2, __m256 v3)
{
    _mm256_storeu_ps(p, _mm256_add_ps(_mm256_loadu_ps(p), v0));
    if (V > 1)
        _mm256_storeu_ps(p + 8, _mm256_add_ps(_mm256_loadu_ps(p + 8), v1));
    if (V > 2)
        _mm256_storeu_ps(p + 16, _mm256_add_ps(_mm256_loadu_ps(p + 16), v2));
    if (V > 3)
        _mm256_storeu_ps(p + 24, _mm256_add_ps(_mm256_loadu_ps(p + 24), v3));
}

/* Accumulators c<row><vector> of a tile of up to 8 rows x 4 vectors; the
 * instances use at most 12 of them, the others are dead code. */
#define Z _mm256_setzero_ps()
#define ACC_ROW(r) __m256 c##r##0 = Z, c##r##1 = Z, c##r##2 = Z, c##r##3 = Z
#define DECLARE_ACC                                                                                        \
    ACC_ROW(0);                                                                                            \
    ACC_ROW(1);                                                                                            \
    ACC_ROW(2);                                                                                            \
    ACC_ROW(3);                                                                                            \
    ACC_ROW(4);                                                                                            \
    ACC_ROW(5);                                                                                            \
    ACC_ROW(6);                                                                                            \
    ACC_ROW(7)
/* Row r of the tile += x * (b0, b1, b2, b3), x = the broadcast of *(src). */
#define FMA_ROW(r, src)                                                                                    \
    if (R > r) {                                                                                           \
        const __m256 x = _mm256_broadcast_ss(src);                                                         \
        c##r##0 = _mm256_fmadd_ps(x, b0, c##r##0);                                                         \
        if (V > 1)                                                                                         \
            c##r##1 = _mm256_fmadd_ps(x, b1, c##r##1);                                                     \
        if (V > 2)                                                                                         \
            c##r##2 = _mm256_fmadd_ps(x, b2, c##r##2);                                                     \
        if (V > 3)                                                                                         \
            c##r##3 = _mm256_fmadd_ps(x, b3, c##r##3);                                                     \
    }
#define ROW_VECS(r) c##r##0, c##r##1, c##r##2, c##r##3

/* ---- tall ---- */

/* C's R rows from c (stride ldc; n columns, 8(V-1) < n <= 8V) = (or +=)
 * A's R rows from a (stride lda, K values each) @ the panel b of Bp (K rows,
 * stride np). Rows come as a base and a stride, not arrays of pointers:
 * with K = 10 (the MLP's dh) a tile is ~60 cycles of multiply-adds, and
 * the driver's work per block (the row pointers for each panel, the panel
 * widths) was a sixth of the time. */
INLINE void tall_tile(const int R, const int V, int K, const float *restrict a, int lda, const float *restrict b,
                      int np, float *c, int ldc, int n, bool acc)
{
    const size_t s = (size_t)lda;
    const float *restrict a0 = a, *restrict a1 = a + (R > 1 ? s : 0), *restrict a2 = a + (R > 2 ? 2 * s : 0),
                          *restrict a3 = a + (R > 3 ? 3 * s : 0), *restrict a4 = a + (R > 4 ? 4 * s : 0),
                          *restrict a5 = a + (R > 5 ? 5 * s : 0), *restrict a6 = a + (R > 6 ? 6 * s : 0),
                          *restrict a7 = a + (R > 7 ? 7 * s : 0);
    DECLARE_ACC;
    for (int k = 0; k < K; k++) {
        const float *bk = b + (size_t)k * np;
        const __m256 b0 = _mm256_loadu_ps(bk);
        const __m256 b1 = V > 1 ? _mm256_loadu_ps(bk + 8) : Z;
        const __m256 b2 = V > 2 ? _mm256_loadu_ps(bk + 16) : Z;
        const __m256 b3 = V > 3 ? _mm256_loadu_ps(bk + 24) : Z;
        FMA_ROW(0, a0 + k)
        FMA_ROW(1, a1 + k)
        FMA_ROW(2, a2 + k)
        FMA_ROW(3, a3 + k)
        FMA_ROW(4, a4 + k)
        FMA_ROW(5, a5 + k)
        FMA_ROW(6, a6 + k)
        FMA_ROW(7, a7 + k)
    }
    put_row(c, V, ROW_VECS(0), n, acc);
    if (R > 1)
        put_row(c + (size_t)ldc, V, ROW_VECS(1), n, acc);
    if (R > 2)
        put_row(c + 2 * (size_t)ldc, V, ROW_VECS(2), n, acc);
    if (R > 3)
        put_row(c + 3 * (size_t)ldc, V, ROW_VECS(3), n, acc);
    if (R > 4)
        put_row(c + 4 * (size_t)ldc, V, ROW_VECS(4), n, acc);
    if (R > 5)
        put_row(c + 5 * (size_t)ldc, V, ROW_VECS(5), n, acc);
    if (R > 6)
        put_row(c + 6 * (size_t)ldc, V, ROW_VECS(6), n, acc);
    if (R > 7)
        put_row(c + 7 * (size_t)ldc, V, ROW_VECS(7), n, acc);
}

typedef void tall_fn(int K, const float *a, int lda, const float *b, int np, float *c, int ldc, int n, bool acc);

#define TALL_INSTANCE(R, V)                                                                                \
    static void tall_##R##x##V(int K, const float *a, int lda, const float *b, int np, float *c, int ldc,  \
                               int n, bool acc)                                                            \
    {                                                                                                      \
        tall_tile(R, V, K, a, lda, b, np, c, ldc, n, acc);                                                 \
    }
TALL_INSTANCE(1, 1)
TALL_INSTANCE(2, 1)
TALL_INSTANCE(3, 1)
TALL_INSTANCE(4, 1)
TALL_INSTANCE(5, 1)
TALL_INSTANCE(6, 1)
TALL_INSTANCE(7, 1)
TALL_INSTANCE(8, 1)
TALL_INSTANCE(1, 2)
TALL_INSTANCE(2, 2)
TALL_INSTANCE(3, 2)
TALL_INSTANCE(4, 2)
TALL_INSTANCE(5, 2)
TALL_INSTANCE(6, 2)
TALL_INSTANCE(1, 3)
TALL_INSTANCE(2, 3)
TALL_INSTANCE(3, 3)
TALL_INSTANCE(4, 3)
TALL_INSTANCE(1, 4)
TALL_INSTANCE(2, 4)

/* The instance for R rows x V vectors (R x V <= 12, see vmax_for). */
static tall_fn *const tall_tiles[9][MAX_V + 1] = {
    [1] = {0, tall_1x1, tall_1x2, tall_1x3, tall_1x4},
    [2] = {0, tall_2x1, tall_2x2, tall_2x3, tall_2x4},
    [3] = {0, tall_3x1, tall_3x2, tall_3x3},
    [4] = {0, tall_4x1, tall_4x2, tall_4x3},
    [5] = {0, tall_5x1, tall_5x2},
    [6] = {0, tall_6x1, tall_6x2},
    [7] = {0, tall_7x1},
    [8] = {0, tall_8x1},
};

/* Rows per block for a packed width of nv vectors (index nv = 1..16): 6 rows
 * and panels of 2 vectors (nv = 2, 4, 8, 16), 4 rows and panels of 3 (and 2),
 * 8 rows of 1. -DTALL_ROWS=... overrides it, for measuring others. */
#ifndef TALL_ROWS
#define TALL_ROWS 0, 8, 6, 4, 6, 4, 4, 4, 6, 4, 4, 4, 4, 4, 4, 4, 6
#endif
static const int tall_rows[17] = {TALL_ROWS};

/* Sum of v's 8 lanes. */
INLINE float hsum(__m256 v)
{
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* C's columns n0, n0+1 (L of them) of its R rows from c (stride ldc) =
 * (or +=) the dot products of A's R rows from a (stride lda) with columns
 * bt, bt + kp of op(B) (stored along k, zero padded to kp = K rounded up to
 * 8). Vectors run along k: the last K % 8 values of a row come in through a
 * masked load (never past the row). */
INLINE void dot_tile(const int R, const int L, int K, const float *restrict a, int lda, const float *restrict bt,
                     int kp, float *c, int ldc, int n0, bool acc)
{
    const size_t s = (size_t)lda;
    const float *restrict a0 = a, *restrict a1 = a + (R > 1 ? s : 0), *restrict a2 = a + (R > 2 ? 2 * s : 0),
                          *restrict a3 = a + (R > 3 ? 3 * s : 0);
    __m256 d00 = Z, d01 = Z, d10 = Z, d11 = Z, d20 = Z, d21 = Z, d30 = Z, d31 = Z;
#define DOT_ROW(r, load)                                                                                   \
    if (R > r) {                                                                                           \
        const __m256 x = load;                                                                             \
        d##r##0 = _mm256_fmadd_ps(x, e0, d##r##0);                                                         \
        if (L > 1)                                                                                         \
            d##r##1 = _mm256_fmadd_ps(x, e1, d##r##1);                                                     \
    }
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        const __m256 e0 = _mm256_loadu_ps(bt + k), e1 = L > 1 ? _mm256_loadu_ps(bt + kp + k) : Z;
        DOT_ROW(0, _mm256_loadu_ps(a0 + k))
        DOT_ROW(1, _mm256_loadu_ps(a1 + k))
        DOT_ROW(2, _mm256_loadu_ps(a2 + k))
        DOT_ROW(3, _mm256_loadu_ps(a3 + k))
    }
    if (k < K) {
        const __m256i m =
            _mm256_cmpgt_epi32(_mm256_set1_epi32(K - k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        const __m256 e0 = _mm256_loadu_ps(bt + k), e1 = L > 1 ? _mm256_loadu_ps(bt + kp + k) : Z;
        DOT_ROW(0, _mm256_maskload_ps(a0 + k, m))
        DOT_ROW(1, _mm256_maskload_ps(a1 + k, m))
        DOT_ROW(2, _mm256_maskload_ps(a2 + k, m))
        DOT_ROW(3, _mm256_maskload_ps(a3 + k, m))
    }
#undef DOT_ROW
    const __m256 d[4][2] = {{d00, d01}, {d10, d11}, {d20, d21}, {d30, d31}};
    for (int r = 0; r < R; r++)
        for (int l = 0; l < L; l++) {
            float *o = c + r * (size_t)ldc + n0 + l;
            const float v = hsum(d[r][l]);
            *o = acc ? *o + v : v;
        }
}

typedef void dot_fn(int K, const float *a, int lda, const float *bt, int kp, float *c, int ldc, int n0, bool acc);

#define DOT_INSTANCE(R, L)                                                                                 \
    static void dot_##R##x##L(int K, const float *a, int lda, const float *bt, int kp, float *c, int ldc,  \
                              int n0, bool acc)                                                            \
    {                                                                                                      \
        dot_tile(R, L, K, a, lda, bt, kp, c, ldc, n0, acc);                                                \
    }
DOT_INSTANCE(1, 1)
DOT_INSTANCE(2, 1)
DOT_INSTANCE(3, 1)
DOT_INSTANCE(4, 1)
DOT_INSTANCE(1, 2)
DOT_INSTANCE(2, 2)
DOT_INSTANCE(3, 2)
DOT_INSTANCE(4, 2)

static dot_fn *const dot_tiles[5][3] = {
    [1] = {0, dot_1x1, dot_1x2},
    [2] = {0, dot_2x1, dot_2x2},
    [3] = {0, dot_3x1, dot_3x2},
    [4] = {0, dot_4x1, dot_4x2},
};

/* The last L = N % 8 columns go through dot_tile when there are 1 or 2 of
 * them and K >= 8: L x ceil(K/8) multiply-adds per row instead of the K of a
 * vector of mostly padding (N = 25: 4 instead of 30; N = 10: 26 instead of 100). */
static int dot_cols(int N, int K) { return (N % 8 == 1 || N % 8 == 2) && K >= 8 ? N % 8 : 0; }

int sg_gemm_tall_width_avx2(int N) { return (N + 7) / 8 * 8; }

/* col[q] = lane q of r[0..8): the usual 8 x 8 transposition in registers
 * (unpack, shuffle, swap of halves: 24 shuffles). */
INLINE void transpose8(__m256 r0, __m256 r1, __m256 r2, __m256 r3, __m256 r4, __m256 r5, __m256 r6, __m256 r7,
                       __m256 col[8])
{
    const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    /* s<q>: lanes q (low half, r0-r3) and q + 4 (high half), likewise u<q> for r4-r7 */
    const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u0 = _mm256_shuffle_ps(t4, t6, 0x44), u1 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t5, t7, 0x44), u3 = _mm256_shuffle_ps(t5, t7, 0xEE);
    col[0] = _mm256_permute2f128_ps(s0, u0, 0x20);
    col[1] = _mm256_permute2f128_ps(s1, u1, 0x20);
    col[2] = _mm256_permute2f128_ps(s2, u2, 0x20);
    col[3] = _mm256_permute2f128_ps(s3, u3, 0x20);
    col[4] = _mm256_permute2f128_ps(s0, u0, 0x31);
    col[5] = _mm256_permute2f128_ps(s1, u1, 0x31);
    col[6] = _mm256_permute2f128_ps(s2, u2, 0x31);
    col[7] = _mm256_permute2f128_ps(s3, u3, 0x31);
}

/* Bp's rows [k0, k0 + kk) x columns [n0, n0 + 8) from op(B) = B^T: B's
 * rows n0 .. n0 + 7 (zeros past row nf: Bp's padding), kk <= 8 values of
 * k each, transposed in registers. The last K % 8 values of a row come in
 * by a masked load, never past the row. The scalar loop it replaces (a
 * store per value, down a column of Bp) took 0.36 us of the 2.8 us of the
 * MLP's dh = dy W2^T (100 x 100 x 10) through this kernel; this, 0.14. */
INLINE void pack_block_transposed(int nf, int n0, int k0, int kk, const float *B, int ldb, float *Bp, int np)
{
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(kk), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const float *b = B + (size_t)n0 * ldb + k0;
#define ROW(j) (n0 + (j) < nf ? _mm256_maskload_ps(b + (size_t)(j) * ldb, m) : Z)
    __m256 col[8];
    transpose8(ROW(0), ROW(1), ROW(2), ROW(3), ROW(4), ROW(5), ROW(6), ROW(7), col);
#undef ROW
    for (int i = 0; i < kk; i++)
        _mm256_storeu_ps(Bp + (size_t)(k0 + i) * np + n0, col[i]);
}

/* Bp (K x the width, the kernel's own layout): op(B)'s first nf columns as K
 * rows of nf floats, nf = N - the dot columns, rounded up to 8 and zero
 * padded; then the dot columns (if any), each K floats zero padded to kp. */
void sg_gemm_tall_pack_avx2(bool tb, int N, int K, const float *B, int ldb, float *Bp)
{
    const int nd = dot_cols(N, K), nf = N - nd, np = (nf + 7) / 8 * 8, kp = (K + 7) / 8 * 8;
    if (tb) { /* B's rows are op(B)'s columns: 8 x 8 blocks, padding included */
        for (int n0 = 0; n0 < nf; n0 += 8)
            for (int k0 = 0; k0 < K; k0 += 8)
                pack_block_transposed(nf, n0, k0, K - k0 < 8 ? K - k0 : 8, B, ldb, Bp, np);
    } else {
        for (int k = 0; k < K; k++) {
            float *restrict d = Bp + (size_t)k * np;
            memcpy(d, B + (size_t)k * ldb, (size_t)nf * sizeof *d);
            for (int n = nf; n < np; n++)
                d[n] = 0.f;
        }
    }
    float *restrict bt = Bp + (size_t)K * np;
    for (int l = 0; l < nd; l++) {
        float *restrict d = bt + (size_t)l * kp;
        for (int k = 0; k < kp; k++)
            d[k] = k >= K ? 0.f : tb ? B[(size_t)(nf + l) * ldb + k] : B[(size_t)k * ldb + nf + l];
    }
}

void sg_gemm_tall_avx2(int i0, int i1, int N, int K, const float *A, int lda, const float *Bp, float *C,
                       int ldc, bool accumulate)
{
    const int nd = dot_cols(N, K), nf = N - nd, np = (nf + 7) / 8 * 8, nv = np / 8, kp = (K + 7) / 8 * 8;
    const float *bt = Bp + (size_t)K * np;
    const int H = nv ? tall_rows[nv] : 8;
    int w[16];
    int R = H, panels = nv ? sg_even_parts(nv, vmax_for(H), w) : 0;
    for (int i = i0; i < i1; i += H) {
        if (i1 - i < H) { /* the last rows: fewer rows fit wider panels (H's would be valid too) */
            R = i1 - i;
            panels = nv ? sg_even_parts(nv, vmax_for(R), w) : 0;
        }
        const float *a = A + (size_t)i * lda;
        float *c = C + (size_t)i * ldc;
        for (int p = 0, v0 = 0; p < panels; v0 += w[p++]) {
            const int n = nf - 8 * v0 < 8 * w[p] ? nf - 8 * v0 : 8 * w[p];
            tall_tiles[R][w[p]](K, a, lda, Bp + 8 * v0, np, c + 8 * v0, ldc, n, accumulate);
        }
        if (nd) /* the same rows, hot in L1: groups of up to 4 */
            for (int r = 0; r < R; r += 4)
                dot_tiles[R - r < 4 ? R - r : 4][nd](K, a + (size_t)r * lda, lda, bt, kp, c + (size_t)r * ldc, ldc,
                                                     nf, accumulate);
    }
}

/* ---- long ---- */

#ifndef SLICE_FLOATS
#define SLICE_FLOATS 6144 /* of A and B per slice of K: 24 KB, L1 holds them */
#endif

/* P rows [0, R) (row stride 32, V vectors) += sum over nk rows k of
 * a[k*lda + r] * (b[k*ldb + 8v ...], the last vector & mask). */
INLINE void long_tile(const int R, const int V, int nk, const float *restrict a, int lda, const float *restrict b,
                      int ldb, __m256 mask, float *restrict P)
{
    DECLARE_ACC;
    for (int k = 0; k < nk; k++) {
        const float *ak = a + (size_t)k * lda, *bk = b + (size_t)k * ldb;
        __m256 b0 = _mm256_loadu_ps(bk);
        __m256 b1 = V > 1 ? _mm256_loadu_ps(bk + 8) : Z;
        __m256 b2 = V > 2 ? _mm256_loadu_ps(bk + 16) : Z;
        __m256 b3 = V > 3 ? _mm256_loadu_ps(bk + 24) : Z;
        if (V == 1)
            b0 = _mm256_and_ps(b0, mask);
        else if (V == 2)
            b1 = _mm256_and_ps(b1, mask);
        else if (V == 3)
            b2 = _mm256_and_ps(b2, mask);
        else
            b3 = _mm256_and_ps(b3, mask);
        FMA_ROW(0, ak)
        FMA_ROW(1, ak + 1)
        FMA_ROW(2, ak + 2)
        FMA_ROW(3, ak + 3)
        FMA_ROW(4, ak + 4)
        FMA_ROW(5, ak + 5)
        FMA_ROW(6, ak + 6)
        FMA_ROW(7, ak + 7)
    }
    add_row(P, V, ROW_VECS(0));
    if (R > 1)
        add_row(P + 32, V, ROW_VECS(1));
    if (R > 2)
        add_row(P + 64, V, ROW_VECS(2));
    if (R > 3)
        add_row(P + 96, V, ROW_VECS(3));
    if (R > 4)
        add_row(P + 128, V, ROW_VECS(4));
    if (R > 5)
        add_row(P + 160, V, ROW_VECS(5));
    if (R > 6)
        add_row(P + 192, V, ROW_VECS(6));
    if (R > 7)
        add_row(P + 224, V, ROW_VECS(7));
}

typedef void long_fn(int nk, const float *a, int lda, const float *b, int ldb, __m256 mask, float *P);

#define LONG_INSTANCE(R, V)                                                                                \
    static void long_##R##x##V(int nk, const float *a, int lda, const float *b, int ldb, __m256 mask,      \
                               float *P)                                                                   \
    {                                                                                                      \
        long_tile(R, V, nk, a, lda, b, ldb, mask, P);                                                      \
    }
LONG_INSTANCE(1, 1)
LONG_INSTANCE(2, 1)
LONG_INSTANCE(3, 1)
LONG_INSTANCE(4, 1)
LONG_INSTANCE(5, 1)
LONG_INSTANCE(6, 1)
LONG_INSTANCE(7, 1)
LONG_INSTANCE(8, 1)
LONG_INSTANCE(1, 2)
LONG_INSTANCE(2, 2)
LONG_INSTANCE(3, 2)
LONG_INSTANCE(4, 2)
LONG_INSTANCE(5, 2)
LONG_INSTANCE(6, 2)
LONG_INSTANCE(1, 3)
LONG_INSTANCE(2, 3)
LONG_INSTANCE(3, 3)
LONG_INSTANCE(4, 3)
LONG_INSTANCE(1, 4)
LONG_INSTANCE(2, 4)

static long_fn *const long_tiles[9][MAX_V + 1] = {
    [1] = {0, long_1x1, long_1x2, long_1x3, long_1x4},
    [2] = {0, long_2x1, long_2x2, long_2x3, long_2x4},
    [3] = {0, long_3x1, long_3x2, long_3x3},
    [4] = {0, long_4x1, long_4x2, long_4x3},
    [5] = {0, long_5x1, long_5x2},
    [6] = {0, long_6x1, long_6x2},
    [7] = {0, long_7x1},
    [8] = {0, long_8x1},
};

/* Rows of P per block for nv = 1..4 vectors of B (-DLONG_ROWS=... to try others). */
#ifndef LONG_ROWS
#define LONG_ROWS 0, 8, 6, 4, 6
#endif
static const int long_rows[MAX_V + 1] = {LONG_ROWS};

/* P += rows [0, nk) of a (stride lda) ^T @ rows of b (stride ldb, whole
 * vectors readable): every block of rows of P through every panel. */
static void long_slice(int nk, int M, int nv, const float *a, int lda, const float *b, int ldb, __m256 last_mask,
                       float *P)
{
    const __m256 ones = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    const int H = long_rows[nv];
    for (int m = 0; m < M; m += H) {
        const int R = M - m < H ? M - m : H;
        int w[16];
        const int panels = sg_even_parts(nv, vmax_for(R), w);
        int v0 = 0;
        for (int p = 0; p < panels; p++) {
            const __m256 mask = v0 + w[p] == nv ? last_mask : ones;
            long_tiles[R][w[p]](nk, a + m, lda, b + 8 * v0, ldb, mask, P + (size_t)m * 32 + 8 * v0);
            v0 += w[p];
        }
    }
}

void sg_gemm_long_avx2(int k0, int k1, int K, int M, int N, const float *A, int lda, const float *B, int ldb,
                       float *P)
{
    const int nv = (N + 7) / 8;
    const int width = 8 * nv; /* floats a whole-vector read of a row of B covers */
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    /* all ones in the lanes of the last vector that are columns < N */
    const __m256 last_mask = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(N - 8 * (nv - 1)), lane));
    /* rows [k0, kw) are read in place: row k's whole vectors end inside B,
     * i.e. k*ldb + width <= (K-1)*ldb + N */
    const size_t end = (size_t)(K - 1) * ldb + N;
    int kw = k1;
    while (kw > k0 && (size_t)(kw - 1) * ldb + width > end)
        kw--;
    int ks_rows = SLICE_FLOATS / (M + width); /* rows per slice */
    ks_rows = ks_rows < 16 ? 16 : ks_rows > 512 ? 512 : ks_rows;
    for (int ks = k0; ks < kw; ks += ks_rows) {
        const int nk = kw - ks < ks_rows ? kw - ks : ks_rows;
        long_slice(nk, M, nv, A + (size_t)ks * lda, lda, B + (size_t)ks * ldb, ldb, last_mask, P);
    }
    /* the others (the last row of B, up to 7 more when ldb < 8) through a padded copy */
    enum { TAIL = 8 };
    float bt[TAIL * 32] __attribute__((aligned(32)));
    for (int ks = kw; ks < k1; ks += TAIL) {
        const int nk = k1 - ks < TAIL ? k1 - ks : TAIL;
        for (int k = 0; k < nk; k++)
            for (int n = 0; n < 32; n++)
                bt[k * 32 + n] = n < N ? B[(size_t)(ks + k) * ldb + n] : 0.f;
        long_slice(nk, M, nv, A + (size_t)ks * lda, lda, bt, 32, last_mask, P);
    }
}

/* ---- narrow ---- */

/* Rows [0, rows) (<= 8) of the block whose column j < J is v<j> (lane r:
 * row r of C), J <= 6 values each, transposed in registers first. */
INLINE void narrow_store(const int J, __m256 v0, __m256 v1, __m256 v2, __m256 v3, __m256 v4, __m256 v5, float *c,
                         int ldc, int rows, bool acc)
{
    __m256 row[8];
    transpose8(v0, v1, v2, v3, v4, v5, Z, Z, row);
    for (int q = 0; q < rows; q++)
        put(c + (size_t)q * ldc, row[q], J, acc);
}

/* One strip of C: S (1 or 2) vectors of 8 rows x J (<= 6) columns, the
 * rows [0, rows) of it that exist; with T the loads of A are masked past
 * them. Per k: S rows of A, J broadcasts of B, S x J multiply-adds into
 * named accumulators p<j> (rows 0-7), q<j> (rows 8-15): 12 + 2 + 1 <= 16. */
#define NW_ACC(j) __m256 p##j = Z, q##j = Z
#define NW_FMA(j)                                                                                          \
    if (J > j) {                                                                                           \
        const __m256 x = _mm256_broadcast_ss(b + j);                                                       \
        p##j = _mm256_fmadd_ps(a0, x, p##j);                                                               \
        if (S > 1)                                                                                         \
            q##j = _mm256_fmadd_ps(a1, x, q##j);                                                           \
    }

INLINE void narrow_strip(const int S, const bool T, const int J, int K, const float *A, int lda, const float *B,
                         int ldb, float *C, int ldc, int rows, bool acc)
{
    NW_ACC(0);
    NW_ACC(1);
    NW_ACC(2);
    NW_ACC(3);
    NW_ACC(4);
    NW_ACC(5);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(rows), lane);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(rows - 8), lane);
    for (int k = 0; k < K; k++) {
        const float *a = A + (size_t)k * lda, *b = B + (size_t)k * ldb;
        const __m256 a0 = T ? _mm256_maskload_ps(a, m0) : _mm256_loadu_ps(a);
        const __m256 a1 = S < 2 ? a0 : T ? _mm256_maskload_ps(a + 8, m1) : _mm256_loadu_ps(a + 8);
        NW_FMA(0)
        NW_FMA(1)
        NW_FMA(2)
        NW_FMA(3)
        NW_FMA(4)
        NW_FMA(5)
    }
    narrow_store(J, p0, p1, p2, p3, p4, p5, C, ldc, rows < 8 ? rows : 8, acc);
    if (S > 1)
        narrow_store(J, q0, q1, q2, q3, q4, q5, C + (size_t)8 * ldc, ldc, rows - 8, acc);
}
#undef NW_ACC
#undef NW_FMA

typedef void narrow_fn(int K, const float *A, int lda, const float *B, int ldb, float *C, int ldc, int rows,
                       bool acc);
#define NW_INST(name, S, T, J)                                                                             \
    static void narrow_##name##_##J(int K, const float *A, int lda, const float *B, int ldb, float *C,      \
                                    int ldc, int rows, bool acc)                                           \
    {                                                                                                      \
        narrow_strip(S, T, J, K, A, lda, B, ldb, C, ldc, rows, acc);                                       \
    }
#define NW_INST_J(name, S, T)                                                                              \
    NW_INST(name, S, T, 1)                                                                                 \
    NW_INST(name, S, T, 2)                                                                                 \
    NW_INST(name, S, T, 3)                                                                                 \
    NW_INST(name, S, T, 4)                                                                                 \
    NW_INST(name, S, T, 5)                                                                                 \
    NW_INST(name, S, T, 6)
NW_INST_J(full, 2, false) /* 16 rows */
NW_INST_J(tail2, 2, true) /* 9-15 rows */
NW_INST_J(tail1, 1, true) /* 1-8 rows */
#define NW_ROW(name) {NULL, narrow_##name##_1, narrow_##name##_2, narrow_##name##_3, narrow_##name##_4,    \
                      narrow_##name##_5, narrow_##name##_6}
static narrow_fn *const narrow_strips[3][7] = {NW_ROW(tail1), NW_ROW(tail2), NW_ROW(full)};
#undef NW_INST
#undef NW_INST_J
#undef NW_ROW

/* Rows [i0, i1) of C = A^T B: strips of 16 rows (fewer for the last),
 * each through the columns in as few even passes of <= 6 as N needs; a
 * strip's rows of A stay in L1 between passes. */
void sg_gemm_narrow_avx2(int i0, int i1, int N, int K, const float *A, int lda, const float *B, int ldb,
                         float *C, int ldc, bool accumulate)
{
    int w[16];
    const int passes = sg_even_parts(N, 6, w);
    for (int i = i0; i < i1; i += 16) {
        const int rows = i1 - i < 16 ? i1 - i : 16;
        narrow_fn *const *strip = narrow_strips[rows == 16 ? 2 : rows > 8 ? 1 : 0];
        for (int p = 0, c0 = 0; p < passes; c0 += w[p++])
            strip[w[p]](K, A + i, lda, B + c0, ldb, C + (size_t)i * ldc + c0, ldc, rows, accumulate);
    }
}
