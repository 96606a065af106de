/* In-process server tests of the request helpers: cookies read and set
 * (src/http/cookie.c, with the refusals of RFC 6265 §4.1.1 and the
 * prefixes), printf and JSON bodies, and conditional requests with
 * ETag / If-None-Match (src/http/reply.c): 304 without a body, 412 for
 * other methods, malformed headers ignored, and other clients served
 * after each bad input. */
#include <arpa/inet.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"

static uint16_t port;
static char answer[16384];

static const char *ask(const char *req)
{
    answer[0] = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return answer;
    }
    char full[8192];
    int l = snprintf(full, sizeof full, "%sConnection: close\r\n\r\n", req);
    if (write(fd, full, (size_t)l) != l) {
        close(fd);
        return answer;
    }
    size_t n = 0;
    while (n + 1 < sizeof answer) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 20000) <= 0) /* a failure bound only */
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

static int has(const char *a, const char *line)
{
    char want[1024];
    snprintf(want, sizeof want, "\r\n%s\r\n", line);
    return strstr(a, want) != NULL;
}

static const char *body_of(const char *a)
{
    const char *b = strstr(a, "\r\n\r\n");
    return b ? b + 4 : "";
}

#define EXPECT(a, line) CHECK_MSG(has(a, line), "want \"%s\" in:\n%s", line, a)
#define STATUS(a, s)                                                        \
    CHECK_MSG(strncmp(a, "HTTP/1.1 " s, 12) == 0, "want %s:\n%s", s, a)
#define BODY(a, b)                                                          \
    CHECK_MSG(strcmp(body_of(a), b) == 0, "want body \"%s\":\n%s", b, a)

/* GET /cookies: every cookie of the request, "name=value;" each, then
 * the value of "sid" looked up. */
static void on_cookies(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    char out[512] = "";
    wisp_cookie_iter_t it;
    wisp_str_t n, v;
    wisp_cookie_iter_init(&it, req);
    while (wisp_cookie_next(&it, &n, &v)) {
        size_t l = strlen(out);
        snprintf(out + l, sizeof out - l, "%.*s=%.*s;", (int)n.len, n.ptr,
                 (int)v.len, v.ptr);
    }
    CHECK_EQ_INT(wisp_cookie_next(&it, &n, &v), 0);
    CHECK(n.ptr == NULL);
    char sid[8];
    ssize_t r = wisp_req_cookie(req, "sid", sid, sizeof sid);
    wisp_res_printf(res, 200, "text/plain", "%s|sid:%zd:%s", out, r,
                    r >= 0 ? sid : "");
}

/* GET /set: the attribute rules, each refusal checked here; the valid
 * ones reach the client. */
