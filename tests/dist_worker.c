/*
 * dist_worker.c — the dist API under `mpirun -np 2` (started by
 * test_mpi.c, suite mpi). Every rank runs the same checks and prints
 * "dist_worker: rank R of 2: all checks passed", or the first failed check
 * (exit 1). Checked on real collectives:
 *   - shares: ceil split, rank 0 first and larger;
 *   - the status check: rank 1's message reaches both ranks, "rank 1 of 2: ...";
 *   - sums (with a status);
 *   - the weighted gradient average: (1*g0 + 3*g1) / 4 exactly, a failing
 *     rank's message, a parameter without a gradient;
 *   - the broadcast of a model, and its refusal of a model of another shape;
 *   - batch norm, per-rank statistics (the choice of docs/distributed.md):
 *     the averaged gradient equals the mean of the two halves' gradients,
 *     each half normalised with its own statistics, and differs from the
 *     synchronized (whole-batch statistics) gradient; the running averages
 *     are rank 0's after sg_dist_broadcast_buffers().
 */
#include "sg_autograd.h"
#include "sg_dist.h"
#include "sg_nn.h"
#include "sg_optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, size;

#define CHECK(cond, ...)                                                                              \
    do {                                                                                              \
        if (!(cond)) {                                                                                \
            printf("dist_worker: rank %d of %d: FAILED at line %d: %s: ", rank, size, __LINE__, #cond); \
            printf(__VA_ARGS__);                                                                      \
            printf("\n");                                                                             \
            sg_dist_abort(1);                                                                         \
        }                                                                                             \
    } while (0)

/* p gets the gradient g (n values): backward of sum(p * g). */
static void set_grad(sg_tensor *p, const float *g, int n)
{
    sg_scope_begin();
    sg_tensor *c = sg_from_data(g, 1, (int[]){n});
    sg_tensor *loss = sg_sum(sg_mul(p, c), NULL, 0, false);
    CHECK(loss && sg_backward(loss, NULL) == 0, "%s", sg_last_error());
    sg_scope_end();
}

static void shares(void)
{
    int lo, count;
    sg_dist_share(5, &lo, &count);
    CHECK(lo == (rank ? 3 : 0) && count == (rank ? 2 : 3), "share(5): %d+%d", lo, count);
    sg_dist_share(1, &lo, &count);
    CHECK(count == (rank ? 0 : 1), "share(1): %d", count);
}

static void status_and_sums(void)
{
    CHECK(sg_dist_check(NULL) == 0, "%s", sg_last_error());
    CHECK(sg_dist_check(rank == 1 ? "disk on fire" : NULL) == -1, "a failing rank went unnoticed");
    CHECK(!strcmp(sg_last_error(), "rank 1 of 2: disk on fire"), "message '%s'", sg_last_error());
    sg_clear_error();
    double v[2] = {rank + 1.0, 10.0 * rank};
    CHECK(sg_dist_sum(v, 2, NULL) == 0 && v[0] == 3 && v[1] == 10, "sum %g %g", v[0], v[1]);
    CHECK(sg_dist_sum(v, 2, rank == 0 ? "no memory" : NULL) == -1, "a failing sum went unnoticed");
    CHECK(!strcmp(sg_last_error(), "rank 0 of 2: no memory"), "message '%s'", sg_last_error());
    sg_clear_error();
    CHECK(sg_dist_barrier() == 0, "barrier");
}

static void gradient_average(void)
{
    sg_tensor *p = sg_param(sg_zeros(1, (int[]){3}));
    sg_tensor *q = sg_param(sg_zeros(1, (int[]){2}));
    sg_dist_reducer *r = sg_dist_reducer_new((sg_tensor *[]){p, q}, 2);
    CHECK(r && sg_dist_reducer_floats(r) == 3 + 2 + 2, "reducer: %s", sg_last_error());
    const float g0[3] = {1, 2, 3}, g1[3] = {4, 5, 6}, h0[2] = {-8, 0.5f}, h1[2] = {8, 0.5f};
    set_grad(p, rank ? g1 : g0, 3);
    set_grad(q, rank ? h1 : h0, 2);
    /* weights 1 and 3: (1*g0 + 3*g1) / 4, exact in float */
    CHECK(sg_dist_reduce_gradients(r, rank ? 3 : 1, NULL) == 0, "%s", sg_last_error());
    const float want[3] = {3.25f, 4.25f, 5.25f}, wantq[2] = {4, 0.5f};
    for (int i = 0; i < 3; i++)
        CHECK(sg_data(sg_grad(p))[i] == want[i], "g[%d] = %g, want %g", i, sg_data(sg_grad(p))[i], want[i]);
    for (int i = 0; i < 2; i++)
        CHECK(sg_data(sg_grad(q))[i] == wantq[i], "h[%d] = %g", i, sg_data(sg_grad(q))[i]);
    long calls;
    sg_dist_reducer_stats(r, &calls, NULL);
    CHECK(calls == 1, "calls %ld", calls);
    /* a rank whose step failed: everyone learns it, with its message */
    CHECK(sg_dist_reduce_gradients(r, 1, rank == 1 ? "the loss became nan" : NULL) == -1, "nan went unnoticed");
    CHECK(!strcmp(sg_last_error(), "rank 1 of 2: the loss became nan"), "message '%s'", sg_last_error());
    sg_clear_error();
    /* a parameter without a gradient on rank 0 */
    if (rank == 0)
        sg_zero_grad(p), sg_tensor_free(p), p = NULL;
    sg_tensor *fresh = rank == 0 ? sg_param(sg_zeros(1, (int[]){3})) : NULL;
    sg_dist_reducer *r2 = sg_dist_reducer_new((sg_tensor *[]){rank == 0 ? fresh : p, q}, 2);
    CHECK(r2, "%s", sg_last_error());
    CHECK(sg_dist_reduce_gradients(r2, 1, NULL) == -1, "a missing gradient went unnoticed");
    CHECK(strstr(sg_last_error(), "rank 0 of 2: reduce_gradients: parameter 0 (3) has no gradient"),
          "message '%s'", sg_last_error());
    sg_clear_error();
    /* weights summing to 0 */
    set_grad(rank == 0 ? fresh : p, g0, 3);
    CHECK(sg_dist_reduce_gradients(r2, 0, NULL) == -1 && strstr(sg_last_error(), "sum to 0"), "'%s'",
          sg_last_error());
    sg_clear_error();
    sg_dist_reducer_free(r);
    sg_dist_reducer_free(r2);
    sg_tensor_free(p);
    sg_tensor_free(q);
    sg_tensor_free(fresh);
}

static sg_model *bn_model(int seed, int hidden)
{
    sg_rng rng;
    sg_rng_seed(&rng, (uint64_t)seed);
    sg_model *m = sg_model_new();
    sg_model_add(m, sg_linear_new(m, "fc", 4, hidden, SG_INIT_HE, &rng));
    sg_model_add(m, sg_batchnorm_new(m, "bn", hidden));
    sg_model_add(m, sg_relu_new(m, "relu"));
    sg_model_add(m, sg_linear_new(m, "out", hidden, 3, SG_INIT_HE, &rng));
    CHECK(m && !sg_has_error(), "%s", sg_last_error());
    return m;
}

static void broadcast(void)
{
    sg_model *m = bn_model(100 + rank, 5); /* different weights on each rank */
    CHECK(sg_dist_broadcast_model(m) == 0, "%s", sg_last_error());
    sg_model *ref = bn_model(100, 5); /* rank 0's */
    int n;
    const sg_named_param *a = sg_model_params(m, &n), *b = sg_model_params(ref, NULL);
    for (int i = 0; i < n; i++)
        CHECK(!memcmp(sg_data(a[i].tensor), sg_data(b[i].tensor), sg_size(a[i].tensor) * sizeof(float)),
              "%s is not rank 0's", a[i].name);
    sg_model *other = bn_model(100, rank ? 6 : 5); /* rank 1: another width */
    CHECK(sg_dist_broadcast_model(other) == -1, "a model of another shape was accepted");
    CHECK(strstr(sg_last_error(), "rank 1 of 2: broadcast_model: this rank's model has fc.W (4,6) where rank "
                                  "0's has fc.W (4,5)"),
          "message '%s'", sg_last_error());
    sg_clear_error();
    sg_model_free(m);
    sg_model_free(ref);
    sg_model_free(other);
}

/* Gradients of the trainable tensors of m after a training-mode step on
 * rows [lo, lo + n) of x (8, 4), copied into g (all concatenated). */
static void grads_on_rows(sg_model *m, const float *x, const int *labels, int lo, int n, float *g)
{
    int np = sg_model_trainable(m, NULL, 0);
    sg_tensor *p[8];
    sg_model_trainable(m, p, np);
    sg_optim_zero_grad(p, np);
    sg_scope_begin();
    sg_tensor *xb = sg_from_data(x + 4 * lo, 2, (int[]){n, 4});
    sg_tensor *loss = sg_softmax_cross_entropy_labels(sg_model_forward(m, xb), labels + lo, n);
    CHECK(loss && sg_backward(loss, NULL) == 0, "%s", sg_last_error());
    sg_scope_end();
    for (int i = 0, at = 0; i < np; at += (int)sg_size(p[i]), i++)
        memcpy(g + at, sg_data(sg_grad(p[i])), sg_size(p[i]) * sizeof(float));
}

static double rel_diff(const float *a, const float *b, int n)
{
    double d = 0, s = 0;
    for (int i = 0; i < n; i++)
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]), s += (double)b[i] * b[i];
    return sqrt(d / s);
}

