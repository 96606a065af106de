/* Child processes (src/proc): spawning, stdio pipes, exit status,
 * signals and the timeout, the stdin queue and its limit, pausing
 * output, no descriptor or zombie left behind, and what happens when
 * the loop or the server stops with children still running.
 *
 * The loop runs on the test's thread: each case spawns, then runs the
 * loop until the condition it waits for holds (every callback breaks
 * the loop so the condition is looked at again), bounded by a watchdog
 * timer as the failure bound only.
 *
 * The test program is its own helper child: run with "--fds" it prints
 * its open descriptors, its blocked and ignored signal masks. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wisp.h"

#include "test.h"

static wisp_loop_t *loop;
static int wd_fired;
static wisp_timer_t wd;

static void on_wd(wisp_timer_t *t, void *arg)
{
    (void)t;
    (void)arg;
    wd_fired = 1;
    wisp_loop_break(loop);
}

static void break_task(void *arg)
{
    (void)arg;
    wisp_loop_break(loop);
}

/* One loop iteration: tasks deferred so far (frees) have run. */
static void spin(void)
{
    wisp_loop_defer(loop, break_task, NULL);
    wisp_loop_run(loop);
}

/* Run the loop until `expr` holds or 20 s pass. */
#define RUN_UNTIL(expr)                                                     \
    do {                                                                    \
        wd_fired = 0;                                                       \
        wisp_timer_start(&wd, 20000, on_wd, NULL);                          \
        while (!(expr) && !wd_fired)                                        \
            wisp_loop_run(loop);                                            \
        wisp_timer_stop(&wd);                                               \
        CHECK_MSG((expr), "timed out waiting for %s", #expr);               \
    } while (0)

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (de->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own */
}

/* No child of ours is left, exited or not. */
static int no_children(void)
{
    return waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD;
}

/* ------------------------------------------------ a collecting child */

typedef struct out {
    char *buf[3];
    size_t len[3];
    size_t cap[3];
    int ended[3];
    int drains, drain_err;
} out;

static void collect(wisp_process_t *p, int fd, const char *data, size_t len,
                    void *arg)
{
    out *o = arg;
    (void)p;
    if (!data) {
        o->ended[fd]++;
    } else {
        if (o->len[fd] + len > o->cap[fd]) {
            o->cap[fd] = (o->len[fd] + len) * 2;
            o->buf[fd] = realloc(o->buf[fd], o->cap[fd]);
        }
        memcpy(o->buf[fd] + o->len[fd], data, len);
        o->len[fd] += len;
    }
    wisp_loop_break(loop);
}

static void drained(wisp_process_t *p, int err, void *arg)
{
    out *o = arg;
    (void)p;
    o->drains++;
    o->drain_err = err;
    wisp_loop_break(loop);
}

static void out_free(out *o)
{
    for (int i = 0; i < 3; i++)
        free(o->buf[i]);
    memset(o, 0, sizeof *o);
}

static int exited(wisp_process_t *p)
{
    return wisp_future_state(wisp_process_exit(p)) != WISP_FUTURE_PENDING;
}

static void break_cb(wisp_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    wisp_loop_break(loop);
}

/* Spawn argv with stdout and stderr piped into `o`, stdin as given. */
static int spawn_sh(const char *script, out *o, wisp_stdio_t in,
                    wisp_process_t **p)
{
    const char *argv[] = {"sh", "-c", script, NULL};
    wisp_process_opts_t opt = {
        .argv = argv,
        .stdio = {in, WISP_STDIO_PIPE, WISP_STDIO_PIPE},
        .on_output = collect,
        .on_drain = drained,
        .arg = o,
    };
    int r = wisp_process_spawn(loop, &opt, p);
    if (r == 0)
        wisp_future_then(wisp_process_exit(*p), break_cb, NULL);
    return r;
}

/* ------------------------------------------------ cases */

static void test_bad_input(void)
{
    wisp_process_t *p = (wisp_process_t *)1;
    wisp_process_opts_t o = {0};
    CHECK_EQ_INT(wisp_process_spawn(loop, &o, &p), -EINVAL);
    CHECK(p == NULL);
    const char *argv[] = {"true", NULL};
    o.argv = argv;
    o.stdio[1] = WISP_STDIO_PIPE; /* no on_output */
    CHECK_EQ_INT(wisp_process_spawn(loop, &o, &p), -EINVAL);
    o.stdio[1] = (wisp_stdio_t)7;
    CHECK_EQ_INT(wisp_process_spawn(loop, &o, &p), -EINVAL);
    o.stdio[1] = WISP_STDIO_INHERIT;
    CHECK_EQ_INT(wisp_process_spawn(NULL, &o, &p), -EINVAL);
    CHECK_EQ_INT(wisp_process_spawn(loop, &o, NULL), -EINVAL);
    CHECK(no_children());
}

static void test_missing_program(void)
{
    int fds = count_fds();
    out o = {0};
    wisp_process_t *p = (wisp_process_t *)1;
    const char *argv[] = {"wisp-no-such-program", NULL};
    wisp_process_opts_t opt = {
        .argv = argv,
        .stdio = {WISP_STDIO_PIPE, WISP_STDIO_PIPE, WISP_STDIO_PIPE},
        .on_output = collect,
        .arg = &o,
    };
    CHECK_EQ_INT(wisp_process_spawn(loop, &opt, &p), -ENOENT);
    CHECK(p == NULL);
    const char *argv2[] = {"/nonexistent/dir/prog", NULL};
    opt.argv = argv2;
    CHECK_EQ_INT(wisp_process_spawn(loop, &opt, &p), -ENOENT);
    /* A directory is not a program. */
    const char *argv3[] = {"/tmp", NULL};
    opt.argv = argv3;
    CHECK_EQ_INT(wisp_process_spawn(loop, &opt, &p), -EACCES);
    /* A working directory that does not exist. */
    const char *argv4[] = {"true", NULL};
    opt.argv = argv4;
    opt.cwd = "/nonexistent/dir";
    CHECK_EQ_INT(wisp_process_spawn(loop, &opt, &p), -ENOENT);
    CHECK(no_children());
    CHECK_EQ_INT(count_fds(), fds);
}

static void test_exit_codes(void)
{
    static const struct {
        const char *script;
        int status;
    } rows[] = {
        {"exit 0", 0},
        {"exit 3", 3},
        {"exit 255", 255},
        {"kill -TERM $$", WISP_PROCESS_SIGNALED | SIGTERM},
        {"kill -KILL $$", WISP_PROCESS_SIGNALED | SIGKILL},
        {"ulimit -c 0; kill -SEGV $$", WISP_PROCESS_SIGNALED | SIGSEGV},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        out o = {0};
        wisp_process_t *p;
        CHECK_EQ_INT(spawn_sh(rows[i].script, &o, WISP_STDIO_NULL, &p), 0);
        wisp_future_t *f = wisp_process_exit(p);
        CHECK_EQ_INT(wisp_process_status(f), -EINPROGRESS);
        RUN_UNTIL(exited(p) && o.ended[1] && o.ended[2]);
        CHECK_MSG(wisp_process_status(f) == rows[i].status,
                  "%s: status %#x, want %#x", rows[i].script,
                  wisp_process_status(f), rows[i].status);
        /* After the exit: nothing to signal. */
        CHECK_EQ_INT(wisp_process_kill(p, SIGTERM), -ESRCH);
        wisp_process_release(p);
        out_free(&o);
    }
    CHECK(no_children());
}

static void test_stderr_apart(void)
{
    out o = {0};
    wisp_process_t *p;
    CHECK_EQ_INT(spawn_sh("echo out; echo err >&2; echo more >/dev/stderr",
                          &o, WISP_STDIO_NULL, &p),
                 0);
    RUN_UNTIL(exited(p) && o.ended[1] && o.ended[2]);
    CHECK_STRN(o.buf[1], o.len[1], "out\n");
    CHECK_STRN(o.buf[2], o.len[2], "err\nmore\n");
    CHECK_EQ_INT(o.ended[1], 1);
    CHECK_EQ_INT(o.ended[2], 1);
    CHECK_EQ_INT(wisp_process_status(wisp_process_exit(p)), 0);
    /* Ended streams: pause and resume say so; stdin was never a pipe. */
    CHECK_EQ_INT(wisp_process_pause(p, 1), WISP_ECLOSED);
    CHECK_EQ_INT(wisp_process_pause(p, 0), -EINVAL);
    CHECK_EQ_INT(wisp_process_pause(p, 3), -EINVAL);
    CHECK_EQ_INT(wisp_process_write(p, "x", 1), WISP_ECLOSED);
    wisp_process_release(p);
    out_free(&o);
}

/* A paused stream is not read: the child's exit comes, its output and
 * end wait for the resume. */
static void test_paused_until_exit(void)
{
    out o = {0};
    wisp_process_t *p;
    CHECK_EQ_INT(spawn_sh("echo hi", &o, WISP_STDIO_NULL, &p), 0);
    CHECK_EQ_INT(wisp_process_pause(p, 1), 0);
    CHECK_EQ_INT(wisp_process_pause(p, 1), 0); /* twice: no change */
    RUN_UNTIL(exited(p) && o.ended[2]);
    spin();
    CHECK_EQ_INT(o.len[1], 0);
    CHECK_EQ_INT(o.ended[1], 0);
    CHECK_EQ_INT(wisp_process_resume(p, 1), 0);
    RUN_UNTIL(o.ended[1]);
    CHECK_STRN(o.buf[1], o.len[1], "hi\n");
    CHECK_EQ_INT(wisp_process_resume(p, 1), WISP_ECLOSED);
    wisp_process_release(p);
    out_free(&o);
}

static void test_env_cwd(void)
{
    setenv("WISP_T_PARENT", "parent", 1);
    setenv("WISP_T_OVER", "old", 1);
    const char *script =
        "printf '%s|%s|%s|%s' \"$WISP_T_PARENT\" \"$WISP_T_OVER\" "
        "\"$WISP_T_NEW\" \"$(pwd)\"";
    const char *argv[] = {"/bin/sh", "-c", script, NULL};
    const char *env[] = {"WISP_T_OVER=new", "WISP_T_NEW=x=y", NULL};
    char cwd[4096];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    static const struct {
        wisp_env_mode_t mode;
        const char *cwd;
        const char *want_env;
    } rows[] = {
        {WISP_ENV_INHERIT, NULL, "parent|old||"},
        {WISP_ENV_REPLACE, "/", "|new|x=y|/"},
        {WISP_ENV_ADD, "/tmp", "parent|new|x=y|/tmp"},
    };
    for (size_t i = 0; i < 3; i++) {
        out o = {0};
        wisp_process_t *p;
        wisp_process_opts_t opt = {
            .argv = argv,
            .env = env,
            .env_mode = rows[i].mode,
            .cwd = rows[i].cwd,
            .stdio = {WISP_STDIO_NULL, WISP_STDIO_PIPE, WISP_STDIO_INHERIT},
            .on_output = collect,
            .arg = &o,
        };
        CHECK_EQ_INT(wisp_process_spawn(loop, &opt, &p), 0);
        wisp_future_then(wisp_process_exit(p), break_cb, NULL);
        RUN_UNTIL(o.ended[1] && exited(p));
        char want[8192];
        snprintf(want, sizeof want, "%s%s", rows[i].want_env,
                 rows[i].cwd ? "" : cwd);
        CHECK_STRN(o.buf[1], o.len[1], want);
        wisp_process_release(p);
        out_free(&o);
    }
    CHECK(no_children());
}

/* The child gets 0, 1, 2 and nothing else of ours — not even a
 * descriptor the application opened without close-on-exec — an empty
 * signal mask and no ignored signal. */
static void test_no_fd_leak(void)
{
    int leak = dup(2); /* no close-on-exec */
    CHECK(leak >= 3);
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_BLOCK, &term, &old);
    signal(SIGUSR2, SIG_IGN);
    out o = {0};
    wisp_process_t *p;
    const char *argv[] = {"process_test", "--fds", NULL};
    wisp_process_opts_t opt = {
        .file = "/proc/self/exe",
        .argv = argv,
        .stdio = {WISP_STDIO_PIPE, WISP_STDIO_PIPE, WISP_STDIO_NULL},
        .on_output = collect,
        .arg = &o,
    };
    CHECK_EQ_INT(wisp_process_spawn(loop, &opt, &p), 0);
    sigprocmask(SIG_SETMASK, &old, NULL);
    signal(SIGUSR2, SIG_DFL);
    close(leak);
    RUN_UNTIL(o.ended[1] && exited(p));
    CHECK_EQ_INT(wisp_process_status(wisp_process_exit(p)), 0);
    char *txt = strndup(o.buf[1] ? o.buf[1] : "", o.len[1]);
    CHECK_MSG(strstr(txt, "fd 0 pipe:") && strstr(txt, "fd 1 pipe:") &&
                  strstr(txt, "fd 2 /dev/null\n"),
              "%s", txt);
    CHECK_MSG(!strstr(txt, "fd 3") && !strstr(txt, "fd 4"), "%s", txt);
    /* Signals 32 and 33 belong to the C library (glibc's thread
     * cancellation) and cannot be reset through posix_spawn: look at
     * 1..31. */
    const char *blk = strstr(txt, "SigBlk:\t"), *ign = strstr(txt, "SigIgn:\t");
    CHECK_MSG(blk && ign, "%s", txt);
    if (blk && ign) {
        CHECK_MSG((strtoull(blk + 8, NULL, 16) & 0x7fffffffu) == 0, "%s", txt);
        CHECK_MSG((strtoull(ign + 8, NULL, 16) & 0x7fffffffu) == 0, "%s", txt);
    }
    free(txt);
    wisp_process_release(p);
    out_free(&o);
}

