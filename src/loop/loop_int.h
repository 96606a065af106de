/* Internal: the loop's layout and the kernel backend interface.
 *
 * Backend interface. The net layer speaks to the kernel only through the
 * wisp__be_* functions below, phrased as socket operations with
 * completion-style callbacks:
 *   - wisp__be_add/update/del register an fd and the operations its owner
 *     wants (WISP__IO_RECV: deliver incoming bytes or connections;
 *     WISP__IO_SEND: tell me when a send can make progress);
 *   - wisp__be_wait sleeps until something completes and calls io->cb;
 *   - wisp__be_recv returns the bytes received for an io, in a buffer the
 *     backend provides (the loop's shared receive buffer for epoll; a
 *     provided-buffer-ring entry for io_uring), so the caller never needs
 *     a buffer of its own while idle;
 *   - wisp__be_send writes an iovec and reports how much left;
 *   - wisp__be_accept, wisp__be_sendfile, wisp__be_shutdown,
 *     wisp__be_close and wisp__be_connect are the rest of what a
 *     connection asks of the kernel.
 * Every operation names the io it is for and returns what the
 * completion reports (a count, a new fd, 0, or a negative errno;
 * -EAGAIN: not now, the io's callback says when), so a completion
 * backend can submit each natively and deliver its result through the
 * same call when the io's callback runs (io_uring: a multishot accept or
 * recv, a send or sendfile/splice, a shutdown, a close, a connect).
 * The epoll backend (src/loop/epoll.c) emulates completion by doing the
 * recv/send itself when the fd is ready; a completion backend submits the
 * same operations (multishot recv/accept) and calls the same callbacks.
 * No other file includes <sys/epoll.h>. */
#ifndef WISP_LOOP_INT_H
#define WISP_LOOP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "wisp/loop.h"

enum {
    WISP__IO_RECV = 1u << 0,
    WISP__IO_SEND = 1u << 1,
    WISP__IO_HUP = 1u << 2,   /* only tell me when the peer closes */
};

/* Events reported to io->cb. */
enum {
    WISP__EV_RECV = 1u << 0,  /* readable / bytes or connections waiting */
    WISP__EV_SEND = 1u << 1,  /* writable */
    WISP__EV_HUP = 1u << 2,   /* peer closed or error */
};

/* Fields that different threads write live this far apart. */
#define WISP__CACHE_LINE 64

typedef struct wisp__io wisp__io;
typedef void (*wisp__io_cb)(wisp__io *io, unsigned events);

struct wisp__io {
    int fd;
    /* One word of flags, so an io stays 16 bytes. */
    uint32_t want : 3;   /* WISP__IO_* the owner wants */
    uint32_t armed : 3;  /* what the kernel has (epoll) */
    uint32_t added : 1;  /* registered with the backend */
    uint32_t edge : 1;   /* edge-triggered: the owner reads until a short
                            read; for io_uring: a stream socket, received
                            with a multishot recv */
    uint32_t slot : 24;  /* io_uring: its entry in the backend's table */
    wisp__io_cb cb;
};

typedef struct wisp__task {
    struct wisp__task *next;
    wisp_task_cb cb;
    void *arg;
    /* Embedded in its owner (a future): never freed or recycled by the
     * loop, and not counted against the inbox limit (it is bounded by the
     * objects that embed one). */
    uint8_t intrusive;
    /* The inbox shard it was pushed to (its spare nodes go back there). */
    uint8_t shard;
    /* Inbox slots this node gives back when the loop takes it: the first
     * post of a grant carries the whole grant, the others 0 (inbox.c). */
    uint32_t charge;
    /* Called instead of cb when the loop is destroyed with the node
     * still queued, to release what the node (or its arg) holds: set by
     * the owner of an intrusive node, by wisp__loop_post_drop for a
     * counted one (NULL: nothing to release). */
    wisp_task_cb drop;
} wisp__task;

/* Inbox tuning (inbox.c). Producers push to one of SHARDS stacks, chosen
 * once per thread. A producer reserves limit / GRANT_DIV slots of the
 * bound at once (at least 1, at most GRANT_MAX). A shard keeps drained
 * nodes for its producers to reuse: up to limit / SHARDS of them (at
 * least SPARE_IDLE) while the loop is busy, SPARE_IDLE once it goes
 * idle. */
