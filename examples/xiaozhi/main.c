/* xiaozhi-server — a backend for xiaozhi ESP32 voice devices on wisp.
 *
 * main: flags and configuration, the shared pool and metrics, routes on
 * the main port (and OTA + vision on the optional second port), start,
 * signals, graceful stop (sessions closed, saves written), exit.
 * See docs/xiaozhi.md. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <wisp.h>

#include "app.h"
#include "auth.h"
#include "device.h"
#include "log.h"
#include "ota.h"
#include "vision.h"

#ifndef XZ_WWW
#define XZ_WWW "www"
#endif
#ifndef XZ_WWW_INSTALLED
#define XZ_WWW_INSTALLED XZ_WWW
#endif

/* The page: the source tree's www when it exists (a build run in place),
 * else the installed copy. */
static const char *default_www(void)
{
    struct stat st;
    if (stat(XZ_WWW, &st) == 0 && S_ISDIR(st.st_mode))
        return XZ_WWW;
    return XZ_WWW_INSTALLED;
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: xiaozhi-server [options]\n"
        "  --host ADDR       bind address (default 0.0.0.0)\n"
        "  --port N          the one port for everything (default 8000; 0 = any)\n"
        "  --threads N       I/O loops (default 0 = one per core)\n"
        "  --config FILE     INI configuration file\n"
        "  --set KEY=VALUE   override one key, e.g. --set pipeline.mode=scripted\n"
        "                    (repeatable; applied after the file and environment)\n"
        "  --help            this text\n"
        "Environment: XIAOZHI_PORT, XIAOZHI_HTTP_PORT, XIAOZHI_AUTH_SECRET,\n"
        "XIAOZHI_PUBLIC_URL. Keys and defaults: docs/xiaozhi.md.\n");
}

static xz_ota_site_t main_site = {0}, second_site = {1};

static int add_metrics(xz_app_t *a)
{
    wisp_metrics_t *r = a->reg;
    xz_metrics_t *m = &a->m;
    for (int s = 0; s < XZ_S_COUNT; s++) {
        m->sessions[s] = wisp_metrics_gauge(r, "xiaozhi_sessions",
            "Device sessions by state.", "state", xz_state_name(s));
        if (!m->sessions[s])
            return -1;
    }
#define C(f, n, h) if (!(m->f = wisp_metrics_counter(r, n, h, NULL, NULL))) \
        return -1
    C(sessions_total, "xiaozhi_session_opened_total", "Device sessions opened.");
    C(rejected_sessions, "xiaozhi_session_rejected_total",
      "Upgrades refused over server.max_sessions.");
    C(turns, "xiaozhi_turns_total", "Replies completed (tts stop sent).");
    C(aborts, "xiaozhi_aborts_total", "Replies aborted by the device or barge-in.");
    C(frames_in, "xiaozhi_frames_in_total", "Binary audio frames received.");
    C(frames_out, "xiaozhi_frames_out_total", "Binary audio frames sent.");
    C(frames_late, "xiaozhi_frames_late_total",
      "Downlink frames sent more than 20 ms after their due time.");
    C(ota_requests, "xiaozhi_ota_requests_total", "OTA POST requests.");
    C(vision_requests, "xiaozhi_vision_requests_total", "Vision uploads.");
    C(mcp_calls, "xiaozhi_mcp_calls_total", "MCP tools/call requests sent.");
    C(saves, "xiaozhi_saves_total", "Dialogue saves written.");
    C(save_failures, "xiaozhi_save_failures_total", "Dialogue saves lost.");
#undef C
    m->frames_dropped_bad = wisp_metrics_counter(r,
        "xiaozhi_frames_dropped_total", "Uplink frames dropped, by reason.",
        "reason", "bad_framing");
    m->frames_dropped_full = wisp_metrics_counter(r,
        "xiaozhi_frames_dropped_total", NULL, "reason", "utterance_full");
    if (!m->frames_dropped_bad || !m->frames_dropped_full)
        return -1;
    static const double lat[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5,
                                 1, 2.5, 5, 10, 30};
    for (int k = 0; k < XZ_PROV_COUNT; k++) {
        const char *p = xz_prov_name(k);
        m->provider_busy[k] = wisp_metrics_counter(r,
            "xiaozhi_provider_busy_total",
            "Provider calls refused: queue full.", "provider", p);
        m->provider_errors[k] = wisp_metrics_counter(r,
            "xiaozhi_provider_errors_total", "Provider calls failed.",
            "provider", p);
        m->provider_queued[k] = wisp_metrics_gauge(r,
            "xiaozhi_provider_queued", "Calls waiting for a permit.",
            "provider", p);
        m->provider_running[k] = wisp_metrics_gauge(r,
            "xiaozhi_provider_running", "Calls in flight.", "provider", p);
        m->provider_latency[k] = wisp_metrics_histogram(r,
            "xiaozhi_provider_latency_seconds",
            "Provider call latency, permit to result.", "provider", p,
            lat, sizeof lat / sizeof lat[0]);
        if (!m->provider_busy[k] || !m->provider_errors[k] ||
            !m->provider_queued[k] || !m->provider_running[k] ||
            !m->provider_latency[k])
            return -1;
    }
    return 0;
}

