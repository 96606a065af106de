/* Incremental, in-place decoder of the chunked transfer coding
 * (RFC 9112 §7.1):
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS val ] )
 *
 * The framing is walked one byte at a time through an explicit state, so
 * input may be cut anywhere; chunk data is moved in bulk. Extensions are
 * checked for their bytes (field-value bytes, no CR/LF, bounded by
 * max_trailer), not parsed, since we act on none (§7.1.1). Trailer
 * fields are checked like header fields and dropped (§7.1.2). */
#include "http/chunked.h"

#include <string.h>

#include "http/token.h"
#include "wisp/common.h"


/* Flag in `digits` while in WISP__CH_SIZE: whitespace followed the size,
 * so only more BWS or the ';' of an extension may come. */
#define DIGITS_BWS 0x80000000u
/* Value of `digits` while in WISP__CH_TRAILER: the colon has been seen,
 * so the bytes are the field value (0: still the name). */
#define TRAILER_VALUE 1u

static inline unsigned hexval(unsigned char c)
{
    return c <= '9' ? c - (unsigned)'0' : (c | 0x20u) - 'a' + 10;
}

/* Count one byte of a chunk line's extensions (BWS included). */
static inline int count_ext(wisp__chunked *d)
{
    return ++d->ext_bytes > d->max_trailer ? WISP_EPARSE : 0;
}

/* Count one byte of the trailer section (its final CRLF excluded, so
 * that max_trailer 0 still admits a body without trailers). */
static inline int count_trailer(wisp__chunked *d)
{
    return ++d->trailer_bytes > d->max_trailer ? WISP_EPARSE : 0;
}

/* chunk-size = 1*HEXDIG, then BWS ";" (an extension) or CRLF. At most 16
 * digits, so leading zeros cannot make a scan unbounded, and at most
 * INT64_MAX, so the size fits a signed content length. */
static int size_byte(wisp__chunked *d, unsigned char c)
{
    if ((wisp__http_chars[c] & WISP__HC_HEX) && !(d->digits & DIGITS_BWS)) {
        if (++d->digits > 16 || d->remaining > (uint64_t)INT64_MAX >> 4)
            return WISP_EPARSE;
        d->remaining = d->remaining << 4 | hexval(c);
        return 0;
    }
    if (d->digits == 0)
        return WISP_EPARSE;
    if (c == ';') {
        d->state = WISP__CH_EXT;
        return count_ext(d);
    }
    if (c == ' ' || c == '\t') {
        d->digits |= DIGITS_BWS;
        return count_ext(d);
    }
    /* BWS is only allowed before a ';' (RFC 9112 §7.1.1). */
    if (c == '\r' && !(d->digits & DIGITS_BWS)) {
        d->state = WISP__CH_SIZE_LF;
        return 0;
    }
    return WISP_EPARSE;
}

/* Anything but CTLs (HTAB excepted) up to the CR of the chunk line. */
static int ext_byte(wisp__chunked *d, unsigned char c)
{
    if (c == '\r') {
        d->state = WISP__CH_SIZE_LF;
        return 0;
    }
    if (!(wisp__http_chars[c] & WISP__HC_VALUE))
        return WISP_EPARSE;
    return count_ext(d);
}

/* The LF of a chunk line: data follows, or the trailer after size 0. */
static int size_lf(wisp__chunked *d, unsigned char c)
{
    if (c != '\n')
        return WISP_EPARSE;
    d->state = d->remaining ? WISP__CH_DATA : WISP__CH_TRAILER_START;
    d->digits = 0;
    d->ext_bytes = 0;
    return 0;
}

/* trailer-section = *( field-line CRLF ), then the final CRLF. A line
 * starting with SP or HTAB would be obs-fold (§5.2): rejected. */
static int trailer_start(wisp__chunked *d, unsigned char c)
{
    if (c == '\r') {
        d->state = WISP__CH_END_LF;
        return 0;
    }
    if (!wisp__is_tchar(c))
        return WISP_EPARSE;
    d->state = WISP__CH_TRAILER;
    d->digits = 0;
    return count_trailer(d);
}

/* field-name ":" OWS field-value OWS, as in the head (RFC 9112 §5):
 * a token, then the colon with no whitespace before it, then value
 * bytes up to CR. */
static int trailer_byte(wisp__chunked *d, unsigned char c)
{
    if (d->digits == TRAILER_VALUE) {
        if (c == '\r') {
            d->state = WISP__CH_TRAILER_LF;
            return count_trailer(d);
        }
        if (!(wisp__http_chars[c] & WISP__HC_VALUE))
            return WISP_EPARSE;
    } else if (c == ':') {
        d->digits = TRAILER_VALUE;
    } else if (!wisp__is_tchar(c)) {
        return WISP_EPARSE;
    }
    return count_trailer(d);
}

static int expect(wisp__chunked *d, unsigned char c, unsigned char want,
                  enum wisp__chunked_state next)
{
    if (c != want)
        return WISP_EPARSE;
    d->state = next;
    return 0;
}

/* Advance the framing by one byte (any state but DATA and DONE). */
static int step(wisp__chunked *d, unsigned char c)
{
    switch (d->state) {
    case WISP__CH_SIZE:
        return size_byte(d, c);
    case WISP__CH_EXT:
        return ext_byte(d, c);
    case WISP__CH_SIZE_LF:
        return size_lf(d, c);
    case WISP__CH_DATA_CR:
        return expect(d, c, '\r', WISP__CH_DATA_LF);
    case WISP__CH_DATA_LF:
        return expect(d, c, '\n', WISP__CH_SIZE);
    case WISP__CH_TRAILER_START:
        return trailer_start(d, c);
    case WISP__CH_TRAILER:
        return trailer_byte(d, c);
    case WISP__CH_TRAILER_LF:
        if (c != '\n')
            return WISP_EPARSE;
        d->state = WISP__CH_TRAILER_START;
        return count_trailer(d);
    case WISP__CH_END_LF:
        return expect(d, c, '\n', WISP__CH_DONE);
    case WISP__CH_DATA:
    case WISP__CH_DONE:
        break;
    }
    return WISP_EPARSE; /* not reached */
}

void wisp__chunked_init(wisp__chunked *d, uint32_t max_trailer)
{
    memset(d, 0, sizeof *d);
    d->state = WISP__CH_SIZE;
    d->max_trailer = max_trailer;
}

ssize_t wisp__chunked_decode(wisp__chunked *d, char *buf, size_t *len)
{
    size_t n = *len, r = 0, w = 0;
    int err = 0;

    while (r < n && d->state != WISP__CH_DONE) {
        if (d->state == WISP__CH_DATA) {
            size_t m = n - r;
            if ((uint64_t)m > d->remaining)
                m = (size_t)d->remaining;
            if (w != r)
                memmove(buf + w, buf + r, m);
            w += m;
            r += m;
            d->remaining -= m;
            if (d->remaining == 0)
                d->state = WISP__CH_DATA_CR;
            continue;
        }
        if ((err = step(d, (unsigned char)buf[r++])) != 0)
            break;
    }
    *len = w;
    if (err)
        return err;
    if (d->state != WISP__CH_DONE)
        return -EAGAIN;
    /* The body ended inside this buffer: what follows belongs to the
     * next request and goes right after the data. */
    if (w != r)
        memmove(buf + w, buf + r, n - r);
    return (ssize_t)(n - r);
}
