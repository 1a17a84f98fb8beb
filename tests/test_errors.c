/*
 * test_errors.c — Check suite "errors": every error path of the engine
 * returns NULL / -1 / NaN with a sticky message that names the op and the
 * shapes, NULL inputs propagate through whole expressions keeping the first
 * message, the NaN debug mode names the first op that produced a NaN/Inf, and
 * nothing aborts (under valgrind the suite runs unforked in one process, so
 * an abort anywhere would fail the whole run).
 *
 * Messages are asserted exactly where the issue fixes their wording (matmul,
 * broadcasting) and elsewhere where the wording is part of what a user sees;
 * a few are asserted by their key parts.
 */
#include "sg_autograd.h"
#include "sg_test.h"

#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static sg_tensor *mat(int r, int c) { return sg_ones(SG_DIMS(r, c)); }

/* ------------------------------------------------------------------------- */

START_TEST(test_sticky_error)
{
    ck_assert(!sg_has_error());
    ck_assert_str_eq(sg_last_error(), "");
    sg_set_error("first: %d", 1);
    sg_set_error("second: %s", "ignored");
    ck_assert(sg_has_error());
    ck_assert_str_eq(sg_last_error(), "first: 1");
    sg_clear_error();
    ck_assert(!sg_has_error());
    ck_assert_str_eq(sg_last_error(), "");
    sg_set_error("linear: input %s and weight %s do not align", "(2,3)", "(4,5)");
    ASSERT_ERROR("linear: input (2,3) and weight (4,5) do not align");
}
END_TEST

/* The check-print-clear pattern (design.md "Handling an error"): the
 * issue's case, a gradcheck that cannot run followed by an unrelated shape
 * error. */
static sg_tensor *exp_fn(sg_tensor *const *in, int n, void *ctx)
{
    (void)n, (void)ctx;
    return sg_exp(in[0]);
}

static char *read_back(FILE *f)
{
    static char buf[256];
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    return buf;
}

START_TEST(test_check_print_clear)
{
    sg_tensor *x = sg_ones(SG_DIMS(2, 3)); /* not a parameter */
    sg_gradcheck_report r;
    ck_assert(!sg_gradcheck(exp_fn, &x, 1, NULL, NULL, &r));
    ck_assert_str_eq(sg_last_error(), "gradcheck: no input requires a gradient");

    /* not cleared: the next failure is hidden behind the old message */
    ck_assert_ptr_null(sg_matmul(mat(2, 3), mat(4, 5)));
    ck_assert_str_eq(sg_last_error(), "gradcheck: no input requires a gradient");

    /* check, print, clear: the message goes to f, and the next failure
     * reports itself */
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    ck_assert(sg_print_error(f));
    ck_assert(!sg_has_error());
    ck_assert_str_eq(read_back(f), "gradcheck: no input requires a gradient\n");
    ck_assert_ptr_null(sg_matmul(mat(2, 3), mat(4, 5)));
    ck_assert_str_eq(sg_last_error(), "matmul: shapes (2,3) and (4,5) do not align (3 != 4)");
    ck_assert(sg_print_error(f));
    ck_assert(!sg_has_error());
    ck_assert_str_eq(read_back(f), "gradcheck: no input requires a gradient\n"
                                   "matmul: shapes (2,3) and (4,5) do not align (3 != 4)\n");

    /* nothing recorded: nothing printed */
    fclose(f);
    f = tmpfile();
    ck_assert_ptr_nonnull(f);
    ck_assert(!sg_print_error(f));
    ck_assert_str_eq(read_back(f), "");
    fclose(f);
    sg_tensor_free(x);
}
END_TEST

START_TEST(test_matmul_shapes)
{
    ck_assert_ptr_null(sg_matmul(mat(2, 3), mat(4, 5)));
    ASSERT_ERROR("matmul: shapes (2,3) and (4,5) do not align (3 != 4)");
    ck_assert_ptr_null(sg_matmul_t(mat(2, 3), mat(4, 5), true, false));
    ASSERT_ERROR("matmul: shapes (2,3)^T and (4,5) do not align (2 != 4)");
    ck_assert_ptr_null(sg_matmul_t(mat(2, 3), mat(4, 5), false, true));
    ASSERT_ERROR("matmul: shapes (2,3) and (4,5)^T do not align (3 != 5)");
    ck_assert_ptr_null(sg_matmul(sg_ones(SG_DIMS(4)), mat(3, 2))); /* a 1-D operand: NumPy's rules */
    ASSERT_ERROR("matmul: shapes (4) and (3,2) do not align (4 != 3)");
    ck_assert_ptr_null(sg_matmul_t(mat(2, 3), sg_ones(SG_DIMS(3)), true, false));
    ASSERT_ERROR("matmul: shapes (2,3)^T and (3) do not align (2 != 3)");
    ck_assert_ptr_null(sg_matmul(sg_scalar(2.0), mat(3, 2)));
    ASSERT_ERROR("matmul: shapes () and (3,2): a 0-d operand has no matrix product (use sg_mul)");
    ck_assert_ptr_null(sg_matmul(sg_ones(SG_DIMS(2, 2, 3)), sg_ones(SG_DIMS(3, 3, 2))));
    ASSERT_ERROR("matmul: batch dims of (2,2,3) and (3,3,2) differ");
    ck_assert_ptr_null(sg_matmul(sg_ones(SG_DIMS(2, 2, 3)), sg_ones(SG_DIMS(1, 2, 3, 2))));
    ASSERT_ERROR("matmul: shapes (2,2,3) and (1,2,3,2) have different batch ranks");
    ck_assert_ptr_null(sg_matmul_t(sg_ones(SG_DIMS(2, 3, 2)), mat(4, 3), true, false));
    ASSERT_ERROR("matmul: shapes (2,3,2)^T and (4,3) do not align (3 != 4)");
    ck_assert_ptr_null(sg_matmul(mat(2, 3), sg_ones(SG_DIMS(5, 4, 2))));
    ASSERT_ERROR("matmul: shapes (2,3) and (5,4,2) do not align (3 != 4)");
    ck_assert_ptr_null(sg_addmm(mat(3, 5), mat(2, 3), mat(3, 5)));
    ASSERT_ERROR("addmm: (3,5) does not broadcast to the product's shape (2,5)");
    ck_assert_ptr_null(sg_addmm(mat(1, 5), mat(2, 3), mat(4, 5)));
    ASSERT_ERROR("addmm: shapes (2,3) and (4,5) do not align (3 != 4)");
    ck_assert_ptr_nonnull(sg_matmul(mat(2, 3), mat(3, 5))); /* and the valid one works */
    ck_assert(!sg_has_error());
}
END_TEST

