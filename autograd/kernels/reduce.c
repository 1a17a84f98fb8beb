/*
 * reduce.c — the loops of sum and max over axes (ops_reduce.c plans which
 * one runs from the coalesced shape and splits it across threads), and of
 * max's fused local derivative. Compiled once per level.
 *
 * Summation order is part of the contract: every level forms the same
 * partial sums in the same order (four partial sums per run, runs added in
 * the order of the outer index), so the levels agree bit for bit. The
 * compiler may hold the four partial sums in one vector (the same
 * additions, lane for lane) but may not reassociate (no -ffast-math).
 */
#include "sg_kernels.h"

#include <math.h>
#include <string.h>

/* Sums are formed in blocks of SUM_BLOCK values (or rows), and the block
 * sums added: a float accumulator that takes one value at a time stops
 * growing once it is 2^24 times the values (2^24 + 1 rounds to 2^24), and
 * loses precision long before. With blocks, a sum of n values rounds about
 * SUM_BLOCK / 4 + n / SUM_BLOCK times in a chain instead of n / 4. Runs,
 * columns and channels of at most SUM_BLOCK values are summed exactly as
 * without blocks. */
enum { SUM_BLOCK = 4096 };

/* four partial sums: vectorises, and rounds no worse than one */
static inline float sum_block(const float *restrict s, size_t n)
{
    float a0 = 0.f, a1 = 0.f, a2 = 0.f, a3 = 0.f;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        a0 += s[i];
        a1 += s[i + 1];
        a2 += s[i + 2];
        a3 += s[i + 3];
    }
    for (; i < n; i++)
        a0 += s[i];
    return (a0 + a1) + (a2 + a3);
}

/* Sum (kind 0) or max (kind 1) of a contiguous run, starting from `init`. */
static inline float reduce_run(const float *restrict s, size_t n, int kind, float init)
{
    if (kind == 0) {
        if (n <= SUM_BLOCK)
            return init + sum_block(s, n);
        float t = 0.f;
        for (size_t b = 0; b < n; b += SUM_BLOCK)
            t += sum_block(s + b, n - b < SUM_BLOCK ? n - b : SUM_BLOCK);
        return init + t;
    }
    float m = init;
    for (size_t i = 0; i < n; i++)
        m = s[i] > m ? s[i] : m;
    return m;
}

static inline float reduce_init(int kind) { return kind == 0 ? 0.f : -INFINITY; }

void SG_K(sg_k_reduce_all)(int kind, float *restrict y, const float *restrict x, size_t n)
{
    y[0] = reduce_run(x, n, kind, reduce_init(kind));
}

/* The general walk: y (already initialised) combined with every x element. */
void SG_K(sg_k_reduce_general)(int kind, float *restrict y, const float *restrict x, int ndim,
                               const int *shape, uint32_t mask)
{
    const int n = ndim;
    size_t st[SG_MAX_DIMS]; /* output strides in the input's rank */
    size_t r = 1, size = 1;
    for (int i = n - 1; i >= 0; i--) {
        st[i] = (mask & (1u << i)) ? 0 : r;
        if (!(mask & (1u << i)))
            r *= (size_t)shape[i];
        size *= (size_t)shape[i];
    }
    size_t inner = (size_t)shape[n - 1], outer = size / inner;
    bool inner_reduced = st[n - 1] == 0;
    int idx[SG_MAX_DIMS] = {0};
    size_t off = 0;
    const float *restrict src = x;
    float *restrict dst = y;
    for (size_t o = 0; o < outer; o++, src += inner) {
        if (inner_reduced) {
            dst[off] = reduce_run(src, inner, kind, dst[off]);
        } else if (kind == 0) {
            for (size_t i = 0; i < inner; i++) dst[off + i] += src[i];
        } else {
            for (size_t i = 0; i < inner; i++)
                dst[off + i] = src[i] > dst[off + i] ? src[i] : dst[off + i];
        }
        for (int d = n - 2; d >= 0; d--) {
            off += st[d];
            if (++idx[d] < shape[d])
                break;
            off -= st[d] * (size_t)shape[d];
            idx[d] = 0;
        }
    }
}

