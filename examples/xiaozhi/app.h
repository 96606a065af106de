/* xiaozhi-server — the process-wide application state shared by the
 * modules: configuration, secret, pool, metrics, providers. Written once
 * by main.c before the server starts; read-only afterwards (metrics and
 * counters are atomics or wisp metrics, which any thread may update). */
#ifndef XZ_APP_H
#define XZ_APP_H

#include <stdatomic.h>
#include <stdint.h>

#include <wisp.h>

#include "config.h"
#include "providers.h"

typedef struct xz_metrics {
    wisp_gauge_t *sessions[16];     /* by state (session.h) */
    wisp_counter_t *sessions_total;
    wisp_counter_t *rejected_sessions; /* over max_sessions */
    wisp_counter_t *turns;
    wisp_counter_t *aborts;
    wisp_counter_t *frames_in;
    wisp_counter_t *frames_out;
    wisp_counter_t *frames_late;
    wisp_counter_t *frames_dropped_bad;   /* framing mismatch */
    wisp_counter_t *frames_dropped_full;  /* utterance buffer full */
    wisp_counter_t *provider_busy[XZ_PROV_COUNT];
    wisp_counter_t *provider_errors[XZ_PROV_COUNT];
    wisp_gauge_t *provider_queued[XZ_PROV_COUNT];
    wisp_gauge_t *provider_running[XZ_PROV_COUNT];
    wisp_histogram_t *provider_latency[XZ_PROV_COUNT];
    wisp_counter_t *ota_requests;
    wisp_counter_t *vision_requests;
    wisp_counter_t *mcp_calls;
    wisp_counter_t *saves;
    wisp_counter_t *save_failures;
} xz_metrics_t;

typedef struct xz_app {
    xz_config_t cfg;
    char secret[XZ_STR_SHORT]; /* auth.secret or random per start */
    wisp_pool_t *pool;
    wisp_metrics_t *reg;
    xz_metrics_t m;
    uint16_t ws_port;         /* the bound main port */
    unsigned nloops;          /* I/O loops of the main server */
    xz_pkts_t *tts_packets;   /* scripted.tts_file, loaded at start */
    atomic_int sessions;      /* open device sessions */
    atomic_int saves_pending;
} xz_app_t;

extern xz_app_t *xz_app;

/* Structured log line: "event key=value ..." prefixed with the device
 * and session ids ("-" when unknown). */
void xz_log(int level, const char *dev, const char *sid, const char *fmt,
            ...) WISP_PRINTF(4, 5);

/* Unix time in seconds / milliseconds (wall clock). */
int64_t xz_unix_s(void);
int64_t xz_unix_ms(void);

/* Fill `buf` with `len` random bytes (getrandom, else /dev/urandom, else
 * a clock-seeded generator). */
void xz_random(void *buf, size_t len);

#endif
