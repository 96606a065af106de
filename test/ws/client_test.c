/* The WebSocket client (src/ws/client.c, client mode of src/ws/ws.c)
 * against wisp's own WebSocket server, in process: echo of text, a
 * 100 KiB binary message, a fragmented message and a ping, then the close
 * handshake; a raw server route that checks every client frame is masked
 * with a fresh key and then sends a masked frame, which the client must
 * refuse with 1002; answers that are not a valid upgrade (200, a wrong
 * Sec-WebSocket-Accept, an unoffered subprotocol); a refused connect;
 * bad arguments. The client runs on a bare loop in the main thread.
 *
 * With "py PORT" it only runs the echo exchange against a server on
 * 127.0.0.1:PORT (test/integration/ws_client_py_test.py starts Python's
 * websockets there). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <wisp.h>

#include "test.h"
#include "ws/frame.h"
#include "ws/handshake.h"

/* ------------------------------------------------------- server side */

static void srv_message(wisp_ws_t *ws, int binary, const void *data,
                        size_t len, void *arg)
{
    (void)arg;
    wisp_ws_send(ws, binary, data, len);
}

static const wisp_ws_handlers_t srv_echo = {.on_message = srv_message};

static void on_echo(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_ws_upgrade(req, res, &srv_echo, NULL, NULL);
}

static void on_plain(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_send(res, 200, "text/plain", "no\n", 3);
}

/* The raw route: reads client frames itself. */
#define RAW_FRAMES 3
static _Atomic int raw_frames, raw_masked, raw_keys_differ, raw_payload_ok;
static _Atomic int raw_close_code;
static uint8_t raw_keys[RAW_FRAMES][4];

static size_t raw_data(wisp_conn_t *c, const char *data, size_t len,
                       void *arg)
{
    (void)arg;
    uint8_t *b = (uint8_t *)(uintptr_t)data;
    size_t off = 0;
    while (off < len) {
        wisp__ws_header fh;
        ssize_t r = wisp__ws_parse_header(b + off, len - off, 0, 0, &fh);
        if (r == WISP__WS_EAGAIN || (r > 0 && fh.len > len - off - (size_t)r))
            break;
        if (r < 0) {
            atomic_store(&raw_masked, -1); /* unmasked: parse refuses */
            wisp_conn_abort(c);
            return len;
        }
        uint8_t *p = b + off + r;
        wisp__ws_unmask(p, (size_t)fh.len, fh.mask, 0);
        off += (size_t)r + (size_t)fh.len;
        if (fh.opcode == WISP__WS_CLOSE) {
            atomic_store(&raw_close_code, fh.len >= 2 ? p[0] << 8 | p[1] : 0);
            wisp_conn_close(c);
            return len;
        }
        int n = atomic_load(&raw_frames);
        if (n < RAW_FRAMES) {
            memcpy(raw_keys[n], fh.mask, 4);
            if (fh.len == 5 && memcmp(p, "frame", 5) == 0)
                atomic_fetch_add(&raw_payload_ok, 1);
        }
        atomic_fetch_add(&raw_masked, 1);
        if (atomic_fetch_add(&raw_frames, 1) + 1 == RAW_FRAMES) {
            int differ = 1;
            for (int i = 0; i < RAW_FRAMES; i++)
                for (int j = i + 1; j < RAW_FRAMES; j++)
                    if (memcmp(raw_keys[i], raw_keys[j], 4) == 0)
                        differ = 0;
            atomic_store(&raw_keys_differ, differ);
            /* A masked frame from the server: the client must fail. */
            static const uint8_t bad[] = {0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1,
                                          'i' ^ 2};
            wisp_conn_write(c, bad, sizeof bad);
        }
    }
    return off;
}

static void raw_close(wisp_conn_t *c, int reason, void *arg)
{
    (void)c;
    (void)reason;
    (void)arg;
}

static const wisp_conn_handlers_t raw_handlers = {.on_data = raw_data,
                                                  .on_close = raw_close};

/* 101 with the right Accept (mode 0), a wrong one (1), or an unoffered
 * subprotocol (2). */
static void raw_upgrade(wisp_req_t *req, wisp_res_t *res, int mode)
{
    wisp_str_t key = wisp_req_header(req, "sec-websocket-key");
    char accept[WISP__WS_ACCEPT_LEN + 1];
    wisp__ws_accept_key(key.ptr ? key.ptr : "", key.len, accept);
    if (mode == 1)
        accept[0] = accept[0] == 'A' ? 'B' : 'A';
    wisp_res_header(res, "Upgrade", "websocket");
    wisp_res_header(res, "Sec-WebSocket-Accept", accept);
    if (mode == 2)
        wisp_res_header(res, "Sec-WebSocket-Protocol", "other");
    wisp_res_upgrade(res, &raw_handlers, NULL);
}

