/* wisp — WebSocket (RFC 6455) sessions on top of an HTTP route.
 *
 * A route handler calls wisp_ws_upgrade(): wisp checks the handshake
 * (answering 400, or 426 with Sec-WebSocket-Version: 13, when it is not a
 * valid version-13 upgrade), sends the 101 response and from then on the
 * connection is a session: frames are parsed and unmasked in place,
 * messages assembled (fragmented or not), UTF-8 of text messages checked
 * as the bytes arrive, pings answered, and the close handshake done,
 * with the close codes RFC 6455 prescribes for every violation.
 *
 * Thread: every function runs on the session's loop (the one that ran
 * the handler), asserted in debug builds — except wisp_ws_frame_shared
 * and the wisp_ws_post* family, which any thread may call with a handle
 * taken on the session's loop (wisp_ws_handle).
 *
 * Callbacks inside calls: none of the functions below runs a callback
 * of the session before returning. A send that closes a slow consumer,
 * wisp_ws_close, and the closes wisp does itself all end in on_close
 * after the call, from the loop (at the end of the iteration): a
 * session stays valid for the rest of the call that closed it, so a
 * list of sessions can be walked forwards while sending to each.
 * wisp_ws_upgrade is the exception: it runs on_open before returning. */
#ifndef WISP_WS_H
#define WISP_WS_H

#include "common.h"
#include "http.h"
#include "loop.h"
#include "shared.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wisp_ws wisp_ws_t;

/* The rest of this header is absent from a build with -Dwebsocket=false
 * (wisp/features.h). */
#if WISP_HAVE_WEBSOCKET
typedef struct wisp_ws_handlers {
    /* The session is open (after the 101 head was queued). Optional. */
    void (*on_open)(wisp_ws_t *ws, void *arg);
    /* One whole message; `data` is valid during the call only. Text
     * messages are valid UTF-8. Required. */
    void (*on_message)(wisp_ws_t *ws, int binary, const void *data,
                       size_t len, void *arg);
    /* The send queue is empty again (see wisp_ws_buffered). Runs from
     * the loop, never inside a wisp_ws_* call. Optional. */
    void (*on_drain)(wisp_ws_t *ws, void *arg);
    /* The session ended: `code` is the close code received (or 1006 when
     * the connection dropped without one, 1001 at server stop), `reason`
     * its text (not NUL-terminated). Runs once, from the loop at the end
     * of the iteration in which the session ended, never inside a
     * wisp_* call; `ws` is invalid after. Optional. */
    void (*on_close)(wisp_ws_t *ws, int code, const char *reason,
                     size_t reason_len, void *arg);
} wisp_ws_handlers_t;

typedef struct wisp_ws_opts {
    uint64_t max_frame;        /* payload bytes per frame; default 16 MiB;
                                  over → close 1009 */
    uint64_t max_message;      /* bytes per message; default 16 MiB; 1009 */
    size_t max_send_queue;     /* unsent bytes before the slow-consumer
                                  policy applies; default 4 MiB */
    int drop_when_full;        /* 0 (default): close a slow consumer with
                                  1008; 1: drop the message (send returns
                                  -ENOBUFS) */
    /* Keep-alive, counted from the last byte received: with
     * ping_interval_ms, a ping goes out each time that long passes with
     * nothing received (a peer's pong counts); with idle_timeout_ms, the
     * session is closed with 1001 once that long passes with nothing
     * received. With both, the idle timeout is counted in whole ping
     * intervals (rounded up). 0: off. */
    uint32_t idle_timeout_ms;
    uint32_t ping_interval_ms;
    uint32_t close_timeout_ms; /* wait for the peer's close, counted from
                                  when our close frame left; default 5000 */
    /* Subprotocols we speak, in order of preference (NULL-terminated);
     * the first one the client offers is selected. NULL: none. */
    const char *const *subprotocols;
} wisp_ws_opts_t;

/* Fill `o` with the defaults above. Thread: any. */
WISP_API void wisp_ws_opts_init(wisp_ws_opts_t *o);

/* Accept the WebSocket upgrade of `req` (call it from the route's
 * handler). `h` and `opts` (NULL: the defaults) are referenced, not
 * copied: they must stay valid for the session's life — one static pair
 * per route is the usual way. `req` and `res` are invalid after success.
 * on_open runs inside the call, before it returns 0; no other callback
 * of the session does.
 * Returns 0 once the 101 head is queued and the session exists; or
 * -EINVAL (`h` or h->on_message NULL: the response is unchanged), or
 * WISP_ESTATE / WISP_ECLOSED as wisp_res_upgrade returns them (the
 * response keeps the Upgrade and Sec-WebSocket-* fields wisp added and is
 * still the caller's to finish unless it was finished already); or a code
 * after which wisp has
 * answered the request itself (the response is finished): WISP_EPARSE
 * (400: not a valid upgrade), -EPROTO (426: a version other than 13),
 * -ENOMEM (500). */
