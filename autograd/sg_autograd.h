/**
 * @file
 * sg_autograd.h — ScratchGrad's engine: tensors, a dynamic graph of primitive
 * ops, reverse-mode backward, gradient checking, tracing.
 *
 * Overview
 *   A tensor is float32 (the default) or float64, row-major and contiguous,
 *   with up to SG_MAX_DIMS dims.
 *   Every op computes its result at once (define-by-run). When gradient
 *   recording is on and an input requires a gradient, the result remembers its
 *   op, its inputs and the attributes the op needs: that is the graph.
 *   sg_backward(y) orders the graph topologically (iteratively, so deep graphs
 *   do not overflow the C stack) and replays each node's local derivative in
 *   reverse. Each local derivative is written with the same public ops, so with
 *   create_graph the backward pass is itself recorded and gradients of
 *   gradients work.
 *
 * Worked example (the book's apple: price = apple * num * tax):
 *
 *     sg_scope_begin();
 *     sg_tensor *apple = sg_param(sg_scalar(100.f));   // requires grad
 *     sg_tensor *num   = sg_param(sg_scalar(2.f));
 *     sg_tensor *tax   = sg_param(sg_scalar(1.1f));
 *     sg_tensor *price = sg_mul(sg_mul(apple, num), tax);
 *     if (!price || sg_backward(price, NULL) != 0)
 *         sg_print_error(stderr);              // print, clear
 *     printf("%g\n", sg_grad_data(apple)[0]);           // 2.2
 *     sg_scope_end();                                   // frees all of it
 *
 * Memory: scopes (arenas)
 *   Tensors made while a scope is open belong to it and are freed together by
 *   sg_scope_end(). Tensors made with no scope open are persistent: free them
 *   with sg_tensor_free(). Parameters are made outside scopes; a training step
 *   runs inside one. A scope's memory is reused by the next scope at the same
 *   depth, so a warm training step does not call malloc.
 *
 * Errors
 *   No function aborts or exits on bad input. An op that cannot run returns
 *   NULL and records a message naming the op and the shapes, e.g.
 *   "matmul: shapes (2,3) and (4,5) do not align (3 != 4)". Every op given a
 *   NULL input returns NULL and keeps the first message, so one check at the
 *   end of an expression suffices. sg_last_error() reads the message. The
 *   message stays until sg_clear_error() (a later failure does not replace
 *   it), so where a program handles a failure and goes on, it checks,
 *   prints and clears: sg_print_error(stderr) does the last two.
 *
 * Threads: the graph state (scopes, grad mode, errors) is per thread.
 */
#ifndef SG_AUTOGRAD_H
#define SG_AUTOGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Largest number of dimensions a tensor may have. */
#define SG_MAX_DIMS 8

/**
 * Largest number of elements of one tensor: 2^31 - 1 (8 GiB of float32).
 * Every dimension is an int and kernels index within one tensor with int
 * arithmetic, so a shape whose element count passes this limit is refused
 * ("<op>: output of 4294967296 elements is too large") rather than wrapped.
 * The rule and the checked helpers: docs/design.md, "Sizes".
 */
#define SG_MAX_ELEMENTS 2147483647

/** Opaque tensor (and graph node). */
typedef struct sg_tensor sg_tensor;

/**
 * A tensor's element type. float32 is the default and what training uses;
 * float64 is for checking gradients (central differences in float32
 * confirm a derivative only to about 1e-3 relative; docs/design.md,
 * "Data types"). Gradients have their tensor's dtype.
 */
typedef enum sg_dtype {
    SG_FLOAT32, /**< 4-byte IEEE float (torch.float32) */
    SG_FLOAT64  /**< 8-byte IEEE double (torch.float64) */
} sg_dtype;

/**
 * Shape helper: SG_DIMS(2, 3) expands to `2, (const int[]){2, 3}`, the
 * (ndim, shape) pair every creation function takes.
 */
#define SG_DIMS(...)                                                   \
    (int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int)),           \
        (const int[]){__VA_ARGS__}

/* ------------------------------------------------------------------------- */
/** @name Checked size arithmetic
 * For code that derives a shape from user numbers (window outputs, channel
 * products, sums of lengths): compute in 64 bits through these, then let
 * sg_shape_fits() turn the result into an int shape or an error. */
/** a * b for counts (a, b >= 0), saturating at INT64_MAX instead of
 *  wrapping (a negative factor also gives INT64_MAX: never a valid size). */
int64_t sg_count_mul(int64_t a, int64_t b);
/** a + b for counts (a, b >= 0), saturating at INT64_MAX. */
int64_t sg_count_add(int64_t a, int64_t b);
/**
 * True if every dims[i] is in [0, INT_MAX] and the product of the nonzero
 * ones is at most SG_MAX_ELEMENTS (so even an empty tensor's partial
 * products fit an int); then shape[i] = dims[i]. Else false with the message
 * "<op>: <what> of d0 × d1 × … elements is too large (at most 2147483647)"
 * (or "<op>: negative dim in <what> (2,-1)"); shape is then untouched.
 * `shape` may be NULL to check only.
 */
bool sg_shape_fits(const char *op, const char *what, int ndim, const int64_t *dims, int *shape);

/* ------------------------------------------------------------------------- */
/** @name Errors */
/** Message of the first error since the last sg_clear_error(), or "" if none. */
const char *sg_last_error(void);
/** True if an error is recorded. */
bool sg_has_error(void);
/** Forget the recorded error. */
void sg_clear_error(void);
/**
 * Handle an error in one call: if one is recorded, print its message and a
 * newline to f (NULL means stderr), forget it (sg_clear_error()) and return
 * true; else print nothing and return false (like CPython's PyErr_Print,
 * which prints and clears). Errors are sticky: until it is cleared, a
 * recorded message hides every later one, so a program that goes on after
 * a failure calls this (or sg_last_error() then sg_clear_error()) where it
 * handles the failure:
 *
 *     sg_tensor *loss = sg_sum_all(sg_matmul(x, W));
 *     if (!loss)
 *         sg_print_error(stderr);   // "matmul: shapes ... do not align"
 */
