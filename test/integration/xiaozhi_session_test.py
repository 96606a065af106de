"""xiaozhi-server WebSocket sessions: PROTOCOL.md 9 items 8-37 and the
section 10 addendum, played by scripted devices (xiaozhi_device.py).

usage: xiaozhi_session_test.py path/to/xiaozhi-server   (exit 77 = skipped)
Run one test: XZ_ONLY=test_abort xiaozhi_session_test.py BIN
"""
import asyncio
import json
import os
import struct
import time
import urllib.parse

from xiaozhi_device import (Checks, Device, UpgradeRefused, XServer,
                            check_session, http, load_opk, opus_duration_ms,
                            server_binary)

BIN = server_binary()
# Three cases at a time: each has its own server and spends most of its
# time in real-time audio (one after another they took 3.5 minutes).
check = Checks(jobs=3)

SPEECH60 = load_opk("speech_16k_60ms.opk")     # speech then 2 s DTX silence
SPEECH20 = load_opk("speech_16k_20ms.opk")
SILENCE60 = load_opk("silence_16k_60ms.opk")
TTS24 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                     "data", "xiaozhi", "tts_24k_60ms.opk")


def no_problems(dev, **kw):
    bad = check_session(dev, **kw)
    assert not bad, "\n".join(bad) + "\nmessages: %r" % dev.msgs[-30:]


def reply_audio(dev, start=0):
    """Payloads of the audio of the last reply (from msgs[start:])."""
    out, inside = [], False
    for m in dev.msgs[start:]:
        if m.type() == "tts" and m.state() == "start":
            out, inside = [], True
        elif m.type() == "tts" and m.state() == "stop":
            inside = False
        elif m.kind == "binary" and inside:
            out.append(m.payload)
    return out


async def ready(s, version=1, variant="full", **kw):
    """OTA, connect with headers, hello: a device ready for a turn."""
    d = Device(s.host, s.port, version=version, **kw)
    await d.ota("full")
    await d.connect()
    await d.hello(variant)
    return d


async def manual_turn(d, packets, pace=False, frame_ms=60):
    n = len(d.msgs)
    await d.listen("start", mode="manual")
    await d.send_packets(packets, pace=pace, frame_ms=frame_ms)
    await d.listen("stop")
    stt = await d.wait_for(lambda m: m.type() == "stt", 30, n, "stt")
    await d.wait_reply_done(30, n)
    return stt, n


# ---------------------------------------------------------------- connect

@check
async def test_headers_and_query_params():
    """Items 8, 10: upgrade with headers (Host without port, HTTP/1.1 101,
    no compression) and with device-id/client-id query parameters
    (browser); missing Device-Id everywhere -> 400; plain GET -> 200."""
    s = XServer(BIN)
    try:
        d = Device(s.host, s.port)
        await d.ota("full")
        line = await d.connect(headers={
            "Sec-WebSocket-Extensions": "permessage-deflate"})
        assert line.startswith("HTTP/1.1 101"), line
        assert "sec-websocket-extensions" not in d.upgrade_headers, \
            "the server must not compress"
        assert "sec-websocket-protocol" not in d.upgrade_headers
        await d.hello()
        await d.close()
        q = Device(s.host, s.port)
        await q.connect(query=True)
        h = await q.hello("browser")
        assert h.obj["transport"] == "websocket"
        await q.close()
        # query parameters on the handed-out URL (a URL with a query string)
        q2 = Device(s.host, s.port)
        await q2.connect(path="/xiaozhi/v1?x=1", query=True)
        await q2.hello("bare")
        await q2.close()
        # headers take precedence over the query
        both = Device(s.host, s.port)
        await both.connect(extra_query={"device-id": "zz:zz"})
        await both.hello()
        await both.close()
        for kw in ({"device_id": ""}, {"device_id": "", "query": True}):
            n = Device(s.host, s.port)
            try:
                await n.connect(**kw)
                raise AssertionError("upgrade without Device-Id accepted")
            except UpgradeRefused as e:
                assert e.status == 400, e
        r = await http(s.host, s.port, "GET", "/xiaozhi/v1/")
        assert r.status == 200, r
    finally:
        s.stop()


