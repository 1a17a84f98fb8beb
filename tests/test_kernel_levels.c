/*
 * test_kernel_levels.c — Check suite "kernel_levels": every instruction-set
 * level's kernels (autograd/kernels/) against the generic ones, which are
 * the reference.
 *
 * Two views:
 *   direct   each kernel of struct sg_kernels, called through the tables
 *            sg_kernels_generic / _avx2 / _avx512 (those the CPU runs), on
 *            ragged sizes (1, 7, 15, 16, 17, 31, 33, 1000, 16385 elements,
 *            odd row lengths) around the vector widths (4, 8, 16 floats)
 *            and the unrolled partial sums, and on part ranges [lo, hi).
 *   ops      each op through the public API, once per level (sg_set_isa),
 *            its result and gradients compared with the generic level's.
 *
 * Tolerance: none; results are compared with memcmp. The kernels are the
 * same C compiled with different -m flags; the project compiles with
 * -ffp-contract=off (no a * b + c fused into one rounding) and without
 * -ffast-math (no reassociation, no vector maths library), and every
 * kernel fixes its summation order in the source (reduce.c's four partial
 * sums, added in one order). So vectorised code must round exactly as the
 * scalar code does, and any difference is a bug. The inputs are random
 * floats of mixed magnitude (not exact in any sum), so a changed order of
 * additions would show. Output buffers carry a guard after their end: a
 * kernel that writes past its range fails too.
 *
 * Matrix products are not covered here (test_kernels.c): their own kernels
 * use fused multiply-adds and differ in rounding by design.
 */
#include "sg_autograd.h"
#include "sg_kernels.h"
#include "sg_optim.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* Levels, buffers, data */

static const sg_kernels *level_table(int isa)
{
#ifdef SG_KERNELS_X86
    if (isa == SG_ISA_AVX2)
        return &sg_kernels_avx2;
    if (isa == SG_ISA_AVX512)
        return &sg_kernels_avx512;
#endif
    return isa == SG_ISA_GENERIC ? &sg_kernels_generic : NULL;
}

/* levels above generic that this CPU runs */
#define FOR_EACH_LEVEL(k)                                                                          \
    for (int isa_ = SG_ISA_GENERIC + 1; isa_ <= (int)sg_isa_cpu(); isa_++)                         \
        for (const sg_kernels *k = level_table(isa_); k; k = NULL)

static const size_t sizes[] = {1, 7, 15, 16, 17, 31, 33, 1000, 16385};
#define N_SIZES (sizeof sizes / sizeof sizes[0])

enum { GUARD = 16 };
static const float guard_value = 12345.678f;

/* n floats plus a guard (owned by the caller) */
static float *buf(size_t n)
{
    float *p = malloc((n + GUARD) * sizeof(float));
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < n + GUARD; i++)
        p[i] = guard_value;
    return p;
}

static float *copy_buf(const float *src, size_t n)
{
    float *p = buf(n);
    memcpy(p, src, n * sizeof(float));
    return p;
}

static sg_rng rng;

/* Random floats of mixed sign and magnitude: sums of them round. */
static float *random_buf(size_t n, float lo, float hi)
{
    float *p = buf(n);
    for (size_t i = 0; i < n; i++)
        p[i] = lo + (hi - lo) * (float)sg_rng_uniform(&rng);
    return p;
}

/* Values from a small set (many ties: max's gradient shares among them). */
static float *tied_buf(size_t n)
{
    float *p = buf(n);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)((int)sg_rng_below(&rng, 5) - 2) * 0.75f;
    return p;
}

/* got and want agree bit for bit over n floats and the guard */
static void same_bits(const char *what, int isa, const float *got, const float *want, size_t n)
{
    if (memcmp(got, want, n * sizeof(float)) != 0) {
        size_t i = 0;
        while (memcmp(got + i, want + i, sizeof(float)) == 0)
            i++;
        ck_abort_msg("%s: %s differs from generic at element %zu of %zu: %.9g vs %.9g", what,
                     sg_isa_name((sg_isa)isa), i, n, (double)got[i], (double)want[i]);
    }
    for (size_t i = n; i < n + GUARD; i++)
        ck_assert_msg(memcmp(&got[i], &guard_value, sizeof(float)) == 0,
                      "%s: %s wrote past the end (element %zu of %zu)", what, sg_isa_name((sg_isa)isa),
                      i, n);
}

static void setup(void)
{
    sg_rng_seed(&rng, 20240601);
    sg_clear_error();
    sg_set_grad_enabled(true);
    sg_scope_begin();
}

/* Unchecked teardown: without fork (valgrind) it runs in the test process. */
static void release(void) { sg_release_memory(); }

static void teardown(void)
{
    while (sg_scope_depth() > 0)
        sg_scope_end();
    sg_set_isa(sg_isa_cpu());
}

/* ------------------------------------------------------------------------- */
/* Direct: elementwise */

START_TEST(test_binary)
{
    const sg_kernels *g = &sg_kernels_generic;
    for (size_t si = 0; si < N_SIZES; si++) {
        const size_t n = sizes[si];
        float *a = random_buf(n, -3.f, 3.f), *b = random_buf(n, 0.25f, 4.f);
        for (size_t i = 0; i < n; i += 5)
            b[i] = a[i]; /* some equal pairs for EQ */
        for (int k = SG_KBIN_ADD; k <= SG_KBIN_EQ; k++)
            for (int s = 0; s < 4; s++) {
                const size_t sa = s & 1 ? 0 : 1, sb = s & 2 ? 0 : 1;
                float *want = buf(n);
                g->binary((sg_kbin)k, want, a, sa, b, sb, n);
                FOR_EACH_LEVEL(kern) {
                    float *got = buf(n);
                    kern->binary((sg_kbin)k, got, a, sa, b, sb, n);
                    char what[64];
                    snprintf(what, sizeof what, "binary %d (sa %zu, sb %zu) n %zu", k, sa, sb, n);
                    same_bits(what, isa_, got, want, n);
                    free(got);
                }
                free(want);
            }
        free(a);
        free(b);
    }
}
END_TEST

