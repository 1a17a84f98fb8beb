/*
 * ch08_deep.c — the book's chapter 8: deeper networks.
 *
 *   1. The book's deep CNN (fig. 8-1): six 3x3 convolutions (16, 16, 32, 32,
 *      64, 64 channels, He weights) with ReLU and three 2x2 max poolings,
 *      then affine 50 - ReLU - dropout 0.5 - affine 10 - dropout 0.5; Adam,
 *      lr 0.001. The summary, then a short run on Fashion-MNIST (--full: the
 *      book's 20 epochs on all 60,000 images; hours on a CPU).
 *   2. Why residual connections help (8.2.4): 30 sigmoid layers, plain or with
 *      y = x + f(x). The gradient that reaches the first layer shrinks layer
 *      after layer in the plain stack; the shortcut carries it back intact.
 *      Then a residual block of convolutions, as ResNet stacks them.
 *   3. A 1x1 convolution (8.2.2, GoogLeNet) changes the channel count:
 *      (1, 64, 7, 7) -> (1, 16, 7, 7), at each pixel the same 16x64 matrix
 *      product — checked against sg_matmul.
 *   4. Half precision (8.3.4): float32 <-> float16 conversion (written out
 *      here, round to nearest even), and a trained net whose weights are
 *      stored as float16 classifies as well as in float32 (the same test
 *      accuracy, give or take an image).
 */
#include "common.h"
#include "sg_optim.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- 1. the book's deep CNN ---- */

static sg_model *deep_conv_net(uint64_t seed)
{
    sg_rng rng;
    sg_rng_seed(&rng, seed);
    sg_model *m = sg_model_new();
    const int ch[7] = {1, 16, 16, 32, 32, 64, 64};
    const int pad[6] = {1, 1, 1, 2, 1, 1}; /* conv4 pads 2, as the book: 14 -> 16 */
    char name[16];
    for (int i = 0; i < 6; i++) {
        snprintf(name, sizeof name, "conv%d", i + 1);
        sg_model_add(m, sg_conv2d_new(m, name, ch[i], ch[i + 1], 3, 1, pad[i], SG_INIT_HE, &rng));
        snprintf(name, sizeof name, "relu%d", i + 1);
        sg_model_add(m, sg_relu_new(m, name));
        if (i % 2 == 1) {
            snprintf(name, sizeof name, "pool%d", i / 2 + 1);
            sg_model_add(m, sg_maxpool2d_new(m, name, 2, 2, 0));
        }
    }
    sg_model_add(m, sg_linear_new(m, "fc1", 64 * 4 * 4, 50, SG_INIT_HE, &rng));
    sg_model_add(m, sg_relu_new(m, "relu7"));
    sg_model_add(m, sg_dropout_new(m, "drop1", 0.5f, &rng));
    sg_model_add(m, sg_linear_new(m, "fc2", 50, 10, SG_INIT_HE, &rng));
    sg_model_add(m, sg_dropout_new(m, "drop2", 0.5f, &rng));
    return demo_model_built(m, "ch08_deep");
}

static int deep_net(const demo_opts *o, const sg_dataset *train, const sg_dataset *test)
{
    printf("== the book's deep CNN (8.1) ==\n");
    sg_model *net = deep_conv_net(1);
    if (!net)
        return 1;
    sg_model_summary(net, stdout, SG_DIMS(1, 1, 28, 28));
    const int batch = o->full ? 100 : 20, iters = o->full ? 20 * train->n / 100 : 50;
    sg_optim *opt = sg_adam_new(0.001f, 0.9f, 0.999f);
    sg_loader *it = sg_loader_new(train->n, &(sg_loader_opts){.batch = batch, .shuffle = true, .seed = 2});
    printf("Adam lr 0.001, batch %d, %d iterations on %d images\n", batch, iters, train->n);
    double t0 = demo_now();
    float first_loss = 0, last_loss = 0;
    for (int i = 0; i < iters; i++) {
        const int *idx;
        int b = demo_next_batch(it, &idx);
        if (demo_train_step(net, opt, train, idx, b, true, 0.f, &last_loss) != 0)
            return 1;
        if (i == 0)
            first_loss = last_loss;
        if (i % (iters / 5) == 0 || i == iters - 1)
            printf("iteration %4d: loss %.4f\n", i, last_loss);
    }
    /* the default run tests on 300 images: a forward pass costs 9 million
     * multiply-adds per image */
    printf("loss %.4f -> %.4f\n", first_loss, last_loss);
    sg_dataset *part = sg_dataset_subset(test, 0, o->full ? test->n : 300);
    printf("test acc %.4f on %d images (%.1f s; the book: 0.9935 on MNIST after 20 epochs)\n\n",
           demo_evaluate(net, part, true), part->n, demo_now() - t0);
    sg_dataset_free(part);
    sg_loader_free(it);
    sg_optim_free(opt);
    sg_model_free(net);
    return 0;
}

/* ---- 2. residual connections ---- */

/* |dL/dW| of layers 1, 10, 20 and 30 of 30 sigmoid layers 64 -> 64 (Xavier
 * weights), plain or residual, for L = mean(y^2) on a random batch. */
