/* WebSocket sessions: the handshake (RFC 6455 §4.2), message assembly,
 * control frames and the close handshake (§5.5, §7), on a connection
 * taken over from HTTP (wisp_res_upgrade).
 *
 * Input: frames are handled only once whole in the buffer the connection
 * hands us (it keeps what we do not consume, bounded by max_frame), then
 * unmasked in place. An unfragmented message is delivered straight from
 * that buffer; fragments are collected in a per-session buffer that exists
 * only while a fragmented message is in flight (DESIGN rule 5). */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "loop/loop_int.h"
#include "http/http_int.h"
#include "net/conn.h"
#include "util/fixpool.h"
#include "util/utf8.h"
#include "wisp/shared.h"
#include "wisp/ws.h"
#include "ws/client.h"
#include "ws/frame.h"
#include "ws/handshake.h"

enum { S_OPEN = 0, S_CLOSING, S_CLOSED };

/* What a session needs only while a message is arriving in pieces or the
 * peer's close reason is being kept: allocated then, freed after. */
typedef struct ws_ext {
    wisp__utf8 utf8;         /* text being checked across pieces */
    uint32_t partial;        /* payload bytes of the frame now arriving
                                already unmasked (and UTF-8 checked) */
    char *msg;               /* fragments so far */
    size_t msg_len;
    size_t msg_cap;
    uint8_t reason_len;
    char reason[123];        /* the peer's close reason */
} ws_ext;

/* An idle session is this and its connection (DESIGN rule 5): no
 * buffer, no timer of its own (the connection's deadline serves for ping,
 * idle and close timeouts). Taken from a per-loop pool. */
struct wisp_ws {
    wisp_conn_t *conn;
    const wisp_ws_handlers_t *h;
    const wisp_ws_opts_t *o;
    void *arg;
    ws_ext *x;               /* NULL while idle */
    uint16_t peer_code;      /* close code received, or 1006 */
    uint16_t idle_ticks;     /* timeouts in a row with no input */
    uint8_t state : 2;
    uint8_t in_callback : 1;
    uint8_t close_sent : 1;
    uint8_t in_op : 4;       /* opcode of the fragmented message arriving */
    uint8_t out_op;          /* opcode of the message being streamed out */
    uint8_t proto;           /* 1 + index of the chosen subprotocol */
    uint8_t client;          /* our end is the client: we mask */
};

static_assert(sizeof(struct wisp_ws) <= 48, "wisp_ws grew");

static const wisp_conn_handlers_t conn_handlers;
static const wisp_ws_opts_t default_opts = {
    .max_frame = 16u << 20,
    .max_message = 16u << 20,
    .max_send_queue = 4u << 20,
    .close_timeout_ms = 5000,
};

void wisp_ws_opts_init(wisp_ws_opts_t *o)
{
    *o = default_opts;
}

static ws_ext *ext(wisp_ws_t *ws)
{
    if (!ws->x) {
        ws->x = calloc(1, sizeof *ws->x);
        if (ws->x)
            wisp__utf8_init(&ws->x->utf8);
    }
    return ws->x;
}

/* Give the extension back once nothing in it is in use. */
static void ext_done(wisp_ws_t *ws)
{
    ws_ext *x = ws->x;
    if (x && !x->msg && !x->partial && !x->reason_len) {
        free(x);
        ws->x = NULL;
    }
}

/* WebSocket's per-loop state, in the loop's data under its own key:
 * the session pool, and the count of messages posted to the loop's
 * sessions from other threads that have not run yet. Created on the
 * loop's first upgrade; freed with the loop (after its queued posts were
 * dropped, which count down here). */
typedef struct ws_loop {
    wisp_loop_t *loop;
    wisp__fixpool pool;
    _Atomic uint32_t posted;
} ws_loop;

static int ws_key = -1;
static pthread_once_t ws_key_once = PTHREAD_ONCE_INIT;

static void ws_loop_free(void *arg)
{
    ws_loop *wl = arg;
    wisp__fixpool_destroy(&wl->pool); /* sessions went with their conns */
    free(wl);
}

static void ws_key_init(void)
{
    ws_key = wisp_loop_key_create(ws_loop_free);
}

