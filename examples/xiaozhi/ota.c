/* xiaozhi-server — OTA, activation, firmware. See ota.h. */
#include "ota.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "auth.h"

int xz_version_cmp(const char *a, const char *b)
{
    for (;;) {
        char *ea, *eb;
        if (*a < '0' || *a > '9' || *b < '0' || *b > '9')
            return -2;
        unsigned long long x = strtoull(a, &ea, 10);
        unsigned long long y = strtoull(b, &eb, 10);
        if ((*ea && *ea != '.') || (*eb && *eb != '.'))
            return -2;
        if (x != y)
            return x < y ? -1 : 1;
        if (!*ea || !*eb) {
            if (*ea == *eb)
                return 0;
            /* The longer one is newer, if its rest is valid. */
            const char *rest = *ea ? ea + 1 : eb + 1;
            for (const char *p = rest; *p; p++)
                if ((*p < '0' || *p > '9') && *p != '.')
                    return -2;
            if (!*rest)
                return -2;
            return *ea ? 1 : -1;
        }
        a = ea + 1;
        b = eb + 1;
    }
}

void xz_cors(wisp_res_t *res, int preflight)
{
    wisp_res_header(res, "Access-Control-Allow-Origin", "*");
    wisp_res_header(res, "Access-Control-Allow-Headers",
                    "client-id, content-type, device-id, authorization");
    wisp_res_header(res, "Access-Control-Allow-Credentials", "true");
    if (preflight) {
        wisp_res_header(res, "Access-Control-Allow-Methods",
                        "GET, POST, OPTIONS");
        wisp_res_header(res, "Access-Control-Max-Age", "86400");
    }
}

static void json_send(wisp_res_t *res, int status, const char *body,
                      size_t len)
{
    xz_cors(res, 0);
    wisp_res_send(res, status, "application/json", body, len);
}

static void json_error(wisp_res_t *res, int status, const char *msg)
{
    char body[256];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}", msg);
    json_send(res, status, body, (size_t)n);
}

static int copy_header(wisp_req_t *req, const char *name, char *out,
                       size_t cap)
{
    wisp_str_t h = wisp_req_header(req, name);
    if (!h.ptr || !h.len || h.len >= cap)
        return -1;
    memcpy(out, h.ptr, h.len);
    out[h.len] = 0;
    return 0;
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + 32);
}

void xz_ota_ws_url(wisp_req_t *req, const xz_ota_site_t *site, char *out,
                   size_t cap)
{
    const xz_config_t *c = &xz_app->cfg;
    if (c->public_ws_url[0]) {
        snprintf(out, cap, "%s", c->public_ws_url);
        return;
    }
    char host[256] = "localhost";
    copy_header(req, "Host", host, sizeof host);
    if (site && site->second_port) {
        /* The request reached the OTA-only port: the WebSocket lives on
         * the main port of the same host. */
        char *colon = strrchr(host, ':');
        char *rb = strrchr(host, ']');
        if (colon && (!rb || colon > rb) &&
            (host[0] == '[' || strchr(host, ':') == colon))
            *colon = 0;
        snprintf(out, cap, "ws://%s:%u/xiaozhi/v1/", host,
                 (unsigned)xz_app->ws_port);
        return;
    }
    /* The device reached us with this Host (port included when it is not
     * the scheme's default): the same authority reaches the WebSocket,
     * also through NAT and container port mappings. */
    snprintf(out, cap, "ws://%s/xiaozhi/v1/", host);
}

/* ----------------------------------------------------------- activation */

typedef struct act_entry {
    char device[64];
    char code[8];
    int64_t expires;   /* code validity (unix s) */
    int bound;
} act_entry;

static pthread_mutex_t act_lock = PTHREAD_MUTEX_INITIALIZER;
static act_entry *acts;
static size_t nacts;

/* The code of an unbound device (made on first sight, kept while valid:
 * repeated OTA checks see the same code), or "" when bound. Returns -1
 * when the table is full. */
