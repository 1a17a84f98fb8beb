/*
 * test_mpi.c — data-parallel training over Open MPI (dist/, demos/train
 * under mpirun), with real mpirun and real Fashion-MNIST slices:
 *   - dist_worker under `mpirun -np 2`: the dist API's collectives (shares,
 *     the status check and its message, sums, the weighted gradient
 *     average, the broadcast and its shape check) and the batch-norm
 *     choice (per-rank statistics, rank 0's running averages);
 *   - equivalence: after 20 steps (--train-limit 2000, batch 100, one
 *     epoch), 2 ranks x local batch 50 end with the parameters of 1 process
 *     x batch 100 for the MLP and SimpleConvNet, to 1e-6 relative (per
 *     tensor, ||a - b||_2 <= 1e-6 ||a||_2). Not bitwise: each rank sums
 *     its 50 images' contributions, the allreduce adds the two partial sums
 *     (after scaling each by 50 and dividing by 100), where one process sums
 *     100 in one go — the same numbers added in another order and rounded
 *     differently (docs/distributed.md has the measured figures);
 *   - the evaluation, split across the ranks and summed, gives one
 *     process's accuracy and confusion matrix, count for count; with batch
 *     norm, the 2 ranks evaluate the model rank 0 saves (its running
 *     averages, broadcast before each evaluation);
 *   - a rank that cannot read its data, or gets a bad option, ends the
 *     whole job non-zero with its message within seconds (MPMD launch: the
 *     second rank gets other arguments), and so does a rank that fails
 *     alone later (corrupt weights: MPI_Abort);
 *   - the trainer outside mpirun is one process, unchanged.
 * Skipped (exit 77, with the reason) when the build has no MPI, mpirun is
 * not Open MPI's, or the CPU is emulated (tests/cpu-kinds.sh, qemu).
 * mpirun runs with --oversubscribe (2 ranks may exceed the slots of a
 * small machine) and --allow-run-as-root (CI containers run as root).
 */
#include "sg_autograd.h"
#include "sg_datasets.h"
#include "sg_dist.h"
#include "sg_nn.h"

#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MPIRUN "timeout -k 5 120 mpirun --oversubscribe --allow-run-as-root"

static char bindir[PATH_MAX];
static char tmpdir[] = "/tmp/sg-mpi-XXXXXX";
static char out[1 << 17];

/* Big-endian 32-bit words, as IDX headers hold them. */
static bool put_be32(FILE *f, unsigned v)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    return fwrite(b, 1, 4, f) == 4;
}

/* The first n images and labels of d as the IDX pair
 * <prefix>-{images-idx3,labels-idx1}-ubyte in dir. 0 or -1 (runs before
 * the tests: no ck_assert here). */
static int write_idx(const char *dir, const char *prefix, const sg_dataset *d, int n)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, prefix);
    FILE *f = fopen(path, "wb");
    size_t bytes = (size_t)n * d->rows * d->cols;
    bool ok = f && put_be32(f, 0x803) && put_be32(f, (unsigned)n) && put_be32(f, (unsigned)d->rows) &&
              put_be32(f, (unsigned)d->cols) && fwrite(d->images, 1, bytes, f) == bytes;
    if (f && fclose(f) != 0)
        ok = false;
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, prefix);
    f = ok ? fopen(path, "wb") : NULL;
    ok = f && put_be32(f, 0x801) && put_be32(f, (unsigned)n) && fwrite(d->labels, 1, (size_t)n, f) == (size_t)n;
    if (f && fclose(f) != 0)
        ok = false;
    return ok ? 0 : -1;
}

/* datadir: the first 2000 training and 1000 test images of
 * Fashion-MNIST, uncompressed, made once for all tests, so that each rank
 * reads 2 MB instead of ungzipping 30 MB (the runs train on the first 2000
 * images anyway). */
static char datadir[] = "/tmp/sg-mpi-data-XXXXXX";

static int make_data(void)
{
    sg_dataset *train = sg_mnist_load(SG_FASHION_MNIST_DIR, true), *test = sg_mnist_load(SG_FASHION_MNIST_DIR, false);
    if (!train || !test || !mkdtemp(datadir)) {
        printf("mpi: Fashion-MNIST (apt-get install dataset-fashion-mnist): %s\n", sg_last_error());
        return -1;
    }
    int rc = write_idx(datadir, "train", train, 2000) | write_idx(datadir, "t10k", test, 1000);
    if (rc)
        printf("mpi: cannot write the small data set in %s\n", datadir);
    sg_dataset_free(train);
    sg_dataset_free(test);
    return rc;
}

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    strcpy(tmpdir, "/tmp/sg-mpi-XXXXXX");
}

