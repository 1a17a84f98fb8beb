/*
 * test_optim.c — Check suite for optim/: every optimizer's first two updates
 * against hand-computed numbers, convergence on the book's f(x, y) =
 * x²/20 + y² (ch. 6), weight decay (L2 and decoupled), gradient clipping,
 * learning-rate schedules, per-parameter state, XOR learned with every
 * optimizer, and the error cases.
 *
 * Expected numbers are worked out in the comments (and were checked with a
 * few lines of python3 in double precision following torch.optim's
 * formulas). Parameters are float32, so values near 1 after two updates
 * carry a rounding error of a few 1e-7: the tolerance TOL = 1e-6 is
 * justified by that, and is far smaller than any difference between the
 * formulas tested (the book's and PyTorch's variants differ by > 1e-3 here).
 */
#include "sg_optim.h"

#include <check.h>
#include <stddef.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
#define HAVE_MALLINFO2 1
#endif

#define TOL 1e-6f

/* ------------------------------------------------------------------------- */
/* Helpers */

/* A persistent parameter w = (a, b). */
static sg_tensor *param2(float a, float b)
{
    const float d[2] = {a, b};
    sg_tensor *w = sg_param(sg_from_data(d, SG_DIMS(2)));
    ck_assert_ptr_nonnull(w);
    return w;
}

/* Loss kinds for one_step(): HALF_SQ gives g = w, SUM gives g = (1, 1). */
enum loss_kind { HALF_SQ, SUM };

/* One training step on a single parameter w with the engine: zero_grad,
 * L = ½·Σw² (g = w) or L = Σw (g = 1), backward, optimizer step. */
static void one_step(sg_optim *opt, sg_tensor *w, enum loss_kind loss)
{
    sg_scope_begin();
    sg_optim_zero_grad(&w, 1);
    sg_tensor *L = loss == HALF_SQ ? sg_mul_scalar(sg_sum_all(sg_square(w)), 0.5f) : sg_sum_all(w);
    ck_assert_ptr_nonnull(L);
    ck_assert_int_eq(sg_backward(L, NULL), 0);
    ck_assert_msg(sg_optim_step(opt, &w, 1) == 0, "%s", sg_last_error());
    sg_scope_end();
}

#define ck_assert_w(w, a, b)                                                                       \
    do {                                                                                           \
        ck_assert_float_eq_tol(sg_data(w)[0], (a), TOL);                                           \
        ck_assert_float_eq_tol(sg_data(w)[1], (b), TOL);                                           \
    } while (0)

/* Two steps from w0 = (1, -2) with L = ½·Σw² (so g = w); checks both. */
static void two_steps(sg_optim *opt, float a1, float b1, float a2, float b2)
{
    ck_assert_msg(opt != NULL, "%s", sg_last_error());
    sg_tensor *w = param2(1.0f, -2.0f);
    one_step(opt, w, HALF_SQ);
    ck_assert_w(w, a1, b1);
    one_step(opt, w, HALF_SQ);
    ck_assert_w(w, a2, b2);
    ck_assert_int_eq(sg_optim_steps(opt), 2);
    ck_assert_int_eq(sg_optim_param_steps(opt, w), 2);
    sg_optim_free(opt);
    sg_tensor_free(w);
}

/* Checks that an error is recorded whose message contains `part`, then clears it. */
static void expect_error(const char *part)
{
    ck_assert_msg(sg_has_error(), "expected an error containing \"%s\"", part);
    ck_assert_msg(strstr(sg_last_error(), part) != NULL, "error \"%s\" lacks \"%s\"",
                  sg_last_error(), part);
    sg_clear_error();
}

static void setup(void) { sg_clear_error(); }

/* ------------------------------------------------------------------------- */
/* First two updates of each optimizer, w0 = (1, -2), g = w */

START_TEST(test_sgd_two_steps)
{
    /* w ← w − η·g with η = 0.1 and g = w: w ← 0.9·w
     * step 1: (0.9, −1.8);  step 2: (0.81, −1.62) */
    two_steps(sg_sgd_new(0.1f), 0.9f, -1.8f, 0.81f, -1.62f);
}
END_TEST

START_TEST(test_momentum_two_steps)
{
    /* η = 0.1, μ = 0.9.
     * step 1: b = g = (1, −2);  w = (1, −2) − 0.1·(1, −2) = (0.9, −1.8)
     * step 2: g = (0.9, −1.8);  b = 0.9·(1, −2) + (0.9, −1.8) = (1.8, −3.6)
     *         w = (0.9, −1.8) − 0.1·(1.8, −3.6) = (0.72, −1.44)
     * (The book's v = μv − ηg, w += v gives v1 = −0.1·(1, −2), v2 = 0.9·v1 −
     * 0.1·(0.9, −1.8) = (−0.18, 0.36): the same w with a fixed η.) */
    two_steps(sg_momentum_new(0.1f, 0.9f), 0.9f, -1.8f, 0.72f, -1.44f);
}
END_TEST

START_TEST(test_momentum_dampening)
{
    /* η = 0.1, μ = 0.9, dampening 0.5 (does not apply at t = 1).
     * step 1: b = g = (1, −2);  w = (0.9, −1.8)
     * step 2: b = 0.9·(1, −2) + 0.5·(0.9, −1.8) = (1.35, −2.7)
     *         w = (0.9, −1.8) − 0.1·(1.35, −2.7) = (0.765, −1.53) */
    sg_optim_opts o = sg_optim_defaults(SG_OPTIM_MOMENTUM);
    o.lr = 0.1f;
    o.dampening = 0.5f;
    two_steps(sg_optim_new(&o), 0.9f, -1.8f, 0.765f, -1.53f);
}
END_TEST

START_TEST(test_nesterov_two_steps)
{
    /* η = 0.1, μ = 0.9;  w ← w − η·(g + μ·b).
     * step 1: b = g = (1, −2);  g + μb = 1.9·(1, −2)
     *         w = (1, −2) − 0.19·(1, −2) = (0.81, −1.62)
     * step 2: g = (0.81, −1.62);  b = 0.9·(1, −2) + (0.81, −1.62) = (1.71, −3.42)
     *         g + μb = (0.81 + 1.539, −1.62 − 3.078) = (2.349, −4.698)
     *         w = (0.81 − 0.2349, −1.62 + 0.4698) = (0.5751, −1.1502)
     * The book's code (params += μ²·v − (1+μ)·η·g with the updated v) would
     * give step 1: v = −0.1·(1, −2); w = 1 + 0.81·(−0.1) − 1.9·0.1 = 0.729. */
    two_steps(sg_nesterov_new(0.1f, 0.9f), 0.81f, -1.62f, 0.5751f, -1.1502f);
}
END_TEST

START_TEST(test_adagrad_two_steps)
{
    /* η = 0.5, ε = 1e-10 (negligible here).
     * step 1: s = g² = (1, 4);  w = 1 − 0.5·1/1 = 0.5,  −2 + 0.5·2/2 = −1.5
     * step 2: g = (0.5, −1.5);  s = (1.25, 6.25);  √s = (1.1180340, 2.5)
     *         w = 0.5 − 0.5·0.5/1.1180340 = 0.5 − 0.2236068 = 0.2763932
     *             −1.5 + 0.5·1.5/2.5 = −1.5 + 0.3 = −1.2 */
    two_steps(sg_adagrad_new(0.5f), 0.5f, -1.5f, 0.2763932f, -1.2f);
}
END_TEST

START_TEST(test_adagrad_decay_and_initial)
{
    /* η = 0.5, lr_decay 1, initial_accumulator 3.
     * step 1: η_1 = 0.5;  s = 3 + (1, 4) = (4, 7);  √7 = 2.6457513
     *         w = 1 − 0.5·1/2 = 0.75,  −2 + 0.5·2/2.6457513 = −1.6220355
     * step 2: η_2 = 0.5/(1 + 1·1) = 0.25;  g = (0.75, −1.6220355)
     *         s = (4 + 0.5625, 7 + 2.6309993) = (4.5625, 9.6309993)
     *         √s = (2.1360009, 3.1033851)
     *         w = 0.75 − 0.25·0.75/2.1360009 = 0.6622191
     *             −1.6220355 + 0.25·1.6220355/3.1033851 = −1.4913689 */
    sg_optim_opts o = sg_optim_defaults(SG_OPTIM_ADAGRAD);
    o.lr = 0.5f;
    o.lr_decay = 1.0f;
    o.initial_accumulator = 3.0f;
    two_steps(sg_optim_new(&o), 0.75f, -1.6220355f, 0.6622191f, -1.4913689f);
}
END_TEST

START_TEST(test_rmsprop_two_steps)
{
    /* η = 0.1, α = 0.9, ε = 1e-8.
     * step 1: s = 0.1·g² = (0.1, 0.4);  √s = (0.3162278, 0.6324555)
     *         w = 1 − 0.1·1/0.3162278 = 0.6837722
     *             −2 + 0.1·2/0.6324555 = −1.6837722
     * step 2: g = (0.6837722, −1.6837722);  g² = (0.4675445, 2.8350889)
     *         s = 0.9·(0.1, 0.4) + 0.1·g² = (0.1367544, 0.6435089)
     *         √s = (0.3698033, 0.8021901)
     *         w = 0.6837722 − 0.1·0.6837722/0.3698033 = 0.6837722 − 0.1849016 = 0.4988706
     *             −1.6837722 + 0.1·1.6837722/0.8021901 = −1.6837722 + 0.2098969 = −1.4738753
     * (The book's RMSprop has the same form with ε = 1e-7 outside the root.) */
    two_steps(sg_rmsprop_new(0.1f, 0.9f), 0.6837722f, -1.6837722f, 0.4988706f, -1.4738753f);
}
END_TEST

START_TEST(test_eps_outside_root)
{
    /* A large ε shows that AdaGrad and RMSProp add it outside the root (as
     * PyTorch and the book both do), one step from (1, −2) with g = w:
     * AdaGrad η 0.5, ε 0.1: s = (1, 4); w = 1 − 0.5·1/(1 + 0.1) = 0.5454545,
     *   −2 + 0.5·2/(2 + 0.1) = −1.5238095   (ε inside: 1 − 0.5/√1.1 = 0.5232600)
     * RMSProp η 0.1, α 0.9, ε 0.1: s = (0.1, 0.4); √s = (0.3162278, 0.6324555);
     *   w = 1 − 0.1/(0.3162278 + 0.1) = 0.7597469,
     *   −2 + 0.2/(0.6324555 + 0.1) = −1.7269459 */
    sg_optim_opts o = sg_optim_defaults(SG_OPTIM_ADAGRAD);
    o.lr = 0.5f;
    o.eps = 0.1f;
    sg_optim *opt = sg_optim_new(&o);
    sg_tensor *w = param2(1.0f, -2.0f);
    one_step(opt, w, HALF_SQ);
    ck_assert_w(w, 0.5454545f, -1.5238095f);
    sg_optim_free(opt);
    sg_tensor_free(w);

    o = sg_optim_defaults(SG_OPTIM_RMSPROP);
    o.lr = 0.1f;
    o.alpha = 0.9f;
    o.eps = 0.1f;
    opt = sg_optim_new(&o);
    w = param2(1.0f, -2.0f);
    one_step(opt, w, HALF_SQ);
    ck_assert_w(w, 0.7597469f, -1.7269459f);
    sg_optim_free(opt);
    sg_tensor_free(w);
}
END_TEST

