/* wisp — Server-Sent Events (text/event-stream): a reader and a writer.
 *
 * The reader interprets an event stream exactly as the WHATWG HTML
 * standard's "Interpreting an event stream" (§9.2.6) says: the bytes are
 * UTF-8-decoded (one leading byte order mark is dropped, invalid
 * sequences become U+FFFD), lines end at CRLF, LF or CR (a CR at the end
 * of one piece and an LF at the start of the next are one line end),
 * lines starting with ':' are comments, a line without ':' is a field
 * name with an empty value, one space after the ':' is removed, and the
 * fields are:
 *   - event: the event's type (default "message");
 *   - data: appended to the data, with an LF between lines;
 *   - id: the last event ID (ignored when the value contains U+0000;
 *     it persists from event to event until changed);
 *   - retry: the reconnection time in ms (only when the value is ASCII
 *     digits and nothing else);
 * anything else is ignored. A blank line dispatches the event; an event
 * with no data line is not dispatched (its type is dropped). At the end
 * of the stream a line or event not yet finished by its blank line is
 * discarded. The reader takes the bytes in pieces split anywhere (a
 * streamed HTTP response body, one byte at a time) and dispatches the
 * same events whatever the split.
 *
 * The writer turns a streamed response (wisp/http.h) into an event
 * stream for a server route: it sends the head (200, Content-Type:
 * text/event-stream, Cache-Control: no-cache), writes events in the
 * format above, sends a comment as a keep-alive ping when the stream has
 * been quiet for a while, and refuses new events while the connection
 * holds too much unsent data (wait for the drain callback).
 *
 * Thread: a reader is used by one thread at a time (any thread; it does
 * no I/O). A writer lives on its response's loop: every wisp_sse_*
 * writer call runs there (asserted in debug builds through wisp_res_*). */
#ifndef WISP_SSE_H
#define WISP_SSE_H

#include "common.h"
#include "http.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ reader */

typedef struct wisp_sse_reader wisp_sse_reader_t;

/* One dispatched event. The strings point into the reader and are valid
 * only during the callback; each is followed by a NUL byte (not counted
 * in `len`), but may also contain U+0000 itself, so use `len`. */
typedef struct wisp_sse_event {
    wisp_str_t type; /* the event field, or "message" when none/empty */
    wisp_str_t data; /* the data lines joined with LF (no final LF) */
    wisp_str_t id;   /* the last event ID in force (len 0: none) */
} wisp_sse_event_t;

/* Called once per dispatched event, inside wisp_sse_reader_feed. Return
 * 0 to go on; a negative value stops the reader: feed returns it at once
 * (the rest of the piece is not read) and so does every later feed.
 * The callback must not feed or destroy the reader. */
typedef int (*wisp_sse_event_cb)(const wisp_sse_event_t *ev, void *arg);

/* Create a reader that calls `cb(ev, arg)` for each event. `max_bytes`
 * bounds the reader's memory: the line being read plus the event being
 * built (data, type, id buffer) plus the last event ID may not exceed
 * it; 0 means 1 MiB. Past it the stream fails with -EMSGSIZE.
 * Ownership: the caller owns the reader; free it with
 * wisp_sse_reader_destroy. Returns NULL with errno EINVAL (`cb` NULL)
 * or ENOMEM. */
WISP_API wisp_sse_reader_t *wisp_sse_reader_create(size_t max_bytes,
                                                   wisp_sse_event_cb cb,
                                                   void *arg);
/* Free the reader. NULL is a no-op. Not from inside its callback. */
WISP_API void wisp_sse_reader_destroy(wisp_sse_reader_t *r);

/* Read the next `len` bytes of the stream (`data` may be NULL when `len`
 * is 0). Events completed by these bytes are dispatched inside the call,
 * in order. Returns 0 when every byte was read; -EMSGSIZE when the
 * stream exceeds max_bytes (the events before the point where it did
 * were dispatched); -ENOMEM; or the callback's negative value. An error
 * is sticky: later calls return it again without reading, until
 * wisp_sse_reader_end. */
WISP_API int wisp_sse_reader_feed(wisp_sse_reader_t *r, const void *data,
                                  size_t len);

/* The stream has ended: discard any unfinished line and event (they are
 * not dispatched) and make the reader ready for a new stream (a
 * reconnection: a byte order mark is dropped again), keeping the last
 * event ID and the reconnection time. Returns 0 when the stream ended
 * cleanly (after a complete line with no event pending), 1 when
 * something unfinished was discarded, or the stream's sticky error
 * (which this call clears). Runs no callback. */
WISP_API int wisp_sse_reader_end(wisp_sse_reader_t *r);

/* The last event ID string (set when an event is dispatched, even one
 * with no data; len 0 when none): pass it as Last-Event-ID when
 * reconnecting. Valid until the next feed, end or destroy. */
WISP_API wisp_str_t wisp_sse_reader_last_id(const wisp_sse_reader_t *r);

