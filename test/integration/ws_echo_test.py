"""WebSocket conformance of examples/echo, over real sockets, with a small
client written here (masked frames, exact bytes). Numbered after the
Autobahn|Testsuite case groups: 1 framing, 2 ping/pong, 3 reserved bits,
4 opcodes, 5 fragmentation, 6 UTF-8, 7 close, 9 large/many messages.
Every violation must end in the close code RFC 6455 prescribes, and the
server must keep serving others."""
import base64
import hashlib
import os
import socket
import struct
import sys
import time

import wisp_test
from wisp_test import Checks, Server, read_response

c = Checks("ws_echo")
ECHO = os.path.join(os.path.dirname(sys.argv[1]), "echo")
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
srv = Server(ECHO, "--max-message", 1 << 24, threads=2)
PENDING = {}  # socket -> bytes received but not yet consumed


def handshake(extra=b"", key=None, version=b"13", path=b"/ws"):
    s = srv.connect(timeout=5)
    key = key if key is not None else base64.b64encode(os.urandom(16))
    s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
              b"\r\nSec-WebSocket-Version: " + version + b"\r\n" + extra +
              b"\r\n")
    return s, key


def open_ws():
    s, key = handshake()
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    head, rest = buf.split(b"\r\n\r\n", 1)
    want = base64.b64encode(hashlib.sha1(key + GUID).digest())
    ok = head.startswith(b"HTTP/1.1 101 ") and \
        b"\r\nSec-WebSocket-Accept: " + want + b"\r\n" in head + b"\r\n"
    PENDING[s] = rest
    return s, ok


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    if n < 126:
        hdr = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return hdr + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) \
        if len(payload) < 4096 else _mask_fast(payload, key)
    return hdr + key + masked


