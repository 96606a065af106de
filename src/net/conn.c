/* Accepted connections: allocation from per-loop slabs, the receive path,
 * corked output and the write queue, deadlines, two-phase close.
 *
 * Output: everything written while the loop handles one event goes into
 * the worker's cork (one buffer per loop) and leaves in one send when the
 * event is done (wisp__flush), so 16 pipelined responses cost one
 * syscall. Bytes the kernel does not take move to the connection's write
 * queue, and the connection waits for writability. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/http_int.h"
#include "net/conn.h"
#include "server_int.h"

#define SLAB_CONNS 64
#define INBUF_POOL_MAX 64
#define IOV_MAX_BATCH 64

static void conn_io_cb(wisp__io *io, unsigned events);
static void conn_timer_cb(wisp_timer_t *t, void *arg);
static void conn_finish_close(wisp_conn_t *c, int reason);
static void start_linger(wisp_conn_t *c);

/* ------------------------------------------------------------ allocation */

static int grow_slabs(wisp__worker *w)
{
    if (w->nslabs == w->slab_cap) {
        uint32_t cap = w->slab_cap ? w->slab_cap * 2 : 16;
        void **s = realloc(w->slabs, cap * sizeof *s);
        if (!s)
            return -ENOMEM;
        w->slabs = s;
        w->slab_cap = cap;
    }
    wisp_conn_t *slab = malloc(SLAB_CONNS * sizeof *slab);
    if (!slab)
        return -ENOMEM;
    w->slabs[w->nslabs++] = slab;
    for (int i = SLAB_CONNS - 1; i >= 0; i--) {
        slab[i].later = w->conn_free;
        w->conn_free = &slab[i];
    }
    return 0;
}

wisp_conn_t *wisp__conn_new(wisp__worker *w, int fd)
{
    if (!w->conn_free && grow_slabs(w) < 0)
        return NULL;
    wisp_conn_t *c = w->conn_free;
    w->conn_free = c->later;
    uint32_t gen = c->gen;
    memset(c, 0, sizeof *c);
    c->gen = gen + 1;
    c->io.fd = fd;
    c->io.cb = conn_io_cb;
    c->w = w;
    wisp_timer_init(w->loop, &c->timer);
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    WISP__STAT_ADD(&w->stats, conns_opened, 1);
    return c;
}

void wisp__conn_accepted(wisp_conn_t *c)
{
    c->io.want = WISP__IO_RECV;
    c->io.edge = 1;
    if (wisp__be_add(c->w->loop, &c->io) < 0) {
        wisp__conn_abort(c, -errno);
        return;
    }
    /* A connection that never sends a request is a slowloris too. */
    wisp__conn_deadline(c, c->w->srv->cfg.header_timeout_ms, WISP__T_HEAD);
}

/* ------------------------------------------------------------ input */

static char *inbuf_get(wisp__worker *w)
{
    void *b = w->inbuf_free;
    if (b) {
        w->inbuf_free = *(void **)b;
        w->inbuf_free_len--;
        return b;
    }
    return malloc(WISP__INBUF_SIZE);
}

void wisp__inbuf_put(wisp__worker *w, char *b, uint32_t cap)
{
    if (cap == WISP__INBUF_SIZE && w->inbuf_free_len < INBUF_POOL_MAX) {
        *(void **)b = w->inbuf_free;
        w->inbuf_free = b;
        w->inbuf_free_len++;
    } else {
        free(b);
    }
}

int wisp__in_reserve(wisp_conn_t *c, size_t extra)
{
    size_t need = (size_t)c->in_len + extra;
    if (need <= c->in_cap)
        return 0;
    if (need > UINT32_MAX - 16)
        return -ENOMEM;
    char *old = c->in;
    char *nb;
    uint32_t cap;
    if (!old && need <= WISP__INBUF_SIZE) {
        nb = inbuf_get(c->w);
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
        /* A request in flight points into the old buffer. */
        if (c->state < WISP__C_UPGRADED && c->ex)
            wisp__ex_rebase(c->ex, old, c->in_cap, nb);
        wisp__inbuf_put(c->w, old, c->in_cap);
    }
    c->in = nb;
    c->in_cap = cap;
    return 0;
}

