/* The server: configuration, routes, loops and threads, signals, and the
 * graceful stop.
 *
 * Stop: wisp_server_stop posts to the main loop, which posts "stop" to
 * every I/O loop and arms the deadline. Each I/O loop accepts what is
 * queued on its listener and closes it, closes idle keep-alive
 * connections, lets requests in flight finish (their responses say
 * Connection: close) and leaves its loop when its last connection is
 * gone. At the deadline the main loop posts "force": whatever remains is
 * closed. The main loop returns when every I/O thread has exited. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "server_int.h"
#include "http/cors.h"
#include "wisp/log.h"

void wisp_server_config_init(wisp_server_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->backlog = 1024;
    cfg->max_connections = 100000;
    cfg->max_request_line_bytes = 8192;
    cfg->max_header_bytes = 65536;
    cfg->max_headers = 100;
    cfg->max_body_bytes = 1024 * 1024;
    cfg->header_timeout_ms = 10000;
    cfg->body_timeout_ms = 30000;
    cfg->idle_timeout_ms = 60000;
    cfg->write_timeout_ms = 30000;
    cfg->shutdown_timeout_ms = 3000;
    cfg->write_high_water = 256 * 1024;
    cfg->handle_signals = 1;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

wisp_server_t *wisp_server_create(const wisp_server_config_t *cfg)
{
    wisp_server_config_t def;
    if (!cfg) {
        wisp_server_config_init(&def);
        cfg = &def;
    }
    if (cfg->max_headers == 0 || cfg->max_header_bytes < 64 ||
        cfg->max_request_line_bytes < 16 || cfg->backlog < 0 ||
        cfg->write_high_water == 0 ||
        cfg->max_header_bytes > 16u * 1024 * 1024) {
        errno = EINVAL;
        return NULL;
    }
    if (!WISP_HAVE_ACCESS_LOG &&
        cfg->access_log_format != WISP_ACCESS_LOG_NONE) {
        errno = ENOTSUP;
        return NULL;
    }
    wisp_server_t *srv = calloc(1, sizeof *srv);
    if (!srv) {
        errno = ENOMEM;
        return NULL;
    }
    srv->cfg = *cfg;
    srv->host = dup_or_null(cfg->host);
    srv->unix_path = dup_or_null(cfg->unix_path);
    srv->access_log_path = dup_or_null(cfg->access_log_path);
    srv->server_name = dup_or_null(cfg->server_name ? cfg->server_name
                                                    : "wisp");
    srv->cfg.host = srv->host;
    srv->cfg.unix_path = srv->unix_path;
    srv->cfg.access_log_path = srv->access_log_path;
    srv->cfg.proxy_trusted = NULL;   /* parsed below, not kept */
    srv->cfg.trusted_proxies = NULL;
    srv->cfg.server_name = srv->server_name;
    srv->http.router = wisp__router_create();
    srv->http.access_fd = -1;
    srv->sig_fd = -1;
    if (!srv->http.router || !srv->server_name) {
        wisp_server_destroy(srv);
        errno = ENOMEM;
        return NULL;
    }
    srv->http.max_body_bytes = cfg->max_body_bytes;
    srv->http.header_timeout_ms = cfg->header_timeout_ms;
    srv->http.body_timeout_ms = cfg->body_timeout_ms;
    srv->http.idle_timeout_ms = cfg->idle_timeout_ms;
    srv->http.alog_on = cfg->access_log_format != WISP_ACCESS_LOG_NONE;
    srv->http.alog_combined =
        cfg->access_log_format == WISP_ACCESS_LOG_COMBINED;
    srv->http.access_log_hook = cfg->access_log_hook;
    srv->http.access_log_arg = cfg->access_log_arg;
    if (srv->http.alog_on) {
        /* The access log is the first middleware: its done-hook runs
         * last, once every other hook has had its say. */
        wisp_mw_t alog = {.done = wisp__alog_done};
        if (wisp__mw_add(&srv->http, NULL, 0, &alog, 0) < 0) {
            wisp_server_destroy(srv);
            errno = ENOMEM;
            return NULL;
        }
    }
    srv->proxy.mode = cfg->proxy_protocol;
    srv->proxy.timeout_ms = cfg->proxy_timeout_ms ? cfg->proxy_timeout_ms
                                                  : 5000;
    int pr = wisp__cidrs_parse(cfg->proxy_trusted, &srv->proxy.trusted);
    if (pr == 0)
        pr = wisp__cidrs_parse(cfg->trusted_proxies,
                               &srv->http.trusted_proxies);
    if (pr == 0 && (cfg->proxy_protocol < WISP_PROXY_OFF ||
                    cfg->proxy_protocol > WISP_PROXY_OPTIONAL ||
                    (cfg->proxy_protocol && srv->proxy.trusted.n == 0)))
        pr = -EINVAL;
    if (pr < 0) {
        wisp_server_destroy(srv);
        errno = -pr;
        return NULL;
    }
    srv->http.limits.max_request_line = cfg->max_request_line_bytes;
    srv->http.limits.max_head = cfg->max_header_bytes;
    srv->http.limits.max_headers = cfg->max_headers;
    if (*srv->server_name) {
        int n = snprintf(srv->http.server_hdr, sizeof srv->http.server_hdr,
                         "Server: %.60s\r\n", srv->server_name);
        srv->http.server_hdr_len = n > 0 ? (uint32_t)n : 0;
    }
    atomic_init(&srv->stop_requested, 0);
    atomic_init(&srv->workers_running, 0);
    return srv;
}

