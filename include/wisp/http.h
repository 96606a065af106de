/* wisp — HTTP/1.1 requests and responses.
 *
 * A handler receives a request and a response for it. It may answer at
 * once, or return and answer later (from a timer, a posted task or a
 * future's continuation) on the same loop: the response stays open until
 * a terminal call (wisp_res_send*, wisp_res_end, wisp_res_sendfile,
 * wisp_res_upgrade) and later pipelined requests wait their turn, so
 * responses always leave in request order.
 *
 * Lifetimes: `req` and `res` belong to wisp. They stay valid from the
 * handler call until the response is finished, or until the abort
 * callback (wisp_res_on_abort) has returned when the client goes away
 * first. If no abort callback is set and the client goes away, the
 * response stays valid (and every call on it returns WISP_ECLOSED) until
 * the application finishes it. Pointers returned by request getters
 * (wisp_str_t) point into wisp's buffers and share the request's
 * lifetime: copy what you keep.
 *
 * Thread: every function here runs on the loop that called the handler
 * (asserted in debug builds), except wisp_method_name (any thread). To
 * answer from another thread, post a task to wisp_res_loop(res).
 *
 * Callbacks inside calls. The request getters, wisp_res_status,
 * wisp_res_header*, wisp_res_content_length, wisp_res_on_drain and
 * wisp_res_on_abort run no callback. The calls that write
 * (wisp_res_send*, wisp_res_sendfile, wisp_res_write, wisp_res_end,
 * wisp_res_upgrade; also wisp_conn_write* and wisp_ws_send*, which share
 * the loop's output buffer) may find a socket broken, this response's
 * or another connection's whose bytes they flush: that connection closes
 * inside the call, and when it carries a response whose handler has
 * already returned, that response's abort callback runs inside the call
 * (with no abort callback, the response just becomes one whose calls
 * return WISP_ECLOSED). The response a terminal call finishes
 * (wisp_res_send*, wisp_res_sendfile, wisp_res_end) is the exception:
 * when the call breaks its own connection it returns WISP_ECLOSED and
 * finishes the response, and that response's abort callback never runs
 * (a streamed request body still arriving gets on_end(-ECANCELED), inside
 * the call). Otherwise a body's on_data/on_end and the drain callback
 * never run inside a call; wisp_res_send_ref's `done` may (see there). */
#ifndef WISP_HTTP_H
#define WISP_HTTP_H

#include "common.h"
#include "conn.h"
#include "future.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wisp_req wisp_req_t;
typedef struct wisp_res wisp_res_t;


typedef enum wisp_method {
    WISP_METHOD_GET = 0,
    WISP_METHOD_HEAD,
    WISP_METHOD_POST,
    WISP_METHOD_PUT,
    WISP_METHOD_DELETE,
    WISP_METHOD_CONNECT,
    WISP_METHOD_OPTIONS,
    WISP_METHOD_TRACE,
    WISP_METHOD_PATCH,
    WISP_METHOD_COUNT,
    WISP_METHOD_ANY = 0xff /* route: every method */
} wisp_method_t;

/* "GET", "HEAD", ... ; "ANY" for WISP_METHOD_ANY; NULL when out of range.
 * A static string. Thread: any. */
WISP_API const char *wisp_method_name(wisp_method_t m);

typedef void (*wisp_handler)(wisp_req_t *req, wisp_res_t *res, void *arg);

/* ---------------------------------------------------------------- request */

/* The request's method (a HEAD request routed to a GET route still says
 * WISP_METHOD_HEAD). */
WISP_API wisp_method_t wisp_req_method(const wisp_req_t *req);
/* 0 for HTTP/1.0, 1 for HTTP/1.1. */
WISP_API int wisp_req_version_minor(const wisp_req_t *req);
/* The request target as received (origin-form path and query; for
 * absolute-form the part from the path on; "*" for OPTIONS *). */
WISP_API wisp_str_t wisp_req_target(const wisp_req_t *req);
/* The path, percent-decoded. A path whose decoding yields NUL or an
 * invalid escape is refused with 400 before any handler runs. */
WISP_API wisp_str_t wisp_req_path(const wisp_req_t *req);
/* The raw query string after '?', without the '?'; ptr NULL when the
 * target has no '?'. */
WISP_API wisp_str_t wisp_req_query(const wisp_req_t *req);