WISP_API int wisp_ws_upgrade(wisp_req_t *req, wisp_res_t *res,
                             const wisp_ws_handlers_t *h,
                             const wisp_ws_opts_t *opts, void *arg);

/* Send one message (copied). Returns 0, WISP_ECLOSED (closing or closed;
 * also when this send found the queue over max_send_queue and the policy
 * closed the session with 1008: on_close follows after the call),
 * -ENOBUFS (the send queue is over max_send_queue and the policy is to
 * drop), or -EBUSY (a message is being streamed with
 * wisp_ws_send_fragment: messages cannot interleave). No callback runs
 * inside the call. */
WISP_API int wisp_ws_send(wisp_ws_t *ws, int binary, const void *data,
                          size_t len);
WISP_API int wisp_ws_send_text(wisp_ws_t *ws, const char *text, size_t len);

/* Send one message without copying its payload: `data` is referenced
 * until written, then `done(arg)` runs (exactly once, also when the send
 * fails or the connection closes first). `done` (not a session callback)
 * runs inside the call when the send fails and when the payload is small
 * enough to be copied at once (1 KiB or less). Same returns as
 * wisp_ws_send. */
WISP_API int wisp_ws_send_ref(wisp_ws_t *ws, int binary, const void *data,
                              size_t len, wisp_free_cb done, void *arg);

/* Stream one message as several frames, for a message too large to hold
 * at once or produced over time: the first call starts it (`binary`
 * picks text or binary; later calls' flag is ignored), each call sends
 * one frame, and the call with `fin` set ends it. Until then other data
 * messages get -EBUSY (control frames still go out between fragments).
 * A text message must be valid UTF-8 as a whole; a fragment may end
 * inside a character. Pace a long stream with wisp_ws_buffered and
 * on_drain: over max_send_queue the slow-consumer policy applies, and
 * with the drop policy -ENOBUFS means "nothing sent, retry after
 * on_drain" (the message stays open). Returns 0, WISP_ECLOSED (as for
 * wisp_ws_send) or -ENOBUFS. `data` is copied. */
WISP_API int wisp_ws_send_fragment(wisp_ws_t *ws, int binary,
                                   const void *data, size_t len, int fin);

/* Encode one message as a complete server frame in a shared buffer (one
 * reference, the caller's), to send the same bytes to many sessions on
 * any loops with wisp_ws_send_shared: the frame is encoded once and never
 * copied per destination (`data` itself is copied once, here). Returns
 * NULL with errno ENOMEM. Thread: any. */
WISP_API wisp_shared_t *wisp_ws_frame_shared(int binary, const void *data,
                                             size_t len);

/* Queue a frame made by wisp_ws_frame_shared (the session takes its own
 * reference until the frame is written or dropped; the caller keeps
 * its). Same returns and slow-consumer policy as wisp_ws_send; on a
 * client session (wisp_ws_connect), whose frames must be masked,
 * -EOPNOTSUPP. */
WISP_API int wisp_ws_send_shared(wisp_ws_t *ws, wisp_shared_t *frame);

/* Send a ping with up to 125 bytes of payload (copied). Returns 0,
 * -EMSGSIZE (len over 125, nothing sent) or WISP_ECLOSED. Not subject to
 * the slow-consumer policy. */
WISP_API int wisp_ws_ping(wisp_ws_t *ws, const void *data, size_t len);

/* Start the close handshake with `code` (1000..4999 except 1004-1006,
 * 1015) and an optional reason (≤ 123 bytes, UTF-8). on_close runs when
 * the peer answers or close_timeout_ms passes, after the call. Returns
 * 0, -EINVAL (code or reason refused; checked first), or WISP_ECLOSED
 * (the session is already closing or closed). `reason` is copied; NULL
 * means none. */
WISP_API int wisp_ws_close(wisp_ws_t *ws, int code, const char *reason);

/* A session as other threads name it: a small value, copied freely.
 * The fields are private. Take it on the session's loop; use it from any
 * thread until wisp_server_destroy. A handle whose session has ended
 * names nothing: what is posted to it is dropped on the session's loop. */
typedef struct wisp_ws_handle {
    void *conn;      /* private */
    void *w;         /* private */
    uint32_t gen;    /* private */
} wisp_ws_handle_t;

/* The handle of `ws`. Thread: the session's loop. */
WISP_API wisp_ws_handle_t wisp_ws_handle(const wisp_ws_t *ws);

