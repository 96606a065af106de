/* The response API: heads written straight into the loop's cork buffer,
 * bodies copied, referenced or sent from files, chunked streaming, and
 * the hand-over of a connection after a 101 head. */
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http/http_int.h"
#include "http/token.h"

typedef struct status_line {
    const char *text;
    uint8_t len;
} status_line;

#define SL(s) {s, sizeof(s) - 1}

/* The common status lines, pre-formatted. */
static const status_line common_lines[] = {
    SL("HTTP/1.1 200 OK\r\n"),
    SL("HTTP/1.1 204 No Content\r\n"),
    SL("HTTP/1.1 206 Partial Content\r\n"),
    SL("HTTP/1.1 304 Not Modified\r\n"),
    SL("HTTP/1.1 404 Not Found\r\n"),
};

const char *wisp__reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: break;
    }
    if (status < 200) return "Informational";
    if (status < 300) return "Success";
    if (status < 400) return "Redirection";
    if (status < 500) return "Client Error";
    return "Server Error";
}

int wisp__status_code_for(int err)
{
    switch (err) {
    case WISP_ETOOLONG_LINE: return 414;
    case WISP_ETOOLONG_HEAD:
    case WISP_ETOOMANY_HEADERS: return 431;
    case WISP_EMETHOD: return 501;
    case WISP_EVERSION: return 505;
    case WISP_EBODY_TOO_LARGE: return 413;
    case WISP_EEXPECT: return 417;
    case WISP_ECODING: return 501;
    default: return 400;
    }
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUTLIT(p, lit) put((p), (lit), sizeof(lit) - 1)

static char *put_u64(char *p, uint64_t v)
{
    if (v < 10) {
        *p++ = (char)('0' + v);
        return p;
    }
    if (v < 100) {
        *p++ = (char)('0' + v / 10);
        *p++ = (char)('0' + v % 10);
        return p;
    }
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

static char *put_status(char *p, int status)
{
    int idx = -1;
    switch (status) {
    case 200: idx = 0; break;
    case 204: idx = 1; break;
    case 206: idx = 2; break;
    case 304: idx = 3; break;
    case 404: idx = 4; break;
    default: break;
    }
    if (idx >= 0)
        return put(p, common_lines[idx].text, common_lines[idx].len);
    const char *reason = wisp__reason(status);
    p = PUTLIT(p, "HTTP/1.1 ");
    *p++ = (char)('0' + status / 100);
    *p++ = (char)('0' + status / 10 % 10);
    *p++ = (char)('0' + status % 10);
    *p++ = ' ';
    p = put(p, reason, strlen(reason));
    return PUTLIT(p, "\r\n");
}

static int no_body_status(int status)
{
    return status < 200 || status == 204 || status == 304;
}

/* Upper bound of the head's size, without the added fields. */
#define HEAD_FIXED 256

/* 1 when the handler added a field `name` (length l) with
 * wisp_res_header: then it wins over wisp's own (http.h). Only scanned
 * when fields were added. */
static int added_field(const struct wisp_res *res, const char *name,
                       size_t l)
{
    const char *p = res->hdrs, *end = res->hdrs + res->hdrs_len;
    while (p < end) {
        if ((size_t)(end - p) > l && p[l] == ':' &&
            strncasecmp(p, name, l) == 0)
            return 1;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        p = nl + 1;
    }
    return 0;
}

static inline int same_bytes(const char *a, const char *b, size_t n)
{
    if (n >= 8 && n <= 16) {
        uint64_t x, y, u, v;
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        memcpy(&u, a + n - 8, 8);
        memcpy(&v, b + n - 8, 8);
        return x == y && u == v;
    }
    return memcmp(a, b, n) == 0;
}

/* Rebuild the cached head of a plain 200 (http_int.h) for Content-Type
 * `ctype`; NULL for a type too long to cache. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static const char *ct_head_build(wisp__http_loop *w, const char *ctype,
                                 size_t clen)
{
    if (clen > sizeof w->ct_type)
        return NULL;
    static const char ct[] = "Content-Type: ";
    static const char cl[] = "\r\nContent-Length: ";
    char *p = w->ct_head;
    p = put(p, w->head200, w->head200_len);
    p = put(p, ct, sizeof ct - 1);
    p = put(p, ctype, clen);
    p = put(p, cl, sizeof cl - 1);
    memcpy(w->ct_type, ctype, clen);
    w->ct_type_len = (uint32_t)clen;
    w->ct_head_len = (uint32_t)(p - w->ct_head);
    return w->ct_head;
}

static char *write_head_any(wisp__exchange *ex, char *p, int64_t cl,
                            const char *ctype, size_t ctype_len);

/* Write the head into `p` (room for head_size(ex, ctype) bytes). The
 * usual response, a 200 of known length with a Content-Type and no
 * added fields to an HTTP/1.1 request the connection stays open after,
 * is written here: the cached prefix for the last type used (rebuilt
 * when the type differs or the Date has changed), the length and the
 * empty line, the same bytes as write_head_any writes for it. (Inline
 * in wisp_res_send, it made that too big to be inlined in turn.) */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static char *write_head(wisp__exchange *ex, char *p, int64_t cl,
                               const char *ctype, size_t ctype_len)
{
    wisp__http_loop *w = ex->w;
    struct wisp_res *res = &ex->res;
    if (res->status == 200 && ctype && cl >= 0 && !res->hdrs_len &&
        ex->keep_alive && !w->stopping && ex->req.rh.minor) {
        const char *h = w->ct_head;
        if (!w->ct_head_len || ctype_len != w->ct_type_len ||
            !same_bytes(ctype, w->ct_type, ctype_len))
            h = ct_head_build(w, ctype, ctype_len);
        if (h) {
            wisp__stat_status(&ex->conn->net->stats, 200);
            p = put(p, h, w->ct_head_len);
            p = put_u64(p, (uint64_t)cl);
            p = put(p, "\r\n\r\n", 4);
            res->flags |= WISP__RS_HEAD_SENT;
            return p;
        }
    }
    return write_head_any(ex, p, cl, ctype, ctype_len);
}

static char *write_head_any(wisp__exchange *ex, char *p, int64_t cl,
                            const char *ctype, size_t ctype_len)
{
    wisp__http_loop *w = ex->w;
    const wisp__http_conf *srv = w->conf;
    struct wisp_res *res = &ex->res;
    int status = res->status;
    int own_server = 0;
    wisp__stat_status(&ex->conn->net->stats, status);
    if (res->hdrs_len) {
        own_server = srv->server_hdr_len && added_field(res, "server", 6);
        if (ctype && added_field(res, "content-type", 12))
            ctype = NULL;
    }
    if (status == 200 && !own_server) {
        p = put(p, w->head200, w->head200_len);
    } else {
        p = put_status(p, status);
        if (!own_server)
            p = put(p, srv->server_hdr, srv->server_hdr_len);
        p = put(p, w->date_hdr, w->date_len);
    }
    if (ctype) {
        p = PUTLIT(p, "Content-Type: ");
        p = put(p, ctype, ctype_len);
        p = PUTLIT(p, "\r\n");
    }
    if (no_body_status(status)) {
        res->flags |= WISP__RS_NOBODY;
    } else if (cl >= 0) {
        p = PUTLIT(p, "Content-Length: ");
        p = put_u64(p, (uint64_t)cl);
        p = PUTLIT(p, "\r\n");
    } else if (ex->req.rh.minor) {
        if (!(res->flags & WISP__RS_HEAD_REQ))
            res->flags |= WISP__RS_CHUNKED;
        p = PUTLIT(p, "Transfer-Encoding: chunked\r\n");
    } else {
        res->flags |= WISP__RS_UNTIL_CLOSE;
        ex->keep_alive = 0;
    }
    if (!ex->keep_alive || w->stopping) {
        ex->keep_alive = 0;
        p = PUTLIT(p, "Connection: close\r\n");
    } else if (ex->req.rh.minor == 0) {
        p = PUTLIT(p, "Connection: keep-alive\r\n");
    }
    if (res->hdrs_len)
        p = put(p, res->hdrs, res->hdrs_len);
    p = PUTLIT(p, "\r\n");
    res->flags |= WISP__RS_HEAD_SENT;
    return p;
}

/* Write the head into the cork. Returns 0 or WISP_ECLOSED. */
int wisp__res_head(wisp__exchange *ex, int64_t cl, const char *ctype)
{
    wisp_conn_t *c = ex->conn;
    size_t clen = ctype ? strlen(ctype) : 0;
    size_t max = HEAD_FIXED + clen + ex->res.hdrs_len;
    if (ex->req.rh.method == WISP_METHOD_HEAD)
        ex->res.flags |= WISP__RS_HEAD_REQ;
    wisp__date_refresh(ex->w);
    char *p = wisp__out_reserve(c, max);
    if (!p)
        return WISP_ECLOSED;
    char *e = write_head(ex, p, cl, ctype, clen);
    wisp__out_commit(c, (size_t)(e - p));
    return 0;
}

/* Common checks of every call; returns 0 when the response may be used.
 * `fn` is the public function, for the ownership check's message. */
#define usable(ex) usable_as((ex), __func__)
static int usable_as(wisp__exchange *ex, const char *fn)
{
    WISP__ASSERT_OWNER_AS(ex->w->loop, fn);
    if (ex->state == WISP__X_DONE)
        return WISP_ESTATE;
    if (!ex->conn || ex->state == WISP__X_ORPHAN)
        return WISP_ECLOSED;
    return 0;
}

/* A terminal call on an orphan: free it and say so. */
static int end_orphan(wisp__exchange *ex)
{
    wisp__http_response_done(ex);
    return WISP_ECLOSED;
}

int wisp_res_status(wisp_res_t *res, int status)
{
    wisp__exchange *ex = wisp__ex_of_res(res);
    int r = usable(ex);
    if (r)
        return r;
    if (status < 200 || status > 999)
        return -EINVAL;
    if (res->flags & WISP__RS_HEAD_SENT)
        return WISP_ESTATE;
    res->status = status;
    return 0;
}

static int reserved_name(const char *n, size_t l)
{
    static const char *const names[] = {"date", "content-length",
                                        "transfer-encoding", "connection"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i]) == l && strncasecmp(names[i], n, l) == 0)
            return 1;
    return 0;
}

