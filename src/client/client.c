/* The HTTP/1.1 client: a pool of keep-alive connections per upstream,
 * one exchange (request and response) at a time on each, requests that
 * find no connection waiting in order.
 *
 * An exchange (xchg) goes QUEUED (in its host's wait list) -> HEAD (on a
 * connection: request written, response head awaited) -> BODY -> DONE.
 * A connection (cconn) is connecting, serving one exchange, or idle in
 * its host's list. Responses are parsed by the server's parser pieces
 * (wisp__parse_response beside wisp__parse_request in src/http/parse.c,
 * wisp__chunked_decode): the transport keeps the unconsumed bytes of an
 * incomplete head, bounded by max_header_bytes.
 *
 * An exchange is referenced twice: by its own progress and by the
 * continuation registered on its future (which notices a cancel or an
 * outside timeout); it is freed when both are done. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "client/client_int.h"
#include "http/chunked.h"
#include "http/parse.h"
#include "net/conn.h"

#define PULL_CHUNK (16 * 1024)
#define PULL_AHEAD (256 * 1024)

typedef struct host host;
typedef struct cconn cconn;
typedef struct xchg xchg;

struct wisp_client_response {
    int status;
    int minor;
    size_t nh;
    wisp_client_header_t *hs;
    char *body;
    size_t body_len;
    size_t body_cap;
};

struct host {
    host *next;
    int is_unix;
    char name[256];
    uint16_t port;
    cconn *idle;
    uint32_t nidle;
    uint32_t nconns;       /* open or connecting */
    uint32_t nconnecting;
    xchg *wait_head, *wait_tail;
    uint32_t nwait;
};

struct cconn {
    wisp_client_t *cl;
    host *h;
    wisp_conn_t *c;        /* NULL until connected */
    wisp_conn_t *pending;  /* while connecting */
    wisp__dns_req *dreq;   /* while resolving */
    cconn *next_idle;
    cconn *all_next, *all_prev; /* the client's list of connections */
    xchg *x;
    int reused;            /* served an exchange already */
    int idle;
};

enum { X_QUEUED = 0, X_HEAD, X_BODY, X_DONE };
enum { B_NONE = 0, B_LENGTH, B_CHUNKED, B_CLOSE };

struct xchg {
    wisp_client_t *cl;
    host *h;
    cconn *cc;
    wisp_future_t *f;
    int refs;
    int state;
    xchg *next;
    /* The request. */
    char method[24];
    char *url;
    char *extra;           /* the caller's fields, serialized */
    size_t extra_len;
    char *body;
    size_t body_len;
    int body_fd;
    uint64_t body_off;
    wisp_client_pull_cb pull;
    void *pull_arg;
    int chunked;
    uint64_t pull_left;
    int pull_done;
    wisp_client_data_cb on_data;
    wisp_client_end_cb on_end;
    void *data_arg;
    wisp_client_upgrade_cb on_upgrade;
    void *upgrade_arg;
    int is_head;
    int retried;
    int redirects;
    /* The response. */
    size_t scan;
    int got_bytes;
    int mode;              /* B_* */
    uint64_t remaining;
    wisp__chunked ch;
    int keepalive;
    int resolved;          /* the future has its response (streamed) */
    wisp_client_response_t *resp;
};

struct wisp_client {
    wisp_loop_t *loop;
    wisp_client_config_t cfg;
    wisp__dns *dns;
    host *hosts;
    cconn *all;
    uint32_t ncc;          /* cconns alive */
    int destroying;
    wisp_client_stats_t st;
};

static void pump(wisp_client_t *cl, host *h);
static void finish(xchg *x, int err);
static const wisp_conn_handlers_t cc_handlers;

/* ------------------------------------------------------------ config */

void wisp_client_config_init(wisp_client_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_per_host = 8;
    cfg->idle_timeout_ms = 30000;
    cfg->connect_timeout_ms = 10000;
    cfg->header_timeout_ms = 30000;
    cfg->body_timeout_ms = 30000;
    cfg->max_header_bytes = 65536;
    cfg->max_headers = 100;
    cfg->max_body_bytes = 16u << 20;
    cfg->dns_ttl_ms = 30000;
}

