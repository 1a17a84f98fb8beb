#!/bin/sh
# The browser test (meson suite 'browser'): write the demo pages with
# demos/backprop_html, then drive Debian's chromium headless through each
# one (check_pages.mjs, puppeteer-core from npm, installed into
# tests/browser/node_modules by .ci/deps.sh). Screenshots go to
# SCREENSHOT_DIR (docs/img/ holds the committed ones; see docs/tutorial.md).
#
#   run.sh BACKPROP_HTML_EXE OUT_DIR
#
# Without chromium, node or puppeteer-core the test is reported SKIPPED
# (exit 77, meson's skip code) with the reason — never passed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
exe=$1
out=$2
chromium=${SG_CHROMIUM:-/usr/bin/chromium}
skip() {
    echo "SKIP browser test: $1" >&2
    exit 77
}
[ -x "$chromium" ] || skip "no chromium at $chromium (apt-get install chromium; .ci/deps.sh does)"
command -v node >/dev/null 2>&1 || skip "node is not installed (apt-get install nodejs npm)"
[ -f "$here/node_modules/puppeteer-core/package.json" ] ||
    skip "puppeteer-core is not installed (npm ci --prefix tests/browser; .ci/deps.sh does)"
rm -rf "$out"
mkdir -p "$out/pages" || exit 1
"$exe" "$out/pages" >/dev/null || { echo "browser: $exe failed" >&2; exit 1; }
# the same pages without Graphviz: our own layout
mkdir -p "$out/pages-layered" "$out/nobin" || exit 1
PATH="$out/nobin" "$exe" "$out/pages-layered" >/dev/null || { echo "browser: $exe failed without dot" >&2; exit 1; }
SG_CHROMIUM=$chromium exec node "$here/check_pages.mjs" "$out/pages" "$out/screenshots" "$out/pages-layered"
