"""Shared helpers for wisp's integration tests.

Each test script starts a real server (examples/hello, or the binary given
as argv[1]) on 127.0.0.1 with an ephemeral port, drives it with raw
sockets (and curl where that is the point), and stops it. Servers are
always killed at exit, so no process is left behind.
"""
import atexit
import os
import signal
import socket
import subprocess
import sys
import time
import weakref

_procs = []

# Bytes read past the end of a response, per socket (plain socket.socket
# objects take no new attributes, so they cannot carry them themselves).
_sock_bufs = weakref.WeakKeyDictionary()


def leftover(sock):
    """Bytes already received on `sock` beyond the last response read by
    read_response (the start of the next pipelined response, say)."""
    return _sock_bufs.get(sock, b"")


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_cleanup)


class Server:
    """A running example server. `port` is the bound port."""

    def __init__(self, binary, *args, threads=2, wrapper=None, env=None):
        cmd = list(wrapper or []) + [binary, "--host", "127.0.0.1",
                                     "--port", "0", "--threads", str(threads)]
        cmd += [str(a) for a in args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     env=env)
        _procs.append(self.proc)
        deadline = time.time() + 30
        line = ""
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("listening on "):
                break
            if not line and self.proc.poll() is not None:
                raise RuntimeError("server exited: " + self.proc.stderr.read())
        else:
            raise RuntimeError("server did not start")
        self.port = int(line.strip().rsplit(":", 1)[1])
        self.addr = ("127.0.0.1", self.port)

    def connect(self, timeout=5.0):
        s = socket.create_connection(self.addr, timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait(self, timeout=15):
        """Wait for exit; returns (returncode, stderr)."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        return self.proc.returncode, self.proc.stderr.read()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.wait()
        return self.proc.returncode, self.proc.stderr.read()


def read_response(sock, head_request=False):
    """Read one HTTP/1.1 response. Returns (status, headers, body) with
    headers as a dict of lower-case name -> value (last wins) and a list
    in `headers['__list__']`. Handles Content-Length, chunked and
    close-delimited bodies. Raises ConnectionError on EOF before a head."""
    buf = _sock_bufs.get(sock, b"")

    def fill():
        nonlocal buf
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("eof")
        buf += data

    while b"\r\n\r\n" not in buf:
        fill()
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    headers = {"__list__": []}
    for ln in lines[1:]:
        k, v = ln.split(":", 1)
        headers[k.strip().lower()] = v.strip()
        headers["__list__"].append((k.strip(), v.strip()))
    body = b""
    if head_request or status in (204, 304) or 100 <= status < 200:
        pass
    elif "content-length" in headers:
        n = int(headers["content-length"])
        while len(buf) < n:
            fill()
        body, buf = buf[:n], buf[n:]
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            while b"\r\n" not in buf:
                fill()
            size_line, buf = buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(buf) < size + 2:
                fill()
            body += buf[:size]
            buf = buf[size + 2:]
            if size == 0:
                break
    else:
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            buf += data
        body, buf = buf, b""
    _sock_bufs[sock] = buf
    return status, headers, body


def request(server, raw, head_request=False, timeout=5.0):
    """Send raw bytes on a new connection and read one response."""
    s = server.connect(timeout)
    s.sendall(raw)
    try:
        return read_response(s, head_request)
    finally:
        s.close()


def expect_closed(sock, timeout=3.0):
    """True when the peer closes (EOF or reset) within `timeout` s after
    any bytes still in flight."""
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def hello_ok(server):
    """Another client is served: GET / answers 200 Hello, World!"""
    st, _, body = request(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return st == 200 and body == b"Hello, World!"


def served(server):
    """hello_ok, with a connection error counted as a failure rather than
    raised."""
    try:
        return hello_ok(server)
    except (ConnectionError, OSError):
        return False


class Checks:
    """Counts checks, prints failures, exits 1 if any failed."""

    def __init__(self, name):
        self.name = name
        self.n = 0
        self.failed = 0

    def check(self, cond, what):
        self.n += 1
        if not cond:
            self.failed += 1
            print("FAIL:", what, file=sys.stderr, flush=True)
        return cond

    def eq(self, got, want, what):
        return self.check(got == want, "%s: got %r, want %r" % (what, got, want))

    def done(self):
        print("%s: %d checks, %d failed" % (self.name, self.n, self.failed))
        _cleanup()
        sys.exit(1 if self.failed else 0)
