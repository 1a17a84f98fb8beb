#!/bin/sh
# dist.sh — data-parallel training speed over Open MPI (issue 15): the MLP
# and SimpleConvNet at 1 and 2 ranks of 1 thread each (bench/bench_dist.c),
# alternately (1, 2, 1, 2, ...) so both see the same machine, and one table
# of the medians: images/s, ms per step, the allreduce's ms per step and its
# share, and the wait for the slower rank. Prints the CPU and the load
# average, since on a shared machine both move the figures.
#
#   bench/dist.sh [--rounds N] [--models "mlp cnn"] [--builddir DIR]
#
# mpirun flags: --oversubscribe (a 2-core VM may offer fewer slots) and
# --allow-run-as-root (containers); docs/distributed.md says why.
set -e
cd "$(dirname "$0")/.."
rounds=3
models="mlp cnn"
build=build
while [ $# -gt 0 ]; do
    case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --models) models=$2; shift 2 ;;
    --builddir) build=$2; shift 2 ;;
    *) echo "usage: bench/dist.sh [--rounds N] [--models \"mlp cnn\"] [--builddir DIR]" >&2; exit 2 ;;
    esac
done
command -v mpirun >/dev/null 2>&1 || { echo "dist.sh: no mpirun (apt-get install openmpi-bin)" >&2; exit 1; }
[ -d "$build" ] || meson setup "$build"
meson compile -C "$build" bench/bench_dist >/dev/null
out=$(mktemp -d /tmp/sg-dist-bench-XXXXXX)
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for model in $models; do
    r=1
    while [ "$r" -le "$rounds" ]; do
        for np in 1 2; do
            mpirun --oversubscribe --allow-run-as-root -np "$np" "$build/bench/bench_dist" --model "$model" \
                --threads 1 | grep '^RESULT' >>"$out/$model-$np.txt"
        done
        r=$((r + 1))
    done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds, medians"
printf '%-5s %5s %9s %9s %11s %11s %8s %9s %10s\n' model ranks "img/s" "ms/step" "compute ms" "allreduce" share "wait ms" "grad MB"
for model in $models; do
    for np in 1 2; do
        # median of each field over the rounds
        med() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" "$out/$model-$np.txt" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
        printf '%-5s %5s %9.0f %9.2f %11.2f %11.2f %7.0f%% %9.2f %10.2f\n' "$model" "$np" "$(med img_s)" "$(med step_ms)" \
            "$(med compute_ms)" "$(med reduce_ms)" "$(echo "$(med reduce_share)" | awk '{print 100*$1}')" \
            "$(med wait_ms)" "$(echo "$(med grad_bytes)" | awk '{print $1/1e6}')"
    done
done
echo "raw RESULT lines: $out"