START_TEST(test_broadcast_shapes)
{
    ck_assert_ptr_null(sg_add(mat(2, 3), sg_ones(SG_DIMS(4))));
    ASSERT_ERROR("add: shapes (2,3) and (4) cannot be broadcast together");
    ck_assert_ptr_null(sg_mul(sg_ones(SG_DIMS(2, 1, 4)), mat(3, 5)));
    ASSERT_ERROR("mul: shapes (2,1,4) and (3,5) cannot be broadcast together");
    ck_assert_ptr_null(sg_sub(mat(3, 2), mat(2, 3)));
    ASSERT_ERROR("sub: shapes (3,2) and (2,3) cannot be broadcast together");
    ck_assert_ptr_null(sg_div(mat(2, 2), mat(3, 1)));
    ASSERT_ERROR("div: shapes (2,2) and (3,1) cannot be broadcast together");
    ck_assert_ptr_null(sg_gt(mat(2, 2), mat(3, 1)));
    ASSERT_ERROR("gt: shapes (2,2) and (3,1) cannot be broadcast together");
    ck_assert_ptr_null(sg_broadcast_to(mat(2, 3), SG_DIMS(3, 3)));
    ASSERT_ERROR("broadcast_to: cannot broadcast (2,3) to (3,3)");
    ck_assert_ptr_null(sg_broadcast_to(mat(2, 3), SG_DIMS(3)));
    ASSERT_ERROR("broadcast_to: cannot broadcast (2,3) to (3)");
    ck_assert_ptr_null(sg_sum_to(mat(2, 3), SG_DIMS(4)));
    ASSERT_ERROR("sum_to: cannot sum (2,3) down to (4)");
    ck_assert_ptr_null(sg_sum_to(mat(2, 3), SG_DIMS(1, 2, 3)));
    ASSERT_ERROR("sum_to: cannot sum (2,3) down to 3 dims");
}
END_TEST

START_TEST(test_bad_axis)
{
    sg_tensor *x = mat(2, 3);
    ck_assert_ptr_null(sg_sum(x, (int[]){2}, 1, false));
    ASSERT_ERROR("sum: axis 2 is out of range for 2 dims");
    ck_assert_ptr_null(sg_max(x, (int[]){-3}, 1, true));
    ASSERT_ERROR("max: axis -3 is out of range for 2 dims");
    ck_assert_ptr_null(sg_sum(x, (int[]){1, -1}, 2, false));
    ASSERT_ERROR("sum: axis -1 given twice");
    ck_assert_ptr_null(sg_mean(x, (int[]){5}, 1, false));
    ASSERT_ERROR("mean: axis 5 is out of range for 2 dims");
    ck_assert_ptr_null(sg_sum(x, NULL, 1, false));
    ASSERT_ERROR("sum: bad axes list");
    ck_assert_ptr_null(sg_slice(x, 2, 0, 1));
    ASSERT_ERROR("slice: axis 2 is out of range for (2,3)");
    ck_assert_ptr_null(sg_concat((sg_tensor *[]){x, x}, 2, 2));
    ASSERT_ERROR("concat: axis 2 is out of range for (2,3)");
    ck_assert_ptr_null(sg_max(sg_zeros(SG_DIMS(0, 3)), NULL, 0, false));
    ASSERT_ERROR("max: axis 0 of (0,3) is empty and has no maximum");
}
END_TEST

