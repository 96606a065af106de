/* wisp — the server: configuration, routes, lifecycle.
 *
 * Lifecycle: wisp_server_create (configure) → wisp_server_route* → 
 * wisp_server_listen (init: bind sockets, create loops) → wisp_server_start
 * (start the loop threads) → wisp_server_wait (run the main loop: signals,
 * lifecycle) → wisp_server_stop (graceful) → wisp_server_destroy (deinit).
 * wisp_server_run() does listen + start + wait.
 *
 * Threads: one I/O loop per thread (`threads`, default one per core), each
 * with its own SO_REUSEPORT listener (the port is the server's alone unless
 * reuse_port_shared is set); the thread that calls
 * wisp_server_wait() runs the main loop, which handles SIGINT/SIGTERM and
 * the stop deadline. */
#ifndef WISP_SERVER_H
#define WISP_SERVER_H

#include "common.h"
#include "http.h"
#include "loop.h"
#include "middleware.h"
#include "pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wisp_server wisp_server_t;

typedef enum wisp_access_log_format {
    WISP_ACCESS_LOG_NONE = 0,
    WISP_ACCESS_LOG_COMMON,   /* NCSA common log format */
    WISP_ACCESS_LOG_COMBINED, /* common + referer and user agent */
} wisp_access_log_format_t;

/* One access-log line (no trailing newline), valid during the call. Runs
 * on the loop that served the request: it must be thread-safe when the
 * server has more than one loop, and must not block. */
typedef void (*wisp_access_log_hook)(const char *line, size_t len, void *arg);

