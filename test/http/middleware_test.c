/* In-process server tests of middleware (src/http/middleware.c,
 * wisp/middleware.h) with the use cases as real middleware: the order
 * (global → groups by prefix length → route; after- and done-hooks in
 * reverse), bearer authentication answering early (401), an
 * asynchronous check on the worker pool continued with wisp_res_next,
 * request ids, Server-Timing, a per-client rate limit shared by the
 * loops (429), CORS in front of authentication, a hook that says DONE
 * without answering (500), custom error answers (JSON 404 with CORS
 * headers, 405 keeping Allow, 413 and 400 before routing), and refused
 * configurations. Other clients are served after every refusal. */
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"

/* ------------------------------------------------------------ client */

static int dial_from(uint16_t port, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (src) {
        struct sockaddr_in b = {.sin_family = AF_INET};
        inet_pton(AF_INET, src, &b.sin_addr);
        if (bind(fd, (struct sockaddr *)&b, sizeof b) < 0) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static char answer[16384];

/* Send `req` whole (Connection: close added unless `raw`) and read the
 * answer until EOF; the poll timeout is only a failure bound. */
static const char *ask_full(uint16_t port, const char *src, const char *req,
                            int raw)
{
    answer[0] = 0;
    int fd = dial_from(port, src);
    if (fd < 0)
        return answer;
    char full[8192];
    int l = raw ? snprintf(full, sizeof full, "%s", req)
                : snprintf(full, sizeof full, "%sConnection: close\r\n\r\n",
                           req);
    if (write(fd, full, (size_t)l) != l) {
        close(fd);
        return answer;
    }
    size_t n = 0;
    while (n + 1 < sizeof answer) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 20000) <= 0)
            break;
        ssize_t r = read(fd, answer + n, sizeof answer - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    answer[n] = 0;
    close(fd);
    return answer;
}

static uint16_t port;
#define ASK(req) ask_full(port, NULL, req, 0)
#define ASK_FROM(src, req) ask_full(port, src, req, 0)

static int has(const char *a, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "\r\n%s\r\n", line);
    return strstr(a, want) != NULL;
}

static int has_name(const char *a, const char *name)
{
    char want[128];
    snprintf(want, sizeof want, "\r\n%s:", name);
    const char *end = strstr(a, "\r\n\r\n");
    const char *p = strstr(a, want);
    return p && end && p < end;
}

static const char *body_of(const char *a)
{
    const char *b = strstr(a, "\r\n\r\n");
    return b ? b + 4 : "";
}

#define EXPECT(a, line) CHECK_MSG(has(a, line), "want \"%s\" in:\n%s", line, a)
#define EXPECT_NO(a, name)                                                  \
    CHECK_MSG(!has_name(a, name), "unwanted %s in:\n%s", name, a)
#define STATUS(a, s)                                                        \
    CHECK_MSG(strncmp(a, "HTTP/1.1 " s, 12) == 0, "want %s:\n%s", s, a)

/* ------------------------------------------------------------ order */

/* Each hook adds a header with its letter; the head's field order then
 * shows the order the hooks ran in. The done-hooks write into `trail`. */
static char trail[64];
static pthread_mutex_t trail_mu = PTHREAD_MUTEX_INITIALIZER;

static wisp_mw_result_t tag_before(wisp_req_t *req, wisp_res_t *res,
                                   void *arg)
{
    (void)req;
    wisp_res_header(res, "X-Before", arg);
    return WISP_MW_NEXT;
}

static void tag_after(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    wisp_res_header(res, "X-After", arg);
}

static void tag_done(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)res;
    pthread_mutex_lock(&trail_mu);
    strncat(trail, arg, sizeof trail - strlen(trail) - 1);
    pthread_mutex_unlock(&trail_mu);
}

static void on_ok(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_header(res, "X-Handler", "yes");
    wisp_res_send(res, 200, "text/plain", "ok\n", 3);
}

/* "X-Before: A ... X-Before: B": the values of `name` in head order. */
static void values(const char *a, const char *name, char *out, size_t cap)
{
    out[0] = 0;
    const char *end = strstr(a, "\r\n\r\n");
    char want[64];
    snprintf(want, sizeof want, "\r\n%s: ", name);
    const char *p = a;
    while ((p = strstr(p, want)) && end && p < end) {
        p += strlen(want);
        size_t l = strlen(out);
        if (l + 2 < cap) {
            out[l] = *p;
            out[l + 1] = 0;
        }
    }
}

