/*
 * ch06_overfit.c — the book's section 6.4: overfitting, and two cures.
 *
 * A 7-layer net (6 x 100 ReLU units, He weights) learns only 300
 * Fashion-MNIST images (SGD, lr 0.01, batch 100). It soon knows the training
 * images almost perfectly while the test accuracy stays far lower: it has
 * memorised them (fig. 6-20). Two cures narrow the gap:
 *
 *   weight decay  loss + 0.5 * lambda * sum(W^2), lambda = 0.1 (fig. 6-21)
 *   dropout       each hidden unit is dropped with probability 0.2 while
 *                 training, none at test time (fig. 6-23)
 *
 * Default: 101 epochs, 1,000 test images, accuracies every 10 epochs;
 * --full: the book's 201 epochs (301 for dropout) on all 10,000 test images.
 * Picture: overfit.png.
 */
#include "common.h"
#include "sg_optim.h"

#include <stdio.h>
#include <stdlib.h>

enum { N_TRAIN = 300, BATCH = 100, N_RUNS = 3 };

typedef struct run_cfg {
    const char *name;
    float weight_decay; /* lambda */
    float dropout;      /* drop probability */
} run_cfg;

static const run_cfg runs[N_RUNS] = {
    {"no regularisation", 0.f, 0.f},
    {"weight decay 0.1", 0.1f, 0.f},
    {"dropout 0.2", 0.f, 0.2f},
};

/* Train one net; acc[2k], acc[2k+1] = train and test accuracy at the k-th
 * evaluation (every `every` epochs and after the last). Returns the number
 * of evaluations. */
static int train(const run_cfg *c, const sg_dataset *train_set, const sg_dataset *test_set, int epochs,
                 int every, double *acc, int *at_epoch)
{
    const int hidden[6] = {100, 100, 100, 100, 100, 100};
    sg_model *net = demo_mlp(784, hidden, 6, 10, &(demo_mlp_opts){.init = SG_INIT_HE, .dropout = c->dropout, .seed = 8});
    sg_optim *opt = sg_sgd_new(0.01f);
    sg_loader *it = sg_loader_new(N_TRAIN, &(sg_loader_opts){.batch = BATCH, .shuffle = true, .seed = 9});
    if (!net || !opt || !it)
        return -1;
    int n_eval = 0;
    printf("== %s ==\n", c->name);
    for (int e = 0; e < epochs; e++) {
        if (e % every == 0 || e == epochs - 1) {
            acc[2 * n_eval] = demo_evaluate(net, train_set, false);
            acc[2 * n_eval + 1] = demo_evaluate(net, test_set, false);
            at_epoch[n_eval] = e;
            printf("epoch:%d, train acc:%.4f, test acc:%.4f\n", e, acc[2 * n_eval], acc[2 * n_eval + 1]);
            n_eval++;
        }
        const int *idx;
        int b;
        while ((b = sg_loader_next(it, &idx)) > 0) /* loss + 0.5 lambda sum(W^2) when lambda > 0 */
            if (demo_train_step(net, opt, train_set, idx, b, false, c->weight_decay, NULL) != 0)
                return -1;
    }
    double gap = acc[2 * (n_eval - 1)] - acc[2 * (n_eval - 1) + 1];
    printf("%s: final train acc %.4f, test acc %.4f, gap %.4f\n\n", c->name, acc[2 * (n_eval - 1)],
           acc[2 * (n_eval - 1) + 1], gap);
    sg_loader_free(it);
    sg_optim_free(opt);
    sg_model_free(net);
    return n_eval;
}

int main(int argc, char **argv)
{
    demo_opts o = demo_args(argc, argv, "Overfitting 300 images; weight decay and dropout (chapter 6.4).");
    sg_dataset *train_set = demo_fashion(true, N_TRAIN);
    sg_dataset *test_set = demo_fashion(false, o.full ? 10000 : 1000);
    if (!train_set || !test_set)
        return 1;
    printf("%d training images, %d test images, 6 x 100 ReLU, SGD lr 0.01, batch %d\n\n", N_TRAIN, test_set->n,
           BATCH);
    static double acc[N_RUNS][2 * 310];
    static int at_epoch[N_RUNS][310];
    int n_eval[N_RUNS];
    for (int r = 0; r < N_RUNS; r++) {
        int epochs = o.full ? (runs[r].dropout > 0 ? 301 : 201) : 101;
        n_eval[r] = train(&runs[r], train_set, test_set, epochs, o.full ? 1 : 10, acc[r], at_epoch[r]);
        if (n_eval[r] < 0)
            return 1;
    }
    FILE *gp = plot_begin_size(&o, "overfit", 1200, 450);
    if (gp) {
        fprintf(gp, "set multiplot layout 1,3\nset yrange [0:1.05]\nset xlabel 'epochs'\nset ylabel 'accuracy'\n"
                    "set grid\nset key bottom right\n");
        for (int r = 0; r < N_RUNS; r++) {
            plot_data_begin(gp, "acc");
            for (int k = 0; k < n_eval[r]; k++)
                fprintf(gp, "%d %g %g\n", at_epoch[r][k], acc[r][2 * k], acc[r][2 * k + 1]);
            plot_data_end(gp);
            fprintf(gp, "set title '%s'\nplot $acc using 1:2 with lines lw 2 title 'train', $acc using 1:3 with "
                        "lines lw 2 title 'test'\n",
                    runs[r].name);
        }
        fprintf(gp, "unset multiplot\n");
        plot_end(gp, &o, "overfit");
    }
    sg_dataset_free(train_set);
    sg_dataset_free(test_set);
    sg_release_memory();
    return 0;
}
