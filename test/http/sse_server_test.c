/* The event-stream writer (src/http/sse_write.c) end to end: routes on an
 * in-process server write events, comments, retry fields and pings; a
 * raw-socket client de-chunks the body and reads it with wisp's own
 * event-stream reader. Covered: the head, the encoding of every field
 * (data split at CRLF, CR and LF; a leading space kept), refused inputs,
 * a stream started too late, keep-alive pings, the close callback when
 * the client goes away (and that the others are still served), and
 * backpressure (-ENOBUFS, then the drain callback) over 1 MiB of events.
 *
 * With the argument "serve" it only runs the routes, prints
 * "listening on 127.0.0.1:PORT" and stops at the end of its standard
 * input: test/integration/sse_curl_test.py reads it with curl and
 * Python. Handlers run on the server's thread and store results in
 * atomic slots the main thread checks once the answer has arrived. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wisp.h>

#include "http/chunked.h"
#include "test.h"

#define SLOTS 16
static _Atomic int got[SLOTS];

static void note(int i, int r)
{
    atomic_store(&got[i], r);
}

/* ------------------------------------------------------------ the routes */

static void on_events(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_sse_config_t c;
    wisp_sse_config_init(&c);
    c.retry_ms = 2500;
    c.ping_ms = 0;
    wisp_sse_t *s = wisp_sse_start(res, &c, NULL, NULL);
    note(0, s ? 0 : -errno);
    if (!s) {
        wisp_res_send(res, 500, NULL, NULL, 0);
        return;
    }
    note(1, wisp_sse_send(s, "greet", "1", "hello\nworld", 11));
    note(2, wisp_sse_comment(s, "just a comment"));
    note(3, wisp_sse_send(s, NULL, NULL, NULL, 0));
    note(4, wisp_sse_send(s, NULL, "", "a\r\nb\rc\n", 7));
    note(5, wisp_sse_send(s, "bad\nname", NULL, "x", 1));
    note(6, wisp_sse_send(s, NULL, "bad\rid", "x", 1));
    note(7, wisp_sse_comment(s, "two\nlines"));
    note(8, wisp_sse_send(s, NULL, NULL, NULL, 3));
    note(9, wisp_sse_retry(s, 1000));
    note(10, wisp_sse_send(s, "bye", NULL, " lead", 5));
    note(11, wisp_sse_end(s));
}

/* The body /events must produce, byte for byte. */
static const char events_body[] =
    "retry: 2500\n"
    "event: greet\nid: 1\ndata: hello\ndata: world\n\n"
    ": just a comment\n"
    "data: \n\n"
    "id: \ndata: a\ndata: b\ndata: c\ndata: \n\n"
    "retry: 1000\n"
    "event: bye\ndata:  lead\n\n";

static void on_started(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    note(0, wisp_res_write(res, "x", 1));
    errno = 0;
    wisp_sse_t *s = wisp_sse_start(res, NULL, NULL, NULL);
    note(1, s == NULL);
    note(2, errno);
    note(3, wisp_res_end(res));
}

/* /ping: pings every 20 ms until the client goes away. */
static _Atomic int ping_closes, ping_send_after, ping_end_after;

static void ping_closed(wisp_sse_t *s, void *arg)
{
    (void)arg;
    atomic_store(&ping_send_after, wisp_sse_send(s, NULL, NULL, "late", 4));
    atomic_store(&ping_end_after, wisp_sse_end(s)); /* inside on_close */
    atomic_fetch_add(&ping_closes, 1);
}

static void on_ping(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_sse_config_t c;
    wisp_sse_config_init(&c);
    c.ping_ms = 20;
    wisp_sse_t *s = wisp_sse_start(res, &c, ping_closed, NULL);
    if (s)
        wisp_sse_send(s, "open", NULL, "ready", 5);
    else
        wisp_res_send(res, 500, NULL, NULL, 0);
}

/* /flood: events of FLOOD_LEN bytes with 64 KiB of unsent data allowed,
 * to a client that reads nothing until the server has met -ENOBUFS:
 * at least FLOOD_N events, and on until the first -ENOBUFS (the kernel's
 * socket buffers take a few MiB first; FLOOD_MAX bounds it), then the
 * drain callback resumes the stream. */
#define FLOOD_N 64
#define FLOOD_MAX 4096
#define FLOOD_LEN 16384
static _Atomic int flood_nobufs, flood_err, flood_sent, flood_end = 12345;
static char flood_buf[FLOOD_LEN];

static void flood_pump(wisp_sse_t *s, void *arg)
{
    (void)arg;
    while ((atomic_load(&flood_sent) < FLOOD_N ||
            atomic_load(&flood_nobufs) == 0) &&
           atomic_load(&flood_sent) < FLOOD_MAX) {
        int n = atomic_load(&flood_sent);
        snprintf(flood_buf, 16, "n:%05d:", n);
        flood_buf[8] = 'x';
        int r = wisp_sse_send(s, "chunk", NULL, flood_buf, FLOOD_LEN);
        if (r == -ENOBUFS) {
            atomic_fetch_add(&flood_nobufs, 1);
            CHECK(wisp_sse_buffered(s) >= 65536);
            wisp_sse_on_drain(s, flood_pump, NULL);
            return;
        }
        if (r < 0) {
            atomic_store(&flood_err, r);
            wisp_sse_end(s);
            return;
        }
        atomic_fetch_add(&flood_sent, 1);
    }
    atomic_store(&flood_end, wisp_sse_end(s));
}

