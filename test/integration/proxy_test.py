"""PROXY protocol (v1 and v2) on wisp's listener and trusted
X-Forwarded-For / Forwarded: raw headers from Python, bad inputs (each
closed, other clients still served), then the server behind a real
haproxy with send-proxy and send-proxy-v2 (skipped when haproxy is absent).
argv[1]: wisp-testserver."""
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wisp_test as wt  # noqa: E402

BIN = sys.argv[1]
GET = b"GET /whoami HTTP/1.1\r\nHost: x\r\n\r\n"
SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def stopped(srv):
    # A clean exit: no sanitizer report, no crash at stop.
    rc, err = srv.stop()
    assert rc == 0, (rc, err[-2000:])


def whoami(server, prefix, src=None, extra=b""):
    s = socket.create_connection(server.addr, timeout=30,
                                 source_address=(src, 0) if src else None)
    s.sendall(prefix + GET.replace(b"\r\n\r\n", b"\r\n" + extra + b"\r\n\r\n")
              if extra else prefix + GET)
    try:
        st, _, body = wt.read_response(s)
        return st, body.decode()
    finally:
        s.close()


def v2(src, sport=4000, tlv=b""):
    body = socket.inet_aton(src) + socket.inet_aton("127.0.0.1") + \
        struct.pack("!HH", sport, 80) + tlv
    return SIG + b"\x21\x11" + struct.pack("!H", len(body)) + body


def refused(server, data, split=False):
    s = server.connect()
    if split:
        for i in range(len(data)):
            s.sendall(data[i:i + 1])
    else:
        s.sendall(data)
    try:
        return wt.expect_closed(s, timeout=20)
    finally:
        s.close()


def raw_tests():
    srv = wt.Server(BIN, "--proxy-protocol", "required", "--proxy-trusted",
                    "127.0.0.1", "--proxy-timeout-ms", "500")
    try:
        st, body = whoami(srv, b"PROXY TCP4 192.0.2.7 127.0.0.1 5 80\r\n")
        assert st == 200 and body.startswith("peer=192.0.2.7 "), body
        st, body = whoami(srv, b"PROXY TCP6 2001:db8::9 ::1 5 80\r\n")
        assert body.startswith("peer=2001:db8::9 "), body
        st, body = whoami(srv, b"PROXY UNKNOWN\r\n")
        assert body.startswith("peer=127.0.0.1 "), body
        st, body = whoami(srv, v2("198.51.100.4"))
        assert body.startswith("peer=198.51.100.4 "), body
        tlv = b"\x02\x00\x05a.com" + b"\x04\x00\x00"
        st, body = whoami(srv, v2("198.51.100.5", tlv=tlv))
        assert body.startswith("peer=198.51.100.5 "), body
        local = SIG + b"\x20\x00\x00\x00"
        st, body = whoami(srv, local)
        assert body.startswith("peer=127.0.0.1 "), body
        # The header split across reads, one byte at a time.
        s = srv.connect()
        for b in b"PROXY TCP4 192.0.2.8 127.0.0.1 5 80\r\n" + GET:
            s.sendall(bytes([b]))
        st, _, body = wt.read_response(s)
        s.close()
        assert body.decode().startswith("peer=192.0.2.8 "), body
        # Bad inputs: each closed, nothing answered.
        assert refused(srv, GET), "missing header"
        assert refused(srv, b"GARBAGE\r\n\r\n"), "garbage"
        assert refused(srv, b"PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n" + GET)
        assert refused(srv, SIG + b"\x21\x11\x00\x05" + b"\x00" * 5)
        assert refused(srv, b"PROXY " + b"A" * 120 + b"\r\n"), "over 107"
        # Truncated header: the header timeout closes it.
        assert refused(srv, b"PROXY TCP4 1.2.3.4"), "truncated"
        assert refused(srv, v2("1.2.3.4")[:20], split=True), "truncated v2"
        st, body = whoami(srv, b"PROXY TCP4 192.0.2.9 127.0.0.1 5 80\r\n")
        assert st == 200 and "192.0.2.9" in body, "others still served"
    finally:
        stopped(srv)

    # A source outside the trusted list is closed at accept (required)...
    srv = wt.Server(BIN, "--proxy-protocol", "required", "--proxy-trusted",
                    "10.0.0.0/8")
    try:
        assert refused(srv, b"PROXY TCP4 192.0.2.7 127.0.0.1 5 80\r\n" + GET)
        assert refused(srv, GET)
    finally:
        stopped(srv)
    # ...and in optional mode served as itself, unless it sends a header.
    srv = wt.Server(BIN, "--proxy-protocol", "optional", "--proxy-trusted",
                    "127.0.0.2")
    try:
        st, body = whoami(srv, b"")
        assert body.startswith("peer=127.0.0.1 "), body
        assert refused(srv, b"PROXY TCP4 192.0.2.7 127.0.0.1 5 80\r\n" + GET)
        st, body = whoami(srv, b"PROXY TCP4 192.0.2.7 127.0.0.1 5 80\r\n",
                          src="127.0.0.2")
        assert body.startswith("peer=192.0.2.7 "), body
        st, body = whoami(srv, b"", src="127.0.0.2")
        assert body.startswith("peer=127.0.0.2 "), body
        assert wt.hello_ok(srv)
    finally:
        stopped(srv)


