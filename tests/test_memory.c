/*
 * test_memory.c — Check suite "memory": scopes (arenas) free their
 * temporaries and reuse the memory, tensors made outside a scope
 * (parameters) live on with their gradients, sg_keep moves a result out of a
 * scope, gradients that backward leaves in outer or persistent tensors
 * outlive the scope that computed them, and 10,000 training steps of a small
 * MLP keep a flat footprint (arena bytes, heap bytes in use, and RSS).
 *
 * Leaks are valgrind's job: `meson test --setup valgrind --suite memory`
 * runs this suite unforked and fails on any definite or indirect leak, so
 * every test frees what it makes persistent, and main() ends with
 * sg_release_memory().
 */
#include "sg_nn.h"

#include <check.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void setup(void)
{
    sg_clear_error();
    sg_set_grad_enabled(true);
}

static void teardown(void)
{
    while (sg_scope_depth() > 0)
        sg_scope_end();
}

/* Fill a fresh scope with junk, so that stale pointers into reused arena
 * memory would show wrong values. */
static void scribble(int n_tensors)
{
    sg_scope_begin();
    for (int i = 0; i < n_tensors; i++)
        ck_assert_ptr_nonnull(sg_full(-12345.f, SG_DIMS(64)));
    sg_scope_end();
}

/* ------------------------------------------------------------------------- */

START_TEST(test_scope_frees_temporaries)
{
    ck_assert_int_eq(sg_scope_depth(), 0);
    sg_release_memory(); /* measure from nothing, whatever ran before */
    ck_assert_uint_eq(sg_scope_reserved_bytes(), 0);
    ck_assert_int_eq(sg_scope_begin(), 1);
    sg_tensor *a = sg_ones(SG_DIMS(16));
    float *first = sg_data(a);
    for (int i = 0; i < 100; i++)
        sg_exp(sg_add(a, a));
    sg_tensor_free(a); /* a scope's tensor: sg_tensor_free leaves it alone */
    ck_assert_float_eq(sg_data(a)[15], 1.f);
    sg_scope_end();
    ck_assert_int_eq(sg_scope_depth(), 0);
    /* the next scope at the same depth starts where the last one started */
    sg_scope_begin();
    sg_tensor *b = sg_zeros(SG_DIMS(16));
    ck_assert_ptr_eq(sg_data(b), first);
    sg_scope_end();

    /* many scopes of many temporaries: the reserved bytes stay the same */
    size_t reserved = 0;
    for (int round = 0; round < 200; round++) {
        sg_scope_begin();
        sg_tensor *x = sg_param(sg_ones(SG_DIMS(8, 8)));
        for (int i = 0; i < 50; i++)
            x = sg_relu(sg_matmul(x, x));
        ck_assert_int_eq(sg_backward(sg_sum_all(x), NULL), 0);
        sg_scope_end();
        if (round == 1)
            reserved = sg_scope_reserved_bytes();
        else if (round > 1)
            ck_assert_uint_eq(sg_scope_reserved_bytes(), reserved);
    }
    ck_assert_uint_gt(reserved, 0);

    /* a scope that outgrows one chunk (3 MiB of temporaries): after the
     * first round its memory is one block that fits, and nothing grows */
    for (int round = 0; round < 20; round++) {
        sg_scope_begin();
        for (int i = 0; i < 6; i++)
            ck_assert_ptr_nonnull(sg_full((float)i, SG_DIMS(512, 256)));
        sg_scope_end();
        if (round == 1)
            reserved = sg_scope_reserved_bytes();
        else if (round > 1)
            ck_assert_uint_eq(sg_scope_reserved_bytes(), reserved);
    }
    ck_assert_uint_ge(reserved, 6u * 512 * 256 * sizeof(float));
    ck_assert_uint_lt(reserved, 2u * 6 * 512 * 256 * sizeof(float));
}
END_TEST

