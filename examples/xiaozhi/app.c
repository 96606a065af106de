/* xiaozhi-server — logging, clocks and randomness shared by the modules. */
#include "app.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

xz_app_t *xz_app;

void xz_log(int level, const char *dev, const char *sid, const char *fmt,
            ...)
{
    if (level < (int)wisp_log_get_level())
        return;
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    wisp_log((wisp_log_level_t)level, "dev=%s sid=%s %s",
             dev && *dev ? dev : "-", sid && *sid ? sid : "-", msg);
}

int64_t xz_unix_s(void)
{
    return (int64_t)time(NULL);
}

int64_t xz_unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void xz_random(void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t r = getrandom(p + got, len - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got == len)
        return;
    /* No getrandom: a clock-seeded xorshift. Good enough for session ids
     * (not for secrets: main refuses to start without real randomness
     * when it has to make the auth secret itself). */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32) ^
                 (uint64_t)(uintptr_t)buf;
    for (; got < len; got++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        p[got] = (uint8_t)x;
    }
}
