/* The worker pool (src/sched/pool.c): priorities and FIFO order, a full
 * queue rejects with -EAGAIN, threads grow to the maximum and shrink back
 * after keep-alive, results and errors reach the future, cancel before
 * run skips fn, shutdown drains or cancels within a deadline, values are
 * destroyed exactly once, and many producers at once (run under TSan in
 * CI).
 *
 * Futures post their settle notification to the owner loop, which holds a
 * reference until the loop runs it; so every test ends by destroying the
 * pool (no more posts), running the loop once (pump) and only then
 * destroying it. LeakSanitizer catches anything left over. */
#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "test.h"
#include "wisp/future.h"
#include "wisp/loop.h"
#include "wisp/pool.h"

/* ------------------------------------------------------------ helpers */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void on_break(void *arg)
{
    wisp_loop_break(arg);
}

/* Run one pass of `loop`: every settle notification posted so far runs
 * (and drops its reference on its future). */
static void pump(wisp_loop_t *loop)
{
    if (wisp_loop_post(loop, on_break, loop) == 0)
        wisp_loop_run(loop);
}

/* Poll until `f` settles; 0 on time, -1 after `ms`. */
static int wait_settled(wisp_future_t *f, unsigned ms)
{
    uint64_t end = now_ms() + ms;
    while (wisp_future_state(f) == WISP_FUTURE_PENDING) {
        if (now_ms() > end)
            return -1;
        sleep_ms(1);
    }
    return 0;
}

/* Threads of this process now (the kernel's view: a thread that has
 * returned is gone from it even before it is joined). */
/* Threads of this process, from /proc/self/task. Under qemu-user (a
 * cross build's tests, WISP_EMULATED set by test/meson.build) that lists
 * the emulator's own threads too, which come and go: then the counts are
 * not checked (the pool's own threads statistic still is). */
static int emulated;

static int count_tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    if (!d)
        return -1;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static wisp_pool_stats_t stats(wisp_pool_t *p)
{
    wisp_pool_stats_t s;
    wisp_pool_stats(p, &s);
    return s;
}

/* Poll the stats until `field` reaches `want`; 0 on time, -1 after 30 s. */
#define WAIT_STAT(p, field, want)                                           \
    wait_stat_((p), offsetof(wisp_pool_stats_t, field),                     \
               sizeof(((wisp_pool_stats_t *)0)->field), (want))

static int wait_stat_(wisp_pool_t *p, size_t off, size_t size, uint64_t want)
{
    uint64_t end = now_ms() + 30000; /* failure bound */
    for (;;) {
        wisp_pool_stats_t s = stats(p);
        const char *b = (const char *)&s + off;
        uint64_t v;
        if (size == sizeof(uint64_t)) {
            memcpy(&v, b, sizeof v);
        } else {
            uint32_t v32;
            memcpy(&v32, b, sizeof v32);
            v = v32;
        }
        if (v == want)
            return 0;
        if (now_ms() > end)
            return -1;
        sleep_ms(1);
    }
}

static wisp_pool_t *make_pool(unsigned min, unsigned max, uint32_t limit,
                              uint32_t keep_alive_ms)
{
    wisp_pool_config_t c;
    wisp_pool_config_init(&c);
    c.min_threads = min;
    c.max_threads = max;
    c.queue_limit = limit;
    c.keep_alive_ms = keep_alive_ms;
    wisp_pool_t *p = wisp_pool_create(&c);
    if (!p) {
        perror("wisp_pool_create");
        exit(2);
    }
    return p;
}

/* A gate: work items that wait until the test opens it, counting how many
 * have entered so the test knows which items a thread has taken. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
    int entered;
} gate;

static void gate_init(gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = 0;
    g->entered = 0;
}

static void gate_fini(gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static int gate_fn(void *arg, void **value, wisp_free_cb *destroy)
{
    gate *g = arg;
    (void)value;
    (void)destroy;
    pthread_mutex_lock(&g->mu);
    g->entered++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
    return 0;
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Wait until `n` items are inside the gate; 0 on time, -1 after 30 s. */
static int gate_wait(gate *g, int n)
{
    int ok = 0;
    uint64_t end = now_ms() + 30000; /* failure bound */
    pthread_mutex_lock(&g->mu);
    while (g->entered < n && now_ms() < end) {
        pthread_mutex_unlock(&g->mu);
        sleep_ms(1);
        pthread_mutex_lock(&g->mu);
    }
    ok = g->entered >= n ? 0 : -1;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

/* Records the order items ran in. */
typedef struct trace {
    pthread_mutex_t mu;
    int tags[32];
    int n;
} trace;

typedef struct tagged {
    trace *t;
    int tag;
} tagged;

static int tag_fn(void *arg, void **value, wisp_free_cb *destroy)
{
    tagged *a = arg;
    (void)value;
    (void)destroy;
    pthread_mutex_lock(&a->t->mu);
    if (a->t->n < 32)
        a->t->tags[a->t->n++] = a->tag;
    pthread_mutex_unlock(&a->t->mu);
    return 0;
}

static _Atomic int calls;

static int count_fn(void *arg, void **value, wisp_free_cb *destroy)
{
    (void)arg;
    (void)value;
    (void)destroy;
    atomic_fetch_add(&calls, 1);
    return 0;
}

static _Atomic int destroyed;

static void destroy_int(void *v)
{
    atomic_fetch_add(&destroyed, 1);
    free(v);
}

/* Resolves with a heap int holding `*(int *)arg`, freed by destroy_int. */
static int value_fn(void *arg, void **value, wisp_free_cb *destroy)
{
    int *v = malloc(sizeof *v);
    if (!v)
        return -ENOMEM;
    *v = *(int *)arg;
    *value = v;
    *destroy = destroy_int;
    return 0;
}

static int fail_fn(void *arg, void **value, wisp_free_cb *destroy)
{
    /* A value set before failing is the fn's business: wisp must neither
     * deliver nor free it. */
    static int sentinel;
    *value = &sentinel;
    *destroy = destroy_int;
    return *(int *)arg;
}

static int sleep_fn(void *arg, void **value, wisp_free_cb *destroy)
{
    (void)value;
    (void)destroy;
    sleep_ms(*(unsigned *)arg);
    return 0;
}

/* ------------------------------------------------------------ tests */

static void test_config(void)
{
    wisp_pool_config_t c;
    wisp_pool_config_init(&c);
    CHECK_EQ_INT(c.min_threads, 1);
    CHECK(c.max_threads >= 4);
    CHECK(c.max_threads >= 2 * (unsigned)sysconf(_SC_NPROCESSORS_ONLN));
    CHECK_EQ_INT(c.queue_limit, 1024);
    CHECK_EQ_INT(c.keep_alive_ms, 10000);
    CHECK_EQ_INT(c.nice, 10);
    CHECK_EQ_INT(c.stack_size, 0);

    static const struct {
        const char *name;
        unsigned min, max;
        uint32_t limit;
        int nice;
        size_t stack;
    } bad[] = {
        {"min above max is refused", 3, 2, 16, 10, 0},
        {"max 0 is refused", 0, 0, 16, 10, 0},
        {"queue_limit 0 is refused", 1, 2, 0, 10, 0},
        {"negative nice is refused", 1, 2, 16, -1, 0},
        {"nice above 19 is refused", 1, 2, 16, 20, 0},
        {"a stack below PTHREAD_STACK_MIN is refused", 1, 2, 16, 10, 1},
        {"an absurd stack size is refused", 1, 2, 16, 10, SIZE_MAX - 1},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        wisp_pool_config_t b = c;
        b.min_threads = bad[i].min;
        b.max_threads = bad[i].max;
        b.queue_limit = bad[i].limit;
        b.nice = bad[i].nice;
        b.stack_size = bad[i].stack;
        errno = 0;
        wisp_pool_t *p = wisp_pool_create(&b);
        CHECK_MSG(p == NULL && errno == EINVAL, "%s", bad[i].name);
        wisp_pool_destroy(p);
    }

    /* NULL config: defaults, min threads started at once. */
    wisp_pool_t *p = wisp_pool_create(NULL);
    CHECK(p != NULL);
    if (p) {
        wisp_pool_stats_t s = stats(p);
        CHECK_EQ_INT(s.threads, 1);
        CHECK_EQ_INT(s.peak_threads, 1);
        CHECK_EQ_INT(s.submitted, 0);
    }
    wisp_pool_destroy(p);
    wisp_pool_destroy(NULL); /* no-op */

    /* min 0: no thread until work comes, then one. */
    wisp_loop_t *loop = wisp_loop_create();
    p = make_pool(0, 2, 8, 50);
    CHECK_EQ_INT(stats(p).threads, 0);
    atomic_store(&calls, 0);
    wisp_future_t *f = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, count_fn,
                                        NULL);
    CHECK_EQ_INT(wait_settled(f, 30000), 0);
    CHECK_EQ_INT(wisp_future_state(f), WISP_FUTURE_RESOLVED);
    CHECK_EQ_INT(atomic_load(&calls), 1);
    CHECK_EQ_INT(stats(p).peak_threads, 1);
    CHECK_EQ_INT(WAIT_STAT(p, threads, 0), 0); /* above min 0: leaves */
    wisp_future_unref(f);
    wisp_pool_destroy(p);
    pump(loop);
    wisp_loop_destroy(loop);
}

