/* Token bucket (include/wisp/rate.h) and the async limiter
 * (src/sched/rate.c): refill, cap, fractional rates, exact waits, odd
 * inputs; FIFO grants paced by the loop clock, one timer for the head,
 * timeouts and cancels that take no tokens and let the next waiter go,
 * max_waiters, destroy, try(), futures dropped while they wait.
 *
 * No check here depends on how fast the machine is. Time is the loop's
 * clock (wisp_loop_now). A grant may never come before the bucket allows
 * it (exact). That it comes on time is checked where the limiter decides
 * it: after each grant, the limiter's timer must be armed for a moment no
 * later than the next waiter's tokens are there (CHECK_ASKED). How late
 * the loop actually ran is the scheduler's business: on a loaded 2-core
 * machine under ThreadSanitizer it was seen 700 ms late in three runs
 * out of three, with the limiter asking for the right moment every time
 * (that was the old upper bound on lateness: a property of the machine,
 * not of the limiter). Lateness is reported, not checked; bench/ is
 * where timing is measured. */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "loop/loop_int.h"
#include "test.h"
#include "wisp/rate.h"


/* ------------------------------------------------------------ bucket */

static void test_bucket_refill_and_cap(void)
{
    wisp_rate_t r;
    wisp_rate_init(&r, 10, 5, 1000); /* one token per 100 ms */
    CHECK_EQ_INT(wisp_rate_tokens(&r, 1000), 5);
    CHECK_EQ_INT(wisp_rate_take(&r, 1000, 6), 0); /* more than there are */
    CHECK_EQ_INT(wisp_rate_tokens(&r, 1000), 5);  /* ...took nothing */
    CHECK_EQ_INT(wisp_rate_take(&r, 1000, 5), 1);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 1000), 0);
    CHECK_EQ_INT(wisp_rate_take(&r, 1000, 1), 0);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 1099), 0);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 1100), 1);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 1250), 2); /* 2.5 */
    CHECK_EQ_INT(wisp_rate_take(&r, 1250, 2), 1);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 1299), 0); /* 0.99 */
    CHECK_EQ_INT(wisp_rate_tokens(&r, 1300), 1); /* the half was kept */
    /* Capped at burst, however long the bucket sits. */
    CHECK_EQ_INT(wisp_rate_tokens(&r, 1000 + 3600 * 1000), 5);
    CHECK_EQ_INT(wisp_rate_take(&r, 1000 + 3600 * 1000, 6), 0);
    CHECK_EQ_INT(wisp_rate_take(&r, 1000 + 3600 * 1000, 5), 1);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 1000 + 3600 * 1000), 0);
}

/* wisp_rate_refill alone: earns up to the burst, never moves back, and
 * changes nothing the other calls would answer. */
static void test_bucket_refill_alone(void)
{
    wisp_rate_t r;
    wisp_rate_init(&r, 10, 5, 1000);
    CHECK_EQ_INT(wisp_rate_take(&r, 1000, 5), 1);
    wisp_rate_refill(&r, 1250);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 1250), 2);
    wisp_rate_refill(&r, 900); /* earlier: nothing moves back */
    CHECK_EQ_INT(wisp_rate_tokens(&r, 1250), 2);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 1300), 3);
    wisp_rate_refill(&r, 1000 + 3600 * 1000);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 1000 + 3600 * 1000), 5);
}

static void test_bucket_fractional(void)
{
    wisp_rate_t r;
    wisp_rate_init(&r, 0.5, 1, 0); /* one token every 2 s */
    CHECK_EQ_INT(wisp_rate_take(&r, 0, 1), 1);
    CHECK_EQ_INT(wisp_rate_wait_ms(&r, 0, 1), 2000);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 1999), 0);
    CHECK_EQ_INT(wisp_rate_wait_ms(&r, 1999, 1), 1);
    CHECK_EQ_INT(wisp_rate_take(&r, 1999, 1), 0);
    CHECK_EQ_INT(wisp_rate_take(&r, 2000, 1), 1);

    wisp_rate_init(&r, 0.1, 3, 0); /* one every 10 s */
    CHECK_EQ_INT(wisp_rate_take(&r, 0, 3), 1);
    CHECK_EQ_INT(wisp_rate_wait_ms(&r, 0, 1), 10000);
    CHECK_EQ_INT(wisp_rate_wait_ms(&r, 0, 3), 30000);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 25000), 2);
    CHECK_EQ_INT(wisp_rate_wait_ms(&r, 25000, 3), 5000);
}

