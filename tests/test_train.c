/*
 * test_train.c — the main program (demos/train) end to end, on small slices
 * of Fashion-MNIST so the suite stays fast:
 *   - a short run lifts test accuracy far above chance (10%);
 *   - save -> load gives identical predictions (same accuracy and confusion
 *     matrix in --eval-only);
 *   - the CSV log has one row per epoch;
 *   - bad options, missing data and unreadable weight files exit non-zero
 *     with a message that says what is wrong; a bad option (an unknown
 *     name, a conflict, an output path that cannot be written) says so in
 *     one line and exits 2 before any data is loaded or any file written;
 *   - one class count (the training set's) for the model, the training
 *     loop and the evaluation, checked against the labels of both sets;
 *   - --save replaces the file through a fresh mkstemp file: a planted link
 *     at the old fixed name "<path>.tmp" is not followed, nothing is left.
 * The binary is found next to this one: <build>/tests/../demos/train.
 */
#include "sg_autograd.h"
#include "sg_datasets.h"

#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
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


/* The four MNIST IDX files of a tiny set in tmpdir/name: n_train and n_test
 * 4x4 images, label i % n_labels (training: train_labels, test:
 * test_labels), each image a pattern of its label. */
static void make_set(const char *name, int n_train, int train_labels, int n_test, int test_labels)
{
    char dir[PATH_MAX], img[PATH_MAX + 32], lab[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    for (int set = 0; set < 2; set++) {
        int n = set ? n_test : n_train, k = set ? test_labels : train_labels;
        sg_dataset *d = sg_dataset_new(n, 4, 4, k > 10 ? k : 10);
        ck_assert_ptr_nonnull(d);
        for (int i = 0; i < n; i++) {
            d->labels[i] = (uint8_t)(i % k);
            for (int p = 0; p < 16; p++)
                d->images[i * 16 + p] = (uint8_t)(p == d->labels[i] ? 255 : 16 * (p % 4));
        }
        snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte", dir, set ? "t10k" : "train");
        snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte", dir, set ? "t10k" : "train");
        ck_assert_msg(sg_idx_save(d, img, lab) == 0, "%s", sg_last_error());
        sg_dataset_free(d);
    }
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Names in tmpdir (not . and ..), sorted, joined by spaces. */
static void list_dir(char *buf, size_t cap)
{
    struct dirent **names;
    int n = scandir(tmpdir, &names, NULL, alphasort);
    ck_assert_int_ge(n, 0);
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
            strncat(buf, names[i]->d_name, cap - strlen(buf) - 2);
            strcat(buf, " ");
        }
        free(names[i]);
    }
    free(names);
}

static void write_file(const char *name, const char *text)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

static void read_file(const char *name, char *buf, size_t cap)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot read %s", path);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

/* Test labels up to 15, training labels up to 9: the model has the training
 * set's 10 classes, and a test label it cannot predict is an error naming
 * the set, the file and the label (the old trainer built a 16-class model
 * from the test set, scored training batches with 10-wide rows, and exited
 * 0 with a wrong training accuracy). The other way round is fine: 16
 * classes, of which the test set uses 10. */
START_TEST(one_class_count_checked_against_both_sets)
{
    make_set("wide-test", 64, 10, 32, 16);
    int rc = run("--dataset wide-test --epochs 1 --quiet --threads 1", out, sizeof out);
    ck_assert_msg(rc == 1, "exit status %d, not 1:\n%s", rc, out);
    ck_assert_msg(strstr(out, "test image 15 has label 15") != NULL, "the label is not named:\n%s", out);
    ck_assert_msg(strstr(out, "wide-test/t10k-labels-idx1-ubyte") != NULL, "the file is not named:\n%s", out);
    ck_assert_msg(strstr(out, "10 classes") != NULL, "the class count is not named:\n%s", out);
    ck_assert_msg(strstr(out, "train acc") == NULL, "it trained anyway:\n%s", out);

    make_set("wide-train", 64, 16, 32, 10);
    rc = run("--dataset wide-train --epochs 1 --quiet --threads 1", out, sizeof out);
    ck_assert_msg(rc == 0, "exit status %d:\n%s", rc, out);
    const char *m = strstr(out, "confusion matrix");
    ck_assert_ptr_nonnull(m);
    ck_assert_msg(strstr(m, "\n        15 ") != NULL, "no row for class 15:\n%s", m);
}
END_TEST

/* Every bad option: exactly one line, status 2, nothing trained or written
 * (the old trainer printed an extra empty "cannot build the model: " for an
 * unknown optimizer, and found unwritable --plot/--save paths only after
 * training). */
