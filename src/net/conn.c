/* Connections: allocation from per-loop slabs, the receive path,
 * corked output and the write queue, backpressure, deadlines, two-phase
 * close, and the public wisp_conn_* API. No protocol lives here: events
 * go to the handler table installed on the connection (net/conn.h).
 *
 * Output: everything written while the loop handles one event goes into
 * the loop's cork (one buffer per loop) and leaves in one send when the
 * event is done (wisp__flush), so 16 pipelined responses cost one
 * syscall. Bytes the kernel does not take move to the connection's write
 * queue, and the connection waits for writability.
 *
 * Close: the transport half closes at once (fd closed, queue dropped);
 * the protocol hears of it through on_close — in the call for a built-in
 * protocol, at the end of the iteration for a public table — and the
 * slot returns to the free list after that, at the end of the iteration
 * (an event already fetched for a closed connection sees CLOSED and is
 * skipped). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "net/conn.h"
#include "wisp/shared.h"

#define SLAB_CONNS 64
#define INBUF_POOL_MAX 64
#define IOV_MAX_BATCH 64

static void conn_io_cb(wisp__io *io, unsigned events);
static void conn_timer_cb(wisp_timer_t *t, void *arg);
static void conn_finish_close(wisp_conn_t *c, int reason);
static void start_linger(wisp_conn_t *c);
static void end_iteration(wisp_loop_t *loop, void *arg);
static void update_read(wisp_conn_t *c);
static void flush_ev(wisp_conn_t *c);
static void connect_io_cb(wisp__io *io, unsigned events);

static inline const wisp__proto *proto(const wisp_conn_t *c)
{
    return (const wisp__proto *)(const void *)c->h;
}

/* ------------------------------------------------------------ per loop */

int wisp__net_init(wisp__net *n, wisp_loop_t *loop, const wisp__net_conf *cf)
{
    memset(n, 0, sizeof *n);
    n->loop = loop;
    n->conf = *cf;
    n->cork = malloc(WISP__CORK_SIZE);
    if (!n->cork)
        return -ENOMEM;
    wisp__loop_set_hook(loop, end_iteration, n);
    return 0;
}

/* Run the deferred on_close of the connections closed so far, then give
 * their slots back. A callback may close more: they join the list. */
static void reap_closed(wisp__net *n)
{
    while (n->close_list) {
        wisp_conn_t *c = n->close_list;
        n->close_list = c->later;
        if (c->flags & WISP__CF_NOTIFY) {
            c->flags &= (uint8_t)~WISP__CF_NOTIFY;
            if (c->h && c->h->on_close)
                c->h->on_close(c, c->close_reason, c->harg);
        }
        c->h = NULL;
        c->harg = NULL;
        c->later = n->conn_free;
        n->conn_free = c;
    }
}

void wisp__net_fini(wisp__net *n)
{
    if (!n->loop)
        return;
    while (n->conns)
        wisp__conn_abort(n->conns, WISP_ECLOSED);
    /* Connections still listed for a resume are closed: reap them too. */
    while (n->resume_list) {
        wisp_conn_t *c = n->resume_list;
        n->resume_list = c->later;
        c->flags &= (uint8_t)~WISP__CF_RESUME;
        c->later = n->close_list;
        n->close_list = c;
    }
    reap_closed(n);
    for (uint32_t i = 0; i < n->nslabs; i++)
        free(n->slabs[i]);
    free(n->slabs);
    n->slabs = NULL;
    n->nslabs = n->slab_cap = 0;
    n->conn_free = NULL;
    while (n->inbuf_free) {
        void *b = n->inbuf_free;
        n->inbuf_free = *(void **)b;
        free(b);
    }
    n->inbuf_free_len = 0;
    free(n->cork);
    n->cork = NULL;
    if (n->loop->hook_arg == n)
        wisp__loop_set_hook(n->loop, NULL, NULL);
    n->loop = NULL;
}

static void check_empty(wisp__net *n)
{
    if (n->stopping && n->nconns == 0 && n->on_empty)
        n->on_empty(n->empty_arg);
}

void wisp__net_stop(wisp__net *n)
{
    n->stopping = 1;
    wisp_conn_t *c = n->conns;
    while (c) {
        wisp_conn_t *next = c->next;
        if (c->state == WISP__C_OPEN) {
            if (c->h->on_stop)
                c->h->on_stop(c, c->harg);
            else
                wisp__conn_abort(c, WISP_ECLOSED);
            if (c->state != WISP__C_CLOSED)
                flush_ev(c);
        }
        c = next;
    }
    check_empty(n);
}

void wisp__net_force(wisp__net *n)
{
    n->stopping = 1;
    while (n->conns)
        wisp__conn_abort(n->conns, WISP_ECLOSED);
}

/* ------------------------------------------------------------ allocation */

static int grow_slabs(wisp__net *n)
{
    if (n->nslabs == n->slab_cap) {
        uint32_t cap = n->slab_cap ? n->slab_cap * 2 : 16;
        void **s = realloc(n->slabs, cap * sizeof *s);
        if (!s)
            return -ENOMEM;
        n->slabs = s;
        n->slab_cap = cap;
    }
    wisp_conn_t *slab = malloc(SLAB_CONNS * sizeof *slab);
    if (!slab)
        return -ENOMEM;
    n->slabs[n->nslabs++] = slab;
    for (int i = SLAB_CONNS - 1; i >= 0; i--) {
        slab[i].gen = 0;
        slab[i].later = n->conn_free;
        n->conn_free = &slab[i];
    }
    return 0;
}

wisp_conn_t *wisp__conn_new(wisp__net *n, int fd)
{
    if (!n->conn_free && grow_slabs(n) < 0)
        return NULL;
    wisp_conn_t *c = n->conn_free;
    n->conn_free = c->later;
    uint32_t gen = c->gen;
    memset(c, 0, sizeof *c);
    c->gen = gen + 1;
    c->io.fd = fd;
    c->io.cb = conn_io_cb;
    c->net = n;
    wisp_timer_init(n->loop, &c->timer);
    c->next = n->conns;
    if (n->conns)
        n->conns->prev = c;
    n->conns = c;
    n->nconns++;
    WISP__STAT_ADD(&n->stats, conns_opened, 1);
    return c;
}

