/*
 * bench_matmul.c — GFLOP/s of the engine's matmul (sg_matmul_t, in no-grad
 * mode, inside a scope) against cblas_sgemm called directly, for 1024^3 and
 * the shapes a training step of the MLP and of SimpleConvNet multiplies.
 *
 *   ./build/bench/bench_matmul [--quick] [--threads N] [--sweep[=tall|long|narrow]]
 *
 * Each row is C(M,N) = op(A) op(B) with op(A) (M,K) and op(B) (K,N); the
 * flags say which operand is stored transposed ("tn" = A^T B, as in
 * dW = x^T dy; "nt" = A B^T, as in dx = dy W^T). For a transposed row the
 * "twin" column times the plain product of the same M, N, K through the
 * engine, so backward's transposed products can be compared with forward's.
 *
 * Timing: the best of 7 rounds, each round long enough (>= 40 ms) to swamp
 * the clock; the engine and its twin alternate round by round, and at one
 * thread each engine round is followed by a BLAS round; with more threads
 * the BLAS rounds come after all of the engine's. (With N OpenBLAS threads, OpenBLAS's idle workers keep
 * spinning for a while after each call, up to ~0.3 s here, and take the
 * second core from the engine's pool: rounds that alternated with BLAS
 * measured the engine at half its 2-thread speed in one run out of two.
 * For the same reason the engine is run for 0.5 s before the first row:
 * OpenBLAS starts its workers spinning when it loads.) GFLOP/s =
 * 2 M N K / seconds / 1e9. The BLAS side reuses one output buffer; the engine
 * side allocates its result from the scope's arena as a training step does.
 * --threads N calls sg_set_threads(N) for the engine (its own pool splits
 * large products; OpenBLAS runs one thread per piece) and gives the direct
 * cblas_sgemm column N OpenBLAS threads. Without BLAS only the engine column
 * is measured. The "kernel" column says what sg_sgemm ran: the level's own
 * "tall", "long" or "narrow" kernel, the "blas", or the "blocked" loops.
 *
 * The header names the CPU and the instruction-set level of the kernels
 * (SG_ISA=generic|avx2|avx512 lowers it). To see OpenBLAS as it runs on an
 * AVX2 CPU, run with OPENBLAS_CORETYPE=Haswell too (bench/matmul_levels.sh
 * runs every level this way).
 *
 * The "x100 images" rows time the convolution's products as a training step
 * runs them: one sg_matmul_t over a batch of 100 images (the weight matrix
 * shared), which the engine spreads over its threads one image at a time,
 * against 100 cblas_sgemm calls with all the threads each; M, N, K are one
 * image's, GFLOP/s counts the 100 products, and they have no twin. The
 * single-image rows above them are one such product alone.
 *
 * --sweep times the level's own thin kernels (called directly, one thread,
 * op(B) packing included) against cblas_sgemm on one thread over a grid of
 * the shapes they can take: the measurements behind the rules in
 * autograd/kernels/gemm.c that say where they run.
 */
#include "sg_autograd.h"
#include "sg_kernels.h" /* sg_sgemm_choice, the level's kernels (--sweep) */

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef SG_HAVE_CBLAS
#include <cblas.h>
#endif

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct shape_case {
    const char *what; /* where the product occurs */
    int M, N, K;
    bool ta, tb;
    int images;  /* 0: one product; else a batch of that many, one sg_matmul_t */
    char shared; /* in a batch: 'a' or 'b', the operand all images share; 0: none */
} shape_case;

enum { BATCH_IMAGES = 100 };

/* The products of one training step (batch 100). The convolution (nn/'s
 * conv2d) multiplies per image, straight to NCHW: Wc (30,25) @ cols_n^T
 * (25,576) and its two gradients, 100 of each per step, spread over the
 * threads: alone ("cnn conv"), then as the step calls them ("x100 images":
 * the weight matrix shared by the batch, the other operand one matrix per
 * image). The "conv as 1 product" rows are the same work as one product
 * over the whole batch (im2col's usual layout): the thin shapes the own
 * kernels are for. */
