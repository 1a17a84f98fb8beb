/*
 * rng.c — PCG32 (O'Neill): small, fast, and the same sequence on every
 * machine for a given seed. Normals use Box–Muller in double precision.
 * Every function taking an sg_rng * reads NULL as the thread's default
 * generator (as sg_uniform() and sg_normal() always did), never a crash.
 */
#include "sg_internal.h"

#include <math.h>

static _Thread_local sg_rng default_rng;
static _Thread_local bool default_seeded;

sg_rng *sg_default_rng(void)
{
    if (!default_seeded) {
        default_seeded = true;
        sg_rng_seed(&default_rng, 42);
    }
    return &default_rng;
}

/* the step itself, for callers that have resolved NULL already */
static inline uint32_t next_u32(sg_rng *rng)
{
    uint64_t old = rng->state;
    rng->state = old * 6364136223846793005ULL + rng->inc;
    uint32_t xorshifted = (uint32_t)(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = (uint32_t)(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31u));
}

void sg_rng_seed(sg_rng *rng, uint64_t seed)
{
    if (!rng)
        rng = sg_default_rng();
    rng->state = 0;
    rng->inc = (seed << 1u) | 1u;
    next_u32(rng);
    rng->state += seed ^ 0x853c49e6748fea9bULL;
    next_u32(rng);
}

uint32_t sg_rng_u32(sg_rng *rng) { return next_u32(rng ? rng : sg_default_rng()); }

double sg_rng_uniform(sg_rng *rng)
{
    /* 53 random bits from two draws */
    if (!rng)
        rng = sg_default_rng();
    uint64_t hi = next_u32(rng) >> 5, lo = next_u32(rng) >> 6;
    return (double)(hi * 67108864.0 + lo) / 9007199254740992.0;
}

double sg_rng_normal(sg_rng *rng)
{
    double u1 = sg_rng_uniform(rng), u2 = sg_rng_uniform(rng);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint32_t sg_rng_below(sg_rng *rng, uint32_t n)
{
    if (n == 0) { /* no integer is below 0 */
        sg_set_error("rng_below: n must be at least 1, got 0");
        return 0;
    }
    /* Lemire-free rejection: unbiased and simple */
    uint32_t threshold = (uint32_t)(-n) % n;
    for (;;) {
        uint32_t r = sg_rng_u32(rng); /* resolves NULL */
        if (r >= threshold)
            return r % n;
    }
}


