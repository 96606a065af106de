#!/usr/bin/env bash
# bench/footprint.sh — how small wisp is: the figures of docs/benchmarks.md,
# "Footprint".
#
#   1. libwisp's text/data/bss (size(1), Berkeley: text counts .text,
#      .rodata and .eh_frame) per feature set, at -Os (meson
#      buildtype=minsize, NDEBUG), x86-64 gcc; and with the appliance
#      flags (no unwind tables, one section per function, the linker
#      dropping what is not called) what a WebSocket echo server really
#      links of it;
#   2. stripped static binaries of examples/hello and bench/appliance.c:
#      glibc and musl on x86-64, glibc on aarch64 (Debian has no aarch64
#      musl toolchain);
#   3. memory under load: bench/appliance.c (one loop, a pool of at most
#      2 threads; static musl, appliance feature set) holding 1,000
#      keep-alive HTTP connections and 100 WebSocket sessions
#      (bench/idle.c), then serving them (wrk over 1,000 connections and
#      bench/ws_load.c over 100 sessions at once); VmRSS and VmHWM from
#      /proc/PID/status of the server while the clients hold the load.
#
# Environment: OUT=DIR keeps the builds (default: a temporary directory),
# SKIP_LOAD=1 leaves out part 3; LOAD_ONLY=1 runs only part 3 (on the
# binary an earlier run left in OUT); LOAD_SECONDS (default 5).
# Needs: meson, ninja, gcc, musl-gcc, aarch64-linux-gnu-gcc (optional),
# wrk (optional: without it the active phase is ws_load only).
set -u
source "$(dirname "$0")/lib.sh"

bench_setup
OUT=${OUT:-$TMPD}
mkdir -p "$OUT"
LOAD_SECONDS=${LOAD_SECONDS:-5}

CORE="-Dwebsocket=false -Dpool=false -Dstatic_files=false -Daccess_log=false -Dmetrics=false"
HTTPWS="-Dwebsocket=true -Dpool=false -Dstatic_files=false -Daccess_log=false -Dmetrics=false"
APPLIANCE="-Dwebsocket=true -Dpool=true -Dstatic_files=false -Daccess_log=false -Dmetrics=false"
FULL=""
# The appliance flags: no unwind tables (C, no exceptions; backtraces
# still work from frame pointers or debug info kept aside), and sections
# the linker can drop one function at a time.
SMALL_CFLAGS="-fno-asynchronous-unwind-tables -fno-unwind-tables -ffunction-sections -fdata-sections"
SMALL_LDFLAGS="-Wl,--gc-sections"

# lib NAME CC CROSSFILE CFLAGS FEATURES...: libwisp.a in $OUT/NAME
lib() {
    local name=$1 cc=$2 cross=$3 cflags=$4; shift 4
    local dir=$OUT/$name
    if [ ! -f "$dir/libwisp.a" ]; then
        rm -rf "$dir"
        local xargs=()
        [ -n "$cross" ] && xargs+=(--cross-file "$ROOT/$cross")
        CC=$cc meson setup "$dir" "$ROOT" "${xargs[@]}" -Dbuildtype=minsize \
            -Db_ndebug=true -Dtests=false -Ddefault_library=static \
            -Dc_args="$cflags" "$@" >"$dir.setup.log" 2>&1 \
            || { cat "$dir.setup.log" >&2; bench_die "meson setup $name"; }
        ninja -C "$dir" -j2 libwisp.a >"$dir.build.log" 2>&1 \
            || { tail -30 "$dir.build.log" >&2; bench_die "build $name"; }
    fi
}

# prog NAME LIBNAME CC SIZE STRIP SOURCE CFLAGS: a stripped static program
prog() {
    local name=$1 lib=$2 cc=$3 strip=$4 src=$5 cflags=$6
    $cc -Os $cflags -static -o "$OUT/$name" "$ROOT/$src" -I"$ROOT/include" \
        -I"$OUT/$lib/include" "$OUT/$lib/libwisp.a" -lpthread $SMALL_LDFLAGS \
        -Wl,-Map="$OUT/$name.map" || bench_die "cannot link $name"
    $strip -s "$OUT/$name"
}

# The core HTTP + WebSocket objects of an archive: all but the modules a
# program links only when it calls them itself (JSON, multipart, forms).
core_size() { # SIZE-TOOL ARCHIVE
    local objs
    objs=$(ar t "$2" | grep -vE 'json_|multipart|_form\.c')
    (cd "$TMPD" && rm -rf core.x && mkdir core.x && cd core.x && ar x "$2" $objs &&
        $1 -t $objs | awk '/\(TOTALS\)/ {printf "%.1f | %.1f | %.1f", $1/1024, $2/1024, $3/1024}')
}

