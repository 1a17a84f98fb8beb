/**
 * @file
 * sg_optim.h — ScratchGrad's optimizers: SGD, Momentum, Nesterov, AdaGrad,
 * RMSProp, Adam, AdamW; L2 and decoupled weight decay; gradient clipping by
 * global norm; learning-rate schedules.
 *
 * Overview
 *   An optimizer is a set of hyperparameters plus per-parameter state (the
 *   book's `self.v = {}` dictionaries), kept in a hash table keyed by the
 *   parameter's address. It is not bound to a model: each step is given the
 *   array of parameter tensors to update, so any list of leaves works (a
 *   model's parameters, two scalars x and y, ...). A step reads each
 *   parameter's gradient (sg_grad_data) and writes its values (sg_data) in
 *   place; the optimizer is not part of the graph and records nothing.
 *   A parameter whose gradient is NULL (backward did not reach it) is
 *   skipped, as in PyTorch.
 *
 *   The update formulas are PyTorch's (torch.optim), stated with each kind
 *   below and in docs/optim.md together with the places where the book's
 *   code differs (where eps sits in Adam, the book's Nesterov).
 *
 * Worked example (one training step; params[] are persistent leaves):
 *
 *     sg_optim_opts o = sg_optim_defaults(SG_OPTIM_ADAM);
 *     o.lr = 0.01f;
 *     sg_optim *opt = sg_optim_new(&o);            // or sg_adam_new(0.01f, 0.9f, 0.999f)
 *     for (int epoch = 0; epoch < 100; epoch++) {
 *         sg_optim_set_lr(opt, sg_lr_cosine(0.01f, 0.0f, 100, epoch));
 *         sg_scope_begin();
 *         sg_optim_zero_grad(params, n);
 *         sg_tensor *loss = model_loss(params, x, t);
 *         if (!loss || sg_backward(loss, NULL) != 0 ||
 *             sg_optim_step(opt, params, n) != 0)
 *             sg_print_error(stderr);    // print the message, clear it
 *         sg_scope_end();
 *     }
 *     sg_optim_free(opt);
 *
 * Memory
 *   A parameter's state buffers are allocated (zeroed) the first time a step
 *   sees its gradient, and freed by sg_optim_free(); later steps allocate
 *   nothing. The optimizer never creates tensors. If a parameter is freed
 *   while the optimizer lives on, call sg_optim_forget() for it, so that a
 *   new tensor that happens to get the same address starts with fresh state.
 *
 * Errors
 *   Nothing here aborts or exits. A function that fails returns NULL or -1
 *   and records a message with sg_set_error() naming the function and the
 *   problem, e.g. "adam_new: beta1 = 1 is outside [0, 1)". A step that fails
 *   changes no parameter.
 */
#ifndef SG_OPTIM_H
#define SG_OPTIM_H

#include "sg_autograd.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------- */
/** @name Kinds and options
 *
 *  Notation: w a parameter, g its gradient, t = 1, 2, ... the number of
 *  updates this parameter has received (counted per parameter, as PyTorch
 *  does), η the learning rate, λ the weight decay. All state starts at 0.
 *  With weight decay, g is first replaced by g + λ·w (L2, the book's way) or
 *  w by w·(1 − η·λ) (decoupled, AdamW's way); see sg_optim_opts. */
/** The optimizers, each with its update rule (PyTorch's, see docs/optim.md). */
typedef enum sg_optim_kind {
    /** w ← w − η·g */
    SG_OPTIM_SGD,
    /** b ← g at t = 1, else b ← μ·b + (1 − dampening)·g;  w ← w − η·b.
     *  (The book's v ← μ·v − η·g; w ← w + v is the same while η is fixed:
     *  v = −η·b.) */
    SG_OPTIM_MOMENTUM,
    /** b as for MOMENTUM (dampening must be 0);  w ← w − η·(g + μ·b) */
    SG_OPTIM_NESTEROV,
    /** s ← s + g²;  w ← w − η_t·g / (√s + ε),  η_t = η / (1 + (t − 1)·lr_decay) */
    SG_OPTIM_ADAGRAD,
    /** s ← α·s + (1 − α)·g²;  w ← w − η·g / (√s + ε) */
    SG_OPTIM_RMSPROP,
    /** m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²;
     *  w ← w − (η / (1 − β1^t))·m / (√v / √(1 − β2^t) + ε)
     *  i.e. w ← w − η·m̂ / (√v̂ + ε) with the bias-corrected m̂, v̂. */
    SG_OPTIM_ADAM,
    /** Adam with decoupled weight decay: w ← w·(1 − η·λ), then the Adam
     *  update. The same as SG_OPTIM_ADAM with decoupled_weight_decay set;
     *  its defaults differ (λ = 0.01, as in torch.optim.AdamW). */
    SG_OPTIM_ADAMW,
    SG_OPTIM_COUNT /**< number of kinds (not a kind) */
} sg_optim_kind;

