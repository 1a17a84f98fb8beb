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
 * Kernels: the output is produced in bands, one per (image, output row), so
 * the bands can go to different threads. Within a band the input is read
 * row by row and each window's run of KW values is copied whole where the
 * window lies inside the image (no per-element bounds test); only windows
 * that overhang a border are checked element by element. The common window
 * geometries get copies specialised for their constant KW and stride.
 * (Pooling whose windows tile the input does not come here: nn/ reduces a
 * reshaped view instead.)
 */
#include "sg_internal.h"
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

/* Output columns [lo, hi) whose window lies wholly inside the input row:
 * there a window's KW values are one contiguous run, copied without tests. */
static void interior(int in, int k, int s, int p, int out, int *lo, int *hi)
{
    int a = (p + s - 1) / s;     /* first o with o*s - p >= 0 */
    int b = (in + p - k) / s + 1; /* first o with o*s - p + k > in */
    if (in + p - k < 0)
        b = 0;
    *lo = a < out ? a : out;
    *hi = b < *lo ? *lo : b > out ? out : b;
}

/* Copy n floats; small constant n (the kernel width) becomes plain moves. */
static inline __attribute__((always_inline)) void copy_run(float *restrict d, const float *restrict s,
                                                           int n)
{
    for (int i = 0; i < n; i++)
        d[i] = s[i];
}

static inline __attribute__((always_inline)) void add_run(float *restrict d, const float *restrict s,
                                                          int n)
{
    for (int i = 0; i < n; i++)
        d[i] += s[i];
}

/* One band of unfold's output: image n, output row oh, all OW windows
 * (OW rows of `cols` values). Walked input row by input row: for each
 * (c, kh), the input row ih is read left to right and its windows' runs
 * are written to the OW output rows. Windows that overhang the left or
 * right border are done element by element; the others copy KW values
 * without tests. KW and SW are compile-time constants in the specialised
 * copies below (pooling's 2x2 stride 2, convolution's 3x3 and 5x5 stride 1). */
static inline __attribute__((always_inline)) void unfold_band(float *restrict y, const float *restrict img,
                                                              int C, int H, int W, int OW, int oh,
                                                              const sg_window *w, int owlo, int owhi,
                                                              size_t cols, const int KW, const int SW)
{
    const int KH = w->kh, ih0 = oh * w->sh - w->ph, pw = w->pw;
    const float pad = w->pad_value;
    for (int c = 0; c < C; c++) {
        const float *plane = img + (size_t)c * H * W;
        for (int kh = 0; kh < KH; kh++) {
            const int ih = ih0 + kh;
            float *restrict dst = y + ((size_t)c * KH + kh) * KW;
            if (ih < 0 || ih >= H) {
                for (int ow = 0; ow < OW; ow++)
                    for (int kw = 0; kw < KW; kw++)
                        dst[(size_t)ow * cols + kw] = pad;
                continue;
            }
            const float *src = plane + (size_t)ih * W;
            for (int ow = 0; ow < owlo; ow++)
                for (int kw = 0; kw < KW; kw++) {
                    int iw = ow * SW - pw + kw;
                    dst[(size_t)ow * cols + kw] = iw >= 0 && iw < W ? src[iw] : pad;
                }
            for (int ow = owlo; ow < owhi; ow++)
                copy_run(dst + (size_t)ow * cols, src + ow * SW - pw, KW);
            for (int ow = owhi; ow < OW; ow++)
                for (int kw = 0; kw < KW; kw++) {
                    int iw = ow * SW - pw + kw;
                    dst[(size_t)ow * cols + kw] = iw >= 0 && iw < W ? src[iw] : pad;
                }
        }
    }
}

/* The same band for many channels: each output
 * row is written front to back, gathering its (c, kh) runs; the C*KH input
 * rows it reads stay in cache from one window to the next. */
static inline __attribute__((always_inline)) void unfold_band_rows(float *restrict y,
                                                                   const float *restrict img, int C,
                                                                   int H, int W, int OW, int oh,
                                                                   const sg_window *w, int owlo,
                                                                   int owhi, size_t cols, const int KW,
                                                                   const int SW)
{
    const int KH = w->kh, ih0 = oh * w->sh - w->ph, pw = w->pw;
    const float pad = w->pad_value;
    for (int ow = 0; ow < OW; ow++) {
        float *restrict dst = y + (size_t)ow * cols;
        const int iw0 = ow * SW - pw;
        const bool inside = ow >= owlo && ow < owhi;
        for (int c = 0; c < C; c++) {
            const float *plane = img + (size_t)c * H * W;
            for (int kh = 0; kh < KH; kh++, dst += KW) {
                const int ih = ih0 + kh;
                if (ih < 0 || ih >= H) {
                    for (int kw = 0; kw < KW; kw++)
                        dst[kw] = pad;
                } else if (inside) {
                    copy_run(dst, plane + (size_t)ih * W + iw0, KW);
                } else {
                    const float *src = plane + (size_t)ih * W;
                    for (int kw = 0; kw < KW; kw++) {
                        int iw = iw0 + kw;
                        dst[kw] = iw >= 0 && iw < W ? src[iw] : pad;
                    }
                }
            }
        }
    }
}

#define SG_UNFOLD_CASE(K, S)                                                                 \
    if (w->kw == K && w->sw == S) {                                                          \
        if (by_rows)                                                                         \
            unfold_band_rows(yrow, img, c->C, c->H, c->W, c->OW, oh, w, c->owlo, c->owhi, c->ncol, K, S); \
        else                                                                                 \
            unfold_band(yrow, img, c->C, c->H, c->W, c->OW, oh, w, c->owlo, c->owhi, c->ncol, K, S); \
        continue;                                                                            \
    }

