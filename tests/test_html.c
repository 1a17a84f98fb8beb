/*
 * test_html.c — sg_write_html, the page that steps through backprop: what it
 * records (sg_backward's order, dy, each dx and local derivative, gradients
 * before and after), that it leaves the graph and every .grad as they were,
 * the summaries of large tensors, both layouts (Graphviz dot and our own),
 * the formula table's coverage of the op table, the errors, and train's
 * --trace-html. The page's behaviour in a browser is suite 'browser'
 * (tests/browser/).
 */
#include "sg_test.h"

#include <limits.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* The page sg_write_html writes for y (the test fails if it fails). */
static char *page(sg_tensor *y, const sg_html_opts *opts)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    int rc = sg_write_html(f, y, opts);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_msg(rc == 0, "write_html failed: %s", sg_last_error());
    return buf;
}

/* write_html must fail with a message containing `want` and write nothing. */
static void refuses(sg_tensor *y, const sg_html_opts *opts, const char *want)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(sg_write_html(f, y, opts), -1);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_msg(len == 0, "%zu bytes written on failure", len);
    free(buf);
    ASSERT_ERROR_HAS("write_html", want);
}

static size_t count(const char *s, const char *what)
{
    size_t n = 0;
    for (const char *p = strstr(s, what); p; p = strstr(p + 1, what))
        n++;
    return n;
}

static bool has(const char *s, const char *what) { return strstr(s, what) != NULL; }

static sg_tensor *param(float v, const char *name) { return sg_set_name(sg_param(sg_scalar(v)), name); }

/* The book's apples and oranges. */
static sg_tensor *shopping(sg_tensor **leaves)
{
    sg_tensor *apple = param(100.f, "apple"), *apple_num = param(2.f, "apple_num");
    sg_tensor *orange = param(150.f, "orange"), *orange_num = param(3.f, "orange_num");
    sg_tensor *tax = param(1.1f, "tax");
    if (leaves) {
        leaves[0] = apple, leaves[1] = apple_num, leaves[2] = orange, leaves[3] = orange_num, leaves[4] = tax;
    }
    sg_tensor *all = sg_set_name(sg_add(sg_set_name(sg_mul(apple, apple_num), "apple_price"),
                                        sg_set_name(sg_mul(orange, orange_num), "orange_price")),
                                 "all_price");
    return sg_set_name(sg_mul(all, tax), "price");
}

/* The labels of the page's nodes, in its order ("  {label: \"x\", ..."). */
static int node_labels(const char *html, char labels[][32], int cap)
{
    int n = 0;
    for (const char *p = strstr(html, "\n  {label: \""); p && n < cap; p = strstr(p + 1, "\n  {label: \"")) {
        p += strlen("\n  {label: \"");
        int len = (int)(strchr(p, '"') - p);
        snprintf(labels[n++], 32, "%.*s", len, p);
    }
    return n;
}

/* The visited nodes of the page's backward steps ("  {node: 8, dy: ..."). */
static int backward_nodes(const char *html, int *nodes, int cap)
{
    int n = 0;
    for (const char *p = strstr(html, "\n  {node: "); p && n < cap; p = strstr(p + 1, "\n  {node: "))
        nodes[n++] = atoi(p + strlen("\n  {node: "));
    return n;
}

START_TEST(backward_steps_are_sg_backwards_order)
{
    sg_tensor *price = shopping(NULL);
    char *html = page(price, NULL);
    char labels[16][32];
    int order[16];
    int n = node_labels(html, labels, 16), nb = backward_nodes(html, order, 16);
    ck_assert_int_eq(n, 9);
    ck_assert_int_eq(nb, 4);
    /* sg_backward's own trace names the nodes it visits, in its order */
    char *tr = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&tr, &len);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(sg_backward(price, &(sg_backward_opts){.trace = f}), 0);
    ck_assert_int_eq(fclose(f), 0);
    const char *line = tr;
    for (int i = 0; i < nb; i++) {
        char op[32], name[64];
        ck_assert_msg(line && sscanf(line, "backward %31s %63[^:]", op, name) == 2, "trace: %s", tr);
        ck_assert_msg(!strcmp(name, labels[order[i]]), "step %d: page visits %s, sg_backward %s", i,
                      labels[order[i]], name);
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    ck_assert_msg(!line || !*line, "sg_backward visited more nodes than the page shows:\n%s", tr);
    ck_assert_str_eq(labels[order[0]], "price");
    ck_assert_str_eq(labels[order[1]], "all_price");
    free(tr);
    free(html);
}
END_TEST