static void on_flood(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_sse_config_t c;
    wisp_sse_config_init(&c);
    c.ping_ms = 0;
    c.max_buffered_bytes = 65536;
    atomic_store(&flood_sent, 0);
    memset(flood_buf, 'x', sizeof flood_buf);
    wisp_sse_t *s = wisp_sse_start(res, &c, NULL, NULL);
    if (!s) {
        wisp_res_send(res, 500, NULL, NULL, 0);
        return;
    }
    flood_pump(s, NULL);
}

/* ------------------------------------------------------------ the client */

typedef struct client {
    int fd;
    wisp__chunked ch;
    int chunked_done;
    wisp_sse_reader_t *r;
    char head[2048];
    char raw[8192]; /* the first decoded body bytes */
    size_t raw_len;
    int n;          /* events */
    char type[8][32], id[8][32], data[8][64];
    int flood_bad;  /* flood events out of order or damaged */
} client;

static int on_event(const wisp_sse_event_t *e, void *arg)
{
    client *c = arg;
    if (e->type.len == 5 && memcmp(e->type.ptr, "chunk", 5) == 0) {
        char want[16];
        snprintf(want, sizeof want, "n:%05d:", c->n);
        if (e->data.len != FLOOD_LEN || memcmp(e->data.ptr, want, 8) != 0 ||
            e->data.ptr[FLOOD_LEN - 1] != 'x')
            c->flood_bad++;
    } else if (c->n < 8) {
        snprintf(c->type[c->n], 32, "%.*s", (int)e->type.len, e->type.ptr);
        snprintf(c->id[c->n], 32, "%.*s", (int)e->id.len, e->id.ptr);
        snprintf(c->data[c->n], 64, "%.*s", (int)e->data.len, e->data.ptr);
    }
    c->n++;
    return 0;
}

static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int rcv = 16384; /* a small window: the flood backs up sooner */
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Body bytes: de-chunk, keep the first ones, feed the reader. */
static void body(client *c, char *p, size_t n)
{
    if (c->chunked_done)
        return;
    size_t len = n;
    ssize_t r = wisp__chunked_decode(&c->ch, p, &len);
    CHECK(r == -EAGAIN || r >= 0);
    if (r >= 0)
        c->chunked_done = 1;
    size_t keep = len < sizeof c->raw - 1 - c->raw_len
                      ? len
                      : sizeof c->raw - 1 - c->raw_len;
    memcpy(c->raw + c->raw_len, p, keep);
    c->raw_len += keep;
    c->raw[c->raw_len] = 0;
    CHECK_EQ_INT(wisp_sse_reader_feed(c->r, p, len), 0);
}

/* Read until the body ends, the server closes, or `until` (if not NULL)
 * appears twice in the decoded body; 30 s without a byte at most. */
static void pump(client *c, const char *until)
{
    char buf[65536];
    for (;;) {
        if (c->chunked_done)
            return;
        if (until) {
            const char *a = strstr(c->raw, until);
            if (a && strstr(a + 1, until))
                return;
        }
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, 30000) <= 0) {
            CHECK_MSG(0, "no data for 30 s");
            return;
        }
        ssize_t r = read(c->fd, buf, sizeof buf);
        if (r <= 0)
            return;
        body(c, buf, (size_t)r);
    }
}

/* Send the request, read the head, start the body. Returns 0 or -1. */
static int open_stream(client *c, uint16_t port, const char *path)
{
    memset(c, 0, sizeof *c);
    wisp__chunked_init(&c->ch, 1024);
    c->r = wisp_sse_reader_create(0, on_event, c);
    c->fd = dial(port);
    if (c->fd < 0 || !c->r)
        return -1;
    char req[256];
    int l = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n",
                     path);
    if (write(c->fd, req, (size_t)l) != l)
        return -1;
    size_t n = 0;
    char *end = NULL;
    while (!end && n + 1 < sizeof c->head) {
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, 30000) <= 0)
            return -1;
        ssize_t r = read(c->fd, c->head + n, sizeof c->head - 1 - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        c->head[n] = 0;
        end = strstr(c->head, "\r\n\r\n");
    }
    if (!end)
        return -1;
    size_t hl = (size_t)(end + 4 - c->head);
    char rest[2048];
    size_t rl = n - hl;
    memcpy(rest, c->head + hl, rl);
    c->head[hl] = 0;
    if (rl)
        body(c, rest, rl);
    return 0;
}

static void close_client(client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    wisp_sse_reader_destroy(c->r);
}

