/* The HTTP client (wisp/client.h) against wisp's own server, in-process,
 * and against a scripted raw upstream for what a good server never sends.
 * The client runs on a bare loop on its own thread; the test posts work
 * to it and waits for the futures' results (events, with a generous
 * failure bound only).
 *
 * Covered: GET, keep-alive reuse (one connection for sequential
 * requests), per-host limit (requests queue, all answered, no more
 * connections than the limit), large bodies both ways (4 MiB down,
 * buffered and streamed; 3 MiB up from memory, a file, a chunked pull),
 * chunked responses, HEAD, Unix-socket upstream, name resolution on the
 * pool, over-limit buffered body; malformed responses (bad status line,
 * repeated Content-Length, both framings, bad chunk size, over-limit
 * head, a 101 nobody asked for) each fail with their error and the pool
 * still serves the next request; header and body timeouts on a silent
 * and a stalling upstream, a refused port, a connect timeout; cancel of
 * a queued and of an in-flight request (the connection is closed);
 * redirects off by default and followed when asked; a 101 take-over;
 * destroy with requests pending. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void bump(_Atomic int *v)
{
    pthread_mutex_lock(&mu);
    atomic_fetch_add(v, 1);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static int wait_for(_Atomic int *v, int want)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&mu);
    while (atomic_load(v) < want)
        if (pthread_cond_timedwait(&cv, &mu, &until) == ETIMEDOUT)
            break;
    int ok = atomic_load(v) >= want;
    pthread_mutex_unlock(&mu);
    return ok;
}

static wisp_loop_t *loop;
static wisp_client_t *cl;
static wisp_client_t *cl_main, *cl_small, *cl_raw;
static wisp_server_t *srv;
static uint16_t port;
static char *big;
#define BIG (4u << 20)

/* ------------------------------------------------ server routes */

static void r_hi(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req, (void)arg;
    wisp_res_send(res, 200, "text/plain", "hello", 5);
}

static void r_big(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req, (void)arg;
    wisp_res_send_ref(res, 200, "application/octet-stream", big, BIG, NULL,
                      NULL);
}

static void r_chunked(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req, (void)arg;
    wisp_res_status(res, 200);
    for (int i = 0; i < 50; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "data: %d\n\n", i);
        wisp_res_write(res, line, (size_t)n);
    }
    wisp_res_end(res);
}

/* Echo: the body's length and a checksum. */
static void r_echo(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_str_t b = wisp_req_body(req);
    unsigned long sum = 0;
    for (size_t i = 0; i < b.len; i++)
        sum = sum * 31 + (unsigned char)b.ptr[i];
    char out[64];
    int n = snprintf(out, sizeof out, "%zu %lu", b.len, sum);
    wisp_res_send(res, 200, "text/plain", out, (size_t)n);
}

static void r_redir(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req, (void)arg;
    wisp_res_header(res, "Location", "/hi");
    wisp_res_send(res, 302, "text/plain", "moved", 5);
}

static unsigned long checksum(const char *p, size_t n)
{
    unsigned long sum = 0;
    for (size_t i = 0; i < n; i++)
        sum = sum * 31 + (unsigned char)p[i];
    return sum;
}

/* ------------------------------------------------ requests on the loop */

typedef struct result {
    wisp_client_request_t rq;
    wisp_client_header_t hdr[2];
    wisp_future_t *f;
    int cancel_now;        /* cancel right after sending */
    _Atomic int done;
    int err;
    int status;
    char body[256];
    size_t body_len;
    unsigned long sum;
    /* streamed */
    size_t streamed;
    unsigned long ssum;
    _Atomic int ended;
    int end_err;
    /* pull */
    size_t pull_left;
} result;

static void settled(wisp_future_t *f, void *arg)
{
    result *r = arg;
    r->err = wisp_future_error(f);
    if (r->err == 0) {
        const wisp_client_response_t *resp = wisp_future_value(f);
        r->status = wisp_client_response_status(resp);
        size_t n;
        const char *b = wisp_client_response_body(resp, &n);
        r->body_len = n;
        r->sum = checksum(b, n);
        memcpy(r->body, b, n < sizeof r->body - 1 ? n : sizeof r->body - 1);
    }
    wisp_future_unref(f);
    bump(&r->done);
}

