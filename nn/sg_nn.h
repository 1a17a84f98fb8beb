/**
 * @file
 * sg_nn.h — ScratchGrad's neural-network layer: activations, losses, layers,
 * weight initialisation, models (named parameters, a layer sequence,
 * training/evaluation mode, summaries) and safetensors save/load.
 *
 * Key idea
 *   Every activation, loss and layer here is an ordinary function of tensors
 *   composed of the engine's primitives (sg_add, sg_matmul, sg_exp,
 *   sg_unfold, sg_max, ...). nn/ holds no backward code and never touches a
 *   gradient buffer: sg_backward() differentiates whatever these functions
 *   build, to any order. A test (tests/test_nn.c) reads nn/'s sources and
 *   fails if that ever changes.
 *
 *     affine(x)       = x @ W + b                        x (N,in), W (in,out), b (out)
 *     softmax(x)      = exp(x - max) / sum(exp(x - max))  (max detached)
 *     conv2d(x, W, b) = permute(reshape(unfold(x) @ W_flat^T + b))
 *     maxpool(x)      = max(unfold(x, pad = -inf), axis 1)
 *     batchnorm(x)    = (x - mean) / sqrt(var + eps) * gamma + beta
 *     dropout(x)      = x * mask / keep
 *
 * Worked example (the book's two-layer net on MNIST, one training step):
 *
 *     sg_rng rng; sg_rng_seed(&rng, 1);
 *     sg_model *m = sg_model_new();                      // outside any scope
 *     sg_model_add(m, sg_linear_new(m, "fc1", 784, 100, SG_INIT_HE, &rng));
 *     sg_model_add(m, sg_relu_new(m, "relu1"));
 *     sg_model_add(m, sg_linear_new(m, "fc2", 100, 10, SG_INIT_HE, &rng));
 *     if (!m || sg_has_error()) { sg_print_error(stderr); ... }
 *
 *     sg_scope_begin();                                  // one training step
 *     sg_tensor *y = sg_model_forward(m, x);             // x (N,784)
 *     sg_tensor *loss = sg_softmax_cross_entropy(y, t);  // t (N,10) or (N)
 *     if (!loss || sg_backward(loss, NULL) != 0) ...
 *     ... optimizer step over sg_model_params(m, &n) ...
 *     sg_scope_end();
 *     sg_model_save(m, "net.safetensors");
 *     sg_model_free(m);                                  // frees every parameter
 *
 * Memory
 *   Functions of tensors (activations, losses, functional layers,
 *   sg_model_forward) make temporaries: call them inside a scope; their
 *   result belongs to the current scope. Called with no scope open, every
 *   temporary is a persistent tensor that nobody frees.
 *   Models, layers and parameters are persistent: build models with no scope
 *   open (constructors check sg_scope_depth() == 0 and fail otherwise). A
 *   model owns its layers and its parameter tensors; sg_model_free() frees
 *   them all.
 *
 * Errors
 *   Nothing aborts. A function that cannot run returns NULL (or -1, or NaN
 *   for a float result) and records a message with sg_set_error() naming the
 *   function and the shapes, e.g. "linear: input (2,3) and weight (4,5) do
 *   not align". NULL tensor inputs propagate: a function given NULL returns
 *   NULL and keeps the first message. Constructors given a NULL model return
 *   NULL; sg_model_add() given a NULL layer fails, so a chain of
 *   constructor calls can be checked once with sg_has_error().
 */
#ifndef SG_NN_H
#define SG_NN_H

#include "sg_autograd.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------- */
/** @name Activations and output functions
 *  Elementwise unless stated; the result has x's shape and belongs to the
 *  current scope. NULL in, NULL out. */

/** y = x. Returns x itself (no new tensor). */
sg_tensor *sg_identity(sg_tensor *x);
/** y = (x > 0) as 0/1, the step function. No gradient flows (the result
 *  does not require a gradient). */