bool sg_print_error(FILE *f);
/** Record an error message (printf-style) unless one is already recorded.
 *  Modules built on the engine (nn, optim, datasets) report through this. */
void sg_set_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/**
 * Naming the function the user called. A function built from other library
 * calls (sg_sqrt from sg_pow, a layer constructor from sg_zeros, a loss
 * from several ops) brackets its body with these: every message recorded
 * in between starts with `func` instead of the inner call's own name
 * ("sqrt: NULL input", not "pow: NULL input"). Nested brackets keep the
 * outermost name. sg_api_enter() returns a token for sg_api_leave().
 */
const char *sg_api_enter(const char *func);
/** End the bracket opened by the sg_api_enter() that returned `token`. */
void sg_api_leave(const char *token);
/**
 * The argument check every library function runs on a tensor before it
 * reads one (modules built on the engine use it too): true if x can be
 * used. Otherwise false and, naming `func` (the function the user called):
 *   - x NULL: "<func>: NULL input" — unless an error is already recorded,
 *     which then explains the NULL (a whole expression is checked once);
 *   - x from a scope that has ended: "<func>: tensor used after its scope
 *     ended" (see sg_scope_begin() for the rule and how long it is caught).
 */
bool sg_check_tensor(const char *func, const sg_tensor *x);
/** Debug mode: every op checks its result for NaN/Inf; the first op that
 *  produces one from finite inputs fails with a message naming it. Returns
 *  the previous setting. */
bool sg_set_nan_check(bool on);

/* ------------------------------------------------------------------------- */
/** @name Random numbers
 *  A small seeded generator (PCG32): the same seed gives the same numbers on
 *  every machine. */
/** A PCG32 generator state; seed it with sg_rng_seed(). Every function
 *  below (and every one elsewhere taking an sg_rng *) reads NULL as the
 *  thread's default generator, sg_default_rng(). */
typedef struct sg_rng {
    uint64_t state; /**< internal */
    uint64_t inc;   /**< internal */
} sg_rng;
/** Seed a generator. */
void sg_rng_seed(sg_rng *rng, uint64_t seed);
/** Next 32 random bits. */
uint32_t sg_rng_u32(sg_rng *rng);
/** Uniform double in [0, 1). */
double sg_rng_uniform(sg_rng *rng);
/** Standard normal double (Box–Muller). */
double sg_rng_normal(sg_rng *rng);
/** Uniform integer in [0, n), unbiased (rejection). n = 0 has no such
 *  integer: 0 is returned with the message "rng_below: n must be at least
 *  1, got 0". */
uint32_t sg_rng_below(sg_rng *rng, uint32_t n);
/** This thread's default generator (seeded with 42 on first use). */
sg_rng *sg_default_rng(void);

/* ------------------------------------------------------------------------- */
/** @name Creation
 *  All creation functions return a tensor owned by the innermost open scope
 *  (or a persistent tensor if none is open) that requires no gradient.
 *  Those that name no dtype make the thread's default dtype
 *  (sg_set_default_dtype(), float32 unless set); the *_like ones make x's.
 *  On bad arguments (ndim out of range, a dim < 0, NULL shape) they return
 *  NULL with a message. A dim of 0 is allowed (an empty tensor). */
/** Zeros of the given shape; ndim 0 makes a scalar. */
sg_tensor *sg_zeros(int ndim, const int *shape);
/** A tensor of the given shape whose values are not set (like torch.empty):
 *  for a caller that writes every element itself, saving sg_zeros' pass. */
sg_tensor *sg_empty(int ndim, const int *shape);
/** Ones of the given shape. */
sg_tensor *sg_ones(int ndim, const int *shape);
/** Every element = value (rounded to float32 in a float32 tensor). */
sg_tensor *sg_full(double value, int ndim, const int *shape);
/** Every element = value, of the given dtype whatever the default. */
sg_tensor *sg_full_dtype(sg_dtype dtype, double value, int ndim, const int *shape);
/** A 0-d tensor holding v. */
sg_tensor *sg_scalar(double v);
/** Copy of `data` (size = product of shape, row-major), into a tensor of
 *  the default dtype (converted when that is float64). data may be NULL
 *  only for an empty shape. */
sg_tensor *sg_from_data(const float *data, int ndim, const int *shape);
/** Copy of float64 `data` into a float64 tensor (whatever the default). */
sg_tensor *sg_from_data64(const double *data, int ndim, const int *shape);
/** 1-D [start, start+step, ...) below stop (above for step < 0). */
sg_tensor *sg_arange(double start, double stop, double step);
/** Uniform in [lo, hi) from rng (NULL = default generator), drawn in
 *  double and rounded to the dtype. */
sg_tensor *sg_uniform(sg_rng *rng, double lo, double hi, int ndim, const int *shape);
/** Normal(mean, std) from rng (NULL = default generator). */
sg_tensor *sg_normal(sg_rng *rng, double mean, double std, int ndim, const int *shape);
/** Zeros with the shape and dtype of x. */
sg_tensor *sg_zeros_like(const sg_tensor *x);
/** Ones with the shape and dtype of x. */
sg_tensor *sg_ones_like(const sg_tensor *x);
/** value everywhere, with the shape and dtype of x (torch.full_like): how a
 *  local derivative makes a constant that matches its input. */
sg_tensor *sg_full_like(const sg_tensor *x, double value);
/** A copy of x's values (same dtype) with no history and requires_grad off. */
sg_tensor *sg_copy(const sg_tensor *x);
/** A tensor sharing x's values, cut from its history (no gradient flows to x).
 *  The result must not outlive x. */
sg_tensor *sg_detach(sg_tensor *x);
/** Free a persistent tensor and its gradient. Tensors owned by a scope are
 *  freed by sg_scope_end(); passing one here does nothing. NULL is fine. */
void sg_tensor_free(sg_tensor *x);

