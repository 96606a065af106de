/* Timers: a binary min-heap of caller-owned wisp_timer_t, ordered by
 * (due time, start sequence) so timers due at the same millisecond fire in
 * the order they were started. Start, stop and re-arm are O(log n); the
 * heap stores the index in each timer so stop needs no search. */
#include <errno.h>
#include <string.h>

#include "loop/loop_int.h"

static inline bool before(const wisp_timer_t *a, const wisp_timer_t *b)
{
    if (a->due_ms != b->due_ms)
        return a->due_ms < b->due_ms;
    /* Sequence numbers wrap; compare by signed distance. */
    return (int32_t)(a->reserved - b->reserved) < 0;
}

static inline void place(wisp_loop_t *loop, uint32_t i, wisp_timer_t *t)
{
    loop->heap[i] = t;
    t->heap_index = i;
}

static void sift_up(wisp_loop_t *loop, uint32_t i)
{
    wisp_timer_t *t = loop->heap[i];
    while (i > 1) {
        uint32_t p = i / 2;
        if (!before(t, loop->heap[p]))
            break;
        place(loop, i, loop->heap[p]);
        i = p;
    }
    place(loop, i, t);
}

static void sift_down(wisp_loop_t *loop, uint32_t i)
{
    wisp_timer_t *t = loop->heap[i];
    uint32_t n = loop->heap_len;
    for (;;) {
        uint32_t c = i * 2;
        if (c > n)
            break;
        if (c + 1 <= n && before(loop->heap[c + 1], loop->heap[c]))
            c++;
        if (!before(loop->heap[c], t))
            break;
        place(loop, i, loop->heap[c]);
        i = c;
    }
    place(loop, i, t);
}

static void heap_remove(wisp_loop_t *loop, wisp_timer_t *t)
{
    uint32_t i = t->heap_index;
    wisp_timer_t *last = loop->heap[loop->heap_len--];
    t->heap_index = 0;
    if (last == t)
        return;
    place(loop, i, last);
    if (i > 1 && before(last, loop->heap[i / 2]))
        sift_up(loop, i);
    else
        sift_down(loop, i);
}

void wisp_timer_init(wisp_loop_t *loop, wisp_timer_t *t)
{
    memset(t, 0, sizeof *t);
    t->loop = loop;
}

int wisp_timer_start(wisp_timer_t *t, uint64_t ms, wisp_timer_cb cb,
                     void *arg)
{
    if (!t || !cb || !t->loop)
        return -EINVAL;
    wisp_loop_t *loop = t->loop;
    WISP__ASSERT_OWNER(loop);
    if (t->heap_index)
        heap_remove(loop, t);
    if (loop->heap_len + 1 >= loop->heap_cap) {
        uint32_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
        wisp_timer_t **h = realloc(loop->heap, cap * sizeof *h);
        if (!h)
            return -ENOMEM;
        loop->heap = h;
        loop->heap_cap = cap;
    }
    t->cb = cb;
    t->arg = arg;
    t->due_ms = loop->now_ms + ms;
    t->reserved = loop->timer_seq++;
    loop->heap_len++;
    place(loop, loop->heap_len, t);
    sift_up(loop, loop->heap_len);
    return 0;
}

void wisp_timer_stop(wisp_timer_t *t)
{
    if (!t || !t->loop)
        return;
    WISP__ASSERT_OWNER(t->loop);
    if (t->heap_index)
        heap_remove(t->loop, t);
}

int wisp_timer_active(const wisp_timer_t *t)
{
    return t && t->heap_index != 0;
}

void wisp__timers_run(wisp_loop_t *loop)
{
    /* A callback may start timers due "now" (0 ms); they run in the next
     * iteration, after I/O, so a timer re-armed at 0 cannot starve it. */
    uint64_t now = loop->now_ms;
    uint32_t seq_end = loop->timer_seq;
    while (loop->heap_len) {
        wisp_timer_t *t = loop->heap[1];
        if (t->due_ms > now)
            break;
        if (t->due_ms == now && (int32_t)(t->reserved - seq_end) >= 0)
            break;
        heap_remove(loop, t);
        t->cb(t, t->arg);
    }
}

int wisp__timers_timeout(const wisp_loop_t *loop)
{
    if (!loop->heap_len)
        return -1;
    uint64_t due = loop->heap[1]->due_ms;
    if (due <= loop->now_ms)
        return 0;
    uint64_t d = due - loop->now_ms;
    return d > 3600000 ? 3600000 : (int)d;
}

void wisp__timers_clear(wisp_loop_t *loop)
{
    for (uint32_t i = 1; i <= loop->heap_len; i++)
        loop->heap[i]->heap_index = 0;
    loop->heap_len = 0;
    free(loop->heap);
    loop->heap = NULL;
    loop->heap_cap = 0;
}
