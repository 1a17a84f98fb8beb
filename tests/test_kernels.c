/*
 * test_kernels.c — Check suite "kernels": the engine's fast paths against
 * naive references, at sizes that make them run, on 1 and on 2 threads,
 * with the kernels of every instruction-set level this CPU can run
 * (generic, avx2, avx512: sg_set_isa), so each level's variant of every
 * kernel is held to the same exact results.
 *
 * The engine picks a kernel by shape (autograd/), so each case below is
 * sized to cross the threshold of the path it aims at:
 *   threads     a loop is split across the pool when it touches at least
 *               SG_PAR_MIN = 65536 floats (sg_parallel.h); a product when
 *               it has >= 2e6 flops (kernels/gemm.c), into 2, 4 or 8 pieces
 *               (chosen from the shape, run on any number of threads) of rows
 *               of C (SPLIT_M), columns (SPLIT_N) or slices of K (SPLIT_K).
 *   matmul      the own "tall" (!ta, N <= 128, K <= 1024) and "long"
 *               (ta && !tb, M <= 64, N <= 32, long K) kernels of levels
 *               avx2 and avx512 (kernels/gemm_avx2.c, gemm_avx512.c) run
 *               where kernels/gemm.c's boxes of shapes send a product, the
 *               BLAS elsewhere (or everywhere without a BLAS: the blocked
 *               loops, and the own kernels on every shape they take).
 *               thin_kernels calls each level's own kernels directly on
 *               ragged shapes; the matmul cases go through sg_sgemm.
 *   unfold/fold bands written row by row when OW*C*KH*KW > 1024; copies
 *               specialised for (KW, SW) in {(2,2),(3,1),(5,1),(3,2),(3,3)}.
 *   reductions  shapes coalesced to (R), (O,R), (R,K), (A,R,K), windows
 *               (A,R,B,S) reduced over R and S, or the general walk; (R,K) reduced in 8 partial blocks
 *               when R*K >= 65536, 8*K <= 4096 and R >= 64 (on any number of threads).
 *   permute     a batch of 2-D transposes in 8x8 register tiles (two tile
 *               orders, ragged edges), split over the batch; else a walk.
 *   broadcast   coalesced dims, rows split across threads, each starting
 *               its odometer mid-way.
 *   backward    relu and max (over trailing dims or windows) run a fused pass when
 *               nothing is recorded; create_graph runs the composition.
 * Random small shapes (seeded) cover the coalescing logic of each op.
 *
 * Tolerances: inputs are quarter-integers (k/4, |k| <= 8). Every product
 * and every partial sum the engine can form is then a multiple of 1/16 well
 * below 2^24/16 in size, so float32 holds it exactly and any order of
 * summation (BLAS, register tiles, split-K partial products, 4-way partial
 * sums) gives the exact result. Elementwise ops round once, as does the
 * reference. So every comparison here is exact (tolerance 0): a missed,
 * doubled or misplaced term fails, whatever its size.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "sg_autograd.h"
#include "sg_kernels.h" /* each level's table, for the thin kernels */

#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* ------------------------------------------------------------------------- */
/* Fixture and helpers */

static void setup(void)
{
    sg_clear_error();
    sg_set_grad_enabled(true);
    sg_scope_begin();
}

static void teardown(void)
{
    while (sg_scope_depth() > 0)
        sg_scope_end();
    sg_set_grad_enabled(true);
    sg_set_isa(sg_isa_cpu());
}

/* Unchecked teardown: without fork (valgrind) it runs in the test process. */
static void release(void) { sg_release_memory(); }

static void set_threads(int n)
{
    int got = sg_set_threads(n);
    /* a build without thread support runs everything on one thread */
    ck_assert_msg(got == n || got == 1, "sg_set_threads(%d) gave %d", n, got);
}

/* Loop tests run with _i = 2 * level + threads - 1 for each level up to the
 * CPU's (kernels_suite) and 1 or 2 threads. */
static void use_threads(int i)
{
    sg_isa level = (sg_isa)(i / 2);
    ck_assert_msg(sg_set_isa(level) == 0, "sg_set_isa(%s): %s", sg_isa_name(level), sg_last_error());
    set_threads(1 + i % 2);
}

/* k/4 for a random integer k in [lo, hi] */
static float quarter(sg_rng *r, int lo, int hi)
{
    return (float)(lo + (int)sg_rng_below(r, (uint32_t)(hi - lo + 1))) / 4.f;
}

/* A tensor of quarter-integers in [lo/4, hi/4] (owned by the current scope). */
static sg_tensor *quarters(sg_rng *r, int lo, int hi, int ndim, const int *shape)
{
    sg_tensor *t = sg_zeros(ndim, shape);
    ck_assert_msg(t != NULL, "%s", sg_last_error());
    float *d = sg_data(t);
    for (size_t i = 0; i < sg_size(t); i++)
        d[i] = quarter(r, lo, hi);
    return t;
}

static float *alloc_floats(size_t n)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Exact comparison (see the tolerance note at the top). */
static void expect_same(const char *what, const float *got, const float *want, size_t n)
{
    ck_assert_msg(got != NULL, "%s: no result (%s)", what, sg_last_error());
    for (size_t i = 0; i < n; i++)
        if (!(got[i] == want[i]))
            ck_abort_msg("%s: element %zu is %.9g, expected %.9g", what, i, (double)got[i], (double)want[i]);
}

static void expect_shape(const char *what, const sg_tensor *t, int ndim, const int *shape)
{
    ck_assert_msg(t != NULL, "%s: no result (%s)", what, sg_last_error());
    ck_assert_msg(sg_ndim(t) == ndim, "%s: %d dims, expected %d", what, sg_ndim(t), ndim);
    for (int i = 0; i < ndim; i++)
        ck_assert_msg(sg_shape(t)[i] == shape[i], "%s: dim %d is %d, expected %d", what, i, sg_shape(t)[i],
                      shape[i]);
}

/* "label (2,3,4)" into buf */
static char *describe(char *buf, size_t len, const char *label, int n, const int *shape)
{
    int at = snprintf(buf, len, "%s (", label);
    for (int i = 0; i < n && at > 0 && (size_t)at < len; i++)
        at += snprintf(buf + at, len - (size_t)at, "%s%d", i ? "," : "", shape[i]);
    if (at > 0 && (size_t)at < len)
        snprintf(buf + at, len - (size_t)at, ")");
    return buf;
}

/* ------------------------------------------------------------------------- */
/* unfold / fold */

/* geometry: N, C, H, W, KH, KW, SH, SW, PH, PW */
enum { GN, GC, GH, GW, GKH, GKW, GSH, GSW, GPH, GPW };

static void ref_unfold(const float *x, float *y, const int *g, float pad, int OH, int OW)
{
    const size_t cols = (size_t)g[GC] * g[GKH] * g[GKW];
    for (int n = 0; n < g[GN]; n++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int c = 0; c < g[GC]; c++)
                    for (int kh = 0; kh < g[GKH]; kh++)
                        for (int kw = 0; kw < g[GKW]; kw++) {
                            int ih = oh * g[GSH] - g[GPH] + kh, iw = ow * g[GSW] - g[GPW] + kw;
                            bool in = ih >= 0 && ih < g[GH] && iw >= 0 && iw < g[GW];
                            size_t row = ((size_t)n * OH + oh) * OW + ow;
                            y[row * cols + ((size_t)c * g[GKH] + kh) * g[GKW] + kw] =
                                in ? x[(((size_t)n * g[GC] + c) * g[GH] + ih) * g[GW] + iw] : pad;
                        }
}

static void ref_fold(const float *y, float *x, const int *g, int OH, int OW)
{
    const size_t cols = (size_t)g[GC] * g[GKH] * g[GKW];
    memset(x, 0, (size_t)g[GN] * g[GC] * g[GH] * g[GW] * sizeof(float));
    for (int n = 0; n < g[GN]; n++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++)
                for (int c = 0; c < g[GC]; c++)
                    for (int kh = 0; kh < g[GKH]; kh++)
                        for (int kw = 0; kw < g[GKW]; kw++) {
                            int ih = oh * g[GSH] - g[GPH] + kh, iw = ow * g[GSW] - g[GPW] + kw;
                            if (ih < 0 || ih >= g[GH] || iw < 0 || iw >= g[GW])
                                continue;
                            size_t row = ((size_t)n * OH + oh) * OW + ow;
                            x[(((size_t)n * g[GC] + c) * g[GH] + ih) * g[GW] + iw] +=
                                y[row * cols + ((size_t)c * g[GKH] + kh) * g[GKW] + kw];
                        }
}

/* unfold(x) and fold(cols) for one geometry, against the references */
static void check_unfold_fold(sg_rng *rng, const int *g, float pad)
{
    sg_window w = {.kh = g[GKH], .kw = g[GKW], .sh = g[GSH], .sw = g[GSW], .ph = g[GPH], .pw = g[GPW],
                   .pad_value = pad};
    const int N = g[GN], C = g[GC], H = g[GH], W = g[GW];
    const int OH = sg_window_out(H, w.kh, w.sh, w.ph), OW = sg_window_out(W, w.kw, w.sw, w.pw);
    ck_assert(OH > 0 && OW > 0);
    const int rows = N * OH * OW, cols = C * w.kh * w.kw;
    char what[160];
    snprintf(what, sizeof what, "(%d,%d,%d,%d) k%dx%d s%d,%d p%d,%d pad %g", N, C, H, W, w.kh, w.kw, w.sh,
             w.sw, w.ph, w.pw, (double)pad);
    sg_scope_begin();
    sg_tensor *x = quarters(rng, -8, 8, SG_DIMS(N, C, H, W));
    sg_tensor *y = sg_unfold(x, w);
    char label[200];
    snprintf(label, sizeof label, "unfold %s", what);
    expect_shape(label, y, SG_DIMS(rows, cols));
    float *want = alloc_floats((size_t)rows * cols);
    ref_unfold(sg_data(x), want, g, pad, OH, OW);
    expect_same(label, sg_data(y), want, (size_t)rows * cols);
    free(want);

    sg_tensor *cl = quarters(rng, -8, 8, SG_DIMS(rows, cols));
    sg_tensor *f = sg_fold(cl, N, C, H, W, w);
    snprintf(label, sizeof label, "fold %s", what);
    expect_shape(label, f, SG_DIMS(N, C, H, W));
    want = alloc_floats((size_t)N * C * H * W);
    ref_fold(sg_data(cl), want, g, OH, OW);
    expect_same(label, sg_data(f), want, sg_size(f));
    free(want);
    sg_scope_end();
}

static void check_geometries(const int (*geo)[10], size_t n)
{
    sg_rng rng;
    sg_rng_seed(&rng, 7);
    for (size_t i = 0; i < n; i++) {
        check_unfold_fold(&rng, geo[i], 0.f);
        check_unfold_fold(&rng, geo[i], -INFINITY);
    }
}

