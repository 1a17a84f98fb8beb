/*
 * ch06_hyperparam.c — the book's section 6.5: random search for the
 * learning rate and the weight decay.
 *
 * Hyperparameters are chosen on validation data, never on test data: 20% of
 * 500 training images are set aside for validation. Each trial draws
 *
 *     lr           = 10^U(-6, -2)
 *     weight decay = 10^U(-8, -4)
 *
 * (log scale: each power of ten is equally likely), trains a 7-layer net
 * (6 x 100 ReLU) on the other 400 images with SGD, batch 100, and reports
 * the validation accuracy. Sorted, the best trials show where to search next:
 * the book finds lr around 1e-3 to 1e-2 and a weight decay that matters
 * little (fig. 6-24).
 *
 * Default: 20 trials of 20 epochs; --full: the book's 100 trials of 50.
 * Picture: hyperparam.png (validation accuracy of the best trials).
 */
#include "common.h"
#include "sg_optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { N_DATA = 500, N_VAL = 100, BATCH = 100, MAX_TRIALS = 100, MAX_EPOCHS = 50 };

typedef struct trial {
    double lr, weight_decay;
    double val_acc[MAX_EPOCHS]; /* after each epoch */
    double train_acc[MAX_EPOCHS];
} trial;

/* Train on `train_set` with one (lr, weight decay); fill the accuracies. */
static int run_trial(trial *t, const sg_dataset *train_set, const sg_dataset *val_set, int epochs, uint64_t seed)
{
    const int hidden[6] = {100, 100, 100, 100, 100, 100};
    sg_model *net = demo_mlp(784, hidden, 6, 10, &(demo_mlp_opts){.init = SG_INIT_HE, .seed = seed});
    sg_optim *opt = sg_sgd_new((float)t->lr);
    sg_loader *it = sg_loader_new(train_set->n, &(sg_loader_opts){.batch = BATCH, .shuffle = true, .seed = seed});
    if (!net || !opt || !it)
        return -1;
    for (int e = 0; e < epochs; e++) {
        const int *idx;
        int b;
        while ((b = sg_loader_next(it, &idx)) > 0) /* loss + 0.5 lambda sum(W^2) */
            if (demo_train_step(net, opt, train_set, idx, b, false, (float)t->weight_decay, NULL) != 0)
                return -1;
        t->train_acc[e] = demo_evaluate(net, train_set, false);
        t->val_acc[e] = demo_evaluate(net, val_set, false);
    }
    sg_loader_free(it);
    sg_optim_free(opt);
    sg_model_free(net);
    return 0;
}

static int by_val_acc(const void *a, const void *b, int epochs)
{
    double va = ((const trial *)a)->val_acc[epochs - 1], vb = ((const trial *)b)->val_acc[epochs - 1];
    return (va < vb) - (va > vb); /* descending */
}

static int g_epochs;
static int cmp_trials(const void *a, const void *b)
{
    return by_val_acc(a, b, g_epochs);
}

int main(int argc, char **argv)
{
    demo_opts o = demo_args(argc, argv, "Random search over learning rate and weight decay (chapter 6.5).");
    const int n_trials = o.full ? 100 : 20, epochs = o.full ? 50 : 20;
    /* 500 images: the first 400 to train, the last 100 to validate */
    sg_dataset *all = demo_fashion(true, N_DATA);
    if (!all)
        return 1;
    sg_dataset *train_set = sg_dataset_subset(all, 0, N_DATA - N_VAL);
    sg_dataset *val_set = sg_dataset_subset(all, N_DATA - N_VAL, N_VAL);
    static trial trials[MAX_TRIALS];
    sg_rng rng;
    sg_rng_seed(&rng, 2024);
    printf("%d trials, %d epochs each, %d training and %d validation images\n", n_trials, epochs, train_set->n,
           val_set->n);
    double t0 = demo_now();
    for (int k = 0; k < n_trials; k++) {
        trials[k].weight_decay = pow(10.0, -8.0 + 4.0 * sg_rng_uniform(&rng));
        trials[k].lr = pow(10.0, -6.0 + 4.0 * sg_rng_uniform(&rng));
        if (run_trial(&trials[k], train_set, val_set, epochs, 100 + (uint64_t)k) != 0)
            return 1;
        printf("val acc:%.2f | lr:%.3g, weight decay:%.3g\n", trials[k].val_acc[epochs - 1], trials[k].lr,
               trials[k].weight_decay);
    }
    printf("(%.1f s)\n", demo_now() - t0);
    g_epochs = epochs;
    qsort(trials, (size_t)n_trials, sizeof trials[0], cmp_trials);
    printf("=========== Hyper-Parameter Optimization Result ===========\n");
    for (int k = 0; k < 5; k++)
        printf("Best-%d (val acc:%.2f) | lr:%.3g, weight decay:%.3g\n", k + 1, trials[k].val_acc[epochs - 1],
               trials[k].lr, trials[k].weight_decay);

    FILE *gp = plot_begin_size(&o, "hyperparam", 1100, 700);
    if (gp) {
        int shown = n_trials < 20 ? n_trials : 20;
        fprintf(gp, "set multiplot layout 4,5 title 'the best %d trials: validation (solid) and training "
                    "(dashed) accuracy (fig. 6-24)'\nset yrange [0:1]\nset key off\nset xtics font ',7'\n"
                    "set ytics font ',7'\n",
                shown);
        for (int k = 0; k < shown; k++) {
            plot_data_begin(gp, "acc");
            for (int e = 0; e < epochs; e++)
                fprintf(gp, "%d %g %g\n", e + 1, trials[k].val_acc[e], trials[k].train_acc[e]);
            plot_data_end(gp);
            fprintf(gp, "set title 'Best-%d: lr %.2g, wd %.2g' font ',8'\nplot $acc using 1:2 with lines lw 2, "
                        "$acc using 1:3 with lines dt 2\n",
                    k + 1, trials[k].lr, trials[k].weight_decay);
        }
        fprintf(gp, "unset multiplot\n");
        plot_end(gp, &o, "hyperparam");
    }
    sg_dataset_free(train_set);
    sg_dataset_free(val_set);
    sg_dataset_free(all);
    sg_release_memory();
    return 0;
}
