/* wisp's own error answers, shaped by the application's callback
 * (wisp_server_on_error): the pre-routing errors written straight into
 * the connection's output, 404 and 405 sent on the exchange's response
 * (so that middleware headers stay, and a 405 keeps its Allow). */
#include <string.h>
#include <strings.h>

#include "http/http_int.h"
#include "http/token.h"
#include "server_int.h"

#define REPLY_CAP 4096

/* Fields at buf[0..hlen), the body at the end: buf[CAP - blen..CAP). */
struct wisp_error_reply {
    size_t hlen;
    size_t blen;
    int has_body;
    char ctype[128];
    char buf[REPLY_CAP];
};

int wisp_server_on_error(wisp_server_t *srv, wisp_error_cb cb, void *arg)
{
    if (!srv)
        return -EINVAL;
    if (srv->state != WISP__S_NEW)
        return WISP_ESTATE;
    srv->http.on_error = cb;
    srv->http.on_error_arg = arg;
    return 0;
}

static int refused_name(const char *n, size_t l)
{
    static const char *const names[] = {"date", "content-length",
                                        "transfer-encoding", "connection",
                                        "content-type", "allow"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == l && strncasecmp(names[i], n, l) == 0)
            return 1;
    return 0;
}

int wisp_error_reply_header(wisp_error_reply_t *r, const char *name,
                            const char *value)
{
    if (!r || !name || !value)
        return -EINVAL;
    size_t nl = strlen(name), vl = strlen(value);
    if (!nl || refused_name(name, nl))
        return -EINVAL;
    for (size_t i = 0; i < nl; i++)
        if (!wisp__is_tchar((unsigned char)name[i]))
            return -EINVAL;
    if (strpbrk(value, "\r\n"))
        return -EINVAL;
    if (r->hlen + nl + vl + 4 + r->blen > REPLY_CAP)
        return -ENOSPC;
    char *p = r->buf + r->hlen;
    memcpy(p, name, nl);
    p += nl;
    *p++ = ':';
    *p++ = ' ';
    memcpy(p, value, vl);
    p += vl;
    *p++ = '\r';
    *p++ = '\n';
    r->hlen = (size_t)(p - r->buf);
    return 0;
}

int wisp_error_reply_body(wisp_error_reply_t *r, const char *ctype,
                          const void *body, size_t len)
{
    if (!r || (!body && len))
        return -EINVAL;
    if (ctype && (strlen(ctype) >= sizeof r->ctype ||
                  strpbrk(ctype, "\r\n")))
        return -EINVAL;
    if (r->hlen + len > REPLY_CAP)
        return -ENOSPC;
    if (len)
        memmove(r->buf + REPLY_CAP - len, body, len);
    r->blen = len;
    r->has_body = 1;
    if (ctype)
        strcpy(r->ctype, ctype);
    else
        r->ctype[0] = 0;
    return 0;
}

/* Ask the application; 1 when it chose a body. */
static int ask_app(const wisp__http_conf *cf, wisp_req_t *req, int status,
                   wisp_error_reply_t *r)
{
    r->hlen = r->blen = 0;
    r->has_body = 0;
    r->ctype[0] = 0;
    cf->on_error(req, status, r, cf->on_error_arg);
    return r->has_body;
}

void wisp__error_out(wisp_conn_t *c, int status, int keep_open,
                     wisp_req_t *req)
{
    wisp__http_loop *w = wisp__hl(c);
    wisp_error_reply_t r;
    const char *reason = wisp__reason(status);
    if (!ask_app(w->conf, req, status, &r)) {
        strcpy(r.ctype, "text/plain");
        size_t rl = strlen(reason);
        memcpy(r.buf + REPLY_CAP - rl - 1, reason, rl);
        r.buf[REPLY_CAP - 1] = '\n';
        r.blen = rl + 1;
    }
    int head_req = req && wisp_req_method(req) == WISP_METHOD_HEAD;
    char head[512];
    wisp__date_refresh(w);
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d %s\r\n%.*s%.*s", status,
                     reason, (int)w->conf->server_hdr_len,
                     w->conf->server_hdr, (int)w->date_len, w->date_hdr);
    if (r.ctype[0])
        n += snprintf(head + n, sizeof head - (size_t)n,
                      "Content-Type: %s\r\n", r.ctype);
    n += snprintf(head + n, sizeof head - (size_t)n,
                  "Content-Length: %zu\r\n%s", r.blen,
                  keep_open ? "" : "Connection: close\r\n");
    if (n > 0 && (size_t)n < sizeof head &&
        wisp__out(c, head, (size_t)n) == 0 &&
        (!r.hlen || wisp__out(c, r.buf, r.hlen) == 0) &&
        wisp__out(c, "\r\n", 2) == 0 && r.blen && !head_req)
        wisp__out(c, r.buf + REPLY_CAP - r.blen, r.blen);
}

void wisp__res_error(wisp_res_t *res, int status, const char *text)
{
    wisp__exchange *ex = wisp__ex_of_res(res);
    const wisp__http_conf *cf = ex->w->conf;
    if (!cf->on_error) {
        wisp_res_send(res, status, "text/plain", text, strlen(text));
        return;
    }
    wisp_error_reply_t r;
    int body = ask_app(cf, &ex->req, status, &r);
    /* The fields, one "Name: value\r\n" at a time. */
    const char *p = r.buf, *end = r.buf + r.hlen;
    while (p < end) {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!colon || !nl)
            break;
        wisp_res_header_n(res, p, (size_t)(colon - p), colon + 2,
                          (size_t)(nl - 1 - (colon + 2)));
        p = nl + 1;
    }
    if (body)
        wisp_res_send(res, status, r.ctype[0] ? r.ctype : NULL,
                      r.buf + REPLY_CAP - r.blen, r.blen);
    else
        wisp_res_send(res, status, "text/plain", text, strlen(text));
}
