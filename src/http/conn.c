/* The HTTP/1.1 connection state machine.
 *
 *            bytes                head complete,           handler ended
 *   IDLE ───────────▶ HEAD ──────▶ body complete ──▶ handler ─────────────▶ IDLE
 *    ▲   (partial)      │           │   (partial body: BODY)   │ returned without
 *    │                  │ error     │                          │ ending: PENDING
 *    │                  ▼           ▼                          ▼
 *    │               error response + LINGER ─▶ CLOSED      PENDING ──end──▶ IDLE
 *    │                                                          │ (resume pipelined)
 *    └──────────── keep-alive ◀──────────────────────────────────┘
 *                                    wisp_res_upgrade: ─▶ UPGRADED
 *
 * Requests are parsed in place. While the handler runs, the request's
 * bytes live where they arrived (the loop's receive buffer, or the
 * connection's own buffer); only when a request must outlive the read
 * that carried it (a body still arriving, a handler answering later) are
 * its bytes moved into the connection's buffer ("pinned": the prefix
 * c->in[0..in_keep)), and every pointer into them is rebased. An idle
 * connection keeps no buffer at all.
 *
 * Responses leave strictly in order: while one is pending, later
 * pipelined requests stay unparsed in the buffer and reading stops. */
#include <pthread.h>
#include <string.h>

#include "http/http_int.h"

/* The connection's protocol words hold HTTP's state (http_int.h). */
static int taken_over(const wisp_conn_t *c)
{
    return c->h != &wisp__http_proto.h;
}

/* HTTP's deadline follows from its state: header (HEAD, and IDLE before
 * the first request), body (BODY), keep-alive (IDLE once served); none
 * while PENDING. */
static void http_deadline(wisp_conn_t *c, uint32_t ms)
{
    wisp__conn_deadline(c, ms, WISP__T_PROTO);
}

/* Read while HTTP can take requests; while a response is pending only
 * the peer's close is watched (pipelined requests wait their turn). */
static void read_policy(wisp_conn_t *c)
{
    wisp__conn_pause_read(c, c->pstate == WISP__H_PENDING);
}

static void http_resume(wisp_conn_t *c);

static void dispatch(wisp_conn_t *c, wisp__exchange *ex);
static void body_data(wisp__exchange *ex, const char *p, size_t n);
static int stream_body_end(wisp__exchange *ex, int status);
static void body_failed(wisp_conn_t *c, wisp__exchange *ex, int err);
static void finish_orphan(wisp__http_loop *w, wisp__exchange *ex);
static int closed_during(wisp_conn_t *c, wisp__exchange *ex);
static int body_feed(wisp_conn_t *c, wisp__exchange *ex, char *buf,
                     size_t len, size_t *used);

/* ------------------------------------------------------------ exchanges */

static wisp__exchange *ex_get(wisp__http_loop *w)
{
    wisp__exchange *ex = w->ex_free;
    if (ex) {
        w->ex_free = (wisp__exchange *)ex->conn;
        w->ex_free_len--;
    } else {
        ex = malloc(sizeof *ex +
                    w->conf->limits.max_headers * sizeof(wisp__header));
        if (!ex)
            return NULL;
        /* What stays true while the exchange is recycled on this loop
         * (wisp__ex_free puts the added-field buffer back inline). */
        ex->w = w;
        ex->req.rh.headers = ex->headers;
        ex->req.rh.max_headers = w->conf->limits.max_headers;
        ex->res.hdrs = ex->res.hdrs_inline;
        ex->res.hdrs_cap = sizeof ex->res.hdrs_inline;
    }
    ex->route = NULL;
    ex->state = WISP__X_ACTIVE;
    ex->in_handler = 0;
    ex->called = 0;
    ex->body_state = WISP__B_NONE;
    ex->own = NULL;
    ex->req.match.nparams = 0;
    ex->req.body = NULL;
    ex->req.body_len = 0;
    ex->req.on_data = NULL;
    ex->req.on_end = NULL;
    ex->req.body_seen = 0;
    ex->res.status = 200;
    ex->res.flags = 0;
    ex->res.body_bytes = 0;
    ex->res.hdrs_len = 0;
    ex->res.on_abort = NULL;
    ex->res.on_drain = NULL;
    ex->in_call = 0;
    ex->close_in_call = 0;
    return ex;
}

void wisp__ex_free(wisp__http_loop *w, wisp__exchange *ex)
{
    if (ex->res.hdrs != ex->res.hdrs_inline) {
        free(ex->res.hdrs);
        ex->res.hdrs = ex->res.hdrs_inline;
        ex->res.hdrs_cap = sizeof ex->res.hdrs_inline;
    }
    if (ex->own) {
        free(ex->own);
        ex->own = NULL;
    }
    if (w->ex_free_len < 256) {
        ex->conn = (wisp_conn_t *)w->ex_free;
        w->ex_free = ex;
        w->ex_free_len++;
    } else {
        free(ex);
    }
}

