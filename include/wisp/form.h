/* wisp — application/x-www-form-urlencoded: form bodies and query strings.
 *
 * The format (WHATWG URL Standard §5, "application/x-www-form-urlencoded
 * parsing"): pairs separated by '&', each "key=value" (a pair without '='
 * is a key with an empty value; empty pairs, as in "a=1&&b=2", are
 * skipped); keys and values are percent-encoded, with '+' standing for a
 * space. wisp is stricter than WHATWG on one point: a '%' not followed by
 * two hex digits is refused (WHATWG keeps it literally), and so is %00,
 * because a NUL hidden in a value is a classic way to cut a C string short
 * (wisp_req_query_get refuses it too).
 *
 * Use them on any buffer: a request body of Content-Type
 * application/x-www-form-urlencoded (wisp_req_body), a query string
 * (wisp_req_query), a multipart text part.
 *
 * Thread: every function here is pure over its arguments; any thread. */
#ifndef WISP_FORM_H
#define WISP_FORM_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A position in a form buffer. The layout is public so that it can live
 * on the stack; the fields are private. */
typedef struct wisp_form_iter {
    const char *p;
    const char *end;
} wisp_form_iter_t;

/* Start iterating over the pairs of `src` (not copied: it must outlive the
 * iteration; ptr NULL means empty). A leading '?' is not skipped: pass
 * wisp_req_query(), which has none. */
WISP_API void wisp_form_iter_init(wisp_form_iter_t *it, wisp_str_t src);

/* The next pair, still encoded: *key and *value point into the source
 * (value.len is 0 for "key" and "key="; value.ptr is never NULL for a
 * returned pair). Decode them with wisp_form_decode.
 * Returns 1 when a pair was produced, 0 at the end (then *key and *value
 * are {NULL, 0}). `key` and `value` may be NULL. */
WISP_API int wisp_form_next(wisp_form_iter_t *it, wisp_str_t *key,
                            wisp_str_t *value);

/* Percent-decode `in` ('+' becomes a space) into out[0..cap) and add a
 * terminating NUL. `out` may be in.ptr itself (decoding never lengthens),
 * provided cap leaves room for the NUL.
 * Returns the decoded length (without the NUL), WISP_EPARSE when `in` holds
 * a '%' without two hex digits after it or %00 (out then holds nothing
 * useful), or -ENOBUFS when cap < decoded length + 1; -EINVAL when `out`
 * is NULL and cap > 0. With out NULL and cap 0 it only measures: it
 * returns -ENOBUFS for valid input (use wisp_form_decoded_len). */
WISP_API ssize_t wisp_form_decode(wisp_str_t in, char *out, size_t cap);

/* The decoded length of `in`, or WISP_EPARSE as wisp_form_decode. */
WISP_API ssize_t wisp_form_decoded_len(wisp_str_t in);

/* Find the first pair whose DECODED key equals `key` (NUL-terminated,
 * compared byte for byte) and decode its value into out[0..cap) as
 * wisp_form_decode. A pair whose key holds a bad escape matches nothing.
 * Returns the value's decoded length, -ENOENT when no pair has that key,
 * WISP_EPARSE (bad escape in the value), -ENOBUFS (value too long for
 * cap), -EINVAL (`key` NULL, or `out` NULL with cap > 0). */
WISP_API ssize_t wisp_form_get(wisp_str_t src, const char *key, char *out,
                               size_t cap);

/* Repeated keys ("tag=a&tag=b&tag=c", as HTML forms send a multiple
 * select): wisp_form_get_nth decodes the value of the n-th pair (0-based,
 * in order) whose decoded key equals `key`, with wisp_form_get's returns
 * (n past the last: -ENOENT); wisp_form_count says how many pairs have
 * that key (0 for `key` NULL). For a query string pass wisp_req_query. */
WISP_API ssize_t wisp_form_get_nth(wisp_str_t src, const char *key, size_t n,
                                   char *out, size_t cap);
WISP_API size_t wisp_form_count(wisp_str_t src, const char *key);

#ifdef __cplusplus
}
#endif
#endif