void wisp__conn_set_proto(wisp_conn_t *c, const wisp_conn_handlers_t *h,
                          void *harg, int proto_int)
{
    c->h = h;
    c->harg = harg;
    c->pstate = 0;
    c->pflags = 0;
    c->want_drain = 0;
    c->pword = 0;
    c->idle_ms = 0;
    if (proto_int)
        c->flags |= WISP__CF_PROTO_INT;
    else
        c->flags &= (uint8_t)~WISP__CF_PROTO_INT;
    if (c->timeout_kind == WISP__T_PROTO)
        wisp__conn_deadline(c, 0, WISP__T_NONE);
    if (c->flags & WISP__CF_USER_PAUSE) {
        c->flags &= (uint8_t)~WISP__CF_USER_PAUSE;
        update_read(c);
    }
}

int wisp__conn_start(wisp_conn_t *c, const wisp_conn_handlers_t *h,
                     void *harg, int proto_int, uint32_t first_timeout_ms)
{
    wisp__conn_set_proto(c, h, harg, proto_int);
    c->io.want = WISP__IO_RECV;
    c->io.edge = 1;
    int r = wisp__be_add(c->net->loop, &c->io);
    if (r < 0) {
        wisp__conn_abort(c, r);
        return r;
    }
    if (first_timeout_ms)
        wisp__conn_deadline(c, first_timeout_ms, WISP__T_PROTO);
    return 0;
}

/* ------------------------------------------------------------ input */

static char *inbuf_get(wisp__net *n)
{
    void *b = n->inbuf_free;
    if (b) {
        n->inbuf_free = *(void **)b;
        n->inbuf_free_len--;
        return b;
    }
    return malloc(WISP__INBUF_SIZE);
}

void wisp__inbuf_put(wisp__net *n, char *b, uint32_t cap)
{
    if (cap == WISP__INBUF_SIZE && n->inbuf_free_len < INBUF_POOL_MAX) {
        *(void **)b = n->inbuf_free;
        n->inbuf_free = b;
        n->inbuf_free_len++;
    } else {
        free(b);
    }
}

int wisp__in_reserve(wisp_conn_t *c, size_t extra, char **moved,
                     uint32_t *moved_cap)
{
    if (moved)
        *moved = NULL;
    size_t need = (size_t)c->in_len + extra;
    if (need <= c->in_cap)
        return 0;
    if (need > UINT32_MAX - 16)
        return -ENOMEM;
    char *old = c->in;
    char *nb;
    uint32_t cap;
    if (!old && need <= WISP__INBUF_SIZE) {
        nb = inbuf_get(c->net);
        cap = WISP__INBUF_SIZE;
    } else {
        size_t want = c->in_cap ? (size_t)c->in_cap * 2 : WISP__INBUF_SIZE;
        while (want < need)
            want *= 2;
        if (want > UINT32_MAX - 16)
            want = need;
        cap = (uint32_t)want;
        nb = malloc(cap);
        if (nb && old)
            memcpy(nb, old, c->in_len);
    }
    if (!nb)
        return -ENOMEM;
    if (old) {
        if (moved) {
            /* The protocol moves its pointers, then releases it. */
            *moved = old;
            *moved_cap = c->in_cap;
        } else {
            wisp__inbuf_put(c->net, old, c->in_cap);
        }
    }
    c->in = nb;
    c->in_cap = cap;
    return 0;
}

void wisp__in_release(wisp_conn_t *c)
{
    if (c->in) {
        wisp__inbuf_put(c->net, c->in, c->in_cap);
        c->in = NULL;
    }
    c->in_len = c->in_cap = c->in_keep = 0;
}

void wisp__in_consume(wisp_conn_t *c, size_t n)
{
    /* Remove n unprocessed bytes that follow the pinned prefix. */
    uint32_t start = c->in_keep;
    uint32_t rest = c->in_len - start - (uint32_t)n;
    if (rest)
        memmove(c->in + start, c->in + start + n, rest);
    c->in_len = start + rest;
    if (c->in_len == 0)
        wisp__in_release(c);
}

/* ------------------------------------------------------------ output */

uint64_t wisp__pending_out(const wisp_conn_t *c)
{
    uint64_t n = c->wq_bytes;
    if (c->net->cork_owner == c)
        n += c->net->cork_len;
    return n;
}

static wisp__wseg *seg_new_mem(const void *data, size_t len)
{
    wisp__wseg *s = malloc(sizeof *s + len);
    if (!s)
        return NULL;
    memset(s, 0, sizeof *s);
    s->kind = WISP__SEG_MEM;
    memcpy(s->data, data, len);
    s->ptr = s->data;
    s->len = len;
    s->fd = -1;
    return s;
}

static void seg_free(wisp__wseg *s)
{
    if (s->kind == WISP__SEG_REF && s->done)
        s->done(s->arg);
    else if (s->kind == WISP__SEG_FILE && s->fd >= 0)
        close(s->fd); /* a file, not a connection */
    free(s);
}

static void wq_push(wisp_conn_t *c, wisp__wseg *s)
{
    s->next = NULL;
    if (c->wq_tail)
        c->wq_tail->next = s;
    else
        c->wq_head = s;
    c->wq_tail = s;
    c->wq_bytes += s->len;
}

static void wq_clear(wisp_conn_t *c)
{
    wisp__wseg *s = c->wq_head;
    c->wq_head = c->wq_tail = NULL;
    c->wq_bytes = 0;
    while (s) {
        wisp__wseg *n = s->next;
        seg_free(s);
        s = n;
    }
}

static void write_progress(wisp_conn_t *c)
{
    if (c->wq_head)
        wisp__conn_deadline(c, c->net->conf.write_timeout_ms, WISP__T_WRITE);
}

/* Try to send the write queue. Returns 0, or a negative errno when the
 * connection failed (the caller aborts it). */
