/*
 * dist.c — data-parallel training over MPI: start and end, rank and size,
 * broadcast of a model, sums with a status, and the packed gradient
 * average (sg_dist.h).
 *
 * One file for both builds: with SG_HAVE_MPI the collectives call Open MPI;
 * without it the job is one process (rank 0 of 1) and every collective
 * returns its input. A program not started by mpirun (no launcher
 * variables in its environment) never calls MPI_Init either, so the
 * trainer's ordinary runs start no MPI runtime.
 *
 * Invariant of the error path: a collective is entered by every rank or by
 * none. A failing rank therefore still joins the collective and marks its
 * status; then every rank learns the lowest failing rank R (MPI_MIN) and
 * R's message (MPI_Bcast from R), records "rank R of N: message" and
 * returns -1 — all ranks leave together and nobody waits forever.
 */
#include "sg_dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef SG_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1, g_local = 1;
static bool g_started;
#ifdef SG_HAVE_MPI
static bool g_mpi_inited, g_finalized;
#endif

bool sg_dist_has_mpi(void)
{
#ifdef SG_HAVE_MPI
    return true;
#else
    return false;
#endif
}

int sg_dist_rank(void) { return g_rank; }
int sg_dist_size(void) { return g_size; }
int sg_dist_local_size(void) { return g_local; }

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Started by a launcher: Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE;
 * PMIx- and PMI-based launchers (srun, MPICH's hydra) set the others. */
static bool launched_by_mpirun(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return true;
    return false;
}

int sg_dist_init(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (g_started)
        return 0;
    g_started = true;
#ifndef SG_HAVE_MPI
    /* N copies of a one-process program would each train alone: say so */
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n)
        n = getenv("PMI_SIZE");
    if (launched_by_mpirun() && n && atoi(n) > 1) {
        sg_set_error("dist_init: started as one of %s processes by mpirun, but this build has no MPI "
                     "(install libopenmpi-dev and rebuild; meson -Dmpi=enabled)", n);
        return -1;
    }
#else
    if (!launched_by_mpirun())
        return 0;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        sg_set_error("dist_init: MPI_Init_thread failed");
        return -1;
    }
    g_mpi_inited = true;
    atexit(sg_dist_finalize);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm local;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
        MPI_Comm_size(local, &g_local);
        MPI_Comm_free(&local);
    }
#endif
    return 0;
}

void sg_dist_finalize(void)
{
#ifdef SG_HAVE_MPI
    if (g_mpi_inited && !g_finalized) {
        g_finalized = true;
        MPI_Finalize();
    }
#endif
}

/* Under Open MPI's mpirun a process that exits non-zero without
 * MPI_Finalize makes mpirun end the whole job at once ("Per user-direction,
 * the job has been aborted"; orte_abort_on_non_zero_status, on by
 * default), with the rank's exit status as mpirun's. That path is used
 * there: MPI_Abort in Debian 12's Open MPI 4.1.4 garbles its own notice
 * (ORTE_ERROR_LOG in show_help.c) and mpirun sometimes crashed with
 * SIGSEGV (status 139). Other launchers get MPI_Abort, the standard way. */
void sg_dist_abort(int code)
{
    if (code == 0)
        code = 1;
    fflush(stdout);
    fflush(stderr);
#ifdef SG_HAVE_MPI
    if (g_mpi_inited && !g_finalized && !getenv("OMPI_COMM_WORLD_SIZE"))
        MPI_Abort(MPI_COMM_WORLD, code);
#endif
    _Exit(code); /* not exit(): the atexit hook would call MPI_Finalize and wait for the others */
}

void sg_dist_share(int n, int *lo, int *count)
{
    if (n < 0)
        n = 0;
    /* ceilings: rank 0 gets the larger share, so it has images whenever n >= 1 */
    long long a = ((long long)n * g_rank + g_size - 1) / g_size;
    long long b = ((long long)n * (g_rank + 1) + g_size - 1) / g_size;
    if (lo)
        *lo = (int)a;
    if (count)
        *count = (int)(b - a);
}

/* ---- the error path ---- */

/* Collective: the lowest rank with failed set, or g_size if none. */
static int first_failure(bool failed)
{
    int mine = failed ? g_rank : g_size, first = mine;
#ifdef SG_HAVE_MPI
    if (g_size > 1)
        MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
#endif
    return first;
}

/* Collective, after first_failure() named rank `first`: hand its message
 * to every rank and record it there ("rank R of N: ..."). Returns -1. */
static int report(int first, const char *error)
{
    char msg[SG_DIST_MSG_MAX] = "";
    if (g_rank == first && error)
        snprintf(msg, sizeof msg, "%s", error); /* error may be sg_last_error(): copy first */
#ifdef SG_HAVE_MPI
    if (g_size > 1)
        MPI_Bcast(msg, (int)sizeof msg, MPI_CHAR, first, MPI_COMM_WORLD);
#endif
    sg_clear_error();
    if (g_size > 1)
        sg_set_error("rank %d of %d: %s", first, g_size, msg[0] ? msg : "failed");
    else
        sg_set_error("%s", msg[0] ? msg : "failed");
    return -1;
}

