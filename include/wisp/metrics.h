/* wisp — metrics: counters, gauges and histograms in a registry, rendered
 * in the Prometheus text exposition format (version 0.0.4), plus the
 * server's own metrics and a health route.
 *
 * A registry holds metric families. A family has a name, a help text, a
 * type, and either no label (then it has exactly one series) or one label
 * name (then it has one series per label value, at most
 * WISP_METRICS_MAX_SERIES of them). A series is obtained once, by value,
 * from the registry and then updated through its handle: no lookup, no
 * lock, no allocation on the update path.
 *
 *     wisp_counter_t *ok = wisp_metrics_counter(reg, "app_requests_total",
 *                                   "Requests served.", "class", "2xx");
 *     ...
 *     wisp_counter_inc(ok);          // from any thread
 *
 * Updates are cheap from any thread at once: each series keeps a small
 * array of shards, each on its own cache line; a thread always updates the
 * shard its thread-local id picks (ids are handed out round robin), with
 * one relaxed atomic operation. Threads on different cores therefore do
 * not fight over a cache line (up to WISP_METRICS_SHARDS threads), and
 * the renderer adds the shards up. A render counts every update that
 * happens before it (the updating thread was joined, or handed over to
 * the rendering thread through a post, a lock...); updates racing with a
 * render may or may not be counted by it, never half.
 *
 * Values that are cheaper to read than to track (a queue depth, a pool's
 * statistics) come from callbacks that the renderer calls
 * (wisp_metrics_gauge_fn, wisp_metrics_counter_fn).
 *
 * Rendering (wisp_metrics_render, or the route helpers) writes, for each
 * family in byte order of its name: "# HELP name help", "# TYPE name
 * type", then each series in byte order of its label value. Help text is
 * escaped (backslash as \\, newline as \n), label values too (and '"'
 * as \"). Histograms write cumulative name_bucket{le="bound"} lines
 * ending with le="+Inf", then name_sum and name_count. Counters and
 * gauges are integers, written in decimal (a gauge given a fractional
 * part, wisp_gauge_set_double, as below). Other numbers (bounds, sums,
 * callback values) are written in the fewest digits that read back
 * exactly: integers below 2^53 in plain decimal ("2400000"), others as
 * Prometheus' Go client writes them ("0.25", "1e-06", "1.5e+21"), and
 * "+Inf", "-Inf", "NaN".
 *
 * Names follow the Prometheus data model: a metric name matches
 * [a-zA-Z_:][a-zA-Z0-9_:]*, a label name [a-zA-Z_][a-zA-Z0-9_]* and does
 * not start with "__"; histograms may not use the label "le". Help text
 * and label values are valid UTF-8. Lengths are bounded (below). A
 * histogram "x" also owns the names x_bucket, x_sum and x_count: a family
 * with one of those names cannot live beside it.
 *
 * Threads: registering, removing and rendering take the registry's lock
 * and may be called from any thread; updates take no lock. A series
 * handle stays valid until the registry is destroyed. */
#ifndef WISP_METRICS_H
#define WISP_METRICS_H

#include "common.h"
#include "http.h"
#include "pool.h"
#include "server.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wisp_metrics wisp_metrics_t;
typedef struct wisp_counter wisp_counter_t;
typedef struct wisp_gauge wisp_gauge_t;
typedef struct wisp_histogram wisp_histogram_t;

/* Limits. A registry holds at most MAX_FAMILIES families; a family at
 * most MAX_SERIES series (label values); a histogram at most MAX_BUCKETS
 * bounds (+Inf not counted). Names are 1..MAX_NAME bytes, help text at
 * most MAX_HELP bytes, label values at most MAX_VALUE bytes (may be
 * empty). */
#define WISP_METRICS_MAX_FAMILIES 1024
#define WISP_METRICS_MAX_SERIES 256
#define WISP_METRICS_MAX_BUCKETS 64
#define WISP_METRICS_MAX_NAME 128
#define WISP_METRICS_MAX_HELP 1024
#define WISP_METRICS_MAX_VALUE 256
/* Update shards per series (threads beyond this share shards, still
 * correctly, with atomic read-modify-writes). */