START_TEST(test_adam_two_steps)
{
    /* η = 0.1, β1 = 0.9, β2 = 0.999, ε = 1e-8.
     * step 1: m = 0.1·g, v = 0.001·g²;  m̂ = g, v̂ = g²;  w = w − 0.1·g/|g|
     *         = (0.9, −1.9)
     * step 2: g = (0.9, −1.9)
     *         m = 0.9·0.1·(1, −2) + 0.1·(0.9, −1.9) = (0.18, −0.37)
     *         v = 0.999·0.001·(1, 4) + 0.001·(0.81, 3.61) = (0.001809, 0.007606)
     *         1 − β1² = 0.19,  1 − β2² = 0.001999
     *         m̂ = (0.9473684, −1.9473684);  v̂ = (0.9049525, 3.8049025)
     *         √v̂ = (0.9512899, 1.9506159)
     *         w = 0.9 − 0.1·0.9473684/0.9512899 = 0.9 − 0.0995878 = 0.8004122
     *             −1.9 + 0.1·1.9473684/1.9506159 = −1.9 + 0.0998335 = −1.8001665
     * (The book's Adam adds ε to √v, not √v̂: the same to ~1e-7 here.) */
    two_steps(sg_adam_new(0.1f, 0.9f, 0.999f), 0.9f, -1.9f, 0.8004122f, -1.8001665f);
}
END_TEST

START_TEST(test_adam_eps_placement)
{
    /* A large ε shows where it sits. η = 0.1, ε = 0.1, one step, g = (1, −2):
     * PyTorch (ours): w ← w − η·m̂/(√v̂ + ε) = 1 − 0.1·1/(1 + 0.1) = 0.9090909
     *                 −2 + 0.1·2/(2 + 0.1) = −1.9047619
     * The book: lr_t = η·√(1 − β2)/(1 − β1) = 0.1·0.0316228/0.1 = 0.0316228,
     *   w ← w − lr_t·m/(√v + ε) with m = 0.1, √v = 0.0316228:
     *   1 − 0.0316228·0.1/0.1316228 = 0.9759747 — far from ours. */
    sg_optim_opts o = sg_optim_defaults(SG_OPTIM_ADAM);
    o.lr = 0.1f;
    o.eps = 0.1f;
    sg_optim *opt = sg_optim_new(&o);
    sg_tensor *w = param2(1.0f, -2.0f);
    one_step(opt, w, HALF_SQ);
    ck_assert_w(w, 0.9090909f, -1.9047619f);
    sg_optim_free(opt);
    sg_tensor_free(w);
}
END_TEST