int sg_dist_check(const char *error)
{
    bool failed = error && error[0];
    int first = first_failure(failed);
    return first < g_size ? report(first, error) : 0;
}

int sg_dist_barrier(void)
{
#ifdef SG_HAVE_MPI
    if (g_size > 1)
        MPI_Barrier(MPI_COMM_WORLD);
#endif
    return 0;
}

int sg_dist_sum(double *values, int n, const char *error)
{
    char why[SG_DIST_MSG_MAX] = "";
    if (error && error[0])
        snprintf(why, sizeof why, "%s", error);
    else if (n < 0 || (n > 0 && !values))
        snprintf(why, sizeof why, "dist_sum: %s", n < 0 ? "n is negative" : "values is NULL");
    if (sg_dist_check(why) != 0)
        return -1;
#ifdef SG_HAVE_MPI
    if (g_size > 1 && n > 0)
        MPI_Allreduce(MPI_IN_PLACE, values, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
#endif
    return 0;
}

/* ---- broadcast of a model ---- */

/* "name (d0,d1,...)" of every tensor broadcast, in order, into a new
 * string; NULL on out of memory. */
static char *describe(const sg_named_param *p, int n, bool buffers_only)
{
    size_t cap = 64, used = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (buffers_only && p[i].trainable)
            continue;
        char shape[128];
        sg_shape_str(p[i].tensor, shape, sizeof shape);
        size_t need = strlen(p[i].name) + strlen(shape) + 4;
        if (used + need >= cap) {
            cap = 2 * (used + need);
            char *t = realloc(s, cap);
            if (!t) {
                free(s);
                return NULL;
            }
            s = t;
        }
        used += (size_t)snprintf(s + used, cap - used, "%s %s;", p[i].name, shape);
    }
    return s;
}

#ifdef SG_HAVE_MPI
/* Where two descriptions first differ: the tensor (up to ';') in each. */
static void first_difference(const char *a, const char *b, char *why, size_t cap, const char *func)
{
    size_t start = 0, i = 0;
    while (a[i] && a[i] == b[i]) {
        if (a[i] == ';')
            start = i + 1;
        i++;
    }
    int la = (int)strcspn(a + start, ";"), lb = (int)strcspn(b + start, ";");
    snprintf(why, cap, "%s: this rank's model has %.*s%s where rank 0's has %.*s%s", func, lb,
             b + start, lb ? "" : "no more tensors", la, a + start, la ? "" : "no more tensors");
}
#endif

static int broadcast(sg_model *m, bool buffers_only, const char *func)
{
    char why[SG_DIST_MSG_MAX] = "";
    int n = 0;
    const sg_named_param *p = m ? sg_model_params(m, &n) : NULL;
    char *mine = p || n == 0 ? describe(p, n, buffers_only) : NULL;
    if (!m)
        snprintf(why, sizeof why, "%s: NULL model", func);
    else if (!mine)
        snprintf(why, sizeof why, "%s: out of memory", func);
#ifdef SG_HAVE_MPI
    if (g_size > 1) {
        /* rank 0's description, to compare names and shapes before any data moves */
        long len = mine && g_rank == 0 ? (long)strlen(mine) + 1 : 0;
        if (sg_dist_check(why) != 0) {
            free(mine);
            return -1;
        }
        MPI_Bcast(&len, 1, MPI_LONG, 0, MPI_COMM_WORLD);
        char *root = g_rank == 0 ? mine : malloc((size_t)len);
        char dummy = 0;
        MPI_Bcast(root ? root : &dummy, root ? (int)len : 1, MPI_CHAR, 0, MPI_COMM_WORLD);
        if (!root)
            snprintf(why, sizeof why, "%s: out of memory", func);
        else if (strcmp(root, mine))
            first_difference(root, mine, why, sizeof why, func);
        if (root != mine)
            free(root);
    }
#endif
    free(mine);
    if (sg_dist_check(why) != 0)
        return -1;
#ifdef SG_HAVE_MPI
    for (int i = 0; g_size > 1 && i < n; i++) {
        if (buffers_only && p[i].trainable)
            continue;
        size_t count = sg_size(p[i].tensor);
        float *data = sg_data(p[i].tensor);
        for (size_t at = 0; at < count;) { /* MPI counts are int */
            int chunk = count - at > (size_t)1 << 30 ? 1 << 30 : (int)(count - at);
            MPI_Bcast(data + at, chunk, MPI_FLOAT, 0, MPI_COMM_WORLD);
            at += (size_t)chunk;
        }
    }
#endif
    return 0;
}

int sg_dist_broadcast_model(sg_model *m) { return broadcast(m, false, "broadcast_model"); }

int sg_dist_broadcast_buffers(sg_model *m) { return broadcast(m, true, "broadcast_buffers"); }

/* ---- the packed gradient average ---- */

struct sg_dist_reducer {
    sg_tensor **params; /* borrowed, n */
    int n;
    size_t floats;      /* sum of the parameters' sizes + 2 */
    float *buf;         /* (floats): w g_1 .. w g_n, w, status */
    long calls;
    double seconds;
};