@check
async def test_auth():
    """Item 9: with auth on, no/invalid token -> 401; allow-listed device
    without a token -> 101; an OTA token works for its device (header or
    query form) and is refused for another Device-Id or Client-Id."""
    allowed = "a4:cf:12:00:00:01"
    s = XServer(BIN, "auth.enabled=true", "auth.secret=s3cret",
                "auth.allowed_devices=%s,a4:cf:12:00:00:02" % allowed)
    try:
        d = Device(s.host, s.port)
        r = await d.ota("full")
        tok = r.json()["websocket"]["token"]
        assert tok, "auth on: OTA must issue a token"
        for bad in ("", "garbage", tok[:-1] + ("A" if tok[-1] != "A"
                                                 else "B")):
            x = Device(s.host, s.port, mac=d.mac, client_id=d.client_id)
            try:
                await x.connect(token=bad)
                raise AssertionError("accepted token %r" % bad)
            except UpgradeRefused as e:
                assert e.status == 401, e
        await d.connect()                         # Authorization: Bearer
        await d.hello()
        q = Device(s.host, s.port, mac=d.mac, client_id=d.client_id)
        q.token = tok
        await q.connect(query=True)               # ?authorization=Bearer..
        await q.hello("browser")
        other = Device(s.host, s.port)            # another Device-Id
        try:
            await other.connect(token=tok)
            raise AssertionError("token accepted for another device")
        except UpgradeRefused as e:
            assert e.status == 401, e
        other2 = Device(s.host, s.port, mac=d.mac)  # another Client-Id
        try:
            await other2.connect(token=tok)
            raise AssertionError("token accepted for another client id")
        except UpgradeRefused as e:
            assert e.status == 401, e
        a = Device(s.host, s.port, mac=allowed.upper())
        r = await a.ota("full")
        assert r.json()["websocket"]["token"] == "", \
            "allow-listed devices get an empty token"
        await a.connect()
        await a.hello()
        # the sessions that got in still work
        await d.listen("detect", text="are you there")
        await d.wait_reply_done()
        no_problems(d)
        for x in (d, q, a):
            await x.close()
    finally:
        s.stop()
    s = XServer(BIN)                              # auth off: no token needed
    try:
        d = Device(s.host, s.port)
        await d.connect(token="whatever")
        await d.hello()
        await d.close()
    finally:
        s.stop()


@check
async def test_hello_variants():
    """Items 11, 12 and 10.6: every hello variant is answered (within the
    device's 10 s; the 1 s target is a latency, measured by
    bench/xiaozhi.sh, not judged on a loaded test machine) with
    type/transport/session_id/audio_params; the announced rate and
    frame equal what the server then sends (echo: the uplink's; scripted:
    audio.downlink_*)."""
    s = XServer(BIN)
    try:
        for variant in ("full", "bare", "camel", "browser", "desktop"):
            d = Device(s.host, s.port)
            await d.connect(query=(variant == "browser"))
            h = await d.hello(variant, timeout=10)
            if d.hello_latency >= 1.0:
                print("    slow hello (%s): %.2f s" % (variant, d.hello_latency))
            o = h.obj
            assert o.get("transport") == "websocket", o
            assert isinstance(o.get("session_id"), str) and o["session_id"]
            ap = o.get("audio_params")
            assert isinstance(ap, dict), o
            want = 20 if variant == "desktop" else 60
            assert ap.get("sample_rate") == 16000, (variant, ap)
            assert ap.get("frame_duration") == want, (variant, ap)
            assert ap.get("format", "opus") == "opus", ap
            # a second hello on the same connection is answered again
            n = len(d.msgs)
            await d.send_json(d.hello_msg(variant))
            await d.wait_for(lambda m: m.type() == "hello", 10, n, "hello 2")
            # echo: the announced frame duration is what comes back
            pk = SPEECH20 if variant == "desktop" else SPEECH60
            await manual_turn(d, pk[:30], frame_ms=want)
            got = reply_audio(d)
            assert got, "echo reply without audio"
            assert {opus_duration_ms(p) for p in got if len(p) > 2} == \
                {want}, (variant, {opus_duration_ms(p) for p in got})
            no_problems(d, pace=False)
            await d.close()
        sids = set()
        for _ in range(3):
            d = Device(s.host, s.port)
            await d.connect()
            sids.add((await d.hello()).obj["session_id"])
            await d.close()
        assert len(sids) == 3, "session ids must differ"
    finally:
        s.stop()
    s = XServer(BIN, "pipeline.mode=scripted",
                "audio.downlink_sample_rate=24000", "scripted.tts_file=" + TTS24)
    try:
        d = Device(s.host, s.port)
        await d.connect()
        h = await d.hello("full")
        assert h.obj["audio_params"]["sample_rate"] == 24000, h.obj
        assert h.obj["audio_params"]["frame_duration"] == 60, h.obj
        await d.listen("detect", text="tell me something")
        await d.wait_reply_done()
        assert {opus_duration_ms(p) for p in reply_audio(d)} == {60}
        no_problems(d)
        await d.close()
    finally:
        s.stop()