/* One job of either direction: src (x for unfold, the columns for fold)
 * into dst; ncol = C*KH*KW columns; [owlo, owhi) the output columns whose
 * windows lie inside the image (interior()). */
typedef struct window_job {
    const float *src;
    float *dst;
    int C, H, W, OH, OW, owlo, owhi;
    size_t ncol;
    sg_window w;
} window_job;

/* bands [lo, hi): band = (n, oh), the OW rows of output row oh of image n */
static void unfold_bands(void *arg, size_t lo, size_t hi)
{
    const window_job *c = arg;
    const sg_window *w = &c->w;
    /* bands of many channels (over 4 KB): written row by row (unfold_band_rows) */
    const bool by_rows = (size_t)c->OW * c->ncol > 1024;
    for (size_t band = lo; band < hi; band++) {
        const int n = (int)(band / (size_t)c->OH), oh = (int)(band % (size_t)c->OH);
        const float *img = c->src + (size_t)n * c->C * c->H * c->W;
        float *yrow = c->dst + band * c->OW * c->ncol;
        SG_UNFOLD_CASE(2, 2)
        SG_UNFOLD_CASE(3, 1)
        SG_UNFOLD_CASE(5, 1)
        SG_UNFOLD_CASE(3, 2)
        SG_UNFOLD_CASE(3, 3)
        if (by_rows)
            unfold_band_rows(yrow, img, c->C, c->H, c->W, c->OW, oh, w, c->owlo, c->owhi, c->ncol, w->kw,
                             w->sw);
        else
            unfold_band(yrow, img, c->C, c->H, c->W, c->OW, oh, w, c->owlo, c->owhi, c->ncol, w->kw,
                        w->sw);
    }
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
    window_job c = {.src = x->data, .dst = y->data, .C = C, .H = H, .W = W, .OH = OH, .OW = OW,
                    .ncol = (size_t)shape[1], .w = w};
    interior(W, w.kw, w.sw, w.pw, OW, &c.owlo, &c.owhi);
    sg_parallel_for((size_t)N * OH, y->size, unfold_bands, &c);
    y->attr.win = w;
    /* unfold only copies values: the one non-finite value it can make is a
     * -inf pad_value, which max pooling asks for, so the NaN debug check
     * must not blame unfold for it */
    if (!isfinite(w.pad_value))
        return sg_record(y, SG_OP_UNFOLD, &x, 1);
    return sg_finish(y, SG_OP_UNFOLD, &x, 1);
}

/* fold of one image: zero its C planes, then add each window's runs back,
 * input row by input row as in unfold_band (the planes stay in cache). */
static inline __attribute__((always_inline)) void fold_image(float *restrict img, const float *restrict cols,
                                                             int C, int H, int W, int OH, int OW,
                                                             const sg_window *w, int owlo, int owhi,
                                                             size_t ncol, const int KW, const int SW)
{
    const int KH = w->kh, pw = w->pw;
    memset(img, 0, (size_t)C * H * W * sizeof(float));
    for (int oh = 0; oh < OH; oh++) {
        const int ih0 = oh * w->sh - w->ph;
        const float *band = cols + (size_t)oh * OW * ncol;
        for (int c = 0; c < C; c++) {
            float *plane = img + (size_t)c * H * W;
            for (int kh = 0; kh < KH; kh++) {
                const int ih = ih0 + kh;
                if (ih < 0 || ih >= H)
                    continue;
                const float *restrict src = band + ((size_t)c * KH + kh) * KW;
                float *restrict dst = plane + (size_t)ih * W;
                for (int ow = 0; ow < owlo; ow++)
                    for (int kw = 0; kw < KW; kw++) {
                        int iw = ow * SW - pw + kw;
                        if (iw >= 0 && iw < W)
                            dst[iw] += src[(size_t)ow * ncol + kw];
                    }
                for (int ow = owlo; ow < owhi; ow++)
                    add_run(dst + ow * SW - pw, src + (size_t)ow * ncol, KW);
                for (int ow = owhi; ow < OW; ow++)
                    for (int kw = 0; kw < KW; kw++) {
                        int iw = ow * SW - pw + kw;
                        if (iw >= 0 && iw < W)
                            dst[iw] += src[(size_t)ow * ncol + kw];
                    }
            }
        }
    }
}

#define SG_FOLD_CASE(K, S)                                                                   \
    if (w->kw == K && w->sw == S) {                                                          \
        fold_image(img, src, c->C, c->H, c->W, c->OH, c->OW, w, c->owlo, c->owhi, c->ncol, K, S); \
        continue;                                                                            \
    }

/* images [lo, hi): each is written by one thread only, so no races */
static void fold_images(void *arg, size_t lo, size_t hi)
{
    const window_job *c = arg;
    const sg_window *w = &c->w;
    for (size_t n = lo; n < hi; n++) {
        float *img = c->dst + n * c->C * c->H * c->W;
        const float *src = c->src + n * c->OH * c->OW * c->ncol;
        SG_FOLD_CASE(2, 2)
        SG_FOLD_CASE(3, 1)
        SG_FOLD_CASE(5, 1)
        SG_FOLD_CASE(3, 2)
        SG_FOLD_CASE(3, 3)
        fold_image(img, src, c->C, c->H, c->W, c->OH, c->OW, w, c->owlo, c->owhi, c->ncol, w->kw, w->sw);
    }
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
    window_job c = {.src = cols->data, .dst = y->data, .C = C, .H = H, .W = W, .OH = OH, .OW = OW,
                    .ncol = (size_t)cols->shape[1], .w = w};
    interior(W, w.kw, w.sw, w.pw, OW, &c.owlo, &c.owhi);
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