/** Hyperparameters. Get a filled-in set from sg_optim_defaults() and change
 *  the fields you need (zero is a legitimate value for β1, ε and λ, so
 *  "0 means default" would not work). Fields a kind does not use are
 *  ignored. */
typedef struct sg_optim_opts {
    sg_optim_kind kind; /**< which optimizer */
    float lr;           /**< η, learning rate; >= 0 and finite */
    float momentum;     /**< μ, MOMENTUM and NESTEROV; in [0, 1) (NESTEROV: > 0) */
    float dampening;    /**< MOMENTUM (NESTEROV requires 0); in [0, 1] */
    float alpha;        /**< RMSPROP smoothing of g²; in [0, 1) */
    float beta1;        /**< ADAM/ADAMW smoothing of g; in [0, 1) */
    float beta2;        /**< ADAM/ADAMW smoothing of g²; in [0, 1) */
    float eps;          /**< ε of ADAGRAD, RMSPROP, ADAM/ADAMW; >= 0 */
    float lr_decay;     /**< ADAGRAD: η_t = η / (1 + (t − 1)·lr_decay); >= 0 */
    float initial_accumulator; /**< ADAGRAD: starting value of s; >= 0 */
    float weight_decay; /**< λ >= 0; 0 turns weight decay off */
    /** false: L2 decay, the gradient becomes g + λ·w (the book's ch. 6.4.1,
     *  PyTorch's weight_decay of SGD/Adagrad/RMSprop/Adam).
     *  true: decoupled, w ← w·(1 − η·λ) before the update (AdamW; for the
     *  other kinds the same shrink). Always true for SG_OPTIM_ADAMW. */
    bool decoupled_weight_decay;
} sg_optim_opts;

/** Default hyperparameters of a kind: the book's learning rates (SGD 0.01,
 *  MOMENTUM/NESTEROV 0.01 with μ 0.9, ADAGRAD 0.01, RMSPROP 0.01 with α 0.99,
 *  ADAM/ADAMW 0.001 with β 0.9, 0.999) and PyTorch's ε (ADAGRAD 1e-10,
 *  RMSPROP and ADAM 1e-8) and λ (0; ADAMW 0.01, decoupled). An invalid kind
 *  gives the SGD defaults with that kind, which sg_optim_new() rejects. */
sg_optim_opts sg_optim_defaults(sg_optim_kind kind);

/** Name of a kind ("sgd", "momentum", "nesterov", "adagrad", "rmsprop",
 *  "adam", "adamw"), or "?" for an invalid one. The names of all kinds are
 *  sg_optim_kind_name(k) for k = 0 .. SG_OPTIM_COUNT − 1. */
const char *sg_optim_kind_name(sg_optim_kind kind);

/** The kind named `name` (exactly as sg_optim_kind_name() spells it:
 *  "adam" → SG_OPTIM_ADAM), for command lines and configuration files.
 *  Returns SG_OPTIM_COUNT (not a kind: sg_optim_new() refuses it) with a
 *  message listing the known names if name is NULL or unknown, e.g.
 *  "optim_kind_from_name: unknown optimizer 'lbfgs' (sgd momentum ...)". */
sg_optim_kind sg_optim_kind_from_name(const char *name);

/* ------------------------------------------------------------------------- */
/** @name Making and freeing */

/** Opaque optimizer: hyperparameters, step count, per-parameter state. */
typedef struct sg_optim sg_optim;

