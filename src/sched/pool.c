/* The shared worker pool: blocking work off the loops (DESIGN rule 2).
 *
 * One mutex guards everything: four FIFO lists (one per priority) bounded
 * together by queue_limit, the thread counts and the statistics. Workers
 * wait on `work`; shutdown waits on `gone` for the last thread to leave.
 * The lock is never held while user code runs: fn, value destructors
 * (a late result is destroyed inside wisp_future_resolve) and the last
 * unref of a future all happen outside it.
 *
 * Futures: the pool holds one reference per queued or running item and
 * touches a future only through its thread-safe calls (state, resolve,
 * fail, unref), so no continuation ever runs on a pool thread. A cancelled
 * future stays queued until a worker pops it and sees it settled; a full
 * queue first sweeps such items out, so cancelled work never costs a
 * rejection.
 *
 * Threads are joinable so that wisp_pool_destroy can prove none of them
 * still runs pool code (a detached thread may still be inside
 * pthread_mutex_unlock on memory destroy is about to free). A thread that
 * leaves pushes its handle onto `zombies`; whoever takes the list next (a
 * thread that grows the pool, another leaving thread, destroy) joins it,
 * so at most a few exited threads are ever unjoined. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "wisp/pool.h"

/* One queued submission. */
typedef struct item {
    struct item *next;
    wisp_pool_fn fn;
    void *arg;
    wisp_free_cb arg_free; /* runs once, when the item is done with */
    wisp_future_t *f;      /* the pool's reference */
} item;

typedef struct fifo {
    item *head;
    item *tail;
} fifo;

/* A started thread, owned by the thread itself until it exits, then by
 * whoever joins it. */
typedef struct wthread {
    struct wthread *next;
    pthread_t tid;
    wisp_pool_t *pool;
} wthread;

struct wisp_pool {
    pthread_mutex_t mu;
    pthread_cond_t work; /* an item was queued, or shutdown began */
    pthread_cond_t gone; /* the last thread has left */
    wisp_pool_config_t cfg;

    fifo q[WISP_PRIO_COUNT];
    uint32_t queued;
    unsigned threads;
    unsigned idle; /* threads waiting on `work` */
    unsigned running;
    unsigned peak;
    int stopping;
    wthread *zombies; /* exited, not yet joined */
    pthread_attr_t attr; /* stack size for new threads */
    int thread_nice;     /* absolute nice value of every pool thread */

    uint64_t submitted, completed, failed, rejected, cancelled, busy_ns;
};

/* Set on pool threads, so that shutdown called from one of them refuses
 * instead of waiting for itself forever. */
static _Thread_local wisp_pool_t *self_pool;
/* The item whose fn this thread is running, for wisp_pool_job_cancelled. */
static _Thread_local item *self_item;

void wisp_pool_config_init(wisp_pool_config_t *cfg)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned max = cpus > 0 ? 2u * (unsigned)cpus : 4u;
    cfg->min_threads = 1;
    cfg->max_threads = max < 4 ? 4 : max;
    cfg->queue_limit = 1024;
    cfg->keep_alive_ms = 10000;
    cfg->nice = 10;
    cfg->stack_size = 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The CLOCK_MONOTONIC time `ms` from now, for the condvars (which were
 * set to that clock: a wall-clock jump must not stretch a keep-alive or a
 * shutdown deadline). */
