/*
 * test_train.c — the main program (demos/train) end to end, on small slices
 * of Fashion-MNIST so the suite stays fast:
 *   - a short run lifts test accuracy far above chance (10%);
 *   - save -> load gives identical predictions (same accuracy and confusion
 *     matrix in --eval-only);
 *   - the CSV log has one row per epoch;
 *   - bad options, missing data and unreadable weight files exit non-zero
 *     with a message that says what is wrong.
 * The binary is found next to this one: <build>/tests/../demos/train.
 */
#include "sg_autograd.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char train_bin[PATH_MAX + 32];
static char tmpdir[] = "/tmp/sg-train-XXXXXX";

static void find_binary(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    ck_assert_int_gt(n, 0);
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    ck_assert_ptr_nonnull(slash);
    *slash = '\0';
    snprintf(train_bin, sizeof train_bin, "%s/../demos/train", exe);
    ck_assert_msg(access(train_bin, X_OK) == 0, "no trainer at %s", train_bin);
}

/* Run the trainer with args (cwd = tmpdir); capture stdout+stderr. */
static int run(const char *args, char *out, size_t cap)
{
    char cmd[2 * PATH_MAX + 512];
    int n = snprintf(cmd, sizeof cmd, "cd %s && %s %s 2>&1", tmpdir, train_bin, args);
    ck_assert(n > 0 && (size_t)n < sizeof cmd);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t len = fread(out, 1, cap - 1, p);
    out[len] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static double final_accuracy(const char *out)
{
    const char *s = strstr(out, "final test accuracy ");
    if (!s)
        s = strstr(out, "test accuracy ");
    ck_assert_msg(s != NULL, "no accuracy in output:\n%s", out);
    s = strstr(s, "accuracy ") + strlen("accuracy ");
    return atof(s);
}

static void setup(void)
{
    find_binary();
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    strcpy(tmpdir, "/tmp/sg-train-XXXXXX");
}

static char out[1 << 16], out2[1 << 16];

START_TEST(short_run_learns_and_save_load_is_exact)
{
    int rc = run("--train-limit 2000 --epochs 2 --quiet --threads 1 --save w.safetensors", out, sizeof out);
    ck_assert_msg(rc == 0, "trainer failed:\n%s", out);
    char want[64]; /* the kernels in use, named */
    snprintf(want, sizeof want, "kernels: %s on ", sg_isa_name(sg_isa_active()));
    ck_assert_msg(strstr(out, want) != NULL, "no '%s' in the output:\n%s", want, out);
    double acc = final_accuracy(out);
    /* chance is 10%; 2000 Fashion-MNIST images for 2 epochs give ~75% */
    ck_assert_msg(acc > 60.0, "accuracy %.2f%% is not far above chance", acc);
    ck_assert_ptr_nonnull(strstr(out, "confusion matrix"));

    rc = run("--eval-only --load w.safetensors --quiet --threads 1", out2, sizeof out2);
    ck_assert_msg(rc == 0, "evaluation failed:\n%s", out2);
    ck_assert_double_eq_tol(final_accuracy(out2), acc, 1e-9);
    /* the same predictions give the same confusion matrix, row for row */
    const char *m1 = strstr(out, "confusion matrix"), *m2 = strstr(out2, "confusion matrix");
    ck_assert_ptr_nonnull(m2);
    const char *e1 = strstr(m1, "log written"), *e2 = m2 + strlen(m2);
    ck_assert_ptr_nonnull(e1);
    while (e2 > m2 && e2[-1] == '\n')
        e2--;
    ck_assert_int_eq((int)(e1 - m1) - 1, (int)(e2 - m2));
    ck_assert(memcmp(m1, m2, (size_t)(e2 - m2)) == 0);
}
END_TEST

START_TEST(log_has_a_row_per_epoch)
{
    int rc = run("--train-limit 500 --epochs 3 --quiet --log l.csv --plot p.png", out, sizeof out);
    ck_assert_msg(rc == 0, "trainer failed:\n%s", out);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/l.csv", tmpdir);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[256];
    int rows = 0;
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    ck_assert_str_eq(line, "epoch,train_loss,train_acc,test_acc,seconds\n");
    while (fgets(line, sizeof line, f)) {
        rows++;
        ck_assert_int_eq(atoi(line), rows);
    }
    fclose(f);
    ck_assert_int_eq(rows, 3);
}
END_TEST

START_TEST(cnn_trains_on_a_slice)
{
    int rc = run("--model cnn --train-limit 1000 --epochs 1 --quiet", out, sizeof out);
    ck_assert_msg(rc == 0, "trainer failed:\n%s", out);
    ck_assert_msg(final_accuracy(out) > 40.0, "cnn did not learn:\n%s", out);
}
END_TEST

/* Shifted and mirrored images still teach the net, and they change what
 * it learns (the same seed without augmentation ends elsewhere). */
START_TEST(augmented_training_learns)
{
    const char *base = "--train-limit 2000 --epochs 2 --quiet --threads 1";
    char args[256];
    snprintf(args, sizeof args, "%s --augment --flip", base);
    int rc = run(args, out, sizeof out);
    ck_assert_msg(rc == 0, "trainer failed:\n%s", out);
    double aug = final_accuracy(out);
    ck_assert_msg(aug > 60.0, "augmented training: accuracy %.2f%%", aug);
    rc = run(base, out2, sizeof out2);
    ck_assert_msg(rc == 0, "trainer failed:\n%s", out2);
    ck_assert_msg(final_accuracy(out2) != aug, "--augment --flip changed nothing (%.2f%%)", aug);
}
END_TEST

START_TEST(bad_options_fail_with_a_message)
{
    static const struct { const char *args, *says; } cases[] = {
        {"--model resnet", "unknown model 'resnet'"},
        {"--epochs -3", "--epochs expects an integer"},
        {"--lr abc", "--lr expects a number"},
        {"--optim lbfgs", "unknown optimizer 'lbfgs'"},
        {"--schedule wavy", "unknown schedule 'wavy'"},
        {"--frobnicate", "unknown option '--frobnicate'"},
        {"--batch", "--batch needs a value"},
        {"--dataset /nonexistent/dir", "/nonexistent/dir"},
        {"--eval-only --load missing.safetensors", "missing.safetensors"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run(cases[i].args, out, sizeof out);
        ck_assert_msg(rc != 0, "'%s' exited 0", cases[i].args);
        ck_assert_msg(strstr(out, cases[i].says) != NULL, "'%s' did not say '%s':\n%s", cases[i].args,
                      cases[i].says, out);
    }
}
END_TEST

START_TEST(corrupt_weights_are_rejected)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/bad.safetensors", tmpdir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fputs("\x10\0\0\0\0\0\0\0{not json at all", f);
    fclose(f);
    int rc = run("--eval-only --load bad.safetensors", out, sizeof out);
    ck_assert_int_ne(rc, 0);
    ck_assert_msg(strstr(out, "bad.safetensors") != NULL, "message does not name the file:\n%s", out);
}
END_TEST

static Suite *train_suite(void)
{
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("main program");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, short_run_learns_and_save_load_is_exact);
    tcase_add_test(tc, log_has_a_row_per_epoch);
    tcase_add_test(tc, cnn_trains_on_a_slice);
    tcase_add_test(tc, augmented_training_learns);
    tcase_add_test(tc, bad_options_fail_with_a_message);
    tcase_add_test(tc, corrupt_weights_are_rejected);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(train_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
