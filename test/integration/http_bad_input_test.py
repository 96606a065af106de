#!/usr/bin/env python3
"""Integration test: wisp's answers to malformed and hostile input.

Usage: python3 http_bad_input_test.py /path/to/wisp-testserver

One table row per bad input: the raw bytes (or a function that sends them
in pieces), the expected status and the rule it comes from. For every row
the test checks that
  1. the expected error status is the (first) answer,
  2. the connection is closed right after the error response, with
     nothing else sent after it,
  3. the server still serves another client (hello_ok),
and that the server is still running. Limits are the defaults of
docs/architecture.md ("Limits and their answers"): request line 8 KiB ->
414, header section 64 KiB -> 431, 100 header fields -> 431, body 1 MiB
(/echo) -> 413 before reading it, malformed -> 400, unknown method -> 501,
bad version -> 505, bad Expect -> 417.
"""
import os
import select
import socket
import subprocess
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wisp_test  # noqa: E402
from wisp_test import Checks, Server, hello_ok, read_response  # noqa: E402

MIB = 1024 * 1024
# Failure bounds, not speed requirements (the machine may be loaded):
RESPONSE_TIMEOUT = 30.0  # for the error response (header timeout is 60 s)
CLOSE_TIMEOUT = 30.0     # for the close after it
BUDGET = 240.0           # seconds for the whole table (meson: 300 s)

c = Checks("http_bad_input")
srv = None
binary = None


def start_server():
    global srv
    # Header and body timeouts beyond RESPONSE_TIMEOUT: an answer that
    # comes is the server's verdict on the bytes, never a timeout's.
    srv = Server(binary, "--header-timeout-ms", 60000,
                 "--body-timeout-ms", 60000)


# ------------------------------------------------------------ raw builders

def get(target=b"/", headers=b"Host: x\r\n", version=b"HTTP/1.1",
        method=b"GET"):
    return method + b" " + target + b" " + version + b"\r\n" + headers + \
        b"\r\n"


def hdrs(*extra):
    """Host: x plus extra header lines (bytes, without CRLF)."""
    return b"Host: x\r\n" + b"".join(e + b"\r\n" for e in extra)


def post(path, *extra, body=b"hello"):
    return b"POST " + path + b" HTTP/1.1\r\n" + hdrs(*extra) + b"\r\n" + body


def post_cl(value, body=b"hello"):
    return post(b"/echo", b"Content-Length: " + value, body=body)


def post_te(value, body=b"5\r\nhello\r\n0\r\n\r\n", path=b"/echo"):
    return post(path, b"Transfer-Encoding: " + value, body=body)


def chunked_body(path, body):
    return post(path, b"Transfer-Encoding: chunked", body=body)


TLS_HELLO = bytes.fromhex(
    "16030100c8010000c40303") + bytes(range(32)) + bytes.fromhex(
    "00002c130213031301c02cc030009fcca9cca8ccaac02bc02f009ec024c028006b"
    "c023c0270067c00ac0140039c009c0130033009d009c003d003c0035002f00ff"
    "0100006f000b000403000102000a000c000a001d0017001e00190018")


# ------------------------------------------------------------ senders
# A row's `raw` may be a function(sock) that sends the input itself; these
# send in pieces and stop as soon as the server has answered.

def readable(sock, wait=0.0):
    r, _, _ = select.select([sock], [], [], wait)
    return bool(r)


def trickle(prefix, piece, max_total, interval=0.0):
    """Send `prefix`, then `piece` repeatedly (never completing the
    message) until the server answers or `max_total` bytes were sent."""
    def send(sock):
        sock.sendall(prefix)
        total = len(prefix)
        while total < max_total:
            if readable(sock, interval):
                return
            sock.sendall(piece)
            total += len(piece)
    return send


def head_then_wait(raw):
    """Send only `raw` (a head announcing a body) and nothing more."""
    def send(sock):
        sock.sendall(raw)
    return send


# ------------------------------------------------------------ the table
# (name, reference, raw bytes or sender, expected status or list of
#  statuses for pipelined requests, options)