static struct timespec deadline_in(uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Longer than this counts as "wait forever": it keeps tv_sec far from
 * overflow and no caller means a finite wait of 24 days. */
#define FOREVER_MS ((uint64_t)INT32_MAX)

static void push(wisp_pool_t *p, unsigned prio, item *it)
{
    it->next = NULL;
    if (p->q[prio].tail)
        p->q[prio].tail->next = it;
    else
        p->q[prio].head = it;
    p->q[prio].tail = it;
    p->queued++;
}

/* The oldest item of the highest priority that has one. Lock held. */
static item *pop(wisp_pool_t *p)
{
    for (unsigned i = 0; i < WISP_PRIO_COUNT; i++) {
        item *it = p->q[i].head;
        if (!it)
            continue;
        p->q[i].head = it->next;
        if (!it->next)
            p->q[i].tail = NULL;
        it->next = NULL;
        p->queued--;
        return it;
    }
    return NULL;
}

/* Unlink every queued item whose future has already settled (cancelled
 * by its owner) and return them as a list, counted as cancelled. Only
 * called when the queue is full: O(queue_limit), rare. Lock held. */
static item *sweep_settled(wisp_pool_t *p)
{
    item *out = NULL;
    for (unsigned i = 0; i < WISP_PRIO_COUNT; i++) {
        item **link = &p->q[i].head;
        item *last = NULL;
        while (*link) {
            item *it = *link;
            if (wisp_future_state(it->f) == WISP_FUTURE_PENDING) {
                last = it;
                link = &it->next;
                continue;
            }
            *link = it->next;
            it->next = out;
            out = it;
            p->queued--;
            p->cancelled++;
        }
        p->q[i].tail = last;
    }
    return out;
}

/* Take every queued item (shutdown without drain). Lock held. */
static item *take_all(wisp_pool_t *p)
{
    item *out = NULL, *it;
    while ((it = pop(p))) {
        it->next = out;
        out = it;
        p->cancelled++;
    }
    return out;
}

/* The item's argument is done with: its destructor runs now, once.
 * Lock not held (it is user code). */
static void drop_arg(item *it)
{
    wisp_free_cb fr = it->arg_free;
    it->arg_free = NULL;
    if (fr)
        fr(it->arg);
}

/* Fail (when `err`) and release a list of items that never ran: each
 * argument's destructor runs before its future settles. Lock not held:
 * the last unref may run a value's destructor. */
static void release(item *list, int err)
{
    while (list) {
        item *next = list->next;
        drop_arg(list);
        if (err)
            wisp_future_fail(list->f, err);
        wisp_future_unref(list->f);
        free(list);
        list = next;
    }
}

static void join_all(wthread *list)
{
    while (list) {
        wthread *next = list->next;
        pthread_join(list->tid, NULL);
        free(list);
        list = next;
    }
}

static void *worker(void *arg);

/* Start one thread. Lock held (the new thread blocks on it at first; the
 * pool grows rarely, so the simpler invariant wins over the short hold). */
static int spawn(wisp_pool_t *p)
{
    wthread *t = malloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    t->pool = p;
    /* The thread inherits a mask blocking every asynchronous signal: the
     * server routes SIGINT/SIGTERM to its main loop's signalfd, and a pool
     * thread started before the server blocked them would otherwise take
     * them with the default action and end the process. Blocking here,
     * not in the thread, leaves no window. Faults stay deliverable. */
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGABRT);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&t->tid, &p->attr, worker, t);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0) {
        free(t);
        return -r;
    }
    p->threads++;
    if (p->threads > p->peak)
        p->peak = p->threads;
    return 0;
}

/* Wait for work with the lock held and the queue empty. Returns 0 when
 * the thread should exit: it is above the minimum and stayed idle for
 * keep_alive_ms. The keep-alive deadline is fixed when the thread goes
 * idle, so wake-ups that find the work already taken do not extend it. */
static int wait_for_work(wisp_pool_t *p)
{
    p->idle++;
    if (p->threads > p->cfg.min_threads) {
        struct timespec until = deadline_in(p->cfg.keep_alive_ms);
        while (!p->queued && !p->stopping) {
            if (pthread_cond_timedwait(&p->work, &p->mu, &until) ==
                ETIMEDOUT)
                break;
        }
        /* Re-check the count: threads idling together must not all leave
         * and take the pool below its minimum. */
        if (!p->queued && !p->stopping &&
            p->threads > p->cfg.min_threads) {
            p->idle--;
            return 0;
        }
    } else {
        pthread_cond_wait(&p->work, &p->mu);
    }
    p->idle--;
    return 1;
}

