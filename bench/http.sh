#!/usr/bin/env bash
# bench/http.sh — throughput, latency and requests per server-CPU-second,
# wisp (wisp-testserver --threads 1) against nginx (1 worker, `return 200`),
# alternated over ROUNDS rounds in one run.  See docs/benchmarks.md.
#
# Server pinned to CPU $SERVER_CPU (0), loader to CPU $LOADER_CPU (1).
#
# Environment (defaults):
#   DURATION=10s       wrk -d
#   ROUNDS=3           rounds; servers alternate, order flips every round
#   H2N=1000000        h2load -n without pipelining
#   H2N_PIPE=4000000   h2load -n with -m16
#   SCENARIOS="wrk-c64 wrk-c256 wrk-c256-p16 h2load-c64 h2load-c64-m16"
#   TESTSERVER=PATH  the wisp binary, wisp-testserver (default: bench/build.sh,
#                a release+LTO build)
#   OUT=DIR            keep raw outputs and results.tsv in DIR
#   PAUSE=1            seconds between runs
#
# Output: one line per run on stderr, the markdown table on stdout.
set -u
source "$(dirname "$0")/lib.sh"

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
H2N=${H2N:-1000000}
H2N_PIPE=${H2N_PIPE:-4000000}
SCENARIOS=${SCENARIOS:-"wrk-c64 wrk-c256 wrk-c256-p16 h2load-c64 h2load-c64-m16"}
PAUSE=${PAUSE:-1}

for t in wrk h2load taskset "$NGINX_BIN"; do
    command -v "$t" >/dev/null || bench_die "$t not installed"
done

bench_setup
wisp_snapshot
OUTD=${OUT:-$TMPD/out}
mkdir -p "$OUTD"
RES=$OUTD/results.tsv
printf 'round\tscenario\tserver\trequests\tseconds\trps\tp99_us\tmean_us\tcpu_s\treq_per_cpu_s\tbad\tnote\n' >"$RES"

bench_log "wisp: $WISP_BUILD_INFO"
bench_log "nginx: $($NGINX_BIN -v 2>&1)"
bench_log "rounds=$ROUNDS duration=$DURATION h2load -n $H2N / -m16 -n $H2N_PIPE"

start_wisp -- --idle-timeout-ms 600000
start_nginx
bench_log "wisp pid $WISP_PID port $WISP_PORT; nginx pid $NGINX_PID port $NGINX_PORT"

# Pre-flight: every response 200 with the 13-byte body, sequential and
# pipelined (wrk only counts non-2xx; h2load only status classes).
build_tool client
for p in "$WISP_PORT" "$NGINX_PORT"; do
    "$TMPD/client" -p "$p" -n 1000 -q && "$TMPD/client" -p "$p" -n 1600 -d 16 -q ||
        bench_die "pre-flight check failed on port $p"
done

CRASHES=0

server_pid() { if [ "$1" = wisp ]; then echo "$WISP_PID"; else echo "$NGINX_PID"; fi; }
server_port() { if [ "$1" = wisp ]; then echo "$WISP_PORT"; else echo "$NGINX_PORT"; fi; }

loader_cmd() {   # loader_cmd SCENARIO URL -> prints tool name, sets CMD
    local sc=$1 url=$2
    case $sc in
    wrk-c64)        CMD=(wrk -t1 -c64 -d"$DURATION" --latency "$url"); TOOL=wrk ;;
    wrk-c256)       CMD=(wrk -t1 -c256 -d"$DURATION" --latency "$url"); TOOL=wrk ;;
    wrk-c256-p16)   CMD=(wrk -t1 -c256 -d"$DURATION" --latency -s "$BENCH_DIR/pipeline.lua" "$url" -- 16); TOOL=wrk-pipe ;;
    h2load-c64)     CMD=(h2load --h1 -t1 -c64 -n"$H2N" "$url"); TOOL=h2load ;;
    h2load-c64-m16) CMD=(h2load --h1 -t1 -c64 -m16 -n"$H2N_PIPE" "$url"); TOOL=h2load ;;
    *) bench_die "unknown scenario $sc" ;;
    esac
}

