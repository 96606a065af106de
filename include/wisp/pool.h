/* wisp — the shared worker pool: blocking work off the loops.
 *
 * One pool serves the whole process (not one per connection): a bounded
 * queue with four priorities, between min and max threads (more are
 * started while work waits, idle ones above the minimum exit after
 * keep_alive_ms), statistics, and a graceful shutdown that drains or
 * cancels. Each submission returns a future owned by the submitter's loop;
 * the result comes back there (docs/design.md, rule 2). A full queue fails the
 * future at once with -EAGAIN: nothing is dropped silently. */
#ifndef WISP_POOL_H
#define WISP_POOL_H

#include "common.h"
#include "future.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wisp_pool wisp_pool_t;

/* The rest of this header is absent from a build with -Dpool=false
 * (wisp/features.h). */
#if WISP_HAVE_POOL
typedef enum wisp_prio {
    WISP_PRIO_URGENT = 0,
    WISP_PRIO_HIGH,
    WISP_PRIO_NORMAL,
    WISP_PRIO_LOW,
    WISP_PRIO_COUNT,
} wisp_prio_t;

typedef struct wisp_pool_config {
    unsigned min_threads;    /* started at create; default 1 */
    unsigned max_threads;    /* default 2 × online CPUs, at least 4 */
    uint32_t queue_limit;    /* queued (not running) items; default 1024 */
    uint32_t keep_alive_ms;  /* idle time before a thread above the
                                minimum exits; default 10000 */
    int nice;                /* 0..19, added to the nice value of the
                                thread that creates the pool, for every
                                pool thread; default 10 (see below) */
    size_t stack_size;       /* per thread, bytes; 0 (default): the
                                libc's default (8 MiB on glibc, 128 KiB
                                on musl); else at least PTHREAD_STACK_MIN
                                and rounded up to whole pages */
} wisp_pool_config_t;

/* Why pool threads run niced by default: the loops are the latency-
 * critical path, the pool's work is blocking or bulk. When both want a
 * CPU (a burst of 256 completions waking together, or CPU-heavy work on
 * the pool), a loop at nice 0 next to pool threads at nice 10 gets about
 * 90 % of that CPU and is woken ahead of them, so a fast route stays
 * fast; when the loops are idle the pool still gets every cycle (nice
 * shares CPU under contention only, it caps nothing). Set 0 to run pool
 * threads at the creator's priority. Raising nice needs no privilege;
 * if the kernel refuses anyway, the threads run at the inherited
 * priority. */

/* Fill `cfg` with the defaults above. */
WISP_API void wisp_pool_config_init(wisp_pool_config_t *cfg);

/* Create a pool and start its minimum threads. `cfg` is copied; NULL
 * uses the defaults. Pool threads are named "wisp-pool" and block every
 * asynchronous signal (so SIGINT/SIGTERM reach the server's main loop
 * even when the pool was created before the server).
 * Returns NULL with errno EINVAL (min > max, max 0, queue_limit 0, nice
 * outside 0..19, a stack_size too small or beyond what pthread accepts),
 * ENOMEM, or EAGAIN (one of the minimum threads could not be started;
 * then none is left running). */
WISP_API wisp_pool_t *wisp_pool_create(const wisp_pool_config_t *cfg);

/* Work run on a pool thread. Return 0 and set *value (and *destroy, which
 * may stay NULL) to resolve the future, or a negative error to fail it
 * (a value set before failing is not freed by wisp; a positive return
 * fails it with -EIO). *value and *destroy start NULL. */
typedef int (*wisp_pool_fn)(void *arg, void **value, wisp_free_cb *destroy);

/* Queue `fn(arg)` at priority `prio` (FIFO within a priority; a higher
 * priority always runs first). Returns a future owned by `loop` with one
 * reference, the caller's: it resolves with fn's value or fails with
 * fn's error; it is already failed with -EAGAIN when the queue is full
 * (counted as rejected), with -ECANCELED once shutdown has begun (counted
 * as rejected), with -EINVAL for a bad prio, a NULL pool or a NULL fn
 * (not counted). The pool holds its own reference until the future has
 * settled, so the caller may drop its reference at any time.
 * Cancelling the future before fn starts skips fn (counted as
 * cancelled); once fn runs, its late result is destroyed. A cancelled
 * item keeps its queue slot until a thread reaches it, unless the queue
 * fills up first: then cancelled items are swept out before refusing.
 * Returns NULL with errno ENOMEM, or EINVAL when `loop` is NULL
 * (there is no loop to own a future). Thread: any, including a pool
 * thread (fn may submit more work). */
