/*
 * test_layer_kinds.c — Check suite "layer_kinds": the kind table of
 * nn/layer_kinds.h, walked row by row.
 *
 *   - Every row has a name and a forward; names are distinct; only
 *     sequential and residual nest.
 *   - Every kind has a constructor (the `make` table below is indexed by
 *     kind: a kind added to the list without a row here fails
 *     `every_kind_is_made`), which makes a layer of that kind, labelled and
 *     auto-named after its row, that runs forward in both modes.
 *   - The named fields hold what the constructor was given (conv.stride,
 *     bn.momentum, dropout.p, leaky.slope, pool.size), and the tensor
 *     pointers are the registry's.
 *
 * A kind listed in SG_LAYER_KINDS without a forward function does not
 * build: the table names it and layer_kinds.c declares it static, so the
 * compiler reports "used but never defined" (and the link fails).
 */
#include "layer_kinds.h"
#include "sg_test.h"

#include <stdio.h>

/* No scope is open: models are built outside scopes. */
static void setup(void) { sg_clear_error(); }

static sg_tensor *halve(sg_layer *self, sg_tensor *x, bool training, void *ctx)
{
    (void)self, (void)training, (void)ctx;
    return sg_mul_scalar(x, 0.5f);
}

/* One layer of each kind (name NULL: automatic) for input (2,2,4,4). */
static sg_layer *make_linear(sg_model *m) { return sg_linear_new(m, NULL, 32, 3, SG_INIT_HE, NULL); }
static sg_layer *make_conv2d(sg_model *m) { return sg_conv2d_new(m, NULL, 2, 3, 3, 2, 1, SG_INIT_HE, NULL); }
static sg_layer *make_batchnorm(sg_model *m) { return sg_batchnorm_new_ex(m, NULL, 2, 0.25f, 1e-3f); }
static sg_layer *make_dropout(sg_model *m) { return sg_dropout_new(m, NULL, 0.5f, NULL); }
static sg_layer *make_maxpool(sg_model *m) { return sg_maxpool2d_new(m, NULL, 2, 0, 1); }
static sg_layer *make_avgpool(sg_model *m) { return sg_avgpool2d_new(m, NULL, 2, 1, 0); }
static sg_layer *make_flatten(sg_model *m) { return sg_flatten_new(m, NULL); }
static sg_layer *make_gap(sg_model *m) { return sg_global_avgpool_new(m, NULL); }
static sg_layer *make_identity(sg_model *m) { return sg_identity_new(m, NULL); }
static sg_layer *make_step(sg_model *m) { return sg_step_new(m, NULL); }
static sg_layer *make_sigmoid(sg_model *m) { return sg_sigmoid_new(m, NULL); }
static sg_layer *make_tanh(sg_model *m) { return sg_tanh_new(m, NULL); }
static sg_layer *make_relu(sg_model *m) { return sg_relu_new(m, NULL); }
static sg_layer *make_leaky_relu(sg_model *m) { return sg_leaky_relu_new(m, NULL, 0.125f); }
static sg_layer *make_softmax(sg_model *m) { return sg_softmax_new(m, NULL); }
static sg_layer *make_log_softmax(sg_model *m) { return sg_log_softmax_new(m, NULL); }
static sg_layer *make_sequential(sg_model *m)
{
    sg_layer *seq = sg_sequential_new(m, NULL);
    sg_sequential_add(seq, sg_relu_new(m, "seq_child"));
    return seq;
}
static sg_layer *make_residual(sg_model *m)
{
    return sg_residual_new(m, NULL, sg_tanh_new(m, "res_body"), NULL);
}
static sg_layer *make_custom(sg_model *m) { return sg_layer_new(m, NULL, NULL, halve, NULL); }

static sg_layer *(*const make[SG_LAYER_KIND_COUNT])(sg_model *) = {
    [SG_LAYER_LINEAR] = make_linear,         [SG_LAYER_CONV2D] = make_conv2d,
    [SG_LAYER_BATCHNORM] = make_batchnorm,   [SG_LAYER_DROPOUT] = make_dropout,
    [SG_LAYER_MAXPOOL] = make_maxpool,       [SG_LAYER_AVGPOOL] = make_avgpool,
    [SG_LAYER_FLATTEN] = make_flatten,       [SG_LAYER_GAP] = make_gap,
    [SG_LAYER_IDENTITY] = make_identity,     [SG_LAYER_STEP] = make_step,
    [SG_LAYER_SIGMOID] = make_sigmoid,       [SG_LAYER_TANH] = make_tanh,
    [SG_LAYER_RELU] = make_relu,             [SG_LAYER_LEAKY_RELU] = make_leaky_relu,
    [SG_LAYER_SOFTMAX] = make_softmax,       [SG_LAYER_LOG_SOFTMAX] = make_log_softmax,
    [SG_LAYER_SEQUENTIAL] = make_sequential, [SG_LAYER_RESIDUAL] = make_residual,
    [SG_LAYER_CUSTOM] = make_custom,
};

