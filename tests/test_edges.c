/*
 * test_edges.c — Check suite "edges": the rules at the edges of the domain
 * (docs/design.md, "## Edges").
 *
 *   - Empty tensors: every op given a zero-size dimension, forward and
 *     backward. A sum over an empty axis is 0, a max over one is an error
 *     naming that axis, everything else gives the empty result of the right
 *     shape (and an empty gradient of the input's shape).
 *   - Derivatives at edge points (0, ±inf, ties, domain edges), up to third
 *     order through create_graph where the op is smooth, with PyTorch's
 *     conventions: pow_backward's 0 for exponent 0, relu'(0) = 0, ties of
 *     max share the gradient evenly, sqrt'(0) = log'(0) = +inf.
 *   - Fast paths: each fused backward (max over rows and windows, relu)
 *     gives the same gradient as its composed general path (create_graph on
 *     vs off). The sizes past 2^24 where a float counter saturates are in
 *     test_edges_slow.c (suite "slow").
 *
 * Inputs are tiny so the suite stays fast under valgrind.
 */
#include "sg_autograd.h"
#include "sg_test.h"
#include "sg_nn.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* sg_batch_norm with its options written out (the old positional order) */
#define BATCH_NORM(x, g, b, rm, rv, tr, mom, e)                                                            \
    sg_batch_norm((x), (g), (b),                                                                           \
                  &(sg_batch_norm_opts){.training = (tr), .running_mean = (rm), .running_var = (rv),       \
                                        .momentum = (mom), .eps = (e)})

/* x has shape (d0, ..., d{nd-1}) */
static bool has_shape(const sg_tensor *x, int nd, const int *shape)
{
    if (!x || sg_ndim(x) != nd)
        return false;
    for (int i = 0; i < nd; i++)
        if (sg_dim(x, i) != shape[i])
            return false;
    return true;
}
#define SHAPE_IS(x, ...) has_shape((x), SG_DIMS(__VA_ARGS__))

/* a parameter of zeros */
static sg_tensor *pzeros(int nd, const int *shape) { return sg_param(sg_zeros(nd, shape)); }
#define PZ(...) pzeros(SG_DIMS(__VA_ARGS__))

/* all of x's values are v */
static bool all_equal(sg_tensor *x, float v)
{
    const float *d = sg_data(x);
    for (size_t i = 0; i < sg_size(x); i++)
        if (d[i] != v)
            return false;
    return true;
}

/* backward of sum(y) into x: x's gradient has x's shape and is all 0 */
static void check_empty_backward(sg_tensor *x, sg_tensor *y)
{
    ck_assert_msg(y != NULL, "forward failed: %s", sg_last_error());
    ck_assert_msg(sg_backward(sg_sum_all(y), NULL) == 0, "backward failed: %s", sg_last_error());
    sg_tensor *g = sg_grad(x);
    ck_assert_ptr_nonnull(g);
    ck_assert(has_shape(g, sg_ndim(x), sg_shape(x)));
    ck_assert(all_equal(g, 0.f));
}

/* the recorded error starts with `prefix` and contains `part`; cleared */
static void check_error(const char *prefix, const char *part)
{
    const char *e = sg_last_error();
    ck_assert_msg(strncmp(e, prefix, strlen(prefix)) == 0, "message \"%s\" does not start with \"%s\"", e,
                  prefix);
    ck_assert_msg(strstr(e, part) != NULL, "message \"%s\" lacks \"%s\"", e, part);
    sg_clear_error();
}

/* ------------------------------------------------------------------------- */
/* Empty tensors: reductions */

START_TEST(test_empty_max_nonempty_axis)
{
    /* the reduced axis has 4 values: NumPy and PyTorch give shape (0,) */
    sg_tensor *x = PZ(0, 4);
    int ax = 1;
    sg_tensor *y = sg_max(x, &ax, 1, false);
    ck_assert_msg(y != NULL, "%s", sg_last_error());
    ck_assert(SHAPE_IS(y, 0));
    ck_assert(SHAPE_IS(sg_max(x, &ax, 1, true), 0, 1));
    check_empty_backward(x, y);
    /* (2, 0, 3) over axis 2: (2, 0) */
    sg_tensor *z = PZ(2, 0, 3);
    ax = 2;
    ck_assert(SHAPE_IS(sg_max(z, &ax, 1, false), 2, 0));
}
END_TEST

START_TEST(test_empty_max_empty_axis)
{
    /* over an empty axis there is no maximum: an error naming that axis */
    sg_tensor *x = PZ(0, 4);
    int ax = 0;
    ck_assert_ptr_null(sg_max(x, &ax, 1, false));
    check_error("max:", "axis 0 of (0,4) is empty");
    ck_assert_ptr_null(sg_max(x, NULL, 0, false));
    check_error("max:", "axis 0 of (0,4) is empty");
    sg_tensor *w = PZ(4, 0);
    ax = -1;
    ck_assert_ptr_null(sg_max(w, &ax, 1, true));
    check_error("max:", "axis 1 of (4,0) is empty");
}
END_TEST

