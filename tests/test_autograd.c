/*
 * test_autograd.c — Check suite "autograd": tensor creation and access, the
 * seeded generator, the NumPy-like printer, the dynamic graph (what records
 * and what does not), backward (seeds, accumulation, deep chains,
 * retain_graph), higher-order gradients (create_graph: second derivative,
 * Newton's method, a Hessian-vector product) and tracing (the book's shopping
 * graph, sg_trace, DOT export checked by Graphviz when it is installed).
 *
 * Expected numbers are hand-computed (derivatives of polynomials, the book's
 * shopping example from chapter 5) or, for the generator, pinned once: the
 * first values for seed 42 are what PCG32 as implemented gives, and a change
 * to them is a change of the library's reproducibility promise.
 */
#include "sg_autograd.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------- */
/* Fixture and helpers */

static void setup(void)
{
    sg_clear_error();
    sg_set_grad_enabled(true);
    sg_scope_begin();
}

static void teardown(void)
{
    while (sg_scope_depth() > 0)
        sg_scope_end();
    sg_set_grad_enabled(true);
}

#define TENSOR(data, ...) sg_from_data((const float[])data, SG_DIMS(__VA_ARGS__))
#define LIST(...) {__VA_ARGS__}

static void assert_values(const float *got, const float *want, size_t n, float tol)
{
    ck_assert_ptr_nonnull(got);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabsf(got[i] - want[i]) <= tol, "element %zu: got %.9g, expected %.9g", i,
                      (double)got[i], (double)want[i]);
}

/* What sg_print writes for x, as a malloc'd string. */
static char *print_str(const sg_tensor *x)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(mem);
    sg_print(mem, x);
    fclose(mem);
    return text;
}

static void assert_prints(const sg_tensor *x, const char *want)
{
    char *got = print_str(x);
    ck_assert_msg(strcmp(got, want) == 0, "sg_print wrote\n%s\nexpected\n%s", got, want);
    free(got);
}

/* ------------------------------------------------------------------------- */
/* Creation and access */

START_TEST(test_from_data_and_access)
{
    float src[6] = {1, 2, 3, 4, 5, 6};
    sg_tensor *x = sg_from_data(src, SG_DIMS(2, 3));
    ck_assert_ptr_nonnull(x);
    src[0] = 99.f; /* the tensor holds a copy */
    ck_assert_int_eq(sg_ndim(x), 2);
    ck_assert_int_eq(sg_shape(x)[0], 2);
    ck_assert_int_eq(sg_shape(x)[1], 3);
    ck_assert_int_eq(sg_dim(x, 0), 2);
    ck_assert_int_eq(sg_dim(x, -1), 3);
    ck_assert_int_eq(sg_dim(x, -2), 2);
    ck_assert_int_eq(sg_dim(x, 2), -1);
    ck_assert_int_eq(sg_dim(x, -3), -1);
    ck_assert_uint_eq(sg_size(x), 6);
    assert_values(sg_data(x), (const float[]){1, 2, 3, 4, 5, 6}, 6, 0.f);
    sg_data(x)[5] = -6.f; /* writable */
    ck_assert_float_eq(sg_data(x)[5], -6.f);
    char buf[32];
    ck_assert_str_eq(sg_shape_str(x, buf, sizeof buf), "(2,3)");
    ck_assert(!sg_requires_grad(x));
    ck_assert(!sg_has_history(x));
    ck_assert_str_eq(sg_op_name_of(x), "leaf");
    ck_assert_ptr_null(sg_grad(x));
    ck_assert_ptr_null(sg_grad_data(x));
    ck_assert_str_eq(sg_name(x), "");
    ck_assert_ptr_eq(sg_set_name(x, "weights"), x);
    ck_assert_str_eq(sg_name(x), "weights");
    sg_set_name(x, "a_name_much_longer_than_thirty_one_characters");
    ck_assert_uint_eq(strlen(sg_name(x)), 31);

    sg_tensor *s = sg_scalar(2.5f);
    ck_assert_int_eq(sg_ndim(s), 0);
    ck_assert_uint_eq(sg_size(s), 1);
    ck_assert_str_eq(sg_shape_str(s, buf, sizeof buf), "()");
    ck_assert_float_eq(sg_item(s), 2.5f);
    ck_assert_float_eq(sg_item(TENSOR(LIST(7.f), 1, 1)), 7.f); /* any one-element shape */
    ck_assert(!sg_has_error());

    ck_assert(sg_same_shape(x, sg_zeros(SG_DIMS(2, 3))));
    ck_assert(!sg_same_shape(x, sg_zeros(SG_DIMS(3, 2))));
    ck_assert(!sg_same_shape(x, sg_zeros(SG_DIMS(2, 3, 1))));
    ck_assert(!sg_same_shape(x, NULL));
}
END_TEST