static ws_loop *ws_loop_of(wisp_loop_t *loop)
{
    pthread_once(&ws_key_once, ws_key_init);
    if (ws_key < 0)
        return NULL;
    ws_loop *wl = wisp_loop_get_data(loop, ws_key);
    if (!wl) {
        wl = calloc(1, sizeof *wl);
        if (!wl)
            return NULL;
        wl->loop = loop;
        wisp__fixpool_init(&wl->pool, sizeof(struct wisp_ws), 64);
        atomic_init(&wl->posted, 0);
        wisp_loop_set_data(loop, ws_key, wl);
    }
    return wl;
}

static wisp__fixpool *ws_pool(wisp_conn_t *c)
{
    /* Exists: the session being released was taken from it. */
    return &((ws_loop *)wisp_loop_get_data(wisp_conn_loop(c), ws_key))->pool;
}

/* ------------------------------------------------------------ handshake */

/* 1 + the index of the first of ours the client offers, or 0. */
static uint8_t pick_subprotocol(wisp_str_t offered, const char *const *ours)
{
    if (!offered.ptr || !ours)
        return 0;
    for (size_t i = 0; ours[i] && i < 255; i++)
        if (wisp__ws_has_token(offered, ours[i]))
            return (uint8_t)(i + 1);
    return 0;
}

static int refuse(wisp_res_t *res, int status)
{
    if (status == 426)
        wisp_res_header(res, "Sec-WebSocket-Version", "13");
    wisp_res_send(res, status, "text/plain",
                  status == 426 ? "Upgrade Required\n" : "Bad Request\n",
                  status == 426 ? 17 : 12);
    return status == 426 ? -EPROTO : WISP_EPARSE;
}

int wisp_ws_upgrade(wisp_req_t *req, wisp_res_t *res,
                    const wisp_ws_handlers_t *h, const wisp_ws_opts_t *opts,
                    void *arg)
{
    if (!h || !h->on_message)
        return -EINVAL;
    wisp_str_t key;
    int status = wisp__ws_check_request(
        wisp_req_method(req), wisp_req_version_minor(req), req->rh.headers,
        req->rh.num_headers, &key);
    if (status)
        return refuse(res, status);
    char accept[WISP__WS_ACCEPT_LEN + 1];
    wisp__ws_accept_key(key.ptr, key.len, accept);

    wisp_conn_t *c = wisp__ex_of_res(res)->conn;
    ws_loop *wl = ws_loop_of(wisp_res_loop(res));
    wisp__fixpool *pool = wl ? &wl->pool : NULL;
    wisp_ws_t *ws = pool ? wisp__fixpool_get(pool) : NULL;
    if (!ws) {
        wisp_res_send(res, 500, NULL, NULL, 0);
        return -ENOMEM;
    }
    memset(ws, 0, sizeof *ws);
    ws->o = opts ? opts : &default_opts;
    ws->h = h;
    ws->arg = arg;
    ws->peer_code = 1006;
    ws->proto = pick_subprotocol(
        wisp_req_header(req, "sec-websocket-protocol"), ws->o->subprotocols);
    wisp_res_header(res, "Upgrade", "websocket");
    wisp_res_header(res, "Sec-WebSocket-Accept", accept);
    if (ws->proto)
        wisp_res_header(res, "Sec-WebSocket-Protocol",
                        ws->o->subprotocols[ws->proto - 1]);
    int r = wisp_res_upgrade(res, &conn_handlers, ws);
    if (r < 0) {
        wisp__fixpool_put(pool, ws);
        return r;
    }
    ws->conn = c;
    WISP__STAT_ADD(&c->net->stats, ws_opened, 1);
    uint32_t tick = ws->o->ping_interval_ms;
    if (!tick || (ws->o->idle_timeout_ms && ws->o->idle_timeout_ms < tick))
        tick = ws->o->idle_timeout_ms;
    if (tick)
        wisp_conn_set_idle_timeout(c, tick);
    if (ws->h->on_open)
        ws->h->on_open(ws, ws->arg);
    return 0;
}

/* ------------------------------------------------------------ output */

/* A client's frame (§5.3): the MASK bit, a fresh key, the payload
 * XORed with it. Small frames are masked in the cork; larger ones in a
 * copy. */
