#!/bin/sh
# compare.sh — ScratchGrad against PyTorch on Fashion-MNIST (issue 6).
#
# Installs the peer (Debian's python3-torch) if it is missing, builds
# ScratchGrad (meson release build), then runs the two implementations
# alternately — sg, torch, sg, torch — on the same data with the same
# settings (bench/bench_train.c and bench/torch_ref.py), each at 1 and at 2
# threads, and prints one table: seconds per epoch of each at its best thread
# setting, the ratio, test accuracy, peak memory, and ScratchGrad's malloc
# calls per warm training step. Then the matmul table (bench_matmul).
#
#   bench/compare.sh [--quick] [--rounds N] [--cnn-rounds N] [--models "mlp cnn"]
#                    [--threads "1 2"] [--builddir DIR] [--no-install]
#                    [--no-build] [--no-matmul] [--out DIR] [--isa LEVEL]
#
#   --quick       1 epoch per run and 1 round (a smoke test of the whole path)
#   --rounds N    rounds of the MLP (default 2); --cnn-rounds for the CNN (1);
#                 round r uses seed r on both sides (initial weights and
#                 shuffling), so the accuracy column averages over seeds
#   --threads     thread counts to try for both sides (default "1 2"); the
#                 table reports each side at its fastest setting
#   --out DIR     keep every run's log there (default: a fresh /tmp dir)
#   --isa LEVEL   run both sides as on a CPU of that instruction-set level
#                 (generic, avx2, avx512; default: this CPU's best): SG_ISA for
#                 ScratchGrad; OPENBLAS_CORETYPE, ATEN_CPU_CAPABILITY and
#                 ONEDNN_MAX_CPU_ISA for OpenBLAS, PyTorch and oneDNN. Only the
#                 instruction set is emulated, not another CPU's caches or ports.
#
# Epochs: 10 for the MLP, 5 for the CNN (the issue's accuracy checkpoints).
# Threads: bench_train --threads N (sg_set_threads) for ScratchGrad and
# torch.set_num_threads(N) for PyTorch; both also get OMP_NUM_THREADS and
# OPENBLAS_NUM_THREADS = N in the environment. See docs/benchmarks.md.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
builddir="$root/build-bench"
quick=0 rounds=2 cnn_rounds=1 models="mlp cnn" threads="1 2"
install=1 build=1 matmul=1 out="" isa=""
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 ;;
    --rounds) rounds=$2; shift ;;
    --cnn-rounds) cnn_rounds=$2; shift ;;
    --models) models=$2; shift ;;
    --threads) threads=$2; shift ;;
    --builddir) builddir=$2; shift ;;
    --no-install) install=0 ;;
    --no-build) build=0 ;;
    --no-matmul) matmul=0 ;;
    --out) out=$2; shift ;;
    --isa) isa=$2; shift ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done
if [ "$quick" = 1 ]; then rounds=1 cnn_rounds=1; fi
case "$isa" in
"") ;;
generic) export SG_ISA=generic OPENBLAS_CORETYPE=Prescott ATEN_CPU_CAPABILITY=default \
             ONEDNN_MAX_CPU_ISA=SSE41 DNNL_MAX_CPU_ISA=SSE41 ;;
avx2) export SG_ISA=avx2 OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 \
          ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2 ;;
avx512) export SG_ISA=avx512 OPENBLAS_CORETYPE=SkylakeX ATEN_CPU_CAPABILITY=avx512 \
            ONEDNN_MAX_CPU_ISA=AVX512_CORE DNNL_MAX_CPU_ISA=AVX512_CORE ;;
*) echo "compare.sh: --isa takes generic, avx2 or avx512" >&2; exit 2 ;;
esac
[ -n "$out" ] || out=$(mktemp -d /tmp/sg-compare.XXXXXX)
mkdir -p "$out"
results="$out/results.txt"
: > "$results"

# Debian's torch lives in the system python (not a pyenv/venv python in PATH).
py=/usr/bin/python3

# ---- the peer ----
if ! "$py" -c 'import torch, numpy' 2>/dev/null; then
    if [ "$install" = 0 ]; then
        echo "compare.sh: $py cannot import torch; run without --no-install" >&2
        exit 1
    fi
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    echo "== installing python3-torch python3-numpy (apt)"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y python3-torch python3-numpy
fi
echo "== PyTorch $("$py" -c 'import torch; print(torch.__version__)')"

# ---- ScratchGrad ----
if [ "$build" = 1 ]; then
    if [ ! -d "$builddir/meson-private" ]; then
        meson setup "$builddir" "$root" --buildtype=release
    fi
    ninja -C "$builddir" bench/bench_train bench/bench_matmul
fi
sg="$builddir/bench/bench_train"
[ -x "$sg" ] || { echo "compare.sh: $sg not built" >&2; exit 1; }

# ---- runs ----
# Other processes skew timings, the 2-thread ones most: show the load.
echo "== load before the runs: $(cut -d' ' -f1-3 /proc/loadavg)"
run() { # impl model threads epochs round
    impl=$1 model=$2 t=$3 ep=$4 r=$5
    log="$out/$impl-$model-t$t-r$r.log"
    echo "-- $impl $model threads=$t epochs=$ep round $r (seed $r)"
    if [ "$impl" = sg ]; then
        OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t "$sg" --model "$model" --epochs "$ep" --threads "$t" --seed "$r" \
            > "$log" 2>&1 || { cat "$log"; exit 1; }
    else
        OPENBLAS_NUM_THREADS=$t OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t \
            "$py" "$root/bench/torch_ref.py" --model "$model" --epochs "$ep" --threads "$t" --seed "$r" \
            > "$log" 2>&1 || { cat "$log"; exit 1; }
    fi
    line=$(grep '^RESULT ' "$log" | tail -1)
    echo "   ${line#RESULT }"
    echo "$line" >> "$results"
}

