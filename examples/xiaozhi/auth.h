/* xiaozhi-server — tokens: SHA-256 (FIPS 180-4), HMAC-SHA256 (RFC 2104),
 * base64url without padding (RFC 4648 §5), and the two token kinds:
 *
 *   device token (OTA → WebSocket, PROTOCOL.md §3.2):
 *     base64url(HMAC(secret, "ws|" client_id "|" device_id "|" ts)) "." ts
 *     valid while now - ts <= expire_s;
 *   vision token (MCP initialize → /mcp/vision/explain, §5.7):
 *     base64url(HMAC(secret, "vision|" device_id "|" exp)) "." exp
 *     valid while now <= exp, for that device only.
 *
 * Pure functions; any thread. */
#ifndef XZ_AUTH_H
#define XZ_AUTH_H

#include <stddef.h>
#include <stdint.h>

typedef struct xz_sha256 {
    uint32_t h[8];
    uint64_t bytes;
    uint8_t buf[64];
    size_t fill;
} xz_sha256_t;

void xz_sha256_init(xz_sha256_t *s);
void xz_sha256_update(xz_sha256_t *s, const void *data, size_t len);
void xz_sha256_final(xz_sha256_t *s, uint8_t out[32]);

void xz_hmac_sha256(const void *key, size_t klen, const void *msg,
                    size_t mlen, uint8_t out[32]);

/* base64url without '=' padding of `len` bytes into `out` (room for
 * 4*ceil(len/3)+1). Returns the text length. */
size_t xz_b64url(const uint8_t *in, size_t len, char *out);

/* Longest token text, NUL included. */
#define XZ_TOKEN_MAX 64

/* Make a device token for (client_id, device_id) at Unix time `now`. */
void xz_token_make(const char *secret, const char *client_id,
                   const char *device_id, int64_t now,
                   char out[XZ_TOKEN_MAX]);

/* 0 when `token` (not NUL-terminated, `len` bytes; a leading "Bearer "
 * is skipped) is valid for the pair at `now`; -1 otherwise (bad form,
 * wrong signature, other device or client, expired, or from the
 * future by more than 60 s). The comparison is constant-time. */
int xz_token_check(const char *secret, const char *client_id,
                   const char *device_id, const char *token, size_t len,
                   int64_t now, uint32_t expire_s);

/* Vision token for `device_id` valid until Unix time `exp`. */
void xz_vision_token_make(const char *secret, const char *device_id,
                          int64_t exp, char out[XZ_TOKEN_MAX]);
/* 0 valid, -1 invalid or other device, -2 expired. */
int xz_vision_token_check(const char *secret, const char *device_id,
                          const char *token, size_t len, int64_t now);

#endif
