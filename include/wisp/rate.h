/* wisp — token-bucket rate limiting.
 *
 * Two forms:
 *
 *  - wisp_rate_t, a bucket to embed anywhere (one per user, per session,
 *    per API key): it holds at most `burst` tokens and gains `per_second`
 *    tokens each second. wisp_rate_take either takes tokens now or says
 *    no; nothing waits. No allocation, no thread of its own: the caller
 *    passes the time (wisp_loop_now on a loop) and keeps each bucket on
 *    one thread.
 *
 *  - wisp_limiter_t, the same bucket on a loop with a queue of waiters:
 *    wisp_limiter_acquire returns a future that resolves once its tokens
 *    have been taken, waiters served in FIFO order (a large request at the
 *    head is not overtaken by small ones behind it), with an optional
 *    wait timeout. Use it to pace upstream calls (requests per second to
 *    an ASR or LLM service); use wisp_sem_t (sem.h) to cap how many run
 *    at once. The two compose: for one upstream, take a permit, then
 *    the tokens, so calls start at the bucket's pace (docs/concurrency.md
 *    says why, and when the other order fits).
 *
 * Thread: a wisp_rate_t is not locked (one thread at a time); everything
 * on a wisp_limiter_t runs on its loop (asserted in debug builds). */
#ifndef WISP_RATE_H
#define WISP_RATE_H

#include "common.h"
#include "future.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Layout public so a bucket can be embedded; the fields are private.
 * Tokens are counted in billionths, so fractional rates (one token every
 * ten seconds: per_second = 0.1) are exact enough. */
typedef struct wisp_rate {
    uint64_t nano;       /* private: tokens × 1e9 now */
    uint64_t cap_nano;   /* private: burst × 1e9 */
    uint64_t gain_ms;    /* private: nano-tokens gained per millisecond */
    uint64_t last_ms;    /* private: time of the last refill */
} wisp_rate_t;

/* A full bucket: `burst` tokens (≥ 1), refilled at `per_second` (> 0)
 * tokens per second, starting at time `now_ms`.
 *
 * The rate is kept as whole nano-tokens per millisecond: it is rounded
 * down to a multiple of 1e-6 per second, and 1e-6 (one token in about
 * 11.6 days) is the slowest. Out-of-range values are clamped: burst 0
 * becomes 1, a rate that is not > 0 (or NaN) becomes the slowest.
 * `per_second` must be finite and at most 1e12 (the conversion to
 * nano-tokens overflows beyond about 1.8e13). */
static inline void wisp_rate_init(wisp_rate_t *r, double per_second,
                                  uint32_t burst, uint64_t now_ms)
{
    if (burst < 1)
        burst = 1;
    if (!(per_second > 0))
        per_second = 1e-6;
    r->cap_nano = (uint64_t)burst * 1000000000u;
    r->nano = r->cap_nano;
    double g = per_second * 1e6;
    /* Clamped: a rate past 1e12/s (or infinite) is "no limit" anyway. */
    r->gain_ms = g < 1 ? 1 : g > 1e18 ? (uint64_t)1e18 : (uint64_t)g;
    r->last_ms = now_ms;
}

/* Add the tokens earned between the last time the bucket saw and
 * `now_ms`, up to the burst, and remember `now_ms`. A `now_ms` not later
 * than one seen before changes nothing. wisp_rate_take, wisp_rate_wait_ms
 * and wisp_rate_tokens call it first; calling it alone never changes
 * what they answer. Thread: the caller's (the bucket has no lock). */
static inline void wisp_rate_refill(wisp_rate_t *r, uint64_t now_ms)
{
    if (now_ms <= r->last_ms)
        return;
    uint64_t dt = now_ms - r->last_ms;
    r->last_ms = now_ms;
    uint64_t room = r->cap_nano - r->nano;
    if (dt >= room / r->gain_ms + 1)
        r->nano = r->cap_nano;
    else
        r->nano += dt * r->gain_ms;
}

/* Take `n` tokens if the bucket has them at `now_ms`: returns 1 (taken)
 * or 0 (not enough; nothing taken). n = 0 always succeeds. A `now_ms`
 * earlier than one seen before adds nothing and moves nothing back. */
