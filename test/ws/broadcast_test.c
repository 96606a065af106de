/* WebSocket broadcast across loops: one message encoded once as a shared
 * frame (wisp_ws_frame_shared), delivered to the sessions of every loop
 * through wisp_broadcast and wisp_ws_send_shared. In process, with raw
 * socket clients. Runs under TSan in CI. */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"
#include "ws/ws_client.h"

#define LOOPS 2
#define CLIENTS 8

static wisp_server_t *srv;
static wisp_loop_t *loops[LOOPS];
/* Sessions per loop: each list is touched only by its own loop. */
static wisp_ws_t *sessions[LOOPS][CLIENTS];
static _Atomic int opened, closed_count, first_close_code;

static int loop_index(wisp_loop_t *l)
{
    for (int i = 0; i < LOOPS; i++)
        if (loops[i] == l)
            return i;
    return -1;
}

static void deliver(wisp_loop_t *loop, wisp_shared_t *frame, void *arg)
{
    (void)arg;
    int li = loop_index(loop);
    for (int i = 0; i < CLIENTS; i++)
        if (sessions[li][i])
            wisp_ws_send_shared(sessions[li][i], frame);
}

static void on_open(wisp_ws_t *ws, void *arg)
{
    (void)arg;
    int li = loop_index(wisp_ws_loop(ws));
    for (int i = 0; i < CLIENTS; i++) {
        if (!sessions[li][i]) {
            sessions[li][i] = ws;
            break;
        }
    }
    atomic_fetch_add(&opened, 1);
}

static void on_message(wisp_ws_t *ws, int binary, const void *data,
                       size_t len, void *arg)
{
    (void)ws;
    (void)binary;
    (void)arg;
    wisp_shared_t *f = wisp_ws_frame_shared(0, data, len);
    wisp_broadcast(loops, LOOPS, f, deliver, NULL);
    wisp_shared_unref(f); /* the deliveries hold their own */
}

static void on_close(wisp_ws_t *ws, int code, const char *reason,
                     size_t rlen, void *arg)
{
    (void)reason;
    (void)rlen;
    (void)arg;
    int none = 0;
    atomic_compare_exchange_strong(&first_close_code, &none, code);
    int li = loop_index(wisp_ws_loop(ws));
    for (int i = 0; i < CLIENTS; i++)
        if (sessions[li][i] == ws)
            sessions[li][i] = NULL;
    atomic_fetch_add(&closed_count, 1);
}

static const wisp_ws_handlers_t handlers = {
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_close,
};

static wisp_ws_opts_t opts;

static void on_ws(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_ws_upgrade(req, res, &handlers, &opts, NULL);
}

static int read_some(int fd, char *buf, size_t cap, size_t want)
{
    size_t n = 0;
    while (n < want) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 3000) <= 0)
            return -1;
        ssize_t r = read(fd, buf + n, cap - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
    }
    return (int)n;
}