sg_tensor *sg_step(sg_tensor *x);
/** y = 1 / (1 + exp(-x)), composed as (m + (1-m) e) / (1 + e) with
 *  e = exp(-|x|) and m = (x > 0) a constant mask, so no exp overflows for
 *  any finite x and the gradient y(1-y) is exact everywhere. */
sg_tensor *sg_sigmoid(sg_tensor *x);
/* tanh is the engine's primitive sg_tanh(x) (sg_autograd.h): dy/dx = 1 - y^2. */
/* ReLU is the engine's primitive sg_relu(x) = max(x, 0). */
/** y = x for x > 0, slope * x otherwise; dy/dx = 1 or slope (slope at 0,
 *  as PyTorch). */
sg_tensor *sg_leaky_relu(sg_tensor *x, float slope);
/** Softmax along the last axis: exp(x - m) / sum(exp(x - m)) with m the
 *  detached maximum of each row (softmax is shift invariant, so the
 *  gradient is exact). Stable for inputs like [1010, 1000, 990] or large
 *  negative ones: no NaN or Inf in values or gradients. x has >= 1 dim. */
sg_tensor *sg_softmax(sg_tensor *x);
/** log(softmax(x)) along the last axis, computed as
 *  (x - m) - log(sum(exp(x - m))): finite wherever x is finite. */
sg_tensor *sg_log_softmax(sg_tensor *x);

/* ------------------------------------------------------------------------- */
/** @name Losses
 *  Each returns a 0-d tensor owned by the current scope, or NULL with a
 *  message naming the loss and the shapes. "Batch size" N is dim 0 of a
 *  2-D input; a 1-D input is one sample (N = 1), as in the book. */

/** The book's sum of squares: 0.5 * sum((y - t)^2). y and t same shape.
 *  Not averaged over the batch. */
sg_tensor *sg_sum_squares_loss(sg_tensor *y, sg_tensor *t);
/** Mean squared error: mean((y - t)^2) over every element (PyTorch's
 *  MSELoss). y and t same shape. */
sg_tensor *sg_mse_loss(sg_tensor *y, sg_tensor *t);
/** Cross-entropy of probabilities y (N,K) or (K):
 *  -sum(t * log(y + 1e-7)) / N (the book's cross_entropy_error).
 *  t is either one-hot (same shape as y) or class indices (N) (or a
 *  one-element tensor for a 1-D y) stored as floats; an index that is not an
 *  integer in [0, K) is an error. No gradient flows to t. */
sg_tensor *sg_cross_entropy(sg_tensor *y, sg_tensor *t);
/** Same as sg_cross_entropy() with integer labels: labels[i] in [0, K) for
 *  i < n, n = N. */
sg_tensor *sg_cross_entropy_labels(sg_tensor *y, const int *labels, int n);
/** Softmax-with-loss from logits x (N,K) or (K): -sum(t * log_softmax(x)) / N.
 *  t one-hot (or any distribution) of x's shape, or class indices (N) as
 *  floats. Stable for any finite logits (uses sg_log_softmax()). */
sg_tensor *sg_softmax_cross_entropy(sg_tensor *x, sg_tensor *t);
/** Softmax-with-loss with integer labels (n = N). */
sg_tensor *sg_softmax_cross_entropy_labels(sg_tensor *x, const int *labels, int n);
/** One-hot constant (n, k): row i has a 1 at labels[i]. labels[i] must be
 *  in [0, k). Owned by the current scope; requires no gradient. */
sg_tensor *sg_one_hot(const int *labels, int n, int k);
/** Fraction of rows whose largest y equals the target: t is one-hot (y's
 *  shape, compared by arg-max) or class indices (N), each an integer in
 *  [0, K) as the losses require. y (N,K). Ties pick the first index.
 *  Returns a value in [0, 1], or NaN with a message (NULL input, shapes, a
 *  class index out of range or not an integer). */
