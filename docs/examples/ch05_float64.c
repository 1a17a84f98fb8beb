/* Chapter 5, checked in float64: a derivative wrong by 1e-4 (relative)
 * is invisible to a float32 gradient check and plain in float64. */
#include <sg_autograd.h>
#include <stdio.h>

/* exp(x) whose backward is off by the relative error *ctx: the detached
 * term cancels in the value, not in the derivative (1 + err) exp(x). */
static sg_tensor *exp_off(sg_tensor *const *x, int n, void *ctx)
{
    (void)n;
    double err = *(const double *)ctx;
    sg_tensor *e = sg_exp(x[0]);
    return sg_sub(sg_mul_scalar(e, 1.0 + err), sg_mul_scalar(sg_detach(e), err));
}

static void check(const char *what, sg_tensor *x, double err, const sg_gradcheck_opts *o)
{
    sg_gradcheck_report r;
    sg_gradcheck(exp_off, &x, 1, &err, o, &r);
    printf("%-36s %s\n", what, r.message);
    sg_clear_error(); /* a failed check records its message */
}

int main(void)
{
    sg_rng rng;
    sg_rng_seed(&rng, 1);
    sg_scope_begin();
    sg_tensor *x32 = sg_param(sg_uniform(&rng, 0.5, 1.5, SG_DIMS(2, 3)));
    sg_tensor *x64 = sg_param(sg_to_dtype(sg_detach(x32), SG_FLOAT64));
    const sg_gradcheck_opts tight = {.atol = 1e-8, .rtol = 1e-5}; /* sees 1e-4 */

    check("float32, right, default tolerances:", x32, 0.0, NULL);
    check("float32, off by 1e-4, defaults:", x32, 1e-4, NULL);   /* missed */
    check("float32, right, tight tolerances:", x32, 0.0, &tight); /* noise fails it */
    check("float64, right, tight tolerances:", x64, 0.0, &tight);
    check("float64, off by 1e-4, tight:", x64, 1e-4, &tight);    /* caught */
    sg_scope_end();
    sg_release_memory();
    return 0;
}
