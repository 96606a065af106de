"""A scripted xiaozhi device for the xiaozhi-server tests (PROTOCOL.md).

Python standard library only (asyncio streams; the WebSocket client is our
own so that tests control every byte: headers, Host without port, framing
versions, zero-length and oversize frames, pings, abrupt TCP closes).

Pieces:
  XServer            start build/examples/xiaozhi/xiaozhi-server with --port 0
                     and --set options, read its `listening on` lines, stop it.
  http()             one HTTP/1.1 request (Content-Length or chunked body).
  ota_headers(), OTA_BODY_FULL / OTA_BODY_MINIMAL   PROTOCOL.md 2.1.
  Device             one device: OTA, WebSocket upgrade (headers or query
                     parameters), hello variants, listen/abort/mcp messages,
                     audio in framing 1/2/3 paced or fast, a reader that
                     records every message with its arrival time, an MCP
                     server (paginated tools/list, tools/call replies).
  check_session()    the ordering rules of PROTOCOL.md 9 items 16-21 on what
                     a device received; returns a list of violations.
  load_opk()         read a .opk fixture (u16 big-endian length + packet).

Every wait is on an event (a message arriving, a process printing a line)
with a timeout that is only a failure bound.
"""
import asyncio
import base64
import json
import os
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "xiaozhi")

SKIP = 77


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(SKIP)


def server_binary():
    """The server binary from argv[1]; exit 77 when it is absent."""
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        skip("xiaozhi-server binary not given or not built")
    return sys.argv[1]


def load_opk(name):
    """Packets of a .opk fixture (a name under test/data/xiaozhi or a path)."""
    path = name if os.path.sep in name else os.path.join(DATA, name)
    with open(path, "rb") as f:
        d = f.read()
    out, p = [], 0
    while p < len(d):
        (n,) = struct.unpack_from(">H", d, p)
        out.append(d[p + 2:p + 2 + n])
        p += 2 + n
    if p != len(d):
        raise ValueError("truncated .opk file " + path)
    return out


def opus_duration_ms(pkt):
    """Duration of one Opus packet from its TOC (RFC 6716 3.1), in ms."""
    if not pkt:
        return 0.0
    config, code = pkt[0] >> 3, pkt[0] & 3
    if config < 12:
        frame = (10, 20, 40, 60)[config % 4]
    elif config < 16:
        frame = (10, 20)[config % 2]
    else:
        frame = (2.5, 5, 10, 20)[config % 4]
    n = 1 if code == 0 else 2 if code in (1, 2) else (
        (pkt[1] & 63) if len(pkt) > 1 else 0)
    return frame * n


def random_mac():
    return ":".join("%02x" % random.randrange(256) for _ in range(6))


# ---------------------------------------------------------------- server

class XServer:
    """A running xiaozhi-server. `port` (and `http_port` when a second HTTP
    port is on) are the bound ports; `lines` collects stdout lines."""

    def __init__(self, binary, *sets, args=(), http_port=False, env=None,
                 start_timeout=30):
        cmd = [binary, "--host", "127.0.0.1", "--port", "0"]
        for s in sets:
            cmd += ["--set", s]
        if http_port:
            # any free port: the server binds it and prints it
            cmd += ["--set", "server.http_port=%d" % _free_port()]
        cmd += list(args)
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     env=env)
        _procs.append(self.proc)
        self.lines = []
        self.port = None
        self.http_port = None
        want = 2 if http_port else 1
        got = 0
        deadline = time.time() + start_timeout
        while got < want:
            if time.time() > deadline:
                self.kill()
                raise RuntimeError("server did not print `listening on`")
            line = self.proc.stdout.readline()
            if not line:
                err = self.proc.stderr.read()
                raise RuntimeError("server exited (%s): %s" %
                                   (self.proc.wait(), err))
            self.lines.append(line.rstrip("\n"))
            if line.startswith("listening on "):
                url = line.split()[2]
                port = int(url.rsplit(":", 1)[1].rstrip("/"))
                if "(ota, vision)" in line:
                    self.http_port = port
                else:
                    self.port = port
                got += 1
        self.host = "127.0.0.1"
        # Drain both pipes from now on: the server logs every session event
        # to stderr, and a full pipe would block its loop.
        self.err = []
        self._out_start = len(self.lines)
        self._threads = [
            threading.Thread(target=self._drain, args=(self.proc.stdout,
                                                       self.lines),
                             daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr,
                                                       self.err),
                             daemon=True)]
        for t in self._threads:
            t.start()

    @staticmethod
    def _drain(f, sink):
        for line in f:
            sink.append(line.rstrip("\n"))

    def stderr_text(self):
        return "\n".join(self.err)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGTERM, wait; returns (exit status, stdout after the listening
        lines, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError("server did not stop within %ds" % timeout)
        for t in self._threads:
            t.join(timeout=10)
        out = "\n".join(self.lines[self._out_start:])
        return self.proc.returncode, out, self.stderr_text()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


_procs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


import atexit  # noqa: E402
atexit.register(_cleanup)


# ---------------------------------------------------------------- HTTP

class Response:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers          # lower-case name -> value (last)
        self.body = body

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:200])


