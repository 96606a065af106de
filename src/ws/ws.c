/* WebSocket sessions: the handshake (RFC 6455 §4.2), message assembly,
 * control frames and the close handshake (§5.5, §7), on a connection
 * taken over from HTTP (wisp_res_upgrade).
 *
 * Input: frames are handled only once whole in the buffer the connection
 * hands us (it keeps what we do not consume, bounded by max_frame), then
 * unmasked in place. An unfragmented message is delivered straight from
 * that buffer; fragments are collected in a per-session buffer that exists
 * only while a fragmented message is in flight (DESIGN rule 5). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loop/loop_int.h"
#include "http/http_int.h"
#include "net/conn.h"
#include "util/base64.h"
#include "util/sha1.h"
#include "util/utf8.h"
#include "wisp/shared.h"
#include "wisp/ws.h"
#include "ws/frame.h"

enum { S_OPEN = 0, S_CLOSING, S_CLOSED };

struct wisp_ws {
    wisp_conn_t *conn;
    const wisp_ws_handlers_t *h;
    void *arg;
    wisp_ws_opts_t o;
    const char *subprotocol;
    uint8_t state;
    uint8_t frag_opcode;     /* opcode of the message being assembled */
    uint8_t in_callback;
    uint8_t close_sent;
    wisp__utf8 utf8;
    uint64_t partial;        /* payload bytes of the frame now arriving
                                already unmasked and UTF-8 checked */
    char *msg;               /* fragments so far */
    size_t msg_len;
    size_t msg_cap;
    int peer_code;           /* close code received, or 1006 */
    char peer_reason[124];
    size_t peer_reason_len;
    wisp_timer_t timer;      /* close timeout or ping interval */
};

static const wisp_conn_handlers_t conn_handlers;
static void ping_tick(wisp_timer_t *t, void *arg);

void wisp_ws_opts_init(wisp_ws_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->max_frame = 16u << 20;
    o->max_message = 16u << 20;
    o->max_send_queue = 4u << 20;
    o->close_timeout_ms = 5000;
}

/* ------------------------------------------------------------ handshake */

/* Does the comma-separated header `h` contain `token` (case-insensitive)? */
static int has_token(wisp_str_t h, const char *token)
{
    size_t tl = strlen(token);
    const char *p = h.ptr, *end = h.ptr + h.len;
    while (p && p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0)
            return 1;
    }
    return 0;
}

static const char *pick_subprotocol(wisp_str_t offered,
                                    const char *const *ours)
{
    if (!offered.ptr || !ours)
        return NULL;
    for (size_t i = 0; ours[i]; i++)
        if (has_token(offered, ours[i]))
            return ours[i];
    return NULL;
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
    if (wisp_req_method(req) != WISP_METHOD_GET ||
        wisp_req_version_minor(req) < 1)
        return refuse(res, 400);
    wisp_str_t up = wisp_req_header(req, "upgrade");
    wisp_str_t conn = wisp_req_header(req, "connection");
    if (!up.ptr || !has_token(up, "websocket") || !conn.ptr ||
        !has_token(conn, "upgrade"))
        return refuse(res, 400);
    wisp_str_t ver = wisp_req_header(req, "sec-websocket-version");
    if (!ver.ptr || ver.len != 2 || memcmp(ver.ptr, "13", 2) != 0)
        return refuse(res, 426);
    wisp_str_t key = wisp_req_header(req, "sec-websocket-key");
    uint8_t raw[24];
    if (!key.ptr || key.len != 24 ||
        wisp__base64_decode(key.ptr, key.len, raw) != 16)
        return refuse(res, 400);

    /* Sec-WebSocket-Accept = base64(SHA-1(key + GUID)), §4.2.2. */
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    wisp__sha1 s;
    uint8_t digest[20];
    wisp__sha1_init(&s);
    wisp__sha1_update(&s, key.ptr, key.len);
    wisp__sha1_update(&s, guid, sizeof guid - 1);
    wisp__sha1_final(&s, digest);
    char accept[32];
    size_t al = wisp__base64_encode(digest, sizeof digest, accept);
    accept[al] = 0;

    wisp_ws_t *ws = calloc(1, sizeof *ws);
    if (!ws) {
        wisp_res_send(res, 500, NULL, NULL, 0);
        return -ENOMEM;
    }
    if (opts)
        ws->o = *opts;
    else
        wisp_ws_opts_init(&ws->o);
    ws->h = h;
    ws->arg = arg;
    ws->peer_code = 1006;
    ws->subprotocol = pick_subprotocol(
        wisp_req_header(req, "sec-websocket-protocol"), ws->o.subprotocols);
    wisp__utf8_init(&ws->utf8);
    wisp_res_header(res, "Upgrade", "websocket");
    wisp_res_header(res, "Sec-WebSocket-Accept", accept);
    if (ws->subprotocol)
        wisp_res_header(res, "Sec-WebSocket-Protocol", ws->subprotocol);
    wisp_conn_t *c = wisp__ex_of_res(res)->conn;
    int r = wisp_res_upgrade(res, &conn_handlers, ws);
    if (r < 0) {
        free(ws);
        return r;
    }
    ws->conn = c;
    wisp_timer_init(wisp_conn_loop(c), &ws->timer);
    if (ws->o.idle_timeout_ms)
        wisp_conn_set_idle_timeout(c, ws->o.idle_timeout_ms);
    if (ws->o.ping_interval_ms)
        wisp_timer_start(&ws->timer, ws->o.ping_interval_ms, ping_tick, ws);
    if (ws->h->on_open)
        ws->h->on_open(ws, ws->arg);
    return 0;
}

