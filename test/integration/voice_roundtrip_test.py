"""xiaozhi-server's voice pipeline end to end with real programs: the
device speaks a sentence made with espeak-ng and opusenc (60 ms packets,
sent in real time); the server's command ASR (opusdec + pocketsphinx)
recognises it and its command TTS (espeak-ng | opusenc) speaks the reply;
the device writes the downlink packets to an Ogg Opus file, decodes it
with opusdec and recognises it with pocketsphinx: the reply's words come
back. Then the failure paths: a missing TTS or ASR program gives a
spoken error and a balanced tts stop, and the session goes on.

usage: voice_roundtrip_test.py path/to/xiaozhi-server   (exit 77 = skipped)
"""
import asyncio
import os
import shutil
import struct
import subprocess
import sys
import tempfile

from xiaozhi_device import (Device, XServer, opus_duration_ms,
                            server_binary, skip)

BIN = server_binary()
for prog in ("espeak-ng", "opusenc", "opusdec", "pocketsphinx_continuous"):
    if not shutil.which(prog):
        skip(prog + " is not installed")
if not os.path.isdir("/usr/share/pocketsphinx/model/en-us"):
    skip("pocketsphinx-en-us model is not installed")

SAID = "what is the time"
REPLY = "two three four"


# ---------------------------------------------------------------- Ogg

def _crc_table():
    t = []
    for i in range(256):
        r = i << 24
        for _ in range(8):
            r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else r << 1
            r &= 0xFFFFFFFF
        t.append(r)
    return t


CRC = _crc_table()


def ogg_crc(data):
    c = 0
    for b in data:
        c = ((c << 8) & 0xFFFFFFFF) ^ CRC[((c >> 24) & 0xFF) ^ b]
    return c


def ogg_packets(data):
    """The packets of a single-stream Ogg file (checks each page's CRC)."""
    out, cur, p = [], b"", 0
    while p < len(data):
        assert data[p:p + 4] == b"OggS", "lost Ogg sync at %d" % p
        nseg = data[p + 26]
        lacing = data[p + 27:p + 27 + nseg]
        size = 27 + nseg + sum(lacing)
        page = bytearray(data[p:p + size])
        (crc,) = struct.unpack_from("<I", page, 22)
        page[22:26] = b"\0\0\0\0"
        assert ogg_crc(page) == crc, "bad page CRC"
        q = p + 27 + nseg
        for n in lacing:
            cur += data[q:q + n]
            q += n
            if n < 255:
                out.append(cur)
                cur = b""
        p += size
    return out


def ogg_write(path, packets):
    """An Ogg Opus file (mono) with one audio packet per page."""
    serial, seq, granule = 0x1234, 0, 0
    pages = []

    def page(pkt, flags, gran):
        nonlocal seq
        lacing = bytearray()
        n = len(pkt)
        while n >= 255:
            lacing.append(255)
            n -= 255
        lacing.append(n)
        h = bytearray(b"OggS" + bytes([0, flags]) +
                      struct.pack("<qIII", gran, serial, seq, 0) +
                      bytes([len(lacing)]) + lacing)
        body = h + pkt
        struct.pack_into("<I", body, 22, ogg_crc(body))
        seq += 1
        pages.append(bytes(body))

    page(b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 0, 16000, 0, 0), 2, 0)
    page(b"OpusTags" + struct.pack("<I", 4) + b"test" +
         struct.pack("<I", 0), 0, 0)
    for i, pkt in enumerate(packets):
        granule += int(opus_duration_ms(pkt) * 48)
        page(pkt, 4 if i == len(packets) - 1 else 0, granule)
    with open(path, "wb") as f:
        f.write(b"".join(pages))


# ------------------------------------------------------------- helpers

def recognise_ogg(path, tmp):
    raw = os.path.join(tmp, "out.raw")
    subprocess.run(["opusdec", "--quiet", "--rate", "16000", path, raw],
                   check=True, timeout=60)
    r = subprocess.run(["pocketsphinx_continuous", "-infile", raw,
                        "-logfn", "/dev/null"], check=True, timeout=60,
                       capture_output=True, text=True)
    return r.stdout.strip()


