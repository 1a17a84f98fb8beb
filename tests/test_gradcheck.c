/*
 * test_gradcheck.c — Check suite "gradcheck": every primitive of the op table
 * against central differences (sg_gradcheck), second order (sg_gradgradcheck)
 * on the smooth ops, gradient checking of composite functions, micrograd's two
 * classic expressions, and a deliberately wrong gradient that must be caught.
 *
 * Coverage guard: `op_checks[]` maps each op name to the function that checks
 * it. One test walks the engine's op table (sg_op_count/sg_op_name) and fails
 * for any op without an entry, so adding a primitive without a gradient check
 * fails this suite. Each check also traces the checked function's graph and
 * asserts that the named op really occurs in it.
 *
 * Inputs are small (at most 30 elements, except the (2,3,5,5) unfold the
 * issue asks for) so the suite stays fast under valgrind. Values are drawn
 * from a generator seeded per test; inputs of relu are kept away from 0 and
 * inputs of max are distinct (spaced 0.25 apart, far more than eps = 1e-3).
 *
 * Expected values of the micrograd expressions are PyTorch's (as printed in
 * micrograd's README and test_engine.py).
 *
 * Both dtypes: the primitive and second-order cases run twice, once as they
 * are (float32, gradcheck's float32 tolerances) and once with the default
 * dtype set to float64 (every input is made through creation functions
 * that follow it), at gradcheck's float64 defaults — PyTorch's eps 1e-6,
 * atol 1e-5, rtol 1e-3. gc() asserts that a float64 run really computes in
 * float64.
 */
#include "sg_autograd.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------- */
/* Fixture and helpers */

static sg_rng rng;

static void setup(void)
{
    sg_clear_error();
    sg_set_grad_enabled(true);
    sg_set_default_dtype(SG_FLOAT32);
    sg_rng_seed(&rng, 1234);
    sg_scope_begin();
}

static void setup64(void)
{
    setup();
    sg_set_default_dtype(SG_FLOAT64);
}

static void teardown(void)
{
    while (sg_scope_depth() > 0)
        sg_scope_end();
    sg_set_default_dtype(SG_FLOAT32);
}

/* x (a float32 tensor, edited through sg_data) as a parameter of the
 * default dtype. */
static sg_tensor *param_default(sg_tensor *x) { return sg_param(sg_to_dtype(x, sg_default_dtype())); }

/* A parameter with values uniform in [lo, hi). */
static sg_tensor *rand_param(float lo, float hi, int ndim, const int *shape)
{
    return sg_param(sg_uniform(&rng, lo, hi, ndim, shape));
}
#define RAND(lo, hi, ...) rand_param((lo), (hi), SG_DIMS(__VA_ARGS__))

/* |values| in [0.2, 1), signs alternating: safe for relu's kink at 0. */
static sg_tensor *away_from_zero(int ndim, const int *shape)
{
    sg_dtype dt = sg_set_default_dtype(SG_FLOAT32);
    sg_tensor *x = sg_uniform(&rng, 0.2f, 1.f, ndim, shape);
    sg_set_default_dtype(dt);
    float *d = sg_data(x);
    for (size_t i = 0; i < sg_size(x); i += 2)
        d[i] = -d[i];
    return param_default(x);
}
#define AWAY(...) away_from_zero(SG_DIMS(__VA_ARGS__))

/* Distinct values 0.25 apart in shuffled order: no ties for max. */
static sg_tensor *distinct(int ndim, const int *shape)
{
    sg_tensor *x = sg_full_dtype(SG_FLOAT32, 0.0, ndim, shape);
    float *d = sg_data(x);
    size_t n = sg_size(x);
    for (size_t i = 0; i < n; i++)
        d[i] = 0.25f * ((float)i - (float)n / 2.f);
    for (size_t i = n; i > 1; i--) {
        size_t j = sg_rng_below(&rng, (uint32_t)i);
        float t = d[i - 1];
        d[i - 1] = d[j];
        d[j] = t;
    }
    return param_default(x);
}
#define DISTINCT(...) distinct(SG_DIMS(__VA_ARGS__))

/* Assert that f's graph on these inputs contains a node made by `op`. */
static void assert_graph_has(const char *op, sg_fn f, sg_tensor *const *in, int n, void *ctx)
{
    sg_scope_begin();
    sg_tensor *y = f(in, n, ctx);
    ck_assert_msg(y != NULL, "%s: the checked function failed: %s", op, sg_last_error());
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(mem);
    sg_trace(mem, y);
    fclose(mem);
    char needle[64];
    snprintf(needle, sizeof needle, " = %s(", op);
    bool found = strstr(text, needle) != NULL;
    free(text);
    sg_scope_end();
    ck_assert_msg(found, "the graph checked for '%s' contains no %s node", op, op);
}

/* In a float64 run, every input and the output must be float64 (else the
 * check would silently run at float32's tolerances). */
static void assert_dtype_of_run(sg_fn f, sg_tensor *const *in, int n, void *ctx)
{
    if (sg_default_dtype() != SG_FLOAT64)
        return;
    for (int i = 0; i < n; i++)
        ck_assert_msg(sg_dtype_of(in[i]) == SG_FLOAT64, "input %d is %s in a float64 run", i,
                      sg_dtype_name(sg_dtype_of(in[i])));
    sg_scope_begin();
    sg_tensor *y = f(in, n, ctx);
    ck_assert_msg(y && sg_dtype_of(y) == SG_FLOAT64, "the output is %s in a float64 run",
                  y ? sg_dtype_name(sg_dtype_of(y)) : "NULL");
    sg_scope_end();
}

static void gc_opts(const char *op, sg_fn f, sg_tensor *const *in, int n, void *ctx,
                    const sg_gradcheck_opts *opts)
{
    if (op)
        assert_graph_has(op, f, in, n, ctx);
    assert_dtype_of_run(f, in, n, ctx);
    sg_gradcheck_report rep;
    bool ok = sg_gradcheck(f, in, n, ctx, opts, &rep);
    ck_assert_msg(ok, "gradcheck of %s: %s [%s]", op ? op : "?", rep.message, sg_last_error());
    ck_assert(rep.ok);
    ck_assert_msg(strncmp(rep.message, "gradcheck passed", 16) == 0, "%s", rep.message);
    ck_assert(!sg_has_error());
}

static void gc(const char *op, sg_fn f, sg_tensor *const *in, int n, void *ctx)
{
    gc_opts(op, f, in, n, ctx, NULL);
}

static void ggc(const char *op, sg_fn f, sg_tensor *const *in, int n, void *ctx)
{
    if (op)
        assert_graph_has(op, f, in, n, ctx);
    assert_dtype_of_run(f, in, n, ctx);
    sg_gradcheck_report rep;
    bool ok = sg_gradgradcheck(f, in, n, ctx, NULL, &rep);
    ck_assert_msg(ok, "gradgradcheck of %s: %s [%s]", op ? op : "?", rep.message, sg_last_error());
    ck_assert(!sg_has_error());
}

/* ------------------------------------------------------------------------- */
/* The functions checked: one per primitive, attributes passed in ctx */

typedef struct args {
    int axes[SG_MAX_DIMS];
    int n_axes;
    bool keep;
    int ndim;
    int shape[SG_MAX_DIMS];
    int perm[SG_MAX_DIMS];
    int axis, start, stop;
    bool ta, tb;
    sg_window w;
    int n, c, h, wd;
    float p;
    double lo, hi;      /* clamp */
    sg_tensor *index;   /* gather, scatter_add */
} args;

#define FN(name) static sg_tensor *name(sg_tensor *const *in, int n, void *ctx)
#define UNUSED_ARGS (void)n, (void)ctx

