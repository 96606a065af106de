/* Static files: GET/HEAD under a root directory, with Content-Type,
 * Last-Modified / If-Modified-Since, ETag / If-None-Match, precompressed
 * ".br" / ".gz" siblings, one byte range, and no way out of
 * the root (".." segments refused with 403; with openat2 the kernel also
 * keeps symlinks beneath the root).
 *
 * open/fstat (and the index lookup of a directory) run on a worker pool
 * (the route's, or the server's own), never on the loop (DESIGN rule 2):
 * the handler checks the path, submits the open and returns; the answer
 * is built on the loop when the open has settled. The bytes themselves
 * go out with sendfile from the write queue. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "http/http_int.h"
#include "wisp/negotiate.h"
#include "wisp/reply.h"
#include "wisp/server.h"

typedef struct static_ctx {
    int root_fd;
    char *index;
    uint32_t max_age_s;
    int precompressed;
    wisp_pool_t *pool;
} static_ctx;

void *wisp__static_create(const char *root, const wisp_static_opts_t *opts,
                          wisp_pool_t *pool, int *err);
void wisp__static_handler(wisp_req_t *req, wisp_res_t *res, void *arg);
void wisp__static_destroy(void *ctx);

void *wisp__static_create(const char *root, const wisp_static_opts_t *opts,
                          wisp_pool_t *pool, int *err)
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
    s->precompressed = opts ? !!opts->precompressed : 0;
    s->pool = pool;
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

/* One open, from the handler to the pool and back. The pool thread
 * reads only the job (never the request); the continuation frees it, and
 * runs exactly once, after the open has run or was dropped unrun: the
 * future is never cancelled, so it settles only then. */
typedef struct sjob {
    const static_ctx *s;
    wisp_res_t *res;       /* NULL once the client went away */
    int slash;             /* the request's path ends with '/' */
    uint8_t enc_try[2];    /* codings to try, in order (ENC_*), 0 ends */
    size_t n;              /* length of path */
    char path[];           /* relative; the index is appended by the job */
} sjob;

/* What the pool thread found. */
enum { ENC_NONE = 0, ENC_BR, ENC_GZIP };
static const char *const enc_ext[] = {"", ".br", ".gz"};
static const char *const enc_name[] = {"", "br", "gzip"};

typedef struct sfile {
    int fd;                /* -1 unless status is 0 */
    int status;            /* 0: serve fd; else 301, 403 or 404 */
    int enc;               /* ENC_*: the sibling served */
    struct stat st;
} sfile;

static void sfile_free(void *p)
{
    sfile *r = p;
    if (r->fd >= 0)
        close(r->fd);
    free(r);
}

/* On a pool thread: open and stat, follow a directory to its index. */
static int open_job(void *arg, void **value, wisp_free_cb *destroy)
{
    sjob *j = arg;
    const static_ctx *s = j->s;
    sfile *r = malloc(sizeof *r);
    if (!r)
        return -ENOMEM;
    r->fd = -1;
    r->status = 0;
    r->enc = ENC_NONE;
    *value = r;
    *destroy = sfile_free;
    int fd = open_beneath(s->root_fd, j->path);
    if (fd < 0) {
        int e = errno;
        r->status = (e == EXDEV || e == ELOOP || e == EACCES || e == EPERM)
                        ? 403 : 404;
        return 0;
    }
    if (fstat(fd, &r->st) < 0) {
        close(fd);
        r->status = 404;
        return 0;
    }
    if (S_ISDIR(r->st.st_mode)) {
        close(fd);
        if (!*s->index) {
            r->status = 403;
            return 0;
        }
        if (!j->slash) {
            r->status = 301;
            return 0;
        }
        size_t n = j->n, il = strlen(s->index);
        if (j->path[n - 1] != '/' && !(n == 1 && j->path[0] == '.'))
            j->path[n++] = '/';
        else if (n == 1 && j->path[0] == '.')
            n = 0;
        memcpy(j->path + n, s->index, il + 1);
        j->n = n + il;
        fd = open_beneath(s->root_fd, j->path);
        if (fd < 0 || fstat(fd, &r->st) < 0) {
            if (fd >= 0)
                close(fd);
            r->status = 404;
            return 0;
        }
    }
    if (!S_ISREG(r->st.st_mode)) {
        close(fd);
        r->status = 403;
        return 0;
    }
    /* A precompressed sibling the client accepts, if it exists and is a
     * regular file (the path buffer has room for the extension). */
    for (int i = 0; i < 2 && j->enc_try[i]; i++) {
        int e = j->enc_try[i];
        memcpy(j->path + j->n, enc_ext[e], 4);
        int zfd = open_beneath(s->root_fd, j->path);
        j->path[j->n] = 0;
        struct stat zst;
        if (zfd < 0)
            continue;
        if (fstat(zfd, &zst) < 0 || !S_ISREG(zst.st_mode)) {
            close(zfd);
            continue;
        }
        close(fd);
        fd = zfd;
        r->st = zst;
        r->enc = e;
        break;
    }
    r->fd = fd;
    return 0;
}

