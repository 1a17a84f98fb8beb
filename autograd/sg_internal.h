/*
 * sg_internal.h — the engine's private structures: the tensor/node, the op
 * enum and table, the scope arenas, and helpers shared by the op files.
 *
 * Invariants
 *   - data is contiguous row-major with `size` elements of `dtype` (float or
 *     double: data or data64), 64-byte aligned.
 *   - op == SG_OP_LEAF  <=>  n_in == 0 (a leaf has no history).
 *   - A recorded node has requires_grad set; its inputs outlive it (they were
 *     made before it, in the same or an outer scope).
 *   - arena == NULL means a persistent (heap) tensor.
 */
#ifndef SG_INTERNAL_H
#define SG_INTERNAL_H

#include "sg_autograd.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* The primitives, generated from ops.def (one row per op; see there). A
 * leaf is a value with no history; SG_OP_COUNT counts the values. */
enum sg_op {
    SG_OP_LEAF,
#define SG_OP(op, name, arity, backward) op,
#include "ops.def"
    SG_OP_COUNT
};

typedef struct sg_arena sg_arena;

/* Who owns the tensor a .grad points to (grad_buffer.c). */
enum sg_grad_state {
    SG_GRAD_NONE,     /* no gradient: grad == NULL */
    SG_GRAD_OWNED,    /* ours alone, in our scope: added to, zeroed, freed */
    SG_GRAD_BORROWED, /* (a view of) a visited node's gradient: read only */
    SG_GRAD_RECORDED  /* create_graph: a graph node: read only */
};

struct sg_tensor {
    union {                   /* (size) values, row-major, of type dtype: */
        float *data;          /*   SG_FLOAT32 */
        double *data64;       /*   SG_FLOAT64 */
        void *bytes;          /*   either, for copies (sg_dtype_size bytes each) */
    };
    sg_dtype dtype;
    sg_tensor *grad;          /* same shape, or NULL; see grad_state */
    size_t size;              /* product of shape */
    int ndim;
    int shape[SG_MAX_DIMS];
    bool requires_grad;
    bool released;            /* graph released by a backward without retain */
    bool owns_data;           /* heap tensors: data is a separate malloc */
    bool is_view;             /* data belongs to another tensor */
    enum sg_grad_state grad_state; /* who owns *grad; set by grad_buffer.c only */
    enum sg_op op;
    int n_in;
    sg_tensor **in;           /* inputs: in_small or an arena array */
    sg_tensor *in_small[2];
    union {                   /* attributes the op's backward needs */
        double p;                                 /* pow, add/mul scalar */
        struct { uint32_t mask; bool keep; } red; /* sum, max */
        int perm[SG_MAX_DIMS];                    /* permute */
        struct { bool ta, tb; } mm;               /* matmul */
        struct { int axis, start; } sl;           /* slice */
        int axis;                                 /* concat */
        sg_window win;                            /* unfold, fold */
        struct { double lo, hi; } clamp;          /* clamp: the bounds */
        int gather_axis;                          /* gather, scatter_add */
        struct {                                  /* custom (custom_op.c) */
            const struct sg_custom_op *fn;        /*   the user's descriptor */
            void *ctx;                            /*   its context (a copy, or the user's) */
            bool ctx_heap;                        /*   the copy is a malloc of ours */
        } custom;
    } attr;
    sg_arena *arena;          /* owner scope, NULL = persistent */
    uint32_t magic;           /* SG_TENSOR_LIVE until its scope ends or it is freed */
    sg_tensor *scope_next;    /* scoped headers: the scope's list, then the free queue */
    uint32_t mark;            /* traversal epoch */
    uint32_t id;              /* creation number, for traces */
    char name[32];
};

/* A header's magic: live from creation until its scope ends (or
 * sg_tensor_free); a scoped header stays readable, marked dead, in a
 * quarantine queue (scope.c), which is how a stale pointer is told apart. */
#define SG_TENSOR_LIVE 0x5C0DE11Eu
#define SG_TENSOR_DEAD 0xDEADC0DEu

/* ---- op table (optable.c), generated from ops.def ---- */
/* A local derivative: given y = op(x...) and dy, fill gx[i] with the
 * gradient of input i for each input needing one, using recording ops. */
typedef void (*sg_backward_fn)(sg_tensor *y, sg_tensor *gy, sg_tensor **gx);
typedef struct sg_op_info {
    const char *name;
    int n_inputs;              /* -1 = variadic */
    sg_backward_fn backward;   /* fills gx[i] for inputs needing a gradient */
} sg_op_info;
/* One row per enum value, [SG_OP_LEAF] = {"leaf", 0, NULL}. */
extern const sg_op_info sg_op_table[SG_OP_COUNT];

/* The backward functions, one per row of ops.def, each defined next to its
 * forward in an ops_*.c file: void sg_bw_<name>(y, gy, gx). */
#define SG_OP(op, name, arity, backward) void backward(sg_tensor *y, sg_tensor *gy, sg_tensor **gx);
#include "ops.def"

