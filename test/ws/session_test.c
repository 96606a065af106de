/* WebSocket sessions driven from outside their loop and in pieces:
 * - wisp_ws_post from other threads (order per producer, posts to a
 *   session that has ended are dropped, post_close), with handles kept
 *   by the application;
 * - wisp_ws_send_fragment (a message streamed as frames, control frames
 *   between them, -EBUSY for other messages meanwhile);
 * - wisp_ws_send_ref (payload referenced, its `done` runs once);
 * - the session pool: many sessions opened and closed reuse slots, and a
 *   handle to a closed session never reaches the session now in its slot;
 * - the cap on posts waiting per loop (-EAGAIN past 65,536).
 * In process with raw-socket clients; runs under TSan in CI. */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"
#include "ws/ws_client.h"

#define PRODUCERS 2
#define PER_PRODUCER 5000

static wisp_server_t *srv;
static wisp_ws_opts_t opts;

/* The handle of the newest session, published for the producer threads. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static wisp_ws_handle_t last_handle;
static int have_handle;
static _Atomic int opened, closed_count, ref_done;
static int busy_result;
/* Checks made off the main thread, counted on their own (CHECK itself
 * is thread-safe too: test.h's counters are atomic). */
static _Atomic int off_main_failures;
#define CHECK_OFF_MAIN(cond)                                                \
    do {                                                                    \
        if (!(cond)) {                                                      \
            atomic_fetch_add(&off_main_failures, 1);                        \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                 \
        }                                                                   \
    } while (0)

static void on_open(wisp_ws_t *ws, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    last_handle = wisp_ws_handle(ws);
    have_handle = 1;
    pthread_mutex_unlock(&mu);
    atomic_fetch_add(&opened, 1);
}

static void count_done(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ref_done, 1);
}

static uint8_t big[200000];

static void on_message(wisp_ws_t *ws, int binary, const void *data,
                       size_t len, void *arg)
{
    (void)binary;
    (void)arg;
    if (len >= 6 && memcmp(data, "stream", 6) == 0) {
        /* 10 fragments of 1000 bytes, a ping after the third; a plain
         * send meanwhile must be refused. */
        static uint8_t chunk[1000];
        for (int i = 0; i < 10; i++) {
            memset(chunk, 'a' + i, sizeof chunk);
            CHECK_OFF_MAIN(wisp_ws_send_fragment(ws, 1, chunk, sizeof chunk,
                                                 i == 9) == 0);
            if (i == 3) {
                CHECK_OFF_MAIN(wisp_ws_ping(ws, "p", 1) == 0);
                busy_result = wisp_ws_send_text(ws, "no", 2);
            }
        }
        char msg[32];
        int n = snprintf(msg, sizeof msg, "busy=%d", busy_result);
        CHECK_OFF_MAIN(wisp_ws_send_text(ws, msg, (size_t)n) == 0);
    } else if (len == 3 && memcmp(data, "ref", 3) == 0) {
        CHECK_OFF_MAIN(wisp_ws_send_ref(ws, 1, big, sizeof big, count_done,
                                        NULL) == 0);
    } else {
        wisp_ws_send(ws, binary, data, len);
    }
}

static void on_close(wisp_ws_t *ws, int code, const char *reason,
                     size_t rlen, void *arg)
{
    (void)ws;
    (void)code;
    (void)reason;
    (void)rlen;
    (void)arg;
    atomic_fetch_add(&closed_count, 1);
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

/* ------------------------------------------------------------ client */

static void send_frame(int fd, int opcode, const char *s, size_t n)
{
    uint8_t f[256];
    uint8_t mask[4] = {9, 8, 7, 6};
    f[0] = (uint8_t)(0x80 | opcode);
    f[1] = (uint8_t)(0x80 | n);
    memcpy(f + 2, mask, 4);
    for (size_t i = 0; i < n; i++)
        f[6 + i] = (uint8_t)s[i] ^ mask[i % 4];
    if (write(fd, f, 6 + n) < 0)
        return;
}

typedef struct frame {
    int fin, opcode;
    size_t len;
    uint8_t *data; /* malloc'd */
} frame;

static int read_frame(int fd, frame *f)
{
    uint8_t h[10];
    if (read_exact(fd, h, 2) < 0)
        return -1;
    f->fin = h[0] >> 7;
    f->opcode = h[0] & 15;
    uint64_t len = h[1] & 127;
    CHECK((h[1] & 0x80) == 0); /* servers never mask */
    if (len == 126) {
        if (read_exact(fd, h, 2) < 0)
            return -1;
        len = (uint64_t)h[0] << 8 | h[1];
    } else if (len == 127) {
        if (read_exact(fd, h, 8) < 0)
            return -1;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[i];
    }
    f->len = (size_t)len;
    f->data = malloc(f->len + 1);
    if (read_exact(fd, f->data, f->len) < 0) {
        free(f->data);
        return -1;
    }
    f->data[f->len] = 0;
    return 0;
}

/* ------------------------------------------------------------ producers */

static void *producer(void *arg)
{
    int id = (int)(intptr_t)arg;
    pthread_mutex_lock(&mu);
    wisp_ws_handle_t h = last_handle;
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < PER_PRODUCER; i++) {
        char msg[32];
        int n = snprintf(msg, sizeof msg, "%d:%d", id, i);
        int r;
        while ((r = wisp_ws_post(h, 0, msg, (size_t)n)) == -EAGAIN)
            usleep(100);
        CHECK_OFF_MAIN(r == 0);
    }
    return NULL;
}

