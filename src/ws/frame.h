/* Internal: the WebSocket frame codec (RFC 6455 §5): an incremental
 * parser for frame headers coming from clients, in-place unmasking, and a
 * header encoder for server frames (never masked). Pure functions: no
 * allocation, no I/O. */
#ifndef WISP_WS_FRAME_H
#define WISP_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
    WISP__WS_CONT = 0x0,
    WISP__WS_TEXT = 0x1,
    WISP__WS_BINARY = 0x2,
    WISP__WS_CLOSE = 0x8,
    WISP__WS_PING = 0x9,
    WISP__WS_PONG = 0xA,
};

/* Errors, each mapped to a close code by the session. */
enum {
    WISP__WS_EAGAIN = -1,      /* need more bytes */
    WISP__WS_EPROTO = -2,      /* 1002: reserved bits, unknown opcode,
                                  unmasked client frame, control frame
                                  fragmented or > 125 bytes, 64-bit length
                                  with the top bit set. A length in a
                                  longer form than needed is accepted:
                                  §5.2 binds senders, not receivers. */
    WISP__WS_ETOOBIG = -3,     /* 1009: payload over max_frame */
};

typedef struct wisp__ws_header {
    uint8_t fin;
    uint8_t rsv;       /* the three RSV bits, (byte0 >> 4) & 7 */
    uint8_t opcode;
    uint8_t masked;
    uint8_t mask[4];
    uint64_t len;      /* payload length */
    uint32_t header_len; /* 2..14 bytes */
} wisp__ws_header;

/* Parse a frame header from buf[0..len) (a client-to-server frame).
 * `allowed_rsv` is the RSV bits an extension negotiated (0: none).
 * Returns the header length (2..14) with *h filled, WISP__WS_EAGAIN when
 * the header is not complete, WISP__WS_EPROTO or WISP__WS_ETOOBIG.
 * Checks: RSV bits outside allowed_rsv, opcodes 3-7 and 0xB-0xF, MASK bit
 * clear (clients must mask), control frames (>= 0x8) with FIN clear or a
 * payload over 125 bytes, a 64-bit length with its top bit set, payload
 * over `max_frame` (0: no limit). The 125 and max_frame limits apply to
 * the length's value, whatever its form. Each check runs as soon as its
 * bytes are in, in wire order, and nothing past buf[len) is read: a prefix
 * of a frame gives WISP__WS_EAGAIN or the whole frame's answer, so an error
 * can come before the header is complete. *h is written only on success. */
ssize_t wisp__ws_parse_header(const uint8_t *buf, size_t len,
                              uint64_t max_frame, uint8_t allowed_rsv,
                              wisp__ws_header *h);

/* The same for either direction: `from_server` nonzero parses a
 * server-to-client frame, which must NOT be masked (§5.1; a masked one
 * is WISP__WS_EPROTO) and has no masking key (mask all zero). */
ssize_t wisp__ws_parse_header_dir(const uint8_t *buf, size_t len,
                                  uint64_t max_frame, uint8_t allowed_rsv,
                                  int from_server, wisp__ws_header *h);

/* XOR `len` payload bytes in place with `mask`, starting at byte `offset`
 * of the payload (so a payload unmasked in pieces stays aligned). Fast:
 * works on 8 bytes at a time. */
void wisp__ws_unmask(uint8_t *data, size_t len, const uint8_t mask[4],
                     uint64_t offset);

/* Write a server frame header (FIN as given, no mask) for a payload of
 * `len` bytes (below 2^63, asserted) into out (room for 10 bytes). Returns
 * its length (2, 4 or 10, always the minimal encoding). */
size_t wisp__ws_encode_header(uint8_t *out, int fin, uint8_t opcode,
                              uint64_t len);

#endif
