/* bench/ws_load.c — WebSocket echo load: C connections, each sending
 * masked binary messages of S bytes with D in flight (D = 1: strict
 * ping-pong), for T seconds, one thread with poll(). Prints messages/s
 * and the p50/p99 round trip (per message, from its send to its echo).
 * Sends never block: what the socket does not take waits in the
 * connection's account and goes when poll says it can, while the loader
 * keeps reading every connection (a loader that blocks in send on one
 * connection while the server waits for it to read another deadlocks
 * with deep pipelines of large messages, and measures its own stalls).
 * Every round trip is counted, in a fixed log-linear histogram.
 *
 * poll() over every connection, not epoll, on purpose: the loader's pace
 * sets how many echoes pile up per connection between two of its visits,
 * so how many messages each of its writes carries, and Node's ws is very
 * sensitive to that (a leaner epoll loader, writing smaller batches, got
 * 172 k msg/s out of it instead of 290 k, while wisp and uWS did not
 * change). Node is measured with the loader under which it does best.
 *
 *   ws_load -p PORT [-c CONNS] [-s SIZE] [-d DEPTH] [-t SECONDS] [-u PATH]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct conn {
    int fd;
    uint8_t *rbuf;
    size_t rlen, rcap;
    uint64_t sent_at[256]; /* ring of send times, DEPTH <= 256 */
    unsigned head, inflight;
    size_t owed;           /* bytes of whole frames not yet sent */
    size_t off;            /* offset of the next byte within its frame */
} conn;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *m)
{
    fprintf(stderr, "ws_load: %s (%s)\n", m, strerror(errno));
    exit(1);
}

static uint8_t *frame;
static size_t frame_len;

static void build_frame(size_t size)
{
    frame = malloc(size + 14);
    size_t h = 0;
    frame[h++] = 0x82;
    if (size < 126) {
        frame[h++] = (uint8_t)(0x80 | size);
    } else if (size < 65536) {
        frame[h++] = 0x80 | 126;
        frame[h++] = (uint8_t)(size >> 8);
        frame[h++] = (uint8_t)size;
    } else {
        frame[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            frame[h++] = (uint8_t)(size >> (8 * i));
    }
    uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(frame + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < size; i++)
        frame[h + i] = (uint8_t)('a' + i % 26) ^ mask[i % 4];
    frame_len = h + size;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                struct pollfd pf = {fd, POLLOUT, 0};
                poll(&pf, 1, 1000);
                continue;
            }
            die("send");
        }
        c += w;
        n -= (size_t)w;
    }
}

static uint8_t *batch;  /* DEPTH copies of the frame, back to back */
static size_t batch_len;

/* Send what `c` owes without blocking. The owed stream is the frame
 * repeated, so it is always a contiguous run of `batch` starting at the
 * offset within the frame. */
static void flush_owed(conn *c)
{
    while (c->owed) {
        size_t n = batch_len - c->off;
        if (n > c->owed)
            n = c->owed;
        ssize_t w = send(c->fd, batch + c->off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            die("send");
        }
        c->owed -= (size_t)w;
        c->off = (c->off + (size_t)w) % frame_len;
    }
}

/* Round trips in a log-linear histogram: 32 sub-buckets per power of
 * two of nanoseconds (about 3 % resolution), every message counted. */
#define SUB 32
static uint64_t hist[64 * SUB];

static void record(uint64_t ns)
{
    if (ns < SUB) {
        hist[ns]++;
        return;
    }
    int e = 63 - __builtin_clzll(ns);        /* ns in [2^e, 2^(e+1)) */
    unsigned sub = (unsigned)((ns >> (e - 5)) & (SUB - 1)); /* next 5 bits */
    hist[(unsigned)(e - 4) * SUB + sub]++;
}