static void gradient_depth(bool residual, double norms[4])
{
    sg_rng rng;
    sg_rng_seed(&rng, 3);
    sg_model *m = sg_model_new();
    char name[16];
    for (int i = 0; i < 30; i++) {
        snprintf(name, sizeof name, "block%d", i + 1);
        sg_layer *body = sg_sequential_new(m, NULL);
        snprintf(name, sizeof name, "fc%d", i + 1);
        sg_sequential_add(body, sg_linear_new(m, name, 64, 64, SG_INIT_XAVIER_BOOK, &rng));
        sg_sequential_add(body, sg_sigmoid_new(m, NULL));
        sg_model_add(m, residual ? sg_residual_new(m, NULL, body, NULL) : body);
    }
    sg_scope_begin();
    sg_tensor *x = sg_normal(&rng, 0.f, 1.f, SG_DIMS(32, 64));
    sg_tensor *loss = sg_mean_all(sg_square(sg_model_forward(m, x)));
    if (!loss || sg_backward(loss, NULL) != 0)
        fprintf(stderr, "ch08_deep: %s\n", sg_last_error());
    const int layers[4] = {1, 10, 20, 30};
    for (int k = 0; k < 4; k++) {
        snprintf(name, sizeof name, "fc%d.W", layers[k]);
        sg_tensor *W = sg_model_param(m, name);
        double s = 0;
        for (size_t i = 0; i < sg_size(W); i++)
            s += (double)sg_grad_data(W)[i] * sg_grad_data(W)[i];
        norms[k] = sqrt(s);
    }
    sg_scope_end();
    sg_model_free(m);
}

static void residual(void)
{
    printf("== residual connections (8.2.4) ==\n");
    double plain[4], res[4];
    gradient_depth(false, plain);
    gradient_depth(true, res);
    printf("|dL/dW| of 30 sigmoid layers: layer 1     layer 10    layer 20    layer 30\n");
    printf("plain    y = f(x)            %-11.3g %-11.3g %-11.3g %.3g\n", plain[0], plain[1], plain[2], plain[3]);
    printf("residual y = x + f(x)        %-11.3g %-11.3g %-11.3g %.3g\n", res[0], res[1], res[2], res[3]);
    printf("layer 1 / layer 30: plain %.3g (the gradient vanishes), residual %.3g\n", plain[0] / plain[3],
           res[0] / res[3]);

    sg_rng rng;
    sg_rng_seed(&rng, 4);
    sg_model *m = sg_model_new();
    sg_layer *body = sg_sequential_new(m, "body");
    sg_sequential_add(body, sg_conv2d_new(m, "conv1", 16, 16, 3, 1, 1, SG_INIT_HE, &rng));
    sg_sequential_add(body, sg_batchnorm_new(m, "bn1", 16));
    sg_sequential_add(body, sg_relu_new(m, "relu1"));
    sg_sequential_add(body, sg_conv2d_new(m, "conv2", 16, 16, 3, 1, 1, SG_INIT_HE, &rng));
    sg_sequential_add(body, sg_batchnorm_new(m, "bn2", 16));
    sg_model_add(m, sg_residual_new(m, "res1", body, NULL)); /* x + body(x) */
    sg_model_add(m, sg_relu_new(m, "relu2"));
    printf("a residual block of convolutions, relu(x + bn(conv(relu(bn(conv(x)))))):\n");
    sg_model_summary(m, stdout, SG_DIMS(1, 16, 14, 14));
    printf("\n");
    sg_model_free(m);
}

/* ---- 3. the 1x1 convolution ---- */

static void conv1x1(void)
{
    printf("== a 1x1 convolution changes the number of channels (8.2.2) ==\n");
    sg_rng rng;
    sg_rng_seed(&rng, 5);
    sg_scope_begin();
    sg_tensor *x = sg_normal(&rng, 0.f, 1.f, SG_DIMS(1, 64, 7, 7));
    sg_tensor *W = sg_normal(&rng, 0.f, 0.1f, SG_DIMS(16, 64, 1, 1));
    sg_tensor *y = sg_conv2d(x, W, NULL, 1, 0);
    /* the same as W (16, 64) @ x (64, 49): one matrix product for all pixels */
    sg_tensor *z = sg_matmul(sg_reshape(W, SG_DIMS(16, 64)), sg_reshape(x, SG_DIMS(64, 49)));
    double diff = 0;
    for (size_t i = 0; i < sg_size(z); i++)
        diff = fmax(diff, fabs((double)sg_data(y)[i] - sg_data(z)[i]));
    printf("x (1, 64, 7, 7) -> 1x1 conv with 16 filters -> (%d, %d, %d, %d)\n", sg_dim(y, 0), sg_dim(y, 1),
           sg_dim(y, 2), sg_dim(y, 3));
    printf("max |conv1x1 - W @ x| = %.3g\n", diff);
    printf("weights: 1x1 conv %d, 3x3 conv %d\n\n", 16 * 64, 16 * 64 * 9);
    sg_scope_end();
}

