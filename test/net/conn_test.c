/* The transport alone (src/net), with a trivial line-echo protocol
 * plugged in through a handler table — no HTTP, no server. A loop runs on
 * its own thread; the test drives it with posted tasks (each waited for)
 * and plays the peer over a socketpair or loopback TCP with plain
 * blocking I/O. Every wait is for an event, bounded by a generous
 * timeout only as the failure bound.
 *
 * Covered: bytes a protocol leaves are presented again with the next
 * ones; backpressure (the write high-water mark pauses reading, draining
 * resumes it and runs on_drain); pause/resume; close in two phases
 * (wisp_conn_close flushes what is queued, then closes; wisp_conn_abort
 * drops it); on_close never runs inside wisp_conn_close/abort, always
 * after, with reason 0; idle and one-shot timeouts, with and without
 * on_timeout; a table swap (take-over) mid-stream; a listener installing
 * the table at accept, and an outgoing connect through the backend. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop/loop_int.h"
#include "net/conn.h"
#include "net/listen.h"

#include "test.h"

static wisp_loop_t *loop;
static wisp__net net;

/* ------------------------------------------------ run on the loop */

typedef struct call {
    void (*fn)(void *);
    void *arg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} call;

static void call_task(void *arg)
{
    call *k = arg;
    k->fn(k->arg);
    pthread_mutex_lock(&k->mu);
    k->done = 1;
    pthread_cond_signal(&k->cv);
    pthread_mutex_unlock(&k->mu);
}

/* Run fn(arg) on the loop's thread and wait until it has run. */
static void on_loop(void (*fn)(void *), void *arg)
{
    call k = {fn, arg, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
              0};
    if (wisp_loop_post(loop, call_task, &k) != 0) {
        CHECK(!"post failed");
        return;
    }
    pthread_mutex_lock(&k.mu);
    while (!k.done)
        pthread_cond_wait(&k.cv, &k.mu);
    pthread_mutex_unlock(&k.mu);
}

static void nothing(void *arg)
{
    (void)arg;
}

/* Two full loop iterations: whatever the kernel had ready before this
 * call has been offered to the connections by the time it returns. */
static void settle(void)
{
    on_loop(nothing, NULL);
    on_loop(nothing, NULL);
}

/* Wait (bounded) until *v reaches want; the loop's thread changes it. */
static int wait_for(_Atomic int *v, int want)
{
    for (int i = 0; i < 20000 && atomic_load(v) < want; i++)
        usleep(500);
    return atomic_load(v) >= want;
}

/* ------------------------------------------------ the test protocol */

/* Line echo: consumes whole lines only ("x\n" -> "x\n"), leaves a
 * partial line for later. A line "big\n" writes BIG bytes. */
#define BIG (4u << 20)

typedef struct proto_state {
    wisp_conn_t *c;
    _Atomic int lines, drains, closes, timeouts, bad_in_call;
    _Atomic int reason;
    int in_call;        /* a wisp_conn_* call of the test is running */
    int rearm_ms;       /* on_timeout: set the one-shot again */
    char tag;           /* prefix of echoed lines ('\0': none) */
} proto_state;

static char *big_buf;

static size_t echo_data(wisp_conn_t *c, const char *data, size_t len,
                        void *arg)
{
    proto_state *s = arg;
    size_t used = 0;
    for (;;) {
        const char *nl = memchr(data + used, '\n', len - used);
        if (!nl)
            break;
        size_t n = (size_t)(nl - (data + used)) + 1;
        if (n == 4 && memcmp(data + used, "big\n", 4) == 0) {
            wisp_conn_write_ref(c, big_buf, BIG, NULL, NULL);
        } else {
            if (s->tag)
                wisp_conn_write(c, &s->tag, 1);
            wisp_conn_write(c, data + used, n);
        }
        used += n;
        atomic_fetch_add(&s->lines, 1);
    }
    return used;
}

static void echo_drain(wisp_conn_t *c, void *arg)
{
    proto_state *s = arg;
    (void)c;
    if (s->in_call)
        atomic_fetch_add(&s->bad_in_call, 1);
    atomic_fetch_add(&s->drains, 1);
}

