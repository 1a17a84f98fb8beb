#!/bin/sh
# Cross-build ScratchGrad for aarch64 (64-bit Arm Linux) with Debian's
# gcc-aarch64-linux-gnu, and run the Check suites under qemu-user.
#
#   sh tests/cross-aarch64.sh
#
# As root it installs what it needs (safe to run again): the cross compiler and
# qemu-user, then, through Debian multiarch (dpkg --add-architecture arm64),
# the arm64 builds of check and zlib. If the arm64 libraries cannot be had, or
# qemu-user cannot run an aarch64 program that forks (Check forks once per
# test), it still cross-compiles the library, demos and benchmarks and says
# "aarch64: compile-only (reason)".
#
# Suites left out under qemu: demos and train start other build programs
# through /bin/sh, and the host kernel cannot exec an aarch64 binary without a
# binfmt_misc handler; docs only runs doxygen, which the native build covers.
#
# Exits non-zero when the cross compilation or a test fails.
set -e
cd "$(dirname "$0")/.."

BUILD=build-aarch64
CROSS=cross/aarch64-linux-gnu.ini
ARM64_LIBS="check:arm64 zlib1g-dev:arm64"
mode=qemu
reason=

if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
        meson ninja-build pkg-config uthash-dev \
        gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user >/dev/null

    # arm64 multiarch: needs the mirror to carry arm64. Installing them can
    # upgrade a few amd64 packages (libssl3, krb5, ...) to the archive's
    # current version, since Multi-Arch: same packages must match; it never
    # removes one. If it fails, undo the architecture we added so a later
    # apt-get update does not fail on missing arm64 indices.
    added_arch=no
    if ! dpkg --print-foreign-architectures | grep -qx arm64; then
        dpkg --add-architecture arm64
        added_arch=yes
    fi
    # shellcheck disable=SC2086 # ARM64_LIBS is a list of package names
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $ARM64_LIBS >/dev/null; }; then
        mode=compile-only
        reason="apt-get could not install $ARM64_LIBS"
        if [ "$added_arch" = yes ]; then
            dpkg --remove-architecture arm64 || true
            apt-get update -qq || true
        fi
    fi
else
    echo "cross-aarch64: not root, installing nothing" >&2
fi

if [ "$mode" = qemu ] && ! PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig pkg-config --exists check; then
    mode=compile-only
    reason="no arm64 check (apt-get install $ARM64_LIBS)"
fi

# qemu-user must run a dynamically linked aarch64 program that forks: with a
# mismatched arm64 loader and libc (see the cross file) the child spins
# forever, and every Check suite would run into its 300 s meson timeout.
if [ "$mode" = qemu ]; then
    probe=$(mktemp -d)
    cat >"$probe/fork.c" <<'EOF'
#include <sys/wait.h>
#include <unistd.h>
int main(void)
{
    int st;
    pid_t p = fork();
    if (p == 0)
        _exit(7);
    return (p > 0 && waitpid(p, &st, 0) == p && WIFEXITED(st) && WEXITSTATUS(st) == 7) ? 0 : 1;
}
EOF
    if ! aarch64-linux-gnu-gcc "$probe/fork.c" -o "$probe/fork" >/dev/null 2>&1; then
        rm -rf "$probe"
        echo "aarch64: the cross compiler cannot build a program" >&2
        exit 1
    fi
    if ! timeout 60 qemu-aarch64 "$probe/fork" >/dev/null 2>&1; then
        mode=compile-only
        reason="qemu-aarch64 cannot run an aarch64 program that forks"
    fi
    rm -rf "$probe"
fi

# A build directory set up in the other mode is set up again.
if [ -d "$BUILD" ] && [ "$(cat "$BUILD/.cross-mode" 2>/dev/null)" != "$mode" ]; then
    rm -rf "$BUILD"
fi
if [ ! -d "$BUILD" ]; then
    mkdir -p "$BUILD"
    extra=
    if [ "$mode" = compile-only ]; then
        # Without libc6:arm64 there is no /lib/ld-linux-aarch64.so.1: meson's
        # sanity check runs its test program with the loader and libc of
        # libc6-arm64-cross instead (a matched pair when libc6:arm64 is absent).
        printf "[binaries]\nexe_wrapper = ['qemu-aarch64', '-L', '/usr/aarch64-linux-gnu']\n" \
            >"$BUILD/compile-only.ini"
        extra="--cross-file $BUILD/compile-only.ini"
    fi
    # -march=native means nothing to a cross compiler; no arm64 BLAS is
    # installed (the library works without one).
    # shellcheck disable=SC2086 # extra is empty or two words
    meson setup "$BUILD" --cross-file "$CROSS" $extra -Dnative=false -Dblas=disabled
    echo "$mode" >"$BUILD/.cross-mode"
fi
meson compile -C "$BUILD"

if [ "$mode" = compile-only ]; then
    echo "aarch64: compile-only ($reason)"
    exit 0
fi

# Check's own per-test timeout (4 s unless a suite sets one) is for native
# speed; qemu runs the code several times slower. The determinism suite
# (training steps of two models on 1 and 2 threads, through the blocked
# loops of a build without BLAS) took over 9 minutes here: it runs natively
# (and passes in a native -Dblas=disabled build). A test program cannot start
# itself again from the shell here (no binfmt_misc handler): the one test
# that does is told so (SG_TEST_NO_REEXEC).
log="$BUILD/meson-logs/cross-test.txt"
if ! SG_TEST_NO_REEXEC=1 SG_TEST_EMULATED=1 CK_TIMEOUT_MULTIPLIER=5 meson test -C "$BUILD" --print-errorlogs \
        --no-suite docs --no-suite demos --no-suite train --no-suite slow --no-suite determinism --no-suite browser --no-suite interop >"$log" 2>&1; then
    cat "$log"
    echo "aarch64: tests FAILED under qemu-user" >&2
    exit 1
fi
cat "$log"
passed=$(sed -n 's/^Ok: *\([0-9][0-9]*\).*/\1/p' "$log")
echo "aarch64: ${passed:-0} suites passed under qemu-user"
