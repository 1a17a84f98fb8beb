/*
 * backward.c — reverse-mode differentiation.
 *
 * sg_backward(y): order the nodes reachable from y topologically with an
 * explicit stack (a chain of 100,000 nodes must not overflow the C stack),
 * seed dy, and visit the nodes in reverse; each node's local derivative (from
 * the op table, written with public ops) yields its inputs' gradients, which
 * are added into their .grad.
 *
 * Gradient buffers: without create_graph, a tensor's .grad is a buffer owned
 * by that tensor alone (grad_owned), in the tensor's own scope, so later
 * contributions are added in place and nothing aliases it. A freshly computed
 * gradient in the right scope is adopted instead of copied. With create_graph
 * the .grad is the recorded gradient node itself (never written in place).
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

/* A gradient computed by this node's backward that nothing else refers to. */
static bool is_fresh(const sg_tensor *g, uint32_t first_id, sg_tensor *const *gx, int i)
{
    if (g->id < first_id || g->is_view)
        return false;
    for (int j = 0; j < i; j++)
        if (gx[j] == g)
            return false;
    return true;
}

/* set by sg_grad_of: gradient buffers go to the current scope, not x's own */
static _Thread_local bool grads_local;

/* True if g's values lie inside t's gradient buffer: g is t's gradient
 * itself or a view of it (what add, reshape and add_scalar pass back). t's
 * backward has run, so nothing writes that buffer again in this pass. */
static bool within_grad_of(const sg_tensor *g, const sg_tensor *t)
{
    const sg_tensor *tg = t->grad;
    return tg && g->data >= tg->data && g->data + g->size <= tg->data + tg->size;
}

/* Add g into x's gradient.
 *   fresh: g was just made by the node's backward and nothing else refers to
 *          it: x adopts it as its own buffer (later contributions add in place).
 *   alias: g is (a view of) the gradient of a node already visited: an
 *          intermediate x refers to it without a copy, as a buffer it does not
 *          own; a later contribution makes x a buffer of its own. Leaves
 *          always get a buffer of their own (optimizers write into it). */
static int accumulate(sg_tensor *x, sg_tensor *g, bool create, bool fresh, bool alias)
{
    sg_arena *home = grads_local ? sg_current_arena() : x->arena;
    if (!sg_same_shape(x, g)) {
        char bx[96], bg[96];
        sg_set_error("backward: gradient %s does not match %s input %s", sg_shape_str(g, bg, sizeof bg),
                     sg_op_table[x->op].name, sg_shape_str(x, bx, sizeof bx));
        return -1;
    }
    if (create) {
        if (x->grad && x->grad_owned && !x->grad->arena) {
            /* a persistent tensor's heap buffer from an earlier backward: the
             * recorded sum needs its values, in the scope, not the buffer */
            sg_tensor *old = sg_copy(x->grad);
            if (!old)
                return -1;
            sg_tensor_free(x->grad);
            x->grad = old;
        }
        sg_tensor *sum = x->grad ? sg_add(x->grad, g) : g;
        if (!sum)
            return -1;
        x->grad = sum;
        x->grad_owned = false;
        if (sum->arena != x->arena && !grads_local)
            sg_scope_note_foreign_grad(x);
        return 0;
    }
    if (x->grad && x->grad_owned) {
        float *restrict d = x->grad->data;
        const float *restrict s = g->data;
        for (size_t i = 0; i < x->size; i++)
            d[i] += s[i];
        return 0;
    }
    if (!x->grad && fresh && g->arena == home && g->arena) {
        x->grad = g;
        x->grad_owned = true;
        return 0;
    }
    if (!x->grad && alias && x->op != SG_OP_LEAF && g->arena == home && g->arena) {
        x->grad = g;
        x->grad_owned = false;
        return 0;
    }
    sg_tensor *buf = sg_alloc_in(home, "backward", x->ndim, x->shape);
    if (!buf)
        return -1;
    if (x->grad)
        for (size_t i = 0; i < x->size; i++)
            buf->data[i] = x->grad->data[i] + g->data[i];
    else
        memcpy(buf->data, g->data, x->size * sizeof(float));
    x->grad = buf;
    x->grad_owned = true;
    return 0;
}

