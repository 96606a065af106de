#!/usr/bin/env python3
"""The static xiaozhi-server runs in an empty root (docs/deploy.md).

argv[1]: xiaozhi-server. argv[2]: the appliance configuration
(deploy/appliance.ini). The root holds the binary and its config and
nothing else: no libc, no /etc, no /dev, no /proc. The server starts
from it, answers a firmware-style OTA POST, shows a bad request its 400
while that client is still served, and stops cleanly on SIGTERM.

Skips (77) when the binary is dynamically linked (only a build with
-Ddefault_library=static -Dstatic_programs=true makes a static one: CI's
musl stage) or when this process may not chroot (not root, and no user
namespace to become root in)."""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

binary, ini = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def is_static(path):
    """True when the ELF file has no program interpreter (PT_INTERP)."""
    with open(path, "rb") as f:
        h = f.read(64)
        if h[:4] != b"\x7fELF" or h[4] != 2:
            return False
        phoff, = struct.unpack_from("<Q", h, 32)
        phentsize, phnum = struct.unpack_from("<HH", h, 54)
        f.seek(phoff)
        for _ in range(phnum):
            ph = f.read(phentsize)
            if struct.unpack_from("<I", ph, 0)[0] == 3:  # PT_INTERP
                return False
    return True


if not is_static(binary):
    print("SKIP: %s is dynamically linked (build with -Ddefault_library="
          "static -Dstatic_programs=true)" % binary)
    sys.exit(77)

chroot = shutil.which("chroot") or "/usr/sbin/chroot"
prefix = [chroot] if os.geteuid() == 0 else \
    [shutil.which("unshare") or "/usr/bin/unshare", "-r", chroot]
probe = subprocess.run(prefix + ["/", "/bin/true"],
                       capture_output=True)
if probe.returncode != 0:
    print("SKIP: cannot chroot here: " + probe.stderr.decode().strip())
    sys.exit(77)

root = tempfile.mkdtemp(prefix="xz-root-")
proc = None
try:
    shutil.copy(binary, os.path.join(root, "xiaozhi-server"))
    shutil.copy(ini, os.path.join(root, "xiaozhi.ini"))
    check(sorted(os.listdir(root)) == ["xiaozhi-server", "xiaozhi.ini"],
          "the root holds only the binary and its config")

    proc = subprocess.Popen(
        prefix + [root, "/xiaozhi-server", "--config",
                  "/xiaozhi.ini", "--set", "server.host=127.0.0.1",
                  "--set", "server.port=0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={"XIAOZHI_AUTH_SECRET": "chroot-test-secret"})
    port = None
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        if line.startswith("listening on "):
            port = int(line.strip().rsplit(":", 1)[1])
            break
        if not line and proc.poll() is not None:
            break
    check(port is not None, "the server started in the empty root")
    if port is None:
        proc.kill()
        print(proc.stderr.read())
        sys.exit(1)

    def request(raw):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        s.sendall(raw)
        data = b""
        while True:
            b = s.recv(65536)
            if not b:
                break
            data += b
        s.close()
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split(b" ", 2)[1]), body

    # A bad client first: a request line that is not HTTP.
    bad = socket.create_connection(("127.0.0.1", port), timeout=30)
    bad.sendall(b"GARBAGE\r\n\r\n")
    reply = bad.recv(4096)
    check(reply.startswith(b"HTTP/1.1 400"), "a malformed request gets 400")
    bad.close()

    body = json.dumps({
        "version": 2, "uuid": "7f0c5c39-2f0d-4b3e-9a36-5ad0c1f1b1aa",
        "application": {"name": "xiaozhi", "version": "1.6.0"},
        "board": {"type": "bread-compact-wifi"},
        "mac_address": "a0:85:e3:f4:49:34"}).encode()
    status, payload = request(
        b"POST /xiaozhi/ota/ HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
        b"Device-Id: a0:85:e3:f4:49:34\r\n"
        b"Client-Id: 7f0c5c39-2f0d-4b3e-9a36-5ad0c1f1b1aa\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n" % (port, len(body)) + body)
    check(status == 200, "OTA answered 200 (got %d)" % status)
    try:
        ota = json.loads(payload)
    except ValueError:
        ota = {}
    ws = ota.get("websocket", {})
    check(ws.get("url") == "ws://127.0.0.1:%d/xiaozhi/v1/" % port,
          "OTA hands out the WebSocket URL from the Host header")
    check(bool(ws.get("token")), "OTA hands out a token (auth is on)")
    check("timestamp" in ota.get("server_time", {}),
          "OTA carries the server time")
    check(ota.get("firmware", {}).get("version") == "1.6.0",
          "OTA echoes the firmware version")

    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    check(proc.returncode == 0, "SIGTERM stops it with status 0 (got %s: %s)"
          % (proc.returncode, err.strip()[-300:]))
    check("stopped" in out, "it says it stopped")
finally:
    if proc and proc.poll() is None:
        proc.kill()
        proc.wait()
    shutil.rmtree(root, ignore_errors=True)


sys.exit(1 if failures else 0)