/* wisp_rate_wait_ms is exact: the tokens are not there one millisecond
 * earlier, and they are there at that moment. */
static const struct wait_row {
    const char *name;
    double per_second;
    uint32_t burst, take_first, n;
    uint64_t want_ms; /* 0: only check exactness */
} wait_rows[] = {
    {"one per second, empty bucket", 1, 1, 1, 1, 1000},
    {"half per second", 0.5, 2, 2, 2, 4000},
    {"a third per second rounds up", 1.0 / 3, 1, 1, 1, 0},
    {"three per second", 3, 4, 4, 4, 0},
    {"1000 per second: one per ms", 1000, 10, 10, 10, 10},
    {"faster than one per ms waits 1 ms", 1e6, 10, 10, 10, 1},
    {"partly full bucket", 10, 5, 3, 4, 200},
    {"request equal to burst", 7, 9, 9, 9, 0},
    {"slowest rate", 1e-6, 1, 1, 1, 1000000000},
};

static void test_bucket_wait_exact(void)
{
    for (size_t i = 0; i < sizeof wait_rows / sizeof wait_rows[0]; i++) {
        const struct wait_row *w = &wait_rows[i];
        wisp_rate_t r;
        uint64_t t0 = 5000;
        wisp_rate_init(&r, w->per_second, w->burst, t0);
        CHECK_MSG(wisp_rate_take(&r, t0, w->take_first), "%s", w->name);
        uint64_t ms = wisp_rate_wait_ms(&r, t0, w->n);
        CHECK_MSG(ms > 0 && ms != UINT64_MAX, "%s: %llu", w->name,
                  (unsigned long long)ms);
        if (w->want_ms)
            CHECK_MSG(ms == w->want_ms, "%s: %llu ms, want %llu", w->name,
                      (unsigned long long)ms,
                      (unsigned long long)w->want_ms);
        wisp_rate_t early = r, on_time = r;
        CHECK_MSG(!wisp_rate_take(&early, t0 + ms - 1, w->n), "%s: early",
                  w->name);
        CHECK_MSG(wisp_rate_take(&on_time, t0 + ms, w->n), "%s: on time",
                  w->name);
        CHECK_MSG(wisp_rate_wait_ms(&r, t0 + ms, w->n) == 0, "%s", w->name);
    }
}

static void test_bucket_edges(void)
{
    wisp_rate_t r;
    wisp_rate_init(&r, 10, 2, 100);
    /* n = 0: always, even from an empty bucket. */
    CHECK_EQ_INT(wisp_rate_take(&r, 100, 2), 1);
    CHECK_EQ_INT(wisp_rate_take(&r, 100, 0), 1);
    CHECK_EQ_INT(wisp_rate_wait_ms(&r, 100, 0), 0);
    /* n > burst: never; nothing taken even from a full bucket. */
    CHECK(wisp_rate_wait_ms(&r, 100, 3) == UINT64_MAX);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 10000), 2);
    CHECK_EQ_INT(wisp_rate_take(&r, 10000, 3), 0);
    CHECK(wisp_rate_wait_ms(&r, 10000, UINT32_MAX) == UINT64_MAX);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 10000), 2);

    /* Time going backwards neither refills nor moves the reference: the
     * next refill still counts from the latest time seen. */
    wisp_rate_init(&r, 10, 5, 10000);
    CHECK_EQ_INT(wisp_rate_take(&r, 10000, 5), 1);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 5000), 0);
    CHECK_EQ_INT(wisp_rate_take(&r, 0, 1), 0);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 10099), 0);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 10100), 1);

    /* Huge steps in time do not overflow: the bucket is just full. */
    wisp_rate_init(&r, 1e-6, 3, 0);
    CHECK_EQ_INT(wisp_rate_take(&r, 0, 3), 1);
    CHECK_EQ_INT(wisp_rate_tokens(&r, UINT64_MAX / 2), 3);
    CHECK_EQ_INT(wisp_rate_take(&r, UINT64_MAX / 2, 3), 1);
    CHECK_EQ_INT(wisp_rate_tokens(&r, UINT64_MAX), 3);
    wisp_rate_init(&r, 1e12, UINT32_MAX, 0); /* the largest of both */
    CHECK_EQ_INT(wisp_rate_take(&r, 0, UINT32_MAX), 1);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 0), 0);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 1), 1000000000);
    CHECK_EQ_INT(wisp_rate_wait_ms(&r, 1, UINT32_MAX), 4);
    CHECK(wisp_rate_tokens(&r, UINT64_MAX) == UINT32_MAX);

    /* Out-of-range settings are clamped: burst 0 holds one token, a rate
     * that is not positive is the slowest one. */
    wisp_rate_init(&r, 0, 0, 0);
    CHECK_EQ_INT(wisp_rate_tokens(&r, 0), 1);
    CHECK_EQ_INT(wisp_rate_take(&r, 0, 1), 1);
    CHECK(wisp_rate_wait_ms(&r, 0, 1) == 1000000000);
    wisp_rate_init(&r, NAN, 1, 0);
    CHECK_EQ_INT(wisp_rate_take(&r, 0, 1), 1);
    CHECK(wisp_rate_wait_ms(&r, 0, 1) == 1000000000);
}

