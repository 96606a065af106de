/* bench/client.c — a tiny, exact load client for the counting benchmarks.
 *
 * It opens ONE keep-alive connection and sends exactly N requests
 * with the three headers wrk and curl send, not a minimal request:
 *     GET / HTTP/1.1 CRLF Host: HOST:PORT CRLF User-Agent: reqloop CRLF
 *     Accept: (star)/(star) CRLF CRLF
 * either sequentially (depth 1: send one, read the whole response, repeat)
 * or pipelined in batches of D (D requests in one write, then read D
 * responses).  Every response must be `HTTP/1.1 200` with a 13-byte body
 * "Hello, World!"; anything else aborts with exit status 1.
 *
 * With -P the run is split into phases a script can synchronise on (used
 * to zero/dump callgrind or attach/detach strace around exactly N
 * requests):
 *
 *     connect, W warm-up requests      -> prints "warm"  and waits for a line on stdin
 *     N measured requests              -> prints "done"  and waits for a line on stdin
 *     close, exit 0
 *
 * Not part of the meson build; the bench scripts compile it with `cc -O2`.
 *
 * With -c C (C > 1) it forks C clients, each on its own connection doing
 * N/C requests (W/C warm-up); the phases above are kept for the whole
 * group, so the counts cover exactly N requests spread over C
 * connections (as a load generator with C connections would send them).
 *
 *   usage: client -p PORT -n N [-d DEPTH] [-w WARMUP] [-c CONNS] [-h HOST] [-P] [-q]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BODY "Hello, World!"
#define BODY_LEN 13

static char rbuf[1 << 17];
static size_t rhave, roff;
static unsigned long long nresp;

static void die(const char *what)
{
    fprintf(stderr, "client: %s (after %llu good responses)\n", what, nresp);
    exit(1);
}

/* Parse one response at rbuf+roff, reading more as needed. */
static void read_response(int fd)
{
    for (;;) {
        char *p = rbuf + roff;
        size_t len = rhave - roff;
        char *e = len >= 4 ? memmem(p, len, "\r\n\r\n", 4) : NULL;
        if (e) {
            size_t hl = (size_t)(e + 4 - p);
            if (hl < 12 || memcmp(p, "HTTP/1.1 200", 12) != 0) {
                char *cr = memchr(p, '\r', hl);
                fprintf(stderr, "client: bad status line: %.*s\n", (int)(cr - p), p);
                die("non-200 response");
            }
            long cl = -1;
            for (char *l = memchr(p, '\n', hl); l && l < e; l = memchr(l + 1, '\n', (size_t)(e - l))) {
                l++;
                if (strncasecmp(l, "content-length:", 15) == 0)
                    cl = strtol(l + 15, NULL, 10);
                else if (strncasecmp(l, "transfer-encoding:", 18) == 0)
                    die("unexpected Transfer-Encoding");
                else if (strncasecmp(l, "connection:", 11) == 0) {
                    const char *v = l + 11;
                    while (*v == ' ')
                        v++;
                    if (strncasecmp(v, "close", 5) == 0)
                        die("server sent Connection: close");
                }
            }
            if (cl != BODY_LEN)
                die("Content-Length is not 13");
            if (len >= hl + BODY_LEN) {
                if (memcmp(p + hl, BODY, BODY_LEN) != 0)
                    die("wrong body");
                roff += hl + BODY_LEN;
                if (roff == rhave)
                    roff = rhave = 0;
                nresp++;
                return;
            }
        }
        if (roff > 0) {
            memmove(rbuf, rbuf + roff, rhave - roff);
            rhave -= roff;
            roff = 0;
        }
        if (rhave == sizeof rbuf)
            die("response too large");
        ssize_t r = recv(fd, rbuf + rhave, sizeof rbuf - rhave, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            die(strerror(errno));
        if (r == 0)
            die("connection closed by server");
        rhave += (size_t)r;
    }
}

static void send_all(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            die(strerror(errno));
        p += w;
        len -= (size_t)w;
    }
}

static char *reqs;     /* depth copies of the request */
static size_t req_len; /* length of one request */

static void run(int fd, unsigned long long n, unsigned depth)
{
    while (n) {
        unsigned d = n < depth ? (unsigned)n : depth;
        send_all(fd, reqs, req_len * d);
        for (unsigned i = 0; i < d; i++)
            read_response(fd);
        n -= d;
    }
    if (rhave != roff)
        die("extra bytes after the last response");
}

static void sync_point(const char *msg)
{
    printf("%s\n", msg);
    fflush(stdout);
    char line[64];
    if (!fgets(line, sizeof line, stdin))
        die("stdin closed while waiting");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_to(const char *host, int port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        die("bad host (IPv4 literal expected)");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        die(strerror(errno));
    int one_i = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one_i, sizeof one_i);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        die(strerror(errno));
    return fd;
}

