/*
 * custom_op.c — user-defined primitives (torch.autograd.Function, DeZero's
 * Function): an op added from outside the library, recorded in the graph
 * like a built-in one.
 *
 * Key idea: the op table is static (ops.def), so every user-defined op is
 * the one row SG_OP_CUSTOM ("custom", any arity), and its node carries the
 * rest in attr.custom: a pointer to the user's descriptor (name, forward,
 * backward) and the node's context. sg_bw_custom, the row's local
 * derivative, calls the descriptor's backward; sg_node_op_name() gives the
 * descriptor's name to the tracer, the DOT writer and messages.
 *
 * Invariants
 *   - a node with op SG_OP_CUSTOM has attr.custom.fn set (only
 *     sg_custom_apply records one);
 *   - attr.custom.ctx is the node's copy of the caller's ctx (ctx_size
 *     bytes, in the node's scope, or a malloc freed by sg_tensor_free when
 *     the node is persistent, ctx_heap), or the caller's own pointer when
 *     ctx_size is 0;
 *   - the forward runs with recording off; its result is made a node only
 *     if it is fresh (made by this forward, not a view): anything else (an
 *     input, an older tensor) is copied first, so no existing tensor is
 *     ever turned into a node.
 */
#include "sg_float64.h"
#include "sg_internal.h"

const char *sg_node_op_name(const sg_tensor *t)
{
    if (t->op == SG_OP_CUSTOM && t->attr.custom.fn)
        return t->attr.custom.fn->name;
    return sg_op_table[t->op].name;
}

/* The descriptor is complete: false with a message otherwise. */
static bool descriptor_ok(const sg_custom_op *op, int n)
{
    if (!op) {
        sg_set_error("custom_apply: NULL op descriptor");
        return false;
    }
    const char *name = op->name && op->name[0] ? op->name : "custom_apply";
    if (!op->name || !op->name[0] || !op->forward || !op->backward || op->n_inputs < 1) {
        sg_set_error("%s: the op descriptor needs a name, n_inputs >= 1 (got %d), a forward and a backward", name,
                     op->n_inputs);
        return false;
    }
    if (n != op->n_inputs) {
        sg_set_error("%s: takes %d inputs, got %d", name, op->n_inputs, n);
        return false;
    }
    return true;
}

/* The node's copy of ctx: from the current scope's arena, or malloc'd
 * when no scope is open (the result is then persistent too; *heap says
 * so). The caller's ctx pointer itself when ctx_size is 0. */
static void *copy_ctx(const sg_custom_op *op, const void *ctx, bool *heap)
{
    *heap = false;
    if (!op->ctx_size)
        return (void *)ctx;
    bool scoped = sg_current_arena() != NULL;
    void *c = scoped ? sg_scope_alloc(op->ctx_size) : malloc(op->ctx_size);
    if (!c) {
        sg_set_error("%s: out of memory for a context of %zu bytes", op->name, op->ctx_size);
        return NULL;
    }
    *heap = !scoped;
    if (ctx)
        memcpy(c, ctx, op->ctx_size);
    else
        memset(c, 0, op->ctx_size);
    return c;
}

/* Inputs of both dtypes: apply the op to their float64 conversions (a
 * recorded cast each, so gradients go back in each input's dtype), as
 * every built-in op promotes. */
static sg_tensor *apply_promoted(const sg_custom_op *op, sg_tensor *const *inputs, int n, const void *ctx)
{
    sg_tensor **conv = malloc((size_t)n * sizeof *conv);
    if (!conv) {
        sg_set_error("%s: out of memory for %d inputs", op->name, n);
        return NULL;
    }
    memcpy(conv, inputs, (size_t)n * sizeof *conv);
    sg_tensor *y = sg_promote_all(conv, n) == 0 ? sg_custom_apply(op, conv, n, ctx) : NULL;
    free(conv);
    return y;
}