START_TEST(test_empty_sum_mean)
{
    /* a sum over an empty axis is 0 */
    sg_tensor *x = PZ(0, 4);
    int ax0 = 0, ax1 = 1;
    sg_tensor *s0 = sg_sum(x, &ax0, 1, false);
    ck_assert(SHAPE_IS(s0, 4));
    ck_assert(all_equal(s0, 0.f));
    ck_assert(SHAPE_IS(sg_sum(x, &ax1, 1, false), 0));
    sg_tensor *all = sg_sum_all(x);
    ck_assert(all && sg_ndim(all) == 0);
    ck_assert_float_eq(sg_item(all), 0.f);
    check_empty_backward(x, s0);
    /* a mean over an empty axis is 0/0 = NaN (PyTorch's too) */
    sg_tensor *m = sg_mean(x, &ax0, 1, false);
    ck_assert(SHAPE_IS(m, 4));
    ck_assert(isnan(sg_data(m)[0]));
    ck_assert(SHAPE_IS(sg_mean(x, &ax1, 1, true), 0, 1));
    /* sum_to of an empty tensor */
    sg_tensor *t = sg_sum_to(PZ(3, 0, 4), 2, (int[]){1, 4});
    ck_assert(SHAPE_IS(t, 1, 4));
    ck_assert(all_equal(t, 0.f));
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Empty tensors: shape ops */

START_TEST(test_empty_flatten)
{
    /* (0, 3, 4) flattens to (0, 12), not (0, 0) */
    sg_tensor *x = PZ(0, 3, 4);
    sg_tensor *y = sg_flatten(x);
    ck_assert_msg(SHAPE_IS(y, 0, 12), "flatten gave %d dims", y ? sg_ndim(y) : -1);
    check_empty_backward(x, y);
    ck_assert(SHAPE_IS(sg_flatten(PZ(2, 0, 4)), 2, 0));
    ck_assert(SHAPE_IS(sg_flatten(PZ(0)), 0, 1));
    /* rows too long for an int cannot exist: an empty tensor's nonzero dims
     * obey the element limit too (docs/design.md, Sizes), so the longest
     * row flattens exactly */
    ck_assert_ptr_null(sg_zeros(SG_DIMS(0, 1 << 30, 1 << 30)));
    check_error("zeros:", "nonzero dims multiply to 1152921504606846976");
    ck_assert(SHAPE_IS(sg_flatten(sg_zeros(SG_DIMS(0, 65536, 32767))), 0, 2147418112));
    ck_assert(SHAPE_IS(sg_flatten(sg_zeros(SG_DIMS(0, 1 << 30, 1, 0))), 0, 0));
}
END_TEST

START_TEST(test_empty_shape_ops)
{
    sg_tensor *x = PZ(0, 4);
    ck_assert(SHAPE_IS(sg_reshape(x, SG_DIMS(-1, 2)), 0, 2));
    ck_assert(SHAPE_IS(sg_reshape(x, SG_DIMS(4, 0, 1)), 4, 0, 1));
    /* -1 next to a 0 could be anything: an error, as in PyTorch */
    ck_assert_ptr_null(sg_reshape(x, SG_DIMS(0, -1)));
    check_error("reshape:", "(0,-1)");
    check_empty_backward(x, sg_transpose(x));
    ck_assert(SHAPE_IS(sg_transpose(x), 4, 0));
    sg_tensor *p = PZ(2, 0, 3);
    ck_assert(SHAPE_IS(sg_permute(p, (int[]){2, 0, 1}, 3), 3, 2, 0));
    check_empty_backward(p, sg_permute(p, (int[]){2, 0, 1}, 3));
    sg_tensor *s = PZ(0, 4);
    ck_assert(SHAPE_IS(sg_slice(s, 1, 1, 3), 0, 2));
    check_empty_backward(s, sg_slice(s, 1, 1, 3));
    sg_tensor *e = PZ(3, 4); /* an empty slice of a non-empty tensor: zero gradient */
    ck_assert(SHAPE_IS(sg_slice(e, 0, 2, 2), 0, 4));
    check_empty_backward(e, sg_slice(e, 0, 2, 2));
    sg_tensor *c = PZ(0, 4);
    sg_tensor *cc = sg_concat((sg_tensor *[]){c, c}, 2, 0);
    ck_assert(SHAPE_IS(cc, 0, 4));
    check_empty_backward(c, cc);
    sg_tensor *d = PZ(2, 3), *d0 = PZ(2, 0); /* concat with an empty part */
    sg_tensor *dc = sg_concat((sg_tensor *[]){d0, d, d0}, 3, 1);
    ck_assert(SHAPE_IS(dc, 2, 3));
    check_empty_backward(d0, dc);
    sg_tensor *b = PZ(0, 4);
    ck_assert(SHAPE_IS(sg_broadcast_to(b, SG_DIMS(2, 0, 4)), 2, 0, 4));
    check_empty_backward(b, sg_broadcast_to(b, SG_DIMS(2, 0, 4)));
    /* a (4) broadcast to (0, 4): its gradient is a sum over 0 rows, 0 */
    sg_tensor *r = sg_param(sg_ones(SG_DIMS(4)));
    check_empty_backward(r, sg_broadcast_to(r, SG_DIMS(0, 4)));
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Empty tensors: elementwise */

START_TEST(test_empty_elementwise)
{
    sg_tensor *(*un[])(sg_tensor *) = {sg_neg, sg_exp, sg_log, sg_relu, sg_sqrt, sg_square, sg_sigmoid, sg_tanh,
                                       sg_identity, sg_step};
    for (size_t i = 0; i < sizeof un / sizeof un[0]; i++) {
        sg_tensor *x = PZ(0, 4);
        sg_tensor *y = un[i](x);
        ck_assert_msg(SHAPE_IS(y, 0, 4), "unary %zu: %s", i, sg_last_error());
        if (un[i] != sg_step)
            check_empty_backward(x, y);
    }
    sg_tensor *(*bin[])(sg_tensor *, sg_tensor *) = {sg_add, sg_sub, sg_mul, sg_div};
    for (size_t i = 0; i < sizeof bin / sizeof bin[0]; i++) {
        sg_tensor *a = PZ(0, 4), *b = sg_param(sg_ones(SG_DIMS(4)));
        sg_tensor *y = bin[i](a, b);
        ck_assert(SHAPE_IS(y, 0, 4));
        check_empty_backward(a, y);
        ck_assert(SHAPE_IS(sg_grad(b), 4)); /* summed over 0 rows: 0 */
        ck_assert(all_equal(sg_grad(b), 0.f));
        /* (0, 1) with (1, 3) broadcasts to (0, 3) */
        ck_assert(SHAPE_IS(bin[i](PZ(0, 1), PZ(1, 3)), 0, 3));
    }
    sg_tensor *x = PZ(0, 2);
    ck_assert(SHAPE_IS(sg_pow(x, 3.f), 0, 2));
    check_empty_backward(x, sg_add_scalar(sg_mul_scalar(sg_pow(x, 0.f), 2.f), 1.f));
    ck_assert(SHAPE_IS(sg_leaky_relu(PZ(0, 3), 0.1f), 0, 3));
    ck_assert(SHAPE_IS(sg_gt(PZ(0, 3), sg_scalar(0.f)), 0, 3));
    ck_assert(SHAPE_IS(sg_eq(PZ(0, 3), sg_scalar(0.f)), 0, 3));
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Empty tensors: products */

START_TEST(test_empty_matmul)
{
    /* K = 0: a sum of no products, zeros of (M, N) */
    sg_tensor *a = PZ(3, 0), *b = PZ(0, 5);
    sg_tensor *y = sg_matmul(a, b);
    ck_assert(SHAPE_IS(y, 3, 5));
    ck_assert(all_equal(y, 0.f));
    check_empty_backward(a, y);
    ck_assert(SHAPE_IS(sg_grad(b), 0, 5));
    /* M = 0: dB is a sum over no rows, 0 */
    sg_tensor *a2 = PZ(0, 3), *b2 = sg_param(sg_ones(SG_DIMS(3, 5)));
    check_empty_backward(a2, sg_matmul(a2, b2));
    ck_assert(SHAPE_IS(sg_grad(b2), 3, 5));
    ck_assert(all_equal(sg_grad(b2), 0.f));
    /* transposed flags */
    ck_assert(SHAPE_IS(sg_matmul_t(PZ(0, 3), PZ(5, 0), true, true), 3, 5));
    /* a batch times a shared matrix with K = 0 (divided by K = 0 before) */
    sg_tensor *a3 = PZ(2, 3, 0), *b3 = PZ(0, 5);
    sg_tensor *y3 = sg_matmul(a3, b3);
    ck_assert(SHAPE_IS(y3, 2, 3, 5));
    ck_assert(all_equal(y3, 0.f));
    check_empty_backward(a3, y3);
    ck_assert(SHAPE_IS(sg_grad(b3), 0, 5));
    /* an empty batch */
    sg_tensor *a4 = PZ(0, 2, 3), *b4 = sg_param(sg_ones(SG_DIMS(3, 5)));
    ck_assert(SHAPE_IS(sg_matmul(a4, b4), 0, 2, 5));
    check_empty_backward(a4, sg_matmul(a4, b4));
    ck_assert(all_equal(sg_grad(b4), 0.f));
    /* a shared matrix times a batch, K = 0 */
    sg_tensor *a5 = PZ(3, 0), *b5 = PZ(2, 0, 5);
    ck_assert(SHAPE_IS(sg_matmul(a5, b5), 2, 3, 5));
    check_empty_backward(a5, sg_matmul(a5, b5));
    /* addmm with K = 0 is c broadcast; dc = sum of dy */
    sg_tensor *c = sg_param(sg_full(2.f, SG_DIMS(5)));
    sg_tensor *z = sg_addmm(c, PZ(4, 0), PZ(0, 5));
    ck_assert(SHAPE_IS(z, 4, 5));
    ck_assert(all_equal(z, 2.f));
    ck_assert_int_eq(sg_backward(sg_sum_all(z), NULL), 0);
    ck_assert(all_equal(sg_grad(c), 4.f));
    /* the same with a batch and a shared b (one product of the batch) */
    sg_tensor *c2 = sg_param(sg_full(2.f, SG_DIMS(5))), *a6 = PZ(2, 4, 0), *b6 = PZ(0, 5);
    sg_tensor *z2 = sg_addmm(c2, a6, b6);
    ck_assert(SHAPE_IS(z2, 2, 4, 5));
    ck_assert(all_equal(z2, 2.f));
    ck_assert_int_eq(sg_backward(sg_sum_all(z2), NULL), 0);
    ck_assert(all_equal(sg_grad(c2), 8.f));
    ck_assert(SHAPE_IS(sg_grad(a6), 2, 4, 0) && SHAPE_IS(sg_grad(b6), 0, 5));
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Empty tensors: activations, layers, losses */

START_TEST(test_empty_softmax)
{
    /* a batch of 0 rows of 10 classes: (0, 10), no "max:" error */
    sg_tensor *x = PZ(0, 10);
    sg_tensor *y = sg_softmax(x);
    ck_assert_msg(SHAPE_IS(y, 0, 10), "%s", sg_last_error());
    check_empty_backward(x, y);
    sg_tensor *x2 = PZ(0, 10);
    sg_tensor *l = sg_log_softmax(x2);
    ck_assert_msg(SHAPE_IS(l, 0, 10), "%s", sg_last_error());
    check_empty_backward(x2, l);
    /* an empty class axis has no softmax: the error names softmax */
    ck_assert_ptr_null(sg_softmax(PZ(3, 0)));
    check_error("softmax:", "(3,0)");
    ck_assert_ptr_null(sg_log_softmax(PZ(3, 0)));
    check_error("log_softmax:", "(3,0)");
}
END_TEST

START_TEST(test_empty_layers)
{
    /* linear with N = 0: (0, 5); dW and db are sums over no rows */
    sg_tensor *x = PZ(0, 3), *W = sg_param(sg_ones(SG_DIMS(3, 5))), *b = sg_param(sg_ones(SG_DIMS(5)));
    sg_tensor *y = sg_linear(x, W, b);
    ck_assert(SHAPE_IS(y, 0, 5));
    check_empty_backward(x, y);
    ck_assert(all_equal(sg_grad(W), 0.f) && all_equal(sg_grad(b), 0.f));
    /* conv2d with N = 0 */
    sg_tensor *xc = PZ(0, 1, 4, 4), *Wc = sg_param(sg_ones(SG_DIMS(2, 1, 3, 3)));
    sg_tensor *yc = sg_conv2d(xc, Wc, sg_param(sg_ones(SG_DIMS(2))), 1, 1);
    ck_assert(SHAPE_IS(yc, 0, 2, 4, 4));
    check_empty_backward(xc, yc);
    ck_assert(SHAPE_IS(sg_grad(Wc), 2, 1, 3, 3));
    ck_assert(all_equal(sg_grad(Wc), 0.f));
    /* max pooling with N = 0 or C = 0 (an error from "max:" before) */
    sg_tensor *xp = PZ(0, 1, 4, 4);
    sg_tensor *yp = sg_max_pool2d(xp, 2, 2, 0);
    ck_assert_msg(SHAPE_IS(yp, 0, 1, 2, 2), "%s", sg_last_error());
    check_empty_backward(xp, yp);
    sg_tensor *xq = PZ(2, 0, 4, 4);
    ck_assert(SHAPE_IS(sg_max_pool2d(xq, 2, 2, 0), 2, 0, 2, 2));
    check_empty_backward(xq, sg_max_pool2d(xq, 2, 2, 0));
    sg_tensor *xr = PZ(0, 1, 4, 4); /* overlapping windows: the unfold path */
    ck_assert(SHAPE_IS(sg_max_pool2d(xr, 3, 1, 1), 0, 1, 4, 4));
    check_empty_backward(xr, sg_max_pool2d(xr, 3, 1, 1));
    sg_tensor *xa = PZ(0, 1, 4, 4);
    ck_assert(SHAPE_IS(sg_avg_pool2d(xa, 2, 2, 0), 0, 1, 2, 2));
    check_empty_backward(xa, sg_avg_pool2d(xa, 2, 2, 0));
    sg_tensor *xg = PZ(0, 3, 2, 2);
    ck_assert(SHAPE_IS(sg_global_avg_pool2d(xg), 0, 3));
    check_empty_backward(xg, sg_global_avg_pool2d(xg));
    /* unfold and fold */
    sg_window w = {.kh = 2, .kw = 2, .sh = 1, .sw = 1};
    sg_tensor *xu = PZ(0, 1, 3, 3);
    sg_tensor *cols = sg_unfold(xu, w);
    ck_assert(SHAPE_IS(cols, 0, 4));
    check_empty_backward(xu, cols);
    sg_tensor *cf = PZ(0, 4);
    sg_tensor *f = sg_fold(cf, 0, 1, 3, 3, w);
    ck_assert_msg(SHAPE_IS(f, 0, 1, 3, 3), "%s", sg_last_error());
    check_empty_backward(cf, f);
    /* dropout, residual */
    sg_tensor *xd = PZ(0, 3);
    ck_assert(SHAPE_IS(sg_dropout(xd, 0.5f, true, NULL), 0, 3));
    check_empty_backward(xd, sg_dropout(xd, 0.5f, true, NULL));
    ck_assert(SHAPE_IS(sg_residual_add(xd, xd), 0, 3));
}
END_TEST

START_TEST(test_empty_batch_norm)
{
    sg_tensor *rm = sg_zeros(SG_DIMS(3)), *rv = sg_ones(SG_DIMS(3));
    /* evaluation normalises each row with the running statistics: (0, 3) */
    sg_tensor *x = PZ(0, 3);
    sg_tensor *y = BATCH_NORM(x, NULL, NULL, rm, rv, false, 0.1f, 1e-5f);
    ck_assert(SHAPE_IS(y, 0, 3));
    check_empty_backward(x, y);
    sg_tensor *x4 = PZ(0, 3, 2, 2);
    ck_assert(SHAPE_IS(BATCH_NORM(x4, NULL, NULL, rm, rv, false, 0.1f, 1e-5f), 0, 3, 2, 2));
    /* training has no batch statistics over 0 rows: an error naming
     * batch_norm (PyTorch: "Expected more than 1 value per channel") */
    ck_assert_ptr_null(BATCH_NORM(PZ(0, 3), NULL, NULL, rm, rv, true, 0.1f, 1e-5f));
    check_error("batch_norm:", "(0,3)");
    ck_assert(all_equal(rm, 0.f) && all_equal(rv, 1.f)); /* running stats untouched */
}
END_TEST

START_TEST(test_empty_losses)
{
    /* a sum over no elements is 0 */
    sg_tensor *y = PZ(0, 4);
    sg_tensor *l = sg_sum_squares_loss(y, sg_zeros(SG_DIMS(0, 4)));
    ck_assert(l && sg_item(l) == 0.f);
    check_empty_backward(y, l);
    /* a mean over no samples is undefined: an error naming the loss */
    ck_assert_ptr_null(sg_mse_loss(PZ(0, 4), sg_zeros(SG_DIMS(0, 4))));
    check_error("mse_loss:", "empty");
    ck_assert_ptr_null(sg_cross_entropy(PZ(0, 4), sg_zeros(SG_DIMS(0, 4))));
    check_error("cross_entropy:", "(0,4)");
    ck_assert_ptr_null(sg_softmax_cross_entropy(PZ(0, 4), sg_zeros(SG_DIMS(0))));
    check_error("softmax_cross_entropy:", "(0,4)");
    ck_assert_ptr_null(sg_softmax_cross_entropy_labels(PZ(0, 4), NULL, 0));
    check_error("softmax_cross_entropy_labels:", "(0,4)");
    ck_assert_ptr_null(sg_cross_entropy_labels(PZ(0, 4), NULL, 0));
    check_error("cross_entropy_labels:", "(0,4)");
    ck_assert(SHAPE_IS(sg_one_hot(NULL, 0, 3), 0, 3));
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Derivatives at edge points */

typedef sg_tensor *(*unary_fn)(sg_tensor *);

/* d[k] = the (k+1)-th derivative of sum(f(x)) at x = x0, k < n, each
 * through create_graph. A derivative with no graph left (a constant) ends
 * the chain: its higher ones are 0. */
static void derivs(unary_fn f, float x0, int n, float *d)
{
    sg_tensor *x = sg_param(sg_from_data(&x0, SG_DIMS(1)));
    sg_tensor *y = sg_sum_all(f(x));
    ck_assert_msg(y != NULL, "%s", sg_last_error());
    for (int k = 0; k < n; k++) {
        if (!sg_requires_grad(y)) {
            d[k] = 0.f;
            continue;
        }
        sg_tensor *g = NULL;
        ck_assert_msg(sg_grad_of(y, &x, 1, &g, &(sg_backward_opts){.create_graph = true}) == 0, "order %d: %s",
                      k + 1, sg_last_error());
        d[k] = sg_data(g)[0];
        y = sg_sum_all(g);
    }
}

/* the first n derivatives of f at x0 are want[0..n) (NaN matches NaN,
 * infinities match exactly, finite values within 1e-5 relative) */
static void check_derivs(const char *what, unary_fn f, float x0, int n, const float *want)
{
    float d[4];
    derivs(f, x0, n, d);
    for (int k = 0; k < n; k++) {
        bool ok = isnan(want[k]) ? isnan(d[k])
                  : isinf(want[k]) ? d[k] == want[k]
                                   : fabsf(d[k] - want[k]) <= 1e-5f * (1.f + fabsf(want[k]));
        ck_assert_msg(ok, "%s at %g: derivative %d is %g, expected %g", what, (double)x0, k + 1, (double)d[k],
                      (double)want[k]);
    }
}

static sg_tensor *pow0(sg_tensor *x) { return sg_pow(x, 0.f); }
static sg_tensor *pow1(sg_tensor *x) { return sg_pow(x, 1.f); }
static sg_tensor *pow2(sg_tensor *x) { return sg_pow(x, 2.f); }
static sg_tensor *pow3(sg_tensor *x) { return sg_pow(x, 3.f); }
static sg_tensor *pow_half(sg_tensor *x) { return sg_pow(x, 0.5f); }
static sg_tensor *pow_m1(sg_tensor *x) { return sg_pow(x, -1.f); }

START_TEST(test_deriv_pow_at_zero)
{
    /* PyTorch's pow_backward: 0 for exponent 0 (0 * 0^-1 = NaN before) */
    check_derivs("x^0", pow0, 0.f, 3, (float[]){0.f, 0.f, 0.f});
    check_derivs("x^0", pow0, 2.f, 3, (float[]){0.f, 0.f, 0.f});
    /* one order up: d2/dx2 x = 0, d3/dx3 x^2 = 0 */
    check_derivs("x^1", pow1, 0.f, 3, (float[]){1.f, 0.f, 0.f});
    check_derivs("x^2", pow2, 0.f, 3, (float[]){0.f, 2.f, 0.f});
    check_derivs("x^3", pow3, 0.f, 3, (float[]){0.f, 0.f, 6.f});
    /* sqrt'(0) = +inf (PyTorch's grad / (2 sqrt x)), sqrt''(0) = -inf */
    check_derivs("sqrt", pow_half, 0.f, 2, (float[]){INFINITY, -INFINITY});
    check_derivs("sqrt", pow_half, 4.f, 3, (float[]){0.25f, -1.f / 32.f, 3.f / 256.f});
    /* 1/x at 0: -inf, then +inf... (derivatives of a pole) */
    check_derivs("x^-1", pow_m1, 0.f, 1, (float[]){-INFINITY});
}
END_TEST

START_TEST(test_deriv_pow_negative_base)
{
    /* an integer exponent of a negative base: the usual polynomial */
    check_derivs("x^3", pow3, -2.f, 3, (float[]){12.f, -12.f, 6.f});
    check_derivs("x^2", pow2, -3.f, 3, (float[]){-6.f, 2.f, 0.f});
    /* a fractional exponent of a negative base: NaN, value and derivative */
    float d[1];
    derivs(pow_half, -4.f, 1, d);
    ck_assert(isnan(d[0]));
}
END_TEST

static sg_tensor *log_fn(sg_tensor *x) { return sg_log(x); }
static sg_tensor *exp_fn(sg_tensor *x) { return sg_exp(x); }
static sg_tensor *relu_fn(sg_tensor *x) { return sg_relu(x); }
static sg_tensor *recip_fn(sg_tensor *x) { return sg_div(sg_scalar(1.f), x); }
static sg_tensor *half_over(sg_tensor *x) { return sg_div(x, sg_scalar(0.f)); }
static sg_tensor *sigmoid_fn(sg_tensor *x) { return sg_sigmoid(x); }
static sg_tensor *tanh_fn(sg_tensor *x) { return sg_tanh(x); }
static sg_tensor *leaky_fn(sg_tensor *x) { return sg_leaky_relu(x, 0.1f); }

START_TEST(test_deriv_domain_edges)
{
    /* log'(0) = 1/0 = +inf, log''(0) = -inf (PyTorch: grad / x) */
    check_derivs("log", log_fn, 0.f, 2, (float[]){INFINITY, -INFINITY});
    check_derivs("log", log_fn, 1.f, 3, (float[]){1.f, -1.f, 2.f});
    /* exp overflows to inf, and so do its derivatives (grad * y) */
    check_derivs("exp", exp_fn, 100.f, 3, (float[]){INFINITY, INFINITY, INFINITY});
    check_derivs("exp", exp_fn, -INFINITY, 3, (float[]){0.f, 0.f, 0.f});
    check_derivs("exp", exp_fn, 0.f, 3, (float[]){1.f, 1.f, 1.f});
    /* division by 0: d(1/b)/db = -1/b^2 = -inf; d(a/0)/da = 1/0 = inf */
    check_derivs("1/b", recip_fn, 0.f, 1, (float[]){-INFINITY});
    check_derivs("1/b", recip_fn, 2.f, 3, (float[]){-0.25f, 0.25f, -0.375f});
    check_derivs("a/0", half_over, 1.f, 2, (float[]){INFINITY, 0.f});
}
END_TEST

START_TEST(test_deriv_kinks)
{
    /* relu'(0) = 0 (PyTorch's threshold_backward: x > 0), relu'' = 0 */
    check_derivs("relu", relu_fn, 0.f, 3, (float[]){0.f, 0.f, 0.f});
    check_derivs("relu", relu_fn, 1.f, 3, (float[]){1.f, 0.f, 0.f});
    check_derivs("relu", relu_fn, INFINITY, 2, (float[]){1.f, 0.f});
    /* leaky_relu'(0) = slope (PyTorch: x > 0 ? 1 : slope) */
    check_derivs("leaky_relu", leaky_fn, 0.f, 2, (float[]){0.1f, 0.f});
    /* sigmoid and tanh are smooth at 0 and flat, not NaN, at +-inf */
    check_derivs("sigmoid", sigmoid_fn, 0.f, 3, (float[]){0.25f, 0.f, -0.125f});
    check_derivs("sigmoid", sigmoid_fn, INFINITY, 3, (float[]){0.f, 0.f, 0.f});
    check_derivs("sigmoid", sigmoid_fn, -INFINITY, 3, (float[]){0.f, 0.f, 0.f});
    check_derivs("tanh", tanh_fn, 0.f, 3, (float[]){1.f, 0.f, -2.f});
    check_derivs("tanh", tanh_fn, INFINITY, 3, (float[]){0.f, 0.f, 0.f});
    check_derivs("tanh", tanh_fn, -INFINITY, 3, (float[]){0.f, 0.f, 0.f});
}
END_TEST

START_TEST(test_deriv_max_ties)
{
    /* ties share the gradient evenly (PyTorch's amax / max()), at every
     * order the graph is built: first order, and the gradient's own
     * gradient through create_graph (0: the mask is a constant) */
    float v[] = {1.f, 3.f, 3.f, -INFINITY, 3.f};
    sg_tensor *x = sg_param(sg_from_data(v, SG_DIMS(5)));
    sg_tensor *g = NULL;
    ck_assert_int_eq(sg_grad_of(sg_max(x, NULL, 0, false), &x, 1, &g, &(sg_backward_opts){.create_graph = true}), 0);
    const float third = 1.f / 3.f;
    float want[] = {0.f, third, third, 0.f, third};
    for (int i = 0; i < 5; i++)
        ck_assert_float_eq_tol(sg_data(g)[i], want[i], 1e-7f);
    sg_tensor *g2 = NULL;
    ck_assert_int_eq(sg_grad_of(sg_sum_all(sg_mul(g, x)), &x, 1, &g2, NULL), 0);
    /* d/dx sum(g * x) with g constant in x = g */
    for (int i = 0; i < 5; i++)
        ck_assert_float_eq_tol(sg_data(g2)[i], want[i], 1e-7f);
    /* all -inf: every element is the maximum */
    float m[] = {-INFINITY, -INFINITY};
    sg_tensor *xm = sg_param(sg_from_data(m, SG_DIMS(2)));
    ck_assert_int_eq(sg_backward(sg_max(xm, NULL, 0, false), NULL), 0);
    ck_assert_float_eq(sg_grad_data(xm)[0], 0.5f);
    ck_assert_float_eq(sg_grad_data(xm)[1], 0.5f);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Fast paths agree with the composed general path */

typedef struct {
    sg_tensor *(*f)(sg_tensor *x, void *ctx);
    void *ctx;
} fn_ctx;

/* dx of sum(f(x) * r) with create_graph off (the fused backward) and on
 * (the composition); their values must be equal, bit for bit */
static void check_paths_agree(const char *what, sg_tensor *(*f)(sg_tensor *, void *), void *ctx, int nd,
                              const int *shape, const float *xv, const float *rv)
{
    sg_tensor *g[2];
    for (int create = 0; create < 2; create++) {
        sg_tensor *x = sg_param(sg_from_data(xv, nd, shape));
        sg_tensor *y = f(x, ctx);
        ck_assert_msg(y != NULL, "%s: %s", what, sg_last_error());
        sg_tensor *r = sg_from_data(rv, sg_ndim(y), sg_shape(y));
        ck_assert_int_eq(sg_grad_of(sg_sum_all(sg_mul(y, r)), &x, 1, &g[create],
                                    &(sg_backward_opts){.create_graph = create}),
                         0);
    }
    ck_assert(sg_same_shape(g[0], g[1]));
    for (size_t i = 0; i < sg_size(g[0]); i++) {
        float a = sg_data(g[0])[i], b = sg_data(g[1])[i];
        ck_assert_msg(memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b)),
                      "%s: element %zu: fused %.9g, composed %.9g", what, i, (double)a, (double)b);
    }
}

static sg_tensor *max_last(sg_tensor *x, void *ctx)
{
    int ax = *(int *)ctx;
    return sg_max(x, &ax, 1, false);
}
static sg_tensor *pool(sg_tensor *x, void *ctx)
{
    const int *k = ctx;
    return sg_max_pool2d(x, k[0], k[1], k[2]);
}
static sg_tensor *relu_c(sg_tensor *x, void *ctx)
{
    (void)ctx;
    return sg_relu(x);
}

START_TEST(test_fast_paths_agree)
{
    /* values with ties, zeros, infinities; dy with inf and NaN */
    float xv[48], rv[48];
    for (int i = 0; i < 48; i++) {
        xv[i] = (float)((i * 7) % 5) - 2.f; /* many ties */
        rv[i] = 0.5f + (float)(i % 3);
    }
    xv[5] = INFINITY;
    xv[6] = INFINITY;
    xv[11] = -INFINITY;
    xv[13] = 0.f;
    rv[0] = INFINITY; /* dy inf and NaN on some outputs: 0 * inf = NaN off the maxima, in both paths */
    rv[1] = NAN;
    int last = -1;
    /* rows of 12, of 4 (the straight-line kernel) and of 3 */
    check_paths_agree("max rows of 12", max_last, &last, SG_DIMS(4, 12), xv, rv);
    check_paths_agree("max rows of 4", max_last, &last, SG_DIMS(12, 4), xv, rv);
    check_paths_agree("max rows of 3", max_last, &last, SG_DIMS(16, 3), xv, rv);
    /* windows: 2x2 pooling (straight-line) and 3x3 pooling */
    int k2[] = {2, 2, 0}, k3[] = {3, 3, 0};
    check_paths_agree("max_pool 2x2", pool, k2, SG_DIMS(1, 3, 4, 4), xv, rv);
    check_paths_agree("max_pool 3x3", pool, k3, SG_DIMS(1, 3, 3, 3), xv, rv);
    /* relu at 0, +-inf, NaN, with inf and NaN in dy */
    rv[0] = rv[1] = 1.f;
    xv[20] = NAN;
    rv[3] = INFINITY;
    rv[13] = INFINITY; /* at x = 0: inf * 0 = NaN in both paths */
    rv[14] = NAN;
    check_paths_agree("relu", relu_c, NULL, SG_DIMS(48), xv, rv);
}
END_TEST

static Suite *edges_suite(void)
{
    Suite *s = suite_create("edges");
    struct {
        const char *name;
        const TTest *t;
    } cases[] = {
        {"empty_max_nonempty_axis", test_empty_max_nonempty_axis},
        {"empty_max_empty_axis", test_empty_max_empty_axis},
        {"empty_sum_mean", test_empty_sum_mean},
        {"empty_flatten", test_empty_flatten},
        {"empty_shape_ops", test_empty_shape_ops},
        {"empty_elementwise", test_empty_elementwise},
        {"empty_matmul", test_empty_matmul},
        {"empty_softmax", test_empty_softmax},
        {"empty_layers", test_empty_layers},
        {"empty_batch_norm", test_empty_batch_norm},
        {"empty_losses", test_empty_losses},
        {"deriv_pow_at_zero", test_deriv_pow_at_zero},
        {"deriv_pow_negative_base", test_deriv_pow_negative_base},
        {"deriv_domain_edges", test_deriv_domain_edges},
        {"deriv_kinks", test_deriv_kinks},
        {"deriv_max_ties", test_deriv_max_ties},
        {"fast_paths_agree", test_fast_paths_agree},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, sg_test_setup, sg_test_teardown);
        tcase_add_test(tc, cases[i].t);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void) { return sg_test_run(edges_suite()); }