static int send_masked(wisp_conn_t *c, int fin, uint8_t opcode,
                       const void *data, size_t len)
{
    uint8_t key[4];
    wisp__ws_mask_key(key);
    char *p = len <= 4096 ? wisp__out_reserve(c, 14 + len) : NULL;
    if (p) {
        size_t hl = wisp__ws_encode_header((uint8_t *)p, fin, opcode, len);
        p[1] = (char)(p[1] | 0x80);
        memcpy(p + hl, key, 4);
        if (len) {
            memcpy(p + hl + 4, data, len);
            wisp__ws_unmask((uint8_t *)p + hl + 4, len, key, 0);
        }
        wisp__out_commit(c, hl + 4 + len);
        return 0;
    }
    uint8_t hdr[14];
    size_t hl = wisp__ws_encode_header(hdr, fin, opcode, len);
    hdr[1] |= 0x80;
    memcpy(hdr + hl, key, 4);
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, data, len);
    wisp__ws_unmask(copy, len, key, 0);
    int r = wisp__out(c, hdr, hl + 4) < 0 || wisp__out(c, copy, len) < 0
                ? WISP_ECLOSED : 0;
    free(copy);
    return r;
}

static int send_frame(wisp_ws_t *ws, int fin, uint8_t opcode,
                      const void *data, size_t len)
{
    wisp_conn_t *c = ws->conn;
    if (c->state != WISP__C_OPEN)
        return WISP_ECLOSED;
    if (ws->client)
        return send_masked(c, fin, opcode, data, len);
    /* Small frames: header and payload straight into the cork. */
    char *p = len <= 4096 ? wisp__out_reserve(c, 10 + len) : NULL;
    if (p) {
        size_t hl = wisp__ws_encode_header((uint8_t *)p, fin, opcode, len);
        if (len)
            memcpy(p + hl, data, len);
        wisp__out_commit(c, hl + len);
        return 0;
    }
    uint8_t hdr[10];
    size_t hl = wisp__ws_encode_header(hdr, fin, opcode, len);
    if (wisp__out(c, hdr, hl) < 0)
        return WISP_ECLOSED;
    if (len && wisp__out(c, data, len) < 0)
        return WISP_ECLOSED;
    return 0;
}

static uint32_t close_timeout_ms(const wisp_ws_t *ws)
{
    return ws->o->close_timeout_ms ? ws->o->close_timeout_ms : 5000;
}

static void send_close(wisp_ws_t *ws, int code, const char *reason,
                       size_t rlen)
{
    if (ws->close_sent)
        return;
    uint8_t p[125];
    size_t n = 0;
    if (code) {
        p[0] = (uint8_t)(code >> 8);
        p[1] = (uint8_t)code;
        n = 2;
        if (rlen > 123)
            rlen = 123;
        if (rlen)
            memcpy(p + 2, reason, rlen);
        n += rlen;
    }
    send_frame(ws, 1, WISP__WS_CLOSE, p, n);
    ws->close_sent = 1;
    if (ws->state == S_OPEN)
        ws->state = S_CLOSING;
    /* Wait for the peer's close, not forever. */
    if (ws->conn->state == WISP__C_OPEN)
        wisp_conn_set_timeout(ws->conn, close_timeout_ms(ws));
}

/* A protocol violation: send the close code and drop the connection once
 * the close frame is out (§7.1.7). Marks the session; on_data finishes. */
static void fail(wisp_ws_t *ws, int code)
{
    send_close(ws, code, NULL, 0);
    ws->state = S_CLOSED;
}

/* The connection's deadline passed: the close timeout, or one more tick
 * of a session with no input (ping, then idle timeout). */
static void on_timeout(wisp_conn_t *c, void *arg)
{
    wisp_ws_t *ws = arg;
    if (ws->state != S_OPEN) {
        wisp_conn_abort(c); /* the peer never answered our close */
        return;
    }
    const wisp_ws_opts_t *o = ws->o;
    uint32_t tick = o->ping_interval_ms;
    if (!tick || (o->idle_timeout_ms && o->idle_timeout_ms < tick))
        tick = o->idle_timeout_ms;
    if (ws->idle_ticks < UINT16_MAX)
        ws->idle_ticks++;
    if (o->idle_timeout_ms &&
        (uint64_t)ws->idle_ticks * tick >= o->idle_timeout_ms) {
        send_close(ws, 1001, "idle timeout", 12);
        return;
    }
    if (o->ping_interval_ms)
        send_frame(ws, 1, WISP__WS_PING, NULL, 0);
    wisp_conn_set_idle_timeout(c, tick);
}

static int over_queue(wisp_ws_t *ws)
{
    return ws->o->max_send_queue &&
           wisp_conn_buffered(ws->conn) > ws->o->max_send_queue;
}

