/*
 * safetensors.c — save and load named float32 tensors in the safetensors
 * format, with a small JSON parser for the header.
 *
 * File layout (Hugging Face safetensors):
 *   bytes 0..7     N, the header length, unsigned 64-bit little-endian
 *   bytes 8..8+N   JSON: {"name": {"dtype": "F32", "shape": [2, 3],
 *                  "data_offsets": [begin, end]}, ..., "__metadata__": {...}}
 *                  ("__metadata__" optional, a map of strings), padded with
 *                  spaces so that 8 + N is a multiple of 8
 *   bytes 8+N..    the data: each tensor's row-major values, little-endian,
 *                  at [begin, end) relative to the start of the data
 *
 * Writing: tensors sorted by name (bytewise), data contiguous in that order,
 * no "__metadata__", compact JSON — exactly what the reference (Rust/Python)
 * serializer emits for float32 tensors, so files are byte-identical. The
 * file is written to a new file made by mkstemp beside path, fsynced and
 * renamed over path (sg_nn_atomic_open/commit, model.c), so a failed save
 * leaves any old file intact, a planted link is never followed and two
 * saves never share a temporary file.
 *
 * Reading is all-or-nothing: the whole file is read and validated — header
 * length, JSON syntax (with depth, string and node limits), every entry's
 * dtype, shape and offsets, offsets tiling the data section with no hole,
 * overlap or trailing bytes (the reference reader's rules), and the exact
 * set of names and shapes the caller expects — before a single value is
 * copied. Unknown keys inside a tensor entry are ignored, as the reference
 * reader does.
 *
 * The JSON parser handles what a header needs: objects, arrays, strings
 * (all escapes, \uXXXX with surrogate pairs, UTF-8 validated) and integers.
 * true/false/null and non-integer numbers are refused. Parsed values live in
 * a node array (children linked by index) and a string pool no larger than
 * the header itself.
 */
#include "nn_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ST_MAX_HEADER 100000000ull  /* the reference reader's limit */
#define JSON_MAX_DEPTH 16
#define JSON_MAX_STRING (1u << 20)
#define JSON_MAX_NODES (1 << 24)

/* ------------------------------------------------------------------------- */
/* UTF-8 and names */

/* Length of the valid UTF-8 sequence at s (n bytes available), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return len;
}

bool sg_nn_utf8_ok(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t k = utf8_len(s + i, len - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

bool sg_nn_name_ok(const char *op, const char *name)
{
    if (!name || !name[0]) {
        sg_set_error("%s: empty name", op);
        return false;
    }
    size_t len = strlen(name);
    if (len >= SG_NN_NAME_MAX) {
        sg_set_error("%s: name \"%.40s...\" is longer than %d bytes", op, name, SG_NN_NAME_MAX - 1);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
            sg_set_error("%s: name \"%s\" contains a control character", op, name);
            return false;
        }
    }
    if (!sg_nn_utf8_ok((const unsigned char *)name, len)) {
        sg_set_error("%s: name \"%s\" is not valid UTF-8", op, name);
        return false;
    }
    if (strcmp(name, "__metadata__") == 0) {
        sg_set_error("%s: \"__metadata__\" is reserved by the safetensors format", op);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------- */
/* JSON */

enum jtype { J_OBJ, J_ARR, J_STR, J_INT };

typedef struct jnode {
    enum jtype type;
    int first, next; /* first child, next sibling (-1 = none) */
    int count;       /* children */
    const char *key; /* member key in an object (pool), else NULL */
    const char *str; /* J_STR: NUL-terminated (pool) */
    size_t len;      /* J_STR: bytes */
    long long num;   /* J_INT */
} jnode;

typedef struct jparser {
    const unsigned char *s;
    size_t n, pos;
    jnode *nodes;
    int n_nodes, cap_nodes;
    char *pool; /* decoded strings; never longer than the source */
    size_t pool_used;
    char err[200];
} jparser;

