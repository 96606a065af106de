#!/usr/bin/env python3
"""xiaozhi-server smoke test (the server author's own quick checks; the
full device suite is xiaozhi_*_test.py by the device helper).

argv[1]: any example binary of the build; xiaozhi-server is found next to
it (build/examples/xiaozhi/xiaozhi-server). Checks: OTA answer and 400,
a full echo turn in framing v1 driven by real Opus speech (VAD end of
utterance without listen stop), a scripted turn in v3 with MCP
initialize/tools pages/tool call, abort mid-reply, auth 401, vision 401
and success, graceful stop writing the save file."""
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wisp_test  # noqa: E402
from wisp_test import Checks, Server, WebSocket, WS_GUID  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "xiaozhi")


def server_binary():
    b = sys.argv[1]
    root = os.path.dirname(os.path.dirname(os.path.abspath(b)))
    for cand in (os.path.join(os.path.dirname(b), "xiaozhi", "xiaozhi-server"),
                 os.path.join(root, "examples", "xiaozhi", "xiaozhi-server"),
                 b):
        if os.path.basename(cand) == "xiaozhi-server" and os.path.exists(cand):
            return cand
    sys.exit("xiaozhi-server not found next to " + b)


def load_opk(name):
    d = open(os.path.join(DATA, name), "rb").read()
    out, i = [], 0
    while i < len(d):
        n = struct.unpack(">H", d[i:i + 2])[0]
        out.append(d[i + 2:i + 2 + n])
        i += 2 + n
    return out


def http(server, method, path, headers=None, body=b""):
    s = server.connect()
    h = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
    s.sendall(("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%s"
               "Content-Length: %d\r\nConnection: close\r\n\r\n"
               % (method, path, server.port, h, len(body))).encode() + body)
    status, hdrs, payload = wisp_test.read_response(s)
    s.close()
    return status, hdrs, payload


def ws_connect(server, path="/xiaozhi/v1/", headers=None, timeout=10.0):
    """A WebSocket with extra request headers; returns (ws, status)."""
    s = server.connect(timeout)
    key = base64.b64encode(os.urandom(16))
    h = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
    s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Key: %s\r\n%s\r\n"
               % (path, key.decode(), h)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head else 0
    if status != 101:
        s.close()
        return None, status
    ws = WebSocket.__new__(WebSocket)
    ws.sock, ws.buf, ws.pos = s, bytearray(rest), 0
    return ws, status


def recv_json(ws, timeout=10.0):
    """Next text message as a dict (binary frames are returned as bytes)."""
    op, p = ws.recv_message(timeout)
    if op == 0x1:
        return json.loads(p)
    if op == 0x2:
        return p
    return ("close", p)


def until(ws, pred, timeout=15.0):
    """Messages until pred(msg) is true; returns (all, last)."""
    seen, end = [], time.time() + timeout
    while time.time() < end:
        m = recv_json(ws, max(0.1, end - time.time()))
        seen.append(m)
        if pred(m):
            return seen, m
    raise TimeoutError("no matching message; saw %r" % seen[-5:])


def is_type(t, state=None):
    return lambda m: isinstance(m, dict) and m.get("type") == t and \
        (state is None or m.get("state") == state)