static int add_route(wisp_server_t *srv, wisp_method_t method,
                     const char *pattern, wisp_handler handler, void *arg,
                     const wisp_route_opts_t *opts, void *owned)
{
    if (srv->state != WISP__S_NEW)
        return WISP_ESTATE;
    if (!pattern || !handler ||
        ((unsigned)method >= WISP_METHOD_COUNT && method != WISP_METHOD_ANY))
        return -EINVAL;
    wisp__route *rt = calloc(1, sizeof *rt);
    if (!rt)
        return -ENOMEM;
    rt->handler = handler;
    rt->arg = arg;
    if (opts) {
        rt->max_body = opts->max_body_bytes;
        rt->stream_body = opts->stream_body;
        if (opts->mw_count > WISP_MW_MAX_ROUTE ||
            (opts->mw_count && !opts->mw)) {
            free(rt);
            return opts->mw_count > WISP_MW_MAX_ROUTE ? -ENOSPC : -EINVAL;
        }
        for (uint32_t i = 0; i < opts->mw_count; i++) {
            const wisp_mw_t *m = &opts->mw[i];
            if (!m->before && !m->after && !m->done) {
                free(rt);
                return -EINVAL;
            }
        }
        if (opts->mw_count) {
            rt->mw = malloc(opts->mw_count * sizeof *rt->mw);
            if (!rt->mw || wisp__mw_ensure(&srv->http) < 0) {
                free(rt->mw);
                free(rt);
                return -ENOMEM;
            }
            memcpy(rt->mw, opts->mw, opts->mw_count * sizeof *rt->mw);
            rt->nmw = opts->mw_count;
        }
    }
    int r = wisp__router_add(srv->http.router, (int)method, pattern, rt);
    if (r < 0) {
        free(rt->mw);
        free(rt);
        return r;
    }
    rt->owned = owned;
    rt->next = srv->routes;
    srv->routes = rt;
    return 0;
}

int wisp_server_route(wisp_server_t *srv, wisp_method_t method,
                      const char *pattern, wisp_handler handler, void *arg,
                      const wisp_route_opts_t *opts)
{
    return add_route(srv, method, pattern, handler, arg, opts, NULL);
}

#if WISP_HAVE_STATIC_FILES
int wisp_server_static(wisp_server_t *srv, const char *prefix,
                       const char *root, const wisp_static_opts_t *opts)
{
    if (!prefix || prefix[0] != '/' || !root)
        return -EINVAL;
    if (srv->state != WISP__S_NEW)
        return WISP_ESTATE;
    wisp_pool_t *pool = opts ? opts->pool : NULL;
    if (!pool && !srv->file_pool) {
        /* Blocking file work of the static routes (DESIGN rule 2). */
        wisp_pool_config_t pc = {
            .min_threads = 0,
            .max_threads = 2,
            .queue_limit = 1024,
            .keep_alive_ms = 10000,
            .nice = 0,
        };
        srv->file_pool = wisp_pool_create(&pc);
        if (!srv->file_pool)
            return -errno;
    }
    if (!pool)
        pool = srv->file_pool;
    int err = 0;
    void *ctx = wisp__static_create(root, opts, pool, &err);
    if (!ctx)
        return err;
    size_t pl = strlen(prefix);
    while (pl > 1 && prefix[pl - 1] == '/')
        pl--;
    char *pat = malloc(pl + 8);
    if (!pat) {
        wisp__static_destroy(ctx);
        return -ENOMEM;
    }
    if (pl == 1) {
        memcpy(pat, "/*path", 7);
    } else {
        memcpy(pat, prefix, pl);
        memcpy(pat + pl, "/*path", 7);
    }
    int r = add_route(srv, WISP_METHOD_GET, pat, wisp__static_handler, ctx,
                      NULL, ctx);
    free(pat);
    if (r < 0)
        wisp__static_destroy(ctx);
    return r;
}
#endif /* WISP_HAVE_STATIC_FILES */

