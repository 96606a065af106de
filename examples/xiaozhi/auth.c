/* xiaozhi-server — SHA-256, HMAC-SHA256 and the tokens built on them. */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void block(xz_sha256_t *s, const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^
                      (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^
                      (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = s->h[0], b = s->h[1], c = s->h[2], d = s->h[3];
    uint32_t e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) +
                      ((e & f) ^ (~e & g)) + K[i] + w[i];
        uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) +
                      ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d;
    s->h[4] += e; s->h[5] += f; s->h[6] += g; s->h[7] += h;
}

void xz_sha256_init(xz_sha256_t *s)
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
                                   0xa54ff53a, 0x510e527f, 0x9b05688c,
                                   0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->bytes = 0;
    s->fill = 0;
}

void xz_sha256_update(xz_sha256_t *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    s->bytes += len;
    if (s->fill) {
        size_t n = 64 - s->fill < len ? 64 - s->fill : len;
        memcpy(s->buf + s->fill, p, n);
        s->fill += n;
        p += n;
        len -= n;
        if (s->fill < 64)
            return;
        block(s, s->buf);
        s->fill = 0;
    }
    for (; len >= 64; p += 64, len -= 64)
        block(s, p);
    memcpy(s->buf, p, len);
    s->fill = len;
}

void xz_sha256_final(xz_sha256_t *s, uint8_t out[32])
{
    uint64_t bits = s->bytes * 8;
    uint8_t pad = 0x80;
    xz_sha256_update(s, &pad, 1);
    uint8_t zero = 0;
    while (s->fill != 56)
        xz_sha256_update(s, &zero, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    xz_sha256_update(s, len, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
}

void xz_hmac_sha256(const void *key, size_t klen, const void *msg,
                    size_t mlen, uint8_t out[32])
{
    uint8_t k[64] = {0}, pad[64], inner[32];
    xz_sha256_t s;
    if (klen > 64) {
        xz_sha256_init(&s);
        xz_sha256_update(&s, key, klen);
        xz_sha256_final(&s, k);
    } else if (klen) {
        memcpy(k, key, klen);
    }
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    xz_sha256_init(&s);
    xz_sha256_update(&s, pad, 64);
    xz_sha256_update(&s, msg, mlen);
    xz_sha256_final(&s, inner);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    xz_sha256_init(&s);
    xz_sha256_update(&s, pad, 64);
    xz_sha256_update(&s, inner, 32);
    xz_sha256_final(&s, out);
}

size_t xz_b64url(const uint8_t *in, size_t len, char *out)
{
    static const char a[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
                     in[i + 2];
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        out[o++] = a[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
    }
    out[o] = 0;
    return o;
}

/* sig (43 chars) "." decimal number */
static void sign(const char *secret, const char *msg, int64_t n,
                 char out[XZ_TOKEN_MAX])
{
    uint8_t mac[32];
    xz_hmac_sha256(secret, strlen(secret), msg, strlen(msg), mac);
    size_t l = xz_b64url(mac, 32, out);
    snprintf(out + l, XZ_TOKEN_MAX - l, ".%lld", (long long)n);
}

static int split(const char *token, size_t len, const char **sig,
                 size_t *siglen, int64_t *num)
{
    if (len >= 7 && !strncmp(token, "Bearer ", 7)) {
        token += 7;
        len -= 7;
    }
    const char *dot = memchr(token, '.', len);
    if (!dot || dot == token)
        return -1;
    const char *d = dot + 1, *e = token + len;
    if (d == e || e - d > 18)
        return -1;
    int64_t v = 0;
    for (; d < e; d++) {
        if (*d < '0' || *d > '9')
            return -1;
        v = v * 10 + (*d - '0');
    }
    *sig = token;
    *siglen = (size_t)(dot - token);
    *num = v;
    return 0;
}

static int ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return 0;
    unsigned char d = 0;
    for (size_t i = 0; i < alen; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

/* Device tokens sign "ws|client|device|ts", vision tokens
 * "vision|device|exp": the first field keeps the two kinds apart, so a
 * device token obtained with client id "vision" is no vision token. */
static int fmt_msg(char *buf, size_t cap, const char *kind, const char *a,
                   const char *b, int64_t n)
{
    int w = b ? snprintf(buf, cap, "%s|%s|%s|%lld", kind, a, b, (long long)n)
              : snprintf(buf, cap, "%s|%s|%lld", kind, a, (long long)n);
    return w < 0 || (size_t)w >= cap ? -1 : 0;
}

void xz_token_make(const char *secret, const char *client_id,
                   const char *device_id, int64_t now,
                   char out[XZ_TOKEN_MAX])
{
    char msg[512];
    if (fmt_msg(msg, sizeof msg, "ws", client_id, device_id, now) < 0)
        msg[0] = 0;
    sign(secret, msg, now, out);
}

int xz_token_check(const char *secret, const char *client_id,
                   const char *device_id, const char *token, size_t len,
                   int64_t now, uint32_t expire_s)
{
    const char *sig;
    size_t siglen;
    int64_t ts;
    if (split(token, len, &sig, &siglen, &ts) < 0)
        return -1;
    if (ts > now + 60 || now - ts > (int64_t)expire_s)
        return -1;
    char msg[512], want[XZ_TOKEN_MAX];
    if (fmt_msg(msg, sizeof msg, "ws", client_id, device_id, ts) < 0)
        return -1;
    sign(secret, msg, ts, want);
    const char *wdot = strchr(want, '.');
    return ct_equal(sig, siglen, want, (size_t)(wdot - want)) ? 0 : -1;
}

void xz_vision_token_make(const char *secret, const char *device_id,
                          int64_t exp, char out[XZ_TOKEN_MAX])
{
    char msg[512];
    if (fmt_msg(msg, sizeof msg, "vision", device_id, NULL, exp) < 0)
        msg[0] = 0;
    sign(secret, msg, exp, out);
}

int xz_vision_token_check(const char *secret, const char *device_id,
                          const char *token, size_t len, int64_t now)
{
    const char *sig;
    size_t siglen;
    int64_t exp;
    if (split(token, len, &sig, &siglen, &exp) < 0)
        return -1;
    char msg[512], want[XZ_TOKEN_MAX];
    if (fmt_msg(msg, sizeof msg, "vision", device_id, NULL, exp) < 0)
        return -1;
    sign(secret, msg, exp, want);
    const char *wdot = strchr(want, '.');
    if (!ct_equal(sig, siglen, want, (size_t)(wdot - want)))
        return -1;
    return now > exp ? -2 : 0;
}
