#!/bin/sh
# fuzz/run.sh TARGET|all SECONDS [BUILDDIR] — build the libFuzzer targets with
# clang (ASan + UBSan, in their own build directory, default build-fuzz) and
# run TARGET (idx, safetensors, json, mnist_json) or all of them, each for
# SECONDS, starting from the seed corpus fuzz/corpus/TARGET. Exits non-zero
# on the first crash, leak, sanitizer report or timeout; the input that
# caused it is left as BUILDDIR/fuzz-out/crash-* (or leak-*, timeout-*).
#
# The corpus the run grows goes to BUILDDIR/fuzz-out/corpus-TARGET, never
# into the repository. Extra libFuzzer flags can be passed in FUZZ_FLAGS.
set -e
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
    echo "usage: fuzz/run.sh idx|safetensors|json|mnist_json|all SECONDS [BUILDDIR]" >&2
    exit 2
fi
targets=$1
seconds=$2
build=${3:-build-fuzz}
[ "$targets" = all ] && targets="idx safetensors json mnist_json"
if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz: clang not found (apt-get install clang libclang-rt-14-dev)" >&2
    exit 1
fi
if [ ! -d "$build" ]; then
    CC=clang meson setup "$build" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
        -Dbuildtype=debugoptimized -Ddefault_library=static -Dtests=disabled -Ddocs=disabled \
        -Dopenmp=disabled >/dev/null
fi
for t in $targets; do
    meson compile -C "$build" "fuzz/fuzz_$t" >/dev/null
done
out=$build/fuzz-out
mkdir -p "$out"
for t in $targets; do
    mkdir -p "$out/corpus-$t"
    echo "fuzz: $t for ${seconds}s"
    # -rss_limit_mb: a reader that reserves what a header claims instead of
    # what the file holds fails here. -timeout: no input may take 10 s.
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$build/fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=1024 \
        -print_final_stats=1 -artifact_prefix="$out/" $FUZZ_FLAGS \
        "$out/corpus-$t" "fuzz/corpus/$t" >"$out/$t.log" 2>&1 || {
        tail -n 60 "$out/$t.log" >&2
        echo "fuzz: $t FAILED (log: $out/$t.log)" >&2
        exit 1
    }
    grep -E '^#[0-9]+[[:space:]]+DONE' "$out/$t.log" | tail -n 1
done