@check
async def test_hello_timeout_and_no_reply_before_listen():
    """Item 17 (no reply before the first listen) and hello_timeout_ms: a
    connection that never says hello is closed; audio sent before any
    listen gets no reply."""
    s = XServer(BIN, "session.hello_timeout_ms=1500")
    s2 = None
    try:
        d = Device(s.host, s.port)
        await d.connect()
        m = await d.wait_closed(20)
        assert m.kind in ("close", "eof")
        # the rest on a server with the default hello timeout: a device
        # slowed by a loaded machine must not meet the 1.5 s one
        s2 = XServer(BIN)
        e = Device(s2.host, s2.port)
        await e.connect()
        await e.hello()
        await e.send_packets(SPEECH60, pace=False)
        # then a normal turn: nothing of the earlier audio leaks into it
        await e.listen("detect", text="hello there")
        stt = await e.wait_for(lambda m: m.type() == "stt", 20, 0, "stt")
        assert stt.obj.get("text") == "hello there", stt
        await e.wait_reply_done()
        no_problems(e)
        await e.close()
    finally:
        s.stop()
        if s2:
            s2.stop()


# ---------------------------------------------------------------- turns

async def framing_turn(s, version):
    d = Device(s.host, s.port, version=version)
    await d.ota("full")
    await d.connect()
    h = await d.hello()
    assert h.obj["audio_params"]["frame_duration"] == 60
    sent = SPEECH60[:40]
    await manual_turn(d, sent)
    got = reply_audio(d)
    # echo: exactly our packets back, in order, each with an exact header
    assert got == sent, (version, len(got), len(sent))
    for m in d.msgs:
        if m.kind == "binary":
            hl = {1: 0, 2: 16, 3: 4}[version]
            assert len(m.data) == hl + len(m.payload)
            if version == 2:
                assert m.data[:2] == b"\x00\x02" and m.data[2:4] == b"\0\0"
                assert struct.unpack(">I", m.data[12:16])[0] == len(m.payload)
            if version == 3:
                assert m.data[0] == 0 and \
                    struct.unpack(">H", m.data[2:4])[0] == len(m.payload)
    no_problems(d, pace=False)
    return d


@check
async def test_framing_versions():
    """Items 13-16: a full turn with audio both ways in framing 1, 2, 3;
    downlink headers exact (version 2 type 0 / type 0, payload sizes);
    uplink frames with a wrong payload_size are dropped, not fatal; in
    v1 20/40/60 ms, DTX-size and malformed packets keep the session."""
    s = XServer(BIN)
    try:
        for v in (1, 2, 3):
            d = await framing_turn(s, v)
            if v in (2, 3):
                # a frame whose payload_size lies: dropped, session lives
                bad = bytearray(d.version == 2 and
                                struct.pack(">HHIII", 2, 0, 0, 0, 500) or
                                struct.pack(">BBH", 0, 0, 500)) + SPEECH60[10]
                n = len(d.msgs)
                await d.listen("start", mode="manual")
                await d.send_raw(2, bytes(bad))
                await d.send_packets(SPEECH60[5:15])
                await d.listen("stop")
                await d.wait_reply_done(30, n)
                assert reply_audio(d, n) == SPEECH60[5:15], v
            await d.close()
        # v1: mixed durations, DTX, malformed, zero-length frames (10.6)
        d = Device(s.host, s.port)
        await d.connect()
        await d.hello()
        n = len(d.msgs)
        await d.listen("start", mode="manual")
        await d.send_packets(SPEECH20[20:30])             # 20 ms
        await d.send_audio(b"\x50" + b"\x11" * 40)        # 40 ms SILK WB
        await d.send_packets(SPEECH60[10:20])             # 60 ms
        await d.send_audio(b"\x48")                       # DTX, 1 byte
        await d.send_audio(b"\xff\x00")                   # code 3, 0 frames
        await d.send_audio(b"")                           # 10.6 zero-length
        await d.listen("stop")
        await d.wait_reply_done(30, n)
        assert not d.closed
        # the session still serves a normal turn
        await manual_turn(d, SPEECH60[:20])
        no_problems(d, pace=False)
        await d.close()
    finally:
        s.stop()


@check
async def test_auto_mode_end_of_utterance():
    """Items 22, 10.1: auto mode, no listen detect (boards without wake
    word audio), speech then DTX silence at real-time pace: the server ends
    the utterance by itself (stt without listen stop) and replies; the
    device's next listen start starts the next turn."""
    s = XServer(BIN)
    try:
        d = Device(s.host, s.port)
        await d.connect()
        await d.hello()
        for turn in range(2):
            n = len(d.msgs)
            await d.listen("start", mode="auto")
            stop = asyncio.Event()

            async def talk():
                await d.send_packets(SPEECH60, pace=True)
                # keep sending silence until the server reacts
                while not stop.is_set() and not d.closed:
                    await d.send_packets(SILENCE60[4:], pace=True)
            t = asyncio.ensure_future(talk())
            try:
                stt = await d.wait_for(lambda m: m.type() == "stt", 30, n,
                                       "stt (auto end of utterance)")
            finally:
                stop.set()
            await t
            assert not any(x[1] == "json" and x[2].get("state") == "stop"
                           for x in d.sent), "sent no listen stop"
            assert isinstance(stt.obj.get("text"), str) and stt.obj["text"]
            await d.wait_reply_done(30, n)
            got = reply_audio(d, n)
            assert len(got) >= 10, "echo of the utterance: %d" % len(got)
        no_problems(d)
        await d.close()
    finally:
        s.stop()