START_TEST(test_nested_scopes_are_separate)
{
    sg_scope_begin();
    sg_tensor *outer = sg_full(7.f, SG_DIMS(4));
    for (int round = 0; round < 3; round++) {
        ck_assert_int_eq(sg_scope_begin(), 2);
        /* more than one chunk's worth (1 MiB) in the inner scope */
        for (int i = 0; i < 40; i++)
            sg_full(-1.f, SG_DIMS(256, 64));
        sg_scope_end();
        for (int i = 0; i < 4; i++)
            ck_assert_float_eq(sg_data(outer)[i], 7.f);
    }
    sg_scope_end();
}
END_TEST

START_TEST(test_params_live_on)
{
    sg_tensor *w = sg_param(sg_from_data((const float[]){1, 2, 3}, SG_DIMS(3)));
    ck_assert_int_eq(sg_scope_depth(), 0);
    for (int step = 1; step <= 5; step++) {
        sg_scope_begin();
        sg_tensor *loss = sg_sum_all(sg_mul_scalar(sg_mul(w, w), 0.5f));
        ck_assert_int_eq(sg_backward(loss, NULL), 0);
        sg_scope_end();
        scribble(100);
        /* the gradient accumulates across steps in w's own (heap) buffer */
        for (int i = 0; i < 3; i++)
            ck_assert_float_eq(sg_grad_data(w)[i], (float)(step * (i + 1)));
    }
    ck_assert_float_eq(sg_data(w)[2], 3.f);
    /* a parameter made in an outer scope gets its gradient in that scope */
    sg_scope_begin();
    sg_tensor *v = sg_param(sg_full(2.f, SG_DIMS(2)));
    sg_scope_begin();
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_mul(v, v)), NULL), 0);
    sg_scope_end();
    scribble(100);
    ck_assert_float_eq(sg_grad_data(v)[0], 4.f);
    ck_assert_float_eq(sg_grad_data(v)[1], 4.f);
    sg_scope_end();
    sg_tensor_free(w);
}
END_TEST

START_TEST(test_keep)
{
    /* nested: the kept copy belongs to the enclosing scope */
    sg_scope_begin();
    sg_tensor *kept;
    {
        sg_scope_begin();
        sg_tensor *p = sg_param(sg_from_data((const float[]){1, 2}, SG_DIMS(2)));
        sg_tensor *y = sg_mul_scalar(sg_exp(sg_mul_scalar(p, 0.f)), 3.f); /* [3, 3] */
        kept = sg_keep(y);
        ck_assert(!sg_has_history(kept));
        ck_assert(!sg_requires_grad(kept));
        ck_assert_ptr_ne(sg_data(kept), sg_data(y));
        sg_scope_end();
    }
    scribble(1); /* depth 1 is still open: this is a depth-2 scope */
    sg_scope_begin();
    for (int i = 0; i < 100; i++)
        sg_full(-1.f, SG_DIMS(2));
    sg_scope_end();
    ck_assert_float_eq(sg_data(kept)[0], 3.f);
    ck_assert_float_eq(sg_data(kept)[1], 3.f);
    sg_scope_end();

    /* from the outermost scope: the result becomes persistent */
    sg_scope_begin();
    sg_tensor *r = sg_keep(sg_arange(0.f, 5.f, 1.f));
    sg_scope_end();
    scribble(100);
    ck_assert_uint_eq(sg_size(r), 5);
    ck_assert_float_eq(sg_data(r)[4], 4.f);
    sg_tensor_free(r);
    ck_assert_ptr_null(sg_keep(NULL));
}
END_TEST

