"""The browser page (examples/xiaozhi/www) driven by headless Chromium.

Chromium's fake microphone plays a WAV made here with espeak-ng (speech,
then silence so the server's VAD ends the utterance); the page fetches
OTA, opens the WebSocket, says hello, encodes the microphone with
WebCodecs and sends it; the server's echo pipeline plays it back and the
page decodes it. The page's counters (#stats data attributes) are read
over the DevTools protocol (our own WebSocket client, no Selenium).

usage: xiaozhi_browser_test.py path/to/xiaozhi-server
Skipped (exit 77) when chromium, espeak-ng or sox is missing.
"""
import asyncio
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from xiaozhi_device import (XServer, http, mask_payload, server_binary,
                            skip)

BIN = server_binary()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if not CHROMIUM:
    skip("chromium is not installed (Debian: apt-get install chromium)")
for tool in ("espeak-ng", "sox"):
    if not shutil.which(tool):
        skip(tool + " is not installed (Debian: apt-get install " +
             {"espeak-ng": "espeak-ng", "sox": "sox"}[tool] + ")")


class Cdp:
    """A minimal DevTools-protocol client over a WebSocket."""

    def __init__(self):
        self.next_id = 0
        self.pending = {}
        self.events = []          # console messages and page errors

    async def open(self, url):
        import base64
        import urllib.parse
        u = urllib.parse.urlsplit(url)
        self.reader, self.writer = await asyncio.open_connection(
            u.hostname, u.port)
        key = base64.b64encode(os.urandom(16)).decode()
        self.writer.write((
            "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n" %
            (u.path, u.hostname, u.port, key)).encode())
        head = await self.reader.readuntil(b"\r\n\r\n")
        assert b" 101 " in head.split(b"\r\n")[0], head
        self.task = asyncio.ensure_future(self._reader())

    async def _reader(self):
        r = self.reader
        buf = b""
        while True:
            b0, b1 = await r.readexactly(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(await r.readexactly(2), "big")
            elif n == 127:
                n = int.from_bytes(await r.readexactly(8), "big")
            buf += await r.readexactly(n)
            if not b0 & 0x80:
                continue
            msg, buf = json.loads(buf), b""
            if "id" not in msg:
                self._event(msg)
                continue
            fut = self.pending.pop(msg.get("id"), None)
            if fut and not fut.done():
                fut.set_result(msg)

    def _event(self, msg):
        p = msg.get("params", {})
        if msg.get("method") == "Runtime.consoleAPICalled":
            self.events.append("console.%s: %s" % (p.get("type"), " ".join(
                str(a.get("value", a.get("description", "")))
                for a in p.get("args", []))))
        elif msg.get("method") == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            self.events.append("exception: %s" % (
                d.get("exception", {}).get("description") or d.get("text")))
        elif msg.get("method") == "Log.entryAdded":
            e = p.get("entry", {})
            self.events.append("log.%s: %s" % (e.get("level"), e.get("text")))

    async def call(self, method, **params):
        self.next_id += 1
        mid = self.next_id
        data = json.dumps({"id": mid, "method": method,
                           "params": params}).encode()
        key = os.urandom(4)
        n = len(data)
        head = bytes([0x81])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
        else:
            head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
        fut = asyncio.get_running_loop().create_future()
        self.pending[mid] = fut
        self.writer.write(head + key + mask_payload(data, key))
        await self.writer.drain()
        r = await asyncio.wait_for(fut, 30)
        if "error" in r:
            raise AssertionError("%s: %s" % (method, r["error"]))
        return r["result"]

    async def js(self, expr):
        r = await self.call("Runtime.evaluate", expression=expr,
                            returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise AssertionError("page error: %r" % r["exceptionDetails"])
        return r["result"].get("value")

    def close(self):
        self.task.cancel()
        self.writer.close()


async def stats(cdp):
    return await cdp.js("JSON.stringify(Object.assign({}, "
                        "document.getElementById('stats').dataset))")


async def wait_stats(cdp, pred, what, timeout):
    """Poll the page's counters until pred(stats) holds (failure bound)."""
    deadline = time.monotonic() + timeout
    while True:
        s = json.loads(await stats(cdp))
        if s.get("error"):
            raise AssertionError("page error: %s (%r)" % (s["error"], s))
        if pred(s):
            return s
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s: %r" % (what, s))
        await asyncio.sleep(0.2)


def make_wav(path, tmp):
    raw = os.path.join(tmp, "say.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", raw,
                    "Hello there. This is the browser test speaking."],
                   check=True)
    # 16 kHz mono 16-bit; 0.5 s lead-in, 2.5 s of silence after the speech
    # so that the server's VAD sees the end of the utterance (Chromium
    # loops the file)
    subprocess.run(["sox", raw, "-r", "48000", "-c", "1", "-b", "16", path,
                    "pad", "0.5", "2.5"], check=True)


async def main():
    tmp = tempfile.mkdtemp(prefix="xz-browser-")
    chrome = None
    s = None
    cdp = None
    try:
        wav = os.path.join(tmp, "mic.wav")
        make_wav(wav, tmp)
        s = XServer(BIN)
        r = await http(s.host, s.port, "GET", "/")
        assert r.status == 200 and b"app.js" in r.body, r
        for f in ("/app.js", "/style.css"):
            r = await http(s.host, s.port, "GET", f)
            assert r.status == 200, (f, r)
        page = "http://127.0.0.1:%d/" % s.port
        cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
               "--disable-quic", "--no-first-run",
               "--disable-background-networking",
               "--disable-component-update", "--disable-sync",
               "--user-data-dir=" + os.path.join(tmp, "profile"),
               "--use-fake-ui-for-media-stream",
               "--use-fake-device-for-media-stream",
               "--use-file-for-fake-audio-capture=" + wav,
               "--autoplay-policy=no-user-gesture-required",
               "--remote-debugging-port=0", "about:blank"]
        chrome = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True,
                                  start_new_session=True)
        ws_url = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = await asyncio.get_running_loop().run_in_executor(
                None, chrome.stderr.readline)
            if not line:
                raise AssertionError("chromium exited: %s" % chrome.poll())
            if line.startswith("DevTools listening on "):
                ws_url = line.split()[-1]
                break
        assert ws_url, "chromium printed no DevTools address"
        port = int(ws_url.split(":")[2].split("/")[0])
        # drain chromium's stderr so it never blocks on a full pipe
        loop = asyncio.get_running_loop()
        loop.run_in_executor(None, chrome.stderr.read)
        r = await http("127.0.0.1", port, "GET", "/json/list")
        targets = [t for t in json.loads(r.body) if t.get("type") == "page"]
        assert targets, r.body
        cdp = Cdp()
        await cdp.open(targets[0]["webSocketDebuggerUrl"])
        await cdp.call("Page.enable")
        await cdp.call("Runtime.enable")
        await cdp.call("Log.enable")
        await cdp.call("Page.navigate", url=page)
        deadline = time.monotonic() + 30
        while await cdp.js("document.readyState + ':' + "
                           "!!document.getElementById('stats')") != \
                "complete:true":
            assert time.monotonic() < deadline, "page did not load"
            await asyncio.sleep(0.1)
        secure = await cdp.js("window.isSecureContext")
        assert secure, "127.0.0.1 must be a secure context"
        have = await cdp.js("typeof AudioEncoder + typeof AudioDecoder")
        if have != "functionfunction":
            skip("this Chromium has no WebCodecs audio (%s)" % have)
        dev = await cdp.js("document.getElementById('device-id')"
                           ".textContent")
        assert dev and dev == await cdp.js(
            "localStorage.getItem('xiaozhi.device-id')"), dev
        await cdp.js("document.getElementById('mode').value = 'auto';"
                     "document.getElementById('connect').click(); 1")
        st = await wait_stats(cdp, lambda s: s.get("hello") == "1",
                              "the server hello", 30)
        st = await wait_stats(cdp, lambda s: int(s["sent"]) >= 10,
                              "uplink frames", 30)
        print("after hello:", st)
        st = await wait_stats(cdp, lambda s: int(s["stt"]) >= 1,
                              "an stt (end of utterance)", 90)
        st = await wait_stats(
            cdp, lambda s: int(s["received"]) >= 5 and
            int(s["decoded"]) >= 5 and int(s["replies"]) >= 1,
            "the echo played back", 90)
        print("after the echo:", st)
        log = await cdp.js("Array.from(document.querySelectorAll('#log li'),"
                           " li => li.className + ': ' + li.textContent)"
                           ".join('\\n')")
        print(log)
        assert "user: " in log, log
        # the page went back to listening for the next turn
        await wait_stats(cdp, lambda s: s["state"] == "listening",
                         "listening again", 30)
        # text input: listen detect with text gets a reply too
        n = int(st["replies"])
        await cdp.js("document.getElementById('text').value = 'typed hello';"
                     "document.getElementById('send-text').click(); 1")
        await wait_stats(cdp, lambda s: int(s["replies"]) > n,
                         "a reply to the typed text", 60)
        # push to talk: hold the button for 40 frames, release, hear it
        await wait_stats(cdp, lambda s: s["state"] == "listening",
                         "listening after the typed reply", 30)
        await cdp.js("const m = document.getElementById('mode');"
                     "m.value = 'manual'; m.dispatchEvent(new Event('change'));"
                     "1")
        st = await wait_stats(cdp, lambda s: s["state"] == "connected",
                              "push-to-talk idle", 30)
        n, sent = int(st["replies"]), int(st["sent"])
        await cdp.js("document.getElementById('talk').dispatchEvent("
                     "new PointerEvent('pointerdown')); 1")
        await wait_stats(cdp, lambda s: int(s["sent"]) >= sent + 40,
                         "40 frames while the button is held", 60)
        await cdp.js("document.getElementById('talk').dispatchEvent("
                     "new PointerEvent('pointerup')); 1")
        recv = int(st["received"])
        st = await wait_stats(cdp, lambda s: int(s["replies"]) > n and
                              int(s["received"]) >= recv + 40,
                              "the push-to-talk echo", 60)
        print("after push to talk:", st)
        await cdp.js("document.getElementById('disconnect').click(); 1")
        await wait_stats(cdp, lambda s: s["state"] == "idle", "idle", 30)
        cdp.close()
        cdp = None
        print("browser test passed")
    finally:
        if cdp is not None:
            print("page console and errors:")
            for e in cdp.events:
                print("  " + e)
        if chrome and chrome.poll() is None:
            os.killpg(chrome.pid, signal.SIGTERM)
            try:
                chrome.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(chrome.pid, signal.SIGKILL)
                chrome.wait()
        if s:
            s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