START_TEST(test_null_propagation)
{
    sg_tensor *a = sg_param(mat(2, 3)), *b = mat(4, 5), *c = mat(2, 5);
    /* the first failure (matmul) is what the message keeps, through a chain */
    sg_tensor *y = sg_exp(sg_add(sg_matmul(a, b), c));
    y = sg_sum(sg_relu(sg_reshape(y, SG_DIMS(10))), NULL, 0, false);
    y = sg_mul(sg_concat((sg_tensor *[]){y, y}, 2, 0), sg_unfold(y, (sg_window){.kh = 1, .kw = 1}));
    ck_assert_ptr_null(y);
    ck_assert_int_eq(sg_backward(y, NULL), -1);
    sg_tensor *g;
    ck_assert_int_eq(sg_grad_of(y, &a, 1, &g, NULL), -1);
    ck_assert(isnan(sg_item(y)));
    ASSERT_ERROR("matmul: shapes (2,3) and (4,5) do not align (3 != 4)");

    /* every op given NULL returns NULL; with no earlier error, it says so */
    ck_assert_ptr_null(sg_exp(NULL));
    ASSERT_ERROR("exp: NULL input");
    ck_assert_ptr_null(sg_add(a, NULL));
    ASSERT_ERROR("add: NULL input");
    ck_assert_ptr_null(sg_pow(NULL, 2.f));
    ASSERT_ERROR("pow: NULL input");
    ck_assert_ptr_null(sg_sum(NULL, NULL, 0, false));
    ASSERT_ERROR("sum: NULL input");
    ck_assert_ptr_null(sg_matmul(NULL, a));
    ASSERT_ERROR("matmul: NULL input");
    ck_assert_ptr_null(sg_addmm(a, a, NULL));
    ASSERT_ERROR("addmm: NULL input");
    ck_assert_ptr_null(sg_reshape(NULL, SG_DIMS(2)));
    ASSERT_ERROR("reshape: NULL input");
    ck_assert_ptr_null(sg_concat((sg_tensor *[]){a, NULL}, 2, 0));
    ASSERT_ERROR("concat: NULL input");
    ck_assert_ptr_null(sg_unfold(NULL, (sg_window){.kh = 1, .kw = 1}));
    ASSERT_ERROR("unfold: NULL input");
    ck_assert_int_eq(sg_backward(NULL, NULL), -1);
    ASSERT_ERROR("backward: NULL output");
    /* every public op at once: none crashes on NULL */
    sg_window w = {.kh = 1, .kw = 1};
    sg_tensor *outs[] = {
        sg_sub(NULL, a), sg_mul(NULL, a), sg_div(a, NULL), sg_neg(NULL), sg_log(NULL), sg_relu(NULL),
        sg_gt(NULL, a), sg_eq(a, NULL), sg_add_scalar(NULL, 1), sg_mul_scalar(NULL, 1),
        sg_rsub_scalar(1, NULL), sg_rdiv_scalar(1, NULL), sg_sqrt(NULL), sg_square(NULL),
        sg_mean(NULL, NULL, 0, false), sg_max(NULL, NULL, 0, false), sg_sum_all(NULL), sg_mean_all(NULL),
        sg_permute(NULL, (int[]){0}, 1), sg_transpose(NULL), sg_broadcast_to(NULL, SG_DIMS(2)),
        sg_sum_to(NULL, SG_DIMS(2)), sg_slice(NULL, 0, 0, 1), sg_flatten(NULL), sg_matmul_t(a, NULL, 1, 0),
        sg_fold(NULL, 1, 1, 1, 1, w), sg_copy(NULL), sg_detach(NULL), sg_keep(NULL), sg_param(NULL),
        sg_set_requires_grad(NULL, true), sg_ones_like(NULL),
    };
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++)
        ck_assert_msg(outs[i] == NULL, "entry %zu returned a tensor for NULL input", i);
    sg_clear_error();
    /* accessors are NULL-safe */
    ck_assert_int_eq(sg_ndim(NULL), -1);
    ck_assert_int_eq(sg_dim(NULL, 0), -1);
    ck_assert_uint_eq(sg_size(NULL), 0);
    ck_assert_ptr_null(sg_data(NULL));
    ck_assert_ptr_null(sg_shape(NULL));
    ck_assert_ptr_null(sg_grad(NULL));
    ck_assert_ptr_null(sg_grad_data(NULL));
    ck_assert(!sg_requires_grad(NULL));
    ck_assert(!sg_has_history(NULL));
    ck_assert_str_eq(sg_op_name_of(NULL), "null");
    ck_assert_str_eq(sg_name(NULL), "");
    ck_assert_ptr_null(sg_set_name(NULL, "x"));
    sg_zero_grad(NULL);
    sg_tensor_free(NULL);
    char buf[16];
    ck_assert_str_eq(sg_shape_str(NULL, buf, sizeof buf), "(null)");
}
END_TEST

START_TEST(test_backward_errors)
{
    sg_tensor *x = sg_param(mat(2, 3));
    sg_tensor *y = sg_mul(x, x);
    ck_assert_int_eq(sg_backward(y, NULL), -1);
    ASSERT_ERROR("backward: output (2,3) is not a scalar; pass a gradient of the same shape");
    ck_assert_int_eq(sg_backward(y, &(sg_backward_opts){.grad = sg_ones(SG_DIMS(3))}), -1);
    ASSERT_ERROR("backward: gradient (3) does not match output (2,3)");
    ck_assert_ptr_null(sg_grad(x)); /* nothing happened */

    sg_tensor *c = sg_sum_all(mat(2, 3)); /* no input needs a gradient */
    ck_assert_int_eq(sg_backward(c, NULL), -1);
    ASSERT_ERROR("backward: the output () does not require a gradient (mark inputs with sg_param, and do "
                 "not compute it in no-grad mode)");
    sg_set_grad_enabled(false);
    sg_tensor *n = sg_sum_all(sg_mul(x, x));
    sg_set_grad_enabled(true);
    ck_assert_int_eq(sg_backward(n, NULL), -1);
    ASSERT_ERROR_HAS("does not require a gradient");

    /* grad_of */
    sg_tensor *s = sg_sum_all(y), *g[2];
    ck_assert_int_eq(sg_grad_of(s, &x, 0, g, NULL), -1);
    ASSERT_ERROR("grad_of: needs inputs and an output array");
    ck_assert_int_eq(sg_grad_of(s, (sg_tensor *[]){x, NULL}, 2, g, NULL), -1);
    ASSERT_ERROR("grad_of: input 1 is NULL");

    /* set_requires_grad on a computed tensor */
    ck_assert_ptr_null(sg_set_requires_grad(y, false));
    ASSERT_ERROR("set_requires_grad: only a leaf can change it (this tensor comes from mul)");
    ck_assert_ptr_null(sg_param(y));
    ASSERT_ERROR_HAS("only a leaf");
}
END_TEST