/* ------------------------------------------------------------ auth */

static wisp_mw_result_t bearer(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    const char *token = arg;
    wisp_str_t h = wisp_req_header(req, "Authorization");
    size_t tl = strlen(token);
    if (h.ptr && h.len == 7 + tl && strncasecmp(h.ptr, "Bearer ", 7) == 0 &&
        memcmp(h.ptr + 7, token, tl) == 0)
        return WISP_MW_NEXT;
    wisp_res_header(res, "WWW-Authenticate", "Bearer realm=\"api\"");
    wisp_res_send(res, 401, "text/plain", "unauthorized\n", 13);
    return WISP_MW_DONE;
}

/* An asynchronous check: a pool job decides (a slow directory lookup in
 * real life), the response waits on its future. */
static wisp_pool_t *pool;

static int lookup_job(void *arg, void **value, wisp_free_cb *destroy)
{
    (void)value;
    (void)destroy;
    return arg ? 0 : -EACCES;
}

static void lookup_done(wisp_res_t *res, wisp_future_t *f, void *arg)
{
    (void)arg;
    if (wisp_future_error(f) < 0) {
        wisp_res_send(res, 403, "text/plain", "denied\n", 7);
        return;
    }
    wisp_res_header(res, "X-Checked", "async");
    CHECK_EQ_INT(wisp_res_next(res), 0);
}

static wisp_mw_result_t async_check(wisp_req_t *req, wisp_res_t *res,
                                    void *arg)
{
    (void)arg;
    int allow = wisp_req_header(req, "X-User").ptr != NULL;
    wisp_future_t *f = wisp_pool_submit(pool, WISP_PRIO_NORMAL,
                                        wisp_res_loop(res), lookup_job,
                                        allow ? (void *)1 : NULL);
    if (!f)
        return WISP_MW_NEXT;
    int r = wisp_res_await(res, f, lookup_done, NULL, NULL);
    wisp_future_unref(f);
    /* Going on now would be too early: the chain is running. */
    CHECK_EQ_INT(wisp_res_next(res), WISP_ESTATE);
    return r == 0 ? WISP_MW_ASYNC : WISP_MW_NEXT;
}

static wisp_mw_result_t says_done(wisp_req_t *req, wisp_res_t *res,
                                  void *arg)
{
    (void)req;
    (void)res;
    (void)arg;
    return WISP_MW_DONE; /* ...without answering: wisp sends 500 */
}

/* ------------------------------------------------------ request ids */

static _Atomic uint64_t id_counter;

static int good_id(wisp_str_t v)
{
    if (!v.ptr || v.len == 0 || v.len > 64)
        return 0;
    for (size_t i = 0; i < v.len; i++) {
        char ch = v.ptr[i];
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
              (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_' ||
              ch == '.'))
            return 0;
    }
    return 1;
}

static wisp_mw_result_t request_id(wisp_req_t *req, wisp_res_t *res,
                                   void *arg)
{
    (void)arg;
    wisp_str_t in = wisp_req_header(req, "X-Request-Id");
    if (good_id(in)) {
        wisp_res_header_n(res, "X-Request-Id", 12, in.ptr, in.len);
    } else {
        char id[32];
        snprintf(id, sizeof id, "%016llx",
                 (unsigned long long)(++id_counter * 0x9e3779b97f4a7c15ull));
        wisp_res_header(res, "X-Request-Id", id);
    }
    return WISP_MW_NEXT;
}

/* The handler reads the id back to log it, here to echo it. */
static void on_whoami(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_str_t id = wisp_res_get_header(res, "X-Request-Id");
    wisp_res_send(res, 200, "text/plain", id.ptr, id.len);
}

/* ---------------------------------------------------------- timing */

static void timing_after(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t t0 = wisp_req_start_ns(req);
    CHECK(t0 > 0 && t0 <= now);
    char v[64];
    snprintf(v, sizeof v, "app;dur=%.3f", (double)(now - t0) / 1e6);
    wisp_res_header(res, "Server-Timing", v);
}

/* ------------------------------------------------------ rate limit */

/* One bucket per client address, shared by every loop under a lock. */
typedef struct client_rate {
    char peer[64];
    wisp_rate_t bucket;
} client_rate;

