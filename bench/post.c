/* bench/post.c — cross-thread post throughput and latency: wisp's inbox
 * (wisp_loop_post into a running loop) against a plain mutex + condvar
 * queue with one consumer thread, measured in the same run.
 *
 *   post [-p PRODUCERS] [-n POSTS_PER_PRODUCER] [-r ROUNDS]
 *
 * Each post carries its send time; the consumer records the delay to its
 * execution (latency) and counts; throughput = posts / wall time from the
 * first send to the last execution. Rounds alternate the two queues. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <wisp.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int producers = 4;
static long per_producer = 250000;
static uint64_t *lat;          /* consumer-owned */
static long nlat, total;
static pthread_barrier_t start_barrier;

/* ---------------- wisp */
static wisp_loop_t *loop;

static void on_task(void *arg)
{
    uint64_t sent = (uint64_t)(uintptr_t)arg;
    if (nlat < total)
        lat[nlat++] = now_ns() - sent;
    if (nlat == total)
        wisp_loop_break(loop);
}

static void *wisp_producer(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start_barrier);
    for (long i = 0; i < per_producer; i++) {
        while (wisp_loop_post(loop, on_task, (void *)(uintptr_t)now_ns()) ==
               -EAGAIN)
            sched_yield(); /* bounded inbox: back off, never drop */
    }
    return NULL;
}

static double run_wisp(void)
{
    loop = wisp_loop_create();
    wisp_loop_set_inbox_limit(loop, 1u << 20);
    nlat = 0;
    pthread_t th[64];
    for (int i = 0; i < producers; i++)
        pthread_create(&th[i], NULL, wisp_producer, NULL);
    pthread_barrier_wait(&start_barrier);
    uint64_t t0 = now_ns();
    wisp_loop_run(loop);
    uint64_t t1 = now_ns();
    for (int i = 0; i < producers; i++)
        pthread_join(th[i], NULL);
    wisp_loop_destroy(loop);
    return (double)total / ((double)(t1 - t0) / 1e9);
}

/* ---------------- mutex + condvar baseline */
typedef struct node {
    struct node *next;
    uint64_t sent;
} node;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static node *qhead, *qtail;

static void *mc_producer(void *arg)
{
    (void)arg;
    pthread_barrier_wait(&start_barrier);
    for (long i = 0; i < per_producer; i++) {
        node *n = malloc(sizeof *n);
        n->next = NULL;
        n->sent = now_ns();
        pthread_mutex_lock(&mu);
        if (qtail)
            qtail->next = n;
        else
            qhead = n;
        qtail = n;
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
    }
    return NULL;
}

static double run_mc(void)
{
    nlat = 0;
    pthread_t th[64];
    for (int i = 0; i < producers; i++)
        pthread_create(&th[i], NULL, mc_producer, NULL);
    pthread_barrier_wait(&start_barrier);
    uint64_t t0 = now_ns();
    while (nlat < total) {
        pthread_mutex_lock(&mu);
        while (!qhead)
            pthread_cond_wait(&cv, &mu);
        node *n = qhead;
        qhead = n->next;
        if (!qhead)
            qtail = NULL;
        pthread_mutex_unlock(&mu);
        lat[nlat++] = now_ns() - n->sent;
        free(n);
    }
    uint64_t t1 = now_ns();
    for (int i = 0; i < producers; i++)
        pthread_join(th[i], NULL);
    return (double)total / ((double)(t1 - t0) / 1e9);
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void pct(uint64_t *p50, uint64_t *p99)
{
    qsort(lat, (size_t)nlat, sizeof *lat, cmp);
    *p50 = lat[nlat / 2];
    *p99 = lat[nlat * 99 / 100];
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int rounds = 3, o;
    while ((o = getopt(argc, argv, "p:n:r:")) != -1) {
        switch (o) {
        case 'p': producers = atoi(optarg); break;
        case 'n': per_producer = atol(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: post [-p PRODUCERS] [-n POSTS] [-r ROUNDS]\n");
            return 2;
        }
    }
    if (producers < 1 || producers > 64 || rounds < 1 || rounds > 20)
        return 2;
    total = producers * per_producer;
    lat = malloc((size_t)total * sizeof *lat);
    pthread_barrier_init(&start_barrier, NULL, (unsigned)producers + 1);
    double tw[20], tm[20];
    uint64_t w50[20], w99[20], m50[20], m99[20];
    for (int r = 0; r < rounds; r++) {
        tw[r] = run_wisp();
        pct(&w50[r], &w99[r]);
        tm[r] = run_mc();
        pct(&m50[r], &m99[r]);
        fprintf(stderr, "round %d: wisp %.0f posts/s (p50 %.1f us, p99 %.1f us); "
                "mutex+condvar %.0f posts/s (p50 %.1f us, p99 %.1f us)\n",
                r + 1, tw[r], w50[r] / 1e3, w99[r] / 1e3, tm[r], m50[r] / 1e3,
                m99[r] / 1e3);
    }
    double ratio[20];
    for (int r = 0; r < rounds; r++)
        ratio[r] = tw[r] / tm[r];
    qsort(tw, (size_t)rounds, sizeof *tw, dcmp);
    qsort(tm, (size_t)rounds, sizeof *tm, dcmp);
    qsort(ratio, (size_t)rounds, sizeof *ratio, dcmp);
    qsort(w99, (size_t)rounds, sizeof *w99, cmp);
    qsort(m99, (size_t)rounds, sizeof *m99, cmp);
    qsort(w50, (size_t)rounds, sizeof *w50, cmp);
    qsort(m50, (size_t)rounds, sizeof *m50, cmp);
    int m = rounds / 2;
    printf("| queue | posts/s (median) | p50 latency | p99 latency |\n");
    printf("|---|---:|---:|---:|\n");
    printf("| wisp inbox | %.0f | %.1f µs | %.1f µs |\n", tw[m], w50[m] / 1e3,
           w99[m] / 1e3);
    printf("| mutex + condvar | %.0f | %.1f µs | %.1f µs |\n", tm[m],
           m50[m] / 1e3, m99[m] / 1e3);
    printf("\nwisp/baseline throughput: %.2fx (median of %d rounds, range %.2f-%.2f); "
           "%d producers x %ld posts\n", ratio[m], rounds, ratio[0],
           ratio[rounds - 1], producers, per_producer);
    free(lat);
    return 0;
}
