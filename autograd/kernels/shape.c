/*
 * shape.c — the data movement of ops_shape.c: batches of 2-D transposes in
 * 8x8 register tiles, the general permutation walk, and broadcast_to's
 * fill. Compiled once per level (the tiles become SSE, AVX or AVX-512
 * shuffles); only copies, so every level gives the same values.
 */
#include "sg_kernels.h"

#include <string.h>

#if defined(__GNUC__) /* GCC and Clang */
#define SG_VEC_TRANSPOSE 1
typedef float v8f __attribute__((vector_size(32)));
typedef int v8i __attribute__((vector_size(32)));

/* Lanes of a and b (0..7 from a, 8..15 from b): GCC's __builtin_shuffle
 * takes the indices as a vector, Clang's __builtin_shufflevector as
 * constants. */
#ifdef __clang__
#define SHUF(a, b, ...) __builtin_shufflevector(a, b, __VA_ARGS__)
#else
#define SHUF(a, b, ...) __builtin_shuffle(a, b, (v8i){__VA_ARGS__})
#endif

/* An 8x8 tile: dst[j][i] = src[i][j], in registers (three rounds of
 * shuffles, as _MM_TRANSPOSE8 does; the generic vectors compile to AVX
 * shuffles, to AVX-512 ones, or to pairs of SSE ones without AVX). */
static inline void transpose8x8(float *dst, size_t ld, const float *src, size_t ls)
{
    v8f r[8], t[8], u[8];
    for (int i = 0; i < 8; i++)
        memcpy(&r[i], src + (size_t)i * ls, sizeof r[i]);
    for (int i = 0; i < 8; i += 2) {
        t[i] = SHUF(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = SHUF(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = SHUF(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 1] = SHUF(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[i + 2] = SHUF(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 3] = SHUF(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int i = 0; i < 4; i++) {
        v8f a = SHUF(u[i], u[i + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        v8f b = SHUF(u[i], u[i + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        memcpy(dst + (size_t)i * ld, &a, sizeof a);
        memcpy(dst + (size_t)(i + 4) * ld, &b, sizeof b);
    }
}
#endif

/* Transpose a (rows, cols) block of src (row stride ls) into dst (row
 * stride ld): dst[j][i] = src[i][j], in 8x8 tiles held in registers. The
 * tiles are walked along the longer side: with many source rows, strips of
 * 8 rows (all their columns) at a time; with few, strips of 8 columns (all
 * the rows), so each finished piece of dst is contiguous and the lines being
 * filled stay in L1. Ragged edges go element by element. */
static void transpose_2d(float *restrict dst, size_t ld, const float *restrict src, size_t ls, size_t rows,
                         size_t cols)
{
#ifdef SG_VEC_TRANSPOSE
    const size_t r8 = rows & ~(size_t)7, c8 = cols & ~(size_t)7;
    if (rows >= cols) {
        for (size_t i0 = 0; i0 < r8; i0 += 8) {
            for (size_t j = 0; j < c8; j += 8)
                transpose8x8(dst + j * ld + i0, ld, src + i0 * ls + j, ls);
            for (size_t j = c8; j < cols; j++)
                for (size_t i = i0; i < i0 + 8; i++)
                    dst[j * ld + i] = src[i * ls + j];
        }
        for (size_t i = r8; i < rows; i++)
            for (size_t j = 0; j < cols; j++)
                dst[j * ld + i] = src[i * ls + j];
    } else {
        for (size_t j0 = 0; j0 < c8; j0 += 8) {
            for (size_t i = 0; i < r8; i += 8)
                transpose8x8(dst + j0 * ld + i, ld, src + i * ls + j0, ls);
            for (size_t j = j0; j < j0 + 8; j++)
                for (size_t i = r8; i < rows; i++)
                    dst[j * ld + i] = src[i * ls + j];
        }
        for (size_t j = c8; j < cols; j++)
            for (size_t i = 0; i < rows; i++)
                dst[j * ld + i] = src[i * ls + j];
    }
#else
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++)
            dst[j * ld + i] = src[i * ls + j];
#endif
}

void SG_K(sg_k_transpose)(float *restrict y, const float *restrict x, size_t R, size_t C, size_t lo,
                          size_t hi)
{
    const size_t plane = R * C;
    for (size_t b = lo; b < hi; b++)
        transpose_2d(y + b * plane, R, x + b * plane, C, R, C);
}

/* The general permutation: y walked in order with an odometer over all its
 * dims but the last; x read at the sum of index * stride. */
void SG_K(sg_k_permute_walk)(float *restrict y, const float *restrict x, int ng, const size_t *gsize,
                             const size_t *st)
{
    size_t total = 1;
    for (int g = 0; g < ng; g++)
        total *= gsize[g];
    size_t inner = gsize[ng - 1], outer = total / inner, s_in = st[ng - 1];
    size_t idx[SG_MAX_DIMS] = {0};
    size_t off = 0;
    for (size_t o = 0; o < outer; o++, y += inner) {
        for (size_t i = 0; i < inner; i++)
            y[i] = x[off + i * s_in];
        for (int d = ng - 2; d >= 0; d--) {
            off += st[d];
            if (++idx[d] < gsize[d])
                break;
            off -= st[d] * gsize[d];
            idx[d] = 0;
        }
    }
}

void SG_K(sg_k_broadcast)(float *restrict y, const float *restrict x, int ndim, const int *shape, int xndim,
                          const int *xshape)
{
    size_t ysize = 1, xsize = 1;
    for (int i = 0; i < ndim; i++)
        ysize *= (size_t)shape[i];
    for (int i = 0; i < xndim; i++)
        xsize *= (size_t)xshape[i];
    if (ysize == 0)
        return;
    if (xsize == 1) {
        for (size_t i = 0; i < ysize; i++)
            y[i] = x[0];
    } else if (ndim == 0) {
        y[0] = x[0];
    } else {
        size_t st[SG_MAX_DIMS], r = 1;
        for (int i = ndim - 1; i >= 0; i--) {
            int ix = i - (ndim - xndim);
            int d = ix >= 0 ? xshape[ix] : 1;
            st[i] = d == 1 ? 0 : r;
            r *= (size_t)d;
        }
        size_t inner = (size_t)shape[ndim - 1], outer = ysize / inner, s_in = st[ndim - 1];
        int idx[SG_MAX_DIMS] = {0};
        size_t off = 0;
        float *dst = y;
        for (size_t o = 0; o < outer; o++, dst += inner) {
            if (s_in)
                memcpy(dst, x + off, inner * sizeof(float));
            else
                for (size_t i = 0; i < inner; i++)
                    dst[i] = x[off];
            for (int d = ndim - 2; d >= 0; d--) {
                off += st[d];
                if (++idx[d] < shape[d])
                    break;
                off -= st[d] * (size_t)shape[d];
                idx[d] = 0;
            }
        }
    }
}
