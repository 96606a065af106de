/* The inbox: a bounded, lock-free multi-producer single-consumer queue of
 * tasks posted to a loop from any thread.
 *
 * Queue. The inbox is SHARDS Treiber stacks, each on its own cache line.
 * A producer thread always pushes to the same shard (chosen round robin
 * at its first post), so FIFO per producer holds and producers running
 * on different cores do not fight over one line. A push is one CAS. The
 * loop takes each shard whole with one exchange, reverses it to FIFO
 * order and runs everything it took in one pass, no lock.
 *
 * Sleep and wake. Only a push onto an empty shard needs to care whether
 * the loop sleeps: it passes a gate word (an atomic add before the push,
 * a CAS after it that raises PENDING and shows whether the loop raised
 * ASLEEP). So the loop learns whether posts wait from one word, not from
 * every shard, and goes to sleep with one atomic OR. A push onto a
 * non-empty shard touches nothing but the shard; no producer touches the
 * loop after its post is in except inside the gate, which destroy waits
 * out. A busy loop costs its producers no syscall; a sleeping one gets
 * one eventfd write per shard that receives a post.
 *
 * Nodes. A malloc in the producer and a free in the loop (a cross-thread
 * free, contended on the producer's arena) cost more than the queue
 * itself, so nodes are recycled: after a pass the loop hands the nodes it
 * drained back to the shard they came from, one chain per shard, in the
 * shard's `spare` slot. A producer whose thread-local cache is empty
 * takes its shard's chain whole with one exchange, then pops nodes with
 * no atomic at all. Nobody pops a single node off a shared stack, so
 * there is no ABA. A shard keeps at most limit / SHARDS spare nodes (at
 * least SPARE_IDLE); what its producers leave beyond that is set aside
 * (up to a limit's worth, freed at once past that) and freed, a step at
 * a time, when the loop goes idle, which also trims each shard to
 * SPARE_IDLE. A thread's cache holds at most the one chain it took last;
 * it is freed when the thread exits (a pthread key destructor) and, for
 * the thread that calls exit(), by a library destructor.
 *
 * Bound. A counter every post updates would be one more line that every
 * producer fights over, so producers reserve slots in grants: a post
 * that holds no grant for this loop adds g = limit / GRANT_DIV (at least
 * 1, at most GRANT_MAX) to the loop's counter at once and spends the
 * grant over its next g posts to the same loop. The first node of a grant
 * carries `charge = g`, and the loop subtracts it when it takes that
 * node. Hence, per producer thread:
 *  - the posts of a grant made after its first node was taken are not
 *    counted: the inbox may hold up to g - 1 tasks per producer thread
 *    beyond the limit (a thread's grants never overlap in time, so only
 *    its current one can have uncounted posts, and the loop's next take
 *    removes them);
 *  - slots of a grant not yet spent stay reserved until its first node
 *    is taken: a post may see -EAGAIN while up to g - 1 tasks per thread
 *    fewer are queued.
 * Below a limit of 2 * GRANT_DIV, g = 1 and the bound is exact. A grant
 * names its loop by an epoch that is unique per loop and changes with
 * the limit, so a grant never outlives its loop or its limit. */
#include <assert.h>
#include <errno.h>
#include <sched.h>
#include <string.h>

#include "loop/loop_int.h"

enum {
    SHARDS = WISP__INBOX_SHARDS,
    GRANT_MAX = WISP__INBOX_GRANT_MAX,
    GRANT_DIV = WISP__INBOX_GRANT_DIV,
    SPARE_IDLE = WISP__INBOX_SPARE_IDLE,
    TRIM_STEP = 4096, /* spare nodes freed per idle iteration */
};
#define LIMIT_MAX (UINT32_C(1) << 31) /* the counter must not wrap */

static_assert(SHARDS <= 255, "a node keeps its shard in a uint8_t");
static_assert(SPARE_IDLE >= 1, "the idle trim keeps a chain head");

/* ---- the producing thread's node cache, shard and grant */

typedef struct node_cache {
    wisp__task *spare;   /* free nodes, a chain */
    uint32_t epoch;      /* the grant's loop and limit; 0: no grant */
    uint32_t credits;    /* posts left in the grant */
    uint32_t shard;      /* this thread's shard, plus one; 0: not chosen */
    int registered;      /* the thread-exit destructor frees `spare` */
} node_cache;

