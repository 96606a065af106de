"""Server lifecycle: graceful stop (SIGTERM/SIGINT), the accept queue at
stop, idle connections at stop, the stop deadline, command line, Unix
socket, access log, and a leak check under valgrind.

Run: python3 lifecycle_test.py path/to/hello
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wisp_test  # noqa: E402
from wisp_test import Checks, Server, read_response, request  # noqa: E402

HELLO = sys.argv[1]
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"

t0 = time.time()
c = Checks("lifecycle")


served = wisp_test.served


def wait_exit(srv, limit, what):
    """Wait for the server to exit; returns (returncode, seconds, stderr).
    `limit` is what the stop should take on a quiet machine: it is not
    checked (timing belongs in bench/); 30 s is the failure bound, then the
    server is killed. What proves a stop did not wait for too long is what
    the clients received (e.g. no late response after the deadline)."""
    start = time.time()
    try:
        srv.proc.wait(timeout=max(limit, 30))
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        srv.proc.wait()
        c.check(False, "%s: server did not exit within 30 s" % what)
        return None, time.time() - start, srv.proc.stderr.read()
    return srv.proc.returncode, time.time() - start, srv.proc.stderr.read()


stats = wisp_test.stats
wait_stats = wisp_test.wait_stats


def wait_refused(addr, family=socket.AF_INET, bound=30.0):
    """Poll until new connections are refused (the listeners closed)."""
    end = time.time() + bound
    while time.time() < end:
        if refused(addr, family):
            return True
        time.sleep(0.01)
    return False


def refused(addr, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(addr)
    except (ConnectionRefusedError, FileNotFoundError):
        return True
    except OSError:
        return True
    else:
        # Accepted by someone: maybe a listener still open. Say so.
        return False
    finally:
        s.close()


def recv_all(sock, timeout=5.0):
    """Everything until EOF/reset; (bytes, how) where how is 'eof',
    'reset' or 'timeout'."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                return data, "eof"
            data += d
    except ConnectionResetError:
        return data, "reset"
    except socket.timeout:
        return data, "timeout"


# ------------------------------------------------------------ graceful stop
def graceful(sig, name):
    # A deadline far beyond the request's 3 s: the stop waits for it.
    srv = Server(HELLO, "--shutdown-timeout-ms", 60000)
    s = srv.connect()
    s.sendall(b"GET /delay/3000 HTTP/1.1\r\nHost: x\r\n\r\n")
    c.check(wait_stats(srv, lambda st: st["delays"] == 1),
            "%s: the request is in flight" % name)
    srv.signal(sig)
    # The listeners are closed once the stop began.
    c.check(wait_refused(srv.addr), "%s: new connection refused during "
            "the drain" % name)
    try:
        st, h, body = read_response(s)
    except (ConnectionError, OSError) as e:
        st, h, body = None, {}, repr(e).encode()
    c.eq((st, body), (200, b"delayed\n"),
         "%s: in-flight /delay/3000 completes" % name)
    c.eq(h.get("connection", "").lower(), "close",
         "%s: in-flight response says Connection: close" % name)
    rest, how = recv_all(s, 30)
    c.check(rest == b"" and how in ("eof", "reset"),
            "%s: connection closed after the response (%r, %s)"
            % (name, rest[:60], how))
    s.close()
    rc, took, err = wait_exit(srv, 2.0, "%s graceful" % name)
    c.eq(rc, 0, "%s: exit code" % name)
    c.check(refused(srv.addr), "%s: new connection refused after exit"
            % name)


graceful(signal.SIGTERM, "SIGTERM")
graceful(signal.SIGINT, "SIGINT")


# ------------------------------------------------------------ accept queue
def accept_queue(round_no):
    srv = Server(HELLO, threads=2)
    socks = []
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(10)
        s.connect(srv.addr)
        s.sendall(GET)
        socks.append(s)
    srv.signal(signal.SIGTERM)
    bad = []
    for i, s in enumerate(socks):
        try:
            st, h, body = read_response(s)
            if st != 200 or body != b"Hello, World!":
                bad.append((i, st, body[:40]))
        except (ConnectionError, OSError) as e:
            bad.append((i, "error", repr(e)))
        s.close()
    c.check(not bad, "accept queue round %d: %d of 200 connections without "
            "a complete 200: %r" % (round_no, len(bad), bad[:5]))
    rc, _, _ = wait_exit(srv, 3.0, "accept queue round %d" % round_no)
    c.eq(rc, 0, "accept queue round %d: exit code" % round_no)


