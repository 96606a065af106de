"""Metrics and health on a running server (hello --metrics): the
exposition text parses line by line under the format's grammar, the
server's counters move by exactly the traffic the test made, and /health
says 503 to a keep-alive connection once a graceful stop has begun, while
a slow request is still in flight, which then completes.

Run: python3 metrics_test.py path/to/hello
"""
import math
import os
import re
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wisp_test import Checks, Server, read_response  # noqa: E402

HELLO = sys.argv[1]
c = Checks("metrics")

# ------------------------------------------------------------ the parser
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
LVAL = r'"(?:[^"\\\n]|\\\\|\\"|\\n)*"'
SAMPLE = re.compile(r"^(%s)(?:\{((?:%s=%s)(?:,%s=%s)*)?\})? (\S+)$"
                    % (NAME, LABEL, LVAL, LABEL, LVAL))
HELP = re.compile(r"^# HELP (%s) ((?:[^\\\n]|\\\\|\\n)*)$" % NAME)
TYPE = re.compile(r"^# TYPE (%s) (counter|gauge|histogram|summary|untyped)$"
                  % NAME)
PAIR = re.compile(r'(%s)=(%s)' % (LABEL, LVAL))


def unescape(v):
    out, i = [], 0
    while i < len(v):
        if v[i] == "\\":
            out.append({"\\": "\\", '"': '"', "n": "\n"}[v[i + 1]])
            i += 2
        else:
            out.append(v[i])
            i += 1
    return "".join(out)


def parse_value(s):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.match(r"^-?[0-9]+(\.[0-9]+)?(e[+-][0-9]+)?$", s):
        raise ValueError("bad number %r" % s)
    return float(s)


def parse(text):
    """Parse text format 0.0.4 strictly. Returns {(name, labels): value}
    with labels a tuple of (name, value) pairs; raises ValueError on any
    line that is not a comment, blank, or name{labels} value, on a sample
    outside its family, on a family seen twice or out of order, on a
    histogram whose buckets do not add up."""
    if text and not text.endswith("\n"):
        raise ValueError("no final newline")
    samples = {}
    fam, ftype, seen = None, None, []
    for ln in text.split("\n")[:-1]:
        if ln == "":
            continue
        m = HELP.match(ln)
        if m:
            if m.group(1) in seen:
                raise ValueError("family twice: " + ln)
            seen.append(m.group(1))
            fam, ftype = m.group(1), None
            continue
        m = TYPE.match(ln)
        if m:
            if m.group(1) != fam or ftype is not None:
                raise ValueError("TYPE without its HELP: " + ln)
            ftype = m.group(2)
            continue
        if ln.startswith("#"):
            continue
        m = SAMPLE.match(ln)
        if not m:
            raise ValueError("not a sample: %r" % ln)
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        names = [fam]
        if ftype == "histogram":
            names = [fam + "_bucket", fam + "_sum", fam + "_count"]
        if ftype is None or name not in names:
            raise ValueError("sample outside its family: " + ln)
        pairs = tuple((k, unescape(v[1:-1])) for k, v in PAIR.findall(labels))
        key = (name, pairs)
        if key in samples:
            raise ValueError("sample twice: " + ln)
        samples[key] = parse_value(value)
    if seen != sorted(seen):
        raise ValueError("families out of order: %r" % seen)
    # Histograms: cumulative buckets, +Inf last and equal to _count.
    for (name, pairs), v in samples.items():
        if not name.endswith("_count"):
            continue
        stem = name[:-6]
        buckets = [(dict(p)["le"], val) for (n, p), val in samples.items()
                   if n == stem + "_bucket" and
                   tuple(x for x in p if x[0] != "le") == pairs]
        if not buckets:
            continue
        if buckets[-1][0] != "+Inf" or buckets[-1][1] != v:
            raise ValueError("%s: +Inf bucket != count" % stem)
        les = [parse_value(b[0]) for b in buckets]
        counts = [b[1] for b in buckets]
        if les != sorted(les) or counts != sorted(counts):
            raise ValueError("%s: buckets not cumulative" % stem)
    return samples


