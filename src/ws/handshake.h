/* Internal: the server side of the WebSocket opening handshake (RFC 6455
 * §4.2.1, §4.2.2) as pure functions over the request's header values, so
 * that they can be tested and fuzzed without a connection. */
#ifndef WISP_WS_HANDSHAKE_H
#define WISP_WS_HANDSHAKE_H

#include <stddef.h>

#include "wisp/common.h"

/* Length of a Sec-WebSocket-Accept value: base64 of a SHA-1 digest. */
#define WISP__WS_ACCEPT_LEN 28

/* Does the comma-separated list `h` hold `token` (ASCII case-insensitive,
 * OWS around elements ignored)? A NULL h.ptr holds nothing. */
int wisp__ws_has_token(wisp_str_t h, const char *token);

/* Judge an upgrade request from its method (wisp_method_t), HTTP minor
 * version and the values of its Upgrade, Connection,
 * Sec-WebSocket-Version and Sec-WebSocket-Key fields (ptr NULL when
 * absent). Returns 0 when it is a valid opening handshake, 426 when only
 * the version is wrong (the answer carries Sec-WebSocket-Version: 13),
 * 400 otherwise: not GET, not HTTP/1.1 or later, Upgrade without the
 * "websocket" token, Connection without "upgrade", or a key that is not
 * the base64 of 16 bytes. */
int wisp__ws_check_request(int method, int minor, wisp_str_t upgrade,
                           wisp_str_t connection, wisp_str_t version,
                           wisp_str_t key);

/* Sec-WebSocket-Accept for `key`: base64(SHA-1(key GUID)), written as
 * WISP__WS_ACCEPT_LEN characters and a NUL into `out`. */
void wisp__ws_accept_key(const char *key, size_t len,
                         char out[WISP__WS_ACCEPT_LEN + 1]);

#endif
