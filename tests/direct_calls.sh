#!/bin/sh
# direct_calls.sh LIB...: each shared library calls its own functions
# directly, not through its PLT. meson.build links them with
# -Wl,-Bsymbolic-functions: an op makes a dozen calls inside the library,
# and each one through the PLT is a jump through a GOT entry, a line that
# is cold again after every BLAS call (docs/benchmarks.md, "The engine's
# own cost per product"). Fails naming the functions that still have a
# PLT slot. readelf reads any ELF, so the aarch64 cross build is checked
# the same way.
set -eu
command -v readelf >/dev/null 2>&1 || { echo "direct_calls: readelf not found (binutils)"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0
for lib in "$@"; do
    # the functions the library defines, and the symbols its PLT slots name
    readelf -W --dyn-syms "$lib" | awk '$4 == "FUNC" && $7 != "UND" { sub(/@.*/, "", $8); print $8 }' |
        sort -u >"$tmp/defined"
    readelf -W -r "$lib" | awk '/JUMP_SLOT/ { sub(/@.*/, "", $5); print $5 }' | sort -u >"$tmp/slots"
    [ -s "$tmp/defined" ] || { echo "direct_calls: $lib: no functions found (not a shared library?)"; exit 1; }
    comm -12 "$tmp/defined" "$tmp/slots" >"$tmp/both"
    n=$(wc -l <"$tmp/both")
    if [ "$n" -ne 0 ]; then
        echo "direct_calls: $lib calls $n of its own functions through its PLT, e.g.:"
        head -5 "$tmp/both"
        status=1
    else
        echo "direct_calls: $lib: $(wc -l <"$tmp/defined") functions, none called through the PLT"
    fi
done
exit $status