START_TEST(test_create_graph_needs_scope)
{
    sg_scope_end(); /* persistent tensors from here */
    ck_assert_int_eq(sg_scope_depth(), 0);
    sg_tensor *x = sg_param(sg_scalar(2.f));
    sg_tensor *y = sg_mul(x, x);
    ck_assert_int_eq(sg_backward(y, &(sg_backward_opts){.create_graph = true}), -1);
    ASSERT_ERROR("backward: create_graph needs an open scope (its gradients live in it)");
    sg_tensor *g;
    ck_assert_int_eq(sg_grad_of(y, &x, 1, &g, NULL), -1);
    ASSERT_ERROR("backward: grad_of needs an open scope (its gradients live in it)");
    ck_assert_int_eq(sg_backward(y, NULL), 0); /* plain backward works without one */
    ck_assert_float_eq(sg_grad_data(x)[0], 4.f);
    sg_tensor_free(y);
    sg_tensor_free(x);
}
END_TEST

START_TEST(test_reshape_permute_slice)
{
    sg_tensor *x = mat(2, 3);
    ck_assert_ptr_null(sg_reshape(x, SG_DIMS(4, 2)));
    ASSERT_ERROR("reshape: cannot reshape (2,3) (6 elements) into (4,2)");
    ck_assert_ptr_null(sg_reshape(x, SG_DIMS(4, -1)));
    ASSERT_ERROR("reshape: cannot reshape (2,3) into (4,-1)");
    ck_assert_ptr_null(sg_reshape(x, SG_DIMS(-1, -1)));
    ASSERT_ERROR("reshape: bad dim -1 in (-1,-1)");
    ck_assert_ptr_null(sg_reshape(x, SG_DIMS(3, -2)));
    ASSERT_ERROR("reshape: bad dim -2 in (3,-2)");
    ck_assert_ptr_null(sg_reshape(x, 9, (int[]){1, 1, 1, 1, 1, 1, 1, 2, 3}));
    ASSERT_ERROR("reshape: bad target rank 9 for (2,3)");
    ck_assert_ptr_nonnull(sg_reshape(x, SG_DIMS(3, -1)));

    ck_assert_ptr_null(sg_permute(x, (int[]){0, 0}, 2));
    ASSERT_ERROR("permute: 0 is not a valid permutation entry for (2,3)");
    ck_assert_ptr_null(sg_permute(x, (int[]){1, 2}, 2));
    ASSERT_ERROR("permute: 2 is not a valid permutation entry for (2,3)");
    ck_assert_ptr_null(sg_permute(x, (int[]){-1, 0}, 2));
    ASSERT_ERROR("permute: -1 is not a valid permutation entry for (2,3)");
    ck_assert_ptr_null(sg_permute(x, NULL, 2));
    ASSERT_ERROR("permute: NULL permutation for (2,3)");
    /* the length is checked: a short permutation was read past its end */
    ck_assert_ptr_null(sg_permute(sg_ones(SG_DIMS(2, 3, 4)), (int[]){1, 0}, 2));
    ASSERT_ERROR("permute: a permutation of 2 entries for (2,3,4), which has 3 dims");
    ck_assert_ptr_null(sg_permute(x, (int[]){1, 0, 2}, 3));
    ASSERT_ERROR("permute: a permutation of 3 entries for (2,3), which has 2 dims");
    ck_assert_ptr_null(sg_transpose(sg_ones(SG_DIMS(3))));
    ASSERT_ERROR("transpose: needs at least 2 dims, got (3)");
    ck_assert_ptr_null(sg_flatten(sg_scalar(1.f)));
    ASSERT_ERROR("flatten: needs at least 1 dim, got a scalar");

    ck_assert_ptr_null(sg_slice(x, 1, 1, 5));
    ASSERT_ERROR("slice: [1, 5) is out of range for axis 1 of (2,3)");
    ck_assert_ptr_null(sg_slice(x, 0, -1, 1));
    ASSERT_ERROR("slice: [-1, 1) is out of range for axis 0 of (2,3)");
    ck_assert_ptr_null(sg_slice(x, -1, 2, 1));
    ASSERT_ERROR("slice: [2, 1) is out of range for axis -1 of (2,3)");

    ck_assert_ptr_null(sg_concat((sg_tensor *[]){x, mat(2, 4)}, 2, 0));
    ASSERT_ERROR("concat: shapes (2,3) and (2,4) differ outside axis 0");
    ck_assert_ptr_null(sg_concat((sg_tensor *[]){x, sg_ones(SG_DIMS(2, 3, 1))}, 2, 1));
    ASSERT_ERROR("concat: shapes (2,3) and (2,3,1) differ outside axis 1");
    ck_assert_ptr_null(sg_concat(NULL, 0, 0));
    ASSERT_ERROR("concat: needs at least one tensor, got 0");
    ck_assert_ptr_null(sg_concat(NULL, 2, 0));
    ASSERT_ERROR("concat: NULL array of 2 tensors");
}
END_TEST

