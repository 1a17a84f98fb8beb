/*
 * scope.c — scopes are bump arenas on a per-thread stack.
 *
 * A tensor made while a scope is open is carved (header and values) from that
 * scope's arena and freed with it. Closing a scope only rewinds the arena: the
 * chunks stay reserved for the next scope at the same depth, and if one step
 * needed several chunks they are merged into one, so from the second step on
 * a training loop allocates nothing from malloc.
 *
 * Gradients of tensors owned outside the scope that were set to a tensor
 * inside it (only with create_graph) are noted and turned into owned copies
 * at sg_scope_end() (sg_grad_settle, grad_buffer.c), so no pointer outlives
 * its arena.
 *
 * Use after scope. A scoped tensor's header is not carved from the arena
 * but taken from a per-thread header pool, and sg_scope_end() marks every
 * header of the scope dead and appends it to a FIFO quarantine. A header is
 * handed out again only when more than SG_HEADER_QUARANTINE others are
 * waiting, so a pointer kept past its scope still reads a dead header (and
 * every op refuses it: "tensor used after its scope ended") until that many
 * newer tensors have been made — never freed memory, never another
 * tensor's values. The pool is malloc'd in slabs that are kept (so a warm
 * training loop still allocates nothing) and freed by sg_release_memory()
 * once no scope is open.
 */
#include "sg_internal.h"
#include "sg_parallel.h"

#define SG_MAX_SCOPES 64
#define SG_ALIGN 64
#define SG_MIN_CHUNK ((size_t)1 << 20)

typedef struct chunk {
    struct chunk *next;
    size_t cap, used;
    /* memory follows, aligned */
} chunk;

struct sg_arena {
    chunk *head;        /* current chunk (most recent first) */
    sg_tensor *headers; /* headers made in this round (linked by scope_next) */
    size_t reserved;    /* bytes in all chunks */
    size_t high;        /* bytes used in this round */
    sg_tensor **foreign;/* outer tensors holding grads that live here */
    size_t n_foreign, cap_foreign;
    int depth;
};

static _Thread_local sg_arena arenas[SG_MAX_SCOPES];
static _Thread_local int depth;

/* ---- the header pool ---- */

#define SG_HEADER_QUARANTINE 1024 /* dead headers kept before one is reused */
#define SG_HEADER_SLAB 2048       /* headers per slab */

typedef struct header_slab {
    struct header_slab *next;
    size_t used;
    sg_tensor h[SG_HEADER_SLAB];
} header_slab;

static _Thread_local struct {
    header_slab *slabs;      /* most recent first; bump-allocated */
    sg_tensor *head, *tail;  /* dead headers, oldest first */
    size_t n_dead;
} pool;

static sg_tensor *header_get(void)
{
    if (pool.n_dead > SG_HEADER_QUARANTINE) {
        sg_tensor *t = pool.head;
        pool.head = t->scope_next;
        if (!pool.head)
            pool.tail = NULL;
        pool.n_dead--;
        return t;
    }
    if (!pool.slabs || pool.slabs->used == SG_HEADER_SLAB) {
        header_slab *n = malloc(sizeof *n);
        if (!n)
            return NULL;
        n->next = pool.slabs;
        n->used = 0;
        pool.slabs = n;
    }
    return &pool.slabs->h[pool.slabs->used++];
}

/* End of a round: every header made in it dies and joins the quarantine. */
static void headers_retire(sg_arena *a)
{
    sg_tensor *t = a->headers;
    if (!t)
        return;
    sg_tensor *last = t;
    size_t n = 0;
    for (; t; t = t->scope_next) {
        t->magic = SG_TENSOR_DEAD;
        last = t;
        n++;
    }
    if (pool.tail)
        pool.tail->scope_next = a->headers;
    else
        pool.head = a->headers;
    pool.tail = last;
    pool.n_dead += n;
    a->headers = NULL;
}

static void pool_release(void)
{
    for (header_slab *s = pool.slabs; s;) {
        header_slab *next = s->next;
        free(s);
        s = next;
    }
    memset(&pool, 0, sizeof pool);
}

