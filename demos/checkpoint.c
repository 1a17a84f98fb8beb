/*
 * checkpoint.c — the trainer's resumable checkpoints; the format is
 * described in checkpoint.h.
 *
 * Key idea: everything a training run carries from one epoch to the next
 * is either a tensor (weights, buffers, optimizer moments: safetensors
 * entries) or a few numbers (epoch, update counts, generator states,
 * settings: "__metadata__" strings), so one standard file holds a whole
 * run, and tools that read safetensors (Python's safetensors, PyTorch via
 * tools/sg2torch.py) read its weights.
 *
 * Exactness: floats are written as "%.9g" (enough digits to round-trip a
 * float32), integers in decimal, generator states in hex; tensors as their
 * bits. So a restored run continues with the very same numbers.
 */
#include "checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CKPT_FORMAT "scratchgrad-checkpoint"
#define CKPT_VERSION "1"

/* ---- metadata being written: a growing list of owned strings ---- */

typedef struct meta_list {
    sg_safetensors_meta *e;
    int n, cap;
    bool oom;
} meta_list;

static void meta_add(meta_list *l, const char *key, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void meta_add(meta_list *l, const char *key, const char *fmt, ...)
{
    if (l->oom)
        return;
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        sg_safetensors_meta *e = realloc(l->e, (size_t)cap * sizeof *e);
        if (!e) {
            l->oom = true;
            return;
        }
        l->e = e;
        l->cap = cap;
    }
    char value[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        l->oom = true;
        return;
    }
    l->e[l->n++] = (sg_safetensors_meta){k, v};
}

static void meta_free(meta_list *l)
{
    for (int i = 0; i < l->n; i++) {
        free((char *)l->e[i].key);
        free((char *)l->e[i].value);
    }
    free(l->e);
}

/* ---- values <-> strings ---- */

static void setting_str(const ckpt_setting *s, char *buf, size_t cap)
{
    switch (s->type) {
    case CKPT_STR:
        snprintf(buf, cap, "%s", *(const char **)s->value ? *(const char **)s->value : "");
        break;
    case CKPT_INT:
        snprintf(buf, cap, "%d", *(int *)s->value);
        break;
    case CKPT_FLOAT:
        snprintf(buf, cap, "%.9g", (double)*(float *)s->value);
        break;
    case CKPT_BOOL:
        snprintf(buf, cap, "%d", *(bool *)s->value ? 1 : 0);
        break;
    case CKPT_ULONG:
        snprintf(buf, cap, "%lu", *(unsigned long *)s->value);
        break;
    }
}

static void rng_str(const sg_rng *r, char *buf, size_t cap)
{
    snprintf(buf, cap, "%016" PRIx64 ":%016" PRIx64, r->state, r->inc);
}

static bool rng_parse(const char *s, sg_rng *r)
{
    char *end;
    errno = 0;
    uint64_t state = strtoull(s, &end, 16);
    if (errno || end == s || *end != ':')
        return false;
    const char *t = end + 1;
    uint64_t inc = strtoull(t, &end, 16);
    if (errno || end == t || *end)
        return false;
    r->state = state;
    r->inc = inc;
    return true;
}

static bool long_parse(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* The optimizer's hyperparameters as metadata (all fields of
 * sg_optim_opts but lr, which a schedule changes). */
static void optim_meta(meta_list *l, const sg_optim_opts *o)
{
    meta_add(l, "optim.kind", "%s", sg_optim_kind_name(o->kind));
    meta_add(l, "optim.momentum", "%.9g", (double)o->momentum);
    meta_add(l, "optim.dampening", "%.9g", (double)o->dampening);
    meta_add(l, "optim.alpha", "%.9g", (double)o->alpha);
    meta_add(l, "optim.beta1", "%.9g", (double)o->beta1);
    meta_add(l, "optim.beta2", "%.9g", (double)o->beta2);
    meta_add(l, "optim.eps", "%.9g", (double)o->eps);
    meta_add(l, "optim.lr_decay", "%.9g", (double)o->lr_decay);
    meta_add(l, "optim.initial_accumulator", "%.9g", (double)o->initial_accumulator);
    meta_add(l, "optim.weight_decay", "%.9g", (double)o->weight_decay);
    meta_add(l, "optim.decoupled_weight_decay", "%d", o->decoupled_weight_decay ? 1 : 0);
}

/* ---- the tensors of a checkpoint ---- */

/* The model's named tensors, then one "optim.<buffer>.<param>" per state
 * buffer of each trainable tensor for which has_state() holds: a fresh
 * persistent tensor of the parameter's shape, to be filled or read, whose
 * parameter and buffer number are kept in owner[] and buffer[]. */
