/*
 * optim.c — the optimizers: options, per-parameter state, the update step.
 *
 * Key idea: the book keeps an optimizer's memory in Python dicts keyed by the
 * parameter's name (`self.v[key]`); we key a uthash table by the parameter's
 * address. An entry holds the parameter's size, its update count t and the
 * kind's state buffers (velocity, squared-gradient sum, moments) in one
 * allocation, made zeroed the first time a step sees the parameter's
 * gradient. A warm step therefore allocates nothing.
 *
 * One row per kind (OPTIM_KINDS below) holds all that differs between
 * optimizers: name, default learning rate, option checks, number of state
 * buffers, update kernel, in the manner of the engine's op table; apart
 * from the shortcuts (sg_adam_new, ...) the rest of the file names no kind.
 * The list is checked when it is compiled: a
 * kind of the enum without a row, or with two, does not build. The update
 * loops are the engine's per-level kernels (autograd/kernels/
 * optim_update.c), found in the current level's table at each step.
 *
 * Invariants:
 *   - A step runs in two passes. Pass 1 checks every entry and finds or makes
 *     its state; pass 2 updates. So a step that fails changes no parameter.
 *   - The gradient is only read. Weight decay is applied to the value the
 *     kernel uses (g + λw), not written back, as in PyTorch.
 *   - The formulas and their operation order follow torch.optim (single-
 *     tensor code path); bias corrections are computed in double as PyTorch
 *     computes them in Python floats.
 */
#include "sg_optim.h"
#include "sg_kernels.h"  /* the engine's per-level kernels (autograd/kernels/) */
#include "sg_parallel.h" /* the engine's thread pool (autograd/) */

#include <assert.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* uthash must not exit() when malloc fails: on failure it leaves the item
 * out of the table and sets item->hh.tbl to NULL, which step() checks. */
#define HASH_NONFATAL_OOM 1
#include <uthash.h>

/* One parameter's memory: the book's self.v[key], self.h[key], self.m[key]. */
typedef struct param_state {
    const sg_tensor *key; /* the parameter (hash key; never dereferenced) */
    size_t size;          /* its number of elements when the state was made */
    long t;               /* updates received (PyTorch's state['step']) */
    unsigned long visit;  /* last step call that listed it (finds duplicates) */
    UT_hash_handle hh;
    float buf[];          /* n_buffers * size floats */
} param_state;

struct sg_optim {
    sg_optim_opts o;
    long steps;           /* successful step calls */
    unsigned long visit;  /* step calls, successful or not */
    size_t state_bytes;   /* sum of buffer bytes over the table */
    param_state *table;   /* uthash head */
};

/* ---- the kinds: one row each ----
 *
 * Everything that makes one optimizer differ from another is its row in
 * OPTIM_KINDS: its name, its default learning rate, the checks of the
 * options it reads, how many state buffers it keeps per parameter and its
 * update kernel (a loop of autograd/kernels/optim_update.c, found in the
 * current level's sg_kernels table). sg_optim_defaults, sg_optim_kind_name,
 * sg_optim_kind_from_name (and through it the trainer's --optim),
 * sg_optim_new and sg_optim_step read the row.
 *
 * The list is an X-macro so that it can be checked when it is compiled:
 * it makes the table (designated rows, [SG_OPTIM_ADAM] = {...}), the
 * switch of kind_ok() (a kind listed twice is a duplicate case label) and
 * a count that must equal SG_OPTIM_COUNT (a kind left out fails the
 * static_assert). */

/* an update loop: elements [lo, hi) of a->w, in place (sg_kernels.h) */
typedef void (*update_fn)(const sg_kupdate *a, size_t lo, size_t hi);

typedef struct kind_row {
    const char *name; /* "adam": sg_optim_kind_name, sg_optim_kind_from_name, messages */
    float lr;         /* default learning rate η (the book's) */
    int n_buffers;    /* state buffers per parameter, its size each: 0, 1 (s0) or 2 (s0, s1) */
    const char *state_names[2]; /* PyTorch's names of s0, s1 ("exp_avg"): sg_optim_state_name */
    size_t kernel;    /* KERNEL(update_...): the update loop's place in sg_kernels */
    /* optional; NULL or false where the kind needs nothing */
    void (*defaults)(sg_optim_opts *o); /* other defaults than the shared ones (besides lr) */
    bool (*check)(const char *fn, const char *name, const sg_optim_opts *o); /* fields the kind
                                         reads besides lr and λ; false with a message */
    void (*start)(float *s0, size_t size, const sg_optim_opts *o); /* s0 not starting at 0 */
    bool nesterov;  /* sg_kupdate.nesterov: the momentum kernel's look-ahead */
    bool decoupled; /* decoupled_weight_decay always on (the kind is defined by it) */
} kind_row;

