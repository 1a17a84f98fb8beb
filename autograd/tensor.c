/*
 * tensor.c — creation, access, printing, shape helpers, and the recording
 * step every op ends with (sg_finish: NaN check, then record the node).
 */
#include "sg_internal.h"

#include <math.h>

_Thread_local bool sg_tl_grad_enabled = true;
_Thread_local bool sg_tl_nan_check;
_Thread_local uint32_t sg_tl_next_id;

/* ---- shape helpers ---- */

size_t sg_shape_size(int ndim, const int *shape)
{
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    return n;
}

char *sg_fmt_shape(int ndim, const int *shape, char *buf, size_t len)
{
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "(");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, i ? ",%d" : "%d", shape[i]);
    if (o < len)
        snprintf(buf + o, len - o, ")");
    return buf;
}

char *sg_shape_str(const sg_tensor *x, char *buf, size_t len)
{
    if (!x) {
        snprintf(buf, len, "(null)");
        return buf;
    }
    if (!sg_check_tensor("shape_str", x)) { /* a dead header's shape is stale */
        snprintf(buf, len, "(dead)");
        return buf;
    }
    return sg_fmt_shape(x->ndim, x->shape, buf, len);
}

int sg_broadcast_shapes(int na, const int *sa, int nb, const int *sb, int *out)
{
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int da = i < n - na ? 1 : sa[i - (n - na)];
        int db = i < n - nb ? 1 : sb[i - (n - nb)];
        if (da != db && da != 1 && db != 1)
            return -1;
        out[i] = da == 1 ? db : da;
    }
    return n;
}

int sg_axes_mask(const char *op, int ndim, const int *axes, int n_axes, uint32_t *mask)
{
    *mask = 0;
    if (n_axes == 0) {
        *mask = ndim ? (uint32_t)((1u << ndim) - 1) : 0;
        return 0;
    }
    if (!axes || n_axes < 0) {
        sg_set_error("%s: bad axes list", op);
        return -1;
    }
    for (int i = 0; i < n_axes; i++) {
        int a = axes[i] < 0 ? axes[i] + ndim : axes[i];
        if (a < 0 || a >= ndim) {
            sg_set_error("%s: axis %d is out of range for %d dims", op, axes[i], ndim);
            return -1;
        }
        if (*mask & (1u << a)) {
            sg_set_error("%s: axis %d given twice", op, axes[i]);
            return -1;
        }
        *mask |= 1u << a;
    }
    return 0;
}

int sg_reduced_shape(int ndim, const int *shape, uint32_t mask, bool keep, int *out)
{
    int n = 0;
    for (int i = 0; i < ndim; i++) {
        if (mask & (1u << i)) {
            if (keep)
                out[n++] = 1;
        } else {
            out[n++] = shape[i];
        }
    }
    return n;
}

/* ---- dtypes ---- */

/* The dtype creation functions use when none is named (torch's
 * set_default_dtype); per thread, like the grad mode. */
static _Thread_local sg_dtype tl_default_dtype = SG_FLOAT32;

sg_dtype sg_set_default_dtype(sg_dtype dt)
{
    sg_dtype prev = tl_default_dtype;
    if (dt != SG_FLOAT32 && dt != SG_FLOAT64) {
        sg_set_error("set_default_dtype: unknown dtype %d", (int)dt);
        return prev;
    }
    tl_default_dtype = dt;
    return prev;
}

sg_dtype sg_default_dtype(void) { return tl_default_dtype; }

const char *sg_dtype_name(sg_dtype dt)
{
    return dt == SG_FLOAT32 ? "float32" : dt == SG_FLOAT64 ? "float64" : "?";
}

sg_dtype sg_dtype_of(const sg_tensor *x) { return x && sg_check_tensor("dtype_of", x) ? x->dtype : SG_FLOAT32; }

double sg_value_at(const sg_tensor *x, size_t i)
{
    return x->dtype == SG_FLOAT64 ? x->data64[i] : (double)x->data[i];
}