@check
async def test_manual_and_listen_start_clears():
    """Items 23, 25: manual mode waits for listen stop and recognises the
    audio since listen start; a new listen start drops what came before
    it (echo: only the second batch comes back)."""
    s = XServer(BIN)
    try:
        d = Device(s.host, s.port)
        await d.connect()
        await d.hello()
        n = len(d.msgs)
        await d.listen("start", mode="manual")
        await d.send_packets(SPEECH60[5:25], pace=True)
        # no stt while the button is held, even across a long pause
        # (checked below: the stt comes after our listen stop)
        await d.listen("start", mode="manual")          # clears the buffer
        b = SPEECH60[30:45]
        await d.send_packets(b, pace=False)
        t_stop = time.monotonic()
        await d.listen("stop")
        stt = await d.wait_for(lambda m: m.type() == "stt", 30, n, "stt")
        assert stt.t >= t_stop, "stt before listen stop in manual mode"
        await d.wait_reply_done(30, n)
        assert reply_audio(d, n) == b, "only audio after the last start"
        # detect also clears (4.1)
        n = len(d.msgs)
        await d.listen("start", mode="manual")
        await d.send_packets(SPEECH60[5:15])
        await d.listen("detect", text="hi")   # wake phrase or text: a reply
        await d.wait_reply_done(30, n)
        n = len(d.msgs)
        await d.listen("start", mode="manual")
        await d.send_packets(SPEECH60[50:60])
        await d.listen("stop")
        await d.wait_reply_done(30, n)
        assert reply_audio(d, n) == SPEECH60[50:60]
        no_problems(d, pace=False)
        await d.close()
    finally:
        s.stop()


@check
async def test_detect_text_and_scripted_reply():
    """Items 18, 24, 26, 19, 20: listen detect with text -> stt (that
    text), tts start, llm (emotion), sentence_start per sentence, paced
    audio, tts stop after the last packet; the browser client's listen
    without session_id works the same."""
    s = XServer(BIN, "pipeline.mode=scripted", "scripted.tts_file=" + TTS24,
                "scripted.llm_text=Hi there. It is sunny! Anything else?",
                "scripted.emotion=winking")
    try:
        d = Device(s.host, s.port)
        await d.connect()
        await d.hello()
        await d.listen("start", mode="auto")
        n = len(d.msgs)
        await d.listen("detect", text="what is the weather")
        stop = await d.wait_reply_done(60, n)
        stt = d.of_type("stt", n)
        assert [m.obj["text"] for m in stt] == ["what is the weather"], stt
        llm = d.of_type("llm", n)
        assert len(llm) == 1 and llm[0].obj["emotion"] == "winking", llm
        sents = [m.obj["text"] for m in d.of_type("tts", n)
                 if m.state() == "sentence_start"]
        assert sents == ["Hi there.", "It is sunny!", "Anything else?"], sents
        audio = [m for m in d.msgs[n:] if m.kind == "binary"]
        assert len(audio) == 3 * len(load_opk(TTS24)), len(audio)
        # 20: stop after the last packet, with a drain delay (reported)
        drain = stop.t - audio[-1].t
        assert drain >= 0
        print("    drain before tts stop: %.0f ms" % (drain * 1000))
        no_problems(d)
        # browser-style: no session_id on listen
        b = Device(s.host, s.port)
        await b.connect(query=True)
        await b.hello("browser")
        await b.listen("detect", text="hello", with_sid=False)
        await b.listen("start", mode="auto", with_sid=False)
        await b.wait_reply_done(60)
        no_problems(b)
        await d.close()
        await b.close()
    finally:
        s.stop()