static int add_routes(wisp_server_t *srv, xz_ota_site_t *site, int all)
{
    static const char *const ota[] = {"/xiaozhi/ota/", "/xiaozhi/ota"};
    static const char *const act[] = {"/xiaozhi/ota/activate",
                                      "/xiaozhi/ota/activate/"};
    wisp_route_opts_t vopts = {.stream_body = 1,
                               .max_body_bytes = xz_vision_max_body()};
    wisp_route_opts_t oopts = {.max_body_bytes = 256 * 1024};
    int r = 0;
    for (int i = 0; i < 2 && !r; i++) {
        r = wisp_server_route(srv, WISP_METHOD_GET, ota[i], xz_ota_route,
                              site, NULL);
        if (!r)
            r = wisp_server_route(srv, WISP_METHOD_POST, ota[i],
                                  xz_ota_route, site, &oopts);
        if (!r)
            r = wisp_server_route(srv, WISP_METHOD_OPTIONS, ota[i],
                                  xz_ota_route, site, NULL);
        if (!r)
            r = wisp_server_route(srv, WISP_METHOD_POST, act[i],
                                  xz_ota_activate_route, site, &oopts);
        if (!r)
            r = wisp_server_route(srv, WISP_METHOD_OPTIONS, act[i],
                                  xz_ota_activate_route, site, NULL);
    }
    if (!r)
        r = wisp_server_route(srv, WISP_METHOD_POST, "/xiaozhi/ota/bind",
                              xz_ota_bind_route, site, NULL);
    if (!r)
        r = wisp_server_route(srv, WISP_METHOD_GET,
                              "/xiaozhi/ota/download/:file",
                              xz_ota_download_route, site, NULL);
    if (!r)
        r = wisp_server_route(srv, WISP_METHOD_POST, "/mcp/vision/explain",
                              xz_vision_route, NULL, &vopts);
    if (!r)
        r = wisp_server_route(srv, WISP_METHOD_GET, "/mcp/vision/explain",
                              xz_vision_route, NULL, NULL);
    if (!r)
        r = wisp_server_route(srv, WISP_METHOD_OPTIONS,
                              "/mcp/vision/explain", xz_vision_route, NULL,
                              NULL);
    if (r || !all)
        return r;
    r = wisp_server_route(srv, WISP_METHOD_GET, "/xiaozhi/v1/",
                          xz_device_route, NULL, NULL);
    if (!r)
        r = wisp_server_route(srv, WISP_METHOD_GET, "/xiaozhi/v1",
                              xz_device_route, NULL, NULL);
    if (!r)
        r = wisp_metrics_route(srv, "/metrics", xz_app->reg);
    if (!r)
        r = wisp_server_health_route(srv, "/health");
    if (!r && xz_app->cfg.www[0]) {
        struct stat st;
        if (stat(xz_app->cfg.www, &st) == 0 && S_ISDIR(st.st_mode))
            r = wisp_server_static(srv, "/", xz_app->cfg.www, NULL);
        else
            xz_log(WISP_LOG_WARN, "-", "-", "event=no_www dir=%s",
                   xz_app->cfg.www);
    }
    return r;
}