/* ------------------------------------------------------------ listen */

/* Stopping: the loop leaves once its last connection is gone (the
 * transport's on_empty) and its last child process has been reaped
 * (the process layer's idle callback); whichever comes second. */
static void worker_empty(void *arg)
{
    wisp__worker *w = arg;
    if (w->net.nconns == 0 && wisp__proc_live(w->loop) == 0)
        wisp_loop_break(w->loop);
}

int wisp_server_listen(wisp_server_t *srv)
{
    if (srv->state != WISP__S_NEW)
        return WISP_ESTATE;
    unsigned n = srv->cfg.threads;
    if (n == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus > 0 ? (unsigned)cpus : 1;
    }
    if (n > 1024)
        n = 1024;
    srv->workers = calloc(n, sizeof *srv->workers);
    if (!srv->workers)
        return -ENOMEM;
    srv->nworkers = n;
    for (unsigned i = 0; i < n; i++) {
        srv->workers[i].lsn_tcp.io.fd = -1;
        srv->workers[i].lsn_unix.io.fd = -1;
    }
    int r = 0;
    if (srv->cfg.embedded && n != 1) {
        srv->state = WISP__S_LISTENING;
        return -EINVAL; /* one loop, stepped by the application's */
    }
    /* Embedded, the one loop is also the main loop (stop, deadline). */
    srv->main_loop = srv->cfg.embedded
                         ? NULL : wisp_loop_create_backend(srv->cfg.backend);
    if (!srv->main_loop && !srv->cfg.embedded)
        return -errno;
    uint16_t port = srv->cfg.port;
    wisp__net_conf nc = {
        .write_timeout_ms = srv->cfg.write_timeout_ms,
        .write_high_water = srv->cfg.write_high_water,
        .max_connections = srv->cfg.max_connections,
    };
    const wisp_conn_handlers_t *http = &wisp__http_proto.h;
    uint32_t first = srv->cfg.header_timeout_ms;
    int probe = -1;
    if (!srv->cfg.no_tcp && !srv->cfg.reuse_port_shared) {
        r = wisp__listen_probe(srv->host, &probe, &port);
        if (r < 0) {
            srv->state = WISP__S_LISTENING;
            return r;
        }
    }
    for (unsigned i = 0; i < n && r == 0; i++) {
        wisp__worker *w = &srv->workers[i];
        w->srv = srv;
        w->index = i;
        /* An embedded loop is polled by the host: epoll (see
         * wisp_loop_fd). */
        w->loop = wisp_loop_create_backend(
            srv->cfg.embedded ? WISP_LOOP_BACKEND_EPOLL : srv->cfg.backend);
        if (!w->loop) {
            r = -errno;
            break;
        }
        if (srv->cfg.embedded)
            srv->main_loop = w->loop;
        r = wisp__net_init(&w->net, w->loop, &nc);
        if (r == 0)
            r = wisp__http_loop_init(w->loop, &w->net, &srv->http);
        if (r < 0)
            break;
        w->net.on_empty = worker_empty;
        w->net.empty_arg = w;
        int fd = -1;
        if (!srv->cfg.no_tcp)
            r = wisp__listen_tcp(srv->host, srv->cfg.backlog, &fd, &port);
        void *hl = wisp_loop_get_data(w->loop, wisp__http_key);
        wisp__listener_init(&w->lsn_tcp, &w->net, fd, http, hl, 1, first);
        if (srv->proxy.mode != WISP_PROXY_OFF)
            w->lsn_tcp.proxy = &srv->proxy;
        fd = -1;
        if (r == 0 && i == 0 && srv->unix_path)
            r = wisp__listen_unix(srv->unix_path, srv->cfg.backlog, &fd);
        if (r == 0 && fd >= 0)
            srv->unix_bound = 1; /* ours to unlink at destroy */
        wisp__listener_init(&w->lsn_unix, &w->net, fd, http, hl, 1, first);
    }
    if (probe >= 0)
        close(probe); /* the group's listeners hold the port now */
    if (r == 0 && srv->cfg.no_tcp && !srv->unix_path)
        r = -EINVAL;
    if (r == 0 && srv->access_log_path &&
        srv->cfg.access_log_format != WISP_ACCESS_LOG_NONE) {
        /* "-": standard error as it is (a copy of fd 2, so nothing is
         * reopened or truncated, and destroy closes only the copy). */
        if (strcmp(srv->access_log_path, "-") == 0)
            srv->http.access_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        else
            srv->http.access_fd = open(srv->access_log_path,
                                       O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
                                       0644);
        if (srv->http.access_fd < 0)
            r = -errno;
    }
    srv->port = srv->cfg.no_tcp ? 0 : port;
    srv->state = WISP__S_LISTENING;
    return r;
}

