/*
 * elementwise.c — the elementwise kernels of ops_elementwise.c: binary ops
 * with operand strides of 0 or 1, the broadcasting odometer over rows, the
 * unary ops, and relu's fused local derivative (compiled once per level, so
 * each loop is vectorised for each instruction set).
 *
 * Every loop computes each element on its own (no sums across elements),
 * so any vector width gives the same values as the scalar loop; expf, logf
 * and powf are the C library's scalar calls at every level (no
 * -ffast-math, so no vector maths library).
 */
#include "sg_kernels.h"

#include <math.h>
#include <string.h>

/* y[i] = a[i*sa] (k) b[i*sb] for i < n, with sa, sb in {0, 1}. */
static inline void bin_run(sg_kbin k, float *restrict y, const float *restrict a, size_t sa,
                           const float *restrict b, size_t sb, size_t n)
{
#define SG_BIN_LOOPS(EXPR)                                                    \
    if (sa && sb) {                                                           \
        for (size_t i = 0; i < n; i++) { float x = a[i], z = b[i]; y[i] = (EXPR); } \
    } else if (sa) {                                                          \
        const float z = b[0];                                                 \
        for (size_t i = 0; i < n; i++) { float x = a[i]; y[i] = (EXPR); }     \
    } else if (sb) {                                                          \
        const float x = a[0];                                                 \
        for (size_t i = 0; i < n; i++) { float z = b[i]; y[i] = (EXPR); }     \
    } else {                                                                  \
        float x = a[0], z = b[0], v = (EXPR);                                 \
        for (size_t i = 0; i < n; i++) y[i] = v;                              \
    }
    switch (k) {
    case SG_KBIN_ADD: SG_BIN_LOOPS(x + z); break;
    case SG_KBIN_SUB: SG_BIN_LOOPS(x - z); break;
    case SG_KBIN_MUL: SG_BIN_LOOPS(x * z); break;
    case SG_KBIN_DIV: SG_BIN_LOOPS(x / z); break;
    case SG_KBIN_GT: SG_BIN_LOOPS(x > z ? 1.f : 0.f); break;
    case SG_KBIN_EQ: SG_BIN_LOOPS(x == z ? 1.f : 0.f); break;
    }
#undef SG_BIN_LOOPS
}

void SG_K(sg_k_binary)(sg_kbin k, float *restrict y, const float *restrict a, size_t sa,
                       const float *restrict b, size_t sb, size_t n)
{
    bin_run(k, y, a, sa, b, sb, n);
}

/* Rows [o0, o1) of the broadcasting case: row o of y (bc->dim[0] values)
 * from a and b at the odometer's offsets, started at row o0. */
void SG_K(sg_k_binary_rows)(sg_kbin k, float *restrict y, const float *restrict a, const float *restrict b,
                            const sg_kbcast *bc, size_t o0, size_t o1)
{
    const int m = bc->m;
    const size_t inner = bc->dim[0];
    size_t idx[SG_MAX_DIMS] = {0}, oa = 0, ob = 0, rem = o0;
    for (int d = 1; d < m; d++) { /* the odometer at row o0 */
        idx[d] = rem % bc->dim[d];
        rem /= bc->dim[d];
        oa += idx[d] * bc->ca[d];
        ob += idx[d] * bc->cb[d];
    }
    for (size_t o = o0; o < o1; o++) {
        bin_run(k, y + o * inner, a + oa, bc->ca[0], b + ob, bc->cb[0], inner);
        for (int d = 1; d < m; d++) {
            oa += bc->ca[d];
            ob += bc->cb[d];
            if (++idx[d] < bc->dim[d])
                break;
            oa -= bc->ca[d] * bc->dim[d];
            ob -= bc->cb[d] * bc->dim[d];
            idx[d] = 0;
        }
    }
}

void SG_K(sg_k_unary)(sg_kun k, float *restrict o, const float *restrict a, float p, size_t n)
{
    switch (k) {
    case SG_KUN_NEG: for (size_t i = 0; i < n; i++) o[i] = -a[i]; break;
    case SG_KUN_EXP: for (size_t i = 0; i < n; i++) o[i] = expf(a[i]); break;
    case SG_KUN_LOG: for (size_t i = 0; i < n; i++) o[i] = logf(a[i]); break;
    case SG_KUN_RELU: for (size_t i = 0; i < n; i++) o[i] = a[i] > 0.f ? a[i] : 0.f; break;
    case SG_KUN_ADDS: for (size_t i = 0; i < n; i++) o[i] = a[i] + p; break;
    case SG_KUN_MULS: for (size_t i = 0; i < n; i++) o[i] = a[i] * p; break;
    case SG_KUN_POW:
        if (p == 2.f)
            for (size_t i = 0; i < n; i++) o[i] = a[i] * a[i];
        else if (p == 1.f)
            memcpy(o, a, n * sizeof(float));
        else if (p == -1.f)
            for (size_t i = 0; i < n; i++) o[i] = 1.f / a[i];
        else if (p == 0.5f)
            for (size_t i = 0; i < n; i++) o[i] = sqrtf(a[i]);
        else
            for (size_t i = 0; i < n; i++) o[i] = powf(a[i], p);
        break;
    }
}

/* y[i] = x[i] / div, rounded once: bytes (image pixels) to floats, the
 * same values on every level. 255 has no exact reciprocal, so x * (1/255)
 * would round twice. With FMA (the avx2 and avx512 levels) x / 255 is
 * q = x * r, r = RN(1/255), corrected by the exact residual e = x - q*255:
 * q + e*r is within 2^-47 (relative) of x/255, and x/255 for a byte x is at
 * least 2^-33 away from every rounding boundary of a float, so the
 * correction rounds to RN(x/255) (Markstein's division step, as in IA-64's
 * divide sequences). kernel_levels checks every byte value against x / 255
 * on each level. 2.2x faster than vdivps here (78,400 bytes hot in cache,
 * 12.6 -> 5.7 us, AVX2 on a Sapphire Rapids core). Other divisors divide
 * (1 only converts). */
void SG_K(sg_k_bytes_to_float)(float *restrict y, const uint8_t *restrict x, float div, size_t n)
{
#ifdef __FMA__
    if (div == 255.f) {
        const float r = 1.f / 255.f;
        for (size_t i = 0; i < n; i++) {
            const float v = (float)x[i], q = v * r;
            y[i] = fmaf(fmaf(-q, 255.f, v), r, q);
        }
        return;
    }
#endif
    if (div == 1.f) /* pixels as they are (no normalize) */
        for (size_t i = 0; i < n; i++)
            y[i] = (float)x[i];
    else
        for (size_t i = 0; i < n; i++)
            y[i] = (float)x[i] / div;
}

/* dx = dy * (x > 0): what sg_mul(gy, sg_gt(x, 0)) computes, value for
 * value, without the mask tensor. */
void SG_K(sg_k_relu_grad)(float *restrict dx, const float *restrict x, const float *restrict dy, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dx[i] = dy[i] * (x[i] > 0.f ? 1.f : 0.f);
}
