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
 * One table row per kind — {name, number of state buffers} — in the manner
 * of the engine's op table; a compile-time check keeps it in step with the
 * enum. The update loops are the engine's per-level kernels
 * (autograd/kernels/optim_update.c), chosen by update_kernel().
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

/* The update loops are per-level kernels (autograd/kernels/optim_update.c):
 * each updates elements [lo, hi) of w in place from g and the state buffers
 * (the step splits big parameters across the engine's threads; the kernels
 * are elementwise, so any split gives the same numbers). Weight decay is
 * folded in per element: gi = g + l2·w (L2), w ← shrink·w (decoupled);
 * exactly one of l2 = 0, shrink = 1 holds unless λ = 0. */
typedef void (*update_fn)(const sg_kupdate *a, size_t lo, size_t hi);

static const struct kind_info {
    const char *name;
    int n_buffers;
} kinds[] = {
    [SG_OPTIM_SGD] = {"sgd", 0},
    [SG_OPTIM_MOMENTUM] = {"momentum", 1},
    [SG_OPTIM_NESTEROV] = {"nesterov", 1},
    [SG_OPTIM_ADAGRAD] = {"adagrad", 1},
    [SG_OPTIM_RMSPROP] = {"rmsprop", 1},
    [SG_OPTIM_ADAM] = {"adam", 2},
    [SG_OPTIM_ADAMW] = {"adamw", 2},
};
static_assert(sizeof kinds / sizeof kinds[0] == SG_OPTIM_COUNT,
              "optim: one row of kinds[] per sg_optim_kind");

/* kind's update kernel in the current level's table (which sg_set_isa()
 * may change, so it is looked up at each step, not stored in kinds[]) */
