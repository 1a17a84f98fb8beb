#!/bin/sh
# install.sh — test 'install' (suites install, docs): what README's
# "Installing" promises, checked on a real `meson install` into a temporary
# DESTDIR (the build's prefix under it, e.g. TMP/root/usr/local):
#   - the library has its soname and version (libscratchgrad.so.0 ->
#     .so.0.1.0), a static libscratchgrad.a, headers, a pkg-config file;
#   - a program built with `pkg-config --cflags --libs scratchgrad` links
#     the shared library by its soname and runs (LD_LIBRARY_PATH stands in
#     for ldconfig here); one linked with libscratchgrad.a runs without it;
#   - the installed train and library hold no path of the source tree, and
#     train, run from elsewhere, finds data through $SG_DATA_DIR, then
#     $XDG_DATA_HOME/scratchgrad, then ~/.local/share/scratchgrad, and
#     fails naming those places when none holds the set.
# usage: install.sh MESON BUILD_DIR SOURCE_ROOT JSON2IDX [CFLAGS...]
set -eu
meson=$1 build=$(cd "$2" && pwd) src=$(cd "$3" && pwd) json2idx=$4
shift 4
extra_cflags="$*"
cc=${CC:-cc}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/sg_install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
fail() { echo "install.sh: $*" >&2; exit 1; }

"$meson" install -C "$build" --no-rebuild --destdir "$tmp/root" --quiet >"$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "meson install failed"; }

pc=$(find "$tmp/root" -name scratchgrad.pc | head -n 1)
[ -n "$pc" ] || fail "no scratchgrad.pc installed"
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
bin=$(find "$tmp/root" -path '*/bin/train' | head -n 1)
[ -n "$bin" ] || fail "no bin/train installed"
for f in libscratchgrad.so libscratchgrad.so.0 libscratchgrad.a; do
    [ -e "$libdir/$f" ] || fail "$libdir/$f is not installed"