static void test_bad_args(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_pool_t *p = make_pool(1, 1, 8, 1000);
    wisp_future_t *f;

    f = wisp_pool_submit(p, WISP_PRIO_COUNT, loop, count_fn, NULL);
    CHECK(f && wisp_future_state(f) == WISP_FUTURE_FAILED);
    CHECK(f && wisp_future_error(f) == -EINVAL);
    wisp_future_unref(f);

    f = wisp_pool_submit(p, (wisp_prio_t)-1, loop, count_fn, NULL);
    CHECK(f && wisp_future_error(f) == -EINVAL);
    wisp_future_unref(f);

    f = wisp_pool_submit(p, WISP_PRIO_LOW, loop, NULL, NULL);
    CHECK(f && wisp_future_error(f) == -EINVAL);
    wisp_future_unref(f);

    f = wisp_pool_submit(NULL, WISP_PRIO_LOW, loop, count_fn, NULL);
    CHECK(f && wisp_future_error(f) == -EINVAL);
    wisp_future_unref(f);

    errno = 0;
    f = wisp_pool_submit(p, WISP_PRIO_LOW, NULL, count_fn, NULL);
    CHECK(f == NULL && errno == EINVAL); /* no loop, no future */

    /* Programming errors are not load: not counted as rejected. */
    wisp_pool_stats_t s = stats(p);
    CHECK_EQ_INT(s.submitted, 0);
    CHECK_EQ_INT(s.rejected, 0);

    CHECK_EQ_INT(wisp_pool_shutdown(NULL, 1, 0), -EINVAL);
    wisp_pool_destroy(p);
    pump(loop);
    wisp_loop_destroy(loop);
}

static void test_priorities(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_pool_t *p = make_pool(1, 1, 64, 1000);
    gate g;
    gate_init(&g);
    trace t = {.n = 0};
    pthread_mutex_init(&t.mu, NULL);

    wisp_future_t *gf = wisp_pool_submit(p, WISP_PRIO_LOW, loop, gate_fn, &g);
    CHECK_EQ_INT(gate_wait(&g, 1), 0);

    /* Submitted lowest first, two per priority: tag = 10 * prio + n. */
    static const wisp_prio_t order[] = {
        WISP_PRIO_LOW, WISP_PRIO_NORMAL, WISP_PRIO_HIGH, WISP_PRIO_URGENT,
        WISP_PRIO_LOW, WISP_PRIO_NORMAL, WISP_PRIO_HIGH, WISP_PRIO_URGENT,
    };
    enum { N = sizeof order / sizeof order[0] };
    tagged args[N];
    wisp_future_t *fs[N];
    for (int i = 0; i < N; i++) {
        args[i].t = &t;
        args[i].tag = 10 * (int)order[i] + i / 4;
        fs[i] = wisp_pool_submit(p, order[i], loop, tag_fn, &args[i]);
        CHECK(fs[i] && wisp_future_state(fs[i]) == WISP_FUTURE_PENDING);
    }
    CHECK_EQ_INT(stats(p).queued, N);
    pthread_mutex_lock(&t.mu);
    CHECK_EQ_INT(t.n, 0); /* nothing overtakes the running gate */
    pthread_mutex_unlock(&t.mu);

    gate_open(&g);
    for (int i = 0; i < N; i++)
        CHECK_EQ_INT(wait_settled(fs[i], 30000), 0);

    /* URGENT, HIGH, NORMAL, LOW; within a priority, submission order. */
    static const int want[N] = {0, 1, 10, 11, 20, 21, 30, 31};
    pthread_mutex_lock(&t.mu);
    CHECK_EQ_INT(t.n, N);
    for (int i = 0; i < N && i < t.n; i++)
        CHECK_MSG(t.tags[i] == want[i], "position %d: tag %d, want %d", i,
                  t.tags[i], want[i]);
    pthread_mutex_unlock(&t.mu);

    wisp_pool_destroy(p);
    for (int i = 0; i < N; i++)
        wisp_future_unref(fs[i]);
    wisp_future_unref(gf);
    pump(loop);
    wisp_loop_destroy(loop);
    pthread_mutex_destroy(&t.mu);
    gate_fini(&g);
}