wisp_client_t *wisp_client_create(wisp_loop_t *loop,
                                  const wisp_client_config_t *cfg)
{
    wisp_client_config_t def;
    if (!cfg) {
        wisp_client_config_init(&def);
        cfg = &def;
    }
    if (!loop || cfg->max_per_host == 0 || cfg->max_header_bytes < 64 ||
        cfg->max_headers == 0 || cfg->max_headers > 128) {
        errno = EINVAL;
        return NULL;
    }
    wisp_client_t *cl = calloc(1, sizeof *cl);
    if (!cl) {
        errno = ENOMEM;
        return NULL;
    }
    cl->loop = loop;
    cl->cfg = *cfg;
    if (!cl->cfg.max_idle_per_host)
        cl->cfg.max_idle_per_host = cl->cfg.max_per_host;
    cl->dns = wisp__dns_create(loop, cfg->pool, cfg->dns_ttl_ms);
    if (!cl->dns) {
        free(cl);
        errno = ENOMEM;
        return NULL;
    }
    return cl;
}

static void client_free(wisp_client_t *cl)
{
    while (cl->hosts) {
        host *h = cl->hosts;
        cl->hosts = h->next;
        free(h);
    }
    wisp__dns_destroy(cl->dns);
    free(cl);
}

static void maybe_free(wisp_client_t *cl)
{
    if (cl->destroying && cl->ncc == 0)
        client_free(cl);
}

/* ------------------------------------------------------------ responses */

int wisp_client_response_status(const wisp_client_response_t *r)
{
    return r ? r->status : 0;
}

const char *wisp_client_response_header(const wisp_client_response_t *r,
                                        const char *name)
{
    if (!r || !name)
        return NULL;
    for (size_t i = 0; i < r->nh; i++)
        if (strcasecmp(r->hs[i].name, name) == 0)
            return r->hs[i].value;
    return NULL;
}

size_t wisp_client_response_header_count(const wisp_client_response_t *r)
{
    return r ? r->nh : 0;
}

const wisp_client_header_t *
wisp_client_response_header_at(const wisp_client_response_t *r, size_t i)
{
    return r && i < r->nh ? &r->hs[i] : NULL;
}

const char *wisp_client_response_body(const wisp_client_response_t *r,
                                      size_t *len)
{
    if (len)
        *len = r && r->body ? r->body_len : 0;
    return r && r->body ? r->body : "";
}

static void resp_free(void *p)
{
    wisp_client_response_t *r = p;
    if (r)
        free(r->body);
    free(r);
}

/* One allocation: the struct, the field array, then every name and
 * value NUL-terminated. */
static wisp_client_response_t *resp_new(const wisp__resp_head *rh)
{
    size_t strs = 0;
    for (uint32_t i = 0; i < rh->num_headers; i++)
        strs += rh->headers[i].name_len + rh->headers[i].value_len + 2;
    size_t arr = rh->num_headers * sizeof(wisp_client_header_t);
    wisp_client_response_t *r = malloc(sizeof *r + arr + strs);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    r->status = rh->status;
    r->minor = rh->minor;
    r->nh = rh->num_headers;
    r->hs = (wisp_client_header_t *)(void *)(r + 1);
    char *s = (char *)(r + 1) + arr;
    for (uint32_t i = 0; i < rh->num_headers; i++) {
        const wisp__header *h = &rh->headers[i];
        memcpy(s, h->name, h->name_len);
        s[h->name_len] = 0;
        r->hs[i].name = s;
        s += h->name_len + 1;
        memcpy(s, h->value, h->value_len);
        s[h->value_len] = 0;
        r->hs[i].value = s;
        s += h->value_len + 1;
    }
    return r;
}

/* ------------------------------------------------------------ exchanges */

static void x_unref(xchg *x)
{
    if (--x->refs > 0)
        return;
    if (x->body_fd > 0)
        close(x->body_fd); /* a file the request never sent */
    resp_free(x->resp);
    wisp_future_unref(x->f);
    free(x->url);
    free(x->extra);
    free(x->body);
    free(x);
}

static void wait_remove(host *h, xchg *x)
{
    xchg **pp = &h->wait_head, *prev = NULL;
    while (*pp && *pp != x) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = x->next;
    if (h->wait_tail == x)
        h->wait_tail = prev;
    h->nwait--;
    x->next = NULL;
}

static void wait_push(host *h, xchg *x, int front)
{
    x->next = NULL;
    if (front) {
        x->next = h->wait_head;
        h->wait_head = x;
        if (!h->wait_tail)
            h->wait_tail = x;
    } else {
        if (h->wait_tail)
            h->wait_tail->next = x;
        else
            h->wait_head = x;
        h->wait_tail = x;
    }
    h->nwait++;
}

static xchg *wait_pop(host *h)
{
    xchg *x = h->wait_head;
    if (x)
        wait_remove(h, x);
    return x;
}

/* ------------------------------------------------------------ connections */

