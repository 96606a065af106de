/* Tests for src/ws/frame.c: the client frame header parser, unmasking and
 * the server header encoder (RFC 6455 §5). Parser rows are numbered after
 * the Autobahn|Testsuite case groups they mirror (1.x framing, 2.x control
 * frames, 3.x reserved bits, 4.x opcodes, 5.x fragmentation); "-" marks a
 * row with no Autobahn counterpart. */
#include <stdint.h>

#include "../test.h"
#include "ws/frame.h"

/* The mask of the RFC's own examples (§5.7). */
#define M "\x37\xfa\x21\x3d"
#define B(s) s, sizeof(s) - 1

typedef struct row {
    const char *id;      /* Autobahn case, or "-" */
    const char *name;
    const char *in;
    size_t in_len;
    uint64_t max_frame;
    uint8_t allowed_rsv;
    ssize_t want;        /* header length, or a WISP__WS_E* code */
    size_t at;           /* shortest prefix giving `want` (0: the header
                            length, or in_len for EAGAIN) */
    uint8_t fin, rsv, opcode;
    uint64_t len;
} row;

/* A row that parses: header length, then the fields it must yield. */
#define PASS(hl, fin, rsv, op, len) hl, 0, fin, rsv, op, len
/* A row that fails (or needs more): the code, and the shortest prefix
 * that gives it (0: the whole input). */
#define FAIL(code, at) code, at, 0, 0, 0, 0
#define EAGAIN_ WISP__WS_EAGAIN
#define EPROTO_ WISP__WS_EPROTO
#define ETOOBIG_ WISP__WS_ETOOBIG