void sg_set_value_at(sg_tensor *x, size_t i, double v)
{
    if (x->dtype == SG_FLOAT64)
        x->data64[i] = v;
    else
        x->data[i] = (float)v;
}

/* ---- creation ---- */

/* a new tensor filled with value; errors name op, the function called */
static sg_tensor *full(const char *op, sg_dtype dt, double value, int ndim, const int *shape)
{
    sg_tensor *t = sg_alloc(op, dt, ndim, shape);
    if (!t)
        return NULL;
    if (value == 0.0 && !signbit(value))
        memset(t->bytes, 0, t->size * sg_dtype_size(dt));
    else if (dt == SG_FLOAT64)
        for (size_t i = 0; i < t->size; i++)
            t->data64[i] = value;
    else
        for (size_t i = 0; i < t->size; i++)
            t->data[i] = (float)value;
    return t;
}

sg_tensor *sg_zeros(int ndim, const int *shape) { return full("zeros", tl_default_dtype, 0.0, ndim, shape); }

sg_tensor *sg_empty(int ndim, const int *shape) { return sg_alloc("empty", tl_default_dtype, ndim, shape); }

sg_tensor *sg_ones(int ndim, const int *shape) { return full("ones", tl_default_dtype, 1.0, ndim, shape); }

sg_tensor *sg_full(double value, int ndim, const int *shape)
{
    return full("full", tl_default_dtype, value, ndim, shape);
}

sg_tensor *sg_full_dtype(sg_dtype dt, double value, int ndim, const int *shape)
{
    if (dt != SG_FLOAT32 && dt != SG_FLOAT64) {
        sg_set_error("full_dtype: unknown dtype %d", (int)dt);
        return NULL;
    }
    return full("full_dtype", dt, value, ndim, shape);
}

sg_tensor *sg_scalar(double v) { return full("scalar", tl_default_dtype, v, 0, NULL); }

sg_tensor *sg_from_data(const float *data, int ndim, const int *shape)
{
    sg_tensor *t = sg_alloc("from_data", tl_default_dtype, ndim, shape);
    if (!t)
        return NULL;
    if (!data && t->size) {
        sg_set_error("from_data: NULL data for %zu elements", t->size);
        sg_tensor_free(t); /* a heap one; an arena one is reclaimed with its scope */
        return NULL;
    }
    if (t->dtype == SG_FLOAT64)
        for (size_t i = 0; i < t->size; i++)
            t->data64[i] = data[i];
    else if (t->size)
        memcpy(t->data, data, t->size * sizeof(float));
    return t;
}

sg_tensor *sg_from_data64(const double *data, int ndim, const int *shape)
{
    sg_tensor *t = sg_alloc("from_data64", SG_FLOAT64, ndim, shape);
    if (!t)
        return NULL;
    if (!data && t->size) {
        sg_set_error("from_data64: NULL data for %zu elements", t->size);
        sg_tensor_free(t);
        return NULL;
    }
    if (t->size)
        memcpy(t->data64, data, t->size * sizeof(double));
    return t;
}

sg_tensor *sg_arange(double start, double stop, double step)
{
    if (step == 0.0 || !isfinite(start) || !isfinite(stop) || !isfinite(step)) {
        sg_set_error("arange: step must be nonzero and bounds finite (start %g, stop %g, step %g)",
                     start, stop, step);
        return NULL;
    }
    double n = ceil((stop - start) / step);
    if (n < 0)
        n = 0;
    if (n > SG_MAX_ELEMENTS) {
        sg_set_error("arange: %.0f elements is too large (at most %d)", n, SG_MAX_ELEMENTS);
        return NULL;
    }
    int len = (int)n;
    sg_tensor *t = sg_alloc("arange", tl_default_dtype, 1, &len);
    if (!t)
        return NULL;
    for (int i = 0; i < len; i++)
        sg_set_value_at(t, (size_t)i, start + (double)i * step);
    return t;
}

