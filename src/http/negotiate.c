/* Accept and Accept-Encoding (RFC 9110 §12.5.1, §12.5.3): split a field
 * value into its elements, read each one's weight, pick an offer. */
#include <string.h>
#include <strings.h>

#include "wisp/negotiate.h"

/* One element of a comma-separated list: the value before any ';' and
 * its q in thousandths (1000 when absent; -1 when malformed). */
typedef struct elem {
    const char *v;
    size_t vlen;
    int q;
} elem;

static const char *skip_ows(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static size_t trim_len(const char *a, const char *b)
{
    while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
        b--;
    return (size_t)(b - a);
}

/* qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ) */
static int parse_q(const char *p, size_t n)
{
    if (n == 0 || (p[0] != '0' && p[0] != '1'))
        return -1;
    int whole = p[0] - '0', frac = 0, digits = 0;
    if (n > 1) {
        if (p[1] != '.' || n > 5)
            return -1;
        for (size_t i = 2; i < n; i++) {
            if (p[i] < '0' || p[i] > '9')
                return -1;
            frac = frac * 10 + (p[i] - '0');
            digits++;
        }
    }
    while (digits++ < 3)
        frac *= 10;
    if (whole == 1 && frac)
        return -1;
    return whole * 1000 + frac;
}

/* The next element from *pp (up to e). Returns 0 at the end. */
static int next_elem(const char **pp, const char *e, elem *out)
{
    const char *p = *pp;
    for (;;) {
        p = skip_ows(p, e);
        if (p >= e) {
            *pp = p;
            return 0;
        }
        const char *comma = memchr(p, ',', (size_t)(e - p));
        const char *end = comma ? comma : e;
        const char *semi = memchr(p, ';', (size_t)(end - p));
        out->v = p;
        out->vlen = trim_len(p, semi ? semi : end);
        out->q = 1000;
        /* Parameters: only q matters. */
        while (semi) {
            const char *s = skip_ows(semi + 1, end);
            if (s >= end)
                break;
            const char *next = memchr(s, ';', (size_t)(end - s));
            const char *pe = next ? next : end;
            size_t pl = trim_len(s, pe);
            if (pl >= 2 && (s[0] == 'q' || s[0] == 'Q') && s[1] == '=')
                out->q = parse_q(s + 2, pl - 2);
            semi = next;
        }
        p = comma ? comma + 1 : e;
        if (out->vlen == 0)
            continue; /* empty list element (RFC 9110 §5.6.1) */
        *pp = p;
        return 1;
    }
}

/* How specifically media range r matches offer o: 3 exact, 2 type/[*],
 * 1 [*]/[*], 0 not at all. */
static int match_rank(const elem *r, const char *o)
{
    const char *rs = memchr(r->v, '/', r->vlen);
    const char *os = strchr(o, '/');
    if (!rs || !os)
        return 0;
    size_t rt = (size_t)(rs - r->v), ot = (size_t)(os - o);
    size_t rsl = r->vlen - rt - 1;
    if (rt == 1 && r->v[0] == '*')
        return rsl == 1 && rs[1] == '*' ? 1 : 0;
    if (rt != ot || strncasecmp(r->v, o, rt) != 0)
        return 0;
    if (rsl == 1 && rs[1] == '*')
        return 2;
    return strlen(os + 1) == rsl && strncasecmp(rs + 1, os + 1, rsl) == 0
               ? 3
               : 0;
}

int wisp_accept_choose(wisp_str_t accept, const char *const *offers)
{
    if (!offers || !offers[0])
        return -EINVAL;
    if (!accept.ptr)
        return 0;
    const char *e = accept.ptr + accept.len;
    int best = -ENOENT, best_q = 0, usable = 0;
    for (int i = 0; offers[i]; i++) {
        const char *p = accept.ptr;
        elem el;
        int rank = 0, q = 0;
        while (next_elem(&p, e, &el)) {
            if (el.q < 0 || !memchr(el.v, '/', el.vlen))
                continue;
            usable = 1;
            int r = match_rank(&el, offers[i]);
            if (r > rank) {
                rank = r;
                q = el.q;
            }
        }
        if (rank && q > best_q) {
            best = i;
            best_q = q;
        }
    }
    return usable ? best : 0;
}

int wisp_req_accepts(const wisp_req_t *req, const char *const *offers)
{
    return wisp_accept_choose(wisp_req_header(req, "Accept"), offers);
}

int wisp_accept_encoding_q(wisp_str_t header, const char *coding)
{
    if (!coding)
        return 0;
    int identity = strcasecmp(coding, "identity") == 0;
    if (!header.ptr)
        return identity ? 1000 : 0;
    size_t cl = strlen(coding);
    const char *p = header.ptr, *e = header.ptr + header.len;
    int own = -1, star = -1;
    elem el;
    while (next_elem(&p, e, &el)) {
        if (el.q < 0)
            continue;
        if (el.vlen == cl && strncasecmp(el.v, coding, cl) == 0)
            own = el.q;
        else if (el.vlen == 1 && el.v[0] == '*')
            star = el.q;
    }
    if (own >= 0)
        return own;
    if (star >= 0)
        return star;
    return identity ? 1000 : 0;
}
