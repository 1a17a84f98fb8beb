/* Beyond the book: Newton's method with a second derivative from a second
 * backward pass through the recorded first one (create_graph). */
#include <sg_autograd.h>
#include <stdio.h>

int main(void)
{
    sg_tensor *x = sg_param(sg_scalar(2.f));
    for (int i = 0; i < 6; i++) {
        sg_scope_begin();
        sg_tensor *y = sg_sub(sg_pow(x, 4.f), sg_mul_scalar(sg_square(x), 2.f)); /* x^4 - 2x^2 */
        sg_tensor *dy, *d2y;
        if (sg_grad_of(y, &x, 1, &dy, &(sg_backward_opts){.create_graph = true}) != 0 ||
            sg_grad_of(dy, &x, 1, &d2y, NULL) != 0) {
            fprintf(stderr, "%s\n", sg_last_error());
            return 1;
        }
        printf("x = %.7f\n", sg_item(x));
        sg_data(x)[0] -= sg_item(dy) / sg_item(d2y); /* x <- x - f'(x) / f''(x) */
        sg_scope_end();
    }
    printf("x = %.7f\n", sg_item(x));
    sg_tensor_free(x);
    sg_release_memory();
    return 0;
}
