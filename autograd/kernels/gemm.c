/*
 * gemm.c — sg_sgemm: who computes a matrix product, and on how many threads.
 *
 * Three kinds of code can run a product C = op(A) op(B) (+ C):
 *   - the BLAS's sgemm, when one was found at build time (OpenBLAS picks its
 *     own kernels for the CPU at run time);
 *   - the level's own kernels for thin products (tall: few columns of C,
 *     N <= 128, and K <= 1024, as convolution's and the MLP's dy W^T and
 *     h W2; long: a small output
 *     over a very long one; narrow: A^T B with few columns, as a dense
 *     layer's x^T dy with 10 outputs), which a general sgemm handles poorly
 *     because it spends its time packing (or, narrow, vectorises along N);
 *   - the blocked loops of gemm_blocked.c, when there is no BLAS.
 * The own kernels run a product only where a rule of their level says they
 * beat the BLAS on that shape (`rules_blas` below: measured with
 * bench_matmul --sweep, docs/benchmarks.md); without a BLAS they run
 * wherever their shapes allow. The rules are a fixed table, so the choice
 * is the same on every run.
 *
 * Threads: OpenBLAS is held at one thread and a large product is cut into
 * pieces (rows of C, columns, or slices of K summed afterwards) that the
 * engine's pool runs; the own kernels are split the same way (tall and
 * narrow by rows, long by slices of K).
 *
 * Determinism: how a product is cut depends on its shape only, never on
 * the number of threads (docs/design.md, "Determinism"). The pieces are
 * the same calls whether one thread runs them all or eight share them,
 * and slices of K are added in the order of K; so every element of C is
 * the same sum, formed the same way, on any number of threads. A thread
 * count only decides who computes which piece.
 */
#include "sg_internal.h"
#include "sg_kernels.h"
#include "sg_parallel.h"

#include <limits.h>
#include <stdio.h>

#ifdef SG_HAVE_CBLAS
#include <cblas.h>
#endif

/* ---- where the own kernels run ----
 * Boxes of shapes (M, N, K of op(A) (M,K) op(B) (K,N)) on which a level's
 * own kernels beat OpenBLAS by at least 1.2x at every point of the grid
 * that `bench_matmul --sweep` measures (one thread each, op(B)'s packing
 * included; for the tall boxes the median of three sweeps, since 30 Nov;
 * docs/benchmarks.md has the tables): against OpenBLAS's
 * SkylakeX kernels for avx512 and its Haswell kernels for avx2, on this
 * project's development machine. Outside the boxes the BLAS runs. */
typedef struct shape_box {
    int m_lo, m_hi, n_lo, n_hi, k_lo, k_hi; /* inclusive; m_hi = 0: no box */
} shape_box;

typedef struct thin_rules {
    shape_box tall[2];    /* !ta, either tb */
    shape_box tall_nt[2]; /* !ta && tb only: OpenBLAS's A B^T is slower than its A B on these */
    shape_box lng[2];     /* ta && !tb */
    shape_box narrow[2];  /* ta && !tb, N <= SG_GEMM_NARROW_MAX_N */
} thin_rules;

#define ANY_M INT_MAX
#define ANY_K INT_MAX

#ifdef SG_HAVE_CBLAS
static const thin_rules rules_blas[SG_ISA_COUNT] = {
    /* avx2: 1.21-1.89x (tall), 1.22-2.0x (tall A B^T with a short K, as the MLP's dh = dy W2^T),
     * 1.24-1.55x (long), 1.25-7.3x (narrow; a large A, M K beyond about 2^18, is OpenBLAS's: it reads
     * A in order, the narrow kernel in strips of rows) */
    [SG_ISA_AVX2] = {.tall = {{64, 8192, 8, 30, 100, 300}, {16384, ANY_M, 16, 30, 9, 100}},
                     .tall_nt = {{64, ANY_M, 64, 128, 9, 16}},
                     .lng = {{20, 32, 16, 32, 4096, ANY_K}},
                     .narrow = {{16, 784, 1, 12, 9, 300}, {16, 256, 1, 12, 9, 1024}}},
    /* avx512: 1.21-2.33x (tall; from the grid's K = 25: at 5760 x 10 x 16 it read 1.02-1.20x), 1.24-1.89x
     * (tall A B^T, 65 <= N <= 128), 1.32-2.37x (long), 1.35-4.26x (narrow; OpenBLAS's small-matrix kernels
     * are as fast when M is a multiple of 32) */
    [SG_ISA_AVX512] = {.tall = {{4096, ANY_M, 10, 30, 25, 128}},
                       .tall_nt = {{64, ANY_M, 65, 128, 9, 25}},
                       .lng = {{6, 64, 20, 30, 4096, ANY_K}},
                       .narrow = {{16, 30, 8, 12, 25, 4096}, {100, 120, 10, 12, 100, 4096}}},
};
#else
/* Without a BLAS the alternative is the blocked loops: the own kernels
 * take every shape they can compute. */