/** A new optimizer with the options in *o (copied). Returns NULL with a
 *  message if o is NULL, the kind is invalid, or a hyperparameter is out of
 *  range (see sg_optim_opts), or if memory runs out. Free with
 *  sg_optim_free(). */
sg_optim *sg_optim_new(const sg_optim_opts *o);

/** Shortcuts: sg_optim_defaults(kind) with the given values, then
 *  sg_optim_new(). Same failure as sg_optim_new(). */
sg_optim *sg_sgd_new(float lr);                           /**< SGD */
sg_optim *sg_momentum_new(float lr, float momentum);      /**< Momentum */
sg_optim *sg_nesterov_new(float lr, float momentum);      /**< Nesterov */
sg_optim *sg_adagrad_new(float lr);                       /**< AdaGrad */
sg_optim *sg_rmsprop_new(float lr, float alpha);          /**< RMSProp */
sg_optim *sg_adam_new(float lr, float beta1, float beta2); /**< Adam */
sg_optim *sg_adamw_new(float lr, float weight_decay);     /**< AdamW */

/** Free the optimizer and all its state. The parameters are not touched.
 *  NULL is fine. */
void sg_optim_free(sg_optim *opt);

/* ------------------------------------------------------------------------- */
/** @name Updating */

/** One update of every parameter in params[0..n) that has a gradient, with
 *  the formula of the optimizer's kind (see sg_optim_kind). Reads
 *  sg_grad_data(p) (the gradient itself is not modified) and writes
 *  sg_data(p). Parameters without a gradient are skipped and get no state.
 *  State for a parameter seen for the first time is allocated here; the
 *  same parameter must not appear twice in params.
 *  Returns 0, or -1 with a message (opt NULL, n < 0, params NULL while
 *  n > 0, a NULL entry, a duplicate entry, a parameter whose size differs
 *  from the state kept for its address, out of memory); on failure no
 *  parameter changes. */
int sg_optim_step(sg_optim *opt, sg_tensor *const *params, int n);

/** sg_zero_grad() on each of params[0..n). NULL entries (and params NULL)
 *  are ignored. */
void sg_optim_zero_grad(sg_tensor *const *params, int n);

/** The learning rate that the next step uses, or -1 with a message if opt
 *  is NULL. */
float sg_optim_lr(const sg_optim *opt);

/** Set the learning rate for the next steps (for schedules). State is kept.
 *  Returns 0, or -1 with a message if opt is NULL or lr is negative or not
 *  finite (the old rate is kept). */
int sg_optim_set_lr(sg_optim *opt, float lr);

/** The optimizer's options (lr reflects sg_optim_set_lr), or NULL with a
 *  message if opt is NULL. The pointer lives as long as opt. */
const sg_optim_opts *sg_optim_options(const sg_optim *opt);

/** Number of successful sg_optim_step() calls, or -1 with a message if opt
 *  is NULL. */
long sg_optim_steps(const sg_optim *opt);

/** Number of updates parameter p has received (the t of the formulas), 0 if
 *  the optimizer keeps no state for p, -1 with a message if opt or p is
 *  NULL. */
long sg_optim_param_steps(const sg_optim *opt, const sg_tensor *p);

/** Parameter p's state buffer number `buffer` (p's size floats, read-only;
 *  the book's self.v[key] / self.h[key] / self.m[key]): MOMENTUM, NESTEROV
 *  0 = velocity; ADAGRAD, RMSPROP 0 = squared-gradient sum or average;
 *  ADAM, ADAMW 0 = m, 1 = v. Decaying state below FLT_MIN is kept as 0
 *  (subnormal arithmetic is ~100x slower and cannot move a weight). NULL if
 *  the kind has no such buffer or p has no state yet, and NULL with a
 *  message if opt or p is NULL. Valid
 *  until the next step or sg_optim_forget(p). */
const float *sg_optim_state(const sg_optim *opt, const sg_tensor *p, int buffer);

/** Number of state buffers per parameter of the optimizer's kind: 0 (SGD),
 *  1 (MOMENTUM, NESTEROV, ADAGRAD, RMSPROP), 2 (ADAM, ADAMW); -1 with a
 *  message if opt is NULL. */
