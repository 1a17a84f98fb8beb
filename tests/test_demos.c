/*
 * test_demos.c — smoke tests of the book's demos: each demo program is run
 * as a learner would run it (default flags, --no-plot unless a picture is
 * the point) and its output is checked against the numbers the book prints.
 *
 * The demos are found next to this test in the build tree: the directory of
 * /proc/self/exe, then ../demos/<name> (tests/ and demos/ are siblings in a
 * meson build dir); failing that, demos/<name> from the working directory
 * (meson test runs in the build root). The tutorial's listings
 * (docs/examples/<name>.c, built as docs/examples/tut_<name>) are checked the same
 * way, and docs/tutorial.md must show each file verbatim.
 *
 * Tolerances: the book computes in float64 with NumPy; the engine in
 * float32. Where a demo computes in float64 as the book does (ch04's
 * numerical derivatives and gradient descent), the printed digits must be the
 * book's (to 1e-8 relative for numbers printed with 9 digits); float32
 * results agree to 1e-6 absolute (a few units of float32's last place for
 * values near 1) unless stated. Training runs are checked for the book's
 * findings (which method wins, what is learned) with margins that allow for
 * the small run-to-run differences of threaded sums.
 *
 * The demos load Fashion-MNIST from Debian's dataset-fashion-mnist
 * (.ci/deps.sh installs it).
 */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sg_autograd.h"

#ifndef SG_SOURCE_ROOT
#define SG_SOURCE_ROOT "."
#endif

/* ------------------------------------------------------------------------- */
/* Running a demo and reading its output */

static char build_root[PATH_MAX + 16]; /* the meson build directory */

static void find_build_root(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0'; /* <build>/tests */
            snprintf(build_root, sizeof build_root, "%s/..", exe);
            char probe[PATH_MAX + 48];
            snprintf(probe, sizeof probe, "%s/demos/ch02_perceptron", build_root);
            if (access(probe, X_OK) == 0)
                return;
        }
    }
    snprintf(build_root, sizeof build_root, ".");
}

typedef struct run {
    char *out;  /* stdout and stderr of the demo, NUL-terminated */
    int status; /* exit status, or -1 if it did not exit normally */
} run;

/* Run <build>/<path> with args; the caller frees r.out. */
static run run_program(const char *path, const char *args)
{
    if (!build_root[0])
        find_build_root();
    char cmd[PATH_MAX + 600];
    snprintf(cmd, sizeof cmd, "'%s/%s' %s 2>&1", build_root, path, args);
    fflush(NULL);
    FILE *p = popen(cmd, "r");
    ck_assert_msg(p != NULL, "cannot run %s", cmd);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (cap - len < 4096) {
            cap *= 2;
            buf = realloc(buf, cap);
            ck_assert_ptr_nonnull(buf);
        }
    }
    buf[len] = '\0';
    int st = pclose(p);
    run r = {buf, WIFEXITED(st) ? WEXITSTATUS(st) : -1};
    return r;
}

/* Run demos/<name> with args. */
static run run_demo(const char *name, const char *args)
{
    char path[256];
    snprintf(path, sizeof path, "demos/%s", name);
    return run_program(path, args);
}

/* Run and require exit status 0; prints the output on failure. */
static char *run_ok(const char *name, const char *args)
{
    run r = run_demo(name, args);
    ck_assert_msg(r.status == 0, "%s %s exited with %d:\n%s", name, args, r.status, r.out);
    return r.out;
}

/* The text right after the first occurrence of key (the test fails if the
 * key is missing). */
static const char *after(const char *out, const char *key)
{
    const char *p = strstr(out, key);
    ck_assert_msg(p != NULL, "output lacks \"%s\":\n%s", key, out);
    return p + strlen(key);
}

/* The number right after key. */
static double num_after(const char *out, const char *key)
{
    const char *p = after(out, key);
    char *end;
    double v = strtod(p, &end);
    ck_assert_msg(end != p, "no number after \"%s\"", key);
    return v;
}

/* n numbers after key, separated by spaces, commas, brackets, '|' or '%'. */
static void nums_after(const char *out, const char *key, double *v, int n)
{
    const char *p = after(out, key);
    for (int i = 0; i < n; i++) {
        while (*p && strchr(" ,[]|%\n", *p))
            p++;
        char *end;
        v[i] = strtod(p, &end);
        ck_assert_msg(end != p, "number %d after \"%s\" missing: %.40s", i, key, p);
        p = end;
    }
}

static void assert_near(double got, double want, double tol, const char *what)
{
    ck_assert_msg(fabs(got - want) <= tol, "%s: got %.10g, want %.10g (tolerance %g)", what, got, want, tol);
}

static void assert_rel(double got, double want, double rel, const char *what)
{
    ck_assert_msg(fabs(got - want) <= rel * fabs(want), "%s: got %.12g, want %.12g (relative %g)", what, got,
                  want, rel);
}

static bool has(const char *out, const char *s)
{
    return strstr(out, s) != NULL;
}