static void send_task(void *arg)
{
    result *r = arg;
    wisp_future_t *f = wisp_client_send(cl, &r->rq);
    CHECK(f != NULL);
    r->f = f;
    if (r->cancel_now)
        wisp_future_cancel(f);
    CHECK(wisp_future_then(f, settled, r) == 0);
}

static void cancel_task(void *arg)
{
    result *r = arg;
    wisp_future_cancel(r->f);
}

static result *go(const char *url)
{
    result *r = calloc(1, sizeof *r);
    r->rq.url = url;
    return r;
}

static void run(result *r)
{
    CHECK(wisp_loop_post(loop, send_task, r) == 0);
    CHECK(wait_for(&r->done, 1));
}

static void on_loop_fn(void *arg)
{
    void (**fn)(void) = arg;
    (*fn)();
}

/* Run fn on the loop and wait for it. */
static _Atomic int ran;
static void (*ran_fn)(void);
static void run_task(void *arg)
{
    on_loop_fn(arg);
    bump(&ran);
}
static void on_loop(void (*fn)(void))
{
    int before = atomic_load(&ran);
    ran_fn = fn;
    CHECK(wisp_loop_post(loop, run_task, &ran_fn) == 0);
    CHECK(wait_for(&ran, before + 1));
}

static wisp_client_stats_t stats;
static void take_stats(void)
{
    wisp_client_stats(cl, &stats);
}

static char url_buf[16][256];
static const char *url(int slot, const char *path)
{
    snprintf(url_buf[slot], sizeof url_buf[slot], "http://127.0.0.1:%u%s",
             port, path);
    return url_buf[slot];
}

/* ------------------------------------------------ the raw upstream */

/* A scripted upstream: answers each request head with `reply` (then
 * keeps the connection, or closes it when `close_after`); "" means
 * never answer. Counts accepted connections and requests. */
static int raw_fd;
static uint16_t raw_port;
static const char *_Atomic reply;
static _Atomic int close_after;
static _Atomic int raw_accepts, raw_requests, raw_closed;

static void *raw_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[65536];
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = 0;
        char *e;
        while ((e = strstr(buf, "\r\n\r\n")) != NULL) {
            size_t hl = (size_t)(e + 4 - buf);
            memmove(buf, buf + hl, len - hl);
            len -= hl;
            buf[len] = 0;
            const char *rp = atomic_load(&reply);
            bump(&raw_requests);
            if (*rp) {
                if (strncmp(rp, "HTTP/1.1 101", 12) == 0) {
                    /* Upgrade: answer, then echo "PING" as "PONG". */
                    CHECK(write(fd, rp, strlen(rp)) > 0);
                    char b[8];
                    if (read(fd, b, 4) == 4 && memcmp(b, "PING", 4) == 0)
                        CHECK(write(fd, "PONG", 4) == 4);
                } else {
                    CHECK(write(fd, rp, strlen(rp)) > 0);
                }
                if (atomic_load(&close_after))
                    goto out;
            }
        }
    }
out:
    close(fd);
    bump(&raw_closed);
    return NULL;
}

static void *raw_main(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = accept(raw_fd, NULL, NULL);
        if (fd < 0)
            return NULL;
        bump(&raw_accepts);
        pthread_t t;
        pthread_create(&t, NULL, raw_conn, (void *)(intptr_t)fd);
        pthread_detach(t);
    }
}

static int listen_local(uint16_t *p, int backlog)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof sin;
    CHECK(bind(fd, (struct sockaddr *)&sin, l) == 0);
    CHECK(listen(fd, backlog) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sin, &l) == 0);
    *p = ntohs(sin.sin_port);
    return fd;
}

