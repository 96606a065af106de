/* wisp — middleware: hooks around handlers, and wisp's own error answers.
 *
 * A middleware is up to three hooks (wisp_mw_t) registered for every
 * path (wisp_server_use with prefix NULL or "/"), for a route group (a
 * path prefix: "/api" covers "/api" and "/api/..." but not "/apix"), or
 * for one route (wisp_route_opts_t.mw). Group and global middleware run
 * for every request whose path they cover, whether a route matched or
 * not: wisp's own 404 and 405 answers go through them too. Requests
 * refused before routing (a malformed head, 413, 431, 408...) run none:
 * wisp_server_on_error shapes those.
 *
 * Order (documented contract): the built-in access log, then the
 * built-in CORS (wisp_server_cors), then global middleware in
 * registration order, then groups from the shortest prefix to the
 * longest (registration order among equal prefixes), then the route's
 * own in array order, then the handler. Before-hooks run in that order;
 * after-hooks and done-hooks in the reverse order, and only for the
 * middleware the request reached ("entered": a middleware whose
 * before-hook ran, or that the chain passed; one whose before-hook
 * answered early is entered, the ones after it are not).
 *
 * - before(req, res, arg) runs before the handler and returns
 *   WISP_MW_NEXT (go on), WISP_MW_DONE (the hook finished the response:
 *   the rest of the chain and the handler are skipped; a hook that says
 *   DONE without finishing it gets a 500 sent for it), or WISP_MW_ASYNC
 *   (the hook keeps the response: it later calls wisp_res_next to go on,
 *   or finishes the response itself, e.g. from a future's continuation
 *   with wisp_res_await). A hook may add response headers (they are sent
 *   with whatever answer follows) and set the status.
 * - after(req, res, arg) runs once, just before the head of the response
 *   is written (inside the wisp_res_send, _send_ref, _sendfile, _write,
 *   _end or _upgrade call that writes it): it reads the status
 *   (wisp_res_get_status) and may change it, and may add headers. It
 *   must not finish the response (such calls return WISP_ESTATE there).
 * - done(req, res, arg) runs once the response is complete on a
 *   connection still open (as the access log: a client that went away
 *   first runs no done-hook), with the final status and body bytes
 *   (wisp_res_get_status, wisp_res_body_bytes); every response call
 *   returns WISP_ESTATE there.
 *
 * Zero cost: with no middleware, no CORS and no access log, a request
 * pays one test for all of this.
 *
 * Thread: hooks run on the loop serving the request, on every loop at
 * once: state they share across requests needs a lock or atomics. */
#ifndef WISP_MIDDLEWARE_H
#define WISP_MIDDLEWARE_H

#include "common.h"
#include "http.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wisp_server wisp_server_t;

typedef enum wisp_mw_result {
    WISP_MW_NEXT = 0,
    WISP_MW_DONE = 1,
    WISP_MW_ASYNC = 2,
} wisp_mw_result_t;

typedef wisp_mw_result_t (*wisp_mw_before_cb)(wisp_req_t *req,
                                              wisp_res_t *res, void *arg);
typedef void (*wisp_mw_hook_cb)(wisp_req_t *req, wisp_res_t *res,
                                void *arg);

typedef struct wisp_mw {
    wisp_mw_before_cb before; /* each may be NULL */
    wisp_mw_hook_cb after;
    wisp_mw_hook_cb done;
    void *arg;                /* passed to every hook; not owned */
} wisp_mw_t;

/* Most middleware a server holds (global and groups together, the
 * built-in CORS and access log included), and most per route. */
#define WISP_MW_MAX_SERVER 24
#define WISP_MW_MAX_ROUTE 8

/* Register `mw` (copied; mw->arg must stay valid while the server runs)
 * for every path under `prefix` (NULL or "/": every path; trailing '/'
 * ignored). Thread: the configuring thread, before wisp_server_listen.
 * Returns 0, -EINVAL (srv or mw NULL, no hook set, prefix not starting
 * with '/'), -ENOSPC (WISP_MW_MAX_SERVER reached), -ENOMEM, or
 * WISP_ESTATE (after listen). */
WISP_API int wisp_server_use(wisp_server_t *srv, const char *prefix,
                             const wisp_mw_t *mw);

