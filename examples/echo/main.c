/* echo — WebSocket echo at /ws (text and binary, messages up to
 * --max-message bytes, 16 MiB by default) next to the HTTP echo routes,
 * for conformance suites and benchmarks.
 *
 *   GET  /      "Hello, World!"
 *   POST /echo  the request body back
 *   GET  /ws    WebSocket: every message is sent back as it came
 *   GET  /ws/all WebSocket fan-out: every message is sent to every
 *                session of /ws/all on every loop (the sender included),
 *                encoded once and shared — for broadcast benchmarks
 *
 * Each loop keeps its /ws/all sessions in its own per-loop data
 * (wisp_loop_key_create); the server's stop hook ends the fan-out to
 * other loops once a stop begins.
 */
#include <errno.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <wisp.h>

static wisp_ws_opts_t ws_opts;

static void ws_message(wisp_ws_t *ws, int binary, const void *data,
                       size_t len, void *arg)
{
    (void)arg;
    wisp_ws_send(ws, binary, data, len);
}

static const wisp_ws_handlers_t ws_handlers = {
    .on_message = ws_message,
};

static void on_ws(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    /* On failure wisp has already answered 400 or 426. */
    wisp_ws_upgrade(req, res, &ws_handlers, &ws_opts, NULL);
}

/* ---- /ws/all: per-loop arrays of sessions, each kept in its loop's data
 * and touched only by that loop; a session's arg is its index in its
 * loop's array (1-based; 0: not a member). */
typedef struct members {
    wisp_ws_t **ws;
    size_t n, cap;
} members;

static int members_key = -1;      /* per-loop data: members */
static wisp_loop_t **loops;       /* broadcast targets */
static unsigned nloops;
static atomic_int stopping;       /* set by the stop hook */

static void members_free(void *p)
{
    members *m = p;
    free(m->ws);
    free(m);
}

/* The calling loop's members, created on first use; NULL: no memory. */
static members *members_of(wisp_loop_t *loop)
{
    members *m = wisp_loop_get_data(loop, members_key);
    if (!m && (m = calloc(1, sizeof *m)) != NULL)
        wisp_loop_set_data(loop, members_key, m);
    return m;
}

static void all_open(wisp_ws_t *ws, void *arg)
{
    (void)arg;
    members *m = members_of(wisp_ws_loop(ws));
    if (!m) {
        wisp_ws_close(ws, 1011, "out of memory");
        return;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        wisp_ws_t **a = realloc(m->ws, cap * sizeof *a);
        if (!a) {
            wisp_ws_close(ws, 1011, "out of memory");
            return;
        }
        m->ws = a;
        m->cap = cap;
    }
    wisp_ws_set_arg(ws, (void *)(uintptr_t)(m->n + 1));
    m->ws[m->n++] = ws;
}

static void all_close(wisp_ws_t *ws, int code, const char *reason,
                      size_t rlen, void *arg)
{
    (void)code;
    (void)reason;
    (void)rlen;
    size_t i = (size_t)(uintptr_t)arg;
    if (!i)
        return; /* never joined */
    members *m = members_of(wisp_ws_loop(ws));
    wisp_ws_t *last = m->ws[--m->n];
    m->ws[i - 1] = last;
    wisp_ws_set_arg(last, (void *)(uintptr_t)i);
}

static void all_deliver(wisp_loop_t *loop, wisp_shared_t *frame, void *arg)
{
    (void)arg;
    members *m = members_of(loop);
    /* A session the slow-consumer policy closes stays in the array
     * during this walk: its on_close (which takes it out) runs after
     * the send that closed it has returned, from the loop. */
    for (size_t i = 0; m && i < m->n; i++)
        wisp_ws_send_shared(m->ws[i], frame);
}

static void all_message(wisp_ws_t *ws, int binary, const void *data,
                        size_t len, void *arg)
{
    (void)ws;
    (void)arg;
    wisp_shared_t *f = wisp_ws_frame_shared(binary, data, len);
    if (!f)
        return;
    if (atomic_load(&stopping)) /* stopping: this loop's sessions only */
        all_deliver(wisp_ws_loop(ws), f, NULL);
    else
        wisp_broadcast(loops, nloops, f, all_deliver, NULL);
    wisp_shared_unref(f);
}

static const wisp_ws_handlers_t all_handlers = {
    .on_open = all_open,
    .on_message = all_message,
    .on_close = all_close,
};

static void on_ws_all(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_ws_upgrade(req, res, &all_handlers, &ws_opts, NULL);
}

