/* Stress across loops and pool threads: millions of cross-thread posts
 * and future resolutions (run under TSan, ASan and valgrind in CI).
 *
 * LOOPS loops run on their own threads; each keeps WINDOW jobs in flight
 * on one shared pool. The run has PHASES phases with a pause between
 * them longer than the pool's keep-alive, so pool threads exit holding
 * cached inbox nodes and new ones start. A job, on
 * a pool thread, settles BATCH futures its loop created (resolves most,
 * fails some, while the loop cancels a few of them in a race) and posts
 * POSTS plain tasks to every loop. Its own future settles back on the
 * submitting loop, which then submits the next job.
 *
 * Checked: every continuation runs exactly once, on its owner loop's
 * thread; every resolved value is destroyed exactly once (delivered or
 * late); every post runs exactly once, in order per (pool thread, loop);
 * nothing leaks.
 *
 * WISP_TEST_QUICK=1 in the environment runs a tenth of it. */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "loop/loop_int.h"
#include "test.h"
#include "wisp/future.h"
#include "wisp/pool.h"

#define LOOPS 3
#define WINDOW 8
#define BATCH 32
#define POSTS 64        /* per job and per loop */
#define SLOTS 256       /* pool threads over the whole run */
#define PHASES 3
#define SEQ_BITS (sizeof(uintptr_t) * 8 - 8) /* 24 where pointers have 32 */

typedef struct sloop {
    wisp_loop_t *loop;
    pthread_t th, self;
    int idx;
    /* Its own thread only: */
    long submitted, in_flight, jobs_done;
    long conts, resolved_seen, cancels_won;
    long posts_seen, order_errors;
    long last[SLOTS];
    int phase;              /* phases started */
    int finished;           /* phases finished */
} sloop;

typedef struct job {
    sloop *from;
    long id;
    wisp_future_t *fs[BATCH];
} job;

static sloop sl[LOOPS];
static wisp_pool_t *pool;
static long jobs_per_loop;
static _Atomic long wrong_thread, destroyed, resolves, bad_calls, eagain;
static _Atomic int next_slot;
static _Atomic int loops_finished; /* loops done with the current phase */

static __thread int my_slot = -1;
static __thread long my_seq[LOOPS];

static sloop *me_of(wisp_loop_t *l)
{
    for (int i = 0; i < LOOPS; i++)
        if (sl[i].loop == l)
            return &sl[i];
    return NULL;
}

static void check_thread(sloop *me)
{
    if (!pthread_equal(pthread_self(), me->self))
        atomic_fetch_add(&wrong_thread, 1);
}

static void maybe_finish(sloop *me)
{
    long jobs = me->phase * jobs_per_loop;
    if (me->finished < me->phase && me->jobs_done == jobs &&
        me->conts == jobs * BATCH &&
        me->posts_seen == (long)LOOPS * jobs * POSTS) {
        me->finished = me->phase;
        atomic_fetch_add(&loops_finished, 1);
    }
}

static void count_destroy(void *p)
{
    (void)p;
    atomic_fetch_add(&destroyed, 1);
}

/* ---- pool side */

static void on_post(void *arg)
{
    sloop *me = me_of(wisp_loop_current());
    uintptr_t v = (uintptr_t)arg;
    int slot = (int)(v >> SEQ_BITS);
    long seq = (long)(v & (((uintptr_t)1 << SEQ_BITS) - 1));
    if (seq != me->last[slot] + 1)
        me->order_errors++;
    me->last[slot] = seq;
    me->posts_seen++;
    maybe_finish(me);
}

static int job_fn(void *arg, void **value, wisp_free_cb *destroy)
{
    job *j = arg;
    (void)destroy;
    if (my_slot < 0) {
        my_slot = atomic_fetch_add(&next_slot, 1);
        if (my_slot >= SLOTS)
            abort(); /* more pool threads than the test can track */
    }
    for (int k = 0; k < BATCH; k++) {
        wisp_future_t *f = j->fs[k];
        int r;
        if ((j->id + k) % 5 == 0) {
            r = wisp_future_fail(f, -EIO);
        } else {
            atomic_fetch_add(&resolves, 1);
            r = wisp_future_resolve(f, (void *)(intptr_t)(k + 1),
                                    count_destroy);
        }
        if (r != 0 && r != -EALREADY) /* -EALREADY: the cancel won */
            atomic_fetch_add(&bad_calls, 1);
        wisp_future_unref(f); /* the job's reference */
    }
    for (int t = 0; t < LOOPS; t++)
        for (int p = 0; p < POSTS; p++) {
            uintptr_t v = ((uintptr_t)my_slot << SEQ_BITS) |
                          (uintptr_t)++my_seq[t];
            int r;
            while ((r = wisp_loop_post(sl[t].loop, on_post, (void *)v)) ==
                   -EAGAIN) {
                atomic_fetch_add(&eagain, 1);
                sched_yield();
            }
            if (r != 0)
                atomic_fetch_add(&bad_calls, 1);
        }
    *value = j;
    return 0;
}

/* ---- loop side */

static void submit_next(sloop *me);

static void on_value(wisp_future_t *f, void *arg)
{
    sloop *me = arg;
    check_thread(me);
    me->conts++;
    if (wisp_future_state(f) == WISP_FUTURE_RESOLVED)
        me->resolved_seen++;
    else if (wisp_future_error(f) == -ECANCELED)
        me->cancels_won++;
    maybe_finish(me);
}

