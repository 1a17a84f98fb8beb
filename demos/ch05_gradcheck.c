/*
 * ch05_gradcheck.c — the book's gradient check (5.7.3): backpropagation
 * against the numerical gradient on the two-layer net of chapter 5,
 *
 *     Affine(784 -> 50) -> ReLU -> Affine(50 -> 10) -> SoftmaxWithLoss
 *
 * with weights N(0, 0.01^2), on the first 3 training images. The book prints
 * the mean |backprop - numerical| of each parameter: about 1e-13 to 1e-10 in
 * float64. Here the values are float32 (7 digits), so the differences are
 * larger and depend on the step h of the central difference:
 *   - h too small: f(x+h) - f(x-h) loses its digits to rounding (error ~ eps/h);
 *   - h too large: the central difference's own error grows (~ h^2 f''').
 * The table shows both ends; about 1e-2 to 1e-3 is best in float32, where
 * the differences stay below 1e-4 (most well below). The engine's gradcheck
 * (float64 accumulation, h = 1e-3) gives its verdict at the end.
 *
 * The numerical gradient is the book's: two forward passes per weight, so
 * 2 x 39,760 passes per h.
 */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

enum { IN = 784, HIDDEN = 50, OUT = 10, BATCH = 3, NPARAM = 4 };

typedef struct two_layer_net {
    sg_tensor *p[NPARAM]; /* W1 (784,50), b1 (50), W2 (50,10), b2 (10) */
} two_layer_net;

static const char *const names[NPARAM] = {"W1", "b1", "W2", "b2"};

static sg_tensor *affine(sg_tensor *x, sg_tensor *W, sg_tensor *b) /* x W + b */
{
    return sg_add(sg_matmul(x, W), b);
}

/* -sum(t * log softmax(x)) / N, with the row maximum subtracted first. */
static sg_tensor *softmax_with_loss(sg_tensor *x, sg_tensor *t)
{
    sg_tensor *z = sg_sub(x, sg_max(x, (int[]){1}, 1, true));
    sg_tensor *log_y = sg_sub(z, sg_log(sg_sum(sg_exp(z), (int[]){1}, 1, true)));
    return sg_mul_scalar(sg_sum_all(sg_mul(t, log_y)), -1.f / (float)sg_dim(x, 0));
}

static sg_tensor *loss_of(sg_tensor *const *p, sg_tensor *x, sg_tensor *t)
{
    sg_tensor *h = sg_relu(affine(x, p[0], p[1]));
    return softmax_with_loss(affine(h, p[2], p[3]), t);
}

/* The book's numerical_gradient, on every weight of every parameter. */
static void numerical_gradient(two_layer_net *n, sg_tensor *x, sg_tensor *t, float h, float **grad)
{
    bool was = sg_set_grad_enabled(false);
    for (int k = 0; k < NPARAM; k++) {
        float *w = sg_data(n->p[k]);
        for (size_t i = 0; i < sg_size(n->p[k]); i++) {
            float tmp = w[i];
            sg_scope_begin();
            w[i] = tmp + h;
            double fxh1 = sg_item(loss_of(n->p, x, t));
            w[i] = tmp - h;
            double fxh2 = sg_item(loss_of(n->p, x, t));
            sg_scope_end();
            w[i] = tmp;
            grad[k][i] = (float)((fxh1 - fxh2) / (2.0 * h));
        }
    }
    sg_set_grad_enabled(was);
}

typedef struct batch {
    sg_tensor *x, *t;
} batch;

/* sg_gradcheck's view of the net: inputs = the four parameters. */
static sg_tensor *net_fn(sg_tensor *const *inputs, int n, void *ctx)
{
    (void)n;
    const batch *b = ctx;
    return loss_of(inputs, b->x, b->t);
}