/* The reconnection time in ms set by the last valid retry field, or -1
 * when the stream has set none. Values too large for int64_t are
 * clamped to INT64_MAX. */
WISP_API int64_t wisp_sse_reader_retry(const wisp_sse_reader_t *r);

/* ------------------------------------------------------------------ writer */

typedef struct wisp_sse wisp_sse_t;

typedef struct wisp_sse_config {
    /* Send a comment line (": ping") when nothing was written for this
     * long, so that proxies and clients keep the stream open. 0: never. */
    uint64_t ping_ms;
    /* wisp_sse_send and wisp_sse_comment refuse with -ENOBUFS while the
     * connection holds this many unsent bytes or more (then wait for
     * wisp_sse_on_drain). 0: 1 MiB. */
    size_t max_buffered_bytes;
    /* When nonzero, a "retry:" field with this value is sent first. */
    uint64_t retry_ms;
} wisp_sse_config_t;

/* Defaults: ping every 15 s, 1 MiB of unsent data, no retry field. */
WISP_API void wisp_sse_config_init(wisp_sse_config_t *cfg);

typedef void (*wisp_sse_cb)(wisp_sse_t *s, void *arg);

/* Start an event stream on `res`, a response whose head has not been
 * sent: status 200, the headers added so far plus Content-Type:
 * text/event-stream, Cache-Control: no-cache and X-Accel-Buffering: no,
 * and the body streamed (chunked on HTTP/1.1, close-delimited on 1.0).
 * The head leaves at once. `cfg` NULL means the defaults.
 *
 * `on_close(s, arg)` (may be NULL) runs once if the client goes away
 * before wisp_sse_end: from the loop, or inside a wisp_sse_* call or
 * another call that writes on this loop (see wisp/http.h, "Callbacks
 * inside calls"); never inside this call. After it, every call on `s`
 * returns WISP_ECLOSED, and `s` still must be released with
 * wisp_sse_end (which may be called inside on_close).
 *
 * Ownership: the stream takes the response's abort and drain callback
 * slots (do not set them on `res` afterwards) and finishes the response
 * in wisp_sse_end; the caller owns `s` until then.
 * Returns the stream, or NULL with errno EINVAL (`res` NULL, or headers
 * refused), ENOMEM, or the code of the failed response call negated
 * (wisp_res_status/header/write: e.g. -WISP_ESTATE when the head was
 * already sent, -WISP_ECLOSED when the client has gone); after a
 * failure the response is still the caller's. */
WISP_API wisp_sse_t *wisp_sse_start(wisp_res_t *res,
                                    const wisp_sse_config_t *cfg,
                                    wisp_sse_cb on_close, void *arg);

/* Send one event: "event:" when `event` is not NULL, "id:" when `id` is
 * not NULL ("" sends an empty id, which clears the client's last event
 * ID), then `data` split at each CRLF, LF or CR into "data:" lines (one
 * empty data line when `len` is 0), and the blank line that dispatches
 * it. The event leaves in one write (copied). `data` may be NULL when
 * `len` is 0. Returns 0; -EINVAL when `event` or `id` contains CR or LF
 * (nothing sent); -ENOBUFS when the connection already holds
 * max_buffered_bytes unsent (nothing sent: retry after the drain
 * callback); -ENOMEM; WISP_ECLOSED when the client has gone. */
WISP_API int wisp_sse_send(wisp_sse_t *s, const char *event, const char *id,
                           const void *data, size_t len);

/* Send a comment line ": text" (`text` NULL or "" sends ":"). Clients
 * ignore it. Returns as wisp_sse_send (-EINVAL when `text` contains CR
 * or LF). */
WISP_API int wisp_sse_comment(wisp_sse_t *s, const char *text);

/* Send "retry: ms", the client's reconnection time. Returns 0, -ENOBUFS,
 * WISP_ECLOSED as wisp_sse_send. */
WISP_API int wisp_sse_retry(wisp_sse_t *s, uint64_t ms);

/* Bytes written but not yet on the socket (wisp_res_buffered); 0 once
 * the client has gone. */
WISP_API size_t wisp_sse_buffered(const wisp_sse_t *s);

/* Run `cb(s, arg)` once, from the loop (never inside a call), when every
 * queued byte has reached the socket; replaces a previous callback, NULL
 * clears it. Never runs after the client has gone or after
 * wisp_sse_end. */
WISP_API void wisp_sse_on_drain(wisp_sse_t *s, wisp_sse_cb cb, void *arg);

/* Finish the stream: stop the pings, end the response (the last chunk
 * goes out) and free `s`, which is invalid after the call (when called
 * inside on_close or a drain callback, it is freed when that returns).
 * Returns 0, or WISP_ECLOSED when the client had gone. */
WISP_API int wisp_sse_end(wisp_sse_t *s);

#ifdef __cplusplus
}
#endif
#endif
