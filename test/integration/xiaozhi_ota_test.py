"""xiaozhi-server OTA, firmware and activation: PROTOCOL.md 9 items 1-7,
the advertised WebSocket URL (configured public URL vs derived from Host,
port included) and the second HTTP port.

usage: xiaozhi_ota_test.py path/to/xiaozhi-server   (exit 77 = skipped)
"""
import json
import os
import shutil
import tempfile
import time
import urllib.parse

from xiaozhi_device import (Checks, Device, XServer, http, ota_headers,
                            server_binary)

BIN = server_binary()
check = Checks()


def assert_complete(r, dev_version="2.4.2"):
    """Items 1, 2 (and 3's "complete"): a full 200 OTA answer."""
    assert r.status == 200, r
    assert "application/json" in r.header("content-type", ""), r.headers
    o = r.json()
    st = o.get("server_time")
    assert isinstance(st, dict), o
    ts = st.get("timestamp")
    assert isinstance(ts, (int, float)) and not isinstance(ts, bool), st
    assert abs(ts - time.time() * 1000) < 10000, "timestamp not in ms now"
    tz = st.get("timezone_offset")
    assert isinstance(tz, (int, float)) and not isinstance(tz, bool), st
    ws = o.get("websocket")
    assert isinstance(ws, dict), o
    assert isinstance(ws.get("url"), str) and \
        ws["url"].startswith(("ws://", "wss://")), ws
    assert isinstance(ws.get("token"), str), ws
    assert ws.get("version") in (1, 2, 3), ws
    assert "mqtt" not in o, "mqtt member switches devices to MQTT"
    fw = o.get("firmware")
    assert isinstance(fw, dict), o
    return o


@check
async def test_ota_full_body():
    """Item 1, 2, 5 (no newer firmware): firmware 2.4 request."""
    s = XServer(BIN, "ota.timezone_offset=480")
    try:
        d = Device(s.host, s.port)
        r = await d.ota("full")
        o = assert_complete(r)
        assert o["server_time"]["timezone_offset"] == 480, o
        assert o["firmware"]["version"] == "2.4.2", o["firmware"]
        assert o["firmware"]["url"] == "", o["firmware"]
        assert o["websocket"]["token"] == "", "auth off: empty token"
        assert o["websocket"]["version"] == 1, o["websocket"]
        assert "activation" not in o, "activation is off by default"
        # without the trailing slash too (2.1: SHOULD route both)
        r2 = await d.ota("full", path="/xiaozhi/ota")
        assert_complete(r2)
        # upper-case Device-Id is the same device (7)
        r3 = await d.ota("full", headers={"Device-Id": d.mac.upper()})
        assert_complete(r3)
    finally:
        s.stop()


@check
async def test_ota_body_variants():
    """Item 3: {}, minimal body, empty body, unparsable body."""
    s = XServer(BIN)
    try:
        d = Device(s.host, s.port)
        for body in ("{}", "minimal", "empty", "not json {", "[1,2]"):
            r = await d.ota(body, app_version="1.0.0")
            o = assert_complete(r)
            if body == "minimal":
                assert o["firmware"]["version"] == "1.0.0", o["firmware"]
        # websocket.version follows ota.websocket_version
    finally:
        s.stop()
    s = XServer(BIN, "ota.websocket_version=3")
    try:
        r = await Device(s.host, s.port).ota("full")
        assert assert_complete(r)["websocket"]["version"] == 3
    finally:
        s.stop()


@check
async def test_ota_without_device_id():
    """Item 4: no Device-Id -> 400 with a JSON error (never a 200 without
    websocket); the server keeps answering others."""
    s = XServer(BIN)
    try:
        h = ota_headers("x", "y")
        del h["Device-Id"]
        r = await http(s.host, s.port, "POST", "/xiaozhi/ota/", h, "{}")
        assert r.status != 200 or "websocket" in r.json(), r
        assert r.status == 400, r
        assert isinstance(r.json().get("error"), str), r
        # Device-Id present but empty
        h["Device-Id"] = ""
        r = await http(s.host, s.port, "POST", "/xiaozhi/ota/", h, "{}")
        assert r.status == 400, r
        assert_complete(await Device(s.host, s.port).ota("full"))
    finally:
        s.stop()