static __thread node_cache tls_cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static int cache_key_ok;
static _Atomic uint32_t last_epoch;
static _Atomic uint32_t last_shard;

static void free_chain(wisp__task *t)
{
    while (t) {
        wisp__task *next = t->next;
        free(t);
        t = next;
    }
}

static void cache_free(void *p)
{
    node_cache *c = p;
    wisp__task *t = c->spare;
    c->spare = NULL;
    c->registered = 0; /* a later post registers again */
    free_chain(t);
}

static void cache_key_create(void)
{
    cache_key_ok = pthread_key_create(&cache_key, cache_free) == 0;
}

/* Make sure this thread's cache is freed when the thread exits. Returns 0
 * when that cannot be arranged: then the thread keeps no nodes. */
static int cache_register(node_cache *c)
{
    if (c->registered)
        return 1;
    pthread_once(&cache_once, cache_key_create);
    if (!cache_key_ok || pthread_setspecific(cache_key, c) != 0)
        return 0;
    c->registered = 1;
    return 1;
}

/* exit() runs no key destructors: free the exiting thread's cache. Other
 * threads' caches go with their threads. */
__attribute__((destructor)) static void cache_fini(void)
{
    cache_free(&tls_cache);
}

static wisp__inbox_shard *my_shard(wisp_loop_t *loop, node_cache *c)
{
    if (!c->shard)
        c->shard = atomic_fetch_add_explicit(&last_shard, 1,
                                             memory_order_relaxed) %
                       SHARDS + 1;
    return &loop->inbox[c->shard - 1];
}

static wisp__task *node_get(wisp__inbox_shard *s, node_cache *c)
{
    wisp__task *t = c->spare;
    if (t) {
        c->spare = t->next;
        return t;
    }
    /* Only the loop stores a chain here; look before taking, so an empty
     * slot costs no write. */
    if (atomic_load_explicit(&s->spare, memory_order_relaxed)) {
        t = atomic_exchange_explicit(&s->spare, NULL, memory_order_acquire);
        if (t) {
            if (t->next && cache_register(c))
                c->spare = t->next;
            else
                free_chain(t->next);
            return t;
        }
    }
    return malloc(sizeof *t);
}

static void node_put(node_cache *c, wisp__task *t)
{
    if (cache_register(c)) {
        t->next = c->spare;
        c->spare = t;
    } else {
        free(t);
    }
}

static uint32_t next_epoch(void)
{
    uint32_t e;
    do
        e = atomic_fetch_add_explicit(&last_epoch, 1,
                                      memory_order_relaxed) + 1;
    while (e == 0); /* 0 means "no grant" */
    return e;
}

static uint32_t grant_size(uint32_t limit)
{
    uint32_t g = limit / GRANT_DIV;
    return g < 1 ? 1 : g > GRANT_MAX ? GRANT_MAX : g;
}

/* Reserve a grant on the loop's counter. Returns its size (this post's
 * charge), or 0 when the inbox is full. */
static uint32_t reserve(wisp_loop_t *loop, node_cache *c, uint32_t epoch)
{
    uint32_t limit = atomic_load_explicit(&loop->inbox_limit,
                                          memory_order_relaxed);
    uint32_t g = grant_size(limit);
    uint32_t n = atomic_fetch_add_explicit(&loop->inbox_len, g,
                                           memory_order_relaxed);
    if (n >= limit) {
        atomic_fetch_sub_explicit(&loop->inbox_len, g, memory_order_relaxed);
        return 0;
    }
    if (limit - n < g) { /* keep only the room there is */
        atomic_fetch_sub_explicit(&loop->inbox_len, g - (limit - n),
                                  memory_order_relaxed);
        g = limit - n;
    }
    c->epoch = epoch;
    c->credits = g - 1;
    return g;
}

/* ---- producers */

