/* Internal: accepted connections — input buffer, write queue with
 * corking, timeouts, two-phase close — shared by the HTTP state machine
 * and taken-over (upgraded) connections. */
#ifndef WISP_NET_CONN_H
#define WISP_NET_CONN_H

#include <assert.h>
#include <netinet/in.h>

#include "loop/loop_int.h"
#include "wisp/http.h"

typedef struct wisp__worker wisp__worker;
typedef struct wisp__exchange wisp__exchange;

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

/* Connection lifecycle (the HTTP state machine lives in http/conn.c; an
 * upgraded connection sits in UPGRADED). */
enum wisp__cstate {
    WISP__C_IDLE = 0,  /* keep-alive, nothing buffered */
    WISP__C_HEAD,      /* part of a request head has arrived */
    WISP__C_BODY,      /* buffering a request body */
    WISP__C_PENDING,   /* the handler has not finished its response */
    WISP__C_UPGRADED,  /* taken over by wisp_res_upgrade */
    WISP__C_LINGER,    /* response sent, write side shut, draining input */
    WISP__C_CLOSED,    /* closed, waiting to be freed */
};

enum {
    WISP__CF_PAUSED = 1u << 0,     /* reading stopped by backpressure */
    WISP__CF_CLOSE_AFTER = 1u << 1,/* close once the response is out */
    WISP__CF_PEER_EOF = 1u << 2,   /* peer shut its write side */
    WISP__CF_MORE_INPUT = 1u << 3, /* edge-triggered input left unread */
    WISP__CF_RESUME = 1u << 4,     /* on the worker's resume list */
    WISP__CF_USER_PAUSE = 1u << 5, /* wisp_conn_pause */
    WISP__CF_SERVED = 1u << 6,     /* has completed at least one request */
    WISP__CF_SHUT_WR = 1u << 7,    /* write side shut down */
};

struct wisp_conn {
    wisp__io io;                 /* fd, interest, callback */
    uint8_t state;               /* enum wisp__cstate */
    uint8_t flags;               /* WISP__CF_* */
    uint8_t peer_family;
    uint8_t timeout_kind;        /* which deadline is armed */
    uint32_t in_len;
    /* What the connection is doing: an HTTP exchange, or (state
     * UPGRADED and after) the handlers of whoever took it over. Never
     * both, so they share the bytes. */
    union {
        struct {
            size_t scan;         /* parser's resumable scan state */
            wisp__exchange *ex;  /* request in flight */
        };
        struct {
            const wisp_conn_handlers_t *h;
            void *harg;
        };
    };
    wisp__worker *w;
    struct wisp_conn *next;      /* worker's list of live connections */
    struct wisp_conn *prev;
    struct wisp_conn *later;     /* resume / free lists */
    char *in;                    /* retained input, or NULL when idle */
    uint32_t in_cap;
    uint32_t in_keep;            /* pinned prefix (a pending request) */
    uint32_t idle_ms;            /* takeover idle timeout */
    uint32_t gen;                /* bumped each time the slot is reused */
    wisp__wseg *wq_head;
    wisp__wseg *wq_tail;
    uint64_t wq_bytes;
    uint64_t deadline_ms;        /* 0: none */
    wisp_timer_t timer;
    uint8_t peer_addr[16];
};

/* Keep idle connections small (DESIGN rule 5): growth is deliberate. */
static_assert(sizeof(struct wisp_conn) <= 184, "wisp_conn grew");

/* Output. Everything a connection writes while the loop handles one event
 * goes into the worker's cork buffer and leaves in one send. */
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

/* Close. Graceful: stop reading, flush, shut the write side, drain input
 * briefly (so a close with unread request bytes does not reset the
 * response away), then close. Abort: close now. Both end in the worker's
 * free list at the end of the loop iteration. */
void wisp__conn_close_graceful(wisp_conn_t *c);
void wisp__conn_abort(wisp_conn_t *c, int reason);

/* Set the one deadline of the connection (0 clears it); the timer is
 * re-armed only when the deadline moves earlier than its armed due. */
void wisp__conn_deadline(wisp_conn_t *c, uint32_t ms, uint8_t kind);

/* Update read interest from flags and state. */
void wisp__conn_update_read(wisp_conn_t *c);

/* Input buffer helpers. */
int wisp__in_reserve(wisp_conn_t *c, size_t extra);
void wisp__in_release(wisp_conn_t *c);
void wisp__in_consume(wisp_conn_t *c, size_t n);

/* Return an input buffer taken from a connection to the pool. */
void wisp__inbuf_put(wisp__worker *w, char *b, uint32_t cap);
/* Continue reading input left in the kernel (edge-triggered). */
void wisp__conn_read_more(wisp_conn_t *c);
/* Deliver bytes to a taken-over connection's on_data. */
void wisp__conn_upgraded_input(wisp_conn_t *c, const char *data, size_t n);

/* Per-loop allocation. */
wisp_conn_t *wisp__conn_new(wisp__worker *w, int fd);
void wisp__conn_accepted(wisp_conn_t *c);

enum { WISP__T_NONE = 0, WISP__T_HEAD, WISP__T_BODY, WISP__T_IDLE,
       WISP__T_WRITE, WISP__T_LINGER, WISP__T_USER };

#endif
