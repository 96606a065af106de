/* chat — multi-room chat over WebSocket, with rooms shared by every I/O
 * loop.
 *
 *   GET /       a small page to try it in a browser
 *   GET /ws     the chat: JSON text messages, protocol below
 *   GET /stats  live numbers as JSON: sessions per loop, rooms, drops
 *
 * Protocol (every message is one JSON object in one text frame):
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
 * A binary frame is refused with close 1003; a message over 32 KiB with
 * close 1009 (wisp); a client whose unsent output passes --max-send-queue
 * with close 1008 ("slow consumer", wisp); a client that keeps sending
 * far beyond its rate limit with close 1008 ("rate limit exceeded").
 *
 * How it fits together (docs/guide.md, "Chat example", says it at length):
 *
 *  - A room is shared by all loops. Its event counter, nickname set,
 *    member counts and history ring sit behind the room's mutex; each
 *    loop keeps its own list of the room's members that live on it and
 *    is the only thread to touch that list.
 *  - An event is encoded once as a WebSocket frame (wisp_ws_frame_shared)
 *    and posted by reference to the loops that have members in the room
 *    (wisp_broadcast); each loop hands the same frame to its members
 *    (wisp_ws_send_shared).
 *  - The join race: numbering an event, adding it to the history and
 *    taking a joiner's snapshot all happen under the room's mutex, so a
 *    joiner gets every event up to its join number in the snapshot and
 *    every later one live, and skips live events at or below it.
 *  - Each loop posts its broadcasts in order and inboxes are FIFO per
 *    producer, so one sender's messages reach everyone in the order sent.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <wisp.h>

#include "json.h"

#define MAX_NICK 32          /* bytes of UTF-8 */
#define MAX_ROOM 64
#define MAX_TEXT 4096
#define MAX_WIRE (32 * 1024) /* whole message as received: text escaped
                                6 times over still fits */
#define MAX_FIELDS 8
#define MAX_LISTED 1000      /* names in a `joined` member list; `count`
                                always has the real number */
#define MAX_HISTORY 10000

#define CONTAINER(p, type, field) \
    ((type *)(void *)((char *)(p) - offsetof(type, field)))

/* ------------------------------------------------------------ types */

/* An intrusive hash table of byte-string keys: the rooms by name, and in
 * each room its members by nickname. */
typedef struct hnode {
    struct hnode *next;
    const char *key;
    size_t klen;
    uint64_t hash;
} hnode;

typedef struct htable {
    hnode **b;
    size_t nb; /* buckets: a power of two, or 0 before the first insert */
    size_t n;
} htable;

typedef struct session session;
typedef struct member member;
typedef struct room room;

/* Per loop: its place in the rooms' per-loop arrays, and buffers reused
 * by every message handled on it. */
typedef struct loop_ctx {
    wisp_loop_t *loop;
    unsigned index;
    _Atomic unsigned long sessions; /* read by /stats on other loops */
    member *cursor;          /* the member deliver() visits next */
    char *scratch;           /* decoded JSON strings, MAX_WIRE bytes */
    jbuf ev;                 /* an event being encoded */
    jbuf out;                /* a `joined` reply being written */
    jbuf aux;                /* errors and `left` replies */
    wisp_loop_t **targets;   /* loops a broadcast goes to */
    wisp_shared_t **replay;  /* history frames taken for a joiner */
} loop_ctx;

struct room {
    hnode node;              /* in g.rooms, under g.rooms_lock */
    _Atomic unsigned refs;   /* g.rooms, each member, each event in flight */
    pthread_mutex_t lock;    /* guards the fields down to `local` */
    int dead;                /* taken out of g.rooms: joiners look again */
    uint64_t seq;            /* number of the room's last event */
    uint32_t members;
    uint32_t *loop_members;  /* [loop]: members on it, to pick targets */
    htable nicks;            /* member.nick_node */
    wisp_shared_t **hist;    /* ring of the last g.history message frames */
    unsigned hist_head;
    unsigned hist_len;
    member **local;          /* [loop]: its members; only that loop's
                                thread reads or writes its list */
    size_t name_len;
    char name[];
};

/* One session's membership of one room. */
struct member {
    member *prev, *next;     /* room->local[loop]: the loop's thread only */
    hnode nick_node;         /* room->nicks: under room->lock */
    room *room;              /* a reference */
    session *s;
    uint64_t join_seq;       /* events up to this one came with the join */
    size_t nick_len;
    char nick[MAX_NICK + 1];
};

/* One WebSocket client. */
struct session {
    wisp_ws_t *ws;           /* NULL once on_close has run */
    loop_ctx *lc;
    member *m;               /* the current room, or NULL */
    wisp_rate_t rate;        /* messages */
    wisp_rate_t strikes;     /* refused messages before close 1008 */
    int busy;                /* inside on_message */
};

/* What a broadcast carries to each loop: the frame and whom it is for.
 * It travels as the wisp_shared_t given to wisp_broadcast, so wisp's
 * reference count frees it after the last loop is done with it; the frame
 * has its own count because write queues keep it longer. */
typedef struct envelope {
    room *room;              /* a reference */
    uint64_t seq;
    wisp_shared_t *frame;    /* a reference */
} envelope;

/* ------------------------------------------------------------ globals */

static struct {
    /* Settings, fixed before the loops start. */
    unsigned history;
    double rate;
    uint32_t burst;
    uint32_t flood;
    size_t replay_budget;    /* bytes of history replayed to a joiner */
    uint64_t hash_seed;
    unsigned nloops;
    loop_ctx *ctx;