/* Send from any thread: the message is copied and posted to the
 * session's loop, which sends it as wisp_ws_send would (dropping it when
 * the session has ended or is streaming a message, and applying the
 * slow-consumer policy). Messages posted from one thread to one session
 * go out in the order posted. Returns 0 (posted), -EAGAIN (65,536 posts
 * to that loop are waiting: back off), -ENOMEM, -ECANCELED (the loop is
 * closing) or -EINVAL (a handle never taken: all fields zero). A session
 * that ended is not an error here: the message is dropped on its loop.
 * Nothing runs inside the call. Thread: any. */
WISP_API int wisp_ws_post(wisp_ws_handle_t h, int binary, const void *data,
                          size_t len);
/* The same with a frame from wisp_ws_frame_shared (the post takes its
 * own reference; the caller keeps its). Returns as wisp_ws_post, and
 * -EINVAL when `frame` is NULL. Thread: any. */
WISP_API int wisp_ws_post_shared(wisp_ws_handle_t h, wisp_shared_t *frame);
/* wisp_ws_close from any thread (`reason` is copied). Returns as
 * wisp_ws_post, with -EINVAL also for the codes and reasons
 * wisp_ws_close refuses. Thread: any. */
WISP_API int wisp_ws_post_close(wisp_ws_handle_t h, int code,
                                const char *reason);

/* Bytes queued and not yet written to the socket (the loop's cork
 * included). */
WISP_API size_t wisp_ws_buffered(const wisp_ws_t *ws);

/* The subprotocol selected at the handshake (a string of the route's
 * opts.subprotocols, valid as long as they are), or NULL. */
WISP_API const char *wisp_ws_subprotocol(const wisp_ws_t *ws);

/* The loop that owns the session. */
WISP_API wisp_loop_t *wisp_ws_loop(const wisp_ws_t *ws);

/* The `arg` given to wisp_ws_upgrade; wisp_ws_set_arg replaces it for
 * every later callback (wisp never frees it). */
WISP_API void *wisp_ws_arg(const wisp_ws_t *ws);
WISP_API void wisp_ws_set_arg(wisp_ws_t *ws, void *arg);

/* ------------------------------------------------------------- client */

/* The outcome of wisp_ws_connect: err 0 with the session open, or err < 0
 * with `ws` NULL. */
typedef void (*wisp_ws_connect_cb)(wisp_ws_t *ws, int err, void *arg);

/* Open a WebSocket session as a client (RFC 6455 §4.1): connect `loop`
 * to `sa` (wisp_conn_connect), send "GET `path` HTTP/1.1" with Host:
 * `host`, a fresh random Sec-WebSocket-Key, Sec-WebSocket-Version: 13
 * and opts->subprotocols (if any) in Sec-WebSocket-Protocol, and check
 * the answer: status 101, Upgrade: websocket, Connection: upgrade,
 * Sec-WebSocket-Accept matching the key, a subprotocol only among those
 * offered, no extension. The session then works as a server-side one
 * (the same calls, handlers and options: wisp_ws_send*, close
 * handshake, pings, limits), except that every frame it sends is masked
 * with a fresh random key (§5.3), frames from the server must be
 * unmasked (a masked one fails the session with 1002), and
 * wisp_ws_send_shared answers -EOPNOTSUPP (wisp_ws_send_ref copies).
 *
 * `cb(ws, err, arg)` runs once, on the loop, never inside this call:
 * after h->on_open (when set) with err 0, or with ws NULL and err: the
 * connect's errors (see wisp_conn_connect), -ETIMEDOUT (no whole answer
 * within `timeout_ms`, 0 meaning 10 s, counted from the connect; the
 * connect itself has the same bound), WISP_EPARSE or WISP_ETOOLONG_HEAD
 * (a malformed answer, or over 8 KiB of head), -EPROTO (any other
 * status, or a header above that does not match), -ECONNRESET (the
 * server closed first), -ENOMEM. Messages that follow the 101 in the
 * same packet are delivered after cb.
 *
 * Ownership: `sa`, `host` and `path` are copied; `h` and `opts` (NULL:
 * the defaults) must outlive the session, as for wisp_ws_upgrade; `arg`
 * is the caller's (both cb's and the session's). Thread: the loop's own.
 * Returns 0 (cb will run), or -EINVAL (NULL loop, sa, host, path, h,
 * h->on_message or cb; `path` not starting with '/'; CR, LF or space in
 * `host` or `path`), -ENOMEM, or what wisp_conn_connect returns; then cb
 * never runs. */
WISP_API int wisp_ws_connect(wisp_loop_t *loop, const struct sockaddr *sa,
                             socklen_t salen, const char *host,
                             const char *path, const wisp_ws_handlers_t *h,
                             const wisp_ws_opts_t *opts, void *arg,
                             uint32_t timeout_ms, wisp_ws_connect_cb cb);

#endif /* WISP_HAVE_WEBSOCKET */

#ifdef __cplusplus
}
#endif
#endif
