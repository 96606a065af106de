/* The inbox (src/loop/inbox.c): FIFO per producer, the bound (exact below
 * 2 * GRANT_DIV, within the documented slack per producer thread above),
 * -EAGAIN and -ECANCELED, intrusive nodes, counted posts whose drop runs
 * instead when the loop is destroyed first, the sleep/wake gate, node
 * recycling across threads, threads that exit with cached nodes, wake-ups
 * of a sleeping loop, and a stress of millions of posts from many threads
 * to several running loops (run under TSan, ASan and valgrind in CI: the
 * leak checkers see the caches of exited threads and of the main thread
 * at exit).
 *
 * WISP_TEST_QUICK=1 in the environment shrinks the stress (for valgrind,
 * which runs threads one at a time). */
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "loop/loop_int.h"
#include "test.h"

static int quick;
/* CHECK is not thread-safe: other threads count their failures here. */
static _Atomic long thread_errors;
#define T_CHECK(cond) ((cond) ? (void)0 : (void)atomic_fetch_add(&thread_errors, 1))

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t grant_of(uint32_t limit)
{
    uint32_t g = limit / WISP__INBOX_GRANT_DIV;
    return g < 1 ? 1 : g > WISP__INBOX_GRANT_MAX ? WISP__INBOX_GRANT_MAX : g;
}

static int seen[16];
static long total;

static void note(void *arg)
{
    intptr_t v = (intptr_t)arg;
    seen[total < 16 ? total : 15] = (int)v;
    total++;
}

static void nop(void *arg)
{
    (void)arg;
}

/* Tasks queued in the inbox right now (no producer may be running). */
static long queued(wisp_loop_t *loop)
{
    long n = 0;
    for (int i = 0; i < WISP__INBOX_SHARDS; i++)
        for (wisp__task *t = atomic_load(&loop->inbox[i].head); t;
             t = t->next)
            n++;
    return n;
}

static long chain_len(wisp__task *t)
{
    long n = 0;
    for (; t; t = t->next)
        n++;
    return n;
}

/* Spare nodes kept by the loop's shards (no producer may be running). */
static long spares(wisp_loop_t *loop)
{
    long n = 0;
    for (int i = 0; i < WISP__INBOX_SHARDS; i++)
        n += chain_len(atomic_load(&loop->inbox[i].spare));
    return n;
}