START_TEST(shopping_numbers)
{
    char *html = page(shopping(NULL), &(sg_html_opts){.title = "shop"});
    ck_assert(has(html, "title: \"shop\""));
    ck_assert(has(html, "label: \"price\", id: "));
    ck_assert(has(html, "value: {n:1,v:[715]}"));
    ck_assert(has(html, "seed: {n:1,v:[1]}"));
    /* the tax node: dy 1; all_price gets 1 x 1.1, tax gets 1 x 650 */
    const char *tax_step = strstr(html, "{node: 8, dy: {n:1,v:[1]}, c: [");
    ck_assert_msg(tax_step != NULL, "%s", html);
    ck_assert(has(tax_step, "{input: 7, k: 1, formula: \"∂(a·b)/∂b = a\", local: {n:1,v:[650]}, "
                            "dx: {n:1,v:[650]}, before: null, after: {n:1,v:[650]}}"));
    ck_assert(has(html, "{input: 0, k: 0, formula: \"∂(a·b)/∂a = b\", local: {n:1,v:[2]}, "
                        "dx: {n:1,v:[2.20000005]}, before: null, after: {n:1,v:[2.20000005]}}"));
    ck_assert(has(html, "dx: {n:1,v:[165]}"));
    ck_assert(has(html, "dx: {n:1,v:[110]}"));
    ck_assert(has(html, "dx: {n:1,v:[3.30000019]}"));
    /* self-contained: nothing is loaded from anywhere */
    ck_assert(!has(html, "src=") && !has(html, "href=") && !has(html, "https://"));
    ck_assert_int_eq((int)count(html, "http://"), (int)count(html, "http://www.w3.org/2000/svg")); /* a name */
    ck_assert(has(html, "window.sgViewer") && has(html, ".node rect"));
    free(html);
}
END_TEST

START_TEST(graph_and_grads_left_as_they_were)
{
    sg_tensor *leaves[5];
    sg_tensor *price = shopping(leaves);
    free(page(price, NULL));
    for (int i = 0; i < 5; i++)
        ck_assert_msg(sg_grad_data(leaves[i]) == NULL, "leaf %d got a gradient", i);
    sg_clear_error();
    /* not released: sg_backward still runs, and a second page too */
    ck_assert_int_eq(sg_backward(price, &(sg_backward_opts){.retain_graph = true}), 0);
    ck_assert_float_eq_tol(sg_grad_data(leaves[0])[0], 2.2f, 1e-6f);
    char *again = page(price, NULL);
    ck_assert(has(again, "dx: {n:1,v:[2.20000005]}, before: null"));
    free(again);
    ck_assert_float_eq_tol(sg_grad_data(leaves[0])[0], 2.2f, 1e-6f); /* still one backward's worth */
    ck_assert_float_eq_tol(sg_grad_data(leaves[4])[0], 650.f, 1e-3f);
}
END_TEST

START_TEST(a_value_used_twice_accumulates)
{
    sg_tensor *x = param(3.f, "x");
    sg_tensor *y = sg_set_name(sg_mul(x, x), "y"); /* dy/dx = 2x = 6: 3 from each slot */
    char *html = page(y, NULL);
    ck_assert_msg(has(html, "{input: 0, k: 0, formula: \"∂(a·b)/∂a = b\", local: {n:1,v:[3]}, dx: {n:1,v:[3]}, "
                            "before: null, after: {n:1,v:[6]}}"),
                  "%s", html);
    ck_assert(has(html, "{input: 0, k: 1, formula: \"∂(a·b)/∂b = a\", local: {n:1,v:[3]}, dx: {n:1,v:[3]}, "
                        "before: null, after: {n:1,v:[6]}}"));
    free(html);
    /* across nodes: z = x*2 + x*5, the second contribution finds the first */
    sg_tensor *z = sg_add(sg_mul_scalar(x, 2.f), sg_mul_scalar(x, 5.f));
    html = page(z, NULL);
    ck_assert_msg(has(html, "before: {n:1,v:[5]}, after: {n:1,v:[7]}") ||
                      has(html, "before: {n:1,v:[2]}, after: {n:1,v:[7]}"),
                  "%s", html);
    free(html);
}
END_TEST