uint16_t wisp_server_port(const wisp_server_t *srv)
{
    return srv->port;
}

unsigned wisp_server_threads(const wisp_server_t *srv)
{
    return srv->nworkers;
}

wisp_loop_t *wisp_server_loop(wisp_server_t *srv, unsigned i)
{
    if (!srv->workers || i >= srv->nworkers)
        return NULL;
    return srv->workers[i].loop;
}

/* ------------------------------------------------------------ threads */

static void main_worker_exited(void *arg)
{
    wisp_server_t *srv = arg;
    if (atomic_load(&srv->workers_running) == 0)
        wisp_loop_break(srv->main_loop);
}

static void *worker_main(void *arg)
{
    wisp__worker *w = arg;
    wisp_server_t *srv = w->srv;
    wisp__listener_start(&w->lsn_tcp);
    wisp__listener_start(&w->lsn_unix);
    wisp_loop_run(w->loop);
    wisp__listener_close(&w->lsn_tcp);
    wisp__listener_close(&w->lsn_unix);
    wisp__net_fini(&w->net);
    /* Children still running (the stop deadline passed): killed and
     * reaped before wisp_server_wait returns. */
    wisp__proc_fini(w->loop);
    wisp__alog_flush(wisp_loop_get_data(w->loop, wisp__http_key));
    if (atomic_fetch_sub(&srv->workers_running, 1) == 1)
        wisp_loop_post(srv->main_loop, main_worker_exited, srv);
    return NULL;
}

int wisp_server_start(wisp_server_t *srv)
{
    if (srv->state != WISP__S_LISTENING)
        return WISP_ESTATE;
    /* Writes use MSG_NOSIGNAL, sendfile does not: ignore SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    if (srv->cfg.embedded) {
        /* No thread: the application steps the loop (wisp_server_step),
         * and its signals are its own. */
        wisp__worker *w = &srv->workers[0];
        wisp__listener_start(&w->lsn_tcp);
        wisp__listener_start(&w->lsn_unix);
        atomic_store(&srv->workers_running, 1);
        srv->state = WISP__S_RUNNING;
        return 0;
    }
    if (srv->cfg.handle_signals) {
        /* Block the stop signals before creating threads so they inherit
         * the mask and the signals reach the main loop's signalfd. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set, &srv->old_mask);
        srv->mask_set = 1;
        srv->sig_fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    }
    srv->state = WISP__S_RUNNING;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        wisp__worker *w = &srv->workers[i];
        atomic_fetch_add(&srv->workers_running, 1);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            atomic_fetch_sub(&srv->workers_running, 1);
            wisp_server_stop(srv);
            return i == 0 ? -EAGAIN : 0;
        }
        w->thread_started = 1;
    }
    return 0;
}

/* ------------------------------------------------------------ stop */

static void worker_stop(void *arg)
{
    wisp__worker *w = arg;
    if (w->net.stopping)
        return;
    w->net.stopping = 1;
    ((wisp__http_loop *)wisp_loop_get_data(w->loop, wisp__http_key))
        ->stopping = 1;
    if (w->srv->stop_cb)
        w->srv->stop_cb(w->srv, w->loop, w->srv->stop_arg);
    wisp__listener_drain_close(&w->lsn_tcp);
    wisp__listener_drain_close(&w->lsn_unix);
    /* Child processes of this loop: SIGTERM now, SIGKILL after their
     * grace period (or at the deadline, worker_force). */
    wisp__proc_stop(w->loop, worker_empty, w);
    /* Idle keep-alive connections close, requests in flight finish,
     * taken-over connections run their on_stop; the loop leaves when the
     * last connection is gone (worker_empty). */
    wisp__net_stop(&w->net);
}

static void worker_force(void *arg)
{
    wisp__worker *w = arg;
    wisp__net_force(&w->net);
    wisp__proc_force(w->loop);
    wisp_loop_break(w->loop);
}

static void main_deadline(wisp_timer_t *t, void *arg)
{
    wisp_server_t *srv = arg;
    (void)t;
    for (unsigned i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].thread_started || srv->cfg.embedded)
            wisp_loop_post(srv->workers[i].loop, worker_force,
                           &srv->workers[i]);
}

