/*
 * ops_math.c — the math primitives people write functions with: sin, cos,
 * tanh, abs, minimum, maximum, where, clamp, and the sign constant; their
 * local derivatives; the scalar forms x - s and x / s.
 *
 * Key idea: each forward is a plain loop per dtype (float64 over data64,
 * float32 over data), with NumPy broadcasting for the binary and ternary
 * ops through one odometer (struct bc_walk). These ops are not on the
 * training hot path, so there are no per-ISA kernels or threads here.
 *
 * Derivatives at kinks, ties and bounds follow PyTorch (derivatives.yaml):
 *   abs'(x) = sign(x), so 0 at 0;  maximum/minimum give each side dy/2 at a
 *   tie;  clamp passes dy at a bound (lo <= x <= hi);  sign has none.
 * The piecewise-constant factors (sign, the 0 / 0.5 / 1 weights, the clamp
 * window) are constants made by plain loops here and never recorded: their
 * own derivative is 0, so a product dy * factor differentiates correctly to
 * any order. Everything else in a local derivative is recorded sg_ ops.
 *
 * Invariants: the inputs of one op have one dtype (the mask of where may
 * have either); the result has the inputs' dtype.
 */
#include "sg_float64.h"
#include "sg_internal.h"

#include <math.h>

const char *sg_article(const char *word)
{
    return word && strchr("aeiouAEIOU", word[0]) && word[0] ? "an" : "a";
}

/* A 0-d constant of x's dtype (broadcasts against anything). */
static sg_tensor *scalar_like(const sg_tensor *x, double v) { return sg_full_dtype(x->dtype, v, 0, NULL); }

/* ---- broadcasting walk ---- */

/* Output index -> offsets into up to three broadcast inputs: an odometer
 * over the output's dims, each input with stride 0 on a broadcast dim. */
typedef struct bc_walk {
    int nd, k;
    int shape[SG_MAX_DIMS], idx[SG_MAX_DIMS];
    size_t st[3][SG_MAX_DIMS];
    size_t off[3];
} bc_walk;

static void bc_init(bc_walk *w, int nd, const int *shape, sg_tensor *const *in, int k)
{
    memset(w, 0, sizeof *w);
    w->nd = nd;
    w->k = k;
    memcpy(w->shape, shape, (size_t)nd * sizeof(int));
    for (int j = 0; j < k; j++) {
        size_t r = 1;
        for (int i = nd - 1; i >= 0; i--) {
            int ix = i - (nd - in[j]->ndim);
            int d = ix >= 0 ? in[j]->shape[ix] : 1;
            w->st[j][i] = d == 1 ? 0 : r;
            r *= (size_t)d;
        }
    }
}

static void bc_next(bc_walk *w)
{
    for (int d = w->nd - 1; d >= 0; d--) {
        w->idx[d]++;
        for (int j = 0; j < w->k; j++)
            w->off[j] += w->st[j][d];
        if (w->idx[d] < w->shape[d])
            return;
        for (int j = 0; j < w->k; j++)
            w->off[j] -= w->st[j][d] * (size_t)w->shape[d];
        w->idx[d] = 0;
    }
}

/* The broadcast shape of k inputs into out; ndim, or -1 with a message. */
static int bc_shape(const char *op, sg_tensor *const *in, int k, int *out)
{
    int nd = in[0]->ndim;
    memcpy(out, in[0]->shape, (size_t)nd * sizeof(int));
    for (int j = 1; j < k; j++) {
        int t[SG_MAX_DIMS];
        nd = sg_broadcast_shapes(nd, out, in[j]->ndim, in[j]->shape, t);
        if (nd < 0 || nd > SG_MAX_DIMS) {
            char b[3][96];
            for (int i = 0; i < k; i++)
                sg_shape_str(in[i], b[i], sizeof b[i]);
            if (k == 2)
                sg_set_error("%s: shapes %s and %s cannot be broadcast together", op, b[0], b[1]);
            else
                sg_set_error("%s: shapes %s, %s and %s cannot be broadcast together", op, b[0], b[1], b[2]);
            return -1;
        }
        memcpy(out, t, (size_t)nd * sizeof(int));
    }
    return nd;
}

