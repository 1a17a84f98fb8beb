/* Chapter 3: the forward pass of the book's 3-layer network. */
#include <sg_autograd.h>
#include <sg_nn.h>
#include <stdio.h>

int main(void)
{
    sg_scope_begin();
    sg_tensor *x = sg_from_data((float[]){1.0f, 0.5f}, SG_DIMS(1, 2));
    sg_tensor *W1 = sg_from_data((float[]){0.1f, 0.3f, 0.5f, 0.2f, 0.4f, 0.6f}, SG_DIMS(2, 3));
    sg_tensor *b1 = sg_from_data((float[]){0.1f, 0.2f, 0.3f}, SG_DIMS(3));
    sg_tensor *W2 = sg_from_data((float[]){0.1f, 0.4f, 0.2f, 0.5f, 0.3f, 0.6f}, SG_DIMS(3, 2));
    sg_tensor *b2 = sg_from_data((float[]){0.1f, 0.2f}, SG_DIMS(2));
    sg_tensor *W3 = sg_from_data((float[]){0.1f, 0.3f, 0.2f, 0.4f}, SG_DIMS(2, 2));
    sg_tensor *b3 = sg_from_data((float[]){0.1f, 0.2f}, SG_DIMS(2));

    sg_tensor *z1 = sg_sigmoid(sg_linear(x, W1, b1)); /* sigmoid(x W1 + b1) */
    sg_tensor *z2 = sg_sigmoid(sg_linear(z1, W2, b2));
    sg_tensor *y = sg_linear(z2, W3, b3);            /* identity output */
    if (!y) {
        fprintf(stderr, "%s\n", sg_last_error());
        return 1;
    }
    printf("y = [%.7f %.7f]\n", sg_data(y)[0], sg_data(y)[1]); /* the book: [0.31682708 0.69627909] */
    sg_tensor *p = sg_softmax(sg_from_data((float[]){1010, 1000, 990}, SG_DIMS(3)));
    printf("softmax([1010 1000 990]) = [%.6g %.6g %.6g]\n", sg_data(p)[0], sg_data(p)[1], sg_data(p)[2]);
    sg_scope_end();
    sg_release_memory();
    return 0;
}
