#!/usr/bin/env bash
# bench/blocking.sh — is the loop still responsive while 256 clients run
# a blocking call (50 ms sleep on the shared worker pool, wisp-testserver's
# GET /blocking)? Compares GET / latency with no blocking load and with
# it, in the same run, over ROUNDS rounds.
#
#   DURATION=5s ROUNDS=3 bench/blocking.sh
#   POOL_NICE=0 bench/blocking.sh     # pool threads at the loop's priority
#
# Server: wisp-testserver --threads 1 --pool-threads 256 pinned to CPU 0 (the pool
# threads sleep, they do not compete for CPU). Loaders on CPU 1:
#   fast:  wrk -t1 -c16 --latency  GET /
#   load:  wrk -t1 -c256           GET /blocking?ms=50  (started 1 s
#          before the fast run and running through it)
#   probe: bench/probe, GET / at a fixed PROBE_RATE (default 2000 req/s)
#          over 4 connections, alone and under the same blocking load.
# wrk -c16 saturates the loop, so its p99 measures how the CPU is shared
# (queueing behind its own requests and the blocking traffic); the probe
# measures whether the loop is ever held up, which is the question.
set -u
source "$(dirname "$0")/lib.sh"
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
command -v wrk >/dev/null || bench_die "wrk not installed"
bench_setup
wisp_snapshot
start_wisp -- --pool-threads 256 --pool-queue 4096 ${POOL_NICE:+--pool-nice "$POOL_NICE"}
URL=http://127.0.0.1:$WISP_PORT
secs=${DURATION%s}
PROBE_RATE=${PROBE_RATE:-2000}
cc -O2 -Wall -o "$TMPD/probe" "$ROOT/bench/probe.c" || bench_die "cc probe"
p99() { # wrk --latency output -> p99 in microseconds
    awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+/, "", v);
         f = (u == "ms") ? 1000 : (u == "s") ? 1000000 : 1; printf "%d", v * f }' "$1"
}
rps() { awk '/Requests\/sec/ {printf "%d", $2}' "$1"; }
for r in $(seq "$ROUNDS"); do
    taskset -c "$LOADER_CPU" wrk -t1 -c16 -d"$DURATION" --latency "$URL/" >"$TMPD/alone.$r" 2>&1
    taskset -c "$LOADER_CPU" wrk -t1 -c256 -d"$((secs + 2))s" "$URL/blocking?ms=50" >"$TMPD/load.$r" 2>&1 &
    lp=$!
    sleep 1
    taskset -c "$LOADER_CPU" wrk -t1 -c16 -d"$DURATION" --latency "$URL/" >"$TMPD/loaded.$r" 2>&1
    wait "$lp"
    taskset -c "$LOADER_CPU" "$TMPD/probe" -p "$WISP_PORT" -r "$PROBE_RATE" -t "$secs" >"$TMPD/palone.$r" || bench_die "probe failed"
    taskset -c "$LOADER_CPU" wrk -t1 -c256 -d"$((secs + 2))s" "$URL/blocking?ms=50" >"$TMPD/pload.$r" 2>&1 &
    lp=$!
    sleep 1
    taskset -c "$LOADER_CPU" "$TMPD/probe" -p "$WISP_PORT" -r "$PROBE_RATE" -t "$secs" >"$TMPD/ploaded.$r" || bench_die "probe failed"
    wait "$lp"
    bench_log "round $r: GET / p99 alone $(p99 "$TMPD/alone.$r") us, with blocking load $(p99 "$TMPD/loaded.$r") us; blocking $(rps "$TMPD/load.$r") req/s; probe alone: $(cat "$TMPD/palone.$r"); probe loaded: $(cat "$TMPD/ploaded.$r")"
done
python3 - "$TMPD" "$ROUNDS" "$WISP_BUILD_INFO" <<'PY'
import re, statistics, sys
d, rounds, info = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def p99(path):
    for line in open(path):
        f = line.split()
        if len(f) >= 2 and f[0] == "99%":
            m = re.match(r"([\d.]+)(us|ms|s)", f[1])
            v = float(m.group(1))
            return v * {"us": 1, "ms": 1000, "s": 1e6}[m.group(2)]
def rps(path):
    for line in open(path):
        if line.startswith("Requests/sec"):
            return float(line.split()[1])
    return 0.0
alone = [p99("%s/alone.%d" % (d, r)) for r in range(1, rounds + 1)]
loaded = [p99("%s/loaded.%d" % (d, r)) for r in range(1, rounds + 1)]
fast = [rps("%s/loaded.%d" % (d, r)) for r in range(1, rounds + 1)]
blk = [rps("%s/load.%d" % (d, r)) for r in range(1, rounds + 1)]
ratios = [b / a for a, b in zip(alone, loaded)]
print("## GET / latency with and without 256 clients on a blocking route\n")
print("| | GET / p99 alone | GET / p99 with blocking load | ratio | GET / req/s under load | blocking req/s |")
print("|---|---:|---:|---:|---:|---:|")
print("| median of %d rounds | %.0f µs | %.0f µs | **%.2f×** (%.2f–%.2f) | %.0f | %.0f |" % (
    rounds, statistics.median(alone), statistics.median(loaded),
    statistics.median(ratios), min(ratios), max(ratios),
    statistics.median(fast), statistics.median(blk)))
def probe(path):
    f = open(path).read().split()
    return float(f[f.index("p50") + 1]), float(f[f.index("p99") + 1]), float(f[f.index("p999") + 1])
pa = [probe("%s/palone.%d" % (d, r)) for r in range(1, rounds + 1)]
pl = [probe("%s/ploaded.%d" % (d, r)) for r in range(1, rounds + 1)]
pr = [b[1] / a[1] for a, b in zip(pa, pl)]
print()
print("GET / at a fixed rate (bench/probe), alone and under the same blocking load:\n")
print("| | p50 alone | p99 alone | p99.9 alone | p50 loaded | p99 loaded | p99.9 loaded | p99 ratio |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
med = lambda xs, i: statistics.median(x[i] for x in xs)
print("| median of %d rounds | %.0f µs | %.0f µs | %.0f µs | %.0f µs | %.0f µs | %.0f µs | **%.2f×** (%.2f–%.2f) |" % (
    rounds, med(pa, 0), med(pa, 1), med(pa, 2), med(pl, 0), med(pl, 1), med(pl, 2),
    statistics.median(pr), min(pr), max(pr)))
print("\nwisp %s" % info)
PY