/* Run one item. Called and returns with the lock held. */
static void run(wisp_pool_t *p, item *it)
{
    p->running++;
    pthread_mutex_unlock(&p->mu);

    void *value = NULL;
    wisp_free_cb destroy = NULL;
    uint64_t t0 = now_ns();
    self_item = it;
    int r = it->fn(it->arg, &value, &destroy);
    self_item = NULL;
    uint64_t t1 = now_ns();
    /* fn is done with its argument: release it before the future
     * settles, so whoever sees the result knows the argument is gone
     * (and one cancelled while fn ran is released here too). */
    drop_arg(it);

    /* Count before settling: whoever sees the future settled then finds
     * it in the statistics. */
    pthread_mutex_lock(&p->mu);
    p->running--;
    p->busy_ns += t1 - t0;
    if (r == 0)
        p->completed++;
    else
        p->failed++;
    pthread_mutex_unlock(&p->mu);

    /* A future cancelled meanwhile makes resolve destroy the late value
     * at once (future.h), so it is destroyed exactly once and never seen. */
    if (r == 0)
        wisp_future_resolve(it->f, value, destroy);
    else
        wisp_future_fail(it->f, r < 0 ? r : -EIO);
    wisp_future_unref(it->f);
    free(it);

    pthread_mutex_lock(&p->mu);
}

static void *worker(void *arg)
{
    wthread *self = arg;
    wisp_pool_t *p = self->pool;
    self_pool = p;
    pthread_setname_np(pthread_self(), "wisp-pool"); /* for top/gdb */
    /* Absolute, not relative: a thread started by another pool thread
     * (fn submitting work) inherits that thread's nice already. Linux
     * keeps nice per thread; best effort (pool.h). */
    pid_t tid = (pid_t)syscall(SYS_gettid);
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, (id_t)tid);
    if (errno == 0 && cur != p->thread_nice)
        (void)setpriority(PRIO_PROCESS, (id_t)tid, p->thread_nice);

    pthread_mutex_lock(&p->mu);
    for (;;) {
        item *it = pop(p);
        if (!it) {
            /* Shutdown ends a thread only once the queue is empty: with
             * drain the work still runs, without it was taken away. */
            if (p->stopping || !wait_for_work(p))
                break;
            continue;
        }
        if (wisp_future_state(it->f) != WISP_FUTURE_PENDING) {
            /* Cancelled while queued: fn never runs. */
            p->cancelled++;
            pthread_mutex_unlock(&p->mu);
            release(it, 0);
            pthread_mutex_lock(&p->mu);
            continue;
        }
        run(p, it);
    }

    /* Leave: hand our handle to the next reaper, take over the earlier
     * ones. Nothing below touches the pool after the unlock, so destroy
     * may free it as soon as it sees threads == 0. */
    wthread *reap = p->zombies;
    self->next = NULL;
    p->zombies = self;
    if (--p->threads == 0)
        pthread_cond_broadcast(&p->gone);
    pthread_mutex_unlock(&p->mu);
    join_all(reap);
    return NULL;
}

