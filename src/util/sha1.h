/* Internal: SHA-1 (RFC 3174), for the WebSocket handshake only. */
#ifndef WISP_UTIL_SHA1_H
#define WISP_UTIL_SHA1_H

#include <stddef.h>
#include <stdint.h>

typedef struct wisp__sha1 {
    uint32_t h[5];
    uint64_t len;      /* bytes hashed so far */
    uint8_t buf[64];
    uint32_t used;     /* bytes in buf */
} wisp__sha1;

void wisp__sha1_init(wisp__sha1 *s);
void wisp__sha1_update(wisp__sha1 *s, const void *data, size_t len);
/* Write the 20-byte digest; `s` must be re-initialised before reuse. */
void wisp__sha1_final(wisp__sha1 *s, uint8_t out[20]);
/* One-shot. */
void wisp__sha1_digest(const void *data, size_t len, uint8_t out[20]);

#endif
