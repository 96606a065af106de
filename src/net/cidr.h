/* Internal: address lists (CIDRs), for whom to trust (PROXY protocol
 * sources, X-Forwarded-For senders). */
#ifndef WISP_NET_CIDR_H
#define WISP_NET_CIDR_H

#include <stdint.h>

/* One network: family AF_INET or AF_INET6, the first `bits` of addr. */
typedef struct wisp__cidr {
    uint8_t family;
    uint8_t bits;
    uint8_t addr[16];
} wisp__cidr;

typedef struct wisp__cidrs {
    wisp__cidr *v;
    uint32_t n;
} wisp__cidrs;

/* Parse a list of addresses and networks separated by commas and/or
 * blanks ("10.0.0.0/8, 127.0.0.1 ::1 fd00::/8"); an address without a
 * prefix is one host. Replaces *out (free it with wisp__cidrs_free).
 * NULL or "" is the empty list. Returns 0, -EINVAL for a malformed entry
 * (out is then empty), or -ENOMEM. */
int wisp__cidrs_parse(const char *spec, wisp__cidrs *out);
void wisp__cidrs_free(wisp__cidrs *l);
/* 1 when `addr` (4 bytes for AF_INET, 16 for AF_INET6) is in the list,
 * else 0. An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack
 * listener reports for an IPv4 peer) matches as the IPv4 address. */
int wisp__cidrs_match(const wisp__cidrs *l, int family, const uint8_t *addr);

#endif