wisp_pool_t *wisp_pool_create(const wisp_pool_config_t *cfg)
{
    wisp_pool_config_t c;
    if (cfg)
        c = *cfg;
    else
        wisp_pool_config_init(&c);
    if (c.max_threads == 0 || c.min_threads > c.max_threads ||
        c.queue_limit == 0 || c.nice < 0 || c.nice > 19 ||
        (c.stack_size && c.stack_size < (size_t)PTHREAD_STACK_MIN)) {
        errno = EINVAL;
        return NULL;
    }
    /* The creator's nice, read now: pool threads are started later by
     * whichever thread submits, which may run at another priority. */
    errno = 0;
    int base = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
    if (errno != 0)
        base = 0;

    wisp_pool_t *p = calloc(1, sizeof *p);
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    p->cfg = c;
    int n = base + c.nice;
    p->thread_nice = n > 19 ? 19 : n;
    int r = pthread_attr_init(&p->attr);
    if (r != 0) {
        free(p);
        errno = r;
        return NULL;
    }
    if (c.stack_size) {
        long pg = sysconf(_SC_PAGESIZE);
        size_t page = pg > 0 ? (size_t)pg : 4096;
        size_t sz = c.stack_size;
        if (sz > SIZE_MAX - page ||
            (r = pthread_attr_setstacksize(
                 &p->attr, (sz + page - 1) / page * page)) != 0) {
            pthread_attr_destroy(&p->attr);
            free(p);
            errno = EINVAL;
            return NULL;
        }
    }
    pthread_condattr_t ca;
    r = pthread_condattr_init(&ca);
    if (r == 0) {
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        r = pthread_cond_init(&p->work, &ca);
        if (r == 0 && (r = pthread_cond_init(&p->gone, &ca)) != 0)
            pthread_cond_destroy(&p->work);
        pthread_condattr_destroy(&ca);
    }
    if (r == 0 && (r = pthread_mutex_init(&p->mu, NULL)) != 0) {
        pthread_cond_destroy(&p->work);
        pthread_cond_destroy(&p->gone);
    }
    if (r != 0) {
        pthread_attr_destroy(&p->attr);
        free(p);
        errno = r;
        return NULL;
    }

    pthread_mutex_lock(&p->mu);
    for (unsigned i = 0; i < c.min_threads && r == 0; i++)
        r = spawn(p);
    pthread_mutex_unlock(&p->mu);
    if (r < 0) {
        /* The minimum is a promise; a pool that cannot keep it is not
         * handed out. The threads already started leave at once. */
        wisp_pool_destroy(p);
        errno = r == -ENOMEM ? ENOMEM : EAGAIN;
        return NULL;
    }
    return p;
}

wisp_future_t *wisp_pool_submit(wisp_pool_t *pool, wisp_prio_t prio,
                                wisp_loop_t *loop, wisp_pool_fn fn,
                                void *arg)
{
    return wisp_pool_submit_job(pool, prio, loop, fn, arg, NULL);
}

int wisp_pool_job_cancelled(void)
{
    item *it = self_item;
    return it && wisp_future_state(it->f) != WISP_FUTURE_PENDING;
}

wisp_future_t *wisp_pool_submit_job(wisp_pool_t *pool, wisp_prio_t prio,
                                    wisp_loop_t *loop, wisp_pool_fn fn,
                                    void *arg, wisp_free_cb arg_free)
{
    wisp_future_t *f = wisp_future_create(loop);
    if (!f) {
        int e = errno; /* EINVAL (no loop) or ENOMEM */
        if (arg_free)
            arg_free(arg);
        errno = e;
        return NULL;
    }
    if (!pool || !fn || (unsigned)prio >= WISP_PRIO_COUNT) {
        if (arg_free)
            arg_free(arg);
        wisp_future_fail(f, -EINVAL);
        return f;
    }
    item *it = malloc(sizeof *it);
    if (!it) {
        if (arg_free)
            arg_free(arg);
        wisp_future_unref(f);
        errno = ENOMEM;
        return NULL;
    }
    it->fn = fn;
    it->arg = arg;
    it->arg_free = arg_free;
    it->f = f;

    int err = 0;
    item *swept = NULL;
    pthread_mutex_lock(&pool->mu);
    if (pool->stopping) {
        err = -ECANCELED;
    } else if (pool->queued >= pool->cfg.queue_limit &&
               ((swept = sweep_settled(pool)) == NULL ||
                pool->queued >= pool->cfg.queue_limit)) {
        err = -EAGAIN;
    } else {
        wisp_future_ref(f); /* the pool's, dropped once f is settled */
        push(pool, (unsigned)prio, it);
        pool->submitted++;
        /* Grow while queued work outnumbers the threads waiting for it:
         * those already signalled but not yet awake still count as idle,
         * which `idle == 0` alone would miss in a burst. */
        if (pool->queued > pool->idle &&
            pool->threads < pool->cfg.max_threads) {
            wthread *reap = pool->zombies;
            pool->zombies = NULL;
            int r = spawn(pool);
            if (r < 0 && pool->threads == 0) {
                /* No thread would ever take it. With no thread the queue
                 * was empty (threads only leave an empty queue), so the
                 * item is alone in its list. */
                pool->q[prio].head = pool->q[prio].tail = NULL;
                pool->queued--;
                pool->submitted--;
                wisp_future_unref(f); /* the pool's; the caller's remains */
                err = -EAGAIN;
            }
            if (reap) {
                pthread_mutex_unlock(&pool->mu);
                join_all(reap);
                pthread_mutex_lock(&pool->mu);
            }
        }
        if (!err)
            pthread_cond_signal(&pool->work);
    }
    if (err)
        pool->rejected++;
    pthread_mutex_unlock(&pool->mu);

    release(swept, 0);
    if (err) {
        drop_arg(it);
        free(it);
        wisp_future_fail(f, err);
    }
    return f;
}

