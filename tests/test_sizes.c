/*
 * test_sizes.c — Check suite "sizes": shape and size arithmetic is checked,
 * never wrapped. Each op that derives a shape from user numbers (creation,
 * reshape, concat, unfold/fold, conv2d, pooling, the conv2d layer) is driven
 * with sizes at and past the limit SG_MAX_ELEMENTS (2^31 - 1); past it, the
 * op returns NULL with a message naming the op and the sizes — the cases
 * that used to write past a buffer, read wild memory or return a wrong
 * shape. "At the limit" uses empty tensors (their nonzero dims multiply to
 * the limit), so no test allocates gigabytes.
 */
#include "sg_nn.h"
#include "sg_test.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

static void assert_shape(const sg_tensor *t, int ndim, const int *shape)
{
    ck_assert_msg(t != NULL, "unexpected error: %s", sg_last_error());
    ck_assert_int_eq(sg_ndim(t), ndim);
    for (int i = 0; i < ndim; i++)
        ck_assert_int_eq(sg_dim(t, i), shape[i]);
}
#define ASSERT_SHAPE(t, ...) assert_shape((t), SG_DIMS(__VA_ARGS__))

START_TEST(test_count_helpers)
{
    ck_assert_int_eq(sg_count_mul(65536, 65536), (int64_t)1 << 32);
    ck_assert_int_eq(sg_count_mul(INT64_MAX, 2), INT64_MAX);
    ck_assert_int_eq(sg_count_mul((int64_t)1 << 32, (int64_t)1 << 32), INT64_MAX);
    ck_assert_int_eq(sg_count_mul(-1, 3), INT64_MAX);
    ck_assert_int_eq(sg_count_mul(0, INT64_MAX), 0);
    ck_assert_int_eq(sg_count_add(INT64_MAX - 1, 1), INT64_MAX);
    ck_assert_int_eq(sg_count_add(INT64_MAX, 1), INT64_MAX);
    ck_assert_int_eq(sg_count_add(2, 3), 5);

    int shape[3] = {7, 7, 7};
    ck_assert(sg_shape_fits("t", "x", 2, (const int64_t[]){46341, 46340}, shape)); /* 2147441940 */
    ck_assert_int_eq(shape[0], 46341);
    ck_assert_int_eq(shape[1], 46340);
    ck_assert(sg_shape_fits("t", "x", 1, (const int64_t[]){SG_MAX_ELEMENTS}, shape));
    ck_assert(!sg_shape_fits("t", "x", 1, (const int64_t[]){(int64_t)SG_MAX_ELEMENTS + 1}, shape));
    ASSERT_ERROR("t: x of 2147483648 elements is too large (at most 2147483647)");
    ck_assert(!sg_shape_fits("t", "x", 2, (const int64_t[]){46341, 46341}, shape));
    ASSERT_ERROR("t: x of 46341 × 46341 = 2147488281 elements is too large (at most 2147483647)");
    ck_assert(!sg_shape_fits("t", "x", 2, (const int64_t[]){INT64_MAX, 2}, shape));
    ASSERT_ERROR("t: x of more than 9223372036854775806 × 2 = more than 9223372036854775806 elements is too "
                 "large (at most 2147483647)");
    ck_assert(!sg_shape_fits("t", "x", 2, (const int64_t[]){3, -2}, shape));
    ASSERT_ERROR("t: negative dim in x (3,-2)");
    ck_assert_int_eq(shape[0], SG_MAX_ELEMENTS); /* untouched on failure */

    ck_assert_int_eq(sg_window_out(28, 3, 1, 1), 28);
    ck_assert_int_eq(sg_window_out(2, 1, 1, INT_MAX), -1);           /* 2 + 2*INT_MAX: past INT_MAX */
    ck_assert_int_eq(sg_window_out(1, 1, 1, INT_MAX / 2), INT_MAX); /* exactly INT_MAX */
}
END_TEST

START_TEST(test_creation)
{
    /* wrapped to 2^64 = 0 before the check, giving a tensor of size 0 */
    ck_assert_ptr_null(sg_zeros(SG_DIMS(1 << 20, 1 << 20, 1 << 24)));
    ASSERT_ERROR("zeros: shape of 1048576 × 1048576 × 16777216 = more than 9223372036854775806 elements is too "
                 "large (at most 2147483647)");
    ck_assert_ptr_null(sg_ones(SG_DIMS(65536, 32768)));
    ASSERT_ERROR("ones: shape of 65536 × 32768 = 2147483648 elements is too large (at most 2147483647)");
    /* at the limit: empty tensors whose nonzero dims multiply to 2^31 - 1 */
    ASSERT_SHAPE(sg_zeros(SG_DIMS(0, INT_MAX)), 0, INT_MAX);
    ASSERT_SHAPE(sg_zeros(SG_DIMS(INT_MAX, 0, 1)), INT_MAX, 0, 1);
    ck_assert_ptr_null(sg_arange(0.f, 3e9f, 1.f));
    ASSERT_ERROR("arange: 3000000000 elements is too large (at most 2147483647)");
    ck_assert_ptr_null(sg_zeros(SG_DIMS(0, 65536, 32768)));
    ASSERT_ERROR("zeros: shape (0 × 65536 × 32768) is too large: its nonzero dims multiply to 2147483648 (at "
                 "most 2147483647)");
}
END_TEST

