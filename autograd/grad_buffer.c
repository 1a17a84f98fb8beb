/*
 * grad_buffer.c — where gradients are kept: every tensor's .grad.
 *
 * backward.c walks the graph and asks each node's local derivative for its
 * inputs' gradients; this file decides where those gradients live and who
 * may write them. A tensor's grad_state says who owns the tensor its .grad
 * points to:
 *
 *   SG_GRAD_NONE      no gradient (grad == NULL).
 *   SG_GRAD_OWNED     a buffer of x's alone, in x's own scope (on the heap for
 *                     a persistent x): a later contribution is added in place,
 *                     sg_zero_grad clears it, sg_tensor_free frees it. A
 *                     parameter's gradient is one, reused step after step.
 *   SG_GRAD_BORROWED  the gradient of a node already visited, or a view of it
 *                     (add and reshape pass dy straight through), read without
 *                     a copy; never written: a second contribution gives x a
 *                     buffer of its own. Never a leaf's (optimizers write there).
 *   SG_GRAD_RECORDED  with create_graph: a node of the graph, differentiable
 *                     again; never written, a contribution is added with sg_add.
 *
 * Key idea: copy only what might be shared. A gradient just made by the
 * visited node's backward, in the right scope, that nothing else refers to is
 * adopted (OWNED); one inside the gradient of a visited node is borrowed (that
 * buffer is not written again in the pass); anything else is copied.
 *
 * A pass is one sg_backward or sg_grad_of. A node's backward must see only
 * the gradient of this pass, not what an earlier backward (retain_graph, a
 * shared subgraph) left in its .grad: sg_grad_pass_begin sets aside the .grad
 * of every non-leaf node and sg_grad_pass_end adds it back. For sg_grad_of
 * (`local`) every node's .grad is set aside and restored unchanged, and the
 * pass's buffers live in the current scope: they are the answers.
 *
 * Invariants
 *   - grad_state == SG_GRAD_NONE  <=>  grad == NULL (set_grad keeps both).
 *   - Only an OWNED buffer is written in place, zeroed or freed.
 *   - An OWNED buffer lives in its tensor's scope (during an sg_grad_of pass,
 *     in the current one). A RECORDED gradient may live in an inner scope
 *     (create_graph on a parameter): the scope notes the tensor and, at its
 *     end, sg_grad_settle turns the gradient into an OWNED copy.
 */
#include "sg_internal.h"

/* One node's .grad as it was before the pass. */
struct sg_saved_grad {
    sg_tensor *grad;
    enum sg_grad_state state;
};

/* What a contribution g to x's gradient is, which says how x may keep it. */
enum origin {
    FROM_ELSEWHERE, /* a seed, an earlier pass's gradient: copied */
    FRESH,          /* made by the visited node's backward, nowhere else: adopted */
    IN_VISITED,     /* inside the gradient of a node already visited: borrowed */
};

static void set_grad(sg_tensor *x, sg_tensor *g, enum sg_grad_state state)
{
    x->grad = g;
    x->grad_state = g ? state : SG_GRAD_NONE;
}

/* dx += g, element by element (same size). */
static void add_into(sg_tensor *dx, const sg_tensor *g)
{
    if (dx->dtype == SG_FLOAT64) {
        double *restrict d = dx->data64;
        const double *restrict s = g->data64;
        for (size_t i = 0; i < dx->size; i++)
            d[i] += s[i];
        return;
    }
    float *restrict d = dx->data;
    const float *restrict s = g->data;
    for (size_t i = 0; i < dx->size; i++)
        d[i] += s[i];
}

/* x.grad = x.grad + g in a new OWNED buffer in `home` (x.grad, if any, is
 * not x's to write). */
static int own_sum(sg_tensor *x, const sg_tensor *g, sg_arena *home)
{
    sg_tensor *buf = sg_alloc_in(home, "backward", x->dtype, x->ndim, x->shape);
    if (!buf)
        return -1;
    memcpy(buf->bytes, g->bytes, x->size * sg_dtype_size(x->dtype));
    if (x->grad)
        add_into(buf, x->grad); /* old + g, the same sum as g + old */
    set_grad(x, buf, SG_GRAD_OWNED);
    return 0;
}

