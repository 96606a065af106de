/* The text/event-stream writer (include/wisp/sse.h): a streamed response
 * with the event-stream head, events encoded whole and written in one
 * wisp_res_write each, a ping timer restarted by every write, and a cap
 * on unsent bytes.
 *
 * Lifetime: the application owns the stream until wisp_sse_end. The
 * response can disappear under it (the abort callback: the client went
 * away), and the abort can run inside one of our own writes; so `res`
 * is cleared there, and a wisp_sse_end called from inside a callback
 * that one of our calls is running (busy > 0) only marks the stream,
 * which the outermost call frees on its way out. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wisp/sse.h"

#define DEFAULT_PING_MS 15000
#define DEFAULT_MAX_BUFFERED (1u << 20)

struct wisp_sse {
    wisp_res_t *res; /* NULL once the client has gone or after end */
    wisp_timer_t timer;
    uint64_t ping_ms;
    size_t max_buffered;
    wisp_sse_cb on_close;
    void *close_arg;
    wisp_sse_cb on_drain;
    void *drain_arg;
    int busy;              /* our calls and callbacks on the stack */
    unsigned char ended;   /* wisp_sse_end was called */
};

void wisp_sse_config_init(wisp_sse_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->ping_ms = DEFAULT_PING_MS;
    cfg->max_buffered_bytes = DEFAULT_MAX_BUFFERED;
}

static void enter(wisp_sse_t *s)
{
    s->busy++;
}

/* Returns nonzero when `s` was freed. */
static int leave(wisp_sse_t *s)
{
    if (--s->busy == 0 && s->ended) {
        free(s);
        return 1;
    }
    return 0;
}

static void ping(wisp_timer_t *t, void *arg);

static void rearm(wisp_sse_t *s)
{
    if (s->res && !s->ended && s->ping_ms)
        wisp_timer_start(&s->timer, s->ping_ms, ping, s);
}

/* Write bytes already encoded; the cap applies unless `force`. */
static int put(wisp_sse_t *s, const char *buf, size_t len, int force)
{
    if (!s->res || s->ended)
        return WISP_ECLOSED;
    if (!force && wisp_res_buffered(s->res) >= s->max_buffered)
        return -ENOBUFS;
    enter(s);
    int r = wisp_res_write(s->res, buf, len);
    rearm(s);
    leave(s);
    return r;
}

static void ping(wisp_timer_t *t, void *arg)
{
    (void)t;
    wisp_sse_t *s = arg;
    /* Data still waiting to leave keeps the stream alive by itself. */
    if (s->res && wisp_res_buffered(s->res) > 0) {
        rearm(s);
        return;
    }
    put(s, ": ping\n", 7, 0);
}

static void aborted(wisp_res_t *res, void *arg)
{
    (void)res;
    wisp_sse_t *s = arg;
    s->res = NULL;
    wisp_timer_stop(&s->timer);
    if (s->on_close) {
        enter(s);
        s->on_close(s, s->close_arg);
        leave(s);
    }
}

static void drained(wisp_res_t *res, void *arg)
{
    (void)res;
    wisp_sse_t *s = arg;
    wisp_sse_cb cb = s->on_drain;
    s->on_drain = NULL;
    if (cb && !s->ended) {
        enter(s);
        cb(s, s->drain_arg);
        leave(s);
    }
}

