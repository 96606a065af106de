/* In-process server tests of the public API: a route taking the
 * connection over after a 101 head (wisp_res_upgrade, wisp_conn_*), bytes
 * that followed the upgrade request delivered first, a response finished
 * later from a timer, the access-log and log hooks, and stop/wait driven
 * from the application. */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"

static _Atomic int closes, close_reason = 12345, log_lines, alog_lines;
static _Atomic int data_calls, held, hold_aborts;

/* Poll `v` until it reaches `want`; the 30 s are the failure bound. */
static int wait_atomic(_Atomic int *v, int want)
{
    for (int i = 0; i < 30000 && atomic_load(v) < want; i++)
        usleep(1000);
    return atomic_load(v) >= want;
}

static size_t up_data(wisp_conn_t *c, const char *data, size_t len, void *arg)
{
    (void)arg;
    atomic_fetch_add(&data_calls, 1);
    /* Consume only whole lines: what is left is presented again. */
    const char *nl = memchr(data, '\n', len);
    if (!nl)
        return 0;
    size_t n = (size_t)(nl - data) + 1;
    if (n == 6 && memcmp(data, "close\n", 6) == 0) {
        wisp_conn_write(c, "bye\n", 4);
        wisp_conn_close(c);
        return n;
    }
    wisp_conn_write(c, "echo:", 5);
    wisp_conn_write(c, data, n);
    return n;
}

static void up_close(wisp_conn_t *c, int reason, void *arg)
{
    (void)c;
    (void)arg;
    atomic_store(&close_reason, reason);
    atomic_fetch_add(&closes, 1);
}

static const wisp_conn_handlers_t up_handlers = {
    .on_data = up_data,
    .on_close = up_close,
};

static void on_up(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_str_t u = wisp_req_header(req, "upgrade");
    if (!u.ptr || u.len != 7 || memcmp(u.ptr, "rawecho", 7) != 0) {
        wisp_res_header(res, "Upgrade", "rawecho");
        wisp_res_send(res, 426, "text/plain", "upgrade\n", 8);
        return;
    }
    wisp_res_header(res, "Upgrade", "rawecho");
    int r = wisp_res_upgrade(res, &up_handlers, NULL);
    if (r != 0)
        wisp_res_send(res, 500, NULL, NULL, 0);
}

typedef struct later {
    wisp_timer_t t;
    wisp_res_t *res;
} later;

static void later_fire(wisp_timer_t *t, void *arg)
{
    later *l = arg;
    (void)t;
    wisp_res_header(l->res, "X-Later", "yes");
    wisp_res_send(l->res, 200, "text/plain", "later\n", 6);
    free(l);
}

static void later_abort(wisp_res_t *res, void *arg)
{
    later *l = arg;
    (void)res;
    wisp_timer_stop(&l->t);
    free(l);
}

static void on_later(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    later *l = calloc(1, sizeof *l);
    l->res = res;
    wisp_timer_init(wisp_res_loop(res), &l->t);
    wisp_timer_start(&l->t, 30, later_fire, l);
    wisp_res_on_abort(res, later_abort, l);
}

/* Never answers: holds the response until the client leaves. */
static void hold_abort(wisp_res_t *res, void *arg)
{
    (void)res;
    free(arg);
    atomic_fetch_add(&hold_aborts, 1);
}

static void on_hold(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_on_abort(res, hold_abort, malloc(16));
    atomic_fetch_add(&held, 1);
}

/* Handlers run on the server's threads: they count what went wrong in an
 * atomic that the main thread checks. */
static _Atomic int handler_bad;

static void on_hello(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    int bad = 0;
    bad += wisp_res_status(res, 99) != -EINVAL;
    bad += wisp_res_header(res, "Content-Length", "5") != -EINVAL;
    bad += wisp_res_header(res, "Bad Name", "x") != -EINVAL;
    bad += wisp_res_header(res, "X-Ok", "a\r\nInjected: 1") != -EINVAL;
    wisp_res_send(res, 200, "text/plain", "hi", 2);
    bad += wisp_res_send(res, 200, NULL, NULL, 0) != WISP_ESTATE;
    atomic_fetch_add(&handler_bad, bad);
}

static void alog(const char *line, size_t len, void *arg)
{
    (void)arg;
    (void)line;
    (void)len;
    atomic_fetch_add(&alog_lines, 1);
}

static void log_hook(wisp_log_level_t level, const char *msg, void *arg)
{
    (void)level;
    (void)msg;
    (void)arg;
    atomic_fetch_add(&log_lines, 1);
}

