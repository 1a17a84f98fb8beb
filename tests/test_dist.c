/*
 * test_dist.c — dist/ as one process (not started by mpirun, or a build
 * without MPI): rank 0 of 1, every collective returns its input, and the
 * argument checks and messages of the API. Runs everywhere, valgrind and
 * ASan included, so dist.c's own allocations are leak-checked; the
 * collectives across ranks are suite mpi's (test_mpi.c, dist_worker.c).
 */
#include "sg_test.h"

#include "sg_dist.h"
#include "sg_nn.h"

#include <math.h>
#include <stdlib.h>

START_TEST(one_process)
{
    ck_assert_int_eq(sg_dist_init(NULL, NULL), 0);
    ck_assert_int_eq(sg_dist_init(NULL, NULL), 0); /* twice: nothing more */
    ck_assert_int_eq(sg_dist_rank(), 0);
    ck_assert_int_eq(sg_dist_size(), 1);
    ck_assert_int_eq(sg_dist_local_size(), 1);
    int lo = -1, count = -1;
    sg_dist_share(7, &lo, &count);
    ck_assert_int_eq(lo, 0);
    ck_assert_int_eq(count, 7);
    sg_dist_share(-3, &lo, &count);
    ck_assert_int_eq(count, 0);
    sg_dist_share(5, NULL, NULL);
    ck_assert_int_eq(sg_dist_barrier(), 0);
    ck_assert_int_eq(sg_dist_check(NULL), 0);
    ck_assert_int_eq(sg_dist_check(""), 0);
    /* one rank's message is kept as it is (no "rank 0 of 1" prefix) */
    ck_assert_int_eq(sg_dist_check("no data"), -1);
    ASSERT_ERROR("no data");
    double v[2] = {1.5, -2};
    ck_assert_int_eq(sg_dist_sum(v, 2, NULL), 0);
    ck_assert(v[0] == 1.5 && v[1] == -2);
    ck_assert_int_eq(sg_dist_sum(NULL, 0, NULL), 0);
    ck_assert_int_eq(sg_dist_sum(NULL, 2, NULL), -1);
    ASSERT_ERROR("dist_sum: values is NULL");
    ck_assert_int_eq(sg_dist_sum(v, -1, NULL), -1);
    ASSERT_ERROR("dist_sum: n is negative");
    /* the caller's message may be the recorded error itself */
    sg_set_error("loss: shapes (2,3) and (3,2)");
    ck_assert_int_eq(sg_dist_sum(v, 2, sg_last_error()), -1);
    ASSERT_ERROR("loss: shapes (2,3) and (3,2)");
    sg_dist_finalize(); /* without MPI_Init: nothing to do */
    sg_dist_finalize();
}
END_TEST