sg_tensor *sg_uniform(sg_rng *rng, double lo, double hi, int ndim, const int *shape)
{
    if (!(lo <= hi)) {
        sg_set_error("uniform: low %g is above high %g", lo, hi);
        return NULL;
    }
    sg_tensor *t = sg_alloc("uniform", tl_default_dtype, ndim, shape);
    if (!t)
        return NULL;
    if (!rng)
        rng = sg_default_rng();
    for (size_t i = 0; i < t->size; i++)
        sg_set_value_at(t, i, lo + (hi - lo) * sg_rng_uniform(rng));
    return t;
}

sg_tensor *sg_normal(sg_rng *rng, double mean, double std, int ndim, const int *shape)
{
    if (!(std >= 0.0)) {
        sg_set_error("normal: std %g must be >= 0", std);
        return NULL;
    }
    sg_tensor *t = sg_alloc("normal", tl_default_dtype, ndim, shape);
    if (!t)
        return NULL;
    if (!rng)
        rng = sg_default_rng();
    for (size_t i = 0; i < t->size; i++)
        sg_set_value_at(t, i, mean + std * sg_rng_normal(rng));
    return t;
}

sg_tensor *sg_zeros_like(const sg_tensor *x)
{
    SG_CHECK_INPUT("zeros_like", x);
    return full("zeros_like", x->dtype, 0.0, x->ndim, x->shape);
}

sg_tensor *sg_ones_like(const sg_tensor *x)
{
    SG_CHECK_INPUT("ones_like", x);
    return full("ones_like", x->dtype, 1.0, x->ndim, x->shape);
}

sg_tensor *sg_full_like(const sg_tensor *x, double value)
{
    SG_CHECK_INPUT("full_like", x);
    return full("full_like", x->dtype, value, x->ndim, x->shape);
}

sg_tensor *sg_copy(const sg_tensor *x)
{
    SG_CHECK_INPUT("copy", x);
    sg_tensor *y = sg_alloc("copy", x->dtype, x->ndim, x->shape);
    if (y && y->size)
        memcpy(y->bytes, x->bytes, y->size * sg_dtype_size(x->dtype));
    return y;
}

sg_tensor *sg_detach(sg_tensor *x)
{
    SG_CHECK_INPUT("detach", x);
    return sg_alloc_view("detach", x, x->ndim, x->shape);
}

/* ---- access ---- */

/* Accessors answer -1 / 0 / NULL for NULL without a message (a query,
 * like strlen of an optional name); a stale tensor is refused with one. */
static bool readable(const char *func, const sg_tensor *x) { return x && sg_check_tensor(func, x); }

int sg_ndim(const sg_tensor *x) { return readable("ndim", x) ? x->ndim : -1; }
const int *sg_shape(const sg_tensor *x) { return readable("shape", x) ? x->shape : NULL; }

int sg_dim(const sg_tensor *x, int d)
{
    if (!readable("dim", x))
        return -1;
    if (d < 0)
        d += x->ndim;
    return d >= 0 && d < x->ndim ? x->shape[d] : -1;
}

size_t sg_size(const sg_tensor *x) { return readable("size", x) ? x->size : 0; }

/* The typed pointer of x's values, or NULL with a message naming the other
 * accessor when x has the other dtype (a float * to doubles would read
 * garbage). */
static void *typed_data(const char *func, const char *base, const sg_tensor *x, sg_dtype want)
{
    if (x->dtype == want)
        return x->bytes;
    sg_set_error("%s: the tensor is %s; use sg_%s%s", func, sg_dtype_name(x->dtype), base,
                 x->dtype == SG_FLOAT64 ? "64" : "");
    return NULL;
}

float *sg_data(sg_tensor *x) { return readable("data", x) ? typed_data("data", "data", x, SG_FLOAT32) : NULL; }
double *sg_data64(sg_tensor *x)
{
    return readable("data64", x) ? typed_data("data64", "data", x, SG_FLOAT64) : NULL;
}

