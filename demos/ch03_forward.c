/*
 * ch03_forward.c — the book's chapter 3: activation functions, the forward
 * pass of a 3-layer network with the book's fixed weights, and softmax.
 *
 *     step(x)    = 1 if x > 0 else 0
 *     sigmoid(x) = 1 / (1 + exp(-x))
 *     relu(x)    = max(x, 0)
 *     softmax(a) = exp(a - max a) / sum(exp(a - max a))
 *
 * Each is written here from the engine's primitives, as the book writes them
 * with NumPy. The network (init_network / forward in the book):
 *
 *     a1 = x W1 + b1, z1 = sigmoid(a1)     x (2) -> (3)
 *     a2 = z1 W2 + b2, z2 = sigmoid(a2)       (3) -> (2)
 *     y  = z2 W3 + b3                         (2) -> (2)   = [0.31682708 0.69627909]
 *
 * Then the shapes of a batch of 100 images through the book's MNIST network.
 * Values print with float32's 7 significant digits, the book's (float64)
 * below them. Picture: activations.png (step, sigmoid and relu on [-5, 5]).
 */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static sg_tensor *step(sg_tensor *x) /* y = (x > 0) */
{
    return sg_gt(x, sg_scalar(0.f));
}

static sg_tensor *sigmoid(sg_tensor *x) /* y = 1 / (1 + exp(-x)) */
{
    return sg_rdiv_scalar(1.f, sg_add_scalar(sg_exp(sg_neg(x)), 1.f));
}

static sg_tensor *relu(sg_tensor *x) /* y = max(x, 0) */
{
    return sg_relu(x);
}

/* exp(a) / sum(exp(a)): overflows for large a. */
static sg_tensor *softmax_naive(sg_tensor *a)
{
    sg_tensor *e = sg_exp(a);
    return sg_div(e, sg_sum_all(e));
}

/* exp(a - max a) / sum(exp(a - max a)): the same values, no overflow. */
static sg_tensor *softmax(sg_tensor *a)
{
    sg_tensor *e = sg_exp(sg_sub(a, sg_max(a, NULL, 0, false)));
    return sg_div(e, sg_sum_all(e));
}

static sg_tensor *vec(int n, const float *v)
{
    return sg_from_data(v, SG_DIMS(n));
}

static sg_tensor *mat(int r, int c, const float *v)
{
    return sg_from_data(v, SG_DIMS(r, c));
}

/* Print t's values with float32's 7 significant digits, and the book's line
 * below them when there is one. */
static void show(const char *label, sg_tensor *t, const char *book)
{
    printf("%s[", label);
    const float *p = sg_data(t);
    for (size_t i = 0; i < sg_size(t); i++)
        printf(i ? " %.7g" : "%.7g", isnan(p[i]) ? NAN : p[i]); /* no "-nan" */
    printf("]\n");
    if (book)
        printf("%*s%s   (the book)\n", (int)strlen(label), "", book);
}

typedef struct network {
    sg_tensor *W1, *b1, *W2, *b2, *W3, *b3;
} network;

static network init_network(void)
{
    network n;
    n.W1 = mat(2, 3, (float[]){0.1f, 0.3f, 0.5f, 0.2f, 0.4f, 0.6f});
    n.b1 = vec(3, (float[]){0.1f, 0.2f, 0.3f});
    n.W2 = mat(3, 2, (float[]){0.1f, 0.4f, 0.2f, 0.5f, 0.3f, 0.6f});
    n.b2 = vec(2, (float[]){0.1f, 0.2f});
    n.W3 = mat(2, 2, (float[]){0.1f, 0.3f, 0.2f, 0.4f});
    n.b3 = vec(2, (float[]){0.1f, 0.2f});
    return n;
}

/* x (1, 2) -> y (1, 2); prints the first layer like the book. */
static sg_tensor *forward(const network *n, sg_tensor *x)
{
    sg_tensor *a1 = sg_add(sg_matmul(x, n->W1), n->b1);
    sg_tensor *z1 = sigmoid(a1);
    show("  A1 = x W1 + b1   = ", a1, "[0.3 0.7 1.1]");
    show("  Z1 = sigmoid(A1) = ", z1, "[0.57444252 0.66818777 0.75026011]");
    sg_tensor *z2 = sigmoid(sg_add(sg_matmul(z1, n->W2), n->b2));
    show("  Z2 = sigmoid(Z1 W2 + b2) = ", z2, NULL);
    return sg_add(sg_matmul(z2, n->W3), n->b3); /* identity output */
}

