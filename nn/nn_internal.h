/*
 * nn_internal.h — helpers shared by nn/'s files (private; not installed).
 * Only the engine's public header is used: nn/ never sees the tensor's
 * fields, so it cannot reach a gradient buffer even by accident.
 */
#ifndef SG_NN_INTERNAL_H
#define SG_NN_INTERNAL_H

#include "sg_nn.h"

#include <stdio.h>

/* "(2,3)" of a tensor into a caller's buffer (96 bytes is always enough). */
#define SG_NN_SHAPE(t, buf) sg_shape_str((t), (buf), sizeof(buf))

/* True if s is valid UTF-8 of len bytes (no overlong forms, no surrogates). */
bool sg_nn_utf8_ok(const unsigned char *s, size_t len);

/* Check a tensor name (non-empty, < SG_NN_NAME_MAX bytes, no control
 * character, valid UTF-8, not "__metadata__"); false with a message naming
 * op otherwise. */
bool sg_nn_name_ok(const char *op, const char *name);

/* Check an initialiser before it is used: a known kind; CONSTANT's value
 * finite; NORMAL's std and UNIFORM's bound finite and >= 0. False with a
 * message naming op and the value ("linear_new: constant init value nan is
 * not finite") otherwise. */
bool sg_nn_init_ok(const char *op, sg_init init);

/* Replace the file at path atomically. sg_nn_atomic_open() makes a new,
 * unique file "<dir>/.<name>.XXXXXX" beside path with mkstemp (created
 * exclusively: it never follows a planted link, and two writers never share
 * it), with the mode a plain fopen would give (or that of the file it
 * replaces), and returns it open for writing; *tmp receives its name. NULL
 * with a message on failure.
 * sg_nn_atomic_commit() finishes: if ok (every write succeeded) it flushes,
 * fsyncs, closes and renames the file over path, then fsyncs the directory;
 * otherwise, or on any failure, it removes the file and leaves path as it
 * was. It frees tmp. Returns 0, or -1 with a message (an earlier message is
 * kept when !ok).
 * Messages read "<op>: <shown>: ...": shown is path as the caller prints
 * it (escaped; NULL = path itself); the temporary name is never printed. */
FILE *sg_nn_atomic_open(const char *op, const char *path, const char *shown, char **tmp);
int sg_nn_atomic_commit(const char *op, const char *path, const char *shown, FILE *f, char *tmp, bool ok);

#endif /* SG_NN_INTERNAL_H */