/* ------------------------------------------------------------------------- */
/** @name Data types
 *  Every primitive works in both dtypes. An op whose tensor inputs have
 *  different dtypes promotes like PyTorch: the result is float64, unless
 *  one input is 0-d and the other is not, in which case the result has the
 *  dimensioned input's dtype (torch.result_type). The converted input goes
 *  through sg_to_dtype(), so its gradient comes back in its own dtype. */
/** Set this thread's default dtype for creation functions (like
 *  torch.set_default_dtype); returns the previous one. An unknown value is
 *  refused with a message and changes nothing. */
sg_dtype sg_set_default_dtype(sg_dtype dtype);
/** This thread's default dtype (SG_FLOAT32 unless set). */
sg_dtype sg_default_dtype(void);
/** x's dtype (SG_FLOAT32 for NULL). */
sg_dtype sg_dtype_of(const sg_tensor *x);
/** "float32" or "float64" ("?" for an unknown value). */
const char *sg_dtype_name(sg_dtype dtype);
/** x converted to dtype (x itself when it has it already), a primitive
 *  ("cast") so gradients flow back converted to x's dtype (like
 *  torch.Tensor.to(dtype)). float64 -> float32 rounds to nearest. */
sg_tensor *sg_to_dtype(sg_tensor *x, sg_dtype dtype);

/* ------------------------------------------------------------------------- */
/** @name Access */
/** Number of dims (0 for a scalar); -1 for NULL. */
int sg_ndim(const sg_tensor *x);
/** Pointer to the shape array (ndim ints). */
const int *sg_shape(const sg_tensor *x);
/** Size of dim d; negative d counts from the end. -1 if out of range. */
int sg_dim(const sg_tensor *x, int d);
/** Number of elements. */
size_t sg_size(const sg_tensor *x);
/** The values (row-major) of a float32 tensor. Writable: writing to a
 *  tensor that is part of a recorded graph invalidates that graph's
 *  gradients. NULL with a message ("data: the tensor is float64; use
 *  sg_data64") for a float64 tensor. */
float *sg_data(sg_tensor *x);
/** The values of a float64 tensor, as sg_data() (NULL with a message for a
 *  float32 one). */
double *sg_data64(sg_tensor *x);
/** The single value of a one-element tensor (NaN + error otherwise); a
 *  float64 value is rounded to float. */
float sg_item(const sg_tensor *x);
/** The single value of a one-element tensor of either dtype, as a double
 *  (exact for both). */
double sg_item64(const sg_tensor *x);
/** The gradient tensor, or NULL before backward reached x. */
sg_tensor *sg_grad(const sg_tensor *x);
/** The gradient values of a float32 tensor, or NULL before backward reached
 *  x (and NULL with a message for a float64 one: sg_grad_data64). */
float *sg_grad_data(const sg_tensor *x);
/** The gradient values of a float64 tensor, as sg_grad_data(). */
double *sg_grad_data64(const sg_tensor *x);
/** Set x's gradient to zero (keeps the buffer). NULL is fine. */
void sg_zero_grad(sg_tensor *x);
/** Mark x as needing a gradient (a leaf the graph tracks). Returns x. */
sg_tensor *sg_param(sg_tensor *x);
/** Set or clear requires_grad on a leaf. Returns x. */
sg_tensor *sg_set_requires_grad(sg_tensor *x, bool on);
/** True if x requires a gradient (a parameter or a recorded result). */
bool sg_requires_grad(const sg_tensor *x);
/** True if x was produced by a recorded op (it has a history). */
bool sg_has_history(const sg_tensor *x);
/** Name of the op that produced x ("leaf" for a leaf). */
const char *sg_op_name_of(const sg_tensor *x);
/** Give x a label for tracing and DOT export (copied, up to 31 chars). */
sg_tensor *sg_set_name(sg_tensor *x, const char *name);
/** x's label ("" if none). */
const char *sg_name(const sg_tensor *x);
/** True if the shapes are equal. */
bool sg_same_shape(const sg_tensor *a, const sg_tensor *b);
/** Write "(2,3)" into buf; returns buf. "(null)" for NULL (no message);
 *  "(dead)" and a message for a tensor whose scope ended. */
char *sg_shape_str(const sg_tensor *x, char *buf, size_t len);
/** NumPy-like printer: `[[1. 2.]\n [3. 4.]]`; long dims are elided. x NULL
 *  prints "(null)" without a message (as printf's %s does); a NULL f is
 *  refused ("print: NULL file"), as is a tensor whose scope ended. */
void sg_print(FILE *f, const sg_tensor *x);

/* ------------------------------------------------------------------------- */
/** @name Scopes (arenas) */
/** Open a scope: tensors made until the matching sg_scope_end() belong to
 *  it. Scopes nest. Returns the new depth (>= 1). */
int sg_scope_begin(void);
/** Close the innermost scope and free every tensor made inside it. Gradients
 *  of outer tensors that still point into the scope are turned into plain
 *  copies first. Does nothing (with a message) if no scope is open.
 *
 *  The lifetime rule: a tensor made in a scope must not be used after that
 *  scope ends (sg_keep() copies one out). Every op and accessor checks: a
 *  stale tensor fails with "<func>: tensor used after its scope ended"
 *  (sg_check_tensor()), never reads freed memory or another tensor's values.
 *  This holds until 1024 newer tensors have been made on the thread (their
 *  headers wait in a quarantine before reuse); past that, as with any freed
 *  pointer, the behaviour is undefined. After sg_release_memory() at depth 0
 *  no scoped tensor may be touched. */
void sg_scope_end(void);
/** Depth of the innermost open scope (0 = none). */
int sg_scope_depth(void);
/** Copy x's values (no history) into the enclosing scope, or make it
 *  persistent if that is the top: how a result outlives its scope. */
sg_tensor *sg_keep(const sg_tensor *x);
/** Bytes currently reserved by the scope arenas (for memory reports). */
size_t sg_scope_reserved_bytes(void);
/** Give back to the system the memory that closed scopes keep for reuse,
 *  and the engine's per-thread work buffers (with no scope open, also the
 *  headers of all scoped tensors). Call before exit for a clean valgrind
 *  report; scopes work as before afterwards. */
void sg_release_memory(void);

