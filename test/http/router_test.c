/* Tests for src/http/router.c: route tables with rows of (method, path,
 * expected result, route, parameters), pattern errors, limits, 1000
 * routes, and a randomised comparison against a naive matcher that ranks
 * every pattern by priority. Each path is matched from a copy that ends
 * just before an unreadable page, so any read past the path crashes. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "http/router.h"
#include "wisp/http.h"

#define GET WISP_METHOD_GET
#define HEAD WISP_METHOD_HEAD
#define POST WISP_METHOD_POST
#define PUT WISP_METHOD_PUT
#define DELETE WISP_METHOD_DELETE
#define OPTIONS WISP_METHOD_OPTIONS
#define PATCH WISP_METHOD_PATCH
#define ANY WISP_METHOD_ANY
#define B(m) (1u << (m))
#define ALL ((1u << WISP_METHOD_COUNT) - 1)

static const char *method_str(int m)
{
    static const char *names[] = {"GET",     "HEAD",    "POST",
                                  "PUT",     "DELETE",  "CONNECT",
                                  "OPTIONS", "TRACE",   "PATCH"};
    if (m == ANY)
        return "ANY";
    return (m >= 0 && m < WISP_METHOD_COUNT) ? names[m] : "?";
}

typedef struct route_def {
    int method;
    const char *pattern;
} route_def;

typedef struct row {
    const char *name;
    int method;
    const char *path;
    int rc;
    const char *route;  /* "METHOD pattern" of the expected route */
    uint32_t allow;     /* checked on -EPERM, and on 0 when not 0 */
    const char *params[9]; /* name, value, ..., NULL */
} row;

typedef struct suite {
    const char *name;
    const route_def *routes;
    size_t nroutes;
    const row *rows;
    size_t nrows;
} suite;

/* Match `path` from a guard copy. */
static int match_guarded(const wisp__router *r, int method, const char *path,
                         size_t len, wisp__match *m)
{
    t_guard g = t_guard_copy(path, len);
    memset(m, 0xa5, sizeof *m);
    int rc = wisp__router_match(r, method, g.data, len, m);
    /* Values must point into the path: rebase them onto `path` so the
     * checks can read them after the copy is gone. */
    if (rc == 0) {
        for (uint32_t k = 0; k < m->nparams && k < WISP__MAX_PARAMS; k++) {
            const char *v = m->params[k].value;
            CHECK_MSG(v >= g.data && v + m->params[k].value_len <= g.data + len,
                      "param %u outside the path", k);
            m->params[k].value = path + (v - g.data);
        }
    }
    t_guard_free(&g);
    return rc;
}

static void check_row(const wisp__router *r, const row *w)
{
    wisp__match m;
    size_t len = strlen(w->path);
    int rc = match_guarded(r, w->method, w->path, len, &m);
    CHECK_MSG(rc == w->rc, "%s: %s %s: rc %d, want %d", w->name,
              method_str(w->method), w->path, rc, w->rc);
    if (rc != w->rc)
        return;
    if (rc != 0) {
        CHECK_MSG(m.route == NULL && m.nparams == 0, "%s: leftovers", w->name);
        uint32_t want = rc == -EPERM ? w->allow : 0;
        CHECK_MSG(m.allow_mask == want, "%s: allow 0x%x, want 0x%x", w->name,
                  m.allow_mask, want);
        return;
    }
    const route_def *got = m.route;
    char desc[256];
    snprintf(desc, sizeof desc, "%s %s", method_str(got->method),
             got->pattern);
    CHECK_MSG(strcmp(desc, w->route) == 0, "%s: route \"%s\", want \"%s\"",
              w->name, desc, w->route);
    if (w->allow)
        CHECK_MSG(m.allow_mask == w->allow, "%s: allow 0x%x, want 0x%x",
                  w->name, m.allow_mask, w->allow);
    uint32_t want_n = 0;
    while (w->params[2 * want_n])
        want_n++;
    CHECK_MSG(m.nparams == want_n, "%s: %u params, want %u", w->name,
              m.nparams, want_n);
    for (uint32_t k = 0; k < want_n && k < m.nparams; k++) {
        const wisp__param *p = &m.params[k];
        CHECK_STRN(p->name, p->name_len, w->params[2 * k]);
        CHECK_MSG(p->name[p->name_len] == '\0', "%s: name not terminated",
                  w->name);
        CHECK_STRN(p->value, p->value_len, w->params[2 * k + 1]);
    }
}

static void run_suite(const suite *s)
{
    wisp__router *r = wisp__router_create();
    CHECK(r != NULL);
    for (size_t i = 0; i < s->nroutes; i++) {
        const route_def *d = &s->routes[i];
        int rc = wisp__router_add(r, d->method, d->pattern, (void *)d);
        CHECK_MSG(rc == 0, "%s: add %s %s: %d", s->name, method_str(d->method),
                  d->pattern, rc);
    }
    for (size_t i = 0; i < s->nrows; i++)
        check_row(r, &s->rows[i]);
    wisp__router_destroy(r);
}

#define SUITE(n, routes, rows)                                              \
    {n, routes, sizeof routes / sizeof *routes, rows, sizeof rows / sizeof *rows}

/* ------------------------------------------------------------- basics */