/* ------------------------------------------------ cat, both ways */

#define CAT_TOTAL (24u << 20)
#define CHUNK (64u * 1024u)
#define HIGH (256u * 1024u)
#define LIMIT (1u << 20)

typedef struct cat_run {
    wisp_process_t *p;
    size_t sent, got;
    size_t max_queued;
    int bad, ended, pauses, enobufs;
    wisp_timer_t resume;
} cat_run;

static unsigned char pattern(size_t off)
{
    return (unsigned char)((off * 2654435761u) >> 13);
}

static void cat_fill(cat_run *c)
{
    static unsigned char chunk[CHUNK];
    while (c->sent < CAT_TOTAL && wisp_process_queued(c->p) < HIGH) {
        size_t n = CAT_TOTAL - c->sent < CHUNK ? CAT_TOTAL - c->sent : CHUNK;
        for (size_t i = 0; i < n; i++)
            chunk[i] = pattern(c->sent + i);
        int r = wisp_process_write(c->p, chunk, n);
        if (r != 0) {
            c->bad++;
            return;
        }
        c->sent += n;
        if (wisp_process_queued(c->p) > c->max_queued)
            c->max_queued = wisp_process_queued(c->p);
    }
    if (c->sent == CAT_TOTAL)
        wisp_process_close_stdin(c->p);
}

