/*
 * html.c — a graph's backprop as one self-contained HTML page that a person
 * steps through: the forward values appearing node by node, then, in the
 * order sg_backward visits the nodes, each node's upstream gradient, the
 * local derivative of each input with its formula, and the product added
 * into each input's gradient (sg_write_html).
 *
 * Key idea: the page shows what the engine did, not a re-derivation. The
 * writer runs a backward pass of its own through sg_backward's walk
 * (sg_backward_observed: same order, same local derivatives, every .grad
 * restored at the end) and copies, at each visited node, dy, each dx and
 * each input's gradient before and after the addition. The numbers go into
 * the page as a JavaScript object; the viewer (viewer/viewer.js and
 * viewer/viewer.css, embedded at build time by viewer/embed.py) draws the
 * SVG and steps through them. Nothing is fetched from the network.
 *
 * Layout: Graphviz `dot -Tplain` when it runs (node centres and edge
 * splines), else a layered layout of our own: a node's column is one more
 * than its inputs' deepest column, a leaf sits just left of its first use,
 * rows are ordered by the mean row of the inputs.
 *
 * Invariants
 *   - Every number on the page was read from a tensor of the engine: values
 *     from the forward graph, gradients from the observed pass.
 *   - A tensor of more than SMALL elements is written as its size, shape,
 *     min, max, mean and L2 norm, and its first PREVIEW values.
 *   - Nothing is written to f unless the whole trace was collected.
 */
#include "sg_internal.h"

#include <math.h>
#include <unistd.h>

enum {
    SMALL = 16,   /* tensors up to this size show every value */
    PREVIEW = 64, /* larger ones: the first PREVIEW values, on demand */
    BOX_W = 156,  /* node box in the picture, pixels */
    BOX_H = 62,
};

/* The viewer's script and style sheet (viewer_assets.c, made at build time
 * from viewer/viewer.js and viewer/viewer.css). */
extern const unsigned char sg_viewer_js[], sg_viewer_css[];
extern const size_t sg_viewer_js_len, sg_viewer_css_len;

/* ---- the local derivatives the viewer names, one row per op ---- */

/* What the viewer says about op's input k: the formula of its local
 * derivative, and whether the derivative is elementwise (then the viewer
 * shows its values: dx = dy × local, for an input of the output's shape). */
typedef struct formula {
    const char *in[3]; /* per input; concat's inputs all use in[0] */
    bool elementwise;
} formula;

