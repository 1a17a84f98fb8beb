/*
 * test_nn.c — Check suite for nn/: activations, losses, layers,
 * initialisation, models, and the rule that nn/ holds no backward code.
 *
 * Reference values come from outside the code under test: the book's
 * worked numbers (cross-entropy 0.5108..., sum of squares 0.0975), double
 * precision formulas evaluated here (sigmoid, tanh, softmax), and direct
 * nested-loop convolution and pooling written in this file. Gradients are
 * checked against central differences with sg_gradcheck (default atol 1e-3,
 * rtol 1e-2: float32 forward passes, float64 accumulation).
 */
#include "sg_autograd.h"
#include "sg_datasets.h"
#include "sg_nn.h"

#include <check.h>
#include <dirent.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* sg_batch_norm with its options written out (the old positional order) */
#define BATCH_NORM(x, g, b, rm, rv, tr, mom, e)                                                            \
    sg_batch_norm((x), (g), (b),                                                                           \
                  &(sg_batch_norm_opts){.training = (tr), .running_mean = (rm), .running_var = (rv),       \
                                        .momentum = (mom), .eps = (e)})

/* ------------------------------------------------------------------------- */
/* helpers */

static void setup(void) { sg_clear_error(); }
static void teardown(void)
{
    while (sg_scope_depth() > 0)
        sg_scope_end();
}

#define ERR_HAS(s) ck_assert_msg(strstr(sg_last_error(), (s)) != NULL, "error \"%s\" lacks \"%s\"", sg_last_error(), (s))

#define GRADCHECK(fn, in, n, ctx, opts)                                                        \
    do {                                                                                       \
        sg_gradcheck_report rep_;                                                              \
        bool ok_ = sg_gradcheck((fn), (in), (n), (ctx), (opts), &rep_);                        \
        ck_assert_msg(ok_, "%s: %s (error: %s)", #fn, rep_.message, sg_last_error());          \
    } while (0)

static sg_tensor *randn(sg_rng *rng, int ndim, const int *shape)
{
    return sg_normal(rng, 0.f, 1.f, ndim, shape);
}

/* Normal values pushed at least `gap` away from 0 (for kinks at 0). */
static sg_tensor *randn_away(sg_rng *rng, float gap, int ndim, const int *shape)
{
    sg_tensor *t = randn(rng, ndim, shape);
    float *d = sg_data(t);
    for (size_t i = 0; i < sg_size(t); i++)
        d[i] += d[i] >= 0.f ? gap : -gap;
    return t;
}

/* Distinct values 0.05 apart in a random order (no ties for max pooling). */
static sg_tensor *distinct(sg_rng *rng, int ndim, const int *shape)
{
    sg_tensor *t = sg_zeros(ndim, shape);
    float *d = sg_data(t);
    size_t n = sg_size(t);
    for (size_t i = 0; i < n; i++)
        d[i] = 0.05f * (float)i - 0.025f * (float)n;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = sg_rng_below(rng, (uint32_t)(i + 1));
        float tmp = d[i];
        d[i] = d[j];
        d[j] = tmp;
    }
    return t;
}

static void assert_close(const float *got, const double *want, size_t n, double atol, double rtol)
{
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(got[i] - want[i]) <= atol + rtol * fabs(want[i]), "index %zu: got %.9g, want %.9g", i,
                      (double)got[i], want[i]);
}

static bool all_finite(const float *d, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(d[i]))
            return false;
    return true;
}

/* ------------------------------------------------------------------------- */
/* activations */

static sg_tensor *f_sigmoid(sg_tensor *const *in, int n, void *c) { (void)n, (void)c; return sg_sigmoid(in[0]); }
static sg_tensor *f_tanh(sg_tensor *const *in, int n, void *c) { (void)n, (void)c; return sg_tanh(in[0]); }
static sg_tensor *f_relu(sg_tensor *const *in, int n, void *c) { (void)n, (void)c; return sg_relu(in[0]); }
static sg_tensor *f_leaky(sg_tensor *const *in, int n, void *c) { (void)n, (void)c; return sg_leaky_relu(in[0], 0.1f); }
static sg_tensor *f_softmax(sg_tensor *const *in, int n, void *c) { (void)n, (void)c; return sg_softmax(in[0]); }
static sg_tensor *f_log_softmax(sg_tensor *const *in, int n, void *c) { (void)n, (void)c; return sg_log_softmax(in[0]); }
static sg_tensor *f_identity(sg_tensor *const *in, int n, void *c) { (void)n, (void)c; return sg_mul_scalar(sg_identity(in[0]), 1.f); }

START_TEST(test_step_identity)
{
    sg_scope_begin();
    sg_tensor *x = sg_param(sg_from_data((float[]){-1.f, 0.f, 2.f, 1e-6f}, SG_DIMS(4)));
    sg_tensor *s = sg_step(x);
    ck_assert_ptr_nonnull(s);
    const float want[4] = {0, 0, 1, 1};
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq(sg_data(s)[i], want[i]);
    ck_assert(!sg_requires_grad(s)); /* the step function passes no gradient */
    ck_assert_ptr_eq(sg_identity(x), x);
    ck_assert_ptr_null(sg_step(NULL));
    ck_assert_ptr_null(sg_sigmoid(NULL));
    sg_scope_end();
}
END_TEST

START_TEST(test_sigmoid_tanh_values_and_grads)
{
    sg_scope_begin();
    const float xs[7] = {-100.f, -20.f, -2.f, 0.f, 0.5f, 3.f, 100.f};
    sg_tensor *x = sg_param(sg_from_data(xs, SG_DIMS(7)));
    sg_tensor *s = sg_sigmoid(x), *t = sg_tanh(x);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(t);
    double ws[7], wt[7], gs[7], gt[7];
    for (int i = 0; i < 7; i++) {
        ws[i] = 1.0 / (1.0 + exp(-(double)xs[i]));
        wt[i] = tanh((double)xs[i]);
        gs[i] = ws[i] * (1.0 - ws[i]);
        gt[i] = 1.0 - wt[i] * wt[i];
    }
    assert_close(sg_data(s), ws, 7, 1e-7, 1e-6);
    assert_close(sg_data(t), wt, 7, 1e-7, 1e-6);
    sg_tensor *g[1];
    ck_assert_int_eq(sg_grad_of(sg_sum_all(s), &x, 1, g, NULL), 0);
    ck_assert(all_finite(sg_data(g[0]), 7));
    assert_close(sg_data(g[0]), gs, 7, 1e-7, 1e-5); /* 0.25 exactly at x = 0 */
    ck_assert_float_eq(sg_data(g[0])[3], 0.25f);
    ck_assert_int_eq(sg_grad_of(sg_sum_all(t), &x, 1, g, NULL), 0);
    ck_assert(all_finite(sg_data(g[0]), 7));
    assert_close(sg_data(g[0]), gt, 7, 1e-7, 1e-5); /* 1 exactly at x = 0 */
    ck_assert_float_eq(sg_data(g[0])[3], 1.f);
    sg_scope_end();
}
END_TEST

START_TEST(test_leaky_relu)
{
    sg_scope_begin();
    sg_tensor *x = sg_param(sg_from_data((float[]){-2.f, 0.f, 3.f}, SG_DIMS(3)));
    sg_tensor *y = sg_leaky_relu(x, 0.1f), *g[1];
    ck_assert_float_eq_tol(sg_data(y)[0], -0.2f, 1e-7f);
    ck_assert_float_eq(sg_data(y)[1], 0.f);
    ck_assert_float_eq(sg_data(y)[2], 3.f);
    ck_assert_int_eq(sg_grad_of(sg_sum_all(y), &x, 1, g, NULL), 0);
    ck_assert_float_eq_tol(sg_data(g[0])[0], 0.1f, 1e-7f);
    ck_assert_float_eq_tol(sg_data(g[0])[1], 0.1f, 1e-7f); /* PyTorch: slope at 0 */
    ck_assert_float_eq(sg_data(g[0])[2], 1.f);
    sg_scope_end();
}
END_TEST

START_TEST(test_softmax_stable)
{
    sg_scope_begin();
    /* row 0: the classic overflow case; row 1: large negative values */
    sg_tensor *x = sg_param(sg_from_data((float[]){1010.f, 1000.f, 990.f, -1000.f, -1010.f, -1020.f}, SG_DIMS(2, 3)));
    sg_tensor *y = sg_softmax(x), *ly = sg_log_softmax(x);
    ck_assert_ptr_nonnull(y);
    ck_assert_ptr_nonnull(ly);
    const double want[6] = {9.99954600e-01, 4.53978686e-05, 2.06106005e-09,
                            9.99954600e-01, 4.53978686e-05, 2.06106005e-09};
    assert_close(sg_data(y), want, 6, 1e-12, 1e-5);
    const double lwant[6] = {-4.5400960e-05, -10.0000454, -20.0000454, -4.5400960e-05, -10.0000454, -20.0000454};
    assert_close(sg_data(ly), lwant, 6, 1e-6, 1e-6);
    /* gradients: finite, and d sum(w * softmax) / dx = y (w - sum(w y)) */
    const float w[6] = {1.f, 2.f, 3.f, -1.f, 0.5f, 2.f};
    sg_tensor *r = sg_from_data(w, SG_DIMS(2, 3)), *g[1];
    ck_assert_int_eq(sg_grad_of(sg_sum_all(sg_mul(y, r)), &x, 1, g, NULL), 0);
    ck_assert(all_finite(sg_data(g[0]), 6));
    for (int row = 0; row < 2; row++) {
        double dot = 0;
        for (int j = 0; j < 3; j++)
            dot += w[3 * row + j] * want[3 * row + j];
        for (int j = 0; j < 3; j++) {
            double gw = want[3 * row + j] * (w[3 * row + j] - dot);
            ck_assert_msg(fabs(sg_data(g[0])[3 * row + j] - gw) < 1e-6, "softmax grad %d,%d", row, j);
        }
    }
    ck_assert_int_eq(sg_grad_of(sg_sum_all(sg_mul(ly, r)), &x, 1, g, NULL), 0);
    ck_assert(all_finite(sg_data(g[0]), 6));
    /* extreme inputs: 1e30 and -1e30 in one row */
    sg_tensor *z = sg_param(sg_from_data((float[]){1e30f, -1e30f, 0.f}, SG_DIMS(3)));
    sg_tensor *sz = sg_softmax(z), *lz = sg_log_softmax(z);
    ck_assert(all_finite(sg_data(sz), 3));
    ck_assert(all_finite(sg_data(lz), 3));
    ck_assert_float_eq(sg_data(sz)[0], 1.f);
    ck_assert_int_eq(sg_grad_of(sg_sum_all(sg_mul(sz, sg_from_data(w, SG_DIMS(3)))), &z, 1, g, NULL), 0);
    ck_assert(all_finite(sg_data(g[0]), 3));
    /* errors */
    sg_clear_error();
    ck_assert_ptr_null(sg_softmax(sg_scalar(1.f)));
    ERR_HAS("softmax");
    sg_scope_end();
}
END_TEST

START_TEST(test_activation_gradchecks)
{
    sg_rng rng;
    sg_rng_seed(&rng, 11);
    sg_scope_begin();
    sg_tensor *x = sg_param(randn_away(&rng, 0.05f, SG_DIMS(3, 5)));
    sg_tensor *big = sg_param(sg_mul_scalar(randn(&rng, SG_DIMS(2, 4)), 30.f)); /* wide range */
    sg_tensor *in[1] = {x};
    GRADCHECK(f_sigmoid, in, 1, NULL, NULL);
    GRADCHECK(f_tanh, in, 1, NULL, NULL);
    GRADCHECK(f_relu, in, 1, NULL, NULL);
    GRADCHECK(f_leaky, in, 1, NULL, NULL);
    GRADCHECK(f_softmax, in, 1, NULL, NULL);
    GRADCHECK(f_log_softmax, in, 1, NULL, NULL);
    GRADCHECK(f_identity, in, 1, NULL, NULL);
    sg_set_requires_grad(big, true);
    in[0] = sg_param(sg_copy(big));
    GRADCHECK(f_softmax, in, 1, NULL, NULL);
    GRADCHECK(f_log_softmax, in, 1, NULL, NULL);
    /* second order through the composition (sigmoid'' exists everywhere) */
    in[0] = x;
    sg_gradcheck_report rep;
    ck_assert_msg(sg_gradgradcheck(f_sigmoid, in, 1, NULL, NULL, &rep), "%s", rep.message);
    ck_assert_msg(sg_gradgradcheck(f_log_softmax, in, 1, NULL, NULL, &rep), "%s", rep.message);
    sg_scope_end();
}
END_TEST

