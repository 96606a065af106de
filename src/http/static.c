/* Static files: GET/HEAD under a root directory, with Content-Type,
 * Last-Modified / If-Modified-Since, one byte range, and no way out of
 * the root (".." segments refused with 403; with openat2 the kernel also
 * keeps symlinks beneath the root).
 *
 * open/fstat run on the loop thread: on a page-cached tree they cost
 * microseconds; a cold disk would block the loop (the worker pool of the
 * next issue is where such work belongs). The bytes themselves go out
 * with sendfile from the write queue. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "http/http_int.h"
#include "wisp/server.h"

typedef struct static_ctx {
    int root_fd;
    char *index;
    uint32_t max_age_s;
} static_ctx;

void *wisp__static_create(const char *root, const wisp_static_opts_t *opts,
                          int *err);
void wisp__static_handler(wisp_req_t *req, wisp_res_t *res, void *arg);
void wisp__static_destroy(void *ctx);

void *wisp__static_create(const char *root, const wisp_static_opts_t *opts,
                          int *err)
{
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        *err = -ENOENT;
        return NULL;
    }
    static_ctx *s = calloc(1, sizeof *s);
    const char *index = opts && opts->index ? opts->index : "index.html";
    char *ix = strdup(index);
    if (!s || !ix) {
        free(s);
        free(ix);
        close(fd);
        *err = -ENOMEM;
        return NULL;
    }
    s->root_fd = fd;
    s->index = ix;
    s->max_age_s = opts ? opts->max_age_s : 0;
    return s;
}

void wisp__static_destroy(void *ctx)
{
    static_ctx *s = ctx;
    close(s->root_fd);
    free(s->index);
    free(s);
}

#if defined(__has_include)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#define HAVE_OPENAT2 1
#endif
#endif
#ifndef HAVE_OPENAT2
/* The kernel ABI of openat2(2) (Linux 5.6), for C libraries whose headers
 * lack it (musl): the struct and flags are stable, and the syscall number
 * is 437 on every architecture. */
struct open_how {
    uint64_t flags;
    uint64_t mode;
    uint64_t resolve;
};
#define RESOLVE_NO_MAGICLINKS 0x02
#define RESOLVE_BENEATH 0x08
#define HAVE_OPENAT2 1
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif

static int open_beneath(int dirfd, const char *rel)
{
#if defined(HAVE_OPENAT2) && defined(SYS_openat2)
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    int fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS)
        return fd;
#endif
    return openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY);
}

static int has_dotdot(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && p[j] != '/' && p[j] != '\\')
            j++;
        if (j - i == 2 && p[i] == '.' && p[i + 1] == '.')
            return 1;
        i = j + 1;
    }
    return 0;
}

static const char *const mon[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
static const char *const wday[7] = {"Sun", "Mon", "Tue", "Wed",
                                    "Thu", "Fri", "Sat"};

static void http_date(time_t t, char *out, size_t cap)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, cap, "%s, %02d %s %04d %02d:%02d:%02d GMT",
             wday[tm.tm_wday], tm.tm_mday, mon[tm.tm_mon], tm.tm_year + 1900,
             tm.tm_hour, tm.tm_min, tm.tm_sec);
}

/* Parse an IMF-fixdate; returns -1 when it is not one. */
static time_t parse_http_date(const char *s, size_t n)
{
    char buf[64];
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, s, n);
    buf[n] = 0;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *e = strptime(buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!e || *e)
        return -1;
    return timegm(&tm);
}

/* "bytes=a-b" | "bytes=a-" | "bytes=-n". Returns 1 with [*from, *to]
 * filled, 0 to ignore the header (malformed or several ranges), -1 when
 * unsatisfiable. */
static int parse_range(wisp_str_t h, uint64_t size, uint64_t *from,
                       uint64_t *to)
{
    if (h.len < 7 || strncasecmp(h.ptr, "bytes=", 6) != 0)
        return 0;
    const char *p = h.ptr + 6, *end = h.ptr + h.len;
    if (memchr(p, ',', (size_t)(end - p)))
        return 0;
    uint64_t a = 0, b = 0;
    int have_a = 0, have_b = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (a > (UINT64_MAX - 9) / 10)
            return 0;
        a = a * 10 + (uint64_t)(*p++ - '0');
        have_a = 1;
    }
    if (p >= end || *p++ != '-')
        return 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (b > (UINT64_MAX - 9) / 10)
            return 0;
        b = b * 10 + (uint64_t)(*p++ - '0');
        have_b = 1;
    }
    if (p != end || (!have_a && !have_b))
        return 0;
    if (!have_a) { /* suffix */
        if (b == 0)
            return -1;
        *from = b >= size ? 0 : size - b;
        *to = size - 1;
        return size ? 1 : -1;
    }
    if (have_b && b < a)
        return 0;
    if (a >= size)
        return -1;
    *from = a;
    *to = (!have_b || b >= size) ? size - 1 : b;
    return 1;
}