static void main_stop(void *arg)
{
    wisp_server_t *srv = arg;
    if (srv->state == WISP__S_STOPPING || srv->state == WISP__S_STOPPED)
        return;
    srv->state = WISP__S_STOPPING;
    if (srv->stop_cb)
        srv->stop_cb(srv, NULL, srv->stop_arg);
    for (unsigned i = 0; i < srv->nworkers; i++)
        if (srv->workers[i].thread_started || srv->cfg.embedded)
            wisp_loop_post(srv->workers[i].loop, worker_stop,
                           &srv->workers[i]);
    wisp_timer_init(srv->main_loop, &srv->deadline);
    wisp_timer_start(&srv->deadline, srv->cfg.shutdown_timeout_ms,
                     main_deadline, srv);
    if (atomic_load(&srv->workers_running) == 0)
        wisp_loop_break(srv->main_loop);
}

int wisp_server_on_stop(wisp_server_t *srv, wisp_server_stop_cb cb,
                        void *arg)
{
    if (srv->state != WISP__S_NEW && srv->state != WISP__S_LISTENING)
        return WISP_ESTATE;
    srv->stop_cb = cb;
    srv->stop_arg = arg;
    return 0;
}

void wisp_server_stop(wisp_server_t *srv)
{
    if (atomic_exchange(&srv->stop_requested, 1))
        return;
    if (srv->main_loop)
        wisp_loop_post(srv->main_loop, main_stop, srv);
}

int wisp_server_draining(const wisp_server_t *srv)
{
    /* Set by wisp_server_stop before anything else happens (the signal
     * path goes through it too), so a handler sees it from then on. */
    return atomic_load_explicit(&((wisp_server_t *)srv)->stop_requested,
                                memory_order_relaxed);
}

