/*
 * idx.c — the IDX file format (MNIST, Fashion-MNIST): reading, writing,
 * and the sg_dataset that holds a labelled image set.
 *
 * An IDX file is a 4-byte magic (0x00, 0x00, element type, number of dims),
 * one big-endian uint32 per dim, then the elements row-major. We read only
 * unsigned bytes (type 0x08): images with 3 dims (n, rows, cols), labels
 * with 1 dim (n).
 *
 * Key idea: trust nothing in the header until the file backs it. Only a
 * regular file is read (a directory, /dev/zero or a FIFO is refused by
 * name: sg_open_regular), so its length is known from fstat(). A plain
 * file's declared payload is compared with that length before any memory
 * is reserved. A gzip file's decompressed length is not known in advance,
 * but deflate cannot expand data more than 1032 times: a claim within 1032
 * times the file's length is reserved at once (one buffer, on huge pages
 * from the start), a larger one is read into a buffer that grows
 * (doubling) as data actually arrives: a 1 KB file that claims 78 GB fails
 * as "truncated" after reading 1 KB, not by reserving 78 GB.
 *
 * The data must be exactly what the header declares, neither shorter nor
 * longer: in a plain file no byte may follow; in a gzip file no byte may
 * follow the payload inside the decompressed data, and nothing but further
 * gzip members may follow the compressed data (zlib's gzread would skip
 * such trailing garbage silently, so gzip is inflated here directly).
 *
 * Invariant: every sg_dataset handed out has images of n*rows*cols bytes,
 * labels of n bytes, and every label < n_classes.
 */
#define _DEFAULT_SOURCE /* madvise: with _POSIX_C_SOURCE set, glibc declares it only so */
#include "file_internal.h"
#include "sg_datasets.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#ifdef SG_HAVE_ZLIB
#include <zlib.h>
#endif

enum {
    IDX_TYPE_UBYTE = 0x08,
    IDX_MAGIC_LABELS = 0x00000801, /* ubyte, 1 dim */
    IDX_MAGIC_IMAGES = 0x00000803, /* ubyte, 3 dims */
    IDX_MNIST_CLASSES = 10,
};

/* ------------------------------------------------------------------------- */
/* Datasets */

/* A shuffled batch reads its images from scattered places in the set (47 MB
 * for Fashion-MNIST's training images): with 4 KB pages each image costs a
 * TLB miss and a page walk, about 3% of an MLP training step on one core.
 * So a set's buffer asks for transparent huge pages (2 MB on x86-64) with
 * MADV_HUGEPAGE before its data is written: the pages then come as huge
 * pages when first touched, with no copy afterwards. Only a hint, and it
 * follows the system's setting (/sys/kernel/mm/transparent_hugepage/
 * enabled: "never" wins; under "always" large buffers get them anyway):
 * if the kernel gives none, the set works as before, a little slower.
 * Small buffers (under 4 MB) are left alone. */
static void prefer_huge_pages(void *p, size_t n)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const long page = sysconf(_SC_PAGESIZE);
    if (n < ((size_t)4 << 20) || page <= 0)
        return;
    /* From the page that holds p to the one that holds its end: a buffer
     * this large is usually a mapping of its own (malloc's header in its
     * first page), hinted whole so that it stays one mapping; in the heap
     * the hint also covers a little of its neighbours, which is harmless. */
    const uintptr_t mask = (uintptr_t)page - 1;
    uintptr_t lo = (uintptr_t)p & ~mask, hi = ((uintptr_t)p + n + mask) & ~mask;
    int saved = errno; /* a refused hint is not an error of the caller's */
    (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    errno = saved;
#else
    (void)p;
    (void)n;
#endif
}

