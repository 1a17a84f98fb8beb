/*
 * shopping.c — the book's first computational graph (ch. 5): 2 apples at 100
 * and 3 oranges at 150 with 10% tax. The forward pass prints every node's
 * value, the backward pass one node at a time with what each local
 * derivative passes on, and the graph is drawn with Graphviz.
 *
 *   price = (apple * apple_num + orange * orange_num) * tax = 715
 *   d price / d apple = 2.2, d apple_num = 110, d orange = 3.3,
 *   d orange_num = 165, d tax = 650
 */
#include "common.h" /* DEMO_ENV_HELP */
#include "sg_autograd.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sg_tensor *named_param(float v, const char *name)
{
    return sg_set_name(sg_param(sg_scalar(v)), name);
}

int main(int argc, char **argv)
{
    const char *out = argc > 1 ? argv[1] : "shopping";
    if (out[0] == '-') { /* --help, or a flag by mistake: not a file name */
        bool help = !strcmp(out, "--help") || !strcmp(out, "-h");
        char kernels[320];
        fprintf(help ? stdout : stderr,
                "The shopping graph of chapter 5, traced node by node and drawn.\n\n"
                "usage: %s [NAME]   write NAME.dot (and NAME.png with Graphviz); default shopping\n"
                DEMO_ENV_HELP "%s\n",
                argv[0], sg_kernels_describe(kernels, sizeof kernels));
        return help ? 0 : 2;
    }
    sg_scope_begin();
    sg_tensor *apple = named_param(100.f, "apple");
    sg_tensor *apple_num = named_param(2.f, "apple_num");
    sg_tensor *orange = named_param(150.f, "orange");
    sg_tensor *orange_num = named_param(3.f, "orange_num");
    sg_tensor *tax = named_param(1.1f, "tax");

    sg_tensor *apple_price = sg_set_name(sg_mul(apple, apple_num), "apple_price");
    sg_tensor *orange_price = sg_set_name(sg_mul(orange, orange_num), "orange_price");
    sg_tensor *all_price = sg_set_name(sg_add(apple_price, orange_price), "all_price");
    sg_tensor *price = sg_set_name(sg_mul(all_price, tax), "price");
    if (!price) {
        fprintf(stderr, "shopping: %s\n", sg_last_error());
        return 1;
    }
    printf("== forward ==\n");
    sg_trace(stdout, price);
    printf("\nprice = %g\n\n== backward, one node at a time ==\n", sg_item(price));
    sg_backward_opts opts = {.trace = stdout};
    if (sg_backward(price, &opts) != 0) {
        fprintf(stderr, "shopping: %s\n", sg_last_error());
        return 1;
    }
    printf("\n== gradients ==\n");
    printf("d price/d apple      = %g\n", sg_grad_data(apple)[0]);
    printf("d price/d apple_num  = %g\n", sg_grad_data(apple_num)[0]);
    printf("d price/d orange     = %g\n", sg_grad_data(orange)[0]);
    printf("d price/d orange_num = %g\n", sg_grad_data(orange_num)[0]);
    printf("d price/d tax        = %g\n", sg_grad_data(tax)[0]);

    char dot_path[512], png_path[512], cmd[1200];
    snprintf(dot_path, sizeof dot_path, "%s.dot", out);
    snprintf(png_path, sizeof png_path, "%s.png", out);
    FILE *f = fopen(dot_path, "w");
    if (!f || sg_write_dot(f, price) != 0) {
        fprintf(stderr, "shopping: cannot write %s\n", dot_path);
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    printf("\ngraph written to %s\n", dot_path);
    if (system("command -v dot >/dev/null 2>&1") == 0) {
        snprintf(cmd, sizeof cmd, "dot -Tpng '%s' -o '%s'", dot_path, png_path);
        if (system(cmd) == 0)
            printf("picture written to %s\n", png_path);
        else
            printf("graphviz failed to draw %s\n", png_path);
    } else {
        printf("graphviz (dot) is not installed: no picture; apt-get install graphviz\n");
    }
    sg_scope_end();
    sg_release_memory();
    return 0;
}
