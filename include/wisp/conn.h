/* wisp — connections and the protocols that run on them.
 *
 * A connection is a byte stream (TCP or a Unix socket) owned by one loop.
 * What it speaks is decided by the table of callbacks installed on it
 * (wisp_conn_handlers_t): the listener installs HTTP's at accept; an
 * upgrade (wisp_res_upgrade) swaps in another protocol's (WebSocket, or an
 * application's own). The connection layer knows no protocol: it reads,
 * buffers what the protocol leaves, corks and queues writes, pauses
 * reading under backpressure, keeps one deadline, and closes in two
 * phases.
 *
 * Thread: every function here runs on the connection's loop
 * (wisp_conn_loop), asserted in debug builds; callbacks run there too.
 *
 * Callbacks of a connection never run inside a wisp_conn_* call: on_close
 * in particular runs after the call that closed the connection has
 * returned (at the end of that loop iteration), so code that walks its
 * own list of connections and closes them sees the list unchanged during
 * the walk. Two things can run inside a write: wisp_conn_write_ref's
 * `done` (see there), and, when the write flushes the loop's shared
 * output buffer on behalf of an HTTP connection whose socket has broken,
 * that connection's response abort callback (wisp/http.h, "Callbacks
 * inside calls"). */
#ifndef WISP_CONN_H
#define WISP_CONN_H

#include <sys/socket.h>

#include "common.h"
#include "loop.h"
#include "shared.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wisp_conn wisp_conn_t;

/* A protocol's callbacks. `arg` is the pointer given with the table
 * (wisp_res_upgrade). The table must outlive the connection. */
typedef struct wisp_conn_handlers {
    /* Bytes arrived. Return how many were consumed (0..len); the rest is
     * kept (copied into the connection's buffer) and presented again,
     * ahead of new bytes, when more arrive. The bytes are valid only
     * during the call, and writable: a protocol may transform them in
     * place (e.g. unmask). Required. */
    size_t (*on_data)(wisp_conn_t *c, const char *data, size_t len,
                      void *arg);
    /* Everything queued has been written: after the loop flushed the
     * connection's output (at the end of an event it handled for it) or
     * the socket became writable, and nothing is left queued. Runs from
     * the loop, never inside a call. The place to resume producing
     * after wisp_conn_buffered() grew large. Optional. */
    void (*on_drain)(wisp_conn_t *c, void *arg);
    /* The connection is closed: reason 0 (closed by wisp_conn_close or
     * wisp_conn_abort), -ECONNRESET (the peer closed or reset),
     * -ETIMEDOUT (a timeout without on_timeout, or the write timeout),
     * WISP_ECLOSED (server stop), -ENOMEM, or another negative errno
     * from the socket. Runs exactly once, from the loop at the end of the
     * iteration in which the connection closed or wisp_conn_close was
     * called (or while the server is destroyed), never inside a wisp_*
     * call. After wisp_conn_close the transport goes on alone (flush,
     * linger): the owner is done. `c` stays valid until on_close returns
     * (writes return WISP_ECLOSED), not after. Required. */
    void (*on_close)(wisp_conn_t *c, int reason, void *arg);
    /* The server is stopping: finish up and close (e.g. a WebSocket
     * close handshake). Connections still open at the stop deadline are
     * closed with WISP_ECLOSED. Optional: without it the connection is
     * closed at once with WISP_ECLOSED. */
    void (*on_stop)(wisp_conn_t *c, void *arg);
    /* The idle timeout or the one-shot timeout has passed. Optional:
     * without it the connection is closed with -ETIMEDOUT. The callback
     * may set a new timeout, write, or close. */
    void (*on_timeout)(wisp_conn_t *c, void *arg);
} wisp_conn_handlers_t;

/* Queue bytes. wisp_conn_write copies `data`; wisp_conn_write_ref
 * references it until written and then calls `done(arg)` once on this
 * loop (also when the connection closes first, or the call fails; done
 * may be NULL). Small writes gather in the loop's cork and leave in one
 * send when the current event is handled. Returns 0, or WISP_ECLOSED
 * (closed or closing: nothing was queued; `done` has run; also when the
 * send this write caused failed or memory ran out: then the connection
 * is aborted and on_close follows after the call). When queued bytes
 * pass the server's write_high_water, reading pauses until they are
 * written. `done` runs inside the call when it returns WISP_ECLOSED and
 * when `len` is 1 KiB or less (such bytes are copied at once); otherwise
 * from the loop once the bytes are written or dropped. No callback of
 * the connection runs inside the call. */
WISP_API int wisp_conn_write(wisp_conn_t *c, const void *data, size_t len);
WISP_API int wisp_conn_write_ref(wisp_conn_t *c, const void *data,
                                 size_t len, wisp_free_cb done, void *arg);
/* Queue `msg` without copying it: the connection takes its own
 * reference until the bytes are written or dropped (the caller keeps
 * its). Returns as wisp_conn_write. */
WISP_API int wisp_conn_write_shared(wisp_conn_t *c, wisp_shared_t *msg);
/* Bytes queued and not yet written to the socket (cork included); 0
 * once the connection is closed. */
WISP_API size_t wisp_conn_buffered(const wisp_conn_t *c);
/* Stop / resume delivering bytes (on_data). While paused only the peer's
 * close is watched. Independent of the pause under backpressure: reading
 * goes on when neither holds it. No callback runs inside the call. */