static char raw_url_buf[128];
static const char *raw_url(void)
{
    snprintf(raw_url_buf, sizeof raw_url_buf, "http://127.0.0.1:%u/x",
             raw_port);
    return raw_url_buf;
}

/* ------------------------------------------------ tests */

static void test_get_and_reuse(void)
{
    on_loop(take_stats);
    uint64_t opened = stats.connections_opened;
    for (int i = 0; i < 5; i++) {
        result *r = go(url(0, "/hi"));
        run(r);
        CHECK_EQ_INT(r->err, 0);
        CHECK_EQ_INT(r->status, 200);
        CHECK_STRN(r->body, r->body_len, "hello");
        free(r);
    }
    on_loop(take_stats);
    /* Five sequential requests, one connection. */
    CHECK_EQ_INT((int)(stats.connections_opened - opened), 1);
    CHECK(stats.connections_reused >= 4);
    CHECK_EQ_INT((int)stats.connections_idle, 1);

    /* HEAD: no body even with a Content-Length. */
    result *r = go(url(0, "/hi"));
    r->rq.method = "HEAD";
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK_EQ_INT(r->status, 200);
    CHECK_EQ_INT((int)r->body_len, 0);
    free(r);

    /* Unknown path: a 404 is a response, not an error. */
    r = go(url(0, "/nope"));
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK_EQ_INT(r->status, 404);
    free(r);
}

static result *lim_r[6];
static void send_six(void)
{
    for (int i = 0; i < 6; i++)
        send_task(lim_r[i]);
    wisp_client_stats(cl, &stats);
}

static void test_limit(void)
{
    /* A second client with max_per_host 2 on the same loop. */
    for (int i = 0; i < 6; i++)
        lim_r[i] = go(url(1, "/big"));
    on_loop(send_six);
    /* One idle connection exists (from the first test): it takes one;
     * one more connect starts; four wait. */
    CHECK(stats.requests_queued >= 4);
    for (int i = 0; i < 6; i++) {
        CHECK(wait_for(&lim_r[i]->done, 1));
        CHECK_EQ_INT(lim_r[i]->err, 0);
        CHECK_EQ_INT((int)lim_r[i]->body_len, (int)BIG);
        CHECK(lim_r[i]->sum == checksum(big, BIG));
        free(lim_r[i]);
    }
    on_loop(take_stats);
    CHECK(stats.connections_open <= 2);
    CHECK_EQ_INT((int)stats.requests_queued, 0);
}

static int s_data(const char *d, size_t n, void *arg)
{
    result *r = arg;
    for (size_t i = 0; i < n; i++)
        r->ssum = r->ssum * 31 + (unsigned char)d[i];
    r->streamed += n;
    return 0;
}

static void s_end(int err, void *arg)
{
    result *r = arg;
    r->end_err = err;
    bump(&r->ended);
}

static void test_streamed(void)
{
    result *r = go(url(0, "/big"));
    r->rq.on_data = s_data;
    r->rq.on_end = s_end;
    r->rq.data_arg = r;
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK_EQ_INT(r->status, 200);
    CHECK_EQ_INT((int)r->body_len, 0); /* streamed, not buffered */
    CHECK(wait_for(&r->ended, 1));
    CHECK_EQ_INT(r->end_err, 0);
    CHECK_EQ_INT((int)r->streamed, (int)BIG);
    CHECK(r->ssum == checksum(big, BIG));
    free(r);

    /* Chunked, streamed and buffered. */
    char want[1024] = "";
    for (int i = 0; i < 50; i++)
        snprintf(want + strlen(want), sizeof want - strlen(want),
                 "data: %d\n\n", i);
    r = go(url(0, "/chunked"));
    r->rq.on_data = s_data;
    r->rq.on_end = s_end;
    r->rq.data_arg = r;
    run(r);
    CHECK(wait_for(&r->ended, 1));
    CHECK_EQ_INT(r->end_err, 0);
    CHECK_EQ_INT((int)r->streamed, (int)strlen(want));
    CHECK(r->ssum == checksum(want, strlen(want)));
    free(r);
    r = go(url(0, "/chunked"));
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK(r->sum == checksum(want, strlen(want)));
    free(r);
}

