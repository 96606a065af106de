#!/usr/bin/env bash
# bench/uws.sh — WebSocket echo: wisp (examples/echo, 1 loop) against
# uWebSockets' EchoServer and Node's ws (bench/ws_node_echo.js) in the same
# run. Every round starts each server afresh, in an order that rotates from
# round to round, and runs the bench/ws_load workloads against it: CONNS
# (100) connections, 32-byte and 64 KiB binary messages, strict ping-pong
# (1 in flight) and 16 in flight per connection. Server on CPU 0, loader on
# CPU 1. Reports medians of messages/s, p99, messages per server-CPU-second
# (utime+stime of the server from /proc/PID/stat around each load run) and
# the ratios wisp/uWS and wisp/Node.
#
# Before the rounds every server is checked once (fresh process) with a
# small client embedded below: handshake and Sec-WebSocket-Accept, binary
# echoes from 0 B to 1 MiB compared byte for byte, a text message, 16
# messages in one write echoed in order, a fragmented message with a ping
# between the fragments, ping -> pong, close. (bench/ws_load checks only
# the length of each echo.) A server that fails is reported and skipped.
#
#   UWS_ECHO=$PEERS/uws/EchoServerBench DURATION=3 ROUNDS=3 bench/uws.sh
#
# uWebSockets is not part of this tree and is never built by default; a
# server that is missing is skipped with a message. To build it (outside
# the repository):
#   git clone https://github.com/uNetworking/uWebSockets $PEERS/uws
#   git -C $PEERS/uws submodule update --init uSockets
#   bench/uws.sh build $PEERS/uws      # -> $PEERS/uws/EchoServerBench
# `build` runs uSockets' own Makefile (`make -C uSockets`: -O3 -flto
# -DLIBUS_NO_SSL -std=c11), writes examples/EchoServerBench.cpp — a copy of
# examples/EchoServer.cpp whose only changes are: port from argv[1] (0 picks
# one), bind 127.0.0.1, print "listening on 127.0.0.1:PORT", idle timeout
# from argv[2] (default: the example's 16 s) — and compiles it with the
# flags of uWebSockets' build.c for WITH_ZLIB=0 (no SSL, no
# permessage-deflate): g++ -march=native -O3 -Wpedantic -Wall -Wextra
# -Wsign-conversion -Wconversion -std=c++2b -Isrc -IuSockets/src -flto=auto
# -DUWS_NO_ZLIB examples/EchoServerBench.cpp uSockets/*.o. The commit
# (git, or UWS_COMMIT= for a tree outside git) goes to
# EchoServerBench.version and into the table footer. The bench starts
# EchoServerBench with SIGPIPE ignored: uSockets writes large messages with
# writev(), which has no MSG_NOSIGNAL, and the example does not ignore the
# signal, so a client closing while an echo is written kills the server.
#
# Environment (defaults): DURATION=3 ROUNDS=3 CONNS=100 SIZES="32 65536"
#   DEPTHS="1 16" SERVERS="wisp uws node" UWS_ECHO (none: uWS skipped)
#   UWS_IDLE=16 (uWS idleTimeout, seconds; the example's value)
#   WISP_ARGS="" (extra examples/echo options) ECHO=PATH (the wisp echo
#   binary; default: bench/build.sh's release+LTO build) NODE_PATH (must
#   hold the npm package ws; Node is skipped without it) QUIET_PCT=15
#   QUIET_WAIT=300 (before each run wait until the whole machine was less
#   than QUIET_PCT % busy over a second, at most QUIET_WAIT s: the cores
#   may be shared with other jobs; QUIET_PCT=101 turns it off)
#   DISTURB_MAX=10 RETRIES=2 (a run during which processes other than the
#   server and the loader used more than DISTURB_MAX % of a core on the two
#   cores is repeated, at most RETRIES times; the medians leave such runs
#   out when a cell has undisturbed ones) OUT=DIR (keep results.tsv and
#   the server logs)
set -u
source "$(dirname "$0")/lib.sh"

