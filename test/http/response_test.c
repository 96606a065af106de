/* The response calls' documented answers (include/wisp/http.h), checked
 * on an in-process server: wisp_res_status's range, the -EINVAL of
 * wisp_res_send, wisp_res_send_ref and wisp_res_upgrade (and that the
 * response stays usable after it), WISP_ESTATE once the head is sent;
 * constructors' NULL + errno (include/wisp/common.h).
 * Handlers run on the server's thread: they store each call's return in
 * an atomic slot that the main thread checks once the answer arrived. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"

#define SLOTS 16
static _Atomic int got[SLOTS];
static _Atomic int dones;

static void note(int i, int r)
{
    atomic_store(&got[i], r);
}

static void on_status(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    note(0, wisp_res_status(res, 100));
    note(1, wisp_res_status(res, 101));
    note(2, wisp_res_status(res, 199));
    note(3, wisp_res_status(res, 1000));
    note(4, wisp_res_status(res, -200));
    note(5, wisp_res_status(res, 200));
    note(6, wisp_res_status(res, 999));
    note(7, wisp_res_status(res, 299));
    note(8, wisp_res_write(res, NULL, 0)); /* sends the head only */
    note(9, wisp_res_status(res, 200));
    note(10, wisp_res_end(res));
}

static void count_done(void *arg)
{
    (void)arg;
    atomic_fetch_add(&dones, 1);
}

static void on_send(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    note(0, wisp_res_send(res, 101, NULL, NULL, 0));
    note(1, wisp_res_send(res, 199, NULL, NULL, 0));
    note(2, wisp_res_send(res, 1000, NULL, NULL, 0));
    note(3, wisp_res_send(res, 200, NULL, NULL, 5)); /* no body, len 5 */
    note(4, wisp_res_send_ref(res, 99, NULL, "x", 1, count_done, NULL));
    note(5, wisp_res_send_ref(res, 200, NULL, NULL, 3, count_done, NULL));
    note(6, wisp_res_sendfile(res, 1000, NULL, -1, 0, 0));
    /* None of those started the response. */
    note(7, wisp_res_send(res, 201, "text/plain", "sent\n", 5));
}

static void on_started(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    note(0, wisp_res_write(res, "part\n", 5));
    note(1, wisp_res_send(res, 200, NULL, "x", 1));
    note(2, wisp_res_send_ref(res, 200, NULL, "x", 1, count_done, NULL));
    note(3, wisp_res_end(res));
}

static size_t up_data(wisp_conn_t *c, const char *d, size_t len, void *arg)
{
    (void)c;
    (void)d;
    (void)arg;
    return len;
}

static void up_close(wisp_conn_t *c, int reason, void *arg)
{
    (void)c;
    (void)reason;
    (void)arg;
}

static const wisp_conn_handlers_t no_data = {.on_close = up_close};
static const wisp_conn_handlers_t no_close = {.on_data = up_data};
static const wisp_conn_handlers_t good = {.on_data = up_data,
                                          .on_close = up_close};

static void on_upgrade(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    note(0, wisp_res_upgrade(res, NULL, NULL));
    note(1, wisp_res_upgrade(res, &no_data, NULL));
    note(2, wisp_res_upgrade(res, &no_close, NULL));
    /* The response is unchanged: it still answers normally. */
    note(3, wisp_res_send(res, 200, "text/plain", "still\n", 6));
}

static const wisp_ws_handlers_t ws_no_message = {.on_open = NULL};

static void on_ws_bad(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    note(0, wisp_ws_upgrade(req, res, NULL, NULL, NULL));
    note(1, wisp_ws_upgrade(req, res, &ws_no_message, NULL, NULL));
    note(2, wisp_res_send(res, 200, "text/plain", "plain\n", 6));
}

static void on_upgrade_late(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    note(0, wisp_res_content_length(res, 5));
    note(1, wisp_res_write(res, NULL, 0)); /* head sent */
    note(2, wisp_res_upgrade(res, &good, NULL));
    note(3, wisp_res_write(res, "late\n", 5));
    note(4, wisp_res_end(res));
}

/* A terminal call that finds the socket broken finishes the response
 * itself: its abort callback must not run inside the call (nor later).
 * The loop thread waits in a timer callback until the client has reset
 * the connection, so the send is what discovers it. */
