/* bench/httpclient_load.c — load from wisp's HTTP client (wisp/client.h),
 * for bench/client.sh: N GET requests of URL with C in flight (C pooled
 * keep-alive connections, max_per_host = C), on one loop and thread.
 * Prints "requests N errors E cpu_s S wall_s W"; the CPU time is the
 * process's own (getrusage), the figure compared with wrk's.
 *
 * Not part of the meson build; bench/client.sh compiles it against the
 * release build's libwisp.a.
 *
 *   usage: httpclient_load URL N C */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include <wisp.h>

static wisp_loop_t *loop;
static wisp_client_t *cl;
static const char *url;
static long total, sent, done, errors;

static void next(void);

static void answered(wisp_future_t *f, void *arg)
{
    (void)arg;
    if (wisp_future_error(f) != 0 ||
        wisp_client_response_status(wisp_future_value(f)) != 200)
        errors++;
    wisp_future_unref(f);
    if (++done == total) {
        wisp_loop_break(loop);
        return;
    }
    next();
}

static void next(void)
{
    if (sent == total)
        return;
    sent++;
    wisp_future_t *f = wisp_client_get(cl, url);
    if (!f || wisp_future_then(f, answered, NULL) < 0) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
}

static void start(void *arg)
{
    long c = (long)(intptr_t)arg;
    for (long i = 0; i < c; i++)
        next();
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: httpclient_load URL N C\n");
        return 2;
    }
    url = argv[1];
    total = atol(argv[2]);
    long c = atol(argv[3]);
    loop = wisp_loop_create();
    wisp_client_config_t cc;
    wisp_client_config_init(&cc);
    cc.max_per_host = (uint32_t)c;
    cl = wisp_client_create(loop, &cc);
    if (!loop || !cl || total <= 0 || c <= 0)
        return 2;
    double t0 = now_s();
    wisp_loop_post(loop, start, (void *)(intptr_t)c);
    wisp_loop_run(loop);
    double wall = now_s() - t0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    printf("requests %ld errors %ld cpu_s %.3f wall_s %.3f\n", done, errors,
           cpu, wall);
    wisp_client_destroy(cl);
    wisp_loop_destroy(loop);
    return errors ? 1 : 0;
}
