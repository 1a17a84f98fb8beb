/* Chapter 6: a model, an optimizer and a loader: learn CS231n's spiral
 * (3 classes of 100 points) with a 2-100-100-3 ReLU net and Adam. */
#include <sg_autograd.h>
#include <sg_datasets.h>
#include <sg_nn.h>
#include <sg_optim.h>
#include <stdio.h>

int main(void)
{
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_tensor *x, *t; /* x (300, 2), t (300) class indices; persistent */
    sg_model *m = sg_model_new();
    sg_model_add(m, sg_linear_new(m, "fc1", 2, 100, SG_INIT_HE, &rng));
    sg_model_add(m, sg_relu_new(m, "relu1"));
    sg_model_add(m, sg_linear_new(m, "fc2", 100, 100, SG_INIT_HE, &rng));
    sg_model_add(m, sg_relu_new(m, "relu2"));
    sg_model_add(m, sg_linear_new(m, "fc3", 100, 3, SG_INIT_HE, &rng));
    sg_optim *opt = sg_adam_new(0.01f, 0.9f, 0.999f);
    sg_loader *it = sg_loader_new(300, &(sg_loader_opts){.batch = 30, .shuffle = true, .seed = 2});
    if (sg_spiral(100, 3, false, &rng, &x, &t) != 0 || !m || sg_has_error() || !opt || !it) {
        fprintf(stderr, "%s\n", sg_last_error());
        return 1;
    }
    sg_tensor *params[8];
    int np = sg_model_trainable(m, params, 8);
    for (int epoch = 0; epoch < 100; epoch++) {
        const int *idx;
        int b;
        while ((b = sg_loader_next(it, &idx)) > 0) {
            sg_scope_begin();
            sg_optim_zero_grad(params, np);
            sg_tensor *y = sg_model_forward(m, sg_take_rows(x, idx, b));
            sg_tensor *loss = sg_softmax_cross_entropy(y, sg_take_rows(t, idx, b));
            if (!loss || sg_backward(loss, NULL) != 0 || sg_optim_step(opt, params, np) != 0) {
                fprintf(stderr, "%s\n", sg_last_error());
                return 1;
            }
            sg_scope_end();
        }
    }
    sg_scope_begin();
    float acc = sg_accuracy(sg_model_forward(m, x), t);
    printf("training accuracy %.2f\n", acc);
    sg_scope_end();
    sg_loader_free(it);
    sg_optim_free(opt);
    sg_model_free(m);
    sg_tensor_free(x);
    sg_tensor_free(t);
    sg_release_memory();
    return acc > 0.9f ? 0 : 1;
}