static void echo_close(wisp_conn_t *c, int reason, void *arg)
{
    proto_state *s = arg;
    (void)c;
    if (s->in_call)
        atomic_fetch_add(&s->bad_in_call, 1);
    atomic_store(&s->reason, reason);
    atomic_fetch_add(&s->closes, 1);
}

static void echo_timeout(wisp_conn_t *c, void *arg)
{
    proto_state *s = arg;
    atomic_fetch_add(&s->timeouts, 1);
    if (s->rearm_ms) {
        int ms = s->rearm_ms;
        s->rearm_ms = 0;
        wisp_conn_set_timeout(c, (uint32_t)ms);
    }
}

static const wisp_conn_handlers_t echo = {
    .on_data = echo_data,
    .on_drain = echo_drain,
    .on_close = echo_close,
    .on_timeout = echo_timeout,
};
static const wisp_conn_handlers_t echo_no_timeout = {
    .on_data = echo_data,
    .on_close = echo_close,
};

/* ------------------------------------------------ peer side */

typedef struct pair {
    proto_state *s;
    const wisp_conn_handlers_t *h;
    int fd;             /* the connection's end */
} pair;

static void start_conn(void *arg)
{
    pair *p = arg;
    wisp_conn_t *c = wisp__conn_new(&net, p->fd);
    CHECK(c != NULL);
    if (!c)
        return;
    p->s->c = c;
    CHECK_EQ_INT(wisp__conn_start(c, p->h, p->s, 0, 0), 0);
}

/* A connection on one end of a socketpair; returns the peer's end. */
static int open_conn(proto_state *s, const wisp_conn_handlers_t *h,
                     int small_buffers)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    if (small_buffers) {
        int sz = 16 * 1024;
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
        setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    }
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    pair p = {s, h, sv[0]};
    on_loop(start_conn, &p);
    return sv[1];
}

static void put(int fd, const char *str)
{
    size_t l = strlen(str);
    CHECK(write(fd, str, l) == (ssize_t)l);
}

/* Read until `want` bytes arrived, EOF, or the failure bound. Returns
 * the bytes read; *eof tells whether the stream ended. */
static size_t get(int fd, char *buf, size_t want, int *eof)
{
    size_t n = 0;
    if (eof)
        *eof = 0;
    while (n < want) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 10000) <= 0)
            break;
        ssize_t r = read(fd, buf + n, want - n);
        if (r <= 0) {
            if (eof)
                *eof = 1;
            break;
        }
        n += (size_t)r;
    }
    return n;
}

static int expect(int fd, const char *str)
{
    char buf[256];
    size_t l = strlen(str);
    size_t n = get(fd, buf, l, NULL);
    CHECK_STRN(buf, n, str);
    return n == l && memcmp(buf, str, l) == 0;
}

/* Read until EOF; returns the byte count (bounded). */
static size_t read_to_eof(int fd, int *eof)
{
    static char sink[1 << 16];
    size_t total = 0;
    *eof = 0;
    for (;;) {
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, 10000) <= 0)
            return total;
        ssize_t r = read(fd, sink, sizeof sink);
        if (r == 0) {
            *eof = 1;
            return total;
        }
        if (r < 0) {
            *eof = errno == ECONNRESET ? 2 : 0;
            return total;
        }
        total += (size_t)r;
    }
}

/* ------------------------------------------------ calls on the loop */

static proto_state *cur;

static void do_close(void *arg)
{
    (void)arg;
    cur->in_call = 1;
    wisp_conn_write(cur->c, "last\n", 5);
    wisp_conn_close(cur->c);
    CHECK_EQ_INT(wisp_conn_write(cur->c, "x", 1), WISP_ECLOSED);
    wisp_conn_close(cur->c); /* closing already: no effect */
    wisp_conn_abort(cur->c); /* the transport aborts; no second on_close */
    cur->in_call = 0;
    /* Not yet: on_close comes after this call, from the loop. */
    CHECK_EQ_INT(atomic_load(&cur->closes), 0);
}

static void do_abort(void *arg)
{
    (void)arg;
    cur->in_call = 1;
    wisp_conn_abort(cur->c);
    wisp_conn_abort(cur->c);
    cur->in_call = 0;
    CHECK_EQ_INT(atomic_load(&cur->closes), 0);
}

static void do_pause(void *arg)
{
    cur->in_call = 1;
    if (arg)
        wisp_conn_pause(cur->c);
    else
        wisp_conn_resume(cur->c);
    cur->in_call = 0;
}

