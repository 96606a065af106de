/* chat — the WebSocket sessions: reading client messages, checking them,
 * answering. Protocol (every message is one JSON object in one text
 * frame):
 *
 *   client → server
 *     {"type":"join","room":R,"nick":N}   join R (leaving the current
 *                                         room, if any) as N
 *     {"type":"msg","text":T}             say T in the current room
 *     {"type":"leave"}                    leave the current room
 *
 *   server → client
 *     {"type":"joined","room":R,"nick":N,"members":[...],"count":C,
 *      "seq":S,"history":H}               then H history messages
 *     {"type":"msg","room":R,"nick":N,"text":T,"ts":MS,"seq":S}
 *                                         ("history":true on replay)
 *     {"type":"presence","room":R,"event":"join"|"leave","nick":N,
 *      "ts":MS,"seq":S}                   to the other members
 *     {"type":"left","room":R}
 *     {"type":"error","code":CODE,"message":TEXT}
 *
 * `seq` numbers every event of a room (messages and presence) in the order
 * the room saw them; `ts` is the server's wall clock in milliseconds.
 * A client message has at most MAX_FIELDS fields, every value a string,
 * no key twice. A binary frame is refused with close 1003; a message over
 * 32 KiB with close 1009 (wisp); a client whose unsent output passes
 * --max-send-queue with close 1008 ("slow consumer", wisp); a client that
 * keeps sending far beyond its rate limit with close 1008 ("rate limit
 * exceeded"). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"
#include "rooms.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* ------------------------------------------------------------ replies */

/* Send what `w` holds (a complete JSON value) to `s`. After on_close
 * (ws NULL) this does nothing; note that a send can itself end the
 * session (slow consumer, or a reset seen while writing), which runs
 * on_close before it returns. */
static void send_json(session *s, wisp_json_writer_t *w)
{
    if (s->ws && wisp_json_finish(w, NULL, NULL) == 0)
        wisp_ws_send_text(s->ws, w->buf, w->len);
}

static void send_error(session *s, const char *code, const char *fmt, ...)
    WISP_PRINTF(3, 4);

static void send_error(session *s, const char *code, const char *fmt, ...)
{
    /* Messages quote at most a nickname and a room name, so 256 bytes are
     * never cut short (a cut could split a UTF-8 sequence, which the
     * writer would refuse). */
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    wisp_json_writer_t *w = &s->lc->aux;
    wisp_json_writer_reset(w);
    wisp_json_obj_begin(w);
    wisp_json_kv_str(w, "type", "error");
    wisp_json_kv_str(w, "code", code);
    wisp_json_kv_str(w, "message", text);
    wisp_json_obj_end(w);
    send_json(s, w);
}

/* `{"type":"left","room":...}` into lc->aux. */
static void write_left(loop_ctx *lc, const room *r)
{
    wisp_json_writer_t *w = &lc->aux;
    wisp_json_writer_reset(w);
    wisp_json_obj_begin(w);
    wisp_json_kv_str(w, "type", "left");
    wisp_json_key(w, "room");
    wisp_json_str_val_n(w, r->name, r->name_len);
    wisp_json_obj_end(w);
}

/* ------------------------------------------------------------ reading */

/* One client message, parsed; its strings are decoded on demand into the
 * loop's scratch buffer, one after the other. Decoded strings are never
 * longer than their JSON form, quotes included, so a whole message's
 * worth fits in MAX_WIRE bytes. */
typedef struct message {
    wisp_json_doc_t doc;
    char *scratch;
    size_t used;
} message;

/* The decoded string value of field `key` (NUL-terminated, *len set), or
 * NULL when the message has no such field. */
static const char *field(message *msg, const char *key, size_t *len)
{
    int v = wisp_json_get(&msg->doc, 0, key);
    if (v < 0)
        return NULL;
    char *at = msg->scratch + msg->used;
    ssize_t n = wisp_json_str(&msg->doc, v, at, MAX_WIRE - msg->used);
    if (n < 0)
        return NULL; /* not a string: check_fields refused it already */
    msg->used += (size_t)n + 1;
    *len = (size_t)n;
    return at;
}

/* Why a parsed document is not a message, or NULL when it is one. */
static const char *check_fields(message *msg, const char **code)
{
    const wisp_json_doc_t *doc = &msg->doc;
    *code = "bad_field";
    if (wisp_json_type(doc, 0) != WISP_JSON_OBJECT) {
        *code = "not_object";
        return "a message must be a JSON object";
    }
    if (wisp_json_count(doc, 0) > MAX_FIELDS)
        return "more than " STR(MAX_FIELDS) " fields";
    /* Keys decoded side by side in the scratch buffer, then compared
     * pairwise: at most MAX_FIELDS of them. */
    const char *keys[MAX_FIELDS];
    size_t lens[MAX_FIELDS], n = 0;
    msg->used = 0;
    for (int k = wisp_json_first(doc, 0); k >= 0; k = wisp_json_next(doc, k)) {
        if (wisp_json_type(doc, k + 1) != WISP_JSON_STRING)
            return "every value must be a string";
        char *at = msg->scratch + msg->used;
        ssize_t len = wisp_json_str(doc, k, at, MAX_WIRE - msg->used);
        if (len < 0)
            return "a key does not fit"; /* cannot happen: see message */
        for (size_t i = 0; i < n; i++)
            if (lens[i] == (size_t)len && memcmp(keys[i], at, lens[i]) == 0)
                return "a field appears twice";
        keys[n] = at;
        lens[n++] = (size_t)len;
        msg->used += (size_t)len + 1;
    }
    msg->used = 0;
    return NULL;
}