#define REBASE(p)                                                           \
    do {                                                                    \
        if ((p) && (const char *)(p) >= old &&                              \
            (const char *)(p) <= old + old_cap)                             \
            (p) = (void *)(nb + ((const char *)(p) - old));                 \
    } while (0)

void wisp__ex_rebase(wisp__exchange *ex, const char *old, size_t old_cap,
                     char *nb)
{
    wisp__req_head *rh = &ex->req.rh;
    REBASE(rh->target);
    REBASE(rh->path);
    REBASE(rh->query);
    REBASE(rh->host);
    for (uint32_t i = 0; i < rh->num_headers; i++) {
        REBASE(rh->headers[i].name);
        REBASE(rh->headers[i].value);
    }
    for (uint32_t i = 0; i < ex->req.match.nparams; i++)
        REBASE(ex->req.match.params[i].value);
    REBASE(ex->req.body);
}

/* ------------------------------------------------------------ buffers */

/* Leave the connection's buffer holding the pinned request bytes
 * [pin, pin + pin_len) followed by the unprocessed bytes [rest, end),
 * whether `buf` is the loop's receive buffer or c->in itself. */
static int settle(wisp_conn_t *c, char *buf, char *pin, size_t pin_len,
                  char *rest, char *end)
{
    size_t rest_len = (size_t)(end - rest);
    if (buf == c->in && c->in) {
        /* In place: pin and rest are inside c->in, pin first. */
        if (pin_len && pin != c->in) {
            memmove(c->in, pin, pin_len);
            if (wisp__cx(c))
                wisp__ex_rebase(wisp__cx(c), pin, pin_len, c->in);
        }
        if (rest_len && rest != c->in + pin_len)
            memmove(c->in + pin_len, rest, rest_len);
        c->in_keep = (uint32_t)pin_len;
        c->in_len = (uint32_t)(pin_len + rest_len);
        if (c->in_len == 0)
            wisp__in_release(c);
        return 0;
    }
    /* From the loop's buffer: c->in holds nothing unprocessed. */
    size_t need = pin_len + rest_len;
    if (!need)
        return 0;
    c->in_len = 0;
    if (wisp__in_reserve(c, need, NULL, NULL) < 0)
        return -ENOMEM;
    if (pin_len) {
        memcpy(c->in, pin, pin_len);
        if (wisp__cx(c))
            wisp__ex_rebase(wisp__cx(c), pin, pin_len, c->in);
    }
    if (rest_len)
        memcpy(c->in + pin_len, rest, rest_len);
    c->in_keep = (uint32_t)pin_len;
    c->in_len = (uint32_t)need;
    return 0;
}

/* The pinned request is over: keep only the unprocessed bytes. */
static void drop_pinned(wisp_conn_t *c)
{
    uint32_t keep = c->in_keep;
    c->in_keep = 0;
    if (!c->in)
        return;
    if (keep) {
        memmove(c->in, c->in + keep, c->in_len - keep);
        c->in_len -= keep;
    }
    if (!c->in_len)
        wisp__in_release(c);
}

/* ------------------------------------------------------------ responses */

void wisp__http_send_error(wisp_conn_t *c, int status, int keep_open)
{
    wisp__http_send_error_req(c, status, keep_open, NULL);
}

void wisp__http_send_error_req(wisp_conn_t *c, int status, int keep_open,
                               wisp_req_t *req)
{
    wisp__http_loop *w = wisp__hl(c);
    if (w->conf->on_error) {
        /* The application shapes the answer (http/error_reply.c). */
        wisp__error_out(c, status, keep_open, req);
        wisp__stat_status(&c->net->stats, status);
        if (!keep_open)
            wisp__conn_close_graceful(c);
        return;
    }
    const char *reason = wisp__reason(status);
    char buf[512];
    wisp__date_refresh(w);
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d %s\r\n%.*s%.*sContent-Type: text/plain\r\n"
                     "Content-Length: %zu\r\n%s\r\n%s\n",
                     status, reason, (int)w->conf->server_hdr_len,
                     w->conf->server_hdr, (int)w->date_len, w->date_hdr,
                     strlen(reason) + 1,
                     keep_open ? "" : "Connection: close\r\n", reason);
    if (n > 0 && (size_t)n < sizeof buf)
        wisp__out(c, buf, (size_t)n);
    wisp__stat_status(&c->net->stats, status);
    if (!keep_open)
        wisp__conn_close_graceful(c);
}

static void idle_deadline(wisp_conn_t *c)
{
    http_deadline(c, wisp__hl(c)->conf->idle_timeout_ms);
}

/* The response of `ex` is complete and the request is over. Returns 0 to
 * go on with pipelined requests, -1 when the connection closes. */
