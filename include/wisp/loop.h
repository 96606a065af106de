/* wisp — the event loop of one thread: timers, deferred tasks and the
 * thread-safe inbox.
 *
 * A loop belongs to the thread that runs it. Everything bound to a loop
 * (timers, connections, tasks) is touched only on that thread; other
 * threads reach it through wisp_loop_post(). Debug builds assert this on
 * every loop-affine entry point. */
#ifndef WISP_LOOP_H
#define WISP_LOOP_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wisp_loop wisp_loop_t;
typedef struct wisp_timer wisp_timer_t;

typedef void (*wisp_timer_cb)(wisp_timer_t *t, void *arg);
typedef void (*wisp_task_cb)(void *arg);

/* A timer. The layout is public so a timer can be embedded in the user's
 * own struct without an allocation; the fields are private to wisp. */
struct wisp_timer {
    uint64_t due_ms;      /* private */
    uint32_t heap_index;  /* private: 0 when not armed */
    uint32_t reserved;    /* private */
    wisp_loop_t *loop;    /* private */
    wisp_timer_cb cb;     /* private */
    void *arg;            /* private */
};

/* Create a loop that is not yet running. The loop belongs to the thread
 * that later calls wisp_loop_run() on it.
 * Returns the loop, or NULL with errno set (ENOMEM, EMFILE, ...). */
WISP_API wisp_loop_t *wisp_loop_create(void);

/* The kernel interface a loop uses for its I/O. Both behave the same for
 * everything built on the loop; io_uring makes fewer system calls. */
typedef enum {
    /* The environment's WISP_BACKEND ("epoll" or "io_uring"), else
     * epoll. */
    WISP_LOOP_BACKEND_DEFAULT = 0,
    WISP_LOOP_BACKEND_EPOLL = 1,
    /* io_uring (Linux 6.0 or later). When the build left it out
     * (-Dio_uring=disabled) or the kernel refuses it (too old,
     * kernel.io_uring_disabled, seccomp, out of locked memory), the loop
     * uses epoll instead and one warning is logged per process: never an
     * error. wisp_loop_backend() says which one a loop got. */
    WISP_LOOP_BACKEND_IO_URING = 2,
} wisp_loop_backend_t;

/* As wisp_loop_create(), on the backend asked for (see above).
 * Returns the loop, or NULL with errno set (EINVAL: not a
 * wisp_loop_backend_t; ENOMEM, EMFILE, ...). */
WISP_API wisp_loop_t *wisp_loop_create_backend(wisp_loop_backend_t backend);

/* The backend `loop` runs on: "epoll" or "io_uring" (a static string).
 * Thread: any. */
WISP_API const char *wisp_loop_backend(const wisp_loop_t *loop);

/* Free a loop that is not running. Tasks still queued are dropped without
 * being run; posted tasks too. Timers still armed are disarmed: their
 * memory belongs to their owners. NULL is a no-op. */
WISP_API void wisp_loop_destroy(wisp_loop_t *loop);

/* Run the loop on the calling thread until wisp_loop_break() is called.
 * The calling thread becomes the loop's owner.
 * Returns 0, or a negative errno when the kernel backend fails. */
WISP_API int wisp_loop_run(wisp_loop_t *loop);

/* Ask the loop to return from wisp_loop_run() after its current
 * iteration (or wisp_loop_step() to return 1). Thread: any (wakes the
 * loop if it sleeps). */
WISP_API void wisp_loop_break(wisp_loop_t *loop);

/* Running inside a foreign event loop (GLib, libuv, the application's
 * own poll or epoll loop), instead of wisp_loop_run():
 *
 *   - watch wisp_loop_fd() for readability (POLLIN / G_IO_IN /
 *     UV_READABLE), level-triggered;
 *   - call wisp_loop_step() when it is readable, and also when
 *     wisp_loop_timeout() milliseconds have passed since the last step;
 *   - after each step, read wisp_loop_timeout() again: 0 means step
 *     again before sleeping, -1 means no deadline (only the descriptor
 *     matters).
 * Call wisp_loop_step() once before the first poll (it starts the loop,
 * and only then is wisp_loop_timeout() meaningful). Posts from other
 * threads (wisp_loop_post, pool jobs settling futures) and
 * wisp_loop_break() make the descriptor readable.
 *
 * The thread that steps the loop is its owner from the first step until
 * a step returns 1 or an error: always step from the same thread, the
 * host loop's. A loop is either run or stepped, never both at once. */

/* A descriptor to watch for readability. It stays the same for the
 * loop's life; do not read, write or close it. Embedding needs the epoll
 * backend: a loop on io_uring returns -EOPNOTSUPP here and from
 * wisp_loop_step (an embedded server's loop is always epoll).
 * Thread: any. */
WISP_API int wisp_loop_fd(const wisp_loop_t *loop);

/* One non-blocking iteration: completed I/O, posted tasks, due timers,
 * deferred tasks; all callbacks run inside this call. Never sleeps.
 * Returns 0 (call again when the descriptor is readable or the timeout
 * passes), 1 when wisp_loop_break() was called (the loop is left as
 * wisp_loop_run() leaves it: it may be stepped or run again, or
 * destroyed), -EBUSY when the loop is inside wisp_loop_run() or this
 * call comes from one of its own callbacks, or a negative errno when the
 * kernel backend fails. */
WISP_API int wisp_loop_step(wisp_loop_t *loop);