/* Look up `key` in the query string and percent-decode its value ('+'
 * becomes a space) into `out` (NUL-terminated when it fits). Returns the
 * decoded length (which may exceed `cap`-1: then the output is truncated;
 * `out` may be NULL with `cap` 0 to learn the length), or -ENOENT when
 * absent (or `key` is NULL), WISP_EPARSE on a bad escape, -ENOMEM when a
 * value over 1 KiB cannot be decoded for lack of memory. */
WISP_API ssize_t wisp_req_query_get(const wisp_req_t *req, const char *key,
                                    char *out, size_t cap);

/* The value of the route parameter `name` (":name" or "*name" in the
 * pattern), as matched (not percent-decoded beyond the path's own
 * decoding); ptr NULL when the route has no such parameter. */
WISP_API wisp_str_t wisp_req_param(const wisp_req_t *req, const char *name);

/* Case-insensitive header lookup: the first field named `name`, with
 * surrounding whitespace removed; ptr NULL when absent. */
WISP_API wisp_str_t wisp_req_header(const wisp_req_t *req, const char *name);
/* Number of header fields, and the i-th one (0-based, in arrival order).
 * wisp_req_header_at returns 0 and fills *name and *value, or -ERANGE
 * when i is out of range (then they are untouched). */
WISP_API size_t wisp_req_header_count(const wisp_req_t *req);
WISP_API int wisp_req_header_at(const wisp_req_t *req, size_t i,
                                wisp_str_t *name, wisp_str_t *value);

/* The whole body (Content-Length or de-chunked), for routes that buffer
 * bodies (the default). Empty (len 0) when the request has none. For a
 * streaming route, ptr is NULL: use wisp_req_on_body. */
WISP_API wisp_str_t wisp_req_body(const wisp_req_t *req);
/* The declared Content-Length, or -1 when chunked or absent. */
WISP_API int64_t wisp_req_content_length(const wisp_req_t *req);

/* Streaming bodies (routes with `stream_body` set): `on_data` runs for
 * each piece of body as it arrives (the bytes are valid only during the
 * call), then `on_end` runs once with 0 when the body is complete, or
 * with a negative code if it cannot complete: WISP_EBODY_TOO_LARGE (wisp
 * answers 413), WISP_EPARSE (400), -ETIMEDOUT (408), -ECANCELED (the
 * client went away). After an error, wisp owns the exchange again: `req`
 * and `res` are invalid once on_end returns, and the abort callback does
 * not run. The response may be sent before or after the body ends (sent
 * before, the connection closes after it). The handler must call this
 * before it returns; with no call the body is discarded. Returns 0, or
 * WISP_ESTATE when the route does not stream or the call comes too
 * late. */
typedef void (*wisp_body_data_cb)(wisp_req_t *req, const void *data,
                                  size_t len, void *arg);
typedef void (*wisp_body_end_cb)(wisp_req_t *req, int status, void *arg);
WISP_API int wisp_req_on_body(wisp_req_t *req, wisp_body_data_cb on_data,
                              wisp_body_end_cb on_end, void *arg);

/* The peer's address as text ("127.0.0.1", "::1", "unix"; "-" once the
 * client has gone), in a per-thread buffer valid until the next call on
 * the same thread. */
WISP_API const char *wisp_req_peer(const wisp_req_t *req);
/* The client's address as text: wisp_req_peer, unless the server has
 * trusted_proxies (wisp_server_config_t) and the peer is one of them;
 * then the right-most entry of the Forwarded (RFC 7239 for=) or, when
 * there is no Forwarded field, X-Forwarded-For list that is not a
 * trusted proxy (all fields of that name, in order, as one list; every
 * entry trusted: the left-most). An entry that is no IP address
 * ("unknown", an obfuscated "_name", garbage) reached in that walk
 * gives "unknown"; no such field at all gives wisp_req_peer. Ports and
 * IPv6 brackets are dropped. Same buffer rules as wisp_req_peer. */
WISP_API const char *wisp_req_client_addr(const wisp_req_t *req);
/* Nonzero when the connection will be kept open after this response. */
WISP_API int wisp_req_keep_alive(const wisp_req_t *req);
/* The loop that owns the request (the one running the handler). */
WISP_API wisp_loop_t *wisp_req_loop(const wisp_req_t *req);

