/*
 * test_prims.c — Check suite "prims" (issue 13, points 3-6): the math and
 * indexing primitives' values (float32 and float64 forward paths), their
 * derivatives at kinks, ties and bounds (PyTorch's rules), their errors;
 * user-defined primitives (sg_custom_apply: recording, tracing, the
 * context, ownership, errors); create_graph keeping the graph (the
 * double-backward pattern through sg_grad); and the small forms (x - s,
 * x / s, one-axis reductions, matmul with a 1-D operand, batch norm's
 * options, embedding lookup, integer-label cross-entropy).
 *
 * The gradient checks of every primitive (first and second order) are
 * rows of test_gradcheck.c (its op-table walk); here each edge rule is
 * asserted as a value, so a wrong convention fails with the number.
 */
#include "sg_autograd.h"
#include "sg_nn.h"
#include "sg_test.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* sg_test.h's fixture; every test leaves the default dtype as it found it */
static void setup(void) { sg_test_setup(); }

static void teardown(void)
{
    sg_test_teardown();
    sg_set_default_dtype(SG_FLOAT32);
}

#define T32(...) sg_from_data((float[]){__VA_ARGS__}, SG_DIMS((int)(sizeof((float[]){__VA_ARGS__}) / sizeof(float))))
#define T64(...) sg_from_data64((double[]){__VA_ARGS__}, SG_DIMS((int)(sizeof((double[]){__VA_ARGS__}) / sizeof(double))))

/* the recorded message contains want (sg_test.h's ASSERT_ERROR_HAS) */
#define assert_error(want) ASSERT_ERROR_HAS(want)

/* d/dx of sum(f(x) * dy) at x, one element each, as floats */
static void assert_grad(sg_tensor *x, const float *want, size_t n)
{
    const float *g = sg_grad_data(x);
    ck_assert_ptr_nonnull(g);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(g[i] == want[i] || (isnan(g[i]) && isnan(want[i])), "grad[%zu] = %.9g, expected %.9g", i,
                      (double)g[i], (double)want[i]);
}

/* ------------------------------------------------------------------------- */
/* Values, both dtypes */

START_TEST(test_unary_values)
{
    static const double v[] = {-2.5, -0.75, -0.0, 0.0, 0.3, 1.7, 40.0};
    enum { N = sizeof v / sizeof v[0] };
    float vf[N];
    for (int i = 0; i < N; i++)
        vf[i] = (float)v[i];
    sg_tensor *x32 = sg_from_data(vf, SG_DIMS(N)), *x64 = sg_from_data64(v, SG_DIMS(N));
    sg_tensor *(*fn[])(sg_tensor *) = {sg_sin, sg_cos, sg_tanh, sg_abs, sg_sign};
    double (*ref64[])(double) = {sin, cos, tanh, fabs, NULL};
    float (*ref32[])(float) = {sinf, cosf, tanhf, fabsf, NULL};
    for (int k = 0; k < 5; k++) {
        sg_tensor *y32 = fn[k](x32), *y64 = fn[k](x64);
        ck_assert_ptr_nonnull(y32);
        ck_assert_ptr_nonnull(y64);
        ck_assert_int_eq(sg_dtype_of(y64), SG_FLOAT64);
        for (int i = 0; i < N; i++) {
            double w64 = ref64[k] ? ref64[k](v[i]) : (v[i] > 0) - (v[i] < 0);
            float w32 = ref32[k] ? ref32[k](vf[i]) : (float)((vf[i] > 0) - (vf[i] < 0));
            ck_assert_msg(sg_data64(y64)[i] == w64, "op %d at %g: %.17g vs %.17g", k, v[i], sg_data64(y64)[i], w64);
            ck_assert_msg(sg_data(y32)[i] == w32, "op %d at %g: %.9g vs %.9g", k, v[i], (double)sg_data(y32)[i],
                          (double)w32);
        }
    }
    /* sign: NaN stays NaN (NumPy), nothing recorded; tanh at ±inf is ±1 */
    sg_tensor *p = sg_param(T64(NAN, -INFINITY, INFINITY));
    sg_tensor *s = sg_sign(p);
    ck_assert(isnan(sg_data64(s)[0]));
    ck_assert(sg_data64(s)[1] == -1.0 && sg_data64(s)[2] == 1.0);
    ck_assert(!sg_requires_grad(s));
    ck_assert(sg_data64(sg_tanh(p))[2] == 1.0);
}
END_TEST