#define MAX_ADDED_HEADERS (8 * 1024)

int wisp_res_header_n(wisp_res_t *res, const char *name, size_t nl,
                      const char *value, size_t vl)
{
    wisp__exchange *ex = wisp__ex_of_res(res);
    int r = usable(ex);
    if (r)
        return r;
    if (res->flags & WISP__RS_HEAD_SENT)
        return WISP_ESTATE;
    if (!name || !nl || (!value && vl))
        return -EINVAL;
    for (size_t i = 0; i < nl; i++)
        if (!wisp__is_tchar((unsigned char)name[i]))
            return -EINVAL;
    for (size_t i = 0; i < vl; i++) {
        unsigned char ch = (unsigned char)value[i];
        if (ch == '\r' || ch == '\n' || ch == 0)
            return -EINVAL;
    }
    if (reserved_name(name, nl))
        return -EINVAL;
    size_t need = nl + vl + 4;
    if (res->hdrs_len + need > MAX_ADDED_HEADERS)
        return -ENOSPC;
    if (res->hdrs_len + need > res->hdrs_cap) {
        uint32_t cap = MAX_ADDED_HEADERS;
        char *nb;
        if (res->hdrs == res->hdrs_inline) {
            nb = malloc(cap);
            if (nb)
                memcpy(nb, res->hdrs, res->hdrs_len);
        } else {
            nb = realloc(res->hdrs, cap);
        }
        if (!nb)
            return -ENOMEM;
        res->hdrs = nb;
        res->hdrs_cap = cap;
    }
    char *p = res->hdrs + res->hdrs_len;
    p = put(p, name, nl);
    *p++ = ':';
    *p++ = ' ';
    p = put(p, value, vl);
    *p++ = '\r';
    *p++ = '\n';
    res->hdrs_len = (uint32_t)(p - res->hdrs);
    return 0;
}