void wisp__in_release(wisp_conn_t *c)
{
    if (c->in) {
        wisp__inbuf_put(c->w, c->in, c->in_cap);
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
    if (c->w->cork_owner == c)
        n += c->w->cork_len;
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
        close(s->fd);
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
    uint32_t ms = c->w->srv->cfg.write_timeout_ms;
    if (c->wq_head)
        wisp__conn_deadline(c, ms, WISP__T_WRITE);
}

/* Try to send the write queue. Returns 0, or a negative errno when the
 * connection failed (it is then aborted). */
static int wq_drain(wisp_conn_t *c)
{
    wisp_loop_t *loop = c->w->loop;
    while (c->wq_head) {
        wisp__wseg *s = c->wq_head;
        if (s->kind == WISP__SEG_FILE) {
            off_t off = (off_t)s->file_off;
            size_t chunk = s->len > (1u << 30) ? (1u << 30) : (size_t)s->len;
            ssize_t n = sendfile(c->io.fd, s->fd, &off, chunk);
            if (n < 0) {
                if (errno == EAGAIN)
                    break;
                return -errno;
            }
            if (n == 0) {
                /* The file shrank under us: the promised length cannot be
                 * delivered, so the connection cannot continue. */
                return -EIO;
            }
            WISP__STAT_ADD(&c->w->stats, bytes_out, n);
            s->file_off += (uint64_t)n;
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
        WISP__STAT_ADD(&c->w->stats, bytes_out, n);
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

static void after_write(wisp_conn_t *c, uint64_t before)
{
    wisp__worker *w = c->w;
    if (c->wq_head) {
        wisp__io_want(w->loop, &c->io, c->io.want | WISP__IO_SEND);
        if (c->wq_bytes < before || c->timeout_kind != WISP__T_WRITE)
            write_progress(c);
        return;
    }
    if (c->io.want & WISP__IO_SEND)
        wisp__io_want(w->loop, &c->io, c->io.want & ~WISP__IO_SEND);
    if (c->timeout_kind == WISP__T_WRITE)
        wisp__conn_deadline(c, 0, WISP__T_NONE);
    if (c->state == WISP__C_LINGER) {
        if (c->flags & WISP__CF_CLOSE_AFTER) {
            c->flags &= (uint8_t)~WISP__CF_CLOSE_AFTER;
            start_linger(c);
        }
        return;
    }
    if (c->state == WISP__C_UPGRADED) {
        if (c->h && c->h->on_drain)
            c->h->on_drain(c, c->harg);
        if (c->state == WISP__C_UPGRADED && c->idle_ms &&
            c->timeout_kind == WISP__T_NONE)
            wisp__conn_deadline(c, c->idle_ms, WISP__T_USER);
    } else if (c->state != WISP__C_CLOSED) {
        wisp__http_drained(c);
    }
}

/* Send the cork (if `c` owns it) ahead of `extra` (optional). Returns 0
 * or a negative errno (the connection is aborted). */
static int send_with_cork(wisp_conn_t *c, const struct iovec *extra,
                          int nextra, int ref, wisp_free_cb done, void *arg)
{
    wisp__worker *w = c->w;
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
    after_write(c, before + total);
    return 0;
}

void wisp__flush(wisp_conn_t *c)
{
    if (c->w->cork_owner != c || c->state == WISP__C_CLOSED)
        return;
    send_with_cork(c, NULL, 0, 0, NULL, NULL);
}

static void take_cork(wisp_conn_t *c)
{
    wisp__worker *w = c->w;
    if (w->cork_owner && w->cork_owner != c)
        wisp__flush(w->cork_owner);
    w->cork_owner = c;
}

char *wisp__out_reserve(wisp_conn_t *c, size_t len)
{
    wisp__worker *w = c->w;
    if (len > WISP__CORK_SIZE)
        return NULL;
    take_cork(c);
    if (w->cork_len + len > WISP__CORK_SIZE) {
        send_with_cork(c, NULL, 0, 0, NULL, NULL);
        if (c->state == WISP__C_CLOSED)
            return NULL;
        w->cork_owner = c;
    }
    return w->cork + w->cork_len;
}

void wisp__out_commit(wisp_conn_t *c, size_t len)
{
    c->w->cork_len += len;
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
    return send_with_cork(c, &iov, 1, 0, NULL, NULL) < 0 ? WISP_ECLOSED
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
    return send_with_cork(c, &iov, 1, 1, done, arg) < 0 ? WISP_ECLOSED
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
    after_write(c, before + len);
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
    after_write(c, before);
}

/* Offer the retained input (new bytes already appended) to the owner. */
static void upgraded_retained(wisp_conn_t *c)
{
    size_t used = c->h->on_data(c, c->in, c->in_len, c->harg);
    if (c->state != WISP__C_UPGRADED)
        return;
    wisp__in_consume(c, used < c->in_len ? used : c->in_len);
}

void wisp__conn_upgraded_input(wisp_conn_t *c, const char *data, size_t n)
{
    if (c->in_len) {
        if (wisp__in_reserve(c, n) < 0) {
            wisp__conn_abort(c, -ENOMEM);
            return;
        }
        memcpy(c->in + c->in_len, data, n);
        c->in_len += (uint32_t)n;
        upgraded_retained(c);
        return;
    }
    /* Nothing retained: the owner reads the loop's buffer in place, and
     * only what it leaves is copied into the connection's. */
    size_t used = c->h->on_data(c, data, n, c->harg);
    if (c->state != WISP__C_UPGRADED || used >= n)
        return;
    if (wisp__in_reserve(c, n - used) < 0) {
        wisp__conn_abort(c, -ENOMEM);
        return;
    }
    memcpy(c->in, data + used, n - used);
    c->in_len = (uint32_t)(n - used);
}

/* Edge-triggered: a read that filled the whole buffer may have left more
 * in the kernel, and no new edge will say so. Read again, up to a budget
 * of bytes per event; past that the connection goes on the worker's list
 * and continues at the end of the iteration, so one fast sender cannot
 * starve the others. A budget of bytes, not of reads: the loop's buffer
 * is large (a whole 64 KiB WebSocket frame and its header fit one read),
 * and one read of it must not let a connection take more per turn than
 * four reads of 64 KiB did. */
#define READ_BUDGET (256 * 1024)

static size_t on_readable_once(wisp_conn_t *c, int *full);

static void on_readable(wisp_conn_t *c)
{
    for (size_t got = 0; got < READ_BUDGET;) {
        int full = 0;
        got += on_readable_once(c, &full);
        if (!full || c->state == WISP__C_CLOSED ||
            !(c->io.want & WISP__IO_RECV))
            return; /* drained, closed, or paused (resuming re-polls) */
    }
    c->flags |= WISP__CF_MORE_INPUT;
    if (!(c->flags & WISP__CF_RESUME)) {
        c->flags |= WISP__CF_RESUME;
        c->later = c->w->resume_list;
        c->w->resume_list = c;
    }
}

void wisp__conn_read_more(wisp_conn_t *c)
{
    c->flags &= (uint8_t)~WISP__CF_MORE_INPUT;
    if (c->state != WISP__C_CLOSED && (c->io.want & WISP__IO_RECV))
        on_readable(c);
}

/* A taken-over connection waiting for the rest of a large message (its
 * owner left bytes unconsumed, and the buffer has room) reads straight
 * into that buffer instead of the loop's: one copy less per byte. The
 * buffer grows only as the owner's unconsumed bytes need (the WebSocket
 * layer bounds those by max_frame), so this is no unbounded read-ahead. */
#define DIRECT_READ_MIN (16 * 1024)

static size_t on_readable_once(wisp_conn_t *c, int *full)
{
    char *data;
    ssize_t n;
    if (c->state == WISP__C_UPGRADED && c->in_len &&
        c->in_cap - c->in_len >= DIRECT_READ_MIN) {
        size_t room = c->in_cap - c->in_len;
        n = wisp__be_recv_into(c->w->loop, &c->io, c->in + c->in_len, room);
        *full = n > 0 && (size_t)n == room;
        if (n == -EAGAIN)
            return 0;
        if (n <= 0) {
            wisp__conn_abort(c, n == 0 ? -ECONNRESET : (int)n);
            return 0;
        }
        WISP__STAT_ADD(&c->w->stats, bytes_in, n);
        if (c->timeout_kind == WISP__T_USER && c->idle_ms)
            c->deadline_ms = c->w->loop->now_ms + c->idle_ms;
        c->in_len += (uint32_t)n;
        upgraded_retained(c);
        if (c->state != WISP__C_CLOSED)
            wisp__flush(c);
        return (size_t)n;
    }
    n = wisp__be_recv(c->w->loop, &c->io, &data);
    *full = n > 0 && (size_t)n == c->w->loop->rbuf_cap;
    if (n == -EAGAIN)
        return 0;
    if (n <= 0) {
        int reason = n == 0 ? -ECONNRESET : (int)n;
        if (c->state == WISP__C_LINGER || c->state == WISP__C_UPGRADED ||
            c->state == WISP__C_IDLE) {
            wisp__conn_abort(c, n == 0 && c->state != WISP__C_UPGRADED
                                    ? 0 : reason);
            return 0;
        }
        c->flags |= WISP__CF_PEER_EOF;
        wisp__http_conn_closed(c, reason);
        return 0;
    }
    WISP__STAT_ADD(&c->w->stats, bytes_in, n);
    switch (c->state) {
    case WISP__C_LINGER:
        return (size_t)n; /* discard: we only wait for the peer's close */
    case WISP__C_UPGRADED:
        if (c->timeout_kind == WISP__T_USER && c->idle_ms)
            c->deadline_ms = c->w->loop->now_ms + c->idle_ms;
        wisp__conn_upgraded_input(c, data, (size_t)n);
        break;
    default:
        wisp__http_on_recv(c, data, (size_t)n);
        break;
    }
    if (c->state != WISP__C_CLOSED)
        wisp__flush(c);
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
        on_readable(c);
    } else if (events & WISP__EV_HUP) {
        /* The peer went away while we were not reading (a pending
         * response, backpressure): treat it as an abort, as nginx does
         * with a client that closes before its response. */
        if (c->state == WISP__C_LINGER || c->state == WISP__C_IDLE)
            wisp__conn_abort(c, 0);
        else if (c->state == WISP__C_UPGRADED)
            wisp__conn_abort(c, -ECONNRESET);
        else
            wisp__http_conn_closed(c, -ECONNRESET);
    }
}

void wisp__conn_update_read(wisp_conn_t *c)
{
    if (c->state == WISP__C_CLOSED)
        return;
    unsigned want = c->io.want & WISP__IO_SEND;
    int paused = (c->flags & (WISP__CF_PAUSED | WISP__CF_USER_PAUSE)) ||
                 c->state == WISP__C_PENDING;
    want |= paused ? WISP__IO_HUP : WISP__IO_RECV;
    wisp__io_want(c->w->loop, &c->io, want);
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
    uint64_t due = c->w->loop->now_ms + ms;
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
    uint64_t now = c->w->loop->now_ms;
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
    case WISP__T_USER:
        if (c->state == WISP__C_UPGRADED && c->h->on_timeout)
            c->h->on_timeout(c, c->harg);
        else
            wisp__conn_abort(c, -ETIMEDOUT);
        break;
    default:
        wisp__http_timeout(c, kind);
        break;
    }
    if (c->state != WISP__C_CLOSED)
        wisp__flush(c);
}

/* ------------------------------------------------------------ close */

void wisp__conn_close_graceful(wisp_conn_t *c)
{
    if (c->state == WISP__C_CLOSED || c->state == WISP__C_LINGER)
        return;
    wisp__flush(c);
    if (c->state == WISP__C_CLOSED)
        return;
    c->state = WISP__C_LINGER;
    wisp__in_release(c);
    if (c->wq_head) {
        /* Shut down once the queue is out (wisp__http_drained). */
        c->flags |= WISP__CF_CLOSE_AFTER;
        wisp__io_want(c->w->loop, &c->io, WISP__IO_SEND | WISP__IO_RECV);
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
    shutdown(c->io.fd, SHUT_WR);
    c->flags |= WISP__CF_SHUT_WR;
    wisp__io_want(c->w->loop, &c->io, WISP__IO_RECV);
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
    wisp__worker *w = c->w;
    uint8_t old = c->state;
    c->state = WISP__C_CLOSED;
    if (w->cork_owner == c) {
        w->cork_owner = NULL;
        w->cork_len = 0;
    }
    wisp_timer_stop(&c->timer);
    wisp__be_del(w->loop, &c->io);
    close(c->io.fd);
    c->io.fd = -1;
    wq_clear(c);
    if (old == WISP__C_UPGRADED) {
        if (c->h && c->h->on_close)
            c->h->on_close(c, reason, c->harg);
    } else if (old != WISP__C_UPGRADED && c->ex) {
        wisp__http_orphan(c, reason);
    }
    wisp__in_release(c);
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
    wisp__worker_conn_gone(w);
}

/* ------------------------------------------------------------ worker */

void wisp__worker_end_iteration(wisp_loop_t *loop, void *arg)
{
    wisp__worker *w = arg;
    (void)loop;
    /* Connections whose async response finished continue with their
     * pipelined requests, and those with input left in the kernel read
     * on. Only the ones listed now: a connection that lists itself again
     * (still more input) waits for the next iteration, after the others
     * and the next poll have had their turn — otherwise one client that
     * keeps sending would hold the loop here. */
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
        if (c->flags & WISP__CF_MORE_INPUT)
            wisp__conn_read_more(c);
        else
            wisp__http_resume(c);
        if (c->state != WISP__C_CLOSED)
            wisp__flush(c);
        else if (!(c->flags & WISP__CF_RESUME)) {
            /* already on close_list via conn_finish_close */
        }
    }
    if (w->cork_owner)
        wisp__flush(w->cork_owner);
    if (w->resume_list)
        wisp__loop_keep_awake(w->loop); /* poll, but do not sleep */
    while (w->close_list) {
        wisp_conn_t *c = w->close_list;
        w->close_list = c->later;
        c->later = w->conn_free;
        w->conn_free = c;
    }
    if (w->alog_len)
        wisp__alog_flush(w);
}

void wisp__worker_free_conns(wisp__worker *w)
{
    while (w->conns)
        wisp__conn_abort(w->conns, WISP_ECLOSED);
    w->resume_list = NULL;
    w->close_list = NULL;
    for (uint32_t i = 0; i < w->nslabs; i++)
        free(w->slabs[i]);
    free(w->slabs);
    w->slabs = NULL;
    w->nslabs = w->slab_cap = 0;
    w->conn_free = NULL;
    wisp__fixpool_destroy(&w->ws_pool); /* sessions went with their conns */
    while (w->inbuf_free) {
        void *b = w->inbuf_free;
        w->inbuf_free = *(void **)b;
        free(b);
    }
    w->inbuf_free_len = 0;
    while (w->ex_free) {
        wisp__exchange *ex = w->ex_free;
        w->ex_free = (wisp__exchange *)ex->conn;
        free(ex);
    }
    w->ex_free_len = 0;
}

/* wisp_conn_* public API for taken-over connections. */

int wisp_conn_write(wisp_conn_t *c, const void *data, size_t len)
{
    WISP__ASSERT_OWNER(c->w->loop);
    if (c->state != WISP__C_UPGRADED)
        return WISP_ECLOSED;
    return wisp__out(c, data, len);
}

int wisp_conn_write_ref(wisp_conn_t *c, const void *data, size_t len,
                        wisp_free_cb done, void *arg)
{
    WISP__ASSERT_OWNER(c->w->loop);
    if (c->state != WISP__C_UPGRADED) {
        if (done)
            done(arg);
        return WISP_ECLOSED;
    }
    return wisp__out_ref(c, data, len, done, arg);
}

size_t wisp_conn_buffered(const wisp_conn_t *c)
{
    return (size_t)wisp__pending_out(c);
}

void wisp_conn_pause(wisp_conn_t *c)
{
    WISP__ASSERT_OWNER(c->w->loop);
    c->flags |= WISP__CF_USER_PAUSE;
    wisp__conn_update_read(c);
}

void wisp_conn_resume(wisp_conn_t *c)
{
    WISP__ASSERT_OWNER(c->w->loop);
    c->flags &= (uint8_t)~WISP__CF_USER_PAUSE;
    wisp__conn_update_read(c);
}

void wisp_conn_close(wisp_conn_t *c)
{
    WISP__ASSERT_OWNER(c->w->loop);
    if (c->state != WISP__C_UPGRADED)
        return;
    const wisp_conn_handlers_t *h = c->h;
    void *harg = c->harg;
    c->h = NULL;
    c->harg = NULL; /* shares its bytes with the (absent) exchange */
    wisp__conn_close_graceful(c);
    if (h && h->on_close)
        h->on_close(c, 0, harg);
}

void wisp_conn_abort(wisp_conn_t *c)
{
    WISP__ASSERT_OWNER(c->w->loop);
    wisp__conn_abort(c, 0);
}

void wisp_conn_set_idle_timeout(wisp_conn_t *c, uint32_t ms)
{
    WISP__ASSERT_OWNER(c->w->loop);
    c->idle_ms = ms;
    if (c->timeout_kind != WISP__T_WRITE)
        wisp__conn_deadline(c, ms, ms ? WISP__T_USER : WISP__T_NONE);
}

void wisp_conn_set_timeout(wisp_conn_t *c, uint32_t ms)
{
    WISP__ASSERT_OWNER(c->w->loop);
    c->idle_ms = 0;
    if (c->timeout_kind != WISP__T_WRITE)
        wisp__conn_deadline(c, ms, ms ? WISP__T_USER : WISP__T_NONE);
}

wisp_loop_t *wisp_conn_loop(const wisp_conn_t *c)
{
    return c->w->loop;
}