/* ------------------------------------------------------------------------- */
/** @name Gradient mode */
/** Turn recording on or off; returns the previous setting. With it off (the
 *  no-grad mode) ops compute but record nothing. */
bool sg_set_grad_enabled(bool on);
/** True while ops record (the default). */
bool sg_is_grad_enabled(void);

/* ------------------------------------------------------------------------- */
/** @name Elementwise primitives
 *  Binary ops broadcast with NumPy's rules; the local derivative of a
 *  broadcast input is summed back to its shape (sum_to). */
/** y = a + b;   da = dy, db = dy */
sg_tensor *sg_add(sg_tensor *a, sg_tensor *b);
/** y = a - b;   da = dy, db = -dy */
sg_tensor *sg_sub(sg_tensor *a, sg_tensor *b);
/** y = a * b;   da = dy * b, db = dy * a */
sg_tensor *sg_mul(sg_tensor *a, sg_tensor *b);
/** y = a / b;   da = dy / b, db = -dy * a / b^2 */
sg_tensor *sg_div(sg_tensor *a, sg_tensor *b);
/** y = -x;      dx = -dy */
sg_tensor *sg_neg(sg_tensor *x);
/** y = x^p (scalar p);  dx = dy * p * x^(p-1) */
sg_tensor *sg_pow(sg_tensor *x, double p);
/** y = exp(x);  dx = dy * y */
sg_tensor *sg_exp(sg_tensor *x);
/** y = log(x);  dx = dy / x */
sg_tensor *sg_log(sg_tensor *x);
/** y = max(x, 0);  dx = dy * (x > 0) */
sg_tensor *sg_relu(sg_tensor *x);
/** y = (a > b) as 0/1 (the step function); no gradient flows. */
sg_tensor *sg_gt(sg_tensor *a, sg_tensor *b);
/** y = (a == b) as 0/1; no gradient flows. */
sg_tensor *sg_eq(sg_tensor *a, sg_tensor *b);

/** Scalar conveniences, composed of the primitives above. */
sg_tensor *sg_add_scalar(sg_tensor *x, double s); /**< x + s */
sg_tensor *sg_mul_scalar(sg_tensor *x, double s); /**< x * s */
sg_tensor *sg_rsub_scalar(double s, sg_tensor *x); /**< s - x */
sg_tensor *sg_rdiv_scalar(double s, sg_tensor *x); /**< s / x */
sg_tensor *sg_sqrt(sg_tensor *x);                /**< x^0.5 */
sg_tensor *sg_square(sg_tensor *x);              /**< x^2 */
sg_tensor *sg_sub_scalar(sg_tensor *x, double s); /**< x - s (add_scalar of -s) */
/** x / s, divided (not multiplied by 1/s): sg_div by a 0-d constant of x's
 *  dtype, so each value is rounded once, as PyTorch's `x / s`. */
sg_tensor *sg_div_scalar(sg_tensor *x, double s);

/* ------------------------------------------------------------------------- */
/** @name Math primitives
 *  Unary ops keep x's shape; minimum, maximum and where broadcast with
 *  NumPy's rules (a broadcast input's gradient is summed back to its shape).
 *  Inputs of both dtypes promote as for every op ("Data types"); where's
 *  condition and the index tensors are read by value and keep theirs. At
 *  kinks, ties and
 *  bounds the derivative is PyTorch's (docs/design.md, "Derivatives at edge
 *  points"). */
/** y = sin(x);   dx = dy * cos(x) */
sg_tensor *sg_sin(sg_tensor *x);
/** y = cos(x);   dx = -dy * sin(x) */
sg_tensor *sg_cos(sg_tensor *x);
/** y = tanh(x);  dx = dy * (1 - y^2)  (0 at ±inf, at every order) */
sg_tensor *sg_tanh(sg_tensor *x);
/** y = |x|;      dx = dy * sign(x), so abs'(0) = 0 (PyTorch's sgn) */
sg_tensor *sg_abs(sg_tensor *x);
/** y = -1, 0 or +1 as x < 0, x = 0 (either zero), x > 0; NaN for NaN (as
 *  NumPy). A constant like sg_gt: no gradient flows (its derivative is 0
 *  wherever it exists), nothing is recorded. */
sg_tensor *sg_sign(sg_tensor *x);
/** y = min(a, b) elementwise (NaN if either is NaN);
 *  da = dy where a < b, db = dy where b < a; a tie a == b gives each dy/2
 *  (PyTorch's rule for minimum/maximum). */
sg_tensor *sg_minimum(sg_tensor *a, sg_tensor *b);
/** y = max(a, b) elementwise (NaN if either is NaN);
 *  da = dy where a > b, db = dy where b > a; a tie gives each dy/2. */
sg_tensor *sg_maximum(sg_tensor *a, sg_tensor *b);
/** y = cond ? a : b elementwise (torch.where), all three broadcast.
 *  cond is a mask: any nonzero value (NaN too) selects a. It may have
 *  either dtype and must not require a gradient (make it with sg_gt/sg_eq
 *  or sg_detach it): none flows to it.
 *  da = where(cond, dy, 0), db = where(cond, 0, dy), summed to shape. */
sg_tensor *sg_where(sg_tensor *cond, sg_tensor *a, sg_tensor *b);
/** y = min(max(x, lo), hi) (so hi when lo > hi, as PyTorch); NaN stays NaN.
 *  -INFINITY / INFINITY leave a side open (clamp_min, clamp_max). A NaN
 *  bound is refused. dx = dy where lo <= x <= hi, 0 elsewhere: at a bound
 *  the gradient passes (PyTorch's clamp_backward). */
sg_tensor *sg_clamp(sg_tensor *x, double lo, double hi);

/* ------------------------------------------------------------------------- */
/** @name Reductions
 *  `axes` lists n_axes dims (negative counts from the end); n_axes = 0 means
 *  every axis. keepdims keeps reduced dims with size 1. */
