/* Child processes: the handle, reaping, signals, the timeout, and the
 * per-loop registry that kills and reaps what is left when the loop
 * stops or goes away.
 *
 * Reaping: the pidfd is registered with the loop's backend as a
 * readiness io; it becomes readable when the child exits, and
 * waitid(P_PIDFD, WNOHANG) then reaps exactly that child. No SIGCHLD
 * handler, no waitpid(-1): other children of the process are left to
 * their owners.
 *
 * Lifetime: a handle is freed when it has been both released by its
 * owner and reaped, at the end of that loop iteration (an event of the
 * same batch for one of its ios must not find it gone). Handles left
 * when the loop is torn down are killed, reaped and cut from the loop:
 * wisp_process_release then only frees them. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc/proc_int.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

#define DEFAULT_STDIN_LIMIT (4u << 20)
#define DEFAULT_GRACE_MS 2000u

enum { PH_NONE = 0, PH_TIMEOUT, PH_GRACE, PH_KILLED };

/* The children of one loop, under a loop key. */
struct wisp__proc_loop {
    wisp_loop_t *loop;
    wisp_process_t *list;      /* every handle not freed */
    uint32_t live;             /* not reaped yet */
    uint8_t stopping;
    void (*idle)(void *);
    void *idle_arg;
};

static int proc_key = -1;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;

static void teardown(wisp__proc_loop *pl, int backend_alive);

static void registry_free(void *d)
{
    wisp__proc_loop *pl = d;
    /* wisp_loop_destroy: the backend is gone, nothing of the loop runs
     * any more. */
    teardown(pl, 0);
    free(pl);
}

static void make_key(void)
{
    proc_key = wisp_loop_key_create(registry_free);
}

static wisp__proc_loop *registry(wisp_loop_t *loop, int create)
{
    pthread_once(&key_once, make_key);
    if (proc_key < 0)
        return NULL;
    wisp__proc_loop *pl = wisp_loop_get_data(loop, proc_key);
    if (pl || !create)
        return pl;
    pl = calloc(1, sizeof *pl);
    if (!pl)
        return NULL;
    pl->loop = loop;
    if (wisp_loop_set_data(loop, proc_key, pl) != 0) {
        free(pl);
        return NULL;
    }
    return pl;
}

/* ------------------------------------------------------------ freeing */

static void unlink_proc(wisp_process_t *p)
{
    if (!p->pl)
        return;
    if (p->prev)
        p->prev->next = p->next;
    else
        p->pl->list = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->next = p->prev = NULL;
    p->pl = NULL;
}

static void free_now(void *arg)
{
    wisp_process_t *p = arg;
    unlink_proc(p);
    wisp_future_unref(p->exit);
    free(p);
}

/* Free a released, reaped handle: at the end of the iteration while its
 * loop lives, at once without one. */
static void free_proc(wisp_process_t *p)
{
    if (!p->loop) {
        free_now(p);
        return;
    }
    if (p->free_queued)
        return;
    p->free_queued = 1;
    wisp_timer_stop(&p->timer);
    p->free_node.cb = free_now;
    p->free_node.drop = free_now;
    p->free_node.arg = p;
    wisp__loop_defer_node(p->loop, &p->free_node);
}

/* ------------------------------------------------------------ reaping */

static int status_of(const siginfo_t *si)
{
    if (si->si_code == CLD_EXITED)
        return si->si_status & 0xff;
    return WISP_PROCESS_SIGNALED | (si->si_status & 0xff);
}

/* The child is gone: settle the future, tell the registry. */
static void reaped(wisp_process_t *p, int status, int backend_alive)
{
    if (backend_alive)
        wisp__be_close(p->loop, &p->pidfd);
    else if (p->pidfd.fd >= 0)
        close(p->pidfd.fd);
    p->pidfd.fd = -1;
    p->reaped = 1;
    if (backend_alive)
        wisp_timer_stop(&p->timer);
    p->phase = PH_NONE;
    wisp__proc_loop *pl = p->pl;
    if (pl)
        pl->live--;
    wisp_future_resolve(p->exit, (void *)(uintptr_t)status, NULL);
    if (p->released && backend_alive)
        free_proc(p);
    if (pl && backend_alive && pl->stopping && pl->live == 0 && pl->idle) {
        void (*idle)(void *) = pl->idle;
        pl->idle = NULL;
        idle(pl->idle_arg);
    }
}

