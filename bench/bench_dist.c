/*
 * bench_dist.c — data-parallel training speed over MPI (issue 15): the
 * MLP or SimpleConvNet on Fashion-MNIST, a global batch split across the
 * ranks of `mpirun -np N`, gradients averaged with sg_dist's one packed
 * allreduce. bench/dist.sh runs it at 1 and 2 ranks and prints the table.
 *
 *   mpirun -np N ./build/bench/bench_dist --model mlp|cnn|deep [--steps S]
 *                [--batch 100] [--threads 1] [--warmup 5]
 *
 *   mlp  784-100-10 ReLU, SGD lr 0.1;  cnn  conv 30x5x5 - ReLU - pool 2 -
 *        affine 4320->100 - ReLU - affine 100->10, Adam lr 0.001 (the
 *        models and optimizers of bench_train.c); deep  DeepConvNet; all
 *        three as demos/train builds them (demos/book_models.c), Adam lr 0.001 (for the compute time per
 *        step that docs/distributed.md's scaling estimate uses); batch 100
 *        = global batch.
 *
 * Per step, timed on every rank after `warmup` untimed steps:
 *   compute  batch gather, forward, zero grad, backward (this rank's slice)
 *   wait     a barrier before the allreduce: the time this rank waits for
 *            the slowest one (load imbalance, a noisy neighbour)
 *   reduce   sg_dist_reduce_gradients: pack, MPI_Allreduce, unpack — the
 *            communication itself, every rank having arrived
 *   step     the optimizer update
 * Rank 0 prints the mean of each over the ranks (sg_dist_sum), images/s of
 * the whole job (global batch / wall time per step), and one line
 *   RESULT model=mlp ranks=2 threads=1 batch=100 steps=200 img_s=... step_ms=...
 *          compute_ms=... wait_ms=... reduce_ms=... reduce_share=... grad_bytes=...
 * The barrier is there only to tell waiting from communicating; the trainer
 * has none (its allreduce time includes the wait).
 */
#include "book_models.h"
#include "sg_autograd.h"
#include "sg_datasets.h"
#include "sg_dist.h"
#include "sg_nn.h"
#include "sg_optim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    sg_dist_init(&argc, &argv);
    const char *model = "mlp";
    int steps = 0, batch = 100, threads = 1, warmup = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--model"))
            model = argv[i + 1];
        else if (!strcmp(argv[i], "--steps"))
            steps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--batch"))
            batch = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--warmup"))
            warmup = atoi(argv[i + 1]);
    }
    bool cnn = !strcmp(model, "cnn"), deep = !strcmp(model, "deep");
    if (steps <= 0)
        steps = deep ? 20 : cnn ? 60 : 300;
    int rank = sg_dist_rank(), size = sg_dist_size();
    if ((strcmp(model, "mlp") && !cnn && !deep) || batch < size || warmup < 0) {
        if (rank == 0)
            fprintf(stderr, "bench_dist: --model mlp|cnn|deep, --batch >= ranks, --warmup >= 0\n");
        sg_dist_finalize();
        return 2;
    }
    sg_set_threads(threads);
    sg_dataset *train = sg_mnist_load(SG_FASHION_MNIST_DIR, true);
    if (sg_dist_check(train ? NULL : sg_last_error()) != 0) {
        if (rank == 0)
            fprintf(stderr, "bench_dist: %s\n", sg_last_error());
        sg_dataset_free(train);
        sg_dist_finalize();
        return 1;
    }
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_model *m = book_model_new(model, &BOOK_MODEL_DEFAULTS, &rng); /* as demos/train builds it */
    sg_optim_opts oo = sg_optim_defaults(cnn || deep ? SG_OPTIM_ADAM : SG_OPTIM_SGD);
    oo.lr = cnn || deep ? 0.001f : 0.1f;
    sg_optim *opt = sg_optim_new(&oo);
    int n_params = sg_model_trainable(m, NULL, 0);
    sg_tensor **params = malloc((size_t)n_params * sizeof *params);
    sg_model_trainable(m, params, n_params);
    sg_dist_reducer *red = sg_dist_reducer_new(params, n_params);
    sg_loader *loader = sg_loader_new(train->n, &(sg_loader_opts){.batch = batch, .shuffle = true, .seed = 1});
    int *labels = malloc((size_t)batch * sizeof *labels);
    if (!m || !opt || !params || !red || !loader || !labels || sg_dist_broadcast_model(m) != 0) {
        fprintf(stderr, "bench_dist: rank %d: %s\n", rank, sg_last_error());
        sg_dist_abort(1);
    }
    sg_batch_opts bo = {.normalize = true};
    double t[4] = {0, 0, 0, 0}, wall = 0; /* compute, wait, reduce, step */
    for (int s = 0; s < warmup + steps; s++) {
        const int *idx;
        int count = sg_loader_next(loader, &idx);
        if (count == 0)
            count = sg_loader_next(loader, &idx);
        int lo, local;
        sg_dist_share(count, &lo, &local);
        if (s == warmup) {
            sg_dist_barrier();
            wall = now();
        }
        double t0 = now();
        sg_scope_begin();
        sg_tensor *x = sg_dataset_images(train, idx + lo, local, &bo);
        sg_dataset_label_ints(train, idx + lo, local, labels);
        sg_tensor *loss = sg_softmax_cross_entropy_labels(sg_model_forward(m, x), labels, local);
        sg_optim_zero_grad(params, n_params);
        bool ok = loss && sg_backward(loss, NULL) == 0;
        sg_scope_end();
        double t1 = now();
        sg_dist_barrier();
        double t2 = now();
        int rc = sg_dist_reduce_gradients(red, local, ok ? NULL : sg_last_error());
        double t3 = now();
        if (rc != 0 || sg_optim_step(opt, params, n_params) != 0) {
            fprintf(stderr, "bench_dist: rank %d: %s\n", rank, sg_last_error());
            sg_dist_abort(1);
        }
        double t4 = now();
        if (s >= warmup) {
            t[0] += t1 - t0, t[1] += t2 - t1, t[2] += t3 - t2, t[3] += t4 - t3;
        }
    }
    wall = now() - wall;
    double mean[5] = {t[0], t[1], t[2], t[3], wall};
    sg_dist_sum(mean, 5, NULL);
    if (rank == 0) {
        for (int i = 0; i < 5; i++)
            mean[i] /= (double)size * steps;
        double step_ms = 1e3 * mean[4];
        printf("RESULT model=%s ranks=%d threads=%d batch=%d steps=%d img_s=%.0f step_ms=%.3f compute_ms=%.3f "
               "wait_ms=%.3f reduce_ms=%.3f reduce_share=%.3f grad_bytes=%zu\n",
               model, size, threads, batch, steps, batch / mean[4], step_ms, 1e3 * mean[0], 1e3 * mean[1],
               1e3 * mean[2], mean[2] / mean[4], 4 * (sg_dist_reducer_floats(red) - 2));
    }
    free(labels);
    sg_loader_free(loader);
    sg_dist_reducer_free(red);
    free(params);
    sg_optim_free(opt);
    sg_model_free(m);
    sg_dataset_free(train);
    sg_release_memory();
    sg_dist_finalize();
    return 0;
}
