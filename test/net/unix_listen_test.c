/* Unix-socket listeners and the path they live at: a second server
 * asking for a path a live server holds fails with -EADDRINUSE and
 * takes nothing away (the first still answers, also after the second is
 * destroyed: its destroy must not unlink the other's socket); a stale
 * socket left by a dead server is replaced; a regular file at the path
 * is refused and kept; the path is removed when its own server goes. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"

static void h_hello(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    const char *who = arg;
    wisp_res_send(res, 200, "text/plain", who, strlen(who));
}

static wisp_server_t *make(const char *path, const char *who)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.unix_path = path;
    cfg.no_tcp = 1;
    cfg.threads = 1;
    cfg.handle_signals = 0;
    wisp_server_t *s = wisp_server_create(&cfg);
    CHECK(s != NULL);
    CHECK(wisp_server_route(s, WISP_METHOD_GET, "/", h_hello, (void *)who,
                            NULL) == 0);
    return s;
}

/* GET / over the socket at `path`: 0 with the body in `out`, or -1. */
static int get(const char *path, char *out, size_t cap)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    struct timeval tv = {.tv_sec = 30};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        close(fd);
        return -1;
    }
    const char req[] = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    if (write(fd, req, sizeof req - 1) != (ssize_t)sizeof req - 1) {
        close(fd);
        return -1;
    }
    char buf[1024];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf - 1 &&
           (r = read(fd, buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)r;
    close(fd);
    buf[len] = 0;
    char *body = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.1 200", 12) != 0 || !body)
        return -1;
    snprintf(out, cap, "%s", body + 4);
    return 0;
}

int main(void)
{
    char dir[] = "/tmp/wisp-unix-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[96];
    snprintf(path, sizeof path, "%s/s.sock", dir);
    char body[64];

    /* The first server holds the path. */
    wisp_server_t *a = make(path, "first");
    CHECK_EQ_INT(wisp_server_listen(a), 0);
    CHECK_EQ_INT(wisp_server_start(a), 0);
    CHECK(get(path, body, sizeof body) == 0 && strcmp(body, "first") == 0);

    /* A second one on the same path is refused and takes nothing. */
    wisp_server_t *b = make(path, "second");
    CHECK_EQ_INT(wisp_server_listen(b), -EADDRINUSE);
    wisp_server_destroy(b);
    struct stat st;
    CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode));
    CHECK(get(path, body, sizeof body) == 0 && strcmp(body, "first") == 0);

    /* The first's destroy removes its socket. */
    wisp_server_stop(a);
    CHECK_EQ_INT(wisp_server_wait(a), 0);
    wisp_server_destroy(a);
    CHECK(lstat(path, &st) < 0 && errno == ENOENT);

    /* A stale socket (bound, never listened or long dead) is replaced. */
    int stale = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof sun.sun_path, "%s", path);
    CHECK(bind(stale, (struct sockaddr *)&sun, sizeof sun) == 0);
    close(stale);
    CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode));
    wisp_server_t *c = make(path, "third");
    CHECK_EQ_INT(wisp_server_listen(c), 0);
    CHECK_EQ_INT(wisp_server_start(c), 0);
    CHECK(get(path, body, sizeof body) == 0 && strcmp(body, "third") == 0);
    wisp_server_stop(c);
    wisp_server_wait(c);
    wisp_server_destroy(c);

    /* A regular file at the path is refused and kept. */
    int f = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(f >= 0 && write(f, "data", 4) == 4);
    close(f);
    wisp_server_t *d = make(path, "fourth");
    CHECK_EQ_INT(wisp_server_listen(d), -EADDRINUSE);
    wisp_server_destroy(d);
    CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 4);

    unlink(path);
    rmdir(dir);
    return t_done("net_unix_listen");
}