float sg_accuracy(sg_tensor *y, sg_tensor *t);

/* ------------------------------------------------------------------------- */
/** @name Functional layers
 *  The layers as plain functions of tensors; the model layers below call
 *  these with their parameters. */

/** Affine / linear: y = x @ W + b. x (N,in) (or (...,in)), W (in,out),
 *  b (out) or NULL. Returns (N,out). */
sg_tensor *sg_linear(sg_tensor *x, sg_tensor *W, sg_tensor *b);
/** 2-D convolution (cross-correlation, as in the book and PyTorch).
 *  x (N,C,H,W), W (FN,C,KH,KW), b (FN) or NULL, stride >= 1, pad >= 0
 *  (zeros). Returns (N,FN,OH,OW) with OH = (H + 2 pad - KH) / stride + 1.
 *  Computed as unfold(x) (N*OH*OW, C*KH*KW) @ reshape(W)^T + b, then
 *  reshape to (N,OH,OW,FN) and permute to (N,FN,OH,OW). */
sg_tensor *sg_conv2d(sg_tensor *x, sg_tensor *W, sg_tensor *b, int stride, int pad);
/** Max pooling over k x k windows: x (N,C,H,W) -> (N,C,OH,OW). stride <= 0
 *  means k; pad in [0, k/2] reads -inf outside the input (so padding never
 *  wins). Gradient goes to the maximum (shared evenly among ties). */
sg_tensor *sg_max_pool2d(sg_tensor *x, int k, int stride, int pad);
/** Average pooling over k x k windows (zero padding counted in the
 *  average, PyTorch's count_include_pad=True). stride <= 0 means k;
 *  pad in [0, k/2]. x (N,C,H,W) -> (N,C,OH,OW). */
sg_tensor *sg_avg_pool2d(sg_tensor *x, int k, int stride, int pad);
/** Global average pooling: mean over H and W, x (N,C,H,W) -> (N,C). */
sg_tensor *sg_global_avg_pool2d(sg_tensor *x);
/** Residual addition y = x + fx; shapes must be equal (no broadcasting). */
sg_tensor *sg_residual_add(sg_tensor *x, sg_tensor *fx);
/** Inverted dropout with drop probability p in [0, 1]. Training: each
 *  element is kept with probability keep = 1 - p (drawn from rng, NULL =
 *  default generator) and scaled by 1/keep: y = x * mask / keep (p = 1
 *  gives zeros). Evaluation (training false): y = x (returns x itself). */
sg_tensor *sg_dropout(sg_tensor *x, float p, bool training, sg_rng *rng);
/** Options of sg_batch_norm() (torch.nn.functional.batch_norm's). Start
 *  from sg_batch_norm_defaults() and change what differs; NULL options
 *  are the defaults. */
typedef struct sg_batch_norm_opts {
    bool training;            /**< batch statistics (true) or the running ones */
    sg_tensor *running_mean;  /**< (D) or (C), updated in training; may be NULL there */
    sg_tensor *running_var;   /**< (D) or (C), as running_mean */
    double momentum;          /**< in [0, 1]: weight of the batch in the running update */
    double eps;               /**< > 0, added to the variance */
} sg_batch_norm_opts;
/** The defaults: training with batch statistics, no running statistics,
 *  momentum 0.1, eps 1e-5 (PyTorch's). */
sg_batch_norm_opts sg_batch_norm_defaults(void);
/** Batch normalisation over features of x (N,D) or over channels of
 *  x (N,C,H,W) (statistics over N, or over N, H, W).
 *  gamma, beta: (D) or (C), learnable (may be NULL: 1 and 0).
 *  Training: normalises with the batch mean and biased variance (divide by
 *  the count, as PyTorch) and, if running_mean/running_var are not NULL,
 *  updates them in place with PyTorch's rule
 *      running = (1 - momentum) * running + momentum * batch_stat
 *  using the unbiased variance (count / (count - 1)) for running_var.
 *  A count of 1 per feature is an error in training.
 *  Evaluation: normalises with running_mean and running_var (required).
 *  y = (x - mean) / sqrt(var + eps) * gamma + beta.
 *  opts NULL = sg_batch_norm_defaults(): sg_batch_norm(x, gamma, beta, NULL)
 *  is training on the batch's statistics alone. */