static void push(wisp_loop_t *loop, wisp__inbox_shard *s, wisp__task *t)
{
    t->shard = (uint8_t)(s - loop->inbox);
    wisp__task *head = atomic_load_explicit(&s->head, memory_order_relaxed);
    while (head) {
        /* The shard holds a post the loop has not taken yet, announced
         * through the gate: the loop takes ours with it. Nothing of the
         * loop is touched once the node is in. */
        t->next = head;
        if (atomic_compare_exchange_weak_explicit(&s->head, &head, t,
                                                  memory_order_release,
                                                  memory_order_relaxed))
            return;
    }
    /* First post onto an empty shard: pass the gate. While we are inside
     * it the loop cannot be destroyed (destroy waits for the count to
     * drop); leaving, we raise PENDING, and wake the loop if it went to
     * sleep meanwhile or before (the loop's own thread is not asleep: an
     * I/O callback may post before the loop lowers the flag). */
    atomic_fetch_add_explicit(&loop->inbox_gate, WISP__GATE_ONE,
                              memory_order_relaxed);
    do
        t->next = head;
    while (!atomic_compare_exchange_weak_explicit(&s->head, &head, t,
                                                  memory_order_release,
                                                  memory_order_relaxed));
    bool woke = false;
    uint32_t g = atomic_load_explicit(&loop->inbox_gate, memory_order_relaxed);
    for (;;) {
        if ((g & WISP__GATE_ASLEEP) && !woke) {
            if (wisp_loop_current() != loop)
                wisp__be_wake(loop);
            woke = true;
        }
        if (atomic_compare_exchange_weak_explicit(
                &loop->inbox_gate, &g,
                (g - WISP__GATE_ONE) | WISP__GATE_PENDING,
                memory_order_release, memory_order_relaxed))
            return;
    }
}

static int post_task(wisp_loop_t *loop, wisp_task_cb cb, wisp_task_cb drop,
                     void *arg)
{
    if (!loop || !cb)
        return -EINVAL;
    if (atomic_load_explicit(&loop->closing, memory_order_acquire))
        return -ECANCELED;
    node_cache *c = &tls_cache;
    wisp__inbox_shard *s = my_shard(loop, c);
    wisp__task *t = node_get(s, c);
    if (!t)
        return -ENOMEM;
    uint32_t charge = 0;
    uint32_t epoch = atomic_load_explicit(&loop->inbox_epoch,
                                          memory_order_relaxed);
    if (c->credits && c->epoch == epoch) {
        c->credits--;
    } else if (!(charge = reserve(loop, c, epoch))) {
        node_put(c, t);
        return -EAGAIN;
    }
    t->cb = cb;
    t->arg = arg;
    t->intrusive = 0;
    t->charge = charge;
    t->drop = drop;
    push(loop, s, t);
    return 0;
}

int wisp_loop_post(wisp_loop_t *loop, wisp_task_cb cb, void *arg)
{
    return post_task(loop, cb, NULL, arg);
}

int wisp__loop_post_drop(wisp_loop_t *loop, wisp_task_cb cb,
                         wisp_task_cb drop, void *arg)
{
    return post_task(loop, cb, drop, arg);
}

void wisp__loop_post_node(wisp_loop_t *loop, wisp__task *node)
{
    node->intrusive = 1;
    node->charge = 0;
    push(loop, my_shard(loop, &tls_cache), node);
}

void wisp_loop_set_inbox_limit(wisp_loop_t *loop, uint32_t limit)
{
    limit = limit < 1 ? 1 : limit > LIMIT_MAX ? LIMIT_MAX : limit;
    atomic_store_explicit(&loop->inbox_limit, limit, memory_order_relaxed);
    /* Grants taken under the old limit end with the old epoch. */
    atomic_store_explicit(&loop->inbox_epoch, next_epoch(),
                          memory_order_relaxed);
}

void wisp__inbox_init(wisp_loop_t *loop)
{
    for (int i = 0; i < SHARDS; i++) {
        atomic_init(&loop->inbox[i].head, NULL);
        atomic_init(&loop->inbox[i].spare, NULL);
        loop->inbox[i].spare_len = 0;
    }
    atomic_init(&loop->inbox_len, 0);
    atomic_init(&loop->inbox_limit, 65536);
    atomic_init(&loop->inbox_epoch, next_epoch());
    atomic_init(&loop->closing, 0);
    atomic_init(&loop->inbox_gate, 0);
}

/* ---- the loop */

