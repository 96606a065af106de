/* The inbox (src/loop/inbox.c): FIFO per producer, bound and -EAGAIN,
 * wake-ups, and many threads posting concurrently (run under TSan in
 * CI). */
#include <pthread.h>
#include <stdint.h>

#include "loop/loop_int.h"
#include "test.h"

static int seen[16];
static long total;

static void note(void *arg)
{
    intptr_t v = (intptr_t)arg;
    seen[total < 16 ? total : 15] = (int)v;
    total++;
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
    CHECK_EQ_INT(wisp__inbox_drain(loop), 4);
    CHECK_EQ_INT(total, 4);
    for (int i = 0; i < 4; i++)
        CHECK_EQ_INT(seen[i], i);
    /* Room again after the drain. */
    CHECK_EQ_INT(wisp_loop_post(loop, note, (void *)5), 0);
    wisp_loop_destroy(loop); /* drops the queued task without running it */
    CHECK_EQ_INT(total, 4);
}

#define PRODUCERS 4
#define PER_PRODUCER 200000

typedef struct {
    wisp_loop_t *loop;
    int id;
    long rejected;
} producer;

static long last_seq[PRODUCERS];
static long got[PRODUCERS];
static long order_errors;
static long received;

static void consume(void *arg)
{
    uintptr_t v = (uintptr_t)arg;
    int id = (int)(v >> 32);
    long seq = (long)(v & 0xffffffffu);
    if (seq <= last_seq[id])
        order_errors++;
    last_seq[id] = seq;
    got[id]++;
    received++;
}

static void *produce(void *arg)
{
    producer *p = arg;
    for (long i = 1; i <= PER_PRODUCER; i++) {
        uintptr_t v = ((uintptr_t)p->id << 32) | (uintptr_t)i;
        while (wisp_loop_post(p->loop, consume, (void *)v) == -EAGAIN) {
            p->rejected++;
            sched_yield();
        }
    }
    return NULL;
}

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
    producer ps[PRODUCERS];
    pthread_t th[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        ps[i].loop = loop;
        ps[i].id = i;
        ps[i].rejected = 0;
        last_seq[i] = 0;
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

int main(void)
{
    test_fifo_and_bound();
    test_threads();
    return t_done("inbox");
}
