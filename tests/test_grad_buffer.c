/*
 * test_grad_buffer.c — Check suite "grad_buffer": the ownership state of
 * gradient buffers (autograd/grad_buffer.c), seen from inside. The other
 * suites check the values backward computes; this one checks where they
 * live: a parameter's gradient is one owned buffer reused step after step, a
 * gradient passed straight through (add) is borrowed without a copy and never
 * written, a create_graph gradient is recorded and
 * settled into an owned copy when its scope ends, sg_grad_of leaves every
 * .grad as it found it, and grad_state is NONE exactly when grad is NULL. A
 * product's backward adds a parameter's gradient into its buffer in place
 * (sg_grad_sink), except under the NaN check.
 *
 * White-box: it includes the engine's private header to read grad_state.
 */
#include "sg_internal.h"
#include "sg_test.h"

#include <math.h>

/* No scope open: tests make persistent tensors and open their own scopes. */
static void setup(void)
{
    sg_clear_error();
    sg_set_grad_enabled(true);
}

/* The invariants every tensor keeps, checked on y's whole graph. */
static void assert_states(sg_tensor *y)
{
    sg_tensor **order;
    int n = sg_topo(y, true, &order);
    ck_assert_int_gt(n, 0);
    for (int i = 0; i < n; i++) {
        const sg_tensor *t = order[i];
        ck_assert_msg((t->grad_state == SG_GRAD_NONE) == (t->grad == NULL), "node %d: state %d, grad %p", i,
                      (int)t->grad_state, (void *)t->grad);
        if (t->op == SG_OP_LEAF)
            ck_assert_msg(t->grad_state != SG_GRAD_BORROWED, "a leaf borrows its gradient");
    }
}

/* A persistent parameter: one owned heap buffer, the same one every step,
 * added to in place and zeroed in place. */
START_TEST(test_param_buffer_is_owned_and_reused)
{
    sg_tensor *w = sg_param(sg_from_data((const float[]){1, 2, 3}, SG_DIMS(3)));
    ck_assert_int_eq(w->grad_state, SG_GRAD_NONE);
    sg_tensor *first = NULL;
    for (int step = 0; step < 3; step++) {
        sg_scope_begin();
        sg_tensor *loss = sg_sum_all(sg_mul(w, w)); /* dw = 2w */
        ck_assert_int_eq(sg_backward(loss, &(sg_backward_opts){.retain_graph = true}), 0);
        assert_states(loss);
        sg_scope_end();
        ck_assert_int_eq(w->grad_state, SG_GRAD_OWNED);
        ck_assert_ptr_null(w->grad->arena); /* on the heap, like w */
        if (!first)
            first = w->grad;
        ck_assert_ptr_eq(w->grad, first);
        ck_assert_float_eq(sg_grad_data(w)[2], 6.f * (float)(step + 1)); /* accumulated */
    }
    sg_zero_grad(w);
    ck_assert_ptr_eq(w->grad, first);
    ck_assert_int_eq(w->grad_state, SG_GRAD_OWNED);
    ck_assert_float_eq(sg_grad_data(w)[2], 0.f);
    sg_tensor_free(w); /* frees the buffer too (valgrind's leak check) */
}
END_TEST

/* y = sum(h + c), h = exp(x): add hands dy to h unchanged, so h borrows
 * the add node's gradient; x, a leaf, owns its gradient, in its own scope. */
START_TEST(test_pass_through_is_borrowed)
{
    sg_scope_begin();
    sg_tensor *x = sg_param(sg_from_data((const float[]){0, 1}, SG_DIMS(2)));
    sg_tensor *h = sg_exp(x);
    sg_tensor *s = sg_add(h, sg_full(3.f, SG_DIMS(2)));
    sg_tensor *y = sg_sum_all(s);
    ck_assert_int_eq(sg_backward(y, &(sg_backward_opts){.retain_graph = true}), 0);
    assert_states(y);
    ck_assert_int_eq(s->grad_state, SG_GRAD_OWNED); /* sum's backward made it */
    ck_assert_int_eq(h->grad_state, SG_GRAD_BORROWED);
    ck_assert_ptr_eq(h->grad, s->grad);
    ck_assert_int_eq(x->grad_state, SG_GRAD_OWNED);
    ck_assert_ptr_eq(x->grad->arena, x->arena);
    ck_assert_float_eq_tol(sg_grad_data(x)[1], expf(1.f), 1e-6f);

    /* zero_grad drops a borrowed gradient and leaves the owner's values */
    sg_zero_grad(h);
    ck_assert_ptr_null(h->grad);
    ck_assert_int_eq(h->grad_state, SG_GRAD_NONE);
    ck_assert_float_eq(sg_grad_data(s)[0], 1.f);
}
END_TEST

