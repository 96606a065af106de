#!/usr/bin/env python3
"""xiaozhi-server limits and the protocol addendum's smaller items, each
case on its own server: MCP tool and page caps (XZ_MCP_MAX_TOOLS,
XZ_MCP_MAX_PAGES), vision token lifetime (PROTOCOL item 32), features.aec
with auto vs realtime listening (§10.2). The 16-pending-call cap and the
provider gate are C unit tests (test/xiaozhi/)."""
import asyncio
import base64
import hashlib
import hmac
import os
import time
import urllib.parse

from xiaozhi_device import (Checks, Device, XServer, default_tools, http,
                            load_opk, server_binary)

BIN = server_binary()
check = Checks(jobs=3)
SPEECH60 = load_opk("speech_16k_60ms.opk")
TTS24 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                     "data", "xiaozhi", "tts_24k_60ms.opk")
SECRET = "limits-test-secret"
# the scripted reply of one sentence plays this whole file
REPLY_PACKETS = len(load_opk("tts_24k_60ms.opk"))


async def ask(d, text):
    """A text turn; the spoken sentences of its reply."""
    n = len(d.msgs)
    await d.listen("detect", text=text)
    await d.wait_reply_done(30, n)
    return [m.obj["text"] for m in d.of_type("tts", n)
            if m.state() == "sentence_start"]


def lists(d):
    return [r for r in d.mcp_requests if r.get("method") == "tools/list"]


@check
async def test_tools_over_128():
    """A device listing 140 tools over 14 pages: the first 128 are
    registered and callable, the rest refused as unknown without a call;
    the server keeps serving another device."""
    s = XServer(BIN)
    try:
        d = Device(s.host, s.port, tools=default_tools(140))
        await d.connect()
        await d.hello()
        await d.wait_for(lambda m: len(lists(d)) >= 14, 20, 0,
                         "14 tools/list pages")
        assert await ask(d, "plain turn"), "no reply"
        assert len(lists(d)) == 14, len(lists(d))
        for i in (3, 64, 127):
            got = await ask(d, "mcp:self.board.tool_%02d {}" % i)
            assert got == ["true"], (i, got)
        ncalls = len(d.mcp_requests)
        for i in (128, 139):
            got = await ask(d, "mcp:self.board.tool_%d {}" % i)
            assert got == ["tool error: unknown tool"], (i, got)
        assert len(d.mcp_requests) == ncalls, d.mcp_requests[ncalls:]
        o = Device(s.host, s.port)
        await o.connect()
        await o.hello()
        assert await ask(o, "other device"), "other device not served"
        await o.close()
        await d.close()
        assert s.alive()
    finally:
        s.stop()


@check
async def test_tools_list_16_pages():
    """A device whose tools/list never ends (one tool per page, 40
    pages): the server asks for 16 pages and stops; the tools of those
    pages are usable, the session keeps working."""
    s = XServer(BIN)
    try:
        d = Device(s.host, s.port, tools=default_tools(40), page_bytes=1)
        await d.connect()
        await d.hello()
        await d.wait_for(lambda m: len(lists(d)) >= 16, 20, 0,
                         "16 tools/list requests")
        assert await ask(d, "plain turn"), "no reply"
        assert len(lists(d)) == 16, len(lists(d))
        assert await ask(d, "mcp:self.board.tool_15 {}") == ["true"]
        assert await ask(d, "mcp:self.board.tool_16 {}") == \
            ["tool error: unknown tool"]
        assert len(lists(d)) == 16, len(lists(d))
        await d.close()
        assert s.alive()
    finally:
        s.stop()


def vision_token(device, exp):
    msg = "vision|%s|%d" % (device, exp)
    mac = hmac.new(SECRET.encode(), msg.encode(), hashlib.sha256).digest()
    sig = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    return "%s.%d" % (sig, exp)


@check
async def test_vision_token_lifetime():
    """Item 32: the initialize token lives about an hour; a token past
    its expiry gets 401 even with a valid signature; a token made for
    another device gets 401; a stretched expiry (signature of another
    time) gets 401; the same upload with a live token is answered."""
    s = XServer(BIN, "auth.secret=" + SECRET)
    try:
        d = Device(s.host, s.port)
        await d.connect()
        await d.hello()
        init = await d.wait_for(lambda m: m.type() == "mcp" and
                                m.obj["payload"].get("method") ==
                                "initialize", 10, 0, "initialize")
        vis = init.obj["payload"]["params"]["capabilities"]["vision"]
        u = urllib.parse.urlsplit(vis["url"])
        tok = vis["token"]
        exp = int(tok.rsplit(".", 1)[1])
        now = int(time.time())
        assert now + 3500 <= exp <= now + 3700, (now, exp)
        assert tok == vision_token(d.mac, exp), "token format changed"
        boundary = "----ESP32_CAMERA_BOUNDARY"
        jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 200 + b"\xff\xd9"
        body = (("--%s\r\nContent-Disposition: form-data; name=\"question\""
                 "\r\n\r\nWhat is this?\r\n--%s\r\nContent-Disposition: "
                 "form-data; name=\"file\"; filename=\"c.jpg\"\r\n"
                 "Content-Type: image/jpeg\r\n\r\n") % (boundary, boundary)
                ).encode() + jpeg + ("\r\n--%s--\r\n" % boundary).encode()

        async def post(token, dev=d.mac):
            h = {"Device-Id": dev, "Client-Id": d.client_id,
                 "Content-Type": "multipart/form-data; boundary=" + boundary,
                 "Authorization": "Bearer " + token}
            return await http(s.host, u.port, "POST", u.path, h, body)
        other = "a4:cf:12:00:00:42"
        cases = [
            ("expired", vision_token(d.mac, now - 5), d.mac),
            ("other device's token", vision_token(other, now + 600), d.mac),
            ("issued token, other device", tok, other),
            ("stretched expiry", tok.rsplit(".", 1)[0] + ".%d" % (exp + 999),
             d.mac),
        ]
        for what, token, dev in cases:
            r = await post(token, dev)
            assert r.status == 401, (what, r)
            o = r.json()
            assert o.get("success") is False and o.get("message"), (what, o)
            if what == "expired":
                assert "expired" in o["message"], o
        for token in (tok, vision_token(d.mac, now + 60)):
            r = await post(token)
            assert r.status == 200 and r.json().get("success") is True, r
        await d.close()
    finally:
        s.stop()