static void on_job_done(wisp_future_t *f, void *arg)
{
    job *j = arg;
    sloop *me = j->from;
    check_thread(me);
    if (wisp_future_state(f) != WISP_FUTURE_RESOLVED ||
        wisp_future_value(f) != j)
        atomic_fetch_add(&bad_calls, 1);
    free(j);
    me->jobs_done++;
    me->in_flight--;
    submit_next(me);
    maybe_finish(me);
}

static void submit_next(sloop *me)
{
    while (me->in_flight < WINDOW &&
           me->submitted < me->phase * jobs_per_loop) {
        job *j = malloc(sizeof *j);
        j->from = me;
        j->id = me->submitted++;
        wisp_future_t *cancel[BATCH];
        int ncancel = 0;
        for (int k = 0; k < BATCH; k++) {
            wisp_future_t *f = wisp_future_create(me->loop);
            wisp_future_then(f, on_value, me);
            if (k % 7 == 3) { /* cancelled below, racing the job */
                wisp_future_ref(f);
                cancel[ncancel++] = f;
            }
            j->fs[k] = f; /* the creator's reference goes to the job */
        }
        wisp_future_t *sub = wisp_pool_submit(pool, (wisp_prio_t)(j->id % 4),
                                               me->loop, job_fn, j);
        wisp_future_then(sub, on_job_done, j);
        wisp_future_unref(sub);
        me->in_flight++;
        for (int c = 0; c < ncancel; c++) {
            wisp_future_cancel(cancel[c]);
            wisp_future_unref(cancel[c]);
        }
    }
}

static void start(void *arg)
{
    sloop *me = arg;
    me->phase++;
    submit_next(me);
}

static void stop(void *arg)
{
    sloop *me = arg;
    wisp_loop_break(me->loop);
}

static void *loop_thread(void *arg)
{
    sloop *me = arg;
    me->self = pthread_self();
    if (wisp_loop_run(me->loop) != 0)
        atomic_fetch_add(&bad_calls, 1);
    return NULL;
}

int main(void)
{
    const char *q = getenv("WISP_TEST_QUICK");
    int quick = q && *q && *q != '0';
    jobs_per_loop = quick ? 200 : 2000; /* per phase */

    wisp_pool_config_t cfg;
    wisp_pool_config_init(&cfg);
    cfg.min_threads = 1;
    cfg.max_threads = 4;
    cfg.queue_limit = LOOPS * WINDOW;
    cfg.keep_alive_ms = 5; /* threads come and go during the run */
    pool = wisp_pool_create(&cfg);
    CHECK(pool != NULL);
    for (int i = 0; i < LOOPS; i++) {
        sl[i].loop = wisp_loop_create();
        sl[i].idx = i;
        /* Small inboxes: posts meet -EAGAIN and retry. Settle
         * notifications never do (their nodes are not counted). */
        wisp_loop_set_inbox_limit(sl[i].loop, i == 0 ? 256 : 8192);
    }
    for (int i = 0; i < LOOPS; i++)
        pthread_create(&sl[i].th, NULL, loop_thread, &sl[i]);
    for (int phase = 0; phase < PHASES; phase++) {
        atomic_store(&loops_finished, 0);
        for (int i = 0; i < LOOPS; i++)
            CHECK_EQ_INT(wisp_loop_post(sl[i].loop, start, &sl[i]), 0);
        while (atomic_load(&loops_finished) < LOOPS)
            usleep(1000);
        /* Let the idle pool threads exit (keep-alive 5 ms) before the
         * next phase starts them again: wait for it (30 s bound; the
         * churn is what is exercised, nothing is assumed). */
        for (int i = 0; i < 30000; i++) {
            wisp_pool_stats_t ps;
            wisp_pool_stats(pool, &ps);
            if (ps.threads <= 1)
                break;
            usleep(1000);
        }
    }
    for (int i = 0; i < LOOPS; i++)
        CHECK_EQ_INT(wisp_loop_post(sl[i].loop, stop, &sl[i]), 0);
    for (int i = 0; i < LOOPS; i++)
        pthread_join(sl[i].th, NULL);
    wisp_pool_stats_t st;
    wisp_pool_stats(pool, &st);
    wisp_pool_destroy(pool);

    long conts = 0, posts = 0, cancels = 0, resolved = 0;
    long jobs = PHASES * jobs_per_loop;
    for (int i = 0; i < LOOPS; i++) {
        CHECK_EQ_INT(sl[i].jobs_done, jobs);
        CHECK_EQ_INT(sl[i].conts, jobs * BATCH);
        CHECK_EQ_INT(sl[i].posts_seen, (long)LOOPS * jobs * POSTS);
        CHECK_EQ_INT(sl[i].order_errors, 0);
        conts += sl[i].conts + sl[i].jobs_done;
        posts += sl[i].posts_seen;
        cancels += sl[i].cancels_won;
        resolved += sl[i].resolved_seen;
    }
    CHECK_EQ_INT(atomic_load(&wrong_thread), 0);
    CHECK_EQ_INT(atomic_load(&bad_calls), 0);
    /* Every resolve destroyed its value once: the delivered ones when
     * their future went, the late ones (cancel won) at once. */
    CHECK_EQ_INT(atomic_load(&destroyed), atomic_load(&resolves));
    CHECK(resolved <= atomic_load(&resolves));
    CHECK_EQ_INT(st.submitted, (long)LOOPS * jobs);
    for (int i = 0; i < LOOPS; i++)
        wisp_loop_destroy(sl[i].loop);
    printf("sched stress: %ld posts and %ld settled futures across %d "
           "loops and %d pool threads (at most %u at once); %ld cancels "
           "won, %ld posts retried after -EAGAIN\n",
           posts, conts, LOOPS, atomic_load(&next_slot), st.peak_threads,
           cancels, atomic_load(&eagain));
    return t_done("sched_stress");
}
