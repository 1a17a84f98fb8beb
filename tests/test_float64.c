/*
 * test_float64.c — Check suite "float64": tensors of dtype float64 (issue
 * 13): creation and conversion, access, printing, PyTorch's promotion of
 * mixed dtypes, every primitive's float64 forward against its float32 one,
 * gradcheck's float64 defaults and what they catch that float32 cannot,
 * every nn layer and loss gradient-checked in float64 at the default
 * tolerances (and second order for the smooth ones), safetensors F64, and
 * float64 parameters refused by the optimizers.
 *
 * The primitives' own first- and second-order checks in float64 are in
 * test_gradcheck.c (its "*_float64" cases run every row in float64).
 */
#include "sg_datasets.h"
#include "sg_nn.h"
#include "sg_optim.h"
#include "sg_test.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>

static sg_rng rng;

static void setup(void)
{
    sg_test_setup();
    sg_set_default_dtype(SG_FLOAT32);
    sg_rng_seed(&rng, 99);
}

static void teardown(void)
{
    sg_set_default_dtype(SG_FLOAT32);
    sg_test_teardown();
}

/* ------------------------------------------------------------------------- */
/* creation, conversion, access */

START_TEST(test_creation_and_access)
{
    ck_assert_int_eq(sg_default_dtype(), SG_FLOAT32);
    ck_assert_str_eq(sg_dtype_name(SG_FLOAT64), "float64");
    ck_assert_str_eq(sg_dtype_name(SG_FLOAT32), "float32");
    sg_tensor *a = sg_scalar(0.1);
    ck_assert_int_eq(sg_dtype_of(a), SG_FLOAT32);
    ck_assert(sg_item64(a) == (double)0.1f);

    ck_assert_int_eq(sg_set_default_dtype(SG_FLOAT64), SG_FLOAT32);
    sg_tensor *b = sg_scalar(0.1);
    ck_assert_int_eq(sg_dtype_of(b), SG_FLOAT64);
    ck_assert(sg_item64(b) == 0.1); /* exact: no float32 rounding */
    ck_assert(sg_dtype_of(sg_zeros(SG_DIMS(2))) == SG_FLOAT64);
    ck_assert(sg_dtype_of(sg_uniform(&rng, 0, 1, SG_DIMS(2))) == SG_FLOAT64);
    ck_assert(sg_dtype_of(sg_arange(0, 3, 1)) == SG_FLOAT64);
    ck_assert_int_eq(sg_set_default_dtype(SG_FLOAT32), SG_FLOAT64);

    /* an unknown dtype changes nothing */
    ck_assert_int_eq(sg_set_default_dtype((sg_dtype)7), SG_FLOAT32);
    ASSERT_ERROR("set_default_dtype: unknown dtype 7");
    ck_assert_int_eq(sg_default_dtype(), SG_FLOAT32);

    /* explicit dtypes whatever the default; *_like follow their tensor */
    sg_tensor *c = sg_from_data64((double[]){1.0 / 3.0, 2.0}, SG_DIMS(2));
    ck_assert_int_eq(sg_dtype_of(c), SG_FLOAT64);
    ck_assert(sg_data64(c)[0] == 1.0 / 3.0);
    ck_assert_int_eq(sg_dtype_of(sg_zeros_like(c)), SG_FLOAT64);
    ck_assert(sg_data64(sg_full_like(c, 0.1))[1] == 0.1);
    ck_assert(sg_data64(sg_full_dtype(SG_FLOAT64, 0.1, SG_DIMS(1)))[0] == 0.1);
    ck_assert_int_eq(sg_dtype_of(sg_copy(c)), SG_FLOAT64);
    ck_assert_int_eq(sg_dtype_of(sg_detach(c)), SG_FLOAT64);
    ck_assert_int_eq(sg_dtype_of(sg_reshape(c, SG_DIMS(2, 1))), SG_FLOAT64);

    /* the wrong accessor is refused by name, never reinterpreted */
    ck_assert_ptr_null(sg_data(c));
    ASSERT_ERROR("data: the tensor is float64; use sg_data64");
    ck_assert_ptr_null(sg_data64(a));
    ASSERT_ERROR("data64: the tensor is float32; use sg_data");
    ck_assert_float_eq(sg_item(sg_slice(c, 0, 1, 2)), 2.f);

    /* conversion: the tensor itself when it has the dtype, rounding down */
    ck_assert_ptr_eq(sg_to_dtype(c, SG_FLOAT64), c);
    sg_tensor *c32 = sg_to_dtype(c, SG_FLOAT32);
    ck_assert_int_eq(sg_dtype_of(c32), SG_FLOAT32);
    ck_assert_float_eq(sg_data(c32)[0], (float)(1.0 / 3.0));
    ck_assert(sg_data64(sg_to_dtype(c32, SG_FLOAT64))[0] == (double)(float)(1.0 / 3.0));
    ck_assert_ptr_null(sg_to_dtype(c, (sg_dtype)3));
    ASSERT_ERROR("to_dtype: unknown dtype 3");
}
END_TEST