def xff_tests():
    # Never trusted by default.
    srv = wt.Server(BIN)
    try:
        st, body = whoami(srv, b"", extra=b"X-Forwarded-For: 203.0.113.1")
        assert body == "peer=127.0.0.1 client=127.0.0.1", body
    finally:
        stopped(srv)
    srv = wt.Server(BIN, "--trusted-proxies", "127.0.0.1, 10.0.0.0/8")
    try:
        cases = [
            (b"X-Forwarded-For: 203.0.113.1", "203.0.113.1"),
            # Right-most untrusted: the forged left entry is ignored.
            (b"X-Forwarded-For: 1.1.1.1, 203.0.113.1, 10.1.1.1",
             "203.0.113.1"),
            (b"X-Forwarded-For: 1.1.1.1\r\nX-Forwarded-For: 10.0.0.3",
             "1.1.1.1"),
            (b"X-Forwarded-For: 10.0.0.5, 10.0.0.6", "10.0.0.5"),
            (b"X-Forwarded-For: garbage", "unknown"),
            (b'Forwarded: for="[2001:db8::7]:4711";proto=https, for=10.2.3.4',
             "2001:db8::7"),
            (b"Forwarded: for=unknown", "unknown"),
            (b"Forwarded: for=198.51.100.1\r\nX-Forwarded-For: 1.2.3.4",
             "198.51.100.1"),
            (b"", "127.0.0.1"),
        ]
        for extra, want in cases:
            st, body = whoami(srv, b"", extra=extra)
            assert body == "peer=127.0.0.1 client=" + want, (extra, body)
        # From an untrusted peer the headers are ignored.
        st, body = whoami(srv, b"", src="127.0.0.3",
                          extra=b"X-Forwarded-For: 203.0.113.1")
        assert body == "peer=127.0.0.3 client=127.0.0.3", body
    finally:
        stopped(srv)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def haproxy_tests():
    hp = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None)
    if not hp:
        print("SKIP haproxy part: haproxy not installed")
        return False
    srv = wt.Server(BIN, "--proxy-protocol", "required", "--proxy-trusted",
                    "127.0.0.1")
    p1, p2 = free_port(), free_port()
    conf = f"""
global
    maxconn 100
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend f1
    bind 127.0.0.1:{p1}
    default_backend b1
frontend f2
    bind 127.0.0.1:{p2}
    default_backend b2
backend b1
    server s1 127.0.0.1:{srv.port} send-proxy
backend b2
    server s2 127.0.0.1:{srv.port} send-proxy-v2
"""
    d = tempfile.mkdtemp()
    path = os.path.join(d, "h.cfg")
    with open(path, "w") as f:
        f.write(conf)
    h = subprocess.Popen([hp, "-db", "-f", path], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    wt._procs.append(h)
    try:
        for port in (p1, p2):
            end = time.time() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), 1).close()
                    break
                except OSError:
                    if time.time() > end or h.poll() is not None:
                        raise RuntimeError("haproxy did not start: %r" %
                                           h.stdout.read())
                    time.sleep(0.05)
        for port, src in ((p1, "127.0.0.5"), (p2, "127.0.0.6")):
            s = socket.create_connection(("127.0.0.1", port), timeout=30,
                                         source_address=(src, 0))
            s.sendall(GET)
            st, _, body = wt.read_response(s)
            s.close()
            assert st == 200 and body.decode().startswith("peer=%s " % src), \
                (port, body)
        # A client straight to the backend (no header) is refused, and the
        # balancer's clients are still served.
        assert refused(srv, GET)
        s = socket.create_connection(("127.0.0.1", p2), timeout=30,
                                     source_address=("127.0.0.7", 0))
        s.sendall(GET)
        st, _, body = wt.read_response(s)
        s.close()
        assert body.decode().startswith("peer=127.0.0.7 "), body
    finally:
        h.terminate()
        h.wait()
        shutil.rmtree(d)
        stopped(srv)
    return True


raw_tests()
xff_tests()
ran = haproxy_tests()
print("proxy: ok" + ("" if ran else " (haproxy part skipped)"))
sys.exit(0 if ran else 77)
