/* bench/post.c — cross-thread post throughput and latency: wisp's inbox
 * (wisp_loop_post into a running loop) against mutex + condvar queues
 * with one consumer thread, measured in the same run.
 *
 *   bench/build.sh
 *   cc -O2 -o /tmp/post bench/post.c -Iinclude build-bench/libwisp.a -lpthread
 *   /tmp/post [-p PRODUCERS] [-n POSTS_PER_PRODUCER] [-r ROUNDS]
 *             [-s SAMPLE] [-i PAUSE_NS] [-q wisp|mutex|pop1]
 *
 * PRODUCERS threads post tiny tasks to one consumer. A post carries its
 * send time; the consumer records the delay to its execution (latency)
 * and counts; throughput = posts / wall time from the start signal to
 * the last execution. Each round runs every queue once, in turn, with a
 * new loop and new threads. With -s SAMPLE only every SAMPLE-th post of
 * each producer is timestamped (the others carry 0 and are only
 * counted): reading the clock costs about 16 ns on each side of every
 * post here, as much as a post itself. All queues run the same code
 * around the queue.
 *
 * Without -i the producers post as fast as they can (a flood: the
 * latency is then the time a post waits behind the backlog). With
 * -i PAUSE_NS each producer spins that long between posts, so the
 * consumer keeps up and the latency is the hand-off itself, including
 * waking a consumer that went to sleep. -q runs one queue only (for
 * profiling).
 *
 * The baseline is the mutex + condvar queue a competent C programmer
 * writes: producers append under the lock and, after unlocking, signal
 * only when the queue was empty (the consumer waits only on an empty
 * queue); the consumer takes the whole queue in one locked section and
 * runs it outside the lock; a node is malloc'd per post and freed after
 * it ran. The first version of this file popped one node per locked
 * section: slower to drain, so in a flood it never empties the queue,
 * never sleeps and never needs a signal, and posts more per second at a
 * far longer latency; it runs too ("pop one"), so no baseline got
 * weaker. wisp's inbox is given a limit above the total number of
 * posts, so it never rejects and all queues are effectively unbounded. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
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

/* Settings: read by the producers on every post, written only before
 * the threads start. */
static struct {
    _Alignas(64) wisp_loop_t *loop;
    int producers;
    long per_producer;
    long total;
    uint64_t pause_ns;      /* -i: spin between posts */
    long sample;            /* -s: timestamp every sample-th post */
} cfg = {.producers = 4, .per_producer = 250000, .sample = 1};

/* The consumer's counters, written on every task, on cache lines of
 * their own: next to the settings above they would cost every post a
 * line transfer (false sharing in the harness, the same for both
 * queues, which the first version of this file had). */
static struct {
    _Alignas(64) uint64_t *lat;
    long nlat, ndone;
} cons;

static pthread_barrier_t start_barrier;

static void pace(void)
{
    if (!cfg.pause_ns)
        return;
    uint64_t until = now_ns() + cfg.pause_ns;
    while (now_ns() < until)
        ;
}

/* The consumer's side of one post, the same for both queues. */
static inline void record(uint64_t sent)
{
    if (sent)
        cons.lat[cons.nlat++] = now_ns() - sent;
    cons.ndone++;
}

/* The producer's side: the send time of every sample-th post, else 0.
 * `*left` counts down to the next stamped post (no division per post). */
static inline uint64_t stamp(long *left)
{
    if (--*left)
        return 0;
    *left = cfg.sample;
    return now_ns();
}

/* ---------------- wisp */

static void on_task(void *arg)
{
    record((uint64_t)(uintptr_t)arg);
    if (cons.ndone == cfg.total)
        wisp_loop_break(cfg.loop);
}

static void *wisp_producer(void *arg)
{
    (void)arg;
    long left = 1;
    pthread_barrier_wait(&start_barrier);
    for (long i = 0; i < cfg.per_producer; i++) {
        while (wisp_loop_post(cfg.loop, on_task,
                              (void *)(uintptr_t)stamp(&left)) ==
               -EAGAIN)
            sched_yield(); /* bounded inbox: back off, never drop */
        pace();
    }
    return NULL;
}

