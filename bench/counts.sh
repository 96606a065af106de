#!/usr/bin/env bash
# bench/counts.sh — noise-free counts for wisp and nginx:
#   (a) user-space instructions per request (valgrind --tool=callgrind)
#   (b) syscalls per request (strace -c -f)
# each for N sequential keep-alive requests on one connection and for N
# requests pipelined in batches of 16.  See docs/benchmarks.md.
#
# Method (both servers, both modes): bench/client opens one connection,
# sends WARM requests, stops; the script zeroes callgrind (callgrind_control
# -z) or attaches strace; the client sends exactly N requests (each response
# checked: 200, 13-byte body) and stops again; the script dumps callgrind
# (callgrind_control -d) or detaches strace; only then the client closes.
# So the figures hold only the steady state of N requests: no accept, no
# close, no start-up.
#
# Environment (defaults):
#   N=20000 WARM=1024 DEPTH=16 CONNS=8
#   modes: sequential (1), pipelined DEPTH on one connection, and pipelined
#   DEPTH over CONNS connections at once ("16x8"), as a load generator
#   with several connections sends them
#   SERVERS="wisp nginx lwan"   PARTS="callgrind strace"   MODES="1 16 16x8"
#   LWAN=PATH  lwan's `hello` sample (src/samples/hello), built outside this
#              tree; without it (or if it is not executable) lwan is
#              skipped with a message.  Sequential mode only (see
#              server_modes).  LWAN_COMMIT= names its commit when
#              the binary is not inside lwan's git checkout.
#   TESTSERVER=PATH  the wisp binary, wisp-testserver (default: bench/build.sh,
#                a release+LTO build)
#   OUT=DIR                keep callgrind files, strace tables, annotations
#   TOP=25                 functions shown from callgrind_annotate
set -u
source "$(dirname "$0")/lib.sh"

N=${N:-20000}
WARM=${WARM:-1024}
DEPTH=${DEPTH:-16}
CONNS=${CONNS:-8}
MODES=${MODES:-"1 $DEPTH ${DEPTH}x${CONNS}"}
SERVERS=${SERVERS:-"wisp nginx lwan"}
PARTS=${PARTS:-"callgrind strace"}
TOP=${TOP:-25}

for t in valgrind callgrind_control callgrind_annotate strace taskset "$NGINX_BIN"; do
    command -v "$t" >/dev/null || bench_die "$t not installed"
done

# lwan (https://github.com/lpereira/lwan) is an optional peer, never part of
# this tree.  To build it (outside the repository; needs cmake, zlib1g-dev):
#   git clone https://github.com/lpereira/lwan $PEERS/lwan
#   cmake -S $PEERS/lwan -B $PEERS/lwan/build -DCMAKE_BUILD_TYPE=Release \
#         -DENABLE_BROTLI=OFF -DENABLE_ZSTD=OFF
#   make -C $PEERS/lwan/build hello
#   LWAN=$PEERS/lwan/build/src/samples/hello/hello bench/counts.sh
# The hello sample answers GET / with "Hello, World!" (text/plain), as the
# wisp fixture and nginx do here.  It reads its configuration from
# hello.conf in the working directory; start_lwan writes one that sets
# only the listener (127.0.0.1, a free port), one I/O thread, a 600 s
# keep-alive timeout (as wisp and nginx get here) and quiet = true;
# everything else is lwan's default.
LWAN_INFO=
if [[ " $SERVERS " == *" lwan "* ]]; then
    if [ -z "${LWAN:-}" ] || [ ! -x "${LWAN:-}" ]; then
        bench_log "lwan skipped: set LWAN to lwan's built src/samples/hello/hello (see the comment in bench/counts.sh)"
        SERVERS=$(tr ' ' '\n' <<<"$SERVERS" | grep -vx lwan | paste -sd' ')
    else
        LWAN=$(cd "$(dirname "$LWAN")" && pwd)/$(basename "$LWAN")
        LWAN_INFO=${LWAN_COMMIT:-$(git -C "$(dirname "$LWAN")" rev-parse --short=12 HEAD 2>/dev/null || echo 'unknown commit')}
    fi
fi

bench_setup
wisp_snapshot
build_tool client
CLIENT=$TMPD/client
OUTD=${OUT:-$TMPD/out}
mkdir -p "$OUTD"
RES=$OUTD/counts.tsv
: >"$RES"
bench_log "wisp: $WISP_BUILD_INFO"
bench_log "N=$N warm-up=$WARM pipelined depth=$DEPTH"