static void on_pidfd(wisp__io *io, unsigned events)
{
    (void)events;
    if (io->fd < 0)
        return; /* reaped earlier in this batch */
    wisp_process_t *p = (wisp_process_t *)(void *)((char *)io -
                                          offsetof(wisp_process_t, pidfd));
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int r = waitid((idtype_t)P_PIDFD, (id_t)io->fd, &si, WEXITED | WNOHANG);
    if (r < 0 && errno == EINTR)
        return; /* still readable: the next wait reports it again */
    if (r == 0 && si.si_pid == 0)
        return; /* not exited after all */
    /* ECHILD: someone else reaped it (see the header); call it 0. */
    reaped(p, r == 0 ? status_of(&si) : 0, 1);
}

/* Kill and reap, blocking: only at teardown, after SIGKILL, which the
 * child cannot block. */
static int reap_blocking(wisp_process_t *p)
{
    syscall(SYS_pidfd_send_signal, (long)p->pidfd.fd, (long)SIGKILL, NULL,
            0L);
    siginfo_t si;
    for (;;) {
        memset(&si, 0, sizeof si);
        int r = waitid((idtype_t)P_PIDFD, (id_t)p->pidfd.fd, &si, WEXITED);
        if (r == 0)
            return status_of(&si);
        if (errno != EINTR)
            return 0;
    }
}

/* Every handle of the loop: children killed and reaped, pipes closed,
 * released handles freed, the others cut from the loop. */
static void teardown(wisp__proc_loop *pl, int backend_alive)
{
    while (pl->list) {
        wisp_process_t *p = pl->list;
        if (!p->reaped)
            reaped(p, reap_blocking(p), backend_alive);
        if (backend_alive) {
            wisp__pipe_close(p, 0);
            wisp__pipe_close(p, 1);
            wisp__pipe_close(p, 2);
            wisp_timer_stop(&p->timer);
        } else {
            wisp__pipe_close_raw(p);
        }
        unlink_proc(p);
        if (p->free_queued)
            continue; /* its deferred node frees it */
        p->loop = NULL;
        if (p->released)
            free_now(p);
    }
}

/* ------------------------------------------------------------ signals */

static int send_signal(wisp_process_t *p, int sig)
{
    if (!p->loop || p->reaped || p->pidfd.fd < 0)
        return -ESRCH;
    if (syscall(SYS_pidfd_send_signal, (long)p->pidfd.fd, (long)sig, NULL,
                0L) < 0)
        return -errno;
    return 0;
}

static void on_timer(wisp_timer_t *t, void *arg)
{
    wisp_process_t *p = arg;
    (void)t;
    if (p->reaped)
        return;
    if (p->phase == PH_TIMEOUT) {
        p->timed_out = 1;
        wisp_process_terminate(p);
    } else if (p->phase == PH_GRACE) {
        p->phase = PH_KILLED;
        send_signal(p, SIGKILL);
    }
}

int wisp_process_kill(wisp_process_t *p, int sig)
{
    WISP__ASSERT_OWNER(p->loop);
    return send_signal(p, sig);
}

int wisp_process_terminate(wisp_process_t *p)
{
    WISP__ASSERT_OWNER(p->loop);
    int r = send_signal(p, SIGTERM);
    if (r < 0 || p->phase == PH_GRACE || p->phase == PH_KILLED)
        return r;
    p->phase = PH_GRACE;
    wisp_timer_start(&p->timer, p->grace_ms, on_timer, p);
    return 0;
}

int wisp_process_timed_out(const wisp_process_t *p)
{
    return p->timed_out;
}

/* ------------------------------------------------------------ spawn */

/* A write to a child that closed its stdin must fail with EPIPE, not
 * kill us (a pipe write has no MSG_NOSIGNAL). */
