#!/bin/sh
# usage: pkgconfig_check.sh BUILD_ROOT OUT_DIR [SANITIZERS]
# Installs the build into a staging directory and builds the consumer
# program against it with nothing but pkg-config's flags (plus, in a
# sanitizer build, the same -fsanitize= the library was built with: its
# runtime must come first in the program).
set -eu
build="$1"
out="$2"
san="${3:-none}"
sanflags=""
[ "$san" = "none" ] || [ -z "$san" ] || sanflags="-fsanitize=$san"
rm -rf "$out"
mkdir -p "$out"
meson install -C "$build" --destdir "$out/stage" >"$out/install.log" 2>&1 || { cat "$out/install.log"; exit 1; }
pc=$(find "$out/stage" -name wisp.pc | head -1)
[ -n "$pc" ] || { echo "no wisp.pc installed"; exit 1; }
export PKG_CONFIG_PATH="$(dirname "$pc")"
export PKG_CONFIG_SYSROOT_DIR="$out/stage"
cflags=$(pkg-config --cflags wisp)
libs=$(pkg-config --libs wisp)
libdir=$(pkg-config --variable=libdir wisp)
src=$(dirname "$0")/consumer/main.c
${CC:-cc} -std=gnu11 -Wall -Wextra -Werror $sanflags $cflags "$src" -o "$out/consumer" $libs \
  >"$out/cc.log" 2>&1 || { cat "$out/cc.log"; exit 1; }
# pkgconf prefixes variables with the sysroot, pkg-config does not.
[ -d "$libdir" ] || libdir="$out/stage$libdir"
LD_LIBRARY_PATH="$libdir" "$out/consumer"
