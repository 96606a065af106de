/* The io_uring backend's own cases, beyond the whole suite run on it
 * (WISP_BACKEND=io_uring):
 *  - refusal (the WISP_URING_REFUSE test hook makes setup fail as a
 *    kernel with io_uring disabled, without it, or out of locked memory
 *    would): the loop and the server fall back to epoll and serve;
 *  - buffer-ring exhaustion: 4 buffers of 256 bytes, 24 clients sending
 *    8000-byte bodies at once: every multishot recv ends with ENOBUFS
 *    and is armed again as buffers return; every byte arrives;
 *  - short sends: a 4 MiB response to a client with a small receive
 *    buffer arrives whole and in order;
 *  - cancellation on close: connections closed (idle, mid-request) while
 *    their recv is in the kernel; the server goes on serving;
 *  - stop with operations in flight: idle connections, a partial request
 *    and an unread download when the server stops.
 * Skips (77) after the refusal checks when the kernel refuses io_uring. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"

#define BIG (4u << 20)
static char *big;

static void on_len(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_str_t b = wisp_req_body(req);
    /* Checksum too: a reordered or lost buffer changes it. */
    uint32_t sum = 0;
    for (size_t i = 0; i < b.len; i++)
        sum = sum * 31u + (uint8_t)b.ptr[i];
    char out[64];
    int n = snprintf(out, sizeof out, "%zu %u", b.len, sum);
    wisp_res_send(res, 200, "text/plain", out, (size_t)n);
}

static void on_big(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_send_ref(res, 200, "application/octet-stream", big, BIG, NULL,
                      NULL);
}

static wisp_server_t *start(wisp_loop_backend_t be)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 1;
    cfg.handle_signals = 0;
    cfg.backend = be;
    wisp_server_t *srv = wisp_server_create(&cfg);
    if (!srv)
        exit(2);
    wisp_server_route(srv, WISP_METHOD_POST, "/len", on_len, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/big", on_big, NULL, NULL);
    if (wisp_server_listen(srv) != 0 || wisp_server_start(srv) != 0)
        exit(2);
    return srv;
}

static void *waiter(void *arg)
{
    wisp_server_wait(arg);
    return NULL;
}

static void stop(wisp_server_t *srv, pthread_t th)
{
    wisp_server_stop(srv);
    pthread_join(th, NULL);
    wisp_server_destroy(srv);
}

