/* Outgoing connections (wisp_conn_connect), through the public API only:
 * a bare loop on its own thread (the transport is set up on first use),
 * and a wisp server's loop (the connection shares the server's).
 *
 * Covered: an HTTP exchange with a wisp listener from a bare loop and
 * from the server's own loop; a refused port (-ECONNREFUSED, nothing
 * left behind); a connect that cannot complete (a listener whose backlog
 * is full and that never accepts) ends with -ETIMEDOUT after the connect
 * timeout, or with -ECANCELED when the pending connection is aborted;
 * a Unix socket both ways, and a missing socket path (-ENOENT); bad
 * arguments fail in the call and the callback never runs. Every wait is
 * for an event, bounded by a generous failure timeout only. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
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
    until.tv_sec += 20;
    pthread_mutex_lock(&mu);
    while (atomic_load(v) < want)
        if (pthread_cond_timedwait(&cv, &mu, &until) == ETIMEDOUT)
            break;
    int ok = atomic_load(v) >= want;
    pthread_mutex_unlock(&mu);
    return ok;
}

/* One attempt: what the callbacks saw. */
typedef struct attempt {
    struct sockaddr_storage ss;
    socklen_t sslen;
    uint32_t timeout_ms;
    const char *send;        /* written when connected */
    int abort_pending;       /* abort the pending connection at once */
    int call_ret;            /* wisp_conn_connect's return */
    _Atomic int done;        /* the connect callback ran */
    _Atomic int err;
    _Atomic int closed;      /* on_close ran */
    _Atomic int close_reason;
    _Atomic int got_conn;    /* the callback's c was non-NULL */
    char buf[4096];
    size_t len;
    wisp_loop_t *loop;
} attempt;

static size_t a_data(wisp_conn_t *c, const char *d, size_t n, void *arg)
{
    attempt *a = arg;
    (void)c;
    size_t room = sizeof a->buf - 1 - a->len;
    size_t k = n < room ? n : room;
    memcpy(a->buf + a->len, d, k);
    a->len += k;
    a->buf[a->len] = 0;
    if (strstr(a->buf, "pong"))
        wisp_conn_close(c);
    return n;
}

static void a_close(wisp_conn_t *c, int reason, void *arg)
{
    attempt *a = arg;
    (void)c;
    atomic_store(&a->close_reason, reason);
    bump(&a->closed);
}

static const wisp_conn_handlers_t handlers = {a_data, NULL, a_close, NULL,
                                              NULL};

static void a_done(wisp_conn_t *c, int err, void *arg)
{
    attempt *a = arg;
    atomic_store(&a->got_conn, c != NULL);
    atomic_store(&a->err, err);
    if (c) {
        CHECK(wisp_conn_loop(c) == a->loop);
        if (a->send)
            CHECK(wisp_conn_write(c, a->send, strlen(a->send)) == 0);
    }
    bump(&a->done);
}

static void start(void *arg)
{
    attempt *a = arg;
    wisp_conn_t *pending = NULL;
    a->call_ret = wisp_conn_connect(a->loop, (struct sockaddr *)&a->ss,
                                    a->sslen, &handlers, a, a->timeout_ms,
                                    a_done, a, &pending);
    if (a->call_ret == 0) {
        CHECK(pending != NULL);
        /* Still connecting (or already failed, when the kernel said so
         * at once): no other protocol can be installed. */
        int sr = wisp_conn_set_handlers(pending, &handlers, a);
        CHECK_MSG(sr == WISP_ESTATE || sr == WISP_ECLOSED, "got %d", sr);
        CHECK_EQ_INT(wisp_conn_set_handlers(pending, NULL, a), -EINVAL);
        if (a->abort_pending) {
            if (a->abort_pending == 2)
                wisp_conn_close(pending); /* same as an abort here */
            else
                wisp_conn_abort(pending);
            /* Never inside the call. */
            CHECK(atomic_load(&a->done) == 0);
        }
    }
    if (a->call_ret != 0)
        bump(&a->done);
}

static void run_on(wisp_loop_t *loop, attempt *a)
{
    a->loop = loop;
    CHECK(wisp_loop_post(loop, start, a) == 0);
    CHECK(wait_for(&a->done, 1));
}

static void set_tcp(attempt *a, uint16_t port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sslen = sizeof *sin;
}

static void set_unix(attempt *a, const char *path)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)&a->ss;
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    strcpy(sun->sun_path, path);
    a->sslen = sizeof *sun;
}

static void hello(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req, (void)arg;
    wisp_res_send(res, 200, "text/plain", "hello", 5);
}

static void *loop_main(void *arg)
{
    wisp_loop_run(arg);
    return NULL;
}

static const char *GET =
    "GET /hi HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

static void test_http(wisp_loop_t *loop, wisp_server_t *srv)
{
    /* From a bare loop, then from the server's own loop. */
    wisp_loop_t *loops[2] = {loop, wisp_server_loop(srv, 0)};
    for (int i = 0; i < 2; i++) {
        attempt *a = calloc(1, sizeof *a);
        set_tcp(a, wisp_server_port(srv));
        a->timeout_ms = 10000;
        a->send = GET;
        run_on(loops[i], a);
        CHECK_EQ_INT(a->call_ret, 0);
        CHECK_EQ_INT(atomic_load(&a->err), 0);
        CHECK(atomic_load(&a->got_conn));
        CHECK(wait_for(&a->closed, 1));
        CHECK_MSG(strstr(a->buf, "HTTP/1.1 200") && strstr(a->buf, "hello"),
                  "got %s", a->buf);
        free(a);
    }
}