void SG_K(sg_k_reduce_rows)(int kind, float *restrict y, const float *restrict x, size_t inner, size_t lo,
                            size_t hi)
{
    const float init = reduce_init(kind);
    if (inner == 4 && kind == 1) { /* 2x2 max pooling windows */
        for (size_t o = lo; o < hi; o++) {
            const float *s = x + 4 * o;
            float m = s[0] > init ? s[0] : init;
            m = s[1] > m ? s[1] : m;
            m = s[2] > m ? s[2] : m;
            y[o] = s[3] > m ? s[3] : m;
        }
        return;
    }
    for (size_t o = lo; o < hi; o++)
        y[o] = reduce_run(x + o * inner, inner, kind, init);
}

/* y[i] (op)= x[o][i] over the rows o of a (outer, inner) block. A sum of
 * more than SUM_BLOCK rows adds the rows of each block into a partial
 * row (for COLS columns at a time), then the partial row into y. */
void SG_K(sg_k_reduce_cols)(int kind, float *restrict y, const float *restrict x, size_t outer, size_t inner)
{
    if (kind == 0 && outer > SUM_BLOCK) {
        enum { COLS = 256 };
        float part[COLS];
        for (size_t c0 = 0; c0 < inner; c0 += COLS) {
            const size_t nc = inner - c0 < COLS ? inner - c0 : COLS;
            for (size_t o0 = 0; o0 < outer; o0 += SUM_BLOCK) {
                const size_t o1 = outer - o0 < SUM_BLOCK ? outer : o0 + SUM_BLOCK;
                for (size_t i = 0; i < nc; i++)
                    part[i] = 0.f;
                for (size_t o = o0; o < o1; o++) {
                    const float *restrict s = x + o * inner + c0;
                    for (size_t i = 0; i < nc; i++)
                        part[i] += s[i];
                }
                for (size_t i = 0; i < nc; i++)
                    y[c0 + i] += part[i];
            }
        }
        return;
    }
    for (size_t o = 0; o < outer; o++) {
        const float *restrict s = x + o * inner;
        if (kind == 0)
            for (size_t i = 0; i < inner; i++) y[i] += s[i];
        else
            for (size_t i = 0; i < inner; i++) y[i] = s[i] > y[i] ? s[i] : y[i];
    }
}

enum { RUNS = 8 };

/* reduce_run's sum (kind 0) of RUNS runs s + r * stride at once, without
 * `init`: out[r] = (a0 + a1) + (a2 + a3) as reduce_run forms it. One run's
 * four partial sums are one chain of dependent additions (about one float
 * per cycle); eight runs are eight independent chains that overlap. GCC
 * and Clang hold the four partial sums of a run in one 4-float vector (the
 * same additions, lane for lane); other compilers sum run after run. */
#if defined(__GNUC__)
typedef float sg_v4 __attribute__((vector_size(16)));

/* one block of n <= SUM_BLOCK values of each run: sum_block's sums */
static void sum_runs_block(const float *restrict s, size_t stride, size_t n, float *restrict out)
{
    sg_v4 a[RUNS];
    for (int r = 0; r < RUNS; r++)
        a[r] = (sg_v4){0.f, 0.f, 0.f, 0.f};
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int r = 0; r < RUNS; r++) {
            sg_v4 v;
            memcpy(&v, s + r * stride + i, sizeof v);
            a[r] += v;
        }
    for (; i < n; i++)
        for (int r = 0; r < RUNS; r++)
            a[r][0] += s[r * stride + i];
    for (int r = 0; r < RUNS; r++)
        out[r] = (a[r][0] + a[r][1]) + (a[r][2] + a[r][3]);
}

/* reduce_run's blocks: the block sums added in order */
static void sum_runs(const float *restrict s, size_t stride, size_t n, float *restrict out)
{
    sum_runs_block(s, stride, n < SUM_BLOCK ? n : SUM_BLOCK, out);
    for (size_t b = SUM_BLOCK; b < n; b += SUM_BLOCK) {
        float blk[RUNS];
        sum_runs_block(s + b, stride, n - b < SUM_BLOCK ? n - b : SUM_BLOCK, blk);
        for (int r = 0; r < RUNS; r++)
            out[r] += blk[r];
    }
}
#else
/* reduce_run from 0: 0 + x differs from x only for x = -0, and adding -0 or
 * +0 to the caller's sum (which starts at +0, so is never -0) is the same */