/* The kernel is looked up in the level's table at each step, not stored as
 * a pointer: sg_set_isa() may change the level (update_kernel()). */
#define KERNEL(field) offsetof(sg_kernels, field)

/* Checks of single fields: false with "<fn>: <kind> <field> <value> ..." */

/* x >= 0 and finite (false for NaN) */
static bool check_nonneg(const char *fn, const char *name, const char *field, float x)
{
    if (x >= 0.0f && isfinite(x))
        return true;
    sg_set_error("%s: %s %s %g must be >= 0 and finite", fn, name, field, (double)x);
    return false;
}

/* x in [0, 1) (hi_open) or [0, 1] (false for NaN) */
static bool check_unit(const char *fn, const char *name, const char *field, float x, bool hi_open)
{
    if (x >= 0.0f && (hi_open ? x < 1.0f : x <= 1.0f))
        return true;
    sg_set_error("%s: %s %s %g is outside [0, 1%c", fn, name, field, (double)x, hi_open ? ')' : ']');
    return false;
}

/* MOMENTUM: μ in [0, 1), dampening in [0, 1] */
static bool check_momentum(const char *fn, const char *name, const sg_optim_opts *o)
{
    return check_unit(fn, name, "momentum", o->momentum, true) &&
           check_unit(fn, name, "dampening", o->dampening, false);
}

/* NESTEROV: as MOMENTUM, and μ > 0, dampening 0 (PyTorch's condition) */
static bool check_nesterov(const char *fn, const char *name, const sg_optim_opts *o)
{
    if (!check_momentum(fn, name, o))
        return false;
    if (o->momentum == 0.0f || o->dampening != 0.0f) {
        sg_set_error("%s: nesterov needs momentum > 0 and dampening 0 (got %g and %g)", fn,
                     (double)o->momentum, (double)o->dampening);
        return false;
    }
    return true;
}

static bool check_adagrad(const char *fn, const char *name, const sg_optim_opts *o)
{
    return check_nonneg(fn, name, "lr_decay", o->lr_decay) &&
           check_nonneg(fn, name, "initial_accumulator", o->initial_accumulator) &&
           check_nonneg(fn, name, "eps", o->eps);
}

static bool check_rmsprop(const char *fn, const char *name, const sg_optim_opts *o)
{
    return check_unit(fn, name, "alpha", o->alpha, true) && check_nonneg(fn, name, "eps", o->eps);
}

static bool check_adam(const char *fn, const char *name, const sg_optim_opts *o)
{
    return check_unit(fn, name, "beta1", o->beta1, true) &&
           check_unit(fn, name, "beta2", o->beta2, true) && check_nonneg(fn, name, "eps", o->eps);
}

static void momentum_defaults(sg_optim_opts *o) { o->momentum = 0.9f; }

static void adagrad_defaults(sg_optim_opts *o) { o->eps = 1e-10f; } /* PyTorch's */

static void adamw_defaults(sg_optim_opts *o) { o->weight_decay = 0.01f; } /* torch.optim.AdamW's */

/* AdaGrad's sum of g² starts at initial_accumulator (the state is calloc'd) */
static void adagrad_start(float *s0, size_t size, const sg_optim_opts *o)
{
    if (o->initial_accumulator != 0.0f)
        for (size_t i = 0; i < size; i++)
            s0[i] = o->initial_accumulator;
}