typedef struct tensor_list {
    sg_named_param *e; /* n entries */
    int n, n_model;    /* the first n_model are the model's own */
    sg_tensor **owner; /* e[i]'s parameter (i >= n_model) */
    int *buffer;       /* e[i]'s buffer number (i >= n_model) */
    char **names;      /* e[i].name when owned (i >= n_model) */
} tensor_list;

static void list_free(tensor_list *l)
{
    for (int i = l->n_model; i < l->n; i++) {
        sg_tensor_free(l->e[i].tensor);
        free(l->names[i]);
    }
    free(l->e);
    free(l->owner);
    free(l->buffer);
    free(l->names);
    *l = (tensor_list){0};
}

/* 0, or -1 on out of memory (l freed). */
static int list_make(tensor_list *l, sg_model *m, sg_optim *opt, bool (*has_state)(sg_optim *, sg_tensor *, void *),
                     void *ctx)
{
    int np = 0;
    const sg_named_param *p = sg_model_params(m, &np);
    int nb = sg_optim_num_buffers(opt);
    size_t cap = (size_t)np * (size_t)(1 + (nb > 0 ? nb : 0)) + 1;
    *l = (tensor_list){.e = calloc(cap, sizeof *l->e), .owner = calloc(cap, sizeof *l->owner),
                       .buffer = calloc(cap, sizeof *l->buffer), .names = calloc(cap, sizeof *l->names)};
    if (!l->e || !l->owner || !l->buffer || !l->names) {
        list_free(l);
        return -1;
    }
    for (int i = 0; i < np; i++)
        l->e[l->n++] = p[i];
    l->n_model = np;
    for (int i = 0; i < np; i++) {
        if (!p[i].trainable || !has_state(opt, p[i].tensor, ctx))
            continue;
        for (int b = 0; b < nb; b++) {
            const char *bn = sg_optim_state_name(opt, b);
            size_t len = strlen(bn) + strlen(p[i].name) + 8;
            char *name = malloc(len);
            sg_tensor *t = sg_zeros_like(p[i].tensor);
            if (!name || !t) {
                free(name);
                sg_tensor_free(t);
                list_free(l);
                return -1;
            }
            snprintf(name, len, "optim.%s.%s", bn, p[i].name);
            l->names[l->n] = name;
            l->owner[l->n] = p[i].tensor;
            l->buffer[l->n] = b;
            l->e[l->n++] = (sg_named_param){name, t, false};
        }
    }
    return 0;
}

static bool state_now(sg_optim *opt, sg_tensor *p, void *ctx)
{
    (void)ctx;
    return sg_optim_param_steps(opt, p) > 0;
}

/* ---- save ---- */

/* Optimizer steps taken before this run (the resumed checkpoint's "step"):
 * the optimizer counts only its own. */
static long steps_before;

int ckpt_save(const char *pattern, sg_model *m, sg_optim *opt, const ckpt_setting *s, int n, int epoch, int n_train,
              const sg_rng *rng)
{
    char path[4096], buf[128];
    ckpt_path(pattern, epoch, path, sizeof path);
    meta_list md = {0};
    meta_add(&md, "format", CKPT_FORMAT);
    meta_add(&md, "format_version", CKPT_VERSION);
    meta_add(&md, "epoch", "%d", epoch);
    meta_add(&md, "step", "%ld", steps_before + sg_optim_steps(opt));
    meta_add(&md, "train_images", "%d", n_train);
    rng_str(rng, buf, sizeof buf);
    meta_add(&md, "rng", "%s", buf);
    for (int i = 0; i < n; i++) {
        setting_str(&s[i], buf, sizeof buf);
        meta_add(&md, s[i].option, "%s", buf);
    }
    optim_meta(&md, sg_optim_options(opt));
    meta_add(&md, "optim.lr", "%.9g", (double)sg_optim_lr(opt));
    int nl = sg_model_layers(m, NULL, 0);
    sg_layer **layers = malloc((size_t)(nl > 0 ? nl : 1) * sizeof *layers);
    if (!layers)
        md.oom = true;
    else
        sg_model_layers(m, layers, nl);
    for (int i = 0; layers && i < nl; i++) {
        sg_rng *r = sg_layer_rng(layers[i]);
        if (!r)
            continue;
        char key[SG_NN_NAME_MAX + 8];
        snprintf(key, sizeof key, "rng.%s", sg_layer_name(layers[i]));
        rng_str(r, buf, sizeof buf);
        meta_add(&md, key, "%s", buf);
    }
    free(layers);
    int np = 0;
    const sg_named_param *p = sg_model_params(m, &np);
    for (int i = 0; i < np; i++) {
        long t = p[i].trainable ? sg_optim_param_steps(opt, p[i].tensor) : 0;
        if (t > 0) {
            char key[SG_NN_NAME_MAX + 16];
            snprintf(key, sizeof key, "optim.step.%s", p[i].name);
            meta_add(&md, key, "%ld", t);
        }
    }
    int rc = -1;
    tensor_list list = {0};
    if (md.oom || list_make(&list, m, opt, state_now, NULL) < 0) {
        fprintf(stderr, "train: --checkpoint %s: out of memory\n", path);
        goto done;
    }
    for (int i = list.n_model; i < list.n; i++) /* the state, into the fresh tensors */
        memcpy(sg_data(list.e[i].tensor), sg_optim_state(opt, list.owner[i], list.buffer[i]),
               sg_size(list.e[i].tensor) * sizeof(float));
    if (sg_safetensors_save_meta(path, list.e, list.n, md.e, md.n) != 0) {
        fprintf(stderr, "train: --checkpoint: %s\n", sg_last_error());
        sg_clear_error();
        goto done;
    }
    rc = 0;
done:
    list_free(&list);
    meta_free(&md);
    return rc;
}