@check
async def test_ota_get_and_options():
    """Item 6 and 2.3: GET health text naming the ws URL; OPTIONS with
    CORS on OTA and vision; CORS on the POST answer too."""
    s = XServer(BIN)
    try:
        r = await http(s.host, s.port, "GET", "/xiaozhi/ota/")
        assert r.status == 200, r
        assert "/xiaozhi/v1/" in r.body.decode(), r
        for path in ("/xiaozhi/ota/", "/mcp/vision/explain"):
            r = await http(s.host, s.port, "OPTIONS", path, {
                "Origin": "http://example.test",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "device-id,client-id"})
            assert r.status in (200, 204), (path, r)
            assert r.header("access-control-allow-origin") == "*", r.headers
            allow = r.header("access-control-allow-headers", "").lower()
            for h in ("device-id", "client-id", "authorization",
                      "content-type"):
                assert h in allow, (path, allow)
            meth = r.header("access-control-allow-methods", "").upper()
            assert "POST" in meth and "GET" in meth, meth
        d = Device(s.host, s.port)
        r = await d.ota("full", headers={"Origin": "http://example.test"})
        assert r.header("access-control-allow-origin") == "*", r.headers
    finally:
        s.stop()


@check
async def test_firmware_offer_and_download():
    """Item 5 and 2.5: newer {board}_{version}.bin is offered with a
    numeric version and downloads with 200 + Content-Length; the same
    version is not offered; bad names 400, missing 404."""
    tmp = tempfile.mkdtemp(prefix="xz-fw-")
    try:
        image = os.urandom(70000)
        with open(os.path.join(tmp, "bread-compact-wifi_2.10.1.bin"),
                  "wb") as f:
            f.write(image)
        with open(os.path.join(tmp, "bread-compact-wifi_2.4.1.bin"),
                  "wb") as f:
            f.write(b"old")
        with open(os.path.join(tmp, "other-board_9.9.9.bin"), "wb") as f:
            f.write(b"other")
        s = XServer(BIN, "ota.firmware_dir=" + tmp)
        try:
            d = Device(s.host, s.port)
            o = assert_complete(await d.ota("full", app_version="2.4.2"))
            fw = o["firmware"]
            # 2.10.1 > 2.4.2 numerically (not as strings)
            assert fw["version"] == "2.10.1", fw
            assert all(p.isdigit() for p in fw["version"].split(".")), fw
            u = urllib.parse.urlsplit(fw["url"])
            assert u.scheme in ("http", "https"), fw
            r = await http(s.host, u.port or 80, "GET", u.path)
            assert r.status == 200, r
            assert r.header("content-length") == str(len(image)), r.headers
            assert r.body == image
            # a device already on the newest version: no offer
            o = assert_complete(await d.ota("full", app_version="2.10.1"))
            assert o["firmware"] == {**o["firmware"], "version": "2.10.1",
                                     "url": ""}, o["firmware"]
            # a newer device than any file: its own version, no url
            o = assert_complete(await d.ota("full", app_version="3.0"))
            assert o["firmware"]["version"] == "3.0" and \
                o["firmware"]["url"] == "", o["firmware"]
            base = "/xiaozhi/ota/download/"
            r = await http(s.host, s.port, "GET", base + "missing_1.0.0.bin")
            assert r.status == 404, r
            r = await http(s.host, s.port, "GET", base + "evil name.bin")
            assert r.status == 400, r
            r = await http(s.host, s.port, "GET", base + "x.txt")
            assert r.status == 400, r
            r = await http(s.host, s.port, "GET", base + "..%2F..%2Fetc.bin")
            assert r.status in (400, 403, 404), r
            assert_complete(await d.ota("full"))
        finally:
            s.stop()
    finally:
        shutil.rmtree(tmp)


