/* Listeners: one SO_REUSEPORT TCP socket per loop (the kernel spreads
 * connections, no lock on accept), an optional Unix socket on loop 0,
 * and the accept path. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "server_int.h"
#include "wisp/log.h"

#define ACCEPT_BATCH 64

static int resolve(const char *host, uint16_t port,
                   struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof *ss);
    if (!host || !*host) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_addr = in6addr_any;
        a6->sin6_port = htons(port);
        *len = sizeof *a6;
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        *len = sizeof *a4;
        return 0;
    }
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    const char *h = host;
    char tmp[64];
    size_t hl = strlen(host);
    if (hl > 2 && host[0] == '[' && host[hl - 1] == ']' && hl - 2 < sizeof tmp) {
        memcpy(tmp, host + 1, hl - 2);
        tmp[hl - 2] = 0;
        h = tmp;
    }
    if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        *len = sizeof *a6;
        return 0;
    }
    if (strcmp(host, "localhost") == 0) {
        a4->sin_family = AF_INET;
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a4->sin_port = htons(port);
        *len = sizeof *a4;
        return 0;
    }
    return -EINVAL;
}

/* A listener of the loops' SO_REUSEPORT group, or (`probe`) the socket
 * that claims the address for this server first: bound without
 * SO_REUSEPORT and not listening, it fails with EADDRINUSE when anyone
 * listens on the address already (whatever their options), yet lets this
 * server's own group bind beside it (both have SO_REUSEADDR and the probe
 * does not listen). */
static int bind_one(wisp_server_t *srv, const struct sockaddr_storage *ss,
                    socklen_t len, int *fd_out, int probe)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    if (fd < 0)
        return -errno;
    int one = 1, zero = 0;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (!probe &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    if (bind(fd, (const struct sockaddr *)ss, len) < 0 ||
        (!probe && listen(fd, srv->cfg.backlog) < 0)) {
        int e = -errno;
        close(fd);
        return e;
    }
    *fd_out = fd;
    return 0;
}

static int listen_tcp(wisp_server_t *srv, int *fd_out, uint16_t *port_io,
                      int probe)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int r = resolve(srv->host, *port_io, &ss, &len);
    if (r < 0)
        return r;
    r = bind_one(srv, &ss, len, fd_out, probe);
    if (r == -EAFNOSUPPORT && (!srv->host || !*srv->host)) {
        /* No IPv6 here: fall back to IPv4 any. */
        r = resolve("0.0.0.0", *port_io, &ss, &len);
        if (r == 0)
            r = bind_one(srv, &ss, len, fd_out, probe);
    }
    if (r < 0)
        return r;
    if (*port_io == 0) {
        struct sockaddr_storage got;
        socklen_t gl = sizeof got;
        getsockname(*fd_out, (struct sockaddr *)&got, &gl);
        *port_io = got.ss_family == AF_INET6
                       ? ntohs(((struct sockaddr_in6 *)&got)->sin6_port)
                       : ntohs(((struct sockaddr_in *)&got)->sin_port);
    }
    return 0;
}

int wisp__listen_tcp(wisp_server_t *srv, int *fd_out, uint16_t *port_io)
{
    return listen_tcp(srv, fd_out, port_io, 0);
}

/* Claim the TCP address for this server alone, before its group binds
 * (reuse_port_shared in server.h): fails with -EADDRINUSE when anything
 * listens there. With port 0 the kernel picks the port here and the group
 * binds that one. Close the probe once the group listens: from then on
 * the group's own listeners make every later probe fail. Two exclusive
 * servers started at the same instant can both pass only if one probes
 * between the other's probe and its first listen() (microseconds). */
int wisp__listen_probe(wisp_server_t *srv, int *fd_out, uint16_t *port_io)
{
    return listen_tcp(srv, fd_out, port_io, 1);
}