static const route_def basic_routes[] = {
    {GET, "/"},
    {GET, "/use"},
    {GET, "/user"},
    {GET, "/users"},
    {GET, "/users/new"},
    {GET, "/users/:id"},
    {PUT, "/users/:id"},
    {GET, "/users/:id/posts/:post"},
    {DELETE, "/users/:id/posts/:post"},
    {GET, "/static/*path"},
    {POST, "/items"},
    {GET, "/items"},
    {ANY, "/any"},
    {GET, "/any"},
    {HEAD, "/head"},
    {GET, "/head"},
    {GET, "/geton"},
    {POST, "/poston"},
    {GET, "/a"},
    {GET, "/a/"},
    {GET, "/p/:x"},
    {POST, "/p/:x/"},
    {GET, "/v1/items:batchGet"},
    {GET, "/lit/a*b"},
    {GET, "/caf\xc3\xa9"},
    {GET, "/files/:name"},
    {GET, "/deep/:a/:b/:c/:d"},
    {GET, "/x/abcd/e"},
    {GET, "/x/abc/:y"},
};

static const row basic_rows[] = {
    {"root matches /", GET, "/", 0, "GET /", 0, {NULL}},
    {"empty path matches nothing", GET, "", -ENOENT, NULL, 0, {NULL}},
    {"double slash is not root", GET, "//", -ENOENT, NULL, 0, {NULL}},
    {"split prefix /use", GET, "/use", 0, "GET /use", 0, {NULL}},
    {"split prefix /user", GET, "/user", 0, "GET /user", 0, {NULL}},
    {"split prefix /users", GET, "/users", 0, "GET /users", 0, {NULL}},
    {"inner split node has no route", GET, "/us", -ENOENT, NULL, 0, {NULL}},
    {"longer than any static", GET, "/userss", -ENOENT, NULL, 0, {NULL}},
    {"diverges inside a label", GET, "/usex", -ENOENT, NULL, 0, {NULL}},
    {"static child before param", GET, "/users/new", 0, "GET /users/new", 0,
     {NULL}},
    {"param takes a segment", GET, "/users/42", 0, "GET /users/:id",
     B(GET) | B(HEAD) | B(PUT), {"id", "42"}},
    {"param takes a prefix of a static", GET, "/users/ne", 0,
     "GET /users/:id", 0, {"id", "ne"}},
    {"param takes an extension of a static", GET, "/users/newer", 0,
     "GET /users/:id", 0, {"id", "newer"}},
    {"param value may look like a pattern", GET, "/users/:id", 0,
     "GET /users/:id", 0, {"id", ":id"}},
    {"no route below static child", GET, "/users/new/", -ENOENT, NULL, 0,
     {NULL}},
    {"param does not match empty segment", GET, "/users/", -ENOENT, NULL, 0,
     {NULL}},
    {"method slot on param node", PUT, "/users/42", 0, "PUT /users/:id", 0,
     {"id", "42"}},
    {"405 lists the node's methods", PATCH, "/users/42", -EPERM, NULL,
     B(GET) | B(HEAD) | B(PUT), {NULL}},
    {"HEAD falls back to GET on param", HEAD, "/users/42", 0,
     "GET /users/:id", 0, {"id", "42"}},
    {"two params", GET, "/users/7/posts/9", 0, "GET /users/:id/posts/:post", 0,
     {"id", "7", "post", "9"}},
    {"two params, other method", DELETE, "/users/7/posts/9", 0,
     "DELETE /users/:id/posts/:post", 0, {"id", "7", "post", "9"}},
    {"empty first param", GET, "/users//posts/9", -ENOENT, NULL, 0, {NULL}},
    {"empty last param", GET, "/users/7/posts/", -ENOENT, NULL, 0, {NULL}},
    {"param stops at slash", GET, "/users/7/posts/9/", -ENOENT, NULL, 0,
     {NULL}},
    {"four params", GET, "/deep/1/22/333/4444", 0, "GET /deep/:a/:b/:c/:d", 0,
     {"a", "1", "b", "22", "c", "333", "d", "4444"}},
    {"wildcard with empty rest", GET, "/static/", 0, "GET /static/*path", 0,
     {"path", ""}},
    {"wildcard with one segment", GET, "/static/a.css", 0, "GET /static/*path",
     0, {"path", "a.css"}},
    {"wildcard with deep rest", GET, "/static/css/v2/site.css", 0,
     "GET /static/*path", 0, {"path", "css/v2/site.css"}},
    {"wildcard keeps odd slashes", GET, "/static/a//b/", 0, "GET /static/*path",
     0, {"path", "a//b/"}},
    {"wildcard needs its slash", GET, "/static", -ENOENT, NULL, 0, {NULL}},
    {"wildcard 405", POST, "/static/x", -EPERM, NULL, B(GET) | B(HEAD), {NULL}},
    {"GET and POST on one node", POST, "/items", 0, "POST /items", 0, {NULL}},
    {"405 with GET and POST", DELETE, "/items", -EPERM, NULL,
     B(GET) | B(HEAD) | B(POST), {NULL}},
    {"HEAD falls back to GET", HEAD, "/items", 0, "GET /items", 0, {NULL}},
    {"ANY takes other methods", OPTIONS, "/any", 0, "ANY /any", ALL, {NULL}},
    {"exact method beats ANY", GET, "/any", 0, "GET /any", 0, {NULL}},
    {"HEAD prefers GET to ANY", HEAD, "/any", 0, "GET /any", 0, {NULL}},
    {"ANY as a match method", ANY, "/any", 0, "ANY /any", 0, {NULL}},
    {"unknown method takes ANY", 42, "/any", 0, "ANY /any", 0, {NULL}},
    {"unknown method gets 405", 42, "/items", -EPERM, NULL,
     B(GET) | B(HEAD) | B(POST), {NULL}},
    {"explicit HEAD beats GET", HEAD, "/head", 0, "HEAD /head", 0, {NULL}},
    {"GET beside explicit HEAD", GET, "/head", 0, "GET /head", 0, {NULL}},
    {"HEAD on GET-only node", HEAD, "/geton", 0, "GET /geton", 0, {NULL}},
    {"HEAD on POST-only node is 405", HEAD, "/poston", -EPERM, NULL, B(POST),
     {NULL}},
    {"no trailing slash", GET, "/a", 0, "GET /a", 0, {NULL}},
    {"trailing slash is another route", GET, "/a/", 0, "GET /a/", 0, {NULL}},
    {"param without trailing slash", GET, "/p/1", 0, "GET /p/:x", 0,
     {"x", "1"}},
    {"param with trailing slash", POST, "/p/1/", 0, "POST /p/:x/", 0,
     {"x", "1"}},
    {"trailing slash route has its own methods", GET, "/p/1/", -EPERM, NULL,
     B(POST), {NULL}},
    {"no trailing slash route has its own methods", POST, "/p/1", -EPERM, NULL,
     B(GET) | B(HEAD), {NULL}},
    {"colon inside a segment is literal", GET, "/v1/items:batchGet", 0,
     "GET /v1/items:batchGet", 0, {NULL}},
    {"literal colon must match", GET, "/v1/items:other", -ENOENT, NULL, 0,
     {NULL}},
    {"star inside a segment is literal", GET, "/lit/a*b", 0, "GET /lit/a*b", 0,
     {NULL}},
    {"literal star is no wildcard", GET, "/lit/axb", -ENOENT, NULL, 0, {NULL}},
    {"UTF-8 static", GET, "/caf\xc3\xa9", 0, "GET /caf\xc3\xa9", 0, {NULL}},
    {"UTF-8 differing in last byte", GET, "/caf\xc3\xa8", -ENOENT, NULL, 0,
     {NULL}},
    {"percent is an ordinary byte", GET, "/files/a%2Fb", 0, "GET /files/:name",
     0, {"name", "a%2Fb"}},
    {"high and control bytes", GET, "/files/\xff\x01\x7f", 0,
     "GET /files/:name", 0, {"name", "\xff\x01\x7f"}},
    {"space and dots", GET, "/files/a b..", 0, "GET /files/:name", 0,
     {"name", "a b.."}},
    {"dot-dot is just a value", GET, "/files/..", 0, "GET /files/:name", 0,
     {"name", ".."}},
    {"static deep then param", GET, "/x/abc/q", 0, "GET /x/abc/:y", 0,
     {"y", "q"}},
    {"static through split", GET, "/x/abcd/e", 0, "GET /x/abcd/e", 0, {NULL}},
    {"no fallback into a sibling label", GET, "/x/abcd/f", -ENOENT, NULL, 0,
     {NULL}},
    {"not found at all", GET, "/nope", -ENOENT, NULL, 0, {NULL}},
    {"relative path", GET, "users", -ENOENT, NULL, 0, {NULL}},
};

