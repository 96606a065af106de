/* Name resolution for the client: getaddrinfo (which blocks) on the
 * worker pool, the answer cached per name for a TTL. IP literals never
 * leave the loop. The cache is small and searched linearly: a client
 * talks to a handful of upstreams. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

#define CACHE_SLOTS 16

typedef struct entry {
    char name[256];
    struct sockaddr_storage ss; /* port 0 */
    socklen_t len;
    uint64_t expires_ms;        /* 0: empty */
} entry;

struct wisp__dns_req {
    wisp__dns *d;
    wisp__dns_cb cb;            /* NULL: cancelled */
    void *arg;
    uint16_t port;
    char name[256];
    wisp__dns_req *next, *prev; /* in flight */
};

struct wisp__dns {
    wisp_loop_t *loop;
    wisp_pool_t *pool;
    uint32_t ttl_ms;
    entry cache[CACHE_SLOTS];
    wisp__dns_req *flight;
};

/* What the pool job returns. */
typedef struct answer {
    struct sockaddr_storage ss;
    socklen_t len;
} answer;

wisp__dns *wisp__dns_create(wisp_loop_t *loop, wisp_pool_t *pool,
                            uint32_t ttl_ms)
{
    wisp__dns *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->loop = loop;
    d->pool = pool;
    d->ttl_ms = ttl_ms;
    return d;
}

void wisp__dns_destroy(wisp__dns *d)
{
    if (!d)
        return;
    /* Lookups in flight finish on their own (the continuation frees the
     * request); they must not touch `d` any more. */
    for (wisp__dns_req *r = d->flight; r; r = r->next) {
        r->d = NULL;
        r->cb = NULL;
    }
    free(d);
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons(port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

static int literal(const char *host, struct sockaddr_storage *ss,
                   socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *a = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *b = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a->sin_addr) == 1) {
        a->sin_family = AF_INET;
        *len = sizeof *a;
        return 1;
    }
    if (inet_pton(AF_INET6, host, &b->sin6_addr) == 1) {
        b->sin6_family = AF_INET6;
        *len = sizeof *b;
        return 1;
    }
    return 0;
}

static int lookup_job(void *arg, void **value, wisp_free_cb *destroy)
{
    const char *name = arg;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int r = getaddrinfo(name, NULL, &hints, &res);
    if (r != 0)
        return r == EAI_AGAIN ? -EAGAIN
               : r == EAI_MEMORY ? -ENOMEM
               : r == EAI_SYSTEM ? -EIO : -ENOENT;
    /* One address: the first IPv4 one, else the first IPv6 one. Local
     * engines often listen on 0.0.0.0 only, while "localhost" may list
     * ::1 first. */
    struct addrinfo *pick = NULL;
    for (struct addrinfo *i = res; i; i = i->ai_next) {
        if (i->ai_family == AF_INET) {
            pick = i;
            break;
        }
        if (i->ai_family == AF_INET6 && !pick)
            pick = i;
    }
    answer *a = pick ? calloc(1, sizeof *a) : NULL;
    if (a) {
        memcpy(&a->ss, pick->ai_addr, pick->ai_addrlen);
        a->len = pick->ai_addrlen;
    }
    freeaddrinfo(res);
    if (!a)
        return pick ? -ENOMEM : -ENOENT;
    *value = a;
    *destroy = free;
    return 0;
}

static void lookup_done(wisp_future_t *f, void *arg)
{
    wisp__dns_req *r = arg;
    wisp__dns *d = r->d;
    if (d) {
        if (r->prev)
            r->prev->next = r->next;
        else
            d->flight = r->next;
        if (r->next)
            r->next->prev = r->prev;
    }
    int err = wisp_future_error(f);
    answer *a = err == 0 ? wisp_future_value(f) : NULL;
    if (a && d && d->ttl_ms) {
        entry *slot = &d->cache[0];
        for (int i = 0; i < CACHE_SLOTS; i++) {
            entry *e = &d->cache[i];
            if (strcmp(e->name, r->name) == 0 || e->expires_ms == 0) {
                slot = e;
                break;
            }
            if (e->expires_ms < slot->expires_ms)
                slot = e;
        }
        strcpy(slot->name, r->name);
        slot->ss = a->ss;
        slot->len = a->len;
        slot->expires_ms = wisp_loop_now(d->loop) + d->ttl_ms;
    }
    if (r->cb) {
        if (a) {
            struct sockaddr_storage ss = a->ss;
            set_port(&ss, r->port);
            r->cb(0, (struct sockaddr *)&ss, a->len, r->arg);
        } else {
            r->cb(err, NULL, 0, r->arg);
        }
    }
    free(r);
    wisp_future_unref(f);
}

int wisp__dns_resolve(wisp__dns *d, const char *host, uint16_t port,
                      struct sockaddr_storage *ss, socklen_t *len,
                      wisp__dns_cb cb, void *arg, wisp__dns_req **req)
{
    *req = NULL;
    if (literal(host, ss, len)) {
        set_port(ss, port);
        return 1;
    }
    uint64_t now = wisp_loop_now(d->loop);
    for (int i = 0; i < CACHE_SLOTS; i++) {
        entry *e = &d->cache[i];
        if (e->expires_ms > now && strcmp(e->name, host) == 0) {
            *ss = e->ss;
            *len = e->len;
            set_port(ss, port);
            return 1;
        }
    }
    if (!d->pool)
        return -EINVAL;
    size_t hl = strlen(host);
    wisp__dns_req *r = calloc(1, sizeof *r);
    char *name = malloc(hl + 1);
    if (!r || !name || hl >= sizeof r->name) {
        free(r);
        free(name);
        return hl >= 256 ? -EINVAL : -ENOMEM;
    }
    memcpy(name, host, hl + 1);
    memcpy(r->name, host, hl + 1);
    r->d = d;
    r->cb = cb;
    r->arg = arg;
    r->port = port;
    wisp_future_t *f = wisp_pool_submit_job(d->pool, WISP_PRIO_NORMAL,
                                            d->loop, lookup_job, name, free);
    if (!f) {
        free(r);
        return -ENOMEM;
    }
    if (wisp_future_then(f, lookup_done, r) < 0) {
        wisp_future_cancel(f);
        wisp_future_unref(f);
        free(r);
        return -ENOMEM;
    }
    r->next = d->flight;
    if (d->flight)
        d->flight->prev = r;
    d->flight = r;
    *req = r;
    return 0;
}

void wisp__dns_cancel(wisp__dns_req *req)
{
    if (req)
        req->cb = NULL;
}
