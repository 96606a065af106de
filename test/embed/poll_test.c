/* wisp inside the application's own poll(2) loop: the embedded server
 * (embed_app.h) and, first, a bare loop stepped by hand (wisp_loop_fd,
 * wisp_loop_step, wisp_loop_timeout): timers honoured through the
 * timeout, posts from another thread waking the descriptor,
 * wisp_loop_break from another thread, -EBUSY from inside a step and
 * from wisp_loop_run of a stepped loop, and the loop reusable with
 * wisp_loop_run afterwards. Also: an embedded server must have one loop
 * (-EINVAL), and the embedding calls refuse a threaded server. */
#include "embed_app.h"

static int fired, posted, busy_inside;
static wisp_loop_t *bare;

static void on_timer(wisp_timer_t *t, void *arg)
{
    (void)t, (void)arg;
    fired++;
    busy_inside = wisp_loop_step(bare);
}

static void on_post(void *arg)
{
    (void)arg;
    posted++;
}

static void *poster(void *arg)
{
    wisp_loop_post(arg, on_post, NULL);
    return NULL;
}

static void *breaker(void *arg)
{
    wisp_loop_break(arg);
    return NULL;
}

/* Poll the loop's descriptor with its timeout, then step; returns the
 * step's result. */
static int poll_step(wisp_loop_t *l)
{
    struct pollfd p = {.fd = wisp_loop_fd(l), .events = POLLIN};
    int t = wisp_loop_timeout(l);
    if (t != 0)
        poll(&p, 1, t < 0 ? 30000 : t);
    return wisp_loop_step(l);
}

static void bare_loop(void)
{
    /* Embedding is epoll's: a loop on io_uring says so. */
    wisp_loop_t *ur = wisp_loop_create_backend(WISP_LOOP_BACKEND_IO_URING);
    CHECK(ur != NULL);
    if (strcmp(wisp_loop_backend(ur), "io_uring") == 0) {
        CHECK_EQ_INT(wisp_loop_fd(ur), -EOPNOTSUPP);
        CHECK_EQ_INT(wisp_loop_step(ur), -EOPNOTSUPP);
    }
    wisp_loop_destroy(ur);

    bare = wisp_loop_create_backend(WISP_LOOP_BACKEND_EPOLL);
    CHECK(bare != NULL);
    CHECK(wisp_loop_fd(bare) >= 0);
    CHECK_EQ_INT(wisp_loop_step(bare), 0);
    CHECK_EQ_INT(wisp_loop_timeout(bare), -1); /* nothing armed */

    wisp_timer_t t;
    wisp_timer_init(bare, &t);
    wisp_timer_start(&t, 30, on_timer, NULL);
    int tm = wisp_loop_timeout(bare);
    CHECK(tm == -1 || (tm >= 0 && tm <= 30)); /* not yet recomputed */
    CHECK_EQ_INT(wisp_loop_step(bare), 0);
    tm = wisp_loop_timeout(bare);
    CHECK_MSG(tm > 0 && tm <= 30, "timeout %d with a 30 ms timer", tm);
    for (int i = 0; i < 1000 && !fired; i++)
        CHECK_EQ_INT(poll_step(bare), 0);
    CHECK_EQ_INT(fired, 1);
    CHECK_EQ_INT(busy_inside, -EBUSY);
    CHECK_EQ_INT(wisp_loop_timeout(bare), -1);

    /* A post from another thread makes the descriptor readable. */
    pthread_t th;
    pthread_create(&th, NULL, poster, bare);
    pthread_join(th, NULL);
    struct pollfd p = {.fd = wisp_loop_fd(bare), .events = POLLIN};
    CHECK_EQ_INT(poll(&p, 1, 30000), 1);
    CHECK_EQ_INT(wisp_loop_step(bare), 0);
    CHECK_EQ_INT(posted, 1);

    /* Running a stepped loop is refused. */
    CHECK_EQ_INT(wisp_loop_run(bare), -EBUSY);

    /* wisp_loop_break from another thread: the next step returns 1. */
    pthread_create(&th, NULL, breaker, bare);
    pthread_join(th, NULL);
    CHECK_EQ_INT(poll(&p, 1, 30000), 1);
    CHECK_EQ_INT(wisp_loop_step(bare), 1);

    /* Left as wisp_loop_run leaves it: it can run (and break) again. */
    pthread_create(&th, NULL, breaker, bare);
    CHECK_EQ_INT(wisp_loop_run(bare), 0);
    pthread_join(th, NULL);
    wisp_loop_destroy(bare);
}

static void refusals(void)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.threads = 2;
    cfg.embedded = 1;
    wisp_server_t *s = wisp_server_create(&cfg);
    CHECK(s != NULL);
    CHECK_EQ_INT(wisp_server_listen(s), -EINVAL);
    wisp_server_destroy(s);

    cfg.threads = 1;
    cfg.embedded = 0;
    s = wisp_server_create(&cfg);
    CHECK_EQ_INT(wisp_server_listen(s), 0);
    CHECK_EQ_INT(wisp_server_fd(s), WISP_ESTATE);
    CHECK_EQ_INT(wisp_server_step(s), WISP_ESTATE);
    CHECK_EQ_INT(wisp_server_timeout(s), -1);
    wisp_server_destroy(s);
}

int main(void)
{
    bare_loop();
    refusals();

    embed_start();
    struct pollfd p[2] = {{.fd = wisp_server_fd(srv), .events = POLLIN},
                          {.fd = embed_host_rd, .events = POLLIN}};
    int r = 0, steps = 0;
    while (r == 0) {
        int t = wisp_server_timeout(srv);
        int n = t == 0 ? 0 : poll(p, 2, t);
        if (n > 0 && (p[1].revents & POLLIN))
            embed_host_poked();
        r = wisp_server_step(srv);
        steps++;
    }
    CHECK_EQ_INT(r, 1);
    embed_finish("embed_poll");
    printf("%d steps\n", steps);
    return t_done("embed_poll");
}
