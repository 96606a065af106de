/* The parent's ends of a child's pipes.
 *
 * stdout / stderr: registered for RECV while not paused; each readable
 * event reads (wisp__be_read, into the loop's receive buffer) and hands
 * the bytes to on_output, at most READ_BUDGET per event so one chatty
 * child cannot hold the loop (the io is level-triggered: the rest is
 * reported again). Pausing takes the io out of the backend altogether:
 * a pipe whose writer has gone reports a hang-up even with no interest
 * set, which would wake the loop on every turn.
 *
 * stdin: a write goes straight to the pipe when nothing is queued;
 * what the pipe does not take is copied into a queue (bounded by
 * stdin_limit) and the io is registered for SEND until the queue is
 * written. Out of the backend while the queue is empty, for the same
 * hang-up reason. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proc/proc_int.h"

#define READ_BUDGET (256u * 1024u)
#define IOV_BATCH 64

static wisp_process_t *owner_of(wisp__pipe *s)
{
    return (wisp_process_t *)(void *)((char *)(s - s->which) -
                                      offsetof(wisp_process_t, pipes));
}

void wisp__pipe_drop_queue(wisp__pipe *s)
{
    while (s->head) {
        wisp__pseg *g = s->head;
        s->head = g->next;
        free(g);
    }
    s->tail = NULL;
    s->queued = 0;
}

void wisp__pipe_close(wisp_process_t *p, int which)
{
    wisp__pipe *s = &p->pipes[which];
    wisp__pipe_drop_queue(s);
    if (s->io.fd >= 0)
        wisp__be_close(p->loop, &s->io);
    s->ended = 1;
}

void wisp__pipe_close_raw(wisp_process_t *p)
{
    for (int i = 0; i < 3; i++) {
        wisp__pipe *s = &p->pipes[i];
        wisp__pipe_drop_queue(s);
        if (s->io.fd >= 0)
            close(s->io.fd);
        s->io.fd = -1;
        s->io.added = 0;
        s->ended = 1;
    }
}

/* ------------------------------------------------------------ output */

/* Hand bytes (or the end: NULL, 0) to the owner. Returns nonzero when
 * the stream must not be read on (released, paused or ended inside). */
static int deliver(wisp_process_t *p, wisp__pipe *s, const char *data,
                   size_t len)
{
    if (p->on_output)
        p->on_output(p, s->which, data, len, p->arg);
    return p->released || s->paused || s->io.fd < 0;
}

static void on_readable(wisp__io *io, unsigned events)
{
    (void)events;
    wisp__pipe *s = (wisp__pipe *)(void *)io;
    wisp_process_t *p = owner_of(s);
    size_t got = 0;
    while (!s->paused && io->fd >= 0 && !p->released) {
        char *data;
        ssize_t n = wisp__be_read(p->loop, io, &data);
        if (n == -EAGAIN)
            return;
        if (n == -EINTR)
            continue;
        if (n <= 0) {
            /* End of stream, or an error reading it: either way no
             * more bytes will come. */
            wisp__be_close(p->loop, io);
            s->ended = 1;
            deliver(p, s, NULL, 0);
            return;
        }
        if (deliver(p, s, data, (size_t)n))
            return;
        got += (size_t)n;
        if (got >= READ_BUDGET)
            return;
    }
}

int wisp__pipe_start(wisp_process_t *p, int which)
{
    wisp__pipe *s = &p->pipes[which];
    if (s->io.fd < 0) {
        s->ended = 1;
        return 0;
    }
    if (which == 0)
        return 0; /* stdin: registered when something waits */
    s->io.cb = on_readable;
    s->io.want = WISP__IO_RECV;
    return wisp__be_add(p->loop, &s->io);
}

static wisp__pipe *out_pipe(wisp_process_t *p, int fd, int *err)
{
    if ((fd != 1 && fd != 2) || p->pipes[fd].io.cb != on_readable) {
        *err = -EINVAL; /* not an output stream, or not a pipe */
        return NULL;
    }
    wisp__pipe *s = &p->pipes[fd];
    if (s->io.fd < 0) {
        *err = WISP_ECLOSED;
        return NULL;
    }
    return s;
}

int wisp_process_pause(wisp_process_t *p, int fd)
{
    WISP__ASSERT_OWNER(p->loop);
    int err = 0;
    wisp__pipe *s = out_pipe(p, fd, &err);
    if (!s)
        return err;
    s->paused = 1;
    wisp__be_del(p->loop, &s->io);
    return 0;
}