static const row rows[] = {
    /* 1.x framing: every length form at its boundaries (§5.2). */
    {"1.1.1", "text, 0 bytes, 7-bit length", B("\x81\x80" M), 0, 0,
     PASS(6, 1, 0, 1, 0)},
    {"1.1.2", "text, 125 bytes, largest 7-bit length", B("\x81\xfd" M), 0, 0,
     PASS(6, 1, 0, 1, 125)},
    {"1.1.3", "text, 126 bytes, smallest 16-bit length",
     B("\x81\xfe\x00\x7e" M), 0, 0, PASS(8, 1, 0, 1, 126)},
    {"1.1.4", "text, 127 bytes, 16-bit length", B("\x81\xfe\x00\x7f" M), 0, 0,
     PASS(8, 1, 0, 1, 127)},
    {"1.1.5", "text, 128 bytes, 16-bit length", B("\x81\xfe\x00\x80" M), 0, 0,
     PASS(8, 1, 0, 1, 128)},
    {"1.1.6", "text, 65535 bytes, largest 16-bit length",
     B("\x81\xfe\xff\xff" M), 0, 0, PASS(8, 1, 0, 1, 65535)},
    {"1.1.7", "text, 65536 bytes, smallest 64-bit length",
     B("\x81\xff\x00\x00\x00\x00\x00\x01\x00\x00" M), 0, 0,
     PASS(14, 1, 0, 1, 65536)},
    {"1.2.1", "binary, 0 bytes", B("\x82\x80" M), 0, 0, PASS(6, 1, 0, 2, 0)},
    {"1.2.2", "binary, 125 bytes", B("\x82\xfd" M),
     0, 0, PASS(6, 1, 0, 2, 125)},
    {"1.2.3", "binary, 126 bytes", B("\x82\xfe\x00\x7e" M), 0, 0,
     PASS(8, 1, 0, 2, 126)},
    {"1.2.6", "binary, 65535 bytes", B("\x82\xfe\xff\xff" M), 0, 0,
     PASS(8, 1, 0, 2, 65535)},
    {"1.2.7", "binary, 65536 bytes",
     B("\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00" M), 0, 0,
     PASS(14, 1, 0, 2, 65536)},
    {"1.x", "binary, 2^32 bytes, past 32 bits",
     B("\x82\xff\x00\x00\x00\x01\x00\x00\x00\x00" M), 0, 0,
     PASS(14, 1, 0, 2, 4294967296ull)},
    {"1.x", "binary, 2^63-1 bytes, largest length, max_frame 0 = no limit",
     B("\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff" M), 0, 0,
     PASS(14, 1, 0, 2, 0x7fffffffffffffffull)},
    {"1.x", "64-bit length with its top bit set is refused (§5.2)",
     B("\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00" M), 0, 0, FAIL(EPROTO_, 3)},
    {"1.x", "64-bit length 2^64-1 is refused",
     B("\x82\xff\xff\xff\xff\xff\xff\xff\xff\xff" M), 0, 0, FAIL(EPROTO_, 3)},
    {"-", "16-bit form of a length that fits in 7 bits is accepted",
     B("\x81\xfe\x00\x05" M), 0, 0, PASS(8, 1, 0, 1, 5)},
    {"-", "64-bit form of a length that fits in 16 bits is accepted",
     B("\x82\xff\x00\x00\x00\x00\x00\x00\x00\x7e" M), 0, 0,
     PASS(14, 1, 0, 2, 126)},
    {"-", "64-bit form of length 0 is accepted",
     B("\x82\xff\x00\x00\x00\x00\x00\x00\x00\x00" M), 0, 0,
     PASS(14, 1, 0, 2, 0)},
    {"-", "header followed by payload stops at the header (\"Hello\", §5.7)",
     B("\x81\x85" M "\x7f\x9f\x4d\x51\x58"), 0, 0, PASS(6, 1, 0, 1, 5)},
    {"-", "header followed by the next frame stops at the header",
     B("\x82\x80" M "\x81\x80" M), 0, 0, PASS(6, 1, 0, 2, 0)},

    /* max_frame (→ close 1009). */
    {"-", "payload equal to max_frame is accepted",
     B("\x82\xfe\xff\xff" M), 65535, 0, PASS(8, 1, 0, 2, 65535)},
    {"-", "payload one over max_frame is refused",
     B("\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00" M),
     65535, 0, FAIL(ETOOBIG_, 10)},
    {"-", "16-bit length over max_frame is refused before the mask",
     B("\x82\xfe\x00\x7e" M), 125, 0, FAIL(ETOOBIG_, 4)},
    {"-", "7-bit length over max_frame is refused",
     B("\x81\x82" M), 1, 0, FAIL(ETOOBIG_, 2)},
    {"-", "max_frame 1 allows 1 byte", B("\x81\x81" M), 1, 0,
     PASS(6, 1, 0, 1, 1)},
    {"-", "2^63-1 bytes over a 16 MiB max_frame is refused",
     B("\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff" M), 16u << 20, 0,
     FAIL(ETOOBIG_, 10)},

    /* 2.x control frames (§5.5). */
    {"2.1", "ping, 0 bytes", B("\x89\x80" M), 0, 0, PASS(6, 1, 0, 9, 0)},
    {"2.4", "ping, 125 bytes is the largest control payload",
     B("\x89\xfd" M), 0, 0, PASS(6, 1, 0, 9, 125)},
    {"2.5", "ping, 126 bytes is refused", B("\x89\xfe\x00\x7e" M), 0, 0,
     FAIL(EPROTO_, 4)},
    {"2.5", "ping, 126 bytes in 64-bit form is refused",
     B("\x89\xff\x00\x00\x00\x00\x00\x00\x00\x7e" M), 0, 0, FAIL(EPROTO_, 10)},
    {"2.5", "ping, length top bit set is refused at the first length byte",
     B("\x89\xff\x80\x00\x00\x00\x00\x00\x00\x00" M), 0, 0, FAIL(EPROTO_, 3)},
    {"-", "ping, 5 bytes in 16-bit form is accepted (value, not form)",
     B("\x89\xfe\x00\x05" M), 0, 0, PASS(8, 1, 0, 9, 5)},
    {"2.8", "pong, 125 bytes", B("\x8a\xfd" M), 0, 0, PASS(6, 1, 0, 10, 125)},
    {"2.7", "pong, 0 bytes", B("\x8a\x80" M), 0, 0, PASS(6, 1, 0, 10, 0)},
    {"-", "pong, 126 bytes is refused", B("\x8a\xfe\x00\x7e" M), 0, 0,
     FAIL(EPROTO_, 4)},
    {"7.1.1", "close, 125 bytes", B("\x88\xfd" M),
     0, 0, PASS(6, 1, 0, 8, 125)},
    {"7.3.6", "close, 126 bytes is refused", B("\x88\xfe\x00\x7e" M), 0, 0,
     FAIL(EPROTO_, 4)},
    {"-", "control limit applies even under a larger max_frame",
     B("\x89\xfe\x00\x7e" M), 1000, 0, FAIL(EPROTO_, 4)},
    {"5.1", "ping with FIN clear (fragmented control) is refused",
     B("\x09\x80" M), 0, 0, FAIL(EPROTO_, 1)},
    {"5.2", "pong with FIN clear is refused", B("\x0a\x80" M), 0, 0,
     FAIL(EPROTO_, 1)},
    {"-", "close with FIN clear is refused", B("\x08\x80" M), 0, 0,
     FAIL(EPROTO_, 1)},

    /* 3.x reserved bits (§5.2): rsv is the 3-bit value RSV1 RSV2 RSV3. */
    {"3.1", "RSV=1 (RSV3) is refused", B("\x91\x80" M),
     0, 0, FAIL(EPROTO_, 1)},
    {"3.2", "RSV=2 (RSV2) is refused", B("\xa1\x80" M),
     0, 0, FAIL(EPROTO_, 1)},
    {"3.3", "RSV=3 is refused", B("\xb1\x80" M), 0, 0, FAIL(EPROTO_, 1)},
    {"3.4", "RSV=4 (RSV1) is refused", B("\xc1\x80" M),
     0, 0, FAIL(EPROTO_, 1)},
    {"3.5", "RSV=5 on binary is refused", B("\xd2\x80" M),
     0, 0, FAIL(EPROTO_, 1)},
    {"3.6", "RSV=6 on ping is refused", B("\xe9\x80" M),
     0, 0, FAIL(EPROTO_, 1)},
    {"3.7", "RSV=7 on close is refused", B("\xf8\x80" M),
     0, 0, FAIL(EPROTO_, 1)},
    {"3.4", "RSV1 is accepted when negotiated (permessage-deflate)",
     B("\xc1\x80" M), 0, 4, PASS(6, 1, 4, 1, 0)},
    {"3.5", "RSV1+RSV3 is refused when only RSV1 is negotiated",
     B("\xd1\x80" M), 0, 4, FAIL(EPROTO_, 1)},
    {"3.1", "RSV3 is refused when only RSV1 is negotiated",
     B("\x91\x80" M), 0, 4, FAIL(EPROTO_, 1)},
    {"3.7", "RSV=7 is accepted when all three are negotiated",
     B("\xf2\x80" M), 0, 7, PASS(6, 1, 7, 2, 0)},
    {"3.2", "RSV2 alone negotiated", B("\xa0\x80" M), 0, 2,
     PASS(6, 1, 2, 0, 0)},

    /* 4.x opcodes (§5.2). */
    {"4.1.1", "opcode 3 is refused", B("\x83\x80" M), 0, 0, FAIL(EPROTO_, 1)},
    {"4.1.2", "opcode 4 is refused", B("\x84\x80" M), 0, 0, FAIL(EPROTO_, 1)},
    {"4.1.3", "opcode 5 is refused", B("\x85\x80" M), 0, 0, FAIL(EPROTO_, 1)},
    {"4.1.4", "opcode 6 is refused", B("\x86\x80" M), 0, 0, FAIL(EPROTO_, 1)},
    {"4.1.5", "opcode 7 is refused", B("\x87\x80" M), 0, 0, FAIL(EPROTO_, 1)},
    {"4.2.1", "opcode 11 is refused", B("\x8b\x80" M), 0, 0, FAIL(EPROTO_, 1)},
    {"4.2.2", "opcode 12 is refused", B("\x8c\x80" M), 0, 0, FAIL(EPROTO_, 1)},
    {"4.2.3", "opcode 13 is refused", B("\x8d\x80" M), 0, 0, FAIL(EPROTO_, 1)},
    {"4.2.4", "opcode 14 is refused", B("\x8e\x80" M), 0, 0, FAIL(EPROTO_, 1)},
    {"4.2.5", "opcode 15 is refused", B("\x8f\x80" M), 0, 0, FAIL(EPROTO_, 1)},
    {"4.1.1", "opcode 3 with FIN clear is refused", B("\x03\x80" M), 0, 0,
     FAIL(EPROTO_, 1)},

    /* 5.x fragmentation: the frame rules only; the message rules
     * (continuation without a start, data inside a message) are the
     * session's. */
    {"5.3", "text with FIN clear (first fragment)", B("\x01\x85" M), 0, 0,
     PASS(6, 0, 0, 1, 5)},
    {"5.3", "continuation with FIN clear", B("\x00\x85" M), 0, 0,
     PASS(6, 0, 0, 0, 5)},
    {"5.3", "continuation with FIN set", B("\x80\x85" M), 0, 0,
     PASS(6, 1, 0, 0, 5)},
    {"5.4", "binary with FIN clear, 16-bit length", B("\x02\xfe\x01\x00" M),
     0, 0, PASS(8, 0, 0, 2, 256)},

    /* §5.1: clients must mask. */
    {"-", "unmasked text is refused", B("\x81\x05" "Hello"), 0, 0,
     FAIL(EPROTO_, 2)},
    {"-", "unmasked ping is refused", B("\x89\x00"), 0, 0, FAIL(EPROTO_, 2)},
    {"-", "unmasked 64-bit length is refused before the length",
     B("\x82\x7f\x00\x00"), 0, 0, FAIL(EPROTO_, 2)},

    /* Which check wins: the first failing byte. */
    {"-", "bad opcode beats a missing mask", B("\x83\x05"),
     0, 0, FAIL(EPROTO_, 1)},
    {"-", "missing mask beats an oversized length", B("\x82\x7e\xff\xff"),
     1, 0, FAIL(EPROTO_, 2)},
    {"-", "control length beats max_frame", B("\x89\xfe\x00\x7e" M), 1, 0,
     FAIL(EPROTO_, 4)},

    /* Incomplete headers. */
    {"-", "empty input needs more", B(""), 0, 0, FAIL(EAGAIN_, 0)},
    {"-", "one byte needs more", B("\x81"), 0, 0, FAIL(EAGAIN_, 0)},
    {"-", "mask cut short needs more", B("\x81\x80\x37\xfa\x21"), 0, 0,
     FAIL(EAGAIN_, 0)},
    {"-", "16-bit length cut short needs more", B("\x81\xfe\x00"), 0, 0,
     FAIL(EAGAIN_, 0)},
    {"-", "64-bit length cut short needs more",
     B("\x82\xff\x00\x00\x00\x00\x00\x00\x00"), 0, 0, FAIL(EAGAIN_, 0)},
};