/* ------------------------------------------------------------------------- */
/* The common flags */

START_TEST(test_flags)
{
    run r = run_demo("ch02_perceptron", "--help");
    ck_assert_int_eq(r.status, 0);
    ck_assert(has(r.out, "usage:") && has(r.out, "--full") && has(r.out, "--no-plot"));
    char want[64]; /* the kernels in use, named */
    snprintf(want, sizeof want, "kernels: %s on ", sg_isa_name(sg_isa_active()));
    ck_assert_msg(has(r.out, want) && has(r.out, "SG_ISA="), "--help:\n%s", r.out);
    free(r.out);
    r = run_demo("shopping", "--help"); /* takes a file name, not the common flags */
    ck_assert_int_eq(r.status, 0);
    ck_assert_msg(has(r.out, "usage:") && has(r.out, want), "shopping --help:\n%s", r.out);
    free(r.out);
    r = run_demo("ch02_perceptron", "--bogus");
    ck_assert_int_eq(r.status, 2);
    ck_assert(has(r.out, "unknown flag '--bogus'"));
    free(r.out);
}
END_TEST

/* With gnuplot, a picture is written where --out says; without it, the
 * demo says so and still succeeds. */
START_TEST(test_picture)
{
    char dir[] = "/tmp/sg_demo_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char args[128], png[192];
    snprintf(args, sizeof args, "--out %s", dir);
    snprintf(png, sizeof png, "%s/activations.png", dir);
    char *out = run_ok("ch03_forward", args);
    if (system("command -v gnuplot >/dev/null 2>&1") == 0) {
        ck_assert_msg(has(out, "picture written to"), "%s", out);
        FILE *f = fopen(png, "rb");
        ck_assert_msg(f != NULL, "no %s", png);
        unsigned char sig[8] = {0};
        ck_assert_int_eq(fread(sig, 1, 8, f), 8);
        fclose(f);
        ck_assert(memcmp(sig, "\x89PNG\r\n\x1a\n", 8) == 0);
        struct stat st;
        ck_assert(stat(png, &st) == 0 && st.st_size > 2000);
    } else {
        ck_assert(has(out, "gnuplot is not installed: no picture"));
    }
    unlink(png);
    rmdir(dir);
    free(out);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Chapter 2: perceptrons */

START_TEST(test_ch02_gates)
{
    char *out = run_ok("ch02_perceptron", "--no-plot");
    const char *lines[] = {"AND(0, 0) = 0",  "AND(1, 0) = 0",  "AND(0, 1) = 0",  "AND(1, 1) = 1",
                           "NAND(0, 0) = 1", "NAND(1, 0) = 1", "NAND(0, 1) = 1", "NAND(1, 1) = 0",
                           "OR(0, 0) = 0",   "OR(1, 0) = 1",   "OR(0, 1) = 1",   "OR(1, 1) = 1",
                           "XOR(0, 0): s1 = 1, s2 = 0, y = 0", "XOR(1, 0): s1 = 1, s2 = 1, y = 1",
                           "XOR(0, 1): s1 = 1, s2 = 1, y = 1", "XOR(1, 1): s1 = 0, s2 = 1, y = 0"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        ck_assert_msg(has(out, lines[i]), "missing \"%s\" in\n%s", lines[i], out);
    ck_assert(has(out, "AND: w = (0.5, 0.5), b = -0.7"));
    ck_assert(has(out, "NAND: w = (-0.5, -0.5), b = 0.7"));
    ck_assert(has(out, "OR: w = (0.5, 0.5), b = -0.2"));
    ck_assert(!has(out, ": NO"));
    /* No single perceptron on the grid computes XOR; AND and NAND are
     * mirror images, so as many settings compute each. */
    ck_assert_int_eq((int)num_after(out, "settings that compute XOR :"), 0);
    int n_and = (int)num_after(out, "settings that compute AND :");
    ck_assert_int_gt(n_and, 0);
    ck_assert_int_eq((int)num_after(out, "settings that compute NAND:"), n_and);
    ck_assert_int_gt((int)num_after(out, "settings that compute OR  :"), 0);
    free(out);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Chapter 3: the forward pass */

START_TEST(test_ch03_forward)
{
    char *out = run_ok("ch03_forward", "--no-plot");
    double v[3];
    nums_after(out, "step(x)    = ", v, 3);
    ck_assert(v[0] == 0 && v[1] == 1 && v[2] == 1);
    nums_after(out, "sigmoid(x) = ", v, 3);
    const double sig[3] = {0.26894142, 0.73105858, 0.88079708};
    for (int i = 0; i < 3; i++)
        assert_near(v[i], sig[i], 1e-6, "sigmoid");
    nums_after(out, "relu(x)    = ", v, 3);
    ck_assert(v[0] == 0 && v[1] == 1 && v[2] == 2);
    nums_after(out, "[[1 3 5] [2 4 6]] = ", v, 3);
    ck_assert(v[0] == 5 && v[1] == 11 && v[2] == 17);
    nums_after(out, "Z1 = sigmoid(A1) = ", v, 3);
    const double z1[3] = {0.57444252, 0.66818777, 0.75026011};
    for (int i = 0; i < 3; i++)
        assert_near(v[i], z1[i], 1e-6, "Z1");
    nums_after(out, "y = forward(network, [1.0 0.5]) = ", v, 2);
    assert_near(v[0], 0.31682708, 1e-6, "y[0]");
    assert_near(v[1], 0.69627909, 1e-6, "y[1]");
    nums_after(out, "softmax([0.3 2.9 4.0]) = ", v, 3);
    const double sm[3] = {0.01821127, 0.24519181, 0.73659691};
    for (int i = 0; i < 3; i++)
        assert_near(v[i], sm[i], 1e-6, "softmax");
    assert_near(num_after(out, "sum = "), 1.0, 1e-6, "sum of softmax");
    nums_after(out, "naive  exp(a)/sum(exp(a))         = ", v, 3);
    ck_assert(isnan(v[0]) && isnan(v[1]) && isnan(v[2]));
    nums_after(out, "stable exp(a-max)/sum(exp(a-max)) = ", v, 3);
    assert_near(v[0], 9.99954600e-01, 1e-6, "stable softmax[0]");
    assert_rel(v[1], 4.53978686e-05, 1e-5, "stable softmax[1]");
    assert_rel(v[2], 2.06106005e-09, 1e-5, "stable softmax[2]");
    ck_assert(has(out, "X (100,784) @ W1 (784,50) -> (100,50) @ W2 (50,100) -> (100,100) @ W3 (100,10) -> "
                       "Y (100,10)"));
    free(out);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Chapter 4: learning */

/* ch04 runs once, in an unchecked fixture (in the parent process, so its
 * output reaches every forked test), for the three tests below. */
static run ch04_run;

static void ch04_setup(void)
{
    ch04_run = run_demo("ch04_learning", "--no-plot");
}

static void ch04_teardown(void)
{
    free(ch04_run.out);
    ch04_run.out = NULL;
}

static const char *ch04(void)
{
    ck_assert_msg(ch04_run.status == 0, "ch04_learning exited with %d:\n%s", ch04_run.status, ch04_run.out);
    return ch04_run.out;
}

START_TEST(test_ch04_losses_and_derivatives)
{
    const char *out = ch04();
    assert_near(num_after(out, "mean squared error, right guess:"), 0.0975, 1e-7, "MSE right");
    assert_near(num_after(out, "mean squared error, wrong guess:"), 0.5975, 1e-7, "MSE wrong");
    assert_near(num_after(out, "cross-entropy error, right guess:"), 0.51082545709933802, 1e-6, "CE right");
    assert_near(num_after(out, "cross-entropy error, wrong guess:"), 2.3025840929945458, 1e-6, "CE wrong");
    /* float64, the book's code: the book's digits exactly */
    ck_assert(has(out, "numerical_diff(f, 5)  = 0.1999999999990898 "));
    ck_assert(has(out, "numerical_diff(f, 10) = 0.2999999999986347 "));
    double g[2];
    nums_after(out, "at (3, 4): numerical ", g, 2);
    assert_near(g[0], 6, 1e-9, "grad at (3,4)");
    assert_near(g[1], 8, 1e-9, "grad at (3,4)");
    nums_after(out, "at (0, 2): numerical ", g, 2);
    assert_near(g[0], 0, 1e-9, "grad at (0,2)");
    assert_near(g[1], 4, 1e-9, "grad at (0,2)");
    nums_after(out, "at (3, 0): numerical ", g, 2);
    assert_near(g[0], 6, 1e-9, "grad at (3,0)");
    assert_near(g[1], 0, 1e-9, "grad at (3,0)");
    ck_assert(has(out, "at (3, 4): numerical [6.00000000000378, 7.999999999999119], backward [6, 8]"));
    ck_assert(has(out, "at (0, 2): numerical [0, 4.000000000004], backward [0, 4]"));
    ck_assert(has(out, "backward [6, 0]"));
}
END_TEST

START_TEST(test_ch04_gradient_descent)
{
    const char *out = ch04();
    double x[2];
    nums_after(out, "lr = 0.1    numerical (float64): ", x, 2);
    assert_rel(x[0], -6.11110793e-10, 1e-8, "lr 0.1 x0");
    assert_rel(x[1], 8.14814391e-10, 1e-8, "lr 0.1 x1");
    nums_after(after(out, "lr = 0.1 "), "backward  (float32): ", x, 2);
    assert_rel(x[0], -3 * pow(0.8, 100), 1e-5, "lr 0.1 backward x0"); /* x <- 0.8 x */
    assert_rel(x[1], 4 * pow(0.8, 100), 1e-5, "lr 0.1 backward x1");
    nums_after(out, "lr = 10     numerical (float64): ", x, 2);
    assert_rel(x[0], -2.58983747e+13, 1e-8, "lr 10 x0");
    assert_rel(x[1], -1.29524862e+12, 1e-8, "lr 10 x1");
    nums_after(after(out, "lr = 10 "), "backward  (float32): ", x, 2);
    ck_assert(isnan(x[0]) && isnan(x[1])); /* -19x per step overflows */
    nums_after(out, "lr = 1e-10  numerical (float64): ", x, 2);
    assert_rel(x[0], -2.99999994, 1e-8, "lr 1e-10 x0");
    assert_rel(x[1], 3.99999992, 1e-8, "lr 1e-10 x1");
}
END_TEST

START_TEST(test_ch04_networks)
{
    const char *out = ch04();
    double p[3], dw[6];
    nums_after(out, "p = x W = ", p, 3);
    const double book_p[3] = {1.05414809, 0.63071653, 1.1328074};
    for (int i = 0; i < 3; i++)
        assert_near(p[i], book_p[i], 1e-6, "simpleNet p");
    assert_near(num_after(out, "\nloss = "), 0.92806853663411326, 1e-6, "simpleNet loss");
    nums_after(out, "dW = ", dw, 3);
    nums_after(after(out, "dW = "), "\n", dw + 3, 3);
    const double book_dw[6] = {0.21924763, 0.14356247, -0.36281009, 0.32887144, 0.2153437, -0.54421514};
    for (int i = 0; i < 6; i++) /* the book's dW is numerical (h = 1e-4): ~1e-8 off the exact one */
        assert_near(dw[i], book_dw[i], 2e-6, "simpleNet dW");

    /* numerical gradients of the two-layer net agree with backward ... */
    const char *names[4] = {"  W1: ", "  b1: ", "  W2: ", "  b2: "};
    const char *cmp = after(out, "mean |numerical - backward| per parameter");
    for (int k = 0; k < 4; k++)
        ck_assert_msg(num_after(cmp, names[k]) < 1e-4, "%s%g", names[k], num_after(cmp, names[k]));
    ck_assert_msg(num_after(out, "differ by at most ") < 1e-4, "nets trained both ways differ");
    /* ... and backward is much faster */
    double ratio = num_after(out, "backward is ");
    ck_assert_msg(ratio > 100, "speed ratio %g", ratio);
    /* 1000 steps of training lift the test accuracy from chance (0.1) */
    double first = num_after(after(out, "step     0:"), "test acc ");
    double last = num_after(after(out, "step   999:"), "test acc ");
    ck_assert_msg(first < 0.2 && last > 0.65, "test accuracy %g -> %g", first, last);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Chapter 5: the gradient check */

START_TEST(test_ch05_gradcheck)
{
    char *out = run_ok("ch05_gradcheck", "--no-plot");
    /* float32: with h = 1e-2 every mean difference is below 1e-4 */
    double row[4];
    nums_after(out, "\n0.01 ", row, 4);
    for (int k = 0; k < 4; k++)
        ck_assert_msg(row[k] < 1e-4 && row[k] > 0, "h = 1e-2, parameter %d: %g", k, row[k]);
    /* with h = 1e-4 rounding dominates: a larger difference than with 1e-2 */
    double row4[4];
    nums_after(out, "\n0.0001 ", row4, 4);
    for (int k = 0; k < 4; k++)
        ck_assert_msg(row4[k] > row[k], "h = 1e-4 should be worse than 1e-2 in float32 (%d)", k);
    ck_assert(has(out, "gradcheck passed"));
    ck_assert(num_after(out, "weights: ") < 1e-3);
    free(out);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Beyond the book: a user-defined primitive (swish), traced and checked */

START_TEST(test_custom_op)
{
    char *out = run_ok("custom_op", "--no-plot");
    ck_assert(has(out, "y            = swish(x)  #2 (6)"));   /* recorded under its name */
    ck_assert(has(out, "label=\"swish\"];"));                 /* and drawn */
    ck_assert(has(out, "1. backward s + x s (1 - s)       : passed"));
    ck_assert(has(out, "2. backward s + x s (wrong)       : FAILED"));
    ck_assert(has(out, "second derivative of 1. (sg_gradgradcheck): passed"));
    /* the forward's values and backward's gradient at x = 3 */
    double s3 = 1 / (1 + exp(-3.0));
    const char *y = after(out, "swish(x)  #2 (6)  value [");
    double v[6];
    nums_after(y, "", v, 6);
    assert_near(v[5], 3 * s3, 5e-6, "swish(3)"); /* the trace prints 6 digits */
    nums_after(after(out, "x            = param"), "grad [", v, 6);
    assert_near(v[5], s3 + 3 * s3 * (1 - s3), 5e-6, "swish'(3)");
    /* the wrong backward is worst at x = 3 (index 5): 4 s(3) against the
     * true s + 3 s (1 - s) */
    const char *rep = after(out, "2. backward");
    ck_assert(has(rep, "worst at input 0 index 5"));
    assert_near(num_after(rep, "analytic "), 4 * s3, 1e-5, "wrong derivative at 3");
    assert_near(num_after(rep, "numeric "), s3 + 3 * s3 * (1 - s3), 1e-3, "true derivative at 3");
    free(out);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Beyond the book: Newton, Hessian-vector products, gradcheck */

START_TEST(test_beyond_newton)
{
    char *out = run_ok("beyond_newton", "--no-plot");
    /* DeZero's float64 iterates; float32 agrees to its precision */
    const double dezero[7] = {2.0, 1.4545454545454546, 1.1510467893775467, 1.0253259289766978,
                              1.0009084519430513, 1.0000010332706836, 1.0000000000013324};
    for (int i = 0; i < 7; i++) {
        char key[32];
        snprintf(key, sizeof key, "step %d: x = ", i);
        assert_near(num_after(out, key), dezero[i], 3e-7, key);
    }
    ck_assert(has(out, "the minimum x = 1 is reached after 6 steps"));
    assert_near(num_after(out, "step 0: x = 2          f'(x) = "), 24, 0, "f'(2)");
    assert_near(num_after(after(out, "step 0:"), "f''(x) = "), 44, 0, "f''(2)");
    double v[3];
    nums_after(out, "grad f(x)       = ", v, 3);
    ck_assert(v[0] == 1 && v[1] == 0 && v[2] == 7);
    nums_after(out, "H v (backward)  = ", v, 3);
    ck_assert(v[0] == 2 && v[1] == 1.5 && v[2] == -7); /* A v */
    ck_assert(has(out, "1. composed of primitives           : passed"));
    ck_assert(has(out, "2. sigmoid's input detached         : FAILED"));
    ck_assert(has(out, "3. derivative by hand, s + x s (1-s): passed"));
    ck_assert(has(out, "4. by hand, factor (1 - s) missing  : FAILED"));
    /* the wrong derivative is worst at x = 3: s + x s = 4 s(3) instead of
     * s + x s (1 - s), with s = sigmoid(3) */
    double s = 1 / (1 + exp(-3.0));
    const char *rep = after(out, "4. by hand");
    assert_near(num_after(rep, "analytic "), 4 * s, 1e-4, "wrong derivative at 3");
    assert_near(num_after(rep, "numeric "), s + 3 * s * (1 - s), 1e-3, "true derivative at 3");
    ck_assert(has(out, "(sg_gradgradcheck): passed"));
    free(out);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Chapter 6: optimizers, initial weights, batch norm, overfitting, search */

START_TEST(test_ch06_optimizers)
{
    char *out = run_ok("ch06_optimizers", "--no-plot");
    /* float64 references from the book's optimizer code (optimizer.py) run
     * on x^2/20 + y^2 for 30 steps; the engine computes in float32 and puts
     * Adam's eps slightly differently (PyTorch's way): tolerances to match */
    struct {
        const char *key;
        double x, y, tol;
    } ref[4] = {{"SGD      (lr 0.95): (x, y) after 30 steps = ", -0.3503929957523197, 0.0847823165504322, 1e-5},
                {"Momentum (lr 0.1 ): (x, y) after 30 steps = ", 0.896413858493733, 0.08808560171506971, 2e-5},
                {"AdaGrad  (lr 1.5 ): (x, y) after 30 steps = ", -0.12016232231416045, 2.486389893984459e-17, 1e-5},
                {"Adam     (lr 0.3 ): (x, y) after 30 steps = ", 0.13600685239498186, 0.31824537553721943, 1e-4}};
    for (int k = 0; k < 4; k++) {
        double v[2];
        char key[96];
        snprintf(key, sizeof key, "%s(", ref[k].key);
        nums_after(out, key, v, 2);
        assert_near(v[0], ref[k].x, ref[k].tol, ref[k].key);
        assert_near(v[1], ref[k].y, ref[k].tol, ref[k].key);
    }
    /* on Fashion-MNIST, plain SGD is clearly the slowest (fig. 6-9) */
    const char *tail = after(out, "mean loss over the last");
    double sgd = num_after(tail, "SGD "), mom = num_after(tail, "Momentum "), ada = num_after(tail, "AdaGrad "),
           adam = num_after(tail, "Adam ");
    ck_assert_msg(sgd > fmax(mom, fmax(ada, adam)) + 0.1, "SGD %g, Momentum %g, AdaGrad %g, Adam %g", sgd, mom,
                  ada, adam);
    ck_assert_msg(fmax(mom, fmax(ada, adam)) < 0.6 && sgd < 1.2, "losses did not fall");
    free(out);
}
END_TEST

START_TEST(test_ch06_init)
{
    char *out = run_ok("ch06_init", "--no-plot");
    double v[10]; /* std, share, std, share, ... for layers 1..5 */
    nums_after(out, "sigmoid, std 1     |", v, 10);
    for (int l = 0; l < 5; l++) /* saturated at 0 and 1 (fig. 6-10) */
        ck_assert_msg(v[2 * l] > 0.4 && v[2 * l + 1] >= 40, "sigmoid std 1, layer %d: %g %g", l + 1, v[2 * l],
                      v[2 * l + 1]);
    nums_after(out, "sigmoid, std 0.01  |", v, 10);
    for (int l = 0; l < 5; l++) /* all near 0.5 (fig. 6-11) */
        ck_assert_msg(v[2 * l] < 0.03 && v[2 * l + 1] == 0, "sigmoid std 0.01, layer %d", l + 1);
    nums_after(out, "sigmoid, Xavier    |", v, 10);
    for (int l = 0; l < 5; l++) /* spread (fig. 6-13) */
        ck_assert_msg(v[2 * l] > 0.05 && v[2 * l] < 0.3 && v[2 * l + 1] == 0, "sigmoid Xavier, layer %d", l + 1);
    nums_after(out, "relu, std 0.01     |", v, 10);
    ck_assert_msg(v[8] < 1e-3, "relu std 0.01 layer 5 std %g", v[8]);
    nums_after(out, "relu, Xavier       |", v, 10);
    ck_assert_msg(v[8] < v[0] / 2, "relu Xavier: layer 5 std %g vs layer 1 %g", v[8], v[0]);
    nums_after(out, "relu, He           |", v, 10);
    ck_assert_msg(v[8] > 0.7 * v[0] && v[8] < 1.3 * v[0], "relu He: layer 5 std %g vs layer 1 %g", v[8], v[0]);
    for (int l = 0; l < 5; l++) /* half of the relu outputs are 0 */
        ck_assert_msg(v[2 * l + 1] > 40 && v[2 * l + 1] < 60, "relu zeros %g%%", v[2 * l + 1]);
    /* std 0.01 does not learn; He learns fastest (fig. 6-15) */
    const char *last = after(out, "iteration  499:");
    double s001 = num_after(last, "std=0.01 "), xavier = num_after(last, "Xavier "), he = num_after(last, "He ");
    ck_assert_msg(s001 > 2.2 && xavier < 2.0 && he < 1.0, "losses std=0.01 %g, Xavier %g, He %g", s001, xavier, he);
    free(out);
}
END_TEST

START_TEST(test_ch06_batchnorm)
{
    char *out = run_ok("ch06_batchnorm", "--no-plot");
    const char *p = out;
    int rows = 0, bn_wins = 0;
    double best_bn = 0;
    while ((p = strstr(p, "\nscale ")) != NULL) {
        p += 7;
        double scale = strtod(p, NULL), bn = num_after(p, "batch norm "), plain = num_after(p, "without ");
        best_bn = fmax(best_bn, bn);
        if (scale < 0.05) { /* small initial weights: without batch norm nothing is learned */
            ck_assert_msg(plain < 0.2 && bn > plain + 0.2, "scale %g: batch norm %g, without %g", scale, bn, plain);
            bn_wins++;
        }
        rows++;
    }
    ck_assert_int_eq(rows, 6);
    ck_assert_int_eq(bn_wins, 4);
    ck_assert_msg(best_bn > 0.9, "best accuracy with batch norm %g", best_bn);
    free(out);
}
END_TEST

START_TEST(test_ch06_overfit)
{
    char *out = run_ok("ch06_overfit", "--no-plot");
    double plain_train = num_after(out, "no regularisation: final train acc ");
    double plain_gap = num_after(after(out, "no regularisation: final"), "gap ");
    double wd_gap = num_after(after(out, "weight decay 0.1: final"), "gap ");
    double drop_gap = num_after(after(out, "dropout 0.2: final"), "gap ");
    /* the net memorises its 300 images (fig. 6-20) ... */
    ck_assert_msg(plain_train > 0.85 && plain_gap > 0.1, "train acc %g, gap %g", plain_train, plain_gap);
    /* ... and both cures narrow the gap (figs. 6-21, 6-23) */
    ck_assert_msg(wd_gap < plain_gap - 0.05, "weight decay gap %g vs %g", wd_gap, plain_gap);
    ck_assert_msg(drop_gap < plain_gap - 0.05, "dropout gap %g vs %g", drop_gap, plain_gap);
    free(out);
}
END_TEST

START_TEST(test_ch06_hyperparam)
{
    char *out = run_ok("ch06_hyperparam", "--no-plot");
    int trials = 0;
    for (const char *p = out; (p = strstr(p, "\nval acc:")) != NULL; p++)
        trials++;
    ck_assert_int_eq(trials, 20);
    double best = num_after(out, "Best-1 (val acc:"), lr = num_after(after(out, "Best-1 "), "lr:");
    double fifth = num_after(out, "Best-5 (val acc:");
    ck_assert_msg(best >= fifth && best > 0.5, "best val acc %g", best);
    /* the book: good learning rates lie around 1e-3 .. 1e-2 */
    ck_assert_msg(lr > 1e-3 && lr < 1e-2, "best lr %g", lr);
    free(out);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Chapter 7: convolution */

START_TEST(test_ch07_cnn)
{
    char *out = run_ok("ch07_cnn", "--no-plot");
    ck_assert(has(out, "-> output (4, 4); sg_conv2d gives (4, 4)"));
    ck_assert(has(out, "-> output (3, 3); sg_conv2d gives (3, 3)"));
    ck_assert(has(out, "-> output (10, 11); sg_conv2d gives (10, 11)"));
    double v[16];
    nums_after(out, "no padding:    ", v, 4);
    ck_assert(v[0] == 15 && v[1] == 16 && v[2] == 6 && v[3] == 15);
    nums_after(out, "with bias 3:   ", v, 4);
    ck_assert(v[0] == 18 && v[1] == 19 && v[2] == 9 && v[3] == 18);
    nums_after(out, "padding 1:     ", v, 16);
    const double pad1[16] = {7, 12, 10, 2, 4, 15, 16, 10, 10, 6, 15, 6, 8, 10, 4, 3};
    for (int i = 0; i < 16; i++)
        ck_assert_msg(v[i] == pad1[i], "padding 1, element %d: %g", i, v[i]);
    ck_assert(has(out, "x1 (1, 3, 7, 7)  -> col1 (9, 75)"));
    ck_assert(has(out, "x2 (10, 3, 7, 7) -> col2 (90, 75)"));
    nums_after(out, "max pool:      ", v, 4);
    ck_assert(v[0] == 2 && v[1] == 3 && v[2] == 4 && v[3] == 2);
    ck_assert(has(out, "(Sneaker)"));
    ck_assert(num_after(out, "vertical-edge filter ") > 0.05 && num_after(out, "horizontal-edge filter ") > 0.05);
    ck_assert(has(out, "Trainable params: 433,890")); /* 780 + 432,100 + 1,010 */
    double before = num_after(out, "test acc before training: "), after_ = num_after(out, "test acc after training: ");
    ck_assert_msg(before < 0.2 && after_ > 0.6, "test accuracy %g -> %g", before, after_);
    free(out);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* Chapter 8: deeper networks */

START_TEST(test_ch08_deep)
{
    char *out = run_ok("ch08_deep", "--no-plot");
    /* the book's deep net: 123,552 weights (160 + 2,320 + 4,640 + 9,248 +
     * 18,496 + 36,928 + 51,250 + 510); conv4's padding 2 makes 14 -> 16 */
    ck_assert(has(out, "Trainable params: 123,552"));
    ck_assert(has(out, "conv4 (conv2d)                       (1,32,16,16)"));
    double first = num_after(out, "\nloss "), last = num_after(after(out, "\nloss "), "-> ");
    ck_assert_msg(last < first - 0.3, "loss %g -> %g", first, last);
    double plain = num_after(out, "layer 1 / layer 30: plain "), res = num_after(out, "(the gradient vanishes), residual ");
    ck_assert_msg(plain < 1e-10 && res > 1e-3, "gradient ratios: plain %g, residual %g", plain, res);
    ck_assert(has(out, "1x1 conv with 16 filters -> (1, 16, 7, 7)"));
    ck_assert(num_after(out, "max |conv1x1 - W @ x| = ") < 1e-5);
    /* float16 conversions, checked by hand: 1/3 = 1.0101...b x 2^-2 */
    ck_assert(has(out, "half(0.33333334) = 0.333251953125   (bits 0x3555)"));
    ck_assert(has(out, "half(65504) = 65504   (bits 0x7bff)")); /* the largest half */
    ck_assert(has(out, "half(70000) = inf   (bits 0x7c00)"));
    ck_assert(has(out, "half(5.9604645e-08) = 5.96046447754e-08   (bits 0x0001)")); /* 2^-24 */
    ck_assert(has(out, "half(9.9999999e-09) = 0   (bits 0x0000)"));
    ck_assert(has(out, "half(-2.5) = -2.5   (bits 0xc100)"));
    double acc32 = num_after(out, "test acc float32 "), acc16 = num_after(out, "float16 weights ");
    ck_assert_msg(acc32 > 0.8 && fabs(acc32 - acc16) <= 0.005, "float32 %g, float16 %g", acc32, acc16);
    ck_assert(num_after(out, "largest relative change of a weight ") <= ldexp(1.0, -11));
    free(out);
}
END_TEST

/* ------------------------------------------------------------------------- */
/* The tutorial: its listings are the files of docs/examples, verbatim, and
 * each one runs and prints what the text says. */

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static const char *const tutorial_examples[] = {"ch02_gates",    "ch03_network",  "ch04_descent",
                                                "ch05_apple",    "ch05_gradcheck", "ch05_float64",
                                                "ch06_training", "ch07_conv",      "ch08_save_load",
                                                "beyond_newton"};
enum { N_EXAMPLES = sizeof tutorial_examples / sizeof tutorial_examples[0] };

START_TEST(test_tutorial_listings_verbatim)
{
    char *md = read_file(SG_SOURCE_ROOT "/docs/tutorial.md");
    int listings = 0;
    const char *marker = "<!-- listing: ";
    for (const char *p = strstr(md, marker); p; p = strstr(p, marker)) {
        p += strlen(marker);
        const char *end = strstr(p, " -->");
        ck_assert_ptr_nonnull(end);
        char rel[256], path[PATH_MAX];
        snprintf(rel, sizeof rel, "%.*s", (int)(end - p), p);
        snprintf(path, sizeof path, "%s/%s", SG_SOURCE_ROOT, rel);
        const char *fence = "```c\n";
        ck_assert_msg(strncmp(end + 5, fence, strlen(fence)) == 0, "%s: no ```c block after the marker", rel);
        const char *code = end + 5 + strlen(fence);
        const char *close = strstr(code, "\n```");
        ck_assert_ptr_nonnull(close);
        char *file = read_file(path);
        size_t len = (size_t)(close - code) + 1; /* with the last newline */
        ck_assert_msg(strlen(file) == len && strncmp(file, code, len) == 0,
                      "docs/tutorial.md does not show %s verbatim: paste the file again", rel);
        free(file);
        listings++;
        p = close;
    }
    ck_assert_int_eq(listings, N_EXAMPLES);
    for (int i = 0; i < N_EXAMPLES; i++) {
        char want[128];
        snprintf(want, sizeof want, "%sdocs/examples/%s.c -->", marker, tutorial_examples[i]);
        ck_assert_msg(has(md, want), "the tutorial lacks the listing %s", tutorial_examples[i]);
    }
    free(md);
}
END_TEST

START_TEST(test_tutorial_listings_run)
{
    const struct {
        const char *name;
        const char *expect[3];
    } ex[N_EXAMPLES] = {
        {"ch02_gates", {"XOR(0, 0) = 0\nXOR(1, 0) = 1\nXOR(0, 1) = 1\nXOR(1, 1) = 0\n"}},
        {"ch03_network", {"y = [0.3168271 0.6962791]", "softmax([1010 1000 990]) = [0.999955 4.53979e-05 2.06106e-09]"}},
        {"ch04_descent", {"gradient at (-3, 4): [-6 8]", "after 100 steps: [-6.111e-10 8.148e-10]"}},
        {"ch05_apple", {"price 220\n", "d apple 2.2, d num 110, d tax 200"}},
        {"ch05_gradcheck", {"gradcheck passed"}},
        {"ch05_float64", {"float32, off by 1e-4, defaults:      gradcheck passed",
                          "float64, right, tight tolerances:    gradcheck passed",
                          "float64, off by 1e-4, tight:         gradcheck FAILED"}},
        {"ch06_training", {"training accuracy "}},
        {"ch07_conv", {"conv: [[15 16] [6 15]]", "pool: [[2 3] [3 2]]", "Trainable params: 433,890"}},
        {"ch08_save_load", {"144 weights saved and loaded; largest difference of the outputs: 0\n"}},
        {"beyond_newton", {"x = 2.0000000\nx = 1.4545455\nx = 1.1510468\nx = 1.0253259\n", "x = 1.0000000\n"}},
    };
    for (int i = 0; i < N_EXAMPLES; i++) {
        char path[128];
        snprintf(path, sizeof path, "docs/examples/tut_%s", ex[i].name);
        run r = run_program(path, "");
        ck_assert_msg(r.status == 0, "%s exited with %d (is subdir('examples') in docs/meson.build?):\n%s", path,
                      r.status, r.out);
        for (int k = 0; k < 3 && ex[i].expect[k]; k++)
            ck_assert_msg(has(r.out, ex[i].expect[k]), "%s: missing \"%s\" in\n%s", path, ex[i].expect[k], r.out);
        free(r.out);
    }
}
END_TEST

/* ------------------------------------------------------------------------- */

static Suite *demos_suite(void)
{
    Suite *s = suite_create("demos");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"flags", test_flags},
        {"picture", test_picture},
        {"ch02", test_ch02_gates},
        {"ch03", test_ch03_forward},
        {"ch05_gradcheck", test_ch05_gradcheck},
        {"beyond_newton", test_beyond_newton},
        {"custom_op", test_custom_op},
        {"ch06_optimizers", test_ch06_optimizers},
        {"ch06_init", test_ch06_init},
        {"ch06_batchnorm", test_ch06_batchnorm},
        {"ch06_overfit", test_ch06_overfit},
        {"ch06_hyperparam", test_ch06_hyperparam},
        {"ch07_cnn", test_ch07_cnn},
        {"ch08_deep", test_ch08_deep},
        {"tutorial_verbatim", test_tutorial_listings_verbatim},
        {"tutorial_run", test_tutorial_listings_run},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 240);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    TCase *tc = tcase_create("ch04");
    tcase_set_timeout(tc, 240);
    tcase_add_unchecked_fixture(tc, ch04_setup, ch04_teardown);
    tcase_add_test(tc, test_ch04_losses_and_derivatives);
    tcase_add_test(tc, test_ch04_gradient_descent);
    tcase_add_test(tc, test_ch04_networks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(demos_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    sg_release_memory();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
