"""wisp's WebSocket client against Python's websockets server (a
third-party implementation, which refuses unmasked client frames).

argv[1] is the ws_client_test binary; with "py PORT" it runs its echo
exchange (text, a 100 KiB binary message, a fragmented message, a ping,
the close handshake with 1000) against 127.0.0.1:PORT. The server here
echoes every message and checks the path. Exits 77 (skip) when the
websockets package is absent.
"""
import asyncio
import subprocess
import sys

try:
    import websockets
except ImportError:
    print("SKIP: python3-websockets is not installed")
    sys.exit(77)


async def echo(ws, path=None):
    # websockets < 10.1 passes the path; later versions keep it on ws.
    p = path if path is not None else getattr(ws, "path", None)
    if p is None:
        p = ws.request.path
    if p != "/echo":
        await ws.close(4000, "bad path")
        return
    async for msg in ws:
        await ws.send(msg)


async def main():
    server = await websockets.serve(echo, "127.0.0.1", 0, max_size=1 << 20)
    port = server.sockets[0].getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        sys.argv[1], "py", str(port), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    server.close()
    await server.wait_closed()
    sys.stdout.write(out.decode())
    return proc.returncode


sys.exit(asyncio.run(main()))