static size_t chunk_header(void) { return (sizeof(chunk) + SG_ALIGN - 1) & ~(size_t)(SG_ALIGN - 1); }

static chunk *chunk_new(size_t cap)
{
    chunk *c = aligned_alloc(SG_ALIGN, chunk_header() + cap);
    if (!c)
        return NULL;
    c->next = NULL;
    c->cap = cap;
    c->used = 0;
    return c;
}

static void *arena_alloc(sg_arena *a, size_t bytes)
{
    bytes = (bytes + SG_ALIGN - 1) & ~(size_t)(SG_ALIGN - 1);
    chunk *c = a->head;
    if (!c || c->cap - c->used < bytes) {
        size_t cap = SG_MIN_CHUNK;
        if (c && c->cap * 2 > cap)
            cap = c->cap * 2;
        if (bytes > cap)
            cap = bytes;
        chunk *n = chunk_new(cap);
        if (!n)
            return NULL;
        n->next = c;
        a->head = n;
        a->reserved += cap;
        c = n;
    }
    void *p = (char *)c + chunk_header() + c->used;
    c->used += bytes;
    a->high += bytes;
    return p;
}

/* Rewind; merge several chunks into one big enough for this round. */
static void arena_reset(sg_arena *a)
{
    headers_retire(a);
    if (a->head && a->head->next) {
        size_t need = a->high;
        for (chunk *c = a->head; c;) {
            chunk *next = c->next;
            free(c);
            c = next;
        }
        a->head = chunk_new(need);
        a->reserved = a->head ? need : 0;
    }
    if (a->head)
        a->head->used = 0;
    a->high = 0;
    a->n_foreign = 0;
}

static void arena_release(sg_arena *a)
{
    for (chunk *c = a->head; c;) {
        chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a->foreign);
    int d = a->depth;
    memset(a, 0, sizeof *a);
    a->depth = d;
}

int sg_scope_begin(void)
{
    if (depth >= SG_MAX_SCOPES) {
        sg_set_error("scope_begin: more than %d nested scopes", SG_MAX_SCOPES);
        return -1;
    }
    sg_arena *a = &arenas[depth];
    a->depth = depth + 1;
    a->high = 0;
    a->n_foreign = 0;
    if (a->head)
        a->head->used = 0;
    return ++depth;
}

void sg_scope_end(void)
{
    if (depth == 0) {
        sg_set_error("scope_end: no scope is open");
        return;
    }
    sg_arena *a = &arenas[depth - 1];
    for (size_t i = 0; i < a->n_foreign; i++)
        sg_grad_settle(a->foreign[i], a);
    arena_reset(a);
    depth--;
}

int sg_scope_depth(void) { return depth; }

void sg_backward_release_buffers(void);
void sg_custom_release(sg_tensor *t);

void sg_release_memory(void)
{
    sg_backward_release_buffers();
    sg_pool_release();
    for (int i = depth; i < SG_MAX_SCOPES; i++)
        arena_release(&arenas[i]);
    if (depth == 0) /* no scoped tensor is alive: their headers can go */
        pool_release();
}

size_t sg_scope_reserved_bytes(void)
{
    size_t total = 0;
    for (int i = 0; i < SG_MAX_SCOPES; i++)
        total += arenas[i].reserved;
    return total;
}

sg_arena *sg_current_arena(void) { return depth ? &arenas[depth - 1] : NULL; }

int sg_arena_depth(const sg_arena *a) { return a ? a->depth : 0; }

void *sg_scope_alloc(size_t bytes)
{
    sg_arena *a = sg_current_arena();
    return a ? arena_alloc(a, bytes) : NULL;
}

void sg_scope_note_foreign_grad(sg_tensor *x)
{
    sg_arena *a = sg_current_arena();
    if (!a || x->arena == a)
        return;
    if (a->n_foreign == a->cap_foreign) {
        size_t cap = a->cap_foreign ? a->cap_foreign * 2 : 16;
        sg_tensor **f = realloc(a->foreign, cap * sizeof *f);
        if (!f)
            return;
        a->foreign = f;
        a->cap_foreign = cap;
    }
    a->foreign[a->n_foreign++] = x;
}

