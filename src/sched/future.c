/* Futures: one-shot results owned by one loop, settled from any thread.
 *
 * Settling is one CAS (PENDING → SETTLING), the result is stored, then the
 * state is published (RESOLVED/FAILED, release). Whoever loses the CAS
 * gets -EALREADY and its value is destroyed at once: a late result is
 * never delivered. The winner schedules the continuations on the owner
 * loop through a task node embedded in the future (posted to the inbox
 * from another thread, deferred from the owner's own): no allocation, no
 * inbox bound to hit, so a resolution is never lost.
 *
 * References: the caller's, one per pending continuation dispatch, one
 * while a timeout timer is armed, one per combinator watching it. The
 * last unref destroys the value and frees the future, on whichever
 * thread drops it. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "loop/loop_int.h"
#include "wisp/future.h"

enum { ST_PENDING = 0, ST_RESOLVED = 1, ST_FAILED = 2, ST_SETTLING = 3 };

typedef struct cont {
    wisp_future_cb cb;
    void *arg;
} cont;

#define INLINE_CONTS 2

struct wisp_future {
    _Atomic uint32_t refs;
    _Atomic int state;
    int err;
    void *value;
    wisp_free_cb destroy;
    wisp_loop_t *owner;
    wisp__task node;        /* the settle notification */
    /* Owner thread only. */
    uint8_t dispatched;     /* the settle notification has run */
    uint8_t scheduled;      /* a dispatch is queued */
    uint8_t timer_armed;
    uint8_t taken;
    uint32_t nconts;
    uint32_t cap;
    cont *conts;            /* inline[] or heap */
    cont inline_conts[INLINE_CONTS];
    wisp_timer_t timer;
};

static void dispatch(void *arg);
static void discard(void *arg);

wisp_future_t *wisp_future_create(wisp_loop_t *owner)
{
    if (!owner) {
        errno = EINVAL;
        return NULL;
    }
    wisp_future_t *f = calloc(1, sizeof *f);
    if (!f) {
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&f->refs, 1);
    atomic_init(&f->state, ST_PENDING);
    f->owner = owner;
    f->conts = f->inline_conts;
    f->cap = INLINE_CONTS;
    f->node.cb = dispatch;
    f->node.drop = discard;
    f->node.arg = f;
    wisp_timer_init(owner, &f->timer);
    return f;
}