START_TEST(test_adamw_two_steps)
{
    /* η = 0.1, λ = 0.1 (decoupled), β = 0.9, 0.999: w ← 0.99·w, then Adam.
     * step 1: g = (1, −2);  w = 0.99·(1, −2) − 0.1·sign(g) = (0.89, −1.88)
     * step 2: g = (0.89, −1.88);  0.99·w = (0.8811, −1.8612)
     *         m = 0.09·(1, −2) + 0.1·(0.89, −1.88) = (0.179, −0.368)
     *         v = 0.000999·(1, 4) + 0.001·(0.7921, 3.5344) = (0.0017911, 0.0075304)
     *         m̂ = m/0.19 = (0.9421053, −1.9368421);  v̂ = v/0.001999 = (0.8959980, 3.7670835)
     *         √v̂ = (0.9465717, 1.9408976)
     *         w = 0.8811 − 0.1·0.9421053/0.9465717 = 0.8811 − 0.0995281 = 0.7815719
     *             −1.8612 + 0.1·1.9368421/1.9408976 = −1.8612 + 0.0997910 = −1.7614090 */
    two_steps(sg_adamw_new(0.1f, 0.1f), 0.89f, -1.88f, 0.7815719f, -1.7614090f);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* The book's comparison (ch. 6): minimize f(x, y) = x²/20 + y² from (−7, 2) */

static const struct {
    sg_optim_kind kind;
    float lr;
    int max_steps; /* asserted bound on the steps needed (measured + margin) */
} book_runs[] = {
    {SG_OPTIM_SGD, 0.95f, 66},       /* the book's lr; 66 exactly, see below */
    {SG_OPTIM_MOMENTUM, 0.1f, 150},  /* the book's lr, μ 0.9 */
    {SG_OPTIM_NESTEROV, 0.1f, 150},  /* as Momentum */
    {SG_OPTIM_ADAGRAD, 1.5f, 100},   /* the book's lr */
    {SG_OPTIM_RMSPROP, 0.1f, 150},   /* α 0.99 */
    {SG_OPTIM_ADAM, 0.3f, 150},      /* the book's lr */
    {SG_OPTIM_ADAMW, 0.3f, 150},     /* λ 0.01 */
};
#define N_BOOK_RUNS ((int)(sizeof book_runs / sizeof book_runs[0]))

/* f(x, y) = x²/20 + y², with the engine */
static sg_tensor *book_f(sg_tensor *x, sg_tensor *y)
{
    return sg_add(sg_mul_scalar(sg_square(x), 1.0f / 20.0f), sg_square(y));
}

START_TEST(test_book_f_minimum)
{
    /* Run 1000 steps; "steps needed" = 1 + the last step that ended with
     * ‖(x, y)‖ >= 0.01, so the point stays within 0.01 of the minimum (0, 0)
     * from then on. At the end it must be within 1e-4.
     * SGD, checked by hand: ∇f = (x/10, 2y), so x ← (1 − 0.095)·x = 0.905·x
     * and y ← (1 − 1.9)·y = −0.9·y. After 65 steps ‖·‖ = ‖(7·0.905^65,
     * 2·0.9^65)‖ = ‖(0.010637, 0.002124)‖ = 0.01085; after 66:
     * ‖(0.009627, 0.001911)‖ = 0.00981. So SGD needs exactly 66. */
    const int r = _i;
    sg_optim_opts o = sg_optim_defaults(book_runs[r].kind);
    o.lr = book_runs[r].lr;
    sg_optim *opt = sg_optim_new(&o);
    ck_assert_msg(opt != NULL, "%s", sg_last_error());
    sg_tensor *x = sg_param(sg_scalar(-7.0f)), *y = sg_param(sg_scalar(2.0f));
    sg_tensor *params[2] = {x, y};
    int needed = 0;
    for (int s = 1; s <= 1000; s++) {
        sg_scope_begin();
        sg_optim_zero_grad(params, 2);
        sg_tensor *f = book_f(x, y);
        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(sg_backward(f, NULL), 0);
        if (s == 1) { /* ∇f(−7, 2) = (−0.7, 4) */
            ck_assert_float_eq_tol(sg_grad_data(x)[0], -0.7f, TOL);
            ck_assert_float_eq_tol(sg_grad_data(y)[0], 4.0f, TOL);
        }
        ck_assert_int_eq(sg_optim_step(opt, params, 2), 0);
        sg_scope_end();
        if (hypot(sg_data(x)[0], sg_data(y)[0]) >= 0.01)
            needed = s + 1;
    }
    printf("book f(x,y) = x^2/20 + y^2 from (-7, 2): %-8s lr %-4g reaches and stays within 0.01 "
           "of (0, 0) after %d steps\n",
           sg_optim_kind_name(o.kind), (double)o.lr, needed);
    ck_assert_float_eq_tol(sg_data(x)[0], 0.0f, 1e-4f);
    ck_assert_float_eq_tol(sg_data(y)[0], 0.0f, 1e-4f);
    ck_assert_int_le(needed, book_runs[r].max_steps);
    if (o.kind == SG_OPTIM_SGD)
        ck_assert_int_eq(needed, 66);
    sg_optim_free(opt);
    sg_tensor_free(x);
    sg_tensor_free(y);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Weight decay, w0 = (1, −2), L = Σw so g = (1, 1) */

/* Two steps of `opt` with g = (1, 1); returns w after each in out[4]. */
static void two_sum_steps(sg_optim *opt, float out[4])
{
    ck_assert_msg(opt != NULL, "%s", sg_last_error());
    sg_tensor *w = param2(1.0f, -2.0f);
    one_step(opt, w, SUM);
    out[0] = sg_data(w)[0];
    out[1] = sg_data(w)[1];
    one_step(opt, w, SUM);
    out[2] = sg_data(w)[0];
    out[3] = sg_data(w)[1];
    sg_optim_free(opt);
    sg_tensor_free(w);
}

static sg_optim *make_wd(sg_optim_kind kind, float lr, float wd, bool decoupled)
{
    sg_optim_opts o = sg_optim_defaults(kind);
    o.lr = lr;
    o.weight_decay = wd;
    o.decoupled_weight_decay = decoupled;
    return sg_optim_new(&o);
}

START_TEST(test_weight_decay_sgd)
{
    /* η = 0.1, λ = 0.5.
     * L2: g' = g + λw = (1 + 0.5, 1 − 1) = (1.5, 0);  w = (1 − 0.15, −2) = (0.85, −2)
     * decoupled: w = 0.95·(1, −2) − 0.1·(1, 1) = (0.85, −2)  — for plain SGD
     * the two are the same: w − η(g + λw) = (1 − ηλ)w − ηg.
     * step 2 (L2): g' = (1 + 0.425, 0);  w = (0.85 − 0.1425, −2) = (0.7075, −2) */
    float l2[4], dec[4];
    two_sum_steps(make_wd(SG_OPTIM_SGD, 0.1f, 0.5f, false), l2);
    two_sum_steps(make_wd(SG_OPTIM_SGD, 0.1f, 0.5f, true), dec);
    const float want[4] = {0.85f, -2.0f, 0.7075f, -2.0f};
    for (int i = 0; i < 4; i++) {
        ck_assert_float_eq_tol(l2[i], want[i], TOL);
        ck_assert_float_eq_tol(dec[i], want[i], TOL);
    }
}
END_TEST

START_TEST(test_weight_decay_momentum)
{
    /* η = 0.1, μ = 0.9, λ = 0.5.
     * L2 (decay enters the velocity):
     *   step 1: g' = (1.5, 0);  b = (1.5, 0);  w = (0.85, −2)
     *   step 2: g' = (1 + 0.425, 0) = (1.425, 0);  b = 0.9·(1.5, 0) + (1.425, 0) = (2.775, 0)
     *           w = (0.85 − 0.2775, −2) = (0.5725, −2)
     * decoupled (it does not):
     *   step 1: w = 0.95·(1, −2) = (0.95, −1.9);  b = (1, 1);  w = (0.85, −2)
     *   step 2: w = 0.95·(0.85, −2) = (0.8075, −1.9);  b = 0.9 + 1 = 1.9
     *           w = (0.8075 − 0.19, −1.9 − 0.19) = (0.6175, −2.09) */
    float l2[4], dec[4];
    two_sum_steps(make_wd(SG_OPTIM_MOMENTUM, 0.1f, 0.5f, false), l2);
    two_sum_steps(make_wd(SG_OPTIM_MOMENTUM, 0.1f, 0.5f, true), dec);
    const float want_l2[4] = {0.85f, -2.0f, 0.5725f, -2.0f};
    const float want_dec[4] = {0.85f, -2.0f, 0.6175f, -2.09f};
    for (int i = 0; i < 4; i++) {
        ck_assert_float_eq_tol(l2[i], want_l2[i], TOL);
        ck_assert_float_eq_tol(dec[i], want_dec[i], TOL);
    }
}
END_TEST

START_TEST(test_weight_decay_adam)
{
    /* η = 0.1, λ = 0.5, β = 0.9, 0.999.
     * Adam + L2: g' = (1.5, 0). Element 2 never moves (m = 0). Element 1:
     *   step 1: m̂ = 1.5, √v̂ = 1.5;  w = 1 − 0.1 = 0.9
     *   step 2: g' = 1 + 0.45 = 1.45;  m = 0.09·1.5 + 0.1·1.45 = 0.28
     *           v = 0.000999·2.25 + 0.001·2.1025 = 0.00435025
     *           m̂ = 0.28/0.19 = 1.4736842;  v̂ = 0.00435025/0.001999 = 2.1762131
     *           w = 0.9 − 0.1·1.4736842/1.4752 = 0.9 − 0.0998973 = 0.8001027
     * AdamW (decoupled): g = (1, 1) so m̂/√v̂ = 1 each step:
     *   step 1: w = 0.95·(1, −2) − 0.1 = (0.85, −2)
     *   step 2: w = 0.95·(0.85, −2) − 0.1 = (0.7075, −2) */
    float l2[4], dec[4], kind_w[4];
    two_sum_steps(make_wd(SG_OPTIM_ADAM, 0.1f, 0.5f, false), l2);
    two_sum_steps(make_wd(SG_OPTIM_ADAM, 0.1f, 0.5f, true), dec);
    two_sum_steps(sg_adamw_new(0.1f, 0.5f), kind_w);
    const float want_l2[4] = {0.9f, -2.0f, 0.8001027f, -2.0f};
    const float want_dec[4] = {0.85f, -2.0f, 0.7075f, -2.0f};
    for (int i = 0; i < 4; i++) {
        ck_assert_float_eq_tol(l2[i], want_l2[i], TOL);
        ck_assert_float_eq_tol(dec[i], want_dec[i], TOL);
        ck_assert_float_eq(kind_w[i], dec[i]); /* ADAMW = ADAM + decoupled, bit for bit */
    }
    /* ADAMW is always decoupled, even if asked otherwise */
    sg_optim_opts o = sg_optim_defaults(SG_OPTIM_ADAMW);
    ck_assert(o.decoupled_weight_decay);
    ck_assert_float_eq(o.weight_decay, 0.01f);
    o.decoupled_weight_decay = false;
    sg_optim *opt = sg_optim_new(&o);
    ck_assert(sg_optim_options(opt)->decoupled_weight_decay);
    sg_optim_free(opt);
}
END_TEST

START_TEST(test_weight_decay_adagrad_rmsprop)
{
    /* η = 0.1, λ = 0.5, L2: g' = (1.5, 0) on step 1.
     * AdaGrad: s = (2.25, 0);  w = 1 − 0.1·1.5/1.5 = 0.9;  element 2: 0/(0 + ε) = 0 → −2
     * RMSProp (α 0.99): s = 0.01·2.25 = 0.0225, √s = 0.15;  w = 1 − 0.1·1.5/0.15 = 0;
     *          element 2 stays −2.
     * Decoupled, step 1, g = 1: AdaGrad w = 0.95·(1, −2) − 0.1·1/1 = (0.85, −2);
     *          RMSProp: √s = 0.1, w = 0.95·(1, −2) − 0.1·1/0.1 = (−0.05, −2.9) */
    float r[4];
    two_sum_steps(make_wd(SG_OPTIM_ADAGRAD, 0.1f, 0.5f, false), r);
    ck_assert_float_eq_tol(r[0], 0.9f, TOL);
    ck_assert_float_eq_tol(r[1], -2.0f, TOL);
    two_sum_steps(make_wd(SG_OPTIM_RMSPROP, 0.1f, 0.5f, false), r);
    ck_assert_float_eq_tol(r[0], 0.0f, TOL);
    ck_assert_float_eq_tol(r[1], -2.0f, TOL);
    two_sum_steps(make_wd(SG_OPTIM_ADAGRAD, 0.1f, 0.5f, true), r);
    ck_assert_float_eq_tol(r[0], 0.85f, TOL);
    ck_assert_float_eq_tol(r[1], -2.0f, TOL);
    two_sum_steps(make_wd(SG_OPTIM_RMSPROP, 0.1f, 0.5f, true), r);
    ck_assert_float_eq_tol(r[0], -0.05f, TOL);
    ck_assert_float_eq_tol(r[1], -2.9f, TOL);
}
END_TEST

START_TEST(test_weight_decay_leaves_grad)
{
    /* The gradient buffer is only read: after an L2 step it is still g = 1. */
    sg_optim *opt = make_wd(SG_OPTIM_SGD, 0.1f, 0.5f, false);
    sg_tensor *w = param2(1.0f, -2.0f);
    one_step(opt, w, SUM);
    ck_assert_float_eq(sg_grad_data(w)[0], 1.0f);
    ck_assert_float_eq(sg_grad_data(w)[1], 1.0f);
    sg_optim_free(opt);
    sg_tensor_free(w);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Gradient clipping */

/* Parameters whose gradients are set by L = Σ c·p (g = c). */
static void set_grads(sg_tensor **ps, const float *const *c, int n)
{
    sg_scope_begin();
    sg_tensor *L = NULL;
    for (int i = 0; i < n; i++) {
        sg_tensor *ci = sg_from_data(c[i], sg_ndim(ps[i]), sg_shape(ps[i]));
        sg_tensor *t = sg_sum_all(sg_mul(ps[i], ci));
        L = L ? sg_add(L, t) : t;
    }
    ck_assert_ptr_nonnull(L);
    ck_assert_int_eq(sg_backward(L, NULL), 0);
    sg_scope_end();
}

START_TEST(test_clip_grad_norm)
{
    /* grads (3, 4) and (12): N = √(9 + 16 + 144) = √169 = 13.
     * max_norm 6.5: c = 6.5/(13 + 1e-6) ≈ 0.5 → (1.5, 2), (6); returns 13. */
    sg_tensor *a = sg_param(sg_zeros(SG_DIMS(2))), *b = sg_param(sg_zeros(SG_DIMS(1)));
    sg_tensor *none = sg_param(sg_zeros(SG_DIMS(3))); /* no gradient: skipped */
    sg_tensor *ps[4] = {a, NULL, b, none};
    sg_tensor *with_grad[2] = {a, b};
    const float ca[2] = {3.0f, 4.0f}, cb[1] = {12.0f};
    const float *cs[2] = {ca, cb};
    set_grads(with_grad, cs, 2);
    ck_assert_float_eq_tol(sg_clip_grad_norm(ps, 4, 6.5f), 13.0f, TOL);
    ck_assert_float_eq_tol(sg_grad_data(a)[0], 1.5f, TOL);
    ck_assert_float_eq_tol(sg_grad_data(a)[1], 2.0f, TOL);
    ck_assert_float_eq_tol(sg_grad_data(b)[0], 6.0f, TOL);
    /* now N = 6.5 <= max_norm: unchanged, returns 6.5 */
    ck_assert_float_eq_tol(sg_clip_grad_norm(ps, 4, 100.0f), 6.5f, TOL);
    ck_assert_float_eq_tol(sg_grad_data(a)[0], 1.5f, TOL);
    ck_assert_float_eq_tol(sg_grad_data(b)[0], 6.0f, TOL);
    /* max_norm 0: c = 0, every gradient becomes 0 */
    ck_assert_float_eq_tol(sg_clip_grad_norm(ps, 4, 0.0f), 6.5f, TOL);
    ck_assert_float_eq(sg_grad_data(a)[1], 0.0f);
    ck_assert_float_eq(sg_grad_data(b)[0], 0.0f);
    /* no gradients at all: N = 0 */
    ck_assert_float_eq(sg_clip_grad_norm(&none, 1, 1.0f), 0.0f);
    ck_assert_float_eq(sg_clip_grad_norm(NULL, 0, 1.0f), 0.0f);
    ck_assert(!sg_has_error());
    sg_tensor_free(a);
    sg_tensor_free(b);
    sg_tensor_free(none);
}
END_TEST

START_TEST(test_clip_then_step)
{
    /* Clipping changes what the step sees: SGD η = 1, g = (3, 4) clipped to
     * norm 1 → (0.6, 0.8); w = (1, −2) − (0.6, 0.8) = (0.4, −2.8). */
    sg_tensor *w = param2(1.0f, -2.0f);
    const float c[2] = {3.0f, 4.0f};
    const float *cs[1] = {c};
    set_grads(&w, cs, 1);
    ck_assert_float_eq_tol(sg_clip_grad_norm(&w, 1, 1.0f), 5.0f, TOL);
    sg_optim *opt = sg_sgd_new(1.0f);
    ck_assert_int_eq(sg_optim_step(opt, &w, 1), 0);
    ck_assert_w(w, 0.4f, -2.8f);
    sg_optim_free(opt);
    sg_tensor_free(w);
}
END_TEST

START_TEST(test_clip_nonfinite)
{
    /* An infinite gradient: N = inf is returned and nothing is scaled. */
    sg_tensor *w = param2(1.0f, -2.0f);
    const float c[2] = {INFINITY, 4.0f};
    const float *cs[1] = {c};
    set_grads(&w, cs, 1);
    ck_assert(isinf(sg_clip_grad_norm(&w, 1, 1.0f)));
    ck_assert_float_eq(sg_grad_data(w)[1], 4.0f);
    sg_tensor_free(w);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Learning-rate schedules */

START_TEST(test_lr_step_decay)
{
    /* base 0.1, γ 0.5, every 10 epochs: 0.1 for 0..9, 0.05 for 10..19, 0.025 at 25 */
    ck_assert_float_eq_tol(sg_lr_step_decay(0.1f, 0.5f, 10, 0), 0.1f, 1e-9f);
    ck_assert_float_eq_tol(sg_lr_step_decay(0.1f, 0.5f, 10, 9), 0.1f, 1e-9f);
    ck_assert_float_eq_tol(sg_lr_step_decay(0.1f, 0.5f, 10, 10), 0.05f, 1e-9f);
    ck_assert_float_eq_tol(sg_lr_step_decay(0.1f, 0.5f, 10, 25), 0.025f, 1e-9f);
    /* γ 0.1 every epoch: 1, 0.1, 0.01, 0.001 */
    ck_assert_float_eq_tol(sg_lr_step_decay(1.0f, 0.1f, 1, 3), 0.001f, 1e-9f);
}
END_TEST

START_TEST(test_lr_cosine)
{
    /* base 0.1, η_min 0, T 100: t 0 → 0.1; t 25 → 0.05·(1 + cos(π/4)) =
     * 0.05·1.7071068 = 0.0853553; t 50 → 0.05; t 75 → 0.05·(1 − 0.7071068) =
     * 0.0146447; t 100 → 0; t 150 → held at 0. With η_min 0.01, t 50 → 0.055. */
    ck_assert_float_eq_tol(sg_lr_cosine(0.1f, 0.0f, 100, 0), 0.1f, 1e-8f);
    ck_assert_float_eq_tol(sg_lr_cosine(0.1f, 0.0f, 100, 25), 0.0853553f, 1e-7f);
    ck_assert_float_eq_tol(sg_lr_cosine(0.1f, 0.0f, 100, 50), 0.05f, 1e-8f);
    ck_assert_float_eq_tol(sg_lr_cosine(0.1f, 0.0f, 100, 75), 0.0146447f, 1e-7f);
    ck_assert_float_eq(sg_lr_cosine(0.1f, 0.0f, 100, 100), 0.0f);
    ck_assert_float_eq(sg_lr_cosine(0.1f, 0.0f, 100, 150), 0.0f);
    ck_assert_float_eq_tol(sg_lr_cosine(0.1f, 0.01f, 100, 50), 0.055f, 1e-8f);
    ck_assert_float_eq_tol(sg_lr_cosine(0.1f, 0.01f, 100, 1000), 0.01f, 1e-9f);
}
END_TEST

START_TEST(test_set_lr_schedule)
{
    /* SGD with g = 1 (L = Σw) and the step schedule 1.0, 1.0, 0.5, 0.5, 0.25:
     * w1 moves by −(1 + 1 + 0.5 + 0.5 + 0.25) = −3.25: 1 → −2.25. */
    sg_optim *opt = sg_sgd_new(123.0f);
    ck_assert_float_eq(sg_optim_lr(opt), 123.0f);
    sg_tensor *w = param2(1.0f, -2.0f);
    for (int epoch = 0; epoch < 5; epoch++) {
        ck_assert_int_eq(sg_optim_set_lr(opt, sg_lr_step_decay(1.0f, 0.5f, 2, epoch)), 0);
        one_step(opt, w, SUM);
    }
    ck_assert_float_eq(sg_optim_lr(opt), 0.25f);
    ck_assert_float_eq(sg_optim_options(opt)->lr, 0.25f);
    ck_assert_w(w, -2.25f, -5.25f);
    sg_optim_free(opt);
    sg_tensor_free(w);
}
END_TEST

START_TEST(test_set_lr_keeps_state)
{
    /* Momentum μ 0.9, g = 1: step 1 with η 0.1: b = 1, w = 1 − 0.1 = 0.9;
     * set η = 1: step 2: b = 0.9 + 1 = 1.9, w = 0.9 − 1.9 = −1.0. */
    sg_optim *opt = sg_momentum_new(0.1f, 0.9f);
    sg_tensor *w = param2(1.0f, -2.0f);
    one_step(opt, w, SUM);
    ck_assert_int_eq(sg_optim_set_lr(opt, 1.0f), 0);
    one_step(opt, w, SUM);
    ck_assert_w(w, -1.0f, -4.0f);
    sg_optim_free(opt);
    sg_tensor_free(w);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Per-parameter state */

START_TEST(test_state_bytes)
{
    /* Parameters of 6 and 4 elements: 10 floats per buffer.
     * SGD 0 buffers, Momentum/Nesterov/AdaGrad/RMSProp 1, Adam/AdamW 2. */
    const int nbuf[SG_OPTIM_COUNT] = {0, 1, 1, 1, 1, 2, 2};
    const sg_optim_kind k = (sg_optim_kind)_i;
    sg_optim_opts o = sg_optim_defaults(k);
    sg_optim *opt = sg_optim_new(&o);
    ck_assert_ptr_nonnull(opt);
    sg_tensor *p = sg_param(sg_ones(SG_DIMS(2, 3))), *q = sg_param(sg_ones(SG_DIMS(4)));
    sg_tensor *ps[2] = {p, q};
    ck_assert_uint_eq(sg_optim_state_bytes(opt), 0);
    for (int s = 0; s < 3; s++) {
        sg_scope_begin();
        sg_optim_zero_grad(ps, 2);
        sg_tensor *L = sg_add(sg_sum_all(sg_square(p)), sg_sum_all(q));
        ck_assert_int_eq(sg_backward(L, NULL), 0);
        ck_assert_int_eq(sg_optim_step(opt, ps, 2), 0);
        sg_scope_end();
        ck_assert_uint_eq(sg_optim_state_bytes(opt), (size_t)(10 * nbuf[k]) * sizeof(float));
    }
    ck_assert_int_eq(sg_optim_param_steps(opt, p), 3);
    ck_assert_int_eq(sg_optim_forget(opt, p), 1);
    ck_assert_int_eq(sg_optim_forget(opt, p), 0);
    ck_assert_int_eq(sg_optim_param_steps(opt, p), 0);
    ck_assert_uint_eq(sg_optim_state_bytes(opt), (size_t)(4 * nbuf[k]) * sizeof(float));
    sg_optim_reset(opt);
    ck_assert_uint_eq(sg_optim_state_bytes(opt), 0);
    ck_assert_int_eq(sg_optim_param_steps(opt, q), 0);
    ck_assert_int_eq(sg_optim_steps(opt), 3);
    sg_optim_free(opt);
    sg_tensor_free(p);
    sg_tensor_free(q);
}
END_TEST

/* A weight whose gradient turns 0 and stays 0: its decaying state goes to
 * exactly 0, never through the subnormal range; the state is readable. */
START_TEST(test_decaying_state_flushes_to_zero)
{
    const sg_optim_kind k = (sg_optim_kind)_i;
    sg_optim_opts o = sg_optim_defaults(k);
    o.alpha = 0.5f; /* RMSProp's average decays as fast as the others here */
    sg_optim *opt = sg_optim_new(&o);
    sg_tensor *w = sg_param(sg_ones(SG_DIMS(1)));
    ck_assert_ptr_null(sg_optim_state(opt, w, 0)); /* no state before a step */
    bool seen_tiny = false;
    for (int step = 0; step < 1500; step++) {
        sg_scope_begin();
        sg_optim_zero_grad(&w, 1);
        /* gradient 1 at the first step, then 0 */
        sg_tensor *L = sg_mul_scalar(sg_sum_all(w), step == 0 ? 1.f : 0.f);
        ck_assert_int_eq(sg_backward(L, NULL), 0);
        ck_assert_int_eq(sg_optim_step(opt, &w, 1), 0);
        sg_scope_end();
        for (int b = 0; b < 2; b++) {
            const float *st = sg_optim_state(opt, w, b);
            if (!st)
                continue;
            ck_assert_msg(st[0] == 0.f || fabsf(st[0]) >= FLT_MIN, "%s buffer %d at step %d: %g is subnormal",
                          sg_optim_kind_name(k), b, step + 1, (double)st[0]);
            seen_tiny = seen_tiny || (st[0] != 0.f && fabsf(st[0]) < 1e-30f);
        }
    }
    if (k == SG_OPTIM_SGD || k == SG_OPTIM_ADAGRAD) { /* no state, or none that decays */
        ck_assert(k == SG_OPTIM_ADAGRAD || sg_optim_state(opt, w, 0) == NULL);
    } else {
        ck_assert_msg(seen_tiny, "%s: the state never came near the subnormal range", sg_optim_kind_name(k));
        ck_assert_float_eq(sg_optim_state(opt, w, 0)[0], 0.f); /* m, velocity or average: flushed */
    }
    ck_assert_ptr_null(sg_optim_state(opt, w, 2));
    ck_assert_ptr_null(sg_optim_state(NULL, w, 0));
    expect_error("optim_state: optimizer is NULL");
    sg_optim_free(opt);
    sg_tensor_free(w);
}
END_TEST

START_TEST(test_null_grad_skipped)
{
    /* q takes no part in the loss: its gradient is NULL; it keeps its values
     * and gets no state. p moves as usual: Adam η 0.1 with a constant g = 1
     * has m̂ = v̂ = 1, so each update is −0.1. */
    sg_optim *opt = sg_adam_new(0.1f, 0.9f, 0.999f);
    sg_tensor *p = param2(1.0f, -2.0f), *q = param2(5.0f, 6.0f);
    sg_tensor *ps[2] = {q, p};
    one_step(opt, p, SUM);
    ck_assert_ptr_null(sg_grad_data(q));
    ck_assert_int_eq(sg_optim_step(opt, ps, 2), 0); /* p again (g = 1), q skipped */
    ck_assert_w(q, 5.0f, 6.0f);
    ck_assert_w(p, 0.8f, -2.2f); /* Adam with constant g = 1: −0.1 per step */
    ck_assert_int_eq(sg_optim_param_steps(opt, q), 0);
    ck_assert_int_eq(sg_optim_param_steps(opt, p), 2);
    ck_assert_uint_eq(sg_optim_state_bytes(opt), 2 * 2 * sizeof(float));
    sg_optim_free(opt);
    sg_tensor_free(p);
    sg_tensor_free(q);
}
END_TEST

START_TEST(test_per_param_step_count)
{
    /* Bias correction uses each parameter's own t (PyTorch's state['step']).
     * p gets 3 Adam updates with g = w, then q joins: q's first update is
     * −η·sign(g) = −0.1 exactly as a first step, whatever p's t is. */
    sg_optim *opt = sg_adam_new(0.1f, 0.9f, 0.999f);
    sg_tensor *p = param2(1.0f, -2.0f), *q = param2(3.0f, -4.0f);
    for (int i = 0; i < 3; i++)
        one_step(opt, p, HALF_SQ);
    one_step(opt, q, HALF_SQ);
    ck_assert_w(q, 2.9f, -3.9f);
    ck_assert_int_eq(sg_optim_param_steps(opt, p), 3);
    ck_assert_int_eq(sg_optim_param_steps(opt, q), 1);
    ck_assert_int_eq(sg_optim_steps(opt), 4);
    /* after reset, p's next update is a first step again: −0.1·sign */
    float before = sg_data(p)[0];
    sg_optim_reset(opt);
    one_step(opt, p, HALF_SQ);
    ck_assert_float_eq_tol(sg_data(p)[0], before - 0.1f, TOL);
    sg_optim_free(opt);
    sg_tensor_free(p);
    sg_tensor_free(q);
}
END_TEST

/* Resuming (checkpoints): for every kind, the state read back from one
 * optimizer (sg_optim_param_steps, sg_optim_state) and set into a fresh one
 * (sg_optim_set_state) makes the next steps of both bit for bit equal —
 * AdaGrad's t in η_t, Adam's in the bias correction, the moments. Without
 * the state the fresh optimizer's step differs (every kind but SGD). */
START_TEST(test_set_state_resumes)
{
    static const char *const names[SG_OPTIM_COUNT][2] = {
        [SG_OPTIM_SGD] = {NULL, NULL},
        [SG_OPTIM_MOMENTUM] = {"momentum_buffer", NULL},
        [SG_OPTIM_NESTEROV] = {"momentum_buffer", NULL},
        [SG_OPTIM_ADAGRAD] = {"sum", NULL},
        [SG_OPTIM_RMSPROP] = {"square_avg", NULL},
        [SG_OPTIM_ADAM] = {"exp_avg", "exp_avg_sq"},
        [SG_OPTIM_ADAMW] = {"exp_avg", "exp_avg_sq"},
    };
    for (int k = 0; k < SG_OPTIM_COUNT; k++) {
        sg_optim_opts o = sg_optim_defaults((sg_optim_kind)k);
        o.lr = 0.05f;
        if (k == SG_OPTIM_ADAGRAD)
            o.lr_decay = 0.1f;
        sg_optim *a = sg_optim_new(&o), *b = sg_optim_new(&o), *c = sg_optim_new(&o);
        int nb = sg_optim_num_buffers(a);
        ck_assert_int_eq(nb, k == SG_OPTIM_SGD ? 0 : k >= SG_OPTIM_ADAM ? 2 : 1);
        for (int i = 0; i < 2; i++) {
            const char *n = sg_optim_state_name(a, i);
            ck_assert_msg(names[k][i] ? n && !strcmp(n, names[k][i]) : !n, "%s buffer %d is named %s",
                          sg_optim_kind_name((sg_optim_kind)k), i, n ? n : "NULL");
        }
        sg_tensor *wa = param2(1.0f, -2.0f), *wb = param2(0.0f, 0.0f), *wc = param2(0.0f, 0.0f);
        for (int i = 0; i < 3; i++)
            one_step(a, wa, HALF_SQ);
        memcpy(sg_data(wb), sg_data(wa), sizeof(float) * 2);
        memcpy(sg_data(wc), sg_data(wa), sizeof(float) * 2);
        const float *bufs[2] = {sg_optim_state(a, wa, 0), sg_optim_state(a, wa, 1)};
        ck_assert_int_eq(sg_optim_set_state(b, wb, sg_optim_param_steps(a, wa), bufs), 0);
        ck_assert_int_eq(sg_optim_param_steps(b, wb), 3);
        for (int i = 0; i < nb; i++) /* copied, not borrowed */
            ck_assert(sg_optim_state(b, wb, i) != bufs[i] && !memcmp(sg_optim_state(b, wb, i), bufs[i], 8));
        float first[2];
        for (int i = 0; i < 2; i++) {
            one_step(a, wa, HALF_SQ);
            one_step(b, wb, HALF_SQ);
            ck_assert_msg(!memcmp(sg_data(wa), sg_data(wb), 8), "%s: resumed step %d differs",
                          sg_optim_kind_name((sg_optim_kind)k), i);
            if (i == 0)
                memcpy(first, sg_data(wb), sizeof first);
        }
        one_step(c, wc, HALF_SQ); /* no state: a first step, another value */
        ck_assert_msg((memcmp(sg_data(wc), first, 8) != 0) == (k != SG_OPTIM_SGD),
                      "%s: a step without the state gave %s value", sg_optim_kind_name((sg_optim_kind)k),
                      k != SG_OPTIM_SGD ? "the same" : "another");
        sg_optim_free(a);
        sg_optim_free(b);
        sg_optim_free(c);
        sg_tensor_free(wa);
        sg_tensor_free(wb);
        sg_tensor_free(wc);
    }
    /* refusals: a negative count, a missing buffer, a size that does not fit */
    sg_optim *opt = sg_adam_new(0.1f, 0.9f, 0.999f);
    sg_tensor *w = param2(1.0f, 2.0f), *big = sg_param(sg_zeros(SG_DIMS(3)));
    const float zero[3] = {0, 0, 0}, *two[2] = {zero, zero}, *one[2] = {zero, NULL};
    ck_assert_int_eq(sg_optim_set_state(opt, w, -1, two), -1);
    expect_error("optim_set_state: adam update count -1 must be >= 0");
    ck_assert_int_eq(sg_optim_set_state(opt, w, 1, one), -1);
    expect_error("optim_set_state: adam needs 2 state buffers, buffer 1 is NULL");
    ck_assert_int_eq(sg_optim_param_steps(opt, w), 0); /* nothing made */
    ck_assert_int_eq(sg_optim_set_state(opt, w, 4, two), 0);
    ck_assert_int_eq(sg_optim_param_steps(opt, w), 4);
    ck_assert_int_eq(sg_optim_set_state(opt, big, 1, two), 0);
    ck_assert_uint_eq(sg_optim_state_bytes(opt), (2 + 3) * 2 * sizeof(float));
    ck_assert_ptr_null(sg_optim_state_name(opt, 2));
    ck_assert_ptr_null(sg_optim_state_name(opt, -1));
    sg_optim_free(opt);
    sg_tensor_free(w);
    sg_tensor_free(big);
}
END_TEST

START_TEST(test_warm_step_allocates_nothing)
{
    /* Heap bytes in use (glibc mallinfo2) around sg_optim_step: the first step
     * allocates Adam's state, a warm step allocates nothing. Under sanitizers
     * or valgrind malloc is replaced and mallinfo2 sees nothing: skipped. */
#ifdef HAVE_MALLINFO2
    sg_optim *opt = sg_adam_new(0.01f, 0.9f, 0.999f);
    sg_tensor *p = sg_param(sg_ones(SG_DIMS(64, 64)));
    size_t used[3];
    for (int s = 0; s < 3; s++) {
        sg_scope_begin();
        sg_optim_zero_grad(&p, 1);
        ck_assert_int_eq(sg_backward(sg_sum_all(sg_square(p)), NULL), 0);
        size_t before = mallinfo2().uordblks;
        ck_assert_int_eq(sg_optim_step(opt, &p, 1), 0);
        used[s] = mallinfo2().uordblks - before;
        sg_scope_end();
    }
    if (used[0] == 0) {
        printf("warm step: mallinfo2 does not see this malloc; check skipped\n");
    } else {
        ck_assert_uint_ge(used[0], 2 * 64 * 64 * sizeof(float));
        ck_assert_uint_eq(used[1], 0);
        ck_assert_uint_eq(used[2], 0);
    }
    sg_optim_free(opt);
    sg_tensor_free(p);
#endif
}
END_TEST

/* A parameter big enough that the step splits it across threads (300,000
 * floats, like SimpleConvNet's 4320x100 weight): three steps with 2 threads
 * must give exactly the numbers of 1 thread (the kernels are elementwise),
 * and every element must have moved (no chunk skipped). Loop over kinds. */
static void big_param_steps(sg_optim_kind kind, int threads, float *out, size_t n)
{
    int got = sg_set_threads(threads);
    ck_assert_msg(got == threads || got == 1, "sg_set_threads(%d) gave %d", threads, got);
    sg_optim_opts o = sg_optim_defaults(kind);
    o.weight_decay = 0.01f;
    sg_optim *opt = sg_optim_new(&o);
    ck_assert_msg(opt != NULL, "%s", sg_last_error());
    sg_tensor *w = sg_param(sg_zeros(SG_DIMS((int)n)));
    sg_tensor *c = sg_zeros(SG_DIMS((int)n));
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(c);
    for (size_t i = 0; i < n; i++) {
        sg_data(w)[i] = (float)(i % 13) * 0.125f - 0.75f;
        sg_data(c)[i] = ((i % 2) ? 1.0f : -1.0f) * (0.5f + (float)(i % 7) * 0.25f);
    }
    for (int step = 0; step < 3; step++) {
        sg_scope_begin();
        sg_optim_zero_grad(&w, 1);
        /* L = Σ c·w + ½·Σw², so g = c + w changes from step to step */
        sg_tensor *L = sg_add(sg_sum_all(sg_mul(w, c)), sg_mul_scalar(sg_sum_all(sg_square(w)), 0.5f));
        ck_assert_msg(L && sg_backward(L, NULL) == 0, "%s", sg_last_error());
        ck_assert_msg(sg_optim_step(opt, &w, 1) == 0, "%s", sg_last_error());
        sg_scope_end();
    }
    memcpy(out, sg_data(w), n * sizeof *out);
    sg_optim_free(opt);
    sg_tensor_free(w);
    sg_tensor_free(c);
}

START_TEST(test_threads_same_update)
{
    const sg_optim_kind kind = (sg_optim_kind)_i;
    const size_t n = 300000;
    float *one = malloc(n * sizeof *one), *two = malloc(n * sizeof *two);
    ck_assert_ptr_nonnull(one);
    ck_assert_ptr_nonnull(two);
    big_param_steps(kind, 1, one, n);
    big_param_steps(kind, 2, two, n);
    sg_set_threads(0);
    for (size_t i = 0; i < n; i++) {
        float w0 = (float)(i % 13) * 0.125f - 0.75f;
        if (!(one[i] != w0))
            ck_abort_msg("%s: element %zu did not move (%g)", sg_optim_kind_name(kind), i, (double)one[i]);
        if (!(one[i] == two[i]))
            ck_abort_msg("%s: element %zu is %.9g with 2 threads, %.9g with 1", sg_optim_kind_name(kind), i,
                         (double)two[i], (double)one[i]);
    }
    free(one);
    free(two);
}
END_TEST

START_TEST(test_zero_grad)
{
    sg_tensor *w = param2(1.0f, -2.0f), *v = param2(0.0f, 0.0f);
    sg_tensor *ps[3] = {w, NULL, v};
    sg_scope_begin();
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_mul(w, w)), NULL), 0);
    sg_scope_end();
    ck_assert_float_eq(sg_grad_data(w)[1], -4.0f);
    sg_optim_zero_grad(ps, 3); /* NULL entry and v (no grad) are fine */
    ck_assert_float_eq(sg_grad_data(w)[0], 0.0f);
    ck_assert_float_eq(sg_grad_data(w)[1], 0.0f);
    ck_assert_ptr_null(sg_grad_data(v));
    sg_optim_zero_grad(NULL, 3);
    sg_tensor_free(w);
    sg_tensor_free(v);
}
END_TEST

START_TEST(test_defaults_and_names)
{
    static const char *names[SG_OPTIM_COUNT] = {"sgd",     "momentum", "nesterov", "adagrad",
                                                "rmsprop", "adam",     "adamw"};
    for (int k = 0; k < SG_OPTIM_COUNT; k++) {
        ck_assert_str_eq(sg_optim_kind_name((sg_optim_kind)k), names[k]);
        sg_optim_opts o = sg_optim_defaults((sg_optim_kind)k);
        ck_assert_int_eq(o.kind, k);
        sg_optim *opt = sg_optim_new(&o);
        ck_assert_msg(opt != NULL, "%s defaults rejected: %s", names[k], sg_last_error());
        sg_optim_free(opt);
    }
    ck_assert_str_eq(sg_optim_kind_name(SG_OPTIM_COUNT), "?");
    ck_assert_float_eq(sg_optim_defaults(SG_OPTIM_SGD).lr, 0.01f);
    ck_assert_float_eq(sg_optim_defaults(SG_OPTIM_MOMENTUM).momentum, 0.9f);
    ck_assert_float_eq(sg_optim_defaults(SG_OPTIM_ADAGRAD).eps, 1e-10f);
    ck_assert_float_eq(sg_optim_defaults(SG_OPTIM_RMSPROP).alpha, 0.99f);
    ck_assert_float_eq(sg_optim_defaults(SG_OPTIM_ADAM).lr, 0.001f);
    ck_assert_float_eq(sg_optim_defaults(SG_OPTIM_ADAM).beta2, 0.999f);
    ck_assert_float_eq(sg_optim_defaults(SG_OPTIM_ADAM).eps, 1e-8f);
    ck_assert_float_eq(sg_optim_defaults(SG_OPTIM_ADAM).weight_decay, 0.0f);
    /* an empty list is a valid (no-op) step */
    sg_optim *opt = sg_sgd_new(0.1f);
    ck_assert_int_eq(sg_optim_step(opt, NULL, 0), 0);
    ck_assert_int_eq(sg_optim_steps(opt), 1);
    sg_optim_free(opt);
}
END_TEST

/* sg_optim_kind_from_name() undoes sg_optim_kind_name() for every kind of
 * the table (the trainer's --optim goes through it); an unknown name gives
 * SG_OPTIM_COUNT, which sg_optim_new() refuses, and a message listing every
 * kind's name. */
START_TEST(test_kind_from_name)
{
    for (int k = 0; k < SG_OPTIM_COUNT; k++) {
        const char *name = sg_optim_kind_name((sg_optim_kind)k);
        ck_assert_int_eq(sg_optim_kind_from_name(name), k);
        for (int j = 0; j < k; j++)
            ck_assert_str_ne(name, sg_optim_kind_name((sg_optim_kind)j));
    }
    ck_assert(!sg_has_error());
    ck_assert_int_eq(sg_optim_kind_from_name("lbfgs"), SG_OPTIM_COUNT);
    for (int k = 0; k < SG_OPTIM_COUNT; k++)
        ck_assert_msg(strstr(sg_last_error(), sg_optim_kind_name((sg_optim_kind)k)), "\"%s\" lacks %s",
                      sg_last_error(), sg_optim_kind_name((sg_optim_kind)k));
    expect_error("optim_kind_from_name: unknown optimizer 'lbfgs' (sgd ");
    ck_assert_int_eq(sg_optim_kind_from_name("Adam"), SG_OPTIM_COUNT); /* spelled exactly */
    expect_error("'Adam'");
    ck_assert_int_eq(sg_optim_kind_from_name(""), SG_OPTIM_COUNT);
    expect_error("''");
    ck_assert_int_eq(sg_optim_kind_from_name(NULL), SG_OPTIM_COUNT);
    expect_error("(NULL)");
    sg_optim_opts o = sg_optim_defaults(SG_OPTIM_COUNT);
    ck_assert_ptr_null(sg_optim_new(&o));
    expect_error("unknown optimizer kind");
}
END_TEST

/* ------------------------------------------------------------------------- */
/* XOR with a 2-4-1 sigmoid network, every optimizer */

static const struct {
    sg_optim_kind kind;
    float lr;
} xor_runs[] = {
    {SG_OPTIM_SGD, 2.0f},     {SG_OPTIM_MOMENTUM, 0.5f}, {SG_OPTIM_NESTEROV, 0.5f},
    {SG_OPTIM_ADAGRAD, 0.5f}, {SG_OPTIM_RMSPROP, 0.05f}, {SG_OPTIM_ADAM, 0.05f},
    {SG_OPTIM_ADAMW, 0.05f},
};

/* sigmoid(x) = 1 / (1 + exp(−x)), from engine primitives */
static sg_tensor *sigmoid(sg_tensor *x)
{
    return sg_rdiv_scalar(1.0f, sg_add_scalar(sg_exp(sg_neg(x)), 1.0f));
}

START_TEST(test_xor)
{
    /* h = σ(X·W1 + b1) (4, 4), y = σ(h·W2 + b2) (4, 1), L = mean((y − t)²).
     * W ~ N(0, 1) seeded, b = 0; full batch of the four points, 2000 steps.
     * Measured: every optimizer ends with L < 0.003 and outputs within 0.06
     * of the targets; we assert the right side of 0.5 and L < 0.02. */
    const sg_optim_kind k = xor_runs[_i].kind;
    sg_optim_opts o = sg_optim_defaults(k);
    o.lr = xor_runs[_i].lr;
    sg_optim *opt = sg_optim_new(&o);
    ck_assert_ptr_nonnull(opt);
    sg_rng rng;
    sg_rng_seed(&rng, 42);
    sg_tensor *W1 = sg_param(sg_normal(&rng, 0.0f, 1.0f, SG_DIMS(2, 4))); /* (2, 4) */
    sg_tensor *b1 = sg_param(sg_zeros(SG_DIMS(4)));                        /* (4) */
    sg_tensor *W2 = sg_param(sg_normal(&rng, 0.0f, 1.0f, SG_DIMS(4, 1))); /* (4, 1) */
    sg_tensor *b2 = sg_param(sg_zeros(SG_DIMS(1)));                        /* (1) */
    sg_tensor *params[4] = {W1, b1, W2, b2};
    const float xd[8] = {0, 0, 0, 1, 1, 0, 1, 1}, td[4] = {0, 1, 1, 0};
    sg_tensor *X = sg_from_data(xd, SG_DIMS(4, 2)), *T = sg_from_data(td, SG_DIMS(4, 1));
    float first = 0.0f, last = 0.0f, out[4] = {0};
    for (int s = 0; s < 2000; s++) {
        sg_scope_begin();
        sg_optim_zero_grad(params, 4);
        sg_tensor *h = sigmoid(sg_add(sg_matmul(X, W1), b1));
        sg_tensor *y = sigmoid(sg_add(sg_matmul(h, W2), b2));
        sg_tensor *loss = sg_mean_all(sg_square(sg_sub(y, T)));
        ck_assert_msg(loss != NULL, "%s", sg_last_error());
        ck_assert_int_eq(sg_backward(loss, NULL), 0);
        ck_assert_int_eq(sg_optim_step(opt, params, 4), 0);
        last = sg_item(loss);
        if (s == 0)
            first = last;
        memcpy(out, sg_data(y), sizeof out);
        sg_scope_end();
    }
    printf("xor 2-4-1 %-8s lr %-4g: loss %.4f -> %.6f, outputs %.3f %.3f %.3f %.3f\n",
           sg_optim_kind_name(k), (double)o.lr, (double)first, (double)last, (double)out[0],
           (double)out[1], (double)out[2], (double)out[3]);
    ck_assert_float_lt(out[0], 0.5f);
    ck_assert_float_gt(out[1], 0.5f);
    ck_assert_float_gt(out[2], 0.5f);
    ck_assert_float_lt(out[3], 0.5f);
    ck_assert_float_lt(last, 0.02f);
    ck_assert_float_gt(first, 0.1f); /* it did have to learn */
    sg_optim_free(opt);
    for (int i = 0; i < 4; i++)
        sg_tensor_free(params[i]);
    sg_tensor_free(X);
    sg_tensor_free(T);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Errors */

/* sg_optim_new(o) must fail with a message containing `part`. */
static void expect_rejected(sg_optim_opts o, const char *part)
{
    sg_optim *opt = sg_optim_new(&o);
    if (opt) {
        sg_optim_free(opt);
        ck_abort_msg("options accepted, expected \"%s\"", part);
    }
    expect_error(part);
}

START_TEST(test_bad_options)
{
    ck_assert_ptr_null(sg_optim_new(NULL));
    expect_error("optim_new: options are NULL");

    sg_optim_opts o = sg_optim_defaults(SG_OPTIM_SGD);
    o.kind = SG_OPTIM_COUNT;
    expect_rejected(o, "unknown optimizer kind 7");
    o.kind = (sg_optim_kind)-1;
    expect_rejected(o, "unknown optimizer kind -1");

    o = sg_optim_defaults(SG_OPTIM_SGD);
    o.lr = -0.1f;
    expect_rejected(o, "sgd learning rate -0.1 must be >= 0");
    o.lr = NAN;
    expect_rejected(o, "sgd learning rate nan");
    o.lr = INFINITY;
    expect_rejected(o, "sgd learning rate inf");
    o = sg_optim_defaults(SG_OPTIM_SGD);
    o.weight_decay = -1.0f;
    expect_rejected(o, "weight_decay -1");

    o = sg_optim_defaults(SG_OPTIM_MOMENTUM);
    o.momentum = 1.0f;
    expect_rejected(o, "momentum momentum 1 is outside [0, 1)");
    o.momentum = 0.9f;
    o.dampening = 1.5f;
    expect_rejected(o, "dampening 1.5 is outside [0, 1]");

    o = sg_optim_defaults(SG_OPTIM_NESTEROV);
    o.dampening = 0.1f;
    expect_rejected(o, "nesterov needs momentum > 0 and dampening 0");
    o.dampening = 0.0f;
    o.momentum = 0.0f;
    expect_rejected(o, "nesterov needs momentum > 0");

    o = sg_optim_defaults(SG_OPTIM_ADAGRAD);
    o.lr_decay = -1.0f;
    expect_rejected(o, "adagrad lr_decay -1");
    o = sg_optim_defaults(SG_OPTIM_ADAGRAD);
    o.initial_accumulator = -1.0f;
    expect_rejected(o, "initial_accumulator -1");
    o = sg_optim_defaults(SG_OPTIM_ADAGRAD);
    o.eps = -1e-8f;
    expect_rejected(o, "adagrad eps");

    o = sg_optim_defaults(SG_OPTIM_RMSPROP);
    o.alpha = 1.0f;
    expect_rejected(o, "rmsprop alpha 1 is outside [0, 1)");

    o = sg_optim_defaults(SG_OPTIM_ADAM);
    o.beta1 = 1.0f;
    expect_rejected(o, "adam beta1 1 is outside [0, 1)");
    o.beta1 = 0.9f;
    o.beta2 = -0.1f;
    expect_rejected(o, "adam beta2 -0.1 is outside [0, 1)");
    o.beta2 = NAN;
    expect_rejected(o, "beta2 nan");

    /* the shortcuts report under their own names */
    ck_assert_ptr_null(sg_adam_new(0.1f, 0.9f, 1.0f));
    expect_error("adam_new: adam beta2 1 is outside [0, 1)");
    ck_assert_ptr_null(sg_adamw_new(0.1f, -0.5f));
    expect_error("adamw_new: adamw weight_decay -0.5");
    ck_assert_ptr_null(sg_sgd_new(-1.0f));
    expect_error("sgd_new: sgd learning rate -1");
    ck_assert_ptr_null(sg_momentum_new(0.1f, -0.5f));
    expect_error("momentum_new: momentum momentum -0.5");
    ck_assert_ptr_null(sg_nesterov_new(0.1f, 1.0f));
    expect_error("nesterov_new: nesterov momentum 1");
    ck_assert_ptr_null(sg_adagrad_new(NAN));
    expect_error("adagrad_new");
    ck_assert_ptr_null(sg_rmsprop_new(0.01f, -0.1f));
    expect_error("rmsprop_new: rmsprop alpha -0.1");

    /* valid edge values: β1 = 0, ε = 0, lr = 0, momentum 0 for MOMENTUM */
    o = sg_optim_defaults(SG_OPTIM_ADAM);
    o.beta1 = 0.0f;
    o.eps = 0.0f;
    o.lr = 0.0f;
    sg_optim *opt = sg_optim_new(&o);
    ck_assert_ptr_nonnull(opt);
    sg_optim_free(opt);
    ck_assert(!sg_has_error());
}
END_TEST

START_TEST(test_bad_calls)
{
    sg_tensor *w = param2(1.0f, -2.0f), *v = param2(3.0f, 4.0f);
    sg_scope_begin();
    ck_assert_int_eq(sg_backward(sg_add(sg_sum_all(w), sg_sum_all(v)), NULL), 0);
    sg_scope_end();

    ck_assert_int_eq(sg_optim_step(NULL, &w, 1), -1);
    expect_error("optim_step: optimizer is NULL");

    sg_optim *opt = sg_sgd_new(0.1f);
    ck_assert_int_eq(sg_optim_step(opt, &w, -1), -1);
    expect_error("optim_step: sgd given params with n = -1");
    ck_assert_int_eq(sg_optim_step(opt, NULL, 2), -1);
    expect_error("optim_step: sgd given NULL params with n = 2");

    /* a failing step changes nothing, even entries before the bad one */
    sg_tensor *with_null[3] = {w, NULL, v};
    ck_assert_int_eq(sg_optim_step(opt, with_null, 3), -1);
    expect_error("optim_step: sgd params[1] is NULL");
    sg_tensor *dup[3] = {w, v, w};
    ck_assert_int_eq(sg_optim_step(opt, dup, 3), -1);
    expect_error("optim_step: sgd params[2] appears twice");
    ck_assert_w(w, 1.0f, -2.0f);
    ck_assert_w(v, 3.0f, 4.0f);
    ck_assert_int_eq(sg_optim_steps(opt), 0);
    /* the same list without the duplicate works: g = 1, η = 0.1 */
    ck_assert_int_eq(sg_optim_step(opt, dup, 2), 0);
    ck_assert_w(w, 0.9f, -2.1f);
    ck_assert_w(v, 2.9f, 3.9f);

    /* learning rate */
    ck_assert_int_eq(sg_optim_set_lr(opt, -0.5f), -1);
    expect_error("optim_set_lr: sgd learning rate -0.5 must be >= 0 and finite (kept 0.1)");
    ck_assert_int_eq(sg_optim_set_lr(opt, NAN), -1);
    expect_error("learning rate nan");
    ck_assert_float_eq(sg_optim_lr(opt), 0.1f);
    ck_assert_int_eq(sg_optim_set_lr(NULL, 0.1f), -1);
    expect_error("optim_set_lr: optimizer is NULL");
    ck_assert_float_eq(sg_optim_lr(NULL), -1.0f);
    expect_error("optim_lr: optimizer is NULL");
    ck_assert_ptr_null(sg_optim_options(NULL));
    expect_error("optim_options: optimizer is NULL");
    ck_assert_int_eq(sg_optim_forget(NULL, w), -1);
    expect_error("optim_forget: optimizer is NULL");
    ck_assert_int_eq(sg_optim_steps(NULL), -1);
    expect_error("optim_steps: optimizer is NULL");
    ck_assert_int_eq(sg_optim_param_steps(NULL, w), -1);
    expect_error("optim_param_steps: optimizer is NULL");
    ck_assert_uint_eq(sg_optim_state_bytes(NULL), 0);
    expect_error("optim_state_bytes: optimizer is NULL");
    sg_optim_free(NULL);
    sg_optim_reset(NULL);
    ck_assert(!sg_has_error());

    /* clipping */
    ck_assert_float_eq(sg_clip_grad_norm(&w, 1, -1.0f), -1.0f);
    expect_error("clip_grad_norm: max_norm -1 must be >= 0");
    ck_assert_float_eq(sg_clip_grad_norm(&w, 1, NAN), -1.0f);
    expect_error("clip_grad_norm: max_norm nan");
    ck_assert_float_eq(sg_clip_grad_norm(NULL, 1, 1.0f), -1.0f);
    expect_error("clip_grad_norm: given NULL params with n = 1");
    ck_assert_float_eq(sg_clip_grad_norm(&w, -2, 1.0f), -1.0f);
    expect_error("n = -2");
    ck_assert_float_eq(sg_grad_data(w)[0], 1.0f); /* untouched */

    /* schedules */
    ck_assert_float_eq(sg_lr_step_decay(0.1f, 0.5f, 0, 3), -1.0f);
    expect_error("lr_step_decay: need base_lr >= 0, gamma >= 0, step_size > 0, epoch >= 0 "
                 "(got 0.1, 0.5, 0, 3)");
    ck_assert_float_eq(sg_lr_step_decay(-0.1f, 0.5f, 1, 3), -1.0f);
    expect_error("lr_step_decay");
    ck_assert_float_eq(sg_lr_step_decay(0.1f, 0.5f, 1, -3), -1.0f);
    expect_error("lr_step_decay");
    ck_assert_float_eq(sg_lr_cosine(0.1f, 0.0f, 0, 3), -1.0f);
    expect_error("lr_cosine: need base_lr >= 0, eta_min >= 0, t_max > 0, t >= 0 (got 0.1, 0, 0, 3)");
    ck_assert_float_eq(sg_lr_cosine(0.1f, -0.01f, 10, 3), -1.0f);
    expect_error("lr_cosine");
    ck_assert_float_eq(sg_lr_cosine(0.1f, 0.0f, 10, -1), -1.0f);
    expect_error("lr_cosine");
    /* a bad schedule value is refused by set_lr, which keeps the old rate */
    ck_assert_int_eq(sg_optim_set_lr(opt, sg_lr_cosine(0.1f, 0.0f, 0, 0)), -1);
    ck_assert_float_eq(sg_optim_lr(opt), 0.1f);
    sg_clear_error();

    sg_optim_free(opt);
    sg_tensor_free(w);
    sg_tensor_free(v);
}
END_TEST


/* Every float hyperparameter of optim/ refuses NaN and inf with a message
 * naming the function and the value: each field of sg_optim_opts that a
 * kind reads (through sg_optim_new), the learning rate of set_lr, the
 * clipping norm, and the schedules' rates (sg_lr_cosine(0.1, inf, 10, 1)
 * used to return NaN without a word, and a max_norm of inf was taken). */
START_TEST(test_nonfinite_hyperparameters)
{
    static const struct {
        const char *field;
        size_t offset;
        unsigned kinds; /* bit k: kind k reads the field */
    } fields[] = {
        {"learning rate", offsetof(sg_optim_opts, lr), 0x7f},
        {"weight_decay", offsetof(sg_optim_opts, weight_decay), 0x7f},
        {"momentum", offsetof(sg_optim_opts, momentum), 1u << SG_OPTIM_MOMENTUM | 1u << SG_OPTIM_NESTEROV},
        {"dampening", offsetof(sg_optim_opts, dampening), 1u << SG_OPTIM_MOMENTUM | 1u << SG_OPTIM_NESTEROV},
        {"alpha", offsetof(sg_optim_opts, alpha), 1u << SG_OPTIM_RMSPROP},
        {"beta1", offsetof(sg_optim_opts, beta1), 1u << SG_OPTIM_ADAM | 1u << SG_OPTIM_ADAMW},
        {"beta2", offsetof(sg_optim_opts, beta2), 1u << SG_OPTIM_ADAM | 1u << SG_OPTIM_ADAMW},
        {"eps", offsetof(sg_optim_opts, eps),
         1u << SG_OPTIM_ADAGRAD | 1u << SG_OPTIM_RMSPROP | 1u << SG_OPTIM_ADAM | 1u << SG_OPTIM_ADAMW},
        {"lr_decay", offsetof(sg_optim_opts, lr_decay), 1u << SG_OPTIM_ADAGRAD},
        {"initial_accumulator", offsetof(sg_optim_opts, initial_accumulator), 1u << SG_OPTIM_ADAGRAD},
    };
    static const float bad[3] = {NAN, INFINITY, -INFINITY};
    static const char *const bad_name[3] = {"nan", "inf", "-inf"};
    char want[128];
    for (int k = 0; k < SG_OPTIM_COUNT; k++) {
        for (size_t f = 0; f < sizeof fields / sizeof fields[0]; f++) {
            if (!(fields[f].kinds >> k & 1u))
                continue;
            for (int b = 0; b < 3; b++) {
                sg_optim_opts o = sg_optim_defaults((sg_optim_kind)k);
                memcpy((char *)&o + fields[f].offset, &bad[b], sizeof(float));
                sg_optim *opt = sg_optim_new(&o);
                ck_assert_msg(opt == NULL, "%s accepted %s %s", sg_optim_kind_name(k), fields[f].field,
                              bad_name[b]);
                snprintf(want, sizeof want, "%s %s", fields[f].field, bad_name[b]);
                ck_assert_msg(strstr(sg_last_error(), "optim_new: ") && strstr(sg_last_error(), want),
                              "error \"%s\" lacks \"optim_new\" or \"%s\"", sg_last_error(), want);
                sg_clear_error();
            }
        }
    }
    sg_optim *opt = sg_sgd_new(0.1f);
    ck_assert_int_eq(sg_optim_set_lr(opt, INFINITY), -1);
    expect_error("optim_set_lr: sgd learning rate inf must be >= 0 and finite (kept 0.1)");
    sg_optim_free(opt);

    sg_tensor *w = param2(3.0f, 4.0f);
    sg_scope_begin();
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_mul(w, w)), NULL), 0); /* g = (6, 8), norm 10 */
    sg_scope_end();
    ck_assert_float_eq(sg_clip_grad_norm(&w, 1, INFINITY), -1.0f);
    expect_error("clip_grad_norm: max_norm inf is not finite");
    ck_assert_float_eq(sg_grad_data(w)[0], 6.0f); /* untouched */
    ck_assert_float_eq_tol(sg_clip_grad_norm(&w, 1, 5.0f), 10.0f, 1e-5f);
    ck_assert_float_eq_tol(sg_grad_data(w)[0], 3.0f, 1e-5f);
    sg_tensor_free(w);

    ck_assert_float_eq(sg_lr_cosine(0.1f, INFINITY, 10, 1), -1.0f);
    expect_error("lr_cosine: eta_min inf is not finite");
    ck_assert_float_eq(sg_lr_cosine(INFINITY, 0.0f, 10, 1), -1.0f);
    expect_error("lr_cosine: base_lr inf is not finite");
    ck_assert_float_eq(sg_lr_cosine(NAN, 0.0f, 10, 1), -1.0f);
    expect_error("lr_cosine: base_lr nan is not finite");
    ck_assert_float_eq(sg_lr_step_decay(INFINITY, 0.5f, 1, 0), -1.0f);
    expect_error("lr_step_decay: base_lr inf is not finite");
    ck_assert_float_eq(sg_lr_step_decay(0.1f, INFINITY, 1, 0), -1.0f);
    expect_error("lr_step_decay: gamma inf is not finite");
    ck_assert_float_eq(sg_lr_step_decay(0.1f, NAN, 1, 0), -1.0f);
    expect_error("lr_step_decay: gamma nan is not finite");
    /* a finite gamma > 1 whose power leaves the floats */
    ck_assert_float_eq(sg_lr_step_decay(0.1f, 1e10f, 1, 5), -1.0f);
    expect_error("lr_step_decay: 0.1 * 1e+10^5 is too large for a float");
    ck_assert_float_eq_tol(sg_lr_step_decay(0.1f, 2.0f, 1, 3), 0.8f, 1e-7f); /* growth is allowed */
    ck_assert(!sg_has_error());
}
END_TEST