/* 0 when a message may be queued now; otherwise what the send returns.
 * A consumer that does not read gets the configured policy: drop
 * (-ENOBUFS) or close 1008. Inside on_message the input loop finishes
 * that close (the session must outlive the callback). */
static int may_send(wisp_ws_t *ws)
{
    if (ws->state != S_OPEN)
        return WISP_ECLOSED;
    if (!over_queue(ws))
        return 0;
    if (ws->o->drop_when_full)
        return -ENOBUFS;
    send_close(ws, 1008, "slow consumer", 13);
    ws->state = S_CLOSED;
    if (!ws->in_callback)
        wisp_conn_close(ws->conn);
    return WISP_ECLOSED;
}

static uint8_t data_op(int binary)
{
    return binary ? WISP__WS_BINARY : WISP__WS_TEXT;
}

int wisp_ws_send(wisp_ws_t *ws, int binary, const void *data, size_t len)
{
    WISP__ASSERT_OWNER(wisp_conn_loop(ws->conn));
    if (ws->out_op)
        return ws->state == S_OPEN ? -EBUSY : WISP_ECLOSED;
    int r = may_send(ws);
    if (r < 0)
        return r;
    return send_frame(ws, 1, data_op(binary), data, len);
}

int wisp_ws_send_text(wisp_ws_t *ws, const char *text, size_t len)
{
    return wisp_ws_send(ws, 0, text, len);
}

int wisp_ws_send_ref(wisp_ws_t *ws, int binary, const void *data,
                     size_t len, wisp_free_cb done, void *arg)
{
    WISP__ASSERT_OWNER(wisp_conn_loop(ws->conn));
    int r = ws->out_op ? (ws->state == S_OPEN ? -EBUSY : WISP_ECLOSED)
                       : may_send(ws);
    if (r == 0 && ws->client) {
        /* The payload must be masked: it is copied, and let go now. */
        r = send_frame(ws, 1, data_op(binary), data, len);
        if (done)
            done(arg);
        return r;
    }
    if (r == 0) {
        uint8_t hdr[10];
        size_t hl = wisp__ws_encode_header(hdr, 1, data_op(binary), len);
        if (wisp__out(ws->conn, hdr, hl) < 0)
            r = WISP_ECLOSED;
    }
    if (r < 0) {
        if (done)
            done(arg);
        return r;
    }
    return wisp__out_ref(ws->conn, data, len, done, arg) < 0 ? WISP_ECLOSED
                                                            : 0;
}

int wisp_ws_send_fragment(wisp_ws_t *ws, int binary, const void *data,
                          size_t len, int fin)
{
    WISP__ASSERT_OWNER(wisp_conn_loop(ws->conn));
    int r = may_send(ws);
    if (r < 0)
        return r;
    uint8_t op = ws->out_op ? WISP__WS_CONT : data_op(binary);
    r = send_frame(ws, fin, op, data, len);
    if (r == 0)
        ws->out_op = fin ? 0 : data_op(binary);
    return r;
}

wisp_shared_t *wisp_ws_frame_shared(int binary, const void *data,
                                    size_t len)
{
    uint8_t hdr[10];
    size_t hl = wisp__ws_encode_header(hdr, 1, data_op(binary), len);
    char *buf = malloc(hl + len);
    if (!buf) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(buf, hdr, hl);
    if (len)
        memcpy(buf + hl, data, len);
    wisp_shared_t *f = wisp_shared_wrap(buf, hl + len, free, buf);
    if (!f)
        free(buf);
    return f;
}

int wisp_ws_send_shared(wisp_ws_t *ws, wisp_shared_t *frame)
{
    WISP__ASSERT_OWNER(wisp_conn_loop(ws->conn));
    if (ws->client)
        return -EOPNOTSUPP; /* a shared frame is encoded unmasked */
    if (ws->out_op)
        return ws->state == S_OPEN ? -EBUSY : WISP_ECLOSED;
    int r = may_send(ws);
    if (r < 0)
        return r;
    return wisp_conn_write_shared(ws->conn, frame);
}

int wisp_ws_ping(wisp_ws_t *ws, const void *data, size_t len)
{
    WISP__ASSERT_OWNER(wisp_conn_loop(ws->conn));
    if (len > 125)
        return -EMSGSIZE;
    if (ws->state != S_OPEN)
        return WISP_ECLOSED;
    return send_frame(ws, 1, WISP__WS_PING, data, len);
}

