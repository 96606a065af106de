/* Cookies (RFC 6265): the request's Cookie fields read leniently, the
 * Set-Cookie fields written strictly (wisp/cookie.h says which rules). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http/token.h"
#include "wisp/cookie.h"

#define COOKIE_MAX 4096

/* The next Cookie field of the request, from it->field on. */
static int next_field(wisp_cookie_iter_t *it)
{
    size_t n = wisp_req_header_count(it->req);
    while (it->field < n) {
        wisp_str_t name, value;
        wisp_req_header_at(it->req, it->field++, &name, &value);
        if (name.len == 6 && strncasecmp(name.ptr, "cookie", 6) == 0) {
            it->p = value.ptr;
            it->end = value.ptr + value.len;
            return 1;
        }
    }
    return 0;
}

void wisp_cookie_iter_init(wisp_cookie_iter_t *it, const wisp_req_t *req)
{
    it->req = req;
    it->field = 0;
    it->p = it->end = NULL;
}

static wisp_str_t trim(const char *a, const char *b)
{
    while (a < b && (*a == ' ' || *a == '\t'))
        a++;
    while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
        b--;
    wisp_str_t s = {a, (size_t)(b - a)};
    return s;
}

int wisp_cookie_next(wisp_cookie_iter_t *it, wisp_str_t *name,
                     wisp_str_t *value)
{
    for (;;) {
        if (it->p >= it->end && !next_field(it))
            break;
        const char *semi = memchr(it->p, ';', (size_t)(it->end - it->p));
        const char *pe = semi ? semi : it->end;
        const char *eq = memchr(it->p, '=', (size_t)(pe - it->p));
        const char *start = it->p;
        it->p = semi ? semi + 1 : it->end;
        if (!eq)
            continue; /* no '=': not a cookie-pair */
        wisp_str_t n = trim(start, eq), v = trim(eq + 1, pe);
        if (!n.len)
            continue;
        if (v.len >= 2 && v.ptr[0] == '"' && v.ptr[v.len - 1] == '"') {
            v.ptr++;
            v.len -= 2;
        }
        if (name)
            *name = n;
        if (value)
            *value = v;
        return 1;
    }
    if (name)
        *name = (wisp_str_t){NULL, 0};
    if (value)
        *value = (wisp_str_t){NULL, 0};
    return 0;
}

ssize_t wisp_req_cookie(const wisp_req_t *req, const char *name, char *out,
                        size_t cap)
{
    if (!name || (!out && cap))
        return -EINVAL;
    size_t nl = strlen(name);
    wisp_cookie_iter_t it;
    wisp_str_t n, v;
    wisp_cookie_iter_init(&it, req);
    while (wisp_cookie_next(&it, &n, &v)) {
        if (n.len != nl || memcmp(n.ptr, name, nl) != 0)
            continue;
        if (v.len + 1 > cap)
            return -ENOBUFS;
        memcpy(out, v.ptr, v.len);
        out[v.len] = 0;
        return (ssize_t)v.len;
    }
    return -ENOENT;
}

/* cookie-octet (RFC 6265 §4.1.1): %x21 / %x23-2B / %x2D-3A / %x3C-5B /
 * %x5D-7E. */
static int cookie_octet(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x2b) ||
           (c >= 0x2d && c <= 0x3a) || (c >= 0x3c && c <= 0x5b) ||
           (c >= 0x5d && c <= 0x7e);
}

static int valid_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!wisp__is_tchar((unsigned char)*s))
            return 0;
    return 1;
}

static int valid_value(const char *s)
{
    size_t n = strlen(s);
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    for (size_t i = 0; i < n; i++)
        if (!cookie_octet((unsigned char)s[i]))
            return 0;
    return 1;
}

/* av-octet of a path-value: any CHAR except CTLs or ';'. */
static int valid_path(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c >= 0x7f || c == ';')
            return 0;
    }
    return 1;
}

/* A host name (RFC 1034 §3.5 as RFC 6265 §4.1.2.3 asks; a leading '.' is
 * allowed and ignored by clients). */
static int valid_domain(const char *s)
{
    if (*s == '.')
        s++;
    if (!*s)
        return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '-' || c == '.';
        if (!ok || (c == '.' && (p[1] == '.' || p[1] == 0)))
            return 0;
    }
    return 1;
}

static const char *const mon[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const wday[7] = {"Sun", "Mon", "Tue", "Wed",
                                    "Thu", "Fri", "Sat"};

static int build(wisp_res_t *res, const char *name, const char *value,
                 const wisp_cookie_opts_t *o, int clear)
{
    static const wisp_cookie_opts_t none = {0};
    if (!o)
        o = &none;
    if (!res || !name || !value || !valid_name(name) || !valid_value(value))
        return -EINVAL;
    if ((!clear && o->max_age_s < 0) || (o->path && !valid_path(o->path)) ||
        (o->domain && !valid_domain(o->domain)) ||
        (unsigned)o->same_site > WISP_SAME_SITE_NONE)
        return -EINVAL;
    if (o->same_site == WISP_SAME_SITE_NONE && !o->secure)
        return -EINVAL;
    if (strncmp(name, "__Secure-", 9) == 0 && !o->secure)
        return -EINVAL;
    if (strncmp(name, "__Host-", 7) == 0 &&
        (!o->secure || o->domain || !o->path || strcmp(o->path, "/") != 0))
        return -EINVAL;
    size_t nl = strlen(name), vl = strlen(value);
    if (nl + vl > COOKIE_MAX)
        return -ENOSPC;
    char buf[COOKIE_MAX + 1024];
    size_t n = (size_t)snprintf(buf, sizeof buf, "%s=%s", name, value);
    int64_t max_age = clear ? 0 : o->max_age_s;
    time_t expires = clear ? 1 : o->expires;
    if (clear)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "; Max-Age=0");
    else if (max_age > 0)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "; Max-Age=%lld",
                              (long long)max_age);
    if (expires > 0) {
        struct tm tm;
        gmtime_r(&expires, &tm);
        n += (size_t)snprintf(buf + n, sizeof buf - n,
                              "; Expires=%s, %02d %s %04d %02d:%02d:%02d GMT",
                              wday[tm.tm_wday], tm.tm_mday, mon[tm.tm_mon],
                              tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                              tm.tm_sec);
    }
    /* Path and Domain are bounded by the 8 KiB header room only. */
    if (o->path) {
        if (strlen(o->path) > 1024)
            return -EINVAL;
        n += (size_t)snprintf(buf + n, sizeof buf - n, "; Path=%s", o->path);
    }
    if (o->domain) {
        if (strlen(o->domain) > 253)
            return -EINVAL;
        n += (size_t)snprintf(buf + n, sizeof buf - n, "; Domain=%s",
                              o->domain);
    }
    if (o->secure)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "; Secure");
    if (o->http_only)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "; HttpOnly");
    static const char *const ss[] = {NULL, "Lax", "Strict", "None"};
    if (o->same_site)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "; SameSite=%s",
                              ss[o->same_site]);
    if (n >= sizeof buf)
        return -ENOSPC;
    return wisp_res_header_n(res, "Set-Cookie", 10, buf, n);
}

int wisp_res_set_cookie(wisp_res_t *res, const char *name, const char *value,
                        const wisp_cookie_opts_t *opts)
{
    return build(res, name, value, opts, 0);
}

int wisp_res_clear_cookie(wisp_res_t *res, const char *name,
                          const wisp_cookie_opts_t *opts)
{
    return build(res, name, "", opts, 1);
}