/** y = sum of x over axes;  dx = broadcast_to(dy, x.shape) */
sg_tensor *sg_sum(sg_tensor *x, const int *axes, int n_axes, bool keepdims);
/** y = mean over axes = sum / count */
sg_tensor *sg_mean(sg_tensor *x, const int *axes, int n_axes, bool keepdims);
/** y = max over axes;  dx = dy * (x == y) / count(x == y)  (ties share) */
sg_tensor *sg_max(sg_tensor *x, const int *axes, int n_axes, bool keepdims);
/** Sum of every element, a 0-d tensor. */
sg_tensor *sg_sum_all(sg_tensor *x);
/** sg_sum over one axis (negative counts from the end). */
sg_tensor *sg_sum_axis(sg_tensor *x, int axis, bool keepdims);
/** sg_mean over one axis. */
sg_tensor *sg_mean_axis(sg_tensor *x, int axis, bool keepdims);
/** sg_max over one axis (ties share the gradient, as sg_max). */
sg_tensor *sg_max_axis(sg_tensor *x, int axis, bool keepdims);
/** Mean of every element, a 0-d tensor. */
sg_tensor *sg_mean_all(sg_tensor *x);

/* ------------------------------------------------------------------------- */
/** @name Shape primitives */
/** Same values, new shape (one dim may be -1). dx = reshape(dy, x.shape).
 *  The result shares x's values. */
sg_tensor *sg_reshape(sg_tensor *x, int ndim, const int *shape);
/** Dims reordered: y.shape[i] = x.shape[perm[i]].  dx = permute(dy, perm^-1)
 *  n_perm is perm's length and must equal x's ndim ("permute: a permutation
 *  of 2 entries for (2,3,4), which has 3 dims"); each of 0..ndim-1 once. */
sg_tensor *sg_permute(sg_tensor *x, const int *perm, int n_perm);
/** Swap the last two dims (a 2-D transpose). */
sg_tensor *sg_transpose(sg_tensor *x);
/** Broadcast to shape (NumPy rules).  dx = sum_to(dy, x.shape) */
sg_tensor *sg_broadcast_to(sg_tensor *x, int ndim, const int *shape);
/** Sum down to shape (the adjoint of broadcast_to).  dx = broadcast_to(dy) */
sg_tensor *sg_sum_to(sg_tensor *x, int ndim, const int *shape);
/** Elements [start, stop) along axis.  dx = dy placed back, zeros elsewhere */
sg_tensor *sg_slice(sg_tensor *x, int axis, int start, int stop);
/** Join n tensors along axis (other dims equal).  dx_i = slice of dy */
sg_tensor *sg_concat(sg_tensor *const *xs, int n, int axis);
/** Flatten all but the first dim: (N, ...) -> (N, prod(...)). */
sg_tensor *sg_flatten(sg_tensor *x);

/* ------------------------------------------------------------------------- */
/** @name Linear algebra */
/** y = a @ b for 2-D (M,K)@(K,N); batched (...,M,K)@(...,K,N) with equal
 *  batch dims; (...,M,K)@(K,N) sharing b across the batch; or
 *  (M,K)@(...,K,N) sharing a. A shared operand's gradient sums over the
 *  batch. A 1-D operand follows NumPy's matmul: a (K) is taken as (1,K)
 *  and b (K) as (K,1), and that dim is removed from the result, so
 *  (K)@(K) is a 0-d dot product, (K)@(K,N) is (N), (M,K)@(K) is (M) and
 *  (K)@(B,K,N) is (B,N) (recorded as reshape, matmul, reshape). 0-d
 *  operands are refused. */
sg_tensor *sg_matmul(sg_tensor *a, sg_tensor *b);
/** y = op(a) @ op(b) with op = transpose of the last two dims when the flag
 *  is set (no copy is made). A 1-D operand is handled as in sg_matmul (its
 *  flag is ignored: a vector is its own transpose, as in NumPy).
 *  da = dy op(b)^T (transposed back if ta), db = op(a)^T dy (likewise). */
sg_tensor *sg_matmul_t(sg_tensor *a, sg_tensor *b, bool trans_a, bool trans_b);
/** y = c + a @ b in one pass (like torch.addmm): c, broadcast to the
 *  product's shape (NumPy rules), is the starting value the product is
 *  added to, so no separate product tensor is made. Shapes of a and b as
 *  for sg_matmul. A layer's bias: sg_addmm(b, x, W) = x @ W + b.
 *  dc = sum_to(dy, c.shape); da, db as for sg_matmul. */
sg_tensor *sg_addmm(sg_tensor *c, sg_tensor *a, sg_tensor *b);
/** sg_addmm with op(a), op(b) as in sg_matmul_t. */
sg_tensor *sg_addmm_t(sg_tensor *c, sg_tensor *a, sg_tensor *b, bool trans_a, bool trans_b);

/* ------------------------------------------------------------------------- */
/** @name Indexing
 *  Indices are an index tensor: any dtype (a float64 one holds every int
 *  exactly; float32 is exact up to 2^24), holding whole numbers in [0, L)
 *  for an axis of length L. It carries no gradient and must not require
 *  one. A bad index is refused naming it, its position and the axis:
 *  "gather: index 7 at position 3 of the index (4) is out of range for
 *  axis 1 of size 5" (or "... is not a whole number"). sg_from_ints()
 *  makes one from an int array. */
/** An index tensor (float64, so every int is exact) holding a copy of the
 *  ints idx (size = product of shape); requires no gradient. */
sg_tensor *sg_from_ints(const int *idx, int ndim, const int *shape);
/** torch.gather / np.take_along_axis: y has index's shape and
 *  y[..., j, ...] = x[..., index[..., j, ...], ...] along `axis`. index has
 *  x's rank and x's dims except on `axis`, where its length is any.
 *  dx = scatter_add(zeros_like(x), axis, index, dy). */
sg_tensor *sg_gather(sg_tensor *x, int axis, sg_tensor *index);
/** The adjoint of gather (torch.scatter_add): y = base, then
 *  y[..., index[..., j, ...], ...] += src[..., j, ...] along `axis`
 *  (repeated indices add up). index and src have one shape: base's except
 *  on `axis`. dbase = dy, dsrc = gather(dy, axis, index). */