static void cat_resume(wisp_timer_t *t, void *arg)
{
    cat_run *c = arg;
    (void)t;
    CHECK_EQ_INT(wisp_process_resume(c->p, 1), 0);
}

static void cat_out(wisp_process_t *p, int fd, const char *data, size_t len,
                    void *arg)
{
    cat_run *c = arg;
    if (!data) {
        c->ended++;
        wisp_loop_break(loop);
        return;
    }
    CHECK_EQ_INT(fd, 1);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)data[i] != pattern(c->got + i)) {
            c->bad++;
            break;
        }
    size_t before = c->got;
    c->got += len;
    /* Every 2 MiB, stop reading for a moment: the child blocks on a
     * full pipe, the writer's queue fills and waits. */
    if (before / (2u << 20) != c->got / (2u << 20)) {
        c->pauses++;
        CHECK_EQ_INT(wisp_process_pause(p, 1), 0);
        wisp_timer_start(&c->resume, 5, cat_resume, c);
    }
}

static void cat_drain(wisp_process_t *p, int err, void *arg)
{
    cat_run *c = arg;
    (void)p;
    CHECK_EQ_INT(err, 0);
    if (c->sent < CAT_TOTAL)
        cat_fill(c);
}

static void test_cat(void)
{
    cat_run c = {0};
    wisp_timer_init(loop, &c.resume);
    const char *argv[] = {"cat", NULL};
    wisp_process_opts_t opt = {
        .argv = argv,
        .stdio = {WISP_STDIO_PIPE, WISP_STDIO_PIPE, WISP_STDIO_INHERIT},
        .on_output = cat_out,
        .on_drain = cat_drain,
        .arg = &c,
        .stdin_limit = LIMIT,
    };
    CHECK_EQ_INT(wisp_process_spawn(loop, &opt, &c.p), 0);
    wisp_future_then(wisp_process_exit(c.p), break_cb, NULL);
    cat_fill(&c);
    /* Over the limit: refused whole, nothing queued. */
    static char big[LIMIT + 1];
    size_t q = wisp_process_queued(c.p);
    CHECK_EQ_INT(wisp_process_write(c.p, big, sizeof big), -ENOBUFS);
    CHECK_EQ_INT(wisp_process_queued(c.p), q);
    RUN_UNTIL(c.ended && exited(c.p));
    CHECK_EQ_INT(c.got, CAT_TOTAL);
    CHECK_EQ_INT(c.sent, CAT_TOTAL);
    CHECK_EQ_INT(c.bad, 0);
    CHECK(c.pauses >= 5);
    /* Bounded: the writer stopped at the high-water mark (plus one
     * chunk), never near the total. */
    CHECK_MSG(c.max_queued <= HIGH + CHUNK, "max queued %zu", c.max_queued);
    CHECK(c.max_queued > 0);
    CHECK_EQ_INT(wisp_process_status(wisp_process_exit(c.p)), 0);
    CHECK_EQ_INT(wisp_process_write(c.p, "x", 1), WISP_ECLOSED);
    wisp_timer_stop(&c.resume);
    wisp_process_release(c.p);
}