WISP_API void wisp_conn_pause(wisp_conn_t *c);
WISP_API void wisp_conn_resume(wisp_conn_t *c);
/* Close in two phases. wisp_conn_close: stop reading, write what is
 * queued (bounded by the write timeout), shut the write side, wait (at
 * most 2 s) for the peer's close, then close; nothing more is delivered
 * to the protocol. wisp_conn_abort: close now, dropping what is queued.
 * A connection already closing or closed is left as it is. Either way
 * on_close runs once with reason 0, after the call: at the end of the
 * current loop iteration (see above). */
WISP_API void wisp_conn_close(wisp_conn_t *c);
WISP_API void wisp_conn_abort(wisp_conn_t *c);
/* Time out when no bytes arrive for `ms` (0: never): every arriving byte
 * restarts the count. No effect on a closing or closed connection.
 * A connection has one timeout: this replaces the
 * one set with wisp_conn_set_timeout, and the reverse. While queued
 * output makes no progress the server's write timeout stands in for it;
 * once the queue is written the idle timeout is armed again. */
WISP_API void wisp_conn_set_idle_timeout(wisp_conn_t *c, uint32_t ms);
/* Time out once, `ms` from now, whatever arrives (0: cancel). While
 * queued output makes no progress the server's write timeout stands in
 * for it; on_drain is the place to set it again. No effect on a
 * closing or closed connection. */
WISP_API void wisp_conn_set_timeout(wisp_conn_t *c, uint32_t ms);
/* The loop that owns the connection. Thread: any (the value never
 * changes). */
WISP_API wisp_loop_t *wisp_conn_loop(const wisp_conn_t *c);

/* Install another protocol on a connection the caller owns (one opened
 * with wisp_conn_connect, or handed over by wisp_client's on_upgrade):
 * from the next event on, bytes, drains, timeouts and the close go to
 * `h` with `arg`; bytes already received and not consumed stay and are
 * presented to `h` with the next ones; the timeout is cleared; a
 * wisp_conn_pause is lifted. No callback runs inside the call.
 * Returns 0, WISP_ECLOSED (closed or closing), WISP_ESTATE (still
 * connecting, or a connection of wisp's own HTTP server: use
 * wisp_res_upgrade there) or -EINVAL (h, h->on_data or h->on_close
 * NULL). */
WISP_API int wisp_conn_set_handlers(wisp_conn_t *c,
                                    const wisp_conn_handlers_t *h,
                                    void *arg);

/* ------------------------------------------------- outgoing connections */

/* The outcome of wisp_conn_connect. err 0: connected, `c` runs under the
 * handler table given to the connect, with the same semantics as an
 * accepted connection (the table's callbacks, writes, timeouts, close);
 * the callback may write the first bytes, install timeouts or close `c`.
 * err < 0: `c` is NULL and nothing is left to release: -ECONNREFUSED,
 * -ETIMEDOUT (the connect timeout passed), -ECANCELED (wisp_conn_abort
 * on the pending connection), WISP_ECLOSED (the server owning the loop
 * is stopping), -ENOMEM, or another negative errno of the socket
 * (-ENETUNREACH, -ENOENT for a Unix socket path that does not exist,
 * ...). */
typedef void (*wisp_conn_connect_cb)(wisp_conn_t *c, int err, void *arg);

/* Open a stream connection from `loop` to `sa` (AF_INET, AF_INET6 or
 * AF_UNIX; `salen` its length), through the loop's kernel backend. TCP
 * connections get TCP_NODELAY. When the connect completes or fails,
 * cb(c, err, arg) runs once on the loop, never inside this call (also
 * when the kernel connected at once, as Unix sockets do). `timeout_ms`
 * bounds the connect (0: no bound but the kernel's own).
 *
 * The loop may be a server's (wisp_server_loop: the connection then
 * shares its transport and is aborted with WISP_ECLOSED when the server
 * stops) or a bare loop of the caller's (the transport is set up on first
 * use and freed by wisp_loop_destroy; connections still open then are
 * aborted and their on_close runs inside wisp_loop_destroy).
 *
 * `pending` (may be NULL) receives the connection being set up. Until
 * `cb` runs, the only calls valid on it are wisp_conn_abort (cancel:
 * `cb` then runs with -ECANCELED, from the loop after that call), and
 * wisp_conn_loop; after `cb` ran with an error it is gone.
 *
 * Ownership: `sa` is copied; `h` must outlive the connection; `harg` is
 * the caller's. Thread: the loop's own (or any thread before the loop
 * first runs, when no other thread uses it).
 * Returns 0 (then `cb` runs once, with every failure of the socket or
 * the connect, even one the kernel reported at once: -EMFILE,
 * -ECONNREFUSED, ...), or, with `cb` never run: -EINVAL (NULL loop, sa,
 * h, h->on_data, h->on_close or cb; salen too large), -EAFNOSUPPORT (a
 * family other than those above), WISP_ECLOSED (the loop's server is
 * stopping) or -ENOMEM. */
WISP_API int wisp_conn_connect(wisp_loop_t *loop, const struct sockaddr *sa,
                               socklen_t salen,
                               const wisp_conn_handlers_t *h, void *harg,
                               uint32_t timeout_ms, wisp_conn_connect_cb cb,
                               void *arg, wisp_conn_t **pending);

#ifdef __cplusplus
}
#endif
#endif
