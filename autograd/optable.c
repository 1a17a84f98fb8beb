/*
 * optable.c — the op table: for each value of enum sg_op its printed name,
 * its arity and its local derivative, looked up by backward.c (the walk),
 * trace.c and the error messages.
 *
 * Key idea: the rows are not written here. They come from the list in
 * ops.def (an X-macro), which also generates enum sg_op and the sg_bw_*
 * prototypes in sg_internal.h, so the enum, the names and the table cannot
 * disagree. Only the leaf, which is not a primitive, is written by hand.
 *
 * Invariants (checked at compile time below)
 *   - every enum value is a row of ops.def or SG_OP_LEAF: an enum value
 *     written by hand anywhere else would make the row count differ from
 *     SG_OP_COUNT;
 *   - every row refers to its backward function, so a row whose sg_bw_* is
 *     not defined fails to link (tried: "undefined reference to
 *     `sg_bw_square'" when linking libscratchgrad.so).
 */
#include "sg_internal.h"

const sg_op_info sg_op_table[SG_OP_COUNT] = {
    [SG_OP_LEAF] = {"leaf", 0, NULL},
#define SG_OP(op, name, arity, backward) [op] = {name, arity, backward},
#include "ops.def"
};

/* The rows of ops.def, counted: 1 (the leaf) + 1 per row. */
enum {
    SG_OP_ROWS = 1
#define SG_OP(op, name, arity, backward) +1
#include "ops.def"
};
_Static_assert((int)SG_OP_ROWS == (int)SG_OP_COUNT,
               "enum sg_op has a value that is not a row of ops.def (add the op to ops.def, not to the enum)");

int sg_op_count(void) { return SG_OP_COUNT; }

const char *sg_op_name(int op)
{
    return op >= 0 && op < SG_OP_COUNT && sg_op_table[op].name ? sg_op_table[op].name : "?";
}