int wisp_process_resume(wisp_process_t *p, int fd)
{
    WISP__ASSERT_OWNER(p->loop);
    int err = 0;
    wisp__pipe *s = out_pipe(p, fd, &err);
    if (!s)
        return err;
    if (!s->paused)
        return 0;
    s->paused = 0;
    int r = wisp__be_add(p->loop, &s->io);
    return r < 0 ? r : 0;
}

/* ------------------------------------------------------------ input */

/* The child closed its stdin (or writing failed otherwise): drop the
 * queue and close our end. */
static void broken(wisp_process_t *p, wisp__pipe *s, int err)
{
    wisp__pipe_drop_queue(s);
    wisp__be_close(p->loop, &s->io);
    s->ended = 1;
    s->err = err;
}

static void on_writable(wisp__io *io, unsigned events)
{
    (void)events;
    wisp__pipe *s = (wisp__pipe *)(void *)io;
    wisp_process_t *p = owner_of(s);
    if (io->fd < 0 || !s->head)
        return;
    while (s->head) {
        struct iovec iov[IOV_BATCH];
        int n = 0;
        for (wisp__pseg *g = s->head; g && n < IOV_BATCH; g = g->next) {
            iov[n].iov_base = g->data + g->off;
            iov[n].iov_len = g->len - g->off;
            n++;
        }
        ssize_t w = wisp__be_write(p->loop, io, iov, n);
        if (w == -EAGAIN)
            return;
        if (w == -EINTR)
            continue;
        if (w < 0) {
            broken(p, s, w == -EPIPE ? -EPIPE : (int)w);
            if (p->on_drain)
                p->on_drain(p, s->err, p->arg);
            return;
        }
        size_t left = (size_t)w;
        s->queued -= left;
        while (left) {
            wisp__pseg *g = s->head;
            size_t in = g->len - g->off;
            if (left < in) {
                g->off += left;
                break;
            }
            left -= in;
            s->head = g->next;
            free(g);
        }
        if (!s->head)
            s->tail = NULL;
    }
    wisp__be_del(p->loop, io);
    if (s->close_after) {
        wisp__be_close(p->loop, io);
        s->ended = 1;
    }
    if (p->on_drain)
        p->on_drain(p, 0, p->arg);
}

int wisp_process_write(wisp_process_t *p, const void *data, size_t len)
{
    WISP__ASSERT_OWNER(p->loop);
    wisp__pipe *s = &p->pipes[0];
    if (!p->loop || p->released)
        return WISP_ECLOSED;
    if (s->io.fd < 0)
        return s->err ? s->err : WISP_ECLOSED;
    if (s->close_after)
        return WISP_ECLOSED;
    if (len == 0)
        return 0;
    if (len > p->stdin_limit || s->queued > p->stdin_limit - len)
        return -ENOBUFS;
    const char *d = data;
    while (!s->head && len) {
        struct iovec iov = {(void *)d, len};
        ssize_t w = wisp__be_write(p->loop, &s->io, &iov, 1);
        if (w == -EAGAIN)
            break;
        if (w == -EINTR)
            continue;
        if (w < 0) {
            broken(p, s, w == -EPIPE ? -EPIPE : (int)w);
            return s->err;
        }
        d += w;
        len -= (size_t)w;
    }
    if (len == 0)
        return 0;
    wisp__pseg *g = malloc(sizeof *g + len);
    if (!g) {
        /* Part of the bytes may be in the pipe already: the stream is
         * cut, so close it rather than leave a hole. */
        broken(p, s, -ENOMEM);
        return -ENOMEM;
    }
    memcpy(g->data, d, len);
    g->next = NULL;
    g->off = 0;
    g->len = len;
    if (s->tail)
        s->tail->next = g;
    else
        s->head = g;
    s->tail = g;
    s->queued += len;
    if (!s->io.added) {
        s->io.cb = on_writable;
        s->io.want = WISP__IO_SEND;
        int r = wisp__be_add(p->loop, &s->io);
        if (r < 0) {
            broken(p, s, r);
            return r;
        }
    }
    return 0;
}

size_t wisp_process_queued(const wisp_process_t *p)
{
    return p->pipes[0].queued;
}

void wisp_process_close_stdin(wisp_process_t *p)
{
    WISP__ASSERT_OWNER(p->loop);
    wisp__pipe *s = &p->pipes[0];
    if (!p->loop || s->io.fd < 0 || s->close_after)
        return;
    if (s->head) {
        s->close_after = 1;
        return;
    }
    wisp__be_close(p->loop, &s->io);
    s->ended = 1;
}
