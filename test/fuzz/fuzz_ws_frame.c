/* libFuzzer target for src/ws/frame.c.
 * Built by test/fuzz/meson.build; docs/fuzzing.md has the commands.
 *
 * Input layout: byte 0 picks allowed_rsv (low 3 bits) and how max_frame is
 * formed (high bits), bytes 1-8 feed max_frame, the unmask offset and the
 * length to encode; the frame bytes start at byte 9. Besides crashes and
 * sanitizer reports it checks properties, trapping when one fails:
 *   - the parser's answer is one it documents, and a header it accepts
 *     agrees with its bytes and with every check the parser promises;
 *   - every prefix of the frame gives WISP__WS_EAGAIN or the whole input's
 *     answer, switching exactly once, and a header is first accepted at
 *     the prefix as long as the header (each prefix ending at a poisoned
 *     byte, so reading ahead is an ASan report);
 *   - unmasking a copy of the input, whole or in two pieces with a running
 *     offset and from an unaligned start, matches the naive byte loop;
 *   - the encoder's header is minimal and parses back to the same fields
 *     once the mask bit is set. A crash found here becomes a row in
 *     test/ws/frame_test.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ws/frame.h"

#if defined(__has_include)
#if __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h>
#endif
#endif
#ifndef ASAN_POISON_MEMORY_REGION
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

#define PREFIX 9

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                          \
    do {                                                                    \
        if (!(c))                                                           \
            __builtin_trap();                                               \
    } while (0)

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void same_header(const wisp__ws_header *a, const wisp__ws_header *b)
{
    REQUIRE(a->fin == b->fin && a->rsv == b->rsv &&
            a->opcode == b->opcode && a->masked == b->masked &&
            memcmp(a->mask, b->mask, 4) == 0 && a->len == b->len &&
            a->header_len == b->header_len);
}

/* The whole input's answer, checked against what the header promises. */
static ssize_t parse_whole(const uint8_t *buf, size_t len,
                           uint64_t max_frame, uint8_t allowed_rsv,
                           wisp__ws_header *h)
{
    ssize_t r = wisp__ws_parse_header(buf, len, max_frame, allowed_rsv, h);
    REQUIRE(r >= 0 || r == WISP__WS_EAGAIN || r == WISP__WS_EPROTO ||
            r == WISP__WS_ETOOBIG);
    /* A header is at most 14 bytes, so 14 are always enough to decide. */
    REQUIRE(r != WISP__WS_EAGAIN || len < 14);
    if (r < 0)
        return r;
    REQUIRE(r >= 6 && r <= 14 && (size_t)r <= len);
    REQUIRE(h->header_len == (uint32_t)r);
    REQUIRE(h->fin == buf[0] >> 7);
    REQUIRE(h->rsv == ((buf[0] >> 4) & 7));
    REQUIRE((h->rsv & ~allowed_rsv) == 0);
    REQUIRE(h->opcode == (buf[0] & 15));
    REQUIRE(h->opcode <= 2 || (h->opcode >= 8 && h->opcode <= 10));
    REQUIRE(h->masked == 1 && (buf[1] & 0x80));
    REQUIRE(memcmp(h->mask, buf + r - 4, 4) == 0);
    REQUIRE(!(h->len >> 63));
    REQUIRE(max_frame == 0 || h->len <= max_frame);
    if (h->opcode >= 8)
        REQUIRE(h->fin && h->len <= 125);
    uint8_t len7 = buf[1] & 0x7f;
    if (len7 <= 125)
        REQUIRE(r == 6 && h->len == len7);
    else if (len7 == 126)
        REQUIRE(r == 8 && h->len == ((uint64_t)buf[2] << 8 | buf[3]));
    else
        REQUIRE(r == 14 && h->len == be64(buf + 2));
    return r;
}