/* ---- allocation (scope.c, tensor.c) ---- */
/* A new tensor of the given shape in the current scope (or heap); values
 * uninitialised. NULL with a message naming `op` on bad shape / no memory. */
sg_tensor *sg_alloc(const char *op, sg_dtype dtype, int ndim, const int *shape);
/* Same, owned by `arena` (NULL = heap) rather than the current scope. */
sg_tensor *sg_alloc_in(sg_arena *arena, const char *op, sg_dtype dtype, int ndim, const int *shape);
/* Element i of x as a double, and setting it, whatever x's dtype (for
 * code where speed does not matter: printing, checks, gradcheck). */
double sg_value_at(const sg_tensor *x, size_t i);
void sg_set_value_at(sg_tensor *x, size_t i, double v);
/* Bytes of one element of dtype (4 or 8). */
static inline size_t sg_dtype_size(sg_dtype dt) { return dt == SG_FLOAT64 ? sizeof(double) : sizeof(float); }
/* A tensor header sharing x's data and dtype (for views: reshape, detach). */
sg_tensor *sg_alloc_view(const char *op, sg_tensor *x, int ndim, const int *shape);
/* Raw bytes from the current scope (or NULL if none is open). */
void *sg_scope_alloc(size_t bytes);
sg_arena *sg_current_arena(void);
int sg_arena_depth(const sg_arena *a);
/* Remember that x (owned outside the current scope) holds a gradient that
 * lives in it; sg_scope_end() turns it into an owned copy. */
void sg_scope_note_foreign_grad(sg_tensor *x);

/* ---- recording ---- */
/* True if an op on these inputs must record (grad mode on and some input
 * requires a gradient). */
bool sg_should_record(sg_tensor *const *in, int n);
/* Record y = op(in...) if needed; returns y. */
sg_tensor *sg_record(sg_tensor *y, enum sg_op op, sg_tensor *const *in, int n);
/* Debug NaN check of a fresh result (returns y, or NULL with a message). */
sg_tensor *sg_check_finite(sg_tensor *y, const char *op, sg_tensor *const *in, int n);
/* Finish an op: NaN check then record. */
sg_tensor *sg_finish(sg_tensor *y, enum sg_op op, sg_tensor *const *in, int n);

/* The op name a node shows in traces, pictures and messages: the table's,
 * or a user-defined op's own name (custom_op.c). */
const char *sg_node_op_name(const sg_tensor *t);
/* "a" or "an" before a word (an exp, a sum): for messages naming an op. */
const char *sg_article(const char *word);

/* ---- shape helpers ---- */
/* A shape given by a caller: at most SG_MAX_DIMS dims, none negative, at
 * most SG_MAX_ELEMENTS elements (sizes.c); false with a message naming op. */
bool sg_shape_check(const char *op, int ndim, const int *shape);
size_t sg_shape_size(int ndim, const int *shape);
/* NumPy broadcast of two shapes into out (returns ndim, or -1). */
int sg_broadcast_shapes(int na, const int *sa, int nb, const int *sb, int *out);
/* Format a shape as "(2,3)". */
char *sg_fmt_shape(int ndim, const int *shape, char *buf, size_t len);
/* Normalise axes into a bitmask; -1 (with message for `op`) on a bad axis. */
int sg_axes_mask(const char *op, int ndim, const int *axes, int n_axes, uint32_t *mask);
/* Shape after reducing `mask` dims; returns the new ndim. */
int sg_reduced_shape(int ndim, const int *shape, uint32_t mask, bool keep, int *out);
/* Fill y with x broadcast to y's shape (which it must broadcast to). */
void sg_broadcast_fill(const sg_tensor *x, sg_tensor *y);

/* ---- graph walks (backward.c) ---- */
/* Nodes reachable from y in topological order (inputs first) into a
 * per-thread buffer; `all` includes inputs that need no gradient. Returns
 * the count, or -1 on no memory. */
int sg_topo(sg_tensor *y, bool all, sg_tensor ***order);

/* A pass of backward that someone watches (html.c, the stepping viewer):
 * sg_backward's walk, same order, same local derivatives, but every .grad
 * restored at the end and nothing released, as sg_grad_of does (so it needs
 * an open scope). step() is called for each visited node t twice: with
 * after = false once t's backward has filled dx (t->grad is the complete
 * upstream gradient, each input's .grad what it held so far), and with
 * after = true once dx has been added into the inputs' .grad. A step that
 * returns -1 (after setting an error) stops the pass. */
typedef struct sg_backward_observer {
    const char *fn; /* the public function to name in messages, "write_html" */
    int (*step)(void *ctx, sg_tensor *t, sg_tensor *const *dx, bool after);
    void *ctx;
} sg_backward_observer;
int sg_backward_observed(sg_tensor *y, const sg_backward_opts *opts, const sg_backward_observer *obs);

