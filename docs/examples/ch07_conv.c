/* Chapter 7: convolution and pooling on the book's numbers, and the
 * SimpleConvNet as a model. */
#include <sg_autograd.h>
#include <sg_nn.h>
#include <stdio.h>

int main(void)
{
    sg_scope_begin();
    sg_tensor *x = sg_from_data((float[]){1, 2, 3, 0, 0, 1, 2, 3, 3, 0, 1, 2, 2, 3, 0, 1}, SG_DIMS(1, 1, 4, 4));
    sg_tensor *W = sg_from_data((float[]){2, 0, 1, 0, 1, 2, 1, 0, 2}, SG_DIMS(1, 1, 3, 3));
    sg_tensor *y = sg_conv2d(x, W, NULL, 1, 0);  /* (1, 1, 2, 2) */
    sg_tensor *p = sg_max_pool2d(x, 2, 2, 0);    /* (1, 1, 2, 2) */
    if (!y || !p) {
        fprintf(stderr, "%s\n", sg_last_error());
        return 1;
    }
    const float *v = sg_data(y), *q = sg_data(p);
    printf("conv: [[%g %g] [%g %g]]\n", v[0], v[1], v[2], v[3]);  /* [[15 16] [6 15]] */
    printf("pool: [[%g %g] [%g %g]]\n", q[0], q[1], q[2], q[3]);  /* [[2 3] [3 2]] */
    sg_scope_end();

    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_model *m = sg_model_new(); /* conv - relu - pool - affine - relu - affine */
    sg_model_add(m, sg_conv2d_new(m, "conv1", 1, 30, 5, 1, 0, SG_INIT_HE, &rng));
    sg_model_add(m, sg_relu_new(m, "relu1"));
    sg_model_add(m, sg_maxpool2d_new(m, "pool1", 2, 2, 0));
    sg_model_add(m, sg_linear_new(m, "fc1", 30 * 12 * 12, 100, SG_INIT_HE, &rng));
    sg_model_add(m, sg_relu_new(m, "relu2"));
    sg_model_add(m, sg_linear_new(m, "fc2", 100, 10, SG_INIT_HE, &rng));
    if (sg_model_summary(m, stdout, SG_DIMS(1, 1, 28, 28)) != 0) {
        fprintf(stderr, "%s\n", sg_last_error());
        return 1;
    }
    sg_model_free(m);
    sg_release_memory();
    return 0;
}