/* --------------------------------------------------------------- response */

/* Set the status of a response that has not sent its head. Default 200.
 * 1xx statuses are refused (101 is wisp_res_upgrade's; wisp sends
 * 100 Continue itself). No callback runs inside the call.
 * Returns 0; WISP_ESTATE when the response is finished; WISP_ECLOSED when
 * the client has gone; -EINVAL when `status` is not in 200..999;
 * WISP_ESTATE when the head was already sent. The first that applies
 * is returned; after an error the status is unchanged. */
WISP_API int wisp_res_status(wisp_res_t *res, int status);

/* Add a header field. Name and value are copied. wisp writes Date,
 * Content-Length or Transfer-Encoding, and Connection itself; adding
 * them here is refused with -EINVAL, as are names that are not tokens and
 * values with CR, LF or NUL. A Content-Type or Server added here wins:
 * it is sent once, and the content type given to wisp_res_send (and the
 * like) or the configured server_name is left out. Other names may be
 * added more than once (Set-Cookie). The header section is bounded
 * (8 KiB of added fields): past it, -ENOSPC. Returns 0, -EINVAL,
 * -ENOSPC, -ENOMEM (the first field past the inline room cannot be
 * stored), WISP_ESTATE (finished, or the head was sent), WISP_ECLOSED
 * (the client has gone). No callback runs inside the call. */
WISP_API int wisp_res_header(wisp_res_t *res, const char *name,
                             const char *value);
WISP_API int wisp_res_header_n(wisp_res_t *res, const char *name,
                               size_t name_len, const char *value,
                               size_t value_len);

/* Send a complete response: status, optional Content-Type (NULL: none),
 * and `len` bytes of body, copied (`body` may be NULL when `len` is 0).
 * For HEAD requests the body is left out and Content-Length kept.
 * Finishes the response.
 * Returns 0; WISP_ESTATE when the response is finished or its head was
 * already sent; -EINVAL when `status` is not in 200..999 or `body` is
 * NULL with `len` > 0 (then the response is unchanged and still open);
 * WISP_ECLOSED when the client has gone (then the response is finished
 * and `res` is invalid after the call). */
WISP_API int wisp_res_send(wisp_res_t *res, int status,
                           const char *content_type, const void *body,
                           size_t len);

/* As wisp_res_send but without copying the body: wisp references `body`
 * until it is written and then calls `done(arg)` (if not NULL) exactly
 * once on this loop, also when the connection closes first or the call
 * fails. `done` may run inside the call (on every error, and when the
 * body is short enough to be copied at once). Returns what wisp_res_send
 * returns, for the same reasons. */
WISP_API int wisp_res_send_ref(wisp_res_t *res, int status,
                               const char *content_type, const void *body,
                               size_t len, wisp_free_cb done, void *arg);

/* Streaming: declare the body length first with wisp_res_content_length
 * (then exactly that many bytes must follow) or leave it undeclared (then
 * HTTP/1.1 uses chunked encoding and HTTP/1.0 closes to delimit).
 * wisp_res_write copies `len` bytes and sends the head first if needed;
 * wisp_res_end finishes the response. A write of 0 bytes only sends the
 * head. In detail: wisp_res_content_length returns
 * 0, WISP_ESTATE (finished, or head already sent) or WISP_ECLOSED;
 * wisp_res_write returns 0, WISP_ESTATE (finished), WISP_ECLOSED (the
 * client has gone: the response is still the application's to finish
 * unless its abort callback ran, see above), -EINVAL (more bytes than
 * declared: nothing written); wisp_res_end finishes the response
 * (unless it was already finished) and returns 0, WISP_ESTATE (already finished), WISP_ECLOSED
 * (the client had gone; `res` is invalid after the call), or -EINVAL
 * (fewer bytes than declared were written: the connection closes after
 * what was sent). `data` is copied; it may be NULL when `len` is 0. */
WISP_API int wisp_res_content_length(wisp_res_t *res, uint64_t len);
WISP_API int wisp_res_write(wisp_res_t *res, const void *data, size_t len);
WISP_API int wisp_res_end(wisp_res_t *res);

/* Bytes accepted by the response's connection but not yet written to
 * the socket (the loop's cork included); 0 once the client has gone. */
