#!/usr/bin/env bash
# bench/ws.sh — WebSocket echo: wisp (examples/echo, 1 loop) against
# Node's ws (bench/ws_node_echo.js) in the same run, alternating, ROUNDS
# rounds. Load: bench/ws_load.c, 100 connections, 32-byte and 64 KiB
# binary messages, strict ping-pong (1 in flight) and 16 in flight.
# Server on CPU 0, loader on CPU 1. Needs node and the npm package ws
# (NODE_PATH, e.g. the cache .ci/run fills).
#   DURATION=3 ROUNDS=3 bench/ws.sh
set -u
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-3}
export NODE_PATH=${NODE_PATH:-$HOME/.cache/wisp-node/node_modules}
[ -d "$NODE_PATH/ws" ] || bench_die "npm package ws not found in NODE_PATH=$NODE_PATH"
bench_setup
src=$("$ROOT/bench/build.sh") || bench_die "bench/build.sh failed"
ECHO=$(dirname "$src")/echo
cc -O2 -o "$TMPD/ws_load" "$ROOT/bench/ws_load.c" || bench_die "cc ws_load"
start() { # start wisp|node -> SPID SPORT
    local out=$TMPD/$1.$RANDOM.out
    if [ "$1" = wisp ]; then
        taskset -c "$SERVER_CPU" "$ECHO" --port 0 --threads 1 >"$out" 2>&1 &
    else
        taskset -c "$SERVER_CPU" node "$ROOT/bench/ws_node_echo.js" 0 >"$out" 2>&1 &
    fi
    SPID=$!
    BENCH_PIDS+=("$SPID")
    for _ in $(seq 100); do
        SPORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$out")
        [ -n "$SPORT" ] && return 0
        sleep 0.1
    done
    bench_die "$1 did not start"
}
: >"$TMPD/res"
for r in $(seq "$ROUNDS"); do
    for srv in wisp node; do
        start "$srv"
        for sz in 32 65536; do
            for d in 1 16; do
                line=$(taskset -c "$LOADER_CPU" "$TMPD/ws_load" -p "$SPORT" -c 100 -s "$sz" -d "$d" -t "$DURATION")
                echo "$srv $sz $d $line" >>"$TMPD/res"
                bench_log "r$r $srv ${sz}B d$d: $line"
            done
        done
        stop_pid "$SPID"
    done
done
python3 - "$TMPD/res" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    f = line.split()
    srv, sz, d, rate, p99 = f[0], int(f[1]), int(f[2]), float(f[3]), float(f[9])
    rows.setdefault((sz, d), {}).setdefault(srv, []).append((rate, p99))
print("## WebSocket echo, 100 connections: wisp vs Node ws (medians)\n")
print("| message | in flight | wisp msg/s | Node ws msg/s | wisp/Node | wisp p99 | Node p99 |")
print("|---|---:|---:|---:|---:|---:|---:|")
for (sz, d), v in sorted(rows.items()):
    w = statistics.median(x[0] for x in v["wisp"]); n = statistics.median(x[0] for x in v["node"])
    wp = statistics.median(x[1] for x in v["wisp"]); np_ = statistics.median(x[1] for x in v["node"])
    print("| %s | %d | %.0f | %.0f | **%.1f×** | %.0f µs | %.0f µs |" % (
        "32 B" if sz == 32 else "64 KiB", d, w, n, w / n, wp, np_))
PY