int wisp_res_header(wisp_res_t *res, const char *name, const char *value)
{
    if (!name || !value)
        return -EINVAL;
    return wisp_res_header_n(res, name, strlen(name), value, strlen(value));
}

/* wisp_res_send's rare cases, out of its way: the head already sent, an
 * after-hook calling it, the after-hooks due. Returns 0 to go on. */
__attribute__((noinline, cold)) static int send_gate(wisp__exchange *ex,
                                                     int status,
                                                     const void *body,
                                                     size_t len)
{
    struct wisp_res *res = &ex->res;
    if (res->flags & (WISP__RS_HEAD_SENT | WISP__RS_MW_IN_AFTER))
        return WISP_ESTATE;
    if (status < 200 || status > 999 || (!body && len))
        return -EINVAL;
    res->status = status;
    wisp__mw_after(ex); /* may change the status, add headers */
    return 0;
}

int wisp_res_send(wisp_res_t *res, int status, const char *ctype,
                  const void *body, size_t len)
{
    wisp__exchange *ex = wisp__ex_of_res(res);
    int r = usable(ex);
    if (r)
        return r == WISP_ECLOSED ? end_orphan(ex) : r;
    /* One test covers the head already sent and the after-hooks due. */
    if (res->flags & (WISP__RS_HEAD_SENT | WISP__RS_MW_AFTER |
                      WISP__RS_MW_IN_AFTER)) {
        r = send_gate(ex, status, body, len);
        if (r)
            return r;
        status = res->status; /* the after-hooks may have changed it */
    }
    if (status < 200 || status > 999 || (!body && len))
        return -EINVAL;
    res->status = status;
    ex->in_call = 1; /* until wisp__http_response_done */
    wisp_conn_t *c = ex->conn;
    if (ex->req.rh.method == WISP_METHOD_HEAD)
        res->flags |= WISP__RS_HEAD_REQ;
    int nobody = no_body_status(status);
    size_t send_len = (nobody || (res->flags & WISP__RS_HEAD_REQ)) ? 0 : len;
    size_t clen = ctype ? strlen(ctype) : 0;
    size_t max = HEAD_FIXED + clen + res->hdrs_len;
    wisp__date_refresh(ex->w);
    /* Fast path: head and body in one reservation of the cork. */
    char *p = wisp__out_reserve(c, max + send_len);
    if (p) {
        char *e = write_head(ex, p, nobody ? -1 : (int64_t)len, ctype, clen);
        if (send_len) {
            memcpy(e, body, send_len);
            e += send_len;
        }
        wisp__out_commit(c, (size_t)(e - p));
    } else {
        if (c->state == WISP__C_CLOSED)
            return end_orphan(ex);
        p = wisp__out_reserve(c, max);
        if (!p)
            return end_orphan(ex);
        char *e = write_head(ex, p, nobody ? -1 : (int64_t)len, ctype, clen);
        wisp__out_commit(c, (size_t)(e - p));
        if (send_len && wisp__out(c, body, send_len) < 0)
            return end_orphan(ex);
    }
    res->body_bytes = send_len;
    wisp__http_response_done(ex);
    return 0;
}

