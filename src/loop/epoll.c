/* The epoll backend: level-triggered readiness turned into the socket
 * operations of loop_int.h. Interest changes reach the kernel only when
 * the wanted set really changes (wisp__io_want), so a keep-alive request
 * costs epoll_wait + recv + send and nothing else. */
#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "loop/loop_int.h"

#define MAX_EVENTS 256

/* The hot-path calls go through syscall(2): the libc wrappers of recv,
 * sendmsg and epoll_wait are pthread cancellation points, and entering and
 * leaving the cancellation state costs ~90 instructions per request,
 * while wisp threads are never cancelled. epoll_pwait exists on every
 * architecture (epoll_wait does not on arm64). */
static inline long sys_epoll_wait(int epfd, struct epoll_event *ev, int n,
                                  int timeout)
{
    /* syscall() is variadic: pass every integer as a long, or the upper
     * half of its register is whatever was there. */
    return syscall(SYS_epoll_pwait, (long)epfd, ev, (long)n, (long)timeout,
                   NULL, (long)8);
}

static uint32_t to_epoll(const wisp__io *io)
{
    unsigned want = io->want;
    /* Edge-triggered sockets are not polled again by every epoll_wait
     * while they stay readable (level-triggered ones are). */
    uint32_t ev = io->edge ? EPOLLET : 0;
    if (want & WISP__IO_RECV)
        ev |= EPOLLIN | EPOLLRDHUP;
    if (want & WISP__IO_SEND)
        ev |= EPOLLOUT;
    if (want & WISP__IO_HUP)
        ev |= EPOLLRDHUP;
    return ev;
}

int wisp__ep_init(wisp_loop_t *loop)
{
    loop->backend_fd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->backend_fd < 0)
        return -errno;
    loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->wake_fd < 0)
        return -errno;
    loop->events = calloc(MAX_EVENTS, sizeof(struct epoll_event));
    if (!loop->events)
        return -ENOMEM;
    loop->max_events = MAX_EVENTS;
    return 0;
}

void wisp__ep_fini(wisp_loop_t *loop)
{
    if (loop->backend_fd >= 0)
        close(loop->backend_fd);
    if (loop->wake_fd >= 0)
        close(loop->wake_fd);
    loop->backend_fd = loop->wake_fd = -1;
    free(loop->events);
    loop->events = NULL;
}

int wisp__be_fd(const wisp_loop_t *loop)
{
    /* An epoll descriptor is itself pollable: readable while its ready
     * list is not empty (the wake eventfd is in it). The io_uring
     * backend prepares submissions after its wait, which a host loop
     * polling the ring would never send: embedding is epoll's. */
    if (loop->backend != WISP__BE_EPOLL)
        return -EOPNOTSUPP;
    return loop->backend_fd;
}

int wisp__ep_add(wisp_loop_t *loop, wisp__io *io)
{
    struct epoll_event ev = {.events = to_epoll(io), .data.ptr = io};
    if (epoll_ctl(loop->backend_fd, EPOLL_CTL_ADD, io->fd, &ev) < 0)
        return -errno;
    io->armed = io->want;
    io->added = 1;
    return 0;
}

