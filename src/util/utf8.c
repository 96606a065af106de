/* Incremental UTF-8 validation (RFC 3629 §4) for WebSocket text messages,
 * which RFC 6455 §8.1 requires to be failed as soon as they are invalid,
 * even across fragments.
 *
 * The validator is a DFA over bytes. At a code point boundary (ACCEPT) the
 * lead byte picks a state that names what the following bytes may be.
 * Every state other than ACCEPT and BAD expects exactly one continuation
 * byte in a range [lo, hi] and then moves to a fixed next state. The lead
 * bytes whose second byte is narrower than 80..BF get their own state;
 * that narrowing is where RFC 3629's exclusions live:
 *
 *   E0 A0..BF   3-byte forms below U+0800 are overlong
 *   ED 80..9F   ED A0..BF would encode the surrogates U+D800..U+DFFF
 *   F0 90..BF   4-byte forms below U+10000 are overlong
 *   F4 80..8F   F4 90..BF would encode code points above U+10FFFF
 *
 * C0, C1 (overlong 2-byte forms) and F5..FF (above U+10FFFF, or the old
 * 5- and 6-byte forms) can never start a valid sequence and go straight
 * to BAD, as do continuation bytes at a boundary. So BAD is reached at the
 * first byte after which no continuation could make the input valid. */
#include "util/utf8.h"

#include <string.h>

enum state {
    ACCEPT = 0, /* at a code point boundary (wisp__utf8_complete) */
    BAD = 1,    /* invalid; sticky */
    TAIL1,      /* one more 80..BF ends the code point */
    TAIL2,      /* two more 80..BF */
    TAIL3,      /* three more 80..BF */
    AFTER_E0,   /* A0..BF, then TAIL1 */
    AFTER_ED,   /* 80..9F, then TAIL1 */
    AFTER_F0,   /* 90..BF, then TAIL2 */
    AFTER_F4,   /* 80..8F, then TAIL2 */
};

/* For each state inside a code point: the byte range it accepts and the
 * state that follows. ACCEPT and BAD have no row: lo > hi. */
static const struct {
    uint8_t lo, hi, next;
} expect[] = {
    [ACCEPT] = {1, 0, BAD},
    [BAD] = {1, 0, BAD},
    [TAIL1] = {0x80, 0xBF, ACCEPT},
    [TAIL2] = {0x80, 0xBF, TAIL1},
    [TAIL3] = {0x80, 0xBF, TAIL2},
    [AFTER_E0] = {0xA0, 0xBF, TAIL1},
    [AFTER_ED] = {0x80, 0x9F, TAIL1},
    [AFTER_F0] = {0x90, 0xBF, TAIL2},
    [AFTER_F4] = {0x80, 0x8F, TAIL2},
};

/* The state after lead byte `c` at a code point boundary. */
static enum state lead(uint8_t c)
{
    if (c < 0x80)
        return ACCEPT;
    if (c < 0xC2) /* 80..BF continuation, C0..C1 overlong */
        return BAD;
    if (c < 0xE0)
        return TAIL1;
    if (c < 0xF0) {
        switch (c) {
        case 0xE0: return AFTER_E0;
        case 0xED: return AFTER_ED;
        default: return TAIL2;
        }
    }
    switch (c) {
    case 0xF0: return AFTER_F0;
    case 0xF1: case 0xF2: case 0xF3: return TAIL3;
    case 0xF4: return AFTER_F4;
    default: return BAD; /* F5..FF */
    }
}

#define HIGH_BITS 0x8080808080808080ull

int wisp__utf8_feed(wisp__utf8 *u, const void *data, size_t len)
{
    const uint8_t *p = data, *end = p + len;
    uint32_t st = u->state;

    if (st == BAD)
        return WISP__UTF8_BAD;
    while (p < end) {
        uint8_t c;
        if (st == ACCEPT) {
            /* Text is mostly ASCII: at a boundary, skip 8 bytes at a time
             * while none has its high bit set. memcpy keeps the load
             * alignment-safe; the test is the same in either byte order.
             * Only whole words inside [p, end) are read. */
            while ((size_t)(end - p) >= 8) {
                uint64_t w;
                memcpy(&w, p, 8);
                if (w & HIGH_BITS)
                    break;
                p += 8;
            }
            if (p == end)
                break;
            c = *p++;
            st = lead(c);
        } else {
            c = *p++;
            st = c >= expect[st].lo && c <= expect[st].hi ? expect[st].next
                                                         : BAD;
        }
        if (st == BAD) {
            u->state = BAD;
            return WISP__UTF8_BAD;
        }
    }
    u->state = st;
    return WISP__UTF8_OK;
}