sg_tensor *sg_batch_norm(sg_tensor *x, sg_tensor *gamma, sg_tensor *beta, const sg_batch_norm_opts *opts);

/* ------------------------------------------------------------------------- */
/** @name Initialisation
 *  fan_in / fan_out follow the tensor's shape: W (in,out) of a linear layer
 *  has fan_in = in, fan_out = out; W (FN,C,KH,KW) of a convolution has
 *  fan_in = C*KH*KW, fan_out = FN*KH*KW; a 1-D (n) has both = n. */
/** Which initialiser an sg_init is; the SG_INIT_* macros below make one. */
typedef enum sg_init_kind {
    SG_INIT_KIND_ZEROS,          /**< 0 */
    SG_INIT_KIND_CONSTANT,       /**< value */
    SG_INIT_KIND_NORMAL,         /**< N(0, value^2): the book's 0.01 or 1 */
    SG_INIT_KIND_UNIFORM,        /**< U(-value, value) */
    SG_INIT_KIND_XAVIER_UNIFORM, /**< Glorot: U(-a, a), a = sqrt(6 / (fan_in + fan_out)) */
    SG_INIT_KIND_XAVIER_NORMAL,  /**< Glorot: N(0, 2 / (fan_in + fan_out)) */
    SG_INIT_KIND_XAVIER_BOOK,    /**< the book's "Xavier": N(0, 1 / fan_in) */
    SG_INIT_KIND_HE_UNIFORM,     /**< He/Kaiming: U(-a, a), a = sqrt(6 / fan_in) */
    SG_INIT_KIND_HE_NORMAL,      /**< He/Kaiming: N(0, 2 / fan_in) (the book's He) */
    SG_INIT_KIND_COUNT           /**< number of kinds (not a kind) */
} sg_init_kind;

/** An initialiser: a kind and its number (constant, std or bound). */
typedef struct sg_init {
    sg_init_kind kind; /**< which initialiser */
    float value; /**< CONSTANT: the value; NORMAL: std; UNIFORM: bound; others unused */
} sg_init;

/** All zeros (biases). */
#define SG_INIT_ZEROS ((sg_init){SG_INIT_KIND_ZEROS, 0.f})
/** Every value = v. */
#define SG_INIT_CONSTANT(v) ((sg_init){SG_INIT_KIND_CONSTANT, (v)})
/** Normal(0, std^2): the book's weight_init_std (0.01, or 1). */
#define SG_INIT_NORMAL(std) ((sg_init){SG_INIT_KIND_NORMAL, (std)})
/** Uniform in [-bound, bound). */
#define SG_INIT_UNIFORM(bound) ((sg_init){SG_INIT_KIND_UNIFORM, (bound)})
/** Glorot uniform (torch.nn.init.xavier_uniform_). */
#define SG_INIT_XAVIER_UNIFORM ((sg_init){SG_INIT_KIND_XAVIER_UNIFORM, 0.f})
/** Glorot normal (torch.nn.init.xavier_normal_). */
#define SG_INIT_XAVIER_NORMAL ((sg_init){SG_INIT_KIND_XAVIER_NORMAL, 0.f})
/** Glorot normal. */
#define SG_INIT_XAVIER SG_INIT_XAVIER_NORMAL
/** The book's "Xavier" initial value: std = 1/sqrt(fan_in). */
#define SG_INIT_XAVIER_BOOK ((sg_init){SG_INIT_KIND_XAVIER_BOOK, 0.f})
/** He uniform (torch.nn.init.kaiming_uniform_ with a = 0). */
#define SG_INIT_HE_UNIFORM ((sg_init){SG_INIT_KIND_HE_UNIFORM, 0.f})
/** He normal: std = sqrt(2/fan_in) (the book's He; kaiming_normal_). */
#define SG_INIT_HE_NORMAL ((sg_init){SG_INIT_KIND_HE_NORMAL, 0.f})
/** He normal. */
#define SG_INIT_HE SG_INIT_HE_NORMAL