/* y = sum(h + h): both of add's inputs receive dy itself. The first borrows
 * it; the second must not write it but give h a buffer of its own. */
START_TEST(test_a_borrowed_buffer_is_never_written)
{
    sg_scope_begin();
    sg_tensor *x = sg_param(sg_from_data((const float[]){0, 1}, SG_DIMS(2)));
    sg_tensor *h = sg_exp(x);
    sg_tensor *s = sg_add(h, h);
    sg_tensor *y = sg_sum_all(s);
    ck_assert_int_eq(sg_backward(y, &(sg_backward_opts){.retain_graph = true}), 0);
    assert_states(y);
    ck_assert_int_eq(h->grad_state, SG_GRAD_OWNED);
    ck_assert_ptr_ne(h->grad, s->grad);
    ck_assert_float_eq(sg_grad_data(h)[0], 2.f);
    ck_assert_float_eq(sg_grad_data(s)[0], 1.f); /* dy itself untouched */
    ck_assert_float_eq_tol(sg_grad_data(x)[1], 2.f * expf(1.f), 1e-6f);
}
END_TEST

/* create_graph on a persistent parameter inside a scope: its gradient is a
 * recorded node of that scope until the scope ends, then an owned heap copy. */
START_TEST(test_recorded_gradient_is_settled_at_scope_end)
{
    sg_tensor *w = sg_param(sg_scalar(3.f));
    sg_scope_begin();
    sg_tensor *y = sg_mul(sg_mul(w, w), w); /* dw = 3w^2 = 27 */
    ck_assert_int_eq(sg_backward(y, &(sg_backward_opts){.create_graph = true}), 0);
    assert_states(y);
    ck_assert_int_eq(w->grad_state, SG_GRAD_RECORDED);
    ck_assert_ptr_eq(w->grad->arena, sg_current_arena());
    ck_assert(sg_has_history(w->grad));
    sg_scope_end();
    ck_assert_int_eq(w->grad_state, SG_GRAD_OWNED);
    ck_assert_ptr_null(w->grad->arena);
    ck_assert_float_eq(sg_grad_data(w)[0], 27.f);
    sg_tensor_free(w);
}
END_TEST

/* sg_grad_of hands out this pass's gradients and leaves every .grad, and
 * its state, as it was. */
START_TEST(test_grad_of_restores_every_grad)
{
    sg_scope_begin();
    sg_tensor *x = sg_param(sg_from_data((const float[]){1, 2}, SG_DIMS(2)));
    sg_tensor *h = sg_mul(x, x);
    sg_tensor *y = sg_sum_all(h);
    ck_assert_int_eq(sg_backward(y, &(sg_backward_opts){.retain_graph = true}), 0);
    sg_tensor *xg = x->grad, *hg = h->grad;
    enum sg_grad_state xs = x->grad_state, hs = h->grad_state;
    sg_tensor *dx = NULL;
    ck_assert_int_eq(sg_grad_of(y, &x, 1, &dx, NULL), 0);
    ck_assert_ptr_nonnull(dx);
    ck_assert_ptr_ne(dx, xg);
    ck_assert_float_eq(sg_data(dx)[1], 4.f);
    ck_assert_ptr_eq(x->grad, xg);
    ck_assert_ptr_eq(h->grad, hg);
    ck_assert_int_eq(x->grad_state, xs);
    ck_assert_int_eq(h->grad_state, hs);
    ck_assert_float_eq(sg_grad_data(x)[1], 4.f); /* not added twice */
    assert_states(y);
}
END_TEST

/* Tensors made by one backward of sum(op(x, w)) in a fresh scope (ids
 * handed out during sg_backward), after checking it succeeded. */
static uint32_t tensors_made_by_backward(sg_tensor *loss)
{
    uint32_t before = sg_tl_next_id;
    ck_assert_msg(sg_backward(loss, NULL) == 0, "%s", sg_last_error());
    return sg_tl_next_id - before;
}

/* A linear layer's dW = x^T dy is added straight into w's own buffer (one
 * product with beta = 1, no tensor for the contribution), and sums over
 * steps exactly as adding a separate product would; with the NaN check on
 * (which must see each op's result) the product is a tensor of its own. */
