/* Internal: the transport. Listeners and accept, connections (slab
 * allocated per loop), input buffers, the cork and write queues,
 * backpressure, one deadline per connection, two-phase close. It knows
 * no protocol: a protocol plugs in with a handler table
 * (wisp_conn_handlers_t, public) installed at accept by the listener and
 * swapped by an upgrade.
 *
 * Protocols built into the library (HTTP) use an extended table
 * (wisp__proto, flag WISP__CF_PROTO_INT): they manage the connection's
 * input buffer themselves (on_data's return is ignored: every byte is
 * theirs), are told of a close synchronously (they are written for it),
 * get on_drain when a queue or a backpressure pause ends (and after any
 * write that empties the output when they set want_drain), and can ask
 * to be resumed at the end of the iteration (on_resume). Public tables
 * get the buffering of unconsumed bytes and the guarantee that no
 * callback runs inside a wisp_conn_* call. */
#ifndef WISP_NET_CONN_H
#define WISP_NET_CONN_H

#include <assert.h>
#include <netinet/in.h>

#include "loop/loop_int.h"
#include "net/stats.h"
#include "wisp/conn.h"

typedef struct wisp__net wisp__net;

/* One queued piece of output. */
typedef struct wisp__wseg {
    struct wisp__wseg *next;
    uint8_t kind;        /* WISP__SEG_* */
    int fd;              /* FILE: the file, closed when done */
    const char *ptr;     /* MEM/REF: next byte to send */
    uint64_t len;        /* bytes left */
    uint64_t file_off;   /* FILE: next offset */
    wisp_free_cb done;   /* REF: called once when sent or dropped */
    void *arg;
    char data[];         /* MEM: owned bytes */
} wisp__wseg;

enum { WISP__SEG_MEM = 0, WISP__SEG_REF, WISP__SEG_FILE };

/* The transport's states: what a byte stream needs, nothing more. */
enum wisp__cstate {
    WISP__C_OPEN = 0,  /* reading and writing, under its protocol */
    WISP__C_LINGER,    /* closing: flushing, then write side shut and
                          input drained until the peer closes */
    WISP__C_CLOSED,    /* closed, waiting to be freed */
};

enum {
    WISP__CF_PAUSED = 1u << 0,     /* reading stopped by backpressure */
    WISP__CF_CLOSE_AFTER = 1u << 1,/* shut down once the queue is out */
    WISP__CF_PEER_EOF = 1u << 2,   /* peer shut its write side */
    WISP__CF_MORE_INPUT = 1u << 3, /* edge-triggered input left unread */
    WISP__CF_RESUME = 1u << 4,     /* on the resume list */
    WISP__CF_USER_PAUSE = 1u << 5, /* wisp_conn_pause / protocol pause */
    WISP__CF_PROTO_INT = 1u << 6,  /* h is a wisp__proto (built in) */
    WISP__CF_NOTIFY = 1u << 7,     /* closed; on_close not run yet */
};

/* Which deadline is armed: the transport's own, or the protocol's. */
enum { WISP__T_NONE = 0, WISP__T_WRITE, WISP__T_LINGER, WISP__T_PROTO };

struct wisp_conn {
    wisp__io io;                 /* fd, interest, callback */
    uint8_t state;               /* enum wisp__cstate */
    uint8_t flags;               /* WISP__CF_* */
    uint8_t peer_family;
    uint8_t timeout_kind : 2;    /* WISP__T_* */
    uint8_t want_drain : 1;      /* built-in protocol: call on_drain after
                                    the next write that empties the
                                    output, even a direct one */
    uint8_t pstate : 2;          /* the protocol's state (see pword) */
    uint8_t pflags : 3;          /* the protocol's flags (see pword) */
    uint32_t in_len;
    const wisp_conn_handlers_t *h; /* the protocol */
    void *harg;                  /* its argument (HTTP: the exchange) */
    wisp__net *net;
    struct wisp_conn *next;      /* the loop's list of live connections */
    struct wisp_conn *prev;
    struct wisp_conn *later;     /* resume / close / free lists */
    char *in;                    /* retained input, or NULL when idle */
    uint32_t in_cap;
    uint32_t in_keep;            /* pinned prefix (the protocol's) */
    union {
        uint32_t idle_ms;        /* open: the protocol's idle timeout */
        int32_t close_reason;    /* closed: for the deferred on_close */
    };
    uint32_t gen;                /* bumped each time the slot is reused */
    /* The protocol's own word, with pstate and pflags above; the
     * transport never reads them (HTTP: its state, the deadline it
     * armed, its flags, the parser's resumable scan state). Reset when
     * a table is installed. */
    uint64_t pword;
    wisp__wseg *wq_head;
    wisp__wseg *wq_tail;
    uint64_t wq_bytes;
    uint64_t deadline_ms;        /* 0: none */
    wisp_timer_t timer;
    uint8_t peer_addr[16];
};