static int jerr(jparser *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static int jerr(jparser *p, const char *fmt, ...)
{
    if (!p->err[0]) {
        char msg[160];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        snprintf(p->err, sizeof p->err, "%s at byte %zu of the header", msg, p->pos);
    }
    return -1;
}

static void skip_ws(jparser *p)
{
    while (p->pos < p->n &&
           (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n' || p->s[p->pos] == '\r'))
        p->pos++;
}

static int new_node(jparser *p, enum jtype t)
{
    if (p->n_nodes == p->cap_nodes) {
        if (p->cap_nodes >= JSON_MAX_NODES)
            return jerr(p, "more than %d JSON values", JSON_MAX_NODES);
        int cap = p->cap_nodes ? p->cap_nodes * 2 : 64;
        jnode *nn = realloc(p->nodes, (size_t)cap * sizeof *nn);
        if (!nn)
            return jerr(p, "out of memory");
        p->nodes = nn;
        p->cap_nodes = cap;
    }
    jnode *j = &p->nodes[p->n_nodes];
    memset(j, 0, sizeof *j);
    j->type = t;
    j->first = j->next = -1;
    return p->n_nodes++;
}

static int hex4(jparser *p, unsigned *out)
{
    if (p->n - p->pos < 4)
        return jerr(p, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return jerr(p, "bad hex digit in a \\u escape");
    }
    *out = v;
    return 0;
}

static void put_utf8(jparser *p, unsigned cp)
{
    char *d = p->pool + p->pool_used;
    if (cp < 0x80) {
        d[0] = (char)cp;
        p->pool_used += 1;
    } else if (cp < 0x800) {
        d[0] = (char)(0xC0 | (cp >> 6));
        d[1] = (char)(0x80 | (cp & 0x3F));
        p->pool_used += 2;
    } else if (cp < 0x10000) {
        d[0] = (char)(0xE0 | (cp >> 12));
        d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        p->pool_used += 3;
    } else {
        d[0] = (char)(0xF0 | (cp >> 18));
        d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        d[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        d[3] = (char)(0x80 | (cp & 0x3F));
        p->pool_used += 4;
    }
}

/* A string at p->pos (on the opening quote) into the pool. */
static int parse_string(jparser *p, const char **out, size_t *out_len)
{
    p->pos++; /* the quote */
    size_t start = p->pool_used;
    for (;;) {
        if (p->pos >= p->n)
            return jerr(p, "unterminated string");
        if (p->pool_used - start > JSON_MAX_STRING)
            return jerr(p, "a string longer than %u bytes", JSON_MAX_STRING);
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20)
            return jerr(p, "control character 0x%02x in a string", c);
        if (c == '\\') {
            if (++p->pos >= p->n)
                return jerr(p, "unterminated string");
            unsigned char e = p->s[p->pos++];
            unsigned cp;
            switch (e) {
            case '"': case '\\': case '/': cp = e; break;
            case 'b': cp = '\b'; break;
            case 'f': cp = '\f'; break;
            case 'n': cp = '\n'; break;
            case 'r': cp = '\r'; break;
            case 't': cp = '\t'; break;
            case 'u':
                if (hex4(p, &cp) < 0)
                    return -1;
                if (cp >= 0xD800 && cp <= 0xDBFF) { /* high surrogate: a low one must follow */
                    unsigned lo;
                    if (p->n - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                        return jerr(p, "unpaired surrogate in a \\u escape");
                    p->pos += 2;
                    if (hex4(p, &lo) < 0)
                        return -1;
                    if (lo < 0xDC00 || lo > 0xDFFF)
                        return jerr(p, "unpaired surrogate in a \\u escape");
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    return jerr(p, "unpaired surrogate in a \\u escape");
                }
                if (cp == 0)
                    return jerr(p, "\\u0000 in a string");
                break;
            default: p->pos--; return jerr(p, "bad escape \\%c", e >= 0x20 && e < 0x7f ? e : '?');
            }
            put_utf8(p, cp);
            continue;
        }
        size_t k = utf8_len(p->s + p->pos, p->n - p->pos);
        if (!k)
            return jerr(p, "invalid UTF-8 in a string");
        memcpy(p->pool + p->pool_used, p->s + p->pos, k);
        p->pool_used += k;
        p->pos += k;
    }
    *out = p->pool + start;
    *out_len = p->pool_used - start;
    p->pool[p->pool_used++] = '\0';
    return 0;
}

static int parse_int(jparser *p, long long *out)
{
    bool neg = false;
    if (p->s[p->pos] == '-') {
        neg = true;
        p->pos++;
    }
    if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9')
        return jerr(p, "bad number");
    if (p->s[p->pos] == '0' && p->pos + 1 < p->n && p->s[p->pos + 1] >= '0' && p->s[p->pos + 1] <= '9')
        return jerr(p, "number with a leading zero");
    unsigned long long v = 0;
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        unsigned d = (unsigned)(p->s[p->pos] - '0');
        if (v > (9223372036854775807ull - d) / 10)
            return jerr(p, "integer too large");
        v = v * 10 + d;
        p->pos++;
    }
    if (p->pos < p->n && (p->s[p->pos] == '.' || p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
        return jerr(p, "non-integer number (only integers are expected)");
    *out = neg ? -(long long)v : (long long)v;
    return 0;
}

static int parse_value(jparser *p, int depth);

/* Object or array at p->pos (on '{' or '['). */
static int parse_container(jparser *p, int depth, bool is_obj)
{
    if (depth > JSON_MAX_DEPTH)
        return jerr(p, "nested deeper than %d levels", JSON_MAX_DEPTH);
    int self = new_node(p, is_obj ? J_OBJ : J_ARR);
    if (self < 0)
        return -1;
    const char close = is_obj ? '}' : ']';
    p->pos++;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
        return self;
    }
    int last = -1;
    for (;;) {
        const char *key = NULL;
        size_t key_len = 0;
        if (is_obj) {
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != '"')
                return jerr(p, "expected a quoted key");
            if (parse_string(p, &key, &key_len) < 0)
                return -1;
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':')
                return jerr(p, "expected ':' after a key");
            p->pos++;
        }
        int child = parse_value(p, depth + 1);
        if (child < 0)
            return -1;
        p->nodes[child].key = key;
        if (last < 0)
            p->nodes[self].first = child;
        else
            p->nodes[last].next = child;
        last = child;
        p->nodes[self].count++;
        skip_ws(p);
        if (p->pos >= p->n)
            return jerr(p, "unterminated %s", is_obj ? "object" : "array");
        if (p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->s[p->pos] == close) {
            p->pos++;
            return self;
        }
        return jerr(p, "expected ',' or '%c'", close);
    }
}

static int parse_value(jparser *p, int depth)
{
    skip_ws(p);
    if (p->pos >= p->n)
        return jerr(p, "unexpected end");
    unsigned char c = p->s[p->pos];
    if (c == '{' || c == '[')
        return parse_container(p, depth, c == '{');
    if (c == '"') {
        int self = new_node(p, J_STR);
        const char *s;
        size_t len;
        if (self < 0 || parse_string(p, &s, &len) < 0)
            return -1;
        p->nodes[self].str = s;
        p->nodes[self].len = len;
        return self;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        int self = new_node(p, J_INT);
        long long v = 0;
        if (self < 0 || parse_int(p, &v) < 0)
            return -1;
        p->nodes[self].num = v;
        return self;
    }
    if (c == 't' || c == 'f' || c == 'n')
        return jerr(p, "unsupported JSON value (true, false or null)");
    return jerr(p, "unexpected character '%c'", c >= 0x20 && c < 0x7f ? c : '?');
}

/* Parse the whole header; the root index, or -1 with p->err set. */
static int json_parse(jparser *p, const unsigned char *s, size_t n)
{
    memset(p, 0, sizeof *p);
    p->s = s;
    p->n = n;
    p->pool = malloc(n + 1);
    if (!p->pool)
        return jerr(p, "out of memory");
    int root = parse_value(p, 0);
    if (root < 0)
        return -1;
    skip_ws(p); /* the padding */
    if (p->pos != p->n)
        return jerr(p, "unexpected data after the JSON value");
    return root;
}

static void json_free(jparser *p)
{
    free(p->nodes);
    free(p->pool);
}

/* Member `key` of object node o, or -1. */
static int member(const jparser *p, int o, const char *key)
{
    for (int c = p->nodes[o].first; c >= 0; c = p->nodes[c].next)
        if (strcmp(p->nodes[c].key, key) == 0)
            return c;
    return -1;
}

/* ------------------------------------------------------------------------- */
/* the header, interpreted */

typedef struct ftensor {
    const char *name;
    const char *dtype;
    int ndim;
    int shape[SG_MAX_DIMS];
    uint64_t begin, end;
    int param; /* index of the matching caller tensor, -1 */
} ftensor;

static size_t dtype_size(const char *d)
{
    static const struct { const char *name; size_t size; } table[] = {
        {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E5M2", 1}, {"F8_E4M3", 1}, {"I16", 2}, {"U16", 2},
        {"F16", 2}, {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4}, {"F64", 8}, {"I64", 8}, {"U64", 8},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(d, table[i].name) == 0)
            return table[i].size;
    return 0;
}

static char *fmt_dims(int ndim, const int *shape, char *buf, size_t len)
{
    size_t o = (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ",%d" : "%d", shape[i]);
    if (o < len)
        snprintf(buf + o, len - o, ")");
    return buf;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const ftensor *)a)->name, ((const ftensor *)b)->name);
}