int wisp__listen_unix(wisp_server_t *srv, int *fd_out)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    size_t l = strlen(srv->unix_path);
    if (l >= sizeof sun.sun_path)
        return -ENAMETOOLONG;
    memcpy(sun.sun_path, srv->unix_path, l);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    unlink(srv->unix_path); /* a stale socket from an earlier run */
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 ||
        listen(fd, srv->cfg.backlog) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    *fd_out = fd;
    return 0;
}

static void accept_resume(wisp_timer_t *t, void *arg)
{
    wisp__worker *w = arg;
    (void)t;
    if (w->stopping)
        return;
    if (w->lsn_tcp.fd >= 0)
        wisp__io_want(w->loop, &w->lsn_tcp, WISP__IO_RECV);
    if (w->lsn_unix.fd >= 0)
        wisp__io_want(w->loop, &w->lsn_unix, WISP__IO_RECV);
}

/* Accept up to `max` connections from `lsn`. Returns how many. */
static int accept_some(wisp__worker *w, wisp__io *lsn, int max)
{
    int n = 0;
    while (n < max) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(lsn->fd, (struct sockaddr *)&ss, &sl,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                errno == ENOMEM) {
                /* Out of descriptors: stop accepting for a moment rather
                 * than spin on a listener that stays readable. */
                wisp_log(WISP_LOG_WARN, "accept: %s; pausing 100 ms",
                         strerror(errno));
                wisp__io_want(w->loop, &w->lsn_tcp, 0);
                if (w->lsn_unix.fd >= 0)
                    wisp__io_want(w->loop, &w->lsn_unix, 0);
                wisp_timer_start(&w->accept_timer, 100, accept_resume, w);
            }
            break;
        }
        n++;
        if (w->nconns >= w->srv->cfg.max_connections) {
            close(fd); /* over the per-loop limit: refuse at once */
            continue;
        }
        wisp_conn_t *c = wisp__conn_new(w, fd);
        if (!c) {
            close(fd);
            continue;
        }
        c->peer_family = (uint8_t)ss.ss_family;
        if (ss.ss_family == AF_INET) {
            memcpy(c->peer_addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        } else if (ss.ss_family == AF_INET6) {
            memcpy(c->peer_addr, &((struct sockaddr_in6 *)&ss)->sin6_addr,
                   16);
        }
        if (ss.ss_family != AF_UNIX) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        wisp__conn_accepted(c);
    }
    return n;
}

static void on_tcp_listener(wisp__io *io, unsigned events)
{
    (void)events;
    wisp__worker *w =
        (wisp__worker *)((char *)io - offsetof(wisp__worker, lsn_tcp));
    accept_some(w, io, ACCEPT_BATCH);
}

static void on_unix_listener(wisp__io *io, unsigned events)
{
    (void)events;
    wisp__worker *w =
        (wisp__worker *)((char *)io - offsetof(wisp__worker, lsn_unix));
    accept_some(w, io, ACCEPT_BATCH);
}

void wisp__worker_start_accepting(wisp__worker *w)
{
    if (w->lsn_tcp.fd >= 0) {
        w->lsn_tcp.cb = on_tcp_listener;
        w->lsn_tcp.want = WISP__IO_RECV;
        wisp__be_add(w->loop, &w->lsn_tcp);
    }
    if (w->lsn_unix.fd >= 0) {
        w->lsn_unix.cb = on_unix_listener;
        w->lsn_unix.want = WISP__IO_RECV;
        wisp__be_add(w->loop, &w->lsn_unix);
    }
}

static void drain_close(wisp__worker *w, wisp__io *io)
{
    if (io->fd < 0)
        return;
    /* Closing a SO_REUSEPORT listener resets the connections still in its
     * accept queue: take them all first, then close. */
    while (accept_some(w, io, 1 << 20) > 0) {
    }
    wisp__be_del(w->loop, io);
    close(io->fd);
    io->fd = -1;
}

void wisp__worker_drain_and_close_listeners(wisp__worker *w)
{
    drain_close(w, &w->lsn_tcp);
    drain_close(w, &w->lsn_unix);
}