static void check_fields(const row *r, const wisp__ws_header *h)
{
    CHECK_EQ_INT(h->fin, r->fin);
    CHECK_EQ_INT(h->rsv, r->rsv);
    CHECK_EQ_INT(h->opcode, r->opcode);
    CHECK_EQ_INT(h->masked, 1);
    CHECK(h->len == r->len);
    CHECK_EQ_INT(h->header_len, r->want);
    CHECK(memcmp(h->mask, r->in + r->want - 4, 4) == 0);
}

static void test_parse_row(const row *r)
{
    const uint8_t *in = (const uint8_t *)r->in;
    size_t at = r->at ? r->at : r->want >= 0 ? (size_t)r->want : r->in_len;
    wisp__ws_header h;
    ssize_t got;

    /* Whole. */
    memset(&h, 0xa5, sizeof h);
    got = wisp__ws_parse_header(in, r->in_len, r->max_frame, r->allowed_rsv,
                                &h);
    CHECK_MSG(got == r->want, "%s %s: whole gave %zd, want %zd", r->id,
              r->name, got, r->want);
    if (r->want >= 0 && got == r->want)
        check_fields(r, &h);

    /* Byte by byte, each prefix ending at a guard page: EAGAIN below `at`,
     * then the final answer for every longer prefix. */
    for (size_t k = 0; k <= r->in_len; k++) {
        t_guard g = t_guard_copy(in, k);
        memset(&h, 0xa5, sizeof h);
        got = wisp__ws_parse_header((const uint8_t *)g.data, k, r->max_frame,
                                    r->allowed_rsv, &h);
        ssize_t want = k < at ? WISP__WS_EAGAIN : r->want;
        CHECK_MSG(got == want, "%s %s: prefix %zu gave %zd, want %zd",
                  r->id, r->name, k, got, want);
        if (want >= 0 && got == want)
            check_fields(r, &h);
        t_guard_free(&g);
    }
}