static const formula formulas[SG_OP_COUNT] = {
    [SG_OP_ADD] = {{"∂(a+b)/∂a = 1", "∂(a+b)/∂b = 1"}, true},
    [SG_OP_SUB] = {{"∂(a−b)/∂a = 1", "∂(a−b)/∂b = −1"}, true},
    [SG_OP_MUL] = {{"∂(a·b)/∂a = b", "∂(a·b)/∂b = a"}, true},
    [SG_OP_SIN] = {{"∂sin x/∂x = cos x"}, true},
    [SG_OP_COS] = {{"∂cos x/∂x = −sin x"}, true},
    [SG_OP_TANH] = {{"∂tanh x/∂x = 1 − tanh²x = 1 − y²"}, true},
    [SG_OP_ABS] = {{"∂|x|/∂x = sign(x), 0 at 0"}, true},
    [SG_OP_MINIMUM] = {{"∂min(a,b)/∂a = 1 where a < b (½ at a tie)", "∂min(a,b)/∂b = 1 where b < a (½ at a tie)"}, true},
    [SG_OP_MAXIMUM] = {{"∂max(a,b)/∂a = 1 where a > b (½ at a tie)", "∂max(a,b)/∂b = 1 where b > a (½ at a tie)"}, true},
    [SG_OP_WHERE] = {{"the condition: no gradient", "∂/∂a = 1 where the condition holds, else 0",
                      "∂/∂b = 1 where it does not, else 0"}, true},
    [SG_OP_CLAMP] = {{"∂clamp(x,lo,hi)/∂x = 1 for lo ≤ x ≤ hi, else 0"}, true},
    [SG_OP_GATHER] = {{"dx = scatter_add of dy to the positions the index picked", "the index: no gradient"}, false},
    [SG_OP_SCATTER_ADD] = {{"∂/∂base = 1: dbase = dy", "the index: no gradient",
                            "dsrc = gather(dy) at the index"}, false},
    [SG_OP_CUSTOM] = {{"a user-defined primitive: its own backward gives dx"}, false},
    [SG_OP_CAST] = {{"∂(x converted)/∂x = 1: dx = dy converted back to x's dtype"}, true},
    [SG_OP_DIV] = {{"∂(a/b)/∂a = 1/b", "∂(a/b)/∂b = −a/b²"}, true},
    [SG_OP_NEG] = {{"∂(−x)/∂x = −1"}, true},
    [SG_OP_POW] = {{"∂(xᵖ)/∂x = p·xᵖ⁻¹"}, true},
    [SG_OP_ADD_SCALAR] = {{"∂(x+s)/∂x = 1"}, true},
    [SG_OP_MUL_SCALAR] = {{"∂(s·x)/∂x = s"}, true},
    [SG_OP_EXP] = {{"∂eˣ/∂x = eˣ = y"}, true},
    [SG_OP_LOG] = {{"∂ln x/∂x = 1/x"}, true},
    [SG_OP_RELU] = {{"∂max(x,0)/∂x = 1 if x > 0, else 0"}, true},
    [SG_OP_SUM] = {{"∂Σx/∂x = 1 for every summed element: dx = dy broadcast back"}, false},
    [SG_OP_MAX] = {{"∂max x/∂x = 1 at the maximum (shared evenly by ties), 0 elsewhere"}, false},
    [SG_OP_RESHAPE] = {{"a view: dx = dy reshaped to x's shape"}, false},
    [SG_OP_PERMUTE] = {{"dx = dy with the dims put back (inverse permutation)"}, false},
    [SG_OP_BROADCAST_TO] = {{"a copied value gets the sum: dx = dy summed over the broadcast axes"}, false},
    [SG_OP_SUM_TO] = {{"∂Σx/∂x = 1: dx = dy broadcast back to x's shape"}, false},
    [SG_OP_SLICE] = {{"dx = dy in the slice's place, 0 elsewhere"}, false},
    [SG_OP_CONCAT] = {{"dxᵢ = the part of dy where xᵢ was put"}, false},
    [SG_OP_MATMUL] = {{"∂(a·b)/∂a: da = dy·bᵀ", "∂(a·b)/∂b: db = aᵀ·dy"}, false},
    [SG_OP_ADDMM] = {{"dc = dy summed to c's shape", "da = dy·bᵀ", "db = aᵀ·dy"}, false},
    [SG_OP_UNFOLD] = {{"dx = fold(dy): each window's gradient added back where it was read (col2im)"}, false},
    [SG_OP_FOLD] = {{"dx = unfold(dy): the adjoint of fold (im2col)"}, false},
};

const char *sg_op_formula(int op, int input)
{
    if (op <= SG_OP_LEAF || op >= SG_OP_COUNT || input < 0)
        return NULL;
    if (op == SG_OP_CONCAT || op == SG_OP_CUSTOM) /* any number of inputs, one rule */
        input = 0;
    return input < 3 ? formulas[op].in[input] : NULL;
}

/* ---- what is copied out of the engine ---- */

/* A tensor's values as shown: all of them (n <= SMALL), or statistics and
 * the first PREVIEW. */
typedef struct values {
    size_t n;
    double *v; /* min(n, PREVIEW) values, malloc'd; NULL if none */
    bool f64;  /* shown with float64's digits */
    double min, max, mean, norm;
    bool present;
} values;

