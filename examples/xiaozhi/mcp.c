/* xiaozhi-server — MCP client over the device session. See mcp.h. */
#include "mcp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "auth.h"
#include "device.h"

#define ID_INITIALIZE 1
#define ID_TOOLS_LIST 2
#define ID_FIRST_CALL 100
/* A vision token lives one hour (the reference's lifetime, §5.7). */
#define VISION_TOKEN_S 3600

void xz_mcp_result_free(void *v)
{
    xz_mcp_result_t *r = v;
    if (r) {
        free(r->text);
        free(r->content_text);
        free(r);
    }
}

void xz_mcp_init(xz_mcp_t *m)
{
    memset(m, 0, sizeof *m);
    m->next_id = ID_FIRST_CALL;
}

void xz_mcp_close(xz_mcp_t *m)
{
    for (int i = 0; i < XZ_MCP_MAX_PENDING; i++)
        if (m->pending[i].id) {
            wisp_future_fail(m->pending[i].f, -ECANCELED);
            wisp_future_unref(m->pending[i].f);
            m->pending[i].id = 0;
            m->pending[i].f = NULL;
        }
    for (uint32_t i = 0; i < m->ntools; i++)
        free(m->tools[i]);
    m->ntools = 0;
}

int xz_mcp_has_tool(const xz_mcp_t *m, const char *tool)
{
    for (uint32_t i = 0; i < m->ntools; i++)
        if (!strcmp(m->tools[i], tool))
            return 1;
    return 0;
}

/* {"session_id":…,"type":"mcp","payload":{"jsonrpc":"2.0","id":id,
 * "method":method,"params": …} — params written by the caller. */
static void req_begin(struct xz_dev *d, wisp_json_writer_t *w, uint32_t id,
                      const char *method)
{
    wisp_json_writer_init_dyn(w);
    wisp_json_obj_begin(w);
    wisp_json_kv_str(w, "session_id", d->session_id);
    wisp_json_kv_str(w, "type", "mcp");
    wisp_json_key(w, "payload");
    wisp_json_obj_begin(w);
    wisp_json_kv_str(w, "jsonrpc", "2.0");
    wisp_json_kv_int(w, "id", id);
    wisp_json_kv_str(w, "method", method);
    wisp_json_key(w, "params");
}

static int req_end(struct xz_dev *d, wisp_json_writer_t *w)
{
    wisp_json_obj_end(w); /* payload */
    wisp_json_obj_end(w);
    return xz_dev_send(d, w);
}

void xz_mcp_start(struct xz_dev *d)
{
    char token[XZ_TOKEN_MAX], url[320];
    xz_vision_token_make(xz_app->secret, d->device_id,
                         xz_unix_s() + VISION_TOKEN_S, token);
    snprintf(url, sizeof url, "%s/mcp/vision/explain", d->vision_base);
    wisp_json_writer_t w;
    req_begin(d, &w, ID_INITIALIZE, "initialize");
    wisp_json_obj_begin(&w);
    wisp_json_kv_str(&w, "protocolVersion", "2024-11-05");
    wisp_json_key(&w, "capabilities");
    wisp_json_obj_begin(&w);
    wisp_json_key(&w, "roots");
    wisp_json_obj_begin(&w);
    wisp_json_kv_bool(&w, "listChanged", 1);
    wisp_json_obj_end(&w);
    wisp_json_key(&w, "sampling");
    wisp_json_obj_begin(&w);
    wisp_json_obj_end(&w);
    wisp_json_key(&w, "vision");
    wisp_json_obj_begin(&w);
    wisp_json_kv_str(&w, "url", url);
    wisp_json_kv_str(&w, "token", token);
    wisp_json_obj_end(&w);
    wisp_json_obj_end(&w);
    wisp_json_key(&w, "clientInfo");
    wisp_json_obj_begin(&w);
    wisp_json_kv_str(&w, "name", "xiaozhi-server");
    wisp_json_kv_str(&w, "version", wisp_version());
    wisp_json_obj_end(&w);
    wisp_json_obj_end(&w);
    req_end(d, &w);
}