/* ---- 4. float16 ---- */

/* float32 -> IEEE 754 binary16, round to nearest, ties to even. */
static uint16_t float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t exp = (x >> 23) & 0xff, man = x & 0x7fffff;
    if (exp == 0xff) /* inf or nan */
        return sign | 0x7c00 | (man ? 0x200 : 0);
    int e = (int)exp - 127 + 15; /* rebias */
    if (e >= 31)                 /* too large: inf */
        return sign | 0x7c00;
    if (e <= 0) { /* subnormal half (or zero) */
        if (e < -10)
            return sign;
        man |= 0x800000; /* the implicit 1 */
        int shift = 14 - e;
        uint32_t half = man >> shift, rest = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rest > mid || (rest == mid && (half & 1)))
            half++;
        return sign | (uint16_t)half;
    }
    uint32_t half = ((uint32_t)e << 10) | (man >> 13), rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1)))
        half++; /* may carry into the exponent, up to inf: still right */
    return sign | (uint16_t)half;
}

/* binary16 -> float32 (exact). */
static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, x;
    if (exp == 0x1f) {
        x = sign | 0x7f800000 | (man << 13);
    } else if (exp == 0) {
        float v = ldexpf((float)man, -24); /* subnormal (or zero) */
        return sign ? -v : v;
    } else {
        x = sign | ((exp - 15 + 127) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

static float to_half_and_back(float f)
{
    return half_to_float(float_to_half(f));
}

static int half_precision(const demo_opts *o, const sg_dataset *train, const sg_dataset *test)
{
    printf("== half precision: float16 storage of trained weights (8.3.4) ==\n");
    const float samples[6] = {1.f / 3.f, 65504.f, 70000.f, 5.9604645e-8f, 1e-8f, -2.5f};
    for (int i = 0; i < 6; i++)
        printf("half(%.8g) = %.12g   (bits 0x%04x)\n", samples[i], to_half_and_back(samples[i]),
               float_to_half(samples[i]));

    /* train a 784-100-100-10 net briefly in float32 */
    const int hidden[2] = {100, 100};
    sg_model *net = demo_mlp(784, hidden, 2, 10, &(demo_mlp_opts){.init = SG_INIT_HE, .seed = 6});
    sg_optim *opt = sg_adam_new(0.001f, 0.9f, 0.999f);
    sg_loader *it = sg_loader_new(train->n, &(sg_loader_opts){.batch = 100, .shuffle = true, .seed = 7});
    const int iters = o->full ? 6000 : 600;
    for (int i = 0; i < iters; i++) {
        const int *idx;
        int b = demo_next_batch(it, &idx);
        if (demo_train_step(net, opt, train, idx, b, false, 0.f, NULL) != 0)
            return 1;
    }
    double acc32 = demo_evaluate(net, test, false);
    /* store every weight as float16 and read it back */
    sg_tensor *params[8];
    int np = sg_model_trainable(net, params, 8);
    double max_rel = 0;
    size_t n_values = 0, n_tiny = 0;
    for (int k = 0; k < np; k++) {
        float *w = sg_data(params[k]);
        for (size_t i = 0; i < sg_size(params[k]); i++) {
            float h = to_half_and_back(w[i]);
            if (fabsf(w[i]) >= 6.1035156e-5f) /* 2^-14: float16's smallest normal number */
                max_rel = fmax(max_rel, fabs((double)h - w[i]) / fabs((double)w[i]));
            else
                n_tiny++; /* kept with an absolute error <= 2^-25 */
            w[i] = h;
        }
        n_values += sg_size(params[k]);
    }
    double acc16 = demo_evaluate(net, test, false);
    printf("784-100-100-10 net, %d Adam steps: test acc float32 %.4f, float16 weights %.4f (%d images)\n", iters,
           acc32, acc16, test->n);
    printf("largest relative change of a weight %.3g (float16 keeps 11 significant bits: <= 2^-11 = %.3g);\n"
           "%zu of %zu weights are below 2^-14 and keep fewer bits (absolute error <= 2^-25)\n",
           max_rel, ldexp(1.0, -11), n_tiny, n_values);
    printf("storage: %zu bytes in float32, %zu in float16\n\n", n_values * 4, n_values * 2);
    sg_loader_free(it);
    sg_optim_free(opt);
    sg_model_free(net);
    return 0;
}

int main(int argc, char **argv)
{
    demo_opts o = demo_args(argc, argv, "A deep CNN, residual blocks, 1x1 convolutions and float16 (chapter 8).");
    (void)o.plot; /* no pictures in this chapter */
    sg_dataset *train = demo_fashion(true, o.full ? 60000 : 10000);
    sg_dataset *test = demo_fashion(false, o.full ? 10000 : 1000);
    if (!train || !test)
        return 1;
    int rc = deep_net(&o, train, test);
    residual();
    conv1x1();
    rc = rc || half_precision(&o, train, test);
    sg_dataset_free(train);
    sg_dataset_free(test);
    sg_release_memory();
    return rc;
}