int main(int argc, char **argv)
{
    demo_opts o = demo_args(argc, argv, "The gradient check of chapter 5: backprop vs numerical gradient.");
    (void)o;
    sg_dataset *train = demo_fashion(true, BATCH);
    if (!train)
        return 1;
    sg_rng rng;
    sg_rng_seed(&rng, 5);
    two_layer_net net = {{sg_param(sg_normal(&rng, 0.f, 0.01f, SG_DIMS(IN, HIDDEN))),
                          sg_param(sg_zeros(SG_DIMS(HIDDEN))),
                          sg_param(sg_normal(&rng, 0.f, 0.01f, SG_DIMS(HIDDEN, OUT))),
                          sg_param(sg_zeros(SG_DIMS(OUT)))}};
    batch b = {sg_dataset_images(train, NULL, BATCH, NULL),
               sg_dataset_labels(train, NULL, BATCH, &(sg_batch_opts){.one_hot = true})};

    /* backprop: one backward pass */
    sg_scope_begin();
    sg_tensor *loss = loss_of(net.p, b.x, b.t);
    if (!loss || sg_backward(loss, NULL) != 0) {
        fprintf(stderr, "ch05_gradcheck: %s\n", sg_last_error());
        return 1;
    }
    printf("two-layer net 784-50-10 (ReLU), %d Fashion-MNIST images, loss %.6f\n\n", BATCH, sg_item(loss));
    sg_scope_end();

    printf("mean |backprop - numerical| per parameter (float32):\n");
    printf("%-8s", "h");
    for (int k = 0; k < NPARAM; k++)
        printf("%12s", names[k]);
    printf("\n");
    printf("%-8s", "|grad|");
    for (int k = 0; k < NPARAM; k++) {
        double sum = 0;
        for (size_t i = 0; i < sg_size(net.p[k]); i++)
            sum += fabs((double)sg_grad_data(net.p[k])[i]);
        printf("%12.3g", sum / (double)sg_size(net.p[k]));
    }
    printf("   (mean |backprop|, for scale)\n");
    float *num[NPARAM];
    for (int k = 0; k < NPARAM; k++)
        num[k] = malloc(sizeof(float) * sg_size(net.p[k]));
    const float hs[3] = {1e-2f, 1e-3f, 1e-4f};
    for (int j = 0; j < 3; j++) {
        numerical_gradient(&net, b.x, b.t, hs[j], num);
        printf("%-8g", hs[j]);
        for (int k = 0; k < NPARAM; k++) {
            double sum = 0;
            const float *g = sg_grad_data(net.p[k]);
            for (size_t i = 0; i < sg_size(net.p[k]); i++)
                sum += fabs((double)g[i] - num[k][i]);
            printf("%12.3g", sum / (double)sg_size(net.p[k]));
        }
        printf("\n");
    }
    printf("the book (float64, h = 1e-4): W1 2.2e-13, b1 9.7e-13, W2 8.4e-13, b2 1.2e-10\n"
           "float32 keeps 7 digits: with h = 1e-4 rounding dominates (f(x+h) - f(x-h) keeps\n"
           "only a few digits); with h = 1e-2 or 1e-3 the differences stay below 1e-4.\n\n");

    sg_gradcheck_report rep;
    bool ok = sg_gradcheck(net_fn, net.p, NPARAM, &b, &(sg_gradcheck_opts){.verbose = false}, &rep);
    printf("sg_gradcheck (float64 accumulation, h = 1e-3, atol 1e-3, rtol 1e-2):\n  %s\n", rep.message);
    printf("  largest |analytic - numeric| over all %d weights: %.3g\n", 784 * 50 + 50 + 500 + 10, rep.max_abs_err);

    for (int k = 0; k < NPARAM; k++) {
        free(num[k]);
        sg_tensor_free(net.p[k]);
    }
    sg_tensor_free(b.x);
    sg_tensor_free(b.t);
    sg_dataset_free(train);
    sg_release_memory();
    return ok ? 0 : 1;
}
