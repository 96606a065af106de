/* The async token-bucket limiter: a wisp_rate_t on a loop and a FIFO of
 * waiters.
 *
 * Only the head of the queue can be granted: it gets its tokens as soon
 * as the bucket holds them, and one loop timer is armed for exactly that
 * moment (wisp_rate_wait_ms rounds up, so when the timer fires the
 * tokens are there). While anyone waits, nothing but a grant takes tokens
 * (try() refuses, acquire() queues), so the head's due time changes only
 * when the head does: the timer is re-armed then and never polled.
 *
 * A waiter can also end without the limiter: cancelled (from any
 * thread), timed out (wisp_future_set_timeout, as in sem.c), failed by
 * its holder. The semaphore notices such waiters lazily, when a permit
 * comes back; here a dead head would hold everyone behind it until its
 * own due time, so each queued future carries a continuation that takes
 * its waiter out of the queue and looks at the new head as soon as the
 * future settles. The continuation owns the waiter's node: the queue
 * only links it. That is what lets destroy detach every node and free
 * the limiter at once while the notifications are still on their way. */
#include <errno.h>
#include <stdlib.h>

#include "loop/loop_int.h"
#include "wisp/rate.h"

typedef struct waiter {
    struct waiter *prev, *next;
    wisp_limiter_t *l;      /* NULL once out of the queue */
    wisp_future_t *f;       /* the queue's reference while queued */
    uint32_t n;             /* tokens wanted */
} waiter;

struct wisp_limiter {
    wisp_loop_t *loop;
    wisp_rate_t bucket;
    uint32_t burst;
    uint32_t max_waiters;
    uint32_t count;         /* waiters linked, settled or not */
    waiter *head, *tail;
    waiter *timed;          /* the head the timer is armed for */
    wisp_timer_t timer;
};

/* Take `w` out of the queue and drop the queue's reference. The node
 * stays allocated: its continuation frees it. */
static void unqueue(wisp_limiter_t *l, waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        l->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        l->tail = w->prev;
    l->count--;
    /* Forget the node: a later one may be allocated at its address. */
    if (l->timed == w)
        l->timed = NULL;
    w->l = NULL;
    wisp_future_unref(w->f);
    w->f = NULL;
}

static void on_due(wisp_timer_t *t, void *arg);

/* Grant the head for as long as the bucket allows, drop heads that have
 * settled elsewhere (their continuation has not run yet), then arm the
 * timer for the head that has to wait, if it is not armed for it yet. */
static void serve(wisp_limiter_t *l)
{
    uint64_t now = wisp_loop_now(l->loop);
    while (l->head) {
        waiter *w = l->head;
        if (wisp_future_state(w->f) != WISP_FUTURE_PENDING) {
            unqueue(l, w);
            continue;
        }
        uint64_t wait = wisp_rate_wait_ms(&l->bucket, now, w->n);
        if (wait) {
            if (l->timed == w && wisp_timer_active(&l->timer))
                return;
            int err = wisp_timer_start(&l->timer, wait, on_due, l);
            if (err == 0) {
                l->timed = w;
                return;
            }
            /* No memory for the timer heap: nothing would wake this
             * waiter, so it fails rather than hangs. */
            wisp_future_fail(w->f, err);
            unqueue(l, w);
            continue;
        }
        /* Resolve first: a cancel from another thread may win the race
         * since the state check, and then no tokens are taken. */
        if (wisp_future_resolve(w->f, NULL, NULL) == 0)
            wisp_rate_take(&l->bucket, now, w->n);
        unqueue(l, w);
    }
    wisp_timer_stop(&l->timer);
    l->timed = NULL;
}

static void on_due(wisp_timer_t *t, void *arg)
{
    wisp_limiter_t *l = arg;
    (void)t;
    l->timed = NULL;
    serve(l);
}

/* A queued future has settled: granted (already unqueued), cancelled or
 * timed out (still queued), or failed by destroy (unqueued). */