/* Sum a gradient back to the shape of the input it belongs to. */
static sg_tensor *unbroadcast(sg_tensor *g, const sg_tensor *x)
{
    if (!g || sg_same_shape(g, x))
        return g;
    return sg_sum_to(g, x->ndim, x->shape);
}

/* ---- unary ---- */

enum un { UN_SIN, UN_COS, UN_TANH, UN_ABS, UN_SIGN };

static double un_f64(enum un k, double v)
{
    switch (k) {
    case UN_SIN: return sin(v);
    case UN_COS: return cos(v);
    case UN_TANH: return tanh(v);
    case UN_ABS: return fabs(v);
    default: return v > 0 ? 1.0 : v < 0 ? -1.0 : v == 0 ? 0.0 : v; /* NaN stays */
    }
}

static float un_f32(enum un k, float v)
{
    switch (k) {
    case UN_SIN: return sinf(v);
    case UN_COS: return cosf(v);
    case UN_TANH: return tanhf(v);
    case UN_ABS: return fabsf(v);
    default: return v > 0 ? 1.f : v < 0 ? -1.f : v == 0 ? 0.f : v;
    }
}

/* y = f(x) elementwise, not recorded. */
static sg_tensor *un_values(const char *name, enum un k, sg_tensor *x)
{
    sg_tensor *y = sg_alloc(name, x->dtype, x->ndim, x->shape);
    if (!y)
        return NULL;
    if (x->dtype == SG_FLOAT64)
        for (size_t i = 0; i < x->size; i++)
            y->data64[i] = un_f64(k, x->data64[i]);
    else
        for (size_t i = 0; i < x->size; i++)
            y->data[i] = un_f32(k, x->data[i]);
    return y;
}

static sg_tensor *unary(enum un k, enum sg_op op, sg_tensor *x)
{
    const char *name = sg_op_table[op].name;
    SG_CHECK_INPUT(name, x);
    return sg_finish(un_values(name, k, x), op, &x, 1);
}

sg_tensor *sg_sin(sg_tensor *x) { return unary(UN_SIN, SG_OP_SIN, x); }
sg_tensor *sg_cos(sg_tensor *x) { return unary(UN_COS, SG_OP_COS, x); }
sg_tensor *sg_tanh(sg_tensor *x) { return unary(UN_TANH, SG_OP_TANH, x); }
sg_tensor *sg_abs(sg_tensor *x) { return unary(UN_ABS, SG_OP_ABS, x); }

sg_tensor *sg_sign(sg_tensor *x)
{
    SG_CHECK_INPUT("sign", x);
    return un_values("sign", UN_SIGN, x); /* a constant: never recorded, like gt */
}

/* y = cos x: dx = dy cos x, recorded, so it differentiates again. */
void sg_bw_sin(sg_tensor *y, sg_tensor *gy, sg_tensor **gx) { gx[0] = sg_mul(gy, sg_cos(y->in[0])); }

void sg_bw_cos(sg_tensor *y, sg_tensor *gy, sg_tensor **gx) { gx[0] = sg_neg(sg_mul(gy, sg_sin(y->in[0]))); }

/* dx = dy (1 - y^2) from y, which has x as input: differentiates again. At
 * ±inf, y = ±1 exactly, so every order is 0 (never inf * 0). */
void sg_bw_tanh(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    sg_tensor *one = sg_ones_like(y);
    gx[0] = sg_mul(gy, sg_sub(one, sg_mul(y, y)));
}

/* dx = dy sign(x): sign is a constant (its derivative is 0), so abs'' = 0
 * and abs'(0) = 0, PyTorch's `grad * self.sgn()`. */
void sg_bw_abs(sg_tensor *y, sg_tensor *gy, sg_tensor **gx) { gx[0] = sg_mul(gy, sg_sign(y->in[0])); }

/* ---- scalar forms ---- */

sg_tensor *sg_sub_scalar(sg_tensor *x, double s)
{
    SG_API_BEGIN("sub_scalar");
    sg_tensor *y = sg_add_scalar(x, -s);
    SG_API_END();
    return y;
}

