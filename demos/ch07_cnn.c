/*
 * ch07_cnn.c — the book's chapter 7: convolution and pooling.
 *
 *   1. Output sizes: OH = (H + 2P - FH) / S + 1, checked against the shapes
 *      that sg_conv2d really produces, on the book's three examples.
 *   2. The book's convolution of a 4x4 input with a 3x3 filter (figs. 7-4
 *      to 7-6): without padding [[15 16] [6 15]], with bias 3, with padding 1.
 *   3. im2col: the (N, C, H, W) input becomes a matrix with one row per
 *      output position and one column per filter weight: (9, 75) for one
 *      3x7x7 image and a 5x5 filter, (90, 75) for ten.
 *   4. Max pooling 2x2, stride 2 (fig. 7-14): [[2 3] [4 2]].
 *   5. Edge filters on a real image (a Fashion-MNIST sneaker): vertical and
 *      horizontal Sobel filters light up where the brightness changes.
 *      Picture: cnn_edges.png.
 *   6. SimpleConvNet (conv 30 5x5 - relu - pool 2x2 - affine 100 - relu -
 *      affine 10, Adam lr 0.001) trained briefly (200 steps of 50 images); its 30 first-layer
 *      filters before and after training (fig. 7-24): random noise becomes
 *      blobs and edges. Picture: cnn_filters.png. --full: 20 epochs of
 *      batch 100 on all 60,000 images, as the book (slow: about 20 minutes).
 */
#include "common.h"
#include "sg_optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void show_matrix(const char *label, sg_tensor *t, int rows, int cols)
{
    printf("%s", label);
    for (int i = 0; i < rows; i++) {
        printf(i ? "\n%*s[" : "[", i ? (int)strlen(label) : 0, "");
        for (int j = 0; j < cols; j++)
            printf(j ? " %g" : "%g", sg_data(t)[i * cols + j]);
        printf("]");
    }
    printf("\n");
}

/* ---- 1. output sizes ---- */

static void output_sizes(void)
{
    printf("== output size: OH = (H + 2P - FH) / S + 1 (7.2.4) ==\n");
    const struct {
        int h, w, p, s, f;
    } ex[3] = {{4, 4, 1, 1, 3}, {7, 7, 0, 2, 3}, {28, 31, 2, 3, 5}};
    sg_scope_begin();
    for (int i = 0; i < 3; i++) {
        int oh = sg_window_out(ex[i].h, ex[i].f, ex[i].s, ex[i].p);
        int ow = sg_window_out(ex[i].w, ex[i].f, ex[i].s, ex[i].p);
        sg_tensor *y = sg_conv2d(sg_zeros(SG_DIMS(1, 1, ex[i].h, ex[i].w)),
                                 sg_zeros(SG_DIMS(1, 1, ex[i].f, ex[i].f)), NULL, ex[i].s, ex[i].p);
        printf("example %d: input (%d, %d), padding %d, stride %d, filter (%d, %d) -> output (%d, %d); "
               "sg_conv2d gives (%d, %d)\n",
               i + 1, ex[i].h, ex[i].w, ex[i].p, ex[i].s, ex[i].f, ex[i].f, oh, ow, sg_dim(y, 2), sg_dim(y, 3));
    }
    printf("(the book: (4, 4), (3, 3), (10, 11))\n\n");
    sg_scope_end();
}

/* ---- 2-4. convolution, im2col, pooling on the book's numbers ---- */