/* (rows, C) + (C) and (N, C, S) * (1, C, 1), whole and from a row mid-way */
START_TEST(test_binary_rows)
{
    const sg_kernels *g = &sg_kernels_generic;
    const size_t shapes[][3] = {{1, 1, 1}, {7, 3, 1}, {33, 17, 1}, {5, 15, 16}, {2, 3, 1000}, {3, 31, 33}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        const size_t N = shapes[si][0], C = shapes[si][1], S = shapes[si][2], n = N * C * S;
        float *a = random_buf(n, -3.f, 3.f), *b = random_buf(C, 0.5f, 2.f);
        /* rows of (N*C, S) with b[c] along S broadcast: dims innermost first */
        sg_kbcast bc = {.m = 3, .dim = {S, C, N}, .ca = {1, S, C * S}, .cb = {0, 1, 0}};
        if (S == 1) /* (N, C) + (C): rows of C */
            bc = (sg_kbcast){.m = 2, .dim = {C, N}, .ca = {1, C}, .cb = {1, 0}};
        const size_t rows = n / bc.dim[0];
        for (int k = SG_KBIN_ADD; k <= SG_KBIN_EQ; k++) {
            float *want = buf(n);
            g->binary_rows((sg_kbin)k, want, a, b, &bc, 0, rows);
            FOR_EACH_LEVEL(kern) {
                float *got = buf(n);
                const size_t mid = rows / 3;
                kern->binary_rows((sg_kbin)k, got, a, b, &bc, 0, mid);
                kern->binary_rows((sg_kbin)k, got, a, b, &bc, mid, rows);
                char what[64];
                snprintf(what, sizeof what, "binary_rows %d (%zu,%zu,%zu)", k, N, C, S);
                same_bits(what, isa_, got, want, n);
                free(got);
            }
            free(want);
        }
        free(a);
        free(b);
    }
}
END_TEST

START_TEST(test_unary)
{
    const sg_kernels *g = &sg_kernels_generic;
    const struct {
        sg_kun k;
        float p;
        bool positive; /* log and non-integer powers need x > 0 */
    } cases[] = {
        {SG_KUN_NEG, 0.f, false},  {SG_KUN_EXP, 0.f, false},   {SG_KUN_LOG, 0.f, true},
        {SG_KUN_RELU, 0.f, false}, {SG_KUN_ADDS, 0.3f, false}, {SG_KUN_MULS, -1.7f, false},
        {SG_KUN_POW, 2.f, false},  {SG_KUN_POW, 1.f, false},   {SG_KUN_POW, -1.f, false},
        {SG_KUN_POW, 0.5f, true},  {SG_KUN_POW, 3.f, false},   {SG_KUN_POW, 1.37f, true},
    };
    for (size_t si = 0; si < N_SIZES; si++) {
        const size_t n = sizes[si];
        float *xs = random_buf(n, -5.f, 5.f), *xp = random_buf(n, 0.01f, 9.f);
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            const float *x = cases[c].positive ? xp : xs;
            float *want = buf(n);
            g->unary(cases[c].k, want, x, cases[c].p, n);
            FOR_EACH_LEVEL(kern) {
                float *got = buf(n);
                kern->unary(cases[c].k, got, x, cases[c].p, n);
                char what[64];
                snprintf(what, sizeof what, "unary %d (p %g) n %zu", (int)cases[c].k, (double)cases[c].p, n);
                same_bits(what, isa_, got, want, n);
                free(got);
            }
            free(want);
        }
        float *dy = random_buf(n, -2.f, 2.f), *want = buf(n);
        for (size_t i = 0; i < n; i += 7)
            xs[i] = 0.f; /* the boundary of the step */
        g->relu_grad(want, xs, dy, n);
        FOR_EACH_LEVEL(kern) {
            float *got = buf(n);
            kern->relu_grad(got, xs, dy, n);
            same_bits("relu_grad", isa_, got, want, n);
            free(got);
        }
        free(want);
        free(dy);
        free(xs);
        free(xp);
    }
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Direct: reductions */

/* Every byte value, as pixels to floats: each level bit for bit as generic,
 * and the values themselves (x / 255 rounded once, x itself for 1). */
START_TEST(test_bytes_to_float)
{
    const sg_kernels *g = level_table(SG_ISA_GENERIC);
    for (size_t si = 0; si < N_SIZES; si++) {
        const size_t n = sizes[si] + 256;
        uint8_t *x = malloc(n);
        ck_assert_ptr_nonnull(x);
        for (size_t i = 0; i < n; i++)
            x[i] = (uint8_t)(i * 37 + si);
        static const float divs[] = {255.f, 1.f};
        for (int d = 0; d < 2; d++) {
            float *want = buf(n);
            g->bytes_to_float(want, x, divs[d], n);
            for (size_t i = 0; i < n; i++)
                ck_assert_msg(want[i] == (float)x[i] / divs[d], "generic bytes_to_float(%u) / %g = %.9g",
                              (unsigned)x[i], (double)divs[d], (double)want[i]);
            FOR_EACH_LEVEL(kern) {
                float *got = buf(n);
                kern->bytes_to_float(got, x, divs[d], n);
                char what[64];
                snprintf(what, sizeof what, "bytes_to_float / %g n %zu", (double)divs[d], n);
                same_bits(what, isa_, got, want, n);
                free(got);
            }
            free(want);
        }
        free(x);
    }
}
END_TEST