int wisp_res_send_ref(wisp_res_t *res, int status, const char *ctype,
                      const void *body, size_t len, wisp_free_cb done,
                      void *arg)
{
    wisp__exchange *ex = wisp__ex_of_res(res);
    int r = usable(ex);
    if (!r && (res->flags & (WISP__RS_HEAD_SENT | WISP__RS_MW_IN_AFTER)))
        r = WISP_ESTATE;
    if (!r && (status < 200 || status > 999 || (!body && len)))
        r = -EINVAL;
    if (r) {
        if (done)
            done(arg);
        return r == WISP_ECLOSED ? end_orphan(ex) : r;
    }
    res->status = status;
    if (res->flags & WISP__RS_MW_AFTER) {
        wisp__mw_after(ex);
        status = res->status;
    }
    ex->in_call = 1;
    int nobody = no_body_status(status);
    if (wisp__res_head(ex, nobody ? -1 : (int64_t)len, ctype) < 0) {
        if (done)
            done(arg);
        return end_orphan(ex);
    }
    if (!nobody && !(res->flags & WISP__RS_HEAD_REQ) && len) {
        res->body_bytes = len;
        if (wisp__out_ref(ex->conn, body, len, done, arg) < 0)
            return end_orphan(ex);
    } else if (done) {
        done(arg);
    }
    wisp__http_response_done(ex);
    return 0;
}