static void test_fifo_and_bound(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_loop_set_inbox_limit(loop, 4);
    total = 0;
    for (intptr_t i = 0; i < 4; i++)
        CHECK_EQ_INT(wisp_loop_post(loop, note, (void *)i), 0);
    CHECK_EQ_INT(wisp_loop_post(loop, note, (void *)99), -EAGAIN);
    CHECK_EQ_INT(wisp_loop_post(loop, NULL, NULL), -EINVAL);
    CHECK_EQ_INT(wisp_loop_post(NULL, note, NULL), -EINVAL);
    CHECK_EQ_INT(wisp__inbox_drain(loop), 4);
    CHECK_EQ_INT(total, 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(seen[i], i);
    /* Room again after the drain. */
    CHECK_EQ_INT(wisp_loop_post(loop, note, (void *)5), 0);
    wisp_loop_destroy(loop); /* drops the queued task without running it */
    CHECK_EQ_INT(total, 4);
}

/* ---- grants: the documented slack, exactly */

static void *post_one(void *arg)
{
    T_CHECK(wisp_loop_post(arg, nop, NULL) == 0);
    return NULL;
}

static void test_grant_slack(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    uint32_t limit = 4 * WISP__INBOX_GRANT_DIV, g = grant_of(limit);
    CHECK_EQ_INT(g, 4);
    wisp_loop_set_inbox_limit(loop, limit);

    /* A grant is reserved whole by its first post and given back whole
     * when the loop takes that post. */
    CHECK_EQ_INT(wisp_loop_post(loop, nop, NULL), 0);
    CHECK_EQ_INT(atomic_load(&loop->inbox_len), g);
    CHECK_EQ_INT(wisp__inbox_drain(loop), 1);
    CHECK_EQ_INT(atomic_load(&loop->inbox_len), 0);
    /* The rest of that grant is not counted: a full inbox holds g - 1
     * tasks more than the limit (the documented slack per thread). */
    long accepted = 0;
    while (wisp_loop_post(loop, nop, NULL) == 0)
        accepted++;
    CHECK_EQ_INT(accepted, limit + g - 1);
    CHECK_EQ_INT(queued(loop), limit + g - 1);
    CHECK_EQ_INT(wisp__inbox_drain(loop), limit + g - 1);
    CHECK_EQ_INT(atomic_load(&loop->inbox_len), 0);

    /* Unspent slots of another thread's grant stay reserved until its
     * first post is taken: the inbox fills g - 1 tasks early. */
    pthread_t th;
    pthread_create(&th, NULL, post_one, loop);
    pthread_join(th, NULL);
    accepted = 0;
    while (wisp_loop_post(loop, nop, NULL) == 0)
        accepted++;
    CHECK_EQ_INT(accepted, limit - g);
    CHECK_EQ_INT(queued(loop), limit - (g - 1));
    CHECK_EQ_INT(wisp__inbox_drain(loop), limit - (g - 1));

    /* A new limit ends every grant: the credits left are void. */
    CHECK_EQ_INT(wisp_loop_post(loop, nop, NULL), 0); /* 3 credits left */
    wisp_loop_set_inbox_limit(loop, 2);
    CHECK_EQ_INT(wisp_loop_post(loop, nop, NULL), -EAGAIN); /* 4 > 2 held */
    CHECK_EQ_INT(wisp__inbox_drain(loop), 1);
    CHECK_EQ_INT(wisp_loop_post(loop, nop, NULL), 0);
    CHECK_EQ_INT(wisp_loop_post(loop, nop, NULL), 0);
    CHECK_EQ_INT(wisp_loop_post(loop, nop, NULL), -EAGAIN); /* exact */
    CHECK_EQ_INT(wisp__inbox_drain(loop), 2);
    /* 0 means 1; absurd limits are clamped so the counter cannot wrap. */
    wisp_loop_set_inbox_limit(loop, 0);
    CHECK_EQ_INT(wisp_loop_post(loop, nop, NULL), 0);
    CHECK_EQ_INT(wisp_loop_post(loop, nop, NULL), -EAGAIN);
    CHECK_EQ_INT(wisp__inbox_drain(loop), 1);
    wisp_loop_set_inbox_limit(loop, UINT32_MAX);
    CHECK(atomic_load(&loop->inbox_limit) <= (UINT32_C(1) << 31));
    wisp_loop_destroy(loop);

    /* A grant never outlives its loop, even when the next loop gets the
     * same address: the new loop counts the new post. */
    wisp_loop_t *a = wisp_loop_create();
    CHECK_EQ_INT(wisp_loop_post(a, nop, NULL), 0); /* 31 credits left */
    wisp_loop_destroy(a);
    wisp_loop_t *b = wisp_loop_create();
    CHECK_EQ_INT(wisp_loop_post(b, nop, NULL), 0);
    CHECK_EQ_INT(atomic_load(&b->inbox_len), grant_of(65536));
    wisp_loop_destroy(b);
}

/* ---- closing, intrusive nodes */

typedef struct owner {
    wisp__task node;
    int ran, dropped;
} owner;

static void owner_run(void *arg)
{
    ((owner *)arg)->ran++;
    note((void *)(intptr_t)100);
}

static void owner_drop(void *arg)
{
    ((owner *)arg)->dropped++;
}

static void test_closing_and_intrusive(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    atomic_store(&loop->closing, 1);
    CHECK_EQ_INT(wisp_loop_post(loop, nop, NULL), -ECANCELED);
    atomic_store(&loop->closing, 0);

    /* Intrusive nodes: FIFO with the same thread's posts, not counted
     * against the limit, never recycled. */
    wisp_loop_set_inbox_limit(loop, 1);
    owner o = {.node = {.cb = owner_run, .drop = owner_drop}};
    o.node.arg = &o;
    total = 0;
    CHECK_EQ_INT(wisp_loop_post(loop, note, (void *)1), 0);
    wisp__loop_post_node(loop, &o.node);
    CHECK_EQ_INT(wisp_loop_post(loop, note, (void *)2), -EAGAIN);
    CHECK_EQ_INT(atomic_load(&loop->inbox_len), 1);
    CHECK_EQ_INT(wisp__inbox_drain(loop), 2);
    CHECK_EQ_INT(seen[0], 1);
    CHECK_EQ_INT(seen[1], 100);
    CHECK_EQ_INT(o.ran, 1);
    int recycled = 0;
    for (int i = 0; i < WISP__INBOX_SHARDS; i++)
        for (wisp__task *t = atomic_load(&loop->inbox[i].spare); t;
             t = t->next)
            recycled += t == &o.node;
    CHECK_EQ_INT(recycled, 0);
    /* Still queued at destroy: its drop runs, the loop does not free it. */
    wisp__loop_post_node(loop, &o.node);
    wisp_loop_destroy(loop);
    CHECK_EQ_INT(o.dropped, 1);
    CHECK_EQ_INT(o.ran, 1);
}

/* ---- counted posts with a drop (wisp__loop_post_drop) */

typedef struct held {
    int ran, dropped;
} held;

static void held_run(void *arg)
{
    ((held *)arg)->ran++;
}

static void held_drop(void *arg)
{
    ((held *)arg)->dropped++;
}

static void test_post_drop(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_loop_set_inbox_limit(loop, 2);
    held a = {0}, b = {0}, c = {0}, d = {0};
    /* Counted like any post, bound included; after an error neither
     * callback runs. */
    CHECK_EQ_INT(wisp__loop_post_drop(loop, held_run, held_drop, &a), 0);
    CHECK_EQ_INT(wisp__loop_post_drop(loop, held_run, held_drop, &b), 0);
    CHECK_EQ_INT(wisp__loop_post_drop(loop, held_run, held_drop, &c),
                 -EAGAIN);
    CHECK_EQ_INT(wisp__loop_post_drop(loop, NULL, held_drop, &c), -EINVAL);
    CHECK_EQ_INT(atomic_load(&loop->inbox_len), 2);
    /* Taken by the loop: cb runs, drop does not. */
    CHECK_EQ_INT(wisp__inbox_drain(loop), 2);
    CHECK(a.ran == 1 && a.dropped == 0);
    CHECK(b.ran == 1 && b.dropped == 0);
    CHECK(c.ran == 0 && c.dropped == 0);
    /* A recycled node posted with plain wisp_loop_post drops nothing. */
    total = 0;
    CHECK_EQ_INT(wisp_loop_post(loop, note, (void *)7), 0);
    /* Still queued at destroy: drop runs once, cb never. */
    CHECK_EQ_INT(wisp__loop_post_drop(loop, held_run, held_drop, &d), 0);
    wisp_loop_destroy(loop);
    CHECK(d.ran == 0 && d.dropped == 1);
    CHECK(a.dropped == 0 && b.dropped == 0);
    CHECK_EQ_INT(total, 0);
    /* Closing: refused, neither runs. */
    loop = wisp_loop_create();
    atomic_store(&loop->closing, 1);
    CHECK_EQ_INT(wisp__loop_post_drop(loop, held_run, held_drop, &c),
                 -ECANCELED);
    atomic_store(&loop->closing, 0);
    wisp_loop_destroy(loop);
    CHECK(c.ran == 0 && c.dropped == 0);
}

/* ---- the gate: sleeping and waking */

static int wake_fd_readable(wisp_loop_t *loop)
{
    struct pollfd p = {.fd = loop->wake_fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

static void *destroy_thread(void *arg)
{
    wisp_loop_destroy(arg);
    return NULL;
}

static _Atomic int gate_left, drop_saw_left;

static void gate_drop(void *arg)
{
    (void)arg;
    atomic_store(&drop_saw_left, atomic_load(&gate_left));
}

static void test_gate(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    /* Nothing waits: the loop may sleep; a post wakes it once. */
    CHECK(!wisp__inbox_pending(loop));
    CHECK(wisp__inbox_sleep(loop));
    CHECK(!wake_fd_readable(loop));
    CHECK_EQ_INT(wisp_loop_post(loop, nop, NULL), 0);
    CHECK(wake_fd_readable(loop));
    CHECK(wisp__inbox_pending(loop));
    wisp__be_wake_ack(loop);
    wisp__inbox_awake(loop);
    /* A post onto a non-empty shard does not touch the gate. */
    uint32_t g = atomic_load(&loop->inbox_gate);
    CHECK_EQ_INT(wisp_loop_post(loop, nop, NULL), 0);
    CHECK_EQ_INT(atomic_load(&loop->inbox_gate), g);
    /* Posts waiting: no sleep, and the flag stays down. */
    CHECK(!wisp__inbox_sleep(loop));
    CHECK_EQ_INT(atomic_load(&loop->inbox_gate) & WISP__GATE_ASLEEP, 0);
    CHECK_EQ_INT(wisp__inbox_drain(loop), 2);
    CHECK(!wisp__inbox_pending(loop));

    /* A producer still inside the gate when the loop goes to sleep (here
     * a pretend one, then a real post): whoever leaves the gate after the
     * flag went up wakes the loop. */
    atomic_fetch_add(&loop->inbox_gate, WISP__GATE_ONE);
    CHECK(wisp__inbox_sleep(loop));
    CHECK_EQ_INT(wisp_loop_post(loop, nop, NULL), 0);
    CHECK(wake_fd_readable(loop));
    wisp__be_wake_ack(loop);
    wisp__inbox_awake(loop);
    CHECK_EQ_INT(wisp__inbox_drain(loop), 1);

    /* Destroy waits until nobody is inside the gate (a producer may be
     * writing the wake fd for a post the loop has already run). A task
     * queued before destroy is dropped only after that wait: its drop
     * records whether the gate had been left by then. The test releases
     * the gate once destroy has begun (loop->closing) and, to give a
     * destroy that did not wait the chance to show it, once the drop has
     * run or 200 ms have passed — a bound that can only let a broken
     * destroy slip through, never fail a correct one. */
    atomic_store(&gate_left, 0);
    atomic_store(&drop_saw_left, -1);
    CHECK_EQ_INT(wisp__loop_post_drop(loop, nop, gate_drop, NULL), 0);
    pthread_t th;
    pthread_create(&th, NULL, destroy_thread, loop);
    while (!atomic_load(&loop->closing))
        sched_yield();
    uint64_t end = now_ms() + 200;
    while (atomic_load(&drop_saw_left) < 0 && now_ms() < end)
        sched_yield();
    atomic_store(&gate_left, 1);
    atomic_fetch_sub(&loop->inbox_gate, WISP__GATE_ONE);
    pthread_join(th, NULL);
    CHECK_EQ_INT(atomic_load(&drop_saw_left), 1);
}

/* ---- recycling: nodes go back to the thread that posted them */

typedef struct recycler {
    wisp_loop_t *loop;
    pthread_barrier_t *step;
    int n;
} recycler;

static wisp__task *first_seen[256];
static int nfirst;

static void *recycle_thread(void *arg)
{
    recycler *r = arg;
    for (int i = 0; i < r->n; i++)
        wisp_loop_post(r->loop, nop, NULL);
    pthread_barrier_wait(r->step); /* main looks and drains */
    pthread_barrier_wait(r->step);
    for (int i = 0; i < r->n; i++)
        wisp_loop_post(r->loop, nop, NULL);
    pthread_barrier_wait(r->step); /* main looks and drains */
    pthread_barrier_wait(r->step);
    /* Take the spares back and exit with n - 1 of them cached: the
     * thread's exit frees them (valgrind and ASan would see a leak). */
    wisp_loop_post(r->loop, nop, NULL);
    return NULL;
}

static int shard_of_posts(wisp_loop_t *loop)
{
    for (int i = 0; i < WISP__INBOX_SHARDS; i++)
        if (atomic_load(&loop->inbox[i].head))
            return i;
    return -1;
}

static void test_recycling(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    pthread_barrier_t step;
    pthread_barrier_init(&step, NULL, 2);
    recycler r = {loop, &step, 100};
    pthread_t th;
    pthread_create(&th, NULL, recycle_thread, &r);

    pthread_barrier_wait(&step);
    int s = shard_of_posts(loop);
    CHECK(s >= 0);
    nfirst = 0;
    for (wisp__task *t = atomic_load(&loop->inbox[s].head); t; t = t->next)
        first_seen[nfirst++ % 256] = t;
    CHECK_EQ_INT(nfirst, 100);
    CHECK_EQ_INT(wisp__inbox_drain(loop), 100);
    /* All 100 went back to the shard they came from, none elsewhere. */
    CHECK_EQ_INT(chain_len(atomic_load(&loop->inbox[s].spare)), 100);
    CHECK_EQ_INT(loop->inbox[s].spare_len, 100);
    CHECK_EQ_INT(spares(loop), 100);
    pthread_barrier_wait(&step);

    pthread_barrier_wait(&step);
    /* The thread took them back with its first post: no malloc. */
    CHECK(atomic_load(&loop->inbox[s].spare) == NULL);
    int reused = 0;
    for (wisp__task *t = atomic_load(&loop->inbox[s].head); t; t = t->next)
        for (int i = 0; i < nfirst; i++)
            reused += t == first_seen[i];
    CHECK_EQ_INT(reused, 100);
    CHECK_EQ_INT(wisp__inbox_drain(loop), 100);
    pthread_barrier_wait(&step);
    pthread_join(th, NULL);
    CHECK_EQ_INT(wisp__inbox_drain(loop), 1);
    CHECK_EQ_INT(spares(loop), 1); /* the other 99 left with the thread */
    pthread_barrier_destroy(&step);

    /* Going idle keeps SPARE_IDLE per shard, freed a step at a time. */
    r.n = 5000;
    pthread_barrier_init(&step, NULL, 2);
    pthread_create(&th, NULL, recycle_thread, &r);
    pthread_barrier_wait(&step);
    CHECK_EQ_INT(wisp__inbox_drain(loop), 5000);
    s = -1;
    for (int i = 0; i < WISP__INBOX_SHARDS; i++)
        if (loop->inbox[i].spare_len == 5000)
            s = i;
    CHECK(s >= 0);
    CHECK(wisp__inbox_idle(loop)); /* more than one step to free */
    CHECK(!wisp__inbox_idle(loop));
    CHECK_EQ_INT(loop->inbox[s].spare_len, WISP__INBOX_SPARE_IDLE);
    CHECK_EQ_INT(chain_len(atomic_load(&loop->inbox[s].spare)),
                 WISP__INBOX_SPARE_IDLE);
    pthread_barrier_wait(&step);
    pthread_barrier_wait(&step);
    CHECK_EQ_INT(wisp__inbox_drain(loop), 5000);
    pthread_barrier_wait(&step);
    pthread_join(th, NULL);
    CHECK_EQ_INT(wisp__inbox_drain(loop), 1);
    pthread_barrier_destroy(&step);

    /* A shard whose producers do not take their nodes back keeps at most
     * limit / SHARDS (at least SPARE_IDLE): the rest waits for idle. */
    wisp_loop_set_inbox_limit(loop, 128);
    r.n = 100;
    pthread_barrier_init(&step, NULL, 2);
    pthread_create(&th, NULL, recycle_thread, &r);
    pthread_barrier_wait(&step);
    long before = spares(loop);
    CHECK_EQ_INT(wisp__inbox_drain(loop), 100);
    CHECK_EQ_INT(spares(loop), before); /* 100 > SPARE_IDLE: set aside */
    CHECK_EQ_INT(loop->inbox_excess_len, 100);
    CHECK(!wisp__inbox_idle(loop));
    CHECK_EQ_INT(loop->inbox_excess_len, 0);
    CHECK(loop->inbox_excess == NULL);
    pthread_barrier_wait(&step);
    pthread_barrier_wait(&step);
    CHECK_EQ_INT(wisp__inbox_drain(loop), 100);
    pthread_barrier_wait(&step);
    pthread_join(th, NULL);
    pthread_barrier_destroy(&step);
    wisp_loop_destroy(loop); /* frees the spares and the set-aside */
}

/* ---- threads that exit holding cached nodes, loops destroyed under
 * them; the main thread keeps a cache too (freed at exit) */

#define EXITERS 8

typedef struct exiter {
    wisp_loop_t *a, *b;
    pthread_barrier_t *step;
} exiter;

static void *exit_thread(void *arg)
{
    exiter *e = arg;
    for (int i = 0; i < 50; i++) {
        wisp_loop_post(e->a, nop, NULL);
        wisp_loop_post(e->b, nop, NULL);
    }
    pthread_barrier_wait(e->step); /* main drains both */
    pthread_barrier_wait(e->step);
    /* Takes a's spares (its shard), posts to b from that cache. */
    wisp_loop_post(e->a, nop, NULL);
    for (int i = 0; i < 10; i++)
        wisp_loop_post(e->b, nop, NULL);
    return NULL; /* exits holding nodes, grants for both loops */
}

static void test_thread_exit(void)
{
    for (int round = 0; round < 3; round++) {
        wisp_loop_t *a = wisp_loop_create(), *b = wisp_loop_create();
        pthread_barrier_t step;
        pthread_barrier_init(&step, NULL, EXITERS + 1);
        exiter e = {a, b, &step};
        pthread_t th[EXITERS];
        for (int i = 0; i < EXITERS; i++)
            pthread_create(&th[i], NULL, exit_thread, &e);
        pthread_barrier_wait(&step);
        CHECK_EQ_INT(wisp__inbox_drain(a), 50 * EXITERS);
        CHECK_EQ_INT(wisp__inbox_drain(b), 50 * EXITERS);
        pthread_barrier_wait(&step);
        for (int i = 0; i < EXITERS; i++)
            pthread_join(th[i], NULL);
        CHECK_EQ_INT(wisp__inbox_drain(b), 10 * EXITERS);
        /* The main thread takes spares too; its cache is freed at exit. */
        for (int i = 0; i < 20; i++)
            CHECK_EQ_INT(wisp_loop_post(a, nop, NULL), 0);
        wisp_loop_destroy(a); /* queued posts and spares freed */
        wisp_loop_destroy(b);
    }
}

/* ---- the bound under concurrent producers */

#define PRODUCERS 4
/* The producer's id above this bit of the posted pointer, its sequence
 * number below (24 bits where pointers have 32). */
#define ID_BITS_AT (sizeof(uintptr_t) * 8 - 8)

typedef struct producer {
    wisp_loop_t *loop;
    int id;
    long n;
    long rejected;
} producer;

static long last_seq[PRODUCERS];
static long got[PRODUCERS];
static long order_errors;
static long received;

static void consume(void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    int id = (int)(v >> ID_BITS_AT);
    long seq = (long)(v & (((uintptr_t)1 << ID_BITS_AT) - 1));
    if (seq <= last_seq[id])
        order_errors++;
    last_seq[id] = seq;
    got[id]++;
    received++;
}

static void *produce(void *arg)
{
    producer *p = arg;
    for (long i = 1; i <= p->n; i++) {
        uintptr_t v = ((uintptr_t)p->id << ID_BITS_AT) | (uintptr_t)i;
        while (wisp_loop_post(p->loop, consume, (void *)v) == -EAGAIN) {
            p->rejected++;
            sched_yield();
        }
    }
    return NULL;
}

static void reset_counts(void)
{
    received = order_errors = 0;
    for (int i = 0; i < PRODUCERS; i++)
        last_seq[i] = got[i] = 0;
}

/* The main thread drains by hand and looks at every take: none may be
 * larger than limit + PRODUCERS * (g - 1). */
static void bound_under(uint32_t limit, long per)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_loop_set_inbox_limit(loop, limit);
    reset_counts();
    producer ps[PRODUCERS];
    pthread_t th[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        ps[i] = (producer){loop, i, per, 0};
        pthread_create(&th[i], NULL, produce, &ps[i]);
    }
    long most = 0, rejected = 0, want = per * PRODUCERS;
    uint64_t end = now_ms() + 60000;
    while (received < want && now_ms() < end) {
        long n = (long)wisp__inbox_drain(loop);
        if (n > most)
            most = n;
        if (n == 0)
            sched_yield();
    }
    for (int i = 0; i < PRODUCERS; i++) {
        pthread_join(th[i], NULL);
        rejected += ps[i].rejected;
    }
    long bound = (long)limit + PRODUCERS * (long)(grant_of(limit) - 1);
    CHECK_MSG(most <= bound, "limit %u: a take of %ld > %ld", limit, most,
              bound);
    CHECK_EQ_INT(received, want);
    CHECK_EQ_INT(order_errors, 0);
    for (int i = 0; i < PRODUCERS; i++)
        CHECK_EQ_INT(got[i], per);
    CHECK(atomic_load(&loop->inbox_len) == 0);
    (void)rejected;
    wisp_loop_destroy(loop);
}

static void test_bound_concurrent(void)
{
    bound_under(64, quick ? 20000 : 100000);       /* g = 1: exact */
    bound_under(8192, quick ? 50000 : 200000);     /* g = 8 */
}

/* ---- a running loop: posts from threads, in order */

#define PER_PRODUCER 200000

static void stop_when_done(wisp_timer_t *t, void *arg)
{
    wisp_loop_t *loop = arg;
    if (received == (long)PRODUCERS * PER_PRODUCER)
        wisp_loop_break(loop);
    else
        wisp_timer_start(t, 1, stop_when_done, loop);
}

static void test_threads(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    wisp_loop_set_inbox_limit(loop, 4096);
    reset_counts();
    producer ps[PRODUCERS];
    pthread_t th[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        ps[i] = (producer){loop, i, PER_PRODUCER, 0};
        pthread_create(&th[i], NULL, produce, &ps[i]);
    }
    wisp_timer_t t;
    wisp_timer_init(loop, &t);
    wisp_timer_start(&t, 1, stop_when_done, loop);
    CHECK_EQ_INT(wisp_loop_run(loop), 0);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(th[i], NULL);
    CHECK_EQ_INT(received, (long)PRODUCERS * PER_PRODUCER);
    CHECK_EQ_INT(order_errors, 0);
    for (int i = 0; i < PRODUCERS; i++)
        CHECK_EQ_INT(got[i], PER_PRODUCER);
    wisp_loop_destroy(loop);
}

/* ---- stress: external threads and the loops themselves post to every
 * running loop, round after round with new loops (the threads keep
 * their caches and grants across loop lifetimes). Every post runs once,
 * in order per (producer, loop). */

#define LOOPS 3
#define EXT 4
#define SOURCES (EXT + LOOPS)
#define ROUNDS 2
/* A sender's number in the top 8 bits of the posted pointer, its sequence
 * number below (24 bits where pointers have 32: 16 M posts, enough). */
#define SEQ_BITS (sizeof(uintptr_t) * 8 - 8)

typedef struct sloop {
    wisp_loop_t *loop;
    pthread_t th;
    int idx;
    long expect;            /* posts it must receive this round */
    /* Its own thread only: */
    long received;
    long last[SOURCES];     /* last sequence number per source */
    long order_errors;
    long left[LOOPS];       /* its own posts still to send, per target */
    long sent[LOOPS];
    long eagain;
    int pump_done;
} sloop;

static sloop sl[LOOPS];
static long per_ext, per_pump;
static pthread_barrier_t round_start;
static _Atomic long ext_eagain;

static sloop *current(void)
{
    wisp_loop_t *l = wisp_loop_current();
    for (int i = 0; i < LOOPS; i++)
        if (sl[i].loop == l)
            return &sl[i];
    return NULL;
}

static void maybe_finish(sloop *me)
{
    if (me->received == me->expect && me->pump_done)
        wisp_loop_break(me->loop);
}

static void stress_recv(void *arg)
{
    sloop *me = current();
    uintptr_t v = (uintptr_t)arg;
    int src = (int)(v >> SEQ_BITS);
    long seq = (long)(v & (((uintptr_t)1 << SEQ_BITS) - 1));
    if (seq != me->last[src] + 1)
        me->order_errors++;
    me->last[src] = seq;
    me->received++;
    maybe_finish(me);
}

static void pump(void *arg)
{
    sloop *me = arg;
    int budget = 512; /* then let the loop drain its own inbox */
    for (int t = 0; t < LOOPS && budget > 0; t++) {
        while (me->left[t] > 0 && budget > 0) {
            uintptr_t v = ((uintptr_t)(EXT + me->idx) << SEQ_BITS) |
                          (uintptr_t)(me->sent[t] + 1);
            int r = wisp_loop_post(sl[t].loop, stress_recv, (void *)v);
            if (r == -EAGAIN) {
                me->eagain++;
                break; /* full: the next iteration tries again */
            }
            T_CHECK(r == 0);
            me->sent[t]++;
            me->left[t]--;
            budget--;
        }
    }
    for (int t = 0; t < LOOPS; t++)
        if (me->left[t] > 0) {
            wisp_loop_defer(me->loop, pump, me);
            return;
        }
    me->pump_done = 1;
    maybe_finish(me);
}

static void *stress_loop_thread(void *arg)
{
    sloop *me = arg;
    wisp_loop_defer(me->loop, pump, me);
    T_CHECK(wisp_loop_run(me->loop) == 0);
    return NULL;
}

static void *stress_ext_thread(void *arg)
{
    int src = (int)(intptr_t)arg;
    long eagain = 0;
    for (int round = 0; round < ROUNDS; round++) {
        pthread_barrier_wait(&round_start);
        for (long i = 1; i <= per_ext; i++)
            for (int t = 0; t < LOOPS; t++) {
                uintptr_t v = ((uintptr_t)src << SEQ_BITS) | (uintptr_t)i;
                int r;
                while ((r = wisp_loop_post(sl[t].loop, stress_recv,
                                           (void *)v)) == -EAGAIN) {
                    eagain++;
                    sched_yield();
                }
                T_CHECK(r == 0);
            }
    }
    atomic_fetch_add(&ext_eagain, eagain);
    return NULL; /* exits with cached nodes */
}

static void test_stress(void)
{
    per_ext = quick ? 15000 : 150000;
    per_pump = quick ? 10000 : 100000;
    /* Limits that give grants of 32, 4 and 1 (exact). */
    static const uint32_t limits[LOOPS] = {65536, 4096, 256};
    pthread_barrier_init(&round_start, NULL, EXT + 1);
    pthread_t ext[EXT];
    for (int i = 0; i < EXT; i++)
        pthread_create(&ext[i], NULL, stress_ext_thread, (void *)(intptr_t)i);
    long posts = 0, loop_eagain = 0;
    for (int round = 0; round < ROUNDS; round++) {
        memset(sl, 0, sizeof sl);
        for (int i = 0; i < LOOPS; i++) {
            sl[i].loop = wisp_loop_create();
            sl[i].idx = i;
            wisp_loop_set_inbox_limit(sl[i].loop, limits[i]);
            sl[i].expect = EXT * per_ext + (LOOPS - 1) * per_pump;
            for (int t = 0; t < LOOPS; t++)
                sl[i].left[t] = t == i ? 0 : per_pump;
        }
        for (int i = 0; i < LOOPS; i++)
            pthread_create(&sl[i].th, NULL, stress_loop_thread, &sl[i]);
        pthread_barrier_wait(&round_start);
        for (int i = 0; i < LOOPS; i++) {
            pthread_join(sl[i].th, NULL);
            CHECK_EQ_INT(sl[i].received, sl[i].expect);
            CHECK_EQ_INT(sl[i].order_errors, 0);
            for (int src = 0; src < EXT; src++)
                CHECK_EQ_INT(sl[i].last[src], per_ext);
            for (int l = 0; l < LOOPS; l++)
                CHECK_EQ_INT(sl[i].last[EXT + l], l == i ? 0 : per_pump);
            posts += sl[i].received;
            loop_eagain += sl[i].eagain;
        }
        for (int i = 0; i < LOOPS; i++)
            wisp_loop_destroy(sl[i].loop);
    }
    for (int i = 0; i < EXT; i++)
        pthread_join(ext[i], NULL);
    pthread_barrier_destroy(&round_start);
    CHECK_EQ_INT(posts, (long)ROUNDS * LOOPS *
                            (EXT * per_ext + (LOOPS - 1) * per_pump));
    printf("inbox stress: %ld posts over %d rounds of %d loops, %d "
           "external threads; %ld + %ld rejected (full) and retried\n",
           posts, ROUNDS, LOOPS, EXT, atomic_load(&ext_eagain), loop_eagain);
}

/* ---- wake-ups: every post to a sleeping loop wakes it */

#define PINGERS 4

typedef struct pinger {
    wisp_loop_t *loop;
    _Atomic int done;
    int n;
    int lost;
} pinger;

static _Atomic int pingers_left;

static void pong(void *arg)
{
    atomic_store_explicit(&((pinger *)arg)->done, 1, memory_order_release);
}

static void *ping_thread(void *arg)
{
    pinger *p = arg;
    for (int i = 0; i < p->n && !p->lost; i++) {
        atomic_store(&p->done, 0);
        T_CHECK(wisp_loop_post(p->loop, pong, p) == 0);
        uint64_t end = now_ms() + 10000;
        while (!atomic_load_explicit(&p->done, memory_order_acquire)) {
            if (now_ms() > end) {
                p->lost = 1; /* the loop slept through a post */
                break;
            }
            sched_yield();
        }
    }
    if (atomic_fetch_sub(&pingers_left, 1) == 1 || p->lost)
        wisp_loop_break(p->loop);
    return NULL;
}

static void test_wakeups(void)
{
    wisp_loop_t *loop = wisp_loop_create();
    pinger ps[PINGERS];
    pthread_t th[PINGERS];
    atomic_store(&pingers_left, PINGERS);
    for (int i = 0; i < PINGERS; i++) {
        ps[i].loop = loop;
        atomic_init(&ps[i].done, 0);
        ps[i].n = quick ? 300 : 3000;
        ps[i].lost = 0;
        pthread_create(&th[i], NULL, ping_thread, &ps[i]);
    }
    CHECK_EQ_INT(wisp_loop_run(loop), 0); /* sleeps between pings */
    for (int i = 0; i < PINGERS; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(ps[i].lost, 0);
    }
    wisp_loop_destroy(loop);
}

int main(void)
{
    const char *q = getenv("WISP_TEST_QUICK");
    quick = q && *q && *q != '0';
    test_fifo_and_bound();
    test_grant_slack();
    test_closing_and_intrusive();
    test_post_drop();
    test_gate();
    test_recycling();
    test_thread_exit();
    test_bound_concurrent();
    test_threads();
    test_wakeups();
    test_stress();
    CHECK_EQ_INT(atomic_load(&thread_errors), 0);
    return t_done("inbox");
}
