#!/usr/bin/env bash
# bench/build.sh — the build every benchmark figure is taken from:
# release, asserts and ownership checks compiled out, link-time
# optimisation, libwisp linked statically into the examples.
#   bench/build.sh            -> build-bench/examples/wisp-testserver
# (the fixture server of test/server/; echo and chat are beside it)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${BUILD_DIR:-$root/build-bench}
if [ ! -d "$dir" ]; then
    meson setup "$dir" "$root" -Dbuildtype=release -Db_ndebug=true -Db_lto=true \
        -Ddefault_library=static -Dtests=false >/dev/null
fi
ninja -C "$dir" >/dev/null
echo "$dir/examples/wisp-testserver"