# start_lwan [WRAPPER...]: lwan's hello sample in its own directory with
# a hello.conf (see above); sets LWAN_PID and LWAN_PORT.
start_lwan() {
    local d=$TMPD/lwan.$RANDOM
    mkdir -p "$d"
    LWAN_PORT=$(free_port)
    cat >"$d/$(basename "$LWAN").conf" <<CONF
keep_alive_timeout = 600
quiet = true
threads = 1
listener 127.0.0.1:$LWAN_PORT
CONF
    (cd "$d" && exec taskset -c "$SERVER_CPU" "$@" "$LWAN" >"$d/out" 2>&1) &
    LWAN_PID=$!
    BENCH_PIDS+=("$LWAN_PID")
    wait_port "$LWAN_PORT" "$LWAN_PID" || { cat "$d/out" >&2; bench_die "lwan did not start"; }
}

start_server() {   # start_server wisp|nginx|lwan [WRAPPER...]: sets SPID SPORT
    local srv=$1
    shift
    if [ "$srv" = wisp ]; then
        start_wisp "$@" -- --idle-timeout-ms 600000
        SPID=$WISP_PID SPORT=$WISP_PORT
    elif [ "$srv" = lwan ]; then
        start_lwan "$@"
        SPID=$LWAN_PID SPORT=$LWAN_PORT
    else
        start_nginx "$@"
        SPID=$NGINX_PID SPORT=$NGINX_PORT
    fi
}

# drive DEPTH BEFORE_CMD AFTER_CMD: client run with the two sync points.
drive() {
    local mode=$1 before=$2 after=$3 line depth conns=1
    depth=${mode%x*}
    case $mode in *x*) conns=${mode#*x} ;; esac
    coproc CL { exec "$CLIENT" -p "$SPORT" -n "$N" -d "$depth" -c "$conns" -w "$WARM" -P; }
    local cpid=$CL_PID
    local out=${CL[0]} in=${CL[1]}
    read -r -u "$out" line || { wait "$cpid"; bench_die "client failed during warm-up"; }
    [ "$line" = warm ] || bench_die "client said '$line'"
    eval "$before"
    echo go >&"$in"
    read -r -u "$out" line || { wait "$cpid"; bench_die "client failed during the measured requests"; }
    [ "$line" = "done" ] || bench_die "client said '$line'"
    eval "$after"
    echo go >&"$in"
    wait "$cpid" || bench_die "client exited with an error"
}

# lwan answers the first of several pipelined requests and closes the
# connection (it also stalls under wrk's pipelining, PERFORMANCE.md), so
# it is counted sequentially only.
server_modes() {
    local m out=
    for m in $MODES; do
        if [ "$1" = lwan ] && [ "$m" != 1 ]; then continue; fi
        out="$out $m"
    done
    echo "$out"
}

callgrind_one() {  # callgrind_one SERVER
    local srv=$1 out=$TMPD/cg.$1 k=0 depth
    start_server "$srv" valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$out" \
        --log-file="$TMPD/valgrind.$srv.log"
    bench_log "callgrind: $srv pid $SPID port $SPORT"
    for depth in $(server_modes "$srv"); do
        k=$((k + 1))
        drive "$depth" \
            "callgrind_control -z $SPID >/dev/null 2>&1 || bench_die 'callgrind_control -z failed'" \
            "callgrind_control -d $SPID >/dev/null 2>&1 || bench_die 'callgrind_control -d failed'"
        for _ in $(seq 100); do [ -s "$out.$k" ] && break; sleep 0.1; done
        [ -s "$out.$k" ] || bench_die "no callgrind dump $out.$k"
        sleep 0.5
        local ir
        ir=$(awk '/^summary:/ {print $2}' "$out.$k")
        [ -n "$ir" ] || bench_die "no summary in $out.$k"
        printf '%s\t%s\tIr\t%s\n' "$srv" "$depth" "$ir" >>"$RES"
        bench_log "  $srv depth $depth: $ir Ir / $N = $((ir / N)) per request"
        cp "$out.$k" "$OUTD/callgrind.$srv.d$depth.out"
        callgrind_annotate --inclusive=no --threshold=100 "$out.$k" >"$OUTD/annotate.$srv.d$depth.txt" 2>/dev/null
    done
    stop_pid "$SPID"
}