static _Atomic int reset_done, brk_held, brk_aborts, brk_ret = 12345;
static _Atomic int brk_aborts_inside = -1;
static wisp_timer_t brk_timer;
static wisp_res_t *brk_res;
static char big[256 * 1024];

static void brk_abort(wisp_res_t *res, void *arg)
{
    (void)res;
    (void)arg;
    atomic_fetch_add(&brk_aborts, 1);
}

static void brk_fire(wisp_timer_t *t, void *arg)
{
    (void)t;
    (void)arg;
    atomic_store(&brk_held, 1); /* the loop is here, not in epoll */
    for (int i = 0; i < 30000 && !atomic_load(&reset_done); i++)
        usleep(1000);
    int r = wisp_res_send(brk_res, 200, NULL, big, sizeof big);
    atomic_store(&brk_aborts_inside, atomic_load(&brk_aborts));
    atomic_store(&brk_ret, r);
}

static void on_broken(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    brk_res = res;
    wisp_res_on_abort(res, brk_abort, NULL);
    wisp_timer_init(wisp_res_loop(res), &brk_timer);
    wisp_timer_start(&brk_timer, 1, brk_fire, NULL);
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
    return fd;
}

/* One request on a fresh connection (closed by the server after the
 * answer: Connection: close); reads until EOF, 30 s at most. */
static size_t get(uint16_t port, const char *path, char *buf, size_t cap)
{
    for (int i = 0; i < SLOTS; i++)
        atomic_store(&got[i], 12345);
    int fd = dial(port);
    if (fd < 0)
        return 0;
    char req[256];
    int l = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     path);
    if (write(fd, req, (size_t)l) != l) {
        close(fd);
        return 0;
    }
    size_t n = 0;
    while (n + 1 < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 30000) <= 0)
            break;
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = 0;
    close(fd);
    return n;
}

/* The head of a plain 200 is cached per loop for the last Content-Type
 * (response.c): types that differ in content but not length, one too
 * long to cache, a HEAD, a close and an added field in between must
 * each get their own head, byte for byte what the general path writes. */
static const char long_type[] =
    "application/vnd.example.a-rather-long-type-name+json; charset=utf-8";

static void on_ctype(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_str_t q = wisp_req_query(req);
    char k = q.len ? q.ptr[0] : 'a';
    const char *t = k == 'a' ? "text/plain" : k == 'b' ? "text/html!"
                  : k == 'c' ? long_type : "text/plain";
    if (k == 'h')
        wisp_res_header(res, "X-Extra", "1");
    wisp_res_send(res, 200, t, "body\n", 5);
}

/* Read one response to a request on fd: its head and a body of the
 * Content-Length it declares (none for HEAD). Returns the head length
 * (0 on failure); buf holds head and body, NUL-terminated. */
static size_t read_one(int fd, char *buf, size_t cap, int head_only)
{
    size_t n = 0, hl = 0, want = 0;
    for (;;) {
        if (!hl) {
            buf[n] = 0;
            char *e = strstr(buf, "\r\n\r\n");
            if (e) {
                hl = (size_t)(e + 4 - buf);
                const char *c = strstr(buf, "Content-Length: ");
                want = hl + (c && !head_only ? strtoul(c + 16, NULL, 10) : 0);
            }
        }
        if (hl && n >= want)
            break;
        struct pollfd p = {fd, POLLIN, 0};
        if (n + 1 >= cap || poll(&p, 1, 30000) <= 0)
            return 0;
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            return 0;
        n += (size_t)r;
    }
    buf[n] = 0;
    return hl;
}

