/*
 * bench_engine.c — engine overhead: backward through a long chain, time per
 * graph node for graphs of 10 .. 100,000 elementwise nodes, and one
 * forward+backward step of a 784-100-10 MLP on a batch of 100.
 *
 *   ./build/bench/bench_engine
 */
#include "sg_autograd.h"

#include <stdio.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* forward + backward of a chain of n elementwise nodes on a small tensor */
static double chain_seconds(int n, int reps, double *backward_only)
{
    double best = 1e30, best_bw = 1e30;
    sg_tensor *x = sg_param(sg_full(1.f, SG_DIMS(4)));
    for (int r = 0; r < reps; r++) {
        sg_scope_begin();
        double t0 = now();
        sg_tensor *h = x;
        for (int i = 0; i < n; i++)
            h = (i & 1) ? sg_mul_scalar(h, 1.0001f) : sg_add_scalar(h, 1e-4f);
        sg_tensor *loss = sg_sum_all(h);
        double t1 = now();
        sg_zero_grad(x);
        if (sg_backward(loss, NULL) != 0)
            fprintf(stderr, "bench: %s\n", sg_last_error());
        double t2 = now();
        sg_scope_end();
        if (t2 - t0 < best)
            best = t2 - t0;
        if (t2 - t1 < best_bw)
            best_bw = t2 - t1;
    }
    sg_tensor_free(x);
    if (backward_only)
        *backward_only = best_bw;
    return best;
}

static double mlp_step_seconds(int reps)
{
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_tensor *W1 = sg_param(sg_normal(&rng, 0.f, 0.05f, SG_DIMS(784, 100)));
    sg_tensor *b1 = sg_param(sg_zeros(SG_DIMS(100)));
    sg_tensor *W2 = sg_param(sg_normal(&rng, 0.f, 0.1f, SG_DIMS(100, 10)));
    sg_tensor *b2 = sg_param(sg_zeros(SG_DIMS(10)));
    sg_tensor *x = sg_uniform(&rng, 0.f, 1.f, SG_DIMS(100, 784));
    sg_tensor *t = sg_zeros(SG_DIMS(100, 10));
    for (int i = 0; i < 100; i++)
        sg_data(t)[i * 10 + i % 10] = 1.f;
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        sg_scope_begin();
        double t0 = now();
        sg_tensor *h = sg_relu(sg_add(sg_matmul(x, W1), b1));
        sg_tensor *z = sg_add(sg_matmul(h, W2), b2);
        /* softmax cross-entropy from primitives */
        int ax = -1;
        sg_tensor *m = sg_detach(sg_max(z, &ax, 1, true));
        sg_tensor *zs = sg_sub(z, m);
        sg_tensor *lse = sg_log(sg_sum(sg_exp(zs), &ax, 1, true));
        sg_tensor *loss = sg_mul_scalar(sg_sum_all(sg_mul(t, sg_sub(zs, lse))), -1.f / 100);
        sg_zero_grad(W1), sg_zero_grad(b1), sg_zero_grad(W2), sg_zero_grad(b2);
        if (sg_backward(loss, NULL) != 0)
            fprintf(stderr, "bench: %s\n", sg_last_error());
        double dt = now() - t0;
        sg_scope_end();
        if (dt < best)
            best = dt;
    }
    sg_tensor_free(W1), sg_tensor_free(b1), sg_tensor_free(W2), sg_tensor_free(b2);
    sg_tensor_free(x), sg_tensor_free(t);
    return best;
}

int main(void)
{
    double bw;
    double chain = chain_seconds(100000, 5, &bw);
    char kernels[320];
    printf("%s\n", sg_kernels_describe(kernels, sizeof kernels));
    printf("chain of 100,000 nodes: forward+backward %.1f ms, backward %.1f ms\n", chain * 1e3, bw * 1e3);
    printf("\n%10s %14s %14s\n", "nodes", "fwd+bwd (ms)", "per node (us)");
    const int sizes[] = {10, 1000, 100000};
    for (int i = 0; i < 3; i++) {
        int reps = sizes[i] >= 100000 ? 5 : 200;
        double s = chain_seconds(sizes[i], reps, NULL);
        printf("%10d %14.4f %14.3f\n", sizes[i], s * 1e3, s * 1e6 / sizes[i]);
    }
    double step = mlp_step_seconds(50);
    printf("\nMLP 784-100-10, batch 100: forward+backward %.3f ms per step\n", step * 1e3);
    sg_release_memory();
    return 0;
}
