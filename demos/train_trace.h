/*
 * train_trace.h — train's --trace-html FILE: one training step's graph as a
 * page that steps through backprop (train_trace.c).
 */
#ifndef TRAIN_TRACE_H
#define TRAIN_TRACE_H

#include "sg_datasets.h"
#include "sg_nn.h"

/* The batch size of the traced step. */
enum { TRAIN_TRACE_BATCH = 2 };

/* Write to path the graph of one training step of m (training mode: forward
 * of the first TRAIN_TRACE_BATCH images of d, softmax cross-entropy, the
 * backward pass) with sg_write_html; parameters are named as the model
 * names them. Prints one line; 0, or -1 after a message on stderr. */
int train_trace_html(const char *path, sg_model *m, const sg_dataset *d, const sg_batch_opts *bo);

#endif