__attribute__((always_inline)) /* into process: no call per request */
static inline int complete(wisp_conn_t *c, wisp__exchange *ex)
{
    wisp__http_loop *w = wisp__hl(c);
    int keep = ex->keep_alive && !(ex->res.flags & WISP__RS_UNTIL_CLOSE) &&
               ex->body_state != WISP__B_CL &&
               ex->body_state != WISP__B_CHUNKED && !w->stopping;
    if (w->conf->mw) /* done-hooks, the access log among them */
        wisp__mw_done(ex);
    wisp__set_cx(c, NULL);
    wisp__ex_free(w, ex);
    c->pflags |= WISP__HF_SERVED;
    c->pstate = WISP__H_IDLE;
    if (!keep) {
        wisp__conn_close_graceful(c);
        return -1;
    }
    return 0;
}

void wisp__http_response_done(wisp__exchange *ex)
{
    ex->state = WISP__X_DONE;
    ex->in_call = 0;
    if (ex->in_handler)
        return; /* the processing loop completes it */
    wisp_conn_t *c = ex->conn;
    if (!c) {
        if (ex->close_in_call) {
            /* Closed by this very call: finished, so no abort callback
             * (a streamed request body still gets its end). */
            ex->close_in_call = 0;
            finish_orphan(ex->w, ex);
            return;
        }
        wisp__ex_free(ex->w, ex); /* orphan finished by the app */
        return;
    }
    /* An asynchronous response has ended: drop the pinned request, then
     * continue with pipelined requests at the end of this iteration. */
    if (complete(c, ex) < 0)
        return; /* also closes while a body is still arriving */
    drop_pinned(c);
    idle_deadline(c);
    wisp__conn_resume_later(c);
}

/* ------------------------------------------------------------ requests */

static int error_status(int err)
{
    return wisp__status_code_for(err);
}

static void not_found(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    if (wisp__ex_of_res(res)->w->conf->on_error)
        wisp__res_error(res, 404, "Not Found\n");
    else
        wisp_res_send(res, 404, "text/plain", "Not Found\n", 10);
}

static void not_allowed(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    char allow[128];
    size_t n = 0;
    uint32_t mask = req->match.allow_mask;
    for (int m = 0; m < WISP_METHOD_COUNT; m++) {
        if (!(mask & (1u << m)))
            continue;
        const char *name = wisp_method_name((wisp_method_t)m);
        size_t l = strlen(name);
        if (n)
            allow[n++] = ',', allow[n++] = ' ';
        memcpy(allow + n, name, l);
        n += l;
    }
    allow[n] = 0;
    wisp_res_header(res, "Allow", allow);
    wisp__res_error(res, 405, "Method Not Allowed\n");
}

static void options_star(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_header(res, "Allow",
                    "GET, HEAD, POST, PUT, DELETE, OPTIONS, PATCH");
    wisp_res_send(res, 204, NULL, NULL, 0);
}

static const wisp__route route_404 = {.handler = not_found};
static const wisp__route route_405 = {.handler = not_allowed};
static const wisp__route route_opts = {.handler = options_star};

int wisp_req_route_status(const wisp_req_t *req)
{
    const wisp__route *rt = wisp__ex_of_req(req)->route;
    return rt == &route_404 ? 404 : rt == &route_405 ? 405 : 0;
}

static const wisp__route *route_for(wisp__http_loop *w, wisp__exchange *ex)
{
    wisp__req_head *rh = &ex->req.rh;
    if (rh->flags & WISP__RH_ASTERISK)
        return &route_opts;
    int r = wisp__router_match(w->conf->router, rh->method, rh->path,
                               rh->path_len, &ex->req.match);
    if (r == 0)
        return ex->req.match.route;
    ex->req.match.nparams = 0;
    return r == -EPERM ? &route_405 : &route_404;
}

static void send_continue(wisp_conn_t *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    wisp__out(c, cont, sizeof cont - 1);
}

static void body_deadline(wisp_conn_t *c)
{
    http_deadline(c, wisp__hl(c)->conf->body_timeout_ms);
}

/* Handle the head just parsed into ex. `after`..`end` are the bytes that
 * follow it. Sets *used to the body bytes consumed. Returns 1 when the
 * request is ready for its handler (body complete), 0 when more body must
 * arrive (state BODY), -1 when an error response was sent. */
