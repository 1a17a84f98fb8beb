/*
 * bench_train.c — the ScratchGrad side of the training benchmark (issue 6):
 * trains the MLP or SimpleConvNet on Fashion-MNIST with the settings of
 * bench/torch_ref.py and prints the same machine-readable RESULT line.
 *
 *   ./build/bench/bench_train --model mlp|cnn [--epochs N] [--threads N]
 *                             [--batch 100] [--seed 1] [--train-limit N]
 *                             [--no-eval]
 *
 *   mlp  784-100-10 ReLU, SGD lr 0.1                      (default 10 epochs)
 *   cnn  SimpleConvNet: conv 30x5x5 (stride 1, pad 0) - ReLU - max pool 2
 *        - affine 4320->100 - ReLU - affine 100->10, Adam lr 0.001 (5 epochs)
 *   both batch 100, softmax cross-entropy (mean over the batch), He-normal
 *        weights, zero biases, one shuffled order per epoch from a seed.
 *
 * Measured
 *   - seconds of each epoch's training loop (batch gather, forward, zero
 *     grad, backward, update); evaluation excluded;
 *   - test accuracy on the 10,000 test images after the last epoch (the
 *     test set is loaded only then, evaluated 100 images at a time);
 *   - peak RSS of the process (getrusage ru_maxrss) at the end of training
 *     (peak_mb) and at exit (peak_total_mb), the scope arenas' reservation
 *     and the optimizer's state;
 *   - calls to malloc (calloc, realloc, aligned_alloc, posix_memalign,
 *     memalign) per warm training step made by the engine's code and this
 *     file's, from any thread: bench/alloc_count.c counts them through the
 *     linker's --wrap (bench/meson.build links this program to a counted
 *     copy of the engine's library). Calls made inside other libraries
 *     (libc's own, OpenBLAS, libgomp) are not counted. "Warm" steps are all
 *     steps after the first WARM_STEPS of the first epoch.
 *
 * Threads: --threads N calls sg_set_threads(N) (the engine's OpenMP kernels
 * and OpenBLAS); without it the libraries' defaults apply (they read
 * OMP_NUM_THREADS and OPENBLAS_NUM_THREADS). The RESULT line reports the
 * count set, or the environment's OPENBLAS_NUM_THREADS (0 if unset).
 *
 * Last line, e.g.:
 *   RESULT impl=sg model=mlp threads=1 epochs=10 sec_per_epoch=0.18
 *          sec_best=0.17 test_acc=0.8712 peak_mb=64.3 peak_total_mb=66.0
 *          mallocs_per_step=0
 */
#include "book_models.h"
#include "sg_autograd.h"
#include "sg_datasets.h"
#include "sg_nn.h"
#include "sg_optim.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* ---- allocation count (bench/alloc_count.c, linked through --wrap) ---- */

#ifdef SG_BENCH_ALLOC_COUNT
#include "alloc_count.h"
static unsigned long allocs_so_far(void) { return sg_bench_alloc_calls(); }
#else
static unsigned long allocs_so_far(void) { return 0; }
#endif

/* ---- helpers ---- */

#define WARM_STEPS 20  /* steps of epoch 1 not counted as warm */
#define EVAL_BATCH 100 /* test images per evaluation batch */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double peak_rss_mb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* Linux: kilobytes */
}

static int env_int(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : 0;
}

static int fail(const char *what)
{
    fprintf(stderr, "bench_train: %s: %s\n", what, sg_last_error());
    return 1;
}

typedef struct args {
    const char *model; /* "mlp" or "cnn" */
    int epochs, batch, train_limit, threads;
    unsigned long seed;
    bool eval;
} args;