START_TEST(bad_options_say_one_line_and_exit_2)
{
    make_set("tiny", 40, 10, 20, 10);
    write_file("a-file", "x");
    static const struct { const char *args, *says; } cases[] = {
        {"--optim bogus", "unknown optimizer 'bogus'"},
        {"--model resnet", "unknown model 'resnet'"},
        {"--schedule wavy", "unknown schedule 'wavy'"},
        {"--epochs -3", "--epochs expects an integer"},
        {"--lr nan", "--lr expects a number"},
        {"--frobnicate", "unknown option '--frobnicate'"},
        {"--batch", "--batch needs a value"},
        {"--model cnn --bn", "--bn works with --model mlp and deep"},
        {"--eval-only --load w.safetensors --save w2.safetensors", "--save has nothing to save"},
        {"--plot no-such-dir/p.png", "--plot no-such-dir/p.png: cannot write there: No such file"},
        {"--save no-such-dir/w.safetensors", "--save no-such-dir/w.safetensors: cannot write there"},
        {"--save a-file/w.safetensors", "Not a directory"},
        {"--save tiny", "--save tiny: cannot write there: it is a directory"},
        {"--log tiny", "--log tiny: cannot write there: it is a directory"},
        {"--plot \"it's.png\"", "quotes and line breaks are not allowed"},
        {"--load tiny", "--load tiny: cannot read it: it is a directory"},
        {"--load /dev/zero", "--load /dev/zero: cannot read it: it is not a regular file"},
        {"--load \"\"", "cannot read it: the path is empty"},
        {"--load no-such.safetensors", "--load no-such.safetensors: cannot read it: No such file"},
        {"--eval-only", "--eval-only needs --load FILE"},
    };
    char args[512];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, "--dataset tiny --epochs 1 --quiet --log l.csv %s", cases[i].args);
        int rc = run(args, out, sizeof out);
        ck_assert_msg(rc == 2, "'%s' exited %d, not 2:\n%s", cases[i].args, rc, out);
        ck_assert_msg(strstr(out, cases[i].says) != NULL, "'%s' did not say '%s':\n%s", cases[i].args,
                      cases[i].says, out);
        ck_assert_msg(count_lines(out) == 1 && strncmp(out, "train: ", 7) == 0,
                      "'%s' did not say it in one line:\n%s", cases[i].args, out);
    }
    char names[1024];
    list_dir(names, sizeof names);
    ck_assert_str_eq(names, "a-file tiny "); /* no log, no probe file left */
}
END_TEST

/* The output check opens an existing file without truncating it and leaves
 * no probe file: a run stopped by a bad --save keeps the old log intact. */
START_TEST(output_check_changes_no_file)
{
    make_set("tiny", 40, 10, 20, 10);
    write_file("l.csv", "the old log\n");
    int rc = run("--dataset tiny --epochs 1 --quiet --log l.csv --plot p.png --save nowhere/w.safetensors",
                 out, sizeof out);
    ck_assert_msg(rc == 2, "exit status %d:\n%s", rc, out);
    char text[64], names[1024];
    read_file("l.csv", text, sizeof text);
    ck_assert_str_eq(text, "the old log\n");
    list_dir(names, sizeof names);
    ck_assert_str_eq(names, "l.csv tiny ");
}
END_TEST

/* --save writes a fresh mkstemp file beside the target and renames it: a
 * link planted at the old fixed name "w.safetensors.tmp" is not followed
 * (the old trainer wrote the weights into the link's target), a file there
 * is not touched, no temporary file is left, the mode is a plain file's
 * (0666 less the umask), and the weights load back. */
START_TEST(save_uses_a_fresh_file_and_rename)
{
    make_set("tiny", 40, 10, 20, 10);
    write_file("victim", "not weights\n");
    char link[PATH_MAX];
    snprintf(link, sizeof link, "%s/w.safetensors.tmp", tmpdir);
    ck_assert_int_eq(symlink("victim", link), 0);
    write_file("v.safetensors.tmp", "another writer's file\n");
    int rc = run("--dataset tiny --epochs 1 --quiet --log l.csv --plot p.png --save w.safetensors", out,
                 sizeof out);
    ck_assert_msg(rc == 0, "exit status %d:\n%s", rc, out);
    rc = run("--dataset tiny --epochs 1 --quiet --log l.csv --plot p.png --save v.safetensors", out,
             sizeof out);
    ck_assert_msg(rc == 0, "exit status %d:\n%s", rc, out);
    char text[64];
    read_file("victim", text, sizeof text);
    ck_assert_str_eq(text, "not weights\n");
    read_file("v.safetensors.tmp", text, sizeof text);
    ck_assert_str_eq(text, "another writer's file\n");
    char path[PATH_MAX], names[1024];
    snprintf(path, sizeof path, "%s/w.safetensors", tmpdir);
    struct stat st;
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    mode_t mask = umask(022);
    umask(mask);
    ck_assert_int_eq(st.st_mode & 0777, 0666 & ~mask);
    list_dir(names, sizeof names);
    ck_assert_msg(strstr(names, "w.safetensors ") && strstr(names, "v.safetensors "), "%s", names);
    ck_assert_msg(names[0] != '.' && !strstr(names, " ."), "a temporary file is left: %s", names);
    rc = run("--dataset tiny --eval-only --load w.safetensors --quiet", out, sizeof out);
    ck_assert_msg(rc == 0, "the saved weights do not load:\n%s", out);
}
END_TEST


