/*
 * checkpoint.h — the trainer's resumable checkpoints (demos/train.c's
 * --checkpoint, --checkpoint-every and --resume).
 *
 * A checkpoint is one safetensors file (nn/safetensors.c) holding
 *   - every named tensor of the model, under its own name ("fc1.W",
 *     "bn1.running_mean"): the file loads with sg_model_load()'s names;
 *   - the optimizer's state buffers, "optim.<buffer>.<parameter>" with
 *     PyTorch's buffer names (sg_optim_state_name: "optim.exp_avg.fc1.W");
 * and, in "__metadata__" (strings), the bookkeeping:
 *   format "scratchgrad-checkpoint", format_version "1";
 *   epoch (epochs completed), step (optimizer steps taken), train_images;
 *   rng (the trainer's generator: augmentation, flips) and rng.<layer>
 *   (each dropout layer's own generator), as "<state>:<inc>" in hex;
 *   optim.step.<parameter> (each parameter's update count t);
 *   optim.kind, optim.lr (the rate of the last epoch) and every
 *   hyperparameter of sg_optim_opts (optim.beta1, ...);
 *   the trainer's settings under their option names ("--model" "mlp",
 *   "--optim" "adam", "--lr" "0.00100000005", "--bn" "1", ...).
 * The learning-rate schedule is a pure function of the epoch
 * (sg_lr_cosine, sg_lr_step_decay), so its position is the epoch. The
 * loader's order is replayed from the seed (ckpt_skip_epochs), so it needs
 * no state of its own. With all of that restored, training on from epoch
 * k of a checkpoint gives bit for bit the weights of an uninterrupted run
 * (tests/test_train.c, resume_is_bit_for_bit).
 *
 * Errors: every function prints one line "train: --resume FILE: ..." (or
 * --checkpoint) to stderr and returns -1.
 */
#ifndef DEMO_CHECKPOINT_H
#define DEMO_CHECKPOINT_H

#include "sg_autograd.h"
#include "sg_datasets.h"
#include "sg_nn.h"
#include "sg_optim.h"

#include <stdbool.h>

/** How a setting's value is held. */
typedef enum ckpt_type { CKPT_STR, CKPT_INT, CKPT_FLOAT, CKPT_BOOL, CKPT_ULONG } ckpt_type;

/** One trainer setting a checkpoint records: its option ("--model"), the
 *  type and address of its value (const char **, int *, float *, bool *,
 *  unsigned long *). may_change: a resumed run may give another value
 *  (--epochs: train on to a new total). */
typedef struct ckpt_setting {
    const char *option;
    ckpt_type type;
    void *value;
    bool may_change;
} ckpt_setting;

/** Before anything is built: read the checkpoint's metadata, check it is a
 *  trainer checkpoint, and for each setting take the checkpoint's value
 *  unless argv gives the option; an option given with another value is
 *  refused ("the checkpoint was trained with --optim adam, not sgd"), as
 *  is a cosine schedule whose length --epochs would change, or an --epochs
 *  the checkpoint has already reached. *done receives the epochs the
 *  checkpoint has completed. 0, or -1 after one line on stderr. */
int ckpt_apply_settings(const char *path, const ckpt_setting *s, int n, int argc, char **argv, int *done);

/** Write a checkpoint of m, opt (the state of m's trainable tensors), the
 *  settings, epoch (completed), n_train (training images) and rng to path
 *  ("{epoch}" in path is replaced by the epoch number), atomically (a new
 *  file renamed over path). 0, or -1 after one line on stderr. */
int ckpt_save(const char *path, sg_model *m, sg_optim *opt, const ckpt_setting *s, int n, int epoch, int n_train,
              const sg_rng *rng);

/** Load the checkpoint's tensors into m and opt's state (all or nothing:
 *  the tensors are checked by name and shape first), its generators into
 *  rng and the dropout layers; opt's hyperparameters must equal the
 *  checkpoint's, and n_train its training set's size. *epoch receives the
 *  epochs completed. 0, or -1 after one line on stderr. */
int ckpt_restore(const char *path, sg_model *m, sg_optim *opt, int n_train, sg_rng *rng, int *epoch);

/** Advance a fresh loader (made with the run's seed) past `epochs` epochs,
 *  so that its next batch is the one the interrupted run would have
 *  drawn. */
void ckpt_skip_epochs(sg_loader *loader, int epochs);

/** path with "{epoch}" replaced by epoch, into buf (cap bytes). */
const char *ckpt_path(const char *path, int epoch, char *buf, size_t cap);

#endif /* DEMO_CHECKPOINT_H */
