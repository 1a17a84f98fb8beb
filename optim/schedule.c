/*
 * schedule.c — learning-rate schedules as pure functions of the epoch (or
 * step) number. They hold no state: call one each epoch and hand its value to
 * sg_optim_set_lr(). Values are computed in double and rounded once.
 */
#include "sg_optim.h"

#include <float.h>
#include <math.h>

/* A rate or factor must be finite: NaN or inf would go on into every
 * later learning rate. "<fn>: <what> <v> is not finite" and false if not
 * (the ranges are checked with the other arguments below). */
static bool finite_ok(const char *fn, const char *what, float v)
{
    if (isfinite(v))
        return true;
    sg_set_error("%s: %s %g is not finite", fn, what, (double)v);
    return false;
}

/* lr = base_lr * gamma^floor(epoch / step_size) */
float sg_lr_step_decay(float base_lr, float gamma, int step_size, int epoch)
{
    if (!finite_ok("lr_step_decay", "base_lr", base_lr) || !finite_ok("lr_step_decay", "gamma", gamma))
        return -1.0f;
    if (!(base_lr >= 0.0f) || !(gamma >= 0.0f) || step_size <= 0 || epoch < 0) {
        sg_set_error("lr_step_decay: need base_lr >= 0, gamma >= 0, step_size > 0, epoch >= 0 "
                     "(got %g, %g, %d, %d)",
                     (double)base_lr, (double)gamma, step_size, epoch);
        return -1.0f;
    }
    /* gamma > 1 grows the rate: past the largest float it is no rate at all */
    const double lr = (double)base_lr * pow((double)gamma, (double)(epoch / step_size));
    if (!(lr <= (double)FLT_MAX)) {
        sg_set_error("lr_step_decay: %g * %g^%d is too large for a float", (double)base_lr, (double)gamma,
                     epoch / step_size);
        return -1.0f;
    }
    return (float)lr;
}

/* lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / t_max)) / 2, held at eta_min after t_max */
float sg_lr_cosine(float base_lr, float eta_min, int t_max, int t)
{
    if (!finite_ok("lr_cosine", "base_lr", base_lr) || !finite_ok("lr_cosine", "eta_min", eta_min))
        return -1.0f;
    if (!(base_lr >= 0.0f) || !(eta_min >= 0.0f) || t_max <= 0 || t < 0) {
        sg_set_error("lr_cosine: need base_lr >= 0, eta_min >= 0, t_max > 0, t >= 0 "
                     "(got %g, %g, %d, %d)",
                     (double)base_lr, (double)eta_min, t_max, t);
        return -1.0f;
    }
    if (t >= t_max)
        return eta_min;
    const double pi = 3.14159265358979323846;
    return (float)((double)eta_min + ((double)base_lr - (double)eta_min) *
                                         (1.0 + cos(pi * (double)t / (double)t_max)) / 2.0);
}