int wisp_res_content_length(wisp_res_t *res, uint64_t len)
{
    wisp__exchange *ex = wisp__ex_of_res(res);
    int r = usable(ex);
    if (r)
        return r;
    if (res->flags & WISP__RS_HEAD_SENT)
        return WISP_ESTATE;
    res->flags |= WISP__RS_HAS_CL;
    res->cl_left = len;
    return 0;
}

static int ensure_head(wisp__exchange *ex)
{
    struct wisp_res *res = &ex->res;
    if (res->flags & WISP__RS_HEAD_SENT)
        return 0;
    if (res->flags & WISP__RS_MW_AFTER)
        wisp__mw_after(ex);
    int64_t cl = (res->flags & WISP__RS_HAS_CL) ? (int64_t)res->cl_left : -1;
    return wisp__res_head(ex, cl, NULL);
}

int wisp_res_write(wisp_res_t *res, const void *data, size_t len)
{
    wisp__exchange *ex = wisp__ex_of_res(res);
    int r = usable(ex);
    if (r)
        return r;
    if (res->flags & WISP__RS_MW_IN_AFTER)
        return WISP_ESTATE;
    if ((res->flags & WISP__RS_HAS_CL) && len > res->cl_left)
        return -EINVAL;
    if (ensure_head(ex) < 0)
        return WISP_ECLOSED;
    if (!len)
        return 0;
    if (res->flags & WISP__RS_HAS_CL)
        res->cl_left -= len;
    res->body_bytes += len;
    if (res->flags & (WISP__RS_HEAD_REQ | WISP__RS_NOBODY))
        return 0;
    wisp_conn_t *c = ex->conn;
    if (res->flags & WISP__RS_CHUNKED) {
        char hdr[24];
        int n = snprintf(hdr, sizeof hdr, "%zx\r\n", len);
        if (wisp__out(c, hdr, (size_t)n) < 0 || wisp__out(c, data, len) < 0 ||
            wisp__out(c, "\r\n", 2) < 0)
            return WISP_ECLOSED;
        return 0;
    }
    return wisp__out(c, data, len) < 0 ? WISP_ECLOSED : 0;
}

int wisp_res_end(wisp_res_t *res)
{
    wisp__exchange *ex = wisp__ex_of_res(res);
    int r = usable(ex);
    if (r)
        return r == WISP_ECLOSED ? end_orphan(ex) : r;
    if (res->flags & WISP__RS_MW_IN_AFTER)
        return WISP_ESTATE;
    ex->in_call = 1;
    if (ensure_head(ex) < 0)
        return end_orphan(ex);
    r = 0;
    if ((res->flags & WISP__RS_CHUNKED) &&
        wisp__out(ex->conn, "0\r\n\r\n", 5) < 0)
        return end_orphan(ex);
    if ((res->flags & WISP__RS_HAS_CL) && res->cl_left &&
        !(res->flags & WISP__RS_HEAD_REQ)) {
        /* Fewer bytes than declared: the framing is broken, so the
         * connection must close after what was sent. */
        ex->keep_alive = 0;
        r = -EINVAL;
    }
    wisp__http_response_done(ex);
    return r;
}

size_t wisp_res_buffered(const wisp_res_t *res)
{
    wisp__exchange *ex = wisp__ex_of_res(res);
    return ex->conn ? (size_t)wisp__pending_out(ex->conn) : 0;
}

