/* xiaozhi-server — non-blocking log sink with a writer thread. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <wisp.h>

#define RING (256 * 1024)

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char buf[RING];
    size_t head, len;     /* ring: bytes [head, head+len) mod RING */
    uint64_t dropped;
    int stop;
    pthread_t thread;
} lg = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void put(const char *s, size_t n)
{
    size_t tail = (lg.head + lg.len) % RING;
    size_t first = RING - tail < n ? RING - tail : n;
    memcpy(lg.buf + tail, s, first);
    memcpy(lg.buf, s + first, n - first);
    lg.len += n;
}

static void hook(wisp_log_level_t level, const char *msg, void *arg)
{
    (void)arg;
    char line[1200];
    int n = snprintf(line, sizeof line, "%s %s\n", wisp_log_level_name(level),
                     msg);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    pthread_mutex_lock(&lg.lock);
    if (lg.len + (size_t)n + 64 > RING) {
        lg.dropped++;
    } else {
        if (lg.dropped) {
            char d[64];
            int k = snprintf(d, sizeof d, "WARN log lines dropped=%llu\n",
                             (unsigned long long)lg.dropped);
            put(d, (size_t)k);
            lg.dropped = 0;
        }
        put(line, (size_t)n);
        pthread_cond_signal(&lg.cond);
    }
    pthread_mutex_unlock(&lg.lock);
}

static void *writer(void *arg)
{
    (void)arg;
    char out[16384];
    pthread_mutex_lock(&lg.lock);
    for (;;) {
        while (!lg.len && !lg.stop)
            pthread_cond_wait(&lg.cond, &lg.lock);
        if (!lg.len && lg.stop)
            break;
        size_t n = lg.len < sizeof out ? lg.len : sizeof out;
        size_t first = RING - lg.head < n ? RING - lg.head : n;
        memcpy(out, lg.buf + lg.head, first);
        memcpy(out + first, lg.buf, n - first);
        lg.head = (lg.head + n) % RING;
        lg.len -= n;
        pthread_mutex_unlock(&lg.lock);
        size_t off = 0;
        while (off < n) {
            ssize_t w = write(2, out + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;  /* stderr is gone: drop */
            off += (size_t)w;
        }
        pthread_mutex_lock(&lg.lock);
    }
    pthread_mutex_unlock(&lg.lock);
    return NULL;
}

int xz_log_start(void)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&lg.thread, NULL, writer, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r)
        return -r;
    wisp_log_set_hook(hook, NULL);
    return 0;
}

void xz_log_stop(void)
{
    wisp_log_set_hook(NULL, NULL);
    pthread_mutex_lock(&lg.lock);
    lg.stop = 1;
    pthread_cond_signal(&lg.cond);
    pthread_mutex_unlock(&lg.lock);
    pthread_join(lg.thread, NULL);
}
