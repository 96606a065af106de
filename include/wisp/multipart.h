/* wisp — multipart/form-data (RFC 7578) bodies, parsed incrementally.
 *
 * The parser is fed the body in slices of any size and at any split (down
 * to one byte at a time), and reports each part through three callbacks:
 * on_part_begin (the part's name, filename, Content-Type and raw header
 * block), on_part_data (a slice of the part's content, as it comes, zero
 * or more times) and on_part_end. It never copies part content: a slice
 * handed to on_part_data points into the caller's input, except for bytes
 * that looked like the start of a delimiter at the end of one slice and
 * turned out not to be one (those come from the parser's own copy of the
 * delimiter). Only a part's header block is copied, into a buffer the
 * caller supplies, whose size is the limit on that block.
 *
 * Grammar (RFC 2046 §5.1.1, RFC 7578):
 * - The delimiter is CRLF "--" boundary. The first one may start the body
 *   without the CRLF. Anything before it (the preamble) is ignored.
 * - After a delimiter: optional spaces and tabs (transport padding), then
 *   CRLF and a part's header block; or "--", the close delimiter, after
 *   which everything (the epilogue) is ignored. Anything else after a
 *   complete delimiter is WISP_EMULTIPART_SYNTAX (RFC 2046: the
 *   delimiter must not occur inside a part), whereas bytes that match
 *   only a prefix of the delimiter ("\r\n--bound" for boundary "boundary")
 *   are part content.
 * - A header block is lines "Name: value" ended by CRLF, then an empty
 *   line. Lines end with CRLF only (a bare CR or LF, a line folded with
 *   leading whitespace, a NUL, a line without ':' or with a name that is
 *   not a token: WISP_EMULTIPART_SYNTAX).
 * - Every part must have "Content-Disposition: form-data" with a `name`
 *   parameter (RFC 7578 §4.2; a missing one is WISP_EMULTIPART_SYNTAX).
 *   Parameter values are tokens or quoted strings (quoted-pairs are
 *   resolved: name="a\"b" gives a"b); names are compared
 *   case-insensitively; a `filename*` parameter is ignored (RFC 7578
 *   §4.2 forbids it); filenames are given as sent (not percent-decoded,
 *   no path stripped). The first Content-Disposition and Content-Type
 *   fields count when a field repeats.
 * - A body whose only delimiter is the close delimiter ("--b--") has no
 *   parts and is accepted (browsers send it for an empty form).
 *
 * Thread: every function here is pure over its arguments; any thread may
 * use its own parsers. A callback must not call wisp_multipart_feed or
 * wisp_multipart_finish on the parser that called it. */
#ifndef WISP_MULTIPART_H
#define WISP_MULTIPART_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* wisp's multipart error codes (in the WISP_E range, see common.h). */
enum {
    WISP_EMULTIPART_SYNTAX = -4030,    /* not multipart/form-data grammar */
    WISP_EMULTIPART_TRUNCATED = -4031, /* body ended before the close
                                          delimiter */
    WISP_EMULTIPART_PARTS = -4032,     /* more parts than max_parts */
    WISP_EMULTIPART_HEADER = -4033,    /* a part's header block is larger
                                          than the header buffer */
    WISP_EMULTIPART_PART_SIZE = -4034, /* a part's content is larger than
                                          max_part_bytes */
    WISP_EMULTIPART_TOTAL = -4035,     /* the body is larger than
                                          max_total_bytes */
    WISP_EMULTIPART_BOUNDARY = -4036,  /* Content-Type is not
                                          multipart/form-data with a valid
                                          boundary */
};

/* Longest boundary (RFC 2046 §5.1.1). */
#define WISP_MULTIPART_MAX_BOUNDARY 70

/* Default max_parts when the configuration says 0. */
#define WISP_MULTIPART_DEFAULT_MAX_PARTS 64

/* What on_part_begin learns about a part. Every wisp_str_t points into the
 * configuration's header_buf: valid until on_part_end returns for this
 * part, or until the parser reports an error. The same struct is passed to
 * the three callbacks of a part. */
typedef struct wisp_multipart_part {
    uint32_t index;          /* 0 for the first part, then 1, 2, ... */
    wisp_str_t name;         /* the `name` parameter, unquoted (never
                                absent; may be empty: name="") */
    wisp_str_t filename;     /* the `filename` parameter, unquoted; ptr
                                NULL when absent (a plain field) */
    wisp_str_t content_type; /* the Content-Type field value, trimmed;
                                ptr NULL when absent (RFC 7578 §4.4:
                                then it is text/plain) */
    wisp_str_t headers;      /* the raw header block: the header lines,
                                each ended by CRLF, without the final
                                empty line */
} wisp_multipart_part_t;

/* Callbacks. Each returns 0 to go on, or a negative code to stop: the
 * feed that called it returns that code, and the parser stays in error
 * (every later feed and finish return it, no callback runs again). Use it
 * to refuse a part early (e.g. a file that is not a JPEG). `arg` is the
 * configuration's. Each may be NULL (then it counts as returning 0).
 *
 * on_part_begin runs once per part, after its header block. on_part_data
 * runs zero or more times with `len` >= 1 bytes of the part's content (the
 * CRLF before the next delimiter is not content); the bytes are valid only
 * during the call. on_part_end runs once when the part's closing delimiter
 * has been seen. After an error (a limit, malformed input, a callback's
 * code) the open part gets no on_part_end. */
