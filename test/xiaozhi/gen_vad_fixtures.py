#!/usr/bin/env python3
"""Make the Opus packet fixtures the VAD test replays (test/data/xiaozhi/).

Each fixture is espeak-ng speech at 16 kHz mono with known silent gaps,
encoded by opusenc the way the firmware encodes its microphone (60 ms
frames, VBR, DTX on: PROTOCOL.md §10.3), and stored as an .opk file
(u16 big-endian length + packet, per packet). The speech/silence timeline
of each fixture is printed; vad_test.c carries it as constants.

Needs: apt-get install -y espeak-ng opus-tools. Run from the repository
root: python3 test/xiaozhi/gen_vad_fixtures.py
"""
import array
import os
import random
import struct
import subprocess
import sys
import tempfile
import wave

OUT = os.path.join("test", "data", "xiaozhi")
RATE = 16000


def speak(text, voice="en-us"):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "s.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", path,
                        text], check=True)
        w = wave.open(path)
        src_rate = w.getframerate()
        data = array.array("h", w.readframes(w.getnframes()))
    # Linear resampling to 16 kHz is enough for a VAD fixture.
    n = int(len(data) * RATE / src_rate)
    out = array.array("h", [0] * n)
    for i in range(n):
        x = i * src_rate / RATE
        j = int(x)
        f = x - j
        a = data[j] if j < len(data) else 0
        b = data[j + 1] if j + 1 < len(data) else 0
        out[i] = int(a + (b - a) * f)
    return out


def noise(ms, level, rng):
    return array.array("h", [int(rng.gauss(0, level))
                             for _ in range(RATE * ms // 1000)])


def ogg_packets(data):
    """Opus packets of an Ogg stream (RFC 3533 lacing), without the two
    header packets."""
    pkts, cur, pos = [], b"", 0
    while pos < len(data):
        assert data[pos:pos + 4] == b"OggS"
        nseg = data[pos + 26]
        lacing = data[pos + 27:pos + 27 + nseg]
        body = pos + 27 + nseg
        for l in lacing:
            cur += data[body:body + l]
            body += l
            if l < 255:
                pkts.append(cur)
                cur = b""
        pos = body
    return pkts[2:]


def encode(pcm, name, noise_level, timeline):
    with tempfile.TemporaryDirectory() as d:
        raw = os.path.join(d, "in.raw")
        ogg = os.path.join(d, "out.opus")
        with open(raw, "wb") as f:
            f.write(pcm.tobytes())
        subprocess.run(["opusenc", "--quiet", "--raw", "--raw-rate",
                        str(RATE), "--raw-chan", "1", "--framesize", "60",
                        "--vbr", "--bitrate", "16", "--speech",
                        "--set-ctl-int", "4016=1",  # DTX on
                        raw, ogg], check=True)
        pkts = ogg_packets(open(ogg, "rb").read())
    with open(os.path.join(OUT, name), "wb") as f:
        for p in pkts:
            f.write(struct.pack(">H", len(p)) + p)
    sizes = [len(p) for p in pkts]
    print(f"{name}: {len(pkts)} packets, noise {noise_level}, "
          f"timeline ms {timeline}")
    print("  sizes:", sizes)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(7)
    s1 = speak("What is the weather like today?")
    s2 = speak("Please turn the volume down a little, and then tell me "
               "a short story about a cat.")
    for name, level in (("vad_quiet.opk", 30), ("vad_noisy.opk", 300)):
        pcm = array.array("h")
        timeline = []
        t = 0
        for part in (("sil", 1000), ("sp", s1), ("sil", 1500), ("sp", s2),
                     ("sil", 2500)):
            if part[0] == "sil":
                seg = noise(part[1], level, rng)
            else:
                seg = array.array("h", (max(-32768, min(32767, v + int(
                    rng.gauss(0, level)))) for v in part[1]))
                timeline.append((t, t + len(seg) * 1000 // RATE))
            pcm.extend(seg)
            t += len(seg) * 1000 // RATE
        encode(pcm, name, level, timeline)


if __name__ == "__main__":
    sys.exit(main())