/* --epochs 0 evaluates the untrained model: the accuracy printed is the
 * confusion matrix's diagonal over its total (the old trainer printed
 * 0.00% and no matrix, having evaluated nothing). */
START_TEST(zero_epochs_evaluate_the_model)
{
    make_set("tiny", 40, 10, 20, 10);
    int rc = run("--dataset tiny --epochs 0 --quiet --log l.csv", out, sizeof out);
    ck_assert_msg(rc == 0, "exit status %d:\n%s", rc, out);
    const char *m = strstr(out, "confusion matrix");
    ck_assert_msg(m != NULL, "no confusion matrix:\n%s", out);
    m = strchr(m, '\n') + 1; /* the title */
    m = strchr(m, '\n') + 1; /* the column labels */
    int total = 0, right = 0;
    for (int i = 0; i < 10; i++) {
        char *end;
        ck_assert_int_eq((int)strtol(m, &end, 10), i);
        for (int j = 0; j < 10; j++) {
            int v = (int)strtol(end, &end, 10);
            total += v;
            right += i == j ? v : 0;
        }
        m = end + 1;
    }
    ck_assert_int_eq(total, 20);
    ck_assert_double_eq_tol(final_accuracy(out), 100.0 * right / total, 0.006);
}
END_TEST

/* The whole contents of tmpdir/name (malloc'd, *len bytes). */
static char *slurp(const char *name, size_t *len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "no %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ck_assert_int_gt(n, 0);
    rewind(f);
    char *buf = malloc((size_t)n);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

/* Training does not depend on the thread count (docs/design.md,
 * "Determinism"): 1 and 2 threads save the same bytes and score the same
 * accuracy. (Before, the MLP's weights differed from the first step: its
 * forward product was cut along K into one partial sum per thread.) */
START_TEST(threads_give_the_same_weights)
{
    const char *base = "--train-limit 2000 --epochs 1 --quiet";
    char args[256];
    snprintf(args, sizeof args, "%s --threads 1 --save w1.safetensors", base);
    int rc = run(args, out, sizeof out);
    ck_assert_msg(rc == 0, "trainer failed:\n%s", out);
    snprintf(args, sizeof args, "%s --threads 2 --save w2.safetensors", base);
    rc = run(args, out2, sizeof out2);
    ck_assert_msg(rc == 0, "trainer failed:\n%s", out2);
    ck_assert_double_eq(final_accuracy(out2), final_accuracy(out));
    size_t n1, n2;
    char *w1 = slurp("w1.safetensors", &n1), *w2 = slurp("w2.safetensors", &n2);
    ck_assert_uint_eq(n1, n2);
    size_t i = 0;
    while (i < n1 && w1[i] == w2[i])
        i++;
    ck_assert_msg(i == n1, "the weights saved after 1 and 2 threads differ at byte %zu of %zu", i, n1);
    free(w1);
    free(w2);
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
    tcase_add_test(tc, threads_give_the_same_weights);
    suite_add_tcase(s, tc);

    TCase *opts = tcase_create("options and outputs");
    tcase_add_checked_fixture(opts, setup, teardown);
    tcase_set_timeout(opts, 120);
    tcase_add_test(opts, bad_options_say_one_line_and_exit_2);
    tcase_add_test(opts, output_check_changes_no_file);
    tcase_add_test(opts, save_uses_a_fresh_file_and_rename);
    suite_add_tcase(s, opts);

    TCase *classes = tcase_create("class count");
    tcase_add_checked_fixture(classes, setup, teardown);
    tcase_set_timeout(classes, 120);
    tcase_add_test(classes, one_class_count_checked_against_both_sets);
    tcase_add_test(classes, zero_epochs_evaluate_the_model);
    suite_add_tcase(s, classes);
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
