/*
 * predictions.h — the trainer's --predictions FILE: the model's output for
 * every test image as CSV, for comparing with another framework (the
 * PyTorch interop test, tools/sg2torch.py) or for error analysis.
 */
#ifndef DEMO_PREDICTIONS_H
#define DEMO_PREDICTIONS_H

#include "sg_datasets.h"
#include "sg_nn.h"

/** Write "index,label,predicted,logit_0,...,logit_<k-1>" and one row per
 *  image of d (m in evaluation mode, no graph; logits with 9 significant
 *  digits, which round-trip a float32) to path. 0, or -1 after one line
 *  "train: --predictions PATH: ..." on stderr. */
int write_predictions(sg_model *m, const sg_dataset *d, int k, const sg_batch_opts *bo, const char *path);

#endif /* DEMO_PREDICTIONS_H */