/* ------------------------------------------------------------ output */

static int send_frame(wisp_ws_t *ws, int fin, uint8_t opcode,
                      const void *data, size_t len)
{
    uint8_t hdr[10];
    size_t hl = wisp__ws_encode_header(hdr, fin, opcode, len);
    if (wisp_conn_write(ws->conn, hdr, hl) < 0)
        return WISP_ECLOSED;
    if (len && wisp_conn_write(ws->conn, data, len) < 0)
        return WISP_ECLOSED;
    return 0;
}

static void close_timeout(wisp_timer_t *t, void *arg)
{
    wisp_ws_t *ws = arg;
    (void)t;
    /* The peer never answered our close: drop the connection. */
    wisp_conn_abort(ws->conn);
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
    wisp_timer_start(&ws->timer, ws->o.close_timeout_ms ? ws->o.close_timeout_ms
                                                         : 5000,
                     close_timeout, ws);
}

/* A protocol violation: send the close code and drop the connection once
 * the close frame is out (§7.1.7). Marks the session; on_data finishes. */
static void fail(wisp_ws_t *ws, int code)
{
    send_close(ws, code, NULL, 0);
    ws->state = S_CLOSED;
}

static void ping_tick(wisp_timer_t *t, void *arg)
{
    wisp_ws_t *ws = arg;
    if (ws->state != S_OPEN)
        return;
    send_frame(ws, 1, WISP__WS_PING, NULL, 0);
    wisp_timer_start(t, ws->o.ping_interval_ms, ping_tick, ws);
}

static int over_queue(wisp_ws_t *ws)
{
    return ws->o.max_send_queue &&
           wisp_conn_buffered(ws->conn) > ws->o.max_send_queue;
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
    if (ws->o.drop_when_full)
        return -ENOBUFS;
    send_close(ws, 1008, "slow consumer", 13);
    ws->state = S_CLOSED;
    if (!ws->in_callback)
        wisp_conn_close(ws->conn);
    return WISP_ECLOSED;
}

int wisp_ws_send(wisp_ws_t *ws, int binary, const void *data, size_t len)
{
    WISP__ASSERT_OWNER(wisp_conn_loop(ws->conn));
    int r = may_send(ws);
    if (r < 0)
        return r;
    return send_frame(ws, 1, binary ? WISP__WS_BINARY : WISP__WS_TEXT, data,
                      len);
}

wisp_shared_t *wisp_ws_frame_shared(int binary, const void *data,
                                    size_t len)
{
    uint8_t hdr[10];
    size_t hl = wisp__ws_encode_header(hdr, 1, binary ? WISP__WS_BINARY
                                                      : WISP__WS_TEXT, len);
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
    int r = may_send(ws);
    if (r < 0)
        return r;
    return wisp_conn_write_shared(ws->conn, frame);
}

int wisp_ws_send_text(wisp_ws_t *ws, const char *text, size_t len)
{
    return wisp_ws_send(ws, 0, text, len);
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
    return ws->subprotocol;
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

/* ------------------------------------------------------------ input */

static int msg_append(wisp_ws_t *ws, const uint8_t *p, size_t n)
{
    if (ws->msg_len + n > ws->o.max_message)
        return -EMSGSIZE;
    if (ws->msg_len + n > ws->msg_cap) {
        size_t cap = ws->msg_cap ? ws->msg_cap : 4096;
        while (cap < ws->msg_len + n)
            cap *= 2;
        char *m = realloc(ws->msg, cap);
        if (!m)
            return -ENOMEM;
        ws->msg = m;
        ws->msg_cap = cap;
    }
    memcpy(ws->msg + ws->msg_len, p, n);
    ws->msg_len += n;
    return 0;
}

static void msg_reset(wisp_ws_t *ws)
{
    free(ws->msg);
    ws->msg = NULL;
    ws->msg_len = ws->msg_cap = 0;
    ws->frag_opcode = 0;
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
        ws->peer_reason_len = n - 2;
        memcpy(ws->peer_reason, p + 2, n - 2);
    }
    ws->peer_code = code;
    /* Answer with the same code (§5.5.1), then close. */
    send_close(ws, code == 1005 ? 1000 : code, NULL, 0);
    ws->state = S_CLOSED;
}