/* A child that stops reading: the queue fills to the limit and further
 * writes are refused; then the child dies and the queued bytes are
 * dropped with -EPIPE. */
static void test_stdin_broken(void)
{
    out o = {0};
    wisp_process_t *p;
    const char *argv[] = {"sh", "-c",
                          "read line; echo \"$line\"; exec sleep 30", NULL};
    wisp_process_opts_t opt = {
        .argv = argv,
        .stdio = {WISP_STDIO_PIPE, WISP_STDIO_PIPE, WISP_STDIO_NULL},
        .on_output = collect,
        .on_drain = drained,
        .arg = &o,
        .stdin_limit = 256 * 1024,
    };
    CHECK_EQ_INT(wisp_process_spawn(loop, &opt, &p), 0);
    wisp_future_then(wisp_process_exit(p), break_cb, NULL);
    static char buf[128 * 1024];
    memset(buf, 'a', sizeof buf);
    memcpy(buf, "hello\n", 6);
    int r = 0, writes = 0;
    while (r == 0 && writes < 100) {
        r = wisp_process_write(p, buf, sizeof buf);
        writes++;
    }
    /* The pipe took at most 64 KiB, the queue the limit's worth: then
     * refused, nothing more queued. */
    CHECK_EQ_INT(r, -ENOBUFS);
    CHECK(writes <= 4);
    CHECK(wisp_process_queued(p) <= 256 * 1024);
    RUN_UNTIL(o.len[1] == 6);
    CHECK_STRN(o.buf[1], o.len[1], "hello\n");
    CHECK_EQ_INT(o.drains, 0);
    CHECK_EQ_INT(wisp_process_kill(p, SIGKILL), 0);
    RUN_UNTIL(o.drains == 1 && exited(p));
    CHECK_EQ_INT(o.drain_err, -EPIPE);
    CHECK_EQ_INT(wisp_process_queued(p), 0);
    CHECK_EQ_INT(wisp_process_write(p, "x", 1), -EPIPE);
    RUN_UNTIL(o.ended[1]);
    wisp_process_release(p);
    out_free(&o);
}