H = b"Host: x\r\n"
BIG = b"a" * 7000
CASES = [
    # --- Host (RFC 9112 §3.2)
    ("missing Host in HTTP/1.1", "RFC 9112 §3.2",
     b"GET / HTTP/1.1\r\n\r\n", 400),
    ("missing Host, other fields present", "RFC 9112 §3.2",
     b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400),
    ("duplicate Host, different values", "RFC 9112 §3.2",
     b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("duplicate Host, same value", "RFC 9112 §3.2",
     b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),

    # --- message framing (RFC 9112 §6)
    ("Content-Length and Transfer-Encoding", "RFC 9112 §6.1, §6.3",
     post(b"/echo", b"Content-Length: 5", b"Transfer-Encoding: chunked",
          body=b"5\r\nhello\r\n0\r\n\r\n"), 400),
    ("Transfer-Encoding and Content-Length (reversed)", "RFC 9112 §6.1",
     post(b"/echo", b"Transfer-Encoding: chunked", b"Content-Length: 5",
          body=b"5\r\nhello\r\n0\r\n\r\n"), 400),
    ("duplicate Content-Length, same value", "RFC 9112 §6.3 (spec: reject)",
     post(b"/echo", b"Content-Length: 5", b"Content-Length: 5"), 400),
    ("duplicate Content-Length, different values", "RFC 9112 §6.3",
     post(b"/echo", b"Content-Length: 5", b"Content-Length: 6",
          body=b"hello!"), 400),
    ("Content-Length: abc", "RFC 9110 §8.6", post_cl(b"abc"), 400),
    ("Content-Length: -1", "RFC 9110 §8.6", post_cl(b"-1"), 400),
    ("Content-Length: +5", "RFC 9110 §8.6", post_cl(b"+5"), 400),
    ("Content-Length: 1 2", "RFC 9110 §8.6", post_cl(b"1 2"), 400),
    ("Content-Length: 1,1", "RFC 9110 §8.6 (spec: no lists)",
     post_cl(b"1,1"), 400),
    ("Content-Length: 99999999999999999999 (overflow)", "RFC 9110 §8.6",
     post_cl(b"99999999999999999999"), 400),
    ("Content-Length: (empty)", "RFC 9110 §8.6", post_cl(b""), 400),
    ("Transfer-Encoding: gzip", "RFC 9112 §6.3 (spec: 400)",
     post_te(b"gzip", body=b"hello"), 400),
    ("Transfer-Encoding: chunked, gzip (chunked not last)", "RFC 9112 §6.3",
     post_te(b"chunked, gzip"), 400),
    ("Transfer-Encoding: gzip, chunked (unsupported coding)",
     "RFC 9112 §6.1 / 501", post_te(b"gzip, chunked"), 501),
    ("Transfer-Encoding: chunked junk", "RFC 9112 §6.1",
     post_te(b"chunked junk"), 400),
    ("Transfer-Encoding: <VT>chunked", "RFC 9110 §5.5 (VT is no OWS)",
     post_te(b"\x0bchunked"), 400),
    ("Transfer-Encoding:  chunked<FF>", "RFC 9110 §5.5 (FF is no OWS)",
     post_te(b" chunked\x0c"), 400),
    ("Transfer-Encoding: xchunked", "RFC 9112 §6.1", post_te(b"xchunked"),
     400),
    ("Transfer-Encoding: chunked, chunked", "RFC 9112 §7.1",
     post_te(b"chunked, chunked"), 400),
    ("Transfer-Encoding: chunked twice (two fields)", "RFC 9112 §7.1",
     post(b"/echo", b"Transfer-Encoding: chunked",
          b"Transfer-Encoding: chunked", body=b"5\r\nhello\r\n0\r\n\r\n"),
     400),
    ("Transfer-Encoding in HTTP/1.0", "RFC 9112 §6.1",
     b"POST /echo HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5\r\nhello\r\n0\r\n\r\n", 400),

    # --- chunked body (RFC 9112 §7.1)
    ("chunk-size overflow FFFFFFFFFFFFFFFFFF (/echo)", "RFC 9112 §7.1",
     chunked_body(b"/echo", b"FFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n"),
     400),
    ("chunk-size overflow FFFFFFFFFFFFFFFFFF (/upload)", "RFC 9112 §7.1",
     chunked_body(b"/upload", b"FFFFFFFFFFFFFFFFFF\r\nhello\r\n0\r\n\r\n"),
     400),
    ("chunk-size 2^64 wraps to 0 (/upload)", "RFC 9112 §7.1",
     chunked_body(b"/upload", b"10000000000000000\r\nhello\r\n0\r\n\r\n"),
     400),
    ("chunk-size not hex: zz", "RFC 9112 §7.1",
     chunked_body(b"/echo", b"zz\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size not hex: 0x5", "RFC 9112 §7.1",
     chunked_body(b"/echo", b"0x5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size not hex: -5", "RFC 9112 §7.1",
     chunked_body(b"/echo", b"-5\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size empty", "RFC 9112 §7.1",
     chunked_body(b"/echo", b"\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-size line ends in bare LF", "RFC 9112 §7.1, §2.2",
     chunked_body(b"/echo", b"5\nhello\r\n0\r\n\r\n"), 400),
    ("chunk data longer than its size", "RFC 9112 §7.1",
     chunked_body(b"/echo", b"3\r\nhello\r\n0\r\n\r\n"), 400),

    # --- header field syntax (RFC 9112 §2.2, §5; RFC 9110 §5)
    ("obs-fold (continuation line starts with SP)", "RFC 9112 §5.2",
     get(headers=hdrs(b"X-A: b", b" c")), 400),
    ("obs-fold (continuation line starts with HTAB)", "RFC 9112 §5.2",
     get(headers=hdrs(b"X-A: b", b"\tc")), 400),
    ("whitespace before the first header line", "RFC 9112 §2.2",
     b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", 400),
    ("bare CR inside a header value", "RFC 9112 §2.2",
     get(headers=hdrs(b"X-A: b\rc")), 400),
    ("bare CR at the end of a header value", "RFC 9112 §2.2",
     get(headers=hdrs(b"X-A: b\r")), 400),
    ("bare LF line endings throughout", "RFC 9112 §2.2 (spec: 400)",
     b"GET / HTTP/1.1\nHost: x\n\n", 400),
    ("bare LF after the request line", "RFC 9112 §2.2 (spec: 400)",
     b"GET / HTTP/1.1\nHost: x\r\n\r\n", 400),
    ("bare LF after a header line", "RFC 9112 §2.2 (spec: 400)",
     b"GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n", 400),
    ("bare LF as the empty line", "RFC 9112 §2.2 (spec: 400)",
     b"GET / HTTP/1.1\r\nHost: x\r\n\n", 400),
    ("NUL in a header name", "RFC 9110 §5.1",
     get(headers=hdrs(b"X-\x00A: b")), 400),
    ("NUL in a header value", "RFC 9110 §5.5",
     get(headers=hdrs(b"X-A: b\x00c")), 400),
    ("control character 0x01 in a header value", "RFC 9110 §5.5",
     get(headers=hdrs(b"X-A: b\x01c")), 400),
    ("DEL in a header value", "RFC 9110 §5.5",
     get(headers=hdrs(b"X-A: b\x7fc")), 400),
    ("space before the colon", "RFC 9112 §5.1",
     get(headers=hdrs(b"X-A : b")), 400),
    ("tab before the colon", "RFC 9112 §5.1",
     get(headers=hdrs(b"X-A\t: b")), 400),
    ("space before the colon of Host", "RFC 9112 §5.1",
     b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("invalid character in a name: Fo@o", "RFC 9110 §5.1",
     get(headers=hdrs(b"Fo@o: x")), 400),
    ("invalid character in a name: Fo(o", "RFC 9110 §5.1",
     get(headers=hdrs(b"Fo(o: x")), 400),
    ("space inside a name", "RFC 9110 §5.1",
     get(headers=hdrs(b"Fo o: x")), 400),
    ("empty header name", "RFC 9110 §5.1",
     get(headers=hdrs(b": x")), 400),
    ("header line without a colon", "RFC 9112 §5",
     get(headers=hdrs(b"NoColonHere")), 400),

    # --- size limits (docs/architecture.md; RFC 9112 §3, RFC 6585 §5)
    ("request line > 8 KiB, sent whole", "RFC 9112 §3 / limits: 414",
     get(target=b"/" + b"a" * 9000), 414),
    ("request line > 8 KiB, in pieces, never ended",
     "RFC 9112 §3 / limits: 414",
     trickle(b"GET /", b"a" * 512, 64 * 1024, 0.002), 414),
    ("request line > 8 KiB without any space", "limits: 414",
     trickle(b"GET", b"A" * 1024, 64 * 1024, 0.002), 414),
    ("header section > 64 KiB (10 x 7000 B)", "RFC 6585 §5 / limits: 431",
     get(headers=hdrs(*[b"X-Big-%d: " % i + BIG for i in range(10)])), 431),
    ("one header field of 70000 B", "RFC 6585 §5 / limits: 431",
     get(headers=hdrs(b"X-Big: " + b"a" * 70000)), 431),
    ("header section > 64 KiB, in pieces, never ended",
     "RFC 6585 §5 / limits: 431",
     trickle(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ", b"a" * 2048,
             256 * 1024, 0.002), 431),
    ("101 header fields", "RFC 6585 §5 / limits: 431",
     get(headers=hdrs(*[b"X-F%d: v" % i for i in range(100)])), 431),
    ("body over the route limit: Content-Length 2 MiB, head only",
     "RFC 9110 §15.5.14 / limits: 413 before reading the body",
     head_then_wait(b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 2097152\r\n\r\n"), 413,
     {"max_time": 2.0}),
    ("body over the limit by one byte, head only",
     "RFC 9110 §15.5.14 / limits: 413",
     head_then_wait(b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 1048577\r\n\r\n"), 413,
     {"max_time": 2.0}),
    ("body over the limit with Expect: 100-continue (no 100)",
     "RFC 9110 §10.1.1 / limits: 413, no 100 Continue",
     head_then_wait(b"POST /echo HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: 2097152\r\n"
                    b"Expect: 100-continue\r\n\r\n"), 413,
     {"max_time": 2.0}),
    ("chunked body growing past the limit", "limits: 413",
     trickle(b"POST /echo HTTP/1.1\r\nHost: x\r\n"
             b"Transfer-Encoding: chunked\r\n\r\n",
             b"10000\r\n" + b"z" * 65536 + b"\r\n", 3 * MIB), 413),

    # --- request line (RFC 9112 §3, RFC 9110 §9.1, §15.6.6)
    ("unknown method FOO", "RFC 9110 §9.1 / 501",
     get(method=b"FOO"), 501),
    ("lower-case method get", "RFC 9110 §9.1 (case-sensitive) / 501",
     get(method=b"get"), 501),
    ("version HTTP/2.0", "RFC 9110 §15.6.6 / 505",
     get(version=b"HTTP/2.0"), 505),
    ("version HTTP/1.2 is served as HTTP/1.1 (and its close honoured)",
     "RFC 9110 §2.5, RFC 9112 §9.6",
     get(version=b"HTTP/1.2", headers=hdrs(b"Connection: close")), 200),
    ("version HTTP/3.0", "RFC 9110 §15.6.6 / 505",
     get(version=b"HTTP/3.0"), 505),
    ("garbage: TLS ClientHello", "RFC 9112 §2.2", TLS_HELLO, 400),
    ("garbage: binary bytes and CRLFs", "RFC 9112 §2.2",
     b"\x00\x01\x02\xff\xfe\r\n\r\n", 400),
    ("target with a space inside", "RFC 9112 §3.2",
     get(target=b"/a b"), 400),
    ("target with a control character", "RFC 9112 §3.2",
     get(target=b"/a\x01b"), 400),
    ("target with DEL", "RFC 9112 §3.2", get(target=b"/a\x7fb"), 400),
    ("target with '|' (not a URI byte)", "RFC 9112 §3 / RFC 3986 §2",
     get(target=b"/a|b"), 400),
    ("target with '#' (a fragment)", "RFC 9112 §3.2",
     get(target=b"/a#b"), 400),
    ("query with a lone '%'", "RFC 3986 §2.1", get(target=b"/?q=100%"),
     400),
    ("Host with a space inside", "RFC 9112 §3.2 / RFC 3986 §3.2.2",
     get(headers=b"Host: a b\r\n"), 400),
    ("Host with userinfo", "RFC 9110 §7.2", get(headers=b"Host: u@x\r\n"),
     400),
    ("Host IPv6 literal without its bracket", "RFC 3986 §3.2.2",
     get(headers=b"Host: [::1\r\n"), 400),
    ("target not origin-form: foo", "RFC 9112 §3.2",
     get(target=b"foo"), 400),
    ("two spaces before the target", "RFC 9112 §3",
     b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("no target", "RFC 9112 §3", b"GET HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("percent-escape not hex: /%zz", "RFC 3986 §2.1",
     get(target=b"/%zz"), 400),
    ("percent-escape giving NUL: /%00", "spec: 400", get(target=b"/%00"),
     400),
    ("truncated percent-escape: /%2", "RFC 3986 §2.1", get(target=b"/%2"),
     400),
    ("lone percent: /%", "RFC 3986 §2.1", get(target=b"/%"), 400),
    ("bad escape in a route parameter", "RFC 3986 §2.1",
     get(target=b"/params/a%zzb/c"), 400),

    # --- Expect (RFC 9110 §10.1.1)
    ("Expect: something-else on POST", "RFC 9110 §10.1.1 / 417",
     post(b"/echo", b"Content-Length: 5", b"Expect: something-else"), 417),
    ("Expect: something-else on GET", "RFC 9110 §10.1.1 / 417",
     get(headers=hdrs(b"Expect: something-else")), 417),

    # --- a bad request pipelined after good ones
    ("good request, then missing Host", "pipelining",
     get() + b"GET / HTTP/1.1\r\n\r\n", [200, 400]),
    ("good, bad (obs-fold), good: the third is not answered", "pipelining",
     get() + get(headers=hdrs(b"X-A: b", b" c")) + get(), [200, 400]),
    ("good POST, then TLS garbage", "pipelining",
     post(b"/echo", b"Content-Length: 5") + TLS_HELLO, [200, 400]),
    ("good chunked POST, then a bad chunked one", "pipelining",
     chunked_body(b"/echo", b"5\r\nhello\r\n0\r\n\r\n") +
     chunked_body(b"/echo", b"zz\r\nhello\r\n0\r\n\r\n"), [200, 400]),
]


# ------------------------------------------------------------ the runner

def read_until_closed(sock, timeout):
    """(closed, extra): whether EOF/reset came within `timeout` s, and any
    bytes received before it (beyond the responses already read)."""
    extra = wisp_test.leftover(sock)
    deadline = time.time() + timeout
    try:
        while True:
            left = deadline - time.time()
            if left <= 0:
                return False, extra
            sock.settimeout(left)
            data = sock.recv(65536)
            if not data:
                return True, extra
            extra += data
    except (ConnectionResetError, BrokenPipeError):
        return True, extra
    except socket.timeout:
        return False, extra


def run_case(name, ref, raw, want, opts):
    wants = want if isinstance(want, list) else [want]
    label = "[%s] (%s)" % (name, ref)
    s = srv.connect(RESPONSE_TIMEOUT)
    got = []
    try:
        try:
            if callable(raw):
                raw(s)
            else:
                s.sendall(raw)
        except OSError:
            pass  # the server may answer and close while we still send
        for _ in wants:
            try:
                st, h, body = read_response(s)
            except socket.timeout:
                got.append("no response within %.0f s" % RESPONSE_TIMEOUT)
                break
            except OSError as e:
                got.append("closed without a response (%s)"
                           % type(e).__name__)
                break
            except (ValueError, IndexError) as e:
                got.append("unparsable response (%s)" % e)
                break
            got.append(st)
            if st != wants[len(got) - 1]:
                break
        ok = c.eq(got, wants, label + " status")
        # "max_time" cases (head only, body never sent): the server must
        # not wait for the body. Its body timeout (60 s) is beyond
        # RESPONSE_TIMEOUT, so an answer at all shows it did not wait.
        if ok:
            closed, extra = read_until_closed(s, CLOSE_TIMEOUT)
            c.check(closed, label + " connection closed after the error "
                    "response")
            c.eq(extra[:200], b"", label + " nothing sent after the error "
                 "response")
    finally:
        s.close()
    try:
        served = hello_ok(srv)
    except OSError:
        served = False
    c.check(served, label + " another client is still served")
    check_alive(label)


def check_alive(label):
    """Check that the server runs; if it died, report how and restart it
    so that the following cases still mean something."""
    if srv.proc.poll() is None:
        c.check(True, label + " server still running")
        return True
    try:
        err = srv.proc.stderr.read()[-3000:]
    except Exception:  # noqa: BLE001
        err = "?"
    c.check(False, "%s server died (exit %r); stderr:\n%s"
            % (label, srv.proc.returncode, err))
    start_server()
    return False


def test_controls():
    """Inputs next to the bad ones that must be accepted."""
    def request(srv_, raw):
        return wisp_test.request(srv_, raw, timeout=2.0)
    # 100 header fields (Host + 99) are fine.
    st, _, body = request(
        srv, get(headers=hdrs(*[b"X-F%d: v" % i for i in range(99)])))
    c.eq((st, body), (200, b"Hello, World!"), "100 header fields -> 200")
    # A header section just under 64 KiB is fine.
    st, _, body = request(
        srv, get(headers=hdrs(*[b"X-Big-%d: " % i + BIG for i in range(9)])))
    c.eq((st, body), (200, b"Hello, World!"), "63 KB header section -> 200")
    # HTTP/1.0 needs no Host.
    st, _, body = request(srv, b"GET / HTTP/1.0\r\n\r\n")
    c.eq((st, body), (200, b"Hello, World!"), "HTTP/1.0 without Host -> 200")
    # OWS around a field value and in Transfer-Encoding are fine.
    st, _, body = request(
        srv, post(b"/echo", b"Transfer-Encoding: \t chunked \t",
                  body=b"5\r\nhello\r\n0\r\n\r\n"))
    c.eq((st, body), (200, b"hello"),
         "Transfer-Encoding with OWS around chunked -> 200")
    st, _, body = request(
        srv, post(b"/echo", b"Transfer-Encoding: CHUNKED",
                  body=b"5\r\nhello\r\n0\r\n\r\n"))
    c.eq((st, body), (200, b"hello"),
         "Transfer-Encoding: CHUNKED (case-insensitive) -> 200")
    # obs-text in a value is allowed.
    st, _, body = request(srv, get(headers=hdrs(b"X-A: caf\xe9")))
    c.eq((st, body), (200, b"Hello, World!"), "obs-text in a value -> 200")
    # Body exactly at the limit with Expect gets its 100 and its 200 is
    # checked in http_basic; here: Content-Length 0 is fine.
    st, _, body = request(srv, post_cl(b"0", body=b""))
    c.eq((st, body), (200, b""), "Content-Length: 0 -> 200")
    st, _, body = request(srv, post_cl(b"005", body=b"hello"))
    c.eq((st, body), (200, b"hello"), "Content-Length: 005 -> 200")


def main():
    global binary
    binary = sys.argv[1]
    start_server()
    t0 = time.time()
    for i, row in enumerate(CASES):
        name, ref, raw, want = row[:4]
        opts = row[4] if len(row) > 4 else {}
        if time.time() - t0 > BUDGET:
            c.check(False, "[%s] not run: the table took over %.0f s"
                    % (name, BUDGET))
            continue
        try:
            run_case(name, ref, raw, want, opts)
        except Exception as e:  # noqa: BLE001
            c.check(False, "[%s] raised %s: %s\n%s" % (
                name, type(e).__name__, e, traceback.format_exc()))
            check_alive("[%s]" % name)
    if time.time() - t0 > BUDGET:
        c.check(False, "controls not run: over the %.0f s budget" % BUDGET)
    else:
        try:
            test_controls()
        except Exception as e:  # noqa: BLE001
            c.check(False, "controls raised %s: %s\n%s" % (
                type(e).__name__, e, traceback.format_exc()))
    c.check(srv.proc.poll() is None, "server still running at the end")
    srv.signal()
    try:
        rc, err = srv.wait(timeout=10)
        c.eq(rc, 0, "server exits 0 on SIGTERM (stderr: %s)" % err[-2000:])
    except subprocess.TimeoutExpired:
        c.check(False, "server exits within 10 s of SIGTERM")
    print("http_bad_input: %d cases in %.1f s" % (len(CASES),
                                                  time.time() - t0))
    c.done()


if __name__ == "__main__":
    main()