static int wq_drain(wisp_conn_t *c)
{
    wisp_loop_t *loop = c->net->loop;
    while (c->wq_head) {
        wisp__wseg *s = c->wq_head;
        if (s->kind == WISP__SEG_FILE) {
            size_t chunk = s->len > (1u << 30) ? (1u << 30) : (size_t)s->len;
            ssize_t n = wisp__be_sendfile(loop, &c->io, s->fd, &s->file_off,
                                          chunk);
            if (n == -EAGAIN)
                break;
            if (n < 0)
                return (int)n;
            if (n == 0) {
                /* The file shrank under us: the promised length cannot be
                 * delivered, so the connection cannot continue. */
                return -EIO;
            }
            WISP__STAT_ADD(&c->net->stats, bytes_out, n);
            s->len -= (uint64_t)n;
            c->wq_bytes -= (uint64_t)n;
            if (s->len == 0) {
                c->wq_head = s->next;
                if (!c->wq_head)
                    c->wq_tail = NULL;
                seg_free(s);
            }
            continue;
        }
        struct iovec iov[IOV_MAX_BATCH];
        int cnt = 0;
        for (wisp__wseg *t = s; t && cnt < IOV_MAX_BATCH &&
                                t->kind != WISP__SEG_FILE;
             t = t->next) {
            iov[cnt].iov_base = (void *)t->ptr;
            iov[cnt].iov_len = (size_t)t->len;
            cnt++;
        }
        ssize_t n = wisp__be_send(loop, &c->io, iov, cnt);
        if (n == -EAGAIN)
            break;
        if (n < 0)
            return (int)n;
        WISP__STAT_ADD(&c->net->stats, bytes_out, n);
        c->wq_bytes -= (uint64_t)n;
        while (n > 0) {
            wisp__wseg *t = c->wq_head;
            if ((uint64_t)n >= t->len) {
                n -= (ssize_t)t->len;
                c->wq_head = t->next;
                if (!c->wq_head)
                    c->wq_tail = NULL;
                seg_free(t);
            } else {
                t->ptr += n;
                t->len -= (uint64_t)n;
                n = 0;
            }
        }
    }
    return 0;
}

/* After a send: arm or clear writability, the write deadline and the
 * backpressure pause, and tell the protocol when its output is all out:
 * a public protocol when `notify` (the loop's own flush or a writable
 * event, never inside a call); a built-in one when a queue or a pause
 * ended, or it asked (want_drain). */
__attribute__((noinline)) /* keep the common case below small */
static void after_write_slow(wisp_conn_t *c, uint64_t before, int notify)
{
    wisp__net *n = c->net;
    if (c->wq_head) {
        wisp__io_want(n->loop, &c->io, c->io.want | WISP__IO_SEND);
        if (c->wq_bytes < before || c->timeout_kind != WISP__T_WRITE)
            write_progress(c);
        if (c->wq_bytes > n->conf.write_high_water &&
            !(c->flags & WISP__CF_PAUSED) && c->state == WISP__C_OPEN) {
            c->flags |= WISP__CF_PAUSED;
            update_read(c);
        }
        return;
    }
    int ended = 0; /* a queue, its write deadline or a pause ended */
    if (c->io.want & WISP__IO_SEND) {
        wisp__io_want(n->loop, &c->io, c->io.want & ~WISP__IO_SEND);
        ended = 1;
    }
    if (c->timeout_kind == WISP__T_WRITE) {
        wisp__conn_deadline(c, 0, WISP__T_NONE);
        ended = 1;
    }
    if (c->state != WISP__C_OPEN) {
        if (c->state == WISP__C_LINGER && (c->flags & WISP__CF_CLOSE_AFTER)) {
            c->flags &= (uint8_t)~WISP__CF_CLOSE_AFTER;
            start_linger(c);
        }
        return;
    }
    if (c->flags & WISP__CF_PAUSED) {
        c->flags &= (uint8_t)~WISP__CF_PAUSED;
        update_read(c);
        ended = 1;
    }
    if (c->flags & WISP__CF_PROTO_INT) {
        if (!ended && !c->want_drain)
            return;
        c->want_drain = 0;
    } else if (!notify) {
        return;
    }
    if (c->h->on_drain)
        c->h->on_drain(c, c->harg);
    if (c->state == WISP__C_OPEN && c->idle_ms &&
        c->timeout_kind == WISP__T_NONE)
        wisp__conn_deadline(c, c->idle_ms, WISP__T_PROTO);
}

static inline void after_write(wisp_conn_t *c, uint64_t before, int notify)
{
    /* The common case: a built-in protocol's output all went, nothing
     * was queued or paused, nobody waits for the drain. */
    if (!c->wq_head && !(c->io.want & WISP__IO_SEND) &&
        c->state == WISP__C_OPEN && c->timeout_kind != WISP__T_WRITE &&
        (c->flags & (WISP__CF_PROTO_INT | WISP__CF_PAUSED)) ==
            WISP__CF_PROTO_INT &&
        !c->want_drain)
        return;
    after_write_slow(c, before, notify);
}

int wisp__conn_backpressure(wisp_conn_t *c)
{
    if (wisp__pending_out(c) <= c->net->conf.write_high_water)
        return 0;
    if (!(c->flags & WISP__CF_PAUSED)) {
        c->flags |= WISP__CF_PAUSED;
        update_read(c);
    }
    return 1;
}

/* Send the cork (if `c` owns it) ahead of `extra` (optional). Returns 0
 * or a negative errno (the connection is aborted). */