/* Sleeping: the loop raises ASLEEP and sleeps unless PENDING was up.
 * A producer onto an empty shard raises PENDING when it leaves the gate,
 * after its post is in, in the same CAS that shows it whether ASLEEP is
 * up: either the loop sees PENDING and stays awake, or the producer sees
 * ASLEEP and wakes it. A post onto a non-empty shard follows one that
 * went through the gate and has not been taken. */
bool wisp__inbox_sleep(wisp_loop_t *loop)
{
    uint32_t g = atomic_fetch_or_explicit(&loop->inbox_gate,
                                          WISP__GATE_ASLEEP,
                                          memory_order_acq_rel);
    if (!(g & WISP__GATE_PENDING))
        return true;
    wisp__inbox_awake(loop);
    return false;
}

void wisp__inbox_awake(wisp_loop_t *loop)
{
    atomic_fetch_and_explicit(&loop->inbox_gate,
                              ~(uint32_t)WISP__GATE_ASLEEP,
                              memory_order_relaxed);
}

/* Take every shard, each whole, as one list: each shard in FIFO order,
 * the shards one after another. *charge: the slots the list gives back. */
static wisp__task *take_fifo(wisp_loop_t *loop, uint32_t *charge)
{
    wisp__task *first = NULL, **link = &first;
    uint32_t sum = 0;
    /* Lower PENDING first: a post announced after this is left for the
     * next pass with the flag up again; one announced before is visible
     * to the looks below (acquire). */
    atomic_fetch_and_explicit(&loop->inbox_gate,
                              ~(uint32_t)WISP__GATE_PENDING,
                              memory_order_acq_rel);
    for (int i = 0; i < SHARDS; i++) {
        wisp__inbox_shard *s = &loop->inbox[i];
        /* Look first: an empty shard's line stays shared, not stolen. */
        if (!atomic_load_explicit(&s->head, memory_order_relaxed))
            continue;
        wisp__task *t = atomic_exchange_explicit(&s->head, NULL,
                                                 memory_order_acquire);
        wisp__task *fifo = NULL, *last = t;
        while (t) {
            wisp__task *next = t->next;
            sum += t->charge;
            t->next = fifo;
            fifo = t;
            t = next;
        }
        *link = fifo;
        if (last)
            link = &last->next;
    }
    *charge = sum;
    return first;
}

static uint32_t spare_cap(uint32_t limit)
{
    uint32_t cap = limit / SHARDS;
    return cap < SPARE_IDLE ? SPARE_IDLE : cap;
}

/* Take a shard's spare chain back from its slot (NULL if a producer took
 * it meanwhile); *len: its length. */
static wisp__task *spare_take(wisp__inbox_shard *s, uint32_t *len)
{
    wisp__task *t = NULL;
    if (atomic_load_explicit(&s->spare, memory_order_relaxed))
        t = atomic_exchange_explicit(&s->spare, NULL, memory_order_acquire);
    *len = t ? s->spare_len : 0;
    return t;
}

static void spare_store(wisp__inbox_shard *s, wisp__task *t, uint32_t len)
{
    s->spare_len = len;
    if (t)
        atomic_store_explicit(&s->spare, t, memory_order_release);
}

/* Hand `n` drained nodes (head..tail) back to shard `s`, in front of
 * what its producers have not taken yet. */
static void give_back(wisp_loop_t *loop, wisp__inbox_shard *s,
                      wisp__task *head, wisp__task *tail, uint32_t n)
{
    uint32_t have;
    wisp__task *old = spare_take(s, &have);
    uint32_t limit = atomic_load_explicit(&loop->inbox_limit,
                                          memory_order_relaxed);
    if ((uint64_t)have + n > spare_cap(limit)) {
        /* Its producers are not taking their nodes back (they stopped
         * posting here, or the limit shrank). Freeing is for when the
         * loop has nothing else to do: keep the nodes aside until then,
         * up to a limit's worth. */
        spare_store(s, old, have);
        if ((uint64_t)loop->inbox_excess_len + n > limit) {
            free_chain(head);
            return;
        }
        tail->next = loop->inbox_excess;
        loop->inbox_excess = head;
        loop->inbox_excess_len += n;
        loop->inbox_trim = 1;
        return;
    }
    tail->next = old;
    spare_store(s, head, have + n);
    if (have + n > SPARE_IDLE)
        loop->inbox_trim = 1;
}

