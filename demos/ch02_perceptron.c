/*
 * ch02_perceptron.c — the book's chapter 2: a perceptron is
 *
 *     y = 1 if w1*x1 + w2*x2 + b > 0, else 0
 *
 * With the book's weights it is an AND, a NAND or an OR gate. No single
 * perceptron is an XOR (its points are not linearly separable: a search over
 * 8,820 weight settings finds none), but two layers are:
 *
 *     XOR(x1, x2) = AND(NAND(x1, x2), OR(x1, x2))
 *
 * The four inputs go through at once as the rows of a (4, 2) tensor, in the
 * book's order (0,0), (1,0), (0,1), (1,1). Picture: perceptron_gates.png, the
 * lines w·x + b = 0 that separate the outputs.
 */
#include "common.h"

#include <stdio.h>

typedef struct gate {
    const char *name;
    float w1, w2, b;
} gate;

static const gate AND = {"AND", 0.5f, 0.5f, -0.7f};
static const gate NAND = {"NAND", -0.5f, -0.5f, 0.7f};
static const gate OR = {"OR", 0.5f, 0.5f, -0.2f};

/* y = step(x @ w + b) for every row of x (N, 2); result (N, 1) of 0/1. */
static sg_tensor *perceptron(sg_tensor *x, gate g)
{
    sg_tensor *w = sg_from_data((float[]){g.w1, g.w2}, SG_DIMS(2, 1));
    sg_tensor *a = sg_add_scalar(sg_matmul(x, w), g.b);
    return sg_gt(a, sg_scalar(0.f)); /* the step function */
}

/* Two layers: s1 = NAND(x), s2 = OR(x), y = AND(s1, s2). */
static sg_tensor *xor_net(sg_tensor *x, sg_tensor **s1, sg_tensor **s2)
{
    *s1 = perceptron(x, NAND);
    *s2 = perceptron(x, OR);
    sg_tensor *s = sg_concat((sg_tensor *[]){*s1, *s2}, 2, 1); /* (4, 2) */
    return perceptron(s, AND);
}

/* Count the settings w1, w2 in {-1, -0.9, ..., 1}, b in {-0.95, -0.85, ...,
 * 0.95} that compute gate t (b is off the grid of w, so w·x + b is never 0). */
static int count_perceptrons(sg_tensor *x, sg_tensor *t)
{
    int found = 0;
    for (int i = -10; i <= 10; i++)
        for (int j = -10; j <= 10; j++)
            for (int k = -10; k < 10; k++) {
                sg_scope_begin();
                gate g = {"?", 0.1f * i, 0.1f * j, 0.1f * k + 0.05f};
                sg_tensor *same = sg_eq(perceptron(x, g), t);
                found += sg_item(sg_sum_all(same)) == 4.f;
                sg_scope_end();
            }
    return found;
}

static void draw(const demo_opts *o, sg_tensor *x, sg_tensor *const t[4])
{
    FILE *gp = plot_begin(o, "perceptron_gates");
    if (!gp)
        return;
    const char *title[4] = {"AND: 0.5 x1 + 0.5 x2 - 0.7 = 0", "NAND: -0.5 x1 - 0.5 x2 + 0.7 = 0",
                            "OR: 0.5 x1 + 0.5 x2 - 0.2 = 0", "XOR: needs both lines (NAND and OR)"};
    const char *lines[4] = {"1.4 - x", "1.4 - x", "0.4 - x", "1.4 - x lw 2 title 'NAND', 0.4 - x lw 2"};
    fprintf(gp, "set multiplot layout 2,2\nset xrange [-0.5:1.5]\nset yrange [-0.5:1.5]\n"
                "set size ratio -1\nset xlabel 'x1'\nset ylabel 'x2'\nset key off\n");
    for (int g = 0; g < 4; g++) {
        plot_data_begin(gp, "pts");
        for (int i = 0; i < 4; i++)
            fprintf(gp, "%g %g %g\n", sg_data(x)[2 * i], sg_data(x)[2 * i + 1], sg_data(t[g])[i]);
        plot_data_end(gp);
        fprintf(gp, "set title '%s'\n", title[g]);
        fprintf(gp, "plot $pts using 1:($3 > 0.5 ? $2 : 1/0) with points pt 7 ps 2 lc rgb 'black',"
                    " $pts using 1:($3 < 0.5 ? $2 : 1/0) with points pt 6 ps 2 lc rgb 'black', %s\n",
                lines[g]);
    }
    fprintf(gp, "unset multiplot\n");
    plot_end(gp, o, "perceptron_gates");
    printf("(filled dots: y = 1, open dots: y = 0)\n");
}

int main(int argc, char **argv)
{
    demo_opts o = demo_args(argc, argv, "The perceptron gates of chapter 2, and XOR from two layers.");
    sg_scope_begin();
    sg_tensor *x, *t[SG_GATE_COUNT];
    for (int g = 0; g < SG_GATE_COUNT; g++)
        if (sg_logic_gate((sg_gate)g, &x, &t[g]) != 0) /* x: the same 4 rows each time */
            break;

    printf("A perceptron: y = 1 if w1*x1 + w2*x2 + b > 0, else 0\n\n");
    const gate gates[3] = {AND, NAND, OR};
    const sg_gate truth[3] = {SG_GATE_AND, SG_GATE_NAND, SG_GATE_OR};
    for (int g = 0; g < 3; g++) {
        sg_tensor *y = perceptron(x, gates[g]);
        if (!y)
            break;
        printf("%s: w = (%.1f, %.1f), b = %.1f\n", gates[g].name, gates[g].w1, gates[g].w2, gates[g].b);
        for (int i = 0; i < 4; i++)
            printf("  %s(%g, %g) = %g\n", gates[g].name, sg_data(x)[2 * i], sg_data(x)[2 * i + 1],
                   sg_data(y)[i]);
        bool right = sg_item(sg_sum_all(sg_eq(y, t[truth[g]]))) == 4.f;
        printf("  the truth table of %s: %s\n\n", gates[g].name, right ? "yes" : "NO");
    }

    printf("XOR = AND(NAND, OR), a two-layer perceptron:\n");
    sg_tensor *s1, *s2;
    sg_tensor *y = xor_net(x, &s1, &s2);
    if (!y) {
        fprintf(stderr, "ch02_perceptron: %s\n", sg_last_error());
        return 1;
    }
    for (int i = 0; i < 4; i++)
        printf("  XOR(%g, %g): s1 = %g, s2 = %g, y = %g\n", sg_data(x)[2 * i], sg_data(x)[2 * i + 1],
               sg_data(s1)[i], sg_data(s2)[i], sg_data(y)[i]);
    bool right = sg_item(sg_sum_all(sg_eq(y, t[SG_GATE_XOR]))) == 4.f;
    printf("  the truth table of XOR: %s\n\n", right ? "yes" : "NO");

    printf("Single perceptrons, w1 and w2 in {-1.0, -0.9, ..., 1.0}, b in {-0.95, ..., 0.95}"
           " (8820 settings):\n");
    for (int g = 0; g < SG_GATE_COUNT; g++)
        printf("  settings that compute %-4s: %d\n", sg_gate_name((sg_gate)g), count_perceptrons(x, t[g]));
    printf("  (none computes XOR: its 1s and 0s cannot be split by one straight line)\n\n");

    sg_tensor *const pics[4] = {t[SG_GATE_AND], t[SG_GATE_NAND], t[SG_GATE_OR], t[SG_GATE_XOR]};
    draw(&o, x, pics);
    sg_scope_end();
    sg_release_memory();
    return 0;
}
