#!/usr/bin/env python3
"""Write the fuzz targets' seed corpora, test/fuzz/corpus/<target>/, from
the unit tests' tables: every input a table row feeds to the code under
test becomes a seed, in the target's input layout. Run it from anywhere
after changing a table; it replaces the seed directories. Each seed is
named by the SHA-1 of its bytes, as libFuzzer names its own.

    python3 test/fuzz/make_corpus.py
"""
import hashlib
import os
import re
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))
TEST = os.path.dirname(HERE)

ESC = {'n': 10, 'r': 13, 't': 9, '0': 0, '\\': 92, '"': 34, "'": 39,
       'a': 7, 'b': 8, 'f': 12, 'v': 11, '?': 63}


def decode(body):
    """The bytes of one C string literal's body (UTF-8 source)."""
    out = bytearray()
    raw = body.encode('utf-8')
    i = 0
    while i < len(raw):
        c = raw[i]
        if c != 92:
            out.append(c)
            i += 1
            continue
        e = chr(raw[i + 1])
        if e == 'x':
            j = i + 2
            while j < len(raw) and chr(raw[j]) in '0123456789abcdefABCDEF':
                j += 1
            out.append(int(raw[i + 2:j], 16) & 0xff)
            i = j
        elif e in '01234567':
            j = i + 1
            while j < len(raw) and j < i + 4 and chr(raw[j]) in '01234567':
                j += 1
            out.append(int(raw[i + 1:j], 8) & 0xff)
            i = j
        else:
            out.append(ESC[e])
            i += 2
    return bytes(out)


LIT = r'"(?:[^"\\\n]|\\.)*"'


def groups(src, macros=None, after=None):
    """Adjacent string literals (and the string macros in `macros`) joined,
    as the compiler joins them; with `after`, only groups that follow that
    regex (e.g. the IN( of a row)."""
    macros = macros or {}
    names = '|'.join(re.escape(m) for m in macros)
    piece = LIT + ('|\\b(?:' + names + ')\\b' if names else '')
    group = '(?:' + piece + ')(?:\\s*(?:' + piece + '))*'
    pat = (after + '\\s*' if after else '') + '(' + group + ')'
    out = []
    for m in re.finditer(pat, src):
        data = b''
        for p in re.finditer(piece, m.group(1)):
            t = p.group(0)
            data += decode(t[1:-1]) if t.startswith('"') else macros[t]
        out.append(data)
    return out


def read(rel):
    with open(os.path.join(TEST, rel), encoding='utf-8') as f:
        return f.read()


def section(src, start):
    """The text of the initializer that begins at the regex `start`."""
    m = re.search(start, src)
    return src[m.end():src.index('\n};', m.end())]


METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS',
           'TRACE', 'PATCH', 'ANY']


def method_byte(name):
    """The harness's byte for a method name (a number passes through)."""
    return METHODS.index(name) if name in METHODS else int(name, 0) & 0xff


def parse_seeds():
    return [g for g in groups(read('http/parse_test.c')) if b'HTTP/' in g]


def chunked_seeds():
    # max_trailer 63, cut points 3 and 7, then the body.
    return [b'\x3f\x03\x07' + g
            for g in groups(read('http/chunked_test.c'), after=r'IN\(')]


def router_seeds():
    src = read('http/router_test.c')
    seeds = []
    for table in ('basic', 'back', 'catch'):
        routes = section(src, r'static const route_def %s_routes\[\] = \{'
                         % table)
        lines = b''
        for m in re.finditer(r'\{(\w+),\s*(' + LIT + r')\}', routes):
            lines += (bytes([method_byte(m.group(1))]) +
                      decode(m.group(2)[1:-1]) + b'\n')
        rows = section(src, r'static const row %s_rows\[\] = \{' % table)
        for m in re.finditer(r'\{' + LIT + r',\s*(\w+),\s*(' + LIT + r')',
                             rows):
            seeds.append(bytes([method_byte(m.group(1))]) + lines +
                         decode(m.group(2)[1:-1]))
    return seeds


def utf8_seeds():
    return groups(read('util/utf8_test.c'), after=r'IN\(')


def base64_seeds():
    src = read('util/base64_test.c')
    return groups(src, after=r'IN\(') + groups(src, after=r'OUT\(')


def ws_frame_seeds():
    # Byte 0: max_frame 0, rsv 0; bytes 1-8: the knob; then the frame.
    src = read('ws/frame_test.c')
    frames = groups(src, {'M': b'\x37\xfa\x21\x3d'}, after=r'B\(')
    return [b'\x00' + b'\x00\x00\x00\x00\x00\x00\x01\x02' + f for f in frames]


def ws_handshake_seeds():
    base = (b'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n'
            b'Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n'
            b'Sec-WebSocket-Version: %s\r\n\r\n')
    seeds = [base % (b'dGhlIHNhbXBsZSBub25jZQ==', b'13'),
             base % (b'dGhlIHNhbXBsZSBub25jZQ==', b'8'),
             base % (b'dGhlIHNhbXBsZSBub25jZQ=', b'13'),
             base.replace(b'Upgrade\r\n', b'keep-alive, Upgrade\r\n') %
             (b'AAAAAAAAAAAAAAAAAAAAAA==', b'13'),
             base.replace(b'Connection: Upgrade\r\n',
                          b'Connection: keep-alive\r\nConnection: Upgrade\r\n') %
             (b'dGhlIHNhbXBsZSBub25jZQ==', b'13'),
             base.replace(b'Upgrade: websocket\r\n',
                          b'Upgrade: h2c\r\nUpgrade: websocket\r\n') %
             (b'dGhlIHNhbXBsZSBub25jZQ==', b'13'),
             (base % (b'dGhlIHNhbXBsZSBub25jZQ==', b'13')).replace(
                 b'\r\n\r\n', b'\r\nSec-WebSocket-Version: 13\r\n\r\n')]
    seeds += [g for g in groups(read('http/upgrade_test.c'))
              if g.startswith(b'GET ')]
    # Every key the base64 table has, in a valid request.
    seeds += [base % (k, b'13') for k in base64_seeds()
              if b'\r' not in k and b'\n' not in k]
    return seeds