FN(f_add) { UNUSED_ARGS; return sg_add(in[0], in[1]); }
FN(f_sub) { UNUSED_ARGS; return sg_sub(in[0], in[1]); }
FN(f_mul) { UNUSED_ARGS; return sg_mul(in[0], in[1]); }
FN(f_div) { UNUSED_ARGS; return sg_div(in[0], in[1]); }
FN(f_neg) { UNUSED_ARGS; return sg_neg(in[0]); }
FN(f_exp) { UNUSED_ARGS; return sg_exp(in[0]); }
FN(f_log) { UNUSED_ARGS; return sg_log(in[0]); }
FN(f_relu) { UNUSED_ARGS; return sg_relu(in[0]); }
FN(f_pow) { (void)n; return sg_pow(in[0], ((args *)ctx)->p); }
FN(f_add_scalar) { (void)n; return sg_add_scalar(in[0], ((args *)ctx)->p); }
FN(f_mul_scalar) { (void)n; return sg_mul_scalar(in[0], ((args *)ctx)->p); }
FN(f_sum)
{
    (void)n;
    args *a = ctx;
    return sg_sum(in[0], a->axes, a->n_axes, a->keep);
}
FN(f_max)
{
    (void)n;
    args *a = ctx;
    return sg_max(in[0], a->axes, a->n_axes, a->keep);
}
FN(f_reshape)
{
    (void)n;
    args *a = ctx;
    return sg_reshape(in[0], a->ndim, a->shape);
}
FN(f_permute) { (void)n; return sg_permute(in[0], ((args *)ctx)->perm, sg_ndim(in[0])); }
FN(f_transpose) { UNUSED_ARGS; return sg_transpose(in[0]); }
FN(f_broadcast_to)
{
    (void)n;
    args *a = ctx;
    return sg_broadcast_to(in[0], a->ndim, a->shape);
}
FN(f_sum_to)
{
    (void)n;
    args *a = ctx;
    return sg_sum_to(in[0], a->ndim, a->shape);
}
FN(f_slice)
{
    (void)n;
    args *a = ctx;
    return sg_slice(in[0], a->axis, a->start, a->stop);
}
FN(f_concat) { return sg_concat(in, n, ((args *)ctx)->axis); }
FN(f_matmul)
{
    (void)n;
    args *a = ctx;
    return sg_matmul_t(in[0], in[1], a->ta, a->tb);
}
FN(f_addmm)
{
    (void)n;
    args *a = ctx;
    return sg_addmm_t(in[0], in[1], in[2], a->ta, a->tb);
}
FN(g_sq_addmm)
{
    sg_tensor *y = f_addmm(in, n, ctx);
    return sg_mul(y, y);
}
FN(f_unfold) { (void)n; return sg_unfold(in[0], ((args *)ctx)->w); }
FN(f_fold)
{
    (void)n;
    args *a = ctx;
    return sg_fold(in[0], a->n, a->c, a->h, a->wd, a->w);
}

/* the math and indexing primitives (ops_math.c, ops_index.c) */
FN(f_sin) { UNUSED_ARGS; return sg_sin(in[0]); }
FN(f_cos) { UNUSED_ARGS; return sg_cos(in[0]); }
FN(f_tanh) { UNUSED_ARGS; return sg_tanh(in[0]); }
FN(f_abs) { UNUSED_ARGS; return sg_abs(in[0]); }
FN(f_minimum) { UNUSED_ARGS; return sg_minimum(in[0], in[1]); }
FN(f_maximum) { UNUSED_ARGS; return sg_maximum(in[0], in[1]); }
FN(f_where) { (void)n; return sg_where(((args *)ctx)->index, in[0], in[1]); }
FN(f_clamp)
{
    (void)n;
    args *a = ctx;
    return sg_clamp(in[0], a->lo, a->hi);
}
FN(f_gather)
{
    (void)n;
    args *a = ctx;
    return sg_gather(in[0], a->axis, a->index);
}
FN(f_scatter_add)
{
    (void)n;
    args *a = ctx;
    return sg_scatter_add(in[0], a->axis, a->index, in[1]);
}

/* A user-defined primitive: softplus y = log(1 + e^x), forward a raw loop
 * in either dtype (stable: max(x, 0) + log1p(e^-|x|)), backward from y:
 * dy/dx = sigmoid(x) = 1 - e^-y, so it differentiates again. */
static sg_tensor *softplus_forward(sg_tensor *const *x, int n, void *ctx)
{
    (void)n, (void)ctx;
    sg_tensor *y = sg_zeros_like(x[0]);
    if (!y)
        return NULL;
    for (size_t i = 0; i < sg_size(y); i++) {
        double v = sg_dtype_of(y) == SG_FLOAT64 ? sg_data64(x[0])[i] : sg_data(x[0])[i];
        double r = (v > 0 ? v : 0) + log1p(exp(-fabs(v)));
        if (sg_dtype_of(y) == SG_FLOAT64)
            sg_data64(y)[i] = r;
        else
            sg_data(y)[i] = (float)r;
    }
    return y;
}

static void softplus_backward(sg_tensor *const *x, int n, sg_tensor *y, sg_tensor *dy, sg_tensor **dx, void *ctx)
{
    (void)x, (void)n, (void)ctx;
    dx[0] = sg_mul(dy, sg_sub(sg_ones_like(y), sg_exp(sg_neg(y))));
}

static const sg_custom_op softplus_op = {
    .name = "softplus", .n_inputs = 1, .forward = softplus_forward, .backward = softplus_backward};

FN(f_softplus) { UNUSED_ARGS; return sg_custom_apply(&softplus_op, in, 1, NULL); }

/* ------------------------------------------------------------------------- */
/* One check per primitive */

/* cast: x converted to the other dtype and back, x (other) x: the product
 * makes the derivative depend on the cast's values. */
static sg_dtype other_dtype(const sg_tensor *x)
{
    return sg_dtype_of(x) == SG_FLOAT32 ? SG_FLOAT64 : SG_FLOAT32;
}
FN(f_cast_square)
{
    UNUSED_ARGS;
    sg_tensor *c = sg_to_dtype(in[0], other_dtype(in[0]));
    return sg_mul(c, c);
}
FN(f_cast_roundtrip)
{
    UNUSED_ARGS;
    sg_tensor *c = sg_to_dtype(sg_to_dtype(in[0], other_dtype(in[0])), sg_dtype_of(in[0]));
    return sg_mul(c, in[0]);
}
FN(f_promoted_add) { UNUSED_ARGS; return sg_mul(sg_add(in[0], in[1]), in[1]); }

static void check_cast(void)
{
    sg_tensor *x = RAND(-1, 1, 2, 3);
    /* the product runs in the other dtype: float32 -> float64 is exact and
     * the check is float32's; float64 -> float32 rounds, so that one needs
     * float32's tolerances, which the dtype of its output calls for */
    sg_gradcheck_report rep;
    sg_gradcheck_opts f32_tol = {.eps = 1e-3, .atol = 1e-3, .rtol = 1e-2};
    assert_graph_has("cast", f_cast_square, &x, 1, NULL);
    ck_assert_msg(sg_gradcheck(f_cast_square, &x, 1, NULL, &f32_tol, &rep), "%s", rep.message);
    if (sg_dtype_of(x) == SG_FLOAT32) /* float32 -> float64 -> float32 is exact */
        gc("cast", f_cast_roundtrip, &x, 1, NULL);
    else /* float64 -> float32 -> float64 rounds: a step function at float64's eps */
        ck_assert_msg(sg_gradcheck(f_cast_roundtrip, &x, 1, NULL, &f32_tol, &rep), "%s", rep.message);
    /* promotion: (2,3) of one dtype + (3) of the other gives float64, and
     * each gradient comes back in its input's dtype */
    sg_tensor *a = RAND(-1, 1, 2, 3);
    sg_tensor *b = sg_param(sg_to_dtype(sg_uniform(&rng, -1, 1, SG_DIMS(3)), other_dtype(a)));
    ck_assert_int_eq(sg_dtype_of(sg_add(a, b)), SG_FLOAT64);
    assert_graph_has("cast", f_promoted_add, (sg_tensor *[]){a, b}, 2, NULL);
    ck_assert_msg(sg_gradcheck(f_promoted_add, (sg_tensor *[]){a, b}, 2, NULL, &f32_tol, &rep), "%s", rep.message);
}