static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Read until `want` appears (or EOF/timeout); returns bytes in buf. */
static size_t read_until(int fd, char *buf, size_t cap, const char *want)
{
    size_t n = 0;
    buf[0] = 0;
    while (n + 1 < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 3000) <= 0)
            break;
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        buf[n] = 0;
        if (want && strstr(buf, want))
            break;
    }
    return n;
}

static void send_all(int fd, const char *s)
{
    size_t l = strlen(s);
    while (l) {
        ssize_t w = write(fd, s, l);
        if (w <= 0)
            return;
        s += w;
        l -= (size_t)w;
    }
}

int main(void)
{
    wisp_log_set_hook(log_hook, NULL);
    wisp_log(WISP_LOG_INFO, "test %d", 1);
    wisp_log(WISP_LOG_DEBUG, "dropped below the level");
    CHECK_EQ_INT(atomic_load(&log_lines), 1);
    wisp_log_set_hook(NULL, NULL);
    CHECK(strcmp(wisp_strerror(WISP_EPARSE), "malformed HTTP message") == 0);
    CHECK(strcmp(wisp_method_name(WISP_METHOD_PATCH), "PATCH") == 0);

    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 2;
    cfg.handle_signals = 0;
    cfg.access_log_format = WISP_ACCESS_LOG_COMMON;
    cfg.access_log_hook = alog;
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK(srv != NULL);
    CHECK_EQ_INT(wisp_server_route(srv, WISP_METHOD_GET, "/up", on_up, NULL,
                                   NULL), 0);
    CHECK_EQ_INT(wisp_server_route(srv, WISP_METHOD_GET, "/up", on_up, NULL,
                                   NULL), -EEXIST);
    CHECK_EQ_INT(wisp_server_route(srv, WISP_METHOD_GET, "nope", on_up,
                                   NULL, NULL), -EINVAL);
    wisp_server_route(srv, WISP_METHOD_GET, "/later", on_later, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/hold", on_hold, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/", on_hello, NULL, NULL);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    CHECK_EQ_INT(wisp_server_listen(srv), WISP_ESTATE);
    CHECK_EQ_INT(wisp_server_route(srv, WISP_METHOD_GET, "/x", on_up, NULL,
                                   NULL), WISP_ESTATE);
    CHECK_EQ_INT(wisp_server_threads(srv), 2);
    CHECK(wisp_server_loop(srv, 0) != NULL);
    CHECK(wisp_server_loop(srv, 2) == NULL);
    uint16_t port = wisp_server_port(srv);
    CHECK(port != 0);
    CHECK_EQ_INT(wisp_server_start(srv), 0);

    char buf[8192];
    /* 1. Upgrade; the line after the request arrives with it. */
    int fd = dial(port);
    send_all(fd, "GET /up HTTP/1.1\r\nHost: x\r\nUpgrade: rawecho\r\n"
                 "Connection: upgrade\r\n\r\nfirst\n");
    read_until(fd, buf, sizeof buf, "echo:first\n");
    CHECK_MSG(strncmp(buf, "HTTP/1.1 101 Switching Protocols\r\n", 34) == 0,
              "%s", buf);
    CHECK(strstr(buf, "\r\nUpgrade: rawecho\r\n") != NULL);
    CHECK(strstr(buf, "\r\nConnection: Upgrade\r\n") != NULL);
    CHECK(strstr(buf, "\r\n\r\necho:first\n") != NULL);
    /* A line split over two writes is consumed once whole: the second
     * half goes once the server has been handed the first (and kept it,
     * returning 0). */
    int calls = atomic_load(&data_calls);
    send_all(fd, "sec");
    CHECK(wait_atomic(&data_calls, calls + 1));
    send_all(fd, "ond\n");
    read_until(fd, buf, sizeof buf, "\n");
    CHECK_MSG(strcmp(buf, "echo:second\n") == 0, "%s", buf);
    send_all(fd, "close\n");
    size_t n = read_until(fd, buf, sizeof buf, NULL); /* until EOF */
    CHECK_MSG(n == 4 && strcmp(buf, "bye\n") == 0, "%s", buf);
    close(fd);
    CHECK(wait_atomic(&closes, 1));
    CHECK_EQ_INT(atomic_load(&closes), 1);
    CHECK_EQ_INT(atomic_load(&close_reason), 0);

    /* 2. Without the Upgrade header the route answers 426. */
    fd = dial(port);
    send_all(fd, "GET /up HTTP/1.1\r\nHost: x\r\n\r\n");
    read_until(fd, buf, sizeof buf, "upgrade\n");
    CHECK(strncmp(buf, "HTTP/1.1 426 Upgrade Required\r\n", 31) == 0);
    close(fd);

    /* 3. An answer given later, with a pipelined request behind it that
     *    must wait its turn. */
    fd = dial(port);
    send_all(fd, "GET /later HTTP/1.1\r\nHost: x\r\n\r\n"
                 "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    read_until(fd, buf, sizeof buf, "\r\n\r\nhi");
    char *a = strstr(buf, "later\n"), *b = strstr(buf, "\r\n\r\nhi");
    CHECK(a && b && a < b);
    CHECK(strstr(buf, "X-Later: yes\r\n") != NULL);
    close(fd);

    /* 4. A client leaving while its answer is pending: the abort
     *    callback runs, once, and frees the state (ASan/valgrind see any
     *    leak); the server goes on serving. */
    fd = dial(port);
    send_all(fd, "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(wait_atomic(&held, 1)); /* the handler holds the response */
    CHECK_EQ_INT(atomic_load(&hold_aborts), 0);
    close(fd);
    CHECK(wait_atomic(&hold_aborts, 1));
    CHECK_EQ_INT(atomic_load(&hold_aborts), 1);
    fd = dial(port);
    send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    read_until(fd, buf, sizeof buf, "\r\n\r\nhi");
    CHECK(strncmp(buf, "HTTP/1.1 200 ", 13) == 0);
    close(fd);

    /* 5. An upgraded connection still open at stop gets on_close. */
    fd = dial(port);
    send_all(fd, "GET /up HTTP/1.1\r\nHost: x\r\nUpgrade: rawecho\r\n"
                 "Connection: upgrade\r\n\r\n");
    read_until(fd, buf, sizeof buf, "\r\n\r\n");
    CHECK(strncmp(buf, "HTTP/1.1 101 ", 13) == 0);

    wisp_server_stop(srv);
    CHECK_EQ_INT(wisp_server_wait(srv), 0);
    CHECK_EQ_INT(atomic_load(&closes), 2);
    CHECK_EQ_INT(atomic_load(&close_reason), WISP_ECLOSED);
    n = read_until(fd, buf, sizeof buf, NULL);
    CHECK_EQ_INT(n, 0); /* closed */
    close(fd);
    CHECK(atomic_load(&alog_lines) >= 5);
    wisp_server_destroy(srv);

    /* 6. IPv6 and a Unix socket on one server. */
    wisp_server_config_init(&cfg);
    cfg.host = "::1";
    cfg.port = 0;
    cfg.threads = 1;
    cfg.handle_signals = 0;
    char upath[64];
    snprintf(upath, sizeof upath, "/tmp/wisp-test-%d.sock", (int)getpid());
    cfg.unix_path = upath;
    srv = wisp_server_create(&cfg);
    wisp_server_route(srv, WISP_METHOD_GET, "/", on_hello, NULL, NULL);
    int lr = wisp_server_listen(srv);
    if (lr == -EADDRNOTAVAIL || lr == -EAFNOSUPPORT) {
        printf("upgrade: no IPv6 loopback here, skipped\n");
    } else {
        CHECK_EQ_INT(lr, 0);
        CHECK_EQ_INT(wisp_server_start(srv), 0);
        int f6 = socket(AF_INET6, SOCK_STREAM, 0);
        struct sockaddr_in6 a6 = {.sin6_family = AF_INET6,
                                  .sin6_port = htons(wisp_server_port(srv))};
        a6.sin6_addr = in6addr_loopback;
        CHECK_EQ_INT(connect(f6, (struct sockaddr *)&a6, sizeof a6), 0);
        send_all(f6, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        read_until(f6, buf, sizeof buf, "\r\n\r\nhi");
        CHECK(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
        close(f6);
        int fu = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un au = {.sun_family = AF_UNIX};
        memcpy(au.sun_path, upath, strlen(upath) + 1);
        CHECK_EQ_INT(connect(fu, (struct sockaddr *)&au, sizeof au), 0);
        send_all(fu, "GET / HTTP/1.0\r\n\r\n");
        n = read_until(fu, buf, sizeof buf, NULL);
        CHECK(n > 0 && strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0);
        close(fu);
        wisp_server_stop(srv);
        CHECK_EQ_INT(wisp_server_wait(srv), 0);
    }
    wisp_server_destroy(srv);
    CHECK(access(upath, F_OK) != 0); /* the socket file is removed */
    CHECK_EQ_INT(atomic_load(&handler_bad), 0);
    return t_done("upgrade");
}
