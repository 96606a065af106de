/* Thread-ownership checks: in debug builds a loop-affine call from a
 * thread that does not own the loop aborts with a message naming the
 * function and both threads (DESIGN rule 1). Each case runs in a child
 * process whose death is the expected outcome. */
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop/loop_int.h"
#include "test.h"
#include "wisp/future.h"

#ifdef WISP_OWNERSHIP_CHECKS
static wisp_loop_t *loop;
static wisp_timer_t timer;
static int which;

static void noop_timer(wisp_timer_t *t, void *arg)
{
    (void)t;
    (void)arg;
}

static void noop_then(wisp_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
}

static void *intruder(void *arg)
{
    (void)arg;
    if (which == 0) {
        wisp_timer_start(&timer, 10, noop_timer, NULL);
    } else {
        wisp_future_t *f = wisp_future_create(loop);
        wisp_future_then(f, noop_then, NULL);
    }
    return NULL;
}

static void *runner(void *arg)
{
    (void)arg;
    wisp_loop_run(loop);
    return NULL;
}

/* Returns what the child wrote to stderr; *sig gets its fatal signal. */
static void run_case(int w, char *out, size_t cap, int *sig)
{
    int p[2];
    if (pipe(p) < 0)
        exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 2);
        which = w;
        loop = wisp_loop_create();
        wisp_timer_init(loop, &timer);
        pthread_t r, i;
        pthread_create(&r, NULL, runner, NULL);
        usleep(50000); /* the loop is running: its thread owns it */
        pthread_create(&i, NULL, intruder, NULL);
        pthread_join(i, NULL);
        _exit(0); /* not reached when the check works */
    }
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(p[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = 0;
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    *sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

int main(void)
{
    char out[1024];
    int sig;
    run_case(0, out, sizeof out, &sig);
    CHECK_EQ_INT(sig, SIGABRT);
    CHECK_MSG(strstr(out, "wisp_timer_start") && strstr(out, "owned by thread"),
              "message: %s", out);
    run_case(1, out, sizeof out, &sig);
    CHECK_EQ_INT(sig, SIGABRT);
    CHECK_MSG(strstr(out, "wisp_future_then") != NULL, "message: %s", out);
    return t_done("owner");
}
#else
int main(void)
{
    printf("owner: ownership checks compiled out in this build; skipped\n");
    return 77; /* meson: skipped */
}
#endif
