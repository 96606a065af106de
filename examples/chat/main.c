/* chat — multi-room chat over WebSocket, with rooms shared by every I/O
 * loop.
 *
 *   GET /       the page in www/ (index.html), to try it in a browser
 *   GET /ws     the chat: JSON text messages (protocol.c)
 *   GET /stats  live numbers as JSON: sessions per loop, rooms, drops
 *
 * This file holds the options, the HTTP routes and the lifecycle: each
 * I/O loop gets a context (chat.h, loop_ctx) stored in the loop itself
 * with wisp's per-loop data, and the server's stop hook stops publishing
 * room events before any loop starts to stop (rooms.c, publish). The
 * rooms are in rooms.c; docs/guide.md, "Chat example", tells it at
 * length. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "protocol.h"
#include "rooms.h"

/* The page's directory; the build points it at examples/chat/www, --www
 * overrides it. */
#ifndef CHAT_WWW
#define CHAT_WWW "www"
#endif

chat_config chat = {
    .history = 50,
    .rate = 5,
    .burst = 10,
    .flood = 50,
};

/* The WebSocket options of every session: wisp keeps the pointer, so
 * they must outlive every session (ws.h, wisp_ws_upgrade). */
static wisp_ws_opts_t ws_opts;

/* Each loop's loop_ctx, kept in the loop (wisp_loop_set_data). */
static int ctx_key = -1;

loop_ctx *chat_ctx(wisp_loop_t *loop)
{
    return wisp_loop_get_data(loop, ctx_key);
}

uint64_t chat_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------ HTTP */

static void on_stats(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_json_writer_t w;
    wisp_json_writer_init_dyn(&w);
    wisp_json_obj_begin(&w);
    wisp_json_key(&w, "loops");
    wisp_json_arr_begin(&w);
    for (unsigned i = 0; i < chat.nloops; i++)
        wisp_json_uint_val(&w, atomic_load_explicit(&chat.ctx[i].sessions,
                                                    memory_order_relaxed));
    wisp_json_arr_end(&w);
    wisp_json_kv_int(&w, "rooms", rooms_alive());
    wisp_json_key(&w, "dropped");
    wisp_json_uint_val(&w, rooms_dropped());
    wisp_json_obj_end(&w);
    wisp_res_header(res, "Cache-Control", "no-store");
    if (wisp_json_finish(&w, NULL, NULL) < 0)
        wisp_res_send(res, 500, "text/plain", "out of memory\n", 14);
    else
        wisp_res_send(res, 200, "application/json", w.buf, w.len);
    wisp_json_writer_free(&w);
}

static void on_ws(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    /* A real application would check Origin and a credential here. On
     * failure wisp has already answered 400 or 426. */
    wisp_ws_upgrade(req, res, &chat_ws_handlers, &ws_opts, NULL);
}

/* ------------------------------------------------------------ lifecycle */

/* The server's stop hook. First, once, on the main thread before any
 * loop hears of the stop: stop publishing (a delivery posted to a loop
 * that has left its run loop would never run). Nothing is needed on the
 * loops themselves: wisp closes every session with 1001, and on_close
 * takes each one out of its room. */
static void on_stop(wisp_server_t *srv, wisp_loop_t *loop, void *arg)
{
    (void)srv;
    (void)arg;
    if (loop)
        return;
    wisp_log(WISP_LOG_INFO, "chat: stopping");
    rooms_stop_publishing();
}

static int contexts_init(wisp_server_t *srv)
{
    ctx_key = wisp_loop_key_create(NULL); /* contexts_free frees them */
    if (ctx_key < 0)
        return ctx_key;
    chat.nloops = wisp_server_threads(srv);
    chat.ctx = calloc(chat.nloops, sizeof *chat.ctx);
    if (!chat.ctx)
        return -ENOMEM;
    for (unsigned i = 0; i < chat.nloops; i++) {
        loop_ctx *lc = &chat.ctx[i];
        lc->loop = wisp_server_loop(srv, i);
        lc->index = i;
        wisp_json_writer_init_dyn(&lc->ev);
        wisp_json_writer_init_dyn(&lc->hist);
        wisp_json_writer_init_dyn(&lc->out);
        wisp_json_writer_init_dyn(&lc->aux);
        lc->scratch = malloc(MAX_WIRE);
        lc->targets = calloc(chat.nloops, sizeof *lc->targets);
        lc->replay = calloc(chat.history ? chat.history : 1,
                            sizeof *lc->replay);
        if (!lc->scratch || !lc->targets || !lc->replay)
            return -ENOMEM;
        /* Before wisp_server_start: no loop runs yet. */
        int r = wisp_loop_set_data(lc->loop, ctx_key, lc);
        if (r < 0)
            return r;
    }
    return 0;
}

