/*
 * backward.c — reverse-mode differentiation: the walk.
 *
 * sg_backward(y) is micrograd's backward:
 *
 *   check  y requires a gradient and is a scalar (or a seed dy is given);
 *   order  the nodes y depends on, inputs first (sg_topo, an explicit
 *          stack: a chain of 100,000 nodes must not overflow the C stack);
 *   walk   seed y.grad = dy (1 for a scalar), then visit the nodes in
 *          reverse: each node's local derivative, from the op table and
 *          written with public ops, turns its gradient into its inputs'
 *          gradients, which are added into their .grad;
 *   finish add back what the nodes held before the pass (sg_grad_of instead
 *          hands out the gradients asked for and restores every .grad).
 *
 * Where gradients live — adopting a fresh one, borrowing dy when an op passes
 * it straight through, copying, freeing, fixing up outer tensors at scope end
 * — is grad_buffer.c's business; this file reaches .grad only through its
 * calls (sg_grad_*), and reads t->grad as the dy it hands to t's backward.
 *
 * Without retain_graph, a visited node is marked released: a second backward
 * through it fails with a message, as in PyTorch. As there, retain_graph
 * defaults to create_graph (a create_graph pass's gradients are graphs
 * over this one, which a second backward goes through); sg_grad_of keeps
 * the graph; release_graph asks for release in either.
 */
#include "sg_internal.h"

static _Thread_local uint32_t epoch;
static _Thread_local sg_tensor **order_buf, **stack_buf;
static _Thread_local int *child_buf;
static _Thread_local size_t buf_cap;

static bool grow(size_t need)
{
    if (need <= buf_cap)
        return true;
    size_t cap = buf_cap ? buf_cap : 1024;
    while (cap < need)
        cap *= 2;
    sg_tensor **o = realloc(order_buf, cap * sizeof *o);
    if (o)
        order_buf = o;
    sg_tensor **s = realloc(stack_buf, cap * sizeof *s);
    if (s)
        stack_buf = s;
    int *c = realloc(child_buf, cap * sizeof *c);
    if (c)
        child_buf = c;
    if (!o || !s || !c)
        return false;
    buf_cap = cap;
    return true;
}

void sg_backward_release_buffers(void);
void sg_backward_release_buffers(void)
{
    free(order_buf);
    free(stack_buf);
    free(child_buf);
    order_buf = stack_buf = NULL;
    child_buf = NULL;
    buf_cap = 0;
}

int sg_topo(sg_tensor *y, bool all, sg_tensor ***order)
{
    if (!grow(64))
        return -1;
    epoch++;
    size_t n_order = 0, top = 0;
    stack_buf[top] = y;
    child_buf[top++] = 0;
    y->mark = epoch;
    while (top) {
        sg_tensor *t = stack_buf[top - 1];
        int c = child_buf[top - 1];
        if (c < t->n_in) {
            child_buf[top - 1]++;
            sg_tensor *in = t->in[c];
            if (in->mark != epoch && (all || in->requires_grad)) {
                in->mark = epoch;
                if (!grow(top + 1))
                    return -1;
                stack_buf[top] = in;
                child_buf[top++] = 0;
            }
        } else {
            top--;
            if (!grow(n_order + 1))
                return -1;
            order_buf[n_order++] = t;
        }
    }
    *order = order_buf;
    return (int)n_order;
}

