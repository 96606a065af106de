/* The Date header (RFC 9110 §5.6.7, IMF-fixdate) and the access log's
 * timestamp, formatted at most once a second per loop. */
#include <string.h>
#include <time.h>

#include "http/http_int.h"

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void wisp__date_update(wisp__http_loop *w)
{
    /* Look at the wall clock only when the loop's cached monotonic clock
     * enters a new second (wisp__date_refresh checks that inline): the
     * header may lag the wall clock by under a second, and a request
     * costs no clock read at all. */
    uint64_t mono_s = w->loop->now_ms / 1000;
    if (w->loop->now_ms < w->date_next_ms)
        return;
    w->date_next_ms = (mono_s + 1) * 1000;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec == w->date_sec && w->date_len)
        return;
    w->date_sec = ts.tv_sec;
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(w->date_hdr, sizeof w->date_hdr,
                     "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                     days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                     tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    w->date_len = n > 0 ? (uint32_t)n : 0;
    if (!w->date_len)
        w->date_next_ms = 0; /* try again on the next response */
    /* The most common head prefix, ready to copy in one piece. */
    const wisp__http_conf *srv = w->conf;
    static const char ok[] = "HTTP/1.1 200 OK\r\n";
    size_t l = sizeof ok - 1;
    memcpy(w->head200, ok, l);
    memcpy(w->head200 + l, srv->server_hdr, srv->server_hdr_len);
    l += srv->server_hdr_len;
    memcpy(w->head200 + l, w->date_hdr, w->date_len);
    w->head200_len = (uint32_t)(l + w->date_len);
    w->ct_head_len = 0; /* rebuilt from head200 on its next use */
    snprintf(w->log_time, sizeof w->log_time,
             "[%02d/%s/%04d:%02d:%02d:%02d +0000]", tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
}