static int cmp_offset(const void *a, const void *b)
{
    const ftensor *x = *(ftensor *const *)a, *y = *(ftensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Fill ft[] from the root object; count in *nt. Message into err. */
static int read_entries(const jparser *p, int root, ftensor *ft, int *nt, char *err, size_t errlen)
{
    const jnode *r = &p->nodes[root];
    if (r->type != J_OBJ) {
        snprintf(err, errlen, "corrupt header: not a JSON object");
        return -1;
    }
    int n = 0;
    for (int c = r->first; c >= 0; c = p->nodes[c].next) {
        const jnode *e = &p->nodes[c];
        if (strcmp(e->key, "__metadata__") == 0) {
            bool ok = e->type == J_OBJ;
            for (int k = ok ? e->first : -1; k >= 0; k = p->nodes[k].next)
                ok = ok && p->nodes[k].type == J_STR;
            if (!ok) {
                snprintf(err, errlen, "corrupt header: \"__metadata__\" must map strings to strings");
                return -1;
            }
            continue;
        }
        if (e->type != J_OBJ) {
            snprintf(err, errlen, "corrupt header: entry \"%.80s\" is not an object", e->key);
            return -1;
        }
        int d = member(p, c, "dtype"), s = member(p, c, "shape"), o = member(p, c, "data_offsets");
        const char *missing = d < 0 ? "dtype" : s < 0 ? "shape" : o < 0 ? "data_offsets" : NULL;
        if (missing) {
            snprintf(err, errlen, "corrupt header: tensor \"%.80s\" has no \"%s\"", e->key, missing);
            return -1;
        }
        ftensor *t = &ft[n];
        memset(t, 0, sizeof *t);
        t->name = e->key;
        t->param = -1;
        if (p->nodes[d].type != J_STR) {
            snprintf(err, errlen, "corrupt header: the dtype of \"%.80s\" is not a string", e->key);
            return -1;
        }
        t->dtype = p->nodes[d].str;
        if (p->nodes[s].type != J_ARR || p->nodes[s].count > SG_MAX_DIMS) {
            snprintf(err, errlen, "corrupt header: the shape of \"%.80s\" is not a list of at most %d sizes",
                     e->key, SG_MAX_DIMS);
            return -1;
        }
        for (int k = p->nodes[s].first; k >= 0; k = p->nodes[k].next) {
            const jnode *v = &p->nodes[k];
            if (v->type != J_INT || v->num < 0 || v->num > INT_MAX) {
                snprintf(err, errlen, "corrupt header: the shape of \"%.80s\" has a size that is not an "
                                      "integer in [0, %d]",
                         e->key, INT_MAX);
                return -1;
            }
            t->shape[t->ndim++] = (int)v->num;
        }
        const jnode *off = &p->nodes[o];
        int b = off->first, en = b >= 0 ? p->nodes[b].next : -1;
        if (off->type != J_ARR || off->count != 2 || p->nodes[b].type != J_INT || p->nodes[en].type != J_INT ||
            p->nodes[b].num < 0 || p->nodes[en].num < p->nodes[b].num) {
            snprintf(err, errlen, "corrupt header: the data_offsets of \"%.80s\" are not [begin, end] with "
                                  "0 <= begin <= end",
                     e->key);
            return -1;
        }
        t->begin = (uint64_t)p->nodes[b].num;
        t->end = (uint64_t)p->nodes[en].num;
        n++;
    }
    *nt = n;
    return 0;
}

/* Check each entry's byte count and that the entries tile [0, data_len). */
static int check_layout(ftensor *ft, int n, uint64_t data_len, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        ftensor *t = &ft[i];
        size_t es = dtype_size(t->dtype);
        if (!es) {
            snprintf(err, errlen, "corrupt header: tensor \"%.80s\" has unknown dtype \"%.20s\"", t->name,
                     t->dtype);
            return -1;
        }
        uint64_t bytes = es;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] && bytes > UINT64_MAX / (uint64_t)t->shape[d]) {
                snprintf(err, errlen, "corrupt header: the shape of \"%.80s\" overflows", t->name);
                return -1;
            }
            bytes *= (uint64_t)t->shape[d];
        }
        if (t->end - t->begin != bytes) {
            char b[96];
            snprintf(err, errlen,
                     "corrupt header: tensor \"%.80s\" (%s %s) needs %llu bytes but its data_offsets [%llu, %llu] "
                     "span %llu",
                     t->name, t->dtype, fmt_dims(t->ndim, t->shape, b, sizeof b), (unsigned long long)bytes,
                     (unsigned long long)t->begin, (unsigned long long)t->end,
                     (unsigned long long)(t->end - t->begin));
            return -1;
        }
    }
    ftensor **by_off = malloc((n > 0 ? (size_t)n : 1) * sizeof *by_off);
    if (!by_off) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < n; i++)
        by_off[i] = &ft[i];
    qsort(by_off, (size_t)n, sizeof *by_off, cmp_offset);
    uint64_t at = 0;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (by_off[i]->begin != at) {
            snprintf(err, errlen, "corrupt header: tensor \"%.80s\" starts at byte %llu of the data, but the "
                                  "previous one ends at %llu (%s)",
                     by_off[i]->name, (unsigned long long)by_off[i]->begin, (unsigned long long)at,
                     by_off[i]->begin < at ? "overlap" : "hole");
            rc = -1;
        }
        at = by_off[i]->end;
    }
    free(by_off);
    if (rc)
        return -1;
    if (at > data_len) {
        snprintf(err, errlen, "truncated: the tensors need %llu bytes of data but the file holds %llu",
                 (unsigned long long)at, (unsigned long long)data_len);
        return -1;
    }
    if (at < data_len) {
        snprintf(err, errlen, "%llu unexpected bytes after the last tensor",
                 (unsigned long long)(data_len - at));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------- */
/* load */

static unsigned char *read_all(const char *path, size_t *size, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) { /* read in growing chunks: works for pipes and reports short reads */
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 1 << 16;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                snprintf(err, errlen, "out of memory reading %zu bytes", ncap);
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "read error");
        free(buf);
        return NULL;
    }
    *size = n;
    return buf;
}