/* Many items of one priority keep their order (a longer FIFO run). */
static void test_fifo(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_pool_t *p = make_pool(1, 1, 64, 1000);
    gate g;
    gate_init(&g);
    trace t = {.n = 0};
    pthread_mutex_init(&t.mu, NULL);

    wisp_future_t *gf = wisp_pool_submit(p, WISP_PRIO_URGENT, loop, gate_fn,
                                         &g);
    CHECK_EQ_INT(gate_wait(&g, 1), 0);
    enum { N = 20 };
    tagged args[N];
    wisp_future_t *fs[N];
    for (int i = 0; i < N; i++) {
        args[i].t = &t;
        args[i].tag = i;
        fs[i] = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, tag_fn, &args[i]);
    }
    gate_open(&g);
    for (int i = 0; i < N; i++)
        CHECK_EQ_INT(wait_settled(fs[i], 30000), 0);
    pthread_mutex_lock(&t.mu);
    CHECK_EQ_INT(t.n, N);
    for (int i = 0; i < N && i < t.n; i++)
        CHECK_EQ_INT(t.tags[i], i);
    pthread_mutex_unlock(&t.mu);

    wisp_pool_destroy(p);
    for (int i = 0; i < N; i++)
        wisp_future_unref(fs[i]);
    wisp_future_unref(gf);
    pump(loop);
    wisp_loop_destroy(loop);
    pthread_mutex_destroy(&t.mu);
    gate_fini(&g);
}

static void test_reject_full(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_pool_t *p = make_pool(1, 1, 4, 1000);
    gate g;
    gate_init(&g);
    atomic_store(&calls, 0);

    wisp_future_t *gf = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, gate_fn,
                                         &g);
    CHECK_EQ_INT(gate_wait(&g, 1), 0); /* running: not counted as queued */

    wisp_future_t *fs[4];
    for (int i = 0; i < 4; i++) {
        fs[i] = wisp_pool_submit(p, (wisp_prio_t)i, loop, count_fn, NULL);
        CHECK(fs[i] && wisp_future_state(fs[i]) == WISP_FUTURE_PENDING);
    }
    /* The limit counts across priorities: even URGENT is refused. */
    wisp_future_t *over = wisp_pool_submit(p, WISP_PRIO_URGENT, loop,
                                           count_fn, NULL);
    CHECK(over != NULL);
    CHECK(over && wisp_future_state(over) == WISP_FUTURE_FAILED);
    CHECK(over && wisp_future_error(over) == -EAGAIN);
    wisp_pool_stats_t s = stats(p);
    CHECK_EQ_INT(s.rejected, 1);
    CHECK_EQ_INT(s.submitted, 5);
    CHECK_EQ_INT(s.queued, 4);
    CHECK_EQ_INT(s.running, 1);

    /* A cancelled item does not hold its slot: a full queue sweeps it. */
    CHECK_EQ_INT(wisp_future_cancel(fs[1]), 0);
    wisp_future_t *again = wisp_pool_submit(p, WISP_PRIO_LOW, loop,
                                            count_fn, NULL);
    CHECK(again && wisp_future_state(again) == WISP_FUTURE_PENDING);
    s = stats(p);
    CHECK_EQ_INT(s.rejected, 1);
    CHECK_EQ_INT(s.cancelled, 1);
    CHECK_EQ_INT(s.queued, 4);

    gate_open(&g);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(wait_settled(fs[i], 30000), 0);
    CHECK_EQ_INT(wait_settled(again, 30000), 0);
    CHECK_EQ_INT(wisp_future_state(again), WISP_FUTURE_RESOLVED);
    CHECK_EQ_INT(atomic_load(&calls), 4); /* 3 of fs, and again */
    s = stats(p);
    CHECK_EQ_INT(s.completed, 5);
    CHECK_EQ_INT(s.queued, 0);

    wisp_pool_destroy(p);
    for (int i = 0; i < 4; i++)
        wisp_future_unref(fs[i]);
    wisp_future_unref(over);
    wisp_future_unref(again);
    wisp_future_unref(gf);
    pump(loop);
    wisp_loop_destroy(loop);
    gate_fini(&g);
}

static void test_grow_shrink(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    int tasks = count_tasks();
    wisp_pool_t *p = make_pool(1, 4, 64, 100);
    gate g;
    gate_init(&g);
    CHECK_EQ_INT(stats(p).threads, 1);

    wisp_future_t *fs[5];
    for (int i = 0; i < 4; i++)
        fs[i] = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, gate_fn, &g);
    CHECK_EQ_INT(gate_wait(&g, 4), 0); /* four at once: four threads */
    wisp_pool_stats_t s = stats(p);
    CHECK_EQ_INT(s.threads, 4);
    CHECK_EQ_INT(s.peak_threads, 4);
    CHECK_EQ_INT(s.running, 4);

    /* At the maximum, more work waits instead of starting a thread. */
    fs[4] = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, gate_fn, &g);
    s = stats(p);
    CHECK_EQ_INT(s.threads, 4);
    CHECK_EQ_INT(s.queued, 1);

    uint64_t t0 = now_ms();
    gate_open(&g);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(wait_settled(fs[i], 30000), 0);
    /* Not before keep-alive: the idle threads are still there. */
    CHECK(stats(p).threads > 1 || now_ms() - t0 >= 100);
    CHECK_EQ_INT(WAIT_STAT(p, threads, 1), 0);
    CHECK(now_ms() - t0 >= 90);
    /* And never below the minimum. */
    sleep_ms(300);
    s = stats(p);
    CHECK_EQ_INT(s.threads, 1);
    CHECK_EQ_INT(s.peak_threads, 4);
    CHECK_EQ_INT(s.completed, 5);
    if (!emulated)
        CHECK_EQ_INT(count_tasks(), tasks + 1); /* the others really left */

    /* It grows again after shrinking (exited threads were reaped). */
    gate g2;
    gate_init(&g2);
    wisp_future_t *more[2];
    for (int i = 0; i < 2; i++)
        more[i] = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, gate_fn, &g2);
    CHECK_EQ_INT(gate_wait(&g2, 2), 0);
    CHECK_EQ_INT(stats(p).threads, 2);
    gate_open(&g2);

    wisp_pool_destroy(p);
    if (!emulated)
        CHECK_EQ_INT(count_tasks(), tasks);
    for (int i = 0; i < 5; i++)
        wisp_future_unref(fs[i]);
    for (int i = 0; i < 2; i++)
        wisp_future_unref(more[i]);
    pump(loop);
    wisp_loop_destroy(loop);
    gate_fini(&g);
    gate_fini(&g2);
}

/* What fn sees on a pool thread: asynchronous signals blocked (the
 * server's signalfd must get them), the thread's name, shutdown refused
 * (it would wait for itself), and submit allowed. */
typedef struct inside {
    wisp_pool_t *pool;
    wisp_loop_t *loop;
    int sigint_blocked, sigterm_blocked, sigsegv_blocked;
    char name[16];
    int shutdown_ret;
    wisp_future_t *nested;
} inside;