static ssize_t pull(char *buf, size_t cap, void *arg)
{
    result *r = arg;
    size_t k = r->pull_left < cap ? r->pull_left : cap;
    memcpy(buf, big + (size_t)(3u << 20) - r->pull_left, k);
    r->pull_left -= k;
    return (ssize_t)k;
}

static void test_upload(void)
{
    size_t n = 3u << 20;
    char want[64];
    snprintf(want, sizeof want, "%zu %lu", n, checksum(big, n));

    result *r = go(url(0, "/echo"));
    r->rq.method = "POST";
    r->rq.body = big;
    r->rq.body_len = n;
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK_EQ_INT(r->status, 200);
    CHECK_MSG(strcmp(r->body, want) == 0, "memory: %s", r->body);
    free(r);

    char path[] = "/tmp/wisp-client-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, big, n) == (ssize_t)n);
    unlink(path);
    r = go(url(0, "/echo"));
    r->rq.method = "PUT";
    r->rq.body_fd = fd;
    r->rq.body_len = n;
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK_MSG(strcmp(r->body, want) == 0, "file: %s", r->body);
    free(r);

    for (int chunked = 0; chunked < 2; chunked++) {
        r = go(url(0, "/echo"));
        r->rq.method = "POST";
        r->rq.body_pull = pull;
        r->rq.body_arg = r;
        r->rq.body_chunked = chunked;
        r->rq.body_len = chunked ? 0 : n;
        r->pull_left = n;
        run(r);
        CHECK_EQ_INT(r->err, 0);
        CHECK_MSG(strcmp(r->body, want) == 0, "pull %d: %s", chunked,
                  r->body);
        free(r);
    }
}