kib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1024}'; }

# Total text/data/bss of an archive, in KiB.
lib_size() { # SIZE-TOOL ARCHIVE
    $1 -t "$2" | awk '/\(TOTALS\)/ {printf "%.1f | %.1f | %.1f", $1/1024, $2/1024, $3/1024}'
}

# What a linked program took from libwisp.a, by the linker map: the input
# sections of libwisp's objects that were kept, text (.text, .rodata,
# .eh_frame), data and bss, in KiB.
map_size() { # MAP
    python3 - "$1" <<'PY'
import re, sys
t = d = b = 0
on = False
sec = None
for line in open(sys.argv[1]):
    if line.startswith("Linker script and memory map"):
        on = True  # the discarded sections are listed before this
        continue
    if not on:
        continue
    m = re.match(r"^ (\.\S+)(?:\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\S+))?\s*$", line)
    if m:
        sec = m.group(1)
        if m.group(2) is None:
            continue  # the values are on the next line
        size, obj = int(m.group(3), 16), m.group(4)
    else:
        m = re.match(r"^\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(\S+)\s*$", line)
        if not m or sec is None:
            continue
        size, obj = int(m.group(2), 16), m.group(3)
    if "libwisp.a(" not in obj:
        continue
    if re.match(r"\.(text|rodata|eh_frame)", sec):
        t += size
    elif re.match(r"\.(data|init_array|fini_array)", sec):
        d += size
    elif re.match(r"\.bss", sec):
        b += size
print("%.1f | %.1f | %.1f" % (t / 1024, d / 1024, b / 1024))
PY
}

if [ -z "${LOAD_ONLY:-}" ]; then
bench_log "building libwisp in $OUT (this takes a few minutes)"
echo "## libwisp.a at -Os (x86-64, gcc $(gcc -dumpfullversion)), KiB"
echo
echo "| feature set | text | data | bss |"
echo "|---|---:|---:|---:|"
for set in FULL APPLIANCE HTTPWS CORE; do
    lib "gcc-$set" gcc "" "" ${!set}
    echo "| $set | $(lib_size size "$OUT/gcc-$set/libwisp.a") |"
done
for set in FULL HTTPWS; do
    lib "gcc-small-$set" gcc "" "$SMALL_CFLAGS" ${!set}
    echo "| $set, appliance flags | $(lib_size size "$OUT/gcc-small-$set/libwisp.a") |"
done
lib "gcc-HTTPWS" gcc "" "" $HTTPWS
echo "| HTTPWS, core objects only (no JSON, multipart, forms) | $(core_size size "$OUT/gcc-HTTPWS/libwisp.a") |"
echo "| HTTPWS, core objects only, appliance flags | $(core_size size "$OUT/gcc-small-HTTPWS/libwisp.a") |"
echo

echo "## What a program links of libwisp (linker map), KiB"
echo
echo "| program | library build | text | data | bss |"
echo "|---|---|---:|---:|---:|"
lib "musl-small-HTTPWS" musl-gcc "" "$SMALL_CFLAGS" $HTTPWS
lib "musl-small-APPLIANCE" musl-gcc "" "$SMALL_CFLAGS" $APPLIANCE
lib "musl-small-FULL" musl-gcc "" "$SMALL_CFLAGS" $FULL
prog echo-httpws musl-small-HTTPWS musl-gcc strip examples/echo/main.c "$SMALL_CFLAGS"
echo "| examples/echo (HTTP + WebSocket) | musl, HTTPWS | $(map_size "$OUT/echo-httpws.map") |"
prog hello-httpws musl-small-HTTPWS musl-gcc strip examples/hello/main.c "$SMALL_CFLAGS"
echo "| examples/hello (HTTP only) | musl, HTTPWS | $(map_size "$OUT/hello-httpws.map") |"
prog appliance-musl musl-small-APPLIANCE musl-gcc strip bench/appliance.c "$SMALL_CFLAGS"
echo "| bench/appliance.c (HTTP, WebSocket, pool) | musl, APPLIANCE | $(map_size "$OUT/appliance-musl.map") |"
prog hello-full musl-small-FULL musl-gcc strip examples/hello/main.c "$SMALL_CFLAGS"
echo "| examples/hello | musl, FULL | $(map_size "$OUT/hello-full.map") |"
echo