typedef struct node {
    sg_tensor *t;
    int rank;
    double x, y; /* centre, pixels */
    values val;
} node;

typedef struct contribution {
    int input; /* node index */
    int k;     /* which input slot of the visited node */
    values local, dx, before, after;
} contribution;

typedef struct bstep {
    int node;
    values dy;
    int n_contrib;
    contribution *c;
} bstep;

typedef struct edge {
    int from, to, k;
    int n_pts;
    double *pts; /* (n_pts, 2) spline control points, pixels; NULL = straight */
} edge;

typedef struct trace {
    node *nodes;
    int n;
    struct slot { const sg_tensor *t; int i; } *sorted; /* (n) by address, for lookups */
    edge *edges;
    int n_edges;
    bstep *steps;
    int n_steps, cap_steps;
    values seed;
    bool has_backward;
    double width, height;
    const char *layout;
} trace;

static void values_free(values *v)
{
    free(v->v);
    v->v = NULL;
}

/* Copy what the page shows of t (NULL: nothing). */
static int values_take(values *out, const sg_tensor *t)
{
    *out = (values){0};
    if (!t)
        return 0;
    out->present = true;
    out->f64 = t->dtype == SG_FLOAT64;
    out->n = t->size;
    size_t keep = t->size < PREVIEW ? t->size : PREVIEW;
    if (keep) {
        out->v = malloc(keep * sizeof *out->v);
        if (!out->v) {
            sg_set_error("write_html: out of memory copying a %zu-value tensor", t->size);
            return -1;
        }
        for (size_t i = 0; i < keep; i++)
            out->v[i] = sg_value_at(t, i);
    }
    double lo = INFINITY, hi = -INFINITY, sum = 0, sq = 0;
    for (size_t i = 0; i < t->size; i++) {
        double x = sg_value_at(t, i);
        lo = x < lo ? x : lo;
        hi = x > hi ? x : hi;
        sum += x;
        sq += x * x;
    }
    out->min = lo;
    out->max = hi;
    out->mean = t->size ? sum / (double)t->size : 0;
    out->norm = sqrt(sq);
    return 0;
}

static int cmp_slot(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const struct slot *)a)->t, y = (uintptr_t)((const struct slot *)b)->t;
    return x < y ? -1 : x > y;
}

/* The node index of tensor t (every tensor the pass meets is a node). */
static int index_of(const trace *tr, const sg_tensor *t)
{
    struct slot key = {t, 0};
    const struct slot *hit = bsearch(&key, tr->sorted, (size_t)tr->n, sizeof *tr->sorted, cmp_slot);
    return hit ? hit->i : -1;
}

/* ---- the observed backward pass ---- */

static int observe(void *ctx, sg_tensor *t, sg_tensor *const *dx, bool after)
{
    trace *tr = ctx;
    if (!after) {
        if (tr->n_steps == tr->cap_steps) {
            int cap = tr->cap_steps ? 2 * tr->cap_steps : 16;
            bstep *s = realloc(tr->steps, (size_t)cap * sizeof *s);
            if (!s)
                goto oom;
            tr->steps = s;
            tr->cap_steps = cap;
        }
        bstep *s = &tr->steps[tr->n_steps++];
        *s = (bstep){.node = index_of(tr, t)};
        s->c = calloc((size_t)t->n_in, sizeof *s->c);
        if (!s->c || values_take(&s->dy, t->grad) < 0)
            goto oom;
        for (int k = 0; k < t->n_in; k++) {
            if (!dx[k])
                continue;
            contribution *c = &s->c[s->n_contrib++];
            c->input = index_of(tr, t->in[k]);
            c->k = k;
            if (values_take(&c->dx, dx[k]) < 0 || values_take(&c->before, t->in[k]->grad) < 0)
                return -1;
        }
        return 0;
    }
    bstep *s = &tr->steps[tr->n_steps - 1];
    for (int j = 0; j < s->n_contrib; j++)
        if (values_take(&s->c[j].after, t->in[s->c[j].k]->grad) < 0)
            return -1;
    /* The local derivative's values, for an elementwise op: its backward
     * given dy = 1 (the pass is done with this node, and grad mode is off:
     * this records nothing and touches no .grad). */
    if (!formulas[t->op].elementwise)
        return 0;
    sg_tensor *ones = sg_ones(t->ndim, t->shape);
    sg_tensor *lx[3] = {NULL, NULL, NULL};
    if (!ones || t->n_in > 3)
        return ones ? 0 : -1;
    bool had_error = sg_has_error(); /* a caller's earlier message is not ours */
    sg_op_table[t->op].backward(t, ones, lx);
    if (!had_error && sg_has_error())
        return -1;
    for (int j = 0; j < s->n_contrib; j++) {
        sg_tensor *l = lx[s->c[j].k];
        if (l && sg_same_shape(l, t) && values_take(&s->c[j].local, l) < 0)
            return -1;
    }
    return 0;
oom:
    sg_set_error("write_html: out of memory recording the backward pass");
    return -1;
}

