/* Internal: incremental UTF-8 validation (RFC 3629) that fails fast: an
 * invalid sequence is reported at the first byte that makes it invalid,
 * even when a message arrives in fragments split inside a code point
 * (the state carries over). Rejects overlong forms, surrogates
 * (U+D800..U+DFFF) and code points above U+10FFFF. */
#ifndef WISP_UTIL_UTF8_H
#define WISP_UTIL_UTF8_H

#include <stddef.h>
#include <stdint.h>

typedef struct wisp__utf8 {
    uint32_t state; /* 0: at a code point boundary; 1: invalid (see
                       the enum in utf8.c) */
} wisp__utf8;

enum { WISP__UTF8_OK = 0, WISP__UTF8_BAD = 1 };

static inline void wisp__utf8_init(wisp__utf8 *u)
{
    u->state = 0;
}

/* Feed `len` bytes. Returns WISP__UTF8_OK while the input is valid so far
 * (possibly ending inside a code point), WISP__UTF8_BAD as soon as it
 * cannot be valid; after BAD the state stays bad. */
int wisp__utf8_feed(wisp__utf8 *u, const void *data, size_t len);

/* Nonzero when the input so far ends at a code point boundary (a text
 * message may end here). */
static inline int wisp__utf8_complete(const wisp__utf8 *u)
{
    return u->state == 0;
}

#endif
