/* bench/metrics.c — the cost of a metrics update: wisp_counter_inc and
 * wisp_histogram_observe (include/wisp/metrics.h), on one thread and with
 * T threads updating the same series at once, against a single shared
 * atomic counter (what a naive implementation does) and the server's
 * per-loop hook (a relaxed load + store, src/server_stats.h), in the
 * same run.
 *
 *   bench/build.sh
 *   cc -O2 -o /tmp/metrics_bench bench/metrics.c -Iinclude \
 *      build-bench/libwisp.a -lpthread -lm
 *   /tmp/metrics_bench [-t THREADS] [-n OPS_PER_THREAD] [-q WHAT]
 *
 * WHAT is one of counter, histogram, shared, hook (default: all, each
 * with 1 thread and then THREADS threads). Reports nanoseconds of CPU
 * time per operation (the thread that used the most / ops) and the rate
 * that makes per CPU-second and thread. Contention shows only while the
 * threads really run at once: on a busy machine they often do not. Every run checks its final value, so an update that lost
 * a count fails the run (exit 1).
 *
 * For instruction counts, which do not depend on the machine's load, run
 * one case under callgrind and divide by the ops:
 *   valgrind --tool=callgrind --toggle-collect=run_counter \
 *       /tmp/metrics_bench -q counter -t 1 -n 1000000
 * (run_histogram, run_shared, run_hook likewise). */
#define _GNU_SOURCE
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wisp.h>

static wisp_counter_t *counter;
static wisp_histogram_t *hist;
static _Atomic uint64_t shared_ctr;
static long ops = 10 * 1000 * 1000;
static _Atomic int go;

/* A per-loop counter as the server keeps them: one writer thread. */
typedef struct hook_slot {
    _Alignas(64) _Atomic uint64_t v;
} hook_slot;
static hook_slot hooks[64];

/* Thread CPU time: on a machine shared with other work, wall time
 * counts the time a thread waits for a CPU too. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

__attribute__((noinline)) static void run_counter(long n)
{
    for (long i = 0; i < n; i++)
        wisp_counter_inc(counter);
}

/* Latencies spread over the buckets (0.5 ms .. 8 s, 12 bounds). */
__attribute__((noinline)) static void run_histogram(long n)
{
    double v = 0.0001;
    for (long i = 0; i < n; i++) {
        wisp_histogram_observe(hist, v);
        v = v < 8 ? v * 1.7 : 0.0001;
    }
}

__attribute__((noinline)) static void run_shared(long n)
{
    for (long i = 0; i < n; i++)
        atomic_fetch_add_explicit(&shared_ctr, 1, memory_order_relaxed);
}

__attribute__((noinline)) static void run_hook(_Atomic uint64_t *v, long n)
{
    for (long i = 0; i < n; i++)
        atomic_store_explicit(
            v, atomic_load_explicit(v, memory_order_relaxed) + 1,
            memory_order_relaxed);
}

typedef struct job {
    int what;
    int id;
    double secs;
} job;

enum { W_COUNTER, W_HIST, W_SHARED, W_HOOK, W_COUNT };
static const char *const names[W_COUNT] = {"counter", "histogram",
                                           "shared", "hook"};
static const char *const labels[W_COUNT] = {
    "wisp_counter_inc", "wisp_histogram_observe (12 bounds)",
    "one shared atomic_fetch_add", "per-loop hook (load+store)"};

static void *worker(void *arg)
{
    job *j = arg;
    while (!atomic_load(&go))
        ;
    double t0 = now_s();
    switch (j->what) {
    case W_COUNTER: run_counter(ops); break;
    case W_HIST: run_histogram(ops); break;
    case W_SHARED: run_shared(ops); break;
    default: run_hook(&hooks[j->id].v, ops); break;
    }
    j->secs = now_s() - t0;
    return NULL;
}

static int run(int what, int threads)
{
    wisp_metrics_t *reg = wisp_metrics_create();
    static const double b[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                               0.05, 0.1, 0.25, 0.5, 1, 8};
    counter = wisp_metrics_counter(reg, "ops_total", "Ops.", NULL, NULL);
    hist = wisp_metrics_histogram(reg, "lat_seconds", "Latency.", NULL,
                                  NULL, b, 12);
    atomic_store(&shared_ctr, 0);
    memset(hooks, 0, sizeof hooks);
    atomic_store(&go, 0);
    pthread_t th[64];
    job jobs[64];
    for (int i = 0; i < threads; i++) {
        jobs[i] = (job){what, i, 0};
        pthread_create(&th[i], NULL, worker, &jobs[i]);
    }
    atomic_store(&go, 1);
    double worst = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(th[i], NULL);
        if (jobs[i].secs > worst)
            worst = jobs[i].secs;
    }
    uint64_t want = (uint64_t)ops * (uint64_t)threads, got = 0;
    switch (what) {
    case W_COUNTER: got = wisp_counter_value(counter); break;
    case W_HIST: got = wisp_histogram_count(hist); break;
    case W_SHARED: got = atomic_load(&shared_ctr); break;
    default:
        for (int i = 0; i < threads; i++)
            got += atomic_load(&hooks[i].v);
        break;
    }
    wisp_metrics_destroy(reg);
    printf("| %-36s | %2d | %8.2f | %10.1f |\n", labels[what], threads,
           worst * 1e9 / (double)ops, (double)ops / worst / 1e6);
    if (got != want) {
        fprintf(stderr, "%s: counted %llu, want %llu\n", names[what],
                (unsigned long long)got, (unsigned long long)want);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 2, only = -1, o;
    while ((o = getopt(argc, argv, "t:n:q:")) != -1) {
        switch (o) {
        case 't': threads = atoi(optarg); break;
        case 'n': ops = atol(optarg); break;
        case 'q':
            for (int i = 0; i < W_COUNT; i++)
                if (strcmp(optarg, names[i]) == 0)
                    only = i;
            if (only < 0) {
                fprintf(stderr, "unknown -q %s\n", optarg);
                return 2;
            }
            break;
        default:
            fprintf(stderr, "usage: metrics_bench [-t THREADS] "
                            "[-n OPS] [-q counter|histogram|shared|hook]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 64 || ops < 1)
        return 2;
    printf("| update | threads | CPU ns/op | Mops per CPU-s |\n"
           "|---|---:|---:|---:|\n");
    int bad = 0;
    for (int w = 0; w < W_COUNT; w++) {
        if (only >= 0 && w != only)
            continue;
        bad |= run(w, 1);
        if (threads > 1)
            bad |= run(w, threads);
    }
    return bad;
}
