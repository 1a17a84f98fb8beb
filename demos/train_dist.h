/*
 * train_dist.h — the trainer's data-parallel glue (demos/train_dist.c):
 * what demos/train.c calls so that `mpirun -np N train ...` trains one
 * model on N processes. Each function is a plain pass-through for a
 * single process (not started by mpirun, or a build without MPI), so the
 * trainer's ordinary runs behave exactly as before.
 *
 * Phases: every rank parses the options, loads the data and builds the
 * model itself; after each phase train_dist_agree() is a collective status
 * check, so a rank that failed (a bad option, data it cannot read) makes
 * every rank stop with a non-zero status. Any other failure on one rank
 * ends the whole job through train_dist_end() (MPI_Abort).
 */
#ifndef SG_TRAIN_DIST_H
#define SG_TRAIN_DIST_H

#include "sg_autograd.h"
#include "sg_datasets.h"
#include "sg_nn.h"
#include "sg_optim.h"

#include <stdbool.h>

/** sg_dist_init(), and stdout to /dev/null on ranks other than 0; on
 *  failure prints the reason and exits 1. */
void train_dist_init(int *argc, char ***argv);

/** After the options are parsed: on ranks other than 0, no progress bar,
 *  the log and the plot to /dev/null (their paths are rank 0's, perhaps on
 *  another machine), no weights saved;
 *  without --threads, each rank takes its machine's cores / ranks there.
 *  False (with a message) if the global batch is smaller than the number
 *  of ranks. */
bool train_dist_setup(int batch, int *threads, bool *quiet, const char **log, const char **plot, const char **save);

/** Collective status check after a phase: ok is this rank's outcome (its
 *  message, if any, already printed). True when every rank is ok; else
 *  rank 0 (if it was ok) names the failing rank, and every rank should
 *  leave with train_dist_end(status). */
bool train_dist_agree(bool ok);

/** The training set is usable by every rank: at least one image per rank.
 *  NULL (--eval-only) is fine. */
bool train_dist_data_ok(const sg_dataset *train);

/** The seed of this rank's generator (weights before the broadcast,
 *  dropout masks, augmentation): the given seed on rank 0, a different
 *  stream on every other rank, so dropout and augmentation differ across
 *  the ranks' slices. */
unsigned long train_dist_seed(unsigned long seed);

/** Rank 0's weights and buffers to every rank (sg_dist_broadcast_model);
 *  prints a one-line summary on rank 0 of a multi-rank job. 0, or -1
 *  after printing the message. */
int train_dist_broadcast(sg_model *m, int batch);

/** This rank's share of a global batch of `count` images: returns its
 *  offset in the batch and sets *local to its count (0 possible for the
 *  last ranks when count < ranks). */
int train_dist_slice(int count, int *local);

/** Backward of loss (mean over `local` images; NULL when local is 0), the
 *  gradient average over the ranks (one packed allreduce), and the
 *  optimizer step. For one process exactly backward + sg_optim_step.
 *  0, or -1 with a message (sg_last_error()) on every rank. */
int train_dist_step(sg_tensor *loss, int local, sg_optim *opt, sg_tensor **params, int n_params);

/** Sum an epoch's statistics over the ranks (collective). 0 or -1. */
int train_dist_epoch_sums(double *loss_sum, int *correct, int *seen);

/** Rank 0's batch-norm running statistics to every rank (before an
 *  evaluation; collective). 0 or -1 with a message. */
int train_dist_sync_buffers(sg_model *m);

/** This rank's contiguous share of a set of n images (evaluation). */
void train_dist_range(int n, int *lo, int *hi);

/** Sum the evaluation's correct count (-1 on this rank = failed) and the
 *  k x k confusion matrix (if not NULL) over the ranks. 0 or -1. */
int train_dist_eval_sums(int *correct, int *confusion, int k);

/** True on rank 0 (the rank that prints, logs, plots and saves). */
bool train_dist_is_main(void);

/** The process's exit status, ending MPI: rc after a normal end or a
 *  failure every rank agreed on; a failure of this rank alone ends every
 *  rank of the job (MPI_Abort with rc). */
int train_dist_end(int rc);

#endif