typedef int (*wisp_multipart_begin_cb)(const wisp_multipart_part_t *part,
                                       void *arg);
typedef int (*wisp_multipart_data_cb)(const wisp_multipart_part_t *part,
                                      const void *data, size_t len,
                                      void *arg);
typedef int (*wisp_multipart_end_cb)(const wisp_multipart_part_t *part,
                                     void *arg);

typedef struct wisp_multipart_config {
    wisp_multipart_begin_cb on_part_begin;
    wisp_multipart_data_cb on_part_data;
    wisp_multipart_end_cb on_part_end;
    void *arg;

    /* Where a part's header block is collected (the caller's: it must
     * outlive the parser). Its size is the limit on one part's header
     * block, final empty line included: a larger block is
     * WISP_EMULTIPART_HEADER. Required (at least 64 bytes); 1 to 4 KiB
     * suits browsers and devices. */
    char *header_buf;
    size_t header_buf_size;

    /* Limits. A part past max_parts (0: the default, 64) is
     * WISP_EMULTIPART_PARTS, as soon as its delimiter line is complete.
     * Content of one part past max_part_bytes (0: no limit) is
     * WISP_EMULTIPART_PART_SIZE, before any byte beyond the limit reaches
     * on_part_data. More than max_total_bytes fed in all (0: no limit;
     * preamble and epilogue count) is WISP_EMULTIPART_TOTAL. A per-part
     * limit that depends on the part's name belongs in the callbacks
     * (return an error code). */
    uint32_t max_parts;
    uint64_t max_part_bytes;
    uint64_t max_total_bytes;
} wisp_multipart_config_t;

/* The parser. The layout is public so that it can live in memory the
 * caller owns (stack, a per-request struct); the fields are private. */
typedef struct wisp_multipart {
    wisp_multipart_config_t cfg;
    wisp_multipart_part_t part;
    uint64_t part_bytes;
    uint64_t total_bytes;
    size_t hdr_len;
    int err;
    uint32_t parts;
    uint8_t state;
    uint8_t match;      /* bytes of `delim` matched so far */
    uint8_t delim_len;  /* 4 + boundary length */
    char delim[4 + WISP_MULTIPART_MAX_BOUNDARY]; /* "\r\n--" boundary */
} wisp_multipart_t;

/* Find the boundary in a Content-Type field value such as
 * `multipart/form-data; boundary=----ESP32_CAMERA_BOUNDARY` or
 * `multipart/form-data; charset=utf-8; boundary="a b'c"`: the media type
 * must be multipart/form-data (case-insensitive, whitespace around ';'
 * and '=' allowed), and the boundary parameter a token or a quoted string
 * of 1..70 characters from RFC 2046's bchars (digits, letters, and
 * '()+_,-./:=? and space, space not last; a space needs quotes).
 *
 * Ownership: *boundary points into `content_type` (no copy).
 * Returns 0 and sets *boundary, or WISP_EMULTIPART_BOUNDARY (not
 * multipart/form-data, no boundary, empty, too long, a character outside
 * bchars, a bad quoted string); -EINVAL when `boundary` is NULL. */
WISP_API int wisp_multipart_boundary(wisp_str_t content_type,
                                     wisp_str_t *boundary);

/* Prepare `mp` to parse a body delimited by `boundary` (1..70 bchars, as
 * wisp_multipart_boundary returns; it is copied). `cfg` is copied.
 *
 * Ownership: `mp` and cfg->header_buf are the caller's; nothing is
 * allocated, so there is nothing to free.
 * Returns 0, or -EINVAL (NULL `mp` or `cfg`, header_buf NULL or smaller
 * than 64 bytes), or WISP_EMULTIPART_BOUNDARY (bad boundary). */
WISP_API int wisp_multipart_init(wisp_multipart_t *mp, wisp_str_t boundary,
                                 const wisp_multipart_config_t *cfg);

/* Parse the next `len` bytes of the body. Callbacks run inside this call.
 * Bytes after the close delimiter are ignored.
 * Returns 0 when every byte was taken, or a negative code: one of the
 * WISP_EMULTIPART_* codes, or a callback's code. Errors are sticky. */
WISP_API int wisp_multipart_feed(wisp_multipart_t *mp, const void *data,
                                 size_t len);

/* The body has ended. Runs no callback.
 * Returns 0 when the close delimiter was seen, WISP_EMULTIPART_TRUNCATED
 * when it was not (an open part gets no on_part_end), or the sticky error
 * of an earlier feed. */
WISP_API int wisp_multipart_finish(wisp_multipart_t *mp);

/* Parse a whole body held in memory (a route that buffers bodies):
 * init + feed + finish in one call. Slices given to on_part_data point
 * into `body` (each part's content comes in one slice).
 * Returns as wisp_multipart_init, then as wisp_multipart_feed /
 * wisp_multipart_finish. */
WISP_API int wisp_multipart_parse(wisp_str_t boundary, const void *body,
                                  size_t len,
                                  const wisp_multipart_config_t *cfg);

/* The first header field `name` (case-insensitive) of a part's header
 * block, value trimmed; ptr NULL when absent. Valid as part->headers. */
WISP_API wisp_str_t wisp_multipart_header(const wisp_multipart_part_t *part,
                                          const char *name);

#ifdef __cplusplus
}
#endif
#endif
