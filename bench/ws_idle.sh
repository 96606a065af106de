#!/usr/bin/env bash
# bench/ws_idle.sh — user-space bytes per idle WebSocket session: wisp
# (examples/echo, 1 loop) against uWebSockets' EchoServer and Node's ws,
# the same method as bench/idle.sh.
#
# For each server (pinned to CPU $SERVER_CPU, fd limit 20000): warm it with
# a short 32-byte echo load on 4 connections (bench/ws_load), read VmRSS,
# open COUNT WebSocket sessions with `bench/idle -w /ws` (each completes
# the upgrade handshake — 101 with the right Sec-WebSocket-Accept — and
# then stays idle; spread over CLIENT_PROCS processes so that no process
# needs more fds than its limit), wait SETTLE seconds, read VmRSS again,
# check that every session is still open (nothing received, no EOF), close
# them, read VmRSS once more.
#   bytes per idle session = (VmRSS with COUNT open - VmRSS before) / COUNT
# VmRSS is user-space memory and page tables, not kernel socket buffers.
#
#   UWS_ECHO=$PEERS/uws/EchoServerBench bench/ws_idle.sh
#
# Environment (defaults): COUNT=10000 SETTLE=1 SERVERS="wisp uws node"
#   IDLE_S=600 (WebSocket idle timeout given to wisp and uWS, so both keep
#   their timeout machinery armed as in production; 0: none; uWS allows at
#   most 960) CLIENT_PROCS (enough for COUNT under the client fd limit)
#   ECHO=PATH (the wisp echo binary; default bench/build.sh's build)
#   UWS_ECHO (uWS EchoServerBench from `bench/uws.sh build DIR`; skipped
#   when unset) NODE_PATH (npm package ws; Node skipped without it)
set -u
source "$(dirname "$0")/lib.sh"

COUNT=${COUNT:-10000}
SETTLE=${SETTLE:-1}
SERVERS=${SERVERS:-"wisp uws node"}
IDLE_S=${IDLE_S:-600}
NOFILE=20000
export NODE_PATH=${NODE_PATH:-$HOME/.cache/wisp-node/node_modules}

command -v prlimit >/dev/null || bench_die "prlimit (util-linux) not installed"
hard=$(ulimit -Hn)
[ "$hard" = unlimited ] && hard=1048576
per=$((hard - 64))
CLIENT_PROCS=${CLIENT_PROCS:-$(((COUNT + per - 1) / per))}
bench_setup

run=()
for s in $SERVERS; do
    case $s in
    wisp) run+=(wisp) ;;
    uws)
        if [ -z "${UWS_ECHO:-}" ] || [ ! -x "$UWS_ECHO" ]; then
            bench_log "uWS skipped: UWS_ECHO=${UWS_ECHO:-} is not an executable (see bench/uws.sh for how to build it)"
        else
            run+=(uws)
        fi ;;
    node)
        if ! command -v node >/dev/null || [ ! -d "$NODE_PATH/ws" ]; then
            bench_log "Node skipped: needs node and the npm package ws in NODE_PATH=$NODE_PATH"
        else
            run+=(node)
        fi ;;
    *) bench_die "unknown server $s (wisp uws node)" ;;
    esac
done

if [ -n "${ECHO:-}" ]; then
    src_echo=$ECHO
    TESTSERVER=$(dirname "$ECHO")/wisp-testserver
else
    TESTSERVER=$("$ROOT/bench/build.sh") || bench_die "bench/build.sh failed"
    src_echo=$(dirname "$TESTSERVER")/echo
fi
[ -x "$src_echo" ] || bench_die "$src_echo not found"
export TESTSERVER
wisp_snapshot
cp "$src_echo" "$TMPD/wisp/examples/echo"
WISP_BUILD_INFO=${WISP_BUILD_INFO/$TESTSERVER/$src_echo}
[ -n "${UWS_ECHO:-}" ] && [ -x "$UWS_ECHO" ] && cp "$UWS_ECHO" "$TMPD/uws_echo"
build_tool idle
cc -O2 -Wall -o "$TMPD/ws_load" "$BENCH_DIR/ws_load.c" || bench_die "cc ws_load"
bench_log "wisp: $WISP_BUILD_INFO"
[ -n "${UWS_ECHO:-}" ] && bench_log "uWS: $UWS_ECHO ($(cat "$UWS_ECHO.version" 2>/dev/null || echo "version unknown"))"
bench_log "COUNT=$COUNT idle WebSocket sessions per server, over $CLIENT_PROCS client process(es); idle timeout ${IDLE_S} s (wisp, uWS)"

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

start() { # start wisp|uws|node -> SPID SPORT
    local out=$TMPD/$1.$RANDOM.out lim=(prlimit "--nofile=$NOFILE:$NOFILE")
    case $1 in
    wisp) taskset -c "$SERVER_CPU" "${lim[@]}" "$TMPD/wisp/examples/echo" --host 127.0.0.1 --port 0 --threads 1 \
              --idle-timeout-ms $((IDLE_S * 1000)) >"$out" 2>&1 & ;;
    # SIGPIPE ignored as in bench/uws.sh (uSockets' writev lacks MSG_NOSIGNAL)
    uws) (trap '' PIPE; exec taskset -c "$SERVER_CPU" "${lim[@]}" "$TMPD/uws_echo" 0 "$IDLE_S") >"$out" 2>&1 & ;;
    node) taskset -c "$SERVER_CPU" "${lim[@]}" node "$BENCH_DIR/ws_node_echo.js" 0 >"$out" 2>&1 & ;;
    esac
    SPID=$!
    BENCH_PIDS+=("$SPID")
    for _ in $(seq 100); do
        SPORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$out")
        [ -n "$SPORT" ] && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    cat "$out" >&2
    bench_die "$1 did not start"
}

