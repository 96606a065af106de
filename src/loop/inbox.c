/* The inbox: a bounded, lock-free multi-producer single-consumer queue of
 * tasks posted to a loop from any thread.
 *
 * Producers push onto a Treiber stack with one CAS; the producer that
 * finds the stack empty wakes the loop (one eventfd write per batch, not
 * per post). The loop takes the whole stack with one atomic exchange,
 * reverses it to FIFO order and runs every task: one pass, no lock.
 * The bound is a counter reserved before the push, so a full inbox
 * rejects with -EAGAIN and never grows. */
#include <errno.h>

#include "loop/loop_int.h"

static void push(wisp_loop_t *loop, wisp__task *t)
{
    wisp__task *head = atomic_load_explicit(&loop->inbox,
                                            memory_order_relaxed);
    do {
        t->next = head;
    } while (!atomic_compare_exchange_weak_explicit(
        &loop->inbox, &head, t, memory_order_seq_cst, memory_order_relaxed));
    /* Wake only a loop that may be asleep. The loop raises `sleeping`
     * and then looks at the inbox; we push and then look at `sleeping`:
     * with both sequentially consistent, at least one of us sees the
     * other, so a post is never left waiting. */
    if (!head && atomic_load_explicit(&loop->sleeping, memory_order_seq_cst))
        wisp__be_wake(loop);
}

int wisp_loop_post(wisp_loop_t *loop, wisp_task_cb cb, void *arg)
{
    if (!loop || !cb)
        return -EINVAL;
    if (atomic_load_explicit(&loop->closing, memory_order_acquire))
        return -ECANCELED;
    uint32_t limit = atomic_load_explicit(&loop->inbox_limit,
                                          memory_order_relaxed);
    uint32_t n = atomic_fetch_add_explicit(&loop->inbox_len, 1,
                                           memory_order_relaxed);
    if (n >= limit) {
        atomic_fetch_sub_explicit(&loop->inbox_len, 1, memory_order_relaxed);
        return -EAGAIN;
    }
    wisp__task *t = malloc(sizeof *t);
    if (!t) {
        atomic_fetch_sub_explicit(&loop->inbox_len, 1, memory_order_relaxed);
        return -ENOMEM;
    }
    t->cb = cb;
    t->arg = arg;
    t->intrusive = 0;
    t->drop = NULL;
    push(loop, t);
    return 0;
}

void wisp__loop_post_node(wisp_loop_t *loop, wisp__task *node)
{
    node->intrusive = 1;
    push(loop, node);
}

void wisp_loop_set_inbox_limit(wisp_loop_t *loop, uint32_t limit)
{
    atomic_store_explicit(&loop->inbox_limit, limit ? limit : 1,
                          memory_order_relaxed);
}

static wisp__task *take_fifo(wisp_loop_t *loop)
{
    wisp__task *t = atomic_exchange_explicit(&loop->inbox, NULL,
                                             memory_order_acquire);
    wisp__task *fifo = NULL;
    while (t) {
        wisp__task *next = t->next;
        t->next = fifo;
        fifo = t;
        t = next;
    }
    return fifo;
}

unsigned wisp__inbox_drain(wisp_loop_t *loop)
{
    unsigned ran = 0, counted = 0;
    wisp__task *t = take_fifo(loop);
    /* The taken tasks no longer occupy the inbox: give their room back in
     * one atomic operation, not one per task (the counter's cache line is
     * the one every producer touches). */
    for (wisp__task *c = t; c; c = c->next)
        counted += !c->intrusive;
    if (counted)
        atomic_fetch_sub_explicit(&loop->inbox_len, counted,
                                  memory_order_relaxed);
    while (t) {
        wisp__task *next = t->next;
        int intrusive = t->intrusive;
        t->cb(t->arg); /* an intrusive node's owner may be freed here */
        if (!intrusive)
            free(t);
        t = next;
        ran++;
    }
    return ran;
}

void wisp__inbox_discard(wisp_loop_t *loop)
{
    wisp__task *t = take_fifo(loop);
    while (t) {
        wisp__task *next = t->next;
        if (!t->intrusive)
            free(t);
        else if (t->drop)
            t->drop(t->arg);
        t = next;
    }
    atomic_store(&loop->inbox_len, 0);
}
