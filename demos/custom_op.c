/*
 * custom_op.c — beyond the book: a primitive of your own.
 *
 * swish(x) = x * sigmoid(x) (Ramachandran et al. 2017, "Searching for
 * Activation Functions"; SiLU in PyTorch) added from outside the library
 * as one op, the way torch.autograd.Function and DeZero's Function do it:
 *
 *   forward   a plain loop over the input's values (float32 or float64);
 *   backward  its derivative by hand, written with sg_ ops:
 *                 swish'(x) = s + x s (1 - s),   s = sigmoid(x)
 *             so a backward pass records it and it can be differentiated
 *             again (sg_gradgradcheck, Newton's method).
 *
 * The op is recorded as one node named "swish": the trace and the DOT
 * picture show it, and sg_gradcheck compares its backward with central
 * differences. The same op with a deliberately wrong backward (the factor
 * (1 - s) forgotten) fails, and the report names the worst element.
 */
#include "common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the op ---- */

/* y = x / (1 + exp(-x)) elementwise, in the input's dtype. */
static sg_tensor *swish_forward(sg_tensor *const *x, int n, void *ctx)
{
    (void)n, (void)ctx;
    sg_tensor *y = sg_zeros_like(x[0]);
    if (!y)
        return NULL;
    if (sg_dtype_of(y) == SG_FLOAT64) {
        const double *in = sg_data64(x[0]);
        double *out = sg_data64(y);
        for (size_t i = 0; i < sg_size(y); i++)
            out[i] = in[i] / (1.0 + exp(-in[i]));
    } else {
        const float *in = sg_data(x[0]);
        float *out = sg_data(y);
        for (size_t i = 0; i < sg_size(y); i++)
            out[i] = in[i] / (1.f + expf(-in[i]));
    }
    return y;
}

/* dx = dy * (s + x s (1 - s)), s = sigmoid(x), built from ops on x. */
static void swish_backward(sg_tensor *const *x, int n, sg_tensor *y, sg_tensor *dy, sg_tensor **dx, void *ctx)
{
    (void)n, (void)y, (void)ctx;
    sg_tensor *s = sg_sigmoid(x[0]);
    sg_tensor *one_minus_s = sg_sub(sg_ones_like(s), s);
    dx[0] = sg_mul(dy, sg_add(s, sg_mul(x[0], sg_mul(s, one_minus_s))));
}

static const sg_custom_op swish_op = {
    .name = "swish", .n_inputs = 1, .forward = swish_forward, .backward = swish_backward};

/* The same derivative with the factor (1 - s) forgotten: s + x s. */
static void swish_backward_wrong(sg_tensor *const *x, int n, sg_tensor *y, sg_tensor *dy, sg_tensor **dx,
                                 void *ctx)
{
    (void)n, (void)y, (void)ctx;
    sg_tensor *s = sg_sigmoid(x[0]);
    dx[0] = sg_mul(dy, sg_add(s, sg_mul(x[0], s)));
}

static const sg_custom_op swish_wrong_op = {
    .name = "swish_wrong", .n_inputs = 1, .forward = swish_forward, .backward = swish_backward_wrong};

/* ---- checking it ---- */

/* gradcheck's view: the sum of the op over x, so the report's analytic and
 * numeric values are the derivative at the worst x itself. */
static sg_tensor *summed(sg_tensor *const *in, int n, void *ctx)
{
    return sg_sum_all(sg_custom_apply(ctx, in, n, NULL));
}

static void check(const char *what, const sg_custom_op *op, sg_tensor *x)
{
    sg_gradcheck_report rep;
    bool ok = sg_gradcheck(summed, &x, 1, (void *)op, NULL, &rep);
    sg_clear_error(); /* a failed check records its message too */
    printf("%s: %s\n  %s\n", what, ok ? "passed" : "FAILED", rep.message);
}

int main(int argc, char **argv)
{
    demo_args(argc, argv, "A primitive of your own: swish with a hand-derived backward, traced and checked.");
    sg_scope_begin();
    sg_tensor *x = sg_set_name(sg_param(sg_from_data((float[]){-2.f, -0.5f, 0.1f, 0.7f, 1.5f, 3.f}, SG_DIMS(6))), "x");

    printf("== swish(x) = x * sigmoid(x) as a user-defined primitive ==\n");
    sg_tensor *y = sg_set_name(sg_custom_apply(&swish_op, &x, 1, NULL), "y");
    sg_tensor *loss = sg_set_name(sg_sum_all(y), "loss");
    if (!loss || sg_backward(loss, NULL) != 0) {
        printf("failed: %s\n", sg_last_error());
        return 1;
    }
    printf("the graph, node by node (the op shows under its own name):\n");
    sg_trace(stdout, loss);
    printf("\nthe same as Graphviz DOT (its op node):\n");
    char *dot = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&dot, &len);
    if (mem) {
        sg_write_dot(mem, loss);
        fclose(mem);
        for (char *line = strtok(dot, "\n"); line; line = strtok(NULL, "\n"))
            if (strstr(line, "swish"))
                printf("%s\n", line);
        free(dot);
    }

    printf("\n== sg_gradcheck of the hand-derived backward ==\n");
    printf("x = [-2 -0.5 0.1 0.7 1.5 3]; the report shows d/dx of sum(swish(x)) at the worst x\n");
    check("1. backward s + x s (1 - s)       ", &swish_op, x);
    check("2. backward s + x s (wrong)       ", &swish_wrong_op, x);
    sg_gradcheck_report rep;
    bool ok = sg_gradgradcheck(summed, &x, 1, (void *)&swish_op, NULL, &rep);
    printf("second derivative of 1. (sg_gradgradcheck): %s\n  %s\n", ok ? "passed" : "FAILED", rep.message);
    printf("(2. is worst at x = 3: analytic s + 3s = 4 sigmoid(3) = %.6g, numeric s + 3s(1 - s) = %.6g)\n",
           4 / (1 + exp(-3.0)), 1 / (1 + exp(-3.0)) * (1 + 3 * (1 - 1 / (1 + exp(-3.0)))));
    sg_scope_end();
    sg_release_memory();
    return 0;
}