/* ------------------------------------------------------- backtracking */

static const route_def back_routes[] = {
    {GET, "/a/b/c"},
    {GET, "/a/:x/d"},
    {GET, "/b/c/d/e"},
    {GET, "/b/:x/d/f"},
    {GET, "/b/*rest"},
    {GET, "/src/:file"},
    {GET, "/src/static/*p"},
    {GET, "/user/new"},
    {GET, "/user/:id/edit"},
    {POST, "/m/b"},
    {PUT, "/m/:x"},
    {DELETE, "/m/*r"},
    {GET, "/x/abcd/e"},
    {GET, "/x/abc/:y"},
    {GET, "/x/:z/f"},
    {POST, "/n/:a/b"},
    {GET, "/n/:a/*r"},
    {GET, "/o/:a/:b/c"},
    {GET, "/o/:a/*r"},
};

static const row back_rows[] = {
    {"static route", GET, "/a/b/c", 0, "GET /a/b/c", 0, {NULL}},
    {"static fails late, param matches", GET, "/a/b/d", 0, "GET /a/:x/d", 0,
     {"x", "b"}},
    {"neither matches", GET, "/a/b/e", -ENOENT, NULL, 0, {NULL}},
    {"param value longer than static", GET, "/a/bb/d", 0, "GET /a/:x/d", 0,
     {"x", "bb"}},
    {"deep static", GET, "/b/c/d/e", 0, "GET /b/c/d/e", 0, {NULL}},
    {"deep static fails, param", GET, "/b/c/d/f", 0, "GET /b/:x/d/f", 0,
     {"x", "c"}},
    {"static and param fail, wildcard", GET, "/b/c/d/g", 0, "GET /b/*rest", 0,
     {"rest", "c/d/g"}},
    {"wildcard after full static", GET, "/b/c/d/e/", 0, "GET /b/*rest", 0,
     {"rest", "c/d/e/"}},
    {"wildcard empty", GET, "/b/", 0, "GET /b/*rest", 0, {"rest", ""}},
    {"param when static is longer than the path", GET, "/src/static", 0,
     "GET /src/:file", 0, {"file", "static"}},
    {"static then wildcard empty", GET, "/src/static/", 0,
     "GET /src/static/*p", 0, {"p", ""}},
    {"param when static differs", GET, "/src/staticx", 0, "GET /src/:file", 0,
     {"file", "staticx"}},
    {"static then wildcard", GET, "/src/static/a/b", 0, "GET /src/static/*p", 0,
     {"p", "a/b"}},
    {"static leaf", GET, "/user/new", 0, "GET /user/new", 0, {NULL}},
    {"static leaf too short, param", GET, "/user/new/edit", 0,
     "GET /user/:id/edit", 0, {"id", "new"}},
    {"405 from the highest-priority node", GET, "/m/b", -EPERM, NULL, B(POST),
     {NULL}},
    {"method found on the param node", PUT, "/m/b", 0, "PUT /m/:x", 0,
     {"x", "b"}},
    {"method found on the wildcard node", DELETE, "/m/b", 0, "DELETE /m/*r", 0,
     {"r", "b"}},
    {"405 from wildcard only", GET, "/m/b/c", -EPERM, NULL, B(DELETE), {NULL}},
    {"405 from empty wildcard", GET, "/m/", -EPERM, NULL, B(DELETE), {NULL}},
    {"backtrack over a split label", GET, "/x/abcd/f", 0, "GET /x/:z/f", 0,
     {"z", "abcd"}},
    {"param under split label", GET, "/x/abc/q", 0, "GET /x/abc/:y", 0,
     {"y", "q"}},
    {"pops param, then wildcard", GET, "/n/1/b", 0, "GET /n/:a/*r", 0,
     {"a", "1", "r", "b"}},
    {"deeper node wins for its method", POST, "/n/1/b", 0, "POST /n/:a/b", 0,
     {"a", "1"}},
    {"pops two params, then wildcard", GET, "/o/1/2/d", 0, "GET /o/:a/*r", 0,
     {"a", "1", "r", "2/d"}},
    {"two params", GET, "/o/1/2/c", 0, "GET /o/:a/:b/c", 0,
     {"a", "1", "b", "2"}},
};