static void sum_runs(const float *restrict s, size_t stride, size_t n, float *restrict out)
{
    for (int r = 0; r < RUNS; r++)
        out[r] = reduce_run(s + r * stride, n, 0, 0.f);
}
#endif

/* A channel's sum in blocks: blk takes the runs, total the blocks. */
typedef struct chan_sum {
    float blk, total;
    size_t in_blk; /* values in blk */
    bool flushed;  /* total holds a block */
} chan_sum;

/* blk took a run of S values: move it into the total once it holds SUM_BLOCK */
static inline void chan_sum_ran(chan_sum *c, size_t S)
{
    if ((c->in_blk += S) < SUM_BLOCK)
        return;
    c->total = c->flushed ? c->total + c->blk : c->blk;
    c->flushed = true;
    c->blk = 0.f;
    c->in_blk = 0;
}

/* (R, K, S) -> (K): y[k] (op)= the runs x[r][k][0..S) in the order of r
 * (the order of the general walk, so the same sums), for k in [lo, hi). */
void SG_K(sg_k_reduce_channels)(int kind, float *restrict y, const float *restrict x, size_t R, size_t K,
                                size_t S, size_t lo, size_t hi)
{
    const size_t stride = K * S;
    for (size_t k = lo; k < hi; k++) {
        if (kind == 1) {
            float acc = y[k];
            for (size_t r = 0; r < R; r++)
                acc = reduce_run(x + (r * K + k) * S, S, kind, acc);
            y[k] = acc;
            continue;
        }
        /* the runs' sums added into c.blk in the order of r, starting from
         * y[k]; every SUM_BLOCK values c.blk moves into the total and starts
         * again from 0. Up to SUM_BLOCK values this is the plain order of r. */
        chan_sum c = {.blk = y[k]};
        size_t r = 0;
        float part[RUNS];
        for (; r + RUNS <= R; r += RUNS) {
            sum_runs(x + (r * K + k) * S, stride, S, part);
            for (int q = 0; q < RUNS; q++) {
                c.blk = c.blk + part[q]; /* reduce_run's init + partial, in the order of r */
                chan_sum_ran(&c, S);
            }
        }
        for (; r < R; r++) {
            c.blk = reduce_run(x + (r * K + k) * S, S, kind, c.blk);
            chan_sum_ran(&c, S);
        }
        y[k] = c.flushed ? c.total + c.blk : c.blk;
    }
}

/* (A, R, B, S) with dims 1 and 3 reduced: y[a][b] = reduce of the R x S
 * window x[a][0..R)[b][0..S), for a in [lo, hi). */
void SG_K(sg_k_reduce_windows)(int kind, float *restrict y, const float *restrict x, size_t R, size_t B,
                               size_t S, size_t lo, size_t hi)
{
    const float init = reduce_init(kind);
    if (R == 2 && S == 2 && kind == 1) { /* 2x2 max pooling: straight-line code */
        for (size_t a = lo; a < hi; a++) {
            const float *restrict r0 = x + a * 4 * B, *restrict r1 = r0 + 2 * B;
            float *restrict ya = y + a * B;
            for (size_t b = 0; b < B; b++) {
                float m = r0[2 * b] > init ? r0[2 * b] : init;
                m = r0[2 * b + 1] > m ? r0[2 * b + 1] : m;
                m = r1[2 * b] > m ? r1[2 * b] : m;
                ya[b] = r1[2 * b + 1] > m ? r1[2 * b + 1] : m;
            }
        }
        return;
    }
    for (size_t a = lo; a < hi; a++) {
        const float *restrict xa = x + a * R * B * S;
        float *restrict ya = y + a * B;
        for (size_t b = 0; b < B; b++)
            ya[b] = reduce_run(xa + b * S, S, kind, init);
        for (size_t r = 1; r < R; r++)
            for (size_t b = 0; b < B; b++)
                ya[b] = reduce_run(xa + (r * B + b) * S, S, kind, ya[b]);
    }
}