static void *run_second(void *arg)
{
    wisp_server_wait(arg);
    return NULL;
}

int main(int argc, char **argv)
{
    static xz_app_t app;
    xz_app = &app;
    xz_config_t *c = &app.cfg;
    xz_config_defaults(c, default_www());
    const char *config_file = NULL;
    char **sets = calloc((size_t)argc + 1, sizeof *sets);
    int nsets = 0;
    const char *host = NULL, *port = NULL, *threads = NULL;
    enum { O_HOST = 256, O_PORT, O_THREADS, O_CONFIG, O_SET, O_HELP };
    static const struct option opts[] = {
        {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},
        {"threads", required_argument, 0, O_THREADS},
        {"config", required_argument, 0, O_CONFIG},
        {"set", required_argument, 0, O_SET},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case O_HOST: host = optarg; break;
        case O_PORT: port = optarg; break;
        case O_THREADS: threads = optarg; break;
        case O_CONFIG: config_file = optarg; break;
        case O_SET: sets[nsets++] = optarg; break;
        case O_HELP:
        case 'h':
            usage(stdout);
            free(sets);
            return 0;
        default:
            usage(stderr);
            free(sets);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "xiaozhi-server: unexpected argument '%s'\n",
                argv[optind]);
        free(sets);
        return 2;
    }
    char err[700];
    /* Order: defaults, file, environment, --set, then the dedicated
     * flags (--host/--port/--threads are --set shorthands). */
    if ((config_file && xz_config_load(c, config_file, err, sizeof err) < 0) ||
        xz_config_env(c, err, sizeof err) < 0) {
        fprintf(stderr, "xiaozhi-server: %s\n", err);
        free(sets);
        return 2;
    }
    for (int i = 0; i < nsets; i++) {
        char *eq = strchr(sets[i], '=');
        if (!eq) {
            fprintf(stderr, "xiaozhi-server: --set %s: expected KEY=VALUE\n",
                    sets[i]);
            free(sets);
            return 2;
        }
        *eq = 0;
        if (xz_config_set(c, sets[i], eq + 1, err, sizeof err) < 0) {
            fprintf(stderr, "xiaozhi-server: --set %s: %s\n", sets[i], err);
            free(sets);
            return 2;
        }
    }
    free(sets);
    const char *const flag[][2] = {{"server.host", host},
                                   {"server.port", port},
                                   {"server.threads", threads}};
    for (int i = 0; i < 3; i++)
        if (flag[i][1] &&
            xz_config_set(c, flag[i][0], flag[i][1], err, sizeof err) < 0) {
            fprintf(stderr, "xiaozhi-server: --%s: %s\n",
                    flag[i][0] + 7, err);
            return 2;
        }
    wisp_log_set_level((wisp_log_level_t)c->log_level);

    if (c->auth_secret[0]) {
        snprintf(app.secret, sizeof app.secret, "%s", c->auth_secret);
    } else {
        uint8_t r[32];
        xz_random(r, sizeof r);
        xz_b64url(r, sizeof r, app.secret);
    }
    if (c->pipeline_mode == XZ_PIPE_SCRIPTED && c->tts_file[0]) {
        app.tts_packets = xz_pkts_load(c->tts_file, c->downlink_frame_ms);
        if (!app.tts_packets) {
            fprintf(stderr, "xiaozhi-server: scripted.tts_file %s: %s\n",
                    c->tts_file, strerror(errno));
            return 2;
        }
    }

    /* Stop signals go to the main server's signalfd: block them before
     * any thread exists so every thread inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    /* Logging off the loops (log.h) before any loop thread exists. */
    int log_thread = xz_log_start() == 0;

    wisp_pool_config_t pc;
    wisp_pool_config_init(&pc);
    app.pool = wisp_pool_create(&pc);
    app.reg = wisp_metrics_create();
    if (!app.pool || !app.reg || add_metrics(&app) < 0 ||
        wisp_metrics_add_pool(app.reg, app.pool, "shared") < 0) {
        fprintf(stderr, "xiaozhi-server: cannot create pool/metrics\n");
        return 1;
    }

    wisp_ws_opts_init(&xz_ws_opts);
    xz_ws_opts.max_frame = c->max_frame_bytes;
    xz_ws_opts.max_message = c->max_frame_bytes;
    xz_ws_opts.ping_interval_ms = c->ping_interval_s * 1000;
    /* The device's decode queue is small; a session that cannot take
     * 1 MiB of queued output is not listening: close it (1008). */
    xz_ws_opts.max_send_queue = 1u << 20;

    wisp_server_config_t sc;
    wisp_server_config_init(&sc);
    sc.host = c->host;
    sc.port = (uint16_t)c->port;
    sc.threads = c->threads;
    if (c->access_log[0]) {
        sc.access_log_format = WISP_ACCESS_LOG_COMBINED;
        sc.access_log_path = strcmp(c->access_log, "-") ? c->access_log
                                                        : "/dev/stderr";
    }
    wisp_server_t *srv = wisp_server_create(&sc);
    wisp_server_t *srv2 = NULL;
    if (!srv) {
        fprintf(stderr, "xiaozhi-server: bad server configuration\n");
        return 2;
    }
    int r = add_routes(srv, &main_site, 1);
    if (!r && c->http_port) {
        wisp_server_config_t sc2 = sc;
        sc2.port = (uint16_t)c->http_port;
        sc2.handle_signals = 0;
        sc2.threads = 1;
        srv2 = wisp_server_create(&sc2);
        r = srv2 ? add_routes(srv2, &second_site, 0) : -ENOMEM;
    }
    if (!r)
        r = wisp_server_listen(srv);
    if (!r && srv2)
        r = wisp_server_listen(srv2);
    if (!r) {
        app.ws_port = wisp_server_port(srv);
        app.nloops = wisp_server_threads(srv);
        r = wisp_server_metrics(srv, app.reg);
    }
    if (!r)
        r = wisp_server_start(srv);
    if (!r && srv2)
        r = wisp_server_start(srv2);
    if (r < 0) {
        fprintf(stderr, "xiaozhi-server: %s\n", wisp_strerror(r));
        if (srv2) {
            wisp_server_stop(srv2);
            wisp_server_destroy(srv2);
        }
        wisp_server_stop(srv);
        wisp_server_destroy(srv);
        wisp_pool_destroy(app.pool);
        wisp_metrics_destroy(app.reg);
        if (log_thread)
            xz_log_stop();
        return 1;
    }
    pthread_t t2;
    int t2_ok = srv2 && pthread_create(&t2, NULL, run_second, srv2) == 0;
    const char *shown = c->host[0] ? c->host : "0.0.0.0";
    printf("listening on http://%s:%u\n", shown, (unsigned)app.ws_port);
    if (srv2)
        printf("listening on http://%s:%u (ota, vision)\n", shown,
               (unsigned)wisp_server_port(srv2));
    fflush(stdout);
    xz_log(WISP_LOG_INFO, "-", "-", "event=start pipeline=%s loops=%u "
           "auth=%d ws_url=%s", c->pipeline_mode == XZ_PIPE_VOICE ? "voice"
           : c->pipeline_mode ? "scripted" : "echo",
           app.nloops, c->auth_enabled,
           c->public_ws_url[0] ? c->public_ws_url : "(from Host)");

    /* Runs until SIGINT/SIGTERM: sessions are closed by wisp's stop
     * (each on_close queues its save), then the loops end. */
    wisp_server_wait(srv);
    if (srv2) {
        wisp_server_stop(srv2);
        if (t2_ok)
            pthread_join(t2, NULL);
        else
            wisp_server_wait(srv2);
    }
    /* Every save queued by a closing session runs before we exit. */
    wisp_pool_shutdown(app.pool, 1, 10000);
    int lost = atomic_load(&app.saves_pending);
    if (lost)
        xz_log(WISP_LOG_ERROR, "-", "-", "event=saves_unfinished count=%d",
               lost);
    wisp_pool_destroy(app.pool);
    xz_gates_destroy();
    if (srv2)
        wisp_server_destroy(srv2);
    wisp_server_destroy(srv);
    wisp_metrics_destroy(app.reg);
    xz_pkts_free(app.tts_packets);
    xz_ota_cleanup();
    if (log_thread)
        xz_log_stop();
    printf("stopped\n");
    fflush(stdout);
    return lost ? 1 : 0;
}