static double run_wisp(void)
{
    cfg.loop = wisp_loop_create();
    wisp_loop_set_inbox_limit(cfg.loop, (uint32_t)cfg.total + 1024);
    cons.nlat = cons.ndone = 0;
    pthread_t th[64];
    for (int i = 0; i < cfg.producers; i++)
        pthread_create(&th[i], NULL, wisp_producer, NULL);
    pthread_barrier_wait(&start_barrier);
    uint64_t t0 = now_ns();
    wisp_loop_run(cfg.loop);
    uint64_t t1 = now_ns();
    for (int i = 0; i < cfg.producers; i++)
        pthread_join(th[i], NULL);
    wisp_loop_destroy(cfg.loop);
    return (double)cfg.total / ((double)(t1 - t0) / 1e9);
}

/* ---------------- mutex + condvar baselines */
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
    long left = 1;
    pthread_barrier_wait(&start_barrier);
    for (long i = 0; i < cfg.per_producer; i++) {
        node *n = malloc(sizeof *n);
        n->next = NULL;
        n->sent = stamp(&left);
        pthread_mutex_lock(&mu);
        int was_empty = !qhead;
        if (qtail)
            qtail->next = n;
        else
            qhead = n;
        qtail = n;
        pthread_mutex_unlock(&mu);
        /* The consumer sleeps only on an empty queue; signalled outside
         * the lock, it does not wake up only to wait for the mutex. */
        if (was_empty)
            pthread_cond_signal(&cv);
        pace();
    }
    return NULL;
}

/* `pop_one`: the consumer takes one node per locked section (the first
 * version of this benchmark). In a flood it falls behind, the queue never
 * runs empty and nobody sleeps or signals: more posts per second than
 * taking the whole queue, at the price of a long backlog (latency). */