START_TEST(test_reduce_all_rows_cols)
{
    const sg_kernels *g = &sg_kernels_generic;
    for (int kind = 0; kind < 2; kind++) {
        for (size_t si = 0; si < N_SIZES; si++) {
            const size_t n = sizes[si];
            float *x = random_buf(n, -10.f, 10.f), *want = buf(1);
            g->reduce_all(kind, want, x, n);
            FOR_EACH_LEVEL(kern) {
                float *got = buf(1);
                kern->reduce_all(kind, got, x, n);
                same_bits(kind ? "reduce_all max" : "reduce_all sum", isa_, got, want, 1);
                free(got);
            }
            free(want);
            free(x);
        }
        const size_t inners[] = {1, 3, 4, 7, 15, 16, 17, 33, 1000};
        const size_t outers[] = {1, 5, 31, 64};
        for (size_t ii = 0; ii < sizeof inners / sizeof inners[0]; ii++)
            for (size_t oi = 0; oi < sizeof outers / sizeof outers[0]; oi++) {
                const size_t inner = inners[ii], outer = outers[oi], n = inner * outer;
                float *x = random_buf(n, -10.f, 10.f);
                char what[80];
                /* rows: (outer, inner) -> (outer), in two ranges */
                float *want = buf(outer);
                g->reduce_rows(kind, want, x, inner, 0, outer);
                FOR_EACH_LEVEL(kern) {
                    float *got = buf(outer);
                    kern->reduce_rows(kind, got, x, inner, 0, outer / 2);
                    kern->reduce_rows(kind, got, x, inner, outer / 2, outer);
                    snprintf(what, sizeof what, "reduce_rows kind %d (%zu,%zu)", kind, outer, inner);
                    same_bits(what, isa_, got, want, outer);
                    free(got);
                }
                free(want);
                /* cols: (outer, inner) -> (inner), added to starting values */
                float *start = random_buf(inner, -1.f, 1.f);
                want = copy_buf(start, inner);
                g->reduce_cols(kind, want, x, outer, inner);
                FOR_EACH_LEVEL(kern) {
                    float *got = copy_buf(start, inner);
                    kern->reduce_cols(kind, got, x, outer, inner);
                    snprintf(what, sizeof what, "reduce_cols kind %d (%zu,%zu)", kind, outer, inner);
                    same_bits(what, isa_, got, want, inner);
                    free(got);
                }
                free(want);
                free(start);
                free(x);
            }
    }
}
END_TEST

START_TEST(test_reduce_channels_windows)
{
    const sg_kernels *g = &sg_kernels_generic;
    char what[96];
    for (int kind = 0; kind < 2; kind++) {
        /* (R, K, S) -> (K): R around the 8 runs summed at once */
        const size_t rks[][3] = {{1, 1, 1},   {7, 3, 7},  {8, 2, 16}, {9, 5, 17},
                                 {17, 3, 33}, {33, 4, 1}, {16, 6, 31}};
        for (size_t c = 0; c < sizeof rks / sizeof rks[0]; c++) {
            const size_t R = rks[c][0], K = rks[c][1], S = rks[c][2];
            float *x = random_buf(R * K * S, -10.f, 10.f), *start = random_buf(K, -1.f, 1.f);
            float *want = copy_buf(start, K);
            g->reduce_channels(kind, want, x, R, K, S, 0, K);
            FOR_EACH_LEVEL(kern) {
                float *got = copy_buf(start, K);
                kern->reduce_channels(kind, got, x, R, K, S, 0, K / 2);
                kern->reduce_channels(kind, got, x, R, K, S, K / 2, K);
                snprintf(what, sizeof what, "reduce_channels kind %d (%zu,%zu,%zu)", kind, R, K, S);
                same_bits(what, isa_, got, want, K);
                free(got);
            }
            free(want);
            free(start);
            free(x);
        }
        /* (A, R, B, S) -> (A, B): 2x2 pooling and others */
        const size_t arbs[][4] = {{1, 2, 1, 2}, {5, 2, 7, 2},  {3, 2, 17, 2},
                                  {4, 3, 5, 3}, {2, 1, 33, 7}, {3, 5, 16, 1}};
        for (size_t c = 0; c < sizeof arbs / sizeof arbs[0]; c++) {
            const size_t A = arbs[c][0], R = arbs[c][1], B = arbs[c][2], S = arbs[c][3], n = A * R * B * S;
            float *x = random_buf(n, -10.f, 10.f), *want = buf(A * B);
            g->reduce_windows(kind, want, x, R, B, S, 0, A);
            FOR_EACH_LEVEL(kern) {
                float *got = buf(A * B);
                kern->reduce_windows(kind, got, x, R, B, S, 0, A / 2);
                kern->reduce_windows(kind, got, x, R, B, S, A / 2, A);
                snprintf(what, sizeof what, "reduce_windows kind %d (%zu,%zu,%zu,%zu)", kind, A, R, B, S);
                same_bits(what, isa_, got, want, A * B);
                free(got);
            }
            free(want);
            free(x);
        }
        /* the general walk: (3, 5, 7, 9) over every mask */
        const int shape[4] = {3, 5, 7, 9};
        float *x = random_buf(3 * 5 * 7 * 9, -10.f, 10.f);
        for (uint32_t mask = 1; mask < 16; mask++) {
            size_t ny = 1;
            for (int d = 0; d < 4; d++)
                if (!(mask & (1u << d)))
                    ny *= (size_t)shape[d];
            float *start = random_buf(ny, -1.f, 1.f), *want = copy_buf(start, ny);
            g->reduce_general(kind, want, x, 4, shape, mask);
            FOR_EACH_LEVEL(kern) {
                float *got = copy_buf(start, ny);
                kern->reduce_general(kind, got, x, 4, shape, mask);
                snprintf(what, sizeof what, "reduce_general kind %d mask %u", kind, mask);
                same_bits(what, isa_, got, want, ny);
                free(got);
            }
            free(want);
            free(start);
        }
        free(x);
    }
}
END_TEST

