/* wisp — cookies (RFC 6265): read the request's Cookie header, send
 * Set-Cookie with attributes.
 *
 * Reading is lenient, as RFC 6265 §5.4 lets servers be: the Cookie
 * field(s) are split at ';', each pair trimmed of spaces and split at its
 * first '='; a pair without '=' or with an empty name is skipped, and a
 * value in double quotes is returned without them. Nothing is decoded
 * (cookie values carry no escapes; percent-encode your own if needed).
 *
 * Writing is strict (RFC 6265 §4.1.1, with the SameSite attribute and
 * the name prefixes of RFC 6265bis): a name must be a token; a value
 * cookie-octets (no space, '"', ',', ';', '\\', controls), optionally in
 * double quotes; Path any visible text without ';'; Domain a host name
 * (letters, digits, '-', '.'); SameSite=None requires Secure; a
 * "__Secure-" name requires Secure; a "__Host-" name requires Secure,
 * Path "/" and no Domain; name and value together at most 4096 bytes.
 *
 * Thread: the response's loop (as every wisp_res_* call); the reading
 * functions are pure over the request, on its loop. */
#ifndef WISP_COOKIE_H
#define WISP_COOKIE_H

#include <time.h>

#include "common.h"
#include "http.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Position in the request's Cookie fields. Layout public so it can live
 * on the stack; the fields are private. */
typedef struct wisp_cookie_iter {
    const wisp_req_t *req;
    size_t field;      /* next header index to look at */
    const char *p;     /* inside the current Cookie field */
    const char *end;
} wisp_cookie_iter_t;

WISP_API void wisp_cookie_iter_init(wisp_cookie_iter_t *it,
                                    const wisp_req_t *req);
/* The next cookie: returns 1 with *name and *value (pointing into the
 * request; value may be empty), 0 at the end. Either may be NULL. */
WISP_API int wisp_cookie_next(wisp_cookie_iter_t *it, wisp_str_t *name,
                              wisp_str_t *value);

/* Copy the value of the first cookie called `name` into out[0..cap) with
 * a NUL. Returns its length, -ENOENT (no such cookie), -ENOBUFS (cap too
 * small: nothing useful in out), -EINVAL (name NULL, or out NULL with
 * cap > 0). */
WISP_API ssize_t wisp_req_cookie(const wisp_req_t *req, const char *name,
                                 char *out, size_t cap);

typedef enum wisp_same_site {
    WISP_SAME_SITE_UNSET = 0, /* attribute not sent */
    WISP_SAME_SITE_LAX,
    WISP_SAME_SITE_STRICT,
    WISP_SAME_SITE_NONE,      /* requires `secure` */
} wisp_same_site_t;

typedef struct wisp_cookie_opts {
    int64_t max_age_s;   /* > 0: Max-Age; 0: not sent; < 0: -EINVAL */
    time_t expires;      /* > 0: Expires (IMF-fixdate); 0: not sent */
    const char *path;    /* NULL: not sent */
    const char *domain;  /* NULL: not sent */
    int secure;
    int http_only;
    wisp_same_site_t same_site;
} wisp_cookie_opts_t;

/* Add a Set-Cookie field for `name`=`value` with the attributes of
 * `opts` (NULL: none). Returns 0; -EINVAL when the name, value or an
 * attribute breaks the rules above (nothing added); -ENOSPC when name
 * and value exceed 4096 bytes; otherwise what wisp_res_header returns. */
WISP_API int wisp_res_set_cookie(wisp_res_t *res, const char *name,
                                 const char *value,
                                 const wisp_cookie_opts_t *opts);

/* Ask the client to delete cookie `name`: an empty value with Max-Age=0
 * and an Expires in 1970 (opts' max_age_s and expires are ignored; path
 * and domain must be those the cookie was set with). Returns as
 * wisp_res_set_cookie. */
WISP_API int wisp_res_clear_cookie(wisp_res_t *res, const char *name,
                                   const wisp_cookie_opts_t *opts);

#ifdef __cplusplus
}
#endif
#endif
