/* Internal: the server and its per-loop workers. */
#ifndef WISP_SERVER_INT_H
#define WISP_SERVER_INT_H

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "http/parse.h"
#include "http/router.h"
#include "loop/loop_int.h"
#include "util/fixpool.h"
#include "net/conn.h"
#include "server_stats.h"
#include "wisp/server.h"

typedef struct wisp__route {
    struct wisp__route *next;     /* server's list, for freeing */
    wisp_handler handler;
    void *arg;
    uint64_t max_body;
    int stream_body;
    void *owned;                  /* freed with the route (static opts) */
} wisp__route;

#define WISP__CORK_SIZE (64 * 1024)
#define WISP__INBUF_SIZE (16 * 1024)

struct wisp__worker {
    wisp_server_t *srv;
    wisp_loop_t *loop;
    unsigned index;
    pthread_t thread;
    int thread_started;
    wisp__io lsn_tcp;
    wisp__io lsn_unix;
    int stopping;

    /* Connections: live list, count, free lists. */
    wisp_conn_t *conns;
    uint32_t nconns;
    wisp_conn_t *conn_free;
    void **slabs;
    uint32_t nslabs;
    uint32_t slab_cap;
    wisp_conn_t *resume_list;
    wisp_conn_t *close_list;

    /* Cork: one output buffer shared by this loop's connections. */
    char *cork;
    size_t cork_len;
    wisp_conn_t *cork_owner;

    /* Pools of input buffers (WISP__INBUF_SIZE) and exchanges. */
    void *inbuf_free;
    uint32_t inbuf_free_len;
    wisp__exchange *ex_free;
    uint32_t ex_free_len;

    /* Cached Date header and access-log time, refreshed once a second. */
    time_t date_sec;
    uint64_t date_mono_s; /* loop second of the last check */
    char date_hdr[48];   /* "Date: ...\r\n" */
    uint32_t date_len;
    uint32_t head200_len;
    char head200[160];   /* "HTTP/1.1 200 OK\r\n" Server Date, prebuilt */
    char log_time[40];   /* "[24/Nov/2026:08:16:43 +0000]" */

    /* Access-log lines waiting for one write per iteration. */
    char *alog;
    size_t alog_len;

    wisp_timer_t accept_timer;

    /* WebSocket sessions (src/ws/ws.c), and messages posted to them from
     * other threads that have not run yet. */
    wisp__fixpool ws_pool;
    _Atomic uint32_t ws_posted;

    wisp__loop_stats stats; /* server_stats.h: this loop's counters */
};

enum { WISP__S_NEW = 0, WISP__S_LISTENING, WISP__S_RUNNING,
       WISP__S_STOPPING, WISP__S_STOPPED };

struct wisp_server {
    wisp_server_config_t cfg;
    char *host;
    char *unix_path;
    char *access_log_path;
    char *server_name;
    wisp__router *router;
    wisp__route *routes;
    wisp__parse_limits limits;
    int state;
    uint16_t port;
    unsigned nworkers;
    wisp__worker *workers;
    wisp_loop_t *main_loop;
    _Atomic int stop_requested;
    _Atomic unsigned workers_running;
    int access_fd;
    int sig_fd;
    wisp__io sig_io;
    sigset_t old_mask;
    int mask_set;
    wisp_timer_t deadline;
    char server_hdr[80];  /* "Server: wisp\r\n" or "" */
    uint32_t server_hdr_len;
    struct wisp_metrics *metrics; /* wisp_server_metrics' registry */
};

/* net/listen.c */
int wisp__listen_tcp(wisp_server_t *srv, int *fd_out, uint16_t *port_io);
int wisp__listen_unix(wisp_server_t *srv, int *fd_out);
void wisp__worker_start_accepting(wisp__worker *w);
void wisp__worker_drain_and_close_listeners(wisp__worker *w);

/* net/conn.c */
void wisp__worker_end_iteration(wisp_loop_t *loop, void *arg);
void wisp__worker_free_conns(wisp__worker *w);
void wisp__worker_conn_gone(wisp__worker *w);

/* http/date.c */
void wisp__date_refresh(wisp__worker *w);

/* server_metrics.c: remove wisp_server_metrics' series (at destroy). */
void wisp__server_metrics_detach(wisp_server_t *srv);

/* http/access_log.c */
void wisp__alog_flush(wisp__worker *w);

#endif