/* ----------------------------------------------------------- limiter */

static wisp_loop_t *L;

static void break_task(void *arg)
{
    wisp_loop_break(arg);
}

/* Run one loop iteration: what is queued now runs. */
static void flush(void)
{
    wisp_loop_defer(L, break_task, L);
    wisp_loop_run(L);
}

/* What happened to one acquisition. */
typedef struct rec {
    int settled;
    int err;
    uint64_t at; /* wisp_loop_now when it settled */
    int seq;     /* order of settling */
    uint64_t next_due; /* earliest timer the limiter had armed then
                          (UINT64_MAX: none) */
} rec;

static int nseq, want_seq;
static wisp_timer_t dog; /* run_until's watchdog, not the limiter's */

/* The earliest armed timer but the watchdog: in these tests, the
 * limiter's (tests with other timers do not use it). */
static uint64_t armed_due(void)
{
    uint64_t d = UINT64_MAX;
    for (uint32_t i = 1; i <= L->heap_len; i++)
        if (L->heap[i] != &dog && L->heap[i]->due_ms < d)
            d = L->heap[i]->due_ms;
    return d;
}

static void note(wisp_future_t *f, void *arg)
{
    rec *r = arg;
    r->next_due = armed_due();
    r->settled = 1;
    r->err = wisp_future_error(f);
    r->at = wisp_loop_now(L);
    r->seq = nseq++;
    if (nseq == want_seq)
        wisp_loop_break(L);
}

static wisp_future_t *acq(wisp_limiter_t *l, uint32_t n, uint64_t timeout,
                          rec *r)
{
    wisp_future_t *f = wisp_limiter_acquire(l, n, timeout);
    CHECK(f != NULL);
    memset(r, 0, sizeof *r);
    wisp_future_then(f, note, r);
    return f;
}

static void on_watchdog(wisp_timer_t *t, void *arg)
{
    (void)t;
    wisp_loop_break(arg);
}

/* Run the loop until `n` notes in all have been taken (or max_ms, the
 * failure bound). */
static int run_until(int n, uint64_t max_ms)
{
    want_seq = n;
    if (nseq >= n)
        return 1;
    wisp_timer_init(L, &dog);
    wisp_timer_start(&dog, max_ms, on_watchdog, L);
    wisp_loop_run(L);
    wisp_timer_stop(&dog);
    return nseq >= n;
}

/* A fresh test: queued work done, clock refreshed, counters reset. */
static uint64_t start(void)
{
    flush();
    nseq = 0;
    want_seq = -1;
    return wisp_loop_now(L);
}

/* Never early: checked hard. Late: counted and reported only. */
static int late_grants;
static uint64_t worst_late;

#define CHECK_AT(r, t0, ms)                                                 \
    do {                                                                    \
        CHECK_MSG((r).at >= (t0) + (ms), "settled at +%lld ms, before +%d", \
                  (long long)((r).at - (t0)), (int)(ms));                   \
        if ((r).at > (t0) + (ms)) {                                         \
            late_grants++;                                                  \
            if ((r).at - (t0) - (ms) > worst_late)                          \
                worst_late = (r).at - (t0) - (ms);                          \
        }                                                                   \
    } while (0)

