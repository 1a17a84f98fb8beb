/* Chapter 5: the gradient check of a function of your own, here a
 * two-layer net's loss as a function of its four parameters. */
#include <sg_autograd.h>
#include <sg_nn.h>
#include <stdio.h>

typedef struct data {
    sg_tensor *x; /* (5, 4) inputs */
    int labels[5];
} data;

static sg_tensor *loss_fn(sg_tensor *const *p, int n, void *ctx)
{
    (void)n;
    data *d = ctx;
    sg_tensor *h = sg_sigmoid(sg_linear(d->x, p[0], p[1])); /* affine - sigmoid */
    return sg_softmax_cross_entropy_labels(sg_linear(h, p[2], p[3]), d->labels, 5);
}

int main(void)
{
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_scope_begin();
    data d = {sg_normal(&rng, 0.f, 1.f, SG_DIMS(5, 4)), {0, 1, 2, 1, 0}};
    sg_tensor *p[4] = {sg_param(sg_normal(&rng, 0.f, 0.5f, SG_DIMS(4, 6))), sg_param(sg_zeros(SG_DIMS(6))),
                       sg_param(sg_normal(&rng, 0.f, 0.5f, SG_DIMS(6, 3))), sg_param(sg_zeros(SG_DIMS(3)))};
    sg_gradcheck_report report;
    bool ok = sg_gradcheck(loss_fn, p, 4, &d, NULL, &report);
    printf("%s\n", report.message);
    sg_scope_end();
    sg_release_memory();
    return ok ? 0 : 1;
}