/* ------------------------------------------------------------------------- */
/* losses */

static const float book_t[10] = {0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
static const float book_y1[10] = {0.1f, 0.05f, 0.6f, 0.f, 0.05f, 0.1f, 0.f, 0.1f, 0.f, 0.f};
static const float book_y2[10] = {0.1f, 0.05f, 0.1f, 0.f, 0.05f, 0.1f, 0.f, 0.6f, 0.f, 0.f};

START_TEST(test_loss_book_values)
{
    sg_scope_begin();
    sg_tensor *t = sg_from_data(book_t, SG_DIMS(10));
    sg_tensor *y1 = sg_from_data(book_y1, SG_DIMS(10)), *y2 = sg_from_data(book_y2, SG_DIMS(10));
    /* the book, section 4.2 */
    ck_assert_float_eq_tol(sg_item(sg_sum_squares_loss(y1, t)), 0.0975f, 1e-7f);
    ck_assert_float_eq_tol(sg_item(sg_sum_squares_loss(y2, t)), 0.5975f, 1e-6f);
    ck_assert_float_eq_tol(sg_item(sg_cross_entropy(y1, t)), 0.510825457f, 1e-6f);
    ck_assert_float_eq_tol(sg_item(sg_cross_entropy(y2, t)), 2.302584093f, 1e-6f);
    /* the same two as a batch of 2: averaged */
    float yy[20];
    memcpy(yy, book_y1, sizeof book_y1);
    memcpy(yy + 10, book_y2, sizeof book_y2);
    sg_tensor *yb = sg_from_data(yy, SG_DIMS(2, 10));
    const int labels[2] = {2, 2};
    const float mean = (0.510825457f + 2.302584093f) / 2;
    ck_assert_float_eq_tol(sg_item(sg_cross_entropy(yb, sg_one_hot(labels, 2, 10))), mean, 1e-6f);
    ck_assert_float_eq_tol(sg_item(sg_cross_entropy_labels(yb, labels, 2)), mean, 1e-6f);
    ck_assert_float_eq_tol(sg_item(sg_cross_entropy(yb, sg_from_data((float[]){2, 2}, SG_DIMS(2)))), mean, 1e-6f);
    ck_assert_float_eq_tol(sg_item(sg_cross_entropy(y1, sg_scalar(2.f))), 0.510825457f, 1e-6f);
    /* MSE: mean of (0, 1, 4) */
    sg_tensor *a = sg_from_data((float[]){1, 2, 3}, SG_DIMS(3)), *b = sg_ones(SG_DIMS(3));
    ck_assert_float_eq_tol(sg_item(sg_mse_loss(a, b)), 5.f / 3.f, 1e-6f);
    sg_scope_end();
}
END_TEST

START_TEST(test_softmax_cross_entropy_values)
{
    sg_scope_begin();
    sg_tensor *x = sg_param(sg_from_data((float[]){1, 2, 3, 1, 1, 1}, SG_DIMS(2, 3)));
    const int labels[2] = {2, 0};
    /* (log(1 + e^-1 + e^-2) + log 3) / 2 */
    sg_tensor *l1 = sg_softmax_cross_entropy_labels(x, labels, 2);
    sg_tensor *l2 = sg_softmax_cross_entropy(x, sg_one_hot(labels, 2, 3));
    sg_tensor *l3 = sg_softmax_cross_entropy(x, sg_from_data((float[]){2, 0}, SG_DIMS(2)));
    ck_assert_float_eq_tol(sg_item(l1), 0.7531091266f, 1e-6f);
    ck_assert_float_eq_tol(sg_item(l2), 0.7531091266f, 1e-6f);
    ck_assert_float_eq_tol(sg_item(l3), 0.7531091266f, 1e-6f);
    /* the book's softmax-with-loss backward: (y - t) / N */
    sg_tensor *g[1];
    ck_assert_int_eq(sg_grad_of(l1, &x, 1, g, NULL), 0);
    double e1 = exp(1.0), e2 = exp(2.0), e3 = exp(3.0), s = e1 + e2 + e3;
    const double want[6] = {e1 / s / 2, e2 / s / 2, (e3 / s - 1) / 2, (1.0 / 3 - 1) / 2, 1.0 / 6, 1.0 / 6};
    assert_close(sg_data(g[0]), want, 6, 1e-7, 1e-5);
    /* stable for huge logits */
    sg_tensor *big = sg_param(sg_from_data((float[]){1010, 1000, 990}, SG_DIMS(3)));
    ck_assert_float_eq_tol(sg_item(sg_softmax_cross_entropy_labels(big, (int[]){0}, 1)), 4.54e-5f, 1e-6f);
    ck_assert_float_eq_tol(sg_item(sg_softmax_cross_entropy_labels(big, (int[]){2}, 1)), 20.0000454f, 1e-4f);
    ck_assert_int_eq(sg_grad_of(sg_softmax_cross_entropy_labels(big, (int[]){2}, 1), &big, 1, g, NULL), 0);
    ck_assert(all_finite(sg_data(g[0]), 3));
    ck_assert_float_eq_tol(sg_data(g[0])[2], -1.f, 1e-6f);
    sg_scope_end();
}
END_TEST

START_TEST(test_loss_errors_and_accuracy)
{
    sg_scope_begin();
    sg_tensor *y = sg_from_data((float[]){0.1f, 0.7f, 0.2f, 0.5f, 0.3f, 0.2f}, SG_DIMS(2, 3));
    sg_clear_error();
    ck_assert_ptr_null(sg_cross_entropy_labels(y, (int[]){1, 5}, 2));
    ERR_HAS("label 5 of sample 1");
    sg_clear_error();
    ck_assert_ptr_null(sg_cross_entropy(y, sg_from_data((float[]){1.5f, 0}, SG_DIMS(2))));
    ERR_HAS("not a class index");
    sg_clear_error();
    ck_assert_ptr_null(sg_mse_loss(y, sg_zeros(SG_DIMS(3, 2))));
    ERR_HAS("mse_loss: y (2,3) and t (3,2) differ");
    sg_clear_error();
    ck_assert_ptr_null(sg_softmax_cross_entropy(y, sg_zeros(SG_DIMS(4))));
    ERR_HAS("softmax_cross_entropy");
    sg_clear_error();
    ck_assert_ptr_null(sg_cross_entropy_labels(y, (int[]){0}, 1));
    ERR_HAS("1 labels");
    sg_clear_error();
    ck_assert_ptr_null(sg_one_hot((int[]){3}, 1, 3));
    ERR_HAS("one_hot");
    sg_clear_error();
    /* accuracy: row 0 predicts 1, row 1 predicts 0 */
    ck_assert_float_eq(sg_accuracy(y, sg_from_data((float[]){1, 0}, SG_DIMS(2))), 1.f);
    ck_assert_float_eq(sg_accuracy(y, sg_from_data((float[]){1, 2}, SG_DIMS(2))), 0.5f);
    ck_assert_float_eq(sg_accuracy(y, sg_one_hot((int[]){2, 2}, 2, 3)), 0.f);
    ck_assert(isnan(sg_accuracy(y, sg_zeros(SG_DIMS(5)))));
    sg_scope_end();
}
END_TEST

static sg_tensor *f_ce(sg_tensor *const *in, int n, void *c) { (void)n, (void)c; return sg_cross_entropy(in[0], in[1]); }
static sg_tensor *f_sce(sg_tensor *const *in, int n, void *c) { (void)n, (void)c; return sg_softmax_cross_entropy(in[0], in[1]); }
static sg_tensor *f_sse(sg_tensor *const *in, int n, void *c) { (void)n, (void)c; return sg_sum_squares_loss(in[0], in[1]); }
static sg_tensor *f_mse(sg_tensor *const *in, int n, void *c) { (void)n, (void)c; return sg_mse_loss(in[0], in[1]); }
static sg_tensor *f_ce_labels(sg_tensor *const *in, int n, void *c)
{
    (void)n, (void)c;
    return sg_cross_entropy_labels(in[0], (int[]){0, 3, 4, 1}, 4);
}
static sg_tensor *f_sce_labels(sg_tensor *const *in, int n, void *c)
{
    (void)n, (void)c;
    return sg_softmax_cross_entropy_labels(in[0], (int[]){0, 3, 4, 1}, 4);
}

START_TEST(test_loss_gradchecks)
{
    sg_rng rng;
    sg_rng_seed(&rng, 5);
    sg_scope_begin();
    /* probabilities for cross-entropy: a softmax of random logits, as a leaf */
    sg_tensor *p = sg_param(sg_copy(sg_softmax(randn(&rng, SG_DIMS(4, 5)))));
    sg_tensor *t = sg_one_hot((int[]){0, 3, 4, 1}, 4, 5);
    sg_tensor *in[2] = {p, t};
    GRADCHECK(f_ce, in, 2, NULL, NULL);
    GRADCHECK(f_ce_labels, in, 1, NULL, NULL);
    in[0] = sg_param(randn(&rng, SG_DIMS(4, 5)));
    GRADCHECK(f_sce, in, 2, NULL, NULL);
    GRADCHECK(f_sce_labels, in, 1, NULL, NULL);
    in[1] = sg_from_data((float[]){0, 3, 4, 1}, SG_DIMS(4)); /* index targets */
    GRADCHECK(f_sce, in, 2, NULL, NULL);
    in[1] = sg_param(randn(&rng, SG_DIMS(4, 5))); /* gradients w.r.t. both */
    GRADCHECK(f_sse, in, 2, NULL, NULL);
    GRADCHECK(f_mse, in, 2, NULL, NULL);
    sg_scope_end();
}
END_TEST

/* ------------------------------------------------------------------------- */
/* layers */

static sg_tensor *f_linear(sg_tensor *const *in, int n, void *c) { (void)n, (void)c; return sg_linear(in[0], in[1], in[2]); }

START_TEST(test_linear)
{
    sg_scope_begin();
    sg_tensor *x = sg_from_data((float[]){1, 2, 3, 4, 5, 6}, SG_DIMS(2, 3));
    sg_tensor *W = sg_from_data((float[]){1, 0, 0, 1, 1, 1}, SG_DIMS(3, 2));
    sg_tensor *b = sg_from_data((float[]){10, 20}, SG_DIMS(2));
    sg_tensor *y = sg_linear(x, W, b);
    const double want[4] = {1 + 3 + 10, 2 + 3 + 20, 4 + 6 + 10, 5 + 6 + 20};
    assert_close(sg_data(y), want, 4, 0, 1e-7);
    sg_tensor *y1 = sg_linear(sg_from_data((float[]){1, 2, 3}, SG_DIMS(3)), W, b); /* one sample */
    ck_assert_int_eq(sg_ndim(y1), 1);
    assert_close(sg_data(y1), want, 2, 0, 1e-7);
    sg_clear_error();
    ck_assert_ptr_null(sg_linear(x, sg_zeros(SG_DIMS(4, 5)), NULL));
    ERR_HAS("linear: input (2,3) and weight (4,5) do not align");
    sg_clear_error();
    ck_assert_ptr_null(sg_linear(x, W, sg_zeros(SG_DIMS(3))));
    ERR_HAS("bias (3)");
    sg_clear_error();
    sg_rng rng;
    sg_rng_seed(&rng, 3);
    sg_tensor *in[3] = {sg_param(randn(&rng, SG_DIMS(4, 3))), sg_param(randn(&rng, SG_DIMS(3, 5))),
                        sg_param(randn(&rng, SG_DIMS(5)))};
    sg_gradcheck_opts o = {.eps = 1e-2}; /* affine: differences are exact up to rounding */
    GRADCHECK(f_linear, in, 3, NULL, &o);
    sg_scope_end();
}
END_TEST

/* Direct convolution: out[n,f,oh,ow] = b[f] + sum x[n,c,oh*s-p+i,ow*s-p+j] w[f,c,i,j] */
static void conv_ref(const float *x, int N, int C, int H, int W, const float *w, int FN, int KH, int KW,
                     const float *b, int s, int p, double *out)
{
    int OH = (H + 2 * p - KH) / s + 1, OW = (W + 2 * p - KW) / s + 1;
    for (int n = 0; n < N; n++)
        for (int f = 0; f < FN; f++)
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    double acc = b ? b[f] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int i = 0; i < KH; i++)
                            for (int j = 0; j < KW; j++) {
                                int ih = oh * s - p + i, iw = ow * s - p + j;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                                    continue;
                                acc += (double)x[((n * C + c) * H + ih) * W + iw] *
                                       w[((f * C + c) * KH + i) * KW + j];
                            }
                    out[((n * FN + f) * OH + oh) * OW + ow] = acc;
                }
}

