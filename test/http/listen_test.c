/* wisp_server_listen and a port that is already taken: a second server
 * (in this process or another) must fail with -EADDRINUSE instead of
 * silently joining the first one's SO_REUSEPORT group and taking half its
 * connections — unless both ask to share the port (reuse_port_shared). */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"

static wisp_server_t *make(uint16_t port, unsigned threads, int shared)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = port;
    cfg.threads = threads;
    cfg.handle_signals = 0;
    cfg.reuse_port_shared = shared;
    wisp_server_t *srv = wisp_server_create(&cfg);
    if (!srv) {
        perror("wisp_server_create");
        exit(2);
    }
    return srv;
}

/* A plain listening socket on 127.0.0.1:port, as another program would
 * open it; with `reuseport`, as another SO_REUSEPORT server would. */
static int foreign(uint16_t port, int reuseport, uint16_t *got)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 8) < 0) {
        perror("foreign bind");
        exit(2);
    }
    socklen_t l = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &l);
    *got = ntohs(a.sin_port);
    return fd;
}

int main(void)
{
    /* 1. Two servers of this process on one port: the second fails. */
    wisp_server_t *a = make(0, 4, 0);
    CHECK_EQ_INT(wisp_server_listen(a), 0);
    uint16_t port = wisp_server_port(a);
    CHECK(port != 0);
    wisp_server_t *b = make(port, 2, 0);
    CHECK_EQ_INT(wisp_server_listen(b), -EADDRINUSE);
    wisp_server_destroy(b);

    /* 2. Another process: the same answer. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        wisp_server_t *c = make(port, 1, 0);
        int r = wisp_server_listen(c);
        wisp_server_destroy(c);
        _exit(r == -EADDRINUSE ? 0 : r == 0 ? 10 : 11);
    }
    int st = 0;
    CHECK(pid > 0 && waitpid(pid, &st, 0) == pid);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "child's listen: exit %d (10: it succeeded)",
              WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    wisp_server_destroy(a);

    /* 3. Once the first is gone, the port can be taken again. */
    b = make(port, 2, 0);
    CHECK_EQ_INT(wisp_server_listen(b), 0);
    CHECK_EQ_INT(wisp_server_port(b), port);
    wisp_server_destroy(b);

    /* 4. Another program's SO_REUSEPORT listener holds the port. */
    uint16_t fport;
    int fd = foreign(0, 1, &fport);
    b = make(fport, 2, 0);
    CHECK_EQ_INT(wisp_server_listen(b), -EADDRINUSE);
    wisp_server_destroy(b);
    close(fd);
    /* ... and one without SO_REUSEPORT (always refused). */
    fd = foreign(0, 0, &fport);
    b = make(fport, 1, 0);
    CHECK_EQ_INT(wisp_server_listen(b), -EADDRINUSE);
    wisp_server_destroy(b);
    close(fd);

    /* 5. Sharing on purpose (a zero-downtime restart): both ask. */
    a = make(0, 2, 1);
    CHECK_EQ_INT(wisp_server_listen(a), 0);
    port = wisp_server_port(a);
    b = make(port, 2, 1);
    CHECK_EQ_INT(wisp_server_listen(b), 0);
    CHECK_EQ_INT(wisp_server_port(b), port);
    /* An exclusive server still cannot join the shared pair. */
    wisp_server_t *c = make(port, 1, 0);
    CHECK_EQ_INT(wisp_server_listen(c), -EADDRINUSE);
    wisp_server_destroy(c);
    wisp_server_destroy(b);
    wisp_server_destroy(a);

    /* 6. Port 0 with several loops: one port for all of them, and it is
     * this server's alone. */
    a = make(0, 3, 0);
    CHECK_EQ_INT(wisp_server_listen(a), 0);
    port = wisp_server_port(a);
    CHECK(port != 0);
    CHECK_EQ_INT(wisp_server_start(a), 0);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ_INT(connect(s, (struct sockaddr *)&sa, sizeof sa), 0);
    close(s);
    b = make(port, 1, 0);
    CHECK_EQ_INT(wisp_server_listen(b), -EADDRINUSE);
    wisp_server_destroy(b);
    wisp_server_stop(a);
    CHECK_EQ_INT(wisp_server_wait(a), 0);
    wisp_server_destroy(a);
    return t_done("server_listen");
}