#define WISP_METRICS_SHARDS 16

/* Histogram bounds for latencies in seconds, 1 ms to 10 s (13 bounds):
 *     static const double b[] = WISP_METRICS_LATENCY_SECONDS;
 *     wisp_metrics_histogram(reg, name, help, label, value, b,
 *                            sizeof b / sizeof *b); */
#define WISP_METRICS_LATENCY_SECONDS                                       \
    {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

/* The Content-Type of the exposition format. */
#define WISP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---------------------------------------------------------- the registry */

/* The rest of this header is absent from a build with -Dmetrics=false
 * (wisp/features.h). */
#if WISP_HAVE_METRICS
/* Create an empty registry. Returns NULL with errno ENOMEM.
 * Thread: any. */
WISP_API wisp_metrics_t *wisp_metrics_create(void);

/* Free the registry, its families and every series handle it gave out.
 * No other thread may use the registry or its handles during or after
 * the call; a server that registered its metrics here must be destroyed
 * first (see wisp_server_metrics). NULL is a no-op. */
WISP_API void wisp_metrics_destroy(wisp_metrics_t *reg);

/* ------------------------------------------------------------ registering */

/* Get or create a series. The first call with a given `name` creates the
 * family, with help text `help` (required on that call) and label name
 * `label` (NULL: no label). Later calls with the same name return the
 * series for `value`, creating it on first use; they must give the same
 * type and label name, and `help` either NULL or the same text.
 * `label` and `value` are both NULL (a family with no label) or both
 * non-NULL. Every string is copied. A new series starts at 0 and is
 * rendered from then on, even if never updated.
 *
 * For a histogram, `bounds` holds `nbounds` (1..WISP_METRICS_MAX_BUCKETS)
 * finite upper bounds in strictly increasing order; +Inf is implied.
 * On later calls, `bounds` may be NULL (take the family's) or equal to
 * the family's.
 *
 * Returns the series handle, valid until the registry is destroyed, or
 * NULL with errno:
 *   EINVAL  a name, label name, label value or help text breaks the rules
 *           above, `reg` is NULL, label and value disagree on NULL, bad
 *           bounds;
 *   EEXIST  the name is taken by a family of another type, another label
 *           name, other help text or bounds, a callback family, or a
 *           histogram's derived name (x_bucket, x_sum, x_count);
 *   ENOSPC  MAX_FAMILIES or MAX_SERIES reached;
 *   ENOMEM.
 * Thread: any. */
WISP_API wisp_counter_t *wisp_metrics_counter(wisp_metrics_t *reg,
                                              const char *name,
                                              const char *help,
                                              const char *label,
                                              const char *value);
WISP_API wisp_gauge_t *wisp_metrics_gauge(wisp_metrics_t *reg,
                                          const char *name,
                                          const char *help,
                                          const char *label,
                                          const char *value);
WISP_API wisp_histogram_t *wisp_metrics_histogram(wisp_metrics_t *reg,
                                                  const char *name,
                                                  const char *help,
                                                  const char *label,
                                                  const char *value,
                                                  const double *bounds,
                                                  size_t nbounds);

/* A value read at render time. Runs on the rendering thread with the
 * registry's lock held: it must be thread-safe, quick, and must not call
 * wisp_metrics_* on the same registry. NaN is rendered as "NaN". */
typedef double (*wisp_metrics_fn)(void *arg);

/* Add a series whose value is `fn(arg)` at each render, as a gauge or as
 * a counter (a counter's callback must never return less than before).
 * Naming, label and help rules as wisp_metrics_counter; a family is either
 * all callbacks or all updated series (else EEXIST), and one value may be
 * registered once (a second time: -EEXIST).
 * Returns 0, or -EINVAL (as above, or `fn` NULL), -EEXIST, -ENOSPC,
 * -ENOMEM. Thread: any. */
WISP_API int wisp_metrics_gauge_fn(wisp_metrics_t *reg, const char *name,
                                   const char *help, const char *label,
                                   const char *value, wisp_metrics_fn fn,
                                   void *arg);
WISP_API int wisp_metrics_counter_fn(wisp_metrics_t *reg, const char *name,
                                     const char *help, const char *label,
                                     const char *value, wisp_metrics_fn fn,
                                     void *arg);

/* Remove every callback series registered with this `arg` (a family left
 * with no series goes too, freeing its name). Once this returns, none of
 * those callbacks runs any more. Use it before freeing what the callbacks
 * read. Returns the number of series removed (0 when none), or -EINVAL
 * when `reg` is NULL. Thread: any, but not from inside a callback. */
WISP_API int wisp_metrics_remove_fn(wisp_metrics_t *reg, const void *arg);

/* ---------------------------------------------------------------- updates */

/* Every update function takes no lock, allocates nothing, may be called
 * from any thread, and is a no-op on a NULL handle (so a failed
 * registration needs no special path). */

/* Add `n` to a counter (counters only go up). */
WISP_API void wisp_counter_add(wisp_counter_t *c, uint64_t n);
WISP_API void wisp_counter_inc(wisp_counter_t *c);
/* The counter's value now (the sum of its shards); 0 for NULL. */
WISP_API uint64_t wisp_counter_value(const wisp_counter_t *c);

/* Add `delta` (may be negative) to a gauge. */
WISP_API void wisp_gauge_add(wisp_gauge_t *g, int64_t delta);
WISP_API void wisp_gauge_inc(wisp_gauge_t *g);
WISP_API void wisp_gauge_dec(wisp_gauge_t *g);
/* Set a gauge to `v`. Adds that run at the same time on other threads
 * are each applied either before the set (and lost) or after it (and
 * kept); sets race with each other as plain stores do (one wins). */
WISP_API void wisp_gauge_set(wisp_gauge_t *g, int64_t v);
/* The gauge's value now, its fractional part dropped (see below; the
 * integer part alone when the sum is beyond int64's range); 0 for
 * NULL. */
WISP_API int64_t wisp_gauge_value(const wisp_gauge_t *g);

/* Fractional values. A gauge is an integer part (the sharded adds above)
 * plus a double part, 0 until one of these is called:
 * wisp_gauge_set_double sets the value to `v` (the integer part to 0, the
 * double part to `v`), wisp_gauge_add_double adds to the double part,
 * wisp_gauge_set (integer) sets the double part back to 0. While the
 * double part is not 0, the gauge is rendered as a double (integer part
 * + double part). The double part is one word shared by all threads
 * (a compare-and-swap per add): meant for values set now and then (a
 * ratio, a temperature), not for hot counts. */
WISP_API void wisp_gauge_set_double(wisp_gauge_t *g, double v);
WISP_API void wisp_gauge_add_double(wisp_gauge_t *g, double delta);
/* Integer part + double part; 0 for NULL. */
WISP_API double wisp_gauge_value_double(const wisp_gauge_t *g);

/* Count `v` in the first bucket whose bound is >= v (a value equal to a
 * bound goes in that bound's bucket; above every bound, in +Inf) and add
 * it to the sum. NaN is ignored. */
WISP_API void wisp_histogram_observe(wisp_histogram_t *h, double v);
/* Observations so far, and their sum; 0 for NULL. */
WISP_API uint64_t wisp_histogram_count(const wisp_histogram_t *h);
WISP_API double wisp_histogram_sum(const wisp_histogram_t *h);

/* -------------------------------------------------------------- rendering */

/* Render the registry in the text exposition format 0.0.4 (order and
 * escaping as described at the top). Gauge and counter callbacks run
 * inside this call. On success `*text` is a NUL-terminated string of
 * `*len` bytes that the caller frees with free(); `len` may be NULL.
 * An empty registry renders as "" (len 0).
 * Returns 0, -EINVAL (NULL argument), -ENOMEM (then *text is NULL).
 * Thread: any. */
WISP_API int wisp_metrics_render(wisp_metrics_t *reg, char **text,
                                 size_t *len);

/* A handler serving wisp_metrics_render(arg) with status 200,
 * WISP_METRICS_CONTENT_TYPE and Cache-Control: no-store (500 when
 * rendering fails for lack of memory). `arg` is the registry. Use it directly with wisp_server_route
 * to put the page behind your own checks. */
WISP_API void wisp_metrics_handler(wisp_req_t *req, wisp_res_t *res,
                                   void *arg);

/* Route GET (and HEAD) `path` to wisp_metrics_handler with `reg`.
 * `reg` must outlive the server. Returns as wisp_server_route (0,
 * -EINVAL, -EEXIST, -ENOMEM, WISP_ESTATE after listen). Thread: the
 * configuring thread. */
WISP_API int wisp_metrics_route(wisp_server_t *srv, const char *path,
                                wisp_metrics_t *reg);

/* ----------------------------------------------------- the server's own */

/* Register the server's own metrics in `reg`, all read at render time
 * from per-loop counters that the server keeps anyway (no cost unless
 * rendered):
 *   wisp_connections_open                   gauge
 *   wisp_connections_accepted_total         counter
 *   wisp_http_requests_total{class}         counter, class "1xx".."5xx"
 *                                           (responses whose head was
 *                                           sent, by status)
 *   wisp_bytes_received_total               counter (all connections)
 *   wisp_bytes_sent_total                   counter (all connections)
 *   wisp_ws_sessions_open                   gauge
 *   wisp_loop_inbox_depth{loop}             gauge, loop "0".."threads-1":
 *                                           tasks posted and not yet run
 *                                           (approximate as the inbox's
 *                                           bound is, see loop.h)
 *   wisp_server_draining                    gauge, 0 or 1
 * Counters count from wisp_server_listen, whenever this is called.
 * Call it after wisp_server_listen (the loops must exist), once per
 * server. `reg` must stay alive until wisp_server_destroy(srv), which
 * removes these series from it.
 * Returns 0, -EINVAL (NULL argument), WISP_ESTATE (before listen, or a
 * second time), -EEXIST (a name above already taken in `reg`), -ENOSPC,
 * -ENOMEM; after an error nothing of it stays registered.
 * Thread: the configuring thread. */
WISP_API int wisp_server_metrics(wisp_server_t *srv, wisp_metrics_t *reg);

#if WISP_HAVE_POOL /* absent with -Dpool=false */
/* Register a pool's statistics (wisp_pool_stats) under the label
 * pool="name":
 *   wisp_pool_queued, wisp_pool_running, wisp_pool_threads    gauges
 *   wisp_pool_submitted_total, wisp_pool_completed_total,
 *   wisp_pool_failed_total, wisp_pool_rejected_total,
 *   wisp_pool_cancelled_total                                 counters
 *   wisp_pool_busy_seconds_total                              counter
 * Several pools may be added under different names. Before destroying
 * the pool, call wisp_metrics_remove_fn(reg, pool).
 * Returns 0, -EINVAL (NULL argument, bad name), -EEXIST (the name already
 * added), -ENOSPC, -ENOMEM; after an error nothing of it stays
 * registered. Thread: any. */
WISP_API int wisp_metrics_add_pool(wisp_metrics_t *reg, wisp_pool_t *pool,
                                   const char *name);
#endif

/* ------------------------------------------------------------------ health */

/* Route GET (and HEAD) `path` to a health check: 200 "ok\n" while the
 * server serves, 503 "draining\n" once it is stopping
 * (wisp_server_draining), both text/plain and not cached
 * (Cache-Control: no-store). Returns as wisp_server_route. */
WISP_API int wisp_server_health_route(wisp_server_t *srv, const char *path);

#endif /* WISP_HAVE_METRICS */

#ifdef __cplusplus
}
#endif
#endif