/* ---- layout ---- */

/* Our own: columns by depth, rows by the inputs' mean row. */
static void layout_layered(trace *tr)
{
    int max_rank = 0;
    for (int i = 0; i < tr->n; i++)
        tr->nodes[i].x = tr->nodes[i].y = 0;
    for (int i = 0; i < tr->n; i++) {
        sg_tensor *t = tr->nodes[i].t;
        int r = 0;
        for (int k = 0; k < t->n_in; k++) {
            int j = index_of(tr, t->in[k]);
            if (j >= 0 && tr->nodes[j].rank + 1 > r)
                r = tr->nodes[j].rank + 1;
        }
        tr->nodes[i].rank = r;
    }
    /* a leaf just left of its nearest user */
    for (int e = 0; e < tr->n_edges; e++) {
        node *from = &tr->nodes[tr->edges[e].from], *to = &tr->nodes[tr->edges[e].to];
        if (from->t->op == SG_OP_LEAF && (from->x == 0 || to->rank - 1 < from->rank)) {
            from->rank = to->rank - 1;
            from->x = 1; /* has a user */
        }
    }
    for (int i = 0; i < tr->n; i++)
        max_rank = tr->nodes[i].rank > max_rank ? tr->nodes[i].rank : max_rank;
    int max_rows = 0;
    for (int r = 0; r <= max_rank; r++) {
        int row = 0;
        /* forward order within a column, then a stable sort by the inputs'
         * mean row (insertion sort: columns are short) */
        int count = 0;
        for (int i = 0; i < tr->n; i++)
            count += tr->nodes[i].rank == r;
        int *col = malloc((size_t)(count ? count : 1) * sizeof *col);
        double *key = malloc((size_t)(count ? count : 1) * sizeof *key);
        if (!col || !key) { /* no memory: rows in forward order */
            free(col);
            free(key);
            for (int i = 0; i < tr->n; i++)
                if (tr->nodes[i].rank == r)
                    tr->nodes[i].y = row++;
            max_rows = row > max_rows ? row : max_rows;
            continue;
        }
        int c = 0;
        for (int i = 0; i < tr->n; i++) {
            if (tr->nodes[i].rank != r)
                continue;
            sg_tensor *t = tr->nodes[i].t;
            double sum = 0;
            int cnt = 0;
            for (int k = 0; k < t->n_in; k++) {
                int j = index_of(tr, t->in[k]);
                if (j >= 0 && tr->nodes[j].rank < r) {
                    sum += tr->nodes[j].y;
                    cnt++;
                }
            }
            double kv = cnt ? sum / cnt : (double)c;
            int p = c++;
            while (p > 0 && key[p - 1] > kv) {
                col[p] = col[p - 1];
                key[p] = key[p - 1];
                p--;
            }
            col[p] = i;
            key[p] = kv;
        }
        for (int p = 0; p < c; p++)
            tr->nodes[col[p]].y = p;
        max_rows = c > max_rows ? c : max_rows;
        free(col);
        free(key);
    }
    const double gap_x = 70, gap_y = 26, margin = 20;
    for (int i = 0; i < tr->n; i++) {
        node *nd = &tr->nodes[i];
        int count = 0;
        for (int j = 0; j < tr->n; j++)
            count += tr->nodes[j].rank == nd->rank;
        double offset = (max_rows - count) * (BOX_H + gap_y) / 2; /* centre short columns */
        nd->x = margin + BOX_W / 2.0 + nd->rank * (BOX_W + gap_x);
        nd->y = margin + BOX_H / 2.0 + offset + nd->y * (BOX_H + gap_y);
    }
    tr->width = 2 * margin + (max_rank + 1) * BOX_W + max_rank * gap_x;
    tr->height = 2 * margin + max_rows * BOX_H + (max_rows ? max_rows - 1 : 0) * gap_y;
    tr->layout = "layered";
}