static void list_tools(struct xz_dev *d, const char *cursor)
{
    wisp_json_writer_t w;
    req_begin(d, &w, ID_TOOLS_LIST, "tools/list");
    wisp_json_obj_begin(&w);
    wisp_json_kv_str(&w, "cursor", cursor);
    wisp_json_obj_end(&w);
    d->mcp.listing = 1;
    d->mcp.pages++;
    req_end(d, &w);
}

static void on_tools(struct xz_dev *d, const wisp_json_doc_t *doc,
                     int result)
{
    xz_mcp_t *m = &d->mcp;
    m->listing = 0;
    int tools = wisp_json_get(doc, result, "tools");
    for (int t = wisp_json_first(doc, tools); t >= 0;
         t = wisp_json_next(doc, t)) {
        char name[128];
        int n = wisp_json_get(doc, t, "name");
        if (wisp_json_type(doc, n) != WISP_JSON_STRING ||
            wisp_json_str(doc, n, name, sizeof name) <= 0)
            continue;
        if (m->ntools >= XZ_MCP_MAX_TOOLS || xz_mcp_has_tool(m, name))
            continue;
        m->tools[m->ntools] = strdup(name);
        if (m->tools[m->ntools])
            m->ntools++;
    }
    char cursor[256];
    int c = wisp_json_get(doc, result, "nextCursor");
    if (wisp_json_type(doc, c) == WISP_JSON_STRING &&
        wisp_json_str(doc, c, cursor, sizeof cursor) > 0) {
        if (m->pages < XZ_MCP_MAX_PAGES) {
            list_tools(d, cursor);
            return;
        }
        xz_log(WISP_LOG_WARN, d->device_id, d->session_id,
               "event=mcp_tools_truncated pages=%d", m->pages);
    }
    xz_log(WISP_LOG_INFO, d->device_id, d->session_id,
           "event=mcp_tools count=%u pages=%d", m->ntools, m->pages);
}

static xz_mcp_result_t *result_of(const wisp_json_doc_t *doc, int payload)
{
    xz_mcp_result_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    int res = wisp_json_get(doc, payload, "result");
    if (res >= 0) {
        wisp_str_t raw = wisp_json_raw(doc, res);
        r->text = strndup(raw.ptr, raw.len);
        int content = wisp_json_get(doc, res, "content");
        for (int it = wisp_json_first(doc, content); it >= 0;
             it = wisp_json_next(doc, it)) {
            int tx = wisp_json_get(doc, it, "text");
            char buf[2048];
            if (wisp_json_type(doc, tx) == WISP_JSON_STRING &&
                wisp_json_str(doc, tx, buf, sizeof buf) >= 0) {
                r->content_text = strdup(buf);
                break;
            }
        }
        return r;
    }
    r->is_error = 1;
    int err = wisp_json_get(doc, payload, "error");
    int msg = wisp_json_get(doc, err, "message");
    char buf[1024];
    if (wisp_json_type(doc, msg) == WISP_JSON_STRING &&
        wisp_json_str(doc, msg, buf, sizeof buf) >= 0)
        r->text = strdup(buf);
    else
        r->text = strdup("error without message");
    return r;
}

