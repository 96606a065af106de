/* The Date header (RFC 9110 §5.6.7, IMF-fixdate) and the access log's
 * timestamp, formatted at most once a second per loop. */
#include <string.h>
#include <time.h>

#include "server_int.h"

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void wisp__date_refresh(wisp__worker *w)
{
    struct timespec ts;
    /* The coarse clock is read from the vDSO without a syscall. */
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec == w->date_sec)
        return;
    w->date_sec = ts.tv_sec;
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(w->date_hdr, sizeof w->date_hdr,
                     "Date: %s, %02d %s %04d %02d:%02d:%02d GMT\r\n",
                     days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                     tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    w->date_len = n > 0 ? (uint32_t)n : 0;
    snprintf(w->log_time, sizeof w->log_time,
             "[%02d/%s/%04d:%02d:%02d:%02d +0000]", tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
             tm.tm_sec);
}
