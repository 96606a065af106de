/* The client behind trusted proxies: X-Forwarded-For and Forwarded
 * (RFC 7239), believed only when the connection's peer is a configured
 * trusted proxy, and then only up to the right-most untrusted entry
 * (each proxy appends the address it received from, so entries left of
 * the first untrusted hop could be forged by the client). */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "http/http_int.h"
#include "net/proxy.h"
#include "wisp/http.h"

/* An address as text from one list element: "1.2.3.4", "1.2.3.4:80",
 * "[::1]:80", "::1", optionally quoted (Forwarded). 0 with family and
 * bytes filled, or -1. */
static int elem_addr(const char *s, size_t n, int *family, uint8_t *out)
{
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= 2 && s[0] == '"' && s[n - 1] == '"') {
        s++;
        n -= 2;
    }
    char tmp[INET6_ADDRSTRLEN + 8];
    if (n == 0 || n >= sizeof tmp)
        return -1;
    if (s[0] == '[') {
        const char *e = memchr(s, ']', n);
        if (!e)
            return -1;
        size_t l = (size_t)(e - s - 1);
        memcpy(tmp, s + 1, l);
        tmp[l] = '\0';
        *family = AF_INET6;
        return inet_pton(AF_INET6, tmp, out) == 1 ? 0 : -1;
    }
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    if (inet_pton(AF_INET6, tmp, out) == 1) {
        *family = AF_INET6;
        return 0;
    }
    char *colon = strchr(tmp, ':');
    if (colon)
        *colon = '\0'; /* IPv4 with a port */
    *family = AF_INET;
    return inet_pton(AF_INET, tmp, out) == 1 ? 0 : -1;
}

/* In a Forwarded element ("for=x;proto=https;by=y"), the for= value. */
static int fwd_for(const char *s, size_t n, const char **v, size_t *vn)
{
    const char *end = s + n;
    while (s < end) {
        const char *semi = memchr(s, ';', (size_t)(end - s));
        const char *pe = semi ? semi : end;
        while (s < pe && (*s == ' ' || *s == '\t'))
            s++;
        if (pe - s > 4 && strncasecmp(s, "for=", 4) == 0) {
            *v = s + 4;
            *vn = (size_t)(pe - s - 4);
            return 0;
        }
        s = semi ? semi + 1 : end;
    }
    return -1;
}

const char *wisp_req_client_addr(const wisp_req_t *req)
{
    static __thread char buf[INET6_ADDRSTRLEN];
    const wisp__exchange *ex = wisp__ex_of_req(req);
    const wisp__cidrs *tp = &ex->w->conf->trusted_proxies;
    const wisp_conn_t *c = ex->conn;
    if (tp->n == 0 || !c ||
        (c->peer_family != AF_INET && c->peer_family != AF_INET6) ||
        !wisp__cidrs_match(tp, c->peer_family, c->peer_addr))
        return wisp_req_peer(req);
    /* Forwarded wins over X-Forwarded-For when both are present. */
    int use_fwd = wisp_req_header(req, "Forwarded").ptr != NULL;
    const char *want = use_fwd ? "Forwarded" : "X-Forwarded-For";
    int family = 0;
    uint8_t addr[16];
    int have = 0;
    for (size_t i = wisp_req_header_count(req); i-- > 0;) {
        wisp_str_t name, value;
        if (wisp_req_header_at(req, i, &name, &value) < 0 ||
            name.len != strlen(want) ||
            strncasecmp(name.ptr, want, name.len) != 0)
            continue;
        /* Elements right to left. */
        const char *s = value.ptr;
        size_t end = value.len;
        for (;;) {
            size_t b = end;
            while (b > 0 && s[b - 1] != ',')
                b--;
            const char *e = s + b;
            size_t en = end - b;
            if (use_fwd && fwd_for(e, en, &e, &en) < 0)
                return "unknown";
            if (elem_addr(e, en, &family, addr) < 0)
                return "unknown"; /* obfuscated or malformed: no address */
            have = 1;
            if (!wisp__cidrs_match(tp, family, addr))
                return inet_ntop(family, addr, buf, sizeof buf);
            if (b == 0)
                break;
            end = b - 1;
        }
    }
    if (!have)
        return wisp_req_peer(req);
    /* Every hop trusted: the left-most is the client. */
    return inet_ntop(family, addr, buf, sizeof buf);
}
