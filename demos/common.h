/*
 * common.h — what the demos share: their command-line flags, pictures drawn
 * by gnuplot, a clock, small slices of Fashion-MNIST, and the pieces of the
 * book's networks and training loops.
 *
 * Every demo takes the same flags:
 *   --full       the longer run (more data, more steps), where there is one
 *   --no-plot    draw no picture
 *   --out DIR    write pictures into DIR (default: the current directory)
 *   --help       say what the demo shows
 *
 * Networks: demo_mlp() builds the book's MultiLayerNet(Extend) (common/ in the
 * book's code) as an sg_model; demo_train_step() is one step of the book's
 * mini-batch training loop (train_neuralnet.py, common/trainer.py) and
 * demo_evaluate() gives the net's accuracy on a set.
 *
 * Pictures: plot_begin() opens a pipe to gnuplot with a PNG terminal (pngcairo
 * when gnuplot has it, else png) and the output file set; the demo writes
 * gnuplot commands and data to it, and plot_end() closes it and says where
 * the picture went. When gnuplot is not installed the demo says so ("gnuplot
 * is not installed: no picture") and runs on without pictures.
 */
#ifndef DEMO_COMMON_H
#define DEMO_COMMON_H

#include "sg_autograd.h"
#include "sg_datasets.h"
#include "sg_nn.h"
#include "sg_optim.h"

#include <stdbool.h>
#include <stdio.h>

/** The help text's environment lines, the same in every demo's --help
 *  (the demos with their own usage line print it too). */
#define DEMO_ENV_HELP                                                                     \
    "environment: SG_ISA=generic|avx2|avx512 lowers the kernels' instruction set\n"     \
    "(OPENBLAS_CORETYPE=Prescott|Haswell|SkylakeX does so for OpenBLAS's)\n"

/** The flags every demo understands. */
typedef struct demo_opts {
    bool full;       /**< --full: the longer run */
    bool plot;       /**< false with --no-plot */
    const char *out; /**< --out DIR: where pictures go */
} demo_opts;

/** Read the flags. `about` is printed by --help. Exits with status 2 on an
 *  unknown flag (a demo is a program, not library code). */
demo_opts demo_args(int argc, char **argv, const char *about);

/** Wall-clock seconds from an arbitrary start (for speed ratios). */
double demo_now(void);

/** Open gnuplot to draw `name`.png into o->out. Returns the pipe, or NULL
 *  (with a line saying why) when plotting is off or gnuplot is missing. */
FILE *plot_begin(const demo_opts *o, const char *name);
/** Same, for a picture of width x height pixels (plot_begin: 900 x 600). */
FILE *plot_begin_size(const demo_opts *o, const char *name, int width, int height);

/** Close the pipe from plot_begin() and report the picture. NULL is fine. */
void plot_end(FILE *gp, const demo_opts *o, const char *name);

/** Start an inline gnuplot data block `$name`; end it with plot_data_end(). */
void plot_data_begin(FILE *gp, const char *name);
/** End the data block started by plot_data_begin(). */
void plot_data_end(FILE *gp);

/** Names of the ten Fashion-MNIST classes. */
extern const char *const fashion_class[10];

/** The first `count` images of Fashion-MNIST's training set (train) or test
 *  set (!train), from Debian's dataset-fashion-mnist package. NULL with a
 *  message on stderr if the set is not installed. Free with
 *  sg_dataset_free(). */
sg_dataset *demo_fashion(bool train, int count);

/** Fraction of rows i of y (N, C) whose largest score is at the true class
 *  d->labels[idx[i]] (idx NULL: d->labels[i]). */
double demo_accuracy(sg_tensor *y, const sg_dataset *d, const int *idx);

/** What demo_mlp() builds: the options of the book's MultiLayerNetExtend. */
typedef struct demo_mlp_opts {
    const char *activation; /**< "relu" (default when NULL), "sigmoid" or "tanh" */
    sg_init init;           /**< weight initialisation of every affine layer */
    bool batchnorm;         /**< batch norm after each hidden affine layer */
    float bn_eps;           /**< batch norm's eps; 0: 1e-5 (PyTorch's) */
    float dropout;          /**< drop probability after each activation; 0: none */
    uint64_t seed;          /**< seed of the weights (and dropout masks) */
} demo_mlp_opts;

/** in -> hidden[0] -> ... -> hidden[n_hidden-1] -> out: each hidden layer is
 *  affine [-> batchnorm] -> activation [-> dropout]; the output layer is
 *  affine alone (softmax goes with the loss). Layer names: fc1, bn1, act1,
 *  drop1, ..., fcN. Free with sg_model_free(). NULL with a message on
 *  stderr on failure. Call with no scope open. */
sg_model *demo_mlp(int in, const int *hidden, int n_hidden, int out, const demo_mlp_opts *o);

/** m itself if it was built without an error, else NULL: m is freed and
 *  "who: <message>" goes to stderr. For the end of a model builder:
 *  `return demo_model_built(m, "ch07_cnn");` (sg_model_new() and the layer
 *  constructors leave their message in sg_last_error()). */
sg_model *demo_model_built(sg_model *m, const char *who);

/** The next batch of `it` (see sg_loader_next()), going on into the next
 *  epoch where one ends: for training loops counted in iterations. Returns
 *  the batch size, or -1 (sg_last_error() says why). */
int demo_next_batch(sg_loader *it, const int **idx);

/** The book's batch_mask = np.random.choice(n, count): count indices drawn
 *  uniformly from [0, n), with repetition, into idx. */
void demo_random_choice(sg_rng *rng, int n, int count, int *idx);

/** Limits of demo_train_step(): samples in a batch, trainable tensors. */
enum { DEMO_MAX_BATCH = 1000, DEMO_MAX_PARAMS = 64 };

/** One step of mini-batch training on the samples idx[0..count) of d:
 *
 *      loss = softmax_cross_entropy(net(x), t) [+ 0.5 * weight_decay * sum(W^2)]
 *      zero the gradients; backward; one step of opt on every trainable
 *      tensor of net
 *
 *  x: the images scaled to [0, 1], as rows of 784 values, or as
 *  (N, 1, 28, 28) if `images` (as in demo_evaluate()); t: their labels. The
 *  weight-decay term (the book's, over the weights W of the "fc*"/"conv*"
 *  layers, see demo_weight_square_sum()) is added only if weight_decay > 0.
 *  Runs in a scope of its own; call it with or without one open. *loss (may
 *  be NULL) receives the loss. Returns 0, or -1 with the message on stderr
 *  (nothing then written to *loss); count <= DEMO_MAX_BATCH and at most
 *  DEMO_MAX_PARAMS trainable tensors. */
int demo_train_step(sg_model *net, sg_optim *opt, const sg_dataset *d, const int *idx, int count, bool images,
                    float weight_decay, float *loss);

/** Fraction of d's images that model m classifies right, computed in
 *  evaluation mode without recording a graph, in chunks of 1000. The images
 *  go in as rows of 784 values, or as (N, 1, 28, 28) if `images` (for
 *  convolutional nets). The model's mode is restored. */
double demo_evaluate(sg_model *m, const sg_dataset *d, bool images);

/** Sum of squares of the model's weights W of every "fc*"/"conv*" layer
 *  (not biases, not batch-norm parameters): the book's weight decay term is
 *  0.5 * lambda * demo_weight_square_sum(m). Result in the current scope. */
sg_tensor *demo_weight_square_sum(sg_model *m);

#endif /* DEMO_COMMON_H */