static int send_with_cork(wisp_conn_t *c, const struct iovec *extra,
                          int nextra, int ref, wisp_free_cb done, void *arg,
                          int notify)
{
    wisp__net *w = c->net;
    struct iovec iov[2];
    int cnt = 0;
    size_t cork = (w->cork_owner == c) ? w->cork_len : 0;
    if (cork) {
        iov[cnt].iov_base = w->cork;
        iov[cnt].iov_len = cork;
        cnt++;
    }
    for (int i = 0; i < nextra; i++)
        iov[cnt++] = extra[i];
    if (w->cork_owner == c) {
        w->cork_owner = NULL;
        w->cork_len = 0;
    }
    size_t total = 0;
    for (int i = 0; i < cnt; i++)
        total += iov[i].iov_len;
    uint64_t before = c->wq_bytes;
    ssize_t n = 0;
    if (c->wq_head) {
        n = 0; /* keep order: queue behind what is already waiting */
    } else if (total) {
        n = wisp__be_send(w->loop, &c->io, iov, cnt);
        if (n == -EAGAIN)
            n = 0;
        if (n < 0) {
            if (done)
                done(arg);
            wisp__conn_abort(c, (int)n);
            return (int)n;
        }
        WISP__STAT_ADD(&w->stats, bytes_out, n);
    }
    /* Queue what the kernel did not take. */
    size_t skip = (size_t)n;
    for (int i = 0; i < cnt; i++) {
        size_t l = iov[i].iov_len;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        const char *p = (const char *)iov[i].iov_base + skip;
        size_t left = l - skip;
        skip = 0;
        wisp__wseg *s;
        if (!(cork && i == 0) && ref) {
            /* The caller's bytes, referenced until written. */
            s = malloc(sizeof *s);
            if (s) {
                memset(s, 0, sizeof *s);
                s->kind = WISP__SEG_REF;
                s->ptr = p;
                s->len = left;
                s->fd = -1;
                s->done = done;
                s->arg = arg;
                done = NULL;
            }
        } else {
            s = seg_new_mem(p, left);
        }
        if (!s) {
            if (done)
                done(arg);
            wisp__conn_abort(c, -ENOMEM);
            return -ENOMEM;
        }
        wq_push(c, s);
    }
    if (done)
        done(arg); /* fully sent */
    after_write(c, before + total, notify);
    return 0;
}

void wisp__flush(wisp_conn_t *c)
{
    if (c->net->cork_owner != c || c->state == WISP__C_CLOSED)
        return;
    send_with_cork(c, NULL, 0, 0, NULL, NULL, 0);
}

/* The flush at the end of an event the loop handled for `c`. */
static void flush_ev(wisp_conn_t *c)
{
    if (c->net->cork_owner != c || c->state == WISP__C_CLOSED)
        return;
    send_with_cork(c, NULL, 0, 0, NULL, NULL, 1);
}

static void take_cork(wisp_conn_t *c)
{
    wisp__net *w = c->net;
    if (w->cork_owner && w->cork_owner != c)
        wisp__flush(w->cork_owner);
    w->cork_owner = c;
}

char *wisp__out_reserve(wisp_conn_t *c, size_t len)
{
    wisp__net *w = c->net;
    if (len > WISP__CORK_SIZE)
        return NULL;
    take_cork(c);
    if (w->cork_len + len > WISP__CORK_SIZE) {
        send_with_cork(c, NULL, 0, 0, NULL, NULL, 0);
        if (c->state == WISP__C_CLOSED)
            return NULL;
        w->cork_owner = c;
    }
    return w->cork + w->cork_len;
}

void wisp__out_commit(wisp_conn_t *c, size_t len)
{
    c->net->cork_len += len;
}

int wisp__out(wisp_conn_t *c, const void *data, size_t len)
{
    if (c->state == WISP__C_CLOSED)
        return WISP_ECLOSED;
    if (len == 0)
        return 0;
    /* Large writes go out with the cork in one call, uncopied (only what
     * the kernel does not take is copied into the queue); small ones
     * gather in the cork. */
    char *p = len < WISP__CORK_SIZE / 4 ? wisp__out_reserve(c, len) : NULL;
    if (p) {
        memcpy(p, data, len);
        wisp__out_commit(c, len);
        return 0;
    }
    if (c->state == WISP__C_CLOSED)
        return WISP_ECLOSED;
    /* Larger than the cork: send cork + data in one call, queue a copy of
     * the rest. */
    take_cork(c);
    struct iovec iov = {(void *)data, len};
    return send_with_cork(c, &iov, 1, 0, NULL, NULL, 0) < 0 ? WISP_ECLOSED
                                                               : 0;
}

int wisp__out_ref(wisp_conn_t *c, const void *data, size_t len,
                  wisp_free_cb done, void *arg)
{
    if (c->state == WISP__C_CLOSED) {
        if (done)
            done(arg);
        return WISP_ECLOSED;
    }
    if (len <= 1024) {
        /* Small: a copy into the cork is cheaper than a segment. */
        int r = wisp__out(c, data, len);
        if (done)
            done(arg);
        return r;
    }
    take_cork(c);
    struct iovec iov = {(void *)data, len};
    return send_with_cork(c, &iov, 1, 1, done, arg, 0) < 0 ? WISP_ECLOSED
                                                              : 0;
}

int wisp__out_file(wisp_conn_t *c, int fd, uint64_t off, uint64_t len)
{
    if (c->state == WISP__C_CLOSED) {
        close(fd);
        return WISP_ECLOSED;
    }
    wisp__flush(c);
    if (c->state == WISP__C_CLOSED) {
        close(fd);
        return WISP_ECLOSED;
    }
    wisp__wseg *s = malloc(sizeof *s);
    if (!s) {
        close(fd);
        return -ENOMEM;
    }
    memset(s, 0, sizeof *s);
    s->kind = WISP__SEG_FILE;
    s->fd = fd;
    s->file_off = off;
    s->len = len;
    uint64_t before = c->wq_bytes;
    int was_queued = c->wq_head != NULL;
    wq_push(c, s);
    if (!was_queued) {
        int err = wq_drain(c);
        if (err < 0) {
            wisp__conn_abort(c, err);
            return WISP_ECLOSED;
        }
    }
    after_write(c, before + len, 0);
    return 0;
}

/* ------------------------------------------------------------ events */

static void on_writable(wisp_conn_t *c)
{
    uint64_t before = c->wq_bytes;
    int err = wq_drain(c);
    if (err < 0) {
        wisp__conn_abort(c, err);
        return;
    }
    after_write(c, before, 1);
}

