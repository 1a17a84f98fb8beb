#!/bin/sh
# Run the test suites of a build on other kinds of x86-64 CPU, emulated by
# qemu-user (Debian's qemu-user; QEMU 7.2 emulates up to AVX2, no AVX-512):
#
#   qemu64       baseline x86-64 (SSE2 only): the generic kernels (OpenBLAS
#                takes this emulated AMD CPU for one whose kernels use
#                instructions QEMU lacks and dies with SIGILL in its own
#                code: it is pointed at its SSE3 kernels, Prescott)
#   Nehalem      x86-64-v2 (SSE4.2, POPCNT): still generic
#   EPYC-Milan   AMD Zen 3 (AVX2 + FMA, no AVX-512): the avx2 kernels
#
# The library picks its kernels from what the emulated CPU reports, so a
# kernel of a level the CPU lacks, or an instruction the baseline build must
# not contain, ends the run with SIGILL. The suites that start other
# programs (demos, train) or run doxygen (docs) are left out, as under
# tests/cross-aarch64.sh, and so is kernels: it already runs natively at
# every level this CPU has, and emulated AVX2 takes it minutes (the
# kernel_levels suite still compares every level the emulated CPU has); so
# is determinism, for the same reason (7 minutes on the emulated Zen 3; it
# runs natively at every level this CPU has).
# SG_TEST_EMULATED tells the one test that limits its address space (the
# out-of-memory message) that the limit would bind the emulator as well.
#
#   sh tests/cpu-kinds.sh [BUILD_DIR]      (default: build)
set -e
OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-}
cd "$(dirname "$0")/.."
build=${1:-build}
if ! command -v qemu-x86_64 >/dev/null 2>&1; then
    echo "cpu-kinds: qemu-x86_64 is not installed (apt-get install qemu-user)" >&2
    exit 1
fi
for cpu in qemu64 Nehalem EPYC-Milan; do
    log="$build/meson-logs/cpu-$cpu.txt"
    core=
    [ "$cpu" = qemu64 ] && core=Prescott
    # each test program runs under qemu; Check's per-test timeouts are for
    # native speed
    if ! OPENBLAS_CORETYPE=${core:-$OPENBLAS_CORETYPE} SG_TEST_NO_REEXEC=1 SG_TEST_EMULATED=1 CK_TIMEOUT_MULTIPLIER=10 meson test -C "$build" --print-errorlogs \
            --wrapper "qemu-x86_64 -cpu $cpu" --timeout-multiplier 4 \
            --no-suite docs --no-suite demos --no-suite train --no-suite kernels --no-suite determinism --no-suite slow --no-suite browser --no-suite interop >"$log" 2>&1; then
        cat "$log"
        echo "cpu-kinds: tests FAILED on an emulated $cpu" >&2
        exit 1
    fi
    passed=$(sed -n 's/^Ok: *\([0-9][0-9]*\).*/\1/p' "$log")
    echo "cpu-kinds: ${passed:-0} suites passed on an emulated $cpu"
done