/* Graphviz: write the graph as DOT to a temporary file, read back the
 * positions `dot -Tplain` gives (inches, y up). 0, or -1 if dot did not run
 * (no message: the caller falls back or reports). */
static int layout_dot(trace *tr)
{
    const char *tmp = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/sg-html-XXXXXX", tmp && tmp[0] && strlen(tmp) < 4000 ? tmp : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    FILE *g = fdopen(fd, "w");
    if (!g) {
        close(fd);
        unlink(path);
        return -1;
    }
    fprintf(g, "digraph g {\n rankdir=LR; nodesep=0.35; ranksep=0.9;\n"
               " node [shape=box, fixedsize=true, width=%.4f, height=%.4f, label=\"\"];\n",
            BOX_W / 72.0, BOX_H / 72.0);
    for (int i = 0; i < tr->n; i++)
        fprintf(g, " n%d;\n", i);
    for (int e = 0; e < tr->n_edges; e++)
        fprintf(g, " n%d -> n%d;\n", tr->edges[e].from, tr->edges[e].to);
    fputs("}\n", g);
    if (fclose(g) != 0) {
        unlink(path);
        return -1;
    }
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "dot -Tplain '%s' 2>/dev/null", path);
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    if (!p) {
        unlink(path);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    double scale = 1, gh = 0;
    int nodes_seen = 0, bad = 0;
    while (getline(&line, &cap, p) > 0) {
        char *s = line, *end;
        if (!strncmp(s, "graph ", 6)) {
            double w;
            if (sscanf(s + 6, "%lf %lf %lf", &scale, &w, &gh) != 3)
                bad = 1;
            tr->width = w * 72 * scale;
            tr->height = gh * 72 * scale;
        } else if (!strncmp(s, "node n", 6)) {
            int i;
            double x, y;
            if (sscanf(s + 6, "%d %lf %lf", &i, &x, &y) != 3 || i < 0 || i >= tr->n) {
                bad = 1;
                continue;
            }
            tr->nodes[i].x = x * 72 * scale;
            tr->nodes[i].y = (gh - y) * 72 * scale;
            nodes_seen++;
        } else if (!strncmp(s, "edge n", 6)) {
            int a, b, np, used;
            if (sscanf(s + 6, "%d n%d %d%n", &a, &b, &np, &used) != 3 || np < 2 || np > 10000) {
                bad = 1;
                continue;
            }
            s += 6 + used;
            int e = 0; /* the first edge a -> b still without points (x*x has two) */
            while (e < tr->n_edges && !(tr->edges[e].from == a && tr->edges[e].to == b && !tr->edges[e].pts))
                e++;
            if (e == tr->n_edges)
                continue;
            double *pts = malloc((size_t)np * 2 * sizeof *pts);
            if (!pts)
                continue; /* drawn straight */
            for (int j = 0; j < 2 * np; j++) {
                pts[j] = strtod(s, &end);
                if (end == s)
                    bad = 1;
                s = end;
                pts[j] *= 72 * scale;
                if (j % 2)
                    pts[j] = gh * 72 * scale - pts[j];
            }
            tr->edges[e].pts = pts;
            tr->edges[e].n_pts = np;
        }
    }
    free(line);
    int st = pclose(p);
    unlink(path);
    if (st != 0 || bad || nodes_seen != tr->n)
        return -1;
    tr->layout = "dot";
    return 0;
}

