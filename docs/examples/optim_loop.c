/* docs/optim.md's usage: Adam with L2 weight decay, a cosine schedule and
 * gradient clipping, fitting y = 2x + 1 with two parameters. */
#include <sg_optim.h>
#include <math.h>
#include <stdio.h>

/* The forward pass: mean squared error of w*x + b against t. */
static sg_tensor *model_loss(sg_tensor *const *params, sg_tensor *x, sg_tensor *t)
{
    sg_tensor *err = sg_sub(sg_add(sg_mul(x, params[0]), params[1]), t);
    return sg_mean_all(sg_square(err));
}

int main(void)
{
    sg_tensor *params[2] = {sg_param(sg_zeros(SG_DIMS(1))), sg_param(sg_zeros(SG_DIMS(1)))}; /* w, b */
    int n = 2;
    sg_tensor *x = sg_from_data((const float[]){0, 1, 2, 3}, SG_DIMS(4));
    sg_tensor *t = sg_from_data((const float[]){1, 3, 5, 7}, SG_DIMS(4));

    /* params[] are persistent leaves made with sg_param(); n of them */
    sg_optim_opts o = sg_optim_defaults(SG_OPTIM_ADAM);  /* PyTorch/book defaults */
    o.lr = 0.1f;
    o.weight_decay = 1e-4f;                              /* L2, as in the book */
    sg_optim *opt = sg_optim_new(&o);
    if (!opt) {
        sg_print_error(stderr);
        return 1;
    }
    int status = 0;
    for (int epoch = 0; epoch < 300 && status == 0; epoch++) {
        sg_optim_set_lr(opt, sg_lr_cosine(0.1f, 0.0f, 300, epoch));
        sg_scope_begin();
        sg_optim_zero_grad(params, n);
        sg_tensor *loss = model_loss(params, x, t);       /* forward */
        if (!loss || sg_backward(loss, NULL) != 0) {
            sg_print_error(stderr);
            status = 1;
        }
        sg_clip_grad_norm(params, n, 5.0f);               /* optional */
        if (status == 0 && sg_optim_step(opt, params, n) != 0) { /* update */
            sg_print_error(stderr);
            status = 1;
        }
        sg_scope_end();
    }
    sg_optim_free(opt);
    float w = sg_item(params[0]), b = sg_item(params[1]);
    printf("w = %.3f, b = %.3f (want 2, 1)\n", w, b);
    if (fabsf(w - 2.f) > 0.01f || fabsf(b - 1.f) > 0.01f)
        status = 1;
    for (int i = 0; i < n; i++)
        sg_tensor_free(params[i]);
    sg_tensor_free(x);
    sg_tensor_free(t);
    sg_release_memory();
    return status;
}
