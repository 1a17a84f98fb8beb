/* Chapter 2: perceptrons. y = 1 if x @ w + b > 0, else 0, for the four
 * inputs at once; XOR as AND(NAND(x), OR(x)). */
#include <sg_autograd.h>
#include <stdio.h>

static sg_tensor *gate(sg_tensor *x, float w1, float w2, float b)
{
    sg_tensor *w = sg_from_data((float[]){w1, w2}, SG_DIMS(2, 1));
    return sg_gt(sg_add_scalar(sg_matmul(x, w), b), sg_scalar(0.f)); /* (4, 1) */
}

int main(void)
{
    sg_scope_begin();
    sg_tensor *x = sg_from_data((float[]){0, 0, 1, 0, 0, 1, 1, 1}, SG_DIMS(4, 2));
    sg_tensor *s1 = gate(x, -0.5f, -0.5f, 0.7f);                   /* NAND */
    sg_tensor *s2 = gate(x, 0.5f, 0.5f, -0.2f);                    /* OR */
    sg_tensor *s = sg_concat((sg_tensor *[]){s1, s2}, 2, 1);      /* (4, 2) */
    sg_tensor *y = gate(s, 0.5f, 0.5f, -0.7f);                     /* AND */
    if (!y) {
        fprintf(stderr, "%s\n", sg_last_error());
        return 1;
    }
    for (int i = 0; i < 4; i++)
        printf("XOR(%g, %g) = %g\n", sg_data(x)[2 * i], sg_data(x)[2 * i + 1], sg_data(y)[i]);
    sg_scope_end();
    sg_release_memory();
    return 0;
}