START_TEST(test_product_adds_into_param_grad)
{
    const float xv[] = {1, 2, 3, 4, 5, 6, 7, 8}; /* (4, 2) */
    sg_tensor *w = sg_param(sg_from_data((const float[]){1, -1, 2, 0.5f, 3, -2}, SG_DIMS(2, 3)));
    uint32_t made[3];
    for (int step = 0; step < 3; step++) {
        sg_set_nan_check(step == 2);
        sg_scope_begin();
        sg_tensor *x = sg_from_data(xv, SG_DIMS(4, 2));
        made[step] = tensors_made_by_backward(sg_sum_all(sg_matmul(x, w)));
        sg_scope_end();
        ck_assert_int_eq(w->grad_state, SG_GRAD_OWNED);
        /* dW[i][j] = sum over rows of x[:, i]: 16 and 20, each step */
        for (int j = 0; j < 3; j++) {
            ck_assert_float_eq(sg_grad_data(w)[j], 16.f * (float)(step + 1));
            ck_assert_float_eq(sg_grad_data(w)[3 + j], 20.f * (float)(step + 1));
        }
    }
    /* step 0: no buffer yet, the product and a heap buffer it is copied to;
     * step 1 added into that buffer; step 2 (NaN check) made the product */
    ck_assert_uint_eq(made[0], made[1] + 2);
    ck_assert_uint_eq(made[2], made[1] + 1);
    sg_tensor_free(w);
}
END_TEST

/* Every form of product whose gradient can go straight into a parameter's
 * buffer: each parameter's gradient bit for bit as when each contribution
 * is made apart (the NaN check turns the in-place path off), over two
 * steps after sg_zero_grad, with non-integer values; and the in-place path
 * taken (fewer tensors made by backward). */
enum { SINK_W_RIGHT, SINK_W_RIGHT_T, SINK_W_LEFT, SINK_W_LEFT_T, SINK_FOLD, SINK_FOLD_T, SINK_ADDMM, SINK_F64,
       SINK_CASES };
static const char *const sink_case_name[SINK_CASES] = {"x @ w", "x @ w^T", "w @ x", "w^T @ x",
                                                       "x (2,4,2) @ w", "x (2,4,2) @ w^T", "addmm b + x @ w",
                                                       "x @ w, float64"};

static sg_tensor *vals(sg_dtype dt, int n0, int n1, int n2, float scale)
{
    int dims[3] = {n0, n1, n2}, nd = n2 ? 3 : n1 ? 2 : 1;
    sg_tensor *t = sg_full_dtype(dt, 0.0, nd, dims);
    for (size_t i = 0; i < sg_size(t); i++)
        sg_set_value_at(t, i, scale * (float)((int)(i * 7 % 11) - 5) + 0.013f * (float)i);
    return t;
}

static sg_tensor *sink_loss(int c, sg_tensor *w, sg_tensor *bias)
{
    const sg_dtype dt = c == SINK_F64 ? SG_FLOAT64 : SG_FLOAT32;
    sg_tensor *y;
    switch (c) {
    case SINK_W_RIGHT: case SINK_F64: y = sg_matmul(vals(dt, 4, 2, 0, 0.3f), w); break;       /* w (2,3) */
    case SINK_W_RIGHT_T: y = sg_matmul_t(vals(dt, 4, 3, 0, 0.3f), w, false, true); break;     /* w (2,3) */
    case SINK_W_LEFT: y = sg_matmul(w, vals(dt, 3, 5, 0, 0.3f)); break;                      /* w (2,3) */
    case SINK_W_LEFT_T: y = sg_matmul_t(w, vals(dt, 2, 5, 0, 0.3f), true, false); break;     /* w (2,3) */
    case SINK_FOLD: y = sg_matmul(vals(dt, 2, 4, 2, 0.3f), w); break;                        /* w (2,3) */
    case SINK_FOLD_T: y = sg_matmul_t(vals(dt, 2, 4, 3, 0.3f), w, false, true); break;       /* w (2,3) */
    default: y = sg_addmm(bias, vals(dt, 4, 2, 0, 0.3f), w); break;                          /* w (2,3) */
    }
    /* a weighted sum, so that dy is not all ones */
    return sg_sum_all(sg_mul(y, vals(dt, y->shape[0], y->shape[1], y->ndim == 3 ? y->shape[2] : 0, 0.7f)));
}

