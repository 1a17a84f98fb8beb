#!/bin/sh
# matmul_levels.sh — bench_matmul at every instruction-set level this CPU
# has, each against OpenBLAS running the kernels of that level's CPUs
# (OPENBLAS_CORETYPE: Prescott = SSE only, Haswell = AVX2, SkylakeX =
# AVX-512), at 1 and 2 threads: the tables behind the rules in
# autograd/kernels/gemm.c and docs/benchmarks.md.
#
#   bench/matmul_levels.sh [BUILD_DIR] [bench_matmul options, e.g. --sweep]
#   (BUILD_DIR defaults to build/)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build
case "${1:-}" in
""|-*) ;; # no build directory given: options only
*) build=$1; shift ;;
esac
bin="$build/bench/bench_matmul"
[ -x "$bin" ] || { echo "matmul_levels.sh: no $bin (meson compile -C $build first)" >&2; exit 1; }
best=$("$bin" --help 2>&1 | sed -n 's/.*(best: \([a-z0-9]*\).*/\1/p' | head -1)
for level in generic avx2 avx512; do
    case "$level" in
    generic) core=Prescott ;;
    avx2) core=Haswell ;;
    avx512) core=SkylakeX ;;
    esac
    for t in 1 2; do
        echo "== level $level, OPENBLAS_CORETYPE=$core, $t thread(s)"
        SG_ISA=$level OPENBLAS_CORETYPE=$core "$bin" --threads "$t" "$@"
        case "$*" in *--sweep*) break ;; esac # the sweep is one thread
    done
    [ "$level" = "$best" ] && break
done
