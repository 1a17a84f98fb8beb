/*
 * train_trace.c — train --trace-html FILE: the graph of one training step of
 * the chosen model on a tiny batch, written as a page that steps through
 * backprop (sg_write_html). Large tensors (the weights, the images) show
 * their shape and statistics with a preview, as the writer does for any
 * tensor of more than 16 values. No update is made: the page shows the
 * forward and backward pass that the optimizer's step would use.
 */
#include "train_trace.h"

#include <stdio.h>

int train_trace_html(const char *path, sg_model *m, const sg_dataset *d, const sg_batch_opts *bo)
{
    int count = d->n < TRAIN_TRACE_BATCH ? d->n : TRAIN_TRACE_BATCH;
    int idx[TRAIN_TRACE_BATCH] = {0, 1}, labels[TRAIN_TRACE_BATCH];
    int n_params = 0;
    const sg_named_param *params = sg_model_params(m, &n_params);
    for (int i = 0; params && i < n_params; i++)
        sg_set_name(params[i].tensor, params[i].name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    sg_model_set_training(m, true);
    sg_scope_begin();
    sg_tensor *x = sg_set_name(sg_dataset_images(d, idx, count, bo), "images");
    sg_tensor *logits = sg_set_name(sg_model_forward(m, x), "logits");
    sg_tensor *loss = NULL;
    if (logits && sg_dataset_label_ints(d, idx, count, labels) == 0)
        loss = sg_set_name(sg_softmax_cross_entropy_labels(logits, labels, count), "loss");
    char title[96];
    snprintf(title, sizeof title, "one training step: batch of %d, loss = softmax cross-entropy", count);
    int rc = loss ? sg_write_html(f, loss, &(sg_html_opts){.title = title}) : -1;
    if (rc == 0)
        printf("graph of one training step (batch %d, loss %.4f) written to %s\n", count, (double)sg_item(loss),
               path);
    sg_scope_end();
    if (fclose(f) != 0 && rc == 0) {
        perror(path);
        return -1;
    }
    if (rc != 0)
        fprintf(stderr, "train: --trace-html %s: %s\n", path, sg_last_error());
    return rc;
}
