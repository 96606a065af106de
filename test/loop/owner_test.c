/* Thread-ownership checks: in debug builds a loop-affine call from a
 * thread that does not own the loop aborts with a message naming the
 * public function that was called (not an internal helper) and both
 * threads (DESIGN rule 1). Each case runs in a child process whose death
 * is the expected outcome.
 *
 * No sleeping: the loop thread signals that it runs (a task posted before
 * wisp_loop_run has run on it, so the thread owns the loop), and only
 * then does the intruder call in. */
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop/loop_int.h"
#include "test.h"
#include "wisp/future.h"
#include "wisp/process.h"
#include "wisp/server.h"

#ifdef WISP_OWNERSHIP_CHECKS
static wisp_loop_t *loop;
static wisp_timer_t timer;
static int which;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int running;
static wisp_res_t *held_res; /* a response handed to the intruder */

static void signal_running(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    running = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static void wait_running(void)
{
    pthread_mutex_lock(&mu);
    while (!running)
        pthread_cond_wait(&cv, &mu); /* the parent's meson timeout bounds it */
    pthread_mutex_unlock(&mu);
}

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
    } else if (which == 1) {
        wisp_future_t *f = wisp_future_create(loop);
        wisp_future_then(f, noop_then, NULL);
    } else if (which == 2) {
        wisp_future_t *f = wisp_future_create(loop);
        wisp_future_all(loop, &f, 1);
    } else if (which == 4) {
        const char *argv[] = {"true", NULL};
        wisp_process_opts_t o = {.argv = argv};
        wisp_process_t *p;
        wisp_process_spawn(loop, &o, &p);
    } else {
        wisp_res_send(held_res, 200, "text/plain", "x", 1);
    }
    return NULL;
}

static void *runner(void *arg)
{
    (void)arg;
    wisp_loop_run(loop);
    return NULL;
}

/* The handler keeps the response and tells the test; the intruder then
 * uses it from its own thread. */
static void keep(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    held_res = res;
    signal_running(NULL);
}

static void server_case(void)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 1;
    cfg.handle_signals = 0;
    wisp_server_t *srv = wisp_server_create(&cfg);
    if (!srv || wisp_server_route(srv, WISP_METHOD_GET, "/", keep, NULL,
                                  NULL) < 0 ||
        wisp_server_listen(srv) < 0 || wisp_server_start(srv) < 0)
        _exit(3);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(wisp_server_port(srv))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        _exit(4);
    const char *rq = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    if (send(fd, rq, strlen(rq), 0) < 0)
        _exit(5);
    wait_running(); /* the handler has the response */
}

/* Returns what the child wrote to stderr; *sig gets its fatal signal. */
static void run_case(int w, char *out, size_t cap, int *sig)
{
    int p[2];
    if (pipe(p) < 0)
        exit(2);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 2);
        which = w;
        if (w == 3) {
            server_case();
        } else {
            loop = wisp_loop_create();
            wisp_timer_init(loop, &timer);
            wisp_loop_post(loop, signal_running, NULL);
            pthread_t r;
            pthread_create(&r, NULL, runner, NULL);
            wait_running(); /* the loop runs: its thread owns it */
        }
        pthread_t i;
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
    static const char *const want[] = {"wisp_timer_start",
                                       "wisp_future_then",
                                       "wisp_future_all", "wisp_res_send",
                                       "wisp_process_spawn"};
    char out[1024];
    int sig;
    for (int w = 0; w < 5; w++) {
        run_case(w, out, sizeof out, &sig);
        CHECK_MSG(sig == SIGABRT, "case %s: signal %d", want[w], sig);
        char head[128];
        snprintf(head, sizeof head, "wisp: %s called on thread", want[w]);
        CHECK_MSG(strstr(out, head) && strstr(out, "owned by thread"),
                  "case %s: message: %s", want[w], out);
    }
    return t_done("owner");
}
#else
int main(void)
{
    printf("owner: skipped: ownership checks are compiled out in this "
           "build (NDEBUG or -Downership_checks=false), there is nothing "
           "to test\n");
    return 77; /* meson: skipped */
}
#endif