echo "## Static binaries, stripped, KiB"
echo
echo "| program | libc, arch | feature set | size |"
echo "|---|---|---|---:|"
fsize() { kib "$(stat -c %s "$1")"; }
echo "| hello | musl, x86-64 | HTTPWS | $(fsize "$OUT/hello-httpws") |"
echo "| hello | musl, x86-64 | FULL | $(fsize "$OUT/hello-full") |"
echo "| appliance | musl, x86-64 | APPLIANCE | $(fsize "$OUT/appliance-musl") |"
lib "glibc-small-HTTPWS" gcc "" "$SMALL_CFLAGS" $HTTPWS
lib "glibc-small-APPLIANCE" gcc "" "$SMALL_CFLAGS" $APPLIANCE
prog hello-glibc glibc-small-HTTPWS gcc strip examples/hello/main.c "$SMALL_CFLAGS" 2>/dev/null
prog appliance-glibc glibc-small-APPLIANCE gcc strip bench/appliance.c "$SMALL_CFLAGS" 2>/dev/null
echo "| hello | glibc, x86-64 | HTTPWS | $(fsize "$OUT/hello-glibc") |"
echo "| appliance | glibc, x86-64 | APPLIANCE | $(fsize "$OUT/appliance-glibc") |"
if command -v aarch64-linux-gnu-gcc >/dev/null; then
    lib "a64-small-HTTPWS" aarch64-linux-gnu-gcc cross/aarch64-linux-gnu.ini "$SMALL_CFLAGS" $HTTPWS
    lib "a64-small-APPLIANCE" aarch64-linux-gnu-gcc cross/aarch64-linux-gnu.ini "$SMALL_CFLAGS" $APPLIANCE
    prog hello-a64 a64-small-HTTPWS aarch64-linux-gnu-gcc aarch64-linux-gnu-strip examples/hello/main.c "$SMALL_CFLAGS" 2>/dev/null
    prog appliance-a64 a64-small-APPLIANCE aarch64-linux-gnu-gcc aarch64-linux-gnu-strip bench/appliance.c "$SMALL_CFLAGS" 2>/dev/null
    echo "| hello | glibc, aarch64 | HTTPWS | $(fsize "$OUT/hello-a64") |"
    echo "| appliance | glibc, aarch64 | APPLIANCE | $(fsize "$OUT/appliance-a64") |"
    echo
    echo "aarch64 libwisp.a (appliance flags), KiB: HTTPWS $(lib_size aarch64-linux-gnu-size "$OUT/a64-small-HTTPWS/libwisp.a"); APPLIANCE $(lib_size aarch64-linux-gnu-size "$OUT/a64-small-APPLIANCE/libwisp.a") (text | data | bss)"
    if command -v qemu-aarch64 >/dev/null; then
        # The static aarch64 binary runs (no -L: it needs no libraries).
        qemu-aarch64 "$OUT/appliance-a64" --port 0 >"$TMPD/a64.out" 2>&1 &
        a64=$!
        BENCH_PIDS+=("$a64")
        port=
        for _ in $(seq 300); do
            port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$TMPD/a64.out")
            [ -n "$port" ] && break
            sleep 0.1
        done
        got=$(curl -s --max-time 20 "http://127.0.0.1:$port/" || true)
        echo "static aarch64 appliance under qemu-aarch64: GET / -> '$got'"
        stop_pid "$a64"
        bench_forget "$a64"
    fi
fi
echo

fi
[ -n "${SKIP_LOAD:-}" ] && exit 0

# ---------------------------------------------------------------- load
[ -x "$OUT/appliance-musl" ] || bench_die "no $OUT/appliance-musl: run without LOAD_ONLY first"
build_tool idle
build_tool ws_load
NOFILE=8192
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN {printf "%.2f", k / 1024}'; }  # from kB
mem_line() { # PID LABEL
    echo "| $2 | $(mib "$(status_kb "$1" VmRSS)") | $(mib "$(status_kb "$1" VmHWM)") |"
}
# Threads of the server: the loop, the main thread, pool threads alive.
threads_of() { ls "/proc/$1/task" | wc -l; }