/* Keep idle connections small (DESIGN rule 5): growth is deliberate.
 * 192 bytes (three cache lines): the protocol's table and its own word
 * sit beside the transport's instead of sharing a union with them. */
static_assert(sizeof(struct wisp_conn) <= 192, "wisp_conn grew");

/* A built-in protocol's table: the public callbacks first. */
typedef struct wisp__proto {
    wisp_conn_handlers_t h;
    /* Resume after wisp__conn_resume_later, at the end of the
     * iteration (HTTP: pipelined requests after an asynchronous
     * response). */
    void (*on_resume)(wisp_conn_t *c, void *arg);
} wisp__proto;

#define WISP__CORK_SIZE (64 * 1024)
#define WISP__INBUF_SIZE (16 * 1024)

typedef struct wisp__net_conf {
    uint32_t write_timeout_ms;   /* no write progress: abort */
    uint64_t write_high_water;   /* queued bytes that pause reading */
    uint32_t max_connections;    /* per loop; more are closed at accept */
} wisp__net_conf;

/* The transport's per-loop state. */
struct wisp__net {
    wisp_loop_t *loop;
    wisp__loop_stats stats;      /* net/stats.h: counters read by metrics */
    wisp__net_conf conf;
    int stopping;                /* the server is stopping */

    /* Connections: live list, count, free lists. */
    wisp_conn_t *conns;
    uint32_t nconns;
    wisp_conn_t *conn_free;
    void **slabs;
    uint32_t nslabs;
    uint32_t slab_cap;
    wisp_conn_t *resume_list;
    wisp_conn_t *close_list;

    /* Cork: one output buffer shared by this loop's connections. */
    char *cork;
    size_t cork_len;
    wisp_conn_t *cork_owner;

    /* Pool of input buffers (WISP__INBUF_SIZE). */
    void *inbuf_free;
    uint32_t inbuf_free_len;

    /* Called when the last connection is gone while stopping. */
    void (*on_empty)(void *arg);
    void *empty_arg;
};

/* Set up `n` on `loop` (the cork is allocated, the end-of-iteration hook
 * installed). Returns 0 or -ENOMEM. */
int wisp__net_init(wisp__net *n, wisp_loop_t *loop, const wisp__net_conf *cf);
/* Abort every connection, run their on_close, free everything. The loop
 * must not be running (or this is its own thread). */
void wisp__net_fini(wisp__net *n);
/* Graceful stop: every open connection's on_stop runs (without one, it
 * is aborted with WISP_ECLOSED). */
void wisp__net_stop(wisp__net *n);
/* Force: abort every connection with WISP_ECLOSED. */
void wisp__net_force(wisp__net *n);

/* A listener: accepts connections and installs its protocol on them. */
typedef struct wisp__listener {
    wisp__io io;                 /* first */
    wisp__net *net;
    const wisp_conn_handlers_t *h;
    void *harg;
    uint8_t proto_int;           /* h is a wisp__proto */
    uint8_t nodelay;             /* TCP_NODELAY on accepted sockets */
    uint32_t first_timeout_ms;   /* a new connection must speak by then */
    wisp_timer_t pause_timer;    /* out of descriptors: retry later */
    /* PROXY protocol settings (net/proxy.h); NULL: off, nothing paid. */
    const struct wisp__proxy_conf *proxy;
} wisp__listener;