static void check_add(void)
{
    sg_tensor *a = RAND(-1, 1, 2, 3), *b = RAND(-1, 1, 3);
    gc("add", f_add, (sg_tensor *[]){a, b}, 2, NULL);              /* (2,3)+(3) */
    gc("add", f_add, (sg_tensor *[]){b, a}, 2, NULL);              /* (3)+(2,3) */
    sg_tensor *c = RAND(-1, 1, 2, 1, 4), *d = RAND(-1, 1, 3, 1);
    gc("add", f_add, (sg_tensor *[]){c, d}, 2, NULL);              /* (2,1,4)+(3,1) */
    sg_tensor *s = sg_param(sg_scalar(0.7f)), *e = RAND(-1, 1, 2, 2);
    gc("add", f_add, (sg_tensor *[]){s, e}, 2, NULL);              /* ()+(2,2) */
    sg_tensor *f = RAND(-1, 1, 2, 3);
    gc("add", f_add, (sg_tensor *[]){a, f}, 2, NULL);              /* equal shapes */
    /* only one input needs a gradient */
    sg_tensor *k = sg_uniform(&rng, -1, 1, SG_DIMS(2, 3));
    gc("add", f_add, (sg_tensor *[]){k, b}, 2, NULL);
}

static void check_sub(void)
{
    sg_tensor *a = RAND(-1, 1, 2, 3), *b = RAND(-1, 1, 3);
    gc("sub", f_sub, (sg_tensor *[]){a, b}, 2, NULL);
    sg_tensor *c = RAND(-1, 1, 4, 1), *d = RAND(-1, 1, 1, 5);
    gc("sub", f_sub, (sg_tensor *[]){c, d}, 2, NULL);              /* (4,1)-(1,5) */
}

static void check_mul(void)
{
    sg_tensor *a = RAND(-1, 1, 2, 1, 4), *b = RAND(-1, 1, 3, 1);
    gc("mul", f_mul, (sg_tensor *[]){a, b}, 2, NULL);              /* (2,1,4)*(3,1) */
    sg_tensor *c = RAND(-1, 1, 2, 3), *d = RAND(-1, 1, 2, 3);
    gc("mul", f_mul, (sg_tensor *[]){c, d}, 2, NULL);
    sg_tensor *s = sg_param(sg_scalar(-1.3f));
    gc("mul", f_mul, (sg_tensor *[]){c, s}, 2, NULL);              /* (2,3)*() */
    gc("mul", f_mul, (sg_tensor *[]){c, c}, 2, NULL);              /* x*x: used twice */
}

static void check_div(void)
{
    sg_tensor *a = RAND(-1, 1, 4, 1), *b = RAND(0.5, 1.5, 1, 5);
    gc("div", f_div, (sg_tensor *[]){a, b}, 2, NULL);              /* (4,1)/(1,5) */
    sg_tensor *c = RAND(-1, 1, 2, 3), *d = RAND(-1.5, -0.5, 3);
    gc("div", f_div, (sg_tensor *[]){c, d}, 2, NULL);              /* (2,3)/(3) */
}

static void check_neg(void)
{
    sg_tensor *a = RAND(-1, 1, 2, 3);
    gc("neg", f_neg, &a, 1, NULL);
}

static void check_pow(void)
{
    static const float exps[] = {2.f, 3.f, 0.5f, -1.f, 1.5f, -2.f, 1.f, 0.f};
    sg_tensor *pos = RAND(0.5, 1.5, 2, 3);
    for (size_t i = 0; i < sizeof exps / sizeof exps[0]; i++) {
        args a = {.p = exps[i]};
        gc("pow", f_pow, &pos, 1, &a);
    }
    sg_tensor *mixed = RAND(-1.5, 1.5, 2, 3); /* integer exponents: any sign */
    for (int p = 2; p <= 3; p++) {
        args a = {.p = (float)p};
        gc("pow", f_pow, &mixed, 1, &a);
    }
}

static void check_add_scalar(void)
{
    sg_tensor *x = RAND(-1, 1, 2, 3);
    gc("add_scalar", f_add_scalar, &x, 1, &(args){.p = 2.5f});
}

static void check_mul_scalar(void)
{
    sg_tensor *x = RAND(-1, 1, 2, 3);
    gc("mul_scalar", f_mul_scalar, &x, 1, &(args){.p = -1.5f});
}

static void check_exp(void)
{
    sg_tensor *x = RAND(-1, 1, 2, 3);
    gc("exp", f_exp, &x, 1, NULL);
}

static void check_log(void)
{
    sg_tensor *x = RAND(0.5, 2, 2, 3);
    gc("log", f_log, &x, 1, NULL);
}

static void check_relu(void)
{
    sg_tensor *x = AWAY(3, 4);
    gc("relu", f_relu, &x, 1, NULL);
}

static void check_sum(void)
{
    sg_tensor *x = RAND(-1, 1, 2, 3, 4);
    args cases[] = {
        {.axes = {1}, .n_axes = 1, .keep = false},
        {.axes = {1}, .n_axes = 1, .keep = true},
        {.axes = {0, 2}, .n_axes = 2, .keep = false},
        {.axes = {0, 2}, .n_axes = 2, .keep = true},
        {.axes = {-1}, .n_axes = 1, .keep = false},
        {.n_axes = 0, .keep = false},
        {.n_axes = 0, .keep = true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        gc("sum", f_sum, &x, 1, &cases[i]);
}

static void check_max(void)
{
    sg_tensor *x = DISTINCT(2, 3, 4);
    args cases[] = {
        {.axes = {1}, .n_axes = 1, .keep = false},
        {.axes = {1}, .n_axes = 1, .keep = true},
        {.axes = {0, 2}, .n_axes = 2, .keep = false},
        {.axes = {2}, .n_axes = 1, .keep = true},
        {.axes = {-3}, .n_axes = 1, .keep = false},
        {.n_axes = 0, .keep = false},
        {.n_axes = 0, .keep = true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        gc("max", f_max, &x, 1, &cases[i]);
}

static void check_reshape(void)
{
    sg_tensor *x = RAND(-1, 1, 2, 3, 4);
    gc("reshape", f_reshape, &x, 1, &(args){.ndim = 2, .shape = {4, 6}});
    gc("reshape", f_reshape, &x, 1, &(args){.ndim = 2, .shape = {6, -1}});
    gc("reshape", f_reshape, &x, 1, &(args){.ndim = 1, .shape = {24}});
}

static void check_permute(void)
{
    sg_tensor *x = RAND(-1, 1, 2, 3, 4);
    gc("permute", f_permute, &x, 1, &(args){.perm = {2, 0, 1}});
    gc("permute", f_permute, &x, 1, &(args){.perm = {1, 2, 0}});
    sg_tensor *m = RAND(-1, 1, 3, 4);
    gc("permute", f_transpose, &m, 1, NULL);
}

static void check_broadcast_to(void)
{
    sg_tensor *a = RAND(-1, 1, 3, 1);
    gc("broadcast_to", f_broadcast_to, &a, 1, &(args){.ndim = 3, .shape = {2, 3, 4}});
    sg_tensor *b = RAND(-1, 1, 4);
    gc("broadcast_to", f_broadcast_to, &b, 1, &(args){.ndim = 2, .shape = {3, 4}});
    sg_tensor *s = sg_param(sg_scalar(0.3f));
    gc("broadcast_to", f_broadcast_to, &s, 1, &(args){.ndim = 2, .shape = {2, 3}});
}

static void check_sum_to(void)
{
    sg_tensor *x = RAND(-1, 1, 2, 3, 4);
    gc("sum_to", f_sum_to, &x, 1, &(args){.ndim = 2, .shape = {3, 1}});
    gc("sum_to", f_sum_to, &x, 1, &(args){.ndim = 1, .shape = {4}});
    gc("sum_to", f_sum_to, &x, 1, &(args){.ndim = 3, .shape = {2, 1, 4}});
    gc("sum_to", f_sum_to, &x, 1, &(args){.ndim = 0});
}

static void check_slice(void)
{
    sg_tensor *x = RAND(-1, 1, 3, 4, 2);
    gc("slice", f_slice, &x, 1, &(args){.axis = 0, .start = 1, .stop = 3});
    gc("slice", f_slice, &x, 1, &(args){.axis = 1, .start = 1, .stop = 3});
    gc("slice", f_slice, &x, 1, &(args){.axis = 2, .start = 0, .stop = 1});
    gc("slice", f_slice, &x, 1, &(args){.axis = -1, .start = 1, .stop = 2});
    gc("slice", f_slice, &x, 1, &(args){.axis = 1, .start = 0, .stop = 4}); /* whole */
}

static void check_concat(void)
{
    sg_tensor *a = RAND(-1, 1, 1, 3), *b = RAND(-1, 1, 2, 3);
    gc("concat", f_concat, (sg_tensor *[]){a, b}, 2, &(args){.axis = 0});
    sg_tensor *c = RAND(-1, 1, 2, 1), *d = RAND(-1, 1, 2, 2), *e = RAND(-1, 1, 2, 3);
    gc("concat", f_concat, (sg_tensor *[]){c, d, e}, 3, &(args){.axis = 1});
    sg_tensor *f = RAND(-1, 1, 2, 2, 1), *g = RAND(-1, 1, 2, 2, 3);
    gc("concat", f_concat, (sg_tensor *[]){f, g}, 2, &(args){.axis = 2});
    gc("concat", f_concat, (sg_tensor *[]){g, f, g}, 3, &(args){.axis = -1}); /* reuse */
    sg_tensor *k = sg_uniform(&rng, -1, 1, SG_DIMS(2, 2)); /* a constant part */
    gc("concat", f_concat, (sg_tensor *[]){d, k}, 2, &(args){.axis = 0});
}

static void check_matmul(void)
{
    /* 2-D, all four transpose flag combinations: op(a) is (2,3), op(b) (3,4) */
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            sg_tensor *a = ta ? RAND(-1, 1, 3, 2) : RAND(-1, 1, 2, 3);
            sg_tensor *b = tb ? RAND(-1, 1, 4, 3) : RAND(-1, 1, 3, 4);
            gc("matmul", f_matmul, (sg_tensor *[]){a, b}, 2, &(args){.ta = ta, .tb = tb});
        }
    }
    /* batched 3-D, with the flags too */
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            sg_tensor *a = ta ? RAND(-1, 1, 2, 3, 2) : RAND(-1, 1, 2, 2, 3);
            sg_tensor *b = tb ? RAND(-1, 1, 2, 2, 3) : RAND(-1, 1, 2, 3, 2);
            gc("matmul", f_matmul, (sg_tensor *[]){a, b}, 2, &(args){.ta = ta, .tb = tb});
        }
    }
    /* a batch of matrices times one shared matrix, and one shared matrix
     * times a batch (convolution's W @ cols_n^T), with every flag */
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            sg_tensor *a = ta ? RAND(-1, 1, 2, 4, 3) : RAND(-1, 1, 2, 3, 4);
            sg_tensor *b = tb ? RAND(-1, 1, 2, 4) : RAND(-1, 1, 4, 2);
            gc("matmul", f_matmul, (sg_tensor *[]){a, b}, 2, &(args){.ta = ta, .tb = tb});
            sg_tensor *s = ta ? RAND(-1, 1, 4, 3) : RAND(-1, 1, 3, 4);
            sg_tensor *c = tb ? RAND(-1, 1, 2, 2, 2, 4) : RAND(-1, 1, 2, 2, 4, 2);
            gc("matmul", f_matmul, (sg_tensor *[]){s, c}, 2, &(args){.ta = ta, .tb = tb});
        }
    }
}