# --- bench/uws.sh build DIR --------------------------------------------
if [ "${1:-}" = build ]; then
    src=${2:?usage: bench/uws.sh build UWEBSOCKETS_DIR}
    src=$(cd "$src" && pwd) || exit 1
    [ -f "$src/src/App.h" ] && [ -f "$src/uSockets/src/libusockets.h" ] ||
        bench_die "$src must be a uWebSockets tree with uSockets in $src/uSockets"
    command -v g++ >/dev/null || bench_die "g++ not installed (apt-get install -y g++)"
    make -C "$src/uSockets" >"$src/uSockets/build.log" 2>&1 ||
        { tail -20 "$src/uSockets/build.log" >&2; bench_die "uSockets build failed"; }
    python3 - "$src/examples/EchoServer.cpp" "$src/examples/EchoServerBench.cpp" <<'PY' || bench_die "cannot patch EchoServer.cpp (upstream changed?)"
import sys
s = open(sys.argv[1]).read()
def sub(old, new):
    global s
    if s.count(old) != 1:
        sys.exit("EchoServer.cpp: expected once: %r" % old)
    s = s.replace(old, new)
sub('#include "App.h"\n', '#include "App.h"\n#include <cstdlib>\n')
sub('int main() {', '''/* wisp bench patch: EchoServerBench [PORT [IDLE_TIMEOUT_S]]: port 0 picks one,
 * binds 127.0.0.1, prints "listening on 127.0.0.1:PORT"; idle timeout
 * defaults to the example's 16 s (0 disables it). Otherwise EchoServer.cpp as is. */
int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 9001;
    unsigned short idle = argc > 2 ? (unsigned short) atoi(argv[2]) : 16;''')
sub('.idleTimeout = 16,', '.idleTimeout = idle,')
sub('.listen(9001, [](auto *listen_socket) {', '.listen("127.0.0.1", port, [](auto *listen_socket) {')
sub('std::cout << "Listening on port " << 9001 << std::endl;',
    'std::cout << "listening on 127.0.0.1:" << us_socket_local_port(0, (struct us_socket_t *) listen_socket) << std::endl;')