START_TEST(test_zeros_ones_full)
{
    sg_tensor *z = sg_zeros(SG_DIMS(2, 2)), *o = sg_ones(SG_DIMS(3)), *f = sg_full(-1.5f, SG_DIMS(2, 1, 2));
    assert_values(sg_data(z), (const float[]){0, 0, 0, 0}, 4, 0.f);
    assert_values(sg_data(o), (const float[]){1, 1, 1}, 3, 0.f);
    assert_values(sg_data(f), (const float[]){-1.5f, -1.5f, -1.5f, -1.5f}, 4, 0.f);
    ck_assert_int_eq(sg_ndim(f), 3);
    ck_assert_int_eq(sg_dim(f, 1), 1);
    sg_tensor *zl = sg_zeros_like(f), *ol = sg_ones_like(f);
    ck_assert(sg_same_shape(zl, f) && sg_same_shape(ol, f));
    assert_values(sg_data(zl), (const float[]){0, 0, 0, 0}, 4, 0.f);
    assert_values(sg_data(ol), (const float[]){1, 1, 1, 1}, 4, 0.f);
    sg_tensor *e = sg_zeros(SG_DIMS(0, 3)); /* empty is allowed */
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(sg_size(e), 0);
    ck_assert_ptr_null(sg_zeros_like(NULL));
    /* empty: the shape, writable values, and the same checks on the shape */
    sg_tensor *u = sg_empty(SG_DIMS(3, 2));
    ck_assert_ptr_nonnull(u);
    ck_assert(sg_same_shape(u, sg_zeros(SG_DIMS(3, 2))));
    for (int i = 0; i < 6; i++)
        sg_data(u)[i] = (float)i;
    assert_values(sg_data(u), (const float[]){0, 1, 2, 3, 4, 5}, 6, 0.f);
    ck_assert(!sg_requires_grad(u));
    ck_assert_ptr_null(sg_empty(SG_DIMS(2, -1)));
    ck_assert(sg_has_error());
    sg_clear_error();
}
END_TEST

START_TEST(test_arange)
{
    sg_tensor *a = sg_arange(0.f, 5.f, 1.f);
    ck_assert_int_eq(sg_ndim(a), 1);
    ck_assert_int_eq(sg_dim(a, 0), 5);
    assert_values(sg_data(a), (const float[]){0, 1, 2, 3, 4}, 5, 0.f);
    sg_tensor *b = sg_arange(1.f, 2.f, 0.25f);
    ck_assert_int_eq(sg_dim(b, 0), 4);
    assert_values(sg_data(b), (const float[]){1.f, 1.25f, 1.5f, 1.75f}, 4, 0.f);
    sg_tensor *c = sg_arange(5.f, 0.f, -2.f);
    ck_assert_int_eq(sg_dim(c, 0), 3);
    assert_values(sg_data(c), (const float[]){5, 3, 1}, 3, 0.f);
    sg_tensor *d = sg_arange(0.f, 1.f, 0.3f); /* stop excluded, partial step counted */
    ck_assert_int_eq(sg_dim(d, 0), 4);
    ck_assert_float_eq_tol(sg_data(d)[3], 0.9f, 1e-6f);
    sg_tensor *e = sg_arange(3.f, 3.f, 1.f);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(sg_size(e), 0);
}
END_TEST

START_TEST(test_rng_pinned_seed_42)
{
    sg_rng r;
    sg_rng_seed(&r, 42);
    ck_assert_uint_eq(sg_rng_u32(&r), 3413346080u);
    ck_assert_uint_eq(sg_rng_u32(&r), 3508673569u);
    ck_assert_uint_eq(sg_rng_u32(&r), 3540666473u);
    ck_assert_uint_eq(sg_rng_u32(&r), 2418394718u);

    static const float uni[5] = {0.794731557f, 0.824375629f, 0.810134828f, 0.314645708f, 0.833492041f};
    sg_rng_seed(&r, 42);
    sg_tensor *u = sg_uniform(&r, 0.f, 1.f, SG_DIMS(5));
    for (int i = 0; i < 5; i++)
        ck_assert_float_eq(sg_data(u)[i], uni[i]); /* exact */

    static const float nor[5] = {0.305372834f, -0.256394535f, 0.574332952f, -0.991525173f, -0.378869742f};
    sg_rng_seed(&r, 42);
    sg_tensor *n = sg_normal(&r, 0.f, 1.f, SG_DIMS(5));
    for (int i = 0; i < 5; i++)
        ck_assert_float_eq(sg_data(n)[i], nor[i]);

    /* mean/std are applied to the same stream: 3 + 2 * z */
    sg_rng_seed(&r, 42);
    sg_tensor *m = sg_normal(&r, 3.f, 2.f, SG_DIMS(2));
    ck_assert_float_eq_tol(sg_data(m)[0], 3.f + 2.f * nor[0], 1e-6f);
    ck_assert_float_eq_tol(sg_data(m)[1], 3.f + 2.f * nor[1], 1e-6f);

    /* the default generator, reseeded, gives the same stream */
    sg_rng_seed(sg_default_rng(), 42);
    sg_tensor *d = sg_uniform(NULL, 0.f, 1.f, SG_DIMS(5));
    for (int i = 0; i < 5; i++)
        ck_assert_float_eq(sg_data(d)[i], uni[i]);
}
END_TEST

START_TEST(test_rng_same_seed_same_numbers)
{
    sg_rng a, b, c;
    sg_rng_seed(&a, 7);
    sg_rng_seed(&b, 7);
    sg_rng_seed(&c, 8);
    sg_tensor *x = sg_normal(&a, 0.f, 1.f, SG_DIMS(4, 5));
    sg_tensor *y = sg_normal(&b, 0.f, 1.f, SG_DIMS(4, 5));
    sg_tensor *z = sg_normal(&c, 0.f, 1.f, SG_DIMS(4, 5));
    ck_assert_int_eq(memcmp(sg_data(x), sg_data(y), 20 * sizeof(float)), 0);
    int same = 0;
    for (int i = 0; i < 20; i++)
        same += sg_data(x)[i] == sg_data(z)[i];
    ck_assert_int_eq(same, 0);
    /* the stream continues: a second draw differs from the first */
    sg_tensor *x2 = sg_normal(&a, 0.f, 1.f, SG_DIMS(4, 5));
    ck_assert_int_ne(memcmp(sg_data(x), sg_data(x2), 20 * sizeof(float)), 0);

    int counts[10] = {0};
    for (int i = 0; i < 10000; i++) {
        uint32_t k = sg_rng_below(&a, 10);
        ck_assert_uint_lt(k, 10);
        counts[k]++;
    }
    for (int k = 0; k < 10; k++) { /* 1000 expected, sd ~30 */
        ck_assert_int_gt(counts[k], 850);
        ck_assert_int_lt(counts[k], 1150);
    }
    for (int i = 0; i < 1000; i++) {
        double u = sg_rng_uniform(&a);
        ck_assert(u >= 0.0 && u < 1.0);
    }
}
END_TEST