/* Offer the retained input (new bytes already appended) to the owner. */
static void deliver_retained(wisp_conn_t *c)
{
    size_t used = c->h->on_data(c, c->in, c->in_len, c->harg);
    if (c->state != WISP__C_OPEN)
        return;
    wisp__in_consume(c, used < c->in_len ? used : c->in_len);
}

void wisp__conn_deliver(wisp_conn_t *c, const char *data, size_t n)
{
    if (c->in_len) {
        if (wisp__in_reserve(c, n, NULL, NULL) < 0) {
            wisp__conn_abort(c, -ENOMEM);
            return;
        }
        memcpy(c->in + c->in_len, data, n);
        c->in_len += (uint32_t)n;
        deliver_retained(c);
        return;
    }
    /* Nothing retained: the owner reads the loop's buffer in place, and
     * only what it leaves is copied into the connection's. */
    size_t used = c->h->on_data(c, data, n, c->harg);
    if (c->state != WISP__C_OPEN || used >= n)
        return;
    if (wisp__in_reserve(c, n - used, NULL, NULL) < 0) {
        wisp__conn_abort(c, -ENOMEM);
        return;
    }
    memcpy(c->in, data + used, n - used);
    c->in_len = (uint32_t)(n - used);
}

/* Edge-triggered: a read that filled the whole buffer may have left more
 * in the kernel, and no new edge will say so. Read again, up to a budget
 * of bytes per event; past that the connection goes on the loop's list
 * and continues at the end of the iteration, so one fast sender cannot
 * starve the others. A budget of bytes, not of reads: the loop's buffer
 * is large (a whole 64 KiB WebSocket frame and its header fit one read),
 * and one read of it must not let a connection take more per turn than
 * four reads of 64 KiB did. */
#define READ_BUDGET (256 * 1024)

static size_t on_readable_once(wisp_conn_t *c, int *full);

static void list_resume(wisp_conn_t *c)
{
    if (!(c->flags & WISP__CF_RESUME)) {
        c->flags |= WISP__CF_RESUME;
        c->later = c->net->resume_list;
        c->net->resume_list = c;
    }
}

/* `hup`: the event also reported the peer's FIN or a reset. A short
 * read then does not mean drained: the EOF or the error waits behind the
 * data, and an edge-triggered socket signals it only once, so read on
 * until recv says EAGAIN, EOF or error (a session whose last packets and
 * RST arrived together was otherwise never seen closing). */
__attribute__((always_inline)) /* into conn_io_cb: no call per event */
static inline void on_readable(wisp_conn_t *c, int hup)
{
    for (size_t got = 0; got < READ_BUDGET;) {
        int full = 0;
        size_t n = on_readable_once(c, &full);
        got += n;
        if (c->state == WISP__C_CLOSED || !(c->io.want & WISP__IO_RECV))
            return; /* closed, or paused (resuming re-polls) */
        if (!full && !(hup && n))
            return; /* drained */
    }
    c->flags |= WISP__CF_MORE_INPUT;
    list_resume(c);
}

static void read_more(wisp_conn_t *c)
{
    c->flags &= (uint8_t)~WISP__CF_MORE_INPUT;
    if (c->state != WISP__C_CLOSED && (c->io.want & WISP__IO_RECV))
        on_readable(c, 0);
}

/* A connection of a public protocol waiting for the rest of a large
 * message (its owner left bytes unconsumed, and the buffer has room)
 * reads straight into that buffer instead of the loop's: one copy less
 * per byte. The buffer grows only as the owner's unconsumed bytes need
 * (the WebSocket layer bounds those by max_frame), so this is no
 * unbounded read-ahead. */
#define DIRECT_READ_MIN (16 * 1024)

static void restart_idle(wisp_conn_t *c)
{
    if (c->timeout_kind == WISP__T_PROTO && c->idle_ms)
        c->deadline_ms = c->net->loop->now_ms + c->idle_ms;
}

static size_t on_readable_once(wisp_conn_t *c, int *full)
{
    char *data;
    ssize_t n;
    wisp_loop_t *loop = c->net->loop;
    if (c->in_len && c->in_cap - c->in_len >= DIRECT_READ_MIN &&
        !(c->flags & WISP__CF_PROTO_INT) && c->state == WISP__C_OPEN) {
        size_t room = c->in_cap - c->in_len;
        n = wisp__be_recv_into(loop, &c->io, c->in + c->in_len, room);
        *full = n > 0 && (size_t)n == room;
        if (n == -EAGAIN)
            return 0;
        if (n <= 0) {
            wisp__conn_abort(c, n == 0 ? -ECONNRESET : (int)n);
            return 0;
        }
        WISP__STAT_ADD(&c->net->stats, bytes_in, n);
        restart_idle(c);
        c->in_len += (uint32_t)n;
        deliver_retained(c);
        flush_ev(c);
        return (size_t)n;
    }
    n = wisp__be_recv(loop, &c->io, &data);
    *full = n > 0 && (size_t)n == loop->rbuf_cap;
    if (n == -EAGAIN)
        return 0;
    if (n <= 0) {
        if (n == 0)
            c->flags |= WISP__CF_PEER_EOF;
        wisp__conn_abort(c, c->state == WISP__C_LINGER ? 0
                            : n == 0 ? -ECONNRESET : (int)n);
        return 0;
    }
    WISP__STAT_ADD(&c->net->stats, bytes_in, n);
    if (c->state != WISP__C_OPEN)
        return (size_t)n; /* linger: discard, we wait for the peer's close */
    restart_idle(c);
    if (c->flags & WISP__CF_PROTO_INT)
        c->h->on_data(c, data, (size_t)n, c->harg); /* takes every byte */
    else
        wisp__conn_deliver(c, data, (size_t)n);
    flush_ev(c);
    return (size_t)n;
}