async def read_head(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    headers = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return lines[0], status, (parts[2] if len(parts) > 2 else ""), headers


async def read_body(reader, status, headers, method="GET"):
    if method == "HEAD" or status in (204, 304) or status < 200:
        return b""
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            line = await reader.readuntil(b"\r\n")
            n = int(line.split(b";")[0], 16)
            if n == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return body
            body += await reader.readexactly(n)
            await reader.readexactly(2)
    return await reader.read()


async def http(host, port, method, path, headers=None, body=b"",
               chunked=False, chunk_size=1024, timeout=15.0,
               host_header=None):
    """One request on a fresh connection. `body` bytes or str; `chunked`
    sends it with Transfer-Encoding: chunked in `chunk_size` pieces."""
    if isinstance(body, str):
        body = body.encode()

    async def go():
        reader, writer = await asyncio.open_connection(host, port)
        try:
            h = {"Host": host_header or "%s:%d" % (host, port),
                 "Connection": "close"}
            h.update(headers or {})
            if chunked:
                h["Transfer-Encoding"] = "chunked"
            elif body or method in ("POST", "PUT"):
                h["Content-Length"] = str(len(body))
            req = "%s %s HTTP/1.1\r\n" % (method, path)
            req += "".join("%s: %s\r\n" % kv for kv in h.items()
                           if kv[1] is not None)
            writer.write(req.encode("latin-1") + b"\r\n")
            if chunked:
                for i in range(0, len(body), chunk_size):
                    piece = body[i:i + chunk_size]
                    writer.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
            else:
                writer.write(body)
            await writer.drain()
            _, status, reason, hdrs = await read_head(reader)
            data = await read_body(reader, status, hdrs, method)
            return Response(status, reason, hdrs, data)
        finally:
            writer.close()
    return await asyncio.wait_for(go(), timeout)


# The example body of PROTOCOL.md 2.1, as firmware 2.4 sends it.
def ota_body_full(mac, client_id, version="2.4.2",
                  board="bread-compact-wifi"):
    return {
        "version": 2, "language": "en-US", "flash_size": 16777216,
        "minimum_free_heap_size": "58872", "mac_address": mac,
        "uuid": client_id, "chip_model_name": "esp32s3",
        "chip_info": {"model": 9, "cores": 2, "revision": 2, "features": 18},
        "application": {"name": "xiaozhi", "version": version,
                        "compile_time": "Aug  8 2026T08:30:00Z",
                        "idf_version": "v5.5.2",
                        "elf_sha256": "9d1c" + "0" * 58 + "e0"},
        "partition_table": [
            {"label": "nvs", "type": 1, "subtype": 2, "address": 36864,
             "size": 16384},
            {"label": "ota_0", "type": 0, "subtype": 16, "address": 131072,
             "size": 4128768}],
        "ota": {"label": "ota_0"},
        "display": {"monochrome": False, "width": 240, "height": 240},
        "board": {"type": board, "name": board, "manufacturer": "xiaozhi",
                  "ssid": "HomeNet", "rssi": -52, "channel": 6,
                  "ip": "192.168.1.57", "mac": mac},
    }


def ota_body_minimal(mac, version="1.0.0", board="bread-compact-wifi"):
    """What the Python desktop client sends."""
    return {"application": {"version": version, "elf_sha256": "ab" * 32},
            "board": {"type": board, "name": board, "ip": "192.168.1.9",
                      "mac": mac}}


def ota_headers(mac, client_id, version="2.4.2", board="bread-compact-wifi",
                activation_version=1, serial=None):
    h = {"Device-Id": mac, "Client-Id": client_id,
         "Activation-Version": str(activation_version),
         "User-Agent": "%s/%s" % (board, version),
         "Accept-Language": "en-US", "Content-Type": "application/json"}
    if serial:
        h["Serial-Number"] = serial
    return h


# ---------------------------------------------------------------- WebSocket

TEXT, BINARY, CLOSE, PING, PONG = 1, 2, 8, 9, 10


class Msg:
    """One received message. kind: 'text' | 'binary' | 'ping' | 'pong' |
    'close' | 'eof'. For text, `obj` is the parsed JSON (None when it is
    not JSON). For binary, `payload` is the Opus packet after the framing
    header and `header_ok` says whether the header was exact."""
    __slots__ = ("t", "kind", "data", "obj", "payload", "header_ok",
                 "code")

    def __init__(self, t, kind, data=b"", obj=None):
        self.t, self.kind, self.data, self.obj = t, kind, data, obj
        self.payload, self.header_ok, self.code = data, True, None

    def type(self):
        return self.obj.get("type") if isinstance(self.obj, dict) else None

    def state(self):
        return self.obj.get("state") if isinstance(self.obj, dict) else None

    def __repr__(self):
        if self.kind == "text":
            return "<%.3f text %s>" % (self.t, self.data[:160])
        if self.kind == "close":
            return "<%.3f close %s>" % (self.t, self.code)
        return "<%.3f %s %d>" % (self.t, self.kind, len(self.data))


class UpgradeRefused(Exception):
    def __init__(self, status, headers, body):
        super().__init__("upgrade refused: %d %r" % (status, body[:200]))
        self.status, self.headers, self.body = status, headers, body


def mask_payload(data, key):
    if not data:
        return data
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^
            int.from_bytes(k, "little")).to_bytes(n, "little")