static void test_kill_timeout(void)
{
    /* kill */
    wisp_process_t *p;
    const char *sleep_argv[] = {"sleep", "30", NULL};
    wisp_process_opts_t opt = {.argv = sleep_argv};
    CHECK_EQ_INT(wisp_process_spawn(loop, &opt, &p), 0);
    wisp_future_then(wisp_process_exit(p), break_cb, NULL);
    CHECK(wisp_process_pid(p) > 0);
    CHECK(wisp_process_loop(p) == loop);
    CHECK_EQ_INT(wisp_process_kill(p, SIGKILL), 0);
    RUN_UNTIL(exited(p));
    CHECK_EQ_INT(wisp_process_status(wisp_process_exit(p)),
                 WISP_PROCESS_SIGNALED | SIGKILL);
    CHECK(!wisp_process_timed_out(p));
    wisp_process_release(p);

    /* timeout: SIGTERM */
    opt.timeout_ms = 50;
    CHECK_EQ_INT(wisp_process_spawn(loop, &opt, &p), 0);
    wisp_future_then(wisp_process_exit(p), break_cb, NULL);
    RUN_UNTIL(exited(p));
    CHECK_EQ_INT(wisp_process_status(wisp_process_exit(p)),
                 WISP_PROCESS_SIGNALED | SIGTERM);
    CHECK(wisp_process_timed_out(p));
    wisp_process_release(p);

    /* timeout on a child that ignores SIGTERM: SIGKILL after the grace.
     * The child says when its trap is set; a SIGTERM that came before
     * (a machine so loaded that sh took a second to start) would kill
     * it, so the SIGKILL is required only when the trap came first. */
    out o = {0};
    const char *stubborn[] = {"sh", "-c",
                              "trap '' TERM; echo ready; exec sleep 30",
                              NULL};
    opt.argv = stubborn;
    opt.kill_grace_ms = 100;
    opt.timeout_ms = 1000;
    opt.stdio[1] = WISP_STDIO_PIPE;
    opt.on_output = collect;
    opt.arg = &o;
    CHECK_EQ_INT(wisp_process_spawn(loop, &opt, &p), 0);
    wisp_future_then(wisp_process_exit(p), break_cb, NULL);
    RUN_UNTIL(o.len[1] > 0 || exited(p));
    int trap_first = o.len[1] > 0 && !wisp_process_timed_out(p);
    RUN_UNTIL(exited(p));
    if (trap_first)
        CHECK_EQ_INT(wisp_process_status(wisp_process_exit(p)),
                     WISP_PROCESS_SIGNALED | SIGKILL);
    CHECK(wisp_process_timed_out(p));
    wisp_process_release(p);
    out_free(&o);

    /* terminate: same path without a timeout, once the trap is set */
    opt.timeout_ms = 0;
    CHECK_EQ_INT(wisp_process_spawn(loop, &opt, &p), 0);
    wisp_future_then(wisp_process_exit(p), break_cb, NULL);
    RUN_UNTIL(o.len[1] > 0);
    CHECK_EQ_INT(wisp_process_terminate(p), 0);
    CHECK_EQ_INT(wisp_process_terminate(p), 0);
    RUN_UNTIL(exited(p));
    CHECK_EQ_INT(wisp_process_status(wisp_process_exit(p)),
                 WISP_PROCESS_SIGNALED | SIGKILL);
    CHECK(!wisp_process_timed_out(p));
    CHECK_EQ_INT(wisp_process_terminate(p), -ESRCH);
    wisp_process_release(p);
    out_free(&o);
    CHECK(no_children());
}

