#!/bin/sh
# usage: check.sh WISP_SOURCE_ROOT BUILD_DIR
set -eu
src="$1"
out="$2"
rm -rf "$out"
mkdir -p "$out"
cp -r "$src/test/subproject/consumer" "$out/consumer"
mkdir -p "$out/consumer/subprojects"
ln -s "$src" "$out/consumer/subprojects/wisp"
meson setup "$out/consumer/build" "$out/consumer" >"$out/setup.log" 2>&1 || { cat "$out/setup.log"; exit 1; }
ninja -C "$out/consumer/build" >"$out/build.log" 2>&1 || { cat "$out/build.log"; exit 1; }
"$out/consumer/build/consumer"