static void moments(const sg_tensor *t, double *mean, double *sd, float *lo, float *hi)
{
    const float *d = sg_data((sg_tensor *)t);
    size_t n = sg_size(t);
    double s = 0, s2 = 0;
    *lo = INFINITY;
    *hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        s += d[i];
        s2 += (double)d[i] * d[i];
        *lo = d[i] < *lo ? d[i] : *lo;
        *hi = d[i] > *hi ? d[i] : *hi;
    }
    *mean = s / (double)n;
    *sd = sqrt(s2 / (double)n - *mean * *mean);
}

START_TEST(test_rng_statistics_100k)
{
    sg_rng r;
    sg_rng_seed(&r, 42);
    double mean, sd;
    float lo, hi;
    /* uniform [-1, 3): mean 1, sd 4/sqrt(12); sd of the mean ~0.004 */
    sg_tensor *u = sg_uniform(&r, -1.f, 3.f, SG_DIMS(100000));
    moments(u, &mean, &sd, &lo, &hi);
    ck_assert_double_eq_tol(mean, 1.0, 0.02);
    ck_assert_double_eq_tol(sd, 4.0 / sqrt(12.0), 0.01);
    ck_assert(lo >= -1.f && hi < 3.f);
    ck_assert(lo < -0.99f && hi > 2.99f);
    /* normal(2, 0.5): sd of the mean ~0.0016, of the sd ~0.0011 */
    sg_tensor *n = sg_normal(&r, 2.f, 0.5f, SG_DIMS(1000, 100));
    moments(n, &mean, &sd, &lo, &hi);
    ck_assert_double_eq_tol(mean, 2.0, 0.01);
    ck_assert_double_eq_tol(sd, 0.5, 0.006);
    size_t within = 0;
    for (size_t i = 0; i < sg_size(n); i++)
        within += fabsf(sg_data(n)[i] - 2.f) < 0.5f;
    ck_assert_double_eq_tol((double)within / 1e5, 0.6827, 0.01); /* the 68% rule */
}
END_TEST

