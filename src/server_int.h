/* Internal: the server and its per-loop workers. */
#ifndef WISP_SERVER_INT_H
#define WISP_SERVER_INT_H

#include <pthread.h>
#include <signal.h>
#include <time.h>

#include "http/http_int.h"
#include "loop/loop_int.h"
#include "net/conn.h"
#include "net/listen.h"
#include "net/proxy.h"
#include "proc/proc_int.h"
#include "wisp/server.h"

typedef struct wisp__worker wisp__worker;

/* One I/O loop of the server: its transport, its listeners. HTTP's and
 * WebSocket's per-loop state live in the loop's data (their own keys). */
struct wisp__worker {
    wisp_server_t *srv;
    wisp_loop_t *loop;
    unsigned index;
    pthread_t thread;
    int thread_started;
    wisp__net net;
    wisp__listener lsn_tcp;
    wisp__listener lsn_unix;
};

enum { WISP__S_NEW = 0, WISP__S_LISTENING, WISP__S_RUNNING,
       WISP__S_STOPPING, WISP__S_STOPPED };

struct wisp_server {
    wisp_server_config_t cfg;
    char *host;
    char *unix_path;
    int unix_bound; /* bound here: unlinked at destroy */
    char *access_log_path;
    char *server_name;
    wisp__route *routes;
    wisp_pool_t *file_pool;       /* the static routes' own pool */
    wisp__http_conf http;         /* router, limits, timeouts, log */
    wisp__proxy_conf proxy;       /* PROXY protocol on the TCP listener */
    int state;
    uint16_t port;
    unsigned nworkers;
    wisp__worker *workers;
    wisp_loop_t *main_loop;
    _Atomic int stop_requested;
    _Atomic unsigned workers_running;
    int sig_fd;
    wisp__io sig_io;
    sigset_t old_mask;
    int mask_set;
    wisp_timer_t deadline;
    wisp_server_stop_cb stop_cb;  /* wisp_server_on_stop */
    void *stop_arg;
    struct wisp_metrics *metrics; /* wisp_server_metrics' registry */
};

/* server_metrics.c: remove wisp_server_metrics' series (at destroy). */
#if WISP_HAVE_METRICS
void wisp__server_metrics_detach(wisp_server_t *srv);
#else
static inline void wisp__server_metrics_detach(wisp_server_t *srv)
{
    (void)srv;
}
#endif

/* http/static.c: a static route's context. In a build without static
 * files (-Dstatic_files=false) no route owns one and the server never
 * makes a file pool, so destroying them is nothing. */
#if WISP_HAVE_STATIC_FILES
void *wisp__static_create(const char *root, const wisp_static_opts_t *opts,
                          wisp_pool_t *pool, int *err);
void wisp__static_handler(wisp_req_t *req, wisp_res_t *res, void *arg);
void wisp__static_destroy(void *ctx);
static inline void wisp__file_pool_destroy(wisp_pool_t *pool)
{
    wisp_pool_destroy(pool);
}
#else
static inline void wisp__static_destroy(void *ctx)
{
    (void)ctx;
}
static inline void wisp__file_pool_destroy(wisp_pool_t *pool)
{
    (void)pool;
}
#endif

#endif