void wisp_res_on_drain(wisp_res_t *res, wisp_res_cb cb, void *arg)
{
    res->on_drain = cb;
    res->drain_arg = arg;
    wisp_conn_t *c = wisp__ex_of_res(res)->conn;
    if (cb && c)
        c->want_drain = 1; /* also after a write the kernel takes whole */
}

void wisp_res_on_abort(wisp_res_t *res, wisp_res_cb cb, void *arg)
{
    res->on_abort = cb;
    res->abort_arg = arg;
}

int wisp_res_sendfile(wisp_res_t *res, int status, const char *ctype, int fd,
                      uint64_t offset, uint64_t len)
{
    wisp__exchange *ex = wisp__ex_of_res(res);
    int r = usable(ex);
    if (!r && (res->flags & (WISP__RS_HEAD_SENT | WISP__RS_MW_IN_AFTER)))
        r = WISP_ESTATE;
    if (!r && (status < 200 || status > 999))
        r = -EINVAL;
    if (r) {
        close(fd);
        return r == WISP_ECLOSED ? end_orphan(ex) : r;
    }
    res->status = status;
    if (res->flags & WISP__RS_MW_AFTER)
        wisp__mw_after(ex);
    ex->in_call = 1;
    if (wisp__res_head(ex, (int64_t)len, ctype) < 0) {
        close(fd);
        return end_orphan(ex);
    }
    if ((res->flags & (WISP__RS_HEAD_REQ | WISP__RS_NOBODY)) || !len) {
        close(fd);
    } else {
        res->body_bytes = len;
        if (wisp__out_file(ex->conn, fd, offset, len) < 0) {
            /* The head promised `len` bytes: close after it. */
            ex->keep_alive = 0;
            return end_orphan(ex);
        }
    }
    wisp__http_response_done(ex);
    return 0;
}

int wisp_res_upgrade(wisp_res_t *res, const wisp_conn_handlers_t *h,
                     void *arg)
{
    wisp__exchange *ex = wisp__ex_of_res(res);
    int r = usable(ex);
    if (r)
        return r;
    if (!h || !h->on_data || !h->on_close)
        return -EINVAL;
    wisp_conn_t *c = ex->conn;
    if ((res->flags & (WISP__RS_HEAD_SENT | WISP__RS_MW_IN_AFTER)) ||
        c->pstate != WISP__H_PENDING || ex->body_state != WISP__B_DONE)
        return WISP_ESTATE;
    if (res->flags & WISP__RS_MW_AFTER) {
        res->status = 101;
        wisp__mw_after(ex); /* headers only: the status stays 101 */
        if (!ex->conn || c->state != WISP__C_OPEN)
            return WISP_ECLOSED;
    }
    wisp__http_loop *w = ex->w;
    size_t max = HEAD_FIXED + res->hdrs_len;
    wisp__date_refresh(w);
    char *p = wisp__out_reserve(c, max);
    if (!p)
        return WISP_ECLOSED;
    char *s = p;
    p = PUTLIT(p, "HTTP/1.1 101 Switching Protocols\r\n");
    if (!res->hdrs_len || !added_field(res, "server", 6))
        p = put(p, w->conf->server_hdr, w->conf->server_hdr_len);
    p = put(p, w->date_hdr, w->date_len);
    p = PUTLIT(p, "Connection: Upgrade\r\n");
    if (res->hdrs_len)
        p = put(p, res->hdrs, res->hdrs_len);
    p = PUTLIT(p, "\r\n");
    wisp__out_commit(c, (size_t)(p - s));
    res->status = 101;
    wisp__stat_status(&c->net->stats, 101);
    res->flags |= WISP__RS_HEAD_SENT;
    wisp__http_upgraded(c, ex, h, arg);
    return 0;
}

wisp_loop_t *wisp_res_loop(const wisp_res_t *res)
{
    return wisp__ex_of_res(res)->w->loop;
}

wisp_req_t *wisp_res_req(wisp_res_t *res)
{
    return &wisp__ex_of_res(res)->req;
}