static void on_signal(wisp__io *io, unsigned events)
{
    wisp_server_t *srv =
        (wisp_server_t *)((char *)io - offsetof(wisp_server_t, sig_io));
    (void)events;
    struct signalfd_siginfo si;
    while (read(srv->sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        wisp_log(WISP_LOG_INFO, "signal %u: stopping", si.ssi_signo);
        wisp_server_stop(srv);
    }
}

/* ------------------------------------------------------------ embedded */

int wisp_server_fd(const wisp_server_t *srv)
{
    if (!srv->cfg.embedded || !srv->workers)
        return WISP_ESTATE;
    return wisp_loop_fd(srv->workers[0].loop);
}

int wisp_server_timeout(const wisp_server_t *srv)
{
    if (!srv->cfg.embedded || srv->state != WISP__S_RUNNING)
        return -1;
    return wisp_loop_timeout(srv->workers[0].loop);
}

int wisp_server_step(wisp_server_t *srv)
{
    if (!srv->cfg.embedded)
        return WISP_ESTATE;
    if (srv->state == WISP__S_STOPPED)
        return 1;
    if (srv->state != WISP__S_RUNNING && srv->state != WISP__S_STOPPING)
        return WISP_ESTATE;
    wisp__worker *w = &srv->workers[0];
    int r = wisp_loop_step(w->loop);
    if (r == 0 || r == -EBUSY)
        return r; /* running; or called from inside a step */
    /* Stopped (every connection gone, or the stop deadline), or the
     * backend failed: what a worker thread does after its loop. */
    wisp__listener_close(&w->lsn_tcp);
    wisp__listener_close(&w->lsn_unix);
    wisp__net_fini(&w->net);
    wisp__alog_flush(wisp_loop_get_data(w->loop, wisp__http_key));
    atomic_store(&srv->workers_running, 0);
    wisp_timer_stop(&srv->deadline);
    srv->state = WISP__S_STOPPED;
    return r < 0 ? r : 1;
}

/* wisp_server_wait for an embedded server: step until stopped, sleeping
 * in poll(2) in between (the application's loop is not running). */
static int embedded_wait(wisp_server_t *srv)
{
    struct pollfd pfd = {.fd = wisp_server_fd(srv), .events = POLLIN};
    int r;
    while ((r = wisp_server_step(srv)) == 0) {
        int t = wisp_server_timeout(srv);
        if (t != 0 && poll(&pfd, 1, t) < 0 && errno != EINTR)
            return -errno;
    }
    return r < 0 ? r : 0;
}

int wisp_server_wait(wisp_server_t *srv)
{
    if (srv->cfg.embedded && srv->state == WISP__S_STOPPED)
        return 0;
    if (srv->state != WISP__S_RUNNING && srv->state != WISP__S_STOPPING)
        return WISP_ESTATE;
    if (srv->cfg.embedded)
        return embedded_wait(srv);
    if (srv->sig_fd >= 0 && !srv->sig_io.added) {
        srv->sig_io.fd = srv->sig_fd;
        srv->sig_io.cb = on_signal;
        srv->sig_io.want = WISP__IO_RECV;
        wisp__be_add(srv->main_loop, &srv->sig_io);
    }
    if (atomic_load(&srv->workers_running) > 0)
        wisp_loop_run(srv->main_loop);
    for (unsigned i = 0; i < srv->nworkers; i++) {
        if (srv->workers[i].thread_started) {
            pthread_join(srv->workers[i].thread, NULL);
            srv->workers[i].thread_started = 0;
        }
    }
    wisp_timer_stop(&srv->deadline);
    srv->state = WISP__S_STOPPED;
    return 0;
}

int wisp_server_run(wisp_server_t *srv)
{
    int r = wisp_server_listen(srv);
    if (r == 0)
        r = wisp_server_start(srv);
    if (r == 0)
        r = wisp_server_wait(srv);
    return r;
}

void wisp_server_destroy(wisp_server_t *srv)
{
    if (!srv)
        return;
    if (srv->state == WISP__S_RUNNING || srv->state == WISP__S_STOPPING) {
        wisp_server_stop(srv);
        wisp_server_wait(srv);
    }
    wisp__server_metrics_detach(srv);
    /* The file pool first: what it settles from now on is posted to
     * loops that still exist (and are no longer run). */
    wisp__file_pool_destroy(srv->file_pool);
    srv->file_pool = NULL;
    for (unsigned i = 0; i < srv->nworkers; i++) {
        wisp__worker *w = &srv->workers[i];
        wisp__listener_close(&w->lsn_tcp);
        wisp__listener_close(&w->lsn_unix);
        wisp__net_fini(&w->net);
        wisp_loop_destroy(w->loop);
    }
    free(srv->workers);
    if (srv->unix_bound)
        unlink(srv->unix_path);
    if (!srv->cfg.embedded)
        wisp_loop_destroy(srv->main_loop); /* else: workers[0]'s, gone */
    wisp__router_destroy(srv->http.router);
    wisp__cors_free(srv->http.cors);
    wisp__mw_free(srv->http.mw);
    while (srv->routes) {
        wisp__route *rt = srv->routes;
        srv->routes = rt->next;
        if (rt->owned)
            wisp__static_destroy(rt->owned);
        free(rt->mw);
        free(rt);
    }
    if (srv->sig_fd >= 0)
        close(srv->sig_fd);
    if (srv->mask_set) {
        /* Swallow stop signals still pending before unblocking them. */
        sigset_t set, pend;
        sigemptyset(&set);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGTERM);
        sigpending(&pend);
        struct timespec zero = {0, 0};
        while (sigismember(&pend, SIGINT) || sigismember(&pend, SIGTERM)) {
            if (sigtimedwait(&set, NULL, &zero) < 0)
                break;
            sigpending(&pend);
        }
        pthread_sigmask(SIG_SETMASK, &srv->old_mask, NULL);
    }
    if (srv->http.access_fd >= 0)
        close(srv->http.access_fd);
    wisp__cidrs_free(&srv->proxy.trusted);
    wisp__cidrs_free(&srv->http.trusted_proxies);
    free(srv->host);
    free(srv->unix_path);
    free(srv->access_log_path);
    free(srv->server_name);
    free(srv);
}