def _mask_fast(payload, key):
    k = (key * (len(payload) // 4 + 1))[:len(payload)]
    a = int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")
    return a.to_bytes(len(payload), "little")


def recv_exact(s, n):
    buf = PENDING.get(s, b"")
    while len(buf) < n:
        d = s.recv(max(65536, n - len(buf)))
        if not d:
            raise ConnectionError("eof")
        buf += d
    PENDING[s] = buf[n:]
    return buf[:n]


def read_frame(s):
    b0, b1 = recv_exact(s, 2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(s, 8))[0]
    if b1 & 0x80:
        raise ValueError("server frame is masked")
    return b0 & 0x0F, bool(b0 & 0x80), recv_exact(s, n)


def read_message(s):
    """Skip pongs; return (opcode, payload) of the next data/close msg."""
    while True:
        op, fin, p = read_frame(s)
        if op == 0xA:
            continue
        return op, p


def expect_close(s, code, what):
    try:
        while True:
            op, fin, p = read_frame(s)
            if op == 0x8:
                got = struct.unpack("!H", p[:2])[0] if len(p) >= 2 else None
                c.eq(got, code, what + ": close code")
                break
    except (ConnectionError, OSError) as e:
        c.check(False, "%s: no close frame (%r)" % (what, e))
    # Then the server closes the TCP connection.
    c.check(wisp_test.expect_closed(s, 3), what + ": connection closed")
    s.close()
    c.check(wisp_test.served(srv), what + ": others still served")


# ---- handshake
s, ok = open_ws()
c.check(ok, "101 with the right Sec-WebSocket-Accept (RFC 6455 §4.2.2)")
s.close()
for name, extra, key, ver, want in [
    ("no Sec-WebSocket-Key", None, b"", b"13", 400),
    ("key of 15 bytes", None, base64.b64encode(b"x" * 15), b"13", 400),
    ("key not base64", None, b"!!!!!!!!!!!!!!!!!!!!!!==", b"13", 400),
    ("version 8", None, None, b"8", 426),
]:
    s, _ = handshake(key=key, version=ver)
    st, h, _ = read_response(s)
    c.eq(st, want, "handshake: " + name)
    if want == 426:
        c.eq(h.get("sec-websocket-version"), "13", "426 names version 13")
    s.close()
st, _, _ = wisp_test.request(srv, b"GET /ws HTTP/1.1\r\nHost: x\r\n\r\n")
c.eq(st, 400, "handshake: plain GET without Upgrade -> 400")
st, _, _ = wisp_test.request(
    srv, b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: "
    + base64.b64encode(os.urandom(16)) + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
c.eq(st, 101, "handshake: Connection token in a list")

# ---- 1. framing: lengths at the encoding boundaries, text and binary
s, _ = open_ws()
for n in (0, 1, 125, 126, 127, 65535, 65536, 100000):
    for op in (0x1, 0x2):
        data = (b"a" * n)
        s.sendall(frame(op, data))
        got = read_message(s)
        c.check(got == (op, data), "1.x echo opcode %d, %d bytes" % (op, n))

# ---- 2. ping/pong
s.sendall(frame(0x9, b"hello"))
op, fin, p = read_frame(s)
c.eq((op, p), (0xA, b"hello"), "2.2 ping with payload -> pong with it")
s.sendall(frame(0x9, b"x" * 125))
op, fin, p = read_frame(s)
c.eq((op, len(p)), (0xA, 125), "2.4 ping of 125 bytes -> pong")
s.sendall(frame(0xA, b"unsolicited"))
s.sendall(frame(0x1, b"after pong"))
c.eq(read_message(s), (0x1, b"after pong"), "2.7 unsolicited pong ignored")

# ---- 5. fragmentation
s.sendall(frame(0x1, b"Hel", fin=False) + frame(0x0, b"lo, ", fin=False) +
          frame(0x9, b"p") + frame(0x0, b"World", fin=True))
op, fin, p = read_frame(s)
c.eq((op, p), (0xA, b"p"), "5.6 ping between fragments answered first")
c.eq(read_message(s), (0x1, b"Hello, World"), "5.x fragmented text")
s.sendall(frame(0x2, b"\x00\x01", fin=False) + frame(0x0, b"\x02", fin=True))
c.eq(read_message(s), (0x2, b"\x00\x01\x02"), "5.x fragmented binary")

# ---- 6. UTF-8 split across fragments (valid)
snow = "κόσμε ☃ 𝄞".encode()
s.sendall(frame(0x1, snow[:3], fin=False) + frame(0x0, snow[3:8], fin=False) +
          frame(0x0, snow[8:], fin=True))
c.eq(read_message(s), (0x1, snow), "6.x valid UTF-8 split mid code point")

# ---- 6.4 fail fast: invalid UTF-8 early in a large text frame is refused
# before the rest of the frame arrives; valid text sent in pieces with
# pauses is unmasked and checked piecewise and echoed intact.
txt = ("κόσμε-" * 20000).encode()[:100000]
f = frame(0x1, txt)
hdr_len = len(f) - len(txt)
s.sendall(f[:hdr_len + 3000])
time.sleep(0.05)
s.sendall(f[hdr_len + 3000:hdr_len + 70001])
time.sleep(0.05)
s.sendall(f[hdr_len + 70001:])
c.eq(read_message(s), (0x1, txt), "6.x large text frame arriving in pieces")
s.sendall(frame(0x1, txt[:5000], fin=False))
f2 = frame(0x0, txt[5000:], fin=True)
s.sendall(f2[:500])
time.sleep(0.05)
s.sendall(f2[500:])
c.eq(read_message(s), (0x1, txt), "6.x continuation arriving in pieces")

# ---- 9. many and large
for i in range(200):
    s.sendall(frame(0x1, b"m%d" % i))
ok = all(read_message(s) == (0x1, b"m%d" % i) for i in range(200))
c.check(ok, "9.x 200 messages in order")
big = os.urandom(4 << 20)
s.sendall(frame(0x2, big))
c.check(read_message(s) == (0x2, big), "9.x 4 MiB binary message")

# ---- 7. close handshake
s.sendall(frame(0x8, struct.pack("!H", 1000) + b"bye"))
op, fin, p = read_frame(s)
c.eq((op, p[:2]), (0x8, struct.pack("!H", 1000)), "7.1 close 1000 echoed")
c.check(wisp_test.expect_closed(s, 3), "7.1 TCP closed after the handshake")
s.close()

# ---- violations: each one closes with its code
for name, data, code in [
    ("2.5 ping of 126 bytes", frame(0x9, b"x" * 126), 1002),
    ("2.x fragmented ping", frame(0x9, b"x", fin=False), 1002),
    ("3.1 RSV1 set", frame(0x1, b"x", rsv=4), 1002),
    ("3.2 RSV2 set", frame(0x1, b"x", rsv=2), 1002),
    ("3.7 RSV on a ping", frame(0x9, b"x", rsv=7), 1002),
    ("4.1 opcode 3", frame(0x3, b"x"), 1002),
    ("4.2 opcode 0xB", frame(0xB, b"x"), 1002),
    ("5.x continuation without a message", frame(0x0, b"x"), 1002),
    ("5.x text inside a fragmented message",
     frame(0x1, b"a", fin=False) + frame(0x1, b"b"), 1002),
    ("unmasked client frame", frame(0x1, b"x", mask=False), 1002),
    ("6.x invalid UTF-8", frame(0x1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"), 1007),
    ("6.x overlong encoding", frame(0x1, b"\xc0\xaf"), 1007),
    ("6.x invalid UTF-8 across fragments",
     frame(0x1, b"ok\xf4", fin=False) + frame(0x0, b"\x90\x80\x80", fin=True), 1007),
    ("6.x text ends inside a code point", frame(0x1, b"ab\xe2\x82"), 1007),
    ("7.3 close with 1-byte payload", frame(0x8, b"\x03"), 1002),
    ("7.9 close code 999", frame(0x8, struct.pack("!H", 999)), 1002),
    ("7.9 close code 1004", frame(0x8, struct.pack("!H", 1004)), 1002),
    ("7.9 close code 1005", frame(0x8, struct.pack("!H", 1005)), 1002),
    ("7.9 close code 5000", frame(0x8, struct.pack("!H", 5000)), 1002),
    ("7.5 close reason not UTF-8",
     frame(0x8, struct.pack("!H", 1000) + b"\xff"), 1007),
    ("1.x 64-bit length with the top bit", struct.pack("!BBQ", 0x82, 0xFF,
                                                        1 << 63) + b"mask", 1002),
]:
    s, ok = open_ws()
    s.sendall(data)
    expect_close(s, code, name)

# Fail fast inside one frame: only the first part of a 100000-byte text
# frame is sent, with invalid UTF-8 in it; the close comes at once.
s, ok = open_ws()
bad = b"valid " * 100 + b"\xed\xa0\x80" + b"x" * 1000
f = frame(0x1, bad + b"y" * (100000 - len(bad)))
s.sendall(f[:14 + len(bad)])
# The rest of the frame never comes: a close at all means it was refused
# before the frame completed.
expect_close(s, 1007, "6.4 invalid UTF-8 early in a partial frame")

s, ok = open_ws()
s.sendall(frame(0x8, struct.pack("!H", 3000)) + frame(0x1, b"ignored"))
op, fin, p = read_frame(s)
c.eq((op, p[:2]), (0x8, struct.pack("!H", 3000)),
     "7.x close 3000 echoed, data after close ignored")
s.close()
# Server stop: an open session gets a close 1001 (going away); once the
# client answers, the server exits without waiting for its deadline.
s, ok = open_ws()
t_stop = time.time()
srv.signal()
try:
    op, fin, p = read_frame(s)
    c.eq((op, p[:2]), (0x8, struct.pack("!H", 1001)),
         "server stop sends close 1001")
    s.sendall(frame(0x8, p[:2]))
    c.check(wisp_test.expect_closed(s, 3), "server stop: TCP closed after")
    s.close()
except (ConnectionError, OSError) as e:
    c.check(False, "server stop: no close frame (%r)" % (e,))
rc, err = srv.wait()
c.eq(rc, 0, "server exits 0 with a session open (stderr: %s)" % err[-1500:])
c.check(time.time() - t_stop < 2.0,
        "the stop did not wait for the 3 s deadline (%.2f s)"
        % (time.time() - t_stop))
s.close()

# ---- 1009: message over the limit
srv = Server(ECHO, "--max-message", 1000, threads=1)
s, ok = open_ws()
s.sendall(frame(0x2, b"x" * 1001))
expect_close(s, 1009, "9.x frame over max-message -> 1009")
s, ok = open_ws()
s.sendall(frame(0x2, b"x" * 600, fin=False) + frame(0x0, b"x" * 600))
expect_close(s, 1009, "9.x fragmented message over max-message -> 1009")
rc, err = srv.stop()
c.eq(rc, 0, "server exits 0 (stderr: %s)" % err[-1500:])

# ---- keep-alive: pings to a silent client, idle timeout, close timeout
srv = Server(ECHO, "--ping-interval-ms", 200, "--idle-timeout-ms", 700,
             "--close-timeout-ms", 300, threads=1)
# A silent client that answers pings stays open past the idle timeout:
# its pongs are traffic.
s, ok = open_ws()
t0 = time.time()
pings = 0
alive = True
while time.time() - t0 < 1.5:
    try:
        op, fin, p = read_frame(s)
    except (ConnectionError, OSError, socket.timeout):
        alive = False
        break
    if op == 0x9:
        pings += 1
        s.sendall(frame(0xA, p))
    else:
        alive = False
        break
c.check(alive and pings >= 4,
        "a client answering pings is pinged every 200 ms and kept open "
        "(%d pings in 1.5 s, alive=%s)" % (pings, alive))
s.sendall(frame(0x1, b"still here"))
op, fin, p = read_frame(s)
while op == 0x9:
    op, fin, p = read_frame(s)
c.eq((op, p), (0x1, b"still here"), "it is still served")
s.close()
# A client that does not answer: pinged, then closed with 1001 after about
# 700 ms of silence; it does not answer the close either, so the
# connection is dropped after the 300 ms close timeout.
s, ok = open_ws()
t0 = time.time()
seen = []
code = None
while True:
    try:
        op, fin, p = read_frame(s)
    except (ConnectionError, OSError, socket.timeout):
        break
    seen.append(op)
    if op == 0x8:
        code = struct.unpack("!H", p[:2])[0]
        t_close = time.time() - t0
        break
c.check(seen.count(0x9) >= 2 and code == 1001,
        "a silent client gets pings, then close 1001 (frames %r)" % seen)
c.check(code is not None and t_close >= 0.55,
        "the idle close came after the 700 ms of silence, not before "
        "(%.2f s)" % (t_close if code else -1))
c.check(wisp_test.expect_closed(s, 30),
        "no answer to the close: the server drops the connection")
s.close()
# Idle timeout without pings: close 1001 and nothing before it.
rc, err = srv.stop()
srv = Server(ECHO, "--idle-timeout-ms", 300, threads=1)
s, ok = open_ws()
t0 = time.time()
op, fin, p = read_frame(s)
c.eq((op, p[:2]), (0x8, struct.pack("!H", 1001)),
     "idle timeout alone: close 1001, no ping before it")
c.check(time.time() - t0 >= 0.2,
        "after the 300 ms, not before (%.2f s)" % (time.time() - t0))
s.sendall(frame(0x8, p[:2]))
c.check(wisp_test.expect_closed(s, 30), "closed once the client answers")
s.close()
s.close()
rc, err = srv.stop()
c.eq(rc, 0, "server exits 0 (stderr: %s)" % err[-1500:])
# Traffic keeps a session open: a message every 0.5 s for 3.5 s on a 2 s
# idle timeout. A gap the machine stretched past the timeout proves
# nothing either way: such a run is reported, not counted.
srv = Server(ECHO, "--idle-timeout-ms", 2000, threads=1)
s, ok = open_ws()
ok, stretched = True, False
last = time.time()
for i in range(7):
    time.sleep(0.5)
    gap = time.time() - last
    try:
        s.sendall(frame(0x1, b"%d" % i))
        op, fin, p = read_frame(s)
    except (ConnectionError, OSError, socket.timeout):
        op, p = None, None
    last = time.time()
    if (op, p) != (0x1, b"%d" % i):
        ok = False
        stretched = gap >= 1.9
        break
if stretched:
    print("ws_echo: a 0.5 s gap was stretched past the 2 s idle timeout; "
          "not counted")
else:
    c.check(ok, "a client sending every 0.5 s outlives a 2 s idle timeout")
s.close()
rc, err = srv.stop()
c.eq(rc, 0, "server exits 0 (stderr: %s)" % err[-1500:])
c.done()