/* NULL arguments: every public function of optim/ given NULL where it
 * needs an object fails with a message starting with its name, never a
 * crash or an empty message; one row per (function, NULL argument), each
 * in its own process. Left out: sg_optim_free, sg_optim_reset and
 * sg_optim_zero_grad, for which NULL is documented as fine. */
#define OPTIM_NULL_ROWS(X)                                                                      \
    X("optim_new:", !sg_optim_new(NULL))                                                        \
    X("optim_step:", sg_optim_step(NULL, &w, 1) < 0)                                            \
    X("optim_step:", sg_optim_step(opt, NULL, 1) < 0)                                           \
    X("optim_lr:", sg_optim_lr(NULL) < 0)                                                       \
    X("optim_set_lr:", sg_optim_set_lr(NULL, 0.1f) < 0)                                         \
    X("optim_options:", !sg_optim_options(NULL))                                                \
    X("optim_steps:", sg_optim_steps(NULL) < 0)                                                 \
    X("optim_param_steps:", sg_optim_param_steps(NULL, w) < 0)                                  \
    X("optim_param_steps:", sg_optim_param_steps(opt, NULL) < 0)                                \
    X("optim_state:", !sg_optim_state(NULL, w, 0))                                              \
    X("optim_state:", !sg_optim_state(opt, NULL, 0))                                            \
    X("optim_state_bytes:", sg_optim_state_bytes(NULL) == 0)                                    \
    X("optim_forget:", sg_optim_forget(NULL, w) < 0)                                            \
    X("optim_forget:", sg_optim_forget(opt, NULL) < 0)                                          \
    X("optim_num_buffers:", sg_optim_num_buffers(NULL) < 0)                                     \
    X("optim_state_name:", !sg_optim_state_name(NULL, 0))                                       \
    X("optim_set_state:", sg_optim_set_state(NULL, w, 1, NULL) < 0)                             \
    X("optim_set_state:", sg_optim_set_state(opt, NULL, 1, NULL) < 0)                           \
    X("clip_grad_norm:", sg_clip_grad_norm(NULL, 1, 1.0f) < 0)

