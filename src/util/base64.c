/* base64 (RFC 4648 §4): the standard alphabet, '=' padding required.
 *
 * The decoder is strict because its only caller checks client-supplied
 * Sec-WebSocket-Key values (RFC 6455 §4.2.1: a base64 16-byte nonce): it
 * accepts exactly the strings the encoder can produce, so every byte
 * string has a single accepted spelling (RFC 4648 §3.5 lets decoders
 * reject non-zero pad bits). */
#include "util/base64.h"

#include <stdint.h>

static const char alphabet[64] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t wisp__base64_encode(const void *in, size_t len, char *out)
{
    const uint8_t *p = in;
    char *o = out;

    for (; len >= 3; p += 3, len -= 3) {
        uint32_t v = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = alphabet[(v >> 6) & 63];
        *o++ = alphabet[v & 63];
    }
    if (len) {
        uint32_t v = (uint32_t)p[0] << 16;
        if (len == 2)
            v |= (uint32_t)p[1] << 8;
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = len == 2 ? alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    return (size_t)(o - out);
}

/* The 6-bit value of an alphabet character, or -1 (also for '='). */
static int value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

ssize_t wisp__base64_decode(const char *in, size_t len, void *out)
{
    const unsigned char *p = (const unsigned char *)in;
    uint8_t *o = out;

    if (len % 4)
        return -1;
    for (size_t i = 0; i < len; i += 4, p += 4) {
        int a = value(p[0]), b = value(p[1]);
        int c = value(p[2]), d = value(p[3]);
        if (a < 0 || b < 0)
            return -1;
        uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12;
        if (c >= 0 && d >= 0) {
            v |= (uint32_t)c << 6 | (uint32_t)d;
            *o++ = (uint8_t)(v >> 16);
            *o++ = (uint8_t)(v >> 8);
            *o++ = (uint8_t)v;
            continue;
        }
        /* Padding: only in the last quantum, as "xx==" or "xxx=", and the
         * bits the pad characters stand for must be zero. */
        if (i + 4 != len || p[3] != '=')
            return -1;
        if (p[2] == '=') {
            if (b & 0x0F)
                return -1;
            *o++ = (uint8_t)(v >> 16);
        } else {
            if (c < 0 || (c & 0x03))
                return -1;
            v |= (uint32_t)c << 6;
            *o++ = (uint8_t)(v >> 16);
            *o++ = (uint8_t)(v >> 8);
        }
    }
    return (ssize_t)(o - (uint8_t *)out);
}
