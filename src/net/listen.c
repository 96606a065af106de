/* Listeners: one SO_REUSEPORT TCP socket per loop (the kernel spreads
 * connections, no lock on accept), an optional Unix socket on loop 0,
 * and the accept path. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net/conn.h"
#include "net/listen.h"
#include "net/proxy.h"
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
static int bind_one(int backlog, const struct sockaddr_storage *ss,
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
        (!probe && listen(fd, backlog) < 0)) {
        int e = -errno;
        close(fd);
        return e;
    }
    *fd_out = fd;
    return 0;
}

static int listen_tcp(const char *host, int backlog, int *fd_out,
                      uint16_t *port_io, int probe)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int r = resolve(host, *port_io, &ss, &len);
    if (r < 0)
        return r;
    r = bind_one(backlog, &ss, len, fd_out, probe);
    if (r == -EAFNOSUPPORT && (!host || !*host)) {
        /* No IPv6 here: fall back to IPv4 any. */
        r = resolve("0.0.0.0", *port_io, &ss, &len);
        if (r == 0)
            r = bind_one(backlog, &ss, len, fd_out, probe);
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

int wisp__listen_tcp(const char *host, int backlog, int *fd_out,
                     uint16_t *port_io)
{
    return listen_tcp(host, backlog, fd_out, port_io, 0);
}

/* Claim the TCP address for this server alone, before its group binds
 * (reuse_port_shared in server.h): fails with -EADDRINUSE when anything
 * listens there. With port 0 the kernel picks the port here and the group
 * binds that one. Close the probe once the group listens: from then on
 * the group's own listeners make every later probe fail. Two exclusive
 * servers started at the same instant can both pass only if one probes
 * between the other's probe and its first listen() (microseconds). */
int wisp__listen_probe(const char *host, int *fd_out, uint16_t *port_io)
{
    return listen_tcp(host, 0, fd_out, port_io, 1);
}

int wisp__listen_unix(const char *path, int backlog, int *fd_out)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    size_t l = strlen(path);
    if (l >= sizeof sun.sun_path)
        return -ENAMETOOLONG;
    memcpy(sun.sun_path, path, l);
    /* Something at the path already: a socket left by an earlier run
     * that nobody listens on any more is removed; a live one (another
     * server answers) or anything that is not a socket is left alone:
     * -EADDRINUSE, as for a TCP port. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return -EADDRINUSE;
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe < 0)
            return -errno;
        int live = connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0 ||
                   errno == EAGAIN; /* listening, backlog full */
        close(probe);
        if (live)
            return -EADDRINUSE;
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 ||
        listen(fd, backlog) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    *fd_out = fd;
    return 0;
}

void wisp__listener_init(wisp__listener *l, wisp__net *n, int fd,
                         const wisp_conn_handlers_t *h, void *harg,
                         int proto_int, uint32_t first_timeout_ms)
{
    memset(l, 0, sizeof *l);
    l->io.fd = fd;
    l->net = n;
    l->h = h;
    l->harg = harg;
    l->proto_int = (uint8_t)(proto_int != 0);
    l->nodelay = 1;
    l->first_timeout_ms = first_timeout_ms;
    wisp_timer_init(n->loop, &l->pause_timer);
}

static void accept_resume(wisp_timer_t *t, void *arg)
{
    wisp__listener *l = arg;
    (void)t;
    if (l->net->stopping || l->io.fd < 0)
        return;
    wisp__io_want(l->net->loop, &l->io, WISP__IO_RECV);
}

/* Accept up to `max` connections from `l`. Returns how many. */
static int accept_some(wisp__listener *l, int max)
{
    wisp__net *net = l->net;
    int n = 0;
    while (n < max) {
        struct sockaddr_storage ss;
        socklen_t sl;
        int fd = wisp__be_accept(net->loop, &l->io, &ss, &sl, l->nodelay);
        if (fd < 0) {
            if (fd == -EINTR || fd == -ECONNABORTED)
                continue;
            if (fd == -EMFILE || fd == -ENFILE || fd == -ENOBUFS ||
                fd == -ENOMEM) {
                /* Out of descriptors: stop accepting for a moment rather
                 * than spin on a listener that stays readable. */
                wisp_log(WISP_LOG_WARN, "accept: %s; pausing 100 ms",
                         strerror(-fd));
                wisp__io_want(net->loop, &l->io, 0);
                wisp_timer_start(&l->pause_timer, 100, accept_resume, l);
            }
            break;
        }
        n++;
        wisp_conn_t *c = net->nconns >= net->conf.max_connections
                             ? NULL : wisp__conn_new(net, fd);
        if (!c) {
            /* Over the per-loop limit (or out of memory): refuse at
             * once. Not yet a connection: a bare descriptor. */
            wisp__io tmp = {.fd = fd};
            wisp__be_close(net->loop, &tmp);
            continue;
        }
        c->peer_family = (uint8_t)ss.ss_family;
        if (ss.ss_family == AF_INET) {
            memcpy(c->peer_addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
        } else if (ss.ss_family == AF_INET6) {
            memcpy(c->peer_addr, &((struct sockaddr_in6 *)&ss)->sin6_addr,
                   16);
        }
        if (l->proxy)
            wisp__proxy_start(c, l);
        else
            wisp__conn_start(c, l->h, l->harg, l->proto_int,
                             l->first_timeout_ms);
    }
    return n;
}

static void on_listener(wisp__io *io, unsigned events)
{
    (void)events;
    accept_some((wisp__listener *)io, ACCEPT_BATCH);
}

int wisp__listener_start(wisp__listener *l)
{
    if (l->io.fd < 0)
        return 0;
    l->io.cb = on_listener;
    l->io.want = WISP__IO_RECV;
    return wisp__be_add(l->net->loop, &l->io);
}

void wisp__listener_drain_close(wisp__listener *l)
{
    wisp_timer_stop(&l->pause_timer);
    if (l->io.fd < 0)
        return;
    /* Closing a SO_REUSEPORT listener resets the connections still in its
     * accept queue: take them all first, then close. */
    while (accept_some(l, 1 << 20) > 0) {
    }
    wisp__be_close(l->net->loop, &l->io);
}

void wisp__listener_close(wisp__listener *l)
{
    if (l->net && l->net->loop)
        wisp_timer_stop(&l->pause_timer);
    if (l->io.fd < 0)
        return;
    if (l->net && l->net->loop) {
        wisp__be_close(l->net->loop, &l->io);
    } else {
        close(l->io.fd);
        l->io.fd = -1;
    }
}