static void draw(const demo_opts *o)
{
    FILE *gp = plot_begin(o, "activations");
    if (!gp)
        return;
    sg_scope_begin();
    sg_tensor *x = sg_arange(-5.f, 5.f, 0.01f);
    sg_tensor *y[3] = {step(x), sigmoid(x), relu(x)};
    plot_data_begin(gp, "act");
    for (size_t i = 0; i < sg_size(x); i++)
        fprintf(gp, "%g %g %g %g\n", sg_data(x)[i], sg_data(y[0])[i], sg_data(y[1])[i], sg_data(y[2])[i]);
    plot_data_end(gp);
    fprintf(gp, "set multiplot layout 1,2\nset grid\nset xlabel 'x'\n"
                "set yrange [-0.1:1.1]\nset title 'step and sigmoid (fig. 3-8)'\n"
                "plot $act using 1:2 with lines dt 2 lw 2 title 'step', "
                "$act using 1:3 with lines lw 2 title 'sigmoid'\n"
                "set yrange [-1:5.5]\nset title 'ReLU (fig. 3-9)'\n"
                "plot $act using 1:4 with lines lw 2 title 'relu'\nunset multiplot\n");
    sg_scope_end();
    plot_end(gp, o, "activations");
}

/* The book's MNIST network has layers 784 -> 50 -> 100 -> 10; a batch of
 * 100 images flows through it as one (100, 784) matrix. (Its trained
 * weights, sample_weight.pkl, are not shipped: the weights here are random,
 * so only the shapes, not the 0.9352 accuracy, are the book's.) */
static void batch_shapes(void)
{
    sg_dataset *d = demo_fashion(false, 100);
    if (!d)
        return;
    sg_scope_begin();
    sg_tensor *x = sg_dataset_images(d, NULL, 100, NULL);
    sg_tensor *W1 = sg_normal(NULL, 0.f, 0.1f, SG_DIMS(784, 50));
    sg_tensor *W2 = sg_normal(NULL, 0.f, 0.1f, SG_DIMS(50, 100));
    sg_tensor *W3 = sg_normal(NULL, 0.f, 0.1f, SG_DIMS(100, 10));
    sg_tensor *z1 = sigmoid(sg_matmul(x, W1)), *z2 = sigmoid(sg_matmul(z1, W2));
    sg_tensor *y = sg_matmul(z2, W3);
    char s[5][32];
    printf("X %s @ W1 %s -> %s @ W2 %s -> %s @ W3 (100,10) -> Y %s\n", sg_shape_str(x, s[0], 32),
           sg_shape_str(W1, s[1], 32), sg_shape_str(z1, s[2], 32), sg_shape_str(W2, s[3], 32),
           sg_shape_str(z2, s[4], 32), sg_shape_str(y, (char[32]){0}, 32));
    printf("  (the book: X (100, 784), W1 (784, 50), W2 (50, 100), W3 (100, 10), Y (100, 10))\n");
    sg_scope_end();
    sg_dataset_free(d);
}

int main(int argc, char **argv)
{
    demo_opts o = demo_args(argc, argv, "Activations, the 3-layer forward pass and softmax of chapter 3.");
    sg_scope_begin();

    printf("== activation functions (3.2) ==\n");
    sg_tensor *x = vec(3, (float[]){-1.f, 1.f, 2.f});
    show("x          = ", x, NULL);
    show("step(x)    = ", step(x), "[0 1 1]");
    show("sigmoid(x) = ", sigmoid(x), "[0.26894142 0.73105858 0.88079708]");
    show("relu(x)    = ", relu(x), NULL);
    draw(&o);

    printf("\n== matrix product (3.3) ==\n");
    sg_tensor *X = mat(1, 2, (float[]){1.f, 2.f});
    sg_tensor *W = mat(2, 3, (float[]){1.f, 3.f, 5.f, 2.f, 4.f, 6.f});
    show("X W = [1 2] [[1 3 5] [2 4 6]] = ", sg_matmul(X, W), "[ 5 11 17]");

    printf("\n== a 3-layer network (3.4) ==\n");
    network net = init_network();
    sg_tensor *y = forward(&net, mat(1, 2, (float[]){1.0f, 0.5f}));
    if (!y) {
        fprintf(stderr, "ch03_forward: %s\n", sg_last_error());
        return 1;
    }
    show("y = forward(network, [1.0 0.5]) = ", y, "[0.31682708 0.69627909]");

    printf("\n== softmax (3.5) ==\n");
    sg_tensor *a = vec(3, (float[]){0.3f, 2.9f, 4.0f});
    sg_tensor *p = softmax(a);
    show("softmax([0.3 2.9 4.0]) = ", p, "[0.01821127 0.24519181 0.73659691]");
    printf("  sum = %.8g\n", sg_item(sg_sum_all(p)));
    sg_tensor *big = vec(3, (float[]){1010.f, 1000.f, 990.f});
    printf("a = [1010 1000 990]:\n");
    show("naive  exp(a)/sum(exp(a))         = ", softmax_naive(big), "[nan nan nan]");
    printf("  (exp(1010) overflows float32 to inf, and inf/inf is nan)\n");
    show("stable exp(a-max)/sum(exp(a-max)) = ", softmax(big),
         "[9.99954600e-01 4.53978686e-05 2.06106005e-09]");

    printf("\n== batch processing (3.6.3) ==\n");
    batch_shapes();

    sg_scope_end();
    sg_release_memory();
    return 0;
}