static int act_lookup(const char *device, char code[8])
{
    int64_t now = xz_unix_s();
    int rc = 0;
    pthread_mutex_lock(&act_lock);
    act_entry *e = NULL;
    for (size_t i = 0; i < nacts; i++)
        if (!strcmp(acts[i].device, device))
            e = &acts[i];
    if (!e) {
        for (size_t i = 0; i < nacts && !e; i++)
            if (!acts[i].bound && acts[i].expires < now)
                e = &acts[i];   /* reuse an expired slot */
        size_t cap = xz_app->cfg.activation_max_devices;
        if (!e && nacts < cap) {
            if (!acts)
                acts = calloc(cap, sizeof *acts);
            if (acts)
                e = &acts[nacts++];
        }
        if (e) {
            memset(e, 0, sizeof *e);
            snprintf(e->device, sizeof e->device, "%s", device);
        }
    }
    if (!e) {
        rc = -1;
    } else if (e->bound) {
        code[0] = 0;
    } else {
        if (!e->code[0] || e->expires < now) {
            uint32_t r;
            xz_random(&r, sizeof r);
            snprintf(e->code, sizeof e->code, "%06u", r % 1000000u);
            e->expires = now + xz_app->cfg.activation_code_ttl_s;
        }
        memcpy(code, e->code, 8);
    }
    pthread_mutex_unlock(&act_lock);
    return rc;
}

static int act_bound(const char *device)
{
    int b = 0;
    pthread_mutex_lock(&act_lock);
    for (size_t i = 0; i < nacts; i++)
        if (!strcmp(acts[i].device, device))
            b = acts[i].bound;
    pthread_mutex_unlock(&act_lock);
    return b;
}

/* Bind the device holding `code` (its id into `dev`). Returns 0 or -1
 * (no device waits with that code). */
static int act_bind(const char *code, char dev[64])
{
    int rc = -1;
    int64_t now = xz_unix_s();
    pthread_mutex_lock(&act_lock);
    for (size_t i = 0; i < nacts && rc < 0; i++)
        if (!acts[i].bound && acts[i].code[0] &&
            !strcmp(acts[i].code, code) && acts[i].expires >= now) {
            acts[i].bound = 1;
            memcpy(dev, acts[i].device, 64);
            rc = 0;
        }
    pthread_mutex_unlock(&act_lock);
    return rc;
}

void xz_ota_cleanup(void)
{
    pthread_mutex_lock(&act_lock);
    free(acts);
    acts = NULL;
    nacts = 0;
    pthread_mutex_unlock(&act_lock);
}

/* ------------------------------------------------------------- firmware */

typedef struct fw_job {
    char dir[XZ_STR_LONG];
    char board[64];
    char current[32];
    char best[32];     /* result: newer version, or "" */
} fw_job;

static int fw_name_ok(const char *n)
{
    size_t l = strlen(n);
    if (l < 5 || strcmp(n + l - 4, ".bin"))
        return 0;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
              *p == '-'))
            return 0;
    return 1;
}

/* On the pool: scan firmware_dir for <board>_<version>.bin newer than
 * the device's version; keep the newest. */
static int fw_scan(void *arg, void **value, wisp_free_cb *destroy)
{
    fw_job *j = arg;
    DIR *dir = opendir(j->dir);
    if (!dir)
        return 0;
    size_t bl = strlen(j->board);
    struct dirent *e;
    while ((e = readdir(dir))) {
        const char *n = e->d_name;
        size_t l = strlen(n);
        if (!fw_name_ok(n) || l <= bl + 5 || strncmp(n, j->board, bl) ||
            n[bl] != '_')
            continue;
        char ver[32];
        size_t vl = l - bl - 1 - 4;
        if (vl >= sizeof ver)
            continue;
        memcpy(ver, n + bl + 1, vl);
        ver[vl] = 0;
        if (xz_version_cmp(ver, j->current) == 1 &&
            (!j->best[0] || xz_version_cmp(ver, j->best) == 1))
            snprintf(j->best, sizeof j->best, "%s", ver);
    }
    closedir(dir);
    *value = j;
    *destroy = free;
    return 0;
}

/* ------------------------------------------------------------------ OTA */

typedef struct ota_ctx {
    char device[64], client[80], version[32], board[64];
    char ws_url[512];
    char http_base[512];
} ota_ctx;