/* c + op(a) op(b): c as a bias row, a column, one value or the whole
 * result; 2-D, shared right (a layer), shared left (a convolution) */
static void check_addmm(void)
{
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            sg_tensor *a = ta ? RAND(-1, 1, 3, 2) : RAND(-1, 1, 2, 3);
            sg_tensor *b = tb ? RAND(-1, 1, 4, 3) : RAND(-1, 1, 3, 4);
            sg_tensor *cs[4] = {RAND(-1, 1, 4), RAND(-1, 1, 2, 1), RAND(-1, 1, 1), RAND(-1, 1, 2, 4)};
            for (int k = 0; k < 4; k++)
                gc("addmm", f_addmm, (sg_tensor *[]){cs[k], a, b}, 3, &(args){.ta = ta, .tb = tb});
        }
    }
    sg_tensor *x = RAND(-1, 1, 2, 3, 4), *W = RAND(-1, 1, 4, 2), *bias = RAND(-1, 1, 2);
    gc("addmm", f_addmm, (sg_tensor *[]){bias, x, W}, 3, &(args){0});
    sg_tensor *Wc = RAND(-1, 1, 3, 4), *cols = RAND(-1, 1, 2, 5, 4), *bc = RAND(-1, 1, 3, 1);
    gc("addmm", f_addmm, (sg_tensor *[]){bc, Wc, cols}, 3, &(args){.tb = true});
}

static void check_unfold(void)
{
    sg_tensor *x = RAND(-1, 1, 2, 3, 5, 5); /* 3x3, stride 2, pad 1 */
    gc("unfold", f_unfold, &x, 1, &(args){.w = {.kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1}});
    sg_tensor *y = RAND(-1, 1, 1, 2, 4, 4); /* 2x2 pooling windows */
    gc("unfold", f_unfold, &y, 1, &(args){.w = {.kh = 2, .kw = 2, .sh = 2, .sw = 2}});
    sg_tensor *z = RAND(-1, 1, 1, 1, 4, 5); /* rectangular, uneven stride and pad */
    gc("unfold", f_unfold, &z, 1, &(args){.w = {.kh = 2, .kw = 3, .sh = 1, .sw = 2, .ph = 1, .pw = 0}});
}

static void check_fold(void)
{
    sg_window w = {.kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1};
    sg_tensor *cols = RAND(-1, 1, 9, 9); /* N=1, C=1, 5x5 -> 3x3 windows */
    gc("fold", f_fold, &cols, 1, &(args){.w = w, .n = 1, .c = 1, .h = 5, .wd = 5});
    sg_window w2 = {.kh = 2, .kw = 2, .sh = 1, .sw = 1}; /* overlapping windows */
    sg_tensor *cols2 = RAND(-1, 1, 8, 8); /* N=2, C=2, 3x3 -> 2x2 windows */
    gc("fold", f_fold, &cols2, 1, &(args){.w = w2, .n = 2, .c = 2, .h = 3, .wd = 3});
}

static void check_sin(void)
{
    sg_tensor *x = RAND(-3, 3, 2, 3);
    gc("sin", f_sin, &x, 1, NULL);
}

static void check_cos(void)
{
    sg_tensor *x = RAND(-3, 3, 2, 3);
    gc("cos", f_cos, &x, 1, NULL);
}

static void check_tanh(void)
{
    sg_tensor *x = RAND(-2.5, 2.5, 3, 4);
    gc("tanh", f_tanh, &x, 1, NULL);
}

static void check_abs(void)
{
    sg_tensor *x = sg_param(sg_from_data((float[]){-1.5f, -0.2f, 0.3f, 0.7f, -0.05f, 2.f}, SG_DIMS(2, 3)));
    gc("abs", f_abs, &x, 1, NULL); /* away from the kink at 0 by more than eps */
}

/* a (2,3) and b (3) differ by >= 0.1 everywhere: no ties within eps */
static sg_tensor *mm_a(void) { return sg_param(sg_from_data((float[]){0.1f, -0.7f, 1.3f, 0.9f, -0.2f, 0.5f}, SG_DIMS(2, 3))); }
static sg_tensor *mm_b(void) { return sg_param(sg_from_data((float[]){0.4f, -0.3f, 0.8f}, SG_DIMS(3))); }

static void check_minimum(void)
{
    sg_tensor *a = mm_a(), *b = mm_b();
    gc("minimum", f_minimum, (sg_tensor *[]){a, b}, 2, NULL); /* (2,3) and (3) */
    gc("minimum", f_minimum, (sg_tensor *[]){b, a}, 2, NULL);
}

static void check_maximum(void)
{
    sg_tensor *a = mm_a(), *b = mm_b();
    gc("maximum", f_maximum, (sg_tensor *[]){a, b}, 2, NULL);
    sg_tensor *k = sg_from_data((float[]){0.4f, -0.3f, 0.8f}, SG_DIMS(3)); /* a constant side */
    gc("maximum", f_maximum, (sg_tensor *[]){a, k}, 2, NULL);
}

static void check_where(void)
{
    sg_tensor *c = sg_from_data((float[]){1, 0, 1, 0, 0, 1}, SG_DIMS(2, 3));
    sg_tensor *a = RAND(-1, 1, 2, 3), *b = RAND(-1, 1, 3);
    gc("where", f_where, (sg_tensor *[]){a, b}, 2, &(args){.index = c}); /* (2,3), (2,3), (3) */
    sg_tensor *c2 = sg_from_data((float[]){0, 1}, SG_DIMS(2, 1));         /* a mask broadcast too */
    gc("where", f_where, (sg_tensor *[]){b, a}, 2, &(args){.index = c2});
}

