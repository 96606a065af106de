/* bench/appliance.c — the server bench/footprint.sh measures the memory
 * of: what a small device runs. One I/O loop, a bounded worker pool for
 * the blocking work (2 threads at most, 16 queued, 503 beyond), small
 * limits, and a library built without static files, access log or
 * metrics (meson -Dstatic_files=false -Daccess_log=false -Dmetrics=false).
 *
 *   GET /          "Hello, World!" (13 bytes: what bench/idle and wrk read)
 *   GET /ws        WebSocket echo (messages up to 4 KiB)
 *   GET /work?ms=N a blocking call of N ms (default 10) on the pool
 *
 *   usage: appliance [--port N] [--threads N] [--pool-threads N]
 *
 * Prints "listening on 127.0.0.1:PORT" once it accepts connections; stops
 * on SIGINT/SIGTERM. Not part of the meson build: footprint.sh compiles it
 * against the build it measures. Needs WebSocket and the pool. */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wisp.h>

#if !WISP_HAVE_WEBSOCKET || !WISP_HAVE_POOL
#error "bench/appliance.c needs a libwisp with -Dwebsocket=true -Dpool=true"
#endif

static wisp_pool_t *pool;
static wisp_ws_opts_t ws_opts;

static void on_hello(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_send(res, 200, "text/plain", "Hello, World!", 13);
}

static void ws_message(wisp_ws_t *ws, int binary, const void *data,
                       size_t len, void *arg)
{
    (void)arg;
    wisp_ws_send(ws, binary, data, len);
}

static const wisp_ws_handlers_t ws_handlers = {.on_message = ws_message};

static void on_ws(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_ws_upgrade(req, res, &ws_handlers, &ws_opts, NULL);
}

/* On a pool thread: stands in for a blocking driver or SDK call. */
static int work(void *arg, void **value, wisp_free_cb *destroy)
{
    long ms = (long)(intptr_t)arg;
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
    }
    *value = NULL;
    *destroy = NULL;
    return 0;
}

static void work_done(wisp_res_t *res, wisp_future_t *f, void *arg)
{
    (void)arg;
    int err = wisp_future_error(f);
    if (err == 0)
        wisp_res_send(res, 200, "text/plain", "done\n", 5);
    else if (err == -EAGAIN)
        wisp_res_send(res, 503, "text/plain", "busy\n", 5);
    else
        wisp_res_send(res, 500, "text/plain", "failed\n", 7);
}

static void on_work(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    char buf[16];
    long ms = 10;
    if (wisp_req_query_get(req, "ms", buf, sizeof buf) > 0)
        ms = strtol(buf, NULL, 10);
    if (ms < 0 || ms > 5000) {
        wisp_res_send(res, 400, "text/plain", "bad ms\n", 7);
        return;
    }
    wisp_future_t *f = wisp_pool_submit(pool, WISP_PRIO_NORMAL,
                                        wisp_res_loop(res), work,
                                        (void *)(intptr_t)ms);
    if (!f || wisp_res_await(res, f, work_done, NULL, NULL) < 0)
        wisp_res_send(res, 503, "text/plain", "busy\n", 5);
    wisp_future_unref(f);
}

int main(int argc, char **argv)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 1;
    cfg.max_connections = 4096;
    cfg.max_header_bytes = 8192;
    cfg.max_request_line_bytes = 2048;
    cfg.max_headers = 32;
    cfg.max_body_bytes = 16384;
    cfg.write_high_water = 64 * 1024;
    wisp_pool_config_t pcfg;
    wisp_pool_config_init(&pcfg);
    pcfg.min_threads = 0;
    pcfg.max_threads = 2;
    pcfg.queue_limit = 16;
    wisp_ws_opts_init(&ws_opts);
    ws_opts.max_message = ws_opts.max_frame = 4096;
    ws_opts.max_send_queue = 64 * 1024;

    enum { O_PORT = 256, O_THREADS, O_POOL };
    static const struct option opts[] = {
        {"port", required_argument, 0, O_PORT},
        {"threads", required_argument, 0, O_THREADS},
        {"pool-threads", required_argument, 0, O_POOL},
        {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        unsigned long v = strtoul(optarg, NULL, 10);
        switch (o) {
        case O_PORT: cfg.port = (uint16_t)v; break;
        case O_THREADS: cfg.threads = (unsigned)v; break;
        case O_POOL: pcfg.max_threads = (unsigned)v; break;
        default:
            fprintf(stderr, "usage: appliance [--port N] [--threads N] "
                            "[--pool-threads N]\n");
            return 2;
        }
    }
    pool = wisp_pool_create(&pcfg);
    wisp_server_t *srv = pool ? wisp_server_create(&cfg) : NULL;
    if (!srv) {
        perror("appliance");
        wisp_pool_destroy(pool);
        return 2;
    }
    wisp_server_route(srv, WISP_METHOD_GET, "/", on_hello, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/ws", on_ws, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/work", on_work, NULL, NULL);
    int r = wisp_server_listen(srv);
    if (r == 0)
        r = wisp_server_start(srv);
    if (r < 0) {
        fprintf(stderr, "appliance: %s\n", wisp_strerror(r));
        wisp_server_destroy(srv);
        wisp_pool_destroy(pool);
        return 1;
    }
    printf("listening on %s:%u\n", cfg.host, wisp_server_port(srv));
    fflush(stdout);
    wisp_server_wait(srv);
    wisp_pool_shutdown(pool, 0, 2000);
    wisp_pool_destroy(pool);
    wisp_server_destroy(srv);
    return 0;
}