done
real=$(ls "$libdir"/libscratchgrad.so.*.*.* 2>/dev/null | head -n 1)
[ -n "$real" ] || fail "no libscratchgrad.so.MAJOR.MINOR.PATCH installed"
soname=$(readelf -d "$real" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$soname" = libscratchgrad.so.0 ] || fail "soname is '$soname', not libscratchgrad.so.0"
for h in sg_autograd.h sg_nn.h sg_optim.h sg_datasets.h; do
    [ -n "$(find "$tmp/root" -path "*/include/scratchgrad/$h")" ] || fail "$h is not installed"
done

# A program built as the README says. PKG_CONFIG_SYSROOT_DIR puts the
# DESTDIR in front of the .pc file's /usr/local paths.
cat >"$tmp/prog.c" <<'PROG'
#include <sg_autograd.h>
#include <stdio.h>

int main(void)
{
    sg_tensor *x = sg_param(sg_scalar(3.f));
    sg_tensor *y = sg_mul(x, x);                 /* y = x^2, dy/dx = 6 at 3 */
    if (!y || sg_backward(y, NULL) != 0) {
        sg_print_error(stderr);
        return 1;
    }
    printf("dy/dx = %g\n", sg_grad_data(x)[0]);
    int ok = sg_grad_data(x)[0] == 6.f;
    sg_tensor_free(y);
    sg_tensor_free(x);
    return ok ? 0 : 1;
}
PROG
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$tmp/root"
cflags=$(pkg-config --cflags scratchgrad) || fail "pkg-config --cflags failed"
libs=$(pkg-config --libs scratchgrad) || fail "pkg-config --libs failed"
# shellcheck disable=SC2086
$cc -std=c11 $extra_cflags $cflags "$tmp/prog.c" -o "$tmp/prog_shared" $libs ||
    fail "cc prog.c \$(pkg-config --cflags --libs scratchgrad) failed"
needed=$(readelf -d "$tmp/prog_shared" | sed -n 's/.*(NEEDED).*\[\(libscratchgrad[^]]*\)\].*/\1/p')
[ "$needed" = libscratchgrad.so.0 ] || fail "the program needs '$needed', not libscratchgrad.so.0"
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/prog_shared") || fail "the shared-linked program failed: $out"
[ "$out" = "dy/dx = 6" ] || fail "the shared-linked program printed '$out'"

static_libs=$(pkg-config --static --libs scratchgrad | sed 's/-lscratchgrad//')
# shellcheck disable=SC2086
$cc -std=c11 $extra_cflags $cflags "$tmp/prog.c" -o "$tmp/prog_static" "$libdir/libscratchgrad.a" $static_libs ||
    fail "linking prog.c with libscratchgrad.a failed"
readelf -d "$tmp/prog_static" | grep -q 'NEEDED.*libscratchgrad' && fail "prog_static still needs libscratchgrad.so"
out=$(env -u LD_LIBRARY_PATH "$tmp/prog_static") || fail "the static-linked program failed: $out"
[ "$out" = "dy/dx = 6" ] || fail "the static-linked program printed '$out'"

# No source-tree path in what is installed. Debug information names the
# build directory (DW_AT_comp_dir) in a -g build; that is not a path the
# program uses, so it is stripped from a copy before the search.
for f in "$bin" "$real" "$libdir/libscratchgrad.a"; do
    strip --strip-debug -o "$tmp/stripped" "$f" || fail "strip --strip-debug $f failed"
    if grep -q -F -a "$src" "$tmp/stripped"; then
        fail "$f holds the source path $src"
    fi
done

# The installed trainer finds data in the standard places. The data: the
# 23 real digits of tests/data/mnist-json as IDX files.
mkdir -p "$tmp/digits" "$tmp/run"
"$json2idx" "$src/tests/data/mnist-json" "$tmp/digits" >/dev/null || fail "mnist_json2idx failed"
train() { # HOME XDG_DATA_HOME SG_DATA_DIR, then train's arguments
    h=$1 x=$2 d=$3
    shift 3
    (cd "$tmp/run" && env -u SG_DATA_DIR -u XDG_DATA_HOME HOME="$h" XDG_DATA_DIRS="$tmp/none" \
        ${x:+XDG_DATA_HOME="$x"} ${d:+SG_DATA_DIR="$d"} LD_LIBRARY_PATH="$libdir" \
        "$bin" --dataset digits --epochs 1 --batch 10 --threads 1 --quiet --log l.csv --plot p.png "$@" 2>&1)
}
place() { mkdir -p "$(dirname "$1")" && rm -rf "$1" && cp -r "$tmp/digits" "$1"; }

place "$tmp/own/mnist-digits"
out=$(train "$tmp/nohome" "" "$tmp/own") || fail "train with SG_DATA_DIR failed: $out"
place "$tmp/xdg/scratchgrad/mnist-digits"
out=$(train "$tmp/nohome" "$tmp/xdg" "") || fail "train with XDG_DATA_HOME failed: $out"
place "$tmp/home/.local/share/scratchgrad/mnist-digits"
out=$(train "$tmp/home" "" "") || fail "train with ~/.local/share/scratchgrad failed: $out"
case $out in *"final test accuracy"*) ;; *) fail "train did not finish: $out" ;; esac

if out=$(train "$tmp/nohome" "" ""); then
    fail "train found digits where there are none: $out"
fi
case $out in
    *"looked in (SG_DATA_DIR unset) $tmp/nohome/.local/share/scratchgrad/mnist-digits"*) ;;
    *) fail "train's message does not name the places it looked in: $out" ;;
esac
case $out in *"$src"*) fail "train's message names the source tree: $out" ;; esac
echo "install.sh: installed into $tmp/root: soname libscratchgrad.so.0, static library, pkg-config," \
     "train finds data by SG_DATA_DIR, XDG_DATA_HOME and HOME"
