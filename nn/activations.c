/*
 * activations.c — activation and output functions, each a composition of
 * the engine's primitives (so each is differentiated by sg_backward(), to
 * any order, with no backward code here).
 *
 * Stability: the textbook formulas overflow. 1/(1+exp(-x)) at x = -100
 * computes exp(100) = inf and its gradient 0 * inf = NaN; softmax of
 * [1010, 1000, 990] computes exp(1010) = inf. Each function here only ever
 * exponentiates non-positive numbers:
 *   - sigmoid uses e = exp(-|x|), with |x| = x * s where s = ±1 is
 *     a constant mask (the sign, from sg_gt, which carries no gradient). Each
 *     branch is the exact formula on its side of 0, so the gradient is exact
 *     everywhere, including at x = 0 (where a relu-based |x| would give 0).
 *   - softmax subtracts each row's maximum, detached: softmax(x - c) =
 *     softmax(x) for any constant c, so the gradient needs no term through
 *     the max.
 */
#include "nn_internal.h"

#include <math.h>

sg_tensor *sg_identity(sg_tensor *x)
{
    return sg_check_tensor("identity", x) ? x : NULL;
}

sg_tensor *sg_step(sg_tensor *x)
{
    if (!sg_check_tensor("step", x))
        return NULL;
    return sg_gt(x, sg_scalar(0.f));
}

/* m = (x > 0) as 0/1, no gradient. */
static sg_tensor *positive_mask(sg_tensor *x) { return sg_gt(x, sg_scalar(0.f)); }

static sg_tensor *sigmoid_body(sg_tensor *x)
{
    if (!sg_check_tensor("sigmoid", x))
        return NULL;
    sg_tensor *m = positive_mask(x);
    sg_tensor *s = sg_rsub_scalar(1.f, sg_mul_scalar(m, 2.f)); /* -1 where x > 0, else +1 */
    sg_tensor *e = sg_exp(sg_mul(x, s));                       /* exp(-|x|) in (0, 1] */
    /* x > 0: 1 / (1 + e);   x <= 0: e / (1 + e) */
    sg_tensor *num = sg_add(m, sg_mul(sg_rsub_scalar(1.f, m), e));
    return sg_div(num, sg_add_scalar(e, 1.f));
}

sg_tensor *sg_sigmoid(sg_tensor *x)
{
    const char *token = sg_api_enter("sigmoid");
    sg_tensor *out = sigmoid_body(x);
    sg_api_leave(token);
    return out;
}

/* tanh is the engine's primitive sg_tanh (autograd/ops_math.c). */

static sg_tensor *leaky_relu_body(sg_tensor *x, float slope)
{
    if (!sg_check_tensor("leaky_relu", x))
        return NULL;
    if (!isfinite(slope)) {
        sg_set_error("leaky_relu: slope %g is not finite", slope);
        return NULL;
    }
    /* factor = 1 where x > 0, slope elsewhere; a constant */
    sg_tensor *factor = sg_add_scalar(sg_mul_scalar(positive_mask(x), 1.f - slope), slope);
    return sg_mul(x, factor);
}

sg_tensor *sg_leaky_relu(sg_tensor *x, float slope)
{
    const char *token = sg_api_enter("leaky_relu");
    sg_tensor *out = leaky_relu_body(x, slope);
    sg_api_leave(token);
    return out;
}

/* x - max(x) along the last axis, the max detached; NULL with a message. */
static sg_tensor *shift_by_max(const char *op, sg_tensor *x)
{
    if (!sg_check_tensor(op, x))
        return NULL;
    if (sg_ndim(x) < 1) {
        sg_set_error("%s: needs at least 1 dim, got a scalar", op);
        return NULL;
    }
    if (sg_dim(x, -1) == 0) {
        char b[96];
        sg_set_error("%s: the last axis of %s is empty", op, SG_NN_SHAPE(x, b));
        return NULL;
    }
    int axis = -1;
    return sg_sub(x, sg_detach(sg_max(x, &axis, 1, true)));
}

static sg_tensor *softmax_body(sg_tensor *x)
{
    int axis = -1;
    sg_tensor *e = sg_exp(shift_by_max("softmax", x));
    return sg_div(e, sg_sum(e, &axis, 1, true));
}

sg_tensor *sg_softmax(sg_tensor *x)
{
    const char *token = sg_api_enter("softmax");
    sg_tensor *out = softmax_body(x);
    sg_api_leave(token);
    return out;
}

static sg_tensor *log_softmax_body(sg_tensor *x)
{
    int axis = -1;
    sg_tensor *z = shift_by_max("log_softmax", x);
    /* the sum is >= 1 (the max's own term is exp(0)), so the log is finite */
    return sg_sub(z, sg_log(sg_sum(sg_exp(z), &axis, 1, true)));
}

sg_tensor *sg_log_softmax(sg_tensor *x)
{
    const char *token = sg_api_enter("log_softmax");
    sg_tensor *out = log_softmax_body(x);
    sg_api_leave(token);
    return out;
}
