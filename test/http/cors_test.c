/* In-process server tests of CORS (src/http/cors.c, wisp_server_cors):
 * preflights answered by wisp, headers on actual responses, origin lists,
 * credentials with any origin (the origin echoed), the xiaozhi reference
 * configuration (PROTOCOL.md §2.3), prefixes, the application's own
 * OPTIONS route, and refused configurations. */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"

static void on_data(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_header(res, "X-Total", "3");
    wisp_res_send(res, 200, "text/plain", "data", 4);
}

static void on_ota(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_send(res, 200, "application/json", "{}", 2);
}

static void on_own(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_send(res, 200, "text/plain", "own", 3);
}

static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Send `req` (with Connection: close added) and read the answer until
 * EOF; the generous poll timeout is only a failure bound. */
static char answer[8192];

static const char *ask(uint16_t port, const char *req)
{
    answer[0] = 0;
    int fd = dial(port);
    if (fd < 0)
        return answer;
    char full[2048];
    int l = snprintf(full, sizeof full, "%sConnection: close\r\n\r\n", req);
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

#define ASK(req) ask(port, req)
#define EXPECT(a, line) CHECK_MSG(has(a, line), "want \"%s\" in:\n%s", line, a)
#define EXPECT_NO(a, name)                                                  \
    CHECK_MSG(!has_name(a, name), "unwanted %s in:\n%s", name, a)
#define STATUS(a, s)                                                        \
    CHECK_MSG(strncmp(a, "HTTP/1.1 " s, 12) == 0, "want %s:\n%s", s, a)

static void test_config_errors(void)
{
    wisp_server_t *srv = wisp_server_create(NULL);
    CHECK(srv != NULL);
    static const char *const mixed[] = {"*", "https://a.example", NULL};
    static const char *const empty[] = {NULL};
    static const char *const crlf[] = {"https://a\r\nX: y", NULL};
    static const char *const blank[] = {"", NULL};
    wisp_cors_opts_t o = {0};
    CHECK_EQ_INT(wisp_server_cors(NULL, "/", NULL), -EINVAL);
    CHECK_EQ_INT(wisp_server_cors(srv, NULL, NULL), -EINVAL);
    CHECK_EQ_INT(wisp_server_cors(srv, "api", NULL), -EINVAL);
    CHECK_EQ_INT(wisp_server_cors(srv, "/a\r\n", NULL), -EINVAL);
    o.origins = mixed;
    CHECK_EQ_INT(wisp_server_cors(srv, "/a", &o), -EINVAL);
    o.origins = empty;
    CHECK_EQ_INT(wisp_server_cors(srv, "/a", &o), -EINVAL);
    o.origins = crlf;
    CHECK_EQ_INT(wisp_server_cors(srv, "/a", &o), -EINVAL);
    o.origins = blank;
    CHECK_EQ_INT(wisp_server_cors(srv, "/a", &o), -EINVAL);
    o.origins = NULL;
    o.allow_headers = "a\nb";
    CHECK_EQ_INT(wisp_server_cors(srv, "/a", &o), -EINVAL);
    o.allow_headers = NULL;
    o.expose_headers = "a\rb";
    CHECK_EQ_INT(wisp_server_cors(srv, "/a", &o), -EINVAL);
    o.expose_headers = NULL;
    o.allow_methods = "GET\r\n";
    CHECK_EQ_INT(wisp_server_cors(srv, "/a", &o), -EINVAL);
    o.allow_methods = NULL;
    o.preflight_status = 300;
    CHECK_EQ_INT(wisp_server_cors(srv, "/a", &o), -EINVAL);
    o.preflight_status = 199;
    CHECK_EQ_INT(wisp_server_cors(srv, "/a", &o), -EINVAL);
    o.preflight_status = 200;
    CHECK_EQ_INT(wisp_server_cors(srv, "/a", &o), 0);
    CHECK_EQ_INT(wisp_server_cors(srv, "/a/", NULL), -EEXIST);
    CHECK_EQ_INT(wisp_server_cors(srv, "/a", NULL), -EEXIST);
    CHECK_EQ_INT(wisp_server_cors(srv, "/", NULL), 0);
    wisp_server_destroy(srv); /* frees the entries (ASan checks) */
}

int main(void)
{
    test_config_errors();

    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 2;
    cfg.handle_signals = 0;
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK(srv != NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/api/data", on_data, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/apix", on_data, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_POST, "/xiaozhi/ota/", on_ota, NULL,
                      NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/xiaozhi/ota/", on_ota, NULL,
                      NULL);
    wisp_server_route(srv, WISP_METHOD_OPTIONS, "/own", on_own, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/plain", on_data, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/pub/x", on_data, NULL, NULL);

    static const char *const origins[] = {"https://a.example",
                                          "http://localhost:8080", NULL};
    wisp_cors_opts_t api = {0};
    api.origins = origins;
    api.expose_headers = "X-Total";
    api.allow_credentials = 1;
    api.max_age_s = 600;
    CHECK_EQ_INT(wisp_server_cors(srv, "/api", &api), 0);

    /* The xiaozhi reference configuration (PROTOCOL.md §2.3). */
    wisp_cors_opts_t xz = {0};
    xz.allow_methods = "GET, POST, OPTIONS";
    xz.allow_headers = "client-id, content-type, device-id, authorization";
    xz.allow_credentials = 1;
    xz.preflight_status = 200;
    CHECK_EQ_INT(wisp_server_cors(srv, "/xiaozhi/ota", &xz), 0);

    CHECK_EQ_INT(wisp_server_cors(srv, "/own", NULL), 0);
    static const char *const star[] = {"*", NULL};
    wisp_cors_opts_t pub = {0};
    pub.origins = star;
    CHECK_EQ_INT(wisp_server_cors(srv, "/pub", &pub), 0);

    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    CHECK_EQ_INT(wisp_server_cors(srv, "/late", NULL), WISP_ESTATE);
    uint16_t port = wisp_server_port(srv);
    CHECK_EQ_INT(wisp_server_start(srv), 0);
    const char *a;

    /* Preflight from an allowed origin: everything, echoed origin. */
    a = ASK("OPTIONS /api/data HTTP/1.1\r\nHost: x\r\n"
            "Origin: https://a.example\r\n"
            "Access-Control-Request-Method: POST\r\n"
            "Access-Control-Request-Headers: content-type,x-a\r\n");
    STATUS(a, "204");
    EXPECT(a, "Access-Control-Allow-Origin: https://a.example");
    EXPECT(a, "Vary: Origin");
    EXPECT(a, "Access-Control-Allow-Methods: GET, HEAD, POST, PUT, PATCH, "
              "DELETE, OPTIONS");
    EXPECT(a, "Access-Control-Allow-Headers: content-type,x-a");
    EXPECT(a, "Vary: Access-Control-Request-Headers");
    EXPECT(a, "Access-Control-Allow-Credentials: true");
    EXPECT(a, "Access-Control-Max-Age: 600");
    CHECK_MSG(strstr(a, "\r\n\r\n")[4] == 0, "preflight body: %s", a);

    /* Preflight from an origin not on the list: status, no CORS. */
    a = ASK("OPTIONS /api/data HTTP/1.1\r\nHost: x\r\n"
            "Origin: https://evil.example\r\n"
            "Access-Control-Request-Method: GET\r\n");
    STATUS(a, "204");
    EXPECT(a, "Vary: Origin");
    EXPECT_NO(a, "Access-Control-Allow-Origin");
    EXPECT_NO(a, "Access-Control-Allow-Methods");
    EXPECT_NO(a, "Access-Control-Allow-Credentials");

    /* Actual response, allowed origin (compared case-insensitively). */
    a = ASK("GET /api/data HTTP/1.1\r\nHost: x\r\n"
            "Origin: HTTPS://A.EXAMPLE\r\n");
    STATUS(a, "200");
    EXPECT(a, "Access-Control-Allow-Origin: HTTPS://A.EXAMPLE");
    EXPECT(a, "Access-Control-Allow-Credentials: true");
    EXPECT(a, "Access-Control-Expose-Headers: X-Total");
    EXPECT(a, "Vary: Origin");
    EXPECT(a, "X-Total: 3");
    EXPECT_NO(a, "Access-Control-Allow-Methods");
    CHECK(strstr(a, "\r\n\r\ndata") != NULL);

    /* No Origin, list mode: no CORS headers, the response as usual. */
    a = ASK("GET /api/data HTTP/1.1\r\nHost: x\r\n");
    STATUS(a, "200");
    EXPECT_NO(a, "Access-Control-Allow-Origin");
    CHECK(strstr(a, "\r\n\r\ndata") != NULL);

    /* A 404 under the prefix carries CORS (the browser can read it). */
    a = ASK("GET /api/missing HTTP/1.1\r\nHost: x\r\n"
            "Origin: http://localhost:8080\r\n");
    STATUS(a, "404");
    EXPECT(a, "Access-Control-Allow-Origin: http://localhost:8080");

    /* "/api" does not cover "/apix". */
    a = ASK("GET /apix HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n");
    STATUS(a, "200");
    EXPECT_NO(a, "Access-Control-Allow-Origin");
    a = ASK("OPTIONS /apix HTTP/1.1\r\nHost: x\r\n"
            "Origin: https://a.example\r\n"
            "Access-Control-Request-Method: GET\r\n");
    STATUS(a, "405");

    /* xiaozhi: a plain OPTIONS (device, curl) gets the reference set. */
    a = ASK("OPTIONS /xiaozhi/ota/ HTTP/1.1\r\nHost: x\r\n");
    STATUS(a, "200");
    EXPECT(a, "Access-Control-Allow-Origin: *");
    EXPECT(a, "Access-Control-Allow-Headers: client-id, content-type, "
              "device-id, authorization");
    EXPECT(a, "Access-Control-Allow-Credentials: true");
    EXPECT(a, "Access-Control-Allow-Methods: GET, POST, OPTIONS");
    EXPECT(a, "Content-Length: 0");
    /* ... a browser preflight gets its origin echoed (credentials). */
    a = ASK("OPTIONS /xiaozhi/ota/ HTTP/1.1\r\nHost: x\r\n"
            "Origin: http://192.168.1.5:8000\r\n"
            "Access-Control-Request-Method: POST\r\n"
            "Access-Control-Request-Headers: device-id\r\n");
    STATUS(a, "200");
    EXPECT(a, "Access-Control-Allow-Origin: http://192.168.1.5:8000");
    EXPECT(a, "Vary: Origin");
    EXPECT(a, "Access-Control-Allow-Headers: client-id, content-type, "
              "device-id, authorization");
    /* ... and actual responses carry them too. */
    a = ASK("POST /xiaozhi/ota/ HTTP/1.1\r\nHost: x\r\n"
            "Content-Length: 0\r\n");
    STATUS(a, "200");
    EXPECT(a, "Access-Control-Allow-Origin: *");
    EXPECT(a, "Access-Control-Allow-Credentials: true");
    a = ASK("GET /xiaozhi/ota/ HTTP/1.1\r\nHost: x\r\n"
            "Origin: http://192.168.1.5:8000\r\n");
    STATUS(a, "200");
    EXPECT(a, "Access-Control-Allow-Origin: http://192.168.1.5:8000");
    EXPECT(a, "Access-Control-Allow-Credentials: true");

    /* The application's own OPTIONS route answers plain OPTIONS; a
     * preflight is still wisp's. */
    a = ASK("OPTIONS /own HTTP/1.1\r\nHost: x\r\n");
    STATUS(a, "200");
    CHECK(strstr(a, "\r\n\r\nown") != NULL);
    EXPECT(a, "Access-Control-Allow-Origin: *");
    a = ASK("OPTIONS /own HTTP/1.1\r\nHost: x\r\nOrigin: https://b.example\r\n"
            "Access-Control-Request-Method: PUT\r\n");
    STATUS(a, "204");
    EXPECT(a, "Access-Control-Allow-Origin: *");
    EXPECT_NO(a, "Access-Control-Allow-Credentials");
    EXPECT(a, "Vary: Access-Control-Request-Headers"); /* echoed, none */
    CHECK_MSG(!strstr(a, "Vary: Origin"), "%s", a);

    /* "*" without credentials stays "*" even with an Origin. */
    a = ASK("GET /pub/x HTTP/1.1\r\nHost: x\r\nOrigin: https://c.example\r\n");
    STATUS(a, "200");
    EXPECT(a, "Access-Control-Allow-Origin: *");
    EXPECT_NO(a, "Vary");

    /* Paths without CORS are untouched, and still served. */
    a = ASK("GET /plain HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\n");
    STATUS(a, "200");
    EXPECT_NO(a, "Access-Control-Allow-Origin");
    a = ASK("OPTIONS /plain HTTP/1.1\r\nHost: x\r\n"
            "Origin: https://a.example\r\n"
            "Access-Control-Request-Method: GET\r\n");
    STATUS(a, "405");

    wisp_server_stop(srv);
    CHECK_EQ_INT(wisp_server_wait(srv), 0);
    wisp_server_destroy(srv);
    return t_done("http_cors");
}