void xz_mcp_on_message(struct xz_dev *d, const wisp_json_doc_t *doc,
                       int payload)
{
    xz_mcp_t *m = &d->mcp;
    int idt = wisp_json_get(doc, payload, "id");
    int64_t id;
    if (idt < 0 || wisp_json_type(doc, idt) == WISP_JSON_NULL) {
        /* A notification: logged, never answered (§5.5). */
        char method[96] = "?";
        int mt = wisp_json_get(doc, payload, "method");
        if (wisp_json_type(doc, mt) == WISP_JSON_STRING)
            wisp_json_str(doc, mt, method, sizeof method);
        xz_log(WISP_LOG_DEBUG, d->device_id, d->session_id,
               "event=mcp_notification method=%s", method);
        return;
    }
    if (wisp_json_int64(doc, idt, &id) < 0 ||
        wisp_json_get(doc, payload, "method") >= 0)
        return; /* a request from the device, or a string id: not ours */
    if (id == ID_INITIALIZE) {
        if (!m->initialized) {
            m->initialized = 1;
            list_tools(d, "");
        }
        return;
    }
    if (id == ID_TOOLS_LIST) {
        int res = wisp_json_get(doc, payload, "result");
        if (m->listing && wisp_json_type(doc, res) == WISP_JSON_OBJECT)
            on_tools(d, doc, res);
        else
            m->listing = 0;
        return;
    }
    for (int i = 0; i < XZ_MCP_MAX_PENDING; i++) {
        if (m->pending[i].id && m->pending[i].id == id) {
            xz_mcp_result_t *r = result_of(doc, payload);
            if (r)
                wisp_future_resolve(m->pending[i].f, r, xz_mcp_result_free);
            else
                wisp_future_fail(m->pending[i].f, -ENOMEM);
            wisp_future_unref(m->pending[i].f);
            m->pending[i].id = 0;
            m->pending[i].f = NULL;
            return;
        }
    }
}

/* A call settled (answer, timeout or cancel): free its slot. */
static void call_settled(wisp_future_t *f, void *arg)
{
    struct xz_dev *d = arg;
    xz_mcp_t *m = &d->mcp;
    for (int i = 0; i < XZ_MCP_MAX_PENDING; i++)
        if (m->pending[i].f == f) {
            m->pending[i].id = 0;
            m->pending[i].f = NULL;
            wisp_future_unref(f);
        }
    xz_dev_unref(d);
}

wisp_future_t *xz_mcp_call(struct xz_dev *d, const char *tool,
                           const char *args_json)
{
    wisp_future_t *f = wisp_future_create(d->loop);
    if (!f)
        return NULL;
    if (!d->feat_mcp || d->closed) {
        wisp_future_fail(f, -ENOTCONN);
        return f;
    }
    int slot = -1;
    for (int i = 0; i < XZ_MCP_MAX_PENDING && slot < 0; i++)
        if (!d->mcp.pending[i].id)
            slot = i;
    if (slot < 0) {
        wisp_future_fail(f, -EBUSY);
        return f;
    }
    /* The arguments must be one JSON object: checked before sending. */
    wisp_json_tok_t t[256];
    wisp_json_doc_t adoc;
    const char *args = args_json && *args_json ? args_json : "{}";
    if (wisp_json_parse(&adoc, args, strlen(args), t, 256, NULL) < 0 ||
        wisp_json_type(&adoc, 0) != WISP_JSON_OBJECT) {
        wisp_future_fail(f, -EINVAL);
        return f;
    }
    uint32_t id = d->mcp.next_id++;
    wisp_json_writer_t w;
    req_begin(d, &w, id, "tools/call");
    wisp_json_obj_begin(&w);
    wisp_json_kv_str(&w, "name", tool);
    wisp_json_key(&w, "arguments");
    wisp_json_raw_val(&w, args, strlen(args));
    wisp_json_obj_end(&w);
    int r = req_end(d, &w);
    if (r < 0) {
        wisp_future_fail(f, r);
        return f;
    }
    wisp_counter_inc(xz_app->m.mcp_calls);
    wisp_future_ref(f);
    d->mcp.pending[slot].id = id;
    d->mcp.pending[slot].f = f;
    xz_dev_ref(d);
    if (wisp_future_then(f, call_settled, d) < 0) {
        xz_dev_unref(d);
        d->mcp.pending[slot].id = 0;
        d->mcp.pending[slot].f = NULL;
        wisp_future_unref(f);
        wisp_future_fail(f, -ENOMEM);
        return f;
    }
    wisp_future_set_timeout(f, xz_app->cfg.call_timeout_ms);
    return f;
}