static void send_binary(int fd, const uint8_t *data, size_t n)
{
    uint8_t *f = malloc(n + 14);
    size_t h = 0;
    f[h++] = 0x82;
    if (n < 126) {
        f[h++] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        f[h++] = 0x80 | 126;
        f[h++] = (uint8_t)(n >> 8);
        f[h++] = (uint8_t)n;
    } else {
        f[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            f[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    memset(f + h, 0, 4); /* a zero mask: payload as is */
    h += 4;
    memcpy(f + h, data, n);
    size_t off = 0;
    while (off < h + n) {
        ssize_t w = write(fd, f + off, h + n - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    free(f);
}

static void send_text(int fd, const char *s)
{
    uint8_t f[256];
    size_t n = strlen(s);
    uint8_t mask[4] = {1, 2, 3, 4};
    f[0] = 0x81;
    f[1] = (uint8_t)(0x80 | n);
    memcpy(f + 2, mask, 4);
    for (size_t i = 0; i < n; i++)
        f[6 + i] = (uint8_t)s[i] ^ mask[i % 4];
    if (write(fd, f, 6 + n) < 0)
        return;
}

int main(void)
{
    wisp_ws_opts_init(&opts);
    opts.max_send_queue = 256 * 1024;
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = LOOPS;
    cfg.handle_signals = 0;
    srv = wisp_server_create(&cfg);
    wisp_server_route(srv, WISP_METHOD_GET, "/ws", on_ws, NULL, NULL);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    for (int i = 0; i < LOOPS; i++)
        loops[i] = wisp_server_loop(srv, i);
    CHECK_EQ_INT(wisp_server_start(srv), 0);
    uint16_t port = wisp_server_port(srv);

    int fds[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        fds[i] = handshake(port);
    for (int i = 0; i < 6000 && atomic_load(&opened) < CLIENTS; i++)
        usleep(5000); /* 30 s: the failure bound */
    CHECK_EQ_INT(atomic_load(&opened), CLIENTS);

    /* Client 0 says something; every client (itself included) hears it
     * once, as one unmasked text frame. */
    send_text(fds[0], "hello, room");
    for (int i = 0; i < CLIENTS; i++) {
        char buf[64];
        int n = read_some(fds[i], buf, sizeof buf, 2 + 11);
        CHECK_EQ_INT(n, 13);
        CHECK(n == 13 && (uint8_t)buf[0] == 0x81 && buf[1] == 11 &&
              memcmp(buf + 2, "hello, room", 11) == 0);
    }
    /* Many broadcasts from several senders: everyone gets all of them. */
    for (int k = 0; k < 50; k++)
        send_text(fds[k % CLIENTS], "m");
    for (int i = 0; i < CLIENTS; i++) {
        char buf[256];
        int n = read_some(fds[i], buf, sizeof buf, 50 * 3);
        CHECK_EQ_INT(n, 150);
    }
    /* A slow consumer: client 1 stops reading while client 0 keeps
     * broadcasting 60 KiB messages. Once client 1's send queue passes
     * max_send_queue the server closes it with 1008 (its stream ends with
     * that close frame, after whole messages only); every other client
     * gets every message, byte for byte. */
    static uint8_t big[60 * 1024];
    memset(big, 'b', sizeof big);
    size_t want = 0, got[CLIENTS] = {0};
    char *rb = malloc(1 << 20);
    for (int k = 0; k < 200; k++) {
        send_binary(fds[0], big, sizeof big);
        want += 4 + sizeof big;
        /* the readers drain what has arrived so far; the sender waits for
         * its own copy (30 s: the failure bound) */
        for (int i = 0; i < CLIENTS; i++) {
            if (i == 1)
                continue;
            for (;;) {
                int wait = i == 0 && got[0] < want ? 30000 : 0;
                struct pollfd p = {fds[i], POLLIN, 0};
                if (poll(&p, 1, wait) <= 0)
                    break;
                ssize_t r = read(fds[i], rb, 1 << 20);
                if (r <= 0)
                    break;
                got[i] += (size_t)r;
            }
        }
    }
    for (int i = 0; i < CLIENTS; i++) {
        if (i == 1)
            continue;
        while (got[i] < want) {
            struct pollfd p = {fds[i], POLLIN, 0};
            if (poll(&p, 1, 30000) <= 0)
                break;
            ssize_t r = read(fds[i], rb, 1 << 20);
            if (r <= 0)
                break;
            got[i] += (size_t)r;
        }
        CHECK_MSG(got[i] == want, "client %d received %zu of %zu bytes", i,
                  got[i], want);
    }
    free(rb);
    for (int i = 0; i < 6000 && atomic_load(&closed_count) < 1; i++)
        usleep(5000);
    CHECK_EQ_INT(atomic_load(&closed_count), 1); /* the slow one only */
    /* ws.h: the code received, 1006 when none came (the slow client
     * never answers the server's 1008). */
    CHECK_EQ_INT(atomic_load(&first_close_code), 1006);
    /* The slow client now reads its stream to the end: whole 60 KiB
     * messages, then the close frame 1008 "slow consumer", then EOF. */
    size_t cap = 64u << 20, len = 0;
    uint8_t *all = malloc(cap);
    for (;;) {
        struct pollfd p = {fds[1], POLLIN, 0};
        if (len == cap || poll(&p, 1, 30000) <= 0)
            break;
        ssize_t r = read(fds[1], all + len, cap - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    size_t off = 0;
    int binaries = 0, close_code = -1, bad_frame = 0;
    while (off + 2 <= len && close_code < 0) {
        uint8_t op = all[off] & 0x0F;
        size_t plen = all[off + 1] & 0x7F, hl = 2;
        if (plen == 126) {
            if (off + 4 > len)
                break;
            plen = (size_t)all[off + 2] << 8 | all[off + 3];
            hl = 4;
        } else if (plen == 127) {
            bad_frame++;
            break;
        }
        if (off + hl + plen > len)
            break; /* truncated: checked below */
        if (op == 1 && plen == sizeof big) /* frame_shared(0): text */
            binaries++;
        else if (op == 8 && plen >= 2)
            close_code = all[off + hl] << 8 | all[off + hl + 1];
        else if (bad_frame++ < 3)
            fprintf(stderr, "frame at %zu: op %d len %zu\n", off, op, plen);
        off += hl + plen;
    }
    CHECK_MSG(off == len, "slow client: %zu of %zu bytes parsed as whole "
              "frames", off, len);
    CHECK_EQ_INT(bad_frame, 0);
    CHECK_EQ_INT(close_code, 1008);
    CHECK(binaries > 0 && (size_t)binaries < 200);
    free(all);
    for (int i = 0; i < CLIENTS; i++)
        close(fds[i]);
    for (int i = 0; i < 6000 && atomic_load(&closed_count) < CLIENTS; i++)
        usleep(5000);
    CHECK_EQ_INT(atomic_load(&closed_count), CLIENTS);
    wisp_server_stop(srv);
    wisp_server_wait(srv);
    wisp_server_destroy(srv);
    return t_done("ws_broadcast");
}