/* ---------------------------------------------------------- catch-all */

static const route_def catch_routes[] = {
    {GET, "/*"},
    {GET, "/api/v1/:res"},
    {ANY, "/health"},
};

static const row catch_rows[] = {
    {"bare star matches root", GET, "/", 0, "GET /*", 0, {"", ""}},
    {"bare star matches anything", GET, "/any/thing/", 0, "GET /*", 0,
     {"", "any/thing/"}},
    {"param before catch-all", GET, "/api/v1/users", 0, "GET /api/v1/:res", 0,
     {"res", "users"}},
    {"catch-all after param fails", GET, "/api/v1/users/1", 0, "GET /*", 0,
     {"", "api/v1/users/1"}},
    {"catch-all for empty param", GET, "/api/v1/", 0, "GET /*", 0,
     {"", "api/v1/"}},
    {"ANY before catch-all", DELETE, "/health", 0, "ANY /health", 0, {NULL}},
    {"catch-all beats nothing else", GET, "/healthz", 0, "GET /*", 0,
     {"", "healthz"}},
    {"catch-all 405", POST, "/x", -EPERM, NULL, B(GET) | B(HEAD), {NULL}},
    {"empty path", GET, "", -ENOENT, NULL, 0, {NULL}},
    {"no leading slash", GET, "x", -ENOENT, NULL, 0, {NULL}},
};

/* --------------------------------------------------------- add errors */

typedef struct add_row {
    const char *name;
    int method;
    const char *pattern;
    int rc;
} add_row;

static const add_row add_rows[] = {
    {"seed", GET, "/u/:id", 0},
    {"seed", GET, "/w/*rest", 0},
    {"seed", GET, "/s/x", 0},
    {"pattern without leading slash", GET, "u", -EINVAL},
    {"empty pattern", GET, "", -EINVAL},
    {"star not last", GET, "/a/*x/b", -EINVAL},
    {"bare star not last", GET, "/a/*/", -EINVAL},
    {"empty param name at end", GET, "/a/:", -EINVAL},
    {"empty param name in the middle", GET, "/a/:/b", -EINVAL},
    {"duplicate param name", GET, "/a/:x/:x", -EINVAL},
    {"param and wildcard share a name", GET, "/a/:x/*x", -EINVAL},
    {"param name differs from another route's", GET, "/u/:name", -EINVAL},
    {"param name differs, longer pattern", POST, "/u/:name/x", -EINVAL},
    {"wildcard name differs", GET, "/w/*path", -EINVAL},
    {"bare wildcard beside a named one", GET, "/w/*", -EINVAL},
    {"same method and pattern", GET, "/u/:id", -EEXIST},
    {"same static pattern", GET, "/s/x", -EEXIST},
    {"same wildcard pattern", GET, "/w/*rest", -EEXIST},
    {"other method, same pattern", POST, "/u/:id", 0},
    {"explicit HEAD beside GET", HEAD, "/s/x", 0},
    {"ANY beside GET", ANY, "/s/x", 0},
    {"ANY twice", ANY, "/s/x", -EEXIST},
    {"method past the table", WISP_METHOD_COUNT, "/m", -EINVAL},
    {"negative method", -1, "/m", -EINVAL},
    {"method just below ANY", 0xfe, "/m", -EINVAL},
    {"same param name deeper", GET, "/u/:id/more", 0},
    {"param beside a wildcard", GET, "/w/:seg", 0},
    {"literal colon inside a segment", GET, "/s/a:b", 0},
    {"literal star inside a segment", GET, "/s/a*b/c", 0},
    {"trailing slash is distinct", GET, "/s/x/", 0},
    {"failed add leaves no param name", GET, "/q/:a/*w/x", -EINVAL},
    {"so another name is free", GET, "/q/:b", 0},
    {"double slash pattern", GET, "/d//e", 0},
};