/* X(KIND, the fields of its row), in the order of enum sg_optim_kind */
#define OPTIM_KINDS(X)                                                                             \
    X(SGD, .name = "sgd", .lr = 0.01f, .n_buffers = 0, .kernel = KERNEL(update_sgd))               \
    X(MOMENTUM, .name = "momentum", .lr = 0.01f, .n_buffers = 1, .state_names = {"momentum_buffer"}, \
      .kernel = KERNEL(update_momentum), .defaults = momentum_defaults, .check = check_momentum)    \
    X(NESTEROV, .name = "nesterov", .lr = 0.01f, .n_buffers = 1, .state_names = {"momentum_buffer"}, \
      .kernel = KERNEL(update_momentum), .defaults = momentum_defaults, .check = check_nesterov,   \
      .nesterov = true)                                                                            \
    X(ADAGRAD, .name = "adagrad", .lr = 0.01f, .n_buffers = 1, .kernel = KERNEL(update_adagrad),   \
      .defaults = adagrad_defaults, .check = check_adagrad, .start = adagrad_start,               \
      .state_names = {"sum"})                                                                      \
    X(RMSPROP, .name = "rmsprop", .lr = 0.01f, .n_buffers = 1, .kernel = KERNEL(update_rmsprop),   \
      .check = check_rmsprop, .state_names = {"square_avg"})                                       \
    X(ADAM, .name = "adam", .lr = 0.001f, .n_buffers = 2, .kernel = KERNEL(update_adam),           \
      .check = check_adam, .state_names = {"exp_avg", "exp_avg_sq"})                               \
    X(ADAMW, .name = "adamw", .lr = 0.001f, .n_buffers = 2, .kernel = KERNEL(update_adam),         \
      .defaults = adamw_defaults, .check = check_adam, .decoupled = true,                          \
      .state_names = {"exp_avg", "exp_avg_sq"})

#define KIND_ROW(K, ...) [SG_OPTIM_##K] = {__VA_ARGS__},
static const kind_row kinds[] = {OPTIM_KINDS(KIND_ROW)};
#undef KIND_ROW

#define PLUS_ONE(K, ...) +1
static_assert(0 OPTIM_KINDS(PLUS_ONE) == SG_OPTIM_COUNT,
              "optim: OPTIM_KINDS needs one row per sg_optim_kind (one is missing)");
#undef PLUS_ONE
static_assert(sizeof kinds / sizeof kinds[0] == SG_OPTIM_COUNT,
              "optim: OPTIM_KINDS has a row for a kind past SG_OPTIM_COUNT");

/* k is a kind of the list (each listed once: a duplicate case fails to compile) */
static bool kind_ok(sg_optim_kind k)
{
#define KIND_CASE(K, ...) case SG_OPTIM_##K:
    switch (k) {
    OPTIM_KINDS(KIND_CASE)
        return true;
    default:
        return false;
    }
#undef KIND_CASE
}

/* the row's update loop in the kernels of the current level */
static update_fn update_kernel(const kind_row *row)
{
    return *(const update_fn *)((const char *)sg_kern + row->kernel);
}

typedef struct kernel_job {
    update_fn kernel;
    const sg_kupdate *a;
} kernel_job;

static void kernel_range(void *ctx, size_t lo, size_t hi)
{
    const kernel_job *j = ctx;
    j->kernel(j->a, lo, hi);
}

/* Big parameters (SimpleConvNet's 4320x100 weight) are updated by the pool;
 * the work estimate counts the floats the kernel streams. */
static void run_kernel(update_fn kernel, const sg_kupdate *a)
{
    kernel_job j = {kernel, a};
    size_t streams = 2 + (a->s0 ? 1 : 0) + (a->s1 ? 1 : 0);
    sg_parallel_for_elems(a->n, a->n * streams, kernel_range, &j);
}

const char *sg_optim_kind_name(sg_optim_kind kind) { return kind_ok(kind) ? kinds[kind].name : "?"; }

sg_optim_kind sg_optim_kind_from_name(const char *name)
{
    for (int k = 0; name && k < SG_OPTIM_COUNT; k++)
        if (strcmp(name, kinds[k].name) == 0)
            return (sg_optim_kind)k;
    char known[256] = "";
    for (int k = 0; k < SG_OPTIM_COUNT; k++) {
        size_t used = strlen(known);
        snprintf(known + used, sizeof known - used, "%s%s", k ? " " : "", kinds[k].name);
    }
    sg_set_error("optim_kind_from_name: unknown optimizer '%s' (%s)", name ? name : "(NULL)", known);
    return SG_OPTIM_COUNT;
}

sg_optim_opts sg_optim_defaults(sg_optim_kind kind)
{
    const kind_row *row = &kinds[kind_ok(kind) ? kind : SG_OPTIM_SGD];
    sg_optim_opts o = {
        .kind = kind,
        .lr = row->lr,
        .momentum = 0.0f,
        .dampening = 0.0f,
        .alpha = 0.99f,
        .beta1 = 0.9f,
        .beta2 = 0.999f,
        .eps = 1e-8f,
        .lr_decay = 0.0f,
        .initial_accumulator = 0.0f,
        .weight_decay = 0.0f,
        .decoupled_weight_decay = row->decoupled,
    };
    if (row->defaults)
        row->defaults(&o);
    return o;
}