static int begin(wisp_conn_t *c, wisp__exchange *ex, char *after,
                 size_t avail, size_t *used)
{
    wisp__http_loop *w = wisp__hl(c);
    wisp__req_head *rh = &ex->req.rh;
    *used = 0;

    if (rh->flags & WISP__RH_PCT) {
        ssize_t n = wisp__pct_decode_path((char *)rh->path, rh->path_len);
        if (n < 0) {
            wisp__http_send_error(c, 400, 0);
            return -1;
        }
        rh->path_len = (uint32_t)n;
    }
    ex->keep_alive = (uint8_t)(rh->minor
                                   ? !(rh->flags & WISP__RH_CLOSE)
                                   : !!(rh->flags & WISP__RH_KEEPALIVE)) &&
                     !w->stopping;
    const wisp__route *rt = route_for(w, ex);
    ex->route = rt;
    uint64_t limit = rt->max_body ? rt->max_body : w->conf->max_body_bytes;

    if (rh->flags & WISP__RH_CHUNKED) {
        ex->body_state = WISP__B_CHUNKED;
        wisp__chunked_init(&ex->ch, w->conf->limits.max_head);
    } else if (rh->content_length > 0) {
        if ((uint64_t)rh->content_length > limit) {
            /* Refuse before reading (and before any 100 Continue). */
            wisp__http_send_error_req(c, 413, 0, &ex->req);
            return -1;
        }
        ex->body_state = WISP__B_CL;
        ex->body_left = (uint64_t)rh->content_length;
    } else {
        ex->body_state = WISP__B_DONE;
        ex->req.body = NULL;
        return 1;
    }
    if ((rh->flags & WISP__RH_CONTINUE) && rh->minor && avail == 0)
        send_continue(c);
    if (rt->stream_body) {
        ex->req.body = NULL;
        return 1; /* the handler runs first, the body streams after */
    }
    ex->req.body = after;
    int r = body_feed(c, ex, after, avail, used);
    if (r < 0) {
        wisp__http_send_error_req(c, r == WISP_EBODY_TOO_LARGE ? 413 : 400,
                                  0, &ex->req);
        return -1;
    }
    if (r == 0) {
        body_deadline(c);
        return 0;
    }
    return 1;
}

/* Take body bytes from buf[0..len). Buffered mode: the body stays in
 * place right after the head (chunked data is compacted in place).
 * Streaming mode: the bytes go to the handler's callback. Returns 1 when
 * the body is complete, 0 when more is needed, or an error code. *used
 * is the number of input bytes consumed; for buffered chunked bodies the
 * decoded bytes are at ex->req.body + body_len. */
static int body_feed(wisp_conn_t *c, wisp__exchange *ex, char *buf,
                     size_t len, size_t *used)
{
    const wisp__route *rt = ex->route;
    uint64_t limit = rt->max_body ? rt->max_body
                                  : wisp__hl(c)->conf->max_body_bytes;
    int stream = rt->stream_body;
    *used = 0;
    if (ex->body_state == WISP__B_CL) {
        size_t take = len < ex->body_left ? len : (size_t)ex->body_left;
        ex->body_left -= take;
        *used = take;
        if (stream) {
            body_data(ex, buf, take);
            ex->req.body_seen += take;
        } else {
            ex->req.body_len += take;
        }
        if (ex->body_left)
            return 0;
        ex->body_state = WISP__B_DONE;
        return 1;
    }
    if (ex->body_state != WISP__B_CHUNKED)
        return 1;
    size_t dlen = len;
    ssize_t r = wisp__chunked_decode(&ex->ch, buf, &dlen);
    if (r == WISP_EPARSE)
        return WISP_EPARSE;
    if (stream) {
        if (ex->req.body_seen + dlen > limit)
            return WISP_EBODY_TOO_LARGE;
        body_data(ex, buf, dlen);
        ex->req.body_seen += dlen;
    } else {
        if (ex->req.body_len + dlen > limit)
            return WISP_EBODY_TOO_LARGE;
        /* The decoded bytes sit at buf; the body must be contiguous, and
         * buf is exactly where the previous decoded bytes end. */
        ex->req.body_len += dlen;
    }
    if (r == -EAGAIN) {
        *used = len;  /* all consumed into the decoder */
        return 0;
    }
    /* Complete: r bytes of the next request sit at buf + dlen. */
    ex->body_state = WISP__B_DONE;
    *used = len - (size_t)r;
    if (r && dlen + (size_t)r <= len && dlen != len - (size_t)r) {
        /* Move the leftover so it directly follows what was consumed. */
        memmove(buf + (len - (size_t)r), buf + dlen, (size_t)r);
    }
    return 1;
}

static void upgraded_rest(wisp_conn_t *c, char *buf, char *p, char *end);

/* Call the route's handler. Returns 0 when the connection is still in
 * HTTP hands, -1 when it closed or was taken over during the call (then
 * the exchange has been dealt with). */
__attribute__((always_inline)) /* into process: no call per request */
static inline int run_handler(wisp_conn_t *c, wisp__exchange *ex)
{
    ex->in_handler = 1;
    ex->called = 1;
    /* Middleware (CORS and the access log among them): the one test the
     * plain path pays. */
    if (!ex->w->conf->mw || wisp__mw_begin(ex))
        ex->route->handler(&ex->req, &ex->res, ex->route->arg);
    ex->in_handler = 0;
    if (c->state == WISP__C_CLOSED) {
        finish_orphan(ex->w, ex);
        return -1;
    }
    if (taken_over(c)) {
        wisp__ex_free(ex->w, ex);
        return -1;
    }
    return 0;
}