static inline int wisp_rate_take(wisp_rate_t *r, uint64_t now_ms, uint32_t n)
{
    wisp_rate_refill(r, now_ms);
    uint64_t want = (uint64_t)n * 1000000000u;
    if (want > r->nano)
        return 0;
    r->nano -= want;
    return 1;
}

/* Milliseconds from `now_ms` until `n` tokens will be there (0: now);
 * UINT64_MAX when n exceeds the burst and never will. Exact: taking `n`
 * at now_ms + the result succeeds, one millisecond earlier it fails
 * (unless tokens are taken in between, or now_ms is earlier than a time
 * the bucket has already seen). */
static inline uint64_t wisp_rate_wait_ms(wisp_rate_t *r, uint64_t now_ms,
                                         uint32_t n)
{
    wisp_rate_refill(r, now_ms);
    uint64_t want = (uint64_t)n * 1000000000u;
    if (want > r->cap_nano)
        return UINT64_MAX;
    if (want <= r->nano)
        return 0;
    return (want - r->nano + r->gain_ms - 1) / r->gain_ms;
}

/* Whole tokens in the bucket at `now_ms`. */
static inline uint32_t wisp_rate_tokens(wisp_rate_t *r, uint64_t now_ms)
{
    wisp_rate_refill(r, now_ms);
    return (uint32_t)(r->nano / 1000000000u);
}

/* The rest of this header is absent from a build with -Dpool=false
 * (wisp/features.h). */
#if WISP_HAVE_POOL
typedef struct wisp_limiter wisp_limiter_t;

/* A limiter on `loop`: a full bucket of `burst` tokens refilled at
 * `per_second` from wisp_loop_now(loop), with room for at most
 * `max_waiters` queued acquisitions (0: 65536). Returns NULL with errno
 * EINVAL (loop NULL, burst 0, per_second not in (0, 1e12]) or ENOMEM. */
WISP_API wisp_limiter_t *wisp_limiter_create(wisp_loop_t *loop,
                                             double per_second,
                                             uint32_t burst,
                                             uint32_t max_waiters);

/* Fail every waiter with -ECANCELED and free the limiter. NULL is a
 * no-op. As for any failed future, the waiters' continuations run on the
 * loop afterwards, and they free the limiter's record of each waiter:
 * let the loop run once more before destroying the loop. */
WISP_API void wisp_limiter_destroy(wisp_limiter_t *l);

/* A future (one reference, the caller's) that resolves (value NULL) once
 * `n` tokens have been taken for it — at once when they are there and
 * nobody waits before it (n = 0 included), otherwise on the loop as soon
 * as the bucket holds them and every earlier waiter has been served — or
 * fails with -ETIMEDOUT after `timeout_ms` (0: wait as long as it
 * takes), -EAGAIN when max_waiters already wait, -EINVAL when n exceeds
 * the burst (these two before the call returns), -ECANCELED when the
 * limiter is destroyed.
 *
 * A waiter cancelled (wisp_future_cancel, from any thread) or timed out
 * takes no tokens and lets the next one go. Its place may count against
 * max_waiters until the loop has run its continuations (by the next
 * iteration for a timeout or a cancel made on the loop's thread).
 * A future dropped (unref'd) while it waits keeps its place and takes
 * its tokens in its turn — the limiter cannot tell it was dropped — and
 * is freed then; cancel it first to leave the tokens to the others.
 * Returns NULL (errno ENOMEM) only when the future itself cannot be
 * allocated; a later allocation failure fails the future with -ENOMEM. */
WISP_API wisp_future_t *wisp_limiter_acquire(wisp_limiter_t *l, uint32_t n,
                                             uint64_t timeout_ms);

/* Take `n` tokens now if they are there and nobody is waiting: 1 or 0
 * (0 too when n exceeds the burst). */
WISP_API int wisp_limiter_try(wisp_limiter_t *l, uint32_t n);

/* Whole tokens in the bucket now (a waiter may be waiting for more),
 * and acquisitions still waiting now (cancelled or timed-out ones are
 * not counted, even before the loop has removed them). */
WISP_API uint32_t wisp_limiter_tokens(wisp_limiter_t *l);
WISP_API uint32_t wisp_limiter_waiting(const wisp_limiter_t *l);

#endif /* WISP_HAVE_POOL */

#ifdef __cplusplus
}
#endif
#endif
