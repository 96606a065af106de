#!/usr/bin/env python3
"""Integration test: the ordinary HTTP/1.1 behaviour of wisp (wisp-testserver, test/server/).

Usage: python3 http_basic_test.py /path/to/wisp-testserver

Covers: GET / and its headers, keep-alive (HTTP/1.1 and HTTP/1.0),
Connection: close, pipelining (with an async response in the middle),
requests trickling in one byte at a time, chunked and streamed request
bodies, chunked responses, HEAD, Expect: 100-continue, absolute-form and
asterisk-form targets, percent-decoding and query splitting, 404/405,
the 1 MiB bodies, and async (timer) responses. Raw sockets mostly, curl
where that is the natural client.
"""
import os
import random
import re
import select
import shutil
import socket
import subprocess
import sys
import time
import traceback
from email.utils import parsedate_to_datetime

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wisp_test  # noqa: E402
from wisp_test import (Checks, Server, expect_closed,  # noqa: E402
                       read_response)

HERE = os.path.dirname(os.path.abspath(__file__))
PUBLIC = os.path.normpath(os.path.join(HERE, "..", "server", "public"))
HELLO = b"Hello, World!"
MIB = 1024 * 1024
# A failure bound, not a speed requirement: sections after it are reported
# as not run (meson's own timeout is 300 s).
BUDGET = 240.0

c = Checks("http_basic")
srv = None
CURL = shutil.which("curl")


# ---------------------------------------------------------------- helpers

def req(method, target, headers=(), body=None, version="HTTP/1.1",
        host=True):
    """Build a raw request. `body` (bytes) adds Content-Length."""
    lines = ["%s %s %s" % (method, target, version)]
    if host:
        lines.append("Host: test")
    lines += list(headers)
    if body is not None:
        lines.append("Content-Length: %d" % len(body))
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return raw + (body or b"")


def chunked(pieces, ext=None, trailers=()):
    """Chunked encoding of `pieces` (list of bytes)."""
    out = b""
    for i, p in enumerate(pieces):
        e = (ext[i] if ext else b"")
        out += b"%x%s\r\n%s\r\n" % (len(p), e, p)
    out += b"0\r\n"
    for t in trailers:
        out += t + b"\r\n"
    return out + b"\r\n"


def hdr(h, name):
    return h.get(name.lower())


def pending(sock):
    """Bytes read ahead by read_response and not yet consumed."""
    return wisp_test.leftover(sock)


def still_open(sock, wait=0.3):
    """True when nothing (no EOF, no bytes) arrives within `wait` s."""
    r, _, _ = select.select([sock], [], [], wait)
    return not r


IMF_RE = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} "
                    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
                    r"\d{4} \d{2}:\d{2}:\d{2} GMT$")