/* ------------------------------------------------------------- unmask */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    /* xorshift64*: deterministic, so a failure reproduces. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static void fill(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)rnd();
}

static void naive_unmask(uint8_t *p, size_t n, const uint8_t mask[4],
                         uint64_t offset)
{
    for (size_t i = 0; i < n; i++)
        p[i] ^= mask[(offset + i) % 4];
}

/* Unmask n random bytes at buf + misalign with the given offset and
 * compare with the naive loop; bytes around the range must not change. */
static int unmask_matches(size_t n, size_t misalign, uint64_t offset,
                          uint8_t *buf, uint8_t *ref, size_t cap)
{
    uint8_t mask[4];
    fill(mask, 4);
    fill(buf, cap);
    memcpy(ref, buf, cap);
    wisp__ws_unmask(buf + misalign, n, mask, offset);
    naive_unmask(ref + misalign, n, mask, offset);
    return memcmp(buf, ref, cap) == 0;
}

static void test_unmask(void)
{
    enum { CAP = 70000 + 64 };
    static uint8_t buf[CAP], ref[CAP];
    static const size_t large[] = {4096, 4097, 65535, 65536 + 7, 70000};
    int bad = 0;

    /* Every offset phase twice over, every short length, every alignment
     * of the start pointer. */
    for (uint64_t off = 0; off < 16; off++)
        for (size_t n = 0; n <= 100; n++)
            for (size_t mis = 0; mis < 8; mis++)
                if (!unmask_matches(n, mis, off, buf, ref, 128 + 16)) {
                    if (!bad++)
                        fprintf(stderr, "unmask: off %llu n %zu mis %zu\n",
                                (unsigned long long)off, n, mis);
                }
    CHECK_EQ_INT(bad, 0);

    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++)
        for (uint64_t off = 0; off < 4; off++)
            CHECK_MSG(unmask_matches(large[i], (size_t)off * 3 % 8, off, buf,
                                     ref, CAP),
                      "large n %zu off %llu", large[i],
                      (unsigned long long)off);

    /* Only offset % 4 matters, however large the offset. */
    CHECK(unmask_matches(37, 1, (1ull << 40) + 3, buf, ref, 64));
    CHECK(unmask_matches(37, 5, UINT64_MAX, buf, ref, 64));

    /* Unmasking in pieces with a running offset equals one pass. */
    {
        uint8_t mask[4];
        size_t n = 1000;
        fill(mask, 4);
        fill(buf, n);
        memcpy(ref, buf, n);
        naive_unmask(ref, n, mask, 0);
        for (size_t pos = 0; pos < n;) {
            size_t piece = (size_t)(rnd() % 23);
            if (piece > n - pos)
                piece = n - pos;
            wisp__ws_unmask(buf + pos, piece, mask, pos);
            pos += piece;
        }
        CHECK(memcmp(buf, ref, n) == 0);
    }

    /* Unmasking twice is the identity. */
    {
        uint8_t mask[4];
        fill(mask, 4);
        fill(buf, 300);
        memcpy(ref, buf, 300);
        wisp__ws_unmask(buf + 3, 290, mask, 2);
        wisp__ws_unmask(buf + 3, 290, mask, 2);
        CHECK(memcmp(buf, ref, 300) == 0);
    }

    /* The RFC's example: "Hello" masked with 37 fa 21 3d (§5.7). */
    {
        uint8_t hello[] = {0x7f, 0x9f, 0x4d, 0x51, 0x58};
        const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
        wisp__ws_unmask(hello, 5, mask, 0);
        CHECK_STRN(hello, 5, "Hello");
    }

    /* Data ending at a guard page: the word loop must stop at the end. */
    for (size_t n = 0; n <= 40; n++) {
        uint8_t src[40], want[40];
        const uint8_t mask[4] = {1, 2, 4, 8};
        fill(src, n);
        memcpy(want, src, n);
        naive_unmask(want, n, mask, n);
        t_guard g = t_guard_copy(src, n);
        wisp__ws_unmask((uint8_t *)g.data, n, mask, n);
        CHECK_MSG(memcmp(g.data, want, n) == 0, "guard n %zu", n);
        t_guard_free(&g);
    }

}

