/*
 * unfold.c — the loops of unfold (im2col) and fold (col2im), ops_unfold.c's
 * kernels, compiled once per level (the copies vectorise for each
 * instruction set). Pure copies and additions of one value each, so every
 * level gives the same values; fold adds a pixel's contributions in the
 * same order (output row, channel, kernel row, output column) everywhere.
 *
 * The output is produced in bands, one per (image, output row), so the
 * bands can go to different threads. Within a band the input is read row
 * by row and each window's run of KW values is copied whole where the
 * window lies inside the image (no per-element bounds test); only windows
 * that overhang a border are checked element by element. The common window
 * geometries get copies specialised for their constant KW and stride.
 */
#include "sg_kernels.h"

#include <string.h>

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

/* One job of either direction: ncol = C*KH*KW columns; [owlo, owhi) the
 * output columns whose windows lie inside the image (interior()). */
typedef struct window_job {
    int C, H, W, OH, OW, owlo, owhi;
    size_t ncol;
} window_job;

static window_job job_of(const sg_kwindow *g)
{
    window_job c = {.C = g->C, .H = g->H, .W = g->W, .OH = g->OH, .OW = g->OW,
                    .ncol = (size_t)g->C * (size_t)g->w.kh * (size_t)g->w.kw};
    interior(g->W, g->w.kw, g->w.sw, g->w.pw, g->OW, &c.owlo, &c.owhi);
    return c;
}

/* bands [lo, hi): band = (n, oh), the OW rows of output row oh of image n */
void SG_K(sg_k_unfold)(float *restrict cols, const float *restrict x, const sg_kwindow *g, size_t lo,
                       size_t hi)
{
    const window_job job = job_of(g), *c = &job;
    const sg_window *w = &g->w;
    /* bands of many channels (over 4 KB): written row by row (unfold_band_rows) */
    const bool by_rows = (size_t)c->OW * c->ncol > 1024;
    for (size_t band = lo; band < hi; band++) {
        const int n = (int)(band / (size_t)c->OH), oh = (int)(band % (size_t)c->OH);
        const float *img = x + (size_t)n * c->C * c->H * c->W;
        float *yrow = cols + band * c->OW * c->ncol;
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

/* images [lo, hi): each is written by one call only, so no races */
void SG_K(sg_k_fold)(float *restrict x, const float *restrict cols, const sg_kwindow *g, size_t lo, size_t hi)
{
    const window_job job = job_of(g), *c = &job;
    const sg_window *w = &g->w;
    for (size_t n = lo; n < hi; n++) {
        float *img = x + n * c->C * c->H * c->W;
        const float *src = cols + n * c->OH * c->OW * c->ncol;
        SG_FOLD_CASE(2, 2)
        SG_FOLD_CASE(3, 1)
        SG_FOLD_CASE(5, 1)
        SG_FOLD_CASE(3, 2)
        SG_FOLD_CASE(3, 3)
        fold_image(img, src, c->C, c->H, c->W, c->OH, c->OW, w, c->owlo, c->owhi, c->ncol, w->kw, w->sw);
    }
}