static void expect_error(const char *response, int err, const char *name)
{
    atomic_store(&reply, response);
    result *r = go(raw_url());
    run(r);
    CHECK_MSG(r->err == err, "%s: got %d want %d", name, r->err, err);
    free(r);
    /* The pool serves the next request. */
    atomic_store(&reply, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    r = go(raw_url());
    run(r);
    CHECK_MSG(r->err == 0 && r->status == 200, "%s: next: %d", name,
              r->err);
    CHECK_STRN(r->body, r->body_len, "ok");
    free(r);
}

static char bighead[100 * 1024];

static void test_malformed(void)
{
    expect_error("HTTP/1.1 2x0 OK\r\n\r\n", WISP_EPARSE, "bad status");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                 "Content-Length: 4\r\n\r\nabcd",
                 WISP_EPARSE, "two Content-Length");
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
                 WISP_EPARSE, "both framings");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "zz\r\nabc\r\n0\r\n\r\n",
                 WISP_EPARSE, "bad chunk size");
    expect_error("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n"
                 "\r\n0\r\n\r\n",
                 WISP_ECODING, "gzip coding");
    expect_error("HTTP/2.0 200 OK\r\n\r\n", WISP_EVERSION, "version");
    expect_error("HTTP/1.1 101 Switching Protocols\r\n\r\n", WISP_EPARSE,
                 "unrequested 101");
    expect_error("HTTP/1.1 200 OK\nContent-Length: 0\n\n", WISP_EPARSE,
                 "bare LF");
    /* The raw client buffers at most 1 MiB. */
    expect_error("HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n",
                 WISP_EBODY_TOO_LARGE, "declared body over the limit");
    strcpy(bighead, "HTTP/1.1 200 OK\r\nX-Big: ");
    memset(bighead + strlen(bighead), 'a', 70000);
    strcat(bighead, "\r\nContent-Length: 0\r\n\r\n");
    expect_error(bighead, WISP_ETOOLONG_HEAD, "head over the limit");
    /* Interim 1xx are skipped. */
    atomic_store(&reply, "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                         "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nz");
    result *r = go(raw_url());
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK_EQ_INT(r->status, 200);
    CHECK_STRN(r->body, r->body_len, "z");
    free(r);
    /* Close-delimited body. */
    atomic_store(&close_after, 1);
    atomic_store(&reply, "HTTP/1.1 200 OK\r\n\r\nuntil close");
    r = go(raw_url());
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK_STRN(r->body, r->body_len, "until close");
    free(r);
    /* Closed before the head is complete. */
    atomic_store(&reply, "HTTP/1.1 200 OK\r\nContent-Le");
    r = go(raw_url());
    run(r);
    CHECK_EQ_INT(r->err, -ECONNRESET);
    free(r);
    /* ... and in the middle of a sized body. */
    atomic_store(&reply, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    r = go(raw_url());
    run(r);
    CHECK_EQ_INT(r->err, -ECONNRESET);
    free(r);
    atomic_store(&close_after, 0);
}

static void test_timeouts_and_cancel(void)
{
    /* Silent upstream: the header timeout (the raw client has 300 ms). */
    atomic_store(&reply, "");
    result *r = go(raw_url());
    run(r);
    CHECK_EQ_INT(r->err, -ETIMEDOUT);
    free(r);
    /* Stalling body: the body timeout. */
    atomic_store(&reply, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
    r = go(raw_url());
    run(r);
    CHECK_EQ_INT(r->err, -ETIMEDOUT);
    free(r);

    /* Cancel in flight: the upstream has the request, then the future is
     * cancelled: -ECANCELED, and the connection is closed. */
    atomic_store(&reply, "");
    int reqs = atomic_load(&raw_requests);
    int closed = atomic_load(&raw_closed);
    cl = cl_main; /* long timeouts: only the cancel ends it */
    r = go(raw_url());
    CHECK(wisp_loop_post(loop, send_task, r) == 0);
    CHECK(wait_for(&raw_requests, reqs + 1));
    CHECK(wisp_loop_post(loop, cancel_task, r) == 0);
    CHECK(wait_for(&r->done, 1));
    CHECK_EQ_INT(r->err, -ECANCELED);
    CHECK(wait_for(&raw_closed, closed + 1));
    free(r);
    cl = cl_raw;

    /* Cancel before anything happened (a queued request). */
    r = go(raw_url());
    r->cancel_now = 1;
    run(r);
    CHECK_EQ_INT(r->err, -ECANCELED);
    free(r);

    /* Refused port. */
    /* A port bound but never listening, held until the request is over
     * (closed first, it could go to another test's listener). */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in dsin = {.sin_family = AF_INET};
    dsin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t dl = sizeof dsin;
    CHECK(bind(fd, (struct sockaddr *)&dsin, dl) == 0 &&
          getsockname(fd, (struct sockaddr *)&dsin, &dl) == 0);
    char u[64];
    snprintf(u, sizeof u, "http://127.0.0.1:%u/", ntohs(dsin.sin_port));
    r = go(u);
    run(r);
    close(fd);
    CHECK_EQ_INT(r->err, -ECONNREFUSED);
    free(r);

    /* Connect timeout: a listener whose backlog is full. */
    uint16_t fp;
    int lfd = listen_local(&fp, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons(fp);
    int fill[3];
    for (int i = 0; i < 3; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&sin, sizeof sin);
    }
    struct pollfd p = {fill[0], POLLOUT, 0};
    CHECK(poll(&p, 1, 20000) == 1);
    snprintf(u, sizeof u, "http://127.0.0.1:%u/", fp);
    r = go(u);
    run(r);
    CHECK_EQ_INT(r->err, -ETIMEDOUT);
    free(r);
    for (int i = 0; i < 3; i++)
        close(fill[i]);
    close(lfd);

    /* Bad URLs and headers: a failed future. */
    const char *bad[] = {"ftp://x/", "http://", "http://h:99999/",
                         "http://h/a b", "http+unix:///x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        r = go(bad[i]);
        run(r);
        CHECK_MSG(r->err == -EINVAL, "%s: %d", bad[i], r->err);
        free(r);
    }
    r = go(url(0, "/hi"));
    r->hdr[0].name = "X-Evil";
    r->hdr[0].value = "a\r\nInjected: 1";
    r->rq.headers = r->hdr;
    r->rq.num_headers = 1;
    run(r);
    CHECK_EQ_INT(r->err, -EINVAL);
    free(r);
}

static void test_redirect(void)
{
    cl = cl_main;
    result *r = go(url(0, "/redir"));
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK_EQ_INT(r->status, 302); /* off by default */
    free(r);
    cl = cl_small; /* follows up to 2 */
    r = go(url(1, "/redir"));
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK_EQ_INT(r->status, 200);
    CHECK_STRN(r->body, r->body_len, "hello");
    free(r);
}

/* ------------------------------------------------ upgrade */

static _Atomic int up_done;
static char up_rest[16], up_got[16];

static size_t up_data(wisp_conn_t *c, const char *d, size_t n, void *arg)
{
    (void)arg;
    if (n >= 4) {
        memcpy(up_got, d, 4);
        bump(&up_done);
        wisp_conn_close(c);
        return n;
    }
    return 0;
}

static void up_close(wisp_conn_t *c, int reason, void *arg)
{
    (void)c, (void)reason, (void)arg;
}

static const wisp_conn_handlers_t up_handlers = {up_data, NULL, up_close,
                                                 NULL, NULL};

static void on_up(wisp_conn_t *c, const wisp_client_response_t *resp,
                  const char *rest, size_t n, void *arg)
{
    (void)arg;
    CHECK_EQ_INT(wisp_client_response_status(resp), 101);
    memcpy(up_rest, rest, n < 15 ? n : 15);
    CHECK(wisp_conn_set_handlers(c, &up_handlers, NULL) == 0);
    CHECK(wisp_conn_write(c, "PING", 4) == 0);
}

static void test_upgrade(void)
{
    atomic_store(&reply, "HTTP/1.1 101 Switching Protocols\r\n"
                         "Upgrade: test\r\nConnection: Upgrade\r\n\r\nHELLO");
    result *r = go(raw_url());
    r->hdr[0].name = "Upgrade";
    r->hdr[0].value = "test";
    r->hdr[1].name = "Connection";
    r->hdr[1].value = "Upgrade";
    r->rq.headers = r->hdr;
    r->rq.num_headers = 2;
    r->rq.on_upgrade = on_up;
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK_EQ_INT(r->status, 101);
    CHECK(wait_for(&up_done, 1));
    CHECK(strcmp(up_rest, "HELLO") == 0);
    CHECK(memcmp(up_got, "PONG", 4) == 0);
    free(r);
}

/* ------------------------------------------------ unix and names */

static void test_unix_and_dns(const char *sock)
{
    char u[256] = "http+unix://";
    for (const char *p = sock; *p; p++) {
        if (*p == '/')
            strcat(u, "%2F");
        else
            u[strlen(u) + 1] = 0, u[strlen(u)] = *p;
    }
    strcat(u, "/hi");
    result *r = go(u);
    run(r);
    CHECK_EQ_INT(r->err, 0);
    CHECK_EQ_INT(r->status, 200);
    CHECK_STRN(r->body, r->body_len, "hello");
    free(r);

    char nu[128];
    snprintf(nu, sizeof nu, "http://localhost:%u/hi", port);
    for (int i = 0; i < 2; i++) { /* the second from the cache */
        r = go(nu);
        run(r);
        CHECK_MSG(r->err == 0 && r->status == 200, "localhost: %d", r->err);
        free(r);
    }
    r = go("http://no-such-host.invalid/");
    run(r);
    CHECK(r->err == -ENOENT || r->err == -EAGAIN);
    free(r);
}

/* ------------------------------------------------ main */

static wisp_pool_t *pool;


static void destroy_all(void)
{
    /* One request pending on a silent upstream: destroy fails it. */
    wisp_client_destroy(cl_main);
    wisp_client_destroy(cl_small);
    wisp_client_destroy(cl_raw);
}

static void *loop_main(void *arg)
{
    wisp_loop_run(arg);
    return NULL;
}


int main(void)
{
    big = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)(i * 7 + (i >> 13));

    char sock[64];
    snprintf(sock, sizeof sock, "/tmp/wisp-client-%d.sock", (int)getpid());
    unlink(sock);
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.threads = 1;
    cfg.handle_signals = 0;
    cfg.unix_path = sock;
    srv = wisp_server_create(&cfg);
    wisp_route_opts_t big_body = {.max_body_bytes = 8u << 20};
    CHECK(wisp_server_route(srv, WISP_METHOD_GET, "/hi", r_hi, NULL,
                            NULL) == 0);
    CHECK(wisp_server_route(srv, WISP_METHOD_GET, "/big", r_big, NULL,
                            NULL) == 0);
    CHECK(wisp_server_route(srv, WISP_METHOD_GET, "/chunked", r_chunked,
                            NULL, NULL) == 0);
    CHECK(wisp_server_route(srv, WISP_METHOD_ANY, "/echo", r_echo, NULL,
                            &big_body) == 0);
    CHECK(wisp_server_route(srv, WISP_METHOD_GET, "/redir", r_redir, NULL,
                            NULL) == 0);
    CHECK(wisp_server_listen(srv) == 0);
    CHECK(wisp_server_start(srv) == 0);
    port = wisp_server_port(srv);

    raw_fd = listen_local(&raw_port, 16);
    atomic_store(&reply, "");
    pthread_t raw_th;
    pthread_create(&raw_th, NULL, raw_main, NULL);

    wisp_pool_config_t pc;
    wisp_pool_config_init(&pc);
    pc.min_threads = 1;
    pc.max_threads = 1;
    pool = wisp_pool_create(&pc);
    CHECK(pool != NULL);

    loop = wisp_loop_create();
    wisp_client_config_t cc;
    wisp_client_config_init(&cc);
    cc.pool = pool;
    cl_main = wisp_client_create(loop, &cc);
    cc.max_per_host = 2;
    cc.max_redirects = 2;
    cl_small = wisp_client_create(loop, &cc);
    wisp_client_config_init(&cc);
    cc.header_timeout_ms = 300;
    cc.body_timeout_ms = 300;
    cc.connect_timeout_ms = 300;
    cc.max_body_bytes = 1u << 20;
    cl_raw = wisp_client_create(loop, &cc);
    CHECK(cl_main && cl_small && cl_raw);
    cl = cl_main;
    pthread_t th;
    pthread_create(&th, NULL, loop_main, loop);

    test_get_and_reuse();
    cl = cl_small;
    test_limit();
    cl = cl_main;
    test_streamed();
    test_upload();
    cl = cl_raw;
    test_malformed();
    test_timeouts_and_cancel();
    test_upgrade();
    test_redirect();
    cl = cl_main;
    test_unix_and_dns(sock);

    /* Destroy with a request in flight on a silent upstream. */
    atomic_store(&reply, "");
    cl = cl_raw;
    result *r = go(raw_url());
    int reqs = atomic_load(&raw_requests);
    CHECK(wisp_loop_post(loop, send_task, r) == 0);
    CHECK(wait_for(&raw_requests, reqs + 1));
    on_loop(destroy_all);
    CHECK(wait_for(&r->done, 1));
    CHECK_EQ_INT(r->err, -ECANCELED);
    free(r);

    wisp_loop_break(loop);
    pthread_join(th, NULL);
    wisp_loop_destroy(loop);
    wisp_pool_destroy(pool);
    shutdown(raw_fd, SHUT_RDWR);
    close(raw_fd);
    pthread_join(raw_th, NULL);
    wisp_server_stop(srv);
    wisp_server_wait(srv);
    wisp_server_destroy(srv);
    unlink(sock);
    free(big);
    return t_done("client");
}