typedef struct wisp_server_config {
    /* Address to bind: an IPv4 or IPv6 literal or "localhost". NULL or ""
     * binds "::" (dual stack, falling back to 0.0.0.0). */
    const char *host;
    /* TCP port; 0 picks a free one (read it with wisp_server_port). */
    uint16_t port;
    /* Also (or only, with `no_tcp`) listen on this Unix socket path. A
     * socket already there that no process listens on (left by a run
     * that did not clean up) is replaced; a live one, or a file that is
     * not a socket, makes wisp_server_listen fail with -EADDRINUSE and
     * is left untouched. The socket is removed at wisp_server_destroy
     * (only when this server created it). */
    const char *unix_path;
    int no_tcp;
    /* I/O loops; 0 means one per online CPU. */
    unsigned threads;
    /* 0 (default): the TCP port is this server's alone. Each loop has its
     * own SO_REUSEPORT listener, so the kernel would let any process of
     * the same user join the group and take a share of the connections;
     * wisp_server_listen therefore first binds the address without
     * SO_REUSEPORT and fails with -EADDRINUSE when anything (another
     * process, another server of this process) listens there already.
     * 1: join whatever SO_REUSEPORT group holds the port (both sides must
     * be of the same user), e.g. for a zero-downtime restart where the new
     * process starts while the old one still serves. A server that asked
     * for sharing cannot stop an exclusive one's later wisp_server_listen
     * from failing, and an exclusive server cannot stop a sharing one
     * from joining it. */
    int reuse_port_shared;
    int backlog;                      /* default 1024 */
    uint32_t max_connections;         /* per loop; default 100000 */

    /* Request limits. */
    uint32_t max_request_line_bytes;  /* default 8192; over → 414 */
    uint32_t max_header_bytes;        /* default 65536; over → 431 */
    uint32_t max_headers;             /* default 100; over → 431 */
    uint64_t max_body_bytes;          /* default for routes: 1 MiB; → 413 */

    /* Timeouts in milliseconds; 0 disables one. A timed-out request head
     * or body gets 408 and a close; an idle keep-alive connection is
     * closed quietly; a write that makes no progress closes. */
    uint32_t header_timeout_ms;       /* default 10000 */
    uint32_t body_timeout_ms;         /* no body progress; default 30000 */
    uint32_t idle_timeout_ms;         /* keep-alive; default 60000 */
    uint32_t write_timeout_ms;        /* no write progress; default 30000 */
    uint32_t shutdown_timeout_ms;     /* graceful stop; default 3000 */

    /* Per-connection write queue: above the high-water mark the
     * connection stops being read (and pipelined requests wait) until
     * the queue has drained. Default 256 KiB. */
    size_t write_high_water;

    /* Install SIGINT/SIGTERM handling (graceful stop) in
     * wisp_server_wait. Default 1. SIGPIPE is always ignored. */
    int handle_signals;

    /* Access log: to a file (appended, opened at listen time; "-" is
     * the process's standard error, used as it is: not reopened, not
     * truncated) and/or to a hook. Whole lines are written at once.
     * In a build without it (WISP_HAVE_ACCESS_LOG 0, -Daccess_log=false)
     * any format but WISP_ACCESS_LOG_NONE makes wisp_server_create fail
     * with errno ENOTSUP. */
    wisp_access_log_format_t access_log_format;
    const char *access_log_path;
    wisp_access_log_hook access_log_hook;
    void *access_log_arg;

    /* Value of the Server header; NULL: "wisp"; "" leaves it out. */
    const char *server_name;

    /* Kernel backend of the server's loops (wisp_loop_backend_t in
     * loop.h). Default (0): the environment's WISP_BACKEND, else epoll.
     * io_uring falls back to epoll, with one warning, where the kernel
     * refuses it. */
    wisp_loop_backend_t backend;

    /* 1: run inside the application's own event loop (GLib, libuv, its
     * own poll/epoll loop) instead of threads of wisp's: `threads` must
     * be 1 (wisp_server_listen fails with -EINVAL otherwise),
     * wisp_server_start starts no thread, and the application drives
     * the server with wisp_server_fd / wisp_server_step /
     * wisp_server_timeout (below) from one thread, which is then the
     * loop's owner: route handlers run there, inside wisp_server_step.
     * `handle_signals` is ignored: the application's signals are its
     * own (call wisp_server_stop from its handler). The loop is on
     * epoll whatever `backend` says. Default 0. */
    int embedded;

    /* PROXY protocol (haproxy's, versions 1 and 2, both recognised) on
     * the TCP listener, for a server behind a load balancer; the Unix
     * listener never reads one. WISP_PROXY_OFF (default): not read, and
     * a header is an ordinary (malformed) request. WISP_PROXY_REQUIRED:
     * connections from sources outside `proxy_trusted` are closed at
     * accept; the others must start with a header. WISP_PROXY_OPTIONAL:
     * a trusted source may send a header; any other connection that
     * starts with one is closed, without one it is served as itself.
     * The address in the header becomes the connection's peer
     * (wisp_req_peer, the access log, anything keyed on the peer); v1
     * UNKNOWN and v2 LOCAL keep the real one. A malformed, truncated or
     * over-long header (version 2 with its TLVs over 4096 bytes) or one
     * not complete within `proxy_timeout_ms` closes the connection with
     * no answer. */
    int proxy_protocol;
    /* Sources allowed to send a header: IPv4/IPv6 addresses and CIDR
     * networks separated by commas or blanks ("10.0.0.0/8, ::1").
     * Required (non-empty) when proxy_protocol is on; copied. */
    const char *proxy_trusted;
    uint32_t proxy_timeout_ms;        /* default 5000; 0: 5000 */

    /* Proxies trusted to report the client in X-Forwarded-For and
     * Forwarded (RFC 7239), same syntax as proxy_trusted. NULL (default):
     * those headers are never believed. See wisp_req_client_addr. */
    const char *trusted_proxies;
} wisp_server_config_t;

enum { WISP_PROXY_OFF = 0, WISP_PROXY_REQUIRED = 1,
       WISP_PROXY_OPTIONAL = 2 };

/* Fill `cfg` with the defaults documented above. */
WISP_API void wisp_server_config_init(wisp_server_config_t *cfg);

/* Create a server. `cfg` is copied (strings too); NULL uses the defaults.
 * Returns NULL with errno EINVAL (max_headers 0, max_header_bytes under
 * 64 or over 16 MiB, max_request_line_bytes under 16, backlog negative,
 * write_high_water 0, proxy_protocol unknown or on without a
 * proxy_trusted list, a malformed proxy_trusted or trusted_proxies
 * entry), ENOTSUP (an access log asked of a build without
 * one, see access_log_format) or ENOMEM. */
WISP_API wisp_server_t *wisp_server_create(const wisp_server_config_t *cfg);

typedef struct wisp_route_opts {
    /* Largest accepted body; 0 takes the server's max_body_bytes. A body
     * declared larger gets 413 before it is read (and before any
     * 100 Continue); a chunked body that grows past it gets 413 and a
     * close. */
    uint64_t max_body_bytes;
    /* Call the handler as soon as the head is parsed and deliver the body
     * through wisp_req_on_body instead of buffering it. */
    int stream_body;
    /* The route's own middleware (wisp/middleware.h), run after the
     * global and group ones, in array order: `mw_count` entries (at most
     * WISP_MW_MAX_ROUTE; more: -ENOSPC), copied. */
    const wisp_mw_t *mw;
    uint32_t mw_count;
} wisp_route_opts_t;

