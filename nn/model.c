/*
 * model.c — models: a registry of named tensors, the layers that use them,
 * and a sequence that runs the layers.
 *
 * Design
 *   - The registry owns every tensor. An entry (name, tensor, trainable,
 *     owning layer) sits in a uthash table keyed by name for lookup and in
 *     an array in insertion order for iteration; a parallel array of
 *     sg_named_param is what sg_model_params() hands out, so an optimizer
 *     iterates plain structs without knowing about uthash.
 *   - The model owns every layer its constructors made (an array, freed
 *     with the model), whether or not the layer is in a sequence. A layer
 *     keeps direct pointers to its tensors (W, b, ...) for speed; the
 *     registry is the owner.
 *   - The model's top-level sequence is an unnamed sequential layer; nested
 *     sequences and residual blocks are layers holding child layers.
 *   - A layer's forward is a switch on its kind calling the functional
 *     layers (layers.c); user layers call their own function.
 *
 * Invariants
 *   - Registry names are unique, each tensor appears once, and all were
 *     made with no scope open (persistent).
 *   - A constructor that fails leaves the registry and the layer list as
 *     they were (it rolls back to the counts it started from).
 *   - The layer graph of sequences is acyclic (sg_sequential_add refuses a
 *     cycle), so forward terminates.
 */
#include "nn_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static _Thread_local bool hash_oom;
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) (hash_oom = true)
#include <uthash.h>

#define LAYER_NAME_MAX 64 /* leaves room for ".running_mean" in a param name */

typedef struct entry {
    char *name;
    sg_tensor *t;
    bool trainable;
    sg_layer *owner; /* NULL for tensors added with sg_model_add_param */
    UT_hash_handle hh;
} entry;

enum lkind {
    L_LINEAR, L_CONV2D, L_BATCHNORM, L_DROPOUT, L_MAXPOOL, L_AVGPOOL, L_FLATTEN, L_GAP,
    L_IDENTITY, L_STEP, L_SIGMOID, L_TANH, L_RELU, L_LEAKY_RELU, L_SOFTMAX, L_LOG_SOFTMAX,
    L_SEQUENTIAL, L_RESIDUAL, L_CUSTOM, L_COUNT
};

static const char *const kind_names[L_COUNT] = {
    [L_LINEAR] = "linear", [L_CONV2D] = "conv2d", [L_BATCHNORM] = "batchnorm",
    [L_DROPOUT] = "dropout", [L_MAXPOOL] = "maxpool2d", [L_AVGPOOL] = "avgpool2d",
    [L_FLATTEN] = "flatten", [L_GAP] = "global_avgpool", [L_IDENTITY] = "identity",
    [L_STEP] = "step", [L_SIGMOID] = "sigmoid", [L_TANH] = "tanh", [L_RELU] = "relu",
    [L_LEAKY_RELU] = "leaky_relu", [L_SOFTMAX] = "softmax", [L_LOG_SOFTMAX] = "log_softmax",
    [L_SEQUENTIAL] = "sequential", [L_RESIDUAL] = "residual", [L_CUSTOM] = "custom",
};
_Static_assert(sizeof kind_names / sizeof kind_names[0] == L_COUNT, "one name per layer kind");

struct sg_layer {
    sg_model *model;
    enum lkind k;
    char name[LAYER_NAME_MAX];
    char kind[32];           /* label for summaries */
    const char *ctor;        /* the constructor that made it ("linear_new"), for messages */
    sg_layer **child;        /* sequential: children; residual: body, shortcut (may be NULL) */
    int n_child, cap_child;
    int out_ndim;            /* summary: shape of the last output (-1 = not run) */
    int out_shape[SG_MAX_DIMS];
    union {                  /* the kind's own fields; tensors are the registry's */
        struct { sg_tensor *W, *b; } linear;                 /* W (in,out), b (out) */
        struct { sg_tensor *W, *b; int stride, pad; } conv;  /* W (FN,C,K,K), b (FN) */
        struct {
            sg_tensor *gamma, *beta;                         /* (C) trainable */
            sg_tensor *running_mean, *running_var;           /* (C) buffers */
            float momentum, eps;
        } bn;
        struct { float p; sg_rng rng; } dropout;             /* drop probability, own generator */
        struct { int size, stride, pad; } pool;              /* maxpool2d, avgpool2d */
        struct { float slope; } leaky;                       /* leaky_relu */
        struct { sg_layer_fn fn; void *ctx; } custom;
    };
};

