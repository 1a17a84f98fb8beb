/*
 * beyond_newton.c — beyond the book: gradients of gradients, and checking
 * the gradients of your own functions.
 *
 *   1. Newton's method on f(x) = x^4 - 2x^2 from x = 2:
 *          x <- x - f'(x) / f''(x)
 *      f'(x) comes from a backward pass recorded as a graph (create_graph),
 *      f''(x) from a backward pass through that graph. It reaches the
 *      minimum x = 1 in 7 steps (gradient descent needs hundreds).
 *   2. A Hessian-vector product of f(x) = 1/2 x^T A x: the gradient is A x
 *      (A symmetric), and the gradient of (A x) . v is A v — computed
 *      without ever forming the Hessian.
 *   3. sg_gradcheck on functions you write yourself: a correct composite,
 *      one where part of the expression was detached by mistake, and a
 *      hand-derived derivative with a forgotten factor. The report names
 *      the worst element, so a wrong gradient is easy to see.
 *
 * Picture: newton.png (f and the Newton steps).
 */
#include "common.h"

#include <math.h>
#include <stdio.h>

/* ---- 1. Newton's method ---- */

static sg_tensor *f_quartic(sg_tensor *x) /* x^4 - 2x^2 */
{
    return sg_sub(sg_pow(x, 4.f), sg_mul_scalar(sg_square(x), 2.f));
}

static void newton(const demo_opts *o)
{
    printf("== Newton's method on f(x) = x^4 - 2x^2, from x = 2 ==\n");
    printf("f'(x) = 4x^3 - 4x and f''(x) = 12x^2 - 4 come from two backward passes\n");
    sg_tensor *x = sg_param(sg_scalar(2.f)); /* persistent */
    float path[11];
    int steps = 0;
    for (int i = 0; i < 10; i++) {
        sg_scope_begin();
        sg_tensor *y = f_quartic(x), *gx, *gx2;
        sg_backward_opts record = {.create_graph = true};
        if (sg_grad_of(y, &x, 1, &gx, &record) != 0 || sg_grad_of(gx, &x, 1, &gx2, NULL) != 0) {
            printf("backward failed: %s\n", sg_last_error());
            sg_scope_end();
            break;
        }
        float xv = sg_item(x), d1 = sg_item(gx), d2 = sg_item(gx2);
        printf("step %d: x = %-10.8g f'(x) = %-12.6g f''(x) = %.6g\n", i, xv, d1, d2);
        path[steps++] = xv;
        sg_data(x)[0] = xv - d1 / d2; /* x <- x - f'/f'' */
        sg_scope_end();
        if (d1 == 0.f) {
            printf("f'(x) = 0: the minimum x = 1 is reached after %d steps\n", i);
            break;
        }
    }
    printf("(DeZero, float64: 2.0, 1.4545454545454546, 1.1510467893775467, 1.0253259289766978,\n"
           " 1.0009084519430513, 1.0000010332706836, 1.0000000000013324, 1.0)\n\n");
    sg_tensor_free(x);

    FILE *gp = plot_begin(o, "newton");
    if (gp) {
        plot_data_begin(gp, "steps");
        for (int i = 0; i < steps; i++)
            fprintf(gp, "%g %g %d\n", path[i], pow(path[i], 4) - 2 * path[i] * path[i], i);
        plot_data_end(gp);
        fprintf(gp, "set xrange [-2.2:2.2]\nset yrange [-1.5:9]\nset grid\nset xlabel 'x'\nset key top center\n"
                    "set title \"Newton's method on x^4 - 2x^2 from x = 2\"\n"
                    "plot x**4 - 2*x**2 lw 2 title 'f(x)', $steps using 1:2 with linespoints pt 7 "
                    "title 'x_0, x_1, ...', $steps using 1:2:($3 < 3 ? sprintf('x_%%d', $3) : '') with labels "
                    "offset 1.5,0.5 notitle\n");
        plot_end(gp, o, "newton");
    }
}

/* ---- 2. Hessian-vector product ---- */

static void print_vec(const char *label, sg_tensor *t)
{
    printf("%s[", label);
    for (size_t i = 0; i < sg_size(t); i++)
        printf(i ? " %g" : "%g", sg_data(t)[i]);
    printf("]\n");
}