static char *printed(const sg_tensor *x)
{
    static char buf[256];
    FILE *f = fmemopen(buf, sizeof buf, "w");
    sg_print(f, x);
    fclose(f);
    return buf;
}

START_TEST(test_printer_digits)
{
    sg_tensor *t = sg_from_data64((double[]){1.0 / 3.0, 2.0, 0.1}, SG_DIMS(3));
    ck_assert_str_eq(printed(t), "[0.333333333333333 2. 0.1]\n");
    ck_assert_str_eq(printed(sg_to_dtype(t, SG_FLOAT32)), "[0.333333 2. 0.1]\n");
}
END_TEST

/* Data sets hand out float32 whatever the default dtype; take_rows keeps
 * its tensor's dtype. */
START_TEST(test_datasets_stay_float32)
{
    sg_set_default_dtype(SG_FLOAT64);
    sg_tensor *x, *t;
    ck_assert_int_eq(sg_logic_gate(SG_GATE_XOR, &x, &t), 0);
    ck_assert_int_eq(sg_dtype_of(x), SG_FLOAT32);
    ck_assert_int_eq(sg_spiral(5, 3, true, &rng, &x, &t), 0);
    ck_assert_int_eq(sg_dtype_of(x), SG_FLOAT32);
    ck_assert_int_eq(sg_dtype_of(t), SG_FLOAT32);
    sg_tensor *m = sg_from_data64((double[]){0.1, 0.2, 0.3, 0.4, 0.5, 0.6}, SG_DIMS(3, 2));
    sg_tensor *r = sg_take_rows(m, (int[]){2, 0}, 2);
    ck_assert_int_eq(sg_dtype_of(r), SG_FLOAT64);
    ck_assert(sg_data64(r)[0] == 0.5 && sg_data64(r)[1] == 0.6 && sg_data64(r)[3] == 0.2);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* promotion (torch.result_type) and the dtype of gradients */

START_TEST(test_promotion_and_grad_dtypes)
{
    sg_tensor *a = sg_param(sg_uniform(&rng, -1, 1, SG_DIMS(2, 3)));                       /* float32 */
    sg_tensor *b = sg_param(sg_to_dtype(sg_uniform(&rng, -1, 1, SG_DIMS(3)), SG_FLOAT64)); /* float64 */
    sg_tensor *s64 = sg_param(sg_full_dtype(SG_FLOAT64, 2.0, 0, NULL));                   /* 0-d float64 */
    sg_tensor *s32 = sg_param(sg_scalar(3.0));                                             /* 0-d float32 */

    sg_tensor *ab = sg_add(a, b);
    ck_assert_int_eq(sg_dtype_of(ab), SG_FLOAT64); /* both have dims: float64 */
    sg_tensor *as = sg_mul(a, s64);
    ck_assert_int_eq(sg_dtype_of(as), SG_FLOAT32); /* a 0-d tensor does not promote one with dims */
    ck_assert_int_eq(sg_dtype_of(sg_mul(s32, s64)), SG_FLOAT64); /* both 0-d: float64 */
    ck_assert_int_eq(sg_dtype_of(sg_matmul(sg_reshape(b, SG_DIMS(1, 3)), sg_transpose(a))), SG_FLOAT64);
    ck_assert_int_eq(sg_dtype_of(sg_concat((sg_tensor *[]){a, sg_reshape(b, SG_DIMS(1, 3))}, 2, 0)), SG_FLOAT64);

    sg_tensor *loss = sg_add(sg_sum_all(sg_mul(ab, ab)), sg_sum_all(as));
    ck_assert_int_eq(sg_backward(loss, NULL), 0);
    /* each gradient in its tensor's dtype, with the right values */
    ck_assert_int_eq(sg_dtype_of(sg_grad(a)), SG_FLOAT32);
    ck_assert_int_eq(sg_dtype_of(sg_grad(b)), SG_FLOAT64);
    ck_assert_int_eq(sg_dtype_of(sg_grad(s64)), SG_FLOAT64);
    ck_assert_ptr_null(sg_grad_data(b));
    ASSERT_ERROR("grad_data: the tensor is float64; use sg_grad_data64");
    const float *ga = sg_grad_data(a), *av = sg_data(a);
    const double *gb = sg_grad_data64(b), *bv = sg_data64(b);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++) /* d/da: 2 (a + b) + s64 */
            ck_assert_double_eq_tol(ga[i * 3 + j], 2.0 * (av[i * 3 + j] + bv[j]) + 2.0, 1e-6);
    for (int j = 0; j < 3; j++) /* d/db: sum over rows of 2 (a + b) */
        ck_assert_double_eq_tol(gb[j], 2.0 * (av[j] + bv[j]) + 2.0 * (av[3 + j] + bv[j]), 1e-12);
    double sum_a = 0;
    for (int i = 0; i < 6; i++)
        sum_a += av[i];
    ck_assert_double_eq_tol(sg_grad_data64(s64)[0], sum_a, 1e-6);

    /* a seed of the other dtype is converted to y's */
    sg_tensor *y = sg_mul_scalar(b, 3.0);
    sg_zero_grad(b);
    ck_assert_int_eq(sg_backward(y, &(sg_backward_opts){.grad = sg_ones(SG_DIMS(3))}), 0);
    ck_assert(sg_grad_data64(b)[1] == 3.0);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* every primitive's float64 forward agrees with its float32 forward */

typedef sg_tensor *(*op2)(sg_tensor *, sg_tensor *);
static sg_tensor *op_pow(sg_tensor *x, sg_tensor *u) { (void)u; return sg_pow(x, 1.5); }
static sg_tensor *op_exp(sg_tensor *x, sg_tensor *u) { (void)u; return sg_exp(x); }
static sg_tensor *op_log(sg_tensor *x, sg_tensor *u) { (void)u; return sg_log(x); }
static sg_tensor *op_relu(sg_tensor *x, sg_tensor *u) { return sg_relu(sg_sub(x, u)); }
static sg_tensor *op_neg_scalars(sg_tensor *x, sg_tensor *u) { (void)u; return sg_add_scalar(sg_mul_scalar(sg_neg(x), 0.3), 2.0); }
static sg_tensor *op_div_bcast(sg_tensor *x, sg_tensor *u) { return sg_div(x, sg_slice(u, 1, 0, 1)); }
static sg_tensor *op_sum(sg_tensor *x, sg_tensor *u) { (void)u; return sg_sum(x, (int[]){0, 2}, 2, true); }
static sg_tensor *op_max(sg_tensor *x, sg_tensor *u) { (void)u; return sg_max(x, (int[]){1}, 1, false); }
static sg_tensor *op_permute(sg_tensor *x, sg_tensor *u) { (void)u; return sg_permute(x, (int[]){2, 0, 1}, 3); }
static sg_tensor *op_bcast(sg_tensor *x, sg_tensor *u) { (void)u; return sg_broadcast_to(sg_slice(x, 0, 0, 1), SG_DIMS(3, 2, 4)); }
static sg_tensor *op_sum_to(sg_tensor *x, sg_tensor *u) { (void)u; return sg_sum_to(x, SG_DIMS(2, 1)); }
static sg_tensor *op_concat(sg_tensor *x, sg_tensor *u) { return sg_concat((sg_tensor *[]){x, u, x}, 3, 1); }
static sg_tensor *op_matmul(sg_tensor *x, sg_tensor *u) { return sg_matmul_t(x, u, false, true); }
static sg_tensor *op_addmm(sg_tensor *x, sg_tensor *u) { return sg_addmm_t(sg_slice(u, 1, 0, 1), x, u, true, false); }
static sg_tensor *op_unfold(sg_tensor *x, sg_tensor *u)
{
    (void)u;
    return sg_unfold(sg_reshape(x, SG_DIMS(1, 2, 3, 4)), (sg_window){.kh = 2, .kw = 3, .sh = 1, .sw = 2, .ph = 1, .pw = 1});
}
static sg_tensor *op_fold(sg_tensor *x, sg_tensor *u)
{
    (void)u;
    sg_window w = {.kh = 2, .kw = 2, .sh = 1, .sw = 1, .ph = 1, .pw = 0};
    return sg_fold(sg_unfold(sg_reshape(x, SG_DIMS(1, 2, 3, 4)), w), 1, 2, 3, 4, w);
}
static sg_tensor *op_cmp(sg_tensor *x, sg_tensor *u) { return sg_add(sg_gt(x, u), sg_eq(x, x)); }

START_TEST(test_forward_agrees_with_float32)
{
    static const struct { const char *name; op2 f; } ops[] = {
        {"pow", op_pow}, {"exp", op_exp}, {"log", op_log}, {"relu", op_relu}, {"neg/scalars", op_neg_scalars},
        {"div (broadcast)", op_div_bcast}, {"sum", op_sum}, {"max", op_max}, {"permute", op_permute},
        {"broadcast_to", op_bcast}, {"sum_to", op_sum_to}, {"concat", op_concat}, {"matmul", op_matmul},
        {"addmm", op_addmm}, {"unfold", op_unfold}, {"fold", op_fold}, {"gt/eq", op_cmp},
    };
    sg_tensor *x = sg_uniform(&rng, 0.5, 2, SG_DIMS(3, 2, 4)), *u = sg_uniform(&rng, 0.5, 2, SG_DIMS(3, 2, 4));
    sg_tensor *x64 = sg_to_dtype(x, SG_FLOAT64), *u64 = sg_to_dtype(u, SG_FLOAT64);
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        sg_tensor *y = ops[k].f(x, u), *y64 = ops[k].f(x64, u64);
        ck_assert_msg(y && y64, "%s: %s", ops[k].name, sg_last_error());
        ck_assert_msg(sg_dtype_of(y64) == SG_FLOAT64, "%s: float64 inputs gave %s", ops[k].name,
                      sg_dtype_name(sg_dtype_of(y64)));
        ck_assert_msg(sg_same_shape(y, y64), "%s: shapes differ", ops[k].name);
        const float *a = sg_data(y);
        const double *b = sg_data64(y64);
        for (size_t i = 0; i < sg_size(y); i++)
            ck_assert_msg(fabs(a[i] - b[i]) <= 1e-5 * (1 + fabs(b[i])), "%s: [%zu] float32 %.9g, float64 %.17g",
                          ops[k].name, i, (double)a[i], b[i]);
    }
}
END_TEST