START_TEST(test_product_into_grad_every_form)
{
    const int c = _i;
    const sg_dtype dt = c == SINK_F64 ? SG_FLOAT64 : SG_FLOAT32;
    double got[2][2][6], b_got[2][2][3];
    uint32_t made[2];
    for (int apart = 0; apart < 2; apart++) {
        sg_tensor *w = sg_param(vals(dt, 2, 3, 0, 0.11f));
        sg_tensor *bias = sg_param(vals(dt, 3, 0, 0, 0.5f)); /* used by addmm only */
        sg_scope_begin(); /* a first step gives w its own buffer */
        ck_assert_int_eq(sg_backward(sink_loss(c, w, bias), NULL), 0);
        sg_scope_end();
        sg_zero_grad(w);
        sg_zero_grad(bias);
        sg_set_nan_check(apart);
        for (int step = 0; step < 2; step++) {
            sg_scope_begin();
            sg_tensor *loss = sink_loss(c, w, bias);
            if (step == 0)
                made[apart] = tensors_made_by_backward(loss);
            else
                ck_assert_int_eq(sg_backward(loss, NULL), 0);
            sg_scope_end();
            for (int i = 0; i < 6; i++)
                got[apart][step][i] = sg_value_at(sg_grad(w), (size_t)i);
            for (int i = 0; i < 3 && c == SINK_ADDMM; i++)
                b_got[apart][step][i] = sg_value_at(sg_grad(bias), (size_t)i);
        }
        sg_set_nan_check(false);
        sg_tensor_free(w);
        sg_tensor_free(bias);
    }
    /* step 0 (from zeros): bit for bit. Step 1 adds to a buffer that holds
     * step 0's gradient: where a product is summed in pieces of K (the
     * blocked loops of a build without a BLAS add each piece into C) the
     * old value joins first, (g + p0) + p1 against g + (p0 + p1), so to
     * float32 rounding (design.md, "Gradient buffers"). */
    for (int step = 0; step < 2; step++) {
        const double tol = step ? 4e-7 : 0.0;
        for (int i = 0; i < 6; i++)
            ck_assert_msg(fabs(got[0][step][i] - got[1][step][i]) <= tol * fabs(got[1][step][i]),
                          "%s, step %d: dw[%d] = %.9g in place, %.9g apart", sink_case_name[c], step, i,
                          got[0][step][i], got[1][step][i]);
        for (int i = 0; i < 3 && c == SINK_ADDMM; i++)
            ck_assert_msg(b_got[0][step][i] == b_got[1][step][i], "%s: db[%d]", sink_case_name[c], i);
    }
    for (int i = 0; i < 6; i++) /* the same loss twice: twice the gradient */
        ck_assert_msg(got[0][0][i] != 0.0 && fabs(got[0][1][i] - 2.0 * got[0][0][i]) <= 4e-7 * fabs(got[0][1][i]),
                      "%s: dw[%d] %.9g, then %.9g", sink_case_name[c], i, got[0][0][i], got[0][1][i]);
    ck_assert_msg(made[0] < made[1], "%s: in place made %u tensors, apart %u: the in-place path was not taken",
                  sink_case_name[c], made[0], made[1]);
}
END_TEST

/* w's own gradient as an operand (w @ sg_grad(w)^T): w's gradient product
 * dy @ sg_grad(w) must not be written into the buffer it reads. K = 400
 * rows, so that a BLAS reads a second block of K after writing the first. */
START_TEST(test_product_reading_the_grad_itself)
{
    enum { R = 400, C = 8 };
    static double got[2][R * C];
    for (int apart = 0; apart < 2; apart++) {
        sg_tensor *w = sg_param(vals(SG_FLOAT32, R, C, 0, 0.02f));
        sg_scope_begin();
        ck_assert_int_eq(sg_backward(sg_sum_all(sg_mul(w, w)), NULL), 0); /* w.grad = 2w */
        sg_scope_end();
        sg_set_nan_check(apart);
        sg_scope_begin();
        ck_assert_int_eq(sg_backward(sg_sum_all(sg_matmul_t(w, sg_grad(w), false, true)), NULL), 0);
        sg_scope_end();
        sg_set_nan_check(false);
        for (int i = 0; i < R * C; i++)
            got[apart][i] = sg_grad_data(w)[i];
        sg_tensor_free(w);
    }
    for (int i = 0; i < R * C; i++)
        ck_assert_msg(got[0][i] == got[1][i], "dw[%d] = %.9g, %.9g with the products apart", i, got[0][i], got[1][i]);
}
END_TEST