static void unref_future(void *f)
{
    wisp_future_unref(f);
}

static int inside_fn(void *arg, void **value, wisp_free_cb *destroy)
{
    inside *in = arg;
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    in->sigint_blocked = sigismember(&cur, SIGINT);
    in->sigterm_blocked = sigismember(&cur, SIGTERM);
    in->sigsegv_blocked = sigismember(&cur, SIGSEGV);
    pthread_getname_np(pthread_self(), in->name, sizeof in->name);
    in->shutdown_ret = wisp_pool_shutdown(in->pool, 0, 0);
    in->nested = wisp_pool_submit(in->pool, WISP_PRIO_HIGH, in->loop,
                                  count_fn, NULL);
    /* Hand the nested future over as the value: freed with ours. */
    *value = in->nested;
    *destroy = unref_future;
    return 0;
}

static void test_pool_thread(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    int tasks = count_tasks();
    wisp_pool_t *p = make_pool(3, 4, 8, 1000);
    if (!emulated)
        CHECK_EQ_INT(count_tasks(), tasks + 3); /* the minimum, started */
    atomic_store(&calls, 0);
    inside in = {.pool = p, .loop = loop};
    wisp_future_t *f = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop,
                                        inside_fn, &in);
    CHECK_EQ_INT(wait_settled(f, 30000), 0);
    CHECK_EQ_INT(wisp_future_state(f), WISP_FUTURE_RESOLVED);
    CHECK(in.sigint_blocked == 1 && in.sigterm_blocked == 1);
    CHECK_EQ_INT(in.sigsegv_blocked, 0);
    CHECK_STRN(in.name, strlen(in.name), "wisp-pool");
    CHECK_EQ_INT(in.shutdown_ret, -EDEADLK);
    CHECK(in.nested != NULL && wisp_future_value(f) == in.nested);
    CHECK(in.nested && wait_settled(in.nested, 30000) == 0);
    CHECK_EQ_INT(atomic_load(&calls), 1);
    wisp_pool_stats_t s = stats(p);
    CHECK_EQ_INT(s.submitted, 2); /* the refused shutdown stopped nothing */
    CHECK_EQ_INT(s.completed, 2);

    /* The submitting thread's own mask is left as it was. */
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    CHECK_EQ_INT(sigismember(&cur, SIGINT), 0);

    wisp_pool_destroy(p);
    /* destroy returns only once every pool thread is gone. */
    if (!emulated)
        CHECK_EQ_INT(count_tasks(), tasks);
    wisp_future_unref(f);
    pump(loop);
    wisp_loop_destroy(loop);
}

/* What a pool thread sees of itself: its nice value and stack size, and
 * (when `nest` is set) the same for work it submits, which may start a
 * new thread from this one. */
typedef struct self_view {
    wisp_pool_t *pool;
    wisp_loop_t *loop;
    int nest;
    int nice;
    size_t stack;
    wisp_future_t *nested;
} self_view;

static int view_fn(void *arg, void **value, wisp_free_cb *destroy)
{
    (void)destroy;
    self_view *v = arg;
    errno = 0;
    v->nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstacksize(&a, &v->stack);
        pthread_attr_destroy(&a);
    }
    if (v->nest) {
        self_view *inner = v + 1;
        v->nested = wisp_pool_submit(v->pool, WISP_PRIO_NORMAL, v->loop,
                                     view_fn, inner);
        /* Keep this thread busy until the nested item has run, so that
         * it ran on a thread started from here. */
        while (v->nested &&
               wisp_future_state(v->nested) == WISP_FUTURE_PENDING)
            sleep_ms(1);
    }
    *value = v;
    return 0;
}

static void test_nice_and_stack(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    errno = 0;
    int base = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    CHECK_EQ_INT(errno, 0);

    /* Default: 10 above the creator, also on a thread started by a pool
     * thread (which itself runs niced: the value is absolute, not added
     * again); the libc's default stack. */
    wisp_pool_config_t c;
    wisp_pool_config_init(&c);
    c.min_threads = 1;
    c.max_threads = 2;
    wisp_pool_t *p = wisp_pool_create(&c);
    CHECK(p != NULL);
    self_view v[2] = {{.pool = p, .loop = loop, .nest = 1, .nice = -99},
                      {.pool = p, .loop = loop, .nice = -99}};
    wisp_future_t *f = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, view_fn,
                                        &v[0]);
    CHECK_EQ_INT(wait_settled(f, 30000), 0);
    CHECK(v[0].nested && wait_settled(v[0].nested, 30000) == 0);
    int want = base + 10 > 19 ? 19 : base + 10;
    CHECK_EQ_INT(v[0].nice, want);
    CHECK_EQ_INT(v[1].nice, want);
    CHECK_EQ_INT(stats(p).peak_threads, 2); /* the nested one had its own */
    /* The creating thread is left alone. */
    CHECK_EQ_INT(getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid)), base);
    wisp_future_unref(v[0].nested);
    wisp_future_unref(f);
    wisp_pool_destroy(p);

    /* nice 0: the creator's priority; a 256 KiB stack (rounded to pages,
     * so at least that, and far from glibc's 8 MiB default). */
    c.nice = 0;
    c.stack_size = 256 * 1024 + 1;
    c.min_threads = 0;
    c.max_threads = 1;
    p = wisp_pool_create(&c);
    CHECK(p != NULL);
    self_view w = {.pool = p, .loop = loop, .nice = -99};
    f = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, view_fn, &w);
    CHECK_EQ_INT(wait_settled(f, 30000), 0);
    CHECK_EQ_INT(w.nice, base);
    CHECK_MSG(w.stack >= 256 * 1024 + 4096 && w.stack < 1024 * 1024,
              "stack %zu", w.stack);
    wisp_future_unref(f);
    wisp_pool_destroy(p);
    pump(loop);
    wisp_loop_destroy(loop);
}