for r in range(3):
    accept_queue(r + 1)

# ------------------------------------------------------------ idle at stop
srv = Server(HELLO)
idle = []
for _ in range(100):
    s = srv.connect()
    s.sendall(GET)
    st, _, body = read_response(s)
    if st != 200:
        break
    idle.append(s)
c.eq(len(idle), 100, "100 idle keep-alive connections served")
srv.signal(signal.SIGTERM)
rc, took, _ = wait_exit(srv, 1.0, "100 idle connections")
c.eq(rc, 0, "idle at stop: exit code")
still_open = 0
for s in idle:
    if not wisp_test.expect_closed(s, 1.0):
        still_open += 1
    s.close()
c.eq(still_open, 0, "idle connections closed at stop")

# ------------------------------------------------------------ deadline
srv = Server(HELLO, "--shutdown-timeout-ms", 500)
s = srv.connect()
s.sendall(b"GET /delay/5000 HTTP/1.1\r\nHost: x\r\n\r\n")
c.check(wait_stats(srv, lambda st: st["delays"] == 1),
        "deadline: the request is in flight")
srv.signal(signal.SIGTERM)
# A stop that waited for the request would deliver "delayed" after 5 s:
# read for longer than that.
data, how = recv_all(s, 30)
c.check(data == b"" and how in ("eof", "reset"),
        "deadline: in-flight /delay/5000 closed without a response "
        "(%r, %s)" % (data[:60], how))
s.close()
rc, took, _ = wait_exit(srv, 1.5, "shutdown deadline 500 ms")
c.eq(rc, 0, "deadline: exit code")

# ------------------------------------------------------------ command line
r = subprocess.run([HELLO, "--help"], capture_output=True, text=True,
                   timeout=10)
c.eq(r.returncode, 0, "--help exit code")
c.check("usage" in r.stdout.lower() and "--port" in r.stdout,
        "--help prints usage on stdout: %r" % r.stdout[:80])
r = subprocess.run([HELLO, "--no-such-flag"], capture_output=True,
                   text=True, timeout=10)
c.check(r.returncode != 0, "unknown flag exits non-zero (got %d)"
        % r.returncode)
c.check("usage" in r.stderr.lower(), "unknown flag prints usage on stderr")

# ------------------------------------------------------------ port taken
# A second server on a port the first holds fails at start (it does not
# join the first one's SO_REUSEPORT group and take half its traffic),
# unless both ask to share it.
srv = Server(HELLO, threads=2)
r = subprocess.run([HELLO, "--host", "127.0.0.1", "--port", str(srv.port),
                    "--threads", "2"], capture_output=True, text=True,
                   timeout=30)
c.check(r.returncode != 0 and "in use" in r.stderr.lower(),
        "second server on a taken port exits with an error (rc %d, %r)"
        % (r.returncode, r.stderr[-200:]))
c.check(served(srv), "the first server still serves")
c.eq(srv.stop()[0], 0, "port taken: first server exit code")
a = Server(HELLO, "--reuse-port-shared", threads=1)
b = Server(HELLO, "--reuse-port-shared", "--port", str(a.port), threads=1)
c.eq(b.port, a.port, "two servers that both ask share the port")
c.check(served(a) and served(b), "both sharing servers answer")
c.eq(b.stop()[0], 0, "shared: second server exit code")
c.eq(a.stop()[0], 0, "shared: first server exit code")

# ------------------------------------------------------------ Unix socket
upath = "/tmp/wisp-test-%d-%d.sock" % (os.getpid(), int(time.time() * 1000))
srv = Server(HELLO, "--unix", upath)
try:
    c.check(os.path.exists(upath), "Unix socket file exists")
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.settimeout(5)
    u.connect(upath)
    u.sendall(GET)
    st, _, body = read_response(u)
    c.eq((st, body), (200, b"Hello, World!"), "GET / over the Unix socket")
    u.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"
              b"abcde")
    st, _, body = read_response(u)
    c.eq((st, body), (200, b"abcde"), "keep-alive POST /echo over Unix")
    u.close()
    c.check(served(srv), "GET / over TCP with --unix")
    srv.signal(signal.SIGTERM)
    rc, _, _ = wait_exit(srv, 2.0, "unix socket stop")
    c.eq(rc, 0, "unix: exit code")
    c.check(not os.path.exists(upath), "Unix socket file removed at stop")
    c.check(refused(upath, socket.AF_UNIX), "Unix socket refused after stop")