unsigned wisp__inbox_drain(wisp_loop_t *loop)
{
    uint32_t charge;
    wisp__task *t = take_fifo(loop, &charge);
    if (!t)
        return 0;
    /* The taken tasks no longer occupy the inbox: give their room back in
     * one atomic operation, not one per task. */
    if (charge)
        atomic_fetch_sub_explicit(&loop->inbox_len, charge,
                                  memory_order_relaxed);
    struct {
        wisp__task *head, *tail;
        uint32_t n;
    } back[SHARDS];
    memset(back, 0, sizeof back);
    unsigned ran = 0;
    while (t) {
        wisp__task *next = t->next;
        wisp_task_cb cb = t->cb;
        void *arg = t->arg;
        if (!t->intrusive) {
            /* Ours until handed back below, after the whole pass. */
            t->next = back[t->shard].head;
            back[t->shard].head = t;
            if (!back[t->shard].tail)
                back[t->shard].tail = t;
            back[t->shard].n++;
        }
        cb(arg); /* an intrusive node's owner may be freed here */
        t = next;
        ran++;
    }
    for (int i = 0; i < SHARDS; i++)
        if (back[i].head)
            give_back(loop, &loop->inbox[i], back[i].head, back[i].tail,
                      back[i].n);
    return ran;
}

/* Free up to `max` nodes from the front of the chain `t`; returns the
 * rest. */
static wisp__task *free_some(wisp__task *t, uint32_t max)
{
    for (uint32_t k = 0; t && k < max; k++) {
        wisp__task *next = t->next;
        free(t);
        t = next;
    }
    return t;
}

bool wisp__inbox_idle(wisp_loop_t *loop)
{
    if (!loop->inbox_trim) /* the common case: one load per sleep */
        return false;
    /* A step at a time, so that a loop coming out of a long burst still
     * answers promptly. */
    uint32_t budget = TRIM_STEP;
    if (loop->inbox_excess) {
        uint32_t n = loop->inbox_excess_len < budget
                         ? loop->inbox_excess_len : budget;
        loop->inbox_excess = free_some(loop->inbox_excess, n);
        loop->inbox_excess_len -= n;
        budget -= n;
    }
    for (int i = 0; i < SHARDS && budget; i++) {
        wisp__inbox_shard *s = &loop->inbox[i];
        if (s->spare_len <= SPARE_IDLE)
            continue;
        uint32_t len;
        wisp__task *t = spare_take(s, &len);
        if (!t) { /* a producer took it */
            s->spare_len = 0;
            continue;
        }
        uint32_t n = len - SPARE_IDLE < budget ? len - SPARE_IDLE : budget;
        spare_store(s, free_some(t, n), len - n);
        budget -= n;
    }
    if (loop->inbox_excess)
        return true;
    for (int i = 0; i < SHARDS; i++)
        if (loop->inbox[i].spare_len > SPARE_IDLE)
            return true;
    loop->inbox_trim = 0;
    return false;
}

void wisp__inbox_discard(wisp_loop_t *loop)
{
    /* A producer may still be inside the gate (writing the wake fd) for
     * a post the loop has already run: let it leave before the fd and the
     * loop go. */
    while (atomic_load_explicit(&loop->inbox_gate, memory_order_acquire) >=
           WISP__GATE_ONE)
        sched_yield();
    uint32_t charge;
    wisp__task *t = take_fifo(loop, &charge);
    while (t) {
        wisp__task *next = t->next;
        wisp_task_cb drop = t->drop;
        void *arg = t->arg;
        if (!t->intrusive)
            free(t);
        if (drop) /* may free an intrusive node's owner, t with it */
            drop(arg);
        t = next;
    }
    for (int i = 0; i < SHARDS; i++) {
        uint32_t len;
        free_chain(spare_take(&loop->inbox[i], &len));
        loop->inbox[i].spare_len = 0;
    }
    free_chain(loop->inbox_excess);
    loop->inbox_excess = NULL;
    loop->inbox_excess_len = 0;
    loop->inbox_trim = 0;
    atomic_store(&loop->inbox_len, 0);
}