static int dial(uint16_t port, int rcvbuf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    struct timeval tv = {30, 0}; /* the failure bound */
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("connect");
        exit(2);
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Read one response; its body into *body (malloc'd). Returns the status,
 * or -1. */
static int read_resp(int fd, char **body, size_t *blen)
{
    char head[4096];
    size_t h = 0;
    while (h < sizeof head - 1) {
        ssize_t r = read(fd, head + h, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        h++;
        if (h >= 4 && memcmp(head + h - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    head[h] = 0;
    const char *cl = strcasestr(head, "content-length:");
    if (!cl)
        return -1;
    size_t len = strtoul(cl + 15, NULL, 10);
    char *b = malloc(len + 1);
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, b + got, len - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(b);
            return -1;
        }
        got += (size_t)r;
    }
    b[len] = 0;
    *body = b;
    *blen = len;
    return atoi(head + 9);
}

static void refusal(void)
{
    static const char *const why[] = {"EPERM", "ENOSYS", "ENOMEM"};
    for (int i = 0; i < 3; i++) {
        setenv("WISP_URING_REFUSE", why[i], 1);
        wisp_loop_t *l = wisp_loop_create_backend(WISP_LOOP_BACKEND_IO_URING);
        CHECK_MSG(l && strcmp(wisp_loop_backend(l), "epoll") == 0,
                  "refused with %s: %s", why[i],
                  l ? wisp_loop_backend(l) : "no loop");
        wisp_loop_destroy(l);
    }
    /* Through the environment, as the suite's io_uring run asks. */
    setenv("WISP_BACKEND", "io_uring", 1);
    wisp_loop_t *l = wisp_loop_create();
    CHECK(l && strcmp(wisp_loop_backend(l), "epoll") == 0);
    wisp_loop_destroy(l);
    /* A refused server still serves. */
    wisp_server_t *srv = start(WISP_LOOP_BACKEND_IO_URING);
    CHECK_EQ_INT(strcmp(wisp_loop_backend(wisp_server_loop(srv, 0)),
                        "epoll"), 0);
    pthread_t th;
    pthread_create(&th, NULL, waiter, srv);
    int fd = dial(wisp_server_port(srv), 0);
    const char *rq = "POST /len HTTP/1.1\r\nHost: x\r\n"
                     "Content-Length: 3\r\n\r\nabc";
    CHECK_EQ_INT(send_all(fd, rq, strlen(rq)), 0);
    char *body = NULL;
    size_t bl = 0;
    CHECK_EQ_INT(read_resp(fd, &body, &bl), 200);
    CHECK(body && strncmp(body, "3 ", 2) == 0);
    free(body);
    close(fd);
    stop(srv, th);
    unsetenv("WISP_URING_REFUSE");
    /* An unknown backend is an error, not a fallback. */
    errno = 0;
    CHECK(wisp_loop_create_backend((wisp_loop_backend_t)7) == NULL &&
          errno == EINVAL);
    /* WISP_BACKEND=epoll, and no variable: epoll. */
    setenv("WISP_BACKEND", "epoll", 1);
    l = wisp_loop_create_backend(WISP_LOOP_BACKEND_DEFAULT);
    CHECK(l && strcmp(wisp_loop_backend(l), "epoll") == 0);
    wisp_loop_destroy(l);
    unsetenv("WISP_BACKEND");
}

#define CLIENTS 24
#define BODY 8000

static void exhaustion(uint16_t port)
{
    static char payload[BODY];
    uint32_t sum = 0;
    for (size_t i = 0; i < BODY; i++) {
        payload[i] = (char)('a' + (i * 7) % 26);
        sum = sum * 31u + (uint8_t)payload[i];
    }
    char want[64];
    snprintf(want, sizeof want, "%d %u", BODY, sum);
    int fds[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        fds[i] = dial(port, 0);
    char head[128];
    int hl = snprintf(head, sizeof head,
                      "POST /len HTTP/1.1\r\nHost: x\r\n"
                      "Content-Length: %d\r\n\r\n", BODY);
    /* Two rounds on the same connections: the ring is exhausted each
     * time, every recv is armed again. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < CLIENTS; i++) {
            CHECK(send_all(fds[i], head, (size_t)hl) == 0 &&
                  send_all(fds[i], payload, BODY) == 0);
        }
        int ok = 0;
        for (int i = 0; i < CLIENTS; i++) {
            char *body = NULL;
            size_t bl = 0;
            int st = read_resp(fds[i], &body, &bl);
            if (st == 200 && bl == strlen(want) &&
                memcmp(body, want, bl) == 0)
                ok++;
            else
                fprintf(stderr, "client %d: status %d body %s\n", i, st,
                        body ? body : "(none)");
            free(body);
        }
        CHECK_EQ_INT(ok, CLIENTS);
    }
    for (int i = 0; i < CLIENTS; i++)
        close(fds[i]);
}

static void short_sends(uint16_t port)
{
    int fd = dial(port, 4096);
    const char *rq = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_EQ_INT(send_all(fd, rq, strlen(rq)), 0);
    char *body = NULL;
    size_t bl = 0;
    CHECK_EQ_INT(read_resp(fd, &body, &bl), 200);
    CHECK_EQ_INT(bl, BIG);
    CHECK(body && memcmp(body, big, BIG) == 0);
    free(body);
    close(fd);
}

static void cancel_on_close(uint16_t port)
{
    int fds[40];
    for (int i = 0; i < 40; i++)
        fds[i] = dial(port, 0);
    /* Half of them mid-request (the server holds a partial head). */
    for (int i = 0; i < 40; i += 2)
        send_all(fds[i], "POST /len HTTP/1.1\r\nHo", 22);
    /* A request on a fresh connection proves they were all accepted
     * (one loop, accepted in order) before they go away. */
    int probe = dial(port, 0);
    const char *rq = "POST /len HTTP/1.1\r\nHost: x\r\n"
                     "Content-Length: 1\r\n\r\nz";
    send_all(probe, rq, strlen(rq));
    char *body = NULL;
    size_t bl = 0;
    CHECK_EQ_INT(read_resp(probe, &body, &bl), 200);
    free(body);
    for (int i = 0; i < 40; i++) {
        if (i % 4 == 1) {
            /* An abortive close: RST instead of FIN. */
            struct linger lg = {1, 0};
            setsockopt(fds[i], SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        close(fds[i]);
    }
    /* Still served, on the old connection and a new one. */
    send_all(probe, rq, strlen(rq));
    CHECK_EQ_INT(read_resp(probe, &body, &bl), 200);
    free(body);
    close(probe);
    probe = dial(port, 0);
    send_all(probe, rq, strlen(rq));
    CHECK_EQ_INT(read_resp(probe, &body, &bl), 200);
    free(body);
    close(probe);
}

int main(void)
{
    big = malloc(BIG);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (char)(i * 2654435761u >> 24);
    refusal();

    wisp_loop_t *l = wisp_loop_create_backend(WISP_LOOP_BACKEND_IO_URING);
    int have = l && strcmp(wisp_loop_backend(l), "io_uring") == 0;
    wisp_loop_destroy(l);
    if (!have) {
        printf("uring: the kernel refuses io_uring here; rest skipped\n");
        free(big);
        int r = t_done("uring");
        return r ? r : 77;
    }

    /* A tiny buffer ring, so a few active connections exhaust it. */
    setenv("WISP_URING_BUFS", "4", 1);
    setenv("WISP_URING_BUF_SIZE", "256", 1);
    wisp_server_t *srv = start(WISP_LOOP_BACKEND_IO_URING);
    CHECK_EQ_INT(strcmp(wisp_loop_backend(wisp_server_loop(srv, 0)),
                        "io_uring"), 0);
    pthread_t th;
    pthread_create(&th, NULL, waiter, srv);
    uint16_t port = wisp_server_port(srv);
    exhaustion(port);
    short_sends(port);
    cancel_on_close(port);

    /* Stop with operations in flight: idle connections (recv armed), a
     * partial request, a download nobody reads (a send poll armed). */
    int idle[8];
    for (int i = 0; i < 8; i++)
        idle[i] = dial(port, 0);
    send_all(idle[0], "GET /big HT", 11);
    int dl = dial(port, 4096);
    const char *rq = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    send_all(dl, rq, strlen(rq));
    char first[1];
    CHECK_EQ_INT(read(dl, first, 1), 1); /* the response has started */
    stop(srv, th);
    for (int i = 0; i < 8; i++)
        close(idle[i]);
    close(dl);
    unsetenv("WISP_URING_BUFS");
    unsetenv("WISP_URING_BUF_SIZE");
    free(big);
    return t_done("uring");
}