static void cc_free(cconn *cc)
{
    wisp_client_t *cl = cc->cl;
    if (cc->all_prev)
        cc->all_prev->all_next = cc->all_next;
    else
        cl->all = cc->all_next;
    if (cc->all_next)
        cc->all_next->all_prev = cc->all_prev;
    free(cc);
    cl->ncc--;
    maybe_free(cl);
}

static void idle_remove(cconn *cc)
{
    if (!cc->idle)
        return;
    host *h = cc->h;
    for (cconn **pp = &h->idle; *pp; pp = &(*pp)->next_idle)
        if (*pp == cc) {
            *pp = cc->next_idle;
            break;
        }
    cc->idle = 0;
    h->nidle--;
}

/* Give the connection back: to the pool when the exchange ended cleanly
 * and both sides want to keep it, else closed. */
static void cc_release(cconn *cc, int reuse)
{
    wisp_client_t *cl = cc->cl;
    host *h = cc->h;
    cc->x = NULL;
    if (!reuse || cl->destroying || h->nidle >= cl->cfg.max_idle_per_host) {
        wisp_conn_abort(cc->c);
        return;
    }
    cc->reused = 1;
    cc->idle = 1;
    cc->next_idle = h->idle;
    h->idle = cc;
    h->nidle++;
    wisp_conn_set_idle_timeout(cc->c, cl->cfg.idle_timeout_ms);
}

static int write_str(wisp_conn_t *c, const char *s, size_t n)
{
    return wisp_conn_write(c, s, n);
}

static void pull_body(xchg *x)
{
    wisp_conn_t *c = x->cc->c;
    char buf[PULL_CHUNK + 32];
    while (!x->pull_done && wisp_conn_buffered(c) < PULL_AHEAD) {
        /* Room ahead for the chunk-size line. */
        char *data = buf + 20;
        ssize_t n = x->pull(data, PULL_CHUNK, x->pull_arg);
        if (n < 0 || (size_t)n > PULL_CHUNK) {
            finish(x, n < 0 ? (int)n : -EINVAL);
            return;
        }
        if (x->chunked) {
            if (n == 0) {
                x->pull_done = 1;
                write_str(c, "0\r\n\r\n", 5);
                break;
            }
            int hl = snprintf(buf, 20, "%zx\r\n", (size_t)n);
            memmove(buf + 20 - hl, buf, (size_t)hl);
            memcpy(data + n, "\r\n", 2);
            write_str(c, buf + 20 - hl, (size_t)hl + (size_t)n + 2);
            continue;
        }
        if ((uint64_t)n > x->pull_left || (n == 0 && x->pull_left)) {
            finish(x, -EIO); /* the source broke its promised length */
            return;
        }
        x->pull_left -= (uint64_t)n;
        if (n)
            write_str(c, data, (size_t)n);
        if (x->pull_left == 0)
            x->pull_done = 1;
    }
}

/* Start exchange `x` on connection `cc`: write the request. */
static void assign(cconn *cc, xchg *x)
{
    wisp_client_t *cl = cc->cl;
    wisp__url u;
    cc->x = x;
    x->cc = cc;
    x->state = X_HEAD;
    x->scan = 0;
    x->got_bytes = 0;
    if (cc->reused)
        cl->st.connections_reused++;
    wisp__url_parse(x->url, &u); /* checked at send */
    char framing[64] = "";
    if (x->pull && x->chunked)
        strcpy(framing, "Transfer-Encoding: chunked\r\n");
    else if (x->pull || x->body_fd > 0 || x->body_len ||
             strcmp(x->method, "POST") == 0 ||
             strcmp(x->method, "PUT") == 0 ||
             strcmp(x->method, "PATCH") == 0)
        snprintf(framing, sizeof framing, "Content-Length: %llu\r\n",
                 (unsigned long long)x->body_len);
    const char *slash = u.target[0] == '?' ? "/" : "";
    size_t cap = strlen(x->method) + u.target_len + strlen(u.hosthdr) +
                 x->extra_len + strlen(framing) + 64;
    char *head = malloc(cap);
    if (!head) {
        finish(x, -ENOMEM);
        return;
    }
    int n = snprintf(head, cap, "%s %s%s HTTP/1.1\r\nHost: %s\r\n%s%s\r\n",
                     x->method, slash, u.target, u.hosthdr,
                     x->extra ? x->extra : "", framing);
    write_str(cc->c, head, (size_t)n);
    free(head);
    if (x->body_len && x->body)
        write_str(cc->c, x->body, x->body_len);
    if (x->body_fd > 0) {
        int fd = x->body_fd;
        x->body_fd = -1; /* the connection owns it now */
        if (wisp__out_file(cc->c, fd, x->body_off, x->body_len) < 0) {
            finish(x, WISP_ECLOSED);
            return;
        }
    }
    if (x->pull) {
        x->pull_left = x->body_len;
        x->pull_done = 0;
        pull_body(x);
        if (x->state == X_DONE)
            return;
    }
    wisp_conn_set_timeout(cc->c, cl->cfg.header_timeout_ms);
}