static const shape_case cases[] = {
    {"square 1024^3", 1024, 1024, 1024, false, false, 0, 0},
    {"square, A^T B", 1024, 1024, 1024, true, false, 0, 0},
    {"square, A B^T", 1024, 1024, 1024, false, true, 0, 0},
    {"mlp fc1 fwd  x W1", 100, 100, 784, false, false, 0, 0},
    {"mlp fc1 dW1  x^T dy", 784, 100, 100, true, false, 0, 0},
    {"mlp fc1 dx   dy W1^T", 100, 784, 100, false, true, 0, 0},
    {"mlp fc2 fwd  h W2", 100, 10, 100, false, false, 0, 0},
    {"mlp fc2 dW2  h^T dy", 100, 10, 100, true, false, 0, 0},
    {"mlp fc2 dh   dy W2^T", 100, 100, 10, false, true, 0, 0},
    {"cnn conv fwd Wc cols_n^T", 30, 576, 25, false, true, 0, 0},
    {"cnn conv dWc dy_n cols_n", 30, 25, 576, false, false, 0, 0},
    {"cnn conv dcols dy_n^T Wc", 576, 25, 30, true, false, 0, 0},
    {"conv as 1 product: fwd", 57600, 30, 25, false, false, 0, 0},
    {"conv as 1 product: dW", 25, 30, 57600, true, false, 0, 0},
    {"conv as 1 product: dcols", 57600, 25, 30, false, true, 0, 0},
    {"cnn fc1 fwd  p W", 100, 100, 4320, false, false, 0, 0},
    {"cnn fc1 dW   p^T dy", 4320, 100, 100, true, false, 0, 0},
    {"cnn fc1 dp   dy W^T", 100, 4320, 100, false, true, 0, 0},
    {"conv fwd x100 images", 30, 576, 25, false, true, BATCH_IMAGES, 'a'},   /* Wc @ cols_n^T */
    {"conv dWc x100 images", 30, 25, 576, false, false, BATCH_IMAGES, 0},    /* dy_n @ cols_n, then summed */
    {"conv dcols x100 images", 576, 25, 30, true, false, BATCH_IMAGES, 'b'}, /* dy_n^T @ Wc */
};

/* Operand A stored (M,K), or (K,M) when transposed; B likewise; in a batch
 * one such matrix per image unless it is the shared one. */
typedef struct operands {
    sg_tensor *a, *b;
    int lda, ldb;
    size_t sa, sb; /* floats from one image's matrix to the next (0: shared) */
} operands;

static operands make_operands(sg_rng *rng, const shape_case *c)
{
    operands o;
    const int ar = c->ta ? c->K : c->M, ac = c->ta ? c->M : c->K;
    const int br = c->tb ? c->N : c->K, bc = c->tb ? c->K : c->N;
    const bool batch_a = c->images && c->shared != 'a', batch_b = c->images && c->shared != 'b';
    o.a = batch_a ? sg_uniform(rng, -1.f, 1.f, SG_DIMS(c->images, ar, ac))
                  : sg_uniform(rng, -1.f, 1.f, SG_DIMS(ar, ac));
    o.b = batch_b ? sg_uniform(rng, -1.f, 1.f, SG_DIMS(c->images, br, bc))
                  : sg_uniform(rng, -1.f, 1.f, SG_DIMS(br, bc));
    o.lda = ac;
    o.ldb = bc;
    o.sa = batch_a ? (size_t)ar * ac : 0;
    o.sb = batch_b ? (size_t)br * bc : 0;
    return o;
}

/* Seconds per call of sg_matmul_t (one product, or a batch of them). */
static double time_engine(const operands *o, bool ta, bool tb, int reps)
{
    double t0 = now();
    for (int r = 0; r < reps; r++) {
        sg_scope_begin();
        sg_tensor *y = sg_matmul_t(o->a, o->b, ta, tb);
        if (!y) {
            fprintf(stderr, "bench_matmul: %s\n", sg_last_error());
            exit(1);
        }
        sg_scope_end();
    }
    return (now() - t0) / reps;
}

#ifdef SG_HAVE_CBLAS
/* The engine keeps OpenBLAS at one thread and splits products over its own
 * pool (autograd/kernels/gemm.c); the direct column gets all `threads`, in
 * each of a batch's cblas_sgemm calls. */
static double time_blas(const operands *o, const shape_case *s, float *c, int reps, int threads)
{
#ifdef OPENBLAS_VERSION
    openblas_set_num_threads(threads);
#else
    (void)threads;
#endif
    const float *a = sg_data(o->a), *b = sg_data(o->b);
    const int n = s->images ? s->images : 1;
    const size_t sc = (size_t)s->M * s->N;
    double t0 = now();
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < n; i++)
            cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans, s->tb ? CblasTrans : CblasNoTrans, s->M,
                        s->N, s->K, 1.f, a + i * o->sa, o->lda, b + i * o->sb, o->ldb, 0.f, c + i * sc, s->N);
    return (now() - t0) / reps;
}
#endif