/* Every specialised copy, its generic fallback, borders and padding; the
 * bands are short (written input row by input row). */
START_TEST(test_unfold_fold_windows)
{
    use_threads(_i);
    static const int geo[][10] = {
        {2, 3, 7, 9, 3, 3, 1, 1, 1, 1},    /* (3,1): conv 3x3 pad 1 */
        {2, 2, 9, 9, 3, 3, 1, 1, 0, 0},    /* (3,1) without padding */
        {2, 3, 8, 10, 3, 5, 2, 1, 1, 2},   /* (5,1), kh != kw, sh != sw, ph != pw */
        {3, 2, 9, 11, 5, 5, 1, 1, 0, 0},   /* (5,1) */
        {1, 1, 5, 5, 3, 3, 2, 2, 1, 1},    /* (3,2) */
        {2, 3, 7, 8, 5, 3, 2, 2, 2, 2},    /* (3,2) with kh 5 */
        {2, 2, 9, 9, 3, 3, 3, 3, 0, 0},    /* (3,3) */
        {2, 2, 10, 7, 5, 3, 1, 3, 0, 1},   /* (3,3) with kh 5, sh 1 */
        {2, 2, 9, 9, 2, 2, 2, 2, 0, 0},    /* (2,2) on 2 channels, odd size */
        {4, 3, 11, 10, 3, 2, 2, 2, 1, 1},  /* (2,2) with kh 3 and padding */
        {2, 1, 4, 4, 2, 2, 2, 2, 1, 1},    /* (2,2) on one channel, padded: not pooling's loops */
        {2, 1, 6, 6, 2, 2, 2, 2, 0, 0},    /* pooling's 2x2 stride 2 */
        {2, 1, 6, 5, 2, 2, 2, 2, 0, 0},    /* pooling, odd width */
        {3, 1, 5, 7, 2, 2, 2, 2, 0, 0},    /* pooling, odd height and width */
        {2, 2, 3, 3, 2, 2, 1, 1, 0, 0},    /* generic: 2x2 stride 1 */
        {2, 2, 6, 6, 6, 6, 1, 1, 2, 2},    /* kernel as large as the input */
        {3, 4, 9, 9, 7, 7, 1, 1, 3, 3},    /* generic 7x7 */
        {5, 2, 13, 13, 4, 4, 3, 3, 2, 2},  /* generic 4x4 stride 3 */
        {1, 2, 3, 3, 7, 7, 1, 1, 3, 3},    /* no window fully inside */
        {2, 1, 5, 5, 1, 1, 1, 1, 0, 0},    /* 1x1 */
        {2, 2, 5, 6, 1, 1, 2, 2, 0, 0},    /* 1x1 stride 2 */
    };
    check_geometries(geo, sizeof geo / sizeof geo[0]);
}
END_TEST

/* Many channels: bands of more than 1024 floats, written row by row. */
START_TEST(test_unfold_fold_many_channels)
{
    use_threads(_i);
    static const int geo[][10] = {
        {2, 16, 10, 10, 3, 3, 1, 1, 1, 1},  /* (3,1) */
        {2, 40, 12, 12, 5, 5, 1, 1, 2, 2},  /* (5,1) */
        {3, 32, 15, 13, 3, 3, 2, 2, 1, 1},  /* (3,2) */
        {1, 64, 7, 7, 3, 3, 3, 3, 1, 1},    /* (3,3) */
        {2, 100, 9, 9, 2, 2, 2, 2, 0, 0},   /* (2,2) */
        {2, 30, 11, 11, 4, 4, 3, 3, 1, 1},  /* generic */
        {1, 20, 8, 9, 7, 5, 1, 2, 3, 0},    /* generic, kw 5 stride 2 */
    };
    check_geometries(geo, sizeof geo / sizeof geo[0]);
}
END_TEST

