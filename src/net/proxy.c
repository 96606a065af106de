/* The PROXY protocol header parser (haproxy's "The PROXY protocol",
 * versions 1 and 2). Pure: the connection step is in proxy_conn.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "net/proxy.h"
#include "wisp/common.h"

/* Version 1: "PROXY " ... CRLF, at most 107 bytes with the CRLF. */
#define V1_MAX 107
static const char v1_sig[6] = "PROXY ";
/* Version 2: twelve bytes no HTTP request or TLS hello starts with. */
static const uint8_t v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                   0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* A version 1 port: decimal 0..65535, no sign, no leading zero. */
static int v1_port(const char *s, size_t n, uint16_t *out)
{
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return -1;
    uint32_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint32_t)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *out = (uint16_t)v;
    return 0;
}

static int v1_addr(int family, const char *s, size_t n, uint8_t *out)
{
    char tmp[INET6_ADDRSTRLEN];
    if (n == 0 || n >= sizeof tmp)
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    return inet_pton(family, tmp, out) == 1 ? 0 : -1;
}

/* The next space-terminated field of [*p, end): its start and length;
 * *p moves past the space. -1 when no space ends it. */
static int v1_field(const char **p, const char *end, const char **f,
                    size_t *n)
{
    const char *s = *p;
    const char *sp = memchr(s, ' ', (size_t)(end - s));
    if (!sp)
        return -1;
    *f = s;
    *n = (size_t)(sp - s);
    *p = sp + 1;
    return 0;
}

/* "PROXY TCP4 1.2.3.4 5.6.7.8 111 222\r\n": `line` is everything after
 * "PROXY " up to (not including) the CR. */
static int v1_line(const char *line, size_t n, wisp__proxy_hdr *out)
{
    const char *end = line + n;
    if (n >= 7 && memcmp(line, "UNKNOWN", 7) == 0 &&
        (n == 7 || line[7] == ' ')) {
        /* The rest (if any) is to be ignored by the spec. */
        out->local = 1;
        return 0;
    }
    int family;
    if (n > 5 && memcmp(line, "TCP4 ", 5) == 0)
        family = AF_INET;
    else if (n > 5 && memcmp(line, "TCP6 ", 5) == 0)
        family = AF_INET6;
    else
        return -1;
    const char *p = line + 5;
    const char *f;
    size_t fl;
    if (v1_field(&p, end, &f, &fl) < 0 || v1_addr(family, f, fl, out->src))
        return -1;
    if (v1_field(&p, end, &f, &fl) < 0 || v1_addr(family, f, fl, out->dst))
        return -1;
    if (v1_field(&p, end, &f, &fl) < 0 || v1_port(f, fl, &out->src_port))
        return -1;
    if (v1_port(p, (size_t)(end - p), &out->dst_port) < 0)
        return -1;
    out->family = (uint8_t)family;
    return 0;
}

static int parse_v1(const char *buf, size_t len, wisp__proxy_hdr *out)
{
    /* The CR may sit at index V1_MAX - 2 at the latest. */
    size_t lim = len < V1_MAX - 1 ? len : V1_MAX - 1;
    for (size_t i = sizeof v1_sig; i < lim; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\r') {
            if (i + 1 >= len)
                return -EAGAIN;
            if (buf[i + 1] != '\n')
                return WISP_EPARSE;
            if (v1_line(buf + sizeof v1_sig, i - sizeof v1_sig, out) < 0)
                return WISP_EPARSE;
            return (int)(i + 2);
        }
        /* Only printable ASCII belongs on the line: fail early on
         * garbage instead of waiting for 107 bytes. */
        if (ch < 0x20 || ch > 0x7e)
            return WISP_EPARSE;
    }
    return len >= V1_MAX - 1 ? WISP_ETOOLONG_HEAD : -EAGAIN;
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* Type-length-value entries after the addresses: each must fit. Their
 * contents (ALPN, authority, SSL details, CRC32C) are not used. */
static int v2_tlvs(const uint8_t *p, size_t n)
{
    while (n) {
        if (n < 3)
            return -1;
        size_t l = be16(p + 1);
        if (l > n - 3)
            return -1;
        p += 3 + l;
        n -= 3 + l;
    }
    return 0;
}

static int parse_v2(const uint8_t *b, size_t len, wisp__proxy_hdr *out)
{
    if (len < 16)
        return -EAGAIN;
    unsigned ver = b[12] >> 4, cmd = b[12] & 0x0f;
    unsigned fam = b[13] >> 4, proto = b[13] & 0x0f;
    size_t body = be16(b + 14);
    if (ver != 2 || cmd > 1 || fam > 3 || proto > 2)
        return WISP_EPARSE;
    if (16 + body > WISP__PROXY_MAX)
        return WISP_ETOOLONG_HEAD;
    if (len < 16 + body)
        return -EAGAIN;
    out->version = 2;
    const uint8_t *a = b + 16;
    size_t alen;
    switch (fam) {
    case 1: alen = 12; break;
    case 2: alen = 36; break;
    case 3: alen = 216; break;
    default: alen = 0; break;
    }
    if (body < alen)
        return WISP_EPARSE;
    if (v2_tlvs(a + alen, body - alen) < 0)
        return WISP_EPARSE;
    if (cmd == 0 || fam == 0) {
        /* LOCAL (the balancer's own health check) or PROXY with an
         * unspecified family: the spec says to use the real addresses. */
        out->local = 1;
        return (int)(16 + body);
    }
    if (proto != 1)
        return WISP_EPARSE; /* datagrams on a stream listener */
    if (fam == 1) {
        out->family = AF_INET;
        memcpy(out->src, a, 4);
        memcpy(out->dst, a + 4, 4);
        out->src_port = be16(a + 8);
        out->dst_port = be16(a + 10);
    } else if (fam == 2) {
        out->family = AF_INET6;
        memcpy(out->src, a, 16);
        memcpy(out->dst, a + 16, 16);
        out->src_port = be16(a + 32);
        out->dst_port = be16(a + 34);
    } else {
        out->family = AF_UNIX;
    }
    return (int)(16 + body);
}

int wisp__proxy_parse(const char *buf, size_t len, wisp__proxy_hdr *out)
{
    memset(out, 0, sizeof *out);
    const uint8_t *b = (const uint8_t *)buf;
    size_t n1 = len < sizeof v1_sig ? len : sizeof v1_sig;
    size_t n2 = len < sizeof v2_sig ? len : sizeof v2_sig;
    if (len && memcmp(buf, v1_sig, n1) == 0) {
        if (len < sizeof v1_sig)
            return -EAGAIN;
        out->version = 1;
        return parse_v1(buf, len, out);
    }
    if (len && memcmp(b, v2_sig, n2) == 0) {
        if (len < sizeof v2_sig)
            return -EAGAIN;
        return parse_v2(b, len, out);
    }
    return len ? WISP_EPARSE : -EAGAIN;
}