/* ------------------------------------------------------------------------- */
/* gradcheck: float64 defaults, and what float64 sees that float32 cannot */

/* exp(x), whose backward is wrong by the relative error in ctx: the value
 * is exp(x) (the detached term cancels), the derivative (1 + err) exp(x) */
static sg_tensor *f_exp_wrong(sg_tensor *const *in, int n, void *ctx)
{
    (void)n;
    double err = *(const double *)ctx;
    sg_tensor *e = sg_exp(in[0]);
    return sg_sub(sg_mul_scalar(e, 1.0 + err), sg_mul_scalar(sg_detach(e), err));
}

START_TEST(test_gradcheck_float64_sees_1e4)
{
    /* Tolerances tight enough to see a 1e-4 relative error: rtol 1e-5. */
    const sg_gradcheck_opts tight = {.atol = 1e-8, .rtol = 1e-5};
    const double right = 0.0, wrong = 1e-4;
    sg_gradcheck_report rep;
    sg_tensor *x32 = sg_param(sg_uniform(&rng, 0.5, 1.5, SG_DIMS(2, 3)));
    sg_tensor *x64 = sg_param(sg_to_dtype(sg_detach(x32), SG_FLOAT64));

    /* float64: the right derivative passes, the wrong one is caught, and
     * the report names the worst element with both values */
    ck_assert_msg(sg_gradcheck(f_exp_wrong, &x64, 1, (void *)&right, &tight, &rep), "%s", rep.message);
    ck_assert_double_lt(rep.max_abs_err, 1e-8);
    ck_assert(!sg_gradcheck(f_exp_wrong, &x64, 1, (void *)&wrong, &tight, &rep));
    sg_clear_error();
    ck_assert_int_eq(rep.input, 0);
    ck_assert_double_eq_tol(rep.analytic / rep.numeric, 1.0 + 1e-4, 1e-8);
    ck_assert_msg(strstr(rep.message, "FAILED"), "%s", rep.message);

    /* float32 cannot tell them apart: at the same tight tolerances the
     * right derivative fails too (rounding in the differences is ~1e-4
     * relative), and at float32's defaults the wrong one passes */
    ck_assert(!sg_gradcheck(f_exp_wrong, &x32, 1, (void *)&right, &tight, &rep));
    sg_clear_error();
    ck_assert(sg_gradcheck(f_exp_wrong, &x32, 1, (void *)&wrong, NULL, &rep));

    /* float64 at its defaults (PyTorch's): eps 1e-6, atol 1e-5, rtol 1e-3 —
     * an error of 1e-2 relative is caught, one of 1e-4 is within rtol */
    const double big = 1e-2;
    ck_assert(!sg_gradcheck(f_exp_wrong, &x64, 1, (void *)&big, NULL, &rep));
    sg_clear_error();
    ck_assert_msg(strstr(rep.message, "tolerance 1e-05 + 0.001*|numeric|"), "%s", rep.message);
    ck_assert(sg_gradcheck(f_exp_wrong, &x32, 1, (void *)&big, NULL, &rep)); /* float32 misses even this */
}
END_TEST

