/* wisp — shared payloads and cross-loop broadcast.
 *
 * A wisp_shared_t is an immutable, reference-counted byte buffer: encode
 * a message once, then hand the same bytes to every destination (a chat
 * line to every member of a room on every loop, a WebSocket frame to many
 * sessions) without a copy per destination. Reference counts are atomic:
 * any thread may ref and unref. */
#ifndef WISP_SHARED_H
#define WISP_SHARED_H

#include "common.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wisp_shared wisp_shared_t;

/* A shared copy of `len` bytes (one reference, the caller's). Returns
 * NULL (errno ENOMEM). Thread: any. */
WISP_API wisp_shared_t *wisp_shared_create(const void *data, size_t len);

/* Share caller-owned bytes without copying them: `destroy(arg)` (may be
 * NULL) runs once, on the thread that drops the last reference. */
WISP_API wisp_shared_t *wisp_shared_wrap(const void *data, size_t len,
                                         wisp_free_cb destroy, void *arg);

WISP_API void wisp_shared_ref(wisp_shared_t *s);
WISP_API void wisp_shared_unref(wisp_shared_t *s);
WISP_API const void *wisp_shared_data(const wisp_shared_t *s);
WISP_API size_t wisp_shared_len(const wisp_shared_t *s);

/* Run `deliver(loop, msg, arg)` on each of the `n` loops (each holds a
 * reference to `msg` until its delivery returns; the caller keeps its
 * own). Deliveries go through the loops' inboxes; a loop whose inbox is
 * full is skipped and counted. A delivery still queued when its loop is
 * destroyed (wisp_loop_destroy) never runs: it drops its reference then,
 * on the destroying thread. Returns the number of loops the message
 * was queued to (n when all were), or -ENOMEM / -EINVAL. Thread: any. */
typedef void (*wisp_broadcast_cb)(wisp_loop_t *loop, wisp_shared_t *msg,
                                  void *arg);
WISP_API ssize_t wisp_broadcast(wisp_loop_t *const *loops, size_t n,
                                wisp_shared_t *msg, wisp_broadcast_cb deliver,
                                void *arg);

#ifdef __cplusplus
}
#endif
#endif