/* Hand the bytes that followed an upgrade request to the new owner. */
static void upgraded_rest(wisp_conn_t *c, char *buf, char *p, char *end)
{
    size_t n = (size_t)(end - p);
    if (buf == c->in && c->in) {
        char *tmp = c->in;
        uint32_t cap = c->in_cap;
        c->in = NULL;
        c->in_len = c->in_cap = c->in_keep = 0;
        if (n)
            wisp__conn_deliver(c, p, n);
        wisp__inbuf_put(c->net, tmp, cap);
    } else if (n) {
        wisp__conn_deliver(c, p, n);
    }
}

/* Streaming bodies: the user's callbacks run with in_handler raised, so a
 * response finished from inside them is completed by the caller (never
 * freed under its feet). */
static void body_data(wisp__exchange *ex, const char *p, size_t n)
{
    if (!n || !ex->req.on_data)
        return;
    ex->in_handler++;
    ex->req.on_data(&ex->req, p, n, ex->req.body_arg);
    ex->in_handler--;
}

static int stream_body_end(wisp__exchange *ex, int status)
{
    if (!ex->req.on_end)
        return 0;
    wisp_body_end_cb cb = ex->req.on_end;
    ex->req.on_end = NULL;
    ex->req.on_data = NULL;
    ex->in_handler++;
    cb(&ex->req, status, ex->req.body_arg);
    ex->in_handler--;
    return 1;
}

/* A body could not be completed (too large, malformed, timed out): tell a
 * streaming handler, then answer unless it already did. After an error
 * from on_end the request belongs to wisp again. */
static void body_failed(wisp_conn_t *c, wisp__exchange *ex, int err)
{
    stream_body_end(ex, err);
    if (closed_during(c, ex))
        return;
    int answered = ex->state == WISP__X_DONE;
    wisp__set_cx(c, NULL);
    if (answered)
        wisp__conn_close_graceful(c); /* its answer, then close */
    else
        wisp__http_send_error_req(c, err == -ETIMEDOUT ? 408
                                     : err == WISP_EBODY_TOO_LARGE ? 413
                                     : 400,
                                  0, &ex->req);
    wisp__ex_free(ex->w, ex);
}

/* After a user callback: if the connection closed meanwhile, the exchange
 * was orphaned but not released (the callback was running); do it now. */
static int closed_during(wisp_conn_t *c, wisp__exchange *ex)
{
    if (c->state != WISP__C_CLOSED)
        return 0;
    if (!ex->conn)
        finish_orphan(ex->w, ex);
    return 1;
}

/* Process requests in buf[0..len), which is either the loop's receive
 * buffer or c->in (with nothing pinned). Leaves c->in holding whatever
 * must be kept. Returns 0 (so that on_data can end in it). */
