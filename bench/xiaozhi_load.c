/* bench/xiaozhi_load.c — N simulated xiaozhi devices against xiaozhi-server.
 *
 * Each device: OTA POST (PROTOCOL.md 2.1 headers), WebSocket upgrade with
 * the firmware's headers, hello (framing 1, 16 kHz / 60 ms uplink), then a
 * turn every few seconds: `listen start` (manual), speech-shaped Opus
 * packets (SILK WB 60 ms TOC, 80-140 bytes) every 60 ms in real time, then
 * DTX-size packets, `listen stop`; the echo pipeline plays the utterance
 * back and the downlink is checked for pacing. Measured:
 *   - hello latency (hello sent -> server hello received),
 *   - downlink frame intervals inside a reply after the pre-buffer (packets
 *     6..n of a reply: interval to the previous packet), as a histogram:
 *     jitter = |interval - frame_ms|, share of intervals > 65 ms,
 *   - with -S PID: the server's CPU (utime+stime from /proc/PID/stat) over
 *     the measured run, and its VmRSS before the devices connect and once
 *     all of them said hello (RSS per session = difference / N).
 * epoll, one thread per process; -P processes (default: enough that none
 * needs more than 19,000 fds), their figures merged through shared memory.
 *
 *   cc -O2 -o xiaozhi_load bench/xiaozhi_load.c
 *   xiaozhi_load -p 8000 -n 1000 -d 60 [-S server_pid] [-g 6] [-u 33]
 *
 * Output: a human summary and one `RESULT key=value ...` line.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WHEEL 32768                 /* ms slots of the timer wheel */
#define IV_BINS 40000               /* interval histogram: 0.05 ms bins */
#define IV_RES_US 50
#define HL_BINS 100000              /* hello latency: 0.1 ms bins */
#define HL_RES_US 100
#define RBUF 16384

enum { S_OTA, S_WS, S_HELLO, S_IDLE, S_TALK, S_REPLY, S_DEAD };

typedef struct dev {
    int fd, state, id;
    uint8_t *rb;
    size_t rlen;
    uint64_t t_hello;               /* µs: hello sent */
    uint64_t last_rx;               /* µs: last downlink packet */
    int reply_pkts;                 /* packets of the current reply */
    int sent_pkts;                  /* uplink packets of this turn */
    uint64_t talk_t0;               /* µs: first packet of this turn */
    struct dev *tprev, *tnext;      /* timer wheel list */
    int64_t due_ms;                 /* -1: no timer */
} dev_t_;

typedef struct stats {
    uint64_t iv[IV_BINS + 1];
    uint64_t hl[HL_BINS + 1];
    uint64_t ul[HL_BINS + 1];       /* uplink send lateness (control) */
    uint64_t ul_n, ul_max_us;
    uint64_t hellos, turns, up_pkts, down_pkts, late65, intervals;
    uint64_t errors, connect_fail, closed_early, ready, done;
    uint64_t busy;                  /* replies that said "busy" */
    uint64_t iv_max_us, hl_max_us;
} stats_t;

static const char *host = "127.0.0.1";
static int port = 8000, n_dev = 100, duration = 30, gap_s = 4, up_pkts = 33;
static int frame_ms = 60, procs = 0, ramp = 400, no_ota = 0;
static int server_pid = 0;
static struct sockaddr_in addr;
static int ep;
static dev_t_ *devs;
static int my_n, my_base;
static stats_t *st;
static dev_t_ *wheel[WHEEL];
static volatile int *stop_flag;
static int measuring;

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int64_t now_ms(void) { return (int64_t)(now_us() / 1000u); }

/* ---------------------------------------------------------- timer wheel */

static void timer_del(dev_t_ *d)
{
    if (d->due_ms < 0)
        return;
    dev_t_ **head = &wheel[d->due_ms % WHEEL];
    if (d->tprev)
        d->tprev->tnext = d->tnext;
    else
        *head = d->tnext;
    if (d->tnext)
        d->tnext->tprev = d->tprev;
    d->tprev = d->tnext = NULL;
    d->due_ms = -1;
}

static int64_t cur_tick;            /* last wheel slot processed */