static int valid_close_code(int code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
           (code >= 3000 && code <= 4999);
}

int wisp_ws_close(wisp_ws_t *ws, int code, const char *reason)
{
    WISP__ASSERT_OWNER(wisp_conn_loop(ws->conn));
    size_t rl = reason ? strlen(reason) : 0;
    if (!valid_close_code(code) || rl > 123)
        return -EINVAL;
    if (ws->state != S_OPEN)
        return WISP_ECLOSED;
    send_close(ws, code, reason, rl);
    return 0;
}

size_t wisp_ws_buffered(const wisp_ws_t *ws)
{
    return wisp_conn_buffered(ws->conn);
}

const char *wisp_ws_subprotocol(const wisp_ws_t *ws)
{
    return ws->proto ? ws->o->subprotocols[ws->proto - 1] : NULL;
}

wisp_loop_t *wisp_ws_loop(const wisp_ws_t *ws)
{
    return wisp_conn_loop(ws->conn);
}

void *wisp_ws_arg(const wisp_ws_t *ws)
{
    return ws->arg;
}

void wisp_ws_set_arg(wisp_ws_t *ws, void *arg)
{
    ws->arg = arg;
}

/* ------------------------------------------------------------ any thread */

wisp_ws_handle_t wisp_ws_handle(const wisp_ws_t *ws)
{
    WISP__ASSERT_OWNER(wisp_conn_loop(ws->conn));
    wisp_ws_handle_t hd = {ws->conn,
                           wisp_loop_get_data(wisp_conn_loop(ws->conn),
                                             ws_key),
                           ws->conn->gen};
    return hd;
}

enum { P_SEND, P_SHARED, P_CLOSE };

/* A message for a session from another thread: a task node of its own
 * (so a loop destroyed with it queued frees it through `drop`), bounded
 * per loop by the worker's count of posts in flight. */
typedef struct posted {
    wisp__task task;
    wisp_conn_t *conn;
    ws_loop *w;
    uint32_t gen;
    uint8_t kind;
    uint8_t binary;
    uint16_t code;
    wisp_shared_t *frame;
    size_t len;
    char data[];
} posted;

/* The session a handle names, if it is still there. Its loop's thread
 * only: connection slots outlive their connections (until the server is
 * destroyed), and the generation tells a reused slot apart. */
static wisp_ws_t *resolve(const posted *m)
{
    wisp_conn_t *c = m->conn;
    if (c->gen != m->gen || c->state != WISP__C_OPEN ||
        c->h != &conn_handlers)
        return NULL;
    return c->harg;
}

static void posted_free(void *arg)
{
    posted *m = arg;
    atomic_fetch_sub_explicit(&m->w->posted, 1, memory_order_relaxed);
    if (m->frame)
        wisp_shared_unref(m->frame);
    free(m);
}

static void posted_run(void *arg)
{
    posted *m = arg;
    wisp_ws_t *ws = resolve(m);
    if (ws) {
        switch (m->kind) {
        case P_SEND:
            if (!ws->out_op)
                wisp_ws_send(ws, m->binary, m->data, m->len);
            break;
        case P_SHARED:
            if (!ws->out_op)
                wisp_ws_send_shared(ws, m->frame);
            break;
        case P_CLOSE:
            wisp_ws_close(ws, m->code, m->len ? m->data : NULL);
            break;
        }
        if (m->conn->state == WISP__C_OPEN)
            wisp__flush(m->conn);
    }
    posted_free(m);
}

#define WS_POSTED_MAX 65536u

static posted *posted_new(wisp_ws_handle_t hd, size_t extra)
{
    ws_loop *w = hd.w;
    if (atomic_fetch_add_explicit(&w->posted, 1, memory_order_relaxed) >=
        WS_POSTED_MAX) {
        atomic_fetch_sub_explicit(&w->posted, 1, memory_order_relaxed);
        errno = EAGAIN;
        return NULL;
    }
    posted *m = malloc(sizeof *m + extra);
    if (!m) {
        atomic_fetch_sub_explicit(&w->posted, 1, memory_order_relaxed);
        errno = ENOMEM;
        return NULL;
    }
    memset(m, 0, sizeof *m);
    m->conn = hd.conn;
    m->w = w;
    m->gen = hd.gen;
    return m;
}

