/*
 * optim_update.c — the optimizers' update loops (optim/optim.c keeps the
 * options, the per-parameter state and the checks), compiled once per
 * level so that they vectorise for each instruction set.
 *
 * Each element is updated on its own, with the operation order of
 * torch.optim's single-tensor path; contraction is off, so a * b + c is
 * rounded twice at every level and the levels agree bit for bit. The bias
 * corrections of Adam and AdaGrad's decayed rate are computed once per
 * call in double (the C library's pow and sqrt, the same at every level).
 * The per-call constants are read into locals before each loop, where the
 * compiler keeps them in registers (it cannot tell that w does not
 * overwrite *a).
 */
#include "sg_kernels.h"

#include <float.h>
#include <math.h>

/* State that decays (momentum, moving averages) of a weight whose gradient
 * stays 0 (a dead ReLU unit) reaches the subnormal range after some hundred
 * steps, where each operation costs ~100x (Adam took 39% of a SimpleConvNet
 * step). Below FLT_MIN it is 0: such a value cannot move a weight. */
static inline float flush(float x) { return fabsf(x) < FLT_MIN ? 0.f : x; }

/* w ← w − η·g */
void SG_K(sg_k_update_sgd)(const sg_kupdate *a, size_t lo, size_t hi)
{
    float *restrict w = a->w;
    const float *restrict g = a->g;
    const float l2 = a->l2, shrink = a->shrink, lr = a->lr;
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i] + l2 * w[i];
        w[i] *= shrink;
        w[i] -= lr * gi;
    }
}

/* b ← g (t = 1) or μ·b + (1 − d)·g;  w ← w − η·b  (Nesterov: w ← w − η·(g + μ·b)) */
void SG_K(sg_k_update_momentum)(const sg_kupdate *a, size_t lo, size_t hi)
{
    float *restrict w = a->w, *restrict b = a->s0;
    const float *restrict g = a->g;
    const float l2 = a->l2, shrink = a->shrink, lr = a->lr;
    const float mu = a->momentum, keep = 1.0f - a->dampening;
    const bool nesterov = a->nesterov, first = a->t == 1;
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i] + l2 * w[i];
        w[i] *= shrink;
        b[i] = flush(first ? gi : mu * b[i] + keep * gi);
        float d = nesterov ? gi + mu * b[i] : b[i];
        w[i] -= lr * d;
    }
}

/* s ← s + g²;  w ← w − η_t·g / (√s + ε),  η_t = η / (1 + (t − 1)·lr_decay) */
void SG_K(sg_k_update_adagrad)(const sg_kupdate *a, size_t lo, size_t hi)
{
    float *restrict w = a->w, *restrict s = a->s0;
    const float *restrict g = a->g;
    const float l2 = a->l2, shrink = a->shrink, eps = a->eps;
    const float clr = (float)(a->lr / (1.0 + (double)(a->t - 1) * a->lr_decay));
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i] + l2 * w[i];
        w[i] *= shrink;
        s[i] += gi * gi;
        w[i] -= clr * (gi / (sqrtf(s[i]) + eps));
    }
}

/* s ← α·s + (1 − α)·g²;  w ← w − η·g / (√s + ε) */
void SG_K(sg_k_update_rmsprop)(const sg_kupdate *a, size_t lo, size_t hi)
{
    float *restrict w = a->w, *restrict s = a->s0;
    const float *restrict g = a->g;
    const float l2 = a->l2, shrink = a->shrink, lr = a->lr;
    const float alpha = a->alpha, eps = a->eps;
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i] + l2 * w[i];
        w[i] *= shrink;
        s[i] = flush(alpha * s[i] + (1.0f - alpha) * gi * gi);
        w[i] -= lr * (gi / (sqrtf(s[i]) + eps));
    }
}

/* m ← m + (1 − β1)·(g − m);  v ← β2·v + (1 − β2)·g²;
 * w ← w − (η / (1 − β1^t))·m / (√v / √(1 − β2^t) + ε) */
void SG_K(sg_k_update_adam)(const sg_kupdate *a, size_t lo, size_t hi)
{
    float *restrict w = a->w, *restrict m = a->s0, *restrict v = a->s1;
    const float *restrict g = a->g;
    const float l2 = a->l2, shrink = a->shrink;
    const float b1 = a->beta1, b2 = a->beta2, eps = a->eps;
    const double bc1 = 1.0 - pow(b1, (double)a->t);
    const double bc2 = 1.0 - pow(b2, (double)a->t);
    const float step_size = (float)(a->lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    for (size_t i = lo; i < hi; i++) {
        float gi = g[i] + l2 * w[i];
        w[i] *= shrink;
        m[i] = flush(m[i] + (1.0f - b1) * (gi - m[i]));
        v[i] = flush(b2 * v[i] + (1.0f - b2) * gi * gi);
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        w[i] -= step_size * (m[i] / denom);
    }
}