static uint64_t le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

static int load_impl(const char *op, const char *path, const sg_named_param *params, int n)
{
    if (!path || n < 0 || (n > 0 && !params)) {
        sg_set_error("%s: bad arguments (path %s, %d tensors)", op, path ? path : "NULL", n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (!params[i].name || !params[i].tensor) {
            sg_set_error("%s: %s: entry %d has a NULL name or tensor", op, path, i);
            return -1;
        }
    }
    char err[400] = "";
    size_t size = 0;
    unsigned char *buf = read_all(path, &size, err, sizeof err);
    jparser jp;
    memset(&jp, 0, sizeof jp);
    ftensor *ft = NULL;
    int nt = 0, rc = -1;
    if (!buf)
        goto done;
    if (size < 8) {
        snprintf(err, sizeof err, "truncated: %zu bytes, less than the 8-byte header length", size);
        goto done;
    }
    uint64_t hlen = le64(buf);
    if (hlen > ST_MAX_HEADER) {
        snprintf(err, sizeof err, "corrupt header: its length %llu exceeds the limit of %llu bytes",
                 (unsigned long long)hlen, ST_MAX_HEADER);
        goto done;
    }
    if (hlen > size - 8) {
        snprintf(err, sizeof err, "truncated: the header claims %llu bytes but only %zu follow",
                 (unsigned long long)hlen, size - 8);
        goto done;
    }
    int root = json_parse(&jp, buf + 8, (size_t)hlen);
    if (root < 0) {
        snprintf(err, sizeof err, "corrupt header: %s", jp.err);
        goto done;
    }
    ft = malloc((jp.nodes[root].count > 0 ? (size_t)jp.nodes[root].count : 1) * sizeof *ft);
    if (!ft) {
        snprintf(err, sizeof err, "out of memory");
        goto done;
    }
    if (read_entries(&jp, root, ft, &nt, err, sizeof err) < 0 ||
        check_layout(ft, nt, size - 8 - hlen, err, sizeof err) < 0)
        goto done;
    qsort(ft, (size_t)nt, sizeof *ft, cmp_name);
    for (int i = 1; i < nt; i++) {
        if (strcmp(ft[i - 1].name, ft[i].name) == 0) {
            snprintf(err, sizeof err, "corrupt header: tensor \"%.80s\" appears twice", ft[i].name);
            goto done;
        }
    }
    /* the caller's names, shapes and dtype */
    for (int i = 0; i < n; i++) {
        ftensor key = {.name = params[i].name};
        ftensor *t = bsearch(&key, ft, (size_t)nt, sizeof *ft, cmp_name);
        if (!t) {
            snprintf(err, sizeof err, "tensor \"%.80s\" is missing from the file", params[i].name);
            goto done;
        }
        if (t->param >= 0) {
            snprintf(err, sizeof err, "tensor \"%.80s\" is asked for twice", params[i].name);
            goto done;
        }
        t->param = i;
    }
    for (int i = 0; i < nt; i++) {
        if (ft[i].param < 0) {
            snprintf(err, sizeof err, "the file has an extra tensor \"%.80s\" that the model does not have",
                     ft[i].name);
            goto done;
        }
    }
    for (int i = 0; i < nt; i++) {
        const ftensor *t = &ft[i];
        sg_tensor *dst = params[t->param].tensor;
        if (strcmp(t->dtype, "F32") != 0) {
            snprintf(err, sizeof err, "tensor \"%.80s\" has dtype %.20s; only F32 can be loaded", t->name, t->dtype);
            goto done;
        }
        bool same = sg_ndim(dst) == t->ndim;
        for (int d = 0; same && d < t->ndim; d++)
            same = sg_dim(dst, d) == t->shape[d];
        if (!same) {
            char bf[96], bm[96];
            snprintf(err, sizeof err, "tensor \"%.80s\" has shape %s in the file but %s in the model", t->name,
                     fmt_dims(t->ndim, t->shape, bf, sizeof bf), SG_NN_SHAPE(dst, bm));
            goto done;
        }
    }
    /* everything checked: copy */
    const unsigned char *data = buf + 8 + hlen;
    for (int i = 0; i < nt; i++) {
        float *d = sg_data(params[ft[i].param].tensor);
        const unsigned char *src = data + ft[i].begin;
        size_t count = (size_t)((ft[i].end - ft[i].begin) / 4);
        for (size_t k = 0; k < count; k++, src += 4) {
            uint32_t bits = (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 |
                            (uint32_t)src[3] << 24;
            memcpy(&d[k], &bits, 4);
        }
    }
    rc = 0;
done:
    if (rc < 0)
        sg_set_error("%s: %s: %s", op, path, err);
    free(ft);
    json_free(&jp);
    free(buf);
    return rc;
}

int sg_safetensors_load(const char *path, const sg_named_param *params, int n)
{
    return load_impl("safetensors_load", path, params, n);
}

int sg_model_load(sg_model *m, const char *path)
{
    if (!m) {
        sg_set_error("model_load: NULL model");
        return -1;
    }
    int n;
    const sg_named_param *p = sg_model_params(m, &n);
    return load_impl("model_load", path, p, n);
}

/* ------------------------------------------------------------------------- */
/* save */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string literal; names hold no control characters (checked). */
static void sb_json_string(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            sb_put(b, "\\", 1);
        sb_put(b, s, 1);
    }
    sb_put(b, "\"", 1);
}

static _Thread_local const sg_named_param *sort_base;

static int cmp_index_name(const void *a, const void *b)
{
    return strcmp(sort_base[*(const int *)a].name, sort_base[*(const int *)b].name);
}

static int save_impl(const char *op, const char *path, const sg_named_param *params, int n)
{
    if (!path || n < 0 || (n > 0 && !params)) {
        sg_set_error("%s: bad arguments (path %s, %d tensors)", op, path ? path : "NULL", n);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (!params[i].tensor) {
            sg_set_error("%s: %s: tensor \"%s\" is NULL", op, path, params[i].name ? params[i].name : "(null)");
            return -1;
        }
        if (!sg_nn_name_ok(op, params[i].name))
            return -1;
    }
    int *order = malloc((n > 0 ? (size_t)n : 1) * sizeof *order);
    char *tmp = NULL;
    sbuf h = {0};
    FILE *f = NULL;
    int rc = -1;
    if (!order) {
        sg_set_error("%s: %s: out of memory", op, path);
        goto done;
    }
    for (int i = 0; i < n; i++)
        order[i] = i;
    sort_base = params; /* qsort has no context argument in C11 */
    qsort(order, (size_t)n, sizeof *order, cmp_index_name);
    for (int i = 1; i < n; i++) {
        if (strcmp(params[order[i - 1]].name, params[order[i]].name) == 0) {
            sg_set_error("%s: %s: the name \"%s\" is used twice", op, path, params[order[i]].name);
            goto done;
        }
    }
    /* header */
    uint64_t offset = 0;
    sb_str(&h, "{");
    for (int k = 0; k < n; k++) {
        const sg_named_param *p = &params[order[k]];
        char num[64];
        if (k)
            sb_str(&h, ",");
        sb_json_string(&h, p->name);
        sb_str(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < sg_ndim(p->tensor); d++) {
            snprintf(num, sizeof num, d ? ",%d" : "%d", sg_dim(p->tensor, d));
            sb_str(&h, num);
        }
        uint64_t bytes = (uint64_t)sg_size(p->tensor) * 4;
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                 (unsigned long long)(offset + bytes));
        sb_str(&h, num);
        offset += bytes;
    }
    sb_str(&h, "}");
    while (!h.oom && h.len % 8)
        sb_str(&h, " ");
    if (h.oom) {
        sg_set_error("%s: %s: out of memory", op, path);
        goto done;
    }
    /* write to a new temporary file beside path, then rename over path */
    f = sg_nn_atomic_open(op, path, NULL, &tmp);
    if (!f)
        goto done;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h.s, 1, h.len, f) == h.len;
    unsigned char chunk[4096];
    for (int k = 0; ok && k < n; k++) {
        sg_tensor *t = params[order[k]].tensor;
        const float *d = sg_data(t);
        size_t count = sg_size(t), fill = 0;
        for (size_t i = 0; ok && i < count; i++) {
            uint32_t bits;
            memcpy(&bits, &d[i], 4);
            for (int b = 0; b < 4; b++)
                chunk[fill++] = (unsigned char)(bits >> (8 * b));
            if (fill == sizeof chunk || i + 1 == count) {
                ok = fwrite(chunk, 1, fill, f) == fill;
                fill = 0;
            }
        }
    }
    rc = sg_nn_atomic_commit(op, path, NULL, f, tmp, ok); /* frees tmp */
done:
    free(h.s);
    free(order);
    return rc;
}

int sg_safetensors_save(const char *path, const sg_named_param *params, int n)
{
    return save_impl("safetensors_save", path, params, n);
}

int sg_model_save(const sg_model *m, const char *path)
{
    if (!m) {
        sg_set_error("model_save: NULL model");
        return -1;
    }
    int n;
    const sg_named_param *p = sg_model_params(m, &n);
    return save_impl("model_save", path, p, n);
}
