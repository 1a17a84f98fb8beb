/*
 * ch06_init.c — the book's section 6.2: how the initial weights shape the
 * activations, and whether a net can learn at all.
 *
 * 1. 1,000 random inputs (100 values from N(0, 1)) pass through 5 layers of
 *    100 units, a = z W (no bias), with W drawn from N(0, std^2):
 *      sigmoid, std 1:    activations pile up at 0 and 1 (gradients vanish)
 *      sigmoid, std 0.01: all near 0.5 (100 units act as one)
 *      sigmoid, Xavier (std 1/sqrt(100)): spread out in every layer
 *      tanh, Xavier:      symmetric around 0 (fig. 6-13's note)
 *      relu, std 0.01 / Xavier / He (std sqrt(2/100)): only He keeps the
 *      spread from layer to layer (fig. 6-14)
 *    The table gives each layer's standard deviation and the share of
 *    activations that are saturated (sigmoid < 0.01 or > 0.99, |tanh| > 0.99)
 *    or zero (relu). Pictures: init_sigmoid_tanh.png, init_relu.png.
 * 2. A 5-layer ReLU net on Fashion-MNIST with std 0.01, Xavier and He
 *    initial weights (SGD, lr 0.01, batch 128): std 0.01 does not learn
 *    (fig. 6-15). Picture: init_training.png. --full: 2,000 iterations.
 */
#include "common.h"
#include "sg_optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { LAYERS = 5, NODES = 100, SAMPLES = 1000, BINS = 30 };

typedef struct config {
    const char *act; /* "sigmoid", "tanh" or "relu" */
    const char *label;
    sg_init init;
} config;

/* (the SG_INIT_* macros are compound literals, not constants, so a static
 * table spells the kinds out) */
static const config configs[] = {
    {"sigmoid", "sigmoid, std 1", {SG_INIT_KIND_NORMAL, 1.f}},
    {"sigmoid", "sigmoid, std 0.01", {SG_INIT_KIND_NORMAL, 0.01f}},
    {"sigmoid", "sigmoid, Xavier", {SG_INIT_KIND_XAVIER_BOOK, 0.f}}, /* N(0, 1/fan_in) */
    {"tanh", "tanh, Xavier", {SG_INIT_KIND_XAVIER_BOOK, 0.f}},
    {"relu", "relu, std 0.01", {SG_INIT_KIND_NORMAL, 0.01f}},
    {"relu", "relu, Xavier", {SG_INIT_KIND_XAVIER_BOOK, 0.f}},
    {"relu", "relu, He", {SG_INIT_KIND_HE_NORMAL, 0.f}}, /* N(0, 2/fan_in) */
};
enum { N_CONFIG = sizeof configs / sizeof configs[0] };

static sg_tensor *activation(const char *act, sg_tensor *a)
{
    if (strcmp(act, "sigmoid") == 0)
        return sg_sigmoid(a);
    if (strcmp(act, "tanh") == 0)
        return sg_tanh(a);
    return sg_relu(a);
}

/* Forward 5 layers; hist[layer][bin] counts activations in 30 bins over
 * (0, 1) (over (-1, 1) for tanh), as the book's plt.hist. */
static void run_layers(const config *c, int hist[LAYERS][BINS])
{
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_scope_begin();
    sg_tensor *z = sg_normal(&rng, 0.f, 1.f, SG_DIMS(SAMPLES, NODES));
    printf("%-18s", c->label);
    for (int l = 0; l < LAYERS; l++) {
        sg_tensor *W = sg_zeros(SG_DIMS(NODES, NODES));
        sg_init_fill(W, c->init, &rng);
        z = activation(c->act, sg_matmul(z, W));
        const float *v = sg_data(z);
        size_t n = sg_size(z);
        double sum = 0, sq = 0;
        size_t extreme = 0;
        memset(hist[l], 0, sizeof hist[l]);
        bool tanh_ = strcmp(c->act, "tanh") == 0, relu = strcmp(c->act, "relu") == 0;
        for (size_t i = 0; i < n; i++) {
            sum += v[i];
            sq += (double)v[i] * v[i];
            extreme += relu ? v[i] == 0.f : tanh_ ? fabsf(v[i]) > 0.99f : (v[i] < 0.01f || v[i] > 0.99f);
            double u = tanh_ ? (v[i] + 1) / 2 : v[i];
            if (u >= 0 && u <= 1)
                hist[l][u >= 1 ? BINS - 1 : (int)(u * BINS)]++;
        }
        double mean = sum / (double)n;
        printf(" | %8.4f %3.0f%%", sqrt(sq / (double)n - mean * mean), 100.0 * (double)extreme / (double)n);
    }
    printf("\n");
    sg_scope_end();
}