START_TEST(test_binary_values)
{
    /* (2,3) against (3), float32 and float64; a NaN propagates */
    sg_tensor *a = sg_from_data((float[]){1, -2, 3, 0.5f, NAN, -1}, SG_DIMS(2, 3));
    sg_tensor *b = T32(2, -3, 3);
    sg_tensor *mx = sg_maximum(a, b), *mn = sg_minimum(a, b);
    static const float wmx[] = {2, -2, 3, 2, NAN, 3}, wmn[] = {1, -3, 3, 0.5f, NAN, -1};
    for (int i = 0; i < 6; i++) {
        ck_assert(sg_data(mx)[i] == wmx[i] || (isnan(wmx[i]) && isnan(sg_data(mx)[i])));
        ck_assert(sg_data(mn)[i] == wmn[i] || (isnan(wmn[i]) && isnan(sg_data(mn)[i])));
    }
    sg_tensor *a64 = sg_from_data64((double[]){1e-300, -2, 0.1}, SG_DIMS(3)), *b64 = T64(0, -1, 0.1 + 1e-17);
    sg_tensor *m64 = sg_maximum(a64, b64);
    ck_assert(sg_data64(m64)[0] == 1e-300 && sg_data64(m64)[1] == -1 && sg_data64(m64)[2] == 0.1 + 1e-17);
    /* where: nonzero (NaN too) selects a; the mask may be float32 for float64 data */
    sg_tensor *c = sg_from_data((float[]){1, 0, NAN}, SG_DIMS(3));
    sg_tensor *w = sg_where(c, a64, b64);
    ck_assert(sg_data64(w)[0] == 1e-300 && sg_data64(w)[1] == -1 && sg_data64(w)[2] == 0.1);
    sg_tensor *w2 = sg_where(sg_from_data((float[]){0, 1}, SG_DIMS(2, 1)), a, b); /* (2,1) with (2,3), (3) */
    ck_assert_int_eq(sg_dim(w2, 0), 2);
    ck_assert_float_eq(sg_data(w2)[0], 2.f);
    ck_assert_float_eq(sg_data(w2)[3], 0.5f);
    /* clamp: both dtypes, lo > hi gives hi (PyTorch), NaN stays, one side open */
    sg_tensor *cl = sg_clamp(T64(-3, 0.25, 7, NAN), -1, 2);
    ck_assert(sg_data64(cl)[0] == -1 && sg_data64(cl)[1] == 0.25 && sg_data64(cl)[2] == 2 && isnan(sg_data64(cl)[3]));
    ck_assert_float_eq(sg_data(sg_clamp(T32(-3, 5), 1, 0))[0], 0.f);
    ck_assert_float_eq(sg_data(sg_clamp(T32(-3, 5), -INFINITY, 1))[0], -3.f);
    ck_assert(!sg_has_error());
}
END_TEST

START_TEST(test_scalar_forms_and_axis)
{
    sg_tensor *x = sg_param(T32(1, 2, 10, -7));
    sg_tensor *d = sg_div_scalar(x, 3.0), *s = sg_sub_scalar(x, 0.5);
    for (int i = 0; i < 4; i++) {
        float v = sg_data(x)[i];
        ck_assert(sg_data(d)[i] == v / 3.f); /* divided, not multiplied by 1/3 */
        ck_assert(sg_data(s)[i] == v - 0.5f);
    }
    ck_assert(sg_data(sg_div_scalar(T32(10), 3.0))[0] != 10.f * (1.f / 3.f));
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_add(d, s)), NULL), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq_tol(sg_grad_data(x)[i], 1.f / 3.f + 1.f, 1e-7f);
    /* one-axis reductions equal the array forms; errors name them */
    sg_tensor *m = sg_from_data((float[]){1, 5, 2, 4, 3, 0}, SG_DIMS(2, 3));
    ck_assert_float_eq(sg_data(sg_sum_axis(m, 1, false))[1], 7.f);
    ck_assert_float_eq(sg_data(sg_mean_axis(m, -1, true))[0], 8.f / 3.f);
    ck_assert_int_eq(sg_ndim(sg_mean_axis(m, -1, true)), 2);
    ck_assert_float_eq(sg_data(sg_max_axis(m, 0, false))[1], 5.f);
    ck_assert_ptr_null(sg_sum_axis(m, 2, false));
    assert_error("sum_axis: axis 2 is out of range for 2 dims");
    ck_assert_ptr_null(sg_max_axis(NULL, 0, false));
    assert_error("max_axis: NULL input");
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Derivatives at edge points (PyTorch's conventions, design.md) */

START_TEST(test_edge_derivatives)
{
    /* abs'(0) = 0, abs'(±) = ±1; sign is a constant, so d²/dx² x|x| =
     * 2 sign(x): 0 at 0 */
    sg_tensor *x = sg_param(T32(-2, 0, -0.f, 3));
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_abs(x)), NULL), 0);
    assert_grad(x, (const float[]){-1, 0, 0, 1}, 4);
    sg_tensor *g;
    ck_assert_int_eq(sg_grad_of(sg_sum_all(sg_mul(x, sg_abs(x))), &x, 1, &g, &(sg_backward_opts){.create_graph = true}), 0);
    sg_tensor *g2;
    ck_assert_int_eq(sg_grad_of(sg_sum_all(g), &x, 1, &g2, NULL), 0);
    static const float w2[] = {-2, 0, 0, 2};
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(sg_data(g2)[i], w2[i]);
    /* maximum / minimum: a tie gives each side dy/2; NaN gives both dy */
    sg_tensor *a = sg_param(T32(1, 2, 3, NAN)), *b = sg_param(T32(1, 5, 0, 1));
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_maximum(a, b)), NULL), 0);
    assert_grad(a, (const float[]){0.5f, 0, 1, 1}, 4);
    assert_grad(b, (const float[]){0.5f, 1, 0, 1}, 4);
    sg_zero_grad(a);
    sg_zero_grad(b);
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_minimum(a, b)), NULL), 0);
    assert_grad(a, (const float[]){0.5f, 1, 0, 1}, 4);
    assert_grad(b, (const float[]){0.5f, 0, 1, 1}, 4);
    /* a broadcast side sums its shares: max(x, 0) with a scalar 0 */
    sg_tensor *v = sg_param(T32(-1, 0, 2)), *z = sg_param(sg_scalar(0.0));
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_maximum(v, z)), NULL), 0);
    assert_grad(v, (const float[]){0, 0.5f, 1}, 3);
    assert_grad(z, (const float[]){1.5f}, 1);
    /* clamp: the gradient passes at a bound, stops outside and at NaN */
    sg_tensor *c = sg_param(T32(-2, -1, 0, 1, 2, NAN));
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_clamp(c, -1, 1)), NULL), 0);
    assert_grad(c, (const float[]){0, 1, 1, 1, 0, 0}, 6);
    /* tanh: 0 at ±inf at the first three orders (never inf * 0) */
    sg_tensor *t = sg_param(T32(-INFINITY, INFINITY));
    sg_tensor *d1, *d2, *d3;
    ck_assert_int_eq(sg_grad_of(sg_sum_all(sg_tanh(t)), &t, 1, &d1, &(sg_backward_opts){.create_graph = true}), 0);
    ck_assert_int_eq(sg_grad_of(sg_sum_all(d1), &t, 1, &d2, &(sg_backward_opts){.create_graph = true}), 0);
    ck_assert_int_eq(sg_grad_of(sg_sum_all(d2), &t, 1, &d3, NULL), 0);
    for (int i = 0; i < 2; i++) {
        ck_assert_float_eq(sg_data(d1)[i], 0.f);
        ck_assert_float_eq(sg_data(d2)[i], 0.f);
        ck_assert_float_eq(sg_data(d3)[i], 0.f);
    }
    /* where: no gradient reaches the unselected side */
    sg_tensor *wa = sg_param(T32(1, 2)), *wb = sg_param(T32(3, 4));
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_where(T32(1, 0), wa, wb)), NULL), 0);
    assert_grad(wa, (const float[]){1, 0}, 2);
    assert_grad(wb, (const float[]){0, 1}, 2);
    ck_assert(!sg_has_error());
}
END_TEST