static void cc_connected(wisp_conn_t *c, int err, void *arg)
{
    cconn *cc = arg;
    wisp_client_t *cl = cc->cl;
    host *h = cc->h;
    cc->pending = NULL;
    h->nconnecting--;
    if (err < 0) {
        h->nconns--;
        /* The connect served the oldest waiter: it gets the error. */
        if (cl->destroying) {
            cc_free(cc); /* may free cl */
            return;
        }
        xchg *x = wait_pop(h);
        cc_free(cc);
        if (x)
            finish(x, err);
        pump(cl, h);
        return;
    }
    cc->c = c;
    cl->st.connections_opened++;
    xchg *x = wait_pop(h);
    if (x)
        assign(cc, x);
    else
        cc_release(cc, 1);
}

static void start_connect(cconn *cc, const struct sockaddr *sa,
                          socklen_t len)
{
    int err = wisp_conn_connect(cc->cl->loop, sa, len, &cc_handlers, cc,
                                cc->cl->cfg.connect_timeout_ms, cc_connected,
                                cc, &cc->pending);
    if (err < 0)
        cc_connected(NULL, err, cc);
}

static void cc_resolved(int err, const struct sockaddr *sa, socklen_t len,
                        void *arg)
{
    cconn *cc = arg;
    cc->dreq = NULL;
    if (err < 0)
        cc_connected(NULL, err, cc);
    else
        start_connect(cc, sa, len);
}

static void open_conn(wisp_client_t *cl, host *h)
{
    cconn *cc = calloc(1, sizeof *cc);
    if (!cc) {
        xchg *x = wait_pop(h);
        if (x)
            finish(x, -ENOMEM);
        return;
    }
    cc->cl = cl;
    cc->h = h;
    cc->all_next = cl->all;
    if (cl->all)
        cl->all->all_prev = cc;
    cl->all = cc;
    cl->ncc++;
    h->nconns++;
    h->nconnecting++; /* resolving or connecting: cc_connected ends it */
    if (h->is_unix) {
        struct sockaddr_un sun;
        memset(&sun, 0, sizeof sun);
        sun.sun_family = AF_UNIX;
        strcpy(sun.sun_path, h->name);
        start_connect(cc, (struct sockaddr *)&sun, sizeof sun);
        return;
    }
    struct sockaddr_storage ss;
    socklen_t len = 0;
    int r = wisp__dns_resolve(cl->dns, h->name, h->port, &ss, &len,
                              cc_resolved, cc, &cc->dreq);
    if (r == 1)
        start_connect(cc, (struct sockaddr *)&ss, len);
    else if (r < 0)
        cc_connected(NULL, r, cc);
}

/* Serve the host's waiting requests: idle connections first, then new
 * ones up to max_per_host, one per waiter not already covered by a
 * connect under way. */
static void pump(wisp_client_t *cl, host *h)
{
    while (h->wait_head && h->idle) {
        cconn *cc = h->idle;
        idle_remove(cc);
        assign(cc, wait_pop(h));
    }
    while (h->nwait > h->nconnecting && h->nconns < cl->cfg.max_per_host)
        open_conn(cl, h); /* a failure at once takes a waiter with it */
}

/* ------------------------------------------------------------ finishing */

static int follow_redirect(xchg *x);

/* The exchange is over: settle its future (or end its stream), give its
 * connection back or close it. */
static void finish(xchg *x, int err)
{
    if (x->state == X_DONE)
        return;
    int was = x->state;
    cconn *cc = x->cc;
    x->state = X_DONE;
    if (cc) {
        x->cc = NULL;
        int sent = !x->pull || x->pull_done;
        cc_release(cc, err == 0 && x->keepalive && sent);
        if (!x->cl->destroying)
            pump(x->cl, x->h);
    } else if (was == X_QUEUED) {
        wait_remove(x->h, x);
    }
    if (x->resolved) {
        if (x->on_end)
            x->on_end(err, x->data_arg);
    } else if (err) {
        wisp_future_fail(x->f, err);
    } else if (!follow_redirect(x)) {
        wisp_client_response_t *r = x->resp;
        x->resp = NULL;
        wisp_future_resolve(x->f, r, resp_free);
    }
    x_unref(x);
}