/* Check o; on a bad value record "<fn>: <what>" and return false. */
static bool check_opts(const char *fn, const sg_optim_opts *o)
{
    if (!kind_ok(o->kind)) {
        sg_set_error("%s: unknown optimizer kind %d (valid: 0..%d)", fn, (int)o->kind,
                     SG_OPTIM_COUNT - 1);
        return false;
    }
    const kind_row *row = &kinds[o->kind];
    return check_nonneg(fn, row->name, "learning rate", o->lr) &&
           check_nonneg(fn, row->name, "weight_decay", o->weight_decay) &&
           (!row->check || row->check(fn, row->name, o));
}

static sg_optim *optim_new(const char *fn, const sg_optim_opts *o)
{
    if (!o) {
        sg_set_error("%s: options are NULL (start from sg_optim_defaults(kind))", fn);
        return NULL;
    }
    if (!check_opts(fn, o))
        return NULL;
    sg_optim *opt = calloc(1, sizeof *opt);
    if (!opt) {
        sg_set_error("%s: out of memory", fn);
        return NULL;
    }
    opt->o = *o;
    if (kinds[o->kind].decoupled)
        opt->o.decoupled_weight_decay = true;
    return opt;
}

sg_optim *sg_optim_new(const sg_optim_opts *o) { return optim_new("optim_new", o); }

sg_optim *sg_sgd_new(float lr)
{
    sg_optim_opts o = sg_optim_defaults(SG_OPTIM_SGD);
    o.lr = lr;
    return optim_new("sgd_new", &o);
}

sg_optim *sg_momentum_new(float lr, float momentum)
{
    sg_optim_opts o = sg_optim_defaults(SG_OPTIM_MOMENTUM);
    o.lr = lr;
    o.momentum = momentum;
    return optim_new("momentum_new", &o);
}

sg_optim *sg_nesterov_new(float lr, float momentum)
{
    sg_optim_opts o = sg_optim_defaults(SG_OPTIM_NESTEROV);
    o.lr = lr;
    o.momentum = momentum;
    return optim_new("nesterov_new", &o);
}

sg_optim *sg_adagrad_new(float lr)
{
    sg_optim_opts o = sg_optim_defaults(SG_OPTIM_ADAGRAD);
    o.lr = lr;
    return optim_new("adagrad_new", &o);
}

sg_optim *sg_rmsprop_new(float lr, float alpha)
{
    sg_optim_opts o = sg_optim_defaults(SG_OPTIM_RMSPROP);
    o.lr = lr;
    o.alpha = alpha;
    return optim_new("rmsprop_new", &o);
}

sg_optim *sg_adam_new(float lr, float beta1, float beta2)
{
    sg_optim_opts o = sg_optim_defaults(SG_OPTIM_ADAM);
    o.lr = lr;
    o.beta1 = beta1;
    o.beta2 = beta2;
    return optim_new("adam_new", &o);
}

sg_optim *sg_adamw_new(float lr, float weight_decay)
{
    sg_optim_opts o = sg_optim_defaults(SG_OPTIM_ADAMW);
    o.lr = lr;
    o.weight_decay = weight_decay;
    return optim_new("adamw_new", &o);
}

void sg_optim_reset(sg_optim *opt)
{
    if (!opt)
        return;
    param_state *st, *tmp;
    HASH_ITER(hh, opt->table, st, tmp) {
        HASH_DEL(opt->table, st);
        free(st);
    }
    opt->state_bytes = 0;
}

void sg_optim_free(sg_optim *opt)
{
    if (!opt)
        return;
    sg_optim_reset(opt);
    free(opt);
}

static param_state *find_state(const sg_optim *opt, const sg_tensor *p)
{
    param_state *st = NULL;
    HASH_FIND_PTR(opt->table, &p, st);
    return st;
}

/* The state of p, made (zeroed, then the kind's start) if p has none; NULL
 * with a message on failure. */
/* "params[3]" in a message, or "the parameter" for index < 0 (a single
 * parameter: optim_set_state) */
static const char *who(int index, char buf[static 32])
{
    if (index < 0)
        return "the parameter";
    snprintf(buf, 32, "params[%d]", index);
    return buf;
}