/* ------------------------------------------------------------------------- */
/* every nn layer and loss in float64, at gradcheck's default tolerances */

typedef struct nn_case {
    const char *name;
    sg_fn f;
    int n_in;
    int shapes[4][5]; /* per input: ndim, dims... */
    bool second_order;
} nn_case;

#define IN(...) {(int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)), __VA_ARGS__}
#define FN(name) static sg_tensor *name(sg_tensor *const *in, int n, void *ctx)
#define UNUSED (void)n, (void)ctx

FN(l_linear) { UNUSED; return sg_linear(in[0], in[1], in[2]); }
FN(l_conv) { UNUSED; return sg_conv2d(in[0], in[1], in[2], 1, 1); }
FN(l_conv_s2) { UNUSED; return sg_conv2d(in[0], in[1], NULL, 2, 0); }
FN(l_maxpool) { UNUSED; return sg_max_pool2d(in[0], 2, 2, 0); }
FN(l_maxpool_pad) { UNUSED; return sg_max_pool2d(in[0], 3, 2, 1); }
FN(l_avgpool) { UNUSED; return sg_avg_pool2d(in[0], 3, 2, 1); }
FN(l_gap) { UNUSED; return sg_global_avg_pool2d(in[0]); }
FN(l_bn_train) { UNUSED; return sg_batch_norm(in[0], in[1], in[2], NULL); }
FN(l_bn_train4) { UNUSED; return sg_batch_norm(in[0], in[1], in[2], NULL); }
FN(l_bn_eval)
{
    UNUSED;
    sg_tensor *rm = sg_full_like(in[1], 0.2), *rv = sg_full_like(in[2], 1.5); /* constants */
    sg_batch_norm_opts o = sg_batch_norm_defaults();
    o.training = false;
    o.running_mean = rm;
    o.running_var = rv;
    return sg_batch_norm(in[0], in[1], in[2], &o);
}
FN(l_dropout)
{
    UNUSED;
    sg_rng r; /* the same mask at every evaluation */
    sg_rng_seed(&r, 5);
    return sg_dropout(in[0], 0.4f, true, &r);
}
FN(l_sigmoid) { UNUSED; return sg_sigmoid(in[0]); }
FN(l_tanh) { UNUSED; return sg_tanh(in[0]); }
FN(l_leaky) { UNUSED; return sg_leaky_relu(in[0], 0.1f); }
FN(l_softmax) { UNUSED; return sg_softmax(in[0]); }
FN(l_log_softmax) { UNUSED; return sg_log_softmax(in[0]); }
FN(l_residual) { UNUSED; return sg_residual_add(in[0], sg_mul(in[0], in[1])); }
FN(l_flatten) { UNUSED; return sg_mul(sg_flatten(in[0]), sg_flatten(in[0])); }
FN(l_sse) { UNUSED; return sg_sum_squares_loss(in[0], in[1]); }
FN(l_mse) { UNUSED; return sg_mse_loss(in[0], in[1]); }
FN(l_ce) { UNUSED; return sg_cross_entropy(sg_softmax(in[0]), sg_one_hot((int[]){2, 0, 3}, 3, 4)); }
FN(l_ce_labels) { UNUSED; return sg_cross_entropy_labels(sg_softmax(in[0]), (int[]){1, 3, 0}, 3); }
FN(l_sce) { UNUSED; return sg_softmax_cross_entropy(in[0], sg_one_hot((int[]){2, 0, 3}, 3, 4)); }
FN(l_sce_labels) { UNUSED; return sg_softmax_cross_entropy_labels(in[0], (int[]){1, 3, 0}, 3); }