/* The server's stop hook: once, on the main thread, before the loops
 * hear of the stop (loop NULL); then on each loop (nothing to do). */
static void on_stop(wisp_server_t *srv, wisp_loop_t *loop, void *arg)
{
    (void)srv;
    (void)arg;
    if (!loop)
        atomic_store(&stopping, 1);
}

static void on_hello(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_send(res, 200, "text/plain", "Hello, World!", 13);
}

static void on_echo(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_str_t body = wisp_req_body(req);
    wisp_res_send(res, 200, "application/octet-stream", body.ptr, body.len);
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: echo [options]\n"
        "  --host ADDR            bind address (default 127.0.0.1)\n"
        "  --port N               TCP port; 0 picks one (default 9001)\n"
        "  --threads N            I/O loops; 0 = one per CPU (default 0)\n"
        "  --max-message BYTES    WebSocket message limit (16777216)\n"
        "  --max-body BYTES       POST /echo body limit (16777216)\n"
        "  --idle-timeout-ms N    WebSocket idle timeout (0 = none)\n"
        "  --ping-interval-ms N   ping a WebSocket client silent this long (0 = never)\n"
        "  --close-timeout-ms N   wait this long for the client's close (5000)\n"
        "  --max-send-queue BYTES slow-consumer limit per session (4194304)\n"
        "  --help                 this text\n");
}

int main(int argc, char **argv)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 9001;
    wisp_ws_opts_init(&ws_opts);
    uint64_t max_body = 16u << 20;
    enum { O_HOST = 256, O_PORT, O_THREADS, O_MAXMSG, O_MAXBODY, O_IDLE,
           O_PING, O_CLOSE, O_SENDQ, O_HELP };
    static const struct option opts[] = {
        {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},
        {"threads", required_argument, 0, O_THREADS},
        {"max-message", required_argument, 0, O_MAXMSG},
        {"max-body", required_argument, 0, O_MAXBODY},
        {"idle-timeout-ms", required_argument, 0, O_IDLE},
        {"ping-interval-ms", required_argument, 0, O_PING},
        {"close-timeout-ms", required_argument, 0, O_CLOSE},
        {"max-send-queue", required_argument, 0, O_SENDQ},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        unsigned long long v = optarg ? strtoull(optarg, NULL, 10) : 0;
        switch (o) {
        case O_HOST: cfg.host = optarg; break;
        case O_PORT: cfg.port = (uint16_t)v; break;
        case O_THREADS: cfg.threads = (unsigned)v; break;
        case O_MAXMSG: ws_opts.max_message = ws_opts.max_frame = v; break;
        case O_MAXBODY: max_body = v; break;
        case O_IDLE: ws_opts.idle_timeout_ms = (uint32_t)v; break;
        case O_PING: ws_opts.ping_interval_ms = (uint32_t)v; break;
        case O_CLOSE: ws_opts.close_timeout_ms = (uint32_t)v; break;
        case O_SENDQ: ws_opts.max_send_queue = (size_t)v; break;
        case O_HELP:
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    members_key = wisp_loop_key_create(members_free);
    wisp_server_t *srv = wisp_server_create(&cfg);
    if (!srv || members_key < 0)
        return 2;
    wisp_server_on_stop(srv, on_stop, NULL);
    wisp_route_opts_t echo_opts = {.max_body_bytes = max_body};
    wisp_server_route(srv, WISP_METHOD_GET, "/", on_hello, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_POST, "/echo", on_echo, NULL,
                      &echo_opts);
    wisp_server_route(srv, WISP_METHOD_GET, "/ws", on_ws, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/ws/all", on_ws_all, NULL, NULL);
    int r = wisp_server_listen(srv);
    if (r == 0) {
        nloops = wisp_server_threads(srv);
        loops = calloc(nloops, sizeof *loops);
        if (!loops)
            r = -ENOMEM;
        for (unsigned i = 0; r == 0 && i < nloops; i++)
            loops[i] = wisp_server_loop(srv, i);
    }
    if (r == 0)
        r = wisp_server_start(srv);
    if (r < 0) {
        fprintf(stderr, "echo: %s\n", wisp_strerror(r));
        wisp_server_destroy(srv);
        return 1;
    }
    printf("listening on %s:%u\n", cfg.host, wisp_server_port(srv));
    fflush(stdout);
    wisp_server_wait(srv);
    wisp_server_destroy(srv); /* frees each loop's members */
    free(loops);
    return 0;
}