/* Go on with the chain after a before-hook returned WISP_MW_ASYNC: the
 * remaining before-hooks run, then the handler, inside this call. Call it
 * once, after the hook has returned (from a timer, a task, a future's
 * continuation), on the response's loop. On a route with stream_body the
 * body arriving while the hook waits is discarded (the handler's
 * wisp_req_on_body returns WISP_ESTATE): do not go asynchronous there.
 * Returns 0; WISP_ESTATE when no hook is waiting or the response is
 * finished; WISP_ECLOSED when the client has gone (then the response is
 * finished and `res` is invalid after the call). */
WISP_API int wisp_res_next(wisp_res_t *res);

/* The router's answer for the request: 0 when a route matched, 404 when
 * no pattern matched the path, 405 when patterns matched but not for the
 * method (then wisp answers with Allow unless a hook answers first). */
WISP_API int wisp_req_route_status(const wisp_req_t *req);

/* When the server has middleware (or CORS, or an access log): the
 * CLOCK_MONOTONIC time in nanoseconds at which the first hook was about
 * to run; otherwise 0. For timing hooks. */
WISP_API uint64_t wisp_req_start_ns(const wisp_req_t *req);

/* The response's status as it stands (200 until set; for done-hooks the
 * one sent), and the body bytes sent so far (after the response: its
 * body length, also for HEAD, where none went on the wire). */
WISP_API int wisp_res_get_status(const wisp_res_t *res);
WISP_API uint64_t wisp_res_body_bytes(const wisp_res_t *res);

/* The value of the first header named `name` (case-insensitive) added to
 * the response so far with wisp_res_header*; ptr NULL when none. Valid
 * until the next header is added or the response is finished. */
WISP_API wisp_str_t wisp_res_get_header(const wisp_res_t *res,
                                        const char *name);

/* ------------------------------------------------------ error answers */

/* The answer being built for one of wisp's own errors. */
typedef struct wisp_error_reply wisp_error_reply_t;

/* Called for each error answer wisp makes itself: 400, 408, 413, 414,
 * 417, 431, 501, 505 refused before routing (`req` NULL when the head
 * could not be parsed; else the parsed request, e.g. 413 for a declared
 * body over the limit), and 404 / 405 from routing (after the middleware
 * chain: headers hooks added stay, e.g. CORS). The status is fixed; the
 * callback chooses the body and its type (wisp_error_reply_body; without
 * a call wisp's plain-text reason is kept) and may add header fields
 * (wisp_error_reply_header). A 405 keeps its Allow header, added by
 * wisp. At most 4 KiB of body and headers together.
 * Runs on the loop; must not block; must not keep `reply` or `req`. */
typedef void (*wisp_error_cb)(wisp_req_t *req, int status,
                              wisp_error_reply_t *reply, void *arg);

/* Install `cb` (NULL: wisp's own plain-text answers). One per server; a
 * second call replaces the first. Thread: the configuring thread, before
 * wisp_server_listen. Returns 0, -EINVAL (srv NULL), WISP_ESTATE (after
 * listen). */
WISP_API int wisp_server_on_error(wisp_server_t *srv, wisp_error_cb cb,
                                  void *arg);

/* Add a header field to the error answer: the same rules as
 * wisp_res_header (Date, Content-Length, Transfer-Encoding, Connection
 * refused; names must be tokens, values free of CR, LF, NUL), and
 * Content-Type and Allow are refused too (the body call sets the type;
 * Allow is wisp's). Returns 0, -EINVAL, or -ENOSPC (4 KiB reached). */
WISP_API int wisp_error_reply_header(wisp_error_reply_t *reply,
                                     const char *name, const char *value);

/* Set the body (copied) and its Content-Type (NULL: none; no CR/LF).
 * Replaces a previous body. Returns 0, -EINVAL (body NULL with len > 0,
 * bad type), -ENOSPC (with the headers, over 4 KiB: the previous body
 * stays). */
WISP_API int wisp_error_reply_body(wisp_error_reply_t *reply,
                                   const char *content_type,
                                   const void *body, size_t len);

#ifdef __cplusplus
}
#endif
#endif