#define WISP__INBOX_SHARDS 8
#define WISP__INBOX_GRANT_MAX 32
#define WISP__INBOX_GRANT_DIV 1024
#define WISP__INBOX_SPARE_IDLE 64

/* One shard of the inbox, alone on its cache line: what its producers
 * push and what the loop hands back to them. */
typedef struct wisp__inbox_shard {
    /* A LIFO stack of posted tasks: pushed by producers (CAS), taken
     * whole by the loop (exchange). */
    _Alignas(WISP__CACHE_LINE) _Atomic(struct wisp__task *) head;
    /* Drained nodes for this shard's producers: a chain stored by the
     * loop, taken whole by one producer (exchange). Nobody else stores a
     * chain here, so a chain the loop finds here is the last it stored. */
    _Atomic(struct wisp__task *) spare;
    uint32_t spare_len;  /* loop thread only: the length it stored */
} wisp__inbox_shard;

/* A hook run at the end of every loop iteration (after timers and tasks):
 * the net layer flushes corked output and frees closed connections. */
typedef void (*wisp__loop_hook)(wisp_loop_t *loop, void *arg);

struct wisp_loop {
    int backend_fd;
    int wake_fd;
    wisp__io wake_io;
    _Atomic int stop;
    int running;
    uint64_t now_ms;

    /* Timers: a binary min-heap of pointers, 1-based. */
    wisp_timer_t **heap;
    uint32_t heap_len;
    uint32_t heap_cap;
    uint32_t timer_seq;

    /* Deferred tasks (FIFO) and a free list of task nodes. */
    wisp__task *defer_head;
    wisp__task *defer_tail;
    wisp__task *task_free;
    uint32_t task_free_len;

    /* Inbox (src/loop/inbox.c): lock-free LIFO stacks pushed by
     * producers, each taken whole and reversed by the loop. Fields that
     * one side writes often sit on their own cache lines, away from what
     * the other side reads:
     *  - one line per shard: a producer thread pushes to one shard only,
     *    so producers running at once on different cores do not fight
     *    over one line;
     *  - the bound counter, touched by a producer once per grant and by
     *    the loop once per drain;
     *  - read-mostly: the limit, the grant epoch and `closing`, which
     *    every post reads and almost nothing writes;
     *  - the gate, touched by the loop when it sleeps and by a producer
     *    only when it posts onto an empty shard. */
    wisp__inbox_shard inbox[WISP__INBOX_SHARDS];
    /* Slots held by grants whose first node has not been taken. */
    _Alignas(WISP__CACHE_LINE) _Atomic uint32_t inbox_len;
    _Alignas(WISP__CACHE_LINE) _Atomic uint32_t inbox_limit;
    /* Names this loop and its current limit in the producers'
     * thread-local grants; changes with wisp_loop_set_inbox_limit. */
    _Atomic uint32_t inbox_epoch;
    _Atomic int closing;
    /* The inbox gate: WISP__GATE_* below. */
    _Alignas(WISP__CACHE_LINE) _Atomic uint32_t inbox_gate;

    /* End-of-iteration hook (a new line: loop-private from here on). */
    _Alignas(WISP__CACHE_LINE) wisp__loop_hook hook;
    void *hook_arg;

    /* Drained nodes no shard had room for: freed when the loop goes
     * idle (inbox.c). */
    wisp__task *inbox_excess;
    uint32_t inbox_excess_len;
    uint8_t inbox_trim;  /* spare nodes to free when idle */

    /* Backend: WISP__BE_EPOLL or WISP__BE_URING, and the io_uring
     * backend's state (uring.c). */
    uint8_t backend;
    struct wisp__uring *ur;
    /* Backend scratch. */
    void *events;
    int max_events;

    /* Shared receive buffer (epoll backend). */
    char *rbuf;
    size_t rbuf_cap;

    pthread_t owner;
    int has_owner;
    /* Set by the end-of-iteration hook when work is left over (input
     * still in the kernel): the next wait polls without sleeping. */
    int keep_awake;
    /* Stepped by a foreign loop (wisp_loop_step): the owner stays set
     * between steps; `idle_ms` is what the last step left for
     * wisp_loop_timeout, and `asleep` says the inbox flag is raised (the
     * host may sleep; the next step lowers it). */
    int stepped;
    int asleep;
    int idle_ms;

