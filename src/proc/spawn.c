/* Starting a child: posix_spawn with the child's stdio, environment,
 * working directory, an empty signal mask and default signal
 * dispositions, and nothing of the parent's descriptors beyond 0, 1 and
 * 2; then its pidfd.
 *
 * posix_spawn rather than fork: glibc and musl both spawn with
 * CLONE_VM|CLONE_VFORK (no copy of a large parent's page tables) and
 * report a failed exec as the call's error, after reaping the child. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proc/proc_int.h"

extern char **environ;

#if defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
#define HAVE_CLOSEFROM_ACTION 1
#endif

/* A descriptor at 3 or above, close-on-exec: the child's ends are
 * dup2'ed onto 0, 1 and 2, so none of them may already sit there (a
 * parent started with a standard stream closed). */
static int lift(int fd)
{
    if (fd >= 3)
        return fd;
    int n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    errno = e;
    return n;
}

int wisp__proc_pipe(int parent_reads, int *parent, int *child)
{
    int fds[2];
    *parent = *child = -1;
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -errno;
    fds[0] = lift(fds[0]);
    int e = errno;
    fds[1] = lift(fds[1]);
    if (fds[1] < 0)
        e = errno;
    if (fds[0] < 0 || fds[1] < 0) {
        if (fds[0] >= 0)
            close(fds[0]);
        if (fds[1] >= 0)
            close(fds[1]);
        return -e;
    }
    /* Only the parent's end is non-blocking: the child expects ordinary
     * blocking stdio. */
    *parent = parent_reads ? fds[0] : fds[1];
    *child = parent_reads ? fds[1] : fds[0];
    int fl = fcntl(*parent, F_GETFL);
    if (fl < 0 || fcntl(*parent, F_SETFL, fl | O_NONBLOCK) < 0) {
        e = errno;
        close(fds[0]);
        close(fds[1]);
        *parent = *child = -1;
        return -e;
    }
    return 0;
}

static size_t name_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t)(eq - kv) : strlen(kv);
}

static int same_name(const char *a, const char *b)
{
    size_t la = name_len(a);
    return la == name_len(b) && memcmp(a, b, la) == 0;
}

/* The child's environment; *owned is what the caller frees after the
 * spawn (NULL when nothing was allocated). */
static char *const *make_env(const wisp_process_opts_t *o, char ***owned)
{
    static char *const empty[] = {NULL};
    *owned = NULL;
    if (o->env_mode == WISP_ENV_INHERIT)
        return environ;
    if (o->env_mode == WISP_ENV_REPLACE)
        return o->env ? (char *const *)o->env : empty;
    size_t ne = 0, na = 0;
    while (environ && environ[ne])
        ne++;
    while (o->env && o->env[na])
        na++;
    char **v = malloc((ne + na + 1) * sizeof *v);
    if (!v)
        return NULL;
    size_t n = 0;
    for (size_t i = 0; i < ne; i++) {
        size_t j = 0;
        while (j < na && !same_name(environ[i], o->env[j]))
            j++;
        if (j == na)
            v[n++] = environ[i];
    }
    for (size_t j = 0; j < na; j++)
        v[n++] = (char *)o->env[j];
    v[n] = NULL;
    *owned = v;
    return v;
}

#ifndef HAVE_CLOSEFROM_ACTION
/* Without a closefrom action (musl), close in the child every
 * descriptor from 3 up that would survive the exec. wisp opens all of
 * its own close-on-exec; this catches the application's others (an fd
 * opened by another thread during the spawn can still slip through). */
static int close_inherited(posix_spawn_file_actions_t *fa)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0; /* no /proc: rely on close-on-exec */
    int self = dirfd(d), r = 0;
    struct dirent *de;
    while (r == 0 && (de = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(de->d_name, &end, 10);
        if (*end || end == de->d_name || fd < 3 || fd == self)
            continue;
        int fl = fcntl((int)fd, F_GETFD);
        if (fl >= 0 && !(fl & FD_CLOEXEC))
            r = posix_spawn_file_actions_addclose(fa, (int)fd);
    }
    closedir(d);
    return r;
}
#endif

static int build(posix_spawn_file_actions_t *fa, posix_spawnattr_t *at,
                 const wisp_process_opts_t *o, const int child_fd[3])
{
    int r = 0;
    for (int i = 0; i < 3 && r == 0; i++) {
        if (child_fd[i] >= 0)
            r = posix_spawn_file_actions_adddup2(fa, child_fd[i], i);
        else if (o->stdio[i] == WISP_STDIO_NULL)
            r = posix_spawn_file_actions_addopen(
                fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
    }
#ifdef HAVE_CLOSEFROM_ACTION
    if (r == 0)
        r = posix_spawn_file_actions_addclosefrom_np(fa, 3);
#else
    if (r == 0)
        r = close_inherited(fa);
#endif
    if (r == 0 && o->cwd)
        r = posix_spawn_file_actions_addchdir_np(fa, o->cwd);
    /* The parent's mask may block the stop signals (a server's threads
     * do, for its signalfd) and it may ignore SIGPIPE: a child inherits
     * both through exec, and a blocked SIGTERM would make terminate a
     * no-op. */
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    if (r == 0)
        r = posix_spawnattr_setsigmask(at, &none);
    if (r == 0)
        r = posix_spawnattr_setsigdefault(at, &all);
    if (r == 0)
        r = posix_spawnattr_setflags(
            at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    return r;
}

int wisp__proc_spawn(const wisp_process_opts_t *o, const int child_fd[3],
                     pid_t *pid, int *pidfd)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    char **owned;
    char *const *envp = make_env(o, &owned);
    if (!envp)
        return -ENOMEM;
    int r = posix_spawn_file_actions_init(&fa);
    if (r != 0) {
        free(owned);
        return -r;
    }
    r = posix_spawnattr_init(&at);
    if (r != 0) {
        posix_spawn_file_actions_destroy(&fa);
        free(owned);
        return -r;
    }
    r = build(&fa, &at, o, child_fd);
    const char *file = o->file ? o->file : o->argv[0];
    char *const *argv = (char *const *)o->argv;
    if (r == 0)
        r = strchr(file, '/') ? posix_spawn(pid, file, &fa, &at, argv, envp)
                              : posix_spawnp(pid, file, &fa, &at, argv, envp);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    free(owned);
    if (r != 0)
        return -r;
    /* The child cannot be reaped by anyone but us before this (see the
     * header: nobody else reaps wisp's children), so the pid still names
     * it. */
    long fd = syscall(SYS_pidfd_open, (long)*pid, 0L);
    if (fd < 0) {
        int e = errno;
        kill(*pid, SIGKILL);
        while (waitpid(*pid, NULL, 0) < 0 && errno == EINTR)
            ;
        return -e;
    }
    *pidfd = (int)fd;
    return 0;
}
