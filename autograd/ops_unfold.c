/*
 * ops_unfold.c — unfold (im2col) and fold (col2im), the pair that turns a
 * convolution or a pooling window into a matmul or a reduction.
 *
 *   unfold: x (N,C,H,W) -> cols (N*OH*OW, C*KH*KW); row (n,oh,ow) holds the
 *           window under output pixel (oh,ow), columns ordered (c,kh,kw).
 *   fold:   the adjoint: each column entry is added back to the pixel it
 *           came from; entries that came from padding are dropped.
 * Each is the other's local derivative, so both differentiate to any order.
 *
 * Kernels (kernels/unfold.c, one per level): the output is produced in bands, one per (image, output row), so
 * the bands can go to different threads. Within a band the input is read
 * row by row and each window's run of KW values is copied whole where the
 * window lies inside the image (no per-element bounds test); only windows
 * that overhang a border are checked element by element. The common window
 * geometries get copies specialised for their constant KW and stride.
 * (Pooling whose windows tile the input does not come here: nn/ reduces a
 * reshaped view instead.)
 */
#include "sg_float64.h"
#include "sg_internal.h"
#include "sg_kernels.h"
#include "sg_parallel.h"

#include <limits.h>
#include <math.h>

/* (in + 2p - k) / s + 1 in 64 bits; -1 if the window does not fit */
static int64_t window_out64(int in, int k, int s, int p)
{
    if (s <= 0)
        s = 1;
    int64_t span = (int64_t)in + 2 * (int64_t)p;
    if (k <= 0 || p < 0 || in < 0 || span < k)
        return -1;
    return (span - k) / s + 1;
}

int sg_window_out(int in, int k, int s, int p)
{
    int64_t o = window_out64(in, k, s, p);
    return o > INT_MAX ? -1 : (int)o;
}

/* The window's output size and the (N*OH*OW, C*KH*KW) columns it makes,
 * checked: false with a message naming op when the window does not fit or
 * the columns pass the element limit. */
static bool window_ok(const char *op, sg_window *w, int N, int C, int h, int wd, int *oh, int *ow,
                      int cols[2])
{
    if (w->sh <= 0)
        w->sh = 1;
    if (w->sw <= 0)
        w->sw = 1;
    int64_t OH = window_out64(h, w->kh, w->sh, w->ph), OW = window_out64(wd, w->kw, w->sw, w->pw);
    if (OH <= 0 || OW <= 0) {
        sg_set_error("%s: kernel %dx%d with stride (%d,%d) and padding (%d,%d) does not fit a %dx%d input",
                     op, w->kh, w->kw, w->sh, w->sw, w->ph, w->pw, h, wd);
        return false;
    }
    int64_t dims[2] = {sg_count_mul(sg_count_mul(N, OH), OW), sg_count_mul(sg_count_mul(C, w->kh), w->kw)};
    if (!sg_shape_fits(op, "output", 2, dims, cols))
        return false;
    /* both fit an int: each is a factor of a count below the limit or 1 */
    *oh = (int)OH;
    *ow = (int)OW;
    return true;
}

/* unfold's bands [lo, hi) or fold's images [lo, hi): the loops are the
 * per-level kernels of kernels/unfold.c */
typedef struct window_job {
    const float *src;
    float *dst;
    sg_kwindow g;
} window_job;

static void unfold_bands(void *arg, size_t lo, size_t hi)
{
    const window_job *c = arg;
    sg_kern->unfold(c->dst, c->src, &c->g, lo, hi);
}

sg_tensor *sg_unfold(sg_tensor *x, sg_window w)
{
    SG_CHECK_INPUT("unfold", x);
    if (x->ndim != 4) {
        char b[96];
        sg_set_error("unfold: input must be (N,C,H,W), got %s", sg_shape_str(x, b, sizeof b));
        return NULL;
    }
    int N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], OH, OW, shape[2];
    if (!window_ok("unfold", &w, N, C, H, W, &OH, &OW, shape))
        return NULL;
    sg_tensor *y = sg_alloc("unfold", x->dtype, 2, shape);
    if (!y)
        return NULL;
    window_job c = {.src = x->data, .dst = y->data,
                    .g = {.C = C, .H = H, .W = W, .OH = OH, .OW = OW, .w = w}};
    if (x->dtype == SG_FLOAT64)
        sg64_window(false, y->data64, x->data64, &c.g, N);
    else
        sg_parallel_for((size_t)N * OH, y->size, unfold_bands, &c);
    y->attr.win = w;
    /* unfold only copies values: the one non-finite value it can make is a
     * -inf pad_value, which max pooling asks for, so the NaN debug check
     * must not blame unfold for it */
    if (!isfinite(w.pad_value))
        return sg_record(y, SG_OP_UNFOLD, &x, 1);
    return sg_finish(y, SG_OP_UNFOLD, &x, 1);
}

static void fold_images(void *arg, size_t lo, size_t hi)
{
    const window_job *c = arg;
    sg_kern->fold(c->dst, c->src, &c->g, lo, hi);
}

sg_tensor *sg_fold(sg_tensor *cols, int N, int C, int H, int W, sg_window w)
{
    SG_CHECK_INPUT("fold", cols);
    int OH, OW, want[2];
    if (N < 0 || C < 0) {
        sg_set_error("fold: negative image count %d or channel count %d", N, C);
        return NULL;
    }
    if (!window_ok("fold", &w, N, C, H, W, &OH, &OW, want))
        return NULL;
    char b[96];
    if (cols->ndim != 2 || cols->shape[0] != want[0] || cols->shape[1] != want[1]) {
        sg_set_error("fold: columns %s do not match (N*OH*OW, C*KH*KW) = (%d,%d)",
                     sg_shape_str(cols, b, sizeof b), want[0], want[1]);
        return NULL;
    }
    int shape[4] = {N, C, H, W};
    sg_tensor *y = sg_alloc("fold", cols->dtype, 4, shape);
    if (!y)
        return NULL;
    window_job c = {.src = cols->data, .dst = y->data,
                    .g = {.C = C, .H = H, .W = W, .OH = OH, .OW = OW, .w = w}};
    if (cols->dtype == SG_FLOAT64)
        sg64_window(true, cols->data64, y->data64, &c.g, N);
    else
        sg_parallel_for((size_t)N, cols->size + y->size, fold_images, &c);
    y->attr.win = w;
    return sg_finish(y, SG_OP_FOLD, &cols, 1);
}

void sg_bw_unfold(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    sg_tensor *x = y->in[0];
    gx[0] = sg_fold(gy, x->shape[0], x->shape[1], x->shape[2], x->shape[3], y->attr.win);
}

void sg_bw_fold(sg_tensor *y, sg_tensor *gy, sg_tensor **gx)
{
    sg_window w = y->attr.win;
    w.pad_value = 0.f; /* the adjoint reads zeros where padding was */
    gx[0] = sg_unfold(gy, w);
}