/* Many in a row and many at once: no descriptor, no zombie, no memory
 * (ASan) left. */
static int many_done;

static void many_exit(wisp_future_t *f, void *arg)
{
    (void)arg;
    if (wisp_process_status(f) == 7)
        many_done++;
    wisp_loop_break(loop);
}

static void test_many(void)
{
    int fds = count_fds();
    many_done = 0;
    for (int i = 0; i < 100; i++) {
        out o = {0};
        wisp_process_t *p;
        CHECK_EQ_INT(spawn_sh("echo hi; exit 7", &o, WISP_STDIO_PIPE, &p),
                     0);
        wisp_future_then(wisp_process_exit(p), many_exit, NULL);
        RUN_UNTIL(exited(p) && o.ended[1]);
        CHECK_STRN(o.buf[1], o.len[1], "hi\n");
        wisp_process_release(p);
        out_free(&o);
    }
    CHECK_EQ_INT(many_done, 100);
    /* 32 at once, released before they exit: still reaped. */
    many_done = 0;
    const char *argv[] = {"sh", "-c", "exit 7", NULL};
    wisp_process_opts_t opt = {
        .argv = argv,
        .stdio = {WISP_STDIO_PIPE, WISP_STDIO_NULL, WISP_STDIO_NULL},
    };
    wisp_future_t *fs[32];
    for (int i = 0; i < 32; i++) {
        wisp_process_t *p;
        CHECK_EQ_INT(wisp_process_spawn(loop, &opt, &p), 0);
        fs[i] = wisp_process_exit(p);
        wisp_future_ref(fs[i]);
        wisp_future_then(fs[i], many_exit, NULL);
        wisp_process_release(p);
    }
    RUN_UNTIL(many_done == 32);
    for (int i = 0; i < 32; i++)
        wisp_future_unref(fs[i]);
    spin(); /* the deferred frees */
    CHECK_EQ_INT(count_fds(), fds);
    CHECK(no_children());
}

/* Released from inside its own output callback, with more output and
 * the exit still to come: nothing else is delivered, nothing leaks. */
static int rel_calls;

static void release_in_cb(wisp_process_t *p, int fd, const char *data,
                          size_t len, void *arg)
{
    (void)fd;
    (void)data;
    (void)len;
    (void)arg;
    rel_calls++;
    wisp_process_release(p);
    wisp_loop_break(loop);
}

