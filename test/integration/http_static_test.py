"""Static files under /static/: headers, HEAD, conditional requests,
byte ranges, directories, traversal and symlink escapes, large files.

Run: python3 http_static_test.py path/to/wisp-testserver
"""
import email.utils
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wisp_test  # noqa: E402
from wisp_test import Checks, Server, request  # noqa: E402

HELLO = sys.argv[1]
PUBLIC = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "..", "server", "public")
HELLO_TXT = open(os.path.join(PUBLIC, "hello.txt"), "rb").read()
INDEX_HTML = open(os.path.join(PUBLIC, "index.html"), "rb").read()
NESTED_TXT = open(os.path.join(PUBLIC, "sub", "nested.txt"), "rb").read()

t0 = time.time()
c = Checks("http_static")


served = wisp_test.served


def get(srv, path, extra=b"", method=b"GET"):
    raw = method + b" " + path + b" HTTP/1.1\r\nHost: x\r\n" + extra + b"\r\n"
    return request(srv, raw, head_request=(method == b"HEAD"))


def get_with_rest(srv, path, extra=b"", method=b"GET"):
    """Like get(), but also returns whatever bytes followed the response
    on a Connection: close exchange (to prove a bodiless answer carries
    no body)."""
    raw = (method + b" " + path + b" HTTP/1.1\r\nHost: x\r\n" + extra +
           b"Connection: close\r\n\r\n")
    s = srv.connect()
    try:
        s.sendall(raw)
        st, h, body = wisp_test.read_response(s, method == b"HEAD")
        rest = wisp_test.leftover(s)
        s.settimeout(3)
        while True:
            try:
                d = s.recv(65536)
            except (ConnectionResetError, OSError):
                break
            if not d:
                break
            rest += d
        return st, h, body, rest
    finally:
        s.close()


srv = Server(HELLO)

# ---- GET: the file with its headers
st, h, body = get(srv, b"/static/hello.txt")
c.eq(st, 200, "GET /static/hello.txt status")
c.eq(body, HELLO_TXT, "GET /static/hello.txt body")
c.eq(h.get("content-type"), "text/plain; charset=utf-8",
     "hello.txt Content-Type")
c.eq(h.get("content-length"), str(len(HELLO_TXT)), "hello.txt Content-Length")
c.eq(h.get("accept-ranges"), "bytes", "hello.txt Accept-Ranges")
lm = h.get("last-modified")
c.check(lm is not None and re.fullmatch(
    r"[A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT", lm),
    "hello.txt Last-Modified is an IMF-fixdate: %r" % lm)
if lm:
    mtime = int(os.stat(os.path.join(PUBLIC, "hello.txt")).st_mtime)
    c.eq(email.utils.parsedate_to_datetime(lm).timestamp(), float(mtime),
         "Last-Modified equals the file's mtime")

# ---- HEAD: same headers, no body
st, hh, body, rest = get_with_rest(srv, b"/static/hello.txt", method=b"HEAD")
c.eq(st, 200, "HEAD /static/hello.txt status")
c.eq(body + rest, b"", "HEAD sends no body")
for k in ("content-type", "content-length", "last-modified",
          "accept-ranges"):
    c.eq(hh.get(k), h.get(k), "HEAD header %s same as GET" % k)

# ---- conditional GET
if lm:
    st, h2, body, rest = get_with_rest(
        srv, b"/static/hello.txt",
        b"If-Modified-Since: " + lm.encode() + b"\r\n")
    c.eq(st, 304, "If-Modified-Since = Last-Modified -> 304")
    c.eq(body + rest, b"", "304 has no body")
    c.check("content-length" not in h2 or h2["content-length"] == "0" or
            h2["content-length"] == str(len(HELLO_TXT)),
            "304 Content-Length absent/0/entity length: %r"
            % h2.get("content-length"))
    older = email.utils.format_datetime(
        email.utils.parsedate_to_datetime(lm).replace(
            year=email.utils.parsedate_to_datetime(lm).year - 1),
        usegmt=True).encode()
    st, _, body = get(srv, b"/static/hello.txt",
                      b"If-Modified-Since: " + older + b"\r\n")
    c.eq((st, body), (200, HELLO_TXT), "If-Modified-Since older -> 200 full")
    st, _, body = get(srv, b"/static/hello.txt",
                      b"If-Modified-Since: not a date\r\n")
    c.eq((st, body), (200, HELLO_TXT), "If-Modified-Since garbage -> 200")