@check
async def test_abort_mid_speech():
    """Item 21: abort while audio is playing -> tts stop within 200 ms of
    sending the abort (the protocol's own bound), no audio after it, the
    next utterance answered normally."""
    s = XServer(BIN, "pipeline.mode=scripted", "scripted.tts_file=" + TTS24,
                "scripted.delay_ms=1500",
                "scripted.llm_text=One sentence here. And a second one.")
    try:
        d = Device(s.host, s.port)
        await d.connect()
        await d.hello()
        await d.listen("start", mode="auto")
        n = len(d.msgs)
        await d.listen("detect", text="talk to me")
        first = await d.wait_for(lambda m: m.kind == "binary", 60, n,
                                 "first audio packet")
        # let some audio flow, then press the button
        await d.wait_for(lambda m: m.kind == "binary" and m is not first,
                         30, d.msgs.index(first) + 1, "second packet")
        t_abort = await d.abort()
        stop = await d.wait_tts("stop", 10, d.msgs.index(first))
        dt = (stop.t - t_abort) * 1000
        print("    abort -> tts stop: %.1f ms" % dt)
        assert dt <= 200, "tts stop %.0f ms after abort" % dt
        # no audio of that reply after the stop: wait for the next reply
        # and check nothing binary arrived in between
        i = d.msgs.index(stop)
        await d.listen("start", mode="auto")
        n2 = len(d.msgs)
        await d.listen("detect", text="second question")
        await d.wait_reply_done(60, n2)
        between = [m for m in d.msgs[i + 1:]
                   if m.type() == "tts" and m.state() == "start"]
        j = d.msgs.index(between[0])
        late = [m for m in d.msgs[i + 1:j] if m.kind == "binary"]
        assert not late, "%d packets after tts stop" % len(late)
        stt2 = d.of_type("stt", n2)
        assert stt2 and stt2[-1].obj["text"] == "second question"
        audio2 = [m for m in d.msgs[n2:] if m.kind == "binary"]
        assert len(audio2) == 2 * len(load_opk(TTS24)), len(audio2)
        # abort when nothing is playing: harmless
        await d.abort(reason="wake_word_detected")
        await d.listen("detect", text="third")
        await d.wait_reply_done(60, len(d.msgs) - 1)
        no_problems(d)
        await d.close()
    finally:
        s.stop()


@check
async def test_provider_queue_full():
    """A provider cap with a full queue (pipeline.max_concurrent=1,
    max_queue=0, slow scripted providers): the turn that finds no room
    gets a clear spoken answer (tts start, a sentence, tts stop), the
    session stays, and the first turn is answered normally."""
    s = XServer(BIN, "pipeline.mode=scripted", "pipeline.max_concurrent=1",
                "pipeline.max_queue=0", "scripted.delay_ms=3000",
                "server.threads=1")
    try:
        a, b = Device(s.host, s.port), Device(s.host, s.port)
        for d in (a, b):
            await d.connect()
            await d.hello()
        await a.listen("detect", text="first in line")
        await a.wait_for(lambda m: m.type() == "stt", 20, 0, "stt of a")
        await b.listen("detect", text="no room for me")
        await b.wait_reply_done(30)
        sents = [m.obj["text"] for m in b.of_type("tts")
                 if m.state() == "sentence_start"]
        assert sents and "busy" in sents[0].lower(), sents
        await a.wait_reply_done(30)
        sents = [m.obj["text"] for m in a.of_type("tts")
                 if m.state() == "sentence_start"]
        assert sents and "busy" not in " ".join(sents).lower(), sents
        assert not b.closed
        # once the permit is free, b is served normally
        n = len(b.msgs)
        await b.listen("detect", text="my turn now")
        await b.wait_reply_done(30, n)
        assert [m.obj["text"] for m in b.of_type("stt", n)] == ["my turn now"]
        no_problems(a)
        no_problems(b)
        await a.close()
        await b.close()
    finally:
        s.stop()


# ---------------------------------------------------------------- MCP

