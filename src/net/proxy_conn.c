/* The PROXY protocol as a pre-protocol step: read the header, replace
 * the peer address, hand the connection (and the bytes after the
 * header) to the listener's protocol. The header is refused with a close
 * (nothing can be answered: the peer is a balancer) when malformed, too
 * long, late, from an untrusted source, or missing where required. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "net/proxy.h"
#include "wisp/common.h"
#include "wisp/log.h"

static const wisp__proxy_conf *conf_of(const wisp__listener *l)
{
    return l->proxy;
}

static int peer_trusted(const wisp_conn_t *c, const wisp__listener *l)
{
    if (c->peer_family != AF_INET && c->peer_family != AF_INET6)
        return 0;
    return wisp__cidrs_match(&conf_of(l)->trusted, c->peer_family,
                             c->peer_addr);
}

static void refuse(wisp_conn_t *c, int reason, const char *why)
{
    wisp_log(WISP_LOG_DEBUG, "PROXY protocol: connection refused: %s", why);
    wisp__conn_abort(c, reason);
}

static void deliver(wisp_conn_t *c, const wisp__listener *l,
                    const char *data, size_t n)
{
    if (l->proto_int)
        c->h->on_data(c, data, n, c->harg);
    else
        wisp__conn_deliver(c, data, n);
}

/* The header is read (hdr NULL: none was sent): the listener's protocol
 * takes over with the bytes that followed. */
static void hand_over(wisp_conn_t *c, wisp__listener *l,
                      const wisp__proxy_hdr *hdr, const char *rest,
                      size_t rest_len)
{
    if (hdr && !hdr->local) {
        c->peer_family = hdr->family;
        memset(c->peer_addr, 0, sizeof c->peer_addr);
        if (hdr->family == AF_INET)
            memcpy(c->peer_addr, hdr->src, 4);
        else if (hdr->family == AF_INET6)
            memcpy(c->peer_addr, hdr->src, 16);
    }
    wisp__conn_set_proto(c, l->h, l->harg, l->proto_int);
    if (l->first_timeout_ms)
        wisp__conn_deadline(c, l->first_timeout_ms, WISP__T_PROTO);
    if (rest_len && c->state == WISP__C_OPEN)
        deliver(c, l, rest, rest_len);
}

/* 1 when buf[0..len) can still be the start of a header (either
 * signature), 0 when it cannot. */
static int may_be_header(const char *buf, size_t len)
{
    wisp__proxy_hdr h;
    int r = wisp__proxy_parse(buf, len < 12 ? len : 12, &h);
    return r != WISP_EPARSE;
}

static size_t on_data(wisp_conn_t *c, const char *data, size_t n, void *arg)
{
    wisp__listener *l = arg;
    const char *buf = data;
    size_t len = n;
    if (c->in_len) {
        /* Earlier bytes were an unfinished header: append. */
        if (wisp__in_reserve(c, n, NULL, NULL) < 0) {
            refuse(c, -ENOMEM, "out of memory");
            return n;
        }
        memcpy(c->in + c->in_len, data, n);
        c->in_len += (uint32_t)n;
        buf = c->in;
        len = c->in_len;
    }
    size_t before = len - n; /* bytes held from earlier reads */
    int trusted = peer_trusted(c, l);
    wisp__proxy_hdr hdr;
    int r = wisp__proxy_parse(buf, len, &hdr);
    if (r == WISP_EPARSE && conf_of(l)->mode == WISP__PROXY_OPTIONAL &&
        !may_be_header(buf, len)) {
        /* No header at all: the source speaks for itself. What was held
         * is shorter than a signature (12 bytes): pass it first. */
        char held[16];
        memcpy(held, buf, before);
        wisp__in_release(c);
        hand_over(c, l, NULL, held, before);
        if (c->state == WISP__C_OPEN)
            deliver(c, l, data, n);
        return n;
    }
    if (r >= 0 && !trusted) {
        refuse(c, -EACCES, "header from an untrusted source");
        return n;
    }
    if (r == -EAGAIN) {
        if (!c->in_len) {
            if (wisp__in_reserve(c, n, NULL, NULL) < 0) {
                refuse(c, -ENOMEM, "out of memory");
                return n;
            }
            memcpy(c->in, data, n);
            c->in_len = (uint32_t)n;
        }
        return n;
    }
    if (r < 0) {
        refuse(c, r, r == WISP_ETOOLONG_HEAD ? "header too long"
                                             : "malformed header");
        return n;
    }
    /* The header ended inside this read (what came before was not a
     * whole header): the rest of `data` follows it. */
    size_t used = (size_t)r - before;
    wisp__in_release(c);
    hand_over(c, l, &hdr, data + used, n - used);
    return n;
}

static void on_close(wisp_conn_t *c, int reason, void *arg)
{
    (void)c;
    (void)reason;
    (void)arg;
}

static void on_timeout(wisp_conn_t *c, void *arg)
{
    (void)arg;
    refuse(c, -ETIMEDOUT, "no header in time");
}

static const wisp__proto proxy_proto = {
    .h = {.on_data = on_data, .on_close = on_close,
          .on_timeout = on_timeout},
};

int wisp__proxy_start(wisp_conn_t *c, wisp__listener *l)
{
    const wisp__proxy_conf *pc = conf_of(l);
    if (pc->mode == WISP__PROXY_REQUIRED && !peer_trusted(c, l)) {
        /* Register first so the close goes the usual way. */
        int r = wisp__conn_start(c, &proxy_proto.h, l, 1, 0);
        if (r == 0)
            refuse(c, -EACCES, "untrusted source");
        return r;
    }
    return wisp__conn_start(c, &proxy_proto.h, l, 1, pc->timeout_ms);
}