/* ---- gradient buffers (grad_buffer.c) ----
 * Everything backward does to .grad fields goes through these calls. A pass
 * (one sg_backward or sg_grad_of) over `nodes`, in topological order:
 *
 *     sg_grad_pass_begin(&p, nodes, n, create, local);   set aside their .grad
 *     sg_grad_seed(&p, y, dy);                           y.grad = dy
 *     for each node y, outputs first:
 *         dx = sg_grad_slots(&p, y);                     empty, one per input
 *         y's backward fills dx;
 *         sg_grad_accumulate_inputs(&p, y, dx);          x_k.grad += dx[k]
 *     sg_grad_pass_end(&p);                              add the old .grad back
 *
 * Each returns -1 (int) or NULL with a message on failure; a pass that has
 * begun must end, even after a failure. An op's backward needs none of this: it returns new
 * tensors (or views of dy) and the pass decides whether to adopt, borrow or
 * copy them (a matrix product may instead add into sg_grad_sink's buffer). */
struct sg_saved_grad;
typedef struct sg_grad_pass {
    sg_tensor *const *nodes;      /* the pass's nodes, inputs first */
    int n;
    struct sg_saved_grad *saved;  /* (n) each node's .grad before the pass */
    bool create;                  /* create_graph: gradients are recorded nodes */
    bool local;                   /* sg_grad_of: gradients are the answers, in the
                                     current scope; every .grad restored after */
    uint32_t first_new;           /* tensors from this id on were made by the
                                     visited node's backward */
    sg_tensor *dx_small[2];       /* slots for a node of at most 2 inputs */
} sg_grad_pass;
/* Set aside the .grad of every non-leaf node (every node if local), in a
 * record carved from the current scope. */
int sg_grad_pass_begin(sg_grad_pass *p, sg_tensor *const *nodes, int n, bool create, bool local);
/* y.grad += dy (dy is copied: it may be the caller's). */
int sg_grad_seed(const sg_grad_pass *p, sg_tensor *y, sg_tensor *dy);
/* Zeroed slots for y's inputs' gradients, valid until the next call. */
sg_tensor **sg_grad_slots(sg_grad_pass *p, const sg_tensor *y);
/* x_k.grad += dx[k] for each input x_k of y that requires a gradient; an
 * error if y's backward left such a slot empty. */
int sg_grad_accumulate_inputs(const sg_grad_pass *p, sg_tensor *y, sg_tensor *const *dx);
/* x's own gradient buffer, for a local derivative to add x's gradient into
 * in place, or NULL: only a leaf's OWNED buffer, only while the walk allows
 * it (sg_tl_grad_sink; see grad_buffer.c). A derivative that did add into
 * it puts &sg_grad_added in x's slot, which sg_grad_accumulate_inputs
 * skips. */
sg_tensor *sg_grad_sink(const sg_tensor *x);
extern _Thread_local bool sg_tl_grad_sink;
extern sg_tensor sg_grad_added;
/* sg_backward: t.grad = old t.grad + this pass's, for every non-leaf node.
 * sg_grad_of (local): every node's .grad as it was before the pass. */
int sg_grad_pass_end(const sg_grad_pass *p);
/* sg_zero_grad: zero an owned buffer in place; drop any other. */
void sg_grad_reset(sg_tensor *x);
/* sg_tensor_free: free an owned heap buffer; x has no gradient after. */
void sg_grad_release(sg_tensor *x);
/* sg_scope_end: if x's gradient lives in the ending arena, replace it by an
 * owned copy in x's own scope (no gradient if out of memory). */
void sg_grad_settle(sg_tensor *x, const sg_arena *ending);

/* ---- naming the function the user called ----
 * A public function made of other public ones (sqrt = pow, mean = sum then
 * scale, rsub_scalar = neg then add_scalar) names itself in every message
 * its parts produce: while it runs, error.c holds its name (the outermost
 * wins; sg_api_enter/leave) and sg_set_error() puts it in place of the
 * part's own leading "name:". */
#define SG_API_BEGIN(name) const char *const sg_api_token_ = sg_api_enter(name)
#define SG_API_END() sg_api_leave(sg_api_token_)

/* True if f can be written; else false with "<func>: NULL file". */
bool sg_check_file(const char *func, FILE *f);

/* Return NULL from the enclosing op unless tensor x may be used (NULL and
 * use-after-scope, sg_check_tensor()); messages name the function called. */
#define SG_CHECK_INPUT(op, x)                                                        \
    do { /* the test inline, the message out of line: every op checks its inputs */ \
        if ((!(x) || (x)->magic != SG_TENSOR_LIVE) && !sg_check_tensor((op), (x)))  \
            return NULL;                                                             \
    } while (0)

/* Thread-local state shared across files. */
extern _Thread_local bool sg_tl_grad_enabled;
extern _Thread_local bool sg_tl_nan_check;
extern _Thread_local uint32_t sg_tl_next_id;

#define SG_UNUSED(x) ((void)(x))

#endif /* SG_INTERNAL_H */