START_TEST(large_tensors_are_summarised)
{
    float v[100];
    for (int i = 0; i < 100; i++)
        v[i] = (float)i;
    sg_tensor *w = sg_set_name(sg_param(sg_from_data(v, SG_DIMS(10, 10))), "w");
    sg_tensor *small = sg_set_name(sg_param(sg_from_data(v, SG_DIMS(16))), "s");
    sg_tensor *loss = sg_add(sg_sum(sg_square(w), NULL, 0, false), sg_sum(small, NULL, 0, false));
    char *html = page(loss, NULL);
    /* 100 values: 64 shown, then min, max, mean, norm (sqrt(328350)) */
    const char *p = strstr(html, "label: \"w\"");
    ck_assert_ptr_nonnull(p);
    ck_assert(has(p, "shape: \"(10,10)\""));
    p = strstr(p, "value: {n:100,v:[0,1,2,");
    ck_assert_ptr_nonnull(p);
    ck_assert(has(p, ",62,63],min:0,max:99,mean:49.5,norm:573.01832"));
    /* 16 values: all of them, no statistics */
    ck_assert(has(html, "value: {n:16,v:[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15]}"));
    free(html);
}
END_TEST

START_TEST(a_lone_parameter_and_an_earlier_error)
{
    sg_tensor *w = param(4.f, "w");
    char *html = page(w, NULL); /* nothing to visit: the seed only */
    ck_assert(has(html, "seed: {n:1,v:[1]},\n backward: [\n ],"));
    free(html);
    /* a message left from before does not stop the page */
    sg_tensor *bad = sg_add(w, NULL);
    ck_assert_ptr_null(bad);
    ck_assert(sg_has_error());
    html = page(sg_mul(w, w), NULL);
    ck_assert(has(html, "local: {n:1,v:[4]}, dx: {n:1,v:[4]}"));
    free(html);
    ASSERT_ERROR("add: NULL input");
}
END_TEST

START_TEST(forward_only_without_gradient)
{
    sg_tensor *a = sg_set_name(sg_scalar(2.f), "a");
    sg_tensor *y = sg_mul_scalar(a, 3.f); /* nothing requires a gradient: a lone leaf */
    char *html = page(y, NULL);
    ck_assert(has(html, "backward: null,"));
    ck_assert(has(html, "value: {n:1,v:[6]}"));
    free(html);
}
END_TEST

START_TEST(names_are_escaped)
{
    sg_tensor *x = param(1.f, "</script><b>\"x\\");
    char *html = page(sg_mul_scalar(x, 2.f), &(sg_html_opts){.title = "</style>&"});
    ck_assert(has(html, "label: \"\\u003c/script\\u003e\\u003cb\\u003e\\\"x\\\\\""));
    ck_assert(has(html, "title: \"\\u003c/style\\u003e\\u0026\""));
    ck_assert_int_eq((int)count(html, "</script>"), 2); /* the data's and the viewer's */
    free(html);
}
END_TEST

/* ---- layout ---- */

static bool dot_works(void) { return system("command -v dot >/dev/null 2>&1") == 0; }

START_TEST(layout_by_dot_or_our_own)
{
    sg_tensor *price = shopping(NULL);
    char *own = page(price, &(sg_html_opts){.layout = SG_HTML_LAYOUT_LAYERED});
    ck_assert(has(own, "layout: \"layered\""));
    /* our layout: apple (a leaf) in column 0, price in column 3 */
    ck_assert_msg(has(own, "label: \"apple\", id: ") && has(own, "x: 98.0, y: 51.0, in: []"), "%s", own);
    const char *price_node = strstr(own, "{label: \"price\", id: ");
    ck_assert_ptr_nonnull(price_node);
    const char *want = "op: \"mul\", leaf: false, param: true, shape: \"()\", x: 776.0, y: 183.0, in: [";
    ck_assert_msg(!strncmp(strstr(price_node, "op: "), want, strlen(want)), "%.120s", price_node);
    free(own);
    if (dot_works()) {
        char *dot = page(price, NULL);
        ck_assert_msg(has(dot, "layout: \"dot\""), "dot is installed but was not used");
        ck_assert(has(dot, "{from: 0, to: 2, k: 0, pts: [")); /* splines from dot */
        free(dot);
    }
    /* no dot on PATH: auto falls back, dot-only fails */
    const char *old = getenv("PATH");
    char *saved = old ? strdup(old) : NULL;
    ck_assert_int_eq(setenv("PATH", "/nonexistent", 1), 0);
    char *fallback = page(price, NULL);
    ck_assert(has(fallback, "layout: \"layered\""));
    free(fallback);
    refuses(price, &(sg_html_opts){.layout = SG_HTML_LAYOUT_DOT}, "Graphviz");
    if (saved)
        setenv("PATH", saved, 1);
    free(saved);
}
END_TEST