START_TEST(test_conv2d_matches_direct)
{
    struct { int N, C, H, W, FN, KH, KW, s, p; bool bias; } cases[] = {
        {2, 3, 5, 5, 4, 3, 3, 1, 0, true},  {2, 3, 5, 5, 4, 3, 3, 2, 1, true},
        {1, 1, 7, 6, 2, 5, 3, 1, 2, false}, {3, 2, 8, 8, 5, 2, 2, 2, 0, true},
        {1, 4, 6, 9, 3, 3, 3, 3, 1, true},
    };
    sg_rng rng;
    sg_rng_seed(&rng, 21);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        sg_scope_begin();
        int N = cases[k].N, C = cases[k].C, H = cases[k].H, W = cases[k].W, FN = cases[k].FN;
        int KH = cases[k].KH, KW = cases[k].KW, s = cases[k].s, p = cases[k].p;
        sg_tensor *x = randn(&rng, SG_DIMS(N, C, H, W));
        sg_tensor *w = randn(&rng, SG_DIMS(FN, C, KH, KW));
        sg_tensor *b = cases[k].bias ? randn(&rng, SG_DIMS(FN)) : NULL;
        sg_tensor *y = sg_conv2d(x, w, b, s, p);
        ck_assert_msg(y != NULL, "case %zu: %s", k, sg_last_error());
        int OH = (H + 2 * p - KH) / s + 1, OW = (W + 2 * p - KW) / s + 1;
        ck_assert_int_eq(sg_ndim(y), 4);
        ck_assert_int_eq(sg_dim(y, 0), N);
        ck_assert_int_eq(sg_dim(y, 1), FN);
        ck_assert_int_eq(sg_dim(y, 2), OH);
        ck_assert_int_eq(sg_dim(y, 3), OW);
        double *want = malloc(sg_size(y) * sizeof *want);
        conv_ref(sg_data(x), N, C, H, W, sg_data(w), FN, KH, KW, b ? sg_data(b) : NULL, s, p, want);
        assert_close(sg_data(y), want, sg_size(y), 1e-5, 1e-5);
        free(want);
        sg_scope_end();
    }
    sg_scope_begin();
    sg_clear_error();
    ck_assert_ptr_null(sg_conv2d(sg_zeros(SG_DIMS(1, 2, 5, 5)), sg_zeros(SG_DIMS(4, 3, 3, 3)), NULL, 1, 0));
    ERR_HAS("2 channels");
    sg_clear_error();
    ck_assert_ptr_null(sg_conv2d(sg_zeros(SG_DIMS(1, 3, 2, 2)), sg_zeros(SG_DIMS(4, 3, 3, 3)), NULL, 1, 0));
    ERR_HAS("does not fit");
    sg_scope_end();
}
END_TEST

typedef struct win_ctx {
    int k, stride, pad;
} win_ctx;

static sg_tensor *f_conv(sg_tensor *const *in, int n, void *c)
{
    win_ctx *w = c;
    return sg_conv2d(in[0], in[1], n > 2 ? in[2] : NULL, w->stride, w->pad);
}
static sg_tensor *f_maxpool(sg_tensor *const *in, int n, void *c)
{
    win_ctx *w = c;
    (void)n;
    return sg_max_pool2d(in[0], w->k, w->stride, w->pad);
}
static sg_tensor *f_avgpool(sg_tensor *const *in, int n, void *c)
{
    win_ctx *w = c;
    (void)n;
    return sg_avg_pool2d(in[0], w->k, w->stride, w->pad);
}
static sg_tensor *f_gap(sg_tensor *const *in, int n, void *c) { (void)n, (void)c; return sg_global_avg_pool2d(in[0]); }

START_TEST(test_conv2d_gradcheck)
{
    sg_rng rng;
    sg_rng_seed(&rng, 8);
    sg_scope_begin();
    sg_tensor *in[3] = {sg_param(randn(&rng, SG_DIMS(2, 3, 5, 5))), sg_param(randn(&rng, SG_DIMS(4, 3, 3, 3))),
                        sg_param(randn(&rng, SG_DIMS(4)))};
    sg_gradcheck_opts o = {.eps = 1e-2};
    win_ctx s2p1 = {3, 2, 1}, s1p0 = {3, 1, 0};
    GRADCHECK(f_conv, in, 3, &s2p1, &o); /* stride 2, padding 1 */
    GRADCHECK(f_conv, in, 3, &s1p0, &o);
    sg_scope_end();
}
END_TEST

/* Direct pooling of (N,C,H,W): max or mean (padding counted, as 0) */
static void pool_ref(const float *x, int N, int C, int H, int W, int k, int s, int p, bool is_max, double *out)
{
    int OH = (H + 2 * p - k) / s + 1, OW = (W + 2 * p - k) / s + 1;
    for (int nc = 0; nc < N * C; nc++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                double acc = is_max ? -INFINITY : 0.0;
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < k; j++) {
                        int ih = oh * s - p + i, iw = ow * s - p + j;
                        bool in = ih >= 0 && ih < H && iw >= 0 && iw < W;
                        double v = in ? x[(nc * H + ih) * W + iw] : 0.0;
                        if (is_max && in)
                            acc = v > acc ? v : acc;
                        else if (!is_max)
                            acc += v;
                    }
                out[(nc * OH + oh) * OW + ow] = is_max ? acc : acc / (k * k);
            }
}

START_TEST(test_pooling_values)
{
    struct { int N, C, H, W, k, s, p; } cases[] = {
        {2, 3, 4, 4, 2, 2, 0}, {1, 2, 7, 7, 3, 2, 0}, {2, 2, 6, 5, 3, 2, 1}, {1, 1, 5, 5, 2, 1, 1},
        {1, 2, 6, 9, 3, 3, 0}, /* windows that tile the input: no unfold */
    };
    sg_rng rng;
    sg_rng_seed(&rng, 4);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        sg_scope_begin();
        int N = cases[k].N, C = cases[k].C, H = cases[k].H, W = cases[k].W;
        /* all negative inputs: a padded max must still ignore the padding */
        sg_tensor *x = sg_add_scalar(sg_mul_scalar(sg_uniform(&rng, 0.f, 1.f, SG_DIMS(N, C, H, W)), 5.f), -6.f);
        for (int is_max = 0; is_max < 2; is_max++) {
            sg_tensor *y = is_max ? sg_max_pool2d(x, cases[k].k, cases[k].s, cases[k].p)
                                  : sg_avg_pool2d(x, cases[k].k, cases[k].s, cases[k].p);
            ck_assert_msg(y != NULL, "case %zu: %s", k, sg_last_error());
            int OH = (H + 2 * cases[k].p - cases[k].k) / cases[k].s + 1;
            ck_assert_int_eq(sg_dim(y, 2), OH);
            double *want = malloc(sg_size(y) * sizeof *want);
            pool_ref(sg_data(x), N, C, H, W, cases[k].k, cases[k].s, cases[k].p, is_max, want);
            assert_close(sg_data(y), want, sg_size(y), 1e-6, 1e-6);
            free(want);
        }
        sg_scope_end();
    }
    sg_scope_begin();
    /* the book's 2x2 max pooling example shape, and global average pooling */
    sg_tensor *x = sg_from_data((float[]){1, 2, 3, 0, 0, 1, 2, 4, 1, 0, 4, 2, 3, 2, 0, 1}, SG_DIMS(1, 1, 4, 4));
    sg_tensor *y = sg_max_pool2d(x, 2, 0, 0);
    const double want[4] = {2, 4, 3, 4};
    assert_close(sg_data(y), want, 4, 0, 0);
    sg_tensor *g = sg_global_avg_pool2d(x);
    ck_assert_int_eq(sg_ndim(g), 2);
    ck_assert_float_eq_tol(sg_data(g)[0], 26.f / 16.f, 1e-6f);
    /* the -inf padding of max pooling is fine under the NaN debug check */
    bool was = sg_set_nan_check(true);
    sg_tensor *xp = sg_param(sg_copy(x)), *gp[1];
    sg_tensor *yp = sg_max_pool2d(xp, 3, 2, 1);
    ck_assert_msg(yp != NULL, "%s", sg_last_error());
    ck_assert_int_eq(sg_grad_of(sg_sum_all(yp), &xp, 1, gp, NULL), 0);
    ck_assert(all_finite(sg_data(gp[0]), 16));
    sg_set_nan_check(was);
    sg_clear_error();
    ck_assert_ptr_null(sg_max_pool2d(x, 2, 2, 2));
    ERR_HAS("padding 2");
    sg_scope_end();
}
END_TEST

START_TEST(test_pooling_gradcheck)
{
    sg_rng rng;
    sg_rng_seed(&rng, 9);
    sg_scope_begin();
    sg_tensor *in[1] = {sg_param(distinct(&rng, SG_DIMS(2, 2, 7, 7)))};
    win_ctx w332 = {3, 2, 0}, w3s2p1 = {3, 2, 1}, w2 = {2, 2, 0};
    GRADCHECK(f_maxpool, in, 1, &w332, NULL);   /* overlapping 3x3 windows, stride 2 */
    GRADCHECK(f_maxpool, in, 1, &w3s2p1, NULL); /* and with padding */
    GRADCHECK(f_maxpool, in, 1, &w2, NULL);
    GRADCHECK(f_avgpool, in, 1, &w332, NULL);
    GRADCHECK(f_avgpool, in, 1, &w3s2p1, NULL);
    GRADCHECK(f_gap, in, 1, NULL, NULL);
    /* 2x2 windows tiling an 8x6 input: pooling as a reduction of a reshape */
    sg_tensor *tiled[1] = {sg_param(distinct(&rng, SG_DIMS(2, 2, 8, 6)))};
    GRADCHECK(f_maxpool, tiled, 1, &w2, NULL);
    GRADCHECK(f_avgpool, tiled, 1, &w2, NULL);
    /* an overlapped maximum collects gradient from every window it wins */
    sg_tensor *x = sg_param(sg_zeros(SG_DIMS(1, 1, 5, 5))), *g[1];
    sg_data(x)[2 * 5 + 2] = 1.f; /* the centre: in all four 3x3 stride-2 windows */
    ck_assert_int_eq(sg_grad_of(sg_sum_all(sg_max_pool2d(x, 3, 2, 0)), &x, 1, g, NULL), 0);
    ck_assert_float_eq(sg_data(g[0])[12], 4.f);
    sg_scope_end();
}
END_TEST

typedef struct bn_ctx {
    sg_tensor *rm, *rv;
} bn_ctx;

static sg_tensor *f_bn(sg_tensor *const *in, int n, void *c)
{
    bn_ctx *b = c;
    (void)n;
    return BATCH_NORM(in[0], in[1], in[2], b ? b->rm : NULL, b ? b->rv : NULL, true, 0.1f, 1e-5f);
}