/* Add a route. `pattern` starts with '/'; segments ":name" match one
 * non-empty segment, a final "*name" matches the rest of the path (maybe
 * empty). Static segments win over parameters, parameters over
 * wildcards. WISP_METHOD_ANY matches every method that has no route of
 * its own; a GET route also answers HEAD. Unmatched paths get 404;
 * matched paths with no route for the method get 405 with Allow.
 * `opts` may be NULL. `pattern` is copied.
 * Thread: the configuring thread, before wisp_server_listen.
 * Returns 0, -EINVAL (bad pattern, conflicting parameter names, an
 * opts->mw entry without a hook, mw NULL with mw_count > 0), -ENOSPC
 * (mw_count over WISP_MW_MAX_ROUTE), -EEXIST (same method and pattern
 * twice), -ENOMEM, WISP_ESTATE (after listen). */
WISP_API int wisp_server_route(wisp_server_t *srv, wisp_method_t method,
                               const char *pattern, wisp_handler handler,
                               void *arg, const wisp_route_opts_t *opts);

typedef struct wisp_static_opts {
    const char *index;     /* file served for a directory; default
                              "index.html"; "" disables */
    uint32_t max_age_s;    /* Cache-Control max-age; 0: no header */
    /* Serve "NAME.br" or "NAME.gz" next to NAME when they exist, are
     * regular files and the request's Accept-Encoding allows br / gzip
     * (the better weighted first, br on a tie), with Content-Encoding and
     * NAME's Content-Type; every answer of the route then carries Vary:
     * Accept-Encoding. NAME itself must exist. wisp compresses nothing:
     * make the siblings when you deploy (gzip -k, brotli -k). */
    int precompressed;
    /* The pool whose threads open and stat the files (a cold disk must
     * not block a loop); it must outlive the server. NULL: the server's
     * own, made with the first static route that needs it (up to 2
     * threads, none while idle, 1024 queued opens; over that: 503). */
    wisp_pool_t *pool;
} wisp_static_opts_t;

#if WISP_HAVE_STATIC_FILES /* absent with -Dstatic_files=false (wisp/features.h) */
/* Serve the files under directory `root` at `prefix` (e.g. "/static"):
 * GET and HEAD, Content-Type from the extension, Last-Modified with
 * If-Modified-Since (304), an ETag from size and modification time with
 * If-None-Match (304 by the weak comparison; when present it decides
 * and If-Modified-Since is ignored, RFC 9110 §13.2.2; a malformed one
 * matches nothing), a single byte Range (206/416), precompressed
 * siblings (opts->precompressed), and paths that would leave `root`
 * refused with 403. `root` and `opts` are copied.
 * Returns as wisp_server_route, or -ENOENT when `root` is not a
 * directory. */
WISP_API int wisp_server_static(wisp_server_t *srv, const char *prefix,
                                const char *root,
                                const wisp_static_opts_t *opts);
#endif

/* Bind the listeners and create the loops. Returns 0, or a negative errno
 * from socket/bind/listen: -EADDRINUSE when anything already listens on
 * the address (another process, another server of this process), unless
 * reuse_port_shared is set and the holder's listeners share too; or
 * WISP_ESTATE when called twice. */
WISP_API int wisp_server_listen(wisp_server_t *srv);

/* The bound TCP port (after listen), or 0. */
WISP_API uint16_t wisp_server_port(const wisp_server_t *srv);
/* The number of I/O loops (after listen). */
WISP_API unsigned wisp_server_threads(const wisp_server_t *srv);

/* Start the I/O loop threads. Connections are accepted once this returns.
 * Returns 0, -EAGAIN (no thread could be created), WISP_ESTATE. */
WISP_API int wisp_server_start(wisp_server_t *srv);

/* Run the main loop on the calling thread until the server has stopped
 * (wisp_server_stop, or SIGINT/SIGTERM when handle_signals is set) and
 * every I/O thread has been joined. Returns 0 or WISP_ESTATE. */
WISP_API int wisp_server_wait(wisp_server_t *srv);

/* listen + start + wait. */
WISP_API int wisp_server_run(wisp_server_t *srv);