/* ------------------------------------------------------------ input */

static int deliver(xchg *x, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (x->on_data) {
        if (x->on_data(p, n, x->data_arg) < 0) {
            finish(x, -ECANCELED);
            return -1;
        }
        return 0;
    }
    wisp_client_response_t *r = x->resp;
    uint64_t max = x->cl->cfg.max_body_bytes;
    if (r->body_len + n > max) {
        finish(x, WISP_EBODY_TOO_LARGE);
        return -1;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 16384;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b) {
            finish(x, -ENOMEM);
            return -1;
        }
        r->body = b;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, p, n);
    r->body_len += n;
    r->body[r->body_len] = 0;
    return 0;
}

/* Body bytes; `p` is writable (chunked decoding works in place). */
static void body_bytes(xchg *x, char *p, size_t n)
{
    switch (x->mode) {
    case B_LENGTH: {
        size_t k = n < x->remaining ? n : (size_t)x->remaining;
        if (deliver(x, p, k) < 0)
            return;
        x->remaining -= k;
        if (k < n)
            x->keepalive = 0; /* bytes nobody asked for: do not reuse */
        if (x->remaining == 0)
            finish(x, 0);
        return;
    }
    case B_CHUNKED: {
        size_t dl = n;
        ssize_t r = wisp__chunked_decode(&x->ch, p, &dl);
        if (r == WISP_EPARSE) {
            finish(x, WISP_EPARSE);
            return;
        }
        if (deliver(x, p, dl) < 0)
            return;
        if (r >= 0) {
            if (r > 0)
                x->keepalive = 0;
            finish(x, 0);
        }
        return;
    }
    case B_CLOSE:
        deliver(x, p, n);
        return;
    default:
        if (n)
            x->keepalive = 0;
        finish(x, 0);
        return;
    }
}

static void upgrade(cconn *cc, xchg *x, char *rest, size_t n)
{
    wisp_client_t *cl = cc->cl;
    host *h = cc->h;
    wisp_conn_t *c = cc->c;
    /* The connection leaves the pool: its new owner is the caller. */
    cc->x = NULL;
    x->cc = NULL;
    h->nconns--;
    x->on_upgrade(c, x->resp, rest, n, x->upgrade_arg);
    if (c->h == &cc_handlers) {
        /* Not taken over: nobody will read it. */
        c->harg = NULL;
        wisp_conn_abort(c);
    }
    x->state = X_BODY; /* so that finish settles it */
    cc_free(cc);
    finish(x, 0);
    if (!cl->destroying)
        pump(cl, h);
}

/* The head is in: what frames the body, and whether the connection can
 * serve another exchange. */
static int head_done(cconn *cc, xchg *x, const wisp__resp_head *rh)
{
    x->resp = resp_new(rh);
    if (!x->resp)
        return -ENOMEM;
    x->keepalive = rh->minor == 1 ? !(rh->flags & WISP__RH_CLOSE)
                                  : (rh->flags & WISP__RH_KEEPALIVE) != 0;
    x->state = X_BODY;
    int st = rh->status;
    if (x->is_head || st == 204 || st == 304) {
        x->mode = B_NONE;
    } else if (rh->flags & WISP__RH_CHUNKED) {
        x->mode = B_CHUNKED;
        wisp__chunked_init(&x->ch, 8192);
    } else if (rh->content_length >= 0) {
        x->mode = B_LENGTH;
        x->remaining = (uint64_t)rh->content_length;
        if (!x->on_data && x->remaining > x->cl->cfg.max_body_bytes)
            return WISP_EBODY_TOO_LARGE;
    } else {
        x->mode = B_CLOSE;
        x->keepalive = 0;
    }
    if (x->on_data) {
        /* Streamed: the future has the head now, the body follows. */
        wisp_client_response_t *r = x->resp;
        x->resp = NULL;
        x->resolved = 1;
        wisp_future_resolve(x->f, r, resp_free);
    }
    wisp_conn_set_idle_timeout(cc->c, cc->cl->cfg.body_timeout_ms);
    return 0;
}