/* Empty tensors: the empty result of the right shape, and an empty
 * gradient of the input's shape (design.md, "Empty tensors"). */
START_TEST(test_empty)
{
    sg_tensor *x = sg_param(sg_zeros(SG_DIMS(0, 3))), *b = sg_param(sg_ones(SG_DIMS(3)));
    sg_tensor *ys[] = {sg_sin(x), sg_cos(x), sg_tanh(x), sg_abs(x), sg_clamp(x, -1, 1), sg_maximum(x, b),
                       sg_minimum(b, x), sg_where(sg_zeros(SG_DIMS(0, 1)), x, b),
                       sg_gather(x, 1, sg_zeros(SG_DIMS(0, 2))), sg_take(x, 1, sg_from_ints(NULL, SG_DIMS(0)))};
    static const int cols[] = {3, 3, 3, 3, 3, 3, 3, 3, 2, 0};
    for (int k = 0; k < 10; k++) {
        ck_assert_msg(ys[k] && sg_ndim(ys[k]) == 2 && sg_dim(ys[k], 0) == 0 && sg_dim(ys[k], 1) == cols[k],
                      "case %d: %s", k, sg_last_error());
        sg_zero_grad(x);
        ck_assert_int_eq(sg_backward(sg_sum_all(ys[k]), NULL), 0);
        ck_assert(sg_same_shape(sg_grad(x), x));
    }
    ck_assert_int_eq(sg_size(sg_sign(x)), 0);
    ck_assert(!sg_has_error());
}
END_TEST