/* create_graph: x.grad = x.grad + g as a recorded node. */
static int add_recorded(const sg_grad_pass *p, sg_tensor *x, sg_tensor *g)
{
    sg_tensor *old = x->grad;
    if (old && x->grad_state == SG_GRAD_OWNED && !old->arena) {
        /* a persistent tensor's heap buffer from an earlier backward: the
         * recorded sum needs its values, in the scope, not the buffer */
        old = sg_copy(old);
        if (!old)
            return -1;
    }
    sg_tensor *sum = old ? sg_add(old, g) : g;
    if (!sum)
        return -1;
    if (x->grad != old)
        sg_tensor_free(x->grad);
    set_grad(x, sum, SG_GRAD_RECORDED);
    if (sum->arena != x->arena && !p->local)
        sg_scope_note_foreign_grad(x);
    return 0;
}

/* x.grad += g, keeping g itself when `from` allows it. */
static int accumulate(const sg_grad_pass *p, sg_tensor *x, sg_tensor *g, enum origin from)
{
    if (!sg_same_shape(x, g)) {
        char bx[96], bg[96];
        sg_set_error("backward: gradient %s does not match %s input %s", sg_shape_str(g, bg, sizeof bg),
                     sg_node_op_name(x), sg_shape_str(x, bx, sizeof bx));
        return -1;
    }
    if (g->dtype != x->dtype) {
        /* a gradient has its tensor's dtype: a seed or a local derivative
         * of the other dtype is converted (as PyTorch's engine does) */
        g = sg_to_dtype(g, x->dtype);
        if (!g)
            return -1;
        from = FROM_ELSEWHERE;
    }
    if (p->create)
        return add_recorded(p, x, g);
    if (x->grad_state == SG_GRAD_OWNED) {
        add_into(x->grad, g);
        return 0;
    }
    sg_arena *home = p->local ? sg_current_arena() : x->arena;
    bool here = g->arena && g->arena == home; /* g lives where x's gradient belongs */
    if (!x->grad && here && from == FRESH) {
        set_grad(x, g, SG_GRAD_OWNED);
        return 0;
    }
    if (!x->grad && here && from == IN_VISITED && x->op != SG_OP_LEAF) {
        set_grad(x, g, SG_GRAD_BORROWED);
        return 0;
    }
    return own_sum(x, g, home);
}

/* ---- adding straight into a parameter's gradient ----
 * A parameter's gradient is a buffer of its own (OWNED) that each backward
 * adds to. A local derivative that is one matrix product of the input's
 * shape (a linear layer's dW = x^T dy) can add its result there itself,
 * C += A B (the BLAS's beta = 1), instead of writing a new tensor that
 * accumulate() then adds: one pass over the gradient instead of three (the
 * BLAS zeroing the new buffer, the product, the addition), as KANN's ops
 * add into each input's gradient. The walk allows it only where nothing
 * needs the contribution on its own: not with create_graph (gradients are
 * graphs), a trace or an observer (they show each contribution), sg_grad_of
 * (it changes no .grad) or the NaN check (it inspects each op's result).
 * The derivative then puts sg_grad_added in the slot, which
 * sg_grad_accumulate_inputs skips (a marker, not x.grad itself: a custom
 * op's backward may return x.grad's tensor, and that must still be added). */
_Thread_local bool sg_tl_grad_sink;
sg_tensor sg_grad_added;

sg_tensor *sg_grad_sink(const sg_tensor *x)
{
    if (!sg_tl_grad_sink || x->op != SG_OP_LEAF || !x->requires_grad || x->grad_state != SG_GRAD_OWNED)
        return NULL;
    return x->grad;
}

/* ---- a pass ---- */