static void batchnorm_per_rank(void)
{
    float x[8 * 4];
    int labels[8];
    sg_rng rng;
    sg_rng_seed(&rng, 7);
    for (int i = 0; i < 32; i++)
        x[i] = (float)sg_rng_normal(&rng) + (i >= 16 ? 2.f : 0.f); /* the halves differ in mean */
    for (int i = 0; i < 8; i++)
        labels[i] = i % 3;
    sg_model *m = bn_model(5, 5), *ref = bn_model(5, 5);
    int np = sg_model_trainable(m, NULL, 0);
    size_t total = sg_model_num_params(m, false);
    CHECK(np <= 8 && total < 128, "model too big for the test");
    float got[128], half0[128], half1[128], whole[128], mean[128];
    int lo, count;
    sg_dist_share(8, &lo, &count);
    grads_on_rows(m, x, labels, lo, count, got);
    sg_tensor *p[8];
    sg_model_trainable(m, p, np);
    sg_dist_reducer *r = sg_dist_reducer_new(p, np);
    CHECK(r && sg_dist_reduce_gradients(r, count, NULL) == 0, "%s", sg_last_error());
    for (int i = 0, at = 0; i < np; at += (int)sg_size(p[i]), i++)
        memcpy(got + at, sg_data(sg_grad(p[i])), sg_size(p[i]) * sizeof(float));
    /* one process: each half on its own (per-rank statistics), averaged */
    grads_on_rows(ref, x, labels, 0, 4, half0);
    grads_on_rows(ref, x, labels, 4, 4, half1);
    for (size_t i = 0; i < total; i++)
        mean[i] = 0.5f * (half0[i] + half1[i]);
    grads_on_rows(ref, x, labels, 0, 8, whole); /* synchronized statistics */
    double per_rank = rel_diff(got, mean, (int)total), synced = rel_diff(got, whole, (int)total);
    if (rank == 0)
        printf("dist_worker: batch norm: averaged gradient vs per-half statistics %.2e, vs whole-batch %.2e\n",
               per_rank, synced);
    CHECK(per_rank <= 1e-6, "per-rank statistics: relative difference %g", per_rank);
    CHECK(synced > 1e-2, "indistinguishable from synchronized statistics (%g): the test shows nothing", synced);
    /* running averages: each rank's follow its half; rank 0's after the broadcast */
    sg_tensor *rm = sg_model_param(m, "bn.running_mean");
    double v[5];
    for (int i = 0; i < 5; i++)
        v[i] = rank == 0 ? sg_data(rm)[i] : -sg_data(rm)[i];
    CHECK(sg_dist_sum(v, 5, NULL) == 0 && fabs(v[0]) + fabs(v[1]) > 1e-3, "the halves' running means agree");
    CHECK(sg_dist_broadcast_buffers(m) == 0, "%s", sg_last_error());
    for (int i = 0; i < 5; i++)
        v[i] = rank == 0 ? sg_data(rm)[i] : -sg_data(rm)[i];
    CHECK(sg_dist_sum(v, 5, NULL) == 0, "%s", sg_last_error());
    for (int i = 0; i < 5; i++)
        CHECK(v[i] == 0, "running_mean[%d] differs after broadcast_buffers", i);
    sg_dist_reducer_free(r);
    sg_model_free(m);
    sg_model_free(ref);
}

int main(int argc, char **argv)
{
    if (sg_dist_init(&argc, &argv) != 0) {
        printf("dist_worker: %s\n", sg_last_error());
        return 1;
    }
    rank = sg_dist_rank(), size = sg_dist_size();
    CHECK(size == 2 && sg_dist_has_mpi(), "run me with mpirun -np 2 (size %d)", size);
    shares();
    status_and_sums();
    gradient_average();
    broadcast();
    batchnorm_per_rank();
    printf("dist_worker: rank %d of %d: all checks passed\n", rank, size);
    sg_dist_finalize();
    sg_release_memory();
    return 0;
}