/* ---- the page ---- */

/* A number as JavaScript reads it back: 9 significant digits round-trip a
 * float32, 17 a float64. */
static void put_num(FILE *f, double x, bool f64)
{
    if (isnan(x))
        fputs("NaN", f);
    else if (isinf(x))
        fputs(x > 0 ? "Infinity" : "-Infinity", f);
    else
        fprintf(f, f64 ? "%.17g" : "%.9g", x);
}

/* A JavaScript string literal; < > & escaped so no "</script>" can occur. */
static void put_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20 || *p == '<' || *p == '>' || *p == '&')
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static void put_values(FILE *f, const values *v)
{
    if (!v->present) {
        fputs("null", f);
        return;
    }
    fprintf(f, "{n:%zu,v:[", v->n);
    size_t keep = v->n < PREVIEW ? v->n : PREVIEW;
    for (size_t i = 0; i < keep; i++) {
        if (i)
            fputc(',', f);
        put_num(f, v->v[i], v->f64);
    }
    fputc(']', f);
    if (v->n > SMALL) {
        fputs(",min:", f);
        put_num(f, v->min, v->f64);
        fputs(",max:", f);
        put_num(f, v->max, v->f64);
        fputs(",mean:", f);
        put_num(f, v->mean, v->f64);
        fputs(",norm:", f);
        put_num(f, v->norm, v->f64);
    }
    fputc('}', f);
}

static void put_label(FILE *f, const sg_tensor *t)
{
    char b[48];
    if (t->name[0])
        put_str(f, t->name);
    else {
        snprintf(b, sizeof b, "#%u", (unsigned)t->id);
        put_str(f, b);
    }
}