static _Atomic size_t buffered_seen;

static void do_buffered(void *arg)
{
    (void)arg;
    atomic_store(&buffered_seen, wisp_conn_buffered(cur->c));
}

static void do_idle(void *arg)
{
    wisp_conn_set_idle_timeout(cur->c, (uint32_t)(uintptr_t)arg);
}

static void do_once(void *arg)
{
    wisp_conn_set_timeout(cur->c, (uint32_t)(uintptr_t)arg);
}

/* A loop timer used as a marker: it fires after every deadline due
 * before it (timers run in deadline order). */
static wisp_timer_t marker;
static _Atomic int marker_fired;

static void marker_cb(wisp_timer_t *t, void *arg)
{
    (void)t;
    (void)arg;
    atomic_store(&marker_fired, 1);
}

static void arm_marker(void *arg)
{
    atomic_store(&marker_fired, 0);
    wisp_timer_init(loop, &marker);
    wisp_timer_start(&marker, (uint64_t)(uintptr_t)arg, marker_cb, NULL);
}

/* ------------------------------------------------ tests */

static void test_echo_and_retained(void)
{
    proto_state s = {0};
    cur = &s;
    int fd = open_conn(&s, &echo, 0);
    put(fd, "hello\n");
    expect(fd, "hello\n");
    /* A partial line stays with the connection and comes back, ahead of
     * the next bytes, as one line. */
    put(fd, "ab");
    settle();
    CHECK_EQ_INT(atomic_load(&s.lines), 1);
    put(fd, "c\nd\n");
    expect(fd, "abc\nd\n");
    CHECK_EQ_INT(atomic_load(&s.lines), 3);
    close(fd); /* the peer goes: on_close with -ECONNRESET */
    CHECK(wait_for(&s.closes, 1));
    CHECK_EQ_INT(atomic_load(&s.reason), -ECONNRESET);
    CHECK_EQ_INT(atomic_load(&s.bad_in_call), 0);
}

static void test_backpressure(void)
{
    proto_state s = {0};
    cur = &s;
    int fd = open_conn(&s, &echo, 1);
    /* BIG bytes for a peer that does not read: far over the high-water
     * mark (64 KiB here), so reading pauses. */
    put(fd, "big\n");
    CHECK(wait_for(&s.lines, 1));
    settle();
    on_loop(do_buffered, NULL);
    CHECK(atomic_load(&buffered_seen) > 64 * 1024);
    put(fd, "one\n");
    settle();
    CHECK_EQ_INT(atomic_load(&s.lines), 1); /* paused: not read */
    CHECK_EQ_INT(atomic_load(&s.drains), 0);
    /* The peer reads everything: the queue drains, on_drain runs, reading
     * resumes and the waiting line is echoed. */
    static char sink[1 << 16];
    size_t got = 0;
    while (got < BIG) {
        size_t n = get(fd, sink, sizeof sink < BIG - got ? sizeof sink
                                                         : BIG - got, NULL);
        if (!n)
            break;
        got += n;
    }
    CHECK_EQ_INT(got, BIG);
    expect(fd, "one\n");
    CHECK(atomic_load(&s.drains) >= 1);
    CHECK_EQ_INT(atomic_load(&s.lines), 2);
    cur = &s;
    on_loop(do_abort, NULL);
    CHECK(wait_for(&s.closes, 1));
    CHECK_EQ_INT(atomic_load(&s.bad_in_call), 0);
    close(fd);
}

static void test_pause_resume(void)
{
    proto_state s = {0};
    cur = &s;
    int fd = open_conn(&s, &echo, 0);
    on_loop(do_pause, (void *)1);
    put(fd, "held\n");
    settle();
    CHECK_EQ_INT(atomic_load(&s.lines), 0);
    on_loop(do_pause, NULL);
    expect(fd, "held\n");
    CHECK_EQ_INT(atomic_load(&s.lines), 1);
    /* While paused, the peer's close is still seen. */
    on_loop(do_pause, (void *)1);
    close(fd);
    CHECK(wait_for(&s.closes, 1));
    CHECK_EQ_INT(atomic_load(&s.reason), -ECONNRESET);
    CHECK_EQ_INT(atomic_load(&s.bad_in_call), 0);
}