def check_parser():
    """The parser itself refuses what it should (so a pass means
    something)."""
    good = ('# HELP a_total Help with \\\\ and \\n.\n# TYPE a_total counter\n'
            'a_total{k="v\\"q\\\\\\n",j=""} 1\n'
            '# HELP h H.\n# TYPE h histogram\nh_bucket{le="1"} 1\n'
            'h_bucket{le="+Inf"} 2\nh_sum 3.5\nh_count 2\n')
    s = parse(good)
    c.eq(s[("a_total", (("k", 'v"q\\\n'), ("j", "")))], 1.0,
         "parser: escaped label value")
    bad = [
        "a 1\n",                                   # no family
        "# HELP a x\n# TYPE a gauge\na{k=v} 1\n",  # unquoted label
        "# HELP a x\n# TYPE a gauge\na 1 2 3\n",   # junk after value
        "# HELP a x\n# TYPE a gauge\na one\n",     # not a number
        "# HELP a x\n# TYPE a gauge\nb 1\n",       # other family
        "# HELP b x\n# TYPE b gauge\nb 1\n# HELP a x\n# TYPE a gauge\na 1\n",
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\n"
        "h_sum 1\nh_count 3\n",                    # +Inf != count
        "# HELP a x\n# TYPE a gauge\na 1",         # no final newline
    ]
    for text in bad:
        try:
            parse(text)
            c.check(False, "parser accepted %r" % text)
        except ValueError:
            c.check(True, "")


# ------------------------------------------------------------- helpers

def exchange(srv, raw):
    """Send `raw` on a new connection, read until the server closes;
    returns the bytes received (the requests say Connection: close)."""
    s = srv.connect(10)
    s.sendall(raw)
    data = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    except ConnectionResetError:
        pass
    s.close()
    return data


def raw_response(sock):
    """The raw bytes of one response with a Content-Length (the only
    response in flight on `sock`)."""
    data = b""
    while b"\r\n\r\n" not in data:
        d = sock.recv(65536)
        if not d:
            raise ConnectionError("eof")
        data += d
    head = data.split(b"\r\n\r\n", 1)[0]
    m = re.search(rb"\r\nContent-Length: (\d+)\r\n", head + b"\r\n")
    want = len(head) + 4 + int(m.group(1))
    while len(data) < want:
        d = sock.recv(65536)
        if not d:
            raise ConnectionError("eof")
        data += d
    return data


SCRAPE = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def scrape(srv):
    """(samples, raw response bytes)."""
    raw = exchange(srv, SCRAPE)
    head, body = raw.split(b"\r\n\r\n", 1)
    c.check(head.startswith(b"HTTP/1.1 200 "), "scrape status: %r" % head)
    c.check(b"\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            in head, "scrape Content-Type: %r" % head)
    try:
        return parse(body.decode("utf-8")), raw
    except ValueError as e:
        c.check(False, "exposition text: %s" % e)
        return {}, raw


def v(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))),
                       samples.get((name, tuple(labels.items()))))


