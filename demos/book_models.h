/*
 * book_models.h — the book's three classifiers as the trainer builds them:
 * one definition for demos/train.c, bench/bench_train.c, bench/bench_dist.c
 * and tests/test_determinism.c, so a benchmark or a test always measures
 * the network the trainer trains.
 *
 *   "mlp"   TwoLayerNet (book ch. 4-5): flatten, affine (rows*cols ->
 *           hidden), [batch norm], ReLU, affine (hidden -> classes)
 *   "cnn"   SimpleConvNet (ch. 7): conv 30x5x5 (stride 1, no padding),
 *           ReLU, max pool 2x2, flatten, affine -> 100, ReLU, affine
 *   "deep"  DeepConvNet (ch. 8): (conv 3x3 [batch norm] ReLU) x2, max pool
 *           2x2, three times with 16, 32, 64 filters (the fourth conv padded
 *           by 2), flatten, affine -> 50, ReLU, dropout 0.5, affine
 *
 * Weights He-normal (std sqrt(2 / fan_in)), biases 0, drawn from rng in
 * the order of the layers; layers named as the trainer's checkpoints and
 * --save files name them (conv1, bn1, relu1, pool1, flatten, fc1, ...).
 * Input (N, 1, rows, cols); the MLP takes (N, rows*cols) as well.
 */
#ifndef DEMO_BOOK_MODELS_H
#define DEMO_BOOK_MODELS_H

#include "sg_nn.h"

#include <stdbool.h>

typedef struct book_model_opts {
    int rows, cols; /* image size (28 x 28 for MNIST-like sets) */
    int classes;
    int hidden;      /* the MLP's hidden units (the book's 100) */
    bool batch_norm; /* after each affine (mlp) or convolution (deep) */
} book_model_opts;

/* The book's defaults: 28 x 28, 10 classes, 100 hidden, no batch norm. */
#define BOOK_MODEL_DEFAULTS ((book_model_opts){.rows = 28, .cols = 28, .classes = 10, .hidden = 100})

/* A new model (the caller frees it with sg_model_free), or NULL with the
 * library's error set: an unknown name, or a layer that could not be made. */
sg_model *book_model_new(const char *name, const book_model_opts *o, sg_rng *rng);

#endif