    /* Per-loop data, one slot per key (wisp_loop_key_create). */
    void *data[WISP_LOOP_KEYS_MAX];
};

static inline void wisp__loop_keep_awake(wisp_loop_t *loop)
{
    loop->keep_awake = 1;
}

/* Thread-ownership check (rule 1). Debug builds abort with a message
 * naming the public function that was called and both threads; release
 * builds compile it out. A shared internal helper checks with
 * WISP__ASSERT_OWNER_AS and the name its public caller passes down, so
 * the message never names the helper. */
#ifdef WISP_OWNERSHIP_CHECKS
void wisp__owner_fail(const char *fn, const wisp_loop_t *loop);
#define WISP__ASSERT_OWNER_AS(loop, fn)                                     \
    do {                                                                    \
        const wisp_loop_t *wisp__l = (loop);                                \
        if (wisp__l && wisp__l->has_owner &&                                \
            !pthread_equal(wisp__l->owner, pthread_self()))                 \
            wisp__owner_fail((fn), wisp__l);                                \
    } while (0)
#else
#define WISP__ASSERT_OWNER_AS(loop, fn) ((void)(fn))
#endif
#define WISP__ASSERT_OWNER(loop) WISP__ASSERT_OWNER_AS((loop), __func__)

/* The loop's read buffer, one per loop: 64 KiB plus room for a frame
 * header, so that a whole WebSocket message of 64 KiB arrives in one
 * read (at exactly 64 KiB it took two, the second for the last 14 bytes:
 * 18 % fewer echoes per second in ping-pong). Larger buffers (128, 256
 * KiB) were measured too: they help only that case and cost 30 % with
 * 16 such messages in flight per connection. */
#define WISP__RBUF_SIZE (68 * 1024)

void wisp__loop_set_hook(wisp_loop_t *loop, wisp__loop_hook hook, void *arg);
uint64_t wisp__clock_ms(void);
/* Run expired timers; exposed for tests. */
void wisp__timers_run(wisp_loop_t *loop);
/* Milliseconds until the next timer (-1: none). */
int wisp__timers_timeout(const wisp_loop_t *loop);
void wisp__timers_clear(wisp_loop_t *loop);
/* Queue an intrusive node (node->cb, node->arg set by the caller):
 * post_node from any thread, defer_node on the loop's own thread. */
void wisp__loop_post_node(wisp_loop_t *loop, wisp__task *node);
void wisp__loop_defer_node(wisp_loop_t *loop, wisp__task *node);
/* wisp_loop_post, and if the loop is destroyed with the task still
 * queued, drop(arg) runs (on the destroying thread) instead of cb(arg):
 * for a task whose arg holds something only cb would release. Counted
 * against the inbox limit like any post; same returns. After success
 * exactly one of cb and drop runs, once; after an error neither does. */
int wisp__loop_post_drop(wisp_loop_t *loop, wisp_task_cb cb,
                         wisp_task_cb drop, void *arg);
/* Set up a new loop's inbox fields. */
void wisp__inbox_init(wisp_loop_t *loop);
/* The inbox gate (inbox.c), one word: */
#define WISP__GATE_ASLEEP 1u  /* the loop sleeps, or is about to */
#define WISP__GATE_PENDING 2u /* posts announced and not taken yet */
#define WISP__GATE_ONE 4u     /* added by each producer inside a push
                                 onto an empty shard */
/* Whether posts wait in the inbox (one load). A post whose producer is
 * still inside the gate shows up a moment later, and wakes the loop if
 * it went to sleep meanwhile. */
static inline bool wisp__inbox_pending(wisp_loop_t *loop)
{
    return atomic_load_explicit(&loop->inbox_gate, memory_order_relaxed) &
           WISP__GATE_PENDING;
}
/* About to sleep: raise the flag that makes the next post wake the loop.
 * Returns false, with the flag down, when posts wait (then do not
 * sleep). */
bool wisp__inbox_sleep(wisp_loop_t *loop);
/* Awake again: lower the flag (posts would write the wake fd for
 * nothing). */
