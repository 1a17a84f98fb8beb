/*
 * sg_parallel.h — the engine's parallel-for: how a loop is split across the
 * thread pool. An internal interface shared by the library's modules, not
 * part of the public API (not installed; it may change with the library).
 *
 * Who includes it: sources of libscratchgrad with loops over many floats —
 * autograd/'s op files and kernels, and optim/optim.c, whose update loops
 * run on the same pool. meson puts it on the include path as
 * sg_shared_internal_inc (autograd/meson.build), and optim/meson.build adds
 * that explicitly. The rest of autograd/'s private headers (sg_internal.h:
 * the tensor struct, the op table) are autograd's own. Programs (tests,
 * demos) size the pool through the public sg_set_threads() instead. What
 * this header declares is the whole contract: a module needs nothing else
 * from parallel.c.
 *
 * One thread pool runs everything (parallel.c). A kernel hands its outer
 * loop to sg_parallel_for() as a range function; the loop is split into
 * chunks only when the work is large enough to pay for waking the pool
 * (SG_PAR_MIN floats touched). Small tensors (every unit test, the MLP's
 * bias vectors) run on the calling thread. A range function must only touch
 * its own [lo, hi) of the output (ranges run concurrently, in any order) and
 * must not report errors (the error state is per thread, so a message set
 * on a worker is lost: check first, then loop). A sg_parallel_for inside
 * another runs serially on the thread that calls it.
 *
 * Determinism: where [lo, hi) falls depends on the number of threads, so a
 * range function's results must not depend on it — each item computed on
 * its own, the same whatever range it comes in. A loop that adds across
 * items (a sum over rows, a product split along K) makes its items fixed
 * pieces chosen from the shape (never from the thread count), each summed
 * into its own partial result, and adds the partial results in a fixed
 * order afterwards (kernels/gemm.c, ops_reduce.c). That is why this header
 * does not tell a kernel how many threads a loop will get: results are the
 * same bits on any number of threads (docs/design.md, "Determinism").
 *
 * OpenBLAS is kept at one thread of its own; sg_sgemm splits big products
 * across the same pool (kernels/gemm.c), so two pools never fight over cores.
 */
#ifndef SG_PARALLEL_H
#define SG_PARALLEL_H

#include <stddef.h>

/* Floats a kernel must touch before it is worth splitting across threads:
 * about 20 µs of streaming work, against a few µs to start a team. */
#define SG_PAR_MIN ((size_t)1 << 16)

/* Elementwise kernels work in blocks of this many floats. */
#define SG_PAR_BLOCK ((size_t)1 << 14)

/* Body of a parallel loop: handle items [lo, hi). */
typedef void (*sg_range_fn)(void *ctx, size_t lo, size_t hi);

/* fn(ctx, lo, hi) over [0, n) in contiguous ranges, one per thread when
 * `work` >= SG_PAR_MIN and threads are available (and we are not inside a
 * parallel region already), else fn(ctx, 0, n) on this thread. */
void sg_parallel_for(size_t n, size_t work, sg_range_fn fn, void *ctx);

/* sg_parallel_for over n elements cut into blocks of SG_PAR_BLOCK: fn gets
 * element ranges [lo, hi) (whole blocks, the last one short), so an
 * elementwise kernel needs no block arithmetic of its own. */
void sg_parallel_for_elems(size_t n, size_t work, sg_range_fn fn, void *ctx);

/* The pool's size (the caller included): sg_set_threads(), else
 * OMP_NUM_THREADS, else the number of cores. */
int sg_pool_threads(void);
/* Resize the pool (1 = run everything on the calling thread). */
void sg_pool_set_threads(int n);
/* Stop the workers (sg_release_memory); they restart on demand. */
void sg_pool_release(void);

#endif /* SG_PARALLEL_H */