/* One whole frame, already unmasked. */
static void on_frame(wisp_ws_t *ws, const wisp__ws_header *fh, uint8_t *p)
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
        if (ws->frag_opcode) {
            fail(ws, 1002); /* a new message inside a fragmented one */
            return;
        }
        if (ws->state != S_OPEN)
            return; /* data after our close is ignored */
        if (fh->opcode == WISP__WS_TEXT) {
            /* `done` bytes were checked while the frame was arriving. */
            size_t done = (size_t)ws->partial;
            if (!done)
                wisp__utf8_init(&ws->utf8);
            if (wisp__utf8_feed(&ws->utf8, p + done, n - done) !=
                    WISP__UTF8_OK ||
                (fh->fin && !wisp__utf8_complete(&ws->utf8))) {
                fail(ws, 1007);
                return;
            }
        }
        if (n > ws->o.max_message) {
            fail(ws, 1009);
            return;
        }
        if (fh->fin) {
            deliver(ws, fh->opcode == WISP__WS_BINARY, p, n);
            return;
        }
        ws->frag_opcode = fh->opcode;
        if (msg_append(ws, p, n) < 0)
            fail(ws, 1009);
        return;
    case WISP__WS_CONT:
        if (!ws->frag_opcode) {
            fail(ws, 1002); /* nothing to continue */
            return;
        }
        if (ws->frag_opcode == WISP__WS_TEXT &&
            (wisp__utf8_feed(&ws->utf8, p + ws->partial,
                             n - (size_t)ws->partial) != WISP__UTF8_OK ||
             (fh->fin && !wisp__utf8_complete(&ws->utf8)))) {
            fail(ws, 1007);
            return;
        }
        if (msg_append(ws, p, n) < 0) {
            fail(ws, 1009);
            return;
        }
        if (fh->fin) {
            int binary = ws->frag_opcode == WISP__WS_BINARY;
            char *m = ws->msg;
            size_t ml = ws->msg_len;
            ws->msg = NULL;
            ws->msg_len = ws->msg_cap = 0;
            ws->frag_opcode = 0;
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
 * ws->partial says how far this frame is done). */
static void check_partial(wisp_ws_t *ws, const wisp__ws_header *fh,
                          uint8_t *p, size_t avail)
{
    int text = fh->opcode == WISP__WS_TEXT ||
               (fh->opcode == WISP__WS_CONT &&
                ws->frag_opcode == WISP__WS_TEXT);
    if (!text || ws->state != S_OPEN || avail <= ws->partial ||
        (fh->opcode == WISP__WS_TEXT && ws->frag_opcode))
        return;
    size_t done = (size_t)ws->partial;
    if (fh->opcode == WISP__WS_TEXT && done == 0)
        wisp__utf8_init(&ws->utf8);
    wisp__ws_unmask(p + done, avail - done, fh->mask, done);
    ws->partial = avail;
    if (wisp__utf8_feed(&ws->utf8, p + done, avail - done) != WISP__UTF8_OK)
        fail(ws, 1007);
}

static size_t on_data(wisp_conn_t *c, const char *data, size_t len,
                      void *arg)
{
    wisp_ws_t *ws = arg;
    /* The connection's buffer is ours to unmask in place. */
    uint8_t *buf = (uint8_t *)(uintptr_t)data;
    size_t off = 0;
    while (off < len && ws->state != S_CLOSED) {
        wisp__ws_header fh;
        ssize_t r = wisp__ws_parse_header(buf + off, len - off,
                                          ws->o.max_frame, 0, &fh);
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
        size_t done = (size_t)ws->partial;
        wisp__ws_unmask(p + done, (size_t)fh.len - done, fh.mask, done);
        off += (size_t)r + (size_t)fh.len;
        on_frame(ws, &fh, p);
        ws->partial = 0;
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
    if (ws->state == S_OPEN && ws->h->on_drain)
        ws->h->on_drain(ws, ws->arg);
}

static void on_conn_close(wisp_conn_t *c, int reason, void *arg)
{
    wisp_ws_t *ws = arg;
    (void)c;
    wisp_timer_stop(&ws->timer);
    int code = ws->peer_code;
    if (code == 1006 && reason == WISP_ECLOSED)
        code = 1001; /* server going away */
    ws->state = S_CLOSED;
    if (ws->h->on_close)
        ws->h->on_close(ws, code, ws->peer_reason, ws->peer_reason_len,
                        ws->arg);
    msg_reset(ws);
    free(ws);
}

/* Server stop: start the close handshake with 1001 (going away); the
 * stop deadline closes whatever has not answered by then. */
static void on_stop(wisp_conn_t *c, void *arg)
{
    wisp_ws_t *ws = arg;
    (void)c;
    if (ws->state == S_OPEN)
        send_close(ws, 1001, "server stopping", 15);
    wisp__flush(ws->conn);
}

static const wisp_conn_handlers_t conn_handlers = {
    .on_data = on_data,
    .on_drain = on_drain,
    .on_close = on_conn_close,
    .on_stop = on_stop,
};