#define OPTIM_NULL_WHO(who, call) who,
static const char *const optim_null_who[] = {OPTIM_NULL_ROWS(OPTIM_NULL_WHO)};
enum { N_OPTIM_NULL_ROWS = sizeof optim_null_who / sizeof optim_null_who[0] };

static bool optim_null_call(int i, sg_optim *opt, sg_tensor *w)
{
    int k = 0;
#define OPTIM_NULL_CALL(who, call)                                                              \
    if (i == k++)                                                                               \
        return (call);
    OPTIM_NULL_ROWS(OPTIM_NULL_CALL)
#undef OPTIM_NULL_CALL
    return false;
}

START_TEST(test_null_arguments)
{
    sg_tensor *w = param2(1.0f, 2.0f);
    sg_optim *opt = sg_momentum_new(0.1f, 0.9f);
    sg_scope_begin();
    ck_assert_int_eq(sg_backward(sg_sum_all(w), NULL), 0);
    sg_scope_end();
    ck_assert_int_eq(sg_optim_step(opt, &w, 1), 0); /* w has state */
    sg_clear_error();
    const char *who = optim_null_who[_i];
    ck_assert_msg(optim_null_call(_i, opt, w), "row %d: %s did not fail on NULL", _i, who);
    ck_assert_msg(sg_has_error(), "row %d: %s failed without a message", _i, who);
    ck_assert_msg(strncmp(sg_last_error(), who, strlen(who)) == 0, "row %d: \"%s\" does not start with \"%s\"",
                  _i, sg_last_error(), who);
    sg_clear_error();
    sg_optim_free(opt);
    sg_tensor_free(w);
}
END_TEST

