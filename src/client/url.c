/* URLs the client accepts: http://host[:port]/target and
 * http+unix://percent-encoded-path/target. */
#include <errno.h>
#include <string.h>

#include "client/client_int.h"

static int hexv(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* A request target: visible ASCII only (RFC 9112 §3.2; the server
 * checks the finer grammar, we refuse what could split the line). */
static int target_ok(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c <= 0x20 || c >= 0x7f || c == '#')
            return 0;
    }
    return 1;
}

static int parse_unix(const char *p, wisp__url *u)
{
    const char *e = strchr(p, '/');
    if (!e)
        e = p + strlen(p);
    size_t o = 0;
    for (const char *q = p; q < e; q++) {
        int c = (unsigned char)*q;
        if (c == '%') {
            int h = hexv(q[1]), l = h < 0 ? -1 : hexv(q[2]);
            if (l < 0)
                return -EINVAL;
            c = h * 16 + l;
            q += 2;
        }
        if (c == 0 || o + 1 >= sizeof ((struct sockaddr_un *)0)->sun_path)
            return -EINVAL;
        u->host[o++] = (char)c;
    }
    if (o == 0)
        return -EINVAL;
    u->host[o] = 0;
    u->is_unix = 1;
    strcpy(u->hosthdr, "localhost");
    u->target = *e ? e : "/";
    return 0;
}

int wisp__url_parse(const char *url, wisp__url *u)
{
    memset(u, 0, sizeof *u);
    if (!url)
        return -EINVAL;
    const char *p;
    int r;
    if (strncmp(url, "http+unix://", 12) == 0) {
        r = parse_unix(url + 12, u);
    } else if (strncmp(url, "http://", 7) == 0) {
        p = url + 7;
        const char *hs = p, *he;
        if (*p == '[') {
            he = strchr(p, ']');
            if (!he)
                return -EINVAL;
            hs = p + 1;
            p = he + 1;
        } else {
            while (*p && *p != ':' && *p != '/' && *p != '?')
                p++;
            he = p;
        }
        size_t hl = (size_t)(he - hs);
        if (hl == 0 || hl >= sizeof u->host || !target_ok(hs, hl) ||
            memchr(hs, '@', hl))
            return -EINVAL;
        memcpy(u->host, hs, hl);
        u->host[hl] = 0;
        u->port = 80;
        const char *ps = p;
        if (*p == ':') {
            unsigned long port = 0;
            p++;
            if (*p < '0' || *p > '9')
                return -EINVAL;
            while (*p >= '0' && *p <= '9') {
                port = port * 10 + (unsigned long)(*p++ - '0');
                if (port > 65535)
                    return -EINVAL;
            }
            if (port == 0)
                return -EINVAL;
            u->port = (uint16_t)port;
        }
        if (*p && *p != '/' && *p != '?')
            return -EINVAL;
        /* Host: as written in the URL (brackets and port included). */
        size_t al = (size_t)(p - url) - 7;
        (void)ps;
        memcpy(u->hosthdr, url + 7, al);
        u->hosthdr[al] = 0;
        u->target = *p == '/' ? p : NULL;
        if (*p == '?') {
            /* "http://h?q": the path is empty, the target "/?q". */
            u->target = p;
        }
        if (!*p)
            u->target = "/";
        r = 0;
    } else {
        return -EINVAL;
    }
    if (r < 0)
        return r;
    u->target_len = strlen(u->target);
    if (!target_ok(u->target, u->target_len))
        return -EINVAL;
    return 0;
}
