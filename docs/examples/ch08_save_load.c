/* Chapter 8: a residual block, and saving a trained model's weights to a
 * safetensors file and loading them into a fresh model. */
#include <sg_autograd.h>
#include <sg_nn.h>
#include <stdio.h>

static sg_model *make(uint64_t seed)
{
    sg_rng rng;
    sg_rng_seed(&rng, seed);
    sg_model *m = sg_model_new();
    sg_layer *body = sg_sequential_new(m, "body"); /* y = x + relu(x W1 + b1) W2 + b2 */
    sg_sequential_add(body, sg_linear_new(m, "fc1", 8, 8, SG_INIT_HE, &rng));
    sg_sequential_add(body, sg_relu_new(m, "relu"));
    sg_sequential_add(body, sg_linear_new(m, "fc2", 8, 8, SG_INIT_HE, &rng));
    sg_model_add(m, sg_residual_new(m, "res", body, NULL));
    return m;
}

int main(void)
{
    sg_model *a = make(1), *b = make(2); /* different weights */
    if (!a || !b || sg_has_error() || sg_model_save(a, "res.safetensors") != 0 ||
        sg_model_load(b, "res.safetensors") != 0) {
        fprintf(stderr, "%s\n", sg_last_error());
        return 1;
    }
    sg_scope_begin();
    sg_tensor *x = sg_ones(SG_DIMS(1, 8));
    sg_tensor *d = sg_sub(sg_model_forward(a, x), sg_model_forward(b, x));
    printf("%zu weights saved and loaded; largest difference of the outputs: %g\n",
           sg_model_num_params(a, false), sg_item(sg_max(sg_square(d), NULL, 0, false)));
    sg_scope_end();
    sg_model_free(a);
    sg_model_free(b);
    remove("res.safetensors");
    sg_release_memory();
    return 0;
}
