/* wisp — futures: a one-shot result owned by one loop.
 *
 * A future is settled once, from any thread: resolved with a value (and
 * the destructor that frees it) or failed with a negative error code
 * (-ECANCELED after wisp_future_cancel, -ETIMEDOUT after a timeout).
 * Continuations (wisp_future_then) always run on the owner loop, after
 * the call that registered them has returned, in registration order.
 *
 * Ownership: a future is reference-counted. wisp_future_create returns it
 * with one reference, the caller's; each wisp_future_ref needs one
 * wisp_future_unref. The value belongs to the future and is destroyed
 * (its destructor called exactly once) when the last reference goes,
 * unless taken with wisp_future_take. A result that arrives after the
 * future has settled (late, after a cancel or a timeout) is destroyed at
 * once by the call that brought it and is never delivered.
 *
 * Threads: create, ref, unref, resolve, fail, cancel and state may be
 * called from any thread. Everything else runs on the owner loop's thread
 * (asserted in debug builds). */
#ifndef WISP_FUTURE_H
#define WISP_FUTURE_H

#include "common.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wisp_future wisp_future_t;

typedef enum wisp_future_state {
    WISP_FUTURE_PENDING = 0,
    WISP_FUTURE_RESOLVED,
    WISP_FUTURE_FAILED,
} wisp_future_state_t;

/* Runs on the owner loop once `f` has settled. `f` stays valid during
 * the call (the continuation holds a reference). */
typedef void (*wisp_future_cb)(wisp_future_t *f, void *arg);

/* The rest of this header is absent from a build with -Dpool=false
 * (wisp/features.h). */
#if WISP_HAVE_POOL
/* A pending future owned by `owner`. Returns NULL with errno EINVAL
 * (`owner` NULL) or ENOMEM. Thread: any. */
WISP_API wisp_future_t *wisp_future_create(wisp_loop_t *owner);

/* Take / drop a reference. Dropping the last one destroys the value (if
 * any and not taken) and frees the future: on the calling thread, so a
 * value's destructor must be callable from any thread that may hold the
 * last reference. Thread: any. NULL is a no-op. */
WISP_API void wisp_future_ref(wisp_future_t *f);
WISP_API void wisp_future_unref(wisp_future_t *f);

/* Settle `f` with `value`; `destroy` (may be NULL) frees it when the
 * future goes or right now if `f` had already settled.
 * Returns 0, or -EALREADY when `f` had already settled (then
 * destroy(value) has run). Thread: any. */
WISP_API int wisp_future_resolve(wisp_future_t *f, void *value,
                                 wisp_free_cb destroy);

/* Settle `f` with the error `err` (< 0). Returns 0, -EINVAL (err >= 0) or
 * -EALREADY. Thread: any. */
WISP_API int wisp_future_fail(wisp_future_t *f, int err);

/* Fail `f` with -ECANCELED if it is still pending: whoever was going to
 * resolve it later gets -EALREADY and its value is destroyed. Returns 0
 * or -EALREADY. Thread: any. */
WISP_API int wisp_future_cancel(wisp_future_t *f);

/* The current state. Thread: any (an acquire load: after RESOLVED the
 * value is visible to the owner thread). */
WISP_API wisp_future_state_t wisp_future_state(const wisp_future_t *f);

/* 0 when resolved, the error when failed, -EINPROGRESS while pending. */
WISP_API int wisp_future_error(const wisp_future_t *f);

/* The value of a resolved future (NULL otherwise); it stays owned by the
 * future. wisp_future_take moves it out: the caller owns it and gets its
 * destructor in *destroy (may be NULL); a second take returns NULL. */
WISP_API void *wisp_future_value(const wisp_future_t *f);
WISP_API void *wisp_future_take(wisp_future_t *f, wisp_free_cb *destroy);

WISP_API wisp_loop_t *wisp_future_loop(const wisp_future_t *f);

/* Run `cb(f, arg)` on the owner loop once `f` has settled — never inside
 * this call, even if it already has. Continuations run in the order they
 * were added. Returns 0 or -ENOMEM (then cb never runs). */
WISP_API int wisp_future_then(wisp_future_t *f, wisp_future_cb cb,
                              void *arg);

/* Fail `f` with -ETIMEDOUT if it is still pending `ms` milliseconds from
 * now. A second call moves the deadline. Returns 0, or -EALREADY when `f`
 * has settled. */
WISP_API int wisp_future_set_timeout(wisp_future_t *f, uint64_t ms);

/* Chaining: when `f` settles, `fn(f, arg)` runs on the owner loop and
 * returns the next future (passing one reference to the chain), or NULL
 * to end the chain with f's own result. The returned future settles as
 * the one `fn` returned (value moved), or as `f` when fn returns NULL
 * (then f's value is moved). fn's future must belong to the same loop
 * (otherwise the chain fails with -EXDEV). Returns a new future (one
 * reference, the caller's) or NULL with errno ENOMEM. */
typedef wisp_future_t *(*wisp_future_chain_fn)(wisp_future_t *f, void *arg);
WISP_API wisp_future_t *wisp_future_chain(wisp_future_t *f,
                                          wisp_future_chain_fn fn,
                                          void *arg);

/* A future of `loop` that resolves (value NULL) when all `n` futures have
 * resolved, or fails with the first failure. With n == 0 it resolves at
 * once. The inputs must belong to `loop`; they are not consumed (the
 * combinator takes its own references). Returns NULL with errno ENOMEM,
 * or EXDEV when an input belongs to another loop. */
WISP_API wisp_future_t *wisp_future_all(wisp_loop_t *loop,
                                        wisp_future_t *const *fs, size_t n);

/* A future of `loop` that resolves when the first of the `n` futures
 * resolves, its value being that future's index (as a uintptr_t cast to
 * void *, no destructor); it fails when all have failed (with the last
 * error), or with -EINVAL when n == 0. Same rules for inputs and
 * errors as wisp_future_all. */
WISP_API wisp_future_t *wisp_future_any(wisp_loop_t *loop,
                                        wisp_future_t *const *fs, size_t n);

#endif /* WISP_HAVE_POOL */

#ifdef __cplusplus
}
#endif
#endif
