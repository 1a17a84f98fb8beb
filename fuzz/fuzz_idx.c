/*
 * fuzz_idx.c — libFuzzer target for the IDX reader, sg_idx_load()
 * (datasets/idx.c), plain and gzip.
 *
 * Input: one mode byte, then the bytes of one file.
 *   mode & 1 == 0: the bytes are the image file; the label file is a valid
 *                  one with as many labels as the image header declares
 *                  (capped at 4096), so a valid image file loads.
 *   mode & 1 == 1: the bytes are the label file; the image file is a valid
 *                  one of that many 1x1 images (capped likewise).
 * A file starting with 1f 8b is read as gzip. A loaded set is checked
 * against the reader's invariant (labels < n_classes) and freed.
 */
#include "fuzz_common.h"
#include "sg_datasets.h"

#include <string.h>

static int images_fd = -1, labels_fd = -1;
static char images_path[32], labels_path[32];

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

volatile unsigned fuzz_sink; /* keeps the reads of every output byte */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (images_fd < 0) {
        images_fd = fuzz_memfile("images", images_path);
        labels_fd = fuzz_memfile("labels", labels_path);
    }
    int mode = data[0] & 1;
    data++;
    size--;
    uint32_t n = size >= 8 ? be32(data + 4) : 1;
    if (n < 1 || n > 4096)
        n = 1;
    static uint8_t other[16 + 4096];
    memset(other, 0, sizeof other);
    size_t other_len;
    if (mode == 0) { /* a valid label file of n labels */
        put_be32(other, 0x00000801);
        put_be32(other + 4, n);
        for (uint32_t i = 0; i < n; i++)
            other[8 + i] = (uint8_t)(i % 13);
        other_len = 8 + n;
        fuzz_fill(images_fd, data, size);
        fuzz_fill(labels_fd, other, other_len);
    } else { /* a valid image file of n 1x1 images */
        put_be32(other, 0x00000803);
        put_be32(other + 4, n);
        put_be32(other + 8, 1);
        put_be32(other + 12, 1);
        other_len = 16 + n;
        fuzz_fill(images_fd, other, other_len);
        fuzz_fill(labels_fd, data, size);
    }
    sg_dataset *d = sg_idx_load(images_path, labels_path);
    if (d) {
        for (int i = 0; i < d->n; i++)
            if (d->labels[i] >= d->n_classes)
                abort();
        unsigned sum = 0;
        for (size_t i = 0; i < (size_t)d->n * (size_t)d->rows * (size_t)d->cols; i++)
            sum += d->images[i]; /* every pixel readable */
        fuzz_sink = sum;
        sg_dataset_free(d);
    } else if (!sg_last_error()[0]) {
        abort(); /* a failure always says why */
    }
    sg_clear_error();
    return 0;
}