sg_tensor *sg_scatter_add(sg_tensor *base, int axis, sg_tensor *index, sg_tensor *src);
/** np.take(x, index, axis): the slices of x at the given positions along
 *  axis; y.shape = x.shape[:axis] + index.shape + x.shape[axis+1:]. An
 *  embedding lookup is sg_take(W (V,D), 0, ids (N,T)) -> (N,T,D); a 0-d
 *  index drops the axis. Composed of gather (and reshapes), so dx is the
 *  scatter-add of dy into x's shape: rows taken twice get both gradients. */
sg_tensor *sg_take(sg_tensor *x, int axis, sg_tensor *index);

/* ------------------------------------------------------------------------- */
/** @name Convolution helpers */
/** Window geometry for unfold/fold. */
typedef struct sg_window {
    int kh;          /**< kernel height */
    int kw;          /**< kernel width */
    int sh;          /**< vertical stride (0 means 1) */
    int sw;          /**< horizontal stride (0 means 1) */
    int ph;          /**< padding rows on top and bottom */
    int pw;          /**< padding columns on left and right */
    float pad_value; /**< value read outside the input (0 for conv, -inf for max pooling) */
} sg_window;
/** Output spatial size: (H + 2P - K) / S + 1 computed in 64 bits, or -1 if
 *  the window does not fit (K < 1, P < 0, H + 2P < K) or the size passes
 *  INT_MAX. A stride < 1 counts as 1. */
int sg_window_out(int in, int k, int s, int p);
/** im2col: x (N,C,H,W) -> (N*OH*OW, C*KH*KW), rows ordered (n, oh, ow),
 *  columns (c, kh, kw) as in the book.  dx = fold(dy) */
sg_tensor *sg_unfold(sg_tensor *x, sg_window w);
/** col2im, the adjoint of unfold: (N*OH*OW, C*KH*KW) -> (N,C,H,W), summing
 *  overlaps (padding dropped).  dx = unfold(dy) */
sg_tensor *sg_fold(sg_tensor *cols, int n, int c, int h, int w_, sg_window w);

/* ------------------------------------------------------------------------- */
/** @name Backward */
/** Options of sg_backward() and sg_grad_of(); zero-initialise for defaults.
 *
 *  Keeping the graph: like PyTorch, retain_graph defaults to create_graph.
 *  sg_backward releases the graph it went through (a second backward
 *  through it fails, naming the node) unless retain_graph or create_graph
 *  is set — a create_graph pass keeps it, because its gradients are graphs
 *  over it that a second backward goes through (the double-backward
 *  pattern: backward with create_graph, then backward of a function of
 *  sg_grad(x)). A C struct cannot tell "false" from "not given", so asking
 *  for release in a create_graph pass is its own field, release_graph.
 *  sg_grad_of keeps the graph unless release_graph is set: it is a query
 *  that changes no .grad, and gradcheck calls it on graphs it then reuses
 *  (torch.autograd.grad releases by default; that is the one difference).
 *  Releasing frees no memory here (the scope does): it is the guard
 *  against going through a graph twice by mistake. */
typedef struct sg_backward_opts {
    sg_tensor *grad;   /**< seed dy; NULL means 1 for a one-element y */
    bool retain_graph; /**< keep the graph for another backward */
    bool create_graph; /**< record the backward pass (higher-order grads);
                            implies retain_graph unless release_graph */
    bool release_graph; /**< release the graph even with create_graph (or
                             in sg_grad_of); with retain_graph, refused */
    FILE *trace;       /**< if set, print each node's step: dy and what it
                            passes to each input (for learners) */
} sg_backward_opts;
/** Reverse-mode backward from y. Gradients accumulate into every tensor
 *  that requires a gradient (leaves and intermediate nodes alike) until
 *  sg_zero_grad(). Without retain_graph or create_graph the graph is
 *  released: a second backward through it fails ("backward: the graph
 *  through an exp node was already released ..."). Returns 0, or -1 with a
 *  message. */
int sg_backward(sg_tensor *y, const sg_backward_opts *opts);
/** Gradients of y w.r.t. xs[0..n) returned in grads[] (owned by the current
 *  scope), without touching any .grad (torch.autograd.grad). Keeps the
 *  graph unless opts->release_graph. Returns 0/-1. */
int sg_grad_of(sg_tensor *y, sg_tensor *const *xs, int n, sg_tensor **grads,
               const sg_backward_opts *opts);

/* ------------------------------------------------------------------------- */
/** @name Gradient checking */
/** A user function of tensors: returns the output (any shape) or NULL. */
typedef sg_tensor *(*sg_fn)(sg_tensor *const *inputs, int n, void *ctx);
/** Options of sg_gradcheck(); zero fields take the defaults, which depend
 *  on the inputs' dtype: float64 (every input that requires a gradient is
 *  float64) uses PyTorch's gradcheck defaults, float32 wider ones that its
 *  rounding allows. */
typedef struct sg_gradcheck_opts {
    double eps;  /**< central-difference step (default 1e-6 float64, 1e-3 float32) */
    double atol; /**< absolute tolerance (default 1e-5 float64, 1e-3 float32) */
    double rtol; /**< relative tolerance (default 1e-3 float64, 1e-2 float32) */
    bool verbose; /**< print a line per input */
} sg_gradcheck_opts;
/** What sg_gradcheck() found: the worst element and a summary. */
typedef struct sg_gradcheck_report {
    bool ok;           /**< every element within atol + rtol*|numeric| */
    int input;         /**< worst element: which input */
    size_t index;      /**< and its flat index */
    double analytic;   /**< backward's value there */
    double numeric;    /**< central difference there */
    double max_abs_err;/**< largest |analytic - numeric| */
    char message[256]; /**< a one-line summary */
} sg_gradcheck_report;
/** Compare backward's gradient of f with central differences (float64
 *  accumulation) for every element of every input that requires a gradient.
 *  A non-scalar output is reduced as sum(y * r) with fixed random r.
 *  Give float64 inputs (sg_to_dtype, or sg_set_default_dtype before making
 *  them) to check in float64: f then runs in float64 (its ops follow their
 *  inputs' dtype). At the float64 defaults (rtol 1e-3, as PyTorch's) errors
 *  above about 0.1% fail; with a smaller rtol (1e-5) float64 catches a
 *  derivative wrong by 1e-4 relative, which float32's rounding hides at any
 *  tolerance (docs/tutorial.md, "Checking in float64").
 *  Returns true if all agree; the report (may be NULL) names the worst one. */
