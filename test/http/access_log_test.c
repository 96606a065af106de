/* access_log_path "-" means the process's standard error (server.h):
 * lines go to fd 2 as it is (nothing reopened, truncated or created),
 * after what was already written there. A real path is appended to. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"

static void on_root(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_send(res, 200, "text/plain", "ok", 2);
}

/* One request to a server logging to `path`; returns once the server
 * has stopped (the log is flushed by then). */
static void serve_one(const char *path, const char *target)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 1;
    cfg.handle_signals = 0;
    cfg.access_log_format = WISP_ACCESS_LOG_COMMON;
    cfg.access_log_path = path;
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK(srv != NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/*rest", on_root, NULL, NULL);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    CHECK_EQ_INT(wisp_server_start(srv), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons(wisp_server_port(srv))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ_INT(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    char rq[256];
    int n = snprintf(rq, sizeof rq,
                     "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                     target);
    CHECK_EQ_INT(send(fd, rq, (size_t)n, 0), n);
    char buf[1024];
    while (recv(fd, buf, sizeof buf, 0) > 0) {
    } /* until the server closes: the request is complete */
    close(fd);
    wisp_server_stop(srv);
    CHECK_EQ_INT(wisp_server_wait(srv), 0);
    wisp_server_destroy(srv);
}

static size_t slurp(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, out, cap - 1);
    close(fd);
    out[n > 0 ? n : 0] = 0;
    return n > 0 ? (size_t)n : 0;
}

int main(void)
{
    char dir[] = "/tmp/wisp-alog-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    CHECK_EQ_INT(chdir(dir), 0);

    /* Standard error goes to a file for the test; something is there
     * already and must stay. */
    char errpath[64];
    snprintf(errpath, sizeof errpath, "%s/stderr", dir);
    int saved = dup(2);
    int efd = open(errpath, O_WRONLY | O_CREAT | O_APPEND, 0600);
    CHECK(efd >= 0);
    dup2(efd, 2);
    close(efd);
    CHECK_EQ_INT(write(2, "before\n", 7), 7);

    serve_one("-", "/to-stderr");

    CHECK_EQ_INT(write(2, "after\n", 6), 6);
    dup2(saved, 2);
    close(saved);

    char got[4096];
    slurp(errpath, got, sizeof got);
    CHECK_MSG(strncmp(got, "before\n", 7) == 0, "stderr kept: %s", got);
    CHECK_MSG(strstr(got, "\"GET /to-stderr HTTP/1.1\" 200 2") != NULL,
              "the line went to stderr: %s", got);
    const char *after = strstr(got, "after\n");
    const char *line = strstr(got, "/to-stderr");
    CHECK_MSG(after && line && line < after, "in order: %s", got);
    struct stat st;
    CHECK_MSG(stat("-", &st) < 0 && errno == ENOENT,
              "no file named '-' was created");

    /* A path: appended to, earlier contents kept. */
    char logpath[64];
    snprintf(logpath, sizeof logpath, "%s/access.log", dir);
    int lfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK_EQ_INT(write(lfd, "old\n", 4), 4);
    close(lfd);
    serve_one(logpath, "/to-file");
    slurp(logpath, got, sizeof got);
    CHECK_MSG(strncmp(got, "old\n", 4) == 0 &&
                  strstr(got, "\"GET /to-file HTTP/1.1\" 200 2") != NULL,
              "file: %s", got);

    unlink(logpath);
    unlink(errpath);
    unlink("-");
    CHECK_EQ_INT(chdir("/"), 0);
    rmdir(dir);
    return t_done("http_access_log");
}
