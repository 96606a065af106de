"""Shared helpers for wisp's integration tests.

Each test script starts a real server (wisp-testserver, or the binary given
as argv[1]) on 127.0.0.1 with an ephemeral port, drives it with raw
sockets (and curl where that is the point), and stops it. Servers are
always killed at exit, so no process is left behind.
"""
import atexit
import base64
import hashlib
import os
import signal
import socket
import struct
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


def have(feature):
    """Whether the library under test was built with an optional feature
    (meson_options.txt: websocket, pool, static_files, access_log,
    metrics). test/meson.build passes the list in WISP_FEATURES; run by
    hand, without it, every feature is assumed."""
    listed = os.environ.get("WISP_FEATURES")
    return listed is None or feature in listed.split(",")


class Server:
    """A running example server. `port` is the bound port."""

    def __init__(self, binary, *args, threads=2, wrapper=None, env=None):
        # A cross build's programs run under the emulator test/meson.build
        # names in WISP_EXE_WRAPPER (tab-separated: qemu-aarch64 -L ...).
        emu = os.environ.get("WISP_EXE_WRAPPER")
        if emu:
            wrapper = emu.split("\t") + list(wrapper or [])
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

    def connect(self, timeout=30.0):
        s = socket.create_connection(self.addr, timeout=timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return s

    def signal(self, sig=signal.SIGTERM):
        self.proc.send_signal(sig)

    def wait(self, timeout=60):
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


def request(server, raw, head_request=False, timeout=30.0):
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


def stats(server):
    """wisp-testserver's GET /stats counters as a dict of ints."""
    st, _, body = request(server, b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n",
                          timeout=30)
    if st != 200:
        raise RuntimeError("GET /stats: %r" % st)
    return {k: int(v) for k, v in
            (kv.split("=") for kv in body.decode().split())}


def wait_stats(server, cond, bound=30.0):
    """Poll the counters until cond(stats) holds: the handshake tests use
    instead of sleeping. False after `bound` s (the failure bound)."""
    end = time.time() + bound
    while time.time() < end:
        if cond(stats(server)):
            return True
        time.sleep(0.01)
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


# ---- WebSocket client (RFC 6455) over a raw socket, for tests that need
# exact bytes: masked frames, no extensions, pings answered.

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_mask(payload, key):
    """`payload` XOR-ed with the 4-byte `key`, repeated."""
    if not payload:
        return b""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    x = int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")
    return x.to_bytes(n, "little")


class WebSocket:
    """A client session on `server` (a Server) at `path`. Raises
    ConnectionError when the handshake is not a valid 101.

    For a client that stops reading: `rcvbuf` (bytes) shrinks its receive
    buffer, and `mss` caps the segment size it announces. On loopback the
    MSS is about 64 KiB and Linux grows the server's send buffer for such
    a connection up to tcp_wmem's maximum (4 MiB), so a non-reader soaks
    up megabytes in the kernel before the server's own queue sees any;
    with an Ethernet-like mss=1400 the kernel holds about 100 KiB."""

    def __init__(self, server, path="/ws", timeout=30.0, rcvbuf=None,
                 mss=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if mss:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
        s.settimeout(timeout)
        try:
            s.connect(server.addr)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            key = base64.b64encode(os.urandom(16))
            s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                      b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: " + key +
                      b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
            buf = b""
            while b"\r\n\r\n" not in buf:
                d = s.recv(4096)
                if not d:
                    raise ConnectionError("eof during the handshake")
                buf += d
        except BaseException:
            s.close()
            raise
        head, rest = buf.split(b"\r\n\r\n", 1)
        want = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        if not head.startswith(b"HTTP/1.1 101 ") or \
                b"\r\nSec-WebSocket-Accept: " + want + b"\r\n" \
                not in head + b"\r\n":
            s.close()
            raise ConnectionError("bad handshake: %r" % head[:200])
        self.sock = s
        self.buf = bytearray(rest)
        self.pos = 0

    # -- sending
    def send_frame(self, opcode, payload=b"", fin=True):
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        if n < 126:
            hdr = struct.pack("!BB", b0, 0x80 | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, 0x80 | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, 0x80 | 127, n)
        key = os.urandom(4)
        self.sock.sendall(hdr + key + ws_mask(payload, key))

    def send_text(self, text):
        self.send_frame(0x1, text.encode() if isinstance(text, str) else text)

    def send_close(self, code=1000, reason=b""):
        self.send_frame(0x8, struct.pack("!H", code) + reason)

    # -- receiving
    def _need(self, n):
        while len(self.buf) - self.pos < n:
            if self.pos > (1 << 20):
                del self.buf[:self.pos]
                self.pos = 0
            d = self.sock.recv(1 << 18)
            if not d:
                raise ConnectionError("eof")
            self.buf += d

    def _take(self, n):
        self._need(n)
        out = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return out

    def buffered(self):
        """Bytes received and not yet parsed."""
        return len(self.buf) - self.pos

    def recv_frame(self):
        """(opcode, fin, payload) of the next frame."""
        b0, b1 = self._take(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8))[0]
        if b1 & 0x80:
            raise ValueError("server frame is masked")
        return b0 & 0x0F, bool(b0 & 0x80), self._take(n)

    def recv_message(self, timeout=None):
        """(opcode, payload) of the next text, binary or close message;
        pings are answered, pongs skipped, fragments put together. A close
        payload is returned as it came (code and reason)."""
        if timeout is not None:
            self.sock.settimeout(timeout)
        parts, first = [], None
        while True:
            op, fin, p = self.recv_frame()
            if op == 0x9:
                self.send_frame(0xA, p)
                continue
            if op == 0xA:
                continue
            if op == 0x8:
                return op, p
            if first is None:
                first = op
            parts.append(p)
            if fin:
                return first, b"".join(parts)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def ws_close_code(payload):
    """The code of a close frame's payload (None when it has none)."""
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
