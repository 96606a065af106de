/* Internal: the PROXY protocol (haproxy's "The PROXY protocol", versions
 * 1 and 2) as a pre-protocol step on accepted connections, and the
 * address lists (CIDRs) that say whom to trust.
 *
 * A listener with a wisp__proxy_conf installs wisp__proxy_proto on each
 * new connection instead of its own protocol; once the header is read
 * the connection's peer address is replaced by the one the balancer
 * reports and the listener's protocol takes over (with any bytes that
 * came after the header). A listener without one pays nothing. */
#ifndef WISP_NET_PROXY_H
#define WISP_NET_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "net/cidr.h"
#include "net/conn.h"

/* Largest header accepted (a version 2 header with its TLVs; version 1
 * is at most 107 bytes by the spec). haproxy's own headers, with SSL
 * and unique-id TLVs, stay far below. */
#define WISP__PROXY_MAX 4096

/* A parsed header. `local`: keep the connection's own address (v1
 * UNKNOWN, v2 LOCAL, or v2 PROXY with an unspecified family). Otherwise
 * family is AF_INET (4 bytes of src/dst used), AF_INET6 (16), or AF_UNIX
 * (no address kept). */
typedef struct wisp__proxy_hdr {
    uint8_t version;     /* 1 or 2 */
    uint8_t local;
    uint8_t family;
    uint8_t src[16];
    uint8_t dst[16];
    uint16_t src_port;
    uint16_t dst_port;
} wisp__proxy_hdr;

/* Parse a PROXY header at the start of buf[0..len). Pure: no allocation,
 * reads nothing past buf + len. Returns the header's length in bytes
 * (the protocol's data follows it), -EAGAIN when the bytes so far are a
 * valid beginning but not a whole header, WISP_EPARSE for anything else
 * (no signature, a malformed line, bad lengths, an unknown version or
 * command), or WISP_ETOOLONG_HEAD when a version 1 line runs past 107
 * bytes or a version 2 header past WISP__PROXY_MAX. */
int wisp__proxy_parse(const char *buf, size_t len, wisp__proxy_hdr *out);

enum {
    WISP__PROXY_OFF = 0,
    WISP__PROXY_REQUIRED = 1, /* every connection: trusted, with header */
    WISP__PROXY_OPTIONAL = 2, /* trusted may send one; others must not */
};

/* A listener's PROXY settings; its protocol is the listener's. */
typedef struct wisp__proxy_conf {
    int mode;                     /* WISP__PROXY_* */
    uint32_t timeout_ms;          /* the whole header must arrive by then */
    wisp__cidrs trusted;          /* who may send a header */
} wisp__proxy_conf;

/* Start an accepted connection `c` of listener `l` (l->proxy set): an
 * untrusted source is closed at once in REQUIRED mode; otherwise the
 * header is read first. Returns what wisp__conn_start returns. */
int wisp__proxy_start(wisp_conn_t *c, wisp__listener *l);

#endif
