/* Internal: one request/response exchange and the HTTP state machine's
 * entry points. */
#ifndef WISP_HTTP_INT_H
#define WISP_HTTP_INT_H

#include <time.h>

#include "net/cidr.h"
#include "http/chunked.h"
#include "http/parse.h"
#include "http/router.h"
#include "net/conn.h"
#include "wisp/http.h"
#include "wisp/middleware.h"

typedef struct wisp__exchange wisp__exchange;

typedef struct wisp__route {
    struct wisp__route *next;     /* server's list, for freeing */
    wisp_handler handler;
    void *arg;
    uint64_t max_body;
    int stream_body;
    void *owned;                  /* freed with the route (static opts) */
    wisp_mw_t *mw;                /* the route's own middleware (owned) */
    uint32_t nmw;
} wisp__route;

/* What HTTP needs to know of the server's configuration: filled by the
 * server before the loops start, read-only after, shared by all loops. */
typedef struct wisp__http_conf {
    wisp__router *router;
    wisp__parse_limits limits;
    uint64_t max_body_bytes;
    uint32_t header_timeout_ms;
    uint32_t body_timeout_ms;
    uint32_t idle_timeout_ms;
    uint8_t alog_on;             /* an access log is wanted */
    uint8_t alog_combined;       /* combined format (else common) */
    int access_fd;               /* -1: none */
    void (*access_log_hook)(const char *line, size_t len, void *arg);
    void *access_log_arg;
    char server_hdr[80];         /* "Server: wisp\r\n" or "" */
    uint32_t server_hdr_len;
    struct wisp__cors *cors;     /* http/cors.c; NULL: no CORS anywhere */
    /* http/middleware.c: NULL when no middleware, CORS or access log is
     * registered (the one test the plain path pays). */
    struct wisp__mw_set *mw;
    wisp__cidrs trusted_proxies; /* X-Forwarded-For / Forwarded senders */
    wisp_error_cb on_error;      /* wisp_server_on_error; NULL: plain */
    void *on_error_arg;
} wisp__http_conf;

/* HTTP's per-loop state, kept in the loop's data under wisp__http_key. */
typedef struct wisp__http_loop {
    const wisp__http_conf *conf;
    wisp_loop_t *loop;
    wisp__net *net;
    int stopping;        /* the server is stopping (set by the server) */

    /* Free exchanges. */
    wisp__exchange *ex_free;
    uint32_t ex_free_len;

    /* Cached Date header and access-log time, refreshed once a second. */
    time_t date_sec;
    uint64_t date_next_ms; /* loop time of the next second's check */
    char date_hdr[48];   /* "Date: ...\r\n" */
    uint32_t date_len;
    uint32_t head200_len;
    char head200[160];   /* "HTTP/1.1 200 OK\r\n" Server Date, prebuilt */
    /* head200, "Content-Type: " ct_type "\r\nContent-Length: ", for the
     * last type of a plain 200 (response.c); ct_head_len 0: none yet, or
     * the Date changed. */
    uint32_t ct_head_len;
    uint32_t ct_type_len;
    char ct_type[64];
    char ct_head[256];
    char log_time[40];   /* "[24/Nov/2026:08:16:43 +0000]" */

    /* Access-log lines waiting for one write per iteration. */
    char *alog;
    size_t alog_len;
    int alog_flush_queued;
} wisp__http_loop;

extern int wisp__http_key;

/* HTTP's argument on every connection it owns is its per-loop state
 * (the listener installs it with the table). */
static inline wisp__http_loop *wisp__hl(const wisp_conn_t *c)
{
    return (wisp__http_loop *)c->harg;
}

/* Set HTTP up on `loop` (its per-loop state, freed with the loop).
 * Returns 0, -ENOMEM, or -ENOSPC (no loop key left). */
int wisp__http_loop_init(wisp_loop_t *loop, wisp__net *net,
                         const wisp__http_conf *conf);
/* HTTP's table, installed by the listener on every accepted connection
 * as a built-in protocol, with the loop's wisp__http_loop as argument;
 * its first deadline is the header timeout. */
extern const wisp__proto wisp__http_proto;