bool sg_gradcheck(sg_fn f, sg_tensor *const *inputs, int n, void *ctx,
                  const sg_gradcheck_opts *opts, sg_gradcheck_report *report);
/** Second order: gradcheck of the gradient of f (built with create_graph). */
bool sg_gradgradcheck(sg_fn f, sg_tensor *const *inputs, int n, void *ctx,
                      const sg_gradcheck_opts *opts, sg_gradcheck_report *report);

/* ------------------------------------------------------------------------- */
/** @name User-defined primitives
 *  An op added from outside the library, like PyTorch's
 *  torch.autograd.Function and DeZero's Function: a name, the number of
 *  inputs, a forward (any code: ops, or raw loops over the inputs' values in
 *  either dtype) and a local derivative written with sg_ ops. Applied with
 *  sg_custom_apply(), it is recorded as one node, shown under its own name
 *  by sg_trace(), sg_write_dot() and messages, and differentiated like a
 *  built-in: because the derivative is itself made of recorded ops,
 *  create_graph differentiates it again (gradgradcheck, Newton).
 *
 *  The contract (docs/design.md, "User-defined primitives"):
 *  - forward(x, n, ctx) returns a new tensor of the inputs' dtype, made in
 *    the current scope (or persistent if none is open). It runs with
 *    gradient recording off, so what it computes is not recorded; its
 *    messages name the op ("softplus: ..."). It must not change its
 *    inputs' values. Returning an input (or any older tensor) is allowed:
 *    the node then gets a copy.
 *  - backward(x, n, y, dy, dx, ctx) fills dx[i] (x[i]'s shape and dtype)
 *    for every i with sg_requires_grad(x[i]); others may stay NULL. It may
 *    use the inputs x, the output y, dy and ctx; it must build dx from sg_
 *    ops on them (gradient mode is on under create_graph, so that is what
 *    makes second derivatives right) and must not write into x, y, dy or
 *    any gradient. Constants come from sg_full_like/sg_zeros_like of a
 *    tensor of the right dtype.
 *  - What forward keeps for backward: the inputs and the output are kept
 *    by the graph. Anything else goes in ctx: with ctx_size > 0 the ctx
 *    given to sg_custom_apply is copied (ctx_size bytes) into the node, in
 *    the output's scope, and forward and backward both get that copy, so
 *    forward may write into it (a constant it computed, the pointer of a
 *    tensor it made in the same scope). A tensor saved this way is a
 *    constant to backward: a second derivative does not see how it depends
 *    on the inputs, so a derivative that must compose to any order is
 *    recomputed from x and y. With ctx_size 0 the pointer itself is kept:
 *    the caller keeps what it points to alive as long as the graph.
 *  - Ownership: the descriptor is the caller's and must outlive every
 *    graph that records it (a static const is usual); the library never
 *    frees it or the caller's ctx. The node's ctx copy lives and dies with
 *    the output tensor.
 *  - Scopes: forward runs in the caller's scope and backward in the
 *    backward pass's; each may open and close scopes of its own inside,
 *    but whatever it returns must be alive when it returns.
 *  - Threads: the engine's state is per thread, so forward and backward
 *    run on the thread that applies the op / runs backward. They may split
 *    their own raw loops across threads that call no sg_ function. One
 *    descriptor may be used from many threads at once (it is only read). */
/** A user-defined primitive's description (see the contract above). */
typedef struct sg_custom_op {
    const char *name;  /**< shown by trace, DOT and messages (kept, not copied) */
    int n_inputs;      /**< number of tensor inputs, >= 1 */
    size_t ctx_size;   /**< bytes of ctx copied into each node; 0 keeps the pointer */
    /** y = f(x[0..n)); NULL with a message on failure. */
    sg_tensor *(*forward)(sg_tensor *const *x, int n, void *ctx);
    /** dx[i] = dy * dy/dx[i] (x[i]'s shape), from sg_ ops. */
    void (*backward)(sg_tensor *const *x, int n, sg_tensor *y, sg_tensor *dy, sg_tensor **dx, void *ctx);
} sg_custom_op;
/** Apply a user-defined op to inputs[0..n), n = op->n_inputs. Records one
 *  node (op "custom", shown as op->name) when an input requires a gradient
 *  and recording is on. Returns the output, or NULL with a message: a NULL
 *  or stale input, an incomplete descriptor, a wrong n, or a forward that
 *  failed or returned a tensor of another dtype than its inputs. Inputs of
 *  both dtypes are promoted first, as for every op ("Data types"). */
sg_tensor *sg_custom_apply(const sg_custom_op *op, sg_tensor *const *inputs, int n, const void *ctx);

/* ------------------------------------------------------------------------- */
/** @name Tracing and pictures */
/** Print every node of y's graph in topological order: id, name, op, inputs,
 *  shape, value and (after backward) gradient. */
void sg_trace(FILE *f, sg_tensor *y);
/** Write y's graph as Graphviz DOT (op, shape, small values, gradients). */
int sg_write_dot(FILE *f, sg_tensor *y);