void wisp__inbox_awake(wisp_loop_t *loop);
/* Drain the inbox whole; returns the number of tasks run. */
unsigned wisp__inbox_drain(wisp_loop_t *loop);
/* The loop is about to sleep: free spare nodes beyond SPARE_IDLE per
 * shard (a burst is over), a bounded step at a time. Returns true when
 * more is left to free (then the loop comes back without sleeping). */
bool wisp__inbox_idle(wisp_loop_t *loop);
/* At destroy: drop what is queued (each node's drop runs, if set) and
 * free the spare nodes. */
void wisp__inbox_discard(wisp_loop_t *loop);

/* Backend. wisp__be_* dispatch on loop->backend to the epoll
 * implementation (wisp__ep_*, epoll.c) or the io_uring one (wisp__ur_*,
 * uring.c). The fd-level calls whose result the caller needs at once
 * (send, sendfile, accept, shutdown, connect) are the same plain
 * non-blocking syscalls on both. */
#define WISP__BE_EPOLL 0
#define WISP__BE_URING 1

int wisp__ep_init(wisp_loop_t *loop);
void wisp__ep_fini(wisp_loop_t *loop);
int wisp__ep_add(wisp_loop_t *loop, wisp__io *io);
int wisp__ep_update(wisp_loop_t *loop, wisp__io *io);
void wisp__ep_del(wisp_loop_t *loop, wisp__io *io);
int wisp__ep_wait(wisp_loop_t *loop, int timeout_ms);
ssize_t wisp__ep_recv(wisp_loop_t *loop, wisp__io *io, char **data);
ssize_t wisp__ep_recv_into(wisp_loop_t *loop, wisp__io *io, char *buf,
                           size_t cap);
void wisp__ep_close(wisp_loop_t *loop, wisp__io *io);

#ifdef WISP_HAVE_URING
/* Set up the io_uring backend. Returns 0, or a negative errno when the
 * kernel refuses or lacks what it needs (the caller falls back to
 * epoll after wisp__ur_fini). */
int wisp__ur_init(wisp_loop_t *loop);
void wisp__ur_fini(wisp_loop_t *loop);
int wisp__ur_add(wisp_loop_t *loop, wisp__io *io);
int wisp__ur_update(wisp_loop_t *loop, wisp__io *io);
void wisp__ur_del(wisp_loop_t *loop, wisp__io *io);
int wisp__ur_wait(wisp_loop_t *loop, int timeout_ms);
ssize_t wisp__ur_recv(wisp_loop_t *loop, wisp__io *io, char **data);
ssize_t wisp__ur_recv_into(wisp_loop_t *loop, wisp__io *io, char *buf,
                           size_t cap);