struct wisp_req {
    wisp__req_head rh;
    wisp__match match;
    const char *body;
    uint64_t body_len;
    wisp_body_data_cb on_data;
    wisp_body_end_cb on_end;
    void *body_arg;
    uint64_t body_seen;       /* streaming: bytes delivered */
};

enum {
    WISP__RS_HEAD_SENT = 1u << 0,
    WISP__RS_ENDED = 1u << 1,
    WISP__RS_CHUNKED = 1u << 2,   /* chunked framing on the wire */
    WISP__RS_HAS_CL = 1u << 3,    /* Content-Length declared */
    WISP__RS_HEAD_REQ = 1u << 4,  /* HEAD: no body on the wire */
    WISP__RS_UNTIL_CLOSE = 1u << 5, /* 1.0 streamed: close delimits */
    WISP__RS_ABORTED = 1u << 6,   /* client went away */
    WISP__RS_NOBODY = 1u << 7,    /* 1xx/204/304: no body allowed */
    WISP__RS_MW_AFTER = 1u << 8,  /* after-hooks still to run */
    WISP__RS_MW_IN_AFTER = 1u << 9, /* after-hooks running */
};

struct wisp_res {
    int status;
    uint32_t flags;
    uint64_t cl_left;         /* declared length still to send */
    uint64_t body_bytes;      /* for the access log */
    char *hdrs;               /* added fields, "Name: value\r\n"... */
    uint32_t hdrs_len;
    uint32_t hdrs_cap;
    wisp_res_cb on_abort;
    void *abort_arg;
    wisp_res_cb on_drain;
    void *drain_arg;
    char hdrs_inline[512];
};

/* A request in flight: owned by its connection, recycled through the
 * worker's free list. `conn` is NULL after the client went away. */
struct wisp__exchange {
    struct wisp_req req;      /* first: wisp_req_t* == exchange* */
    struct wisp_res res;
    wisp_conn_t *conn;
    wisp__http_loop *w;
    const wisp__route *route;
    uint8_t keep_alive;
    uint8_t state;            /* WISP__X_* */
    uint8_t in_handler;
    /* A terminal wisp_res_* call is writing: a close it causes leaves the
     * exchange to that call (close_in_call), which finishes it without
     * the abort callback. */
    uint8_t in_call;
    uint8_t close_in_call;
    uint8_t body_state;       /* WISP__B_* */
    uint8_t called;           /* the handler has been called */
    /* Middleware (only meaningful when conf->mw is set): bit b of
     * mw_mask set for each entry of the chain (0..23 the server's, 24..31
     * the route's), mw_pos the next bit to consider (bits below it are
     * "entered"), mw_wait a before-hook went asynchronous. */
    uint8_t mw_pos;
    uint8_t mw_wait;
    uint32_t mw_mask;
    uint64_t mw_t0_ns;
    wisp__chunked ch;
    uint64_t body_left;       /* CL body bytes still to come */
    char *own;                /* request bytes copied for an orphan */
    wisp__header headers[];   /* max_headers entries */
};

enum { WISP__X_ACTIVE = 0, WISP__X_DONE, WISP__X_ORPHAN };
enum { WISP__B_NONE = 0, WISP__B_CL, WISP__B_CHUNKED, WISP__B_DONE };

static inline wisp__exchange *wisp__ex_of_res(const wisp_res_t *res)
{
    return (wisp__exchange *)((char *)res - offsetof(wisp__exchange, res));
}
static inline wisp__exchange *wisp__ex_of_req(const wisp_req_t *req)
{
    return (wisp__exchange *)req;
}

/* HTTP's per-connection state (the connection's protocol words): pstate
 * is one of these, pflags HTTP's flags;
 * pword is the parser's scan state while IDLE or HEAD, and the exchange
 * in flight while BODY or PENDING (no state needs both). */
enum wisp__hstate {
    WISP__H_IDLE = 0,  /* keep-alive, nothing buffered */
    WISP__H_HEAD,      /* part of a request head has arrived */
    WISP__H_BODY,      /* buffering a request body */
    WISP__H_PENDING,   /* the handler has not finished its response */
};
enum {
    WISP__HF_SERVED = 1u << 0,  /* has completed at least one request */
    WISP__HF_STALLED = 1u << 1, /* stopped processing under backpressure */
};