static void conn_io_cb(wisp__io *io, unsigned events)
{
    wisp_conn_t *c = (wisp_conn_t *)io;
    if (c->state == WISP__C_CLOSED)
        return;
    if (events & WISP__EV_SEND)
        on_writable(c);
    if (c->state == WISP__C_CLOSED)
        return;
    if ((events & WISP__EV_RECV) && (c->io.want & WISP__IO_RECV)) {
        on_readable(c, (events & WISP__EV_HUP) != 0);
    } else if (events & WISP__EV_HUP) {
        /* The peer went away while we were not reading (a pending
         * response, backpressure): treat it as an abort, as nginx does
         * with a client that closes before its response. */
        wisp__conn_abort(c, c->state == WISP__C_LINGER ? 0 : -ECONNRESET);
    }
}

static void update_read(wisp_conn_t *c)
{
    if (c->state != WISP__C_OPEN)
        return;
    unsigned want = c->io.want & WISP__IO_SEND;
    int paused = c->flags & (WISP__CF_PAUSED | WISP__CF_USER_PAUSE);
    want |= paused ? WISP__IO_HUP : WISP__IO_RECV;
    wisp__io_want(c->net->loop, &c->io, want);
}

void wisp__conn_pause_read(wisp_conn_t *c, int paused)
{
    uint8_t f = paused ? (uint8_t)(c->flags | WISP__CF_USER_PAUSE)
                       : (uint8_t)(c->flags & ~WISP__CF_USER_PAUSE);
    if (f == c->flags)
        return;
    c->flags = f;
    update_read(c);
}

void wisp__conn_resume_later(wisp_conn_t *c)
{
    list_resume(c);
}

/* ------------------------------------------------------------ deadlines */

void wisp__conn_deadline(wisp_conn_t *c, uint32_t ms, uint8_t kind)
{
    c->timeout_kind = kind;
    if (ms == 0) {
        c->deadline_ms = 0;
        /* Leave the timer armed: it notices the cleared deadline. */
        return;
    }
    uint64_t due = c->net->loop->now_ms + ms;
    c->deadline_ms = due;
    /* Lazy re-arm: a later deadline is picked up when the armed timer
     * fires, so the common keep-alive path does no heap work at all. */
    if (!c->timer.heap_index || c->timer.due_ms > due)
        wisp_timer_start(&c->timer, ms, conn_timer_cb, c);
}

static void conn_timer_cb(wisp_timer_t *t, void *arg)
{
    wisp_conn_t *c = arg;
    (void)t;
    if (c->state == WISP__C_CLOSED || c->deadline_ms == 0)
        return;
    uint64_t now = c->net->loop->now_ms;
    if (c->deadline_ms > now) {
        wisp_timer_start(&c->timer, c->deadline_ms - now, conn_timer_cb, c);
        return;
    }
    uint8_t kind = c->timeout_kind;
    c->deadline_ms = 0;
    c->timeout_kind = WISP__T_NONE;
    switch (kind) {
    case WISP__T_WRITE:
        wisp__conn_abort(c, -ETIMEDOUT);
        break;
    case WISP__T_LINGER:
        wisp__conn_abort(c, 0);
        break;
    default:
        if (c->state == WISP__C_OPEN && c->h->on_timeout)
            c->h->on_timeout(c, c->harg);
        else
            wisp__conn_abort(c, -ETIMEDOUT);
        break;
    }
    flush_ev(c);
}

/* ------------------------------------------------------------ close */

void wisp__conn_close_graceful(wisp_conn_t *c)
{
    if (c->state != WISP__C_OPEN)
        return;
    wisp__flush(c);
    if (c->state != WISP__C_OPEN)
        return;
    c->state = WISP__C_LINGER;
    wisp__in_release(c);
    if (c->wq_head) {
        /* Shut down once the queue is out (after_write). */
        c->flags |= WISP__CF_CLOSE_AFTER;
        wisp__io_want(c->net->loop, &c->io, WISP__IO_SEND | WISP__IO_RECV);
        return;
    }
    start_linger(c);
}

static void start_linger(wisp_conn_t *c)
{
    if (c->flags & WISP__CF_PEER_EOF) {
        wisp__conn_abort(c, 0);
        return;
    }
    /* Half-close and read until the peer closes (bounded), so unread
     * request bytes do not turn our close into a reset that destroys the
     * response in flight. */
    wisp__be_shutdown(c->net->loop, &c->io);
    wisp__io_want(c->net->loop, &c->io, WISP__IO_RECV);
    wisp__conn_deadline(c, 2000, WISP__T_LINGER);
}

void wisp__conn_abort(wisp_conn_t *c, int reason)
{
    if (c->state == WISP__C_CLOSED)
        return;
    conn_finish_close(c, reason);
}

static void conn_finish_close(wisp_conn_t *c, int reason)
{
    wisp__net *w = c->net;
    c->state = WISP__C_CLOSED;
    if (w->cork_owner == c) {
        w->cork_owner = NULL;
        w->cork_len = 0;
    }
    wisp_timer_stop(&c->timer);
    wisp__be_close(w->loop, &c->io);
    wq_clear(c);
    int notify_now = (c->flags & WISP__CF_PROTO_INT) && c->h;
    if (!notify_now && c->h && !(c->flags & WISP__CF_NOTIFY)) {
        c->flags |= WISP__CF_NOTIFY;
        c->close_reason = reason;
    }
    /* Unlink now; free at the end of the iteration (events already
     * fetched for this connection see CLOSED and are skipped). */
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
    if (!(c->flags & WISP__CF_RESUME)) {
        c->later = w->close_list;
        w->close_list = c;
    }
    w->nconns--;
    WISP__STAT_ADD(&w->stats, conns_closed, 1);
    if (notify_now)
        c->h->on_close(c, reason, c->harg); /* built in: in the call */
    wisp__in_release(c);
    check_empty(w);
}

/* ------------------------------------------------------------ per loop */

