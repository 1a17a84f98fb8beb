/*
 * backprop_html.c — small graphs written as pages that step through
 * backprop in a browser (sg_write_html): forward values node by node, then
 * each node's upstream gradient, local derivatives and what each input
 * receives, in the order sg_backward visits the nodes.
 *
 *   shopping.html         the book's apples and oranges (ch. 5): 715;
 *                         d apple 2.2, d apple_num 110, d orange 3.3,
 *                         d orange_num 165, d tax 650
 *   apple.html            the book's apple only: 220; d apple 2.2,
 *                         d apple_num 110, d tax 200
 *   micrograd_expr.html   micrograd's README expression: g = 24.7041,
 *                         d a = 138.8338, d b = 645.5773
 *   micrograd_neuron.html micrograd's neuron o = tanh(x1 w1 + x2 w2 + b)
 *                         = 0.7071; d x1 = -1.5, d w1 = 1, d x2 = 0.5,
 *                         d w2 = 0 (tanh composed: (e^2n - 1)/(e^2n + 1))
 *   xor_sigmoid.html      a 2-2-1 sigmoid network on the XOR sample
 *                         (1, 0) -> 1, loss = (y - t)^2 / 2
 *   double_backward.html  create_graph: the graph of dy/dx = 4x^3 - 4x of
 *                         y = x^4 - 2x^2 at x = 2 (24); its backward gives
 *                         d^2y/dx^2 = 12x^2 - 4 = 44
 *
 * usage: backprop_html [DIR]   (default: the current directory)
 */
#include "common.h" /* DEMO_ENV_HELP */
#include "sg_autograd.h"
#include "sg_nn.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *out_dir = ".";

static sg_tensor *param(float v, const char *name)
{
    return sg_set_name(sg_param(sg_scalar(v)), name);
}

static sg_tensor *named(sg_tensor *t, const char *name)
{
    return sg_set_name(t, name);
}

/* Write y's page to DIR/file; print the file and y's value. */
static bool write_page(const char *file, sg_tensor *y, const char *title)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, file);
    if (!y) {
        fprintf(stderr, "backprop_html: %s: %s\n", file, sg_last_error());
        return false;
    }
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return false;
    }
    sg_html_opts opts = {.title = title};
    int rc = sg_write_html(f, y, &opts);
    if (fclose(f) != 0 || rc != 0) {
        fprintf(stderr, "backprop_html: %s: %s\n", path, rc ? sg_last_error() : "write error");
        return false;
    }
    printf("%-22s %s = %.6g\n", file, sg_name(y), (double)sg_item(y));
    return true;
}

/* The book's figure 5-17: 2 apples at 100 and 3 oranges at 150, 10% tax. */
static bool shopping(void)
{
    sg_tensor *apple = param(100.f, "apple"), *apple_num = param(2.f, "apple_num");
    sg_tensor *orange = param(150.f, "orange"), *orange_num = param(3.f, "orange_num");
    sg_tensor *tax = param(1.1f, "tax");
    sg_tensor *apple_price = named(sg_mul(apple, apple_num), "apple_price");
    sg_tensor *orange_price = named(sg_mul(orange, orange_num), "orange_price");
    sg_tensor *all_price = named(sg_add(apple_price, orange_price), "all_price");
    sg_tensor *price = named(sg_mul(all_price, tax), "price");
    return write_page("shopping.html", price, "Apples and oranges (book, ch. 5)");
}

/* The book's figure 5-16: 2 apples at 100, 10% tax. */
static bool apple(void)
{
    sg_tensor *apple = param(100.f, "apple"), *apple_num = param(2.f, "apple_num");
    sg_tensor *tax = param(1.1f, "tax");
    sg_tensor *apple_price = named(sg_mul(apple, apple_num), "apple_price");
    sg_tensor *price = named(sg_mul(apple_price, tax), "price");
    return write_page("apple.html", price, "Apples (book, ch. 5)");
}

/* micrograd's README example, op for op. */
static bool micrograd_expr(void)
{
    sg_tensor *a = param(-4.f, "a"), *b = param(2.f, "b");
    sg_tensor *c = named(sg_add(a, b), "c");
    sg_tensor *d = named(sg_add(sg_mul(a, b), sg_pow(b, 3.f)), "d");
    c = named(sg_add(c, sg_add_scalar(c, 1.f)), "c2");              /* c += c + 1 */
    c = named(sg_add(c, sg_sub(sg_add_scalar(c, 1.f), a)), "c3");   /* c += 1 + c + (-a) */
    d = named(sg_add(d, sg_add(sg_mul_scalar(d, 2.f), sg_relu(sg_add(b, a)))), "d2"); /* d += d*2 + (b+a).relu() */
    d = named(sg_add(d, sg_add(sg_mul_scalar(d, 3.f), sg_relu(sg_sub(b, a)))), "d3"); /* d += 3*d + (b-a).relu() */
    sg_tensor *e = named(sg_sub(c, d), "e");
    sg_tensor *f = named(sg_pow(e, 2.f), "f");
    sg_tensor *g = named(sg_mul_scalar(f, 0.5f), "g");                /* g = f / 2 */
    g = named(sg_add(g, sg_rdiv_scalar(10.f, f)), "g2");              /* g += 10 / f */
    return write_page("micrograd_expr.html", g, "micrograd's README expression");
}