void wisp__ur_close(wisp_loop_t *loop, wisp__io *io);
#define WISP__BE(loop, name, ...)                                           \
    ((loop)->backend == WISP__BE_URING ? wisp__ur_##name(__VA_ARGS__)       \
                                       : wisp__ep_##name(__VA_ARGS__))
#else
#define WISP__BE(loop, name, ...) wisp__ep_##name(__VA_ARGS__)
#endif

static inline void wisp__be_fini(wisp_loop_t *loop)
{
    WISP__BE(loop, fini, loop);
}
/* Register the io for io->want (io->fd, io->cb, io->edge set). Returns 0
 * or a negative errno. */
static inline int wisp__be_add(wisp_loop_t *loop, wisp__io *io)
{
    return WISP__BE(loop, add, loop, io);
}
static inline int wisp__be_update(wisp_loop_t *loop, wisp__io *io)
{
    return WISP__BE(loop, update, loop, io);
}
static inline void wisp__be_del(wisp_loop_t *loop, wisp__io *io)
{
    WISP__BE(loop, del, loop, io);
}
/* Wait up to timeout_ms (-1: no bound, 0: poll) and run the callbacks of
 * what completed. Returns 0 or a negative errno (the loop fails). */
static inline int wisp__be_wait(wisp_loop_t *loop, int timeout_ms)
{
    return WISP__BE(loop, wait, loop, timeout_ms);
}
/* Wake the loop. Thread: any. */
void wisp__be_wake(wisp_loop_t *loop);
/* A descriptor that polls readable (POLLIN) whenever a wisp__be_wait(0)
 * would find work: I/O completions or a wake-up. For a host loop that
 * embeds this one (wisp_loop_fd). */
int wisp__be_fd(const wisp_loop_t *loop);
void wisp__be_wake_ack(wisp_loop_t *loop);
/* Receive into the backend's buffer. Returns > 0 bytes with *data set
 * (valid until the next receive on this loop), 0 at end of stream,
 * -EAGAIN when nothing is there, or a negative errno. */
static inline ssize_t wisp__be_recv(wisp_loop_t *loop, wisp__io *io,
                                    char **data)
{
    return WISP__BE(loop, recv, loop, io, data);
}
/* Receive into the caller's buffer (an owner waiting for the rest of a
 * large message); same returns. */
static inline ssize_t wisp__be_recv_into(wisp_loop_t *loop, wisp__io *io,
                                         char *buf, size_t cap)
{
    return WISP__BE(loop, recv_into, loop, io, buf, cap);
}
/* Send an iovec. Returns bytes written (maybe short), -EAGAIN, or a
 * negative errno. Never raises SIGPIPE. */
ssize_t wisp__be_send(wisp_loop_t *loop, wisp__io *io,
                      const struct iovec *iov, int iovcnt);

/* The same two for an fd that is not a socket (a pipe to a child
 * process, src/proc): wisp__be_read returns bytes in the backend's
 * buffer as wisp__be_recv does (0 at end of stream), wisp__be_write
 * writes an iovec as wisp__be_send does. A write to a pipe whose reader
 * is gone returns -EPIPE and raises SIGPIPE unless the process ignores
 * it (the process layer makes sure it does). */
ssize_t wisp__be_read(wisp_loop_t *loop, wisp__io *io, char **data);
ssize_t wisp__be_write(wisp_loop_t *loop, wisp__io *io,
                       const struct iovec *iov, int iovcnt);

/* Accept one connection on the listening io: a non-blocking,
 * close-on-exec socket (TCP_NODELAY set when `nodelay`), its peer in
 * *ss / *len. Returns the fd, -EAGAIN when none is waiting, or a
 * negative errno (EMFILE, ENFILE, ENOBUFS, ENOMEM: out of resources;
 * ECONNABORTED: that one went away, try again). */
int wisp__be_accept(wisp_loop_t *loop, wisp__io *io,
                    struct sockaddr_storage *ss, socklen_t *len,
                    int nodelay);
/* Send up to `len` bytes of the file `file_fd` from *off; *off advances.
 * Returns bytes sent, 0 when the file ended, -EAGAIN, or a negative
 * errno. */
ssize_t wisp__be_sendfile(wisp_loop_t *loop, wisp__io *io, int file_fd,
                          uint64_t *off, size_t len);
/* Shut the write side (SHUT_WR) of the io's socket. Returns 0 or a
 * negative errno. */
int wisp__be_shutdown(wisp_loop_t *loop, wisp__io *io);
/* Forget the io (wisp__be_del: the backend cancels what it has in the
 * kernel for it, and never calls io->cb again) and close its fd; io->fd
 * becomes -1. */
static inline void wisp__be_close(wisp_loop_t *loop, wisp__io *io)
{
    WISP__BE(loop, close, loop, io);
}
/* Open a non-blocking, close-on-exec stream socket for `sa` into io->fd
 * (TCP_NODELAY set unless AF_UNIX) and start connecting. Returns 0 (connected), -EINPROGRESS (register
 * the io for WISP__IO_SEND: the send event completes it; then
 * wisp__be_connect_result), or a negative errno (io->fd is -1). */
int wisp__be_connect(wisp_loop_t *loop, wisp__io *io,
                     const struct sockaddr *sa, socklen_t len);
/* The outcome of a connect that returned -EINPROGRESS, once the io's
 * send event came: 0, or a negative errno (-ECONNREFUSED, ...). */
int wisp__be_connect_result(wisp_loop_t *loop, wisp__io *io);

/* Set the io's wanted operations, telling the backend only on change. */
static inline int wisp__io_want(wisp_loop_t *loop, wisp__io *io,
                                unsigned want)
{
    if (io->want == want)
        return 0;
    io->want = (uint8_t)want;
    return wisp__be_update(loop, io);
}

#endif
