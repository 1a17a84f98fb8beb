#!/bin/sh
# The README's main command: install what is missing, build, run the main program.
set -e
cd "$(dirname "$0")/.."
sh .ci/deps.sh
[ -d build ] || meson setup build
meson compile -C build
./build/demos/shopping shopping