all_traced() {     # all_traced PID: every thread has a tracer
    local s
    for s in /proc/"$1"/task/*/status; do
        awk '/^TracerPid:/ {exit ($2 == 0)}' "$s" || return 1
    done
}

strace_one() {     # strace_one SERVER
    local srv=$1 depth
    start_server "$srv"
    bench_log "strace: $srv pid $SPID port $SPORT"
    for depth in $(server_modes "$srv"); do
        local tab=$OUTD/strace.$srv.d$depth.txt
        drive "$depth" \
            "strace_attach $tab" \
            "kill -INT \$STRACE_PID; wait \$STRACE_PID; bench_forget \$STRACE_PID"
        printf '%s\t%s\tstrace\t%s\n' "$srv" "$depth" "$tab" >>"$RES"
        bench_log "  $srv depth $depth: $(awk '$NF == "total" {print $4}' "$tab") syscalls / $N"
    done
    stop_pid "$SPID"
}

strace_attach() {
    local tids
    tids=$(ls "/proc/$SPID/task" | paste -sd,)
    strace -c -f -p "$tids" -o "$1" 2>/dev/null &
    STRACE_PID=$!
    BENCH_PIDS+=("$STRACE_PID")
    for _ in $(seq 100); do all_traced "$SPID" && break; sleep 0.05; done
    all_traced "$SPID" || bench_die "strace did not attach"
    sleep 0.2
}

START=$(date +%s)
for part in $PARTS; do
    for srv in $SERVERS; do
        "${part}_one" "$srv"
    done
done
END=$(date +%s)

python3 - "$RES" "$N" "$OUTD" "$TOP" <<'PY'
import re, sys
res, n, outd, top = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
ir, sc = {}, {}
for line in open(res):
    srv, depth, kind, val = line.rstrip("\n").split("\t")
    if kind == "Ir":
        ir[(srv, depth)] = int(val)
    else:
        rows = []
        for l in open(val):
            f = l.split()
            if len(f) < 5 or not re.match(r"^[\d.]+$", f[0]):
                continue
            calls = int(f[3])
            errors = int(f[4]) if len(f) == 6 else 0
            rows.append((f[-1], calls, errors))
        total = [r for r in rows if r[0] == "total"]
        rows = sorted((r for r in rows if r[0] != "total"), key=lambda r: -r[1])
        sc[(srv, depth)] = (total[0][1] if total else sum(r[1] for r in rows), rows)

keys = []
for k in list(ir) + list(sc):
    if k not in keys:
        keys.append(k)
print("## Counts per request (N = %d keep-alive requests after warm-up; \"pipelined DxC\" spreads them over C connections)" % n)
print()
print("| server | requests | user-space instructions / request | syscalls / request | top syscalls per request (errors) |")
print("|---|---|---:|---:|---|")
for srv, depth in keys:
    mode = "sequential" if depth == "1" else "pipelined %s" % depth
    if "x" not in depth and depth != "1":
        mode += " (one connection)"
    i = ir.get((srv, depth))
    s = sc.get((srv, depth))
    top_s = ""
    if s:
        top_s = ", ".join("%s %.3f%s" % (name, c / n, " (%.3f)" % (e / n) if e else "")
                          for name, c, e in s[1][:5])
    print("| %s | %s | %s | %s | %s |" % (
        srv, mode, "{:,.0f}".format(i / n) if i else "—",
        "%.3f" % (s[0] / n) if s else "—", top_s))

def ratio_line(what, a, b, fmt, peer="nginx"):
    if a and b:
        print("- %s: wisp/%s = %s" % (what, peer, fmt % (a / b)))

print()
def mode_key(d):
    a, _, b = d.partition("x")
    return (int(a), int(b or 1))

for depth in sorted({d for _, d in keys}, key=mode_key):
    mode = "sequential" if depth == "1" else "pipelined %s" % depth
    for peer in ("nginx", "lwan"):
        ratio_line("instructions/request, %s" % mode, ir.get(("wisp", depth)), ir.get((peer, depth)), "%.3f", peer)
        a, b = sc.get(("wisp", depth)), sc.get((peer, depth))
        ratio_line("syscalls/request, %s" % mode, a and a[0], b and b[0], "%.3f", peer)

import os
for depth in ("1",):
    p = os.path.join(outd, "annotate.wisp.d%s.txt" % depth)
    if not os.path.exists(p):
        continue
    total = ir[("wisp", depth)]
    print()
    print("## wisp: top functions by self Ir (callgrind_annotate, %s)" % ("sequential" if depth == "1" else "pipelined"))
    print()
    print("| Ir / request | % | function |")
    print("|---:|---:|---|")
    shown = 0
    for l in open(p):
        m = re.match(r"\s*([\d,]+) \(\s*([\d.]+)%\)\s+(\S+?):(\S+)(?: \[(.*)\])?$", l)
        if not m:
            continue
        cost = int(m.group(1).replace(",", ""))
        if cost >= 0.99 * total:
            continue    # frames that were on the stack when counters were zeroed
        fn = m.group(4)
        obj = os.path.basename(m.group(5) or "")
        src = re.sub(r"^.*?/src/", "src/", m.group(3))
        print("| %.1f | %s | `%s` (%s) |" % (cost / n, m.group(2), fn, src if src.startswith("src/") else obj))
        shown += 1
        if shown >= top:
            break
PY
echo
echo "$(date -u +%Y-%m-%d) · wisp $WISP_BUILD_INFO · $($NGINX_BIN -v 2>&1 | sed 's/.*: //')${LWAN_INFO:+ · lwan $LWAN_INFO (hello sample)} · $((END - START)) s"
[ -n "${OUT:-}" ] && bench_log "callgrind files, annotations and strace tables in $OUTD"
exit 0