START_TEST(test_batchnorm_training)
{
    sg_scope_begin();
    /* (N,D) = (4,2): feature 0 = 1,2,3,6 (mean 3, biased var 3.5, unbiased 14/3);
     * feature 1 = constant 5 (var 0) */
    sg_tensor *x = sg_from_data((float[]){1, 5, 2, 5, 3, 5, 6, 5}, SG_DIMS(4, 2));
    sg_tensor *gamma = sg_from_data((float[]){2, 1}, SG_DIMS(2)), *beta = sg_from_data((float[]){0.5f, -1}, SG_DIMS(2));
    sg_tensor *rm = sg_zeros(SG_DIMS(2)), *rv = sg_ones(SG_DIMS(2));
    sg_tensor *y = BATCH_NORM(x, gamma, beta, rm, rv, true, 0.1f, 1e-5f);
    ck_assert_ptr_nonnull(y);
    const float f0[4] = {1, 2, 3, 6};
    for (int i = 0; i < 4; i++) {
        double want = 2.0 * (f0[i] - 3.0) / sqrt(3.5 + 1e-5) + 0.5;
        ck_assert_msg(fabs(sg_data(y)[2 * i] - want) < 1e-5, "row %d: %g vs %g", i, sg_data(y)[2 * i], want);
        ck_assert_float_eq_tol(sg_data(y)[2 * i + 1], -1.f, 1e-6f); /* x - mean = 0 */
    }
    /* PyTorch's running update: 0.9 old + 0.1 batch, unbiased variance */
    ck_assert_float_eq_tol(sg_data(rm)[0], 0.3f, 1e-6f);
    ck_assert_float_eq_tol(sg_data(rm)[1], 0.5f, 1e-6f);
    ck_assert_float_eq_tol(sg_data(rv)[0], 0.9f + 0.1f * 14.f / 3.f, 1e-6f);
    ck_assert_float_eq_tol(sg_data(rv)[1], 0.9f, 1e-6f);
    /* gradcheck (N,D) and (N,C,H,W), w.r.t. x, gamma and beta */
    sg_rng rng;
    sg_rng_seed(&rng, 6);
    bn_ctx c = {sg_zeros(SG_DIMS(3)), sg_ones(SG_DIMS(3))};
    sg_tensor *in[3] = {sg_param(randn(&rng, SG_DIMS(5, 3))), sg_param(sg_add_scalar(randn(&rng, SG_DIMS(3)), 1.f)),
                        sg_param(randn(&rng, SG_DIMS(3)))};
    GRADCHECK(f_bn, in, 3, &c, NULL);
    in[0] = sg_param(randn(&rng, SG_DIMS(2, 3, 3, 2)));
    GRADCHECK(f_bn, in, 3, &c, NULL);
    GRADCHECK(f_bn, in, 3, NULL, NULL); /* no running statistics */
    /* (N,C,H,W) statistics are over N, H, W */
    sg_tensor *x4 = sg_from_data((float[]){0, 2, 10, 10, 4, 6, 20, 40}, SG_DIMS(2, 2, 1, 2));
    sg_tensor *rm4 = sg_zeros(SG_DIMS(2)), *rv4 = sg_zeros(SG_DIMS(2));
    sg_tensor *y4 = BATCH_NORM(x4, NULL, NULL, rm4, rv4, true, 1.f, 1e-5f);
    ck_assert_ptr_nonnull(y4);
    ck_assert_float_eq_tol(sg_data(rm4)[0], 3.f, 1e-6f);                 /* mean of 0,2,4,6 */
    ck_assert_float_eq_tol(sg_data(rm4)[1], 20.f, 1e-6f);                /* mean of 10,10,20,40 */
    ck_assert_float_eq_tol(sg_data(rv4)[0], 20.f / 3.f, 1e-5f);          /* unbiased */
    ck_assert_float_eq_tol(sg_data(y4)[0], (float)(-3.0 / sqrt(5.0 + 1e-5)), 1e-5f);
    sg_clear_error();
    ck_assert_ptr_null(BATCH_NORM(sg_zeros(SG_DIMS(1, 3)), NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f));
    ERR_HAS("more than 1 value");
    sg_clear_error();
    ck_assert_ptr_null(BATCH_NORM(x, sg_ones(SG_DIMS(3)), NULL, NULL, NULL, true, 0.1f, 1e-5f));
    ERR_HAS("gamma (3)");
    sg_scope_end();
}
END_TEST

START_TEST(test_batchnorm_eval_uses_running_stats)
{
    sg_scope_begin();
    sg_tensor *x = sg_from_data((float[]){1, 2, 3, 4, 5, 6, 7, 8}, SG_DIMS(1, 2, 2, 2));
    sg_tensor *rm = sg_from_data((float[]){1, -2}, SG_DIMS(2)), *rv = sg_from_data((float[]){4, 0.25f}, SG_DIMS(2));
    sg_tensor *gamma = sg_from_data((float[]){3, 1}, SG_DIMS(2)), *beta = sg_from_data((float[]){0, 10}, SG_DIMS(2));
    sg_tensor *y = BATCH_NORM(x, gamma, beta, rm, rv, false, 0.1f, 1e-5f);
    ck_assert_ptr_nonnull(y);
    for (int i = 0; i < 8; i++) {
        int c = i / 4;
        double m = c ? -2 : 1, v = c ? 0.25 : 4, g = c ? 1 : 3, b = c ? 10 : 0;
        double want = (i + 1 - m) / sqrt(v + 1e-5) * g + b;
        ck_assert_msg(fabs(sg_data(y)[i] - want) < 1e-4, "%d: %g vs %g", i, sg_data(y)[i], want);
    }
    /* evaluation leaves the running statistics alone, and works for N = 1 */
    ck_assert_float_eq(sg_data(rm)[0], 1.f);
    ck_assert_float_eq(sg_data(rv)[1], 0.25f);
    sg_clear_error();
    ck_assert_ptr_null(BATCH_NORM(x, NULL, NULL, NULL, NULL, false, 0.1f, 1e-5f));
    ERR_HAS("running_mean");
    sg_scope_end();
}
END_TEST

static sg_tensor *f_dropout(sg_tensor *const *in, int n, void *c)
{
    (void)n, (void)c;
    sg_rng r; /* the same mask on every call */
    sg_rng_seed(&r, 99);
    return sg_dropout(in[0], 0.3f, true, &r);
}

START_TEST(test_dropout)
{
    sg_rng rng;
    sg_rng_seed(&rng, 17);
    sg_scope_begin();
    const int n = 100000;
    sg_tensor *x = sg_param(sg_add_scalar(sg_uniform(&rng, 0.f, 1.f, SG_DIMS(n)), 1.f)); /* no zeros */
    ck_assert_ptr_eq(sg_dropout(x, 0.5f, false, &rng), x); /* evaluation: identity */
    ck_assert_ptr_eq(sg_dropout(x, 0.f, true, &rng), x);
    const float ps[3] = {0.2f, 0.5f, 0.9f};
    for (int k = 0; k < 3; k++) {
        float keep = 1.f - ps[k];
        sg_tensor *y = sg_dropout(x, ps[k], true, &rng);
        int kept = 0;
        for (int i = 0; i < n; i++) {
            float v = sg_data(y)[i];
            if (v != 0.f) {
                kept++;
                ck_assert_float_eq_tol(v, sg_data(x)[i] / keep, 1e-5f * v);
            }
        }
        /* kept ~ Binomial(n, keep): std sqrt(n keep (1-keep)) <= 158; allow 5 std */
        double sd = sqrt(n * keep * (1.0 - keep));
        ck_assert_msg(fabs(kept - n * keep) < 5 * sd, "p %g: kept %d of %d", ps[k], kept, n);
    }
    /* p = 1 drops everything */
    sg_tensor *z = sg_dropout(x, 1.f, true, &rng);
    ck_assert_float_eq(sg_item(sg_sum_all(z)), 0.f);
    /* the same seed gives the same mask; the gradient is mask / keep */
    sg_tensor *in[1] = {sg_param(randn(&rng, SG_DIMS(4, 6)))};
    GRADCHECK(f_dropout, in, 1, NULL, NULL);
    sg_clear_error();
    ck_assert_ptr_null(sg_dropout(x, 1.5f, true, &rng));
    ERR_HAS("dropout");
    sg_scope_end();
}
END_TEST

static sg_tensor *f_residual(sg_tensor *const *in, int n, void *c) { (void)n, (void)c; return sg_residual_add(in[0], in[1]); }
static sg_tensor *f_flatten(sg_tensor *const *in, int n, void *c) { (void)n, (void)c; return sg_flatten(in[0]); }

START_TEST(test_residual_flatten)
{
    sg_rng rng;
    sg_rng_seed(&rng, 14);
    sg_scope_begin();
    sg_tensor *in[2] = {sg_param(randn(&rng, SG_DIMS(2, 3, 2, 2))), sg_param(randn(&rng, SG_DIMS(2, 3, 2, 2)))};
    GRADCHECK(f_residual, in, 2, NULL, NULL);
    GRADCHECK(f_flatten, in, 1, NULL, NULL);
    ck_assert_int_eq(sg_dim(sg_flatten(in[0]), 1), 12);
    sg_tensor *a = sg_ones(SG_DIMS(2, 3)), *b = sg_full(2.f, SG_DIMS(2, 3));
    ck_assert_float_eq(sg_item(sg_sum_all(sg_residual_add(a, b))), 18.f);
    sg_clear_error();
    ck_assert_ptr_null(sg_residual_add(a, sg_ones(SG_DIMS(3))));
    ERR_HAS("residual_add: shortcut (2,3) and branch (3)");
    sg_scope_end();
}
END_TEST

/* ------------------------------------------------------------------------- */
/* initialisation */

static void moments(const float *d, size_t n, double *mean, double *sd, double *maxabs)
{
    double s = 0, s2 = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        s += d[i];
        s2 += (double)d[i] * d[i];
        if (fabs(d[i]) > m)
            m = fabs(d[i]);
    }
    *mean = s / n;
    *sd = sqrt(s2 / n - *mean * *mean);
    *maxabs = m;
}

START_TEST(test_init)
{
    int fi, fo;
    sg_init_fans(SG_DIMS(784, 100), &fi, &fo);
    ck_assert_int_eq(fi, 784);
    ck_assert_int_eq(fo, 100);
    sg_init_fans(SG_DIMS(30, 1, 5, 5), &fi, &fo);
    ck_assert_int_eq(fi, 25);
    ck_assert_int_eq(fo, 750);
    ck_assert_str_eq(sg_init_name(SG_INIT_KIND_HE_UNIFORM), "he_uniform");
    /* (in,out) = (400, 200): n = 80000 samples, the relative standard error of
     * a sample std is 1/sqrt(2n) = 0.25%, so 2% is 8 standard errors */
    struct { sg_init init; double sd; double bound; } cases[] = {
        {SG_INIT_NORMAL(0.01f), 0.01, 0},
        {SG_INIT_NORMAL(1.f), 1.0, 0},
        {SG_INIT_HE_NORMAL, sqrt(2.0 / 400), 0},
        {SG_INIT_XAVIER_NORMAL, sqrt(2.0 / 600), 0},
        {SG_INIT_XAVIER_BOOK, sqrt(1.0 / 400), 0},
        {SG_INIT_HE_UNIFORM, sqrt(6.0 / 400) / sqrt(3.0), sqrt(6.0 / 400)},
        {SG_INIT_XAVIER_UNIFORM, sqrt(6.0 / 600) / sqrt(3.0), sqrt(6.0 / 600)},
        {SG_INIT_UNIFORM(0.5f), 0.5 / sqrt(3.0), 0.5},
    };
    sg_rng rng;
    sg_tensor *w = sg_zeros(SG_DIMS(400, 200)); /* persistent: no scope */
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        sg_rng_seed(&rng, 1000 + k);
        ck_assert_int_eq(sg_init_fill(w, cases[k].init, &rng), 0);
        double mean, sd, maxabs;
        moments(sg_data(w), sg_size(w), &mean, &sd, &maxabs);
        ck_assert_msg(fabs(sd / cases[k].sd - 1) < 0.02, "%s: sd %g, want %g", sg_init_name(cases[k].init.kind), sd,
                      cases[k].sd);
        ck_assert_msg(fabs(mean) < 5 * cases[k].sd / sqrt(80000.0), "%s: mean %g", sg_init_name(cases[k].init.kind),
                      mean);
        if (cases[k].bound > 0) {
            ck_assert(maxabs <= cases[k].bound);
            ck_assert(maxabs > 0.99 * cases[k].bound);
        }
    }
    /* the same seed gives the same weights */
    sg_tensor *w2 = sg_zeros(SG_DIMS(400, 200));
    sg_rng_seed(&rng, 5);
    sg_init_fill(w, SG_INIT_HE, &rng);
    sg_rng_seed(&rng, 5);
    sg_init_fill(w2, SG_INIT_HE, &rng);
    ck_assert_int_eq(memcmp(sg_data(w), sg_data(w2), sg_size(w) * sizeof(float)), 0);
    ck_assert_int_eq(sg_init_fill(w, SG_INIT_CONSTANT(0.5f), NULL), 0);
    ck_assert_float_eq(sg_data(w)[123], 0.5f);
    ck_assert_int_eq(sg_init_fill(w, SG_INIT_ZEROS, NULL), 0);
    ck_assert_float_eq(sg_data(w)[77], 0.f);
    sg_clear_error();
    ck_assert_int_eq(sg_init_fill(w, SG_INIT_NORMAL(-1.f), NULL), -1);
    ERR_HAS("normal");
    sg_tensor_free(w);
    sg_tensor_free(w2);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* models */