START_TEST(reducer_leaves_one_gradient_alone)
{
    sg_scope_end(); /* parameters live outside scopes */
    sg_tensor *p = sg_param(sg_zeros(SG_DIMS(3)));
    sg_tensor *q = sg_param(sg_zeros(SG_DIMS(2, 2)));
    sg_scope_begin();
    sg_dist_reducer *r = sg_dist_reducer_new((sg_tensor *[]){p, q}, 2);
    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(sg_dist_reducer_floats(r), 3 + 4 + 2);
    /* no gradient yet */
    ck_assert_int_eq(sg_dist_reduce_gradients(r, 10, NULL), -1);
    ASSERT_ERROR("reduce_gradients: parameter 0 (3) has no gradient (call sg_backward first)");
    const float g[3] = {0.1f, -3, 7e-20f};
    sg_tensor *loss = sg_add(sg_sum(sg_mul(p, sg_from_data(g, SG_DIMS(3))), NULL, 0, false),
                             sg_sum(sg_mul(q, q), NULL, 0, false));
    ck_assert_int_eq(sg_backward(loss, NULL), 0);
    ck_assert_int_eq(sg_dist_reduce_gradients(r, 10, NULL), 0);
    for (int i = 0; i < 3; i++) /* one rank: untouched, bit for bit (no 10 g / 10) */
        ck_assert(sg_data(sg_grad(p))[i] == g[i]);
    ck_assert_int_eq(sg_dist_reduce_gradients(r, 0, NULL), -1);
    ASSERT_ERROR("reduce_gradients: the weights of all ranks sum to 0");
    ck_assert_int_eq(sg_dist_reduce_gradients(r, -1, NULL), -1);
    ASSERT_ERROR("reduce_gradients: weight -1 must be finite and >= 0");
    ck_assert_int_eq(sg_dist_reduce_gradients(r, INFINITY, NULL), -1);
    ASSERT_ERROR("reduce_gradients: weight inf must be finite and >= 0");
    ck_assert_int_eq(sg_dist_reduce_gradients(r, 1, "the loss became nan"), -1);
    ASSERT_ERROR("the loss became nan");
    long calls;
    double seconds;
    sg_dist_reducer_stats(r, &calls, &seconds);
    ck_assert_int_eq(calls, 6);
    ck_assert(seconds >= 0);
    ck_assert_int_eq(sg_dist_reduce_gradients(NULL, 1, NULL), -1);
    ASSERT_ERROR("reduce_gradients: NULL reducer");
    sg_dist_reducer_stats(NULL, &calls, NULL);
    ck_assert_int_eq(calls, 0);
    ck_assert_uint_eq(sg_dist_reducer_floats(NULL), 0);
    sg_dist_reducer_free(r);
    sg_dist_reducer_free(NULL);
    sg_scope_end(); /* before freeing the parameters the graph points at */
    sg_tensor_free(p);
    sg_tensor_free(q);
    sg_scope_begin();
}
END_TEST

START_TEST(reducer_refuses_bad_lists)
{
    ck_assert_ptr_null(sg_dist_reducer_new(NULL, 1));
    ASSERT_ERROR("dist_reducer_new: NULL parameter list");
    sg_tensor *p = sg_zeros(SG_DIMS(2));
    ck_assert_ptr_null(sg_dist_reducer_new(&p, 0));
    ASSERT_ERROR("dist_reducer_new: no parameters");
    ck_assert_ptr_null(sg_dist_reducer_new((sg_tensor *[]){p, NULL}, 2));
    ASSERT_ERROR("dist_reducer_new: NULL input");
}
END_TEST

START_TEST(broadcast_of_one_process)
{
    sg_scope_end(); /* models are made with no scope open */
    sg_rng rng;
    sg_rng_seed(&rng, 3);
    sg_model *m = sg_model_new();
    sg_model_add(m, sg_linear_new(m, "fc", 3, 2, SG_INIT_HE, &rng));
    sg_model_add(m, sg_batchnorm_new(m, "bn", 2));
    float before = sg_data(sg_model_param(m, "fc.W"))[0];
    ck_assert_int_eq(sg_dist_broadcast_model(m), 0);
    ck_assert_int_eq(sg_dist_broadcast_buffers(m), 0);
    ck_assert(sg_data(sg_model_param(m, "fc.W"))[0] == before);
    ck_assert_int_eq(sg_dist_broadcast_model(NULL), -1);
    ASSERT_ERROR("broadcast_model: NULL model");
    ck_assert_int_eq(sg_dist_broadcast_buffers(NULL), -1);
    ASSERT_ERROR("broadcast_buffers: NULL model");
    sg_model_free(m);
    sg_scope_begin();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dist");
    TCase *tc = tcase_create("one_process");
    tcase_add_checked_fixture(tc, sg_test_setup, sg_test_teardown);
    tcase_add_test(tc, one_process);
    tcase_add_test(tc, reducer_leaves_one_gradient_alone);
    tcase_add_test(tc, reducer_refuses_bad_lists);
    tcase_add_test(tc, broadcast_of_one_process);
    suite_add_tcase(s, tc);
    return sg_test_run(s);
}