static void test_close_two_phases(void)
{
    /* Graceful: what was queued (more than the socket takes) is written
     * whole, then the stream ends. */
    proto_state s = {0};
    cur = &s;
    int fd = open_conn(&s, &echo, 1);
    put(fd, "big\n");
    CHECK(wait_for(&s.lines, 1));
    on_loop(do_close, NULL);
    int eof;
    size_t n = read_to_eof(fd, &eof);
    CHECK_EQ_INT(n, BIG + 5);
    CHECK_EQ_INT(eof, 1);
    CHECK(wait_for(&s.closes, 1));
    CHECK_EQ_INT(atomic_load(&s.closes), 1);
    CHECK_EQ_INT(atomic_load(&s.reason), 0);
    CHECK_EQ_INT(atomic_load(&s.bad_in_call), 0);
    close(fd);

    /* Abort: what was queued is dropped. */
    proto_state t = {0};
    cur = &t;
    fd = open_conn(&t, &echo, 1);
    put(fd, "big\n");
    CHECK(wait_for(&t.lines, 1));
    settle();
    on_loop(do_abort, NULL);
    n = read_to_eof(fd, &eof);
    CHECK(n < BIG);
    CHECK(eof >= 1);
    CHECK(wait_for(&t.closes, 1));
    CHECK_EQ_INT(atomic_load(&t.closes), 1);
    CHECK_EQ_INT(atomic_load(&t.reason), 0);
    CHECK_EQ_INT(atomic_load(&t.bad_in_call), 0);
    close(fd);
}

static void test_timeouts(void)
{
    /* Idle: fires when nothing arrives; on_timeout may keep the
     * connection. */
    proto_state s = {0};
    cur = &s;
    int fd = open_conn(&s, &echo, 0);
    on_loop(do_idle, (void *)(uintptr_t)20);
    CHECK(wait_for(&s.timeouts, 1));
    CHECK_EQ_INT(atomic_load(&s.closes), 0);
    put(fd, "still\n");
    expect(fd, "still\n");
    on_loop(do_idle, (void *)(uintptr_t)0);

    /* One-shot: fires once; the handler re-arms it once more; a marker
     * due well after both shows no third. */
    atomic_store(&s.timeouts, 0);
    s.rearm_ms = 10;
    on_loop(do_once, (void *)(uintptr_t)10);
    on_loop(arm_marker, (void *)(uintptr_t)200);
    CHECK(wait_for(&marker_fired, 1));
    CHECK_EQ_INT(atomic_load(&s.timeouts), 2);
    /* Cancelled: a one-shot set to 0 never fires. */
    on_loop(do_once, (void *)(uintptr_t)10);
    on_loop(do_once, (void *)(uintptr_t)0);
    on_loop(arm_marker, (void *)(uintptr_t)100);
    CHECK(wait_for(&marker_fired, 1));
    CHECK_EQ_INT(atomic_load(&s.timeouts), 2);
    on_loop(do_abort, NULL);
    CHECK(wait_for(&s.closes, 1));
    close(fd);

    /* Without on_timeout the connection closes with -ETIMEDOUT. */
    proto_state t = {0};
    cur = &t;
    fd = open_conn(&t, &echo_no_timeout, 0);
    on_loop(do_idle, (void *)(uintptr_t)20);
    CHECK(wait_for(&t.closes, 1));
    CHECK_EQ_INT(atomic_load(&t.reason), -ETIMEDOUT);
    int eof;
    read_to_eof(fd, &eof);
    CHECK_EQ_INT(eof, 1);
    close(fd);
}

/* Take-over: protocol A hands the connection to protocol B on "switch"
 * (as an upgrade does); bytes A left go to B, and so does on_close. */
static proto_state sa, sb;

static size_t a_data(wisp_conn_t *c, const char *data, size_t len,
                     void *arg)
{
    if (len >= 7 && memcmp(data, "switch\n", 7) == 0) {
        wisp_conn_write(c, "A:switch\n", 9);
        atomic_fetch_add(&sa.lines, 1);
        wisp__conn_set_proto(c, &echo, &sb, 0);
        return 7;
    }
    return echo_data(c, data, len, arg);
}

static const wisp_conn_handlers_t proto_a = {
    .on_data = a_data,
    .on_close = echo_close,
};