static const thin_rules rules_no_blas = {
    .tall = {{64, ANY_M, 1, SG_GEMM_TALL_MAX_N, 1, SG_GEMM_TALL_MAX_K}},
    .lng = {{1, SG_GEMM_LONG_MAX_M, 1, SG_GEMM_LONG_MAX_N, 4096, ANY_K}},
    .narrow = {{1, ANY_M, 1, SG_GEMM_NARROW_MAX_N, 1, ANY_K}},
};
#endif

static const thin_rules *thin_rules_now(void)
{
    if (!sg_kern->gemm_tall)
        return NULL;
#ifdef SG_HAVE_CBLAS
    return &rules_blas[sg_kern->isa];
#else
    return &rules_no_blas;
#endif
}

static bool in_boxes(const shape_box *b, int nb, int M, int N, int K)
{
    for (int i = 0; i < nb; i++)
        if (b[i].m_hi && M >= b[i].m_lo && M <= b[i].m_hi && N >= b[i].n_lo && N <= b[i].n_hi &&
            K >= b[i].k_lo && K <= b[i].k_hi)
            return true;
    return false;
}

/* The rules, and what the kernels can take (sg_kernels.h). */
static bool tall_ok(const thin_rules *r, bool ta, bool tb, int M, int N, int K)
{
    return r && !ta && N >= sg_kern->gemm_tall_min_n && N <= SG_GEMM_TALL_MAX_N && K >= 1 &&
           K <= SG_GEMM_TALL_MAX_K && (in_boxes(r->tall, 2, M, N, K) || (tb && in_boxes(r->tall_nt, 2, M, N, K)));
}

static bool long_ok(const thin_rules *r, bool ta, bool tb, int M, int N, int K)
{
    return r && ta && !tb && M >= 1 && M <= SG_GEMM_LONG_MAX_M && N >= sg_kern->gemm_long_min_n &&
           N <= SG_GEMM_LONG_MAX_N && in_boxes(r->lng, 2, M, N, K);
}

static bool narrow_ok(const thin_rules *r, bool ta, bool tb, int M, int N, int K)
{
    return r && ta && !tb && N <= SG_GEMM_NARROW_MAX_N && K >= 1 && in_boxes(r->narrow, 2, M, N, K);
}

/* ---- one product on the calling thread: C = op(A) op(B) (+ C) ---- */
static void gemm1(bool ta, bool tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                  float *C, int ldc, bool accumulate)
{
    if (M == 0 || N == 0)
        return;
#ifdef SG_HAVE_CBLAS
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1.f, A,
                lda, B, ldb, accumulate ? 1.f : 0.f, C, ldc);
#else
    if (!accumulate)
        for (int i = 0; i < M; i++)
            memset(C + (size_t)i * ldc, 0, (size_t)N * sizeof(float));
    sg_kern->gemm_blocked(ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
#endif
}

/* ---- splitting a product across the pool ----
 * OpenBLAS runs single-threaded inside each piece. Rows of C are split when
 * op(A) has enough of them, else columns; a product with a small C and a
 * long K (an affine layer's forward, (100, 100) over K = 784) is split
 * along K into partial products that are added at the end, in the order
 * of K. plan_split() below chooses the kind and the number of pieces from
 * the shape alone. */

enum split_kind { SPLIT_NONE, SPLIT_M, SPLIT_N, SPLIT_K };