async def activation_round(s, wrapped):
    d = Device(s.host, s.port)
    o = assert_complete(await d.ota("full"))
    act = o.get("activation")
    assert isinstance(act, dict), o
    for k in ("code", "message", "challenge"):
        assert isinstance(act.get(k), str) and act[k], act
    assert act["code"].isdigit(), act
    # the same code on a repeated OTA check
    o2 = assert_complete(await d.ota("full"))
    assert o2["activation"]["code"] == act["code"], (o2, act)
    h = ota_headers(d.mac, d.client_id, activation_version=2,
                    serial="SN0123456789ABCDEF0123456789ABCD")
    flat = {"algorithm": "hmac-sha256",
            "serial_number": "SN0123456789ABCDEF0123456789ABCD",
            "challenge": act["challenge"], "hmac": "5f" * 32}
    body = {"Payload": flat} if wrapped else flat
    for path in ("/xiaozhi/ota/activate", "/xiaozhi/ota/activate/"):
        r = await http(s.host, s.port, "POST", path, h, json.dumps(body))
        assert r.status == 202, (path, r)
    # version-1 devices send the literal body {}
    r = await http(s.host, s.port, "POST", "/xiaozhi/ota/activate",
                   ota_headers(d.mac, d.client_id), "{}")
    assert r.status == 202, r
    # the user enters the code
    if wrapped:
        r = await http(s.host, s.port, "POST",
                       "/xiaozhi/ota/bind?code=" + act["code"])
    else:
        r = await http(s.host, s.port, "POST", "/xiaozhi/ota/bind",
                       {"Content-Type": "application/json"},
                       json.dumps({"code": act["code"]}))
    assert r.status == 200, r
    assert r.json().get("device_id", "").lower() == d.mac, r
    r = await http(s.host, s.port, "POST", "/xiaozhi/ota/activate", h,
                   json.dumps(body))
    assert r.status == 200, r
    o3 = assert_complete(await d.ota("full"))
    assert "activation" not in o3, o3


@check
async def test_activation_flow():
    """Item 7: flat and Payload-wrapped bodies, 202 until bound, 200 after,
    no activation member once bound; unknown codes refused."""
    s = XServer(BIN, "activation.enabled=true")
    try:
        await activation_round(s, wrapped=False)
        await activation_round(s, wrapped=True)
        r = await http(s.host, s.port, "POST",
                       "/xiaozhi/ota/bind?code=0000001")
        assert r.status == 404, r
        r = await http(s.host, s.port, "POST", "/xiaozhi/ota/bind")
        assert r.status == 400, r
        r = await http(s.host, s.port, "POST", "/xiaozhi/ota/bind",
                       {"Content-Type": "application/json"}, "nope")
        assert r.status == 400, r
    finally:
        s.stop()
    s = XServer(BIN)                       # activation off: no bind route
    try:
        r = await http(s.host, s.port, "POST", "/xiaozhi/ota/bind?code=1")
        assert r.status == 404, r
    finally:
        s.stop()


@check
async def test_advertised_url():
    """2.2/issue: ws URL derived from Host (port included), or the
    configured public URL verbatim; the upgrade works on the derived URL
    with a Host lacking the port (item 8)."""
    s = XServer(BIN)
    try:
        d = Device(s.host, s.port)
        o = assert_complete(await d.ota("full"))
        assert o["websocket"]["url"] == "ws://127.0.0.1:%d/xiaozhi/v1/" % \
            s.port, o["websocket"]
        o = assert_complete(await d.ota(
            "full", host_header="voice.example.lan:8123"))
        assert o["websocket"]["url"] == \
            "ws://voice.example.lan:8123/xiaozhi/v1/", o["websocket"]
        o = assert_complete(await d.ota("full",
                                        host_header="voice.example.lan"))
        assert o["websocket"]["url"] == "ws://voice.example.lan/xiaozhi/v1/"
        await d.ota("full")
        line = await d.connect()               # Host: 127.0.0.1, no port
        assert line.startswith("HTTP/1.1 101"), line
        assert "sec-websocket-extensions" not in d.upgrade_headers
        await d.hello()
        await d.close()
    finally:
        s.stop()
    pub = "wss://voice.example.org/xz/v1/?x=1"
    s = XServer(BIN, "server.public_ws_url=" + pub)
    try:
        o = assert_complete(await Device(s.host, s.port).ota("full"))
        assert o["websocket"]["url"] == pub, o["websocket"]
    finally:
        s.stop()


@check
async def test_second_port():
    """OTA and vision also on server.http_port (the reference's 8003)."""
    s = XServer(BIN, http_port=True)
    try:
        assert s.http_port and s.http_port != s.port, s.lines
        d = Device(s.host, s.port)
        o = assert_complete(await d.ota("full", port=s.http_port))
        # the ws URL points at the WebSocket port, not the OTA port
        u = urllib.parse.urlsplit(o["websocket"]["url"])
        assert u.port == s.port, o["websocket"]
        r = await http(s.host, s.http_port, "OPTIONS", "/mcp/vision/explain")
        assert r.status in (200, 204), r
        # and the advertised URL works for the upgrade
        d2 = Device(s.host, u.port, mac=d.mac, client_id=d.client_id)
        d2.ws_url = o["websocket"]["url"]
        await d2.connect()
        await d2.hello()
        await d2.close()
    finally:
        s.stop()


if __name__ == "__main__":
    check.run()
