"""wisp's Ogg Opus code against opus-tools (opusenc, opusinfo, opusdec).

- Speech from espeak-ng and a stereo tone from sox are encoded by opusenc
  (20 ms, 60 ms, hard CBR and 10 ms frames). wisp's demuxer
  (test/media/opus_tool.c) must find the same packets as the reader
  written here from RFC 3533 and RFC 6716 (CRC of every page recomputed,
  packets reassembled from the lacing, durations from the TOC byte), fed
  whole, byte by byte and in random slices; its duration must match
  opusinfo's playback length.
- Files wisp writes (opusenc's packets remuxed; joined into code-3
  packets of up to 60 ms and 120 ms; through the streaming repacketizer
  with a 60 ms target; split back to one frame per packet)
  pass opusinfo without a warning or error and decode with opusdec to
  exactly the samples of the original (float output, compared bytewise).
- Splitting the joined packets gives opusenc's packets back.
- Damaged files (a flipped byte, a cut) give the clear error codes.

Skips (exit 77) when opus-tools, or both espeak-ng and sox, are missing.

Run: python3 opus_tools_test.py path/to/opus_tool
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

TOOL = sys.argv[1]
WISP_EOGG_CRC = -4072
WISP_EOGG_TRUNCATED = -4076
failures = 0
checks = 0

for prog in ("opusenc", "opusdec", "opusinfo"):
    if not shutil.which(prog):
        print(f"SKIP: {prog} not installed (Debian package opus-tools)")
        sys.exit(77)
if not shutil.which("espeak-ng") and not shutil.which("sox"):
    print("SKIP: neither espeak-ng nor sox is installed")
    sys.exit(77)


def check(cond, what):
    global failures, checks
    checks += 1
    if not cond:
        failures += 1
        print("FAIL:", what, file=sys.stderr)


def run(*args, **kw):
    return subprocess.run(args, check=True, capture_output=True, timeout=60,
                          **kw)


# ---- the independent reader

def crc_table():
    t = []
    for i in range(256):
        c = i << 24
        for _ in range(8):
            c = ((c << 1) ^ 0x04C11DB7) if c & 0x80000000 else c << 1
            c &= 0xFFFFFFFF
        t.append(c)
    return t


CRC = crc_table()


def ogg_crc(data):
    c = 0
    for b in data:
        c = ((c << 8) & 0xFFFFFFFF) ^ CRC[(c >> 24) ^ b]
    return c


def read_ogg(data):
    """Pages (checking capture, version and CRC) and packets with the
    granule of their page when they are its last."""
    pos, packets, partial, pages = 0, [], None, 0
    while pos < len(data):
        assert data[pos:pos + 4] == b"OggS", "capture"
        assert data[pos + 4] == 0, "version"
        flags = data[pos + 5]
        granule, serial, seq, crc, nseg = struct.unpack_from(
            "<qIIIB", data, pos + 6)
        lacing = data[pos + 27:pos + 27 + nseg]
        size = 27 + nseg + sum(lacing)
        page = bytearray(data[pos:pos + size])
        page[22:26] = b"\0\0\0\0"
        assert ogg_crc(page) == crc, f"crc of page {seq}"
        assert (flags & 1) == (partial is not None), "continuation"
        body = pos + 27 + nseg
        cur = partial if partial is not None else b""
        ends = [i for i, v in enumerate(lacing) if v < 255]
        for i, v in enumerate(lacing):
            cur += data[body:body + v]
            body += v
            if v < 255:
                packets.append((cur, granule if i == ends[-1] else -1))
                cur = b""
        partial = cur if lacing and lacing[-1] == 255 else None
        pos += size
        pages += 1
    assert partial is None, "unfinished packet"
    return packets, pages


def opus_samples(pkt):
    """Duration from RFC 6716 §3.1 Table 2 and the frame count."""
    config, code = pkt[0] >> 3, pkt[0] & 3
    if config < 12:
        fs = [480, 960, 1920, 2880][config & 3]
    elif config < 16:
        fs = 960 if config & 1 else 480
    else:
        fs = [120, 240, 480, 960][config & 3]
    frames = {0: 1, 1: 2, 2: 2}.get(code) or (pkt[1] & 0x3f)
    return fs * frames


def fnv(b):
    h = 0xcbf29ce484222325
    for x in b:
        h = ((h ^ x) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def dump(path, seed=0):
    out = run(TOOL, "dump", path, str(seed)).stdout.decode()
    lines = out.splitlines()
    head = lines[0].split()
    pk = [tuple(int(x, 16) if i == 3 else int(x)
                for i, x in enumerate(line.split()[1:]))
          for line in lines if line.startswith("P ")]
    end = [int(x) for x in lines[-1].split()[1:]]
    return head, pk, end, out


def opusinfo(path):
    r = subprocess.run(["opusinfo", path], capture_output=True, timeout=60)
    text = (r.stdout + r.stderr).decode(errors="replace")
    return r.returncode, text


def playback_samples(text):
    m = re.search(r"Playback length: (\d+)m:(\d+\.\d+)s", text)
    return round((int(m.group(1)) * 60 + float(m.group(2))) * 48000)


def decode(path, wav):
    run("opusdec", "--quiet", "--float", "--rate", "48000", path, wav)
    with open(wav, "rb") as f:
        return f.read()


def pcm(wav):
    """The data chunk of a WAV file."""
    i = wav.find(b"data")
    n = struct.unpack_from("<I", wav, i + 4)[0]
    return wav[i + 8:i + 8 + n]


tmp = tempfile.mkdtemp(prefix="wisp-opus-")
try:
    sources = []
    if shutil.which("espeak-ng"):
        w = os.path.join(tmp, "speech.wav")
        run("espeak-ng", "-w", w,
            "Wisp reads and writes Ogg Opus without a codec. "
            "Three packets of twenty milliseconds make sixty.")
        sources.append(("speech", w))
    if shutil.which("sox"):
        w = os.path.join(tmp, "tone.wav")
        run("sox", "-n", "-r", "48000", "-c", "2", "-b", "16", w,
            "synth", "1.3", "sine", "440", "sine", "660")
        sources.append(("tone", w))

    encodings = [("20ms", []), ("60ms", ["--framesize", "60"]),
                 ("cbr", ["--hard-cbr", "--bitrate", "24"]),
                 ("10ms", ["--framesize", "10"])]
    for sname, wav in sources:
        for ename, opts in encodings[:2] if sname == "tone" else encodings:
            name = f"{sname}-{ename}"
            orig = os.path.join(tmp, name + ".opus")
            run("opusenc", "--quiet", *opts, wav, orig)
            with open(orig, "rb") as f:
                data = f.read()

            # wisp's demuxer vs the reader above.
            ref, npages = read_ogg(data)
            head, pk, end, text0 = dump(orig)
            check(end[0] == 0 and end[1] == 0, f"{name}: demux rc {end}")
            audio = ref[2:]
            check(len(pk) == len(audio),
                  f"{name}: {len(pk)} packets, reference {len(audio)}")
            for i, ((b, g), p) in enumerate(zip(audio, pk)):
                if (len(b), opus_samples(b), g, fnv(b)) != p:
                    check(False, f"{name}: packet {i} {p} differs")
                    break
            check(end[2] == sum(opus_samples(b) for b, _ in audio),
                  f"{name}: samples")
            check(end[3] == audio[-1][1], f"{name}: last granule")
            rc, info = opusinfo(orig)
            pre_skip = int(head[2])
            check(abs(playback_samples(info) - (end[3] - pre_skip)) <= 48,
                  f"{name}: opusinfo says {playback_samples(info)} samples,"
                  f" wisp {end[3] - pre_skip}")

            # Every split of the input gives the same packets.
            for seed in ((1, 7, 5000) if ename == "20ms" else (7, 300)):
                check(dump(orig, seed)[3] == text0, f"{name}: slices {seed}")

            # Remuxed, joined to 60 ms and to 120 ms, and split: opusinfo
            # is content, opusdec gives the same PCM.
            want = pcm(decode(orig, os.path.join(tmp, name + ".wav")))
            check(len(want) == (end[3] - pre_skip) * 4 * int(head[1]),
                  f"{name}: decoded length")
            modes = [["remux"], ["split"], ["join", "3"], ["join", "6"],
                     ["repack", "60"]]
            if ename in ("cbr", "10ms"):
                modes = modes[1:3] + modes[4:]
            for mode in modes:
                out = os.path.join(tmp, f"{name}-{mode[0]}.opus")
                args = [TOOL, "remux", orig, out] + \
                    ([] if mode == ["remux"] else mode)
                r = subprocess.run(args, capture_output=True, timeout=60)
                check(r.returncode == 0,
                      f"{name} {mode}: opus_tool {r.stderr.decode()}")
                if r.returncode:
                    continue
                rc, info = opusinfo(out)
                check(rc == 0 and "WARNING" not in info
                      and "ERROR" not in info.upper().replace(
                          "ERRORS", "") and "Opus stream 1" in info,
                      f"{name} {mode}: opusinfo:\n{info}")
                with open(out, "rb") as f:
                    wref, _ = read_ogg(f.read())
                got = pcm(decode(out, out + ".wav"))
                check(got == want, f"{name} {mode}: decoded PCM differs "
                      f"({len(got)} vs {len(want)} bytes)")
                o_head, o_pk, o_end, _ = dump(out)
                check(o_end[3] == end[3], f"{name} {mode}: final granule")
                if mode[0] == "repack":
                    mx = max(s for _, s, _, _ in o_pk)
                    check(mx <= max(2880, max(s for _, s, _, _ in pk)) and
                          len(o_pk) <= len(pk),
                          f"{name} {mode}: packet durations up to {mx}")
                if mode[0] == "join":
                    mx = max(s for _, s, _, _ in o_pk)
                    lim = 960 * int(mode[1]) if ename != "60ms" else 5760
                    check(mx <= min(lim, 5760) and len(o_pk) < len(pk),
                          f"{name} {mode}: packet durations up to {mx}")
                    check(all(b[0] & 3 == 3 for b, _ in wref[2:]),
                          f"{name} {mode}: code-3 packets")
                    if mode == ["join", "3"]:
                        # The inverse: splitting gives opusenc's frames
                        # back as code-0 packets.
                        back = out + "-back.opus"
                        run(TOOL, "remux", out, back, "split")
                        s_pk = dump(back)[1]
                        o_split = dump(os.path.join(
                            tmp, f"{name}-split.opus"))[1]
                        check(s_pk == o_split,
                              f"{name}: split(join) != split")
                        if all(b[0] & 3 == 0 for b, _ in audio):
                            # (page granules differ: compare the rest)
                            check([p[:2] + p[3:] for p in s_pk] ==
                                  [p[:2] + p[3:] for p in pk],
                                  f"{name}: split(join) != original")

    # Damaged files give clear errors.
    orig = os.path.join(tmp, sources[0][0] + "-20ms.opus")
    with open(orig, "rb") as f:
        data = bytearray(f.read())
    bad = os.path.join(tmp, "bad.opus")
    data2 = bytearray(data)
    data2[len(data2) // 2] ^= 0x40
    with open(bad, "wb") as f:
        f.write(data2)
    end = dump(bad, 3)[2]
    check(end[0] == WISP_EOGG_CRC, f"flipped byte: {end}")
    with open(bad, "wb") as f:
        f.write(data[:len(data) - 100])
    end = dump(bad, 3)[2]
    check(end[0] == 0 and end[1] == WISP_EOGG_TRUNCATED, f"cut: {end}")
    r = subprocess.run([TOOL, "remux", bad, bad + ".out"],
                       capture_output=True, timeout=60)
    check(r.returncode == 1 and b"Ogg stream ends inside" in r.stderr,
          f"remux of a cut file: {r.stderr}")
finally:
    shutil.rmtree(tmp, ignore_errors=True)

print(f"{checks} checks, {failures} failed")
sys.exit(1 if failures else 0)
