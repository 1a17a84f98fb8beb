#!/bin/sh
# The README's main command: install what is missing, build, then train and
# evaluate the default classifier (an MLP on Fashion-MNIST). Extra arguments
# go to the trainer, e.g.  sh demos/run-main.sh --model cnn --epochs 5
set -e
cd "$(dirname "$0")/.."
sh .ci/deps.sh
[ -d build ] || meson setup build
meson compile -C build
exec ./build/demos/train "$@"
