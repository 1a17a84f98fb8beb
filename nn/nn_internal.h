/*
 * nn_internal.h — helpers shared by nn/'s files (private; not installed).
 * Only the engine's public header is used: nn/ never sees the tensor's
 * fields, so it cannot reach a gradient buffer even by accident.
 */
#ifndef SG_NN_INTERNAL_H
#define SG_NN_INTERNAL_H

#include "sg_nn.h"

/* A NULL input: record "<op>: NULL input" unless an earlier message
 * explains it, and return NULL. */
static inline sg_tensor *sg_nn_null(const char *op)
{
    if (!sg_has_error())
        sg_set_error("%s: NULL input", op);
    return NULL;
}

/* "(2,3)" of a tensor into a caller's buffer (96 bytes is always enough). */
#define SG_NN_SHAPE(t, buf) sg_shape_str((t), (buf), sizeof(buf))

/* True if s is valid UTF-8 of len bytes (no overlong forms, no surrogates). */
bool sg_nn_utf8_ok(const unsigned char *s, size_t len);

/* Check a tensor name (non-empty, < SG_NN_NAME_MAX bytes, no control
 * character, valid UTF-8, not "__metadata__"); false with a message naming
 * op otherwise. */
bool sg_nn_name_ok(const char *op, const char *name);

#endif /* SG_NN_INTERNAL_H */