START_TEST(test_create_graph_grads_outlive_scope)
{
    sg_tensor *x = sg_param(sg_scalar(2.f));
    /* an ordinary backward first: x gets a heap gradient buffer */
    sg_scope_begin();
    ck_assert_int_eq(sg_backward(sg_mul(x, x), NULL), 0);
    sg_scope_end();
    ck_assert_float_eq(sg_grad_data(x)[0], 4.f);
    /* then create_graph: x's gradient becomes a recorded node in the scope,
     * and its heap buffer must neither leak nor dangle */
    sg_scope_begin();
    ck_assert_int_eq(sg_backward(sg_mul(sg_mul(x, x), x), &(sg_backward_opts){.create_graph = true}), 0);
    ck_assert_float_eq(sg_grad_data(x)[0], 16.f); /* 4 + 3x^2 */
    ck_assert(sg_has_history(sg_grad(x)));
    sg_scope_end();
    scribble(100);
    /* after the scope: a plain copy, owned by x */
    ck_assert_float_eq(sg_grad_data(x)[0], 16.f);
    ck_assert(!sg_has_history(sg_grad(x)));
    sg_zero_grad(x);
    ck_assert_float_eq(sg_grad_data(x)[0], 0.f);
    sg_tensor_free(x);

    /* a persistent output and a persistent seed given by the user: the seed
     * stays the user's to free (no double free) */
    sg_tensor *u = sg_param(sg_from_data((const float[]){1, 2}, SG_DIMS(2)));
    sg_tensor *y = sg_add_scalar(u, 1.f);
    sg_tensor *seed = sg_from_data((const float[]){0.5f, -1.f}, SG_DIMS(2));
    sg_scope_begin();
    ck_assert_int_eq(sg_backward(y, &(sg_backward_opts){.grad = seed, .create_graph = true}), 0);
    sg_scope_end();
    ck_assert_float_eq(sg_grad_data(u)[0], 0.5f);
    ck_assert_float_eq(sg_grad_data(u)[1], -1.f);
    sg_tensor_free(y);
    sg_tensor_free(u);
    sg_tensor_free(seed);
}
END_TEST

START_TEST(test_persistent_graph)
{
    /* no scope open: every result is persistent and freed by the caller,
     * gradients included (backward makes its temporaries in a scope of its own) */
    ck_assert_int_eq(sg_scope_depth(), 0);
    sg_tensor *a = sg_param(sg_from_data((const float[]){1, 2}, SG_DIMS(1, 2)));
    sg_tensor *b = sg_param(sg_from_data((const float[]){3, 4}, SG_DIMS(1, 2)));
    sg_tensor *c = sg_concat((sg_tensor *[]){a, b, a}, 3, 0); /* (3,2), three recorded inputs */
    sg_tensor *m = sg_mul(c, c);
    sg_tensor *s = sg_sum_all(m);
    ck_assert_ptr_nonnull(s);
    ck_assert_float_eq(sg_item(s), 1 + 4 + 9 + 16 + 1 + 4);
    ck_assert_int_eq(sg_backward(s, &(sg_backward_opts){.retain_graph = true}), 0);
    ck_assert_int_eq(sg_backward(s, NULL), 0); /* twice: persistent grads accumulate */
    ck_assert_int_eq(sg_scope_depth(), 0);
    ck_assert_float_eq(sg_grad_data(a)[0], 8.f); /* 2 passes x 2 uses x 2a */
    ck_assert_float_eq(sg_grad_data(a)[1], 16.f);
    ck_assert_float_eq(sg_grad_data(b)[1], 16.f); /* 2 passes x 2b */
    ck_assert_float_eq(sg_grad_data(c)[2], 12.f);  /* intermediate nodes too */
    sg_tensor_free(s);
    sg_tensor_free(m);
    sg_tensor_free(c);
    sg_tensor_free(b);
    sg_tensor_free(a);
}
END_TEST

static sg_tensor *cube_sum(sg_tensor *const *in, int n, void *ctx)
{
    (void)n;
    (void)ctx;
    return sg_sum_all(sg_mul(sg_mul(in[0], in[0]), in[0]));
}

