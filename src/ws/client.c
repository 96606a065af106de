/* The WebSocket client's opening handshake (RFC 6455 §4.1) on an
 * outgoing connection (wisp_conn_connect); once the server's answer is
 * checked, the connection becomes a session of src/ws/ws.c in client
 * mode. Also the masking keys' random source. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "http/parse.h"
#include "loop/loop_int.h"
#include "net/conn.h"
#include "util/base64.h"
#include "ws/client.h"
#include "ws/handshake.h"

#define MAX_HEAD 8192
#define MAX_FIELDS 32
#define DEFAULT_TIMEOUT_MS 10000

/* ------------------------------------------------------------ randomness */

typedef struct rnd_pool {
    uint8_t b[256];
    size_t at;
} rnd_pool;

static _Thread_local rnd_pool rnd = {.at = sizeof rnd.b};

static void random_bytes(uint8_t *out, size_t n)
{
    while (n) {
        if (rnd.at == sizeof rnd.b) {
            size_t got = 0;
            while (got < sizeof rnd.b) {
                ssize_t r = getrandom(rnd.b + got, sizeof rnd.b - got, 0);
                if (r > 0)
                    got += (size_t)r;
                /* EINTR: again. The kernel's pool is initialised long
                 * before a network service runs, so this never blocks
                 * in practice. */
            }
            rnd.at = 0;
        }
        size_t k = sizeof rnd.b - rnd.at < n ? sizeof rnd.b - rnd.at : n;
        memcpy(out, rnd.b + rnd.at, k);
        /* Used bytes are not left behind for anyone to read later. */
        memset(rnd.b + rnd.at, 0, k);
        rnd.at += k;
        out += k;
        n -= k;
    }
}

void wisp__ws_mask_key(uint8_t key[4])
{
    random_bytes(key, 4);
}

/* ------------------------------------------------------------ handshake */

typedef struct hs {
    const wisp_ws_handlers_t *h;
    const wisp_ws_opts_t *o;
    void *arg;
    wisp_ws_connect_cb cb;
    uint32_t timeout_ms;
    int err;           /* why the handshake failed, reported at close */
    char accept[WISP__WS_ACCEPT_LEN + 1];
    char *req;
    size_t req_len;
} hs;

static void hs_free(hs *x)
{
    free(x->req);
    free(x);
}

static void hs_fail(wisp_conn_t *c, hs *x, int err)
{
    if (!x->err)
        x->err = err;
    wisp_conn_abort(c);
}

