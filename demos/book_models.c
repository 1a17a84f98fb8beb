/*
 * book_models.c — the book's three classifiers, built from nn/ layers
 * (book_models.h says which and by whom).
 */
#include "book_models.h"

#include <stdio.h>
#include <string.h>

static void add_mlp(sg_model *m, const book_model_opts *o, sg_rng *rng)
{
    sg_model_add(m, sg_flatten_new(m, "flatten"));
    sg_model_add(m, sg_linear_new(m, "fc1", o->rows * o->cols, o->hidden, SG_INIT_HE, rng));
    if (o->batch_norm)
        sg_model_add(m, sg_batchnorm_new(m, "bn1", o->hidden));
    sg_model_add(m, sg_relu_new(m, "relu1"));
    sg_model_add(m, sg_linear_new(m, "fc2", o->hidden, o->classes, SG_INIT_HE, rng));
}

static void add_simple_conv(sg_model *m, const book_model_opts *o, sg_rng *rng)
{
    int oh = sg_window_out(o->rows, 5, 1, 0) / 2, ow = sg_window_out(o->cols, 5, 1, 0) / 2;
    sg_model_add(m, sg_conv2d_new(m, "conv1", 1, 30, 5, 1, 0, SG_INIT_HE, rng));
    sg_model_add(m, sg_relu_new(m, "relu1"));
    sg_model_add(m, sg_maxpool2d_new(m, "pool1", 2, 2, 0));
    sg_model_add(m, sg_flatten_new(m, "flatten"));
    sg_model_add(m, sg_linear_new(m, "fc1", 30 * oh * ow, 100, SG_INIT_HE, rng));
    sg_model_add(m, sg_relu_new(m, "relu2"));
    sg_model_add(m, sg_linear_new(m, "fc2", 100, o->classes, SG_INIT_HE, rng));
}

static void add_deep_conv(sg_model *m, const book_model_opts *o, sg_rng *rng)
{
    static const struct { int out, pad; } convs[6] = {{16, 1}, {16, 1}, {32, 1}, {32, 2}, {64, 1}, {64, 1}};
    int ch = 1, h = o->rows, w = o->cols;
    for (int i = 0; i < 6; i++) {
        char name[32];
        snprintf(name, sizeof name, "conv%d", i + 1);
        sg_model_add(m, sg_conv2d_new(m, name, ch, convs[i].out, 3, 1, convs[i].pad, SG_INIT_HE, rng));
        if (o->batch_norm) {
            snprintf(name, sizeof name, "bn%d", i + 1);
            sg_model_add(m, sg_batchnorm_new(m, name, convs[i].out));
        }
        snprintf(name, sizeof name, "relu%d", i + 1);
        sg_model_add(m, sg_relu_new(m, name));
        ch = convs[i].out;
        h = sg_window_out(h, 3, 1, convs[i].pad);
        w = sg_window_out(w, 3, 1, convs[i].pad);
        if (i % 2 == 1) {
            snprintf(name, sizeof name, "pool%d", i / 2 + 1);
            sg_model_add(m, sg_maxpool2d_new(m, name, 2, 2, 0));
            h /= 2;
            w /= 2;
        }
    }
    sg_model_add(m, sg_flatten_new(m, "flatten"));
    sg_model_add(m, sg_linear_new(m, "fc1", ch * h * w, 50, SG_INIT_HE, rng));
    sg_model_add(m, sg_relu_new(m, "relu7"));
    sg_model_add(m, sg_dropout_new(m, "drop1", 0.5f, rng));
    sg_model_add(m, sg_linear_new(m, "fc2", 50, o->classes, SG_INIT_HE, rng));
}

sg_model *book_model_new(const char *name, const book_model_opts *o, sg_rng *rng)
{
    void (*add)(sg_model *, const book_model_opts *, sg_rng *) =
        !name                  ? NULL
        : !strcmp(name, "mlp")  ? add_mlp
        : !strcmp(name, "cnn")  ? add_simple_conv
        : !strcmp(name, "deep") ? add_deep_conv
                                : NULL;
    if (!add) {
        sg_set_error("book_model_new: unknown model '%s' (mlp, cnn or deep)", name ? name : "(null)");
        return NULL;
    }
    sg_model *m = sg_model_new();
    if (!m)
        return NULL;
    add(m, o, rng);
    if (sg_has_error()) {
        sg_model_free(m);
        return NULL;
    }
    return m;
}