static void trace_values(FILE *f, const sg_tensor *t)
{
    size_t n = t->size < 6 ? t->size : 6;
    fputs(t->size == 1 ? "" : "[", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%.6g", i ? " " : "", sg_value_at(t, i));
    fputs(t->size > n ? " ...]" : t->size == 1 ? "" : "]", f);
}

static void trace_node(FILE *f, const sg_tensor *t)
{
    if (t->name[0])
        fprintf(f, "%s", t->name);
    else
        fprintf(f, "#%u", (unsigned)t->id);
}

/* One line per node for learners: what arrives, what each input receives. */
static void trace_step(FILE *f, const sg_tensor *t, sg_tensor *const *gx)
{
    fprintf(f, "backward %-8s ", sg_node_op_name(t));
    trace_node(f, t);
    fputs(": dout = ", f);
    trace_values(f, t->grad);
    for (int k = 0; k < t->n_in; k++) {
        if (!gx[k])
            continue;
        fputs(k ? ", d " : "  ->  d ", f);
        trace_node(f, t->in[k]);
        fputs(" += ", f);
        trace_values(f, gx[k]);
    }
    fputc('\n', f);
}

/* The checks before any work: y and the seed are usable, y's gradient is
 * defined, and a pass whose gradients live in a scope has one. */
static int check(const char *fn, sg_tensor *y, const sg_backward_opts *opts, bool grad_of)
{
    if (!y) {
        if (!sg_has_error())
            sg_set_error("backward: NULL output");
        return -1;
    }
    if (!sg_check_tensor(fn, y) || (opts->grad && !sg_check_tensor(fn, opts->grad)))
        return -1;
    char by[96], bg[96];
    if (!y->requires_grad) {
        sg_set_error("backward: the output %s does not require a gradient (mark inputs with "
                     "sg_param, and do not compute it in no-grad mode)", sg_shape_str(y, by, sizeof by));
        return -1;
    }
    if (!opts->grad && y->size != 1) {
        sg_set_error("backward: output %s is not a scalar; pass a gradient of the same shape",
                     sg_shape_str(y, by, sizeof by));
        return -1;
    }
    if (opts->grad && !sg_same_shape(opts->grad, y)) {
        sg_set_error("backward: gradient %s does not match output %s", sg_shape_str(opts->grad, bg, sizeof bg),
                     sg_shape_str(y, by, sizeof by));
        return -1;
    }
    if ((opts->create_graph || grad_of) && sg_scope_depth() == 0) {
        sg_set_error("backward: %s needs an open scope (its gradients live in it)",
                     opts->create_graph ? "create_graph" : "grad_of");
        return -1;
    }
    return 0;
}

/* The nodes y depends on that require a gradient, inputs first; -1 if one
 * was released by an earlier backward. order[] stays valid through the
 * pass: backward ops never walk the graph. */
static int order_graph(sg_tensor *y, sg_tensor ***order)
{
    int n = sg_topo(y, false, order);
    if (n < 0) {
        char by[96];
        sg_set_error("backward: out of memory ordering %s graph", sg_shape_str(y, by, sizeof by));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if ((*order)[i]->released) {
            const char *op = sg_node_op_name((*order)[i]);
            sg_set_error("backward: the graph through %s %s node was already released by an earlier "
                         "backward; pass retain_graph (or create_graph) to go through it twice", sg_article(op), op);
            return -1;
        }
    }
    return n;
}

/* Visit the nodes outputs first: each node's local derivative turns its
 * gradient dy into its inputs' gradients dx, which are added into their
 * .grad. When a node is visited, every node that uses it has been, so its
 * gradient is complete. */
static int walk_nodes(sg_grad_pass *pass, sg_tensor *const *order, int n, const sg_backward_opts *opts,
                      bool release, const sg_backward_observer *obs)
{
    for (int i = n - 1; i >= 0; i--) {
        sg_tensor *t = order[i];
        if (t->op == SG_OP_LEAF || !t->grad)
            continue; /* a leaf, or no gradient reached t */
        sg_tensor **dx = sg_grad_slots(pass, t);
        if (!dx)
            return -1;
        sg_op_table[t->op].backward(t, t->grad, dx); /* dx[k] = dL/dt * dt/dx_k (chain rule) */
        if (opts->trace)
            trace_step(opts->trace, t, dx);
        if (obs && obs->step(obs->ctx, t, dx, false) < 0)
            return -1;
        int rc = sg_grad_accumulate_inputs(pass, t, dx); /* x_k.grad += dx[k] */
        if (release)
            t->released = true;
        if (rc < 0 || (obs && obs->step(obs->ctx, t, dx, true) < 0))
            return -1;
    }
    return 0;
}

/* Seed y's gradient, then walk the nodes. */
static int walk(sg_grad_pass *pass, sg_tensor *const *order, int n, sg_tensor *y, const sg_backward_opts *opts,
                bool release, const sg_backward_observer *obs)
{
    sg_tensor *seed = opts->grad ? opts->grad : sg_ones_like(y); /* dy/dy = 1 */
    if (!seed || sg_grad_seed(pass, y, seed) < 0)
        return -1;
    /* products may add into a parameter's .grad in place where no one needs
     * each contribution apart (grad_buffer.c); restored for a nested pass
     * (a custom op's backward may run one) */
    const bool outer_sink = sg_tl_grad_sink;
    sg_tl_grad_sink = !pass->create && !pass->local && !opts->trace && !obs && !sg_tl_nan_check;
    int rc = walk_nodes(pass, order, n, opts, release, obs);
    sg_tl_grad_sink = outer_sink;
    return rc;
}

/* sg_grad_of's answers: each x's gradient from this pass, zeros if the pass
 * did not reach x, all NULL after a failure. */
static void answer(sg_tensor *const *xs, int nx, sg_tensor **grads, bool failed)
{
    for (int j = 0; j < nx; j++) {
        bool reached = xs[j]->requires_grad && xs[j]->mark == epoch && xs[j]->grad;
        grads[j] = failed ? NULL : reached ? xs[j]->grad : sg_zeros_like(xs[j]);
    }
}

/* The common engine of sg_backward and sg_grad_of (xs given): check, order,
 * walk, finish. */
static int run_backward(sg_tensor *y, const sg_backward_opts *opts, sg_tensor *const *xs, int nx,
                        sg_tensor **grads, const sg_backward_observer *obs)
{
    static const sg_backward_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    bool local = xs != NULL || obs != NULL; /* every .grad restored at the end */
    if (check(obs ? obs->fn : xs ? "grad_of" : "backward", y, opts, local) < 0)
        return -1;
    if (opts->retain_graph && opts->release_graph) {
        sg_set_error("%s: retain_graph and release_graph are both set", xs ? "grad_of" : "backward");
        return -1;
    }
    sg_tensor **order;
    int n = order_graph(y, &order);
    if (n < 0)
        return -1;
    bool create = opts->create_graph;
    bool opened = !create && sg_scope_depth() == 0; /* a scope for the temporaries */
    if (opened)
        sg_scope_begin();
    sg_grad_pass pass;
    int rc = sg_grad_pass_begin(&pass, order, n, create, local);
    if (rc == 0) {
        bool prev_mode = sg_set_grad_enabled(create); /* create_graph records the gradients */
        /* retain_graph defaults to create_graph (PyTorch); sg_grad_of and
         * the HTML writer's observed pass keep the graph; release_graph asks
         * for release in either */
        bool release = !obs && (opts->release_graph || (!xs && !opts->retain_graph && !create));
        rc = walk(&pass, order, n, y, opts, release, obs);
        if (xs)
            answer(xs, nx, grads, rc != 0);
        if (sg_grad_pass_end(&pass) < 0)
            rc = -1;
        sg_set_grad_enabled(prev_mode);
    }
    if (opened)
        sg_scope_end();
    return rc;
}

int sg_backward(sg_tensor *y, const sg_backward_opts *opts)
{
    return run_backward(y, opts, NULL, 0, NULL, NULL);
}

int sg_grad_of(sg_tensor *y, sg_tensor *const *xs, int n, sg_tensor **grads, const sg_backward_opts *opts)
{
    if (!xs || !grads || n < 1) {
        sg_set_error("grad_of: needs inputs and an output array");
        return -1;
    }
    for (int j = 0; j < n; j++) {
        if (!xs[j]) {
            if (!sg_has_error())
                sg_set_error("grad_of: input %d is NULL", j);
            return -1;
        }
        if (!sg_check_tensor("grad_of", xs[j]))
            return -1;
    }
    return run_backward(y, opts, xs, n, grads, NULL);
}

int sg_backward_observed(sg_tensor *y, const sg_backward_opts *opts, const sg_backward_observer *obs)
{
    return run_backward(y, opts, NULL, 0, NULL, obs);
}
