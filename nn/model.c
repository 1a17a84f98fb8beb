/*
 * model.c — models: a registry of named tensors, the layers that use them,
 * and a sequence that runs the layers. What each kind of layer computes and
 * keeps (linear, conv2d, batchnorm, ...) is in layer_kinds.c; this file is
 * the model's side of every layer: naming and registering it, running it
 * (recording its output shape, naming it in errors), counting its
 * parameters, printing the summary.
 *
 * Design
 *   - The registry owns every tensor. An entry (name, tensor, trainable,
 *     owning layer) sits in a uthash table keyed by name for lookup and in
 *     an array in insertion order for iteration; a parallel array of
 *     sg_named_param is what sg_model_params() hands out, so an optimizer
 *     iterates plain structs without knowing about uthash.
 *   - The model owns every layer its constructors made (an array, freed
 *     with the model), whether or not the layer is in a sequence. A layer
 *     keeps direct pointers to its tensors (W, b, ...) for speed; the
 *     registry is the owner.
 *   - The model's top-level sequence is an unnamed sequential layer; nested
 *     sequences and residual blocks are layers holding child layers.
 *   - A layer is run through its kind's row (sg_layer_kinds[l->kind].forward,
 *     layer_kinds.h): nothing here depends on which kinds exist, except
 *     that the root is a sequential.
 *
 * Invariants
 *   - Registry names are unique, each tensor appears once, and all were
 *     made with no scope open (persistent).
 *   - A constructor that fails leaves the registry and the layer list as
 *     they were (sg_nn_layer_abort drops the layer and its tensors).
 *   - The layer graph of sequences is acyclic (sg_sequential_add refuses a
 *     cycle), so forward terminates.
 */
#include "layer_kinds.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static _Thread_local bool hash_oom;
#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(obj) (hash_oom = true)
#include <uthash.h>

typedef struct entry {
    char *name;
    sg_tensor *t;
    bool trainable;
    sg_layer *owner; /* NULL for tensors added with sg_model_add_param */
    UT_hash_handle hh;
} entry;

struct sg_model {
    entry *table;            /* uthash head, keyed by name */
    entry **entries;         /* insertion order */
    sg_named_param *view;    /* parallel to entries */
    int n, cap;
    sg_layer **layers;       /* every layer made, in creation order */
    int n_layers, cap_layers;
    sg_layer root;           /* the top-level sequence */
    bool training;
};

/* ------------------------------------------------------------------------- */
/* registry */

static entry *find_entry(const sg_model *m, const char *name)
{
    entry *e = NULL;
    HASH_FIND_STR(m->table, name, e);
    return e;
}

/* Register; on failure free value unless the model already owns it. */
static sg_tensor *add_entry(sg_model *m, const char *op, const char *name, sg_tensor *value,
                            bool trainable, sg_layer *owner)
{
    if (!sg_check_tensor(op, value)) /* NULL, or from a scope that has ended */
        return NULL;
    for (int i = 0; i < m->n; i++) {
        if (m->entries[i]->t == value) { /* ours already: do not free it */
            sg_set_error("%s: cannot register \"%s\": the tensor is already registered as \"%s\"", op,
                         name ? name : "(null)", m->entries[i]->name);
            return NULL;
        }
    }
    const char *why = NULL;
    if (sg_scope_depth() != 0)
        why = "parameters must be made with no scope open (build models outside sg_scope_begin/end)";
    else if (!sg_nn_name_ok(op, name))
        why = ""; /* message already recorded */
    else if (find_entry(m, name))
        why = "the name is already taken";
    if (!why && sg_has_history(value))
        why = "the tensor is the result of an op (a parameter must be a leaf)";
    if (why) {
        if (why[0])
            sg_set_error("%s: cannot register \"%s\": %s", op, name ? name : "(null)", why);
        sg_tensor_free(value);
        return NULL;
    }
    if (m->n == m->cap) {
        int cap = m->cap ? m->cap * 2 : 16;
        entry **ne = realloc(m->entries, (size_t)cap * sizeof *ne);
        if (ne)
            m->entries = ne;
        sg_named_param *nv = ne ? realloc(m->view, (size_t)cap * sizeof *nv) : NULL;
        if (nv)
            m->view = nv;
        if (!ne || !nv) {
            sg_set_error("%s: out of memory registering \"%s\"", op, name);
            sg_tensor_free(value);
            return NULL;
        }
        m->cap = cap;
    }
    entry *e = calloc(1, sizeof *e);
    size_t len = strlen(name);
    char *copy = malloc(len + 1);
    if (!e || !copy) {
        free(e);
        free(copy);
        sg_set_error("%s: out of memory registering \"%s\"", op, name);
        sg_tensor_free(value);
        return NULL;
    }
    memcpy(copy, name, len + 1);
    e->name = copy;
    e->t = value;
    e->trainable = trainable;
    e->owner = owner;
    hash_oom = false;
    HASH_ADD_KEYPTR(hh, m->table, e->name, len, e);
    if (hash_oom) {
        free(copy);
        free(e);
        sg_set_error("%s: out of memory registering \"%s\"", op, name);
        sg_tensor_free(value);
        return NULL;
    }
    sg_set_requires_grad(value, trainable);
    m->entries[m->n] = e;
    m->view[m->n] = (sg_named_param){.name = e->name, .tensor = value, .trainable = trainable};
    m->n++;
    return value;
}