typedef struct gemm_job {
    enum split_kind kind;
    bool ta, tb, accumulate;
    int M, N, K, lda, ldb, ldc, pieces;
    const float *A, *B;
    float *C;
    float *part; /* SPLIT_K: (pieces - 1, M, N) partial products of slices 1.. of K */
} gemm_job;

static void gemm_pieces(void *arg, size_t lo, size_t hi)
{
    const gemm_job *j = arg;
    for (size_t p = lo; p < hi; p++) {
        if (j->kind == SPLIT_M) {
            int i0 = (int)((size_t)j->M * p / j->pieces), i1 = (int)((size_t)j->M * (p + 1) / j->pieces);
            const float *a = j->ta ? j->A + i0 : j->A + (size_t)i0 * j->lda;
            gemm1(j->ta, j->tb, i1 - i0, j->N, j->K, a, j->lda, j->B, j->ldb, j->C + (size_t)i0 * j->ldc,
                  j->ldc, j->accumulate);
        } else if (j->kind == SPLIT_N) {
            int c0 = (int)((size_t)j->N * p / j->pieces), c1 = (int)((size_t)j->N * (p + 1) / j->pieces);
            const float *b = j->tb ? j->B + (size_t)c0 * j->ldb : j->B + c0;
            gemm1(j->ta, j->tb, j->M, c1 - c0, j->K, j->A, j->lda, b, j->ldb, j->C + c0, j->ldc,
                  j->accumulate);
        } else { /* the first slice of K goes to C itself, the others to partial products */
            int k0 = (int)((size_t)j->K * p / j->pieces), k1 = (int)((size_t)j->K * (p + 1) / j->pieces);
            const float *a = j->ta ? j->A + (size_t)k0 * j->lda : j->A + k0;
            const float *b = j->tb ? j->B + k0 : j->B + (size_t)k0 * j->ldb;
            if (p == 0)
                gemm1(j->ta, j->tb, j->M, j->N, k1 - k0, a, j->lda, b, j->ldb, j->C, j->ldc, j->accumulate);
            else
                gemm1(j->ta, j->tb, j->M, j->N, k1 - k0, a, j->lda, b, j->ldb,
                      j->part + (p - 1) * (size_t)j->M * j->N, j->N, false);
        }
    }
}

/* ---- the own thin kernels, split across the pool ---- */
typedef struct thin_job {
    const sg_kernels *k; /* the level read once per product */
    int M, N, K, lda, ldb, ldc, pieces;
    const float *A, *B, *Bp;
    float *C, *part;
    bool accumulate;
} thin_job;

/* tall: items are groups of 4 rows of C */
static void tall_range(void *arg, size_t lo, size_t hi)
{
    const thin_job *j = arg;
    const int i0 = (int)(lo * 4), i1 = hi * 4 < (size_t)j->M ? (int)(hi * 4) : j->M;
    j->k->gemm_tall(i0, i1, j->N, j->K, j->A, j->lda, j->Bp, j->C, j->ldc, j->accumulate);
}

/* long: items are slices of K, each summed into its own partial product */
static void long_range(void *arg, size_t lo, size_t hi)
{
    const thin_job *j = arg;
    const size_t psize = (size_t)j->M * SG_GEMM_LONG_P_COLS;
    for (size_t p = lo; p < hi; p++) {
        float *part = j->part + p * psize;
        memset(part, 0, psize * sizeof(float));
        int k0 = (int)((size_t)j->K * p / j->pieces), k1 = (int)((size_t)j->K * (p + 1) / j->pieces);
        j->k->gemm_long(k0, k1, j->K, j->M, j->N, j->A, j->lda, j->B, j->ldb, part);
    }
}

/* narrow: items are strips of 32 rows of C (whole strips for both levels' kernels) */
enum { NARROW_ROWS = 32 };

static void narrow_range(void *arg, size_t lo, size_t hi)
{
    const thin_job *j = arg;
    const int i0 = (int)(lo * NARROW_ROWS), i1 = hi * NARROW_ROWS < (size_t)j->M ? (int)(hi * NARROW_ROWS) : j->M;
    j->k->gemm_narrow(i0, i1, j->N, j->K, j->A, j->lda, j->B, j->ldb, j->C, j->ldc, j->accumulate);
}

