/* chat — the rooms shared by every loop (see rooms.h and docs/guide.md,
 * "Chat example").
 *
 *  - The join race: numbering an event, adding it to the history and
 *    taking a joiner's snapshot all happen under the room's mutex, so a
 *    joiner gets every event up to its join number in the snapshot and
 *    every later one live, and skips live events at or below it.
 *  - Each loop posts its broadcasts in order and inboxes are FIFO per
 *    producer, so one sender's messages reach everyone in the order sent.
 *  - Events are written with wisp's JSON writer into per-loop writers
 *    whose buffers are kept from one event to the next, so the writing
 *    done under a room's lock (a number, the member names) does not
 *    allocate once the buffers have grown to their working size. */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "rooms.h"

#define CONTAINER(p, type, field) \
    ((type *)(void *)((char *)(p) - offsetof(type, field)))

static struct {
    pthread_mutex_t lock;
    htable rooms;
    _Atomic long alive;
    _Atomic unsigned long long dropped; /* deliveries lost: an inbox
                                           full, or out of memory */
    /* The stop handshake (see publish). */
    atomic_int stopping;
    atomic_uint publishing;
} reg = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
};

/* ------------------------------------------------------------ hash table */

static uint64_t hash_key(const char *p, size_t n)
{
    /* FNV-1a with a per-run seed, so nicknames chosen to collide in one
     * run do not collide in the next. */
    uint64_t h = 0xcbf29ce484222325ull ^ chat.hash_seed;
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

/* ------------------------------------------------------------ events */

/* The start of an event object, up to (not including) its "seq": all that
 * can be written before the room's lock is taken. */
static void event_head(wisp_json_writer_t *w, const char *type,
                       const char *name, size_t name_len)
{
    wisp_json_writer_reset(w);
    wisp_json_obj_begin(w);
    wisp_json_kv_str(w, "type", type);
    wisp_json_key(w, "room");
    wisp_json_str_val_n(w, name, name_len);
}

static void presence_head(wisp_json_writer_t *w, const char *name,
                          size_t name_len, const char *event,
                          const char *nick, size_t nl)
{
    event_head(w, "presence", name, name_len);
    wisp_json_kv_str(w, "event", event);
    wisp_json_key(w, "nick");
    wisp_json_str_val_n(w, nick, nl);
    wisp_json_key(w, "ts");
    wisp_json_uint_val(w, chat_wall_ms());
}

/* Under the room's lock: end the event with its number (and the history
 * mark) and make it a frame; NULL when memory ran out. */
static wisp_shared_t *event_frame(wisp_json_writer_t *w, uint64_t seq,
                                  int history)
{
    wisp_json_key(w, "seq");
    wisp_json_uint_val(w, seq);
    if (history)
        wisp_json_kv_bool(w, "history", 1);
    wisp_json_obj_end(w);
    if (wisp_json_finish(w, NULL, NULL) < 0)
        return NULL;
    return wisp_ws_frame_shared(0, w->buf, w->len);
}

/* ------------------------------------------------------------ rooms */

static void room_ref(room *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
}

static void room_free(room *r)
{
    for (unsigned i = 0; i < r->hist_len; i++)
        wisp_shared_unref(r->hist[(r->hist_head + i) % chat.history]);
    free(r->hist);
    ht_free(&r->nicks);
    free(r->loop_members);
    free(r->local);
    pthread_mutex_destroy(&r->lock);
    free(r);
    atomic_fetch_sub(&reg.alive, 1);
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
    r->loop_members = calloc(chat.nloops, sizeof *r->loop_members);
    r->local = calloc(chat.nloops, sizeof *r->local);
    r->hist = chat.history ? calloc(chat.history, sizeof *r->hist) : NULL;
    if (!r->loop_members || !r->local || (chat.history && !r->hist)) {
        free(r->loop_members);
        free(r->local);
        free(r->hist);
        free(r);
        return NULL;
    }
    pthread_mutex_init(&r->lock, NULL);
    atomic_init(&r->refs, 1); /* the registry's */
    memcpy(r->name, name, len);
    r->name_len = len;
    r->node.key = r->name;
    r->node.klen = len;
    r->node.hash = h;
    atomic_fetch_add(&reg.alive, 1);
    return r;
}

/* The room called `name`, created if need be, locked, with a reference
 * for the caller; NULL when out of memory. */
static room *room_get_locked(const char *name, size_t len)
{
    uint64_t h = hash_key(name, len);
    for (;;) {
        pthread_mutex_lock(&reg.lock);
        hnode *e = ht_find(&reg.rooms, name, len, h);
        room *r = e ? CONTAINER(e, room, node) : NULL;
        if (!r) {
            r = room_create(name, len, h);
            if (r && ht_insert(&reg.rooms, &r->node) < 0) {
                room_free(r);
                r = NULL;
            }
            if (!r) {
                pthread_mutex_unlock(&reg.lock);
                return NULL;
            }
        }
        room_ref(r);
        pthread_mutex_unlock(&reg.lock);
        pthread_mutex_lock(&r->lock);
        if (!r->dead)
            return r;
        /* Emptied and retired between the lookup and the lock: the next
         * lookup creates a fresh room. */
        pthread_mutex_unlock(&r->lock);
        room_unref(r);
    }
}

/* Take an empty room out of the registry, unless someone joined it
 * meanwhile. The room itself goes when its last reference does. Lock
 * order: the registry's, then the room's. */
static void room_retire(room *r)
{
    int gone = 0;
    pthread_mutex_lock(&reg.lock);
    pthread_mutex_lock(&r->lock);
    if (!r->dead && r->members == 0) {
        r->dead = 1;
        ht_remove(&reg.rooms, &r->node);
        gone = 1;
    }
    pthread_mutex_unlock(&r->lock);
    pthread_mutex_unlock(&reg.lock);
    if (gone)
        room_unref(r);
}

/* Under r->lock: the loops that have members of `r`, into lc->targets. */
static size_t targets_locked(const room *r, loop_ctx *lc)
{
    size_t n = 0;
    for (unsigned i = 0; i < chat.nloops; i++)
        if (r->loop_members[i])
            lc->targets[n++] = chat.ctx[i].loop;
    return n;
}

/* Under r->lock: append a message frame to the history; returns the frame
 * that fell out (to be released after the lock), or NULL. */
static wisp_shared_t *hist_push_locked(room *r, wisp_shared_t *f)
{
    if (r->hist_len < chat.history) {
        r->hist[(r->hist_head + r->hist_len++) % chat.history] = f;
        return NULL;
    }
    wisp_shared_t *old = r->hist[r->hist_head];
    r->hist[r->hist_head] = f;
    r->hist_head = (r->hist_head + 1) % chat.history;
    return old;
}

/* Under r->lock: references to the newest history frames, oldest first,
 * into lc->replay; as many as fit in the replay budget (so a join cannot
 * by itself push a client over its send queue limit). */
static size_t replay_locked(const room *r, loop_ctx *lc)
{
    size_t k = 0, bytes = 0;
    while (k < r->hist_len) {
        size_t at = (r->hist_head + r->hist_len - 1 - k) % chat.history;
        bytes += wisp_shared_len(r->hist[at]);
        if (bytes > chat.replay_budget)
            break;
        k++;
    }
    for (size_t i = 0; i < k; i++) {
        size_t at = (r->hist_head + r->hist_len - k + i) % chat.history;
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

/* What a broadcast carries to each loop: the frame and whom it is for.
 * It travels as the wisp_shared_t given to wisp_broadcast, so wisp's
 * reference count frees it after the last loop is done with it; the frame
 * has its own count because write queues keep it longer. */
typedef struct envelope {
    room *room;              /* a reference */
    uint64_t seq;
    wisp_shared_t *frame;    /* a reference */
} envelope;

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
    loop_ctx *lc = chat_ctx(loop);
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
 * while a publication is under way (rooms_stop_publishing, called from
 * the server's stop hook before any loop hears of the stop, waits for
 * the counter); everything posted before reaches its loops ahead of
 * their stop task, and they run it before they exit. */
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
        atomic_fetch_add(&reg.dropped, n);
        return;
    }
    room_ref(r);
    wisp_shared_ref(f);
    ssize_t queued = (ssize_t)n;
    atomic_fetch_add(&reg.publishing, 1);
    if (!atomic_load(&reg.stopping))
        queued = wisp_broadcast(lc->targets, n, msg, deliver, NULL);
    atomic_fetch_sub(&reg.publishing, 1);
    if (queued < (ssize_t)n) {
        /* An inbox was full (or memory ran out): that loop's members miss
         * this event and will see a gap in `seq`. */
        size_t lost = n - (size_t)(queued < 0 ? 0 : queued);
        unsigned long long d = atomic_fetch_add(&reg.dropped, lost);
        if (d == 0 || d % 1000 == 0)
            wisp_log(WISP_LOG_WARN, "chat: room event not delivered to "
                     "every loop (%llu so far)", d + 1);
    }
    wisp_shared_unref(msg);
}

void rooms_stop_publishing(void)
{
    atomic_store(&reg.stopping, 1);
    /* Sequentially consistent on both sides: a publisher either sees the
     * flag, or is seen here and waited for. */
    while (atomic_load(&reg.publishing))
        sched_yield();
}

int rooms_stopping(void)
{
    return atomic_load_explicit(&reg.stopping, memory_order_relaxed);
}

/* ------------------------------------------------------------ join, leave */

/* The start of the `joined` reply, before the room's lock. */
static void joined_head(wisp_json_writer_t *w, const char *name,
                        size_t name_len, const char *nick, size_t nick_len)
{
    wisp_json_writer_reset(w);
    wisp_json_obj_begin(w);
    wisp_json_kv_str(w, "type", "joined");
    wisp_json_key(w, "room");
    wisp_json_str_val_n(w, name, name_len);
    wisp_json_key(w, "nick");
    wisp_json_str_val_n(w, nick, nick_len);
    wisp_json_key(w, "members");
    wisp_json_arr_begin(w);
}

int room_join(session *s, const char *name, size_t name_len,
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
    joined_head(&lc->out, name, name_len, nick, nick_len);
    presence_head(&lc->ev, name, name_len, "join", nick, nick_len);
    room *r = lc->out.err || lc->ev.err ? NULL
                                        : room_get_locked(name, name_len);
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
    wisp_json_writer_t *out = &lc->out;
    for (size_t i = 0; i < r->nicks.nb && listed < MAX_LISTED; i++)
        for (hnode *e = r->nicks.b[i]; e && listed < MAX_LISTED; e = e->next) {
            if (e == skip)
                continue;
            wisp_json_str_val_n(out, e->key, e->klen);
            listed++;
        }
    j->nreplay = replay_locked(r, lc);
    wisp_json_arr_end(out);
    wisp_json_key(out, "count");
    wisp_json_uint_val(out, r->members - (skip != NULL));
    wisp_json_key(out, "seq");
    wisp_json_uint_val(out, m->join_seq);
    wisp_json_key(out, "history");
    wisp_json_uint_val(out, j->nreplay);
    wisp_json_obj_end(out);
    j->presence = NULL;
    j->ntargets = 0;
    if (r->members > 1) {
        j->presence = event_frame(&lc->ev, m->join_seq, 0);
        j->ntargets = targets_locked(r, lc);
    }
    pthread_mutex_unlock(&r->lock);
    j->m = m;
    return 0;
}

void room_enter(session *s, joining *j)
{
    local_link(j->m);
    if (j->presence) {
        publish(s->lc, j->m->room, j->m->join_seq, j->presence, j->ntargets);
        wisp_shared_unref(j->presence);
        j->presence = NULL;
    }
}

void room_leave(member *m)
{
    room *r = m->room;
    loop_ctx *lc = m->s->lc;
    local_unlink(m);
    presence_head(&lc->ev, r->name, r->name_len, "leave", m->nick,
                  m->nick_len);

    wisp_shared_t *f = NULL;
    size_t n = 0;
    uint64_t seq = 0;
    pthread_mutex_lock(&r->lock);
    ht_remove(&r->nicks, &m->nick_node);
    r->members--;
    r->loop_members[lc->index]--;
    if (r->members && !lc->ev.err) {
        seq = ++r->seq;
        f = event_frame(&lc->ev, seq, 0);
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

/* ------------------------------------------------------------ messages */

static void msg_head(wisp_json_writer_t *w, const member *m,
                     const char *text, size_t len, uint64_t ts)
{
    event_head(w, "msg", m->room->name, m->room->name_len);
    wisp_json_key(w, "nick");
    wisp_json_str_val_n(w, m->nick, m->nick_len);
    wisp_json_key(w, "text");
    wisp_json_str_val_n(w, text, len);
    wisp_json_key(w, "ts");
    wisp_json_uint_val(w, ts);
}

int room_say(member *m, const char *text, size_t len)
{
    room *r = m->room;
    loop_ctx *lc = m->s->lc;
    uint64_t ts = chat_wall_ms();

    /* The live form, and the form kept for replay ("history":true). */
    msg_head(&lc->ev, m, text, len, ts);
    if (chat.history)
        msg_head(&lc->hist, m, text, len, ts);
    if (lc->ev.err || lc->hist.err)
        return -ENOMEM;

    /* Number, encode, remember, pick the loops: one critical section, so
     * that a joiner's snapshot holds exactly the events numbered before
     * it. */
    pthread_mutex_lock(&r->lock);
    uint64_t seq = ++r->seq;
    wisp_shared_t *live = event_frame(&lc->ev, seq, 0);
    wisp_shared_t *dropped = NULL;
    if (chat.history) {
        wisp_shared_t *h = event_frame(&lc->hist, seq, 1);
        if (h)
            dropped = hist_push_locked(r, h);
    }
    size_t n = targets_locked(r, lc);
    pthread_mutex_unlock(&r->lock);

    wisp_shared_unref(dropped);
    if (!live)
        return -ENOMEM;
    publish(lc, r, seq, live, n);
    wisp_shared_unref(live);
    return 0;
}

/* ------------------------------------------------------------ the end */

void rooms_free_all(void)
{
    pthread_mutex_lock(&reg.lock);
    for (size_t i = 0; i < reg.rooms.nb; i++) {
        while (reg.rooms.b[i]) {
            room *r = CONTAINER(reg.rooms.b[i], room, node);
            reg.rooms.b[i] = r->node.next;
            wisp_log(WISP_LOG_WARN, "chat: room \"%.*s\" still has %u "
                     "members at exit", (int)r->name_len, r->name,
                     (unsigned)r->members);
            room_unref(r);
        }
    }
    ht_free(&reg.rooms);
    pthread_mutex_unlock(&reg.lock);
    long left = atomic_load(&reg.alive);
    if (left)
        wisp_log(WISP_LOG_WARN, "chat: %ld rooms still referenced at exit",
                 left);
}

long rooms_alive(void)
{
    return atomic_load(&reg.alive);
}

unsigned long long rooms_dropped(void)
{
    return atomic_load(&reg.dropped);
}