/* Drop (and free) entries registered after the first n. */
static void truncate_entries(sg_model *m, int n)
{
    while (m->n > n) {
        entry *e = m->entries[--m->n];
        HASH_DEL(m->table, e);
        sg_tensor_free(e->t);
        free(e->name);
        free(e);
    }
}

/* ------------------------------------------------------------------------- */
/* model */

sg_model *sg_model_new(void)
{
    if (sg_scope_depth() != 0) {
        sg_set_error("model_new: build models with no scope open (depth is %d): their parameters "
                     "must outlive every scope",
                     sg_scope_depth());
        return NULL;
    }
    sg_model *m = calloc(1, sizeof *m);
    if (!m) {
        sg_set_error("model_new: out of memory");
        return NULL;
    }
    m->training = true;
    m->root.model = m;
    m->root.kind = SG_LAYER_SEQUENTIAL;
    m->root.label = sg_layer_kinds[SG_LAYER_SEQUENTIAL].name;
    return m;
}

static void layer_free(sg_layer *l)
{
    if (l) {
        free(l->child);
        free(l);
    }
}

void sg_model_free(sg_model *m)
{
    if (!m)
        return;
    truncate_entries(m, 0);
    HASH_CLEAR(hh, m->table);
    free(m->entries);
    free(m->view);
    for (int i = 0; i < m->n_layers; i++)
        layer_free(m->layers[i]);
    free(m->layers);
    free(m->root.child);
    free(m);
}

/* A NULL argument of a query or setter: "<op>: NULL <what>" (unless an
 * earlier message explains it); the caller then returns its documented
 * answer for NULL. */
static void null_arg(const char *op, const char *what)
{
    if (!sg_has_error())
        sg_set_error("%s: NULL %s", op, what);
}

void sg_model_set_training(sg_model *m, bool training)
{
    if (!m)
        null_arg("model_set_training", "model");
    else
        m->training = training;
}

bool sg_model_is_training(const sg_model *m)
{
    if (!m)
        null_arg("model_is_training", "model");
    return m && m->training;
}

size_t sg_model_num_params(const sg_model *m, bool include_buffers)
{
    if (!m)
        null_arg("model_num_params", "model");
    size_t total = 0;
    for (int i = 0; m && i < m->n; i++)
        if (m->entries[i]->trainable || include_buffers)
            total += sg_size(m->entries[i]->t);
    return total;
}

sg_tensor *sg_model_add_param(sg_model *m, const char *name, sg_tensor *value, bool trainable)
{
    if (!m) {
        sg_tensor_free(value);
        sg_set_error("model_add_param: NULL model");
        return NULL;
    }
    return add_entry(m, "model_add_param", name, value, trainable, NULL);
}

sg_tensor *sg_model_param(const sg_model *m, const char *name)
{
    if (!m || !name)
        null_arg("model_param", m ? "name" : "model");
    entry *e = m && name ? find_entry(m, name) : NULL;
    return e ? e->t : NULL;
}

const sg_named_param *sg_model_params(const sg_model *m, int *n)
{
    if (!m)
        null_arg("model_params", "model");
    if (n)
        *n = m ? m->n : 0;
    return m ? m->view : NULL;
}

int sg_model_trainable(const sg_model *m, sg_tensor **out, int cap)
{
    if (!m)
        null_arg("model_trainable", "model");
    int k = 0;
    for (int i = 0; m && i < m->n; i++) {
        if (!m->entries[i]->trainable)
            continue;
        if (out && k < cap)
            out[k] = m->entries[i]->t;
        k++;
    }
    return k;
}

