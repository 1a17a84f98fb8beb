/*
 * trace.c — show a small graph to a person: a node-by-node listing in
 * topological order, and Graphviz DOT with op, shape, values and gradients.
 */
#include "sg_internal.h"

enum { SMALL = 6 }; /* tensors up to this size show their values */

static void print_values(FILE *f, const sg_tensor *v, size_t n, const char *sep)
{
    if (!v) {
        fputs("-", f);
        return;
    }
    if (n != 1)
        fputc('[', f);
    size_t shown = n < SMALL ? n : SMALL;
    for (size_t i = 0; i < shown; i++)
        fprintf(f, "%s%.6g", i ? sep : "", sg_value_at(v, i));
    if (shown < n)
        fprintf(f, "%s...", sep);
    if (n != 1)
        fputc(']', f);
}

static void label(FILE *f, const sg_tensor *t)
{
    if (t->name[0])
        fprintf(f, "%s", t->name);
    else
        fprintf(f, "#%u", (unsigned)t->id);
}

void sg_trace(FILE *f, sg_tensor *y)
{
    if (!sg_check_file("trace", f) || (y && !sg_check_tensor("trace", y)))
        return;
    if (!y) {
        fputs("trace: (null)\n", f);
        return;
    }
    sg_tensor **order;
    int n = sg_topo(y, true, &order);
    if (n < 0)
        sg_set_error("trace: out of memory ordering the graph");
    for (int i = 0; i < n; i++) {
        sg_tensor *t = order[i];
        char b[96];
        fprintf(f, "%-12s = ", t->name[0] ? t->name : "");
        if (t->op == SG_OP_LEAF) {
            fputs(t->requires_grad ? "param" : "const", f);
        } else {
            fprintf(f, "%s(", sg_node_op_name(t));
            for (int k = 0; k < t->n_in; k++) {
                if (k)
                    fputs(", ", f);
                label(f, t->in[k]);
            }
            fputc(')', f);
        }
        fprintf(f, "  #%u %s  value ", (unsigned)t->id, sg_shape_str(t, b, sizeof b));
        print_values(f, t, t->size, " ");
        fputs("  grad ", f);
        print_values(f, t->grad, t->size, " ");
        fputc('\n', f);
    }
}

int sg_write_dot(FILE *f, sg_tensor *y)
{
    if (!sg_check_file("write_dot", f) || !sg_check_tensor("write_dot", y))
        return -1;
    sg_tensor **order;
    int n = sg_topo(y, true, &order);
    if (n < 0) {
        sg_set_error("write_dot: out of memory");
        return -1;
    }
    fputs("digraph scratchgrad {\n  rankdir=LR;\n  node [fontname=\"Helvetica\", fontsize=10];\n", f);
    for (int i = 0; i < n; i++) {
        sg_tensor *t = order[i];
        char b[96];
        /* a value node for every tensor, and an op node feeding it */
        fprintf(f, "  t%u [shape=box, style=rounded, label=\"", (unsigned)t->id);
        if (t->name[0])
            fprintf(f, "%s\\n", t->name);
        fprintf(f, "%s\\nvalue ", sg_shape_str(t, b, sizeof b));
        print_values(f, t, t->size, ", ");
        if (t->grad) {
            fputs("\\ngrad ", f);
            print_values(f, t->grad, t->size, ", ");
        }
        fprintf(f, "\"%s];\n", t->op == SG_OP_LEAF && t->requires_grad ? ", color=blue" : "");
        if (t->op != SG_OP_LEAF) {
            fprintf(f, "  op%u [shape=ellipse, style=filled, fillcolor=lightgray, label=\"%s\"];\n",
                    (unsigned)t->id, sg_node_op_name(t));
            for (int k = 0; k < t->n_in; k++)
                fprintf(f, "  t%u -> op%u;\n", (unsigned)t->in[k]->id, (unsigned)t->id);
            fprintf(f, "  op%u -> t%u;\n", (unsigned)t->id, (unsigned)t->id);
        }
    }
    fputs("}\n", f);
    return ferror(f) ? -1 : 0;
}
