/* libFuzzer target for src/http/router.c (route registration and
 * matching). Built by test/fuzz/meson.build; docs/fuzzing.md has the
 * commands.
 *
 * Input: lines separated by LF. Byte 0 picks the method to match; every
 * following line but the last is a route: its first byte picks the
 * method (or ANY), the rest is the pattern; the last line is the path to
 * match. Besides crashes and sanitizer reports it checks, trapping when
 * one fails, against a slow reference matcher written here from the
 * pattern rules in router.h:
 *   - wisp__router_add answers 0, -EINVAL, -EEXIST or -ENOMEM, and
 *     -EINVAL for every pattern the reference finds malformed;
 *   - a match (0) is a registered route for the method (or GET for HEAD,
 *     or ANY) whose pattern matches the path by the reference, and its
 *     parameters are, in order, slices of the path with the pattern's
 *     names: putting the values back into the pattern gives the path;
 *   - -EPERM comes only when some route matches the path but none for
 *     the method, -ENOENT only when no route matches the path at all.
 * A crash found here becomes a row in test/http/router_test.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "http/router.h"
#include "wisp/http.h"

#define MAX_ROUTES 32

typedef struct route {
    int method;
    char *pattern; /* NUL-terminated copy */
    int added;
} route;

typedef struct piece {
    int kind; /* 0 static, 1 ':' param, 2 '*' wildcard */
    const char *s;
    size_t n; /* static bytes, or the name's length */
} piece;

/* Split a pattern as router.h describes it: ':' and '*' open a capture
 * only right after a '/'; ":name" runs to the next '/', "*name" to the
 * end. Returns the number of pieces, or -1 when the pattern is one the
 * header says -EINVAL to (not starting with '/', empty parameter name,
 * '*' not last, more than WISP__MAX_PARAMS captures, duplicate names). */
static int split(const char *p, piece *out)
{
    size_t len = strlen(p), run = 0, i = 1;
    int n = 0, caps = 0;
    if (len == 0 || p[0] != '/')
        return -1;
    while (i < len) {
        if (p[i - 1] != '/' || (p[i] != ':' && p[i] != '*')) {
            i++;
            continue;
        }
        size_t end = i + 1;
        while (end < len && p[end] != '/')
            end++;
        if (p[i] == ':' && end == i + 1)
            return -1;
        if (p[i] == '*' && end != len)
            return -1;
        if (++caps > WISP__MAX_PARAMS)
            return -1;
        for (int k = 0; k < n; k++)
            if (out[k].kind && out[k].n == end - i - 1 && end - i - 1 &&
                memcmp(out[k].s, p + i + 1, end - i - 1) == 0)
                return -1;
        out[n++] = (piece){0, p + run, i - run};
        out[n++] = (piece){p[i] == ':' ? 1 : 2, p + i + 1, end - i - 1};
        run = i = end;
    }
    if (run < len)
        out[n++] = (piece){0, p + run, len - run};
    return n;
}

/* Does `path` match the pieces? A parameter takes one non-empty segment
 * (up to the next '/'), a wildcard the rest. */
static int ref_match(const piece *pc, int n, const char *path, size_t len)
{
    size_t i = 0;
    for (int k = 0; k < n; k++) {
        if (pc[k].kind == 0) {
            if (len - i < pc[k].n || memcmp(path + i, pc[k].s, pc[k].n))
                return 0;
            i += pc[k].n;
        } else if (pc[k].kind == 1) {
            size_t j = i;
            while (j < len && path[j] != '/')
                j++;
            if (j == i)
                return 0;
            i = j;
        } else {
            i = len;
        }
    }
    return i == len;
}