START_TEST(test_reshape)
{
    /* the same wrap through reshape: the product of the target is checked */
    sg_tensor *e = sg_zeros(SG_DIMS(0));
    ck_assert_ptr_null(sg_reshape(e, SG_DIMS(1 << 20, 1 << 20, 1 << 24)));
    ASSERT_ERROR("reshape: cannot reshape (0) (0 elements) into (1048576,1048576,16777216)");
    ck_assert_ptr_null(sg_reshape(e, SG_DIMS(0, 1 << 16, 1 << 15)));
    ASSERT_ERROR("reshape: shape (0 × 65536 × 32768) is too large: its nonzero dims multiply to 2147483648 (at "
                 "most 2147483647)");
    ASSERT_SHAPE(sg_reshape(e, SG_DIMS(0, 65535, 32768)), 0, 65535, 32768);
    ck_assert_ptr_null(sg_reshape(sg_zeros(SG_DIMS(4)), SG_DIMS(-1, 1 << 20, 1 << 20, 1 << 24)));
    ASSERT_ERROR("reshape: cannot reshape (4) into (-1,1048576,1048576,16777216)");
}
END_TEST

START_TEST(test_concat)
{
    /* four (2^30, 0) along axis 0 used to give (0, 0) */
    sg_tensor *q = sg_zeros(SG_DIMS(1 << 30, 0));
    sg_tensor *four[4] = {q, q, q, q};
    ck_assert_ptr_null(sg_concat(four, 4, 0));
    ASSERT_ERROR("concat: output (4294967296 × 0) is too large: its nonzero dims multiply to 4294967296 (at most "
                 "2147483647)");
    sg_tensor *r = sg_zeros(SG_DIMS((1 << 30) - 1, 0));
    sg_tensor *at[2] = {q, r};
    ASSERT_SHAPE(sg_concat(at, 2, 0), INT_MAX, 0);
    sg_tensor *past[2] = {q, q};
    ck_assert_ptr_null(sg_concat(past, 2, 0));
    ASSERT_ERROR("concat: output (2147483648 × 0) is too large: its nonzero dims multiply to 2147483648 (at most "
                 "2147483647)");
}
END_TEST

START_TEST(test_unfold_fold)
{
    sg_tensor *x = sg_ones(SG_DIMS(1, 1, 2, 2));
    /* N*OH*OW = 65536^2 wrapped to 0 and the kernel wrote past its buffer */
    sg_window p32767 = {.kh = 1, .kw = 1, .sh = 1, .sw = 1, .ph = 32767, .pw = 32767};
    ck_assert_ptr_null(sg_unfold(x, p32767));
    ASSERT_ERROR("unfold: output of 4294967296 × 1 = 4294967296 elements is too large (at most 2147483647)");
    /* padding 30000 used to say "negative dim in shape (-694847295,1)" */
    sg_window p30000 = {.kh = 1, .kw = 1, .ph = 30000, .pw = 30000};
    ck_assert_ptr_null(sg_unfold(x, p30000));
    ASSERT_ERROR("unfold: output of 3600240004 × 1 = 3600240004 elements is too large (at most 2147483647)");
    /* C*KH*KW = 65536^2 wrapped the same way */
    sg_window k65536 = {.kh = 65536, .kw = 65536, .ph = 32768, .pw = 32768};
    ck_assert_ptr_null(sg_unfold(x, k65536));
    ASSERT_ERROR("unfold: output of 9 × 4294967296 = 38654705664 elements is too large (at most 2147483647)");
    /* at the limit the window arithmetic is exact: an empty batch with
     * 46340 x 46341 windows per image gives (0, 1) columns */
    sg_window edge = {.kh = 1, .kw = 1, .ph = 23169, .pw = 23169};
    ASSERT_SHAPE(sg_unfold(sg_zeros(SG_DIMS(0, 1, 2, 3)), edge), 0, 1);
    /* one image: 46342^2 rows of padding do not fit */
    sg_window edge1 = {.kh = 1, .kw = 1, .ph = 23170, .pw = 23170};
    ck_assert_ptr_null(sg_unfold(x, edge1));
    ASSERT_ERROR("unfold: output of 2147580964 × 1 = 2147580964 elements is too large (at most 2147483647)");

    /* fold wrapped its shape check, then read wild memory */
    sg_tensor *c01 = sg_zeros(SG_DIMS(0, 1)), *c11 = sg_ones(SG_DIMS(1, 1));
    ck_assert_ptr_null(sg_fold(c01, 1, 1, 2, 2, p32767));
    ASSERT_ERROR("fold: output of 4294967296 × 1 = 4294967296 elements is too large (at most 2147483647)");
    ck_assert_ptr_null(sg_fold(c11, 1, 1, 2, 2, p32767));
    ASSERT_ERROR("fold: output of 4294967296 × 1 = 4294967296 elements is too large (at most 2147483647)");
    ck_assert_ptr_null(sg_fold(c11, 1, 1, 2, 2, k65536));
    ASSERT_ERROR("fold: output of 9 × 4294967296 = 38654705664 elements is too large (at most 2147483647)");
    ck_assert_ptr_null(sg_fold(c11, -1, 1, 2, 2, p32767));
    ASSERT_ERROR("fold: negative image count -1 or channel count 1");
}
END_TEST