static int field_is(const wisp__header *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

/* Check the answer's head; returns 0 and the chosen subprotocol, or the
 * error to report. */
static int check_answer(const hs *x, const wisp__resp_head *rh,
                        uint8_t *proto)
{
    if (rh->status != 101)
        return -EPROTO;
    int upgrade = 0, accept = 0;
    *proto = 0;
    for (uint32_t i = 0; i < rh->num_headers; i++) {
        const wisp__header *f = &rh->headers[i];
        wisp_str_t v = {f->value, f->value_len};
        if (field_is(f, "upgrade")) {
            upgrade |= wisp__ws_has_token(v, "websocket");
        } else if (field_is(f, "sec-websocket-accept")) {
            if (accept || v.len != WISP__WS_ACCEPT_LEN ||
                memcmp(v.ptr, x->accept, v.len) != 0)
                return -EPROTO;
            accept = 1;
        } else if (field_is(f, "sec-websocket-protocol")) {
            /* §4.1: one value, one of those we offered. */
            const char *const *ours = x->o ? x->o->subprotocols : NULL;
            uint8_t k = 0;
            for (size_t j = 0; ours && ours[j] && j < 255; j++) {
                if (strlen(ours[j]) == v.len &&
                    memcmp(ours[j], v.ptr, v.len) == 0)
                    k = (uint8_t)(j + 1);
            }
            if (!k || *proto)
                return -EPROTO;
            *proto = k;
        } else if (field_is(f, "sec-websocket-extensions")) {
            return -EPROTO; /* we offered none (§4.1) */
        }
    }
    if (!upgrade || !accept || !(rh->flags & WISP__RH_UPGRADE))
        return -EPROTO;
    return 0;
}

static size_t hs_data(wisp_conn_t *c, const char *data, size_t len,
                      void *arg)
{
    hs *x = arg;
    if (x->err)
        return len;
    wisp__header fields[MAX_FIELDS];
    wisp__resp_head rh = {0};
    rh.headers = fields;
    rh.max_headers = MAX_FIELDS;
    wisp__parse_limits lim = {MAX_HEAD, MAX_HEAD, MAX_FIELDS};
    size_t scan = 0;
    ssize_t hl = wisp__parse_response(data, len, &scan, &rh, &lim);
    if (hl == -EAGAIN) {
        if (len >= MAX_HEAD)
            hs_fail(c, x, WISP_ETOOLONG_HEAD);
        return 0; /* kept, offered again with more */
    }
    if (hl < 0) {
        hs_fail(c, x, hl == WISP_ETOOLONG_HEAD || hl == WISP_ETOOMANY_HEADERS
                          ? WISP_ETOOLONG_HEAD : WISP_EPARSE);
        return len;
    }
    uint8_t proto;
    int e = check_answer(x, &rh, &proto);
    if (e) {
        hs_fail(c, x, e);
        return len;
    }
    wisp_ws_t *ws = wisp__ws_client_open(c, x->h, x->o, x->arg, proto);
    if (!ws) {
        hs_fail(c, x, -ENOMEM);
        return len;
    }
    /* The session owns the connection now; the handshake is over. */
    const wisp_ws_handlers_t *h = x->h;
    wisp_ws_connect_cb cb = x->cb;
    void *cbarg = x->arg;
    hs_free(x);
    if (h->on_open)
        h->on_open(ws, cbarg);
    cb(ws, 0, cbarg);
    /* Frames that came with the answer: at once, not with the next
     * packet (which may never come). */
    return (size_t)hl + wisp__ws_client_data(c, data + hl, len - (size_t)hl,
                                             ws);
}

static void hs_close(wisp_conn_t *c, int reason, void *arg)
{
    (void)c;
    hs *x = arg;
    int err = x->err ? x->err : reason < 0 && reason != WISP_ECLOSED
                                    ? reason : -ECONNRESET;
    if (reason == WISP_ECLOSED && !x->err)
        err = WISP_ECLOSED;
    x->cb(NULL, err, x->arg);
    hs_free(x);
}

static void hs_timeout(wisp_conn_t *c, void *arg)
{
    hs_fail(c, arg, -ETIMEDOUT);
}

static const wisp_conn_handlers_t hs_handlers = {
    .on_data = hs_data,
    .on_close = hs_close,
    .on_timeout = hs_timeout,
};

static void connected(wisp_conn_t *c, int err, void *arg)
{
    hs *x = arg;
    if (err < 0) {
        x->cb(NULL, err, x->arg);
        hs_free(x);
        return;
    }
    wisp_conn_set_timeout(c, x->timeout_ms);
    if (wisp_conn_write(c, x->req, x->req_len) < 0)
        hs_fail(c, x, -ECONNRESET);
    free(x->req);
    x->req = NULL;
}

static int bad_text(const char *s)
{
    return !s || strpbrk(s, "\r\n ") != NULL;
}

int wisp_ws_connect(wisp_loop_t *loop, const struct sockaddr *sa,
                    socklen_t salen, const char *host, const char *path,
                    const wisp_ws_handlers_t *h, const wisp_ws_opts_t *opts,
                    void *arg, uint32_t timeout_ms, wisp_ws_connect_cb cb)
{
    if (!loop || !sa || !h || !h->on_message || !cb || bad_text(host) ||
        bad_text(path) || path[0] != '/' || !*host)
        return -EINVAL;
    hs *x = calloc(1, sizeof *x);
    if (!x)
        return -ENOMEM;
    x->h = h;
    x->o = opts;
    x->arg = arg;
    x->cb = cb;
    x->timeout_ms = timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS;
    /* §4.1: the key is 16 random bytes, base64-encoded. */
    uint8_t nonce[16];
    char key[25];
    random_bytes(nonce, sizeof nonce);
    key[wisp__base64_encode(nonce, sizeof nonce, key)] = 0;
    wisp__ws_accept_key(key, strlen(key), x->accept);
    x->accept[WISP__WS_ACCEPT_LEN] = 0;
    size_t plen = 0;
    const char *const *sp = opts ? opts->subprotocols : NULL;
    for (size_t i = 0; sp && sp[i]; i++)
        plen += strlen(sp[i]) + 2;
    size_t cap = strlen(host) + strlen(path) + plen + 256;
    x->req = malloc(cap);
    if (!x->req) {
        free(x);
        return -ENOMEM;
    }
    int n = snprintf(x->req, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n",
                     path, host, key);
    if (sp && sp[0]) {
        n += snprintf(x->req + n, cap - (size_t)n, "Sec-WebSocket-Protocol: ");
        for (size_t i = 0; sp[i]; i++)
            n += snprintf(x->req + n, cap - (size_t)n, "%s%s", i ? ", " : "",
                          sp[i]);
        n += snprintf(x->req + n, cap - (size_t)n, "\r\n");
    }
    n += snprintf(x->req + n, cap - (size_t)n, "\r\n");
    x->req_len = (size_t)n;
    int r = wisp_conn_connect(loop, sa, salen, &hs_handlers, x, x->timeout_ms,
                              connected, x, NULL);
    if (r < 0)
        hs_free(x);
    return r;
}