sg_tensor *sg_custom_apply(const sg_custom_op *op, sg_tensor *const *inputs, int n, const void *ctx)
{
    if (!descriptor_ok(op, n))
        return NULL;
    if (!inputs) {
        sg_set_error("%s: NULL array of %d inputs", op->name, n);
        return NULL;
    }
    bool mixed = false;
    for (int i = 0; i < n; i++) {
        SG_CHECK_INPUT(op->name, inputs[i]);
        mixed = mixed || inputs[i]->dtype != inputs[0]->dtype;
    }
    if (mixed)
        return apply_promoted(op, inputs, n, ctx);
    /* The node's context is made before the forward, in the scope the
     * forward's result lands in, so forward may write into it. */
    bool heap;
    void *node_ctx = copy_ctx(op, ctx, &heap);
    if (op->ctx_size && !node_ctx)
        return NULL;
    uint32_t first = sg_tl_next_id + 1; /* tensors from this id on are the forward's */
    const char *token = sg_api_enter(op->name);
    bool was = sg_set_grad_enabled(false); /* the forward is one node, not its parts */
    sg_tensor *y = op->forward(inputs, n, node_ctx);
    sg_set_grad_enabled(was);
    if (!y) {
        if (!sg_has_error())
            sg_set_error("%s: forward returned NULL", op->name);
    } else if (!sg_check_tensor(op->name, y)) {
        y = NULL; /* e.g. made in a scope the forward closed */
    } else if (y->dtype != inputs[0]->dtype) {
        sg_set_error("%s: forward returned a %s tensor for %s inputs", op->name, sg_dtype_name(y->dtype),
                     sg_dtype_name(inputs[0]->dtype));
        y = NULL;
    } else if (y->id < first || y->is_view || y->op != SG_OP_LEAF) {
        y = sg_copy(y); /* never turn an existing tensor (an input) into a node */
    }
    sg_api_leave(token);
    if (!y || !sg_should_record(inputs, n)) {
        if (heap)
            free(node_ctx);
        return y;
    }
    y = sg_check_finite(y, op->name, inputs, n);
    sg_tensor *r = sg_record(y, SG_OP_CUSTOM, inputs, n);
    if (!r) {
        if (heap)
            free(node_ctx);
        return NULL;
    }
    r->attr.custom.fn = op;
    r->attr.custom.ctx = node_ctx;
    r->attr.custom.ctx_heap = heap;
    return r;
}

/* The row's local derivative: the user's backward, then a check of what it
 * gave (shape and dtype of each gradient asked for), naming the op. */
void sg_bw_custom(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    const sg_custom_op *op = y->attr.custom.fn;
    const char *token = sg_api_enter(op->name);
    op->backward(y->in, y->n_in, y, gy, gx, y->attr.custom.ctx);
    sg_api_leave(token);
    for (int k = 0; k < y->n_in; k++) {
        sg_tensor *x = y->in[k];
        if (!x->requires_grad || !gx[k])
            continue;
        char bg[96], bx[96];
        if (!sg_check_tensor(op->name, gx[k])) {
            gx[k] = NULL;
        } else if (!sg_same_shape(gx[k], x) || gx[k]->dtype != x->dtype) {
            sg_set_error("%s: backward gave a %s gradient %s for input %d, a %s %s", op->name,
                         sg_dtype_name(gx[k]->dtype), sg_shape_str(gx[k], bg, sizeof bg), k,
                         sg_dtype_name(x->dtype), sg_shape_str(x, bx, sizeof bx));
            gx[k] = NULL;
        }
    }
}

/* sg_tensor_free of a persistent custom node: its malloc'd context. */
void sg_custom_release(sg_tensor *t);
void sg_custom_release(sg_tensor *t)
{
    if (t->op == SG_OP_CUSTOM && t->attr.custom.ctx_heap) {
        free(t->attr.custom.ctx);
        t->attr.custom.ctx = NULL;
        t->attr.custom.ctx_heap = false;
    }
}