static void ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) != 0)
        return;
    if (!(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

static int check_opts(const wisp_process_opts_t *o)
{
    if (!o->argv || !o->argv[0])
        return -EINVAL;
    if ((unsigned)o->env_mode > WISP_ENV_ADD)
        return -EINVAL;
    for (int i = 0; i < 3; i++) {
        if ((unsigned)o->stdio[i] > WISP_STDIO_PIPE)
            return -EINVAL;
        if (i > 0 && o->stdio[i] == WISP_STDIO_PIPE && !o->on_output)
            return -EINVAL;
    }
    return 0;
}

static void close_fds(int fds[3])
{
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0) {
            close(fds[i]);
            fds[i] = -1;
        }
}

int wisp_process_spawn(wisp_loop_t *loop, const wisp_process_opts_t *o,
                       wisp_process_t **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    if (!loop || !o)
        return -EINVAL;
    WISP__ASSERT_OWNER(loop);
    int r = check_opts(o);
    if (r < 0)
        return r;
    wisp__proc_loop *pl = registry(loop, 1);
    if (!pl)
        return -ENOMEM;
    wisp_process_t *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->exit = wisp_future_create(loop);
    if (!p->exit) {
        free(p);
        return -ENOMEM;
    }
    p->loop = loop;
    p->pidfd.fd = -1;
    p->on_output = o->on_output;
    p->on_drain = o->on_drain;
    p->arg = o->arg;
    p->stdin_limit = o->stdin_limit ? o->stdin_limit : DEFAULT_STDIN_LIMIT;
    p->grace_ms = o->kill_grace_ms ? o->kill_grace_ms : DEFAULT_GRACE_MS;
    wisp_timer_init(loop, &p->timer);
    int parent[3] = {-1, -1, -1}, child[3] = {-1, -1, -1};
    for (int i = 0; i < 3 && r == 0; i++) {
        p->pipes[i].which = (uint8_t)i;
        p->pipes[i].io.fd = -1;
        if (o->stdio[i] == WISP_STDIO_PIPE)
            r = wisp__proc_pipe(i != 0, &parent[i], &child[i]);
    }
    if (r == 0 && o->stdio[0] == WISP_STDIO_PIPE)
        ignore_sigpipe();
    int pidfd = -1;
    if (r == 0)
        r = wisp__proc_spawn(o, child, &p->pid, &pidfd);
    close_fds(child);
    if (r < 0) {
        close_fds(parent);
        wisp_future_unref(p->exit);
        free(p);
        return r;
    }
    p->pidfd.fd = pidfd;
    p->pidfd.cb = on_pidfd;
    p->pidfd.want = WISP__IO_RECV;
    for (int i = 0; i < 3; i++)
        p->pipes[i].io.fd = parent[i];
    r = wisp__be_add(loop, &p->pidfd);
    for (int i = 1; i < 3 && r == 0; i++)
        r = wisp__pipe_start(p, i);
    p->pl = pl;
    p->next = pl->list;
    if (pl->list)
        pl->list->prev = p;
    pl->list = p;
    pl->live++;
    if (r < 0) {
        /* Registered as far as it got: undo it like a teardown would. */
        reaped(p, reap_blocking(p), 1);
        for (int i = 0; i < 3; i++)
            wisp__pipe_close(p, i);
        unlink_proc(p);
        wisp_future_unref(p->exit);
        free(p);
        return r;
    }
    if (o->timeout_ms) {
        p->phase = PH_TIMEOUT;
        wisp_timer_start(&p->timer, o->timeout_ms, on_timer, p);
    }
    *out = p;
    return 0;
}

/* ------------------------------------------------------------ handle */

void wisp_process_release(wisp_process_t *p)
{
    if (!p || p->released)
        return;
    WISP__ASSERT_OWNER(p->loop);
    p->released = 1;
    p->on_output = NULL;
    p->on_drain = NULL;
    if (!p->loop) {
        free_now(p);
        return;
    }
    for (int i = 0; i < 3; i++)
        wisp__pipe_close(p, i);
    if (p->reaped)
        free_proc(p);
}

wisp_future_t *wisp_process_exit(wisp_process_t *p)
{
    return p->exit;
}

int wisp_process_status(const wisp_future_t *exit)
{
    if (wisp_future_state(exit) != WISP_FUTURE_RESOLVED)
        return wisp_future_error(exit);
    return (int)(uintptr_t)wisp_future_value(exit);
}

pid_t wisp_process_pid(const wisp_process_t *p)
{
    return p->pid;
}

wisp_loop_t *wisp_process_loop(const wisp_process_t *p)
{
    return p->loop;
}

/* ------------------------------------------------------------ server */

void wisp__proc_stop(wisp_loop_t *loop, void (*idle)(void *), void *arg)
{
    wisp__proc_loop *pl = registry(loop, 0);
    if (!pl)
        return;
    pl->stopping = 1;
    pl->idle = idle;
    pl->idle_arg = arg;
    for (wisp_process_t *p = pl->list; p; p = p->next)
        if (!p->reaped)
            wisp_process_terminate(p);
}

void wisp__proc_force(wisp_loop_t *loop)
{
    wisp__proc_loop *pl = registry(loop, 0);
    if (!pl)
        return;
    for (wisp_process_t *p = pl->list; p; p = p->next)
        if (!p->reaped) {
            p->phase = PH_KILLED;
            send_signal(p, SIGKILL);
        }
}

uint32_t wisp__proc_live(wisp_loop_t *loop)
{
    wisp__proc_loop *pl = registry(loop, 0);
    return pl ? pl->live : 0;
}

void wisp__proc_fini(wisp_loop_t *loop)
{
    wisp__proc_loop *pl = registry(loop, 0);
    if (!pl)
        return;
    pl->idle = NULL;
    teardown(pl, 1);
}