START_TEST(test_math_errors)
{
    sg_tensor *a = T32(1, 2), *b = T64(1, 2);
    /* mixed dtypes promote (design.md "Data types"); a mask keeps its own */
    sg_tensor *m = sg_maximum(a, b), *w = sg_where(T32(1, 0), a, b);
    ck_assert(m && sg_dtype_of(m) == SG_FLOAT64 && w && sg_dtype_of(w) == SG_FLOAT64);
    ck_assert(sg_data64(m)[1] == 2.0 && sg_data64(w)[0] == 1.0);
    ck_assert_ptr_null(sg_minimum(a, T32(1, 2, 3)));
    assert_error("minimum: shapes (2) and (3) cannot be broadcast together");
    ck_assert_ptr_null(sg_where(T32(1, 0, 1), a, a));
    assert_error("where: shapes (3), (2) and (2) cannot be broadcast together");
    ck_assert_ptr_null(sg_where(sg_param(T32(1, 0)), a, a));
    assert_error("where: the condition (2) requires a gradient");
    ck_assert_ptr_null(sg_clamp(a, NAN, 1));
    assert_error("clamp: bounds nan and 1 must not be NaN");
    ck_assert_ptr_null(sg_sin(NULL));
    assert_error("sin: NULL input");
    ck_assert_ptr_null(sg_sign(NULL));
    assert_error("sign: NULL input");
    ck_assert_ptr_null(sg_div_scalar(NULL, 2));
    assert_error("div_scalar: NULL input");
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Indexing */

START_TEST(test_gather_scatter_take)
{
    /* gather along axis 1: y[i][j] = x[i][index[i][j]] */
    sg_tensor *x = sg_param(sg_from_data((float[]){10, 11, 12, 20, 21, 22}, SG_DIMS(2, 3)));
    sg_tensor *idx = sg_from_ints((int[]){2, 2, 0, 1}, SG_DIMS(2, 2));
    ck_assert_int_eq(sg_dtype_of(idx), SG_FLOAT64);
    sg_tensor *y = sg_gather(x, 1, idx);
    static const float wy[] = {12, 12, 20, 21};
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(sg_data(y)[i], wy[i]);
    /* its gradient is the scatter-add: index 2 of row 0 taken twice */
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_mul(y, sg_from_data((float[]){1, 2, 3, 4}, SG_DIMS(2, 2)))), NULL), 0);
    assert_grad(x, (const float[]){0, 0, 3, 3, 4, 0}, 6);
    /* float64 values are copied exactly (and a float32 index serves them) */
    sg_tensor *g64 = sg_gather(T64(0.1, 1e-300, -7), 0, sg_from_data((float[]){1, 0, 1}, SG_DIMS(3)));
    ck_assert(sg_data64(g64)[0] == 1e-300 && sg_data64(g64)[1] == 0.1 && sg_data64(g64)[2] == 1e-300);
    /* scatter_add, float64: repeated indices add up */
    sg_tensor *base = sg_from_data64((double[]){1, 1, 1}, SG_DIMS(3));
    sg_tensor *sa = sg_scatter_add(base, 0, sg_from_ints((int[]){2, 0, 2}, SG_DIMS(3)), T64(0.5, 0.25, 1e-16));
    ck_assert(sg_data64(sa)[0] == 1.25 && sg_data64(sa)[1] == 1 && sg_data64(sa)[2] == 1.5 + 1e-16);
    ck_assert(sg_data64(base)[0] == 1); /* base untouched */
    /* take: an embedding lookup, W (4,2)[ids (2,3)] -> (2,3,2); a row taken
     * twice gets both gradients */
    sg_tensor *W = sg_param(sg_from_data((float[]){0, 1, 10, 11, 20, 21, 30, 31}, SG_DIMS(4, 2)));
    sg_tensor *ids = sg_from_ints((int[]){3, 0, 3, 1, 1, 1}, SG_DIMS(2, 3));
    sg_tensor *e = sg_take(W, 0, ids);
    ck_assert_int_eq(sg_ndim(e), 3);
    ck_assert_int_eq(sg_dim(e, 0), 2);
    ck_assert_int_eq(sg_dim(e, 1), 3);
    ck_assert_int_eq(sg_dim(e, 2), 2);
    ck_assert_float_eq(sg_data(e)[0], 30.f);
    ck_assert_float_eq(sg_data(e)[5], 31.f);
    ck_assert_float_eq(sg_data(e)[11], 11.f);
    ck_assert_int_eq(sg_backward(sg_sum_all(e), NULL), 0);
    assert_grad(W, (const float[]){1, 1, 3, 3, 0, 0, 2, 2}, 8);
    /* take along a middle axis, and a 0-d index drops the axis */
    sg_tensor *m = sg_from_data((float[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, SG_DIMS(2, 3, 2));
    sg_tensor *t1 = sg_take(m, 1, sg_from_ints((int[]){2, 0}, SG_DIMS(2)));
    ck_assert_int_eq(sg_dim(t1, 1), 2);
    ck_assert_float_eq(sg_data(t1)[0], 5.f);
    ck_assert_float_eq(sg_data(t1)[2], 1.f);
    ck_assert_float_eq(sg_data(t1)[4], 11.f);
    sg_tensor *t0 = sg_take(m, -1, sg_from_ints((int[]){1}, 0, NULL));
    ck_assert_int_eq(sg_ndim(t0), 2);
    ck_assert_float_eq(sg_data(t0)[5], 12.f);
    ck_assert(!sg_has_error());
}
END_TEST

static sg_tensor *f_embed(sg_tensor *const *in, int n, void *ctx)
{
    (void)n;
    return sg_take(in[0], 0, ctx);
}

static sg_tensor *f_embed_sq(sg_tensor *const *in, int n, void *ctx)
{
    sg_tensor *e = f_embed(in, n, ctx);
    return sg_mul(e, e); /* take is linear: its second order shows through a square */
}

START_TEST(test_embedding_gradcheck)
{
    sg_tensor *W = sg_param(sg_uniform(NULL, -1, 1, SG_DIMS(5, 3)));
    sg_tensor *ids = sg_from_ints((int[]){4, 0, 4, 2}, SG_DIMS(2, 2));
    sg_gradcheck_report r;
    ck_assert_msg(sg_gradcheck(f_embed, &W, 1, ids, NULL, &r), "%s", r.message);
    ck_assert_msg(sg_gradgradcheck(f_embed_sq, &W, 1, ids, NULL, &r), "%s", r.message);
}
END_TEST

START_TEST(test_index_errors)
{
    sg_tensor *x = sg_ones(SG_DIMS(2, 5));
    ck_assert_ptr_null(sg_gather(x, 1, sg_from_data((float[]){-1, 0}, SG_DIMS(2, 1))));
    assert_error("gather: index -1 at position 0 of the index (2,1) is out of range for axis 1 of size 5");
    ck_assert_ptr_null(sg_gather(x, 1, sg_from_data((float[]){NAN, 0}, SG_DIMS(2, 1))));
    assert_error("is not a whole number");
    ck_assert_ptr_null(sg_gather(x, 0, sg_from_ints((int[]){0, 1}, SG_DIMS(1, 2))));
    assert_error("gather: index (1,2) must have the rank and the dims of x (2,5) except on axis 0");
    ck_assert_ptr_null(sg_gather(x, 2, sg_from_ints((int[]){0, 0}, SG_DIMS(2, 1))));
    assert_error("gather: axis 2 is out of range for (2,5)");
    ck_assert_ptr_null(sg_gather(x, 1, sg_param(sg_zeros(SG_DIMS(2, 1)))));
    assert_error("gather: the index (2,1) requires a gradient, but indices are not differentiable");
    ck_assert_ptr_null(sg_scatter_add(x, 0, sg_from_ints((int[]){0, 1}, SG_DIMS(1, 2)), sg_ones(SG_DIMS(1, 3))));
    assert_error("scatter_add: index (1,2) must have the rank and the dims of base (2,5) except on axis 0");
    ck_assert_ptr_null(sg_scatter_add(x, 0, sg_from_ints((int[]){0, 1, 0, 1, 2}, SG_DIMS(1, 5)),
                                      sg_ones(SG_DIMS(1, 5))));
    assert_error("scatter_add: index 2 at position 4 of the index (1,5) is out of range for axis 0 of size 2");
    ck_assert_ptr_null(sg_take(x, 0, sg_from_ints((int[]){3}, SG_DIMS(1))));
    assert_error("take: index 3 at position 0 of the index (1) is out of range for axis 0 of size 2");
    ck_assert_ptr_null(sg_take(sg_ones(SG_DIMS(1, 1, 1, 1, 1, 1, 1, 2)), 7, sg_from_ints((int[]){0, 1}, SG_DIMS(2, 1))));
    assert_error("take: x (1,1,1,1,1,1,1,2) and index (2,1) give 9 dims (at most 8)");
    ck_assert_ptr_null(sg_from_ints(NULL, SG_DIMS(2)));
    assert_error("from_ints: NULL data for 2 elements");
}
END_TEST

/* Integer-label cross-entropy picks with gather: the same loss and gradient
 * as the one-hot form. */
START_TEST(test_labels_loss_by_gather)
{
    sg_tensor *x = sg_param(sg_from_data((float[]){0.2f, -1, 3, 0.5f, 0.5f, 2, -0.3f, 1, 0}, SG_DIMS(3, 3)));
    const int labels[3] = {2, 0, 1};
    sg_tensor *l1 = sg_softmax_cross_entropy_labels(x, labels, 3);
    sg_tensor *l2 = sg_softmax_cross_entropy(x, sg_one_hot(labels, 3, 3));
    ck_assert_float_eq_tol(sg_item(l1), sg_item(l2), 1e-6f);
    sg_tensor *g1, *g2;
    ck_assert_int_eq(sg_grad_of(l1, &x, 1, &g1, NULL), 0);
    ck_assert_int_eq(sg_grad_of(l2, &x, 1, &g2, NULL), 0);
    for (int i = 0; i < 9; i++)
        ck_assert_float_eq_tol(sg_data(g1)[i], sg_data(g2)[i], 1e-7f);
    /* the graph has a gather node and no (3,3) one-hot */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    sg_trace(f, l1);
    fclose(f);
    ck_assert_msg(strstr(text, "= gather(") != NULL, "%s", text);
    free(text);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* matmul with a 1-D operand (NumPy's rules) */

static sg_tensor *f_mm(sg_tensor *const *in, int n, void *ctx)
{
    (void)n, (void)ctx;
    return sg_matmul(in[0], in[1]);
}

START_TEST(test_matmul_vector)
{
    sg_tensor *v = sg_param(T32(1, 2, 3)), *M = sg_param(sg_from_data((float[]){1, 0, 0, 1, 2, 2}, SG_DIMS(3, 2)));
    sg_tensor *vm = sg_matmul(v, M); /* (3)@(3,2) -> (2) */
    ck_assert_int_eq(sg_ndim(vm), 1);
    ck_assert_float_eq(sg_data(vm)[0], 7.f);
    ck_assert_float_eq(sg_data(vm)[1], 8.f);
    sg_tensor *Mt = sg_from_data((float[]){1, 0, 2, 0, 1, 2}, SG_DIMS(2, 3));
    sg_tensor *mv = sg_matmul(Mt, v); /* (2,3)@(3) -> (2) */
    ck_assert_int_eq(sg_ndim(mv), 1);
    ck_assert_float_eq(sg_data(mv)[0], 7.f);
    sg_tensor *dot = sg_matmul(v, v); /* (3)@(3) -> () */
    ck_assert_int_eq(sg_ndim(dot), 0);
    ck_assert_float_eq(sg_item(dot), 14.f);
    sg_tensor *B = sg_ones(SG_DIMS(4, 3, 2));
    sg_tensor *vb = sg_matmul(v, B); /* (3)@(4,3,2) -> (4,2) */
    ck_assert_int_eq(sg_ndim(vb), 2);
    ck_assert_int_eq(sg_dim(vb, 0), 4);
    ck_assert_float_eq(sg_data(vb)[7], 6.f);
    sg_tensor *bv = sg_matmul(sg_ones(SG_DIMS(4, 2, 3)), v); /* (4,2,3)@(3) -> (4,2) */
    ck_assert_int_eq(sg_dim(bv, 1), 2);
    ck_assert_float_eq(sg_matmul_t(Mt, v, false, true) ? 1.f : 0.f, 1.f); /* a vector's flag is ignored */
    /* gradients */
    ck_assert_int_eq(sg_backward(dot, NULL), 0);
    assert_grad(v, (const float[]){2, 4, 6}, 3);
    sg_gradcheck_report r;
    sg_tensor *a = sg_param(sg_uniform(NULL, -1, 1, SG_DIMS(3))), *b = sg_param(sg_uniform(NULL, -1, 1, SG_DIMS(2, 3, 2)));
    ck_assert_msg(sg_gradcheck(f_mm, (sg_tensor *[]){a, b}, 2, NULL, NULL, &r), "%s", r.message);
    ck_assert_msg(sg_gradcheck(f_mm, (sg_tensor *[]){M, v}, 2, NULL, NULL, &r) == false, "(3,2)@(3) must fail");
    sg_clear_error();
    ck_assert_msg(sg_gradgradcheck(f_mm, (sg_tensor *[]){sg_param(sg_uniform(NULL, -1, 1, SG_DIMS(2, 3))), a}, 2,
                                   NULL, NULL, &r),
                  "%s", r.message);
    ck_assert_msg(sg_gradcheck(f_mm, (sg_tensor *[]){a, a}, 2, NULL, NULL, &r), "%s", r.message);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Batch norm's options */

START_TEST(test_batch_norm_options)
{
    sg_tensor *x = sg_from_data((float[]){1, 5, 2, 5, 3, 5, 6, 5}, SG_DIMS(4, 2));
    sg_batch_norm_opts d = sg_batch_norm_defaults();
    ck_assert(d.training && !d.running_mean && !d.running_var);
    ck_assert(d.momentum == 0.1 && d.eps == 1e-5);
    sg_tensor *y1 = sg_batch_norm(x, NULL, NULL, NULL), *y2 = sg_batch_norm(x, NULL, NULL, &d);
    ck_assert_ptr_nonnull(y1);
    for (int i = 0; i < 8; i++)
        ck_assert(sg_data(y1)[i] == sg_data(y2)[i]);
    ck_assert_float_eq_tol(sg_data(y1)[0], (float)(-2.0 / sqrt(3.5 + 1e-5)), 1e-6f);
    sg_tensor *rm = sg_zeros(SG_DIMS(2)), *rv = sg_ones(SG_DIMS(2));
    d.running_mean = rm;
    d.running_var = rv;
    d.momentum = 0.5;
    ck_assert_ptr_nonnull(sg_batch_norm(x, NULL, NULL, &d));
    ck_assert_float_eq_tol(sg_data(rm)[0], 1.5f, 1e-6f);
    sg_batch_norm_opts zero = {0}; /* eps 0 is refused, not taken as a default */
    ck_assert_ptr_null(sg_batch_norm(x, NULL, NULL, &zero));
    assert_error("batch_norm: eps 0 must be > 0");
}
END_TEST

/* ------------------------------------------------------------------------- */
/* create_graph keeps the graph: the double-backward pattern through sg_grad */

START_TEST(test_double_backward_exp_tanh)
{
    /* y = sum(exp(x)); backward with create_graph; then backward of
     * sum(grad(x)^2): d/dx sum(exp(x)^2) = 2 exp(2x) */
    sg_tensor *x = sg_param(T32(0.5f, -1));
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_exp(x)), &(sg_backward_opts){.create_graph = true}), 0);
    sg_tensor *gx = sg_grad(x);
    sg_tensor *z = sg_sum_all(sg_mul(gx, gx));
    sg_zero_grad(x);
    ck_assert_msg(sg_backward(z, NULL) == 0, "%s", sg_last_error());
    for (int i = 0; i < 2; i++) {
        double v = sg_data(x)[i];
        ck_assert_float_eq_tol(sg_grad_data(x)[i], 2 * exp(2 * v), 1e-5 * 2 * exp(2 * v));
    }
    /* tanh: d/dx (1 - tanh^2)^2 summed = -4 tanh (1 - tanh^2)^2 */
    sg_tensor *t = sg_param(T32(0.3f, -0.8f));
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_tanh(t)), &(sg_backward_opts){.create_graph = true}), 0);
    sg_tensor *gt = sg_grad(t);
    sg_tensor *zt = sg_sum_all(sg_mul(gt, gt));
    sg_zero_grad(t);
    ck_assert_msg(sg_backward(zt, NULL) == 0, "%s", sg_last_error());
    for (int i = 0; i < 2; i++) {
        double th = tanh(sg_data(t)[i]), want = -4 * th * (1 - th * th) * (1 - th * th);
        ck_assert_float_eq_tol(sg_grad_data(t)[i], want, 1e-5);
    }
    /* release_graph asks for the old behaviour: the second backward fails,
     * naming the node with its article */
    sg_tensor *u = sg_param(T32(0.5f));
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_exp(u)), &(sg_backward_opts){.create_graph = true, .release_graph = true}), 0);
    sg_tensor *gu = sg_grad(u);
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_mul(gu, gu)), NULL), -1);
    assert_error("backward: the graph through an exp node was already released");
    sg_tensor *w = sg_param(T32(0.5f));
    sg_tensor *yw = sg_sum_all(sg_tanh(w));
    ck_assert_int_eq(sg_backward(yw, NULL), 0);
    ck_assert_int_eq(sg_backward(yw, NULL), -1);
    assert_error("backward: the graph through a tanh node was already released");
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_exp(w)), &(sg_backward_opts){.retain_graph = true, .release_graph = true}), -1);
    assert_error("backward: retain_graph and release_graph are both set");
    /* sg_grad_of keeps the graph unless told */
    sg_tensor *yo = sg_sum_all(sg_exp(w)), *go;
    ck_assert_int_eq(sg_grad_of(yo, &w, 1, &go, &(sg_backward_opts){.release_graph = true}), 0);
    ck_assert_int_eq(sg_grad_of(yo, &w, 1, &go, NULL), -1);
    assert_error("an exp node was already released");
}
END_TEST