/* Large enough (>= 65536 floats) to be split across threads. */
START_TEST(test_unfold_fold_threads)
{
    use_threads(_i);
    static const int geo[][10] = {
        {8, 1, 28, 28, 5, 5, 1, 1, 0, 0},     /* conv1 of the book's CNN, (5,1) */
        {18, 3, 12, 12, 3, 3, 1, 1, 1, 1},    /* (3,1), short bands */
        {2, 16, 16, 16, 3, 3, 1, 1, 1, 1},    /* (3,1), row by row */
        {120, 1, 24, 24, 2, 2, 2, 2, 0, 0},   /* pooling */
        {130, 1, 25, 23, 2, 2, 2, 2, 0, 0},   /* pooling, odd sizes */
        {12, 3, 17, 17, 4, 4, 3, 3, 2, 2},    /* generic */
    };
    check_geometries(geo, sizeof geo / sizeof geo[0]);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* reductions */

/* sum (kind 0) or max (kind 1) of x over the dims in mask, in double. The
 * result is in keepdims layout, which has the same flat order as without. */
static void ref_reduce(const float *x, float *want, int n, const int *xs, uint32_t mask, int kind)
{
    size_t total = 1, ysize = 1;
    for (int i = 0; i < n; i++) {
        total *= (size_t)xs[i];
        ysize *= (mask >> i & 1u) ? 1 : (size_t)xs[i];
    }
    double *acc = malloc((ysize ? ysize : 1) * sizeof(double));
    ck_assert_ptr_nonnull(acc);
    for (size_t i = 0; i < ysize; i++)
        acc[i] = kind ? -INFINITY : 0.0;
    for (size_t o = 0; o < total; o++) {
        size_t rem = o, yo = 0, mul = 1;
        for (int i = n - 1; i >= 0; i--) {
            size_t id = rem % (size_t)xs[i];
            rem /= (size_t)xs[i];
            if (!(mask >> i & 1u)) {
                yo += id * mul;
                mul *= (size_t)xs[i];
            }
        }
        if (kind)
            acc[yo] = x[o] > acc[yo] ? x[o] : acc[yo];
        else
            acc[yo] += x[o];
    }
    for (size_t i = 0; i < ysize; i++)
        want[i] = (float)acc[i];
    free(acc);
}

static void check_reduce(sg_rng *rng, int n, const int *xs, uint32_t mask, int kind, bool keep)
{
    int axes[SG_MAX_DIMS] = {0}, na = 0, ys[SG_MAX_DIMS] = {0}, ny = 0;
    for (int i = 0; i < n; i++) {
        if (mask >> i & 1u)
            axes[na++] = i;
        if (keep || !(mask >> i & 1u))
            ys[ny++] = (mask >> i & 1u) ? 1 : xs[i];
    }
    if (na == 0) /* no axes means every axis */
        return;
    sg_scope_begin();
    sg_tensor *x = quarters(rng, -8, 8, n, xs);
    sg_tensor *y = kind ? sg_max(x, axes, na, keep) : sg_sum(x, axes, na, keep);
    char what[160], label[200];
    describe(what, sizeof what, kind ? "max" : "sum", n, xs);
    snprintf(label, sizeof label, "%s over mask 0x%x%s", what, (unsigned)mask, keep ? " keepdims" : "");
    expect_shape(label, y, ny, ys);
    float *want = alloc_floats(sg_size(y));
    ref_reduce(sg_data(x), want, n, xs, mask, kind);
    expect_same(label, sg_data(y), want, sg_size(y));
    free(want);
    sg_scope_end();
}

/* One shape per coalesced form, each large enough for the threads. */
START_TEST(test_reduce_paths)
{
    use_threads(_i);
    sg_rng rng;
    sg_rng_seed(&rng, 9);
    static const struct {
        int n, shape[5];
        uint32_t mask;
    } cases[] = {
        {1, {100003}, 0x1},             /* (R): everything */
        {2, {16500, 4}, 0x2},           /* (O,R): max pooling's rows of 4 */
        {2, {3000, 30}, 0x2},           /* (O,R): softmax's rows */
        {2, {3, 30000}, 0x2},           /* (O,R): few long rows */
        {3, {2200, 1, 30}, 0x6},        /* (O,R) after dropping a dim of 1 */
        {2, {2200, 30}, 0x1},           /* (R,K): the bias gradient, partial blocks */
        {2, {100, 700}, 0x1},           /* (R,K): long rows, no partial blocks */
        {3, {30, 100, 24}, 0x2},        /* (A,R,K): a batch of column sums */
        {3, {3, 2200, 30}, 0x2},        /* (A,R,K) with large blocks */
        {4, {20, 6, 12, 12}, 0xd},      /* batch norm over (N,H,W): (R,K,S) */
        {3, {100, 30, 576}, 0x5},       /* (R,K,S): the conv bias gradient */
        {3, {13, 5, 7}, 0x5},           /* (R,K,S): runs left after blocks of 8, short rows */
        {4, {4, 5, 6, 7}, 0x5},         /* alternating: general walk */
        {4, {6, 7, 8, 9}, 0x3},         /* leading dims merged: (R,K) */
        {4, {2, 3, 1, 11000}, 0xa},     /* reduced dims merged across a 1 */
        {4, {3600, 2, 12, 2}, 0xa},     /* (A,R,B,S): 2x2 pooling windows */
        {4, {50, 3, 7, 3}, 0xa},        /* (A,R,B,S): 3x3 windows */
        {5, {7, 2, 5, 1, 2}, 0x12},     /* windows around a dim of 1 */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int kind = 0; kind < 2; kind++)
            check_reduce(&rng, cases[c].n, cases[c].shape, cases[c].mask, kind, kind == 1);
}
END_TEST

/* Random shapes and masks (dims of 1 included): the coalescing. */
START_TEST(test_reduce_random_shapes)
{
    use_threads(_i);
    sg_rng rng;
    sg_rng_seed(&rng, 19);
    for (int t = 0; t < 400; t++) {
        int n = 1 + (int)sg_rng_below(&rng, 5), xs[SG_MAX_DIMS];
        for (int i = 0; i < n; i++)
            xs[i] = 1 + (int)sg_rng_below(&rng, 6);
        uint32_t mask = sg_rng_below(&rng, 1u << n);
        check_reduce(&rng, n, xs, mask, t & 1, sg_rng_below(&rng, 2) == 1);
    }
}
END_TEST

/* sum_to (broadcast_to's adjoint) reduces through the same kernel. */
START_TEST(test_sum_to)
{
    use_threads(_i);
    sg_rng rng;
    sg_rng_seed(&rng, 23);
    static const struct {
        int n, shape[4], m, target[4];
    } cases[] = {
        {2, {2200, 30}, 1, {30}},                /* bias gradient */
        {4, {16, 30, 12, 12}, 4, {1, 30, 1, 1}}, /* per-channel parameter */
        {3, {40, 50, 40}, 3, {40, 1, 40}},       /* middle dim */
        {2, {300, 250}, 2, {300, 1}},            /* rows */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        sg_scope_begin();
        sg_tensor *x = quarters(&rng, -8, 8, cases[c].n, cases[c].shape);
        sg_tensor *y = sg_sum_to(x, cases[c].m, cases[c].target);
        uint32_t mask = 0;
        int lead = cases[c].n - cases[c].m;
        for (int i = 0; i < cases[c].n; i++)
            if (i < lead || cases[c].target[i - lead] == 1)
                mask |= 1u << i;
        char what[160];
        describe(what, sizeof what, "sum_to from", cases[c].n, cases[c].shape);
        expect_shape(what, y, cases[c].m, cases[c].target);
        float *want = alloc_floats(sg_size(y));
        ref_reduce(sg_data(x), want, cases[c].n, cases[c].shape, mask, 0);
        expect_same(what, sg_data(y), want, sg_size(y));
        free(want);
        sg_scope_end();
    }
}
END_TEST

/* ------------------------------------------------------------------------- */
/* permute */

static void ref_permute(const float *x, float *y, int n, const int *xs, const int *perm)
{
    size_t total = 1, xst[SG_MAX_DIMS];
    for (int i = n - 1; i >= 0; i--) {
        xst[i] = total;
        total *= (size_t)xs[i];
    }
    for (size_t o = 0; o < total; o++) {
        size_t rem = o, off = 0;
        for (int i = n - 1; i >= 0; i--) {
            size_t d = (size_t)xs[perm[i]];
            off += rem % d * xst[perm[i]];
            rem /= d;
        }
        y[o] = x[off];
    }
}

static void check_permute(sg_rng *rng, int n, const int *xs, const int *perm)
{
    sg_scope_begin();
    sg_tensor *x = quarters(rng, -8, 8, n, xs);
    sg_tensor *y = sg_permute(x, perm, n);
    int ys[SG_MAX_DIMS] = {0};
    for (int i = 0; i < n; i++)
        ys[i] = xs[perm[i]];
    char what[160], label[220];
    describe(what, sizeof what, "permute", n, xs);
    int at = snprintf(label, sizeof label, "%s by", what);
    for (int i = 0; i < n && at > 0 && (size_t)at < sizeof label; i++)
        at += snprintf(label + at, sizeof label - (size_t)at, " %d", perm[i]);
    expect_shape(label, y, n, ys);
    float *want = alloc_floats(sg_size(x));
    ref_permute(sg_data(x), want, n, xs, perm);
    expect_same(label, sg_data(y), want, sg_size(x));
    free(want);
    sg_scope_end();
}

/* conv2d's layout changes and other batches of transposes: both tile
 * orders, ragged edges, split over the batch when large. */
START_TEST(test_permute_tiles)
{
    use_threads(_i);
    sg_rng rng;
    sg_rng_seed(&rng, 5);
    static const struct {
        int n, shape[4], perm[4];
    } cases[] = {
        {4, {8, 12, 12, 30}, {0, 3, 1, 2}},  /* NHWC -> NCHW: 144 rows >= 30 columns */
        {4, {8, 30, 12, 12}, {0, 2, 3, 1}},  /* NCHW -> NHWC: 30 rows < 144 columns */
        {3, {5, 61, 139}, {0, 2, 1}},        /* ragged both ways */
        {3, {9, 139, 61}, {0, 2, 1}},
        {2, {37, 53}, {1, 0}},               /* one 2-D transpose */
        {2, {53, 37}, {1, 0}},
        {2, {300, 229}, {1, 0}},
        {2, {8, 8}, {1, 0}},                 /* one whole tile */
        {2, {7, 100}, {1, 0}},               /* fewer than 8 rows */
        {3, {3, 1, 4}, {2, 1, 0}},           /* a dim of 1 dropped */
        {3, {1, 5, 1}, {2, 0, 1}},           /* a copy */
        {3, {4, 5, 6}, {0, 1, 2}},           /* identity */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        check_permute(&rng, cases[c].n, cases[c].shape, cases[c].perm);
}
END_TEST

/* Permutations that are not a batch of transposes: the general walk. */
START_TEST(test_permute_general)
{
    use_threads(_i);
    sg_rng rng;
    sg_rng_seed(&rng, 15);
    static const struct {
        int n, shape[4], perm[4];
    } cases[] = {
        {3, {6, 7, 8}, {2, 0, 1}},
        {3, {6, 7, 8}, {1, 2, 0}},
        {3, {6, 7, 8}, {2, 1, 0}},
        {4, {2, 3, 4, 5}, {1, 0, 3, 2}},
        {4, {4, 5, 6, 7}, {3, 1, 0, 2}},
        {4, {40, 30, 9, 8}, {3, 2, 1, 0}},   /* large */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        check_permute(&rng, cases[c].n, cases[c].shape, cases[c].perm);
    for (int t = 0; t < 300; t++) {
        int n = 1 + (int)sg_rng_below(&rng, 5), xs[SG_MAX_DIMS], perm[SG_MAX_DIMS];
        for (int i = 0; i < n; i++) {
            xs[i] = 1 + (int)sg_rng_below(&rng, 7);
            perm[i] = i;
        }
        for (int i = n; i > 1; i--) {
            int j = (int)sg_rng_below(&rng, (uint32_t)i), tmp = perm[i - 1];
            perm[i - 1] = perm[j];
            perm[j] = tmp;
        }
        check_permute(&rng, n, xs, perm);
    }
}
END_TEST

/* ------------------------------------------------------------------------- */
/* broadcasting binary ops */

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV };

static void check_binary(sg_rng *rng, int na, const int *sa, int nb, const int *sb)
{
    sg_scope_begin();
    sg_tensor *a = quarters(rng, -8, 8, na, sa);
    sg_tensor *b = quarters(rng, 2, 8, nb, sb); /* nonzero divisors, of either sign */
    float *bd = sg_data(b);
    for (size_t i = 0; i < sg_size(b); i++)
        if (sg_rng_below(rng, 2))
            bd[i] = -bd[i];
    sg_tensor *ys[4] = {sg_add(a, b), sg_sub(a, b), sg_mul(a, b), sg_div(a, b)};
    static const char *names[4] = {"add", "sub", "mul", "div"};
    int n = na > nb ? na : nb, shape[SG_MAX_DIMS] = {0};
    for (int i = 0; i < n; i++) {
        int ja = i - (n - na), jb = i - (n - nb); /* dims aligned at the right */
        int da = ja >= 0 ? sa[ja] : 1, db = jb >= 0 ? sb[jb] : 1;
        shape[i] = da == 1 ? db : da;
    }
    size_t total = 1;
    for (int i = 0; i < n; i++)
        total *= (size_t)shape[i];
    float *want = alloc_floats(total);
    /* the elements of a and b that make y[o] */
    size_t *ia = malloc((total + 1) * sizeof *ia), *ib = malloc((total + 1) * sizeof *ib);
    ck_assert(ia && ib);
    for (size_t o = 0; o < total; o++) {
        size_t rem = o, oa = 0, ob = 0, ma = 1, mb = 1;
        for (int i = n - 1; i >= 0; i--) {
            size_t id = rem % (size_t)shape[i];
            rem /= (size_t)shape[i];
            int da = i - (n - na), db = i - (n - nb);
            if (da >= 0) {
                oa += sa[da] == 1 ? 0 : id * ma;
                ma *= (size_t)sa[da];
            }
            if (db >= 0) {
                ob += sb[db] == 1 ? 0 : id * mb;
                mb *= (size_t)sb[db];
            }
        }
        ia[o] = oa;
        ib[o] = ob;
    }
    const float *ad = sg_data(a);
    for (int k = 0; k < 4; k++) {
        for (size_t o = 0; o < total; o++) {
            float x = ad[ia[o]], z = bd[ib[o]];
            want[o] = k == OP_ADD ? x + z : k == OP_SUB ? x - z : k == OP_MUL ? x * z : x / z;
        }
        char wa[80], wb[80], label[200];
        describe(wa, sizeof wa, names[k], na, sa);
        describe(wb, sizeof wb, "and", nb, sb);
        snprintf(label, sizeof label, "%s %s", wa, wb);
        expect_shape(label, ys[k], n, shape);
        expect_same(label, sg_data(ys[k]), want, total);
    }
    free(want);
    free(ia);
    free(ib);
    sg_scope_end();
}

/* Each kernel of the binary ops at a size split across threads. */
START_TEST(test_binary_paths)
{
    use_threads(_i);
    sg_rng rng;
    sg_rng_seed(&rng, 11);
    static const struct {
        int na, sa[4], nb, sb[4];
    } cases[] = {
        {1, {70001}, 1, {70001}},                   /* same shape: blocks, ragged end */
        {1, {70001}, 0, {0}},                       /* a 0-d operand */
        {0, {0}, 2, {300, 250}},
        {2, {300, 250}, 1, {1}},                    /* a one-element operand */
        {2, {2200, 30}, 1, {30}},                   /* + bias: rows of 30 */
        {4, {16, 30, 12, 12}, 4, {1, 30, 1, 1}},    /* per-channel: (N, C, H*W) */
        {2, {700, 100}, 2, {700, 1}},               /* a column */
        {2, {1, 100}, 2, {700, 1}},                 /* both broadcast */
        {4, {12, 1, 7, 100}, 4, {1, 9, 7, 1}},      /* 4 coalesced dims: odometer */
        {2, {4, 17000}, 2, {1, 17000}},             /* rows longer than a block (16384) */
        {3, {20, 1, 1100}, 2, {3, 1100}},           /* broadcast dim in the middle */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        check_binary(&rng, cases[c].na, cases[c].sa, cases[c].nb, cases[c].sb);
        check_binary(&rng, cases[c].nb, cases[c].sb, cases[c].na, cases[c].sa); /* swapped */
    }
}
END_TEST

START_TEST(test_binary_random_shapes)
{
    use_threads(_i);
    sg_rng rng;
    sg_rng_seed(&rng, 29);
    for (int t = 0; t < 400; t++) {
        int n = 1 + (int)sg_rng_below(&rng, 5), sa[SG_MAX_DIMS], sb[SG_MAX_DIMS];
        for (int i = 0; i < n; i++) {
            int d = 1 + (int)sg_rng_below(&rng, 5), c = (int)sg_rng_below(&rng, 3);
            sa[i] = c == 1 ? 1 : d;
            sb[i] = c == 2 ? 1 : d;
        }
        int drop = (int)sg_rng_below(&rng, (uint32_t)n + 1);
        check_binary(&rng, n, sa, n - drop, sb + drop);
    }
}
END_TEST

/* The backward of a broadcast sums back to the operand's shape:
 * L = sum((a op b) * w) gives, for add, da = w and db = sum_to(w); for mul,
 * da = w * b and db = sum_to(w * a). */
START_TEST(test_binary_backward)
{
    use_threads(_i);
    sg_rng rng;
    sg_rng_seed(&rng, 31);
    static const struct {
        int na, sa[4], nb, sb[4];
    } cases[] = {
        {2, {2200, 30}, 1, {30}},
        {4, {16, 30, 12, 12}, 4, {1, 30, 1, 1}},
        {2, {700, 100}, 2, {700, 1}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const int na = cases[c].na, nb = cases[c].nb, *sa = cases[c].sa, *sb = cases[c].sb;
        uint32_t mask = 0; /* a's dims that b broadcasts over (same rank, or b trailing) */
        for (int i = 0; i < na; i++) {
            int ib = i - (na - nb);
            if (ib < 0 || sb[ib] == 1)
                mask |= 1u << i;
        }
        for (int mul = 0; mul < 2; mul++) {
            sg_scope_begin();
            sg_tensor *a = sg_param(quarters(&rng, -8, 8, na, sa));
            sg_tensor *b = sg_param(quarters(&rng, -8, 8, nb, sb));
            sg_tensor *w = quarters(&rng, -8, 8, na, sa);
            sg_tensor *y = mul ? sg_mul(a, b) : sg_add(a, b);
            sg_tensor *L = sg_sum_all(sg_mul(y, w));
            ck_assert_msg(L && sg_backward(L, NULL) == 0, "%s", sg_last_error());
            size_t n = sg_size(a);
            float *da = alloc_floats(n), *t = alloc_floats(n), *db = alloc_floats(sg_size(b));
            const float *A = sg_data(a), *B = sg_data(b), *W = sg_data(w);
            /* b's element for each of a's: b broadcast to a's shape */
            for (size_t o = 0; o < n; o++) {
                size_t rem = o, ob = 0, mb = 1;
                for (int i = na - 1; i >= 0; i--) {
                    size_t id = rem % (size_t)sa[i];
                    rem /= (size_t)sa[i];
                    int ib = i - (na - nb);
                    if (ib >= 0) {
                        ob += sb[ib] == 1 ? 0 : id * mb;
                        mb *= (size_t)sb[ib];
                    }
                }
                da[o] = mul ? W[o] * B[ob] : W[o];
                t[o] = mul ? W[o] * A[o] : W[o];
            }
            ref_reduce(t, db, na, sa, mask, 0);
            char what[160];
            describe(what, sizeof what, mul ? "d(a*b)/da" : "d(a+b)/da", na, sa);
            expect_same(what, sg_grad_data(a), da, n);
            describe(what, sizeof what, mul ? "d(a*b)/db" : "d(a+b)/db", nb, sb);
            expect_same(what, sg_grad_data(b), db, sg_size(b));
            free(da);
            free(t);
            free(db);
            sg_scope_end();
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------- */
/* matmul */

/* op(A) (M,K) @ op(B) (K,N) in double: A is stored (K,M) if ta, B (N,K) if tb. */
static void ref_matmul(float *y, const float *A, const float *B, int M, int N, int K, bool ta, bool tb)
{
    const size_t ai = ta ? 1 : (size_t)K, ak = ta ? (size_t)M : 1; /* strides of op(A)(i, k) */
    const size_t bk = tb ? 1 : (size_t)N, bj = tb ? (size_t)K : 1; /* and of op(B)(k, j) */
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            const float *a = A + i * ai, *b = B + j * bj;
            double acc = 0;
            for (int k = 0; k < K; k++)
                acc += (double)a[k * ak] * b[k * bk];
            y[(size_t)i * N + j] = (float)acc;
        }
}

static sg_tensor *matmul_operand(sg_rng *rng, int rows, int cols, bool trans)
{
    return trans ? quarters(rng, -8, 8, SG_DIMS(cols, rows)) : quarters(rng, -8, 8, SG_DIMS(rows, cols));
}

static void check_matmul(sg_rng *rng, int M, int N, int K, bool ta, bool tb)
{
    sg_scope_begin();
    sg_tensor *a = matmul_operand(rng, M, K, ta), *b = matmul_operand(rng, K, N, tb);
    sg_tensor *y = sg_matmul_t(a, b, ta, tb);
    char what[120];
    snprintf(what, sizeof what, "matmul (%dx%d)%s @ (%dx%d)%s", M, K, ta ? "^T" : "", K, N, tb ? "^T" : "");
    expect_shape(what, y, SG_DIMS(M, N));
    float *want = alloc_floats((size_t)M * N);
    ref_matmul(want, sg_data(a), sg_data(b), M, N, K, ta, tb);
    expect_same(what, sg_data(y), want, (size_t)M * N);
    /* addmm: the same kernel accumulating onto a broadcast bias row */
    sg_tensor *c = quarters(rng, -8, 8, SG_DIMS(N));
    sg_tensor *z = sg_addmm_t(c, a, b, ta, tb);
    for (size_t i = 0; i < (size_t)M * N; i++)
        want[i] += sg_data(c)[i % (size_t)N];
    snprintf(what, sizeof what, "addmm (%d) + (%dx%d)%s @ (%dx%d)%s", N, M, K, ta ? "^T" : "", K, N,
             tb ? "^T" : "");
    expect_shape(what, z, SG_DIMS(M, N));
    expect_same(what, sg_data(z), want, (size_t)M * N);
    free(want);
    sg_scope_end();
}

/* Each kernel of sg_sgemm, with every transpose flag (a flag may send a
 * shape to another kernel, which must agree). The notes say which own
 * kernel a shape takes where the rules send it there (always without a
 * BLAS; with one, only shapes inside a level's boxes). */
START_TEST(test_matmul_paths)
{
    use_threads(_i);
    sg_rng rng;
    sg_rng_seed(&rng, 41);
    static const int shapes[][3] = {
        /* M, N, K */
        {67, 8, 1},       /* tall, width 16: N 8 (spill), K 1, rows left over */
        {1203, 12, 50},   /* tall, width 16, across threads */
        {999, 30, 64},    /* tall, width 32 */
        {1000, 17, 9},    /* tall, width 32, N just over 16 */
        {600, 40, 72},    /* tall, width 64, N <= 48; op(B) packed in the scope */
        {513, 57, 72},    /* tall, width 64, N > 48 */
        {64, 9, 1024},    /* tall: smallest M, largest K */
        {130, 64, 40},    /* tall: largest N */
        {25, 30, 4100},   /* long: 6-row tiles and one row left */
        {8, 16, 4096},    /* long: smallest N and K, tiles of 6 and 2 */
        {64, 17, 4096},   /* long: largest M */
        {3, 32, 5000},    /* long: largest N */
        {200, 100, 100},  /* BLAS, split by rows */
        {20, 200, 300},   /* BLAS, split by columns */
        {40, 40, 700},    /* BLAS, split along K */
        {30, 20, 50},     /* BLAS, one thread (small) */
        {1, 70, 2000},    /* a row vector */
        {5, 7, 0},        /* K = 0: zeros */
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int f = 0; f < 4; f++)
            check_matmul(&rng, shapes[s][0], shapes[s][1], shapes[s][2], f & 1, f >> 1);
}
END_TEST

/* Products too large for the naive reference within the time budget are
 * checked through two projections, exact in double for quarter-integer
 * inputs (every partial sum stays below 2^53):
 *     y r = op(A) (op(B) r)        s^T y = (s^T op(A)) op(B)
 * with r, s of random nonzero integers in +-[1, 1024]. A wrong element of
 * y changes the row and the column it is in, so a single wrong element is
 * always caught; several wrong elements in one row escape r only if r is
 * orthogonal to the row's errors, which has probability <= 1/2048. */
static void check_matmul_projected(sg_rng *rng, int M, int N, int K, bool ta, bool tb)
{
    sg_scope_begin();
    sg_tensor *a = matmul_operand(rng, M, K, ta), *b = matmul_operand(rng, K, N, tb);
    sg_tensor *y = sg_matmul_t(a, b, ta, tb);
    char what[120];
    snprintf(what, sizeof what, "matmul (%dx%d)%s @ (%dx%d)%s", M, K, ta ? "^T" : "", K, N, tb ? "^T" : "");
    expect_shape(what, y, SG_DIMS(M, N));
    const float *A = sg_data(a), *B = sg_data(b), *Y = sg_data(y);
#define OPA(i, k) ((double)(ta ? A[(size_t)(k) * M + (i)] : A[(size_t)(i) * K + (k)]))
#define OPB(k, j) ((double)(tb ? B[(size_t)(j) * K + (k)] : B[(size_t)(k) * N + (j)]))
    double *r = calloc((size_t)N, sizeof *r), *br = calloc((size_t)K, sizeof *br);
    double *s = calloc((size_t)M, sizeof *s), *sa = calloc((size_t)K, sizeof *sa);
    ck_assert(r && br && s && sa);
    for (int j = 0; j < N; j++)
        r[j] = (1.0 + sg_rng_below(rng, 1024)) * (sg_rng_below(rng, 2) ? 1 : -1);
    for (int i = 0; i < M; i++)
        s[i] = (1.0 + sg_rng_below(rng, 1024)) * (sg_rng_below(rng, 2) ? 1 : -1);
    for (int k = 0; k < K; k++)
        for (int j = 0; j < N; j++)
            br[k] += OPB(k, j) * r[j];
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++)
            sa[k] += s[i] * OPA(i, k);
    for (int i = 0; i < M; i++) { /* rows: y r against op(A) (op(B) r) */
        double got = 0, want = 0;
        for (int j = 0; j < N; j++)
            got += (double)Y[(size_t)i * N + j] * r[j];
        for (int k = 0; k < K; k++)
            want += OPA(i, k) * br[k];
        if (got != want)
            ck_abort_msg("%s: row %d is wrong (projection %.17g, expected %.17g)", what, i, got, want);
    }
    for (int j = 0; j < N; j++) { /* columns: s^T y against (s^T op(A)) op(B) */
        double got = 0, want = 0;
        for (int i = 0; i < M; i++)
            got += s[i] * (double)Y[(size_t)i * N + j];
        for (int k = 0; k < K; k++)
            want += sa[k] * OPB(k, j);
        if (got != want)
            ck_abort_msg("%s: column %d is wrong (projection %.17g, expected %.17g)", what, j, got, want);
    }
#undef OPA
#undef OPB
    free(r);
    free(br);
    free(s);
    free(sa);
    sg_scope_end();
}

/* The book's CNN on a batch of 10 images: conv of 30 5x5 filters on 28x28
 * (5760 = 10*24*24 windows of 25 values), then the hidden layer of 100 on
 * 4320 features; forward and both gradients. A batch of 100 (57600 rows)
 * takes the same kernels and splits (kernels/gemm.c decides by the thresholds
 * in the header above) but costs ~3 s a product under valgrind. */
START_TEST(test_matmul_conv_shapes)
{
    use_threads(_i);
    sg_rng rng;
    sg_rng_seed(&rng, 43);
    /* conv forward: cols (5760x25) @ W (30x25)^T -> tall (BLAS split by rows without it) */
    check_matmul_projected(&rng, 5760, 30, 25, false, true);
    /* dcols = dy (5760x30) @ W (30x25) -> tall */
    check_matmul_projected(&rng, 5760, 25, 30, false, false);
    /* dW = dy^T (30x5760) @ cols (5760x25) -> long (BLAS split along K without it) */
    check_matmul_projected(&rng, 30, 25, 5760, true, false);
    /* a tall product that every level with own kernels takes (kernels/gemm.c's
     * boxes), through the split over rows */
    if (sg_kern->gemm_tall) {
        ck_assert_str_eq(sg_sgemm_choice(false, false, 20000, 16, 50), "tall");
        ck_assert_str_eq(sg_sgemm_choice(true, false, 25, 30, 5760), "long");
        ck_assert_str_eq(sg_sgemm_choice(true, false, 100, 10, 100), "narrow");
        ck_assert_str_eq(sg_sgemm_choice(true, false, 120, 10, 600), "narrow");
        ck_assert_str_eq(sg_sgemm_choice(false, true, 100, 100, 10), "tall");
    }
    check_matmul_projected(&rng, 20000, 16, 50, false, false);
    /* a dense layer's dW with 10 outputs: x^T (100x100)^T @ dy (100x10) -> narrow, and
     * one large enough to be split across the threads (4 strips of 32 rows) */
    check_matmul_projected(&rng, 100, 10, 100, true, false);
    check_matmul_projected(&rng, 120, 10, 600, true, false);
    /* the same layer's dh = dy (100x10) @ W2 (100x10)^T -> tall, op(B) = W2^T packed */
    check_matmul_projected(&rng, 100, 100, 10, false, true);
    /* affine forward: (10x4320) @ (4320x100) -> BLAS split along K */
    check_matmul_projected(&rng, 10, 100, 4320, false, false);
    /* dx = dy (10x100) @ W (4320x100)^T -> split by columns */
    check_matmul_projected(&rng, 10, 4320, 100, false, true);
    /* dW = x^T (4320x10) @ dy (10x100) -> split by rows */
    check_matmul_projected(&rng, 4320, 100, 10, true, false);
}
END_TEST

/* Batched products (one sgemm per matrix: no spill across matrices, split
 * over the batch), a batch times one shared matrix (the batch folded into
 * the rows, or per matrix when transposed), and one shared matrix times a
 * batch. */
START_TEST(test_matmul_batched)
{
    use_threads(_i);
    sg_rng rng;
    sg_rng_seed(&rng, 47);
    const int B = 3, M = 70, N = 20, K = 30;
    for (int f = 0; f < 4; f++) {
        bool ta = f & 1, tb = f >> 1;
        sg_scope_begin();
        sg_tensor *a = ta ? quarters(&rng, -8, 8, SG_DIMS(B, K, M))
                          : quarters(&rng, -8, 8, SG_DIMS(B, M, K));
        sg_tensor *b = tb ? quarters(&rng, -8, 8, SG_DIMS(B, N, K))
                          : quarters(&rng, -8, 8, SG_DIMS(B, K, N));
        sg_tensor *y = sg_matmul_t(a, b, ta, tb);
        expect_shape("batched matmul", y, SG_DIMS(B, M, N));
        float *want = alloc_floats((size_t)B * M * N);
        for (int i = 0; i < B; i++)
            ref_matmul(want + (size_t)i * M * N, sg_data(a) + (size_t)i * M * K,
                       sg_data(b) + (size_t)i * K * N, M, N, K, ta, tb);
        expect_same("batched matmul", sg_data(y), want, (size_t)B * M * N);
        free(want);
        sg_scope_end();
    }
    for (int f = 0; f < 8; f++) {
        bool ta = f & 1, tb = f >> 1 & 1, left = f >> 2; /* left: a shared, b batched */
        sg_scope_begin();
        int as[3] = {B, ta ? K : M, ta ? M : K}, bs[3] = {B, tb ? N : K, tb ? K : N};
        sg_tensor *a = left ? quarters(&rng, -8, 8, 2, as + 1) : quarters(&rng, -8, 8, 3, as);
        sg_tensor *b = left ? quarters(&rng, -8, 8, 3, bs) : quarters(&rng, -8, 8, 2, bs + 1);
        sg_tensor *y = sg_matmul_t(a, b, ta, tb);
        char label[64];
        snprintf(label, sizeof label, "shared %s matmul%s%s", left ? "left" : "right", ta ? " ta" : "",
                 tb ? " tb" : "");
        expect_shape(label, y, SG_DIMS(B, M, N));
        float *want = alloc_floats((size_t)B * M * N);
        for (int i = 0; i < B; i++)
            ref_matmul(want + (size_t)i * M * N, sg_data(a) + (left ? 0 : (size_t)i * M * K),
                       sg_data(b) + (left ? (size_t)i * K * N : 0), M, N, K, ta, tb);
        expect_same(label, sg_data(y), want, (size_t)B * M * N);
        free(want);
        sg_scope_end();
    }
    /* many small products, as convolution's W @ cols_n^T: split over the
     * batch; and with a bias per output channel (addmm) */
    sg_scope_begin();
    sg_tensor *w = quarters(&rng, -8, 8, SG_DIMS(30, 25));
    sg_tensor *cols = quarters(&rng, -8, 8, SG_DIMS(40, 144, 25));
    sg_tensor *bias = quarters(&rng, -8, 8, SG_DIMS(30, 1));
    sg_tensor *y = sg_matmul_t(w, cols, false, true);
    sg_tensor *yb = sg_addmm_t(bias, w, cols, false, true);
    expect_shape("conv-shaped matmul", y, SG_DIMS(40, 30, 144));
    expect_shape("conv-shaped addmm", yb, SG_DIMS(40, 30, 144));
    const size_t total = (size_t)40 * 30 * 144;
    float *want = alloc_floats(total);
    for (int i = 0; i < 40; i++)
        ref_matmul(want + (size_t)i * 30 * 144, sg_data(w), sg_data(cols) + (size_t)i * 144 * 25, 30, 144,
                   25, false, true);
    expect_same("conv-shaped matmul", sg_data(y), want, total);
    for (size_t i = 0; i < total; i++)
        want[i] += sg_data(bias)[i / 144 % 30];
    expect_same("conv-shaped addmm", sg_data(yb), want, total);
    free(want);
    sg_scope_end();
    /* addmm over a batch with every form of c: one (M, N) block for all
     * products (a row, a column, one value, the block: copied in per
     * product), or c with a batch dim (filled over the whole result) */
    static const int cshapes[][4] = {/* ndim, dims */
                                     {1, N}, {2, M, 1}, {1, 1}, {2, M, N}, {3, B, 1, N}, {3, 1, M, N}};
    for (size_t k = 0; k < sizeof cshapes / sizeof cshapes[0]; k++) {
        sg_scope_begin();
        sg_tensor *a = quarters(&rng, -8, 8, SG_DIMS(B, M, K)), *b = quarters(&rng, -8, 8, SG_DIMS(K, N));
        sg_tensor *bt = quarters(&rng, -8, 8, SG_DIMS(B, N, K)); /* per-matrix path: tb over a batch */
        sg_tensor *c = quarters(&rng, -8, 8, cshapes[k][0], cshapes[k] + 1);
        char label[64];
        for (int form = 0; form < 2; form++) {
            sg_tensor *z = form ? sg_addmm_t(c, a, bt, false, true) : sg_addmm(c, a, b);
            snprintf(label, sizeof label, "batched addmm, c of %d dims (%s)", cshapes[k][0],
                     form ? "per matrix" : "folded");
            expect_shape(label, z, SG_DIMS(B, M, N));
            float *w = alloc_floats((size_t)B * M * N);
            for (int i = 0; i < B; i++)
                ref_matmul(w + (size_t)i * M * N, sg_data(a) + (size_t)i * M * K,
                           form ? sg_data(bt) + (size_t)i * N * K : sg_data(b), M, N, K, false, form == 1);
            sg_tensor *full = sg_broadcast_to(c, SG_DIMS(B, M, N));
            ck_assert_ptr_nonnull(full);
            for (size_t i = 0; i < (size_t)B * M * N; i++)
                w[i] += sg_data(full)[i];
            expect_same(label, sg_data(z), w, (size_t)B * M * N);
            free(w);
        }
        sg_scope_end();
    }
}
END_TEST

/* With no scope open the tall kernel cannot pack an op(B) of more than 4096
 * floats (it packs into the scope) and hands the product to the BLAS: the
 * same values, in persistent tensors. */
START_TEST(test_matmul_outside_scope)
{
    use_threads(_i);
    sg_rng rng;
    sg_rng_seed(&rng, 53);
    while (sg_scope_depth() > 0)
        sg_scope_end();
    static const int shapes[][3] = {{70, 64, 80}, {64, 17, 300}}; /* K * (N rounded up) > 4096 */
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int tb = 0; tb < 2; tb++) {
            const int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
            sg_tensor *a = matmul_operand(&rng, M, K, false), *b = matmul_operand(&rng, K, N, tb);
            sg_tensor *y = sg_matmul_t(a, b, false, tb);
            char what[120];
            snprintf(what, sizeof what, "matmul outside a scope (%dx%d) @ (%dx%d)%s", M, K, K, N,
                     tb ? "^T" : "");
            expect_shape(what, y, SG_DIMS(M, N));
            float *want = alloc_floats((size_t)M * N);
            ref_matmul(want, sg_data(a), sg_data(b), M, N, K, false, tb);
            expect_same(what, sg_data(y), want, (size_t)M * N);
            free(want);
            sg_tensor_free(y);
            sg_tensor_free(a);
            sg_tensor_free(b);
        }
    /* a conv-shaped addmm: outside a scope the bias is filled over the whole
     * result first (no scratch block to copy from) */
    sg_tensor *w = quarters(&rng, -8, 8, SG_DIMS(6, 9)), *cols = quarters(&rng, -8, 8, SG_DIMS(3, 16, 9));
    sg_tensor *bias = quarters(&rng, -8, 8, SG_DIMS(6, 1));
    sg_tensor *y = sg_addmm_t(bias, w, cols, false, true);
    expect_shape("conv-shaped addmm outside a scope", y, SG_DIMS(3, 6, 16));
    float *want = alloc_floats(3 * 6 * 16);
    for (int i = 0; i < 3; i++)
        ref_matmul(want + i * 6 * 16, sg_data(w), sg_data(cols) + i * 16 * 9, 6, 16, 9, false, true);
    for (size_t i = 0; i < 3 * 6 * 16; i++)
        want[i] += sg_data(bias)[i / 16 % 6];
    expect_same("conv-shaped addmm outside a scope", sg_data(y), want, 3 * 6 * 16);
    free(want);
    sg_tensor *ts[] = {y, w, cols, bias};
    for (int i = 0; i < 4; i++)
        sg_tensor_free(ts[i]);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* relu and max backward: fused (not recording) against composed */

typedef struct max_args {
    int axes[SG_MAX_DIMS], n;
    bool keep;
} max_args;

static sg_tensor *apply(sg_tensor *x, const max_args *m)
{
    return m ? sg_max(x, m->axes, m->n, m->keep) : sg_relu(x);
}

/* d/dx sum(f(x) * w) by sg_backward: create_graph records the backward
 * pass, so the composed local derivative runs; without it, the fused one. */
static const float *grad_by_backward(sg_tensor *x0, sg_tensor *w, const max_args *m, bool create)
{
    sg_tensor *x = sg_param(sg_copy(x0));
    sg_tensor *L = sg_sum_all(sg_mul(apply(x, m), w));
    sg_backward_opts o = {.create_graph = create};
    ck_assert_msg(L && sg_backward(L, &o) == 0, "%s", sg_last_error());
    ck_assert_msg(sg_grad(x) != NULL, "no gradient reached x");
    return sg_grad_data(x);
}

/* relu (m NULL) or max over m's axes of x (shape xs), values with ties */
static void check_fused_backward(sg_rng *rng, int n, const int *xs, const max_args *m)
{
    sg_scope_begin();
    sg_tensor *x = quarters(rng, -4, 4, n, xs); /* nine values: ties and zeros are common */
    sg_tensor *y = apply(x, m);
    ck_assert_msg(y != NULL, "%s", sg_last_error());
    sg_tensor *w = quarters(rng, -8, 8, sg_ndim(y), sg_shape(y));
    const float *fused = grad_by_backward(x, w, m, false);
    const float *composed = grad_by_backward(x, w, m, true);

    /* the reference: relu: w * (x > 0); max: w / (number of maxima) at each
     * maximum, 0 elsewhere */
    size_t total = sg_size(x);
    const float *X = sg_data(x), *W = sg_data(w);
    float *want = alloc_floats(total);
    if (!m) {
        for (size_t i = 0; i < total; i++)
            want[i] = W[i] * (X[i] > 0.f ? 1.f : 0.f);
    } else {
        uint32_t mask = 0;
        for (int k = 0; k < m->n; k++)
            mask |= 1u << m->axes[k];
        float *mx = alloc_floats(sg_size(y)), *count = alloc_floats(sg_size(y));
        ref_reduce(X, mx, n, xs, mask, 1);
        size_t *yo = malloc(total * sizeof *yo);
        ck_assert_ptr_nonnull(yo);
        for (size_t i = 0; i < sg_size(y); i++)
            count[i] = 0.f;
        for (size_t o = 0; o < total; o++) {
            size_t rem = o, off = 0, mul = 1;
            for (int i = n - 1; i >= 0; i--) {
                size_t id = rem % (size_t)xs[i];
                rem /= (size_t)xs[i];
                if (!(mask >> i & 1u)) {
                    off += id * mul;
                    mul *= (size_t)xs[i];
                }
            }
            yo[o] = off;
            count[off] += X[o] == mx[off] ? 1.f : 0.f;
        }
        for (size_t o = 0; o < total; o++)
            want[o] = (X[o] == mx[yo[o]] ? 1.f : 0.f) * (W[yo[o]] / count[yo[o]]);
        free(mx);
        free(count);
        free(yo);
    }
    char what[160], label[240];
    describe(what, sizeof what, m ? "max" : "relu", n, xs);
    if (m) {
        int at = (int)strlen(what);
        at += snprintf(what + at, sizeof what - (size_t)at, " axes");
        for (int k = 0; k < m->n; k++)
            at += snprintf(what + at, sizeof what - (size_t)at, " %d", m->axes[k]);
        snprintf(what + at, sizeof what - (size_t)at, "%s", m->keep ? " keepdims" : "");
    }
    snprintf(label, sizeof label, "%s: fused backward", what);
    expect_same(label, fused, want, total);
    snprintf(label, sizeof label, "%s: composed backward", what);
    expect_same(label, composed, want, total);
    free(want);
    sg_scope_end();
}

START_TEST(test_relu_backward)
{
    use_threads(_i);
    sg_rng rng;
    sg_rng_seed(&rng, 13);
    check_fused_backward(&rng, SG_DIMS(70001), NULL);          /* across threads */
    check_fused_backward(&rng, SG_DIMS(100, 30, 24), NULL);
    for (int t = 0; t < 100; t++) {
        int n = 1 + (int)sg_rng_below(&rng, 4), xs[SG_MAX_DIMS];
        for (int i = 0; i < n; i++)
            xs[i] = 1 + (int)sg_rng_below(&rng, 5);
        check_fused_backward(&rng, n, xs, NULL);
    }
}
END_TEST

START_TEST(test_max_backward)
{
    use_threads(_i);
    sg_rng rng;
    sg_rng_seed(&rng, 17);
    static const struct {
        int n, shape[4];
        max_args m;
    } cases[] = {
        {2, {16500, 4}, {{1}, 1, false}},       /* pooling's rows of 4, across threads */
        {2, {3000, 30}, {{1}, 1, true}},        /* softmax's rows */
        {3, {100, 30, 24}, {{1, 2}, 2, false}}, /* rows of 720 */
        {3, {40, 30, 60}, {{2, 1}, 2, true}},   /* axes given out of order */
        {2, {2200, 30}, {{0}, 1, false}},       /* leading axis: composed both ways */
        {3, {30, 100, 24}, {{1}, 1, true}},     /* middle axis */
        {3, {3000, 1, 25}, {{1, 2}, 2, false}}, /* trailing axes around a 1 */
        {3, {3000, 25, 1}, {{1}, 1, false}},
        {4, {3600, 2, 12, 2}, {{1, 3}, 2, false}}, /* 2x2 pooling windows, across threads */
        {4, {50, 3, 7, 3}, {{3, 1}, 2, true}},     /* 3x3 windows */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        check_fused_backward(&rng, cases[c].n, cases[c].shape, &cases[c].m);
    for (int t = 0; t < 150; t++) {
        int n = 1 + (int)sg_rng_below(&rng, 4), xs[SG_MAX_DIMS];
        for (int i = 0; i < n; i++)
            xs[i] = 1 + (int)sg_rng_below(&rng, 5);
        max_args m = {.n = 0, .keep = sg_rng_below(&rng, 2) == 1};
        uint32_t mask = 1 + sg_rng_below(&rng, (1u << n) - 1); /* at least one axis */
        for (int i = 0; i < n; i++)
            if (mask >> i & 1u)
                m.axes[m.n++] = i;
        check_fused_backward(&rng, n, xs, &m);
    }
}
END_TEST

/* ------------------------------------------------------------------------- */
/* the thread pool */

/* Work a user thread does while others use the pool: the pool serves one
 * caller at a time, the others run their loops themselves. */
typedef struct caller {
    uint64_t seed;
    int errors;
    char msg[160];
} caller;

static pthread_barrier_t done_barrier;
static pthread_mutex_t release_mu = PTHREAD_MUTEX_INITIALIZER;

static void caller_work(caller *c)
{
    sg_rng rng;
    sg_rng_seed(&rng, c->seed);
    for (int round = 0; round < 2 && !c->errors; round++) {
        sg_scope_begin();
        const int M = 1700, N = 40, K = 30; /* (M, N) = 68000 floats: split across threads */
        sg_tensor *a = quarters(&rng, -8, 8, SG_DIMS(M, K)), *b = quarters(&rng, -8, 8, SG_DIMS(K, N));
        sg_tensor *y = sg_matmul(a, b);
        sg_tensor *s = sg_sum(y, (const int[]){0}, 1, false);
        sg_tensor *r = sg_relu(sg_sub(y, sg_transpose(sg_transpose(y))));
        float *want = malloc((size_t)M * N * sizeof(float)), *ws = malloc((size_t)N * sizeof(float));
        if (!want || !ws || !y || !s || !r) {
            snprintf(c->msg, sizeof c->msg, "no result: %s", sg_last_error());
            c->errors++;
        } else {
            ref_matmul(want, sg_data(a), sg_data(b), M, N, K, false, false);
            for (int j = 0; j < N; j++) {
                double acc = 0;
                for (int i = 0; i < M; i++)
                    acc += want[(size_t)i * N + j];
                ws[j] = (float)acc;
            }
            for (size_t i = 0; i < (size_t)M * N && !c->errors; i++) {
                if (sg_data(y)[i] != want[i])
                    snprintf(c->msg, sizeof c->msg, "matmul element %zu: %g, expected %g", i,
                             (double)sg_data(y)[i], (double)want[i]);
                else if (sg_data(r)[i] != 0.f)
                    snprintf(c->msg, sizeof c->msg, "relu(y - transpose(transpose(y))) element %zu: %g", i,
                             (double)sg_data(r)[i]);
                else
                    continue;
                c->errors++;
            }
            for (int j = 0; j < N && !c->errors; j++)
                if (sg_data(s)[j] != ws[j]) {
                    snprintf(c->msg, sizeof c->msg, "column sum %d: %g, expected %g", j,
                             (double)sg_data(s)[j], (double)ws[j]);
                    c->errors++;
                }
        }
        free(want);
        free(ws);
        sg_scope_end();
    }
}

static void *caller_thread(void *arg)
{
    caller *c = arg;
    caller_work(c);
    /* nobody uses the pool past this point: this thread's arenas can go */
    pthread_barrier_wait(&done_barrier);
    pthread_mutex_lock(&release_mu);
    sg_release_memory();
    pthread_mutex_unlock(&release_mu);
    return NULL;
}

START_TEST(test_concurrent_callers)
{
    use_threads(_i);
    enum { T = 2 };
    caller c[T + 1];
    pthread_t tid[T];
    ck_assert_int_eq(pthread_barrier_init(&done_barrier, NULL, T + 1), 0);
    for (int t = 0; t <= T; t++)
        c[t] = (caller){.seed = 100 + (uint64_t)t};
    for (int t = 0; t < T; t++)
        ck_assert_int_eq(pthread_create(&tid[t], NULL, caller_thread, &c[t]), 0);
    caller_work(&c[T]); /* this thread too */
    pthread_barrier_wait(&done_barrier);
    for (int t = 0; t < T; t++)
        pthread_join(tid[t], NULL);
    pthread_barrier_destroy(&done_barrier);
    for (int t = 0; t <= T; t++)
        ck_assert_msg(c[t].errors == 0, "caller %d: %s", t, c[t].msg);
}
END_TEST

/* Changing the thread count restarts the pool; results do not change. */
START_TEST(test_thread_count_changes)
{
    use_threads(_i);
    sg_rng rng;
    sg_rng_seed(&rng, 59);
    sg_tensor *x = quarters(&rng, -8, 8, SG_DIMS(2200, 30));
    float *want = alloc_floats(30);
    ref_reduce(sg_data(x), want, 2, (const int[]){2200, 30}, 0x1, 0);
    for (int round = 0; round < 6; round++) {
        set_threads(1 + (round + _i) % 2);
        sg_tensor *s = sg_sum(x, (const int[]){0}, 1, false);
        expect_same("column sums after a thread count change", sg_data(s), want, 30);
    }
    free(want);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* The thin products' own kernels, called directly at every level that has
 * them, on ragged shapes: tall on row ranges [i0, i1) with C's row stride
 * wider than N and guard values around what may be written; long on slices
 * [k0, k1) with B allocated to end exactly at its last valid float (the
 * sanitizer run catches a read past it: long's loads are not masked);
 * narrow like tall, with A ending before a page that faults (its loads are
 * masked). Exact, like the rest (quarter integers). */

static const sg_kernels *level_table(int level)
{
    static const sg_kernels *const t[SG_ISA_COUNT] = {
        &sg_kernels_generic,
#ifdef SG_KERNELS_X86
        &sg_kernels_avx2,
        &sg_kernels_avx512,
#endif
    };
    return t[level];
}

static void fill_quarters(sg_rng *rng, float *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = quarter(rng, -8, 8);
}

/* C (M rows of ldc) for a kernel that writes rows [i0, i1) x columns [0, N):
 * those hold its starting values when acc, everything else the guard. */
static const float c_guard = -12345.f;

static void fill_guarded(sg_rng *rng, float *C, int M, int N, int ldc, int i0, int i1, bool acc)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++)
            C[(size_t)i * ldc + j] = j < N && i >= i0 && i < i1 && acc ? quarter(rng, -8, 8) : c_guard;
}

/* C against want (M x N, rows [i0, i1) only) and the guard elsewhere. */
static void expect_guarded(const char *what, const float *C, const double *want, int M, int N, int ldc, int i0,
                           int i1)
{
    for (int i = 0; i < M; i++)
        for (int j = 0; j < ldc; j++) {
            bool mine = i >= i0 && i < i1 && j < N;
            double w = mine ? want[(size_t)i * N + j] : c_guard;
            if (C[(size_t)i * ldc + j] != w)
                ck_abort_msg("%s ldc %d rows [%d,%d): C[%d][%d] = %g, expected %g", what, ldc, i0, i1, i, j,
                             (double)C[(size_t)i * ldc + j], w);
        }
}

/* ldc = N (rows of C back to back) takes the kernels' path that stores
 * whole vectors past column N into the next row, which they write later:
 * the rows outside [i0, i1) must still hold the guard. */
static void check_tall(const sg_kernels *k, sg_rng *rng, int M, int N, int K, bool tb, bool acc, bool dense_c)
{
    const int lda = K + 3, ldb = (tb ? K : N) + 2, ldc = dense_c ? N : N + 5;
    float *A = alloc_floats((size_t)M * lda), *B = alloc_floats((size_t)(tb ? N : K) * ldb);
    float *Bp = alloc_floats((size_t)K * k->gemm_tall_width(N)), *C = alloc_floats((size_t)M * ldc);
    double *want = calloc((size_t)M * N, sizeof *want);
    ck_assert_ptr_nonnull(want);
    fill_quarters(rng, A, (size_t)M * lda);
    fill_quarters(rng, B, (size_t)(tb ? N : K) * ldb);
    const int i0 = M > 2 ? 1 : 0, i1 = M > 4 ? M - 1 : M; /* a range inside the rows */
    fill_guarded(rng, C, M, N, ldc, i0, i1, acc);
    for (int i = i0; i < i1; i++)
        for (int j = 0; j < N; j++) {
            double s = acc ? C[(size_t)i * ldc + j] : 0;
            for (int q = 0; q < K; q++)
                s += (double)A[(size_t)i * lda + q] * (tb ? B[(size_t)j * ldb + q] : B[(size_t)q * ldb + j]);
            want[(size_t)i * N + j] = s;
        }
    k->gemm_tall_pack(tb, N, K, B, ldb, Bp);
    k->gemm_tall(i0, i1, N, K, A, lda, Bp, C, ldc, acc);
    char what[96];
    snprintf(what, sizeof what, "%s tall M %d N %d K %d%s%s", sg_isa_name(k->isa), M, N, K, tb ? " tb" : "",
             acc ? " acc" : "");
    expect_guarded(what, C, want, M, N, ldc, i0, i1);
    free(A);
    free(B);
    free(Bp);
    free(C);
    free(want);
}

static void check_long(const sg_kernels *k, sg_rng *rng, int M, int N, int K, int k0, int k1)
{
    const int lda = M + 1, ldb = N + 3, PC = SG_GEMM_LONG_P_COLS;
    float *A = alloc_floats((size_t)K * lda);
    float *B = alloc_floats((size_t)(K - 1) * ldb + N); /* ends at B's last valid float */
    float *P = alloc_floats((size_t)M * PC);
    fill_quarters(rng, A, (size_t)K * lda);
    fill_quarters(rng, B, (size_t)(K - 1) * ldb + N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < PC; j++)
            P[(size_t)i * PC + j] = j < N ? quarter(rng, -8, 8) : 0.f;
    double *want = calloc((size_t)M * PC, sizeof *want);
    ck_assert_ptr_nonnull(want);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = P[(size_t)i * PC + j];
            for (int q = k0; q < k1; q++)
                s += (double)A[(size_t)q * lda + i] * B[(size_t)q * ldb + j];
            want[(size_t)i * PC + j] = s;
        }
    k->gemm_long(k0, k1, K, M, N, A, lda, B, ldb, P);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < PC; j++)
            if (P[(size_t)i * PC + j] != want[(size_t)i * PC + j])
                ck_abort_msg("%s long M %d N %d K %d [%d,%d): P[%d][%d] = %g, expected %g", sg_isa_name(k->isa), M,
                             N, K, k0, k1, i, j, (double)P[(size_t)i * PC + j], want[(size_t)i * PC + j]);
    free(A);
    free(B);
    free(P);
    free(want);
}

/* n floats that end where a page the process may not touch begins: a read
 * past the last one faults, masked vector loads included (which GCC's
 * AddressSanitizer does not check). Unmapped by unmap_fenced. */
typedef struct fenced {
    void *base;
    size_t len;
} fenced;

static float *alloc_fenced(size_t n, fenced *f)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE), bytes = n * sizeof(float);
    const size_t data = (bytes + page - 1) / page * page;
    f->len = data + page;
    f->base = mmap(NULL, f->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert(f->base != MAP_FAILED);
    ck_assert_int_eq(mprotect((char *)f->base + data, page, PROT_NONE), 0);
    return (float *)((char *)f->base + data - bytes);
}

static void unmap_fenced(fenced *f) { ck_assert_int_eq(munmap(f->base, f->len), 0); }

/* narrow on rows [i0, i1) of C (the middle rows, or all of them) with A
 * ending at column i1 - 1 of its last row, right before a page that faults
 * (so a read of A past the rows asked for crashes the test), and C with
 * guards around the rows and columns it may write. */
static void check_narrow(const sg_kernels *k, sg_rng *rng, int M, int N, int K, bool acc, bool dense_c, bool all)
{
    const int lda = M + 3, ldb = N + 2, ldc = dense_c ? N : N + 5;
    const int i0 = all || M <= 2 ? 0 : 1, i1 = all || M <= 4 ? M : M - 1;
    const size_t na = (size_t)(K - 1) * lda + i1;
    fenced fa;
    float *A = alloc_fenced(na, &fa), *B = alloc_floats((size_t)K * ldb);
    float *C = alloc_floats((size_t)M * ldc);
    double *want = calloc((size_t)M * N, sizeof *want);
    ck_assert_ptr_nonnull(want);
    fill_quarters(rng, A, na);
    fill_quarters(rng, B, (size_t)K * ldb);
    fill_guarded(rng, C, M, N, ldc, i0, i1, acc);
    for (int i = i0; i < i1; i++)
        for (int j = 0; j < N; j++) {
            double s = acc ? C[(size_t)i * ldc + j] : 0;
            for (int q = 0; q < K; q++)
                s += (double)A[(size_t)q * lda + i] * B[(size_t)q * ldb + j];
            want[(size_t)i * N + j] = s;
        }
    k->gemm_narrow(i0, i1, N, K, A, lda, B, ldb, C, ldc, acc);
    char what[96];
    snprintf(what, sizeof what, "%s narrow M %d N %d K %d%s", sg_isa_name(k->isa), M, N, K, acc ? " acc" : "");
    expect_guarded(what, C, want, M, N, ldc, i0, i1);
    unmap_fenced(&fa);
    free(B);
    free(C);
    free(want);
}

START_TEST(test_thin_kernels)
{
    const sg_kernels *k = level_table(_i);
    if (!k->gemm_tall) /* the generic level has none: nothing to call */
        return;
    sg_rng rng;
    sg_rng_seed(&rng, 61);
    static const int tall_n[] = {1,  2,  3,  7,  8,  9,  10, 15, 16,  17,  24,  25,  30,  31, 32,
                                 33, 47, 48, 49, 57, 64, 65, 79, 80, 81, 100, 112, 113, 127, 128};
    static const int tall_k[] = {1, 7, 10, 25, 30, 100, 1024};
    /* ranges of 1-7 rows (every tile height: 8 rows at most, 6 or 4 for
     * wider panels) and 65 (full blocks and a last short one) */
    static const int tall_m[] = {1, 3, 5, 6, 7, 8, 9, 67};
    for (size_t n = 0; n < sizeof tall_n / sizeof *tall_n; n++) {
        if (tall_n[n] < k->gemm_tall_min_n)
            continue;
        for (size_t q = 0; q < sizeof tall_k / sizeof *tall_k; q++)
            for (size_t m = 0; m < sizeof tall_m / sizeof *tall_m; m++)
                for (int f = 0; f < 8; f++)
                    check_tall(k, &rng, tall_m[m], tall_n[n], tall_k[q], f & 1, f & 2, f & 4);
    }
    static const int long_m[] = {1, 2, 5, 6, 7, 25, 64};
    static const int long_n[] = {1, 2, 7, 8, 9, 15, 16, 17, 25, 30, 31, 32};
    for (size_t m = 0; m < sizeof long_m / sizeof *long_m; m++)
        for (size_t n = 0; n < sizeof long_n / sizeof *long_n; n++) {
            if (long_n[n] < k->gemm_long_min_n)
                continue;
            check_long(k, &rng, long_m[m], long_n[n], 4100, 0, 4100);    /* all of K, B's end */
            check_long(k, &rng, long_m[m], long_n[n], 700, 129, 517);    /* a slice inside */
        }
    /* narrow: every N (passes of columns); row counts (all rows, or M - 2
     * of them) on both sides of the strips' edges: 8 and 16 rows (AVX2), 16
     * and 32 (AVX-512), and several strips */
    static const int narrow_m[] = {1, 5, 8, 9, 10, 11, 15, 16, 17, 18, 19, 31, 32, 33, 34, 47, 100};
    static const int narrow_k[] = {1, 2, 9, 100};
    for (size_t m = 0; m < sizeof narrow_m / sizeof *narrow_m; m++)
        for (int n = 1; n <= SG_GEMM_NARROW_MAX_N; n++)
            for (size_t q = 0; q < sizeof narrow_k / sizeof *narrow_k; q++)
                for (int f = 0; f < 8; f++)
                    check_narrow(k, &rng, narrow_m[m], n, narrow_k[q], f & 1, f & 2, f & 4);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Choosing the level */

START_TEST(test_isa_names)
{
    for (int i = 0; i < SG_ISA_COUNT; i++) {
        sg_isa got = SG_ISA_COUNT;
        ck_assert_int_eq(sg_isa_from_name(sg_isa_name((sg_isa)i), &got), 0);
        ck_assert_int_eq(got, i);
    }
    ck_assert_str_eq(sg_isa_name(SG_ISA_GENERIC), "generic");
    ck_assert_str_eq(sg_isa_name(SG_ISA_AVX2), "avx2");
    ck_assert_str_eq(sg_isa_name(SG_ISA_AVX512), "avx512");
    ck_assert_str_eq(sg_isa_name(SG_ISA_COUNT), "?");
    sg_isa upper = SG_ISA_COUNT;
    ck_assert_int_eq(sg_isa_from_name("AVX512", &upper), 0);
    ck_assert_int_eq(upper, SG_ISA_AVX512);
    sg_isa keep = SG_ISA_AVX2;
    ck_assert_int_eq(sg_isa_from_name("sse9", &keep), -1);
    ck_assert_int_eq(sg_isa_from_name("avx", &keep), -1);
    ck_assert_int_eq(sg_isa_from_name("avx2x", &keep), -1);
    ck_assert_int_eq(sg_isa_from_name(NULL, &keep), -1);
    ck_assert_int_eq(keep, SG_ISA_AVX2);
}
END_TEST

/* sg_set_isa takes every level up to the CPU's and refuses the rest with a
 * message; the level in use is what was set. */
START_TEST(test_set_isa)
{
    const sg_isa cpu = sg_isa_cpu();
    ck_assert_int_le(sg_isa_active(), cpu);
    for (int i = 0; i <= (int)cpu; i++) {
        ck_assert_int_eq(sg_set_isa((sg_isa)i), 0);
        ck_assert_int_eq(sg_isa_active(), i);
        char line[256];
        sg_kernels_describe(line, sizeof line);
        char want[64];
        snprintf(want, sizeof want, "kernels: %s on ", sg_isa_name((sg_isa)i));
        ck_assert_msg(strncmp(line, want, strlen(want)) == 0, "describe: \"%s\"", line);
        snprintf(want, sizeof want, "(best: %s", sg_isa_name(cpu));
        ck_assert_msg(strstr(line, want) != NULL, "describe: \"%s\"", line);
        ck_assert_msg(strstr(line, "matmul: ") != NULL, "describe: \"%s\"", line);
    }
    for (int i = (int)cpu + 1; i < SG_ISA_COUNT; i++) {
        sg_clear_error();
        ck_assert_int_eq(sg_set_isa((sg_isa)i), -1);
        ck_assert_msg(strstr(sg_last_error(), "sg_set_isa: ") && strstr(sg_last_error(), "not supported"),
                      "message: %s", sg_last_error());
        ck_assert_int_eq(sg_isa_active(), cpu);
    }
    sg_clear_error();
    ck_assert_int_eq(sg_set_isa(SG_ISA_COUNT), -1);
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "sg_set_isa"));
    sg_clear_error();
    ck_assert_int_eq(sg_set_isa((sg_isa)-1), -1);
    sg_clear_error();
}
END_TEST

/* What SG_ISA's value gives on CPUs of each level. */
START_TEST(test_isa_choose)
{
    char note[96];
    bool refused;
    for (int cpu = 0; cpu < SG_ISA_COUNT; cpu++) {
        ck_assert_int_eq(sg_isa_choose(NULL, (sg_isa)cpu, &refused, note, sizeof note), cpu);
        ck_assert(!refused && note[0] == 0);
        ck_assert_int_eq(sg_isa_choose("", (sg_isa)cpu, &refused, note, sizeof note), cpu);
        ck_assert(!refused && note[0] == 0);
        for (int w = 0; w < SG_ISA_COUNT; w++) {
            sg_isa got = sg_isa_choose(sg_isa_name((sg_isa)w), (sg_isa)cpu, &refused, note, sizeof note);
            char want[96];
            if (w <= cpu) { /* taken */
                ck_assert_int_eq(got, w);
                ck_assert(!refused);
                snprintf(want, sizeof want, "SG_ISA=%s", sg_isa_name((sg_isa)w));
            } else { /* above the CPU's: refused, the CPU's best */
                ck_assert_int_eq(got, cpu);
                ck_assert(refused);
                snprintf(want, sizeof want, "SG_ISA=%s: this CPU supports at most %s", sg_isa_name((sg_isa)w),
                         sg_isa_name((sg_isa)cpu));
            }
            ck_assert_str_eq(note, want);
        }
        ck_assert_int_eq(sg_isa_choose("avx1024", (sg_isa)cpu, &refused, note, sizeof note), cpu);
        ck_assert(refused);
        ck_assert_str_eq(note, "SG_ISA=avx1024 is not one of generic, avx2, avx512");
    }
}
END_TEST

/* SG_ISA in the environment, read when the library loads: this program
 * run again with it set (main's --print-isa) prints the level it got and
 * what went to stderr. Under an emulator that cannot start a program of
 * this architecture from the shell (qemu-user without binfmt_misc, in
 * tests/cross-aarch64.sh) the re-run cannot happen: SG_TEST_NO_REEXEC=1 says
 * so, and test_isa_choose still covers the choice. */
static char self_exe[4096];

static void run_with_isa(const char *value, char *out, size_t len, char *err, size_t elen)
{
    char cmd[8192], errfile[64];
    snprintf(errfile, sizeof errfile, "/tmp/sg-isa-err.%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "SG_ISA='%s' '%s' --print-isa 2>%s", value, self_exe, errfile);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, len - 1, p);
    out[n] = 0;
    ck_assert_int_eq(pclose(p), 0);
    FILE *e = fopen(errfile, "r");
    ck_assert_ptr_nonnull(e);
    n = fread(err, 1, elen - 1, e);
    err[n] = 0;
    fclose(e);
    remove(errfile);
}

START_TEST(test_isa_environment)
{
    if (getenv("SG_TEST_NO_REEXEC")) {
        fprintf(stderr, "test_isa_environment: not run (SG_TEST_NO_REEXEC: this program cannot be re-run)\n");
        return;
    }
    char out[256], err[256], want[128], cpu[32];
    /* the re-run's own best (under valgrind this process sees no AVX-512,
     * the re-run does) */
    run_with_isa("", out, sizeof out, err, sizeof err);
    ck_assert_str_eq(err, "");
    snprintf(cpu, sizeof cpu, "%.*s", (int)strcspn(out, "\n"), out);
    for (int i = 0; i <= (int)sg_isa_cpu(); i++) { /* every level the CPU has: taken */
        run_with_isa(sg_isa_name((sg_isa)i), out, sizeof out, err, sizeof err);
        snprintf(want, sizeof want, "%s\n", sg_isa_name((sg_isa)i));
        ck_assert_str_eq(out, want);
        ck_assert_str_eq(err, "");
    }
    snprintf(want, sizeof want, "%s\n", cpu);
    run_with_isa("avx1024", out, sizeof out, err, sizeof err); /* unknown: the CPU's best, said once */
    ck_assert_str_eq(out, want);
    snprintf(want, sizeof want, "scratchgrad: SG_ISA=avx1024 is not one of generic, avx2, avx512; using %s\n", cpu);
    ck_assert_str_eq(err, want);
}
END_TEST

/* ------------------------------------------------------------------------- */

static Suite *kernels_suite(void)
{
    Suite *s = suite_create("kernels");
    struct {
        const char *name;
        const TTest *tests[8];
    } cases[] = {
        {"unfold_fold", {test_unfold_fold_windows, test_unfold_fold_many_channels, test_unfold_fold_threads}},
        {"reductions", {test_reduce_paths, test_reduce_random_shapes, test_sum_to}},
        {"permute", {test_permute_tiles, test_permute_general}},
        {"broadcast", {test_binary_paths, test_binary_random_shapes, test_binary_backward}},
        {"matmul",
         {test_matmul_paths, test_matmul_conv_shapes, test_matmul_batched, test_matmul_outside_scope}},
        {"fused_backward", {test_relu_backward, test_max_backward}},
        {"pool", {test_concurrent_callers, test_thread_count_changes}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        TCase *tc = tcase_create(cases[c].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_unchecked_fixture(tc, NULL, release);
        tcase_set_timeout(tc, 120);
        for (int t = 0; t < 8 && cases[c].tests[t]; t++) /* use_threads: levels x 1, 2 threads */
            tcase_add_loop_test(tc, cases[c].tests[t], 0, 2 * ((int)sg_isa_cpu() + 1));
        suite_add_tcase(s, tc);
    }
    TCase *thin = tcase_create("thin_kernels"); /* _i = level */
    tcase_set_timeout(thin, 120);
    tcase_add_loop_test(thin, test_thin_kernels, 0, (int)sg_isa_cpu() + 1);
    suite_add_tcase(s, thin);
    TCase *tc = tcase_create("isa");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_isa_names);
    tcase_add_test(tc, test_set_isa);
    tcase_add_test(tc, test_isa_choose);
    tcase_add_test(tc, test_isa_environment);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--print-isa") == 0) { /* test_isa_environment */
        printf("%s\n", sg_isa_name(sg_isa_active()));
        return 0;
    }
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n > 0)
        self_exe[n] = 0;
    else
        snprintf(self_exe, sizeof self_exe, "%s", argv[0]);
    SRunner *sr = srunner_create(kernels_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    sg_release_memory();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
