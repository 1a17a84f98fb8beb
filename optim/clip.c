/*
 * clip.c — gradient clipping by global norm, as torch.nn.utils.clip_grad_norm_
 * (and the book's vol. 2 clip_grads): all gradients are treated as one long
 * vector; if its norm N exceeds max_norm, every gradient is scaled by
 * max_norm / (N + 1e-6). The sum of squares is accumulated in double so that
 * millions of float32 elements do not lose precision.
 */
#include "sg_optim.h"

#include <math.h>

float sg_clip_grad_norm(sg_tensor *const *params, int n, float max_norm)
{
    if (n < 0 || (n > 0 && !params)) {
        sg_set_error("clip_grad_norm: given %s with n = %d", params ? "params" : "NULL params", n);
        return -1.0f;
    }
    if (!(max_norm >= 0.0f) || !isfinite(max_norm)) {
        sg_set_error("clip_grad_norm: max_norm %g %s", (double)max_norm,
                     isfinite(max_norm) ? "must be >= 0" : "is not finite");
        return -1.0f;
    }
    double sum = 0.0;
    for (int i = 0; i < n; i++) {
        const float *g = params[i] ? sg_grad_data(params[i]) : NULL;
        if (!g)
            continue;
        const size_t size = sg_size(params[i]);
        for (size_t j = 0; j < size; j++)
            sum += (double)g[j] * (double)g[j];
    }
    const double norm = sqrt(sum);
    if (!isfinite(norm))
        return (float)norm;
    const double coef = (double)max_norm / (norm + 1e-6);
    if (coef < 1.0) {
        const float c = (float)coef;
        for (int i = 0; i < n; i++) {
            float *g = params[i] ? sg_grad_data(params[i]) : NULL;
            if (!g)
                continue;
            const size_t size = sg_size(params[i]);
            for (size_t j = 0; j < size; j++)
                g[j] *= c;
        }
    }
    return (float)norm;
}