WISP_API size_t wisp_res_buffered(const wisp_res_t *res);
/* Run `cb(res, arg)` once, when everything queued on the connection has
 * been written to the socket. Use it to produce a large streamed body
 * without unbounded buffering: write a piece, and when
 * wisp_res_buffered() is large, wait for this callback before the next.
 * Replaces a previous callback; NULL clears it. `cb` runs from the loop,
 * never inside a wisp_* call, and not once the client has gone. Runs no
 * callback. */
typedef void (*wisp_res_cb)(wisp_res_t *res, void *arg);
WISP_API void wisp_res_on_drain(wisp_res_t *res, wisp_res_cb cb, void *arg);

/* Run `cb(res, arg)` if the client goes away (or the server force-closes
 * the connection) before the response is finished. After `cb` returns,
 * `req` and `res` are invalid. Replaces a previous callback; NULL clears
 * it. `cb` runs at most once, never inside the handler call, and may run
 * inside a call that writes (see "Callbacks inside calls" above).
 * wisp_res_await uses the same slot. */
WISP_API void wisp_res_on_abort(wisp_res_t *res, wisp_res_cb cb, void *arg);

/* Serve `len` bytes of the open file `fd` from `offset` with sendfile(2).
 * wisp takes ownership of `fd` and closes it, on success or failure.
 * Finishes the response. Returns 0; WISP_ESTATE when the response is
 * finished or its head was already sent; -EINVAL when `status` is not in
 * 200..999 (the response stays open); WISP_ECLOSED when the client has
 * gone, or when the file cannot be queued for lack of memory (then the
 * head went out and the connection closes after it); after WISP_ECLOSED
 * the response is finished and `res` is invalid. */
WISP_API int wisp_res_sendfile(wisp_res_t *res, int status,
                               const char *content_type, int fd,
                               uint64_t offset, uint64_t len);

/* The loop that owns the response: finish it there (post a task to it
 * from other threads). Valid while the response is. Thread: any thread
 * holding a valid `res` (the value never changes). */
WISP_API wisp_loop_t *wisp_res_loop(const wisp_res_t *res);
/* The request this response answers; same lifetime as `res`. */
WISP_API wisp_req_t *wisp_res_req(wisp_res_t *res);

/* ------------------------------------------------- connection take-over */

/* Send the head with status 101 (and the headers added so far), then hand
 * the connection to the protocol whose callbacks are `h` (see
 * wisp/conn.h; `h` and what it points to must outlive the connection).
 * Bytes that followed the request are delivered to h->on_data first: at
 * once when the call is made inside the handler (after it returns), or
 * before this call returns when made later. No other callback runs
 * inside the call. Returns 0, or the first that applies of: WISP_ESTATE
 * (the response is finished), WISP_ECLOSED (the client went away),
 * -EINVAL (h, h->on_data or h->on_close NULL), WISP_ESTATE (the head was
 * already sent, or the request body has not been read whole, or another
 * request's response is still ahead of it); after an error the response
 * is unchanged and still open. The request and response are invalid
 * after success. Thread: the response's loop. */
WISP_API int wisp_res_upgrade(wisp_res_t *res, const wisp_conn_handlers_t *h,
                              void *arg);

#if WISP_HAVE_POOL /* absent with -Dpool=false (wisp/features.h) */
/* Finish `res` when `f` settles. `done(res, f, arg)` runs on the
 * response's loop once `f` has settled and must finish the response. If
 * the client goes away first, `f` is cancelled (a late result is
 * destroyed), `done` never runs, and `cancelled(arg)` (may be NULL) runs
 * instead so the caller can free `arg`. Uses the response's abort
 * callback slot (wisp_res_on_abort). `f` must belong to the response's
 * loop. Takes its own reference on `f`. Neither callback runs inside the
 * call (a future already settled runs `done` from the loop, as
 * wisp_future_then does). Thread: the response's loop.
 * Returns 0, WISP_ECLOSED, -EXDEV, -EINVAL (f or done NULL), or -ENOMEM
 * (then nothing will run). */
typedef void (*wisp_res_future_cb)(wisp_res_t *res, wisp_future_t *f,
                                   void *arg);
WISP_API int wisp_res_await(wisp_res_t *res, wisp_future_t *f,
                            wisp_res_future_cb done, wisp_free_cb cancelled,
                            void *arg);
#endif

#ifdef __cplusplus
}
#endif
#endif