/** fan_in and fan_out of a weight of this shape (the convention above).
 *  A 0-d shape gives 1 and 1. */
void sg_init_fans(int ndim, const int *shape, int *fan_in, int *fan_out);
/** Overwrite t's values in place with init, drawing from rng (NULL = the
 *  default generator); the same seed gives the same values. Returns 0, or
 *  -1 with a message (NULL t, unknown kind, negative std/bound, a fan of
 *  0 for a fan-based kind). */
int sg_init_fill(sg_tensor *t, sg_init init, sg_rng *rng);
/** Name of an init kind ("he_normal", ...), "?" if out of range. */
const char *sg_init_name(sg_init_kind kind);

/* ------------------------------------------------------------------------- */
/** @name Models and layers
 *  A model holds named tensors — trainable parameters ("fc1.W", "bn1.gamma")
 *  and non-trainable buffers ("bn1.running_mean") — in a hash table keyed by
 *  name that iterates in insertion order, plus all layers it created and a
 *  top-level sequence of layers run by sg_model_forward(). Layer
 *  constructors take the model, register their parameters as
 *  "<layer name>.<param>" and return the layer (owned by the model);
 *  sg_model_add() appends a layer to the sequence. */

/** Opaque model: named parameters and buffers, its layers and the top-level
 *  sequence. Make with sg_model_new(), free with sg_model_free(). */
typedef struct sg_model sg_model;
/** Opaque layer, owned by the model that made it (a constructor below or
 *  sg_layer_new()); freed with that model. */
typedef struct sg_layer sg_layer;

/** One named tensor of a model, as listed by sg_model_params(). */
typedef struct sg_named_param {
    const char *name;  /**< "fc1.W"; owned by the model */
    sg_tensor *tensor; /**< persistent, owned by the model */
    bool trainable;    /**< true: a parameter (requires grad); false: a buffer */
} sg_named_param;

/** A new empty model in training mode. Must be called with no scope open.
 *  NULL with a message on failure. Free with sg_model_free(). */
sg_model *sg_model_new(void);
/** Free the model, all its layers and all its tensors. NULL is fine.
 *  Tensors returned by sg_model_param()/sg_model_params() die with it. */
void sg_model_free(sg_model *m);
/** Append layer (made by a constructor of this model) to the model's
 *  sequence. Returns layer, or NULL with a message (NULL model or layer,
 *  layer of another model). A NULL layer keeps the constructor's message. */
sg_layer *sg_model_add(sg_model *m, sg_layer *layer);
/** Run the sequence on x in the model's current mode. The result belongs
 *  to the current scope (call inside one). NULL with a message naming the
 *  failing layer. */
sg_tensor *sg_model_forward(sg_model *m, sg_tensor *x);
/** Switch training (true, the initial mode) or evaluation mode (false):
 *  dropout and batch normalisation behave accordingly. A NULL model
 *  records a message. */
void sg_model_set_training(sg_model *m, bool training);
/** True in training mode (false, with a message, for NULL). */
bool sg_model_is_training(const sg_model *m);
/** Number of scalar values in the model's trainable parameters, plus its
 *  buffers if include_buffers. 0, with a message, for NULL. */
size_t sg_model_num_params(const sg_model *m, bool include_buffers);
/** Print one row per layer (name, kind, output shape for this input shape,
 *  parameter count) and the totals. Runs a forward pass on zeros of the
 *  input shape in evaluation and no-grad mode inside its own scope; the
 *  model's mode is unchanged. Returns 0, or -1 with a message (e.g. the
 *  shape does not fit a layer). Use e.g. SG_DIMS(1, 1, 28, 28). */
