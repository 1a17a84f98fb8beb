/*
 * test_edges_slow.c — Check suite "slow": the fast paths against their
 * composed general paths past 2^24 elements, where a float counter or
 * accumulator stops growing (2^24 + 1 rounds back to 2^24). Separate from
 * "edges" because each case holds a few tensors of 25M floats (100 MB
 * each; 330 MB at the peak) and the suite takes about a second (10 s and
 * 1 GB under valgrind); CI runs it once, not under valgrind.
 */
#include "sg_autograd.h"
#include "sg_test.h"

#include <check.h>
#include <math.h>
#include <stdio.h>

/* 1.5 * 2^24 elements: the case */
enum { BIG = 25165824 };

/* the shared teardown, then the 100 MB arenas go back at once */
static void teardown(void)
{
    sg_test_teardown();
    sg_release_memory();
}

/* every element of g is `want`, and they sum (in double) to `sum` */
static void check_all(const char *what, sg_tensor *g, float want, double sum)
{
    ck_assert_msg(g != NULL, "%s: %s", what, sg_last_error());
    const float *d = sg_data(g);
    double s = 0;
    for (size_t i = 0; i < sg_size(g); i++) {
        if (d[i] != want)
            ck_abort_msg("%s: element %zu is %.9g, expected %.9g", what, i, (double)d[i], (double)want);
        s += d[i];
    }
    ck_assert_msg(fabs(s - sum) < 1e-3, "%s: the gradient sums to %.9g, expected %.9g", what, s, sum);
}

/* d max(x) / dx with all BIG elements tied: 1/BIG each, summing to 1. The
 * fused backward (no create_graph) counted the ties in a float, which
 * stopped at 2^24: 5.96e-8 each, summing to 1.5. */
START_TEST(test_max_ties_past_2_24)
{
    const float want = 1.f / (float)BIG;
    for (int create = 0; create < 2; create++) {
        sg_tensor *x = sg_param(sg_full(0.5f, SG_DIMS(BIG)));
        sg_tensor *g = NULL;
        ck_assert_int_eq(sg_grad_of(sg_max(x, NULL, 0, false), &x, 1, &g,
                                    &(sg_backward_opts){.create_graph = create}),
                         0);
        check_all(create ? "max, create_graph (composed)" : "max, fused", g, want, 1.0);
        sg_scope_end();
        sg_scope_begin();
    }
}
END_TEST

/* Sums past 2^24 values, through each kernel that sums them: one run
 * (reduce_all), columns (a (R, 2) tensor over axis 0) and channels
 * ((R, 2, 2) over axes 0 and 2). A float that takes one value at a time
 * stopped at 16777216 for the columns and channels, and a run of 0.1s was
 * off by 25%. */
START_TEST(test_sums_past_2_24)
{
    /* one run of BIG values 0.1f: within 1e-5 of the exact sum */
    sg_tensor *x = sg_full(0.1f, SG_DIMS(BIG));
    double exact = (double)0.1f * BIG;
    float got = sg_item(sg_sum_all(x));
    ck_assert_msg(fabs(got - exact) <= 1e-5 * exact, "sum of %d values 0.1: %.9g, expected %.9g", BIG,
                  (double)got, exact);
    sg_scope_end();
    sg_scope_begin();
    /* columns: R = 1.25 * 2^24 rows of ones, on one thread (with more,
     * blocks of rows are summed apart, which hid the saturation) and on all */
    const int R = (1 << 24) + (1 << 22);
    sg_set_threads(1);
    for (int round = 0; round < 2; round++) {
        sg_tensor *c = sg_sum(sg_ones(SG_DIMS(R, 2)), (const int[]){0}, 1, false);
        ck_assert_msg(c != NULL, "%s", sg_last_error());
        ck_assert_msg(sg_data(c)[0] == (float)R && sg_data(c)[1] == (float)R,
                      "column sums of %d ones (%s): %.9g %.9g", R, round ? "all threads" : "one thread",
                      (double)sg_data(c)[0], (double)sg_data(c)[1]);
        sg_scope_end();
        sg_scope_begin();
        sg_set_threads(0); /* all cores */
    }
    /* channels: (R3, 2, 3) over axes 0 and 2, 3 * R3 > 2^24 values per
     * channel (a float += 3 past 2^24 rounds) */
    const int R3 = 7000000;
    sg_tensor *k = sg_sum(sg_ones(SG_DIMS(R3, 2, 3)), (const int[]){0, 2}, 2, false);
    ck_assert_msg(k != NULL, "%s", sg_last_error());
    ck_assert_msg(sg_data(k)[0] == (float)(3 * R3) && sg_data(k)[1] == (float)(3 * R3),
                  "channel sums of %d ones: %.9g %.9g", 3 * R3, (double)sg_data(k)[0], (double)sg_data(k)[1]);
}
END_TEST

static Suite *slow_suite(void)
{
    Suite *s = suite_create("slow");
    TCase *tc = tcase_create("max_ties_past_2_24");
    tcase_add_checked_fixture(tc, sg_test_setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_max_ties_past_2_24);
    suite_add_tcase(s, tc);
    tc = tcase_create("sums_past_2_24");
    tcase_add_checked_fixture(tc, sg_test_setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_sums_past_2_24);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sg_test_run(slow_suite()); }