static void test_add_errors(void)
{
    wisp__router *r = wisp__router_create();
    static const route_def seed_id = {GET, "/u/:id"};
    for (size_t i = 0; i < sizeof add_rows / sizeof *add_rows; i++) {
        const add_row *a = &add_rows[i];
        int rc = wisp__router_add(r, a->method, a->pattern,
                                  i == 0 ? (void *)&seed_id : NULL);
        CHECK_MSG(rc == a->rc, "%s: %s %s: rc %d, want %d", a->name,
                  method_str(a->method), a->pattern, rc, a->rc);
    }
    CHECK_EQ_INT(wisp__router_add(r, GET, NULL, NULL), -EINVAL);
    CHECK_EQ_INT(wisp__router_add(NULL, GET, "/", NULL), -EINVAL);

    /* Failed adds changed nothing: the seed still matches as before. */
    wisp__match m;
    CHECK_EQ_INT(match_guarded(r, GET, "/u/5", 4, &m), 0);
    CHECK(m.route == &seed_id);
    CHECK_EQ_INT(m.nparams, 1);
    CHECK_STRN(m.params[0].name, m.params[0].name_len, "id");
    CHECK_EQ_INT(match_guarded(r, GET, "/u/name/x", 9, &m), -ENOENT);
    CHECK_EQ_INT(match_guarded(r, GET, "/a/1/1", 6, &m), -ENOENT);
    /* A NULL route is a route. */
    CHECK_EQ_INT(match_guarded(r, GET, "/s/x", 4, &m), 0);
    CHECK(m.route == NULL);
    CHECK_EQ_INT(m.allow_mask, ALL);
    CHECK_EQ_INT(match_guarded(r, GET, "/d//e", 5, &m), 0);
    CHECK_EQ_INT(match_guarded(r, GET, "/q/z", 4, &m), 0);
    CHECK_STRN(m.params[0].name, m.params[0].name_len, "b");
    wisp__router_destroy(r);
}

/* ------------------------------------------------------------- limits */

static void test_param_limit(void)
{
    wisp__router *r = wisp__router_create();
    char pat[512], path[512];
    size_t pl = 0, ql = 0;
    for (int k = 0; k < WISP__MAX_PARAMS; k++) {
        pl += (size_t)sprintf(pat + pl, "/:p%d", k);
        ql += (size_t)sprintf(path + ql, "/v%d", k);
    }
    static const route_def many = {GET, "16 params"};
    CHECK_EQ_INT(wisp__router_add(r, GET, pat, (void *)&many), 0);

    char over[600];
    snprintf(over, sizeof over, "%s/*rest", pat);
    CHECK_EQ_INT(wisp__router_add(r, GET, over, NULL), -EINVAL);
    snprintf(over, sizeof over, "%s/:p%d", pat, WISP__MAX_PARAMS);
    CHECK_EQ_INT(wisp__router_add(r, GET, over, NULL), -EINVAL);
    snprintf(over, sizeof over, "%s/static", pat);
    CHECK_EQ_INT(wisp__router_add(r, POST, over, NULL), 0);

    wisp__match m;
    CHECK_EQ_INT(match_guarded(r, GET, path, ql, &m), 0);
    CHECK(m.route == &many);
    CHECK_EQ_INT(m.nparams, WISP__MAX_PARAMS);
    for (int k = 0; k < WISP__MAX_PARAMS; k++) {
        char n[8], v[8];
        snprintf(n, sizeof n, "p%d", k);
        snprintf(v, sizeof v, "v%d", k);
        CHECK_STRN(m.params[k].name, m.params[k].name_len, n);
        CHECK_STRN(m.params[k].value, m.params[k].value_len, v);
    }
    /* One more segment than params: every branch is tried and undone. */
    memcpy(path + ql, "/x", 3);
    CHECK_EQ_INT(match_guarded(r, GET, path, ql + 2, &m), -ENOENT);
    CHECK_EQ_INT(m.nparams, 0);
    wisp__router_destroy(r);
}

