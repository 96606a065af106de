/* Async semaphore (src/sched/sem.c): at most N holders, FIFO waiters,
 * permits returned when the holding future goes, timeouts and cancels
 * that consume no permit, max_waiters (counting live waiters only),
 * destroy. */
#include <stdint.h>

#include "loop/loop_int.h"
#include "test.h"
#include "wisp/sem.h"

static void break_task(void *arg)
{
    wisp_loop_break(arg);
}

/* Run the loop until what is queued now has run. */
static void flush(wisp_loop_t *loop)
{
    wisp_loop_defer(loop, break_task, loop);
    wisp_loop_run(loop);
}

static int order[16];
static int norder;

static void granted(wisp_future_t *f, void *arg)
{
    if (wisp_future_state(f) == WISP_FUTURE_RESOLVED)
        order[norder++] = (int)(intptr_t)arg;
}

static void test_fifo(wisp_loop_t *loop)
{
    wisp_sem_t *s = wisp_sem_create(loop, 2, 0);
    CHECK(s != NULL);
    CHECK(wisp_sem_create(loop, 0, 0) == NULL);
    wisp_future_t *f[6];
    norder = 0;
    for (int i = 0; i < 6; i++) {
        f[i] = wisp_sem_acquire(s, 0);
        wisp_future_then(f[i], granted, (void *)(intptr_t)i);
    }
    CHECK_EQ_INT(wisp_sem_available(s), 0);
    CHECK_EQ_INT(wisp_sem_waiting(s), 4);
    flush(loop);
    CHECK_EQ_INT(norder, 2);
    CHECK(order[0] == 0 && order[1] == 1);
    /* Waiter 3 gives up; its turn is skipped without using a permit. */
    CHECK_EQ_INT(wisp_future_cancel(f[3]), 0);
    CHECK_EQ_INT(wisp_sem_waiting(s), 3);
    wisp_future_unref(f[0]); /* permit back -> waiter 2 */
    flush(loop);
    CHECK_EQ_INT(norder, 3);
    CHECK_EQ_INT(order[2], 2);
    wisp_future_unref(f[1]); /* -> waiter 4 (3 is cancelled) */
    flush(loop);
    CHECK_EQ_INT(norder, 4);
    CHECK_EQ_INT(order[3], 4);
    CHECK_EQ_INT(wisp_sem_available(s), 0);
    /* A permit taken out of its future is returned by its destructor. */
    wisp_free_cb d = NULL;
    void *permit = wisp_future_take(f[2], &d);
    CHECK(permit != NULL && d != NULL);
    wisp_future_unref(f[2]);
    CHECK_EQ_INT(wisp_sem_available(s), 0); /* still held by `permit` */
    d(permit); /* -> waiter 5 */
    flush(loop);
    CHECK_EQ_INT(norder, 5);
    CHECK_EQ_INT(order[4], 5);
    wisp_future_unref(f[3]);
    wisp_future_unref(f[4]);
    wisp_future_unref(f[5]);
    CHECK_EQ_INT(wisp_sem_available(s), 2);
    CHECK_EQ_INT(wisp_sem_waiting(s), 0);
    wisp_sem_destroy(s);
    flush(loop);
}

static int timed_out;
static void on_timeout(wisp_future_t *f, void *arg)
{
    (void)arg;
    if (wisp_future_error(f) == -ETIMEDOUT) {
        timed_out = 1;
        wisp_loop_break(wisp_future_loop(f));
    }
}

static void test_timeout_and_limits(wisp_loop_t *loop)
{
    wisp_sem_t *s = wisp_sem_create(loop, 1, 2);
    wisp_future_t *held = wisp_sem_acquire(s, 0);
    CHECK(wisp_future_state(held) == WISP_FUTURE_RESOLVED);
    /* Timers count from the loop's cached clock, which may be older than
     * the wall clock here: measure on that clock. */
    uint64_t base = wisp_loop_now(loop);
    wisp_future_t *w1 = wisp_sem_acquire(s, 20);
    wisp_future_t *w2 = wisp_sem_acquire(s, 0);
    wisp_future_t *w3 = wisp_sem_acquire(s, 0); /* over max_waiters */
    CHECK_EQ_INT(wisp_future_error(w3), -EAGAIN);
    timed_out = 0;
    wisp_future_then(w1, on_timeout, NULL);
    wisp_loop_run(loop);
    CHECK(timed_out);
    CHECK(wisp_loop_now(loop) - base >= 20);
    CHECK_EQ_INT(wisp_sem_available(s), 0); /* the timeout used none */
    wisp_future_unref(held);                /* -> w2 */
    CHECK(wisp_future_state(w2) == WISP_FUTURE_RESOLVED);
    /* Destroy with a permit out and a waiter queued. */
    wisp_future_t *w4 = wisp_sem_acquire(s, 0);
    wisp_sem_destroy(s);
    CHECK_EQ_INT(wisp_future_error(w4), -ECANCELED);
    wisp_future_unref(w2); /* the last permit: frees the semaphore */
    wisp_future_unref(w1);
    wisp_future_unref(w3);
    wisp_future_unref(w4);
    flush(loop);
}

/* max_waiters counts live waiters only: one that was cancelled or timed
 * out while a live waiter sat in front of it (so it was not pruned from
 * the front of the queue) frees its place at once, and the live waiters
 * are still granted in FIFO order. */