open(sys.argv[2], "w").write(s)
PY
    flags="-march=native -O3 -Wpedantic -Wall -Wextra -Wsign-conversion -Wconversion -std=c++2b -Isrc -IuSockets/src -flto=auto -DUWS_NO_ZLIB"
    (cd "$src" && g++ $flags examples/EchoServerBench.cpp uSockets/*.o -o EchoServerBench) >"$src/EchoServerBench.log" 2>&1 ||
        { grep -v Wconversion "$src/EchoServerBench.log" | tail -20 >&2; bench_die "EchoServerBench build failed"; }
    ver=${UWS_COMMIT:-}
    if [ -z "$ver" ]; then
        ver="uWebSockets $(git -C "$src" rev-parse HEAD 2>/dev/null || echo '?'), uSockets $(git -C "$src/uSockets" rev-parse HEAD 2>/dev/null || echo '?')"
    fi
    echo "$ver; g++ $(g++ -dumpfullversion) $flags" >"$src/EchoServerBench.version"
    bench_log "built $src/EchoServerBench ($(cat "$src/EchoServerBench.version"))"
    echo "$src/EchoServerBench"
    exit 0
fi

DURATION=${DURATION:-3}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-100}
SIZES=${SIZES:-"32 65536"}
DEPTHS=${DEPTHS:-"1 16"}
SERVERS=${SERVERS:-"wisp uws node"}
UWS_IDLE=${UWS_IDLE:-16}
WISP_ARGS=${WISP_ARGS:-}
QUIET_PCT=${QUIET_PCT:-15}
QUIET_WAIT=${QUIET_WAIT:-300}
DISTURB_MAX=${DISTURB_MAX:-10}
RETRIES=${RETRIES:-2}
export NODE_PATH=${NODE_PATH:-$HOME/.cache/wisp-node/node_modules}

bench_setup
want=()
for s in $SERVERS; do
    case $s in
    wisp) want+=(wisp) ;;
    uws)
        if [ -z "${UWS_ECHO:-}" ] || [ ! -x "$UWS_ECHO" ]; then
            bench_log "uWS skipped: UWS_ECHO=${UWS_ECHO:-} is not an executable. Build it with"
            bench_log "  git clone https://github.com/uNetworking/uWebSockets DIR && git -C DIR submodule update --init uSockets"
            bench_log "  bench/uws.sh build DIR   # then UWS_ECHO=DIR/EchoServerBench bench/uws.sh"
        else
            want+=(uws)
        fi ;;
    node)
        if ! command -v node >/dev/null || [ ! -d "$NODE_PATH/ws" ]; then
            bench_log "Node skipped: needs node and the npm package ws in NODE_PATH=$NODE_PATH"
        else
            want+=(node)
        fi ;;
    *) bench_die "unknown server $s (wisp uws node)" ;;
    esac
done
[ ${#want[@]} -gt 0 ] || bench_die "no server to run"

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
ECHO_BIN=$TMPD/wisp/examples/echo
WISP_BUILD_INFO=${WISP_BUILD_INFO/$TESTSERVER/$src_echo}
if [ -n "${UWS_ECHO:-}" ] && [ -x "$UWS_ECHO" ]; then
    cp "$UWS_ECHO" "$TMPD/uws_echo"
    UWS_INFO="$UWS_ECHO ($(cat "$UWS_ECHO.version" 2>/dev/null || echo "version unknown"); idleTimeout $UWS_IDLE s)"
fi
cc -O2 -Wall -o "$TMPD/ws_load" "$BENCH_DIR/ws_load.c" || bench_die "cc ws_load"

start() { # start wisp|uws|node -> SPID SPORT
    local out=$TMPD/$1.$RANDOM.out
    case $1 in
    wisp) taskset -c "$SERVER_CPU" "$ECHO_BIN" --host 127.0.0.1 --port 0 --threads 1 $WISP_ARGS >"$out" 2>&1 & ;;
    # SIGPIPE ignored: uSockets' writev path (large messages) lacks
    # MSG_NOSIGNAL and EchoServer does not ignore the signal, so a client
    # that disconnects while an echo is being written kills it.
    uws) (trap '' PIPE; exec taskset -c "$SERVER_CPU" "$TMPD/uws_echo" 0 "$UWS_IDLE") >"$out" 2>&1 & ;;
    node) taskset -c "$SERVER_CPU" node "$BENCH_DIR/ws_node_echo.js" 0 >"$out" 2>&1 & ;;
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

core_ticks() { # core_ticks CPU -> "busy total" jiffies of that CPU
    awk -v c="cpu$1" '$1 == c {b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6}' /proc/stat
}

ws_check() { # ws_check PORT: protocol checks; prints lines, last "RESULT ok|FAIL"
    python3 - "$1" <<'PY'
import base64, hashlib, os, socket, struct, sys

def frame(op, payload, fin=True, mask=b"\x01\x02\x03\x04"):
    h = bytes([(0x80 if fin else 0) | op])
    n = len(payload)
    if n < 126: h += bytes([0x80 | n])
    elif n < 65536: h += bytes([0x80 | 126]) + struct.pack("!H", n)
    else: h += bytes([0x80 | 127]) + struct.pack("!Q", n)
    k = (mask * (n // 4 + 1))[:n]
    return h + mask + (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")

class Conn:
    def __init__(s, port, path="/ws"):
        s.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        key = base64.b64encode(os.urandom(16)).decode()
        s.s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
        s.buf = b""
        while b"\r\n\r\n" not in s.buf:
            d = s.s.recv(4096)
            if not d: raise EOFError("closed during the handshake")
            s.buf += d
        head, s.buf = s.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin1").split("\r\n")
        s.status, s.headers = lines[0], lines[1:]
        if not s.status.startswith("HTTP/1.1 101"):
            raise ValueError(s.status)
        hd = {l.split(":", 1)[0].strip().lower(): l.split(":", 1)[1].strip() for l in s.headers}
        acc = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        if hd.get("sec-websocket-accept") != acc:
            raise ValueError("bad Sec-WebSocket-Accept")
    def need(s, n):
        while len(s.buf) < n:
            d = s.s.recv(1 << 20)
            if not d: raise EOFError("closed")
            s.buf += d
    def read(s):
        s.need(2)
        b0, b1 = s.buf[0], s.buf[1]
        if b1 & 0x80: raise ValueError("masked server frame")
        n, hl = b1 & 0x7f, 2
        if n == 126: s.need(4); n = struct.unpack("!H", s.buf[2:4])[0]; hl = 4
        elif n == 127: s.need(10); n = struct.unpack("!Q", s.buf[2:10])[0]; hl = 10
        s.need(hl + n)
        p, s.buf = s.buf[hl:hl + n], s.buf[hl + n:]
        return b0 & 0x80, b0 & 0x0f, p

ok = True
def expect(what, got, want):
    global ok
    if got != want:
        ok = False
        print("FAIL", what)
try:
    c = Conn(int(sys.argv[1]))
    print("101 headers: " + "; ".join(h for h in c.headers if not h.lower().startswith(("date:", "sec-websocket-accept:"))))
    for n in (0, 32, 125, 126, 65535, 65536, 1 << 20):
        p = os.urandom(n)
        c.s.sendall(frame(2, p)); expect("binary %d B" % n, c.read(), (0x80, 2, p))
    t = "h\u00e9llo w\u00f6rld \u2713".encode()
    c.s.sendall(frame(1, t)); expect("text", c.read(), (0x80, 1, t))
    for size in (32, 65536):
        ps = [os.urandom(size - 1) + bytes([i]) for i in range(16)]
        c.s.sendall(b"".join(frame(2, p) for p in ps))
        expect("16 x %d B in one write, in order" % size, [c.read() for _ in ps], [(0x80, 2, p) for p in ps])
    c.s.sendall(frame(2, b"aaa", fin=False) + frame(0, b"bbb", fin=False) + frame(9, b"pp") + frame(0, b"ccc"))
    got = sorted([c.read(), c.read()])
    expect("fragmented message with a ping between fragments", got, sorted([(0x80, 10, b"pp"), (0x80, 2, b"aaabbbccc")]))
    c.s.sendall(frame(9, b"x")); expect("ping -> pong", c.read(), (0x80, 10, b"x"))
    c.s.sendall(frame(8, struct.pack("!H", 1000) + b"bye"))
    f = c.read()
    expect("close -> close 1000", (f[1], f[2][:2]), (8, struct.pack("!H", 1000)))
    print("close reply: code %d, reason %r" % (struct.unpack("!H", f[2][:2])[0], f[2][2:].decode()))
    try:
        Conn(int(sys.argv[1]), "/not-ws"); print("upgrade on /not-ws: accepted")
    except Exception as e:
        print("upgrade on /not-ws: refused (%s)" % e)
except Exception as e:
    ok = False
    print("FAIL", type(e).__name__, e)
print("RESULT", "ok" if ok else "FAIL")
PY
}

servers=()
for s in "${want[@]}"; do
    start "$s"
    out=$(ws_check "$SPORT" 2>&1)
    stop_pid "$SPID"
    while IFS= read -r l; do bench_log "check $s: $l"; done <<<"$out"
    if [ "$(tail -1 <<<"$out")" = "RESULT ok" ]; then
        servers+=("$s")
    else
        bench_log "$s FAILED the echo check: left out of the runs"
    fi
done
[ ${#servers[@]} -gt 0 ] || bench_die "no server passed the echo check"
bench_log "wisp: $WISP_BUILD_INFO${WISP_ARGS:+ $WISP_ARGS}"
[ -n "${UWS_INFO:-}" ] && bench_log "uWS: $UWS_INFO"
bench_log "servers: ${servers[*]}; $ROUNDS rounds x sizes ($SIZES) x depths ($DEPTHS), $CONNS connections, ${DURATION}s each"

RES=$TMPD/results.tsv
: >"$RES"
START=$(date +%s)
TIMER=()
[ -x /usr/bin/time ] && TIMER=(/usr/bin/time -f "%U %S" -o "$TMPD/loader.time")
# run_load SRV SIZE DEPTH ROUND: one ws_load run against the server SPID,
# SPORT; appends a row to $RES unless it failed. Sets DISTURB: the CPU
# time (% of one core) that neither the server nor the loader used on
# their two cores (other jobs; needs /usr/bin/time for the loader's share).
run_load() {
    local srv=$1 sz=$2 d=$3 r=$4 line rc c0 c1 b0 t0 b1 t1 lb0 lt0 lb1 lt1 el lt=0
    wait_quiet "$QUIET_PCT" "$QUIET_WAIT"
    rm -f "$TMPD/loader.time"
    c0=$(cpu_ticks "$SPID")
    read -r b0 t0 <<<"$(core_ticks "$SERVER_CPU")"
    read -r lb0 lt0 <<<"$(core_ticks "$LOADER_CPU")"
    line=$(taskset -c "$LOADER_CPU" "${TIMER[@]}" "$TMPD/ws_load" -p "$SPORT" -c "$CONNS" -s "$sz" -d "$d" -t "$DURATION" 2>&1)
    rc=$?
    c1=$(cpu_ticks "$SPID")
    read -r b1 t1 <<<"$(core_ticks "$SERVER_CPU")"
    read -r lb1 lt1 <<<"$(core_ticks "$LOADER_CPU")"
    DISTURB=0
    if [ $rc -ne 0 ] || ! kill -0 "$SPID" 2>/dev/null; then
        bench_log "r$r $srv ${sz}B d$d FAILED: $line"
        kill -0 "$SPID" 2>/dev/null || { bench_log "$srv died, restarting"; stop_pid "$SPID"; start "$srv"; }
        return 1
    fi
    [ -s "$TMPD/loader.time" ] && lt=$(awk -v k="$CLK_TCK" '{printf "%d", ($1 + $2) * k}' "$TMPD/loader.time")
    DISTURB=$(((b1 - b0 + lb1 - lb0 - (c1 - c0) - lt) * 100 / (t1 - t0 + 1)))
    [ -s "$TMPD/loader.time" ] || DISTURB=$(((b1 - b0 - (c1 - c0)) * 100 / (t1 - t0 + 1)))
    # srv size depth rate p50 p99 elapsed | server ticks, server core busy/total,
    # loader core busy/total, round, loader ticks, disturbance %
    set -- $line
    el=$(sed -n 's/.*, \([0-9.]*\) s)$/\1/p' <<<"$line")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$srv" "$sz" "$d" "$1" "$4" "$7" "$el" \
        "$((c1 - c0))" "$((b1 - b0))" "$((t1 - t0))" "$((lb1 - lb0))" "$((lt1 - lt0))" "$r" "$lt" "$DISTURB" >>"$RES.try"
    bench_log "r$r $srv ${sz}B d$d: $line; server $((c1 - c0)) ticks, loader $lt ticks, CPU$SERVER_CPU busy $(((b1 - b0) * 100 / (t1 - t0 + 1)))%, CPU$LOADER_CPU busy $(((lb1 - lb0) * 100 / (lt1 - lt0 + 1)))%, others $DISTURB%"
}
n=${#servers[@]}
for r in $(seq "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do
        srv=${servers[$(((i + r - 1) % n))]}
        start "$srv"
        for sz in $SIZES; do
            for d in $DEPTHS; do
                # A run during which other jobs took more than DISTURB_MAX %
                # of a core is repeated (at most RETRIES times; the last is kept).
                for try in $(seq 0 "$RETRIES"); do
                    : >"$RES.try"
                    run_load "$srv" "$sz" "$d" "$r" || break
                    [ "$DISTURB" -le "$DISTURB_MAX" ] && break
                    [ "$try" -lt "$RETRIES" ] && bench_log "  disturbed (others $DISTURB% > $DISTURB_MAX%): again"
                done
                cat "$RES.try" >>"$RES"
            done
        done
        stop_pid "$SPID"
    done
done
END=$(date +%s)
if [ -n "${OUT:-}" ]; then
    mkdir -p "$OUT" && cp "$RES" "$TMPD"/*.out "$OUT/" 2>/dev/null
fi

python3 - "$RES" "$CLK_TCK" "$CONNS" "$DISTURB_MAX" <<'PY'
import statistics, sys
clk, conns, dmax = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rows = {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    srv, sz, d = f[0], int(f[1]), int(f[2])
    rate, p50, p99, el = float(f[3]), float(f[4]), float(f[5]), float(f[6])
    ticks, sb, st, lb, lt = (int(x) for x in f[7:12])
    cpu_s = ticks / clk
    rows.setdefault((sz, d), {}).setdefault(srv, []).append({
        "rate": rate, "p99": p99,
        "per_cpu": rate * el / cpu_s if cpu_s > 0 else float("nan"),
        "busy": cpu_s / el * 100,                       # the server's own CPU use
        "other": max(0.0, float(f[14])) if len(f) > 14 else 0.0,  # other jobs, % of a core
        "loader": lb / lt * 100 if lt else 0.0,         # the loader core, all processes
    })
# Medians over the undisturbed runs of a cell (other jobs <= DISTURB_MAX %
# of a core) when it has any, else over all its runs.
dropped = kept = 0
for v in rows.values():
    for s, xs in v.items():
        clean = [x for x in xs if x["other"] <= dmax]
        if clean:
            dropped += len(xs) - len(clean)
            v[s] = clean
        else:
            kept += len(xs)
names = {"wisp": "wisp", "uws": "uWS", "node": "Node ws"}
order = [s for s in ("wisp", "uws", "node") if any(s in v for v in rows.values())]
med = lambda v, k: statistics.median(x[k] for x in v)
size = lambda sz: "32 B" if sz == 32 else ("64 KiB" if sz == 65536 else "%d B" % sz)
def ratio(a, b):
    return "**%.2f×**" % (a / b) if b else "—"
def fmt_us(us):
    return "%.0f µs" % us if us < 10000 else "%.1f ms" % (us / 1000)
n_r = sorted(set(len(x) for v in rows.values() for x in v.values()))
print("## WebSocket echo, %d connections: %s (medians of %s runs per cell)" % (
    conns, " vs ".join(names[s] for s in order), "–".join(str(x) for x in (n_r[0], n_r[-1]) if x) if n_r[0] != n_r[-1] else n_r[0]))
print()
hdr = ["message", "in flight"] + ["%s msg/s" % names[s] for s in order]
pairs = [(a, b) for a, b in (("wisp", "uws"), ("wisp", "node")) if a in order and b in order]
hdr += ["%s/%s" % (names[a], names[b]) for a, b in pairs]
hdr += ["p99 %s" % names[s] for s in order]
print("| " + " | ".join(hdr) + " |")
print("|---|" + "---:|" * (len(hdr) - 1))
for (sz, d), v in sorted(rows.items()):
    m = {s: med(v[s], "rate") for s in order if s in v}
    cells = [size(sz), str(d)] + ["%.0f" % m[s] if s in m else "—" for s in order]
    cells += [ratio(m[a], m[b]) if a in m and b in m else "—" for a, b in pairs]
    cells += [fmt_us(med(v[s], "p99")) if s in v else "—" for s in order]
    print("| " + " | ".join(cells) + " |")
print()
print("Messages per server-CPU-second (server utime+stime) and the server's CPU use during the run "
      "(100 % = its core saturated); last column: the loader's core, all processes.")
print()
hdr = ["message", "in flight"] + ["%s msg/CPU-s" % names[s] for s in order]
hdr += ["%s/%s per CPU-s" % (names[a], names[b]) for a, b in pairs]
hdr += ["%s CPU" % names[s] for s in order] + ["loader core busy"]
print("| " + " | ".join(hdr) + " |")
print("|---|" + "---:|" * (len(hdr) - 1))
for (sz, d), v in sorted(rows.items()):
    m = {s: med(v[s], "per_cpu") for s in order if s in v}
    cells = [size(sz), str(d)] + ["%.0f" % m[s] if s in m else "—" for s in order]
    cells += [ratio(m[a], m[b]) if a in m and b in m else "—" for a, b in pairs]
    cells += ["%.0f %%" % med(v[s], "busy") if s in v else "—" for s in order]
    cells.append(" / ".join("%.0f %%" % med(v[s], "loader") for s in order if s in v))
    print("| " + " | ".join(cells) + " |")
others = [x["other"] for v in rows.values() for xs in v.values() for x in xs]
print()
print("CPU time of other processes on the two cores during the runs counted: median %.1f %%, max %.1f %% of a core; "
      "%d disturbed run(s) (> %d %%) left out%s." % (statistics.median(others), max(others), dropped, dmax,
      ", %d kept (no undisturbed run in their cell)" % kept if kept else ""))
PY
echo
echo "$(date -u +%Y-%m-%d) · wisp $WISP_BUILD_INFO${WISP_ARGS:+ $WISP_ARGS} · uWS ${UWS_INFO:-not run} · node $(node --version 2>/dev/null), ws $(node -p 'require("ws/package.json").version' 2>/dev/null) · $((END - START)) s"
exit 0
