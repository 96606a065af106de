/* wisp — async semaphore: cap how many operations (upstream ASR, LLM or
 * TTS calls, say) run at once on a loop, with waiters served in FIFO
 * order and an optional wait timeout.
 *
 * A permit is a value: wisp_sem_acquire returns a future that resolves
 * with a permit when one is free. The permit goes back when that value is
 * destroyed — when the last reference to the future goes (or when a value
 * taken with wisp_future_take is freed with its destructor) — so a
 * holder that disappears (a closed connection dropping its future)
 * cannot leak it.
 *
 * Thread: everything, including dropping the last reference to a
 * future holding a permit, on the semaphore's loop (asserted in debug
 * builds). */
#ifndef WISP_SEM_H
#define WISP_SEM_H

#include "common.h"
#include "future.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wisp_sem wisp_sem_t;

/* The rest of this header is absent from a build with -Dpool=false
 * (wisp/features.h). */
#if WISP_HAVE_POOL
/* A semaphore on `loop` with `permits` permits (> 0) and room for at most
 * `max_waiters` waiting acquisitions (0: 65536); waiters that timed out
 * or were cancelled do not count. Returns NULL with errno EINVAL or
 * ENOMEM. */
WISP_API wisp_sem_t *wisp_sem_create(wisp_loop_t *loop, uint32_t permits,
                                     uint32_t max_waiters);

/* Fail every waiter with -ECANCELED and free the semaphore. Permits still
 * held stay valid: their release becomes a no-op once the last one is
 * back (the memory is freed then). NULL is a no-op. */
WISP_API void wisp_sem_destroy(wisp_sem_t *s);

/* A future (one reference, the caller's) that resolves with a permit when
 * one is free — at once if one is — or fails with -ETIMEDOUT after
 * `timeout_ms` (0: wait forever), -EAGAIN when max_waiters are already
 * waiting (still pending), -ECANCELED when the semaphore is destroyed.
 * Cancelling the future while it waits removes it from the queue without
 * using a permit. Returns NULL (errno ENOMEM) only when the future
 * cannot be allocated. */
WISP_API wisp_future_t *wisp_sem_acquire(wisp_sem_t *s, uint64_t timeout_ms);

/* Permits free now, and acquisitions waiting now. */
WISP_API uint32_t wisp_sem_available(const wisp_sem_t *s);
WISP_API uint32_t wisp_sem_waiting(const wisp_sem_t *s);

#endif /* WISP_HAVE_POOL */

#ifdef __cplusplus
}
#endif
#endif