void wisp_pool_stats(wisp_pool_t *pool, wisp_pool_stats_t *out)
{
    pthread_mutex_lock(&pool->mu);
    out->submitted = pool->submitted;
    out->completed = pool->completed;
    out->failed = pool->failed;
    out->rejected = pool->rejected;
    out->cancelled = pool->cancelled;
    out->busy_ns = pool->busy_ns;
    out->queued = pool->queued;
    out->running = pool->running;
    out->threads = pool->threads;
    out->peak_threads = pool->peak;
    pthread_mutex_unlock(&pool->mu);
}

int wisp_pool_shutdown(wisp_pool_t *pool, int drain, uint64_t timeout_ms)
{
    if (!pool)
        return -EINVAL;
    if (self_pool == pool)
        return -EDEADLK; /* it would wait for its own thread */
    struct timespec until = deadline_in(timeout_ms < FOREVER_MS ? timeout_ms
                                                                : 0);
    item *cancel = NULL;
    pthread_mutex_lock(&pool->mu);
    pool->stopping = 1;
    if (!drain)
        cancel = take_all(pool);
    pthread_cond_broadcast(&pool->work);
    pthread_mutex_unlock(&pool->mu);

    release(cancel, -ECANCELED);

    int err = 0;
    pthread_mutex_lock(&pool->mu);
    while (pool->threads > 0) {
        if (timeout_ms >= FOREVER_MS) {
            pthread_cond_wait(&pool->gone, &pool->mu);
        } else if (pthread_cond_timedwait(&pool->gone, &pool->mu, &until) ==
                       ETIMEDOUT &&
                   pool->threads > 0) {
            err = -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&pool->mu);
    return err;
}

void wisp_pool_destroy(wisp_pool_t *pool)
{
    if (!pool)
        return;
    assert(self_pool != pool);
    /* A shutdown already begun keeps its choice (a drain goes on);
     * otherwise queued work is cancelled. */
    pthread_mutex_lock(&pool->mu);
    int drain = pool->stopping;
    pthread_mutex_unlock(&pool->mu);
    wisp_pool_shutdown(pool, drain, UINT64_MAX);

    /* Every thread has left (threads == 0) and put itself on the zombie
     * list or been joined by a thread that did: joining the list waits
     * for all of them. */
    pthread_mutex_lock(&pool->mu);
    wthread *reap = pool->zombies;
    pool->zombies = NULL;
    pthread_mutex_unlock(&pool->mu);
    join_all(reap);

    pthread_cond_destroy(&pool->work);
    pthread_cond_destroy(&pool->gone);
    pthread_mutex_destroy(&pool->mu);
    pthread_attr_destroy(&pool->attr);
    free(pool);
}