static void on_set(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_cookie_opts_t o = {0};
    CHECK_EQ_INT(wisp_res_set_cookie(res, "", "v", NULL), -EINVAL);
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a b", "v", NULL), -EINVAL);
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a;b", "v", NULL), -EINVAL);
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a", "v v", NULL), -EINVAL);
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a", "v;x", NULL), -EINVAL);
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a", "v,x", NULL), -EINVAL);
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a", "\"", NULL), -EINVAL);
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a", "x\\y", NULL), -EINVAL);
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a", "\r\n", NULL), -EINVAL);
    CHECK_EQ_INT(wisp_res_set_cookie(res, NULL, "v", NULL), -EINVAL);
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a", NULL, NULL), -EINVAL);
    o.path = "/a;b";
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a", "v", &o), -EINVAL);
    o.path = "/a\nb";
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a", "v", &o), -EINVAL);
    o.path = NULL;
    o.domain = "exa mple.com";
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a", "v", &o), -EINVAL);
    o.domain = "example..com";
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a", "v", &o), -EINVAL);
    o.domain = NULL;
    o.max_age_s = -1;
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a", "v", &o), -EINVAL);
    o.max_age_s = 0;
    o.same_site = WISP_SAME_SITE_NONE; /* without Secure */
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a", "v", &o), -EINVAL);
    o.same_site = (wisp_same_site_t)7;
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a", "v", &o), -EINVAL);
    o.same_site = WISP_SAME_SITE_UNSET;
    CHECK_EQ_INT(wisp_res_set_cookie(res, "__Secure-a", "v", &o), -EINVAL);
    o.secure = 1;
    o.path = "/x";
    CHECK_EQ_INT(wisp_res_set_cookie(res, "__Host-a", "v", &o), -EINVAL);
    o.path = "/";
    o.domain = "example.com";
    CHECK_EQ_INT(wisp_res_set_cookie(res, "__Host-a", "v", &o), -EINVAL);
    static char big[4100];
    memset(big, 'x', sizeof big - 1);
    CHECK_EQ_INT(wisp_res_set_cookie(res, "a", big, NULL), -ENOSPC);

    /* The valid ones. */
    CHECK_EQ_INT(wisp_res_set_cookie(res, "plain", "1", NULL), 0);
    CHECK_EQ_INT(wisp_res_set_cookie(res, "quoted", "\"a b\"", NULL),
                 -EINVAL);
    CHECK_EQ_INT(wisp_res_set_cookie(res, "quoted", "\"ab\"", NULL), 0);
    wisp_cookie_opts_t full = {
        .max_age_s = 3600,
        .expires = 1780000000, /* Thu, 28 May 2026 20:26:40 GMT */
        .path = "/app",
        .domain = "example.com",
        .secure = 1,
        .http_only = 1,
        .same_site = WISP_SAME_SITE_STRICT,
    };
    CHECK_EQ_INT(wisp_res_set_cookie(res, "sid", "abc123", &full), 0);
    wisp_cookie_opts_t host = {.secure = 1, .path = "/",
                               .same_site = WISP_SAME_SITE_NONE};
    CHECK_EQ_INT(wisp_res_set_cookie(res, "__Host-t", "z", &host), 0);
    wisp_cookie_opts_t del = {.path = "/app"};
    CHECK_EQ_INT(wisp_res_clear_cookie(res, "old", &del), 0);
    wisp_res_send(res, 204, NULL, NULL, 0);
}

/* GET /json: a document; GET /json-bad: an unfinished one (not sent). */
static void on_json(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_json_writer_t w;
    wisp_json_writer_init_dyn(&w);
    wisp_json_obj_begin(&w);
    wisp_json_kv_str(&w, "path", "/json");
    wisp_json_kv_int(&w, "n", 3);
    wisp_str_t p = wisp_req_path(req);
    if (p.len == 5)
        wisp_json_obj_end(&w);
    int r = wisp_res_json(res, 200, &w);
    if (p.len != 5) {
        CHECK_EQ_INT(r, WISP_ESTATE);
        wisp_res_printf(res, 500, "text/plain", "json error %d", r);
    } else {
        CHECK_EQ_INT(r, 0);
    }
    wisp_json_writer_free(&w);
}

/* GET /big: a printf body past the 1 KiB stack buffer. */
static void on_big(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    CHECK_EQ_INT(wisp_res_printf(res, 200, "text/plain", NULL), -EINVAL);
    wisp_res_printf(res, 200, "text/plain", "%3000s|%d", "end", 42);
}

/* /doc: a dynamic document with a computed ETag; /tagged: a given weak
 * one. Both GET and PUT routed. */
static void on_doc(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    const char *etag = arg;
    CHECK_EQ_INT(wisp_res_send_etag(res, "text/plain", "x", 1, "bad"),
                 -EINVAL);
    wisp_res_send_etag(res, "text/plain", "document v1\n", 12, etag);
}

