/* wisp — response helpers: printf-style and JSON bodies, entity tags
 * and conditional requests (RFC 9110 §8.8.3, §13.1.2).
 *
 * Thread: the response's loop, as every wisp_res_* call;
 * wisp_etag_match and wisp_etag_of are pure (any thread). */
#ifndef WISP_REPLY_H
#define WISP_REPLY_H

#include <stdarg.h>

#include "common.h"
#include "http.h"
#include "json.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Send a complete response whose body is formatted as printf(3) does
 * (any length: past 1 KiB the text is formatted into an allocation).
 * Returns what wisp_res_send returns, or -EINVAL (fmt NULL or a format
 * error), -ENOMEM; after those the response is unchanged and still
 * open. */
WISP_API int wisp_res_printf(wisp_res_t *res, int status,
                             const char *content_type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
WISP_API int wisp_res_vprintf(wisp_res_t *res, int status,
                              const char *content_type, const char *fmt,
                              va_list ap);

/* Send the document written into `w` (wisp_json_finish is called on it)
 * with Content-Type application/json. `w` stays the caller's (free a
 * growable one with wisp_json_writer_free). When the writer holds an
 * error or an unfinished document, nothing is sent and that error is
 * returned (WISP_ESTATE, -ENOBUFS, -ENOMEM, -EINVAL...), the response
 * still open; otherwise returns what wisp_res_send returns. */
WISP_API int wisp_res_json(wisp_res_t *res, int status,
                           wisp_json_writer_t *w);

/* Does the If-None-Match value `header` match entity-tag `etag` by the
 * weak comparison (RFC 9110 §8.8.3.2: W/ prefixes ignored, opaque tags
 * equal)? "*" matches any. Returns 1, 0, or WISP_EPARSE when the header
 * is not a list of entity-tags (or `etag` is not one). */
WISP_API int wisp_etag_match(wisp_str_t header, const char *etag);

/* A strong entity-tag for `len` bytes of `body` (a 64-bit FNV-1a hash of
 * the bytes and the length, quoted: "\"<16 hex digits>\""), into out[20]
 * with a NUL. */
WISP_API void wisp_etag_of(const void *body, size_t len, char out[20]);

/* Send `body` with status 200 and an ETag (`etag`, or wisp_etag_of(body)
 * when NULL), answering the request's If-None-Match: when it matches, a
 * GET or HEAD gets 304 with the ETag and no body, another method 412
 * (Precondition Failed). A malformed If-None-Match is ignored (the full
 * answer goes out). Returns what wisp_res_send returns, or -EINVAL when
 * `etag` is not an entity-tag (the response unchanged). */
WISP_API int wisp_res_send_etag(wisp_res_t *res, const char *content_type,
                                const void *body, size_t len,
                                const char *etag);

#ifdef __cplusplus
}
#endif
#endif
