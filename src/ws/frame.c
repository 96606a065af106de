/* The WebSocket frame codec (RFC 6455 §5.2): client frame headers in,
 * payload unmasking (§5.3), server frame headers out.
 *
 * The parser keeps no state between calls: a header is at most 14 bytes,
 * so re-reading it from the start when more bytes arrive costs less than
 * carrying a resumable state around. Each check runs as soon as the bytes
 * it depends on are present, in the order they appear on the wire, and
 * never looks past `len`. So a prefix of a frame reports either
 * WISP__WS_EAGAIN or the same answer as the whole frame, and a bad frame is
 * refused after as few bytes as possible (a reserved opcode after one). */
#include <assert.h>
#include <string.h>

#include "ws/frame.h"

enum {
    B0_FIN = 0x80,
    B0_RSV_SHIFT = 4,
    B0_OPCODE = 0x0F,
    B1_MASK = 0x80,
    B1_LEN = 0x7F,
    LEN7_MAX = 125,       /* 7-bit length values 0..125 are the length */
    LEN7_16 = 126,        /* a 16-bit length follows */
    LEN7_64 = 127,        /* a 64-bit length follows */
    CONTROL_MAX = 125,    /* §5.5: control payloads fit in 125 bytes */
};

/* §5.2: opcodes 0x3-0x7 are reserved for non-control frames, 0xB-0xF for
 * control frames; "the receiving endpoint MUST _Fail the WebSocket
 * Connection_" on any of them (§5.2, §10.7). */
static int opcode_known(uint8_t op)
{
    return op <= WISP__WS_BINARY || (op >= WISP__WS_CLOSE &&
                                     op <= WISP__WS_PONG);
}

/* Checks on byte 0: FIN, RSV and opcode. */
static ssize_t check_byte0(uint8_t b0, uint8_t allowed_rsv)
{
    uint8_t rsv = (uint8_t)((b0 >> B0_RSV_SHIFT) & 7);
    uint8_t op = b0 & B0_OPCODE;

    /* §5.2: a nonzero RSV bit that no extension defined fails the
     * connection. */
    if (rsv & (uint8_t)~allowed_rsv)
        return WISP__WS_EPROTO;
    if (!opcode_known(op))
        return WISP__WS_EPROTO;
    /* §5.5: "Control frames ... MUST NOT be fragmented." */
    if (op >= WISP__WS_CLOSE && !(b0 & B0_FIN))
        return WISP__WS_EPROTO;
    return 0;
}

/* Read the payload length that starts at buf[1] into *out. Returns the
 * number of header bytes it spans (2, 4 or 10), WISP__WS_EAGAIN or
 * WISP__WS_EPROTO. The caller has checked len >= 2. */
static ssize_t read_length(const uint8_t *buf, size_t len, uint64_t *out)
{
    uint8_t len7 = buf[1] & B1_LEN;

    if (len7 <= LEN7_MAX) {
        *out = len7;
        return 2;
    }
    if (len7 == LEN7_16) {
        if (len < 4)
            return WISP__WS_EAGAIN;
        *out = (uint64_t)buf[2] << 8 | buf[3];
        return 4;
    }
    /* §5.2: "the most significant bit MUST be 0". It sits in the first
     * length byte, so refuse it before the other seven arrive. */
    if (len < 3)
        return WISP__WS_EAGAIN;
    if (buf[2] & 0x80)
        return WISP__WS_EPROTO;
    if (len < 10)
        return WISP__WS_EAGAIN;
    uint64_t v = 0;
    for (int i = 2; i < 10; i++)
        v = v << 8 | buf[i];
    *out = v;
    return 10;
}

ssize_t wisp__ws_parse_header(const uint8_t *buf, size_t len,
                              uint64_t max_frame, uint8_t allowed_rsv,
                              wisp__ws_header *h)
{
    return wisp__ws_parse_header_dir(buf, len, max_frame, allowed_rsv, 0, h);
}

