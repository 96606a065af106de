/* bench/idle.c — open many idle keep-alive connections.
 *
 * Opens COUNT connections to HOST:PORT; on each it sends one `GET /` and
 * reads the whole response (must be 200 with a 13-byte body), then leaves
 * the connection open and idle.  With -w PATH it sends a WebSocket upgrade
 * request for PATH instead and reads the whole 101 response (status line,
 * headers, nothing after them), so each connection becomes an idle
 * WebSocket session.  When all are open it prints
 * "open COUNT" on stdout and waits for a line on stdin (or EOF); then it
 * checks that every connection is still open (a server that dropped idle
 * connections is reported), prints "still-open K", closes all and exits.
 *
 * The soft RLIMIT_NOFILE is raised to the hard limit; COUNT + 16 fds are
 * needed.  Connections are opened in waves of up to 256 concurrent
 * non-blocking connects so 10,000 take about a second.
 *
 *   usage: idle -p PORT [-c COUNT] [-h HOST] [-w PATH]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define WAVE 256

static void die(const char *a, const char *b)
{
    fprintf(stderr, "idle: %s%s%s\n", a, b ? ": " : "", b ? b : "");
    exit(1);
}

/* Returns 1 when buf[0..len) holds a complete 200 response with a
 * 13-byte body, 0 when more bytes are needed, -1 when it is bad. */
static int response_state(const char *buf, size_t len)
{
    const char *e = memmem(buf, len, "\r\n\r\n", 4);
    if (!e)
        return len > 4000 ? -1 : 0;
    if (len < 12 || memcmp(buf, "HTTP/1.1 200", 12) != 0)
        return -1;
    long cl = -1;
    for (const char *l = memchr(buf, '\n', (size_t)(e - buf)); l && l < e;
         l = memchr(l + 1, '\n', (size_t)(e - l))) {
        if (strncasecmp(l + 1, "content-length:", 15) == 0)
            cl = strtol(l + 16, NULL, 10);
    }
    if (cl != 13)
        return -1;
    size_t hl = (size_t)(e + 4 - buf);
    if (len < hl + 13)
        return 0;
    if (len > hl + 13 || memcmp(buf + hl, "Hello, World!", 13) != 0)
        return -1;
    return 1;
}

/* The same for a WebSocket upgrade: a 101 with
 * "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" (the answer to the
 * RFC 6455 sample key we send) and no byte after the headers. */
static int upgrade_state(const char *buf, size_t len)
{
    const char *e = memmem(buf, len, "\r\n\r\n", 4);
    if (!e)
        return len > 4000 ? -1 : 0;
    if (len < 12 || memcmp(buf, "HTTP/1.1 101", 12) != 0)
        return -1;
    int accept = 0;
    for (const char *l = memchr(buf, '\n', (size_t)(e - buf)); l && l < e;
         l = memchr(l + 1, '\n', (size_t)(e - l))) {
        if (strncasecmp(l + 1, "sec-websocket-accept:", 21) == 0) {
            const char *v = l + 22;
            while (*v == ' ')
                v++;
            accept = strncmp(v, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", 28) == 0;
        }
    }
    if (!accept)
        return -1;
    return len == (size_t)(e + 4 - buf) ? 1 : -1;
}

typedef struct {
    int fd;
    int stage; /* 0 connecting, 1 reading, 2 done */
    size_t have;
    char buf[512];
} slot;

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1";
    const char *ws_path = NULL;
    int port = 0, count = 10000, o;
    while ((o = getopt(argc, argv, "p:c:h:w:")) != -1) {
        switch (o) {
        case 'p': port = atoi(optarg); break;
        case 'c': count = atoi(optarg); break;
        case 'h': host = optarg; break;
        case 'w': ws_path = optarg; break;
        default:
            fprintf(stderr, "usage: idle -p PORT [-c COUNT] [-h HOST] [-w PATH]\n");
            return 2;
        }
    }
    if (port <= 0 || count <= 0)
        die("need -p PORT and -c COUNT > 0", NULL);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)count + 16) {
        char m[64];
        snprintf(m, sizeof m, "%llu < %d", (unsigned long long)rl.rlim_cur, count + 16);
        die("RLIMIT_NOFILE hard limit too low", m);
    }

    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        die("bad host (IPv4 literal expected)", host);
    char req[512];
    int rl_len;
    if (ws_path)
        rl_len = snprintf(req, sizeof req,
                          "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                          "Sec-WebSocket-Version: 13\r\n\r\n", ws_path, host, port);
    else
        rl_len = snprintf(req, sizeof req, "GET / HTTP/1.1\r\nHost: %s:%d\r\n\r\n", host, port);
    if (rl_len < 0 || (size_t)rl_len >= sizeof req)
        die("request too long", NULL);

    int *fds = malloc(sizeof(int) * (size_t)count);
    static slot wave[WAVE];
    struct pollfd pfd[WAVE];
    if (!fds)
        die("out of memory", NULL);

    int opened = 0;
    while (opened < count) {
        int n = count - opened < WAVE ? count - opened : WAVE;
        for (int i = 0; i < n; i++) {
            int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
            if (fd < 0)
                die("socket", strerror(errno));
            wave[i].fd = fd;
            wave[i].stage = 0;
            wave[i].have = 0;
            if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
                wave[i].stage = 1;
                if (send(fd, req, (size_t)rl_len, MSG_NOSIGNAL) != rl_len)
                    die("send", strerror(errno));
            } else if (errno != EINPROGRESS) {
                die("connect", strerror(errno));
            }
        }
        int left = n;
        while (left) {
            for (int i = 0; i < n; i++) {
                pfd[i].fd = wave[i].stage == 2 ? -1 : wave[i].fd;
                pfd[i].events = wave[i].stage == 0 ? POLLOUT : POLLIN;
            }
            int r = poll(pfd, (nfds_t)n, 10000);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                die("poll", r == 0 ? "no progress for 10 s (server stalled?)" : strerror(errno));
            for (int i = 0; i < n; i++) {
                slot *s = &wave[i];
                if (s->stage == 2 || !pfd[i].revents)
                    continue;
                if (s->stage == 0) {
                    int err = 0;
                    socklen_t el = sizeof err;
                    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                    if (err)
                        die("connect", strerror(err));
                    if (send(s->fd, req, (size_t)rl_len, MSG_NOSIGNAL) != rl_len)
                        die("send", strerror(errno));
                    s->stage = 1;
                    continue;
                }
                ssize_t got = recv(s->fd, s->buf + s->have, sizeof s->buf - s->have, 0);
                if (got < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                if (got <= 0)
                    die("recv", got == 0 ? "closed by server" : strerror(errno));
                s->have += (size_t)got;
                int st = ws_path ? upgrade_state(s->buf, s->have) : response_state(s->buf, s->have);
                if (st < 0)
                    die("bad response", NULL);
                if (st == 1) {
                    s->stage = 2;
                    left--;
                }
            }
        }
        for (int i = 0; i < n; i++)
            fds[opened + i] = wave[i].fd;
        opened += n;
    }

    printf("open %d\n", opened);
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin)) {
        /* EOF: go on */
    }

    /* Still open?  A readable idle socket means EOF or reset. */
    int still = 0;
    for (int i = 0; i < count; i++) {
        char c;
        ssize_t r = recv(fds[i], &c, 1, MSG_DONTWAIT);
        if (r < 0 && errno == EAGAIN)
            still++;
    }
    printf("still-open %d\n", still);
    fflush(stdout);
    for (int i = 0; i < count; i++)
        close(fds[i]);
    return 0;
}
