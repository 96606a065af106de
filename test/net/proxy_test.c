/* PROXY protocol header parser (src/net/proxy.c) and address lists
 * (src/net/cidr.c). Each case is fed whole and at every split point
 * (every prefix must say "need more" or the same error), ending just
 * before an unreadable page. Spec: haproxy's "The PROXY protocol",
 * sections 2.1 (v1) and 2.2 (v2). */
#include <arpa/inet.h>
#include <errno.h>
#include <sys/socket.h>

#include "net/proxy.h"
#include "wisp/common.h"

#include "../test.h"

#define SIG "\r\n\r\n\0\r\nQUIT\n"

typedef struct row {
    const char *name;
    const char *in;
    size_t len;          /* 0: strlen(in) */
    int want;            /* header length, or an error */
    int local;
    int family;
    const char *src;     /* text form of the source, when family is IP */
    uint16_t sport;
} row;

/* Binary v2 inputs, built in main. */
static char v2_tcp4[16 + 12];
static char v2_tcp6[16 + 36];
static char v2_tlv[16 + 12 + 3 + 5 + 3];
static char v2_tlv_over[16 + 12 + 3 + 2];
static char v2_local[16];
static char v2_unix[16 + 216];
static char v2_short_body[16 + 8];
static char v2_bad_ver[16 + 12];
static char v2_bad_cmd[16 + 12];
static char v2_udp[16 + 12];
static char v2_huge[16];
static char v2_data_after[16 + 12 + 5];

static void v2_head(char *b, int vc, int fam, uint16_t len)
{
    memcpy(b, SIG, 12);
    b[12] = (char)vc;
    b[13] = (char)fam;
    b[14] = (char)(len >> 8);
    b[15] = (char)len;
}

static void v2_inet(char *b)
{
    uint8_t a[12] = {192, 0, 2, 7, 10, 0, 0, 1, 0x30, 0x39, 0, 80};
    memcpy(b + 16, a, 12);
}

static void build(void)
{
    v2_head(v2_tcp4, 0x21, 0x11, 12);
    v2_inet(v2_tcp4);
    v2_head(v2_tcp6, 0x21, 0x21, 36);
    inet_pton(AF_INET6, "2001:db8::5", v2_tcp6 + 16);
    inet_pton(AF_INET6, "2001:db8::1", v2_tcp6 + 32);
    v2_tcp6[48] = 0x01; v2_tcp6[49] = (char)0xbb; v2_tcp6[51] = 80;
    v2_head(v2_tlv, 0x21, 0x11, 12 + 8 + 3);
    v2_inet(v2_tlv);
    memcpy(v2_tlv + 28, "\x02\x00\x05" "a.com" "\x04\x00\x00", 11);
    v2_head(v2_tlv_over, 0x21, 0x11, 12 + 5);
    v2_inet(v2_tlv_over);
    memcpy(v2_tlv_over + 28, "\x02\x00\x09" "ab", 5);
    v2_head(v2_local, 0x20, 0x00, 0);
    v2_head(v2_unix, 0x21, 0x31, 216);
    memcpy(v2_unix + 16, "/run/a.sock", 11);
    v2_head(v2_short_body, 0x21, 0x11, 8);
    v2_head(v2_bad_ver, 0x11, 0x11, 12);
    v2_head(v2_bad_cmd, 0x22, 0x11, 12);
    v2_head(v2_udp, 0x21, 0x12, 12);
    v2_head(v2_huge, 0x21, 0x11, 0xffff);
    v2_head(v2_data_after, 0x21, 0x11, 12);
    v2_inet(v2_data_after);
    memcpy(v2_data_after + 28, "GET /", 5);
}

#define B(x) x, sizeof x

