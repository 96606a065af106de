/* The application the embedding tests run inside a foreign event loop
 * (their own poll loop, GLib, libuv): an embedded wisp server with routes
 * that exercise every way work reaches the host loop, and a client thread
 * that drives it with plain sockets.
 *
 *   GET /hello   answered in the handler
 *   GET /pool    answered when a worker-pool job's future settles (the
 *                pool thread's post must wake the host's poll)
 *   GET /timer   answered by a wisp timer 20 ms later (the host must
 *                honour wisp_server_timeout)
 *   GET /step    the handler calls wisp_server_step: -EBUSY in the body
 *   GET /big     a 1 MiB body (the host must keep stepping on POLLOUT
 *                progress, i.e. the write side is driven too)
 *
 * Every handler checks that it runs on the host loop's thread. The
 * client also pokes the host loop's own source (a pipe the host watches
 * and answers), so both loops are shown to run side by side. When the
 * client is done it calls wisp_server_stop from its own thread; the
 * host's step then returns 1 and the driver destroys the server.
 *
 * A driver: embed_start(); watch wisp_server_fd(srv) and embed_host_rd
 * (pipe: read a byte, call embed_host_poked()); step; when the step
 * returns 1: embed_finish(). */
#ifndef EMBED_APP_H
#define EMBED_APP_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"

#define BIG_LEN (1u << 20)

static wisp_server_t *srv;
static wisp_pool_t *pool;
static pthread_t host_thread, client_thread;
static _Atomic int wrong_thread, client_done;
static int embed_host_rd = -1, host_wr = -1; /* client → host */
static int host_reply_rd = -1, host_reply_wr = -1; /* host → client */
static char *big;

static void on_host_thread(void)
{
    if (!pthread_equal(pthread_self(), host_thread))
        atomic_fetch_add(&wrong_thread, 1);
}

static void h_hello(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req, (void)arg;
    on_host_thread();
    wisp_res_send(res, 200, "text/plain", "hello", 5);
}

static int pool_job(void *arg, void **value, wisp_free_cb *destroy)
{
    (void)arg;
    *value = strdup("from the pool");
    *destroy = free;
    return *value ? 0 : -ENOMEM;
}

static void pool_done(wisp_res_t *res, wisp_future_t *f, void *arg)
{
    (void)arg;
    on_host_thread();
    const char *v = wisp_future_value(f);
    if (v)
        wisp_res_send(res, 200, "text/plain", v, strlen(v));
    else
        wisp_res_send(res, 500, "text/plain", "failed", 6);
}

static void h_pool(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req, (void)arg;
    on_host_thread();
    wisp_future_t *f = wisp_pool_submit(pool, WISP_PRIO_NORMAL,
                                        wisp_res_loop(res), pool_job, NULL);
    if (!f || wisp_res_await(res, f, pool_done, NULL, NULL) < 0)
        wisp_res_send(res, 500, "text/plain", "submit", 6);
    if (f)
        wisp_future_unref(f);
}

typedef struct delayed {
    wisp_timer_t t;
    wisp_res_t *res;
} delayed;

static void timer_fired(wisp_timer_t *t, void *arg)
{
    delayed *d = arg;
    (void)t;
    on_host_thread();
    wisp_res_send(d->res, 200, "text/plain", "timer", 5);
    free(d);
}

static void h_timer(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req, (void)arg;
    on_host_thread();
    delayed *d = calloc(1, sizeof *d);
    if (!d) {
        wisp_res_send(res, 500, "text/plain", "oom", 3);
        return;
    }
    d->res = res;
    wisp_timer_init(wisp_res_loop(res), &d->t);
    wisp_timer_start(&d->t, 20, timer_fired, d);
}

static void h_step(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req, (void)arg;
    on_host_thread();
    char b[32];
    int n = snprintf(b, sizeof b, "%d", wisp_server_step(srv));
    wisp_res_send(res, 200, "text/plain", b, (size_t)n);
}

static void h_big(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req, (void)arg;
    on_host_thread();
    wisp_res_send(res, 200, "application/octet-stream", big, BIG_LEN);
}

/* ---- the client thread (blocking sockets, 30 s bound on every read) */

static int client_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(wisp_server_port(srv))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One GET on `fd`; returns the status, body into *body (malloc'd). */
static int client_get(int fd, const char *path, char **body, size_t *blen)
{
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "User-Agent: embed-test\r\nAccept: */*\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n)
        return -1;
    size_t cap = BIG_LEN + 4096, len = 0;
    char *buf = malloc(cap);
    char *end = NULL;
    while (!end) {
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0) {
            free(buf);
            return -1;
        }
        len += (size_t)r;
        buf[len] = 0;
        end = strstr(buf, "\r\n\r\n");
    }
    int status = atoi(buf + 9);
    const char *cl = strstr(buf, "Content-Length: ");
    size_t want = cl && cl < end ? strtoul(cl + 16, NULL, 10) : 0;
    size_t head = (size_t)(end + 4 - buf);
    while (len - head < want) {
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r <= 0) {
            free(buf);
            return -1;
        }
        len += (size_t)r;
    }
    *blen = want;
    *body = malloc(want + 1);
    memcpy(*body, buf + head, want);
    (*body)[want] = 0;
    free(buf);
    return status;
}