/* ------------------------------------------------------------- encode */

static void test_encode(void)
{
    static const struct {
        uint64_t len;
        size_t want;
    } lens[] = {
        {0, 2},           {1, 2},
        {125, 2},         {126, 4},
        {127, 4},         {65535, 4},
        {65536, 10},      {4294967295ull, 10},
        {4294967296ull, 10}, {0x7fffffffffffffffull, 10},
    };
    static const uint8_t ops[] = {WISP__WS_CONT, WISP__WS_TEXT,
                                  WISP__WS_BINARY, WISP__WS_CLOSE,
                                  WISP__WS_PING, WISP__WS_PONG};

    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        for (size_t j = 0; j < sizeof ops / sizeof ops[0]; j++)
            for (int fin = 0; fin <= 1; fin++) {
                uint64_t len = lens[i].len;
                uint8_t out[16];
                memset(out, 0xee, sizeof out);
                size_t n = wisp__ws_encode_header(out, fin, ops[j], len);
                CHECK_EQ_INT(n, lens[i].want);
                for (size_t k = n; k < sizeof out; k++)
                    CHECK_EQ_INT(out[k], 0xee);

                /* The bytes, against the §5.2 layout. */
                CHECK_EQ_INT(out[0], (fin ? 0x80 : 0) | ops[j]);
                CHECK_EQ_INT(out[1] & 0x80, 0); /* servers never mask */
                uint64_t dec;
                if (n == 2) {
                    dec = out[1];
                } else if (n == 4) {
                    CHECK_EQ_INT(out[1], 126);
                    dec = (uint64_t)out[2] << 8 | out[3];
                } else {
                    CHECK_EQ_INT(out[1], 127);
                    dec = 0;
                    for (int b = 2; b < 10; b++)
                        dec = dec << 8 | out[b];
                }
                CHECK(dec == len);

                /* Round trip through the parser, masked as a client
                 * would. Control frames obey the parser's own rules. */
                uint8_t in[16];
                memcpy(in, out, n);
                in[1] |= 0x80;
                memcpy(in + n, M, 4);
                wisp__ws_header h;
                ssize_t got = wisp__ws_parse_header(in, n + 4, 0, 0, &h);
                int control = ops[j] >= WISP__WS_CLOSE;
                if (control && (!fin || len > 125)) {
                    CHECK_EQ_INT(got, WISP__WS_EPROTO);
                    continue;
                }
                CHECK_EQ_INT(got, (ssize_t)(n + 4));
                CHECK_EQ_INT(h.fin, fin);
                CHECK_EQ_INT(h.opcode, ops[j]);
                CHECK_EQ_INT(h.rsv, 0);
                CHECK(h.len == len);
                CHECK(memcmp(h.mask, M, 4) == 0);
            }
}

