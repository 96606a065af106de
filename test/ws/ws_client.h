/* A raw-socket WebSocket client for the in-process WebSocket tests:
 * connect to 127.0.0.1, complete the upgrade of /ws (checking the 101 and
 * its Sec-WebSocket-Accept), read exact byte counts with a timeout. */
#ifndef WISP_TEST_WS_CLIENT_H
#define WISP_TEST_WS_CLIENT_H

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "test.h"

static inline int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Read exactly `want` bytes (5 s without progress fails): 0 or -1. */
static inline int read_exact(int fd, void *buf, size_t want)
{
    size_t n = 0;
    while (n < want) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0)
            return -1;
        ssize_t r = read(fd, (char *)buf + n, want - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
    }
    return 0;
}

/* A session on GET /ws, or -1. */
static inline int handshake(uint16_t port)
{
    int fd = dial(port);
    const char *req = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n";
    if (fd < 0 || write(fd, req, strlen(req)) < 0)
        return -1;
    char buf[1024];
    size_t n = 0;
    while (n < sizeof buf - 1) {
        ssize_t r = read(fd, buf + n, 1); /* byte by byte: stop at the head */
        if (r <= 0)
            return -1;
        n++;
        buf[n] = 0;
        if (n >= 4 && memcmp(buf + n - 4, "\r\n\r\n", 4) == 0)
            break;
    }
    CHECK(strncmp(buf, "HTTP/1.1 101 ", 13) == 0);
    CHECK(strstr(buf, "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") !=
          NULL);
    return fd;
}

#endif
