/*
 * ops_unfold.c — unfold (im2col) and fold (col2im), the pair that turns a
 * convolution or a pooling window into a matmul or a reduction.
 *
 *   unfold: x (N,C,H,W) -> cols (N*OH*OW, C*KH*KW); row (n,oh,ow) holds the
 *           window under output pixel (oh,ow), columns ordered (c,kh,kw).
 *   fold:   the adjoint: each column entry is added back to the pixel it
 *           came from; entries that came from padding are dropped.
 * Each is the other's local derivative, so both differentiate to any order.
 */
#include "sg_internal.h"

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
    const size_t cols = (size_t)shape[1];
#ifdef SG_HAVE_OPENMP
#pragma omp parallel for if ((size_t)N * cols * OH * OW > 200000)
#endif
    for (int n = 0; n < N; n++) {
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow++) {
                float *restrict row = y->data + ((size_t)(n * OH + oh) * OW + ow) * cols;
                int ih0 = oh * w.sh - w.ph, iw0 = ow * w.sw - w.pw;
                for (int c = 0; c < C; c++) {
                    const float *plane = x->data + ((size_t)n * C + c) * H * W;
                    for (int kh = 0; kh < w.kh; kh++) {
                        int ih = ih0 + kh;
                        float *dst = row + ((size_t)c * w.kh + kh) * w.kw;
                        if (ih < 0 || ih >= H) {
                            for (int kw = 0; kw < w.kw; kw++)
                                dst[kw] = w.pad_value;
                            continue;
                        }
                        const float *src = plane + (size_t)ih * W;
                        for (int kw = 0; kw < w.kw; kw++) {
                            int iw = iw0 + kw;
                            dst[kw] = iw >= 0 && iw < W ? src[iw] : w.pad_value;
                        }
                    }
                }
            }
        }
    }
    y->attr.win = w;
    /* unfold only copies values: the one non-finite value it can make is a
     * -inf pad_value, which max pooling asks for, so the NaN debug check
     * must not blame unfold for it */
    if (!isfinite(w.pad_value))
        return sg_record(y, SG_OP_UNFOLD, &x, 1);
    return sg_finish(y, SG_OP_UNFOLD, &x, 1);
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
    sg_tensor *y = sg_zeros(4, shape);
    if (!y)
        return NULL;
    const size_t ncol = (size_t)cols->shape[1];
#ifdef SG_HAVE_OPENMP
#pragma omp parallel for if (cols->size > 200000)
#endif
    for (int n = 0; n < N; n++) { /* images are independent: no write races */
        for (int oh = 0; oh < OH; oh++) {
            for (int ow = 0; ow < OW; ow++) {
                const float *row = cols->data + ((size_t)(n * OH + oh) * OW + ow) * ncol;
                int ih0 = oh * w.sh - w.ph, iw0 = ow * w.sw - w.pw;
                for (int c = 0; c < C; c++) {
                    float *plane = y->data + ((size_t)n * C + c) * H * W;
                    for (int kh = 0; kh < w.kh; kh++) {
                        int ih = ih0 + kh;
                        if (ih < 0 || ih >= H)
                            continue;
                        const float *src = row + ((size_t)c * w.kh + kh) * w.kw;
                        float *dst = plane + (size_t)ih * W;
                        for (int kw = 0; kw < w.kw; kw++) {
                            int iw = iw0 + kw;
                            if (iw >= 0 && iw < W)
                                dst[iw] += src[kw];
                        }
                    }
                }
            }
        }
    }
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
