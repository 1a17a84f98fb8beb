/*
 * common.c — flags, gnuplot pictures, a clock, Fashion-MNIST slices, networks
 * and a training step for the demos (see common.h).
 */
#include "common.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

demo_opts demo_args(int argc, char **argv, const char *about)
{
    demo_opts o = {.full = false, .plot = true, .out = "."};
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--full") == 0) {
            o.full = true;
        } else if (strcmp(argv[i], "--no-plot") == 0) {
            o.plot = false;
        } else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            o.out = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            char kernels[320];
            printf("%s\n\nusage: %s [--full] [--no-plot] [--out DIR]\n"
                   "  --full     the longer run\n"
                   "  --no-plot  draw no picture\n"
                   "  --out DIR  write pictures into DIR (default .)\n"
                   DEMO_ENV_HELP
                   "%s\n",
                   about, argv[0], sg_kernels_describe(kernels, sizeof kernels));
            exit(0);
        } else {
            fprintf(stderr, "%s: unknown flag '%s' (try --help)\n", argv[0], argv[i]);
            exit(2);
        }
    }
    return o;
}

double demo_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

FILE *plot_begin(const demo_opts *o, const char *name)
{
    return plot_begin_size(o, name, 900, 600);
}

FILE *plot_begin_size(const demo_opts *o, const char *name, int width, int height)
{
    if (!o->plot)
        return NULL;
    if (system("command -v gnuplot >/dev/null 2>&1") != 0) {
        printf("gnuplot is not installed: no picture (%s.png); apt-get install gnuplot-nox\n", name);
        return NULL;
    }
    fflush(stdout);
    FILE *gp = popen("gnuplot", "w");
    if (!gp) {
        printf("cannot start gnuplot: no picture (%s.png)\n", name);
        return NULL;
    }
    fprintf(gp,
            "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
            "  set terminal pngcairo size %d,%d noenhanced font 'sans,10'\n"
            "} else {\n"
            "  set terminal png size %d,%d noenhanced\n"
            "}\n",
            width, height, width, height);
    fprintf(gp, "set output '%s/%s.png'\n", o->out, name);
    return gp;
}

void plot_end(FILE *gp, const demo_opts *o, const char *name)
{
    if (!gp)
        return;
    fprintf(gp, "unset output\n");
    if (pclose(gp) == 0)
        printf("picture written to %s/%s.png\n", o->out, name);
    else
        printf("gnuplot failed: no picture (%s/%s.png)\n", o->out, name);
}

void plot_data_begin(FILE *gp, const char *name)
{
    fprintf(gp, "$%s << EOD\n", name);
}

void plot_data_end(FILE *gp)
{
    fprintf(gp, "EOD\n");
}