/* Parse `data` into `msg`. Returns NULL, or the error to send (`code`
 * and the returned text). */
static const char *read_message(loop_ctx *lc, const char *data, size_t len,
                                message *msg, const char **code)
{
    /* Nesting is refused early: a message is flat. */
    const wisp_json_limits_t limits = {.max_depth = 16};
    msg->scratch = lc->scratch;
    msg->used = 0;
    int n = wisp_json_parse(&msg->doc, data, len, lc->toks, MSG_TOKS,
                            &limits);
    if (n == -ENOBUFS) {
        /* More values than any message has. Whether it is bad JSON or a
         * bad message, the client is told precisely: parse again with
         * room for every value (a document of len bytes has at most
         * len / 2 + 1) and say what is wrong with it. Rare, and cheap
         * enough to allocate for. */
        size_t cap = len / 2 + 1;
        wisp_json_tok_t *all = malloc(cap * sizeof *all);
        if (!all) {
            *code = "internal";
            return "out of memory";
        }
        message big = {.scratch = lc->scratch};
        n = wisp_json_parse(&big.doc, data, len, all, (uint32_t)cap,
                            &limits);
        const char *why = n < 0 ? NULL : check_fields(&big, code);
        free(all);
        if (n >= 0)
            return why ? why : "too many values"; /* why is never NULL */
    }
    if (n < 0) {
        *code = "bad_json";
        return "not valid JSON";
    }
    return check_fields(msg, code);
}

/* ------------------------------------------------------------ requests */

/* Nonzero when `s` holds a control character: C0, DEL, or C1 (U+0080 to
 * U+009F, which UTF-8 writes as C2 80 to C2 9F). Message text may keep
 * tabs and line breaks. `s` is valid UTF-8. */
static int has_control(const char *s, size_t n, int text)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == 0x7F || (c == 0xC2 && i + 1 < n &&
                          (unsigned char)s[i + 1] < 0xA0))
            return 1;
        if (c < 0x20 && !(text && (c == '\t' || c == '\n' || c == '\r')))
            return 1;
    }
    return 0;
}

static int same(const char *a, size_t al, const char *b, size_t bl)
{
    return al == bl && memcmp(a, b, al) == 0;
}

/* Check a nickname or room name; sends the error and returns -1 when it
 * is refused. */
static int check_name(session *s, const char *what, const char *v,
                      size_t len, size_t max)
{
    int nick = strcmp(what, "nick") == 0;
    if (len > max) {
        send_error(s, nick ? "nick_too_long" : "room_too_long",
                   "%s is longer than %zu bytes", what, max);
        return -1;
    }
    if (len == 0 || has_control(v, len, 0)) {
        send_error(s, nick ? "nick_invalid" : "room_invalid",
                   "%s must be 1 to %zu bytes without control characters",
                   what, max);
        return -1;
    }
    return 0;
}

static void do_join(session *s, message *msg)
{
    size_t rl, nl;
    const char *rname = field(msg, "room", &rl);
    const char *nick = field(msg, "nick", &nl);
    if (!rname || !nick) {
        send_error(s, "missing_field", "join needs \"room\" and \"nick\"");
        return;
    }
    if (check_name(s, "nick", nick, nl, MAX_NICK) < 0 ||
        check_name(s, "room", rname, rl, MAX_ROOM) < 0)
        return;
    member *old = s->m;
    if (old && same(old->room->name, old->room->name_len, rname, rl) &&
        same(old->nick, old->nick_len, nick, nl)) {
        send_error(s, "already_joined", "you are already in this room");
        return;
    }
    loop_ctx *lc = s->lc;
    joining j;
    int r = room_join(s, rname, rl, nick, nl, old, &j);
    if (r == E_TAKEN) {
        send_error(s, "nick_taken", "nickname \"%.*s\" is taken in room "
                   "\"%.*s\"", (int)nl, nick, (int)rl, rname);
        return;
    }
    if (r < 0) {
        send_error(s, "internal", "out of memory");
        return;
    }
    /* State first, replies last: a reply can end the session (and run
     * on_close) before it returns. */
    s->m = j.m;
    room_enter(s, &j);
    if (old) {
        write_left(lc, old->room);
        room_leave(old);
        send_json(s, &lc->aux);
    }
    if (wisp_json_finish(&lc->out, NULL, NULL) < 0)
        send_error(s, "internal", "out of memory"); /* the member list */
    else
        send_json(s, &lc->out);
    for (size_t i = 0; i < j.nreplay; i++) {
        if (s->ws)
            wisp_ws_send_shared(s->ws, lc->replay[i]);
        wisp_shared_unref(lc->replay[i]);
    }
    if (lc->out.cap > (256u << 10)) /* do not keep a huge list's buffer */
        wisp_json_writer_free(&lc->out);
}