sg_dataset *sg_dataset_new(int n, int rows, int cols, int n_classes)
{
    if (n < 0 || rows < 1 || cols < 1 || rows > SG_IDX_MAX_SIDE ||
        cols > SG_IDX_MAX_SIDE || n_classes < 1 || n_classes > 256) {
        sg_set_error("dataset_new: bad sizes n=%d rows=%d cols=%d n_classes=%d "
                     "(need n >= 0, sides in [1, %d], classes in [1, 256])",
                     n, rows, cols, n_classes, SG_IDX_MAX_SIDE);
        return NULL;
    }
    size_t n_pixels = (size_t)n * (size_t)rows * (size_t)cols;
    sg_dataset *d = calloc(1, sizeof *d);
    if (d) {
        /* +1: malloc(0) may return NULL, which must not read as failure.
         * Zeroed after the hint (calloc may zero, and so touch, the pages
         * before it could be given). */
        d->images = malloc(n_pixels + 1);
        d->labels = calloc((size_t)n + 1, 1);
        if (d->images) {
            prefer_huge_pages(d->images, n_pixels);
            memset(d->images, 0, n_pixels + 1);
        }
    }
    if (!d || !d->images || !d->labels) {
        sg_dataset_free(d);
        sg_set_error("dataset_new: out of memory for %d images of %dx%d", n, rows, cols);
        return NULL;
    }
    d->n = n;
    d->rows = rows;
    d->cols = cols;
    d->n_classes = n_classes;
    return d;
}

void sg_dataset_free(sg_dataset *d)
{
    if (!d)
        return;
    free(d->images);
    free(d->labels);
    free(d);
}

sg_dataset *sg_dataset_subset(const sg_dataset *d, int start, int count)
{
    if (!d) {
        sg_set_error("dataset_subset: NULL dataset");
        return NULL;
    }
    if (start < 0 || count < 0 || start > d->n || count > d->n - start) {
        sg_set_error("dataset_subset: range [%d, %d + %d) is outside [0, %d)", start,
                     start, count, d->n);
        return NULL;
    }
    sg_dataset *s = sg_dataset_new(count, d->rows, d->cols, d->n_classes);
    if (!s)
        return NULL;
    size_t image_bytes = (size_t)d->rows * (size_t)d->cols;
    memcpy(s->images, d->images + (size_t)start * image_bytes, (size_t)count * image_bytes);
    memcpy(s->labels, d->labels + start, (size_t)count);
    return s;
}

/* ------------------------------------------------------------------------- */
/* Reading: one stream type over plain and gzip files */

enum { GZ_IN_CAP = 1 << 16 }; /* compressed bytes read at a time */

typedef struct idx_stream {
    const char *path; /* escaped, for messages */
    FILE *f;          /* the file (a regular one: see sg_open_regular) */
    bool is_gz;
    uint64_t on_disk; /* file length in bytes */
#ifdef SG_HAVE_ZLIB
    z_stream z;        /* inflating gzip members, when is_gz */
    bool z_live;       /* z initialised */
    bool z_end;        /* the last member ended exactly at the end of the file */
    unsigned char *in; /* GZ_IN_CAP bytes of compressed input */
#endif
} idx_stream;

static void stream_close(idx_stream *s)
{
    if (s->f)
        fclose(s->f);
    s->f = NULL;
#ifdef SG_HAVE_ZLIB
    if (s->z_live)
        inflateEnd(&s->z);
    s->z_live = false;
    free(s->in);
    s->in = NULL;
#endif
}

/* Open path (a regular file); tell gzip from plain by the magic bytes 1f 8b.
 * epath is the path escaped for messages. */
