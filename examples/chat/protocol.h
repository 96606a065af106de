/* chat — the WebSocket side (protocol.c): the handlers every chat
 * session runs with. The protocol is described at the top of
 * protocol.c and in docs/guide.md, "Chat example". */
#ifndef CHAT_PROTOCOL_H
#define CHAT_PROTOCOL_H

#include "chat.h"

extern const wisp_ws_handlers_t chat_ws_handlers;

#endif