def ws_frame(opcode, payload, fin=True, mask=True, rsv=0):
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + mask_payload(payload, key)


def frame_audio(version, packet, timestamp=0):
    """Wrap one Opus packet in binary framing version 1, 2 or 3."""
    if version == 2:
        return struct.pack(">HHIII", 2, 0, 0, timestamp, len(packet)) + packet
    if version == 3:
        return struct.pack(">BBH", 0, 0, len(packet)) + packet
    return packet


# MCP tools a device offers: enough of them (with long descriptions) that
# tools/list needs several pages at the firmware's ~8000-byte page size.
def default_tools(n=24):
    tools = [
        {"name": "self.get_device_status",
         "description": "Current device status (volume, screen, battery).",
         "inputSchema": {"type": "object", "properties": {}}},
        {"name": "self.audio_speaker.set_volume",
         "description": "Set the speaker volume.",
         "inputSchema": {"type": "object", "properties": {
             "volume": {"type": "integer", "minimum": 0, "maximum": 100}},
             "required": ["volume"]}},
        {"name": "self.camera.take_photo",
         "description": "Take a photo and answer a question about it.",
         "inputSchema": {"type": "object", "properties": {
             "question": {"type": "string"}}, "required": ["question"]}},
    ]
    for i in range(len(tools), n):
        tools.append({
            "name": "self.board.tool_%02d" % i,
            "description": ("Board tool number %d. " % i) + "x" * 600,
            "inputSchema": {"type": "object", "properties": {
                "level": {"type": "integer", "minimum": 0, "maximum": 10,
                          "default": 5}}}})
    return tools