static int stream_open(idx_stream *s, const char *path, const char *epath)
{
    memset(s, 0, sizeof *s);
    s->path = epath;
    s->f = sg_open_regular("idx_load", path, &s->on_disk);
    if (!s->f)
        return -1;
    unsigned char head[2] = {0, 0};
    size_t got = fread(head, 1, 2, s->f);
    s->is_gz = got == 2 && head[0] == 0x1f && head[1] == 0x8b;
    rewind(s->f);
    if (!s->is_gz)
        return 0;
#ifdef SG_HAVE_ZLIB
    s->in = malloc(GZ_IN_CAP);
    if (!s->in || inflateInit2(&s->z, 16 + MAX_WBITS) != Z_OK) { /* 16: gzip wrapper only */
        sg_set_error("idx_load: %s: out of memory for gzip decompression", epath);
        stream_close(s);
        return -1;
    }
    s->z_live = true;
    return 0;
#else
    sg_set_error("idx_load: %s: the file is gzip-compressed but ScratchGrad was built "
                 "without zlib (install zlib1g-dev and rebuild, or gunzip the file)",
                 epath);
    stream_close(s);
    return -1;
#endif
}

#ifdef SG_HAVE_ZLIB
/* Make at least `need` compressed bytes available (fewer at the end of the
 * file): the rest of the buffer moves to its start, then the file refills
 * it. Returns the bytes available, or -1 + a message on a read error. */
static int64_t gz_fill(idx_stream *s, size_t need)
{
    z_stream *z = &s->z;
    if (z->avail_in >= need)
        return z->avail_in;
    if (z->avail_in > 0 && z->next_in != s->in)
        memmove(s->in, z->next_in, z->avail_in);
    z->next_in = s->in;
    while (z->avail_in < need) {
        size_t got = fread(s->in + z->avail_in, 1, GZ_IN_CAP - z->avail_in, s->f);
        if (got == 0) {
            if (ferror(s->f)) {
                sg_set_error("idx_load: %s: read error: %s", s->path, strerror(errno));
                return -1;
            }
            break;
        }
        z->avail_in += (uInt)got;
    }
    return z->avail_in;
}

/* Inflate up to n bytes into buf. A gzip file may hold several members one
 * after another (gzip -d reads them all, as zlib's gzread does); anything
 * else after the last member is refused, where gzread would ignore it. */
static int64_t gz_read(idx_stream *s, unsigned char *buf, size_t n)
{
    z_stream *z = &s->z;
    size_t done = 0;
    while (done < n && !s->z_end) {
        size_t chunk = n - done < (1u << 30) ? n - done : (1u << 30);
        z->next_out = buf + done;
        z->avail_out = (uInt)chunk;
        int64_t have = gz_fill(s, 1);
        if (have < 0)
            return -1;
        if (have == 0) {
            sg_set_error("idx_load: %s: corrupt or truncated gzip data: unexpected end of file",
                         s->path);
            return -1;
        }
        int rc = inflate(z, Z_NO_FLUSH);
        done += chunk - z->avail_out;
        if (rc == Z_OK || rc == Z_BUF_ERROR)
            continue; /* Z_BUF_ERROR: more input needed, read on the next turn */
        if (rc != Z_STREAM_END) {
            sg_set_error("idx_load: %s: corrupt or truncated gzip data: %s", s->path,
                         z->msg ? z->msg : rc == Z_MEM_ERROR ? "out of memory" : "bad data");
            return -1;
        }
        /* A member ended (its CRC and length checked by inflate): the end
         * of the file, another member, or trailing garbage. */
        have = gz_fill(s, 2);
        if (have < 0)
            return -1;
        if (have == 0) {
            s->z_end = true;
        } else if (have >= 2 && z->next_in[0] == 0x1f && z->next_in[1] == 0x8b) {
            inflateReset(z);
        } else {
            uint64_t at = (uint64_t)ftell(s->f) - z->avail_in;
            uint64_t extra = s->on_disk - at;
            sg_set_error("idx_load: %s: %llu unexpected byte%s after the end of the gzip data "
                         "(at byte %llu of %llu; not another gzip member)",
                         s->path, (unsigned long long)extra, extra == 1 ? "" : "s",
                         (unsigned long long)at, (unsigned long long)s->on_disk);
            return -1;
        }
    }
    return (int64_t)done;
}
#endif

/* Read up to n bytes; returns the count read (short at end of data), or -1
 * with a message on a read error or corrupt gzip data. */