async def aec_session(s, mode):
    """A device announcing features.aec, listening in `mode`, talking over
    a scripted reply. Returns (device, index of the reply's start)."""
    d = Device(s.host, s.port)
    await d.connect()
    h = d.hello_msg("full")
    h["features"]["aec"] = True
    n = len(d.msgs)
    await d.send_json(h)
    await d.wait_for(lambda m: m.type() == "hello", 10, n, "hello reply")
    await d.listen("start", mode=mode)
    n = len(d.msgs)
    await d.listen("detect", text="talk to me")
    first = await d.wait_for(lambda m: m.kind == "binary", 30, n,
                             "first reply audio")
    # the user speaks over the reply (an AEC device sends its mic audio)
    await d.send_packets(SPEECH60[:60], pace=False)
    return d, d.msgs.index(first)


def audio_between(d, start, stop_msg):
    return sum(1 for m in d.msgs[start:d.msgs.index(stop_msg)]
               if m.kind == "binary")


@check
async def test_aec_auto_no_barge_in():
    """§10.2: aec:true with mode auto — speech over the reply does not
    interrupt it: the whole reply plays and no new turn starts from it."""
    s = XServer(BIN, "pipeline.mode=scripted", "scripted.tts_file=" + TTS24,
                "scripted.llm_text=One sentence here.")
    try:
        d, i = await aec_session(s, "auto")
        stop = await d.wait_tts("stop", 30, i)
        full = audio_between(d, i, stop)
        want = REPLY_PACKETS
        assert full == want, "auto+aec reply cut: %d of %d packets" % (
            full, want)
        assert not [m for m in d.of_type("stt", i)], d.of_type("stt", i)
        await d.close()
    finally:
        s.stop()


@check
async def test_aec_realtime_barge_in():
    """§10.2: aec:true with mode realtime — speech over the reply stops
    it (tts stop before the reply's end) and the speech becomes the next
    turn (an stt follows)."""
    s = XServer(BIN, "pipeline.mode=scripted", "scripted.tts_file=" + TTS24,
                "scripted.llm_text=One sentence here.")
    try:
        d, i = await aec_session(s, "realtime")
        stop = await d.wait_tts("stop", 30, i)
        cut = audio_between(d, i, stop)
        want = REPLY_PACKETS
        assert cut < want, "realtime reply not interrupted (%d/%d)" % (
            cut, want)
        await d.wait_for(lambda m: m.type() == "stt", 30,
                         d.msgs.index(stop), "stt of the barge-in speech")
        await d.close()
    finally:
        s.stop()


@check
async def test_activation_table_full():
    """The activation table (activation.max_devices, 4,096 by default;
    4 here): one more unknown device gets 503 with Retry-After and no
    config (never an answer without `activation`, which a device takes
    for "activated"); the devices already waiting keep their codes, a
    bound one is served, and OTA without activation is unaffected."""
    s = XServer(BIN, "activation.enabled=true", "activation.max_devices=4")
    try:
        devs = [Device(s.host, s.port) for _ in range(4)]
        codes = []
        for d in devs:
            r = await d.ota("full")
            assert r.status == 200, r
            codes.append(r.json()["activation"]["code"])
        extra = Device(s.host, s.port)
        for _ in range(2):
            r = await extra.ota("full")
            assert r.status == 503, r
            assert r.header("retry-after") == "60", r.headers
            assert "activation" in r.json().get("error", ""), r
        for d, code in zip(devs, codes):        # known devices still served
            r = await d.ota("full")
            assert r.status == 200 and \
                r.json()["activation"]["code"] == code, r
        r = await http(s.host, s.port, "POST",
                       "/xiaozhi/ota/bind?code=" + codes[0])
        assert r.status == 200, r
        r = await devs[0].ota("full")
        assert r.status == 200 and "activation" not in r.json(), r
        assert r.json()["websocket"]["url"], r
        # the bound device keeps its place: the table is still full
        r = await extra.ota("full")
        assert r.status == 503, r
        assert s.alive()
    finally:
        s.stop()
    s = XServer(BIN, "activation.max_devices=1")   # activation off
    try:
        for _ in range(3):
            r = await Device(s.host, s.port).ota("full")
            assert r.status == 200 and "activation" not in r.json(), r
    finally:
        s.stop()


if __name__ == "__main__":
    check.run()
