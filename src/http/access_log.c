/* The access log in NCSA common or combined format, to a hook and/or a
 * file. File lines collect in a per-loop buffer written once per loop
 * iteration (O_APPEND keeps lines of several loops whole). */
#include <string.h>
#include <unistd.h>

#include "http/http_int.h"

#define ALOG_CAP (64 * 1024)

static size_t put_field(char *p, size_t room, const char *s, size_t n)
{
    /* Quote-safe: '"' and control bytes become '?'. */
    size_t i = 0;
    for (; i < n && i < room; i++) {
        unsigned char ch = (unsigned char)s[i];
        p[i] = (ch < 0x20 || ch == '"' || ch == 0x7f) ? '?' : (char)ch;
    }
    return i;
}

static void alog_flush_task(void *arg)
{
    wisp__http_loop *w = arg;
    w->alog_flush_queued = 0;
    wisp__alog_flush(w);
}

void wisp__alog_request(wisp__exchange *ex)
{
    wisp__http_loop *w = ex->w;
    const wisp__http_conf *cf = w->conf;
    const wisp__req_head *rh = &ex->req.rh;
    char line[4096];
    size_t n = 0, room = sizeof line - 64;
    wisp__date_refresh(w);
    const char *peer = wisp_req_client_addr(&ex->req);
    const char *m = wisp_method_name((wisp_method_t)rh->method);
    n += (size_t)snprintf(line, room, "%s - - %s \"%s ", peer, w->log_time,
                          m ? m : "-");
    n += put_field(line + n, room / 2 - n, rh->target, rh->target_len);
    n += (size_t)snprintf(line + n, room - n, " HTTP/1.%d\" %d %llu",
                          rh->minor, ex->res.status,
                          (unsigned long long)ex->res.body_bytes);
    if (cf->alog_combined) {
        wisp_str_t ref = wisp_req_header(&ex->req, "Referer");
        wisp_str_t ua = wisp_req_header(&ex->req, "User-Agent");
        line[n++] = ' ';
        line[n++] = '"';
        if (ref.ptr)
            n += put_field(line + n, (room - n) / 2, ref.ptr, ref.len);
        else
            line[n++] = '-';
        line[n++] = '"';
        line[n++] = ' ';
        line[n++] = '"';
        if (ua.ptr)
            n += put_field(line + n, room - n, ua.ptr, ua.len);
        else
            line[n++] = '-';
        line[n++] = '"';
    }
    if (cf->access_log_hook)
        cf->access_log_hook(line, n, cf->access_log_arg);
    if (cf->access_fd >= 0) {
        if (!w->alog)
            w->alog = malloc(ALOG_CAP);
        if (!w->alog)
            return;
        if (w->alog_len + n + 1 > ALOG_CAP)
            wisp__alog_flush(w);
        memcpy(w->alog + w->alog_len, line, n);
        w->alog[w->alog_len + n] = '\n';
        w->alog_len += n + 1;
        /* One write for the lines of this iteration: after its I/O. */
        if (!w->alog_flush_queued &&
            wisp_loop_defer(w->loop, alog_flush_task, w) == 0)
            w->alog_flush_queued = 1;
    }
}

void wisp__alog_done(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)res;
    (void)arg;
    wisp__alog_request(wisp__ex_of_req(req));
}

void wisp__alog_flush(wisp__http_loop *w)
{
    if (w->alog_len && w->conf->access_fd >= 0) {
        ssize_t r = write(w->conf->access_fd, w->alog, w->alog_len);
        (void)r; /* a full disk must not stop the server */
    }
    w->alog_len = 0;
}