/* micrograd's neuron: o = tanh(x1 w1 + x2 w2 + b). */
static bool micrograd_neuron(void)
{
    sg_tensor *x1 = param(2.f, "x1"), *x2 = param(0.f, "x2");
    sg_tensor *w1 = param(-3.f, "w1"), *w2 = param(1.f, "w2");
    sg_tensor *b = param(6.8813735870195432f, "b");
    sg_tensor *x1w1 = named(sg_mul(x1, w1), "x1w1"), *x2w2 = named(sg_mul(x2, w2), "x2w2");
    sg_tensor *n = named(sg_add(sg_add(x1w1, x2w2), b), "n");
    sg_tensor *e = named(sg_exp(sg_mul_scalar(n, 2.f)), "e");         /* tanh n = (e^2n - 1) / (e^2n + 1) */
    sg_tensor *o = named(sg_div(sg_add_scalar(e, -1.f), sg_add_scalar(e, 1.f)), "o");
    return write_page("micrograd_neuron.html", o, "micrograd's neuron: o = tanh(x1·w1 + x2·w2 + b)");
}

/* A 2-2-1 sigmoid network on one XOR sample, squared error. */
static bool xor_sigmoid(void)
{
    sg_tensor *x = named(sg_from_data((const float[]){1.f, 0.f}, SG_DIMS(1, 2)), "x");
    sg_tensor *t = named(sg_from_data((const float[]){1.f}, SG_DIMS(1, 1)), "t");
    sg_tensor *W1 = named(sg_param(sg_from_data((const float[]){0.5f, -0.4f, 0.3f, 0.8f}, SG_DIMS(2, 2))), "W1");
    sg_tensor *b1 = named(sg_param(sg_from_data((const float[]){0.1f, -0.1f}, SG_DIMS(2))), "b1");
    sg_tensor *W2 = named(sg_param(sg_from_data((const float[]){0.7f, -0.6f}, SG_DIMS(2, 1))), "W2");
    sg_tensor *b2 = named(sg_param(sg_from_data((const float[]){0.05f}, SG_DIMS(1))), "b2");
    sg_tensor *h = named(sg_sigmoid(named(sg_linear(x, W1, b1), "a1")), "h");
    sg_tensor *y = named(sg_sigmoid(named(sg_linear(h, W2, b2), "a2")), "y");
    sg_tensor *loss = named(sg_mul_scalar(sg_sum(sg_square(sg_sub(y, t)), NULL, 0, false), 0.5f), "loss");
    return write_page("xor_sigmoid.html", loss, "2-2-1 sigmoid network, XOR sample (1, 0) → 1");
}

/* create_graph: the gradient is a graph; its own backward is d²y/dx². */
static bool double_backward(void)
{
    sg_tensor *x = param(2.f, "x");
    sg_tensor *y = named(sg_sub(sg_pow(x, 4.f), sg_mul_scalar(sg_pow(x, 2.f), 2.f)), "y");
    sg_tensor *dydx = NULL;
    if (!y || sg_grad_of(y, &x, 1, &dydx, &(sg_backward_opts){.create_graph = true}) != 0) {
        fprintf(stderr, "backprop_html: double_backward: %s\n", sg_last_error());
        return false;
    }
    return write_page("double_backward.html", named(dydx, "dy/dx"),
                      "create_graph: the backward of dy/dx = 4x³ − 4x at x = 2 gives d²y/dx² = 44");
}

int main(int argc, char **argv)
{
    if (argc > 1 && argv[1][0] == '-') {
        bool help = !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h");
        char kernels[320];
        fprintf(help ? stdout : stderr,
                "Write pages that step through backprop in a browser.\n\n"
                "usage: %s [DIR]   write shopping.html, apple.html, micrograd_expr.html,\n"
                "                  micrograd_neuron.html, xor_sigmoid.html and\n"
                "                  double_backward.html into DIR (default: .)\n"
                DEMO_ENV_HELP "%s\n",
                argv[0], sg_kernels_describe(kernels, sizeof kernels));
        return help ? 0 : 2;
    }
    if (argc > 1)
        out_dir = argv[1];
    if (mkdir(out_dir, 0777) != 0 && errno != EEXIST) { /* one level, like mkdir(1) */
        fprintf(stderr, "backprop_html: cannot make the directory %s: %s\n", out_dir, strerror(errno));
        return 1;
    }
    bool (*const demos[])(void) = {shopping, apple, micrograd_expr, micrograd_neuron, xor_sigmoid, double_backward};
    bool ok = true;
    for (size_t i = 0; i < sizeof demos / sizeof demos[0]; i++) {
        sg_scope_begin();
        ok = demos[i]() && ok;
        sg_scope_end();
        sg_clear_error();
    }
    sg_release_memory();
    if (ok)
        printf("open one in a browser, e.g. xdg-open %s/shopping.html\n", out_dir);
    return ok ? 0 : 1;
}