wisp_sse_t *wisp_sse_start(wisp_res_t *res, const wisp_sse_config_t *cfg,
                           wisp_sse_cb on_close, void *arg)
{
    wisp_sse_config_t def;
    if (!res) {
        errno = EINVAL;
        return NULL;
    }
    if (!cfg) {
        wisp_sse_config_init(&def);
        cfg = &def;
    }
    wisp_sse_t *s = calloc(1, sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    int e = wisp_res_status(res, 200);
    if (!e)
        e = wisp_res_header(res, "Content-Type", "text/event-stream");
    if (!e)
        e = wisp_res_header(res, "Cache-Control", "no-cache");
    /* nginx buffers proxied responses unless told not to. */
    if (!e)
        e = wisp_res_header(res, "X-Accel-Buffering", "no");
    char first[40];
    int n = 0;
    if (cfg->retry_ms)
        n = snprintf(first, sizeof first, "retry: %" PRIu64 "\n",
                     cfg->retry_ms);
    if (!e)
        e = wisp_res_write(res, first, (size_t)n);
    if (e) {
        free(s);
        errno = -e;
        return NULL;
    }
    s->res = res;
    s->ping_ms = cfg->ping_ms;
    s->max_buffered = cfg->max_buffered_bytes ? cfg->max_buffered_bytes
                                              : DEFAULT_MAX_BUFFERED;
    s->on_close = on_close;
    s->close_arg = arg;
    wisp_timer_init(wisp_res_loop(res), &s->timer);
    wisp_res_on_abort(res, aborted, s);
    rearm(s);
    return s;
}

static int has_eol(const char *v)
{
    return v && strpbrk(v, "\r\n") != NULL;
}

int wisp_sse_send(wisp_sse_t *s, const char *event, const char *id,
                  const void *data, size_t len)
{
    if (has_eol(event) || has_eol(id) || (!data && len))
        return -EINVAL;
    if (!s->res || s->ended)
        return WISP_ECLOSED;
    const char *d = data ? data : "";
    /* Size: each data line costs "data: " and "\n". */
    size_t size = 1;
    if (event)
        size += 7 + strlen(event) + 1;
    if (id)
        size += 4 + strlen(id) + 1;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) {
        if (d[i] == '\n' || (d[i] == '\r' && !(i + 1 < len && d[i + 1] == '\n')))
            lines++;
    }
    size += len + lines * 7; /* CRLF pairs lose a byte: an upper bound */
    char stack[512];
    char *buf = size <= sizeof stack ? stack : malloc(size);
    if (!buf)
        return -ENOMEM;
    size_t o = 0;
    if (event) {
        size_t l = strlen(event);
        memcpy(buf + o, "event: ", 7);
        memcpy(buf + o + 7, event, l);
        o += 7 + l;
        buf[o++] = '\n';
    }
    if (id) {
        size_t l = strlen(id);
        memcpy(buf + o, "id: ", 4);
        memcpy(buf + o + 4, id, l);
        o += 4 + l;
        buf[o++] = '\n';
    }
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && d[i] != '\n' && d[i] != '\r')
            continue;
        memcpy(buf + o, "data: ", 6);
        memcpy(buf + o + 6, d + start, i - start);
        o += 6 + (i - start);
        buf[o++] = '\n';
        if (i + 1 < len && d[i] == '\r' && d[i + 1] == '\n')
            i++;
        start = i + 1;
    }
    buf[o++] = '\n';
    int r = put(s, buf, o, 0);
    if (buf != stack)
        free(buf);
    return r;
}

int wisp_sse_comment(wisp_sse_t *s, const char *text)
{
    if (has_eol(text))
        return -EINVAL;
    if (!text || !*text)
        return put(s, ":\n", 2, 0);
    size_t l = strlen(text);
    char stack[256];
    char *buf = l + 3 <= sizeof stack ? stack : malloc(l + 3);
    if (!buf)
        return -ENOMEM;
    buf[0] = ':';
    buf[1] = ' ';
    memcpy(buf + 2, text, l);
    buf[l + 2] = '\n';
    int r = put(s, buf, l + 3, 0);
    if (buf != stack)
        free(buf);
    return r;
}

int wisp_sse_retry(wisp_sse_t *s, uint64_t ms)
{
    char buf[40];
    int n = snprintf(buf, sizeof buf, "retry: %" PRIu64 "\n", ms);
    return put(s, buf, (size_t)n, 0);
}

size_t wisp_sse_buffered(const wisp_sse_t *s)
{
    return s->res && !s->ended ? wisp_res_buffered(s->res) : 0;
}

void wisp_sse_on_drain(wisp_sse_t *s, wisp_sse_cb cb, void *arg)
{
    s->on_drain = cb;
    s->drain_arg = arg;
    if (s->res && !s->ended)
        wisp_res_on_drain(s->res, cb ? drained : NULL, s);
}

int wisp_sse_end(wisp_sse_t *s)
{
    int r = WISP_ECLOSED;
    s->ended = 1;
    wisp_timer_stop(&s->timer);
    if (s->res) {
        wisp_res_t *res = s->res;
        s->res = NULL;
        wisp_res_on_abort(res, NULL, NULL);
        wisp_res_on_drain(res, NULL, NULL);
        r = wisp_res_end(res);
    }
    if (s->busy == 0)
        free(s);
    return r;
}