static size_t cc_data(wisp_conn_t *c, const char *data, size_t len,
                      void *arg)
{
    cconn *cc = arg;
    xchg *x = cc->x;
    char *p = (char *)(uintptr_t)data; /* writable (wisp/conn.h) */
    if (!x) {
        /* Bytes on an idle connection: the server broke the exchange
         * boundary. Nothing can be trusted after them. */
        wisp_conn_abort(c);
        return len;
    }
    x->got_bytes = 1;
    if (x->state == X_BODY) {
        body_bytes(x, p, len);
        return len;
    }
    size_t off = 0;
    for (;;) {
        wisp__header hs[128];
        uint32_t maxh = cc->cl->cfg.max_headers;
        wisp__resp_head rh;
        memset(&rh, 0, sizeof rh);
        rh.headers = hs;
        rh.max_headers = maxh < 128 ? maxh : 128;
        wisp__parse_limits lim = {cc->cl->cfg.max_header_bytes,
                                  cc->cl->cfg.max_header_bytes, maxh};
        ssize_t n = wisp__parse_response(p + off, len - off, &x->scan, &rh,
                                         &lim);
        if (n == -EAGAIN)
            return off; /* the transport keeps the rest */
        if (n < 0) {
            finish(x, (int)n);
            return len;
        }
        off += (size_t)n;
        x->scan = 0;
        if (rh.status == 101) {
            if (!x->on_upgrade) {
                finish(x, WISP_EPARSE);
                return len;
            }
            x->resp = resp_new(&rh);
            if (!x->resp) {
                finish(x, -ENOMEM);
                return len;
            }
            upgrade(cc, x, p + off, len - off);
            return len;
        }
        if (rh.status < 200)
            continue; /* interim (100 Continue, 103): the next head */
        int err = head_done(cc, x, &rh);
        if (err < 0) {
            finish(x, err);
            return len;
        }
        body_bytes(x, p + off, len - off);
        return len;
    }
}

static void cc_drain(wisp_conn_t *c, void *arg)
{
    cconn *cc = arg;
    (void)c;
    if (cc && cc->x && cc->x->pull && !cc->x->pull_done)
        pull_body(cc->x);
}

static void cc_timeout(wisp_conn_t *c, void *arg)
{
    cconn *cc = arg;
    if (cc && cc->x)
        finish(cc->x, -ETIMEDOUT); /* closes c */
    else
        wisp_conn_abort(c);
}

static int idempotent(const xchg *x)
{
    return !x->pull && x->body_fd <= 0 &&
           (strcmp(x->method, "GET") == 0 || strcmp(x->method, "HEAD") == 0 ||
            strcmp(x->method, "OPTIONS") == 0 ||
            strcmp(x->method, "PUT") == 0 ||
            strcmp(x->method, "DELETE") == 0);
}

static void cc_close(wisp_conn_t *c, int reason, void *arg)
{
    cconn *cc = arg;
    (void)c;
    if (!cc)
        return; /* handed over by an upgrade and left */
    wisp_client_t *cl = cc->cl;
    host *h = cc->h;
    xchg *x = cc->x;
    idle_remove(cc);
    h->nconns--;
    cc->x = NULL;
    if (x) {
        x->cc = NULL;
        if (x->state == X_BODY && x->mode == B_CLOSE &&
            reason == -ECONNRESET) {
            finish(x, 0); /* the close delimits the body */
        } else if (x->state == X_HEAD && !x->got_bytes && cc->reused &&
                   !x->retried && idempotent(x) && !cl->destroying) {
            /* A pooled connection the server had closed meanwhile: the
             * request never reached it; once more on a fresh one. */
            x->retried = 1;
            x->state = X_QUEUED;
            wait_push(h, x, 1);
        } else {
            finish(x, reason ? reason : -ECONNRESET);
        }
    }
    if (cl->destroying) {
        cc_free(cc); /* may free cl */
        return;
    }
    cc_free(cc);
    pump(cl, h);
}

static const wisp_conn_handlers_t cc_handlers = {
    cc_data, cc_drain, cc_close, NULL, cc_timeout};

/* ------------------------------------------------------------ requests */

static host *host_get(wisp_client_t *cl, const wisp__url *u)
{
    for (host *h = cl->hosts; h; h = h->next)
        if (h->is_unix == u->is_unix && h->port == u->port &&
            strcmp(h->name, u->host) == 0)
            return h;
    host *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->is_unix = u->is_unix;
    h->port = u->port;
    strcpy(h->name, u->host);
    h->next = cl->hosts;
    cl->hosts = h;
    return h;
}

static int token_ok(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", c))
            return 0;
    }
    return 1;
}