static const nn_case nn_cases[] = {
    {"linear", l_linear, 3, {IN(4, 3), IN(3, 5), IN(5)}, true},
    {"conv2d", l_conv, 3, {IN(2, 2, 4, 4), IN(3, 2, 3, 3), IN(3)}, true},
    {"conv2d stride 2", l_conv_s2, 2, {IN(1, 2, 5, 5), IN(2, 2, 3, 3)}, false},
    {"max_pool2d", l_maxpool, 1, {IN(2, 2, 4, 4)}, false}, /* piecewise linear: no second derivative */
    {"max_pool2d pad", l_maxpool_pad, 1, {IN(1, 2, 5, 5)}, false},
    {"avg_pool2d", l_avgpool, 1, {IN(1, 2, 5, 5)}, false}, /* linear */
    {"global_avg_pool2d", l_gap, 1, {IN(2, 3, 2, 2)}, false},
    {"batch_norm (N,D) training", l_bn_train, 3, {IN(5, 3), IN(3), IN(3)}, true},
    {"batch_norm (N,C,H,W) training", l_bn_train4, 3, {IN(2, 3, 2, 2), IN(3), IN(3)}, true},
    {"batch_norm evaluation", l_bn_eval, 3, {IN(4, 3), IN(3), IN(3)}, false},
    {"dropout", l_dropout, 1, {IN(3, 4)}, false},
    {"sigmoid", l_sigmoid, 1, {IN(3, 4)}, true},
    {"tanh", l_tanh, 1, {IN(3, 4)}, true},
    {"leaky_relu", l_leaky, 1, {IN(3, 4)}, false},
    {"softmax", l_softmax, 1, {IN(3, 4)}, true},
    {"log_softmax", l_log_softmax, 1, {IN(3, 4)}, true},
    {"residual_add", l_residual, 2, {IN(2, 3), IN(2, 3)}, false},
    {"flatten", l_flatten, 1, {IN(2, 2, 3)}, false},
    {"sum_squares_loss", l_sse, 2, {IN(3, 4), IN(3, 4)}, true},
    {"mse_loss", l_mse, 2, {IN(3, 4), IN(3, 4)}, true},
    {"cross_entropy", l_ce, 1, {IN(3, 4)}, true},
    {"cross_entropy_labels", l_ce_labels, 1, {IN(3, 4)}, false},
    {"softmax_cross_entropy", l_sce, 1, {IN(3, 4)}, true},
    {"softmax_cross_entropy_labels", l_sce_labels, 1, {IN(3, 4)}, false},
};
#define N_NN_CASES ((int)(sizeof nn_cases / sizeof nn_cases[0]))

