/* Tests of wisp__parse_response (src/http/parse.c), the client's
 * response-head parser. Every row is fed whole, ending right before a
 * PROT_NONE page, and byte by byte with one `scan` state (each prefix
 * ending before the page): -EAGAIN until the head is complete, then the
 * row's answer (an error may come earlier, but must be the row's). */
#include "http/parse.h"

#include "../test.h"
#include "wisp/http.h"

#define F(x) WISP__RH_##x
#define IN(s) .in = (s), .in_len = sizeof(s) - 1
#define HEAD_END 0

static const wisp__parse_limits LIM = {1024, 8192, 100};
static const wisp__parse_limits SMALL = {16, 64, 2};

typedef struct row {
    const char *name;
    const char *rfc;
    const char *in;
    size_t in_len;
    ssize_t want;        /* HEAD_END, -EAGAIN or WISP_E* */
    int status;
    int v10;
    uint32_t flags;
    int64_t cl;          /* checked when the head parses */
    int nh;
    const wisp__parse_limits *lim;
} row;

static const row rows[] = {
    {"200 with Content-Length", "RFC 9112 §4, §6.3",
     IN("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"), HEAD_END,
     .status = 200, .cl = 5, .nh = 1},
    {"empty reason phrase after SP", "RFC 9112 §4",
     IN("HTTP/1.1 204 \r\n\r\n"), HEAD_END, .status = 204, .cl = -1},
    {"no SP after the code is accepted", "RFC 9112 §4",
     IN("HTTP/1.1 204\r\n\r\n"), HEAD_END, .status = 204, .cl = -1},
    {"HTTP/1.0 with keep-alive", "RFC 9112 §9.3",
     IN("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\n"), HEAD_END,
     .status = 200, .v10 = 1, .flags = F(KEEPALIVE), .cl = -1, .nh = 1},
    {"chunked and close", "RFC 9112 §7.1, §9.6",
     IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
        "Connection: close\r\n\r\n"),
     HEAD_END, .status = 200, .flags = F(CHUNKED) | F(CLOSE), .cl = -1,
     .nh = 2},
    {"101 with Upgrade", "RFC 9110 §15.2.2",
     IN("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\n\r\n"),
     HEAD_END, .status = 101, .flags = F(UPGRADE), .cl = -1, .nh = 2},
    {"HTTP/1.2 is read as 1.1", "RFC 9110 §2.5",
     IN("HTTP/1.2 200 OK\r\n\r\n"), HEAD_END, .status = 200, .cl = -1},
    {"incomplete head wants more", "RFC 9112 §2.1",
     IN("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"), -EAGAIN},
    {"status with two digits", "RFC 9110 §15",
     IN("HTTP/1.1 20 OK\r\n\r\n"), WISP_EPARSE},
    {"status 600 is out of range", "RFC 9110 §15",
     IN("HTTP/1.1 600 Nope\r\n\r\n"), WISP_EPARSE},
    {"status with a letter", "RFC 9112 §4",
     IN("HTTP/1.1 2x0 OK\r\n\r\n"), WISP_EPARSE},
    {"lowercase http", "RFC 9112 §2.3",
     IN("http/1.1 200 OK\r\n\r\n"), WISP_EPARSE},
    {"HTTP/2.0 status line", "RFC 9110 §2.5",
     IN("HTTP/2.0 200 OK\r\n\r\n"), WISP_EVERSION},
    {"control byte in the reason", "RFC 9112 §4",
     IN("HTTP/1.1 200 O\x01K\r\n\r\n"), WISP_EPARSE},
    {"bare LF ends no line", "RFC 9112 §2.2",
     IN("HTTP/1.1 200 OK\nContent-Length: 0\n\n"), WISP_EPARSE},
    {"repeated Content-Length, even equal", "RFC 9112 §6.3",
     IN("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n"
        "\r\n"),
     WISP_EPARSE},
    {"Content-Length list", "RFC 9112 §6.3",
     IN("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n"), WISP_EPARSE},
    {"Content-Length and Transfer-Encoding", "RFC 9112 §6.1",
     IN("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
        "Transfer-Encoding: chunked\r\n\r\n"),
     WISP_EPARSE},
    {"chunked not final", "RFC 9112 §6.3",
     IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, x\r\n\r\n"),
     WISP_ECODING},
    {"gzip before chunked is not decoded", "RFC 9112 §6.1",
     IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
     WISP_ECODING},
    {"chunked twice", "RFC 9112 §7.1",
     IN("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"),
     WISP_EPARSE},
    {"Transfer-Encoding in HTTP/1.0", "RFC 9112 §6.1",
     IN("HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"),
     WISP_EPARSE},
    {"space before the colon", "RFC 9112 §5.1",
     IN("HTTP/1.1 200 OK\r\nServer : x\r\n\r\n"), WISP_EPARSE},
    {"obs-fold", "RFC 9112 §5.2",
     IN("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n"), WISP_EPARSE},
    {"status line over the limit", "RFC 9112 §4",
     IN("HTTP/1.1 200 A very long reason\r\n\r\n"), WISP_ETOOLONG_LINE,
     .lim = &SMALL},
    {"too many fields", "RFC 9112 §5",
     IN("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"),
     WISP_ETOOMANY_HEADERS, .lim = &SMALL},
    {"head over the limit", "RFC 9112 §5",
     IN("HTTP/1.1 200\r\nA: 0123456789012345678901234567890123456789"
        "0123456789\r\n\r\n"),
     WISP_ETOOLONG_HEAD, .lim = &SMALL},
};

