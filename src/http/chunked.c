/* Incremental, in-place decoder of the chunked transfer coding
 * (RFC 9112 §7.1):
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext    = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS val ] )
 *
 *   chunk-ext-name = token
 *   chunk-ext-val  = token / quoted-string
 *
 * The framing is walked one byte at a time through an explicit state, so
 * input may be cut anywhere; chunk data is moved in bulk. Extensions are
 * checked against that grammar (quoted-string as in RFC 9110 §5.6.4) and
 * bounded by max_trailer, then ignored, since we act on none (§7.1.1).
 * Trailer fields are checked like header fields and dropped (§7.1.2). */
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

/* Values of `digits` while in WISP__CH_EXT: where in chunk-ext we are. */
enum {
    EXT_SEMI = 0,   /* after ';': BWS, then the name */
    EXT_NAME,       /* in the name */
    EXT_NAME_BWS,   /* BWS after the name: '=' or ';' must come */
    EXT_EQ,         /* after '=': BWS, then the value */
    EXT_TOKEN,      /* in a token value */
    EXT_QUOTED,     /* in a quoted-string value */
    EXT_QPAIR,      /* after a backslash in a quoted string */
    EXT_VALUE_END,  /* right after the closing quote */
    EXT_VALUE_BWS,  /* BWS after a value: ';' must come */
};

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
        d->digits = EXT_SEMI;
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

static inline int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t';
}

/* The next state of chunk-ext after byte c in state `at`, or -1 when c
 * cannot come there. CR ends the line where the grammar lets it: after a
 * name, a token value or a closing quote, not after BWS (which may only
 * precede ';' or '='). */
static int ext_next(unsigned at, unsigned char c)
{
    switch (at) {
    case EXT_SEMI:
        return is_ws(c) ? EXT_SEMI : wisp__is_tchar(c) ? EXT_NAME : -1;
    case EXT_NAME:
        if (wisp__is_tchar(c))
            return EXT_NAME;
        /* fall through */
    case EXT_NAME_BWS:
        return is_ws(c) ? EXT_NAME_BWS : c == '=' ? EXT_EQ
               : c == ';' ? EXT_SEMI : -1;
    case EXT_EQ:
        return is_ws(c) ? EXT_EQ : c == '"' ? EXT_QUOTED
               : wisp__is_tchar(c) ? EXT_TOKEN : -1;
    case EXT_TOKEN:
        if (wisp__is_tchar(c))
            return EXT_TOKEN;
        /* fall through */
    case EXT_VALUE_END:
    case EXT_VALUE_BWS:
        return is_ws(c) ? EXT_VALUE_BWS : c == ';' ? EXT_SEMI : -1;
    case EXT_QUOTED:
        /* qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
        if (c == '"')
            return EXT_VALUE_END;
        if (c == '\\')
            return EXT_QPAIR;
        return wisp__http_chars[c] & WISP__HC_VALUE ? EXT_QUOTED : -1;
    case EXT_QPAIR:
        /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
        return wisp__http_chars[c] & WISP__HC_VALUE ? EXT_QUOTED : -1;
    }
    return -1;
}

/* One byte of a chunk line's extensions, up to its CR. */
static int ext_byte(wisp__chunked *d, unsigned char c)
{
    if (c == '\r') {
        if (d->digits != EXT_NAME && d->digits != EXT_TOKEN &&
            d->digits != EXT_VALUE_END)
            return WISP_EPARSE;
        d->state = WISP__CH_SIZE_LF;
        return 0;
    }
    int next = ext_next(d->digits, c);
    if (next < 0)
        return WISP_EPARSE;
    d->digits = (uint32_t)next;
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
