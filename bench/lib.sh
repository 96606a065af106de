# bench/lib.sh — helpers shared by bench/http.sh, counts.sh and idle.sh.
# Sourced, not executed.  Every process started through these helpers is
# recorded in BENCH_PIDS and stopped by bench_cleanup (installed as trap).

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
BENCH_PIDS=()
NGINX_BIN=${NGINX:-/usr/sbin/nginx}
SERVER_CPU=${SERVER_CPU:-0}
LOADER_CPU=${LOADER_CPU:-1}

bench_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_die() { bench_log "ERROR: $*"; exit 1; }

bench_setup() {   # creates $TMPD, installs the trap
    TMPD=$(mktemp -d /tmp/wisp-bench.XXXXXX)
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local p
    for p in "${BENCH_PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${BENCH_PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    BENCH_PIDS=()
    if [ -n "${TMPD:-}" ] && [ -z "${KEEP_TMP:-}" ]; then rm -rf "$TMPD"; fi
}

bench_forget() {  # bench_forget PID: drop a stopped pid from the list
    local keep=() p
    for p in "${BENCH_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    BENCH_PIDS=("${keep[@]}")
}

stop_pid() {      # stop_pid PID: SIGTERM, wait, SIGKILL if needed
    local p=$1
    kill "$p" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    bench_forget "$p"
}

# Copy wisp-testserver and its libwisp.so into $TMPD so that concurrent
# rebuilds of build/ cannot swap the binary in the middle of a run.
# TESTSERVER=path picks another build (e.g. a release build; HELLO=path is
# still read, as an older name).  Sets SERVER_BIN and WISP_BUILD_INFO.
wisp_snapshot() {
    local src=${TESTSERVER:-${HELLO:-}}
    if [ -z "$src" ]; then
        src=$("$ROOT/bench/build.sh") || bench_die "bench/build.sh failed"
    fi
    [ -x "$src" ] || bench_die "$src not found"
    mkdir -p "$TMPD/wisp/examples"
    cp "$src" "$TMPD/wisp/examples/wisp-testserver"
    local lib
    lib=$(dirname "$src")/../libwisp.so.0
    [ -e "$lib" ] && cp -L "$lib" "$TMPD/wisp/libwisp.so.0"
    SERVER_BIN=$TMPD/wisp/examples/wisp-testserver
    local info bdir
    bdir=$(cd "$(dirname "$src")/.." && pwd)
    info=$(python3 - "$bdir" <<'PY' 2>/dev/null
import json, sys
o = {x['name']: x['value'] for x in json.load(open(sys.argv[1] + '/meson-info/intro-buildoptions.json'))}
print("buildtype=%s b_ndebug=%s b_lto=%s default_library=%s" % (o.get("buildtype"), o.get("b_ndebug"), o.get("b_lto"), o.get("default_library")))
PY
)
    # The commit of the tree the build came from ("-dirty": src/, include/,
    # examples/ or meson.build had uncommitted edits when this ran, so the
    # binary may contain them).  Outside git: $WISP_COMMIT.
    local srcdir commit
    srcdir=$(python3 - "$bdir" <<'PY' 2>/dev/null
import json, os, sys
files = json.load(open(sys.argv[1] + '/meson-info/intro-buildsystem_files.json'))
print(min((os.path.dirname(f) for f in files if f.endswith('meson.build')), key=len))
PY
)
    if commit=$(git -C "${srcdir:-$ROOT}" rev-parse --short=7 HEAD 2>/dev/null); then
        [ -n "$(git -C "${srcdir:-$ROOT}" status --porcelain -- src include examples meson.build 2>/dev/null)" ] &&
            commit="$commit-dirty"
    else
        commit=${WISP_COMMIT:-unknown commit}
    fi
    WISP_BUILD_INFO="$src ($commit${info:+, $info})"
}

