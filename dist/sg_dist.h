/**
 * @file
 * sg_dist.h — data-parallel training over MPI (optional module).
 *
 * Every rank (process) holds the same model and takes its own slice of each
 * global batch; after backward the gradients of all parameters are packed
 * into one buffer and averaged across the ranks with a single allreduce
 * (Horovod's "fusion buffer", PyTorch DDP's bucket, here one bucket), so
 * every rank takes the same optimizer step and the parameters stay equal.
 * The transport is Open MPI (MPI_Allreduce, MPI_Bcast); nothing of MPI
 * shows in this header, and autograd/, nn/, optim/ know nothing of it.
 *
 * Built without MPI (meson option -Dmpi=disabled, or no libopenmpi-dev),
 * the same API runs as one process: rank 0 of 1, every collective returns
 * its input. sg_dist_has_mpi() tells which build this is.
 *
 * A step, as demos/train_dist.c does it:
 *
 *     sg_dist_init(&argc, &argv);                   // first thing in main
 *     ... build the model on every rank ...
 *     sg_dist_broadcast_model(m);                   // rank 0's weights
 *     sg_dist_reducer *red = sg_dist_reducer_new(params, n);
 *     for each global batch (same order on every rank: same seed):
 *         sg_dist_share(count, &lo, &local);        // this rank's slice
 *         forward + loss on the local slice, zero_grad, backward
 *         if (sg_dist_reduce_gradients(red, local, NULL) != 0) stop;
 *         sg_optim_step(opt, params, n);            // same step everywhere
 *     sg_dist_reducer_free(red);
 *     sg_dist_finalize();
 *
 * Errors. Functions return 0 or -1 with a message (sg_last_error()), like
 * the rest of the library. A failure on one rank must not leave the others
 * waiting in a collective: every collective here (sg_dist_check,
 * sg_dist_sum, sg_dist_reduce_gradients) carries a status. A rank that
 * failed passes its message as `error` and still takes part; then every
 * rank returns -1 with the message "rank R of N: <R's message>" of the
 * lowest failing rank R, and all can exit non-zero together. A rank that
 * fails where no collective follows calls sg_dist_abort(), which ends the
 * whole job (MPI_Abort).
 *
 * Threads: MPI is initialised with MPI_THREAD_FUNNELED; call these
 * functions from the thread that called sg_dist_init() (the engine's own
 * worker threads never call MPI).
 */
#ifndef SG_DIST_H
#define SG_DIST_H

#include "sg_autograd.h"
#include "sg_nn.h"

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Longest message (with its NUL) a failing rank hands to the others. */
#define SG_DIST_MSG_MAX 512

/** True if the library was built with MPI; false for the one-process stub. */
bool sg_dist_has_mpi(void);

/** Start MPI (MPI_Init_thread, MPI_THREAD_FUNNELED) and register
 *  sg_dist_finalize() with atexit(), so a program that leaves through
 *  exit() on every rank (e.g. --help) still ends MPI cleanly. argc and argv
 *  are main's (MPI may remove its own arguments); NULL is fine. Call once,
 *  first thing in main; a second call does nothing. Without MPI, or when
 *  the program was not started by mpirun, it is a single process of rank
 *  0. Returns 0, or -1 with a message if MPI could not start, or if a
 *  build without MPI was started by mpirun as one of several processes
 *  (each would otherwise train alone). */
int sg_dist_init(int *argc, char ***argv);

/** End MPI after a run where every rank got here (collective: it waits for
 *  all ranks). Safe to call twice, or without sg_dist_init(). A rank that
 *  fails alone must call sg_dist_abort() instead, or the others may wait. */
void sg_dist_finalize(void);

/** Flush stdout and stderr, then end every rank of the job, mpirun
 *  exiting with status `code` (0 counts as 1). Under Open MPI's mpirun
 *  this rank exits without MPI_Finalize, which makes mpirun end the job
 *  at once with a note; under other launchers, MPI_Abort (see dist.c for
 *  why not MPI_Abort with Open MPI 4.1). Without MPI: _Exit(code). For a
 *  failure on one rank where the others will not reach a collective with
 *  a status; never returns. The only function of the library that ends
 *  the process, and only when asked. */
#if defined(__GNUC__)
__attribute__((noreturn))
#endif
void sg_dist_abort(int code);

/** This process's rank in [0, size); 0 before sg_dist_init() or without MPI. */
int sg_dist_rank(void);
/** Number of ranks in the job; 1 before sg_dist_init() or without MPI. */
int sg_dist_size(void);
/** Number of ranks on this machine (sharing its cores, found with
 *  MPI_Comm_split_type(MPI_COMM_TYPE_SHARED)); 1 without MPI. */
int sg_dist_local_size(void);

