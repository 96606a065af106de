/* CORS for path prefixes (Fetch Standard §3.2): preflights answered here,
 * headers added to actual responses. The configuration is read-only once
 * the server listens, so every loop reads it without locks. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/cors.h"
#include "http/http_int.h"
#include "server_int.h"
#include "wisp/cors.h"

#define DEFAULT_METHODS "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"

struct wisp__cors {
    wisp__cors *next;
    char *prefix;
    size_t prefix_len;
    char **origins; /* NULL: any origin */
    char *methods;
    char *allow_headers; /* NULL: echo the request's */
    char *expose_headers;
    int credentials;
    uint32_t max_age_s;
    int status;
};

static wisp_mw_result_t cors_before(wisp_req_t *req, wisp_res_t *res,
                                    void *arg);

void wisp__cors_free(wisp__cors *c)
{
    while (c) {
        wisp__cors *next = c->next;
        free(c->prefix);
        if (c->origins) {
            for (char **o = c->origins; *o; o++)
                free(*o);
            free(c->origins);
        }
        free(c->methods);
        free(c->allow_headers);
        free(c->expose_headers);
        free(c);
        c = next;
    }
}

static int bad_value(const char *s)
{
    return s && strpbrk(s, "\r\n") != NULL;
}

/* strdup that keeps NULL; *oom set on failure. */
static char *dup_or_null(const char *s, int *oom)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

int wisp_server_cors(wisp_server_t *srv, const char *prefix,
                     const wisp_cors_opts_t *opts)
{
    static const wisp_cors_opts_t zero = {0};
    if (!srv || !prefix || prefix[0] != '/' || bad_value(prefix))
        return -EINVAL;
    if (srv->state != WISP__S_NEW)
        return WISP_ESTATE;
    if (!opts)
        opts = &zero;
    if (bad_value(opts->allow_methods) || bad_value(opts->allow_headers) ||
        bad_value(opts->expose_headers))
        return -EINVAL;
    if (opts->preflight_status &&
        (opts->preflight_status < 200 || opts->preflight_status > 299))
        return -EINVAL;
    size_t norigins = 0;
    int any = !opts->origins;
    if (opts->origins) {
        for (const char *const *o = opts->origins; *o; o++) {
            if (bad_value(*o) || !**o)
                return -EINVAL;
            norigins++;
        }
        if (norigins == 0)
            return -EINVAL;
        for (const char *const *o = opts->origins; *o; o++) {
            if (strcmp(*o, "*") == 0) {
                if (norigins != 1)
                    return -EINVAL;
                any = 1;
            }
        }
    }
    size_t plen = strlen(prefix);
    /* "/api/" and "/api" cover the same paths. */
    while (plen > 1 && prefix[plen - 1] == '/')
        plen--;
    for (wisp__cors *c = srv->http.cors; c; c = c->next) {
        if (c->prefix_len == plen && memcmp(c->prefix, prefix, plen) == 0)
            return -EEXIST;
    }

    wisp__cors *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    int oom = 0;
    c->prefix = strndup(prefix, plen);
    oom |= !c->prefix;
    c->prefix_len = plen;
    if (!any) {
        c->origins = calloc(norigins + 1, sizeof *c->origins);
        oom |= !c->origins;
        for (size_t i = 0; c->origins && i < norigins; i++)
            c->origins[i] = dup_or_null(opts->origins[i], &oom);
    }
    c->methods = dup_or_null(opts->allow_methods ? opts->allow_methods
                                                 : DEFAULT_METHODS,
                             &oom);
    c->allow_headers = dup_or_null(opts->allow_headers, &oom);
    c->expose_headers = dup_or_null(opts->expose_headers, &oom);
    if (oom) {
        wisp__cors_free(c);
        return -ENOMEM;
    }
    c->credentials = !!opts->allow_credentials;
    c->max_age_s = opts->max_age_s;
    c->status = opts->preflight_status ? opts->preflight_status : 204;
    if (!srv->http.cors) {
        wisp_mw_t mw = {.before = cors_before, .arg = &srv->http};
        int r = wisp__mw_add(&srv->http, NULL, 0, &mw, 1);
        if (r < 0) {
            wisp__cors_free(c);
            return r;
        }
    }
    c->next = srv->http.cors;
    srv->http.cors = c;
    return 0;
}