/** How sg_write_html() places the nodes. */
typedef enum sg_html_layout {
    SG_HTML_LAYOUT_AUTO,   /**< Graphviz `dot` when it runs, else our own layered layout */
    SG_HTML_LAYOUT_DOT,    /**< Graphviz `dot` (-Tplain) or an error */
    SG_HTML_LAYOUT_LAYERED /**< our own: a column per depth, never runs dot */
} sg_html_layout;
/** Options of sg_write_html(); zero-initialise for defaults. */
typedef struct sg_html_opts {
    const char *title;     /**< page heading; NULL: "backprop of <y's name>" */
    sg_tensor *grad;       /**< seed dy, y's shape; NULL means 1 for a one-element y */
    sg_html_layout layout; /**< default SG_HTML_LAYOUT_AUTO */
} sg_html_opts;
/**
 * Write y's graph as one self-contained HTML page that steps through
 * backprop: the forward values node by node in topological order, then, in
 * the order sg_backward() visits the nodes, each node's upstream gradient
 * dy, the local derivative of each input with its formula
 * (sg_op_formula()), and the product added into the input's gradient
 * ("d tax = 650 = 1 × 650, mul: ∂(a·b)/∂b = a"); a value used twice shows
 * its gradient accumulate. Controls: next / previous step, play / pause
 * with a speed, jumps to the start of forward and of backward, the arrow
 * keys. Script, style and SVG are inline; the page fetches nothing.
 *
 * The numbers are the engine's: the writer runs a backward pass of its own
 * through sg_backward's walk, like sg_grad_of(), so every .grad is left as
 * it was and the graph is not released (call it before an sg_backward
 * without retain_graph, or not on a graph that one released). A y that
 * requires no gradient gives a page with the forward pass only. Tensors of
 * up to 16 elements show every value; larger ones their shape, min, max,
 * mean and L2 norm, and the first 64 values on demand. Layout: Graphviz's
 * `dot -Tplain` (run through popen, with a temporary file in $TMPDIR or
 * /tmp) when it is on PATH, else our own layered layout (opts->layout).
 * Graphs of a few hundred nodes are meant; the page holds every node.
 *
 * @param f    an open stream; nothing is written to it on failure
 * @param y    the output; a scalar, or any shape with opts->grad given
 * @param opts NULL for the defaults
 * @return 0, or -1 with a message naming write_html: NULL or dead f / y,
 *         a non-scalar y without a seed, a seed of another shape or given
 *         for a y without gradient, a graph released by an earlier
 *         backward, SG_HTML_LAYOUT_DOT without a working dot, out of
 *         memory, or a write error. The caller owns f (and closes it).
 */
int sg_write_html(FILE *f, sg_tensor *y, const sg_html_opts *opts);
/** The formula sg_write_html() shows for the local derivative of op's
 *  input `input` (op numbers as sg_op_name(); "∂(a·b)/∂b = a" for mul's
 *  input 1), or NULL when it has none: a primitive without a row in
 *  autograd/html.c's table (the page then shows dx without a formula), the
 *  leaf, or an input the op does not have. */
const char *sg_op_formula(int op, int input);

/* ------------------------------------------------------------------------- */
/** @name Threads */
/** Use n threads (the caller's included) in kernels and matrix products,
 *  where built with threads; n <= 0 means all cores. Until called, the
 *  engine uses OMP_NUM_THREADS if set, else all cores. The engine runs its
 *  own thread pool and splits large products into pieces, each computed by
 *  the BLAS on one thread: it sets OpenBLAS's thread count to 1, so a
 *  program that also calls the BLAS directly and wants OpenBLAS's threads
 *  for those calls sets them (openblas_set_num_threads) before its calls.
 *  Results do not depend on n: every kernel cuts its work at places fixed
 *  by the shape and adds partial sums in a fixed order, so any thread count
 *  gives the same bits (docs/design.md, "Determinism").
 *  Returns the number now in use (1 without threading support). */
int sg_set_threads(int n);

/* ------------------------------------------------------------------------- */
/** @name Kernels and the CPU
 *  The library is built once for every CPU of its architecture. Its kernels
 *  are compiled once per instruction-set level and one level's set is
 *  chosen when the library loads: the best the CPU (and the OS) supports,
 *  or a lower one named by the environment variable SG_ISA
 *  (generic|avx2|avx512), as OpenBLAS's DYNAMIC_ARCH and ggml's CPU
 *  variants do. Every level computes the same functions; results agree to
 *  rounding (docs/design.md, "Kernels and CPUs"). */
/** Instruction-set levels of the kernels. */
typedef enum sg_isa {
    SG_ISA_GENERIC, /**< portable C: baseline x86-64 (SSE2), or any other CPU */
    SG_ISA_AVX2,    /**< AVX2 + FMA (as in x86-64-v3) */
    SG_ISA_AVX512,  /**< AVX-512 F, VL, BW, DQ and CD on top of AVX2 (as in x86-64-v4) */
    SG_ISA_COUNT    /**< number of levels */
} sg_isa;
/** The best level this CPU and this build support. */
sg_isa sg_isa_cpu(void);
/** The level whose kernels are in use. */
sg_isa sg_isa_active(void);
/** Use the kernels of `isa`, which must not exceed sg_isa_cpu(); call it
 *  between steps, not while another thread runs an op. Returns 0, or -1
 *  with a message ("sg_set_isa: avx512 is not supported by this CPU (best:
 *  avx2)") and the level unchanged. */
int sg_set_isa(sg_isa isa);
/** "generic", "avx2" or "avx512"; "?" for a value out of range. */
const char *sg_isa_name(sg_isa isa);
/** The level named `name` (as sg_isa_name spells it, in any case: "AVX2"
 *  too) into *isa: 0, or -1 (no message) when the name is unknown. */
int sg_isa_from_name(const char *name, sg_isa *isa);
/** One line naming the CPU and the kernels that run matrix products and
 *  the other ops, e.g. "kernels: avx2 on AMD Ryzen 7 5800X 8-Core Processor
 *  (best: avx2); matmul: OpenBLAS Haswell, own tall/long kernels for thin
 *  products". Writes at most len bytes
 *  (NUL included) into buf, like snprintf; returns buf. */
char *sg_kernels_describe(char *buf, size_t len);

/* ------------------------------------------------------------------------- */
/** @name The op table (introspection, for tests and tools) */
/** Number of primitives in the op table (the leaf included). */
int sg_op_count(void);
/** Name of op number `op` (0 .. sg_op_count()-1), "?" if out of range. */
const char *sg_op_name(int op);

#ifdef __cplusplus
}
#endif
#endif /* SG_AUTOGRAD_H */
