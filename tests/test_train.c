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
 *     at the old fixed name "<path>.tmp" is not followed, nothing is left;
 *   - checkpoints: k epochs, then --resume to n, give bit for bit the
 *     weights of n epochs in one run (Adam and Momentum, step and cosine
 *     schedules, dropout, batch norm, augmentation); a checkpoint of other
 *     settings, a plain weights file, a finished run are refused;
 *   - no surprises: --augment scales its shift to the image (refused on
 *     tiny images), the progress is a line per tenth of an epoch off a
 *     terminal and a bar with an ETA on one, the confusion matrix names
 *     every class in full; --predictions writes what the accuracy counts.
 * The binary is found next to this one: <build>/tests/../demos/train.
 */
#include "sg_autograd.h"
#include "sg_datasets.h"
#include "sg_nn.h"

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
    /* whole names, columns as wide as the longest ("Pullover", 8) */
    ck_assert_msg(strstr(out, "\n            T-shirt  Trouser Pullover    Dress     Coat   Sandal    Shirt  Sneaker"
                              "      Bag     Boot\n") != NULL,
                  "the column labels are not whole names:\n%s", strstr(out, "confusion matrix"));
    ck_assert_msg(strstr(out, "\n   Sneaker ") != NULL, "no row labelled Sneaker:\n%s", out);

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
        {"--eval-only --load w.safetensors --checkpoint c.st", "--checkpoint has nothing to save with --eval-only"},
        {"--checkpoint-every 0", "--checkpoint-every expects an integer in [1, 100000]"},
        {"--checkpoint no-such-dir/c.st", "--checkpoint no-such-dir/c.st: cannot write there"},
        {"--checkpoint-every 2 --checkpoint tiny", "--checkpoint tiny: cannot write there: it is a directory"},
        {"--predictions tiny", "--predictions tiny: cannot write there: it is a directory"},
        {"--resume tiny", "--resume tiny: cannot read it: it is a directory"},
        {"--resume a-file --eval-only", "--eval-only needs --load FILE"},
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

/* A set of side x side images in tmpdir/name: n_train and n_test images,
 * label i % 10, each a bright bar whose place depends on the label over a
 * faint gradient (a net learns it in a few epochs). */
static void make_images(const char *name, int side, int n_train, int n_test)
{
    char dir[PATH_MAX], img[PATH_MAX + 32], lab[PATH_MAX + 32];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, name);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    for (int set = 0; set < 2; set++) {
        int n = set ? n_test : n_train;
        sg_dataset *d = sg_dataset_new(n, side, side, 10);
        ck_assert_ptr_nonnull(d);
        for (int i = 0; i < n; i++) {
            int k = i % 10;
            d->labels[i] = (uint8_t)k;
            for (int r = 0; r < side; r++)
                for (int c = 0; c < side; c++)
                    d->images[(size_t)i * side * side + (size_t)r * side + c] =
                        (uint8_t)(r == k * side / 10 ? 255 : (r * 7 + c * 3 + i) % 40);
        }
        snprintf(img, sizeof img, "%s/%s-images-idx3-ubyte", dir, set ? "t10k" : "train");
        snprintf(lab, sizeof lab, "%s/%s-labels-idx1-ubyte", dir, set ? "t10k" : "train");
        ck_assert_msg(sg_idx_save(d, img, lab) == 0, "%s", sg_last_error());
        sg_dataset_free(d);
    }
}

/* Are the files a and b in tmpdir the same bytes? */
static bool same_file(const char *a, const char *b)
{
    char cmd[2 * PATH_MAX + 64];
    snprintf(cmd, sizeof cmd, "cmp -s %s/%s %s/%s", tmpdir, a, tmpdir, b);
    return system(cmd) == 0;
}

/* The value of key in the metadata of tmpdir/file ("" if absent). */
static const char *meta_of(const char *file, const char *key, char *buf, size_t cap)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tmpdir, file);
    int n = 0;
    sg_safetensors_meta *md = sg_safetensors_metadata(path, &n);
    ck_assert_msg(md != NULL, "%s", sg_last_error());
    const char *v = sg_safetensors_meta_get(md, n, key);
    snprintf(buf, cap, "%s", v ? v : "");
    free(md);
    return buf;
}

/* k epochs, then --resume to n epochs, give bit for bit the weights of n
 * epochs in one go: the optimizer's moments and update counts, the epoch
 * (the schedule's place), the generators (augmentation, flips, dropout)
 * and the order of the batches all carry over. Two runs: the MLP with Adam
 * and the step schedule (resumed from a checkpoint of a 2-epoch run, to 4
 * epochs, and from the epoch-2 checkpoint of the 4-epoch run), and
 * DeepConvNet with batch norm, dropout, Momentum, the cosine schedule,
 * shifts and flips. (Each fails if one of these is not restored: tried.) */