static void test_results(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_pool_t *p = make_pool(1, 2, 16, 1000);
    atomic_store(&destroyed, 0);

    int v = 42, eio = -EIO, positive = 7, eperm = -EPERM;
    unsigned nap = 2;
    wisp_future_t *ok = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, value_fn,
                                         &v);
    wisp_future_t *bad = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, fail_fn,
                                          &eio);
    wisp_future_t *pos = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, fail_fn,
                                          &positive);
    wisp_future_t *perm = wisp_pool_submit(p, WISP_PRIO_HIGH, loop, fail_fn,
                                           &eperm);
    wisp_future_t *slow = wisp_pool_submit(p, WISP_PRIO_LOW, loop, sleep_fn,
                                           &nap);
    CHECK_EQ_INT(wait_settled(ok, 30000), 0);
    CHECK_EQ_INT(wait_settled(bad, 30000), 0);
    CHECK_EQ_INT(wait_settled(pos, 30000), 0);
    CHECK_EQ_INT(wait_settled(perm, 30000), 0);
    CHECK_EQ_INT(wait_settled(slow, 30000), 0);

    CHECK_EQ_INT(wisp_future_state(ok), WISP_FUTURE_RESOLVED);
    CHECK_EQ_INT(wisp_future_error(ok), 0);
    int *got = wisp_future_value(ok);
    CHECK(got && *got == 42);
    CHECK_EQ_INT(wisp_future_state(bad), WISP_FUTURE_FAILED);
    CHECK_EQ_INT(wisp_future_error(bad), -EIO);
    CHECK(wisp_future_value(bad) == NULL);
    CHECK_EQ_INT(wisp_future_error(pos), -EIO); /* positive: clamped */
    CHECK_EQ_INT(wisp_future_error(perm), -EPERM);
    CHECK_EQ_INT(wisp_future_state(slow), WISP_FUTURE_RESOLVED);
    CHECK(wisp_future_value(slow) == NULL);

    /* Counted before the future settles, so already visible here. */
    wisp_pool_stats_t s = stats(p);
    CHECK_EQ_INT(s.submitted, 5);
    CHECK_EQ_INT(s.completed, 2);
    CHECK_EQ_INT(s.failed, 3);
    CHECK_EQ_INT(s.rejected, 0);
    CHECK_EQ_INT(s.cancelled, 0);
    CHECK_EQ_INT(s.running, 0);
    CHECK(s.busy_ns >= 2000000u); /* the 2 ms nap at least */

    wisp_pool_destroy(p);
    pump(loop);
    CHECK_EQ_INT(atomic_load(&destroyed), 0); /* ok still referenced */
    wisp_future_unref(ok);
    wisp_future_unref(bad);
    wisp_future_unref(pos);
    wisp_future_unref(perm);
    wisp_future_unref(slow);
    /* ok's value once; failed fns' values never (they are not wisp's). */
    CHECK_EQ_INT(atomic_load(&destroyed), 1);
    wisp_loop_destroy(loop);
}

static void test_cancel_before_run(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_pool_t *p = make_pool(1, 1, 16, 1000);
    gate g;
    gate_init(&g);
    atomic_store(&calls, 0);
    atomic_store(&destroyed, 0);

    wisp_future_t *gf = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, gate_fn,
                                         &g);
    CHECK_EQ_INT(gate_wait(&g, 1), 0);
    wisp_future_t *f = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, count_fn,
                                        NULL);
    int v = 1;
    wisp_future_t *fv = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop,
                                         value_fn, &v);
    wisp_future_t *after = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop,
                                            count_fn, NULL);
    CHECK_EQ_INT(wisp_future_cancel(f), 0);
    CHECK_EQ_INT(wisp_future_cancel(fv), 0);
    CHECK_EQ_INT(wisp_future_error(f), -ECANCELED);

    gate_open(&g);
    CHECK_EQ_INT(wait_settled(after, 30000), 0);
    CHECK_EQ_INT(WAIT_STAT(p, cancelled, 2), 0);
    CHECK_EQ_INT(atomic_load(&calls), 1); /* only `after` ran */
    wisp_pool_stats_t s = stats(p);
    CHECK_EQ_INT(s.completed, 2); /* gate and after */
    CHECK_EQ_INT(s.queued, 0);
    CHECK_EQ_INT(wisp_future_error(f), -ECANCELED);

    wisp_pool_destroy(p);
    wisp_future_unref(gf);
    wisp_future_unref(f);
    wisp_future_unref(fv);
    wisp_future_unref(after);
    pump(loop);
    CHECK_EQ_INT(atomic_load(&destroyed), 0); /* value_fn never ran */
    wisp_loop_destroy(loop);
    gate_fini(&g);
}

/* Opens a gate from its own thread, a little later (whenever it runs:
 * nothing depends on how much later). */
static void *open_later(void *arg)
{
    sleep_ms(30);
    gate_open(arg);
    return NULL;
}

static void test_shutdown_drain(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_pool_t *p = make_pool(1, 1, 16, 1000);
    gate g;
    gate_init(&g);
    atomic_store(&calls, 0);

    wisp_future_t *gf = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, gate_fn,
                                         &g);
    CHECK_EQ_INT(gate_wait(&g, 1), 0);
    wisp_future_t *fs[3];
    for (int i = 0; i < 3; i++)
        fs[i] = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, count_fn, NULL);

    /* The gate holds the only thread: a zero deadline passes at once, but
     * accepting stops and the drain goes on. */
    CHECK_EQ_INT(wisp_pool_shutdown(p, 1, 0), -ETIMEDOUT);
    wisp_future_t *late = wisp_pool_submit(p, WISP_PRIO_URGENT, loop,
                                           count_fn, NULL);
    CHECK(late && wisp_future_error(late) == -ECANCELED);
    wisp_pool_stats_t s = stats(p);
    CHECK_EQ_INT(s.rejected, 1);
    CHECK_EQ_INT(s.queued, 3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(wisp_future_state(fs[i]), WISP_FUTURE_PENDING);

    pthread_t opener;
    pthread_create(&opener, NULL, open_later, &g);
    CHECK_EQ_INT(wisp_pool_shutdown(p, 1, 30000), 0); /* twice: harmless */
    pthread_join(opener, NULL);
    for (int i = 0; i < 3; i++)
        CHECK_EQ_INT(wisp_future_state(fs[i]), WISP_FUTURE_RESOLVED);
    CHECK_EQ_INT(atomic_load(&calls), 3);
    s = stats(p);
    CHECK_EQ_INT(s.threads, 0);
    CHECK_EQ_INT(s.completed, 4);
    CHECK_EQ_INT(s.cancelled, 0);
    CHECK_EQ_INT(wisp_pool_shutdown(p, 0, 0), 0); /* nothing left to wait */

    wisp_pool_destroy(p);
    for (int i = 0; i < 3; i++)
        wisp_future_unref(fs[i]);
    wisp_future_unref(gf);
    wisp_future_unref(late);
    pump(loop);
    wisp_loop_destroy(loop);
    gate_fini(&g);
}

