/* wisp — child processes owned by a loop.
 *
 * wisp_process_spawn starts a program (posix_spawn) with its own argv,
 * environment (inherited, replaced or extended) and working directory.
 * Each of its standard streams is inherited, /dev/null, or a pipe to the
 * parent that the loop watches: bytes written to the child's stdin are
 * queued without blocking (bounded, with on_drain when the queue has
 * been written), bytes from its stdout and stderr arrive in on_output
 * and can be paused. The exit status is a future.
 *
 * Pipes, not sockets: a socket as a child's stdio breaks programs that
 * open /dev/stdin, /dev/stdout or /dev/stderr (the kernel refuses to
 * open a socket through /proc/self/fd: ENXIO), which shell scripts and
 * voice tools told to write to "/dev/stdout" do. The parent's ends go
 * through the loop's kernel backend all the same.
 *
 * No zombie, no leak: each child is watched through a pidfd registered
 * with the loop and reaped as soon as it exits (no SIGCHLD handler is
 * installed). The child gets no descriptor of the parent beyond 0, 1 and
 * 2, its signal mask is empty and its signal dispositions are the
 * defaults. When the loop is stopped with children still running (a
 * server's stop: SIGTERM, then SIGKILL after the grace period or at the
 * stop deadline) or destroyed (SIGKILL), they are killed and reaped
 * before the stop completes or the destroy returns.
 *
 * Do not reap wisp's children yourself (waitpid(-1, ...) or SIGCHLD set
 * to SIG_IGN): a child reaped by someone else is reported as exited with
 * status 0 and may have been replaced by another process when the pid
 * was reused, which wisp_process_pid cannot tell.
 *
 * SIGPIPE: the first spawn with a stdin pipe sets SIGPIPE to SIG_IGN in
 * the parent if it was SIG_DFL (as wisp_server_start does), so a write
 * to a child that has closed its stdin fails with -EPIPE instead of
 * killing the process.
 *
 * Thread: a process belongs to the loop it was spawned on; every
 * function here runs on that loop's thread (asserted in debug builds),
 * and so do its callbacks. Which callback can run inside which call:
 * none. on_output and on_drain run from the loop (a pipe became readable
 * or writable), never inside a wisp_process_* call; the exit future's
 * continuations run as wisp_future_then says. After
 * wisp_process_release no callback of the process runs any more. */
#ifndef WISP_PROCESS_H
#define WISP_PROCESS_H

#include "common.h"
#include "future.h"
#include "loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wisp_process wisp_process_t;

/* What a standard stream of the child is. */
typedef enum wisp_stdio {
    WISP_STDIO_INHERIT = 0, /* the parent's own fd 0, 1 or 2 */
    WISP_STDIO_NULL,        /* /dev/null */
    WISP_STDIO_PIPE,        /* a pipe to the parent, watched by the loop */
} wisp_stdio_t;

/* How the child's environment is made. */
typedef enum wisp_env_mode {
    WISP_ENV_INHERIT = 0, /* the parent's environ; `env` is ignored */
    WISP_ENV_REPLACE,     /* exactly `env` */
    WISP_ENV_ADD,         /* the parent's environ, then `env`: an entry
                             of `env` replaces the parent's of the same
                             name */
} wisp_env_mode_t;

/* Bytes from the child's stdout (fd 1) or stderr (fd 2). The bytes are
 * valid only during the call. The end of the stream (the child and
 * every process it shared the pipe with have closed it, or reading
 * failed) is one last call with data NULL and len 0. To stop the flow,
 * call wisp_process_pause(p, fd) (also inside the callback: no more
 * bytes of that stream are delivered until wisp_process_resume); the
 * child then blocks once the pipe (64 KiB) is full, so memory stays
 * bounded. */
typedef void (*wisp_process_output_cb)(wisp_process_t *p, int fd,
                                       const char *data, size_t len,
                                       void *arg);
/* The stdin queue: `err` 0 when bytes that had to wait have all been
 * written (the place to write more after wisp_process_write queued),
 * or -EPIPE when the child closed its stdin (or exited) with bytes
 * still queued (another negative errno for another write error): they
 * were dropped and stdin is closed. */
typedef void (*wisp_process_drain_cb)(wisp_process_t *p, int err,
                                      void *arg);

typedef struct wisp_process_opts {
    /* The program: a path, or a name searched in the parent's PATH when
     * it has no '/'. NULL: argv[0]. */
    const char *file;
    /* The arguments, argv[0] first, NULL-terminated. Required. */
    const char *const *argv;
    /* "NAME=value" strings, NULL-terminated, used as env_mode says. */
    const char *const *env;
    wisp_env_mode_t env_mode;
    /* The child's working directory; NULL: the parent's. */
    const char *cwd;
    /* stdin, stdout, stderr. */
    wisp_stdio_t stdio[3];
    /* Called for stdout/stderr pipes; required when one is a pipe. */
    wisp_process_output_cb on_output;
    /* Optional. */
    wisp_process_drain_cb on_drain;
    void *arg;
    /* Bytes that may wait in the stdin queue; a write that would pass it
     * is refused (-ENOBUFS). 0: 4 MiB. */
    size_t stdin_limit;
    /* Terminate (SIGTERM, then SIGKILL after the grace period) this long
     * after the spawn. 0: no timeout. */
    uint32_t timeout_ms;
    /* From SIGTERM to SIGKILL, for the timeout, wisp_process_terminate
     * and a server's stop. 0: 2000 ms. */
    uint32_t kill_grace_ms;
} wisp_process_opts_t;