@check
async def test_mcp():
    """Items 27-30: initialize (integer id, vision url+token), tools/list
    followed through every nextCursor, tools/call of a last-page tool with
    unique integer ids, an error with only `message`, an unanswered call
    failing after mcp.call_timeout_ms without closing; notifications never
    answered; a device without features.mcp gets no MCP."""
    last_tool = "self.board.tool_23"
    s = XServer(BIN, "pipeline.mode=scripted", "mcp.call_timeout_ms=1500",
                "scripted.tool_call=" + last_tool,
                'scripted.tool_args={"level":7}')
    # scripted.tool_call: every scripted turn calls that tool and speaks
    # its result ("tool error: ..." for errors and timeouts)
    ask = "use the tool"
    try:
        d = Device(s.host, s.port)
        await d.connect()
        await d.hello()
        init = await d.wait_for(lambda m: m.type() == "mcp" and
                                m.obj["payload"].get("method") ==
                                "initialize", 10, 0, "mcp initialize")
        p = init.obj["payload"]
        assert p.get("jsonrpc") == "2.0", p
        assert isinstance(p.get("id"), int) and \
            not isinstance(p["id"], bool), p
        vis = p["params"]["capabilities"]["vision"]
        assert urllib.parse.urlsplit(vis["url"]).scheme in ("http", "https")
        assert isinstance(vis.get("token"), str), vis
        # pagination: one tools/list per page, cursors as we handed out
        pages = 0
        want_cursor = ""
        while True:
            m = await d.wait_for(
                lambda m: m.type() == "mcp" and
                m.obj["payload"].get("method") == "tools/list" and
                (m.obj["payload"].get("params") or {}).get("cursor", "") ==
                want_cursor, 15, 0, "tools/list cursor %r" % want_cursor)
            pages += 1
            names = [t["name"] for t in d.tools]
            # recompute the page this request got, to know its nextCursor
            start = names.index(want_cursor) if want_cursor else 0
            size, i = 20, start
            while i < len(d.tools):
                sz = len(json.dumps(d.tools[i]))
                if i > start and size + sz > d.page_bytes:
                    break
                size += sz + 1
                i += 1
            if i >= len(d.tools):
                break
            want_cursor = names[i]
        assert pages >= 3, "fixture should need 3+ pages, got %d" % pages
        # a tool from the last page is callable
        n = len(d.msgs)
        await d.listen("detect", text=ask)
        await d.wait_reply_done(30, n)
        calls = [r for r in d.mcp_requests if r["method"] == "tools/call"]
        assert calls and calls[-1]["params"]["name"] == last_tool, calls
        assert calls[-1]["params"].get("arguments") == {"level": 7}
        sents = [m.obj["text"] for m in d.of_type("tts", n)
                 if m.state() == "sentence_start"]
        assert sents == ["true"], sents
        # error with only message
        d.tool_results[last_tool] = ("error", "Invalid arguments")
        n = len(d.msgs)
        await d.listen("detect", text=ask)
        await d.wait_reply_done(30, n)
        sents = [m.obj["text"] for m in d.of_type("tts", n)
                 if m.state() == "sentence_start"]
        assert sents == ["tool error: Invalid arguments"], sents
        # no reply at all: the call times out, the session stays
        d.tool_results[last_tool] = "no-reply"
        n = len(d.msgs)
        t0 = time.monotonic()
        await d.listen("detect", text=ask)
        await d.wait_reply_done(40, n)
        assert time.monotonic() - t0 >= 1.4, "timeout before 1.5 s"
        sents = [m.obj["text"] for m in d.of_type("tts", n)
                 if m.state() == "sentence_start"]
        assert sents == ["tool error: timeout"], sents
        ids = [r["id"] for r in d.mcp_requests if r["method"] == "tools/call"]
        assert len(ids) == 3 and len(set(ids)) == 3, ids
        assert all(isinstance(i, int) for i in ids), ids
        all_ids = [r["id"] for r in d.mcp_requests
                   if r["method"] != "tools/list"]
        assert len(all_ids) == len(set(all_ids)), all_ids
        # the server's text intent "mcp:TOOL {json}": a tool that was never
        # listed is refused without a call
        n = len(d.msgs)
        ncalls = len(d.mcp_requests)
        await d.listen("detect", text="mcp:self.not_listed {}")
        await d.wait_reply_done(30, n)
        sents = [m.obj["text"] for m in d.of_type("tts", n)
                 if m.state() == "sentence_start"]
        assert sents == ["tool error: unknown tool"], sents
        assert len(d.mcp_requests) == ncalls, d.mcp_requests[ncalls:]
        # notifications: accepted, never answered; session still works
        n = len(d.msgs)
        await d.mcp_notify()
        d.tool_results.pop(last_tool)
        await d.listen("detect", text="after the notification")
        await d.wait_reply_done(30, n)
        for m in d.msgs[n:]:
            if m.type() == "mcp":
                assert "method" in m.obj["payload"], \
                    "server answered a notification: %r" % m
        no_problems(d)
        await d.close()
        # a device without MCP: no initialize, turns still work
        nm = Device(s.host, s.port, mcp=False)
        await nm.connect()
        await nm.hello()
        await nm.listen("detect", text="no mcp here")
        await nm.wait_reply_done(30)
        assert not nm.of_type("mcp"), nm.of_type("mcp")
        await nm.close()
    finally:
        s.stop()


# ---------------------------------------------------------------- vision

JPEG = (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00"
        b"\x00" + b"\x00" * 200 + b"\xff\xd9")


def multipart(parts, boundary="----ESP32_CAMERA_BOUNDARY"):
    out = b""
    for name, filename, ctype, data in parts:
        out += b"--" + boundary.encode() + b"\r\n"
        cd = 'Content-Disposition: form-data; name="%s"' % name
        if filename:
            cd += '; filename="%s"' % filename
        out += cd.encode() + b"\r\n"
        if ctype:
            out += b"Content-Type: " + ctype.encode() + b"\r\n"
        out += b"\r\n" + data + b"\r\n"
    out += b"--" + boundary.encode() + b"--\r\n"
    return out, "multipart/form-data; boundary=" + boundary