static struct {
    pthread_mutex_t mu;
    client_rate slot[16];
    unsigned n;
} rl = {.mu = PTHREAD_MUTEX_INITIALIZER};

static wisp_mw_result_t rate_limit(wisp_req_t *req, wisp_res_t *res,
                                   void *arg)
{
    (void)arg;
    const char *peer = wisp_req_peer(req);
    uint64_t now = wisp_loop_now(wisp_req_loop(req));
    int ok = 1;
    pthread_mutex_lock(&rl.mu);
    client_rate *c = NULL;
    for (unsigned i = 0; i < rl.n; i++)
        if (strcmp(rl.slot[i].peer, peer) == 0)
            c = &rl.slot[i];
    if (!c && rl.n < 16) {
        c = &rl.slot[rl.n++];
        snprintf(c->peer, sizeof c->peer, "%s", peer);
        /* Three at once, then one every 1000 s: the test never sees a
         * refill. */
        wisp_rate_init(&c->bucket, 0.001, 3, now);
    }
    if (c)
        ok = wisp_rate_take(&c->bucket, now, 1);
    pthread_mutex_unlock(&rl.mu);
    if (ok)
        return WISP_MW_NEXT;
    wisp_res_header(res, "Retry-After", "1000");
    wisp_res_send(res, 429, "text/plain", "slow down\n", 10);
    return WISP_MW_DONE;
}

/* --------------------------------------------------------- errors */

static void json_errors(wisp_req_t *req, int status,
                        wisp_error_reply_t *reply, void *arg)
{
    (void)arg;
    char body[128];
    int n = snprintf(body, sizeof body, "{\"error\":%d,\"parsed\":%s}",
                     status, req ? "true" : "false");
    CHECK_EQ_INT(wisp_error_reply_header(reply, "Content-Length", "1"),
                 -EINVAL);
    CHECK_EQ_INT(wisp_error_reply_header(reply, "Allow", "GET"), -EINVAL);
    CHECK_EQ_INT(wisp_error_reply_header(reply, "X-Bad", "a\r\nb"), -EINVAL);
    CHECK_EQ_INT(wisp_error_reply_header(reply, "Bad Name", "x"), -EINVAL);
    CHECK_EQ_INT(wisp_error_reply_body(reply, "text/x\r\n", "x", 1),
                 -EINVAL);
    static char big[5000];
    CHECK_EQ_INT(wisp_error_reply_body(reply, NULL, big, sizeof big),
                 -ENOSPC);
    wisp_error_reply_header(reply, "X-Error-Shape", "json");
    wisp_error_reply_body(reply, "application/json", body, (size_t)n);
}

/* ---------------------------------------------------------- route */

static wisp_mw_result_t check_route_status(wisp_req_t *req,
                                           wisp_res_t *res, void *arg)
{
    (void)arg;
    char v[8];
    snprintf(v, sizeof v, "%d", wisp_req_route_status(req));
    wisp_res_header(res, "X-Route-Status", v);
    return WISP_MW_NEXT;
}

static void test_config_errors(void)
{
    wisp_server_t *srv = wisp_server_create(NULL);
    CHECK(srv != NULL);
    wisp_mw_t none = {0};
    wisp_mw_t one = {.before = tag_before, .arg = "A"};
    CHECK_EQ_INT(wisp_server_use(NULL, NULL, &one), -EINVAL);
    CHECK_EQ_INT(wisp_server_use(srv, NULL, NULL), -EINVAL);
    CHECK_EQ_INT(wisp_server_use(srv, NULL, &none), -EINVAL);
    CHECK_EQ_INT(wisp_server_use(srv, "api", &one), -EINVAL);
    CHECK_EQ_INT(wisp_server_use(srv, "/a\r\n", &one), -EINVAL);
    int r = 0, n = 0;
    while ((r = wisp_server_use(srv, "/x", &one)) == 0)
        n++;
    CHECK_EQ_INT(r, -ENOSPC);
    CHECK_EQ_INT(n, WISP_MW_MAX_SERVER);
    wisp_mw_t nine[WISP_MW_MAX_ROUTE + 1];
    for (int i = 0; i < WISP_MW_MAX_ROUTE + 1; i++)
        nine[i] = one;
    wisp_route_opts_t o = {.mw = nine, .mw_count = WISP_MW_MAX_ROUTE + 1};
    CHECK_EQ_INT(wisp_server_route(srv, WISP_METHOD_GET, "/r", on_ok, NULL,
                                   &o),
                 -ENOSPC);
    o.mw = NULL;
    o.mw_count = 1;
    CHECK_EQ_INT(wisp_server_route(srv, WISP_METHOD_GET, "/r", on_ok, NULL,
                                   &o),
                 -EINVAL);
    o.mw = &none;
    CHECK_EQ_INT(wisp_server_route(srv, WISP_METHOD_GET, "/r", on_ok, NULL,
                                   &o),
                 -EINVAL);
    o.mw = nine;
    o.mw_count = WISP_MW_MAX_ROUTE;
    CHECK_EQ_INT(wisp_server_route(srv, WISP_METHOD_GET, "/r", on_ok, NULL,
                                   &o),
                 0);
    CHECK_EQ_INT(wisp_server_on_error(NULL, NULL, NULL), -EINVAL);
    wisp_server_destroy(srv); /* frees the entries (ASan checks) */
}

