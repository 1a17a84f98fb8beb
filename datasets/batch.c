/*
 * batch.c — from stored samples to float tensors, one batch at a time.
 *
 * An sg_dataset keeps its pixels as bytes; a batch of B images becomes a
 * (B, rows*cols) or (B, 1, rows, cols) float tensor only here, with the
 * options of the book's load_mnist. sg_take_rows() does the same gathering
 * for sets that are tensors already (the synthetic ones).
 *
 * Invariant: every index is checked before any tensor is made, so a bad
 * index costs no allocation and leaves a message naming it.
 */
#include "sg_datasets.h"
#include "sg_kernels.h" /* the level's byte-to-float conversion */

#include <string.h>

/* Check d, count and every index; idx NULL means 0..count-1. Each
 * sample's label must be one of the set's n_classes (a set filled by hand
 * may hold any byte): a one-hot row has no room for another. */
static int check_batch(const char *fn, const sg_dataset *d, const int *idx, int count)
{
    if (!d) {
        sg_set_error("%s: NULL dataset", fn);
        return -1;
    }
    if (count < 0) {
        sg_set_error("%s: negative count %d", fn, count);
        return -1;
    }
    if (!idx && count > d->n) {
        sg_set_error("%s: count %d exceeds the %d samples of the set", fn, count, d->n);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        const int k = idx ? idx[i] : i;
        if (k < 0 || k >= d->n) {
            sg_set_error("%s: index %d (batch position %d) is outside [0, %d)", fn, k, i, d->n);
            return -1;
        }
        if (d->labels[k] >= d->n_classes) {
            sg_set_error("%s: sample %d has label %d, outside the set's %d classes", fn, k,
                         d->labels[k], d->n_classes);
            return -1;
        }
    }
    return 0;
}

sg_tensor *sg_dataset_images(const sg_dataset *d, const int *idx, int count,
                             const sg_batch_opts *opts)
{
    sg_batch_opts o = opts ? *opts : SG_BATCH_DEFAULTS;
    if (check_batch("dataset_images", d, idx, count) != 0)
        return NULL;
    int pixels = d->rows * d->cols;
    sg_dtype dt = sg_set_default_dtype(SG_FLOAT32); /* images are float32 whatever the default */
    sg_tensor *x = o.flatten ? sg_empty(SG_DIMS(count, pixels))
                             : sg_empty(SG_DIMS(count, 1, d->rows, d->cols));
    sg_set_default_dtype(dt);
    if (!x)
        return NULL;
    float *restrict out = sg_data(x);
    for (int b = 0; b < count; b++) {
        const uint8_t *restrict src = d->images + (size_t)(idx ? idx[b] : b) * (size_t)pixels;
#if defined(__GNUC__)
        /* a shuffled batch reads scattered rows: fetch the next one while
         * this one is converted (its first cache line is a miss otherwise) */
        if (b + 1 < count) {
            const uint8_t *next = d->images + (size_t)(idx ? idx[b + 1] : b + 1) * (size_t)pixels;
            for (int p = 0; p < pixels; p += 64)
                __builtin_prefetch(next + p);
        }
#endif
        /* the level's kernel: 8 or 16 pixels per instruction where the CPU
         * has AVX2 (the library's own code is built for baseline x86-64) */
        sg_kern->bytes_to_float(out + (size_t)b * (size_t)pixels, src, o.normalize ? 255.0f : 1.0f,
                                (size_t)pixels);
    }
    return x;
}

sg_tensor *sg_dataset_labels(const sg_dataset *d, const int *idx, int count,
                             const sg_batch_opts *opts)
{
    sg_batch_opts o = opts ? *opts : SG_BATCH_DEFAULTS;
    if (check_batch("dataset_labels", d, idx, count) != 0)
        return NULL;
    sg_tensor *t = o.one_hot ? sg_full_dtype(SG_FLOAT32, 0.0, SG_DIMS(count, d->n_classes))
                             : sg_full_dtype(SG_FLOAT32, 0.0, SG_DIMS(count));
    if (!t)
        return NULL;
    float *out = sg_data(t);
    for (int b = 0; b < count; b++) {
        int label = d->labels[idx ? idx[b] : b];
        if (o.one_hot)
            out[(size_t)b * (size_t)d->n_classes + (size_t)label] = 1.0f;
        else
            out[b] = (float)label;
    }
    return t;
}

int sg_dataset_label_ints(const sg_dataset *d, const int *idx, int count, int *out)
{
    if (check_batch("dataset_label_ints", d, idx, count) != 0)
        return -1;
    if (!out && count > 0) {
        sg_set_error("dataset_label_ints: NULL output array");
        return -1;
    }
    for (int b = 0; b < count; b++)
        out[b] = d->labels[idx ? idx[b] : b];
    return 0;
}

sg_tensor *sg_take_rows(sg_tensor *x, const int *idx, int count)
{
    if (!x) {
        sg_set_error("take_rows: NULL tensor");
        return NULL;
    }
    int ndim = sg_ndim(x);
    if (ndim < 1) {
        sg_set_error("take_rows: a 0-d tensor has no rows");
        return NULL;
    }
    int n = sg_dim(x, 0);
    if (count < 0 || (!idx && count > n)) {
        sg_set_error("take_rows: cannot take %d rows of a tensor with %d", count, n);
        return NULL;
    }
    for (int i = 0; idx && i < count; i++) {
        if (idx[i] < 0 || idx[i] >= n) {
            sg_set_error("take_rows: index %d (position %d) is outside [0, %d)", idx[i], i, n);
            return NULL;
        }
    }
    int shape[SG_MAX_DIMS];
    memcpy(shape, sg_shape(x), (size_t)ndim * sizeof shape[0]);
    shape[0] = count;
    const bool f64 = sg_dtype_of(x) == SG_FLOAT64; /* rows keep x's dtype */
    sg_tensor *y = sg_full_dtype(sg_dtype_of(x), 0.0, ndim, shape);
    if (!y)
        return NULL;
    size_t row = n > 0 ? sg_size(x) / (size_t)n : 0, esz = f64 ? sizeof(double) : sizeof(float);
    const char *src = f64 ? (const char *)sg_data64(x) : (const char *)sg_data(x);
    char *dst = f64 ? (char *)sg_data64(y) : (char *)sg_data(y);
    for (int i = 0; row > 0 && i < count; i++)
        memcpy(dst + (size_t)i * row * esz, src + (size_t)(idx ? idx[i] : i) * row * esz, row * esz);
    return y;
}