static void hessian_vector(void)
{
    printf("== Hessian-vector product of f(x) = 1/2 x^T A x ==\n");
    sg_scope_begin();
    sg_tensor *A = sg_from_data((float[]){2, 1, 0, 1, 3, 1, 0, 1, 4}, SG_DIMS(3, 3)); /* symmetric */
    sg_tensor *x = sg_param(sg_from_data((float[]){1, -1, 2}, SG_DIMS(3, 1)));
    sg_tensor *v = sg_from_data((float[]){0.5f, 1, -2}, SG_DIMS(3, 1));
    sg_tensor *f = sg_mul_scalar(sg_sum_all(sg_mul(x, sg_matmul(A, x))), 0.5f);
    sg_tensor *g, *hv;
    if (sg_grad_of(f, &x, 1, &g, &(sg_backward_opts){.create_graph = true}) != 0 ||
        sg_grad_of(sg_sum_all(sg_mul(g, v)), &x, 1, &hv, NULL) != 0) {
        printf("backward failed: %s\n", sg_last_error());
        sg_scope_end();
        return;
    }
    printf("A = [[2 1 0] [1 3 1] [0 1 4]], x = [1 -1 2], v = [0.5 1 -2]\n");
    printf("f(x) = %g\n", sg_item(f));
    print_vec("grad f(x)       = ", g);
    print_vec("A x             = ", sg_matmul(A, x));
    print_vec("H v (backward)  = ", hv);
    print_vec("A v             = ", sg_matmul(A, v));
    printf("(two backward passes; the 3x3 Hessian A itself is never formed)\n\n");
    sg_scope_end();
}

/* ---- 3. gradcheck on your own functions ---- */

static sg_tensor *sigmoid(sg_tensor *x) /* 1 / (1 + exp(-x)) */
{
    return sg_rdiv_scalar(1.f, sg_add_scalar(sg_exp(sg_neg(x)), 1.f));
}

/* swish(x) = x * sigmoid(x), composed of primitives: backward is exact. */
static sg_tensor *swish(sg_tensor *x)
{
    return sg_mul(x, sigmoid(x));
}

/* The same function with sigmoid's input detached by mistake: backward
 * misses the term x * sigmoid'(x) of the product rule. */
static sg_tensor *swish_detached(sg_tensor *x)
{
    return sg_mul(x, sigmoid(sg_detach(x)));
}

/* A value f with a hand-derived derivative `slope` (elementwise):
 * y = f + slope*x - detach(slope*x) is f forward, and backward sees slope. */
static sg_tensor *with_derivative(sg_tensor *x, sg_tensor *f, sg_tensor *slope)
{
    sg_tensor *sx = sg_mul(sg_detach(slope), x);
    return sg_add(sg_detach(f), sg_sub(sx, sg_detach(sx)));
}

/* swish with its derivative by hand: s + x s (1 - s), s = sigmoid(x). */
static sg_tensor *swish_by_hand(sg_tensor *x)
{
    sg_tensor *s = sigmoid(x);
    sg_tensor *slope = sg_add(s, sg_mul(x, sg_mul(s, sg_rsub_scalar(1.f, s))));
    return with_derivative(x, sg_mul(x, s), slope);
}

/* ... and with the factor (1 - s) forgotten: s + x s. */
static sg_tensor *swish_by_hand_wrong(sg_tensor *x)
{
    sg_tensor *s = sigmoid(x);
    sg_tensor *slope = sg_add(s, sg_mul(x, s));
    return with_derivative(x, sg_mul(x, s), slope);
}

typedef struct elementwise {
    sg_tensor *(*f)(sg_tensor *x);
} elementwise;

/* gradcheck's view: the sum of f over x, so d/dx_i of it is f'(x_i) and the
 * report's analytic and numeric values are the derivative itself. */
static sg_tensor *summed(sg_tensor *const *in, int n, void *ctx)
{
    (void)n;
    return sg_sum_all(((const elementwise *)ctx)->f(in[0]));
}

static void check(const char *what, sg_tensor *(*f)(sg_tensor *), sg_tensor *x)
{
    sg_gradcheck_report rep;
    bool ok = sg_gradcheck(summed, &x, 1, &(elementwise){f}, NULL, &rep);
    sg_clear_error(); /* a failed check records its message too */
    printf("%s: %s\n  %s\n", what, ok ? "passed" : "FAILED", rep.message);
}

static void user_gradcheck(void)
{
    printf("== sg_gradcheck on your own functions: swish(x) = x * sigmoid(x) ==\n");
    printf("x = [-2 -0.5 0.1 0.7 1.5 3]; the report shows d/dx of sum(f(x)) at the worst x\n");
    sg_scope_begin();
    sg_tensor *x = sg_param(sg_from_data((float[]){-2.f, -0.5f, 0.1f, 0.7f, 1.5f, 3.f}, SG_DIMS(6)));
    check("1. composed of primitives           ", swish, x);
    check("2. sigmoid's input detached         ", swish_detached, x);
    check("3. derivative by hand, s + x s (1-s)", swish_by_hand, x);
    check("4. by hand, factor (1 - s) missing  ", swish_by_hand_wrong, x);
    sg_gradcheck_report rep;
    bool ok = sg_gradgradcheck(summed, &x, 1, &(elementwise){swish}, NULL, &rep);
    printf("second derivative of 1. (sg_gradgradcheck): %s\n  %s\n", ok ? "passed" : "FAILED", rep.message);
    sg_scope_end();
}

int main(int argc, char **argv)
{
    demo_opts o = demo_args(argc, argv,
                            "Newton's method, a Hessian-vector product, and gradcheck on your own functions.");
    newton(&o);
    hessian_vector();
    user_gradcheck();
    sg_release_memory();
    return 0;
}
