/*
 * sg_autograd.h — ScratchGrad's engine: tensors, a dynamic graph of primitive
 * ops, reverse-mode backward, gradient checking, tracing.
 *
 * Overview
 *   A tensor is float32, row-major and contiguous, with up to SG_MAX_DIMS dims.
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
 *         fprintf(stderr, "%s\n", sg_last_error());
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
 *   end of an expression suffices. sg_last_error() reads the message.
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
 *  On bad arguments (ndim out of range, a dim < 0, NULL shape) they return
 *  NULL with a message. A dim of 0 is allowed (an empty tensor). */
/** Zeros of the given shape; ndim 0 makes a scalar. */
sg_tensor *sg_zeros(int ndim, const int *shape);
/** A tensor of the given shape whose values are not set (like torch.empty):
 *  for a caller that writes every element itself, saving sg_zeros' pass. */
sg_tensor *sg_empty(int ndim, const int *shape);
/** Ones of the given shape. */
sg_tensor *sg_ones(int ndim, const int *shape);
/** Every element = value. */
sg_tensor *sg_full(float value, int ndim, const int *shape);
/** A 0-d tensor holding v. */
sg_tensor *sg_scalar(float v);
/** Copy of `data` (size = product of shape, row-major). data may be NULL
 *  only for an empty shape. */
sg_tensor *sg_from_data(const float *data, int ndim, const int *shape);
/** 1-D [start, start+step, ...) below stop (above for step < 0). */
sg_tensor *sg_arange(float start, float stop, float step);
/** Uniform in [lo, hi) from rng (NULL = default generator). */
sg_tensor *sg_uniform(sg_rng *rng, float lo, float hi, int ndim, const int *shape);
/** Normal(mean, std) from rng (NULL = default generator). */
sg_tensor *sg_normal(sg_rng *rng, float mean, float std, int ndim, const int *shape);
/** Zeros with the shape of x. */
sg_tensor *sg_zeros_like(const sg_tensor *x);
/** Ones with the shape of x. */
sg_tensor *sg_ones_like(const sg_tensor *x);
/** A copy of x's values with no history and requires_grad off. */
sg_tensor *sg_copy(const sg_tensor *x);
/** A tensor sharing x's values, cut from its history (no gradient flows to x).
 *  The result must not outlive x. */
sg_tensor *sg_detach(sg_tensor *x);
/** Free a persistent tensor and its gradient. Tensors owned by a scope are
 *  freed by sg_scope_end(); passing one here does nothing. NULL is fine. */
void sg_tensor_free(sg_tensor *x);

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
/** The values (row-major). Writable: writing to a tensor that is part of a
 *  recorded graph invalidates that graph's gradients. */
float *sg_data(sg_tensor *x);
/** The single value of a one-element tensor (NaN + error otherwise). */
float sg_item(const sg_tensor *x);
/** The gradient tensor, or NULL before backward reached x. */
sg_tensor *sg_grad(const sg_tensor *x);
/** The gradient values, or NULL before backward reached x. */
float *sg_grad_data(const sg_tensor *x);
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
sg_tensor *sg_pow(sg_tensor *x, float p);
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
sg_tensor *sg_add_scalar(sg_tensor *x, float s); /**< x + s */
sg_tensor *sg_mul_scalar(sg_tensor *x, float s); /**< x * s */
sg_tensor *sg_rsub_scalar(float s, sg_tensor *x); /**< s - x */
sg_tensor *sg_rdiv_scalar(float s, sg_tensor *x); /**< s / x */
sg_tensor *sg_sqrt(sg_tensor *x);                /**< x^0.5 */
sg_tensor *sg_square(sg_tensor *x);              /**< x^2 */

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
/** Mean of every element, a 0-d tensor. */
sg_tensor *sg_mean_all(sg_tensor *x);

/* ------------------------------------------------------------------------- */
/** @name Shape primitives */
/** Same values, new shape (one dim may be -1). dx = reshape(dy, x.shape).
 *  The result shares x's values. */
sg_tensor *sg_reshape(sg_tensor *x, int ndim, const int *shape);
/** Dims reordered: y.shape[i] = x.shape[perm[i]].  dx = permute(dy, perm^-1) */
sg_tensor *sg_permute(sg_tensor *x, const int *perm);
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
 *  batch. */
sg_tensor *sg_matmul(sg_tensor *a, sg_tensor *b);
/** y = op(a) @ op(b) with op = transpose of the last two dims when the flag
 *  is set (no copy is made).
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
/** Options of sg_backward() and sg_grad_of(); zero-initialise for defaults. */
typedef struct sg_backward_opts {
    sg_tensor *grad;   /**< seed dy; NULL means 1 for a one-element y */
    bool retain_graph; /**< keep the graph for another backward */
    bool create_graph; /**< record the backward pass (higher-order grads) */
    FILE *trace;       /**< if set, print each node's step: dy and what it
                            passes to each input (for learners) */
} sg_backward_opts;
/** Reverse-mode backward from y. Gradients accumulate into every tensor
 *  that requires a gradient (leaves and intermediate nodes alike) until
 *  sg_zero_grad(). Without retain_graph the graph is released: a second
 *  backward through it fails. Returns 0, or -1 with a message. */
int sg_backward(sg_tensor *y, const sg_backward_opts *opts);
/** Gradients of y w.r.t. xs[0..n) returned in grads[] (owned by the current
 *  scope), without touching any .grad (torch.autograd.grad). Returns 0/-1. */
int sg_grad_of(sg_tensor *y, sg_tensor *const *xs, int n, sg_tensor **grads,
               const sg_backward_opts *opts);

/* ------------------------------------------------------------------------- */
/** @name Gradient checking */
/** A user function of tensors: returns the output (any shape) or NULL. */
typedef sg_tensor *(*sg_fn)(sg_tensor *const *inputs, int n, void *ctx);
/** Options of sg_gradcheck(); zero fields take the defaults. */
typedef struct sg_gradcheck_opts {
    double eps;  /**< central-difference step (default 1e-3) */
    double atol; /**< absolute tolerance (default 1e-3) */
    double rtol; /**< relative tolerance (default 1e-2) */
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
 *  Returns true if all agree; the report (may be NULL) names the worst one. */
bool sg_gradcheck(sg_fn f, sg_tensor *const *inputs, int n, void *ctx,
                  const sg_gradcheck_opts *opts, sg_gradcheck_report *report);
/** Second order: gradcheck of the gradient of f (built with create_graph). */
bool sg_gradgradcheck(sg_fn f, sg_tensor *const *inputs, int n, void *ctx,
                      const sg_gradcheck_opts *opts, sg_gradcheck_report *report);

/* ------------------------------------------------------------------------- */
/** @name Tracing and pictures */
/** Print every node of y's graph in topological order: id, name, op, inputs,
 *  shape, value and (after backward) gradient. */
void sg_trace(FILE *f, sg_tensor *y);
/** Write y's graph as Graphviz DOT (op, shape, small values, gradients). */
int sg_write_dot(FILE *f, sg_tensor *y);

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
/** The level named `name` (as sg_isa_name spells it) into *isa: 0, or -1
 *  (no message) when the name is unknown. */
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
