/*
 * synthetic.c — small generated sets for the early chapters and demos:
 * the logic gates (perceptrons, chapter 2), CS231n's spiral (a non-linear
 * classification that a linear model cannot solve) and a noisy sine
 * (regression).
 *
 * Key idea: results are ordinary tensors, (N, D) inputs and (N, K)
 * targets, so a model uses them directly, and sg_take_rows() with the
 * loader's indices batches them. Randomness comes only from the sg_rng
 * passed in, so a seed fixes the set on every machine.
 */
#include "sg_datasets.h"

#include <math.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static const char *const gate_names[] = {
    [SG_GATE_AND] = "AND",
    [SG_GATE_OR] = "OR",
    [SG_GATE_NAND] = "NAND",
    [SG_GATE_XOR] = "XOR",
};
_Static_assert(sizeof gate_names / sizeof gate_names[0] == SG_GATE_COUNT,
               "one name per gate");

const char *sg_gate_name(sg_gate g)
{
    return (int)g >= 0 && (int)g < SG_GATE_COUNT ? gate_names[g] : "?";
}

/* Set both outputs to NULL; check they are there. */
static int check_out(const char *fn, sg_tensor **x, sg_tensor **t)
{
    if (x)
        *x = NULL;
    if (t)
        *t = NULL;
    if (!x || !t) {
        sg_set_error("%s: NULL output pointer", fn);
        return -1;
    }
    return 0;
}

/* Both tensors made, or neither kept (a persistent one is freed). */
static int finish(sg_tensor **x, sg_tensor **t)
{
    if (*x && *t)
        return 0;
    sg_tensor_free(*x); /* does nothing for a tensor owned by a scope */
    sg_tensor_free(*t);
    *x = *t = NULL;
    return -1;
}

int sg_logic_gate(sg_gate g, sg_tensor **x, sg_tensor **t)
{
    if (check_out("logic_gate", x, t) != 0)
        return -1;
    if ((int)g < 0 || (int)g >= SG_GATE_COUNT) {
        sg_set_error("logic_gate: unknown gate %d", (int)g);
        return -1;
    }
    static const float in[8] = {0, 0, 1, 0, 0, 1, 1, 1};
    float out[4];
    for (int i = 0; i < 4; i++) {
        bool a = in[2 * i] != 0, b = in[2 * i + 1] != 0;
        bool y = g == SG_GATE_AND ? (a && b)
                 : g == SG_GATE_OR ? (a || b)
                 : g == SG_GATE_NAND ? !(a && b)
                                     : a != b;
        out[i] = y ? 1.0f : 0.0f;
    }
    sg_dtype dt = sg_set_default_dtype(SG_FLOAT32); /* data sets are float32 whatever the default */
    *x = sg_from_data(in, SG_DIMS(4, 2));
    *t = sg_from_data(out, SG_DIMS(4, 1));
    sg_set_default_dtype(dt);
    return finish(x, t);
}

int sg_spiral(int n_per_class, int n_classes, bool one_hot, sg_rng *rng, sg_tensor **x,
              sg_tensor **t)
{
    if (check_out("spiral", x, t) != 0)
        return -1;
    if (n_per_class < 1 || n_classes < 1 || n_classes > 256 ||
        n_per_class > SG_IDX_MAX_ITEMS / n_classes) {
        sg_set_error("spiral: bad sizes n_per_class=%d n_classes=%d", n_per_class, n_classes);
        return -1;
    }
    if (!rng)
        rng = sg_default_rng();
    int n = n_per_class * n_classes;
    *x = sg_full_dtype(SG_FLOAT32, 0.0, SG_DIMS(n, 2));
    *t = one_hot ? sg_full_dtype(SG_FLOAT32, 0.0, SG_DIMS(n, n_classes)) : sg_full_dtype(SG_FLOAT32, 0.0, SG_DIMS(n));
    if (finish(x, t) != 0)
        return -1;
    float *xs = sg_data(*x), *ts = sg_data(*t);
    for (int j = 0; j < n_classes; j++) {
        for (int i = 0; i < n_per_class; i++) {
            int k = j * n_per_class + i;
            double r = n_per_class > 1 ? (double)i / (n_per_class - 1) : 0.0;
            double theta = 4.0 * j + 4.0 * r + 0.2 * sg_rng_normal(rng);
            xs[2 * k] = (float)(r * sin(theta));
            xs[2 * k + 1] = (float)(r * cos(theta));
            if (one_hot)
                ts[(size_t)k * (size_t)n_classes + (size_t)j] = 1.0f;
            else
                ts[k] = (float)j;
        }
    }
    return 0;
}

int sg_noisy_sine(int n, float noise, sg_rng *rng, sg_tensor **x, sg_tensor **t)
{
    if (check_out("noisy_sine", x, t) != 0)
        return -1;
    if (n < 1 || !(noise >= 0.0f) || isinf(noise)) {
        sg_set_error("noisy_sine: need n >= 1 and a finite noise >= 0 (got n=%d, noise=%g)",
                     n, (double)noise);
        return -1;
    }
    if (!rng)
        rng = sg_default_rng();
    *x = sg_full_dtype(SG_FLOAT32, 0.0, SG_DIMS(n, 1));
    *t = sg_full_dtype(SG_FLOAT32, 0.0, SG_DIMS(n, 1));
    if (finish(x, t) != 0)
        return -1;
    float *xs = sg_data(*x), *ts = sg_data(*t);
    for (int i = 0; i < n; i++) {
        double v = sg_rng_uniform(rng);
        xs[i] = (float)v;
        ts[i] = (float)(sin(2.0 * M_PI * v) + noise * sg_rng_normal(rng));
    }
    return 0;
}
