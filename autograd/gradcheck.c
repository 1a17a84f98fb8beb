/*
 * gradcheck.c — compare backward's gradients with central differences.
 *
 * The function's output y is reduced to a scalar L = sum(y * r) with fixed
 * random weights r (so every output element matters and errors cannot cancel
 * by symmetry). The analytic gradient comes from sg_grad_of; the numeric one
 * perturbs each input element by ±eps and evaluates L in float64, dividing
 * by the perturbation actually stored (in float32, x ± eps is rounded).
 *
 * Precision: when every input that requires a gradient is float64, the
 * function runs in float64 and the defaults are PyTorch's gradcheck ones
 * (eps 1e-6, atol 1e-5, rtol 1e-3); otherwise float32's (eps 1e-3, atol
 * 1e-3, rtol 1e-2), which is what float32 rounding allows: a central
 * difference of step h has rounding error about ulp(f)/h.
 *
 * gradgradcheck checks the gradient itself: it runs gradcheck on
 *   G(x) = sum_i sum(dL/dx_i * v_i)
 * whose backward goes through the recorded (create_graph) backward pass.
 */
#include "sg_internal.h"

#include <math.h>

/* Fixed random weights in [0.5, 1.5) of y's shape and dtype. */
static sg_tensor *weights_like(const sg_tensor *y, uint64_t seed)
{
    sg_rng rng;
    sg_rng_seed(&rng, seed);
    sg_dtype prev = sg_set_default_dtype(y->dtype);
    sg_tensor *r = sg_uniform(&rng, 0.5, 1.5, y->ndim, y->shape);
    sg_set_default_dtype(prev);
    return r;
}

/* The seed of the reduction: 1 for a one-element y, else weights. */
static sg_tensor *seed_like(const sg_tensor *y)
{
    return y->size == 1 ? sg_ones_like(y) : weights_like(y, 20240611);
}

static double weighted_sum(const sg_tensor *y, const sg_tensor *r)
{
    double acc = 0.0;
    for (size_t i = 0; i < y->size; i++)
        acc += sg_value_at(y, i) * sg_value_at(r, i);
    return acc;
}

/* L(inputs) in no-grad mode, inside its own scope. NAN on failure. */
static double eval_loss(sg_fn f, sg_tensor *const *inputs, int n, void *ctx, const sg_tensor *r)
{
    sg_scope_begin();
    bool prev = sg_set_grad_enabled(false);
    sg_tensor *y = f(inputs, n, ctx);
    double v = y && sg_same_shape(y, r) ? weighted_sum(y, r) : NAN;
    sg_set_grad_enabled(prev);
    sg_scope_end();
    return v;
}

static void fill_defaults(sg_gradcheck_opts *o, const sg_gradcheck_opts *user, bool f64)
{
    o->eps = user && user->eps > 0 ? user->eps : f64 ? 1e-6 : 1e-3;
    o->atol = user && user->atol > 0 ? user->atol : f64 ? 1e-5 : 1e-3;
    o->rtol = user && user->rtol > 0 ? user->rtol : f64 ? 1e-3 : 1e-2;
    o->verbose = user && user->verbose;
}

/* x[j] = v + d as x's dtype stores it; returns the stored value. */
static double perturb(sg_tensor *x, size_t j, double v, double d)
{
    if (x->dtype == SG_FLOAT64)
        return x->data64[j] = v + d;
    return x->data[j] = (float)(v + d);
}