ssize_t wisp__ws_parse_header_dir(const uint8_t *buf, size_t len,
                                  uint64_t max_frame, uint8_t allowed_rsv,
                                  int from_server, wisp__ws_header *h)
{
    if (len < 1)
        return WISP__WS_EAGAIN;
    ssize_t r = check_byte0(buf[0], allowed_rsv);
    if (r < 0)
        return r;
    if (len < 2)
        return WISP__WS_EAGAIN;
    /* §5.1: "The server MUST close the connection upon receiving a frame
     * that is not masked." */
    if (!from_server && !(buf[1] & B1_MASK))
        return WISP__WS_EPROTO;
    /* §5.1: "A client MUST close a connection if it detects a masked
     * frame." */
    if (from_server && (buf[1] & B1_MASK))
        return WISP__WS_EPROTO;

    uint64_t plen;
    r = read_length(buf, len, &plen);
    if (r < 0)
        return r;
    size_t hl = (size_t)r;

    /* The limit is on the value, not the form: a ping whose length of 5 is
     * written in 16 bits is accepted, like any non-minimal length. */
    uint8_t op = buf[0] & B0_OPCODE;
    if (op >= WISP__WS_CLOSE && plen > CONTROL_MAX)
        return WISP__WS_EPROTO;
    if (max_frame && plen > max_frame)
        return WISP__WS_ETOOBIG;

    if (from_server) {
        h->fin = (buf[0] & B0_FIN) ? 1 : 0;
        h->rsv = (uint8_t)((buf[0] >> B0_RSV_SHIFT) & 7);
        h->opcode = op;
        h->masked = 0;
        memset(h->mask, 0, 4);
        h->len = plen;
        h->header_len = (uint32_t)hl;
        return (ssize_t)hl;
    }
    if (len < hl + 4)
        return WISP__WS_EAGAIN;
    h->fin = (buf[0] & B0_FIN) ? 1 : 0;
    h->rsv = (uint8_t)((buf[0] >> B0_RSV_SHIFT) & 7);
    h->opcode = op;
    h->masked = 1;
    memcpy(h->mask, buf + hl, 4);
    h->len = plen;
    h->header_len = (uint32_t)(hl + 4);
    return (ssize_t)(hl + 4);
}

/* §5.3: payload byte i is XORed with mask[i % 4], i counted from the start
 * of the payload; `offset` is the payload position of data[0]. The head
 * loop runs until data is 8-byte aligned, so the word loop does aligned
 * accesses on targets that care (memcpy keeps it defined either way). A
 * word covers 8 bytes, a multiple of 4, so one rotated 64-bit mask serves
 * every word: its bytes, in memory order, are the mask starting at the
 * phase of the first word. Building it byte by byte keeps it independent
 * of endianness. */
void wisp__ws_unmask(uint8_t *data, size_t len, const uint8_t mask[4],
                     uint64_t offset)
{
    size_t phase = (size_t)(offset & 3);

    while (len && ((uintptr_t)data & 7)) {
        *data++ ^= mask[phase];
        phase = (phase + 1) & 3;
        len--;
    }
    if (len >= 8) {
        uint8_t rot[8];
        for (size_t i = 0; i < 8; i++)
            rot[i] = mask[(phase + i) & 3];
        uint64_t m;
        memcpy(&m, rot, 8);
        /* Two words per round: enough for compilers to keep two loads in
         * flight or turn it into vector code. */
        for (; len >= 16; data += 16, len -= 16) {
            uint64_t a, b;
            memcpy(&a, data, 8);
            memcpy(&b, data + 8, 8);
            a ^= m;
            b ^= m;
            memcpy(data, &a, 8);
            memcpy(data + 8, &b, 8);
        }
        if (len >= 8) {
            uint64_t a;
            memcpy(&a, data, 8);
            a ^= m;
            memcpy(data, &a, 8);
            data += 8;
            len -= 8;
        }
    }
    /* Whole words leave the phase unchanged. */
    while (len) {
        *data++ ^= mask[phase];
        phase = (phase + 1) & 3;
        len--;
    }
}

/* §5.2: "the minimal number of bytes MUST be used to encode the length".
 * `len` must be below 2^63, the largest length a frame can carry. */
size_t wisp__ws_encode_header(uint8_t *out, int fin, uint8_t opcode,
                              uint64_t len)
{
    assert(!(len >> 63));
    out[0] = (uint8_t)((fin ? B0_FIN : 0) | (opcode & B0_OPCODE));
    if (len <= LEN7_MAX) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = LEN7_16;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = LEN7_64;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}