static void on_settled(wisp_future_t *f, void *arg)
{
    waiter *w = arg;
    wisp_limiter_t *l = w->l;
    (void)f;
    if (l) {
        unqueue(l, w);
        serve(l);
    }
    free(w);
}

wisp_limiter_t *wisp_limiter_create(wisp_loop_t *loop, double per_second,
                                    uint32_t burst, uint32_t max_waiters)
{
    /* The upper bound keeps per_second × 1e6 (nano-tokens per ms) well
     * inside a uint64_t; the negated test also refuses NaN. */
    if (!loop || !burst || !(per_second > 0 && per_second <= 1e12)) {
        errno = EINVAL;
        return NULL;
    }
    wisp_limiter_t *l = calloc(1, sizeof *l);
    if (!l) {
        errno = ENOMEM;
        return NULL;
    }
    l->loop = loop;
    wisp_rate_init(&l->bucket, per_second, burst, wisp_loop_now(loop));
    l->burst = burst;
    l->max_waiters = max_waiters ? max_waiters : 65536;
    wisp_timer_init(loop, &l->timer);
    return l;
}

void wisp_limiter_destroy(wisp_limiter_t *l)
{
    if (!l)
        return;
    WISP__ASSERT_OWNER(l->loop);
    wisp_timer_stop(&l->timer);
    while (l->head) {
        waiter *w = l->head;
        wisp_future_cancel(w->f);
        unqueue(l, w);
    }
    free(l);
}

wisp_future_t *wisp_limiter_acquire(wisp_limiter_t *l, uint32_t n,
                                    uint64_t timeout_ms)
{
    WISP__ASSERT_OWNER(l->loop);
    wisp_future_t *f = wisp_future_create(l->loop);
    if (!f)
        return NULL;
    if (n > l->burst) {
        wisp_future_fail(f, -EINVAL);
        return f;
    }
    /* Settle what is due first, so "nobody waits" is true, not stale. */
    serve(l);
    if (!l->head && wisp_rate_take(&l->bucket, wisp_loop_now(l->loop), n)) {
        wisp_future_resolve(f, NULL, NULL);
        return f;
    }
    if (l->count >= l->max_waiters) {
        wisp_future_fail(f, -EAGAIN);
        return f;
    }
    waiter *w = malloc(sizeof *w);
    if (!w || wisp_future_then(f, on_settled, w) < 0) {
        free(w);
        wisp_future_fail(f, -ENOMEM);
        return f;
    }
    wisp_future_ref(f); /* the queue's */
    w->l = l;
    w->f = f;
    w->n = n;
    w->next = NULL;
    w->prev = l->tail;
    if (l->tail)
        l->tail->next = w;
    else
        l->head = w;
    l->tail = w;
    l->count++;
    if (timeout_ms)
        wisp_future_set_timeout(f, timeout_ms);
    if (l->head == w)
        serve(l); /* a new head: arm the timer for it */
    return f;
}

int wisp_limiter_try(wisp_limiter_t *l, uint32_t n)
{
    WISP__ASSERT_OWNER(l->loop);
    serve(l);
    if (l->head)
        return 0;
    return wisp_rate_take(&l->bucket, wisp_loop_now(l->loop), n);
}

uint32_t wisp_limiter_tokens(wisp_limiter_t *l)
{
    WISP__ASSERT_OWNER(l->loop);
    return wisp_rate_tokens(&l->bucket, wisp_loop_now(l->loop));
}

uint32_t wisp_limiter_waiting(const wisp_limiter_t *l)
{
    WISP__ASSERT_OWNER(l->loop);
    /* Settled waiters leave when their continuation runs; until then
     * they are linked but no longer wait. */
    uint32_t n = 0;
    for (const waiter *w = l->head; w; w = w->next)
        n += wisp_future_state(w->f) == WISP_FUTURE_PENDING;
    return n;
}