START_TEST(test_table_rows)
{
    for (int k = 0; k < SG_LAYER_KIND_COUNT; k++) {
        const sg_layer_kind_row *row = &sg_layer_kinds[k];
        ck_assert_msg(row->name && row->name[0], "kind %d has no name", k);
        ck_assert_msg(row->forward, "kind %s has no forward", row->name);
        ck_assert_int_eq(row->nests, k == SG_LAYER_SEQUENTIAL || k == SG_LAYER_RESIDUAL);
        for (int j = 0; j < k; j++)
            ck_assert_str_ne(row->name, sg_layer_kinds[j].name);
    }
}
END_TEST

START_TEST(test_every_kind_is_made)
{
    for (int k = 0; k < SG_LAYER_KIND_COUNT; k++) {
        const char *name = sg_layer_kinds[k].name;
        ck_assert_msg(make[k], "kind %s has no constructor in this test's table", name);
        sg_model *m = sg_model_new();
        sg_layer *l = make[k](m);
        ck_assert_msg(l, "%s: %s", name, sg_last_error());
        ck_assert_int_eq(l->kind, k);
        ck_assert_str_eq(sg_layer_kind(l), name);
        char auto_name[SG_LAYER_NAME_MAX];
        snprintf(auto_name, sizeof auto_name, "%s1", name);
        ck_assert_str_eq(sg_layer_name(l), auto_name);
        ck_assert_ptr_eq(sg_model_add(m, l), l);
        for (int training = 1; training >= 0; training--) {
            sg_model_set_training(m, training);
            sg_scope_begin();
            sg_tensor *x = sg_full(0.5f, SG_DIMS(2, 2, 4, 4));
            sg_tensor *y = sg_model_forward(m, x);
            ck_assert_msg(y, "%s (training %d): %s", name, training, sg_last_error());
            ck_assert_int_eq(l->out_ndim, sg_ndim(y));
            sg_scope_end();
        }
        sg_model_free(m);
    }
}
END_TEST

START_TEST(test_named_fields)
{
    sg_model *m = sg_model_new();
    sg_layer *conv = make_conv2d(m), *bn = make_batchnorm(m), *drop = make_dropout(m);
    sg_layer *leaky = make_leaky_relu(m), *pool = make_maxpool(m), *fc = make_linear(m);
    sg_layer *custom = make_custom(m);
    ck_assert_msg(!sg_has_error(), "%s", sg_last_error());
    ck_assert_int_eq(conv->conv.stride, 2);
    ck_assert_int_eq(conv->conv.pad, 1);
    ck_assert_ptr_eq(conv->conv.W, sg_layer_param(conv, "W"));
    ck_assert_ptr_eq(conv->conv.b, sg_layer_param(conv, "b"));
    ck_assert_float_eq(bn->bn.momentum, 0.25f);
    ck_assert_float_eq(bn->bn.eps, 1e-3f);
    ck_assert_ptr_eq(bn->bn.gamma, sg_layer_param(bn, "gamma"));
    ck_assert_ptr_eq(bn->bn.beta, sg_layer_param(bn, "beta"));
    ck_assert_ptr_eq(bn->bn.running_mean, sg_layer_param(bn, "running_mean"));
    ck_assert_ptr_eq(bn->bn.running_var, sg_layer_param(bn, "running_var"));
    ck_assert_float_eq(drop->dropout.p, 0.5f);
    ck_assert_float_eq(leaky->leaky.slope, 0.125f);
    ck_assert_int_eq(pool->pool.size, 2);
    ck_assert_int_eq(pool->pool.stride, 2); /* stride <= 0 means the window */
    ck_assert_int_eq(pool->pool.pad, 1);
    ck_assert_ptr_eq(fc->linear.W, sg_layer_param(fc, "W"));
    ck_assert_ptr_eq(fc->linear.b, sg_layer_param(fc, "b"));
    ck_assert(custom->custom.fn == halve);
    sg_model_free(m);
}
END_TEST

/* A constructor that fails after registering some tensors leaves nothing
 * behind (sg_nn_layer_abort). */
START_TEST(test_failed_constructor_rolls_back)
{
    sg_model *m = sg_model_new();
    ck_assert_ptr_nonnull(sg_model_add_param(m, "fc.b", sg_zeros(SG_DIMS(3)), true));
    ck_assert_ptr_null(sg_linear_new(m, "fc", 4, 3, SG_INIT_HE, NULL)); /* "fc.W" made, "fc.b" taken */
    ASSERT_ERROR_HAS("fc.b", "already taken");
    int n = -1;
    sg_model_params(m, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_ptr_null(sg_model_param(m, "fc.W"));
    ck_assert_ptr_null(sg_model_layer(m, "fc"));
    ck_assert_ptr_nonnull(sg_linear_new(m, "fc2", 4, 3, SG_INIT_HE, NULL));
    sg_model_free(m);
}
END_TEST

static Suite *layer_kinds_suite(void)
{
    Suite *s = suite_create("layer_kinds");
    const struct {
        const char *name;
        const TTest *t;
    } cases[] = {
        {"table_rows", test_table_rows},
        {"every_kind_is_made", test_every_kind_is_made},
        {"named_fields", test_named_fields},
        {"failed_constructor_rolls_back", test_failed_constructor_rolls_back},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, sg_test_teardown);
        tcase_add_test(tc, cases[i].t);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void) { return sg_test_run(layer_kinds_suite()); }
