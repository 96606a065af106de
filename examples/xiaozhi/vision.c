/* xiaozhi-server — /mcp/vision/explain (PROTOCOL.md §5.7).
 *
 * The body is streamed through wisp's multipart parser as it arrives
 * (devices send it chunked): the question is kept (4 KiB at most), the
 * image collected up to vision.max_image_bytes, then the vision provider
 * is asked through the gate. The token is checked from the headers
 * before any byte of the body is read. Answers:
 *   401 {"success":false,"message":…}  missing, invalid, expired or
 *        other-device token (the device turns it into a tool error);
 *   200 {"success":false,"message":…}  missing question, missing or
 *        empty image, not an image, image too large, provider failure
 *        (the device forwards 200 bodies to the language model);
 *   200 {"success":true,"action":"RESPONSE","response":…}. */
#include "vision.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "auth.h"
#include "ota.h"

#define MAX_QUESTION 4096

typedef struct vreq {
    wisp_res_t *res;
    wisp_multipart_t mp;
    char hdr[2048];
    char device[64];
    char question[MAX_QUESTION];
    size_t qlen;
    int have_question;
    uint8_t *image;
    size_t ilen, icap;
    int image_part;       /* index of the part taken as the image, or -1 */
    int too_large;
    int mp_err;
    int answered;
    wisp_future_t *f;
} vreq;

static void vreq_free(vreq *v)
{
    free(v->image);
    free(v);
}

static void reply(wisp_res_t *res, int status, int ok, const char *text)
{
    wisp_json_writer_t w;
    wisp_json_writer_init_dyn(&w);
    wisp_json_obj_begin(&w);
    wisp_json_kv_bool(&w, "success", ok);
    if (ok) {
        wisp_json_kv_str(&w, "action", "RESPONSE");
        wisp_json_kv_str(&w, "response", text);
    } else {
        wisp_json_kv_str(&w, "message", text);
    }
    wisp_json_obj_end(&w);
    char *out;
    size_t len;
    xz_cors(res, 0);
    if (wisp_json_finish(&w, &out, &len) < 0) {
        wisp_json_writer_free(&w);
        wisp_res_send(res, 500, "application/json",
                      "{\"success\":false}", 17);
        return;
    }
    wisp_res_send(res, status, "application/json", out, len);
    free(out);
}

const char *xz_image_type(const uint8_t *p, size_t n)
{
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
        return "jpeg";
    if (n >= 8 && !memcmp(p, "\x89PNG\r\n\x1a\n", 8))
        return "png";
    if (n >= 6 && (!memcmp(p, "GIF87a", 6) || !memcmp(p, "GIF89a", 6)))
        return "gif";
    if (n >= 2 && p[0] == 'B' && p[1] == 'M')
        return "bmp";
    if (n >= 4 && (!memcmp(p, "II*\0", 4) || !memcmp(p, "MM\0*", 4)))
        return "tiff";
    if (n >= 12 && !memcmp(p, "RIFF", 4) && !memcmp(p + 8, "WEBP", 4))
        return "webp";
    return NULL;
}

static int is_image_part(vreq *v, const wisp_multipart_part_t *part)
{
    if (v->image_part >= 0)
        return (int)part->index == v->image_part;
    int named = (part->name.len == 4 && !memcmp(part->name.ptr, "file", 4)) ||
                (part->name.len == 5 && !memcmp(part->name.ptr, "image", 5));
    /* `file` (firmware) or `image` (browser client), else the first part
     * that is a file. */
    if (named || part->filename.ptr) {
        v->image_part = (int)part->index;
        return 1;
    }
    return 0;
}

static int on_begin(const wisp_multipart_part_t *part, void *arg)
{
    vreq *v = arg;
    if (v->image_part < 0 && is_image_part(v, part))
        v->ilen = 0;
    return 0;
}

static int on_data(const wisp_multipart_part_t *part, const void *data,
                   size_t len, void *arg)
{
    vreq *v = arg;
    if (v->image_part >= 0 && (int)part->index == v->image_part) {
        if (v->too_large)
            return 0;
        if (v->ilen + len > xz_app->cfg.max_image_bytes) {
            v->too_large = 1;  /* keep reading, answer at the end */
            free(v->image);
            v->image = NULL;
            v->ilen = v->icap = 0;
            return 0;
        }
        if (v->ilen + len > v->icap) {
            size_t cap = v->icap ? v->icap * 2 : 65536;
            while (cap < v->ilen + len)
                cap *= 2;
            uint8_t *n = realloc(v->image, cap);
            if (!n)
                return -ENOMEM;
            v->image = n;
            v->icap = cap;
        }
        memcpy(v->image + v->ilen, data, len);
        v->ilen += len;
        return 0;
    }
    int is_q = part->name.len == 8 && !memcmp(part->name.ptr, "question", 8);
    if (is_q || (!v->have_question && part->index == 0 &&
                 !part->filename.ptr)) {
        size_t room = MAX_QUESTION - 1 - v->qlen;
        if (len > room)
            len = room;
        memcpy(v->question + v->qlen, data, len);
        v->qlen += len;
        v->question[v->qlen] = 0;
    }
    return 0;
}

static int on_end(const wisp_multipart_part_t *part, void *arg)
{
    vreq *v = arg;
    int is_q = part->name.len == 8 && !memcmp(part->name.ptr, "question", 8);
    if (is_q || (part->index == 0 && !part->filename.ptr &&
                 (int)part->index != v->image_part))
        v->have_question = v->qlen > 0;
    return 0;
}

typedef struct vstart {
    vreq *v;
    const char *type;
} vstart;