static param_state *state_of(sg_optim *opt, const char *op, sg_tensor *p, int index)
{
    char wb[32];
    const size_t size = sg_size(p);
    const kind_row *row = &kinds[opt->o.kind];
    const size_t nbuf = (size_t)row->n_buffers;
    param_state *st = find_state(opt, p);
    if (st) {
        if (st->size != size) {
            char b[96];
            sg_set_error("%s: %s %s has %zu elements but the %s state kept for its "
                         "address has %zu (a freed parameter's address reused? call "
                         "sg_optim_forget before freeing a parameter)",
                         op, who(index, wb), sg_shape_str(p, b, sizeof b), size, row->name, st->size);
            return NULL;
        }
        return st;
    }
    if (nbuf && size > (SIZE_MAX - sizeof *st) / sizeof(float) / nbuf) {
        sg_set_error("%s: %s is too large for %s state", op, who(index, wb), row->name);
        return NULL;
    }
    const size_t bytes = nbuf * size * sizeof(float);
    st = calloc(1, sizeof *st + bytes);
    if (!st) {
        sg_set_error("%s: out of memory for %zu bytes of %s state (%s)", op, bytes,
                     row->name, who(index, wb));
        return NULL;
    }
    st->key = p;
    st->size = size;
    if (row->start)
        row->start(st->buf, size, &opt->o);
    HASH_ADD_PTR(opt->table, key, st);
    if (!st->hh.tbl) {
        free(st);
        sg_set_error("%s: out of memory for the state table (%s)", op, who(index, wb));
        return NULL;
    }
    opt->state_bytes += bytes;
    return st;
}

int sg_optim_step(sg_optim *opt, sg_tensor *const *params, int n)
{
    if (!opt) {
        sg_set_error("optim_step: optimizer is NULL");
        return -1;
    }
    const kind_row *row = &kinds[opt->o.kind];
    const char *name = row->name;
    if (n < 0 || (n > 0 && !params)) {
        sg_set_error("optim_step: %s given %s with n = %d", name, params ? "params" : "NULL params", n);
        return -1;
    }
    const unsigned long visit = ++opt->visit;

    /* pass 1: check every entry, find or make its state */
    for (int i = 0; i < n; i++) {
        sg_tensor *p = params[i];
        if (!p) {
            sg_set_error("optim_step: %s params[%d] is NULL", name, i);
            return -1;
        }
        if (sg_dtype_of(p) != SG_FLOAT32) {
            /* the update kernels are float32's; float64 is for checking
             * gradients (docs/design.md, "Data types") */
            sg_set_error("optim_step: %s params[%d] is %s; optimizers update float32 parameters", name, i,
                         sg_dtype_name(sg_dtype_of(p)));
            return -1;
        }
        if (!sg_grad_data(p))
            continue;
        param_state *st = state_of(opt, "optim_step", p, i);
        if (!st)
            return -1;
        if (st->visit == visit) {
            sg_set_error("optim_step: %s params[%d] appears twice in the list", name, i);
            return -1;
        }
        st->visit = visit;
    }

    /* pass 2: update */
    const float wd = opt->o.weight_decay;
    const bool decoupled = opt->o.decoupled_weight_decay;
    for (int i = 0; i < n; i++) {
        sg_tensor *p = params[i];
        const float *g = sg_grad_data(p);
        if (!g)
            continue;
        param_state *st = find_state(opt, p);
        const size_t size = st->size;
        st->t++;
        const sg_optim_opts *o = &opt->o;
        sg_kupdate a = {
            .lr = o->lr,
            .l2 = decoupled ? 0.0f : wd,
            .shrink = decoupled ? 1.0f - opt->o.lr * wd : 1.0f,
            .t = st->t,
            .momentum = o->momentum,
            .dampening = o->dampening,
            .nesterov = row->nesterov,
            .alpha = o->alpha,
            .beta1 = o->beta1,
            .beta2 = o->beta2,
            .eps = o->eps,
            .lr_decay = o->lr_decay,
            .n = size,
            .w = sg_data(p),
            .g = g,
            .s0 = row->n_buffers > 0 ? st->buf : NULL,
            .s1 = row->n_buffers > 1 ? st->buf + size : NULL,
        };
        run_kernel(update_kernel(row), &a);
    }
    opt->steps++;
    return 0;
}

