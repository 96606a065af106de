"""The event-stream writer read by real clients: curl -N and Python's
http.client, and a raw HTTP/1.0 request (close-delimited body).

argv[1] is the http_sse_server_test binary; with the argument "serve" it
runs the routes of test/http/sse_server_test.c on an ephemeral port and
stops at the end of its standard input. Exits 77 (skip) without curl.
"""
import http.client
import os
import shutil
import socket
import subprocess
import sys
import time

EVENTS_BODY = (
    b"retry: 2500\n"
    b"event: greet\nid: 1\ndata: hello\ndata: world\n\n"
    b": just a comment\n"
    b"data: \n\n"
    b"id: \ndata: a\ndata: b\ndata: c\ndata: \n\n"
    b"retry: 1000\n"
    b"event: bye\ndata:  lead\n\n"
)


def parse(body):
    """A small reference reader (WHATWG event stream interpretation, LF
    line ends only, as the writer produces): [(type, id, data)]."""
    out, data, typ, last = [], None, "", ""
    for line in body.decode().split("\n"):
        if line == "":
            if data is not None:
                out.append((typ or "message", last, "\n".join(data)))
            data, typ = None, ""
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data = (data or []) + [value]
        elif name == "event":
            typ = value
        elif name == "id":
            last = value
    return out


def main():
    if shutil.which("curl") is None:
        print("SKIP: curl is not installed")
        return 77
    proc = subprocess.Popen([sys.argv[1], "serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        port = int(line.strip().rsplit(":", 1)[1])
        base = "http://127.0.0.1:%d" % port

        # curl: the head and the exact body.
        r = subprocess.run(["curl", "-sS", "-N", "-i", "--max-time", "60",
                            base + "/events"], capture_output=True,
                           check=True)
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        assert b"\r\nContent-Type: text/event-stream\r\n" in head, head
        assert b"\r\nCache-Control: no-cache\r\n" in head, head
        assert body == EVENTS_BODY, body
        assert parse(body) == [("greet", "1", "hello\nworld"),
                               ("message", "1", ""),
                               ("message", "", "a\nb\nc\n"),
                               ("bye", "", " lead")], parse(body)

        # curl -N sees events and pings while the stream is open.
        c = subprocess.Popen(["curl", "-sS", "-N", "--max-time", "60",
                              base + "/ping"], stdout=subprocess.PIPE)
        seen, pings = [], 0
        while pings < 2:
            ln = c.stdout.readline()
            assert ln, "curl ended early: %r" % seen
            seen.append(ln)
            if ln == b": ping\n":
                pings += 1
        assert b"data: ready\n" in seen, seen
        c.terminate()
        c.wait()

        # Python's http.client de-chunks the same body.
        h = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        h.request("GET", "/events")
        resp = h.getresponse()
        assert resp.status == 200
        assert resp.getheader("Content-Type") == "text/event-stream"
        assert resp.read() == EVENTS_BODY
        h.close()

        # HTTP/1.0: no chunking, the body ends with the connection.
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.sendall(b"GET /events HTTP/1.0\r\n\r\n")
        raw = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            raw += b
        s.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"Transfer-Encoding" not in head, head
        assert body == EVENTS_BODY, body

        # The backpressured flood arrives whole through curl.
        r = subprocess.run(["curl", "-sS", "-N", "--max-time", "60",
                            base + "/flood"], capture_output=True,
                           check=True)
        evs = parse(r.stdout)
        assert len(evs) >= 64, len(evs)
        for i, (t, _, d) in enumerate(evs):
            assert t == "chunk" and d.startswith("n:%05d:" % i), (i, t)
            assert len(d) == 16384
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.returncode
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
