/*
 * safetensors.c — save and load named float32 tensors in the safetensors
 * format.
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
 * serializer emits for float32 tensors, so files are byte-identical.
 * sg_safetensors_save_meta() adds "__metadata__" first, keys sorted. The
 * file is written to a new file made by mkstemp beside path, fsynced and
 * renamed over path (sg_nn_atomic_open/commit, model.c), so a failed save
 * leaves any old file intact, a planted link is never followed and two
 * saves never share a temporary file.
 *
 * Reading is all-or-nothing and bounded: only a regular file is read (not
 * a directory, /dev/zero or a FIFO: sg_open_regular), its length known
 * before anything is read. Then, in order, each step reserving only what
 * the previous one proved the file holds:
 *   1. the 8-byte header length: at most ST_MAX_HEADER (the reference
 *      reader's limit) and no more than the file holds;
 *   2. the header, read and walked twice by the pull parser of json.c —
 *      once to check its syntax, once to collect the entries — so memory is
 *      the header, a string pool no larger than it, and one small record per
 *      entry, never a tree of every JSON value;
 *   3. every entry's dtype, shape and offsets, offsets tiling the data
 *      section with no hole, overlap or trailing bytes (the reference
 *      reader's rules), and the exact set of names and shapes the caller
 *      expects;
 *   4. only then the data — whose length now equals the caller's tensors'
 *      bytes — into a buffer, and EOF after it; then the copy.
 * Unknown keys inside a tensor entry are skipped, as the reference reader
 * does; a key given twice in an entry is an error. sg_safetensors_metadata()
 * runs steps 1-3 (without the caller's names) and returns the metadata.
 *
 * Messages name the function called, the file and the problem; a path or a
 * tensor name is printed through sg_escape(), so control characters in it
 * show as \xNN instead of reaching the terminal.
 */
#include "file_internal.h"
#include "json_internal.h"
#include "nn_internal.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The header length limit: the reference reader's (huggingface/safetensors,
 * src/tensor.rs: MAX_HEADER_SIZE = 100_000_000), so every file it reads
 * loads here and nothing it refuses does. The cost is bounded by what the
 * file really holds: the length is checked against the file's size before
 * the header is read, and parsing it needs about 3 bytes per header byte
 * at worst (the header, the decoded strings, an 80-byte record per entry of
 * at least ~45 bytes) — a header of 16 million integers costs its own 32 MB
 * and nothing more. */
#define ST_MAX_HEADER 100000000ull

/* A name in a message: escaped, cut at about 80 bytes. */
#define ST_NAME_MSG 88
static const char *ename(const char *name, char buf[static ST_NAME_MSG])
{
    return sg_escape(name, buf, ST_NAME_MSG, false);
}

/* ------------------------------------------------------------------------- */
/* names */

bool sg_nn_utf8_ok(const unsigned char *s, size_t len)
{
    return sg_json_utf8_ok(s, len);
}