START_TEST(resume_is_bit_for_bit)
{
    make_images("img", 12, 60, 20);
    const char *mlp = "--dataset img --quiet --threads 1 --batch 8 --hidden 16 --schedule step --log l.csv "
                      "--plot p.png";
    char args[512], v[128];
    snprintf(args, sizeof args, "%s --epochs 7 --checkpoint 'ck{epoch}.st' --checkpoint-every 3 --save full.st",
             mlp);
    int rc = run(args, out, sizeof out);
    ck_assert_msg(rc == 0, "trainer failed:\n%s", out);
    ck_assert_msg(final_accuracy(out) > 40.0, "the MLP did not learn the set:\n%s", out);
    ck_assert_str_eq(meta_of("ck3.st", "format", v, sizeof v), "scratchgrad-checkpoint");
    ck_assert_str_eq(meta_of("ck3.st", "epoch", v, sizeof v), "3");
    ck_assert_str_eq(meta_of("ck6.st", "epoch", v, sizeof v), "6");
    ck_assert_str_eq(meta_of("ck7.st", "epoch", v, sizeof v), "7"); /* the last epoch too */
    ck_assert_str_eq(meta_of("ck3.st", "step", v, sizeof v), "24"); /* 3 epochs of 8 batches */
    ck_assert_str_eq(meta_of("ck3.st", "optim.step.fc1.W", v, sizeof v), "24");
    ck_assert_str_eq(meta_of("ck3.st", "optim.kind", v, sizeof v), "adam");
    ck_assert_str_eq(meta_of("ck3.st", "--epochs", v, sizeof v), "7");

    snprintf(args, sizeof args, "%s --resume ck3.st --save resumed.st --checkpoint rck.st", mlp);
    rc = run(args, out, sizeof out);
    ck_assert_msg(rc == 0, "resume failed:\n%s", out);
    ck_assert_msg(strstr(out, "resuming from ck3.st after epoch 3 of 7") != NULL, "%s", out);
    ck_assert_msg(strstr(out, "epoch  3 ") == NULL && strstr(out, "epoch  4 ") != NULL, "%s", out);
    ck_assert_msg(same_file("full.st", "resumed.st"), "3 + 4 epochs differ from 7:\n%s", out);
    /* and the whole state at the end: weights, moments, counts, generators */
    ck_assert_str_eq(meta_of("rck.st", "step", v, sizeof v), "56");
    ck_assert_msg(same_file("ck7.st", "rck.st"), "the checkpoints after epoch 7 differ");

    snprintf(args, sizeof args, "%s --epochs 3 --checkpoint short.st", mlp); /* a run that stopped at 3 */
    rc = run(args, out, sizeof out);
    ck_assert_msg(rc == 0, "trainer failed:\n%s", out);
    ck_assert_msg(same_file("ck3.st", "short.st") == false, "the checkpoints should differ in --epochs");
    snprintf(args, sizeof args, "%s --resume short.st --epochs 7 --save extended.st", mlp);
    rc = run(args, out, sizeof out);
    ck_assert_msg(rc == 0, "resume failed:\n%s", out);
    ck_assert_msg(same_file("full.st", "extended.st"), "a 3-epoch run extended to 7 differs:\n%s", out);

    const char *deep = "--dataset img --quiet --threads 1 --batch 10 --model deep --bn --optim momentum "
                       "--schedule cosine --augment --flip --log l.csv --plot p.png";
    snprintf(args, sizeof args, "%s --epochs 4 --checkpoint 'd{epoch}.st' --checkpoint-every 2 --save dfull.st",
             deep);
    rc = run(args, out, sizeof out);
    ck_assert_msg(rc == 0, "trainer failed:\n%s", out);
    ck_assert_msg(strstr(meta_of("d2.st", "rng.drop1", v, sizeof v), ":") != NULL, "no dropout generator");
    snprintf(args, sizeof args, "%s --resume d2.st --save dresumed.st", deep);
    rc = run(args, out, sizeof out);
    ck_assert_msg(rc == 0, "resume failed:\n%s", out);
    ck_assert_msg(same_file("dfull.st", "dresumed.st"), "deep: 2 + 2 epochs differ from 4:\n%s", out);
}
END_TEST

