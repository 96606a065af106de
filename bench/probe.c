/* bench/probe.c — latency of GET / at a fixed request rate.
 *
 * A closed-loop load generator that saturates the server (wrk) measures
 * how the server's CPU is shared out: its p99 is mostly queueing behind
 * the other requests in flight. To see whether the loop itself is ever
 * held up (by blocking work it should have handed to the pool, by long
 * batches of completions), this probe sends requests at a fixed, modest
 * rate — RATE per second spread evenly over CONNS keep-alive
 * connections, each request sent at its scheduled time whether or not
 * the previous one has been answered (requests pipeline on a connection,
 * so a stall of the server is not hidden by the probe waiting it out:
 * every request sent during the stall counts it) — and prints p50, p99
 * and p99.9 of the time from the request's write to its whole response.
 * The probe sleeps between sends (with a 1 ns timer slack) rather than
 * spinning: a spinning probe would take its whole core and be
 * time-sliced against any other load generator sharing that core, and
 * those slices would show up as latency.
 *
 *   probe -p PORT [-r RATE] [-c CONNS] [-t SECONDS] [-u PATH]
 * Prints: "probe N req  p50 X us  p99 Y us  p999 Z us  max M us".
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
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAXC 64
#define RING 1024

typedef struct pc {
    int fd;
    uint64_t due[RING];   /* send times of the requests in flight */
    unsigned head, n;
    char buf[8192];
    size_t len;
} pc;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *w)
{
    fprintf(stderr, "probe: %s: %s\n", w, strerror(errno));
    exit(1);
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Length of the first complete response in b[0..n), 0 if incomplete. */
static size_t response_len(const char *b, size_t n)
{
    const char *e = memmem(b, n, "\r\n\r\n", 4);
    if (!e)
        return 0;
    size_t head = (size_t)(e - b) + 4;
    const char *cl = memmem(b, head, "Content-Length:", 15);
    if (!cl)
        cl = memmem(b, head, "content-length:", 15);
    size_t body = cl ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
    return n >= head + body ? head + body : 0;
}

int main(int argc, char **argv)
{
    int port = 0, conns = 4, o;
    double rate = 2000, secs = 5;
    const char *path = "/";
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    while ((o = getopt(argc, argv, "p:r:c:t:u:")) != -1) {
        switch (o) {
        case 'p': port = atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'c': conns = atoi(optarg); break;
        case 't': secs = atof(optarg); break;
        case 'u': path = optarg; break;
        default: return 2;
        }
    }
    if (!port || conns < 1 || conns > MAXC || rate <= 0)
        return 2;
    static pc cs[MAXC];
    struct pollfd pf[MAXC];
    char req[256];
    int rl = snprintf(req, sizeof req,
                      "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", path);
    for (int i = 0; i < conns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)port)};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
            die("connect");
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        cs[i].fd = fd;
        pf[i].fd = fd;
        pf[i].events = POLLIN;
    }
    size_t cap = (size_t)(rate * secs) + 16, nl = 0;
    uint64_t *lat = malloc(cap * sizeof *lat);
    uint64_t gap = (uint64_t)(1e9 / rate);
    uint64_t t0 = now_ns() + 10000000u, end = t0 + (uint64_t)(secs * 1e9);
    uint64_t next = t0;
    unsigned k = 0;
    for (;;) {
        uint64_t t = now_ns();
        while (next <= t && next < end) {
            pc *c = &cs[k++ % (unsigned)conns];
            if (c->n == RING)
                die("too many requests in flight");
            uint64_t sent = now_ns();
            if (write(c->fd, req, (size_t)rl) != rl)
                die("write");
            c->due[(c->head + c->n++) % RING] = sent;
            next += gap;
        }
        int pending = 0;
        for (int i = 0; i < conns; i++)
            pending += cs[i].n != 0;
        if (next >= end && !pending)
            break;
        /* Sleep until the next send is due (to the microsecond, so the
         * probe does not spin: a spinning probe takes half the loader
         * core and makes the scheduler time-slice it against the other
         * load generator, which shows up as latency of its own). */
        struct timespec wait = { 0, 0 };
        t = now_ns();
        if (next < end && next > t) {
            uint64_t d = next - t;
            wait.tv_sec = (time_t)(d / 1000000000u);
            wait.tv_nsec = (long)(d % 1000000000u);
        } else if (next >= end) {
            wait.tv_sec = 1;
        }
        if (ppoll(pf, (nfds_t)conns, &wait, NULL) < 0)
            die("poll");
        t = now_ns();
        for (int i = 0; i < conns; i++) {
            if (!(pf[i].revents & POLLIN))
                continue;
            pc *c = &cs[i];
            ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
            if (r <= 0)
                die("read");
            c->len += (size_t)r;
            size_t l;
            while (c->n && (l = response_len(c->buf, c->len)) > 0) {
                if (strncmp(c->buf, "HTTP/1.1 200", 12) != 0) {
                    errno = EPROTO;
                    die("not 200");
                }
                if (nl < cap)
                    lat[nl++] = t - c->due[c->head % RING];
                c->head++;
                c->n--;
                memmove(c->buf, c->buf + l, c->len - l);
                c->len -= l;
            }
        }
    }
    qsort(lat, nl, sizeof *lat, cmp);
    if (!nl)
        return 1;
    printf("probe %zu req  p50 %.1f us  p99 %.1f us  p999 %.1f us  max %.1f us\n",
           nl, lat[nl / 2] / 1e3, lat[nl * 99 / 100] / 1e3,
           lat[nl * 999 / 1000] / 1e3, lat[nl - 1] / 1e3);
    return 0;
}