int main(void)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 1;
    cfg.handle_signals = 0;
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK(srv != NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/cookies", on_cookies, NULL,
                      NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/set", on_set, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/json", on_json, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/json-bad", on_json, NULL,
                      NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/big", on_big, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/doc", on_doc, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_PUT, "/doc", on_doc, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/tagged", on_doc, "W/\"v1\"",
                      NULL);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    port = wisp_server_port(srv);
    CHECK_EQ_INT(wisp_server_start(srv), 0);
    const char *r;

    /* Cookies: several fields, spaces, quotes, junk pairs skipped. */
    r = ask("GET /cookies HTTP/1.1\r\nHost: x\r\n"
            "Cookie: a=1; sid=\"xyz\";  b = 2 ;junk; =novalue;c=\r\n"
            "Cookie: d=4\r\n");
    STATUS(r, "200");
    BODY(r, "a=1;sid=xyz;b=2;c=;d=4;|sid:3:xyz");
    r = ask("GET /cookies HTTP/1.1\r\nHost: x\r\nCookie: sid=toolongvalue\r\n");
    BODY(r, "sid=toolongvalue;|sid:-105:");
    r = ask("GET /cookies HTTP/1.1\r\nHost: x\r\nCookie: ;;; ==; x\r\n");
    BODY(r, "|sid:-2:");
    r = ask("GET /cookies HTTP/1.1\r\nHost: x\r\n");
    BODY(r, "|sid:-2:");

    r = ask("GET /set HTTP/1.1\r\nHost: x\r\n");
    STATUS(r, "204");
    EXPECT(r, "Set-Cookie: plain=1");
    EXPECT(r, "Set-Cookie: quoted=\"ab\"");
    EXPECT(r, "Set-Cookie: sid=abc123; Max-Age=3600; "
              "Expires=Thu, 28 May 2026 20:26:40 GMT; Path=/app; "
              "Domain=example.com; Secure; HttpOnly; SameSite=Strict");
    EXPECT(r, "Set-Cookie: __Host-t=z; Path=/; Secure; SameSite=None");
    EXPECT(r, "Set-Cookie: old=; Max-Age=0; "
              "Expires=Thu, 01 Jan 1970 00:00:01 GMT; Path=/app");
    CHECK_MSG(strstr(r, "Set-Cookie: a=") == NULL, "refused sent:\n%s", r);

    /* JSON and printf bodies. */
    r = ask("GET /json HTTP/1.1\r\nHost: x\r\n");
    STATUS(r, "200");
    EXPECT(r, "Content-Type: application/json");
    BODY(r, "{\"path\":\"/json\",\"n\":3}");
    r = ask("GET /json-bad HTTP/1.1\r\nHost: x\r\n");
    STATUS(r, "500");
    r = ask("GET /big HTTP/1.1\r\nHost: x\r\n");
    STATUS(r, "200");
    EXPECT(r, "Content-Length: 3003");
    CHECK(strlen(body_of(r)) == 3003 && strcmp(body_of(r) + 2997, "end|42") == 0);

    /* Conditional requests on a dynamic document. */
    char etag[20];
    wisp_etag_of("document v1\n", 12, etag);
    char line[128], req[256];
    snprintf(line, sizeof line, "ETag: %s", etag);
    r = ask("GET /doc HTTP/1.1\r\nHost: x\r\n");
    STATUS(r, "200");
    EXPECT(r, line);
    BODY(r, "document v1\n");
    snprintf(req, sizeof req,
             "GET /doc HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"zz\", %s\r\n",
             etag);
    r = ask(req);
    STATUS(r, "304");
    EXPECT(r, line);
    BODY(r, "");
    CHECK_MSG(strstr(r, "Content-Length") == NULL, "304 length:\n%s", r);
    snprintf(req, sizeof req,
             "HEAD /doc HTTP/1.1\r\nHost: x\r\nIf-None-Match: W/%s\r\n", etag);
    r = ask(req);
    STATUS(r, "304");
    snprintf(req, sizeof req,
             "PUT /doc HTTP/1.1\r\nHost: x\r\nIf-None-Match: %s\r\n", etag);
    r = ask(req);
    STATUS(r, "412");
    r = ask("PUT /doc HTTP/1.1\r\nHost: x\r\nIf-None-Match: *\r\n");
    STATUS(r, "412");
    r = ask("GET /doc HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"other\"\r\n");
    STATUS(r, "200");
    /* Malformed If-None-Match: ignored, the full answer. */
    r = ask("GET /doc HTTP/1.1\r\nHost: x\r\nIf-None-Match: nonsense\r\n");
    STATUS(r, "200");
    BODY(r, "document v1\n");
    r = ask("GET /doc HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"unterminated\r\n");
    STATUS(r, "200");
    /* A weak tag the application chose: weak comparison. */
    r = ask("GET /tagged HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"v1\"\r\n");
    STATUS(r, "304");
    EXPECT(r, "ETag: W/\"v1\"");
    r = ask("GET /tagged HTTP/1.1\r\nHost: x\r\nIf-None-Match: W/\"v2\"\r\n");
    STATUS(r, "200");

    wisp_server_stop(srv);
    CHECK_EQ_INT(wisp_server_wait(srv), 0);
    wisp_server_destroy(srv);
    return t_done("http_reply");
}