static void http_base(wisp_req_t *req, const xz_ota_site_t *site, char *out,
                      size_t cap)
{
    (void)site;
    const xz_config_t *c = &xz_app->cfg;
    if (c->public_http_url[0]) {
        size_t n = strlen(c->public_http_url);
        while (n && c->public_http_url[n - 1] == '/')
            n--;
        snprintf(out, cap, "%.*s", (int)n, c->public_http_url);
        return;
    }
    char host[256] = "localhost";
    copy_header(req, "Host", host, sizeof host);
    snprintf(out, cap, "http://%s", host);
}

static void ota_answer(wisp_res_t *res, const ota_ctx *o, const char *fw)
{
    const xz_config_t *c = &xz_app->cfg;
    char code[8] = "";
    if (c->activation_enabled && act_lookup(o->device, code) < 0) {
        /* The table of waiting devices is full: no activation member
         * (the device would take itself for activated), a clear refusal
         * it retries later instead. Devices already known still get
         * their answer. */
        xz_log(WISP_LOG_WARN, o->device, "-",
               "event=activation_table_full max=%u",
               c->activation_max_devices);
        wisp_res_header(res, "Retry-After", "60");
        json_error(res, 503, "activation table full, retry later");
        return;
    }
    wisp_json_writer_t w;
    wisp_json_writer_init_dyn(&w);
    wisp_json_obj_begin(&w);
    wisp_json_key(&w, "server_time");
    wisp_json_obj_begin(&w);
    wisp_json_kv_int(&w, "timestamp", xz_unix_ms());
    wisp_json_kv_int(&w, "timezone_offset", c->timezone_offset);
    wisp_json_obj_end(&w);
    wisp_json_key(&w, "firmware");
    wisp_json_obj_begin(&w);
    if (fw && fw[0]) {
        char url[1024];
        snprintf(url, sizeof url, "%s/xiaozhi/ota/download/%s_%s.bin",
                 o->http_base, o->board, fw);
        wisp_json_kv_str(&w, "version", fw);
        wisp_json_kv_str(&w, "url", url);
    } else {
        wisp_json_kv_str(&w, "version", o->version);
        wisp_json_kv_str(&w, "url", "");
    }
    wisp_json_obj_end(&w);
    if (c->activation_enabled) {
        if (code[0]) {
            char msg[600];
            snprintf(msg, sizeof msg, "%s\n%s", o->http_base, code);
            wisp_json_key(&w, "activation");
            wisp_json_obj_begin(&w);
            wisp_json_kv_str(&w, "code", code);
            wisp_json_kv_str(&w, "message", msg);
            wisp_json_kv_str(&w, "challenge", o->device);
            wisp_json_kv_int(&w, "timeout_ms", 30000);
            wisp_json_obj_end(&w);
        }
    }
    char token[XZ_TOKEN_MAX] = "";
    if (c->auth_enabled && !xz_config_device_allowed(c, o->device))
        xz_token_make(xz_app->secret, o->client, o->device, xz_unix_s(),
                      token);
    wisp_json_key(&w, "websocket");
    wisp_json_obj_begin(&w);
    wisp_json_kv_str(&w, "url", o->ws_url);
    wisp_json_kv_str(&w, "token", token);
    wisp_json_kv_int(&w, "version", c->websocket_version);
    wisp_json_obj_end(&w);
    wisp_json_obj_end(&w);
    char *out;
    size_t len;
    if (wisp_json_finish(&w, &out, &len) < 0) {
        wisp_json_writer_free(&w);
        json_error(res, 500, "internal error");
        return;
    }
    json_send(res, 200, out, len);
    free(out);
}

static void fw_done(wisp_res_t *res, wisp_future_t *f, void *arg)
{
    ota_ctx *o = arg;
    fw_job *j = wisp_future_value(f);
    ota_answer(res, o, j ? j->best : NULL);
    free(o);
}

/* Take what the response needs from the (optional, maybe malformed)
 * body: every member is optional (§2.1). */