bool sg_gradcheck(sg_fn f, sg_tensor *const *inputs, int n, void *ctx, const sg_gradcheck_opts *user,
                  sg_gradcheck_report *report)
{
    sg_gradcheck_report local;
    sg_gradcheck_report *rep = report ? report : &local;
    memset(rep, 0, sizeof *rep);
    rep->input = -1;
    if (!f || !inputs || n < 1) {
        snprintf(rep->message, sizeof rep->message, "gradcheck: needs a function and inputs");
        sg_set_error("%s", rep->message);
        return false;
    }
    for (int i = 0; i < n; i++)
        if (!sg_check_tensor("gradcheck", inputs[i])) {
            snprintf(rep->message, sizeof rep->message, "%s (input %d)", sg_last_error(), i);
            return false;
        }
    bool f64 = true; /* every input that requires a gradient is float64 */
    for (int i = 0; i < n; i++)
        if (inputs[i] && inputs[i]->requires_grad && inputs[i]->dtype != SG_FLOAT64)
            f64 = false;
    sg_gradcheck_opts o;
    fill_defaults(&o, user, f64);
    sg_scope_begin();
    bool ok = true;
    sg_tensor **grads = sg_scope_alloc((size_t)n * sizeof *grads);
    sg_tensor **wrt = sg_scope_alloc((size_t)n * sizeof *wrt);
    int *which = sg_scope_alloc((size_t)n * sizeof *which);
    int nw = 0;
    for (int i = 0; grads && wrt && which && i < n; i++) {
        if (inputs[i] && inputs[i]->requires_grad) {
            which[nw] = i;
            wrt[nw++] = inputs[i];
        }
    }
    sg_tensor *y = grads && nw ? f(inputs, n, ctx) : NULL;
    sg_tensor *r = y ? seed_like(y) : NULL;
    if (!y || !r || !y->requires_grad) {
        snprintf(rep->message, sizeof rep->message, "gradcheck: %s",
                 !nw ? "no input requires a gradient"
                 : !y ? (sg_has_error() ? sg_last_error() : "the function returned NULL")
                      : "the output does not depend on any input that requires a gradient");
        sg_set_error("%s", rep->message);
        sg_scope_end();
        return false;
    }
    sg_backward_opts bo = {.grad = r, .retain_graph = false, .create_graph = false};
    if (sg_grad_of(y, wrt, nw, grads, &bo) < 0) {
        snprintf(rep->message, sizeof rep->message, "gradcheck: backward failed: %s", sg_last_error());
        sg_scope_end();
        return false;
    }
    double worst_ratio = -1.0;
    for (int k = 0; k < nw && ok; k++) {
        sg_tensor *x = wrt[k];
        double input_max = 0.0;
        for (size_t j = 0; j < x->size; j++) {
            double v = sg_value_at(x, j);
            double xp = perturb(x, j, v, o.eps);
            double lp = eval_loss(f, inputs, n, ctx, r);
            double xm = perturb(x, j, v, -o.eps);
            double lm = eval_loss(f, inputs, n, ctx, r);
            perturb(x, j, v, 0.0);
            double num = (lp - lm) / (xp - xm);
            double ana = sg_value_at(grads[k], j);
            double err = fabs(ana - num), tol = o.atol + o.rtol * fabs(num);
            if (isnan(num)) {
                snprintf(rep->message, sizeof rep->message,
                         "gradcheck: the function failed or gave NaN at input %d index %zu", which[k], j);
                ok = false;
                break;
            }
            double ratio = err / tol;
            if (!(ratio <= worst_ratio) || isnan(ana)) {
                worst_ratio = isnan(ana) ? INFINITY : ratio;
                rep->input = which[k];
                rep->index = j;
                rep->analytic = ana;
                rep->numeric = num;
            }
            if (err > rep->max_abs_err || isnan(ana))
                rep->max_abs_err = isnan(ana) ? INFINITY : err;
            if (err > input_max)
                input_max = err;
        }
        if (o.verbose)
            printf("gradcheck: input %d %s max |analytic - numeric| = %.3g\n", which[k],
                   sg_shape_str(x, (char[96]){0}, 96), input_max);
    }
    if (ok) {
        ok = worst_ratio <= 1.0;
        snprintf(rep->message, sizeof rep->message,
                 "gradcheck %s: worst at input %d index %zu: analytic %.6g vs numeric %.6g "
                 "(|diff| %.3g, tolerance %.3g + %.3g*|numeric|)",
                 ok ? "passed" : "FAILED", rep->input, rep->index, rep->analytic, rep->numeric,
                 fabs(rep->analytic - rep->numeric), o.atol, o.rtol);
    }
    rep->ok = ok;
    sg_scope_end();
    return ok;
}

/* ---- second order ---- */

typedef struct gg_ctx {
    sg_fn f;
    void *ctx;
} gg_ctx;

static sg_tensor *grad_dot(sg_tensor *const *inputs, int n, void *vctx)
{
    gg_ctx *c = vctx;
    bool was = sg_set_grad_enabled(true); /* the inner backward needs a graph */
    sg_tensor *y = c->f(inputs, n, c->ctx);
    sg_tensor *r = y ? seed_like(y) : NULL;
    sg_tensor *wrt[SG_MAX_DIMS * 4], *g[SG_MAX_DIMS * 4];
    int nw = 0;
    for (int i = 0; i < n && nw < (int)(sizeof wrt / sizeof wrt[0]); i++)
        if (inputs[i]->requires_grad)
            wrt[nw++] = inputs[i];
    sg_tensor *total = NULL;
    if (y && r && y->requires_grad) {
        sg_backward_opts bo = {.grad = r, .create_graph = true};
        if (sg_grad_of(y, wrt, nw, g, &bo) == 0) {
            for (int k = 0; k < nw; k++) {
                sg_tensor *v = weights_like(wrt[k], 777 + (uint64_t)k);
                sg_tensor *term = sg_sum_all(sg_mul(g[k], v));
                total = total ? sg_add(total, term) : term;
            }
        }
    }
    sg_set_grad_enabled(was);
    if (total && !was) /* evaluation in no-grad mode: drop the history */
        total = sg_detach(total);
    return total;
}

bool sg_gradgradcheck(sg_fn f, sg_tensor *const *inputs, int n, void *ctx, const sg_gradcheck_opts *opts,
                      sg_gradcheck_report *report)
{
    gg_ctx c = {f, ctx};
    return sg_gradcheck(grad_dot, inputs, n, &c, opts, report);
}