/* Every primitive has the formula the page shows for its first input (and
 * the binary ones for their second); the test lists every op without one.
 * A missing row does not break the page: the viewer shows dx and says the
 * formula is missing. */
START_TEST(every_op_has_a_formula)
{
    char missing[1024] = "";
    static const char *const binary[] = {"add", "sub", "mul", "div", "matmul"};
    for (int op = 1; op < sg_op_count(); op++) {
        bool two = false;
        for (size_t j = 0; j < sizeof binary / sizeof binary[0]; j++)
            two = two || !strcmp(sg_op_name(op), binary[j]);
        if (!sg_op_formula(op, 0) || (two && !sg_op_formula(op, 1)) ||
            (!strcmp(sg_op_name(op), "addmm") && !sg_op_formula(op, 2))) {
            strncat(missing, " ", sizeof missing - strlen(missing) - 1);
            strncat(missing, sg_op_name(op), sizeof missing - strlen(missing) - 1);
        }
    }
    ck_assert_msg(!missing[0], "ops without a formula in autograd/html.c's table:%s", missing);
    ck_assert_ptr_null(sg_op_formula(0, 0));            /* the leaf */
    ck_assert_ptr_null(sg_op_formula(sg_op_count(), 0)); /* out of range */
    ck_assert_ptr_null(sg_op_formula(1, 7));
}
END_TEST

START_TEST(errors_name_write_html)
{
    sg_tensor *price = shopping(NULL);
    ck_assert_int_eq(sg_write_html(NULL, price, NULL), -1);
    ASSERT_ERROR("write_html: NULL file");
    refuses(NULL, NULL, "NULL input");
    sg_tensor *v = sg_param(sg_from_data((const float[]){1, 2}, SG_DIMS(2)));
    refuses(sg_mul_scalar(v, 2.f), NULL, "not a scalar");
    refuses(price, &(sg_html_opts){.grad = sg_ones(SG_DIMS(2))}, "does not match");
    refuses(sg_scalar(1.f), &(sg_html_opts){.grad = sg_ones(SG_DIMS(1))}, "does not require a gradient");
    refuses(price, &(sg_html_opts){.layout = (sg_html_layout)7}, "layout 7");
    ck_assert_int_eq(sg_backward(price, NULL), 0); /* releases the graph */
    refuses(price, NULL, "already released");
    /* a seed of y's shape for a vector output */
    sg_tensor *w = sg_mul_scalar(v, 3.f);
    char *html = page(w, &(sg_html_opts){.grad = sg_from_data((const float[]){1, 10}, SG_DIMS(2))});
    ck_assert(has(html, "seed: {n:2,v:[1,10]}"));
    ck_assert(has(html, "dx: {n:2,v:[3,30]}"));
    free(html);
}
END_TEST

/* ---- the programs: demos/backprop_html and train --trace-html ---- */

static char demos_dir[PATH_MAX]; /* <build>/demos */