static void test_shutdown_cancel(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_pool_t *p = make_pool(1, 1, 16, 1000);
    gate g;
    gate_init(&g);
    atomic_store(&calls, 0);
    atomic_store(&destroyed, 0);

    wisp_future_t *gf = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, gate_fn,
                                         &g);
    CHECK_EQ_INT(gate_wait(&g, 1), 0);
    wisp_future_t *fs[3];
    for (int i = 0; i < 3; i++)
        fs[i] = wisp_pool_submit(p, (wisp_prio_t)i, loop, count_fn, NULL);
    int v = 5;
    wisp_future_t *fv = wisp_pool_submit(p, WISP_PRIO_LOW, loop, value_fn,
                                         &v);

    CHECK_EQ_INT(wisp_pool_shutdown(p, 0, 0), -ETIMEDOUT);
    /* Cancelled before shutdown returned. */
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(wisp_future_state(fs[i]), WISP_FUTURE_FAILED);
        CHECK_EQ_INT(wisp_future_error(fs[i]), -ECANCELED);
    }
    CHECK_EQ_INT(wisp_future_error(fv), -ECANCELED);
    wisp_pool_stats_t s = stats(p);
    CHECK_EQ_INT(s.cancelled, 4);
    CHECK_EQ_INT(s.queued, 0);
    CHECK_EQ_INT(s.running, 1);
    /* Running work is not interrupted. */
    CHECK_EQ_INT(wisp_future_state(gf), WISP_FUTURE_PENDING);

    wisp_future_t *late = wisp_pool_submit(p, WISP_PRIO_URGENT, loop,
                                           count_fn, NULL);
    CHECK(late && wisp_future_error(late) == -ECANCELED);

    gate_open(&g);
    CHECK_EQ_INT(wisp_pool_shutdown(p, 0, 30000), 0);
    CHECK_EQ_INT(wisp_future_state(gf), WISP_FUTURE_RESOLVED);
    CHECK_EQ_INT(atomic_load(&calls), 0); /* no queued fn ever ran */
    s = stats(p);
    CHECK_EQ_INT(s.completed, 1);
    CHECK_EQ_INT(s.rejected, 1);
    CHECK_EQ_INT(s.threads, 0);

    wisp_pool_destroy(p);
    for (int i = 0; i < 3; i++)
        wisp_future_unref(fs[i]);
    wisp_future_unref(fv);
    wisp_future_unref(gf);
    wisp_future_unref(late);
    pump(loop);
    CHECK_EQ_INT(atomic_load(&destroyed), 0);
    wisp_loop_destroy(loop);
    gate_fini(&g);
}

/* destroy without shutdown cancels what is queued and waits for the
 * running work. */
static void test_destroy_cancels(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_pool_t *p = make_pool(1, 1, 16, 1000);
    gate g;
    gate_init(&g);
    atomic_store(&calls, 0);

    wisp_future_t *gf = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, gate_fn,
                                         &g);
    CHECK_EQ_INT(gate_wait(&g, 1), 0);
    wisp_future_t *f = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, count_fn,
                                        NULL);
    pthread_t opener;
    pthread_create(&opener, NULL, open_later, &g);
    wisp_pool_destroy(p);
    pthread_join(opener, NULL);
    CHECK_EQ_INT(wisp_future_state(gf), WISP_FUTURE_RESOLVED);
    CHECK_EQ_INT(wisp_future_error(f), -ECANCELED);
    CHECK_EQ_INT(atomic_load(&calls), 0);

    wisp_future_unref(gf);
    wisp_future_unref(f);
    pump(loop);
    wisp_loop_destroy(loop);
    gate_fini(&g);
}

static void test_shutdown_deadline(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_pool_t *p = make_pool(1, 2, 16, 1000);
    gate g;
    gate_init(&g);

    /* A job that runs until the test lets it go: the deadline passes
     * with it still running, however slow the machine. */
    wisp_future_t *f = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, gate_fn,
                                        &g);
    CHECK_EQ_INT(gate_wait(&g, 1), 0);
    uint64_t t1 = now_ms();
    CHECK_EQ_INT(wisp_pool_shutdown(p, 1, 50), -ETIMEDOUT);
    uint64_t t2 = now_ms();
    CHECK_MSG(t2 - t1 >= 45, "returned after %llu ms",
              (unsigned long long)(t2 - t1));
    CHECK_EQ_INT(wisp_future_state(f), WISP_FUTURE_PENDING);

    /* Destroy waits for the running job, opened from another thread at
     * any time: the future has settled when it returns. */
    pthread_t opener;
    pthread_create(&opener, NULL, open_later, &g);
    wisp_pool_destroy(p);
    CHECK_EQ_INT(wisp_future_state(f), WISP_FUTURE_RESOLVED);
    pthread_join(opener, NULL);
    wisp_future_unref(f);
    pump(loop);
    wisp_loop_destroy(loop);
    gate_fini(&g);
}

/* Sets *value with a destructor, but only after the test has cancelled
 * the future (gate), so the result arrives late. */
typedef struct late_arg {
    gate g;
    int v;
} late_arg;

static int late_fn(void *arg, void **value, wisp_free_cb *destroy)
{
    late_arg *a = arg;
    gate_fn(&a->g, NULL, NULL);
    return value_fn(&a->v, value, destroy);
}

static void test_destroy_once(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_pool_t *p = make_pool(1, 4, 64, 1000);
    atomic_store(&destroyed, 0);

    /* Resolved values: destroyed by the last unref, once each. */
    enum { N = 16 };
    int vals[N];
    wisp_future_t *fs[N];
    for (int i = 0; i < N; i++) {
        vals[i] = i;
        fs[i] = wisp_pool_submit(p, (wisp_prio_t)(i % 4), loop, value_fn,
                                 &vals[i]);
    }
    for (int i = 0; i < N; i++) {
        CHECK_EQ_INT(wait_settled(fs[i], 30000), 0);
        int *got = wisp_future_value(fs[i]);
        CHECK(got && *got == i);
    }
    CHECK_EQ_INT(atomic_load(&destroyed), 0);

    /* Cancelled while fn runs: the late value is destroyed at once by the
     * pool thread's resolve, never delivered. */
    late_arg la;
    gate_init(&la.g);
    la.v = 99;
    wisp_future_t *lf = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, late_fn,
                                         &la);
    CHECK_EQ_INT(gate_wait(&la.g, 1), 0);
    CHECK_EQ_INT(wisp_future_cancel(lf), 0);
    gate_open(&la.g);
    uint64_t end = now_ms() + 30000; /* failure bound */
    while (atomic_load(&destroyed) < 1 && now_ms() < end)
        sleep_ms(1);
    CHECK_EQ_INT(atomic_load(&destroyed), 1);
    CHECK_EQ_INT(wisp_future_error(lf), -ECANCELED);
    CHECK(wisp_future_value(lf) == NULL);
    CHECK_EQ_INT(WAIT_STAT(p, completed, N + 1), 0); /* fn returned 0 */

    wisp_pool_destroy(p);
    pump(loop);
    CHECK_EQ_INT(atomic_load(&destroyed), 1); /* nothing else yet */
    for (int i = 0; i < N; i++)
        wisp_future_unref(fs[i]);
    CHECK_EQ_INT(atomic_load(&destroyed), 1 + N);
    wisp_future_unref(lf);
    CHECK_EQ_INT(atomic_load(&destroyed), 1 + N); /* no second destroy */

    /* The caller drops its reference before the work finishes: the
     * pool's reference keeps the future, whose value then goes with the
     * last reference. */
    p = make_pool(1, 1, 8, 1000);
    gate g;
    gate_init(&g);
    wisp_future_t *gf = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, gate_fn,
                                         &g);
    CHECK_EQ_INT(gate_wait(&g, 1), 0);
    int v = 7;
    wisp_future_unref(wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, value_fn,
                                       &v));
    gate_open(&g);
    CHECK_EQ_INT(wisp_pool_shutdown(p, 1, 30000), 0); /* drain: it runs */
    wisp_pool_destroy(p);
    pump(loop);
    CHECK_EQ_INT(atomic_load(&destroyed), 2 + N);
    wisp_future_unref(gf);

    pump(loop);
    CHECK_EQ_INT(atomic_load(&destroyed), 2 + N);
    wisp_loop_destroy(loop);
    gate_fini(&la.g);
    gate_fini(&g);
}

