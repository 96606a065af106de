/* Internal: incremental, in-place decoder of chunked transfer coding
 * (RFC 9112 §7.1), with chunk extensions and trailer fields. */
#ifndef WISP_HTTP_CHUNKED_H
#define WISP_HTTP_CHUNKED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum wisp__chunked_state {
    WISP__CH_SIZE = 0,     /* in the hex chunk-size */
    WISP__CH_EXT,          /* in chunk extensions, until CRLF */
    WISP__CH_SIZE_LF,      /* saw CR after size/ext, want LF */
    WISP__CH_DATA,         /* in chunk data */
    WISP__CH_DATA_CR,      /* want CR after data */
    WISP__CH_DATA_LF,      /* want LF after data */
    WISP__CH_TRAILER_START,/* at the start of a trailer line */
    WISP__CH_TRAILER,      /* inside a trailer line */
    WISP__CH_TRAILER_LF,   /* saw CR in trailer line, want LF */
    WISP__CH_END_LF,       /* saw CR of the final empty line, want LF */
    WISP__CH_DONE,
};

typedef struct wisp__chunked {
    enum wisp__chunked_state state;
    uint32_t digits;        /* hex digits seen in this size */
    uint64_t remaining;     /* data bytes left in the current chunk */
    uint32_t ext_bytes;     /* bytes of extensions in this chunk line */
    uint32_t trailer_bytes; /* bytes of trailer section so far */
    uint32_t max_trailer;   /* limit on trailer_bytes and ext_bytes */
} wisp__chunked;

/* Start a decoder; `max_trailer` bounds the trailer section and each
 * chunk's extensions (bytes). */
void wisp__chunked_init(wisp__chunked *d, uint32_t max_trailer);

/* Decode buf[0..*len) in place: the chunk data is moved to the front of
 * buf and *len is set to the number of decoded data bytes. All input is
 * consumed into the decoder's state except what follows the end of the
 * body.
 * Returns -EAGAIN when the body is not complete (all input consumed), a
 * count n >= 0 when it is complete: then n bytes that followed the body
 * (the start of the next request) now sit at buf[*len .. *len + n), or
 * WISP_EPARSE for malformed input: a bad or overflowing chunk size
 * (more than 16 hex digits or over 2^63-1), a missing CRLF, bare CR/LF,
 * bad characters in extensions or trailers, extensions or trailers over
 * max_trailer. */
ssize_t wisp__chunked_decode(wisp__chunked *d, char *buf, size_t *len);

#endif