static void parse_body(wisp_req_t *req, ota_ctx *o)
{
    snprintf(o->version, sizeof o->version, "0.0.0");
    wisp_str_t ua = wisp_req_header(req, "User-Agent");
    /* User-Agent "board/version" as a fallback for both. */
    if (ua.ptr) {
        const char *slash = memchr(ua.ptr, '/', ua.len);
        if (slash) {
            size_t bl = (size_t)(slash - ua.ptr);
            size_t vl = ua.len - bl - 1;
            if (bl < sizeof o->board)
                snprintf(o->board, sizeof o->board, "%.*s", (int)bl,
                         ua.ptr);
            if (vl && vl < sizeof o->version) {
                char v[32];
                snprintf(v, sizeof v, "%.*s", (int)vl, slash + 1);
                if (xz_version_cmp(v, v) == 0)
                    snprintf(o->version, sizeof o->version, "%s", v);
            }
        }
    }
    wisp_str_t body = wisp_req_body(req);
    wisp_json_tok_t toks[1024];
    wisp_json_doc_t doc;
    if (!body.len || wisp_json_parse(&doc, body.ptr, body.len, toks, 1024,
                                     NULL) < 0 ||
        wisp_json_type(&doc, 0) != WISP_JSON_OBJECT)
        return;
    int app = wisp_json_get(&doc, 0, "application");
    int v = wisp_json_get(&doc, app, "version");
    char tmp[64];
    if (wisp_json_type(&doc, v) == WISP_JSON_STRING &&
        wisp_json_str(&doc, v, tmp, sizeof o->version) > 0)
        memcpy(o->version, tmp, sizeof o->version);
    int board = wisp_json_get(&doc, 0, "board");
    int bt = wisp_json_get(&doc, board, "type");
    if (wisp_json_type(&doc, bt) == WISP_JSON_STRING &&
        wisp_json_str(&doc, bt, tmp, sizeof o->board) > 0)
        memcpy(o->board, tmp, sizeof o->board);
}

void xz_ota_route(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    const xz_ota_site_t *site = arg;
    wisp_method_t m = wisp_req_method(req);
    if (m == WISP_METHOD_OPTIONS) {
        xz_cors(res, 1);
        wisp_res_send(res, 200, "text/plain", "", 0);
        return;
    }
    char url[512];
    xz_ota_ws_url(req, site, url, sizeof url);
    if (m == WISP_METHOD_GET || m == WISP_METHOD_HEAD) {
        char body[800];
        int n = snprintf(body, sizeof body,
                         "OTA interface is running. The WebSocket URL sent "
                         "to devices is %s\n", url);
        xz_cors(res, 0);
        wisp_res_send(res, 200, "text/plain; charset=utf-8", body,
                      (size_t)n);
        return;
    }
    wisp_counter_inc(xz_app->m.ota_requests);
    ota_ctx *o = calloc(1, sizeof *o);
    if (!o) {
        json_error(res, 500, "out of memory");
        return;
    }
    if (copy_header(req, "Device-Id", o->device, sizeof o->device) < 0) {
        free(o);
        /* 400, not the reference's 200 without websocket: the device
         * retries instead of being stranded (§2.3). */
        json_error(res, 400, "Device-Id header is required");
        return;
    }
    lower(o->device);
    if (copy_header(req, "Client-Id", o->client, sizeof o->client) < 0)
        snprintf(o->client, sizeof o->client, "%s", o->device);
    snprintf(o->ws_url, sizeof o->ws_url, "%s", url);
    http_base(req, site, o->http_base, sizeof o->http_base);
    parse_body(req, o);
    xz_log(WISP_LOG_INFO, o->device, "-", "event=ota version=%s board=%s "
           "peer=%s", o->version, o->board[0] ? o->board : "-",
           wisp_req_peer(req));
    if (!xz_app->cfg.firmware_dir[0] || !o->board[0] ||
        xz_version_cmp(o->version, o->version) != 0) {
        ota_answer(res, o, NULL);
        free(o);
        return;
    }
    /* Looking for newer firmware reads a directory: on the pool. */
    fw_job *j = calloc(1, sizeof *j);
    if (!j) {
        ota_answer(res, o, NULL);
        free(o);
        return;
    }
    snprintf(j->dir, sizeof j->dir, "%s", xz_app->cfg.firmware_dir);
    snprintf(j->board, sizeof j->board, "%s", o->board);
    snprintf(j->current, sizeof j->current, "%s", o->version);
    wisp_future_t *f = wisp_pool_submit(xz_app->pool, WISP_PRIO_NORMAL,
                                        wisp_req_loop(req), fw_scan, j);
    if (!f) {
        free(j);
        ota_answer(res, o, NULL);
        free(o);
        return;
    }
    if (wisp_future_state(f) == WISP_FUTURE_FAILED) {
        free(j);  /* refused: fw_scan never runs */
        wisp_future_unref(f);
        ota_answer(res, o, NULL);
        free(o);
        return;
    }
    if (wisp_res_await(res, f, fw_done, free, o) < 0) {
        wisp_future_unref(f);
        ota_answer(res, o, NULL);
        free(o);
        return;
    }
    wisp_future_unref(f);
}