WISP_API wisp_future_t *wisp_pool_submit(wisp_pool_t *pool, wisp_prio_t prio,
                                         wisp_loop_t *loop, wisp_pool_fn fn,
                                         void *arg);

/* wisp_pool_submit, and the pool owns `arg`: `arg_free(arg)` (may be
 * NULL) runs exactly once in every case —
 *   - after fn returns, before the future settles (also when the future
 *     was cancelled while fn ran: the job was abandoned, its late result
 *     is destroyed);
 *   - when the job is dropped without running (cancelled while queued,
 *     cancelled by wisp_pool_shutdown without drain), before the future
 *     settles;
 *   - before this call returns when the job is refused (queue full,
 *     shutting down, bad arguments) or NULL is returned.
 * It never runs while fn runs, so fn may use `arg` to the end, and the
 * code that submitted must not touch `arg` after this call (keep what it
 * needs on the loop side separately; see docs/concurrency.md).
 * `arg_free` runs on whichever thread drops the job: a pool thread, the
 * thread that cancels or shuts down, or the caller. Returns, errors and
 * threads as wisp_pool_submit. */
WISP_API wisp_future_t *wisp_pool_submit_job(wisp_pool_t *pool,
                                             wisp_prio_t prio,
                                             wisp_loop_t *loop,
                                             wisp_pool_fn fn, void *arg,
                                             wisp_free_cb arg_free);

/* Inside a pool function: 1 when the job's future has been settled by
 * someone else (cancelled, e.g. by wisp_res_await because the client has
 * gone), so its result will be thrown away and fn may stop early; 0 while
 * the result is still wanted, and 0 outside a pool function. A plain load
 * of the future's state: cheap enough to poll between steps.
 * Thread: a pool thread running fn. */
WISP_API int wisp_pool_job_cancelled(void);

typedef struct wisp_pool_stats {
    uint64_t submitted;   /* accepted into the queue */
    uint64_t completed;   /* fn returned 0 (even if the future was
                             cancelled while fn ran) */
    uint64_t failed;      /* fn returned an error */
    uint64_t rejected;    /* refused: queue full or shutting down */
    uint64_t cancelled;   /* removed before running (cancel, shutdown) */
    uint64_t busy_ns;     /* total time spent inside fn */
    uint32_t queued;      /* waiting now */
    uint32_t running;     /* inside fn now */
    uint32_t threads;     /* alive now */
    uint32_t peak_threads;
} wisp_pool_stats_t;

/* A consistent snapshot of the counters. A thread counts fn's outcome
 * before it settles the future, so whoever sees the future settled also
 * sees it counted. Thread: any. */
WISP_API void wisp_pool_stats(wisp_pool_t *pool, wisp_pool_stats_t *out);

/* Stop accepting work. With `drain`, queued work still runs; without,
 * queued work is cancelled (futures fail with -ECANCELED before this
 * returns, fn never runs). Running work is never interrupted. Then wait
 * up to `timeout_ms` for the threads to finish; UINT64_MAX (anything from
 * INT32_MAX up) waits without a deadline, 0 does not wait.
 * Returns 0, or -ETIMEDOUT when work is still running (or queued, with
 * drain) at the deadline (the pool keeps going down; wisp_pool_destroy
 * waits for it), -EINVAL for a NULL pool, -EDEADLK when called from one
 * of the pool's own threads (nothing is done).
 * Thread: any. Calling it again is harmless: a later call without
 * `drain` cancels what an earlier draining call left queued. */
WISP_API int wisp_pool_shutdown(wisp_pool_t *pool, int drain,
                                uint64_t timeout_ms);

/* Shut down (cancelling queued work) if not done, wait for every thread,
 * free the pool. If a draining shutdown has begun, the drain goes on and
 * destroy waits for it. Returns only when no pool thread runs any more.
 * NULL is a no-op. Thread: any but a pool thread (asserted). */
WISP_API void wisp_pool_destroy(wisp_pool_t *pool);

#endif /* WISP_HAVE_POOL */

#ifdef __cplusplus
}
#endif
#endif