/* Slices of K for the long kernel: a power of two up to 8, each slice at
 * least LONG_SLICE_K long (from K alone, so the same on any number of
 * threads). The slices' partial products are added in the order of K. */
enum { LONG_SLICE_K = 2048 };

static int long_pieces(int K)
{
    int pieces = 1;
    while (pieces < 8 && K / (2 * pieces) >= LONG_SLICE_K)
        pieces *= 2;
    return pieces;
}

/* The tall kernel over the pool. Its own function (not inlined): the
 * packed op(B)'s 16 KB of stack would otherwise be set up (and probed) on
 * every product, most of which go to the BLAS. */
static __attribute__((noinline)) bool run_tall(const sg_kernels *k, bool tb, int M, int N, int K, const float *A,
                                               int lda, const float *B, int ldb, float *C, int ldc, bool accumulate)
{
    /* the packed op(B): on the stack when small, else from the scope */
    enum { STACK_FLOATS = 64 * 64 };
    _Alignas(64) float stack_bp[STACK_FLOATS]; /* whole cache lines: the kernels load its rows as vectors */
    size_t need = (size_t)K * (size_t)k->gemm_tall_width(N);
    float *bp = need <= STACK_FLOATS ? stack_bp : sg_scope_alloc(need * sizeof(float));
    if (!bp)
        return false; /* no scope open: the BLAS does it */
    k->gemm_tall_pack(tb, N, K, B, ldb, bp);
    thin_job j = {.k = k, .M = M, .N = N, .K = K, .lda = lda, .ldc = ldc, .A = A, .Bp = bp, .C = C,
                  .accumulate = accumulate};
    sg_parallel_for(((size_t)M + 3) / 4, (size_t)M * (size_t)(N + K), tall_range, &j);
    return true;
}

/* The long kernel: slices of K over the pool, their partial products
 * added in K's order. Not inlined, for its 64 KB of stack (see run_tall). */
static __attribute__((noinline)) void run_long(const sg_kernels *k, int M, int N, int K, const float *A, int lda,
                                               const float *B, int ldb, float *C, int ldc, bool accumulate)
{
    enum { MAXP = 8, PC = SG_GEMM_LONG_P_COLS };
    int pieces = long_pieces(K);
    float part[MAXP * SG_GEMM_LONG_MAX_M * PC];
    thin_job j = {.k = k, .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .pieces = pieces, .A = A, .B = B,
                  .part = part};
    sg_parallel_for((size_t)pieces, (size_t)K * (size_t)(M + N), long_range, &j);
    for (int i = 0; i < M; i++) {
        float *restrict c = C + (size_t)i * ldc;
        for (int q = 0; q < N; q++) {
            float acc = 0.f;
            for (int p = 0; p < pieces; p++)
                acc += part[((size_t)p * M + i) * PC + q];
            c[q] = accumulate ? c[q] + acc : acc;
        }
    }
}