/* On the loop: answer with what the job found. */
static void serve(const sjob *j, wisp_res_t *res, wisp_future_t *f)
{
    const static_ctx *s = j->s;
    wisp_req_t *req = wisp_res_req(res);
    int err = wisp_future_error(f);
    if (err < 0) {
        /* -EAGAIN: the pool's queue is full; -ECANCELED: shutting down. */
        if (err == -EAGAIN || err == -ECANCELED)
            wisp_res_send(res, 503, "text/plain", "Service Unavailable\n",
                          20);
        else
            wisp_res_send(res, 500, "text/plain",
                          "Internal Server Error\n", 22);
        return;
    }
    wisp_free_cb destroy = NULL;
    sfile *r = wisp_future_take(f, &destroy);
    if (!r) {
        wisp_res_send(res, 500, NULL, NULL, 0);
        return;
    }
    int fd = r->fd;
    r->fd = -1;
    struct stat st = r->st;
    int status = r->status;
    int enc = r->enc;
    sfile_free(r);
    if (status == 301) {
        wisp_str_t full = wisp_req_path(req);
        char loc[4200];
        snprintf(loc, sizeof loc, "%.*s/", (int)full.len, full.ptr);
        wisp_res_header(res, "Location", loc);
        wisp_res_send(res, 301, "text/plain", "Moved Permanently\n", 18);
        return;
    }
    if (status == 403) {
        wisp_res_send(res, 403, "text/plain", "Forbidden\n", 10);
        return;
    }
    if (status) {
        wisp_res_send(res, 404, "text/plain", "Not Found\n", 10);
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
    /* A validator from size and modification time (and the coding: each
     * precompressed file is its own representation). */
    char etag[80];
    snprintf(etag, sizeof etag, "\"%llx-%llx%s%s\"",
             (unsigned long long)st.st_size,
             (unsigned long long)st.st_mtim.tv_sec * 1000000000ull +
                 (unsigned long long)st.st_mtim.tv_nsec,
             enc ? "-" : "", enc ? enc_ext[enc] + 1 : "");
    wisp_res_header(res, "ETag", etag);
    if (s->precompressed)
        wisp_res_header(res, "Vary", "Accept-Encoding");
    /* If-None-Match decides when present, If-Modified-Since is then
     * ignored (RFC 9110 §13.2.2); a malformed one matches nothing. */
    wisp_str_t inm = wisp_req_header(req, "If-None-Match");
    wisp_str_t ims = wisp_req_header(req, "If-Modified-Since");
    if (inm.ptr) {
        ims.ptr = NULL;
        if (wisp_etag_match(inm, etag) == 1) {
            close(fd);
            wisp_res_send(res, 304, NULL, NULL, 0);
            return;
        }
    }
    if (enc)
        wisp_res_header(res, "Content-Encoding", enc_name[enc]);
    if (ims.ptr) {
        time_t t = parse_http_date(ims.ptr, ims.len);
        if (t >= 0 && st.st_mtime <= t) {
            close(fd);
            wisp_res_send(res, 304, NULL, NULL, 0);
            return;
        }
    }
    const char *ctype = wisp__mime_type(j->path, j->n);
    uint64_t size = (uint64_t)st.st_size;
    wisp_str_t range = wisp_req_header(req, "Range");
    if (range.ptr) {
        uint64_t from = 0, to = 0;
        int rr = parse_range(range, size, &from, &to);
        if (rr < 0) {
            char cr[64];
            snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
            close(fd);
            wisp_res_header(res, "Content-Range", cr);
            wisp_res_send(res, 416, "text/plain", "Range Not Satisfiable\n",
                          22);
            return;
        }
        if (rr > 0) {
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

static void job_abort(wisp_res_t *res, void *arg)
{
    sjob *j = arg;
    (void)res;
    j->res = NULL; /* the continuation still frees the job */
}

static void opened(wisp_future_t *f, void *arg)
{
    sjob *j = arg;
    if (j->res) {
        wisp_res_on_abort(j->res, NULL, NULL);
        serve(j, j->res, f);
    }
    wisp_future_unref(f);
    free(j);
}

void wisp__static_handler(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    static_ctx *s = arg;
    wisp_str_t rel = wisp_req_param(req, "path");
    if (rel.len >= 4096 - 256 || has_dotdot(rel.ptr, rel.len)) {
        wisp_res_send(res, 403, "text/plain", "Forbidden\n", 10);
        return;
    }
    /* Relative to the root: strip leading slashes. */
    while (rel.len && rel.ptr[0] == '/') {
        rel.ptr++;
        rel.len--;
    }
    size_t il = strlen(s->index);
    /* Room for '/', the index, a ".br"/".gz" extension and the NUL. */
    sjob *j = malloc(sizeof *j + rel.len + il + 3 + 4);
    if (!j) {
        wisp_res_send(res, 500, NULL, NULL, 0);
        return;
    }
    j->s = s;
    j->res = res;
    j->enc_try[0] = j->enc_try[1] = 0;
    if (s->precompressed) {
        /* The codings the client accepts, the better weighted first
         * (br on a tie: it is the smaller). */
        wisp_str_t ae = wisp_req_header(req, "Accept-Encoding");
        int qb = wisp_accept_encoding_q(ae, "br");
        int qg = wisp_accept_encoding_q(ae, "gzip");
        int k = 0;
        if (qb > 0 && qb >= qg)
            j->enc_try[k++] = ENC_BR;
        if (qg > 0)
            j->enc_try[k++] = ENC_GZIP;
        if (qb > 0 && qb < qg)
            j->enc_try[k++] = ENC_BR;
    }
    wisp_str_t full = wisp_req_path(req);
    j->slash = full.len && full.ptr[full.len - 1] == '/';
    memcpy(j->path, rel.ptr, rel.len);
    j->n = rel.len;
    if (j->n == 0)
        j->path[j->n++] = '.';
    j->path[j->n] = 0;
    wisp_future_t *f = wisp_pool_submit(s->pool, WISP_PRIO_NORMAL,
                                        wisp_res_loop(res), open_job, j);
    if (!f) {
        free(j);
        wisp_res_send(res, 500, NULL, NULL, 0);
        return;
    }
    if (wisp_future_then(f, opened, j) < 0) {
        /* No continuation: the job may still be read by a pool thread,
         * so it is freed only if the future has settled already (the
         * queue was full); otherwise it is left (out of memory). */
        if (wisp_future_state(f) != WISP_FUTURE_PENDING)
            free(j);
        wisp_future_unref(f);
        wisp_res_send(res, 500, NULL, NULL, 0);
        return;
    }
    wisp_res_on_abort(res, job_abort, j);
}