/* ---- resume: settings ---- */

static bool given(int argc, char **argv, const char *option)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], option) == 0)
            return true;
    return false;
}

/* Set s's value from text (the checkpoint's); false if it does not parse. */
static bool setting_set(const ckpt_setting *s, const char *text)
{
    char *end;
    errno = 0;
    switch (s->type) {
    case CKPT_STR:
        *(const char **)s->value = text; /* kept: the metadata block lives to the end of main */
        return true;
    case CKPT_INT: {
        long v = strtol(text, &end, 10);
        if (errno || end == text || *end || v < -2147483647L || v > 2147483647L)
            return false;
        *(int *)s->value = (int)v;
        return true;
    }
    case CKPT_FLOAT: {
        double v = strtod(text, &end);
        if (errno || end == text || *end)
            return false;
        *(float *)s->value = (float)v;
        return true;
    }
    case CKPT_BOOL:
        if (strcmp(text, "0") && strcmp(text, "1"))
            return false;
        *(bool *)s->value = text[0] == '1';
        return true;
    case CKPT_ULONG: {
        unsigned long v = strtoul(text, &end, 10);
        if (errno || end == text || *end)
            return false;
        *(unsigned long *)s->value = v;
        return true;
    }
    }
    return false;
}

/* The metadata of the last checkpoint read: settings of type CKPT_STR point
 * into it, so it lives until the program ends. */
static sg_safetensors_meta *kept_meta;

static void free_kept(void)
{
    free(kept_meta);
}

/* The checkpoint's metadata, or NULL after saying why (one line). */
static sg_safetensors_meta *resume_meta(const char *path, int *nm)
{
    sg_safetensors_meta *md = sg_safetensors_metadata(path, nm);
    if (!md) {
        fprintf(stderr, "train: --resume: %s\n", sg_last_error());
        sg_clear_error();
    }
    return md;
}