START_TEST(test_copy)
{
    sg_tensor *p = sg_param(TENSOR(LIST(1, 2, 3), 3));
    sg_tensor *y = sg_mul_scalar(p, 2.f);
    sg_tensor *c = sg_copy(y);
    ck_assert_ptr_nonnull(c);
    ck_assert(sg_same_shape(c, y));
    assert_values(sg_data(c), (const float[]){2, 4, 6}, 3, 0.f);
    ck_assert(!sg_has_history(c));
    ck_assert(!sg_requires_grad(c));
    ck_assert_ptr_ne(sg_data(c), sg_data(y)); /* its own storage */
    sg_data(c)[0] = 100.f;
    ck_assert_float_eq(sg_data(y)[0], 2.f);
    ck_assert_ptr_null(sg_copy(NULL));
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Printer */

START_TEST(test_print_small)
{
    assert_prints(sg_scalar(3.f), "3.\n");
    assert_prints(sg_scalar(0.5f), "0.5\n");
    assert_prints(sg_arange(0.f, 4.f, 1.f), "[0. 1. 2. 3.]\n");
    assert_prints(TENSOR(LIST(1, 2, 3, 4), 2, 2), "[[1. 2.]\n [3. 4.]]\n");
    assert_prints(sg_reshape(sg_arange(0.f, 8.f, 1.f), SG_DIMS(2, 2, 2)),
                  "[[[0. 1.]\n  [2. 3.]]\n\n [[4. 5.]\n  [6. 7.]]]\n");
    assert_prints(sg_reshape(sg_arange(0.f, 6.f, 1.f), SG_DIMS(3, 1, 2)),
                  "[[[0. 1.]]\n\n [[2. 3.]]\n\n [[4. 5.]]]\n");
    assert_prints(TENSOR(LIST(0.5f, -1.25f, 1e-8f, 3.14159265f, -2.f, 1e6f), 6),
                  "[0.5 -1.25 1e-08 3.14159 -2. 1000000.]\n");
    assert_prints(TENSOR(LIST(NAN, INFINITY, -INFINITY), 3), "[nan inf -inf]\n");
    assert_prints(TENSOR(LIST(5.f), 1), "[5.]\n");
    assert_prints(sg_zeros(SG_DIMS(0, 3)), "[] shape (0,3)\n");
    assert_prints(NULL, "(null)\n");
}
END_TEST

START_TEST(test_print_elided)
{
    assert_prints(sg_arange(0.f, 2000.f, 1.f), "[0. 1. 2. ... 1997. 1998. 1999.]\n");
    assert_prints(sg_reshape(sg_arange(0.f, 2000.f, 1.f), SG_DIMS(1000, 2)),
                  "[[0. 1.]\n [2. 3.]\n [4. 5.]\n ...\n [1994. 1995.]\n [1996. 1997.]\n [1998. 1999.]]\n");
    /* 3-D: rows elided inside each block, blocks elided with blank lines */
    char *s = print_str(sg_reshape(sg_arange(0.f, 2000.f, 1.f), SG_DIMS(10, 10, 20)));
    ck_assert_msg(strncmp(s, "[[[0. 1. 2. ... 17. 18. 19.]\n  [20. 21. 22. ... 37. 38. 39.]\n", 61) == 0, "%s", s);
    ck_assert_msg(strstr(s, "  [40. 41. 42. ... 57. 58. 59.]\n  ...\n  [140. 141. 142. ... 157. 158. 159.]\n"),
                  "%s", s);
    ck_assert_msg(strstr(s, "599.]]\n\n ...\n\n [[1400. 1401. 1402. ... 1417. 1418. 1419.]\n"), "%s", s);
    ck_assert_msg(strstr(s, "[1980. 1981. 1982. ... 1997. 1998. 1999.]]]\n"), "%s", s);
    ck_assert_ptr_null(strstr(s, "[800.")); /* a hidden block */
    ck_assert_ptr_null(strstr(s, "\n \n")); /* no stray blank-with-space lines */
    free(s);
    /* exactly 1000 elements: printed in full */
    char *t = print_str(sg_arange(0.f, 1000.f, 1.f));
    ck_assert_ptr_null(strstr(t, "..."));
    ck_assert_ptr_nonnull(strstr(t, " 500. 501. "));
    free(t);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* The dynamic graph */

START_TEST(test_no_record_without_grad)
{
    sg_tensor *a = TENSOR(LIST(1, 2), 2), *b = TENSOR(LIST(3, 4), 2);
    sg_tensor *c = sg_exp(sg_mul(sg_add(a, b), b));
    ck_assert_ptr_nonnull(c);
    ck_assert(!sg_has_history(c));
    ck_assert(!sg_requires_grad(c));
    ck_assert_str_eq(sg_op_name_of(c), "leaf");

    sg_tensor *p = sg_param(TENSOR(LIST(1, 2), 2));
    ck_assert(sg_requires_grad(p));
    ck_assert(!sg_has_history(p)); /* a parameter is a leaf */
    sg_tensor *d = sg_add(a, p);
    ck_assert(sg_has_history(d));
    ck_assert(sg_requires_grad(d));
    ck_assert_str_eq(sg_op_name_of(d), "add");
    /* masks never carry a gradient */
    ck_assert(!sg_has_history(sg_gt(p, a)));
    ck_assert(!sg_has_history(sg_eq(p, p)));
    /* derived conveniences are made of primitives */
    ck_assert_str_eq(sg_op_name_of(sg_sqrt(p)), "pow");
    ck_assert_str_eq(sg_op_name_of(sg_square(p)), "pow");
    ck_assert_str_eq(sg_op_name_of(sg_rsub_scalar(1.f, p)), "add_scalar");
    ck_assert_str_eq(sg_op_name_of(sg_rdiv_scalar(1.f, p)), "mul_scalar");
    ck_assert_str_eq(sg_op_name_of(sg_mean_all(p)), "mul_scalar");
    ck_assert_str_eq(sg_op_name_of(sg_transpose(sg_reshape(p, SG_DIMS(1, 2)))), "permute");
    ck_assert_str_eq(sg_op_name_of(sg_flatten(sg_reshape(p, SG_DIMS(2, 1, 1)))), "reshape");
    /* requires_grad can be turned off on a leaf */
    sg_set_requires_grad(p, false);
    ck_assert(!sg_has_history(sg_add(a, p)));
}
END_TEST

START_TEST(test_no_grad_mode)
{
    sg_tensor *p = sg_param(TENSOR(LIST(1, 2), 2));
    ck_assert(sg_is_grad_enabled());
    ck_assert(sg_set_grad_enabled(false) == true);
    ck_assert(!sg_is_grad_enabled());
    sg_tensor *y = sg_mul(p, p);
    ck_assert_ptr_nonnull(y);
    assert_values(sg_data(y), (const float[]){1, 4}, 2, 0.f); /* still computes */
    ck_assert(!sg_has_history(y));
    ck_assert(!sg_requires_grad(y));
    ck_assert(sg_set_grad_enabled(true) == false);
    ck_assert(sg_has_history(sg_mul(p, p)));
    /* a value computed in no-grad mode cannot be differentiated */
    ck_assert_int_eq(sg_backward(sg_sum_all(y), NULL), -1);
    ck_assert_ptr_nonnull(strstr(sg_last_error(), "does not require a gradient"));
    ck_assert_ptr_null(sg_grad(p));
}
END_TEST

START_TEST(test_detach)
{
    sg_tensor *x = sg_param(TENSOR(LIST(3), 1));
    sg_tensor *y = sg_mul(x, x);
    sg_tensor *d = sg_detach(y);
    ck_assert(!sg_has_history(d));
    ck_assert(!sg_requires_grad(d));
    ck_assert_float_eq(sg_data(d)[0], 9.f);
    ck_assert_ptr_eq(sg_data(d), sg_data(y)); /* shares the values */
    /* gradient stops at the detached factor: d(x * detach(x))/dx = x, not 2x */
    sg_tensor *z = sg_mul(x, sg_detach(x));
    ck_assert_int_eq(sg_backward(sg_sum_all(z), NULL), 0);
    ck_assert_float_eq(sg_grad_data(x)[0], 3.f);
    /* an expression of detached values only records nothing */
    ck_assert(!sg_has_history(sg_exp(d)));
}
END_TEST

/* ------------------------------------------------------------------------- */
/* backward */

START_TEST(test_backward_scalar_seed)
{
    sg_tensor *x = sg_param(sg_scalar(2.f));
    sg_tensor *y = sg_mul_scalar(sg_mul(x, x), 3.f); /* 3x^2 */
    ck_assert_int_eq(sg_backward(y, NULL), 0);
    ck_assert_float_eq(sg_item(y), 12.f);
    ck_assert_float_eq(sg_grad_data(x)[0], 12.f); /* 6x */
    ck_assert_float_eq(sg_grad_data(y)[0], 1.f);  /* the seed */
    /* a one-element tensor of any rank counts as a scalar */
    sg_tensor *v = sg_param(TENSOR(LIST(5), 1, 1));
    ck_assert_int_eq(sg_backward(sg_mul(v, v), NULL), 0);
    ck_assert_float_eq(sg_grad_data(v)[0], 10.f);
}
END_TEST

START_TEST(test_backward_given_gradient)
{
    sg_tensor *x = sg_param(TENSOR(LIST(1, 2, 3, 4, 5, 6), 2, 3));
    sg_tensor *y = sg_mul(x, x);
    sg_tensor *seed = TENSOR(LIST(1, 0, -1, 2, 0.5f, 1), 2, 3);
    ck_assert_int_eq(sg_backward(y, &(sg_backward_opts){.grad = seed}), 0);
    assert_values(sg_grad_data(x), (const float[]){2, 0, -6, 16, 5, 12}, 6, 0.f);
    /* broadcasting sums back to each input's shape */
    sg_tensor *a = sg_param(TENSOR(LIST(1, 2, 3, 4, 5, 6), 2, 3)), *b = sg_param(TENSOR(LIST(10, 20, 30), 3));
    sg_tensor *s = sg_mul(a, b);
    ck_assert_int_eq(sg_backward(s, &(sg_backward_opts){.grad = sg_ones(SG_DIMS(2, 3))}), 0);
    assert_values(sg_grad_data(b), (const float[]){5, 7, 9}, 3, 0.f);
    assert_values(sg_grad_data(a), (const float[]){10, 20, 30, 10, 20, 30}, 6, 0.f);
    /* intermediate nodes keep their gradients too */
    sg_tensor *u = sg_param(sg_scalar(3.f));
    sg_tensor *mid = sg_add_scalar(u, 1.f);
    sg_tensor *out = sg_mul(mid, mid);
    ck_assert_int_eq(sg_backward(out, NULL), 0);
    ck_assert_float_eq(sg_grad_data(mid)[0], 8.f);
    ck_assert_float_eq(sg_grad_data(u)[0], 8.f);
}
END_TEST

START_TEST(test_backward_chain_100k)
{
    enum { N = 100000 };
    /* a chain of 100,000 scalings by 2 and 1/2: exact in float32 */
    sg_tensor *x = sg_param(sg_scalar(1.5f));
    sg_tensor *y = x;
    for (int i = 0; i < N; i++)
        y = sg_mul_scalar(y, i % 2 ? 0.5f : 2.f);
    ck_assert_ptr_nonnull(y);
    ck_assert_float_eq(sg_item(y), 1.5f);
    ck_assert_int_eq(sg_backward(y, NULL), 0);
    ck_assert_float_eq(sg_grad_data(x)[0], 1.f);

    /* y = x + x + ... (100,001 terms): x used 100,001 times */
    sg_tensor *w = sg_param(sg_scalar(1.f));
    sg_tensor *s = w;
    for (int i = 0; i < N; i++)
        s = sg_add(s, w);
    ck_assert_ptr_nonnull(s);
    ck_assert_float_eq(sg_item(s), (float)(N + 1));
    ck_assert_int_eq(sg_backward(s, NULL), 0);
    ck_assert_float_eq(sg_grad_data(w)[0], (float)(N + 1));
}
END_TEST

START_TEST(test_backward_accumulates)
{
    sg_tensor *x = sg_param(sg_scalar(3.f));
    ck_assert_int_eq(sg_backward(sg_mul(x, x), NULL), 0); /* x used twice */
    ck_assert_float_eq(sg_grad_data(x)[0], 6.f);
    sg_zero_grad(x);
    ck_assert_float_eq(sg_grad_data(x)[0], 0.f);
    ck_assert_int_eq(sg_backward(sg_add(x, x), NULL), 0);
    ck_assert_float_eq(sg_grad_data(x)[0], 2.f);
    /* across calls until zeroed */
    ck_assert_int_eq(sg_backward(sg_add(x, x), NULL), 0);
    ck_assert_float_eq(sg_grad_data(x)[0], 4.f);
    ck_assert_int_eq(sg_backward(sg_mul(x, x), NULL), 0);
    ck_assert_float_eq(sg_grad_data(x)[0], 10.f);
    sg_zero_grad(x);
    ck_assert_int_eq(sg_backward(sg_mul_scalar(x, 5.f), NULL), 0);
    ck_assert_float_eq(sg_grad_data(x)[0], 5.f);
    sg_zero_grad(NULL); /* harmless */
    /* a diamond: y = (x+1)*(x*2), dy/dx = 2(x*2)... = 4x + 2 */
    sg_tensor *v = sg_param(sg_scalar(3.f));
    ck_assert_int_eq(sg_backward(sg_mul(sg_add_scalar(v, 1.f), sg_mul_scalar(v, 2.f)), NULL), 0);
    ck_assert_float_eq(sg_grad_data(v)[0], 14.f);
}
END_TEST

START_TEST(test_retain_graph)
{
    sg_tensor *x = sg_param(sg_scalar(2.f));
    sg_tensor *y = sg_mul(sg_mul(x, x), x); /* x^3, dy/dx = 12 */
    ck_assert_int_eq(sg_backward(y, &(sg_backward_opts){.retain_graph = true}), 0);
    ck_assert_float_eq(sg_grad_data(x)[0], 12.f);
    ck_assert_int_eq(sg_backward(y, &(sg_backward_opts){.retain_graph = true}), 0);
    ck_assert_float_eq(sg_grad_data(x)[0], 24.f);
    ck_assert_int_eq(sg_backward(y, NULL), 0); /* releases */
    ck_assert_float_eq(sg_grad_data(x)[0], 36.f);
    ck_assert(!sg_has_error());
    ck_assert_int_eq(sg_backward(y, NULL), -1);
    ck_assert_msg(strstr(sg_last_error(), "already released") && strstr(sg_last_error(), "retain_graph"), "%s",
                  sg_last_error());
    ck_assert_float_eq(sg_grad_data(x)[0], 36.f); /* nothing added */
    sg_clear_error();
    /* a fresh graph on the same leaf works */
    ck_assert_int_eq(sg_backward(sg_mul(x, x), NULL), 0);
    ck_assert_float_eq(sg_grad_data(x)[0], 40.f);

    /* two losses sharing a subgraph h = x^2: each pass sends only its own
     * gradient through h (not what h's .grad holds from the pass before) */
    sg_tensor *u = sg_param(sg_scalar(3.f));
    sg_tensor *h = sg_mul(u, u);
    ck_assert_int_eq(sg_backward(sg_mul_scalar(h, 2.f), &(sg_backward_opts){.retain_graph = true}), 0);
    ck_assert_float_eq(sg_grad_data(u)[0], 12.f); /* 2 * 2u */
    ck_assert_int_eq(sg_backward(sg_mul_scalar(h, 3.f), NULL), 0);
    ck_assert_float_eq(sg_grad_data(u)[0], 30.f); /* + 3 * 2u */
    ck_assert_float_eq(sg_grad_data(h)[0], 5.f);  /* h's own gradient accumulated */
}
END_TEST

START_TEST(test_grad_of)
{
    sg_tensor *x = sg_param(TENSOR(LIST(1, 2), 2)), *w = sg_param(TENSOR(LIST(3, 4), 2));
    sg_tensor *unused = sg_param(sg_scalar(1.f));
    sg_tensor *y = sg_sum_all(sg_mul(x, w));
    sg_tensor *g[3];
    ck_assert_int_eq(sg_grad_of(y, (sg_tensor *[]){x, w, unused}, 3, g, NULL), 0);
    assert_values(sg_data(g[0]), (const float[]){3, 4}, 2, 0.f);
    assert_values(sg_data(g[1]), (const float[]){1, 2}, 2, 0.f);
    ck_assert(sg_same_shape(g[2], unused));
    ck_assert_float_eq(sg_item(g[2]), 0.f); /* not reached: zeros */
    ck_assert_ptr_null(sg_grad(x));          /* .grad untouched */
    ck_assert_ptr_null(sg_grad(w));
    /* and with existing gradients, they are kept as they were */
    ck_assert_int_eq(sg_backward(sg_sum_all(sg_mul(x, x)), NULL), 0);
    ck_assert_int_eq(sg_grad_of(sg_sum_all(sg_mul(x, w)), &x, 1, g, NULL), 0);
    assert_values(sg_data(g[0]), (const float[]){3, 4}, 2, 0.f);
    assert_values(sg_grad_data(x), (const float[]){2, 4}, 2, 0.f);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Higher order (create_graph) */

/* f(x) = x^4 - 2x^2 */
static sg_tensor *quartic(sg_tensor *x)
{
    return sg_sub(sg_pow(x, 4.f), sg_mul_scalar(sg_pow(x, 2.f), 2.f));
}

START_TEST(test_second_derivative)
{
    sg_tensor *x = sg_param(sg_scalar(2.f));
    sg_tensor *y = quartic(x);
    ck_assert_float_eq(sg_item(y), 8.f);
    ck_assert_int_eq(sg_backward(y, &(sg_backward_opts){.create_graph = true}), 0);
    sg_tensor *gx = sg_grad(x);
    ck_assert_float_eq(sg_item(gx), 24.f); /* 4x^3 - 4x */
    ck_assert(sg_has_history(gx));       /* the gradient is itself a graph */
    sg_zero_grad(x);
    ck_assert_int_eq(sg_backward(gx, &(sg_backward_opts){.create_graph = true}), 0);
    sg_tensor *gxx = sg_grad(x);
    ck_assert_float_eq(sg_item(gxx), 44.f); /* 12x^2 - 4 */
    sg_zero_grad(x);
    ck_assert_int_eq(sg_backward(gxx, NULL), 0);
    ck_assert_float_eq(sg_grad_data(x)[0], 48.f); /* third: 24x */

    /* the same with sg_grad_of */
    sg_tensor *x2 = sg_param(sg_scalar(2.f));
    sg_tensor *g1, *g2;
    ck_assert_int_eq(sg_grad_of(quartic(x2), &x2, 1, &g1, &(sg_backward_opts){.create_graph = true}), 0);
    ck_assert_int_eq(sg_grad_of(g1, &x2, 1, &g2, NULL), 0);
    ck_assert_float_eq(sg_item(g1), 24.f);
    ck_assert_float_eq(sg_item(g2), 44.f);
    ck_assert_ptr_null(sg_grad(x2));
}
END_TEST

START_TEST(test_newton)
{
    /* minimise x^4 - 2x^2 from x = 2: x <- x - f'(x) / f''(x) reaches 1 */
    sg_tensor *x = sg_param(sg_scalar(2.f));
    int steps = 0;
    while (fabsf(sg_item(x) - 1.f) >= 1e-4f && steps < 10) {
        sg_scope_begin();
        sg_tensor *g1, *g2;
        ck_assert_int_eq(sg_grad_of(quartic(x), &x, 1, &g1, &(sg_backward_opts){.create_graph = true}), 0);
        ck_assert_int_eq(sg_grad_of(g1, &x, 1, &g2, NULL), 0);
        sg_data(x)[0] -= sg_item(g1) / sg_item(g2);
        sg_scope_end();
        steps++;
    }
    ck_assert_msg(fabsf(sg_item(x) - 1.f) < 1e-4f, "x = %.7f after %d steps", (double)sg_item(x), steps);
    ck_assert_int_le(steps, 10);
    ck_assert_int_ge(steps, 4); /* 2 -> 1.4545 -> 1.1510 -> 1.0253 -> 1.0009 -> ... */
}
END_TEST

START_TEST(test_hessian_vector_product)
{
    /* f(x) = 1/2 x^T A x, grad = A x, Hessian = A: H v = A v */
    sg_tensor *A = TENSOR(LIST(2, 1, 0, 1, 3, -1, 0, -1, 4), 3, 3);
    sg_tensor *x = sg_param(TENSOR(LIST(1, -2, 0.5f), 3, 1));
    sg_tensor *v = TENSOR(LIST(0.5f, 1, -1), 3, 1);
    sg_tensor *f = sg_mul_scalar(sg_sum_all(sg_mul(x, sg_matmul(A, x))), 0.5f);
    ck_assert_float_eq_tol(sg_item(f), 6.5f, 1e-5f); /* x^T (A x) = 1*0 + (-2)(-5.5) + 0.5*4 = 13 */
    sg_tensor *g;
    ck_assert_int_eq(sg_grad_of(f, &x, 1, &g, &(sg_backward_opts){.create_graph = true}), 0);
    assert_values(sg_data(g), (const float[]){0, -5.5f, 4}, 3, 1e-5f); /* A x */
    sg_tensor *gv = sg_sum_all(sg_mul(g, v));
    sg_tensor *hv;
    ck_assert_int_eq(sg_grad_of(gv, &x, 1, &hv, NULL), 0);
    assert_values(sg_data(hv), (const float[]){2, 4.5f, -5}, 3, 1e-5f); /* A v */
    /* the same through backward into x's .grad */
    ck_assert_ptr_null(sg_grad(x));
    ck_assert_int_eq(sg_backward(gv, NULL), 0);
    assert_values(sg_grad_data(x), (const float[]){2, 4.5f, -5}, 3, 1e-5f);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Tracing: the book's shopping graph (chapter 5) */

typedef struct shop {
    sg_tensor *apple, *apple_num, *orange, *orange_num, *tax, *apple_price, *orange_price, *all, *price;
} shop;

static shop shopping(void)
{
    shop s;
    s.apple = sg_set_name(sg_param(sg_scalar(100.f)), "apple");
    s.apple_num = sg_set_name(sg_param(sg_scalar(2.f)), "apple_num");
    s.orange = sg_set_name(sg_param(sg_scalar(150.f)), "orange");
    s.orange_num = sg_set_name(sg_param(sg_scalar(3.f)), "orange_num");
    s.tax = sg_set_name(sg_param(sg_scalar(1.1f)), "tax");
    s.apple_price = sg_set_name(sg_mul(s.apple, s.apple_num), "apple_price");
    s.orange_price = sg_set_name(sg_mul(s.orange, s.orange_num), "orange_price");
    s.all = sg_set_name(sg_add(s.apple_price, s.orange_price), "all");
    s.price = sg_set_name(sg_mul(s.all, s.tax), "price");
    return s;
}

START_TEST(test_shopping)
{
    shop s = shopping();
    ck_assert_ptr_nonnull(s.price);
    ck_assert_float_eq_tol(sg_item(s.price), 715.f, 1e-3f);
    ck_assert_int_eq(sg_backward(s.price, NULL), 0);
    ck_assert_float_eq_tol(sg_grad_data(s.apple)[0], 2.2f, 1e-5f);
    ck_assert_float_eq_tol(sg_grad_data(s.apple_num)[0], 110.f, 1e-4f);
    ck_assert_float_eq_tol(sg_grad_data(s.orange)[0], 3.3f, 1e-5f);
    ck_assert_float_eq_tol(sg_grad_data(s.orange_num)[0], 165.f, 1e-4f);
    ck_assert_float_eq_tol(sg_grad_data(s.tax)[0], 650.f, 1e-4f);
    ck_assert_float_eq_tol(sg_grad_data(s.all)[0], 1.1f, 1e-6f);
}
END_TEST

/* The line of a trace that describes the node named `name`. */
static char *trace_line(const char *text, const char *name, char *out, size_t len)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p;) {
        const char *end = strchr(p, '\n');
        size_t l = end ? (size_t)(end - p) : strlen(p);
        if (strncmp(p, name, n) == 0 && p[n] == ' ') {
            snprintf(out, len, "%.*s", (int)l, p);
            return out;
        }
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

START_TEST(test_trace)
{
    shop s = shopping();
    ck_assert_int_eq(sg_backward(s.price, NULL), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    sg_trace(mem, s.price);
    fclose(mem);
    static const struct {
        const char *name, *what, *value, *grad;
    } want[] = {
        {"apple", "= param", "value 100 ", "grad 2.2"},
        {"apple_num", "= param", "value 2 ", "grad 110"},
        {"orange", "= param", "value 150 ", "grad 3.3"},
        {"orange_num", "= param", "value 3 ", "grad 165"},
        {"tax", "= param", "value 1.1 ", "grad 650"},
        {"apple_price", "= mul(apple, apple_num)", "value 200 ", "grad 1.1"},
        {"orange_price", "= mul(orange, orange_num)", "value 450 ", "grad 1.1"},
        {"all", "= add(apple_price, orange_price)", "value 650 ", "grad 1.1"},
        {"price", "= mul(all, tax)", "value 715 ", "grad 1"},
    };
    int lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq(lines, 9);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char line[256];
        ck_assert_msg(trace_line(text, want[i].name, line, sizeof line), "no line for %s in\n%s", want[i].name, text);
        ck_assert_msg(strstr(line, want[i].what), "%s: '%s' lacks '%s'", want[i].name, line, want[i].what);
        ck_assert_msg(strstr(line, want[i].value), "%s: '%s' lacks '%s'", want[i].name, line, want[i].value);
        ck_assert_msg(strstr(line, want[i].grad), "%s: '%s' lacks '%s'", want[i].name, line, want[i].grad);
    }
    /* topological: every input is listed before the node that uses it */
    ck_assert(strstr(text, "\napple_price") > strstr(text, "apple_num "));
    ck_assert(strstr(text, "\nprice ") > strstr(text, "\nall "));
    free(text);

    /* before backward a node shows no gradient */
    sg_tensor *u = sg_set_name(sg_param(sg_scalar(4.f)), "u");
    sg_tensor *w = sg_set_name(sg_mul_scalar(u, 2.f), "w");
    text = NULL;
    mem = open_memstream(&text, &len);
    sg_trace(mem, w);
    fclose(mem);
    char line[256];
    ck_assert_ptr_nonnull(trace_line(text, "w", line, sizeof line));
    ck_assert_msg(strstr(line, "= mul_scalar(u)") && strstr(line, "value 8 ") && strstr(line, "grad -"), "%s",
                  line);
    free(text);
}
END_TEST

START_TEST(test_backward_trace_option)
{
    shop s = shopping();
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    ck_assert_int_eq(sg_backward(s.price, &(sg_backward_opts){.trace = mem}), 0);
    fclose(mem);
    /* one line per op node, from the output back to the inputs */
    static const char *want[] = {
        "backward mul      price: dout = 1  ->  d all += 1.1, d tax += 650\n",
        "backward add      all: dout = 1.1  ->  d apple_price += 1.1, d orange_price += 1.1\n",
        "backward mul      apple_price: dout = 1.1  ->  d apple += 2.2, d apple_num += 110\n",
        "backward mul      orange_price: dout = 1.1  ->  d orange += 3.3, d orange_num += 165\n",
    };
    const char *at = text;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *hit = strstr(text, want[i]);
        ck_assert_msg(hit, "no line\n%sin\n%s", want[i], text);
        if (i < 2) { /* price first, then all; the two products in either order */
            ck_assert_msg(hit >= at, "line %zu out of order in\n%s", i, text);
            at = hit;
        }
    }
    int lines = 0;
    for (const char *p = text; *p; p++)
        lines += *p == '\n';
    ck_assert_int_eq(lines, 4);
    free(text);
}
END_TEST

static int count_substr(const char *s, const char *sub)
{
    int n = 0;
    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub))
        n++;
    return n;
}

START_TEST(test_write_dot)
{
    shop s = shopping();
    ck_assert_int_eq(sg_backward(s.price, NULL), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    ck_assert_int_eq(sg_write_dot(mem, s.price), 0);
    fclose(mem);
    ck_assert_msg(strncmp(text, "digraph", 7) == 0, "%s", text);
    ck_assert_msg(len >= 2 && strcmp(text + len - 2, "}\n") == 0, "%s", text);
    ck_assert_int_eq(count_substr(text, "{"), count_substr(text, "}"));
    /* one value node per tensor (9), one op node per op (4) */
    ck_assert_int_eq(count_substr(text, "shape=box"), 9);
    ck_assert_int_eq(count_substr(text, "shape=ellipse"), 4);
    /* an edge per input (4 ops x 2 inputs) and one from each op to its result */
    ck_assert_int_eq(count_substr(text, " -> op"), 8);
    ck_assert_int_eq(count_substr(text, " -> t"), 4);
    static const char *names[] = {"apple\\n", "apple_num\\n", "orange\\n", "orange_num\\n", "tax\\n",
                                  "apple_price\\n", "orange_price\\n", "all\\n", "price\\n"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        ck_assert_msg(strstr(text, names[i]), "no %s in\n%s", names[i], text);
    ck_assert_ptr_nonnull(strstr(text, "value 715"));
    ck_assert_ptr_nonnull(strstr(text, "grad 2.2"));
    ck_assert_ptr_nonnull(strstr(text, "label=\"mul\""));
    ck_assert_ptr_nonnull(strstr(text, "label=\"add\""));

    /* Graphviz must accept it */
    if (system("command -v dot >/dev/null 2>&1") != 0) {
        printf("test_write_dot: graphviz 'dot' not installed; skipped rendering the DOT output\n");
    } else {
        char path[] = "/tmp/sg_test_dot_XXXXXX";
        int fd = mkstemp(path);
        ck_assert_int_ge(fd, 0);
        FILE *f = fdopen(fd, "w");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        fclose(f);
        char cmd[256];
        snprintf(cmd, sizeof cmd, "dot -Tsvg '%s' -o /dev/null 2>/dev/null", path);
        int rc = system(cmd);
        unlink(path);
        ck_assert_msg(rc == 0, "dot -Tsvg rejected the output (status %d):\n%s", rc, text);
    }
    free(text);
}
END_TEST

/* ------------------------------------------------------------------------- */

static Suite *autograd_suite(void)
{
    Suite *s = suite_create("autograd");
    struct {
        const char *name;
        const TTest *tests[12];
    } cases[] = {
        {"creation",
         {test_from_data_and_access, test_zeros_ones_full, test_arange, test_rng_pinned_seed_42,
          test_rng_same_seed_same_numbers, test_rng_statistics_100k, test_copy}},
        {"printer", {test_print_small, test_print_elided}},
        {"graph", {test_no_record_without_grad, test_no_grad_mode, test_detach}},
        {"backward",
         {test_backward_scalar_seed, test_backward_given_gradient, test_backward_chain_100k,
          test_backward_accumulates, test_retain_graph, test_grad_of}},
        {"higher_order", {test_second_derivative, test_newton, test_hessian_vector_product}},
        {"trace", {test_shopping, test_trace, test_backward_trace_option, test_write_dot}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        TCase *tc = tcase_create(cases[c].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        for (int t = 0; t < 12 && cases[c].tests[t]; t++)
            tcase_add_test(tc, cases[c].tests[t]);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(autograd_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    sg_release_memory();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
