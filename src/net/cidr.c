/* Address lists (CIDRs): whom a listener or the HTTP layer trusts to
 * report a client's address. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/proxy.h"

void wisp__cidrs_free(wisp__cidrs *l)
{
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static int is_sep(char ch)
{
    return ch == ',' || ch == ' ' || ch == '\t' || ch == '\n';
}

/* One entry "addr" or "addr/bits" of length n. */
static int parse_one(const char *s, size_t n, wisp__cidr *out)
{
    char tmp[INET6_ADDRSTRLEN + 8];
    if (n == 0 || n >= sizeof tmp)
        return -EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *slash = strchr(tmp, '/');
    long bits = -1;
    if (slash) {
        *slash = '\0';
        const char *d = slash + 1;
        if (!*d || strlen(d) > 3)
            return -EINVAL;
        bits = 0;
        for (; *d; d++) {
            if (*d < '0' || *d > '9')
                return -EINVAL;
            bits = bits * 10 + (*d - '0');
        }
    }
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, tmp, out->addr) == 1) {
        out->family = AF_INET;
        if (bits > 32)
            return -EINVAL;
        out->bits = (uint8_t)(bits < 0 ? 32 : bits);
    } else if (inet_pton(AF_INET6, tmp, out->addr) == 1) {
        out->family = AF_INET6;
        if (bits > 128)
            return -EINVAL;
        out->bits = (uint8_t)(bits < 0 ? 128 : bits);
    } else {
        return -EINVAL;
    }
    return 0;
}

int wisp__cidrs_parse(const char *spec, wisp__cidrs *out)
{
    wisp__cidrs_free(out);
    if (!spec)
        return 0;
    /* Count entries first: one allocation. */
    uint32_t cap = 0;
    for (const char *p = spec; *p;) {
        while (*p && is_sep(*p))
            p++;
        if (!*p)
            break;
        cap++;
        while (*p && !is_sep(*p))
            p++;
    }
    if (cap == 0)
        return 0;
    wisp__cidr *v = calloc(cap, sizeof *v);
    if (!v)
        return -ENOMEM;
    uint32_t n = 0;
    for (const char *p = spec; *p;) {
        while (*p && is_sep(*p))
            p++;
        if (!*p)
            break;
        const char *b = p;
        while (*p && !is_sep(*p))
            p++;
        if (parse_one(b, (size_t)(p - b), &v[n]) < 0) {
            free(v);
            return -EINVAL;
        }
        n++;
    }
    out->v = v;
    out->n = n;
    return 0;
}

static int prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned whole = bits / 8;
    if (memcmp(a, b, whole) != 0)
        return 0;
    unsigned rest = bits % 8;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

int wisp__cidrs_match(const wisp__cidrs *l, int family, const uint8_t *addr)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                       0xff, 0xff};
    if (family == AF_INET6 && memcmp(addr, mapped, 12) == 0) {
        family = AF_INET;
        addr += 12;
    }
    for (uint32_t i = 0; i < l->n; i++) {
        const wisp__cidr *c = &l->v[i];
        if (c->family == family && prefix_eq(c->addr, addr, c->bits))
            return 1;
    }
    return 0;
}