START_TEST(test_conv_pool)
{
    sg_tensor *x = sg_ones(SG_DIMS(1, 1, 2, 2)), *W = sg_ones(SG_DIMS(1, 1, 1, 1));
    ck_assert_ptr_null(sg_conv2d(x, W, NULL, 1, 32767));
    ASSERT_ERROR("conv2d: columns (N*OH*OW, C*KH*KW) of 4294967296 × 1 = 4294967296 elements is too large (at "
                 "most 2147483647)");
    /* 2*pad alone passes INT_MAX */
    ck_assert_ptr_null(sg_conv2d(x, W, NULL, 1, 1 << 30));
    ASSERT_ERROR("conv2d: columns (N*OH*OW, C*KH*KW) of 4611686027017322500 × 1 = 4611686027017322500 elements "
                 "is too large (at most 2147483647)");
    ck_assert_ptr_null(sg_max_pool2d(x, 65536, 1, 32768));
    ASSERT_ERROR("max_pool2d: windows (N*C*OH*OW, k*k) of 9 × 4294967296 = 38654705664 elements is too large "
                 "(at most 2147483647)");
    ck_assert_ptr_null(sg_avg_pool2d(x, 65536, 1, 32768));
    ASSERT_ERROR("avg_pool2d: windows (N*C*OH*OW, k*k) of 9 × 4294967296 = 38654705664 elements is too large "
                 "(at most 2147483647)");

    /* the layer refuses a padding whose 2*p overflows the forward pass */
    sg_scope_end(); /* models are built outside scopes */
    sg_model *m = sg_model_new();
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    ck_assert_ptr_null(sg_conv2d_new(m, "c", 1, 1, 3, 1, 1 << 30, SG_INIT_HE, &rng));
    ASSERT_ERROR("conv2d_new: padding 1073741824 with kernel 3 is too large (2*padding + kernel must be at most "
                 "2147483647)");
    ck_assert_ptr_nonnull(sg_conv2d_new(m, "c", 1, 1, 3, 1, (INT_MAX - 3) / 2, SG_INIT_HE, &rng));
    /* constructors and one_hot name themselves, not the sg_zeros inside */
    ck_assert_ptr_null(sg_linear_new(m, "fc", 65536, 65536, SG_INIT_HE, &rng));
    ASSERT_ERROR("linear_new: shape of 65536 × 65536 = 4294967296 elements is too large (at most 2147483647)");
    ck_assert_ptr_null(sg_conv2d_new(m, "c2", 65536, 65536, 1, 1, 0, SG_INIT_HE, &rng));
    ASSERT_ERROR("conv2d_new: shape of 65536 × 65536 × 1 × 1 = 4294967296 elements is too large (at most "
                 "2147483647)");
    ck_assert_ptr_null(sg_one_hot((const int[]){0, 1}, 2, 1 << 30));
    ASSERT_ERROR("one_hot: shape of 2 × 1073741824 = 2147483648 elements is too large (at most 2147483647)");
    sg_model_free(m);
    sg_scope_begin();
}
END_TEST

static Suite *sizes_suite(void)
{
    Suite *s = suite_create("sizes");
    TCase *tc = tcase_create("limits");
    tcase_add_checked_fixture(tc, sg_test_setup, sg_test_teardown);
    tcase_add_test(tc, test_count_helpers);
    tcase_add_test(tc, test_creation);
    tcase_add_test(tc, test_reshape);
    tcase_add_test(tc, test_concat);
    tcase_add_test(tc, test_unfold_fold);
    tcase_add_test(tc, test_conv_pool);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sg_test_run(sizes_suite()); }