START_TEST(test_unfold_fold)
{
    sg_tensor *x = sg_ones(SG_DIMS(1, 1, 5, 5));
    ck_assert_ptr_null(sg_unfold(x, (sg_window){.kh = 7, .kw = 7}));
    ASSERT_ERROR("unfold: kernel 7x7 with stride (1,1) and padding (0,0) does not fit a 5x5 input");
    ck_assert_ptr_null(sg_unfold(x, (sg_window){.kh = 3, .kw = 6, .sh = 2, .sw = 1, .ph = 0, .pw = 0}));
    ASSERT_ERROR("unfold: kernel 3x6 with stride (2,1) and padding (0,0) does not fit a 5x5 input");
    ck_assert_ptr_null(sg_unfold(x, (sg_window){.kh = 0, .kw = 3}));
    ASSERT_ERROR_HAS("unfold: kernel 0x3");
    ck_assert_ptr_nonnull(sg_unfold(x, (sg_window){.kh = 7, .kw = 7, .ph = 1, .pw = 1})); /* fits padded */
    ck_assert_ptr_null(sg_unfold(mat(5, 5), (sg_window){.kh = 3, .kw = 3}));
    ASSERT_ERROR("unfold: input must be (N,C,H,W), got (5,5)");
    ck_assert_int_eq(sg_window_out(5, 7, 1, 0), -1);
    ck_assert_int_eq(sg_window_out(5, 3, 2, 1), 3);

    sg_window w = {.kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1};
    ck_assert_ptr_null(sg_fold(mat(8, 9), 1, 1, 5, 5, w));
    ASSERT_ERROR("fold: columns (8,9) do not match (N*OH*OW, C*KH*KW) = (9,9)");
    ck_assert_ptr_null(sg_fold(mat(9, 9), 1, 1, 2, 2, (sg_window){.kh = 3, .kw = 3}));
    ASSERT_ERROR("fold: kernel 3x3 with stride (1,1) and padding (0,0) does not fit a 2x2 input");
}
END_TEST

START_TEST(test_creation_errors)
{
    ck_assert_ptr_null(sg_zeros(SG_DIMS(2, -1)));
    ASSERT_ERROR("zeros: negative dim in shape (2,-1)");
    ck_assert_ptr_null(sg_ones(9, (int[]){1, 1, 1, 1, 1, 1, 1, 1, 1}));
    ASSERT_ERROR("ones: 9 dims (at most 8)");
    ck_assert_ptr_null(sg_full(1.f, -1, NULL));
    ASSERT_ERROR("full: -1 dims (at most 8)");
    ck_assert_ptr_null(sg_zeros(2, NULL));
    ASSERT_ERROR("zeros: NULL shape");
    ck_assert_ptr_null(sg_from_data(NULL, SG_DIMS(2, 3)));
    ASSERT_ERROR("from_data: NULL data for 6 elements");
    ck_assert_ptr_nonnull(sg_from_data(NULL, SG_DIMS(0))); /* empty: fine */
    ck_assert_ptr_null(sg_arange(0.f, 1.f, 0.f));
    ASSERT_ERROR("arange: step must be nonzero and bounds finite (start 0, stop 1, step 0)");
    ck_assert_ptr_null(sg_arange(NAN, 1.f, 1.f));
    ASSERT_ERROR_HAS("arange: step must be nonzero");
    ck_assert_ptr_null(sg_uniform(NULL, 2.f, 1.f, SG_DIMS(3)));
    ASSERT_ERROR("uniform: low 2 is above high 1");
    ck_assert_ptr_null(sg_normal(NULL, 0.f, -1.f, SG_DIMS(3)));
    ASSERT_ERROR("normal: std -1 must be >= 0");
    ck_assert_ptr_null(sg_uniform(NULL, 0.f, 1.f, SG_DIMS(-3)));
    ASSERT_ERROR("uniform: negative dim in shape (-3)");
}
END_TEST

START_TEST(test_item_non_scalar)
{
    float v = sg_item(mat(2, 3));
    ck_assert(isnan(v));
    ASSERT_ERROR("item: expected one element, got shape (2,3)");
    ck_assert(isnan(sg_item(NULL)));
    ASSERT_ERROR("item: NULL input");
    ck_assert(isnan(sg_item(sg_zeros(SG_DIMS(0)))));
    ASSERT_ERROR("item: expected one element, got shape (0)");
}
END_TEST

START_TEST(test_scope_errors)
{
    sg_scope_end();
    ck_assert_int_eq(sg_scope_depth(), 0);
    ck_assert(!sg_has_error());
    sg_scope_end(); /* none open */
    ASSERT_ERROR("scope_end: no scope is open");
    ck_assert_int_eq(sg_scope_depth(), 0);
    /* nesting is bounded, and the bound is reported, not crashed into */
    int depth = 0, rc;
    while ((rc = sg_scope_begin()) > 0) {
        ck_assert_int_eq(rc, depth + 1);
        depth++;
        ck_assert_int_le(depth, 1000);
    }
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(depth, sg_scope_depth());
    ck_assert_int_ge(depth, 8);
    char want[64];
    snprintf(want, sizeof want, "scope_begin: more than %d nested scopes", depth);
    ASSERT_ERROR(want);
    ck_assert_ptr_nonnull(sg_ones(SG_DIMS(2))); /* still usable at the deepest level */
    while (sg_scope_depth() > 0)
        sg_scope_end();
    ck_assert(!sg_has_error());
}
END_TEST