double sg_item64(const sg_tensor *x)
{
    if (!sg_check_tensor("item", x))
        return NAN;
    if (x->size != 1) {
        char b[96];
        sg_set_error("item: expected one element, got shape %s", sg_shape_str(x, b, sizeof b));
        return NAN;
    }
    return sg_value_at(x, 0);
}

float sg_item(const sg_tensor *x)
{
    SG_API_BEGIN("item");
    float v = (float)sg_item64(x);
    SG_API_END();
    return v;
}

sg_tensor *sg_grad(const sg_tensor *x) { return readable("grad", x) ? x->grad : NULL; }
float *sg_grad_data(const sg_tensor *x)
{
    return readable("grad_data", x) && x->grad ? typed_data("grad_data", "grad_data", x->grad, SG_FLOAT32) : NULL;
}
double *sg_grad_data64(const sg_tensor *x)
{
    return readable("grad_data64", x) && x->grad ? typed_data("grad_data64", "grad_data", x->grad, SG_FLOAT64)
                                                 : NULL;
}

void sg_zero_grad(sg_tensor *x)
{
    if (!readable("zero_grad", x) || !x->grad)
        return;
    sg_grad_reset(x); /* an owned buffer is zeroed, a shared one dropped */
}

sg_tensor *sg_param(sg_tensor *x)
{
    SG_API_BEGIN("param");
    sg_tensor *y = sg_set_requires_grad(x, true);
    SG_API_END();
    return y;
}

sg_tensor *sg_set_requires_grad(sg_tensor *x, bool on)
{
    SG_CHECK_INPUT("set_requires_grad", x);
    if (x->op != SG_OP_LEAF) {
        sg_set_error("set_requires_grad: only a leaf can change it (this tensor comes from %s)",
                     sg_node_op_name(x));
        return NULL;
    }
    x->requires_grad = on;
    return x;
}

bool sg_requires_grad(const sg_tensor *x) { return readable("requires_grad", x) && x->requires_grad; }
bool sg_has_history(const sg_tensor *x) { return readable("has_history", x) && x->op != SG_OP_LEAF; }
const char *sg_op_name_of(const sg_tensor *x) { return readable("op_name_of", x) ? sg_node_op_name(x) : "null"; }

sg_tensor *sg_set_name(sg_tensor *x, const char *name)
{
    SG_CHECK_INPUT("set_name", x);
    snprintf(x->name, sizeof x->name, "%s", name ? name : "");
    return x;
}

const char *sg_name(const sg_tensor *x) { return readable("name", x) ? x->name : ""; }

