/*
 * layer_kinds.c — every kind of layer, one section each: its forward and
 * its constructor; and the kind table built from the list in
 * layer_kinds.h.
 *
 * Key idea
 *   A layer kind is a row {name, forward, nests} plus the fields it keeps
 *   in struct sg_layer's union. A forward is one call to a functional layer
 *   (layers.c) or activation (activations.c) with those fields: no
 *   gradient code, the engine differentiates what it builds. A constructor
 *   checks its arguments (naming itself and the value), asks model.c for a
 *   layer (sg_nn_layer_new: name, registration in the model), sets its
 *   fields and registers its tensors (sg_nn_layer_tensor) — the registry
 *   owns them, the union keeps direct pointers for speed.
 *
 * Invariants
 *   - The table has exactly one row per sg_layer_kind_id, each with a
 *     forward: both the enum and the table are generated from
 *     SG_LAYER_KINDS, and each row names its forward function, so a kind
 *     listed without one fails to build (see tests/test_layer_kinds.c).
 *   - A constructor that fails leaves the model as it was
 *     (sg_nn_layer_abort drops the layer and every tensor it registered).
 *   - Only nesting kinds (sequential, residual) have children; residual
 *     always has two, body and shortcut (NULL: identity).
 *
 * The model's side — registry, running a layer (shape recording, error
 * prefix), summaries, counts — is in model.c.
 */
#include "layer_kinds.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One forward per row, declared from the list (a row whose function is
 * missing is "used but never defined": the build fails). */
#define SG_LAYER_KIND_FORWARD(id, name, forward, nests) \
    static sg_tensor *forward(sg_layer *l, sg_tensor *x, bool training);
SG_LAYER_KINDS(SG_LAYER_KIND_FORWARD)
#undef SG_LAYER_KIND_FORWARD