static void on_raw(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    raw_upgrade(req, res, 0);
}

static void on_badaccept(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    raw_upgrade(req, res, 1);
}

static void on_badproto(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    raw_upgrade(req, res, 2);
}

/* ------------------------------------------------------- client side */

typedef struct run {
    wisp_loop_t *loop;
    int mode;        /* 0 echo, 1 raw */
    int conn_err;    /* cb's err */
    int connected;
    int opened;
    int msgs;
    int ok_text, ok_bin, ok_frag;
    int close_code;
    int closed;
    char reason[32];
} run;

static uint8_t big[100 * 1024];

static void cl_open(wisp_ws_t *ws, void *arg)
{
    (void)ws;
    ((run *)arg)->opened++;
}

static void cl_message(wisp_ws_t *ws, int binary, const void *data,
                       size_t len, void *arg)
{
    run *r = arg;
    r->msgs++;
    if (!binary && len == 5 && memcmp(data, "hello", 5) == 0)
        r->ok_text++;
    if (binary && len == sizeof big && memcmp(data, big, len) == 0)
        r->ok_bin++;
    if (!binary && len == 4 && memcmp(data, "abcd", 4) == 0)
        r->ok_frag++;
    if (r->msgs == 3)
        wisp_ws_close(ws, 1000, "done");
}

static void cl_close(wisp_ws_t *ws, int code, const char *reason,
                     size_t rlen, void *arg)
{
    (void)ws;
    run *r = arg;
    r->close_code = code;
    snprintf(r->reason, sizeof r->reason, "%.*s", (int)rlen, reason);
    r->closed++;
    wisp_loop_break(r->loop);
}

static const wisp_ws_handlers_t cl_handlers = {
    .on_open = cl_open,
    .on_message = cl_message,
    .on_close = cl_close,
};

static void cl_connected(wisp_ws_t *ws, int err, void *arg)
{
    run *r = arg;
    r->conn_err = err;
    r->connected++;
    if (err < 0) {
        CHECK(ws == NULL);
        wisp_loop_break(r->loop);
        return;
    }
    CHECK(ws != NULL);
    if (r->mode == 1) {
        for (int i = 0; i < RAW_FRAMES; i++)
            CHECK_EQ_INT(wisp_ws_send_text(ws, "frame", 5), 0);
        return;
    }
    CHECK_EQ_INT(wisp_ws_send_text(ws, "hello", 5), 0);
    CHECK_EQ_INT(wisp_ws_ping(ws, "p", 1), 0);
    CHECK_EQ_INT(wisp_ws_send(ws, 1, big, sizeof big), 0);
    CHECK_EQ_INT(wisp_ws_send_fragment(ws, 0, "ab", 2, 0), 0);
    CHECK_EQ_INT(wisp_ws_send_fragment(ws, 0, "cd", 2, 1), 0);
    wisp_shared_t *f = wisp_ws_frame_shared(0, "x", 1);
    CHECK_EQ_INT(wisp_ws_send_shared(ws, f), -EOPNOTSUPP);
    wisp_shared_unref(f);
}

