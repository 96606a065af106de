/* Per-loop data (wisp_loop_key_create, wisp_loop_set_data,
 * wisp_loop_get_data): values per loop and per key, bad keys refused,
 * the destructors run once at wisp_loop_destroy in reverse key order,
 * after the loop's queued tasks were dropped, and keys run out with
 * -ENOSPC. */
#include <pthread.h>
#include <stdatomic.h>

#include <wisp.h>

#include "test.h"

static char order[8];
static int norder;
static int task_dropped_before_dtor;
static _Atomic int task_ran;

static void dtor_a(void *d)
{
    order[norder++] = 'a';
    CHECK(*(int *)d == 1);
    free(d);
}

static void dtor_b(void *d)
{
    order[norder++] = 'b';
    CHECK(*(int *)d == 2);
    free(d);
}

static void never(void *arg)
{
    (void)arg;
    atomic_store(&task_ran, 1);
}

typedef struct seen {
    wisp_loop_t *loop;
    int key;
    void *got;
    int set_r;
} seen;

/* Runs on the loop's thread: reads and replaces its value there. */
static void on_loop(void *arg)
{
    seen *s = arg;
    s->got = wisp_loop_get_data(s->loop, s->key);
    s->set_r = wisp_loop_set_data(s->loop, s->key, NULL);
    wisp_loop_break(s->loop);
}

static void *run(void *arg)
{
    wisp_loop_run(arg);
    return NULL;
}

int main(void)
{
    int ka = wisp_loop_key_create(dtor_a);
    int kb = wisp_loop_key_create(dtor_b);
    int kn = wisp_loop_key_create(NULL);
    CHECK(ka >= 0 && kb > ka && kn > kb);

    wisp_loop_t *l1 = wisp_loop_create(), *l2 = wisp_loop_create();
    CHECK(l1 && l2);
    /* Fresh loops hold nothing; bad keys are refused. */
    CHECK(wisp_loop_get_data(l1, ka) == NULL);
    CHECK_EQ_INT(wisp_loop_set_data(l1, -1, l1), -EINVAL);
    CHECK_EQ_INT(wisp_loop_set_data(l1, WISP_LOOP_KEYS_MAX, l1), -EINVAL);
    CHECK_EQ_INT(wisp_loop_set_data(l1, kn + 1, l1), -EINVAL);
    CHECK(wisp_loop_get_data(l1, -1) == NULL);
    CHECK(wisp_loop_get_data(l1, kn + 1) == NULL);

    /* Values are per loop and per key. */
    int *a1 = malloc(sizeof *a1), *b1 = malloc(sizeof *b1);
    *a1 = 1;
    *b1 = 2;
    int x = 7;
    CHECK_EQ_INT(wisp_loop_set_data(l1, ka, a1), 0);
    CHECK_EQ_INT(wisp_loop_set_data(l1, kb, b1), 0);
    CHECK_EQ_INT(wisp_loop_set_data(l1, kn, &x), 0);
    CHECK(wisp_loop_get_data(l1, ka) == a1);
    CHECK(wisp_loop_get_data(l1, kb) == b1);
    CHECK(wisp_loop_get_data(l1, kn) == &x);
    CHECK(wisp_loop_get_data(l2, ka) == NULL);

    /* On the loop's own thread while it runs. */
    int y = 9;
    CHECK_EQ_INT(wisp_loop_set_data(l2, kn, &y), 0);
    seen s = {l2, kn, NULL, -1};
    CHECK_EQ_INT(wisp_loop_post(l2, on_loop, &s), 0);
    pthread_t th;
    pthread_create(&th, NULL, run, l2);
    pthread_join(th, NULL);
    CHECK(s.got == &y);
    CHECK_EQ_INT(s.set_r, 0);
    CHECK(wisp_loop_get_data(l2, kn) == NULL);

    /* Destroy: a queued task is dropped (never run), then the dtors run
     * once each, the later key first; a key without dtor is left. */
    CHECK_EQ_INT(wisp_loop_post(l1, never, NULL), 0);
    wisp_loop_destroy(l1);
    task_dropped_before_dtor = !atomic_load(&task_ran);
    CHECK(task_dropped_before_dtor);
    CHECK_EQ_INT(norder, 2);
    CHECK(order[0] == 'b' && order[1] == 'a');
    CHECK_EQ_INT(x, 7);
    wisp_loop_destroy(l2); /* nothing set: no dtor */
    CHECK_EQ_INT(norder, 2);

    /* Keys run out with a clear answer. */
    int last = kn, r;
    while ((r = wisp_loop_key_create(NULL)) >= 0)
        last = r;
    CHECK_EQ_INT(r, -ENOSPC);
    CHECK_EQ_INT(last, WISP_LOOP_KEYS_MAX - 1);
    CHECK_EQ_INT(wisp_loop_key_create(dtor_a), -ENOSPC);
    return t_done("loop_data");
}