static double run_mc(int pop_one)
{
    cons.nlat = cons.ndone = 0;
    pthread_t th[64];
    for (int i = 0; i < cfg.producers; i++)
        pthread_create(&th[i], NULL, mc_producer, NULL);
    pthread_barrier_wait(&start_barrier);
    uint64_t t0 = now_ns();
    while (cons.ndone < cfg.total) {
        pthread_mutex_lock(&mu);
        while (!qhead)
            pthread_cond_wait(&cv, &mu);
        node *n = qhead;
        if (pop_one) {
            qhead = n->next;
            if (!qhead)
                qtail = NULL;
            n->next = NULL;
        } else { /* take the whole queue */
            qhead = qtail = NULL;
        }
        pthread_mutex_unlock(&mu);
        while (n) {
            node *next = n->next;
            record(n->sent);
            free(n);
            n = next;
        }
    }
    uint64_t t1 = now_ns();
    for (int i = 0; i < cfg.producers; i++)
        pthread_join(th[i], NULL);
    return (double)cfg.total / ((double)(t1 - t0) / 1e9);
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void pct(uint64_t *p50, uint64_t *p99)
{
    if (cons.nlat == 0) {
        *p50 = *p99 = 0;
        return;
    }
    qsort(cons.lat, (size_t)cons.nlat, sizeof *cons.lat, cmp);
    *p50 = cons.lat[cons.nlat / 2];
    *p99 = cons.lat[cons.nlat * 99 / 100];
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

enum { Q_WISP, Q_MC, Q_MC1, NQ };
static const char *const qname[NQ] = {"wisp inbox", "mutex + condvar",
                                      "mutex + condvar, pop one"};

static double run(int q)
{
    return q == Q_WISP ? run_wisp() : run_mc(q == Q_MC1);
}

int main(int argc, char **argv)
{
    int rounds = 3, o;
    unsigned mask = (1u << NQ) - 1; /* -q: the queues to run */
    while ((o = getopt(argc, argv, "p:n:r:s:i:q:")) != -1) {
        switch (o) {
        case 'p': cfg.producers = atoi(optarg); break;
        case 'n': cfg.per_producer = atol(optarg); break;
        case 'r': rounds = atoi(optarg); break;
        case 's': cfg.sample = atol(optarg); break;
        case 'i': cfg.pause_ns = strtoull(optarg, NULL, 10); break;
        case 'q':
            mask = strcmp(optarg, "wisp") == 0    ? 1u << Q_WISP
                   : strcmp(optarg, "mutex") == 0 ? 1u << Q_MC
                   : strcmp(optarg, "pop1") == 0  ? 1u << Q_MC1
                                                  : 0;
            break;
        default:
            mask = 0;
        }
    }
    if (!mask || cfg.producers < 1 || cfg.producers > 64 || rounds < 1 ||
        rounds > 20 || cfg.per_producer < 1 || cfg.sample < 1 ||
        (long long)cfg.producers * cfg.per_producer > 1 << 30) {
        fprintf(stderr, "usage: post [-p PRODUCERS] [-n POSTS] [-r ROUNDS] "
                "[-s SAMPLE] [-i PAUSE_NS] [-q wisp|mutex|pop1]\n");
        return 2;
    }
    cfg.total = cfg.producers * cfg.per_producer;
    cons.lat = malloc((size_t)cfg.total * sizeof *cons.lat);
    /* Fault the pages in now, not in the first round. */
    memset(cons.lat, 0, (size_t)cfg.total * sizeof *cons.lat);
    pthread_barrier_init(&start_barrier, NULL, (unsigned)cfg.producers + 1);
    double tp[NQ][20] = {{0}}, ratio[NQ][20] = {{0}};
    uint64_t p50[NQ][20] = {{0}}, p99[NQ][20] = {{0}};
    for (int r = 0; r < rounds; r++) {
        fprintf(stderr, "round %d:", r + 1);
        for (int q = 0; q < NQ; q++) {
            if (!(mask & 1u << q))
                continue;
            tp[q][r] = run(q);
            pct(&p50[q][r], &p99[q][r]);
            fprintf(stderr, " %s %.0f posts/s (p50 %.1f us, p99 %.1f us);",
                    qname[q], tp[q][r], p50[q][r] / 1e3, p99[q][r] / 1e3);
        }
        fputc('\n', stderr);
        for (int q = Q_MC; q < NQ; q++)
            ratio[q][r] = tp[q][r] > 0 ? tp[Q_WISP][r] / tp[q][r] : 0;
    }
    int m = rounds / 2;
    printf("| queue | posts/s (median) | p50 latency | p99 latency |\n");
    printf("|---|---:|---:|---:|\n");
    for (int q = 0; q < NQ; q++) {
        if (!(mask & 1u << q))
            continue;
        qsort(tp[q], (size_t)rounds, sizeof tp[q][0], dcmp);
        qsort(p50[q], (size_t)rounds, sizeof p50[q][0], cmp);
        qsort(p99[q], (size_t)rounds, sizeof p99[q][0], cmp);
        printf("| %s | %.0f | %.1f µs | %.1f µs |\n", qname[q], tp[q][m],
               p50[q][m] / 1e3, p99[q][m] / 1e3);
    }
    printf("\n");
    for (int q = Q_MC; q < NQ; q++) {
        if ((mask & (1u << Q_WISP | 1u << q)) != (1u << Q_WISP | 1u << q))
            continue;
        qsort(ratio[q], (size_t)rounds, sizeof ratio[q][0], dcmp);
        printf("wisp/%s throughput: %.2fx (median of %d rounds, range "
               "%.2f-%.2f)\n", qname[q], ratio[q][m], rounds, ratio[q][0],
               ratio[q][rounds - 1]);
    }
    printf("%d producers x %ld posts, latency of 1 in %ld%s\n",
           cfg.producers, cfg.per_producer, cfg.sample,
           cfg.pause_ns ? ", paced" : "");
    free(cons.lat);
    return 0;
}