const sg_layer_kind_row sg_layer_kinds[SG_LAYER_KIND_COUNT] = {
#define SG_LAYER_KIND_ROW(id, name_, forward_, nests_) \
    [SG_LAYER_##id] = {.name = name_, .forward = forward_, .nests = nests_},
    SG_LAYER_KINDS(SG_LAYER_KIND_ROW)
#undef SG_LAYER_KIND_ROW
};

/* ------------------------------------------------------------------------- */
/* linear: y = x W + b; an input with more than 2 dims is flattened first */

static sg_tensor *linear_forward(sg_layer *l, sg_tensor *x, bool training)
{
    (void)training;
    if (sg_ndim(x) > 2)
        x = sg_flatten(x);
    return sg_linear(x, l->linear.W, l->linear.b);
}

sg_layer *sg_linear_new(sg_model *m, const char *name, int in, int out, sg_init w_init, sg_rng *rng)
{
    if (m && (in < 1 || out < 1)) {
        sg_set_error("linear_new: sizes in %d, out %d must be >= 1", in, out);
        return NULL;
    }
    if (m && !sg_nn_init_ok("linear_new", w_init))
        return NULL;
    sg_layer *l = sg_nn_layer_new(m, "linear_new", name, SG_LAYER_LINEAR);
    if (!l)
        return NULL;
    int wshape[2] = {in, out};
    l->linear.W = sg_nn_layer_tensor(l, "W", 2, wshape, w_init, rng, true);
    l->linear.b = l->linear.W ? sg_nn_layer_tensor(l, "b", 1, &out, SG_INIT_ZEROS, NULL, true) : NULL;
    return l->linear.b ? l : sg_nn_layer_abort(l);
}

/* ------------------------------------------------------------------------- */
/* conv2d: cross-correlation of (N,C,H,W) with W (FN,C,K,K), plus b (FN) */

static sg_tensor *conv2d_forward(sg_layer *l, sg_tensor *x, bool training)
{
    (void)training;
    return sg_conv2d(x, l->conv.W, l->conv.b, l->conv.stride, l->conv.pad);
}

sg_layer *sg_conv2d_new(sg_model *m, const char *name, int in_ch, int out_ch, int k, int stride, int pad,
                        sg_init w_init, sg_rng *rng)
{
    if (m && (in_ch < 1 || out_ch < 1 || k < 1 || stride < 1 || pad < 0)) {
        sg_set_error("conv2d_new: channels %d -> %d, kernel %d, stride %d, padding %d: sizes must be >= 1 "
                     "and padding >= 0",
                     in_ch, out_ch, k, stride, pad);
        return NULL;
    }
    if (m && 2 * (int64_t)pad + k > INT_MAX) {
        sg_set_error("conv2d_new: padding %d with kernel %d is too large (2*padding + kernel must be at most %d)",
                     pad, k, INT_MAX);
        return NULL;
    }
    if (m && !sg_nn_init_ok("conv2d_new", w_init))
        return NULL;
    sg_layer *l = sg_nn_layer_new(m, "conv2d_new", name, SG_LAYER_CONV2D);
    if (!l)
        return NULL;
    l->conv.stride = stride;
    l->conv.pad = pad;
    int wshape[4] = {out_ch, in_ch, k, k};
    l->conv.W = sg_nn_layer_tensor(l, "W", 4, wshape, w_init, rng, true);
    l->conv.b = l->conv.W ? sg_nn_layer_tensor(l, "b", 1, &out_ch, SG_INIT_ZEROS, NULL, true) : NULL;
    return l->conv.b ? l : sg_nn_layer_abort(l);
}

/* ------------------------------------------------------------------------- */
/* batchnorm: (x - mean) / sqrt(var + eps) * gamma + beta, batch statistics
 * in training (updating the running ones), running statistics in eval */

static sg_tensor *batchnorm_forward(sg_layer *l, sg_tensor *x, bool training)
{
    sg_batch_norm_opts o = {.training = training, .running_mean = l->bn.running_mean,
                            .running_var = l->bn.running_var, .momentum = l->bn.momentum, .eps = l->bn.eps};
    return sg_batch_norm(x, l->bn.gamma, l->bn.beta, &o);
}

static sg_layer *batchnorm_new(const char *op, sg_model *m, const char *name, int n, float momentum,
                               float eps)
{
    if (m && n < 1) {
        sg_set_error("%s: %d features: need n >= 1", op, n);
        return NULL;
    }
    if (m && !(momentum >= 0.f && momentum <= 1.f)) {
        sg_set_error("%s: momentum %g is outside [0, 1]", op, momentum);
        return NULL;
    }
    if (m && !(eps > 0.f && isfinite(eps))) {
        sg_set_error("%s: eps %g %s", op, eps, isfinite(eps) ? "must be > 0" : "is not finite");
        return NULL;
    }
    sg_layer *l = sg_nn_layer_new(m, op, name, SG_LAYER_BATCHNORM);
    if (!l)
        return NULL;
    l->bn.momentum = momentum;
    l->bn.eps = eps;
    const sg_init ones = SG_INIT_CONSTANT(1.f), zeros = SG_INIT_CONSTANT(0.f);
    if (!(l->bn.gamma = sg_nn_layer_tensor(l, "gamma", 1, &n, ones, NULL, true)) ||
        !(l->bn.beta = sg_nn_layer_tensor(l, "beta", 1, &n, zeros, NULL, true)) ||
        !(l->bn.running_mean = sg_nn_layer_tensor(l, "running_mean", 1, &n, zeros, NULL, false)) ||
        !(l->bn.running_var = sg_nn_layer_tensor(l, "running_var", 1, &n, ones, NULL, false)))
        return sg_nn_layer_abort(l);
    return l;
}

sg_layer *sg_batchnorm_new_ex(sg_model *m, const char *name, int n, float momentum, float eps)
{
    return batchnorm_new("batchnorm_new_ex", m, name, n, momentum, eps);
}

sg_layer *sg_batchnorm_new(sg_model *m, const char *name, int n)
{
    return batchnorm_new("batchnorm_new", m, name, n, 0.1f, 1e-5f);
}

/* ------------------------------------------------------------------------- */
/* dropout: x * mask / (1 - p) in training, x in eval; its own generator */

static sg_tensor *dropout_forward(sg_layer *l, sg_tensor *x, bool training)
{
    return sg_dropout(x, l->dropout.p, training, &l->dropout.rng);
}

sg_layer *sg_dropout_new(sg_model *m, const char *name, float p, sg_rng *rng)
{
    if (m && !(p >= 0.f && p < 1.f)) {
        sg_set_error("dropout_new: drop probability %g is outside [0, 1)", p);
        return NULL;
    }
    sg_layer *l = sg_nn_layer_new(m, "dropout_new", name, SG_LAYER_DROPOUT);
    if (!l)
        return NULL;
    l->dropout.p = p;
    if (!rng)
        rng = sg_default_rng();
    uint64_t seed = (uint64_t)sg_rng_u32(rng) << 32;
    seed |= sg_rng_u32(rng);
    sg_rng_seed(&l->dropout.rng, seed);
    return l;
}

sg_rng *sg_layer_rng(sg_layer *l)
{
    if (!l) {
        sg_set_error("layer_rng: layer is NULL");
        return NULL;
    }
    return l->kind == SG_LAYER_DROPOUT ? &l->dropout.rng : NULL;
}

/* ------------------------------------------------------------------------- */
/* maxpool2d, avgpool2d: size x size windows */

static sg_tensor *maxpool_forward(sg_layer *l, sg_tensor *x, bool training)
{
    (void)training;
    return sg_max_pool2d(x, l->pool.size, l->pool.stride, l->pool.pad);
}

static sg_tensor *avgpool_forward(sg_layer *l, sg_tensor *x, bool training)
{
    (void)training;
    return sg_avg_pool2d(x, l->pool.size, l->pool.stride, l->pool.pad);
}

static sg_layer *pool_new(sg_model *m, const char *op, const char *name, sg_layer_kind_id kind, int size,
                          int stride, int pad)
{
    if (stride <= 0)
        stride = size;
    if (m && (size < 1 || pad < 0 || pad > size / 2)) {
        sg_set_error("%s: window %d, padding %d: need window >= 1 and padding in [0, window/2]", op, size,
                     pad);
        return NULL;
    }
    sg_layer *l = sg_nn_layer_new(m, op, name, kind);
    if (l) {
        l->pool.size = size;
        l->pool.stride = stride;
        l->pool.pad = pad;
    }
    return l;
}

sg_layer *sg_maxpool2d_new(sg_model *m, const char *name, int k, int stride, int pad)
{
    return pool_new(m, "maxpool2d_new", name, SG_LAYER_MAXPOOL, k, stride, pad);
}

sg_layer *sg_avgpool2d_new(sg_model *m, const char *name, int k, int stride, int pad)
{
    return pool_new(m, "avgpool2d_new", name, SG_LAYER_AVGPOOL, k, stride, pad);
}

/* ------------------------------------------------------------------------- */
/* kinds without fields: reshapes and activations */

static sg_tensor *flatten_forward(sg_layer *l, sg_tensor *x, bool training)
{
    (void)l, (void)training;
    return sg_flatten(x);
}

static sg_tensor *global_avgpool_forward(sg_layer *l, sg_tensor *x, bool training)
{
    (void)l, (void)training;
    return sg_global_avg_pool2d(x);
}

static sg_tensor *identity_forward(sg_layer *l, sg_tensor *x, bool training)
{
    (void)l, (void)training;
    return sg_identity(x);
}

static sg_tensor *step_forward(sg_layer *l, sg_tensor *x, bool training)
{
    (void)l, (void)training;
    return sg_step(x);
}

static sg_tensor *sigmoid_forward(sg_layer *l, sg_tensor *x, bool training)
{
    (void)l, (void)training;
    return sg_sigmoid(x);
}

static sg_tensor *tanh_forward(sg_layer *l, sg_tensor *x, bool training)
{
    (void)l, (void)training;
    return sg_tanh(x);
}

static sg_tensor *relu_forward(sg_layer *l, sg_tensor *x, bool training)
{
    (void)l, (void)training;
    return sg_relu(x);
}

static sg_tensor *softmax_forward(sg_layer *l, sg_tensor *x, bool training)
{
    (void)l, (void)training;
    return sg_softmax(x);
}

static sg_tensor *log_softmax_forward(sg_layer *l, sg_tensor *x, bool training)
{
    (void)l, (void)training;
    return sg_log_softmax(x);
}

sg_layer *sg_flatten_new(sg_model *m, const char *name)
{
    return sg_nn_layer_new(m, "flatten_new", name, SG_LAYER_FLATTEN);
}

sg_layer *sg_global_avgpool_new(sg_model *m, const char *name)
{
    return sg_nn_layer_new(m, "global_avgpool_new", name, SG_LAYER_GAP);
}

sg_layer *sg_identity_new(sg_model *m, const char *name)
{
    return sg_nn_layer_new(m, "identity_new", name, SG_LAYER_IDENTITY);
}

sg_layer *sg_step_new(sg_model *m, const char *name)
{
    return sg_nn_layer_new(m, "step_new", name, SG_LAYER_STEP);
}

sg_layer *sg_sigmoid_new(sg_model *m, const char *name)
{
    return sg_nn_layer_new(m, "sigmoid_new", name, SG_LAYER_SIGMOID);
}

sg_layer *sg_tanh_new(sg_model *m, const char *name)
{
    return sg_nn_layer_new(m, "tanh_new", name, SG_LAYER_TANH);
}

sg_layer *sg_relu_new(sg_model *m, const char *name)
{
    return sg_nn_layer_new(m, "relu_new", name, SG_LAYER_RELU);
}

sg_layer *sg_softmax_new(sg_model *m, const char *name)
{
    return sg_nn_layer_new(m, "softmax_new", name, SG_LAYER_SOFTMAX);
}

sg_layer *sg_log_softmax_new(sg_model *m, const char *name)
{
    return sg_nn_layer_new(m, "log_softmax_new", name, SG_LAYER_LOG_SOFTMAX);
}

/* ------------------------------------------------------------------------- */
/* leaky_relu: x if x > 0 else slope * x */

static sg_tensor *leaky_relu_forward(sg_layer *l, sg_tensor *x, bool training)
{
    (void)training;
    return sg_leaky_relu(x, l->leaky.slope);
}

sg_layer *sg_leaky_relu_new(sg_model *m, const char *name, float slope)
{
    if (m && !isfinite(slope)) {
        sg_set_error("leaky_relu_new: slope %g is not finite", slope);
        return NULL;
    }
    sg_layer *l = sg_nn_layer_new(m, "leaky_relu_new", name, SG_LAYER_LEAKY_RELU);
    if (l)
        l->leaky.slope = slope;
    return l;
}

/* ------------------------------------------------------------------------- */
/* nesting kinds: sequential (children in order), residual (body + shortcut) */

static int push_child(sg_layer *parent, sg_layer *child)
{
    if (parent->n_child == parent->cap_child) {
        int cap = parent->cap_child ? parent->cap_child * 2 : 8;
        sg_layer **nc = realloc(parent->child, (size_t)cap * sizeof *nc);
        if (!nc) {
            sg_set_error("sequential_add: out of memory");
            return -1;
        }
        parent->child = nc;
        parent->cap_child = cap;
    }
    parent->child[parent->n_child++] = child;
    return 0;
}

/* True if `inner` is l or is reachable from l through children. */
static bool contains(const sg_layer *l, const sg_layer *inner)
{
    if (!l)
        return false;
    if (l == inner)
        return true;
    for (int i = 0; i < l->n_child; i++)
        if (contains(l->child[i], inner))
            return true;
    return false;
}

static sg_tensor *sequential_forward(sg_layer *l, sg_tensor *x, bool training)
{
    sg_tensor *y = x;
    for (int i = 0; y && i < l->n_child; i++)
        y = sg_nn_layer_run(l->child[i], y, training);
    return y;
}

sg_layer *sg_sequential_new(sg_model *m, const char *name)
{
    return sg_nn_layer_new(m, "sequential_new", name, SG_LAYER_SEQUENTIAL);
}

sg_layer *sg_sequential_add(sg_layer *seq, sg_layer *child)
{
    if (!seq || !child) {
        if (!sg_has_error())
            sg_set_error("sequential_add: NULL %s", seq ? "layer" : "sequence");
        return NULL;
    }
    if (seq->kind != SG_LAYER_SEQUENTIAL) {
        sg_set_error("sequential_add: \"%s\" is a %s, not a sequential", seq->name, seq->label);
        return NULL;
    }
    if (child->model != seq->model) {
        sg_set_error("sequential_add: layer \"%s\" belongs to another model", child->name);
        return NULL;
    }
    if (contains(child, seq)) {
        sg_set_error("sequential_add: adding \"%s\" to \"%s\" would make a cycle", child->name,
                     seq == sg_nn_model_root(seq->model) ? "the model" : seq->name);
        return NULL;
    }
    return push_child(seq, child) == 0 ? child : NULL;
}

/* y = body(x) + shortcut(x); child[0] is the body, child[1] the shortcut
 * (NULL: x itself). */
static sg_tensor *residual_forward(sg_layer *l, sg_tensor *x, bool training)
{
    sg_layer *body = l->child[0], *shortcut = l->child[1];
    sg_tensor *fx = sg_nn_layer_run(body, x, training);
    sg_tensor *sx = shortcut ? sg_nn_layer_run(shortcut, x, training) : x;
    sg_tensor *y = sg_residual_add(sx, fx);
    if (!y && fx && sx) { /* shape mismatch: say which block */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", sg_last_error());
        sg_clear_error();
        sg_set_error("layer \"%s\" (residual): %s", l->name, msg);
    }
    return y;
}

sg_layer *sg_residual_new(sg_model *m, const char *name, sg_layer *body, sg_layer *shortcut)
{
    if (m && (!body || body->model != m || (shortcut && shortcut->model != m))) {
        sg_set_error("residual_new: %s", !body ? "NULL body" : "body and shortcut must be layers of this model");
        return NULL;
    }
    sg_layer *l = sg_nn_layer_new(m, "residual_new", name, SG_LAYER_RESIDUAL);
    if (!l)
        return NULL;
    if (push_child(l, body) < 0 || push_child(l, shortcut) < 0)
        return sg_nn_layer_abort(l);
    return l;
}

/* ------------------------------------------------------------------------- */
/* custom: the user's function, with the user's label in summaries */

static sg_tensor *custom_forward(sg_layer *l, sg_tensor *x, bool training)
{
    return l->custom.fn(l, x, training, l->custom.ctx);
}

sg_layer *sg_layer_new(sg_model *m, const char *name, const char *kind, sg_layer_fn fn, void *ctx)
{
    if (m && !fn) {
        sg_set_error("layer_new: NULL forward function");
        return NULL;
    }
    sg_layer *l = sg_nn_layer_new(m, "layer_new", name, SG_LAYER_CUSTOM);
    if (!l)
        return NULL;
    l->custom.fn = fn;
    l->custom.ctx = ctx;
    if (kind && kind[0]) {
        snprintf(l->custom.label, sizeof l->custom.label, "%s", kind);
        l->label = l->custom.label;
    }
    return l;
}