START_TEST(test_tools_outside_scope)
{
    /* gradcheck, gradgradcheck, trace and DOT export on persistent tensors,
     * with no scope open: they make their temporaries in scopes of their own */
    ck_assert_int_eq(sg_scope_depth(), 0);
    sg_tensor *x = sg_param(sg_from_data((const float[]){0.5f, -1.f, 1.5f}, SG_DIMS(3)));
    sg_gradcheck_report rep;
    ck_assert_msg(sg_gradcheck(cube_sum, &x, 1, NULL, NULL, &rep), "%s", rep.message);
    ck_assert_msg(sg_gradgradcheck(cube_sum, &x, 1, NULL, NULL, &rep), "%s", rep.message);
    ck_assert_int_eq(sg_scope_depth(), 0);
    ck_assert_ptr_null(sg_grad(x)); /* gradcheck leaves .grad alone */
    sg_tensor *sq = sg_mul(x, x), *y = sg_sum_all(sq);
    ck_assert_int_eq(sg_backward(y, NULL), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    sg_trace(mem, y);
    ck_assert_int_eq(sg_write_dot(mem, y), 0);
    fclose(mem);
    ck_assert_ptr_nonnull(strstr(text, "digraph"));
    free(text);
    sg_tensor_free(y);
    sg_tensor_free(sq);
    sg_tensor_free(x);
}
END_TEST

START_TEST(test_release_memory)
{
    sg_scope_begin();
    sg_full(1.f, SG_DIMS(1024, 300)); /* > 1 MiB */
    sg_scope_end();
    ck_assert_uint_gt(sg_scope_reserved_bytes(), 1u << 20);
    sg_release_memory();
    ck_assert_uint_eq(sg_scope_reserved_bytes(), 0);
    /* scopes work as before */
    sg_scope_begin();
    sg_tensor *t = sg_full(2.f, SG_DIMS(3));
    ck_assert_float_eq(sg_data(t)[2], 2.f);
    sg_scope_end();
    ck_assert_uint_gt(sg_scope_reserved_bytes(), 0);
    sg_release_memory();
}
END_TEST

/* ------------------------------------------------------------------------- */
/* 10,000 training steps of a 4-8-3 MLP: a flat footprint */

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    unsigned long size = 0, resident = 0;
    int ok = fscanf(f, "%lu %lu", &size, &resident) == 2;
    fclose(f);
    return ok ? resident * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

START_TEST(test_mlp_flat_footprint)
{
    enum { N = 16, STEPS = 10000 };
    sg_rng rng;
    sg_rng_seed(&rng, 42);
    sg_tensor *x = sg_uniform(&rng, -1.f, 1.f, SG_DIMS(N, 4));
    /* targets: a fixed smooth function of the inputs */
    sg_tensor *t = sg_zeros(SG_DIMS(N, 3));
    for (int i = 0; i < N; i++) {
        const float *xi = sg_data(x) + 4 * i;
        sg_data(t)[3 * i + 0] = xi[0] - xi[1];
        sg_data(t)[3 * i + 1] = 0.5f * xi[2] + xi[3];
        sg_data(t)[3 * i + 2] = xi[0] * xi[3];
    }
    sg_tensor *p[4] = {
        sg_param(sg_normal(&rng, 0.f, 0.5f, SG_DIMS(4, 8))), sg_param(sg_zeros(SG_DIMS(8))),
        sg_param(sg_normal(&rng, 0.f, 0.5f, SG_DIMS(8, 3))), sg_param(sg_zeros(SG_DIMS(3))),
    };
    float first_loss = 0.f, last_loss = 0.f;
    int failed_step = 0;
    size_t reserved_100 = 0, heap_100 = 0, rss_100 = 0, reserved_max = 0;
    for (int step = 1; step <= STEPS; step++) {
        sg_scope_begin();
        sg_tensor *h = sg_relu(sg_add(sg_matmul(x, p[0]), p[1]));
        sg_tensor *y = sg_add(sg_matmul(h, p[2]), p[3]);
        sg_tensor *d = sg_sub(y, t);
        sg_tensor *loss = sg_mul_scalar(sg_sum_all(sg_mul(d, d)), 1.f / N);
        /* no ck_assert inside the loop: Check's own bookkeeping allocates */
        if (!loss || sg_backward(loss, NULL) != 0) {
            failed_step = step;
            sg_scope_end();
            break;
        }
        last_loss = sg_item(loss);
        if (step == 1)
            first_loss = last_loss;
        for (int k = 0; k < 4; k++) { /* SGD */
            float *w = sg_data(p[k]), *g = sg_grad_data(p[k]);
            for (size_t i = 0; i < sg_size(p[k]); i++)
                w[i] -= 0.05f * g[i];
            sg_zero_grad(p[k]);
        }
        sg_scope_end();
        if (step == 100) {
            reserved_100 = sg_scope_reserved_bytes();
            rss_100 = rss_bytes();
            heap_100 = heap_in_use();
        }
        if (step > 100 && sg_scope_reserved_bytes() > reserved_max)
            reserved_max = sg_scope_reserved_bytes();
    }
    size_t reserved_end = sg_scope_reserved_bytes(), heap_end = heap_in_use(), rss_end = rss_bytes();
    ck_assert_msg(failed_step == 0, "step %d failed: %s", failed_step, sg_last_error());
    ck_assert_uint_gt(reserved_100, 0);
    ck_assert_uint_eq(reserved_end, reserved_100);
    ck_assert_uint_eq(reserved_max, reserved_100);
    ck_assert_msg(heap_end == heap_100, "heap in use grew from %zu to %zu bytes", heap_100, heap_end);
    /* Under qemu-user (SG_TEST_EMULATED) RSS also holds the emulator's
     * translated code, which grows in ~2 MB regions whenever the guest runs
     * enough new code: seen once a changed build moved that boundary past
     * step 100 (RSS +2.1 MB at step 101, flat to step 10,000, heap flat).
     * The heap and arena bounds above still hold there. */
    if (!getenv("SG_TEST_EMULATED"))
        ck_assert_msg(rss_end <= rss_100 + 256 * 1024, "RSS grew from %zu to %zu bytes", rss_100, rss_end);
    /* and it really trained */
    ck_assert_msg(last_loss < 0.2f * first_loss, "loss %g -> %g", (double)first_loss, (double)last_loss);
    for (int k = 0; k < 4; k++)
        sg_tensor_free(p[k]);
    sg_tensor_free(x);
    sg_tensor_free(t);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Use after scope: every op and accessor refuses a tensor whose scope ended */

#define ASSERT_STALE(func)                                                                          \
    do {                                                                                            \
        ck_assert_str_eq(sg_last_error(), func ": tensor used after its scope ended");             \
        sg_clear_error();                                                                           \
    } while (0)

START_TEST(test_use_after_scope_small)
{
    /* the old arena handed the same bytes to the next scope: a stale 3
     * read back as the 7 written after it */
    sg_scope_begin();
    sg_tensor *a = sg_full(3.f, SG_DIMS(1));
    sg_scope_end();
    sg_scope_begin();
    sg_tensor *b = sg_full(7.f, SG_DIMS(1));
    ck_assert(isnan(sg_item(a)));
    ASSERT_STALE("item");
    ck_assert_float_eq(sg_item(b), 7.f);
    ck_assert_ptr_null(sg_add(a, b));
    ASSERT_STALE("add");
    ck_assert_ptr_null(sg_sqrt(a));
    ASSERT_STALE("sqrt");
    ck_assert_ptr_null(sg_data(a));
    ASSERT_STALE("data");
    ck_assert_int_eq(sg_ndim(a), -1);
    ASSERT_STALE("ndim");
    ck_assert_ptr_null(sg_keep(a));
    ASSERT_STALE("keep");
    ck_assert_ptr_null(sg_param(a));
    ASSERT_STALE("param");
    char buf[32];
    ck_assert_str_eq(sg_shape_str(a, buf, sizeof buf), "(dead)");
    ASSERT_STALE("shape_str");
    ck_assert_ptr_null(sg_reshape(a, SG_DIMS(1, 1)));
    ASSERT_STALE("reshape");
    /* still caught after many newer tensors (fewer than the quarantine) */
    for (int i = 0; i < 1000; i++)
        sg_full(1.f, SG_DIMS(2));
    ck_assert_ptr_null(sg_mul(b, a));
    ASSERT_STALE("mul");
    sg_scope_end();
}
END_TEST

START_TEST(test_use_after_scope_large)
{
    /* a round that needs two chunks: at its end they are merged, so the old
     * header of `big` lived in freed memory (ASan: heap-use-after-free) */
    sg_scope_begin();
    sg_tensor *small = sg_full(1.f, SG_DIMS(8));
    sg_tensor *big = sg_param(sg_full(2.f, SG_DIMS(1 << 19)));
    sg_tensor *loss = sg_sum_all(sg_mul(big, big));
    ck_assert_ptr_nonnull(small);
    ck_assert_ptr_nonnull(loss);
    sg_scope_end();
    scribble(100);
    ck_assert_ptr_null(sg_sum_all(big));
    ASSERT_STALE("sum_all");
    /* backward on a stale loss used to report a shape like (1091567616,...) */
    ck_assert_int_eq(sg_backward(loss, NULL), -1);
    ASSERT_STALE("backward");
    sg_scope_begin();
    ck_assert_ptr_null(sg_matmul(sg_ones(SG_DIMS(1, 8)), sg_reshape(small, SG_DIMS(8, 1))));
    ASSERT_STALE("reshape");
    sg_scope_end();
}
END_TEST

START_TEST(test_use_after_scope_model)
{
    sg_model *m = sg_model_new();
    sg_scope_begin();
    sg_tensor *t = sg_zeros(SG_DIMS(3));
    sg_scope_end();
    ck_assert_ptr_null(sg_model_add_param(m, "w", t, true));
    ASSERT_STALE("model_add_param");
    ck_assert_int_eq(sg_model_num_params(m, true), 0);
    /* nn's functions check their arguments the same way */
    sg_tensor *W = sg_ones(SG_DIMS(3, 2));
    ck_assert_ptr_null(sg_linear(t, W, NULL));
    ASSERT_STALE("linear");
    ck_assert_ptr_null(sg_softmax(t));
    ASSERT_STALE("softmax");
    sg_tensor_free(W);
    sg_model_free(m);
    /* a freed heap tensor is marked too (while its memory is not reused) */
    sg_tensor *p = sg_ones(SG_DIMS(2));
    ck_assert(sg_check_tensor("t", p));
    ck_assert(!sg_check_tensor("t", NULL));
    ck_assert_str_eq(sg_last_error(), "t: NULL input");
    sg_clear_error();
    sg_tensor_free(p);
}
END_TEST

START_TEST(test_kept_and_outer_tensors_stay_usable)
{
    /* the rule's other side: sg_keep'd values, outer-scope tensors and
     * persistent ones are never refused */
    sg_tensor *w = sg_param(sg_full(2.f, SG_DIMS(1)));
    sg_scope_begin();
    sg_tensor *outer = sg_full(5.f, SG_DIMS(1));
    sg_tensor *kept = NULL;
    for (int step = 0; step < 3; step++) {
        sg_scope_begin();
        sg_tensor *loss = sg_mul(sg_mul(w, w), outer);
        ck_assert_int_eq(sg_backward(loss, NULL), 0);
        kept = sg_keep(loss);
        sg_scope_end();
    }
    ck_assert_float_eq(sg_item(kept), 20.f);
    ck_assert_float_eq(sg_item(outer), 5.f);
    ck_assert_float_eq(sg_grad_data(w)[0], 3 * 20.f);
    ck_assert(!sg_has_error());
    sg_scope_end();
    sg_tensor_free(w);
}
END_TEST

static Suite *memory_suite(void)
{
    Suite *s = suite_create("memory");
    TCase *sc = tcase_create("scopes");
    tcase_add_checked_fixture(sc, setup, teardown);
    tcase_add_test(sc, test_scope_frees_temporaries);
    tcase_add_test(sc, test_nested_scopes_are_separate);
    tcase_add_test(sc, test_params_live_on);
    tcase_add_test(sc, test_keep);
    tcase_add_test(sc, test_create_graph_grads_outlive_scope);
    tcase_add_test(sc, test_persistent_graph);
    tcase_add_test(sc, test_tools_outside_scope);
    tcase_add_test(sc, test_release_memory);
    suite_add_tcase(s, sc);

    TCase *life = tcase_create("lifetime");
    tcase_add_checked_fixture(life, setup, teardown);
    tcase_add_test(life, test_use_after_scope_small);
    tcase_add_test(life, test_use_after_scope_large);
    tcase_add_test(life, test_use_after_scope_model);
    tcase_add_test(life, test_kept_and_outer_tensors_stay_usable);
    suite_add_tcase(s, life);

    TCase *train = tcase_create("training");
    tcase_add_checked_fixture(train, setup, teardown);
    tcase_set_timeout(train, 120);
    tcase_add_test(train, test_mlp_flat_footprint);
    suite_add_tcase(s, train);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(memory_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    sg_release_memory();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