/* `cur` (due at t0 + due, `gap` ms after `prev`'s due) was asked for in
 * time: unless both were granted in one pass, the timer the limiter had
 * armed when `prev` was granted is due no later than cur's tokens. When
 * `prev` came late, the bucket holds at least what it would have held
 * on time, so `gap` after prev's grant is still enough. */
#define CHECK_ASKED(prev, cur, t0, due, gap)                                \
    do {                                                                    \
        uint64_t ideal = (t0) + (due), after = (prev).at + (gap);           \
        uint64_t bound = ideal > after ? ideal : after;                     \
        CHECK_MSG((cur).at == (prev).at || (prev).next_due <= bound,       \
                  "after +%lld the limiter armed +%lld, want <= +%lld",     \
                  (long long)((prev).at - (t0)),                            \
                  (long long)((prev).next_due - (t0)),                      \
                  (long long)(bound - (t0)));                               \
    } while (0)

static void test_create_errors(void)
{
    static const struct {
        double per_second;
        uint32_t burst;
    } bad[] = {{0, 1}, {-1, 1}, {NAN, 1}, {INFINITY, 1}, {1e13, 1},
               {1, 0}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        CHECK(wisp_limiter_create(L, bad[i].per_second, bad[i].burst, 0) ==
              NULL);
        CHECK_EQ_INT(errno, EINVAL);
    }
    errno = 0;
    CHECK(wisp_limiter_create(NULL, 1, 1, 0) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    wisp_limiter_t *l = wisp_limiter_create(L, 1e12, UINT32_MAX, 0);
    CHECK(l != NULL);
    wisp_limiter_destroy(l);
    wisp_limiter_destroy(NULL);
}

static void test_immediate(void)
{
    start();
    wisp_limiter_t *l = wisp_limiter_create(L, 1, 3, 0);
    CHECK_EQ_INT(wisp_limiter_tokens(l), 3);
    rec r[4];
    wisp_future_t *f[4];
    f[0] = acq(l, 2, 0, &r[0]);
    CHECK(wisp_future_state(f[0]) == WISP_FUTURE_RESOLVED);
    CHECK(wisp_future_value(f[0]) == NULL);
    f[1] = acq(l, 1, 0, &r[1]);
    CHECK(wisp_future_state(f[1]) == WISP_FUTURE_RESOLVED);
    CHECK_EQ_INT(wisp_limiter_tokens(l), 0);
    f[2] = acq(l, 0, 0, &r[2]); /* n = 0 from an empty bucket */
    CHECK(wisp_future_state(f[2]) == WISP_FUTURE_RESOLVED);
    /* n > burst fails at once, whatever the bucket holds. */
    f[3] = acq(l, 4, 0, &r[3]);
    CHECK_EQ_INT(wisp_future_error(f[3]), -EINVAL);
    CHECK_EQ_INT(wisp_limiter_waiting(l), 0);
    CHECK(run_until(4, 30000));
    CHECK(r[0].err == 0 && r[1].err == 0 && r[2].err == 0);
    CHECK_EQ_INT(r[3].err, -EINVAL);
    for (int i = 0; i < 4; i++)
        wisp_future_unref(f[i]);
    CHECK_EQ_INT(L->heap_len, 0); /* nobody waits: no timer */
    wisp_limiter_destroy(l);
}

/* Mixed sizes in FIFO order: a small request behind a large one waits,
 * even though its tokens are there first; one timer, armed for the
 * head's moment. */
static void test_fifo_mixed(void)
{
    uint64_t t0 = start();
    wisp_limiter_t *l = wisp_limiter_create(L, 50, 5, 0); /* 20 ms each */
    rec r[6];
    wisp_future_t *f[6];
    f[0] = acq(l, 5, 0, &r[0]); /* empties the bucket */
    static const uint32_t n[] = {5, 3, 1, 2, 1, 0};
    static const int due[] = {0, 60, 80, 120, 140, 140};
    for (int i = 1; i < 6; i++)
        f[i] = acq(l, n[i], 0, &r[i]);
    CHECK(wisp_future_state(f[0]) == WISP_FUTURE_RESOLVED);
    CHECK_EQ_INT(wisp_limiter_waiting(l), 5);
    /* Exactly one timer, due when the head's 3 tokens are there. */
    CHECK_EQ_INT(L->heap_len, 1);
    CHECK_EQ_INT(L->heap[1]->due_ms, t0 + 60);
    CHECK(run_until(6, 30000));
    for (int i = 0; i < 6; i++) {
        CHECK_MSG(r[i].settled && r[i].err == 0 && r[i].seq == i,
                  "waiter %d: settled %d err %d seq %d", i, r[i].settled,
                  r[i].err, r[i].seq);
        CHECK_AT(r[i], t0, due[i]);
        if (i > 1)
            CHECK_ASKED(r[i - 1], r[i], t0, due[i], due[i] - due[i - 1]);
    }
    CHECK_EQ_INT(r[5].at, r[4].at); /* n = 0 goes with the one before */
    CHECK_EQ_INT(wisp_limiter_waiting(l), 0);
    CHECK_EQ_INT(L->heap_len, 0);
    for (int i = 0; i < 6; i++)
        wisp_future_unref(f[i]);
    wisp_limiter_destroy(l);
}

/* Even pacing: 8 requests of 1 token at 20 per second, burst 1. */
static void test_pacing(void)
{
    uint64_t t0 = start();
    wisp_limiter_t *l = wisp_limiter_create(L, 20, 1, 0);
    rec r[8];
    wisp_future_t *f[8];
    for (int i = 0; i < 8; i++)
        f[i] = acq(l, 1, 0, &r[i]);
    CHECK(run_until(8, 30000));
    for (int i = 0; i < 8; i++) {
        CHECK(r[i].err == 0 && r[i].seq == i);
        CHECK_AT(r[i], t0, 50 * i);
        if (i > 0)
            CHECK_ASKED(r[i - 1], r[i], t0, 50 * i, 50);
    }
    CHECK_EQ_INT(r[7].next_due, UINT64_MAX); /* nobody left: no timer */
    for (int i = 0; i < 8; i++)
        wisp_future_unref(f[i]);
    wisp_limiter_destroy(l);
}

/* A head that times out takes nothing and lets the smaller request
 * behind it go at once. */
static void test_timeout(void)
{
    uint64_t t0 = start();
    wisp_limiter_t *l = wisp_limiter_create(L, 10, 2, 0); /* 100 ms each */
    CHECK_EQ_INT(wisp_limiter_try(l, 1), 1);              /* 1 left */
    rec r[3];
    wisp_future_t *big = acq(l, 2, 30, &r[0]); /* would be due at +100 */
    wisp_future_t *small = acq(l, 1, 0, &r[1]);
    CHECK_EQ_INT(wisp_limiter_waiting(l), 2);
    flush();
    CHECK(wisp_future_state(small) == WISP_FUTURE_PENDING); /* FIFO */
    CHECK(run_until(2, 30000));
    CHECK_EQ_INT(r[0].err, -ETIMEDOUT);
    CHECK_AT(r[0], t0, 30);
    CHECK_EQ_INT(r[1].err, 0);
    /* Small goes as soon as big leaves the head (same loop turn, so the
     * same cached clock), not at the refill 70 ms after big's timeout:
     * measured from big's settling, a stalled machine cannot fake it. */
    CHECK_MSG(r[1].at >= r[0].at && r[1].at - r[0].at < 70,
              "small went %lld ms after big timed out",
              (long long)(r[1].at - r[0].at));
    /* The timed-out head took nothing: 1.3 - 1 leaves 0.3, so the next
     * token is there at +100 exactly. */
    if (wisp_loop_now(L) < t0 + 100) /* else the refill came meanwhile */
        CHECK_EQ_INT(wisp_limiter_tokens(l), 0);
    wisp_future_t *next = acq(l, 1, 0, &r[2]);
    CHECK(run_until(3, 30000));
    CHECK_EQ_INT(r[2].err, 0);
    CHECK_AT(r[2], t0, 100);
    wisp_future_unref(big);
    wisp_future_unref(small);
    wisp_future_unref(next);
    wisp_limiter_destroy(l);
}

/* Cancelling a waiter in the middle: it takes nothing, the one behind it
 * inherits its place. Cancelling the head: the next is reconsidered at
 * once and the timer moves to it. */
static void test_cancel(void)
{
    uint64_t t0 = start();
    wisp_limiter_t *l = wisp_limiter_create(L, 10, 2, 0);
    rec r[3];
    wisp_future_t *f[3];
    CHECK_EQ_INT(wisp_limiter_try(l, 2), 1); /* empty */
    f[0] = acq(l, 1, 0, &r[0]);              /* +100 */
    f[1] = acq(l, 2, 0, &r[1]);              /* would be +300 */
    f[2] = acq(l, 1, 0, &r[2]);              /* +200 once f[1] is gone */
    flush();
    CHECK_EQ_INT(wisp_future_cancel(f[1]), 0);
    CHECK_EQ_INT(wisp_limiter_waiting(l), 2);
    CHECK(run_until(3, 30000));
    CHECK_EQ_INT(r[1].err, -ECANCELED);
    CHECK(r[0].err == 0 && r[2].err == 0);
    CHECK(r[0].seq < r[2].seq);
    CHECK_AT(r[0], t0, 100);
    CHECK_AT(r[2], t0, 200);
    CHECK_ASKED(r[0], r[2], t0, 200, 100);
    for (int i = 0; i < 3; i++)
        wisp_future_unref(f[i]);
    wisp_limiter_destroy(l);

    t0 = start();
    l = wisp_limiter_create(L, 10, 2, 0);
    CHECK_EQ_INT(wisp_limiter_try(l, 2), 1);
    f[0] = acq(l, 2, 0, &r[0]); /* due +200 */
    f[1] = acq(l, 1, 0, &r[1]);
    CHECK_EQ_INT(L->heap_len, 1);
    CHECK_EQ_INT(L->heap[1]->due_ms, t0 + 200);
    flush();
    CHECK(!r[1].settled);
    CHECK_EQ_INT(wisp_future_cancel(f[0]), 0);
    CHECK(run_until(2, 30000));
    CHECK_EQ_INT(r[0].err, -ECANCELED);
    CHECK_EQ_INT(r[1].err, 0);
    CHECK_AT(r[1], t0, 100); /* its own moment, not the old head's */
    CHECK_EQ_INT(L->heap_len, 0);
    wisp_future_unref(f[0]);
    wisp_future_unref(f[1]);
    wisp_limiter_destroy(l);

    /* The timer moves to the new head as soon as the cancel is seen. */
    t0 = start();
    l = wisp_limiter_create(L, 10, 2, 0);
    CHECK_EQ_INT(wisp_limiter_try(l, 2), 1);
    f[0] = acq(l, 2, 0, &r[0]);
    f[1] = acq(l, 1, 0, &r[1]);
    CHECK_EQ_INT(L->heap[1]->due_ms, t0 + 200);
    wisp_future_cancel(f[0]);
    flush();
    CHECK_EQ_INT(L->heap_len, 1);
    CHECK(L->heap_len == 1 && L->heap[1]->due_ms == t0 + 100);
    wisp_limiter_destroy(l);
    CHECK_EQ_INT(L->heap_len, 0);
    CHECK_EQ_INT(wisp_future_error(f[1]), -ECANCELED);
    flush();
    wisp_future_unref(f[0]);
    wisp_future_unref(f[1]);
}

/* A cancel from another thread reaches the loop and lets the next go. */
static void *cancel_now(void *arg)
{
    wisp_future_cancel(arg);
    return NULL;
}

static void test_cancel_from_thread(void)
{
    uint64_t t0 = start();
    /* One token per 1000 s: the head is never granted within the test,
     * whenever the other thread's cancel arrives. */
    wisp_limiter_t *l = wisp_limiter_create(L, 0.001, 1, 0);
    CHECK_EQ_INT(wisp_limiter_try(l, 1), 1);
    rec r[2];
    wisp_future_t *head = acq(l, 1, 0, &r[0]); /* due +1000 s */
    wisp_future_t *next = acq(l, 0, 0, &r[1]);
    pthread_t th;
    CHECK(pthread_create(&th, NULL, cancel_now, head) == 0);
    CHECK(run_until(2, 30000));
    pthread_join(th, NULL);
    CHECK_EQ_INT(r[0].err, -ECANCELED);
    CHECK_EQ_INT(r[1].err, 0);
    CHECK(r[1].at >= r[0].at && r[1].at < t0 + 1000000);
    CHECK_EQ_INT(wisp_limiter_tokens(l), 0);
    wisp_future_unref(head);
    wisp_future_unref(next);
    wisp_limiter_destroy(l);
}

static void test_limits_and_destroy(void)
{
    start();
    wisp_limiter_t *l = wisp_limiter_create(L, 10, 1, 2);
    CHECK_EQ_INT(wisp_limiter_try(l, 1), 1);
    rec r[6];
    wisp_future_t *f[6];
    f[0] = acq(l, 1, 0, &r[0]);
    f[1] = acq(l, 1, 5000, &r[1]); /* a timeout armed */
    f[2] = acq(l, 1, 0, &r[2]);
    CHECK_EQ_INT(wisp_future_error(f[2]), -EAGAIN);
    CHECK_EQ_INT(wisp_limiter_waiting(l), 2);
    f[3] = acq(l, 2, 0, &r[3]); /* -EINVAL comes before -EAGAIN */
    CHECK_EQ_INT(wisp_future_error(f[3]), -EINVAL);
    /* A cancelled waiter's place is free once the loop has run. */
    wisp_future_cancel(f[0]);
    flush();
    f[4] = acq(l, 1, 0, &r[4]);
    CHECK(wisp_future_state(f[4]) == WISP_FUTURE_PENDING);
    CHECK_EQ_INT(wisp_limiter_waiting(l), 2);
    /* Destroy fails every waiter at once. */
    wisp_limiter_destroy(l);
    CHECK_EQ_INT(wisp_future_error(f[1]), -ECANCELED);
    CHECK_EQ_INT(wisp_future_error(f[4]), -ECANCELED);
    flush();
    CHECK_EQ_INT(r[1].err, -ECANCELED);
    CHECK_EQ_INT(r[4].err, -ECANCELED);
    CHECK_EQ_INT(L->heap_len, 0); /* f[1]'s timeout went too */
    for (int i = 0; i < 5; i++)
        wisp_future_unref(f[i]);
}

static void test_try(void)
{
    start();
    wisp_limiter_t *l = wisp_limiter_create(L, 10, 2, 0);
    CHECK_EQ_INT(wisp_limiter_try(l, 3), 0); /* over burst */
    CHECK_EQ_INT(wisp_limiter_try(l, 1), 1);
    CHECK_EQ_INT(wisp_limiter_tokens(l), 1);
    rec r;
    wisp_future_t *f = acq(l, 2, 0, &r);
    CHECK(wisp_future_state(f) == WISP_FUTURE_PENDING);
    /* A token is there, but someone waits. */
    CHECK_EQ_INT(wisp_limiter_try(l, 1), 0);
    CHECK_EQ_INT(wisp_limiter_try(l, 0), 0);
    CHECK_EQ_INT(wisp_limiter_tokens(l), 1);
    /* Nobody waits once it is cancelled, even before the loop runs. */
    wisp_future_cancel(f);
    CHECK_EQ_INT(wisp_limiter_waiting(l), 0);
    CHECK_EQ_INT(wisp_limiter_try(l, 1), 1);
    CHECK_EQ_INT(wisp_limiter_tokens(l), 0);
    flush();
    wisp_future_unref(f);
    wisp_limiter_destroy(l);
}

/* Futures dropped by their holder while they wait: nothing leaks (the
 * sanitizer builds check), nothing crashes; a dropped waiter still takes
 * its tokens in its turn, as documented. */
static void test_dropped(void)
{
    uint64_t t0 = start();
    wisp_limiter_t *l = wisp_limiter_create(L, 20, 1, 0); /* 50 ms each */
    CHECK_EQ_INT(wisp_limiter_try(l, 1), 1);
    wisp_future_unref(wisp_limiter_acquire(l, 1, 0));  /* due +50 */
    wisp_future_unref(wisp_limiter_acquire(l, 1, 20)); /* times out */
    rec r[2];
    wisp_future_t *f = acq(l, 1, 0, &r[0]);
    CHECK(run_until(1, 30000));
    CHECK_EQ_INT(r[0].err, 0);
    CHECK_AT(r[0], t0, 100);
    wisp_future_unref(f);
    /* One dropped, one held, then the limiter goes. */
    wisp_future_unref(wisp_limiter_acquire(l, 1, 0));
    f = acq(l, 1, 0, &r[1]);
    wisp_limiter_destroy(l);
    flush();
    CHECK_EQ_INT(r[1].err, -ECANCELED);
    wisp_future_unref(f);
}

/* Many waiters of random sizes, some cancelled while the queue moves:
 * grants stay in FIFO order, never exceed what the bucket allows at
 * their moment (2 tokens per ms, exact in nano-tokens), and the last one
 * comes when the tokens actually granted say it should. */
enum { MANY = 300 };
static wisp_future_t *many_f[MANY];
static rec many_r[MANY];
static uint32_t many_n[MANY];

static void cancel_some(wisp_timer_t *t, void *arg)
{
    (void)arg;
    (void)t;
    for (int i = 0; i < MANY; i += 7)
        wisp_future_cancel(many_f[i]);
}

static void test_many(void)
{
    uint64_t t0 = start();
    /* A burst well above the largest request: a grant a few ms late
     * then loses no refill time, so lateness cannot add up. */
    const uint32_t burst = 64;
    wisp_limiter_t *l = wisp_limiter_create(L, 2000, burst, 0);
    srand(7);
    for (int i = 0; i < MANY; i++) {
        many_n[i] = (uint32_t)(rand() % 9);
        many_f[i] = acq(l, many_n[i], 0, &many_r[i]);
    }
    CHECK_EQ_INT(L->heap_len, 1);
    wisp_timer_t t;
    wisp_timer_init(L, &t);
    wisp_timer_start(&t, 100, cancel_some, NULL);
    CHECK(run_until(MANY, 30000));
    wisp_timer_stop(&t);
    uint64_t granted = 0, last_at = t0;
    int last_seq = -1, cancelled = 0;
    for (int i = 0; i < MANY; i++) {
        rec *r = &many_r[i];
        CHECK(r->settled);
        if (r->err == -ECANCELED) {
            cancelled++;
            continue;
        }
        CHECK_EQ_INT(r->err, 0);
        CHECK_MSG(r->seq > last_seq, "waiter %d out of order", i);
        last_seq = r->seq;
        granted += many_n[i];
        CHECK_MSG(granted <= burst + 2 * (r->at - t0),
                  "waiter %d: %llu tokens by +%llu ms", i,
                  (unsigned long long)granted,
                  (unsigned long long)(r->at - t0));
        last_at = r->at;
    }
    CHECK(cancelled > 0 && cancelled < MANY / 7 + 1);
    CHECK(granted > burst);
    uint64_t need_ms = granted > burst ? (granted - burst + 1) / 2 : 0;
    CHECK_MSG(last_at >= t0 + need_ms, "last grant at +%llu ms, before "
              "the tokens allow (+%llu)", (unsigned long long)(last_at - t0),
              (unsigned long long)need_ms);
    if (last_at > t0 + need_ms && last_at - t0 - need_ms > worst_late)
        worst_late = last_at - t0 - need_ms;
    for (int i = 0; i < MANY; i++)
        wisp_future_unref(many_f[i]);
    CHECK_EQ_INT(wisp_limiter_waiting(l), 0);
    wisp_limiter_destroy(l);
}

int main(void)
{
    test_bucket_refill_and_cap();
    test_bucket_refill_alone();
    test_bucket_fractional();
    test_bucket_wait_exact();
    test_bucket_edges();

    L = wisp_loop_create();
    test_create_errors();
    test_immediate();
    test_fifo_mixed();
    test_pacing();
    test_timeout();
    test_cancel();
    test_cancel_from_thread();
    test_limits_and_destroy();
    test_try();
    test_dropped();
    test_many();
    flush();
    printf("rate: %d grant(s) late by the loop's clock, worst %llu ms "
           "(reported, not checked)\n", late_grants,
           (unsigned long long)worst_late);
    wisp_loop_destroy(L);
    return t_done("rate");
}