START_TEST(test_double_backward_mlp)
{
    /* a 2-layer MLP; the gradient-norm penalty |dL/dW1|^2 (double backprop,
     * as in WGAN-GP) differentiated through sg_grad after one backward with
     * create_graph, checked against sg_grad_of's second pass */
    sg_tensor *X = sg_from_data((float[]){0.5f, -1, 2, 0.1f, 0.3f, -0.7f}, SG_DIMS(2, 3));
    sg_tensor *W1 = sg_param(sg_from_data((float[]){0.2f, -0.4f, 0.3f, 0.1f, -0.5f, 0.6f, 0.7f, 0.2f, -0.3f, 0.4f, 0.1f, 0.5f}, SG_DIMS(3, 4)));
    sg_tensor *W2 = sg_param(sg_from_data((float[]){0.3f, -0.2f, 0.5f, 0.4f}, SG_DIMS(4, 1)));
    sg_tensor *L = sg_sum_all(sg_square(sg_matmul(sg_tanh(sg_matmul(X, W1)), W2)));
    ck_assert_int_eq(sg_backward(L, &(sg_backward_opts){.create_graph = true}), 0);
    sg_tensor *P = sg_sum_all(sg_square(sg_grad(W1)));
    sg_zero_grad(W1);
    sg_zero_grad(W2);
    ck_assert_msg(sg_backward(P, NULL) == 0, "%s", sg_last_error());
    /* the same through sg_grad_of twice */
    sg_tensor *L2 = sg_sum_all(sg_square(sg_matmul(sg_tanh(sg_matmul(X, W1)), W2)));
    sg_tensor *g1, *h[2];
    ck_assert_int_eq(sg_grad_of(L2, &W1, 1, &g1, &(sg_backward_opts){.create_graph = true}), 0);
    ck_assert_int_eq(sg_grad_of(sg_sum_all(sg_square(g1)), (sg_tensor *[]){W1, W2}, 2, h, NULL), 0);
    for (int i = 0; i < 12; i++)
        ck_assert_float_eq_tol(sg_grad_data(W1)[i], sg_data(h[0])[i], 1e-6f);
    double n2 = 0;
    for (int i = 0; i < 4; i++) {
        ck_assert_float_eq_tol(sg_grad_data(W2)[i], sg_data(h[1])[i], 1e-6f);
        n2 += fabs(sg_data(h[1])[i]);
    }
    ck_assert(n2 > 1e-3); /* a real second-order term reached W2 */
}
END_TEST