sg_layer *sg_model_layer(const sg_model *m, const char *name)
{
    if (!m || !name)
        null_arg("model_layer", m ? "name" : "model");
    for (int i = 0; m && name && i < m->n_layers; i++)
        if (strcmp(m->layers[i]->name, name) == 0)
            return m->layers[i];
    return NULL;
}

int sg_model_layers(const sg_model *m, sg_layer **out, int cap)
{
    if (!m) {
        null_arg("model_layers", "model");
        return 0;
    }
    for (int i = 0; out && i < cap && i < m->n_layers; i++)
        out[i] = m->layers[i];
    return m->n_layers;
}

/* ------------------------------------------------------------------------- */
/* layers: creation */

/* (layer_kinds.h) */
sg_layer *sg_nn_layer_new(sg_model *m, const char *op, const char *name, sg_layer_kind_id kind)
{
    if (!m) {
        if (!sg_has_error())
            sg_set_error("%s: NULL model", op);
        return NULL;
    }
    if (sg_scope_depth() != 0) {
        sg_set_error("%s: build models with no scope open (depth is %d)", op, sg_scope_depth());
        return NULL;
    }
    char auto_name[SG_LAYER_NAME_MAX];
    if (!name) {
        int count = 1;
        for (int i = 0; i < m->n_layers; i++)
            count += m->layers[i]->kind == kind;
        do
            snprintf(auto_name, sizeof auto_name, "%s%d", sg_layer_kinds[kind].name, count++);
        while (sg_model_layer(m, auto_name));
        name = auto_name;
    }
    if (!sg_nn_name_ok(op, name))
        return NULL;
    if (strlen(name) >= SG_LAYER_NAME_MAX) {
        sg_set_error("%s: layer name \"%s\" is longer than %d bytes", op, name, SG_LAYER_NAME_MAX - 1);
        return NULL;
    }
    if (sg_model_layer(m, name)) {
        sg_set_error("%s: the model already has a layer named \"%s\"", op, name);
        return NULL;
    }
    if (m->n_layers == m->cap_layers) {
        int cap = m->cap_layers ? m->cap_layers * 2 : 16;
        sg_layer **nl = realloc(m->layers, (size_t)cap * sizeof *nl);
        if (!nl) {
            sg_set_error("%s: out of memory", op);
            return NULL;
        }
        m->layers = nl;
        m->cap_layers = cap;
    }
    sg_layer *l = calloc(1, sizeof *l);
    if (!l) {
        sg_set_error("%s: out of memory", op);
        return NULL;
    }
    l->model = m;
    l->kind = kind;
    l->label = sg_layer_kinds[kind].name;
    l->ctor = op;
    l->out_ndim = -1;
    snprintf(l->name, sizeof l->name, "%s", name);
    m->layers[m->n_layers++] = l;
    return l;
}

/* (layer_kinds.h) The layer is the last one made and its tensors are the
 * last entries registered. */
sg_layer *sg_nn_layer_abort(sg_layer *l)
{
    sg_model *m = l->model;
    int n0 = m->n;
    while (n0 > 0 && m->entries[n0 - 1]->owner == l)
        n0--;
    truncate_entries(m, n0);
    m->n_layers--;
    layer_free(l);
    return NULL;
}

/* (layer_kinds.h) */
sg_tensor *sg_nn_layer_tensor(sg_layer *l, const char *short_name, int ndim, const int *shape,
                               sg_init init, sg_rng *rng, bool trainable)
{
    /* messages name the constructor the user called, not sg_zeros */
    const char *token = sg_api_enter(l->ctor);
    sg_tensor *t = sg_zeros(ndim, shape);
    if (t && sg_init_fill(t, init, rng) < 0) {
        sg_tensor_free(t);
        t = NULL;
    }
    sg_api_leave(token);
    return t ? sg_layer_add_param(l, short_name, t, trainable) : NULL;
}

sg_tensor *sg_layer_add_param(sg_layer *l, const char *short_name, sg_tensor *value, bool trainable)
{
    if (!l) {
        sg_tensor_free(value);
        if (!sg_has_error())
            sg_set_error("layer_add_param: NULL layer");
        return NULL;
    }
    char full[SG_NN_NAME_MAX + 8];
    snprintf(full, sizeof full, "%s.%s", l->name, short_name ? short_name : "");
    if (!short_name || !short_name[0]) {
        sg_tensor_free(value);
        sg_set_error("layer_add_param: empty parameter name for layer \"%s\"", l->name);
        return NULL;
    }
    return add_entry(l->model, "layer_add_param", full, value, trainable, l);
}