def ogg_page(flags, granule, serial, seq, packets, open_tail=b''):
    """One Ogg page (RFC 3533) holding `packets`, then the start of a
    packet continued on the next page (`open_tail`, a multiple of 255)."""
    import struct
    lacing, body = bytearray(), bytearray()
    for pk in packets:
        lacing += b'\xff' * (len(pk) // 255) + bytes([len(pk) % 255])
        body += pk
    lacing += b'\xff' * (len(open_tail) // 255)
    body += open_tail
    head = bytearray(b'OggS\0' + bytes([flags]) +
                     struct.pack('<qIII', granule, serial, seq, 0) +
                     bytes([len(lacing)]))
    page = head + lacing + body
    crc = 0
    for b in page:
        crc = (crc << 8) & 0xffffffff ^ OGG_CRC[(crc >> 24) ^ b]
    page[22:26] = struct.pack('<I', crc)
    return bytes(page)


def _ogg_crc_table():
    t = []
    for i in range(256):
        c = i << 24
        for _ in range(8):
            c = ((c << 1) ^ 0x04C11DB7 if c & 0x80000000 else c << 1) & 0xffffffff
        t.append(c)
    return t


OGG_CRC = _ogg_crc_table()


def opus_seeds():
    # Byte 0 flags (1: repair CRCs, 2: resync, 4: small limits), bytes
    # 1-2 cut points, then an Ogg Opus stream or one Opus packet.
    import struct
    head = b'OpusHead\x01\x01' + struct.pack('<HIhB', 312, 16000, 0, 0)
    head2 = (b'OpusHead\x01\x06' + struct.pack('<HIhB', 0, 48000, 0, 1) +
             b'\x04\x02\x00\x04\x01\x02\x03\x05')
    tags = b'OpusTags' + struct.pack('<I', 4) + b'wisp' + struct.pack('<I', 1) + \
        struct.pack('<I', 7) + b'A=hello'
    audio = [b'\x08' + bytes(range(i, i + 20)) for i in range(6)]
    vbr = [b'\x0b\x83\x01\x02abcdef', b'\x0b\x43\x02abcdef\0\0',
           b'\x0a\x03abcde', b'\x09abcd', b'\x83\x30', b'\x1b\x02']
    big = b'\x08' + bytes(600)
    streams = []
    s = ogg_page(2, 0, 7, 0, [head]) + ogg_page(0, 0, 7, 1, [tags])
    s += ogg_page(0, 2880, 7, 2, audio[:3])
    s += ogg_page(4, 5500, 7, 3, audio[3:])
    streams.append(s)
    s = ogg_page(2, 0, 9, 0, [head2]) + ogg_page(0, 0, 9, 1, [tags])
    s += ogg_page(0, -1, 9, 2, [], big[:510])
    s += ogg_page(1, 6720, 9, 3, [big[510:]] + vbr[:2])
    s += ogg_page(4, 9000, 9, 4, vbr[2:])
    streams.append(s)
    # Multiplexed, with junk in front (for resync).
    s = b'junkOgg' + ogg_page(2, 0, 1, 0, [head]) + \
        ogg_page(2, 0, 2, 0, [b'other']) + ogg_page(0, 0, 1, 1, [tags]) + \
        ogg_page(4, 960, 1, 2, audio[:1])
    streams.append(s)
    seeds = []
    for st in streams:
        for flags in (0, 1, 2, 4):
            seeds.append(bytes([flags, 7, 3]) + st)
    for pk in vbr + audio[:1] + [b'\x0b\x41\xff\x00' + bytes(260)]:
        seeds.append(b'\0\0\0' + pk)
    # Flag 8: packet lengths for the writer/reader round trip; the second
    # is what found the BOS packet ending on a later page (ogg_test.c).
    seeds.append(b'\x08\x05\x03\x00\x10\x01\x00\xff\xff\x00\x00\x00\x01')
    seeds.append(b'\xdb\xf9\xdb\xdb\xdb\x02\x00\x00\x00\x1b\x02')
    return seeds

def sse_seeds():
    # Each row's stream with the default bound, cut at 5 and 11; and
    # with a 64-byte bound (byte 8), cut at 1 and 2.
    rows = [g for g in groups(read('http/sse_test.c'), after=r'S\(')]
    return ([b'\x00\x05\x0b' + g for g in rows] +
            [b'\x08\x01\x02' + g for g in rows])


TARGETS = {
    'fuzz_parse': parse_seeds,
    'fuzz_chunked': chunked_seeds,
    'fuzz_router': router_seeds,
    'fuzz_utf8': utf8_seeds,
    'fuzz_base64': base64_seeds,
    'fuzz_ws_frame': ws_frame_seeds,
    'fuzz_ws_handshake': ws_handshake_seeds,
    'fuzz_opus': opus_seeds,

    'fuzz_sse': sse_seeds,
}


def main():
    for name, make in TARGETS.items():
        d = os.path.join(HERE, 'corpus', name)
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        seeds = set(make())
        for s in seeds:
            with open(os.path.join(d, hashlib.sha1(s).hexdigest()), 'wb') as f:
                f.write(s)
        print('%-18s %4d seeds, %6d bytes' %
              (name, len(seeds), sum(len(s) for s in seeds)))


if __name__ == '__main__':
    main()
