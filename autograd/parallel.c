/*
 * parallel.c — the engine's thread pool and sg_parallel_for (the policy is
 * in sg_parallel.h).
 *
 * Why not `#pragma omp parallel`: an OpenMP region ends in a barrier that
 * waits for every thread of the team, so on a loaded machine one worker the
 * kernel has not scheduled yet holds the caller for a whole time slice (we
 * measured 7 ms for a 0.5 ms kernel at load 5 on 2 cores), and even a
 * serialised `if (0)` region allocates in libgomp. Here the caller never
 * waits for a thread that has not started: it posts a job of chunks, takes
 * chunks itself, and waits only for chunks that another thread has claimed.
 * A worker that wakes late finds nothing left and goes back to sleep.
 *
 * The job ticket packs (generation, next chunk, chunk count) into one atomic
 * word; a chunk is claimed with a compare-and-swap that also checks the
 * generation, so a late worker can never take a chunk of a finished job.
 * The job's function and context are written before the ticket is published
 * (release) and read after a successful claim (acquire). Workers spin for a
 * little while between jobs (a training step issues them back to back),
 * then sleep on a condition variable.
 *
 * Threads come from pthreads; builds with OpenMP link them (-fopenmp), and
 * builds without run every loop on the calling thread.
 */
#include "sg_internal.h"
#include "sg_parallel.h"

#include <unistd.h>

#ifdef SG_HAVE_OPENMP
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define SG_MAX_THREADS 64
#define SPIN_IDLE 4000 /* pause loops (~0.2 ms) a worker spins before sleeping */

typedef struct pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t tid[SG_MAX_THREADS];
    int workers;                /* running worker threads */
    atomic_uint_fast64_t ticket; /* gen << 32 | next << 16 | count */
    atomic_uint done;           /* chunks finished in the current job */
    atomic_int sleepers;
    atomic_int stop;
    atomic_flag busy;           /* held by the thread that posts a job */
    uint32_t gen;
    /* the current job, valid while its chunks are being run */
    sg_range_fn fn;
    void *ctx;
    size_t n;
} pool;

