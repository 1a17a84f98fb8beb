/*
 * init.c — weight initialisation: zeros, constant, normal and uniform with
 * a given scale, Glorot/Xavier and He/Kaiming (uniform and normal), and the
 * book's "Xavier" (std = 1/sqrt(n), n = fan_in), all drawn from a seeded
 * sg_rng so a seed fixes every weight on every machine.
 *
 * Fans follow how ScratchGrad stores weights (the book's layout):
 *   linear W (in,out)           fan_in = in,       fan_out = out
 *   conv   W (FN,C,KH,KW)       fan_in = C*KH*KW,  fan_out = FN*KH*KW
 * Note that PyTorch stores a linear weight as (out,in); the fans, and so
 * the scales, are the same.
 */
#include "nn_internal.h"

#include <math.h>

static const char *const init_names[SG_INIT_KIND_COUNT] = {
    [SG_INIT_KIND_ZEROS] = "zeros",
    [SG_INIT_KIND_CONSTANT] = "constant",
    [SG_INIT_KIND_NORMAL] = "normal",
    [SG_INIT_KIND_UNIFORM] = "uniform",
    [SG_INIT_KIND_XAVIER_UNIFORM] = "xavier_uniform",
    [SG_INIT_KIND_XAVIER_NORMAL] = "xavier_normal",
    [SG_INIT_KIND_XAVIER_BOOK] = "xavier_book",
    [SG_INIT_KIND_HE_UNIFORM] = "he_uniform",
    [SG_INIT_KIND_HE_NORMAL] = "he_normal",
};

const char *sg_init_name(sg_init_kind kind)
{
    return (int)kind >= 0 && kind < SG_INIT_KIND_COUNT ? init_names[kind] : "?";
}

void sg_init_fans(int ndim, const int *shape, int *fan_in, int *fan_out)
{
    long long in = 1, out = 1;
    if (ndim == 1 && shape) {
        in = out = shape[0];
    } else if (ndim == 2 && shape) {
        in = shape[0];
        out = shape[1];
    } else if (ndim > 2 && shape) {
        long long field = 1; /* receptive field: KH*KW... */
        for (int i = 2; i < ndim; i++)
            field *= shape[i];
        in = (long long)shape[1] * field;
        out = (long long)shape[0] * field;
    }
    if (fan_in)
        *fan_in = in > 0x7fffffff ? 0x7fffffff : (int)in;
    if (fan_out)
        *fan_out = out > 0x7fffffff ? 0x7fffffff : (int)out;
}

bool sg_nn_init_ok(const char *op, sg_init init)
{
    if ((int)init.kind < 0 || init.kind >= SG_INIT_KIND_COUNT) {
        sg_set_error("%s: unknown initialiser kind %d", op, (int)init.kind);
        return false;
    }
    const char *name = init_names[init.kind];
    const double v = init.value;
    switch (init.kind) {
    case SG_INIT_KIND_CONSTANT:
        if (!isfinite(v)) {
            sg_set_error("%s: constant init value %g is not finite", op, v);
            return false;
        }
        break;
    case SG_INIT_KIND_NORMAL:
    case SG_INIT_KIND_UNIFORM:
        if (!isfinite(v) || v < 0) {
            sg_set_error("%s: %s init %s %g %s", op, name,
                         init.kind == SG_INIT_KIND_NORMAL ? "std" : "bound", v,
                         isfinite(v) ? "must be >= 0" : "is not finite");
            return false;
        }
        break;
    default: /* zeros and the fan-based kinds read no value */
        break;
    }
    return true;
}

int sg_init_fill(sg_tensor *t, sg_init init, sg_rng *rng)
{
    if (!sg_check_tensor("init_fill", t))
        return -1;
    if (!sg_nn_init_ok("init_fill", init))
        return -1;
    int fan_in, fan_out;
    sg_init_fans(sg_ndim(t), sg_shape(t), &fan_in, &fan_out);
    const char *name = init_names[init.kind];
    bool uniform = false;
    double scale = 0.0; /* std for normals, bound for uniforms */
    switch (init.kind) {
    case SG_INIT_KIND_ZEROS:
    case SG_INIT_KIND_CONSTANT:
        break;
    case SG_INIT_KIND_NORMAL:
    case SG_INIT_KIND_UNIFORM:
        scale = init.value;
        uniform = init.kind == SG_INIT_KIND_UNIFORM;
        break;
    default:
        if (fan_in <= 0 || fan_out <= 0) {
            char b[96];
            sg_set_error("init_fill: %s needs nonzero fans, tensor %s has fan_in %d, fan_out %d", name,
                         SG_NN_SHAPE(t, b), fan_in, fan_out);
            return -1;
        }
        switch (init.kind) {
        case SG_INIT_KIND_XAVIER_UNIFORM: scale = sqrt(6.0 / ((double)fan_in + fan_out)); uniform = true; break;
        case SG_INIT_KIND_XAVIER_NORMAL: scale = sqrt(2.0 / ((double)fan_in + fan_out)); break;
        case SG_INIT_KIND_XAVIER_BOOK: scale = sqrt(1.0 / fan_in); break;
        case SG_INIT_KIND_HE_UNIFORM: scale = sqrt(6.0 / fan_in); uniform = true; break;
        default: scale = sqrt(2.0 / fan_in); break; /* he_normal */
        }
    }
    /* float32 (training) or float64 (checking gradients): the same draws */
    const bool f64 = sg_dtype_of(t) == SG_FLOAT64;
    float *d = f64 ? NULL : sg_data(t);
    double *d64 = f64 ? sg_data64(t) : NULL;
    const size_t n = sg_size(t);
    if (init.kind == SG_INIT_KIND_ZEROS || init.kind == SG_INIT_KIND_CONSTANT) {
        const float v = init.kind == SG_INIT_KIND_ZEROS ? 0.f : init.value;
        for (size_t i = 0; i < n; i++) {
            if (f64)
                d64[i] = v;
            else
                d[i] = v;
        }
        return 0;
    }
    if (!rng)
        rng = sg_default_rng();
    for (size_t i = 0; i < n; i++) {
        double v = uniform ? scale * (2.0 * sg_rng_uniform(rng) - 1.0) : scale * sg_rng_normal(rng);
        if (f64)
            d64[i] = v;
        else
            d[i] = (float)v;
    }
    return 0;
}