static void trace_values(FILE *f, const sg_tensor *t)
{
    size_t n = t->size < 6 ? t->size : 6;
    fputs(t->size == 1 ? "" : "[", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s%.6g", i ? " " : "", t->data[i]);
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
    fprintf(f, "backward %-8s ", sg_op_table[t->op].name);
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

typedef struct saved_grad {
    sg_tensor *grad;
    bool owned;
} saved_grad;

/* After a pass: t->grad holds this pass's gradient (or NULL); add the
 * gradient t had before the pass back into it. */
static int merge_grad(sg_tensor *t, const saved_grad *before, bool create)
{
    sg_tensor *g = t->grad;
    bool g_owned = t->grad_owned;
    t->grad = before->grad;
    t->grad_owned = before->owned;
    if (!g)
        return 0;
    int rc = accumulate(t, g, create, false, false);
    if (g_owned && !g->arena) /* a heap buffer of a persistent node, now added in */
        sg_tensor_free(g);
    return rc;
}

/* The common engine of sg_backward and sg_grad_of.
 * A node's backward must see only the gradient of this pass, not what an
 * earlier backward (with retain_graph, or through a shared subgraph) left in
 * its .grad: so the .grad of every non-leaf node is set aside during the pass
 * and added back after it. With xs, every node's .grad (leaves too) is saved
 * and restored unchanged, and xs' gradients are returned in grads[]. */
static int run_backward(sg_tensor *y, const sg_backward_opts *opts, sg_tensor *const *xs, int nx,
                        sg_tensor **grads)
{
    static const sg_backward_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    if (!y) {
        if (!sg_has_error())
            sg_set_error("backward: NULL output");
        return -1;
    }
    if (!sg_check_tensor(xs ? "grad_of" : "backward", y) ||
        (opts->grad && !sg_check_tensor(xs ? "grad_of" : "backward", opts->grad)))
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
    bool create = opts->create_graph;
    if ((create || xs) && sg_scope_depth() == 0) {
        sg_set_error("backward: %s needs an open scope (its gradients live in it)",
                     create ? "create_graph" : "grad_of");
        return -1;
    }
    sg_tensor **order;
    int n = sg_topo(y, false, &order);
    if (n < 0) {
        sg_set_error("backward: out of memory ordering %s graph", sg_shape_str(y, by, sizeof by));
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (order[i]->released) {
            sg_set_error("backward: the graph through a %s node was already released by an earlier "
                         "backward; pass retain_graph to go through it twice", sg_op_table[order[i]->op].name);
            return -1;
        }
    }
    /* order[] stays valid below: backward ops never walk the graph */
    bool opened = !create && sg_scope_depth() == 0;
    if (opened)
        sg_scope_begin();
    saved_grad *saved = sg_scope_alloc((size_t)n * sizeof *saved);
    if (!saved) {
        sg_set_error("backward: out of memory");
        if (opened)
            sg_scope_end();
        return -1;
    }
    for (int i = 0; i < n; i++) {
        saved[i].grad = order[i]->grad;
        saved[i].owned = order[i]->grad_owned;
        if (xs || order[i]->op != SG_OP_LEAF)
            order[i]->grad = NULL;
    }
    bool prev_mode = sg_set_grad_enabled(create);
    bool prev_local = grads_local;
    grads_local = xs != NULL;
    int rc = 0;
    sg_tensor *seed = opts->grad ? opts->grad : sg_ones(y->ndim, y->shape);
    if (!seed || accumulate(y, seed, create, false, false) < 0)
        rc = -1;
    for (int i = n - 1; i >= 0 && rc == 0; i--) {
        sg_tensor *t = order[i];
        if (t->op == SG_OP_LEAF || !t->grad)
            continue;
        sg_tensor *small[2] = {NULL, NULL};
        sg_tensor **gx = small;
        if (t->n_in > 2) {
            gx = sg_scope_alloc((size_t)t->n_in * sizeof *gx);
            if (!gx) {
                sg_set_error("backward: out of memory");
                rc = -1;
                break;
            }
            memset(gx, 0, (size_t)t->n_in * sizeof *gx);
        }
        uint32_t first_id = sg_tl_next_id + 1;
        sg_op_table[t->op].backward(t, t->grad, gx);
        if (opts->trace)
            trace_step(opts->trace, t, gx);
        for (int k = 0; k < t->n_in && rc == 0; k++) {
            if (!t->in[k]->requires_grad)
                continue;
            if (!gx[k]) {
                if (!sg_has_error())
                    sg_set_error("backward: %s produced no gradient for input %d", sg_op_table[t->op].name, k);
                rc = -1;
            } else if (accumulate(t->in[k], gx[k], create, is_fresh(gx[k], first_id, gx, k),
                                  within_grad_of(gx[k], t)) < 0) {
                rc = -1;
            }
        }
        if (!opts->retain_graph && !xs)
            t->released = true;
    }
    sg_set_grad_enabled(prev_mode);
    grads_local = prev_local;
    if (xs) {
        for (int j = 0; j < nx; j++) {
            bool reached = xs[j]->requires_grad && xs[j]->mark == epoch && xs[j]->grad;
            grads[j] = rc != 0 ? NULL : reached ? xs[j]->grad : sg_zeros(xs[j]->ndim, xs[j]->shape);
        }
        for (int i = 0; i < n; i++) {
            order[i]->grad = saved[i].grad;
            order[i]->grad_owned = saved[i].owned;
        }
    } else {
        bool prev = sg_set_grad_enabled(create);
        for (int i = 0; i < n; i++)
            if (order[i]->op != SG_OP_LEAF && saved[i].grad && merge_grad(order[i], &saved[i], create) < 0)
                rc = -1;
        sg_set_grad_enabled(prev);
    }
    if (opened)
        sg_scope_end();
    return rc;
}

int sg_backward(sg_tensor *y, const sg_backward_opts *opts)
{
    return run_backward(y, opts, NULL, 0, NULL);
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
    return run_backward(y, opts, xs, n, grads);
}
