"""examples/chat over real sockets: rooms shared by two I/O loops.

Three servers, each with --threads 2:
  A  rate limit raised out of the way: membership, presence, ordering per
     sender across loops, history and the join race, every bad input, a
     slow consumer, and a stop with sessions open on both loops;
  B  default rate limit (5/s, burst 10): rate_limited and the flood close;
  C  rate limit raised and a small --max-send-queue: 1,000 clients that
     never read while one talker floods, with the server's memory bounded.
Each server must exit 0 on SIGTERM with a clean stderr (under ASan that
includes LeakSanitizer's report at exit)."""
import json
import os
import resource
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import wisp_test
from wisp_test import Checks, Server, WebSocket, ws_close_code

c = Checks("chat")
# meson builds examples/chat/main.c as examples/chat in the build tree,
# beside hello (argv[1]) and echo.
CHAT = os.path.join(os.path.dirname(sys.argv[1]), "chat")
if not os.path.isfile(CHAT):
    CHAT = os.path.join(os.path.dirname(sys.argv[1]), "..", "chat", "chat")
NO_LIMIT = ("--rate", 1000000, "--burst", 1000000)
T0 = time.time()


def section(name):
    print("[%5.1f s] %s" % (time.time() - T0, name), flush=True)


# 1,000 clients and the servers' sockets need more than the usual 1,024
# descriptors; the servers inherit the raised limit.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft != resource.RLIM_INFINITY and soft < 4096:
    want = 4096 if hard == resource.RLIM_INFINITY else min(4096, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


class Client:
    """A chat client: JSON over wisp_test.WebSocket."""

    def __init__(self, srv, timeout=5.0, silent=False):
        # A silent client (one that will stop reading) announces an 8 KiB
        # receive buffer and an Ethernet-sized MSS, which keep what the
        # kernels hold for it near 100 KiB instead of megabytes (see
        # WebSocket), so that the server's own queue limit decides.
        self.ws = WebSocket(srv, timeout=timeout,
                            rcvbuf=8192 if silent else None,
                            mss=1400 if silent else None)
        self.loop = None  # which I/O loop serves it, when known

    def send(self, obj):
        self.ws.send_text(json.dumps(obj))

    def send_raw(self, data):
        self.ws.send_text(data)

    def recv(self, timeout=5.0):
        op, p = self.ws.recv_message(timeout)
        if op == 0x1:
            return json.loads(p)
        if op == 0x8:
            return {"type": "close", "code": ws_close_code(p),
                    "reason": p[2:].decode("utf-8", "replace")}
        return {"type": "binary", "len": len(p)}

    def join(self, room, nick):
        """Send a join; returns (joined reply, history messages)."""
        self.send({"type": "join", "room": room, "nick": nick})
        j = self.recv()
        if j.get("type") != "joined":
            return j, []
        return j, [self.recv() for _ in range(j["history"])]

    def quiet(self, wait=0.3):
        """True when nothing arrives within `wait` seconds."""
        try:
            m = self.recv(wait)
        except socket.timeout:
            return True
        print("unexpected message:", m, file=sys.stderr)
        return False

    def close(self):
        self.ws.close()


def stats(srv):
    st, _, body = wisp_test.request(srv, b"GET /stats HTTP/1.1\r\nHost: x\r\n"
                                         b"\r\n")
    return json.loads(body) if st == 200 else None


def open_spread(srv, n, per_loop=2, limit=60):
    """At least `n` clients, at least `per_loop` on each loop (SO_REUSEPORT
    picks the loop; /stats shows which one gained a session, so each
    client learns its loop)."""
    out = []
    prev = stats(srv)["loops"]
    while len(out) < limit:
        cl = Client(srv)
        now = stats(srv)["loops"]
        grew = [i for i, (a, b) in enumerate(zip(now, prev)) if a > b]
        cl.loop = grew[0] if len(grew) == 1 else None
        prev = now
        out.append(cl)
        counts = [sum(1 for x in out if x.loop == i) for i in range(len(now))]
        if len(out) >= n and min(counts) >= per_loop:
            break
    return out


def loops_of(clients):
    return sorted({cl.loop for cl in clients if cl.loop is not None})


class Reader(threading.Thread):
    """Reads a client's messages until done(msgs) or the deadline."""

    def __init__(self, cl, done, deadline=30.0):
        super().__init__(daemon=True)
        self.cl, self.done, self.deadline = cl, done, deadline
        self.msgs, self.error = [], None
        self.start()

    def run(self):
        end = time.time() + self.deadline
        try:
            while not self.done(self.msgs):
                left = end - time.time()
                if left <= 0:
                    self.error = "deadline"
                    return
                m = self.cl.recv(min(left, 5.0))
                self.msgs.append(m)
                if m["type"] == "close":
                    # Answer as a well-behaved client does (RFC 6455
                    # section 5.5.1), then wait for the server to end
                    # the TCP connection and close ours, so that the
                    # server need not wait either.
                    self.cl.ws.send_close(m["code"] or 1000)
                    wisp_test.expect_closed(self.cl.ws.sock, 3)
                    self.cl.close()
                    return
        except (OSError, ValueError) as e:
            self.error = repr(e)


def count(msgs, **kv):
    return sum(1 for m in msgs if all(m.get(k) == v for k, v in kv.items()))


def clean_exit(srv, name):
    rc, err = srv.stop()
    c.eq(rc, 0, "%s exits 0 on SIGTERM (stderr: %s)" % (name, err[-3000:]))
    bad = [w for w in ("Sanitizer", "runtime error", "still has",
                       "still referenced", "not delivered") if w in err]
    c.check(not bad, "%s: stderr clean at exit (%s): %s"
            % (name, bad, err[-3000:]))


# ======================================================================
section("server A")
A = Server(CHAT, *NO_LIMIT, threads=2)

st, h, body = wisp_test.request(A, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
c.eq(st, 200, "GET / answers the page")
c.check(h.get("content-type", "").startswith("text/html") and
        b"<title>wisp chat</title>" in body and b"new WebSocket(" in body and
        b"src=" not in body and b"href=" not in body,
        "the page is HTML with inline script and no external assets")
c.eq(len(stats(A)["loops"]), 2, "/stats shows two loops")

# ---- the page is a file: --www picks its directory; a missing one is
# refused at start with exit 2 and the reason on stderr.
p = subprocess.run([CHAT, "--port", "0", "--www", "/nonexistent/www"],
                   capture_output=True, text=True, timeout=60)
c.eq(p.returncode, 2, "--www with a missing directory: exit 2")
c.check("/nonexistent/www" in p.stderr and p.stdout == "",
        "--www with a missing directory: says so, never listens (%r)"
        % p.stderr)
with tempfile.TemporaryDirectory() as www:
    with open(os.path.join(www, "index.html"), "w") as f:
        f.write("<title>other page</title>\n")
    W = Server(CHAT, "--www", www, threads=1)
    st, h, body = wisp_test.request(W, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    c.eq((st, body), (200, b"<title>other page</title>\n"),
         "--www DIR serves DIR/index.html at /")
    st, _, _ = wisp_test.request(W, b"GET /stats HTTP/1.1\r\nHost: x\r\n\r\n")
    c.eq(st, 200, "--www: /stats is still the server's own")
    st, _, _ = wisp_test.request(W, b"GET /../../etc/passwd HTTP/1.1\r\n"
                                    b"Host: x\r\n\r\n")
    c.check(st in (400, 403, 404), "--www: no way out of DIR (%d)" % st)
    rc, err = W.stop()
    c.eq(rc, 0, "--www server exits 0 (%s)" % err[-500:])

# ---- membership, presence, nickname taken, leave, switching, isolation
section("membership and presence")
alice, bob, carol, dave = (Client(A) for _ in range(4))
j, hist = alice.join("lobby", "alice")
c.eq((j["type"], j["room"], j["nick"], j["members"], j["count"],
      j["history"]), ("joined", "lobby", "alice", ["alice"], 1, 0),
     "join: joined with the member list")
j, _ = bob.join("lobby", "bob")
c.eq(sorted(j["members"]), ["alice", "bob"], "second member sees both")
c.eq(j["count"], 2, "joined count")
p = alice.recv()
c.eq((p["type"], p["event"], p["nick"], p["room"]),
     ("presence", "join", "bob", "lobby"), "presence join to the others")
c.check(p["seq"] == j["seq"], "presence and joined carry the same seq")
c.check(bob.quiet(0.2), "no presence event about oneself")
j, _ = carol.join("lobby", "bob")
c.eq((j["type"], j.get("code")), ("error", "nick_taken"),
     "nickname taken in the room -> error")
c.check("bob" in j.get("message", ""), "the error names the nickname")
carol.send({"type": "msg", "text": "x"})
c.eq(carol.recv().get("code"), "not_in_room", "a refused join joins nothing")
j, _ = carol.join("other", "bob")
c.eq((j["type"], j["members"]), ("joined", ["bob"]),
     "the same nickname in another room is fine")
j, _ = dave.join("other", "dave")
c.eq(carol.recv()["nick"], "dave", "presence in the other room")

bob.send({"type": "msg", "text": "hi all"})
for who in (alice, bob):
    m = who.recv()
    c.eq((m["type"], m["room"], m["nick"], m["text"]),
         ("msg", "lobby", "bob", "hi all"), "message reaches the room")
    c.check(isinstance(m.get("ts"), int) and m["ts"] > 1.6e12 and
            m["seq"] > p["seq"] and "history" not in m,
            "message has ts, a later seq and no history mark")
c.check(carol.quiet(0.2) and dave.quiet(0.01),
        "room isolation: nothing leaks into the other room")
dave.send({"type": "msg", "text": "other room"})
c.eq(carol.recv()["text"], "other room", "other room still talks")
c.eq(dave.recv()["text"], "other room", "... sender gets its own")
c.check(alice.quiet(0.2) and bob.quiet(0.01), "... and lobby hears nothing")

bob.send({"type": "leave"})
c.eq(bob.recv(), {"type": "left", "room": "lobby"}, "leave -> left")
p = alice.recv()
c.eq((p["event"], p["nick"]), ("leave", "bob"), "presence leave")
bob.send({"type": "leave"})
c.eq(bob.recv().get("code"), "not_in_room", "leave twice -> not_in_room")

# Switching rooms: left for the old one, then joined for the new one.
alice.send({"type": "join", "room": "other", "nick": "alice"})
c.eq(alice.recv(), {"type": "left", "room": "lobby"}, "switch: left first")
j = alice.recv()
c.eq((j["type"], j["room"], sorted(j["members"])),
     ("joined", "other", ["alice", "bob", "dave"]), "switch: joined new room")
alice_hist = [alice.recv() for _ in range(j["history"])]
c.check(all(m.get("history") for m in alice_hist) and
        [m["text"] for m in alice_hist] == ["other room"],
        "switch: the new room's history")
for who in (carol, dave):
    p = who.recv()
    c.eq((p["event"], p["nick"]), ("join", "alice"), "switch: presence")
alice.send({"type": "join", "room": "other", "nick": "alice"})
c.eq(alice.recv().get("code"), "already_joined", "join the same again")
alice.send({"type": "join", "room": "other", "nick": "alice2"})
c.eq(alice.recv(), {"type": "left", "room": "other"}, "rename: left")
j = alice.recv()
c.eq((j["type"], j["nick"], "alice" in j["members"]),
     ("joined", "alice2", False), "rename: joined with the new nick only")
for _ in range(j["history"]):
    alice.recv()
for who in (carol, dave):
    evs = [who.recv() for _ in range(2)]
    c.eq([(e["event"], e["nick"]) for e in evs],
         [("join", "alice2"), ("leave", "alice")], "rename: presence pair")

# Empty rooms are freed.
rooms0 = stats(A)["rooms"]
e = Client(A)
e.join("ephemeral-room", "e")
c.eq(stats(A)["rooms"], rooms0 + 1, "a new room exists")
e.send({"type": "leave"})
e.recv()
end = time.time() + 3
while stats(A)["rooms"] != rooms0 and time.time() < end:
    time.sleep(0.02)
c.eq(stats(A)["rooms"], rooms0, "the emptied room is freed")
e.join("ephemeral-room", "e")
e.close()  # leaving by disconnecting frees it too
end = time.time() + 3
while stats(A)["rooms"] != rooms0 and time.time() < end:
    time.sleep(0.02)
c.eq(stats(A)["rooms"], rooms0, "a room emptied by a disconnect is freed")
for cl in (alice, bob, carol, dave):
    cl.close()

# ---- order per sender across both loops: 3 senders x 200 messages
section("order per sender across loops")
SENDERS, PER = 3, 200
group = open_spread(A, 9)
c.check(len(loops_of(group)) == 2,
        "clients on both loops (loops %s)" % [cl.loop for cl in group])
join_seq = []
for i, cl in enumerate(group):
    j, _ = cl.join("order", "o%d" % i)
    c.eq(j["count"], i + 1, "order: joined %d" % i)
    join_seq.append(j["seq"])
c.check(all(a < b for a, b in zip(join_seq, join_seq[1:])),
        "order: joins one after another get rising seq (%s)" % join_seq)
# Presence of the later joiners. Each join event is posted by its
# joiner's loop, and a loop's inbox is FIFO per posting thread only
# (loop.h, wisp_loop_post): a loop may deliver the join events of two
# joiners on different loops in either order, even though the second
# joined only after the first had its `joined`. What the server promises
# (docs/guide.md, "The join race"): each member hears of every later
# joiner once, with the seq of that joiner's `joined` (seq is the room's
# one order); the joiners of one loop in the order they joined; and,
# since one delivery serves all of a loop's members, the members on one
# loop in the same order.
heard = []
for i, cl in enumerate(group):
    got = [cl.recv() for _ in range(len(group) - 1 - i)]
    heard.append([int(m["nick"][1:]) for m in got
                  if str(m.get("nick")).startswith("o") and
                  m["nick"][1:].isdigit() and
                  int(m["nick"][1:]) < len(group)])
    c.eq(sorted(((m.get("type"), m.get("event"), m.get("room"),
                  m.get("nick"), m.get("seq")) for m in got),
                key=lambda t: (t[4] is None, t[4] or 0)),
         [("presence", "join", "order", "o%d" % k, join_seq[k])
          for k in range(i + 1, len(group))],
         "order: o%d heard each later joiner once, with its join seq" % i)
    for lp in loops_of(group):
        mine = [k for k in heard[i] if group[k].loop == lp]
        c.eq(mine, sorted(mine),
             "order: o%d heard loop %s's joiners in join order" % (i, lp))
for a in range(len(group)):
    for b in range(a + 1, len(group)):
        if group[a].loop is not None and group[a].loop == group[b].loop:
            c.eq([k for k in heard[a] if k in heard[b]], heard[b],
                 "order: o%d and o%d (loop %s) heard joins in one order"
                 % (a, b, group[a].loop))
swapped = sum(h != sorted(h) for h in heard)
if swapped:
    print("  %d of %d members heard joins from two loops out of join order"
          % (swapped, len(group)))
# Senders from both loops when possible.
by_loop = {}
for i, cl in enumerate(group):
    by_loop.setdefault(cl.loop, []).append(i)
senders = []
while len(senders) < SENDERS:
    for lp in sorted(by_loop, key=str):
        if by_loop[lp] and len(senders) < SENDERS:
            senders.append(by_loop[lp].pop(0))
outsider = Client(A)
outsider.join("order-elsewhere", "x")
want = SENDERS * PER
readers = [Reader(cl, lambda ms: count(ms, type="msg") >= want)
           for cl in group]


def blast(cl, k):
    for i in range(PER):
        cl.send({"type": "msg", "text": "s%d:%d" % (k, i)})


ths = [threading.Thread(target=blast, args=(group[s], k))
       for k, s in enumerate(senders)]
for t in ths:
    t.start()
for t in ths:
    t.join()
for r in readers:
    r.join(30)
seq_text = {}
for i, r in enumerate(readers):
    msgs = [m for m in r.msgs if m["type"] == "msg"]
    ok = r.error is None and len(msgs) == want
    per = {}
    for m in msgs:
        k, n = m["text"][1:].split(":")
        per.setdefault(m["nick"], []).append((int(n), m["seq"]))
        if seq_text.setdefault(m["seq"], m["text"]) != m["text"]:
            ok = False  # one seq, two texts: numbering is not per room
    for nick, got in per.items():
        ok = ok and [n for n, _ in got] == list(range(PER))
        ok = ok and all(a[1] < b[1] for a, b in zip(got, got[1:]))
    c.check(ok and len(per) == SENDERS,
            "order: client %d (loop %s) got all %d messages, each sender in "
            "order with rising seq (error %s, got %d)"
            % (i, group[i].loop, want, r.error, len(msgs)))
c.eq(len(seq_text), want, "order: every message has its own seq")
c.check(outsider.quiet(0.2), "order: nothing reached another room")
outsider.close()
for cl in group:
    cl.close()

# ---- history: the last 50, in order, marked
section("history")
w = Client(A)
w.join("hist", "writer")
for i in range(60):
    w.send({"type": "msg", "text": "h%d" % i})
got = [w.recv()["text"] for _ in range(60)]
c.eq(got, ["h%d" % i for i in range(60)], "history: writer's own echoes")
n = Client(A)
j, hist = n.join("hist", "newcomer")
c.eq(j["history"], 50, "history: 50 announced, not 51")
c.eq([m["text"] for m in hist], ["h%d" % i for i in range(10, 60)],
     "history: the last 50 in order")
c.check(all(m.get("history") is True and m["nick"] == "writer" and
            m["room"] == "hist" for m in hist), "history: marked as such")
c.check(all(a["seq"] < b["seq"] for a, b in zip(hist, hist[1:])) and
        hist[-1]["seq"] < j["seq"], "history: seq rising, before the join")
c.check(n.quiet(0.1), "history: nothing more after the replay")
c.eq(w.recv()["nick"], "newcomer", "history: writer sees the newcomer")
w.send({"type": "msg", "text": "live"})
m = n.recv()
c.check(m["text"] == "live" and "history" not in m, "history: then live")
w.recv()
other = Client(A)
j, hist = other.join("hist-other", "z")
c.eq(j["history"], 0, "history belongs to its room")
other.close()
w.close()
n.close()

# ---- the join race: joiners arrive while a sender is sending
section("join race")
RACE = 300
snd = Client(A)
snd.join("race", "sender")
echo = Reader(snd, lambda ms: count(ms, type="msg") >= RACE)
started = threading.Event()


def pace():
    for i in range(RACE):
        snd.send({"type": "msg", "text": "r%d" % i})
        if i == 20:
            started.set()
        if i % 5 == 4:
            time.sleep(0.005)


th = threading.Thread(target=pace)
th.start()
started.wait(5)
joiners = []
for k in range(8):
    cl = Client(A)
    cl.send({"type": "join", "room": "race", "nick": "j%d" % k})
    joiners.append(cl)
    time.sleep(0.02)
th.join()
mid = 0
for k, cl in enumerate(joiners):
    j = cl.recv()
    hist = [cl.recv() for _ in range(j["history"])]
    live, last = [], "r%d" % (RACE - 1)
    try:
        while not (hist and hist[-1]["text"] == last and not live) and \
                not (live and live[-1]["text"] == last):
            m = cl.recv()
            if m["type"] == "msg":
                live.append(m)
    except (OSError, ValueError):
        pass
    hi = [int(m["text"][1:]) for m in hist]
    li = [int(m["text"][1:]) for m in live]
    allidx = hi + li
    first = allidx[0] if allidx else None
    ok = allidx == list(range(first, RACE)) if allidx else False
    if li:
        ok = ok and len(hi) == min(50, li[0])
    else:
        ok = ok and hi == list(range(RACE - 50, RACE))
    ok = ok and all(m.get("history") for m in hist) and \
        not any(m.get("history") for m in live)
    mid += bool(hi and li)
    c.check(ok, "race: joiner %d saw each message once (%d replayed, %d "
            "live, from r%s)" % (k, len(hi), len(li), first))
c.check(mid >= 3, "race: %d of 8 joiners arrived mid-stream" % mid)
echo.join(10)
c.eq(count(echo.msgs, type="msg"), RACE, "race: sender got its own")
for cl in joiners + [snd]:
    cl.close()

# ---- bad input: each gets its answer, the others are still served
section("bad input")
watcher, talker, bad = Client(A), Client(A), Client(A)
watcher.join("bad", "watcher")
talker.join("bad", "talker")
watcher.recv()
ok_rounds = 0


def served(what):
    """The room still works for the others after `what`."""
    global ok_rounds
    talker.send({"type": "msg", "text": "still here"})
    m1, m2 = watcher.recv(), talker.recv()
    if not (m1.get("text") == m2.get("text") == "still here"):
        c.check(False, "after %s the others are served: %r %r"
                % (what, m1, m2))
    else:
        ok_rounds += 1


long33 = "a" * 33
cases = [
    ("not JSON", b"hello", "bad_json"),
    ("truncated", b'{"type":"msg","text":"x"', "bad_json"),
    ("trailing comma", b'{"type":"leave",}', "bad_json"),
    ("trailing garbage", b'{"type":"leave"} x', "bad_json"),
    ("single quotes", b"{'type':'leave'}", "bad_json"),
    ("raw control char in a string", b'{"type":"msg","text":"a\tb"}',
     "bad_json"),
    ("lone surrogate", b'{"type":"msg","text":"a\\ud800"}', "bad_json"),
    ("bad escape", b'{"type":"msg","text":"a\\x"}', "bad_json"),
    ("empty message", b"", "bad_json"),
    ("array", b"[1,2,3]", "not_object"),
    ("string", b'"join"', "not_object"),
    ("number", b"42", "not_object"),
    ("null", b"null", "not_object"),
    ("value not a string", b'{"type":1}', "bad_field"),
    ("nested value", b'{"type":"join","room":["a"],"nick":"x"}', "bad_field"),
    ("duplicate key", b'{"type":"leave","type":"leave"}', "bad_field"),
    ("too many fields", json.dumps({"k%d" % i: "v" for i in range(9)})
     .encode(), "bad_field"),
    ("no type", b"{}", "missing_field"),
    ("unknown type", b'{"type":"dance"}', "unknown_type"),
    ("join without nick", b'{"type":"join","room":"x"}', "missing_field"),
    ("join without room", b'{"type":"join","nick":"x"}', "missing_field"),
    ("msg without text", b'{"type":"msg"}', "missing_field"),
    ("msg before join", b'{"type":"msg","text":"hi"}', "not_in_room"),
    ("leave before join", b'{"type":"leave"}', "not_in_room"),
]
for nick, code in [("", "nick_invalid"), (long33, "nick_too_long"),
                   ("\u00e9" * 17, "nick_too_long"),
                   ("a\u0007", "nick_invalid"), ("a\u007f", "nick_invalid"),
                   ("a\u0085", "nick_invalid"), ("a\nb", "nick_invalid")]:
    cases.append(("nick %r" % nick, json.dumps(
        {"type": "join", "room": "bad", "nick": nick}).encode(), code))
for room, code in [("", "room_invalid"), ("r" * 65, "room_too_long"),
                   ("a\nb", "room_invalid"), ("a\u0000", "room_invalid")]:
    cases.append(("room %r" % room, json.dumps(
        {"type": "join", "room": room, "nick": "n"}).encode(), code))
for name, data, code in cases:
    bad.send_raw(data)
    m = bad.recv()
    c.eq((m.get("type"), m.get("code")), ("error", code), "bad input: " + name)
    c.check(isinstance(m.get("message"), str) and m["message"],
            "bad input: %s has a message" % name)
    served(name)
# A 32-byte nickname of 2-byte characters is fine; then text checks.
j, _ = bad.join("bad", "\u00e9" * 16)
c.eq((j["type"], j["nick"]), ("joined", "\u00e9" * 16),
     "nick of exactly 32 bytes accepted")
watcher.recv()
talker.recv()
for text, code in [("", "text_invalid"), ("x" * 4097, "text_too_long"),
                   ("a\u0000b", "text_invalid"), ("a\u001bb", "text_invalid"),
                   ("a\u0085b", "text_invalid")]:
    bad.send({"type": "msg", "text": text})
    m = bad.recv()
    c.eq(m.get("code"), code, "bad text %r" % text[:10])
    c.check(watcher.quiet(0.05), "bad text not broadcast")
for text in ("x" * 4096, "two\nlines\tand tab\r", 'say "hi" \\ \u00e9 \U0001F600'):
    bad.send({"type": "msg", "text": text})
    m = watcher.recv()
    c.eq(m.get("text"), text, "text round-trips exactly (%r...)" % text[:12])
    c.eq(bad.recv().get("text"), text, "... and to the sender")
    talker.recv()
c.eq(ok_rounds, len(cases), "others served after every bad input")
# Binary frames are refused with close 1003; over 32 KiB, 1009.
for what, send, code in [
        ("binary frame", lambda ws: ws.send_frame(0x2, b"\x00\x01"), 1003),
        ("message over 32 KiB",
         lambda ws: ws.send_text(json.dumps({"type": "msg",
                                             "text": "x" * 40000})), 1009)]:
    cl = Client(A)
    cl.join("bad", "closing")
    watcher.recv()
    talker.recv()
    send(cl.ws)
    m = cl.recv()
    c.eq((m["type"], m.get("code")), ("close", code), what + " -> close")
    cl.ws.send_close(code)
    c.check(wisp_test.expect_closed(cl.ws.sock, 3), what + ": TCP closed")
    p = watcher.recv()
    c.eq((p.get("event"), p.get("nick")), ("leave", "closing"),
         what + ": its member left the room")
    talker.recv()
    served(what)
    cl.close()
for cl in (watcher, talker, bad):
    cl.close()

# ---- a client that never reads while others chat
section("slow consumer")
sloth = Client(A, silent=True)
j, _ = sloth.join("slow", "sloth")
fast = [Client(A) for _ in range(2)]
for i, cl in enumerate(fast):
    cl.join("slow", "fast%d" % i)
fast[0].recv()  # fast1 joined
SLOW_N = 1500
text = "y" * 1000
freaders = [Reader(cl, lambda ms: count(ms, type="msg") >= SLOW_N)
            for cl in fast]
t1 = time.time()
for i in range(SLOW_N):
    fast[0].send({"type": "msg", "text": "%d:%s" % (i, text)})
for r in freaders:
    r.join(30)
for k, r in enumerate(freaders):
    got = [int(m["text"].split(":")[0]) for m in r.msgs if m["type"] == "msg"]
    c.check(r.error is None and got == list(range(SLOW_N)),
            "slow: fast%d got all %d messages in order (%s)"
            % (k, SLOW_N, r.error))
    c.check(count(r.msgs, type="presence", event="leave", nick="sloth") == 1,
            "slow: fast%d saw the slow consumer leave" % k)
# The slow client's stream: what the kernel and the queue held, then the
# close frame (1008), then the end of the connection.
sloth.ws.sock.settimeout(5)
n_msgs, close = 0, None
try:
    while True:
        m = sloth.recv(5)
        if m["type"] == "close":
            close = m
            break
        n_msgs += m["type"] == "msg"
except (OSError, ValueError) as e:
    close = {"error": repr(e)}
c.eq((close or {}).get("code"), 1008,
     "slow: closed with 1008 after %d messages (%r)" % (n_msgs, close))
c.check(0 < n_msgs < SLOW_N, "slow: it got only a part (%d)" % n_msgs)
c.check(wisp_test.expect_closed(sloth.ws.sock, 3), "slow: TCP closed")
sloth.close()
for cl in fast:
    cl.close()
print("  slow consumer: closed after %d of %d messages of ~1 KiB (%.2f s)"
      % (n_msgs, SLOW_N, time.time() - t1))

# ---- stop with sessions open in two rooms on both loops
section("stop with sessions open")
open_ = open_spread(A, 6)
for i, cl in enumerate(open_):
    cl.join("stop-%d" % (i % 2), "s%d" % i)
chatter = [Reader(cl, lambda ms: False, deadline=20) for cl in open_]
for i in range(50):
    open_[i % len(open_)].send({"type": "msg", "text": "bye %d" % i})
time.sleep(0.05)
t_stop = time.time()
rc, err = A.stop()
stop_s = time.time() - t_stop
for r in chatter:
    r.join(5)
codes = [next((m["code"] for m in r.msgs if m["type"] == "close"), None)
         for r in chatter]
c.check(all(x == 1001 for x in codes),
        "stop: every session got close 1001 (%s)" % codes)
c.eq(rc, 0, "server A exits 0 (stderr: %s)" % err[-3000:])
c.check(stop_s < 2.0, "stop: done in %.2f s, without waiting for the 3 s "
        "deadline (every client answered the close)" % stop_s)
c.check(not any(w in err for w in ("Sanitizer", "runtime error", "still has",
                                   "still referenced")),
        "server A: clean stderr at exit: %s" % err[-3000:])
for cl in open_:
    cl.close()

# ======================================================================
section("server B: rate limit (5/s, burst 10, flood 50)")
B = Server(CHAT, threads=2)
obs, user = Client(B), Client(B)
obs.join("rl", "observer")
user.join("rl", "user")  # the join took one token
obs.recv()
for i in range(20):
    user.send({"type": "msg", "text": "b%d" % i})
replies = [user.recv() for _ in range(20)]
ok_n = count(replies, type="msg")
lim_n = count(replies, type="error", code="rate_limited")
c.eq(ok_n + lim_n, 20, "rate: every message got an answer")
c.check(8 <= ok_n <= 11, "rate: about the burst went through (%d)" % ok_n)
c.check(lim_n >= 9, "rate: the rest were rate_limited (%d)" % lim_n)
seen = []
while True:
    try:
        seen.append(obs.recv(0.3))
    except socket.timeout:
        break
c.eq([m["text"] for m in seen], [m["text"] for m in replies
                                 if m["type"] == "msg"],
     "rate: only the accepted ones were broadcast")
time.sleep(1.25)  # 5/s: six tokens back
for i in range(5):
    user.send({"type": "msg", "text": "after%d" % i})
after = [user.recv() for _ in range(5)]
c.eq(count(after, type="msg"), 5, "rate: recovered after waiting")
for _ in range(5):
    obs.recv()
# Flooding far beyond the limit ends in close 1008.
flooder = Client(B)
flooder.join("rl", "flooder")
obs.recv()
user.recv()
for i in range(400):
    try:
        flooder.send({"type": "msg", "text": "f%d" % i})
    except OSError:
        break
msgs, close = [], None
try:
    while True:
        m = flooder.recv(5)
        if m["type"] == "close":
            close = m
            break
        msgs.append(m)
except (OSError, ValueError):
    pass
c.eq((close or {}).get("code"), 1008, "flood: closed with 1008 (%r)" % close)
c.check(close is not None and "rate" in close["reason"],
        "flood: the reason says why")
c.check(count(msgs, type="msg") <= 12 and
        count(msgs, type="error", code="rate_limited") >= 40,
        "flood: %d accepted, %d refused before the close"
        % (count(msgs, type="msg"), count(msgs, type="error")))
flooder.ws.send_close(1008)
flooder.close()
time.sleep(1.0)
user.send({"type": "msg", "text": "still fine"})
m = obs.recv()
while m.get("nick") != "user":  # the flooder's accepted ones, its leave
    m = obs.recv()
c.eq(m["text"], "still fine", "flood: the others are still served")
obs.close()
user.close()
clean_exit(B, "server B")

# ======================================================================
section("server C: 1,000 clients that never read, one talker")
MSQ = 128 << 10
# The flood (1.6 MB) is well above what a silent client's kernel buffers
# take (0.2 to 0.9 MB measured) plus --max-send-queue.
NSILENT, FLOOD_N, FLOOD_LEN = 1000, 800, 2000
is_asan = b"__asan_init" in open(CHAT, "rb").read()
env = dict(os.environ)
if is_asan:
    # ASan keeps freed memory in quarantine (256 MiB by default) and pads
    # every block; keep the quarantine small so that the bound below
    # still says something.
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                           ":quarantine_size_mb=16").lstrip(":")
# The silent clients are read only once the flood is over. On a busy
# machine the flood can outlast wisp's default write timeout (30 s), which
# drops a connection that made no write progress, close frame and all; a
# long timeout keeps this test about the close frame, not the clock.
C = Server(CHAT, *NO_LIMIT, "--max-send-queue", MSQ, "--write-timeout",
           600000, threads=2, env=env)
pid = C.proc.pid


def mem_kib(field):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith(field + ":"):
                return int(ln.split()[1])
    return 0


readers_c = open_spread(C, 3, per_loop=1)
NREAD = len(readers_c)
for i, cl in enumerate(readers_c):
    cl.join("big", "reader%d" % i)
for i, cl in enumerate(readers_c):
    for _ in range(len(readers_c) - 1 - i):
        cl.recv()
talker_c = readers_c[0]
base_rss = mem_kib("VmRSS")
want_presence = NSILENT


def reader_done(ms):
    return (count(ms, type="msg") >= FLOOD_N and
            count(ms, type="presence", event="leave") >= NSILENT)


big_readers = [Reader(cl, reader_done, deadline=60) for cl in readers_c]
t1 = time.time()
silent = []
for i in range(NSILENT):
    cl = Client(C, silent=True, timeout=10)
    cl.send({"type": "join", "room": "big", "nick": "q%04d" % i})
    silent.append(cl)
end = time.time() + 30
while time.time() < end and not all(
        count(r.msgs, type="presence", event="join") >= NSILENT
        for r in big_readers):
    time.sleep(0.05)
c.check(all(count(r.msgs, type="presence", event="join") >= NSILENT
            for r in big_readers),
        "big: readers saw %d joins" % NSILENT)
section("  %d silent clients joined" % NSILENT)
st = stats(C)
c.eq(sum(st["loops"]), NREAD + NSILENT, "big: all sessions open (%s)"
     % st["loops"])
c.check(min(st["loops"]) > 100, "big: sessions on both loops")
joined_rss = mem_kib("VmRSS")
pad = "z" * (FLOOD_LEN - 8)
t2 = time.time()
for i in range(FLOOD_N):
    talker_c.send({"type": "msg", "text": "%05d:%s" % (i, pad)})
for r in big_readers:
    r.join(60)
flood_s = time.time() - t2
for k, r in enumerate(big_readers):
    got = [int(m["text"][:5]) for m in r.msgs if m["type"] == "msg"]
    c.check(r.error is None and got == list(range(FLOOD_N)),
            "big: reader %d got all %d messages in order (%s, %d)"
            % (k, FLOOD_N, r.error, len(got)))
    c.eq(count(r.msgs, type="presence", event="leave"), NSILENT,
         "big: reader %d saw every silent client leave" % k)
section("  flood delivered")
end = time.time() + 20
while sum(stats(C)["loops"]) > NREAD and time.time() < end:
    time.sleep(0.05)
st = stats(C)
c.eq(sum(st["loops"]), NREAD, "big: every silent session was closed (%s)"
     % st["loops"])
c.eq(st["dropped"], 0, "big: no broadcast found an inbox full")
hwm = mem_kib("VmHWM")
# Each silent connection may hold max_send_queue bytes, the frame that
# crossed the limit (2 KiB) and its close frame, plus its connection,
# session and member records and allocator slack: 16 KiB covers those
# (64 KiB with ASan's redzones and shadow memory).
slack = (64 if is_asan else 16) << 10
bound_kib = base_rss + NSILENT * (MSQ + FLOOD_LEN + slack) // 1024
print("  RSS: %d KiB before, %d KiB with %d joined, peak %d KiB; bound %d KiB"
      " = %d + %d x (%d + %d + %d) B; flood %.2f s"
      % (base_rss, joined_rss, NSILENT, hwm, bound_kib, base_rss, NSILENT,
         MSQ, FLOOD_LEN, slack, flood_s))
c.check(hwm < bound_kib, "big: peak RSS %d KiB below the bound %d KiB"
        % (hwm, bound_kib))
section("  silent sessions closed")


def server_unsent(server_port, client_port):
    """Bytes the server's kernel still holds for its connection to
    `client_port` (the tx_queue column of /proc/net/tcp), or None."""
    with open("/proc/net/tcp") as f:
        for ln in f.readlines()[1:]:
            x = ln.split()
            if x[1].endswith(":%04X" % server_port) and \
                    x[2].endswith(":%04X" % client_port):
                return int(x[4].split(":")[0], 16)
    return None


# What each silent client finds when it finally reads: what its kernel
# buffers and the server's queue held, then close 1008. All of them are
# read at once, so that no client waits for another.


def walk(st):
    """Step over the whole frames in st["buf"]; note a close frame."""
    buf, pos = st["buf"], 0
    while pos + 2 <= len(buf):
        b0, n = buf[pos], buf[pos + 1] & 0x7F
        hl = {126: 4, 127: 10}.get(n, 2)
        if pos + hl > len(buf):
            break
        if n == 126:
            n = struct.unpack_from("!H", buf, pos + 2)[0]
        elif n == 127:
            n = struct.unpack_from("!Q", buf, pos + 2)[0]
        if pos + hl + n > len(buf):
            break
        if b0 & 0x0F == 0x8:
            st["code"] = ws_close_code(buf[pos + hl:pos + hl + n])
            st["before"] = st["done"] + pos
            return
        pos += hl + n
    st["done"] += pos
    st["buf"] = buf[pos:]


sel = selectors.DefaultSelector()
drain = {}
for cl in silent:
    sock = cl.ws.sock
    sock.setblocking(False)
    st = drain[sock] = {"buf": bytes(cl.ws.buf[cl.ws.pos:]), "done": 0,
                        "code": None, "end": None}
    walk(st)
    if st["code"] is None:
        sel.register(sock, selectors.EVENT_READ)
drain_end = time.time() + 10
while sel.get_map() and time.time() < drain_end:
    for key, _ in sel.select(0.2):
        sock, st = key.fileobj, drain[key.fileobj]
        try:
            d = sock.recv(1 << 18)
        except BlockingIOError:
            continue
        except OSError as e:
            d, st["end"] = b"", repr(e)
        if d:
            st["buf"] += d
            walk(st)
        else:
            st["end"] = st["end"] or "eof"
        if st["code"] is not None or st["end"]:
            sel.unregister(sock)
sel.close()
codes, held = {}, []
for sock, st in drain.items():
    code = st["code"]
    if code is None and st["end"]:
        code = "ended without a close frame (%s)" % st["end"]
    elif code is None:
        # Loopback TCP sometimes never resumes a connection whose tiny
        # receive window stayed shut for seconds (the retransmitted
        # segment is dropped again and again, with growing backoff). Then
        # the server's kernel still holds bytes for it: the server has
        # done its part. Anything else is a failure.
        unsent = server_unsent(C.port, sock.getsockname()[1])
        code = "stalled in TCP" if unsent else "silent"
    else:
        held.append(st["before"])
    codes[code] = codes.get(code, 0) + 1
for cl in silent:
    cl.close()
stalled = codes.pop("stalled in TCP", 0)
c.eq(codes, {1008: NSILENT - stalled},
     "big: every silent client's stream ends with close 1008")
c.check(stalled <= NSILENT // 10, "big: few streams stalled in TCP (%d)"
        % stalled)
print("  a silent client received %d to %d bytes before its close frame;"
      " %d stalled in TCP" % (min(held or [0]), max(held or [0]), stalled))
section("  silent clients drained")
# Still serving.
late = Client(C)
j, _ = late.join("big", "late")
c.eq((j["type"], j["count"]), ("joined", NREAD + 1), "big: still serving")
late.send({"type": "msg", "text": "after the storm"})
c.eq(late.recv()["text"], "after the storm", "big: and broadcasting")
for cl in readers_c + [late]:
    cl.close()
clean_exit(C, "server C")
section("done")
c.done()