/* Status values of the exit future: the exit code (0..255) when the
 * child exited, or WISP_PROCESS_SIGNALED | signal when a signal killed
 * it. */
#define WISP_PROCESS_SIGNALED 0x100

/* Start a child on `loop`. On success *out is the handle (the caller's,
 * until wisp_process_release) and the child is running. A child
 * spawned on a server's I/O loop while the server stops is not sent
 * SIGTERM: it is killed when the loop ends. The main loop of a server
 * (the one wisp_server_wait runs) kills its children when it is
 * destroyed.
 * Returns 0; -EINVAL (no argv or argv[0], a pipe without on_output, a
 * stdio value out of range, `loop` or `out` NULL); -ENOENT (the program
 * or `cwd` does not exist), -EACCES, -ENOEXEC or another errno of the
 * exec (the child has already been reaped: none is left); -EMFILE,
 * -ENOMEM, -EAGAIN (out of resources); -ENOSYS when the kernel has no
 * pidfd (Linux < 5.3). After an error nothing was started and *out is
 * NULL. Thread: `loop`'s own (or any thread before the loop first runs).
 * No callback runs inside the call. */
WISP_API int wisp_process_spawn(wisp_loop_t *loop,
                                const wisp_process_opts_t *opts,
                                wisp_process_t **out);

/* Give up the handle: no callback of it runs any more, its pipes are
 * closed (what stdin still had queued is dropped), and its memory goes
 * once the child has been reaped. The child is not signalled (use
 * wisp_process_kill or wisp_process_terminate first to stop it); it is
 * still reaped when it exits, and killed when the loop stops or is
 * destroyed. The exit future stays valid for whoever took a reference
 * to it. May be called inside the process's own callbacks, and after
 * the loop was destroyed (then it only frees). NULL is a no-op. */
WISP_API void wisp_process_release(wisp_process_t *p);

/* The exit future: resolves with a status value (uintptr_t in the
 * value pointer; read it with wisp_process_status) once the child has
 * been reaped; it never fails unless someone cancels it. The process
 * holds one reference until wisp_process_release: take your own
 * (wisp_future_ref) to keep it longer. */
WISP_API wisp_future_t *wisp_process_exit(wisp_process_t *p);

/* The status of a resolved exit future (see WISP_PROCESS_SIGNALED), or
 * its error while it is not resolved (-EINPROGRESS while pending).
 * Thread: any. */
WISP_API int wisp_process_status(const wisp_future_t *exit);

/* The child's pid (for logs: after the exit it may name another
 * process). */
WISP_API pid_t wisp_process_pid(const wisp_process_t *p);

/* Send `sig` to the child through its pidfd (never to a reused pid).
 * Returns 0, -ESRCH when it has already been reaped, -EINVAL for a bad
 * signal, or another negative errno. */
WISP_API int wisp_process_kill(wisp_process_t *p, int sig);

/* SIGTERM now and SIGKILL after the grace period (kill_grace_ms) if the
 * child has not exited by then. Returns as wisp_process_kill. A second
 * call does not move the SIGKILL. */
WISP_API int wisp_process_terminate(wisp_process_t *p);

/* Nonzero when the timeout (opts.timeout_ms) expired and terminated the
 * child. */
WISP_API int wisp_process_timed_out(const wisp_process_t *p);

/* Write to the child's stdin. What the pipe does not take at once is
 * copied into the stdin queue and written as the child reads; on_drain
 * (err 0) runs once the queue is empty again. Returns 0 (written or
 * queued), -ENOBUFS (the queue would pass stdin_limit: nothing was
 * queued; wait for on_drain), -EPIPE (the child closed its stdin:
 * nothing is queued any more), WISP_ECLOSED (stdin was closed with
 * wisp_process_close_stdin, or is not a pipe), or -ENOMEM (stdin is then
 * closed: part of the bytes may have reached the child). len 0 is a
 * no-op returning 0 (or the error above). No callback runs inside the
 * call. */
WISP_API int wisp_process_write(wisp_process_t *p, const void *data,
                                size_t len);

/* Bytes waiting in the stdin queue (not yet taken by the pipe). */
WISP_API size_t wisp_process_queued(const wisp_process_t *p);

/* Close the child's stdin once the queue is written (at once when it is
 * empty): the child reads end of file. A stdin already closed is left
 * as it is. */
WISP_API void wisp_process_close_stdin(wisp_process_t *p);

/* Stop / resume delivering stdout (fd 1) or stderr (fd 2). While a
 * stream is paused its pipe is not read; the end of the stream is
 * delivered after resume. Returns 0, or -EINVAL when `fd` is not 1 or
 * 2 or that stream is not a pipe, or WISP_ECLOSED once it has ended. No
 * callback runs inside the call. */
WISP_API int wisp_process_pause(wisp_process_t *p, int fd);
WISP_API int wisp_process_resume(wisp_process_t *p, int fd);

/* The loop the process belongs to (NULL once that loop was destroyed).
 * Thread: any (the value changes only when the loop is destroyed). */
WISP_API wisp_loop_t *wisp_process_loop(const wisp_process_t *p);

#ifdef __cplusplus
}
#endif
#endif