static int value_ok(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* The caller's fields as "Name: value\r\n" lines; the framing fields
 * and Host are the client's own. */
static int serialize_headers(xchg *x, const wisp_client_request_t *rq)
{
    size_t n = 0;
    for (size_t i = 0; i < rq->num_headers; i++) {
        const wisp_client_header_t *h = &rq->headers[i];
        if (!h->name || !h->value || !token_ok(h->name) ||
            !value_ok(h->value) || strcasecmp(h->name, "host") == 0 ||
            strcasecmp(h->name, "content-length") == 0 ||
            strcasecmp(h->name, "transfer-encoding") == 0)
            return -EINVAL;
        n += strlen(h->name) + strlen(h->value) + 4;
    }
    if (n == 0)
        return 0;
    x->extra = malloc(n + 1);
    if (!x->extra)
        return -ENOMEM;
    char *p = x->extra;
    for (size_t i = 0; i < rq->num_headers; i++)
        p += sprintf(p, "%s: %s\r\n", rq->headers[i].name,
                     rq->headers[i].value);
    x->extra_len = (size_t)(p - x->extra);
    return 0;
}

static void x_settled(wisp_future_t *f, void *arg)
{
    xchg *x = arg;
    if (x->state != X_DONE && !x->resolved) {
        /* Cancelled or timed out from outside. */
        int err = wisp_future_error(f);
        finish(x, err < 0 ? err : -ECANCELED);
    }
    x_unref(x);
}

static wisp_future_t *failed(wisp_loop_t *loop, int err)
{
    wisp_future_t *f = wisp_future_create(loop);
    if (f)
        wisp_future_fail(f, err);
    return f;
}

/* Queue exchange `x` (its url, method, body set) on its host. */
static int x_start(wisp_client_t *cl, xchg *x)
{
    wisp__url u;
    int err = wisp__url_parse(x->url, &u);
    if (err < 0)
        return err;
    x->h = host_get(cl, &u);
    if (!x->h)
        return -ENOMEM;
    x->is_head = strcmp(x->method, "HEAD") == 0;
    x->state = X_QUEUED;
    wait_push(x->h, x, 0);
    pump(cl, x->h);
    return 0;
}

static char *dupmem(const void *p, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, p, n);
        d[n] = 0;
    }
    return d;
}

/* A buffered 3xx with a Location, when the client follows redirects:
 * the same future goes on with a new exchange. 303 (and 301/302 after
 * a POST, as browsers do) turn into a GET without a body. Returns 1
 * when the future was taken over (or failed), 0 to resolve as is. */
static int follow_redirect(xchg *x)
{
    wisp_client_t *cl = x->cl;
    wisp_client_response_t *r = x->resp;
    if (!r || x->redirects >= (int)cl->cfg.max_redirects || x->on_data ||
        x->on_upgrade || x->pull || cl->destroying)
        return 0;
    int st = r->status;
    if (st != 301 && st != 302 && st != 303 && st != 307 && st != 308)
        return 0;
    const char *loc = wisp_client_response_header(r, "location");
    if (!loc)
        return 0;
    char *url;
    if (strncmp(loc, "http://", 7) == 0 ||
        strncmp(loc, "http+unix://", 12) == 0) {
        url = strdup(loc);
    } else if (loc[0] == '/' && loc[1] != '/') {
        const char *a = strstr(x->url, "://") + 3;
        size_t al = strcspn(a, "/?");
        size_t pre = (size_t)(a - x->url) + al;
        url = malloc(pre + strlen(loc) + 1);
        if (url) {
            memcpy(url, x->url, pre);
            strcpy(url + pre, loc);
        }
    } else {
        return 0; /* relative forms we do not resolve: the caller sees it */
    }
    xchg *nx = calloc(1, sizeof *nx);
    if (!nx || !url) {
        free(nx);
        free(url);
        wisp_future_fail(x->f, -ENOMEM);
        return 1;
    }
    nx->cl = cl;
    nx->url = url;
    nx->body_fd = -1;
    nx->redirects = x->redirects + 1;
    int to_get = st == 303 ||
                 ((st == 301 || st == 302) && strcmp(x->method, "POST") == 0);
    strcpy(nx->method, to_get && !x->is_head ? "GET" : x->method);
    if (x->extra) {
        nx->extra = strdup(x->extra);
        nx->extra_len = x->extra_len;
    }
    if (!to_get && x->body) {
        nx->body = dupmem(x->body, x->body_len);
        nx->body_len = x->body_len;
    }
    nx->f = x->f;
    wisp_future_ref(nx->f);
    nx->refs = 1;
    int err = (x->extra && !nx->extra) || (nx->body_len && !nx->body)
                  ? -ENOMEM : 0;
    if (!err && wisp_future_then(nx->f, x_settled, nx) == 0)
        nx->refs++;
    else if (!err)
        err = -ENOMEM;
    if (!err)
        err = x_start(cl, nx);
    if (err < 0) {
        nx->state = X_DONE;
        wisp_future_fail(nx->f, err);
        x_unref(nx);
        return 1;
    }
    return 1;
}

