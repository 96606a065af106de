/* Internal: the server side of the WebSocket opening handshake (RFC 6455
 * §4.2.1, §4.2.2) as pure functions over the request's header values, so
 * that they can be tested and fuzzed without a connection. */
#ifndef WISP_WS_HANDSHAKE_H
#define WISP_WS_HANDSHAKE_H

#include <stddef.h>

#include <stdint.h>

#include "http/parse.h"
#include "wisp/common.h"

/* Length of a Sec-WebSocket-Accept value: base64 of a SHA-1 digest. */
#define WISP__WS_ACCEPT_LEN 28

/* Does the comma-separated list `h` hold `token` (ASCII case-insensitive,
 * OWS around elements ignored)? A NULL h.ptr holds nothing. */
int wisp__ws_has_token(wisp_str_t h, const char *token);

/* Does any field named `name` (ASCII case-insensitive) among
 * h[0..n) hold `token` in its list? Field lines with the same name are
 * one list (RFC 9110 §5.3), so "Connection: keep-alive" and "Connection:
 * Upgrade" on two lines hold "upgrade". */
int wisp__ws_fields_have(const wisp__header *h, uint32_t n, const char *name,
                         const char *token);

/* Judge an upgrade request from its method (wisp_method_t), HTTP minor
 * version and header fields h[0..n). Returns 0 when it is a valid
 * opening handshake, with *key set to the Sec-WebSocket-Key value
 * (pointing into h's buffer); 426 when only the version is wrong (the
 * answer carries Sec-WebSocket-Version: 13); 400 otherwise: not GET, not
 * HTTP/1.1 or later, no Upgrade field with the "websocket" token, no
 * Connection field with "upgrade", Sec-WebSocket-Version or -Key more
 * than once, Sec-WebSocket-Version absent or other than "13" (426), or
 * a key that is not the base64 of 16 bytes. *key is {NULL, 0} unless 0
 * is returned. */
int wisp__ws_check_request(int method, int minor, const wisp__header *h,
                           uint32_t n, wisp_str_t *key);

/* Sec-WebSocket-Accept for `key`: base64(SHA-1(key GUID)), written as
 * WISP__WS_ACCEPT_LEN characters and a NUL into `out`. */
void wisp__ws_accept_key(const char *key, size_t len,
                         char out[WISP__WS_ACCEPT_LEN + 1]);

#endif