static int64_t stream_read(idx_stream *s, void *buf, size_t n)
{
#ifdef SG_HAVE_ZLIB
    if (s->is_gz)
        return gz_read(s, buf, n);
#endif
    size_t done = fread(buf, 1, n, s->f);
    if (done < n && ferror(s->f)) {
        sg_set_error("idx_load: %s: read error: %s", s->path, strerror(errno));
        return -1;
    }
    return (int64_t)done;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Read and check the header of an IDX ubyte file of `ndim` dims; dims[]
 * receives the sizes. `what` is "images" or "labels" for messages. */
static int read_header(idx_stream *s, int ndim, uint32_t dims[3], const char *what)
{
    const uint32_t magic_want = (uint32_t)IDX_TYPE_UBYTE << 8 | (uint32_t)ndim;
    const size_t header_bytes = 4 + 4 * (size_t)ndim;
    unsigned char h[16];
    int64_t got = stream_read(s, h, 4);
    if (got < 0)
        return -1;
    if (got < 4) {
        sg_set_error("idx_load: %s: truncated header: %lld of %zu bytes (empty or not "
                     "an IDX file)",
                     s->path, (long long)got, header_bytes);
        return -1;
    }
    uint32_t magic = be32(h);
    if (h[0] != 0 || h[1] != 0) {
        sg_set_error("idx_load: %s: bad magic number 0x%08x (IDX %s must start with "
                     "0x%08x): not an IDX file",
                     s->path, (unsigned)magic, what, (unsigned)magic_want);
        return -1;
    }
    if (h[2] != IDX_TYPE_UBYTE) {
        sg_set_error("idx_load: %s: bad element type 0x%02x in magic 0x%08x (only "
                     "unsigned byte, 0x08, is supported)",
                     s->path, (unsigned)h[2], (unsigned)magic);
        return -1;
    }
    if (h[3] != ndim) {
        sg_set_error("idx_load: %s: bad number of dimensions %u in magic 0x%08x (IDX "
                     "%s have %d: expected magic 0x%08x)",
                     s->path, (unsigned)h[3], (unsigned)magic, what, ndim,
                     (unsigned)magic_want);
        return -1;
    }
    got = stream_read(s, h + 4, 4 * (size_t)ndim);
    if (got < 0)
        return -1;
    if ((size_t)got < 4 * (size_t)ndim) {
        sg_set_error("idx_load: %s: truncated header: %lld of %zu bytes", s->path,
                     (long long)(4 + got), header_bytes);
        return -1;
    }
    for (int i = 0; i < ndim; i++)
        dims[i] = be32(h + 4 + 4 * i);
    if (dims[0] < 1 || dims[0] > SG_IDX_MAX_ITEMS) {
        sg_set_error("idx_load: %s: absurd number of %s %lu (allowed: 1 to %d)", s->path,
                     what, (unsigned long)dims[0], SG_IDX_MAX_ITEMS);
        return -1;
    }
    for (int i = 1; i < ndim; i++) {
        if (dims[i] < 1 || dims[i] > SG_IDX_MAX_SIDE) {
            sg_set_error("idx_load: %s: absurd image size %lux%lu (sides allowed: 1 to %d)",
                         s->path, (unsigned long)dims[1], (unsigned long)dims[2],
                         SG_IDX_MAX_SIDE);
            return -1;
        }
    }
    return 0;
}

/* Read exactly `want` payload bytes into a new buffer, and check that no
 * byte follows. Plain files are checked against their length first. */
static uint8_t *read_payload(idx_stream *s, uint64_t want, size_t header_bytes,
                             const char *declared)
{
    if (want > SG_IDX_MAX_BYTES) {
        sg_set_error("idx_load: %s: absurd size: the header declares %s (%llu bytes, "
                     "more than the limit of %llu)",
                     s->path, declared, (unsigned long long)want,
                     (unsigned long long)SG_IDX_MAX_BYTES);
        return NULL;
    }
    if (!s->is_gz) {
        uint64_t have = s->on_disk - header_bytes;
        if (have < want) {
            sg_set_error("idx_load: %s: truncated: the header declares %s (%llu bytes) "
                         "but the file holds %llu",
                         s->path, declared, (unsigned long long)want,
                         (unsigned long long)have);
            return NULL;
        }
        if (have > want) {
            sg_set_error("idx_load: %s: %llu unexpected bytes after the data: the "
                         "header declares %s (%llu bytes)",
                         s->path, (unsigned long long)(have - want), declared,
                         (unsigned long long)want);
            return NULL;
        }
    }
    /* A plain file's size is checked: reserve it at once. So is a gzip
     * file's claim that its compressed size could hold (deflate expands at
     * most 1032:1, zlib's FAQ); a larger claim is a lie, and its buffer
     * grows as the data arrives (see the note at the top). */
    const uint64_t could_hold = s->on_disk > UINT64_MAX / 1032 ? UINT64_MAX : s->on_disk * 1032;
    size_t cap = !s->is_gz || want <= could_hold || want < ((size_t)1 << 20) ? (size_t)want : ((size_t)1 << 20);
    size_t done = 0;
    uint8_t *buf = malloc(cap + 1);
    if (!buf)
        goto oom;
    prefer_huge_pages(buf, cap); /* before the data arrives (see prefer_huge_pages) */
    while (done < want) {
        if (done == cap) {
            size_t grown = cap * 2 < want ? cap * 2 : (size_t)want;
            uint8_t *p = realloc(buf, grown + 1);
            if (!p)
                goto oom;
            buf = p;
            cap = grown;
        }
        int64_t got = stream_read(s, buf + done, cap - done);
        if (got < 0)
            goto fail;
        if (got == 0)
            break;
        done += (size_t)got;
    }
    if (done < want) {
        sg_set_error("idx_load: %s: truncated: the header declares %s (%llu bytes) but "
                     "the %s holds %llu",
                     s->path, declared, (unsigned long long)want,
                     s->is_gz ? "decompressed data" : "file", (unsigned long long)done);
        goto fail;
    }
    unsigned char extra[256];
    int64_t more = stream_read(s, extra, sizeof extra);
    if (more < 0)
        goto fail;
    if (more > 0) {
        sg_set_error("idx_load: %s: unexpected bytes after the data: the header "
                     "declares %s (%llu bytes)",
                     s->path, declared, (unsigned long long)want);
        goto fail;
    }
    return buf;
oom:
    sg_set_error("idx_load: %s: out of memory for %llu bytes", s->path,
                 (unsigned long long)want);
fail:
    free(buf);
    return NULL;
}

/* Load one IDX file: images (ndim 3) or labels (ndim 1). */
static uint8_t *load_file(const char *path, int ndim, uint32_t dims[3])
{
    const char *what = ndim == 3 ? "images" : "labels";
    char epath[SG_ESCAPE_MAX];
    sg_escape(path, epath, sizeof epath, true);
    idx_stream s;
    if (stream_open(&s, path, epath) != 0)
        return NULL;
    uint8_t *data = NULL;
    if (read_header(&s, ndim, dims, what) == 0) {
        uint64_t want = dims[0];
        char declared[96];
        if (ndim == 3) {
            want *= (uint64_t)dims[1] * dims[2];
            snprintf(declared, sizeof declared, "%lu images of %lux%lu",
                     (unsigned long)dims[0], (unsigned long)dims[1], (unsigned long)dims[2]);
        } else {
            snprintf(declared, sizeof declared, "%lu labels", (unsigned long)dims[0]);
        }
        data = read_payload(&s, want, 4 + 4 * (size_t)ndim, declared);
    }
    stream_close(&s);
    return data;
}

sg_dataset *sg_idx_load(const char *images_path, const char *labels_path)
{
    if (!images_path || !labels_path) {
        sg_set_error("idx_load: NULL %s path", images_path ? "labels" : "images");
        return NULL;
    }
    uint32_t idims[3] = {0, 0, 0}, ldims[3] = {0, 0, 0};
    uint8_t *images = load_file(images_path, 3, idims);
    if (!images)
        return NULL;
    uint8_t *labels = load_file(labels_path, 1, ldims);
    if (!labels) {
        free(images);
        return NULL;
    }
    char ei[SG_ESCAPE_MAX], el[SG_ESCAPE_MAX];
    sg_escape(images_path, ei, sizeof ei, true);
    sg_escape(labels_path, el, sizeof el, true);
    if (idims[0] != ldims[0]) {
        sg_set_error("idx_load: sizes differ: %s holds %lu images but %s holds %lu labels", ei,
                     (unsigned long)idims[0], el, (unsigned long)ldims[0]);
        free(images);
        free(labels);
        return NULL;
    }
    sg_dataset *d = calloc(1, sizeof *d);
    if (!d) {
        sg_set_error("idx_load: %s: out of memory", ei);
        free(images);
        free(labels);
        return NULL;
    }
    d->images = images;
    d->labels = labels;
    d->n = (int)idims[0];
    d->rows = (int)idims[1];
    d->cols = (int)idims[2];
    int max_label = 0;
    for (int i = 0; i < d->n; i++)
        max_label = labels[i] > max_label ? labels[i] : max_label;
    d->n_classes = max_label + 1 > IDX_MNIST_CLASSES ? max_label + 1 : IDX_MNIST_CLASSES;
    return d;
}

/* ------------------------------------------------------------------------- */
/* Writing */

#ifdef SG_HAVE_ZLIB
/* zlib's reason for the last error, without the "path: " it puts first. */
static const char *gz_reason(gzFile gz, const char *path, int *code)
{
    const char *why = gzerror(gz, code);
    size_t n = strlen(path);
    if (strncmp(why, path, n) == 0 && why[n] == ':' && why[n + 1] == ' ')
        why += n + 2;
    return *code == Z_ERRNO ? strerror(errno) : why;
}
#endif

static bool ends_with_gz(const char *path)
{
    size_t n = strlen(path);
    return n >= 3 && strcmp(path + n - 3, ".gz") == 0;
}

/* Write one IDX ubyte file: header with ndim dims, then `bytes` of data. */
static int save_file(const char *path, int ndim, const uint32_t *dims, const uint8_t *data,
                     size_t bytes)
{
    char epath[SG_ESCAPE_MAX];
    sg_escape(path, epath, sizeof epath, true);
    unsigned char h[16];
    h[0] = 0;
    h[1] = 0;
    h[2] = IDX_TYPE_UBYTE;
    h[3] = (unsigned char)ndim;
    for (int i = 0; i < ndim; i++) {
        h[4 + 4 * i] = (unsigned char)(dims[i] >> 24);
        h[5 + 4 * i] = (unsigned char)(dims[i] >> 16);
        h[6 + 4 * i] = (unsigned char)(dims[i] >> 8);
        h[7 + 4 * i] = (unsigned char)dims[i];
    }
    size_t header_bytes = 4 + 4 * (size_t)ndim;
    if (ends_with_gz(path)) {
#ifdef SG_HAVE_ZLIB
        gzFile gz = gzopen(path, "wb");
        if (!gz) {
            sg_set_error("idx_save: %s: cannot open for writing: %s", epath,
                         errno ? strerror(errno) : "out of memory");
            return -1;
        }
        bool ok = gzwrite(gz, h, (unsigned)header_bytes) == (int)header_bytes;
        for (size_t done = 0; ok && done < bytes;) {
            size_t chunk = bytes - done < (1u << 30) ? bytes - done : (1u << 30);
            ok = gzwrite(gz, data + done, (unsigned)chunk) == (int)chunk;
            done += chunk;
        }
        int code = Z_OK;
        char reason[128];
        snprintf(reason, sizeof reason, "%s", ok ? "" : gz_reason(gz, path, &code));
        if (gzclose(gz) != Z_OK && ok) {
            ok = false;
            snprintf(reason, sizeof reason, "error on close");
        }
        if (!ok) {
            sg_set_error("idx_save: %s: write failed: %s", epath, reason);
            return -1;
        }
        return 0;
#else
        sg_set_error("idx_save: %s: cannot write gzip: ScratchGrad was built without zlib",
                     epath);
        return -1;
#endif
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        sg_set_error("idx_save: %s: cannot open for writing: %s", epath, strerror(errno));
        return -1;
    }
    bool ok = fwrite(h, 1, header_bytes, f) == header_bytes &&
              fwrite(data, 1, bytes, f) == bytes;
    int err = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        err = errno;
    }
    if (!ok) {
        sg_set_error("idx_save: %s: write failed: %s", epath, strerror(err));
        return -1;
    }
    return 0;
}