int sg_grad_pass_begin(sg_grad_pass *p, sg_tensor *const *nodes, int n, bool create, bool local)
{
    *p = (sg_grad_pass){.nodes = nodes, .n = n, .create = create, .local = local};
    p->saved = sg_scope_alloc((size_t)n * sizeof *p->saved);
    if (!p->saved) {
        sg_set_error("backward: out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++) {
        sg_tensor *t = nodes[i];
        p->saved[i] = (struct sg_saved_grad){t->grad, t->grad_state};
        if (local || t->op != SG_OP_LEAF)
            set_grad(t, NULL, SG_GRAD_NONE);
    }
    return 0;
}

int sg_grad_seed(const sg_grad_pass *p, sg_tensor *y, sg_tensor *dy) { return accumulate(p, y, dy, FROM_ELSEWHERE); }

sg_tensor **sg_grad_slots(sg_grad_pass *p, const sg_tensor *y)
{
    sg_tensor **dx = p->dx_small;
    size_t n = 2;
    if (y->n_in > 2) {
        n = (size_t)y->n_in;
        dx = sg_scope_alloc(n * sizeof *dx);
        if (!dx) {
            sg_set_error("backward: out of memory");
            return NULL;
        }
    }
    memset(dx, 0, n * sizeof *dx);
    p->first_new = sg_tl_next_id + 1;
    return dx;
}

/* dx[k] was made by the visited node's backward (since sg_grad_slots), is
 * not a view and is not also dx[j] for an earlier input. */
static bool is_fresh(const sg_grad_pass *p, sg_tensor *const *dx, int k)
{
    const sg_tensor *g = dx[k];
    if (g->id < p->first_new || g->is_view)
        return false;
    for (int j = 0; j < k; j++)
        if (dx[j] == g)
            return false;
    return true;
}

/* True if g's values lie inside y's gradient: g is y's gradient itself or a
 * view of it (what add, reshape and add_scalar pass back). y's backward has
 * run, so nothing writes that buffer again in this pass. */
static bool within_grad_of(const sg_tensor *g, const sg_tensor *y)
{
    const sg_tensor *dy = y->grad;
    if (!dy || g->dtype != dy->dtype)
        return false;
    size_t esz = sg_dtype_size(g->dtype);
    const char *gb = g->bytes, *db = dy->bytes;
    return gb >= db && gb + g->size * esz <= db + dy->size * esz;
}

int sg_grad_accumulate_inputs(const sg_grad_pass *p, sg_tensor *y, sg_tensor *const *dx)
{
    for (int k = 0; k < y->n_in; k++) {
        sg_tensor *x = y->in[k];
        if (!x->requires_grad)
            continue;
        if (!dx[k]) {
            if (!sg_has_error())
                sg_set_error("backward: %s produced no gradient for input %d", sg_node_op_name(y), k);
            return -1;
        }
        if (dx[k] == &sg_grad_added)
            continue; /* y's backward added it into x.grad itself (sg_grad_sink) */
        enum origin from = is_fresh(p, dx, k) ? FRESH : within_grad_of(dx[k], y) ? IN_VISITED : FROM_ELSEWHERE;
        if (accumulate(p, x, dx[k], from) < 0)
            return -1;
    }
    return 0;
}

/* Backward's end for node t: t.grad = (what it had before) + (this pass's). */
static int merge(const sg_grad_pass *p, sg_tensor *t, const struct sg_saved_grad *before)
{
    sg_tensor *g = t->grad;
    enum sg_grad_state g_state = t->grad_state;
    set_grad(t, before->grad, before->state);
    if (!g)
        return 0;
    int rc = accumulate(p, t, g, FROM_ELSEWHERE);
    if (g_state == SG_GRAD_OWNED && !g->arena) /* a heap buffer of a persistent node, now added in */
        sg_tensor_free(g);
    return rc;
}

int sg_grad_pass_end(const sg_grad_pass *p)
{
    if (p->local) {
        for (int i = 0; i < p->n; i++)
            set_grad(p->nodes[i], p->saved[i].grad, p->saved[i].state);
        return 0;
    }
    int rc = 0;
    for (int i = 0; i < p->n; i++) {
        sg_tensor *t = p->nodes[i];
        if (t->op != SG_OP_LEAF && p->saved[i].grad && merge(p, t, &p->saved[i]) < 0)
            rc = -1;
    }
    return rc;
}

/* ---- one tensor's buffer, outside a pass ---- */

void sg_grad_reset(sg_tensor *x)
{
    if (x->grad_state == SG_GRAD_OWNED)
        memset(x->grad->bytes, 0, x->size * sg_dtype_size(x->grad->dtype));
    else /* borrowed or recorded, perhaps shared: drop the link, not the values */
        set_grad(x, NULL, SG_GRAD_NONE);
}

void sg_grad_release(sg_tensor *x)
{
    if (x->grad_state == SG_GRAD_OWNED && !x->grad->arena) /* not a user's seed */
        sg_tensor_free(x->grad);
    set_grad(x, NULL, SG_GRAD_NONE);
}

void sg_grad_settle(sg_tensor *x, const sg_arena *ending)
{
    if (!x->grad || x->grad->arena != ending)
        return;
    sg_tensor *g = sg_alloc_in(x->arena, "scope_end", x->dtype, x->ndim, x->shape);
    if (g)
        memcpy(g->bytes, x->grad->bytes, x->size * sg_dtype_size(x->dtype));
    set_grad(x, g, SG_GRAD_OWNED);
}