# ---- ranges
n = len(HELLO_TXT)
st, h, body = get(srv, b"/static/hello.txt", b"Range: bytes=0-4\r\n")
c.eq(st, 206, "Range bytes=0-4 status")
c.eq(body, b"hello", "Range bytes=0-4 body")
c.eq(h.get("content-range"), "bytes 0-4/%d" % n, "Range bytes=0-4 Content-Range")
c.eq(h.get("content-length"), "5", "Range bytes=0-4 Content-Length")

st, h, body = get(srv, b"/static/hello.txt", b"Range: bytes=-5\r\n")
c.eq((st, body), (206, HELLO_TXT[-5:]), "Range bytes=-5")
c.eq(h.get("content-range"), "bytes %d-%d/%d" % (n - 5, n - 1, n),
     "Range bytes=-5 Content-Range")

st, h, body = get(srv, b"/static/hello.txt", b"Range: bytes=6-\r\n")
c.eq((st, body), (206, HELLO_TXT[6:]), "Range bytes=6-")
c.eq(h.get("content-range"), "bytes 6-%d/%d" % (n - 1, n),
     "Range bytes=6- Content-Range")

st, h, body = get(srv, b"/static/hello.txt", b"Range: bytes=100-\r\n")
c.eq(st, 416, "Range bytes=100- -> 416")
c.eq(h.get("content-range"), "bytes */%d" % n, "416 Content-Range")

st, h, body = get(srv, b"/static/hello.txt", b"Range: bytes=0-1,3-4\r\n")
c.eq((st, body), (200, HELLO_TXT), "multiple ranges -> 200 full")
c.check("content-range" not in h, "multiple ranges: no Content-Range")

# ---- directories
st, h, body = get(srv, b"/static/")
c.eq((st, body), (200, INDEX_HTML), "/static/ -> index.html")
c.check(h.get("content-type", "").startswith("text/html"),
        "/static/ Content-Type text/html: %r" % h.get("content-type"))
st, h, _ = get(srv, b"/static/sub")
c.eq(st, 301, "/static/sub -> 301")
c.eq(h.get("location"), "/static/sub/", "/static/sub Location")
st, _, body = get(srv, b"/static/sub/nested.txt")
c.eq((st, body), (200, NESTED_TXT), "/static/sub/nested.txt")
st, _, _ = get(srv, b"/static/missing")
c.eq(st, 404, "/static/missing -> 404")
st, _, _ = get(srv, b"/static/sub/missing.txt")
c.eq(st, 404, "/static/sub/missing.txt -> 404")

# ---- traversal: never the file; plain ".." is 403
MESON = open(os.path.join(PUBLIC, "..", "..", "..", "meson.build"),
             "rb").read()
for path, want403 in [
        (b"/static/../meson.build", True),
        (b"/static/sub/../../meson.build", True),
        (b"/static/../../../../../../etc/hostname", True),
        (b"/static/%2e%2e/meson.build", False),
        (b"/static/..%2fmeson.build", False),
        (b"/static/%2e%2e%2fmeson.build", False),
        (b"/static/sub/..%2f..%2fmeson.build", False),
        (b"/static/..\\meson.build", False),
        (b"/static/%2e%2e%5cmeson.build", False),
        (b"/static//etc/hostname", False),
        (b"/static/%2fetc/hostname", False)]:
    st, _, body = get(srv, path)
    # A raw backslash is no URI byte: the parser answers 400 before the
    # static handler sees it (RFC 9112 §3, docs/conformance.md).
    ok = (400,) if b"\\" in path else (403, 404)
    c.check(st in ok, "traversal %r -> %d (want %s)" % (path, st, ok))
    c.check(st != 200 and MESON[:40] not in body,
            "traversal %r must not serve the file" % path)
    if want403:
        c.eq(st, 403, "traversal %r status" % path)

