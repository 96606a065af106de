/* In-process server tests of static files' ETag / If-None-Match and
 * precompressed siblings (src/http/static.c): which file is served for
 * which Accept-Encoding, Content-Encoding and Vary, one ETag per
 * representation, 304 without a body, If-None-Match deciding over
 * If-Modified-Since (RFC 9110 §13.2.2), malformed validators ignored,
 * siblings that are not regular files skipped, and a route without the
 * option left as it was. The "compressed" files hold marker text: wisp
 * never looks inside them. */
#include <arpa/inet.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
    char full[4096];
    int l = snprintf(full, sizeof full,
                     "%s\r\nHost: x\r\nConnection: close\r\n\r\n", req);
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

/* The ETag value of answer `a` into out. */
static void etag_of(const char *a, char *out, size_t cap)
{
    out[0] = 0;
    const char *p = strstr(a, "\r\nETag: ");
    if (!p)
        return;
    p += 8;
    const char *e = strstr(p, "\r\n");
    snprintf(out, cap, "%.*s", (int)(e - p), p);
}

#define EXPECT(a, line) CHECK_MSG(has(a, line), "want \"%s\" in:\n%s", line, a)
#define EXPECT_NO(a, name)                                                  \
    CHECK_MSG(!has_name(a, name), "unwanted %s in:\n%s", name, a)
#define STATUS(a, s)                                                        \
    CHECK_MSG(strncmp(a, "HTTP/1.1 " s, 12) == 0, "want %s:\n%s", s, a)
#define BODY(a, b)                                                          \
    CHECK_MSG(strcmp(body_of(a), b) == 0, "want body \"%s\":\n%s", b, a)

static char dir[256];

static void put(const char *name, const char *text)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/wisp-static-etag-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    put("app.js", "plain js\n");
    put("app.js.br", "BR bytes\n");
    put("app.js.gz", "GZ bytes\n");
    put("only.css", "plain css\n");
    put("only.css.gz", "GZ css\n");
    put("d.txt", "plain d\n");
    char sub[512];
    snprintf(sub, sizeof sub, "%s/d.txt.gz", dir); /* a directory */
    CHECK(mkdir(sub, 0700) == 0);

    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 1;
    cfg.handle_signals = 0;
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK(srv != NULL);
    wisp_static_opts_t so = {.precompressed = 1};
    CHECK_EQ_INT(wisp_server_static(srv, "/z", dir, &so), 0);
    CHECK_EQ_INT(wisp_server_static(srv, "/plain", dir, NULL), 0);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    port = wisp_server_port(srv);
    CHECK_EQ_INT(wisp_server_start(srv), 0);
    const char *r;
    char e_plain[96], e_br[96], e_gz[96], req[512];

    /* Which file for which Accept-Encoding. */
    r = ask("GET /z/app.js HTTP/1.1");
    STATUS(r, "200");
    BODY(r, "plain js\n");
    EXPECT(r, "Vary: Accept-Encoding");
    EXPECT_NO(r, "Content-Encoding");
    etag_of(r, e_plain, sizeof e_plain);
    r = ask("GET /z/app.js HTTP/1.1\r\nAccept-Encoding: gzip, br");
    BODY(r, "BR bytes\n");
    EXPECT(r, "Content-Encoding: br");
    EXPECT(r, "Vary: Accept-Encoding");
    CHECK_MSG(strstr(r, "Content-Type: text/javascript") ||
                  strstr(r, "Content-Type: application/javascript"),
              "type of the original:\n%s", r);
    etag_of(r, e_br, sizeof e_br);
    r = ask("GET /z/app.js HTTP/1.1\r\nAccept-Encoding: gzip");
    BODY(r, "GZ bytes\n");
    EXPECT(r, "Content-Encoding: gzip");
    etag_of(r, e_gz, sizeof e_gz);
    r = ask("GET /z/app.js HTTP/1.1\r\nAccept-Encoding: br;q=0.5, gzip");
    BODY(r, "GZ bytes\n");
    r = ask("GET /z/app.js HTTP/1.1\r\nAccept-Encoding: br;q=0, gzip;q=0");
    BODY(r, "plain js\n");
    r = ask("GET /z/app.js HTTP/1.1\r\nAccept-Encoding: deflate");
    BODY(r, "plain js\n");
    r = ask("GET /z/only.css HTTP/1.1\r\nAccept-Encoding: br, gzip");
    BODY(r, "GZ css\n");
    EXPECT(r, "Content-Encoding: gzip");
    r = ask("GET /z/d.txt HTTP/1.1\r\nAccept-Encoding: gzip");
    STATUS(r, "200");
    BODY(r, "plain d\n"); /* the sibling is a directory */
    r = ask("GET /z/none.js HTTP/1.1\r\nAccept-Encoding: gzip");
    STATUS(r, "404");
    CHECK(e_plain[0] == '"' && e_br[0] == '"' && e_gz[0] == '"');
    CHECK(strcmp(e_plain, e_br) != 0 && strcmp(e_br, e_gz) != 0 &&
          strcmp(e_plain, e_gz) != 0);

    /* Without the option: no Vary, the sibling ignored. */
    r = ask("GET /plain/app.js HTTP/1.1\r\nAccept-Encoding: br");
    BODY(r, "plain js\n");
    EXPECT_NO(r, "Vary");
    EXPECT_NO(r, "Content-Encoding");

    /* Conditional requests, per representation. */
    snprintf(req, sizeof req,
             "GET /z/app.js HTTP/1.1\r\nAccept-Encoding: br\r\n"
             "If-None-Match: %s", e_br);
    r = ask(req);
    STATUS(r, "304");
    BODY(r, "");
    EXPECT(r, "Vary: Accept-Encoding");
    EXPECT_NO(r, "Content-Length");
    snprintf(req, sizeof req,
             "GET /z/app.js HTTP/1.1\r\nAccept-Encoding: br\r\n"
             "If-None-Match: %s", e_plain);
    r = ask(req);
    STATUS(r, "200");
    BODY(r, "BR bytes\n");
    snprintf(req, sizeof req, "HEAD /z/app.js HTTP/1.1\r\nIf-None-Match: W/%s",
             e_plain);
    r = ask(req);
    STATUS(r, "304");
    /* If-None-Match decides: no match, so If-Modified-Since (far in the
     * future) is ignored; a malformed one matches nothing either. */
    r = ask("GET /z/app.js HTTP/1.1\r\nIf-None-Match: \"nope\"\r\n"
            "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT");
    STATUS(r, "200");
    r = ask("GET /z/app.js HTTP/1.1\r\nIf-None-Match: garbage\"\r\n"
            "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT");
    STATUS(r, "200");
    BODY(r, "plain js\n");
    r = ask("GET /z/app.js HTTP/1.1\r\n"
            "If-Modified-Since: Fri, 01 Jan 2100 00:00:00 GMT");
    STATUS(r, "304");
    r = ask("GET /z/app.js HTTP/1.1\r\nIf-None-Match: *");
    STATUS(r, "304");
    /* Still served after all that. */
    r = ask("GET /z/only.css HTTP/1.1");
    BODY(r, "plain css\n");

    wisp_server_stop(srv);
    CHECK_EQ_INT(wisp_server_wait(srv), 0);
    wisp_server_destroy(srv);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0);
    return t_done("http_static_etag");
}