static struct sockaddr_in addr_of(uint16_t port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

static void go(run *r, uint16_t port, const char *path, int mode,
               const wisp_ws_opts_t *o)
{
    wisp_loop_t *loop = r->loop;
    memset(r, 0, sizeof *r);
    r->loop = loop;
    r->mode = mode;
    struct sockaddr_in a = addr_of(port);
    int e = wisp_ws_connect(loop, (struct sockaddr *)&a, sizeof a,
                            "127.0.0.1", path, &cl_handlers, o, r, 30000,
                            cl_connected);
    CHECK_EQ_INT(e, 0);
    if (e == 0)
        wisp_loop_run(loop);
    CHECK_EQ_INT(r->connected, 1);
}

static void test_echo(run *r, uint16_t port, const char *path)
{
    go(r, port, path, 0, NULL);
    CHECK_EQ_INT(r->conn_err, 0);
    CHECK_EQ_INT(r->opened, 1);
    CHECK_EQ_INT(r->ok_text, 1);
    CHECK_EQ_INT(r->ok_bin, 1);
    CHECK_EQ_INT(r->ok_frag, 1);
    CHECK_EQ_INT(r->closed, 1);
    CHECK_EQ_INT(r->close_code, 1000);
}

static int py_mode(uint16_t port)
{
    wisp_loop_t *loop = wisp_loop_create();
    run r = {.loop = loop};
    test_echo(&r, port, "/echo");
    wisp_loop_destroy(loop);
    return t_done("ws_client (python server)");
}

int main(int argc, char **argv)
{
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7 + (i >> 8));
    if (argc > 2 && strcmp(argv[1], "py") == 0)
        return py_mode((uint16_t)atoi(argv[2]));

    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 1;
    cfg.handle_signals = 0;
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK(srv != NULL);
    if (!srv)
        return t_done("ws_client");
    wisp_server_route(srv, WISP_METHOD_GET, "/echo", on_echo, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/plain", on_plain, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/raw", on_raw, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/badaccept", on_badaccept, NULL,
                      NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/badproto", on_badproto, NULL,
                      NULL);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    uint16_t port = wisp_server_port(srv);
    CHECK_EQ_INT(wisp_server_start(srv), 0);

    wisp_loop_t *loop = wisp_loop_create();
    run r = {.loop = loop};

    /* Echo through wisp's server, twice (the second on a fresh session). */
    test_echo(&r, port, "/echo");
    test_echo(&r, port, "/echo");

    /* Every frame masked, each with its own key; a masked frame from the
     * server fails the session: the client says 1002. */
    go(&r, port, "/raw", 1, NULL);
    CHECK_EQ_INT(r.conn_err, 0);
    CHECK_EQ_INT(r.closed, 1);
    CHECK_EQ_INT(r.close_code, 1006); /* no close frame came back */
    CHECK_EQ_INT(r.msgs, 0);
    for (int i = 0; i < 30000 && !atomic_load(&raw_close_code); i++)
        usleep(1000);
    CHECK_EQ_INT(atomic_load(&raw_masked), RAW_FRAMES);
    CHECK_EQ_INT(atomic_load(&raw_payload_ok), RAW_FRAMES);
    CHECK_EQ_INT(atomic_load(&raw_keys_differ), 1);
    CHECK_EQ_INT(atomic_load(&raw_close_code), 1002);

    /* Answers that are not a valid upgrade. */
    go(&r, port, "/plain", 0, NULL);
    CHECK_EQ_INT(r.conn_err, -EPROTO);
    CHECK_EQ_INT(r.opened, 0);
    go(&r, port, "/badaccept", 0, NULL);
    CHECK_EQ_INT(r.conn_err, -EPROTO);
    static const char *const protos[] = {"chat", NULL};
    wisp_ws_opts_t o;
    wisp_ws_opts_init(&o);
    o.subprotocols = protos;
    go(&r, port, "/badproto", 0, &o);
    CHECK_EQ_INT(r.conn_err, -EPROTO);
    go(&r, port, "/nothere", 0, NULL);
    CHECK_EQ_INT(r.conn_err, -EPROTO);

    /* Still serving: one more echo. */
    test_echo(&r, port, "/echo");

    /* Bad arguments: nothing runs. */
    struct sockaddr_in a = addr_of(port);
    const struct sockaddr *sa = (const struct sockaddr *)&a;
    CHECK_EQ_INT(wisp_ws_connect(loop, sa, sizeof a, "h", "nopath",
                                 &cl_handlers, NULL, &r, 0, cl_connected),
                 -EINVAL);
    CHECK_EQ_INT(wisp_ws_connect(loop, sa, sizeof a, "h o", "/", &cl_handlers,
                                 NULL, &r, 0, cl_connected),
                 -EINVAL);
    CHECK_EQ_INT(wisp_ws_connect(loop, sa, sizeof a, "h", "/\r\n",
                                 &cl_handlers, NULL, &r, 0, cl_connected),
                 -EINVAL);
    CHECK_EQ_INT(wisp_ws_connect(loop, sa, sizeof a, "h", "/", &cl_handlers,
                                 NULL, &r, 0, NULL),
                 -EINVAL);

    wisp_server_stop(srv);
    CHECK_EQ_INT(wisp_server_wait(srv), 0);
    wisp_server_destroy(srv);

    /* A port held by a socket that never listens: the connect is
     * refused (the stopped server's port could be taken by another test
     * in the meantime). */
    int hold = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in h = addr_of(0);
    socklen_t hl = sizeof h;
    CHECK(bind(hold, (struct sockaddr *)&h, sizeof h) == 0 &&
          getsockname(hold, (struct sockaddr *)&h, &hl) == 0);
    go(&r, ntohs(h.sin_port), "/echo", 0, NULL);
    CHECK_EQ_INT(r.conn_err, -ECONNREFUSED);
    close(hold);

    wisp_loop_destroy(loop);
    return t_done("ws_client");
}