run_one() {      # run_one ROUND SCENARIO SERVER
    local rnd=$1 sc=$2 srv=$3 pid port raw t0 t1 parsed
    pid=$(server_pid "$srv")
    port=$(server_port "$srv")
    loader_cmd "$sc" "http://127.0.0.1:$port/"
    raw=$OUTD/$sc.$srv.r$rnd.txt
    t0=$(cpu_ticks "$pid")
    # In the background + wait, so that a signal stops the script (and,
    # through the trap, the loader) at once.
    taskset -c "$LOADER_CPU" "${CMD[@]}" >"$raw" 2>&1 &
    local lpid=$!
    BENCH_PIDS+=("$lpid")
    wait "$lpid"
    bench_forget "$lpid"
    t1=$(cpu_ticks "$pid")
    parsed=$(python3 "$BENCH_DIR/report.py" parse "$TOOL" "$raw")
    local note=
    if ! kill -0 "$pid" 2>/dev/null || [ "$t1" -lt 0 ]; then
        note="SERVER DIED during this run"
        CRASHES=$((CRASHES + 1))
        bench_log "!! $srv died during $sc round $rnd; restarting it"
        wait "$pid" 2>/dev/null
        bench_log "   exit status $?; stderr tail:"; tail -5 "${WISP_ERR:-/dev/null}" >&2
        bench_forget "$pid"
        if [ "$srv" = wisp ]; then start_wisp -- --idle-timeout-ms 600000; else start_nginx; fi
        t1=$t0
    fi
    python3 - "$rnd" "$sc" "$srv" "$t0" "$t1" "$CLK_TCK" "$parsed" "$note" >>"$RES" <<'PY'
import sys
rnd, sc, srv, t0, t1, hz, parsed, note = sys.argv[1:]
reqs, secs, rps, p99, mean, bad, pnote = parsed.split("\t")
cpu = (int(t1) - int(t0)) / int(hz)
rpc = float(reqs) / cpu if cpu > 0 else float("nan")
notes = "; ".join(x for x in (pnote, note) if x)
print("\t".join([rnd, sc, srv, reqs, secs, rps, p99, mean, "%.2f" % cpu, "%.0f" % rpc, bad, notes]))
PY
    tail -1 "$RES" | awk -F'\t' '{printf "  r%s %-15s %-5s %10.0f req/s  p99 %s us  cpu %s s  %s req/CPU-s  bad %s %s\n", $1, $2, $3, $6, $7, $9, $10, $11, $12}' >&2
    sleep "$PAUSE"
}

START=$(date +%s)
for rnd in $(seq 1 "$ROUNDS"); do
    if [ $((rnd % 2)) -eq 1 ]; then order="wisp nginx"; else order="nginx wisp"; fi
    bench_log "round $rnd/$ROUNDS ($order)"
    for sc in $SCENARIOS; do
        for srv in $order; do
            run_one "$rnd" "$sc" "$srv"
        done
    done
done
END=$(date +%s)

if [ -s "$WISP_ERR" ]; then
    bench_log "wisp stderr (last lines):"
    tail -20 "$WISP_ERR" >&2
fi
if [ -s "$NGINX_DIR/error.log" ]; then
    bench_log "nginx error.log (last lines):"
    tail -20 "$NGINX_DIR/error.log" >&2
fi

echo "## HTTP throughput: wisp vs nginx, $ROUNDS rounds, medians"
echo
echo "$(date -u +%Y-%m-%d) · wisp $WISP_BUILD_INFO · $($NGINX_BIN -v 2>&1 | sed 's/.*: //') · $(nproc) CPUs · server on CPU $SERVER_CPU, loader on CPU $LOADER_CPU · wrk -d$DURATION · h2load -n$H2N / -m16 -n$H2N_PIPE · $((END - START)) s"
echo
python3 "$BENCH_DIR/report.py" summary "$RES"
[ "$CRASHES" -eq 0 ] || echo "**$CRASHES server crash(es) during the run, see the notes.**"
[ -n "${OUT:-}" ] && bench_log "raw outputs in $OUTD"
exit 0