class Device:
    """One scripted device. Typical use:

        d = Device(server.host, server.port)
        await d.ota()
        await d.connect()
        await d.hello()
        await d.listen("start", mode="auto")
        await d.send_packets(load_opk("speech_16k_60ms.opk"), pace=True)
        await d.wait_reply_done()
        problems = check_session(d)
    """

    def __init__(self, host, port, mac=None, client_id=None, version=1,
                 mcp=True, tools=None, page_bytes=8000, auto_pong=True,
                 mcp_reply=True):
        self.host, self.port = host, port
        self.mac = mac or random_mac()
        self.client_id = client_id or str(uuid.uuid4())
        self.version = version            # binary framing 1/2/3
        self.token = ""
        self.ws_url = None
        self.ota_response = None
        self.reader = self.writer = None
        self.msgs = []                    # every received Msg, in order
        self.sent = []                    # (t, kind, obj or len)
        self.session_id = None
        self.hello_reply = None
        self.hello_sent_at = None
        self.closed = False               # EOF or close frame seen
        self.close_code = None
        self._cond = asyncio.Condition()
        self._task = None
        self.auto_pong = auto_pong
        self.mcp_enabled = mcp
        self.mcp_reply = mcp_reply        # False: never answer MCP requests
        self.tools = tools if tools is not None else default_tools()
        self.page_bytes = page_bytes
        self.mcp_requests = []            # payloads of server MCP requests
        self.tool_results = {}            # tool name -> result or ("error", m)
        self.downlink_rate = None
        self.downlink_frame_ms = None
        self.upgrade_status = None
        self.upgrade_headers = None

    # ---- OTA --------------------------------------------------------
    async def ota(self, body="full", headers=None, path="/xiaozhi/ota/",
                  method="POST", port=None, host_header=None,
                  app_version="2.4.2"):
        """POST the OTA request (PROTOCOL 2.1). body: 'full', 'minimal',
        'empty', '{}' or a dict/str/bytes. Stores websocket url/token."""
        if body == "full":
            body = json.dumps(ota_body_full(self.mac, self.client_id,
                                            app_version))
        elif body == "minimal":
            body = json.dumps(ota_body_minimal(self.mac, app_version))
        elif body == "empty":
            body = b""
        elif isinstance(body, dict):
            body = json.dumps(body)
        h = ota_headers(self.mac, self.client_id, app_version)
        h.update(headers or {})
        r = await http(self.host, port or self.port, method, path, h, body,
                       host_header=host_header)
        self.ota_response = r
        if r.status == 200 and "json" in r.header("content-type", ""):
            ws = r.json().get("websocket") or {}
            if isinstance(ws.get("url"), str):
                self.ws_url = ws["url"]
            if isinstance(ws.get("token"), str):
                self.token = ws["token"]
        return r

    # ---- connection -------------------------------------------------
    async def connect(self, path=None, query=False, headers=None,
                      host_header=None, token=None, device_id=None,
                      client_id=None, extra_query=None, timeout=15.0):
        """WebSocket upgrade like firmware 2.4 (Host without port,
        Authorization, Protocol-Version, Device-Id, Client-Id), or with
        the ids in query parameters (query=True, browser style). Raises
        UpgradeRefused on a non-101 answer."""
        if path is None:
            path = "/xiaozhi/v1/"
            if self.ws_url:
                u = urllib.parse.urlsplit(self.ws_url)
                path = u.path + ("?" + u.query if u.query else "")
        tok = self.token if token is None else token
        dev = self.mac if device_id is None else device_id
        cid = self.client_id if client_id is None else client_id
        h = {"Host": host_header or self.host}
        if query:
            q = {}
            if dev:
                q["device-id"] = dev
            if cid:
                q["client-id"] = cid
            if tok:
                q["authorization"] = "Bearer " + tok
            q.update(extra_query or {})
            path += ("&" if "?" in path else "?") + urllib.parse.urlencode(q)
        else:
            if tok:
                h["Authorization"] = tok if " " in tok else "Bearer " + tok
            if cid:
                h["Client-Id"] = cid
            if dev:
                h["Device-Id"] = dev
            h["Protocol-Version"] = str(self.version)
        key = base64.b64encode(os.urandom(16)).decode()
        h.update({"Connection": "Upgrade", "Upgrade": "websocket",
                  "Sec-WebSocket-Key": key, "Sec-WebSocket-Version": "13"})
        h.update(headers or {})
        req = "GET %s HTTP/1.1\r\n" % path + "".join(
            "%s: %s\r\n" % kv for kv in h.items() if kv[1] is not None)
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), timeout)
        self.writer.write(req.encode("latin-1") + b"\r\n")
        await self.writer.drain()
        line, status, _, hdrs = await asyncio.wait_for(
            read_head(self.reader), timeout)
        self.upgrade_status = line
        self.upgrade_headers = hdrs
        if status != 101:
            body = b""
            try:
                body = await asyncio.wait_for(
                    read_body(self.reader, status, hdrs), timeout)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            self.writer.close()
            raise UpgradeRefused(status, hdrs, body)
        if not line.startswith("HTTP/1.1 101"):
            raise AssertionError("status line is not HTTP/1.1 101: " + line)
        self.connected_at = time.monotonic()
        self._task = asyncio.ensure_future(self._read_loop())
        return line

    async def _read_loop(self):
        r = self.reader
        frag_op, frag = None, b""
        try:
            while True:
                b0, b1 = await r.readexactly(2)
                op, fin = b0 & 0x0F, b0 & 0x80
                n = b1 & 0x7F
                if b1 & 0x80:
                    raise AssertionError("server sent a masked frame")
                if b0 & 0x70:
                    raise AssertionError("server set RSV bits (compression?)")
                if n == 126:
                    (n,) = struct.unpack("!H", await r.readexactly(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", await r.readexactly(8))
                data = await r.readexactly(n) if n else b""
                t = time.monotonic()
                if op >= 8:
                    if op == PING:
                        await self._record(Msg(t, "ping", data))
                        if self.auto_pong and not self.closed:
                            self._send_frame(PONG, data)
                    elif op == PONG:
                        await self._record(Msg(t, "pong", data))
                    elif op == CLOSE:
                        m = Msg(t, "close", data)
                        if len(data) >= 2:
                            m.code = struct.unpack("!H", data[:2])[0]
                        self.close_code = m.code
                        self.closed = True
                        await self._record(m)
                        return
                    continue
                if op != 0:
                    frag_op, frag = op, data
                else:
                    frag += data
                if not fin:
                    continue
                op, data = frag_op, frag
                frag_op, frag = None, b""
                if op == TEXT:
                    try:
                        obj = json.loads(data.decode("utf-8"))
                    except ValueError:
                        obj = None
                    m = Msg(t, "text", data, obj)
                    await self._record(m)
                    await self._on_text(m)
                else:
                    m = Msg(t, "binary", data)
                    self._unframe(m)
                    await self._record(m)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            self.closed = True
            await self._record(Msg(time.monotonic(), "eof"))
        except asyncio.CancelledError:
            raise

    def _unframe(self, m):
        d = m.data
        if self.version == 2:
            if len(d) < 16:
                m.header_ok, m.payload = False, b""
                return
            ver, typ, res, ts, size = struct.unpack(">HHIII", d[:16])
            m.payload = d[16:]
            m.header_ok = (ver == 2 and typ == 0 and size == len(d) - 16)
        elif self.version == 3:
            if len(d) < 4:
                m.header_ok, m.payload = False, b""
                return
            typ, res, size = struct.unpack(">BBH", d[:4])
            m.payload = d[4:]
            m.header_ok = (typ == 0 and size == len(d) - 4)

    async def _record(self, m):
        async with self._cond:
            self.msgs.append(m)
            self._cond.notify_all()

    async def _on_text(self, m):
        o = m.obj
        if not isinstance(o, dict):
            return
        if o.get("type") == "hello" and self.hello_reply is None:
            self.hello_reply = m
            self.session_id = o.get("session_id")
            ap = o.get("audio_params") or {}
            self.downlink_rate = ap.get("sample_rate")
            self.downlink_frame_ms = ap.get("frame_duration")
        elif o.get("type") == "mcp" and self.mcp_enabled:
            p = o.get("payload")
            if isinstance(p, dict) and "method" in p:
                self.mcp_requests.append(p)
                if self.mcp_reply:
                    await self._mcp_answer(p)

    # ---- MCP server (PROTOCOL 5) -----------------------------------
    async def _mcp_answer(self, p):
        mid, method = p.get("id"), p.get("method")
        params = p.get("params") or {}
        if not isinstance(mid, int) or isinstance(mid, bool):
            return                                  # firmware drops these
        if str(method).startswith("notifications"):
            return
        if method == "initialize":
            res = {"protocolVersion": "2024-11-05",
                   "capabilities": {"tools": {}},
                   "serverInfo": {"name": "bread-compact-wifi",
                                  "version": "2.4.2"}}
        elif method == "tools/list":
            cursor = params.get("cursor") or ""
            names = [t["name"] for t in self.tools]
            start = names.index(cursor) if cursor in names else 0
            page, size, i = [], 20, start
            while i < len(self.tools):
                s = len(json.dumps(self.tools[i]))
                if page and size + s > self.page_bytes:
                    break
                page.append(self.tools[i])
                size += s + 1
                i += 1
            res = {"tools": page}
            if i < len(self.tools):
                res["nextCursor"] = self.tools[i]["name"]
        elif method == "tools/call":
            name = params.get("name")
            r = self.tool_results.get(name)
            if r is None:
                if name in [t["name"] for t in self.tools]:
                    r = {"content": [{"type": "text", "text": "true"}],
                         "isError": False}
                else:
                    r = ("error", "Unknown tool: %s" % name)
            if r == "no-reply":
                return
            if isinstance(r, tuple):
                await self.send_json({"session_id": self.session_id or "",
                                      "type": "mcp", "payload": {
                                          "jsonrpc": "2.0", "id": mid,
                                          "error": {"message": r[1]}}})
                return
            res = r
        else:
            await self.send_json({"session_id": self.session_id or "",
                                  "type": "mcp", "payload": {
                                      "jsonrpc": "2.0", "id": mid, "error": {
                                          "message": "Method not implemented: "
                                          + str(method)}}})
            return
        await self.send_json({"session_id": self.session_id or "",
                              "type": "mcp", "payload": {
                                  "jsonrpc": "2.0", "id": mid,
                                  "result": res}})

    async def mcp_notify(self, method="notifications/state_changed",
                         params=None):
        await self.send_json({"session_id": self.session_id or "",
                              "type": "mcp", "payload": {
                                  "jsonrpc": "2.0", "method": method,
                                  "params": params or {}}})

    # ---- sending ----------------------------------------------------
    def _send_frame(self, op, payload, fin=True, rsv=0):
        self.writer.write(ws_frame(op, payload, fin=fin, rsv=rsv))

    async def send_raw(self, op, payload, fin=True):
        self._send_frame(op, payload, fin)
        self.sent.append((time.monotonic(), "raw", op, len(payload)))
        await self.writer.drain()

    async def send_text(self, text):
        if isinstance(text, str):
            text = text.encode()
        self._send_frame(TEXT, text)
        self.sent.append((time.monotonic(), "text", text, len(text)))
        await self.writer.drain()

    async def send_json(self, obj):
        await self.send_text(json.dumps(obj, ensure_ascii=False))
        self.sent[-1] = (self.sent[-1][0], "json", obj, 0)

    async def send_audio(self, packet, timestamp=0):
        self._send_frame(BINARY, frame_audio(self.version, packet, timestamp))
        self.sent.append((time.monotonic(), "audio", None, len(packet)))
        await self.writer.drain()

    async def send_packets(self, packets, pace=True, frame_ms=60):
        """Send packets in the session's framing; pace=True at real-time
        pace (one per frame_ms from an anchored clock), else at once."""
        t0 = time.monotonic()
        for i, p in enumerate(packets):
            if pace:
                delay = t0 + i * frame_ms / 1000.0 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            if self.closed:
                return
            await self.send_audio(p)

    async def ping(self, data=b"hi"):
        await self.send_raw(PING, data)

    async def send_close(self, code=1000):
        await self.send_raw(CLOSE, struct.pack("!H", code))

    def abrupt_close(self):
        """Drop the TCP connection without a Close frame (the firmware way)."""
        if self.writer:
            self.writer.transport.abort()
        if self._task:
            self._task.cancel()
        self.closed = True

    async def close(self):
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if self.writer:
            self.writer.close()

    # ---- protocol messages -----------------------------------------
    def hello_msg(self, variant="full"):
        """The device hello in one of its variants:
        full      firmware 2.4 (version, features.mcp, transport, audio_params)
        bare      only {"type":"hello"} (no audio_params/version/transport)
        camel     load-test client: camelCase audioParams, no version/transport
        browser   the reference's browser client (device_id, device_name,
                  device_mac, token, features.emoji; no version/transport/
                  audio_params)
        desktop   Python desktop client: 20 ms frames announced
        """
        ap = {"format": "opus", "sample_rate": 16000, "channels": 1,
              "frame_duration": 60}
        if variant == "full":
            return {"type": "hello", "version": self.version,
                    "features": {"mcp": self.mcp_enabled, "glyph_push": True},
                    "text_font": {"bundle": "noto-v1", "charset": "common",
                                  "size": 20, "bpp": 4},
                    "transport": "websocket", "audio_params": ap}
        if variant == "bare":
            return {"type": "hello"}
        if variant == "camel":
            return {"type": "hello", "audioParams": ap,
                    "features": {"mcp": self.mcp_enabled}}
        if variant == "browser":
            return {"type": "hello", "device_id": self.mac,
                    "device_name": "Web test", "device_mac": self.mac,
                    "token": self.token,
                    "features": {"mcp": self.mcp_enabled, "emoji": True}}
        if variant == "desktop":
            return {"type": "hello", "version": 1, "transport": "websocket",
                    "features": {"mcp": self.mcp_enabled},
                    "audio_params": dict(ap, frame_duration=20)}
        raise ValueError(variant)

    async def hello(self, variant="full", timeout=10.0):
        """Send a hello and wait for the server's; returns the reply Msg."""
        self.hello_sent_at = time.monotonic()
        n = len(self.msgs)
        await self.send_json(self.hello_msg(variant))
        m = await self.wait_for(lambda m: m.type() == "hello",
                                timeout=timeout, start=n)
        self.hello_latency = m.t - self.hello_sent_at
        return m

    def _sid(self, obj, with_sid=True):
        if with_sid:
            obj = dict(obj, session_id=self.session_id or "")
        return obj

    async def listen(self, state, mode=None, text=None, with_sid=True):
        o = {"type": "listen", "state": state}
        if mode:
            o["mode"] = mode
        if text is not None:
            o["text"] = text
        await self.send_json(self._sid(o, with_sid))

    async def abort(self, reason=None):
        o = {"type": "abort"}
        if reason:
            o["reason"] = reason
        await self.send_json(self._sid(o))
        return self.sent[-1][0]

    # ---- waiting ----------------------------------------------------
    async def wait_for(self, pred, timeout=10.0, start=0, what=None):
        """Wait until a received message (index >= start) satisfies pred;
        return it. Raises AssertionError on timeout or on connection end."""
        async def scan():
            i = start
            async with self._cond:
                while True:
                    while i < len(self.msgs):
                        m = self.msgs[i]
                        i += 1
                        if pred(m):
                            return m
                        if m.kind in ("eof", "close") and not pred(m):
                            # nothing more will come; keep scanning only
                            # what is recorded
                            pass
                    if self.msgs and self.msgs[-1].kind in ("eof",):
                        raise AssertionError(
                            "connection ended while waiting for %s; got %s" %
                            (what or "a message", self.msgs[-8:]))
                    await self._cond.wait()
        try:
            return await asyncio.wait_for(scan(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError("timed out (%.0fs) waiting for %s; last: %s"
                                 % (timeout, what or "a message",
                                    self.msgs[-8:])) from None

    async def wait_tts(self, state, timeout=20.0, start=0):
        return await self.wait_for(
            lambda m: m.type() == "tts" and m.state() == state,
            timeout=timeout, start=start, what="tts " + state)

    async def wait_reply_done(self, timeout=30.0, start=0):
        """Wait for a tts start then the tts stop after it."""
        s = await self.wait_tts("start", timeout, start)
        i = self.msgs.index(s)
        return await self.wait_tts("stop", timeout, i + 1)

    async def wait_closed(self, timeout=15.0):
        return await self.wait_for(lambda m: m.kind in ("close", "eof"),
                                   timeout=timeout, what="close")

    # ---- views ------------------------------------------------------
    def texts(self, start=0):
        return [m for m in self.msgs[start:] if m.kind == "text"]

    def of_type(self, typ, start=0):
        return [m for m in self.msgs[start:] if m.type() == typ]

    def replies(self):
        """Split received messages into replies: lists of Msg from a
        tts start to its tts stop (inclusive), plus the stt before it."""
        out, cur, last_stt = [], None, None
        for m in self.msgs:
            if m.type() == "stt" and cur is None:
                last_stt = m
            if m.type() == "tts" and m.state() == "start" and cur is None:
                cur = {"stt": last_stt, "msgs": [m]}
                last_stt = None
                continue
            if cur is not None:
                cur["msgs"].append(m)
                if m.type() == "tts" and m.state() == "stop":
                    out.append(cur)
                    cur = None
        if cur is not None:
            out.append(cur)
        return out


# ---------------------------------------------------------------- checks

def pacing(times, frame_ms, prebuffer=5, tolerance=0.0):
    """Pacing figures of one reply's audio arrival times (seconds), seen
    as a device plays them: playback starts when the first packet
    arrives, each packet plays for frame_ms, and when the queue runs dry
    (a packet arrives after everything before it has played: the gap
    between sentences while TTS works) playback restarts with it.
      max_ahead_ms     most audio queued ahead of real time at any arrival
                       (the device holds 2.4 s)
      prebuffer        max_ahead in packets
      avg_interval_ms  mean interval between packets, leaving out the
                       first `prebuffer` intervals of each run and the
                       dry gaps themselves (None with < 40 intervals left)
      runs             number of times playback started
      dry              how many of those restarts came more than
                       `tolerance` seconds after the queue ran dry"""
    if not times:
        return None
    F = frame_ms / 1000.0
    play_end, max_ahead, runs, dry, worst_gap = None, 0.0, 0, 0, 0.0
    ivs, k = [], 0
    for i, t in enumerate(times):
        if play_end is None or t >= play_end:
            if play_end is not None and t > play_end + tolerance:
                dry += 1
                worst_gap = max(worst_gap, t - play_end)
            play_end, runs, k = t, runs + 1, 0     # dry: a new run
        else:
            k += 1
            if k > prebuffer:
                ivs.append(t - times[i - 1])
        play_end += F
        max_ahead = max(max_ahead, play_end - t)
    avg = None
    # judged over at least 40 paced intervals (2.4 s at 60 ms): one
    # scheduling stall of this busy test machine cannot move it by 10 %
    if len(ivs) >= 40:
        avg = sum(ivs) / len(ivs) * 1000.0
    return {"prebuffer": max_ahead / F, "max_ahead_ms": max_ahead * 1000.0,
            "avg_interval_ms": avg, "n": len(times), "runs": runs,
            "dry": dry, "worst_dry_ms": worst_gap * 1000.0}


class LagMonitor:
    """How late this process's event loop wakes up (a sleep of `period`
    seconds, measured). Arrival times are taken when the loop gets to a
    message, so a reply's measured pacing can be off by at most the worst
    lag during it: check_session subtracts that before judging, so a
    stalled test process is never blamed on the server."""

    current = None                        # the one of the running test

    def __init__(self, period=0.02):
        self.period = period
        self.samples = []                 # (time, lag seconds)
        self.task = asyncio.ensure_future(self._run())
        LagMonitor.current = self

    async def _run(self):
        while True:
            t = time.monotonic()
            await asyncio.sleep(self.period)
            now = time.monotonic()
            self.samples.append((now, max(0.0, now - t - self.period)))

    def max_between(self, t0, t1):
        import bisect
        i = bisect.bisect_left(self.samples, (t0, -1.0))
        m = 0.0
        while i < len(self.samples) and self.samples[i][0] <= t1 + 1.0:
            m = max(m, self.samples[i][1])
            i += 1
        return m

    def worst(self):
        return max((x[1] for x in self.samples), default=0.0)

    def stop(self):
        self.task.cancel()


def check_session(dev, require_stt=True, pace=True, pace_min_packets=20,
                  prebuffer_max=5, prebuffer_slack_ms=250.0,
                  closed_ok=False, lag=None):
    """The ordering rules of PROTOCOL 9 (items 16-21) on what `dev`
    received. Returns a list of violation strings (empty = all hold).
    lag: a LagMonitor; the pacing margins then include the test process's
    own worst wake-up delay during each reply."""
    bad = []
    if lag is None:
        lag = LagMonitor.current
    msgs = dev.msgs
    F = dev.downlink_frame_ms or 60
    # 16: text frames are JSON objects with a type; binary frames carry
    # audio with an exact framing header
    for m in msgs:
        if m.kind == "text" and not (isinstance(m.obj, dict) and
                                     isinstance(m.obj.get("type"), str)):
            bad.append("16: text frame is not a JSON object with type: %r"
                       % m.data[:80])
        if m.kind == "binary":
            if not m.header_ok:
                bad.append("14/15: bad framing v%d header on %d-byte frame"
                           % (dev.version, len(m.data)))
            elif not m.payload:
                bad.append("16: empty downlink audio frame")
            elif m.payload[:1] == b"{":
                bad.append("16: JSON-looking binary frame")
    # 17: no reply before our first listen message
    first_listen = None
    for s in dev.sent:
        if s[1] == "json" and isinstance(s[2], dict) and \
                s[2].get("type") == "listen":
            first_listen = s[0]
            break
    for m in msgs:
        if m.type() in ("stt", "tts") or m.kind == "binary":
            if first_listen is None or m.t < first_listen:
                bad.append("17: %r before the first listen message" % m)
                break
    # 17/18/20: every audio packet inside tts start..stop, after a
    # sentence_start; order stt -> start -> (llm) -> sentence_start, audio
    # -> stop; every start has a stop
    state = "idle"
    reply_audio = []
    sentence_audio = [[]]
    seen_stt = False
    aborts = sorted(x[0] for x in dev.sent if x[1] == "json" and
                    isinstance(x[2], dict) and x[2].get("type") == "abort")
    for m in msgs:
        typ, st = m.type(), m.state()
        if m.kind == "binary":
            if state == "idle":
                bad.append("17: audio outside a reply %r" % m)
            elif state == "started":
                bad.append("18: audio before any sentence_start")
            else:
                reply_audio.append(m.t)
                sentence_audio[-1].append(m.t)
            continue
        if typ == "stt":
            if state != "idle":
                bad.append("18: stt inside a reply")
            seen_stt = True
        elif typ == "tts" and st == "start":
            if state != "idle":
                bad.append("18: tts start inside a reply")
            if require_stt and not seen_stt:
                bad.append("18: tts start without stt before it")
            state, reply_audio, seen_stt = "started", [], False
            sentence_audio = [[]]
        elif typ == "tts" and st == "sentence_start":
            if state == "idle":
                bad.append("18: sentence_start outside a reply")
            if not isinstance(m.obj.get("text"), str):
                bad.append("18: sentence_start without text")
            state = "sentence"
            sentence_audio.append([])
        elif typ == "llm":
            if state == "idle":
                bad.append("18: llm outside a reply")
            if m.obj.get("emotion") not in EMOTIONS:
                bad.append("26: llm emotion %r not in the vocabulary"
                           % m.obj.get("emotion"))
        elif typ == "tts" and st == "stop":
            if state == "idle":
                # the answer to an abort sent while nothing played is a
                # harmless stray stop; anything else is a broken reply
                a = next((x for x in aborts if x < m.t), None)
                if a is None:
                    bad.append("18: tts stop without tts start")
                else:
                    aborts.remove(a)
            if pace and len(reply_audio) >= pace_min_packets:
                p = pacing(reply_audio, F)
                own = 1000.0 * lag.max_between(reply_audio[0] - 1.0,
                                               reply_audio[-1]) if lag else 0
                ahead = p["max_ahead_ms"] - own
                if ahead > 2400:
                    bad.append("19: %.0f ms of audio ahead of real time "
                               "(%.0f ms of it may be this process's lag)"
                               % (p["max_ahead_ms"], own))
                if ahead > (prebuffer_max + 1) * F + prebuffer_slack_ms:
                    bad.append("19: pre-buffer of %.1f packets (lag %.0f ms)"
                               % (p["prebuffer"], own))
                # inside one sentence the audio is all there: a sender too
                # slow makes the device's queue run dry again and again.
                # One dry gap can be a stall of the server's process on
                # this busy machine (the pre-buffer is only 300 ms), so it
                # takes 3 gaps in a sentence, or one of more than 1 s
                for sa in sentence_audio:
                    q = pacing(sa, F, tolerance=own / 1000.0 + F / 2000.0)
                    if q and (q["dry"] >= 3 or q["worst_dry_ms"] > 1000):
                        bad.append("19: playback ran dry %d times inside a "
                                   "sentence (worst gap %.0f ms)"
                                   % (q["dry"], q["worst_dry_ms"]))
                if p["avg_interval_ms"] is not None and own < 0.1 * F and \
                        abs(p["avg_interval_ms"] - F) > 0.1 * F:
                    bad.append("19: average interval %.1f ms, frame %d ms"
                               % (p["avg_interval_ms"], F))
            state = "idle"
        elif m.kind in ("close", "eof"):
            if state != "idle" and not closed_ok:
                bad.append("18: connection ended inside a reply")
            break
    if state != "idle" and not closed_ok and not dev.closed:
        bad.append("18: last tts start has no tts stop (yet)")
    # 37: nothing after a close frame
    for i, m in enumerate(msgs):
        if m.kind == "close":
            rest = [x for x in msgs[i + 1:] if x.kind not in ("eof",)]
            if rest:
                bad.append("37: %d messages after the close frame" % len(rest))
            break
    return bad


EMOTIONS = {"neutral", "happy", "laughing", "funny", "sad", "angry", "crying",
            "loving", "embarrassed", "surprised", "shocked", "thinking",
            "winking", "cool", "relaxed", "delicious", "kissy", "confident",
            "sleepy", "silly", "confused"}


# ---------------------------------------------------------------- runner

class Checks:
    """Collects named test functions; runs them, prints one line each,
    exits 1 if any failed. jobs > 1 (or XZ_JOBS): the coroutine tests run
    that many at a time in one event loop (each starts its own server,
    so they are independent; most of their time is waiting for real-time
    audio). One LagMonitor then watches the shared loop, so a wake-up
    delay that concurrency causes is still never blamed on the server."""

    def __init__(self, jobs=1):
        self.tests = []
        self.jobs = int(os.environ.get("XZ_JOBS", jobs))

    def __call__(self, fn):
        self.tests.append(fn)
        return fn

    @staticmethod
    async def _with_lag(coro):
        mon = LagMonitor()
        try:
            return await coro
        finally:
            mon.stop()
            LagMonitor.current = None

    async def _concurrent(self, fns, args, failed):
        mon = LagMonitor()
        sem = asyncio.Semaphore(self.jobs)

        async def one(fn):
            async with sem:
                t0 = time.monotonic()
                try:
                    await fn(*args)
                    print("ok   %-40s %.1fs" % (fn.__name__,
                                                time.monotonic() - t0),
                          flush=True)
                except Exception as e:  # noqa: BLE001 - report every one
                    import traceback
                    traceback.print_exc()
                    print("FAIL %-40s %s" % (fn.__name__, e), flush=True)
                    failed.append(fn.__name__)
        try:
            await asyncio.gather(*(one(fn) for fn in fns))
        finally:
            mon.stop()
            LagMonitor.current = None

    def run(self, *args):
        only = os.environ.get("XZ_ONLY")
        failed = []
        tests = [fn for fn in self.tests
                 if not only or fn.__name__ in only.split(",")]
        if self.jobs > 1:
            coros = [fn for fn in tests if asyncio.iscoroutinefunction(fn)]
            tests = [fn for fn in tests if fn not in coros]
            asyncio.run(self._concurrent(coros, args, failed))
        for fn in tests:
            t0 = time.monotonic()
            try:
                r = fn(*args)
                if asyncio.iscoroutine(r):
                    asyncio.run(self._with_lag(r))
                print("ok   %-40s %.1fs" % (fn.__name__,
                                            time.monotonic() - t0),
                      flush=True)
            except Exception as e:  # noqa: BLE001 - report every failure
                import traceback
                traceback.print_exc()
                print("FAIL %-40s %s" % (fn.__name__, e), flush=True)
                failed.append(fn.__name__)
        if failed:
            print("failed: " + ", ".join(failed))
            sys.exit(1)
        print("all passed")