static void explained(wisp_res_t *res, wisp_future_t *f, void *arg)
{
    vreq *v = arg;
    if (wisp_future_state(f) == WISP_FUTURE_RESOLVED) {
        const char *text = wisp_future_value(f);
        reply(res, 200, 1, text ? text : "");
    } else {
        int e = wisp_future_error(f);
        reply(res, 200, 0, e == -EAGAIN ? "the vision service is busy"
                                        : "the vision service failed");
    }
    vreq_free(v);
}

static wisp_future_t *start_explain(void *arg)
{
    vreq *v = arg;
    const char *type = xz_image_type(v->image, v->ilen);
    return xz_vision_test_provider()->explain(wisp_res_loop(v->res),
                                              v->device, v->question,
                                              v->image, v->ilen, type);
}

static void finish(vreq *v)
{
    wisp_res_t *res = v->res;
    const char *err = NULL;
    if (v->mp_err)
        err = v->mp_err == WISP_EMULTIPART_PART_SIZE ||
              v->mp_err == WISP_EMULTIPART_TOTAL
                  ? "image too large" : "malformed multipart body";
    else if (!v->have_question)
        err = "missing question";
    else if (v->too_large)
        err = "image too large";
    else if (v->image_part < 0 || v->ilen == 0)
        err = "missing or empty image";
    else if (!xz_image_type(v->image, v->ilen))
        err = "unsupported image format";
    if (err) {
        xz_log(WISP_LOG_INFO, v->device, "-", "event=vision_refused "
               "reason=\"%s\"", err);
        reply(res, 200, 0, err);
        vreq_free(v);
        return;
    }
    wisp_future_t *f = xz_gate_call(wisp_res_loop(res), XZ_PROV_VISION,
                                    start_explain, v);
    if (!f || wisp_res_await(res, f, explained,
                             (wisp_free_cb)vreq_free, v) < 0) {
        if (f)
            wisp_future_cancel(f);
        reply(res, 200, 0, "out of memory");
        wisp_future_unref(f);
        vreq_free(v);
        return;
    }
    wisp_future_unref(f);
}

static void body_data(wisp_req_t *req, const void *data, size_t len,
                      void *arg)
{
    (void)req;
    vreq *v = arg;
    if (v->mp_err)
        return;
    int r = wisp_multipart_feed(&v->mp, data, len);
    if (r < 0)
        v->mp_err = r;
}

static void body_end(wisp_req_t *req, int status, void *arg)
{
    (void)req;
    vreq *v = arg;
    if (status < 0) {
        /* wisp answers (413, 400, 408) or the client left. */
        vreq_free(v);
        return;
    }
    if (!v->mp_err) {
        int r = wisp_multipart_finish(&v->mp);
        if (r < 0)
            v->mp_err = r;
    }
    finish(v);
}

void xz_vision_route(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_method_t m = wisp_req_method(req);
    if (m == WISP_METHOD_OPTIONS) {
        xz_cors(res, 1);
        wisp_res_send(res, 200, "text/plain", "", 0);
        return;
    }
    if (m != WISP_METHOD_POST) {
        static const char msg[] = "Vision interface is running: POST a "
            "multipart question and image here.\n";
        xz_cors(res, 0);
        wisp_res_send(res, 200, "text/plain", msg, sizeof msg - 1);
        return;
    }
    wisp_counter_inc(xz_app->m.vision_requests);
    vreq *v = calloc(1, sizeof *v);
    if (!v) {
        reply(res, 200, 0, "out of memory");
        return;
    }
    v->res = res;
    v->image_part = -1;
    wisp_str_t dev = wisp_req_header(req, "Device-Id");
    if (dev.ptr && dev.len < sizeof v->device) {
        memcpy(v->device, dev.ptr, dev.len);
        for (size_t i = 0; i < dev.len; i++)
            if (v->device[i] >= 'A' && v->device[i] <= 'Z')
                v->device[i] = (char)(v->device[i] + 32);
    }
    wisp_str_t auth = wisp_req_header(req, "Authorization");
    int tc = -1;
    if (v->device[0] && auth.ptr)
        tc = xz_vision_token_check(xz_app->secret, v->device, auth.ptr,
                                   auth.len, xz_unix_s());
    if (tc < 0) {
        const char *why = !auth.ptr ? "missing token"
                          : !v->device[0] ? "missing Device-Id"
                          : tc == -2 ? "token expired"
                                     : "invalid token for this device";
        xz_log(WISP_LOG_INFO, v->device[0] ? v->device : "-", "-",
               "event=vision_auth_failed reason=\"%s\"", why);
        reply(res, 401, 0, why);
        free(v);
        return;
    }
    wisp_str_t ct = wisp_req_header(req, "Content-Type");
    wisp_str_t boundary;
    wisp_multipart_config_t cfg = {
        .on_part_begin = on_begin,
        .on_part_data = on_data,
        .on_part_end = on_end,
        .arg = v,
        .header_buf = v->hdr,
        .header_buf_size = sizeof v->hdr,
        .max_parts = 8,
        .max_total_bytes = xz_vision_max_body(),
    };
    if (wisp_multipart_boundary(ct, &boundary) < 0 ||
        wisp_multipart_init(&v->mp, boundary, &cfg) < 0) {
        reply(res, 200, 0, "expected a multipart/form-data body");
        free(v);
        return;
    }
    if (wisp_req_on_body(req, body_data, body_end, v) < 0) {
        reply(res, 200, 0, "cannot read the body");
        free(v);
    }
}

uint64_t xz_vision_max_body(void)
{
    /* Room to read an oversized image to its end and answer 200 with
     * success:false (what the device forwards to the model); beyond
     * this wisp answers 413. */
    return (uint64_t)xz_app->cfg.max_image_bytes * 2 + (1u << 20);
}