/* Run demos/<prog> with args (stdout and stderr into out); exit status. */
static int run_demo(const char *prog, const char *args, char *out, size_t cap)
{
    if (!demos_dir[0]) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        ck_assert_int_gt(n, 0);
        exe[n] = '\0';
        *strrchr(exe, '/') = '\0'; /* <build>/tests */
        snprintf(demos_dir, sizeof demos_dir, "%.*s/../demos", (int)sizeof exe - 16, exe);
    }
    char cmd[2 * PATH_MAX + 256];
    snprintf(cmd, sizeof cmd, "'%s/%s' %s 2>&1", demos_dir, prog, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t got = fread(out, 1, cap - 1, p);
    out[got] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(trainer_writes_one_step)
{
    char dir[] = "/tmp/sg-html-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    static const char *const models[] = {"mlp", "cnn"};
    for (int m = 0; m < 2; m++) {
        char args[PATH_MAX + 64], out[4096], path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s.html", dir, models[m]);
        snprintf(args, sizeof args, "--model %s --quiet --trace-html '%s'", models[m], path);
        ck_assert_msg(run_demo("train", args, out, sizeof out) == 0, "train %s:\n%s", args, out);
        ck_assert_msg(has(out, "graph of one training step (batch 2, loss "), "%s", out);
        FILE *f = fopen(path, "r");
        ck_assert_ptr_nonnull(f);
        static char html[1 << 20];
        size_t len = fread(html, 1, sizeof html - 1, f);
        html[len] = '\0';
        fclose(f);
        unlink(path);
        ck_assert(len > 0 && len < sizeof html - 1);
        /* the images enter as a constant (flattened for mlp, unfolded for
         * cnn: ops on them record nothing), the weights summarised */
        ck_assert_msg(has(html, m == 0 ? "shape: \"(2,784)\"" : "shape: \"(2,576,25)\""), "%s", models[m]);
        ck_assert(has(html, m == 0 ? "value: {n:1568,v:[" : "value: {n:28800,v:["));
        ck_assert(has(html, m == 0 ? "shape: \"(784,100)\", x: " : "shape: \"(30,1,5,5)\", x: "));
        ck_assert(has(html, m == 0 ? "label: \"fc1.W\"" : "label: \"conv1.W\""));
        ck_assert(has(html, "label: \"loss\""));
        ck_assert(has(html, "backward: [\n"));
    }
    /* a path that cannot be written: one line, exit 2, before any work */
    char out[1024];
    ck_assert_int_eq(run_demo("train", "--trace-html /nonexistent/x.html", out, sizeof out), 2);
    ck_assert_msg(has(out, "--trace-html /nonexistent/x.html"), "%s", out);
    rmdir(dir);
}
END_TEST

START_TEST(demo_writes_six_pages)
{
    char top[] = "/tmp/sg-html-XXXXXX", dir[sizeof top + 8], out[4096];
    ck_assert_ptr_nonnull(mkdtemp(top));
    snprintf(dir, sizeof dir, "%s/pages", top); /* not there yet: the demo makes it */
    ck_assert_msg(run_demo("backprop_html", dir, out, sizeof out) == 0, "backprop_html:\n%s", out);
    static const char *const lines[] = {"shopping.html          price = 715\n",
                                        "apple.html             price = 220\n",
                                        "micrograd_expr.html    g2 = 24.7041\n",
                                        "micrograd_neuron.html  o = 0.707107\n",
                                        "xor_sigmoid.html       loss = 0.0931278\n",
                                        "double_backward.html   dy/dx = 24\n"};
    for (int i = 0; i < 6; i++) {
        ck_assert_msg(has(out, lines[i]), "no \"%s\" in:\n%s", lines[i], out);
        char path[PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%.*s", dir, (int)strcspn(lines[i], " "), lines[i]);
        ck_assert_msg(unlink(path) == 0, "%s was not written", path);
    }
    ck_assert_int_eq(rmdir(dir), 0);
    ck_assert_int_eq(rmdir(top), 0);
    /* a directory that cannot be made is said, not six fopen errors */
    ck_assert_int_eq(run_demo("backprop_html", "/nonexistent/pages", out, sizeof out), 1);
    ck_assert_msg(has(out, "backprop_html: cannot make the directory /nonexistent/pages"), "%s", out);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("html");
    TCase *tc = tcase_create("page");
    tcase_add_checked_fixture(tc, sg_test_setup, sg_test_teardown);
    tcase_add_test(tc, backward_steps_are_sg_backwards_order);
    tcase_add_test(tc, shopping_numbers);
    tcase_add_test(tc, graph_and_grads_left_as_they_were);
    tcase_add_test(tc, a_value_used_twice_accumulates);
    tcase_add_test(tc, large_tensors_are_summarised);
    tcase_add_test(tc, a_lone_parameter_and_an_earlier_error);
    tcase_add_test(tc, forward_only_without_gradient);
    tcase_add_test(tc, names_are_escaped);
    tcase_add_test(tc, layout_by_dot_or_our_own);
    tcase_add_test(tc, every_op_has_a_formula);
    tcase_add_test(tc, errors_name_write_html);
    suite_add_tcase(s, tc);
    /* The programs are started through sh, which under qemu-user
     * (SG_TEST_EMULATED: tests/cpu-kinds.sh, cross-aarch64.sh) runs them
     * natively or not at all: checked in the plain runs only. */
    if (!getenv("SG_TEST_EMULATED")) {
        TCase *tr = tcase_create("programs");
        tcase_set_timeout(tr, 60);
        tcase_add_test(tr, demo_writes_six_pages);
        tcase_add_test(tr, trainer_writes_one_step);
        suite_add_tcase(s, tr);
    }
    return sg_test_run(s);
}