static int method_fits(int route_m, int m, const route *rs, int nr,
                       const char *pattern)
{
    if (route_m == m || route_m == WISP_METHOD_ANY)
        return 1;
    if (m != WISP_METHOD_HEAD || route_m != WISP_METHOD_GET)
        return 0;
    /* GET serves HEAD unless a HEAD route sits on the same pattern. */
    for (int k = 0; k < nr; k++)
        if (rs[k].added && rs[k].method == WISP_METHOD_HEAD &&
            strcmp(rs[k].pattern, pattern) == 0)
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 8192)
        return 0;
    int method = data[0] % WISP_METHOD_COUNT;
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    route rs[MAX_ROUTES];
    int nr = 0;
    wisp__router *r = wisp__router_create();
    if (!r)
        return 0;

    /* Every line but the last is a route. */
    const char *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) && nr < MAX_ROUTES) {
        size_t l = (size_t)(nl - p);
        int m = l ? (uint8_t)p[0] % (WISP_METHOD_COUNT + 1) : 0;
        if (m == WISP_METHOD_COUNT)
            m = WISP_METHOD_ANY;
        char *pat = malloc(l + 1);
        REQUIRE(pat);
        if (l)
            memcpy(pat, p + 1, l - 1);
        pat[l ? l - 1 : 0] = 0;
        piece pc[2 * WISP__MAX_PARAMS + 2];
        int ok = split(pat, pc) >= 0;
        int a = wisp__router_add(r, m, pat, &rs[nr]);
        REQUIRE(a == 0 || a == -EINVAL || a == -EEXIST || a == -ENOMEM);
        if (!ok)
            REQUIRE(a == -EINVAL);
        rs[nr++] = (route){m, pat, a == 0};
        p = nl + 1;
    }

    /* The path, in an exact heap block. */
    size_t plen = (size_t)(end - p);
    char *path = malloc(plen ? plen : 1);
    REQUIRE(path);
    memcpy(path, p, plen);
    wisp__match mt;
    int res = wisp__router_match(r, method, path, plen, &mt);
    REQUIRE(res == 0 || res == -ENOENT || res == -EPERM);

    int any_path = 0, any_method = 0;
    for (int k = 0; k < nr; k++) {
        piece pc[2 * WISP__MAX_PARAMS + 2];
        if (!rs[k].added)
            continue;
        int n = split(rs[k].pattern, pc);
        REQUIRE(n >= 0);
        if (!ref_match(pc, n, path, plen))
            continue;
        any_path = 1;
        if (method_fits(rs[k].method, method, rs, nr, rs[k].pattern))
            any_method = 1;
    }
    REQUIRE(any_method == (res == 0));
    REQUIRE(res != -EPERM || any_path);
    REQUIRE(res != -ENOENT || !any_path);

    if (res == 0) {
        const route *hit = mt.route;
        REQUIRE(hit >= rs && hit < rs + nr && hit->added);
        REQUIRE(method_fits(hit->method, method, rs, nr, hit->pattern));
        piece pc[2 * WISP__MAX_PARAMS + 2];
        int n = split(hit->pattern, pc);
        REQUIRE(ref_match(pc, n, path, plen));
        /* Put the values back into the pattern: the path comes out. */
        size_t at = 0;
        uint32_t np = 0;
        REQUIRE(mt.nparams <= WISP__MAX_PARAMS);
        for (int k = 0; k < n; k++) {
            if (pc[k].kind == 0) {
                REQUIRE(plen - at >= pc[k].n &&
                        memcmp(path + at, pc[k].s, pc[k].n) == 0);
                at += pc[k].n;
                continue;
            }
            REQUIRE(np < mt.nparams);
            const wisp__param *pr = &mt.params[np++];
            REQUIRE(pr->name_len == pc[k].n &&
                    memcmp(pr->name, pc[k].s, pc[k].n) == 0);
            REQUIRE(pr->value == path + at && pr->value_len <= plen - at);
            if (pc[k].kind == 1)
                REQUIRE(pr->value_len > 0 &&
                        !memchr(pr->value, '/', pr->value_len));
            at += pr->value_len;
        }
        REQUIRE(np == mt.nparams && at == plen);
    }

    wisp__router_destroy(r);
    for (int k = 0; k < nr; k++)
        free(rs[k].pattern);
    free(path);
    return 0;
}
