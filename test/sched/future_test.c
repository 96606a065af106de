/* Futures (src/sched/future.c): continuations run on the owner loop, in
 * order, never inside then(); chaining; all/any; timeout; cancel before
 * and after a result; destructors exactly once; and many resolutions from
 * other threads (run under TSan in CI). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "loop/loop_int.h"
#include "test.h"
#include "wisp/future.h"

static _Atomic int destroyed;

static void destroy_int(void *p)
{
    atomic_fetch_add(&destroyed, 1);
    free(p);
}

static int *boxed(int v)
{
    int *p = malloc(sizeof *p);
    *p = v;
    return p;
}

/* Run `loop` until `*flag` is set (or 2 s pass). */
static void break_when(wisp_timer_t *t, void *arg);
static _Atomic int *watch_flag;
static void run_until(wisp_loop_t *loop, _Atomic int *flag)
{
    wisp_timer_t t;
    watch_flag = flag;
    wisp_timer_init(loop, &t);
    wisp_timer_start(&t, 1, break_when, loop);
    wisp_loop_run(loop);
    wisp_timer_stop(&t);
}

static int polls;
static void break_when(wisp_timer_t *t, void *arg)
{
    if (atomic_load(watch_flag) || ++polls > 2000) {
        polls = 0;
        wisp_loop_break(arg);
    } else {
        wisp_timer_start(t, 1, break_when, arg);
    }
}

/* Run one loop iteration: queued dispatches (posted or deferred) run. */
static void break_task(void *arg)
{
    wisp_loop_break(arg);
}

static void flush(wisp_loop_t *loop)
{
    wisp_loop_defer(loop, break_task, loop);
    wisp_loop_run(loop);
}

/* ---- ordering, never synchronous, value, destructor once */
static int order[8];
static int norder;
static _Atomic int done_flag;

static void note(wisp_future_t *f, void *arg)
{
    order[norder++] = (int)(intptr_t)arg;
    if ((intptr_t)arg == 3) {
        CHECK(wisp_future_state(f) == WISP_FUTURE_RESOLVED);
        CHECK_EQ_INT(*(int *)wisp_future_value(f), 42);
        atomic_store(&done_flag, 1);
    }
}

static void test_order(wisp_loop_t *loop)
{
    wisp_future_t *f = wisp_future_create(loop);
    norder = 0;
    atomic_store(&done_flag, 0);
    atomic_store(&destroyed, 0);
    CHECK_EQ_INT(wisp_future_error(f), -EINPROGRESS);
    wisp_future_then(f, note, (void *)1);
    wisp_future_then(f, note, (void *)2);
    CHECK_EQ_INT(wisp_future_resolve(f, boxed(42), destroy_int), 0);
    CHECK_EQ_INT(norder, 0); /* not synchronous */
    wisp_future_then(f, note, (void *)3);
    CHECK_EQ_INT(wisp_future_resolve(f, boxed(7), destroy_int), -EALREADY);
    CHECK_EQ_INT(atomic_load(&destroyed), 1); /* the late value */
    run_until(loop, &done_flag);
    CHECK_EQ_INT(norder, 3);
    CHECK(order[0] == 1 && order[1] == 2 && order[2] == 3);
    /* then() after dispatch still runs later, not inside the call */
    atomic_store(&done_flag, 0);
    wisp_future_then(f, note, (void *)3);
    CHECK_EQ_INT(norder, 3);
    run_until(loop, &done_flag);
    CHECK_EQ_INT(norder, 4);
    wisp_future_unref(f);
    CHECK_EQ_INT(atomic_load(&destroyed), 2); /* the value, once */
}

/* ---- cancel before / after resolve, fail, take */
static void test_cancel(wisp_loop_t *loop)
{
    atomic_store(&destroyed, 0);
    wisp_future_t *f = wisp_future_create(loop);
    CHECK_EQ_INT(wisp_future_cancel(f), 0);
    CHECK(wisp_future_state(f) == WISP_FUTURE_FAILED);
    CHECK_EQ_INT(wisp_future_error(f), -ECANCELED);
    /* a late result after cancel is destroyed, never delivered */
    CHECK_EQ_INT(wisp_future_resolve(f, boxed(1), destroy_int), -EALREADY);
    CHECK_EQ_INT(atomic_load(&destroyed), 1);
    CHECK(wisp_future_value(f) == NULL);
    CHECK_EQ_INT(wisp_future_fail(f, -EIO), -EALREADY);
    CHECK_EQ_INT(wisp_future_fail(f, 5), -EINVAL);
    wisp_future_unref(f);

    f = wisp_future_create(loop);
    wisp_future_resolve(f, boxed(3), destroy_int);
    CHECK_EQ_INT(wisp_future_cancel(f), -EALREADY); /* cancel after */
    wisp_free_cb d = NULL;
    int *v = wisp_future_take(f, &d);
    CHECK(v && *v == 3 && d == destroy_int);
    CHECK(wisp_future_take(f, NULL) == NULL);
    wisp_future_unref(f); /* taken: not destroyed by the future */
    CHECK_EQ_INT(atomic_load(&destroyed), 1);
    d(v);
    CHECK_EQ_INT(atomic_load(&destroyed), 2);
    flush(loop); /* the dispatches queued above drop their references */
}