bool sg_same_shape(const sg_tensor *a, const sg_tensor *b)
{
    if (!readable("same_shape", a) || !readable("same_shape", b) || a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

/* ---- printer ---- */

/* Whole numbers as NumPy writes them ("2.", "-0."); the range test comes
 * first so NaN/Inf never reach a float-to-integer conversion. Others with
 * the digits their dtype carries: 6 for float32 (as before), 15 for
 * float64 (NumPy prints up to 16; 15 is what every double round-trips to
 * a decimal and back). */
static void print_value(FILE *f, double v, sg_dtype dt)
{
    if (fabs(v) < 1e7 && v == trunc(v))
        fprintf(f, "%.0f.", v);
    else
        fprintf(f, dt == SG_FLOAT64 ? "%.15g" : "%.6g", v);
}

static void print_rec(FILE *f, const sg_tensor *x, int dim, size_t off, int indent)
{
    if (dim == x->ndim) {
        print_value(f, sg_value_at(x, off), x->dtype);
        return;
    }
    size_t stride = 1;
    for (int i = dim + 1; i < x->ndim; i++)
        stride *= (size_t)x->shape[i];
    int n = x->shape[dim];
    bool elide = x->size > 1000 && n > 6; /* NumPy's summarising rule */
    fputc('[', f);
    for (int i = 0; i < n; i++) {
        bool skip = elide && i == 3; /* "..." stands for elements 3 .. n-4 */
        if (i) {
            if (dim == x->ndim - 1) {
                fputc(' ', f);
            } else {
                for (int k = dim + 1; k < x->ndim; k++)
                    fputc('\n', f);
                for (int k = 0; k < indent + 1; k++)
                    fputc(' ', f);
            }
        }
        if (skip) {
            fputs("...", f);
            i = n - 4;
            continue;
        }
        print_rec(f, x, dim + 1, off + (size_t)i * stride, indent + 1);
    }
    fputc(']', f);
}

void sg_print(FILE *f, const sg_tensor *x)
{
    if (!sg_check_file("print", f) || (x && !sg_check_tensor("print", x)))
        return;
    if (!x) {
        fputs("(null)\n", f);
        return;
    }
    if (x->size == 0) {
        char b[96];
        fprintf(f, "[] shape %s\n", sg_shape_str(x, b, sizeof b));
        return;
    }
    print_rec(f, x, 0, 0, 0);
    fputc('\n', f);
}

/* ---- grad mode, NaN check, recording ---- */

bool sg_set_grad_enabled(bool on)
{
    bool prev = sg_tl_grad_enabled;
    sg_tl_grad_enabled = on;
    return prev;
}

bool sg_is_grad_enabled(void) { return sg_tl_grad_enabled; }

bool sg_set_nan_check(bool on)
{
    bool prev = sg_tl_nan_check;
    sg_tl_nan_check = on;
    return prev;
}

static bool all_finite(const sg_tensor *x)
{
    for (size_t i = 0; i < x->size; i++)
        if (!isfinite(sg_value_at(x, i)))
            return false;
    return true;
}

sg_tensor *sg_check_finite(sg_tensor *y, const char *op, sg_tensor *const *in, int n)
{
    if (!sg_tl_nan_check || !y || all_finite(y))
        return y;
    for (int i = 0; i < n; i++)
        if (!all_finite(in[i]))
            return y; /* not the first op to go wrong */
    char b[96];
    size_t bad = 0;
    while (isfinite(sg_value_at(y, bad)))
        bad++;
    sg_set_error("%s: produced %s at index %zu of a %s result from finite inputs", op,
                 isnan(sg_value_at(y, bad)) ? "NaN" : "Inf", bad, sg_shape_str(y, b, sizeof b));
    sg_tensor_free(y); /* not recorded yet; a heap result would leak */
    return NULL;
}

bool sg_should_record(sg_tensor *const *in, int n)
{
    if (!sg_tl_grad_enabled)
        return false;
    for (int i = 0; i < n; i++)
        if (in[i]->requires_grad)
            return true;
    return false;
}

sg_tensor *sg_record(sg_tensor *y, enum sg_op op, sg_tensor *const *in, int n)
{
    if (!y || !sg_should_record(in, n))
        return y;
    if (n > 2) {
        sg_tensor **arr = y->arena ? sg_scope_alloc((size_t)n * sizeof *arr)
                                   : malloc((size_t)n * sizeof *arr);
        if (!arr) {
            sg_set_error("%s: out of memory recording %d inputs", sg_op_table[op].name, n);
            sg_tensor_free(y);
            return NULL;
        }
        y->in = arr;
    }
    for (int i = 0; i < n; i++)
        y->in[i] = in[i];
    y->n_in = n;
    y->op = op;
    y->requires_grad = true;
    return y;
}

sg_tensor *sg_finish(sg_tensor *y, enum sg_op op, sg_tensor *const *in, int n)
{
    if (sg_tl_nan_check) /* tested here: the call and the op's name cost cold lines after a BLAS call */
        y = sg_check_finite(y, sg_op_table[op].name, in, n);
    return sg_record(y, op, in, n);
}