sg_tensor *sg_layer_param(const sg_layer *l, const char *short_name)
{
    if (!l || !short_name) {
        null_arg("layer_param", l ? "name" : "layer");
        return NULL;
    }
    char full[SG_NN_NAME_MAX + 8];
    snprintf(full, sizeof full, "%s.%s", l->name, short_name);
    return sg_model_param(l->model, full);
}

sg_layer *sg_model_add(sg_model *m, sg_layer *layer)
{
    if (!m || !layer) {
        if (!sg_has_error())
            sg_set_error("model_add: NULL %s", m ? "layer" : "model");
        return NULL;
    }
    return sg_sequential_add(&m->root, layer);
}

sg_layer *sg_nn_model_root(sg_model *m) { return &m->root; }

const char *sg_layer_name(const sg_layer *l)
{
    if (!l)
        null_arg("layer_name", "layer");
    return l ? l->name : "";
}

const char *sg_layer_kind(const sg_layer *l)
{
    if (!l)
        null_arg("layer_kind", "layer");
    return l ? l->label : "";
}

size_t sg_layer_num_params(const sg_layer *l)
{
    if (!l) {
        null_arg("layer_num_params", "layer");
        return 0;
    }
    size_t total = 0;
    const sg_model *m = l->model;
    for (int i = 0; i < m->n; i++)
        if (m->entries[i]->owner == l && m->entries[i]->trainable)
            total += sg_size(m->entries[i]->t);
    for (int i = 0; i < l->n_child; i++)
        if (l->child[i]) /* a residual block's shortcut may be absent */
            total += sg_layer_num_params(l->child[i]);
    return total;
}

/* ------------------------------------------------------------------------- */
/* forward */

/* (layer_kinds.h) */
sg_tensor *sg_nn_layer_run(sg_layer *l, sg_tensor *x, bool training)
{
    if (!x)
        return NULL;
    const sg_layer_kind_row *row = &sg_layer_kinds[l->kind];
    /* a nesting layer's errors come from its children, which name themselves */
    bool name_errors = !row->nests && !sg_has_error();
    sg_tensor *y = row->forward(l, x, training);
    if (!y && name_errors) { /* prefix the message with the layer it came from */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", sg_has_error() ? sg_last_error() : "returned NULL");
        sg_clear_error();
        sg_set_error("layer \"%s\" (%s): %s", l->name, l->label, msg);
    }
    if (y) {
        l->out_ndim = sg_ndim(y);
        memcpy(l->out_shape, sg_shape(y), (size_t)l->out_ndim * sizeof(int));
    }
    return y;
}

sg_tensor *sg_layer_forward(sg_layer *l, sg_tensor *x, bool training)
{
    if (!l) {
        if (!sg_has_error())
            sg_set_error("layer_forward: NULL layer");
        return NULL;
    }
    if (!sg_check_tensor("layer_forward", x))
        return NULL;
    return sg_nn_layer_run(l, x, training);
}

sg_tensor *sg_model_forward(sg_model *m, sg_tensor *x)
{
    if (!m) {
        if (!sg_has_error())
            sg_set_error("model_forward: NULL model");
        return NULL;
    }
    if (!sg_check_tensor("model_forward", x))
        return NULL;
    return sg_nn_layer_run(&m->root, x, m->training);
}

/* ------------------------------------------------------------------------- */
/* summary */

static void fmt_count(size_t v, char *buf, size_t len)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%zu", v);
    size_t o = 0;
    for (int i = 0; i < n && o + 1 < len; i++) {
        if (i && (n - i) % 3 == 0 && o + 1 < len)
            buf[o++] = ',';
        if (o + 1 < len)
            buf[o++] = digits[i];
    }
    buf[o] = '\0';
}

static void reset_shapes(sg_layer *l)
{
    l->out_ndim = -1;
    for (int i = 0; i < l->n_child; i++)
        if (l->child[i])
            reset_shapes(l->child[i]);
}

static void print_rows(FILE *f, const sg_layer *l, int depth)
{
    for (int i = 0; i < l->n_child; i++) {
        const sg_layer *c = l->child[i];
        if (!c)
            continue;
        char label[128], shape[96], count[32];
        snprintf(label, sizeof label, "%*s%s (%s)", 2 * depth, "", c->name, c->label);
        if (c->out_ndim >= 0) {
            shape[0] = '(';
            size_t o = 1;
            for (int d = 0; d < c->out_ndim; d++)
                o += (size_t)snprintf(shape + o, sizeof shape - o, d ? ",%d" : "%d", c->out_shape[d]);
            snprintf(shape + o, sizeof shape - o, ")");
        } else {
            snprintf(shape, sizeof shape, "-");
        }
        fmt_count(sg_layer_num_params(c), count, sizeof count);
        fprintf(f, "%-36s %-20s %12s\n", label, shape, count);
        if (sg_layer_kinds[c->kind].nests)
            print_rows(f, c, depth + 1);
    }
}