START_TEST(test_nan_check)
{
    ck_assert(sg_set_nan_check(true) == false);
    sg_tensor *x = sg_param(sg_from_data((const float[]){1.f, -1.f, 2.f}, SG_DIMS(3)));
    ck_assert_ptr_null(sg_log(x));
    ASSERT_ERROR("log: produced NaN at index 1 of a (3) result from finite inputs");
    /* a chain: the first op that goes wrong is named, later ones see NULL */
    sg_tensor *y = sg_sum_all(sg_exp(sg_log(sg_mul_scalar(x, 2.f))));
    ck_assert_ptr_null(y);
    ASSERT_ERROR_HAS("log: produced NaN");
    ck_assert_ptr_null(sg_exp(sg_from_data((const float[]){1.f, 100.f}, SG_DIMS(2))));
    ASSERT_ERROR("exp: produced Inf at index 1 of a (2) result from finite inputs");
    ck_assert_ptr_null(sg_div(sg_ones(SG_DIMS(2)), sg_zeros(SG_DIMS(2))));
    ASSERT_ERROR("div: produced Inf at index 0 of a (2) result from finite inputs");
    /* a NaN that comes in is not blamed on the op that passes it on */
    sg_tensor *nan_in = sg_from_data((const float[]){NAN, 1.f}, SG_DIMS(2));
    ck_assert_ptr_nonnull(sg_add_scalar(nan_in, 1.f));
    ck_assert(!sg_has_error());
    /* the check covers backward: d sqrt(x)/dx at 0 is infinite */
    sg_tensor *z = sg_param(sg_from_data((const float[]){0.f, 4.f}, SG_DIMS(2)));
    sg_tensor *r = sg_sum_all(sg_sqrt(z));
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(sg_backward(r, NULL), -1);
    ASSERT_ERROR_HAS("pow: produced Inf");
    /* max pooling pads with -inf on purpose: not an error, forward or backward */
    sg_tensor *img = sg_param(sg_reshape(sg_arange(0.f, 16.f, 1.f), SG_DIMS(1, 1, 4, 4)));
    sg_window pool = {.kh = 2, .kw = 2, .sh = 2, .sw = 2, .ph = 1, .pw = 1, .pad_value = -INFINITY};
    sg_tensor *cols = sg_unfold(img, pool);
    ck_assert_msg(cols != NULL, "%s", sg_last_error());
    sg_tensor *pooled = sg_max(cols, (int[]){1}, 1, false); /* (9): 3x3 windows */
    ck_assert_msg(pooled != NULL, "%s", sg_last_error());
    ck_assert_float_eq(sg_data(pooled)[0], 0.f);
    ck_assert_float_eq(sg_data(pooled)[4], 10.f);
    ck_assert_float_eq(sg_data(pooled)[8], 15.f);
    ck_assert_int_eq(sg_backward(sg_sum_all(pooled), NULL), 0);
    /* each window's maximum gets 1: pixels 0, 2, 3, 8, 10, 11, 12, 14, 15 */
    static const float want_grad[16] = {1, 0, 1, 1, 0, 0, 0, 0, 1, 0, 1, 1, 1, 0, 1, 1};
    for (int i = 0; i < 16; i++)
        ck_assert_float_eq(sg_grad_data(img)[i], want_grad[i]);
    ck_assert(!sg_has_error());
    /* off again: NaNs flow silently */
    ck_assert(sg_set_nan_check(false) == true);
    sg_tensor *l = sg_log(x);
    ck_assert_ptr_nonnull(l);
    ck_assert(isnan(sg_data(l)[1]));
    ck_assert(!sg_has_error());
}
END_TEST

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* With no scope open, results are heap tensors: an op that fails after
 * allocating its result must free it (valgrind checks the same thing; the
 * heap count makes it visible without valgrind too). */
START_TEST(test_failures_outside_scope_leak_nothing)
{
    sg_scope_end();
    ck_assert_int_eq(sg_scope_depth(), 0);
    sg_tensor *x = sg_from_data((const float[]){1.f, -1.f}, SG_DIMS(2));
    sg_tensor *z = sg_zeros(SG_DIMS(2));
    sg_set_nan_check(true);
    sg_tensor *warm = sg_log(x); /* anything allocated once happens here */
    sg_clear_error();
    /* freed blocks stay counted while malloc caches them for reuse, so fail
     * many times: a leak grows the heap, a freed result is reused */
    size_t before = 0;
    bool all_null = true;
    for (int i = 0; i < 1000; i++) {
        if (i == 10)
            before = heap_in_use();
        all_null = all_null && !sg_from_data(NULL, SG_DIMS(2, 3)) && !sg_log(x) && !sg_div(x, z);
    }
    size_t after = heap_in_use();
    sg_set_nan_check(false);
    ck_assert_ptr_null(warm);
    ck_assert(all_null);
    ASSERT_ERROR("from_data: NULL data for 6 elements");
    ck_assert_msg(after <= before + 4096, "1000 failed ops kept %zd heap bytes", (ssize_t)(after - before));
    sg_tensor_free(z);
    sg_tensor_free(x);
}
END_TEST

static sg_tensor *fn_fails(sg_tensor *const *in, int n, void *ctx)
{
    (void)n;
    (void)ctx;
    return sg_matmul(in[0], in[0]); /* (2,3) @ (2,3) */
}

