#!/usr/bin/env bash
# bench/client.sh — wisp's HTTP client (wisp/client.h) as a load
# generator against nginx, beside wrk in the same run: requests per
# second of the client's own CPU time (user + system), so that the
# figure says what a request costs the client, not how fast nginx is.
# See docs/benchmarks.md.
#
# nginx: one worker pinned to SERVER_CPU, answering "Hello, World!"
# (bench/lib.sh). Each client runs on one thread pinned to CLIENT_CPU,
# with CONNS keep-alive connections:
#   wisp:  bench/httpclient_load URL N CONNS (N requests, CONNS in flight)
#   wrk:   wrk -t1 -c CONNS -d DURATION
# CPU seconds are the child's rusage (python3's RUSAGE_CHILDREN).
#
# Environment (defaults): N=200000 CONNS=16 DURATION=5 CLIENT_CPU=1
set -u
source "$(dirname "$0")/lib.sh"

N=${N:-200000}
CONNS=${CONNS:-16}
DURATION=${DURATION:-5}
CLIENT_CPU=${CLIENT_CPU:-1}

command -v wrk >/dev/null || bench_die "wrk not installed"
bench_setup
dir=$("$ROOT/bench/build.sh" >/dev/null; echo "${BUILD_DIR:-$ROOT/build-bench}")
cc -O2 -Wall -I"$ROOT/include" -o "$TMPD/httpclient_load" \
    "$BENCH_DIR/httpclient_load.c" "$dir/libwisp.a" -lpthread \
    || bench_die "cannot build bench/httpclient_load.c"
start_nginx
URL="http://127.0.0.1:$NGINX_PORT/"
bench_log "nginx on $NGINX_PORT (cpu $SERVER_CPU); clients on cpu $CLIENT_CPU, $CONNS connections"

cpu_of() {  # cpu_of CMD...: run it, print its output, then "cpu_s X"
    /usr/bin/python3 - "$@" <<'PY'
import resource, subprocess, sys
p = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(p.stdout)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print("child_cpu_s %.3f" % (r.ru_utime + r.ru_stime))
PY
}

wait_quiet 20 30 || true
out=$(cpu_of taskset -c "$CLIENT_CPU" "$TMPD/httpclient_load" "$URL" "$N" "$CONNS")
echo "$out" >&2
w_req=$(awk '/^requests/ {print $2}' <<<"$out")
w_err=$(awk '/^requests/ {print $4}' <<<"$out")
w_cpu=$(awk '/^child_cpu_s/ {print $2}' <<<"$out")
w_wall=$(awk '/^requests/ {print $8}' <<<"$out")

wait_quiet 20 30 || true
out=$(cpu_of taskset -c "$CLIENT_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" "$URL")
echo "$out" >&2
k_req=$(awk '/requests in/ {print $1}' <<<"$out")
k_cpu=$(awk '/^child_cpu_s/ {print $2}' <<<"$out")

python3 - "$w_req" "$w_err" "$w_cpu" "$w_wall" "$k_req" "$k_cpu" <<'PY'
import sys
wr, we, wc, ww, kr, kc = sys.argv[1:]
wr, wc, ww, kr, kc = int(wr), float(wc), float(ww), int(kr), float(kc)
print("| client | requests | errors | client CPU s | requests per client-CPU-second |")
print("|---|---:|---:|---:|---:|")
print("| wisp_client (%s wall s) | %d | %s | %.2f | %.0f |" % (ww, wr, we, wc, wr / wc))
print("| wrk | %d | 0 | %.2f | %.0f |" % (kr, kc, kr / kc))
print("wisp_client / wrk: %.2f" % ((wr / wc) / (kr / kc)))
PY
