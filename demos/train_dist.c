/*
 * train_dist.c — data-parallel training for demos/train (train_dist.h).
 *
 * `mpirun -np N train ...`: every rank runs the whole trainer on the same
 * options. The loader has the same seed on every rank, so all ranks see
 * the same global batches in the same shuffled order — those of one
 * process with that seed — and rank r trains on its slice of each
 * (sg_dist_share). After backward the gradients are averaged in one packed
 * allreduce weighted by the slices' sizes, so every rank takes the step one
 * process would take on the whole batch, and the weights stay equal.
 *
 * Batch normalisation uses per-rank batch statistics in training, as
 * PyTorch's DistributedDataParallel does by default (not SyncBatchNorm):
 * each rank normalises its slice with its slice's mean and variance. The
 * running averages are rank 0's, copied to every rank before each
 * evaluation (DDP's broadcast_buffers). A BN model therefore trains like
 * one process with batch = the local batch for its statistics; models
 * without BN match one process with the global batch.
 *
 * Only rank 0 prints, logs, plots and saves; the others' stdout goes to
 * /dev/null, their stderr (errors) stays. The evaluation splits the test
 * set into contiguous shares and sums the correct counts and the
 * confusion matrix.
 */
#include "train_dist.h"

#include "sg_dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static sg_dist_reducer *reducer;
static bool agreed_failure; /* every rank knows of the failure: leave together */

void train_dist_init(int *argc, char ***argv)
{
    if (sg_dist_init(argc, argv) != 0) {
        fprintf(stderr, "train: %s\n", sg_last_error());
        exit(1);
    }
    /* rank 0 alone prints (from --help on); errors go to stderr, kept */
    if (sg_dist_rank() != 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "train: rank %d: cannot silence stdout\n", sg_dist_rank());
        exit(1);
    }
}

bool train_dist_is_main(void) { return sg_dist_rank() == 0; }

bool train_dist_setup(int batch, int *threads, bool *quiet, const char **log, const char **plot, const char **save)
{
    int size = sg_dist_size(), local = sg_dist_local_size();
    if (size == 1)
        return true;
    if (batch < size) {
        fprintf(stderr, "train: --batch %d is smaller than the %d ranks: every rank needs at least one "
                        "image of each batch\n", batch, size);
        return false;
    }
    if (*threads == 0 && local > 1) { /* the machine's cores, shared by its ranks */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        *threads = cores > local ? (int)(cores / local) : 1;
    }
    if (sg_dist_rank() != 0) {
        *quiet = true;
        *log = *plot = "/dev/null"; /* checked as writable, never written (rank 0 plots) */
        *save = NULL;
    }
    return true;
}

bool train_dist_agree(bool ok)
{
    if (sg_dist_check(ok ? NULL : "see its message") == 0)
        return true;
    agreed_failure = true;
    if (ok && sg_dist_rank() == 0)
        fprintf(stderr, "train: every rank stops: %s above\n", sg_last_error());
    return false;
}

bool train_dist_data_ok(const sg_dataset *train)
{
    if (!train || train->n >= sg_dist_size())
        return true;
    fprintf(stderr, "train: %d training images for %d ranks: every rank needs at least one\n", train->n,
            sg_dist_size());
    return false;
}

unsigned long train_dist_seed(unsigned long seed)
{
    /* rank r > 0: seed + r times the 64-bit golden ratio (a fresh PCG stream) */
    return seed + (unsigned long)sg_dist_rank() * (unsigned long)0x9E3779B97F4A7C15ull;
}

int train_dist_broadcast(sg_model *m, int batch)
{
    int size = sg_dist_size();
    if (size == 1)
        return 0;
    if (sg_dist_broadcast_model(m) != 0) {
        agreed_failure = true;
        fprintf(stderr, "train: %s\n", sg_last_error());
        return -1;
    }
    int lo, local;
    sg_dist_share(batch, &lo, &local);
    printf("data parallel (MPI): %d ranks, %d on this machine; global batch %d, %d per rank; "
           "weights broadcast from rank 0\n", size, sg_dist_local_size(), batch, local);
    return 0;
}

