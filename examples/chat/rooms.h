/* chat — the rooms, shared by every I/O loop (rooms.c).
 *
 * A room's event counter, nickname set, member counts and history ring
 * sit behind the room's mutex; each loop keeps its own list of the room's
 * members that live on it and is the only thread to touch that list. An
 * event is encoded once as a WebSocket frame and posted by reference to
 * the loops that have members in the room (wisp_broadcast); each loop
 * hands the same frame to its members (wisp_ws_send_shared). */
#ifndef CHAT_ROOMS_H
#define CHAT_ROOMS_H

#include <pthread.h>

#include "chat.h"

/* An intrusive hash table node: rooms by name, members by nickname. */
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

struct room {
    hnode node;              /* in the registry, under its lock */
    _Atomic unsigned refs;   /* registry, each member, each event in flight */
    pthread_mutex_t lock;    /* guards the fields down to `local` */
    int dead;                /* out of the registry: joiners look again */
    uint64_t seq;            /* number of the room's last event */
    uint32_t members;
    uint32_t *loop_members;  /* [loop]: members on it, to pick targets */
    htable nicks;            /* member.nick_node */
    wisp_shared_t **hist;    /* ring of the last chat.history frames */
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

enum { E_TAKEN = -10000 }; /* the nickname is taken in that room */

/* A join that succeeded, before it is announced. */
typedef struct joining {
    member *m;
    wisp_shared_t *presence; /* the join event for the others, or NULL */
    size_t ntargets;
    size_t nreplay;          /* history frames in lc->replay */
} joining;

/* Add session `s` to room `name` as `nick` (both checked by the caller).
 * On success the new member is not yet linked on its loop; lc->out holds
 * the `joined` reply (finish it: it may have failed for lack of memory),
 * lc->replay the history to send after it. `old` is the session's current
 * membership: when it is in the same room (a change of nickname) it is
 * left out of the member list, as it is about to leave. Returns 0,
 * E_TAKEN or -ENOMEM. On the session's loop. */
int room_join(session *s, const char *name, size_t name_len,
              const char *nick, size_t nick_len, const member *old,
              joining *j);

/* Link a joined member on its loop and tell the others (room_join's
 * presence event). */
void room_enter(session *s, joining *j);

/* Take member `m` out of its room (on m's loop), tell the others, free
 * `m`. Uses lc->ev and lc->targets only. */
void room_leave(member *m);

/* Say `text` (checked by the caller) in m's room: number it, keep it in
 * the history, deliver it to every member, the sender included. Returns
 * 0 or -ENOMEM. */
int room_say(member *m, const char *text, size_t len);

/* Publishing stops here for good (the stop hook, before any loop learns
 * of the stop): nothing more is posted to the loops, and this returns
 * once every publication under way has been posted. */
void rooms_stop_publishing(void);
int rooms_stopping(void);

/* After the server has stopped: free what is left, and report it. */
void rooms_free_all(void);

/* For /stats. */
long rooms_alive(void);
unsigned long long rooms_dropped(void);

#endif
