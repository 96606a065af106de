#!/usr/bin/env bash
# bench/xiaozhi.sh — xiaozhi-server under N simulated devices
# (bench/xiaozhi_load.c): for each N in COUNTS, a fresh server (release
# build from bench/build.sh, echo pipeline, one loop: --set
# server.threads=1, pinned to CPU $SERVER_CPU, its log to a file) and the
# loader pinned to CPU $LOADER_CPU. Every device does OTA, the upgrade and
# hello (ramp RAMP devices/s per loader process), then for DURATION
# seconds a push-to-talk turn every GAP..2*GAP seconds: UPK packets of
# 60 ms speech-shaped Opus in real time, listen stop, and the echoed reply
# checked for pacing. Reported per N (the loader's summary):
#   server CPU   utime+stime of the server over the run / run time
#   RSS/session  (VmRSS with all N greeted - VmRSS before) / N
#   hello p99    hello sent -> server hello received
#   jitter       |downlink interval - 60 ms| for packets after the
#                pre-buffer; share of intervals > 65 ms
#   server-side  frames the server sent more than 20 ms behind its own
#                schedule (its /metrics), free of the loader's scheduling
#   loader timer lateness: the control (the loader's own late wake-ups on
#                this machine; a late downlink that matches it is the
#                machine's scheduling, not the server's pacing)
#
#   bench/xiaozhi.sh                 # COUNTS="1000 5000"
#   COUNTS=200 DURATION=20 bench/xiaozhi.sh
#
# Environment (defaults): COUNTS="1000 5000" DURATION=60 GAP=4 UPK=33
#   RAMP=500 XIAOZHI=PATH (server binary; default bench/build.sh's build)
#   THREADS=1 SERVER_CPU=0 LOADER_CPU=1 (any: not pinned)
#   LOADER_PROCS=0 (loader processes; 0: one per 19,000 devices)
#   SERVER_SETS="" (extra server flags, e.g. "--set pipeline.max_queue=10000":
#   the default provider caps, 16 running and 64 queued, answer a burst
#   of simultaneous utterances with a spoken "busy" reply, counted apart)
# On a shared machine the loader's own lateness (the control line) says
# whether it kept up; more loader processes (LOADER_PROCS=4
# LOADER_CPU=any) get it a larger share of a contended machine.
set -u
source "$(dirname "$0")/lib.sh"

COUNTS=${COUNTS:-"1000 5000"}
DURATION=${DURATION:-60}
GAP=${GAP:-4}
UPK=${UPK:-33}
RAMP=${RAMP:-500}
THREADS=${THREADS:-1}
LOADER_PROCS=${LOADER_PROCS:-0}     # 0: one per 19,000 devices
SERVER_SETS=${SERVER_SETS:-}        # e.g. "--set pipeline.max_queue=10000"
bench_setup

src=${XIAOZHI:-}
if [ -z "$src" ]; then
    hello=$("$ROOT/bench/build.sh") || bench_die "bench/build.sh failed"
    src=$(dirname "$hello")/xiaozhi/xiaozhi-server
fi
[ -x "$src" ] || bench_die "$src not found (build the xiaozhi example)"
# a copy, so that a rebuild cannot swap the binary during the run (with its
# libwisp.so.0 when it is a shared-library build)
cp "$src" "$TMPD/xiaozhi-server"
lib=$(dirname "$src")/../../libwisp.so.0
[ -e "$lib" ] && cp -L "$lib" "$TMPD/libwisp.so.0"
export LD_LIBRARY_PATH=$TMPD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
cc -O2 -Wall -o "$TMPD/xiaozhi_load" "$BENCH_DIR/xiaozhi_load.c" ||
    bench_die "cannot build bench/xiaozhi_load.c"
commit=$(git -C "$ROOT" rev-parse --short=7 HEAD 2>/dev/null || echo unknown)
bench_log "server $src (commit $commit), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

for n in $COUNTS; do
    out=$TMPD/server.$n.out
    taskset -c "$SERVER_CPU" "$TMPD/xiaozhi-server" --host 127.0.0.1 --port 0 \
        --set server.threads="$THREADS" $SERVER_SETS >"$out" 2>"$out.err" &
    spid=$!
    BENCH_PIDS+=("$spid")
    port=
    for _ in $(seq 300); do
        port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$out" | head -1)
        [ -n "$port" ] && break
        kill -0 "$spid" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$port" ] || { cat "$out.err" >&2; bench_die "xiaozhi-server did not start"; }
    bench_log "N=$n: server pid $spid port $port; load average $(cut -d' ' -f1-3 /proc/loadavg)"
    args=(-p "$port" -n "$n" -d "$DURATION" -g "$GAP" -u "$UPK" -r "$RAMP"
          -S "$spid" -P "$LOADER_PROCS")
    pin=(taskset -c "$LOADER_CPU")
    [ "$LOADER_CPU" = any ] && pin=()
    echo "### N=$n: ${pin[*]} xiaozhi_load ${args[*]}"
    "${pin[@]}" "$TMPD/xiaozhi_load" "${args[@]}"
    # the server's own view of its pacing: frames sent more than 20 ms
    # behind its schedule (xiaozhi_frames_late_total) out of all sent
    curl -s "http://127.0.0.1:$port/metrics" |
        awk '/^xiaozhi_frames_out_total /{o=$2} /^xiaozhi_frames_late_total /{l=$2}
             /^xiaozhi_frames_(in|dropped)_total/ {print "server-side: " $0}
             END {if (o) printf "server-side: %d frames sent, %d more than 20 ms behind schedule (%.3f %%)\n", o, l, 100*l/o}'
    echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
    stop_pid "$spid"
done
