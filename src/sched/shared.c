/* Shared payloads (one allocation: header + bytes, or a wrapper around
 * caller bytes) and broadcast to many loops through their inboxes. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "loop/loop_int.h"
#include "wisp/shared.h"

struct wisp_shared {
    _Atomic uint32_t refs;
    size_t len;
    const char *data;
    wisp_free_cb destroy;
    void *arg;
    char inline_data[];
};

wisp_shared_t *wisp_shared_create(const void *data, size_t len)
{
    wisp_shared_t *s = malloc(sizeof *s + len);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->len = len;
    if (len)
        memcpy(s->inline_data, data, len);
    s->data = s->inline_data;
    s->destroy = NULL;
    s->arg = NULL;
    return s;
}

wisp_shared_t *wisp_shared_wrap(const void *data, size_t len,
                                wisp_free_cb destroy, void *arg)
{
    wisp_shared_t *s = malloc(sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->len = len;
    s->data = data;
    s->destroy = destroy;
    s->arg = arg;
    return s;
}

void wisp_shared_ref(wisp_shared_t *s)
{
    if (s)
        atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void wisp_shared_unref(wisp_shared_t *s)
{
    if (!s)
        return;
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (s->destroy)
        s->destroy(s->arg);
    free(s);
}

const void *wisp_shared_data(const wisp_shared_t *s)
{
    return s->data;
}

size_t wisp_shared_len(const wisp_shared_t *s)
{
    return s->len;
}

/* One loop's delivery: holds a reference to the message until it has
 * run, or until it is dropped because its loop was destroyed with it
 * still queued (the inbox then calls delivery_drop instead of
 * deliver_task), so the reference goes exactly once either way. */
typedef struct delivery {
    wisp_loop_t *loop;
    wisp_shared_t *msg;
    wisp_broadcast_cb deliver;
    void *arg;
} delivery;

static void delivery_drop(void *arg)
{
    delivery *d = arg;
    wisp_shared_unref(d->msg);
    free(d);
}

static void deliver_task(void *arg)
{
    delivery *d = arg;
    d->deliver(d->loop, d->msg, d->arg);
    delivery_drop(d);
}

ssize_t wisp_broadcast(wisp_loop_t *const *loops, size_t n,
                       wisp_shared_t *msg, wisp_broadcast_cb deliver,
                       void *arg)
{
    if (!msg || !deliver || (n && !loops))
        return -EINVAL;
    ssize_t queued = 0;
    for (size_t i = 0; i < n; i++) {
        delivery *d = malloc(sizeof *d);
        if (!d)
            return queued ? queued : -ENOMEM;
        d->loop = loops[i];
        d->msg = msg;
        d->deliver = deliver;
        d->arg = arg;
        wisp_shared_ref(msg);
        /* Counted against the inbox limit like any post (a full inbox
         * skips this loop), with a drop for a loop destroyed before it
         * runs the delivery. */
        if (wisp__loop_post_drop(loops[i], deliver_task, delivery_drop,
                                 d) < 0) {
            delivery_drop(d);
            continue;
        }
        queued++;
    }
    return queued;
}