void xz_ota_activate_route(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    if (wisp_req_method(req) == WISP_METHOD_OPTIONS) {
        xz_cors(res, 1);
        wisp_res_send(res, 200, "text/plain", "", 0);
        return;
    }
    char dev[64];
    /* The body (flat, or wrapped in "Payload" by the desktop client, or
     * {}) carries nothing we verify: without the factory key database an
     * HMAC cannot be checked (§2.4), so it is accepted as sent. */
    if (copy_header(req, "Device-Id", dev, sizeof dev) < 0) {
        json_send(res, 202, "{\"success\":false}", 17);
        return;
    }
    lower(dev);
    if (!xz_app->cfg.activation_enabled || act_bound(dev))
        json_send(res, 200, "{\"success\":true}", 16);
    else
        json_send(res, 202, "{\"success\":false}", 17);
}

void xz_ota_bind_route(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    if (!xz_app->cfg.activation_enabled) {
        json_error(res, 404, "activation is not enabled");
        return;
    }
    /* The code comes as {"code":"NNNNNN"} or as ?code=NNNNNN. */
    char code[16] = "";
    ssize_t n = wisp_req_query_get(req, "code", code, sizeof code);
    if (n <= 0 || (size_t)n >= sizeof code) {
        code[0] = 0;
        wisp_str_t body = wisp_req_body(req);
        wisp_json_tok_t toks[16];
        wisp_json_doc_t doc = {0};
        int c = -1;
        if (body.len && wisp_json_parse(&doc, body.ptr, body.len, toks, 16,
                                        NULL) > 0)
            c = wisp_json_get(&doc, 0, "code");
        if (wisp_json_type(&doc, c) != WISP_JSON_STRING ||
            wisp_json_str(&doc, c, code, sizeof code) <= 0) {
            json_error(res, 400, "expected {\"code\":\"...\"}");
            return;
        }
    }
    char dev[64];
    if (act_bind(code, dev) < 0) {
        json_error(res, 404, "no device waits with this code");
        return;
    }
    xz_log(WISP_LOG_INFO, dev, "-", "event=activation_bound");
    char body[256];
    wisp_json_writer_t w;
    wisp_json_writer_init(&w, body, sizeof body);
    wisp_json_obj_begin(&w);
    wisp_json_kv_bool(&w, "success", 1);
    wisp_json_kv_str(&w, "device_id", dev);
    wisp_json_obj_end(&w);
    size_t len;
    if (wisp_json_finish(&w, NULL, &len) < 0)
        json_error(res, 500, "internal error");
    else
        json_send(res, 200, body, len);
}

void xz_ota_download_route(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_str_t f = wisp_req_param(req, "file");
    char name[256];
    if (!f.ptr || f.len >= sizeof name) {
        json_error(res, 400, "bad file name");
        return;
    }
    memcpy(name, f.ptr, f.len);
    name[f.len] = 0;
    if (!fw_name_ok(name) || name[0] == '.') {
        json_error(res, 400, "bad file name");
        return;
    }
    if (!xz_app->cfg.firmware_dir[0]) {
        json_error(res, 404, "no firmware directory");
        return;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", xz_app->cfg.firmware_dir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        json_error(res, 404, "no such firmware");
        return;
    }
    /* sendfile with the file's length: Content-Length is always set,
     * which the firmware requires (§2.5). */
    wisp_res_sendfile(res, 200, "application/octet-stream", fd, 0,
                      (uint64_t)st.st_size);
}