for model in $models; do
    if [ "$model" = mlp ]; then ep=10 n=$rounds; else ep=5 n=$cnn_rounds; fi
    [ "$quick" = 1 ] && ep=1
    r=1
    while [ "$r" -le "$n" ]; do
        for t in $threads; do
            run sg "$model" "$t" "$ep" "$r"
            run torch "$model" "$t" "$ep" "$r"
        done
        r=$((r + 1))
    done
done

# ---- the table ----
echo
cpu=$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)
echo "== Fashion-MNIST, batch 100, training loop only ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); logs in $out)"
echo "== CPU: ${cpu:-unknown}; $(grep -h '^kernels: ' "$out"/sg-*.log | head -1)"
if [ -n "$isa" ]; then
    echo "== emulated level $isa: SG_ISA=$SG_ISA OPENBLAS_CORETYPE=$OPENBLAS_CORETYPE ATEN_CPU_CAPABILITY=$ATEN_CPU_CAPABILITY ONEDNN_MAX_CPU_ISA=$ONEDNN_MAX_CPU_ISA"
fi
"$py" - "$results" <<'EOF'
import sys, statistics
from collections import defaultdict

runs = defaultdict(list)          # (impl, model, threads) -> [fields]
for line in open(sys.argv[1]):
    f = dict(kv.split("=", 1) for kv in line.split()[1:])
    runs[(f["impl"], f["model"], int(f["threads"]))].append(f)

def best(impl, model):
    """The thread setting with the lowest median seconds per epoch."""
    cands = [(statistics.median(float(f["sec_per_epoch"]) for f in v), t, v)
             for (i, m, t), v in runs.items() if i == impl and m == model]
    return min(cands) if cands else None

def fmt(x, spec):
    return format(x, spec) if x == x else "nan"

print("%-5s %3s %15s %15s %13s %13s %13s %9s" % (
    "model", "ep", "sg s/epoch", "torch s/epoch", "sg/pt", "test acc", "peak MB", "mallocs"))
print("%-5s %3s %15s %15s %13s %13s %13s %9s" % (
    "", "", "mean   best", "mean   best", "mean  best", "sg    pt", "sg    pt", "per step"))
for model in ("mlp", "cnn"):
    s, p = best("sg", model), best("torch", model)
    if not s or not p:
        continue
    sv, pv = s[2], p[2]
    sb = min(float(f["sec_best"]) for f in sv)
    pb = min(float(f["sec_best"]) for f in pv)
    # accuracy: mean over every run of the model (all rounds = seeds, all
    # thread settings), which is less noisy than one seed
    acc_s = statistics.mean(float(f["test_acc"]) for (i, m, t), v in runs.items()
                            if i == "sg" and m == model for f in v)
    acc_p = statistics.mean(float(f["test_acc"]) for (i, m, t), v in runs.items()
                            if i == "torch" and m == model for f in v)
    mb_s = max(float(f["peak_mb"]) for f in sv)
    mb_p = max(float(f["peak_mb"]) for f in pv)
    print("%-5s %3s %7.3f %7.3f %7.3f %7.3f %6.3f %6.3f %6.4f %6.4f %6.1f %6.1f %9s  (sg %dt, pt %dt)" % (
        model, sv[0]["epochs"], s[0], sb, p[0], pb, s[0] / p[0], sb / pb, acc_s, acc_p,
        mb_s, mb_p, sv[0].get("mallocs_per_step", "-"), s[1], p[1]))
one = []  # both sides at 1 thread, where both ran it
for model in ("mlp", "cnn"):
    s1, p1 = runs.get(("sg", model, 1)), runs.get(("torch", model, 1))
    if s1 and p1:
        ms = statistics.median(float(f["sec_per_epoch"]) for f in s1)
        mp = statistics.median(float(f["sec_per_epoch"]) for f in p1)
        one.append("%s %.3f / %.3f = %.3f" % (model, ms, mp, ms / mp))
if one:
    print("at 1 thread each (sg / pt s/epoch, median): " + "; ".join(one))
print()
print("every setting (median s/epoch over rounds; peak MB at the end of training):")
for (impl, model, t), v in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
    secs = [float(f["sec_per_epoch"]) for f in v]
    extra = ""
    if impl == "sg":
        extra = "  mallocs/step %s" % " ".join(f.get("mallocs_per_step", "-") for f in v)
    print("  %-5s %-5s %dt: %7.3f s/epoch (runs: %s)  acc %s  peak %s MB%s" % (
        model, impl, t, statistics.median(secs), " ".join("%.3f" % x for x in secs),
        " ".join(f["test_acc"] for f in v), max(float(f["peak_mb"]) for f in v), extra))
print()
print("targets: sg/pt <= 0.5 at each side's best setting and at 1 thread each; same accuracy;")
print("         sg MB <= 100; mallocs = 0 per warm step")
EOF

if [ "$matmul" = 1 ]; then
    echo
    echo "== matmul (bench_matmul)"
    mm_opts=""
    [ "$quick" = 1 ] && mm_opts=--quick
    for t in $threads; do
        echo "-- $t thread(s)"
        # shellcheck disable=SC2086 # mm_opts is empty or one word
        "$builddir/bench/bench_matmul" --threads "$t" $mm_opts | tee "$out/matmul-t$t.log"
    done
fi