/* ------------------------------------------------------------------------- */
/* User-defined primitives */

/* scale: y = k x (k from ctx); forward records in ctx how often it ran and
 * keeps a tensor it made (the output doubled) for backward to read. */
typedef struct scale_ctx {
    double k;
    int calls;
    sg_tensor *saved;
} scale_ctx;

static sg_tensor *scale_forward(sg_tensor *const *x, int n, void *vctx)
{
    (void)n;
    scale_ctx *c = vctx;
    c->calls++;
    sg_tensor *y = sg_mul_scalar(x[0], c->k);
    ck_assert(!sg_requires_grad(y)); /* recording is off in a forward */
    c->saved = sg_mul_scalar(y, 2.0);
    return y;
}

static void scale_backward(sg_tensor *const *x, int n, sg_tensor *y, sg_tensor *dy, sg_tensor **dx, void *vctx)
{
    (void)x, (void)n, (void)y;
    scale_ctx *c = vctx;
    ck_assert_int_eq(c->calls, 1); /* the node's own copy */
    ck_assert_ptr_nonnull(c->saved);
    dx[0] = sg_mul_scalar(dy, c->k);
}

static const sg_custom_op scale_op = {.name = "scale", .n_inputs = 1, .ctx_size = sizeof(scale_ctx),
                                      .forward = scale_forward, .backward = scale_backward};