int main(void)
{
    test_config_errors();

    wisp_pool_config_t pc;
    wisp_pool_config_init(&pc);
    pc.max_threads = 2;
    pool = wisp_pool_create(&pc);
    CHECK(pool != NULL);

    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 2;
    cfg.handle_signals = 0;
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK(srv != NULL);

    /* Order: registered out of order on purpose. */
    wisp_mw_t c = {tag_before, tag_after, tag_done, "C"};
    wisp_mw_t b = {tag_before, tag_after, tag_done, "B"};
    wisp_mw_t a = {tag_before, tag_after, tag_done, "A"};
    wisp_mw_t d = {tag_before, tag_after, tag_done, "D"};
    wisp_mw_t e = {tag_before, tag_after, tag_done, "E"};
    CHECK_EQ_INT(wisp_server_use(srv, "/o/v1/", &c), 0);
    CHECK_EQ_INT(wisp_server_use(srv, "/o", &b), 0);
    CHECK_EQ_INT(wisp_server_use(srv, NULL, &a), 0);
    wisp_route_opts_t ro = {.mw = (wisp_mw_t[]){d, e}, .mw_count = 2};
    CHECK_EQ_INT(wisp_server_route(srv, WISP_METHOD_GET, "/o/v1/x", on_ok,
                                   NULL, &ro),
                 0);
    wisp_server_route(srv, WISP_METHOD_GET, "/o/v1x", on_ok, NULL, NULL);

    /* Authentication on a group, an asynchronous check on another. */
    wisp_mw_t auth = {.before = bearer, .arg = "s3cret"};
    CHECK_EQ_INT(wisp_server_use(srv, "/private", &auth), 0);
    wisp_mw_t after_auth = {tag_before, tag_after, NULL, "P"};
    CHECK_EQ_INT(wisp_server_use(srv, "/private", &after_auth), 0);
    wisp_server_route(srv, WISP_METHOD_GET, "/private/data", on_ok, NULL,
                      NULL);
    wisp_mw_t check = {.before = async_check};
    CHECK_EQ_INT(wisp_server_use(srv, "/slow", &check), 0);
    wisp_server_route(srv, WISP_METHOD_GET, "/slow/data", on_ok, NULL, NULL);
    wisp_mw_t bad = {.before = says_done};
    wisp_route_opts_t bo = {.mw = &bad, .mw_count = 1};
    wisp_server_route(srv, WISP_METHOD_GET, "/buggy", on_ok, NULL, &bo);

    /* Request ids and timing for everything; rate limits on /limited. */
    wisp_mw_t rid = {.before = request_id};
    CHECK_EQ_INT(wisp_server_use(srv, "/", &rid), 0);
    wisp_mw_t timing = {.after = timing_after};
    CHECK_EQ_INT(wisp_server_use(srv, NULL, &timing), 0);
    wisp_server_route(srv, WISP_METHOD_GET, "/whoami", on_whoami, NULL,
                      NULL);
    wisp_mw_t rate = {.before = rate_limit};
    CHECK_EQ_INT(wisp_server_use(srv, "/limited", &rate), 0);
    wisp_server_route(srv, WISP_METHOD_GET, "/limited", on_ok, NULL, NULL);

    /* CORS (built in, always first) in front of the authentication. */
    CHECK_EQ_INT(wisp_server_cors(srv, "/private", NULL), 0);
    CHECK_EQ_INT(wisp_server_cors(srv, "/nowhere", NULL), 0);

    wisp_mw_t rs = {.before = check_route_status};
    CHECK_EQ_INT(wisp_server_use(srv, "/rs", &rs), 0);
    wisp_server_route(srv, WISP_METHOD_POST, "/rs/only-post", on_ok, NULL,
                      NULL);
    wisp_route_opts_t small = {.max_body_bytes = 10};
    wisp_server_route(srv, WISP_METHOD_POST, "/small", on_ok, NULL, &small);

    CHECK_EQ_INT(wisp_server_on_error(srv, json_errors, NULL), 0);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    CHECK_EQ_INT(wisp_server_use(srv, NULL, &a), WISP_ESTATE);
    CHECK_EQ_INT(wisp_server_on_error(srv, NULL, NULL), WISP_ESTATE);
    port = wisp_server_port(srv);
    CHECK_EQ_INT(wisp_server_start(srv), 0);
    const char *r;
    char v[32];

    /* global → groups by prefix length → route; after in reverse. */
    trail[0] = 0;
    r = ASK("GET /o/v1/x HTTP/1.1\r\nHost: x\r\n");
    STATUS(r, "200");
    values(r, "X-Before", v, sizeof v);
    CHECK_MSG(strcmp(v, "ABCDE") == 0, "before order %s", v);
    values(r, "X-After", v, sizeof v);
    CHECK_MSG(strcmp(v, "EDCBA") == 0, "after order %s", v);
    EXPECT(r, "X-Handler: yes");
    /* Done-hooks run before the loop flushes the response. */
    pthread_mutex_lock(&trail_mu);
    CHECK_MSG(strcmp(trail, "EDCBA") == 0, "done order %s", trail);
    pthread_mutex_unlock(&trail_mu);
    /* "/o/v1" does not cover "/o/v1x". */
    r = ASK("GET /o/v1x HTTP/1.1\r\nHost: x\r\n");
    values(r, "X-Before", v, sizeof v);
    CHECK_MSG(strcmp(v, "AB") == 0, "prefix %s", v);
    /* A 404 under a group goes through it too. */
    r = ASK("GET /o/none HTTP/1.1\r\nHost: x\r\n");
    STATUS(r, "404");
    values(r, "X-After", v, sizeof v);
    CHECK_MSG(strcmp(v, "BA") == 0, "404 after %s", v);
    CHECK_MSG(strstr(body_of(r), "\"error\":404") != NULL, "%s", r);

    /* Authentication: early 401, with timing (entered) and CORS. */
    r = ASK("GET /private/data HTTP/1.1\r\nHost: x\r\n"
            "Origin: https://a.example\r\n");
    STATUS(r, "401");
    EXPECT(r, "WWW-Authenticate: Bearer realm=\"api\"");
    EXPECT(r, "Access-Control-Allow-Origin: *");
    CHECK(has_name(r, "Server-Timing"));
    CHECK(has_name(r, "X-Request-Id"));
    values(r, "X-Before", v, sizeof v);
    CHECK_MSG(strcmp(v, "A") == 0, "P not entered: %s", v);
    EXPECT_NO(r, "X-Handler");
    r = ASK("GET /private/data HTTP/1.1\r\nHost: x\r\n"
            "Authorization: Bearer wrong\r\n");
    STATUS(r, "401");
    r = ASK("GET /private/data HTTP/1.1\r\nHost: x\r\n"
            "Authorization: Bearer s3cret\r\n");
    STATUS(r, "200");
    values(r, "X-Before", v, sizeof v);
    CHECK_MSG(strcmp(v, "AP") == 0, "auth passed: %s", v);
    /* A preflight is answered by CORS before the authentication. */
    r = ASK("OPTIONS /private/data HTTP/1.1\r\nHost: x\r\n"
            "Origin: https://a.example\r\n"
            "Access-Control-Request-Method: GET\r\n");
    STATUS(r, "204");
    EXPECT(r, "Access-Control-Allow-Origin: *");
    /* CORS is first: nothing after it was entered. */
    EXPECT_NO(r, "Server-Timing");
    EXPECT_NO(r, "X-Request-Id");

    /* Asynchronous continuation after a future on the pool. */
    r = ASK("GET /slow/data HTTP/1.1\r\nHost: x\r\nX-User: u\r\n");
    STATUS(r, "200");
    EXPECT(r, "X-Checked: async");
    EXPECT(r, "X-Handler: yes");
    CHECK(has_name(r, "Server-Timing"));
    r = ASK("GET /slow/data HTTP/1.1\r\nHost: x\r\n");
    STATUS(r, "403");
    EXPECT_NO(r, "X-Handler");
    /* Pipelined on one connection: the second waits its turn. */
    r = ask_full(port, NULL,
                 "GET /slow/data HTTP/1.1\r\nHost: x\r\nX-User: u\r\n\r\n"
                 "GET /whoami HTTP/1.1\r\nHost: x\r\nX-Request-Id: p-2\r\n"
                 "Connection: close\r\n\r\n",
                 1);
    STATUS(r, "200");
    CHECK_MSG(strstr(r, "X-Checked: async") < strstr(r, "\r\n\r\np-2"),
              "pipelined order:\n%s", r);

    /* DONE without an answer: 500, and the next client is served. */
    r = ASK("GET /buggy HTTP/1.1\r\nHost: x\r\n");
    STATUS(r, "500");
    EXPECT_NO(r, "X-Handler");

    /* Request ids: propagated, generated, replaced when unusable. */
    r = ASK("GET /whoami HTTP/1.1\r\nHost: x\r\nX-Request-Id: abc-123\r\n");
    STATUS(r, "200");
    EXPECT(r, "X-Request-Id: abc-123");
    CHECK_MSG(strcmp(body_of(r), "abc-123") == 0, "%s", r);
    r = ASK("GET /whoami HTTP/1.1\r\nHost: x\r\n");
    CHECK_EQ_INT(strlen(body_of(r)), 16);
    r = ASK("GET /whoami HTTP/1.1\r\nHost: x\r\n"
            "X-Request-Id: has spaces\r\n");
    CHECK_EQ_INT(strlen(body_of(r)), 16);

    /* A per-client limit, shared by both loops: three answers, then
     * 429 whichever loop gets the connection; another client (another
     * loopback address) is still served. */
    for (int i = 0; i < 3; i++) {
        r = ASK_FROM("127.0.0.1", "GET /limited HTTP/1.1\r\nHost: x\r\n");
        STATUS(r, "200");
    }
    for (int i = 0; i < 4; i++) {
        r = ASK_FROM("127.0.0.1", "GET /limited HTTP/1.1\r\nHost: x\r\n");
        STATUS(r, "429");
        EXPECT(r, "Retry-After: 1000");
    }
    r = ASK_FROM("127.0.0.2", "GET /limited HTTP/1.1\r\nHost: x\r\n");
    STATUS(r, "200");

    /* wisp_req_route_status, and a 405 that keeps Allow. */
    r = ASK("GET /rs/only-post HTTP/1.1\r\nHost: x\r\n");
    STATUS(r, "405");
    EXPECT(r, "Allow: POST");
    EXPECT(r, "X-Route-Status: 405");
    EXPECT(r, "Content-Type: application/json");
    EXPECT(r, "X-Error-Shape: json");
    CHECK_MSG(strcmp(body_of(r), "{\"error\":405,\"parsed\":true}") == 0,
              "%s", r);
    r = ASK("POST /rs/only-post HTTP/1.1\r\nHost: x\r\n");
    EXPECT(r, "X-Route-Status: 0");
    r = ASK("GET /rs/nothing HTTP/1.1\r\nHost: x\r\n");
    EXPECT(r, "X-Route-Status: 404");

    /* Errors before routing: 413 (parsed), 400 (not), HEAD: no body. */
    r = ASK("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n");
    STATUS(r, "413");
    EXPECT(r, "Content-Type: application/json");
    CHECK_MSG(strcmp(body_of(r), "{\"error\":413,\"parsed\":true}") == 0,
              "%s", r);
    r = ask_full(port, NULL, "GET / HTTP/1.1\r\nBad Header\r\n\r\n", 1);
    STATUS(r, "400");
    EXPECT(r, "Connection: close");
    EXPECT(r, "X-Error-Shape: json");
    CHECK_MSG(strcmp(body_of(r), "{\"error\":400,\"parsed\":false}") == 0,
              "%s", r);
    r = ASK("GET /whoami HTTP/1.1\r\nHost: x\r\n");
    STATUS(r, "200");

    wisp_server_stop(srv);
    CHECK_EQ_INT(wisp_server_wait(srv), 0);
    wisp_server_destroy(srv);
    wisp_pool_destroy(pool);
    return t_done("http_middleware");
}
