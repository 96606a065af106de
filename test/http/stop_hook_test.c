/* The server stop hook (wisp_server_on_stop) and per-loop data used the
 * way an application uses them: each loop keeps its taken-over
 * connections in its own per-loop registry (no global table, no lookup
 * by loop); when the stop begins, the hook runs once on the main thread
 * (loop NULL) before any I/O loop hears of it, then on every I/O loop, on
 * that loop's thread, while the connections are still open: it writes a
 * goodbye and closes them gracefully, and the client reads it. */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"

#define MAXC 8

typedef struct registry {
    wisp_conn_t *c[MAXC];
    int n;
} registry;

static int reg_key = -1;
static _Atomic int main_calls, loop_calls, bad_thread, bad_arg, order_bad,
    frees, closes;
static pthread_t main_thread;

static void reg_free(void *d)
{
    atomic_fetch_add(&frees, 1);
    free(d);
}

static registry *reg_of(wisp_loop_t *loop)
{
    registry *r = wisp_loop_get_data(loop, reg_key);
    if (!r) {
        r = calloc(1, sizeof *r);
        wisp_loop_set_data(loop, reg_key, r);
    }
    return r;
}

static size_t on_data(wisp_conn_t *c, const char *data, size_t len,
                      void *arg)
{
    (void)arg;
    registry *r = reg_of(wisp_conn_loop(c));
    int known = 0;
    for (int i = 0; i < r->n; i++)
        known |= r->c[i] == c;
    if (!known && r->n < MAXC)
        r->c[r->n++] = c;
    wisp_conn_write(c, "echo:", 5);
    wisp_conn_write(c, data, len);
    return len;
}

static void on_close(wisp_conn_t *c, int reason, void *arg)
{
    (void)reason;
    (void)arg;
    registry *r = reg_of(wisp_conn_loop(c));
    for (int i = 0; i < r->n; i++)
        if (r->c[i] == c)
            r->c[i] = r->c[--r->n];
    atomic_fetch_add(&closes, 1);
}

static const wisp_conn_handlers_t handlers = {
    .on_data = on_data,
    .on_close = on_close,
};

static void on_up(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_header(res, "Upgrade", "rawecho");
    if (wisp_res_upgrade(res, &handlers, NULL) != 0)
        wisp_res_send(res, 500, NULL, NULL, 0);
}

static void stop_hook(wisp_server_t *srv, wisp_loop_t *loop, void *arg)
{
    (void)srv;
    if (arg != &reg_key)
        atomic_fetch_add(&bad_arg, 1); /* checked by main */
    if (!loop) {
        if (!pthread_equal(pthread_self(), main_thread))
            atomic_fetch_add(&bad_thread, 1);
        if (atomic_load(&loop_calls) != 0)
            atomic_fetch_add(&order_bad, 1);
        atomic_fetch_add(&main_calls, 1);
        return;
    }
    if (wisp_loop_current() != loop)
        atomic_fetch_add(&bad_thread, 1);
    if (atomic_load(&main_calls) != 1)
        atomic_fetch_add(&order_bad, 1);
    atomic_fetch_add(&loop_calls, 1);
    registry *r = reg_of(loop);
    /* Forward: wisp_conn_close never runs on_close inside the call (it
     * runs after, at the end of this iteration), so the registry does
     * not change under this walk. */
    for (int i = 0; i < r->n; i++) {
        wisp_conn_write(r->c[i], "stopping\n", 9);
        wisp_conn_close(r->c[i]);
    }
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

static size_t read_until(int fd, char *buf, size_t cap, const char *want)
{
    size_t n = 0;
    buf[0] = 0;
    while (n + 1 < cap) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0)
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

typedef struct client {
    wisp_server_t *srv;
    uint16_t port;
    int ok_echo, ok_bye, ok_eof;
} client;

static void *client_main(void *arg)
{
    client *cl = arg;
    int fd[3];
    char buf[1024];
    for (int i = 0; i < 3; i++) {
        fd[i] = dial(cl->port);
        const char *req = "GET /up HTTP/1.1\r\nHost: x\r\nUpgrade: rawecho\r\n"
                          "Connection: upgrade\r\n\r\nhi\n";
        if (fd[i] < 0 || write(fd[i], req, strlen(req)) < 0)
            continue;
        read_until(fd[i], buf, sizeof buf, "echo:hi\n");
        cl->ok_echo += strstr(buf, "101 ") && strstr(buf, "echo:hi\n");
    }
    /* Every connection is registered on its loop: stop now. */
    wisp_server_stop(cl->srv);
    for (int i = 0; i < 3; i++) {
        if (fd[i] < 0)
            continue;
        read_until(fd[i], buf, sizeof buf, "stopping\n");
        cl->ok_bye += strstr(buf, "stopping\n") != NULL;
        char c;
        cl->ok_eof += read(fd[i], &c, 1) == 0;
        close(fd[i]);
    }
    return NULL;
}

int main(void)
{
    main_thread = pthread_self();
    reg_key = wisp_loop_key_create(reg_free);
    CHECK(reg_key >= 0);
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.threads = 2;
    cfg.handle_signals = 0;
    cfg.shutdown_timeout_ms = 20000; /* the hook closes; no force needed */
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK(srv != NULL);
    CHECK_EQ_INT(wisp_server_route(srv, WISP_METHOD_GET, "/up", on_up, NULL,
                                   NULL), 0);
    CHECK_EQ_INT(wisp_server_on_stop(srv, stop_hook, &reg_key), 0);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    CHECK_EQ_INT(wisp_server_on_stop(srv, stop_hook, &reg_key), 0);
    CHECK_EQ_INT(wisp_server_start(srv), 0);
    CHECK_EQ_INT(wisp_server_on_stop(srv, NULL, NULL), WISP_ESTATE);
    client cl = {srv, wisp_server_port(srv), 0, 0, 0};
    pthread_t th;
    pthread_create(&th, NULL, client_main, &cl);
    CHECK_EQ_INT(wisp_server_wait(srv), 0);
    pthread_join(th, NULL);
    CHECK_EQ_INT(cl.ok_echo, 3);
    CHECK_EQ_INT(cl.ok_bye, 3);
    CHECK_EQ_INT(cl.ok_eof, 3);
    CHECK_EQ_INT(atomic_load(&main_calls), 1);
    CHECK_EQ_INT(atomic_load(&loop_calls), 2);
    CHECK_EQ_INT(atomic_load(&bad_thread), 0);
    CHECK_EQ_INT(atomic_load(&bad_arg), 0);
    CHECK_EQ_INT(atomic_load(&order_bad), 0);
    CHECK_EQ_INT(atomic_load(&closes), 3);
    int before = atomic_load(&frees);
    wisp_server_destroy(srv);
    /* Each loop that registered something freed its registry. */
    CHECK(atomic_load(&frees) >= 1 && atomic_load(&frees) <= 2);
    CHECK_EQ_INT(before, 0);
    return t_done("http_stop_hook");
}
