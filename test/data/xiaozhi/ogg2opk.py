#!/usr/bin/python3
"""Extract the Opus packets of an Ogg Opus file (RFC 7845) into an .opk file.

.opk (see XZ-INTERFACE.md): records of a big-endian u16 length followed by
that many bytes, one Opus packet each. The two header packets (OpusHead,
OpusTags) are left out, and so is a final packet shorter than the others
(opusenc ends a stream with a shorter packet; .opk packets are one frame of
the stream's frame duration each). Pages are checked: capture pattern, version 0, and
the page CRC (CRC-32, polynomial 0x04C11DB7, unreflected, initial value 0).

usage: ogg2opk.py IN.opus OUT.opk
"""
import struct
import sys

_CRC = []
for i in range(256):
    r = i << 24
    for _ in range(8):
        r = ((r << 1) ^ 0x04C11DB7) if r & 0x80000000 else (r << 1)
    _CRC.append(r & 0xFFFFFFFF)


def ogg_crc(data):
    c = 0
    for b in data:
        c = ((c << 8) & 0xFFFFFFFF) ^ _CRC[((c >> 24) ^ b) & 0xFF]
    return c


def ogg_packets(data):
    """Yield the packets of the first logical stream of an Ogg file."""
    pos, partial, serial = 0, b"", None
    while pos < len(data):
        if data[pos:pos + 4] != b"OggS" or data[pos + 4] != 0:
            raise ValueError("bad Ogg page at offset %d" % pos)
        nseg = data[pos + 26]
        lacing = data[pos + 27:pos + 27 + nseg]
        hlen = 27 + nseg
        plen = sum(lacing)
        page = bytearray(data[pos:pos + hlen + plen])
        if len(page) != hlen + plen:
            raise ValueError("truncated Ogg page at offset %d" % pos)
        (want,) = struct.unpack_from("<I", page, 22)
        page[22:26] = b"\0\0\0\0"
        if ogg_crc(page) != want:
            raise ValueError("bad Ogg CRC at offset %d" % pos)
        (sn,) = struct.unpack_from("<I", data, pos + 14)
        if serial is None:
            serial = sn
        body = data[pos + hlen:pos + hlen + plen]
        pos += hlen + plen
        if sn != serial:
            continue
        off = 0
        for n in lacing:
            partial += body[off:off + n]
            off += n
            if n < 255:
                yield partial
                partial = b""


def opus_duration_ms(pkt):
    """Duration of an Opus packet from its TOC byte (RFC 6716 3.1), in ms."""
    if not pkt:
        return 0.0
    config, code = pkt[0] >> 3, pkt[0] & 3
    if config < 12:
        frame = (10, 20, 40, 60)[config % 4]
    elif config < 16:
        frame = (10, 20)[config % 2]
    else:
        frame = (2.5, 5, 10, 20)[config % 4]
    if code == 0:
        n = 1
    elif code in (1, 2):
        n = 2
    else:
        n = (pkt[1] & 63) if len(pkt) > 1 else 0
    return frame * n


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    pkts = list(ogg_packets(data))
    if len(pkts) < 2 or not pkts[0].startswith(b"OpusHead"):
        sys.exit("not an Ogg Opus file: " + sys.argv[1])
    pkts = pkts[2:]
    if len(pkts) > 1 and opus_duration_ms(pkts[-1]) < opus_duration_ms(pkts[0]):
        pkts.pop()
    out = bytearray()
    for p in pkts:
        out += struct.pack(">H", len(p)) + p
    with open(sys.argv[2], "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