/* Run cmd in tmpdir; stdout+stderr into out; the exit status (-1 if it did
 * not exit); *seconds the wall time if not NULL. */
static int sh(const char *cmd, double *seconds)
{
    char full[7 * PATH_MAX];
    int n = snprintf(full, sizeof full, "cd %s && %s 2>&1", tmpdir, cmd);
    ck_assert(n > 0 && (size_t)n < sizeof full);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    FILE *p = popen(full, "r");
    ck_assert_ptr_nonnull(p);
    size_t len = fread(out, 1, sizeof out - 1, p);
    out[len] = '\0';
    int status = pclose(p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (seconds)
        *seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The last part of out, for a failure message (Check limits its length). */
static const char *tail(void)
{
    size_t n = strlen(out);
    return n > 3000 ? out + n - 3000 : out;
}

START_TEST(dist_api_under_two_ranks)
{
    char cmd[PATH_MAX + 256];
    snprintf(cmd, sizeof cmd, MPIRUN " -np 2 %s/dist_worker", bindir);
    int rc = sh(cmd, NULL);
    ck_assert_msg(rc == 0, "dist_worker failed (%d):\n%s", rc, tail());
    ck_assert_msg(strstr(out, "dist_worker: rank 0 of 2: all checks passed") &&
                      strstr(out, "dist_worker: rank 1 of 2: all checks passed"),
                  "not every rank passed:\n%s", tail());
}
END_TEST

/* The parameters of the model saved in file (tmpdir), loaded by name. */
typedef struct { const char *name; int ndim, shape[4]; } tensor_spec;

static void load(const char *file, const tensor_spec *spec, int n, sg_named_param *p)
{
    for (int i = 0; i < n; i++) {
        p[i].name = spec[i].name;
        p[i].tensor = sg_zeros(spec[i].ndim, spec[i].shape);
        p[i].trainable = true;
        ck_assert_ptr_nonnull(p[i].tensor);
    }
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tmpdir, file);
    ck_assert_msg(sg_safetensors_load(path, p, n) == 0, "%s", sg_last_error());
}

/* 20 steps of 1 x 100 against 2 x 50; prints the figures docs quote. */
static void check_equivalence(const char *model, const tensor_spec *spec, int n)
{
    char cmd[2 * PATH_MAX + 512];
    const char *args = "--train-limit 2000 --batch 100 --epochs 1 --threads 1 --quiet --log l.csv --plot p.png";
    snprintf(cmd, sizeof cmd, "%s/../demos/train --dataset %s --model %s %s --save one.safetensors", bindir,
             datadir, model, args);
    int rc = sh(cmd, NULL);
    ck_assert_msg(rc == 0, "one process failed:\n%s", tail());
    ck_assert_msg(!strstr(out, "data parallel"), "one process without mpirun is not one process:\n%s", tail());
    snprintf(cmd, sizeof cmd, MPIRUN " -np 2 %s/../demos/train --dataset %s --model %s %s --save two.safetensors",
             bindir, datadir, model, args);
    rc = sh(cmd, NULL);
    ck_assert_msg(rc == 0, "2 ranks failed:\n%s", tail());
    ck_assert_msg(strstr(out, "2 ranks") && strstr(out, "global batch 100, 50 per rank"), "no banner:\n%s", tail());
    ck_assert_msg(strstr(out, "gradient allreduce: 20 steps"), "not 20 averaged steps:\n%s", tail());
    /* rank 0 alone prints: one summary line, one confusion matrix */
    const char *cm = strstr(out, "confusion matrix");
    ck_assert_msg(cm && !strstr(cm + 1, "confusion matrix"), "not one confusion matrix:\n%s", tail());

    sg_named_param one[8], two[8];
    load("one.safetensors", spec, n, one);
    load("two.safetensors", spec, n, two);
    for (int i = 0; i < n; i++) {
        const float *a = sg_data(one[i].tensor), *b = sg_data(two[i].tensor);
        double da = 0, dd = 0, worst = 0;
        size_t differ = 0;
        for (size_t j = 0; j < sg_size(one[i].tensor); j++) {
            double d = (double)a[j] - (double)b[j];
            da += (double)a[j] * a[j];
            dd += d * d;
            differ += a[j] != b[j];
            worst = fmax(worst, fabs(d));
        }
        double rel = sqrt(dd / da);
        printf("equivalence %s %-8s ||a-b||/||a|| = %.2e  max |a-b| = %.2e  %zu of %zu values differ\n", model,
               spec[i].name, rel, worst, differ, sg_size(one[i].tensor));
        ck_assert_msg(da > 0, "%s %s is all zeros", model, spec[i].name);
        ck_assert_msg(rel <= 1e-6, "%s %s: 2 ranks x 50 differ from 1 x 100 by %.3g relative", model, spec[i].name,
                      rel);
    }
    for (int i = 0; i < n; i++) {
        sg_tensor_free(one[i].tensor);
        sg_tensor_free(two[i].tensor);
    }
}

/* From "test accuracy" to the end of the confusion matrix. */
static const char *evaluation(char *text)
{
    char *at = strstr(text, "test accuracy");
    ck_assert_msg(at != NULL, "no accuracy:\n%s", tail());
    return at;
}

START_TEST(two_ranks_match_one_process_mlp)
{
    static const tensor_spec mlp[] = {
        {"fc1.W", 2, {784, 100}}, {"fc1.b", 1, {100}}, {"fc2.W", 2, {100, 10}}, {"fc2.b", 1, {10}}};
    check_equivalence("mlp", mlp, 4);

    /* the evaluation, split across 2 ranks and summed, counts as one process does */
    static char one[1 << 14];
    char cmd[2 * PATH_MAX + 256];
    snprintf(cmd, sizeof cmd, "%s/../demos/train --dataset %s --eval-only --load one.safetensors", bindir, datadir);
    ck_assert_msg(sh(cmd, NULL) == 0, "evaluation failed:\n%s", tail());
    snprintf(one, sizeof one, "%s", evaluation(out));
    snprintf(cmd, sizeof cmd, MPIRUN " -np 2 %s/../demos/train --dataset %s --eval-only --load one.safetensors",
             bindir, datadir);
    ck_assert_msg(sh(cmd, NULL) == 0, "evaluation on 2 ranks failed:\n%s", tail());
    ck_assert_msg(!strcmp(one, evaluation(out)), "2 ranks evaluate otherwise:\n%s\none process:\n%s", tail(), one);
    ck_assert_msg(strstr(one, "(1000 images)"), "not the 1000 test images:\n%s", one);
}
END_TEST

START_TEST(two_ranks_match_one_process_cnn)
{
    static const tensor_spec cnn[] = {{"conv1.W", 4, {30, 1, 5, 5}}, {"conv1.b", 1, {30}},
                                      {"fc1.W", 2, {4320, 100}},     {"fc1.b", 1, {100}},
                                      {"fc2.W", 2, {100, 10}},       {"fc2.b", 1, {10}}};
    check_equivalence("cnn", cnn, 6);
}
END_TEST

/* The confusion matrix printed in text, up to the line after it. */
static void confusion_of(const char *text, char *dst, size_t cap)
{
    const char *a = strstr(text, "confusion matrix");
    ck_assert_msg(a != NULL, "no confusion matrix:\n%s", tail());
    const char *b = strstr(a, "\n\n");
    const char *c = strstr(a, "log written");
    size_t n = c && (!b || c < b) ? (size_t)(c - a) : b ? (size_t)(b - a) : strlen(a);
    ck_assert(n < cap);
    memcpy(dst, a, n);
    dst[n] = '\0';
}

/* Batch norm with per-rank statistics: every rank evaluates with rank 0's
 * running averages (broadcast before each evaluation), so the 2-rank
 * run's final evaluation is that of the weights rank 0 saves, count for
 * count. Without the broadcast, rank 1's half of the test set would be
 * normalised with its own running averages. */
START_TEST(batchnorm_ranks_evaluate_rank0s_model)
{
    static char two[1 << 14], one[1 << 14];
    char cmd[2 * PATH_MAX + 256];
    snprintf(cmd, sizeof cmd,
             MPIRUN " -np 2 %s/../demos/train --dataset %s --bn --train-limit 2000 --epochs 1 --threads 1 --quiet "
                    "--log l.csv --plot p.png --save bn.safetensors",
             bindir, datadir);
    ck_assert_msg(sh(cmd, NULL) == 0, "2 ranks with --bn failed:\n%s", tail());
    confusion_of(out, two, sizeof two);
    snprintf(cmd, sizeof cmd, "%s/../demos/train --dataset %s --bn --eval-only --load bn.safetensors", bindir,
             datadir);
    ck_assert_msg(sh(cmd, NULL) == 0, "evaluation failed:\n%s", tail());
    confusion_of(out, one, sizeof one);
    ck_assert_msg(!strcmp(one, two), "the 2 ranks evaluated another model than rank 0 saved:\n%s\nvs\n%s", two,
                  one);
}
END_TEST

/* MPMD: both ranks get good arguments and `both`, rank 1 also `bad`; the job must end
 * non-zero within seconds (not the 120 s timeout) and show `says`. */
static void one_rank_fails(const char *both, const char *bad, const char *says, int want_status)
{
    char cmd[6 * PATH_MAX], good[PATH_MAX + 128];
    snprintf(good, sizeof good, "--dataset %s --train-limit 500 --epochs 1 --threads 1 --quiet --log l.csv --plot p.png",
             datadir);
    snprintf(cmd, sizeof cmd, MPIRUN " -np 1 %s/../demos/train %s %s : -np 1 %s/../demos/train %s %s %s", bindir,
             good, both, bindir, good, both, bad);
    double seconds;
    ck_assert((size_t)snprintf(NULL, 0, "%s", cmd) < sizeof cmd - 1);
    int rc = sh(cmd, &seconds);
    printf("one rank with '%s': exit %d after %.1f s\n", bad, rc, seconds);
    ck_assert_msg(rc != 0 && rc != 124 && rc != 137, "'%s' on rank 1: exit %d after %.1f s:\n%s", bad, rc,
                  seconds, tail());
    if (want_status)
        ck_assert_msg(rc == want_status, "'%s': exit %d, want %d:\n%s", bad, rc, want_status, tail());
    ck_assert_msg(seconds < 30, "'%s': the job took %.1f s to stop:\n%s", bad, seconds, tail());
    ck_assert_msg(strstr(out, says), "'%s': no '%s' in the output:\n%s", bad, says, tail());
}

START_TEST(rank_without_data_stops_the_job)
{
    one_rank_fails("", "--dataset /nonexistent/fashion", "cannot load the data set", 1);
    ck_assert_msg(strstr(out, "every rank stops: rank 1 of 2"), "rank 0 did not name rank 1:\n%s", tail());
}
END_TEST

START_TEST(rank_with_a_bad_option_stops_the_job)
{
    one_rank_fails("", "--frobnicate", "unknown option '--frobnicate'", 2);
    ck_assert_msg(strstr(out, "every rank stops: rank 1 of 2"), "rank 0 did not name rank 1:\n%s", tail());
}
END_TEST

/* The one-process tools are refused under mpirun, on every rank, with
 * one message (each rank has its own generator, which one checkpoint
 * does not hold). */
START_TEST(one_process_options_are_refused)
{
    one_rank_fails("--checkpoint ck.safetensors", "", "run in one process, not under mpirun", 2);
}
END_TEST

/* A failure on one rank after the agreed phases (weights that do not
 * load) ends the job through MPI_Abort. */
START_TEST(rank_failing_alone_aborts_the_job)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/bad.safetensors", tmpdir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("\x10\0\0\0\0\0\0\0{not json at all", f);
    fclose(f);
    one_rank_fails("", "--load bad.safetensors", "bad.safetensors", 0);
}
END_TEST

/* A rank whose loss is not finite (here: its own huge learning rate and weight decay)
 * fails at the gradient average, and every rank stops with its message. */
START_TEST(rank_with_nan_loss_stops_every_rank)
{
    one_rank_fails("--optim sgd --train-limit 2000", "--lr 100 --wd 10", "rank 1 of 2: the loss became", 1);
    const char *first = strstr(out, "rank 1 of 2: the loss became");
    ck_assert_msg(strstr(first + 1, "rank 1 of 2: the loss became"), "not every rank told:\n%s", tail());
}
END_TEST

static const char *skip_reason(void)
{
    if (!sg_dist_has_mpi())
        return "the library was built without MPI (apt-get install libopenmpi-dev openmpi-bin; meson -Dmpi=enabled)";
    if (getenv("SG_TEST_EMULATED"))
        return "the CPU is emulated (qemu): no mpirun there";
    if (system("mpirun --version 2>/dev/null | grep -q 'Open MPI'") != 0)
        return "no Open MPI mpirun on PATH (apt-get install openmpi-bin)";
    if (system("command -v timeout >/dev/null 2>&1") != 0)
        return "no timeout(1) on PATH (coreutils)";
    return NULL;
}

int main(void)
{
    const char *why = skip_reason();
    if (why) {
        printf("mpi: skipped: %s\n", why);
        return 77;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 1;
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    snprintf(bindir, sizeof bindir, "%s", exe);
    if (make_data() != 0)
        return 1;

    Suite *s = suite_create("mpi");
    TCase *tc = tcase_create("dist");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 150);
    tcase_add_test(tc, dist_api_under_two_ranks);
    tcase_add_test(tc, two_ranks_match_one_process_mlp);
    tcase_add_test(tc, two_ranks_match_one_process_cnn);
    tcase_add_test(tc, batchnorm_ranks_evaluate_rank0s_model);
    tcase_add_test(tc, rank_without_data_stops_the_job);
    tcase_add_test(tc, rank_with_a_bad_option_stops_the_job);
    tcase_add_test(tc, rank_failing_alone_aborts_the_job);
    tcase_add_test(tc, one_process_options_are_refused);
    tcase_add_test(tc, rank_with_nan_loss_stops_every_rank);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", datadir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", datadir);
    sg_release_memory();
    return failed ? 1 : 0;
}