/* ---- timeout */
static _Atomic int timed_out;
static void on_timed(wisp_future_t *f, void *arg)
{
    (void)arg;
    CHECK_EQ_INT(wisp_future_error(f), -ETIMEDOUT);
    atomic_store(&timed_out, 1);
}

static void test_timeout(wisp_loop_t *loop)
{
    wisp_future_t *f = wisp_future_create(loop);
    atomic_store(&timed_out, 0);
    CHECK_EQ_INT(wisp_future_set_timeout(f, 20), 0);
    wisp_future_then(f, on_timed, NULL);
    uint64_t t0 = wisp__clock_ms();
    run_until(loop, &timed_out);
    CHECK(atomic_load(&timed_out));
    CHECK(wisp__clock_ms() - t0 >= 19);
    CHECK_EQ_INT(wisp_future_set_timeout(f, 20), -EALREADY);
    wisp_future_unref(f);

    /* A result before the deadline disarms it (and frees its ref). */
    f = wisp_future_create(loop);
    wisp_future_set_timeout(f, 10000);
    atomic_store(&timed_out, 0);
    wisp_future_resolve(f, NULL, NULL);
    CHECK_EQ_INT(wisp_future_error(f), 0);
    wisp_future_unref(f);
    flush(loop);
}

/* ---- chaining */
static wisp_future_t *step_double(wisp_future_t *f, void *arg)
{
    wisp_loop_t *loop = arg;
    int v = *(int *)wisp_future_value(f);
    wisp_future_t *n = wisp_future_create(loop);
    wisp_future_resolve(n, boxed(v * 2), destroy_int);
    return n;
}

static _Atomic int chain_seen;
static void chain_end(wisp_future_t *f, void *arg)
{
    (void)arg;
    CHECK(wisp_future_state(f) == WISP_FUTURE_RESOLVED);
    CHECK_EQ_INT(*(int *)wisp_future_value(f), 84);
    atomic_store(&chain_seen, 1);
}

static void fail_end(wisp_future_t *f, void *arg)
{
    (void)arg;
    CHECK_EQ_INT(wisp_future_error(f), -EIO);
    atomic_store(&chain_seen, 1);
}

static void test_chain(wisp_loop_t *loop)
{
    atomic_store(&destroyed, 0);
    wisp_future_t *f = wisp_future_create(loop);
    wisp_future_t *g = wisp_future_chain(f, step_double, loop);
    wisp_future_t *h = wisp_future_chain(g, NULL, NULL); /* pass-through */
    atomic_store(&chain_seen, 0);
    wisp_future_then(h, chain_end, NULL);
    wisp_future_resolve(f, boxed(42), destroy_int);
    run_until(loop, &chain_seen);
    CHECK(atomic_load(&chain_seen));
    wisp_future_unref(f);
    wisp_future_unref(g);
    wisp_future_unref(h);
    CHECK_EQ_INT(atomic_load(&destroyed), 2); /* 42 and 84 */

    /* A failure passes down the chain. */
    f = wisp_future_create(loop);
    g = wisp_future_chain(f, NULL, NULL);
    atomic_store(&chain_seen, 0);
    wisp_future_then(g, fail_end, NULL);
    wisp_future_fail(f, -EIO);
    run_until(loop, &chain_seen);
    CHECK(atomic_load(&chain_seen));
    wisp_future_unref(f);
    wisp_future_unref(g);
}

/* ---- all / any */
static _Atomic int group_seen;
static int group_err;
static uintptr_t group_val;
static void group_end(wisp_future_t *f, void *arg)
{
    (void)arg;
    group_err = wisp_future_error(f);
    group_val = (uintptr_t)wisp_future_value(f);
    atomic_store(&group_seen, 1);
}

static void test_group(wisp_loop_t *loop)
{
    wisp_future_t *in[3];
    for (int i = 0; i < 3; i++)
        in[i] = wisp_future_create(loop);
    wisp_future_t *all = wisp_future_all(loop, in, 3);
    wisp_future_t *any = wisp_future_any(loop, in, 3);
    atomic_store(&group_seen, 0);
    wisp_future_then(any, group_end, NULL);
    wisp_future_resolve(in[1], NULL, NULL);
    run_until(loop, &group_seen);
    CHECK_EQ_INT(group_err, 0);
    CHECK_EQ_INT(group_val, 1); /* index of the first resolved */
    CHECK(wisp_future_state(all) == WISP_FUTURE_PENDING);
    atomic_store(&group_seen, 0);
    wisp_future_then(all, group_end, NULL);
    wisp_future_resolve(in[0], NULL, NULL);
    wisp_future_resolve(in[2], NULL, NULL);
    run_until(loop, &group_seen);
    CHECK_EQ_INT(group_err, 0);
    for (int i = 0; i < 3; i++)
        wisp_future_unref(in[i]);
    wisp_future_unref(all);
    wisp_future_unref(any);

    /* all fails with the first failure; any fails when all have. */
    for (int i = 0; i < 2; i++)
        in[i] = wisp_future_create(loop);
    all = wisp_future_all(loop, in, 2);
    any = wisp_future_any(loop, in, 2);
    wisp_future_fail(in[0], -EPIPE);
    atomic_store(&group_seen, 0);
    wisp_future_then(all, group_end, NULL);
    run_until(loop, &group_seen);
    CHECK_EQ_INT(group_err, -EPIPE);
    CHECK(wisp_future_state(any) == WISP_FUTURE_PENDING);
    wisp_future_fail(in[1], -EIO);
    atomic_store(&group_seen, 0);
    wisp_future_then(any, group_end, NULL);
    run_until(loop, &group_seen);
    CHECK_EQ_INT(group_err, -EIO);
    for (int i = 0; i < 2; i++)
        wisp_future_unref(in[i]);
    wisp_future_unref(all);
    wisp_future_unref(any);

    wisp_future_t *none = wisp_future_all(loop, NULL, 0);
    CHECK(wisp_future_state(none) == WISP_FUTURE_RESOLVED);
    wisp_future_unref(none);
    none = wisp_future_any(loop, NULL, 0);
    CHECK_EQ_INT(wisp_future_error(none), -EINVAL);
    wisp_future_unref(none);
    flush(loop);
}