int ckpt_apply_settings(const char *path, const ckpt_setting *s, int n, int argc, char **argv, int *done)
{
    int nm = 0;
    sg_safetensors_meta *md = resume_meta(path, &nm);
    if (!md)
        return -1;
    if (!kept_meta)
        atexit(free_kept);
    free(kept_meta);
    kept_meta = md;
    const char *format = sg_safetensors_meta_get(md, nm, "format");
    const char *version = sg_safetensors_meta_get(md, nm, "format_version");
    if (!format || strcmp(format, CKPT_FORMAT) != 0) {
        fprintf(stderr,
                "train: --resume %s: not a training checkpoint (no \"format\": \"" CKPT_FORMAT "\" in its "
                "metadata); to start from its weights use --load\n",
                path);
        return -1;
    }
    if (!version || strcmp(version, CKPT_VERSION) != 0) {
        fprintf(stderr, "train: --resume %s: checkpoint format version %s; this trainer reads version " CKPT_VERSION
                        "\n",
                path, version ? version : "(none)");
        return -1;
    }
    long epoch;
    if (!long_parse(sg_safetensors_meta_get(md, nm, "epoch"), 0, 100000, &epoch)) {
        fprintf(stderr, "train: --resume %s: the checkpoint has no valid \"epoch\"\n", path);
        return -1;
    }
    const char *schedule = NULL, *old_epochs = NULL;
    int *epochs = NULL;
    for (int i = 0; i < n; i++) {
        const char *text = sg_safetensors_meta_get(md, nm, s[i].option);
        if (!text) {
            fprintf(stderr, "train: --resume %s: the checkpoint does not record %s\n", path, s[i].option);
            return -1;
        }
        if (!strcmp(s[i].option, "--epochs")) {
            epochs = s[i].value;
            old_epochs = text;
        }
        if (!given(argc, argv, s[i].option)) {
            if (!setting_set(&s[i], text)) {
                fprintf(stderr, "train: --resume %s: the checkpoint's %s \"%s\" is not valid\n", path, s[i].option,
                        text);
                return -1;
            }
        } else if (!s[i].may_change) {
            char now[128];
            setting_str(&s[i], now, sizeof now);
            if (strcmp(now, text) != 0) {
                fprintf(stderr,
                        "train: --resume %s: the checkpoint was trained with %s %s; it cannot go on with %s %s "
                        "(leave the option out to keep the checkpoint's)\n",
                        path, s[i].option, s[i].type == CKPT_BOOL ? (text[0] == '1' ? "on" : "off") : text,
                        s[i].option, s[i].type == CKPT_BOOL ? (now[0] == '1' ? "on" : "off") : now);
                return -1;
            }
        }
        if (!strcmp(s[i].option, "--schedule"))
            schedule = *(const char **)s[i].value;
    }
    if (epochs && schedule && !strcmp(schedule, "cosine") && old_epochs && atoi(old_epochs) != *epochs) {
        fprintf(stderr,
                "train: --resume %s: the cosine schedule of the checkpoint anneals over %s epochs; --epochs %d "
                "would change it midway (leave --epochs out, or give --epochs %s)\n",
                path, old_epochs, *epochs, old_epochs);
        return -1;
    }
    bool cli_epochs = given(argc, argv, "--epochs");
    if (epochs && *epochs <= epoch && !cli_epochs) {
        fprintf(stderr,
                "train: --resume %s: the checkpoint has done all %ld epochs of its run; give --epochs "
                "(the total, more than %ld) to train on\n",
                path, epoch, epoch);
        return -1;
    }
    if (epochs && *epochs <= epoch) {
        fprintf(stderr,
                "train: --resume %s: the checkpoint has done %ld epochs; --epochs %d leaves none to train "
                "(--epochs is the total, give more than %ld)\n",
                path, epoch, *epochs, epoch);
        return -1;
    }
    *done = (int)epoch;
    return 0;
}

/* ---- resume: tensors and state ---- */

typedef struct state_ctx {
    const sg_model *m;
    const sg_safetensors_meta *md;
    int nm;
} state_ctx;

/* Has the checkpoint state for p (an "optim.step.<name>" entry)? */
static bool state_in_file(sg_optim *opt, sg_tensor *p, void *vctx)
{
    (void)opt;
    const state_ctx *c = vctx;
    int np = 0;
    const sg_named_param *params = sg_model_params(c->m, &np);
    for (int i = 0; i < np; i++) {
        if (params[i].tensor != p)
            continue;
        char key[SG_NN_NAME_MAX + 16];
        snprintf(key, sizeof key, "optim.step.%s", params[i].name);
        return sg_safetensors_meta_get(c->md, c->nm, key) != NULL;
    }
    return false;
}

/* The value of "rng.<layer>" for a layer with a generator, or NULL. */
static const char *layer_rng_text(const sg_safetensors_meta *md, int nm, sg_layer *l)
{
    char key[SG_NN_NAME_MAX + 8];
    snprintf(key, sizeof key, "rng.%s", sg_layer_name(l));
    return sg_safetensors_meta_get(md, nm, key);
}

