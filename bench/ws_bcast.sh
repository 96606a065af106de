#!/usr/bin/env bash
# bench/ws_bcast.sh — broadcast fan-out: one message to SESSIONS WebSocket
# sessions spread over all of examples/echo's loops (/ws/all: encoded
# once, shared by reference, delivered through each loop's inbox), and
# the time until the last session has it. See docs/benchmarks.md.
#
# The sessions come from PROCS client processes (bench/ws_bcast.c; a
# process holds at most ~20,000 fds); process 0 also sends MSGS messages
# INTERVAL ms apart. The server runs THREADS loops (default: one per
# core) and shares the 2 cores with the clients, so the figures include
# the clients' own reading time: they are an upper bound.
#   SESSIONS=10000 PROCS=4 MSGS=20 INTERVAL=200 bench/ws_bcast.sh
set -u
source "$(dirname "$0")/lib.sh"
SESSIONS=${SESSIONS:-10000}
PROCS=${PROCS:-4}
MSGS=${MSGS:-20}
INTERVAL=${INTERVAL:-200}
THREADS=${THREADS:-0}
bench_setup
src=$("$ROOT/bench/build.sh") || bench_die "bench/build.sh failed"
ECHO=$(dirname "$src")/echo
cc -O2 -o "$TMPD/ws_bcast" "$ROOT/bench/ws_bcast.c" || bench_die "cc ws_bcast"
out=$TMPD/echo.out
prlimit --nofile=20000:20000 -- "$ECHO" --port 0 --threads "$THREADS" >"$out" 2>&1 &
SPID=$!
BENCH_PIDS+=("$SPID")
for _ in $(seq 100); do
    SPORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$out")
    [ -n "$SPORT" ] && break
    sleep 0.1
done
[ -n "$SPORT" ] || bench_die "echo did not start"
rss0=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$SPID/status")
per=$((SESSIONS / PROCS))
pids=()
for i in $(seq 0 $((PROCS - 1))); do
    flag=""
    [ "$i" = 0 ] && flag="-s"
    mkfifo "$TMPD/go$i"
    prlimit --nofile=20000:20000 -- "$TMPD/ws_bcast" -p "$SPORT" -n "$per" $flag \
        -m "$MSGS" -i "$INTERVAL" -t 60 <"$TMPD/go$i" >"$TMPD/c$i.out" 2>&1 &
    pids+=($!)
    BENCH_PIDS+=($!)
    exec {fd}>"$TMPD/go$i"
    eval "go_fd_$i=$fd"
done
for i in $(seq 0 $((PROCS - 1))); do
    for _ in $(seq 600); do
        grep -q '^ready' "$TMPD/c$i.out" 2>/dev/null && break
        kill -0 "${pids[$i]}" 2>/dev/null || bench_die "client $i: $(cat "$TMPD/c$i.out")"
        sleep 0.1
    done
done
rss1=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$SPID/status")
bench_log "$SESSIONS sessions open ($PROCS processes); server VmRSS $rss0 -> $rss1 kB"
for i in $(seq 1 $((PROCS - 1))) 0; do
    eval "echo go >&\$go_fd_$i"
done
for p in "${pids[@]}"; do wait "$p" || bench_die "a client failed"; done
cat "$TMPD"/c*.out | python3 -c '
import sys
sessions, msgs = int(sys.argv[1]), int(sys.argv[2])
agg = {}
for line in sys.stdin:
    f = line.split()
    if not f or f[0] != "msg":
        continue
    seq, sent, first, last, n = int(f[1]), int(f[2]), int(f[3]), int(f[4]), int(f[5])
    a = agg.setdefault(seq, [0, None, 0, 0])
    a[0] = max(a[0], sent)
    if n:
        a[1] = first if a[1] is None else min(a[1], first)
        a[2] = max(a[2], last)
    a[3] += n
lasts = sorted((a[2] - a[0]) / 1e6 for a in agg.values() if a[3] == sessions)
firsts = sorted((a[1] - a[0]) / 1e6 for a in agg.values() if a[3] == sessions)
complete = sum(1 for a in agg.values() if a[3] == sessions)
print("## Broadcast: one message to %d sessions" % sessions)
print()
print("| messages fully delivered | to first session, median (ms) | to last session, median (ms) | to last, worst (ms) | deliveries per second while fanning out |")
print("|---:|---:|---:|---:|---:|")
if lasts:
    med = lasts[len(lasts) // 2]
    print("| %d of %d | %.2f | %.2f | %.2f | %.1f M |" % (complete, msgs,
          firsts[len(firsts) // 2], med, lasts[-1], sessions / med / 1e3))
else:
    print("| 0 of %d | - | - | - | - |" % msgs)
' "$((per * PROCS))" "$MSGS"
echo
echo "$(date -u +%Y-%m-%d) · wisp $(cd "$ROOT" && git rev-parse --short HEAD) · server threads ${THREADS/#0/per core} · $PROCS client processes"
exit 0