RES=$TMPD/ws_idle.tsv
: >"$RES"
START=$(date +%s)
for srv in "${run[@]}"; do
    start "$srv"
    pid=$SPID port=$SPORT
    fdlim=$(awk '/^Max open files/ {print $4}' "/proc/$pid/limits")
    bench_log "$srv pid $pid port $port, fd limit $fdlim"
    "$TMPD/ws_load" -p "$port" -c 4 -s 32 -d 16 -t 0.5 >/dev/null || bench_die "$srv: warm-up failed"
    sleep "$SETTLE"
    rss0=$(status_kb "$pid" VmRSS) anon0=$(status_kb "$pid" RssAnon) pte0=$(status_kb "$pid" VmPTE)
    fd0=$(ls "/proc/$pid/fd" | wc -l)

    # CLIENT_PROCS bench/idle processes, each told to go on through a fifo
    cpids=() cfds=()
    left=$COUNT
    t0=$(date +%s.%N)
    for k in $(seq "$CLIENT_PROCS"); do
        n=$((left / (CLIENT_PROCS - k + 1)))
        left=$((left - n))
        mkfifo "$TMPD/go.$k"
        "$TMPD/idle" -p "$port" -c "$n" -w /ws <"$TMPD/go.$k" >"$TMPD/idle.$k.out" 2>&1 &
        cpids+=($!)
        BENCH_PIDS+=($!)
        exec {fd}>"$TMPD/go.$k"
        cfds+=("$fd")
    done
    opened=0
    for _ in $(seq 1200); do
        opened=0 dead=0
        for k in $(seq "$CLIENT_PROCS"); do
            o=$(sed -n 's/^open //p' "$TMPD/idle.$k.out")
            [ -n "$o" ] && opened=$((opened + o))
            kill -0 "${cpids[$((k - 1))]}" 2>/dev/null || dead=1
        done
        [ "$opened" -ge "$COUNT" ] || [ "$dead" = 1 ] && break
        sleep 0.05
    done
    t1=$(date +%s.%N)
    [ "$opened" -ge "$COUNT" ] || { cat "$TMPD"/idle.*.out >&2; bench_die "$srv: only $opened of $COUNT sessions opened"; }
    sleep "$SETTLE"
    rss1=$(status_kb "$pid" VmRSS) anon1=$(status_kb "$pid" RssAnon) pte1=$(status_kb "$pid" VmPTE)
    fd1=$(ls "/proc/$pid/fd" | wc -l)
    for fd in "${cfds[@]}"; do echo go >&"$fd"; exec {fd}>&-; done
    still=0
    for k in $(seq "$CLIENT_PROCS"); do
        wait "${cpids[$((k - 1))]}" || bench_die "$srv: bench/idle exited with an error: $(cat "$TMPD/idle.$k.out")"
        bench_forget "${cpids[$((k - 1))]}"
        s=$(sed -n 's/^still-open //p' "$TMPD/idle.$k.out")
        still=$((still + ${s:-0}))
        rm -f "$TMPD/go.$k" "$TMPD/idle.$k.out"
    done
    sleep "$SETTLE"
    kill -0 "$pid" 2>/dev/null || bench_die "$srv died"
    rss2=$(status_kb "$pid" VmRSS)
    bench_log "  $srv: $opened sessions in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s; server fds $fd0 -> $fd1; VmRSS $rss0 -> $rss1 kB (after close $rss2 kB); RssAnon $anon0 -> $anon1 kB; VmPTE $pte0 -> $pte1 kB; still open $still"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$srv" "$COUNT" "$rss0" "$rss1" "$rss2" \
        "$anon0" "$anon1" "$pte0" "$pte1" "$((fd1 - fd0))" "$still" >>"$RES"
    stop_pid "$pid"
done
END=$(date +%s)

python3 - "$RES" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
names = {"wisp": "wisp", "uws": "uWS", "node": "Node ws"}
print("## User-space memory per idle WebSocket session")
print()
print("| server | idle sessions (server fds added) | still open at the end | VmRSS before → with sessions (kB) | **bytes / idle session** (VmRSS) | of which RssAnon | of which page tables (VmPTE) | VmRSS after close (kB) |")
print("|---|---:|---:|---|---:|---:|---:|---:|")
per = {}
for srv, n, r0, r1, r2, a0, a1, p0, p1, dfd, still in rows:
    n = int(n)
    b = (int(r1) - int(r0)) * 1024 / n
    per[srv] = b
    print("| %s | %d (%s) | %s | %s → %s | **%.0f** | %.0f | %.0f | %s |" % (
        names[srv], n, dfd, still, r0, r1, b, (int(a1) - int(a0)) * 1024 / n,
        (int(p1) - int(p0)) * 1024 / n, r2))
if "wisp" in per and "uws" in per and per["uws"]:
    print()
    print("wisp/uWS = %.2f" % (per["wisp"] / per["uws"]))
PY
echo
echo "$(date -u +%Y-%m-%d) · wisp $WISP_BUILD_INFO · uWS ${UWS_ECHO:-not run} · idle timeout ${IDLE_S} s · $((END - START)) s"
exit 0