static int post(posted *m)
{
    if (atomic_load_explicit(&m->w->loop->closing, memory_order_acquire)) {
        posted_free(m);
        return -ECANCELED;
    }
    m->task.cb = posted_run;
    m->task.arg = m;
    m->task.drop = posted_free;
    wisp__loop_post_node(m->w->loop, &m->task);
    return 0;
}

int wisp_ws_post(wisp_ws_handle_t hd, int binary, const void *data,
                 size_t len)
{
    if (!hd.conn)
        return -EINVAL;
    posted *m = posted_new(hd, len);
    if (!m)
        return -errno;
    m->kind = P_SEND;
    m->binary = binary != 0;
    m->len = len;
    if (len)
        memcpy(m->data, data, len);
    return post(m);
}

int wisp_ws_post_shared(wisp_ws_handle_t hd, wisp_shared_t *frame)
{
    if (!hd.conn || !frame)
        return -EINVAL;
    posted *m = posted_new(hd, 0);
    if (!m)
        return -errno;
    m->kind = P_SHARED;
    wisp_shared_ref(frame);
    m->frame = frame;
    return post(m);
}

int wisp_ws_post_close(wisp_ws_handle_t hd, int code, const char *reason)
{
    size_t rl = reason ? strlen(reason) : 0;
    if (!hd.conn || !valid_close_code(code) || rl > 123)
        return -EINVAL;
    posted *m = posted_new(hd, rl + 1);
    if (!m)
        return -errno;
    m->kind = P_CLOSE;
    m->code = (uint16_t)code;
    m->len = rl;
    memcpy(m->data, reason ? reason : "", rl + 1);
    return post(m);
}

/* ------------------------------------------------------------ input */

static int msg_append(wisp_ws_t *ws, const uint8_t *p, size_t n)
{
    ws_ext *x = ext(ws);
    if (!x)
        return -ENOMEM;
    if (x->msg_len + n > ws->o->max_message)
        return -EMSGSIZE;
    if (!x->msg || x->msg_len + n > x->msg_cap) {
        size_t cap = x->msg_cap ? x->msg_cap : 4096;
        while (cap < x->msg_len + n)
            cap *= 2;
        char *m = realloc(x->msg, cap);
        if (!m)
            return -ENOMEM;
        x->msg = m;
        x->msg_cap = cap;
    }
    if (n)
        memcpy(x->msg + x->msg_len, p, n);
    x->msg_len += n;
    return 0;
}

static void deliver(wisp_ws_t *ws, int binary, const void *p, size_t n)
{
    ws->in_callback = 1;
    ws->h->on_message(ws, binary, p, n, ws->arg);
    ws->in_callback = 0;
}

static void on_close_frame(wisp_ws_t *ws, const uint8_t *p, size_t n)
{
    int code = 1005; /* no status received */
    if (n == 1) {
        fail(ws, 1002);
        return;
    }
    if (n >= 2) {
        code = (p[0] << 8) | p[1];
        if (!valid_close_code(code)) {
            fail(ws, 1002);
            return;
        }
        wisp__utf8 u;
        wisp__utf8_init(&u);
        if (wisp__utf8_feed(&u, p + 2, n - 2) != WISP__UTF8_OK ||
            !wisp__utf8_complete(&u)) {
            fail(ws, 1007);
            return;
        }
        if (n > 2 && ext(ws)) {
            ws->x->reason_len = (uint8_t)(n - 2);
            memcpy(ws->x->reason, p + 2, n - 2);
        }
    }
    ws->peer_code = (uint16_t)code;
    /* Answer with the same code (§5.5.1), then close. */
    send_close(ws, code == 1005 ? 1000 : code, NULL, 0);
    ws->state = S_CLOSED;
}

/* One whole frame, already unmasked; `done` bytes of its payload were
 * checked while it was arriving. */