static sg_model *simple_convnet(sg_rng *rng)
{
    sg_model *m = sg_model_new();
    sg_model_add(m, sg_conv2d_new(m, "conv1", 1, 30, 5, 1, 0, SG_INIT_NORMAL(0.01f), rng));
    sg_model_add(m, sg_relu_new(m, "relu1"));
    sg_model_add(m, sg_maxpool2d_new(m, "pool1", 2, 2, 0));
    sg_model_add(m, sg_linear_new(m, "affine1", 4320, 100, SG_INIT_NORMAL(0.01f), rng));
    sg_model_add(m, sg_relu_new(m, "relu2"));
    sg_model_add(m, sg_linear_new(m, "affine2", 100, 10, SG_INIT_NORMAL(0.01f), rng));
    return m;
}

START_TEST(test_model_simple_convnet)
{
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_model *m = simple_convnet(&rng);
    ck_assert_msg(m && !sg_has_error(), "%s", sg_last_error());
    /* 30*1*5*5 + 30 + 4320*100 + 100 + 100*10 + 10 */
    ck_assert_uint_eq(sg_model_num_params(m, false), 433890);
    ck_assert_uint_eq(sg_model_num_params(m, true), 433890);
    int n;
    const sg_named_param *p = sg_model_params(m, &n);
    ck_assert_int_eq(n, 6);
    const char *names[6] = {"conv1.W", "conv1.b", "affine1.W", "affine1.b", "affine2.W", "affine2.b"};
    for (int i = 0; i < 6; i++) {
        ck_assert_str_eq(p[i].name, names[i]);
        ck_assert(p[i].trainable);
        ck_assert(sg_requires_grad(p[i].tensor));
        ck_assert_ptr_eq(sg_model_param(m, names[i]), p[i].tensor);
    }
    ck_assert_int_eq(sg_dim(sg_model_param(m, "conv1.W"), 0), 30);
    ck_assert_ptr_eq(sg_layer_param(sg_model_layer(m, "affine1"), "W"), p[2].tensor);
    ck_assert_uint_eq(sg_layer_num_params(sg_model_layer(m, "affine1")), 432100);
    ck_assert_ptr_null(sg_model_param(m, "nope"));
    /* the summary: shapes for one 1x28x28 image and the parameter counts */
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_int_eq(sg_model_summary(m, f, SG_DIMS(1, 1, 28, 28)), 0);
    fclose(f);
    const char *expect[] = {"conv1 (conv2d)", "(1,30,24,24)", "780", "pool1 (maxpool2d)", "(1,30,12,12)",
                            "affine1 (linear)", "(1,100)", "432,100", "affine2 (linear)", "(1,10)", "1,010",
                            "Trainable params: 433,890", "Input shape: (1,1,28,28)"};
    for (size_t i = 0; i < sizeof expect / sizeof expect[0]; i++)
        ck_assert_msg(strstr(text, expect[i]), "summary lacks \"%s\":\n%s", expect[i], text);
    free(text);
    /* a shape that does not fit names the layer */
    f = open_memstream(&text, &len);
    sg_clear_error();
    ck_assert_int_eq(sg_model_summary(m, f, SG_DIMS(1, 1, 20, 20)), -1);
    fclose(f);
    free(text);
    ERR_HAS("layer \"affine1\" (linear)");
    sg_clear_error();
    /* the trainable list for optimizers */
    sg_tensor *tr[8];
    ck_assert_int_eq(sg_model_trainable(m, tr, 8), 6);
    ck_assert_ptr_eq(tr[5], p[5].tensor);
    ck_assert_int_eq(sg_model_trainable(m, NULL, 0), 6);
    sg_model_free(m);
}
END_TEST

START_TEST(test_model_forward_matches_functions)
{
    sg_rng rng;
    sg_rng_seed(&rng, 2);
    sg_model *m = sg_model_new();
    sg_model_add(m, sg_conv2d_new(m, "conv1", 2, 4, 3, 2, 1, SG_INIT_HE, &rng));
    sg_model_add(m, sg_batchnorm_new(m, "bn1", 4));
    sg_model_add(m, sg_relu_new(m, NULL));
    sg_model_add(m, sg_maxpool2d_new(m, NULL, 2, 0, 0));
    sg_model_add(m, sg_flatten_new(m, NULL));
    sg_model_add(m, sg_dropout_new(m, "drop", 0.5f, &rng));
    sg_model_add(m, sg_linear_new(m, "fc", 16, 3, SG_INIT_XAVIER, &rng));
    sg_model_add(m, sg_softmax_new(m, NULL));
    ck_assert_msg(!sg_has_error(), "%s", sg_last_error());
    ck_assert_ptr_nonnull(sg_model_layer(m, "relu1")); /* automatic names */
    ck_assert_ptr_nonnull(sg_model_layer(m, "maxpool2d1"));
    ck_assert_str_eq(sg_layer_kind(sg_model_layer(m, "softmax1")), "softmax");
    int n;
    const sg_named_param *p = sg_model_params(m, &n);
    ck_assert_int_eq(n, 8);
    ck_assert_str_eq(p[4].name, "bn1.running_mean");
    ck_assert(!p[4].trainable && !p[5].trainable && p[2].trainable);
    ck_assert(!sg_requires_grad(p[5].tensor));
    ck_assert_uint_eq(sg_model_num_params(m, true) - sg_model_num_params(m, false), 8);

    sg_scope_begin();
    sg_tensor *x = randn(&rng, SG_DIMS(3, 2, 8, 8));
    sg_model_set_training(m, false);
    ck_assert(!sg_model_is_training(m));
    sg_tensor *y = sg_model_forward(m, x);
    ck_assert_msg(y != NULL, "%s", sg_last_error());
    sg_tensor *h = sg_conv2d(x, sg_model_param(m, "conv1.W"), sg_model_param(m, "conv1.b"), 2, 1);
    h = BATCH_NORM(h, p[2].tensor, p[3].tensor, p[4].tensor, p[5].tensor, false, 0.1f, 1e-5f);
    h = sg_flatten(sg_max_pool2d(sg_relu(h), 2, 2, 0));
    h = sg_softmax(sg_linear(h, sg_model_param(m, "fc.W"), sg_model_param(m, "fc.b")));
    ck_assert(sg_same_shape(y, h));
    for (size_t i = 0; i < sg_size(y); i++)
        ck_assert_float_eq_tol(sg_data(y)[i], sg_data(h)[i], 1e-6f);
    /* training mode: dropout and batch statistics change the result and the
     * running mean moves */
    sg_model_set_training(m, true);
    float rm0 = sg_data(p[4].tensor)[0];
    sg_tensor *yt = sg_model_forward(m, x);
    ck_assert_ptr_nonnull(yt);
    ck_assert_float_ne(sg_data(p[4].tensor)[0], rm0);
    bool differs = false;
    for (size_t i = 0; i < sg_size(y); i++)
        differs |= fabsf(sg_data(y)[i] - sg_data(yt)[i]) > 1e-4f;
    ck_assert(differs);
    sg_scope_end();
    sg_model_free(m);
}
END_TEST

typedef struct model_ctx {
    sg_model *m;
} model_ctx;

static sg_tensor *f_model_loss(sg_tensor *const *in, int n, void *c)
{
    model_ctx *mc = c;
    (void)n;
    return sg_softmax_cross_entropy_labels(sg_model_forward(mc->m, in[0]), (int[]){0, 2, 1}, 3);
}

START_TEST(test_model_gradcheck)
{
    /* the whole network (conv stride 2 pad 1, batch norm in training, relu,
     * overlapping pooling, linear, softmax-with-loss) against central
     * differences, w.r.t. the input and every parameter */
    sg_rng rng;
    sg_rng_seed(&rng, 12);
    sg_model *m = sg_model_new();
    sg_model_add(m, sg_conv2d_new(m, "conv1", 2, 3, 3, 2, 1, SG_INIT_HE, &rng));
    sg_model_add(m, sg_batchnorm_new(m, "bn1", 3));
    sg_model_add(m, sg_tanh_new(m, NULL));
    sg_model_add(m, sg_maxpool2d_new(m, "pool", 3, 2, 1));
    sg_model_add(m, sg_linear_new(m, "fc", 12, 3, SG_INIT_HE, &rng));
    ck_assert_msg(!sg_has_error(), "%s", sg_last_error());
    sg_scope_begin();
    sg_tensor *in[8];
    in[0] = sg_param(randn(&rng, SG_DIMS(3, 2, 7, 7)));
    int k = 1, n;
    const sg_named_param *p = sg_model_params(m, &n);
    for (int i = 0; i < n; i++)
        if (p[i].trainable)
            in[k++] = p[i].tensor;
    model_ctx c = {m};
    GRADCHECK(f_model_loss, in, k, &c, NULL);
    sg_scope_end();
    sg_model_free(m);
}
END_TEST

static sg_tensor *scale_layer(sg_layer *self, sg_tensor *x, bool training, void *ctx)
{
    (void)training;
    return sg_mul_scalar(sg_mul(x, sg_layer_param(self, "s")), *(float *)ctx);
}

START_TEST(test_model_residual_and_custom)
{
    sg_rng rng;
    sg_rng_seed(&rng, 3);
    float two = 2.f;
    sg_model *m = sg_model_new();
    sg_layer *body = sg_sequential_new(m, "body");
    sg_sequential_add(body, sg_linear_new(m, "fc1", 4, 4, SG_INIT_HE, &rng));
    sg_sequential_add(body, sg_tanh_new(m, NULL));
    sg_layer *custom = sg_layer_new(m, "scale", "scale", scale_layer, &two);
    sg_layer_add_param(custom, "s", sg_full(0.5f, SG_DIMS(4)), true);
    sg_sequential_add(body, custom);
    sg_model_add(m, sg_residual_new(m, "res1", body, NULL));
    ck_assert_msg(!sg_has_error(), "%s", sg_last_error());
    ck_assert_uint_eq(sg_model_num_params(m, false), 16 + 4 + 4);
    ck_assert_uint_eq(sg_layer_num_params(sg_model_layer(m, "res1")), 24);
    sg_scope_begin();
    sg_tensor *x = randn(&rng, SG_DIMS(2, 4));
    sg_tensor *y = sg_model_forward(m, x);
    ck_assert_ptr_nonnull(y);
    /* y = x + 2 * 0.5 * tanh(fc1(x)) */
    sg_tensor *want = sg_add(x, sg_tanh(sg_linear(x, sg_model_param(m, "fc1.W"), sg_model_param(m, "fc1.b"))));
    for (int i = 0; i < 8; i++)
        ck_assert_float_eq_tol(sg_data(y)[i], sg_data(want)[i], 1e-6f);
    sg_scope_end();
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    ck_assert_int_eq(sg_model_summary(m, f, SG_DIMS(2, 4)), 0);
    fclose(f);
    ck_assert_msg(strstr(text, "res1 (residual)") && strstr(text, "  body (sequential)") &&
                      strstr(text, "    scale (scale)") && strstr(text, "Trainable params: 24"),
                  "%s", text);
    free(text);
    /* a sequence may not contain itself */
    sg_clear_error();
    ck_assert_ptr_null(sg_sequential_add(body, body));
    ERR_HAS("cycle");
    sg_model_free(m);
}
END_TEST