static int parse_args(int argc, char **argv, args *a)
{
    *a = (args){.model = "mlp", .epochs = 0, .batch = 100, .seed = 1, .eval = true};
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(s, "--model") == 0 && v)
            a->model = v, i++;
        else if (strcmp(s, "--epochs") == 0 && v)
            a->epochs = atoi(v), i++;
        else if (strcmp(s, "--threads") == 0 && v)
            a->threads = atoi(v), i++;
        else if (strcmp(s, "--batch") == 0 && v)
            a->batch = atoi(v), i++;
        else if (strcmp(s, "--seed") == 0 && v)
            a->seed = strtoul(v, NULL, 10), i++;
        else if (strcmp(s, "--train-limit") == 0 && v)
            a->train_limit = atoi(v), i++;
        else if (strcmp(s, "--no-eval") == 0)
            a->eval = false;
        else {
            fprintf(stderr,
                    "usage: %s [--model mlp|cnn] [--epochs N] [--threads N] [--batch 100]\n"
                    "          [--seed 1] [--train-limit N] [--no-eval]\n",
                    argv[0]);
            return -1;
        }
    }
    if (strcmp(a->model, "mlp") != 0 && strcmp(a->model, "cnn") != 0) {
        fprintf(stderr, "bench_train: unknown model '%s' (mlp or cnn)\n", a->model);
        return -1;
    }
    if (a->epochs <= 0)
        a->epochs = strcmp(a->model, "mlp") == 0 ? 10 : 5;
    if (a->batch <= 0) {
        fprintf(stderr, "bench_train: batch must be >= 1\n");
        return -1;
    }
    return 0;
}

/* Test accuracy in evaluation and no-grad mode, EVAL_BATCH images at a time. */
static double evaluate(sg_model *m, const sg_dataset *test, const sg_batch_opts *bo)
{
    bool prev = sg_set_grad_enabled(false);
    sg_model_set_training(m, false);
    double correct = 0;
    for (int start = 0; start < test->n; start += EVAL_BATCH) {
        int count = test->n - start < EVAL_BATCH ? test->n - start : EVAL_BATCH;
        int idx[EVAL_BATCH];
        for (int i = 0; i < count; i++)
            idx[i] = start + i;
        sg_scope_begin();
        sg_tensor *x = sg_dataset_images(test, idx, count, bo);
        sg_tensor *t = sg_dataset_labels(test, idx, count, &(sg_batch_opts){.one_hot = false});
        sg_tensor *y = sg_model_forward(m, x);
        float acc = y && t ? sg_accuracy(y, t) : NAN;
        sg_scope_end();
        if (isnan(acc)) {
            correct = NAN;
            break;
        }
        correct += (double)acc * count;
    }
    sg_model_set_training(m, true);
    sg_set_grad_enabled(prev);
    return correct / test->n;
}