struct sg_model {
    entry *table;            /* uthash head, keyed by name */
    entry **entries;         /* insertion order */
    sg_named_param *view;    /* parallel to entries */
    int n, cap;
    sg_layer **layers;       /* every layer made, in creation order */
    int n_layers, cap_layers;
    sg_layer root;           /* the top-level sequence */
    bool training;
};

/* ------------------------------------------------------------------------- */
/* registry */

static entry *find_entry(const sg_model *m, const char *name)
{
    entry *e = NULL;
    HASH_FIND_STR(m->table, name, e);
    return e;
}

/* Register; on failure free value unless the model already owns it. */
static sg_tensor *add_entry(sg_model *m, const char *op, const char *name, sg_tensor *value,
                            bool trainable, sg_layer *owner)
{
    if (!sg_check_tensor(op, value)) /* NULL, or from a scope that has ended */
        return NULL;
    for (int i = 0; i < m->n; i++) {
        if (m->entries[i]->t == value) { /* ours already: do not free it */
            sg_set_error("%s: cannot register \"%s\": the tensor is already registered as \"%s\"", op,
                         name ? name : "(null)", m->entries[i]->name);
            return NULL;
        }
    }
    const char *why = NULL;
    if (sg_scope_depth() != 0)
        why = "parameters must be made with no scope open (build models outside sg_scope_begin/end)";
    else if (!sg_nn_name_ok(op, name))
        why = ""; /* message already recorded */
    else if (find_entry(m, name))
        why = "the name is already taken";
    if (!why && sg_has_history(value))
        why = "the tensor is the result of an op (a parameter must be a leaf)";
    if (why) {
        if (why[0])
            sg_set_error("%s: cannot register \"%s\": %s", op, name ? name : "(null)", why);
        sg_tensor_free(value);
        return NULL;
    }
    if (m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 16;
        entry **ne = realloc(m->entries, (size_t)cap * sizeof *ne);
        if (ne)
            m->entries = ne;
        sg_named_param *nv = ne ? realloc(m->view, (size_t)cap * sizeof *nv) : NULL;
        if (nv)
            m->view = nv;
        if (!ne || !nv) {
            sg_set_error("%s: out of memory registering \"%s\"", op, name);
            sg_tensor_free(value);
            return NULL;
        }
        m->cap = cap;
    }
    entry *e = calloc(1, sizeof *e);
    size_t len = strlen(name);
    char *copy = malloc(len + 1);
    if (!e || !copy) {
        free(e);
        free(copy);
        sg_set_error("%s: out of memory registering \"%s\"", op, name);
        sg_tensor_free(value);
        return NULL;
    }
    memcpy(copy, name, len + 1);
    e->name = copy;
    e->t = value;
    e->trainable = trainable;
    e->owner = owner;
    hash_oom = false;
    HASH_ADD_KEYPTR(hh, m->table, e->name, len, e);
    if (hash_oom) {
        free(copy);
        free(e);
        sg_set_error("%s: out of memory registering \"%s\"", op, name);
        sg_tensor_free(value);
        return NULL;
    }
    sg_set_requires_grad(value, trainable);
    m->entries[m->n] = e;
    m->view[m->n] = (sg_named_param){.name = e->name, .tensor = value, .trainable = trainable};
    m->n++;
    return value;
}

/* Drop (and free) entries registered after the first n. */
static void truncate_entries(sg_model *m, int n)
{
    while (m->n > n) {
        entry *e = m->entries[--m->n];
        HASH_DEL(m->table, e);
        sg_tensor_free(e->t);
        free(e->name);
        free(e);
    }
}

/* ------------------------------------------------------------------------- */
/* model */

sg_model *sg_model_new(void)
{
    if (sg_scope_depth() != 0) {
        sg_set_error("model_new: build models with no scope open (depth is %d): their parameters "
                     "must outlive every scope",
                     sg_scope_depth());
        return NULL;
    }
    sg_model *m = calloc(1, sizeof *m);
    if (!m) {
        sg_set_error("model_new: out of memory");
        return NULL;
    }
    m->training = true;
    m->root.model = m;
    m->root.k = L_SEQUENTIAL;
    snprintf(m->root.kind, sizeof m->root.kind, "sequential");
    return m;
}

