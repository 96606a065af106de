/* wisp — CORS (Fetch Standard §3.2, "CORS protocol") for routes.
 *
 * wisp_server_cors() enables cross-origin access to every path under a
 * prefix. For those paths wisp then:
 * - answers preflights itself: an OPTIONS request with Origin and
 *   Access-Control-Request-Method gets `preflight_status` (204 by
 *   default; 200 for clients that want it), no body, and
 *   Access-Control-Allow-Origin / -Methods / -Headers / -Credentials /
 *   -Max-Age. Any other OPTIONS request there is answered the same way
 *   unless the application routed OPTIONS (or ANY) at that path;
 * - adds Access-Control-Allow-Origin, -Credentials and -Expose-Headers
 *   (and Vary: Origin when the answer depends on the Origin) to every
 *   response a handler sends there, 404 and 405 included. Responses wisp
 *   sends before a handler runs (400, 408, 413, 431...) carry none.
 *
 * Allowed origins: with `origins` NULL (or the single entry "*") every
 * origin is allowed. The value sent is then "*", except for a request
 * with an Origin when allow_credentials is set: browsers refuse "*" on a
 * credentialed response, so wisp echoes the request's Origin and adds
 * Vary: Origin. A request without Origin (a device, curl) gets "*" (which
 * is what the xiaozhi reference server sends everyone). With a list, an
 * Origin that matches an entry (ASCII case-insensitive, whole string) is
 * echoed with Vary: Origin; any other Origin gets no CORS headers at all
 * (the preflight still gets its status, so the browser reports the
 * refusal), and so does a request without Origin.
 *
 * The xiaozhi reference configuration (PROTOCOL.md §2.3):
 *
 *     wisp_cors_opts_t o = {0};
 *     o.allow_methods = "GET, POST, OPTIONS";
 *     o.allow_headers = "client-id, content-type, device-id, authorization";
 *     o.allow_credentials = 1;
 *     o.preflight_status = 200;
 *     wisp_server_cors(srv, "/xiaozhi/ota", &o);
 */
#ifndef WISP_CORS_H
#define WISP_CORS_H

#include "common.h"
#include "server.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct wisp_cors_opts {
    /* Allowed origins, e.g. {"https://app.example", NULL}: a
     * NULL-terminated list of serialized origins (scheme://host[:port],
     * or "null"). NULL or {"*", NULL}: every origin. */
    const char *const *origins;
    /* Access-Control-Allow-Methods of preflights. NULL:
     * "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS". */
    const char *allow_methods;
    /* Access-Control-Allow-Headers of preflights. NULL: the request's
     * Access-Control-Request-Headers echoed (with Vary on it). */
    const char *allow_headers;
    /* Access-Control-Expose-Headers of actual responses. NULL: none. */
    const char *expose_headers;
    /* Send Access-Control-Allow-Credentials: true (see above for "*"). */
    int allow_credentials;
    /* Access-Control-Max-Age of preflights, in seconds; 0: not sent. */
    uint32_t max_age_s;
    /* Status of the preflight answer: 200..299; 0 means 204. */
    int preflight_status;
} wisp_cors_opts_t;

/* Enable CORS for `prefix` ("/api" covers "/api" and "/api/..." but not
 * "/apix"; "/" covers everything). When prefixes nest, the longest that
 * matches a path applies. `prefix`, `opts` and every string they point to
 * are copied. `opts` NULL means every field zero (any origin, no
 * credentials, 204).
 * Thread: the configuring thread, before wisp_server_listen.
 * Returns 0, -EINVAL (`srv` NULL, prefix not starting with '/', a string
 * with a CR or LF, an origins list that is empty or mixes "*" with other
 * entries, preflight_status out of range), -EEXIST (the same prefix
 * twice), -ENOMEM, WISP_ESTATE (after listen). */
WISP_API int wisp_server_cors(wisp_server_t *srv, const char *prefix,
                              const wisp_cors_opts_t *opts);

#ifdef __cplusplus
}
#endif
#endif