static void end_iteration(wisp_loop_t *loop, void *arg)
{
    wisp__net *w = arg;
    (void)loop;
    /* Connections whose protocol asked to resume continue, and those with
     * input left in the kernel read on. Only the ones listed now: a
     * connection that lists itself again (still more input) waits for
     * the next iteration, after the others and the next poll have had
     * their turn — otherwise one client that keeps sending would hold
     * the loop here. */
    wisp_conn_t *list = w->resume_list;
    w->resume_list = NULL;
    while (list) {
        wisp_conn_t *c = list;
        list = c->later;
        c->flags &= (uint8_t)~WISP__CF_RESUME;
        if (c->state == WISP__C_CLOSED) {
            c->later = w->close_list;
            w->close_list = c;
            continue;
        }
        if (c->flags & WISP__CF_NOTIFY) {
            /* Closed by its owner (wisp_conn_close) and still flushing:
             * the owner is told now, the transport finishes alone. */
            c->flags &= (uint8_t)~WISP__CF_NOTIFY;
            const wisp_conn_handlers_t *h = c->h;
            c->h = NULL;
            h->on_close(c, c->close_reason, c->harg);
            c->harg = NULL;
            if (c->state == WISP__C_CLOSED) {
                if (!(c->flags & WISP__CF_RESUME)) {
                    c->later = w->close_list;
                    w->close_list = c;
                }
                continue;
            }
        }
        if (c->flags & WISP__CF_MORE_INPUT)
            read_more(c);
        else if (c->flags & WISP__CF_PROTO_INT && proto(c)->on_resume)
            proto(c)->on_resume(c, c->harg);
        flush_ev(c);
    }
    if (w->cork_owner)
        flush_ev(w->cork_owner);
    if (w->resume_list)
        wisp__loop_keep_awake(w->loop); /* poll, but do not sleep */
    reap_closed(w);
}

/* ------------------------------------------------------------ public API */

int wisp_conn_write(wisp_conn_t *c, const void *data, size_t len)
{
    WISP__ASSERT_OWNER(c->net->loop);
    if (c->state != WISP__C_OPEN)
        return WISP_ECLOSED;
    return wisp__out(c, data, len);
}

int wisp_conn_write_ref(wisp_conn_t *c, const void *data, size_t len,
                        wisp_free_cb done, void *arg)
{
    WISP__ASSERT_OWNER(c->net->loop);
    if (c->state != WISP__C_OPEN) {
        if (done)
            done(arg);
        return WISP_ECLOSED;
    }
    return wisp__out_ref(c, data, len, done, arg);
}

static void unref_shared(void *arg)
{
    wisp_shared_unref(arg);
}

int wisp_conn_write_shared(wisp_conn_t *c, wisp_shared_t *msg)
{
    wisp_shared_ref(msg);
    /* The write queue references the bytes; the reference goes when they
     * are written or the connection closes (unref_shared runs either
     * way). */
    return wisp_conn_write_ref(c, wisp_shared_data(msg), wisp_shared_len(msg),
                               unref_shared, msg);
}

size_t wisp_conn_buffered(const wisp_conn_t *c)
{
    WISP__ASSERT_OWNER(c->net->loop);
    return (size_t)wisp__pending_out(c);
}

void wisp_conn_pause(wisp_conn_t *c)
{
    WISP__ASSERT_OWNER(c->net->loop);
    wisp__conn_pause_read(c, 1);
}

void wisp_conn_resume(wisp_conn_t *c)
{
    WISP__ASSERT_OWNER(c->net->loop);
    wisp__conn_pause_read(c, 0);
}

void wisp_conn_close(wisp_conn_t *c)
{
    WISP__ASSERT_OWNER(c->net->loop);
    if (c->state != WISP__C_OPEN)
        return;
    if (c->io.cb == connect_io_cb) {
        wisp__conn_abort(c, 0); /* still connecting: nothing to flush */
        return;
    }
    wisp__conn_close_graceful(c);
    if (c->state == WISP__C_LINGER && c->h &&
        !(c->flags & (WISP__CF_PROTO_INT | WISP__CF_NOTIFY))) {
        /* The owner is done with the connection now; the transport
         * flushes and lingers on its own. Tell the owner at the end of
         * the iteration (the resume list), not in this call. */
        c->flags |= WISP__CF_NOTIFY;
        c->close_reason = 0;
        list_resume(c);
    }
}

void wisp_conn_abort(wisp_conn_t *c)
{
    WISP__ASSERT_OWNER(c->net->loop);
    if (c->state != WISP__C_OPEN)
        return; /* closing on its own already (wisp_conn_close) */
    wisp__conn_abort(c, 0);
}

void wisp_conn_set_idle_timeout(wisp_conn_t *c, uint32_t ms)
{
    WISP__ASSERT_OWNER(c->net->loop);
    if (c->state != WISP__C_OPEN)
        return;
    c->idle_ms = ms;
    if (c->timeout_kind != WISP__T_WRITE)
        wisp__conn_deadline(c, ms, ms ? WISP__T_PROTO : WISP__T_NONE);
}

void wisp_conn_set_timeout(wisp_conn_t *c, uint32_t ms)
{
    WISP__ASSERT_OWNER(c->net->loop);
    if (c->state != WISP__C_OPEN)
        return;
    c->idle_ms = 0;
    if (c->timeout_kind != WISP__T_WRITE)
        wisp__conn_deadline(c, ms, ms ? WISP__T_PROTO : WISP__T_NONE);
}

wisp_loop_t *wisp_conn_loop(const wisp_conn_t *c)
{
    return c->net->loop;
}

/* ------------------------------------------------------------ connect */

/* A connection being set up runs under this built-in table until the
 * kernel says how the connect went: its on_close (in the call, as for
 * every built-in protocol) turns any failure — refused, timed out,
 * cancelled, server stopping — into one deferred call of the owner's
 * callback. Its io callback is connect_io_cb until then. */
typedef struct connecting {
    wisp__task task;             /* the deferred failure notification */
    wisp_conn_connect_cb cb;
    void *arg;
    const wisp_conn_handlers_t *h;
    void *harg;
    int err;
} connecting;