def main():
    c = Checks("xiaozhi_smoke")
    binary = server_binary()
    save_dir = tempfile.mkdtemp(prefix="xz_save_")
    speech = load_opk("vad_quiet.opk")

    # ---- echo pipeline, auth on for one allow-listed device
    srv = Server(binary, "--set", "log.level=warn",
                 "--set", "save.dir=" + save_dir,
                 "--set", "auth.enabled=true",
                 "--set", "auth.allowed_devices=aa:bb:cc:00:00:01",
                 "--set", "session.hello_timeout_ms=1500")

    st, hdrs, body = http(srv, "POST", "/xiaozhi/ota/",
                          {"Device-Id": "AA:BB:CC:00:00:02",
                           "Client-Id": "cid-2",
                           "Content-Type": "application/json"},
                          json.dumps({"application": {"version": "2.4.2"},
                                      "board": {"type": "bread"}}).encode())
    c.eq(st, 200, "OTA 200")
    ota = json.loads(body)
    c.check(abs(ota["server_time"]["timestamp"] / 1000 - time.time()) < 60,
            "OTA timestamp in ms near now")
    c.eq(ota["firmware"], {"version": "2.4.2", "url": ""}, "no firmware")
    c.eq(ota["websocket"]["url"],
         "ws://127.0.0.1:%d/xiaozhi/v1/" % srv.port, "ws url from Host")
    c.check(ota["websocket"]["token"] != "", "token issued with auth on")
    c.check("mqtt" not in ota, "no mqtt")
    st, _, body = http(srv, "POST", "/xiaozhi/ota/", {}, b"")
    c.eq(st, 400, "OTA without Device-Id: 400")
    c.check("error" in json.loads(body), "400 body has error")
    st, hdrs, _ = http(srv, "OPTIONS", "/xiaozhi/ota/")
    c.eq(st, 200, "OTA OPTIONS")

    # auth: no token -> 401; the OTA token for its device -> 101; the same
    # token with another Device-Id -> 401; allow-listed without token -> 101
    ws, st = ws_connect(srv, headers={"Device-Id": "aa:bb:cc:00:00:02",
                                      "Client-Id": "cid-2"})
    c.eq(st, 401, "no token: 401")
    tok = ota["websocket"]["token"]
    ws, st = ws_connect(srv, headers={"Device-Id": "aa:bb:cc:00:00:03",
                                      "Client-Id": "cid-2",
                                      "Authorization": "Bearer " + tok})
    c.eq(st, 401, "token of another device: 401")
    ws, st = ws_connect(srv, headers={"Device-Id": "aa:bb:cc:00:00:02",
                                      "Client-Id": "cid-2",
                                      "Authorization": "Bearer " + tok})
    c.eq(st, 101, "OTA token for its device: 101")
    ws.close()
    ws, st = ws_connect(srv, path="/xiaozhi/v1/")
    c.eq(st, 400, "no Device-Id: 400")

    # full echo turn in v1: hello, listen start auto, real speech packets
    # in real time, then silence (DTX) frames; no listen stop.
    ws, st = ws_connect(srv, path="/xiaozhi/v1/?device-id=aa:bb:cc:00:00:01"
                        "&client-id=web")
    c.eq(st, 101, "allow-listed device via query parameters: 101")
    t0 = time.time()
    ws.send_text(json.dumps({"type": "hello", "version": 1,
                             "features": {"mcp": False}}))
    hello = recv_json(ws)
    c.check(time.time() - t0 < 1.0, "hello answered within 1 s")
    c.eq(hello.get("transport"), "websocket", "hello transport")
    c.check(hello.get("session_id"), "hello session_id")
    c.eq(hello["audio_params"]["frame_duration"], 60, "hello 60 ms")
    sid = hello["session_id"]
    ws.send_text(json.dumps({"session_id": sid, "type": "listen",
                             "state": "start", "mode": "auto"}))
    start = time.time()
    for i, p in enumerate(speech[:70]):  # sentence one + DTX silence
        ws.send_frame(0x2, p)
        time.sleep(max(0, start + (i + 1) * 0.06 - time.time()))
    seen, stt = until(ws, is_type("stt"), 10)
    c.check(stt["text"].startswith("(echo "), "echo stt text")
    seen, _ = until(ws, is_type("tts", "stop"), 30)
    audio = [m for m in seen if isinstance(m, bytes)]
    types = [(m.get("type"), m.get("state")) for m in seen
             if isinstance(m, dict)]
    c.check(("tts", "start") in types and ("tts", "sentence_start") in types,
            "tts start and sentence_start before stop: %r" % types)
    c.check(len(audio) > 10, "echo audio came back (%d packets)" % len(audio))
    c.check(all(a in speech for a in audio), "echoed packets are ours")

    # abort mid-reply: detect text gives a reply; abort -> tts stop fast
    ws.send_text(json.dumps({"session_id": sid, "type": "listen",
                             "state": "start", "mode": "auto"}))
    for p in speech[:40]:
        ws.send_frame(0x2, p)
    ws.send_frame(0x2, b"")  # browser end of recording
    until(ws, is_type("tts", "start"), 10)
    t0 = time.time()
    ws.send_text(json.dumps({"session_id": sid, "type": "abort"}))
    until(ws, is_type("tts", "stop"), 5)
    c.check(time.time() - t0 < 1.0, "tts stop soon after abort")
    # garbage is ignored
    ws.send_text("not json")
    ws.send_text(json.dumps({"no": "type"}))
    ws.send_text(json.dumps({"type": "what"}))
    ws.send_text(json.dumps({"session_id": sid, "type": "listen",
                             "state": "detect", "text": "tell me a joke"}))
    seen, stt = until(ws, is_type("stt"), 10)
    c.eq(stt["text"], "tell me a joke", "detect text is an utterance")
    until(ws, is_type("tts", "stop"), 10)
    ws.close()

    # hello timeout closes
    ws, st = ws_connect(srv, path="/xiaozhi/v1/?device-id=aa:bb:cc:00:00:01")
    m = recv_json(ws, 10)
    c.check(isinstance(m, tuple) and m[0] == "close", "hello timeout close")
    ws.close()

    rc, err = srv.stop()
    c.eq(rc, 0, "graceful stop exit 0")
    files = os.listdir(save_dir)
    c.check("aa_bb_cc_00_00_01.jsonl" in files, "save file written: %r"
            % files)
    if files:
        lines = open(os.path.join(save_dir, files[0])).read().splitlines()
        c.check(any(json.loads(l)["user"] == "tell me a joke"
                    for l in lines), "saved dialogue has the text turn")

    # ---- scripted pipeline, framing v3, MCP and vision
    srv = Server(binary, "--set", "log.level=warn",
                 "--set", "pipeline.mode=scripted",
                 "--set", "scripted.llm_text=One. Two!",
                 "--set", "ota.websocket_version=3")
    ws, st = ws_connect(srv, headers={"Device-Id": "aa:bb:cc:00:00:09",
                                      "Protocol-Version": "3"})
    ws.send_text(json.dumps({"type": "hello", "version": 3,
                             "features": {"mcp": True},
                             "audio_params": {"sample_rate": 16000,
                                              "frame_duration": 60}}))
    hello = recv_json(ws)
    c.eq(hello["audio_params"]["sample_rate"], 24000, "scripted rate")
    init = recv_json(ws)
    pl = init["payload"]
    c.eq(pl["method"], "initialize", "MCP initialize after hello")
    vision = pl["params"]["capabilities"]["vision"]
    c.check(vision["url"].startswith("http://"), "vision url http")
    ws.send_text(json.dumps({"type": "mcp", "payload": {
        "jsonrpc": "2.0", "id": pl["id"], "result": {}}}))
    lst = recv_json(ws)
    c.eq(lst["payload"]["method"], "tools/list", "tools/list")
    ws.send_text(json.dumps({"type": "mcp", "payload": {
        "jsonrpc": "2.0", "id": lst["payload"]["id"], "result": {
            "tools": [{"name": "self.a"}], "nextCursor": "self.b"}}}))
    lst2 = recv_json(ws)
    c.eq(lst2["payload"]["params"]["cursor"], "self.b", "cursor followed")
    ws.send_text(json.dumps({"type": "mcp", "payload": {
        "jsonrpc": "2.0", "id": lst2["payload"]["id"], "result": {
            "tools": [{"name": "self.b"}]}}}))
    ws.send_text(json.dumps({"type": "mcp", "payload": {
        "jsonrpc": "2.0", "method": "notifications/state_changed"}}))
    ws.send_text(json.dumps({"type": "listen", "state": "detect",
                             "text": "mcp:self.b {\"x\":1}"}))
    seen, call = until(ws, lambda m: isinstance(m, dict) and
                       m.get("type") == "mcp", 10)
    cp = call["payload"]
    c.eq(cp["method"], "tools/call", "tools/call sent")
    c.check(isinstance(cp["id"], int) and cp["id"] >= 100, "call id >= 100")
    ws.send_text(json.dumps({"type": "mcp", "payload": {
        "jsonrpc": "2.0", "id": cp["id"],
        "error": {"message": "Unknown tool"}}}))
    seen, s1 = until(ws, is_type("tts", "sentence_start"), 10)
    c.check("Unknown tool" in s1["text"], "error message spoken")
    until(ws, is_type("tts", "stop"), 10)
    # scripted turn, v3 downlink frames with exact sizes
    ws.send_text(json.dumps({"type": "listen", "state": "detect",
                             "text": "hi"}))
    seen, _ = until(ws, is_type("tts", "stop"), 20)
    audio = [m for m in seen if isinstance(m, bytes)]
    c.eq(len(audio), 50, "25 packets per sentence, two sentences")
    c.check(all(a[0] == 0 and struct.unpack(">H", a[2:4])[0] == len(a) - 4
                for a in audio), "v3 headers exact")
    sents = [m["text"] for m in seen if is_type("tts", "sentence_start")(m)]
    c.eq(sents, ["One.", "Two!"], "sentences split")

    # vision: 401 without token, success with it
    st, _, body = http(srv, "POST", "/mcp/vision/explain",
                       {"Device-Id": "aa:bb:cc:00:00:09"}, b"")
    c.eq(st, 401, "vision without token 401")
    b = "BOUND"
    mp = ("--%s\r\nContent-Disposition: form-data; name=\"question\"\r\n\r\n"
          "What is it?\r\n--%s\r\nContent-Disposition: form-data; "
          "name=\"image\"; filename=\"a.jpg\"\r\nContent-Type: image/jpeg"
          "\r\n\r\n" % (b, b)).encode() + b"\xff\xd8\xff\xe0" + b"x" * 100 + \
        ("\r\n--%s--\r\n" % b).encode()
    st, _, body = http(srv, "POST", "/mcp/vision/explain",
                       {"Device-Id": "aa:bb:cc:00:00:09",
                        "Authorization": "Bearer " + vision["token"],
                        "Content-Type": "multipart/form-data; boundary=" + b},
                       mp)
    c.eq(st, 200, "vision 200")
    v = json.loads(body)
    c.check(v.get("success") is True and "What is it?" in v["response"],
            "vision answer %r" % v)
    st, _, body = http(srv, "POST", "/mcp/vision/explain",
                       {"Device-Id": "aa:bb:cc:00:00:08",
                        "Authorization": "Bearer " + vision["token"],
                        "Content-Type": "multipart/form-data; boundary=" + b},
                       mp)
    c.eq(st, 401, "vision token of another device 401")
    st, _, body = http(srv, "GET", "/metrics")
    c.check(st == 200 and b"xiaozhi_turns_total" in body, "metrics page")
    ws.close()
    rc, err = srv.stop()
    c.eq(rc, 0, "second server stops cleanly")

    # ---- short timers, second port, limits
    srv = Server(binary, "--set", "log.level=warn",
                 "--set", "session.no_voice_close_s=2",
                 "--set", "session.idle_close_s=30",
                 "--set", "session.ping_interval_s=1",
                 "--set", "session.max_frame_bytes=4096",
                 "--set", "server.max_sessions=3",
                 "--set", "server.http_port=0")
    st, _, body = http(srv, "GET", "/xiaozhi/ota/")
    c.check(st == 200 and b"ws://127.0.0.1:%d/xiaozhi/v1/" % srv.port
            in body, "GET OTA names the ws URL: %r" % body)
    for b in (b"{}", b"", b"not json",
              b'{"application":{"version":"1.0.0"},"board":{"type":"x"}}'):
        st, _, body = http(srv, "POST", "/xiaozhi/ota", {"Device-Id": "d1"},
                           b)
        o = json.loads(body) if st == 200 else {}
        c.check(st == 200 and "websocket" in o and "server_time" in o,
                "OTA body %r complete" % b)
    st, _, body = http(srv, "GET", "/health")
    c.eq(st, 200, "health 200")

    a, _ = ws_connect(srv, headers={"Device-Id": "aa:00:00:00:00:01"})
    b2, _ = ws_connect(srv, headers={"Device-Id": "aa:00:00:00:00:02"})
    a.send_text(json.dumps({"type": "hello"}))
    b2.send_text(json.dumps({"type": "hello"}))
    ha, hb = recv_json(a), recv_json(b2)
    c.eq(ha["audio_params"]["sample_rate"], 16000, "hello defaults 16000")
    # oversize frame: 1009 for that session only
    a.send_frame(0x2, b"x" * 5000)
    m = recv_json(a, 5)
    while not (isinstance(m, tuple)):
        m = recv_json(a, 5)
    c.eq(wisp_test.ws_close_code(m[1]), 1009, "oversize frame closes 1009")
    a.close()
    # the other session still works; pings arrive (ping_interval_s=1)
    b2.sock.settimeout(5)
    op, f, p = b2.recv_frame()
    c.eq(op, 0x9, "server ping")
    b2.send_frame(0xA, p)
    # max_sessions: 3 open -> the 4th gets 503
    x1, s1 = ws_connect(srv, headers={"Device-Id": "aa:00:00:00:00:03"})
    x2, s2 = ws_connect(srv, headers={"Device-Id": "aa:00:00:00:00:04"})
    x3, s3 = ws_connect(srv, headers={"Device-Id": "aa:00:00:00:00:05"})
    c.check(s1 == 101 and s2 == 101 and s3 == 503,
            "max_sessions: %r" % [s1, s2, s3])
    for x in (x1, x2):
        if x:
            x.close()
    # no voice for 2 s after listen: farewell reply then close 1000
    b2.send_text(json.dumps({"type": "listen", "state": "start",
                             "mode": "auto"}))
    seen, last = until(b2, lambda m: isinstance(m, tuple) and
                       m[0] == "close", 15)
    types = [(m.get("type"), m.get("state")) for m in seen
             if isinstance(m, dict)]
    c.check(("tts", "start") in types and types[-1] == ("tts", "stop"),
            "farewell reply before close: %r" % types)
    c.eq(wisp_test.ws_close_code(last[1]), 1000, "farewell close 1000")
    b2.close()
    rc, err = srv.stop()
    c.eq(rc, 0, "third server stops cleanly")

    # ---- provider cap: one call at a time, no queue: the second device
    # hears "busy" and gets its tts stop; the first is answered normally
    srv = Server(binary, "--set", "log.level=warn",
                 "--set", "pipeline.mode=scripted",
                 "--set", "scripted.delay_ms=1500",
                 "--set", "pipeline.max_concurrent=1",
                 "--set", "pipeline.max_queue=0", threads=1)
    devs = []
    for i in range(2):
        w, _ = ws_connect(srv, headers={"Device-Id": "bb:00:00:00:00:0%d" % i})
        w.send_text(json.dumps({"type": "hello"}))
        recv_json(w)
        devs.append(w)
    for w in devs:
        w.send_text(json.dumps({"type": "listen", "state": "detect",
                                "text": "question"}))
    s1, _ = until(devs[0], is_type("tts", "stop"), 20)
    s2, _ = until(devs[1], is_type("tts", "stop"), 20)
    t1 = [m["text"] for m in s1 if is_type("tts", "sentence_start")(m)]
    t2 = [m["text"] for m in s2 if is_type("tts", "sentence_start")(m)]
    c.eq(t1, ["Hi there.", "How can I help?"], "first device answered")
    c.check(len(t2) == 1 and "busy" in t2[0], "second hears busy: %r" % t2)
    c.check(is_type("tts", "start")(
        [m for m in s2 if isinstance(m, dict)][1]), "busy reply has start")
    st, _, body = http(srv, "GET", "/metrics")
    c.check(b'xiaozhi_provider_busy_total{provider="llm"} 1' in body,
            "busy counted")
    # utterance cap: 60 s of audio kept, frames beyond dropped and counted
    w = devs[0]
    w.send_text(json.dumps({"type": "listen", "state": "start",
                            "mode": "manual"}))
    for i in range(1100):
        w.send_frame(0x2, b"\x58" + bytes([i & 0xff]) * 20)
    w.send_text(json.dumps({"type": "listen", "state": "stop"}))
    st, _, body = http(srv, "GET", "/metrics")
    deadline = time.time() + 10
    while b'reason="utterance_full"} 100\n' not in body and \
            time.time() < deadline:
        time.sleep(0.1)
        st, _, body = http(srv, "GET", "/metrics")
    c.check(b'xiaozhi_frames_dropped_total{reason="utterance_full"} 100\n'
            in body, "100 frames over the 60 s cap dropped and counted")
    for w in devs:
        w.close()
    rc, err = srv.stop()
    c.eq(rc, 0, "fourth server stops cleanly")
    return c.done()


if __name__ == "__main__":
    sys.exit(main())
