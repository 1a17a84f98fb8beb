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
#include "sg_internal.h"
#include "sg_kernels.h"
#include "sg_parallel.h"

#include <math.h>

int sg_window_out(int in, int k, int s, int p)
{
    if (s <= 0)
        s = 1;
    if (k <= 0 || p < 0 || in + 2 * p < k)
        return -1;
    return (in + 2 * p - k) / s + 1;
}

static bool window_ok(const char *op, sg_window *w, int h, int wd, int *oh, int *ow)
{
    if (w->sh <= 0)
        w->sh = 1;
    if (w->sw <= 0)
        w->sw = 1;
    *oh = sg_window_out(h, w->kh, w->sh, w->ph);
    *ow = sg_window_out(wd, w->kw, w->sw, w->pw);
    if (*oh <= 0 || *ow <= 0) {
        sg_set_error("%s: kernel %dx%d with stride (%d,%d) and padding (%d,%d) does not fit a %dx%d input",
                     op, w->kh, w->kw, w->sh, w->sw, w->ph, w->pw, h, wd);
        return false;
    }
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
    if (!x) {
        if (!sg_has_error())
            sg_set_error("unfold: NULL input");
        return NULL;
    }
    if (x->ndim != 4) {
        char b[96];
        sg_set_error("unfold: input must be (N,C,H,W), got %s", sg_shape_str(x, b, sizeof b));
        return NULL;
    }
    int N = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], OH, OW;
    if (!window_ok("unfold", &w, H, W, &OH, &OW))
        return NULL;
    int shape[2] = {N * OH * OW, C * w.kh * w.kw};
    sg_tensor *y = sg_alloc("unfold", 2, shape);
    if (!y)
        return NULL;
    window_job c = {.src = x->data, .dst = y->data,
                    .g = {.C = C, .H = H, .W = W, .OH = OH, .OW = OW, .w = w}};
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
    if (!cols) {
        if (!sg_has_error())
            sg_set_error("fold: NULL input");
        return NULL;
    }
    int OH, OW;
    if (N < 0 || C < 0 || !window_ok("fold", &w, H, W, &OH, &OW))
        return NULL;
    char b[96];
    if (cols->ndim != 2 || cols->shape[0] != N * OH * OW || cols->shape[1] != C * w.kh * w.kw) {
        sg_set_error("fold: columns %s do not match (N*OH*OW, C*KH*KW) = (%d,%d)",
                     sg_shape_str(cols, b, sizeof b), N * OH * OW, C * w.kh * w.kw);
        return NULL;
    }
    int shape[4] = {N, C, H, W};
    sg_tensor *y = sg_alloc("fold", 4, shape);
    if (!y)
        return NULL;
    window_job c = {.src = cols->data, .dst = y->data,
                    .g = {.C = C, .H = H, .W = W, .OH = OH, .OW = OW, .w = w}};
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