static void on_frame(wisp_ws_t *ws, const wisp__ws_header *fh, uint8_t *p,
                     size_t done)
{
    size_t n = (size_t)fh->len;
    switch (fh->opcode) {
    case WISP__WS_PING:
        if (ws->state == S_OPEN)
            send_frame(ws, 1, WISP__WS_PONG, p, n);
        return;
    case WISP__WS_PONG:
        return;
    case WISP__WS_CLOSE:
        on_close_frame(ws, p, n);
        return;
    case WISP__WS_TEXT:
    case WISP__WS_BINARY:
        if (ws->in_op) {
            fail(ws, 1002); /* a new message inside a fragmented one */
            return;
        }
        if (ws->state != S_OPEN)
            return; /* data after our close is ignored */
        if (n > ws->o->max_message) {
            fail(ws, 1009);
            return;
        }
        if (fh->opcode == WISP__WS_TEXT) {
            wisp__utf8 u, *up = ws->x ? &ws->x->utf8 : &u;
            if (!done)
                wisp__utf8_init(up);
            if (wisp__utf8_feed(up, p + done, n - done) != WISP__UTF8_OK ||
                (fh->fin && !wisp__utf8_complete(up))) {
                fail(ws, 1007);
                return;
            }
            if (!fh->fin && up == &u) {
                /* The state carries into the next fragment. */
                if (!ext(ws)) {
                    fail(ws, 1011);
                    return;
                }
                ws->x->utf8 = u;
            }
        }
        if (fh->fin) {
            deliver(ws, fh->opcode == WISP__WS_BINARY, p, n);
            return;
        }
        ws->in_op = fh->opcode;
        if (msg_append(ws, p, n) < 0)
            fail(ws, 1009);
        return;
    case WISP__WS_CONT:
        if (!ws->in_op) {
            fail(ws, 1002); /* nothing to continue */
            return;
        }
        if (ws->in_op == WISP__WS_TEXT &&
            (wisp__utf8_feed(&ws->x->utf8, p + done, n - done) !=
                 WISP__UTF8_OK ||
             (fh->fin && !wisp__utf8_complete(&ws->x->utf8)))) {
            fail(ws, 1007);
            return;
        }
        if (msg_append(ws, p, n) < 0) {
            fail(ws, 1009);
            return;
        }
        if (fh->fin) {
            int binary = ws->in_op == WISP__WS_BINARY;
            char *m = ws->x->msg;
            size_t ml = ws->x->msg_len;
            ws->x->msg = NULL;
            ws->x->msg_len = ws->x->msg_cap = 0;
            ws->in_op = 0;
            if (ws->state == S_OPEN)
                deliver(ws, binary, m, ml);
            free(m);
        }
        return;
    default:
        fail(ws, 1002);
        return;
    }
}

/* Part of a text frame has arrived: unmask and check the new bytes (they
 * stay in the connection's buffer, unmasked, and are not looked at again:
 * x->partial says how far this frame is done). */
static void check_partial(wisp_ws_t *ws, const wisp__ws_header *fh,
                          uint8_t *p, size_t avail)
{
    int text = fh->opcode == WISP__WS_TEXT ||
               (fh->opcode == WISP__WS_CONT && ws->in_op == WISP__WS_TEXT);
    if (!text || ws->state != S_OPEN ||
        (fh->opcode == WISP__WS_TEXT && ws->in_op))
        return;
    size_t done = ws->x ? ws->x->partial : 0;
    if (avail <= done)
        return;
    ws_ext *x = ext(ws);
    if (!x) {
        fail(ws, 1011);
        return;
    }
    if (fh->opcode == WISP__WS_TEXT && done == 0)
        wisp__utf8_init(&x->utf8);
    wisp__ws_unmask(p + done, avail - done, fh->mask, done);
    x->partial = (uint32_t)avail;
    if (wisp__utf8_feed(&x->utf8, p + done, avail - done) != WISP__UTF8_OK)
        fail(ws, 1007);
}

static size_t on_data(wisp_conn_t *c, const char *data, size_t len,
                      void *arg)
{
    wisp_ws_t *ws = arg;
    /* The connection's buffer is ours to unmask in place. */
    uint8_t *buf = (uint8_t *)(uintptr_t)data;
    size_t off = 0;
    ws->idle_ticks = 0;
    while (off < len && ws->state != S_CLOSED) {
        wisp__ws_header fh;
        ssize_t r = wisp__ws_parse_header_dir(buf + off, len - off,
                                              ws->o->max_frame, 0,
                                              ws->client, &fh);
        if (r == WISP__WS_EAGAIN)
            break;
        if (r == WISP__WS_ETOOBIG) {
            fail(ws, 1009);
            break;
        }
        if (r < 0) {
            fail(ws, 1002);
            break;
        }
        uint8_t *p = buf + off + r;
        size_t avail = len - off - (size_t)r;
        if (fh.len > avail) {
            /* Wait for the whole frame (bounded by max_frame), but check
             * the text that has arrived now, so invalid UTF-8 fails fast
             * instead of after the rest of a large frame. */
            check_partial(ws, &fh, p, avail);
            break;
        }
        size_t done = ws->x ? ws->x->partial : 0;
        wisp__ws_unmask(p + done, (size_t)fh.len - done, fh.mask, done);
        off += (size_t)r + (size_t)fh.len;
        on_frame(ws, &fh, p, done);
        if (ws->x) {
            ws->x->partial = 0;
            ext_done(ws);
        }
    }
    if (ws->state == S_CLOSED) {
        /* Close frame queued (ours or the answer to theirs): flush it and
         * close; on_close below runs and frees the session. */
        wisp_conn_close(c);
        return len;
    }
    if (over_queue(ws))
        wisp_conn_pause(c); /* backpressure: resumes in on_drain */
    return off;
}