def speech_packets(tmp):
    wav = os.path.join(tmp, "said.wav")
    ogg = os.path.join(tmp, "said.opus")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "120", "-w", wav,
                    SAID], check=True, timeout=60)
    subprocess.run(["opusenc", "--quiet", "--framesize", "60", wav, ogg],
                   check=True, timeout=60)
    with open(ogg, "rb") as f:
        pkts = ogg_packets(f.read())
    assert pkts[0].startswith(b"OpusHead") and pkts[1].startswith(
        b"OpusTags"), "not an Ogg Opus file"
    return pkts[2:]


def reply_audio(dev, start):
    out, inside = [], False
    for m in dev.msgs[start:]:
        if m.type() == "tts" and m.state() == "start":
            out, inside = [], True
        elif m.type() == "tts" and m.state() == "stop":
            inside = False
        elif m.kind == "binary" and inside:
            out.append(m.payload)
    return out


def sentences(dev, start):
    return [m.obj.get("text") for m in dev.msgs[start:]
            if m.type() == "tts" and m.state() == "sentence_start"]


async def connect(s):
    d = Device(s.host, s.port)
    await d.ota("full")
    await d.connect()
    await d.hello()
    return d


async def roundtrip(tmp):
    pkts = speech_packets(tmp)
    s = XServer(BIN, "pipeline.mode=voice", "voice.reply=" + REPLY,
                "audio.downlink_frame_ms=60")
    try:
        d = await connect(s)
        n = len(d.msgs)
        await d.listen("start", mode="manual")
        await d.send_packets(pkts, pace=True, frame_ms=60)
        await d.listen("stop")
        stt = await d.wait_for(lambda m: m.type() == "stt", 40, n, "stt")
        heard = stt.obj.get("text", "")
        print("server heard: %r" % heard)
        assert "what" in heard.split(), "ASR missed 'what': %r" % heard
        await d.wait_reply_done(40, n)
        audio = reply_audio(d, n)
        assert audio, "no reply audio"
        durs = {opus_duration_ms(p) for p in audio}
        assert durs == {60}, "downlink packets not 60 ms: %r" % durs
        ogg = os.path.join(tmp, "reply.opus")
        ogg_write(ogg, audio)
        back = recognise_ogg(ogg, tmp)
        print("device heard: %r" % back)
        words = set(back.split())
        assert words & {"two", "three", "four"}, \
            "reply not recognised: %r" % back
        await d.close()
    finally:
        rc, _, err = s.stop()
    assert rc == 0, "server exit %r: %s" % (rc, err[-2000:])


async def failures():
    # a TTS program that does not exist: spoken error + balanced stop
    s = XServer(BIN, "pipeline.mode=voice", "voice.reply=hello",
                "tts.command=/nonexistent/espeak")
    try:
        d = await connect(s)
        for _ in range(2):      # the session goes on after a failure
            n = len(d.msgs)
            await d.listen("detect", text="hello there")
            await d.wait_reply_done(30, n)
            said = sentences(d, n)
            assert any("went wrong" in (t or "") for t in said), said
            starts = [m for m in d.msgs[n:]
                      if m.type() == "tts" and m.state() == "start"]
            stops = [m for m in d.msgs[n:]
                     if m.type() == "tts" and m.state() == "stop"]
            assert len(starts) == 1 and len(stops) == 1, d.msgs[n:]
        await d.close()
    finally:
        rc, _, err = s.stop()
    assert rc == 0, err[-2000:]
    # a recogniser that fails: the audio turn still ends with tts stop
    s = XServer(BIN, "pipeline.mode=voice", "asr.command=exit 3",
                "voice.reply=hello")
    try:
        d = await connect(s)
        n = len(d.msgs)
        await d.listen("start", mode="manual")
        await d.send_packets([bytes([0x58, 0xff, 0xfe])] * 5, pace=False)
        await d.listen("stop")
        await d.wait_reply_done(30, n)
        said = sentences(d, n)
        assert any("went wrong" in (t or "") for t in said), said
        await d.close()
    finally:
        rc, _, err = s.stop()
    assert rc == 0, err[-2000:]


async def main():
    with tempfile.TemporaryDirectory() as tmp:
        await asyncio.gather(roundtrip(tmp), failures())
    print("ok")


if __name__ == "__main__":
    asyncio.run(main())
