/* The server's own metrics, a pool's statistics as metrics, and the
 * health route.
 *
 * Everything here is read at render time: the per-loop counters of
 * net/stats.h (summed over the loops), the loops' inbox counters and
 * the drain flag, wisp_pool_stats. The hot path pays only the per-loop
 * counter hooks (see net/stats.h). */
#include <stdio.h>
#include <string.h>

#include "sched/metrics_int.h"
#include "server_int.h"

/* ------------------------------------------------------- the server's */

static double sum_stat(wisp_server_t *srv, size_t off)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < srv->nworkers; i++)
        t += wisp__stat_get((_Atomic uint64_t *)((char *)&srv->workers[i]
                                                      .net.stats + off));
    return (double)t;
}

#define STAT(f) offsetof(wisp__loop_stats, f)

static double m_conns_open(void *arg)
{
    return sum_stat(arg, STAT(conns_opened)) -
           sum_stat(arg, STAT(conns_closed));
}

static double m_accepted(void *arg)
{
    return sum_stat(arg, STAT(conns_opened));
}

static double m_bytes_in(void *arg)
{
    return sum_stat(arg, STAT(bytes_in));
}

static double m_bytes_out(void *arg)
{
    return sum_stat(arg, STAT(bytes_out));
}

static double m_ws_open(void *arg)
{
    return sum_stat(arg, STAT(ws_opened)) - sum_stat(arg, STAT(ws_closed));
}

static double m_draining(void *arg)
{
    return wisp_server_draining(arg) ? 1 : 0;
}

#define STATUS_FN(k)                                                       \
    static double m_status##k(void *arg)                                   \
    {                                                                      \
        return sum_stat(arg, STAT(status[k]));                             \
    }
STATUS_FN(0)
STATUS_FN(1)
STATUS_FN(2)
STATUS_FN(3)
STATUS_FN(4)

/* The inbox's reservation counter (loop.h: approximate by less than one
 * grant per posting thread). */
static double m_inbox(void *arg)
{
    wisp__worker *w = arg;
    return (double)atomic_load_explicit(&w->loop->inbox_len,
                                        memory_order_relaxed);
}

static const wisp__metric_fn server_fns[] = {
    {0, "wisp_connections_open", "Connections open now.", m_conns_open},
    {1, "wisp_connections_accepted_total", "Connections accepted.",
     m_accepted},
    {1, "wisp_bytes_received_total", "Bytes received on all connections.",
     m_bytes_in},
    {1, "wisp_bytes_sent_total", "Bytes sent on all connections.",
     m_bytes_out},
    {0, "wisp_ws_sessions_open", "WebSocket sessions open now.", m_ws_open},
    {0, "wisp_server_draining",
     "1 once the server is stopping (draining), else 0.", m_draining},
};

static const char *const classes[5] = {"1xx", "2xx", "3xx", "4xx", "5xx"};
static const wisp_metrics_fn status_fns[5] = {m_status0, m_status1, m_status2,
                                              m_status3, m_status4};
#define REQ_HELP "HTTP responses sent, by status class."

static void server_metrics_remove(wisp_server_t *srv, wisp_metrics_t *reg)
{
    wisp_metrics_remove_fn(reg, srv);
    for (unsigned i = 0; i < srv->nworkers; i++)
        wisp_metrics_remove_fn(reg, &srv->workers[i]);
}

int wisp_server_metrics(wisp_server_t *srv, wisp_metrics_t *reg)
{
    if (!srv || !reg)
        return -EINVAL;
    if (srv->state == WISP__S_NEW || srv->state == WISP__S_STOPPED ||
        srv->metrics || !srv->workers)
        return WISP_ESTATE;
    int r = wisp__metrics_add_fns(reg, server_fns,
                                  sizeof server_fns / sizeof *server_fns,
                                  NULL, NULL, srv);
    for (int k = 0; k < 5 && r == 0; k++)
        r = wisp_metrics_counter_fn(reg, "wisp_http_requests_total", REQ_HELP,
                                    "class", classes[k], status_fns[k], srv);
    for (unsigned i = 0; i < srv->nworkers && r == 0; i++) {
        char idx[16];
        snprintf(idx, sizeof idx, "%u", i);
        r = wisp_metrics_gauge_fn(reg, "wisp_loop_inbox_depth",
                                  "Tasks posted to an I/O loop and not yet "
                                  "taken (approximate).",
                                  "loop", idx, m_inbox, &srv->workers[i]);
    }
    if (r < 0) {
        server_metrics_remove(srv, reg);
        return r;
    }
    srv->metrics = reg;
    return 0;
}

/* Called by wisp_server_destroy (server.c). */
void wisp__server_metrics_detach(wisp_server_t *srv)
{
    if (srv->metrics)
        server_metrics_remove(srv, srv->metrics);
    srv->metrics = NULL;
}

/* -------------------------------------------------------------- pools */

#if WISP_HAVE_POOL /* a build without the pool has no pool to report */

#define POOL_FN(field, scale)                                              \
    static double p_##field(void *arg)                                     \
    {                                                                      \
        wisp_pool_stats_t st;                                              \
        wisp_pool_stats(arg, &st);                                         \
        return (double)st.field * (scale);                                 \
    }
POOL_FN(queued, 1)
POOL_FN(running, 1)
POOL_FN(threads, 1)
POOL_FN(submitted, 1)
POOL_FN(completed, 1)
POOL_FN(failed, 1)
POOL_FN(rejected, 1)
POOL_FN(cancelled, 1)
POOL_FN(busy_ns, 1e-9)

static const wisp__metric_fn pool_fns[] = {
    {0, "wisp_pool_queued", "Work items waiting in the pool's queue.",
     p_queued},
    {0, "wisp_pool_running", "Work items running on pool threads.",
     p_running},
    {0, "wisp_pool_threads", "Pool threads alive.", p_threads},
    {1, "wisp_pool_submitted_total", "Work items accepted into the queue.",
     p_submitted},
    {1, "wisp_pool_completed_total", "Work items that returned success.",
     p_completed},
    {1, "wisp_pool_failed_total", "Work items that returned an error.",
     p_failed},
    {1, "wisp_pool_rejected_total",
     "Submissions refused (queue full or shutting down).", p_rejected},
    {1, "wisp_pool_cancelled_total", "Work items cancelled before running.",
     p_cancelled},
    {1, "wisp_pool_busy_seconds_total", "Time spent running work items.",
     p_busy_ns},
};

int wisp_metrics_add_pool(wisp_metrics_t *reg, wisp_pool_t *pool,
                          const char *name)
{
    if (!reg || !pool || !name)
        return -EINVAL;
    return wisp__metrics_add_fns(reg, pool_fns,
                                 sizeof pool_fns / sizeof *pool_fns, "pool",
                                 name, pool);
}
#endif /* WISP_HAVE_POOL */

/* ------------------------------------------------------------- health */

static void on_health(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    wisp_res_header(res, "Cache-Control", "no-store");
    if (wisp_server_draining(arg))
        wisp_res_send(res, 503, "text/plain", "draining\n", 9);
    else
        wisp_res_send(res, 200, "text/plain", "ok\n", 3);
}

int wisp_server_health_route(wisp_server_t *srv, const char *path)
{
    if (!srv)
        return -EINVAL;
    return wisp_server_route(srv, WISP_METHOD_GET, path, on_health, srv,
                             NULL);
}