int sg_model_summary(sg_model *m, FILE *f, int ndim, const int *input_shape);

/** Register a persistent tensor under name, taking ownership (it is freed
 *  with the model, also on failure). trainable marks it with sg_param() and
 *  lists it as a parameter; otherwise it is a buffer (requires_grad off).
 *  Fails (NULL + message) on a NULL model/tensor, a scope being open, a
 *  duplicate name or tensor, or a bad name (empty, longer than
 *  SG_NN_NAME_MAX - 1 bytes, a control character, or "__metadata__"). */
sg_tensor *sg_model_add_param(sg_model *m, const char *name, sg_tensor *value, bool trainable);
/** The tensor registered under name, or NULL (no message) if none; NULL
 *  with a message if m or name is NULL. */
sg_tensor *sg_model_param(const sg_model *m, const char *name);
/** Every named tensor in insertion order; *n receives the count (may be
 *  NULL). The array is the model's: valid until the next registration or
 *  sg_model_free(). Optimizers iterate it and update entries with
 *  trainable set. NULL model: NULL, *n = 0 and a message. */
const sg_named_param *sg_model_params(const sg_model *m, int *n);
/** Copy up to cap trainable tensors into out (may be NULL with cap 0), in
 *  insertion order; returns how many the model has (0 with a message for a
 *  NULL model). */
int sg_model_trainable(const sg_model *m, sg_tensor **out, int cap);
/** The layer made by this model under name, or NULL (no message) if none;
 *  NULL with a message if m or name is NULL. */
sg_layer *sg_model_layer(const sg_model *m, const char *name);

/** Copy up to cap of the layers made by this model into out (may be NULL
 *  with cap 0), in creation order, whether in a sequence or not; returns
 *  how many the model has (0 with a message for a NULL model). */
int sg_model_layers(const sg_model *m, sg_layer **out, int cap);

/** Longest parameter name (with its terminating NUL). */
#define SG_NN_NAME_MAX 128

/* ---- layer constructors ----
 * Each takes the model that will own the layer and a name (NULL picks
 * "<kind><k>", e.g. "relu2"). Names are unique within a model. Each must be
 * called with no scope open. Returns the layer, or NULL with a message (NULL
 * model, bad sizes, duplicate name, scope open); on failure nothing is left
 * registered. The layer is not in the sequence until sg_model_add(). */

/** Affine layer: W (in,out) from w_init, b (out) zeros. An input with more
 *  than 2 dims is flattened to (N, -1) first, as the book's Affine does. */
sg_layer *sg_linear_new(sg_model *m, const char *name, int in, int out, sg_init w_init, sg_rng *rng);
/** Convolution: W (out_ch,in_ch,k,k) from w_init, b (out_ch) zeros. */
sg_layer *sg_conv2d_new(sg_model *m, const char *name, int in_ch, int out_ch, int k, int stride,
                        int pad, sg_init w_init, sg_rng *rng);
/** Batch normalisation for (N,n) or (N,n,H,W) inputs with PyTorch's
 *  defaults momentum 0.1, eps 1e-5: gamma (n) ones, beta (n) zeros
 *  (trainable), running_mean (n) zeros, running_var (n) ones (buffers). */
sg_layer *sg_batchnorm_new(sg_model *m, const char *name, int n);
/** Same with a chosen momentum in [0, 1] and eps > 0. */
sg_layer *sg_batchnorm_new_ex(sg_model *m, const char *name, int n, float momentum, float eps);
/** Dropout with drop probability p in [0, 1); its own generator is seeded
 *  from one draw of rng (NULL = default generator). */
