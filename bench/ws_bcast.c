/* bench/ws_bcast.c — broadcast fan-out: time from sending one message to
 * its delivery to the last of many WebSocket sessions.
 *
 * Opens N sessions to PATH (default /ws/all on examples/echo: every
 * message is sent to every session on every loop), prints "ready N" and
 * waits for a line on stdin. With -s this process then sends M messages
 * on its first session, I ms apart; each carries its sequence number and
 * its send time (CLOCK_MONOTONIC, shared by all processes on the
 * machine). Every process reads all its sessions (epoll) until each has
 * received all M messages (or T seconds pass) and prints one line per
 * message:
 *     msg SEQ SENT_NS FIRST_NS LAST_NS RECEIVED
 * (SENT_NS read from the message itself). bench/ws_bcast.sh starts
 * several of these (a process holds at most ~20,000 fds) and combines
 * the lines: time to last delivery = max(LAST_NS) - SENT_NS.
 *
 *   ws_bcast -p PORT -n N [-s] [-m M] [-i MS] [-z BYTES] [-t SECONDS] [-u PATH]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct sess {
    int fd;
    uint32_t got;      /* messages received */
    uint32_t rlen;
    uint8_t rbuf[512];
} sess;

static void die(const char *what)
{
    fprintf(stderr, "ws_bcast: %s: %s\n", what, strerror(errno));
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int open_session(int port, const char *path)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n", path);
    if (write(fd, req, (size_t)n) != n)
        die("write");
    char b[1024];
    size_t got = 0;
    while (got < 4 || memcmp(b + got - 4, "\r\n\r\n", 4) != 0) {
        if (got == sizeof b || read(fd, b + got, 1) != 1)
            die("handshake");
        got++;
    }
    if (strncmp(b, "HTTP/1.1 101", 12) != 0) {
        errno = EPROTO;
        die("no 101");
    }
    return fd;
}

int main(int argc, char **argv)
{
    int port = 0, n = 1000, sender = 0, o;
    unsigned msgs = 10, interval_ms = 200;
    size_t size = 64;
    double secs = 30;
    const char *path = "/ws/all";
    while ((o = getopt(argc, argv, "p:n:sm:i:z:t:u:")) != -1) {
        switch (o) {
        case 'p': port = atoi(optarg); break;
        case 'n': n = atoi(optarg); break;
        case 's': sender = 1; break;
        case 'm': msgs = (unsigned)atoi(optarg); break;
        case 'i': interval_ms = (unsigned)atoi(optarg); break;
        case 'z': size = (size_t)atol(optarg); break;
        case 't': secs = atof(optarg); break;
        case 'u': path = optarg; break;
        default: return 2;
        }
    }
    if (!port || n < 1 || msgs < 1 || size < 16 || size > 125)
        return 2;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    sess *ss = calloc((size_t)n, sizeof *ss);
    uint64_t *sent = calloc(msgs, sizeof *sent);
    uint64_t *first = calloc(msgs, sizeof *first);
    uint64_t *last = calloc(msgs, sizeof *last);
    uint32_t *count = calloc(msgs, sizeof *count);
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        ss[i].fd = open_session(port, path);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, ss[i].fd, &ev) < 0)
            die("epoll_ctl");
    }
    printf("ready %d\n", n);
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        return 1;

    uint64_t end = now_ns() + (uint64_t)(secs * 1e9);
    unsigned next = 0;
    uint64_t next_at = now_ns();
    uint64_t done_sessions = 0;
    struct epoll_event evs[256];
    while (done_sessions < (uint64_t)n && now_ns() < end) {
        if (sender && next < msgs && now_ns() >= next_at) {
            uint8_t f[6 + 125];
            f[0] = 0x82;
            f[1] = (uint8_t)(0x80 | size);
            memset(f + 2, 0, 4); /* zero mask */
            memset(f + 6, 'x', size);
            uint64_t t = now_ns();
            uint64_t seq = next;
            memcpy(f + 6, &seq, 8);
            memcpy(f + 14, &t, 8);
            sent[next] = t;
            if (write(ss[0].fd, f, 6 + size) != (ssize_t)(6 + size))
                die("send");
            next++;
            next_at = t + (uint64_t)interval_ms * 1000000u;
        }
        int wait_ms = 100;
        if (sender && next < msgs) {
            uint64_t t = now_ns();
            wait_ms = next_at > t ? (int)((next_at - t) / 1000000u) : 0;
        }
        int k = epoll_wait(ep, evs, 256, wait_ms);
        uint64_t t = now_ns();
        for (int e = 0; e < k; e++) {
            sess *s = &ss[evs[e].data.u32];
            ssize_t r = read(s->fd, s->rbuf + s->rlen,
                             sizeof s->rbuf - s->rlen);
            if (r <= 0) {
                errno = r == 0 ? ECONNRESET : errno;
                die("read");
            }
            s->rlen += (uint32_t)r;
            uint32_t off = 0;
            while (s->rlen - off >= 2) {
                uint32_t pl = s->rbuf[off + 1] & 0x7f;
                if (pl > 125 || s->rlen - off < 2 + pl)
                    break;
                uint64_t seq;
                memcpy(&seq, s->rbuf + off + 2, 8);
                if (pl >= 16 && seq < msgs) {
                    memcpy(&sent[seq], s->rbuf + off + 10, 8);
                    if (!count[seq]++)
                        first[seq] = t;
                    last[seq] = t;
                    if (++s->got == msgs)
                        done_sessions++;
                }
                off += 2 + pl;
            }
            memmove(s->rbuf, s->rbuf + off, s->rlen - off);
            s->rlen -= off;
        }
    }
    for (unsigned i = 0; i < msgs; i++)
        printf("msg %u %llu %llu %llu %u\n", i, (unsigned long long)sent[i],
               (unsigned long long)first[i], (unsigned long long)last[i],
               count[i]);
    fflush(stdout);
    for (int i = 0; i < n; i++)
        close(ss[i].fd);
    return 0;
}
