/* The request API: getters over the parsed head (pointers into wisp's
 * buffers), query lookup, route parameters, streamed bodies. */
#include <arpa/inet.h>
#include <strings.h>
#include <string.h>

#include "http/http_int.h"

static const char *const method_names[WISP_METHOD_COUNT] = {
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE",
    "PATCH",
};

const char *wisp_method_name(wisp_method_t m)
{
    if (m == WISP_METHOD_ANY)
        return "ANY";
    if ((unsigned)m >= WISP_METHOD_COUNT)
        return NULL;
    return method_names[m];
}

static wisp_str_t mkstr(const char *p, size_t n)
{
    wisp_str_t s = {p, n};
    return s;
}

wisp_method_t wisp_req_method(const wisp_req_t *req)
{
    return (wisp_method_t)req->rh.method;
}

int wisp_req_version_minor(const wisp_req_t *req)
{
    return req->rh.minor;
}

wisp_str_t wisp_req_target(const wisp_req_t *req)
{
    return mkstr(req->rh.target, req->rh.target_len);
}

wisp_str_t wisp_req_path(const wisp_req_t *req)
{
    return mkstr(req->rh.path, req->rh.path_len);
}

wisp_str_t wisp_req_query(const wisp_req_t *req)
{
    return mkstr(req->rh.query, req->rh.query ? req->rh.query_len : 0);
}

ssize_t wisp_req_query_get(const wisp_req_t *req, const char *key, char *out,
                           size_t cap)
{
    const char *q = req->rh.query;
    if (!q || !key)
        return -ENOENT;
    size_t klen = strlen(key);
    const char *end = q + req->rh.query_len;
    while (q < end) {
        const char *amp = memchr(q, '&', (size_t)(end - q));
        const char *pe = amp ? amp : end;
        const char *eq = memchr(q, '=', (size_t)(pe - q));
        const char *ke = eq ? eq : pe;
        if ((size_t)(ke - q) == klen && memcmp(q, key, klen) == 0) {
            const char *v = eq ? eq + 1 : pe;
            size_t vlen = (size_t)(pe - v);
            /* Decode into a bounded scratch copy, then copy out. */
            char tmp[1024];
            char *buf = vlen <= sizeof tmp ? tmp : malloc(vlen);
            if (!buf)
                return -ENOMEM;
            ssize_t n = wisp__pct_decode_query(buf, v, vlen);
            if (n >= 0 && out && cap) {
                size_t c = (size_t)n < cap - 1 ? (size_t)n : cap - 1;
                memcpy(out, buf, c);
                out[c] = 0;
            }
            if (buf != tmp)
                free(buf);
            return n;
        }
        q = pe + 1;
    }
    return -ENOENT;
}

wisp_str_t wisp_req_param(const wisp_req_t *req, const char *name)
{
    size_t l = strlen(name);
    for (uint32_t i = 0; i < req->match.nparams; i++) {
        const wisp__param *p = &req->match.params[i];
        if (p->name_len == l && memcmp(p->name, name, l) == 0)
            return mkstr(p->value, p->value_len);
    }
    return mkstr(NULL, 0);
}

wisp_str_t wisp_req_header(const wisp_req_t *req, const char *name)
{
    size_t l = strlen(name);
    const wisp__header *h = req->rh.headers;
    for (uint32_t i = 0; i < req->rh.num_headers; i++) {
        if (h[i].name_len == l && strncasecmp(h[i].name, name, l) == 0)
            return mkstr(h[i].value, h[i].value_len);
    }
    return mkstr(NULL, 0);
}

size_t wisp_req_header_count(const wisp_req_t *req)
{
    return req->rh.num_headers;
}

int wisp_req_header_at(const wisp_req_t *req, size_t i, wisp_str_t *name,
                       wisp_str_t *value)
{
    if (i >= req->rh.num_headers)
        return -ERANGE;
    const wisp__header *h = &req->rh.headers[i];
    if (name)
        *name = mkstr(h->name, h->name_len);
    if (value)
        *value = mkstr(h->value, h->value_len);
    return 0;
}

wisp_str_t wisp_req_body(const wisp_req_t *req)
{
    const wisp__exchange *ex = wisp__ex_of_req(req);
    if (ex->route && ex->route->stream_body)
        return mkstr(NULL, 0);
    return mkstr(req->body ? req->body : "", (size_t)req->body_len);
}

int64_t wisp_req_content_length(const wisp_req_t *req)
{
    return req->rh.content_length;
}

int wisp_req_on_body(wisp_req_t *req, wisp_body_data_cb on_data,
                     wisp_body_end_cb on_end, void *arg)
{
    wisp__exchange *ex = wisp__ex_of_req(req);
    WISP__ASSERT_OWNER(ex->w->loop);
    if (!ex->route || !ex->route->stream_body || !ex->in_handler)
        return WISP_ESTATE;
    req->on_data = on_data;
    req->on_end = on_end;
    req->body_arg = arg;
    return 0;
}

const char *wisp_req_peer(const wisp_req_t *req)
{
    static __thread char buf[INET6_ADDRSTRLEN];
    const wisp__exchange *ex = wisp__ex_of_req(req);
    const wisp_conn_t *c = ex->conn;
    if (!c)
        return "-";
    if (c->peer_family == AF_INET)
        return inet_ntop(AF_INET, c->peer_addr, buf, sizeof buf);
    if (c->peer_family == AF_INET6)
        return inet_ntop(AF_INET6, c->peer_addr, buf, sizeof buf);
    return "unix";
}

int wisp_req_keep_alive(const wisp_req_t *req)
{
    return wisp__ex_of_req(req)->keep_alive;
}

wisp_loop_t *wisp_req_loop(const wisp_req_t *req)
{
    return wisp__ex_of_req(req)->w->loop;
}