static void timer_set(dev_t_ *d, int64_t due)
{
    timer_del(d);
    int64_t now = cur_tick;
    if (due <= now)
        due = now + 1;              /* never into a slot already swept */
    if (due - now >= WHEEL)
        due = now + WHEEL - 1;
    d->due_ms = due;
    dev_t_ **head = &wheel[due % WHEEL];
    d->tprev = NULL;
    d->tnext = *head;
    if (*head)
        (*head)->tprev = d;
    *head = d;
}

/* ---------------------------------------------------------- I/O helpers */

static void kill_dev(dev_t_ *d, int early)
{
    if (d->state == S_DEAD)
        return;
    if (early)
        st->closed_early++;
    timer_del(d);
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
    d->state = S_DEAD;
}

static int send_all(dev_t_ *d, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = send(d->fd, b, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            /* a device's frames are small; a full socket buffer here
             * means the server stopped reading: count it */
            st->errors++;
            return -1;
        }
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static uint32_t rng_state = 2463534242u;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* One masked client frame (opcode op) carrying n bytes. */
static int ws_send(dev_t_ *d, int op, const void *p, size_t n)
{
    uint8_t buf[16 + 1024];
    size_t h = 0;
    if (n > 1024)
        return -1;
    buf[h++] = (uint8_t)(0x80 | op);
    if (n < 126) {
        buf[h++] = (uint8_t)(0x80 | n);
    } else {
        buf[h++] = 0x80 | 126;
        buf[h++] = (uint8_t)(n >> 8);
        buf[h++] = (uint8_t)n;
    }
    uint32_t k = rnd();
    uint8_t key[4];
    memcpy(key, &k, 4);
    memcpy(buf + h, key, 4);
    h += 4;
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++)
        buf[h + i] = s[i] ^ key[i & 3];
    return send_all(d, buf, h + n);
}

static int ws_text(dev_t_ *d, const char *s)
{
    return ws_send(d, 1, s, strlen(s));
}

static void mac_of(int id, char *out)
{
    snprintf(out, 18, "02:00:%02x:%02x:%02x:%02x", (id >> 24) & 255,
             (id >> 16) & 255, (id >> 8) & 255, id & 255);
}

static int open_conn(dev_t_ *d)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        st->connect_fail++;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0 &&
        errno != EINPROGRESS) {
        close(fd);
        st->connect_fail++;
        return -1;
    }
    d->fd = fd;
    d->rlen = 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP,
                             .data.ptr = d};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

static void want_out(dev_t_ *d, int on)
{
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP |
                                       (on ? EPOLLOUT : 0u),
                             .data.ptr = d};
    epoll_ctl(ep, EPOLL_CTL_MOD, d->fd, &ev);
}

/* ---------------------------------------------------------- protocol */

static const char OTA_BODY[] =
    "{\"version\":2,\"language\":\"en-US\",\"flash_size\":16777216,"
    "\"minimum_free_heap_size\":\"58872\",\"chip_model_name\":\"esp32s3\","
    "\"application\":{\"name\":\"xiaozhi\",\"version\":\"2.4.2\"},"
    "\"board\":{\"type\":\"bread-compact-wifi\",\"name\":\"bread-compact-"
    "wifi\",\"ssid\":\"HomeNet\",\"rssi\":-52,\"channel\":6}}";

static void start_ota(dev_t_ *d)
{
    d->state = no_ota ? S_WS : S_OTA;
    if (open_conn(d) < 0)
        kill_dev(d, 0);
}