static void write_page(FILE *f, const trace *tr, const char *title)
{
    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<meta name=\"generator\" content=\"ScratchGrad sg_write_html\">\n"
          "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
          "script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:\">\n"
          "<title>ScratchGrad backprop</title>\n<style>\n",
          f);
    fwrite(sg_viewer_css, 1, sg_viewer_css_len, f);
    fputs("</style>\n</head>\n<body>\n<noscript>This page steps through backprop with JavaScript; "
          "please enable it.</noscript>\n<script>\nwindow.SG_TRACE = {\n title: ",
          f);
    put_str(f, title);
    fprintf(f, ",\n layout: \"%s\", width: %.1f, height: %.1f, box: [%d, %d],\n small: %d,\n nodes: [\n",
            tr->layout, tr->width, tr->height, BOX_W, BOX_H, SMALL);
    char sb[96];
    for (int i = 0; i < tr->n; i++) {
        const node *nd = &tr->nodes[i];
        const sg_tensor *t = nd->t;
        fputs("  {label: ", f);
        put_label(f, t);
        fprintf(f, ", id: %u, op: \"%s\", leaf: %s, param: %s, shape: \"%s\", x: %.1f, y: %.1f, in: [",
                (unsigned)t->id, sg_op_table[t->op].name, t->op == SG_OP_LEAF ? "true" : "false",
                t->requires_grad ? "true" : "false", sg_fmt_shape(t->ndim, t->shape, sb, sizeof sb), nd->x,
                nd->y);
        for (int k = 0; k < t->n_in; k++)
            fprintf(f, "%s%d", k ? "," : "", index_of(tr, t->in[k]));
        fputs("], ", f);
        if (t->op == SG_OP_POW || t->op == SG_OP_ADD_SCALAR || t->op == SG_OP_MUL_SCALAR) {
            fprintf(f, "attr: \"%s = ", t->op == SG_OP_POW ? "p" : "s");
            put_num(f, t->attr.p, t->dtype == SG_FLOAT64); /* the exponent or scalar the formula names */
            fputs("\", ", f);
        }
        fputs("value: ", f);
        put_values(f, &nd->val);
        fputs("},\n", f);
    }
    fputs(" ],\n edges: [\n", f);
    for (int e = 0; e < tr->n_edges; e++) {
        const edge *ed = &tr->edges[e];
        fprintf(f, "  {from: %d, to: %d, k: %d, pts: [", ed->from, ed->to, ed->k);
        for (int j = 0; j < 2 * ed->n_pts; j++)
            fprintf(f, "%s%.1f", j ? "," : "", ed->pts[j]);
        fputs("]},\n", f);
    }
    fputs(" ],\n seed: ", f);
    put_values(f, &tr->seed);
    fputs(",\n backward: ", f);
    fputs(tr->has_backward ? "[\n" : "null,\n};\n", f);
    for (int s = 0; s < tr->n_steps; s++) {
        const bstep *st = &tr->steps[s];
        const sg_tensor *t = tr->nodes[st->node].t;
        fprintf(f, "  {node: %d, dy: ", st->node);
        put_values(f, &st->dy);
        fputs(", c: [\n", f);
        for (int j = 0; j < st->n_contrib; j++) {
            const contribution *c = &st->c[j];
            const char *fm = sg_op_formula(t->op, c->k);
            fprintf(f, "   {input: %d, k: %d, formula: ", c->input, c->k);
            if (fm)
                put_str(f, fm);
            else
                fputs("null", f);
            fputs(", local: ", f);
            put_values(f, &c->local);
            fputs(", dx: ", f);
            put_values(f, &c->dx);
            fputs(", before: ", f);
            put_values(f, &c->before);
            fputs(", after: ", f);
            put_values(f, &c->after);
            fputs("},\n", f);
        }
        fputs("  ]},\n", f);
    }
    if (tr->has_backward)
        fputs(" ],\n};\n", f);
    fputs("</script>\n<script>\n", f);
    fwrite(sg_viewer_js, 1, sg_viewer_js_len, f);
    fputs("</script>\n</body>\n</html>\n", f);
}

static void trace_free(trace *tr)
{
    for (int i = 0; i < tr->n; i++)
        values_free(&tr->nodes[i].val);
    for (int e = 0; e < tr->n_edges; e++)
        free(tr->edges[e].pts);
    for (int s = 0; s < tr->n_steps; s++) {
        values_free(&tr->steps[s].dy);
        for (int j = 0; j < tr->steps[s].n_contrib; j++) {
            contribution *c = &tr->steps[s].c[j];
            values_free(&c->local);
            values_free(&c->dx);
            values_free(&c->before);
            values_free(&c->after);
        }
        free(tr->steps[s].c);
    }
    values_free(&tr->seed);
    free(tr->nodes);
    free(tr->sorted);
    free(tr->edges);
    free(tr->steps);
}