bool sg_nn_name_ok(const char *op, const char *name)
{
    if (!name || !name[0]) {
        sg_set_error("%s: empty name", op);
        return false;
    }
    char en[ST_NAME_MSG];
    size_t len = strlen(name);
    if (len >= SG_NN_NAME_MAX) {
        sg_set_error("%s: name \"%s\" is longer than %d bytes", op, ename(name, en), SG_NN_NAME_MAX - 1);
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) {
            sg_set_error("%s: name \"%s\" contains a control character", op, ename(name, en));
            return false;
        }
    }
    if (!sg_nn_utf8_ok((const unsigned char *)name, len)) {
        sg_set_error("%s: name \"%s\" is not valid UTF-8", op, ename(name, en));
        return false;
    }
    if (strcmp(name, "__metadata__") == 0) {
        sg_set_error("%s: \"__metadata__\" is reserved by the safetensors format", op);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------------- */
/* the header, interpreted */

typedef struct ftensor {
    const char *name;  /* decoded, in the parser's pool */
    const char *dtype; /* likewise */
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

/* A header error: JSON syntax (from the parser) or content. */
#define HDR_FAIL(...)                                                                                            \
    do {                                                                                                         \
        if (j->err[0])                                                                                           \
            snprintf(err, errlen, "corrupt header: %s of the header", j->err);                                   \
        else                                                                                                     \
            snprintf(err, errlen, __VA_ARGS__);                                                                  \
        return -1;                                                                                               \
    } while (0)

/* Where the "__metadata__" pairs go when a caller wants them
 * (sg_safetensors_metadata); NULL when loading tensors. The strings stay
 * in the parser's pool. */
typedef struct meta_sink {
    const char **key, **value; /* n of each, grown as needed */
    int n, cap;
    bool seen; /* "__metadata__" met (a second one is an error) */
} meta_sink;

/* The "__metadata__" value: an object of strings (kept in *sink if given). */
static int read_metadata(sg_json *j, meta_sink *sink, char *err, size_t errlen)
{
    if (sg_json_peek(j) != SG_JSON_OBJECT || sg_json_enter(j) < 0)
        HDR_FAIL("corrupt header: \"__metadata__\" must map strings to strings");
    int r;
    const char *key;
    while ((r = sg_json_next(j, &key)) > 0) {
        if (sg_json_peek(j) != SG_JSON_STRING)
            HDR_FAIL("corrupt header: \"__metadata__\" must map strings to strings");
        if (!sink) {
            if (sg_json_skip(j) < 0)
                HDR_FAIL("corrupt header");
            continue;
        }
        const char *value;
        if (sg_json_string(j, &value, NULL) < 0)
            HDR_FAIL("corrupt header");
        for (int i = 0; i < sink->n; i++) {
            if (strcmp(sink->key[i], key) == 0) {
                char en[ST_NAME_MSG];
                HDR_FAIL("corrupt header: \"__metadata__\" has the key \"%s\" twice", ename(key, en));
            }
        }
        if (sink->n == sink->cap) {
            int ncap = sink->cap ? 2 * sink->cap : 16;
            const char **nk = realloc(sink->key, (size_t)ncap * sizeof *nk);
            if (nk)
                sink->key = nk;
            const char **nv = nk ? realloc(sink->value, (size_t)ncap * sizeof *nv) : NULL;
            if (nv)
                sink->value = nv;
            if (!nk || !nv)
                HDR_FAIL("out of memory for %d metadata entries", ncap);
            sink->cap = ncap;
        }
        sink->key[sink->n] = key;
        sink->value[sink->n++] = value;
    }
    if (r < 0)
        HDR_FAIL("corrupt header");
    return 0;
}

/* One tensor entry {"dtype": ..., "shape": [...], "data_offsets": [b, e]}
 * into t (name already set). */
static int read_entry(sg_json *j, ftensor *t, char *err, size_t errlen)
{
    char en[ST_NAME_MSG];
    const char *name = ename(t->name, en);
    if (sg_json_peek(j) != SG_JSON_OBJECT || sg_json_enter(j) < 0)
        HDR_FAIL("corrupt header: entry \"%s\" is not an object", name);
    bool seen[3] = {false, false, false};
    bool bad[3] = {false, false, false}; /* found but of the wrong form */
    long long off[2] = {0, 0};
    int r;
    const char *key;
    while ((r = sg_json_next(j, &key)) > 0) {
        static const char *const known[3] = {"dtype", "shape", "data_offsets"};
        int k = 0;
        while (k < 3 && strcmp(key, known[k]) != 0)
            k++;
        if (k == 3) { /* unknown: skipped, as the reference reader does */
            if (sg_json_skip(j) < 0)
                HDR_FAIL("corrupt header");
            continue;
        }
        if (seen[k])
            HDR_FAIL("corrupt header: tensor \"%s\" has \"%s\" twice", name, known[k]);
        seen[k] = true;
        enum sg_json_type type = sg_json_peek(j);
        if (k == 0 && type == SG_JSON_STRING) {
            sg_json_string(j, &t->dtype, NULL);
        } else if (k == 0 || type != SG_JSON_ARRAY) {
            bad[k] = true;
            sg_json_skip(j);
        } else {
            sg_json_enter(j);
            int n = 0;
            while (sg_json_next(j, NULL) > 0) {
                long long v = 0;
                if (sg_json_peek(j) != SG_JSON_INT) {
                    bad[k] = true;
                    sg_json_skip(j);
                    continue;
                }
                sg_json_int(j, &v);
                if (k == 1) {
                    if (n >= SG_MAX_DIMS || v < 0 || v > INT_MAX)
                        bad[1] = true;
                    else
                        t->shape[n] = (int)v;
                } else {
                    if (n >= 2)
                        bad[2] = true;
                    else
                        off[n] = v;
                }
                n++;
            }
            if (k == 1)
                t->ndim = n <= SG_MAX_DIMS ? n : 0;
            else if (n != 2)
                bad[2] = true;
        }
        if (j->err[0])
            HDR_FAIL("corrupt header");
    }
    if (r < 0)
        HDR_FAIL("corrupt header");
    const char *missing = !seen[0] ? "dtype" : !seen[1] ? "shape" : !seen[2] ? "data_offsets" : NULL;
    if (missing)
        HDR_FAIL("corrupt header: tensor \"%s\" has no \"%s\"", name, missing);
    if (bad[0])
        HDR_FAIL("corrupt header: the dtype of \"%s\" is not a string", name);
    if (bad[1])
        HDR_FAIL("corrupt header: the shape of \"%s\" is not a list of at most %d sizes, each an integer in "
                 "[0, %d]",
                 name, SG_MAX_DIMS, INT_MAX);
    if (bad[2] || off[0] < 0 || off[1] < off[0])
        HDR_FAIL("corrupt header: the data_offsets of \"%s\" are not [begin, end] with 0 <= begin <= end", name);
    t->begin = (uint64_t)off[0];
    t->end = (uint64_t)off[1];
    return 0;
}

/* The whole header: its syntax checked first (so a syntax error is
 * reported as such wherever it is), then its entries into *ft (grown as
 * needed; *nt of them). Message into err. */
static int read_header(sg_json *j, const unsigned char *text, size_t len, ftensor **ft, int *nt,
                       meta_sink *sink, char *err, size_t errlen)
{
    sg_json_init(j, text, len);
    if (sg_json_skip(j) < 0 || sg_json_finish(j) < 0)
        HDR_FAIL("corrupt header");
    sg_json_free(j);
    sg_json_init(j, text, len); /* second walk: the content */
    if (sg_json_peek(j) != SG_JSON_OBJECT)
        HDR_FAIL("corrupt header: not a JSON object");
    sg_json_enter(j);
    int n = 0, cap = 0, r;
    const char *key;
    while ((r = sg_json_next(j, &key)) > 0) {
        if (strcmp(key, "__metadata__") == 0) {
            if (sink && sink->seen)
                HDR_FAIL("corrupt header: \"__metadata__\" appears twice");
            if (sink)
                sink->seen = true;
            if (read_metadata(j, sink, err, errlen) < 0)
                return -1;
            continue;
        }
        if (n == cap) {
            if (cap >= INT_MAX / 2)
                HDR_FAIL("corrupt header: too many tensors");
            int ncap = cap ? cap * 2 : 16;
            ftensor *nf = realloc(*ft, (size_t)ncap * sizeof *nf);
            if (!nf)
                HDR_FAIL("out of memory for %d tensor entries", ncap);
            *ft = nf;
            cap = ncap;
        }
        ftensor *t = &(*ft)[n];
        memset(t, 0, sizeof *t);
        t->name = key;
        t->param = -1;
        if (read_entry(j, t, err, errlen) < 0)
            return -1;
        n++;
    }
    if (r < 0)
        HDR_FAIL("corrupt header");
    *nt = n;
    return 0;
}

/* Check each entry's byte count and that the entries tile [0, data_len). */
static int check_layout(ftensor *ft, int n, uint64_t data_len, char *err, size_t errlen)
{
    char en[ST_NAME_MSG];
    for (int i = 0; i < n; i++) {
        ftensor *t = &ft[i];
        size_t es = dtype_size(t->dtype);
        if (!es) {
            char ed[40];
            snprintf(err, errlen, "corrupt header: tensor \"%s\" has unknown dtype \"%s\"", ename(t->name, en),
                     sg_escape(t->dtype, ed, sizeof ed, false));
            return -1;
        }
        uint64_t bytes = es;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] && bytes > UINT64_MAX / (uint64_t)t->shape[d]) {
                snprintf(err, errlen, "corrupt header: the shape of \"%s\" overflows", ename(t->name, en));
                return -1;
            }
            bytes *= (uint64_t)t->shape[d];
        }
        if (t->end - t->begin != bytes) {
            char b[96];
            snprintf(err, errlen,
                     "corrupt header: tensor \"%s\" (%s %s) needs %llu bytes but its data_offsets [%llu, %llu] "
                     "span %llu",
                     ename(t->name, en), t->dtype, fmt_dims(t->ndim, t->shape, b, sizeof b),
                     (unsigned long long)bytes, (unsigned long long)t->begin, (unsigned long long)t->end,
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
            snprintf(err, errlen, "corrupt header: tensor \"%s\" starts at byte %llu of the data, but the "
                                  "previous one ends at %llu (%s)",
                     ename(by_off[i]->name, en), (unsigned long long)by_off[i]->begin, (unsigned long long)at,
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

static uint64_t le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | b[i];
    return v;
}

/* Read exactly n bytes; a message into err otherwise. */
static int read_exact(FILE *f, void *buf, size_t n, const char *what, char *err, size_t errlen)
{
    size_t got = n ? fread(buf, 1, n, f) : 0;
    if (got == n)
        return 0;
    if (ferror(f))
        snprintf(err, errlen, "read error in %s: %s", what, strerror(errno));
    else
        snprintf(err, errlen, "truncated: the file ended after %zu of the %zu bytes of %s (did it shrink "
                              "while being read?)",
                 got, n, what);
    return -1;
}

/* dst's values from little-endian F32 or F64 bytes (already checked to be
 * dst's element count), converted to dst's dtype when the file's differs
 * (as torch's load_state_dict copies into a parameter of its own dtype). */
static void read_values(sg_tensor *dst, const unsigned char *src, bool f64_file)
{
    const size_t count = sg_size(dst), esz = f64_file ? 8 : 4;
    const bool f64_dst = sg_dtype_of(dst) == SG_FLOAT64;
    float *d = f64_dst ? NULL : sg_data(dst);
    double *d64 = f64_dst ? sg_data64(dst) : NULL;
    for (size_t k = 0; k < count; k++, src += esz) {
        uint64_t bits = 0;
        for (size_t b = 0; b < esz; b++)
            bits |= (uint64_t)src[b] << (8 * b);
        double v;
        if (f64_file) {
            memcpy(&v, &bits, 8);
        } else {
            uint32_t b32 = (uint32_t)bits;
            float f;
            memcpy(&f, &b32, 4);
            v = f;
        }
        if (f64_dst)
            d64[k] = v;
        else
            d[k] = (float)v;
    }
}

/* The pairs of sink copied into one block (the array, then the strings):
 * what sg_safetensors_metadata() returns. NULL with a message in err. */
static sg_safetensors_meta *copy_meta(const meta_sink *sink, char *err, size_t errlen)
{
    size_t bytes = (size_t)(sink->n > 0 ? sink->n : 1) * sizeof(sg_safetensors_meta);
    for (int i = 0; i < sink->n; i++)
        bytes += strlen(sink->key[i]) + strlen(sink->value[i]) + 2;
    sg_safetensors_meta *out = malloc(bytes);
    if (!out) {
        snprintf(err, errlen, "out of memory for %zu bytes of metadata", bytes);
        return NULL;
    }
    char *at = (char *)(out + (sink->n > 0 ? sink->n : 1));
    for (int i = 0; i < sink->n; i++) {
        size_t kl = strlen(sink->key[i]) + 1, vl = strlen(sink->value[i]) + 1;
        out[i].key = memcpy(at, sink->key[i], kl);
        out[i].value = memcpy(at + kl, sink->value[i], vl);
        at += kl + vl;
    }
    return out;
}

/* Load path into params[0..n); or, with meta_out, check the whole header
 * and return its "__metadata__" pairs instead (params unused). */
static int load_impl(const char *op, const char *path, const sg_named_param *params, int n,
                     sg_safetensors_meta **meta_out, int *n_meta)
{
    if (!path || n < 0 || (n > 0 && !params)) {
        char ep[SG_ESCAPE_MAX];
        sg_set_error("%s: bad arguments (path %s, %d tensors)", op, path ? sg_escape(path, ep, sizeof ep, true) : "NULL",
                     n);
        return -1;
    }
    char ep[SG_ESCAPE_MAX];
    sg_escape(path, ep, sizeof ep, true);
    for (int i = 0; i < n; i++) {
        if (!params[i].name || !params[i].tensor) {
            sg_set_error("%s: %s: entry %d has a NULL name or tensor", op, ep, i);
            return -1;
        }
    }
    uint64_t size = 0;
    FILE *f = sg_open_regular(op, path, &size);
    if (!f)
        return -1;
    char err[400] = "", en[ST_NAME_MSG];
    unsigned char len8[8], *header = NULL, *data = NULL;
    sg_json jp;
    sg_json_init(&jp, NULL, 0);
    ftensor *ft = NULL;
    meta_sink sink = {0};
    int nt = 0, rc = -1;
    if (size < 8) {
        snprintf(err, sizeof err, "truncated: %llu bytes, less than the 8-byte header length",
                 (unsigned long long)size);
        goto done;
    }
    if (read_exact(f, len8, 8, "the header length", err, sizeof err) < 0)
        goto done;
    uint64_t hlen = le64(len8);
    if (hlen > ST_MAX_HEADER) {
        snprintf(err, sizeof err, "corrupt header: its length %llu exceeds the limit of %llu bytes",
                 (unsigned long long)hlen, ST_MAX_HEADER);
        goto done;
    }
    if (hlen > size - 8) {
        snprintf(err, sizeof err, "truncated: the header claims %llu bytes but only %llu follow",
                 (unsigned long long)hlen, (unsigned long long)(size - 8));
        goto done;
    }
    header = malloc((size_t)hlen + 1);
    if (!header) {
        snprintf(err, sizeof err, "out of memory for a header of %llu bytes", (unsigned long long)hlen);
        goto done;
    }
    if (read_exact(f, header, (size_t)hlen, "the header", err, sizeof err) < 0 ||
        read_header(&jp, header, (size_t)hlen, &ft, &nt, meta_out ? &sink : NULL, err, sizeof err) < 0 ||
        check_layout(ft, nt, size - 8 - hlen, err, sizeof err) < 0)
        goto done;
    if (nt > 1)
        qsort(ft, (size_t)nt, sizeof *ft, cmp_name);
    for (int i = 1; i < nt; i++) {
        if (strcmp(ft[i - 1].name, ft[i].name) == 0) {
            snprintf(err, sizeof err, "corrupt header: tensor \"%s\" appears twice", ename(ft[i].name, en));
            goto done;
        }
    }
    if (meta_out) { /* the header is sound: hand out its metadata */
        if ((*meta_out = copy_meta(&sink, err, sizeof err)) != NULL) {
            *n_meta = sink.n;
            rc = 0;
        }
        goto done;
    }
    /* the caller's names, shapes and dtype */
    for (int i = 0; i < n; i++) {
        ftensor key = {.name = params[i].name};
        ftensor *t = nt ? bsearch(&key, ft, (size_t)nt, sizeof *ft, cmp_name) : NULL;
        if (!t) {
            snprintf(err, sizeof err, "tensor \"%s\" is missing from the file", ename(params[i].name, en));
            goto done;
        }
        if (t->param >= 0) {
            snprintf(err, sizeof err, "tensor \"%s\" is asked for twice", ename(params[i].name, en));
            goto done;
        }
        t->param = i;
    }
    for (int i = 0; i < nt; i++) {
        if (ft[i].param < 0) {
            snprintf(err, sizeof err, "the file has an extra tensor \"%s\" that the model does not have",
                     ename(ft[i].name, en));
            goto done;
        }
    }
    for (int i = 0; i < nt; i++) {
        const ftensor *t = &ft[i];
        sg_tensor *dst = params[t->param].tensor;
        if (strcmp(t->dtype, "F32") != 0 && strcmp(t->dtype, "F64") != 0) {
            snprintf(err, sizeof err, "tensor \"%s\" has dtype %s; only F32 and F64 can be loaded",
                     ename(t->name, en), t->dtype);
            goto done;
        }
        bool same = sg_ndim(dst) == t->ndim;
        for (int d = 0; same && d < t->ndim; d++)
            same = sg_dim(dst, d) == t->shape[d];
        if (!same) {
            char bf[96], bm[96];
            snprintf(err, sizeof err, "tensor \"%s\" has shape %s in the file but %s in the model",
                     ename(t->name, en), fmt_dims(t->ndim, t->shape, bf, sizeof bf), SG_NN_SHAPE(dst, bm));
            goto done;
        }
    }
    /* Everything checked: the data section is exactly the caller's tensors'
     * bytes, so reading it reserves no more than the model already holds. */
    uint64_t data_len = size - 8 - hlen;
    if (data_len > SIZE_MAX - 1) {
        snprintf(err, sizeof err, "out of memory for %llu bytes of data", (unsigned long long)data_len);
        goto done;
    }
    data = malloc((size_t)data_len + 1);
    if (!data) {
        snprintf(err, sizeof err, "out of memory for %llu bytes of data", (unsigned long long)data_len);
        goto done;
    }
    if (read_exact(f, data, (size_t)data_len, "the data", err, sizeof err) < 0)
        goto done;
    if (fgetc(f) != EOF) {
        snprintf(err, sizeof err, "the file grew while being read (more than %llu bytes)", (unsigned long long)size);
        goto done;
    }
    for (int i = 0; i < nt; i++)
        read_values(params[ft[i].param].tensor, data + ft[i].begin, strcmp(ft[i].dtype, "F64") == 0);
    rc = 0;
done:
    if (rc < 0)
        sg_set_error("%s: %s: %s", op, ep, err);
    fclose(f);
    free(ft);
    free(sink.key);
    free(sink.value);
    sg_json_free(&jp);
    free(data);
    free(header);
    return rc;
}

int sg_safetensors_load(const char *path, const sg_named_param *params, int n)
{
    return load_impl("safetensors_load", path, params, n, NULL, NULL);
}

sg_safetensors_meta *sg_safetensors_metadata(const char *path, int *n_meta)
{
    if (n_meta)
        *n_meta = 0;
    if (!n_meta) {
        sg_set_error("safetensors_metadata: n_meta is NULL");
        return NULL;
    }
    sg_safetensors_meta *meta = NULL;
    return load_impl("safetensors_metadata", path, NULL, 0, &meta, n_meta) == 0 ? meta : NULL;
}

const char *sg_safetensors_meta_get(const sg_safetensors_meta *meta, int n_meta, const char *key)
{
    for (int i = 0; meta && key && i < n_meta; i++)
        if (strcmp(meta[i].key, key) == 0)
            return meta[i].value;
    return NULL;
}

int sg_model_load(sg_model *m, const char *path)
{
    if (!m) {
        sg_set_error("model_load: NULL model");
        return -1;
    }
    int n;
    const sg_named_param *p = sg_model_params(m, &n);
    return load_impl("model_load", path, p, n, NULL, NULL);
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

/* A JSON string literal (s is valid UTF-8: checked by the callers);
 * control characters as \u00XX, as JSON requires. */
static void sb_json_string(sbuf *b, const char *s)
{
    sb_put(b, "\"", 1);
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", (unsigned)(unsigned char)*s);
            sb_str(b, esc);
            continue;
        }
        if (*s == '"' || *s == '\\')
            sb_put(b, "\\", 1);
        sb_put(b, s, 1);
    }
    sb_put(b, "\"", 1);
}

static _Thread_local const sg_safetensors_meta *meta_base;

static int cmp_index_key(const void *a, const void *b)
{
    return strcmp(meta_base[*(const int *)a].key, meta_base[*(const int *)b].key);
}

/* "__metadata__":{...}, keys sorted, into b; -1 with a message for a NULL,
 * non-UTF-8 or repeated key or value. */
static int put_metadata(const char *op, const char *ep, sbuf *b, const sg_safetensors_meta *meta, int n_meta)
{
    char en[ST_NAME_MSG];
    int *order = malloc((size_t)n_meta * sizeof *order);
    if (!order) {
        sg_set_error("%s: %s: out of memory", op, ep);
        return -1;
    }
    for (int i = 0; i < n_meta; i++) {
        order[i] = i;
        const char *k = meta[i].key, *v = meta[i].value;
        const char *bad = !k || !v                                               ? "is NULL"
                          : !sg_nn_utf8_ok((const unsigned char *)k, strlen(k)) ||
                                    !sg_nn_utf8_ok((const unsigned char *)v, strlen(v))
                              ? "is not valid UTF-8"
                              : NULL;
        if (bad) {
            sg_set_error("%s: %s: metadata entry %d (key \"%s\") %s", op, ep, i, k ? ename(k, en) : "NULL", bad);
            free(order);
            return -1;
        }
    }
    meta_base = meta;
    qsort(order, (size_t)n_meta, sizeof *order, cmp_index_key);
    sb_str(b, "\"__metadata__\":{");
    for (int i = 0; i < n_meta; i++) {
        if (i && strcmp(meta[order[i - 1]].key, meta[order[i]].key) == 0) {
            sg_set_error("%s: %s: the metadata key \"%s\" is given twice", op, ep, ename(meta[order[i]].key, en));
            free(order);
            return -1;
        }
        if (i)
            sb_str(b, ",");
        sb_json_string(b, meta[order[i]].key);
        sb_str(b, ":");
        sb_json_string(b, meta[order[i]].value);
    }
    sb_str(b, "}");
    free(order);
    return 0;
}

static _Thread_local const sg_named_param *sort_base;

static int cmp_index_name(const void *a, const void *b)
{
    return strcmp(sort_base[*(const int *)a].name, sort_base[*(const int *)b].name);
}

static int save_impl(const char *op, const char *path, const sg_named_param *params, int n,
                     const sg_safetensors_meta *meta, int n_meta)
{
    if (!path || n < 0 || (n > 0 && !params) || n_meta < 0 || (n_meta > 0 && !meta)) {
        char ep0[SG_ESCAPE_MAX];
        sg_set_error("%s: bad arguments (path %s, %d tensors)", op, path ? sg_escape(path, ep0, sizeof ep0, true) : "NULL",
                     n);
        return -1;
    }
    char ep[SG_ESCAPE_MAX], en[ST_NAME_MSG];
    sg_escape(path, ep, sizeof ep, true);
    for (int i = 0; i < n; i++) {
        if (!params[i].tensor) {
            sg_set_error("%s: %s: tensor \"%s\" is NULL", op, ep, ename(params[i].name, en));
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
        sg_set_error("%s: %s: out of memory", op, ep);
        goto done;
    }
    for (int i = 0; i < n; i++)
        order[i] = i;
    sort_base = params; /* qsort has no context argument in C11 */
    qsort(order, (size_t)n, sizeof *order, cmp_index_name);
    for (int i = 1; i < n; i++) {
        if (strcmp(params[order[i - 1]].name, params[order[i]].name) == 0) {
            sg_set_error("%s: %s: the name \"%s\" is used twice", op, ep, ename(params[order[i]].name, en));
            goto done;
        }
    }
    /* header */
    uint64_t offset = 0;
    sb_str(&h, "{");
    if (n_meta > 0 && put_metadata(op, ep, &h, meta, n_meta) < 0)
        goto done;
    for (int k = 0; k < n; k++) {
        const sg_named_param *p = &params[order[k]];
        char num[64];
        if (k || n_meta > 0)
            sb_str(&h, ",");
        sb_json_string(&h, p->name);
        bool f64 = sg_dtype_of(p->tensor) == SG_FLOAT64;
        sb_str(&h, f64 ? ":{\"dtype\":\"F64\",\"shape\":[" : ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < sg_ndim(p->tensor); d++) {
            snprintf(num, sizeof num, d ? ",%d" : "%d", sg_dim(p->tensor, d));
            sb_str(&h, num);
        }
        uint64_t bytes = (uint64_t)sg_size(p->tensor) * (f64 ? 8 : 4);
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                 (unsigned long long)(offset + bytes));
        sb_str(&h, num);
        offset += bytes;
    }
    sb_str(&h, "}");
    while (!h.oom && h.len % 8)
        sb_str(&h, " ");
    if (h.oom) {
        sg_set_error("%s: %s: out of memory", op, ep);
        goto done;
    }
    /* write to a new temporary file beside path, then rename over path */
    f = sg_nn_atomic_open(op, path, ep, &tmp);
    if (!f)
        goto done;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)h.len >> (8 * i));
    bool ok = fwrite(len8, 1, 8, f) == 8 && fwrite(h.s, 1, h.len, f) == h.len;
    unsigned char chunk[4096];
    for (int k = 0; ok && k < n; k++) {
        sg_tensor *t = params[order[k]].tensor;
        bool f64 = sg_dtype_of(t) == SG_FLOAT64;
        const float *d = f64 ? NULL : sg_data(t);
        const double *d64 = f64 ? sg_data64(t) : NULL;
        size_t count = sg_size(t), fill = 0;
        for (size_t i = 0; ok && i < count; i++) {
            uint64_t bits = 0;
            if (f64) {
                memcpy(&bits, &d64[i], 8);
            } else {
                uint32_t b32;
                memcpy(&b32, &d[i], 4);
                bits = b32;
            }
            for (int b = 0; b < (f64 ? 8 : 4); b++) /* little-endian, whatever the host */
                chunk[fill++] = (unsigned char)(bits >> (8 * b));
            if (fill == sizeof chunk || i + 1 == count) {
                ok = fwrite(chunk, 1, fill, f) == fill;
                fill = 0;
            }
        }
    }
    rc = sg_nn_atomic_commit(op, path, ep, f, tmp, ok); /* frees tmp */
done:
    free(h.s);
    free(order);
    return rc;
}

int sg_safetensors_save(const char *path, const sg_named_param *params, int n)
{
    return save_impl("safetensors_save", path, params, n, NULL, 0);
}

int sg_safetensors_save_meta(const char *path, const sg_named_param *params, int n,
                             const sg_safetensors_meta *meta, int n_meta)
{
    return save_impl("safetensors_save_meta", path, params, n, meta, n_meta);
}

int sg_model_save(const sg_model *m, const char *path)
{
    if (!m) {
        sg_set_error("model_save: NULL model");
        return -1;
    }
    int n;
    const sg_named_param *p = sg_model_params(m, &n);
    return save_impl("model_save", path, p, n, NULL, 0);
}