static size_t process(wisp_conn_t *c, char *buf, size_t len)
{
    wisp__http_loop *w = wisp__hl(c);
    char *p = buf, *end = buf + len;
    while (p < end) {
        if (c->state != WISP__C_OPEN)
            return 0;
        if (c->flags & WISP__CF_PAUSED) {
            c->pflags |= WISP__HF_STALLED; /* on_drain goes on */
            break;
        }
        wisp__exchange *ex = ex_get(w);
        if (!ex) {
            wisp__conn_abort(c, -ENOMEM);
            return 0;
        }
        size_t scan = (size_t)c->pword;
        ssize_t r = wisp__parse_request(p, (size_t)(end - p), &scan,
                                        &ex->req.rh, &w->conf->limits);
        if (r == -EAGAIN) {
            wisp__ex_free(w, ex);
            c->pword = scan;
            if (c->pstate == WISP__H_IDLE) {
                c->pstate = WISP__H_HEAD;
                http_deadline(c, w->conf->header_timeout_ms);
            }
            break;
        }
        c->pword = 0;
        if (r < 0) {
            wisp__ex_free(w, ex);
            wisp__http_send_error(c, error_status((int)r), 0);
            return 0;
        }
        ex->conn = c;
        char *head = p;
        p += r;
        size_t used;
        int b = begin(c, ex, p, (size_t)(end - p), &used);
        if (b < 0) {
            wisp__ex_free(w, ex);
            return 0;
        }
        wisp__set_cx(c, ex);
        if (b == 0) {
            /* Body still arriving: pin head + body so far. */
            c->pstate = WISP__H_BODY;
            size_t pin = (size_t)(p - head) + (size_t)ex->req.body_len;
            if (settle(c, buf, head, pin, end, end) < 0)
                wisp__conn_abort(c, -ENOMEM);
            return 0;
        }
        p += used;
        c->pstate = WISP__H_PENDING;
        if (run_handler(c, ex) < 0) {
            if (c->state == WISP__C_OPEN && taken_over(c))
                upgraded_rest(c, buf, p, end);
            return 0;
        }
        if (ex->route->stream_body && ex->body_state != WISP__B_DONE) {
            /* Stream the body that already arrived, pin the head. */
            int br = body_feed(c, ex, p, (size_t)(end - p), &used);
            if (closed_during(c, ex))
                return 0;
            if (br < 0) {
                body_failed(c, ex, br);
                return 0;
            }
            p += used;
            if (br == 0) {
                if (ex->state == WISP__X_DONE) {
                    /* Answered before the body ended: close after. */
                    wisp__set_cx(c, NULL);
                    ex->body_state = WISP__B_CL;
                    complete(c, ex);
                    return 0;
                }
                c->pstate = WISP__H_BODY;
                body_deadline(c);
                if (settle(c, buf, head, (size_t)r, end, end) < 0)
                    wisp__conn_abort(c, -ENOMEM);
                return 0;
            }
            stream_body_end(ex, 0);
            if (closed_during(c, ex))
                return 0;
        } else if (ex->route->stream_body) {
            stream_body_end(ex, 0);
            if (closed_during(c, ex))
                return 0;
        }
        if (ex->state != WISP__X_DONE) {
            /* Answered later: pin this request, stop reading. */
            if (settle(c, buf, head, (size_t)(p - head), p, end) < 0) {
                wisp__conn_abort(c, -ENOMEM);
                return 0;
            }
            wisp__conn_deadline(c, 0, WISP__T_NONE);
            read_policy(c);
            return 0;
        }
        if (complete(c, ex) < 0)
            return 0;
        if (wisp__conn_backpressure(c)) {
            c->pflags |= WISP__HF_STALLED; /* on_drain goes on */
            break;
        }
    }
    if (c->state != WISP__C_OPEN)
        return 0;
    if (p == end) {
        if (c->pstate == WISP__H_IDLE)
            idle_deadline(c);
        if (buf == c->in)
            wisp__in_release(c);
        return 0;
    }
    if (settle(c, buf, NULL, 0, p, end) < 0)
        wisp__conn_abort(c, -ENOMEM);
    return 0;
}

/* More bytes for a request whose body is arriving (state BODY); the new
 * bytes are already appended to c->in after the pinned prefix. */
static void body_continue(wisp_conn_t *c)
{
    wisp__exchange *ex = wisp__cx(c);
    char *raw = c->in + c->in_keep;
    size_t raw_len = c->in_len - c->in_keep;
    size_t used;
    int stream = ex->route->stream_body;
    uint64_t before = ex->req.body_len;
    int r = body_feed(c, ex, raw, raw_len, &used);
    if (closed_during(c, ex))
        return;
    if (r < 0) {
        body_failed(c, ex, r);
        return;
    }
    if (stream) {
        /* Delivered: drop the raw bytes, keep the pinned head. */
        wisp__in_consume(c, used);
    } else {
        /* Buffered: decoded body bytes join the pinned prefix. */
        uint32_t grew = (uint32_t)(ex->req.body_len - before);
        uint32_t rest = (uint32_t)(raw_len - used);
        if (ex->body_state == WISP__B_CHUNKED || r == 1) {
            /* chunked: decoded bytes at raw, leftover moved to raw+used */
            if (rest && grew != used)
                memmove(raw + grew, raw + used, rest);
        }
        c->in_keep += grew;
        c->in_len = c->in_keep + rest;
    }
    if (r == 0) {
        body_deadline(c);
        return;
    }
    /* The body is complete. */
    if (stream) {
        stream_body_end(ex, 0);
        if (closed_during(c, ex))
            return;
        if (ex->state == WISP__X_DONE) {
            if (complete(c, ex) < 0)
                return;
            drop_pinned(c);
            http_resume(c);
            return;
        }
        c->pstate = WISP__H_PENDING;
        wisp__conn_deadline(c, 0, WISP__T_NONE);
        read_policy(c);
        return;
    }
    c->pstate = WISP__H_PENDING;
    wisp__conn_deadline(c, 0, WISP__T_NONE);
    ex->req.body = c->in + (c->in_keep - ex->req.body_len);
    dispatch(c, ex);
}

/* Run the handler of a request whose body was buffered across reads. */
static void dispatch(wisp_conn_t *c, wisp__exchange *ex)
{
    if (run_handler(c, ex) < 0) {
        if (c->state == WISP__C_OPEN && taken_over(c)) {
            char *buf = c->in;
            upgraded_rest(c, buf, buf ? buf + c->in_keep : NULL,
                          buf ? buf + c->in_len : NULL);
        }
        return;
    }
    if (ex->state != WISP__X_DONE) {
        read_policy(c);
        return;
    }
    if (complete(c, ex) < 0)
        return;
    drop_pinned(c);
    http_resume(c);
}