/* Values 0.1 apart, shuffled, of magnitude >= 0.05: no ties for max
 * pooling, no kink of relu/leaky_relu or of max within eps = 1e-6. */
static sg_tensor *spaced_input(const int *spec)
{
    sg_tensor *x = sg_zeros(spec[0], spec + 1);
    double *d = sg_data64(x);
    size_t n = sg_size(x);
    for (size_t i = 0; i < n; i++)
        d[i] = 0.1 * ((double)i - (double)n / 2.0) + 0.05;
    for (size_t i = n; i > 1; i--) {
        size_t j = sg_rng_below(&rng, (uint32_t)i);
        double t = d[i - 1];
        d[i - 1] = d[j];
        d[j] = t;
    }
    /* larger tensors: scale into [-1, 1] so softmax and exp stay tame */
    double scale = n > 20 ? 20.0 / (double)n : 1.0;
    for (size_t i = 0; i < n; i++)
        d[i] *= scale;
    return sg_param(x);
}

START_TEST(test_nn_layers_float64)
{
    const nn_case *c = &nn_cases[_i];
    sg_set_default_dtype(SG_FLOAT64); /* inputs, one-hot targets, every constant */
    sg_tensor *in[4];
    for (int k = 0; k < c->n_in; k++)
        in[k] = spaced_input(c->shapes[k]);
    sg_gradcheck_report rep;
    bool ok = sg_gradcheck(c->f, in, c->n_in, NULL, NULL, &rep);
    ck_assert_msg(ok, "float64 gradcheck of %s: %s [%s]", c->name, rep.message, sg_last_error());
    ck_assert_msg(strstr(rep.message, "tolerance 1e-05 + 0.001*|numeric|"), "%s: not float64's defaults: %s",
                  c->name, rep.message);
    printf("float64 gradcheck %-30s max |analytic - numeric| = %.2e\n", c->name, rep.max_abs_err);
    if (c->second_order) {
        ok = sg_gradgradcheck(c->f, in, c->n_in, NULL, NULL, &rep);
        ck_assert_msg(ok, "float64 gradgradcheck of %s: %s [%s]", c->name, rep.message, sg_last_error());
        printf("float64 gradgradcheck %-26s max |analytic - numeric| = %.2e\n", c->name, rep.max_abs_err);
    }
    ck_assert(!sg_has_error());
}
END_TEST

