/* Internal: listening sockets (set-up, not the accept path: that is
 * wisp__listener in net/conn.h). */
#ifndef WISP_NET_LISTEN_H
#define WISP_NET_LISTEN_H

#include <stdint.h>

/* A TCP listener with SO_REUSEPORT on `host` (NULL or "": any, IPv6 with
 * IPv4 fallback) and *port_io (0: ephemeral; the bound port is stored
 * back). Returns 0 or a negative errno. */
int wisp__listen_tcp(const char *host, int backlog, int *fd_out,
                     uint16_t *port_io);
/* Claim the TCP address before the group binds: a socket bound without
 * SO_REUSEPORT and not listening, so it fails with -EADDRINUSE when anyone
 * listens there already. The caller closes it once the group listens. */
int wisp__listen_probe(const char *host, int *fd_out, uint16_t *port_io);
/* A Unix stream listener at `path` (a stale socket there is removed). */
int wisp__listen_unix(const char *path, int backlog, int *fd_out);

#endif
