/* The loop (src/loop/loop.c): deferred tasks run after I/O in FIFO order,
 * a task deferred from a task runs in the next iteration, break from
 * another thread, wisp_loop_current. */
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "loop/loop_int.h"
#include "test.h"

static int log_[32];
static int nlog;
static wisp_loop_t *L;

static void task(void *arg)
{
    log_[nlog++] = (int)(intptr_t)arg;
    if ((intptr_t)arg == 2)
        wisp_loop_defer(L, task, (void *)4);
    if ((intptr_t)arg == 4)
        wisp_loop_break(L);
}

static int iterations;
static void count_hook(wisp_loop_t *loop, void *arg)
{
    (void)loop;
    (void)arg;
    iterations++;
}

static void test_defer(void)
{
    L = wisp_loop_create();
    wisp__loop_set_hook(L, count_hook, NULL);
    nlog = 0;
    iterations = 0;
    wisp_loop_defer(L, task, (void *)1);
    wisp_loop_defer(L, task, (void *)2);
    wisp_loop_defer(L, task, (void *)3);
    CHECK(wisp_loop_current() == NULL);
    CHECK_EQ_INT(wisp_loop_run(L), 0);
    CHECK_EQ_INT(nlog, 4);
    CHECK_EQ_INT(log_[0], 1);
    CHECK_EQ_INT(log_[1], 2);
    CHECK_EQ_INT(log_[2], 3);
    CHECK_EQ_INT(log_[3], 4);
    CHECK_EQ_INT(iterations, 2); /* task 4 ran in the second iteration */
    wisp_loop_destroy(L);
}

static wisp_loop_t *seen_current;

/* Handshakes with the loop thread, no sleeping: the loop says it runs
 * (a task posted before wisp_loop_run), and that the breaker's task ran;
 * only then does the breaker call wisp_loop_break from its own thread. */
static pthread_mutex_t hs_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hs_cv = PTHREAD_COND_INITIALIZER;
static int hs_stage;

static void hs_signal(int stage)
{
    pthread_mutex_lock(&hs_mu);
    hs_stage = stage;
    pthread_cond_broadcast(&hs_cv);
    pthread_mutex_unlock(&hs_mu);
}

static void hs_wait(int stage)
{
    pthread_mutex_lock(&hs_mu);
    while (hs_stage < stage)
        pthread_cond_wait(&hs_cv, &hs_mu); /* meson's timeout bounds it */
    pthread_mutex_unlock(&hs_mu);
}

static void loop_running(void *arg)
{
    (void)arg;
    hs_signal(1);
}

static void check_current(void *arg)
{
    seen_current = wisp_loop_current();
    (void)arg;
    hs_signal(2);
}

static void *breaker(void *arg)
{
    hs_wait(1); /* the loop runs */
    wisp_loop_post(arg, check_current, NULL);
    hs_wait(2); /* a post from this thread woke it and ran */
    wisp_loop_break(arg);
    return NULL;
}

static void test_break_from_thread(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    CHECK_EQ_INT(wisp_loop_post(loop, loop_running, NULL), 0);
    pthread_t th;
    pthread_create(&th, NULL, breaker, loop);
    CHECK_EQ_INT(wisp_loop_run(loop), 0); /* waits until broken */
    pthread_join(th, NULL);
    CHECK(seen_current == loop);
    CHECK(wisp_loop_current() == NULL);
    wisp_loop_destroy(loop);
}

int main(void)
{
    test_defer();
    test_break_from_thread();
    return t_done("loop");
}
