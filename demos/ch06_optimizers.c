/*
 * ch06_optimizers.c — the book's section 6.1: four ways to follow the
 * gradient.
 *
 *   SGD       w <- w - lr g
 *   Momentum  v <- 0.9 v - lr g;  w <- w + v
 *   AdaGrad   h <- h + g^2;       w <- w - lr g / (sqrt(h) + eps)
 *   Adam      m, v: running means of g and g^2, bias-corrected;
 *             w <- w - lr m^ / (sqrt(v^) + eps)
 *
 * 1. On f(x, y) = x^2 / 20 + y^2 from (-7, 2), 30 steps with the book's
 *    learning rates (SGD 0.95, Momentum 0.1, AdaGrad 1.5, Adam 0.3): SGD
 *    zigzags along y, the others head for (0, 0) more directly (fig. 6-8).
 *    Picture: optimizer_paths.png.
 * 2. A 5-layer ReLU net (4 hidden layers of 100) on Fashion-MNIST, batch
 *    128, with the book's default rates (SGD 0.01, Momentum 0.01, AdaGrad
 *    0.01, Adam 0.001): the loss falls fastest with AdaGrad and Adam, slowest
 *    with SGD (fig. 6-9). Picture: optimizer_mnist.png. --full runs the book's
 *    2,000 iterations.
 *
 * The optimizers are optim/'s (sg_optim.h); eps is set to the book's 1e-7.
 */
#include "common.h"
#include "sg_optim.h"

#include <stdio.h>
#include <stdlib.h>

enum { N_OPT = 4, PATH_STEPS = 30 };

static const char *const opt_name[N_OPT] = {"SGD", "Momentum", "AdaGrad", "Adam"};

static sg_optim *make_optimizer(int k, float lr)
{
    const sg_optim_kind kinds[N_OPT] = {SG_OPTIM_SGD, SG_OPTIM_MOMENTUM, SG_OPTIM_ADAGRAD, SG_OPTIM_ADAM};
    sg_optim_opts o = sg_optim_defaults(kinds[k]);
    o.lr = lr;
    o.eps = 1e-7f; /* the book's */
    return sg_optim_new(&o);
}

/* f(x, y) = x^2 / 20 + y^2 */
static sg_tensor *f(sg_tensor *x, sg_tensor *y)
{
    return sg_add(sg_mul_scalar(sg_square(x), 1.f / 20.f), sg_square(y));
}

static void paths(const demo_opts *o)
{
    printf("== f(x, y) = x^2/20 + y^2 from (-7, 2), %d steps (6.1.7) ==\n", PATH_STEPS);
    const float lr[N_OPT] = {0.95f, 0.1f, 1.5f, 0.3f};
    float path[N_OPT][PATH_STEPS + 1][2];
    for (int k = 0; k < N_OPT; k++) {
        sg_tensor *p[2] = {sg_param(sg_scalar(-7.f)), sg_param(sg_scalar(2.f))}; /* x, y */
        sg_optim *opt = make_optimizer(k, lr[k]);
        for (int i = 0; i <= PATH_STEPS; i++) {
            path[k][i][0] = sg_item(p[0]);
            path[k][i][1] = sg_item(p[1]);
            if (i == PATH_STEPS)
                break;
            sg_scope_begin();
            sg_optim_zero_grad(p, 2);
            if (sg_backward(f(p[0], p[1]), NULL) != 0 || sg_optim_step(opt, p, 2) != 0)
                fprintf(stderr, "ch06_optimizers: %s\n", sg_last_error());
            sg_scope_end();
        }
        printf("%-8s (lr %-4g): (x, y) after %d steps = (%.6f, %.6f)\n", opt_name[k], lr[k], PATH_STEPS,
               path[k][PATH_STEPS][0], path[k][PATH_STEPS][1]);
        sg_optim_free(opt);
        sg_tensor_free(p[0]);
        sg_tensor_free(p[1]);
    }
    printf("(float64 with the book's code: SGD (-0.350393, 0.084782), Momentum (0.896414, 0.088086),\n"
           " AdaGrad (-0.120162, 0.000000), Adam (0.136007, 0.318245))\n\n");

    FILE *gp = plot_begin(o, "optimizer_paths");
    if (!gp)
        return;
    for (int k = 0; k < N_OPT; k++) {
        char block[16];
        snprintf(block, sizeof block, "p%d", k);
        plot_data_begin(gp, block);
        for (int i = 0; i <= PATH_STEPS; i++)
            fprintf(gp, "%g %g\n", path[k][i][0], path[k][i][1]);
        plot_data_end(gp);
    }
    fprintf(gp, "set multiplot layout 2,2\nset xrange [-10:10]\nset yrange [-10:10]\nset isosamples 150\n"
                "set contour base\nset cntrparam levels discrete 0.5,2,5,10,20,40,60\nunset surface\n"
                "set view map\nset table $contour\nsplot x**2/20 + y**2\nunset table\nunset contour\n"
                "set key off\nset xlabel 'x'\nset ylabel 'y'\n");
    for (int k = 0; k < N_OPT; k++)
        fprintf(gp, "set title '%s'\nplot $contour with lines lc rgb '#c0c0c0', $p%d with linespoints pt 7 ps 0.5 "
                    "lc rgb 'red', '+' using (0):(0) with points pt 3 ps 2 lc 'black'\n",
                opt_name[k], k);
    fprintf(gp, "unset multiplot\n");
    plot_end(gp, o, "optimizer_paths");
}