/* A whole model in float64: the book's SimpleConvNet-like stack and an
 * MLP with batch norm, made while the default dtype is float64. */
typedef struct model_ctx {
    sg_model *m;
    sg_tensor *labels_oh;
} model_ctx;

static sg_tensor *model_loss(sg_tensor *const *in, int n, void *vctx)
{
    (void)n;
    model_ctx *c = vctx;
    return sg_softmax_cross_entropy(sg_model_forward(c->m, in[0]), c->labels_oh);
}

START_TEST(test_model_float64)
{
    sg_set_default_dtype(SG_FLOAT64);
    sg_scope_end(); /* models and their parameters are made outside scopes */
    sg_model *m = sg_model_new();
    sg_rng r;
    sg_rng_seed(&r, 3);
    sg_model_add(m, sg_conv2d_new(m, "conv", 1, 2, 3, 1, 1, (sg_init){.kind = SG_INIT_KIND_HE_NORMAL}, &r));
    sg_model_add(m, sg_relu_new(m, "relu"));
    sg_model_add(m, sg_maxpool2d_new(m, "pool", 2, 2, 0));
    sg_model_add(m, sg_flatten_new(m, "flat"));
    sg_model_add(m, sg_linear_new(m, "fc", 8, 3, (sg_init){.kind = SG_INIT_KIND_HE_NORMAL}, &r));
    ck_assert_msg(!sg_has_error(), "%s", sg_last_error());
    sg_set_default_dtype(SG_FLOAT32);
    sg_model *m32 = sg_model_new();
    sg_model_add(m32, sg_conv2d_new(m32, "conv", 1, 2, 3, 1, 1, (sg_init){.kind = SG_INIT_KIND_ZEROS}, &r));
    sg_model_add(m32, sg_relu_new(m32, "relu"));
    sg_model_add(m32, sg_maxpool2d_new(m32, "pool", 2, 2, 0));
    sg_model_add(m32, sg_flatten_new(m32, "flat"));
    sg_model_add(m32, sg_linear_new(m32, "fc", 8, 3, (sg_init){.kind = SG_INIT_KIND_ZEROS}, &r));
    sg_set_default_dtype(SG_FLOAT64);
    sg_scope_begin();
    int np;
    const sg_named_param *p = sg_model_params(m, &np);
    for (int k = 0; k < np; k++)
        ck_assert_int_eq(sg_dtype_of(p[k].tensor), SG_FLOAT64);
    sg_tensor *x = spaced_input((int[]){4, 2, 1, 4, 4});
    model_ctx c = {m, sg_one_hot((int[]){0, 2}, 2, 3)};
    /* check w.r.t. the input and every parameter */
    sg_tensor *all[8] = {x};
    for (int k = 0; k < np; k++)
        all[1 + k] = p[k].tensor;
    sg_gradcheck_report rep;
    ck_assert_msg(sg_gradcheck(model_loss, all, 1 + np, &c, NULL, &rep), "%s", rep.message);
    printf("float64 gradcheck %-30s max |analytic - numeric| = %.2e\n", "conv-relu-pool-linear model",
           rep.max_abs_err);

    /* float64 parameters are saved as F64 and read back exactly, and read
     * into a float32 model rounded */
    char path[] = "/tmp/sg_f64_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    ck_assert_int_eq(sg_model_save(m, path), 0);
    double before = sg_data64(p[0].tensor)[0];
    sg_data64(p[0].tensor)[0] = 0.0;
    ck_assert_int_eq(sg_model_load(m, path), 0);
    ck_assert(sg_data64(p[0].tensor)[0] == before);
    ck_assert_int_eq(sg_model_load(m32, path), 0);
    int np32;
    const sg_named_param *p32 = sg_model_params(m32, &np32);
    ck_assert_float_eq(sg_data(p32[0].tensor)[0], (float)before);
    unlink(path);

    /* optimizers update float32 parameters only, and say so */
    sg_optim *opt = sg_sgd_new(0.1f);
    ck_assert_int_eq(sg_backward(model_loss(&x, 1, &c), NULL), 0);
    sg_tensor *params[8];
    for (int k = 0; k < np; k++)
        params[k] = p[k].tensor;
    ck_assert_int_eq(sg_optim_step(opt, params, np), -1);
    ASSERT_ERROR_HAS("optim_step: sgd params[0] is float64; optimizers update float32 parameters");
    sg_optim_free(opt);
    sg_model_free(m32);
    sg_model_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("float64");
    TCase *t = tcase_create("dtype");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, test_creation_and_access);
    tcase_add_test(t, test_printer_digits);
    tcase_add_test(t, test_datasets_stay_float32);
    tcase_add_test(t, test_promotion_and_grad_dtypes);
    tcase_add_test(t, test_forward_agrees_with_float32);
    suite_add_tcase(s, t);
    TCase *g = tcase_create("gradcheck");
    tcase_add_checked_fixture(g, setup, teardown);
    tcase_add_test(g, test_gradcheck_float64_sees_1e4);
    tcase_add_loop_test(g, test_nn_layers_float64, 0, N_NN_CASES);
    tcase_add_test(g, test_model_float64);
    suite_add_tcase(s, g);
    return sg_test_run(s);
}
