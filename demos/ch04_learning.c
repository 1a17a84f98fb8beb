/*
 * ch04_learning.c — the book's chapter 4: learning from data.
 *
 *   1. loss functions: mean squared error and cross-entropy on the book's
 *      two example outputs;
 *   2. the numerical derivative (f(x+h) - f(x-h)) / 2h with h = 1e-4, in
 *      float64 as the book does (its digits come out exactly), and why a
 *      tiny h fails in float32;
 *   3. numerical gradients of f(x0, x1) = x0^2 + x1^2, and the gradient
 *      found by the engine's backward pass;
 *   4. gradient descent from (-3, 4): learning rate 0.1, 10 and 1e-10;
 *   5. the book's simpleNet with its printed weights: loss and dL/dW;
 *   6. the two-layer net (784-50-10, sigmoid, softmax) on Fashion-MNIST,
 *      trained with numerical gradients and with backward: the speed ratio,
 *      then a short training run with backward.
 *
 * Pictures: tangent.png (fig. 4-7), gradient_field.png (fig. 4-9),
 * gradient_descent.png (fig. 4-10), two_layer_net_training.png (fig. 4-11).
 * --full trains longer (10,000 steps of 100 images over all 60,000).
 */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- 4.2 loss functions (engine, float32) ---- */

static sg_tensor *mean_squared_error(sg_tensor *y, sg_tensor *t) /* 0.5 sum (y - t)^2 */
{
    return sg_mul_scalar(sg_sum_all(sg_square(sg_sub(y, t))), 0.5f);
}

/* -sum(t log(y + 1e-7)) / N for a batch y, t (N, C); N = 1 for 1-D y. */
static sg_tensor *cross_entropy_error(sg_tensor *y, sg_tensor *t)
{
    float n = sg_ndim(y) == 1 ? 1.f : (float)sg_dim(y, 0);
    sg_tensor *ll = sg_sum_all(sg_mul(t, sg_log(sg_add_scalar(y, 1e-7f))));
    return sg_mul_scalar(ll, -1.f / n);
}

