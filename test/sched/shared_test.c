/* Shared payloads and broadcast (src/sched/shared.c): one message reaches
 * objects on every loop, every delivery sees the same bytes (no copy per
 * destination), and the payload is destroyed exactly once after the last
 * delivery. Threads: one per loop (run under TSan in CI). */
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
    for (int i = 0; i < 2000 && atomic_load(&destroyed) < MESSAGES; i++)
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
    return t_done("shared");
}