static void check_clamp(void)
{
    /* every value 0.05 or more from a bound */
    sg_tensor *x = sg_param(sg_from_data((float[]){-0.9f, -0.3f, 0.2f, 0.7f, 0.45f, -0.6f}, SG_DIMS(2, 3)));
    gc("clamp", f_clamp, &x, 1, &(args){.lo = -0.5, .hi = 0.5});
    gc("clamp", f_clamp, &x, 1, &(args){.lo = -INFINITY, .hi = 0.3}); /* clamp_max */
}

static void check_gather(void)
{
    sg_tensor *x = RAND(-1, 1, 2, 4);
    sg_tensor *i1 = sg_from_data((float[]){3, 0, 1, 1, 1, 2}, SG_DIMS(2, 3)); /* repeats: gradients add */
    gc("gather", f_gather, &x, 1, &(args){.axis = 1, .index = i1});
    sg_tensor *i0 = sg_from_data((float[]){1, 0, 1, 1}, SG_DIMS(1, 4));
    gc("gather", f_gather, &x, 1, &(args){.axis = 0, .index = i0});
    sg_tensor *x3 = RAND(-1, 1, 2, 3, 2);
    sg_tensor *i3 = sg_from_data((float[]){2, 0, 0, 0}, SG_DIMS(2, 1, 2));
    gc("gather", f_gather, &x3, 1, &(args){.axis = -2, .index = i3});
}

static void check_scatter_add(void)
{
    sg_tensor *base = RAND(-1, 1, 3, 4), *src = RAND(-1, 1, 2, 4);
    sg_tensor *idx = sg_from_data((float[]){0, 2, 2, 1, 0, 2, 1, 1}, SG_DIMS(2, 4));
    gc("scatter_add", f_scatter_add, (sg_tensor *[]){base, src}, 2, &(args){.axis = 0, .index = idx});
    sg_tensor *k = sg_uniform(&rng, -1, 1, SG_DIMS(3, 4)); /* only src needs a gradient */
    gc("scatter_add", f_scatter_add, (sg_tensor *[]){k, src}, 2, &(args){.axis = 0, .index = idx});
}

static void check_custom(void)
{
    sg_tensor *x = RAND(-3, 3, 2, 3);
    gc("softplus", f_softplus, &x, 1, NULL); /* traced under its own name */
}

typedef struct op_check {
    const char *op;
    void (*run)(void);
} op_check;

/* The coverage table: every primitive of the op table must appear here. */
static const op_check op_checks[] = {
    {"cast", check_cast},
    {"add", check_add},
    {"sub", check_sub},
    {"mul", check_mul},
    {"div", check_div},
    {"neg", check_neg},
    {"pow", check_pow},
    {"add_scalar", check_add_scalar},
    {"mul_scalar", check_mul_scalar},
    {"exp", check_exp},
    {"log", check_log},
    {"relu", check_relu},
    {"sum", check_sum},
    {"max", check_max},
    {"reshape", check_reshape},
    {"permute", check_permute},
    {"broadcast_to", check_broadcast_to},
    {"sum_to", check_sum_to},
    {"slice", check_slice},
    {"concat", check_concat},
    {"matmul", check_matmul},
    {"addmm", check_addmm},
    {"unfold", check_unfold},
    {"fold", check_fold},
    {"sin", check_sin},
    {"cos", check_cos},
    {"tanh", check_tanh},
    {"abs", check_abs},
    {"minimum", check_minimum},
    {"maximum", check_maximum},
    {"where", check_where},
    {"clamp", check_clamp},
    {"gather", check_gather},
    {"scatter_add", check_scatter_add},
    {"custom", check_custom},
};
#define N_OP_CHECKS ((int)(sizeof op_checks / sizeof op_checks[0]))

/* Table entries that are not primitives (no backward to check). */
static const char *const not_primitives[] = {"leaf"};

static int op_index(const char *name)
{
    for (int i = 0; i < sg_op_count(); i++)
        if (strcmp(sg_op_name(i), name) == 0)
            return i;
    return -1;
}

START_TEST(test_op_gradcheck)
{
    const op_check *c = &op_checks[_i];
    ck_assert_msg(op_index(c->op) >= 0, "op_checks names '%s', which is not in the op table", c->op);
    c->run();
}
END_TEST

START_TEST(test_op_table_covered)
{
    int n = sg_op_count();
    ck_assert_int_ge(n, 2);
    ck_assert_str_eq(sg_op_name(0), "leaf");
    ck_assert_str_eq(sg_op_name(-1), "?");
    ck_assert_str_eq(sg_op_name(n), "?");
    int primitives = 0;
    for (int i = 0; i < n; i++) {
        const char *name = sg_op_name(i);
        ck_assert_msg(strcmp(name, "?") != 0, "op %d has no name", i);
        bool skip = false;
        for (size_t k = 0; k < sizeof not_primitives / sizeof not_primitives[0]; k++)
            skip = skip || strcmp(name, not_primitives[k]) == 0;
        if (skip)
            continue;
        primitives++;
        bool covered = false;
        for (int k = 0; k < N_OP_CHECKS; k++)
            covered = covered || strcmp(op_checks[k].op, name) == 0;
        ck_assert_msg(covered, "primitive '%s' (op %d) has no gradient check in test_gradcheck.c", name, i);
    }
    ck_assert_int_eq(primitives, N_OP_CHECKS); /* and no stale or duplicate entries */
}
END_TEST