static void test_release_inside(void)
{
    const char *argv[] = {"sh", "-c", "echo a; echo b >&2; sleep 0.2; "
                                      "echo c; echo d >&2", NULL};
    wisp_process_opts_t opt = {
        .argv = argv,
        .stdio = {WISP_STDIO_NULL, WISP_STDIO_PIPE, WISP_STDIO_PIPE},
        .on_output = release_in_cb,
    };
    wisp_process_t *p;
    rel_calls = 0;
    CHECK_EQ_INT(wisp_process_spawn(loop, &opt, &p), 0);
    wisp_future_t *f = wisp_process_exit(p);
    wisp_future_ref(f);
    wisp_future_then(f, break_cb, NULL);
    RUN_UNTIL(wisp_future_state(f) != WISP_FUTURE_PENDING);
    CHECK_EQ_INT(rel_calls, 1);
    /* The child wrote into closed pipes: SIGPIPE killed it, or it
     * finished first. Either way it was reaped. */
    wisp_future_unref(f);
    CHECK(no_children());
}

/* A loop destroyed with a child running and a handle still held: the
 * child is killed and reaped inside wisp_loop_destroy, the future is
 * settled, the handle only frees. */
static void test_loop_destroyed(void)
{
    wisp_loop_t *l2 = wisp_loop_create();
    wisp_process_t *p;
    out o = {0};
    const char *argv[] = {"sleep", "30", NULL};
    wisp_process_opts_t opt = {
        .argv = argv,
        .stdio = {WISP_STDIO_PIPE, WISP_STDIO_PIPE, WISP_STDIO_NULL},
        .on_output = collect,
        .arg = &o,
    };
    CHECK_EQ_INT(wisp_process_spawn(l2, &opt, &p), 0);
    CHECK_EQ_INT(wisp_process_write(p, "x", 1), 0);
    wisp_future_t *f = wisp_process_exit(p);
    wisp_future_ref(f);
    wisp_future_then(f, break_cb, NULL);
    pid_t pid = wisp_process_pid(p);
    /* A second, released one. */
    wisp_process_t *q;
    opt.stdio[0] = opt.stdio[1] = WISP_STDIO_NULL;
    CHECK_EQ_INT(wisp_process_spawn(l2, &opt, &q), 0);
    wisp_process_release(q);
    wisp_loop_destroy(l2);
    CHECK(kill(pid, 0) < 0 && errno == ESRCH);
    CHECK(no_children());
    CHECK_EQ_INT(wisp_process_status(f), WISP_PROCESS_SIGNALED | SIGKILL);
    CHECK(wisp_process_loop(p) == NULL);
    CHECK_EQ_INT(wisp_process_kill(p, SIGTERM), -ESRCH);
    CHECK_EQ_INT(wisp_process_write(p, "x", 1), WISP_ECLOSED);
    wisp_process_release(p);
    wisp_future_unref(f);
    out_free(&o);
}

/* ------------------------------------------------ server stop */

typedef struct srv_case {
    wisp_server_t *srv;
    wisp_process_t *p[2];
    wisp_future_t *f[2];
    _Atomic int spawned;
    _Atomic int ready;
} srv_case;

static void srv_ready(wisp_process_t *p, int fd, const char *data,
                      size_t len, void *arg)
{
    srv_case *s = arg;
    (void)p;
    (void)fd;
    (void)len;
    if (data)
        atomic_store(&s->ready, 1);
}

static void spawn_on_worker(void *arg)
{
    srv_case *s = arg;
    wisp_loop_t *l = wisp_loop_current();
    const char *polite[] = {"sleep", "30", NULL};
    const char *stubborn[] = {"sh", "-c",
                              "trap '' TERM; echo ready; exec sleep 30",
                              NULL};
    wisp_process_opts_t opt = {.argv = polite, .kill_grace_ms = 200};
    int r = wisp_process_spawn(l, &opt, &s->p[0]);
    opt.argv = stubborn;
    opt.stdio[1] = WISP_STDIO_PIPE;
    opt.on_output = srv_ready;
    opt.arg = s;
    if (r == 0)
        r = wisp_process_spawn(l, &opt, &s->p[1]);
    if (r == 0)
        for (int i = 0; i < 2; i++) {
            s->f[i] = wisp_process_exit(s->p[i]);
            wisp_future_ref(s->f[i]);
        }
    atomic_store(&s->spawned, r == 0 ? 1 : -1);
}

