/*
 * optable.c — the single list of primitives: name, arity, local derivative.
 * Adding a primitive = an enum value, a row here, a forward function, a
 * backward function, and a gradient-check test (tests/test_gradcheck.c walks
 * this table).
 */
#include "sg_internal.h"

const sg_op_info sg_op_table[SG_OP_COUNT] = {
    [SG_OP_LEAF] = {"leaf", 0, NULL},
    [SG_OP_ADD] = {"add", 2, sg_bw_add},
    [SG_OP_SUB] = {"sub", 2, sg_bw_sub},
    [SG_OP_MUL] = {"mul", 2, sg_bw_mul},
    [SG_OP_DIV] = {"div", 2, sg_bw_div},
    [SG_OP_NEG] = {"neg", 1, sg_bw_neg},
    [SG_OP_POW] = {"pow", 1, sg_bw_pow},
    [SG_OP_ADD_SCALAR] = {"add_scalar", 1, sg_bw_add_scalar},
    [SG_OP_MUL_SCALAR] = {"mul_scalar", 1, sg_bw_mul_scalar},
    [SG_OP_EXP] = {"exp", 1, sg_bw_exp},
    [SG_OP_LOG] = {"log", 1, sg_bw_log},
    [SG_OP_RELU] = {"relu", 1, sg_bw_relu},
    [SG_OP_SUM] = {"sum", 1, sg_bw_sum},
    [SG_OP_MAX] = {"max", 1, sg_bw_max},
    [SG_OP_RESHAPE] = {"reshape", 1, sg_bw_reshape},
    [SG_OP_PERMUTE] = {"permute", 1, sg_bw_permute},
    [SG_OP_BROADCAST_TO] = {"broadcast_to", 1, sg_bw_broadcast_to},
    [SG_OP_SUM_TO] = {"sum_to", 1, sg_bw_sum_to},
    [SG_OP_SLICE] = {"slice", 1, sg_bw_slice},
    [SG_OP_CONCAT] = {"concat", -1, sg_bw_concat},
    [SG_OP_MATMUL] = {"matmul", 2, sg_bw_matmul},
    [SG_OP_ADDMM] = {"addmm", 3, sg_bw_addmm},
    [SG_OP_UNFOLD] = {"unfold", 1, sg_bw_unfold},
    [SG_OP_FOLD] = {"fold", 1, sg_bw_fold},
};

/* Every enum value has a row: a missing one would leave a NULL name. */
_Static_assert(sizeof sg_op_table / sizeof sg_op_table[0] == SG_OP_COUNT,
               "op table and enum sg_op disagree");

int sg_op_count(void) { return SG_OP_COUNT; }

const char *sg_op_name(int op)
{
    return op >= 0 && op < SG_OP_COUNT && sg_op_table[op].name ? sg_op_table[op].name : "?";
}
