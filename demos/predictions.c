/*
 * predictions.c — the trainer's --predictions FILE (see predictions.h):
 * the test set in batches of 500 through the model in evaluation mode,
 * each row's logits and their argmax (the first largest, as the accuracy
 * counts it) written as CSV.
 */
#include "predictions.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int write_predictions(sg_model *m, const sg_dataset *d, int k, const sg_batch_opts *bo, const char *path)
{
    enum { BATCH = 500 };
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "train: --predictions %s: %s\n", path, strerror(errno));
        return -1;
    }
    bool was_training = sg_model_is_training(m), grad = sg_set_grad_enabled(false);
    sg_model_set_training(m, false);
    int idx[BATCH], labels[BATCH], rc = 0;
    fprintf(f, "index,label,predicted");
    for (int j = 0; j < k; j++)
        fprintf(f, ",logit_%d", j);
    fputc('\n', f);
    for (int start = 0; start < d->n && rc == 0; start += BATCH) {
        int count = d->n - start < BATCH ? d->n - start : BATCH;
        for (int i = 0; i < count; i++)
            idx[i] = start + i;
        sg_scope_begin();
        sg_tensor *y = sg_model_forward(m, sg_dataset_images(d, idx, count, bo));
        if (!y || sg_dataset_label_ints(d, idx, count, labels) < 0) {
            fprintf(stderr, "train: --predictions %s: %s\n", path, sg_last_error());
            rc = -1;
        }
        for (int i = 0; rc == 0 && i < count; i++) {
            const float *row = sg_data(y) + (size_t)i * k;
            int best = 0;
            for (int j = 1; j < k; j++)
                best = row[j] > row[best] ? j : best;
            fprintf(f, "%d,%d,%d", start + i, labels[i], best);
            for (int j = 0; j < k; j++)
                fprintf(f, ",%.9g", (double)row[j]);
            fputc('\n', f);
        }
        sg_scope_end();
    }
    sg_set_grad_enabled(grad);
    sg_model_set_training(m, was_training);
    if (fclose(f) != 0 && rc == 0) {
        fprintf(stderr, "train: --predictions %s: %s\n", path, strerror(errno));
        rc = -1;
    }
    return rc;
}
