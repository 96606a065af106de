/* wisp — HTTP/1.1 client on a wisp loop.
 *
 * A client belongs to one loop: every request it makes runs there, over
 * connections opened with wisp_conn_connect and kept alive in a pool per
 * upstream (scheme, host, port; or Unix socket path), at most
 * max_per_host at once (more requests wait in order). A request returns
 * a future (wisp/future.h) that resolves with a wisp_client_response_t.
 *
 * URLs: "http://host[:port]/path?query" (host a name, an IPv4 literal
 * or a bracketed IPv6 literal; names resolved with getaddrinfo on the
 * configured worker pool, cached for dns_ttl_ms) and
 * "http+unix://ENCODED-SOCKET-PATH/path?query", the socket path
 * percent-encoded ("http+unix://%2Frun%2Fapp.sock/v1/models"); its Host
 * header is "localhost". No TLS: see docs/guide.md for a local
 * TLS-terminating proxy.
 *
 * Responses are parsed as strictly as the server parses requests (the
 * same field rules and limits): a malformed status line or field, a
 * repeated Content-Length, both Content-Length and Transfer-Encoding, a
 * transfer coding other than chunked or a bad chunk fails the request
 * with WISP_EPARSE (WISP_ECODING, WISP_EVERSION, WISP_ETOOLONG_LINE,
 * WISP_ETOOLONG_HEAD, WISP_ETOOMANY_HEADERS for the cases their names
 * say) and closes that connection; the pool goes on serving others.
 *
 * Errors a request's future fails with: -ECONNREFUSED and the other
 * errors of wisp_conn_connect; -ETIMEDOUT (connect, header, body or
 * total timeout); -ECONNRESET (the upstream closed before the response
 * was complete); -ECANCELED (wisp_future_cancel, or the client was
 * destroyed); -EINVAL (bad URL, header or arguments: the future is
 * returned failed); WISP_EBODY_TOO_LARGE (a buffered body over
 * max_body_bytes); the parse errors above; a negative errno from name
 * resolution (-ENOENT: no address; -EAGAIN: temporary failure) or a
 * body source.
 *
 * Thread: every function runs on the client's loop (asserted in debug
 * builds); callbacks run there too, never inside a wisp_client_* call. */
#ifndef WISP_CLIENT_H
#define WISP_CLIENT_H

#include "common.h"
#include "conn.h"
#include "future.h"
#include "http.h"
#include "loop.h"
#include "pool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wisp_client wisp_client_t;

typedef struct wisp_client_config {
    /* Worker pool for name resolution (getaddrinfo blocks). NULL: only
     * IP literals and Unix sockets; a name fails with -EINVAL. */
    wisp_pool_t *pool;
    uint32_t max_per_host;        /* connections per upstream; default 8 */
    uint32_t max_idle_per_host;   /* idle kept; default max_per_host */
    uint32_t idle_timeout_ms;     /* idle connection closed; default 30000 */
    uint32_t connect_timeout_ms;  /* default 10000 */
    uint32_t header_timeout_ms;   /* request sent -> whole head; 30000 */
    uint32_t body_timeout_ms;     /* no body progress; default 30000 */
    uint32_t total_timeout_ms;    /* whole request; default 0 (none) */
    uint32_t max_header_bytes;    /* response head; default 65536 */
    uint32_t max_headers;         /* fields; default 100, at most 128 */
    uint64_t max_body_bytes;      /* buffered body; default 16 MiB */
    uint32_t dns_ttl_ms;          /* cache of resolved names; 30000 */
    uint32_t max_redirects;       /* 0 (default): redirects not followed */
} wisp_client_config_t;

/* Fill `cfg` with the defaults documented above. */
WISP_API void wisp_client_config_init(wisp_client_config_t *cfg);

/* Create a client on `loop` (`cfg` copied; NULL: the defaults). Returns
 * NULL with errno EINVAL (NULL loop, max_per_host 0, max_header_bytes
 * under 64, max_headers 0 or over 128) or ENOMEM. Thread: the loop's own, or any before it runs. */
WISP_API wisp_client_t *wisp_client_create(wisp_loop_t *loop,
                                           const wisp_client_config_t *cfg);

/* Close every connection and fail every request still pending with
 * -ECANCELED: their futures settle, and the end callbacks of streamed
 * bodies run with -ECANCELED, inside this call (the one exception to
 * "never inside a call"). The client's memory goes once its connections
 * are closed, at the end of the loop iteration at the latest; the
 * loop must still run or be destroyed after this. NULL is a no-op. */
WISP_API void wisp_client_destroy(wisp_client_t *cl);

typedef struct wisp_client_header {
    const char *name;
    const char *value;
} wisp_client_header_t;

/* Streamed request body: fill buf[0..cap) and return the byte count,
 * 0 at the end of the body, or a negative errno to fail the request.
 * Called on the loop when the connection can take more (never more than
 * ~256 KiB queued ahead). */
