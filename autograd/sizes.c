/*
 * sizes.c — overflow-checked size arithmetic. Every element count the
 * library derives from numbers a user gave (a shape to create, a window's
 * output, a reshape, a concatenation) is computed here in 64 bits, with
 * saturation instead of wrap-around, and checked against one limit before
 * it becomes an int shape.
 *
 * The limit: a tensor holds at most SG_MAX_ELEMENTS = 2^31 - 1 elements,
 * and its nonzero dims multiply to at most that too (so an empty tensor
 * cannot have an inner stride that overflows). Dims are ints, and the
 * kernels compute offsets within one tensor in int or size_t; below the
 * limit none of that arithmetic can overflow, and the byte count (at most
 * 8 GiB) fits a size_t on every 64-bit target.
 */
#include "sg_internal.h"

#include <inttypes.h>
#include <limits.h>

int64_t sg_count_mul(int64_t a, int64_t b)
{
    int64_t r;
    if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r))
        return INT64_MAX;
    return r;
}

int64_t sg_count_add(int64_t a, int64_t b)
{
    int64_t r;
    if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &r))
        return INT64_MAX;
    return r;
}

/* "4294967296", or "more than 9223372036854775806" for a saturated count */
static const char *fmt_count(int64_t n, char *buf, size_t len)
{
    if (n == INT64_MAX)
        snprintf(buf, len, "more than %" PRId64, INT64_MAX - 1);
    else
        snprintf(buf, len, "%" PRId64, n);
    return buf;
}

bool sg_shape_fits(const char *op, const char *what, int ndim, const int64_t *dims, int *shape)
{
    if (ndim < 0 || ndim > SG_MAX_DIMS || (ndim && !dims)) {
        sg_set_error("%s: %s has %d dims (at most %d)", op, what, ndim, SG_MAX_DIMS);
        return false;
    }
    /* zero dims count as 1: every partial product of a shape's dims (an
     * inner stride, a flattened row) must fit too, even when another dim
     * makes the tensor empty */
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n = sg_count_mul(n, dims[i] ? dims[i] : 1);
    bool negative = false;
    for (int i = 0; i < ndim; i++)
        negative |= dims[i] < 0;
    if (!negative && n <= SG_MAX_ELEMENTS) {
        for (int i = 0; shape && i < ndim; i++)
            shape[i] = (int)dims[i];
        return true;
    }
    /* the message: built only on failure (this runs for every new tensor) */
    char list[SG_MAX_DIMS * 24], c[40];
    size_t o = 0;
    for (int i = 0; i < ndim && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, i ? " × %s" : "%s", fmt_count(dims[i], c, sizeof c));
    if (negative) { /* "negative dim in shape (2,-1)" */
        o = 0;
        for (int k = 0; k < ndim && o < sizeof list; k++)
            o += (size_t)snprintf(list + o, sizeof list - o, k ? ",%" PRId64 : "(%" PRId64, dims[k]);
        sg_set_error("%s: negative dim in %s %s)", op, what, list);
        return false;
    }
    bool empty = false;
    for (int i = 0; i < ndim; i++)
        empty |= dims[i] == 0;
    if (empty)
        sg_set_error("%s: %s (%s) is too large: its nonzero dims multiply to %s (at most %d)", op, what, list,
                     fmt_count(n, c, sizeof c), SG_MAX_ELEMENTS);
    else if (ndim == 1)
        sg_set_error("%s: %s of %s elements is too large (at most %d)", op, what, fmt_count(n, c, sizeof c),
                     SG_MAX_ELEMENTS);
    else
        sg_set_error("%s: %s of %s = %s elements is too large (at most %d)", op, what, list,
                     fmt_count(n, c, sizeof c), SG_MAX_ELEMENTS);
    return false;
}

bool sg_shape_check(const char *op, int ndim, const int *shape)
{
    /* the common case, every new tensor's: no negative dim and the product
     * of the dims (zeros as 1) within SG_MAX_ELEMENTS; each partial product
     * stays below 2^31 * 2^31, so int64 cannot overflow before the test */
    if (ndim >= 0 && ndim <= SG_MAX_DIMS && (shape || ndim == 0)) {
        int64_t n = 1;
        int i = 0;
        for (; i < ndim && shape[i] >= 0 && n <= SG_MAX_ELEMENTS; i++)
            n *= shape[i] ? shape[i] : 1;
        if (i == ndim && n <= SG_MAX_ELEMENTS)
            return true;
    }
    /* else the full check, which writes the message */
    if (ndim < 0 || ndim > SG_MAX_DIMS) {
        sg_set_error("%s: %d dims (at most %d)", op, ndim, SG_MAX_DIMS);
        return false;
    }
    if (ndim > 0 && !shape) {
        sg_set_error("%s: NULL shape", op);
        return false;
    }
    int64_t dims[SG_MAX_DIMS];
    for (int i = 0; i < ndim; i++)
        dims[i] = shape[i];
    return sg_shape_fits(op, "shape", ndim, dims, NULL);
}