static void layer_free(sg_layer *l)
{
    if (l) {
        free(l->child);
        free(l);
    }
}

void sg_model_free(sg_model *m)
{
    if (!m)
        return;
    truncate_entries(m, 0);
    HASH_CLEAR(hh, m->table);
    free(m->entries);
    free(m->view);
    for (int i = 0; i < m->n_layers; i++)
        layer_free(m->layers[i]);
    free(m->layers);
    free(m->root.child);
    free(m);
}

/* A NULL argument of a query or setter: "<op>: NULL <what>" (unless an
 * earlier message explains it); the caller then returns its documented
 * answer for NULL. */
static void null_arg(const char *op, const char *what)
{
    if (!sg_has_error())
        sg_set_error("%s: NULL %s", op, what);
}

void sg_model_set_training(sg_model *m, bool training)
{
    if (!m)
        null_arg("model_set_training", "model");
    else
        m->training = training;
}

bool sg_model_is_training(const sg_model *m)
{
    if (!m)
        null_arg("model_is_training", "model");
    return m && m->training;
}

size_t sg_model_num_params(const sg_model *m, bool include_buffers)
{
    if (!m)
        null_arg("model_num_params", "model");
    size_t total = 0;
    for (int i = 0; m && i < m->n; i++)
        if (m->entries[i]->trainable || include_buffers)
            total += sg_size(m->entries[i]->t);
    return total;
}

sg_tensor *sg_model_add_param(sg_model *m, const char *name, sg_tensor *value, bool trainable)
{
    if (!m) {
        sg_tensor_free(value);
        sg_set_error("model_add_param: NULL model");
        return NULL;
    }
    return add_entry(m, "model_add_param", name, value, trainable, NULL);
}

sg_tensor *sg_model_param(const sg_model *m, const char *name)
{
    if (!m || !name)
        null_arg("model_param", m ? "name" : "model");
    entry *e = m && name ? find_entry(m, name) : NULL;
    return e ? e->t : NULL;
}

const sg_named_param *sg_model_params(const sg_model *m, int *n)
{
    if (!m)
        null_arg("model_params", "model");
    if (n)
        *n = m ? m->n : 0;
    return m ? m->view : NULL;
}

int sg_model_trainable(const sg_model *m, sg_tensor **out, int cap)
{
    if (!m)
        null_arg("model_trainable", "model");
    int k = 0;
    for (int i = 0; m && i < m->n; i++) {
        if (!m->entries[i]->trainable)
            continue;
        if (out && k < cap)
            out[k] = m->entries[i]->t;
        k++;
    }
    return k;
}

