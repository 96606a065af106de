/* SHA-1 (RFC 3174), used only to compute Sec-WebSocket-Accept (RFC 6455
 * §4.2.2), where it is a fixed transform rather than a security measure.
 *
 * Words are assembled from bytes with shifts, never by casting the buffer,
 * so the code is independent of the host's byte order and alignment. */
#include "util/sha1.h"

#include <string.h>

static uint32_t rol(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* One 512-bit block (RFC 3174 §6.1, method 1). The 80-word schedule is
 * kept as a 16-word ring (method 2's trick) to keep the stack small. */
static void block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[16];
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];

    for (int i = 0; i < 16; i++)
        w[i] = load_be32(p + 4 * i);

    for (int t = 0; t < 80; t++) {
        uint32_t f, k;
        if (t >= 16) {
            uint32_t x = w[(t + 13) & 15] ^ w[(t + 8) & 15] ^
                         w[(t + 2) & 15] ^ w[t & 15];
            w[t & 15] = rol(x, 1);
        }
        if (t < 20) {
            f = (b & c) | (~b & d);
            k = 0x5A827999u;
        } else if (t < 40) {
            f = b ^ c ^ d;
            k = 0x6ED9EBA1u;
        } else if (t < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8F1BBCDCu;
        } else {
            f = b ^ c ^ d;
            k = 0xCA62C1D6u;
        }
        uint32_t tmp = rol(a, 5) + f + e + w[t & 15] + k;
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = tmp;
    }

    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void wisp__sha1_init(wisp__sha1 *s)
{
    s->h[0] = 0x67452301u;
    s->h[1] = 0xEFCDAB89u;
    s->h[2] = 0x98BADCFEu;
    s->h[3] = 0x10325476u;
    s->h[4] = 0xC3D2E1F0u;
    s->len = 0;
    s->used = 0;
}

void wisp__sha1_update(wisp__sha1 *s, const void *data, size_t len)
{
    const uint8_t *p = data;

    s->len += len;
    if (s->used) {
        size_t take = 64 - s->used;
        if (take > len)
            take = len;
        memcpy(s->buf + s->used, p, take);
        s->used += (uint32_t)take;
        p += take;
        len -= take;
        if (s->used < 64)
            return;
        block(s->h, s->buf);
        s->used = 0;
    }
    /* Whole blocks straight from the caller's buffer: no copy. */
    for (; len >= 64; p += 64, len -= 64)
        block(s->h, p);
    if (len) {
        memcpy(s->buf, p, len);
        s->used = (uint32_t)len;
    }
}

/* Padding (RFC 3174 §4): a 1 bit, zeros up to 56 mod 64 bytes, then the
 * message length in bits as a 64-bit big-endian integer. The state is
 * left finalized; call wisp__sha1_init before reusing it. */
void wisp__sha1_final(wisp__sha1 *s, uint8_t out[20])
{
    uint64_t bits = s->len * 8;
    uint32_t used = s->used;

    s->buf[used++] = 0x80;
    if (used > 56) {
        memset(s->buf + used, 0, 64 - used);
        block(s->h, s->buf);
        used = 0;
    }
    memset(s->buf + used, 0, 56 - used);
    store_be32(s->buf + 56, (uint32_t)(bits >> 32));
    store_be32(s->buf + 60, (uint32_t)bits);
    block(s->h, s->buf);

    for (int i = 0; i < 5; i++)
        store_be32(out + 4 * i, s->h[i]);
    s->used = 0;
}

void wisp__sha1_digest(const void *data, size_t len, uint8_t out[20])
{
    wisp__sha1 s;
    wisp__sha1_init(&s);
    wisp__sha1_update(&s, data, len);
    wisp__sha1_final(&s, out);
}
