#!/usr/bin/python3
"""profile_step.py — where a ScratchGrad training step spends its time.

Runs bench_train under `perf record --call-graph dwarf` (or reads an existing
perf.data) and attributes every sample by its call stack:

  phase     forward / backward / optimizer step / zero grad / batch gather /
            loss forward (data loading before the loop is reported apart)
  backward  the node whose local derivative was running (sg_bw_max, ...) and
            the engine op it called (sg_sum, binary, sg_fold, ...)
  forward   the nn layer (sg_conv2d, sg_max_pool2d, ...) and its engine op
  leaf      the innermost function (kernels, BLAS, libc)

Percentages are of the main thread's samples in the training loop (loading
excluded), except the leaf table, which counts every sample. Samples whose
stack perf could not unwind (kernels with large stack frames) are listed as
"unwinding failed in <function>": they belong to the loop, caller unknown.

  bench/profile_step.py [--builddir build-bench] [--data perf.data]
                        [--freq 400] -- --model cnn --threads 1 --train-limit 20000

Arguments after `--` go to bench_train (--epochs 1 --no-eval are added
unless given). Needs perf; the library needs no debug info (the DWARF
unwinder uses .eh_frame).
"""
import argparse
import collections
import os
import re
import subprocess
import sys

# Engine ops (public functions) that a sample is attributed to inside a layer
# or a local derivative; the static kernels (binary.constprop.N, ...) are
# reported by name when no public op is on the stack.
ENGINE_OPS = {
    "sg_unfold", "sg_fold", "sg_matmul_t", "sg_add", "sg_sub", "sg_mul", "sg_div",
    "sg_permute", "sg_max", "sg_sum", "sg_sum_to", "sg_mean", "sg_relu", "sg_gt", "sg_eq",
    "sg_exp", "sg_log", "sg_reshape", "sg_broadcast_to", "sg_full", "sg_neg",
    "sg_mul_scalar", "sg_add_scalar", "sg_pow", "sg_copy", "sg_detach", "accumulate",
    "product",  # ops_matmul.c: matmul's and addmm's forward, and a gradient added in place
}
LAYERS = {
    "sg_conv2d", "sg_max_pool2d", "sg_avg_pool2d", "sg_linear", "sg_relu",
    "sg_softmax_cross_entropy_labels", "sg_softmax_cross_entropy", "sg_log_softmax",
    "sg_batch_norm", "sg_dropout",
}


def read_stacks(data):
    """Each sample as (is_main_thread, stack), the stack a list of symbols,
    innermost first."""
    out = subprocess.run(["perf", "script", "-i", data, "-F", "pid,tid,ip,sym"],
                         capture_output=True, text=True, check=True).stdout
    stacks, cur, main = [], [], True
    for line in out.split("\n"):
        line = line.strip()
        if not line:
            if cur:
                stacks.append((main, cur))
                cur = []
            continue
        m = re.match(r"^(\d+)/(\d+)\s*$", line)
        if m:  # the sample's header line: pid/tid
            main = m.group(1) == m.group(2)
            continue
        parts = line.split(None, 1)
        sym = parts[1] if len(parts) > 1 else parts[0]
        cur.append(re.sub(r"\+0x[0-9a-f]+$", "", sym).split(" (")[0])
    if cur:
        stacks.append((main, cur))
    return stacks


def phase_of(main, names):
    if not main:
        return "other threads (BLAS/OpenMP workers)"
    s = set(names)
    if "sg_mnist_load" in s or "sg_idx_load" in s:
        return "load data (before the loop)"
    if "run_backward" in s:
        return "backward"
    if "sg_optim_step" in s:
        return "optimizer step"
    if "sg_optim_zero_grad" in s:
        return "zero grad"
    if "sg_dataset_images" in s or "sg_dataset_label_ints" in s:
        return "batch gather"
    if s & {"sg_softmax_cross_entropy_labels", "sg_softmax_cross_entropy"}:
        return "loss forward"
    if s & {"sg_model_forward", "sg_nn_layer_run", "forward"}:  # the first tail-calls the second
        return "forward"
    if "main" not in s:
        return "unwinding failed in " + names[0]
    return "other"


def report(stacks, top):
    phases, bw, bwop, fw, fwop, leaf = (collections.Counter() for _ in range(6))
    for main, names in stacks:
        leaf[names[0]] += 1
        ph = phase_of(main, names)
        phases[ph] += 1
        if ph == "backward":
            # sg_bw_matmul and sg_bw_addmm tail-call product_grads: their frame is gone
            node = next((n for n in names if n.startswith("sg_bw_") or n == "accumulate"),
                        "sg_bw_matmul/addmm" if "product_grads" in names else "run_backward")
            bw[node] += 1
            bwop[(node, next((n for n in names if n in ENGINE_OPS), names[0]))] += 1
        elif ph == "forward":
            layer = next((n for n in names if n in LAYERS), names[0])
            fw[layer] += 1
            fwop[(layer, next((n for n in names if n in ENGINE_OPS), names[0]))] += 1
    loop = sum(v for k, v in phases.items() if not k.startswith(("load", "other threads")))

    def table(title, counter, denom, n=top):
        print("== " + title)
        for key, v in counter.most_common(n):
            name = key if isinstance(key, str) else " / ".join(key)
            print("  %6.1f%%  %s" % (100.0 * v / max(denom, 1), name))

    print("samples: %d, in the training loop: %d" % (len(stacks), loop))
    table("phases (% of the main thread's training loop; loading and worker threads are\n"
          "   shown against the same base; 'unwinding failed' samples are in the loop but\n"
          "   their caller is unknown)", phases, loop)
    table("backward by node (% of the loop)", bw, loop)
    table("backward: node / engine op (% of the loop)", bwop, loop)
    table("forward by layer (% of the loop)", fw, loop)
    table("forward: layer / engine op (% of the loop)", fwop, loop)
    table("leaf functions (% of all samples)", leaf, len(stacks))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--builddir", default=os.path.join(os.path.dirname(__file__), "..", "build-bench"))
    ap.add_argument("--data", default="/tmp/sg-profile-step.data", help="perf data file")
    ap.add_argument("--freq", type=int, default=400, help="samples per second")
    ap.add_argument("--report-only", action="store_true", help="analyse --data, do not run")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("bench_args", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    if not a.report_only:
        args = [x for x in a.bench_args if x != "--"]
        if "--epochs" not in args:
            args += ["--epochs", "1"]
        if "--no-eval" not in args:
            args.append("--no-eval")
        exe = os.path.join(a.builddir, "bench", "bench_train")
        cmd = ["perf", "record", "-q", "-o", a.data, "-F", str(a.freq),
               "--call-graph", "dwarf,65528", exe] + args
        print("+ " + " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
    report(read_stacks(a.data), a.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