# ------------------------------------------------------- counters move
def test_counters():
    srv = Server(HELLO, "--metrics", threads=2)
    s0, raw0 = scrape(srv)
    for name in ("wisp_connections_open", "wisp_connections_accepted_total",
                 "wisp_bytes_received_total", "wisp_bytes_sent_total",
                 "wisp_ws_sessions_open", "wisp_server_draining"):
        c.check(v(s0, name) is not None, "first scrape has %s" % name)
    for k in ("1xx", "2xx", "3xx", "4xx", "5xx"):
        c.check(v(s0, "wisp_http_requests_total", **{"class": k}) is not None,
                "first scrape has class %s" % k)
    c.eq(v(s0, "wisp_loop_inbox_depth", loop="1") is not None, True,
         "inbox depth of loop 1")
    c.eq(v(s0, "wisp_pool_threads", pool="hello") is not None, True,
         "pool threads")
    c.eq(v(s0, "wisp_server_draining"), 0.0, "not draining")

    N_OK, N_404, N_400 = 25, 7, 3
    sent = 0      # request bytes after the first scrape's render
    got = len(raw0)  # response bytes written after it (its own response)
    ok = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    for _ in range(N_OK):
        r = exchange(srv, ok)
        c.check(r.startswith(b"HTTP/1.1 200 "), "GET /: %r" % r[:40])
        sent += len(ok)
        got += len(r)
    # 404s on one keep-alive connection, the last with a close.
    k = srv.connect(10)
    for i in range(N_404 + 1):
        nf = b"GET /nope HTTP/1.1\r\nHost: x\r\n" + \
            (b"Connection: close\r\n" if i == N_404 else b"") + b"\r\n"
        k.sendall(nf)
        r = raw_response(k)
        c.check(r.startswith(b"HTTP/1.1 404 "), "GET /nope: %r" % r[:40])
        sent += len(nf)
        got += len(r)
    c.eq(k.recv(100), b"", "closed after Connection: close")
    k.close()
    bad = b"GARBAGE\r\n\r\n"
    for _ in range(N_400):
        r = exchange(srv, bad)
        c.check(r.startswith(b"HTTP/1.1 400 "), "garbage: %r" % r[:40])
        sent += len(bad)
        got += len(r)
    s1, _ = scrape(srv)
    sent += len(SCRAPE)

    def delta(name, **labels):
        return v(s1, name, **labels) - v(s0, name, **labels)

    # The first scrape's own 200 is counted after its render.
    c.eq(delta("wisp_http_requests_total", **{"class": "2xx"}), N_OK + 1,
         "2xx moved by exactly the GET / count + the first scrape")
    c.eq(delta("wisp_http_requests_total", **{"class": "4xx"}),
         N_404 + 1 + N_400, "4xx moved by exactly the 404s and 400s")
    c.eq(delta("wisp_http_requests_total", **{"class": "5xx"}), 0, "no 5xx")
    # Accepted before its render: the second scrape's connection counts.
    c.eq(delta("wisp_connections_accepted_total"), N_OK + 1 + N_400 + 1,
         "accepted moved by exactly the connections made")
    c.eq(delta("wisp_bytes_received_total"), sent,
         "bytes received moved by exactly the request bytes")
    c.eq(delta("wisp_bytes_sent_total"), got,
         "bytes sent moved by exactly the response bytes")

    # Open connections: the scrape's own, once the others are gone (the
    # server may still be closing them: ask until it says 1).
    deadline = time.time() + 20
    while True:
        s2, _ = scrape(srv)
        if v(s2, "wisp_connections_open") == 1 or time.time() > deadline:
            break
    c.eq(v(s2, "wisp_connections_open"), 1, "one connection open (ours)")

    # HEAD /metrics: the same head, no body.
    hs = srv.connect(10)
    hs.sendall(b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    st, h, body = read_response(hs, head_request=True)
    c.eq((st, body), (200, b""), "HEAD /metrics")
    c.eq(h.get("cache-control"), "no-store", "metrics not cached")
    hs.close()
    rc, _ = srv.stop()
    c.eq(rc, 0, "exit code")


# ------------------------------------------------------ health at stop
def bytes_in(srv):
    s, _ = scrape(srv)
    return v(s, "wisp_bytes_received_total")


def test_health_drain():
    # Generous stop deadline and header timeout: B and C hold half-sent
    # requests across the stop, however slow the machine is.
    srv = Server(HELLO, "--metrics", "--shutdown-timeout-ms", "30000",
                 "--header-timeout-ms", "60000", threads=2)
    st, h, body = None, {}, b""
    # B and C: keep-alive connections, each served once.
    b = srv.connect(30)
    b.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    st, h, body = read_response(b)
    c.eq((st, body), (200, b"ok\n"), "/health while serving")
    c.eq(h.get("cache-control"), "no-store", "/health not cached")
    c.check(h.get("connection", "").lower() != "close", "/health keep-alive")
    cc = srv.connect(30)
    cc.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    st, _, body = read_response(cc)
    c.eq(v(parse(body.decode()), "wisp_server_draining"), 0.0,
         "draining 0 while serving")
    # A: a slow request in flight through the stop.
    a = srv.connect(30)
    a.sendall(b"GET /delay/4000 HTTP/1.1\r\nHost: x\r\n\r\n")
    # B and C start their next requests but do not finish them, so they
    # are not idle when the stop comes (idle ones are closed at once).
    part_b = b"GET /health HTTP/1.1\r\nHost: x\r\n"
    part_c = b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
    base = bytes_in(srv)
    b.sendall(part_b)
    cc.sendall(part_c)
    # Wait until the server has read both halves: its byte counter says
    # so (each scrape adds its own request, counted before its render).
    scrapes = 0
    deadline = time.time() + 30
    while True:
        scrapes += 1
        now = bytes_in(srv)
        if now - base >= len(part_b) + len(part_c) + scrapes * len(SCRAPE):
            break
        if time.time() > deadline:
            c.check(False, "server never read the partial requests")
            break
    srv.signal(signal.SIGTERM)
    # The drain has begun once the listeners are closed.
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            t = socket.create_connection(srv.addr, timeout=2)
            t.close()
        except OSError:
            break
    else:
        c.check(False, "listeners still open 30 s after SIGTERM")
    b.sendall(b"\r\n")
    st, h, body = read_response(b)
    c.eq((st, body), (503, b"draining\n"), "/health during the drain")
    c.eq(h.get("connection", "").lower(), "close",
         "/health 503 closes the connection")
    cc.sendall(b"\r\n")
    st, _, body = read_response(cc)
    c.eq(st, 200, "/metrics during the drain")
    c.eq(v(parse(body.decode()), "wisp_server_draining"), 1.0,
         "wisp_server_draining 1 during the drain")
    # The slow request still completes.
    st, h, body = read_response(a)
    c.eq((st, body), (200, b"delayed\n"), "in-flight /delay completes")
    c.eq(h.get("connection", "").lower(), "close", "...with Connection: close")
    for s in (a, b, cc):
        s.close()
    rc, err = srv.wait(40)
    c.eq(rc, 0, "exit code after the drain")


check_parser()
test_counters()
test_health_drain()
c.done()