@check
async def test_vision():
    """Items 31, 32 and 10.6: chunked multipart (`file`) and non-chunked
    (`image`) uploads with the initialize token answer success; 401 for a
    missing, invalid or other-device token; success:false for a missing
    question, missing/empty image, non-image, image over the limit."""
    s = XServer(BIN, "vision.max_image_bytes=100000")
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
        assert tok, "vision token must be issued"
        port = u.port or 80

        async def post(parts, token=tok, dev=d.mac, chunked=True,
                       boundary="----ESP32_CAMERA_BOUNDARY"):
            body, ctype = multipart(parts, boundary)
            h = {"Device-Id": dev, "Client-Id": d.client_id,
                 "Content-Type": ctype}
            if token is not None:
                h["Authorization"] = "Bearer " + token
            return await http(s.host, port, "POST", u.path, h, body,
                              chunked=chunked, chunk_size=97)
        q = ("question", None, None, b"What is on the table?")
        f = ("file", "camera.jpg", "image/jpeg", JPEG)
        r = await post([q, f])
        assert r.status == 200, r
        o = r.json()
        assert o.get("success") is True and o.get("action") == "RESPONSE" \
            and isinstance(o.get("response"), str) and o["response"], o
        r = await post([q, ("image", "photo.jpg", "image/jpeg", JPEG)],
                       chunked=False, boundary="WebKitFormBoundaryXyZ")
        assert r.status == 200 and r.json().get("success") is True, r
        for token, dev in ((None, d.mac), ("nope", d.mac),
                           (tok, "a4:cf:12:99:99:99")):
            r = await post([q, f], token=token, dev=dev)
            assert r.status == 401, (token, dev, r)
            o = r.json()
            assert o.get("success") is False and \
                isinstance(o.get("message"), str), o
        big = JPEG[:-2] + b"\x00" * 120000 + b"\xff\xd9"
        for parts in ([f],                                   # no question
                      [q],                                   # no image
                      [q, ("file", "camera.jpg", "image/jpeg", b"")],
                      [q, ("file", "x.jpg", "image/jpeg", b"hello world")],
                      [q, ("file", "camera.jpg", "image/jpeg", big)]):
            r = await post(parts)
            assert r.status in (200, 400, 413), (parts[-1][:2], r)
            assert r.json().get("success") is False, (parts[-1][:2], r)
        r = await http(s.host, port, "GET", u.path)
        assert r.status == 200, r
        # still serving
        r = await post([q, f])
        assert r.status == 200 and r.json()["success"] is True, r
        await d.close()
    finally:
        s.stop()


# ---------------------------------------------------------------- errors

@check
async def test_bad_messages_ignored():
    """Item 33: malformed JSON, non-JSON text, JSON without type, a bare
    number, unknown types (and iot, ping) are ignored; the
    connection stays and the next turn is normal."""
    s = XServer(BIN)
    try:
        d = Device(s.host, s.port)
        await d.connect()
        await d.hello()
        for t in ('{"type": "listen", "state": ', "hello there", "42",
                  '{"state":"start"}', '{"type":"frobnicate","x":1}',
                  '{"type":"listen","state":"sideways"}',
                  '{"type":"iot","update":true,"states":[]}',
                  '{"type":"ping"}', "[]",
                  '{"type":7}', "\u00e9\u00e8"):
            await d.send_text(t)
        await manual_turn(d, SPEECH60[10:30])
        assert not d.closed
        no_problems(d, pace=False)
        await d.close()
    finally:
        s.stop()


@check
async def test_oversize_frame_and_others_served():
    """Oversize frame -> close 1009 while another device on the same
    server completes a turn; invalid UTF-8 in a text frame -> 1007 (RFC
    6455), the server keeps serving."""
    s = XServer(BIN, "session.max_frame_bytes=65536")
    try:
        other = Device(s.host, s.port)
        await other.connect()
        await other.hello()
        await other.listen("start", mode="manual")
        talk = asyncio.ensure_future(other.send_packets(SPEECH60[:40],
                                                        pace=True))
        big = Device(s.host, s.port)
        await big.connect()
        await big.hello()
        await big.send_raw(2, b"\x00" * 70000)
        m = await big.wait_closed(15)
        assert m.kind == "close" and m.code == 1009, m
        await talk
        n = len(other.msgs)
        await other.listen("stop")
        await other.wait_reply_done(30, n)
        assert reply_audio(other) == SPEECH60[:40]
        no_problems(other, pace=False)
        # a big text frame too
        big2 = Device(s.host, s.port)
        await big2.connect()
        await big2.hello()
        await big2.send_text('{"type":"listen","x":"' + "a" * 70000 + '"}')
        m = await big2.wait_closed(15)
        assert m.kind == "close" and m.code == 1009, m
        await other.close()
    finally:
        s.stop()


