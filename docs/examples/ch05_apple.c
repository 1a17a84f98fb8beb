/* Chapter 5: the book's apple: price = apple * num * tax, then backward. */
#include <sg_autograd.h>
#include <stdio.h>

int main(void)
{
    sg_scope_begin();
    sg_tensor *apple = sg_param(sg_scalar(100.f));
    sg_tensor *num = sg_param(sg_scalar(2.f));
    sg_tensor *tax = sg_param(sg_scalar(1.1f));
    sg_tensor *price = sg_mul(sg_mul(apple, num), tax);
    if (!price || sg_backward(price, NULL) != 0) {
        fprintf(stderr, "%s\n", sg_last_error());
        return 1;
    }
    printf("price %g\n", sg_item(price));                     /* 220 */
    printf("d apple %g, d num %g, d tax %g\n", sg_grad_data(apple)[0], sg_grad_data(num)[0],
           sg_grad_data(tax)[0]);                              /* 2.2, 110, 200 */
    sg_scope_end();
    sg_release_memory();
    return 0;
}