sg_tensor *sg_div_scalar(sg_tensor *x, double s)
{
    SG_API_BEGIN("div_scalar");
    sg_tensor *y = NULL;
    if (sg_check_tensor("div_scalar", x))
        y = sg_div(x, scalar_like(x, s));
    SG_API_END();
    return y;
}

/* ---- minimum, maximum ---- */

static sg_tensor *minmax(enum sg_op op, sg_tensor *a, sg_tensor *b)
{
    const char *name = sg_op_table[op].name;
    SG_CHECK_INPUT(name, a);
    SG_CHECK_INPUT(name, b);
    if (sg_promote(&a, &b) < 0)
        return NULL;
    sg_tensor *in[2] = {a, b};
    int shape[SG_MAX_DIMS];
    int nd = bc_shape(name, in, 2, shape);
    if (nd < 0)
        return NULL;
    sg_tensor *y = sg_alloc(name, a->dtype, nd, shape);
    if (!y)
        return NULL;
    bool hi = op == SG_OP_MAXIMUM;
    bc_walk w;
    bc_init(&w, nd, shape, in, 2);
    for (size_t i = 0; i < y->size; i++, bc_next(&w)) {
        double u = sg_value_at(a, w.off[0]), v = sg_value_at(b, w.off[1]);
        double r = isnan(u) ? u : isnan(v) ? v : (hi ? (u >= v ? u : v) : (u <= v ? u : v));
        sg_set_value_at(y, i, r); /* exact: r is one of the inputs */
    }
    return sg_finish(y, op, in, 2);
}

sg_tensor *sg_minimum(sg_tensor *a, sg_tensor *b) { return minmax(SG_OP_MINIMUM, a, b); }
sg_tensor *sg_maximum(sg_tensor *a, sg_tensor *b) { return minmax(SG_OP_MAXIMUM, a, b); }

/* The share of dy that input `which` of y = maximum/minimum(a, b) gets, a
 * constant of y's shape: 1 where it wins, 0 where it loses, 1/2 at a tie.
 * With a NaN nothing compares, so both get dy (PyTorch's masked_fill rule:
 * where(a == b, dy/2, dy) with the losers' entries set to 0). */
static sg_tensor *share(const sg_tensor *y, int which)
{
    const sg_tensor *a = y->in[0], *b = y->in[1];
    sg_tensor *s = sg_alloc("maximum_backward", y->dtype, y->ndim, y->shape);
    if (!s)
        return NULL;
    bool hi = y->op == SG_OP_MAXIMUM;
    sg_tensor *in[2] = {y->in[0], y->in[1]};
    bc_walk w;
    bc_init(&w, y->ndim, y->shape, in, 2);
    for (size_t i = 0; i < y->size; i++, bc_next(&w)) {
        double u = sg_value_at(a, w.off[0]), v = sg_value_at(b, w.off[1]);
        double mine = which == 0 ? u : v, other = which == 0 ? v : u;
        bool loses = hi ? mine < other : mine > other;
        sg_set_value_at(s, i, u == v ? 0.5 : loses ? 0.0 : 1.0);
    }
    return s;
}

static void bw_minmax(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    for (int k = 0; k < 2; k++)
        if (y->in[k]->requires_grad)
            gx[k] = unbroadcast(sg_mul(gy, share(y, k)), y->in[k]);
}

void sg_bw_minimum(sg_tensor *y, sg_tensor *gy, sg_tensor **gx) { bw_minmax(y, gy, gx); }
void sg_bw_maximum(sg_tensor *y, sg_tensor *gy, sg_tensor **gx) { bw_minmax(y, gy, gx); }

/* ---- where ---- */