wisp_future_t *wisp_client_send(wisp_client_t *cl,
                                const wisp_client_request_t *rq)
{
    WISP__ASSERT_OWNER(cl->loop);
    int fd = rq && rq->body_fd > 0 ? rq->body_fd : -1;
    const char *m = rq && rq->method ? rq->method : "GET";
    int sources = rq ? (rq->body != NULL) + (fd > 0) +
                           (rq->body_pull != NULL)
                     : 0;
    if (!rq || !token_ok(m) || strlen(m) >= sizeof ((xchg *)0)->method ||
        sources > 1 || (sources == 0 && rq->body_len) ||
        (rq->body_chunked && !rq->body_pull) || cl->destroying) {
        if (fd > 0)
            close(fd);
        return failed(cl->loop, cl->destroying ? -ECANCELED : -EINVAL);
    }
    wisp_future_t *f = wisp_future_create(cl->loop);
    xchg *x = calloc(1, sizeof *x);
    if (!f || !x) {
        free(x);
        wisp_future_unref(f);
        if (fd > 0)
            close(fd);
        errno = ENOMEM;
        return NULL;
    }
    x->cl = cl;
    x->f = f;
    wisp_future_ref(f); /* the exchange's */
    x->refs = 1;
    x->body_fd = fd;
    x->body_off = rq->body_offset;
    x->body_len = rq->body_len;
    x->pull = rq->body_pull;
    x->pull_arg = rq->body_arg;
    x->chunked = rq->body_chunked;
    x->on_data = rq->on_data;
    x->on_end = rq->on_end;
    x->data_arg = rq->data_arg;
    x->on_upgrade = rq->on_upgrade;
    x->upgrade_arg = rq->upgrade_arg;
    strcpy(x->method, m);
    x->url = rq->url ? strdup(rq->url) : NULL;
    int err = rq->url ? (x->url ? 0 : -ENOMEM) : -EINVAL;
    if (!err)
        err = serialize_headers(x, rq);
    if (!err && rq->body && rq->body_len) {
        x->body = dupmem(rq->body, rq->body_len);
        if (!x->body)
            err = -ENOMEM;
    }
    if (!err) {
        if (wisp_future_then(f, x_settled, x) < 0)
            err = -ENOMEM;
        else
            x->refs++;
    }
    if (!err && cl->cfg.total_timeout_ms)
        wisp_future_set_timeout(f, cl->cfg.total_timeout_ms);
    if (!err)
        err = x_start(cl, x);
    if (err < 0) {
        x->state = X_DONE;
        wisp_future_fail(f, err);
        x_unref(x);
    }
    return f;
}

wisp_future_t *wisp_client_get(wisp_client_t *cl, const char *url)
{
    wisp_client_request_t rq;
    memset(&rq, 0, sizeof rq);
    rq.url = url;
    return wisp_client_send(cl, &rq);
}

void wisp_client_stats(const wisp_client_t *cl, wisp_client_stats_t *out)
{
    *out = cl->st;
    out->connections_open = 0;
    out->connections_idle = 0;
    out->requests_queued = 0;
    for (const host *h = cl->hosts; h; h = h->next) {
        out->connections_open += h->nconns;
        out->connections_idle += h->nidle;
        out->requests_queued += h->nwait;
    }
}

void wisp_client_destroy(wisp_client_t *cl)
{
    if (!cl)
        return;
    WISP__ASSERT_OWNER(cl->loop);
    cl->destroying = 1;
    for (host *h = cl->hosts; h; h = h->next) {
        xchg *x;
        while ((x = wait_pop(h)) != NULL)
            finish(x, -ECANCELED);
    }
    /* Every connection: the exchange it serves fails (which closes it),
     * idle ones close, connects are aborted (their callback comes from
     * the loop), lookups are dropped. Freed ones leave the list only in
     * cc_free, at the end of the iteration for the closed ones. */
    cconn *cc = cl->all;
    while (cc) {
        cconn *next = cc->all_next;
        if (cc->x) {
            finish(cc->x, -ECANCELED);
        } else if (cc->idle) {
            idle_remove(cc);
            wisp_conn_abort(cc->c);
        } else if (cc->pending) {
            wisp_conn_abort(cc->pending);
        } else if (cc->dreq) {
            wisp__dns_cancel(cc->dreq);
            cc->dreq = NULL;
            cc_free(cc); /* may free cl when it was the last: */
            if (!next)
                return;
        }
        cc = next;
    }
    maybe_free(cl);
}