static void book_examples(void)
{
    printf("== convolution of the book's 4x4 input with its 3x3 filter (7.2.2-7.2.3) ==\n");
    sg_scope_begin();
    sg_tensor *x = sg_from_data((float[]){1, 2, 3, 0, 0, 1, 2, 3, 3, 0, 1, 2, 2, 3, 0, 1}, SG_DIMS(1, 1, 4, 4));
    sg_tensor *W = sg_from_data((float[]){2, 0, 1, 0, 1, 2, 1, 0, 2}, SG_DIMS(1, 1, 3, 3));
    sg_tensor *b = sg_from_data((float[]){3}, SG_DIMS(1));
    show_matrix("no padding:    ", sg_conv2d(x, W, NULL, 1, 0), 2, 2);
    printf("               (the book: [15 16] [6 15])\n");
    show_matrix("with bias 3:   ", sg_conv2d(x, W, b, 1, 0), 2, 2);
    printf("               (the book: [18 19] [9 18])\n");
    show_matrix("padding 1:     ", sg_conv2d(x, W, NULL, 1, 1), 4, 4);
    printf("               (the book: [7 12 10 2] [4 15 16 10] [10 6 15 6] [8 10 4 3])\n\n");

    printf("== im2col (7.4.3) ==\n");
    sg_window w5 = {.kh = 5, .kw = 5, .sh = 1, .sw = 1};
    sg_tensor *col1 = sg_unfold(sg_uniform(NULL, 0.f, 1.f, SG_DIMS(1, 3, 7, 7)), w5);
    sg_tensor *col2 = sg_unfold(sg_uniform(NULL, 0.f, 1.f, SG_DIMS(10, 3, 7, 7)), w5);
    printf("x1 (1, 3, 7, 7)  -> col1 (%d, %d)   (the book: (9, 75))\n", sg_dim(col1, 0), sg_dim(col1, 1));
    printf("x2 (10, 3, 7, 7) -> col2 (%d, %d)  (the book: (90, 75))\n\n", sg_dim(col2, 0), sg_dim(col2, 1));

    printf("== max pooling 2x2, stride 2 (7.3) ==\n");
    sg_tensor *p = sg_from_data((float[]){1, 2, 1, 0, 0, 1, 2, 3, 3, 0, 1, 2, 2, 4, 0, 1}, SG_DIMS(1, 1, 4, 4));
    show_matrix("max pool:      ", sg_max_pool2d(p, 2, 2, 0), 2, 2);
    printf("               (the book: [2 3] [4 2])\n\n");
    sg_scope_end();
}

/* ---- 5. edge filters on a real image ---- */

static void plot_image(FILE *gp, const float *v, int h, int w, const char *title)
{
    plot_data_begin(gp, "img");
    for (int i = 0; i < h; i++) {
        for (int j = 0; j < w; j++)
            fprintf(gp, "%g ", v[i * w + j]);
        fprintf(gp, "\n");
    }
    plot_data_end(gp);
    fprintf(gp, "set title '%s'\nplot $img matrix with image\n", title);
}

static void edges(const demo_opts *o, const sg_dataset *d)
{
    int k = 0; /* the first sneaker (class 7) */
    while (k < d->n - 1 && d->labels[k] != 7)
        k++;
    printf("== edge filters on image %d of Fashion-MNIST (%s) ==\n", k, fashion_class[d->labels[k]]);
    sg_scope_begin();
    sg_tensor *x = sg_dataset_images(d, &k, 1, &(sg_batch_opts){.normalize = true, .flatten = false});
    sg_tensor *W = sg_from_data((float[]){-1, 0, 1, -2, 0, 2, -1, 0, 1,  /* vertical edges (Sobel x) */
                                          -1, -2, -1, 0, 0, 0, 1, 2, 1}, /* horizontal edges (Sobel y) */
                                SG_DIMS(2, 1, 3, 3));
    sg_tensor *y = sg_conv2d(x, W, NULL, 1, 1); /* (1, 2, 28, 28) */
    const float *v = sg_data(y);
    double sum[2] = {0, 0};
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 28 * 28; i++)
            sum[c] += fabsf(v[c * 784 + i]);
    printf("mean |response|: vertical-edge filter %.4f, horizontal-edge filter %.4f\n\n", sum[0] / 784,
           sum[1] / 784);
    FILE *gp = plot_begin_size(o, "cnn_edges", 1200, 420);
    if (gp) {
        fprintf(gp, "set multiplot layout 1,3\nset size ratio -1\nset yrange [27.5:-0.5]\nset xrange [-0.5:27.5]\n"
                    "unset xtics\nunset ytics\nset palette gray\n");
        plot_image(gp, sg_data(x), 28, 28, "input");
        fprintf(gp, "set palette defined (-1 'blue', 0 'white', 1 'red')\nset cbrange [-3:3]\n");
        plot_image(gp, v, 28, 28, "vertical edges [-1 0 1; -2 0 2; -1 0 1]");
        plot_image(gp, v + 784, 28, 28, "horizontal edges (the filter transposed)");
        fprintf(gp, "unset multiplot\n");
        plot_end(gp, o, "cnn_edges");
    }
    sg_scope_end();
}

/* ---- 6. SimpleConvNet ---- */