START_TEST(test_custom_recorded_traced)
{
    scale_ctx c = {.k = 3.0};
    sg_tensor *x = sg_set_name(sg_param(T32(1, -2)), "x");
    sg_tensor *y = sg_custom_apply(&scale_op, &x, 1, &c);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(c.calls, 0); /* the caller's ctx is copied, not written */
    ck_assert_str_eq(sg_op_name_of(y), "scale");
    ck_assert(sg_has_history(y));
    ck_assert_float_eq(sg_data(y)[1], -6.f);
    c.k = 100; /* changing the caller's copy changes nothing recorded */
    sg_tensor *L = sg_sum_all(sg_mul(y, y));
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    sg_trace(f, L);
    ck_assert_int_eq(sg_write_dot(f, L), 0);
    ck_assert_int_eq(sg_backward(L, &(sg_backward_opts){.trace = f}), 0);
    fclose(f);
    ck_assert_msg(strstr(text, "= scale(x)") && strstr(text, "label=\"scale\"") && strstr(text, "backward scale"),
                  "%s", text);
    free(text);
    assert_grad(x, (const float[]){18, -36}, 2); /* d/dx (3x)^2 = 18x */
    /* no-grad mode: nothing recorded; no input needing a gradient: neither */
    bool was = sg_set_grad_enabled(false);
    ck_assert(!sg_has_history(sg_custom_apply(&scale_op, &x, 1, &c)));
    sg_set_grad_enabled(was);
    ck_assert(!sg_has_history(sg_custom_apply(&scale_op, (sg_tensor *[]){T32(1)}, 1, &c)));
    ck_assert(!sg_has_error());
}
END_TEST

/* identity that returns its input: the node must be a copy */
static sg_tensor *same_forward(sg_tensor *const *x, int n, void *ctx)
{
    (void)n, (void)ctx;
    return x[0];
}
static void pass_backward(sg_tensor *const *x, int n, sg_tensor *y, sg_tensor *dy, sg_tensor **dx, void *ctx)
{
    (void)x, (void)n, (void)y, (void)ctx;
    dx[0] = dy;
}
static sg_tensor *null_forward(sg_tensor *const *x, int n, void *ctx)
{
    (void)x, (void)n, (void)ctx;
    return NULL;
}
static sg_tensor *f64_forward(sg_tensor *const *x, int n, void *ctx)
{
    (void)n, (void)ctx;
    return sg_full_dtype(SG_FLOAT64, 1.0, sg_ndim(x[0]), sg_shape(x[0]));
}
static sg_tensor *failing_forward(sg_tensor *const *x, int n, void *ctx)
{
    (void)n, (void)ctx;
    return sg_reshape(x[0], SG_DIMS(7));
}
static void wrong_shape_backward(sg_tensor *const *x, int n, sg_tensor *y, sg_tensor *dy, sg_tensor **dx, void *ctx)
{
    (void)x, (void)n, (void)y, (void)ctx;
    dx[0] = sg_sum_all(dy);
}