def curl(*args, data=None, timeout=20):
    p = subprocess.run([CURL, "-sS", "--max-time", "8"] + list(args),
                       input=data, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr.decode("latin-1")


def url(path):
    return "http://127.0.0.1:%d%s" % (srv.port, path)


def section(fn):
    """Run one test section; an exception is a failed check, not a crash."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001
        c.check(False, "%s raised %s: %s\n%s" % (fn.__name__,
                                                  type(e).__name__, e,
                                                  traceback.format_exc()))


def stop_server(checks, server):
    """SIGTERM, expect a clean exit 0 within 10 s."""
    server.signal()
    try:
        rc, err = server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        checks.check(False, "server exits within 10 s of SIGTERM")
        return
    checks.eq(rc, 0, "server exits 0 on SIGTERM (stderr: %s)" % err[-2000:])


# ---------------------------------------------------------------- tests

def test_app_headers():
    """Content-Type and Server set by the handler (wisp_res_header) are
    sent once, the handler's value winning over wisp_res_send's
    Content-Type and over the configured Server name (http.h)."""
    for status in (200, 404, 201):
        s = srv.connect()
        s.sendall(req("GET", "/headers/%d" % status))
        st, h, body = read_response(s)
        s.close()
        names = [k.lower() for k, _ in h["__list__"]]
        c.eq((st, body), (status, b"{}"), "GET /headers/%d" % status)
        c.eq(names.count("content-type"), 1,
             "%d: one Content-Type: %r" % (status, h["__list__"]))
        c.eq(names.count("server"), 1,
             "%d: one Server: %r" % (status, h["__list__"]))
        c.eq(hdr(h, "content-type"), "application/json",
             "%d: the handler's Content-Type wins" % status)
        c.eq(hdr(h, "server"), "testserver/1",
             "%d: the handler's Server wins" % status)
        c.eq(hdr(h, "x-extra"), "1", "%d: other headers kept" % status)
        c.eq(names.count("date"), 1, "%d: one Date" % status)


def test_get_root_headers():
    s = srv.connect()
    s.sendall(req("GET", "/"))
    st, h, body = read_response(s)
    c.eq(st, 200, "GET / status")
    c.eq(body, HELLO, "GET / body")
    c.eq(hdr(h, "content-type"), "text/plain", "GET / Content-Type")
    c.eq(hdr(h, "content-length"), "13", "GET / Content-Length")
    c.check(bool(hdr(h, "server")), "GET / has a Server header: %r" % h)
    date = hdr(h, "date") or ""
    c.check(IMF_RE.match(date) is not None,
            "Date is an IMF-fixdate: %r" % date)
    try:
        dt = parsedate_to_datetime(date).timestamp()
        c.check(abs(dt - time.time()) < 5,
                "Date is now (+-5 s): %r vs %s" % (date, time.time()))
    except (TypeError, ValueError):
        c.check(False, "Date parses: %r" % date)
    names = [k.lower() for k, _ in h["__list__"]]
    c.check(len(names) == len(set(names)),
            "GET / no duplicated header fields: %r" % names)
    c.check("transfer-encoding" not in h,
            "GET / no Transfer-Encoding with Content-Length")
    c.check(hdr(h, "connection") is None
            or hdr(h, "connection").lower() != "close",
            "GET / HTTP/1.1 keeps the connection: %r" % hdr(h, "connection"))
    c.check(still_open(s), "GET / connection stays open after the response")
    s.close()


def test_keepalive_100():
    s = srv.connect()
    ok = 0
    bad = None
    for i in range(100):
        s.sendall(req("GET", "/"))
        st, h, body = read_response(s)
        if st == 200 and body == HELLO and \
                (hdr(h, "connection") or "").lower() != "close":
            ok += 1
        elif bad is None:
            bad = (i, st, h, body)
    c.eq(ok, 100, "100 keep-alive requests on one connection (first bad: %r)"
         % (bad,))
    c.eq(pending(s), b"", "keep-alive: no stray bytes after 100 responses")
    s.close()


def test_http10():
    # HTTP/1.0 without keep-alive: the server closes after the response.
    s = srv.connect()
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    st, h, body = read_response(s)
    c.eq((st, body), (200, HELLO), "HTTP/1.0 GET / answered")
    c.check((hdr(h, "connection") or "").lower() != "keep-alive",
            "HTTP/1.0 without keep-alive: no Connection: keep-alive in %r"
            % h["__list__"])
    c.check(expect_closed(s, 3.0), "HTTP/1.0 without keep-alive: closed")
    s.close()

    # HTTP/1.0 with Connection: keep-alive: the connection stays.
    s = srv.connect()
    s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    st, h, body = read_response(s)
    c.eq((st, body), (200, HELLO), "HTTP/1.0 keep-alive GET / answered")
    c.eq((hdr(h, "connection") or "").lower(), "keep-alive",
         "HTTP/1.0 keep-alive: response has Connection: keep-alive")
    c.check(still_open(s), "HTTP/1.0 keep-alive: connection stays open")
    s.sendall(b"GET /params/one/two HTTP/1.0\r\n"
              b"Connection: keep-alive\r\n\r\n")
    st, h, body = read_response(s)
    c.eq((st, body), (200, b"a=one rest=two\n"),
         "HTTP/1.0 keep-alive: second request on the same connection")
    c.eq((hdr(h, "connection") or "").lower(), "keep-alive",
         "HTTP/1.0 keep-alive: second response keeps alive")
    # The last one without keep-alive closes it.
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    st, h, body = read_response(s)
    c.eq((st, body), (200, HELLO), "HTTP/1.0 third request (no keep-alive)")
    c.check(expect_closed(s, 3.0),
            "HTTP/1.0: closed after a request without keep-alive")
    s.close()

    # HTTP/1.1 Connection: close.
    s = srv.connect()
    s.sendall(req("GET", "/", ["Connection: close"]))
    st, h, body = read_response(s)
    c.eq((st, body), (200, HELLO), "HTTP/1.1 Connection: close answered")
    c.eq((hdr(h, "connection") or "").lower(), "close",
         "HTTP/1.1 Connection: close echoed in the response")
    c.check(expect_closed(s, 3.0), "HTTP/1.1 Connection: close: closed")
    s.close()

    # curl, HTTP/1.0.
    if CURL:
        rc, out, err = curl("--http1.0", url("/"))
        c.eq((rc, out), (0, HELLO), "curl --http1.0 GET / (%s)" % err)


def pipeline_batch(n, seed):
    rnd = random.Random(seed)
    reqs = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            reqs.append((req("GET", "/"), 200, HELLO))
        elif kind == 1:
            body = ("body %d " % i).encode() + \
                bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 300)))
            reqs.append((req("POST", "/echo", body=body), 200, body))
        else:
            reqs.append((req("GET", "/params/p%d/x/y%d" % (i, i)), 200,
                         b"a=p%d rest=x/y%d\n" % (i, i)))
    return reqs


def check_pipeline(reqs, what, timeout=5.0):
    s = srv.connect(timeout)
    s.sendall(b"".join(r for r, _, _ in reqs))
    got_ok = 0
    first_bad = None
    for i, (_, st_want, body_want) in enumerate(reqs):
        try:
            st, h, body = read_response(s)
        except (ConnectionError, socket.timeout) as e:
            first_bad = first_bad or (i, "no response: %r" % e)
            break
        if st == st_want and body == body_want:
            got_ok += 1
        elif first_bad is None:
            first_bad = (i, st, body[:80], body_want[:80])
    c.eq(got_ok, len(reqs), "%s: %d responses in order (first bad: %r)"
         % (what, len(reqs), first_bad))
    c.eq(pending(s), b"", "%s: no stray bytes" % what)
    c.check(still_open(s, 0.2), "%s: connection still open" % what)
    s.close()


def test_pipelining():
    check_pipeline(pipeline_batch(16, 1), "pipelining 16 in one write")
    check_pipeline(pipeline_batch(100, 2), "pipelining 100 in one write")

    # An async (delayed) response in the middle keeps the order.
    reqs = [
        (req("GET", "/"), 200, HELLO),
        (req("POST", "/echo", body=b"first"), 200, b"first"),
        (req("GET", "/delay/200"), 200, b"delayed\n"),
        (req("GET", "/params/after/delay"), 200, b"a=after rest=delay\n"),
        (req("POST", "/echo", body=b"last"), 200, b"last"),
        (req("GET", "/"), 200, HELLO),
    ]
    t0 = time.time()
    check_pipeline(reqs, "pipelining with GET /delay/200 in the middle")
    el = time.time() - t0
    c.check(el >= 0.19, "pipelined delay really waited 200 ms (%.3f s)" % el)


def test_byte_at_a_time():
    stream = (req("GET", "/") +
              req("POST", "/echo", body=b"hello world") +
              req("POST", "/echo", ["Transfer-Encoding: chunked"]) +
              chunked([b"abc", b"defgh"], ext=[b";x=1", b""],
                      trailers=[b"T: v"]) +
              req("GET", "/params/slow/ly"))
    s = srv.connect(15)
    for i in range(len(stream)):
        s.sendall(stream[i:i + 1])
        time.sleep(0.001)
    want = [(200, HELLO), (200, b"hello world"), (200, b"abcdefgh"),
            (200, b"a=slow rest=ly\n")]
    s.settimeout(30)
    for i, w in enumerate(want):
        try:
            st, h, body = read_response(s)
        except (OSError, ValueError) as e:
            st, body = None, repr(e)
        if not c.eq((st, body), w, "one byte at a time: request %d" % i):
            break
    else:
        c.eq(pending(s), b"", "one byte at a time: no stray bytes")
    s.close()

    # Every split point: the request in two segments, 20 ms apart.
    raw = req("POST", "/echo", ["X-Pad: 1"], body=b"split")
    bad = []
    for cut in range(1, len(raw)):
        s = srv.connect(30)
        try:
            s.sendall(raw[:cut])
            time.sleep(0.02)
            s.sendall(raw[cut:])
            st, h, body = read_response(s)
        except (OSError, ValueError) as e:
            st, body = None, repr(e)
        s.close()
        if (st, body) != (200, b"split"):
            bad.append((cut, raw[:cut][-8:], st, body[:40]))
            if len(bad) >= 5:
                break  # enough to show the problem (keeps the run short)
    c.check(not bad, "request split in two segments at every offset of %r "
            "answered; failing cuts (offset, bytes before cut, status, body):"
            " %r" % (raw, bad))

    # One request at a time, each byte its own segment, reading in between:
    # nothing may be answered before the request is complete.
    s = srv.connect(15)
    raw = req("POST", "/echo", body=b"0123456789")
    early = False
    for i in range(len(raw)):
        s.sendall(raw[i:i + 1])
        if i < len(raw) - 1 and i % 8 == 0:
            if not still_open(s, 0.002):
                early = True
        time.sleep(0.001)
    c.check(not early, "one byte at a time: no answer before the body ends")
    s.settimeout(3)
    try:
        st, h, body = read_response(s)
    except (OSError, ValueError) as e:
        st, body = None, repr(e)
    c.eq((st, body), (200, b"0123456789"), "one byte at a time: POST /echo")
    s.close()


def test_chunked_request():
    # Chunk extensions (with quoted strings), upper/lower case hex,
    # leading zeros, trailers.
    pieces = [b"Wiki", b"pedia", b" in\r\n\r\nchunks.", b"x" * 300]
    body = (b"4;ext=1\r\nWiki\r\n"
            b"5;a=b;c=\"d;e\"\r\npedia\r\n"
            b"00E\r\n in\r\n\r\nchunks.\r\n"
            b"12c;last\r\n" + b"x" * 300 + b"\r\n"
            b"0;end=yes\r\n"
            b"Trailer-One: x\r\n"
            b"Trailer-Two: y\r\n\r\n")
    s = srv.connect()
    s.sendall(req("POST", "/echo", ["Transfer-Encoding: chunked",
                                    "Content-Type: application/x-test"]) +
              body + req("GET", "/"))
    st, h, got = read_response(s)
    c.eq(st, 200, "chunked POST /echo status")
    c.eq(got, b"".join(pieces), "chunked POST /echo body echoed whole")
    c.eq(hdr(h, "content-length"), str(len(b"".join(pieces))),
         "chunked POST /echo response Content-Length")
    st, h, got = read_response(s)
    c.eq((st, got), (200, HELLO), "request after a chunked body with trailers")
    s.close()

    # Lowercase hex, many small chunks.
    rnd = random.Random(7)
    pieces = [bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 600)))
              for _ in range(40)]
    st, h, got = wisp_test.request(
        srv, req("POST", "/echo", ["Transfer-Encoding: chunked"]) +
        chunked(pieces))
    c.eq((st, got), (200, b"".join(pieces)), "chunked POST /echo, 40 chunks")

    # Streamed (chunked) /upload.
    data = bytes(rnd.randrange(256) for _ in range(300000))
    pieces, i, sizes = [], 0, [1, 7, 4096, 65536, 100, 12345]
    k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        pieces.append(data[i:i + n])
        i += n
        k += 1
    st, h, got = wisp_test.request(
        srv, req("POST", "/upload", ["Transfer-Encoding: chunked"]) +
        chunked(pieces, trailers=[b"X-Checksum: 1"]), timeout=10)
    c.eq((st, got), (200, b"%d bytes, sum %d\n" % (len(data), sum(data))),
         "chunked POST /upload counted")

    # Empty chunked body.
    st, h, got = wisp_test.request(
        srv, req("POST", "/upload", ["Transfer-Encoding: chunked"]) +
        b"0\r\n\r\n")
    c.eq((st, got), (200, b"0 bytes, sum 0\n"), "empty chunked POST /upload")


def test_large_upload():
    block = os.urandom(MIB)
    block_sum = sum(block)
    n = 20
    s = srv.connect(30)
    t0 = time.time()
    s.sendall(b"POST /upload HTTP/1.1\r\nHost: test\r\n"
              b"Content-Type: application/octet-stream\r\n"
              b"Content-Length: %d\r\n\r\n" % (n * MIB))
    for _ in range(n):
        s.sendall(block)
    st, h, got = read_response(s)
    c.eq((st, got), (200, b"%d bytes, sum %d\n" % (n * MIB, n * block_sum)),
         "20 MiB streamed POST /upload (Content-Length) counted")
    # Same connection still usable.
    s.sendall(req("GET", "/"))
    st, h, got = read_response(s)
    c.eq((st, got), (200, HELLO), "request after a 20 MiB upload")
    s.close()

    # 4 MiB chunked, 64 KiB chunks.
    s = srv.connect(30)
    try:
        s.sendall(req("POST", "/upload", ["Transfer-Encoding: chunked"]))
        for i in range(4):
            for j in range(16):
                piece = block[j * 65536:(j + 1) * 65536]
                s.sendall(b"10000\r\n" + piece + b"\r\n")
        s.sendall(b"0\r\n\r\n")
    except OSError as e:
        c.check(False, "4 MiB chunked POST /upload: server broke the "
                "connection while the body was sent (%r)" % e)
    try:
        st, h, got = read_response(s)
    except OSError as e:
        st, got = None, repr(e)
    c.eq((st, got), (200, b"%d bytes, sum %d\n" % (4 * MIB, 4 * block_sum)),
         "4 MiB chunked POST /upload counted")
    s.close()


def test_stream_response():
    want = b"".join(b"chunk %d\n" % i for i in range(1000))
    s = srv.connect()
    s.sendall(req("GET", "/stream?n=1000") + req("GET", "/"))
    st, h, body = read_response(s)
    c.eq(st, 200, "GET /stream?n=1000 status")
    c.eq((hdr(h, "transfer-encoding") or "").lower(), "chunked",
         "GET /stream is chunked")
    c.check("content-length" not in h,
            "GET /stream has no Content-Length: %r" % h["__list__"])
    c.eq(body, want, "GET /stream?n=1000 decoded body")
    st, h, body = read_response(s)
    c.eq((st, body), (200, HELLO), "request after a chunked response")
    s.close()

    # Raw framing: every chunk size line is hex and matches its data,
    # and the message ends with the last-chunk and an empty trailer.
    s = srv.connect()
    s.sendall(req("GET", "/stream?n=50", ["Connection: close"]))
    raw = b""
    s.settimeout(5)
    while True:
        d = s.recv(65536)
        if not d:
            break
        raw += d
    s.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    body, ok = b"", True
    while True:
        line, sep, rest = rest.partition(b"\r\n")
        if not sep or not re.fullmatch(rb"[0-9a-fA-F]+", line):
            ok = False
            break
        n = int(line, 16)
        if n == 0:
            ok = rest == b"\r\n"
            break
        body += rest[:n]
        if rest[n:n + 2] != b"\r\n":
            ok = False
            break
        rest = rest[n + 2:]
    c.check(ok, "GET /stream?n=50 raw chunked framing valid: %r" % raw[-200:])
    c.eq(body, b"".join(b"chunk %d\n" % i for i in range(50)),
         "GET /stream?n=50 raw body")

    if CURL:
        rc, out, err = curl(url("/stream?n=1000"))
        c.eq((rc, out == want), (0, True),
             "curl GET /stream?n=1000 (%d bytes; %s)" % (len(out), err))


def test_head():
    s = srv.connect()
    s.sendall(req("HEAD", "/") + req("GET", "/"))
    st1, h1, b1 = read_response(s, head_request=True)
    st2, h2, b2 = read_response(s)
    c.eq(st1, 200, "HEAD / status")
    c.eq(hdr(h1, "content-length"), "13", "HEAD / Content-Length 13")
    c.eq((st2, b2), (200, HELLO),
         "GET after HEAD on the same connection (HEAD had no body)")
    strip = lambda h: [(k.lower(), v) for k, v in h["__list__"]  # noqa: E731
                       if k.lower() != "date"]
    c.eq(strip(h1), strip(h2), "HEAD / headers equal GET / headers")
    c.check(still_open(s, 0.2), "HEAD: nothing more after the GET response")
    s.close()

    # HEAD of a large and of a chunked resource.
    s = srv.connect()
    s.sendall(req("HEAD", "/big") + req("GET", "/"))
    st1, h1, _ = read_response(s, head_request=True)
    st2, _, b2 = read_response(s)
    c.eq((st1, hdr(h1, "content-length")), (200, str(MIB)),
         "HEAD /big: 200, Content-Length 1048576")
    c.eq((st2, b2), (200, HELLO), "GET after HEAD /big (no body sent)")
    s.close()

    if CURL:
        rc, out, err = curl("-I", url("/"))
        c.check(rc == 0 and out.startswith(b"HTTP/1.1 200")
                and b"Content-Length: 13" in out,
                "curl -I /: %r %s" % (out, err))


def test_expect_continue():
    s = srv.connect()
    s.sendall(req("POST", "/echo", ["Expect: 100-continue",
                                    "Content-Length: 11"]))
    # Peek at the interim response (without consuming it) to see its
    # status line, then let read_response consume it.
    r, _, _ = select.select([s], [], [], 3.0)
    first = s.recv(4096, socket.MSG_PEEK) if r else b""
    c.check(first.startswith(b"HTTP/1.1 100 Continue\r\n"),
            "Expect: 100-continue: interim 100 before the body: %r" % first)
    if first.startswith(b"HTTP/1.1 100 "):
        st, h, body = read_response(s)
        c.eq(st, 100, "Expect: 100-continue: interim response status")
        c.check(wisp_test.leftover(s) == b"" and still_open(s, 0.1),
                "Expect: 100-continue: no final response before the body")
    s.sendall(b"hello world")
    st, h, body = read_response(s)
    c.eq((st, body), (200, b"hello world"),
         "Expect: 100-continue: final 200 with the echo")
    s.close()

    # Expect with an empty body: no need for 100, but a final answer.
    s = srv.connect()
    s.sendall(req("POST", "/echo", ["Expect: 100-continue"], body=b""))
    st, h, body = read_response(s)
    if st == 100:
        st, h, body = read_response(s)
    c.eq((st, body), (200, b""), "Expect: 100-continue with Content-Length 0")
    s.close()

    # Expect on a pipelined request with the body already sent.
    s = srv.connect()
    s.sendall(req("POST", "/echo", ["Expect: 100-continue"], body=b"eager") +
              req("GET", "/"))
    st, h, body = read_response(s)
    if st == 100:
        st, h, body = read_response(s)
    c.eq((st, body), (200, b"eager"),
         "Expect: 100-continue with the body sent at once")
    st, h, body = read_response(s)
    c.eq((st, body), (200, HELLO), "request after an Expect request")
    s.close()

    if CURL:
        data = bytes(random.Random(3).randrange(256) for _ in range(4000))
        # curl 7.88 adds Expect by itself only for bodies over 1 MiB
        # (more than /echo takes), so ask for it; --expect100-timeout 10
        # makes a missing 100 visible (curl would stall, then time out).
        t0 = time.time()
        rc, out, err = curl("-v", "--expect100-timeout", "10",
                            "-H", "Content-Type: application/octet-stream",
                            "-H", "Expect: 100-continue",
                            "--data-binary", "@-", url("/echo"), data=data)
        c.eq((rc, out == data), (0, True),
             "curl POST /echo 4000 bytes echoed (%d bytes)" % len(out))
        c.check("> Expect: 100-continue" in err,
                "curl sent Expect: 100-continue:\n%s" % err)
        c.check("< HTTP/1.1 100 Continue" in err,
                "curl received 100 Continue:\n%s" % err)


def rest_until_closed(sock, timeout=3.0):
    """(closed, bytes): what is left (read ahead or still arriving) before
    the peer closes, and whether it closed within `timeout` s."""
    extra = pending(sock)
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True, extra
            extra += data
    except (ConnectionResetError, BrokenPipeError):
        return True, extra
    except socket.timeout:
        return False, extra


def test_conformance_exchange():
    """Exchange rows of docs/conformance.md (RFC 9110, RFC 9112)."""
    # RFC 9112 §9.6: after a request with "close", no further request on
    # the connection is processed, even one already received.
    s = srv.connect()
    s.sendall(req("GET", "/", ["Connection: close"]) + req("GET", "/"))
    st, h, body = read_response(s)
    c.eq((st, body), (200, HELLO), "close then a pipelined GET: first answered")
    closed, extra = rest_until_closed(s)
    c.check(closed and extra == b"",
            "close then a pipelined GET: closed, the second not answered "
            "(closed %r, extra %r)" % (closed, extra[:80]))
    s.close()

    # RFC 9110 §10.1.1, §15.2: a 100-continue expectation in HTTP/1.0 is
    # ignored, and no 1xx goes to an HTTP/1.0 client. The body follows
    # the head at once; a 100 would come before the 200.
    s = srv.connect()
    s.sendall(req("POST", "/echo", ["Expect: 100-continue"], version="HTTP/1.0",
                  body=b"ten bytes!"))
    st, h, body = read_response(s)
    c.eq((st, body), (200, b"ten bytes!"),
         "HTTP/1.0 with Expect: 100-continue: the 200 comes first, no 100")
    s.close()

    # RFC 9110 §6.2 / §2.5: the response to an HTTP/1.0 request is sent
    # as HTTP/1.1, the highest version we conform to.
    s = srv.connect()
    s.sendall(req("GET", "/", version="HTTP/1.0"))
    s.settimeout(5.0)
    first = s.recv(12, socket.MSG_PEEK)
    c.check(first.startswith(b"HTTP/1.1 200"),
            "HTTP/1.0 request answered with HTTP/1.1: %r" % first)
    s.close()

    # RFC 9110 §8.6, RFC 9112 §6.1: no Content-Length or Transfer-Encoding
    # in a 204.
    s = srv.connect()
    s.sendall(b"OPTIONS * HTTP/1.1\r\nHost: test\r\n\r\n")
    st, h, body = read_response(s)
    c.check(st == 204 and "content-length" not in h
            and "transfer-encoding" not in h,
            "OPTIONS * 204 has neither Content-Length nor Transfer-Encoding:"
            " %r" % h.get("__list__"))
    s.close()

    # RFC 9110 §6.6.1: Date in every 4xx too; RFC 9112 §9.6: an error
    # that closes the connection says so.
    s = srv.connect()
    s.sendall(b"GET / HTTP/1.1\r\n\r\n")
    st, h, body = read_response(s)
    c.check(st == 400 and hdr(h, "date") is not None
            and (hdr(h, "connection") or "").lower() == "close",
            "400 has Date and Connection: close: %r" % h.get("__list__"))
    c.check(rest_until_closed(s)[0], "400: connection closed")
    s.close()


def test_target_forms():
    st, h, body = wisp_test.request(
        srv, b"GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n")
    c.eq((st, body), (200, HELLO), "absolute-form GET http://example.com/")
    st, h, body = wisp_test.request(
        srv, b"GET http://example.com/params/x/y?q=1 HTTP/1.1\r\n"
             b"Host: example.com\r\n\r\n")
    c.eq((st, body), (200, b"a=x rest=y\n"),
         "absolute-form with a path and a query")

    s = srv.connect()
    s.sendall(b"OPTIONS * HTTP/1.1\r\nHost: test\r\n\r\n" + req("GET", "/"))
    st, h, body = read_response(s)
    c.eq(st, 204, "OPTIONS * status")
    allow = hdr(h, "allow") or ""
    c.check("GET" in [m.strip() for m in allow.split(",")],
            "OPTIONS * has Allow with GET: %r" % allow)
    c.check(hdr(h, "content-length") in (None, "0")
            and "transfer-encoding" not in h,
            "OPTIONS * 204 has no body framing: %r" % h["__list__"])
    st, h, body = read_response(s)
    c.eq((st, body), (200, HELLO), "request after OPTIONS * (no body sent)")
    s.close()


def test_decoding_and_query():
    st, h, body = wisp_test.request(srv, req("GET", "/params/a%20b/c%2Fd"))
    c.eq((st, body), (200, b"a=a b rest=c/d\n"),
         "percent-decoding of route parameters")
    if wisp_test.have("static_files"):
        st, h, body = wisp_test.request(srv, req("GET", "/static/hello%2etxt"))
        c.eq((st, body), (200, b"hello from a static file\n"),
             "percent-decoded static path /static/hello%2etxt")
        st, h, body = wisp_test.request(srv, req("GET", "/static/hello.txt"))
        c.eq((st, body), (200, b"hello from a static file\n"),
             "GET /static/hello.txt")
        st, h, body = wisp_test.request(srv,
                                        req("GET", "/static/sub/nested.txt"))
        c.eq((st, body[:6]), (200, b"nested"), "GET /static/sub/nested.txt")
        st, h, body = wisp_test.request(srv, req("GET", "/static/%68ello.txt"))
        c.eq((st, body), (200, b"hello from a static file\n"),
             "percent-decoded letter in a static path")
    else:
        # Built without static files: the route is simply not there.
        st, h, body = wisp_test.request(srv, req("GET", "/static/hello.txt"))
        c.eq(st, 404, "no static files in this build: /static/hello.txt 404")
    st, h, body = wisp_test.request(srv, req("GET", "/stream?n=3"))
    c.eq((st, body), (200, b"chunk 0\nchunk 1\nchunk 2\n"),
         "query string: /stream?n=3")
    st, h, body = wisp_test.request(srv, req("GET", "/?x=1"))
    c.eq((st, body), (200, HELLO), "query string: /?x=1 routes to /")
    st, h, body = wisp_test.request(srv, req("GET", "/params/q/r?x=%2F&y"))
    c.eq((st, body), (200, b"a=q rest=r\n"),
         "query string not part of the route parameters")
    if CURL:
        rc, out, err = curl(url("/params/a%20b/c%2Fd"))
        c.eq((rc, out), (0, b"a=a b rest=c/d\n"), "curl percent-decoding")


def test_errors_and_big():
    st, h, body = wisp_test.request(srv, req("GET", "/no/such/path"))
    c.eq(st, 404, "GET unknown path -> 404")
    st, h, body = wisp_test.request(srv, req("GET", "/echo"))
    c.eq(st, 405, "GET /echo (POST-only route) -> 405")
    c.check("POST" in (hdr(h, "allow") or ""),
            "405 for GET /echo has Allow with POST: %r" % hdr(h, "allow"))

    s = srv.connect()
    s.sendall(req("DELETE", "/") + req("GET", "/"))
    st, h, body = read_response(s)
    c.eq(st, 405, "DELETE / -> 405")
    allow = [m.strip() for m in (hdr(h, "allow") or "").split(",")]
    c.check("GET" in allow and "HEAD" in allow,
            "405 Allow contains GET, HEAD: %r" % hdr(h, "allow"))
    st, h, body = read_response(s)
    c.eq((st, body), (200, HELLO), "connection usable after a 405")
    s.close()

    pattern = bytes(ord("a") + i % 26 for i in range(MIB))
    s = srv.connect(15)
    s.sendall(req("GET", "/big") + req("GET", "/"))
    st, h, body = read_response(s)
    c.eq(st, 200, "GET /big status")
    c.eq(hdr(h, "content-length"), str(MIB), "GET /big Content-Length")
    c.eq(len(body), MIB, "GET /big body length")
    c.check(body == pattern, "GET /big body is 'a'..'z' repeating")
    st, h, body = read_response(s)
    c.eq((st, body), (200, HELLO), "request after GET /big")
    s.close()

    data = os.urandom(MIB)
    s = srv.connect(15)
    s.sendall(req("POST", "/echo", body=data))
    st, h, body = read_response(s)
    c.eq(st, 200, "POST /echo of exactly 1 MiB status")
    c.check(body == data, "POST /echo of exactly 1 MiB echoed (%d bytes)"
            % len(body))
    s.close()

    if CURL:
        rc, out, err = curl(url("/big"))
        c.check(rc == 0 and out == pattern, "curl GET /big (%d bytes, %s)"
                % (len(out), err))
        rc, out, err = curl("-o", "/dev/null", "-w", "%{http_code}",
                            url("/nope"))
        c.eq(out, b"404", "curl GET /nope -> 404")


def test_delay():
    t0 = time.time()
    st, h, body = wisp_test.request(srv, req("GET", "/delay/100"))
    el = time.time() - t0
    c.eq((st, body), (200, b"delayed\n"), "GET /delay/100")
    c.check(el >= 0.09, "GET /delay/100 not answered before its timer "
            "(%.3f s)" % el)

    s = srv.connect()
    t0 = time.time()
    s.sendall(req("HEAD", "/delay/50") + req("GET", "/"))
    st, h, body = read_response(s, head_request=True)
    el = time.time() - t0
    c.eq(st, 200, "HEAD /delay/50 status")
    c.eq(hdr(h, "content-length"), "8", "HEAD /delay/50 Content-Length 8")
    c.check(el >= 0.045, "HEAD /delay/50 waited (%.3f s)" % el)
    st, h, body = read_response(s)
    c.eq((st, body), (200, HELLO), "GET after HEAD /delay/50 (no body)")
    s.close()

    if CURL:
        rc, out, err = curl(url("/delay/20"))
        c.eq((rc, out), (0, b"delayed\n"), "curl GET /delay/20")


def test_curl_basics():
    if not CURL:
        c.check(False, "curl is installed")
        return
    rc, out, err = curl("-i", url("/"))
    c.check(rc == 0 and out.startswith(b"HTTP/1.1 200 OK\r\n")
            and out.endswith(b"\r\n\r\n" + HELLO),
            "curl -i GET /: %r %s" % (out, err))
    # curl reusing one connection for several URLs.
    rc, out, err = curl("-v", url("/"), url("/params/k/v"), url("/"))
    c.eq(out, HELLO + b"a=k rest=v\n" + HELLO, "curl three URLs")
    c.check("Re-using existing connection" in err
            or "Reusing existing connection" in err,
            "curl re-used the keep-alive connection:\n%s" % err)


def main():
    global srv
    srv = Server(sys.argv[1], "--static", PUBLIC)
    t0 = time.time()
    for fn in (test_get_root_headers, test_app_headers, test_keepalive_100, test_http10,
               test_pipelining, test_byte_at_a_time, test_chunked_request,
               test_large_upload, test_stream_response, test_head,
               test_expect_continue, test_target_forms,
               test_decoding_and_query, test_errors_and_big, test_delay,
               test_curl_basics, test_conformance_exchange):
        if time.time() - t0 > BUDGET:
            c.check(False, "%s not run: the test took over %.0f s"
                    % (fn.__name__, BUDGET))
            continue
        section(fn)
    c.check(srv.proc.poll() is None, "server still running at the end")
    stop_server(c, srv)
    print("http_basic: %.1f s" % (time.time() - t0))
    c.done()


if __name__ == "__main__":
    main()