static void on_connected(dev_t_ *d)
{
    char mac[18], req[1024];
    mac_of(d->id, mac);
    int n;
    if (d->state == S_OTA) {
        n = snprintf(req, sizeof req,
                     "POST /xiaozhi/ota/ HTTP/1.1\r\nHost: %s:%d\r\n"
                     "Device-Id: %s\r\nClient-Id: 00000000-0000-4000-8000-%012x\r\n"
                     "Activation-Version: 1\r\n"
                     "User-Agent: bread-compact-wifi/2.4.2\r\n"
                     "Accept-Language: en-US\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                     host, port, mac, d->id, sizeof OTA_BODY - 1, OTA_BODY);
    } else {
        n = snprintf(req, sizeof req,
                     "GET /xiaozhi/v1/ HTTP/1.1\r\nHost: %s\r\n"
                     "Client-Id: 00000000-0000-4000-8000-%012x\r\n"
                     "Connection: Upgrade\r\nDevice-Id: %s\r\n"
                     "Protocol-Version: 1\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nUpgrade: websocket\r\n\r\n",
                     host, d->id, mac);
    }
    want_out(d, 0);
    if (send_all(d, req, (size_t)n) < 0)
        kill_dev(d, 1);
}

static void send_packet(dev_t_ *d, int speech)
{
    uint8_t pkt[160];
    size_t n;
    if (speech) {
        /* SILK wideband 60 ms, code 0, 80..140 bytes of payload-like data */
        n = 80 + rnd() % 61;
        pkt[0] = 0x58;
        for (size_t i = 1; i < n; i++)
            pkt[i] = (uint8_t)rnd();
    } else {
        n = 1;                      /* DTX: TOC only */
        pkt[0] = 0x48;
    }
    if (ws_send(d, 2, pkt, n) == 0)
        st->up_pkts++;
}

static void hist_add(uint64_t *h, int bins, int res, uint64_t us)
{
    uint64_t b = us / (uint64_t)res;
    h[b > (uint64_t)bins ? (uint64_t)bins : b]++;
}

static void schedule_turn(dev_t_ *d, int first)
{
    int64_t gap = first ? (int64_t)(rnd() % (uint32_t)(gap_s * 1000 + 1))
                        : (int64_t)gap_s * 500 +
                              (int64_t)(rnd() % (uint32_t)(gap_s * 1000 + 1));
    d->state = S_IDLE;
    timer_set(d, now_ms() + gap);
}

static void on_timer(dev_t_ *d)
{
    if (*stop_flag && d->state == S_IDLE)
        return;
    if (d->state == S_IDLE) {
        if (ws_text(d, "{\"session_id\":\"\",\"type\":\"listen\","
                       "\"state\":\"start\",\"mode\":\"manual\"}") < 0) {
            kill_dev(d, 1);
            return;
        }
        d->state = S_TALK;
        d->sent_pkts = 0;
        d->talk_t0 = now_us();
    }
    if (d->state == S_TALK) {
        /* the loader's own lateness against its anchored clock: the
         * control for how much of a late downlink is this machine's
         * scheduling rather than the server */
        uint64_t due = d->talk_t0 + (uint64_t)d->sent_pkts *
                                        (uint64_t)frame_ms * 1000u;
        uint64_t now = now_us(), late = now > due ? now - due : 0;
        if (measuring) {
            hist_add(st->ul, HL_BINS, HL_RES_US, late);
            st->ul_n++;
            if (late > st->ul_max_us)
                st->ul_max_us = late;
        }
        send_packet(d, 1);
        d->sent_pkts++;
        if (d->sent_pkts >= up_pkts) {
            if (ws_text(d, "{\"session_id\":\"\",\"type\":\"listen\","
                           "\"state\":\"stop\"}") < 0) {
                kill_dev(d, 1);
                return;
            }
            d->state = S_REPLY;
            d->reply_pkts = 0;
            return;
        }
        /* anchored clock: packet k at t0 + k * frame */
        timer_set(d, (int64_t)((d->talk_t0 + (uint64_t)d->sent_pkts *
                                                   (uint64_t)frame_ms * 1000u) /
                               1000u));
    }
}

static void on_text(dev_t_ *d, const char *p, size_t n)
{
    char buf[512];
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    memcpy(buf, p, n);
    buf[n] = 0;
    if (d->state == S_HELLO && strstr(buf, "\"type\":\"hello\"")) {
        uint64_t l = now_us() - d->t_hello;
        hist_add(st->hl, HL_BINS, HL_RES_US, l);
        if (l > st->hl_max_us)
            st->hl_max_us = l;
        st->hellos++;
        st->ready++;
        d->state = S_IDLE;         /* turns start when the run starts */
        if (measuring)
            schedule_turn(d, 1);
        return;
    }
    if (strstr(buf, "\"type\":\"tts\"")) {
        if (strstr(buf, "\"state\":\"sentence_start\"")) {
            /* the server's answer when a provider queue is full */
            if (strstr(buf, "busy") && measuring)
                st->busy++;
        } else if (strstr(buf, "\"state\":\"start\"")) {
            d->reply_pkts = 0;
        } else if (strstr(buf, "\"state\":\"stop\"")) {
            if (d->state == S_REPLY) {
                if (measuring)
                    st->turns++;
                schedule_turn(d, 0);
            }
        }
    }
}

static void on_binary(dev_t_ *d)
{
    uint64_t t = now_us();
    d->reply_pkts++;
    if (measuring)
        st->down_pkts++;
    /* intervals after the pre-buffer: packet 6 onwards */
    if (d->reply_pkts >= 7 && measuring) {
        uint64_t iv = t - d->last_rx;
        hist_add(st->iv, IV_BINS, IV_RES_US, iv);
        if (iv > st->iv_max_us)
            st->iv_max_us = iv;
        st->intervals++;
        if (iv > 65000)
            st->late65++;
    }
    d->last_rx = t;
}

/* Parse as many server frames as the buffer holds. */
static int parse_frames(dev_t_ *d)
{
    size_t off = 0;
    while (d->rlen - off >= 2) {
        uint8_t *b = d->rb + off;
        int op = b[0] & 15;
        uint64_t len = b[1] & 127;
        size_t h = 2;
        if (len == 126) {
            if (d->rlen - off < 4)
                break;
            len = ((uint64_t)b[2] << 8) | b[3];
            h = 4;
        } else if (len == 127) {
            if (d->rlen - off < 10)
                break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | b[2 + i];
            h = 10;
        }
        if (len > RBUF - 16)
            return -1;
        if (d->rlen - off < h + len)
            break;
        const uint8_t *pl = b + h;
        if (op == 1)
            on_text(d, (const char *)pl, (size_t)len);
        else if (op == 2)
            on_binary(d);
        else if (op == 9)
            ws_send(d, 10, pl, (size_t)len);
        else if (op == 8)
            return -1;
        off += h + (size_t)len;
    }
    memmove(d->rb, d->rb + off, d->rlen - off);
    d->rlen -= off;
    return 0;
}

static void on_readable(dev_t_ *d)
{
    for (;;) {
        if (d->rlen == RBUF) {
            kill_dev(d, 1);
            return;
        }
        ssize_t r = recv(d->fd, d->rb + d->rlen, RBUF - d->rlen, 0);
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return;
            kill_dev(d, 1);
            return;
        }
        if (r == 0) {
            if (d->state == S_OTA) {
                /* OTA answer complete (Connection: close) */
                int ok = d->rlen > 12 && !memcmp(d->rb, "HTTP/1.1 200", 12);
                close(d->fd);
                d->fd = -1;
                if (!ok) {
                    st->errors++;
                    d->state = S_DEAD;
                    return;
                }
                d->state = S_WS;
                if (open_conn(d) < 0)
                    kill_dev(d, 0);
                return;
            }
            kill_dev(d, !*stop_flag);
            return;
        }
        d->rlen += (size_t)r;
        if (d->state == S_OTA)
            continue;
        if (d->state == S_WS) {
            uint8_t *e = memmem(d->rb, d->rlen, "\r\n\r\n", 4);
            if (!e)
                continue;
            if (d->rlen < 12 || memcmp(d->rb, "HTTP/1.1 101", 12)) {
                st->errors++;
                kill_dev(d, 0);
                return;
            }
            size_t hl = (size_t)(e - d->rb) + 4;
            memmove(d->rb, d->rb + hl, d->rlen - hl);
            d->rlen -= hl;
            d->state = S_HELLO;
            d->t_hello = now_us();
            if (ws_text(d, "{\"type\":\"hello\",\"version\":1,\"transport\":"
                           "\"websocket\",\"features\":{},\"audio_params\":"
                           "{\"format\":\"opus\",\"sample_rate\":16000,"
                           "\"channels\":1,\"frame_duration\":60}}") < 0) {
                kill_dev(d, 1);
                return;
            }
        }
        if (parse_frames(d) < 0) {
            kill_dev(d, !*stop_flag);
            return;
        }
        if (d->state == S_DEAD)
            return;
    }
}

