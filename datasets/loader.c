/*
 * loader.c — batches of sample indices, epoch after epoch.
 *
 * The loader owns one array `perm` of the indices 0..n-1. An epoch walks it
 * from the front in steps of `batch` and hands out pointers into it; at the
 * epoch's end the array is shuffled in place (Fisher–Yates, drawn from the
 * loader's own sg_rng) for the next one. So an epoch costs no allocation
 * and no copy of the data, and the same seed replays the same orders.
 *
 * Invariants: perm is always a permutation of 0..n-1; 0 <= pos <= n; with
 * drop_last, batch <= n (checked at creation, so an epoch has a batch).
 */
#include "sg_datasets.h"

#include <stdlib.h>

struct sg_loader {
    int n;          /* samples */
    int batch;      /* samples per batch */
    bool shuffle;   /* reshuffle every epoch */
    bool drop_last; /* skip the short last batch */
    uint64_t seed;  /* for sg_loader_reset() */
    sg_rng rng;     /* draws the shuffles */
    int pos;        /* next position in perm */
    int epoch;      /* epochs completed */
    int *perm;      /* (n) the current order */
};

/* Fisher–Yates: every permutation equally likely. */
static void shuffle(int *perm, int n, sg_rng *rng)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)sg_rng_below(rng, (uint32_t)i + 1);
        int tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

sg_loader *sg_loader_new(int n, const sg_loader_opts *opts)
{
    if (!opts) {
        sg_set_error("loader_new: NULL options");
        return NULL;
    }
    if (n < 1 || opts->batch < 1) {
        sg_set_error("loader_new: need n >= 1 and batch >= 1 (got n=%d, batch=%d)", n,
                     opts->batch);
        return NULL;
    }
    if (opts->drop_last && opts->batch > n) {
        sg_set_error("loader_new: drop_last with batch %d > n %d would give no batch at all",
                     opts->batch, n);
        return NULL;
    }
    sg_loader *l = calloc(1, sizeof *l);
    if (l)
        l->perm = malloc((size_t)n * sizeof *l->perm);
    if (!l || !l->perm) {
        sg_loader_free(l);
        sg_set_error("loader_new: out of memory for %d indices", n);
        return NULL;
    }
    l->n = n;
    l->batch = opts->batch;
    l->shuffle = opts->shuffle;
    l->drop_last = opts->drop_last;
    l->seed = opts->seed;
    sg_loader_reset(l);
    return l;
}

void sg_loader_reset(sg_loader *l)
{
    if (!l)
        return;
    sg_rng_seed(&l->rng, l->seed);
    for (int i = 0; i < l->n; i++)
        l->perm[i] = i;
    if (l->shuffle)
        shuffle(l->perm, l->n, &l->rng);
    l->pos = 0;
    l->epoch = 0;
}

int sg_loader_next(sg_loader *l, const int **idx)
{
    if (!l || !idx) {
        sg_set_error("loader_next: NULL %s", l ? "idx" : "loader");
        return -1;
    }
    int left = l->n - l->pos;
    if (left == 0 || (l->drop_last && left < l->batch)) {
        /* End of the epoch: prepare the next one. */
        l->pos = 0;
        l->epoch++;
        if (l->shuffle)
            shuffle(l->perm, l->n, &l->rng);
        *idx = NULL;
        return 0;
    }
    int count = left < l->batch ? left : l->batch;
    *idx = l->perm + l->pos;
    l->pos += count;
    return count;
}

int sg_loader_epoch(const sg_loader *l)
{
    if (!l) {
        sg_set_error("loader_epoch: NULL loader");
        return 0;
    }
    return l->epoch;
}

int sg_loader_batches(const sg_loader *l)
{
    if (!l) {
        sg_set_error("loader_batches: NULL loader");
        return 0;
    }
    return l->drop_last ? l->n / l->batch : (l->n + l->batch - 1) / l->batch;
}

void sg_loader_free(sg_loader *l)
{
    if (!l)
        return;
    free(l->perm);
    free(l);
}
