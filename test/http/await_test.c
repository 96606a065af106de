/* The pattern docs/concurrency.md teaches for blocking work from a
 * handler (wisp_pool_submit_job + wisp_res_await), with the client
 * leaving while the pool job runs. The job's data must outlive the job:
 * it is released exactly once, never while the job still reads it (under
 * ASan a release too early is also a heap-use-after-free). It was, with
 * the pattern documented before (wisp_res_await(res, f, answered, free,
 * j) with j also given to the job).
 *
 * Handshakes only: the job signals it has started, the test closes the
 * client, and the job goes on once it sees itself cancelled. */
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"

typedef struct job {
    int input;
    _Atomic int running; /* inside the pool function */
} job;

static wisp_pool_t *pool;
static _Atomic int started, released, released_while_running, answered_n,
    job_read, saw_cancel;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void bump(_Atomic int *v)
{
    pthread_mutex_lock(&mu);
    atomic_fetch_add(v, 1);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

/* Wait until *v >= want, at most `ms` (the failure bound, not a delay). */
static int wait_for(_Atomic int *v, int want, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&mu);
    while (atomic_load(v) < want) {
        if (pthread_cond_timedwait(&cv, &mu, &until) == ETIMEDOUT)
            break;
    }
    int ok = atomic_load(v) >= want;
    pthread_mutex_unlock(&mu);
    return ok;
}

static void job_release(void *arg)
{
    job *j = arg;
    if (atomic_load(&j->running))
        atomic_fetch_add(&released_while_running, 1);
    bump(&released);
    free(j);
}

/* The pool function of the documented pattern. */
static int work(void *arg, void **value, wisp_free_cb *destroy)
{
    job *j = arg;
    atomic_store(&j->running, 1);
    bump(&started);
    /* The client goes away now: wisp_res_await cancels the future, which
     * the job can see (the bound is a failure bound, not a delay). */
    for (int i = 0; i < 10000 && !wisp_pool_job_cancelled(); i++) {
        struct timespec ms = {0, 1000000L};
        nanosleep(&ms, NULL);
    }
    atomic_store(&saw_cancel, wisp_pool_job_cancelled());
    atomic_store(&job_read, j->input); /* the read that must stay valid */
    atomic_store(&j->running, 0);
    *value = NULL;
    *destroy = NULL;
    return 0;
}

static void answered(wisp_res_t *res, wisp_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    atomic_fetch_add(&answered_n, 1);
    wisp_res_send(res, 200, "text/plain", "done\n", 5);
}

static void handler(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    job *j = calloc(1, sizeof *j);
    if (!j) {
        wisp_res_send(res, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    j->input = 42;
    /* The pool owns j from here on, whatever happens. */
    wisp_future_t *f = wisp_pool_submit_job(pool, WISP_PRIO_NORMAL,
                                            wisp_res_loop(res), work, j,
                                            job_release);
    if (!f || wisp_res_await(res, f, answered, NULL, NULL) < 0)
        wisp_res_send(res, 500, "text/plain", "out of memory\n", 14);
    wisp_future_unref(f);
}

static void on_root(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_send(res, 200, "text/plain", "ok", 2);
}

static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        perror("connect");
        exit(2);
    }
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_str(int fd, const char *s)
{
    size_t n = strlen(s);
    CHECK_EQ_INT(send(fd, s, n, MSG_NOSIGNAL), (long long)n);
}

int main(void)
{
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
    cfg.handle_signals = 0;
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK(srv != NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/job", handler, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/", on_root, NULL, NULL);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    CHECK_EQ_INT(wisp_server_start(srv), 0);
    uint16_t port = wisp_server_port(srv);

    int fd = dial(port);
    send_str(fd, "GET /job HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_MSG(wait_for(&started, 1, 30000), "the pool job never started");
    close(fd); /* the client leaves while the job runs */

    /* Another client is served meanwhile. */
    fd = dial(port);
    send_str(fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    char buf[512];
    ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    CHECK_MSG(n > 0 && strncmp(buf, "HTTP/1.1 200 ", 13) == 0, "%s", buf);
    close(fd);

    /* The pool settles everything it took before shutdown returns. */
    CHECK_EQ_INT(wisp_pool_shutdown(pool, 1, 30000), 0);
    CHECK_MSG(wait_for(&released, 1, 30000), "the job was never released");
    CHECK_EQ_INT(atomic_load(&released), 1);
    CHECK_EQ_INT(atomic_load(&released_while_running), 0);
    CHECK_EQ_INT(atomic_load(&job_read), 42);
    CHECK_EQ_INT(atomic_load(&saw_cancel), 1);
    CHECK_EQ_INT(atomic_load(&answered_n), 0);

    wisp_server_stop(srv);
    CHECK_EQ_INT(wisp_server_wait(srv), 0);
    wisp_server_destroy(srv);
    wisp_pool_destroy(pool);
    return t_done("http_await");
}