static void test_dead_waiters_not_counted(wisp_loop_t *loop)
{
    wisp_sem_t *s = wisp_sem_create(loop, 1, 2);
    wisp_future_t *held = wisp_sem_acquire(s, 0);
    CHECK(wisp_future_state(held) == WISP_FUTURE_RESOLVED);
    wisp_future_t *a = wisp_sem_acquire(s, 0);  /* the live head */
    wisp_future_t *b = wisp_sem_acquire(s, 20); /* behind it */
    CHECK(wisp_future_state(b) == WISP_FUTURE_PENDING);
    wisp_future_t *x = wisp_sem_acquire(s, 0); /* a and b wait: full */
    CHECK_EQ_INT(wisp_future_error(x), -EAGAIN);

    /* Timed out behind the head: its place is free. */
    timed_out = 0;
    wisp_future_then(b, on_timeout, NULL);
    wisp_loop_run(loop);
    CHECK(timed_out);
    CHECK_EQ_INT(wisp_sem_waiting(s), 1);
    wisp_future_t *c = wisp_sem_acquire(s, 0);
    CHECK_MSG(wisp_future_state(c) == WISP_FUTURE_PENDING,
              "error %d with one live waiter of 2", wisp_future_error(c));
    CHECK_EQ_INT(wisp_sem_waiting(s), 2);
    wisp_future_t *y = wisp_sem_acquire(s, 0); /* a and c wait: full */
    CHECK_EQ_INT(wisp_future_error(y), -EAGAIN);

    /* Cancelled behind the head: its place is free at once. */
    CHECK_EQ_INT(wisp_future_cancel(c), 0);
    CHECK_EQ_INT(wisp_sem_waiting(s), 1);
    wisp_future_t *d = wisp_sem_acquire(s, 0);
    CHECK_MSG(wisp_future_state(d) == WISP_FUTURE_PENDING,
              "error %d with one live waiter of 2", wisp_future_error(d));
    wisp_future_t *e = wisp_sem_acquire(s, 0); /* a and d wait: full */
    CHECK_EQ_INT(wisp_future_error(e), -EAGAIN);
    CHECK_EQ_INT(wisp_sem_waiting(s), 2);
    CHECK_EQ_INT(wisp_sem_available(s), 0);

    /* FIFO among the live ones: a, then d; the dead ones get nothing. */
    norder = 0;
    wisp_future_then(a, granted, (void *)(intptr_t)1);
    wisp_future_then(d, granted, (void *)(intptr_t)2);
    wisp_future_unref(held); /* -> a */
    CHECK(wisp_future_state(a) == WISP_FUTURE_RESOLVED);
    CHECK(wisp_future_state(d) == WISP_FUTURE_PENDING);
    flush(loop);
    wisp_future_unref(a); /* -> d */
    CHECK(wisp_future_state(d) == WISP_FUTURE_RESOLVED);
    flush(loop);
    CHECK_EQ_INT(norder, 2);
    CHECK(order[0] == 1 && order[1] == 2);
    CHECK_EQ_INT(wisp_sem_waiting(s), 0);
    CHECK_EQ_INT(wisp_future_error(b), -ETIMEDOUT);
    CHECK_EQ_INT(wisp_future_error(c), -ECANCELED);
    wisp_future_unref(d);
    CHECK_EQ_INT(wisp_sem_available(s), 1);
    wisp_future_unref(b);
    wisp_future_unref(c);
    wisp_future_unref(x);
    wisp_future_unref(y);
    wisp_future_unref(e);
    wisp_sem_destroy(s);
    flush(loop);
}

/* Many acquire/release rounds: never more than N holders at once. */
static int holders, max_holders, finished;
static wisp_sem_t *S;

static void done_work(wisp_timer_t *t, void *arg)
{
    wisp_future_t *f = arg;
    wisp_loop_t *loop = wisp_future_loop(f);
    free(t);
    holders--;
    finished++;
    wisp_future_unref(f); /* releases the permit */
    if (finished == 200)
        wisp_loop_break(loop);
}

static void start_work(wisp_future_t *f, void *arg)
{
    (void)arg;
    if (wisp_future_state(f) != WISP_FUTURE_RESOLVED)
        return;
    holders++;
    if (holders > max_holders)
        max_holders = holders;
    wisp_timer_t *t = malloc(sizeof *t);
    wisp_timer_init(wisp_future_loop(f), t);
    wisp_timer_start(t, (uint64_t)(rand() % 3), done_work, f);
}

static void test_cap(wisp_loop_t *loop)
{
    S = wisp_sem_create(loop, 3, 0);
    for (int i = 0; i < 200; i++) {
        wisp_future_t *f = wisp_sem_acquire(S, 0);
        wisp_future_then(f, start_work, NULL);
    }
    wisp_loop_run(loop);
    CHECK_EQ_INT(finished, 200);
    CHECK_EQ_INT(max_holders, 3);
    CHECK_EQ_INT(wisp_sem_available(S), 3);
    wisp_sem_destroy(S);
    flush(loop);
}

int main(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    test_fifo(loop);
    test_timeout_and_limits(loop);
    test_dead_waiters_not_counted(loop);
    test_cap(loop);
    wisp_loop_destroy(loop);
    return t_done("sem");
}