/* The product on the own kernels; false if they do not take it. */
static bool gemm_thin(bool ta, bool tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                      float *C, int ldc, bool accumulate)
{
    const sg_kernels *k = sg_kern;
    const thin_rules *r = thin_rules_now();
    if (tall_ok(r, ta, tb, M, N, K))
        return run_tall(k, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
    if (long_ok(r, ta, tb, M, N, K)) {
        run_long(k, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
        return true;
    }
    if (narrow_ok(r, ta, tb, M, N, K)) { /* no packing: read in place, split by rows */
        thin_job j = {.k = k, .M = M, .N = N, .K = K, .lda = lda, .ldb = ldb, .ldc = ldc, .A = A, .B = B,
                      .C = C, .accumulate = accumulate};
        sg_parallel_for(((size_t)M + NARROW_ROWS - 1) / NARROW_ROWS, (size_t)M * (size_t)(N + K), narrow_range,
                        &j);
        return true;
    }
    return false;
}

/* Below this many flops a product is one piece (on the calling thread). */
#define SG_GEMM_PAR_FLOPS 2e6
/* A split product has 2 pieces, or 4 or 8 where each piece keeps at least
 * SG_GEMM_PIECE_FLOPS and the copies the extra pieces repeat (packing an
 * operand again, or writing partial products) stay below 1 float per
 * SG_GEMM_PIECE_RATIO flops of the product. One thread runs every piece,
 * so each extra piece costs it a repeated copy: repacking a float costs
 * about as long as 50 flops (1024^3 cut into 8 row pieces ran 17% slower
 * on one thread than in one call), so 4096 keeps the extra pieces below
 * about 1.3% of a product; in practice products up to a few GFLOP keep 2
 * pieces, which is all this project's 2-core machines use. */
#define SG_GEMM_PIECE_FLOPS 16e6
#define SG_GEMM_PIECE_RATIO 4096.0

/* OpenBLAS runs one thread inside each piece of a product (or in the whole
 * product when the engine uses one thread). The setting is left at 1:
 * raising it again would make OpenBLAS start threads (after a fork(), on
 * every call), and its idle threads would compete with the pool. It is set
 * before the first product of any size: OpenBLAS's own choice of code for
 * a product can depend on its thread count (its "direct" small-matrix
 * path does), and results must not. */
static void blas_one_thread(void)
{
#if defined(SG_HAVE_CBLAS) && defined(OPENBLAS_VERSION)
    if (openblas_get_num_threads() != 1)
        openblas_set_num_threads(1);
#endif
}

/* Set once when the library loads, before the program can fork: in a
 * fork()ed child (a Check test, a worker process) OpenBLAS's threads are
 * gone but its state still counts them, and lowering the count there makes
 * it rebuild its pool — seen as memory growing in the child after the
 * first products (test_memory's flat footprint under ASan, 1 run in 4).
 * Set at load, the child inherits 1 and the check above never calls it. */
__attribute__((constructor)) static void blas_one_thread_at_load(void) { blas_one_thread(); }

enum { PART_MAX = 1 << 15 }; /* floats of split-K partial products on the stack */

/* Whether a product of this shape can be cut into P pieces of `kind`. */
static bool can_split(enum split_kind kind, int P, int M, int N, int K)
{
    const int min_rows = 16; /* rows (columns) per piece worth a call */
    switch (kind) {
    case SPLIT_M:
        return M >= P * min_rows;
    case SPLIT_N:
        return N >= P * min_rows;
    case SPLIT_K:
        return K >= P * 64 && (size_t)P * M * N <= PART_MAX;
    default:
        return false;
    }
}

/* How a product is cut: from its shape only (never from the thread count),
 * so that every element of C is the same sum on any number of threads.
 * Each piece packs its share of one operand and all of the other, so the
 * kind of split is the one that repeats the least copying: rows of C
 * repeat op(B) (K*N), columns repeat op(A) (M*K), and slices of K instead
 * write partial products (M*N each) to be added in the order of K. Then
 * the pieces double (up to 8) while each keeps SG_GEMM_PIECE_FLOPS and the
 * repeated copies stay within SG_GEMM_PIECE_RATIO. */
static enum split_kind plan_split(int M, int N, int K, int *pieces)
{
    const double flops = 2.0 * M * N * K;
    *pieces = 1;
    if (flops < SG_GEMM_PAR_FLOPS || K == 0)
        return SPLIT_NONE;
    const double rep_m = (double)K * N, rep_n = (double)M * K, rep_k = 2.0 * M * N;
    const bool can_m = can_split(SPLIT_M, 2, M, N, K), can_n = can_split(SPLIT_N, 2, M, N, K);
    enum split_kind kind;
    double rep;
    if (can_split(SPLIT_K, 2, M, N, K) && (!can_m || rep_k < rep_m) && (!can_n || rep_k < rep_n))
        kind = SPLIT_K, rep = rep_k;
    else if (can_m && (!can_n || rep_m <= rep_n))
        kind = SPLIT_M, rep = rep_m;
    else if (can_n)
        kind = SPLIT_N, rep = rep_n;
    else
        return SPLIT_NONE;
    int P = 2;
    while (P < 8 && can_split(kind, 2 * P, M, N, K) && flops / (2 * P) >= SG_GEMM_PIECE_FLOPS &&
           (2 * P - 1) * rep * SG_GEMM_PIECE_RATIO <= flops)
        P *= 2;
    *pieces = P;
    return kind;
}

static void gemm_split(bool ta, bool tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb,
                       float *C, int ldc, bool accumulate)
{
    int pieces;
    enum split_kind kind = plan_split(M, N, K, &pieces);
    if (kind == SPLIT_NONE) {
        gemm1(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
        return;
    }
    gemm_job j = {.kind = kind, .ta = ta, .tb = tb, .accumulate = accumulate, .M = M, .N = N, .K = K,
                  .lda = lda, .ldb = ldb, .ldc = ldc, .A = A, .B = B, .C = C, .pieces = pieces};
    float part[kind == SPLIT_K ? (size_t)(pieces - 1) * M * N : 1];
    j.part = part;
    /* the pieces run on as many threads as there are, in any order; with
     * one thread (or inside another parallel loop) one after the other */
    sg_parallel_for((size_t)pieces, SG_PAR_MIN, gemm_pieces, &j);
    if (kind == SPLIT_K) /* C (slice 0) += slice 1, then slice 2, ...: the order of K */
        for (int p = 1; p < pieces; p++) {
            const float *restrict pp = part + (size_t)(p - 1) * M * N;
            for (int i = 0; i < M; i++) {
                float *restrict c = C + (size_t)i * ldc;
                const float *restrict s = pp + (size_t)i * N;
                for (int q = 0; q < N; q++)
                    c[q] += s[q];
            }
        }
}

void sg_sgemm(bool ta, bool tb, int M, int N, int K, const float *A, int lda, const float *B, int ldb, float *C,
              int ldc, bool accumulate)
{
    if (M == 0 || N == 0)
        return;
    blas_one_thread();
    if (gemm_thin(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate))
        return;
    gemm_split(ta, tb, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
}

const char *sg_sgemm_choice(bool ta, bool tb, int M, int N, int K)
{
    const thin_rules *r = thin_rules_now();
    if (tall_ok(r, ta, tb, M, N, K))
        return "tall";
    if (long_ok(r, ta, tb, M, N, K))
        return "long";
    if (narrow_ok(r, ta, tb, M, N, K))
        return "narrow";
#ifdef SG_HAVE_CBLAS
    return "blas";
#else
    return "blocked";
#endif
}

char *sg_sgemm_describe(char *buf, size_t len)
{
    const char *thin = sg_kern->gemm_tall ? ", own tall/long/narrow kernels for thin products" : "";
#if defined(SG_HAVE_CBLAS) && defined(OPENBLAS_VERSION)
    snprintf(buf, len, "OpenBLAS %s%s", openblas_get_corename(), thin);
#elif defined(SG_HAVE_CBLAS)
    snprintf(buf, len, "cblas%s", thin);
#else
    snprintf(buf, len, "blocked loops (no BLAS)%s", thin);
#endif
    return buf;
}

/* ---- a batch of products ---- */

static void batch_range(void *arg, size_t lo, size_t hi)
{
    const sg_gemm_batch *j = arg;
    for (size_t i = lo; i < hi; i++) {
        float *y = j->y + i * j->sy;
        if (j->start)
            memcpy(y, j->start, j->sy * sizeof(float));
        sg_sgemm(j->ta, j->tb, j->M, j->N, j->K, j->a + i * j->sa, j->lda, j->b + i * j->sb, j->ldb, y, j->N,
                 j->accumulate);
    }
}

void sg_sgemm_batch(const sg_gemm_batch *j, size_t batch)
{
    if (batch == 1 && !j->start) { /* one product (a layer's): straight on */
        sg_sgemm(j->ta, j->tb, j->M, j->N, j->K, j->a, j->lda, j->b, j->ldb, j->y, j->N, j->accumulate);
        return;
    }
    double flops = 2.0 * j->M * j->N * j->K;
    if (batch > 1 && flops < SG_GEMM_PAR_FLOPS) {
        blas_one_thread(); /* the pool's threads each call the BLAS */
        sg_parallel_for(batch, batch * (j->sy + j->sa + j->sb), batch_range, (void *)j);
    } else {
        batch_range((void *)j, 0, batch);
    }
}