static void test_cached_heads(uint16_t port)
{
    static const struct {
        const char *req;
        const char *type;     /* Content-Type expected */
        int head, close, extra;
    } steps[] = {
        {"GET /ctype?a HTTP/1.1\r\nHost: x\r\n\r\n", "text/plain", 0, 0, 0},
        {"GET /ctype?a HTTP/1.1\r\nHost: x\r\n\r\n", "text/plain", 0, 0, 0},
        {"GET /ctype?b HTTP/1.1\r\nHost: x\r\n\r\n", "text/html!", 0, 0, 0},
        {"GET /ctype?c HTTP/1.1\r\nHost: x\r\n\r\n", long_type, 0, 0, 0},
        {"GET /ctype?a HTTP/1.1\r\nHost: x\r\n\r\n", "text/plain", 0, 0, 0},
        {"HEAD /ctype?a HTTP/1.1\r\nHost: x\r\n\r\n", "text/plain", 1, 0, 0},
        {"GET /ctype?h HTTP/1.1\r\nHost: x\r\n\r\n", "text/plain", 0, 0, 1},
        {"GET /ctype?b HTTP/1.1\r\nHost: x\r\n\r\n", "text/html!", 0, 0, 0},
        {"GET /ctype?a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
         "text/plain", 0, 1, 0},
    };
    int fd = dial(port);
    CHECK(fd >= 0);
    char buf[4096], want[512];
    for (size_t i = 0; fd >= 0 && i < sizeof steps / sizeof steps[0]; i++) {
        size_t l = strlen(steps[i].req);
        CHECK(write(fd, steps[i].req, l) == (ssize_t)l);
        size_t hl = read_one(fd, buf, sizeof buf, steps[i].head);
        CHECK_MSG(hl > 0, "step %zu: no answer", i);
        if (!hl)
            break;
        /* Status line, Server (if any), Date (any second), then the
         * rest exactly. */
        CHECK_MSG(strncmp(buf, "HTTP/1.1 200 OK\r\n", 17) == 0 &&
                      strstr(buf, "\r\nDate: ") != NULL,
                  "step %zu: %s", i, buf);
        const char *rest = strstr(buf, " GMT\r\n");
        CHECK_MSG(rest != NULL, "step %zu: %s", i, buf);
        if (!rest)
            break;
        rest += 6;
        snprintf(want, sizeof want,
                 "Content-Type: %s\r\nContent-Length: 5\r\n%s%s\r\n%s",
                 steps[i].type, steps[i].close ? "Connection: close\r\n" : "",
                 steps[i].extra ? "X-Extra: 1\r\n" : "",
                 steps[i].head ? "" : "body\n");
        CHECK_MSG(strcmp(rest, want) == 0, "step %zu: got\n%s\nwant\n%s", i,
                  rest, want);
    }
    if (fd >= 0)
        close(fd);
}