/* Bytes for a connection that has some buffered: append them. It stays
 * bounded: the parser fails a head past max_head, a body past its limit
 * fails in body_feed, and while a response is pending nothing is read. */
__attribute__((noinline)) /* keep http_on_data's common path small */
static size_t on_data_buffered(wisp_conn_t *c, const char *data,
                               size_t len)
{
    {
        char *old;
        uint32_t old_cap;
        if (wisp__in_reserve(c, len, &old, &old_cap) < 0) {
            wisp__conn_abort(c, -ENOMEM);
            return 0;
        }
        if (old) {
            /* A request in flight points into the old buffer. */
            if (wisp__cx(c))
                wisp__ex_rebase(wisp__cx(c), old, old_cap, c->in);
            wisp__inbuf_put(c->net, old, old_cap);
        }
        memcpy(c->in + c->in_len, data, len);
        c->in_len += (uint32_t)len;
        if (c->pstate == WISP__H_BODY) {
            body_continue(c);
            return 0;
        }
        if (c->pstate == WISP__H_PENDING || (c->flags & WISP__CF_PAUSED))
            return 0;
        return process(c, c->in, c->in_len);
    }
}

/* HTTP's on_data: every byte is HTTP's (a built-in protocol keeps its
 * own input buffer: a pinned request, then unprocessed bytes; the return
 * value is not looked at). The common case, nothing buffered, parses the
 * bytes where they arrived. */
static size_t http_on_data(wisp_conn_t *c, const char *data, size_t len,
                           void *arg)
{
    (void)arg;
    if (c->pstate == WISP__H_BODY || c->pstate == WISP__H_HEAD ||
        c->in_len > c->in_keep)
        return on_data_buffered(c, data, len);
    return process(c, (char *)data, len);
}

/* Go on with pipelined requests kept in the buffer. */
static void http_resume(wisp_conn_t *c)
{
    if (c->pstate != WISP__H_IDLE)
        return;
    if (c->in && c->in_len)
        process(c, c->in, c->in_len);
    if (c->state != WISP__C_OPEN || taken_over(c))
        return;
    if (c->pstate == WISP__H_IDLE && !c->in)
        idle_deadline(c);
    read_policy(c);
}

static void http_on_resume(wisp_conn_t *c, void *arg)
{
    (void)arg;
    http_resume(c);
}

/* Output drained (after every write that left nothing queued). */
static void http_on_drain(wisp_conn_t *c, void *arg)
{
    (void)arg;
    wisp__exchange *ex = wisp__cx(c);
    if (ex && ex->res.on_drain) {
        wisp_res_cb cb = ex->res.on_drain;
        ex->res.on_drain = NULL;
        cb(&ex->res, ex->res.drain_arg); /* may set it again */
        if (c->state != WISP__C_OPEN || taken_over(c))
            return;
    }
    if ((c->pflags & WISP__HF_STALLED) && !(c->flags & WISP__CF_PAUSED)) {
        /* Backpressure is over: go on with pipelined requests. */
        c->pflags &= ~WISP__HF_STALLED & 0xfu;
        if (c->pstate == WISP__H_IDLE) {
            http_resume(c);
            return;
        }
    }
    if (c->pstate == WISP__H_IDLE && c->timeout_kind == WISP__T_NONE)
        idle_deadline(c);
    else if (c->pstate == WISP__H_BODY && c->timeout_kind == WISP__T_NONE)
        body_deadline(c);
}

static void http_on_timeout(wisp_conn_t *c, void *arg)
{
    (void)arg;
    switch (c->pstate) {
    case WISP__H_IDLE:
    case WISP__H_HEAD:
        if (c->pstate == WISP__H_IDLE && (c->pflags & WISP__HF_SERVED))
            wisp__conn_abort(c, 0); /* keep-alive over */
        else if (c->in_len || c->pstate == WISP__H_HEAD)
            wisp__http_send_error(c, 408, 0); /* header timeout */
        else
            wisp__conn_abort(c, -ETIMEDOUT); /* never sent a byte */
        break;
    case WISP__H_BODY:
        if (wisp__cx(c))
            body_failed(c, wisp__cx(c), -ETIMEDOUT);
        else
            wisp__http_send_error(c, 408, 0);
        break;
    default:
        wisp__conn_abort(c, -ETIMEDOUT);
        break;
    }
}

/* Server stop: an idle keep-alive connection has nothing to lose; the
 * others finish their request (its response says Connection: close). */
static void http_on_stop(wisp_conn_t *c, void *arg)
{
    (void)arg;
    if (c->pstate == WISP__H_IDLE && !c->in_len && !c->wq_head &&
        (c->pflags & WISP__HF_SERVED))
        wisp__conn_abort(c, 0);
}

static void http_on_close(wisp_conn_t *c, int reason, void *arg);

