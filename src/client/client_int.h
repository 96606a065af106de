/* Internal: the HTTP client's pieces (src/client). */
#ifndef WISP_CLIENT_INT_H
#define WISP_CLIENT_INT_H

#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "wisp/client.h"

/* A parsed URL. `host` is the name or address without brackets, or the
 * decoded socket path for http+unix; `hosthdr` the Host field's value;
 * `target` points into the URL (the path and query, "/" when empty). */
typedef struct wisp__url {
    int is_unix;
    uint16_t port;
    char host[256];
    char hosthdr[272];
    const char *target;
    size_t target_len;
} wisp__url;

/* Parse `url`. Returns 0 or -EINVAL (not http:// or http+unix://, an
 * empty or over-long host, a bad port, bytes a request target cannot
 * hold: controls, space, non-ASCII). */
int wisp__url_parse(const char *url, wisp__url *u);

/* Resolution of names with a small cache (dns.c). */
typedef struct wisp__dns wisp__dns;
typedef void (*wisp__dns_cb)(int err, const struct sockaddr *sa,
                             socklen_t len, void *arg);
typedef struct wisp__dns_req wisp__dns_req;

wisp__dns *wisp__dns_create(wisp_loop_t *loop, wisp_pool_t *pool,
                            uint32_t ttl_ms);
/* Abandon every lookup in flight (their callbacks never run) and free
 * the cache. */
void wisp__dns_destroy(wisp__dns *d);
/* Resolve `host`:`port` (TCP). An IP literal or a fresh cache entry
 * answers at once: returns 1 with *ss and *len set, cb not called. Else
 * returns 0 and cb runs later from the loop (unless cancelled with
 * wisp__dns_cancel(*req)), or a negative errno (-EINVAL: a name and no
 * pool; -ENOMEM). */
int wisp__dns_resolve(wisp__dns *d, const char *host, uint16_t port,
                      struct sockaddr_storage *ss, socklen_t *len,
                      wisp__dns_cb cb, void *arg, wisp__dns_req **req);
void wisp__dns_cancel(wisp__dns_req *req);

#endif
