/* Response helpers: formatted and JSON bodies, entity tags and
 * If-None-Match (RFC 9110 §8.8.3, §13.1.2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wisp/reply.h"

int wisp_res_vprintf(wisp_res_t *res, int status, const char *ctype,
                     const char *fmt, va_list ap)
{
    if (!fmt)
        return -EINVAL;
    char small[1024];
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        va_end(again);
        return -EINVAL;
    }
    if ((size_t)n < sizeof small) {
        va_end(again);
        return wisp_res_send(res, status, ctype, small, (size_t)n);
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        va_end(again);
        return -ENOMEM;
    }
    vsnprintf(big, (size_t)n + 1, fmt, again);
    va_end(again);
    int r = wisp_res_send(res, status, ctype, big, (size_t)n);
    free(big);
    return r;
}

int wisp_res_printf(wisp_res_t *res, int status, const char *ctype,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = wisp_res_vprintf(res, status, ctype, fmt, ap);
    va_end(ap);
    return r;
}

int wisp_res_json(wisp_res_t *res, int status, wisp_json_writer_t *w)
{
    if (!w)
        return -EINVAL;
    size_t len = 0;
    int r = wisp_json_finish(w, NULL, &len);
    if (r < 0)
        return r;
    return wisp_res_send(res, status, "application/json", w->buf, len);
}

/* etagc = %x21 / %x23-7E / obs-text */
static int etagc(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c != 0x7f);
}

/* One entity-tag at p[0..n): its opaque part (inside the quotes), or
 * ptr NULL when it is not one. */
static wisp_str_t opaque(const char *p, size_t n)
{
    wisp_str_t none = {NULL, 0};
    if (n >= 2 && p[0] == 'W' && p[1] == '/') {
        p += 2;
        n -= 2;
    }
    if (n < 2 || p[0] != '"' || p[n - 1] != '"')
        return none;
    for (size_t i = 1; i + 1 < n; i++)
        if (!etagc((unsigned char)p[i]))
            return none;
    wisp_str_t s = {p + 1, n - 2};
    return s;
}

int wisp_etag_match(wisp_str_t h, const char *etag)
{
    if (!etag)
        return WISP_EPARSE;
    wisp_str_t mine = opaque(etag, strlen(etag));
    if (!mine.ptr || !h.ptr)
        return WISP_EPARSE;
    const char *p = h.ptr, *e = h.ptr + h.len;
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    const char *t = e;
    while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
        t--;
    if (t - p == 1 && *p == '*')
        return 1;
    int match = 0, any = 0;
    while (p < e) {
        while (p < e && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p >= e)
            break;
        /* An entity-tag runs to its closing quote (commas may sit inside
         * the quotes). */
        const char *s = p;
        if (e - p >= 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        if (p >= e || *p != '"')
            return WISP_EPARSE;
        const char *close = memchr(p + 1, '"', (size_t)(e - p - 1));
        if (!close)
            return WISP_EPARSE;
        wisp_str_t o = opaque(s, (size_t)(close + 1 - s));
        if (!o.ptr)
            return WISP_EPARSE;
        any = 1;
        if (o.len == mine.len && memcmp(o.ptr, mine.ptr, o.len) == 0)
            match = 1;
        p = close + 1;
        while (p < e && (*p == ' ' || *p == '\t'))
            p++;
        if (p < e && *p != ',')
            return WISP_EPARSE;
    }
    return any ? match : WISP_EPARSE;
}

void wisp_etag_of(const void *body, size_t len, char out[20])
{
    uint64_t h = 0xcbf29ce484222325ull;
    const unsigned char *b = body;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    h ^= (uint64_t)len;
    h *= 0x100000001b3ull;
    snprintf(out, 20, "\"%016llx\"", (unsigned long long)h);
}

int wisp_res_send_etag(wisp_res_t *res, const char *ctype, const void *body,
                       size_t len, const char *etag)
{
    char own[20];
    if (!etag) {
        if (!body && len)
            return -EINVAL;
        wisp_etag_of(body, len, own);
        etag = own;
    }
    if (!opaque(etag, strlen(etag)).ptr)
        return -EINVAL;
    int r = wisp_res_header(res, "ETag", etag);
    if (r < 0)
        return r;
    wisp_req_t *req = wisp_res_req(res);
    wisp_str_t inm = wisp_req_header(req, "If-None-Match");
    if (inm.ptr && wisp_etag_match(inm, etag) == 1) {
        wisp_method_t m = wisp_req_method(req);
        if (m == WISP_METHOD_GET || m == WISP_METHOD_HEAD)
            return wisp_res_send(res, 304, NULL, NULL, 0);
        return wisp_res_send(res, 412, "text/plain",
                             "Precondition Failed\n", 20);
    }
    return wisp_res_send(res, 200, ctype, body, len);
}
