"""Blocking work on the shared pool (wisp-testserver GET /blocking).

256 concurrent clients run a 50 ms blocking call each while other clients
keep hitting GET /: the loops stay responsive (every fast request is
answered; how fast is measured in bench/, not here). Clients that
disconnect while their call runs cause no crash, no leak (the sanitizer
builds check at exit) and the server keeps serving. A full pool queue
answers 503 at once.
"""
import socket
import sys
import threading
import time

import wisp_test
from wisp_test import Checks, Server, read_response

c = Checks("blocking")
HELLO = sys.argv[1]
t0 = time.time()

srv = Server(HELLO, "--pool-threads", 64, threads=2)


pool_stats = wisp_test.stats
wait_pool = wisp_test.wait_stats


# ---- 1. one call
st, _, body = wisp_test.request(srv, b"GET /blocking?ms=20 HTTP/1.1\r\nHost: x\r\n\r\n")
c.eq((st, body), (200, b"slept 20 ms\n"), "GET /blocking?ms=20")
st, _, _ = wisp_test.request(srv, b"GET /blocking?ms=-5 HTTP/1.1\r\nHost: x\r\n\r\n")
c.eq(st, 400, "negative ms -> 400")

# ---- 2. 256 blocking clients + fast clients at the same time
N = 256
results = []
lock = threading.Lock()


def blocking_client():
    try:
        s = srv.connect(timeout=30)
        s.sendall(b"GET /blocking?ms=50 HTTP/1.1\r\nHost: x\r\n\r\n")
        st, _, body = read_response(s)
        s.close()
        r = (st, body)
    except Exception as e:  # noqa: BLE001
        r = ("error", repr(e))
    with lock:
        results.append(r)


threads = [threading.Thread(target=blocking_client) for _ in range(N)]
for t in threads:
    t.start()
fast_ok = 0
fast_total = 0
while any(t.is_alive() for t in threads):
    fast_total += 1
    try:
        if wisp_test.hello_ok(srv):
            fast_ok += 1
    except OSError:
        pass
    if fast_total >= 400:
        break
for t in threads:
    t.join(60)
ok = sum(1 for r in results if r == (200, b"slept 50 ms\n"))
c.eq(ok, N, "all %d blocking clients answered (others: %r)"
     % (N, [r for r in results if r != (200, b"slept 50 ms\n")][:3]))
c.check(fast_total > 0 and fast_ok == fast_total,
        "GET / kept answering during the blocking load (%d/%d)"
        % (fast_ok, fast_total))

# ---- 3. clients leaving mid-call: each waits until the pool has taken
# its call (the pool's counters say so), then leaves
for i in range(20):
    before = pool_stats(srv)["submitted"]
    s = srv.connect()
    s.sendall(b"GET /blocking?ms=200 HTTP/1.1\r\nHost: x\r\n\r\n")
    c.check(wait_pool(srv, lambda st: st["submitted"] > before),
            "the pool took call %d" % i)
    s.close()
c.check(wisp_test.served(srv), "served after 20 clients left mid-call")
c.check(wait_pool(srv, lambda st: st["running"] == 0 and st["queued"] == 0),
        "the abandoned calls finished")
# Pipelined behind a blocking call: order is kept.
s = srv.connect()
s.sendall(b"GET /blocking?ms=30 HTTP/1.1\r\nHost: x\r\n\r\n"
          b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
st1, _, b1 = read_response(s)
st2, _, b2 = read_response(s)
s.close()
c.eq((st1, b1, st2, b2), (200, b"slept 30 ms\n", 200, b"Hello, World!"),
     "a pipelined request waits for the blocking one before it")
rc, err = srv.stop()
c.eq(rc, 0, "server exits 0 (stderr: %s)" % err[-1500:])

# ---- 4. a full pool queue answers 503 (refused, not queued)
srv = Server(HELLO, "--pool-threads", 1, "--pool-queue", 2, threads=1)
socks = []
for i in range(3):  # one running, two queued
    s = srv.connect(timeout=30)
    s.sendall(b"GET /blocking?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n")
    socks.append(s)
    if i == 0:  # the pool thread has taken the first one
        c.check(wait_pool(srv, lambda st: st["running"] == 1),
                "the first call runs")
c.check(wait_pool(srv, lambda st: st["queued"] == 2), "two calls queued")
st, _, body = wisp_test.request(srv, b"GET /blocking?ms=500 HTTP/1.1\r\nHost: x\r\n\r\n",
                                timeout=30)
c.eq(st, 503, "queue full -> 503")
c.check(wisp_test.served(srv), "GET / still served with the pool saturated")
for s in socks:
    st, _, _ = read_response(s)
    c.eq(st, 200, "queued calls still complete")
    s.close()
rc, err = srv.stop()
c.eq(rc, 0, "server exits 0 (stderr: %s)" % err[-1500:])

print("blocking: %.1f s" % (time.time() - t0))
c.done()
