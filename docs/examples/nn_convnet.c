/* docs/nn.md's example: the book's SimpleConvNet as a model, a few
 * training steps on random images, save; then a residual block. */
#include <sg_nn.h>
#include <sg_optim.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_model *m = sg_model_new();                        /* no scope open */
    sg_model_add(m, sg_conv2d_new(m, "conv1", 1, 30, 5, 1, 0, SG_INIT_HE, &rng));
    sg_model_add(m, sg_relu_new(m, "relu1"));
    sg_model_add(m, sg_maxpool2d_new(m, "pool1", 2, 2, 0));
    sg_model_add(m, sg_linear_new(m, "affine1", 4320, 100, SG_INIT_HE, &rng));
    sg_model_add(m, sg_relu_new(m, "relu2"));
    sg_model_add(m, sg_linear_new(m, "affine2", 100, 10, SG_INIT_HE, &rng));
    if (sg_has_error()) {                                /* one check for the chain */
        sg_print_error(stderr);
        sg_model_free(m);
        return 1;
    }
    sg_model_summary(m, stdout, SG_DIMS(1, 1, 28, 28));

    int n = sg_model_trainable(m, NULL, 0);              /* for an optimizer */
    sg_tensor **params = malloc(n * sizeof *params);
    sg_model_trainable(m, params, n);
    sg_optim *opt = sg_adam_new(0.001f, 0.9f, 0.999f);

    enum { batch = 8 };
    int labels[batch] = {0, 1, 2, 3, 4, 5, 6, 7};
    int status = 0;
    for (int step = 0; step < 3 && status == 0; step++) { /* one training step */
        sg_scope_begin();
        sg_tensor *x = sg_uniform(&rng, 0.f, 1.f, SG_DIMS(batch, 1, 28, 28));
        sg_optim_zero_grad(params, n);
        sg_tensor *loss = sg_softmax_cross_entropy_labels(sg_model_forward(m, x), labels, batch);
        if (!loss || sg_backward(loss, NULL) != 0 || sg_optim_step(opt, params, n) != 0) {
            sg_print_error(stderr);
            status = 1;
        } else {
            printf("step %d: loss %.4f\n", step, sg_item(loss));
        }
        sg_scope_end();
    }
    sg_model_set_training(m, false);                     /* dropout off, BN running stats */
    if (status == 0 && sg_model_save(m, "convnet.safetensors") != 0) {
        sg_print_error(stderr);
        status = 1;
    }
    sg_optim_free(opt);
    free(params);
    sg_model_free(m);

    /* A residual block: y = relu(body(x) + x) */
    m = sg_model_new();
    sg_layer *body = sg_sequential_new(m, "block1");
    sg_sequential_add(body, sg_conv2d_new(m, "block1.conv1", 16, 16, 3, 1, 1, SG_INIT_HE, &rng));
    sg_sequential_add(body, sg_batchnorm_new(m, "block1.bn1", 16));
    sg_sequential_add(body, sg_relu_new(m, NULL));
    sg_sequential_add(body, sg_conv2d_new(m, "block1.conv2", 16, 16, 3, 1, 1, SG_INIT_HE, &rng));
    sg_model_add(m, sg_residual_new(m, "res1", body, NULL));
    sg_model_add(m, sg_relu_new(m, NULL));
    if (sg_has_error() || sg_model_summary(m, stdout, SG_DIMS(2, 16, 8, 8)) != 0) {
        sg_print_error(stderr);
        status = 1;
    }
    sg_model_free(m);
    sg_release_memory();
    return status;
}
