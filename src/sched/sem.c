/* The async semaphore. Waiters queue in a ring of futures; a released
 * permit goes to the oldest waiter still pending (waiters that timed out
 * or were cancelled are skipped, lazily). A permit is the value of the
 * waiter's future, and its destructor gives the permit back, so every
 * way a holder can end — finishing, failing, disappearing — releases
 * it exactly once.
 *
 * max_waiters counts live (pending) waiters only. A waiter can stop
 * pending behind a live one at any time (a timeout, or a cancel from any
 * thread) without the semaphore hearing of it, so the ring's length is
 * only an upper bound: when it reaches max_waiters, an acquire compacts
 * the ring (drops every dead entry, keeping the live ones in order) and
 * looks again. Each dead entry is dropped once, so the compaction pays
 * for itself while there are dead entries to drop; with max_waiters
 * live waiters, a refused acquire costs one pass over them. */
#include <errno.h>
#include <stdlib.h>

#include "loop/loop_int.h"
#include "wisp/sem.h"

struct wisp_sem {
    wisp_loop_t *loop;
    uint32_t available;
    uint32_t held;          /* permits out with holders */
    uint32_t max_waiters;
    uint32_t head, count, cap;
    wisp_future_t **ring;
    int destroyed;
};

static void grant_waiters(wisp_sem_t *s);
static int resolve_with_permit(wisp_sem_t *s, wisp_future_t *f);

static void permit_release(void *arg)
{
    wisp_sem_t *s = arg;
    WISP__ASSERT_OWNER(s->loop);
    s->held--;
    if (s->destroyed) {
        if (!s->held) {
            free(s->ring);
            free(s);
        }
        return;
    }
    s->available++;
    grant_waiters(s);
}

/* Hand a permit to `f`: the permit is f's value, released by its
 * destructor. */
static int resolve_with_permit(wisp_sem_t *s, wisp_future_t *f)
{
    s->available--;
    s->held++;
    if (wisp_future_resolve(f, s, permit_release) < 0) {
        /* The future had settled: resolve already ran the destructor,
         * which gave the permit back (and may have granted it). */
        return -EALREADY;
    }
    return 0;
}

static void grant_waiters(wisp_sem_t *s)
{
    while (s->available && s->count) {
        wisp_future_t *f = s->ring[s->head];
        s->head = (s->head + 1) % s->cap;
        s->count--;
        if (wisp_future_state(f) == WISP_FUTURE_PENDING)
            resolve_with_permit(s, f);
        wisp_future_unref(f); /* the queue's reference */
    }
}

/* Drop waiters at the front that are no longer pending. */
static void prune(wisp_sem_t *s)
{
    while (s->count &&
           wisp_future_state(s->ring[s->head]) != WISP_FUTURE_PENDING) {
        wisp_future_unref(s->ring[s->head]);
        s->head = (s->head + 1) % s->cap;
        s->count--;
    }
}

/* Drop every waiter that is no longer pending, wherever it sits; the
 * live ones keep their order (FIFO). */
static void compact(wisp_sem_t *s)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < s->count; i++) {
        wisp_future_t *f = s->ring[(s->head + i) % s->cap];
        if (wisp_future_state(f) != WISP_FUTURE_PENDING)
            wisp_future_unref(f);
        else
            s->ring[(s->head + kept++) % s->cap] = f;
    }
    s->count = kept;
}

wisp_sem_t *wisp_sem_create(wisp_loop_t *loop, uint32_t permits,
                            uint32_t max_waiters)
{
    if (!loop || !permits) {
        errno = EINVAL;
        return NULL;
    }
    wisp_sem_t *s = calloc(1, sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    s->loop = loop;
    s->available = permits;
    s->max_waiters = max_waiters ? max_waiters : 65536;
    return s;
}

void wisp_sem_destroy(wisp_sem_t *s)
{
    if (!s)
        return;
    WISP__ASSERT_OWNER(s->loop);
    s->destroyed = 1;
    while (s->count) {
        wisp_future_t *f = s->ring[s->head];
        s->head = (s->head + 1) % s->cap;
        s->count--;
        wisp_future_cancel(f);
        wisp_future_unref(f);
    }
    if (!s->held) {
        free(s->ring);
        free(s);
    }
}

wisp_future_t *wisp_sem_acquire(wisp_sem_t *s, uint64_t timeout_ms)
{
    WISP__ASSERT_OWNER(s->loop);
    wisp_future_t *f = wisp_future_create(s->loop);
    if (!f)
        return NULL;
    if (s->destroyed) {
        wisp_future_fail(f, -ECANCELED);
        return f;
    }
    prune(s);
    if (s->available && !s->count) {
        resolve_with_permit(s, f);
        return f;
    }
    if (s->count >= s->max_waiters)
        compact(s); /* dead waiters behind a live head do not count */
    if (s->count >= s->max_waiters) {
        wisp_future_fail(f, -EAGAIN);
        return f;
    }
    if (s->count == s->cap) {
        uint32_t cap = s->cap ? s->cap * 2 : 16;
        wisp_future_t **r = malloc(cap * sizeof *r);
        if (!r) {
            wisp_future_fail(f, -ENOMEM);
            return f;
        }
        for (uint32_t i = 0; i < s->count; i++)
            r[i] = s->ring[(s->head + i) % s->cap];
        free(s->ring);
        s->ring = r;
        s->cap = cap;
        s->head = 0;
    }
    wisp_future_ref(f); /* the queue's */
    s->ring[(s->head + s->count) % s->cap] = f;
    s->count++;
    if (timeout_ms)
        wisp_future_set_timeout(f, timeout_ms);
    return f;
}

uint32_t wisp_sem_available(const wisp_sem_t *s)
{
    return s->available;
}

uint32_t wisp_sem_waiting(const wisp_sem_t *s)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->count; i++)
        n += wisp_future_state(s->ring[(s->head + i) % s->cap]) ==
             WISP_FUTURE_PENDING;
    return n;
}