const wisp__proto wisp__http_proto = {
    .h = {
        .on_data = http_on_data,
        .on_drain = http_on_drain,
        .on_close = http_on_close,
        .on_stop = http_on_stop,
        .on_timeout = http_on_timeout,
    },
    .on_resume = http_on_resume,
};

void wisp__http_orphaned(wisp__exchange *ex)
{
    finish_orphan(ex->w, ex);
}

static void finish_orphan(wisp__http_loop *w, wisp__exchange *ex)
{
    ex->res.flags |= WISP__RS_ABORTED;
    if (ex->state != WISP__X_DONE)
        ex->state = WISP__X_ORPHAN;
    /* A streaming handler learns of the end through on_end; after an
     * error there the request is wisp's again (no abort callback). */
    int ended = stream_body_end(ex, -ECANCELED);
    if (ex->state == WISP__X_DONE || !ex->called || ended) {
        /* Finished, never shown to the application, or given back. */
        wisp__ex_free(w, ex);
        return;
    }
    ex->state = WISP__X_ORPHAN;
    if (ex->res.on_abort) {
        wisp_res_cb cb = ex->res.on_abort;
        ex->res.on_abort = NULL;
        cb(&ex->res, ex->res.abort_arg);
        wisp__ex_free(w, ex);
    }
    /* Without an abort callback the application still owns the response
     * and frees it by finishing it (every call returns WISP_ECLOSED). */
}

/* Copy the bytes a request points into, so it survives its buffers. */
static void own_request(wisp__exchange *ex)
{
    wisp__req_head *rh = &ex->req.rh;
    const char *lo = rh->target, *hi = rh->target + rh->target_len;
    if (!lo)
        return;
    for (uint32_t i = 0; i < rh->num_headers; i++) {
        const char *e = rh->headers[i].value + rh->headers[i].value_len;
        if (e > hi)
            hi = e;
    }
    if (ex->req.body && ex->req.body + ex->req.body_len > hi &&
        ex->req.body >= lo)
        hi = ex->req.body + ex->req.body_len;
    size_t span = (size_t)(hi - lo);
    ex->own = malloc(span ? span : 1);
    if (!ex->own)
        return;
    memcpy(ex->own, lo, span);
    wisp__ex_rebase(ex, lo, span, ex->own);
}

/* The connection is closed (the transport calls a built-in protocol in
 * the call, before its buffers go): a request in flight is detached and
 * the application told. */
static void http_on_close(wisp_conn_t *c, int reason, void *arg)
{
    wisp__exchange *ex = wisp__cx(c);
    (void)reason;
    (void)arg;
    if (!ex)
        return;
    wisp__set_cx(c, NULL);
    ex->conn = NULL;
    ex->res.flags |= WISP__RS_ABORTED;
    if (ex->state != WISP__X_DONE)
        own_request(ex);
    if (ex->in_handler)
        return; /* the processing loop finishes it after the handler */
    if (ex->in_call)
        ex->close_in_call = 1; /* the terminal call finishes it */
    else
        finish_orphan(ex->w, ex);
}

/* wisp_res_upgrade succeeded: the exchange is over. */
void wisp__http_upgraded(wisp_conn_t *c, wisp__exchange *ex,
                         const wisp_conn_handlers_t *h, void *arg)
{
    int async = !ex->in_handler;
    wisp__http_loop *w = ex->w;
    /* From here on the connection is the new protocol's: its table
     * replaces HTTP's (its deadline and pause go with it). */
    wisp__conn_set_proto(c, h, arg, 0);
    ex->state = WISP__X_DONE;
    if (w->conf->mw)
        wisp__mw_done(ex);
    if (!ex->in_handler)
        wisp__ex_free(w, ex);
    else
        ex->conn = NULL; /* freed by finish_orphan after the handler */
    if (async) {
        /* Bytes that followed the request go to the new owner. */
        drop_pinned(c);
        if (c->in)
            upgraded_rest(c, c->in, c->in, c->in + c->in_len);
    }
}

/* ------------------------------------------------------------ per loop */

int wisp__http_key = -1;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void http_loop_free(void *arg)
{
    wisp__http_loop *w = arg;
    wisp__alog_flush(w);
    while (w->ex_free) {
        wisp__exchange *ex = w->ex_free;
        w->ex_free = (wisp__exchange *)ex->conn;
        free(ex);
    }
    free(w->alog);
    free(w);
}

static void key_init(void)
{
    wisp__http_key = wisp_loop_key_create(http_loop_free);
}

int wisp__http_loop_init(wisp_loop_t *loop, wisp__net *net,
                         const wisp__http_conf *conf)
{
    pthread_once(&key_once, key_init);
    if (wisp__http_key < 0)
        return -ENOSPC;
    wisp__http_loop *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->conf = conf;
    w->loop = loop;
    w->net = net;
    wisp__date_refresh(w);
    wisp_loop_set_data(loop, wisp__http_key, w);
    return 0;
}
