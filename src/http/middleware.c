/* Middleware: hooks before and after handlers, for every path, a route
 * group (a path prefix) or one route; the order is the one
 * wisp/middleware.h documents. The server's entries sit in one array
 * sorted by their key at registration (read-only once the server
 * listens, so every loop reads it without locks); a request's chain is a
 * 32-bit mask over that array and the route's own entries, computed
 * when its handler is due. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http/http_int.h"
#include "server_int.h"

typedef struct wisp__mw {
    char *prefix;        /* NULL: every path */
    size_t prefix_len;
    uint32_t key;
    wisp_mw_t h;
} wisp__mw;

struct wisp__mw_set {
    uint32_t n;
    wisp__mw e[WISP_MW_MAX_SERVER];
};

#define ROUTE_BIT 24

_Static_assert(WISP_MW_MAX_SERVER <= ROUTE_BIT &&
                   ROUTE_BIT + WISP_MW_MAX_ROUTE <= 32,
               "a chain fits in 32 bits");

int wisp__mw_ensure(wisp__http_conf *conf)
{
    if (!conf->mw)
        conf->mw = calloc(1, sizeof *conf->mw);
    return conf->mw ? 0 : -ENOMEM;
}

void wisp__mw_free(struct wisp__mw_set *set)
{
    if (!set)
        return;
    for (uint32_t i = 0; i < set->n; i++)
        free(set->e[i].prefix);
    free(set);
}

int wisp__mw_add(wisp__http_conf *conf, const char *prefix, size_t plen,
                 const wisp_mw_t *mw, uint32_t key)
{
    if (wisp__mw_ensure(conf) < 0)
        return -ENOMEM;
    struct wisp__mw_set *s = conf->mw;
    if (s->n == WISP_MW_MAX_SERVER)
        return -ENOSPC;
    char *p = NULL;
    if (plen) {
        p = strndup(prefix, plen);
        if (!p)
            return -ENOMEM;
    }
    /* Stable insertion: after every entry whose key is not larger. */
    uint32_t at = s->n;
    while (at > 0 && s->e[at - 1].key > key)
        at--;
    memmove(&s->e[at + 1], &s->e[at], (s->n - at) * sizeof s->e[0]);
    s->e[at] = (wisp__mw){.prefix = p, .prefix_len = plen, .key = key,
                          .h = *mw};
    s->n++;
    return 0;
}

int wisp_server_use(wisp_server_t *srv, const char *prefix,
                    const wisp_mw_t *mw)
{
    if (!srv || !mw || (!mw->before && !mw->after && !mw->done))
        return -EINVAL;
    if (prefix && (prefix[0] != '/' || strpbrk(prefix, "\r\n")))
        return -EINVAL;
    if (srv->state != WISP__S_NEW)
        return WISP_ESTATE;
    size_t plen = prefix ? strlen(prefix) : 0;
    /* "/api/" covers what "/api" covers; "/" covers every path. */
    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    return wisp__mw_add(&srv->http, prefix, plen, mw, plen ? 3 + (uint32_t)plen
                                                           : 2);
}

static int covers(const wisp__mw *m, wisp_str_t path)
{
    size_t n = m->prefix_len;
    if (!n)
        return 1;
    if (path.len < n || memcmp(path.ptr, m->prefix, n) != 0)
        return 0;
    return path.len == n || path.ptr[n] == '/';
}

static const wisp_mw_t *entry(const wisp__exchange *ex, unsigned bit)
{
    if (bit < ROUTE_BIT)
        return &ex->w->conf->mw->e[bit].h;
    return &ex->route->mw[bit - ROUTE_BIT];
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Bits of the chain below mw_pos: the middleware the request entered. */
static uint32_t entered(const wisp__exchange *ex)
{
    if (ex->mw_pos >= 32)
        return ex->mw_mask;
    return ex->mw_mask & ((1u << ex->mw_pos) - 1);
}

/* Run the before-hooks from mw_pos on (in_handler raised). Returns 1 when
 * the handler is due, 0 when the chain stopped: a hook answered, went
 * asynchronous, or said DONE (a 500 is sent for it if it did not
 * answer). */
static int run_before(wisp__exchange *ex)
{
    while (ex->mw_pos < 32) {
        unsigned b = ex->mw_pos++;
        if (!(ex->mw_mask & (1u << b)))
            continue;
        const wisp_mw_t *m = entry(ex, b);
        if (!m->before)
            continue;
        wisp_mw_result_t r = m->before(&ex->req, &ex->res, m->arg);
        if (ex->state == WISP__X_DONE)
            return 0; /* answered early */
        if (r == WISP_MW_ASYNC) {
            ex->mw_wait = 1;
            return 0;
        }
        if (r != WISP_MW_NEXT) {
            /* "Done" without an answer: say so rather than hang. */
            wisp_res_send(&ex->res, 500, "text/plain",
                          "Internal Server Error\n", 22);
            return 0;
        }
    }
    return 1;
}

int wisp__mw_begin(wisp__exchange *ex)
{
    const struct wisp__mw_set *s = ex->w->conf->mw;
    wisp_str_t path = {ex->req.rh.path, ex->req.rh.path_len};
    uint32_t mask = 0;
    int after = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (covers(&s->e[i], path)) {
            mask |= 1u << i;
            after |= s->e[i].h.after != NULL;
        }
    }
    for (uint32_t j = 0; j < ex->route->nmw; j++) {
        mask |= 1u << (ROUTE_BIT + j);
        after |= ex->route->mw[j].after != NULL;
    }
    ex->mw_mask = mask;
    ex->mw_pos = 0;
    ex->mw_wait = 0;
    ex->mw_t0_ns = now_ns();
    if (after)
        ex->res.flags |= WISP__RS_MW_AFTER;
    return run_before(ex);
}