finally:
    if os.path.exists(upath):
        os.unlink(upath)

# ------------------------------------------------------------ access log
logdir = tempfile.mkdtemp(prefix="wisp-alog-")
if not wisp_test.have("access_log"):
    # Built without the access log: asking for one is refused at start
    # (wisp_server_create: ENOTSUP), not silently ignored.
    try:
        r = subprocess.run([HELLO, "--host", "127.0.0.1", "--port", "0",
                            "--access-log", os.path.join(logdir, "a.log")],
                           capture_output=True, text=True, timeout=60)
        c.eq(r.returncode, 2, "no access log in this build: exit code 2")
        c.check("not supported" in r.stderr,
                "no access log in this build: says so: %r" % r.stderr)
        c.check(not os.path.exists(os.path.join(logdir, "a.log")),
                "no access log in this build: no file created")
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
else:
    try:
        logpath = os.path.join(logdir, "access.log")
        srv = Server(HELLO, "--access-log", logpath)
        for i in range(3):
            st, _, _ = request(srv, b"GET / HTTP/1.1\r\nHost: x\r\n"
                               b"User-Agent: ua\r\n\r\n")
            c.eq(st, 200, "access log request %d" % i)
        srv.signal(signal.SIGTERM)
        rc, _, _ = wait_exit(srv, 2.0, "access log stop")
        c.eq(rc, 0, "access log: exit code")
        with open(logpath) as f:
            lines = f.read().splitlines()
        c.eq(len(lines), 3, "access log has 3 lines")
        pat = re.compile(r'127\.0\.0\.1 - - \[\d\d/(Jan|Feb|Mar|Apr|May|Jun|Jul|'
                         r'Aug|Sep|Oct|Nov|Dec)/\d{4}:\d\d:\d\d:\d\d \+0000\] '
                         r'"GET / HTTP/1\.1" 200 13 "-" "ua"')
        for ln in lines:
            c.check(pat.fullmatch(ln), "access log line format: %r" % ln)
    finally:
        shutil.rmtree(logdir, ignore_errors=True)

# ------------------------------------------------------------ client gone
srv = Server(HELLO)
for ms in (500, 50):
    s = srv.connect()
    n = stats(srv)["delays_started"]
    s.sendall(b"GET /delay/%d HTTP/1.1\r\nHost: x\r\n\r\n" % ms)
    c.check(wait_stats(srv, lambda st: st["delays_started"] == n + 1),
            "client gone: /delay/%d started" % ms)
    s.close()
    # Its abort callback (or its timer, if it fired first) ends it.
    c.check(wait_stats(srv, lambda st: st["delays"] == 0),
            "client gone: /delay/%d ended" % ms)
c.check(srv.proc.poll() is None, "server alive after clients left "
        "delayed requests")
c.check(served(srv), "server serves after abandoned /delay")
st, _, body = request(srv, b"GET /delay/50 HTTP/1.1\r\nHost: x\r\n\r\n")
c.eq((st, body), (200, b"delayed\n"), "a later /delay/50 still works")
rc, _ = srv.stop()
c.eq(rc, 0, "client gone: exit code")

# ------------------------------------------------------------ /upload, stop
# The streamed-body route answers from its body-end callback, after the
# handler returned. Body together with the head (one read), and body in
# a later read; each on a fresh server, then a clean stop.
srv = Server(HELLO, threads=1)
st, _, body = request(srv, b"POST /upload HTTP/1.1\r\nHost: x\r\n"
                      b"Content-Length: 3\r\n\r\nabc")
c.eq((st, body), (200, b"3 bytes, sum 294\n"), "/upload, body with head")
s = srv.connect()
s.sendall((b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
           b"\r\nxyz") + GET)
st, _, body = read_response(s)
c.eq((st, body), (200, b"3 bytes, sum 363\n"), "/upload then pipelined GET")
st, _, body = read_response(s)
c.eq((st, body), (200, b"Hello, World!"), "GET pipelined after /upload")
s.close()
c.check(served(srv) and served(srv),
        "served after /upload")
srv.signal(signal.SIGTERM)
rc, _, err = wait_exit(srv, 2.0, "stop after /upload (body with head)")
c.eq(rc, 0, "stop after /upload (body with head): exit code (stderr %r)"
     % err[-200:])