void wisp__static_handler(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    static_ctx *s = arg;
    wisp_str_t rel = wisp_req_param(req, "path");
    char path[4096];
    if (rel.len >= sizeof path - 256 || has_dotdot(rel.ptr, rel.len)) {
        wisp_res_send(res, 403, "text/plain", "Forbidden\n", 10);
        return;
    }
    size_t n = 0;
    /* Relative to the root: strip leading slashes. */
    while (rel.len && rel.ptr[0] == '/') {
        rel.ptr++;
        rel.len--;
    }
    memcpy(path, rel.ptr, rel.len);
    n = rel.len;
    if (n == 0)
        path[n++] = '.';
    path[n] = 0;
    int fd = open_beneath(s->root_fd, path);
    if (fd < 0) {
        int e = errno;
        if (e == EXDEV || e == ELOOP || e == EACCES || e == EPERM)
            wisp_res_send(res, 403, "text/plain", "Forbidden\n", 10);
        else
            wisp_res_send(res, 404, "text/plain", "Not Found\n", 10);
        return;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        wisp_res_send(res, 404, "text/plain", "Not Found\n", 10);
        return;
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        wisp_str_t full = wisp_req_path(req);
        if (!*s->index) {
            wisp_res_send(res, 403, "text/plain", "Forbidden\n", 10);
            return;
        }
        if (full.len == 0 || full.ptr[full.len - 1] != '/') {
            char loc[4200];
            snprintf(loc, sizeof loc, "%.*s/", (int)full.len, full.ptr);
            wisp_res_header(res, "Location", loc);
            wisp_res_send(res, 301, "text/plain", "Moved Permanently\n", 18);
            return;
        }
        size_t il = strlen(s->index);
        if (n + 1 + il >= sizeof path) {
            wisp_res_send(res, 404, "text/plain", "Not Found\n", 10);
            return;
        }
        if (path[n - 1] != '/' && !(n == 1 && path[0] == '.'))
            path[n++] = '/';
        else if (n == 1 && path[0] == '.')
            n = 0;
        memcpy(path + n, s->index, il + 1);
        n += il;
        fd = open_beneath(s->root_fd, path);
        if (fd < 0 || fstat(fd, &st) < 0) {
            if (fd >= 0)
                close(fd);
            wisp_res_send(res, 404, "text/plain", "Not Found\n", 10);
            return;
        }
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        wisp_res_send(res, 403, "text/plain", "Forbidden\n", 10);
        return;
    }
    char lm[64];
    http_date(st.st_mtime, lm, sizeof lm);
    wisp_res_header(res, "Last-Modified", lm);
    wisp_res_header(res, "Accept-Ranges", "bytes");
    if (s->max_age_s) {
        char cc[48];
        snprintf(cc, sizeof cc, "max-age=%u", s->max_age_s);
        wisp_res_header(res, "Cache-Control", cc);
    }
    wisp_str_t ims = wisp_req_header(req, "If-Modified-Since");
    if (ims.ptr) {
        time_t t = parse_http_date(ims.ptr, ims.len);
        if (t >= 0 && st.st_mtime <= t) {
            close(fd);
            wisp_res_send(res, 304, NULL, NULL, 0);
            return;
        }
    }
    const char *ctype = wisp__mime_type(path, n);
    uint64_t size = (uint64_t)st.st_size;
    wisp_str_t range = wisp_req_header(req, "Range");
    if (range.ptr) {
        uint64_t from = 0, to = 0;
        int r = parse_range(range, size, &from, &to);
        if (r < 0) {
            char cr[64];
            snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
            close(fd);
            wisp_res_header(res, "Content-Range", cr);
            wisp_res_send(res, 416, "text/plain", "Range Not Satisfiable\n",
                          22);
            return;
        }
        if (r > 0) {
            char cr[96];
            snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu",
                     (unsigned long long)from, (unsigned long long)to,
                     (unsigned long long)size);
            wisp_res_header(res, "Content-Range", cr);
            wisp_res_sendfile(res, 206, ctype, fd, from, to - from + 1);
            return;
        }
    }
    wisp_res_sendfile(res, 200, ctype, fd, 0, size);
}