/* A batch of no rows adds nothing to w's gradient (dW = x^T dy over K = 0
 * rows): the in-place product must not clear what earlier steps left. */
START_TEST(test_empty_batch_keeps_param_grad)
{
    for (int f64 = 0; f64 < 2; f64++) {
        const sg_dtype dt = f64 ? SG_FLOAT64 : SG_FLOAT32;
        sg_tensor *w = sg_param(sg_full_dtype(dt, 1.0, SG_DIMS(2, 3)));
        for (int rows = 1; rows >= 0; rows--) {
            sg_scope_begin();
            sg_tensor *x = sg_full_dtype(dt, 2.0, SG_DIMS(rows, 2));
            ck_assert_int_eq(sg_backward(sg_sum_all(sg_matmul(x, w)), NULL), 0);
            sg_scope_end();
            for (int i = 0; i < 6; i++) /* 2, from the one row */
                ck_assert_double_eq(f64 ? sg_grad_data64(w)[i] : (double)sg_grad_data(w)[i], 2.0);
        }
        sg_tensor_free(w);
    }
}
END_TEST

/* w @ w: both of matmul's inputs are w, so both contributions go into the
 * one buffer, the same sums as adding each product in turn. */
START_TEST(test_product_of_a_param_with_itself)
{
    const float wv[] = {1, 2, -3, 0.5f};
    float want[4];
    for (int pass = 0; pass < 2; pass++) {
        sg_set_nan_check(pass == 0); /* pass 0: products apart, as a reference */
        sg_tensor *w = sg_param(sg_from_data(wv, SG_DIMS(2, 2)));
        for (int step = 0; step < 2; step++) {
            sg_scope_begin();
            ck_assert_int_eq(sg_backward(sg_sum_all(sg_matmul(w, w)), NULL), 0);
            sg_scope_end();
        }
        /* d sum(w w) / dw = 1 w^T + w^T 1: row sums and column sums of w */
        float *g = sg_grad_data(w);
        if (pass == 0) {
            memcpy(want, g, sizeof want);
            ck_assert_float_eq(want[0], 2.f * (wv[0] + wv[1] + wv[0] + wv[2]));
        }
        for (int i = 0; i < 4; i++)
            ck_assert_float_eq(g[i], want[i]);
        sg_tensor_free(w);
    }
}
END_TEST

/* The NaN check names the product that overflowed inside backward: with
 * the contribution added in place it would go unseen. */
START_TEST(test_nan_check_sees_backward_products)
{
    sg_tensor *w = sg_param(sg_full(1e-3f, SG_DIMS(3, 2)));
    sg_scope_begin();
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_matmul(sg_full(1.f, SG_DIMS(4, 3)), w)), NULL), 0);
    sg_scope_end(); /* w has its own buffer now */
    sg_set_nan_check(true);
    sg_scope_begin();
    sg_tensor *x = sg_full(3e38f, SG_DIMS(4, 3)); /* forward finite, dW = 4 * 3e38 overflows */
    sg_tensor *loss = sg_sum_all(sg_matmul(x, w));
    ck_assert(isfinite(sg_data(loss)[0]));
    ck_assert_int_eq(sg_backward(loss, NULL), -1);
    ASSERT_ERROR_HAS("matmul", "Inf");
    sg_scope_end();
    sg_tensor_free(w);
}
END_TEST

static Suite *grad_buffer_suite(void)
{
    Suite *s = suite_create("grad_buffer");
    TCase *tc = tcase_create("ownership");
    tcase_add_checked_fixture(tc, setup, sg_test_teardown);
    tcase_add_test(tc, test_param_buffer_is_owned_and_reused);
    tcase_add_test(tc, test_pass_through_is_borrowed);
    tcase_add_test(tc, test_a_borrowed_buffer_is_never_written);
    tcase_add_test(tc, test_recorded_gradient_is_settled_at_scope_end);
    tcase_add_test(tc, test_grad_of_restores_every_grad);
    tcase_add_test(tc, test_product_adds_into_param_grad);
    tcase_add_test(tc, test_empty_batch_keeps_param_grad);
    tcase_add_loop_test(tc, test_product_into_grad_every_form, 0, SINK_CASES);
    tcase_add_test(tc, test_product_reading_the_grad_itself);
    tcase_add_test(tc, test_product_of_a_param_with_itself);
    tcase_add_test(tc, test_nan_check_sees_backward_products);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return sg_test_run(grad_buffer_suite()); }