/* Begin a graceful stop: every loop accepts what is already queued on its
 * listener, then closes it; idle connections are closed; requests in
 * flight finish (their responses carry Connection: close); after
 * shutdown_timeout_ms whatever remains is closed. Returns at once.
 * Thread: any (not async-signal-safe: let handle_signals deal with
 * SIGINT/SIGTERM). Calling it twice is harmless. */
WISP_API void wisp_server_stop(wisp_server_t *srv);

/* A hook run when a graceful stop begins (wisp_server_stop, a stop
 * signal, or the server stopping itself), so that an application can stop
 * producing work before wisp starts closing connections, without a
 * signal thread of its own.
 *
 * `cb(srv, NULL, arg)` runs first, once, on the thread running
 * wisp_server_wait (the main loop), before any I/O loop learns of the
 * stop: the place to stop feeding the loops (e.g. tell publishers to
 * stop and wait for those in flight). Then `cb(srv, loop, arg)` runs on
 * every I/O loop, on that loop's thread, before the loop closes its
 * listener and its idle connections: connections and WebSocket sessions
 * are all still open (e.g. send a last message; post no work to other
 * loops, which may be further along). The per-loop calls run at the
 * same time, each on its own thread: state they share (counters, a list
 * of all sessions) needs atomics or a lock; per-loop data
 * (wisp_loop_get_data) needs neither. A callback may call
 * wisp_server_stop (no effect) and any function allowed on its loop; it
 * must not block.
 *
 * One hook per server: a second call replaces the first; cb NULL
 * removes it. Thread: the configuring thread, before wisp_server_start.
 * Returns 0, or WISP_ESTATE after wisp_server_start. */
typedef void (*wisp_server_stop_cb)(wisp_server_t *srv, wisp_loop_t *loop,
                                    void *arg);
WISP_API int wisp_server_on_stop(wisp_server_t *srv, wisp_server_stop_cb cb,
                                 void *arg);

/* Nonzero once a stop has begun (wisp_server_stop was called, or SIGINT
 * or SIGTERM arrived with handle_signals set): from then on the server
 * is draining, before its listeners close and while requests in flight
 * finish. Use it to fail readiness checks (wisp_server_health_route).
 * Thread: any. */
WISP_API int wisp_server_draining(const wisp_server_t *srv);

/* Embedded servers (cfg.embedded = 1), after wisp_server_start:
 *
 *   - watch wisp_server_fd() for readability, level-triggered;
 *   - call wisp_server_step() when it is readable, and when
 *     wisp_server_timeout() milliseconds have passed since the last
 *     step; after each step read wisp_server_timeout() again (0: step
 *     again before sleeping; -1: no deadline);
 *   - wisp_server_step() returns 1 once the server has stopped (after
 *     wisp_server_stop, the graceful drain included): stop watching the
 *     descriptor and call wisp_server_destroy().
 * Call wisp_server_step() once right after wisp_server_start(), before
 * the first poll. wisp_server_wait() on an embedded server does the
 * same in a poll(2) loop of its own until the server stops. See
 * docs/guide.md ("Inside another event loop") for GLib and libuv. */

/* The descriptor to watch. Returns it (stable until destroy; do not
 * read, write or close it), or WISP_ESTATE when the server is not
 * embedded or not listening. Thread: any. */
WISP_API int wisp_server_fd(const wisp_server_t *srv);

/* One non-blocking step: accepts, reads, handlers, timers, posted
 * completions. Returns 0 (running), 1 (stopped: destroy it; further
 * calls return 1), WISP_ESTATE (not embedded, or not started), -EBUSY
 * (called from inside a step, i.e. from a handler), or a negative errno
 * when the kernel backend failed (the server is then stopped).
 * Thread: the application loop's, always the same one. */
WISP_API int wisp_server_step(wisp_server_t *srv);

/* Milliseconds until a step is due even without activity on the
 * descriptor; 0: right away; -1: only the descriptor matters (or the
 * server is not running). Thread: the stepping thread, between steps. */
WISP_API int wisp_server_timeout(const wisp_server_t *srv);

/* Free a server that is stopped (or never started). NULL is a no-op. */
WISP_API void wisp_server_destroy(wisp_server_t *srv);

/* The I/O loop with index `i` (0..threads-1), e.g. to post work to it;
 * NULL when out of range or before listen. */
WISP_API wisp_loop_t *wisp_server_loop(wisp_server_t *srv, unsigned i);

#ifdef __cplusplus
}
#endif
#endif