int train_dist_slice(int count, int *local)
{
    int lo;
    sg_dist_share(count, &lo, local);
    return lo;
}

int train_dist_step(sg_tensor *loss, int local, sg_optim *opt, sg_tensor **params, int n_params)
{
    if (sg_dist_size() == 1)
        return !loss || sg_backward(loss, NULL) != 0 || sg_optim_step(opt, params, n_params) != 0 ? -1 : 0;
    char why[SG_DIST_MSG_MAX] = "";
    if (local > 0) {
        float l = loss ? sg_item(loss) : NAN;
        if (!loss || sg_backward(loss, NULL) != 0)
            snprintf(why, sizeof why, "%s", sg_last_error());
        else if (!isfinite(l))
            snprintf(why, sizeof why, "the loss became %g; lower the learning rate (--lr)", (double)l);
    } else {
        sg_optim_zero_grad(params, n_params); /* weight 0: only joins the average */
    }
    if (!reducer && !(reducer = sg_dist_reducer_new(params, n_params)))
        return -1; /* this rank alone: train_dist_end() ends the job */
    if (sg_dist_reduce_gradients(reducer, local, why) != 0) {
        agreed_failure = true;
        return -1;
    }
    return sg_optim_step(opt, params, n_params);
}

int train_dist_epoch_sums(double *loss_sum, int *correct, int *seen)
{
    double v[3] = {*loss_sum, *correct, *seen};
    if (sg_dist_sum(v, 3, NULL) != 0) {
        agreed_failure = true;
        return -1;
    }
    *loss_sum = v[0], *correct = (int)v[1], *seen = (int)v[2];
    return 0;
}

int train_dist_sync_buffers(sg_model *m)
{
    if (sg_dist_size() == 1)
        return 0;
    if (sg_dist_broadcast_buffers(m) != 0) {
        agreed_failure = true;
        return -1;
    }
    return 0;
}

void train_dist_range(int n, int *lo, int *hi)
{
    int count;
    sg_dist_share(n, lo, &count);
    *hi = *lo + count;
}

int train_dist_eval_sums(int *correct, int *confusion, int k)
{
    if (sg_dist_size() == 1)
        return *correct < 0 ? -1 : 0;
    int n = 1 + (confusion ? k * k : 0);
    double *v = malloc((size_t)n * sizeof *v);
    char why[SG_DIST_MSG_MAX] = "";
    if (*correct < 0)
        snprintf(why, sizeof why, "evaluation: %s", sg_last_error());
    else if (!v)
        snprintf(why, sizeof why, "evaluation: out of memory");
    if (v) {
        v[0] = *correct;
        for (int i = 1; i < n; i++)
            v[i] = confusion[i - 1];
    }
    int rc = sg_dist_sum(v, v ? n : 0, why);
    if (rc == 0) {
        *correct = (int)v[0];
        for (int i = 1; i < n; i++)
            confusion[i - 1] = (int)v[i];
    } else {
        agreed_failure = true;
        *correct = -1;
    }
    free(v);
    return rc;
}

int train_dist_end(int rc)
{
    long calls = 0;
    double seconds = 0;
    sg_dist_reducer_stats(reducer, &calls, &seconds);
    if (rc == 0 && calls > 0 && sg_dist_rank() == 0)
        printf("gradient allreduce: %ld steps, %.3f s in all (%.2f ms per step, %zu floats)\n", calls, seconds,
               1e3 * seconds / (double)calls, sg_dist_reducer_floats(reducer));
    sg_dist_reducer_free(reducer);
    reducer = NULL;
    if (rc != 0 && !agreed_failure && sg_dist_size() > 1)
        sg_dist_abort(rc); /* this rank alone failed: the others may be waiting in a collective */
    sg_dist_finalize();
    return rc;
}
