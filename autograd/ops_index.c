/*
 * ops_index.c — indexing along an axis: gather (torch.gather,
 * np.take_along_axis) and its adjoint scatter_add, both primitives; take
 * (np.take: embedding lookups) composed of gather; and sg_from_ints, which
 * makes an index tensor.
 *
 * Key idea: the engine has no integer dtype, so indices are an index tensor
 * of whole numbers (any dtype; float64 holds every int exactly), checked
 * on every use with a message naming the bad value, its position and the
 * axis. The index tensor is an input of the node — the graph keeps it
 * alive for backward — but never differentiable (refused if it requires a
 * gradient). gather and scatter_add are each other's adjoint, so their
 * local derivatives are each other, recorded, and compose to any order.
 *
 * Layout: with `axis` fixed, a tensor is seen as (outer, L, inner): outer
 * the product of the dims before the axis, inner of those after. gather
 * reads x at (o, index[o, j, i], i) into y at (o, j, i).
 */
#include "sg_float64.h"
#include "sg_internal.h"

#include <math.h>

/* outer = prod(shape[:axis]), inner = prod(shape[axis+1:]) */
static void split_axis(const sg_tensor *x, int axis, size_t *outer, size_t *inner)
{
    *outer = *inner = 1;
    for (int i = 0; i < axis; i++)
        *outer *= (size_t)x->shape[i];
    for (int i = axis + 1; i < x->ndim; i++)
        *inner *= (size_t)x->shape[i];
}

/* Index i of an index tensor (either dtype), inlined: the loops below read
 * one per element, and the integer-label losses run them every step. */
static inline double index_at(const sg_tensor *ix, size_t i)
{
    return ix->dtype == SG_FLOAT64 ? ix->data64[i] : (double)ix->data[i];
}

/* The walk of gather and scatter_add: element k of the index, at (o, j, i)
 * of (outer, li, inner), addresses position `pos` = (o, index[k], i) of the
 * (outer, len, inner) tensor. Indices are already checked (whole, in
 * range), so the conversion through int64 is exact; the dtype tests are
 * loop-invariant and hoisted by the compiler. */
#define INDEX_WALK(index, outer, li, len, inner, BODY)                                               \
    do {                                                                                           \
        const bool i64_ = (index)->dtype == SG_FLOAT64;                                            \
        size_t k = 0;                                                                              \
        for (size_t o = 0; o < (outer); o++)                                                       \
            for (size_t j = 0; j < (li); j++)                                                      \
                for (size_t i = 0; i < (inner); i++, k++) {                                        \
                    int64_t ix_ = i64_ ? (int64_t)(index)->data64[k] : (int64_t)(index)->data[k]; \
                    size_t pos = (o * (len) + (size_t)ix_) * (inner) + i;                          \
                    BODY;                                                                          \
                }                                                                                  \
    } while (0)

/* axis normalised into [0, ndim), or -1 with a message naming op */
static int norm_axis(const char *op, const sg_tensor *x, int axis)
{
    int ax = axis < 0 ? axis + x->ndim : axis;
    if (ax < 0 || ax >= x->ndim) {
        char b[96];
        sg_set_error("%s: axis %d is out of range for %s", op, axis, sg_shape_str(x, b, sizeof b));
        return -1;
    }
    return ax;
}

/* The index tensor is usable: not NULL, not needing a gradient, every value
 * a whole number in [0, len). False with a message naming the first bad one. */
static bool index_ok(const char *op, const sg_tensor *index, int axis, int len)
{
    char b[96];
    if (index->requires_grad) {
        sg_set_error("%s: the index %s requires a gradient, but indices are not differentiable (sg_detach it)",
                     op, sg_shape_str(index, b, sizeof b));
        return false;
    }
    for (size_t i = 0; i < index->size; i++) {
        double v = index_at(index, i);
        if (v >= 0 && v < len && v == (double)(int64_t)v) /* in range first: the cast is defined */
            continue;
        if (v != floor(v) || isnan(v))
            sg_set_error("%s: index %g at position %zu of the index %s is not a whole number", op, v, i,
                         sg_shape_str(index, b, sizeof b));
        else
            sg_set_error("%s: index %g at position %zu of the index %s is out of range for axis %d of size %d", op,
                         v, i, sg_shape_str(index, b, sizeof b), axis, len);
        return false;
    }
    return true;
}

/* index has x's rank and x's dims off the axis; else a message */
static bool index_shape_ok(const char *op, const sg_tensor *x, const sg_tensor *index, int ax, const char *xname)
{
    bool ok = index->ndim == x->ndim;
    for (int d = 0; ok && d < x->ndim; d++)
        ok = d == ax || index->shape[d] == x->shape[d];
    if (!ok) {
        char bx[96], bi[96];
        sg_set_error("%s: index %s must have the rank and the dims of %s %s except on axis %d", op,
                     sg_shape_str(index, bi, sizeof bi), xname, sg_shape_str(x, bx, sizeof bx), ax);
    }
    return ok;
}

sg_tensor *sg_from_ints(const int *idx, int ndim, const int *shape)
{
    sg_tensor *t = sg_alloc("from_ints", SG_FLOAT64, ndim, shape);
    if (!t)
        return NULL;
    if (!idx && t->size) {
        sg_set_error("from_ints: NULL data for %zu elements", t->size);
        sg_tensor_free(t);
        return NULL;
    }
    for (size_t i = 0; i < t->size; i++)
        t->data64[i] = idx[i];
    return t;
}

/* ---- gather ---- */