static const row *rows(size_t *n)
{
    static row r[] = {
        {"v1 TCP4 (2.1)", "PROXY TCP4 192.0.2.7 10.0.0.1 12345 80\r\n", 0,
         40, 0, AF_INET, "192.0.2.7", 12345},
        {"v1 TCP6 (2.1)", "PROXY TCP6 2001:db8::5 2001:db8::1 443 80\r\n",
         0, 43, 0, AF_INET6, "2001:db8::5", 443},
        {"v1 UNKNOWN keeps the real address", "PROXY UNKNOWN\r\n", 0, 15, 1,
         0, NULL, 0},
        {"v1 UNKNOWN with addresses: rest ignored",
         "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", 0, 35, 1, 0, NULL, 0},
        {"v1 followed by request bytes: only the line counts",
         "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\nGET / HTTP/1.1\r\n", 0, 32, 0,
         AF_INET, "1.2.3.4", 1},
        {"v1 longest line (107 bytes) accepted",
         "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
         "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n", 0, 104,
         0, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535},
        {"v1 no CRLF within 107 bytes is too long",
         "PROXY UNKNOWN aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 0,
         WISP_ETOOLONG_HEAD, 0, 0, NULL, 0},
        {"v1 unknown protocol", "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", 0,
         WISP_EPARSE, 0, 0, NULL, 0},
        {"v1 IPv6 address under TCP4", "PROXY TCP4 ::1 ::1 1 2\r\n", 0,
         WISP_EPARSE, 0, 0, NULL, 0},
        {"v1 port over 65535", "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", 0,
         WISP_EPARSE, 0, 0, NULL, 0},
        {"v1 port with leading zero", "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
         0, WISP_EPARSE, 0, 0, NULL, 0},
        {"v1 missing field", "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", 0,
         WISP_EPARSE, 0, 0, NULL, 0},
        {"v1 double space", "PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", 0,
         WISP_EPARSE, 0, 0, NULL, 0},
        {"v1 bare LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", 0, WISP_EPARSE,
         0, 0, NULL, 0},
        {"v1 CR without LF", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX", 0,
         WISP_EPARSE, 0, 0, NULL, 0},
        {"v1 lower-case signature is no header", "proxy TCP4 1.2.3.4\r\n",
         0, WISP_EPARSE, 0, 0, NULL, 0},
        {"an HTTP request is no header", "GET / HTTP/1.1\r\n\r\n", 0,
         WISP_EPARSE, 0, 0, NULL, 0},
        {"truncated v1 needs more", "PROXY TCP4 1.2.3.4 5.6", 0, -EAGAIN, 0,
         0, NULL, 0},
        {"v2 PROXY TCP over IPv4 (2.2)", B(v2_tcp4), 28, 0, AF_INET,
         "192.0.2.7", 12345},
        {"v2 PROXY TCP over IPv6", B(v2_tcp6), 52, 0, AF_INET6,
         "2001:db8::5", 443},
        {"v2 TLVs are skipped", B(v2_tlv), (int)sizeof v2_tlv, 0, AF_INET,
         "192.0.2.7", 12345},
        {"v2 TLV longer than the header", B(v2_tlv_over), WISP_EPARSE, 0, 0,
         NULL, 0},
        {"v2 LOCAL keeps the real address", B(v2_local), 16, 1, 0, NULL, 0},
        {"v2 AF_UNIX", B(v2_unix), 232, 0, AF_UNIX, NULL, 0},
        {"v2 length shorter than the IPv4 addresses", B(v2_short_body),
         WISP_EPARSE, 0, 0, NULL, 0},
        {"v2 version 1 in the binary form", B(v2_bad_ver), WISP_EPARSE, 0, 0,
         NULL, 0},
        {"v2 unknown command", B(v2_bad_cmd), WISP_EPARSE, 0, 0, NULL, 0},
        {"v2 datagram on a stream listener", B(v2_udp), WISP_EPARSE, 0, 0,
         NULL, 0},
        {"v2 header over the limit", B(v2_huge), WISP_ETOOLONG_HEAD, 0, 0,
         NULL, 0},
        {"v2 followed by request bytes", B(v2_data_after), 28, 0, AF_INET,
         "192.0.2.7", 12345},
        {"v2 signature broken in its last byte", "\r\n\r\n\0\r\nQUIT\r", 12,
         WISP_EPARSE, 0, 0, NULL, 0},
    };
    *n = sizeof r / sizeof r[0];
    return r;
}