    pthread_mutex_t rooms_lock;
    htable rooms;
    _Atomic long rooms_alive;
    _Atomic unsigned long long dropped; /* deliveries lost: an inbox
                                           full, or out of memory */
    /* The stop handshake (see stop_publishing). */
    atomic_int stopping;
    atomic_uint publishing;
} g = {
    .history = 50,
    .rate = 5,
    .burst = 10,
    .flood = 50,
    .rooms_lock = PTHREAD_MUTEX_INITIALIZER,
};

/* The WebSocket options of every session: wisp keeps the pointer, so
 * they must outlive every session (ws.h, wisp_ws_upgrade). */
static wisp_ws_opts_t ws_opts;

static _Thread_local loop_ctx *tls_ctx;

static loop_ctx *ctx_of(wisp_loop_t *loop)
{
    if (tls_ctx && tls_ctx->loop == loop)
        return tls_ctx;
    for (unsigned i = 0; i < g.nloops; i++)
        if (g.ctx[i].loop == loop)
            return tls_ctx = &g.ctx[i];
    abort(); /* every loop of the server has a context */
}

/* ------------------------------------------------------------ hash table */

static uint64_t hash_key(const char *p, size_t n)
{
    /* FNV-1a with a per-run seed, so nicknames chosen to collide in one
     * run do not collide in the next. */
    uint64_t h = 0xcbf29ce484222325ull ^ g.hash_seed;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static hnode *ht_find(const htable *t, const char *key, size_t klen,
                      uint64_t h)
{
    if (!t->nb)
        return NULL;
    for (hnode *e = t->b[h & (t->nb - 1)]; e; e = e->next)
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0)
            return e;
    return NULL;
}

/* Returns 0, or -ENOMEM when the table has no buckets and none can be
 * had (a table that cannot grow just gets longer chains). */
static int ht_insert(htable *t, hnode *e)
{
    if (t->n >= t->nb) {
        size_t nb = t->nb ? t->nb * 2 : 8;
        hnode **b = calloc(nb, sizeof *b);
        if (!b && !t->nb)
            return -ENOMEM;
        if (b) {
            for (size_t i = 0; i < t->nb; i++) {
                hnode *x = t->b[i];
                while (x) {
                    hnode *next = x->next;
                    x->next = b[x->hash & (nb - 1)];
                    b[x->hash & (nb - 1)] = x;
                    x = next;
                }
            }
            free(t->b);
            t->b = b;
            t->nb = nb;
        }
    }
    hnode **slot = &t->b[e->hash & (t->nb - 1)];
    e->next = *slot;
    *slot = e;
    t->n++;
    return 0;
}

/* `e` must be in `t`. */
static void ht_remove(htable *t, hnode *e)
{
    hnode **pp = &t->b[e->hash & (t->nb - 1)];
    while (*pp != e)
        pp = &(*pp)->next;
    *pp = e->next;
    t->n--;
}

static void ht_free(htable *t)
{
    free(t->b);
    t->b = NULL;
    t->nb = t->n = 0;
}

/* ------------------------------------------------------------ helpers */

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

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

/* Sends to a session. After on_close (ws NULL) they do nothing; note that
 * a send can itself end the session (slow consumer, or a reset seen while
 * writing), which runs on_close before it returns. */
static void send_text(session *s, const jbuf *b)
{
    if (s->ws && !b->oom)
        wisp_ws_send_text(s->ws, b->p, b->len);
}

static void send_error(session *s, const char *code, const char *fmt, ...)
    WISP_PRINTF(3, 4);

static void send_error(session *s, const char *code, const char *fmt, ...)
{
    /* Messages quote at most a nickname and a room name, so 256 bytes are
     * never cut short (a cut could split a UTF-8 sequence). */
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    jbuf *b = &s->lc->aux;
    jb_reset(b);
    jb_lit(b, "{\"type\":\"error\",\"code\":");
    jb_str(b, code, strlen(code));
    jb_lit(b, ",\"message\":");
    jb_str(b, text, strlen(text));
    jb_lit(b, "}");
    send_text(s, b);
}

/* ------------------------------------------------------------ rooms */

static void room_ref(room *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

static void room_free(room *r)
{
    for (unsigned i = 0; i < r->hist_len; i++)
        wisp_shared_unref(r->hist[(r->hist_head + i) % g.history]);
    free(r->hist);
    ht_free(&r->nicks);
    free(r->loop_members);
    free(r->local);
    pthread_mutex_destroy(&r->lock);
    free(r);
    atomic_fetch_sub(&g.rooms_alive, 1);
}

/* Any thread may drop the last reference: a loop finishing a delivery,
 * or the last member leaving. */
static void room_unref(room *r)
{
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1)
        room_free(r);
}