sg_layer *sg_model_layer(const sg_model *m, const char *name)
{
    if (!m || !name)
        null_arg("model_layer", m ? "name" : "model");
    for (int i = 0; m && name && i < m->n_layers; i++)
        if (strcmp(m->layers[i]->name, name) == 0)
            return m->layers[i];
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* layers: creation */

/* A new layer owned by m, named name or "<kind><k>"; NULL with a message. */
static sg_layer *layer_new(sg_model *m, const char *op, const char *name, enum lkind k)
{
    if (!m) {
        if (!sg_has_error())
            sg_set_error("%s: NULL model", op);
        return NULL;
    }
    if (sg_scope_depth() != 0) {
        sg_set_error("%s: build models with no scope open (depth is %d)", op, sg_scope_depth());
        return NULL;
    }
    char auto_name[LAYER_NAME_MAX];
    if (!name) {
        int count = 1;
        for (int i = 0; i < m->n_layers; i++)
            count += m->layers[i]->k == k;
        do
            snprintf(auto_name, sizeof auto_name, "%s%d", kind_names[k], count++);
        while (sg_model_layer(m, auto_name));
        name = auto_name;
    }
    if (!sg_nn_name_ok(op, name))
        return NULL;
    if (strlen(name) >= LAYER_NAME_MAX) {
        sg_set_error("%s: layer name \"%s\" is longer than %d bytes", op, name, LAYER_NAME_MAX - 1);
        return NULL;
    }
    if (sg_model_layer(m, name)) {
        sg_set_error("%s: the model already has a layer named \"%s\"", op, name);
        return NULL;
    }
    if (m->n_layers == m->cap_layers) {
        int cap = m->cap_layers ? m->cap_layers * 2 : 16;
        sg_layer **nl = realloc(m->layers, (size_t)cap * sizeof *nl);
        if (!nl) {
            sg_set_error("%s: out of memory", op);
            return NULL;
        }
        m->layers = nl;
        m->cap_layers = cap;
    }
    sg_layer *l = calloc(1, sizeof *l);
    if (!l) {
        sg_set_error("%s: out of memory", op);
        return NULL;
    }
    l->model = m;
    l->k = k;
    l->ctor = op;
    l->out_ndim = -1;
    snprintf(l->name, sizeof l->name, "%s", name);
    snprintf(l->kind, sizeof l->kind, "%s", kind_names[k]);
    m->layers[m->n_layers++] = l;
    return l;
}

/* Undo a layer_new (the last layer made) and any entries after n0. */
static sg_layer *layer_abort(sg_layer *l, int n0)
{
    sg_model *m = l->model;
    truncate_entries(m, n0);
    m->n_layers--;
    layer_free(l);
    return NULL;
}

/* Make a tensor of shape, initialised, registered as "<layer>.<short>". */
static sg_tensor *layer_tensor(sg_layer *l, const char *short_name, int ndim, const int *shape,
                               sg_init init, sg_rng *rng, bool trainable)
{
    /* messages name the constructor the user called, not sg_zeros */
    const char *token = sg_api_enter(l->ctor);
    sg_tensor *t = sg_zeros(ndim, shape);
    if (t && sg_init_fill(t, init, rng) < 0) {
        sg_tensor_free(t);
        t = NULL;
    }
    sg_api_leave(token);
    return t ? sg_layer_add_param(l, short_name, t, trainable) : NULL;
}

sg_tensor *sg_layer_add_param(sg_layer *l, const char *short_name, sg_tensor *value, bool trainable)
{
    if (!l) {
        sg_tensor_free(value);
        if (!sg_has_error())
            sg_set_error("layer_add_param: NULL layer");
        return NULL;
    }
    char full[SG_NN_NAME_MAX + 8];
    snprintf(full, sizeof full, "%s.%s", l->name, short_name ? short_name : "");
    if (!short_name || !short_name[0]) {
        sg_tensor_free(value);
        sg_set_error("layer_add_param: empty parameter name for layer \"%s\"", l->name);
        return NULL;
    }
    return add_entry(l->model, "layer_add_param", full, value, trainable, l);
}

sg_tensor *sg_layer_param(const sg_layer *l, const char *short_name)
{
    if (!l || !short_name) {
        null_arg("layer_param", l ? "name" : "layer");
        return NULL;
    }
    char full[SG_NN_NAME_MAX + 8];
    snprintf(full, sizeof full, "%s.%s", l->name, short_name);
    return sg_model_param(l->model, full);
}

sg_layer *sg_linear_new(sg_model *m, const char *name, int in, int out, sg_init w_init, sg_rng *rng)
{
    if (m && (in < 1 || out < 1)) {
        sg_set_error("linear_new: sizes in %d, out %d must be >= 1", in, out);
        return NULL;
    }
    if (m && !sg_nn_init_ok("linear_new", w_init))
        return NULL;
    sg_layer *l = layer_new(m, "linear_new", name, L_LINEAR);
    if (!l)
        return NULL;
    int n0 = m->n, wshape[2] = {in, out};
    l->linear.W = layer_tensor(l, "W", 2, wshape, w_init, rng, true);
    l->linear.b = l->linear.W ? layer_tensor(l, "b", 1, &out, SG_INIT_ZEROS, NULL, true) : NULL;
    return l->linear.b ? l : layer_abort(l, n0);
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
    sg_layer *l = layer_new(m, "conv2d_new", name, L_CONV2D);
    if (!l)
        return NULL;
    l->conv.stride = stride;
    l->conv.pad = pad;
    int n0 = m->n, wshape[4] = {out_ch, in_ch, k, k};
    l->conv.W = layer_tensor(l, "W", 4, wshape, w_init, rng, true);
    l->conv.b = l->conv.W ? layer_tensor(l, "b", 1, &out_ch, SG_INIT_ZEROS, NULL, true) : NULL;
    return l->conv.b ? l : layer_abort(l, n0);
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
    sg_layer *l = layer_new(m, op, name, L_BATCHNORM);
    if (!l)
        return NULL;
    l->bn.momentum = momentum;
    l->bn.eps = eps;
    int n0 = m->n;
    if (!(l->bn.gamma = layer_tensor(l, "gamma", 1, &n, SG_INIT_CONSTANT(1.f), NULL, true)) ||
        !(l->bn.beta = layer_tensor(l, "beta", 1, &n, SG_INIT_CONSTANT(0.f), NULL, true)) ||
        !(l->bn.running_mean = layer_tensor(l, "running_mean", 1, &n, SG_INIT_CONSTANT(0.f), NULL, false)) ||
        !(l->bn.running_var = layer_tensor(l, "running_var", 1, &n, SG_INIT_CONSTANT(1.f), NULL, false)))
        return layer_abort(l, n0);
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

sg_layer *sg_dropout_new(sg_model *m, const char *name, float p, sg_rng *rng)
{
    if (m && !(p >= 0.f && p < 1.f)) {
        sg_set_error("dropout_new: drop probability %g is outside [0, 1)", p);
        return NULL;
    }
    sg_layer *l = layer_new(m, "dropout_new", name, L_DROPOUT);
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

static sg_layer *pool_new(sg_model *m, const char *op, const char *name, enum lkind k, int ksize,
                          int stride, int pad)
{
    if (stride <= 0)
        stride = ksize;
    if (m && (ksize < 1 || pad < 0 || pad > ksize / 2)) {
        sg_set_error("%s: window %d, padding %d: need window >= 1 and padding in [0, window/2]", op, ksize,
                     pad);
        return NULL;
    }
    sg_layer *l = layer_new(m, op, name, k);
    if (l) {
        l->pool.size = ksize;
        l->pool.stride = stride;
        l->pool.pad = pad;
    }
    return l;
}

sg_layer *sg_maxpool2d_new(sg_model *m, const char *name, int k, int stride, int pad)
{
    return pool_new(m, "maxpool2d_new", name, L_MAXPOOL, k, stride, pad);
}

sg_layer *sg_avgpool2d_new(sg_model *m, const char *name, int k, int stride, int pad)
{
    return pool_new(m, "avgpool2d_new", name, L_AVGPOOL, k, stride, pad);
}

sg_layer *sg_flatten_new(sg_model *m, const char *name) { return layer_new(m, "flatten_new", name, L_FLATTEN); }
sg_layer *sg_global_avgpool_new(sg_model *m, const char *name)
{
    return layer_new(m, "global_avgpool_new", name, L_GAP);
}
sg_layer *sg_identity_new(sg_model *m, const char *name) { return layer_new(m, "identity_new", name, L_IDENTITY); }
sg_layer *sg_step_new(sg_model *m, const char *name) { return layer_new(m, "step_new", name, L_STEP); }
sg_layer *sg_sigmoid_new(sg_model *m, const char *name) { return layer_new(m, "sigmoid_new", name, L_SIGMOID); }
sg_layer *sg_tanh_new(sg_model *m, const char *name) { return layer_new(m, "tanh_new", name, L_TANH); }
sg_layer *sg_relu_new(sg_model *m, const char *name) { return layer_new(m, "relu_new", name, L_RELU); }
sg_layer *sg_softmax_new(sg_model *m, const char *name) { return layer_new(m, "softmax_new", name, L_SOFTMAX); }
sg_layer *sg_log_softmax_new(sg_model *m, const char *name)
{
    return layer_new(m, "log_softmax_new", name, L_LOG_SOFTMAX);
}

sg_layer *sg_leaky_relu_new(sg_model *m, const char *name, float slope)
{
    if (m && !isfinite(slope)) {
        sg_set_error("leaky_relu_new: slope %g is not finite", slope);
        return NULL;
    }
    sg_layer *l = layer_new(m, "leaky_relu_new", name, L_LEAKY_RELU);
    if (l)
        l->leaky.slope = slope;
    return l;
}

sg_layer *sg_sequential_new(sg_model *m, const char *name)
{
    return layer_new(m, "sequential_new", name, L_SEQUENTIAL);
}

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

sg_layer *sg_sequential_add(sg_layer *seq, sg_layer *child)
{
    if (!seq || !child) {
        if (!sg_has_error())
            sg_set_error("sequential_add: NULL %s", seq ? "layer" : "sequence");
        return NULL;
    }
    if (seq->k != L_SEQUENTIAL) {
        sg_set_error("sequential_add: \"%s\" is a %s, not a sequential", seq->name, seq->kind);
        return NULL;
    }
    if (child->model != seq->model) {
        sg_set_error("sequential_add: layer \"%s\" belongs to another model", child->name);
        return NULL;
    }
    if (contains(child, seq)) {
        sg_set_error("sequential_add: adding \"%s\" to \"%s\" would make a cycle", child->name,
                     seq == &seq->model->root ? "the model" : seq->name);
        return NULL;
    }
    return push_child(seq, child) == 0 ? child : NULL;
}

sg_layer *sg_model_add(sg_model *m, sg_layer *layer)
{
    if (!m || !layer) {
        if (!sg_has_error())
            sg_set_error("model_add: NULL %s", m ? "layer" : "model");
        return NULL;
    }
    return sg_sequential_add(&m->root, layer);
}

sg_layer *sg_residual_new(sg_model *m, const char *name, sg_layer *body, sg_layer *shortcut)
{
    if (m && (!body || body->model != m || (shortcut && shortcut->model != m))) {
        sg_set_error("residual_new: %s", !body ? "NULL body" : "body and shortcut must be layers of this model");
        return NULL;
    }
    sg_layer *l = layer_new(m, "residual_new", name, L_RESIDUAL);
    if (!l)
        return NULL;
    if (push_child(l, body) < 0 || push_child(l, shortcut) < 0)
        return layer_abort(l, m->n);
    return l;
}

sg_layer *sg_layer_new(sg_model *m, const char *name, const char *kind, sg_layer_fn fn, void *ctx)
{
    if (m && !fn) {
        sg_set_error("layer_new: NULL forward function");
        return NULL;
    }
    sg_layer *l = layer_new(m, "layer_new", name, L_CUSTOM);
    if (!l)
        return NULL;
    l->custom.fn = fn;
    l->custom.ctx = ctx;
    if (kind && kind[0])
        snprintf(l->kind, sizeof l->kind, "%s", kind);
    return l;
}

const char *sg_layer_name(const sg_layer *l)
{
    if (!l)
        null_arg("layer_name", "layer");
    return l ? l->name : "";
}

const char *sg_layer_kind(const sg_layer *l)
{
    if (!l)
        null_arg("layer_kind", "layer");
    return l ? l->kind : "";
}

size_t sg_layer_num_params(const sg_layer *l)
{
    if (!l) {
        null_arg("layer_num_params", "layer");
        return 0;
    }
    size_t total = 0;
    const sg_model *m = l->model;
    for (int i = 0; i < m->n; i++)
        if (m->entries[i]->owner == l && m->entries[i]->trainable)
            total += sg_size(m->entries[i]->t);
    for (int i = 0; i < l->n_child; i++)
        if (l->child[i]) /* a residual block's shortcut may be absent */
            total += sg_layer_num_params(l->child[i]);
    return total;
}

/* ------------------------------------------------------------------------- */
/* forward */

static sg_tensor *forward(sg_layer *l, sg_tensor *x, bool training);

/* A leaf layer's own computation. */
static sg_tensor *leaf_forward(sg_layer *l, sg_tensor *x, bool training)
{
    switch (l->k) {
    case L_LINEAR:
        if (sg_ndim(x) > 2)
            x = sg_flatten(x);
        return sg_linear(x, l->linear.W, l->linear.b);
    case L_CONV2D: return sg_conv2d(x, l->conv.W, l->conv.b, l->conv.stride, l->conv.pad);
    case L_BATCHNORM:
        return sg_batch_norm(x, l->bn.gamma, l->bn.beta, l->bn.running_mean, l->bn.running_var, training,
                             l->bn.momentum, l->bn.eps);
    case L_DROPOUT: return sg_dropout(x, l->dropout.p, training, &l->dropout.rng);
    case L_MAXPOOL: return sg_max_pool2d(x, l->pool.size, l->pool.stride, l->pool.pad);
    case L_AVGPOOL: return sg_avg_pool2d(x, l->pool.size, l->pool.stride, l->pool.pad);
    case L_FLATTEN: return sg_flatten(x);
    case L_GAP: return sg_global_avg_pool2d(x);
    case L_IDENTITY: return sg_identity(x);
    case L_STEP: return sg_step(x);
    case L_SIGMOID: return sg_sigmoid(x);
    case L_TANH: return sg_tanh(x);
    case L_RELU: return sg_relu(x);
    case L_LEAKY_RELU: return sg_leaky_relu(x, l->leaky.slope);
    case L_SOFTMAX: return sg_softmax(x);
    case L_LOG_SOFTMAX: return sg_log_softmax(x);
    case L_CUSTOM: return l->custom.fn(l, x, training, l->custom.ctx);
    default: return NULL;
    }
}

static sg_tensor *forward(sg_layer *l, sg_tensor *x, bool training)
{
    if (!x)
        return NULL;
    sg_tensor *y;
    if (l->k == L_SEQUENTIAL) {
        y = x;
        for (int i = 0; y && i < l->n_child; i++)
            y = forward(l->child[i], y, training);
    } else if (l->k == L_RESIDUAL) {
        sg_tensor *fx = forward(l->child[0], x, training);
        sg_tensor *sx = l->child[1] ? forward(l->child[1], x, training) : x;
        y = sg_residual_add(sx, fx);
        if (!y && fx && sx) { /* shape mismatch: say which block */
            char msg[512];
            snprintf(msg, sizeof msg, "%s", sg_last_error());
            sg_clear_error();
            sg_set_error("layer \"%s\" (residual): %s", l->name, msg);
        }
    } else {
        bool had_error = sg_has_error();
        y = leaf_forward(l, x, training);
        if (!y && !had_error) { /* prefix the message with the layer it came from */
            char msg[512];
            snprintf(msg, sizeof msg, "%s", sg_has_error() ? sg_last_error() : "returned NULL");
            sg_clear_error();
            sg_set_error("layer \"%s\" (%s): %s", l->name, l->kind, msg);
        }
    }
    if (y) {
        l->out_ndim = sg_ndim(y);
        memcpy(l->out_shape, sg_shape(y), (size_t)l->out_ndim * sizeof(int));
    }
    return y;
}

sg_tensor *sg_layer_forward(sg_layer *l, sg_tensor *x, bool training)
{
    if (!l) {
        if (!sg_has_error())
            sg_set_error("layer_forward: NULL layer");
        return NULL;
    }
    if (!sg_check_tensor("layer_forward", x))
        return NULL;
    return forward(l, x, training);
}

sg_tensor *sg_model_forward(sg_model *m, sg_tensor *x)
{
    if (!m) {
        if (!sg_has_error())
            sg_set_error("model_forward: NULL model");
        return NULL;
    }
    if (!sg_check_tensor("model_forward", x))
        return NULL;
    return forward(&m->root, x, m->training);
}

/* ------------------------------------------------------------------------- */
/* summary */

static void fmt_count(size_t v, char *buf, size_t len)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%zu", v);
    size_t o = 0;
    for (int i = 0; i < n && o + 1 < len; i++) {
        if (i && (n - i) % 3 == 0 && o + 1 < len)
            buf[o++] = ',';
        if (o + 1 < len)
            buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

static void reset_shapes(sg_layer *l)
{
    l->out_ndim = -1;
    for (int i = 0; i < l->n_child; i++)
        if (l->child[i])
            reset_shapes(l->child[i]);
}

static void print_rows(FILE *f, const sg_layer *l, int depth)
{
    for (int i = 0; i < l->n_child; i++) {
        const sg_layer *c = l->child[i];
        if (!c)
            continue;
        char label[128], shape[96], count[32];
        snprintf(label, sizeof label, "%*s%s (%s)", 2 * depth, "", c->name, c->kind);
        if (c->out_ndim >= 0) {
            shape[0] = '(';
            size_t o = 1;
            for (int d = 0; d < c->out_ndim; d++)
                o += (size_t)snprintf(shape + o, sizeof shape - o, d ? ",%d" : "%d", c->out_shape[d]);
            snprintf(shape + o, sizeof shape - o, ")");
        } else {
            snprintf(shape, sizeof shape, "-");
        }
        fmt_count(sg_layer_num_params(c), count, sizeof count);
        fprintf(f, "%-36s %-20s %12s\n", label, shape, count);
        if (c->k == L_SEQUENTIAL || c->k == L_RESIDUAL)
            print_rows(f, c, depth + 1);
    }
}

int sg_model_summary(sg_model *m, FILE *f, int ndim, const int *input_shape)
{
    if (!m || !f) {
        sg_set_error("model_summary: NULL %s", m ? "file" : "model");
        return -1;
    }
    reset_shapes(&m->root);
    if (sg_scope_begin() < 0)
        return -1;
    bool grad = sg_set_grad_enabled(false);
    sg_tensor *x = sg_zeros(ndim, input_shape);
    sg_tensor *y = x ? forward(&m->root, x, false) : NULL;
    char in_shape[96];
    if (x)
        SG_NN_SHAPE(x, in_shape);
    sg_set_grad_enabled(grad);
    sg_scope_end();
    if (!y)
        return -1;
    char total[32], buffers[32], line[80];
    memset(line, '=', sizeof line - 1);
    line[sizeof line - 1] = '\0';
    fprintf(f, "%-36s %-20s %12s\n%.70s\n", "Layer (kind)", "Output shape", "Params", line);
    print_rows(f, &m->root, 0);
    fmt_count(sg_model_num_params(m, false), total, sizeof total);
    fmt_count(sg_model_num_params(m, true) - sg_model_num_params(m, false), buffers, sizeof buffers);
    fprintf(f, "%.70s\nInput shape: %s\nTrainable params: %s\nBuffer values: %s\n", line, in_shape, total,
            buffers);
    return 0;
}

/* ------------------------------------------------------------------------- */
/* atomic file replacement (used by the savers) */

FILE *sg_nn_atomic_open(const char *op, const char *path, const char *shown, char **tmp)
{
    *tmp = NULL;
    if (!path || !path[0]) {
        sg_set_error("%s: %s path", op, path ? "empty" : "NULL");
        return NULL;
    }
    if (!shown)
        shown = path;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
    char *name = malloc(dlen + strlen(base) + sizeof ".XXXXXX" + 1);
    if (!name) {
        sg_set_error("%s: %s: out of memory", op, shown);
        return NULL;
    }
    /* "<dir>/.<base>.XXXXXX": in the target's directory (rename stays on one
     * file system), hidden, unique (mkstemp's O_EXCL never follows a link) */
    sprintf(name, "%.*s.%s.XXXXXX", (int)dlen, path, base);
    int fd = mkstemp(name);
    if (fd < 0) {
        sg_set_error("%s: %s: cannot create a file in its directory: %s", op, shown, strerror(errno));
        free(name);
        return NULL;
    }
    /* mkstemp makes the file 0600; give it the mode a plain fopen would
     * (0666 less the umask), or the mode of the file it replaces */
    struct stat st;
    mode_t mode;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        mode = st.st_mode & 07777;
    } else {
        mode_t mask = umask(022); /* reading the umask means setting it */
        umask(mask);
        mode = 0666 & ~mask;
    }
    FILE *f = fchmod(fd, mode) == 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        sg_set_error("%s: %s: cannot open a temporary file beside it: %s", op, shown, strerror(errno));
        close(fd);
        unlink(name);
        free(name);
        return NULL;
    }
    *tmp = name;
    return f;
}

int sg_nn_atomic_commit(const char *op, const char *path, const char *shown, FILE *f, char *tmp, bool ok)
{
    if (!f) {
        free(tmp);
        return -1;
    }
    if (!shown)
        shown = path;
    int err = ok ? 0 : (errno ? errno : EIO); /* errno of the failed write */
    if (ok && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        err = errno ? errno : EIO;
    if (fclose(f) != 0 && !err)
        err = errno ? errno : EIO;
    if (!err && rename(tmp, path) != 0) {
        sg_set_error("%s: %s: cannot rename the temporary file over it: %s", op, shown, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (err) {
        if (!sg_has_error())
            sg_set_error("%s: %s: write error: %s", op, shown, strerror(err));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    /* make the rename itself durable: fsync the directory (best effort) */
    const char *slash = strrchr(tmp, '/');
    if (slash)
        tmp[slash == tmp ? 1 : slash - tmp] = '\0';
    int dfd = open(slash ? tmp : ".", O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(tmp);
    return 0;
}