sg_layer *sg_dropout_new(sg_model *m, const char *name, float p, sg_rng *rng);
/** The layer's own random generator (a dropout layer's, drawn from for
 *  each mask), or NULL (no message) for a layer that has none; NULL with
 *  a message for a NULL layer. Its state may be read and written: a
 *  checkpoint saves it so that a resumed run draws the same masks. */
sg_rng *sg_layer_rng(sg_layer *layer);
/** Max pooling k x k (stride <= 0 means k, pad in [0, k/2]). */
sg_layer *sg_maxpool2d_new(sg_model *m, const char *name, int k, int stride, int pad);
/** Average pooling k x k (stride <= 0 means k, pad in [0, k/2]). */
sg_layer *sg_avgpool2d_new(sg_model *m, const char *name, int k, int stride, int pad);
/** (N, ...) -> (N, prod(...)). */
sg_layer *sg_flatten_new(sg_model *m, const char *name);
/** (N,C,H,W) -> (N,C), the mean over H and W. */
sg_layer *sg_global_avgpool_new(sg_model *m, const char *name);
sg_layer *sg_identity_new(sg_model *m, const char *name); /**< y = x */
sg_layer *sg_step_new(sg_model *m, const char *name);     /**< sg_step() */
sg_layer *sg_sigmoid_new(sg_model *m, const char *name);  /**< sg_sigmoid() */
sg_layer *sg_tanh_new(sg_model *m, const char *name);     /**< sg_tanh() */
sg_layer *sg_relu_new(sg_model *m, const char *name);     /**< sg_relu() */
sg_layer *sg_leaky_relu_new(sg_model *m, const char *name, float slope); /**< sg_leaky_relu() */
sg_layer *sg_softmax_new(sg_model *m, const char *name);  /**< sg_softmax() */
sg_layer *sg_log_softmax_new(sg_model *m, const char *name); /**< sg_log_softmax() */
/** An empty sequence (a layer that runs its children in order). */
sg_layer *sg_sequential_new(sg_model *m, const char *name);
/** Append child to seq (both of the same model; seq made by
 *  sg_sequential_new). Returns child, or NULL with a message. A layer
 *  containing itself (directly or not) is refused. */
sg_layer *sg_sequential_add(sg_layer *seq, sg_layer *child);
/** Residual block: y = body(x) + shortcut(x), shortcut NULL = identity.
 *  body (and shortcut) are layers of the same model, typically sequences;
 *  their outputs must have the same shape. */
sg_layer *sg_residual_new(sg_model *m, const char *name, sg_layer *body, sg_layer *shortcut);

/** A user layer's function: y = f(x) with the layer's parameters (see
 *  sg_layer_param()). training tells the mode. Returns NULL on error (with
 *  a message). It must build y from tensor ops only, inside the caller's
 *  scope. */
typedef sg_tensor *(*sg_layer_fn)(sg_layer *self, sg_tensor *x, bool training, void *ctx);
/** A user layer of kind `kind` (a short label for summaries, copied)
 *  computing fn(self, x, training, ctx). ctx is borrowed. */
sg_layer *sg_layer_new(sg_model *m, const char *name, const char *kind, sg_layer_fn fn, void *ctx);
/** Register value as "<layer name>.<short_name>" in the layer's model,
 *  owned by the model (see sg_model_add_param(), including ownership on
 *  failure). Returns value or NULL. */
sg_tensor *sg_layer_add_param(sg_layer *layer, const char *short_name, sg_tensor *value, bool trainable);
/** The layer's tensor "<layer name>.<short_name>", e.g. sg_layer_param(l,
 *  "W"), or NULL (with a message if layer or short_name is NULL). */
sg_tensor *sg_layer_param(const sg_layer *layer, const char *short_name);
/** Run one layer on x (result in the current scope). */
sg_tensor *sg_layer_forward(sg_layer *layer, sg_tensor *x, bool training);
const char *sg_layer_name(const sg_layer *layer); /**< "" (and a message) for NULL */
const char *sg_layer_kind(const sg_layer *layer); /**< "linear", "conv2d", ... "" (and a message) for NULL */
/** Trainable scalar count of the layer's own tensors plus, for sequences
 *  and residual blocks, of their children (0 with a message for NULL). */