int sg_model_summary(sg_model *m, FILE *f, int ndim, const int *input_shape)
{
    if (!m || !f) {
        sg_set_error("model_summary: NULL %s", m ? "file" : "model");
        return -1;
    }
    reset_shapes(&m->root);
    if (sg_scope_begin() < 0)
        return -1;
    bool grad = sg_set_grad_enabled(false);
    sg_tensor *x = sg_zeros(ndim, input_shape);
    sg_tensor *y = x ? sg_nn_layer_run(&m->root, x, false) : NULL;
    char in_shape[96];
    if (x)
        SG_NN_SHAPE(x, in_shape);
    sg_set_grad_enabled(grad);
    sg_scope_end();
    if (!y)
        return -1;
    char total[32], buffers[32], line[80];
    memset(line, '=', sizeof line - 1);
    line[sizeof line - 1] = '\0';
    fprintf(f, "%-36s %-20s %12s\n%.70s\n", "Layer (kind)", "Output shape", "Params", line);
    print_rows(f, &m->root, 0);
    fmt_count(sg_model_num_params(m, false), total, sizeof total);
    fmt_count(sg_model_num_params(m, true) - sg_model_num_params(m, false), buffers, sizeof buffers);
    fprintf(f, "%.70s\nInput shape: %s\nTrainable params: %s\nBuffer values: %s\n", line, in_shape, total,
            buffers);
    return 0;
}

/* ------------------------------------------------------------------------- */
/* atomic file replacement (used by the savers) */

FILE *sg_nn_atomic_open(const char *op, const char *path, const char *shown, char **tmp)
{
    *tmp = NULL;
    if (!path || !path[0]) {
        sg_set_error("%s: %s path", op, path ? "empty" : "NULL");
        return NULL;
    }
    if (!shown)
        shown = path;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
    char *name = malloc(dlen + strlen(base) + sizeof ".XXXXXX" + 1);
    if (!name) {
        sg_set_error("%s: %s: out of memory", op, shown);
        return NULL;
    }
    /* "<dir>/.<base>.XXXXXX": in the target's directory (rename stays on one
     * file system), hidden, unique (mkstemp's O_EXCL never follows a link) */
    sprintf(name, "%.*s.%s.XXXXXX", (int)dlen, path, base);
    int fd = mkstemp(name);
    if (fd < 0) {
        sg_set_error("%s: %s: cannot create a file in its directory: %s", op, shown, strerror(errno));
        free(name);
        return NULL;
    }
    /* mkstemp makes the file 0600; give it the mode a plain fopen would
     * (0666 less the umask), or the mode of the file it replaces */
    struct stat st;
    mode_t mode;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
        mode = st.st_mode & 07777;
    } else {
        mode_t mask = umask(022); /* reading the umask means setting it */
        umask(mask);
        mode = 0666 & ~mask;
    }
    FILE *f = fchmod(fd, mode) == 0 ? fdopen(fd, "wb") : NULL;
    if (!f) {
        sg_set_error("%s: %s: cannot open a temporary file beside it: %s", op, shown, strerror(errno));
        close(fd);
        unlink(name);
        free(name);
        return NULL;
    }
    *tmp = name;
    return f;
}

int sg_nn_atomic_commit(const char *op, const char *path, const char *shown, FILE *f, char *tmp, bool ok)
{
    if (!f) {
        free(tmp);
        return -1;
    }
    if (!shown)
        shown = path;
    int err = ok ? 0 : (errno ? errno : EIO); /* errno of the failed write */
    if (ok && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        err = errno ? errno : EIO;
    if (fclose(f) != 0 && !err)
        err = errno ? errno : EIO;
    if (!err && rename(tmp, path) != 0) {
        sg_set_error("%s: %s: cannot rename the temporary file over it: %s", op, shown, strerror(errno));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    if (err) {
        if (!sg_has_error())
            sg_set_error("%s: %s: write error: %s", op, shown, strerror(err));
        unlink(tmp);
        free(tmp);
        return -1;
    }
    /* make the rename itself durable: fsync the directory (best effort) */
    const char *slash = strrchr(tmp, '/');
    if (slash)
        tmp[slash == tmp ? 1 : slash - tmp] = '\0';
    int dfd = open(slash ? tmp : ".", O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(tmp);
    return 0;
}