sg_tensor *sg_where(sg_tensor *cond, sg_tensor *a, sg_tensor *b)
{
    SG_CHECK_INPUT("where", cond);
    SG_CHECK_INPUT("where", a);
    SG_CHECK_INPUT("where", b);
    if (sg_promote(&a, &b) < 0) /* not cond: a mask is read by value, in any dtype */
        return NULL;
    if (cond->requires_grad) {
        char bc[96];
        sg_set_error("where: the condition %s requires a gradient, but a mask is not differentiable "
                     "(make it with sg_gt/sg_eq, or sg_detach it)",
                     sg_shape_str(cond, bc, sizeof bc));
        return NULL;
    }
    sg_tensor *in[3] = {cond, a, b};
    int shape[SG_MAX_DIMS];
    int nd = bc_shape("where", in, 3, shape);
    if (nd < 0)
        return NULL;
    sg_tensor *y = sg_alloc("where", a->dtype, nd, shape);
    if (!y)
        return NULL;
    bc_walk w;
    bc_init(&w, nd, shape, in, 3);
    if (y->dtype == SG_FLOAT64) {
        for (size_t i = 0; i < y->size; i++, bc_next(&w))
            y->data64[i] = sg_value_at(cond, w.off[0]) != 0 ? a->data64[w.off[1]] : b->data64[w.off[2]];
    } else {
        for (size_t i = 0; i < y->size; i++, bc_next(&w))
            y->data[i] = sg_value_at(cond, w.off[0]) != 0 ? a->data[w.off[1]] : b->data[w.off[2]];
    }
    return sg_finish(y, SG_OP_WHERE, in, 3);
}

/* da = where(cond, dy, 0), db = where(cond, 0, dy): recorded where nodes
 * (cond a constant), summed back to each input's shape. */
void sg_bw_where(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    sg_tensor *cond = y->in[0];
    sg_tensor *zero = gy ? scalar_like(gy, 0.0) : NULL;
    if (cond->requires_grad) /* refused when recorded; made a parameter since */
        gx[0] = sg_zeros_like(cond);
    if (y->in[1]->requires_grad)
        gx[1] = unbroadcast(sg_where(cond, gy, zero), y->in[1]);
    if (y->in[2]->requires_grad)
        gx[2] = unbroadcast(sg_where(cond, zero, gy), y->in[2]);
}

/* ---- clamp ---- */

sg_tensor *sg_clamp(sg_tensor *x, double lo, double hi)
{
    SG_CHECK_INPUT("clamp", x);
    if (isnan(lo) || isnan(hi)) {
        sg_set_error("clamp: bounds %g and %g must not be NaN", lo, hi);
        return NULL;
    }
    sg_tensor *y = sg_alloc("clamp", x->dtype, x->ndim, x->shape);
    if (!y)
        return NULL;
    if (x->dtype == SG_FLOAT64) {
        for (size_t i = 0; i < x->size; i++) {
            double v = x->data64[i];
            v = v < lo ? lo : v; /* NaN compares false and stays */
            y->data64[i] = v > hi ? hi : v;
        }
    } else {
        const float l = (float)lo, h = (float)hi;
        for (size_t i = 0; i < x->size; i++) {
            float v = x->data[i];
            v = v < l ? l : v;
            y->data[i] = v > h ? h : v;
        }
    }
    y->attr.clamp.lo = lo;
    y->attr.clamp.hi = hi;
    return sg_finish(y, SG_OP_CLAMP, &x, 1);
}

/* dx = dy * (lo <= x <= hi), the window a constant: the gradient passes at
 * a bound and stops outside (and at NaN), PyTorch's clamp_backward. The
 * comparison is in x's dtype, as the forward's. */
void sg_bw_clamp(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    sg_tensor *x = y->in[0];
    sg_tensor *m = sg_alloc("clamp_backward", x->dtype, x->ndim, x->shape);
    if (m && x->dtype == SG_FLOAT64) {
        double lo = y->attr.clamp.lo, hi = y->attr.clamp.hi;
        for (size_t i = 0; i < x->size; i++)
            m->data64[i] = x->data64[i] >= lo && x->data64[i] <= hi;
    } else if (m) {
        float lo = (float)y->attr.clamp.lo, hi = (float)y->attr.clamp.hi;
        for (size_t i = 0; i < x->size; i++)
            m->data[i] = x->data[i] >= lo && x->data[i] <= hi;
    }
    gx[0] = m ? sg_mul(gy, m) : NULL;
}