static void test_post_from_threads(uint16_t port)
{
    int fd = handshake(port);
    for (int i = 0; i < 6000 && atomic_load(&opened) < 1; i++)
        usleep(5000);
    pthread_t t[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++)
        pthread_create(&t[i], NULL, producer, (void *)(intptr_t)i);
    int next[PRODUCERS] = {0};
    int bad = 0;
    for (int k = 0; k < PRODUCERS * PER_PRODUCER; k++) {
        frame f;
        if (read_frame(fd, &f) < 0) {
            bad++;
            break;
        }
        int id = -1, seq = -1;
        if (f.opcode != 1 || sscanf((char *)f.data, "%d:%d", &id, &seq) != 2 ||
            id < 0 || id >= PRODUCERS || seq != next[id]) {
            if (bad++ < 3)
                fprintf(stderr, "unexpected frame op %d '%s'\n", f.opcode,
                        (char *)f.data);
        } else {
            next[id]++;
        }
        free(f.data);
    }
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(t[i], NULL);
    CHECK_EQ_INT(bad, 0);
    for (int i = 0; i < PRODUCERS; i++)
        CHECK_EQ_INT(next[i], PER_PRODUCER);

    /* post_close from another thread: the client gets the close frame
     * with code and reason. */
    pthread_mutex_lock(&mu);
    wisp_ws_handle_t h = last_handle;
    pthread_mutex_unlock(&mu);
    CHECK_EQ_INT(wisp_ws_post_close(h, 1000, "x"), 0);
    CHECK_EQ_INT(wisp_ws_post_close(h, 1005, NULL), -EINVAL);
    frame f;
    CHECK_EQ_INT(read_frame(fd, &f), 0);
    CHECK(f.opcode == 8 && f.len == 3 && f.data[0] == 0x03 &&
          f.data[1] == 0xE8 && f.data[2] == 'x');
    free(f.data);
    send_frame(fd, 8, "\x03\xe8", 2);
    char b;
    CHECK(read_exact(fd, &b, 1) < 0); /* the server closes */
    close(fd);
    for (int i = 0; i < 6000 && atomic_load(&closed_count) < 1; i++)
        usleep(5000);
    CHECK_EQ_INT(atomic_load(&closed_count), 1);

    /* The session is gone: posting to its handle is accepted and dropped
     * on the loop. A new session may take the same slot; the old handle
     * must not reach it. */
    int fd2 = handshake(port);
    for (int i = 0; i < 6000 && atomic_load(&opened) < 2; i++)
        usleep(5000);
    CHECK_EQ_INT(wisp_ws_post(h, 0, "stale", 5), 0);
    send_frame(fd2, 1, "echo", 4);
    CHECK_EQ_INT(read_frame(fd2, &f), 0);
    CHECK_STRN(f.data, f.len, "echo"); /* not "stale" */
    free(f.data);
    close(fd2);
}

static void test_fragments(uint16_t port)
{
    int fd = handshake(port);
    send_frame(fd, 1, "stream", 6);
    size_t total = 0;
    int frames = 0, pings = 0, ok = 1;
    for (;;) {
        frame f;
        if (read_frame(fd, &f) < 0) {
            ok = 0;
            break;
        }
        if (f.opcode == 9) {
            pings++;
            CHECK(frames == 4); /* between the 4th and 5th fragment */
            free(f.data);
            continue;
        }
        CHECK_EQ_INT(f.opcode, frames == 0 ? 2 : 0);
        CHECK_EQ_INT(f.fin, frames == 9);
        CHECK_EQ_INT(f.len, 1000);
        for (size_t i = 0; i < f.len; i++)
            if (f.data[i] != 'a' + frames)
                ok = 0;
        total += f.len;
        frames++;
        int fin = f.fin;
        free(f.data);
        if (fin)
            break;
    }
    CHECK(ok);
    CHECK_EQ_INT(frames, 10);
    CHECK_EQ_INT(pings, 1);
    CHECK_EQ_INT(total, 10000);
    frame f;
    CHECK_EQ_INT(read_frame(fd, &f), 0);
    char want[32];
    snprintf(want, sizeof want, "busy=%d", -EBUSY);
    CHECK_STRN(f.data, f.len, want);
    free(f.data);

    /* send_ref: 200000 bytes by reference; done runs once. */
    atomic_store(&ref_done, 0);
    send_frame(fd, 1, "ref", 3);
    CHECK_EQ_INT(read_frame(fd, &f), 0);
    CHECK_EQ_INT(f.opcode, 2);
    CHECK_EQ_INT(f.len, sizeof big);
    CHECK(f.len == sizeof big && memcmp(f.data, big, sizeof big) == 0);
    free(f.data);
    for (int i = 0; i < 6000 && atomic_load(&ref_done) < 1; i++)
        usleep(5000);
    CHECK_EQ_INT(atomic_load(&ref_done), 1);
    close(fd);
}

