"""examples/hello, the example a new user reads first, does what its
comment says: GET /, GET /hello/:name, POST /echo (64 KiB limit, 413
beyond), static files under /files/, a graceful stop on SIGTERM.

Usage: python3 example_hello_test.py /path/to/wisp-testserver
(hello is built beside it).
"""
import os
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wisp_test  # noqa: E402
from wisp_test import Checks, read_response  # noqa: E402

HELLO = os.path.join(os.path.dirname(sys.argv[1]), "hello")
c = Checks("example_hello")

d = tempfile.mkdtemp()
with open(os.path.join(d, "a.txt"), "wb") as f:
    f.write(b"file a\n")

proc = subprocess.Popen([HELLO, "0", d], stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True)
wisp_test._procs.append(proc)
line = proc.stdout.readline()  # blocks until listening (or exit: "")
if not c.check(line.startswith("listening on http://127.0.0.1:"),
               "hello prints where it listens (%r)" % line):
    c.done()
port = int(line.strip().rstrip("/").rsplit(":", 1)[1])


class Srv:
    addr = ("127.0.0.1", port)

    def connect(self, timeout=5.0):
        import socket
        return socket.create_connection(self.addr, timeout=timeout)


srv = Srv()


def req(raw):
    s = srv.connect()
    s.sendall(raw)
    try:
        return read_response(s)
    finally:
        s.close()


st, _, body = req(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
c.eq((st, body), (200, b"Hello, World!\n"), "GET /")
st, _, body = req(b"GET /hello/ada HTTP/1.1\r\nHost: x\r\n\r\n")
c.eq((st, body), (200, b"Hello, ada!\n"), "GET /hello/ada")
st, _, body = req(b"GET /hello/" + b"n" * 400 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
c.eq((st, len(body)), (200, 255), "a long name is cut to the buffer")
st, _, body = req(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                  b"\r\nabcde")
c.eq((st, body), (200, b"abcde"), "POST /echo")
st, _, _ = req(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 65537\r\n"
               b"\r\n")
c.eq(st, 413, "POST /echo over 64 KiB")
st, _, body = req(b"GET /files/a.txt HTTP/1.1\r\nHost: x\r\n\r\n")
c.eq((st, body), (200, b"file a\n"), "GET /files/a.txt")
st, _, _ = req(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
c.eq(st, 404, "unknown path")

proc.send_signal(signal.SIGTERM)
try:
    rc = proc.wait(timeout=30)
except subprocess.TimeoutExpired:
    rc = None
c.eq(rc, 0, "SIGTERM stops hello cleanly")
os.unlink(os.path.join(d, "a.txt"))
os.rmdir(d)
c.done()