/* ---------------------------------------------------------- server /proc */

static long proc_cpu_ticks(int pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, stt = 0;
    /* fields after ") ": state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
               &ut, &stt) != 2)
        return -1;
    return (long)(ut + stt);
}

static long proc_rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            kb = atol(line + 6);
    fclose(f);
    return kb;
}

/* ---------------------------------------------------------- one process */

static void run_child(stats_t *mine, volatile int *phase)
{
    st = mine;
    ep = epoll_create1(EPOLL_CLOEXEC);
    devs = calloc((size_t)my_n, sizeof *devs);
    uint8_t *bufs = malloc((size_t)my_n * RBUF);
    if (!devs || !bufs || ep < 0) {
        perror("xiaozhi_load");
        _exit(1);
    }
    for (int i = 0; i < my_n; i++) {
        devs[i].fd = -1;
        devs[i].id = my_base + i;
        devs[i].rb = bufs + (size_t)i * RBUF;
        devs[i].due_ms = -1;
        devs[i].state = S_DEAD;
    }
    rng_state ^= (uint32_t)(my_base * 2654435761u) | 1u;
    int started = 0, turns_on = 0;
    uint64_t t0 = now_us();
    cur_tick = now_ms();
    int64_t last_scan = 0;
    struct epoll_event evs[512];
    while (!*stop_flag || *phase < 3) {
        if (*phase >= 3)
            break;
        /* ramp: `ramp` new devices per second per process */
        uint64_t want = (now_us() - t0) * (uint64_t)ramp / 1000000u + 1;
        while (started < my_n && (uint64_t)started < want) {
            start_ota(&devs[started]);
            started++;
        }
        if (*phase == 2 && !turns_on) {
            turns_on = 1;
            measuring = 1;
            for (int i = 0; i < my_n; i++)
                if (devs[i].state == S_IDLE)
                    schedule_turn(&devs[i], 1);
        }
        int64_t now;
        int tmo = 1;
        int n = epoll_wait(ep, evs, 512, tmo);
        for (int i = 0; i < n; i++) {
            dev_t_ *d = evs[i].data.ptr;
            if (d->state == S_DEAD)
                continue;
            if (evs[i].events & EPOLLOUT) {
                int err = 0;
                socklen_t l = sizeof err;
                getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &l);
                if (err) {
                    st->connect_fail++;
                    kill_dev(d, 0);
                    continue;
                }
                on_connected(d);
                if (d->state == S_DEAD)
                    continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                on_readable(d);
        }
        now = now_ms();
        while (cur_tick < now) {
            cur_tick++;
            dev_t_ *d = wheel[cur_tick % WHEEL];
            wheel[cur_tick % WHEEL] = NULL;
            /* detach the slot first: timers set while it runs go to
             * later slots (timer_set never picks cur_tick or earlier) */
            while (d) {
                dev_t_ *next = d->tnext;
                d->tprev = d->tnext = NULL;
                if (d->due_ms <= cur_tick) {
                    d->due_ms = -1;
                    if (turns_on)
                        on_timer(d);
                } else {
                    int64_t due = d->due_ms;   /* a later lap: put back */
                    d->due_ms = -1;
                    timer_set(d, due);
                }
                d = next;
            }
        }
        if (started == my_n && !st->done && now - last_scan >= 50) {
            last_scan = now;
            int pending = 0;
            for (int i = 0; i < my_n; i++)
                pending += devs[i].state == S_OTA || devs[i].state == S_WS ||
                           devs[i].state == S_HELLO;
            if (!pending)
                st->done = 1;
        }
    }
    _exit(0);
}

static uint64_t hist_pct(const uint64_t *h, int bins, int res, uint64_t total,
                         double pct)
{
    if (!total)
        return 0;
    uint64_t want = (uint64_t)((double)total * pct / 100.0 + 0.5), acc = 0;
    if (want < 1)
        want = 1;
    for (int i = 0; i <= bins; i++) {
        acc += h[i];
        if (acc >= want)
            return (uint64_t)i * (uint64_t)res + (uint64_t)res / 2;
    }
    return (uint64_t)bins * (uint64_t)res;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: xiaozhi_load [-h host] [-p port] [-n devices] [-d secs]\n"
            "  [-g turn_gap_s] [-u uplink_packets_per_turn] [-P procs]\n"
            "  [-r connects_per_s_per_proc] [-S server_pid] [-O (no OTA)]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int c;
    while ((c = getopt(argc, argv, "h:p:n:d:g:u:P:r:S:O")) != -1) {
        switch (c) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'n': n_dev = atoi(optarg); break;
        case 'd': duration = atoi(optarg); break;
        case 'g': gap_s = atoi(optarg); break;
        case 'u': up_pkts = atoi(optarg); break;
        case 'P': procs = atoi(optarg); break;
        case 'r': ramp = atoi(optarg); break;
        case 'S': server_pid = atoi(optarg); break;
        case 'O': no_ota = 1; break;
        default: usage();
        }
    }
    if (n_dev < 1 || duration < 1 || gap_s < 1 || up_pkts < 1 || ramp < 1)
        usage();
    if (procs <= 0)
        procs = (n_dev + 18999) / 19000;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if ((long)rl.rlim_cur < n_dev / procs + 64) {
        fprintf(stderr, "fd limit %ld too low for %d devices per process\n",
                (long)rl.rlim_cur, n_dev / procs);
        return 1;
    }
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "bad host %s (an IPv4 address)\n", host);
        return 2;
    }
    size_t shsz = sizeof(stats_t) * (size_t)procs + 4096;
    uint8_t *sh = mmap(NULL, shsz, PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (sh == MAP_FAILED) {
        perror("mmap");
        return 1;
    }
    volatile int *phase = (volatile int *)sh;     /* 1 connect, 2 run, 3 end */
    stop_flag = (volatile int *)(sh + 64);
    stats_t *all = (stats_t *)(sh + 4096);
    *phase = 1;
    long rss0 = server_pid ? proc_rss_kb(server_pid) : -1;
    pid_t kids[256];
    if (procs > 256)
        procs = 256;
    for (int p = 0; p < procs; p++) {
        my_base = n_dev * p / procs;
        my_n = n_dev * (p + 1) / procs - my_base;
        pid_t k = fork();
        if (k == 0)
            run_child(&all[p], phase);
        kids[p] = k;
    }
    /* wait until every device is connected and greeted (or failed) */
    uint64_t t0 = now_us();
    for (;;) {
        int done = 1;
        for (int p = 0; p < procs; p++)
            done &= all[p].done != 0;
        if (done)
            break;
        if (now_us() - t0 > 600000000u) {
            fprintf(stderr, "devices did not all connect within 600 s\n");
            break;
        }
        usleep(20000);
    }
    double connect_s = (double)(now_us() - t0) / 1e6;
    uint64_t ready = 0;
    for (int p = 0; p < procs; p++)
        ready += all[p].ready;
    /* settle, then the idle RSS with every session open */
    usleep(500000);
    long rss1 = server_pid ? proc_rss_kb(server_pid) : -1;
    long cpu0 = server_pid ? proc_cpu_ticks(server_pid) : -1;
    uint64_t run0 = now_us();
    *phase = 2;
    usleep((useconds_t)duration * 1000000u);
    long cpu1 = server_pid ? proc_cpu_ticks(server_pid) : -1;
    double run_s = (double)(now_us() - run0) / 1e6;
    long rss2 = server_pid ? proc_rss_kb(server_pid) : -1;
    *stop_flag = 1;
    *phase = 3;
    for (int p = 0; p < procs; p++)
        waitpid(kids[p], NULL, 0);
    stats_t *t = calloc(1, sizeof *t);
    for (int p = 0; p < procs; p++) {
        stats_t *s = &all[p];
        for (int i = 0; i <= IV_BINS; i++)
            t->iv[i] += s->iv[i];
        for (int i = 0; i <= HL_BINS; i++) {
            t->hl[i] += s->hl[i];
            t->ul[i] += s->ul[i];
        }
        t->ul_n += s->ul_n;
        if (s->ul_max_us > t->ul_max_us)
            t->ul_max_us = s->ul_max_us;
        t->hellos += s->hellos;
        t->turns += s->turns;
        t->busy += s->busy;
        t->up_pkts += s->up_pkts;
        t->down_pkts += s->down_pkts;
        t->late65 += s->late65;
        t->intervals += s->intervals;
        t->errors += s->errors;
        t->connect_fail += s->connect_fail;
        t->closed_early += s->closed_early;
        if (s->iv_max_us > t->iv_max_us)
            t->iv_max_us = s->iv_max_us;
        if (s->hl_max_us > t->hl_max_us)
            t->hl_max_us = s->hl_max_us;
    }
    /* jitter = |interval - frame|: fold the interval histogram */
    static uint64_t jit[IV_BINS + 1];
    uint64_t fbin = (uint64_t)frame_ms * 1000u / IV_RES_US;
    for (uint64_t i = 0; i <= IV_BINS; i++) {
        uint64_t j = i > fbin ? i - fbin : fbin - i;
        jit[j] += t->iv[i];
    }
    uint64_t jmax_us = t->iv_max_us > (uint64_t)frame_ms * 1000u
                           ? t->iv_max_us - (uint64_t)frame_ms * 1000u : 0;
    for (int i = IV_BINS; i >= 0; i--)
        if (jit[i]) {
            uint64_t j = (uint64_t)i * IV_RES_US;
            if (j > jmax_us)
                jmax_us = j;
            break;
        }
    long hz = sysconf(_SC_CLK_TCK);
    double cpu_pct = (cpu0 >= 0 && cpu1 >= 0)
                         ? 100.0 * (double)(cpu1 - cpu0) / (double)hz / run_s
                         : -1;
    double rss_per = (rss0 >= 0 && rss1 >= 0 && ready)
                         ? (double)(rss1 - rss0) * 1024.0 / (double)ready : -1;
    double late = t->intervals ? 100.0 * (double)t->late65 /
                                     (double)t->intervals : 0;
    printf("devices %d (processes %d): %llu greeted in %.1f s, "
           "connect failures %llu, errors %llu, closed early %llu\n",
           n_dev, procs, (unsigned long long)ready, connect_s,
           (unsigned long long)t->connect_fail,
           (unsigned long long)t->errors,
           (unsigned long long)t->closed_early);
    printf("hello latency ms: p50 %.2f p99 %.2f max %.2f\n",
           hist_pct(t->hl, HL_BINS, HL_RES_US, t->hellos, 50) / 1000.0,
           hist_pct(t->hl, HL_BINS, HL_RES_US, t->hellos, 99) / 1000.0,
           t->hl_max_us / 1000.0);
    printf("run %.1f s: %llu turns (%llu answered \"busy\"), uplink %llu "
           "packets, downlink %llu packets\n", run_s,
           (unsigned long long)t->turns, (unsigned long long)t->busy,
           (unsigned long long)t->up_pkts, (unsigned long long)t->down_pkts);
    printf("downlink intervals (after the pre-buffer) %llu: jitter ms p50 "
           "%.2f p99 %.2f max %.2f; later than 65 ms: %llu (%.3f %%)\n",
           (unsigned long long)t->intervals,
           hist_pct(jit, IV_BINS, IV_RES_US, t->intervals, 50) / 1000.0,
           hist_pct(jit, IV_BINS, IV_RES_US, t->intervals, 99) / 1000.0,
           jmax_us / 1000.0, (unsigned long long)t->late65, late);
    printf("loader timer lateness (control) ms: p50 %.2f p99 %.2f "
           "max %.2f\n",
           hist_pct(t->ul, HL_BINS, HL_RES_US, t->ul_n, 50) / 1000.0,
           hist_pct(t->ul, HL_BINS, HL_RES_US, t->ul_n, 99) / 1000.0,
           t->ul_max_us / 1000.0);
    if (server_pid)
        printf("server pid %d: CPU %.2f %% of one core over the run; VmRSS "
               "%ld kB before, %ld kB with all sessions, %ld kB at the end; "
               "%.0f bytes per session\n",
               server_pid, cpu_pct, rss0, rss1, rss2, rss_per);
    printf("RESULT devices=%d greeted=%llu hello_p99_ms=%.2f turns=%llu "
           "intervals=%llu jitter_p50_ms=%.2f jitter_p99_ms=%.2f "
           "jitter_max_ms=%.2f late65_pct=%.3f busy=%llu server_cpu_pct=%.2f "
           "rss_per_session_b=%.0f loader_late_p99_ms=%.2f "
           "loader_late_max_ms=%.2f errors=%llu closed_early=%llu\n",
           n_dev, (unsigned long long)ready,
           hist_pct(t->hl, HL_BINS, HL_RES_US, t->hellos, 99) / 1000.0,
           (unsigned long long)t->turns, (unsigned long long)t->intervals,
           hist_pct(jit, IV_BINS, IV_RES_US, t->intervals, 50) / 1000.0,
           hist_pct(jit, IV_BINS, IV_RES_US, t->intervals, 99) / 1000.0,
           jmax_us / 1000.0, late, (unsigned long long)t->busy, cpu_pct,
           rss_per,
           hist_pct(t->ul, HL_BINS, HL_RES_US, t->ul_n, 99) / 1000.0,
           t->ul_max_us / 1000.0, (unsigned long long)t->errors,
           (unsigned long long)t->closed_early);
    return ready == (uint64_t)n_dev && !t->errors ? 0 : 1;
}