/* ---- cross-thread resolution: continuations run on the owner thread */
#define THREADS 4
#define PER_THREAD 50000

static wisp_loop_t *stress_loop;
static pthread_t owner_thread;
static _Atomic long continuations, wrong_thread, resolved_values;

static void on_stress(wisp_future_t *f, void *arg)
{
    (void)arg;
    if (!pthread_equal(pthread_self(), owner_thread))
        atomic_fetch_add(&wrong_thread, 1);
    if (wisp_future_state(f) == WISP_FUTURE_RESOLVED)
        atomic_fetch_add(&resolved_values, 1);
    long n = atomic_fetch_add(&continuations, 1) + 1;
    if (n == (long)THREADS * PER_THREAD)
        wisp_loop_break(stress_loop);
}

static void count_free(void *p)
{
    (void)p;
    atomic_fetch_add(&destroyed, 1);
}

typedef struct batch {
    wisp_future_t **fs;
    int id;
} batch;

static void *resolver(void *arg)
{
    batch *b = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        wisp_future_t *f = b->fs[i];
        if (i % 3 == 0)
            wisp_future_fail(f, -EIO);
        else
            wisp_future_resolve(f, (void *)(intptr_t)(i + 1), count_free);
        /* A racing cancel from another thread: exactly one wins. */
        if (i % 5 == 0)
            wisp_future_cancel(f);
        wisp_future_unref(f); /* the resolver's reference */
    }
    return NULL;
}

static void test_threads(wisp_loop_t *loop)
{
    stress_loop = loop;
    owner_thread = pthread_self();
    atomic_store(&destroyed, 0);
    batch b[THREADS];
    for (int t = 0; t < THREADS; t++) {
        b[t].id = t;
        b[t].fs = malloc(PER_THREAD * sizeof *b[t].fs);
        for (int i = 0; i < PER_THREAD; i++) {
            wisp_future_t *f = wisp_future_create(loop);
            wisp_future_then(f, on_stress, NULL);
            wisp_future_ref(f); /* for the resolver */
            b[t].fs[i] = f;
        }
    }
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, resolver, &b[t]);
    wisp_loop_run(loop);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    CHECK_EQ_INT(atomic_load(&continuations), (long)THREADS * PER_THREAD);
    CHECK_EQ_INT(atomic_load(&wrong_thread), 0);
    long want_resolved = 0;
    for (int i = 0; i < PER_THREAD; i++)
        want_resolved += i % 3 != 0;
    CHECK_EQ_INT(atomic_load(&resolved_values), want_resolved * THREADS);
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < PER_THREAD; i++)
            wisp_future_unref(b[t].fs[i]);
        free(b[t].fs);
    }
    /* Every resolved value destroyed exactly once. */
    CHECK_EQ_INT(atomic_load(&destroyed), want_resolved * THREADS);
}

/* A loop destroyed with settle notifications still queued releases what
 * they hold (valgrind/ASan would report the futures and values). */
static void test_destroy_pending(void)
{
    wisp_loop_t *l = wisp_loop_create();
    atomic_store(&destroyed, 0);
    for (int i = 0; i < 3; i++) {
        wisp_future_t *f = wisp_future_create(l);
        wisp_future_then(f, note, (void *)5);
        if (i == 2)
            wisp_future_set_timeout(f, 100000);
        wisp_future_resolve(f, boxed(i), destroy_int); /* posted, not run */
        wisp_future_unref(f);
    }
    wisp_loop_destroy(l);
    CHECK_EQ_INT(atomic_load(&destroyed), 3);
}

int main(void)
{
    test_destroy_pending();
    wisp_loop_t *loop = wisp_loop_create();
    test_order(loop);
    test_cancel(loop);
    test_timeout(loop);
    test_chain(loop);
    test_group(loop);
    test_threads(loop);
    flush(loop);
    wisp_loop_destroy(loop);
    return t_done("future");
}