/* Enough repetitions for one round to last about `target` seconds. */
static int reps_for(double one, double target)
{
    if (one <= 0)
        return 1000;
    int r = (int)(target / one);
    return r < 1 ? 1 : r > 100000 ? 100000 : r;
}

#ifdef SG_HAVE_CBLAS
enum thin_kind { TALL, LONG, NARROW, THIN_KINDS };
static const char *const thin_names[THIN_KINDS] = {"tall", "long", "narrow"};

typedef struct thin_case {
    int M, N, K;
    enum thin_kind kind;
    bool tb; /* tall with B stored (N, K), op(B) = B^T */
    const float *a, *b;
    float *c, *bp;
} thin_case;

static void run_thin(const thin_case *t, bool own)
{
    const sg_kernels *k = sg_kern;
    if (own && t->kind == TALL) {
        k->gemm_tall_pack(t->tb, t->N, t->K, t->b, t->tb ? t->K : t->N, t->bp);
        k->gemm_tall(0, t->M, t->N, t->K, t->a, t->K, t->bp, t->c, t->N, false);
    } else if (own && t->kind == LONG) {
        memset(t->c, 0, (size_t)t->M * SG_GEMM_LONG_P_COLS * sizeof(float));
        k->gemm_long(0, t->K, t->K, t->M, t->N, t->a, t->M, t->b, t->N, t->c);
    } else if (own) {
        k->gemm_narrow(0, t->M, t->N, t->K, t->a, t->M, t->b, t->N, t->c, t->N, false);
    } else if (t->kind == TALL) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, t->tb ? CblasTrans : CblasNoTrans, t->M, t->N, t->K, 1.f, t->a,
                    t->K, t->b, t->tb ? t->K : t->N, 0.f, t->c, t->N);
    } else {
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, t->M, t->N, t->K, 1.f, t->a, t->M, t->b, t->N, 0.f,
                    t->c, t->N);
    }
}

/* Best seconds of `rounds` rounds, each round >= target seconds. */
static double time_thin(const thin_case *t, bool own, int rounds, double target)
{
    double t0 = now();
    run_thin(t, own);
    int reps = reps_for(now() - t0, target);
    double best = 1e30;
    for (int r = 0; r < rounds; r++) {
        t0 = now();
        for (int i = 0; i < reps; i++)
            run_thin(t, own);
        double dt = (now() - t0) / reps;
        best = dt < best ? dt : best;
    }
    return best;
}

/* The own thin kernels against cblas_sgemm, one thread each, on the grid of
 * shapes they can take (tall: A (M,K) @ B (K,N), and A @ B^T with B stored
 * (N,K), whose packing transposes; long and narrow: A^T B, A (K,M)); only
 * the kind named `only`, if not NULL. */