typedef ssize_t (*wisp_client_pull_cb)(char *buf, size_t cap, void *arg);

/* Streamed response body: `len` bytes of the decoded body (chunked
 * framing removed), valid during the call only. Return 0 to go on, or a
 * negative value to stop: the connection is closed and the end callback
 * gets -ECANCELED. */
typedef int (*wisp_client_data_cb)(const char *data, size_t len,
                                   void *arg);
/* A streamed body ended: 0 when complete, or the error that ended it
 * (-ETIMEDOUT, -ECONNRESET, WISP_EPARSE, -ECANCELED, ...). Runs once
 * for every streamed request whose future resolved, after the last data
 * call. */
typedef void (*wisp_client_end_cb)(int err, void *arg);

typedef struct wisp_client_response wisp_client_response_t;

/* A 101 Switching Protocols answer to a request with on_upgrade: the
 * connection `c` now belongs to the caller, who installs its own
 * protocol with wisp_conn_set_handlers inside this call (the client's
 * table stays until then; leaving it makes the connection close).
 * `rest` holds bytes the server sent after the head (the new protocol's
 * first bytes), valid during the call. The response stays valid during
 * the call; the future then resolves with it. */
typedef void (*wisp_client_upgrade_cb)(wisp_conn_t *c,
                                       const wisp_client_response_t *r,
                                       const char *rest, size_t rest_len,
                                       void *arg);

typedef struct wisp_client_request {
    const char *method;             /* NULL: "GET" */
    const char *url;
    const wisp_client_header_t *headers;  /* extra fields; Host,
                                             Content-Length and
                                             Transfer-Encoding are set by
                                             the client */
    size_t num_headers;
    /* Request body, one of: */
    const void *body;               /* from memory (copied) */
    size_t body_len;
    int body_fd;                    /* from a file: > 0 to use; the
                                       client owns it from the call and
                                       closes it; body_len bytes from
                                       body_offset */
    uint64_t body_offset;
    wisp_client_pull_cb body_pull;  /* streamed: body_len bytes, or
                                       chunked when body_chunked */
    int body_chunked;
    void *body_arg;
    /* Streamed response: set on_data to have the future resolve once the
     * head is in (no body in the response) and the body delivered to
     * on_data, then on_end. Unset: the body is buffered (max_body_bytes)
     * and the future resolves when it is complete. */
    wisp_client_data_cb on_data;
    wisp_client_end_cb on_end;
    void *data_arg;
    /* Ask for a protocol switch: see wisp_client_upgrade_cb. */
    wisp_client_upgrade_cb on_upgrade;
    void *upgrade_arg;
} wisp_client_request_t;

/* Send `rq` (copied: its strings and memory body may be freed after the
 * call; a body_pull, on_data and on_upgrade must stay callable and their
 * args valid until the future settles, on_end has run, or on_upgrade
 * has run). Returns a future owned by the client's loop with one
 * reference, the caller's; it resolves with a wisp_client_response_t
 * (free it with the future) or fails with one of the errors above.
 * wisp_future_cancel on it stops the request: queued, it is dropped;
 * connecting, the connection goes on into the pool; in flight, the
 * connection is closed. A body_fd is closed in every case. Returns NULL
 * with errno ENOMEM only; a bad request gives a failed future. */
WISP_API wisp_future_t *wisp_client_send(wisp_client_t *cl,
                                         const wisp_client_request_t *rq);

/* Shorthand: a GET of `url`, body buffered. */
WISP_API wisp_future_t *wisp_client_get(wisp_client_t *cl, const char *url);

/* The response a future resolved with (wisp_future_value cast). */
WISP_API int wisp_client_response_status(const wisp_client_response_t *r);
/* The first field named `name` (case-insensitive), NUL-terminated, or
 * NULL. */
WISP_API const char *
wisp_client_response_header(const wisp_client_response_t *r,
                            const char *name);
/* Field i (0 .. count-1) in the order received; NULL past the end. */
WISP_API size_t
wisp_client_response_header_count(const wisp_client_response_t *r);
WISP_API const wisp_client_header_t *
wisp_client_response_header_at(const wisp_client_response_t *r, size_t i);
/* The buffered body (NUL-terminated after `*len` bytes; "" when empty
 * or streamed). `len` may be NULL. */
WISP_API const char *wisp_client_response_body(const wisp_client_response_t *r,
                                               size_t *len);

typedef struct wisp_client_stats {
    uint64_t connections_opened;  /* connects that succeeded */
    uint64_t connections_reused;  /* requests sent on a pooled one */
    uint32_t connections_open;    /* now, idle included */
    uint32_t connections_idle;    /* now */
    uint32_t requests_queued;     /* now, waiting for a connection */
} wisp_client_stats_t;

WISP_API void wisp_client_stats(const wisp_client_t *cl,
                                wisp_client_stats_t *out);

#ifdef __cplusplus
}
#endif
#endif
