/* Internal: the per-loop counters behind wisp_server_metrics.
 *
 * Each I/O loop (worker) owns one wisp__loop_stats and is its only
 * writer, so a hook is a relaxed load and a relaxed store (a plain add on
 * x86 and ARM, no locked instruction, no shared line: each worker's
 * counters sit in its own worker struct). The renderer reads them from
 * another thread with relaxed loads and adds the loops up
 * (src/server_metrics.c). They are kept whether or not anyone renders
 * them: a hook costs about as much as the branch that would skip it. */
#ifndef WISP_SERVER_STATS_H
#define WISP_SERVER_STATS_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct wisp__loop_stats {
    _Atomic uint64_t conns_opened;  /* accepted connections */
    _Atomic uint64_t conns_closed;
    _Atomic uint64_t bytes_in;
    _Atomic uint64_t bytes_out;
    _Atomic uint64_t ws_opened;     /* WebSocket sessions */
    _Atomic uint64_t ws_closed;
    _Atomic uint64_t status[5];     /* responses by class 1xx..5xx */
} wisp__loop_stats;

/* Add `n` to a counter of the calling loop's own stats. */
#define WISP__STAT_ADD(st, field, n)                                       \
    atomic_store_explicit(                                                 \
        &(st)->field,                                                      \
        atomic_load_explicit(&(st)->field, memory_order_relaxed) +        \
            (uint64_t)(n),                                                 \
        memory_order_relaxed)

/* Count a response head with `status` in its class (1xx..5xx; statuses
 * 600..999, which wisp_res_status allows, are not counted). */
static inline void wisp__stat_status(wisp__loop_stats *st, int status)
{
    unsigned k = (unsigned)status / 100u - 1u;
    if (k < 5)
        WISP__STAT_ADD(st, status[k], 1);
}

static inline uint64_t wisp__stat_get(_Atomic uint64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

#endif