/* Constructors fail with NULL and errno (common.h). */
static void test_constructor_errno(void)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.max_headers = 0;
    errno = 0;
    CHECK(wisp_server_create(&cfg) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    wisp_server_config_init(&cfg);
    cfg.max_header_bytes = 16u * 1024 * 1024 + 1;
    errno = 0;
    CHECK(wisp_server_create(&cfg) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    errno = 0;
    CHECK(wisp_future_create(NULL) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
}

int main(void)
{
    test_constructor_errno();
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 1;
    cfg.handle_signals = 0;
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK(srv != NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/status", on_status, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/send", on_send, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/started", on_started, NULL,
                      NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/upgrade", on_upgrade, NULL,
                      NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/late", on_upgrade_late, NULL,
                      NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/broken", on_broken, NULL,
                      NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/wsbad", on_ws_bad, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/ctype", on_ctype, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_HEAD, "/ctype", on_ctype, NULL, NULL);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    uint16_t port = wisp_server_port(srv);
    CHECK_EQ_INT(wisp_server_start(srv), 0);
    char buf[4096];

    test_cached_heads(port);

    /* wisp_res_status: 200..999; 1xx (101 included) refused. */
    get(port, "/status", buf, sizeof buf);
    CHECK_MSG(strncmp(buf, "HTTP/1.1 299 ", 13) == 0, "%s", buf);
    CHECK_EQ_INT(got[0], -EINVAL);
    CHECK_EQ_INT(got[1], -EINVAL);
    CHECK_EQ_INT(got[2], -EINVAL);
    CHECK_EQ_INT(got[3], -EINVAL);
    CHECK_EQ_INT(got[4], -EINVAL);
    CHECK_EQ_INT(got[5], 0);
    CHECK_EQ_INT(got[6], 0);
    CHECK_EQ_INT(got[7], 0);
    CHECK_EQ_INT(got[8], 0);
    CHECK_EQ_INT(got[9], WISP_ESTATE);
    CHECK_EQ_INT(got[10], 0);

    /* wisp_res_send / _send_ref / _sendfile: -EINVAL for a status out of
     * range or a NULL body with a length; `done` still runs once; the
     * response stays open. */
    get(port, "/send", buf, sizeof buf);
    CHECK_MSG(strncmp(buf, "HTTP/1.1 201 ", 13) == 0, "%s", buf);
    CHECK(strstr(buf, "\r\n\r\nsent\n") != NULL);
    for (int i = 0; i <= 6; i++)
        CHECK_MSG(got[i] == -EINVAL, "slot %d: %d", i, (int)got[i]);
    CHECK_EQ_INT(got[7], 0);
    CHECK_EQ_INT(atomic_load(&dones), 2);

    /* Once the head is sent (a write), wisp_res_send* say WISP_ESTATE. */
    get(port, "/started", buf, sizeof buf);
    CHECK_MSG(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "%s", buf);
    CHECK(strstr(buf, "part\n") != NULL);
    CHECK_EQ_INT(got[0], 0);
    CHECK_EQ_INT(got[1], WISP_ESTATE);
    CHECK_EQ_INT(got[2], WISP_ESTATE);
    CHECK_EQ_INT(got[3], 0);
    CHECK_EQ_INT(atomic_load(&dones), 3);

    /* wisp_res_upgrade: -EINVAL for a missing table or callback, and the
     * response answers normally afterwards. */
    get(port, "/upgrade", buf, sizeof buf);
    CHECK_MSG(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "%s", buf);
    CHECK(strstr(buf, "\r\n\r\nstill\n") != NULL);
    CHECK_EQ_INT(got[0], -EINVAL);
    CHECK_EQ_INT(got[1], -EINVAL);
    CHECK_EQ_INT(got[2], -EINVAL);
    CHECK_EQ_INT(got[3], 0);

    /* ...and WISP_ESTATE once the head is sent, the response unchanged. */
    get(port, "/late", buf, sizeof buf);
    CHECK_MSG(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "%s", buf);
    CHECK(strstr(buf, "Content-Length: 5\r\n") != NULL);
    CHECK(strstr(buf, "\r\n\r\nlate\n") != NULL);
    CHECK_EQ_INT(got[0], 0);
    CHECK_EQ_INT(got[1], 0);
    CHECK_EQ_INT(got[2], WISP_ESTATE);
    CHECK_EQ_INT(got[3], 0);
    CHECK_EQ_INT(got[4], 0);

    /* wisp_ws_upgrade: -EINVAL for a missing table or on_message, the
     * response unchanged (it answers normally). */
    get(port, "/wsbad", buf, sizeof buf);
    CHECK_MSG(strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "%s", buf);
    CHECK(strstr(buf, "\r\n\r\nplain\n") != NULL);
    CHECK(strstr(buf, "Upgrade") == NULL);
    CHECK_EQ_INT(got[0], -EINVAL);
    CHECK_EQ_INT(got[1], -EINVAL);
    CHECK_EQ_INT(got[2], 0);

    /* A send that finds the connection reset: WISP_ECLOSED, no abort
     * callback inside the call or after; the server goes on serving. */
    int fd = dial(port);
    const char *rq = "GET /broken HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(write(fd, rq, strlen(rq)) == (ssize_t)strlen(rq));
    for (int i = 0; i < 30000 && !atomic_load(&brk_held); i++)
        usleep(1000);
    CHECK(atomic_load(&brk_held));
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd); /* RST */
    atomic_store(&reset_done, 1);
    for (int i = 0; i < 30000 && atomic_load(&brk_ret) == 12345; i++)
        usleep(1000);
    CHECK_EQ_INT(atomic_load(&brk_ret), WISP_ECLOSED);
    CHECK_EQ_INT(atomic_load(&brk_aborts_inside), 0);
    get(port, "/status", buf, sizeof buf);
    CHECK_MSG(strncmp(buf, "HTTP/1.1 299 ", 13) == 0, "%s", buf);
    CHECK_EQ_INT(atomic_load(&brk_aborts), 0);

    wisp_server_stop(srv);
    CHECK_EQ_INT(wisp_server_wait(srv), 0);
    wisp_server_destroy(srv);
    return t_done("http_response");
}
