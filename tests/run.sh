#!/bin/sh
# The README's test command: install, build, and pass every test — plain,
# then under AddressSanitizer + UndefinedBehaviorSanitizer, then valgrind.
set -e
cd "$(dirname "$0")/.."
sh .ci/deps.sh
[ -d build ] || meson setup build
meson compile -C build
meson test -C build --print-errorlogs

[ -d build-asan ] || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
meson compile -C build-asan
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    meson test -C build-asan --print-errorlogs

# valgrind cannot decode every AVX-512 instruction -march=native may emit:
# its build is generic. The demos and train suites only start other
# programs (checked for leaks by the sanitizer run), so they are left out.
[ -d build-valgrind ] || meson setup build-valgrind -Dnative=false -Dbuildtype=debugoptimized
meson compile -C build-valgrind
meson test -C build-valgrind --setup valgrind --no-suite docs --no-suite demos --no-suite train --print-errorlogs