START_TEST(test_model_errors)
{
    sg_rng rng;
    sg_rng_seed(&rng, 3);
    sg_model *m = sg_model_new();
    /* constructors refuse to run inside a scope (parameters would die with it) */
    sg_scope_begin();
    sg_clear_error();
    ck_assert_ptr_null(sg_model_new());
    ERR_HAS("no scope open");
    sg_clear_error();
    ck_assert_ptr_null(sg_linear_new(m, "fc", 2, 2, SG_INIT_HE, &rng));
    ERR_HAS("no scope open");
    sg_scope_end();
    ck_assert_int_eq(sg_model_trainable(m, NULL, 0), 0);
    /* duplicate names */
    sg_clear_error();
    ck_assert_ptr_nonnull(sg_model_add(m, sg_linear_new(m, "fc", 2, 2, SG_INIT_HE, &rng)));
    ck_assert_ptr_null(sg_linear_new(m, "fc", 2, 3, SG_INIT_HE, &rng));
    ERR_HAS("already has a layer named \"fc\"");
    sg_clear_error();
    ck_assert_ptr_null(sg_model_add_param(m, "fc.W", sg_zeros(SG_DIMS(1)), true));
    ERR_HAS("already taken");
    /* a failing constructor leaves nothing behind, and model_add keeps its message */
    sg_clear_error();
    ck_assert_ptr_null(sg_model_add(m, sg_conv2d_new(m, "c", 0, 3, 3, 1, 0, SG_INIT_HE, &rng)));
    ERR_HAS("conv2d_new");
    ck_assert_ptr_null(sg_model_layer(m, "c"));
    sg_clear_error();
    ck_assert_ptr_null(sg_linear_new(m, "bad", 2, 2, SG_INIT_NORMAL(-1.f), &rng));
    ck_assert_ptr_null(sg_model_layer(m, "bad"));
    ck_assert_ptr_null(sg_model_param(m, "bad.W"));
    int n;
    sg_model_params(m, &n);
    ck_assert_int_eq(n, 2);
    /* layers of another model, names, NULLs */
    sg_model *other = sg_model_new();
    sg_clear_error();
    ck_assert_ptr_null(sg_model_add(other, sg_model_layer(m, "fc")));
    ERR_HAS("another model");
    sg_clear_error();
    ck_assert_ptr_null(sg_model_add_param(m, "__metadata__", sg_zeros(SG_DIMS(1)), false));
    ERR_HAS("reserved");
    sg_clear_error();
    ck_assert_ptr_null(sg_model_add_param(m, "a\nb", sg_zeros(SG_DIMS(1)), false));
    ERR_HAS("control character");
    sg_clear_error();
    ck_assert_ptr_null(sg_relu_new(NULL, "r"));
    ERR_HAS("NULL model");
    /* forward errors name the layer */
    sg_scope_begin();
    sg_clear_error();
    ck_assert_ptr_null(sg_model_forward(m, sg_zeros(SG_DIMS(3, 5))));
    ERR_HAS("layer \"fc\" (linear): linear: input (3,5) and weight (2,2) do not align");
    sg_clear_error();
    ck_assert_ptr_null(sg_model_forward(m, NULL));
    sg_scope_end();
    sg_model_free(other);
    sg_model_free(m);
    sg_model_free(NULL);
    sg_clear_error();
}
END_TEST

START_TEST(test_model_learns_xor)
{
    /* end to end: a 2-8-2 tanh network learns XOR with plain SGD */
    sg_rng rng;
    sg_rng_seed(&rng, 7);
    sg_model *m = sg_model_new();
    sg_model_add(m, sg_linear_new(m, "fc1", 2, 8, SG_INIT_XAVIER_UNIFORM, &rng));
    sg_model_add(m, sg_tanh_new(m, NULL));
    sg_model_add(m, sg_linear_new(m, "fc2", 8, 2, SG_INIT_XAVIER_UNIFORM, &rng));
    sg_tensor *x = sg_from_data((float[]){0, 0, 0, 1, 1, 0, 1, 1}, SG_DIMS(4, 2));
    const int labels[4] = {0, 1, 1, 0};
    int n;
    const sg_named_param *p = sg_model_params(m, &n);
    float first = 0.f, last = 0.f;
    for (int step = 0; step < 500; step++) {
        sg_scope_begin();
        sg_tensor *loss = sg_softmax_cross_entropy_labels(sg_model_forward(m, x), labels, 4);
        ck_assert_int_eq(sg_backward(loss, NULL), 0);
        last = sg_item(loss);
        if (step == 0)
            first = last;
        for (int i = 0; i < n; i++) {
            float *d = sg_data(p[i].tensor), *g = sg_grad_data(p[i].tensor);
            for (size_t j = 0; j < sg_size(p[i].tensor); j++)
                d[j] -= 0.5f * g[j];
            sg_zero_grad(p[i].tensor);
        }
        sg_scope_end();
    }
    ck_assert_msg(last < 0.05f && last < first, "loss %g -> %g", first, last);
    sg_scope_begin();
    ck_assert_float_eq(sg_accuracy(sg_model_forward(m, x), sg_from_data((float[]){0, 1, 1, 0}, SG_DIMS(4))), 1.f);
    sg_scope_end();
    sg_tensor_free(x);
    sg_model_free(m);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* nn/ holds no backward code */

/* Copy of src without comments (string literals kept). */
static char *strip_comments(const char *src)
{
    size_t n = strlen(src);
    char *out = malloc(n + 1), *o = out;
    for (size_t i = 0; i < n;) {
        if (src[i] == '/' && src[i + 1] == '*') {
            const char *end = strstr(src + i + 2, "*/");
            i = end ? (size_t)(end - src) + 2 : n;
            *o++ = ' ';
        } else if (src[i] == '/' && src[i + 1] == '/') {
            while (i < n && src[i] != '\n')
                i++;
        } else if (src[i] == '"' || src[i] == '\'') {
            char q = src[i];
            *o++ = src[i++];
            while (i < n && src[i] != q) {
                if (src[i] == '\\' && i + 1 < n)
                    *o++ = src[i++];
                *o++ = src[i++];
            }
            if (i < n)
                *o++ = src[i++];
        } else {
            *o++ = src[i++];
        }
    }
    *o = '\0';
    return out;
}

static const char *const forbidden[] = {
    "sg_grad",       /* sg_grad, sg_grad_data, sg_grad_of: gradient buffers */
    "->grad",        /* tensor internals */
    "backward",      /* sg_backward, hand-written backward functions */
    "sg_internal.h", /* the engine's private header */
    "sg_zero_grad",  /* gradient buffers again */
    "sg_bw_",        /* the engine's local derivatives */
};

/* The first forbidden token in the code of src (comments ignored), or NULL. */
static const char *find_forbidden(const char *src)
{
    char *code = strip_comments(src);
    const char *hit = NULL;
    for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0] && !hit; i++)
        if (strstr(code, forbidden[i]))
            hit = forbidden[i];
    free(code);
    return hit;
}

START_TEST(test_nn_has_no_backward_code)
{
    /* the scanner itself must catch what it is meant to catch */
    ck_assert_str_eq(find_forbidden("float *g = sg_grad_data(W);"), "sg_grad");
    ck_assert_str_eq(find_forbidden("static void linear_backward(void) {}"), "backward");
    ck_assert_str_eq(find_forbidden("#include \"sg_internal.h\"\n"), "sg_internal.h");
    ck_assert_str_eq(find_forbidden("x->grad = NULL;"), "->grad");
    ck_assert_ptr_null(find_forbidden("/* no backward code here */ int a; // sg_grad in a comment\n"));

    DIR *dir = opendir(SG_SOURCE_ROOT "/nn");
    ck_assert_msg(dir != NULL, "cannot open %s", SG_SOURCE_ROOT "/nn");
    int files = 0;
    struct dirent *de;
    while ((de = readdir(dir))) {
        size_t len = strlen(de->d_name);
        if (len < 3 || de->d_name[0] == '.' ||
            (strcmp(de->d_name + len - 2, ".c") != 0 && strcmp(de->d_name + len - 2, ".h") != 0))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/nn/%s", SG_SOURCE_ROOT, de->d_name);
        FILE *f = fopen(path, "rb");
        ck_assert_msg(f != NULL, "cannot read %s", path);
        fseek(f, 0, SEEK_END);
        long size = ftell(f);
        rewind(f);
        char *src = malloc((size_t)size + 1);
        size_t got = fread(src, 1, (size_t)size, f);
        src[got] = '\0';
        fclose(f);
        const char *hit = find_forbidden(src);
        ck_assert_msg(hit == NULL, "%s mentions \"%s\": nn/ must be built from primitives only", path, hit);
        free(src);
        files++;
    }
    closedir(dir);
    ck_assert_int_ge(files, 6); /* the header and the five or more sources */
}
END_TEST


/* ------------------------------------------------------------------------- */
/* hyperparameters: NaN, inf and values outside their domain are refused by
 * every constructor and function of nn/ that takes one, with a message
 * naming the function and the value; a refused constructor registers
 * nothing. The edges of each domain are still accepted. */