/* Many sessions one after the other: slots are reused (the pool), each
 * echo reaches only its own client. */
static void test_churn(uint16_t port)
{
    for (int i = 0; i < 300; i++) {
        int fd = handshake(port);
        char msg[16];
        int n = snprintf(msg, sizeof msg, "c%d", i);
        send_frame(fd, 1, msg, (size_t)n);
        frame f;
        CHECK_EQ_INT(read_frame(fd, &f), 0);
        CHECK_STRN(f.data, f.len, msg);
        free(f.data);
        close(fd);
    }
}

/* The cap on posts waiting per loop: with the loop held busy, exactly
 * 65,536 posts are accepted and the next get -EAGAIN; once the loop runs
 * again every accepted one arrives, and other clients are served. */
static _Atomic int hold_loop, in_block;

static void block_task(void *arg)
{
    (void)arg;
    atomic_store(&in_block, 1); /* the loop is held from here on */
    while (atomic_load(&hold_loop))
        usleep(1000);
}

static void test_post_limit(uint16_t port)
{
    /* The count before the handshake: its open may run before
     * handshake() returns (read after it, the wait below timed out after
     * 30 s every run). */
    int before = atomic_load(&opened);
    int fd = handshake(port);
    for (int i = 0; i < 6000 && atomic_load(&opened) == before; i++)
        usleep(5000);
    CHECK(atomic_load(&opened) > before);
    pthread_mutex_lock(&mu);
    wisp_ws_handle_t h = last_handle;
    pthread_mutex_unlock(&mu);
    atomic_store(&hold_loop, 1);
    CHECK_EQ_INT(wisp_loop_post(wisp_server_loop(srv, 0), block_task, NULL),
                 0);
    /* Post only once the loop is inside the task: then it takes nothing
     * from the inbox until released, and the count is exact. */
    for (int i = 0; i < 30000 && !atomic_load(&in_block); i++)
        usleep(1000);
    CHECK(atomic_load(&in_block));
    int accepted = 0, refused = 0, other = 0;
    for (int i = 0; i < 65536 + 100; i++) {
        int r = wisp_ws_post(h, 1, "p", 1);
        if (r == 0)
            accepted++;
        else if (r == -EAGAIN)
            refused++;
        else
            other++;
    }
    CHECK_EQ_INT(accepted, 65536);
    CHECK_EQ_INT(refused, 100);
    CHECK_EQ_INT(other, 0);
    atomic_store(&hold_loop, 0);
    /* Every accepted post arrives as the 3-byte frame 82 01 'p'; read
     * them in bulk (frame by frame, 4 syscalls each, took half a minute
     * on a busy machine). */
    int got = 0;
    frame f;
    size_t want = (size_t)accepted * 3;
    uint8_t *all = malloc(want);
    if (all && read_exact(fd, all, want) == 0)
        for (size_t i = 0; i < want; i += 3)
            got += all[i] == 0x82 && all[i + 1] == 1 && all[i + 2] == 'p';
    free(all);
    CHECK_EQ_INT(got, 65536);
    /* Room again, and another client is served. */
    CHECK_EQ_INT(wisp_ws_post(h, 0, "again", 5), 0);
    CHECK_EQ_INT(read_frame(fd, &f), 0);
    CHECK_STRN(f.data, f.len, "again");
    free(f.data);
    int fd2 = handshake(port);
    send_frame(fd2, 1, "other", 5);
    CHECK_EQ_INT(read_frame(fd2, &f), 0);
    CHECK_STRN(f.data, f.len, "other");
    free(f.data);
    close(fd2);
    close(fd);
}

int main(void)
{
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 31 + 7);
    wisp_ws_opts_init(&opts);
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 1;
    cfg.handle_signals = 0;
    srv = wisp_server_create(&cfg);
    wisp_server_route(srv, WISP_METHOD_GET, "/ws", on_ws, NULL, NULL);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    CHECK_EQ_INT(wisp_server_start(srv), 0);
    uint16_t port = wisp_server_port(srv);

    test_post_from_threads(port);
    test_fragments(port);
    test_churn(port);
    test_post_limit(port);

    wisp_server_stop(srv);
    wisp_server_wait(srv);
    wisp_server_destroy(srv);
    (void)have_handle;
    CHECK_EQ_INT(atomic_load(&off_main_failures), 0);
    return t_done("ws_session");
}