static room *room_create(const char *name, size_t len, uint64_t h)
{
    room *r = calloc(1, sizeof *r + len + 1);
    if (!r)
        return NULL;
    r->loop_members = calloc(g.nloops, sizeof *r->loop_members);
    r->local = calloc(g.nloops, sizeof *r->local);
    r->hist = g.history ? calloc(g.history, sizeof *r->hist) : NULL;
    if (!r->loop_members || !r->local || (g.history && !r->hist)) {
        free(r->loop_members);
        free(r->local);
        free(r->hist);
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    atomic_init(&r->refs, 1); /* g.rooms' */
    memcpy(r->name, name, len);
    r->name_len = len;
    r->node.key = r->name;
    r->node.klen = len;
    r->node.hash = h;
    atomic_fetch_add(&g.rooms_alive, 1);
    return r;
}

/* The room called `name`, created if need be, locked, with a reference
 * for the caller; NULL when out of memory. */
static room *room_get_locked(const char *name, size_t len)
{
    uint64_t h = hash_key(name, len);
    for (;;) {
        pthread_mutex_lock(&g.rooms_lock);
        hnode *e = ht_find(&g.rooms, name, len, h);
        room *r = e ? CONTAINER(e, room, node) : NULL;
        if (!r) {
            r = room_create(name, len, h);
            if (r && ht_insert(&g.rooms, &r->node) < 0) {
                room_free(r);
                r = NULL;
            }
            if (!r) {
                pthread_mutex_unlock(&g.rooms_lock);
                return NULL;
            }
        }
        room_ref(r);
        pthread_mutex_unlock(&g.rooms_lock);
        pthread_mutex_lock(&r->lock);
        if (!r->dead)
            return r;
        /* Emptied and retired between the lookup and the lock: the next
         * lookup creates a fresh room. */
        pthread_mutex_unlock(&r->lock);
        room_unref(r);
    }
}

/* Take an empty room out of g.rooms, unless someone joined it meanwhile.
 * The room itself goes when its last reference does. Lock order:
 * g.rooms_lock, then the room's. */
static void room_retire(room *r)
{
    int gone = 0;
    pthread_mutex_lock(&g.rooms_lock);
    pthread_mutex_lock(&r->lock);
    if (!r->dead && r->members == 0) {
        r->dead = 1;
        ht_remove(&g.rooms, &r->node);
        gone = 1;
    }
    pthread_mutex_unlock(&r->lock);
    pthread_mutex_unlock(&g.rooms_lock);
    if (gone)
        room_unref(r);
}

/* Under r->lock: the loops that have members of `r`, into lc->targets. */
static size_t targets_locked(const room *r, loop_ctx *lc)
{
    size_t n = 0;
    for (unsigned i = 0; i < g.nloops; i++)
        if (r->loop_members[i])
            lc->targets[n++] = g.ctx[i].loop;
    return n;
}

/* Under r->lock: append a message frame to the history; returns the frame
 * that fell out (to be released after the lock), or NULL. */
static wisp_shared_t *hist_push_locked(room *r, wisp_shared_t *f)
{
    if (r->hist_len < g.history) {
        r->hist[(r->hist_head + r->hist_len++) % g.history] = f;
        return NULL;
    }
    wisp_shared_t *old = r->hist[r->hist_head];
    r->hist[r->hist_head] = f;
    r->hist_head = (r->hist_head + 1) % g.history;
    return old;
}

/* Under r->lock: references to the newest history frames, oldest first,
 * into lc->replay; as many as fit in the replay budget (so a join cannot
 * by itself push a client over its send queue limit). */
static size_t replay_locked(const room *r, loop_ctx *lc)
{
    size_t k = 0, bytes = 0;
    while (k < r->hist_len) {
        size_t at = (r->hist_head + r->hist_len - 1 - k) % g.history;
        bytes += wisp_shared_len(r->hist[at]);
        if (bytes > g.replay_budget)
            break;
        k++;
    }
    for (size_t i = 0; i < k; i++) {
        size_t at = (r->hist_head + r->hist_len - k + i) % g.history;
        wisp_shared_ref(r->hist[at]);
        lc->replay[i] = r->hist[at];
    }
    return k;
}

static void local_link(member *m)
{
    member **head = &m->room->local[m->s->lc->index];
    m->prev = NULL;
    m->next = *head;
    if (*head)
        (*head)->prev = m;
    *head = m;
}

static void local_unlink(member *m)
{
    loop_ctx *lc = m->s->lc;
    member **head = &m->room->local[lc->index];
    if (lc->cursor == m)
        lc->cursor = m->next; /* deliver() is sending to this member */
    if (m->prev)
        m->prev->next = m->next;
    else
        *head = m->next;
    if (m->next)
        m->next->prev = m->prev;
    m->prev = m->next = NULL;
}

/* ------------------------------------------------------------ broadcast */

static void envelope_free(void *arg)
{
    envelope *e = arg;
    wisp_shared_unref(e->frame);
    room_unref(e->room);
    free(e);
}

/* On each target loop: hand the frame to that loop's members of the room
 * whose join came before the event. A send may end a session at once
 * (slow consumer, dead peer), and its on_close unlinks the member, so the
 * next member is kept in lc->cursor, which local_unlink moves on. */
static void deliver(wisp_loop_t *loop, wisp_shared_t *msg, void *arg)
{
    const envelope *e = wisp_shared_data(msg);
    loop_ctx *lc = ctx_of(loop);
    (void)arg;
    for (member *m = e->room->local[lc->index]; m; m = lc->cursor) {
        lc->cursor = m->next;
        if (e->seq > m->join_seq)
            wisp_ws_send_shared(m->s->ws, e->frame);
    }
    lc->cursor = NULL;
}

/* Post event `seq` of `r` (frame `f`) to the first `n` of lc->targets.
 *
 * Stopping: a delivery posted to a loop that has already left its run
 * loop would never run, and its references would be lost. So once the
 * stop has begun nothing more is published, and the stop does not begin
 * while a publication is under way (stop_publishing waits for the
 * counter); everything posted before reaches its loops ahead of their
 * stop task, and they run it before they exit. */
static void publish(loop_ctx *lc, room *r, uint64_t seq, wisp_shared_t *f,
                    size_t n)
{
    if (!n)
        return;
    envelope *e = malloc(sizeof *e);
    if (e) {
        e->room = r;
        e->seq = seq;
        e->frame = f;
    }
    wisp_shared_t *msg = e ? wisp_shared_wrap(e, sizeof *e, envelope_free, e)
                           : NULL;
    if (!msg) {
        free(e);
        atomic_fetch_add(&g.dropped, n);
        return;
    }
    room_ref(r);
    wisp_shared_ref(f);
    ssize_t queued = (ssize_t)n;
    atomic_fetch_add(&g.publishing, 1);
    if (!atomic_load(&g.stopping))
        queued = wisp_broadcast(lc->targets, n, msg, deliver, NULL);
    atomic_fetch_sub(&g.publishing, 1);
    if (queued < (ssize_t)n) {
        /* An inbox was full (or memory ran out): that loop's members miss
         * this event and will see a gap in `seq`. */
        size_t lost = n - (size_t)(queued < 0 ? 0 : queued);
        unsigned long long d = atomic_fetch_add(&g.dropped, lost);
        if (d == 0 || d % 1000 == 0)
            wisp_log(WISP_LOG_WARN, "chat: room event not delivered to "
                     "every loop (%llu so far)", d + 1);
    }
    wisp_shared_unref(msg);
}

/* The signal thread calls this before it stops the server. */
static void stop_publishing(void)
{
    atomic_store(&g.stopping, 1);
    /* Sequentially consistent on both sides: a publisher either sees the
     * flag, or is seen here and waited for. */
    while (atomic_load(&g.publishing))
        sched_yield();
}

/* ------------------------------------------------------------ join, leave */

enum { E_TAKEN = -10000 };

typedef struct joining {
    member *m;
    wisp_shared_t *presence; /* the join event for the others, or NULL */
    size_t ntargets;
    size_t nreplay;          /* history frames in lc->replay */
} joining;

/* Add `s` to room `name` as `nick`. On success the new member is not yet
 * linked on its loop; lc->out holds the `joined` reply (check its oom),
 * lc->replay the history to send after it. `old` is the session's current
 * membership: when it is in the same room (a change of nickname) it is
 * left out of the member list, as it is about to leave. Returns 0,
 * E_TAKEN or -ENOMEM. */
static int room_join(session *s, const char *name, size_t name_len,
                     const char *nick, size_t nick_len, const member *old,
                     joining *j)
{
    loop_ctx *lc = s->lc;
    member *m = calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    memcpy(m->nick, nick, nick_len);
    m->nick_len = nick_len;
    m->s = s;
    m->nick_node.key = m->nick;
    m->nick_node.klen = nick_len;
    m->nick_node.hash = hash_key(nick, nick_len);

    /* Write everything that does not depend on the room's state before
     * taking its lock; under it only numbers and names are added. */
    jbuf *ev = &lc->ev, *out = &lc->out;
    jb_reset(ev);
    jb_lit(ev, "{\"type\":\"presence\",\"room\":");
    jb_str(ev, name, name_len);
    jb_lit(ev, ",\"event\":\"join\",\"nick\":");
    jb_str(ev, nick, nick_len);
    jb_lit(ev, ",\"ts\":");
    jb_u64(ev, wall_ms());
    jb_lit(ev, ",\"seq\":");
    jb_reserve(ev, 24);
    jb_reset(out);
    jb_lit(out, "{\"type\":\"joined\",\"room\":");
    jb_str(out, name, name_len);
    jb_lit(out, ",\"nick\":");
    jb_str(out, nick, nick_len);
    jb_lit(out, ",\"members\":[");
    room *r = ev->oom || out->oom ? NULL : room_get_locked(name, name_len);
    if (!r) {
        free(m);
        return -ENOMEM;
    }

    int err = 0;
    if (ht_find(&r->nicks, nick, nick_len, m->nick_node.hash))
        err = E_TAKEN;
    else if (ht_insert(&r->nicks, &m->nick_node) < 0)
        err = -ENOMEM;
    if (err) {
        int empty = r->members == 0;
        pthread_mutex_unlock(&r->lock);
        if (empty)
            room_retire(r); /* created for this join */
        room_unref(r);
        free(m);
        return err;
    }
    r->members++;
    r->loop_members[lc->index]++;
    m->room = r; /* the reference taken by room_get_locked */
    m->join_seq = ++r->seq;
    const hnode *skip = old && old->room == r ? &old->nick_node : NULL;
    size_t listed = 0;
    for (size_t i = 0; i < r->nicks.nb && listed < MAX_LISTED; i++)
        for (hnode *e = r->nicks.b[i]; e && listed < MAX_LISTED; e = e->next) {
            if (e == skip)
                continue;
            if (listed++)
                jb_lit(out, ",");
            jb_str(out, e->key, e->klen);
        }
    j->nreplay = replay_locked(r, lc);
    jb_lit(out, "],\"count\":");
    jb_u64(out, r->members - (skip != NULL));
    jb_lit(out, ",\"seq\":");
    jb_u64(out, m->join_seq);
    jb_lit(out, ",\"history\":");
    jb_u64(out, j->nreplay);
    jb_lit(out, "}");
    j->presence = NULL;
    j->ntargets = 0;
    if (r->members > 1) {
        jb_u64(ev, m->join_seq);
        jb_lit(ev, "}");
        j->presence = wisp_ws_frame_shared(0, ev->p, ev->len);
        j->ntargets = targets_locked(r, lc);
    }
    pthread_mutex_unlock(&r->lock);
    j->m = m;
    return 0;
}

/* Take member `m` out of its room (on m's loop), tell the others, free
 * `m`. Uses lc->ev and lc->targets only. */
static void room_leave(member *m)
{
    room *r = m->room;
    loop_ctx *lc = m->s->lc;
    local_unlink(m);
    jbuf *ev = &lc->ev;
    jb_reset(ev);
    jb_lit(ev, "{\"type\":\"presence\",\"room\":");
    jb_str(ev, r->name, r->name_len);
    jb_lit(ev, ",\"event\":\"leave\",\"nick\":");
    jb_str(ev, m->nick, m->nick_len);
    jb_lit(ev, ",\"ts\":");
    jb_u64(ev, wall_ms());
    jb_lit(ev, ",\"seq\":");
    jb_reserve(ev, 24);

    wisp_shared_t *f = NULL;
    size_t n = 0;
    uint64_t seq = 0;
    pthread_mutex_lock(&r->lock);
    ht_remove(&r->nicks, &m->nick_node);
    r->members--;
    r->loop_members[lc->index]--;
    if (r->members && !ev->oom) {
        seq = ++r->seq;
        jb_u64(ev, seq);
        jb_lit(ev, "}");
        f = wisp_ws_frame_shared(0, ev->p, ev->len);
        n = targets_locked(r, lc);
    }
    int empty = r->members == 0;
    pthread_mutex_unlock(&r->lock);
    if (f) {
        publish(lc, r, seq, f, n);
        wisp_shared_unref(f);
    }
    if (empty)
        room_retire(r);
    room_unref(r);
    free(m);
}

/* `{"type":"left","room":...}` into lc->aux. */
static void write_left(loop_ctx *lc, const room *r)
{
    jb_reset(&lc->aux);
    jb_lit(&lc->aux, "{\"type\":\"left\",\"room\":");
    jb_str(&lc->aux, r->name, r->name_len);
    jb_lit(&lc->aux, "}");
}

/* ------------------------------------------------------------ requests */

/* Check a nickname or room name; sends the error and returns -1 when it
 * is refused. */
static int check_name(session *s, const char *what, const char *v,
                      size_t len, size_t max)
{
    if (len > max) {
        send_error(s, strcmp(what, "nick") ? "room_too_long" : "nick_too_long",
                   "%s is longer than %zu bytes", what, max);
        return -1;
    }
    if (len == 0 || has_control(v, len, 0)) {
        send_error(s, strcmp(what, "nick") ? "room_invalid" : "nick_invalid",
                   "%s must be 1 to %zu bytes without control characters",
                   what, max);
        return -1;
    }
    return 0;
}

static void do_join(session *s, const json_field *f, int nf)
{
    size_t rl, nl;
    const char *rname = json_get(f, nf, "room", &rl);
    const char *nick = json_get(f, nf, "nick", &nl);
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
    local_link(j.m);
    if (j.presence) {
        publish(lc, j.m->room, j.m->join_seq, j.presence, j.ntargets);
        wisp_shared_unref(j.presence);
    }
    if (old) {
        write_left(lc, old->room);
        room_leave(old);
        send_text(s, &lc->aux);
    }
    if (lc->out.oom) /* the member list did not fit in memory */
        send_error(s, "internal", "out of memory");
    send_text(s, &lc->out);
    for (size_t i = 0; i < j.nreplay; i++) {
        if (s->ws)
            wisp_ws_send_shared(s->ws, lc->replay[i]);
        wisp_shared_unref(lc->replay[i]);
    }
    if (lc->out.cap > (256u << 10)) /* do not keep a huge list's buffer */
        jb_free(&lc->out);
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
    send_text(s, &s->lc->aux);
}

static void do_msg(session *s, const json_field *f, int nf)
{
    size_t tl;
    const char *text = json_get(f, nf, "text", &tl);
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
    member *m = s->m;
    if (!m) {
        send_error(s, "not_in_room", "join a room first");
        return;
    }
    room *r = m->room;
    loop_ctx *lc = s->lc;
    jbuf *ev = &lc->ev;
    jb_reset(ev);
    jb_lit(ev, "{\"type\":\"msg\",\"room\":");
    jb_str(ev, r->name, r->name_len);
    jb_lit(ev, ",\"nick\":");
    jb_str(ev, m->nick, m->nick_len);
    jb_lit(ev, ",\"text\":");
    jb_str(ev, text, tl);
    jb_lit(ev, ",\"ts\":");
    jb_u64(ev, wall_ms());
    jb_lit(ev, ",\"seq\":");
    jb_reserve(ev, 48); /* the number and the history suffix, below */
    if (ev->oom) {
        send_error(s, "internal", "out of memory");
        return;
    }
    size_t mark = ev->len;

    /* Number, encode (live and history forms), remember, pick the loops:
     * one critical section, so that a joiner's snapshot holds exactly the
     * events numbered before it. */
    pthread_mutex_lock(&r->lock);
    uint64_t seq = ++r->seq;
    jb_u64(ev, seq);
    jb_lit(ev, "}");
    wisp_shared_t *live = wisp_ws_frame_shared(0, ev->p, ev->len);
    wisp_shared_t *dropped = NULL;
    if (g.history) {
        ev->len = mark;
        jb_u64(ev, seq);
        jb_lit(ev, ",\"history\":true}");
        wisp_shared_t *h = wisp_ws_frame_shared(0, ev->p, ev->len);
        if (h)
            dropped = hist_push_locked(r, h);
    }
    size_t n = targets_locked(r, lc);
    pthread_mutex_unlock(&r->lock);

    wisp_shared_unref(dropped);
    if (!live) {
        send_error(s, "internal", "out of memory");
        return;
    }
    publish(lc, r, seq, live, n);
    wisp_shared_unref(live);
}

static void handle(session *s, const char *data, size_t len)
{
    wisp_loop_t *loop = wisp_ws_loop(s->ws);
    uint64_t now = wisp_loop_now(loop);
    /* Every message costs a token, whatever it is: the limit protects the
     * server as much as the other members. */
    if (!wisp_rate_take(&s->rate, now, 1)) {
        if (g.flood && !wisp_rate_take(&s->strikes, now, 1)) {
            wisp_ws_close(s->ws, 1008, "rate limit exceeded");
            return;
        }
        send_error(s, "rate_limited", "too many messages; at most %g per "
                   "second (bursts of %u)", g.rate, (unsigned)g.burst);
        return;
    }
    if (atomic_load_explicit(&g.stopping, memory_order_relaxed)) {
        send_error(s, "stopping", "the server is stopping");
        return;
    }
    json_field f[MAX_FIELDS];
    int nf = json_read_object(data, len, s->lc->scratch, f, MAX_FIELDS);
    switch (nf) {
    case JSON_EBAD:
        send_error(s, "bad_json", "not valid JSON");
        return;
    case JSON_ENOTOBJECT:
        send_error(s, "not_object", "a message must be a JSON object");
        return;
    case JSON_EVALUE:
        send_error(s, "bad_field", "every value must be a string");
        return;
    case JSON_EDUP:
        send_error(s, "bad_field", "a field appears twice");
        return;
    case JSON_ETOOMANY:
        send_error(s, "bad_field", "more than %d fields", MAX_FIELDS);
        return;
    default:
        break;
    }
    size_t tl;
    const char *type = json_get(f, nf, "type", &tl);
    if (!type)
        send_error(s, "missing_field", "\"type\" is missing");
    else if (same(type, tl, "join", 4))
        do_join(s, f, nf);
    else if (same(type, tl, "msg", 3))
        do_msg(s, f, nf);
    else if (same(type, tl, "leave", 5))
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
    s->lc = ctx_of(wisp_ws_loop(ws));
    uint64_t now = wisp_loop_now(wisp_ws_loop(ws));
    wisp_rate_init(&s->rate, g.rate, g.burst, now);
    wisp_rate_init(&s->strikes, g.rate, g.flood ? g.flood : 1, now);
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

static const wisp_ws_handlers_t ws_handlers = {
    .on_open = on_open,
    .on_message = on_message,
    .on_close = on_close,
};

/* ------------------------------------------------------------ HTTP */

/* The page, in pieces: ISO C promises string literals of 4095 bytes only
 * (-pedantic says so), so it is put together at start-up. */
static const char *const page_parts[] = {
    "<!doctype html>\n",
    "<html lang=\"en\">\n",
    "<head>\n",
    "<meta charset=\"utf-8\">\n",
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n",
    "<title>wisp chat</title>\n",
    "<style>\n",
    "body { font: 15px/1.4 system-ui, sans-serif; margin: 0; height: 100vh;\n",
    "       display: flex; flex-direction: column; }\n",
    "header { display: flex; flex-wrap: wrap; gap: 6px; align-items: center;\n",
    "         padding: 8px; background: #23384d; color: #fff; }\n",
    "main { flex: 1; display: flex; min-height: 0; }\n",
    "#log { flex: 1; overflow-y: auto; margin: 0; padding: 8px; list-style: none; }\n",
    "#log li { white-space: pre-wrap; overflow-wrap: anywhere; }\n",
    "#log .history { color: #888; }\n",
    "#log .info { color: #2a62a8; font-style: italic; }\n",
    "#log .error { color: #b00020; }\n",
    "aside { width: 190px; overflow-y: auto; padding: 8px;\n",
    "        border-left: 1px solid #ccc; }\n",
    "aside ul { padding-left: 18px; }\n",
    "form { display: flex; gap: 6px; padding: 8px; border-top: 1px solid #ccc; }\n",
    "#text { flex: 1; }\n",
    "</style>\n",
    "</head>\n",
    "<body>\n",
    "<header>\n",
    "  <b>wisp chat</b>\n",
    "  <input id=\"nick\" placeholder=\"nickname\" maxlength=\"32\">\n",
    "  <input id=\"room\" placeholder=\"room\" value=\"lobby\" maxlength=\"64\">\n",
    "  <button id=\"join\">Join</button>\n",
    "  <button id=\"leave\" disabled>Leave</button>\n",
    "  <span id=\"status\">not connected</span>\n",
    "</header>\n",
    "<main>\n",
    "  <ul id=\"log\"></ul>\n",
    "  <aside><b id=\"title\">Members</b><ul id=\"members\"></ul></aside>\n",
    "</main>\n",
    "<form id=\"say\">\n",
    "  <input id=\"text\" placeholder=\"message\" autocomplete=\"off\" disabled>\n",
    "  <button id=\"send\" disabled>Send</button>\n",
    "</form>\n",
    "<script>\n",
    "'use strict';\n",
    "// Everything a peer sent is inserted with textContent, never as HTML.\n",
    "const $ = id => document.getElementById(id);\n",
    "let ws = null, members = new Set();\n",
    "\n",
    "function line(text, cls) {\n",
    "  const log = $('log'), li = document.createElement('li');\n",
    "  const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;\n",
    "  li.textContent = text;\n",
    "  if (cls) li.className = cls;\n",
    "  log.appendChild(li);\n",
    "  if (atEnd) log.scrollTop = log.scrollHeight;\n",
    "}\n",
    "\n",
    "function showMembers(room) {\n",
    "  const ul = $('members');\n",
    "  ul.textContent = '';\n",
    "  for (const n of [...members].sort()) {\n",
    "    const li = document.createElement('li');\n",
    "    li.textContent = n;\n",
    "    ul.appendChild(li);\n",
    "  }\n",
    "  $('title').textContent = room ? '#' + room + ' (' + members.size + ')'\n",
    "                                : 'Members';\n",
    "}\n",
    "\n",
    "function inRoom(on) {\n",
    "  $('text').disabled = $('send').disabled = $('leave').disabled = !on;\n",
    "  if (on) $('text').focus();\n",
    "}\n",
    "\n",
    "function handle(m) {\n",
    "  const at = m.ts ? new Date(m.ts).toLocaleTimeString() + ' ' : '';\n",
    "  switch (m.type) {\n",
    "  case 'joined':\n",
    "    members = new Set(m.members);\n",
    "    showMembers(m.room);\n",
    "    inRoom(true);\n",
    "    line('you joined #' + m.room + ' as ' + m.nick + ' (' + m.count +\n",
    "         ' here, ' + m.history + ' earlier messages below)', 'info');\n",
    "    break;\n",
    "  case 'msg':\n",
    "    line(at + '<' + m.nick + '> ' + m.text, m.history ? 'history' : '');\n",
    "    break;\n",
    "  case 'presence':\n",
    "    if (m.event === 'join') members.add(m.nick); else members.delete(m.nick);\n",
    "    showMembers(m.room);\n",
    "    line(at + m.nick + (m.event === 'join' ? ' joined' : ' left'), 'info');\n",
    "    break;\n",
    "  case 'left':\n",
    "    members.clear();\n",
    "    showMembers(null);\n",
    "    inRoom(false);\n",
    "    line('you left #' + m.room, 'info');\n",
    "    break;\n",
    "  case 'error':\n",
    "    line('error ' + m.code + ': ' + m.message, 'error');\n",
    "    break;\n",
    "  }\n",
    "}\n",
    "\n",
    "function connected(then) {\n",
    "  if (ws && ws.readyState === WebSocket.OPEN) return then();\n",
    "  if (ws) return;\n",
    "  const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';\n",
    "  ws = new WebSocket(scheme + location.host + '/ws');\n",
    "  $('status').textContent = 'connecting';\n",
    "  ws.onopen = () => { $('status').textContent = 'connected'; then(); };\n",
    "  ws.onmessage = e => handle(JSON.parse(e.data));\n",
    "  ws.onclose = e => {\n",
    "    $('status').textContent = 'closed (' + e.code +\n",
    "                              (e.reason ? ': ' + e.reason : '') + ')';\n",
    "    members.clear();\n",
    "    showMembers(null);\n",
    "    inRoom(false);\n",
    "    ws = null;\n",
    "  };\n",
    "}\n",
    "\n",
    "const send = obj => ws && ws.send(JSON.stringify(obj));\n",
    "$('join').onclick = () => connected(() =>\n",
    "  send({type: 'join', room: $('room').value, nick: $('nick').value}));\n",
    "$('leave').onclick = () => send({type: 'leave'});\n",
    "$('say').onsubmit = e => {\n",
    "  e.preventDefault();\n",
    "  if ($('text').value) send({type: 'msg', text: $('text').value});\n",
    "  $('text').value = '';\n",
    "};\n",
    "</script>\n",
    "</body>\n",
    "</html>\n",
    NULL,
};
static char *page;
static size_t page_len;

static int page_build(void)
{
    size_t n = 0;
    for (size_t i = 0; page_parts[i]; i++)
        n += strlen(page_parts[i]);
    page = malloc(n);
    if (!page)
        return -ENOMEM;
    for (size_t i = 0; page_parts[i]; i++) {
        size_t l = strlen(page_parts[i]);
        memcpy(page + page_len, page_parts[i], l);
        page_len += l;
    }
    return 0;
}

static void on_page(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    /* Built once, kept for the whole run: sent by reference. */
    wisp_res_send_ref(res, 200, "text/html; charset=utf-8", page, page_len,
                      NULL, NULL);
}

static void on_stats(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    jbuf b = {0};
    jb_lit(&b, "{\"loops\":[");
    for (unsigned i = 0; i < g.nloops; i++) {
        if (i)
            jb_lit(&b, ",");
        jb_u64(&b, atomic_load_explicit(&g.ctx[i].sessions,
                                        memory_order_relaxed));
    }
    jb_lit(&b, "],\"rooms\":");
    jb_u64(&b, (uint64_t)atomic_load(&g.rooms_alive));
    jb_lit(&b, ",\"dropped\":");
    jb_u64(&b, atomic_load(&g.dropped));
    jb_lit(&b, "}\n");
    wisp_res_header(res, "Cache-Control", "no-store");
    if (b.oom)
        wisp_res_send(res, 500, "text/plain", "out of memory\n", 14);
    else
        wisp_res_send(res, 200, "application/json", b.p, b.len);
    jb_free(&b);
}

static void on_ws(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    /* A real application would check Origin and a credential here. On
     * failure wisp has already answered 400 or 426. */
    wisp_ws_upgrade(req, res, &ws_handlers, &ws_opts, NULL);
}

/* ------------------------------------------------------------ lifecycle */

static sigset_t stop_signals;

/* SIGINT and SIGTERM are blocked in every thread and taken here, so that
 * publishing stops before wisp starts closing loops (see publish). */
static void *signal_main(void *arg)
{
    wisp_server_t *srv = arg;
    int sig = 0;
    while (sigwait(&stop_signals, &sig) != 0) {
    }
    if (sig == SIGUSR1)
        return NULL; /* main: the server stopped by itself */
    stop_publishing();
    wisp_log(WISP_LOG_INFO, "chat: signal %d, stopping", sig);
    wisp_server_stop(srv);
    return NULL;
}

static int contexts_init(wisp_server_t *srv)
{
    g.nloops = wisp_server_threads(srv);
    g.ctx = calloc(g.nloops, sizeof *g.ctx);
    if (!g.ctx)
        return -ENOMEM;
    for (unsigned i = 0; i < g.nloops; i++) {
        loop_ctx *lc = &g.ctx[i];
        lc->loop = wisp_server_loop(srv, i);
        lc->index = i;
        lc->scratch = malloc(MAX_WIRE);
        lc->targets = calloc(g.nloops, sizeof *lc->targets);
        lc->replay = calloc(g.history ? g.history : 1, sizeof *lc->replay);
        if (!lc->scratch || !lc->targets || !lc->replay)
            return -ENOMEM;
    }
    return 0;
}

static void contexts_free(void)
{
    for (unsigned i = 0; g.ctx && i < g.nloops; i++) {
        loop_ctx *lc = &g.ctx[i];
        free(lc->scratch);
        free(lc->targets);
        free(lc->replay);
        jb_free(&lc->ev);
        jb_free(&lc->out);
        jb_free(&lc->aux);
    }
    free(g.ctx);
    g.ctx = NULL;
}

/* After wisp_server_wait: every session has closed (so every room has
 * been emptied and retired) and every delivery has run (see publish), so
 * nothing should be left; anything that is, is freed and reported. */
static void rooms_free_all(void)
{
    pthread_mutex_lock(&g.rooms_lock);
    for (size_t i = 0; i < g.rooms.nb; i++) {
        while (g.rooms.b[i]) {
            room *r = CONTAINER(g.rooms.b[i], room, node);
            g.rooms.b[i] = r->node.next;
            wisp_log(WISP_LOG_WARN, "chat: room \"%.*s\" still has %u "
                     "members at exit", (int)r->name_len, r->name,
                     (unsigned)r->members);
            room_unref(r);
        }
    }
    ht_free(&g.rooms);
    pthread_mutex_unlock(&g.rooms_lock);
    long left = atomic_load(&g.rooms_alive);
    if (left)
        wisp_log(WISP_LOG_WARN, "chat: %ld rooms still referenced at exit",
                 left);
}

static void usage(FILE *f)
{
    fprintf(f,
        "usage: chat [options]\n"
        "  --host ADDR             bind address (default 127.0.0.1)\n"
        "  --port N                TCP port; 0 picks one (default 8080)\n"
        "  --threads N             I/O loops; 0 = one per CPU (default 0)\n"
        "  --history N             messages replayed on join (default 50)\n"
        "  --rate R                messages per second per client (5)\n"
        "  --burst N               messages allowed at once (10)\n"
        "  --flood N               refused messages, beyond the refill,\n"
        "                          before close 1008; 0 = never (50)\n"
        "  --max-send-queue BYTES  unsent output before a client is\n"
        "                          closed with 1008 (262144)\n"
        "  --help                  this text\n");
}

int main(int argc, char **argv)
{
    /* Before any thread exists, so that every thread inherits the mask. */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGUSR1); /* internal: end the signal thread */
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);

    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 8080;
    cfg.handle_signals = 0; /* signal_main does it */
    wisp_ws_opts_init(&ws_opts);
    ws_opts.max_message = ws_opts.max_frame = MAX_WIRE;
    ws_opts.max_send_queue = 256u << 10;
    ws_opts.drop_when_full = 0; /* a slow consumer is closed with 1008 */
    enum { O_HOST = 256, O_PORT, O_THREADS, O_HISTORY, O_RATE, O_BURST,
           O_FLOOD, O_MSQ, O_HELP };
    static const struct option opts[] = {
        {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},
        {"threads", required_argument, 0, O_THREADS},
        {"history", required_argument, 0, O_HISTORY},
        {"rate", required_argument, 0, O_RATE},
        {"burst", required_argument, 0, O_BURST},
        {"flood", required_argument, 0, O_FLOOD},
        {"max-send-queue", required_argument, 0, O_MSQ},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        unsigned long long v = optarg ? strtoull(optarg, NULL, 10) : 0;
        switch (o) {
        case O_HOST: cfg.host = optarg; break;
        case O_PORT: cfg.port = (uint16_t)v; break;
        case O_THREADS: cfg.threads = (unsigned)v; break;
        case O_HISTORY: g.history = (unsigned)v; break;
        case O_RATE: g.rate = strtod(optarg, NULL); break;
        case O_BURST: g.burst = (uint32_t)v; break;
        case O_FLOOD: g.flood = (uint32_t)v; break;
        case O_MSQ: ws_opts.max_send_queue = (size_t)v; break;
        case O_HELP:
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    /* rate.h takes rates up to 1e12 per second. */
    if (g.history > MAX_HISTORY || !(g.rate > 0 && g.rate <= 1e9) ||
        g.burst < 1) {
        fprintf(stderr, "chat: --history must be at most %d, --rate above "
                "0 and at most 1e9, --burst at least 1\n", MAX_HISTORY);
        return 2;
    }
    /* Half the send queue: a replay leaves room for the live traffic
     * that follows it. 0 (no limit) replays the whole history. */
    g.replay_budget = ws_opts.max_send_queue ? ws_opts.max_send_queue / 2
                                             : SIZE_MAX;
    g.hash_seed = wall_ms() * 0x9E3779B97F4A7C15ull;

    wisp_server_t *srv = wisp_server_create(&cfg);
    if (!srv) {
        fprintf(stderr, "chat: bad configuration\n");
        return 2;
    }
    wisp_server_route(srv, WISP_METHOD_GET, "/", on_page, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/stats", on_stats, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/ws", on_ws, NULL, NULL);
    int r = wisp_server_listen(srv);
    if (r == 0)
        r = contexts_init(srv);
    if (r == 0)
        r = page_build();
    if (r == 0)
        r = wisp_server_start(srv);
    pthread_t sig_thread;
    if (r == 0 && pthread_create(&sig_thread, NULL, signal_main, srv) != 0) {
        wisp_server_stop(srv);
        wisp_server_wait(srv);
        r = -EAGAIN;
    }
    if (r < 0) {
        fprintf(stderr, "chat: %s\n", wisp_strerror(r));
        wisp_server_destroy(srv);
        contexts_free();
        free(page);
        return 1;
    }
    printf("listening on %s:%u\n", cfg.host, wisp_server_port(srv));
    fflush(stdout);

    wisp_server_wait(srv);
    /* Stopped by a signal, the thread has already returned; otherwise
     * wake it so it can be joined. */
    if (!atomic_load(&g.stopping))
        pthread_kill(sig_thread, SIGUSR1);
    pthread_join(sig_thread, NULL);
    rooms_free_all();
    wisp_server_destroy(srv);
    contexts_free();
    free(page);
    return 0;
}