static update_fn update_kernel(sg_optim_kind kind)
{
    switch (kind) {
    case SG_OPTIM_SGD:
        return sg_kern->update_sgd;
    case SG_OPTIM_MOMENTUM:
    case SG_OPTIM_NESTEROV:
        return sg_kern->update_momentum;
    case SG_OPTIM_ADAGRAD:
        return sg_kern->update_adagrad;
    case SG_OPTIM_RMSPROP:
        return sg_kern->update_rmsprop;
    case SG_OPTIM_ADAM:
    case SG_OPTIM_ADAMW:
        return sg_kern->update_adam;
    default:
        break;
    }
    assert(!"optim: update_kernel: a kind without a kernel (check_opts lets only valid kinds in)");
    return sg_kern->update_sgd;
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

static bool kind_ok(sg_optim_kind k) { return (int)k >= 0 && (int)k < SG_OPTIM_COUNT; }

const char *sg_optim_kind_name(sg_optim_kind kind) { return kind_ok(kind) ? kinds[kind].name : "?"; }

sg_optim_opts sg_optim_defaults(sg_optim_kind kind)
{
    sg_optim_opts o = {
        .kind = kind,
        .lr = 0.01f,
        .momentum = 0.0f,
        .dampening = 0.0f,
        .alpha = 0.99f,
        .beta1 = 0.9f,
        .beta2 = 0.999f,
        .eps = 1e-8f,
        .lr_decay = 0.0f,
        .initial_accumulator = 0.0f,
        .weight_decay = 0.0f,
        .decoupled_weight_decay = false,
    };
    switch (kind) {
    case SG_OPTIM_MOMENTUM:
    case SG_OPTIM_NESTEROV:
        o.momentum = 0.9f;
        break;
    case SG_OPTIM_ADAGRAD:
        o.eps = 1e-10f;
        break;
    case SG_OPTIM_ADAM:
        o.lr = 0.001f;
        break;
    case SG_OPTIM_ADAMW:
        o.lr = 0.001f;
        o.weight_decay = 0.01f;
        o.decoupled_weight_decay = true;
        break;
    default:
        break;
    }
    return o;
}

/* "in [lo, hi)" (hi_open) or "in [lo, hi]"; false for NaN */
static bool in_range(float x, float lo, float hi, bool hi_open)
{
    return x >= lo && (hi_open ? x < hi : x <= hi);
}

/* Check o; on a bad value record "<fn>: <what>" and return false. */
static bool check_opts(const char *fn, const sg_optim_opts *o)
{
    if (!kind_ok(o->kind)) {
        sg_set_error("%s: unknown optimizer kind %d (valid: 0..%d)", fn, (int)o->kind,
                     SG_OPTIM_COUNT - 1);
        return false;
    }
    const char *name = kinds[o->kind].name;
    if (!(o->lr >= 0.0f) || !isfinite(o->lr)) {
        sg_set_error("%s: %s learning rate %g must be >= 0 and finite", fn, name, (double)o->lr);
        return false;
    }
    if (!(o->weight_decay >= 0.0f) || !isfinite(o->weight_decay)) {
        sg_set_error("%s: %s weight_decay %g must be >= 0 and finite", fn, name,
                     (double)o->weight_decay);
        return false;
    }
    switch (o->kind) {
    case SG_OPTIM_MOMENTUM:
    case SG_OPTIM_NESTEROV:
        if (!in_range(o->momentum, 0.0f, 1.0f, true)) {
            sg_set_error("%s: %s momentum %g is outside [0, 1)", fn, name, (double)o->momentum);
            return false;
        }
        if (!in_range(o->dampening, 0.0f, 1.0f, false)) {
            sg_set_error("%s: %s dampening %g is outside [0, 1]", fn, name, (double)o->dampening);
            return false;
        }
        if (o->kind == SG_OPTIM_NESTEROV && (o->momentum == 0.0f || o->dampening != 0.0f)) {
            sg_set_error("%s: nesterov needs momentum > 0 and dampening 0 (got %g and %g)", fn,
                         (double)o->momentum, (double)o->dampening);
            return false;
        }
        break;
    case SG_OPTIM_ADAGRAD:
        if (!(o->lr_decay >= 0.0f) || !isfinite(o->lr_decay)) {
            sg_set_error("%s: adagrad lr_decay %g must be >= 0 and finite", fn, (double)o->lr_decay);
            return false;
        }
        if (!(o->initial_accumulator >= 0.0f) || !isfinite(o->initial_accumulator)) {
            sg_set_error("%s: adagrad initial_accumulator %g must be >= 0 and finite", fn,
                         (double)o->initial_accumulator);
            return false;
        }
        break;
    case SG_OPTIM_RMSPROP:
        if (!in_range(o->alpha, 0.0f, 1.0f, true)) {
            sg_set_error("%s: rmsprop alpha %g is outside [0, 1)", fn, (double)o->alpha);
            return false;
        }
        break;
    case SG_OPTIM_ADAM:
    case SG_OPTIM_ADAMW:
        if (!in_range(o->beta1, 0.0f, 1.0f, true)) {
            sg_set_error("%s: %s beta1 %g is outside [0, 1)", fn, name, (double)o->beta1);
            return false;
        }
        if (!in_range(o->beta2, 0.0f, 1.0f, true)) {
            sg_set_error("%s: %s beta2 %g is outside [0, 1)", fn, name, (double)o->beta2);
            return false;
        }
        break;
    default:
        break;
    }
    if (o->kind != SG_OPTIM_SGD && o->kind != SG_OPTIM_MOMENTUM && o->kind != SG_OPTIM_NESTEROV &&
        (!(o->eps >= 0.0f) || !isfinite(o->eps))) {
        sg_set_error("%s: %s eps %g must be >= 0 and finite", fn, name, (double)o->eps);
        return false;
    }
    return true;
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
    if (o->kind == SG_OPTIM_ADAMW)
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

/* The state of p, made zeroed (AdaGrad: filled with initial_accumulator) if
 * p has none; NULL with a message on failure. */
static param_state *state_of(sg_optim *opt, sg_tensor *p, int index)
{
    const size_t size = sg_size(p);
    const size_t nbuf = (size_t)kinds[opt->o.kind].n_buffers;
    param_state *st = find_state(opt, p);
    if (st) {
        if (st->size != size) {
            char b[96];
            sg_set_error("optim_step: params[%d] %s has %zu elements but the %s state kept for its "
                         "address has %zu (a freed parameter's address reused? call "
                         "sg_optim_forget before freeing a parameter)",
                         index, sg_shape_str(p, b, sizeof b), size, kinds[opt->o.kind].name,
                         st->size);
            return NULL;
        }
        return st;
    }
    if (nbuf && size > (SIZE_MAX - sizeof *st) / sizeof(float) / nbuf) {
        sg_set_error("optim_step: params[%d] is too large for %s state", index,
                     kinds[opt->o.kind].name);
        return NULL;
    }
    const size_t bytes = nbuf * size * sizeof(float);
    st = calloc(1, sizeof *st + bytes);
    if (!st) {
        sg_set_error("optim_step: out of memory for %zu bytes of %s state (params[%d])", bytes,
                     kinds[opt->o.kind].name, index);
        return NULL;
    }
    st->key = p;
    st->size = size;
    if (opt->o.kind == SG_OPTIM_ADAGRAD && opt->o.initial_accumulator != 0.0f)
        for (size_t i = 0; i < size; i++)
            st->buf[i] = opt->o.initial_accumulator;
    HASH_ADD_PTR(opt->table, key, st);
    if (!st->hh.tbl) {
        free(st);
        sg_set_error("optim_step: out of memory for the state table (params[%d])", index);
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
    const char *name = kinds[opt->o.kind].name;
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
        if (!sg_grad_data(p))
            continue;
        param_state *st = state_of(opt, p, i);
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
            .nesterov = o->kind == SG_OPTIM_NESTEROV,
            .alpha = o->alpha,
            .beta1 = o->beta1,
            .beta2 = o->beta2,
            .eps = o->eps,
            .lr_decay = o->lr_decay,
            .n = size,
            .w = sg_data(p),
            .g = g,
            .s0 = kinds[opt->o.kind].n_buffers > 0 ? st->buf : NULL,
            .s1 = kinds[opt->o.kind].n_buffers > 1 ? st->buf + size : NULL,
        };
        run_kernel(update_kernel(opt->o.kind), &a);
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