int sg_optim_num_buffers(const sg_optim *opt);

/** PyTorch's name of state buffer number `buffer` of the optimizer's kind
 *  (the keys of torch.optim's state dict): "momentum_buffer" (MOMENTUM,
 *  NESTEROV), "sum" (ADAGRAD), "square_avg" (RMSPROP), "exp_avg" and
 *  "exp_avg_sq" (ADAM, ADAMW). NULL if the kind has no such buffer, and
 *  NULL with a message if opt is NULL. Checkpoints name the buffers so. */
const char *sg_optim_state_name(const sg_optim *opt, int buffer);

/** Set parameter p's state, as sg_optim_param_steps() and sg_optim_state()
 *  read it back: its update count t >= 0 and its sg_optim_num_buffers()
 *  buffers, each sg_size(p) floats copied from buffers[i] (buffers may be
 *  NULL for SGD). State is made for p if it has none. This is how a
 *  checkpoint resumes training: with the same t and buffers, the next step
 *  gives bit for bit what it would have given without the interruption.
 *  Returns 0, or -1 with a message (opt or p NULL, t < 0, a NULL buffer,
 *  a size that differs from the state kept for p's address, out of memory);
 *  on failure p's state is unchanged. */
int sg_optim_set_state(sg_optim *opt, sg_tensor *p, long t, const float *const *buffers);

/** Bytes of state buffers (velocities, sums, moments) the optimizer holds:
 *  4 bytes per element per buffer; SGD holds none, MOMENTUM, NESTEROV,
 *  ADAGRAD and RMSPROP one buffer per parameter, ADAM and ADAMW two.
 *  0 with a message if opt is NULL. */
size_t sg_optim_state_bytes(const sg_optim *opt);

/** Drop the state kept for parameter p (call it before freeing a parameter
 *  that the optimizer has updated, if the optimizer lives on). Returns 1 if
 *  state was dropped, 0 if there was none, -1 with a message if opt or p
 *  is NULL. */
int sg_optim_forget(sg_optim *opt, const sg_tensor *p);

/** Drop all per-parameter state (moments restart from 0, t from 1); the
 *  options and the learning rate are kept. NULL is fine. */
void sg_optim_reset(sg_optim *opt);

/* ------------------------------------------------------------------------- */
/** @name Gradient clipping */

/** Clip by global norm (torch.nn.utils.clip_grad_norm_): with
 *  N = √(Σ over all gradients of g²) (accumulated in double) and
 *  c = max_norm / (N + 1e-6), every gradient is multiplied by c if c < 1.
 *  Parameters without a gradient (and NULL entries) are skipped.
 *  Returns N, the norm before clipping. If N is not finite, the gradients
 *  are left as they are (PyTorch would scale them by 0) and N is returned.
 *  Returns -1 with a message if n < 0, params is NULL while n > 0, or
 *  max_norm is negative, NaN or infinite. */
float sg_clip_grad_norm(sg_tensor *const *params, int n, float max_norm);

/* ------------------------------------------------------------------------- */
/** @name Learning-rate schedules
 *  Pure functions of the epoch (or step) number; feed their value to
 *  sg_optim_set_lr() before each epoch or step. */

/** Step decay (torch.optim.lr_scheduler.StepLR):
 *  lr = base_lr · gamma^floor(epoch / step_size).
 *  Returns -1 with a message if base_lr or gamma is negative, NaN or
 *  infinite, step_size <= 0, epoch < 0, or the rate overflows a float. */
float sg_lr_step_decay(float base_lr, float gamma, int step_size, int epoch);

/** Cosine annealing (SGDR without restarts, the closed form of
 *  torch.optim.lr_scheduler.CosineAnnealingLR):
 *  lr = eta_min + (base_lr − eta_min)·(1 + cos(π·t / t_max)) / 2
 *  for 0 <= t <= t_max; lr = eta_min for t > t_max (PyTorch's closed form
 *  would rise again). Returns -1 with a message if base_lr or eta_min is
 *  negative, NaN or infinite, t_max <= 0 or t < 0. */
float sg_lr_cosine(float base_lr, float eta_min, int t_max, int t);

#ifdef __cplusplus
}
#endif
#endif /* SG_OPTIM_H */