int ckpt_restore(const char *path, sg_model *m, sg_optim *opt, int n_train, sg_rng *rng, int *epoch_out)
{
    int nm = 0;
    sg_safetensors_meta *md = resume_meta(path, &nm);
    if (!md)
        return -1;
    int rc = -1, np = 0, nl = sg_model_layers(m, NULL, 0);
    const sg_named_param *params = sg_model_params(m, &np);
    tensor_list list = {0};
    sg_layer **layers = malloc((size_t)(nl > 0 ? nl : 1) * sizeof *layers);
    long *steps = calloc((size_t)(np > 0 ? np : 1), sizeof *steps);
    meta_list want = {0};
    long epoch, images, step;
    const char *g = sg_safetensors_meta_get(md, nm, "rng");
    if (!layers || !steps) {
        fprintf(stderr, "train: --resume %s: out of memory\n", path);
        goto done;
    }
    sg_model_layers(m, layers, nl);
    /* Everything is checked before anything changes. */
    if (!long_parse(sg_safetensors_meta_get(md, nm, "epoch"), 0, 100000, &epoch) ||
        !long_parse(sg_safetensors_meta_get(md, nm, "train_images"), 1, 2147483647L, &images) ||
        !long_parse(sg_safetensors_meta_get(md, nm, "step"), 0, LONG_MAX, &step) || !g || !rng_parse(g, &(sg_rng){0})) {
        fprintf(stderr,
                "train: --resume %s: the checkpoint has no valid \"epoch\", \"step\", \"train_images\" or \"rng\"\n",
                path);
        goto done;
    }
    if (images != n_train) {
        fprintf(stderr,
                "train: --resume %s: the checkpoint was trained on %ld images, this run has %d (the same "
                "--dataset and --train-limit are needed to replay the order of the batches)\n",
                path, images, n_train);
        goto done;
    }
    optim_meta(&want, sg_optim_options(opt)); /* the same kind and hyperparameters */
    for (int i = 0; i < want.n; i++) {
        const char *have = sg_safetensors_meta_get(md, nm, want.e[i].key);
        if (!have || strcmp(have, want.e[i].value) != 0) {
            fprintf(stderr, "train: --resume %s: the checkpoint's optimizer has %s = %s, this run's %s\n", path,
                    want.e[i].key, have ? have : "(none)", want.e[i].value);
            goto done;
        }
    }
    for (int i = 0; i < nl; i++) {
        const char *v = layer_rng_text(md, nm, layers[i]);
        if (sg_layer_rng(layers[i]) && (!v || !rng_parse(v, &(sg_rng){0}))) {
            fprintf(stderr, "train: --resume %s: the checkpoint has no valid \"rng.%s\" (the generator of layer %s)\n",
                    path, sg_layer_name(layers[i]), sg_layer_name(layers[i]));
            goto done;
        }
    }
    for (int i = 0; i < np; i++) {
        char key[SG_NN_NAME_MAX + 16];
        snprintf(key, sizeof key, "optim.step.%s", params[i].name);
        const char *v = sg_safetensors_meta_get(md, nm, key);
        if (v && (!params[i].trainable || !long_parse(v, 1, 2147483647L, &steps[i]))) {
            fprintf(stderr, "train: --resume %s: \"%s\" is \"%s\", not an update count of a parameter\n", path, key,
                    v);
            goto done;
        }
    }
    /* the tensors, the model's and the optimizer's: all or nothing */
    state_ctx ctx = {m, md, nm};
    if (list_make(&list, m, opt, state_in_file, &ctx) < 0) {
        fprintf(stderr, "train: --resume %s: out of memory\n", path);
        goto done;
    }
    if (sg_safetensors_load(path, list.e, list.n) != 0) {
        fprintf(stderr, "train: --resume: %s\n", sg_last_error());
        sg_clear_error();
        goto done;
    }
    /* checked above: nothing below fails but out of memory for state */
    for (int i = 0; i < np; i++) {
        if (!steps[i])
            continue;
        const float *bufs[2] = {NULL, NULL};
        for (int k = list.n_model; k < list.n; k++)
            if (list.owner[k] == params[i].tensor && list.buffer[k] < 2)
                bufs[list.buffer[k]] = sg_data(list.e[k].tensor);
        if (sg_optim_set_state(opt, params[i].tensor, steps[i], bufs) != 0) {
            fprintf(stderr, "train: --resume %s: %s\n", path, sg_last_error());
            sg_clear_error();
            goto done;
        }
    }
    for (int i = 0; i < nl; i++)
        if (sg_layer_rng(layers[i]))
            rng_parse(layer_rng_text(md, nm, layers[i]), sg_layer_rng(layers[i]));
    rng_parse(g, rng);
    steps_before = step;
    *epoch_out = (int)epoch;
    rc = 0;
done:
    meta_free(&want);
    list_free(&list);
    free(steps);
    free(layers);
    free(md);
    return rc;
}

void ckpt_skip_epochs(sg_loader *loader, int epochs)
{
    const int *idx;
    while (sg_loader_epoch(loader) < epochs)
        if (sg_loader_next(loader, &idx) < 0)
            return;
}

const char *ckpt_path(const char *path, int epoch, char *buf, size_t cap)
{
    const char *at = strstr(path, "{epoch}");
    if (!at)
        snprintf(buf, cap, "%s", path);
    else
        snprintf(buf, cap, "%.*s%d%s", (int)(at - path), path, epoch, at + strlen("{epoch}"));
    return buf;
}