/* Take over a listening socket (fd -1: none). */
void wisp__listener_init(wisp__listener *l, wisp__net *n, int fd,
                         const wisp_conn_handlers_t *h, void *harg,
                         int proto_int, uint32_t first_timeout_ms);
int wisp__listener_start(wisp__listener *l);
/* Accept everything queued (closing a SO_REUSEPORT listener resets what
 * is still queued on it), then close the listener. */
void wisp__listener_drain_close(wisp__listener *l);
/* Close without draining (teardown). */
void wisp__listener_close(wisp__listener *l);

/* A new connection on an open, non-blocking socket `fd`, speaking `h`;
 * NULL (fd untouched) when out of memory. Then wisp__conn_start. */
wisp_conn_t *wisp__conn_new(wisp__net *n, int fd);
/* Register with the backend and arm the first deadline (0: none).
 * Returns 0, or a negative errno (the connection is then aborted). */
int wisp__conn_start(wisp_conn_t *c, const wisp_conn_handlers_t *h,
                     void *harg, int proto_int, uint32_t first_timeout_ms);
/* Swap the protocol (an upgrade). The protocol's words are reset; the
 * pause of the old protocol and its deadline are cleared. */
void wisp__conn_set_proto(wisp_conn_t *c, const wisp_conn_handlers_t *h,
                          void *harg, int proto_int);

/* Output. Everything a connection writes while the loop handles one event
 * goes into the loop's cork buffer and leaves in one send. */
int wisp__out(wisp_conn_t *c, const void *data, size_t len);
int wisp__out_ref(wisp_conn_t *c, const void *data, size_t len,
                  wisp_free_cb done, void *arg);
int wisp__out_file(wisp_conn_t *c, int fd, uint64_t off, uint64_t len);
/* Reserve `len` bytes of cork for `c` to fill in place; NULL when `len`
 * exceeds the cork (then use wisp__out). */
char *wisp__out_reserve(wisp_conn_t *c, size_t len);
void wisp__out_commit(wisp_conn_t *c, size_t len);
void wisp__flush(wisp_conn_t *c);
/* Bytes not yet sent, cork included. */
uint64_t wisp__pending_out(const wisp_conn_t *c);
/* Backpressure: when more than the high-water mark is pending, pause
 * reading (until the queue is written) and return 1; else 0 (a pause
 * already on stays on: the caller looks at WISP__CF_PAUSED too). */
int wisp__conn_backpressure(wisp_conn_t *c);

/* Close. Graceful: stop reading, flush, shut the write side, drain input
 * briefly (so a close with unread request bytes does not reset the
 * response away), then close. Abort: close now. Both end in the loop's
 * free list at the end of the iteration; on_close runs in the call for a
 * built-in protocol, at the end of the iteration for a public one. */
void wisp__conn_close_graceful(wisp_conn_t *c);
void wisp__conn_abort(wisp_conn_t *c, int reason);

/* Set the one deadline of the connection (0 clears it); the timer is
 * re-armed only when the deadline moves earlier than its armed due. */
void wisp__conn_deadline(wisp_conn_t *c, uint32_t ms, uint8_t kind);

/* The protocol's pause of reading (the same flag as wisp_conn_pause). */
void wisp__conn_pause_read(wisp_conn_t *c, int paused);
/* Ask for the protocol's on_resume at the end of this iteration. */
void wisp__conn_resume_later(wisp_conn_t *c);

/* Input buffer helpers. wisp__in_reserve: room for `extra` more bytes
 * after in_len. When the buffer moves and `moved` is not NULL, the old
 * buffer is not released: *moved is set to it (release it with
 * wisp__inbuf_put after moving pointers into it); else *moved is NULL. */
int wisp__in_reserve(wisp_conn_t *c, size_t extra, char **moved,
                     uint32_t *moved_cap);
void wisp__in_release(wisp_conn_t *c);
void wisp__in_consume(wisp_conn_t *c, size_t n);
void wisp__inbuf_put(wisp__net *n, char *b, uint32_t cap);
/* Deliver bytes to a public protocol's on_data, keeping what it leaves. */
void wisp__conn_deliver(wisp_conn_t *c, const char *data, size_t n);

#endif
