/* Internal: pieces shared by the JSON reader (json_read.c) and writer
 * (json_write.c). */
#ifndef WISP_UTIL_JSON_INT_H
#define WISP_UTIL_JSON_INT_H

#include <stddef.h>
#include <stdint.h>

/* Length of the UTF-8 sequence that starts at `p` (a byte >= 0x80) and
 * lies entirely before `end`, or 0 when it is not valid RFC 3629 UTF-8:
 * a stray continuation byte, an overlong form (C0, C1, E0 80..9F,
 * F0 80..8F), a surrogate (ED A0..BF), a code point above U+10FFFF
 * (F4 90..BF, F5..FF) or a sequence cut short by `end`. Never reads at or
 * past `end`. */
static inline size_t wisp__json_utf8_seq(const uint8_t *p, const uint8_t *end)
{
    uint8_t c = p[0];
    size_t n;
    uint8_t lo = 0x80, hi = 0xBF; /* range of the second byte */

    if (c < 0xC2)
        return 0;
    if (c < 0xE0) {
        n = 2;
    } else if (c < 0xF0) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c < 0xF5) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if ((p[k] & 0xC0) != 0x80)
            return 0;
    return n;
}

#endif