#define REJECTS(call, msg)                                                                              \
    do {                                                                                                \
        sg_clear_error();                                                                               \
        ck_assert_msg((call), "%s was accepted", #call);                                                \
        ck_assert_msg(strstr(sg_last_error(), (msg)) != NULL, "%s: error \"%s\" lacks \"%s\"", #call,    \
                      sg_last_error(), (msg));                                                          \
    } while (0)

START_TEST(test_hyperparameters_rejected)
{
    sg_rng rng;
    sg_rng_seed(&rng, 3);
    sg_model *m = sg_model_new();
    ck_assert_ptr_nonnull(m);
    sg_tensor *w = sg_zeros(SG_DIMS(2, 3));
    const float nan = NAN, inf = INFINITY;
    REJECTS(!sg_leaky_relu_new(m, "l1", nan), "leaky_relu_new: slope nan is not finite");
    REJECTS(!sg_leaky_relu_new(m, "l2", -inf), "leaky_relu_new: slope -inf is not finite");
    REJECTS(!sg_leaky_relu(w, nan), "leaky_relu: slope nan is not finite");
    /* a residual block without a shortcut counts its body, and no NULL */
    sg_clear_error();
    sg_model *m2 = sg_model_new();
    sg_layer *body = sg_linear_new(m2, "rb", 2, 2, SG_INIT_ZEROS, NULL);
    sg_layer *res = sg_residual_new(m2, "res", body, NULL);
    ck_assert_uint_eq(sg_layer_num_params(res), 6);
    ck_assert_msg(!sg_has_error(), "%s", sg_last_error());
    sg_model_free(m2);
    REJECTS(!sg_batchnorm_new_ex(m, "b1", 3, 0.1f, inf), "batchnorm_new_ex: eps inf is not finite");
    REJECTS(!sg_batchnorm_new_ex(m, "b2", 3, 0.1f, nan), "batchnorm_new_ex: eps nan is not finite");
    REJECTS(!sg_batchnorm_new_ex(m, "b3", 3, 0.1f, 0.f), "batchnorm_new_ex: eps 0 must be > 0");
    REJECTS(!sg_batchnorm_new_ex(m, "b4", 3, 1.5f, 1e-5f), "batchnorm_new_ex: momentum 1.5 is outside [0, 1]");
    REJECTS(!sg_batchnorm_new_ex(m, "b5", 3, -0.1f, 1e-5f), "batchnorm_new_ex: momentum -0.1 is outside [0, 1]");
    REJECTS(!sg_batchnorm_new_ex(m, "b6", 3, nan, 1e-5f), "batchnorm_new_ex: momentum nan is outside [0, 1]");
    REJECTS(!sg_linear_new(m, "f1", 2, 3, SG_INIT_CONSTANT(nan), &rng),
            "linear_new: constant init value nan is not finite");
    REJECTS(!sg_linear_new(m, "f2", 2, 3, SG_INIT_UNIFORM(-1.f), &rng),
            "linear_new: uniform init bound -1 must be >= 0");
    REJECTS(!sg_conv2d_new(m, "c1", 1, 2, 3, 1, 0, SG_INIT_NORMAL(inf), &rng),
            "conv2d_new: normal init std inf is not finite");
    REJECTS(sg_init_fill(w, SG_INIT_CONSTANT(inf), &rng) < 0, "init_fill: constant init value inf is not finite");
    REJECTS(sg_init_fill(w, SG_INIT_CONSTANT(-inf), &rng) < 0, "init_fill: constant init value -inf is not finite");
    REJECTS(sg_init_fill(w, SG_INIT_UNIFORM(nan), &rng) < 0, "init_fill: uniform init bound nan is not finite");
    REJECTS(!sg_dropout_new(m, "d1", nan, &rng), "dropout_new: drop probability nan is outside [0, 1)");
    REJECTS(!sg_dropout_new(m, "d2", 1.f, &rng), "dropout_new: drop probability 1 is outside [0, 1)");
    ck_assert_float_eq(sg_data(w)[0], 0.f); /* a refused fill writes nothing */
    sg_scope_begin();
    sg_tensor *x = sg_ones(SG_DIMS(4, 3));
    REJECTS(!BATCH_NORM(x, NULL, NULL, NULL, NULL, true, 0.1f, inf), "batch_norm: eps inf must be > 0 and finite");
    REJECTS(!BATCH_NORM(x, NULL, NULL, NULL, NULL, false, 0.1f, nan), "batch_norm: eps nan");
    REJECTS(!BATCH_NORM(x, NULL, NULL, NULL, NULL, true, 2.f, 1e-5f), "momentum 2 in [0, 1]");
    REJECTS(!sg_dropout(x, inf, true, &rng), "dropout: drop probability inf is outside [0, 1]");
    sg_scope_end();
    int np;
    sg_model_params(m, &np);
    ck_assert_int_eq(np, 0); /* no refused constructor left a tensor behind */
    ck_assert_ptr_null(sg_model_layer(m, "b1"));

    /* the edges of the domains */
    sg_clear_error();
    ck_assert_ptr_nonnull(sg_leaky_relu_new(m, "ok1", -0.5f));
    ck_assert_ptr_nonnull(sg_batchnorm_new_ex(m, "ok2", 3, 0.f, 1e-30f));
    ck_assert_ptr_nonnull(sg_batchnorm_new_ex(m, "ok3", 3, 1.f, 1e3f));
    ck_assert_ptr_nonnull(sg_linear_new(m, "ok4", 2, 3, SG_INIT_CONSTANT(-2.5f), &rng));
    ck_assert_float_eq(sg_data(sg_model_param(m, "ok4.W"))[5], -2.5f);
    ck_assert_ptr_nonnull(sg_dropout_new(m, "ok5", 0.f, &rng));
    ck_assert_int_eq(sg_init_fill(w, SG_INIT_UNIFORM(0.f), &rng), 0);
    ck_assert(!sg_has_error());
    sg_tensor_free(w);
    sg_model_free(m);
}
END_TEST

/* sg_accuracy takes class indices as the losses do: integers in [0, K);
 * one out of range is an error, not a silent miss. */
START_TEST(test_accuracy_rejects_bad_labels)
{
    sg_scope_begin();
    sg_tensor *y = sg_from_data((float[]){0.9f, 0.1f, 0.f, 0.2f, 0.7f, 0.1f}, SG_DIMS(2, 3));
    sg_clear_error();
    ck_assert_float_eq(sg_accuracy(y, sg_from_data((float[]){0.f, 2.f}, SG_DIMS(2))), 0.5f);
    REJECTS(isnan(sg_accuracy(y, sg_from_data((float[]){0.f, 3.f}, SG_DIMS(2)))),
            "accuracy: target 3 of sample 1 is not a class index in [0, 3)");
    REJECTS(isnan(sg_accuracy(y, sg_from_data((float[]){-1.f, 1.f}, SG_DIMS(2)))),
            "accuracy: target -1 of sample 0 is not a class index in [0, 3)");
    REJECTS(isnan(sg_accuracy(y, sg_from_data((float[]){1.5f, 1.f}, SG_DIMS(2)))),
            "accuracy: target 1.5 of sample 0");
    REJECTS(isnan(sg_accuracy(y, sg_from_data((float[]){0.f, NAN}, SG_DIMS(2)))),
            "accuracy: target nan of sample 1");
    /* the loss says the same of the same labels */
    REJECTS(!sg_cross_entropy(y, sg_from_data((float[]){0.f, 3.f}, SG_DIMS(2))), "is not a class index in [0, 3)");
    sg_scope_end();
    sg_clear_error();
}
END_TEST



/* datasets/: a set filled by hand with a label past its n_classes is
 * refused by every batch function (a one-hot row has no room for it: the
 * old code wrote past the tensor), and the noisy sine's noise must be
 * finite. (test_datasets.c belongs to the file readers; these are the
 * batch and synthetic halves.) */
START_TEST(test_dataset_labels_and_noise_checked)
{
    sg_dataset *d = sg_dataset_new(3, 2, 2, 10);
    ck_assert_ptr_nonnull(d);
    d->labels[0] = 9;
    d->labels[2] = 15;
    int out[3];
    sg_scope_begin();
    REJECTS(!sg_dataset_labels(d, NULL, 3, &(sg_batch_opts){.one_hot = true}),
            "dataset_labels: sample 2 has label 15, outside the set's 10 classes");
    REJECTS(!sg_dataset_images(d, (int[]){1, 2}, 2, NULL), "dataset_images: sample 2 has label 15");
    REJECTS(sg_dataset_label_ints(d, NULL, 3, out) < 0, "dataset_label_ints: sample 2 has label 15");
    sg_clear_error();
    sg_tensor *t = sg_dataset_labels(d, (int[]){0, 1}, 2, &(sg_batch_opts){.one_hot = true});
    ck_assert_ptr_nonnull(t);
    ck_assert_float_eq(sg_data(t)[9], 1.f);  /* sample 0: class 9 */
    ck_assert_float_eq(sg_data(t)[10], 1.f); /* sample 1: class 0 */
    sg_tensor *x, *y;
    REJECTS(sg_noisy_sine(4, NAN, NULL, &x, &y) < 0, "noisy_sine: need n >= 1 and a finite noise >= 0 (got n=4, noise=nan)");
    REJECTS(sg_noisy_sine(4, INFINITY, NULL, &x, &y) < 0, "noise=inf");
    ck_assert_ptr_null(x);
    sg_scope_end();
    sg_dataset_free(d);
    sg_clear_error();
}
END_TEST

/* ------------------------------------------------------------------------- */
/* NULL arguments: every public function of nn/ (sg_nn.h) and datasets/
 * (sg_datasets.h) given NULL where it needs an object fails with a message
 * that starts with the function's name, never a crash or an empty message.
 * One row per (function, NULL argument), walked in header order; each row
 * runs in its own process (a loop test), so a crash names its row. Left
 * out: the _free functions and sg_loader_reset (NULL is documented as
 * fine, like free(NULL)), sg_init_fans (a NULL shape is the 0-d case),
 * and pointers documented as optional (a NULL bias, rng, scale vector or
 * output array with count 0). */

typedef struct null_fx {
    sg_model *m;
    sg_layer *l, *seq;
    sg_tensor *x, *y, *t;
    sg_dataset *d;
    sg_loader *ld;
    int labels[2];
} null_fx;

#define NN_NULL_ROWS(X)                                                                          \
    X("identity:", !sg_identity(NULL))                                                           \
    X("step:", !sg_step(NULL))                                                                   \
    X("sigmoid:", !sg_sigmoid(NULL))                                                             \
    X("tanh:", !sg_tanh(NULL))                                                                   \
    X("leaky_relu:", !sg_leaky_relu(NULL, 0.1f))                                                 \
    X("softmax:", !sg_softmax(NULL))                                                             \
    X("log_softmax:", !sg_log_softmax(NULL))                                                     \
    X("sum_squares_loss:", !sg_sum_squares_loss(NULL, f->t))                                     \
    X("sum_squares_loss:", !sg_sum_squares_loss(f->y, NULL))                                     \
    X("mse_loss:", !sg_mse_loss(NULL, f->t))                                                     \
    X("mse_loss:", !sg_mse_loss(f->y, NULL))                                                     \
    X("cross_entropy:", !sg_cross_entropy(NULL, f->t))                                           \
    X("cross_entropy:", !sg_cross_entropy(f->y, NULL))                                           \
    X("cross_entropy_labels:", !sg_cross_entropy_labels(NULL, f->labels, 2))                     \
    X("cross_entropy_labels:", !sg_cross_entropy_labels(f->y, NULL, 2))                          \
    X("softmax_cross_entropy:", !sg_softmax_cross_entropy(NULL, f->t))                           \
    X("softmax_cross_entropy:", !sg_softmax_cross_entropy(f->y, NULL))                           \
    X("softmax_cross_entropy_labels:", !sg_softmax_cross_entropy_labels(NULL, f->labels, 2))     \
    X("softmax_cross_entropy_labels:", !sg_softmax_cross_entropy_labels(f->y, NULL, 2))          \
    X("one_hot:", !sg_one_hot(NULL, 2, 3))                                                       \
    X("accuracy:", isnan(sg_accuracy(NULL, f->t)))                                               \
    X("accuracy:", isnan(sg_accuracy(f->y, NULL)))                                               \
    X("linear:", !sg_linear(NULL, f->x, NULL))                                                   \
    X("linear:", !sg_linear(f->y, NULL, NULL))                                                   \
    X("conv2d:", !sg_conv2d(NULL, f->x, NULL, 1, 0))                                             \
    X("conv2d:", !sg_conv2d(f->x, NULL, NULL, 1, 0))                                             \
    X("max_pool2d:", !sg_max_pool2d(NULL, 2, 2, 0))                                              \
    X("avg_pool2d:", !sg_avg_pool2d(NULL, 2, 2, 0))                                              \
    X("global_avg_pool2d:", !sg_global_avg_pool2d(NULL))                                         \
    X("residual_add:", !sg_residual_add(NULL, f->y))                                             \
    X("residual_add:", !sg_residual_add(f->y, NULL))                                             \
    X("dropout:", !sg_dropout(NULL, 0.5f, true, NULL))                                           \
    X("batch_norm:", !BATCH_NORM(NULL, NULL, NULL, NULL, NULL, true, 0.1f, 1e-5f))            \
    X("init_fill:", sg_init_fill(NULL, SG_INIT_ZEROS, NULL) < 0)                                 \
    X("model_add:", !sg_model_add(NULL, f->l))                                                   \
    X("model_add:", !sg_model_add(f->m, NULL))                                                   \
    X("model_forward:", !sg_model_forward(NULL, f->y))                                           \
    X("model_forward:", !sg_model_forward(f->m, NULL))                                           \
    X("model_set_training:", (sg_model_set_training(NULL, false), true))                         \
    X("model_is_training:", !sg_model_is_training(NULL))                                         \
    X("model_num_params:", sg_model_num_params(NULL, true) == 0)                                 \
    X("model_summary:", sg_model_summary(NULL, stdout, SG_DIMS(1, 2)) < 0)                         \
    X("model_summary:", sg_model_summary(f->m, NULL, SG_DIMS(1, 2)) < 0)                           \
    X("model_add_param:", !sg_model_add_param(NULL, "p", sg_zeros(SG_DIMS(1)), true))            \
    X("model_add_param:", !sg_model_add_param(f->m, NULL, sg_zeros(SG_DIMS(1)), true))           \
    X("model_add_param:", !sg_model_add_param(f->m, "p", NULL, true))                            \
    X("model_param:", !sg_model_param(NULL, "fc.W"))                                             \
    X("model_param:", !sg_model_param(f->m, NULL))                                               \
    X("model_params:", !sg_model_params(NULL, NULL))                                             \
    X("model_trainable:", sg_model_trainable(NULL, NULL, 0) == 0)                                \
    X("model_layer:", !sg_model_layer(NULL, "fc"))                                               \
    X("model_layer:", !sg_model_layer(f->m, NULL))                                               \
    X("linear_new:", !sg_linear_new(NULL, "a", 2, 3, SG_INIT_HE, NULL))                          \
    X("conv2d_new:", !sg_conv2d_new(NULL, "a", 1, 2, 3, 1, 0, SG_INIT_HE, NULL))                 \
    X("batchnorm_new:", !sg_batchnorm_new(NULL, "a", 3))                                         \
    X("batchnorm_new_ex:", !sg_batchnorm_new_ex(NULL, "a", 3, 0.1f, 1e-5f))                      \
    X("dropout_new:", !sg_dropout_new(NULL, "a", 0.5f, NULL))                                    \
    X("maxpool2d_new:", !sg_maxpool2d_new(NULL, "a", 2, 2, 0))                                   \
    X("avgpool2d_new:", !sg_avgpool2d_new(NULL, "a", 2, 2, 0))                                   \
    X("flatten_new:", !sg_flatten_new(NULL, "a"))                                                \
    X("global_avgpool_new:", !sg_global_avgpool_new(NULL, "a"))                                  \
    X("identity_new:", !sg_identity_new(NULL, "a"))                                              \
    X("step_new:", !sg_step_new(NULL, "a"))                                                      \
    X("sigmoid_new:", !sg_sigmoid_new(NULL, "a"))                                                \
    X("tanh_new:", !sg_tanh_new(NULL, "a"))                                                      \
    X("relu_new:", !sg_relu_new(NULL, "a"))                                                      \
    X("leaky_relu_new:", !sg_leaky_relu_new(NULL, "a", 0.1f))                                    \
    X("softmax_new:", !sg_softmax_new(NULL, "a"))                                                \
    X("log_softmax_new:", !sg_log_softmax_new(NULL, "a"))                                        \
    X("sequential_new:", !sg_sequential_new(NULL, "a"))                                          \
    X("sequential_add:", !sg_sequential_add(NULL, f->l))                                         \
    X("sequential_add:", !sg_sequential_add(f->seq, NULL))                                           \
    X("residual_new:", !sg_residual_new(NULL, "a", f->l, NULL))                                  \
    X("residual_new:", !sg_residual_new(f->m, "a", NULL, NULL))                                  \
    X("layer_new:", !sg_layer_new(NULL, "a", "k", custom_double, NULL))                          \
    X("layer_new:", !sg_layer_new(f->m, "a", "k", NULL, NULL))                                   \
    X("layer_add_param:", !sg_layer_add_param(NULL, "w", sg_zeros(SG_DIMS(1)), true))            \
    X("layer_add_param:", !sg_layer_add_param(f->l, NULL, sg_zeros(SG_DIMS(1)), true))           \
    X("layer_add_param:", !sg_layer_add_param(f->l, "w", NULL, true))                            \
    X("layer_param:", !sg_layer_param(NULL, "W"))                                                \
    X("layer_param:", !sg_layer_param(f->l, NULL))                                               \
    X("layer_forward:", !sg_layer_forward(NULL, f->y, false))                                    \
    X("layer_forward:", !sg_layer_forward(f->l, NULL, false))                                    \
    X("layer_name:", !strcmp(sg_layer_name(NULL), ""))                                           \
    X("layer_kind:", !strcmp(sg_layer_kind(NULL), ""))                                           \
    X("layer_num_params:", sg_layer_num_params(NULL) == 0)                                       \
    X("safetensors_save:", sg_safetensors_save(NULL, sg_model_params(f->m, NULL), 2) < 0)        \
    X("safetensors_save:", sg_safetensors_save("/tmp/never-written", NULL, 2) < 0)               \
    X("safetensors_load:", sg_safetensors_load(NULL, sg_model_params(f->m, NULL), 2) < 0)        \
    X("safetensors_load:", sg_safetensors_load("/dev/null", NULL, 2) < 0)                        \
    X("safetensors_save_meta:", sg_safetensors_save_meta(NULL, NULL, 0, NULL, 0) < 0)            \
    X("safetensors_metadata:", !sg_safetensors_metadata(NULL, &f->labels[0]))                   \
    X("model_layers:", sg_model_layers(NULL, NULL, 0) == 0)                                      \
    X("layer_rng:", !sg_layer_rng(NULL))                                                         \
    X("model_save:", sg_model_save(NULL, "/tmp/never-written") < 0)                              \
    X("model_save:", sg_model_save(f->m, NULL) < 0)                                              \
    X("model_load:", sg_model_load(NULL, "/dev/null") < 0)                                       \
    X("model_load:", sg_model_load(f->m, NULL) < 0)                                              \
    X("idx_load:", !sg_idx_load(NULL, "/dev/null"))                                              \
    X("idx_load:", !sg_idx_load("/dev/null", NULL))                                              \
    X("idx_save:", sg_idx_save(NULL, "/tmp/never-written", "/tmp/never-written") < 0)            \
    X("idx_save:", sg_idx_save(f->d, NULL, "/tmp/never-written") < 0)                            \
    X("idx_save:", sg_idx_save(f->d, "/tmp/never-written", NULL) < 0)                            \
    X("mnist_load:", !sg_mnist_load(NULL, true))                                                 \
    X("dataset_subset:", !sg_dataset_subset(NULL, 0, 1))                                         \
    X("mnist_json_to_idx:", sg_mnist_json_to_idx(NULL, "/tmp", NULL, NULL) < 0)                  \
    X("mnist_json_to_idx:", sg_mnist_json_to_idx("/tmp", NULL, NULL, NULL) < 0)                  \
    X("dataset_images:", !sg_dataset_images(NULL, NULL, 1, NULL))                                \
    X("dataset_labels:", !sg_dataset_labels(NULL, NULL, 1, NULL))                                \
    X("dataset_label_ints:", sg_dataset_label_ints(NULL, NULL, 1, f->labels) < 0)                \
    X("dataset_label_ints:", sg_dataset_label_ints(f->d, NULL, 1, NULL) < 0)                     \
    X("take_rows:", !sg_take_rows(NULL, NULL, 1))                                                \
    X("loader_new:", !sg_loader_new(4, NULL))                                                    \
    X("loader_next:", sg_loader_next(NULL, &(const int *){NULL}) < 0)                            \
    X("loader_next:", sg_loader_next(f->ld, NULL) < 0)                                           \
    X("loader_epoch:", sg_loader_epoch(NULL) == 0)                                               \
    X("loader_batches:", sg_loader_batches(NULL) == 0)                                           \
    X("logic_gate:", sg_logic_gate(SG_GATE_AND, NULL, &f->t) < 0)                                \
    X("logic_gate:", sg_logic_gate(SG_GATE_AND, &f->t, NULL) < 0)                                \
    X("spiral:", sg_spiral(2, 2, false, NULL, NULL, &f->t) < 0)                                  \
    X("noisy_sine:", sg_noisy_sine(2, 0.1f, NULL, &f->t, NULL) < 0)

#define NULL_ROW_NAME(who, call) who,
static const char *const nn_null_who[] = {NN_NULL_ROWS(NULL_ROW_NAME)};
enum { N_NN_NULL_ROWS = sizeof nn_null_who / sizeof nn_null_who[0] };

static sg_tensor *custom_double(sg_layer *self, sg_tensor *x, bool training, void *ctx)
{
    (void)self, (void)training, (void)ctx;
    return sg_mul_scalar(x, 2.f);
}

/* Row i: true if the call reported failure (its documented NULL answer). */
static bool nn_null_call(int i, null_fx *f)
{
    int k = 0;
#define NULL_ROW_CALL(who, call)                                                                 \
    if (i == k++)                                                                                \
        return (call);
    NN_NULL_ROWS(NULL_ROW_CALL)
#undef NULL_ROW_CALL
    return false;
}

START_TEST(test_null_arguments)
{
    null_fx f = {.labels = {0, 1}};
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    f.m = sg_model_new();
    f.l = sg_model_add(f.m, sg_linear_new(f.m, "fc", 2, 3, SG_INIT_HE, &rng));
    f.seq = sg_sequential_new(f.m, "seq");
    f.d = sg_dataset_new(2, 2, 2, 10);
    f.ld = sg_loader_new(4, &(sg_loader_opts){.batch = 2});
    ck_assert(f.m && f.l && f.seq && f.d && f.ld);
    sg_scope_begin();
    f.x = sg_zeros(SG_DIMS(1, 1, 4, 4));
    f.y = sg_zeros(SG_DIMS(2, 3));
    f.t = sg_zeros(SG_DIMS(2, 3));
    sg_clear_error();
    const char *who = nn_null_who[_i];
    ck_assert_msg(nn_null_call(_i, &f), "row %d: %s did not fail on NULL", _i, who);
    ck_assert_msg(sg_has_error(), "row %d: %s failed without a message", _i, who);
    ck_assert_msg(strncmp(sg_last_error(), who, strlen(who)) == 0, "row %d: \"%s\" does not start with \"%s\"",
                  _i, sg_last_error(), who);
    sg_scope_end();
    sg_loader_free(f.ld);
    sg_dataset_free(f.d);
    sg_model_free(f.m);
    sg_clear_error();
}
END_TEST

/* The layers a model made, in creation order, whether in its sequence or
 * not; a dropout layer's own generator, whose state replays its masks (a
 * resumed run draws the same ones); none for other layers. */
START_TEST(test_model_layers_and_rngs)
{
    sg_rng rng;
    sg_rng_seed(&rng, 3);
    sg_model *m = sg_model_new();
    sg_layer *fc = sg_linear_new(m, "fc", 4, 4, SG_INIT_HE, &rng);
    sg_layer *drop = sg_dropout_new(m, "drop", 0.5f, &rng);
    sg_layer *loose = sg_relu_new(m, "loose"); /* made, not added */
    sg_model_add(m, fc);
    sg_model_add(m, drop);
    sg_layer *all[4] = {NULL};
    ck_assert_int_eq(sg_model_layers(m, NULL, 0), 3);
    ck_assert_int_eq(sg_model_layers(m, all, 2), 3); /* copies only cap */
    ck_assert(all[0] == fc && all[1] == drop && all[2] == NULL);
    ck_assert_int_eq(sg_model_layers(m, all, 4), 3);
    ck_assert(all[2] == loose && all[3] == NULL);
    ck_assert_ptr_null(sg_layer_rng(fc));
    ck_assert_ptr_null(sg_layer_rng(loose));
    ck_assert(!sg_has_error());
    sg_rng *r = sg_layer_rng(drop);
    ck_assert_ptr_nonnull(r);
    sg_rng saved = *r;
    sg_tensor *x = sg_ones(SG_DIMS(64, 4));
    float masks[3][64 * 4];
    for (int i = 0; i < 3; i++) {
        if (i == 2)
            *r = saved; /* back to the state before the first mask */
        sg_scope_begin();
        sg_tensor *y = sg_model_forward(m, x);
        ck_assert_ptr_nonnull(y);
        ck_assert_uint_eq(sg_size(y), 64 * 4);
        memcpy(masks[i], sg_data(y), sizeof masks[i]);
        sg_scope_end();
    }
    ck_assert(memcmp(masks[0], masks[1], sizeof masks[0]) != 0);
    ck_assert(memcmp(masks[0], masks[2], sizeof masks[0]) == 0);
    sg_tensor_free(x);
    sg_model_free(m);
}
END_TEST

/* ------------------------------------------------------------------------- */

static Suite *nn_suite(void)
{
    Suite *s = suite_create("nn");
    struct { const char *name; const TTest *tests[12]; } groups[] = {
        {"activations", {test_step_identity, test_sigmoid_tanh_values_and_grads, test_leaky_relu,
                         test_softmax_stable, test_activation_gradchecks}},
        {"losses", {test_loss_book_values, test_softmax_cross_entropy_values, test_loss_errors_and_accuracy,
                    test_loss_gradchecks}},
        {"layers", {test_linear, test_conv2d_matches_direct, test_conv2d_gradcheck, test_pooling_values,
                    test_pooling_gradcheck, test_batchnorm_training, test_batchnorm_eval_uses_running_stats,
                    test_dropout, test_residual_flatten}},
        {"init", {test_init}},
        {"models", {test_model_simple_convnet, test_model_forward_matches_functions, test_model_gradcheck,
                    test_model_residual_and_custom, test_model_errors, test_model_learns_xor,
                    test_model_layers_and_rngs}},
        {"purity", {test_nn_has_no_backward_code}},
        {"hyperparameters", {test_hyperparameters_rejected, test_accuracy_rejects_bad_labels,
                             test_dataset_labels_and_noise_checked}},
    };
    for (size_t g = 0; g < sizeof groups / sizeof groups[0]; g++) {
        TCase *tc = tcase_create(groups[g].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        for (int i = 0; i < 12 && groups[g].tests[i]; i++)
            tcase_add_test(tc, groups[g].tests[i]);
        suite_add_tcase(s, tc);
    }
    TCase *nulls = tcase_create("null arguments");
    tcase_add_checked_fixture(nulls, setup, teardown);
    tcase_add_loop_test(nulls, test_null_arguments, 0, N_NN_NULL_ROWS);
    suite_add_tcase(s, nulls);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(nn_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    sg_release_memory();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
