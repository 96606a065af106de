/* Internal: child processes (include/wisp/process.h).
 *
 *   spawn.c    posix_spawn with argv, env, cwd, stdio, no fd leak; pidfd
 *   process.c  the handle, reaping through the pidfd io, kill, timeout,
 *              the per-loop registry (stop, force, loop teardown)
 *   stdio.c    the parent's ends of the pipes: reading stdout/stderr
 *              into on_output, the stdin queue
 *
 * Everything goes through the loop's backend (wisp__be_*): the pidfd is
 * a readiness io (RECV when the child has exited), the pipes use
 * wisp__be_read / wisp__be_write. */
#ifndef WISP_PROC_INT_H
#define WISP_PROC_INT_H

#include "loop/loop_int.h"
#include "wisp/process.h"

/* One queued piece of stdin. */
typedef struct wisp__pseg {
    struct wisp__pseg *next;
    size_t off;   /* bytes of data[] already written */
    size_t len;
    char data[];
} wisp__pseg;

/* The parent's end of one pipe. io.fd is -1 when there is none (not a
 * pipe) or once it is closed. */
typedef struct wisp__pipe {
    wisp__io io;
    uint8_t which;     /* 0, 1, 2 */
    uint8_t paused;    /* output: wisp_process_pause */
    uint8_t ended;     /* output: end delivered; input: closed */
    uint8_t close_after; /* input: close once the queue is written */
    int err;           /* input: -EPIPE once the child closed it */
    wisp__pseg *head;  /* input: the queue */
    wisp__pseg *tail;
    size_t queued;
} wisp__pipe;

typedef struct wisp__proc_loop wisp__proc_loop;

struct wisp_process {
    wisp_loop_t *loop;         /* NULL once the loop is destroyed */
    wisp__proc_loop *pl;
    struct wisp_process *next; /* the loop's list of handles */
    struct wisp_process *prev;
    pid_t pid;
    wisp__io pidfd;            /* fd -1 once reaped */
    wisp_future_t *exit;       /* our reference */
    wisp__pipe pipes[3];
    wisp_process_output_cb on_output;
    wisp_process_drain_cb on_drain;
    void *arg;
    size_t stdin_limit;
    uint32_t grace_ms;
    wisp_timer_t timer;        /* timeout, then the grace period */
    uint8_t phase;             /* PH_* (process.c) */
    uint8_t timed_out;
    uint8_t released;
    uint8_t reaped;
    uint8_t free_queued;       /* free_node is deferred */
    /* Frees a released, reaped handle at the end of the iteration, so an
     * event of the same batch for one of its ios never finds it gone. */
    wisp__task free_node;
};

/* spawn.c: start the child described by `o` with the child's ends of
 * the pipes in child_fd[i] (-1 where the stream is not a pipe). Sets
 * *pid and *pidfd. Returns 0 or a negative errno (the child, if one was
 * started and failed to exec, has been reaped). */
int wisp__proc_spawn(const wisp_process_opts_t *o, const int child_fd[3],
                     pid_t *pid, int *pidfd);
/* A pipe pair, both ends close-on-exec, neither below 3; the parent's
 * end non-blocking. `parent_reads`: the parent reads (stdout/stderr).
 * Returns 0 or a negative errno. */
int wisp__proc_pipe(int parent_reads, int *parent, int *child);

/* stdio.c */
/* Register the parent's end of a pipe with the backend (stdout and
 * stderr at once; stdin when something is queued). Returns 0 or a
 * negative errno. */
int wisp__pipe_start(wisp_process_t *p, int which);
void wisp__pipe_close(wisp_process_t *p, int which);
/* Close every pipe without the backend (it is gone: loop teardown). */
void wisp__pipe_close_raw(wisp_process_t *p);
void wisp__pipe_drop_queue(wisp__pipe *s);

/* The server's hooks (src/server.c), on the loop's thread:
 * wisp__proc_stop: terminate every child of the loop (SIGTERM, SIGKILL
 * after its grace period); `idle(arg)` runs when the last child
 * running at that point (or spawned later) has been reaped, never
 * inside the call.
 * wisp__proc_force: SIGKILL every child of the loop.
 * wisp__proc_live: children of the loop not reaped yet.
 * wisp__proc_fini: after the loop's last run: SIGKILL and reap every
 * child (blocking), settle their futures, close their pipes; handles
 * not released yet lose their loop. Also done by the loop key's
 * destructor at wisp_loop_destroy for loops that were never stopped. */
#if WISP_HAVE_POOL
void wisp__proc_stop(wisp_loop_t *loop, void (*idle)(void *), void *arg);
void wisp__proc_force(wisp_loop_t *loop);
uint32_t wisp__proc_live(wisp_loop_t *loop);
void wisp__proc_fini(wisp_loop_t *loop);
#else
/* Without the pool there are no child processes (-Dpool=false). */
static inline void wisp__proc_stop(wisp_loop_t *loop, void (*idle)(void *),
                                   void *arg)
{
    (void)loop, (void)idle, (void)arg;
}
static inline void wisp__proc_force(wisp_loop_t *loop) { (void)loop; }
static inline uint32_t wisp__proc_live(wisp_loop_t *loop)
{
    (void)loop;
    return 0;
}
static inline void wisp__proc_fini(wisp_loop_t *loop) { (void)loop; }
#endif

#endif
