/* chat — what the example's files share: limits, settings, the per-loop
 * context and the session.
 *
 *   main.c      options, HTTP routes (page, /stats, /ws), lifecycle
 *   protocol.c  the WebSocket sessions: reading client messages (JSON),
 *               checking them, answering
 *   rooms.c     the rooms shared by every loop: membership, history,
 *               numbering events and delivering them to the loops
 *   www/        the page served at / (a plain file, not C strings) */
#ifndef CHAT_H
#define CHAT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <wisp.h>

#define MAX_NICK 32          /* bytes of UTF-8 */
#define MAX_ROOM 64
#define MAX_TEXT 4096
#define MAX_WIRE (32 * 1024) /* whole message as received: text escaped
                                6 times over still fits */
#define MAX_FIELDS 8
#define MAX_LISTED 1000      /* names in a `joined` member list; `count`
                                always has the real number */
#define MAX_HISTORY 10000
/* Tokens for one client message: a valid one has at most 1 + 2 *
 * MAX_FIELDS; anything bigger is an error whatever it holds (protocol.c
 * parses those again with enough tokens to say which error). */
#define MSG_TOKS (2 + 2 * MAX_FIELDS)

typedef struct session session;
typedef struct member member;
typedef struct room room;

/* Per loop: its place in the rooms' per-loop arrays, and buffers reused
 * by every message handled on it. Found from the loop with
 * chat_ctx(loop) (wisp's per-loop data). */
typedef struct loop_ctx {
    wisp_loop_t *loop;
    unsigned index;
    _Atomic unsigned long sessions; /* read by /stats on other loops */
    member *cursor;          /* the member rooms' deliver visits next */
    char *scratch;           /* decoded JSON strings, MAX_WIRE bytes */
    wisp_json_tok_t toks[MSG_TOKS];
    wisp_json_writer_t ev;   /* an event being encoded (live form) */
    wisp_json_writer_t hist; /* the same event's history form */
    wisp_json_writer_t out;  /* a `joined` reply being written */
    wisp_json_writer_t aux;  /* errors and `left` replies */
    wisp_loop_t **targets;   /* loops a broadcast goes to */
    wisp_shared_t **replay;  /* history frames taken for a joiner */
} loop_ctx;

/* One WebSocket client. */
struct session {
    wisp_ws_t *ws;           /* NULL once on_close has run */
    loop_ctx *lc;
    member *m;               /* the current room, or NULL */
    wisp_rate_t rate;        /* messages */
    wisp_rate_t strikes;     /* refused messages before close 1008 */
    int busy;                /* inside on_message */
};

/* Settings, fixed before the loops start, and the loops' contexts. */
typedef struct chat_config {
    unsigned history;        /* messages kept per room */
    double rate;             /* messages per second per client */
    uint32_t burst;
    uint32_t flood;          /* refused messages before close 1008 */
    size_t replay_budget;    /* bytes of history replayed to a joiner */
    uint64_t hash_seed;
    unsigned nloops;
    loop_ctx *ctx;           /* [nloops] */
} chat_config;

extern chat_config chat;

/* The context of `loop`, one of the server's I/O loops (main.c). */
loop_ctx *chat_ctx(wisp_loop_t *loop);

/* The server's wall clock in milliseconds (the `ts` of events). */
uint64_t chat_wall_ms(void);

#endif