static void losses(void)
{
    printf("== loss functions (4.2) ==\n");
    float t[10] = {0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
    float y1[10] = {0.1f, 0.05f, 0.6f, 0.0f, 0.05f, 0.1f, 0.0f, 0.1f, 0.0f, 0.0f}; /* "2" most likely */
    float y2[10] = {0.1f, 0.05f, 0.1f, 0.0f, 0.05f, 0.1f, 0.0f, 0.6f, 0.0f, 0.0f}; /* "7" most likely */
    sg_scope_begin();
    sg_tensor *T = sg_from_data(t, SG_DIMS(10));
    sg_tensor *Y1 = sg_from_data(y1, SG_DIMS(10)), *Y2 = sg_from_data(y2, SG_DIMS(10));
    printf("mean squared error, right guess:  %.7g   (the book: 0.097500000000000031)\n",
           sg_item(mean_squared_error(Y1, T)));
    printf("mean squared error, wrong guess:  %.7g   (the book: 0.59750000000000003)\n",
           sg_item(mean_squared_error(Y2, T)));
    printf("cross-entropy error, right guess: %.7g   (the book: 0.51082545709933802)\n",
           sg_item(cross_entropy_error(Y1, T)));
    printf("cross-entropy error, wrong guess: %.7g   (the book: 2.3025840929945458)\n\n",
           sg_item(cross_entropy_error(Y2, T)));
    sg_scope_end();
}

/* ---- 4.3 numerical differentiation (float64, as the book's NumPy) ---- */

static double function_1(double x) /* 0.01 x^2 + 0.1 x */
{
    return 0.01 * (x * x) + 0.1 * x;
}

static double numerical_diff(double (*f)(double), double x)
{
    double h = 1e-4;
    return (f(x + h) - f(x - h)) / (2 * h);
}

static void derivatives(const demo_opts *o)
{
    printf("== numerical differentiation (4.3) ==\n");
    printf("f(x) = 0.01 x^2 + 0.1 x, df/dx = 0.02 x + 0.1\n");
    printf("numerical_diff(f, 5)  = %.16g   (the book: 0.1999999999990898)\n", numerical_diff(function_1, 5));
    printf("numerical_diff(f, 10) = %.16g   (the book: 0.2999999999986347)\n", numerical_diff(function_1, 10));
    float h32 = (float)1e-50;
    printf("a tiny h fails: (float)1e-50 = %g, so (f(x+h) - f(x)) / h is 0/0\n", h32);
    /* in float32, h = 1e-4 loses digits: f(5 + h) and f(5 - h) share 4 of their 7 */
    float x = 5.f, hf = 1e-4f;
    float fp = 0.01f * ((x + hf) * (x + hf)) + 0.1f * (x + hf), fm = 0.01f * ((x - hf) * (x - hf)) + 0.1f * (x - hf);
    printf("the same h = 1e-4 in float32: %.7g (float32 keeps 7 digits; the engine's gradcheck uses h = 1e-3)\n\n",
           (fp - fm) / (2 * hf));

    FILE *gp = plot_begin(o, "tangent");
    if (gp) {
        double d = numerical_diff(function_1, 5);
        fprintf(gp, "set xrange [0:20]\nset xlabel 'x'\nset ylabel 'f(x)'\nset grid\n"
                    "set title 'f(x) = 0.01x^2 + 0.1x and its tangent at x = 5 (fig. 4-7)'\n"
                    "plot 0.01*x**2 + 0.1*x lw 2 title 'f(x)', %.17g*(x - 5) + %.17g lw 2 title 'tangent'\n",
                d, function_1(5));
        plot_end(gp, o, "tangent");
    }
}

/* ---- 4.4 gradients ---- */

static double function_2(const double *x) /* x0^2 + x1^2 */
{
    return x[0] * x[0] + x[1] * x[1];
}

/* The book's numerical_gradient: central differences, one element at a time. */
static void numerical_gradient(double (*f)(const double *), double *x, int n, double *grad)
{
    double h = 1e-4;
    for (int i = 0; i < n; i++) {
        double tmp = x[i];
        x[i] = tmp + h;
        double fxh1 = f(x);
        x[i] = tmp - h;
        double fxh2 = f(x);
        grad[i] = (fxh1 - fxh2) / (2 * h);
        x[i] = tmp;
    }
}

/* The same gradient from the engine: build f, run backward, read x's grad. */
static void backward_gradient(const double *x, double *grad)
{
    sg_scope_begin();
    sg_tensor *X = sg_param(sg_from_data((float[]){(float)x[0], (float)x[1]}, SG_DIMS(2)));
    sg_tensor *f = sg_sum_all(sg_square(X));
    if (f && sg_backward(f, NULL) == 0) {
        grad[0] = sg_grad_data(X)[0];
        grad[1] = sg_grad_data(X)[1];
    } else {
        grad[0] = grad[1] = NAN;
    }
    sg_scope_end();
}

static void gradients(const demo_opts *o)
{
    printf("== gradients of f(x0, x1) = x0^2 + x1^2 (4.4) ==\n");
    double pts[3][2] = {{3, 4}, {0, 2}, {3, 0}};
    for (int p = 0; p < 3; p++) {
        double g[2], gb[2];
        numerical_gradient(function_2, pts[p], 2, g);
        backward_gradient(pts[p], gb);
        printf("at (%g, %g): numerical [%.16g, %.16g], backward [%g, %g]\n", pts[p][0], pts[p][1], g[0], g[1],
               gb[0], gb[1]);
    }
    printf("(the book: [6. 8.], [0. 4.], [6. 0.])\n\n");

    FILE *gp = plot_begin(o, "gradient_field");
    if (gp) {
        plot_data_begin(gp, "arrows");
        for (double x0 = -2; x0 <= 2.01; x0 += 0.25)
            for (double x1 = -2; x1 <= 2.01; x1 += 0.25) {
                double x[2] = {x0, x1}, g[2];
                numerical_gradient(function_2, x, 2, g);
                fprintf(gp, "%g %g %g %g\n", x0, x1, -0.05 * g[0], -0.05 * g[1]);
            }
        plot_data_end(gp);
        fprintf(gp, "set size ratio -1\nset xlabel 'x0'\nset ylabel 'x1'\nset grid\n"
                    "set title 'minus the gradient of x0^2 + x1^2 (fig. 4-9)'\n"
                    "plot $arrows using 1:2:3:4 with vectors head filled size 0.05,20 lc rgb '#1060c0' notitle\n");
        plot_end(gp, o, "gradient_field");
    }
}

/* The book's gradient_descent: x -= lr * grad, step_num times; path may be NULL. */
static void gradient_descent(double *x, double lr, int step_num, double (*path)[2])
{
    double grad[2];
    for (int i = 0; i < step_num; i++) {
        if (path) {
            path[i][0] = x[0];
            path[i][1] = x[1];
        }
        numerical_gradient(function_2, x, 2, grad);
        x[0] -= lr * grad[0];
        x[1] -= lr * grad[1];
    }
}

/* The same descent with the engine: float32, gradient from backward. */
static void gradient_descent_backward(float *x, float lr, int step_num)
{
    sg_tensor *X = sg_param(sg_from_data(x, SG_DIMS(2))); /* persistent */
    for (int i = 0; i < step_num; i++) {
        sg_scope_begin();
        sg_zero_grad(X);
        if (sg_backward(sg_sum_all(sg_square(X)), NULL) == 0)
            for (int k = 0; k < 2; k++)
                sg_data(X)[k] -= lr * sg_grad_data(X)[k];
        sg_scope_end();
    }
    memcpy(x, sg_data(X), 2 * sizeof *x);
    sg_tensor_free(X);
}

static void descent(const demo_opts *o)
{
    printf("== gradient descent on x0^2 + x1^2 from (-3, 4), 100 steps (4.4.1) ==\n");
    const double lrs[3] = {0.1, 10.0, 1e-10};
    const char *book[3] = {"[-6.11110793e-10  8.14814391e-10]", "[-2.58983747e+13 -1.29524862e+12]",
                           "[-2.99999994  3.99999992]"};
    double path[100][2];
    for (int k = 0; k < 3; k++) {
        double x[2] = {-3.0, 4.0};
        gradient_descent(x, lrs[k], 100, k == 0 ? path : NULL);
        float xf[2] = {-3.f, 4.f};
        gradient_descent_backward(xf, (float)lrs[k], 100);
        printf("lr = %-6g numerical (float64): [%.9g, %.9g]   (the book: %s)\n", lrs[k], x[0], x[1], book[k]);
        printf("          backward  (float32): [%.9g, %.9g]\n", isnan(xf[0]) ? NAN : xf[0], isnan(xf[1]) ? NAN : xf[1]);
    }
    printf("lr = 0.1 reaches the minimum (0, 0); lr = 10 diverges; lr = 1e-10 barely moves.\n"
           "With lr = 10 each step maps x to x - 10 * 2x = -19x. The book's numerical gradient\n"
           "stops growing near 1e13, where x + 1e-4 == x in float64 and the difference is 0;\n"
           "backward's exact gradient keeps growing until float32 overflows (step 30:\n"
           "4 * 19^30 > 3.4e38) and then inf - inf is nan.\n\n");

    FILE *gp = plot_begin(o, "gradient_descent");
    if (gp) {
        plot_data_begin(gp, "path");
        for (int i = 0; i < 100; i++)
            fprintf(gp, "%g %g\n", path[i][0], path[i][1]);
        plot_data_end(gp);
        plot_data_begin(gp, "contours"); /* x0^2 + x1^2 = r^2 */
        for (int r = 1; r <= 5; r++) {
            for (int a = 0; a <= 100; a++)
                fprintf(gp, "%g %g\n", r * cos(6.283185307179586 * a / 100), r * sin(6.283185307179586 * a / 100));
            fprintf(gp, "\n");
        }
        plot_data_end(gp);
        fprintf(gp, "set size ratio -1\nset xrange [-3.5:3.5]\nset yrange [-4.5:4.5]\nset xlabel 'x0'\n"
                    "set ylabel 'x1'\nset grid\nset title 'gradient descent, lr = 0.1 (fig. 4-10)'\n"
                    "plot $contours with lines dt 2 lc 'gray' notitle, "
                    "$path with linespoints pt 7 ps 0.6 title 'x'\n");
        plot_end(gp, o, "gradient_descent");
    }
}

/* ---- 4.4.2 the book's simpleNet, with the weights it prints ---- */

static void simple_net(void)
{
    printf("== simpleNet: z = x W, loss = cross_entropy(softmax(z), t) (4.4.2) ==\n");
    sg_scope_begin();
    sg_tensor *W = sg_param(sg_from_data(
        (float[]){0.47355232f, 0.9977393f, 0.84668094f, 0.85557411f, 0.03563661f, 0.69422093f}, SG_DIMS(2, 3)));
    sg_tensor *x = sg_from_data((float[]){0.6f, 0.9f}, SG_DIMS(2));
    sg_tensor *t = sg_from_data((float[]){0, 0, 1}, SG_DIMS(3));
    sg_tensor *z = sg_reshape(sg_matmul(sg_reshape(x, SG_DIMS(1, 2)), W), SG_DIMS(3));
    sg_tensor *e = sg_exp(sg_sub(z, sg_max(z, NULL, 0, false)));
    sg_tensor *loss = cross_entropy_error(sg_div(e, sg_sum_all(e)), t);
    if (!loss || sg_backward(loss, NULL) != 0) {
        printf("simpleNet failed: %s\n", sg_last_error());
        sg_scope_end();
        return;
    }
    const float *p = sg_data(z), *dW = sg_grad_data(W);
    printf("p = x W = [%.7g %.7g %.7g]   (the book: [1.05414809 0.63071653 1.1328074])\n", p[0], p[1], p[2]);
    printf("loss = %.7g   (the book: 0.92806853663411326)\n", sg_item(loss));
    printf("dW = [[%.7g %.7g %.7g]\n      [%.7g %.7g %.7g]]\n", dW[0], dW[1], dW[2], dW[3], dW[4], dW[5]);
    printf("(the book: [[ 0.21924763  0.14356247 -0.36281009]\n"
           "            [ 0.32887144  0.2153437  -0.54421514]])\n\n");
    sg_scope_end();
}

/* ---- 4.5 the two-layer net ---- */

typedef struct two_layer_net {
    sg_tensor *W1; /* (784, 50) */
    sg_tensor *b1; /* (50) */
    sg_tensor *W2; /* (50, 10) */
    sg_tensor *b2; /* (10) */
} two_layer_net;

static two_layer_net net_new(int in, int hidden, int out, float std, uint64_t seed)
{
    sg_rng rng;
    sg_rng_seed(&rng, seed);
    return (two_layer_net){sg_param(sg_normal(&rng, 0.f, std, SG_DIMS(in, hidden))),
                           sg_param(sg_zeros(SG_DIMS(hidden))),
                           sg_param(sg_normal(&rng, 0.f, std, SG_DIMS(hidden, out))),
                           sg_param(sg_zeros(SG_DIMS(out)))};
}

static void net_free(two_layer_net *n)
{
    sg_tensor_free(n->W1);
    sg_tensor_free(n->b1);
    sg_tensor_free(n->W2);
    sg_tensor_free(n->b2);
}

static sg_tensor *sigmoid(sg_tensor *x) /* 1 / (1 + exp(-x)) */
{
    return sg_rdiv_scalar(1.f, sg_add_scalar(sg_exp(sg_neg(x)), 1.f));
}

static sg_tensor *softmax_rows(sg_tensor *a) /* row-wise, stable */
{
    sg_tensor *e = sg_exp(sg_sub(a, sg_max(a, (int[]){1}, 1, true)));
    return sg_div(e, sg_sum(e, (int[]){1}, 1, true));
}

static sg_tensor *predict(const two_layer_net *n, sg_tensor *x) /* (N, 784) -> (N, 10) */
{
    sg_tensor *z1 = sigmoid(sg_add(sg_matmul(x, n->W1), n->b1));
    return softmax_rows(sg_add(sg_matmul(z1, n->W2), n->b2));
}

static sg_tensor *net_loss(const two_layer_net *n, sg_tensor *x, sg_tensor *t)
{
    return cross_entropy_error(predict(n, x), t);
}

/* The book's numerical_gradient over every parameter: 2 forward passes per
 * weight. float32 needs a larger step than the book's h = 1e-4. */
static void net_numerical_gradient(two_layer_net *n, sg_tensor *x, sg_tensor *t, float h, float **grads)
{
    sg_tensor *params[4] = {n->W1, n->b1, n->W2, n->b2};
    bool was = sg_set_grad_enabled(false);
    for (int k = 0; k < 4; k++) {
        float *p = sg_data(params[k]);
        for (size_t i = 0; i < sg_size(params[k]); i++) {
            float tmp = p[i];
            sg_scope_begin();
            p[i] = tmp + h;
            double fxh1 = sg_item(net_loss(n, x, t));
            p[i] = tmp - h;
            double fxh2 = sg_item(net_loss(n, x, t));
            sg_scope_end();
            p[i] = tmp;
            grads[k][i] = (float)((fxh1 - fxh2) / (2.0 * h));
        }
    }
    sg_set_grad_enabled(was);
}

/* Gradients by backward into each parameter's .grad; returns the loss. */
static float net_gradient(two_layer_net *n, sg_tensor *x, sg_tensor *t)
{
    sg_tensor *params[4] = {n->W1, n->b1, n->W2, n->b2};
    for (int k = 0; k < 4; k++)
        sg_zero_grad(params[k]);
    sg_tensor *loss = net_loss(n, x, t);
    if (!loss || sg_backward(loss, NULL) != 0)
        return NAN;
    return sg_item(loss);
}

static void sgd_update(two_layer_net *n, float lr, float **grads)
{
    sg_tensor *params[4] = {n->W1, n->b1, n->W2, n->b2};
    for (int k = 0; k < 4; k++) {
        float *p = sg_data(params[k]);
        const float *g = grads ? grads[k] : sg_grad_data(params[k]);
        for (size_t i = 0; i < sg_size(params[k]); i++)
            p[i] -= lr * g[i];
    }
}

static double accuracy(const two_layer_net *n, const sg_dataset *d)
{
    sg_scope_begin();
    bool was = sg_set_grad_enabled(false);
    double acc = demo_accuracy(predict(n, sg_dataset_images(d, NULL, d->n, NULL)), d, NULL);
    sg_set_grad_enabled(was);
    sg_scope_end();
    return acc;
}

/* Numerical gradients against backward on one batch: the same numbers, at
 * very different speeds. Then `steps` steps of training with each, from the
 * same start: net a learns with numerical gradients, net b with backward. */
static void compare_speed(const sg_dataset *train, int batch, int steps)
{
    printf("== the two-layer net 784-50-10: numerical gradient vs backward (4.5) ==\n");
    two_layer_net a = net_new(784, 50, 10, 0.01f, 1), b = net_new(784, 50, 10, 0.01f, 1);
    sg_tensor *pa[4] = {a.W1, a.b1, a.W2, a.b2}, *pb[4] = {b.W1, b.b1, b.W2, b.b2};
    const char *names[4] = {"W1", "b1", "W2", "b2"};
    float *num[4];
    for (int k = 0; k < 4; k++)
        num[k] = calloc(sg_size(pa[k]), sizeof(float));
    const float h = 1e-2f, lr = 0.1f;
    double t_num = 0, t_bw = 0;
    printf("%d parameters, a batch of %d images, h = %g (float32), lr = %g\n", 784 * 50 + 50 + 50 * 10 + 10,
           batch, h, lr);
    for (int s = 0; s < steps; s++) {
        int idx[100];
        for (int i = 0; i < batch; i++)
            idx[i] = (s * batch + i) % train->n;
        sg_scope_begin();
        sg_tensor *x = sg_dataset_images(train, idx, batch, NULL);
        sg_tensor *t = sg_dataset_labels(train, idx, batch, &(sg_batch_opts){.one_hot = true});
        double t0 = demo_now();
        net_numerical_gradient(&a, x, t, h, num);
        double t1 = demo_now();
        float loss = net_gradient(&b, x, t);
        double t2 = demo_now();
        t_num += t1 - t0;
        t_bw += t2 - t1;
        if (s == 0) {
            printf("mean |numerical - backward| per parameter on the first batch:\n");
            for (int k = 0; k < 4; k++) {
                double sum = 0;
                for (size_t i = 0; i < sg_size(pa[k]); i++)
                    sum += fabs((double)num[k][i] - sg_grad_data(pb[k])[i]);
                printf("  %s: %.3g\n", names[k], sum / (double)sg_size(pa[k]));
            }
        }
        sgd_update(&a, lr, num);
        sgd_update(&b, lr, NULL);
        printf("step %d: loss %.6f; numerical gradient %.2f s, backward %.2f ms\n", s + 1, loss, t1 - t0,
               1e3 * (t2 - t1));
        sg_scope_end();
    }
    printf("backward is %.0f times faster than the numerical gradient\n", t_num / t_bw);
    double diff = 0;
    for (int k = 0; k < 4; k++)
        for (size_t i = 0; i < sg_size(pa[k]); i++)
            diff = fmax(diff, fabs((double)sg_data(pa[k])[i] - sg_data(pb[k])[i]));
    printf("after %d steps the two nets differ by at most %.3g in any weight\n\n", steps, diff);
    for (int k = 0; k < 4; k++)
        free(num[k]);
    net_free(&a);
    net_free(&b);
}

/* Mini-batch training with backward, as the book's train_neuralnet.py. */
static int train(const demo_opts *o, const sg_dataset *train, const sg_dataset *test, int iters)
{
    const int batch = 100;
    const float lr = 0.1f;
    int per_epoch = train->n / batch > 0 ? train->n / batch : 1;
    printf("== mini-batch training with backward: %d images, batch %d, lr %g, %d steps (4.5.2) ==\n",
           train->n, batch, lr, iters);
    two_layer_net net = net_new(784, 50, 10, 0.01f, 2);
    sg_loader *it = sg_loader_new(train->n, &(sg_loader_opts){.batch = batch, .shuffle = true, .seed = 3});
    float *losses = malloc(sizeof(float) * (size_t)iters);
    if (!it || !losses)
        return 1;
    double t0 = demo_now();
    for (int i = 0; i < iters; i++) {
        const int *idx;
        int b = demo_next_batch(it, &idx);
        sg_scope_begin();
        sg_tensor *x = sg_dataset_images(train, idx, b, NULL);
        sg_tensor *t = sg_dataset_labels(train, idx, b, &(sg_batch_opts){.one_hot = true});
        losses[i] = net_gradient(&net, x, t);
        sgd_update(&net, lr, NULL);
        sg_scope_end();
        if (i % per_epoch == 0 || i == iters - 1)
            printf("step %5d: loss %.4f  train acc %.4f  test acc %.4f\n", i, losses[i], accuracy(&net, train),
                   accuracy(&net, test));
    }
    printf("%.1f s for %d steps\n", demo_now() - t0, iters);
    FILE *gp = plot_begin(o, "two_layer_net_training");
    if (gp) {
        plot_data_begin(gp, "loss");
        for (int i = 0; i < iters; i++)
            fprintf(gp, "%d %g\n", i, losses[i]);
        plot_data_end(gp);
        fprintf(gp, "set xlabel 'iteration'\nset ylabel 'loss'\nset grid\nset yrange [0:*]\n"
                    "set title 'training loss of the two-layer net on Fashion-MNIST (fig. 4-11)'\n"
                    "plot $loss with lines notitle\n");
        plot_end(gp, o, "two_layer_net_training");
    }
    free(losses);
    sg_loader_free(it);
    net_free(&net);
    return 0;
}

int main(int argc, char **argv)
{
    demo_opts o = demo_args(argc, argv, "Loss functions, numerical gradients and gradient descent of chapter 4.");
    losses();
    derivatives(&o);
    gradients(&o);
    descent(&o);
    simple_net();

    sg_dataset *train_set = demo_fashion(true, o.full ? 60000 : 10000);
    sg_dataset *test_set = demo_fashion(false, o.full ? 10000 : 1000);
    int rc = 1;
    if (train_set && test_set)
    {
        compare_speed(train_set, o.full ? 100 : 10, o.full ? 3 : 2);
        rc = train(&o, train_set, test_set, o.full ? 10000 : 1000);
    }
    sg_dataset_free(train_set);
    sg_dataset_free(test_set);
    sg_release_memory();
    return rc;
}