static void xwrite1(int fd, char c)
{
    if (write(fd, &c, 1) != 1)
        die("pipe write");
}

static void xread1(int fd)
{
    char c;
    if (read(fd, &c, 1) != 1)
        die("pipe read");
}

/* C connections in C processes, synchronised through pipes. */
static int run_group(const char *host, int port, unsigned conns,
                     unsigned long long n, unsigned long long warm,
                     unsigned depth, int pause_mode)
{
    int up[2];
    if (pipe(up) < 0)
        die("pipe");
    int *go = calloc(conns, sizeof *go);
    pid_t *pids = calloc(conns, sizeof *pids);
    for (unsigned i = 0; i < conns; i++) {
        int g[2];
        if (pipe(g) < 0)
            die("pipe");
        pid_t pid = fork();
        if (pid < 0)
            die("fork");
        if (pid == 0) {
            close(g[1]);
            int fd = connect_to(host, port);
            unsigned long long mine = n / conns + (i < n % conns);
            run(fd, warm / conns, depth);
            xwrite1(up[1], 'w');
            xread1(g[0]);
            run(fd, mine, depth);
            xwrite1(up[1], 'd');
            xread1(g[0]);
            close(fd);
            _exit(0);
        }
        close(g[0]);
        go[i] = g[1];
        pids[i] = pid;
    }
    for (unsigned i = 0; i < conns; i++)
        xread1(up[0]);
    if (pause_mode)
        sync_point("warm");
    double t0 = now();
    for (unsigned i = 0; i < conns; i++)
        xwrite1(go[i], 'g');
    for (unsigned i = 0; i < conns; i++)
        xread1(up[0]);
    double t = now() - t0;
    if (pause_mode)
        sync_point("done");
    for (unsigned i = 0; i < conns; i++)
        xwrite1(go[i], 'g');
    int bad = 0;
    for (unsigned i = 0; i < conns; i++) {
        int st;
        waitpid(pids[i], &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            bad = 1;
    }
    fprintf(stderr, "client: %llu requests on %u connections (depth %u), %.3f s\n",
            n, conns, depth, t);
    return bad;
}

int main(int argc, char **argv)
{
    unsigned conns = 1;
    const char *host = "127.0.0.1";
    int port = 0, pause_mode = 0, quiet = 0;
    unsigned long long n = 0, warm = 0;
    unsigned depth = 1;
    int o;
    while ((o = getopt(argc, argv, "p:n:d:w:c:h:Pq")) != -1) {
        switch (o) {
        case 'c': conns = (unsigned)atoi(optarg); break;
        case 'p': port = atoi(optarg); break;
        case 'n': n = strtoull(optarg, NULL, 10); break;
        case 'd': depth = (unsigned)atoi(optarg); break;
        case 'w': warm = strtoull(optarg, NULL, 10); break;
        case 'h': host = optarg; break;
        case 'P': pause_mode = 1; break;
        case 'q': quiet = 1; break;
        default:
            fprintf(stderr, "usage: client -p PORT -n N [-d DEPTH] [-w WARMUP] [-h HOST] [-P] [-q]\n");
            return 2;
        }
    }
    if (port <= 0 || depth < 1 || depth > 1024) {
        fprintf(stderr, "client: need -p PORT, 1 <= DEPTH <= 1024\n");
        return 2;
    }

    /* The request real clients send (wrk, curl and browsers all send at
     * least Host, User-Agent and Accept); the anchors in
     * /work/shared/PERFORMANCE.md were counted with exactly this one. */
    char one[160];
    int l = snprintf(one, sizeof one,
                     "GET / HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: reqloop\r\nAccept: */*\r\n\r\n",
                     host, port);
    req_len = (size_t)l;
    reqs = malloc(req_len * depth);
    if (!reqs)
        die("out of memory");
    for (unsigned i = 0; i < depth; i++)
        memcpy(reqs + i * req_len, one, req_len);

    if (conns > 1)
        return run_group(host, port, conns, n, warm, depth, pause_mode);
    int fd = connect_to(host, port);

    run(fd, warm, depth);
    if (pause_mode)
        sync_point("warm");
    double t0 = now();
    run(fd, n, depth);
    double t = now() - t0;
    if (pause_mode)
        sync_point("done");
    close(fd);
    if (!quiet)
        fprintf(stderr, "client: %llu requests (depth %u) all 200/13 bytes, %.3f s, %.0f req/s\n",
                n, depth, t, t > 0 ? n / t : 0.0);
    return 0;
}