static void test_long_paths(void)
{
    wisp__router *r = wisp__router_create();
    /* A 64 KiB static pattern, built to share a long prefix with a second
     * one so the split happens deep inside a label. */
    size_t n = 65536;
    char *a = malloc(n + 1), *b = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        a[i] = (i % 8 == 0) ? '/' : (char)('a' + i % 26);
    a[n] = '\0';
    memcpy(b, a, n + 1);
    b[n - 3] = '#';
    static const route_def ra = {GET, "long a"}, rb = {GET, "long b"},
                           rw = {GET, "wild"}, rp = {GET, "param"};
    CHECK_EQ_INT(wisp__router_add(r, GET, a, (void *)&ra), 0);
    CHECK_EQ_INT(wisp__router_add(r, GET, b, (void *)&rb), 0);
    CHECK_EQ_INT(wisp__router_add(r, GET, "/*rest", (void *)&rw), 0);
    CHECK_EQ_INT(wisp__router_add(r, GET, "/k/:x", (void *)&rp), 0);

    wisp__match m;
    CHECK_EQ_INT(match_guarded(r, GET, a, n, &m), 0);
    CHECK(m.route == &ra);
    CHECK_EQ_INT(match_guarded(r, GET, b, n, &m), 0);
    CHECK(m.route == &rb);
    /* The same bytes minus the last: falls back to the wildcard. */
    CHECK_EQ_INT(match_guarded(r, GET, a, n - 1, &m), 0);
    CHECK(m.route == &rw);
    CHECK_EQ_INT(m.params[0].value_len, n - 2);

    /* 1 MiB of one-byte segments under a param and a wildcard. */
    size_t big = 1u << 20;
    char *p = malloc(big);
    for (size_t i = 0; i < big; i++)
        p[i] = (i % 2 == 0) ? '/' : 'k';
    CHECK_EQ_INT(match_guarded(r, GET, p, big, &m), 0);
    CHECK(m.route == &rw);
    CHECK_EQ_INT(m.params[0].value_len, big - 1);
    CHECK_EQ_INT(match_guarded(r, GET, p, 4, &m), 0);
    CHECK(m.route == &rp);
    CHECK_STRN(m.params[0].value, m.params[0].value_len, "k");
    /* A long single segment as a param value. */
    memset(p + 3, 'v', big - 3);
    CHECK_EQ_INT(match_guarded(r, GET, p, big, &m), 0);
    CHECK(m.route == &rp);
    CHECK_EQ_INT(m.params[0].value_len, big - 3);
    free(p);
    free(a);
    free(b);
    wisp__router_destroy(r);

    /* A chain of 3000 nested routes, one byte each: the tree is 3000 deep,
     * destroy must not recurse. */
    r = wisp__router_create();
    char *pat = malloc(3002);
    pat[0] = '/';
    int bad = 0;
    for (int i = 1; i <= 3000; i++) {
        pat[i] = (char)('a' + i % 3);
        pat[i + 1] = '\0';
        bad += wisp__router_add(r, GET, pat, (void *)(uintptr_t)i) != 0;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(match_guarded(r, GET, pat, 3001, &m), 0);
    CHECK(m.route == (void *)(uintptr_t)3000);
    CHECK_EQ_INT(match_guarded(r, GET, pat, 1501, &m), 0);
    CHECK(m.route == (void *)(uintptr_t)1500);
    free(pat);
    wisp__router_destroy(r);
}

/* A decoded path is not NUL-terminated and the router never looks for a
 * NUL: one inside is an ordinary byte (the parser refuses them anyway). */
static void test_embedded_nul(void)
{
    wisp__router *r = wisp__router_create();
    static const route_def rf = {GET, "/f/:name"};
    CHECK_EQ_INT(wisp__router_add(r, GET, "/f/:name", (void *)&rf), 0);
    wisp__match m;
    CHECK_EQ_INT(match_guarded(r, GET, "/f/a\0b", 6, &m), 0);
    CHECK(m.route == &rf);
    CHECK_EQ_INT(m.params[0].value_len, 3);
    CHECK(memcmp(m.params[0].value, "a\0b", 3) == 0);
    CHECK_EQ_INT(match_guarded(r, GET, "/f\0a", 4, &m), -ENOENT);
    CHECK_EQ_INT(wisp__router_match(r, GET, NULL, 0, &m), -ENOENT);
    wisp__router_destroy(r);
}

/* --------------------------------------------------------- 1000 routes */

static int route_path(int i, char *pat, char *path, const char **pname,
                      const char **pval)
{
    static char val[32];
    switch (i % 4) {
    case 0:
        sprintf(pat, "/r%d", i);
        sprintf(path, "/r%d", i);
        *pname = NULL;
        break;
    case 1:
        sprintf(pat, "/r%d/:id", i);
        sprintf(path, "/r%d/v%d", i, i);
        sprintf(val, "v%d", i);
        *pname = "id";
        break;
    case 2:
        sprintf(pat, "/r%d/x/:a", i);
        sprintf(path, "/r%d/x/%d", i, i * 7);
        sprintf(val, "%d", i * 7);
        *pname = "a";
        break;
    default:
        sprintf(pat, "/g/%d/*rest", i);
        sprintf(path, "/g/%d/d/%d/", i, i);
        sprintf(val, "d/%d/", i);
        *pname = "rest";
        break;
    }
    *pval = val;
    return (int)strlen(path);
}

static void test_many_routes(void)
{
    enum { N = 1000 };
    static const int methods[] = {GET, POST, PUT, DELETE, ANY};
    /* Insert in three orders; the tree shape differs, results must not. */
    for (int order = 0; order < 3; order++) {
        wisp__router *r = wisp__router_create();
        int bad = 0;
        uint32_t seed = 12345;
        int perm[N];
        for (int i = 0; i < N; i++)
            perm[i] = order == 1 ? N - 1 - i : i;
        if (order == 2) {
            for (int i = N - 1; i > 0; i--) {
                seed = seed * 1103515245u + 12345u;
                int j = (int)((seed >> 8) % (uint32_t)(i + 1));
                int t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
        }
        for (int k = 0; k < N; k++) {
            int i = perm[k];
            char pat[64], path[64];
            const char *pn, *pv;
            route_path(i, pat, path, &pn, &pv);
            if (wisp__router_add(r, methods[i % 5], pat,
                                 (void *)(uintptr_t)(i + 1)) != 0)
                bad++;
        }
        CHECK_EQ_INT(bad, 0);
        for (int i = 0; i < N; i++) {
            char pat[64], path[64];
            const char *pn, *pv;
            int len = route_path(i, pat, path, &pn, &pv);
            int method = methods[i % 5] == ANY ? PATCH : methods[i % 5];
            wisp__match m;
            int rc = match_guarded(r, method, path, (size_t)len, &m);
            if (rc != 0 || m.route != (void *)(uintptr_t)(i + 1) ||
                m.nparams != (pn ? 1u : 0u) ||
                (pn && (m.params[0].name_len != strlen(pn) ||
                        memcmp(m.params[0].name, pn, strlen(pn)) ||
                        m.params[0].value_len != strlen(pv) ||
                        memcmp(m.params[0].value, pv, strlen(pv))))) {
                bad++;
                fprintf(stderr, "order %d: route %d (%s) path %s: rc %d\n",
                        order, i, pat, path, rc);
            }
            /* A wrong method on a non-ANY route is a 405. */
            if (methods[i % 5] != ANY) {
                rc = match_guarded(r, OPTIONS, path, (size_t)len, &m);
                uint32_t want = B(methods[i % 5]) |
                                (methods[i % 5] == GET ? B(HEAD) : 0);
                if (rc != -EPERM || m.allow_mask != want)
                    bad++;
            }
        }
        CHECK_EQ_INT(bad, 0);
        wisp__match m;
        CHECK_EQ_INT(match_guarded(r, GET, "/r1000", 6, &m), -ENOENT);
        CHECK_EQ_INT(match_guarded(r, GET, "/g/1000/", 8, &m), -ENOENT);
        wisp__router_destroy(r);
    }
}

/* ---------------------------------------------- randomised vs reference */

/* A naive matcher: whether `pat` matches path, with its captures. */
static int ref_match(const char *pat, const char *path, size_t len,
                     wisp__param *caps)
{
    size_t i = 0;
    int nc = 0;
    for (const char *p = pat; *p;) {
        if (p > pat && p[-1] == '/' && (*p == ':' || *p == '*')) {
            const char *name = p + 1, *e = name;
            while (*e && *e != '/')
                e++;
            size_t v = i;
            if (*p == ':') {
                while (v < len && path[v] != '/')
                    v++;
                if (v == i)
                    return -1;
            } else {
                v = len;
            }
            caps[nc++] = (wisp__param){name, path + i, (uint32_t)(e - name),
                                       (uint32_t)(v - i)};
            i = v;
            p = e;
            continue;
        }
        if (i >= len || path[i] != *p)
            return -1;
        i++;
        p++;
    }
    return i == len ? nc : -1;
}

/* Token rank at pattern position p: end < byte < param < wildcard, the
 * order in which the tree tries them. */
static int tok_rank(const char *pat, const char *p)
{
    if (!*p)
        return 0;
    if (p > pat && p[-1] == '/' && *p == ':')
        return 2;
    if (p > pat && p[-1] == '/' && *p == '*')
        return 3;
    return 1;
}

/* Order two patterns that both match one path by priority. */
static int prio_cmp(const char *a, const char *b)
{
    const char *p = a, *q = b;
    for (;;) {
        int ra = tok_rank(a, p), rb = tok_rank(b, q);
        if (ra != rb)
            return ra - rb;
        if (ra == 0)
            return 0;
        if (ra == 1) {
            if (*p != *q)
                return (unsigned char)*p - (unsigned char)*q;
            p++;
            q++;
        } else {
            while (*p && *p != '/')
                p++;
            while (*q && *q != '/')
                q++;
        }
    }
}

typedef struct ref_route {
    char pattern[64];
    uint32_t set; /* bit m, or bit 9 for ANY */
} ref_route;

static void test_random_vs_reference(void)
{
    static const char *const segs[] = {"a", "b", "ab", "abc", "ba", ":", "*"};
    static const char *const psegs[] = {"a", "b", "ab", "abc", "ba", "bab",
                                        "", "x", "a:b"};
    uint32_t seed = 42;
#define RND(n) ((seed = seed * 1103515245u + 12345u), (seed >> 10) % (n))
    int bad = 0, total = 0;
    for (int round = 0; round < 60; round++) {
        wisp__router *r = wisp__router_create();
        ref_route rr[40];
        int nr = 0;
        for (int k = 0; k < 40; k++) {
            char pat[64];
            size_t pl = 0;
            unsigned depth = 1 + RND(4);
            for (unsigned d = 0; d < depth; d++) {
                const char *s = segs[RND(7)];
                /* A wildcard at the top would catch every path. */
                if (s[0] == '*' && d == 0)
                    s = "ba";
                /* Names by depth, so names at one place always agree. */
                if (s[0] == ':')
                    pl += (size_t)sprintf(pat + pl, "/:p%u", d);
                else if (s[0] == '*') {
                    pl += (size_t)sprintf(pat + pl, "/*w");
                    break;
                } else
                    pl += (size_t)sprintf(pat + pl, "/%s", s);
            }
            if (pat[pl - 1] != 'w' && RND(4) == 0)
                pat[pl++] = '/';
            pat[pl] = '\0';
            unsigned mi = RND(5);
            int method = mi == 4 ? ANY : (int)mi; /* GET HEAD POST PUT ANY */
            uint32_t bit = method == ANY ? 1u << 9 : 1u << method;
            int idx = -1;
            for (int j = 0; j < nr; j++)
                if (strcmp(rr[j].pattern, pat) == 0)
                    idx = j;
            int want = (idx >= 0 && (rr[idx].set & bit)) ? -EEXIST : 0;
            int slot = idx >= 0 ? idx : nr;
            /* The route encodes (pattern index + 1) * 16 + method slot. */
            int rc = wisp__router_add(
                r, method, pat,
                (void *)(uintptr_t)((slot + 1) * 16 + (method & 15)));
            if (rc != want) {
                bad++;
                fprintf(stderr, "add %s: %d want %d\n", pat, rc, want);
            }
            if (rc == 0 && idx >= 0) {
                rr[idx].set |= bit;
            } else if (rc == 0) {
                memcpy(rr[nr].pattern, pat, pl + 1);
                rr[nr].set = bit;
                nr++;
            }
        }
        for (int t = 0; t < 300; t++) {
            char path[64];
            size_t len = 0;
            unsigned depth = RND(5);
            for (unsigned d = 0; d < depth; d++)
                len += (size_t)sprintf(path + len, "/%s", psegs[RND(9)]);
            if (depth == 0 || RND(3) == 0)
                path[len++] = '/';
            int method = (int)RND(5); /* GET HEAD POST PUT DELETE */

            int best = -1, first = -1;
            for (int j = 0; j < nr; j++) {
                wisp__param caps[WISP__MAX_PARAMS];
                if (ref_match(rr[j].pattern, path, len, caps) < 0)
                    continue;
                uint32_t s = rr[j].set;
                bool ok = (s & (1u << method)) || (s & (1u << 9)) ||
                          (method == HEAD && (s & 1u));
                if (first < 0 || prio_cmp(rr[j].pattern, rr[first].pattern) < 0)
                    first = j;
                if (ok && (best < 0 ||
                           prio_cmp(rr[j].pattern, rr[best].pattern) < 0))
                    best = j;
            }
            wisp__match m;
            int rc = match_guarded(r, method, path, len, &m);
            total++;
            int want = best >= 0 ? 0 : first >= 0 ? -EPERM : -ENOENT;
            bool good = rc == want;
            if (good && rc == 0) {
                uintptr_t v = (uintptr_t)m.route;
                uint32_t set = rr[best].set;
                int want_slot = (set & (1u << method)) ? method
                                : (method == HEAD && (set & 1u)) ? GET
                                                                 : ANY & 15;
                good = (int)(v / 16) - 1 == best && (int)(v % 16) == want_slot;
                wisp__param caps[WISP__MAX_PARAMS];
                int nc = ref_match(rr[best].pattern, path, len, caps);
                good = good && (int)m.nparams == nc;
                for (int c = 0; good && c < nc; c++)
                    good = m.params[c].value_len == caps[c].value_len &&
                           memcmp(m.params[c].value, caps[c].value,
                                  caps[c].value_len) == 0 &&
                           m.params[c].name_len == caps[c].name_len &&
                           memcmp(m.params[c].name, caps[c].name,
                                  caps[c].name_len) == 0;
            }
            if (good && rc == -EPERM) {
                uint32_t s = rr[first].set, want_mask = 0;
                if (s & (1u << 9))
                    want_mask = ALL;
                want_mask |= s & ALL;
                if (s & 1u)
                    want_mask |= B(HEAD);
                good = m.allow_mask == want_mask;
            }
            if (!good) {
                bad++;
                fprintf(stderr, "round %d: %s %.*s: rc %d want %d (best %s)\n",
                        round, method_str(method), (int)len, path, rc, want,
                        best >= 0 ? rr[best].pattern : "-");
            }
        }
        wisp__router_destroy(r);
    }
#undef RND
    CHECK_EQ_INT(bad, 0);
    CHECK(total > 1000);
}

int main(void)
{
    static const suite suites[] = {
        SUITE("basics", basic_routes, basic_rows),
        SUITE("backtracking", back_routes, back_rows),
        SUITE("catch-all", catch_routes, catch_rows),
    };
    for (size_t i = 0; i < sizeof suites / sizeof *suites; i++)
        run_suite(&suites[i]);
    test_add_errors();
    test_param_limit();
    test_long_paths();
    test_embedded_nul();
    test_many_routes();
    test_random_vs_reference();
    return t_done("router");
}