static int sweep(bool quick, const char *only)
{
    if (!sg_kern->gemm_tall) {
        printf("level %s has no own thin kernels: nothing to sweep\n", sg_isa_name(sg_isa_active()));
        return 0;
    }
#ifdef OPENBLAS_VERSION
    openblas_set_num_threads(1);
#endif
    const int rounds = quick ? 2 : 5;
    const double target = quick ? 0.005 : 0.02;
    static const int tall_m[] = {64, 100, 256, 1000, 5760, 57600};
    static const int tall_n[] = {8, 10, 16, 25, 30, 50, 64, 100, 128};
    static const int tall_k[] = {9, 10, 16, 25, 30, 72, 100, 300, 1024};
    static const int long_m[] = {6, 16, 25, 30, 64};
    static const int long_n[] = {16, 25, 30, 32};
    static const int long_k[] = {4096, 57600};
    static const int narrow_m[] = {16, 30, 64, 96, 100, 110, 120, 128, 256, 784, 4320};
    static const int narrow_n[] = {1, 2, 4, 8, 10, 12, 16};
    static const int narrow_k[] = {9, 25, 100, 300, 1024, 4096};
    static const struct {
        const int *m;
        size_t nm;
        const int *n;
        size_t nn;
        const int *k;
        size_t nk;
    } grid[THIN_KINDS] = {
#define G(x) x, sizeof x / sizeof *x
        [TALL] = {G(tall_m), G(tall_n), G(tall_k)},
        [LONG] = {G(long_m), G(long_n), G(long_k)},
        [NARROW] = {G(narrow_m), G(narrow_n), G(narrow_k)},
#undef G
    };
    size_t most = (size_t)57600 * 1024 + (size_t)1024 * 128;
    /* 64-byte aligned, as the engine's tensors, scopes and packed blocks
     * are (a packed op(B) off by 16 bytes split every vector load across
     * two cache lines and cost the tall kernels ~25%) */
    float *a = aligned_alloc(64, most * sizeof(float)), *b = aligned_alloc(64, most * sizeof(float));
    float *c = aligned_alloc(64, (size_t)57600 * 128 * sizeof(float));
    float *bp = aligned_alloc(64, (size_t)1024 * 128 * sizeof(float));
    if (!a || !b || !c || !bp) {
        fprintf(stderr, "bench_matmul: out of memory for the sweep\n");
        return 1;
    }
    for (size_t i = 0; i < most; i++) {
        a[i] = (float)((i * 7919) % 13) / 13.f - 0.5f;
        b[i] = (float)((i * 104729) % 11) / 11.f - 0.5f;
    }
    printf("sweep: own thin kernels (%s) vs cblas_sgemm, 1 thread each, GFLOP/s\n", sg_isa_name(sg_isa_active()));
    printf("%-6s %3s %6s %4s %6s %9s %9s %7s\n", "kind", "op", "M", "N", "K", "own", "blas", "own/bl");
    for (int kind = 0; kind < THIN_KINDS; kind++) {
        if (only && strcmp(only, thin_names[kind]) != 0)
            continue;
        for (int tb = 0; tb <= (kind == TALL); tb++)
            for (size_t im = 0; im < grid[kind].nm; im++)
                for (size_t in = 0; in < grid[kind].nn; in++)
                    for (size_t ik = 0; ik < grid[kind].nk; ik++) {
                        thin_case t = {.M = grid[kind].m[im], .N = grid[kind].n[in], .K = grid[kind].k[ik],
                                       .kind = kind, .tb = tb, .a = a, .b = b, .c = c, .bp = bp};
                        if (quick && (double)t.M * t.N * t.K > 2e8)
                            continue;
                        double flop = 2.0 * t.M * t.N * t.K;
                        double go = flop / time_thin(&t, true, rounds, target) / 1e9;
                        double gb = flop / time_thin(&t, false, rounds, target) / 1e9;
                        printf("%-6s %3s %6d %4d %6d %9.2f %9.2f %6.2fx\n", thin_names[kind],
                               kind == TALL ? (tb ? "nt" : "nn") : "tn", t.M, t.N, t.K, go, gb, go / gb);
                        fflush(stdout);
                    }
    }
    free(a);
    free(b);
    free(c);
    free(bp);
    return 0;
}
#endif

int main(int argc, char **argv)
{
    bool quick = false, do_sweep = false;
    const char *sweep_only = NULL; /* --sweep=KIND */
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        } else if (strcmp(argv[i], "--sweep") == 0) {
            do_sweep = true;
        } else if (strcmp(argv[i], "--sweep=tall") == 0 || strcmp(argv[i], "--sweep=long") == 0 ||
                   strcmp(argv[i], "--sweep=narrow") == 0) {
            do_sweep = true;
            sweep_only = argv[i] + strlen("--sweep=");
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = atoi(argv[++i]);
        } else {
            bool help = strcmp(argv[i], "--help") == 0;
            char line[320];
            fprintf(help ? stdout : stderr,
                    "usage: %s [--quick] [--threads N] [--sweep[=tall|long|narrow]]\n"
                    "  --quick      2 rounds of 10 ms per product (default 7 of 40 ms)\n"
                    "  --threads N  the engine's threads and OpenBLAS's (default: all cores)\n"
                    "  --sweep      the level's own kernels against cblas_sgemm on a grid of shapes\n"
                    "               (=KIND: only that kind's)\n"
                    "environment: SG_ISA=generic|avx2|avx512 lowers the kernels' level;\n"
                    "OPENBLAS_CORETYPE sets OpenBLAS's (bench/matmul_levels.sh sets both)\n%s\n",
                    argv[0], sg_kernels_describe(line, sizeof line));
            return help ? 0 : 2;
        }
    }
    char line[320];
    printf("%s\n", sg_kernels_describe(line, sizeof line));
    if (do_sweep) {
#ifdef SG_HAVE_CBLAS
        return sweep(quick, sweep_only);
#else
        (void)sweep_only;
        printf("--sweep compares with the BLAS: this build has none\n");
        return 0;
#endif
    }
    threads = sg_set_threads(threads); /* 0: all cores */
    int rounds = quick ? 2 : 7;
    double target = quick ? 0.01 : 0.04;
    sg_rng rng;
    sg_rng_seed(&rng, 7);
    sg_set_grad_enabled(false); /* no-grad: the engine only computes */

    printf("matmul GFLOP/s: engine (sg_matmul_t, no-grad, in a scope) vs cblas_sgemm\n");