/* Server-to-client frames (the client's side, §5.1): unmasked, no key;
 * a masked one is refused; every prefix is EAGAIN or the answer. */
static void test_from_server(void)
{
    wisp__ws_header h;
    static const uint8_t text[] = {0x81, 0x02, 'h', 'i'};
    CHECK_EQ_INT(wisp__ws_parse_header_dir(text, sizeof text, 0, 0, 1, &h),
                 2);
    CHECK_EQ_INT(h.opcode, WISP__WS_TEXT);
    CHECK_EQ_INT(h.len, 2);
    CHECK_EQ_INT(h.masked, 0);
    CHECK_EQ_INT(h.header_len, 2);
    CHECK(h.mask[0] == 0 && h.mask[1] == 0 && h.mask[2] == 0 &&
          h.mask[3] == 0);
    static const uint8_t masked[] = {0x81, 0x82, 1, 2, 3, 4, 'h', 'i'};
    CHECK_EQ_INT(wisp__ws_parse_header_dir(masked, sizeof masked, 0, 0, 1,
                                           &h),
                 WISP__WS_EPROTO);
    /* The same masked frame is what a server wants from a client. */
    CHECK_EQ_INT(wisp__ws_parse_header_dir(masked, sizeof masked, 0, 0, 0,
                                           &h),
                 6);
    CHECK_EQ_INT(wisp__ws_parse_header_dir(text, sizeof text, 0, 0, 0, &h),
                 WISP__WS_EPROTO);
    static const uint8_t len16[] = {0x82, 126, 0x01, 0x00};
    CHECK_EQ_INT(wisp__ws_parse_header_dir(len16, 3, 0, 0, 1, &h),
                 WISP__WS_EAGAIN);
    CHECK_EQ_INT(wisp__ws_parse_header_dir(len16, 4, 0, 0, 1, &h), 4);
    CHECK_EQ_INT(h.len, 256);
    CHECK_EQ_INT(wisp__ws_parse_header_dir(len16, 4, 255, 0, 1, &h),
                 WISP__WS_ETOOBIG);
    static const uint8_t ping_long[] = {0x89, 126, 0x00, 0x7e};
    CHECK_EQ_INT(wisp__ws_parse_header_dir(ping_long, 4, 0, 0, 1, &h),
                 WISP__WS_EPROTO);
}

int main(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        test_parse_row(&rows[i]);
    test_unmask();
    test_encode();
    test_from_server();
    return t_done("ws/frame");
}