/* Every prefix, each in a buffer whose next byte is poisoned. */
static void parse_prefixes(const uint8_t *buf, size_t len,
                           uint64_t max_frame, uint8_t allowed_rsv,
                           ssize_t whole, const wisp__ws_header *hw)
{
    size_t n = len < 16 ? len : 16;
    uint8_t *copy = malloc(n + 1);
    REQUIRE(copy);
    int decided = 0;

    for (size_t k = 0; k <= n; k++) {
        wisp__ws_header h;
        memcpy(copy, buf, k);
        ASAN_POISON_MEMORY_REGION(copy + k, n + 1 - k);
        ssize_t r = wisp__ws_parse_header(copy, k, max_frame, allowed_rsv,
                                          &h);
        ASAN_UNPOISON_MEMORY_REGION(copy + k, n + 1 - k);
        if (r == WISP__WS_EAGAIN) {
            REQUIRE(!decided);
            continue;
        }
        REQUIRE(r == whole);
        if (r >= 0) {
            REQUIRE(decided || (size_t)r == k);
            same_header(&h, hw);
        }
        decided = 1;
    }
    REQUIRE(decided == (whole != WISP__WS_EAGAIN));
    free(copy);
}

static void naive_unmask(uint8_t *p, size_t n, const uint8_t mask[4],
                         uint64_t offset)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= mask[(offset + i) % 4];
}

static void check_unmask(const uint8_t *buf, size_t len,
                         const uint8_t mask[4], uint64_t offset,
                         size_t misalign, size_t split)
{
    /* Room to start at any of 8 alignments; exact size after the data, so
     * ASan catches a write past the end. */
    uint8_t *a = malloc(len + 8), *b = malloc(len + 8);
    REQUIRE(a && b);
    memcpy(a + misalign, buf, len);
    memcpy(b + misalign, buf, len);
    naive_unmask(b + misalign, len, mask, offset);

    if (split > len)
        split = len;
    wisp__ws_unmask(a + misalign, split, mask, offset);
    wisp__ws_unmask(a + misalign + split, len - split, mask, offset + split);
    REQUIRE(memcmp(a + misalign, b + misalign, len) == 0);
    free(a);
    free(b);
}

static void check_encode(uint64_t len, uint8_t pick)
{
    static const uint8_t ops[] = {WISP__WS_CONT,  WISP__WS_TEXT,
                                  WISP__WS_BINARY, WISP__WS_CLOSE,
                                  WISP__WS_PING,  WISP__WS_PONG};
    uint8_t op = ops[pick % 6];
    int fin = (pick >> 3) & 1;
    uint8_t out[14];
    len &= ~(1ull << 63);

    size_t n = wisp__ws_encode_header(out, fin, op, len);
    REQUIRE(n == (len <= 125 ? 2u : len <= 65535 ? 4u : 10u));
    REQUIRE(out[0] == ((fin ? 0x80 : 0) | op));
    REQUIRE(!(out[1] & 0x80));

    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    out[1] |= 0x80;
    memcpy(out + n, mask, 4);
    wisp__ws_header h;
    ssize_t r = wisp__ws_parse_header(out, n + 4, 0, 0, &h);
    if (op >= WISP__WS_CLOSE && (!fin || len > 125)) {
        REQUIRE(r == WISP__WS_EPROTO);
        return;
    }
    REQUIRE(r == (ssize_t)(n + 4));
    REQUIRE(h.fin == fin && h.rsv == 0 && h.opcode == op && h.len == len &&
            memcmp(h.mask, mask, 4) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < PREFIX)
        return 0;
    uint8_t allowed_rsv = data[0] & 7;
    uint64_t knob = be64(data + 1);
    uint64_t max_frame;
    switch (data[0] >> 6) {
    case 0: max_frame = 0; break;
    case 1: max_frame = knob & 0xff; break;        /* around 7-bit */
    case 2: max_frame = knob & 0x1ffff; break;     /* around 16-bit */
    default: max_frame = knob; break;
    }
    const uint8_t *buf = data + PREFIX;
    size_t len = size - PREFIX;

    wisp__ws_header h;
    memset(&h, 0, sizeof h);
    ssize_t r = parse_whole(buf, len, max_frame, allowed_rsv, &h);
    parse_prefixes(buf, len, max_frame, allowed_rsv, r, &h);

    /* Unmask what follows the header with its own mask, or the whole
     * frame with bytes from the knob when no header parsed. */
    uint8_t mask[4];
    memcpy(mask, r >= 0 ? h.mask : data + 1, 4);
    size_t start = r >= 0 ? (size_t)r : 0;
    check_unmask(buf + start, len - start, mask, knob >> 8,
                 (size_t)(data[0] >> 3) & 7, (size_t)(knob & 0xff));

    check_encode(knob, data[0]);
    check_encode(knob & 0x1ffff, data[8]);
    check_encode(knob & 0xff, (uint8_t)(data[0] ^ data[8]));
    return 0;
}