/** This rank's contiguous share of n items (a global batch, a test set):
 *  items [*lo, *lo + *count) with lo = ceil(n r / size). Shares differ by
 *  at most one item, the larger ones first, so rank 0 has items whenever
 *  n >= 1; the last ranks get none when n < size. Concatenating the shares
 *  in rank order gives 0..n-1. n < 0 counts as 0; lo or count may be NULL. */
void sg_dist_share(int n, int *lo, int *count);

/** Collective status check: every rank passes NULL (or "") if it is fine,
 *  else a message. Returns 0 when every rank is fine. Otherwise returns -1
 *  on every rank, with the recorded error (replacing any earlier one) set
 *  to "rank R of N: <message>" for the lowest failing rank R (the message
 *  cut to SG_DIST_MSG_MAX - 1 bytes). The caller's message may be
 *  sg_last_error() itself. */
int sg_dist_check(const char *error);

/** Synchronisation point: returns when every rank has called it. 0, or -1
 *  with a message. */
int sg_dist_barrier(void);

/** Copy every named tensor of m (parameters and buffers, in insertion
 *  order; sg_model_params()) from rank 0 to the other ranks, one
 *  MPI_Bcast per tensor, so training starts from rank 0's weights. Every
 *  rank must hold a model with the same names and shapes: they are checked
 *  first (a collective status), and a mismatch fails on every rank with
 *  "broadcast_model: rank R of N: ..." naming the tensor and both shapes.
 *  0, or -1 with a message. */
int sg_dist_broadcast_model(sg_model *m);

/** Copy m's buffers only (batch normalisation's running_mean, running_var)
 *  from rank 0, as PyTorch DDP's broadcast_buffers does: with per-rank
 *  batch statistics each rank's running averages follow its own slices,
 *  and rank 0's are the model's. Same checks and errors as
 *  sg_dist_broadcast_model(). */
int sg_dist_broadcast_buffers(sg_model *m);

/** Sum n doubles element by element over all ranks, in place (MPI_SUM in
 *  double: counts up to 2^53 stay exact), with a status like
 *  sg_dist_check(): a rank passing a message makes every rank return -1
 *  and values are then left unspecified. n >= 0; values may be NULL when
 *  n is 0. Returns 0 or -1. */
int sg_dist_sum(double *values, int n, const char *error);

/** @name Gradient averaging */

/** Packs the gradients of a fixed list of parameters into one buffer of
 *  float32 (opaque). */
typedef struct sg_dist_reducer sg_dist_reducer;

/** A reducer for params[0..n) (persistent parameter tensors, e.g. from
 *  sg_model_trainable(); the array is copied, the tensors are borrowed and
 *  must outlive the reducer). Allocates the packed buffer once: sum of the
 *  parameters' sizes + 2 floats (the weight and a status). NULL with a
 *  message for a NULL or empty list, a NULL tensor or out of memory. */
sg_dist_reducer *sg_dist_reducer_new(sg_tensor *const *params, int n);

/** Free a reducer (not the parameters). NULL is fine. */
void sg_dist_reducer_free(sg_dist_reducer *r);

/** Replace every parameter's gradient g_r by the weighted mean over ranks
 *
 *      g = (sum_r w_r g_r) / (sum_r w_r)
 *
 *  with one MPI_Allreduce (sum) of the packed buffer [w g_1 .. w g_n, w,
 *  status]. With w_r = this rank's number of samples and g_r the gradient
 *  of the mean loss over them, g is the gradient of the mean loss over the
 *  global batch, as one process would compute it (to rounding: the sums
 *  are added in another order; docs/distributed.md). A rank with no
 *  samples passes weight 0 (its gradients are ignored but must exist).
 *  weight >= 0 and finite; the sum of weights must be > 0.
 *
 *  Status: a rank passes a message as `error` when its step failed (its
 *  loss is not finite, backward failed); it still joins the allreduce and
 *  every rank returns -1 with "rank R of N: <message>" (sg_dist_check()).
 *  A parameter without a gradient, or a bad weight, is such a failure too.
 *  On -1 the gradients are unspecified. Allocates nothing. A NULL reducer
 *  is a programming error: -1 with a message at once, without joining the
 *  other ranks (end the job with sg_dist_abort()). */
int sg_dist_reduce_gradients(sg_dist_reducer *r, double weight, const char *error);

/** Number of floats in the packed buffer (parameters' sizes + 2); its size
 *  in bytes is 4 times that. 0 for NULL. */
size_t sg_dist_reducer_floats(const sg_dist_reducer *r);

/** Calls of sg_dist_reduce_gradients() so far and the wall-clock seconds
 *  spent in them (packing, allreduce, unpacking): the communication cost
 *  per step. Either pointer may be NULL. */
void sg_dist_reducer_stats(const sg_dist_reducer *r, long *calls, double *seconds);

#ifdef __cplusplus
}
#endif
#endif
