"""Interop with a third-party client: Python's `websockets` (Debian
python3-websockets, run with the system interpreter that has it) against
examples/echo: text, binary, large, fragmented, ping, close codes.
Exits 77 (skipped) when the module is not installed."""
import asyncio
import os
import subprocess
import sys

try:
    import websockets
except ImportError:
    print("ws_interop_py: python websockets not installed; skipped")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wisp_test import Checks, Server  # noqa: E402

c = Checks("ws_interop_py")
ECHO = os.path.join(os.path.dirname(sys.argv[1]), "echo")
srv = Server(ECHO, threads=2)
URL = "ws://127.0.0.1:%d/ws" % srv.port


async def main():
    async with websockets.connect(URL, max_size=1 << 24) as ws:
        await ws.send("héllo wörld ☃")
        c.eq(await ws.recv(), "héllo wörld ☃", "text round trip")
        await ws.send(b"\x00\x01\x02\xff")
        c.eq(await ws.recv(), b"\x00\x01\x02\xff", "binary round trip")
        big = os.urandom(3 << 20)
        await ws.send(big)
        c.check(await ws.recv() == big, "3 MiB binary round trip")
        # A fragmented message: the library sends an iterable as fragments.
        await ws.send(["frag", "mented ", "text"])
        c.eq(await ws.recv(), "fragmented text", "fragmented text")
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        c.check(True, "ping answered with a pong")
        for i in range(100):
            await ws.send("m%d" % i)
        got = [await ws.recv() for _ in range(100)]
        c.eq(got, ["m%d" % i for i in range(100)], "100 messages in order")
        await ws.close(code=4000, reason="done")
        c.eq(ws.close_code, 4000, "close code echoed")
    # The server closes a protocol violation with 1007 (invalid UTF-8),
    # seen by the client as the close code.
    async with websockets.connect(URL) as ws:
        # Bypass the library's own UTF-8 encoding: a raw text frame.
        await ws.write_frame(True, 0x1, b"\xc0\xaf")
        try:
            await asyncio.wait_for(ws.recv(), 5)
        except websockets.ConnectionClosed as e:
            c.eq(e.rcvd.code if e.rcvd else None, 1007,
                 "invalid UTF-8 -> 1007")


asyncio.run(main())
rc, err = srv.stop()
c.eq(rc, 0, "server exits 0 (stderr: %s)" % err[-1500:])
c.done()