int wisp__ep_update(wisp_loop_t *loop, wisp__io *io)
{
    if (!io->added || io->armed == io->want)
        return 0;
    struct epoll_event ev = {.events = to_epoll(io), .data.ptr = io};
    if (epoll_ctl(loop->backend_fd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
        return -errno;
    io->armed = io->want;
    return 0;
}

void wisp__ep_del(wisp_loop_t *loop, wisp__io *io)
{
    if (!io->added)
        return;
    /* Closing the fd removes it from epoll too, but an explicit DEL keeps
     * a dup'ed fd (sendfile, fork) from still reporting events. */
    epoll_ctl(loop->backend_fd, EPOLL_CTL_DEL, io->fd, NULL);
    io->added = 0;
    io->armed = 0;
}

int wisp__ep_wait(wisp_loop_t *loop, int timeout_ms)
{
    struct epoll_event *evs = loop->events;
    int n = (int)sys_epoll_wait(loop->backend_fd, evs, loop->max_events,
                               timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : -errno;
    /* Events are handled with the time they arrived at, not the time the
     * loop went to sleep: deadlines set now must not start in the past. */
    loop->now_ms = wisp__clock_ms();
    for (int i = 0; i < n; i++) {
        wisp__io *io = evs[i].data.ptr;
        if (!io)
            continue; /* cleared by an earlier callback in this batch */
        uint32_t e = evs[i].events;
        unsigned out = 0;
        if (e & EPOLLIN)
            out |= WISP__EV_RECV;
        /* A hang-up is reported as such even to a reader: after a short
         * read the reader must still read on to see the EOF or error,
         * which an edge-triggered socket will not signal again. */
        if (e & EPOLLRDHUP)
            out |= (io->want & WISP__IO_RECV) ? WISP__EV_RECV | WISP__EV_HUP
                                              : WISP__EV_HUP;
        if (e & EPOLLOUT)
            out |= WISP__EV_SEND;
        if (e & (EPOLLERR | EPOLLHUP))
            out |= WISP__EV_HUP | WISP__EV_RECV;
        io->cb(io, out);
    }
    return 0;
}

void wisp__be_wake(wisp_loop_t *loop)
{
    uint64_t one = 1;
    ssize_t r = write(loop->wake_fd, &one, sizeof one);
    (void)r; /* EAGAIN means the counter is already non-zero: awake. */
}

void wisp__be_wake_ack(wisp_loop_t *loop)
{
    uint64_t v;
    ssize_t r = read(loop->wake_fd, &v, sizeof v);
    (void)r;
}

ssize_t wisp__ep_recv(wisp_loop_t *loop, wisp__io *io, char **data)
{
    ssize_t n = syscall(SYS_recvfrom, (long)io->fd, loop->rbuf,
                        (long)loop->rbuf_cap, 0L, NULL, NULL);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    *data = loop->rbuf;
    return n;
}

ssize_t wisp__ep_recv_into(wisp_loop_t *loop, wisp__io *io, char *buf,
                           size_t cap)
{
    (void)loop;
    ssize_t n = syscall(SYS_recvfrom, (long)io->fd, buf, (long)cap, 0L, NULL,
                        NULL);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return n;
}

ssize_t wisp__be_send(wisp_loop_t *loop, wisp__io *io,
                      const struct iovec *iov, int iovcnt)
{
    (void)loop;
    if (iovcnt == 1) {
        /* One buffer (the usual corked batch): send(2) skips importing an
         * iovec and a msghdr in the kernel. */
        ssize_t n = syscall(SYS_sendto, (long)io->fd, iov[0].iov_base,
                            (long)iov[0].iov_len,
                            (long)(MSG_NOSIGNAL | MSG_DONTWAIT), NULL, 0L);
        if (n < 0)
            return errno == EWOULDBLOCK ? -EAGAIN : -errno;
        return n;
    }
    struct msghdr mh;
    memset(&mh, 0, sizeof mh);
    mh.msg_iov = (struct iovec *)iov;
    mh.msg_iovlen = (size_t)iovcnt;
    ssize_t n = syscall(SYS_sendmsg, (long)io->fd, &mh,
                        (long)(MSG_NOSIGNAL | MSG_DONTWAIT));
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return n;
}

ssize_t wisp__be_read(wisp_loop_t *loop, wisp__io *io, char **data)
{
    ssize_t n = syscall(SYS_read, (long)io->fd, loop->rbuf,
                        (long)loop->rbuf_cap);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    *data = loop->rbuf;
    return n;
}

ssize_t wisp__be_write(wisp_loop_t *loop, wisp__io *io,
                       const struct iovec *iov, int iovcnt)
{
    (void)loop;
    ssize_t n = syscall(SYS_writev, (long)io->fd, iov, (long)iovcnt);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    return n;
}

int wisp__be_accept(wisp_loop_t *loop, wisp__io *io,
                    struct sockaddr_storage *ss, socklen_t *len,
                    int nodelay)
{
    (void)loop;
    *len = sizeof *ss;
    int fd = accept4(io->fd, (struct sockaddr *)ss, len,
                     SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    if (nodelay && ss->ss_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

ssize_t wisp__be_sendfile(wisp_loop_t *loop, wisp__io *io, int file_fd,
                          uint64_t *off, size_t len)
{
    (void)loop;
    off_t o = (off_t)*off;
    ssize_t n = sendfile(io->fd, file_fd, &o, len);
    if (n < 0)
        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
    *off = (uint64_t)o;
    return n;
}

int wisp__be_shutdown(wisp_loop_t *loop, wisp__io *io)
{
    (void)loop;
    return shutdown(io->fd, SHUT_WR) < 0 ? -errno : 0;
}

void wisp__ep_close(wisp_loop_t *loop, wisp__io *io)
{
    if (io->fd < 0)
        return;
    wisp__ep_del(loop, io);
    close(io->fd);
    io->fd = -1;
}

int wisp__be_connect(wisp_loop_t *loop, wisp__io *io,
                     const struct sockaddr *sa, socklen_t len)
{
    (void)loop;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd < 0) {
        io->fd = -1;
        return -errno;
    }
    io->fd = fd;
    if (sa->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (connect(fd, sa, len) == 0)
        return 0;
    int e = errno;
    if (e == EINPROGRESS)
        return -EINPROGRESS;
    close(fd);
    io->fd = -1;
    return -e;
}

int wisp__be_connect_result(wisp_loop_t *loop, wisp__io *io)
{
    (void)loop;
    int err = 0;
    socklen_t l = sizeof err;
    if (getsockopt(io->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
        return -errno;
    return -err;
}