void wisp__mw_after(wisp__exchange *ex)
{
    struct wisp_res *res = &ex->res;
    res->flags &= ~(uint32_t)WISP__RS_MW_AFTER;
    res->flags |= WISP__RS_MW_IN_AFTER;
    uint32_t bits = entered(ex);
    while (bits) {
        unsigned b = 31u - (unsigned)__builtin_clz(bits);
        bits &= ~(1u << b);
        const wisp_mw_t *m = entry(ex, b);
        if (m->after)
            m->after(&ex->req, res, m->arg);
    }
    res->flags &= ~(uint32_t)WISP__RS_MW_IN_AFTER;
}

void wisp__mw_done(wisp__exchange *ex)
{
    uint32_t bits = entered(ex);
    while (bits) {
        unsigned b = 31u - (unsigned)__builtin_clz(bits);
        bits &= ~(1u << b);
        const wisp_mw_t *m = entry(ex, b);
        if (m->done)
            m->done(&ex->req, &ex->res, m->arg);
    }
}

int wisp_res_next(wisp_res_t *res)
{
    wisp__exchange *ex = wisp__ex_of_res(res);
    WISP__ASSERT_OWNER(ex->w->loop);
    if (ex->state == WISP__X_DONE || !ex->w->conf->mw || !ex->mw_wait)
        return WISP_ESTATE;
    ex->mw_wait = 0;
    if (!ex->conn || ex->state == WISP__X_ORPHAN) {
        /* The client went away while the hook waited: finished. */
        wisp__http_response_done(ex);
        return WISP_ECLOSED;
    }
    ex->in_handler = 1;
    int go = run_before(ex);
    ex->in_handler = 0;
    if (ex->state == WISP__X_DONE) {
        /* Answered by a hook: complete it as an asynchronous answer
         * (or free it, when the connection closed meanwhile). */
        wisp__http_response_done(ex);
        return 0;
    }
    if (!ex->conn) {
        if (go && !ex->res.on_abort)
            wisp__ex_free(ex->w, ex); /* nobody holds it */
        else
            wisp__http_orphaned(ex);
        return WISP_ECLOSED;
    }
    if (go) /* from here on an asynchronous handler like any other */
        ex->route->handler(&ex->req, res, ex->route->arg);
    return 0;
}

uint64_t wisp_req_start_ns(const wisp_req_t *req)
{
    const wisp__exchange *ex = wisp__ex_of_req(req);
    return ex->w->conf->mw ? ex->mw_t0_ns : 0;
}

int wisp_res_get_status(const wisp_res_t *res)
{
    return res->status;
}

uint64_t wisp_res_body_bytes(const wisp_res_t *res)
{
    return res->body_bytes;
}

wisp_str_t wisp_res_get_header(const wisp_res_t *res, const char *name)
{
    wisp_str_t none = {NULL, 0};
    if (!name)
        return none;
    size_t l = strlen(name);
    const char *p = res->hdrs, *end = res->hdrs + res->hdrs_len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        if ((size_t)(nl - p) >= l + 3 && p[l] == ':' &&
            strncasecmp(p, name, l) == 0) {
            const char *v = p + l + 1;
            while (v < nl && *v == ' ')
                v++;
            wisp_str_t s = {v, (size_t)(nl - 1 - v)}; /* before "\r\n" */
            return s;
        }
        p = nl + 1;
    }
    return none;
}