# ---- method
st, h, _ = get(srv, b"/static/hello.txt", method=b"POST")
c.eq(st, 405, "POST /static/hello.txt -> 405")
c.check("GET" in h.get("allow", ""), "405 Allow lists GET: %r" % h.get("allow"))

c.check(served(srv), "server still serves after static tests")
rc, err = srv.stop()
c.eq(rc, 0, "server exit code")

# ---- a temp static dir: symlinks out of the root, a large file
tmp = tempfile.mkdtemp(prefix="wisp-static-")
outside = tempfile.mkdtemp(prefix="wisp-outside-")
try:
    root = os.path.join(tmp, "root")
    os.mkdir(root)
    with open(os.path.join(outside, "secret.txt"), "wb") as f:
        f.write(b"TOP SECRET\n")
    os.symlink("/etc/hostname", os.path.join(root, "host"))
    os.symlink(os.path.join(outside, "secret.txt"),
               os.path.join(root, "secret.txt"))
    os.symlink("../../" + os.path.basename(outside) + "/secret.txt",
               os.path.join(root, "relsecret.txt"))
    os.symlink(outside, os.path.join(root, "outdir"))
    os.symlink("/etc", os.path.join(root, "etc"))
    big = os.urandom(5 * 1024 * 1024 + 123)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(big)
    with open(os.path.join(root, "small.txt"), "wb") as f:
        f.write(b"inside\n")
    big_sha = hashlib.sha256(big).hexdigest()

    srv = Server(HELLO, "--static", root)
    st, _, body = get(srv, b"/static/small.txt")
    c.eq((st, body), (200, b"inside\n"), "temp root serves small.txt")
    for path in (b"/static/host", b"/static/secret.txt",
                 b"/static/relsecret.txt", b"/static/outdir/secret.txt",
                 b"/static/etc/hostname"):
        st, _, body = get(srv, path)
        c.check(st != 200, "symlink out of root %r -> %d (must not be 200)"
                % (path, st))
        c.check(b"TOP SECRET" not in body, "symlink %r leaked file" % path)

    st, h, body = get(srv, b"/static/big.bin")
    c.eq(st, 200, "big.bin status")
    c.eq(h.get("content-length"), str(len(big)), "big.bin Content-Length")
    c.eq(hashlib.sha256(body).hexdigest(), big_sha, "big.bin sha256 (socket)")
    st, h, body = get(srv, b"/static/big.bin",
                      b"Range: bytes=1000000-2999999\r\n")
    c.eq(st, 206, "big.bin range status")
    c.check(body == big[1000000:3000000], "big.bin range body exact")
    c.eq(h.get("content-range"), "bytes 1000000-2999999/%d" % len(big),
         "big.bin Content-Range")

    curl = shutil.which("curl")
    if c.check(curl is not None, "curl on PATH"):
        out = os.path.join(tmp, "curl.out")
        r = subprocess.run([curl, "-sS", "-o", out, "-w", "%{http_code}",
                            "http://127.0.0.1:%d/static/big.bin" % srv.port],
                           capture_output=True, text=True, timeout=30)
        c.eq(r.stdout, "200", "curl big.bin status")
        with open(out, "rb") as f:
            c.eq(hashlib.sha256(f.read()).hexdigest(), big_sha,
                 "big.bin sha256 (curl)")
        # Several in parallel, over keep-alive.
        r = subprocess.run([curl, "-sS", "--parallel", "-o", out + "1",
                            "-o", out + "2", "-o", out + "3"] +
                           ["http://127.0.0.1:%d/static/big.bin" % srv.port]
                           * 3, capture_output=True, text=True, timeout=30)
        for i in "123":
            with open(out + i, "rb") as f:
                c.eq(hashlib.sha256(f.read()).hexdigest(), big_sha,
                     "big.bin sha256 (curl parallel %s)" % i)
    c.check(served(srv), "server still serves (temp root)")
    rc, err = srv.stop()
    c.eq(rc, 0, "server exit code (temp root)")
finally:
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(outside, ignore_errors=True)

print("http_static: %.1f s" % (time.time() - t0))
c.done()