/* ------------------------------------------------------------ stress */

enum { PRODUCERS = 4, PER_PRODUCER = 20000 };

typedef struct producer {
    pthread_t tid;
    wisp_pool_t *pool;
    wisp_loop_t *loop;
    wisp_future_t **fs;
    int nulls;
} producer;

static _Atomic int work_done;

static int tiny_fn(void *arg, void **value, wisp_free_cb *destroy)
{
    (void)destroy;
    atomic_fetch_add_explicit(&work_done, 1, memory_order_relaxed);
    *value = arg;
    return ((uintptr_t)arg & 7) == 7 ? -EIO : 0;
}

static void *produce(void *arg)
{
    producer *pr = arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        pr->fs[i] = wisp_pool_submit(pr->pool, (wisp_prio_t)(i % 4),
                                     pr->loop, tiny_fn, (void *)(uintptr_t)i);
        if (!pr->fs[i])
            pr->nulls++;
        /* Every so often, a cancel racing the workers. */
        else if (i % 97 == 0)
            wisp_future_cancel(pr->fs[i]);
    }
    return NULL;
}

static void *run_loop(void *arg)
{
    wisp_loop_run(arg);
    return NULL;
}

static void test_stress(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_pool_t *p = make_pool(1, 4, PRODUCERS * PER_PRODUCER, 50);
    atomic_store(&work_done, 0);
    /* The owner loop runs meanwhile: settle notifications are dispatched
     * concurrently with resolutions from the pool threads. */
    pthread_t lt;
    pthread_create(&lt, NULL, run_loop, loop);

    producer prs[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        prs[i].pool = p;
        prs[i].loop = loop;
        prs[i].nulls = 0;
        prs[i].fs = calloc(PER_PRODUCER, sizeof *prs[i].fs);
        pthread_create(&prs[i].tid, NULL, produce, &prs[i]);
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(prs[i].tid, NULL);

    int resolved = 0, failed = 0, cancelled = 0, pending = 0, nulls = 0;
    int wrong_value = 0;
    uint64_t end = now_ms() + 20000;
    for (int i = 0; i < PRODUCERS; i++) {
        nulls += prs[i].nulls;
        for (int k = 0; k < PER_PRODUCER; k++) {
            wisp_future_t *f = prs[i].fs[k];
            if (!f)
                continue;
            while (wisp_future_state(f) == WISP_FUTURE_PENDING &&
                   now_ms() < end)
                sleep_ms(1);
            switch (wisp_future_state(f)) {
            case WISP_FUTURE_RESOLVED:
                resolved++;
                wrong_value += wisp_future_value(f) != (void *)(uintptr_t)k;
                break;
            case WISP_FUTURE_FAILED:
                if (wisp_future_error(f) == -ECANCELED)
                    cancelled++;
                else if (wisp_future_error(f) == -EIO)
                    failed++;
                break;
            default:
                pending++;
            }
        }
    }
    CHECK_EQ_INT(nulls, 0);
    CHECK_EQ_INT(pending, 0);
    CHECK_EQ_INT(wrong_value, 0);
    CHECK_EQ_INT(resolved + failed + cancelled, PRODUCERS * PER_PRODUCER);

    wisp_pool_stats_t s = stats(p);
    CHECK_EQ_INT(s.submitted, PRODUCERS * PER_PRODUCER);
    CHECK_EQ_INT(s.rejected, 0);
    CHECK_EQ_INT(s.queued, 0);
    /* Every item either ran or was skipped as cancelled. */
    CHECK_EQ_INT(s.completed + s.failed + s.cancelled, s.submitted);
    CHECK_EQ_INT(s.completed + s.failed, atomic_load(&work_done));
    /* An -EIO fn whose future was cancelled while it ran counts as
     * failed in the pool but shows -ECANCELED. */
    CHECK(s.failed >= (uint64_t)failed);
    CHECK(s.threads <= 4 && s.peak_threads <= 4 && s.peak_threads >= 1);

    /* After destroy no pool thread posts any more: the break below is the
     * last task in the inbox, so every notification runs first. */
    wisp_pool_destroy(p);
    wisp_loop_post(loop, on_break, loop);
    pthread_join(lt, NULL);
    for (int i = 0; i < PRODUCERS; i++) {
        for (int k = 0; k < PER_PRODUCER; k++)
            wisp_future_unref(prs[i].fs[k]);
        free(prs[i].fs);
    }
    wisp_loop_destroy(loop);
}

/* ---------------------------------- job arguments owned by the pool */

/* One job's argument: counts its destructor's runs and whether one came
 * while fn still used it. Static slots, so a second run is counted, not
 * a double free. */
typedef struct slot {
    _Atomic int frees;
    _Atomic int running;
    _Atomic int freed_while_running;
    _Atomic int ran;
    _Atomic int saw_cancel;
    gate *g; /* entered / waited on by the polling job */
} slot;

static void slot_free(void *arg)
{
    slot *s = arg;
    if (atomic_load(&s->running))
        atomic_fetch_add(&s->freed_while_running, 1);
    atomic_fetch_add(&s->frees, 1);
}

static int slot_fn(void *arg, void **value, wisp_free_cb *destroy)
{
    slot *s = arg;
    (void)value;
    (void)destroy;
    atomic_store(&s->running, 1);
    atomic_fetch_add(&s->ran, 1);
    atomic_store(&s->running, 0);
    return 0;
}

/* Enters the slot's gate, then runs until it sees itself cancelled (the
 * bound is the failure bound: 30 s). */
static int polling_fn(void *arg, void **value, wisp_free_cb *destroy)
{
    slot *s = arg;
    (void)value;
    (void)destroy;
    atomic_store(&s->running, 1);
    atomic_fetch_add(&s->ran, 1);
    pthread_mutex_lock(&s->g->mu);
    s->g->entered++;
    pthread_cond_broadcast(&s->g->cv);
    pthread_mutex_unlock(&s->g->mu);
    uint64_t end = now_ms() + 30000;
    while (!wisp_pool_job_cancelled() && now_ms() < end)
        sleep_ms(1);
    atomic_store(&s->saw_cancel, wisp_pool_job_cancelled());
    atomic_store(&s->running, 0);
    return 0;
}

static void test_job_arg(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_pool_t *p = make_pool(1, 1, 1, 1000);
    gate g;
    gate_init(&g);
    static slot ran, queued, swept, refused, stopped, abandoned, bad, late;

    CHECK_EQ_INT(wisp_pool_job_cancelled(), 0); /* not a pool thread */

    /* 1. The job runs: released after fn, before the future settles. */
    wisp_future_t *f1 = wisp_pool_submit_job(p, WISP_PRIO_NORMAL, loop,
                                             slot_fn, &ran, slot_free);
    CHECK_EQ_INT(wait_settled(f1, 30000), 0);
    CHECK_EQ_INT(atomic_load(&ran.ran), 1);
    CHECK_EQ_INT(atomic_load(&ran.frees), 1);
    CHECK_EQ_INT(atomic_load(&ran.freed_while_running), 0);

    /* 2. Cancelled while queued: the one thread is held by a gate. */
    wisp_future_t *gf = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop, gate_fn,
                                         &g);
    CHECK_EQ_INT(gate_wait(&g, 1), 0);
    wisp_future_t *f2 = wisp_pool_submit_job(p, WISP_PRIO_NORMAL, loop,
                                             slot_fn, &queued, slot_free);
    CHECK_EQ_INT(wisp_future_cancel(f2), 0);
    CHECK_EQ_INT(atomic_load(&queued.frees), 0); /* still queued */
    /* The queue (limit 1) is full of a cancelled item: the next
     * submission sweeps it out, releasing its argument now. */
    wisp_future_t *f3 = wisp_pool_submit_job(p, WISP_PRIO_NORMAL, loop,
                                             slot_fn, &swept, slot_free);
    CHECK_EQ_INT(atomic_load(&queued.frees), 1);
    CHECK_EQ_INT(wisp_future_state(f3), WISP_FUTURE_PENDING);
    /* Full with live work: refused, released before the call returns. */
    wisp_future_t *f4 = wisp_pool_submit_job(p, WISP_PRIO_NORMAL, loop,
                                             slot_fn, &refused, slot_free);
    CHECK_EQ_INT(wisp_future_error(f4), -EAGAIN);
    CHECK_EQ_INT(atomic_load(&refused.frees), 1);
    /* Bad arguments: released too. */
    wisp_future_t *f5 = wisp_pool_submit_job(p, WISP_PRIO_COUNT, loop,
                                             slot_fn, &bad, slot_free);
    CHECK_EQ_INT(wisp_future_error(f5), -EINVAL);
    CHECK_EQ_INT(atomic_load(&bad.frees), 1);
    errno = 0;
    CHECK(wisp_pool_submit_job(p, WISP_PRIO_NORMAL, NULL, slot_fn, &bad,
                               slot_free) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK_EQ_INT(atomic_load(&bad.frees), 2); /* once per submission */
    gate_open(&g);
    CHECK_EQ_INT(wait_settled(f3, 30000), 0);
    CHECK_EQ_INT(atomic_load(&swept.frees), 1);

    /* 3. Abandoned: cancelled while fn runs; fn sees it and stops; the
     * argument is released once fn has returned. */
    gate pg;
    gate_init(&pg);
    abandoned.g = &pg;
    wisp_future_t *f6 = wisp_pool_submit_job(p, WISP_PRIO_NORMAL, loop,
                                             polling_fn, &abandoned,
                                             slot_free);
    CHECK_EQ_INT(gate_wait(&pg, 1), 0);
    CHECK_EQ_INT(atomic_load(&abandoned.frees), 0);
    CHECK_EQ_INT(wisp_future_cancel(f6), 0);
    CHECK_EQ_INT(WAIT_STAT(p, running, 0), 0);
    CHECK_EQ_INT(WAIT_STAT(p, completed, 4), 0); /* ran, gate, swept, f6 */
    CHECK_EQ_INT(atomic_load(&abandoned.saw_cancel), 1);
    CHECK_EQ_INT(atomic_load(&abandoned.frees), 1);
    CHECK_EQ_INT(atomic_load(&abandoned.freed_while_running), 0);

    /* 4. Cancelled by a shutdown without drain, and refused after it. */
    gate g2;
    gate_init(&g2);
    wisp_future_t *gf2 = wisp_pool_submit(p, WISP_PRIO_NORMAL, loop,
                                          gate_fn, &g2);
    CHECK_EQ_INT(gate_wait(&g2, 1), 0);
    wisp_future_t *f7 = wisp_pool_submit_job(p, WISP_PRIO_NORMAL, loop,
                                             slot_fn, &stopped, slot_free);
    CHECK_EQ_INT(wisp_pool_shutdown(p, 0, 0), -ETIMEDOUT); /* gate runs */
    CHECK_EQ_INT(atomic_load(&stopped.frees), 1);
    CHECK_EQ_INT(wisp_future_error(f7), -ECANCELED);
    wisp_future_t *f8 = wisp_pool_submit_job(p, WISP_PRIO_NORMAL, loop,
                                             slot_fn, &late, slot_free);
    CHECK_EQ_INT(wisp_future_error(f8), -ECANCELED);
    CHECK_EQ_INT(atomic_load(&late.frees), 1);
    gate_open(&g2);

    wisp_pool_destroy(p);
    /* Exactly once, every one of them, and no job ran that was not
     * meant to. */
    slot *all[] = {&ran, &queued, &swept, &refused, &stopped, &abandoned,
                   &late};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        CHECK_EQ_INT(atomic_load(&all[i]->frees), 1);
        CHECK_EQ_INT(atomic_load(&all[i]->freed_while_running), 0);
    }
    CHECK_EQ_INT(atomic_load(&queued.ran) + atomic_load(&refused.ran) +
                     atomic_load(&stopped.ran) + atomic_load(&late.ran) +
                     atomic_load(&bad.ran),
                 0);
    wisp_future_t *fs[] = {f1, gf, f2, f3, f4, f5, f6, gf2, f7, f8};
    for (size_t i = 0; i < sizeof fs / sizeof *fs; i++)
        wisp_future_unref(fs[i]);
    pump(loop);
    wisp_loop_destroy(loop);
    gate_fini(&g);
    gate_fini(&g2);
    gate_fini(&pg);
}

int main(void)
{
    emulated = getenv("WISP_EMULATED") != NULL;
    test_config();
    test_bad_args();
    test_priorities();
    test_fifo();
    test_reject_full();
    test_grow_shrink();
    test_results();
    test_pool_thread();
    test_nice_and_stack();
    test_cancel_before_run();
    test_job_arg();
    test_shutdown_drain();
    test_shutdown_cancel();
    test_destroy_cancels();
    test_shutdown_deadline();
    test_destroy_once();
    test_stress();
    return t_done("sched_pool");
}