static sg_model *simple_conv_net(void)
{
    sg_rng rng;
    sg_rng_seed(&rng, 7);
    sg_model *m = sg_model_new();
    sg_init std = SG_INIT_NORMAL(0.01f); /* the book's weight_init_std */
    sg_model_add(m, sg_conv2d_new(m, "conv1", 1, 30, 5, 1, 0, std, &rng)); /* (N,30,24,24) */
    sg_model_add(m, sg_relu_new(m, "relu1"));
    sg_model_add(m, sg_maxpool2d_new(m, "pool1", 2, 2, 0)); /* (N,30,12,12) */
    sg_model_add(m, sg_linear_new(m, "fc1", 30 * 12 * 12, 100, std, &rng));
    sg_model_add(m, sg_relu_new(m, "relu2"));
    sg_model_add(m, sg_linear_new(m, "fc2", 100, 10, std, &rng));
    return demo_model_built(m, "ch07_cnn");
}

/* The 30 filters (30,1,5,5), each scaled to [0, 1], in 3 rows of 10 tiles
 * with 1-pixel gaps: a (17, 59) picture. */
static void filter_tiles(sg_model *m, float tiles[17][59])
{
    const float *W = sg_data(sg_model_param(m, "conv1.W"));
    for (int i = 0; i < 17; i++)
        for (int j = 0; j < 59; j++)
            tiles[i][j] = 0.f;
    for (int f = 0; f < 30; f++) {
        float lo = W[f * 25], hi = W[f * 25];
        for (int i = 0; i < 25; i++) {
            lo = fminf(lo, W[f * 25 + i]);
            hi = fmaxf(hi, W[f * 25 + i]);
        }
        int r0 = (f / 10) * 6, c0 = (f % 10) * 6;
        for (int i = 0; i < 5; i++)
            for (int j = 0; j < 5; j++)
                tiles[r0 + i][c0 + j] = hi > lo ? (W[f * 25 + i * 5 + j] - lo) / (hi - lo) : 0.5f;
    }
}

static int train_simple_conv_net(const demo_opts *o, const sg_dataset *train, const sg_dataset *test)
{
    const int batch = o->full ? 100 : 50;
    const int iters = o->full ? 20 * train->n / batch : 200; /* --full: 20 epochs */
    printf("== SimpleConvNet on %d Fashion-MNIST images, Adam lr 0.001, batch %d, %d iterations (7.5) ==\n",
           train->n, batch, iters);
    sg_model *net = simple_conv_net();
    if (!net)
        return 1;
    sg_model_summary(net, stdout, SG_DIMS(1, 1, 28, 28));
    static float before[17][59], after[17][59];
    filter_tiles(net, before);
    sg_optim *opt = sg_adam_new(0.001f, 0.9f, 0.999f);
    sg_loader *it = sg_loader_new(train->n, &(sg_loader_opts){.batch = batch, .shuffle = true, .seed = 1});
    double t0 = demo_now();
    printf("test acc before training: %.4f\n", demo_evaluate(net, test, true));
    for (int i = 0; i < iters; i++) {
        const int *idx;
        int b = demo_next_batch(it, &idx);
        float loss;
        if (demo_train_step(net, opt, train, idx, b, true, 0.f, &loss) != 0)
            return 1;
        if (i % (iters / 6) == 0 || i == iters - 1)
            printf("iteration %4d: loss %.4f\n", i, loss);
    }
    double secs = demo_now() - t0;
    printf("test acc after training: %.4f (%d test images, %.1f s)\n\n", demo_evaluate(net, test, true), test->n,
           secs);
    filter_tiles(net, after);
    FILE *gp = plot_begin_size(o, "cnn_filters", 1000, 420);
    if (gp) {
        fprintf(gp, "set multiplot layout 2,1\nset size ratio -1\nunset xtics\nunset ytics\nunset colorbox\n"
                    "set palette defined (0 'white', 1 'black')\nset yrange [16.5:-0.5]\nset xrange [-0.5:58.5]\n");
        plot_image(gp, &before[0][0], 17, 59, "conv1 filters before training (random)");
        plot_image(gp, &after[0][0], 17, 59, "after training (fig. 7-24)");
        fprintf(gp, "unset multiplot\n");
        plot_end(gp, o, "cnn_filters");
    }
    sg_loader_free(it);
    sg_optim_free(opt);
    sg_model_free(net);
    return 0;
}

int main(int argc, char **argv)
{
    demo_opts o = demo_args(argc, argv, "Convolution, pooling and a small CNN (chapter 7).");
    output_sizes();
    book_examples();
    sg_dataset *train = demo_fashion(true, o.full ? 60000 : 10000);
    sg_dataset *test = demo_fashion(false, o.full ? 10000 : 1000);
    if (!train || !test)
        return 1;
    edges(&o, test);
    int rc = train_simple_conv_net(&o, train, test);
    sg_dataset_free(train);
    sg_dataset_free(test);
    sg_release_memory();
    return rc;
}