build_tool() {    # build_tool NAME -> $TMPD/NAME from bench/NAME.c
    cc -O2 -Wall -o "$TMPD/$1" "$BENCH_DIR/$1.c" || bench_die "cannot build bench/$1.c"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {     # wait_port PORT PID: until something accepts on PORT
    local port=$1 pid=$2
    for _ in $(seq 600); do
        kill -0 "$pid" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# start_wisp [WRAPPER...] -- [wisp-testserver args...]: starts
# `taskset -c SERVER_CPU WRAPPER... wisp-testserver --threads 1 --port 0 ARGS`
# (WRAPPER: e.g. valgrind ..., prlimit ...); sets WISP_PID and WISP_PORT.
start_wisp() {
    local wrap=()
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do wrap+=("$1"); shift; done
    [ "${1:-}" = "--" ] && shift
    local out=$TMPD/wisp-testserver.$RANDOM.out
    taskset -c "$SERVER_CPU" "${wrap[@]}" "$SERVER_BIN" --host 127.0.0.1 --port 0 --threads 1 "$@" >"$out" 2>"$out.err" &
    WISP_PID=$!
    BENCH_PIDS+=("$WISP_PID")
    WISP_PORT=
    for _ in $(seq 600); do
        WISP_PORT=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$out")
        [ -n "$WISP_PORT" ] && break
        kill -0 "$WISP_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$WISP_PORT" ] || { cat "$out.err" >&2; bench_die "wisp-testserver did not start"; }
    WISP_ERR=$out.err
}

# nginx_conf DIR PORT: a 1-worker, single-process nginx answering
# GET / with "Hello, World!" (text/plain), everything inside DIR.
nginx_conf() {
    local d=$1 port=$2
    mkdir -p "$d/tmp"
    cat >"$d/nginx.conf" <<CONF
worker_processes 1;
daemon off;
master_process off;
pid $d/nginx.pid;
error_log $d/error.log warn;
worker_rlimit_nofile 20000;
events {
    worker_connections 20000;
}
http {
    access_log off;
    default_type text/plain;
    keepalive_requests 1000000;
    keepalive_timeout 600s;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        location / {
            return 200 "Hello, World!";
        }
    }
}
CONF
}

# start_nginx [WRAPPER...]: `taskset -c SERVER_CPU WRAPPER... nginx`;
# sets NGINX_PID, NGINX_PORT, NGINX_DIR.
start_nginx() {
    local d=$TMPD/nginx.$RANDOM
    NGINX_PORT=$(free_port)
    nginx_conf "$d" "$NGINX_PORT"
    taskset -c "$SERVER_CPU" "$@" "$NGINX_BIN" -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" >"$d/out" 2>&1 &
    NGINX_PID=$!
    BENCH_PIDS+=("$NGINX_PID")
    wait_port "$NGINX_PORT" "$NGINX_PID" || { cat "$d/out" "$d/error.log" >&2; bench_die "nginx did not start"; }
    NGINX_DIR=$d
}

cpu_ticks() {     # utime+stime (clock ticks) of PID, all threads
    local s
    s=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -1; return; }
    s=${s##*) }
    awk '{print $12 + $13}' <<<"$s"
}

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

CLK_TCK=$(getconf CLK_TCK)

# wait_quiet MAX_PCT MAX_WAIT_S: wait until the whole machine (all CPUs,
# /proc/stat) was less than MAX_PCT % busy over one second, so that a
# figure is not taken while another job shares the cores. Gives up after
# MAX_WAIT_S seconds (returns 1, logs a warning). Takes at least 1 s.
wait_quiet() {
    local max=$1 limit=$2 t0=$SECONDS said= b0 t0s b1 t1s pct
    while :; do
        read -r b0 t0s < <(awk '$1 == "cpu" {b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6}' /proc/stat)
        sleep 1
        read -r b1 t1s < <(awk '$1 == "cpu" {b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6}' /proc/stat)
        pct=$(((b1 - b0) * 100 / (t1s - t0s + 1)))
        [ "$pct" -lt "$max" ] && { [ -n "$said" ] && bench_log "machine quiet again after $((SECONDS - t0)) s"; return 0; }
        if [ -z "$said" ]; then
            bench_log "machine $pct % busy (others running?): waiting for < $max % (up to $limit s)"
            said=1
        fi
        if [ $((SECONDS - t0)) -ge "$limit" ]; then
            bench_log "WARNING: machine still $pct % busy after $limit s; measuring anyway"
            return 1
        fi
    done
}