srv = Server(HELLO, threads=1)
s = srv.connect()
before = stats(srv)["upload_bytes"]
s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\n"
          b"abc")
c.check(wait_stats(srv, lambda st: st["upload_bytes"] == before + 3),
        "/upload: the first half was read")
s.sendall(b"def")
st, _, body = read_response(s)
c.eq((st, body), (200, b"6 bytes, sum 597\n"), "/upload, body in two reads")
s.sendall(GET)
st, _, body = read_response(s)
c.eq((st, body), (200, b"Hello, World!"), "keep-alive GET after /upload")
s.close()
c.check(served(srv), "served after /upload (two reads)")
srv.signal(signal.SIGTERM)
rc, _, err = wait_exit(srv, 2.0, "stop after /upload (two reads)")
c.eq(rc, 0, "stop after /upload (two reads): exit code (stderr %r)"
     % err[-200:])

# ------------------------------------------------------------ valgrind
VG = shutil.which("valgrind")


def sanitized(binary):
    """A sanitizer build cannot run under valgrind (and checks leaks
    itself): look for the runtimes' symbols in the binary and its library."""
    if os.environ.get("WISP_SANITIZER"):
        return True
    libdir = os.path.dirname(os.path.dirname(os.path.abspath(binary)))
    for path in (binary, os.path.join(libdir, "libwisp.so")):
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        if b"__asan_init" in data or b"__tsan_init" in data:
            return True
    return False


def musl_or_static(binary):
    """valgrind replaces glibc's malloc family; against musl (its
    interpreter is ld-musl) or in a static binary it misses some of the
    allocations and then reports each of their frees as invalid."""
    try:
        with open(binary, "rb") as f:
            head = f.read(16384)
    except OSError:
        return False
    return b"ld-musl" in head or b"ld-linux" not in head


if VG and sanitized(HELLO):
    print("lifecycle: sanitizer build, valgrind leak check skipped")
elif VG and musl_or_static(HELLO):
    print("lifecycle: musl or static binary, valgrind leak check skipped")