/* max's local derivative in one pass over rows [lo, hi) of `inner` values
 * (max pooling's windows, softmax's shift): per row, count the elements
 * equal to the maximum, then dx = (x == max) * (dy / count), the same
 * values the composition computes. The count is an integer: a float
 * count += 1 stops growing at 2^24 ties (25,165,824 ties gave dx = 5.96e-8,
 * summing to 1.5). */
void SG_K(sg_k_max_grad_rows)(float *restrict dx, const float *restrict x, const float *restrict y,
                              const float *restrict dy, size_t inner, size_t lo, size_t hi)
{
    if (inner == 4) { /* 2x2 pooling windows: straight-line code per row */
        for (size_t o = lo; o < hi; o++) {
            const float m = y[o];
            float e0 = x[4 * o] == m ? 1.f : 0.f, e1 = x[4 * o + 1] == m ? 1.f : 0.f;
            float e2 = x[4 * o + 2] == m ? 1.f : 0.f, e3 = x[4 * o + 3] == m ? 1.f : 0.f;
            const float share = dy[o] / (((e0 + e1) + e2) + e3);
            dx[4 * o] = e0 * share;
            dx[4 * o + 1] = e1 * share;
            dx[4 * o + 2] = e2 * share;
            dx[4 * o + 3] = e3 * share;
        }
        return;
    }
    for (size_t o = lo; o < hi; o++) {
        const float *restrict xs = x + o * inner;
        float *restrict d = dx + o * inner;
        const float m = y[o];
        size_t count = 0; /* an integer: a float count stops at 2^24 */
        for (size_t i = 0; i < inner; i++)
            count += xs[i] == m;
        const float share = dy[o] / (float)count;
        for (size_t i = 0; i < inner; i++)
            d[i] = (xs[i] == m ? 1.f : 0.f) * share;
    }
}

/* The same for windows (A, R, B, S) -> (A, B), a in [lo, hi): per window,
 * count the maxima, then share dy among them. */
void SG_K(sg_k_max_grad_windows)(float *restrict dx, const float *restrict x, const float *restrict y,
                                 const float *restrict dy, size_t R, size_t B, size_t S, size_t lo, size_t hi)
{
    if (R == 2 && S == 2) { /* 2x2 windows: straight-line code per window */
        for (size_t a = lo; a < hi; a++) {
            const float *restrict r0 = x + a * 4 * B, *restrict r1 = r0 + 2 * B;
            float *restrict g0 = dx + a * 4 * B, *restrict g1 = g0 + 2 * B;
            const float *restrict m = y + a * B, *restrict gy = dy + a * B;
            for (size_t b = 0; b < B; b++) {
                float e0 = r0[2 * b] == m[b] ? 1.f : 0.f, e1 = r0[2 * b + 1] == m[b] ? 1.f : 0.f;
                float e2 = r1[2 * b] == m[b] ? 1.f : 0.f, e3 = r1[2 * b + 1] == m[b] ? 1.f : 0.f;
                const float share = gy[b] / (((e0 + e1) + e2) + e3);
                g0[2 * b] = e0 * share;
                g0[2 * b + 1] = e1 * share;
                g1[2 * b] = e2 * share;
                g1[2 * b + 1] = e3 * share;
            }
        }
        return;
    }
    for (size_t a = lo; a < hi; a++) {
        const float *restrict xa = x + a * R * B * S;
        float *restrict ga = dx + a * R * B * S;
        for (size_t b = 0; b < B; b++) {
            const float m = y[a * B + b];
            size_t count = 0; /* an integer, as in max_grad_rows */
            for (size_t r = 0; r < R; r++)
                for (size_t s = 0; s < S; s++)
                    count += xa[(r * B + b) * S + s] == m;
            const float share = dy[a * B + b] / (float)count;
            for (size_t r = 0; r < R; r++)
                for (size_t s = 0; s < S; s++) {
                    size_t i = (r * B + b) * S + s;
                    ga[i] = (xa[i] == m ? 1.f : 0.f) * share;
                }
        }
    }
}