static void test_takeover(void)
{
    memset(&sa, 0, sizeof sa);
    memset(&sb, 0, sizeof sb);
    sb.tag = 'B';
    cur = &sa;
    int fd = open_conn(&sa, &proto_a, 0);
    put(fd, "x\n");
    expect(fd, "x\n");
    put(fd, "switch\nrest\n");
    expect(fd, "A:switch\n");
    put(fd, "more\n");
    expect(fd, "Brest\nBmore\n");
    CHECK_EQ_INT(atomic_load(&sb.lines), 2);
    close(fd);
    CHECK(wait_for(&sb.closes, 1));
    CHECK_EQ_INT(atomic_load(&sa.closes), 0);
}

/* A listener installs the table at accept; an outgoing connection is
 * opened through the backend (wisp__be_connect) and speaks the same
 * protocol back. */
static wisp__listener lsn;
static proto_state ss; /* the accepted side (every accepted conn) */
static proto_state sc; /* the connecting side */
static wisp__io cio;
static _Atomic int connected;
static uint16_t port;

static _Atomic int connect_result = 1;

static void cio_cb(wisp__io *io, unsigned events)
{
    (void)events;
    /* The loop's thread: results go through atomics, checked by main. */
    atomic_store(&connect_result, wisp__be_connect_result(loop, io));
    int fd = io->fd;
    wisp__be_del(loop, io);
    wisp_conn_t *c = wisp__conn_new(&net, fd);
    sc.c = c;
    sc.tag = 'C';
    wisp__conn_start(c, &echo, &sc, 0, 0);
    wisp_conn_write(c, "ping\n", 5);
    atomic_store(&connected, 1);
}

static void do_listen(void *arg)
{
    (void)arg;
    int fd = -1;
    CHECK_EQ_INT(wisp__listen_tcp("127.0.0.1", 16, &fd, &port), 0);
    ss.tag = 'S';
    wisp__listener_init(&lsn, &net, fd, &echo, &ss, 0, 0);
    CHECK_EQ_INT(wisp__listener_start(&lsn), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cio.cb = cio_cb;
    int r = wisp__be_connect(loop, &cio, (struct sockaddr *)&a, sizeof a);
    CHECK(r == 0 || r == -EINPROGRESS);
    cio.want = WISP__IO_SEND;
    wisp__be_add(loop, &cio);
}

static void do_unlisten(void *arg)
{
    (void)arg;
    wisp__listener_drain_close(&lsn);
    wisp__net_force(&net);
}

static void test_listen_connect(void)
{
    on_loop(do_listen, NULL);
    /* C sends "ping" -> S echoes "Sping" -> C echoes "CSping" -> ...:
     * lines go back and forth; a few rounds show both sides work. */
    CHECK(wait_for(&connected, 1));
    CHECK_EQ_INT(atomic_load(&connect_result), 0);
    CHECK(wait_for(&sc.lines, 3));
    CHECK(wait_for(&ss.lines, 3));
    on_loop(do_unlisten, NULL);
    CHECK(wait_for(&sc.closes, 1));
    CHECK(wait_for(&ss.closes, 1));
    CHECK_EQ_INT(atomic_load(&ss.reason), WISP_ECLOSED);
}

static void *loop_main(void *arg)
{
    (void)arg;
    wisp_loop_run(loop);
    return NULL;
}

static void do_fini(void *arg)
{
    (void)arg;
    wisp__net_fini(&net);
    wisp_loop_break(loop);
}

int main(void)
{
    big_buf = malloc(BIG);
    memset(big_buf, 'z', BIG);
    loop = wisp_loop_create();
    wisp__net_conf cf = {
        .write_timeout_ms = 30000,
        .write_high_water = 64 * 1024,
        .max_connections = 100,
    };
    CHECK_EQ_INT(wisp__net_init(&net, loop, &cf), 0);
    pthread_t th;
    pthread_create(&th, NULL, loop_main, NULL);

    test_echo_and_retained();
    test_backpressure();
    test_pause_resume();
    test_close_two_phases();
    test_timeouts();
    test_takeover();
    test_listen_connect();

    on_loop(do_fini, NULL);
    pthread_join(th, NULL);
    wisp_loop_destroy(loop);
    free(big_buf);
    return t_done("net_conn");
}