/* A checkpoint goes on only as it was trained: an option that contradicts
 * it, a file that is not a checkpoint, a finished run, --load or
 * --eval-only with it are refused in one line (exit 2), naming both
 * values; the files are left as they were. */
START_TEST(resume_refuses_another_run)
{
    make_images("img", 12, 30, 10);
    const char *base = "--dataset img --quiet --threads 1 --batch 10 --hidden 8 --log l.csv --plot p.png";
    char args[512];
    snprintf(args, sizeof args, "%s --epochs 2 --checkpoint ck.st --save w.st", base);
    int rc = run(args, out, sizeof out);
    ck_assert_msg(rc == 0, "trainer failed:\n%s", out);
    static const struct { const char *args, *says; } cases[] = {
        {"--resume ck.st --epochs 3 --optim sgd", "trained with --optim adam; it cannot go on with --optim sgd"},
        {"--resume ck.st --epochs 3 --model cnn", "trained with --model mlp; it cannot go on with --model cnn"},
        {"--resume ck.st --epochs 3 --hidden 9", "trained with --hidden 8; it cannot go on with --hidden 9"},
        {"--resume ck.st --epochs 3 --bn", "trained with --bn off; it cannot go on with --bn on"},
        {"--resume ck.st --epochs 3 --lr 0.01", "trained with --lr 0.00100000005"},
        {"--resume ck.st --epochs 3 --train-limit 20", "trained with --train-limit 0"},
        {"--resume ck.st", "the checkpoint has done all 2 epochs of its run; give --epochs (the total, more than 2)"},
        {"--resume ck.st --epochs 2", "the checkpoint has done 2 epochs; --epochs 2 leaves none to train"},
        {"--resume w.st --epochs 3", "not a training checkpoint"},
        {"--resume ck.st --load w.st", "--resume continues training; it cannot go with --load"},
        {"--resume no-such.st", "--resume no-such.st: cannot read it"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(args, sizeof args, "%s %s", base, cases[i].args);
        rc = run(args, out, sizeof out);
        ck_assert_msg(rc == 2, "'%s' exited %d, not 2:\n%s", cases[i].args, rc, out);
        ck_assert_msg(strstr(out, cases[i].says) != NULL, "'%s' did not say '%s':\n%s", cases[i].args,
                      cases[i].says, out);
        ck_assert_msg(count_lines(out) == 1, "'%s' did not say it in one line:\n%s", cases[i].args, out);
    }
    /* cosine anneals over the run's epochs: another total would bend it */
    snprintf(args, sizeof args, "%s --epochs 2 --schedule cosine --checkpoint cos.st", base);
    rc = run(args, out, sizeof out);
    ck_assert_msg(rc == 0, "trainer failed:\n%s", out);
    snprintf(args, sizeof args, "%s --resume cos.st --epochs 4", base);
    rc = run(args, out, sizeof out);
    ck_assert_msg(rc == 2 && strstr(out, "anneals over 2 epochs; --epochs 4 would change it"), "%s", out);
    /* settings taken from the checkpoint: no option needs repeating */
    snprintf(args, sizeof args, "--dataset img --quiet --threads 1 --log l.csv --plot p.png --resume ck.st --epochs 3");
    rc = run(args, out, sizeof out);
    ck_assert_msg(rc == 0 && strstr(out, "batch 10, adam lr 0.001"), "%s", out);
}
END_TEST

/* --augment shifts by up to round(side / 14) pixels: 2 on 28x28 (as
 * before), 1 on 8x8 (2 would move a quarter of the image), and refuses
 * images under 7 pixels, where even one pixel is a sixth of them. */
START_TEST(augment_scales_to_the_image)
{
    make_images("eight", 8, 40, 10);
    make_set("four", 40, 10, 20, 10);
    int rc = run("--dataset eight --augment --epochs 1 --quiet --threads 1 --log l.csv --plot p.png", out,
                 sizeof out);
    ck_assert_msg(rc == 0, "trainer failed:\n%s", out);
    ck_assert_msg(strstr(out, "augment: random shifts of up to 1 pixels (8x8 images)") != NULL, "%s", out);
    rc = run("--augment --epochs 1 --train-limit 100 --quiet --threads 1 --log l.csv --plot p.png", out, sizeof out);
    ck_assert_msg(rc == 0, "trainer failed:\n%s", out);
    ck_assert_msg(strstr(out, "augment: random shifts of up to 2 pixels (28x28 images)") != NULL, "%s", out);
    rc = run("--dataset four --augment --epochs 1 --quiet --log l.csv", out, sizeof out);
    ck_assert_msg(rc == 2, "exit status %d:\n%s", rc, out);
    ck_assert_msg(strstr(out, "train: --augment: the images are 4x4; a shift of one pixel") != NULL &&
                      count_lines(out) == 1,
                  "%s", out);
}
END_TEST

/* Off a terminal (a pipe here, like a CI log) the progress is one line per
 * tenth of each epoch, with an ETA; on a terminal (made by script(1)) a bar
 * redrawn in place with an ETA. */
START_TEST(progress_without_and_with_a_terminal)
{
    make_images("img", 8, 200, 20);
    int rc = run("--dataset img --epochs 2 --batch 10 --threads 1 --log l.csv --plot p.png", out, sizeof out);
    ck_assert_msg(rc == 0, "trainer failed:\n%s", out);
    for (int e = 1; e <= 2; e++) {
        for (int pct = 10; pct <= 100; pct += 10) {
            char want[64];
            snprintf(want, sizeof want, "epoch %d/2 %3d%%  loss ", e, pct);
            const char *at = strstr(out, want);
            ck_assert_msg(at != NULL && (at == out || at[-1] == '\n'), "no line '%s':\n%s", want, out);
            char line[256];
            const char *end = strchr(at + 1, '\n');
            ck_assert_ptr_nonnull(end);
            snprintf(line, sizeof line, "%.*s", (int)(end - at), at);
            ck_assert_msg(strstr(line, "img/s  ETA ") != NULL, "no ETA: %s", line);
        }
    }
    ck_assert_msg(strchr(out, '\r') == NULL, "a bar was drawn into a pipe:\n%s", out);

    if (system("command -v script >/dev/null 2>&1") != 0)
        return; /* bsdutils (essential in Debian) has it */
    char args[PATH_MAX + 256];
    snprintf(args, sizeof args, "cd %s && script -qec '%s --dataset img --epochs 1 --batch 10 --threads 1 "
                                "--log l.csv --plot p.png' /dev/null",
             tmpdir, train_bin);
    FILE *p = popen(args, "r");
    ck_assert_ptr_nonnull(p);
    size_t len = fread(out, 1, sizeof out - 1, p);
    out[len] = '\0';
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_msg(strstr(out, "\repoch 1/1 [") != NULL && strstr(out, "ETA ") != NULL,
                  "no bar with an ETA on a terminal:\n%s", out);
    ck_assert_msg(strstr(out, "\nepoch 1/1  10%") == NULL, "lines instead of the bar on a terminal:\n%s", out);
}
END_TEST

/* --predictions: a row per test image, its logits, the first largest as
 * the class; the accuracy they give is the one printed. */
START_TEST(predictions_give_the_accuracy)
{
    make_images("img", 8, 40, 20);
    int rc = run("--dataset img --epochs 1 --quiet --threads 1 --log l.csv --plot p.png --predictions p.csv", out,
                 sizeof out);
    ck_assert_msg(rc == 0, "trainer failed:\n%s", out);
    static char text[1 << 14];
    read_file("p.csv", text, sizeof text);
    const char *line = text;
    ck_assert_msg(!strncmp(line, "index,label,predicted,logit_0,logit_1,", 38) && strstr(line, ",logit_9\n"),
                  "header: %s", text);
    int right = 0, rows = 0;
    for (line = strchr(line, '\n') + 1; *line; line = strchr(line, '\n') + 1, rows++) {
        char *end;
        ck_assert_int_eq((int)strtol(line, &end, 10), rows);
        int label = (int)strtol(end + 1, &end, 10), pred = (int)strtol(end + 1, &end, 10), best = 0;
        double logit[10];
        for (int j = 0; j < 10; j++) {
            logit[j] = strtod(end + 1, &end);
            best = logit[j] > logit[best] ? j : best;
        }
        ck_assert_int_eq(*end, '\n');
        ck_assert_int_eq(label, rows % 10);
        ck_assert_int_eq(pred, best);
        right += pred == label;
    }
    ck_assert_int_eq(rows, 20);
    ck_assert_double_eq_tol(final_accuracy(out), 100.0 * right / rows, 0.006);
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

    TCase *resume = tcase_create("checkpoints and progress");
    tcase_add_checked_fixture(resume, setup, teardown);
    tcase_set_timeout(resume, 120);
    tcase_add_test(resume, resume_is_bit_for_bit);
    tcase_add_test(resume, resume_refuses_another_run);
    tcase_add_test(resume, augment_scales_to_the_image);
    tcase_add_test(resume, progress_without_and_with_a_terminal);
    tcase_add_test(resume, predictions_give_the_accuracy);
    suite_add_tcase(s, resume);
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