static void test_events(uint16_t port)
{
    for (int i = 0; i < SLOTS; i++)
        atomic_store(&got[i], 12345);
    client c;
    CHECK(open_stream(&c, port, "/events") == 0);
    pump(&c, NULL);
    CHECK_MSG(strncmp(c.head, "HTTP/1.1 200 ", 13) == 0, "%s", c.head);
    CHECK(strstr(c.head, "\r\nContent-Type: text/event-stream\r\n") != NULL);
    CHECK(strstr(c.head, "\r\nCache-Control: no-cache\r\n") != NULL);
    CHECK(strstr(c.head, "\r\nTransfer-Encoding: chunked\r\n") != NULL);
    CHECK(c.chunked_done);
    CHECK_MSG(strcmp(c.raw, events_body) == 0, "body:\n%s", c.raw);
    CHECK_EQ_INT(c.n, 4);
    CHECK(strcmp(c.type[0], "greet") == 0 && strcmp(c.id[0], "1") == 0 &&
          strcmp(c.data[0], "hello\nworld") == 0);
    CHECK(strcmp(c.type[1], "message") == 0 && strcmp(c.id[1], "1") == 0 &&
          strcmp(c.data[1], "") == 0);
    CHECK(strcmp(c.type[2], "message") == 0 && strcmp(c.id[2], "") == 0 &&
          strcmp(c.data[2], "a\nb\nc\n") == 0);
    CHECK(strcmp(c.type[3], "bye") == 0 && strcmp(c.data[3], " lead") == 0);
    CHECK_EQ_INT(wisp_sse_reader_retry(c.r), 1000);
    CHECK_EQ_INT(wisp_sse_reader_end(c.r), 0);
    for (int i = 0; i <= 4; i++)
        CHECK_MSG(got[i] == 0, "slot %d: %d", i, (int)got[i]);
    for (int i = 5; i <= 8; i++)
        CHECK_MSG(got[i] == -EINVAL, "slot %d: %d", i, (int)got[i]);
    CHECK_EQ_INT(got[9], 0);
    CHECK_EQ_INT(got[10], 0);
    CHECK_EQ_INT(got[11], 0);
    close_client(&c);
}

static void test_started(uint16_t port)
{
    client c;
    CHECK(open_stream(&c, port, "/started") == 0);
    pump(&c, NULL);
    CHECK(c.chunked_done);
    CHECK_EQ_INT(got[0], 0);
    CHECK_EQ_INT(got[1], 1);
    CHECK_EQ_INT(got[2], -WISP_ESTATE);
    CHECK_EQ_INT(got[3], 0);
    CHECK(strcmp(c.raw, "x") == 0);
    close_client(&c);
}

static void test_ping(uint16_t port)
{
    client c;
    CHECK(open_stream(&c, port, "/ping") == 0);
    pump(&c, ": ping\n");
    CHECK_EQ_INT(c.n, 1);
    CHECK(strcmp(c.data[0], "ready") == 0);
    /* Another client is served while the stream is open. */
    test_events(port);
    close_client(&c);
    /* The pings find the socket closed: on_close runs once, and the
     * calls made inside it say WISP_ECLOSED. */
    for (int i = 0; i < 30000 && !atomic_load(&ping_closes); i++)
        usleep(1000);
    CHECK_EQ_INT(atomic_load(&ping_closes), 1);
    CHECK_EQ_INT(atomic_load(&ping_send_after), WISP_ECLOSED);
    CHECK_EQ_INT(atomic_load(&ping_end_after), WISP_ECLOSED);
    /* Still serving. */
    test_events(port);
}

static void test_flood(uint16_t port)
{
    client c;
    CHECK(open_stream(&c, port, "/flood") == 0);
    for (int i = 0; i < 30000 && !atomic_load(&flood_nobufs); i++)
        usleep(1000);
    CHECK(atomic_load(&flood_nobufs) >= 1);
    pump(&c, NULL);
    CHECK(c.chunked_done);
    CHECK(c.n >= FLOOD_N && c.n < FLOOD_MAX);
    CHECK_EQ_INT(c.n, atomic_load(&flood_sent));
    CHECK_EQ_INT(c.flood_bad, 0);
    CHECK(atomic_load(&flood_nobufs) >= 1);
    CHECK_EQ_INT(atomic_load(&flood_err), 0);
    CHECK_EQ_INT(atomic_load(&flood_end), 0);
    close_client(&c);
}

int main(int argc, char **argv)
{
    int serve = argc > 1 && strcmp(argv[1], "serve") == 0;
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 1;
    cfg.handle_signals = 0;
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK(srv != NULL);
    if (!srv)
        return t_done("http_sse_server");
    wisp_server_route(srv, WISP_METHOD_GET, "/events", on_events, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/started", on_started, NULL,
                      NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/ping", on_ping, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/flood", on_flood, NULL, NULL);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    uint16_t port = wisp_server_port(srv);
    CHECK_EQ_INT(wisp_server_start(srv), 0);
    if (serve) {
        printf("listening on 127.0.0.1:%u\n", port);
        fflush(stdout);
        char b[64];
        while (read(0, b, sizeof b) > 0)
            ;
    } else {
        test_events(port);
        test_started(port);
        test_ping(port);
        test_flood(port);
    }
    wisp_server_stop(srv);
    CHECK_EQ_INT(wisp_server_wait(srv), 0);
    wisp_server_destroy(srv);
    return t_done("http_sse_server");
}
