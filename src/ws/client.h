/* Internal: what the WebSocket client's handshake (src/ws/client.c)
 * and the session code (src/ws/ws.c) share. */
#ifndef WISP_WS_CLIENT_INT_H
#define WISP_WS_CLIENT_INT_H

#include <stdint.h>

#include "wisp/ws.h"

/* Four fresh random bytes for a frame's masking key (RFC 6455 §5.3:
 * unpredictable, from a strong source): getrandom(2), read 256 bytes at
 * a time into a per-thread pool. */
void wisp__ws_mask_key(uint8_t key[4]);

/* Make `c`, whose opening handshake has just succeeded, a client session
 * (frames from the server unmasked, ours masked): allocate it, take over
 * the connection's handlers. `proto` is 1 + the index in
 * opts->subprotocols of the one the server chose, or 0. Returns the
 * session, or NULL (-ENOMEM: nothing changed). */
wisp_ws_t *wisp__ws_client_open(wisp_conn_t *c, const wisp_ws_handlers_t *h,
                                const wisp_ws_opts_t *opts, void *arg,
                                uint8_t proto);

/* Hand bytes that arrived with the handshake's answer to the session, as
 * the connection would. `data` is the connection's buffer (unmasked in
 * place). Returns the bytes consumed. */
size_t wisp__ws_client_data(wisp_conn_t *c, const char *data, size_t len,
                            wisp_ws_t *ws);

#endif
