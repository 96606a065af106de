/* Internal: the one table of HTTP byte classes (RFC 9110 §5.5, §5.6.2,
 * RFC 9112 §3.2, RFC 5234 HEXDIG), shared by the request parser, the
 * chunked decoder and the response-field checks. */
#ifndef WISP_HTTP_TOKEN_H
#define WISP_HTTP_TOKEN_H

#include <stdint.h>

/* Bits of wisp__http_chars[c]. */
enum {
    /* tchar (RFC 9110 §5.6.2): "!" / "#" / "$" / "%" / "&" / "'" / "*"
     * / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
    WISP__HC_TCHAR = 1,
    /* a byte of a field value (RFC 9110 §5.5): field-vchar (VCHAR /
     * obs-text), SP or HTAB */
    WISP__HC_VALUE = 2,
    /* a byte of a request-target as we accept it: visible ASCII
     * 0x21-0x7e (RFC 9112 §3.2 leaves no room for SP, CTLs or
     * obs-text) */
    WISP__HC_TARGET = 4,
    /* HEXDIG, either case (RFC 5234 B.1, RFC 9110 §1.2) */
    WISP__HC_HEX = 8,
    /* a byte of an origin-form target or of the path and query of an
     * absolute-form one (RFC 3986 §3.3, §3.4): pchar (unreserved /
     * pct-encoded / sub-delims / ":" / "@"), "/" and "?" -- but not '%',
     * which the caller reads as the start of a pct-encoded triplet */
    WISP__HC_URI = 16,
    /* a byte of a reg-name (RFC 3986 §3.2.2): unreserved / sub-delims,
     * not '%' (as above) */
    WISP__HC_REG = 32,
    /* a byte of the path of an origin-form target: WISP__HC_URI without
     * '?', which ends the path (RFC 3986 §3.3), so that one scan splits
     * path and query */
    WISP__HC_PATH = 64,
};

extern const uint8_t wisp__http_chars[256];

static inline int wisp__is_tchar(unsigned char c)
{
    return wisp__http_chars[c] & WISP__HC_TCHAR;
}

#endif
