/*
 * ch06_batchnorm.c — the book's section 6.3: batch normalisation.
 *
 * Each hidden layer of a 5-layer net (5 x 100 units, ReLU) normalises its
 * affine output over the mini-batch before the activation:
 *
 *     y = (a - mean) / sqrt(var + eps) * gamma + beta
 *
 * As in the book's batch_norm_test.py, nets with and without batch norm
 * learn 1,000 Fashion-MNIST images (SGD, lr 0.01, batch 100, 20 epochs),
 * starting from weights N(0, scale^2) for scales from 1 down to 1e-4.
 * Without batch norm most scales learn slowly or not at all; with it every
 * scale learns, and fast (fig. 6-19). The training accuracy is measured in
 * evaluation mode (running statistics), as the book does.
 *
 * Default: 6 scales (logspace(0, -4, 6)); --full: the book's 16.
 * Picture: batchnorm.png.
 */
#include "common.h"
#include "sg_optim.h"

#include <math.h>
#include <stdio.h>

enum { EPOCHS = 20, BATCH = 100, MAX_SCALES = 16 };

/* Train one net for EPOCHS epochs; acc[e] = its training accuracy after
 * epoch e (acc[0] before training). */
static int train(const sg_dataset *train_set, float scale, bool batchnorm, double acc[EPOCHS + 1])
{
    const int hidden[5] = {100, 100, 100, 100, 100};
    sg_model *net = demo_mlp(784, hidden, 5, 10,
                             &(demo_mlp_opts){.init = SG_INIT_NORMAL(scale), .batchnorm = batchnorm, .bn_eps = 1e-6f, .seed = 21});
    sg_optim *opt = sg_sgd_new(0.01f);
    sg_loader *it = sg_loader_new(train_set->n, &(sg_loader_opts){.batch = BATCH, .shuffle = true, .seed = 5});
    if (!net || !opt || !it)
        return -1;
    acc[0] = demo_evaluate(net, train_set, false);
    for (int e = 1; e <= EPOCHS; e++) {
        const int *idx;
        int b;
        while ((b = sg_loader_next(it, &idx)) > 0)
            if (demo_train_step(net, opt, train_set, idx, b, false, 0.f, NULL) != 0)
                return -1;
        acc[e] = demo_evaluate(net, train_set, false);
    }
    sg_loader_free(it);
    sg_optim_free(opt);
    sg_model_free(net);
    return 0;
}

int main(int argc, char **argv)
{
    demo_opts o = demo_args(argc, argv, "Training with and without batch normalisation (chapter 6.3).");
    const int n_scales = o.full ? 16 : 6;
    sg_dataset *train_set = demo_fashion(true, 1000);
    if (!train_set)
        return 1;
    static double acc[MAX_SCALES][2][EPOCHS + 1];
    float scales[MAX_SCALES];
    printf("1000 Fashion-MNIST images, 5 x 100 ReLU, SGD lr 0.01, batch %d, %d epochs\n", BATCH, EPOCHS);
    printf("training accuracy after %d epochs, weights N(0, scale^2):\n", EPOCHS);
    double t0 = demo_now();
    for (int s = 0; s < n_scales; s++) {
        scales[s] = (float)pow(10.0, -4.0 * s / (n_scales - 1)); /* logspace(0, -4, n) */
        if (train(train_set, scales[s], true, acc[s][0]) != 0 || train(train_set, scales[s], false, acc[s][1]) != 0)
            return 1;
        printf("scale %-10.4g batch norm %.3f   without %.3f\n", scales[s], acc[s][0][EPOCHS], acc[s][1][EPOCHS]);
    }
    printf("(%.1f s)\n", demo_now() - t0);

    FILE *gp = plot_begin_size(&o, "batchnorm", 1100, o.full ? 900 : 600);
    if (gp) {
        fprintf(gp, "set multiplot layout %d,%d title 'training accuracy with (solid) and without (dashed) batch "
                    "norm (fig. 6-19)'\nset yrange [0:1]\nset key off\nset grid\n",
                o.full ? 4 : 2, o.full ? 4 : 3);
        for (int s = 0; s < n_scales; s++) {
            plot_data_begin(gp, "acc");
            for (int e = 0; e <= EPOCHS; e++)
                fprintf(gp, "%d %g %g\n", e, acc[s][0][e], acc[s][1][e]);
            plot_data_end(gp);
            fprintf(gp, "set title 'W ~ N(0, %.3g^2)'\nplot $acc using 1:2 with lines lw 2, $acc using 1:3 with "
                        "lines dt 2 lw 2\n",
                    scales[s]);
        }
        fprintf(gp, "unset multiplot\n");
        plot_end(gp, &o, "batchnorm");
    }
    sg_dataset_free(train_set);
    sg_release_memory();
    return 0;
}