/* The entry with the longest prefix covering `path`, or NULL. */
static const wisp__cors *find(const wisp__http_conf *conf, wisp_str_t path)
{
    const wisp__cors *best = NULL;
    for (const wisp__cors *c = conf->cors; c; c = c->next) {
        size_t n = c->prefix_len;
        if (path.len < n || memcmp(path.ptr, c->prefix, n) != 0)
            continue;
        if (n > 1 && path.len > n && path.ptr[n] != '/')
            continue; /* "/api" does not cover "/apix" */
        if (!best || n > best->prefix_len)
            best = c;
    }
    return best;
}

/* Add Access-Control-Allow-Origin (and Vary) for `req`. Returns 1 when
 * the origin is allowed (the other CORS headers may follow), else 0. */
static int allow_origin(const wisp__cors *c, wisp_req_t *req,
                        wisp_res_t *res)
{
    wisp_str_t origin = wisp_req_header(req, "Origin");
    if (!c->origins) {
        if (c->credentials) /* the answer depends on the Origin */
            wisp_res_header(res, "Vary", "Origin");
        if (origin.ptr && c->credentials) {
            /* "*" does not work with credentials: echo the origin. */
            wisp_res_header_n(res, "Access-Control-Allow-Origin", 27,
                              origin.ptr, origin.len);
        } else {
            wisp_res_header(res, "Access-Control-Allow-Origin", "*");
        }
        return 1;
    }
    wisp_res_header(res, "Vary", "Origin");
    if (!origin.ptr)
        return 0;
    for (char **o = c->origins; *o; o++) {
        if (strlen(*o) == origin.len &&
            strncasecmp(*o, origin.ptr, origin.len) == 0) {
            wisp_res_header_n(res, "Access-Control-Allow-Origin", 27,
                              origin.ptr, origin.len);
            return 1;
        }
    }
    return 0;
}

static void preflight(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    const wisp__cors *c = arg;
    if (allow_origin(c, req, res)) {
        wisp_res_header(res, "Access-Control-Allow-Methods", c->methods);
        if (c->allow_headers) {
            wisp_res_header(res, "Access-Control-Allow-Headers",
                            c->allow_headers);
        } else {
            wisp_str_t h =
                wisp_req_header(req, "Access-Control-Request-Headers");
            if (h.ptr && h.len)
                wisp_res_header_n(res, "Access-Control-Allow-Headers", 28,
                                  h.ptr, h.len);
            wisp_res_header(res, "Vary", "Access-Control-Request-Headers");
        }
        if (c->credentials)
            wisp_res_header(res, "Access-Control-Allow-Credentials", "true");
        if (c->max_age_s) {
            char age[16];
            snprintf(age, sizeof age, "%u", (unsigned)c->max_age_s);
            wisp_res_header(res, "Access-Control-Max-Age", age);
        }
    }
    wisp_res_send(res, c->status, NULL, NULL, 0);
}

/* The CORS middleware (one for the server, first after the access log):
 * preflights answered early, the headers of actual responses added
 * before the handler's own, 404 and 405 included. */
static wisp_mw_result_t cors_before(wisp_req_t *req, wisp_res_t *res,
                                    void *arg)
{
    const wisp__http_conf *conf = arg;
    const wisp__cors *c = find(conf, wisp_req_path(req));
    if (!c)
        return WISP_MW_NEXT;
    if (wisp_req_method(req) == WISP_METHOD_OPTIONS) {
        int is_preflight =
            wisp_req_header(req, "Origin").ptr &&
            wisp_req_header(req, "Access-Control-Request-Method").ptr;
        /* Any other OPTIONS goes to the application's own OPTIONS (or
         * ANY) route when there is one. */
        if (is_preflight || wisp_req_route_status(req) != 0) {
            preflight(req, res, (void *)c);
            return WISP_MW_DONE;
        }
    }
    if (!allow_origin(c, req, res))
        return WISP_MW_NEXT;
    if (c->credentials)
        wisp_res_header(res, "Access-Control-Allow-Credentials", "true");
    if (c->expose_headers)
        wisp_res_header(res, "Access-Control-Expose-Headers",
                        c->expose_headers);
    return WISP_MW_NEXT;
}