/* Every tensor y depends on, inputs first, with its values; the edges. */
static int collect_nodes(trace *tr, sg_tensor *y)
{
    sg_tensor **order;
    int n = sg_topo(y, true, &order);
    if (n < 0) {
        sg_set_error("write_html: out of memory ordering the graph");
        return -1;
    }
    tr->nodes = calloc((size_t)n, sizeof *tr->nodes);
    tr->sorted = malloc((size_t)n * sizeof *tr->sorted);
    if (!tr->nodes || !tr->sorted) {
        sg_set_error("write_html: out of memory for a graph of %d nodes", n);
        return -1;
    }
    tr->n = n;
    int n_edges = 0;
    for (int i = 0; i < n; i++) {
        tr->nodes[i].t = order[i];
        tr->sorted[i] = (struct slot){order[i], i};
        n_edges += order[i]->n_in;
        if (values_take(&tr->nodes[i].val, order[i]) < 0)
            return -1;
    }
    qsort(tr->sorted, (size_t)n, sizeof *tr->sorted, cmp_slot);
    tr->edges = calloc((size_t)(n_edges ? n_edges : 1), sizeof *tr->edges);
    if (!tr->edges) {
        sg_set_error("write_html: out of memory for %d edges", n_edges);
        return -1;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < tr->nodes[i].t->n_in; k++)
            tr->edges[tr->n_edges++] = (edge){index_of(tr, tr->nodes[i].t->in[k]), i, k, 0, NULL};
    return 0;
}

int sg_write_html(FILE *f, sg_tensor *y, const sg_html_opts *opts)
{
    static const sg_html_opts defaults = {0};
    if (!opts)
        opts = &defaults;
    if (!sg_check_file("write_html", f) || !sg_check_tensor("write_html", y) ||
        (opts->grad && !sg_check_tensor("write_html", opts->grad)))
        return -1;
    if ((unsigned)opts->layout > SG_HTML_LAYOUT_LAYERED) {
        sg_set_error("write_html: layout %d is not one of SG_HTML_LAYOUT_AUTO, _DOT, _LAYERED", (int)opts->layout);
        return -1;
    }
    SG_API_BEGIN("write_html");
    trace tr = {0};
    int rc = collect_nodes(&tr, y);
    sg_scope_begin(); /* the pass's gradients and the derivatives' values */
    if (rc == 0 && y->requires_grad) {
        sg_backward_observer obs = {"write_html", observe, &tr};
        sg_backward_opts bo = {.grad = opts->grad};
        tr.has_backward = true;
        rc = values_take(&tr.seed, opts->grad);
        if (rc == 0 && !opts->grad && y->size == 1) {
            tr.seed = (values){.present = true, .n = 1, .v = malloc(sizeof(double)), .min = 1, .max = 1,
                               .mean = 1, .norm = 1};
            if (!tr.seed.v) {
                sg_set_error("write_html: out of memory");
                rc = -1;
            } else {
                tr.seed.v[0] = 1.0;
            }
        }
        if (rc == 0)
            rc = sg_backward_observed(y, &bo, &obs);
    } else if (rc == 0 && opts->grad) {
        sg_set_error("write_html: a seed gradient was given but the output does not require a gradient");
        rc = -1;
    }
    sg_scope_end();
    if (rc == 0) {
        if (opts->layout == SG_HTML_LAYOUT_LAYERED || layout_dot(&tr) < 0) {
            if (opts->layout == SG_HTML_LAYOUT_DOT) {
                sg_set_error("write_html: Graphviz's dot did not run (apt-get install graphviz), and "
                             "SG_HTML_LAYOUT_DOT was asked for");
                rc = -1;
            } else {
                for (int i = 0; i < tr.n; i++)
                    tr.nodes[i].x = tr.nodes[i].y = 0;
                layout_layered(&tr);
            }
        }
    }
    if (rc == 0) {
        char title[160];
        if (opts->title)
            snprintf(title, sizeof title, "%s", opts->title);
        else if (y->name[0])
            snprintf(title, sizeof title, "backprop of %s", y->name);
        else
            snprintf(title, sizeof title, "backprop of #%u", (unsigned)y->id);
        write_page(f, &tr, title);
        if (fflush(f) != 0 || ferror(f)) {
            sg_set_error("write_html: the file could not be written");
            rc = -1;
        }
    }
    trace_free(&tr);
    SG_API_END();
    return rc;
}
