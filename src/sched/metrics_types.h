/* Internal: the layout of the metrics registry and its series, shared by
 * src/sched/metrics.c (registry, updates) and src/sched/metrics_text.c
 * (the exposition text). */
#ifndef WISP_SCHED_METRICS_TYPES_H
#define WISP_SCHED_METRICS_TYPES_H

#include <assert.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <string.h>

#include "wisp/metrics.h"

#define LINE 64
#define SHARDS WISP_METRICS_SHARDS

static_assert((SHARDS & (SHARDS - 1)) == 0, "shard count: a power of two");

enum { T_COUNTER, T_GAUGE, T_HISTOGRAM };

typedef struct family family;

/* What every series starts with. */
typedef struct series {
    family *fam;
    char *value;          /* label value, NULL without a label */
    wisp_metrics_fn fn;   /* callback series */
    void *arg;
} series;

typedef struct shard64 {
    alignas(LINE) _Atomic uint64_t v;
} shard64;

struct wisp_counter {
    series s;
    shard64 shard[SHARDS];
};

struct wisp_gauge {
    series s;
    _Atomic uint64_t base; /* int64 in two's complement */
    _Atomic uint64_t fbits; /* the double part's bits (0: 0.0) */
    shard64 shard[SHARDS];
};

/* A histogram shard: nb + 1 bucket counts (not cumulative; the last is
 * +Inf), then the sum's bits, padded to whole lines. */
struct wisp_histogram {
    series s;
    size_t stride;         /* words per shard */
    _Atomic uint64_t *w;   /* SHARDS * stride words, line-aligned */
};

struct family {
    char *name;
    char *help;
    char *label;
    int type;
    int is_fn;
    double *bounds;
    size_t nb;
    series **ser;         /* sorted by value */
    uint32_t n, cap;
};

struct wisp_metrics {
    pthread_mutex_t mu;
    family **fam;         /* sorted by name */
    uint32_t n, cap;
};

static inline double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static inline double gauge_fpart(const wisp_gauge_t *g)
{
    return bitsd(atomic_load_explicit(&((wisp_gauge_t *)g)->fbits,
                                      memory_order_relaxed));
}

/* Bucket i's count over all shards (not cumulative). */
static inline uint64_t hist_bucket(const wisp_histogram_t *h, size_t i)
{
    uint64_t t = 0;
    for (unsigned s = 0; s < SHARDS; s++)
        t += atomic_load_explicit(&h->w[s * h->stride + i],
                                  memory_order_relaxed);
    return t;
}

#endif