static void test_refused(wisp_loop_t *loop)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof sin;
    CHECK(bind(fd, (struct sockaddr *)&sin, l) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sin, &l) == 0);
    /* Bound, never listening, and held until the connect is over (closed
     * first, the port could go to another test's listener). */
    attempt *a = calloc(1, sizeof *a);
    set_tcp(a, ntohs(sin.sin_port));
    a->timeout_ms = 10000;
    run_on(loop, a);
    close(fd);
    CHECK_EQ_INT(a->call_ret, 0);
    CHECK_EQ_INT(atomic_load(&a->err), -ECONNREFUSED);
    CHECK(!atomic_load(&a->got_conn));
    CHECK(atomic_load(&a->closed) == 0);
    free(a);
}

/* A listener with backlog 0 that never accepts: once its accept queue
 * holds one connection, Linux drops further SYNs, so a connect to it
 * stays in progress until the client gives up. */
static int full_listener(uint16_t *port, int *fillers, int nf)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof sin;
    CHECK(bind(fd, (struct sockaddr *)&sin, l) == 0);
    CHECK(listen(fd, 0) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&sin, &l) == 0);
    *port = ntohs(sin.sin_port);
    for (int i = 0; i < nf; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fillers[i], (struct sockaddr *)&sin, l);
    }
    /* The first filler is in the accept queue when its connect has
     * completed (writable). */
    struct pollfd p = {fillers[0], POLLOUT, 0};
    CHECK(poll(&p, 1, 20000) == 1);
    return fd;
}

static void test_timeout_and_cancel(wisp_loop_t *loop)
{
    int fillers[3];
    uint16_t port;
    int lfd = full_listener(&port, fillers, 3);

    attempt *a = calloc(1, sizeof *a);
    set_tcp(a, port);
    a->timeout_ms = 300;
    run_on(loop, a);
    CHECK_EQ_INT(a->call_ret, 0);
    CHECK_EQ_INT(atomic_load(&a->err), -ETIMEDOUT);
    CHECK(!atomic_load(&a->got_conn));
    free(a);

    /* No timeout at all: only the abort ends it. */
    a = calloc(1, sizeof *a);
    set_tcp(a, port);
    a->abort_pending = 1;
    run_on(loop, a);
    CHECK_EQ_INT(a->call_ret, 0);
    CHECK_EQ_INT(atomic_load(&a->err), -ECANCELED);
    CHECK(!atomic_load(&a->got_conn));
    free(a);
    a = calloc(1, sizeof *a);
    set_tcp(a, port);
    a->abort_pending = 2;
    run_on(loop, a);
    CHECK_EQ_INT(atomic_load(&a->err), -ECANCELED);
    free(a);

    for (int i = 0; i < 3; i++)
        close(fillers[i]);
    close(lfd);
}

static void test_unix(wisp_loop_t *loop)
{
    char path[108];
    snprintf(path, sizeof path, "/tmp/wisp-connect-%d.sock", (int)getpid());
    unlink(path);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, path);
    CHECK(bind(lfd, (struct sockaddr *)&sun, sizeof sun) == 0);
    CHECK(listen(lfd, 4) == 0);

    attempt *a = calloc(1, sizeof *a);
    set_unix(a, path);
    a->timeout_ms = 10000;
    a->send = "ping";
    run_on(loop, a);
    CHECK_EQ_INT(atomic_load(&a->err), 0);
    int s = accept(lfd, NULL, NULL);
    CHECK(s >= 0);
    char b[8] = {0};
    size_t got = 0;
    while (got < 4) {
        ssize_t n = read(s, b + got, 4 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    CHECK(memcmp(b, "ping", 4) == 0);
    CHECK(write(s, "pong", 4) == 4);
    /* The client closes after "pong": our read sees EOF. */
    CHECK(read(s, b, sizeof b) == 0);
    CHECK(wait_for(&a->closed, 1));
    CHECK_EQ_INT(atomic_load(&a->close_reason), 0);
    close(s);
    free(a);
    close(lfd);
    unlink(path);

    /* The path is gone now. */
    a = calloc(1, sizeof *a);
    set_unix(a, path);
    run_on(loop, a);
    CHECK_EQ_INT(a->call_ret, 0);
    CHECK_EQ_INT(atomic_load(&a->err), -ENOENT);
    free(a);
}

static void test_bad_args(wisp_loop_t *loop)
{
    attempt *a = calloc(1, sizeof *a);
    set_tcp(a, 1);
    a->ss.ss_family = AF_PACKET;
    run_on(loop, a);
    CHECK_EQ_INT(a->call_ret, -EAFNOSUPPORT);
    free(a);
    wisp_conn_t *p = (wisp_conn_t *)1;
    CHECK_EQ_INT(wisp_conn_connect(loop, NULL, 0, &handlers, NULL, 0, a_done,
                                   NULL, &p),
                 -EINVAL);
    CHECK(p == NULL);
}

int main(void)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.threads = 1;
    cfg.handle_signals = 0;
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK(srv != NULL);
    CHECK(wisp_server_route(srv, WISP_METHOD_GET, "/hi", hello, NULL,
                            NULL) == 0);
    CHECK(wisp_server_listen(srv) == 0);
    CHECK(wisp_server_start(srv) == 0);

    wisp_loop_t *loop = wisp_loop_create();
    CHECK(loop != NULL);
    pthread_t th;
    pthread_create(&th, NULL, loop_main, loop);

    test_bad_args(loop);
    test_http(loop, srv);
    test_refused(loop);
    test_timeout_and_cancel(loop);
    test_unix(loop);

    wisp_loop_break(loop);
    pthread_join(th, NULL);
    wisp_loop_destroy(loop);
    wisp_server_stop(srv);
    wisp_server_wait(srv);
    wisp_server_destroy(srv);
    return t_done("net_connect");
}
