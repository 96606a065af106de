/* xiaozhi-server — MCP over the device's WebSocket (PROTOCOL.md §5).
 *
 * The server is the MCP client, the device the MCP server. After the
 * hello of a device announcing features.mcp: initialize (id 1, with the
 * vision URL and a per-device vision token), then tools/list (id 2)
 * following nextCursor page by page until none comes back, registering
 * the tools of every page. Tool calls use integer ids from 100 upward,
 * unique within the connection, are matched by id, time out after
 * mcp.call_timeout_ms (the session stays open), and accept error
 * objects that carry only `message`. Device notifications (no id) are
 * logged and never answered. */
#ifndef XZ_MCP_H
#define XZ_MCP_H

#include <stdint.h>

#include <wisp.h>

#define XZ_MCP_MAX_PENDING 16
#define XZ_MCP_MAX_TOOLS 128
#define XZ_MCP_MAX_PAGES 16

struct xz_dev;

typedef struct xz_mcp_pending {
    uint32_t id;           /* 0: free slot */
    wisp_future_t *f;
} xz_mcp_pending_t;

typedef struct xz_mcp {
    int initialized;       /* initialize answered */
    int listing;           /* a tools/list page is outstanding */
    int pages;
    uint32_t next_id;      /* next tools/call id, from 100 */
    uint32_t ntools;
    char *tools[XZ_MCP_MAX_TOOLS];
    xz_mcp_pending_t pending[XZ_MCP_MAX_PENDING];
} xz_mcp_t;

/* The result of a tools/call: the `result` object as JSON text, or the
 * error's `message` when is_error; `content_text` is the text of the
 * result's first text content item (NULL when it has none). */
typedef struct xz_mcp_result {
    int is_error;
    char *text;
    char *content_text;
} xz_mcp_result_t;
void xz_mcp_result_free(void *r);

void xz_mcp_init(xz_mcp_t *m);
/* Fail every pending call with -ECANCELED and free the tool names. */
void xz_mcp_close(xz_mcp_t *m);

/* Send initialize (after the hello reply). */
void xz_mcp_start(struct xz_dev *d);

/* A device `mcp` message; `payload` is the token of its payload. */
void xz_mcp_on_message(struct xz_dev *d, const wisp_json_doc_t *doc,
                       int payload);

/* Call the device's tool `tool` with `args_json` (a JSON object, or NULL
 * for {}). Returns a future of the session's loop (one reference, the
 * caller's) resolving with an xz_mcp_result_t, or failing with
 * -ETIMEDOUT (no answer in time), -ECANCELED (session closed),
 * -EBUSY (XZ_MCP_MAX_PENDING calls already out), -ENOTCONN (the device
 * did not announce MCP), or an error from sending. NULL on ENOMEM.
 * Thread: the session's loop. */
wisp_future_t *xz_mcp_call(struct xz_dev *d, const char *tool,
                           const char *args_json);

/* Nonzero when the device listed `tool`. */
int xz_mcp_has_tool(const xz_mcp_t *m, const char *tool);

#endif