static void check_row(const row *r)
{
    size_t len = r->len ? r->len : strlen(r->in);
    t_guard g = t_guard_copy(r->in, len);
    wisp__proxy_hdr h;
    int got = wisp__proxy_parse(g.data, len, &h);
    CHECK_MSG(got == r->want, "%s: got %d want %d", r->name, got, r->want);
    if (got > 0 && got == r->want) {
        CHECK_MSG(h.local == r->local, "%s: local", r->name);
        if (!r->local)
            CHECK_MSG(h.family == r->family, "%s: family", r->name);
        if (r->src) {
            char txt[INET6_ADDRSTRLEN];
            inet_ntop(h.family, h.src, txt, sizeof txt);
            CHECK_MSG(strcmp(txt, r->src) == 0, "%s: src %s", r->name, txt);
            CHECK_MSG(h.src_port == r->sport, "%s: port", r->name);
        }
    }
    t_guard_free(&g);
    /* Every split point: a prefix is "need more" unless the error can
     * already be seen, and then it is the same error. */
    for (size_t k = 0; k < len; k++) {
        t_guard p = t_guard_copy(r->in, k);
        int pr = wisp__proxy_parse(p.data, k, &h);
        if (got > 0 && (size_t)got <= k)
            CHECK_MSG(pr == got, "%s: prefix %zu gave %d", r->name, k, pr);
        else if (got > 0 || got == -EAGAIN)
            CHECK_MSG(pr == -EAGAIN, "%s: prefix %zu gave %d", r->name, k,
                      pr);
        else
            CHECK_MSG(pr == -EAGAIN || pr == got,
                      "%s: prefix %zu gave %d", r->name, k, pr);
        t_guard_free(&p);
    }
}

static void test_cidrs(void)
{
    wisp__cidrs l = {0};
    CHECK(wisp__cidrs_parse("10.0.0.0/8, 127.0.0.1 2001:db8::/32", &l) == 0);
    CHECK(l.n == 3);
    uint8_t a[16];
    inet_pton(AF_INET, "10.200.3.4", a);
    CHECK(wisp__cidrs_match(&l, AF_INET, a) == 1);
    inet_pton(AF_INET, "11.0.0.1", a);
    CHECK(wisp__cidrs_match(&l, AF_INET, a) == 0);
    inet_pton(AF_INET6, "::ffff:127.0.0.1", a);
    CHECK(wisp__cidrs_match(&l, AF_INET6, a) == 1); /* dual-stack peer */
    inet_pton(AF_INET6, "2001:db8:1::9", a);
    CHECK(wisp__cidrs_match(&l, AF_INET6, a) == 1);
    inet_pton(AF_INET6, "2001:db9::9", a);
    CHECK(wisp__cidrs_match(&l, AF_INET6, a) == 0);
    CHECK(wisp__cidrs_parse("10.0.0.0/33", &l) == -EINVAL && l.n == 0);
    CHECK(wisp__cidrs_parse("::/129", &l) == -EINVAL);
    CHECK(wisp__cidrs_parse("host.example", &l) == -EINVAL);
    CHECK(wisp__cidrs_parse("1.2.3.4/", &l) == -EINVAL);
    CHECK(wisp__cidrs_parse("", &l) == 0 && l.n == 0);
    CHECK(wisp__cidrs_parse("0.0.0.0/0", &l) == 0);
    inet_pton(AF_INET, "8.8.8.8", a);
    CHECK(wisp__cidrs_match(&l, AF_INET, a) == 1);
    CHECK(wisp__cidrs_parse("10.1.2.3/12", &l) == 0);
    inet_pton(AF_INET, "10.15.0.1", a);
    CHECK(wisp__cidrs_match(&l, AF_INET, a) == 1);
    inet_pton(AF_INET, "10.16.0.1", a);
    CHECK(wisp__cidrs_match(&l, AF_INET, a) == 0);
    wisp__cidrs_free(&l);
}

int main(void)
{
    build();
    size_t n;
    const row *r = rows(&n);
    for (size_t i = 0; i < n; i++)
        check_row(&r[i]);
    test_cidrs();
    return t_done("net_proxy");
}