void sg_optim_zero_grad(sg_tensor *const *params, int n)
{
    if (!params)
        return;
    for (int i = 0; i < n; i++)
        sg_zero_grad(params[i]);
}

float sg_optim_lr(const sg_optim *opt)
{
    if (!opt) {
        sg_set_error("optim_lr: optimizer is NULL");
        return -1.0f;
    }
    return opt->o.lr;
}

int sg_optim_set_lr(sg_optim *opt, float lr)
{
    if (!opt) {
        sg_set_error("optim_set_lr: optimizer is NULL");
        return -1;
    }
    if (!(lr >= 0.0f) || !isfinite(lr)) {
        sg_set_error("optim_set_lr: %s learning rate %g must be >= 0 and finite (kept %g)",
                     kinds[opt->o.kind].name, (double)lr, (double)opt->o.lr);
        return -1;
    }
    opt->o.lr = lr;
    return 0;
}

const sg_optim_opts *sg_optim_options(const sg_optim *opt)
{
    if (!opt) {
        sg_set_error("optim_options: optimizer is NULL");
        return NULL;
    }
    return &opt->o;
}

long sg_optim_steps(const sg_optim *opt)
{
    if (!opt) {
        sg_set_error("optim_steps: optimizer is NULL");
        return -1;
    }
    return opt->steps;
}

long sg_optim_param_steps(const sg_optim *opt, const sg_tensor *p)
{
    if (!opt || !p) {
        sg_set_error("optim_param_steps: %s is NULL", opt ? "parameter" : "optimizer");
        return -1;
    }
    const param_state *st = find_state(opt, p);
    return st ? st->t : 0;
}

const float *sg_optim_state(const sg_optim *opt, const sg_tensor *p, int buffer)
{
    if (!opt || !p) {
        sg_set_error("optim_state: %s is NULL", opt ? "parameter" : "optimizer");
        return NULL;
    }
    if (buffer < 0 || buffer >= kinds[opt->o.kind].n_buffers)
        return NULL;
    const param_state *st = find_state(opt, p);
    return st ? st->buf + (size_t)buffer * st->size : NULL;
}

int sg_optim_num_buffers(const sg_optim *opt)
{
    if (!opt) {
        sg_set_error("optim_num_buffers: optimizer is NULL");
        return -1;
    }
    return kinds[opt->o.kind].n_buffers;
}

const char *sg_optim_state_name(const sg_optim *opt, int buffer)
{
    if (!opt) {
        sg_set_error("optim_state_name: optimizer is NULL");
        return NULL;
    }
    const kind_row *row = &kinds[opt->o.kind];
    if (buffer < 0 || buffer >= row->n_buffers)
        return NULL;
    return row->state_names[buffer];
}

int sg_optim_set_state(sg_optim *opt, sg_tensor *p, long t, const float *const *buffers)
{
    if (!opt || !p) {
        sg_set_error("optim_set_state: %s is NULL", opt ? "parameter" : "optimizer");
        return -1;
    }
    const kind_row *row = &kinds[opt->o.kind];
    if (t < 0) {
        sg_set_error("optim_set_state: %s update count %ld must be >= 0", row->name, t);
        return -1;
    }
    for (int b = 0; b < row->n_buffers; b++) {
        if (!buffers || !buffers[b]) {
            sg_set_error("optim_set_state: %s needs %d state buffers, buffer %d is NULL", row->name,
                         row->n_buffers, b);
            return -1;
        }
    }
    param_state *st = state_of(opt, "optim_set_state", p, -1);
    if (!st)
        return -1;
    st->t = t;
    for (int b = 0; b < row->n_buffers; b++)
        memcpy(st->buf + (size_t)b * st->size, buffers[b], st->size * sizeof(float));
    return 0;
}

size_t sg_optim_state_bytes(const sg_optim *opt)
{
    if (!opt) {
        sg_set_error("optim_state_bytes: optimizer is NULL");
        return 0;
    }
    return opt->state_bytes;
}

int sg_optim_forget(sg_optim *opt, const sg_tensor *p)
{
    if (!opt || !p) {
        sg_set_error("optim_forget: %s is NULL", opt ? "parameter" : "optimizer");
        return -1;
    }
    param_state *st = find_state(opt, p);
    if (!st)
        return 0;
    HASH_DEL(opt->table, st);
    opt->state_bytes -= (size_t)kinds[opt->o.kind].n_buffers * st->size * sizeof(float);
    free(st);
    return 1;
}
