/* Internal: the incremental, zero-copy HTTP/1.1 request-head parser
 * (RFC 9112) and the path percent-decoder.
 *
 * Pure functions over (buf, len): no allocation, no I/O, no globals. Every
 * pointer handed out points into `buf`. */
#ifndef WISP_HTTP_PARSE_H
#define WISP_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wisp/common.h"

typedef struct wisp__header {
    const char *name;
    const char *value; /* OWS trimmed on both sides */
    uint32_t name_len;
    uint32_t value_len;
} wisp__header;

typedef struct wisp__parse_limits {
    uint32_t max_request_line; /* bytes of the request line, CRLF excluded */
    uint32_t max_head;         /* bytes of the whole head incl. final CRLF */
    uint32_t max_headers;      /* number of header fields */
} wisp__parse_limits;

/* Flags of wisp__req_head.flags. */
enum {
    WISP__RH_CHUNKED = 1u << 0,    /* Transfer-Encoding: chunked */
    WISP__RH_CLOSE = 1u << 1,      /* Connection: close */
    WISP__RH_KEEPALIVE = 1u << 2,  /* Connection: keep-alive */
    WISP__RH_UPGRADE = 1u << 3,    /* Connection: upgrade token present */
    WISP__RH_CONTINUE = 1u << 4,   /* Expect: 100-continue */
    WISP__RH_HOST = 1u << 5,       /* a Host field (or absolute-form) */
    WISP__RH_ASTERISK = 1u << 6,   /* target is "*" (only with OPTIONS) */
    WISP__RH_ABSOLUTE = 1u << 7,   /* target was absolute-form */
    WISP__RH_PCT = 1u << 8,        /* the path holds a '%' (to decode) */
};

typedef struct wisp__req_head {
    int method;            /* wisp_method_t */
    int minor;             /* 0 or 1 (1 also for HTTP/1.2 - 1.9) */
    uint32_t flags;        /* WISP__RH_* */
    const char *target;    /* as received */
    uint32_t target_len;
    const char *path;      /* raw path (absolute-form: from the first '/'
                              after the authority; "*" for asterisk-form) */
    uint32_t path_len;
    const char *query;     /* after '?', NULL when there is no '?' */
    uint32_t query_len;
    const char *host;      /* Host value, or the absolute-form authority */
    uint32_t host_len;
    int64_t content_length;/* -1 when absent */
    wisp__header *headers; /* caller's array */
    uint32_t num_headers;  /* out: number of fields */
    uint32_t max_headers;  /* in: capacity of `headers` (>= limits) */
} wisp__req_head;

/* Parse one request head from buf[0..len).
 *
 * `scan` carries state between calls on the same growing buffer: set it
 * to 0 before the first call for a request; the parser stores how far it
 * has already searched for the end of the head, so feeding a request one
 * byte at a time costs O(n) in total.
 *
 * Empty lines before the request line are skipped (RFC 9112 §2.2).
 * Returns the number of bytes of the head (including the empty line that
 * ends it and any skipped leading empty lines), -EAGAIN when the head is
 * not complete yet, or:
 *   WISP_ETOOLONG_LINE    request line longer than max_request_line (414)
 *   WISP_ETOOLONG_HEAD    head longer than max_head (431)
 *   WISP_ETOOMANY_HEADERS more than max_headers fields (431)
 *   WISP_EMETHOD          well-formed but unknown method, or CONNECT,
 *                         which we do not implement (501)
 *   WISP_EVERSION         HTTP/x.y with x other than 1 (505); HTTP/1.2
 *                         to HTTP/1.9 are read as HTTP/1.1 (minor 1)
 *   WISP_ECODING          a Transfer-Encoding coding other than chunked
 *                         before the final chunked (501)
 *   WISP_EPARSE           anything malformed (400): bare CR, bare LF,
 *     NUL/CTL in names or values, whitespace before ':', obs-fold,
 *     missing Host in HTTP/1.1, duplicate Host, a Host that is not
 *     uri-host [":" port] (RFC 3986), Content-Length that is invalid or
 *     repeated, Transfer-Encoding whose final coding is not chunked (or
 *     with chunked twice, or in HTTP/1.0), both Content-Length and
 *     Transfer-Encoding, "*" with a method other than OPTIONS, a target
 *     that is not origin-, absolute- or asterisk-form or has a byte
 *     RFC 3986 does not allow there (or a '%' without two HEXDIG).
 * WISP_EEXPECT (417) for an Expect other than 100-continue. */
ssize_t wisp__parse_request(const char *buf, size_t len, size_t *scan,
                            wisp__req_head *rh,
                            const wisp__parse_limits *lim);

/* A response head (client side). */
typedef struct wisp__resp_head {
    int status;            /* 100..599 */
    int minor;             /* 0 or 1 */
    uint32_t flags;        /* WISP__RH_CHUNKED, _CLOSE, _KEEPALIVE,
                              _UPGRADE */
    const char *reason;
    uint32_t reason_len;
    int64_t content_length;/* -1 when absent */
    wisp__header *headers; /* caller's array */
    uint32_t num_headers;  /* out */
    uint32_t max_headers;  /* in: capacity of `headers` */
} wisp__resp_head;

/* Parse one response head from buf[0..len), with the same resumable
 * `scan`, the same field rules and the same limits as
 * wisp__parse_request (max_request_line bounds the status line).
 * Returns the head's length, -EAGAIN, or: WISP_ETOOLONG_LINE,
 * WISP_ETOOLONG_HEAD, WISP_ETOOMANY_HEADERS, WISP_EVERSION (HTTP/x.y,
 * x != 1), WISP_ECODING (a transfer coding other than chunked),
 * WISP_EPARSE (malformed status line or status outside 100..599, bad
 * field, bare CR/LF, repeated or invalid Content-Length, both
 * Content-Length and Transfer-Encoding, Transfer-Encoding whose final
 * coding is not chunked, or in HTTP/1.0). */
ssize_t wisp__parse_response(const char *buf, size_t len, size_t *scan,
                             wisp__resp_head *rh,
                             const wisp__parse_limits *lim);

/* Percent-decode a path in place. Returns the new length, or WISP_EPARSE
 * for a bad escape or one that decodes to NUL. '+' is left alone. */
ssize_t wisp__pct_decode_path(char *p, size_t len);

/* Percent-decode a query component ('+' → ' ') from src into dst
 * (dst may equal src). Returns the decoded length, or WISP_EPARSE for a
 * bad escape or one that decodes to NUL. */
ssize_t wisp__pct_decode_query(char *dst, const char *src, size_t len);

/* Method token → wisp_method_t, or -1 when unknown. */
int wisp__method_lookup(const char *p, size_t len);

#endif