#ifdef SG_HAVE_CBLAS
    printf("engine built with BLAS: yes; %d thread(s) for both columns\n", threads);
#else
    printf("engine built with BLAS: no (blocked C loops; BLAS column left empty)\n");
#endif
    printf("%-24s %6s %6s %6s %3s %-7s %9s %9s %7s %9s %7s\n", "product", "M", "N", "K", "op", "kernel",
           "engine", "blas", "eng/bl", "twin(nn)", "op/twin");
#ifdef SG_HAVE_CBLAS
    double sq_engine = 0, sq_blas = 0;
#endif
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const shape_case *s = &cases[i];
        operands o = make_operands(&rng, s);
        operands twin = {0};
        bool has_twin = (s->ta || s->tb) && !s->images;
        if (has_twin) {
            shape_case plain = *s;
            plain.ta = plain.tb = false;
            twin = make_operands(&rng, &plain);
        }
        const int n_products = s->images ? s->images : 1;
        double flop = 2.0 * n_products * s->M * s->N * s->K;
        float *c = malloc((size_t)n_products * s->M * s->N * sizeof(float));
        if (!o.a || !o.b || !c || (has_twin && (!twin.a || !twin.b))) {
            fprintf(stderr, "bench_matmul: out of memory for %s\n", s->what);
            return 1;
        }
        /* warm up (0.5 s before the first row) and size the rounds */
        for (double t0 = now(); i == 0 && now() - t0 < (quick ? 0.1 : 0.5);)
            time_engine(&o, s->ta, s->tb, 1);
        int reps = reps_for(time_engine(&o, s->ta, s->tb, 1), target);
        double best_e = 1e30, best_t = 1e30;
#ifdef SG_HAVE_CBLAS
        double best_b = 1e30;
        /* One thread: the BLAS round right after each engine round, so both
         * see the same state of the machine. With more, OpenBLAS's workers
         * spin after its calls and would take a core from the engine's next
         * round (see the top of this file): its rounds come last. */
        const bool interleave = threads == 1;
#endif
        for (int r = 0; r < rounds; r++) {
            double te = time_engine(&o, s->ta, s->tb, reps);
            best_e = te < best_e ? te : best_e;
            if (has_twin) {
                double tt = time_engine(&twin, false, false, reps);
                best_t = tt < best_t ? tt : best_t;
            }
#ifdef SG_HAVE_CBLAS
            if (interleave) {
                double tb = time_blas(&o, s, c, reps, threads);
                best_b = tb < best_b ? tb : best_b;
            }
#endif
        }
#ifdef SG_HAVE_CBLAS
        for (int r = 0; !interleave && r < rounds; r++) {
            double tb = time_blas(&o, s, c, reps, threads);
            best_b = tb < best_b ? tb : best_b;
        }
#endif
        char op[4] = {s->ta ? 't' : 'n', s->tb ? 't' : 'n', 0};
        double ge = flop / best_e / 1e9;
        printf("%-24s %6d %6d %6d %3s %-7s %9.2f", s->what, s->M, s->N, s->K, op,
               sg_sgemm_choice(s->ta, s->tb, s->M, s->N, s->K), ge);
#ifdef SG_HAVE_CBLAS
        double gb = flop / best_b / 1e9;
        printf(" %9.2f %6.1f%%", gb, 100.0 * ge / gb);
        if (i == 0) {
            sq_engine = ge;
            sq_blas = gb;
        }
#else
        printf(" %9s %7s", "-", "-");
#endif
        if (has_twin) {
            double gt = flop / best_t / 1e9;
            printf(" %9.2f %6.2fx", gt, ge / gt);
        }
        printf("\n");
        fflush(stdout);
        free(c);
        sg_tensor_free(o.a);
        sg_tensor_free(o.b);
        sg_tensor_free(twin.a);
        sg_tensor_free(twin.b);
    }
    printf("(op/twin >= 1.00x: the transposed product is no slower than the plain one)\n");
#ifdef SG_HAVE_CBLAS
    printf("RESULT bench=matmul square_engine_gflops=%.2f square_blas_gflops=%.2f ratio=%.3f\n",
           sq_engine, sq_blas, sq_engine / sq_blas);
#endif
    sg_release_memory();
    return 0;
}
