/* Calls that close a WebSocket session never run its on_close inside
 * them: wisp_ws_send* closing a slow consumer (1008) and wisp_ws_close
 * leave the session in the application's hands until the call has
 * returned; on_close comes after, from the loop. So code that walks its
 * own list of sessions and sends to each (a broadcast) sees the list
 * unchanged during the walk — forwards — and frees nothing under itself.
 *
 * The sends run from a timer (outside any callback of the session) on a
 * list of sessions kept in the loop's own data, while the clients do not
 * read: once the kernel's buffers are full, messages queue in the
 * session, and the one that passes its small send queue closes it. */
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"
#include "ws/ws_client.h"

#define N 4

static wisp_ws_opts_t opts;
static int key = -1;
static _Atomic int opened, closes, closed_in_call, list_changed, sends_closed,
    walked;
static int in_call;
static char msg[8192];

typedef struct list {
    wisp_ws_t *ws[N];
    int n;
    wisp_timer_t t;
    int armed;
} list;

static void list_free(void *p)
{
    free(p);
}

static list *list_of(wisp_loop_t *loop)
{
    list *l = wisp_loop_get_data(loop, key);
    if (!l) {
        l = calloc(1, sizeof *l);
        wisp_timer_init(loop, &l->t);
        wisp_loop_set_data(loop, key, l);
    }
    return l;
}

/* The broadcast: forwards over the list, a few rounds. */
static void blast(wisp_timer_t *t, void *arg)
{
    list *l = arg;
    int closing[N] = {0};
    (void)t;
    for (int round = 0; round < 4000 && atomic_load(&sends_closed) < N;
         round++) {
        int n = l->n;
        for (int i = 0; i < l->n; i++) {
            in_call = 1;
            int r = wisp_ws_send(l->ws[i], 1, msg, sizeof msg);
            in_call = 0;
            if (r == WISP_ECLOSED && !closing[i]) {
                closing[i] = 1;
                atomic_fetch_add(&sends_closed, 1);
            }
        }
        /* Nothing left the list inside the sends (checked by main). */
        if (l->n != n)
            atomic_fetch_add(&list_changed, 1);
    }
    atomic_fetch_add(&walked, 1);
    /* A close inside a walk: also after the call. */
    for (int i = 0; i < l->n; i++) {
        in_call = 1;
        wisp_ws_close(l->ws[i], 1000, "bye");
        in_call = 0;
    }
}

static void on_open(wisp_ws_t *ws, void *arg)
{
    (void)arg;
    list *l = list_of(wisp_ws_loop(ws));
    l->ws[l->n++] = ws;
    if (atomic_fetch_add(&opened, 1) + 1 == N)
        wisp_timer_start(&l->t, 1, blast, l); /* all on one loop */
}

static void on_message(wisp_ws_t *ws, int binary, const void *data,
                       size_t len, void *arg)
{
    (void)ws;
    (void)binary;
    (void)data;
    (void)len;
    (void)arg;
}

static void on_close(wisp_ws_t *ws, int code, const char *reason,
                     size_t rlen, void *arg)
{
    (void)code;
    (void)reason;
    (void)rlen;
    (void)arg;
    if (in_call)
        atomic_fetch_add(&closed_in_call, 1);
    list *l = list_of(wisp_ws_loop(ws));
    for (int i = 0; i < l->n; i++)
        if (l->ws[i] == ws)
            l->ws[i] = l->ws[--l->n];
    atomic_fetch_add(&closes, 1);
}

static const wisp_ws_handlers_t handlers = {
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_close,
};

static void on_ws(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_ws_upgrade(req, res, &handlers, &opts, NULL);
}

int main(void)
{
    key = wisp_loop_key_create(list_free);
    wisp_ws_opts_init(&opts);
    opts.max_send_queue = 4096;   /* one message passes it */
    opts.drop_when_full = 0;      /* a slow consumer is closed: 1008 */
    memset(msg, 'm', sizeof msg);
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.threads = 1;
    cfg.handle_signals = 0;
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK(srv != NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/ws", on_ws, NULL, NULL);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    CHECK_EQ_INT(wisp_server_start(srv), 0);
    uint16_t port = wisp_server_port(srv);
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = handshake(port);
    for (int i = 0; i < 20000 && atomic_load(&closes) < N; i++)
        usleep(500);
    CHECK_EQ_INT(atomic_load(&opened), N);
    CHECK_EQ_INT(atomic_load(&walked), 1);
    CHECK_EQ_INT(atomic_load(&closes), N);
    CHECK_EQ_INT(atomic_load(&closed_in_call), 0);
    CHECK_EQ_INT(atomic_load(&list_changed), 0);
    /* Every session was closed by a send (slow consumer). */
    CHECK_EQ_INT(atomic_load(&sends_closed), N);
    /* Each client finds whole messages, then the close frame with 1008. */
    for (int i = 0; i < N; i++) {
        int ok = 0;
        for (;;) {
            uint8_t h[4];
            if (read_exact(fds[i], h, 4) < 0)
                break;
            if (h[0] == 0x88) {
                ok = ((h[2] << 8) | h[3]) == 1008;
                break;
            }
            static char skip[sizeof msg];
            if (h[0] != 0x82 || h[1] != 126 ||
                ((h[2] << 8) | h[3]) != (int)sizeof msg ||
                read_exact(fds[i], skip, sizeof skip) < 0)
                break;
        }
        CHECK_MSG(ok, "client %d did not get messages and close 1008", i);
        close(fds[i]);
    }
    wisp_server_stop(srv);
    wisp_server_wait(srv);
    wisp_server_destroy(srv);
    return t_done("ws_close_order");
}