START_TEST(test_max_grad)
{
    const sg_kernels *g = &sg_kernels_generic;
    char what[96];
    const size_t inners[] = {1, 4, 7, 16, 17, 33};
    for (size_t ii = 0; ii < sizeof inners / sizeof inners[0]; ii++) {
        const size_t inner = inners[ii], outer = 37, n = inner * outer;
        float *x = tied_buf(n), *y = buf(outer), *dy = random_buf(outer, -2.f, 2.f), *want = buf(n);
        g->reduce_rows(1, y, x, inner, 0, outer);
        g->max_grad_rows(want, x, y, dy, inner, 0, outer);
        FOR_EACH_LEVEL(kern) {
            float *got = buf(n);
            kern->max_grad_rows(got, x, y, dy, inner, 0, outer / 3);
            kern->max_grad_rows(got, x, y, dy, inner, outer / 3, outer);
            snprintf(what, sizeof what, "max_grad_rows inner %zu", inner);
            same_bits(what, isa_, got, want, n);
            free(got);
        }
        free(want);
        free(dy);
        free(y);
        free(x);
    }
    const size_t arbs[][4] = {{5, 2, 7, 2}, {3, 2, 17, 2}, {4, 3, 5, 3}, {2, 1, 33, 7}};
    for (size_t c = 0; c < sizeof arbs / sizeof arbs[0]; c++) {
        const size_t A = arbs[c][0], R = arbs[c][1], B = arbs[c][2], S = arbs[c][3], n = A * R * B * S;
        float *x = tied_buf(n), *y = buf(A * B), *dy = random_buf(A * B, -2.f, 2.f), *want = buf(n);
        g->reduce_windows(1, y, x, R, B, S, 0, A);
        g->max_grad_windows(want, x, y, dy, R, B, S, 0, A);
        FOR_EACH_LEVEL(kern) {
            float *got = buf(n);
            kern->max_grad_windows(got, x, y, dy, R, B, S, 0, A / 2);
            kern->max_grad_windows(got, x, y, dy, R, B, S, A / 2, A);
            snprintf(what, sizeof what, "max_grad_windows (%zu,%zu,%zu,%zu)", A, R, B, S);
            same_bits(what, isa_, got, want, n);
            free(got);
        }
        free(want);
        free(dy);
        free(y);
        free(x);
    }
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Direct: unfold, fold, transposes, broadcast */

START_TEST(test_unfold_fold)
{
    const sg_kernels *g = &sg_kernels_generic;
    /* C, H, W, kh, kw, sh, sw, ph, pw: the specialised (KW, SW) pairs, a
     * generic one, padding, and bands of many channels (OW*C*KH*KW > 1024) */
    const int geo[][9] = {
        {1, 8, 8, 2, 2, 2, 2, 0, 0},  {3, 9, 11, 3, 3, 1, 1, 1, 1}, {2, 13, 7, 5, 5, 1, 1, 2, 2},
        {3, 10, 9, 3, 3, 2, 2, 1, 1}, {2, 9, 9, 3, 3, 3, 3, 0, 0},  {2, 7, 13, 4, 4, 1, 1, 1, 2},
        {16, 12, 12, 3, 3, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 1, 1, 0, 0}, {5, 6, 17, 2, 3, 1, 2, 1, 0},
    };
    const int N = 3;
    for (size_t c = 0; c < sizeof geo / sizeof geo[0]; c++) {
        sg_kwindow w = {.C = geo[c][0], .H = geo[c][1], .W = geo[c][2],
                        .w = {.kh = geo[c][3], .kw = geo[c][4], .sh = geo[c][5], .sw = geo[c][6],
                              .ph = geo[c][7], .pw = geo[c][8], .pad_value = c % 2 ? -INFINITY : 0.f}};
        w.OH = sg_window_out(w.H, w.w.kh, w.w.sh, w.w.ph);
        w.OW = sg_window_out(w.W, w.w.kw, w.w.sw, w.w.pw);
        const size_t nx = (size_t)N * w.C * w.H * w.W;
        const size_t ncols = (size_t)N * w.OH * w.OW * w.C * w.w.kh * w.w.kw;
        const size_t bands = (size_t)N * w.OH;
        float *x = random_buf(nx, -3.f, 3.f), *cols = random_buf(ncols, -3.f, 3.f);
        float *want_u = buf(ncols), *want_f = buf(nx);
        g->unfold(want_u, x, &w, 0, bands);
        g->fold(want_f, cols, &w, 0, (size_t)N);
        FOR_EACH_LEVEL(kern) {
            float *got_u = buf(ncols), *got_f = buf(nx);
            kern->unfold(got_u, x, &w, 0, bands / 2);
            kern->unfold(got_u, x, &w, bands / 2, bands);
            kern->fold(got_f, cols, &w, 0, 1);
            kern->fold(got_f, cols, &w, 1, (size_t)N);
            char what[96];
            snprintf(what, sizeof what, "unfold geometry %zu", c);
            same_bits(what, isa_, got_u, want_u, ncols);
            snprintf(what, sizeof what, "fold geometry %zu", c);
            same_bits(what, isa_, got_f, want_f, nx);
            free(got_u);
            free(got_f);
        }
        free(want_u);
        free(want_f);
        free(x);
        free(cols);
    }
}
END_TEST

START_TEST(test_transpose_permute_broadcast)
{
    const sg_kernels *g = &sg_kernels_generic;
    char what[96];
    const size_t dims[] = {1, 7, 8, 9, 15, 16, 17, 33};
    const size_t nd = sizeof dims / sizeof dims[0];
    for (size_t i = 0; i < nd; i++)
        for (size_t j = 0; j < nd; j++) {
            const size_t R = dims[i], C = dims[j], B = 3, n = B * R * C;
            float *x = random_buf(n, -3.f, 3.f), *want = buf(n);
            g->transpose(want, x, R, C, 0, B);
            FOR_EACH_LEVEL(kern) {
                float *got = buf(n);
                kern->transpose(got, x, R, C, 0, 1);
                kern->transpose(got, x, R, C, 1, B);
                snprintf(what, sizeof what, "transpose (%zu,%zu,%zu)", B, R, C);
                same_bits(what, isa_, got, want, n);
                free(got);
            }
            free(want);
            free(x);
        }
    /* x (A, B, C) -> y (C, A, B): output groups (C, A, B), x strides (1, B*C, C) */
    {
        const size_t A = 5, B = 7, C = 9, n = A * B * C;
        const size_t gsize[3] = {C, A, B}, st[3] = {1, B * C, C};
        float *x = random_buf(n, -3.f, 3.f), *want = buf(n);
        g->permute_walk(want, x, 3, gsize, st);
        FOR_EACH_LEVEL(kern) {
            float *got = buf(n);
            kern->permute_walk(got, x, 3, gsize, st);
            same_bits("permute_walk", isa_, got, want, n);
            free(got);
        }
        free(want);
        free(x);
    }
    /* broadcast: a scalar, rows, columns, a middle dim */
    const struct {
        int ndim, shape[4], xndim, xshape[4];
    } bc[] = {
        {2, {33, 17}, 0, {0}}, {2, {33, 17}, 1, {17}}, {2, {31, 16}, 2, {31, 1}},
        {4, {3, 5, 7, 9}, 4, {1, 5, 1, 1}}, {3, {2, 1000, 3}, 3, {2, 1, 3}}, {1, {16385}, 1, {1}},
    };
    for (size_t c = 0; c < sizeof bc / sizeof bc[0]; c++) {
        size_t n = 1, nx = 1;
        for (int d = 0; d < bc[c].ndim; d++)
            n *= (size_t)bc[c].shape[d];
        for (int d = 0; d < bc[c].xndim; d++)
            nx *= (size_t)bc[c].xshape[d];
        float *x = random_buf(nx, -3.f, 3.f), *want = buf(n);
        g->broadcast(want, x, bc[c].ndim, bc[c].shape, bc[c].xndim, bc[c].xshape);
        FOR_EACH_LEVEL(kern) {
            float *got = buf(n);
            kern->broadcast(got, x, bc[c].ndim, bc[c].shape, bc[c].xndim, bc[c].xshape);
            snprintf(what, sizeof what, "broadcast case %zu", c);
            same_bits(what, isa_, got, want, n);
            free(got);
        }
        free(want);
        free(x);
    }
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Direct: optimizer updates */

typedef void (*update_fn)(const sg_kupdate *a, size_t lo, size_t hi);

static update_fn update_of(const sg_kernels *k, int which)
{
    update_fn f[] = {k->update_sgd, k->update_momentum, k->update_momentum, k->update_adagrad,
                     k->update_rmsprop, k->update_adam};
    return f[which];
}

START_TEST(test_updates)
{
    static const char *const names[] = {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"};
    for (int which = 0; which < 6; which++)
        for (size_t si = 0; si < N_SIZES; si++)
            for (int variant = 0; variant < 3; variant++) { /* t = 1, later t with L2, decoupled decay */
                const size_t n = sizes[si];
                sg_kupdate a = {.lr = 0.01f, .l2 = variant == 1 ? 0.003f : 0.f,
                                .shrink = variant == 2 ? 1.f - 0.01f * 0.05f : 1.f, .t = variant ? 7 : 1,
                                .momentum = 0.9f, .dampening = which == 2 ? 0.f : 0.1f,
                                .nesterov = which == 2,
                                .alpha = 0.99f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                                .lr_decay = 0.01f, .n = n};
                float *w0 = random_buf(n, -1.f, 1.f), *g = random_buf(n, -0.5f, 0.5f);
                float *s00 = random_buf(n, 0.f, 0.2f), *s10 = random_buf(n, 0.f, 0.01f);
                for (size_t i = 0; i < n; i += 9)
                    s10[i] = 1e-39f; /* subnormal state: flushed to 0 */
                float *w = copy_buf(w0, n), *s0 = copy_buf(s00, n), *s1 = copy_buf(s10, n);
                a.w = w, a.g = g, a.s0 = s0, a.s1 = s1;
                update_of(&sg_kernels_generic, which)(&a, 0, n);
                FOR_EACH_LEVEL(kern) {
                    float *lw = copy_buf(w0, n), *ls0 = copy_buf(s00, n), *ls1 = copy_buf(s10, n);
                    sg_kupdate b = a;
                    b.w = lw, b.s0 = ls0, b.s1 = ls1;
                    update_of(kern, which)(&b, 0, n / 2);
                    update_of(kern, which)(&b, n / 2, n);
                    char what[96];
                    snprintf(what, sizeof what, "update %s variant %d n %zu: w", names[which], variant, n);
                    same_bits(what, isa_, lw, w, n);
                    snprintf(what, sizeof what, "update %s variant %d n %zu: state", names[which], variant,
                             n);
                    same_bits(what, isa_, ls0, s0, n);
                    same_bits(what, isa_, ls1, s1, n);
                    free(lw);
                    free(ls0);
                    free(ls1);
                }
                free(w0), free(g), free(s00), free(s10), free(w), free(s0), free(s1);
            }
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Through the public API: each op once per level */

/* An op's forward result and, where it has one, the gradient of
 * sum(result * weights) with respect to its inputs, concatenated. */
typedef struct op_case {
    const char *name;
    sg_tensor *(*run)(sg_tensor *a, sg_tensor *b);
    int an, ashape[4]; /* first input */
    int bn, bshape[4]; /* second input (bn < 0: none) */
    bool positive;     /* inputs > 0 (log, sqrt, pow) */
    bool no_grad;      /* a mask: nothing to differentiate */
} op_case;

static sg_tensor *op_add(sg_tensor *a, sg_tensor *b) { return sg_add(a, b); }
static sg_tensor *op_sub(sg_tensor *a, sg_tensor *b) { return sg_sub(a, b); }
static sg_tensor *op_mul(sg_tensor *a, sg_tensor *b) { return sg_mul(a, b); }
static sg_tensor *op_div(sg_tensor *a, sg_tensor *b) { return sg_div(a, b); }
static sg_tensor *op_gt(sg_tensor *a, sg_tensor *b) { return sg_gt(a, b); }
static sg_tensor *op_eq(sg_tensor *a, sg_tensor *b) { return sg_eq(a, b); }
static sg_tensor *op_neg(sg_tensor *a, sg_tensor *b) { (void)b; return sg_neg(a); }
static sg_tensor *op_exp(sg_tensor *a, sg_tensor *b) { (void)b; return sg_exp(a); }
static sg_tensor *op_log(sg_tensor *a, sg_tensor *b) { (void)b; return sg_log(a); }
static sg_tensor *op_relu(sg_tensor *a, sg_tensor *b) { (void)b; return sg_relu(a); }
static sg_tensor *op_pow(sg_tensor *a, sg_tensor *b) { (void)b; return sg_pow(a, 1.5f); }
static sg_tensor *op_sqrt(sg_tensor *a, sg_tensor *b) { (void)b; return sg_sqrt(a); }
static sg_tensor *op_square(sg_tensor *a, sg_tensor *b) { (void)b; return sg_square(a); }
static sg_tensor *op_recip(sg_tensor *a, sg_tensor *b) { (void)b; return sg_rdiv_scalar(1.f, a); }
static sg_tensor *op_adds(sg_tensor *a, sg_tensor *b) { (void)b; return sg_add_scalar(a, 0.7f); }
static sg_tensor *op_muls(sg_tensor *a, sg_tensor *b) { (void)b; return sg_mul_scalar(a, -1.3f); }
static sg_tensor *op_sum_all(sg_tensor *a, sg_tensor *b) { (void)b; return sg_sum_all(a); }
static sg_tensor *op_sum_last(sg_tensor *a, sg_tensor *b)
{
    (void)b;
    int ax = sg_ndim(a) - 1;
    return sg_sum(a, &ax, 1, false);
}
static sg_tensor *op_sum_first(sg_tensor *a, sg_tensor *b)
{
    (void)b;
    int ax = 0;
    return sg_sum(a, &ax, 1, true);
}
static sg_tensor *op_sum_middle(sg_tensor *a, sg_tensor *b)
{
    (void)b;
    int ax = 1;
    return sg_sum(a, &ax, 1, false);
}
static sg_tensor *op_sum_channels(sg_tensor *a, sg_tensor *b) /* (N,C,H,W) -> (C): a bias gradient */
{
    (void)b;
    int ax[3] = {0, 2, 3};
    return sg_sum(a, ax, 3, false);
}
static sg_tensor *op_sum_general(sg_tensor *a, sg_tensor *b)
{
    (void)b;
    int ax[2] = {0, 2};
    return sg_sum(a, ax, 2, false);
}
static sg_tensor *op_max_last(sg_tensor *a, sg_tensor *b)
{
    (void)b;
    int ax = sg_ndim(a) - 1;
    return sg_max(a, &ax, 1, true);
}
static sg_tensor *op_max_windows(sg_tensor *a, sg_tensor *b) /* 2x2 pooling as (A, 2, B, 2) */
{
    (void)b;
    int ax[2] = {1, 3};
    return sg_max(a, ax, 2, false);
}
static sg_tensor *op_sum_to(sg_tensor *a, sg_tensor *b) { return sg_sum_to(a, sg_ndim(b), sg_shape(b)); }
static sg_tensor *op_broadcast_to(sg_tensor *a, sg_tensor *b)
{
    return sg_broadcast_to(a, sg_ndim(b), sg_shape(b));
}
static sg_tensor *op_transpose(sg_tensor *a, sg_tensor *b) { (void)b; return sg_transpose(a); }
static sg_tensor *op_permute(sg_tensor *a, sg_tensor *b)
{
    (void)b;
    int perm[4] = {3, 1, 0, 2};
    return sg_permute(a, perm, 4);
}
static sg_tensor *op_unfold(sg_tensor *a, sg_tensor *b)
{
    (void)b;
    return sg_unfold(a, (sg_window){.kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1});
}
static sg_tensor *op_unfold_odd(sg_tensor *a, sg_tensor *b)
{
    (void)b;
    return sg_unfold(a, (sg_window){.kh = 2, .kw = 4, .sh = 1, .sw = 3, .ph = 1, .pw = 2});
}
static sg_tensor *op_fold(sg_tensor *a, sg_tensor *b)
{
    (void)b; /* a: (2*7*9, 3*3*3) columns of a (2, 3, 7, 9) image */
    return sg_fold(a, 2, 3, 7, 9, (sg_window){.kh = 3, .kw = 3, .sh = 1, .sw = 1, .ph = 1, .pw = 1});
}

static const op_case op_cases[] = {
    {"add", op_add, 2, {33, 517}, 2, {33, 517}, false, false},
    {"add rows", op_add, 2, {129, 17}, 1, {17}, false, false},
    {"sub channels", op_sub, 4, {2, 5, 7, 9}, 4, {1, 5, 1, 1}, false, false},
    {"mul scalar operand", op_mul, 2, {31, 33}, 0, {0}, false, false},
    {"div", op_div, 2, {7, 2341}, 2, {7, 2341}, true, false},
    {"div broadcast", op_div, 3, {3, 1, 15}, 3, {1, 17, 15}, true, false},
    {"gt", op_gt, 2, {33, 517}, 2, {33, 517}, false, true},
    {"eq", op_eq, 2, {15, 16}, 1, {16}, false, true},
    {"neg", op_neg, 1, {16385}, -1, {0}, false, false},
    {"exp", op_exp, 2, {33, 31}, -1, {0}, false, false},
    {"log", op_log, 2, {33, 31}, -1, {0}, true, false},
    {"relu", op_relu, 2, {1000, 17}, -1, {0}, false, false},
    {"pow 1.5", op_pow, 1, {1000}, -1, {0}, true, false},
    {"sqrt", op_sqrt, 1, {1031}, -1, {0}, true, false},
    {"square", op_square, 1, {1031}, -1, {0}, false, false},
    {"reciprocal", op_recip, 1, {1031}, -1, {0}, true, false},
    {"add_scalar", op_adds, 1, {17}, -1, {0}, false, false},
    {"mul_scalar", op_muls, 1, {16385}, -1, {0}, false, false},
    {"sum all", op_sum_all, 1, {16385}, -1, {0}, false, false},
    {"sum last", op_sum_last, 2, {31, 1003}, -1, {0}, false, false},
    {"sum first", op_sum_first, 2, {1003, 33}, -1, {0}, false, false},
    {"sum middle", op_sum_middle, 3, {5, 301, 17}, -1, {0}, false, false},
    {"sum channels", op_sum_channels, 4, {9, 5, 7, 11}, -1, {0}, false, false},
    {"sum general", op_sum_general, 4, {3, 5, 7, 9}, -1, {0}, false, false},
    {"max last", op_max_last, 2, {33, 4}, -1, {0}, false, false},
    {"max last long", op_max_last, 2, {17, 31}, -1, {0}, false, false},
    {"max windows", op_max_windows, 4, {6, 2, 13, 2}, -1, {0}, false, false},
    {"sum_to", op_sum_to, 3, {7, 31, 17}, 2, {1, 17}, false, false},
    {"broadcast_to", op_broadcast_to, 2, {1, 17}, 3, {7, 31, 17}, false, false},
    {"transpose", op_transpose, 3, {3, 33, 17}, -1, {0}, false, false},
    {"permute", op_permute, 4, {3, 5, 7, 9}, -1, {0}, false, false},
    {"unfold", op_unfold, 4, {2, 3, 7, 9}, -1, {0}, false, false},
    {"unfold odd", op_unfold_odd, 4, {2, 3, 8, 11}, -1, {0}, false, false},
    {"fold", op_fold, 2, {126, 27}, -1, {0}, false, false},
};

/* The scope arena hands the next run the memory of the last one, which
 * holds the generic level's results: a kernel that skipped an element
 * would go unseen. So before each run, fill the arena at run_op's depth
 * (8 MB, more than any case needs) with a value no op produces. */
static void poison_arena(void)
{
    sg_scope_begin();
    const int piece[1] = {1 << 14};
    for (int i = 0; i < 128; i++)
        ck_assert_ptr_nonnull(sg_full(-7777.f, 1, piece));
    sg_scope_end();
}

/* forward and gradients of op case c on the current level, into a malloc'd
 * buffer; *n its length */
static float *run_op(const op_case *c, uint64_t seed, size_t *n)
{
    sg_rng r;
    sg_rng_seed(&r, seed);
    sg_scope_begin();
    sg_tensor *a = sg_uniform(&r, c->positive ? 0.1f : -2.f, 2.f, c->an, c->ashape);
    sg_tensor *b = NULL;
    if (c->bn >= 0)
        b = sg_uniform(&r, c->positive ? 0.1f : -2.f, 2.f, c->bn, c->bshape);
    ck_assert_msg(a && (c->bn < 0 || b), "%s: inputs (%s)", c->name, sg_last_error());
    float *ad = sg_data(a);
    for (size_t i = 0; i < sg_size(a); i += 3) /* ties and zeros for max, relu, gt, eq */
        ad[i] = c->positive ? 1.f : 0.f;
    if (b && !c->positive)
        for (size_t i = 0; i < sg_size(b) && i < sg_size(a); i += 4)
            sg_data(b)[i] = ad[i];
    sg_param(a);
    if (b)
        sg_param(b);
    sg_tensor *y = c->run(a, b ? b : a);
    ck_assert_msg(y != NULL, "%s: %s", c->name, sg_last_error());
    size_t len = sg_size(y) + sg_size(a) + (b ? sg_size(b) : 0);
    float *out = malloc((len ? len : 1) * sizeof(float));
    ck_assert_ptr_nonnull(out);
    memcpy(out, sg_data(y), sg_size(y) * sizeof(float));
    size_t at = sg_size(y);
    memset(out + at, 0, (len - at) * sizeof(float));
    if (!c->no_grad) {
        sg_tensor *wts = sg_uniform(&r, -1.f, 1.f, sg_ndim(y), sg_shape(y));
        sg_tensor *loss = sg_sum_all(sg_mul(y, wts));
        ck_assert_msg(loss && sg_backward(loss, NULL) == 0, "%s backward: %s", c->name, sg_last_error());
        if (sg_grad_data(a))
            memcpy(out + at, sg_grad_data(a), sg_size(a) * sizeof(float));
        at += sg_size(a);
        if (b && sg_grad_data(b))
            memcpy(out + at, sg_grad_data(b), sg_size(b) * sizeof(float));
    }
    sg_scope_end(); /* frees a, b, y and the graph */
    *n = len;
    return out;
}

START_TEST(test_ops_per_level)
{
    const op_case *c = &op_cases[_i];
    for (int threads = 1; threads <= 2; threads++) {
        sg_set_threads(threads);
        ck_assert_int_eq(sg_set_isa(SG_ISA_GENERIC), 0);
        size_t n_ref;
        poison_arena();
        float *ref = run_op(c, 77 + (uint64_t)_i, &n_ref);
        for (int isa = SG_ISA_GENERIC + 1; isa <= (int)sg_isa_cpu(); isa++) {
            ck_assert_int_eq(sg_set_isa((sg_isa)isa), 0);
            size_t n;
            poison_arena();
            float *got = run_op(c, 77 + (uint64_t)_i, &n);
            ck_assert_uint_eq(n, n_ref);
            if (memcmp(got, ref, n * sizeof(float)) != 0) {
                size_t i = 0;
                while (memcmp(got + i, ref + i, sizeof(float)) == 0)
                    i++;
                ck_abort_msg("%s (%d threads): %s differs from generic at value %zu of %zu: %.9g vs %.9g",
                             c->name, threads, sg_isa_name((sg_isa)isa), i, n, (double)got[i],
                             (double)ref[i]);
            }
            free(got);
        }
        free(ref);
    }
    sg_set_threads(0);
}
END_TEST

/* each optimizer, five steps on a (97, 33) parameter, once per level */
static float *run_optim(sg_optim_kind kind, bool decay)
{
    sg_rng r;
    sg_rng_seed(&r, 5 + (uint64_t)kind);
    int shape[2] = {97, 33};
    sg_tensor *w = sg_param(sg_uniform(&r, -1.f, 1.f, 2, shape));
    sg_optim_opts o = sg_optim_defaults(kind);
    if (decay)
        o.weight_decay = 0.01f;
    sg_optim *opt = sg_optim_new(&o);
    ck_assert_msg(w && opt, "%s", sg_last_error());
    for (int step = 0; step < 5; step++) {
        sg_scope_begin();
        sg_tensor *target = sg_uniform(&r, -1.f, 1.f, 2, shape);
        sg_tensor *loss = sg_sum_all(sg_square(sg_sub(w, target)));
        ck_assert_msg(loss && sg_backward(loss, NULL) == 0, "%s", sg_last_error());
        ck_assert_int_eq(sg_optim_step(opt, &w, 1), 0);
        sg_optim_zero_grad(&w, 1);
        sg_scope_end();
    }
    float *out = malloc(sg_size(w) * sizeof(float));
    ck_assert_ptr_nonnull(out);
    memcpy(out, sg_data(w), sg_size(w) * sizeof(float));
    sg_optim_free(opt);
    return out; /* w belongs to the fixture's scope */
}

START_TEST(test_optim_per_level)
{
    const size_t n = 97 * 33;
    for (int kind = 0; kind < SG_OPTIM_COUNT; kind++)
        for (int decay = 0; decay < 2; decay++) {
            ck_assert_int_eq(sg_set_isa(SG_ISA_GENERIC), 0);
            float *ref = run_optim((sg_optim_kind)kind, decay);
            for (int isa = SG_ISA_GENERIC + 1; isa <= (int)sg_isa_cpu(); isa++) {
                ck_assert_int_eq(sg_set_isa((sg_isa)isa), 0);
                float *got = run_optim((sg_optim_kind)kind, decay);
                ck_assert_msg(memcmp(got, ref, n * sizeof(float)) == 0, "%s%s: %s differs from generic",
                              sg_optim_kind_name((sg_optim_kind)kind), decay ? " with decay" : "",
                              sg_isa_name((sg_isa)isa));
                free(got);
            }
            free(ref);
        }
}
END_TEST

static Suite *kernel_levels_suite(void)
{
    Suite *s = suite_create("kernel_levels");
    struct {
        const char *name;
        const TTest *test;
        int n; /* loop count (0: a plain test) */
    } cases[] = {
        {"elementwise", test_binary, 0},
        {"elementwise", test_binary_rows, 0},
        {"elementwise", test_unary, 0},
        {"elementwise", test_bytes_to_float, 0},
        {"reduce", test_reduce_all_rows_cols, 0},
        {"reduce", test_reduce_channels_windows, 0},
        {"reduce", test_max_grad, 0},
        {"unfold", test_unfold_fold, 0},
        {"shape", test_transpose_permute_broadcast, 0},
        {"optim", test_updates, 0},
        {"ops", test_ops_per_level, (int)(sizeof op_cases / sizeof op_cases[0])},
        {"ops", test_optim_per_level, 0},
    };
    TCase *tc = NULL;
    const char *current = "";
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (strcmp(cases[i].name, current) != 0) {
            tc = tcase_create(cases[i].name);
            tcase_add_checked_fixture(tc, setup, teardown);
            tcase_add_unchecked_fixture(tc, NULL, release);
            tcase_set_timeout(tc, 120);
            suite_add_tcase(s, tc);
            current = cases[i].name;
        }
        if (cases[i].n)
            tcase_add_loop_test(tc, cases[i].test, 0, cases[i].n);
        else
            tcase_add_test(tc, cases[i].test);
    }
    return s;
}

int main(void)
{
    printf("kernel levels: this CPU runs up to %s\n", sg_isa_name(sg_isa_cpu()));
    SRunner *sr = srunner_create(kernel_levels_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    sg_release_memory();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
