/* Internal: radix-tree router over method + path. */
#ifndef WISP_HTTP_ROUTER_H
#define WISP_HTTP_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#define WISP__MAX_PARAMS 16

typedef struct wisp__router wisp__router;

typedef struct wisp__param {
    const char *name;
    const char *value; /* points into the matched path */
    uint32_t name_len;
    uint32_t value_len;
} wisp__param;

typedef struct wisp__match {
    void *route;             /* what was registered */
    uint32_t nparams;
    uint32_t allow_mask;     /* on 405: bit m set for each method m
                                routed at this path (GET implies HEAD) */
    wisp__param params[WISP__MAX_PARAMS];
} wisp__match;

wisp__router *wisp__router_create(void);
void wisp__router_destroy(wisp__router *r);

/* Register `route` (opaque, not owned) for `method` (0..WISP_METHOD_COUNT-1
 * or WISP_METHOD_ANY) at `pattern`: '/'-separated; ":name" matches one
 * non-empty segment; "*name" (or "*"), last, matches the rest (maybe
 * empty). Returns 0, -EINVAL (pattern not starting with '/', empty or
 * duplicate parameter name, '*' not last, more than WISP__MAX_PARAMS
 * parameters, a parameter name that differs from another route's at the
 * same place), -EEXIST, -ENOMEM. */
int wisp__router_add(wisp__router *r, int method, const char *pattern,
                     void *route);

/* Match `path` (decoded, not NUL-terminated) for `method`.
 * Static segments are tried before parameters, parameters before
 * wildcards, with backtracking. HEAD falls back to GET, then any method
 * to WISP_METHOD_ANY.
 * Returns 0 with m->route and m->params filled, -ENOENT when no pattern
 * matches the path (404), or -EPERM when patterns match but none for the
 * method (405; m->allow_mask filled). */
int wisp__router_match(const wisp__router *r, int method, const char *path,
                       size_t len, wisp__match *m);

#endif
