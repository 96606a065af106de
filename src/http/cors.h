/* Internal: CORS hooks called by the exchange (src/http/conn.c). */
#ifndef WISP_HTTP_CORS_H
#define WISP_HTTP_CORS_H

#include "http/http_int.h"

typedef struct wisp__cors wisp__cors;

/* The route that answers an OPTIONS request `req` itself, or NULL when the
 * request goes to routing as usual. `match_rc` is the router's answer for
 * the request (0, -ENOENT, -EPERM). Called only when conf->cors is set. */
const wisp__route *wisp__cors_route(const wisp__http_conf *conf,
                                    wisp_req_t *req, int match_rc);

/* Add the CORS headers of an actual response to `res` before its handler
 * runs (nothing when the path has no CORS or the origin is not allowed).
 * Called only when conf->cors is set. */
void wisp__cors_actual(const wisp__http_conf *conf, wisp_req_t *req,
                       wisp_res_t *res, const wisp__route *route);

void wisp__cors_free(wisp__cors *list);

#endif