elif VG:
    vgdir = tempfile.mkdtemp(prefix="wisp-vg-")
    try:
        vglog = os.path.join(vgdir, "vg.log")
        # valgrind does not model io_uring (a ring wait never returns
        # under it): the leak check runs on epoll whatever WISP_BACKEND
        # the suite runs with.
        vgenv = dict(os.environ, WISP_BACKEND="epoll")
        srv = Server(HELLO, "--shutdown-timeout-ms", 60000, threads=2,
                     env=vgenv, wrapper=[
            VG, "--leak-check=full", "--error-exitcode=99",
            "--errors-for-leak-kinds=definite,indirect",
            "--log-file=" + vglog])
        T = 20.0
        st, _, body = request(srv, GET, timeout=T)
        c.eq((st, body), (200, b"Hello, World!"), "valgrind: GET /")
        st, _, body = request(srv, b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Length: 11\r\n\r\nhello there",
                              timeout=T)
        c.eq((st, body), (200, b"hello there"), "valgrind: POST /echo")
        st, _, body = request(srv, b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n",
                              timeout=T)
        c.eq((st, len(body)), (200, 1 << 20), "valgrind: GET /big")
        st, _, body = request(srv, b"GET /stream?n=20 HTTP/1.1\r\nHost: x"
                              b"\r\n\r\n", timeout=T)
        c.eq((st, body.count(b"chunk ")), (200, 20), "valgrind: /stream")
        st, _, body = request(srv, b"GET /delay/100 HTTP/1.1\r\nHost: x"
                              b"\r\n\r\n", timeout=T)
        c.eq((st, body), (200, b"delayed\n"), "valgrind: /delay/100")
        st, _, _ = request(srv, b"GARBAGE\r\n\r\n", timeout=T)
        c.eq(st, 400, "valgrind: bad request -> 400")
        st, _, body = request(srv, b"GET /static/hello.txt HTTP/1.1\r\n"
                              b"Host: x\r\n\r\n", timeout=T)
        c.eq(st, 200 if wisp_test.have("static_files") else 404,
             "valgrind: static file (404 in a build without them)")
        # Streamed request bodies: with the head, and in a later read.
        st, _, body = request(srv, b"POST /upload HTTP/1.1\r\nHost: x\r\n"
                              b"Content-Length: 3\r\n\r\nabc", timeout=T)
        c.eq((st, body), (200, b"3 bytes, sum 294\n"),
             "valgrind: /upload (body with head)")
        u = srv.connect(T)
        before = stats(srv)["upload_bytes"]
        u.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 6\r\n\r\nabc")
        c.check(wait_stats(srv, lambda st: st["upload_bytes"] == before + 3,
                           bound=60), "valgrind: the first half was read")
        u.sendall(b"def")
        try:
            st, _, body = read_response(u)
        except (ConnectionError, OSError) as e:
            st, body = None, repr(e)
        u.close()
        c.eq((st, body), (200, b"6 bytes, sum 597\n"),
             "valgrind: /upload (body in two reads)")
        # A streamed body abandoned half-way by its client.
        u = srv.connect(T)
        before = stats(srv)["upload_bytes"]
        u.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Length: 100\r\n\r\nabc")
        c.check(wait_stats(srv, lambda st: st["upload_bytes"] == before + 3,
                           bound=60), "valgrind: the abandoned body started")
        u.close()
        # Pipelined keep-alive requests on one connection.
        s = srv.connect(T)
        s.sendall(GET * 3)
        ok = 0
        for _ in range(3):
            st, _, _ = read_response(s)
            ok += st == 200
        c.eq(ok, 3, "valgrind: 3 pipelined requests")
        # Abandoned delayed requests: the client disconnects before the
        # answer (/delay/5000) and while its timer is due (/delay/300).
        for ms in (5000, 300):
            a = srv.connect(T)
            n = stats(srv)["delays_started"]
            a.sendall(b"GET /delay/%d HTTP/1.1\r\nHost: x\r\n\r\n" % ms)
            c.check(wait_stats(srv, lambda st: st["delays_started"] == n + 1,
                               bound=60),
                    "valgrind: /delay/%d started" % ms)
            a.close()
            c.check(wait_stats(srv, lambda st: st["delays"] == 0, bound=60),
                    "valgrind: abandoned /delay/%d ended" % ms)
        # One in flight at stop, one idle keep-alive at stop.
        inflight = srv.connect(T)
        inflight.sendall(b"GET /delay/3000 HTTP/1.1\r\nHost: x\r\n\r\n")
        s.sendall(GET)
        st, _, _ = read_response(s)
        c.eq(st, 200, "valgrind: keep-alive request before stop")
        c.check(wait_stats(srv, lambda st: st["delays"] == 1, bound=60),
                "valgrind: /delay/3000 in flight at stop")
        srv.signal(signal.SIGTERM)
        try:
            st, _, body = read_response(inflight)
        except (ConnectionError, OSError) as e:
            st, body = None, repr(e)
        c.eq((st, body), (200, b"delayed\n"),
             "valgrind: in-flight /delay/3000 finishes at stop")
        inflight.close()
        s.close()
        try:
            srv.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            srv.proc.kill()
            srv.proc.wait()
        rc = srv.proc.returncode
        srv.proc.stderr.read()
        with open(vglog) as f:
            vg = f.read()
        c.eq(rc, 0, "valgrind: exit code (99 = valgrind errors)")
        m = re.search(r"ERROR SUMMARY: (\d+) errors", vg)
        c.check(m and m.group(1) == "0", "valgrind: ERROR SUMMARY %s"
                % (m.group(0) if m else "missing"))
        dl = re.search(r"definitely lost: ([\d,]+) bytes", vg)
        il = re.search(r"indirectly lost: ([\d,]+) bytes", vg)
        c.check("All heap blocks were freed" in vg or
                (dl and dl.group(1) == "0" and il and il.group(1) == "0"),
                "valgrind: no definite/indirect leaks")
        print("lifecycle: valgrind: %s; %s" % (
            m.group(0) if m else "no summary",
            "; ".join(re.findall(r"(?:definitely|indirectly|possibly) lost:"
                                 r" [\d,]+ bytes", vg)) or
            ("all heap blocks freed" if "All heap blocks were freed" in vg
             else "no leak summary")))
        if rc != 0 or (m and m.group(1) != "0"):
            sys.stderr.write(vg[-6000:])
    finally:
        shutil.rmtree(vgdir, ignore_errors=True)
else:
    print("lifecycle: valgrind not found, leak check skipped")

print("lifecycle: %.1f s" % (time.time() - t0))
c.done()