static void contexts_free(void)
{
    for (unsigned i = 0; chat.ctx && i < chat.nloops; i++) {
        loop_ctx *lc = &chat.ctx[i];
        free(lc->scratch);
        free(lc->targets);
        free(lc->replay);
        wisp_json_writer_free(&lc->ev);
        wisp_json_writer_free(&lc->hist);
        wisp_json_writer_free(&lc->out);
        wisp_json_writer_free(&lc->aux);
    }
    free(chat.ctx);
    chat.ctx = NULL;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: chat [options]\n"
        "  --host ADDR             bind address (default 127.0.0.1)\n"
        "  --port N                TCP port; 0 picks one (default 8080)\n"
        "  --threads N             I/O loops; 0 = one per CPU (default 0)\n"
        "  --history N             messages replayed on join (default 50)\n"
        "  --rate R                messages per second per client (5)\n"
        "  --burst N               messages allowed at once (10)\n"
        "  --flood N               refused messages, beyond the refill,\n"
        "                          before close 1008; 0 = never (50)\n"
        "  --max-send-queue BYTES  unsent output before a client is\n"
        "                          closed with 1008 (262144)\n"
        "  --write-timeout MS      no write progress for that long\n"
        "                          drops a connection (30000)\n"
        "  --www DIR               the page's directory (default\n"
        "                          " CHAT_WWW ")\n"
        "  --help                  this text\n");
}

int main(int argc, char **argv)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 8080;
    cfg.handle_signals = 1; /* SIGINT/SIGTERM stop; on_stop runs first */
    const char *www = CHAT_WWW;
    wisp_ws_opts_init(&ws_opts);
    ws_opts.max_message = ws_opts.max_frame = MAX_WIRE;
    ws_opts.max_send_queue = 256u << 10;
    ws_opts.drop_when_full = 0; /* a slow consumer is closed with 1008 */
    enum { O_HOST = 256, O_PORT, O_THREADS, O_HISTORY, O_RATE, O_BURST,
           O_FLOOD, O_MSQ, O_WTO, O_WWW, O_HELP };
    static const struct option opts[] = {
        {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},
        {"threads", required_argument, 0, O_THREADS},
        {"history", required_argument, 0, O_HISTORY},
        {"rate", required_argument, 0, O_RATE},
        {"burst", required_argument, 0, O_BURST},
        {"flood", required_argument, 0, O_FLOOD},
        {"max-send-queue", required_argument, 0, O_MSQ},
        {"write-timeout", required_argument, 0, O_WTO},
        {"www", required_argument, 0, O_WWW},
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
        case O_HISTORY: chat.history = (unsigned)v; break;
        case O_RATE: chat.rate = strtod(optarg, NULL); break;
        case O_BURST: chat.burst = (uint32_t)v; break;
        case O_FLOOD: chat.flood = (uint32_t)v; break;
        case O_MSQ: ws_opts.max_send_queue = (size_t)v; break;
        case O_WTO: cfg.write_timeout_ms = (uint32_t)v; break;
        case O_WWW: www = optarg; break;
        case O_HELP:
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    /* rate.h takes rates up to 1e12 per second. */
    if (chat.history > MAX_HISTORY || !(chat.rate > 0 && chat.rate <= 1e9) ||
        chat.burst < 1) {
        fprintf(stderr, "chat: --history must be at most %d, --rate above "
                "0 and at most 1e9, --burst at least 1\n", MAX_HISTORY);
        return 2;
    }
    /* Half the send queue: a replay leaves room for the live traffic
     * that follows it. 0 (no limit) replays the whole history. */
    chat.replay_budget = ws_opts.max_send_queue ? ws_opts.max_send_queue / 2
                                                : SIZE_MAX;
    chat.hash_seed = chat_wall_ms() * 0x9E3779B97F4A7C15ull;

    wisp_server_t *srv = wisp_server_create(&cfg);
    if (!srv) {
        fprintf(stderr, "chat: bad configuration\n");
        return 2;
    }
    /* The page is a plain file; /ws and /stats, being exact paths, win
     * over the files' wildcard route. */
    int r = wisp_server_static(srv, "/", www, NULL);
    if (r < 0) {
        fprintf(stderr, "chat: --www %s: %s\n", www, wisp_strerror(r));
        wisp_server_destroy(srv);
        return 2;
    }
    wisp_server_route(srv, WISP_METHOD_GET, "/stats", on_stats, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/ws", on_ws, NULL, NULL);
    wisp_server_on_stop(srv, on_stop, NULL);
    r = wisp_server_listen(srv);
    if (r == 0)
        r = contexts_init(srv);
    if (r == 0)
        r = wisp_server_start(srv);
    if (r < 0) {
        fprintf(stderr, "chat: %s\n", wisp_strerror(r));
        wisp_server_destroy(srv);
        contexts_free();
        return 1;
    }
    printf("listening on %s:%u\n", cfg.host, wisp_server_port(srv));
    fflush(stdout);

    wisp_server_wait(srv);
    /* Every session has closed (so every room has been emptied and
     * retired) and every delivery has run (see publish), so nothing
     * should be left; anything that is, is freed and reported. */
    rooms_free_all();
    wisp_server_destroy(srv);
    contexts_free();
    return 0;
}