static void expect(int fd, const char *path, const char *body)
{
    char *b = NULL;
    size_t n = 0;
    int st = client_get(fd, path, &b, &n);
    CHECK_MSG(st == 200 && b && strcmp(b, body) == 0,
              "GET %s: status %d body '%s', want '%s'", path, st,
              b ? b : "(none)", body);
    free(b);
}

static void *client_main(void *arg)
{
    (void)arg;
    int fd = client_connect();
    CHECK(fd >= 0);
    for (int round = 0; round < 5 && fd >= 0; round++) {
        expect(fd, "/hello", "hello");
        expect(fd, "/pool", "from the pool");
        expect(fd, "/timer", "timer");
        /* The host loop's own source, while wisp runs inside it. */
        char x = 'x', y = 0;
        CHECK(write(host_wr, &x, 1) == 1);
        struct pollfd p = {.fd = host_reply_rd, .events = POLLIN};
        CHECK(poll(&p, 1, 30000) == 1 && read(host_reply_rd, &y, 1) == 1 &&
              y == 'y');
    }
    if (fd >= 0) {
        char buf[16];
        snprintf(buf, sizeof buf, "%d", -EBUSY);
        expect(fd, "/step", buf);
        char *b = NULL;
        size_t n = 0;
        int st = client_get(fd, "/big", &b, &n);
        CHECK(st == 200 && n == BIG_LEN && b && memcmp(b, big, BIG_LEN) == 0);
        free(b);
        /* A second connection at once: both served by the same step. */
        int fd2 = client_connect();
        CHECK(fd2 >= 0);
        if (fd2 >= 0) {
            expect(fd2, "/hello", "hello");
            close(fd2);
        }
        expect(fd, "/hello", "hello");
        close(fd);
    }
    atomic_store(&client_done, 1);
    wisp_server_stop(srv); /* from a thread of its own: any is fine */
    return NULL;
}

/* The host answers a poke on its own source. */
static void embed_host_poked(void)
{
    char x;
    if (read(embed_host_rd, &x, 1) == 1 && write(host_reply_wr, "y", 1) != 1)
        CHECK(0);
}

static void embed_start(void)
{
    host_thread = pthread_self();
    big = malloc(BIG_LEN);
    for (unsigned i = 0; i < BIG_LEN; i++)
        big[i] = (char)('a' + i % 26);
    int p1[2], p2[2];
    CHECK(pipe(p1) == 0 && pipe(p2) == 0);
    embed_host_rd = p1[0], host_wr = p1[1];
    host_reply_rd = p2[0], host_reply_wr = p2[1];

    wisp_pool_config_t pc;
    wisp_pool_config_init(&pc);
    pc.min_threads = 1;
    pc.max_threads = 2;
    pool = wisp_pool_create(&pc);
    CHECK(pool != NULL);

    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 1;
    cfg.embedded = 1;
    srv = wisp_server_create(&cfg);
    CHECK(srv != NULL);
    CHECK(wisp_server_route(srv, WISP_METHOD_GET, "/hello", h_hello, NULL, NULL) == 0);
    CHECK(wisp_server_route(srv, WISP_METHOD_GET, "/pool", h_pool, NULL, NULL) == 0);
    CHECK(wisp_server_route(srv, WISP_METHOD_GET, "/timer", h_timer, NULL, NULL) == 0);
    CHECK(wisp_server_route(srv, WISP_METHOD_GET, "/step", h_step, NULL, NULL) == 0);
    CHECK(wisp_server_route(srv, WISP_METHOD_GET, "/big", h_big, NULL, NULL) == 0);
    CHECK(wisp_server_fd(srv) == WISP_ESTATE); /* not listening yet */
    CHECK(wisp_server_listen(srv) == 0);
    CHECK(wisp_server_start(srv) == 0);
    CHECK(wisp_server_fd(srv) >= 0);
    CHECK(wisp_server_step(srv) == 0); /* the first step, before polling */
    CHECK(pthread_create(&client_thread, NULL, client_main, NULL) == 0);
}

static void embed_finish(const char *name)
{
    pthread_join(client_thread, NULL);
    CHECK(atomic_load(&client_done) == 1);
    CHECK(wisp_server_step(srv) == 1); /* stays stopped */
    CHECK_EQ_INT(atomic_load(&wrong_thread), 0);
    wisp_server_destroy(srv);
    wisp_pool_destroy(pool);
    close(embed_host_rd), close(host_wr);
    close(host_reply_rd), close(host_reply_wr);
    free(big);
    (void)name;
}

#endif
