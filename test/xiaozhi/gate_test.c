/* xiaozhi-server provider gate (providers.c xz_gate_call): the per-loop
 * semaphore respects max_concurrent, a full queue answers -EAGAIN at
 * once, and a cancel — of a running call or of a queued one — frees its
 * slot for the next caller. The loop is stepped by hand (never sleeps). */
#include <errno.h>

#include "../test.h"
#include "app.h"
#include "providers.h"

/* A provider whose calls stay pending until the test settles them. */
#define MAXP 16
static wisp_loop_t *cur_loop;
static wisp_future_t *prov[MAXP];
static int started;

static wisp_future_t *start_manual(void *arg)
{
    (void)arg;
    wisp_future_t *f = wisp_future_create(cur_loop);
    if (!f)
        return NULL;
    wisp_future_ref(f); /* the test's own reference */
    prov[started++] = f;
    return f; /* the gate's reference */
}

static void steps(wisp_loop_t *loop)
{
    for (int i = 0; i < 8; i++)
        CHECK(wisp_loop_step(loop) == 0);
}

static int err_of(wisp_future_t *f)
{
    return wisp_future_state(f) == WISP_FUTURE_PENDING ? 1
                                                       : wisp_future_error(f);
}

static wisp_future_t *call(wisp_loop_t *loop)
{
    wisp_future_t *f = xz_gate_call(loop, XZ_PROV_LLM, start_manual, NULL);
    CHECK(f != NULL);
    return f;
}

static void drop_prov(void)
{
    for (int i = 0; i < started; i++) {
        if (wisp_future_state(prov[i]) == WISP_FUTURE_PENDING)
            wisp_future_fail(prov[i], -EIO);
        wisp_future_unref(prov[i]);
        prov[i] = NULL;
    }
    started = 0;
}

/* max_concurrent 2, max_queue 1 */
static void test_cap_queue_cancel(void)
{
    /* Stepped by hand (wisp_loop_step): an epoll loop whatever
     * WISP_BACKEND says (io_uring loops cannot be stepped). */
    wisp_loop_t *loop = wisp_loop_create_backend(WISP_LOOP_BACKEND_EPOLL);
    CHECK(loop != NULL);
    cur_loop = loop;
    CHECK(wisp_loop_step(loop) == 0); /* this thread owns the loop */
    xz_app->cfg.max_concurrent = 2;
    xz_app->cfg.max_queue = 1;

    wisp_future_t *a = call(loop), *b = call(loop), *c = call(loop);
    steps(loop);
    CHECK_MSG(started == 2, "started %d, cap 2", started);
    CHECK(err_of(a) == 1 && err_of(b) == 1 && err_of(c) == 1);

    /* queue (1) full: the fourth is refused with -EAGAIN, not queued */
    wisp_future_t *d = call(loop);
    steps(loop);
    CHECK_MSG(err_of(d) == -EAGAIN, "4th: %d", err_of(d));
    CHECK(started == 2);

    /* a finishes: its value reaches the caller and c gets the permit */
    int *v = malloc(sizeof *v);
    CHECK(v != NULL);
    if (!v)
        exit(1);
    *v = 42;
    CHECK(wisp_future_resolve(prov[0], v, free) == 0);
    steps(loop);
    CHECK(wisp_future_state(a) == WISP_FUTURE_RESOLVED);
    CHECK(wisp_future_value(a) && *(int *)wisp_future_value(a) == 42);
    CHECK_MSG(started == 3, "queued call started: %d", started);

    /* cancelling running b cancels its provider future and frees the
     * permit: a new call starts at once */
    CHECK(wisp_future_cancel(b) == 0);
    steps(loop);
    CHECK(err_of(b) == -ECANCELED);
    CHECK(err_of(prov[1]) == -ECANCELED);
    wisp_future_t *e = call(loop);
    steps(loop);
    CHECK_MSG(started == 4, "after cancel: %d started", started);
    CHECK(err_of(e) == 1);

    /* both permits held (c, e): f queues; cancelling it while queued
     * never starts it and frees the queue place (g queues, not EAGAIN) */
    wisp_future_t *f = call(loop);
    steps(loop);
    CHECK(err_of(f) == 1 && started == 4);
    CHECK(wisp_future_cancel(f) == 0);
    steps(loop);
    CHECK(err_of(f) == -ECANCELED);
    wisp_future_t *g = call(loop);
    steps(loop);
    CHECK_MSG(err_of(g) == 1, "queued after cancel: %d", err_of(g));
    CHECK(started == 4);
    /* a failing provider passes its error on and frees the permit */
    CHECK(wisp_future_fail(prov[2], -EIO) == 0); /* c */
    steps(loop);
    CHECK(err_of(c) == -EIO);
    CHECK(started == 5 && err_of(g) == 1);

    wisp_future_t *all[] = {a, b, c, d, e, f, g};
    for (unsigned i = 0; i < sizeof all / sizeof *all; i++)
        wisp_future_cancel(all[i]);
    steps(loop);
    for (unsigned i = 0; i < sizeof all / sizeof *all; i++)
        wisp_future_unref(all[i]);
    drop_prov();
    steps(loop);
    xz_gates_destroy();
    wisp_loop_destroy(loop);
}

/* max_queue 0: no waiting at all, the call past the cap is busy */
static void test_no_queue(void)
{
    /* Stepped by hand (wisp_loop_step): an epoll loop whatever
     * WISP_BACKEND says (io_uring loops cannot be stepped). */
    wisp_loop_t *loop = wisp_loop_create_backend(WISP_LOOP_BACKEND_EPOLL);
    CHECK(loop != NULL);
    cur_loop = loop;
    CHECK(wisp_loop_step(loop) == 0);
    xz_app->cfg.max_concurrent = 1;
    xz_app->cfg.max_queue = 0;
    wisp_future_t *a = call(loop), *b = call(loop);
    steps(loop);
    CHECK(started == 1);
    CHECK(err_of(a) == 1);
    CHECK_MSG(err_of(b) == -EAGAIN, "no queue: %d", err_of(b));
    CHECK(wisp_future_cancel(a) == 0);
    steps(loop);
    wisp_future_t *c = call(loop);
    steps(loop);
    CHECK_MSG(started == 2 && err_of(c) == 1, "after cancel %d", started);
    wisp_future_cancel(c);
    steps(loop);
    wisp_future_unref(a);
    wisp_future_unref(b);
    wisp_future_unref(c);
    drop_prov();
    steps(loop);
    xz_gates_destroy();
    wisp_loop_destroy(loop);
}

int main(void)
{
    static xz_app_t app;
    xz_app = &app;
    app.nloops = 1;
    test_cap_queue_cancel();
    test_no_queue();
    return t_done("xz_gate");
}