sg_tensor *sg_gather(sg_tensor *x, int axis, sg_tensor *index)
{
    SG_CHECK_INPUT("gather", x);
    SG_CHECK_INPUT("gather", index);
    int ax = norm_axis("gather", x, axis);
    if (ax < 0 || !index_shape_ok("gather", x, index, ax, "x") || !index_ok("gather", index, ax, x->shape[ax]))
        return NULL;
    sg_tensor *y = sg_alloc("gather", x->dtype, index->ndim, index->shape);
    if (!y)
        return NULL;
    size_t outer, inner;
    split_axis(index, ax, &outer, &inner);
    const size_t li = (size_t)index->shape[ax], lx = (size_t)x->shape[ax];
    if (x->dtype == SG_FLOAT64)
        INDEX_WALK(index, outer, li, lx, inner, y->data64[k] = x->data64[pos]);
    else
        INDEX_WALK(index, outer, li, lx, inner, y->data[k] = x->data[pos]);
    y->attr.gather_axis = ax;
    sg_tensor *in[2] = {x, index};
    return sg_finish(y, SG_OP_GATHER, in, 2);
}

/* dx = scatter_add(zeros_like(x), axis, index, dy): each dy element goes
 * back to where its value came from; positions taken twice add up. */
void sg_bw_gather(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    sg_tensor *x = y->in[0], *index = y->in[1];
    gx[0] = sg_scatter_add(sg_zeros_like(x), y->attr.gather_axis, index, gy);
}

/* ---- scatter_add ---- */

sg_tensor *sg_scatter_add(sg_tensor *base, int axis, sg_tensor *index, sg_tensor *src)
{
    SG_CHECK_INPUT("scatter_add", base);
    SG_CHECK_INPUT("scatter_add", index);
    SG_CHECK_INPUT("scatter_add", src);
    if (sg_promote(&base, &src) < 0) /* not index: read by value, in any dtype */
        return NULL;
    int ax = norm_axis("scatter_add", base, axis);
    if (ax < 0 || !index_shape_ok("scatter_add", base, index, ax, "base"))
        return NULL;
    if (!sg_same_shape(index, src)) {
        char bi[96], bs[96];
        sg_set_error("scatter_add: src %s and index %s differ in shape", sg_shape_str(src, bs, sizeof bs),
                     sg_shape_str(index, bi, sizeof bi));
        return NULL;
    }
    if (!index_ok("scatter_add", index, ax, base->shape[ax]))
        return NULL;
    sg_tensor *y = sg_copy(base);
    if (!y)
        return NULL;
    size_t outer, inner;
    split_axis(index, ax, &outer, &inner);
    const size_t li = (size_t)index->shape[ax], lb = (size_t)base->shape[ax];
    if (y->dtype == SG_FLOAT64)
        INDEX_WALK(index, outer, li, lb, inner, y->data64[pos] += src->data64[k]);
    else
        INDEX_WALK(index, outer, li, lb, inner, y->data[pos] += src->data[k]);
    y->attr.gather_axis = ax;
    sg_tensor *in[3] = {base, index, src};
    return sg_finish(y, SG_OP_SCATTER_ADD, in, 3);
}

/* dbase = dy; dsrc = gather(dy, axis, index): what each src element was
 * added to. */
void sg_bw_scatter_add(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    if (y->in[0]->requires_grad)
        gx[0] = gy;
    if (y->in[2]->requires_grad)
        gx[2] = sg_gather(gy, y->attr.gather_axis, y->in[1]);
}

/* ---- take ---- */

static sg_tensor *take_body(sg_tensor *x, int axis, sg_tensor *index)
{
    SG_CHECK_INPUT("take", x);
    SG_CHECK_INPUT("take", index);
    int ax = norm_axis("take", x, axis);
    if (ax < 0 || !index_ok("take", index, ax, x->shape[ax]))
        return NULL;
    int nd = x->ndim - 1 + index->ndim;
    if (nd > SG_MAX_DIMS) {
        char bx[96], bi[96];
        sg_set_error("take: x %s and index %s give %d dims (at most %d)", sg_shape_str(x, bx, sizeof bx),
                     sg_shape_str(index, bi, sizeof bi), nd, SG_MAX_DIMS);
        return NULL;
    }
    size_t outer, inner;
    split_axis(x, ax, &outer, &inner);
    /* x as (outer, L, inner), and the index repeated to (outer, n, inner) */
    int x3[3] = {(int)outer, x->shape[ax], (int)inner};
    int i3[3] = {(int)outer, (int)index->size, (int)inner};
    sg_tensor *idx = sg_full_dtype(SG_FLOAT64, 0.0, 3, i3);
    if (!idx)
        return NULL;
    for (size_t o = 0; o < outer; o++)
        for (size_t j = 0; j < index->size; j++) {
            double v = index_at(index, j);
            for (size_t i = 0; i < inner; i++)
                idx->data64[(o * index->size + j) * inner + i] = v;
        }
    int shape[SG_MAX_DIMS], k = 0;
    for (int d = 0; d < ax; d++)
        shape[k++] = x->shape[d];
    for (int d = 0; d < index->ndim; d++)
        shape[k++] = index->shape[d];
    for (int d = ax + 1; d < x->ndim; d++)
        shape[k++] = x->shape[d];
    return sg_reshape(sg_gather(sg_reshape(x, 3, x3), 1, idx), nd, shape);
}

sg_tensor *sg_take(sg_tensor *x, int axis, sg_tensor *index)
{
    SG_API_BEGIN("take");
    sg_tensor *y = take_body(x, axis, index);
    SG_API_END();
    return y;
}