static size_t cp_data(wisp_conn_t *c, const char *d, size_t n, void *arg)
{
    (void)c, (void)d, (void)arg;
    return n; /* never called: the io does not read while connecting */
}

static void cp_notify(void *arg)
{
    connecting *k = arg;
    k->cb(NULL, k->err, k->arg);
    free(k);
}

static void cp_close(wisp_conn_t *c, int reason, void *arg)
{
    connecting *k = arg;
    /* reason 0 is wisp_conn_abort by the owner: a cancel. */
    k->err = reason == 0 ? -ECANCELED : reason;
    if (atomic_load(&c->net->loop->closing)) {
        free(k); /* wisp_loop_destroy: nothing of the loop runs again */
        return;
    }
    k->task.cb = cp_notify;
    k->task.arg = k;
    k->task.intrusive = 1;
    k->task.drop = free;
    wisp__loop_defer_node(c->net->loop, &k->task);
}

static const wisp__proto connect_proto = {
    {cp_data, NULL, cp_close, NULL, NULL}, NULL};

static void connect_io_cb(wisp__io *io, unsigned events)
{
    wisp_conn_t *c = (wisp_conn_t *)io;
    wisp_loop_t *loop = c->net->loop;
    (void)events;
    if (c->state != WISP__C_OPEN)
        return;
    int err = wisp__be_connect_result(loop, io);
    if (err == 0 && !(events & (WISP__EV_SEND | WISP__EV_HUP)))
        return;
    if (err < 0) {
        wisp__conn_abort(c, err);
        return;
    }
    connecting *k = c->harg;
    wisp_conn_connect_cb cb = k->cb;
    void *arg = k->arg;
    io->cb = conn_io_cb;
    wisp__conn_set_proto(c, k->h, k->harg, 0);
    free(k);
    io->edge = 1;
    err = wisp__io_want(loop, io, WISP__IO_RECV);
    if (err < 0) {
        /* The owner hears of it through its own on_close. */
        cb(c, 0, arg);
        wisp__conn_abort(c, err);
        return;
    }
    cb(c, 0, arg);
    if (c->state != WISP__C_CLOSED)
        flush_ev(c);
}

static int net_key = -1;
static pthread_once_t net_key_once = PTHREAD_ONCE_INIT;

static void own_net_free(void *arg)
{
    wisp__net_fini(arg);
    free(arg);
}

static void net_key_init(void)
{
    net_key = wisp_loop_key_create(own_net_free);
}

/* The transport of `loop`: the server's when a server runs the loop (its
 * end-of-iteration hook is ours), else one of our own, made on first use
 * and freed with the loop. NULL with *err set on failure. */
static wisp__net *net_of(wisp_loop_t *loop, int *err)
{
    if (loop->hook == end_iteration)
        return loop->hook_arg;
    pthread_once(&net_key_once, net_key_init);
    if (loop->hook || net_key < 0) {
        *err = loop->hook ? -EINVAL : -ENOMEM;
        return NULL;
    }
    wisp__net *n = malloc(sizeof *n);
    /* A bare loop's connections: the server's default write timeout and
     * a 1 MiB high-water mark. */
    wisp__net_conf cf = {30000, 1u << 20, 0};
    if (!n || wisp__net_init(n, loop, &cf) < 0) {
        free(n);
        *err = -ENOMEM;
        return NULL;
    }
    if (wisp_loop_set_data(loop, net_key, n) < 0) {
        own_net_free(n);
        *err = -ENOMEM;
        return NULL;
    }
    return n;
}

int wisp_conn_connect(wisp_loop_t *loop, const struct sockaddr *sa,
                      socklen_t salen, const wisp_conn_handlers_t *h,
                      void *harg, uint32_t timeout_ms,
                      wisp_conn_connect_cb cb, void *arg,
                      wisp_conn_t **pending)
{
    if (pending)
        *pending = NULL;
    if (!loop || !sa || !h || !h->on_data || !h->on_close || !cb ||
        salen > sizeof(struct sockaddr_storage))
        return -EINVAL;
    WISP__ASSERT_OWNER(loop);
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6 &&
        sa->sa_family != AF_UNIX)
        return -EAFNOSUPPORT;
    int err = 0;
    wisp__net *n = net_of(loop, &err);
    if (!n)
        return err;
    if (n->stopping)
        return WISP_ECLOSED;
    connecting *k = malloc(sizeof *k);
    if (!k)
        return -ENOMEM;
    memset(k, 0, sizeof *k);
    k->cb = cb;
    k->arg = arg;
    k->h = h;
    k->harg = harg;
    wisp_conn_t *c = wisp__conn_new(n, -1);
    if (!c) {
        free(k);
        return -ENOMEM;
    }
    c->peer_family = (uint8_t)sa->sa_family;
    wisp__conn_set_proto(c, &connect_proto.h, k, 1);
    c->io.cb = connect_io_cb;
    if (pending)
        *pending = c;
    err = wisp__be_connect(loop, &c->io, sa, salen);
    if (err == 0 || err == -EINPROGRESS) {
        /* Connected at once (a Unix socket) or under way: either way the
         * send event reports it, so the owner hears from the loop. */
        c->io.want = WISP__IO_SEND;
        c->io.edge = 0;
        err = wisp__be_add(loop, &c->io);
    }
    if (err < 0) {
        wisp__conn_abort(c, err); /* cb runs from the loop */
        return 0;
    }
    if (timeout_ms)
        wisp__conn_deadline(c, timeout_ms, WISP__T_PROTO);
    return 0;
}

int wisp_conn_set_handlers(wisp_conn_t *c, const wisp_conn_handlers_t *h,
                           void *arg)
{
    WISP__ASSERT_OWNER(c->net->loop);
    if (!h || !h->on_data || !h->on_close)
        return -EINVAL;
    if (c->state != WISP__C_OPEN)
        return WISP_ECLOSED;
    if (c->io.cb == connect_io_cb || (c->flags & WISP__CF_PROTO_INT))
        return WISP_ESTATE;
    wisp__conn_set_proto(c, h, arg, 0);
    return 0;
}