/* y = k x with k a double in ctx (ctx_size 8: the node keeps a copy) */
static sg_tensor *times_forward(sg_tensor *const *x, int n, void *ctx)
{
    (void)n;
    return sg_mul_scalar(x[0], *(double *)ctx);
}
static void times_backward(sg_tensor *const *x, int n, sg_tensor *y, sg_tensor *dy, sg_tensor **dx, void *ctx)
{
    (void)x, (void)n, (void)y;
    dx[0] = sg_mul_scalar(dy, *(double *)ctx);
}
static const sg_custom_op times_op = {.name = "times", .n_inputs = 1, .ctx_size = sizeof(double),
                                      .forward = times_forward, .backward = times_backward};

START_TEST(test_custom_errors_and_ownership)
{
    sg_tensor *x = sg_param(T32(1, 2));
    sg_custom_op same = {.name = "same", .n_inputs = 1, .forward = same_forward, .backward = pass_backward};
    sg_tensor *y = sg_custom_apply(&same, &x, 1, NULL);
    ck_assert(y != x && sg_has_history(y) && !sg_has_history(x)); /* x was not turned into a node */
    ck_assert_str_eq(sg_op_name_of(x), "leaf");
    ck_assert_int_eq(sg_backward(sg_sum_all(y), NULL), 0);
    assert_grad(x, (const float[]){1, 1}, 2);

    sg_custom_op bad = same;
    bad.forward = null_forward;
    ck_assert_ptr_null(sg_custom_apply(&bad, &x, 1, NULL));
    assert_error("same: forward returned NULL");
    bad.forward = failing_forward; /* the forward's own message, naming the op */
    ck_assert_ptr_null(sg_custom_apply(&bad, &x, 1, NULL));
    assert_error("same: cannot reshape (2) (2 elements) into (7)");
    bad.forward = f64_forward;
    ck_assert_ptr_null(sg_custom_apply(&bad, &x, 1, NULL));
    assert_error("same: forward returned a float64 tensor for float32 inputs");
    ck_assert_ptr_null(sg_custom_apply(&same, (sg_tensor *[]){x, x}, 2, NULL));
    assert_error("same: takes 1 inputs, got 2");
    bad = same;
    bad.backward = NULL;
    ck_assert_ptr_null(sg_custom_apply(&bad, &x, 1, NULL));
    assert_error("same: the op descriptor needs a name, n_inputs >= 1 (got 1), a forward and a backward");
    ck_assert_ptr_null(sg_custom_apply(NULL, &x, 1, NULL));
    assert_error("custom_apply: NULL op descriptor");
    ck_assert_ptr_null(sg_custom_apply(&same, (sg_tensor *[]){NULL}, 1, NULL));
    assert_error("same: NULL input");
    sg_custom_op two = {.name = "two", .n_inputs = 2, .forward = same_forward, .backward = pass_backward};
    sg_tensor *mixed = sg_custom_apply(&two, (sg_tensor *[]){x, T64(1, 2)}, 2, NULL); /* promoted */
    ck_assert_msg(mixed && sg_dtype_of(mixed) == SG_FLOAT64, "%s", sg_last_error());
    /* a backward giving the wrong shape is named */
    bad = same;
    bad.backward = wrong_shape_backward;
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_custom_apply(&bad, &x, 1, NULL)), NULL), -1);
    assert_error("same: backward gave a float32 gradient () for input 0, a float32 (2)");

    /* a persistent node (no scope open) owns its context copy: freed by
     * sg_tensor_free (ASan/valgrind would report the leak) */
    int depth = sg_scope_depth();
    for (int i = 0; i < depth; i++)
        sg_scope_end();
    sg_tensor *p = sg_param(sg_ones(SG_DIMS(2)));
    double k = 2;
    sg_tensor *q = sg_custom_apply(&times_op, &p, 1, &k);
    ck_assert(sg_has_history(q));
    ck_assert_float_eq(sg_data(q)[0], 2.f);
    sg_tensor_free(q);
    sg_tensor_free(p);
    for (int i = 0; i < depth; i++)
        sg_scope_begin();
}
END_TEST

/* ------------------------------------------------------------------------- */

static Suite *prims_suite(void)
{
    Suite *s = suite_create("prims");
    TCase *tc = tcase_create("values");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_unary_values);
    tcase_add_test(tc, test_binary_values);
    tcase_add_test(tc, test_scalar_forms_and_axis);
    tcase_add_test(tc, test_edge_derivatives);
    tcase_add_test(tc, test_math_errors);
    tcase_add_test(tc, test_empty);
    suite_add_tcase(s, tc);

    tc = tcase_create("indexing");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_gather_scatter_take);
    tcase_add_test(tc, test_embedding_gradcheck);
    tcase_add_test(tc, test_index_errors);
    tcase_add_test(tc, test_labels_loss_by_gather);
    suite_add_tcase(s, tc);

    tc = tcase_create("forms");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_matmul_vector);
    tcase_add_test(tc, test_batch_norm_options);
    suite_add_tcase(s, tc);

    tc = tcase_create("create_graph");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_double_backward_exp_tanh);
    tcase_add_test(tc, test_double_backward_mlp);
    suite_add_tcase(s, tc);

    tc = tcase_create("custom");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_custom_recorded_traced);
    tcase_add_test(tc, test_custom_errors_and_ownership);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return sg_test_run(prims_suite());
}