sg_dist_reducer *sg_dist_reducer_new(sg_tensor *const *params, int n)
{
    if (!params || n < 1) {
        sg_set_error("dist_reducer_new: %s", !params ? "NULL parameter list" : "no parameters");
        return NULL;
    }
    size_t total = 2;
    for (int i = 0; i < n; i++) {
        if (!sg_check_tensor("dist_reducer_new", params[i]))
            return NULL;
        total += sg_size(params[i]);
    }
    sg_dist_reducer *r = calloc(1, sizeof *r);
    if (r) {
        r->params = malloc((size_t)n * sizeof *r->params);
        r->buf = malloc(total * sizeof *r->buf);
    }
    if (!r || !r->params || !r->buf) {
        sg_dist_reducer_free(r);
        sg_set_error("dist_reducer_new: out of memory (%zu floats)", total);
        return NULL;
    }
    memcpy(r->params, params, (size_t)n * sizeof *params);
    r->n = n;
    r->floats = total;
    return r;
}

void sg_dist_reducer_free(sg_dist_reducer *r)
{
    if (!r)
        return;
    free(r->params);
    free(r->buf);
    free(r);
}

size_t sg_dist_reducer_floats(const sg_dist_reducer *r) { return r ? r->floats : 0; }

void sg_dist_reducer_stats(const sg_dist_reducer *r, long *calls, double *seconds)
{
    if (calls)
        *calls = r ? r->calls : 0;
    if (seconds)
        *seconds = r ? r->seconds : 0;
}

/* The local checks: a message in why if this rank cannot contribute. */
static void check_local(const sg_dist_reducer *r, double weight, const char *error, char *why, size_t cap)
{
    if (error && error[0]) {
        snprintf(why, cap, "%s", error);
        return;
    }
    if (!r) {
        snprintf(why, cap, "reduce_gradients: NULL reducer");
        return;
    }
    if (!(weight >= 0) || !isfinite(weight)) {
        snprintf(why, cap, "reduce_gradients: weight %g must be finite and >= 0", weight);
        return;
    }
    for (int i = 0; i < r->n; i++) {
        sg_tensor *g = sg_grad(r->params[i]);
        if (!g || sg_size(g) != sg_size(r->params[i])) {
            char shape[128];
            sg_clear_error(); /* sg_grad's own note, if any, is replaced by this one */
            snprintf(why, cap, "reduce_gradients: parameter %d %s has no gradient (call sg_backward first)",
                     i, sg_shape_str(r->params[i], shape, sizeof shape));
            return;
        }
    }
}

int sg_dist_reduce_gradients(sg_dist_reducer *r, double weight, const char *error)
{
    double t0 = now();
    char why[SG_DIST_MSG_MAX] = "";
    check_local(r, weight, error, why, sizeof why);
    bool failed = why[0] != '\0';
    if (!r) { /* a programming error: no buffer to join the others' allreduce with */
        sg_set_error("%s", why);
        return -1;
    }
    if (g_size == 1) { /* one rank: the mean of one gradient is itself, left untouched */
        int rc = failed ? report(0, why) : 0;
        if (!failed && !(weight > 0)) {
            sg_clear_error();
            sg_set_error("reduce_gradients: the weights of all ranks sum to 0");
            rc = -1;
        }
        r->calls++;
        r->seconds += now() - t0;
        return rc;
    }
    float w = (float)weight, *buf = r->buf;
    size_t at = 0;
    for (int i = 0; i < r->n; i++) {
        size_t count = sg_size(r->params[i]);
        sg_tensor *g = failed ? NULL : sg_grad(r->params[i]);
        const float *gd = g ? sg_data(g) : NULL;
        for (size_t j = 0; j < count; j++)
            buf[at + j] = gd ? w * gd[j] : 0.f;
        at += count;
    }
    buf[at] = failed ? 0.f : w;
    buf[at + 1] = failed ? 1.f : 0.f;
#ifdef SG_HAVE_MPI
    for (size_t done = 0; done < r->floats;) { /* MPI counts are int */
        int chunk = r->floats - done > (size_t)1 << 30 ? 1 << 30 : (int)(r->floats - done);
        MPI_Allreduce(MPI_IN_PLACE, buf + done, chunk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        done += (size_t)chunk;
    }
#endif
    int rc = 0;
    if (buf[at + 1] > 0.f) {
        rc = report(first_failure(failed), why);
    } else if (!(buf[at] > 0.f)) {
        sg_clear_error();
        sg_set_error("reduce_gradients: the weights of all ranks sum to 0");
        rc = -1;
    } else {
        float total = buf[at], *b = buf;
        for (int i = 0; i < r->n; i++) {
            size_t count = sg_size(r->params[i]);
            float *gd = sg_data(sg_grad(r->params[i]));
            for (size_t j = 0; j < count; j++)
                gd[j] = b[j] / total;
            b += count;
        }
    }
    r->calls++;
    r->seconds += now() - t0;
    return rc;
}