int main(int argc, char **argv)
{
    args a;
    if (parse_args(argc, argv, &a) != 0)
        return 2;
    bool mlp = strcmp(a.model, "mlp") == 0;

    sg_dataset *train = sg_mnist_load(SG_FASHION_MNIST_DIR, true);
    if (!train)
        return fail("loading Fashion-MNIST");
    if (a.train_limit > 0 && a.train_limit < train->n) {
        sg_dataset *sub = sg_dataset_subset(train, 0, a.train_limit);
        sg_dataset_free(train);
        if (!(train = sub))
            return fail("subset");
    }
    sg_batch_opts bo = {.normalize = true, .flatten = mlp, .one_hot = false};

    sg_rng rng;
    sg_rng_seed(&rng, a.seed);
    sg_model *m = book_model_new(a.model, &BOOK_MODEL_DEFAULTS, &rng); /* as demos/train builds it */
    if (!m)
        return fail("building the model");
    sg_tensor *params[16];
    int n_params = sg_model_trainable(m, params, 16);
    sg_optim *opt = mlp ? sg_sgd_new(0.1f) : sg_adam_new(0.001f, 0.9f, 0.999f);
    if (!opt || n_params > 16)
        return fail("making the optimizer");
    sg_loader *loader = sg_loader_new(train->n,
        &(sg_loader_opts){.batch = a.batch, .shuffle = true, .seed = a.seed});
    int *labels = malloc((size_t)a.batch * sizeof *labels);
    if (!loader || !labels)
        return fail("making the loader");

    int threads = a.threads > 0 ? sg_set_threads(a.threads) : env_int("OPENBLAS_NUM_THREADS");
    char kernels[320];
    printf("%s\n", sg_kernels_describe(kernels, sizeof kernels));
    printf("ScratchGrad %s: %zu parameters, %d training images, batch %d, %d epochs, ", a.model,
           sg_model_num_params(m, false), train->n, a.batch, a.epochs);
    if (a.threads > 0)
        printf("sg_set_threads(%d)\n", threads);
    else
        printf("OPENBLAS_NUM_THREADS=%d OMP_NUM_THREADS=%d\n", threads, env_int("OMP_NUM_THREADS"));

    double total = 0, best = 1e30;
    long steps = 0, warm_steps = 0;
    unsigned long warm_allocs = 0, alloc_mark = 0;
    for (int epoch = 0; epoch < a.epochs; epoch++) {
        const int *idx;
        int b;
        float last_loss = NAN;
        double t0 = now();
        while ((b = sg_loader_next(loader, &idx)) > 0) {
            if (steps == WARM_STEPS)
                alloc_mark = allocs_so_far();
            sg_scope_begin();
            sg_tensor *x = sg_dataset_images(train, idx, b, &bo);
            sg_tensor *loss = NULL;
            if (sg_dataset_label_ints(train, idx, b, labels) == 0)
                loss = sg_softmax_cross_entropy_labels(sg_model_forward(m, x), labels, b);
            sg_optim_zero_grad(params, n_params);
            if (!loss || sg_backward(loss, NULL) != 0 || sg_optim_step(opt, params, n_params) != 0) {
                sg_scope_end();
                return fail("training step");
            }
            last_loss = sg_item(loss);
            sg_scope_end();
            steps++;
        }
        if (b < 0)
            return fail("loader");
        double dt = now() - t0;
        total += dt;
        best = dt < best ? dt : best;
        printf("epoch %d  %.3f s  loss %.4f\n", epoch + 1, dt, last_loss);
        fflush(stdout);
    }
    if (steps > WARM_STEPS) {
        warm_allocs = allocs_so_far() - alloc_mark;
        warm_steps = steps - WARM_STEPS;
    }
    size_t arena = sg_scope_reserved_bytes();
    double train_peak = peak_rss_mb(); /* the test set is loaded only now */
    double acc = NAN;
    sg_dataset *test = NULL;
    if (a.eval) {
        test = sg_mnist_load(SG_FASHION_MNIST_DIR, false);
        if (!test || isnan(acc = evaluate(m, test, &bo)))
            return fail("evaluation");
    }

#ifdef SG_BENCH_ALLOC_COUNT
    char mallocs[32];
    snprintf(mallocs, sizeof mallocs, "%.3g", warm_steps ? (double)warm_allocs / warm_steps : 0.0);
    printf("allocation calls: %lu in the %ld warm steps, %lu since start\n", warm_allocs, warm_steps,
           allocs_so_far());
#else
    const char *mallocs = "na";
    (void)warm_allocs, (void)warm_steps;
    printf("allocation calls: not counted (the linker has no --wrap)\n");
#endif
    printf("scope arenas %.1f MB, optimizer state %.1f MB\n", arena / 1048576.0,
           sg_optim_state_bytes(opt) / 1048576.0);
    printf("RESULT impl=sg model=%s threads=%d epochs=%d sec_per_epoch=%.4f sec_best=%.4f "
           "test_acc=%.4f peak_mb=%.1f peak_total_mb=%.1f mallocs_per_step=%s\n",
           a.model, threads, a.epochs, total / a.epochs, best, acc, train_peak, peak_rss_mb(),
           mallocs);

    free(labels);
    sg_loader_free(loader);
    sg_optim_free(opt);
    sg_model_free(m);
    sg_dataset_free(train);
    sg_dataset_free(test);
    sg_release_memory();
    return 0;
}
