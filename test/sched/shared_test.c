/* Shared payloads and broadcast (src/sched/shared.c): one message reaches
 * objects on every loop, every delivery sees the same bytes (no copy per
 * destination), and the payload is destroyed exactly once after the last
 * delivery, also when a delivery never runs because its loop is destroyed
 * first. Threads: one per loop (run under TSan in CI). */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "loop/loop_int.h"
#include "test.h"
#include "wisp/shared.h"

#define LOOPS 4
#define SUBSCRIBERS 2500
#define MESSAGES 200

static wisp_loop_t *loops[LOOPS];
static long got_bytes[LOOPS];        /* each touched by its loop only */
static const void *seen_ptr[LOOPS];
static _Atomic int wrong_ptr, destroyed, delivered;
static const char *expect_ptr;

static void deliver(wisp_loop_t *loop, wisp_shared_t *msg, void *arg)
{
    int i = (int)(intptr_t)arg;
    (void)i;
    int idx = -1;
    for (int k = 0; k < LOOPS; k++)
        if (loops[k] == loop)
            idx = k;
    /* "Send" to every subscriber of this loop: they all read the same
     * bytes. */
    for (int s = 0; s < SUBSCRIBERS; s++)
        got_bytes[idx] += (long)wisp_shared_len(msg);
    seen_ptr[idx] = wisp_shared_data(msg);
    atomic_fetch_add(&delivered, 1);
}

static void on_destroy(void *arg)
{
    (void)arg;
    atomic_fetch_add(&destroyed, 1);
}

static void *run_loop(void *arg)
{
    wisp_loop_run(arg);
    return NULL;
}

static void check_ptr(wisp_loop_t *loop, wisp_shared_t *msg, void *arg)
{
    (void)loop;
    (void)arg;
    if (wisp_shared_data(msg) != expect_ptr)
        atomic_fetch_add(&wrong_ptr, 1);
}

/* Deliveries that never run: a loop that is not running (never was, or
 * has left wisp_loop_run) keeps them in its inbox, and destroying it
 * drops them. Each dropped delivery gives its reference back, so the
 * payload is destroyed exactly once and nothing leaks (LeakSanitizer
 * checks the delivery records in the ASan build). */
static _Atomic int late_destroyed, late_delivered;

static void late_destroy(void *arg)
{
    (void)arg;
    atomic_fetch_add(&late_destroyed, 1);
}

static void late_deliver(wisp_loop_t *loop, wisp_shared_t *msg, void *arg)
{
    (void)loop;
    (void)msg;
    (void)arg;
    atomic_fetch_add(&late_delivered, 1);
}

static void break_task(void *arg)
{
    wisp_loop_break(arg);
}

static void test_dropped_deliveries(void)
{
    static char payload[16];
    /* A loop that never runs. */
    wisp_loop_t *idle = wisp_loop_create();
    atomic_store(&late_destroyed, 0);
    atomic_store(&late_delivered, 0);
    wisp_shared_t *msg = wisp_shared_wrap(payload, sizeof payload,
                                          late_destroy, NULL);
    CHECK_EQ_INT(wisp_broadcast(&idle, 1, msg, late_deliver, NULL), 1);
    CHECK_EQ_INT(wisp_broadcast(&idle, 1, msg, late_deliver, NULL), 1);
    wisp_shared_unref(msg);
    CHECK_EQ_INT(atomic_load(&late_destroyed), 0); /* still queued */
    wisp_loop_destroy(idle);
    CHECK_EQ_INT(atomic_load(&late_delivered), 0);
    CHECK_EQ_INT(atomic_load(&late_destroyed), 1);

    /* A loop that ran and has returned from wisp_loop_run, next to one
     * that is still running: the running one delivers, the stopped one
     * drops at destroy; the payload goes once, after both. */
    wisp_loop_t *pair[2];
    pair[0] = wisp_loop_create();
    pair[1] = wisp_loop_create();
    wisp_loop_defer(pair[1], break_task, pair[1]);
    wisp_loop_run(pair[1]);
    pthread_t th;
    pthread_create(&th, NULL, run_loop, pair[0]);
    atomic_store(&late_destroyed, 0);
    msg = wisp_shared_wrap(payload, sizeof payload, late_destroy, NULL);
    CHECK_EQ_INT(wisp_broadcast(pair, 2, msg, late_deliver, NULL), 2);
    wisp_shared_unref(msg);
    for (int i = 0; i < 30000 && atomic_load(&late_delivered) < 1; i++)
        usleep(1000);
    wisp_loop_break(pair[0]);
    pthread_join(th, NULL);
    CHECK_EQ_INT(atomic_load(&late_delivered), 1);
    CHECK_EQ_INT(atomic_load(&late_destroyed), 0); /* pair[1] holds it */
    wisp_loop_destroy(pair[1]);
    CHECK_EQ_INT(atomic_load(&late_destroyed), 1);
    wisp_loop_destroy(pair[0]);
    CHECK_EQ_INT(atomic_load(&late_destroyed), 1);
    CHECK_EQ_INT(atomic_load(&late_delivered), 1);
}

int main(void)
{
    wisp_shared_t *s = wisp_shared_create("hello", 5);
    CHECK_EQ_INT(wisp_shared_len(s), 5);
    CHECK(memcmp(wisp_shared_data(s), "hello", 5) == 0);
    wisp_shared_unref(s);

    pthread_t th[LOOPS];
    for (int i = 0; i < LOOPS; i++) {
        loops[i] = wisp_loop_create();
        pthread_create(&th[i], NULL, run_loop, loops[i]);
    }
    static char payload[100];
    memset(payload, 'x', sizeof payload);
    expect_ptr = payload;
    for (int m = 0; m < MESSAGES; m++) {
        wisp_shared_t *msg = wisp_shared_wrap(payload, sizeof payload,
                                              on_destroy, NULL);
        ssize_t n = wisp_broadcast(loops, LOOPS, msg, deliver, NULL);
        CHECK_EQ_INT(n, LOOPS);
        n = wisp_broadcast(loops, LOOPS, msg, check_ptr, NULL);
        CHECK_EQ_INT(n, LOOPS);
        wisp_shared_unref(msg); /* the deliveries keep it alive */
    }
    CHECK_EQ_INT(wisp_broadcast(loops, LOOPS, NULL, deliver, NULL), -EINVAL);
    for (int i = 0; i < 30000 && atomic_load(&destroyed) < MESSAGES; i++)
        usleep(1000);
    for (int i = 0; i < LOOPS; i++) {
        wisp_loop_break(loops[i]);
        pthread_join(th[i], NULL);
    }
    CHECK_EQ_INT(atomic_load(&delivered), LOOPS * MESSAGES);
    CHECK_EQ_INT(atomic_load(&destroyed), MESSAGES); /* once each */
    CHECK_EQ_INT(atomic_load(&wrong_ptr), 0);
    for (int i = 0; i < LOOPS; i++) {
        CHECK_EQ_INT(got_bytes[i], (long)MESSAGES * SUBSCRIBERS * 100);
        CHECK(seen_ptr[i] == payload);
        wisp_loop_destroy(loops[i]);
    }
    test_dropped_deliveries();
    return t_done("shared");
}
