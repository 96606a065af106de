/* wisp-testserver — the fixture server the integration tests and the
 * benchmarks drive (examples/hello is the one to read first). It is built
 * in every build, -Dtests=false and bench/build.sh included, so outside
 * harnesses can drive it too. It prints "listening on HOST:PORT" once it
 * accepts connections, which is what the tests wait for.
 *
 *   GET  /              "Hello, World!" (text/plain)
 *   POST /echo          the request body back (application/octet-stream)
 *   GET  /big           1 MiB generated once at start, sent by reference
 *   GET  /stream?n=N    N chunks of a chunked (streamed) response
 *   POST /upload        a streamed request body, answered with its size
 *   GET  /delay/:ms     answered later, from a timer (async response)
 *   GET  /blocking?ms=N a blocking call (sleep N ms, default 50, standing in
 *                       for an SDK) run on the shared worker pool
 *   GET  /params/:a/(*rest)  route parameters echoed back
 *   GET  /static/(path)   files under --static DIR
 *   GET  /stats         counters the tests wait on instead of sleeping:
 *                       "running=R queued=Q submitted=S completed=C
 *                       cancelled=X delays=D delays_started=T
 *                       upload_bytes=U" (the pool's; /delay requests
 *                       waiting for their timer, and started in all;
 *                       bytes received by /upload so far)
 *   GET  /headers/:status  a response whose Content-Type and Server the
 *                       handler sets itself (wisp_res_header) before
 *                       wisp_res_send also names a Content-Type
 *
 * Built against a library without some features (wisp/features.h), it
 * leaves out what needs them: /blocking and the pool's counters (0 in
 * /stats) without the pool, /static without static files, --metrics
 * without metrics; --access-log in a build without one fails at start
 * (wisp_server_create: ENOTSUP).
 */
#include <errno.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wisp.h>

#ifndef TESTSERVER_PUBLIC
#define TESTSERVER_PUBLIC "public"
#endif

#define BIG_SIZE (1024 * 1024)
static char *big_body;

static void on_hello(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_send(res, 200, "text/plain", "Hello, World!", 13);
}

/* The address the server sees and the client it believes in. */
static void on_whoami(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    char buf[160];
    char peer[64];
    snprintf(peer, sizeof peer, "%s", wisp_req_peer(req));
    int n = snprintf(buf, sizeof buf, "peer=%s client=%s", peer,
                     wisp_req_client_addr(req));
    wisp_res_send(res, 200, "text/plain", buf, (size_t)n);
}

static void on_echo(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_str_t body = wisp_req_body(req);
    wisp_res_send(res, 200, "application/octet-stream", body.ptr, body.len);
}

static void on_big(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    /* The buffer lives for the whole run: no copy, no release needed. */
    wisp_res_send_ref(res, 200, "application/octet-stream", big_body,
                      BIG_SIZE, NULL, NULL);
}

static void on_stream(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    char nbuf[16];
    long n = 5;
    if (wisp_req_query_get(req, "n", nbuf, sizeof nbuf) > 0)
        n = strtol(nbuf, NULL, 10);
    if (n < 0 || n > 100000)
        n = 5;
    wisp_res_header(res, "Content-Type", "text/plain");
    for (long i = 0; i < n; i++) {
        char line[32];
        int l = snprintf(line, sizeof line, "chunk %ld\n", i);
        if (wisp_res_write(res, line, (size_t)l) < 0)
            return;
    }
    wisp_res_end(res);
}

/* For GET /stats: the handlers run on every loop. */
static _Atomic long delays_waiting, delays_started;
static _Atomic unsigned long long upload_bytes;

typedef struct upload {
    wisp_res_t *res;
    unsigned long long bytes;
    unsigned long long sum;
} upload;

static void upload_data(wisp_req_t *req, const void *data, size_t len,
                        void *arg)
{
    upload *u = arg;
    (void)req;
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        u->sum += p[i];
    u->bytes += len;
    atomic_fetch_add(&upload_bytes, len);
}

