#!/usr/bin/env bash
# bench/idle.sh — user-space bytes per idle keep-alive connection, wisp vs
# nginx.  See docs/benchmarks.md.
#
# For each server (one worker, pinned to CPU $SERVER_CPU, fd limit 20000):
# warm it with a few requests on one connection, read VmRSS, open COUNT
# connections with bench/idle (each sends one GET / and reads the 200,
# then stays idle), wait SETTLE seconds, read VmRSS again, check that all
# connections are still open, close them, read VmRSS once more.
#   bytes per idle connection = (VmRSS with COUNT open - VmRSS before) / COUNT
# VmRSS counts user-space memory and page tables, not kernel socket
# buffers (~4.7 KB per loopback connection for every server).
#
# Environment (defaults): COUNT=10000 SETTLE=1 SERVERS="wisp nginx"
#   TESTSERVER=PATH  the wisp binary, wisp-testserver (default: bench/build.sh,
#                a release+LTO build)
set -u
source "$(dirname "$0")/lib.sh"

COUNT=${COUNT:-10000}
SETTLE=${SETTLE:-1}
SERVERS=${SERVERS:-"wisp nginx"}
NOFILE=20000

command -v prlimit >/dev/null || bench_die "prlimit (util-linux) not installed"
bench_setup
wisp_snapshot
build_tool idle
build_tool client
bench_log "wisp: $WISP_BUILD_INFO"
bench_log "COUNT=$COUNT idle connections per server"

status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

RES=$TMPD/idle.tsv
: >"$RES"
START=$(date +%s)
for srv in $SERVERS; do
    if [ "$srv" = wisp ]; then
        start_wisp prlimit --nofile=$NOFILE:$NOFILE -- --idle-timeout-ms 600000 --max-conns 100000
        pid=$WISP_PID port=$WISP_PORT
    else
        start_nginx prlimit --nofile=$NOFILE:$NOFILE
        pid=$NGINX_PID port=$NGINX_PORT
    fi
    lim=$(awk '/^Max open files/ {print $4}' "/proc/$pid/limits")
    bench_log "$srv pid $pid port $port, fd limit $lim"
    "$TMPD/client" -p "$port" -n 64 -q || bench_die "$srv: warm-up failed"
    "$TMPD/client" -p "$port" -n 64 -d 16 -q || bench_die "$srv: warm-up failed"
    sleep "$SETTLE"
    rss0=$(status_kb "$pid" VmRSS) anon0=$(status_kb "$pid" RssAnon) pte0=$(status_kb "$pid" VmPTE)
    fd0=$(ls "/proc/$pid/fd" | wc -l)

    coproc IDLE { exec "$TMPD/idle" -p "$port" -c "$COUNT"; }
    ipid=$IDLE_PID
    iout=${IDLE[0]} iin=${IDLE[1]}
    t0=$(date +%s.%N)
    read -r -u "$iout" line || { wait "$ipid"; bench_die "$srv: bench/idle failed"; }
    t1=$(date +%s.%N)
    sleep "$SETTLE"
    rss1=$(status_kb "$pid" VmRSS) anon1=$(status_kb "$pid" RssAnon) pte1=$(status_kb "$pid" VmPTE)
    fd1=$(ls "/proc/$pid/fd" | wc -l)
    echo go >&"$iin"
    read -r -u "$iout" still || still="still-open ?"
    wait "$ipid" || bench_die "$srv: bench/idle exited with an error"
    sleep "$SETTLE"
    kill -0 "$pid" 2>/dev/null || bench_die "$srv died"
    rss2=$(status_kb "$pid" VmRSS)
    bench_log "  $srv: $line in $(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}') s; server fds $fd0 -> $fd1; VmRSS $rss0 -> $rss1 kB (after close $rss2 kB); RssAnon $anon0 -> $anon1 kB; VmPTE $pte0 -> $pte1 kB; $still"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$srv" "$COUNT" "$rss0" "$rss1" "$rss2" \
        "$anon0" "$anon1" "$pte0" "$pte1" "$((fd1 - fd0))" "${still#still-open }" >>"$RES"
    stop_pid "$pid"
done
END=$(date +%s)

python3 - "$RES" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
print("## User-space memory per idle keep-alive connection")
print()
print("| server | idle connections (server fds added) | still open at the end | VmRSS before → with connections (kB) | **bytes / idle connection** (VmRSS) | of which RssAnon | of which page tables (VmPTE) | VmRSS after close (kB) |")
print("|---|---:|---:|---|---:|---:|---:|---:|")
per = {}
for srv, n, r0, r1, r2, a0, a1, p0, p1, dfd, still in rows:
    n = int(n)
    b = (int(r1) - int(r0)) * 1024 / n
    per[srv] = b
    print("| %s | %d (%s) | %s | %s → %s | **%.0f** | %.0f | %.0f | %s |" % (
        srv, n, dfd, still, r0, r1, b, (int(a1) - int(a0)) * 1024 / n,
        (int(p1) - int(p0)) * 1024 / n, r2))
if "wisp" in per and "nginx" in per and per["nginx"]:
    print()
    print("wisp/nginx = %.2f" % (per["wisp"] / per["nginx"]))
PY
echo
echo "$(date -u +%Y-%m-%d) · wisp $WISP_BUILD_INFO · $($NGINX_BIN -v 2>&1 | sed 's/.*: //') · $((END - START)) s"
exit 0
