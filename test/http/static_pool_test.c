/* Static files open on a worker pool, never on the loop: every open
 * (file, missing file, directory redirect, directory index) is one job
 * of the pool given in wisp_static_opts_t, counted by the pool; with the
 * pool busy and its queue full the answer is 503 at once, and files are
 * served again once it drains. */
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"

static uint16_t port;

/* One request on a new connection; returns the status, body in `body`. */
static int get(const char *path, char *body, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    char buf[8192];
    size_t got = 0;
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0)
            break;
        ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    buf[got] = 0;
    int status = 0;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1)
        return -1;
    const char *b = strstr(buf, "\r\n\r\n");
    snprintf(body, cap, "%s", b ? b + 4 : "");
    return status;
}

/* A job that holds the pool's only thread until released. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int started, release;

static int hold(void *arg, void **value, wisp_free_cb *destroy)
{
    (void)arg;
    (void)value;
    (void)destroy;
    pthread_mutex_lock(&mu);
    started = 1;
    pthread_cond_broadcast(&cv);
    while (!release)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/wisp-static-pool-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char p[256];
    snprintf(p, sizeof p, "%s/a.txt", dir);
    FILE *f = fopen(p, "w");
    fputs("file a\n", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/d", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/d/index.html", dir);
    f = fopen(p, "w");
    fputs("index\n", f);
    fclose(f);

    wisp_pool_config_t pc;
    memset(&pc, 0, sizeof pc);
    pc.min_threads = 1;
    pc.max_threads = 1;
    pc.queue_limit = 1;
    pc.keep_alive_ms = 10000;
    wisp_pool_t *pool = wisp_pool_create(&pc);
    CHECK(pool != NULL);

    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.threads = 1;
    cfg.handle_signals = 0;
    wisp_server_t *srv = wisp_server_create(&cfg);
    wisp_static_opts_t so = {.index = "index.html", .pool = pool};
    CHECK_EQ_INT(wisp_server_static(srv, "/s", dir, &so), 0);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    CHECK_EQ_INT(wisp_server_start(srv), 0);
    port = wisp_server_port(srv);

    char body[4096];
    CHECK_EQ_INT(get("/s/a.txt", body, sizeof body), 200);
    CHECK(strcmp(body, "file a\n") == 0);
    CHECK_EQ_INT(get("/s/missing", body, sizeof body), 404);
    CHECK_EQ_INT(get("/s/d", body, sizeof body), 301);
    CHECK_EQ_INT(get("/s/d/", body, sizeof body), 200);
    CHECK(strcmp(body, "index\n") == 0);
    wisp_pool_stats_t st;
    wisp_pool_stats(pool, &st);
    CHECK_EQ_INT(st.completed, 4); /* every open was a job of the pool */

    /* Saturate: one job holds the thread, one fills the queue. */
    wisp_loop_t *loop = wisp_loop_create();
    wisp_future_t *h1 = wisp_pool_submit(pool, WISP_PRIO_NORMAL, loop, hold,
                                         NULL);
    pthread_mutex_lock(&mu);
    while (!started)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    wisp_future_t *h2 = wisp_pool_submit(pool, WISP_PRIO_NORMAL, loop, hold,
                                         NULL);
    CHECK(wisp_future_state(h2) == WISP_FUTURE_PENDING);
    CHECK_EQ_INT(get("/s/a.txt", body, sizeof body), 503);
    pthread_mutex_lock(&mu);
    release = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    /* Served again once the pool has drained (both holds done). */
    for (int i = 0; i < 20000 && wisp_future_state(h2) == WISP_FUTURE_PENDING;
         i++)
        usleep(500);
    CHECK(wisp_future_state(h2) == WISP_FUTURE_RESOLVED);
    CHECK_EQ_INT(get("/s/a.txt", body, sizeof body), 200);

    wisp_server_stop(srv);
    wisp_server_wait(srv);
    wisp_server_destroy(srv);
    wisp_future_unref(h1);
    wisp_future_unref(h2);
    wisp_pool_destroy(pool);
    wisp_loop_destroy(loop);
    snprintf(p, sizeof p, "%s/d/index.html", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/d", dir);
    rmdir(p);
    snprintf(p, sizeof p, "%s/a.txt", dir);
    unlink(p);
    rmdir(dir);
    return t_done("http_static_pool");
}
