/* Internal: one request/response exchange and the HTTP state machine's
 * entry points. */
#ifndef WISP_HTTP_INT_H
#define WISP_HTTP_INT_H

#include "http/chunked.h"
#include "http/parse.h"
#include "http/router.h"
#include "server_int.h"

struct wisp_req {
    wisp__req_head rh;
    wisp__match match;
    const char *body;
    uint64_t body_len;
    wisp_body_data_cb on_data;
    wisp_body_end_cb on_end;
    void *body_arg;
    uint64_t body_seen;       /* streaming: bytes delivered */
};

enum {
    WISP__RS_HEAD_SENT = 1u << 0,
    WISP__RS_ENDED = 1u << 1,
    WISP__RS_CHUNKED = 1u << 2,   /* chunked framing on the wire */
    WISP__RS_HAS_CL = 1u << 3,    /* Content-Length declared */
    WISP__RS_HEAD_REQ = 1u << 4,  /* HEAD: no body on the wire */
    WISP__RS_UNTIL_CLOSE = 1u << 5, /* 1.0 streamed: close delimits */
    WISP__RS_ABORTED = 1u << 6,   /* client went away */
    WISP__RS_NOBODY = 1u << 7,    /* 1xx/204/304: no body allowed */
};

struct wisp_res {
    int status;
    uint32_t flags;
    uint64_t cl_left;         /* declared length still to send */
    uint64_t body_bytes;      /* for the access log */
    char *hdrs;               /* added fields, "Name: value\r\n"... */
    uint32_t hdrs_len;
    uint32_t hdrs_cap;
    wisp_res_cb on_abort;
    void *abort_arg;
    wisp_res_cb on_drain;
    void *drain_arg;
    char hdrs_inline[512];
};

/* A request in flight: owned by its connection, recycled through the
 * worker's free list. `conn` is NULL after the client went away. */
struct wisp__exchange {
    struct wisp_req req;      /* first: wisp_req_t* == exchange* */
    struct wisp_res res;
    wisp_conn_t *conn;
    wisp__worker *w;
    const wisp__route *route;
    uint8_t keep_alive;
    uint8_t state;            /* WISP__X_* */
    uint8_t in_handler;
    uint8_t body_state;       /* WISP__B_* */
    uint8_t called;           /* the handler has been called */
    wisp__chunked ch;
    uint64_t body_left;       /* CL body bytes still to come */
    char *own;                /* request bytes copied for an orphan */
    wisp__header headers[];   /* max_headers entries */
};

enum { WISP__X_ACTIVE = 0, WISP__X_DONE, WISP__X_ORPHAN };
enum { WISP__B_NONE = 0, WISP__B_CL, WISP__B_CHUNKED, WISP__B_DONE };

static inline wisp__exchange *wisp__ex_of_res(const wisp_res_t *res)
{
    return (wisp__exchange *)((char *)res - offsetof(wisp__exchange, res));
}
static inline wisp__exchange *wisp__ex_of_req(const wisp_req_t *req)
{
    return (wisp__exchange *)req;
}

/* http/conn.c */
void wisp__http_on_recv(wisp_conn_t *c, const char *data, size_t len);
void wisp__http_orphan(wisp_conn_t *c, int reason);
void wisp__ex_rebase(wisp__exchange *ex, const char *old, size_t old_cap,
                     char *nb);
void wisp__http_response_done(wisp__exchange *ex);
void wisp__http_conn_closed(wisp_conn_t *c, int reason);
void wisp__http_resume(wisp_conn_t *c);
void wisp__http_drained(wisp_conn_t *c);
void wisp__http_timeout(wisp_conn_t *c, uint8_t kind);
void wisp__http_send_error(wisp_conn_t *c, int status, int keep_open);
void wisp__ex_free(wisp__worker *w, wisp__exchange *ex);
void wisp__http_upgraded(wisp_conn_t *c, wisp__exchange *ex,
                         const wisp_conn_handlers_t *h, void *arg);

/* http/response.c */
int wisp__status_code_for(int err);
const char *wisp__reason(int status);
int wisp__res_head(wisp__exchange *ex, int64_t content_length,
                   const char *content_type);

/* http/access_log.c */
void wisp__alog_request(wisp__exchange *ex);

/* http/static.c */
const char *wisp__mime_type(const char *path, size_t len);

#endif