static sg_tensor *fn_const(sg_tensor *const *in, int n, void *ctx)
{
    (void)n;
    (void)ctx;
    return sg_sum_all(sg_detach(in[0]));
}

START_TEST(test_gradcheck_and_tools_errors)
{
    sg_tensor *x = sg_param(mat(2, 3));
    sg_gradcheck_report rep;
    ck_assert(!sg_gradcheck(fn_fails, &x, 1, NULL, NULL, &rep));
    ck_assert_str_eq(rep.message, "gradcheck: matmul: shapes (2,3) and (2,3) do not align (3 != 2)");
    sg_clear_error();
    ck_assert(!sg_gradcheck(fn_const, &x, 1, NULL, NULL, &rep));
    ck_assert_str_eq(rep.message, "gradcheck: the output does not depend on any input that requires a gradient");
    ASSERT_ERROR(rep.message);
    sg_tensor *k = mat(2, 3);
    ck_assert(!sg_gradcheck(fn_const, &k, 1, NULL, NULL, &rep));
    ASSERT_ERROR("gradcheck: no input requires a gradient");
    ck_assert(!sg_gradcheck(NULL, &x, 1, NULL, NULL, NULL));
    ASSERT_ERROR("gradcheck: needs a function and inputs");
    ck_assert(!sg_gradgradcheck(fn_fails, &x, 1, NULL, NULL, &rep));
    sg_clear_error();

    ck_assert_int_eq(sg_write_dot(stdout, NULL), -1);
    ASSERT_ERROR("write_dot: NULL input");
    ck_assert_int_eq(sg_write_dot(NULL, x), -1);
    ASSERT_ERROR("write_dot: NULL file");
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    sg_trace(mem, NULL);
    sg_print(mem, NULL);
    fclose(mem);
    ck_assert_str_eq(text, "trace: (null)\n(null)\n");
    free(text);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* No crash on any argument; messages name the function the user called */

START_TEST(test_null_arguments)
{
    sg_tensor *x = mat(2, 2);
    /* these segfaulted (a NULL FILE) or failed with an empty message */
    sg_print(NULL, x);
    ASSERT_ERROR("print: NULL file");
    sg_trace(NULL, x);
    ASSERT_ERROR("trace: NULL file");
    ck_assert_int_eq(sg_write_dot(NULL, x), -1);
    ASSERT_ERROR("write_dot: NULL file");
    ck_assert_ptr_null(sg_zeros_like(NULL));
    ASSERT_ERROR("zeros_like: NULL input");
    ck_assert_ptr_null(sg_ones_like(NULL));
    ASSERT_ERROR("ones_like: NULL input");
    ck_assert_ptr_null(sg_copy(NULL));
    ASSERT_ERROR("copy: NULL input");
    ck_assert_ptr_null(sg_detach(NULL));
    ASSERT_ERROR("detach: NULL input");
    ck_assert_ptr_null(sg_keep(NULL));
    ASSERT_ERROR("keep: NULL input");
    ck_assert_ptr_null(sg_set_name(NULL, "x"));
    ASSERT_ERROR("set_name: NULL input");
    ck_assert_ptr_null(sg_set_requires_grad(NULL, true));
    ASSERT_ERROR("set_requires_grad: NULL input");
    /* the same inputs still work */
    ck_assert_float_eq(sg_data(sg_ones_like(x))[3], 1.f);
    ck_assert_float_eq(sg_data(sg_copy(x))[0], 1.f);
    ck_assert(!sg_has_error());
}
END_TEST

START_TEST(test_rng_arguments)
{
    /* NULL is the thread's default generator everywhere (no segfault) */
    sg_rng_seed(NULL, 7);
    sg_rng r;
    sg_rng_seed(&r, 7);
    ck_assert_uint_eq(sg_rng_u32(NULL), sg_rng_u32(&r));
    ck_assert(sg_rng_uniform(NULL) == sg_rng_uniform(&r));
    ck_assert(sg_rng_normal(NULL) == sg_rng_normal(&r));
    ck_assert_uint_eq(sg_rng_below(NULL, 10), sg_rng_below(&r, 10));
    ck_assert(!sg_has_error());
    /* below 0 there is no integer: a message, not a division by zero */
    ck_assert_uint_eq(sg_rng_below(&r, 0), 0);
    ASSERT_ERROR("rng_below: n must be at least 1, got 0");
    ck_assert_uint_lt(sg_rng_below(&r, 1), 1);
    sg_rng_seed(NULL, 42); /* leave the default as the other tests expect */
}
END_TEST

START_TEST(test_wrappers_name_themselves)
{
    /* they used to report their primitive: neg:, pow:, sum: */
    ck_assert_ptr_null(sg_rsub_scalar(1.f, NULL));
    ASSERT_ERROR("rsub_scalar: NULL input");
    ck_assert_ptr_null(sg_rdiv_scalar(1.f, NULL));
    ASSERT_ERROR("rdiv_scalar: NULL input");
    ck_assert_ptr_null(sg_sqrt(NULL));
    ASSERT_ERROR("sqrt: NULL input");
    ck_assert_ptr_null(sg_square(NULL));
    ASSERT_ERROR("square: NULL input");
    ck_assert_ptr_null(sg_mean_all(NULL));
    ASSERT_ERROR("mean_all: NULL input");
    ck_assert_ptr_null(sg_sum_all(NULL));
    ASSERT_ERROR("sum_all: NULL input");
    ck_assert_ptr_null(sg_mean(mat(2, 3), (int[]){2}, 1, false));
    ASSERT_ERROR("mean: axis 2 is out of range for 2 dims");
    /* the primitives still name themselves */
    ck_assert_ptr_null(sg_pow(NULL, 2.f));
    ASSERT_ERROR("pow: NULL input");
    ck_assert_ptr_null(sg_sum(mat(2, 3), (int[]){2}, 1, false));
    ASSERT_ERROR("sum: axis 2 is out of range for 2 dims");
    /* any message recorded inside a bracket names the outer function */
    const char *outer = sg_api_enter("my_layer");
    const char *inner = sg_api_enter("inner");
    ck_assert_ptr_null(sg_matmul(mat(2, 3), mat(4, 5)));
    sg_api_leave(inner);
    ck_assert_str_eq(sg_last_error(), "my_layer: shapes (2,3) and (4,5) do not align (3 != 4)");
    sg_clear_error();
    sg_api_leave(outer);
    ck_assert_ptr_null(sg_matmul(mat(2, 3), mat(4, 5)));
    ASSERT_ERROR("matmul: shapes (2,3) and (4,5) do not align (3 != 4)");
    /* and sizes past the limit name the function and the sizes */
    ck_assert_ptr_null(sg_ones(SG_DIMS(1 << 20, 1 << 20)));
    ASSERT_ERROR("ones: shape of 1048576 × 1048576 = 1099511627776 elements is too large (at most 2147483647)");
}
END_TEST

#if defined(__SANITIZE_ADDRESS__)
#define SG_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SG_TEST_ASAN 1
#endif
#endif

/* Out of memory, for real: a child process limited to 1 GiB of address
 * space asks for 2^31 - 1 floats (8 GiB, within the element limit). Not
 * under ASan (its shadow memory needs the address space), valgrind, or
 * qemu-user (SG_TEST_EMULATED: the limit applies to the emulator too). */
START_TEST(test_out_of_memory_names_sizes)
{
#ifdef SG_TEST_ASAN
    return;
#else
    const char *pre = getenv("LD_PRELOAD");
    if ((pre && strstr(pre, "vgpreload")) || getenv("SG_TEST_EMULATED")) {
        fprintf(stderr, "test_out_of_memory_names_sizes: not run (valgrind or an emulated CPU)\n");
        return;
    }
    int fd[2];
    ck_assert_int_eq(pipe(fd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit lim = {1u << 30, 1u << 30};
        setrlimit(RLIMIT_AS, &lim);
        sg_clear_error();
        char msg[1024];
        sg_tensor *t = sg_ones(SG_DIMS(SG_MAX_ELEMENTS));
        int o = snprintf(msg, sizeof msg, "%s|", t ? "allocated" : sg_last_error());
        sg_clear_error();
        /* the input (512 MiB) fits, the result does not: named after the
         * function called, not the primitive (pow) it is made of */
        sg_tensor *in = sg_full(1.f, SG_DIMS(1 << 27));
        sg_tensor *s = in ? sg_sqrt(in) : NULL;
        snprintf(msg + o, sizeof msg - (size_t)o, "%s", s ? "allocated" : sg_last_error());
        ssize_t w = write(fd[1], msg, strlen(msg) + 1);
        _exit(w > 0 ? 0 : 1);
    }
    close(fd[1]);
    char got[1024] = {0};
    ssize_t n = read(fd[0], got, sizeof got - 1);
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    ck_assert_int_gt(n, 0);
    ck_assert_str_eq(got, "ones: out of memory for a (2147483647) tensor (8589934592 bytes)|"
                          "sqrt: out of memory for a (134217728) tensor (536870912 bytes)");
    sg_clear_error();
#endif
}
END_TEST

static Suite *errors_suite(void)
{
    Suite *s = suite_create("errors");
    TCase *msg = tcase_create("messages");
    tcase_add_checked_fixture(msg, sg_test_setup, sg_test_teardown);
    tcase_add_test(msg, test_sticky_error);
    tcase_add_test(msg, test_check_print_clear);
    tcase_add_test(msg, test_matmul_shapes);
    tcase_add_test(msg, test_broadcast_shapes);
    tcase_add_test(msg, test_bad_axis);
    tcase_add_test(msg, test_reshape_permute_slice);
    tcase_add_test(msg, test_unfold_fold);
    tcase_add_test(msg, test_creation_errors);
    tcase_add_test(msg, test_item_non_scalar);
    suite_add_tcase(s, msg);

    TCase *flow = tcase_create("flow");
    tcase_add_checked_fixture(flow, sg_test_setup, sg_test_teardown);
    tcase_add_test(flow, test_null_propagation);
    tcase_add_test(flow, test_backward_errors);
    tcase_add_test(flow, test_create_graph_needs_scope);
    tcase_add_test(flow, test_scope_errors);
    tcase_add_test(flow, test_nan_check);
    tcase_add_test(flow, test_gradcheck_and_tools_errors);
    tcase_add_test(flow, test_failures_outside_scope_leak_nothing);
    suite_add_tcase(s, flow);

    TCase *args = tcase_create("arguments");
    tcase_add_checked_fixture(args, sg_test_setup, sg_test_teardown);
    tcase_add_test(args, test_null_arguments);
    tcase_add_test(args, test_rng_arguments);
    tcase_add_test(args, test_wrappers_name_themselves);
    tcase_add_test(args, test_out_of_memory_names_sizes);
    suite_add_tcase(s, args);
    return s;
}

int main(void) { return sg_test_run(errors_suite()); }