@check
async def test_pings():
    """Item 34 and 10.5: Pings get Pongs with the same payload; the server
    pings (session.ping_interval_s) and our Pong keeps the session."""
    s = XServer(BIN, "session.ping_interval_s=1")
    try:
        d = Device(s.host, s.port)
        await d.connect()
        await d.hello()
        for payload in (b"", b"x", b"0123456789" * 12):
            n = len(d.msgs)
            await d.ping(payload)
            m = await d.wait_for(lambda m: m.kind == "pong", 10, n, "pong")
            assert m.data == payload, m
        p1 = await d.wait_for(lambda m: m.kind == "ping", 10, 0,
                              "server ping")
        await d.wait_for(lambda m: m.kind == "ping", 10,
                         d.msgs.index(p1) + 1, "second server ping")
        await manual_turn(d, SPEECH60[10:20])
        no_problems(d, pace=False)
        await d.close()
    finally:
        s.stop()


@check
async def test_abrupt_close():
    """Item 35: TCP dropped without a Close frame (mid-reply and idle);
    the server releases the session and serves new sessions; /health
    stays 200."""
    s = XServer(BIN, "pipeline.mode=scripted", "scripted.tts_file=" + TTS24)
    try:
        # "listening": the device's last packets and its RST reach the
        # server in one event; the server must read past the data to see
        # the reset (found by this test: src/net/conn.c on_readable).
        for when in ("idle", "listening", "speaking"):
            d = Device(s.host, s.port)
            await d.connect()
            await d.hello()
            if when == "listening":
                await d.listen("start", mode="manual")
                await d.send_packets(SPEECH60[:10])
            elif when == "speaking":
                await d.listen("detect", text="long answer please")
                await d.wait_for(lambda m: m.kind == "binary", 30, 0, "audio")
            d.abrupt_close()
        r = await http(s.host, s.port, "GET", "/health")
        assert r.status == 200, r
        e = Device(s.host, s.port)
        await e.connect()
        await e.hello()
        await e.listen("detect", text="new session")
        await e.wait_reply_done(60)
        no_problems(e)
        await e.close()
        # the sessions are gone: /metrics counts 0 open device sessions
        # (xiaozhi_sessions{state=...} gauges summed)
        # once e is closed too (poll: the close is asynchronous)
        deadline = time.monotonic() + 10
        while True:
            r = await http(s.host, s.port, "GET", "/metrics")
            assert r.status == 200, r
            lines = [ln for ln in r.body.decode().splitlines()
                     if ln.startswith("xiaozhi_sessions{")]
            total = sum(float(ln.split()[-1]) for ln in lines)
            if lines and total == 0:
                break
            assert time.monotonic() < deadline, \
                "sessions still open: %r" % lines
            await asyncio.sleep(0.1)
    finally:
        s.stop()


@check
async def test_idle_timeouts():
    """Items 36, 37: no voice for session.no_voice_close_s while the
    microphone streams silence -> farewell reply, then Close 1000 after
    the tts stop, nothing after it; no data at all for idle_close_s ->
    Close."""
    s = XServer(BIN, "session.no_voice_close_s=2", "session.idle_close_s=4")
    try:
        d = Device(s.host, s.port)
        await d.connect()
        await d.hello()
        await d.listen("start", mode="auto")
        done = asyncio.Event()

        async def mic():
            while not done.is_set() and not d.closed:
                await d.send_packets(SILENCE60[4:], pace=True)
        t = asyncio.ensure_future(mic())
        try:
            m = await d.wait_closed(30)
        finally:
            done.set()
        await t
        assert m.kind == "close" and m.code == 1000, m
        stops = [x for x in d.msgs if x.type() == "tts" and
                 x.state() == "stop"]
        assert stops and d.msgs.index(stops[-1]) < d.msgs.index(m), \
            "close before the farewell's tts stop"
        no_problems(d, require_stt=False)
        # silent connection: closed by the hard idle timeout
        e = Device(s.host, s.port)
        await e.connect()
        await e.hello()
        t0 = time.monotonic()
        m = await e.wait_closed(30)
        assert m.kind == "close" and m.code == 1000, m
        assert time.monotonic() - t0 >= 1.5, "closed too early"
        no_problems(e, require_stt=False)
    finally:
        s.stop()


if __name__ == "__main__":
    check.run()