static void test_server_stop(void)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 1;
    cfg.handle_signals = 0;
    cfg.shutdown_timeout_ms = 5000;
    srv_case s = {0};
    s.srv = wisp_server_create(&cfg);
    CHECK(s.srv != NULL);
    CHECK_EQ_INT(wisp_server_listen(s.srv), 0);
    CHECK_EQ_INT(wisp_server_start(s.srv), 0);
    CHECK_EQ_INT(wisp_loop_post(wisp_server_loop(s.srv, 0), spawn_on_worker,
                                &s),
                 0);
    for (int i = 0; i < 20000 && atomic_load(&s.spawned) == 0; i++)
        usleep(1000);
    CHECK_EQ_INT(atomic_load(&s.spawned), 1);
    if (atomic_load(&s.spawned) != 1)
        return;
    for (int i = 0; i < 20000 && !atomic_load(&s.ready); i++)
        usleep(1000);
    CHECK(atomic_load(&s.ready));
    pid_t pids[2] = {wisp_process_pid(s.p[0]), wisp_process_pid(s.p[1])};
    wisp_server_stop(s.srv);
    CHECK_EQ_INT(wisp_server_wait(s.srv), 0);
    /* Both gone before wait returned: SIGTERM for the polite one, the
     * grace period's SIGKILL for the other. */
    CHECK_EQ_INT(wisp_process_status(s.f[0]), WISP_PROCESS_SIGNALED | SIGTERM);
    CHECK_EQ_INT(wisp_process_status(s.f[1]), WISP_PROCESS_SIGNALED | SIGKILL);
    for (int i = 0; i < 2; i++) {
        CHECK(kill(pids[i], 0) < 0 && errno == ESRCH);
        CHECK(wisp_process_loop(s.p[i]) == NULL);
        wisp_process_release(s.p[i]);
        wisp_future_unref(s.f[i]);
    }
    CHECK(no_children());
    wisp_server_destroy(s.srv);
}

/* ------------------------------------------------ the helper child */

static int list_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 1;
    int self = dirfd(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || atoi(de->d_name) == self)
            continue;
        char path[300], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", de->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n > 0 ? n : 0] = '\0';
        printf("fd %s %s\n", de->d_name, target);
    }
    closedir(d);
    FILE *st = fopen("/proc/self/status", "r");
    char line[256];
    while (st && fgets(line, sizeof line, st))
        if (!strncmp(line, "SigBlk:", 7) || !strncmp(line, "SigIgn:", 7))
            fputs(line, stdout);
    if (st)
        fclose(st);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--fds") == 0)
        return list_fds();
    if (getenv("WISP_EMULATED")) {
        /* qemu-user runs posix_spawn's exec in a child it cannot report
         * from (a missing program exits 127 instead of failing the
         * spawn) and holds descriptors of its own in the process. */
        puts("SKIP: child processes under a user-mode emulator");
        return 77;
    }
    loop = wisp_loop_create();
    wisp_timer_init(loop, &wd);
    int fds = count_fds();
    setvbuf(stdout, NULL, _IONBF, 0);
    test_bad_input();
    fprintf(stderr, "%s done\n", "test_bad_input");
    test_missing_program();
    fprintf(stderr, "%s done\n", "test_missing_program");
    test_exit_codes();
    fprintf(stderr, "%s done\n", "test_exit_codes");
    test_stderr_apart();
    fprintf(stderr, "%s done\n", "test_stderr_apart");
    test_paused_until_exit();
    fprintf(stderr, "%s done\n", "test_paused_until_exit");
    test_env_cwd();
    fprintf(stderr, "%s done\n", "test_env_cwd");
    test_no_fd_leak();
    fprintf(stderr, "%s done\n", "test_no_fd_leak");
    test_cat();
    fprintf(stderr, "%s done\n", "test_cat");
    test_stdin_broken();
    fprintf(stderr, "%s done\n", "test_stdin_broken");
    test_kill_timeout();
    fprintf(stderr, "%s done\n", "test_kill_timeout");
    test_many();
    fprintf(stderr, "%s done\n", "test_many");
    test_release_inside();
    fprintf(stderr, "%s done\n", "test_release_inside");
    test_loop_destroyed();
    fprintf(stderr, "%s done\n", "test_loop_destroyed");
    test_server_stop();
    fprintf(stderr, "%s done\n", "test_server_stop");
    /* Let deferred frees run, then nothing of ours is left open. */
    spin();
    CHECK_EQ_INT(count_fds(), fds);
    wisp_loop_destroy(loop);
    CHECK(no_children());
    return t_done("proc_process");
}