static void upload_end(wisp_req_t *req, int status, void *arg)
{
    upload *u = arg;
    (void)req;
    if (status == 0) {
        char out[64];
        int l = snprintf(out, sizeof out, "%llu bytes, sum %llu\n", u->bytes,
                         u->sum);
        wisp_res_send(u->res, 200, "text/plain", out, (size_t)l);
    }
    /* On error wisp answers (413/400/408) or the client is gone. */
    free(u);
}

static void on_upload(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    upload *u = calloc(1, sizeof *u);
    if (!u) {
        wisp_res_send(res, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    u->res = res;
    wisp_req_on_body(req, upload_data, upload_end, u);
}

typedef struct delayed {
    wisp_timer_t timer;
    wisp_res_t *res;
} delayed;

static void delay_fire(wisp_timer_t *t, void *arg)
{
    delayed *d = arg;
    (void)t;
    atomic_fetch_sub(&delays_waiting, 1);
    wisp_res_send(d->res, 200, "text/plain", "delayed\n", 8);
    free(d);
}

static void delay_abort(wisp_res_t *res, void *arg)
{
    delayed *d = arg;
    (void)res;
    atomic_fetch_sub(&delays_waiting, 1);
    wisp_timer_stop(&d->timer);
    free(d);
}

static void on_delay(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_str_t ms = wisp_req_param(req, "ms");
    char tmp[16] = {0};
    memcpy(tmp, ms.ptr, ms.len < 15 ? ms.len : 15);
    long v = strtol(tmp, NULL, 10);
    if (v < 0 || v > 60000) {
        wisp_res_send(res, 400, "text/plain", "bad delay\n", 10);
        return;
    }
    delayed *d = calloc(1, sizeof *d);
    if (!d) {
        wisp_res_send(res, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    d->res = res;
    wisp_timer_init(wisp_res_loop(res), &d->timer);
    atomic_fetch_add(&delays_waiting, 1);
    atomic_fetch_add(&delays_started, 1);
    wisp_timer_start(&d->timer, (uint64_t)v, delay_fire, d);
    wisp_res_on_abort(res, delay_abort, d);
}

static wisp_pool_t *pool;

#if WISP_HAVE_POOL

/* Runs on a pool thread: blocking is allowed here, never on a loop. */
static int blocking_call(void *arg, void **value, wisp_free_cb *destroy)
{
    long ms = (long)(intptr_t)arg;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
    char *text = malloc(48);
    if (!text)
        return -ENOMEM;
    snprintf(text, 48, "slept %ld ms\n", ms);
    *value = text;
    *destroy = free;
    return 0;
}

/* Back on the connection's loop once the pool call has settled. */
static void blocking_done(wisp_res_t *res, wisp_future_t *f, void *arg)
{
    (void)arg;
    int err = wisp_future_error(f);
    if (err == 0) {
        const char *text = wisp_future_value(f);
        wisp_res_send(res, 200, "text/plain", text, strlen(text));
    } else if (err == -EAGAIN) {
        wisp_res_send(res, 503, "text/plain", "pool queue full\n", 16);
    } else {
        wisp_res_send(res, 500, "text/plain", "pool call failed\n", 17);
    }
}

static void on_blocking(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    char buf[16];
    long ms = 50;
    if (wisp_req_query_get(req, "ms", buf, sizeof buf) > 0)
        ms = strtol(buf, NULL, 10);
    if (ms < 0 || ms > 10000) {
        wisp_res_send(res, 400, "text/plain", "bad ms\n", 7);
        return;
    }
    wisp_future_t *f = wisp_pool_submit(pool, WISP_PRIO_NORMAL,
                                        wisp_res_loop(res), blocking_call,
                                        (void *)(intptr_t)ms);
    if (!f || wisp_res_await(res, f, blocking_done, NULL, NULL) < 0)
        wisp_res_send(res, 500, "text/plain", "out of memory\n", 14);
    wisp_future_unref(f); /* wisp_res_await keeps its own reference */
}
#endif /* WISP_HAVE_POOL */

static void on_stats(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    struct {
        unsigned running, queued;
        unsigned long long submitted, completed, cancelled;
    } st = {0, 0, 0, 0, 0};
#if WISP_HAVE_POOL
    wisp_pool_stats_t ps;
    wisp_pool_stats(pool, &ps);
    st.running = ps.running;
    st.queued = ps.queued;
    st.submitted = ps.submitted;
    st.completed = ps.completed;
    st.cancelled = ps.cancelled;
#endif
    char out[256];
    int l = snprintf(out, sizeof out,
                     "running=%u queued=%u submitted=%llu completed=%llu "
                     "cancelled=%llu delays=%ld delays_started=%ld "
                     "upload_bytes=%llu\n",
                     st.running, st.queued,
                     st.submitted, st.completed, st.cancelled,
                     atomic_load(&delays_waiting),
                     atomic_load(&delays_started),
                     atomic_load(&upload_bytes));
    wisp_res_send(res, 200, "text/plain", out, (size_t)l);
}

static void on_params(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_str_t a = wisp_req_param(req, "a");
    wisp_str_t rest = wisp_req_param(req, "rest");
    char out[8192];
    int l = snprintf(out, sizeof out, "a=%.*s rest=%.*s\n", (int)a.len,
                     a.ptr ? a.ptr : "", (int)rest.len,
                     rest.ptr ? rest.ptr : "");
    if (l > (int)sizeof out - 1)
        l = (int)sizeof out - 1;
    wisp_res_send(res, 200, "text/plain", out, (size_t)l);
}

static void on_headers(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_str_t st = wisp_req_param(req, "status");
    char tmp[8] = {0};
    memcpy(tmp, st.ptr, st.len < 7 ? st.len : 7);
    int status = atoi(tmp);
    if (status < 200 || status > 599)
        status = 200;
    wisp_res_header(res, "Content-Type", "application/json");
    wisp_res_header(res, "Server", "testserver/1");
    wisp_res_header(res, "X-Extra", "1");
    wisp_res_send(res, status, "text/plain", "{}", 2);
}

static void pool_free(void)
{
#if WISP_HAVE_POOL
    wisp_pool_destroy(pool);
#endif
    pool = NULL;
}

static void metrics_free(wisp_metrics_t *metrics)
{
#if WISP_HAVE_METRICS
    wisp_metrics_destroy(metrics);
#else
    (void)metrics;
#endif
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: wisp-testserver [options]\n"
        "  --host ADDR              bind address (default 127.0.0.1)\n"
        "  --port N                 TCP port; 0 picks one (default 8080)\n"
        "  --threads N              I/O loops; 0 = one per CPU (default 0)\n"
        "  --unix PATH              also listen on a Unix socket\n"
        "  --reuse-port-shared      join a port another server holds (both\n"
        "                           must ask; default: the port is ours)\n"
        "  --static DIR             directory served at /static/\n"
        "  --max-body BYTES         /echo body limit (default 1048576)\n"
        "  --max-conns N            connections per loop (default 100000)\n"
        "  --max-header-bytes N     header section limit (default 65536)\n"
        "  --max-line-bytes N       request line limit (default 8192)\n"
        "  --header-timeout-ms N    (default 10000)\n"
        "  --body-timeout-ms N      (default 30000)\n"
        "  --idle-timeout-ms N      (default 60000)\n"
        "  --write-timeout-ms N     (default 30000)\n"
        "  --shutdown-timeout-ms N  graceful stop deadline (default 3000)\n"
        "  --high-water BYTES       per-connection write queue (262144)\n"
        "  --access-log PATH        combined log to PATH ('-' = stderr)\n"
        "  --pool-threads N         max worker-pool threads (default 64)\n"
        "  --pool-queue N           worker-pool queue limit (default 1024)\n"
        "  --pool-nice N            worker-pool threads' nice, 0..19 above\n"
        "                           the server's (default 10)\n"
        "  --metrics                /metrics (Prometheus) and /health\n"
        "  --proxy-protocol MODE    required or optional (default off)\n"
        "  --proxy-trusted LIST     sources allowed to send PROXY headers\n"
        "  --proxy-timeout-ms N     PROXY header deadline (default 5000)\n"
        "  --trusted-proxies LIST   X-Forwarded-For/Forwarded senders\n"
        "  --help                   this text\n");
}

int main(int argc, char **argv)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 8080;
    const char *static_dir = TESTSERVER_PUBLIC;
    uint64_t max_body = 1024 * 1024;
    enum { O_HOST = 256, O_PORT, O_THREADS, O_UNIX, O_STATIC, O_MAXBODY,
           O_MAXCONNS, O_HT, O_BT, O_IT, O_WT, O_ST, O_HW, O_ALOG, O_MHB,
           O_MLB, O_PT, O_PQ, O_PN, O_METRICS, O_SHARED, O_PP, O_PPT, O_PPTO,
           O_TP, O_HELP };
    static const struct option opts[] = {
        {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},
        {"threads", required_argument, 0, O_THREADS},
        {"unix", required_argument, 0, O_UNIX},
        {"reuse-port-shared", no_argument, 0, O_SHARED},
        {"static", required_argument, 0, O_STATIC},
        {"max-body", required_argument, 0, O_MAXBODY},
        {"max-conns", required_argument, 0, O_MAXCONNS},
        {"max-header-bytes", required_argument, 0, O_MHB},
        {"max-line-bytes", required_argument, 0, O_MLB},
        {"header-timeout-ms", required_argument, 0, O_HT},
        {"body-timeout-ms", required_argument, 0, O_BT},
        {"idle-timeout-ms", required_argument, 0, O_IT},
        {"write-timeout-ms", required_argument, 0, O_WT},
        {"shutdown-timeout-ms", required_argument, 0, O_ST},
        {"high-water", required_argument, 0, O_HW},
        {"access-log", required_argument, 0, O_ALOG},
        {"pool-threads", required_argument, 0, O_PT},
        {"pool-queue", required_argument, 0, O_PQ},
        {"pool-nice", required_argument, 0, O_PN},
        {"metrics", no_argument, 0, O_METRICS},
        {"proxy-protocol", required_argument, 0, O_PP},
        {"proxy-trusted", required_argument, 0, O_PPT},
        {"proxy-timeout-ms", required_argument, 0, O_PPTO},
        {"trusted-proxies", required_argument, 0, O_TP},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
#if WISP_HAVE_POOL
    wisp_pool_config_t pcfg;
    wisp_pool_config_init(&pcfg);
    pcfg.max_threads = 64;
#endif
    wisp_metrics_t *metrics = NULL;
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        unsigned long long v = optarg ? strtoull(optarg, NULL, 10) : 0;
        switch (o) {
        case O_HOST: cfg.host = optarg; break;
        case O_PORT: cfg.port = (uint16_t)v; break;
        case O_THREADS: cfg.threads = (unsigned)v; break;
        case O_UNIX: cfg.unix_path = optarg; break;
        case O_SHARED: cfg.reuse_port_shared = 1; break;
        case O_STATIC: static_dir = optarg; break;
        case O_MAXBODY: max_body = v; break;
        case O_MAXCONNS: cfg.max_connections = (uint32_t)v; break;
        case O_MHB: cfg.max_header_bytes = (uint32_t)v; break;
        case O_MLB: cfg.max_request_line_bytes = (uint32_t)v; break;
        case O_HT: cfg.header_timeout_ms = (uint32_t)v; break;
        case O_BT: cfg.body_timeout_ms = (uint32_t)v; break;
        case O_IT: cfg.idle_timeout_ms = (uint32_t)v; break;
        case O_WT: cfg.write_timeout_ms = (uint32_t)v; break;
        case O_ST: cfg.shutdown_timeout_ms = (uint32_t)v; break;
        case O_HW: cfg.write_high_water = (size_t)v; break;
        case O_ALOG:
            cfg.access_log_format = WISP_ACCESS_LOG_COMBINED;
            cfg.access_log_path = optarg; /* "-" is stderr (server.h) */
            break;
#if WISP_HAVE_POOL
        case O_PT: pcfg.max_threads = (unsigned)v; break;
        case O_PQ: pcfg.queue_limit = (uint32_t)v; break;
        case O_PN: pcfg.nice = v > 19 ? 20 : (int)v; break; /* 20: refused */
#endif
#if WISP_HAVE_METRICS
        case O_METRICS:
            if (!metrics && !(metrics = wisp_metrics_create()))
                return 1;
            break;
#endif
        case O_PP:
            cfg.proxy_protocol = strcmp(optarg, "required") == 0
                                     ? WISP_PROXY_REQUIRED
                                 : strcmp(optarg, "optional") == 0
                                     ? WISP_PROXY_OPTIONAL : -1;
            break;
        case O_PPT: cfg.proxy_trusted = optarg; break;
        case O_PPTO: cfg.proxy_timeout_ms = (uint32_t)v; break;
        case O_TP: cfg.trusted_proxies = optarg; break;
        case O_HELP:
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    big_body = malloc(BIG_SIZE);
    if (!big_body)
        return 1;
    for (size_t i = 0; i < BIG_SIZE; i++)
        big_body[i] = (char)('a' + i % 26);

#if WISP_HAVE_POOL
    pool = wisp_pool_create(&pcfg);
    if (!pool) {
        fprintf(stderr, "wisp-testserver: bad pool configuration\n");
        free(big_body);
        return 2;
    }
#endif
    wisp_server_t *srv = wisp_server_create(&cfg);
    if (!srv) {
        fprintf(stderr, "wisp-testserver: bad configuration (%s)\n",
                strerror(errno));
        pool_free();
        free(big_body);
        return 2;
    }
    wisp_route_opts_t echo_opts = {.max_body_bytes = max_body};
    wisp_route_opts_t upload_opts = {.max_body_bytes = 1ull << 40,
                                     .stream_body = 1};
    wisp_server_route(srv, WISP_METHOD_GET, "/", on_hello, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/whoami", on_whoami, NULL,
                      NULL);
    wisp_server_route(srv, WISP_METHOD_POST, "/echo", on_echo, NULL,
                      &echo_opts);
    wisp_server_route(srv, WISP_METHOD_GET, "/big", on_big, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/stream", on_stream, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_POST, "/upload", on_upload, NULL,
                      &upload_opts);
    wisp_server_route(srv, WISP_METHOD_GET, "/delay/:ms", on_delay, NULL,
                      NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/params/:a/*rest", on_params,
                      NULL, NULL);
#if WISP_HAVE_POOL
    wisp_server_route(srv, WISP_METHOD_GET, "/blocking", on_blocking, NULL,
                      NULL);
#endif
    wisp_server_route(srv, WISP_METHOD_GET, "/headers/:status", on_headers,
                      NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/stats", on_stats, NULL, NULL);
#if WISP_HAVE_METRICS
    if (metrics) {
        wisp_metrics_route(srv, "/metrics", metrics);
        wisp_server_health_route(srv, "/health");
    }
#endif
    int r = 0;
#if WISP_HAVE_STATIC_FILES
    r = wisp_server_static(srv, "/static", static_dir, NULL);
    if (r < 0)
        fprintf(stderr, "wisp-testserver: static dir %s: %s (route disabled)\n",
                static_dir, wisp_strerror(r));
#else
    (void)static_dir;
#endif

    r = wisp_server_listen(srv);
#if WISP_HAVE_METRICS
    if (r == 0 && metrics)
        r = wisp_server_metrics(srv, metrics);
#if WISP_HAVE_POOL
    if (r == 0 && metrics)
        r = wisp_metrics_add_pool(metrics, pool, "hello");
#endif
#endif
    if (r == 0)
        r = wisp_server_start(srv);
    if (r < 0) {
        fprintf(stderr, "wisp-testserver: %s\n", wisp_strerror(r));
        wisp_server_destroy(srv);
        pool_free();
        metrics_free(metrics);
        free(big_body);
        return 1;
    }
    printf("listening on %s:%u\n", cfg.host, wisp_server_port(srv));
    fflush(stdout);
    wisp_server_wait(srv);
    /* Every request has finished or been aborted (which cancelled its
     * future): queued work is skipped, a call still running finishes and
     * its result is destroyed. The pool goes before the loops its futures
     * belong to. */
#if WISP_HAVE_POOL
    wisp_pool_shutdown(pool, 0, 2000);
#if WISP_HAVE_METRICS
    if (metrics)
        wisp_metrics_remove_fn(metrics, pool);
#endif
#endif
    pool_free();
    wisp_server_destroy(srv);
    metrics_free(metrics);
    free(big_body);
    return 0;
}