# run_load BINARY LABEL: start it, hold and serve the load, print the table
run_load() {
    out=$TMPD/appliance.$2.out
    prlimit --nofile=$NOFILE:$NOFILE "$1" --port 0 >"$out" 2>"$out.err" &
    SRV=$!
    BENCH_PIDS+=("$SRV")
    PORT=
    for _ in $(seq 300); do
        PORT=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$out")
        [ -n "$PORT" ] && break
        kill -0 "$SRV" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$PORT" ] || bench_die "appliance did not start: $(cat "$out.err")"

    echo "## Memory of bench/appliance.c ($2, x86-64), MiB"
    echo
    echo "| moment | VmRSS | VmHWM |"
    echo "|---|---:|---:|"
    mem_line "$SRV" "started"
    # Touch the pool once so its threads exist (and their stacks count).
    curl -s --max-time 30 "http://127.0.0.1:$PORT/work?ms=1" >/dev/null
    curl -s --max-time 30 "http://127.0.0.1:$PORT/work?ms=1" >/dev/null

    # Hold the connections: each holder prints "open N" when all are up and
    # keeps them until its stdin gets a line.
    rm -f "$TMPD/h.in" "$TMPD/w.in"
    mkfifo "$TMPD/h.in" "$TMPD/w.in"
    prlimit --nofile=$NOFILE:$NOFILE "$TMPD/idle" -p "$PORT" -c 1000 <"$TMPD/h.in" >"$TMPD/h.out" &
    H=$!
    BENCH_PIDS+=("$H")
    exec 5>"$TMPD/h.in"
    prlimit --nofile=$NOFILE:$NOFILE "$TMPD/idle" -p "$PORT" -c 100 -w /ws <"$TMPD/w.in" >"$TMPD/w.out" &
    W=$!
    BENCH_PIDS+=("$W")
    exec 6>"$TMPD/w.in"
    for _ in $(seq 600); do
        grep -q '^open' "$TMPD/h.out" && grep -q '^open' "$TMPD/w.out" && break
        kill -0 "$H" 2>/dev/null && kill -0 "$W" 2>/dev/null || break
        sleep 0.1
    done
    grep -q '^open 1000' "$TMPD/h.out" || bench_die "1000 keep-alive connections not open: $(cat "$TMPD/h.out")"
    grep -q '^open 100' "$TMPD/w.out" || bench_die "100 WebSocket sessions not open: $(cat "$TMPD/w.out")"
    mem_line "$SRV" "holding 1,000 idle keep-alive + 100 idle WebSocket"

    # Serve them: 1,000 keep-alive connections making requests and 100
    # WebSocket sessions echoing, at once (the idle ones still held).
    wrk_out=$TMPD/wrk.out
    WRK=
    if command -v wrk >/dev/null; then
        prlimit --nofile=$NOFILE:$NOFILE wrk -t1 -c1000 -d"${LOAD_SECONDS}s" "http://127.0.0.1:$PORT/" >"$wrk_out" 2>&1 &
        WRK=$!
        BENCH_PIDS+=("$WRK")
    fi
    "$TMPD/ws_load" -p "$PORT" -c 100 -s 512 -d 4 -t "$LOAD_SECONDS" -u /ws >"$TMPD/wsl.out" 2>&1 &
    WSL=$!
    BENCH_PIDS+=("$WSL")
    sleep $((LOAD_SECONDS / 2))   # mid-run sample (the figure, not a wait for an event)
    mem_line "$SRV" "+ serving 1,000 wrk connections and 100 ws_load sessions (mid-run)"
    wait "$WSL"
    [ -n "${WRK:-}" ] && wait "$WRK"
    mem_line "$SRV" "after the load (idle ones still held)"
    echo
    echo "threads: $(threads_of "$SRV")"
    echo "wrk: $(grep -E 'Requests/sec|Non-2xx|Socket errors' "$wrk_out" 2>/dev/null | tr -s ' ' | tr '\n' ';')"
    echo "ws_load: $(tr '\n' ';' <"$TMPD/wsl.out")"
    echo >&5
    echo >&6
    exec 5>&- 6>&-
    wait "$H"; wait "$W"
    echo "holders: $(grep still-open "$TMPD/h.out") (of 1000), $(grep still-open "$TMPD/w.out") (of 100)"
    stop_pid "$SRV"
    bench_forget "$SRV"; bench_forget "$H"; bench_forget "$W"; bench_forget "$WSL"
    [ -n "$WRK" ] && bench_forget "$WRK"
    echo
}

run_load "$OUT/appliance-musl" "static musl"
[ -x "$OUT/appliance-glibc" ] && run_load "$OUT/appliance-glibc" "static glibc"