void wisp_future_ref(wisp_future_t *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void wisp_future_unref(wisp_future_t *f)
{
    if (!f)
        return;
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Last reference: nobody can settle or dispatch any more. */
    if (atomic_load_explicit(&f->state, memory_order_acquire) ==
            ST_RESOLVED &&
        !f->taken && f->destroy)
        f->destroy(f->value);
    if (f->conts != f->inline_conts)
        free(f->conts);
    free(f);
}

/* Queue a dispatch of the continuations on the owner loop. Holds a
 * reference until it runs. */
static void schedule(wisp_future_t *f, int from_settle)
{
    /* Settled while its loop is being destroyed (a child process reaped
     * by the loop's destructor): no continuation can run any more, and a
     * node queued now would be lost with the loop, its reference with
     * it. The state is still published for whoever holds the future;
     * the references of the continuations (and of a timeout) go as
     * when a queued dispatch is dropped. */
    if (from_settle &&
        atomic_load_explicit(&f->owner->closing, memory_order_acquire)) {
        wisp_future_ref(f);
        discard(f);
        return;
    }
    wisp_future_ref(f);
    if (from_settle && wisp_loop_current() != f->owner) {
        wisp__loop_post_node(f->owner, &f->node);
        return;
    }
    if (from_settle) {
        f->scheduled = 1;
        wisp__loop_defer_node(f->owner, &f->node);
        return;
    }
    /* A continuation added after the first dispatch: the embedded node
     * may still be queued, so use an ordinary deferred task. */
    f->scheduled = 1;
    if (wisp_loop_defer(f->owner, dispatch, f) < 0) {
        /* Out of memory: try again through the node if it is free. */
        f->scheduled = 0;
        wisp_future_unref(f);
    }
}

static int settle(wisp_future_t *f, int state, void *value,
                  wisp_free_cb destroy, int err)
{
    int expect = ST_PENDING;
    if (!atomic_compare_exchange_strong_explicit(&f->state, &expect,
                                                 ST_SETTLING,
                                                 memory_order_acq_rel,
                                                 memory_order_acquire)) {
        if (destroy)
            destroy(value); /* late: never delivered */
        return -EALREADY;
    }
    f->value = value;
    f->destroy = destroy;
    f->err = err;
    atomic_store_explicit(&f->state, state, memory_order_release);
    schedule(f, 1);
    return 0;
}

int wisp_future_resolve(wisp_future_t *f, void *value, wisp_free_cb destroy)
{
    return settle(f, ST_RESOLVED, value, destroy, 0);
}

int wisp_future_fail(wisp_future_t *f, int err)
{
    if (err >= 0)
        return -EINVAL;
    return settle(f, ST_FAILED, NULL, NULL, err);
}

int wisp_future_cancel(wisp_future_t *f)
{
    return wisp_future_fail(f, -ECANCELED);
}

wisp_future_state_t wisp_future_state(const wisp_future_t *f)
{
    int s = atomic_load_explicit(&((wisp_future_t *)f)->state,
                                 memory_order_acquire);
    if (s == ST_RESOLVED)
        return WISP_FUTURE_RESOLVED;
    if (s == ST_FAILED)
        return WISP_FUTURE_FAILED;
    return WISP_FUTURE_PENDING;
}

int wisp_future_error(const wisp_future_t *f)
{
    switch (wisp_future_state(f)) {
    case WISP_FUTURE_RESOLVED: return 0;
    case WISP_FUTURE_FAILED: return f->err;
    default: return -EINPROGRESS;
    }
}

void *wisp_future_value(const wisp_future_t *f)
{
    if (wisp_future_state(f) != WISP_FUTURE_RESOLVED || f->taken)
        return NULL;
    return f->value;
}

void *wisp_future_take(wisp_future_t *f, wisp_free_cb *destroy)
{
    WISP__ASSERT_OWNER(f->owner);
    if (wisp_future_state(f) != WISP_FUTURE_RESOLVED || f->taken) {
        if (destroy)
            *destroy = NULL;
        return NULL;
    }
    f->taken = 1;
    if (destroy)
        *destroy = f->destroy;
    return f->value;
}

wisp_loop_t *wisp_future_loop(const wisp_future_t *f)
{
    return f->owner;
}

/* Owner loop: run every continuation added so far, in order. */
static void dispatch(void *arg)
{
    wisp_future_t *f = arg;
    f->dispatched = 1;
    f->scheduled = 1; /* then() from a continuation joins this pass */
    if (f->timer_armed) {
        wisp_timer_stop(&f->timer);
        f->timer_armed = 0;
        wisp_future_unref(f); /* the timer's reference; f still held */
    }
    /* Continuations added while these run are appended and run in the
     * same pass: they were added after their then() returned. */
    for (uint32_t i = 0; i < f->nconts; i++) {
        cont c = f->conts[i];
        c.cb(f, c.arg);
        wisp_future_unref(f); /* the continuation's reference */
    }
    f->nconts = 0;
    f->scheduled = 0;
    wisp_future_unref(f); /* the dispatch's reference */
}

/* The owner loop is being destroyed with this future's dispatch still
 * queued: the continuations will never run; release the references they
 * and the dispatch hold (their arguments are their owners' business). */
static void discard(void *arg)
{
    wisp_future_t *f = arg;
    uint32_t n = f->nconts;
    f->nconts = 0;
    if (f->timer_armed) {
        f->timer_armed = 0;
        wisp_future_unref(f);
    }
    for (uint32_t i = 0; i < n; i++)
        wisp_future_unref(f);
    wisp_future_unref(f);
}

int wisp_future_then(wisp_future_t *f, wisp_future_cb cb, void *arg)
{
    WISP__ASSERT_OWNER(f->owner);
    if (!cb)
        return -EINVAL;
    if (f->nconts == f->cap) {
        uint32_t cap = f->cap * 2;
        cont *n;
        if (f->conts == f->inline_conts) {
            n = malloc(cap * sizeof *n);
            if (n)
                memcpy(n, f->conts, f->nconts * sizeof *n);
        } else {
            n = realloc(f->conts, cap * sizeof *n);
        }
        if (!n)
            return -ENOMEM;
        f->conts = n;
        f->cap = cap;
    }
    f->conts[f->nconts].cb = cb;
    f->conts[f->nconts].arg = arg;
    f->nconts++;
    wisp_future_ref(f);
    /* Settled and already dispatched: nothing else will run it. */
    if (f->dispatched && !f->scheduled)
        schedule(f, 0);
    return 0;
}

static void on_timeout(wisp_timer_t *t, void *arg)
{
    wisp_future_t *f = arg;
    (void)t;
    f->timer_armed = 0;
    wisp_future_fail(f, -ETIMEDOUT);
    wisp_future_unref(f); /* the timer's reference */
}

int wisp_future_set_timeout(wisp_future_t *f, uint64_t ms)
{
    WISP__ASSERT_OWNER(f->owner);
    if (wisp_future_state(f) != WISP_FUTURE_PENDING)
        return -EALREADY;
    int r = wisp_timer_start(&f->timer, ms, on_timeout, f);
    if (r < 0)
        return r;
    if (!f->timer_armed) {
        f->timer_armed = 1;
        wisp_future_ref(f);
    }
    return 0;
}

/* ------------------------------------------------------------ combinators */

/* Settle `to` like `from` (owner thread of `from`), moving the value. */
static void settle_like(wisp_future_t *to, wisp_future_t *from)
{
    if (wisp_future_state(from) == WISP_FUTURE_RESOLVED) {
        wisp_free_cb destroy = NULL;
        void *v = wisp_future_take(from, &destroy);
        wisp_future_resolve(to, v, destroy);
    } else {
        int e = wisp_future_error(from);
        wisp_future_fail(to, e < 0 ? e : -ECANCELED);
    }
}

typedef struct chain_ctx {
    wisp_future_t *out;
    wisp_future_chain_fn fn;
    void *arg;
} chain_ctx;

static void chain_done(wisp_future_t *h, void *arg)
{
    chain_ctx *c = arg;
    settle_like(c->out, h);
    wisp_future_unref(h); /* the reference fn passed us */
    wisp_future_unref(c->out);
    free(c);
}

static void chain_step(wisp_future_t *f, void *arg)
{
    chain_ctx *c = arg;
    wisp_future_t *h = c->fn ? c->fn(f, c->arg) : NULL;
    if (!h) {
        settle_like(c->out, f);
    } else if (h->owner != f->owner) {
        wisp_future_fail(c->out, -EXDEV);
        wisp_future_unref(h);
    } else if (wisp_future_then(h, chain_done, c) == 0) {
        return;
    } else {
        wisp_future_fail(c->out, -ENOMEM);
        wisp_future_unref(h);
    }
    wisp_future_unref(c->out);
    free(c);
}

wisp_future_t *wisp_future_chain(wisp_future_t *f, wisp_future_chain_fn fn,
                                 void *arg)
{
    WISP__ASSERT_OWNER(f->owner);
    chain_ctx *c = malloc(sizeof *c);
    wisp_future_t *out = wisp_future_create(f->owner);
    if (!c || !out) {
        free(c);
        wisp_future_unref(out);
        errno = ENOMEM;
        return NULL;
    }
    c->out = out;
    c->fn = fn;
    c->arg = arg;
    wisp_future_ref(out); /* the chain's own */
    if (wisp_future_then(f, chain_step, c) < 0) {
        wisp_future_unref(out);
        wisp_future_unref(out);
        free(c);
        errno = ENOMEM;
        return NULL;
    }
    return out;
}

typedef struct group_ctx {
    wisp_future_t *out;
    size_t left;        /* inputs not yet settled */
    size_t failures;
    int any;            /* any (1) or all (0) */
    size_t n;
    wisp_future_t **inputs;
} group_ctx;

typedef struct group_item {
    group_ctx *g;
    size_t index;
} group_item;

static void group_release(group_ctx *g)
{
    if (--g->left)
        return;
    for (size_t i = 0; i < g->n; i++)
        wisp_future_unref(g->inputs[i]);
    wisp_future_unref(g->out);
    free(g);
}

static void group_step(wisp_future_t *f, void *arg)
{
    group_item *it = arg;
    group_ctx *g = it->g;
    size_t index = it->index;
    int ok = wisp_future_state(f) == WISP_FUTURE_RESOLVED;
    if (g->any) {
        if (ok)
            wisp_future_resolve(g->out, (void *)(uintptr_t)index, NULL);
        else if (++g->failures == g->n)
            wisp_future_fail(g->out, wisp_future_error(f));
    } else {
        if (!ok)
            wisp_future_fail(g->out, wisp_future_error(f));
        else if (g->left == 1)
            wisp_future_resolve(g->out, NULL, NULL);
    }
    group_release(g);
}

static wisp_future_t *group(wisp_loop_t *loop, wisp_future_t *const *fs,
                            size_t n, int any)
{
    WISP__ASSERT_OWNER_AS(loop, any ? "wisp_future_any" : "wisp_future_all");
    for (size_t i = 0; i < n; i++) {
        if (fs[i]->owner != loop) {
            errno = EXDEV;
            return NULL;
        }
    }
    wisp_future_t *out = wisp_future_create(loop);
    if (!out)
        return NULL;
    if (n == 0) {
        if (any)
            wisp_future_fail(out, -EINVAL);
        else
            wisp_future_resolve(out, NULL, NULL);
        return out;
    }
    group_ctx *g = malloc(sizeof *g + n * sizeof(wisp_future_t *) +
                          n * sizeof(group_item));
    if (!g) {
        wisp_future_unref(out);
        errno = ENOMEM;
        return NULL;
    }
    g->out = out;
    g->left = n;
    g->failures = 0;
    g->any = any;
    g->n = n;
    g->inputs = (wisp_future_t **)(g + 1);
    group_item *items = (group_item *)(g->inputs + n);
    wisp_future_ref(out); /* the group's own */
    for (size_t i = 0; i < n; i++) {
        g->inputs[i] = fs[i];
        wisp_future_ref(fs[i]);
        items[i].g = g;
        items[i].index = i;
    }
    for (size_t i = 0; i < n; i++) {
        if (wisp_future_then(fs[i], group_step, &items[i]) < 0) {
            /* Count the ones that will never report, fail the group. */
            wisp_future_fail(out, -ENOMEM);
            for (size_t k = i; k < n; k++)
                group_release(g);
            break;
        }
    }
    return out;
}

wisp_future_t *wisp_future_all(wisp_loop_t *loop, wisp_future_t *const *fs,
                               size_t n)
{
    return group(loop, fs, n, 0);
}

wisp_future_t *wisp_future_any(wisp_loop_t *loop, wisp_future_t *const *fs,
                               size_t n)
{
    return group(loop, fs, n, 1);
}