/* max with a tie: the gradient is shared evenly among the tied elements. */
START_TEST(test_max_tie_even_split)
{
    sg_tensor *x = sg_param(sg_from_data((float[]){1, 3, 3, 2, 5, 5, 5, 0}, SG_DIMS(2, 4)));
    sg_tensor *m = sg_max(x, (int[]){1}, 1, false);
    ck_assert_ptr_nonnull(m);
    ck_assert_float_eq(sg_data(m)[0], 3.f);
    ck_assert_float_eq(sg_data(m)[1], 5.f);
    sg_tensor *seed = sg_from_data((float[]){1.f, 6.f}, SG_DIMS(2));
    ck_assert_int_eq(sg_backward(m, &(sg_backward_opts){.grad = seed}), 0);
    static const float want[] = {0, 0.5f, 0.5f, 0, 2, 2, 2, 0};
    for (int i = 0; i < 8; i++)
        ck_assert_float_eq_tol(sg_grad_data(x)[i], want[i], 1e-6f);
    /* over every axis: a three-way tie of the global maximum */
    sg_tensor *y = sg_param(sg_from_data((float[]){5, 1, 5, 5}, SG_DIMS(4)));
    ck_assert_int_eq(sg_backward(sg_max(y, NULL, 0, false), NULL), 0);
    for (int i = 0; i < 4; i++)
        ck_assert_float_eq_tol(sg_grad_data(y)[i], i == 1 ? 0.f : 1.f / 3.f, 1e-6f);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Second order: gradgradcheck on the smooth ops. A linear op has a constant
 * gradient, so it is checked as op(x)^2 (or op(x) * op(x)): the second
 * derivative then goes through the op's recorded backward. */

FN(g_sq_add) { UNUSED_ARGS; sg_tensor *s = sg_add(in[0], in[1]); return sg_mul(s, s); }
FN(g_sq_sub) { UNUSED_ARGS; sg_tensor *s = sg_sub(in[0], in[1]); return sg_mul(s, s); }
FN(g_sq_neg) { UNUSED_ARGS; return sg_pow(sg_neg(in[0]), 2.f); }
FN(g_sq_add_scalar) { UNUSED_ARGS; return sg_pow(sg_add_scalar(in[0], 0.5f), 3.f); }
FN(g_sq_mul_scalar) { UNUSED_ARGS; return sg_pow(sg_mul_scalar(in[0], -2.f), 2.f); }
FN(g_sq_sum)
{
    (void)n;
    args *a = ctx;
    return sg_pow(sg_sum(in[0], a->axes, a->n_axes, a->keep), 2.f);
}
FN(g_sq_reshape) { return sg_pow(f_reshape(in, n, ctx), 2.f); }
FN(g_sq_permute) { return sg_pow(f_permute(in, n, ctx), 2.f); }
FN(g_sq_broadcast_to) { return sg_pow(f_broadcast_to(in, n, ctx), 2.f); }
FN(g_sq_sum_to) { return sg_pow(f_sum_to(in, n, ctx), 2.f); }
FN(g_sq_slice) { return sg_pow(f_slice(in, n, ctx), 2.f); }
FN(g_sq_concat) { return sg_pow(f_concat(in, n, ctx), 2.f); }
FN(g_sq_unfold) { return sg_pow(f_unfold(in, n, ctx), 2.f); }
FN(g_sq_fold) { return sg_pow(f_fold(in, n, ctx), 2.f); }
FN(g_max_sq)
{
    (void)n;
    args *a = ctx;
    return sg_max(sg_pow(in[0], 2.f), a->axes, a->n_axes, a->keep);
}
FN(g_relu_sq) { UNUSED_ARGS; return sg_relu(sg_pow(in[0], 3.f)); }

START_TEST(test_gradgrad_elementwise)
{
    sg_tensor *a = RAND(-1, 1, 2, 3), *b = RAND(-1, 1, 3);
    ggc("add", g_sq_add, (sg_tensor *[]){a, b}, 2, NULL);
    ggc("sub", g_sq_sub, (sg_tensor *[]){a, b}, 2, NULL);
    sg_tensor *c = RAND(-1, 1, 2, 1, 3), *d = RAND(-1, 1, 2, 1);
    ggc("mul", f_mul, (sg_tensor *[]){c, d}, 2, NULL);
    sg_tensor *e = RAND(-1, 1, 3, 1), *f = RAND(0.5, 1.5, 1, 2);
    ggc("div", f_div, (sg_tensor *[]){e, f}, 2, NULL);
    ggc("neg", g_sq_neg, &a, 1, NULL);
    ggc("add_scalar", g_sq_add_scalar, &a, 1, NULL);
    ggc("mul_scalar", g_sq_mul_scalar, &a, 1, NULL);
    sg_tensor *pos = RAND(0.5, 1.5, 2, 3);
    static const float exps[] = {2.f, 3.f, 0.5f, -1.f, 1.5f};
    for (size_t i = 0; i < sizeof exps / sizeof exps[0]; i++)
        ggc("pow", f_pow, &pos, 1, &(args){.p = exps[i]});
    ggc("exp", f_exp, &a, 1, NULL);
    ggc("log", f_log, &pos, 1, NULL);
    /* relu's second derivative is 0, but its backward must record the mask
     * product correctly for what comes before it */
    sg_tensor *r = AWAY(2, 3);
    ggc("relu", g_relu_sq, &r, 1, NULL);
}
END_TEST

START_TEST(test_gradgrad_reduce_shape)
{
    sg_tensor *x = RAND(-1, 1, 2, 3, 4);
    ggc("sum", g_sq_sum, &x, 1, &(args){.axes = {1}, .n_axes = 1, .keep = false});
    ggc("sum", g_sq_sum, &x, 1, &(args){.axes = {0, 2}, .n_axes = 2, .keep = true});
    ggc("sum", g_sq_sum, &x, 1, &(args){.n_axes = 0});
    sg_tensor *dx = DISTINCT(2, 3, 2);
    ggc("max", g_max_sq, &dx, 1, &(args){.axes = {1}, .n_axes = 1, .keep = false});
    ggc("reshape", g_sq_reshape, &x, 1, &(args){.ndim = 2, .shape = {6, 4}});
    ggc("permute", g_sq_permute, &x, 1, &(args){.perm = {2, 0, 1}});
    sg_tensor *b = RAND(-1, 1, 3, 1);
    ggc("broadcast_to", g_sq_broadcast_to, &b, 1, &(args){.ndim = 3, .shape = {2, 3, 4}});
    ggc("sum_to", g_sq_sum_to, &x, 1, &(args){.ndim = 2, .shape = {3, 1}});
    ggc("slice", g_sq_slice, &x, 1, &(args){.axis = 1, .start = 1, .stop = 3});
    ggc("slice", g_sq_slice, &x, 1, &(args){.axis = 2, .start = 0, .stop = 2});
    sg_tensor *c = RAND(-1, 1, 2, 1), *d = RAND(-1, 1, 2, 2);
    ggc("concat", g_sq_concat, (sg_tensor *[]){c, d}, 2, &(args){.axis = 1});
    ggc("concat", g_sq_concat, (sg_tensor *[]){d, c, d}, 3, &(args){.axis = -1});
}
END_TEST

START_TEST(test_gradgrad_matmul_unfold)
{
    for (int ta = 0; ta < 2; ta++) {
        for (int tb = 0; tb < 2; tb++) {
            sg_tensor *a = ta ? RAND(-1, 1, 3, 2) : RAND(-1, 1, 2, 3);
            sg_tensor *b = tb ? RAND(-1, 1, 2, 3) : RAND(-1, 1, 3, 2);
            ggc("matmul", f_matmul, (sg_tensor *[]){a, b}, 2, &(args){.ta = ta, .tb = tb});
        }
    }
    sg_tensor *a3 = RAND(-1, 1, 2, 2, 3), *b3 = RAND(-1, 1, 2, 3, 2), *s = RAND(-1, 1, 3, 2);
    ggc("matmul", f_matmul, (sg_tensor *[]){a3, b3}, 2, &(args){0});
    ggc("matmul", f_matmul, (sg_tensor *[]){a3, s}, 2, &(args){0});
    sg_tensor *c1 = RAND(-1, 1, 2), *c2 = RAND(-1, 1, 2, 1);
    ggc("addmm", g_sq_addmm, (sg_tensor *[]){c1, a3, s}, 3, &(args){0});
    ggc("addmm", g_sq_addmm, (sg_tensor *[]){c2, RAND(-1, 1, 2, 3), b3}, 3, &(args){0});
    sg_tensor *l = RAND(-1, 1, 2, 3); /* shared left operand, and a batch^T times shared */
    ggc("matmul", f_matmul, (sg_tensor *[]){l, b3}, 2, &(args){0});
    ggc("matmul", f_matmul, (sg_tensor *[]){l, a3}, 2, &(args){.tb = true});
    ggc("matmul", f_matmul, (sg_tensor *[]){b3, s}, 2, &(args){.ta = true});
    sg_tensor *x = RAND(-1, 1, 1, 2, 4, 4);
    ggc("unfold", g_sq_unfold, &x, 1, &(args){.w = {.kh = 3, .kw = 3, .sh = 2, .sw = 2, .ph = 1, .pw = 1}});
    sg_tensor *cols = RAND(-1, 1, 4, 4);
    ggc("fold", g_sq_fold, &cols, 1,
        &(args){.w = {.kh = 2, .kw = 2, .sh = 1, .sw = 1}, .n = 1, .c = 1, .h = 3, .wd = 3});
}
END_TEST

/* the math and indexing primitives, and a user-defined one, second order;
 * broadcasting where the op broadcasts */
FN(g_abs_x) { UNUSED_ARGS; return sg_mul(sg_abs(in[0]), in[0]); }           /* x|x|: second derivative 2 sign(x) */
FN(g_sq_minimum) { UNUSED_ARGS; sg_tensor *m = sg_minimum(in[0], in[1]); return sg_mul(m, m); }
FN(g_sq_maximum) { UNUSED_ARGS; sg_tensor *m = sg_maximum(in[0], in[1]); return sg_mul(m, m); }
FN(g_sq_where) { sg_tensor *w = f_where(in, n, ctx); return sg_mul(w, w); }
FN(g_sq_clamp) { sg_tensor *c = f_clamp(in, n, ctx); return sg_mul(c, c); }
FN(g_sq_gather) { sg_tensor *g = f_gather(in, n, ctx); return sg_mul(g, g); }
FN(g_sq_scatter_add) { sg_tensor *s = f_scatter_add(in, n, ctx); return sg_mul(s, s); }

START_TEST(test_gradgrad_math_index)
{
    sg_tensor *x = RAND(-2, 2, 2, 3);
    ggc("sin", f_sin, &x, 1, NULL);
    ggc("cos", f_cos, &x, 1, NULL);
    ggc("tanh", f_tanh, &x, 1, NULL);
    sg_tensor *ax = sg_param(sg_from_data((float[]){-1.5f, -0.2f, 0.3f, 0.7f, -0.05f, 2.f}, SG_DIMS(2, 3)));
    ggc("abs", g_abs_x, &ax, 1, NULL);
    sg_tensor *a = mm_a(), *b = mm_b();
    ggc("minimum", g_sq_minimum, (sg_tensor *[]){a, b}, 2, NULL);
    ggc("maximum", g_sq_maximum, (sg_tensor *[]){b, a}, 2, NULL);
    sg_tensor *c = sg_from_data((float[]){1, 0, 1, 0, 0, 1}, SG_DIMS(2, 3));
    ggc("where", g_sq_where, (sg_tensor *[]){RAND(-1, 1, 2, 3), RAND(-1, 1, 3)}, 2, &(args){.index = c});
    sg_tensor *cx = sg_param(sg_from_data((float[]){-0.9f, -0.3f, 0.2f, 0.7f, 0.45f, -0.6f}, SG_DIMS(2, 3)));
    ggc("clamp", g_sq_clamp, &cx, 1, &(args){.lo = -0.5, .hi = 0.5});
    sg_tensor *i1 = sg_from_data((float[]){3, 0, 1, 1, 1, 2}, SG_DIMS(2, 3));
    ggc("gather", g_sq_gather, (sg_tensor *[]){RAND(-1, 1, 2, 4)}, 1, &(args){.axis = 1, .index = i1});
    sg_tensor *idx = sg_from_data((float[]){0, 2, 2, 1, 0, 2, 1, 1}, SG_DIMS(2, 4));
    ggc("scatter_add", g_sq_scatter_add, (sg_tensor *[]){RAND(-1, 1, 3, 4), RAND(-1, 1, 2, 4)}, 2,
        &(args){.axis = 0, .index = idx});
    ggc("softplus", f_softplus, &x, 1, NULL);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Composite functions */

FN(f_sigmoid) { UNUSED_ARGS; return sg_rdiv_scalar(1.f, sg_add_scalar(sg_exp(sg_neg(in[0])), 1.f)); }

START_TEST(test_sigmoid)
{
    sg_tensor *x = RAND(-3, 3, 2, 4);
    gc("exp", f_sigmoid, &x, 1, NULL);
    ggc("pow", f_sigmoid, &x, 1, NULL);
    /* value and gradient against the closed forms y and y(1 - y) */
    sg_tensor *y = f_sigmoid(&x, 1, NULL);
    ck_assert_int_eq(sg_backward(sg_sum_all(y), NULL), 0);
    for (int i = 0; i < 8; i++) {
        double v = sg_data(x)[i], s = 1.0 / (1.0 + exp(-v));
        ck_assert_double_eq_tol(sg_data(y)[i], s, 1e-6);
        ck_assert_double_eq_tol(sg_grad_data(x)[i], s * (1.0 - s), 1e-6);
    }
}
END_TEST

/* softmax over rows, then mean cross-entropy against one-hot targets */
static sg_tensor *softmax_rows(sg_tensor *x)
{
    int ax = 1;
    sg_tensor *z = sg_sub(x, sg_max(x, &ax, 1, true));
    sg_tensor *e = sg_exp(z);
    return sg_div(e, sg_sum(e, &ax, 1, true));
}

FN(f_softmax_ce)
{
    (void)n;
    sg_tensor *t = ctx;
    sg_tensor *y = softmax_rows(in[0]);
    sg_tensor *ll = sg_mul(t, sg_log(sg_add_scalar(y, 1e-7f)));
    return sg_mul_scalar(sg_sum_all(ll), -1.f / (float)sg_dim(in[0], 0));
}

START_TEST(test_softmax_cross_entropy)
{
    sg_tensor *x = DISTINCT(3, 4);
    sg_tensor *t = sg_from_data((float[]){0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1}, SG_DIMS(3, 4));
    gc("max", f_softmax_ce, &x, 1, t);
    ggc("log", f_softmax_ce, &x, 1, t);
    /* the value and the gradient (y - t) / N, in double */
    sg_tensor *loss = f_softmax_ce(&x, 1, t);
    ck_assert_int_eq(sg_backward(loss, NULL), 0);
    double want = 0.0;
    for (int r = 0; r < 3; r++) {
        const float *row = sg_data(x) + 4 * r;
        double m = row[0], s = 0.0;
        for (int k = 1; k < 4; k++)
            m = row[k] > m ? row[k] : m;
        for (int k = 0; k < 4; k++)
            s += exp(row[k] - m);
        for (int k = 0; k < 4; k++) {
            double p = exp(row[k] - m) / s, tk = sg_data(t)[4 * r + k];
            want -= tk * log(p) / 3.0;
            ck_assert_double_eq_tol(sg_grad_data(x)[4 * r + k], (p - tk) / 3.0, 1e-5);
        }
    }
    ck_assert_double_eq_tol(sg_item(loss), want, 1e-5);
}
END_TEST

/* A 2-layer MLP: loss = sum((relu(x W1 + b1) W2 + b2 - t)^2). */
typedef struct mlp_data {
    sg_tensor *x, *t;
} mlp_data;

FN(f_mlp)
{
    (void)n;
    mlp_data *d = ctx;
    sg_tensor *h = sg_relu(sg_add(sg_matmul(d->x, in[0]), in[1]));
    sg_tensor *y = sg_add(sg_matmul(h, in[2]), in[3]);
    return sg_sum_all(sg_pow(sg_sub(y, d->t), 2.f));
}

START_TEST(test_mlp_loss_all_params)
{
    mlp_data d = {sg_uniform(&rng, -1, 1, SG_DIMS(4, 3)), sg_uniform(&rng, -1, 1, SG_DIMS(4, 2))};
    sg_tensor *p[4] = {RAND(-1, 1, 3, 5), RAND(-0.5, 0.5, 5), RAND(-1, 1, 5, 2), RAND(-0.5, 0.5, 2)};
    /* keep every hidden pre-activation away from relu's kink */
    sg_set_grad_enabled(false);
    sg_tensor *pre = sg_add(sg_matmul(d.x, p[0]), p[1]);
    sg_set_grad_enabled(true);
    for (size_t i = 0; i < sg_size(pre); i++)
        ck_assert_msg(fabsf(sg_data(pre)[i]) > 0.01f, "pre-activation %zu = %g is too close to 0", i,
                      (double)sg_data(pre)[i]);
    assert_graph_has("matmul", f_mlp, p, 4, &d);
    gc("relu", f_mlp, p, 4, &d);
    /* and every parameter really got a nonzero gradient */
    ck_assert_int_eq(sg_backward(f_mlp(p, 4, &d), NULL), 0);
    for (int k = 0; k < 4; k++) {
        double norm = 0;
        for (size_t i = 0; i < sg_size(p[k]); i++)
            norm += fabs(sg_grad_data(p[k])[i]);
        ck_assert_msg(norm > 1e-3, "parameter %d has a zero gradient", k);
    }
}
END_TEST

/* ------------------------------------------------------------------------- */
/* micrograd's expressions (values from PyTorch) */

FN(f_micrograd_a)
{
    UNUSED_ARGS;
    sg_tensor *x = in[0];
    sg_tensor *z = sg_add(sg_add_scalar(sg_mul_scalar(x, 2.f), 2.f), x);
    sg_tensor *q = sg_add(sg_relu(z), sg_mul(z, x));
    sg_tensor *h = sg_relu(sg_mul(z, z));
    return sg_add(sg_add(h, q), sg_mul(q, x));
}

FN(f_micrograd_b)
{
    UNUSED_ARGS;
    sg_tensor *a = in[0], *b = in[1];
    sg_tensor *c = sg_add(a, b);
    sg_tensor *d = sg_add(sg_mul(a, b), sg_pow(b, 3.f));
    c = sg_add(c, sg_add_scalar(c, 1.f));                          /* c += c + 1 */
    c = sg_add(c, sg_add(sg_add_scalar(c, 1.f), sg_neg(a)));       /* c += 1 + c + (-a) */
    d = sg_add(d, sg_add(sg_mul_scalar(d, 2.f), sg_relu(sg_add(b, a)))); /* d += d*2 + relu(b+a) */
    d = sg_add(d, sg_add(sg_mul_scalar(d, 3.f), sg_relu(sg_sub(b, a)))); /* d += 3*d + relu(b-a) */
    sg_tensor *e = sg_sub(c, d);
    sg_tensor *f = sg_pow(e, 2.f);
    sg_tensor *g = sg_div(f, sg_scalar(2.f));
    return sg_add(g, sg_rdiv_scalar(10.f, f));                     /* g += 10.0 / f */
}

static void assert_rel(double got, double want, double rtol, const char *what)
{
    ck_assert_msg(fabs(got - want) <= rtol * fabs(want), "%s = %.9g, expected %.9g (rtol %g)", what, got,
                  want, rtol);
}

START_TEST(test_micrograd_sanity)
{
    sg_tensor *x = sg_param(sg_scalar(-4.f));
    sg_tensor *y = f_micrograd_a(&x, 1, NULL);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(sg_backward(y, NULL), 0);
    assert_rel(sg_item(y), -20.0, 1e-4, "y");
    assert_rel(sg_grad_data(x)[0], 46.0, 1e-4, "dy/dx");
    gc("relu", f_micrograd_a, &x, 1, NULL);
}
END_TEST

START_TEST(test_micrograd_more_ops)
{
    sg_tensor *a = sg_param(sg_scalar(-4.f)), *b = sg_param(sg_scalar(2.f));
    sg_tensor *in[2] = {a, b};
    sg_tensor *g = f_micrograd_b(in, 2, NULL);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(sg_backward(g, NULL), 0);
    assert_rel(sg_item(g), 24.70408163265306, 1e-4, "g");
    assert_rel(sg_grad_data(a)[0], 138.83381924198252, 1e-4, "dg/da");
    assert_rel(sg_grad_data(b)[0], 645.5772594752186, 1e-4, "dg/db");
    /* gradients of size ~600 from float32 differences: a relative tolerance */
    gc_opts("div", f_micrograd_b, in, 2, NULL, &(sg_gradcheck_opts){.eps = 1e-3, .atol = 1e-2, .rtol = 1e-2});
}
END_TEST

/* ------------------------------------------------------------------------- */
/* A wrong gradient must be caught, and the report must say where. */

FN(f_detached_square)
{
    UNUSED_ARGS;
    /* x * detach(x): backward sees d/dx = x, the true derivative is 2x */
    return sg_sum_all(sg_mul(in[0], sg_detach(in[0])));
}

FN(f_wrong_second)
{
    UNUSED_ARGS;
    sg_tensor *a = in[0], *b = in[1];
    /* sum(a*b) + sum(b * detach(b)): d/db is a + b, backward says a + b - b */
    return sg_add(sg_sum_all(sg_mul(a, b)), sg_sum_all(sg_mul(b, sg_detach(b))));
}

START_TEST(test_wrong_gradient_detected)
{
    sg_tensor *x = sg_param(sg_from_data((float[]){0.5f, -1.f, 2.f}, SG_DIMS(3)));
    sg_gradcheck_report rep;
    ck_assert(!sg_gradcheck(f_detached_square, &x, 1, NULL, NULL, &rep));
    ck_assert(!rep.ok);
    ck_assert_int_eq(rep.input, 0);
    ck_assert_int_eq((int)rep.index, 2); /* largest |x|: largest error */
    ck_assert_double_eq_tol(rep.analytic, 2.0, 1e-5); /* x */
    ck_assert_double_eq_tol(rep.numeric, 4.0, 1e-2);  /* 2x */
    ck_assert_msg(strstr(rep.message, "FAILED") && strstr(rep.message, "input 0 index 2"), "%s", rep.message);
    sg_clear_error();

    /* two inputs, only the second one wrong, worst at its index 2 */
    sg_tensor *a = sg_param(sg_ones(SG_DIMS(4)));
    sg_tensor *b = sg_param(sg_from_data((float[]){0.1f, 0.2f, 3.f, 0.3f}, SG_DIMS(4)));
    ck_assert(!sg_gradcheck(f_wrong_second, (sg_tensor *[]){a, b}, 2, NULL, NULL, &rep));
    ck_assert_int_eq(rep.input, 1);
    ck_assert_int_eq((int)rep.index, 2);
    ck_assert_double_eq_tol(rep.analytic, 4.0, 1e-4); /* a + b */
    ck_assert_double_eq_tol(rep.numeric, 7.0, 1e-2);  /* a + 2b */
    ck_assert_double_eq_tol(rep.max_abs_err, 3.0, 1e-2);
    ck_assert_msg(strstr(rep.message, "input 1 index 2"), "%s", rep.message);
    sg_clear_error();

    /* the same function is right w.r.t. a alone */
    sg_set_requires_grad(b, false);
    ck_assert(sg_gradcheck(f_wrong_second, (sg_tensor *[]){a, b}, 2, NULL, NULL, &rep));
}
END_TEST

/* Tolerances are honoured: a tiny error passes a loose check, fails a strict one. */
FN(f_slightly_wrong)
{
    UNUSED_ARGS;
    /* y = x * (1 + 0.01 * detach(x)): analytic 1 + 0.01x, numeric 1 + 0.02x */
    return sg_sum_all(sg_mul(in[0], sg_add_scalar(sg_mul_scalar(sg_detach(in[0]), 0.01f), 1.f)));
}

START_TEST(test_gradcheck_tolerances)
{
    sg_tensor *x = sg_param(sg_from_data((float[]){1.f, 2.f}, SG_DIMS(2)));
    sg_gradcheck_report rep;
    /* error at x = 2 is 0.02 on a numeric value of 1.04: inside 1e-3 + 0.1 * 1.04 */
    ck_assert(sg_gradcheck(f_slightly_wrong, &x, 1, NULL, &(sg_gradcheck_opts){.rtol = 0.1}, &rep));
    ck_assert_double_eq_tol(rep.max_abs_err, 0.02, 2e-3); /* at x = 2 */
    ck_assert(!sg_gradcheck(f_slightly_wrong, &x, 1, NULL, &(sg_gradcheck_opts){.rtol = 1e-3, .atol = 1e-4},
                            &rep));
    ck_assert_int_eq((int)rep.index, 1);
    sg_clear_error();
}
END_TEST

/* ------------------------------------------------------------------------- */

static Suite *gradcheck_suite(void)
{
    Suite *s = suite_create("gradcheck");

    TCase *ops = tcase_create("primitives");
    tcase_add_checked_fixture(ops, setup, teardown);
    tcase_add_test(ops, test_op_table_covered);
    tcase_add_loop_test(ops, test_op_gradcheck, 0, N_OP_CHECKS);
    tcase_add_test(ops, test_max_tie_even_split);
    suite_add_tcase(s, ops);

    TCase *second = tcase_create("second_order");
    tcase_add_checked_fixture(second, setup, teardown);
    tcase_add_test(second, test_gradgrad_elementwise);
    tcase_add_test(second, test_gradgrad_reduce_shape);
    tcase_add_test(second, test_gradgrad_matmul_unfold);
    tcase_add_test(second, test_gradgrad_math_index);
    suite_add_tcase(s, second);

    /* the same cases in float64, at PyTorch's gradcheck tolerances */
    TCase *ops64 = tcase_create("primitives_float64");
    tcase_add_checked_fixture(ops64, setup64, teardown);
    tcase_add_loop_test(ops64, test_op_gradcheck, 0, N_OP_CHECKS);
    suite_add_tcase(s, ops64);

    TCase *second64 = tcase_create("second_order_float64");
    tcase_add_checked_fixture(second64, setup64, teardown);
    tcase_add_test(second64, test_gradgrad_elementwise);
    tcase_add_test(second64, test_gradgrad_reduce_shape);
    tcase_add_test(second64, test_gradgrad_matmul_unfold);
    suite_add_tcase(s, second64);

    TCase *comp = tcase_create("composite");
    tcase_add_checked_fixture(comp, setup, teardown);
    tcase_add_test(comp, test_sigmoid);
    tcase_add_test(comp, test_softmax_cross_entropy);
    tcase_add_test(comp, test_mlp_loss_all_params);
    tcase_add_test(comp, test_micrograd_sanity);
    tcase_add_test(comp, test_micrograd_more_ops);
    suite_add_tcase(s, comp);

    TCase *api = tcase_create("report");
    tcase_add_checked_fixture(api, setup, teardown);
    tcase_add_test(api, test_wrong_gradient_detected);
    tcase_add_test(api, test_gradcheck_tolerances);
    suite_add_tcase(s, api);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gradcheck_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    sg_release_memory();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