size_t sg_layer_num_params(const sg_layer *layer);

/* ------------------------------------------------------------------------- */
/** @name Save and load (safetensors)
 *  File format (https://huggingface.co/docs/safetensors): an 8-byte
 *  little-endian header length N, N bytes of JSON
 *  {"name": {"dtype":"F32","shape":[...],"data_offsets":[begin,end]}, ...}
 *  padded with spaces to a multiple of 8, then the raw little-endian
 *  float32 data. We write tensors sorted by name (bytewise), contiguous,
 *  with no "__metadata__": for float32 tensors the file is byte for byte
 *  what the Python safetensors library writes. Loading accepts any order,
 *  whitespace and an "__metadata__" object of strings (ignored by the
 *  loaders; read it with sg_safetensors_metadata()). */

/** Write n named tensors to path. Names must be distinct and valid (see
 *  sg_model_add_param()). Returns 0, or -1 with a message. */
int sg_safetensors_save(const char *path, const sg_named_param *params, int n);
/** Load path into n named tensors: the file must hold exactly these names
 *  (no missing, no extra), each F32 with the tensor's shape, offsets that
 *  tile the data section, and nothing after it. Everything is validated
 *  before any value is copied, so on failure (-1 and a message naming the
 *  problem and the tensor) the tensors are unchanged. Returns 0 on success.
 *  Only a regular file is read (a directory, /dev/zero or a FIFO fails with
 *  a message saying so), and no more of it than its header promises: the
 *  header at most 100,000,000 bytes (the reference reader's limit), the
 *  data only once it is known to be the tensors' size.
 */
int sg_safetensors_load(const char *path, const sg_named_param *params, int n);
/** One "__metadata__" entry of a safetensors file: a key and its value,
 *  both UTF-8 strings (the format allows nothing else). */
typedef struct sg_safetensors_meta {
    const char *key;   /**< e.g. "epoch" */
    const char *value; /**< e.g. "5" */
} sg_safetensors_meta;

/** sg_safetensors_save() plus n_meta "__metadata__" entries (keys
 *  distinct; written sorted by key, before the tensors, as the reference
 *  writer does; control characters escaped). Checkpoints keep their
 *  bookkeeping there (epoch, step, random state; demos/checkpoint.c).
 *  Returns 0, or -1 with a message (NULL, repeated or non-UTF-8 key or
 *  value; the errors of sg_safetensors_save()). */
int sg_safetensors_save_meta(const char *path, const sg_named_param *params, int n,
                             const sg_safetensors_meta *meta, int n_meta);
/** The "__metadata__" entries of the safetensors file at path, in file
 *  order; *n_meta receives their count (0 for a file without any). The
 *  whole header is checked first, as sg_safetensors_load() does (syntax,
 *  entries, offsets tiling the data, a key given twice), but no tensor data
 *  is read. Returns one malloc'd block holding the array and its strings:
 *  release it with free(). NULL with a message (naming the file) on
 *  failure, and then *n_meta is 0. */
sg_safetensors_meta *sg_safetensors_metadata(const char *path, int *n_meta);
/** The value of key among meta[0..n_meta), or NULL (no message) if it is
 *  absent or meta or key is NULL. */
const char *sg_safetensors_meta_get(const sg_safetensors_meta *meta, int n_meta, const char *key);
/** Save every named tensor of m (parameters and buffers). 0 or -1. */
int sg_model_save(const sg_model *m, const char *path);
/** Load every named tensor of m from path (strict, all-or-nothing, as
 *  sg_safetensors_load()). 0 or -1. */
int sg_model_load(sg_model *m, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* SG_NN_H */