static size_t head_end(const row *r)
{
    const char *e = strstr(r->in, "\r\n\r\n");
    return e ? (size_t)(e - r->in) + 4 : 0;
}

static ssize_t parse(const char *buf, size_t len, size_t *scan,
                     wisp__resp_head *rh, wisp__header *hs,
                     const wisp__parse_limits *lim)
{
    memset(rh, 0, sizeof *rh);
    rh->headers = hs;
    rh->max_headers = 16;
    return wisp__parse_response(buf, len, scan, rh, lim);
}

static void check_row(const row *r)
{
    const wisp__parse_limits *lim = r->lim ? r->lim : &LIM;
    ssize_t want = r->want == HEAD_END ? (ssize_t)head_end(r) : r->want;
    wisp__header hs[16];
    wisp__resp_head rh;
    t_guard g = t_guard_copy(r->in, r->in_len);
    size_t scan = 0;
    ssize_t n = parse(g.data, r->in_len, &scan, &rh, hs, lim);
    CHECK_MSG(n == want, "%s (%s): whole: %zd, want %zd", r->name, r->rfc,
              n, want);
    if (n >= 0 && n == want) {
        CHECK_MSG(rh.status == r->status, "%s: status %d", r->name,
                  rh.status);
        CHECK_MSG(rh.minor == (r->v10 ? 0 : 1), "%s: minor", r->name);
        CHECK_MSG(rh.flags == r->flags, "%s: flags %x", r->name, rh.flags);
        CHECK_MSG(rh.content_length == r->cl, "%s: length", r->name);
        CHECK_MSG((int)rh.num_headers == r->nh, "%s: fields %u", r->name,
                  rh.num_headers);
    }
    t_guard_free(&g);
    /* Byte by byte. */
    scan = 0;
    ssize_t b = -EAGAIN;
    size_t k;
    for (k = 1; k <= r->in_len && b == -EAGAIN; k++) {
        t_guard p = t_guard_copy(r->in, k);
        b = parse(p.data, k, &scan, &rh, hs, lim);
        t_guard_free(&p);
    }
    CHECK_MSG(b == want, "%s: byte by byte: %zd, want %zd", r->name, b,
              want);
}

int main(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        check_row(&rows[i]);
    return t_done("http_parse_response");
}