/* ---- tensor allocation ---- */

static void init_header(sg_tensor *t, sg_arena *arena, int ndim, const int *shape, size_t size)
{
    memset(t, 0, sizeof *t);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->size = size;
    t->op = SG_OP_LEAF;
    t->in = t->in_small;
    t->arena = arena;
    t->id = ++sg_tl_next_id;
    t->magic = SG_TENSOR_LIVE;
    if (arena) {
        t->scope_next = arena->headers;
        arena->headers = t;
    }
}

/* "(1048576,1048576): 4294967296 bytes" for out-of-memory messages */
static void oom(const char *op, int ndim, const int *shape, size_t bytes)
{
    char b[96];
    sg_set_error("%s: out of memory for a %s tensor (%zu bytes)", op, sg_fmt_shape(ndim, shape, b, sizeof b),
                 bytes);
}

sg_tensor *sg_alloc_in(sg_arena *arena, const char *op, sg_dtype dtype, int ndim, const int *shape)
{
    if (!sg_shape_check(op, ndim, shape))
        return NULL;
    size_t size = sg_shape_size(ndim, shape);
    size_t data_bytes = (size * sg_dtype_size(dtype) + SG_ALIGN - 1) & ~(size_t)(SG_ALIGN - 1);
    sg_tensor *t;
    if (arena) {
        t = header_get();
        void *d = t ? arena_alloc(arena, data_bytes) : NULL;
        if (!d) {
            if (t) { /* back to the quarantine, never handed out live */
                t->magic = SG_TENSOR_DEAD;
                t->scope_next = arena->headers;
                arena->headers = t;
            }
            oom(op, ndim, shape, data_bytes);
            return NULL;
        }
        init_header(t, arena, ndim, shape, size);
        t->bytes = d;
    } else {
        t = malloc(sizeof *t);
        void *d = aligned_alloc(SG_ALIGN, data_bytes ? data_bytes : SG_ALIGN);
        if (!t || !d) {
            free(t);
            free(d);
            oom(op, ndim, shape, data_bytes);
            return NULL;
        }
        init_header(t, NULL, ndim, shape, size);
        t->bytes = d;
        t->owns_data = true;
    }
    t->dtype = dtype;
    return t;
}

sg_tensor *sg_alloc(const char *op, sg_dtype dtype, int ndim, const int *shape)
{
    return sg_alloc_in(sg_current_arena(), op, dtype, ndim, shape);
}

sg_tensor *sg_alloc_view(const char *op, sg_tensor *x, int ndim, const int *shape)
{
    if (!sg_shape_check(op, ndim, shape))
        return NULL;
    sg_arena *arena = sg_current_arena();
    sg_tensor *t = arena ? header_get() : malloc(sizeof *t);
    if (!t) {
        sg_set_error("%s: out of memory for a tensor header", op);
        return NULL;
    }
    init_header(t, arena, ndim, shape, sg_shape_size(ndim, shape));
    t->bytes = x->bytes;
    t->dtype = x->dtype;
    t->is_view = true;
    return t;
}

void sg_tensor_free(sg_tensor *x)
{
    if (!x || x->arena)
        return;
    sg_grad_release(x);
    sg_custom_release(x); /* a persistent user-defined op's context */
    x->magic = SG_TENSOR_DEAD;
    if (x->owns_data)
        free(x->bytes);
    if (x->in != x->in_small)
        free(x->in);
    free(x);
}

sg_tensor *sg_keep(const sg_tensor *x)
{
    if (!sg_check_tensor("keep", x))
        return NULL;
    sg_arena *outer = depth >= 2 ? &arenas[depth - 2] : NULL;
    sg_tensor *y = sg_alloc_in(outer, "keep", x->dtype, x->ndim, x->shape);
    if (y)
        memcpy(y->bytes, x->bytes, x->size * sg_dtype_size(x->dtype));
    return y;
}