static int compare_on_fashion(const demo_opts *o)
{
    const int iters = o->full ? 2000 : 500, batch = 128, every = 100;
    sg_dataset *train = demo_fashion(true, o->full ? 60000 : 10000);
    if (!train)
        return 1;
    printf("== a 5-layer net on %d Fashion-MNIST images, batch %d, %d iterations (6.1.8) ==\n", train->n,
           batch, iters);
    const float lr[N_OPT] = {0.01f, 0.01f, 0.01f, 0.001f};
    const int hidden[4] = {100, 100, 100, 100};
    sg_model *net[N_OPT];
    sg_optim *opt[N_OPT];
    float *loss[N_OPT];
    for (int k = 0; k < N_OPT; k++) {
        net[k] = demo_mlp(784, hidden, 4, 10, &(demo_mlp_opts){.init = SG_INIT_HE, .seed = 7});
        opt[k] = make_optimizer(k, lr[k]);
        loss[k] = malloc(sizeof(float) * (size_t)iters);
    }
    sg_rng rng;
    sg_rng_seed(&rng, 11);
    double t0 = demo_now();
    for (int i = 0; i < iters; i++) {
        int idx[128]; /* the same random batch for every optimizer */
        demo_random_choice(&rng, train->n, batch, idx);
        for (int k = 0; k < N_OPT; k++)
            if (demo_train_step(net[k], opt[k], train, idx, batch, false, 0.f, &loss[k][i]) != 0)
                return 1;
        if (i % every == 0 || i == iters - 1) {
            printf("===========iteration:%d===========\n", i);
            for (int k = 0; k < N_OPT; k++)
                printf("%s:%.6f\n", opt_name[k], loss[k][i]);
        }
    }
    /* the mean loss of the last 10% of iterations is less noisy than one batch */
    printf("mean loss over the last %d iterations:", iters / 10);
    for (int k = 0; k < N_OPT; k++) {
        double m = 0;
        for (int i = iters - iters / 10; i < iters; i++)
            m += loss[k][i];
        printf(" %s %.4f%s", opt_name[k], m / (iters / 10), k < N_OPT - 1 ? "," : "\n");
    }
    printf("(%.1f s)\n", demo_now() - t0);

    FILE *gp = plot_begin(o, "optimizer_mnist");
    if (gp) {
        plot_data_begin(gp, "loss");
        for (int i = 0; i < iters; i++)
            fprintf(gp, "%d %g %g %g %g\n", i, loss[0][i], loss[1][i], loss[2][i], loss[3][i]);
        plot_data_end(gp);
        fprintf(gp, "set xlabel 'iterations'\nset ylabel 'loss'\nset yrange [0:1.2]\nset grid\n"
                    "set title 'optimizers on Fashion-MNIST (fig. 6-9)'\n"
                    "plot for [k=2:5] $loss using 1:k with lines title word('SGD Momentum AdaGrad Adam', k-1)\n");
        plot_end(gp, o, "optimizer_mnist");
    }
    for (int k = 0; k < N_OPT; k++) {
        sg_model_free(net[k]);
        sg_optim_free(opt[k]);
        free(loss[k]);
    }
    sg_dataset_free(train);
    return 0;
}

int main(int argc, char **argv)
{
    demo_opts o = demo_args(argc, argv, "SGD, Momentum, AdaGrad and Adam (chapter 6.1).");
    paths(&o);
    int rc = compare_on_fashion(&o);
    sg_release_memory();
    return rc;
}
