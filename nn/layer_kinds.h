/*
 * layer_kinds.h — what a layer is (private to nn/; not installed).
 *
 * A layer is a record — the model it belongs to, its name, its kind, and
 * the kind's own fields in a union (conv.stride, bn.momentum, dropout.p) —
 * plus the row of the kind table that says what the kind does. The table
 * has one row per kind, generated from the list below, so a kind cannot be
 * half-added:
 *
 *   SG_LAYER_KINDS(X)  X(ID, "name", forward, nests)
 *
 *     ID       the enum value SG_LAYER_<ID>
 *     name     what summaries print, what sg_layer_kind() returns, and the
 *              stem of automatic names ("relu" -> relu1, relu2, ...)
 *     forward  y = forward(layer, x, training): one call to a functional
 *              layer (layers.c, activations.c) with the layer's fields; the
 *              symbol <forward> must exist in layer_kinds.c (the table
 *              names it, so a kind without one does not compile)
 *     nests    true for containers (sequential, residual): they run child
 *              layers, whose errors already name them; summaries list the
 *              children indented beneath them
 *
 * Parameters and buffers are not kind behaviour: a constructor registers
 * them in the model's registry as "<layer>.<short name>" (trainable or
 * not) and keeps direct pointers in its union member; counting, listing,
 * saving and loading go through the registry, by owner, for every kind.
 *
 * Adding a kind: a row here, a member in the union if it has fields, its
 * forward and its constructor in layer_kinds.c, the constructor's
 * declaration in sg_nn.h, and a test (see docs/contributing.md).
 */
#ifndef SG_LAYER_KINDS_H
#define SG_LAYER_KINDS_H

#include "nn_internal.h"

/*      ID           name              forward                nests */
#define SG_LAYER_KINDS(X)                                                  \
    X(LINEAR,      "linear",         linear_forward,         false)       \
    X(CONV2D,      "conv2d",         conv2d_forward,         false)       \
    X(BATCHNORM,   "batchnorm",      batchnorm_forward,      false)       \
    X(DROPOUT,     "dropout",        dropout_forward,        false)       \
    X(MAXPOOL,     "maxpool2d",      maxpool_forward,        false)       \
    X(AVGPOOL,     "avgpool2d",      avgpool_forward,        false)       \
    X(FLATTEN,     "flatten",        flatten_forward,        false)       \
    X(GAP,         "global_avgpool", global_avgpool_forward, false)       \
    X(IDENTITY,    "identity",       identity_forward,       false)       \
    X(STEP,        "step",           step_forward,           false)       \
    X(SIGMOID,     "sigmoid",        sigmoid_forward,        false)       \
    X(TANH,        "tanh",           tanh_forward,           false)       \
    X(RELU,        "relu",           relu_forward,           false)       \
    X(LEAKY_RELU,  "leaky_relu",     leaky_relu_forward,     false)       \
    X(SOFTMAX,     "softmax",        softmax_forward,        false)       \
    X(LOG_SOFTMAX, "log_softmax",    log_softmax_forward,    false)       \
    X(SEQUENTIAL,  "sequential",     sequential_forward,     true)        \
    X(RESIDUAL,    "residual",       residual_forward,       true)        \
    X(CUSTOM,      "custom",         custom_forward,         false)

typedef enum sg_layer_kind_id {
#define SG_LAYER_KIND_ENUM(id, name, forward, nests) SG_LAYER_##id,
    SG_LAYER_KINDS(SG_LAYER_KIND_ENUM)
#undef SG_LAYER_KIND_ENUM
    SG_LAYER_KIND_COUNT
} sg_layer_kind_id;

/* One row of the kind table. */
typedef struct sg_layer_kind_row {
    const char *name;
    sg_tensor *(*forward)(sg_layer *l, sg_tensor *x, bool training); /* y = f(x); NULL + message */
    bool nests;
} sg_layer_kind_row;

/* The table, indexed by sg_layer_kind_id (layer_kinds.c). */
extern const sg_layer_kind_row sg_layer_kinds[SG_LAYER_KIND_COUNT];

/* Longest layer name with its NUL: leaves room for ".running_mean" in a
 * parameter name. */
#define SG_LAYER_NAME_MAX 64

struct sg_layer {
    sg_model *model;
    sg_layer_kind_id kind;
    char name[SG_LAYER_NAME_MAX];
    const char *label;       /* the kind as summaries print it: the row's name, or custom.label */
    const char *ctor;        /* the constructor that made it ("linear_new"), for messages */
    sg_layer **child;        /* nesting kinds only: sequential's layers in order; */
    int n_child, cap_child;  /* residual's body and shortcut (NULL: identity) */
    int out_ndim;            /* summary: shape of the last output (-1 = not run) */
    int out_shape[SG_MAX_DIMS];
    union {                  /* the kind's own fields; tensors are owned by the registry */
        struct { sg_tensor *W, *b; } linear;                 /* W (in,out), b (out) */
        struct { sg_tensor *W, *b; int stride, pad; } conv;  /* W (FN,C,K,K), b (FN) */
        struct {
            sg_tensor *gamma, *beta;                         /* (C) trainable */
            sg_tensor *running_mean, *running_var;           /* (C) buffers */
            float momentum; /* running = (1 - momentum) running + momentum batch */
            float eps;      /* x_hat = (x - mean) / sqrt(var + eps) */
        } bn;
        struct { float p; sg_rng rng; } dropout;             /* drop probability, own generator */
        struct { int size, stride, pad; } pool;              /* maxpool2d, avgpool2d: size x size windows */
        struct { float slope; } leaky;                       /* leaky_relu: y = slope x for x <= 0 */
        struct { sg_layer_fn fn; void *ctx; char label[32]; } custom; /* y = fn(self, x, training, ctx) */
    };
};

/* ---- what model.c gives the kinds (the model's side of a layer) ---- */

/* A new layer of this kind owned by m, named name or "<kind><k>", with its
 * label the row's name; op names the public constructor in messages. NULL
 * with a message (NULL model, scope open, bad or taken name, out of
 * memory). */
sg_layer *sg_nn_layer_new(sg_model *m, const char *op, const char *name, sg_layer_kind_id kind);

/* Undo sg_nn_layer_new() for the layer just made, with the tensors it has
 * registered since. Returns NULL (for `return sg_nn_layer_abort(l);`). */
sg_layer *sg_nn_layer_abort(sg_layer *l);

/* A tensor of shape filled by init, registered as "<layer>.<short_name>"
 * (trainable: a parameter; otherwise a buffer). NULL with a message naming
 * the layer's constructor. */
sg_tensor *sg_nn_layer_tensor(sg_layer *l, const char *short_name, int ndim, const int *shape, sg_init init,
                              sg_rng *rng, bool trainable);

/* Run l on x (NULL x gives NULL): the row's forward, then the output shape
 * is recorded for summaries; a failing non-nesting layer's message is
 * prefixed with the layer ("layer "fc" (linear): ..."). */
sg_tensor *sg_nn_layer_run(sg_layer *l, sg_tensor *x, bool training);

/* The model's top-level sequence. */
sg_layer *sg_nn_model_root(sg_model *m);

#endif /* SG_LAYER_KINDS_H */