static pool P = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .busy = ATOMIC_FLAG_INIT};
static int want_threads; /* 0 = not chosen yet */
static _Thread_local bool in_worker;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/* Claim and run chunks of job `gen` until none is left. */
static void run_chunks(uint32_t gen)
{
    for (;;) {
        uint_fast64_t t = atomic_load_explicit(&P.ticket, memory_order_acquire);
        uint32_t next = (uint32_t)(t >> 16) & 0xffffu, count = (uint32_t)t & 0xffffu;
        if ((uint32_t)(t >> 32) != gen || next >= count)
            return;
        if (!atomic_compare_exchange_weak_explicit(&P.ticket, &t, t + (1u << 16), memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;
        size_t lo = P.n * next / count, hi = P.n * (next + 1) / count;
        if (lo < hi)
            P.fn(P.ctx, lo, hi);
        atomic_fetch_add_explicit(&P.done, 1, memory_order_release);
    }
}

static void *worker(void *arg)
{
    in_worker = true;
    uint32_t seen = (uint32_t)(uintptr_t)arg; /* the generation before the next job */
    for (;;) {
        int spins = 0;
        uint32_t gen;
        while ((gen = (uint32_t)(atomic_load_explicit(&P.ticket, memory_order_acquire) >> 32)) == seen) {
            if (atomic_load_explicit(&P.stop, memory_order_relaxed))
                return NULL;
            if (++spins < SPIN_IDLE) {
                cpu_relax();
                continue;
            }
            pthread_mutex_lock(&P.mu);
            atomic_fetch_add(&P.sleepers, 1);
            while ((uint32_t)(atomic_load(&P.ticket) >> 32) == seen && !atomic_load(&P.stop))
                pthread_cond_wait(&P.cv, &P.mu);
            atomic_fetch_sub(&P.sleepers, 1);
            pthread_mutex_unlock(&P.mu);
            spins = 0;
        }
        seen = gen;
        run_chunks(gen);
    }
}

static void stop_workers(void)
{
    if (P.workers == 0)
        return;
    pthread_mutex_lock(&P.mu);
    atomic_store(&P.stop, 1);
    pthread_cond_broadcast(&P.cv);
    pthread_mutex_unlock(&P.mu);
    for (int i = 0; i < P.workers; i++)
        pthread_join(P.tid[i], NULL);
    P.workers = 0;
    atomic_store(&P.stop, 0);
}

/* In a child of fork() only the forking thread exists: forget the workers
 * (they are started again on demand). */
static void after_fork_child(void)
{
    P.workers = 0;
    atomic_store(&P.stop, 0);
    atomic_store(&P.sleepers, 0);
    atomic_flag_clear(&P.busy);
    pthread_mutex_init(&P.mu, NULL);
    pthread_cond_init(&P.cv, NULL);
}

static void register_atfork(void) { pthread_atfork(NULL, NULL, after_fork_child); }

static int default_threads(void)
{
    const char *env = getenv("OMP_NUM_THREADS");
    int n = env ? atoi(env) : 0;
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
    return n;
}

int sg_pool_threads(void)
{
    if (!want_threads)
        want_threads = default_threads();
    return want_threads;
}

void sg_pool_set_threads(int n)
{
    if (n < 1)
        n = 1;
    if (n > SG_MAX_THREADS)
        n = SG_MAX_THREADS;
    if (n == want_threads)
        return;
    stop_workers(); /* restarted with the new count on the next job */
    want_threads = n;
}

void sg_pool_release(void) { stop_workers(); }

/* Start the workers (once per thread count); false if none could start. */
static bool ensure_workers(void)
{
    int need = sg_pool_threads() - 1;
    if (P.workers >= need)
        return P.workers > 0;
    pthread_once(&atfork_once, register_atfork);
    while (P.workers < need) {
        if (pthread_create(&P.tid[P.workers], NULL, worker, (void *)(uintptr_t)P.gen) != 0)
            break;
        P.workers++;
    }
    return P.workers > 0;
}

/* Threads a parallel loop of this much work would use (1 = serial). Not
 * in sg_parallel.h: no kernel may cut its work by it (determinism). */
static int parallel_threads(size_t work)
{
    if (work < SG_PAR_MIN || in_worker)
        return 1;
    return sg_pool_threads();
}

void sg_parallel_for(size_t n, size_t work, sg_range_fn fn, void *ctx)
{
    if (n == 0)
        return;
    int T = parallel_threads(work);
    if (T <= 1 || n == 1 || atomic_flag_test_and_set_explicit(&P.busy, memory_order_acquire)) {
        fn(ctx, 0, n); /* serial, nested, or another thread owns the pool */
        return;
    }
    if (!ensure_workers()) {
        atomic_flag_clear_explicit(&P.busy, memory_order_release);
        fn(ctx, 0, n);
        return;
    }
    /* a few chunks per thread, so a thread that starts late or is
     * preempted leaves its share to the others */
    size_t count = (size_t)T * 4;
    if (count > n)
        count = n;
    if (count > 0xffffu)
        count = 0xffffu;
    P.fn = fn;
    P.ctx = ctx;
    P.n = n;
    atomic_store_explicit(&P.done, 0, memory_order_relaxed);
    uint32_t gen = ++P.gen;
    atomic_store(&P.ticket, ((uint_fast64_t)gen << 32) | (uint_fast64_t)count);
    if (atomic_load(&P.sleepers) > 0) {
        pthread_mutex_lock(&P.mu);
        pthread_cond_broadcast(&P.cv);
        pthread_mutex_unlock(&P.mu);
    }
    run_chunks(gen);
    for (unsigned spins = 0; atomic_load_explicit(&P.done, memory_order_acquire) < count; spins++) {
        if (spins < 20000)
            cpu_relax();
        else
            sched_yield(); /* a claimed chunk's thread was preempted */
    }
    atomic_flag_clear_explicit(&P.busy, memory_order_release);
}

#else /* no threads */

int sg_pool_threads(void) { return 1; }
void sg_pool_set_threads(int n) { (void)n; }
void sg_pool_release(void) {}
void sg_parallel_for(size_t n, size_t work, sg_range_fn fn, void *ctx)
{
    (void)work;
    if (n)
        fn(ctx, 0, n);
}

#endif

typedef struct elems_job {
    sg_range_fn fn;
    void *ctx;
    size_t n;
} elems_job;

static void elems_blocks(void *arg, size_t lo, size_t hi)
{
    const elems_job *j = arg;
    size_t end = hi * SG_PAR_BLOCK;
    j->fn(j->ctx, lo * SG_PAR_BLOCK, end < j->n ? end : j->n);
}

void sg_parallel_for_elems(size_t n, size_t work, sg_range_fn fn, void *ctx)
{
    elems_job j = {fn, ctx, n};
    sg_parallel_for((n + SG_PAR_BLOCK - 1) / SG_PAR_BLOCK, work, elems_blocks, &j);
}