static void do_leave(session *s)
{
    if (!s->m) {
        send_error(s, "not_in_room", "join a room first");
        return;
    }
    member *m = s->m;
    s->m = NULL;
    write_left(s->lc, m->room);
    room_leave(m);
    send_json(s, &s->lc->aux);
}

static void do_msg(session *s, message *msg)
{
    size_t tl;
    const char *text = field(msg, "text", &tl);
    if (!text) {
        send_error(s, "missing_field", "msg needs \"text\"");
        return;
    }
    if (tl > MAX_TEXT) {
        send_error(s, "text_too_long", "text is longer than %d bytes",
                   MAX_TEXT);
        return;
    }
    if (tl == 0 || has_control(text, tl, 1)) {
        send_error(s, "text_invalid", "text must be non-empty, without "
                   "control characters other than tab and line breaks");
        return;
    }
    if (!s->m) {
        send_error(s, "not_in_room", "join a room first");
        return;
    }
    if (room_say(s->m, text, tl) < 0)
        send_error(s, "internal", "out of memory");
}

static void handle(session *s, const char *data, size_t len)
{
    wisp_loop_t *loop = wisp_ws_loop(s->ws);
    uint64_t now = wisp_loop_now(loop);
    /* Every message costs a token, whatever it is: the limit protects the
     * server as much as the other members. */
    if (!wisp_rate_take(&s->rate, now, 1)) {
        if (chat.flood && !wisp_rate_take(&s->strikes, now, 1)) {
            wisp_ws_close(s->ws, 1008, "rate limit exceeded");
            return;
        }
        send_error(s, "rate_limited", "too many messages; at most %g per "
                   "second (bursts of %u)", chat.rate, (unsigned)chat.burst);
        return;
    }
    if (rooms_stopping()) {
        send_error(s, "stopping", "the server is stopping");
        return;
    }
    message msg;
    const char *code, *why = read_message(s->lc, data, len, &msg, &code);
    if (why) {
        send_error(s, code, "%s", why);
        return;
    }
    int type = wisp_json_get(&msg.doc, 0, "type");
    if (type < 0)
        send_error(s, "missing_field", "\"type\" is missing");
    else if (wisp_json_str_eq(&msg.doc, type, "join"))
        do_join(s, &msg);
    else if (wisp_json_str_eq(&msg.doc, type, "msg"))
        do_msg(s, &msg);
    else if (wisp_json_str_eq(&msg.doc, type, "leave"))
        do_leave(s);
    else
        send_error(s, "unknown_type", "type must be join, msg or leave");
}

/* ------------------------------------------------------------ sessions */

static void on_open(wisp_ws_t *ws, void *arg)
{
    (void)arg;
    session *s = calloc(1, sizeof *s);
    if (!s) {
        wisp_ws_close(ws, 1011, "out of memory");
        return;
    }
    s->ws = ws;
    s->lc = chat_ctx(wisp_ws_loop(ws));
    uint64_t now = wisp_loop_now(wisp_ws_loop(ws));
    wisp_rate_init(&s->rate, chat.rate, chat.burst, now);
    wisp_rate_init(&s->strikes, chat.rate, chat.flood ? chat.flood : 1, now);
    atomic_fetch_add_explicit(&s->lc->sessions, 1, memory_order_relaxed);
    wisp_ws_set_arg(ws, s);
}

static void on_message(wisp_ws_t *ws, int binary, const void *data,
                       size_t len, void *arg)
{
    session *s = arg;
    if (!s)
        return;
    if (binary) {
        wisp_ws_close(ws, 1003, "binary frames are not supported");
        return;
    }
    s->busy = 1;
    handle(s, data, len);
    s->busy = 0;
    if (!s->ws)
        free(s); /* on_close ran during the call */
}

static void on_close(wisp_ws_t *ws, int code, const char *reason,
                     size_t reason_len, void *arg)
{
    session *s = arg;
    (void)ws;
    (void)code;
    (void)reason;
    (void)reason_len;
    if (!s)
        return;
    if (s->m) {
        member *m = s->m;
        s->m = NULL;
        room_leave(m);
    }
    atomic_fetch_sub_explicit(&s->lc->sessions, 1, memory_order_relaxed);
    s->ws = NULL;
    if (!s->busy)
        free(s);
}

const wisp_ws_handlers_t chat_ws_handlers = {
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_close,
};