const char *const fashion_class[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                       "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

sg_dataset *demo_fashion(bool train, int count)
{
    sg_dataset *all = sg_mnist_load(SG_FASHION_MNIST_DIR, train);
    if (!all) {
        fprintf(stderr, "%s\nFashion-MNIST is missing: apt-get install dataset-fashion-mnist\n",
                sg_last_error());
        return NULL;
    }
    sg_dataset *part = sg_dataset_subset(all, 0, count < all->n ? count : all->n);
    sg_dataset_free(all);
    if (!part)
        fprintf(stderr, "%s\n", sg_last_error());
    return part;
}

double demo_accuracy(sg_tensor *y, const sg_dataset *d, const int *idx)
{
    int n = sg_dim(y, 0), c = sg_dim(y, 1);
    const float *p = sg_data(y);
    int right = 0;
    for (int i = 0; i < n; i++) {
        int best = 0;
        for (int j = 1; j < c; j++)
            if (p[i * c + j] > p[i * c + best])
                best = j;
        right += best == d->labels[idx ? idx[i] : i];
    }
    return n > 0 ? (double)right / n : 0.0;
}

sg_model *demo_mlp(int in, const int *hidden, int n_hidden, int out, const demo_mlp_opts *o)
{
    sg_rng rng;
    sg_rng_seed(&rng, o->seed);
    const char *act = o->activation ? o->activation : "relu";
    sg_model *m = sg_model_new();
    char name[32];
    int prev = in;
    for (int i = 0; i < n_hidden; i++) {
        snprintf(name, sizeof name, "fc%d", i + 1);
        sg_model_add(m, sg_linear_new(m, name, prev, hidden[i], o->init, &rng));
        if (o->batchnorm) {
            snprintf(name, sizeof name, "bn%d", i + 1);
            sg_model_add(m, sg_batchnorm_new_ex(m, name, hidden[i], 0.1f, o->bn_eps > 0 ? o->bn_eps : 1e-5f));
        }
        snprintf(name, sizeof name, "act%d", i + 1);
        if (strcmp(act, "sigmoid") == 0)
            sg_model_add(m, sg_sigmoid_new(m, name));
        else if (strcmp(act, "tanh") == 0)
            sg_model_add(m, sg_tanh_new(m, name));
        else
            sg_model_add(m, sg_relu_new(m, name));
        if (o->dropout > 0) {
            snprintf(name, sizeof name, "drop%d", i + 1);
            sg_model_add(m, sg_dropout_new(m, name, o->dropout, &rng));
        }
        prev = hidden[i];
    }
    snprintf(name, sizeof name, "fc%d", n_hidden + 1);
    sg_model_add(m, sg_linear_new(m, name, prev, out, o->init, &rng));
    return demo_model_built(m, "demo_mlp");
}

sg_model *demo_model_built(sg_model *m, const char *who)
{
    if (m && !sg_has_error())
        return m;
    fprintf(stderr, "%s: %s\n", who, sg_last_error());
    sg_model_free(m);
    return NULL;
}

int demo_next_batch(sg_loader *it, const int **idx)
{
    int b = sg_loader_next(it, idx);
    return b == 0 ? sg_loader_next(it, idx) : b; /* 0 ends an epoch; the next call starts one */
}

void demo_random_choice(sg_rng *rng, int n, int count, int *idx)
{
    for (int j = 0; j < count; j++)
        idx[j] = (int)sg_rng_below(rng, (uint32_t)n);
}

int demo_train_step(sg_model *net, sg_optim *opt, const sg_dataset *d, const int *idx, int count, bool images,
                    float weight_decay, float *loss)
{
    sg_tensor *params[DEMO_MAX_PARAMS];
    int labels[DEMO_MAX_BATCH];
    int np = sg_model_trainable(net, params, DEMO_MAX_PARAMS);
    if (np > DEMO_MAX_PARAMS || count > DEMO_MAX_BATCH) {
        fprintf(stderr, "demo_train_step: %d trainable tensors and a batch of %d (at most %d and %d)\n", np, count,
                DEMO_MAX_PARAMS, DEMO_MAX_BATCH);
        return -1;
    }
    if (sg_dataset_label_ints(d, idx, count, labels) != 0) {
        fprintf(stderr, "demo_train_step: %s\n", sg_last_error());
        return -1;
    }
    sg_scope_begin();
    sg_optim_zero_grad(params, np);
    sg_tensor *x = sg_dataset_images(d, idx, count, &(sg_batch_opts){.normalize = true, .flatten = !images});
    sg_tensor *l = sg_softmax_cross_entropy_labels(sg_model_forward(net, x), labels, count);
    if (weight_decay > 0) /* + 0.5 lambda sum(W^2), weights only */
        l = sg_add(l, sg_mul_scalar(demo_weight_square_sum(net), 0.5f * weight_decay));
    int rc = 0;
    if (!l || sg_backward(l, NULL) != 0 || sg_optim_step(opt, params, np) != 0) {
        fprintf(stderr, "demo_train_step: %s\n", sg_last_error());
        rc = -1;
    } else if (loss) {
        *loss = sg_item(l);
    }
    sg_scope_end();
    return rc;
}

double demo_evaluate(sg_model *m, const sg_dataset *d, bool images)
{
    bool was_training = sg_model_is_training(m);
    bool was_recording = sg_set_grad_enabled(false);
    sg_model_set_training(m, false);
    int right = 0;
    for (int start = 0; start < d->n; start += 1000) {
        int count = d->n - start < 1000 ? d->n - start : 1000;
        int idx[1000];
        for (int i = 0; i < count; i++)
            idx[i] = start + i;
        sg_scope_begin();
        sg_batch_opts bo = {.normalize = true, .flatten = !images};
        sg_tensor *y = sg_model_forward(m, sg_dataset_images(d, idx, count, &bo));
        if (y)
            right += (int)(demo_accuracy(y, d, idx) * count + 0.5);
        sg_scope_end();
    }
    sg_model_set_training(m, was_training);
    sg_set_grad_enabled(was_recording);
    return d->n > 0 ? (double)right / d->n : 0.0;
}

sg_tensor *demo_weight_square_sum(sg_model *m)
{
    int n;
    const sg_named_param *p = sg_model_params(m, &n);
    sg_tensor *sum = sg_scalar(0.f);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(p[i].name);
        bool weight = len > 2 && strcmp(p[i].name + len - 2, ".W") == 0;
        if (p[i].trainable && weight)
            sum = sg_add(sum, sg_sum_all(sg_square(p[i].tensor)));
    }
    return sum;
}