static void draw_histograms(const demo_opts *o, const char *name, int first, int count,
                            int hist[N_CONFIG][LAYERS][BINS])
{
    FILE *gp = plot_begin_size(o, name, 1100, 220 * count);
    if (!gp)
        return;
    fprintf(gp, "set multiplot layout %d,%d\nset style fill solid 0.8\nset key off\nset xtics 0.5\n"
                "set ytics font ',7'\n",
            count, LAYERS);
    for (int c = first; c < first + count; c++) {
        bool tanh_ = strcmp(configs[c].act, "tanh") == 0;
        for (int l = 0; l < LAYERS; l++) {
            plot_data_begin(gp, "h");
            for (int b = 0; b < BINS; b++)
                fprintf(gp, "%g %d\n", tanh_ ? -1 + (b + 0.5) * 2.0 / BINS : (b + 0.5) / BINS, hist[c][l][b]);
            plot_data_end(gp);
            fprintf(gp, "set title '%s: layer %d'\nset xrange [%d:1]\nset yrange [0:%s]\nplot $h with boxes\n",
                    configs[c].label, l + 1, tanh_ ? -1 : 0,
                    strcmp(configs[c].act, "relu") == 0 ? "7000" : "*"); /* the book's ylim for relu */
        }
    }
    fprintf(gp, "unset multiplot\n");
    plot_end(gp, o, name);
}

static void histograms(const demo_opts *o)
{
    printf("== activations of 5 layers of 100 units, 1000 samples (6.2.2) ==\n");
    printf("%-18s", "weights");
    for (int l = 0; l < LAYERS; l++)
        printf(" | layer %d std ext", l + 1);
    printf("\n(ext: sigmoid < 0.01 or > 0.99, |tanh| > 0.99, relu = 0)\n");
    static int hist[N_CONFIG][LAYERS][BINS];
    for (int c = 0; c < N_CONFIG; c++)
        run_layers(&configs[c], hist[c]);
    printf("\n");
    /* taller pictures: one row of histograms per setting */
    if (o->plot) {
        draw_histograms(o, "init_sigmoid_tanh", 0, 4, hist);
        draw_histograms(o, "init_relu", 4, 3, hist);
    }
}

static int training(const demo_opts *o)
{
    const int iters = o->full ? 2000 : 500, batch = 128, every = 100;
    sg_dataset *train = demo_fashion(true, o->full ? 60000 : 10000);
    if (!train)
        return 1;
    printf("== a 5-layer ReLU net on Fashion-MNIST, SGD lr 0.01, batch %d (6.2.4) ==\n", batch);
    const int hidden[4] = {100, 100, 100, 100};
    const config *use[3] = {&configs[4], &configs[5], &configs[6]};
    sg_model *net[3];
    sg_optim *opt[3];
    float *loss[3];
    for (int k = 0; k < 3; k++) {
        net[k] = demo_mlp(784, hidden, 4, 10, &(demo_mlp_opts){.init = use[k]->init, .seed = 3});
        opt[k] = sg_sgd_new(0.01f);
        loss[k] = malloc(sizeof(float) * (size_t)iters);
    }
    sg_rng rng;
    sg_rng_seed(&rng, 4);
    for (int i = 0; i < iters; i++) {
        int idx[128]; /* the same random batch for every net */
        demo_random_choice(&rng, train->n, batch, idx);
        for (int k = 0; k < 3; k++)
            if (demo_train_step(net[k], opt[k], train, idx, batch, false, 0.f, &loss[k][i]) != 0)
                return 1;
        if (i % every == 0 || i == iters - 1)
            printf("iteration %4d: std=0.01 %.5f  Xavier %.5f  He %.5f\n", i, loss[0][i], loss[1][i], loss[2][i]);
    }
    FILE *gp = plot_begin(o, "init_training");
    if (gp) {
        plot_data_begin(gp, "loss");
        for (int i = 0; i < iters; i++)
            fprintf(gp, "%d %g %g %g\n", i, loss[0][i], loss[1][i], loss[2][i]);
        plot_data_end(gp);
        fprintf(gp, "set xlabel 'iterations'\nset ylabel 'loss'\nset yrange [0:2.5]\nset grid\n"
                    "set title 'initial weights and learning, ReLU net on Fashion-MNIST (fig. 6-15)'\n"
                    "plot for [k=2:4] $loss using 1:k with lines title word('std=0.01 Xavier He', k-1)\n");
        plot_end(gp, o, "init_training");
    }
    for (int k = 0; k < 3; k++) {
        sg_model_free(net[k]);
        sg_optim_free(opt[k]);
        free(loss[k]);
    }
    sg_dataset_free(train);
    return 0;
}

int main(int argc, char **argv)
{
    demo_opts o = demo_args(argc, argv, "Initial weights: activation histograms and learning (chapter 6.2).");
    histograms(&o);
    int rc = training(&o);
    sg_release_memory();
    return rc;
}