static inline wisp__exchange *wisp__cx(const wisp_conn_t *c)
{
    return c->pstate >= WISP__H_BODY ? (wisp__exchange *)(uintptr_t)c->pword
                                     : NULL;
}
static inline void wisp__set_cx(wisp_conn_t *c, wisp__exchange *ex)
{
    c->pword = (uintptr_t)ex;
}

/* http/conn.c */
void wisp__ex_rebase(wisp__exchange *ex, const char *old, size_t old_cap,
                     char *nb);
void wisp__http_response_done(wisp__exchange *ex);
void wisp__http_send_error(wisp_conn_t *c, int status, int keep_open);
/* As wisp__http_send_error, for a parsed request `req` (may be NULL). */
void wisp__http_send_error_req(wisp_conn_t *c, int status, int keep_open,
                               wisp_req_t *req);
/* A hook that ran outside the processing loop (wisp_res_next) closed
 * the connection: settle the orphan as after a handler. */
void wisp__http_orphaned(wisp__exchange *ex);
void wisp__ex_free(wisp__http_loop *w, wisp__exchange *ex);
void wisp__http_upgraded(wisp_conn_t *c, wisp__exchange *ex,
                         const wisp_conn_handlers_t *h, void *arg);

/* http/response.c */
int wisp__status_code_for(int err);
const char *wisp__reason(int status);
int wisp__res_head(wisp__exchange *ex, int64_t content_length,
                   const char *content_type);

/* http/access_log.c; without it (-Daccess_log=false) alog_on is never
 * set and these calls compile to nothing. */
#if WISP_HAVE_ACCESS_LOG
void wisp__alog_request(wisp__exchange *ex);
/* The access log's done-hook (the built-in middleware of the server). */
void wisp__alog_done(wisp_req_t *req, wisp_res_t *res, void *arg);
void wisp__alog_flush(wisp__http_loop *w);
#else
static inline void wisp__alog_request(wisp__exchange *ex) { (void)ex; }
static inline void wisp__alog_flush(wisp__http_loop *w) { (void)w; }
static inline void wisp__alog_done(wisp_req_t *req, wisp_res_t *res,
                                   void *arg)
{
    (void)req, (void)res, (void)arg;
}
#endif

/* http/middleware.c. wisp__mw_begin computes the chain of `ex` and runs
 * its before-hooks (in_handler raised by the caller): 1 when the
 * handler is to run now. wisp__mw_after runs the after-hooks (the
 * caller saw WISP__RS_MW_AFTER), wisp__mw_done the done-hooks. */
__attribute__((cold)) int wisp__mw_begin(wisp__exchange *ex);
__attribute__((cold)) void wisp__mw_after(wisp__exchange *ex);
__attribute__((cold)) void wisp__mw_done(wisp__exchange *ex);
/* Register a server-level entry; `key` orders it (0 access log, 1 CORS,
 * 2 global, 3 + prefix length for groups). */
int wisp__mw_add(wisp__http_conf *conf, const char *prefix, size_t plen,
                 const wisp_mw_t *mw, uint32_t key);
/* An empty set, so that route-level middleware runs. */
int wisp__mw_ensure(wisp__http_conf *conf);
void wisp__mw_free(struct wisp__mw_set *set);
/* Send wisp's answer `status` (404, 405) on `res`, through the
 * application's error callback when there is one. */
void wisp__res_error(wisp_res_t *res, int status, const char *text);
/* Build the error answer for `status` into the connection's output (the
 * pre-routing errors). */
void wisp__error_out(wisp_conn_t *c, int status, int keep_open,
                     wisp_req_t *req);

/* http/date.c: rebuilds the cached Date header (and the 200 head and
 * the access log's time) when the loop's clock has entered a new second. */
void wisp__date_update(wisp__http_loop *w);

/* Called once per response: the common case, same second, is one
 * compare here and no call. */
static inline void wisp__date_refresh(wisp__http_loop *w)
{
    if (w->loop->now_ms < w->date_next_ms)
        return;
    wisp__date_update(w);
}

/* http/static.c */
const char *wisp__mime_type(const char *path, size_t len);

#endif