/* ------------------------------------------------------------------------- */

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc;

    tc = tcase_create("first_steps");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_sgd_two_steps);
    tcase_add_test(tc, test_momentum_two_steps);
    tcase_add_test(tc, test_momentum_dampening);
    tcase_add_test(tc, test_nesterov_two_steps);
    tcase_add_test(tc, test_adagrad_two_steps);
    tcase_add_test(tc, test_adagrad_decay_and_initial);
    tcase_add_test(tc, test_rmsprop_two_steps);
    tcase_add_test(tc, test_eps_outside_root);
    tcase_add_test(tc, test_adam_two_steps);
    tcase_add_test(tc, test_adam_eps_placement);
    tcase_add_test(tc, test_adamw_two_steps);
    suite_add_tcase(s, tc);

    tc = tcase_create("book_f");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_book_f_minimum, 0, N_BOOK_RUNS);
    suite_add_tcase(s, tc);

    tc = tcase_create("weight_decay");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_weight_decay_sgd);
    tcase_add_test(tc, test_weight_decay_momentum);
    tcase_add_test(tc, test_weight_decay_adam);
    tcase_add_test(tc, test_weight_decay_adagrad_rmsprop);
    tcase_add_test(tc, test_weight_decay_leaves_grad);
    suite_add_tcase(s, tc);

    tc = tcase_create("clip");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_clip_grad_norm);
    tcase_add_test(tc, test_clip_then_step);
    tcase_add_test(tc, test_clip_nonfinite);
    suite_add_tcase(s, tc);

    tc = tcase_create("schedule");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_lr_step_decay);
    tcase_add_test(tc, test_lr_cosine);
    tcase_add_test(tc, test_set_lr_schedule);
    tcase_add_test(tc, test_set_lr_keeps_state);
    suite_add_tcase(s, tc);

    tc = tcase_create("state");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_state_bytes, 0, SG_OPTIM_COUNT);
    tcase_add_loop_test(tc, test_decaying_state_flushes_to_zero, 0, SG_OPTIM_COUNT);
    tcase_add_test(tc, test_null_grad_skipped);
    tcase_add_test(tc, test_per_param_step_count);
    tcase_add_test(tc, test_set_state_resumes);
    tcase_add_test(tc, test_warm_step_allocates_nothing);
    tcase_add_loop_test(tc, test_threads_same_update, 0, SG_OPTIM_COUNT);
    tcase_add_test(tc, test_zero_grad);
    tcase_add_test(tc, test_defaults_and_names);
    tcase_add_test(tc, test_kind_from_name);
    suite_add_tcase(s, tc);

    tc = tcase_create("xor");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_xor, 0, (int)(sizeof xor_runs / sizeof xor_runs[0]));
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_bad_options);
    tcase_add_test(tc, test_bad_calls);
    tcase_add_test(tc, test_nonfinite_hyperparameters);
    suite_add_tcase(s, tc);

    tc = tcase_create("null arguments");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_loop_test(tc, test_null_arguments, 0, N_OPTIM_NULL_ROWS);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(optim_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    sg_release_memory();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