/* The value at quantile q (the middle of its bucket). */
static double quantile(uint64_t total, double q)
{
    uint64_t want = (uint64_t)((double)total * q), seen = 0;
    for (unsigned i = 0; i < 64 * SUB; i++) {
        seen += hist[i];
        if (seen > want && hist[i]) {
            if (i < SUB)
                return (double)i;
            unsigned e = i / SUB + 4, sub = i % SUB;
            double lo = (double)(1ull << e) * (1.0 + sub / (double)SUB);
            return lo + (double)(1ull << e) / SUB / 2;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int port = 0, conns = 100, o;
    size_t size = 32;
    unsigned depth = 1;
    double secs = 5;
    const char *path = "/ws";
    while ((o = getopt(argc, argv, "p:c:s:d:t:u:")) != -1) {
        switch (o) {
        case 'p': port = atoi(optarg); break;
        case 'c': conns = atoi(optarg); break;
        case 's': size = (size_t)atol(optarg); break;
        case 'd': depth = (unsigned)atoi(optarg); break;
        case 't': secs = atof(optarg); break;
        case 'u': path = optarg; break;
        default: return 2;
        }
    }
    if (!port || depth < 1 || depth > 256 || conns < 1)
        return 2;
    build_frame(size);
    conn *cs = calloc((size_t)conns, sizeof *cs);
    struct pollfd *pf = calloc((size_t)conns, sizeof *pf);
    char req[512];
    int rl = snprintf(req, sizeof req,
                      "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n", path);
    for (int i = 0; i < conns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
            die("connect");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        send_all(fd, req, (size_t)rl);
        char b[1024];
        size_t n = 0;
        while (n < 4 || memcmp(b + n - 4, "\r\n\r\n", 4) != 0) {
            if (read(fd, b + n, 1) != 1)
                die("handshake");
            n++;
        }
        if (strncmp(b, "HTTP/1.1 101", 12) != 0)
            die("no 101");
        cs[i].fd = fd;
        cs[i].rcap = size + 64 + 65536;
        cs[i].rbuf = malloc(cs[i].rcap);
        pf[i].fd = fd;
        pf[i].events = POLLIN;
    }
    uint64_t msgs = 0;
    batch_len = frame_len * depth;
    batch = malloc(batch_len);
    for (unsigned k = 0; k < depth; k++)
        memcpy(batch + (size_t)k * frame_len, frame, frame_len);
    uint64_t t0 = now_ns(), end = t0 + (uint64_t)(secs * 1e9);
    for (int i = 0; i < conns; i++) {
        for (unsigned k = 0; k < depth; k++)
            cs[i].sent_at[(cs[i].head + cs[i].inflight++) % 256] = now_ns();
        cs[i].owed = (size_t)depth * frame_len;
        flush_owed(&cs[i]);
        pf[i].events = cs[i].owed ? POLLIN | POLLOUT : POLLIN;
    }
    while (now_ns() < end) {
        if (poll(pf, (nfds_t)conns, 1000) <= 0)
            continue;
        for (int i = 0; i < conns; i++) {
            conn *c = &cs[i];
            if (pf[i].revents & POLLOUT)
                flush_owed(c);
            if (!(pf[i].revents & POLLIN)) {
                pf[i].events = c->owed ? POLLIN | POLLOUT : POLLIN;
                continue;
            }
            unsigned replies = 0;
            ssize_t r = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
            if (r <= 0)
                die("read");
            c->rlen += (size_t)r;
            size_t off = 0;
            for (;;) {
                if (c->rlen - off < 2)
                    break;
                uint8_t *p = c->rbuf + off;
                size_t hl = 2, pl = p[1] & 0x7f;
                if (pl == 126) {
                    if (c->rlen - off < 4)
                        break;
                    pl = (size_t)p[2] << 8 | p[3];
                    hl = 4;
                } else if (pl == 127) {
                    if (c->rlen - off < 10)
                        break;
                    pl = 0;
                    for (int k = 0; k < 8; k++)
                        pl = pl << 8 | p[2 + k];
                    hl = 10;
                }
                if (c->rlen - off < hl + pl)
                    break;
                if (pl != size)
                    die("wrong echo size");
                off += hl + pl;
                record(now_ns() - c->sent_at[c->head % 256]);
                c->head++;
                c->inflight--;
                msgs++;
                replies++;
            }
            memmove(c->rbuf, c->rbuf + off, c->rlen - off);
            c->rlen -= off;
            /* Refill the window in one write: a loader that pays a
             * syscall per message measures itself, not the server. */
            if (replies) {
                uint64_t t = now_ns();
                for (unsigned k = 0; k < replies; k++)
                    c->sent_at[(c->head + c->inflight++) % 256] = t;
                c->owed += (size_t)replies * frame_len;
                flush_owed(c);
                replies = 0;
            }
            pf[i].events = c->owed ? POLLIN | POLLOUT : POLLIN;
        }
    }
    double el = (double)(now_ns() - t0) / 1e9;
    printf("%.0f msg/s  p50 %.1f us  p99 %.1f us  (%d conns, %zu B, %u in flight, %.1f s)\n",
           (double)msgs / el, quantile(msgs, 0.50) / 1e3,
           quantile(msgs, 0.99) / 1e3, conns, size, depth, el);
    return 0;
}