/* Milliseconds until the loop needs a step even if its descriptor stays
 * quiet (its next timer), 0 when it must be stepped again right away
 * (work is left over), -1 when only the descriptor matters. Thread: the
 * stepping thread, between steps. */
WISP_API int wisp_loop_timeout(const wisp_loop_t *loop);

/* The loop's cached monotonic time in milliseconds, refreshed once per
 * iteration before timers run. Thread: the loop's own. */
WISP_API uint64_t wisp_loop_now(const wisp_loop_t *loop);

/* The loop whose wisp_loop_run() the calling thread is inside, or NULL.
 * Thread: any. */
WISP_API wisp_loop_t *wisp_loop_current(void);

/* Bind `t` to `loop`; required once before wisp_timer_start(). The timer
 * is not armed. Thread: any, before the timer is first started. */
WISP_API void wisp_timer_init(wisp_loop_t *loop, wisp_timer_t *t);

/* Arm `t` so that `cb(t, arg)` runs once, `ms` milliseconds after the
 * loop's cached time. Starting a timer that is already armed moves it
 * (O(log n)). Timers due at the same millisecond run in the order they
 * were started.
 *
 * Ownership: `t` is the caller's and must stay valid until `cb` has run or
 * wisp_timer_stop(t) has returned; wisp keeps no other reference.
 * Thread: the thread running t's loop (asserted in debug builds).
 * Returns 0, or -EINVAL when `cb` is NULL or `t` was never initialised.
 * After an error `cb` never runs; after success it runs once unless
 * stopped. */
WISP_API int wisp_timer_start(wisp_timer_t *t, uint64_t ms, wisp_timer_cb cb,
                              void *arg);

/* Disarm `t` (O(log n)). Stopping a timer that is not armed is a no-op.
 * Thread: the thread running t's loop. */
WISP_API void wisp_timer_stop(wisp_timer_t *t);

/* Nonzero when `t` is armed. Thread: the loop's own. */
WISP_API int wisp_timer_active(const wisp_timer_t *t);

/* Run `cb(arg)` on `loop` after the current iteration's I/O, in FIFO
 * order with other deferred tasks. A task deferred from a deferred task
 * runs in the next iteration, so deferral never starves I/O.
 * Thread: the loop's own. Returns 0 or -ENOMEM. After an error `cb` never
 * runs; after success it runs exactly once, or never if the loop is
 * destroyed first. */
WISP_API int wisp_loop_defer(wisp_loop_t *loop, wisp_task_cb cb, void *arg);

/* Run `cb(arg)` on `loop`'s thread. Posts go into a lock-free MPSC inbox;
 * a sleeping loop is woken (at most one eventfd write per producer shard
 * while it sleeps) and drains the whole inbox in one pass, in FIFO order
 * per producer thread. Posts from different threads are not ordered
 * with each other.
 *
 * The inbox is bounded (wisp_loop_set_inbox_limit); when it is full the
 * post fails with -EAGAIN and nothing is queued.
 * Thread: any, including the loop's own.
 * Returns 0, -EAGAIN (inbox full), -ENOMEM, or -ECANCELED when the loop
 * is being destroyed. After an error `cb` never runs. */
WISP_API int wisp_loop_post(wisp_loop_t *loop, wisp_task_cb cb, void *arg);

/* Cap on tasks waiting in the inbox. Default 65536. Producers reserve
 * room in grants of limit/1024 slots (1 to 32), so the cap is exact below
 * 2048 and otherwise approximate by less than one grant per posting
 * thread, in both directions. Thread: any. */
WISP_API void wisp_loop_set_inbox_limit(wisp_loop_t *loop, uint32_t limit);

/* ------------------------------------------------- per-loop data */

/* Each loop carries one pointer per key, for the layers of the library
 * and for applications (a per-loop cache, scratch buffers, a registry of
 * the loop's sessions): wisp_loop_get_data(wisp_res_loop(res), key)
 * replaces a search for "the context of this loop". */
#define WISP_LOOP_KEYS_MAX 32

/* Reserve a key, process-wide, for as long as the process runs (keys are
 * never deleted: take one once, at start-up). `dtor` (may be NULL) is
 * called as dtor(data) by wisp_loop_destroy for every loop that holds a
 * non-NULL value for the key, on the destroying thread, after the loop's
 * queued tasks were dropped (so no task of the loop can run any more),
 * keys in the reverse order of their creation (a layer created later,
 * which may use an earlier one's data, goes first).
 * Thread: any. Returns the key (0 .. WISP_LOOP_KEYS_MAX-1), or -ENOSPC
 * when every key is taken (the library itself takes at most 3). */
WISP_API int wisp_loop_key_create(wisp_task_cb dtor);

/* Set `loop`'s value for `key`, replacing the previous one (whose dtor is
 * not called: the caller owns what it replaces). The loop owns `data`
 * from here on only in the sense that the key's dtor runs on it at
 * wisp_loop_destroy; NULL clears the slot.
 * Thread: the loop's own, or any thread while the loop is not running
 * and no other thread uses it (set up before wisp_loop_run or
 * wisp_server_start). Returns 0, or -EINVAL for a key that was never
 * created. */
WISP_API int wisp_loop_set_data(wisp_loop_t *loop, int key, void *data);

/* `loop`'s value for `key`: NULL when none was set or the key was never
 * created. Same thread rule as wisp_loop_set_data. Never calls back. */
WISP_API void *wisp_loop_get_data(const wisp_loop_t *loop, int key);

#ifdef __cplusplus
}
#endif
#endif
