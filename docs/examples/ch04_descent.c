/* Chapter 4: gradient descent on f(x0, x1) = x0^2 + x1^2 from (-3, 4),
 * with the gradient from backward instead of numerical differences. */
#include <sg_autograd.h>
#include <stdio.h>

int main(void)
{
    sg_tensor *x = sg_param(sg_from_data((float[]){-3.f, 4.f}, SG_DIMS(2))); /* persistent */
    const float lr = 0.1f;
    for (int step = 0; step < 100; step++) {
        sg_scope_begin();                         /* the step's temporaries */
        sg_zero_grad(x);                          /* gradients accumulate */
        sg_tensor *f = sg_sum_all(sg_square(x));  /* x0^2 + x1^2 */
        if (!f || sg_backward(f, NULL) != 0) {
            fprintf(stderr, "%s\n", sg_last_error());
            return 1;
        }
        if (step == 0)
            printf("gradient at (-3, 4): [%g %g]\n", sg_grad_data(x)[0], sg_grad_data(x)[1]);
        for (int i = 0; i < 2; i++)
            sg_data(x)[i] -= lr * sg_grad_data(x)[i]; /* x <- x - lr * grad */
        sg_scope_end();
    }
    printf("after 100 steps: [%.4g %.4g]\n", sg_data(x)[0], sg_data(x)[1]); /* the book: [-6.1e-10 8.1e-10] */
    sg_tensor_free(x);
    sg_release_memory();
    return 0;
}