static void on_drain(wisp_conn_t *c, void *arg)
{
    wisp_ws_t *ws = arg;
    wisp_conn_resume(c);
    if (ws->state == S_CLOSING) {
        /* Our close frame is out: from now on the peer has
         * close_timeout_ms to answer (a stalled write had the write
         * timeout standing in). */
        wisp_conn_set_timeout(c, close_timeout_ms(ws));
        return;
    }
    if (ws->state == S_OPEN && ws->h->on_drain)
        ws->h->on_drain(ws, ws->arg);
}

static void on_conn_close(wisp_conn_t *c, int reason, void *arg)
{
    wisp_ws_t *ws = arg;
    int code = ws->peer_code;
    if (code == 1006 && reason == WISP_ECLOSED)
        code = 1001; /* server going away */
    ws->state = S_CLOSED;
    WISP__STAT_ADD(&c->net->stats, ws_closed, 1);
    if (ws->h->on_close)
        ws->h->on_close(ws, code, ws->x ? ws->x->reason : "",
                        ws->x ? ws->x->reason_len : 0, ws->arg);
    if (ws->x) {
        free(ws->x->msg);
        free(ws->x);
        ws->x = NULL;
    }
    /* Second phase of the close: the connection closed during some call
     * that may still have been using the session (a send inside
     * on_message that failed, a close inside a timeout), and this runs
     * only afterwards, from the loop at the end of that iteration
     * (on_close is never called inside a call), so the slot can go back
     * now. Nothing to allocate, so nothing can fail here. */
    wisp__fixpool_put(ws_pool(c), ws);
}

/* Server stop: start the close handshake with 1001 (going away); the
 * stop deadline closes whatever has not answered by then. */
static void on_stop(wisp_conn_t *c, void *arg)
{
    wisp_ws_t *ws = arg;
    (void)c;
    if (ws->state == S_OPEN)
        send_close(ws, 1001, "server stopping", 15);
}

wisp_ws_t *wisp__ws_client_open(wisp_conn_t *c, const wisp_ws_handlers_t *h,
                                const wisp_ws_opts_t *opts, void *arg,
                                uint8_t proto)
{
    ws_loop *wl = ws_loop_of(wisp_conn_loop(c));
    wisp_ws_t *ws = wl ? wisp__fixpool_get(&wl->pool) : NULL;
    if (!ws)
        return NULL;
    memset(ws, 0, sizeof *ws);
    ws->o = opts ? opts : &default_opts;
    ws->h = h;
    ws->arg = arg;
    ws->peer_code = 1006;
    ws->proto = proto;
    ws->client = 1;
    ws->conn = c;
    wisp__conn_set_proto(c, &conn_handlers, ws, 0);
    WISP__STAT_ADD(&c->net->stats, ws_opened, 1);
    uint32_t tick = ws->o->ping_interval_ms;
    if (!tick || (ws->o->idle_timeout_ms && ws->o->idle_timeout_ms < tick))
        tick = ws->o->idle_timeout_ms;
    if (tick)
        wisp_conn_set_idle_timeout(c, tick);
    return ws;
}

size_t wisp__ws_client_data(wisp_conn_t *c, const char *data, size_t len,
                            wisp_ws_t *ws)
{
    return on_data(c, data, len, ws);
}

static const wisp_conn_handlers_t conn_handlers = {
    .on_data = on_data,
    .on_drain = on_drain,
    .on_close = on_conn_close,
    .on_stop = on_stop,
    .on_timeout = on_timeout,
};