int sg_idx_save(const sg_dataset *d, const char *images_path, const char *labels_path)
{
    if (!d || !images_path || !labels_path) {
        sg_set_error("idx_save: NULL %s", !d ? "dataset" : "path");
        return -1;
    }
    if (d->n < 1 || d->rows < 1 || d->cols < 1) {
        char ei[SG_ESCAPE_MAX];
        sg_set_error("idx_save: %s: cannot write %d images of %dx%d (IDX files here need "
                     "at least one image)",
                     sg_escape(images_path, ei, sizeof ei, true), d->n, d->rows, d->cols);
        return -1;
    }
    uint32_t idims[3] = {(uint32_t)d->n, (uint32_t)d->rows, (uint32_t)d->cols};
    uint32_t ldims[1] = {(uint32_t)d->n};
    size_t pixels = (size_t)d->n * (size_t)d->rows * (size_t)d->cols;
    if (save_file(images_path, 3, idims, d->images, pixels) != 0)
        return -1;
    return save_file(labels_path, 1, ldims, d->labels, (size_t)d->n);
}

/* ------------------------------------------------------------------------- */
/* MNIST layout */

/* Put dir/name or dir/name.gz (the first that exists) into out. */
static int find_file(const char *dir, const char *name, char *out, size_t cap)
{
    char edir[SG_ESCAPE_MAX];
    sg_escape(dir, edir, sizeof edir, true);
    static const char *const suffixes[] = {"", ".gz"};
    for (int i = 0; i < 2; i++) {
        int len = snprintf(out, cap, "%s/%s%s", dir, name, suffixes[i]);
        if (len < 0 || (size_t)len >= cap) {
            sg_set_error("mnist_load: %s: directory name too long", edir);
            return -1;
        }
        struct stat st;
        if (stat(out, &st) == 0)
            return 0;
    }
    sg_set_error("mnist_load: %s: found neither %s nor %s.gz there", edir, name, name);
    return -1;
}

sg_dataset *sg_mnist_load(const char *dir, bool train)
{
    if (!dir) {
        sg_set_error("mnist_load: NULL directory");
        return NULL;
    }
    const char *set = train ? "train" : "t10k";
    char images_name[64], labels_name[64];
    snprintf(images_name, sizeof images_name, "%s-images-idx3-ubyte", set);
    snprintf(labels_name, sizeof labels_name, "%s-labels-idx1-ubyte", set);
    size_t cap = strlen(dir) + 80;
    char *images = malloc(cap), *labels = malloc(cap);
    sg_dataset *d = NULL;
    if (!images || !labels)
        sg_set_error("mnist_load: %s: out of memory", sg_escape(dir, images_name, sizeof images_name, true));
    else if (find_file(dir, images_name, images, cap) == 0 &&
             find_file(dir, labels_name, labels, cap) == 0)
        d = sg_idx_load(images, labels);
    free(images);
    free(labels);
    return d;
}
