/* Internal: registering a batch of callback series at once, all or
 * nothing (the server's and a pool's metrics). */
#ifndef WISP_SCHED_METRICS_INT_H
#define WISP_SCHED_METRICS_INT_H

#include "wisp/metrics.h"

typedef struct wisp__metric_fn {
    int counter;          /* else a gauge */
    const char *name;
    const char *help;
    wisp_metrics_fn fn;
} wisp__metric_fn;

/* Register d[0..n) with the same label, value and arg. Returns 0, or the
 * first error (as wisp_metrics_gauge_fn), after removing those of the
 * batch already registered. Thread: any. */
int wisp__metrics_add_fns(wisp_metrics_t *reg, const wisp__metric_fn *d,
                          size_t n, const char *label, const char *value,
                          void *arg);

/* Remove the callback series `name`{value} if it was registered with
 * `arg`. Returns 1 when removed, else 0. Thread: any. */
int wisp__metrics_remove_one(wisp_metrics_t *reg, const char *name,
                             const char *value, const void *arg);

#endif
