/* The feature options (meson_options.txt, wisp/features.h) as a program
 * sees them: each WISP_HAVE_* is 0 or 1 and agrees with the build's
 * option (meson passes the expected list in WISP_FEATURES); asking for an
 * access log is served by a build with one and refused with ENOTSUP, at
 * create, by a build without (no file opened, nothing logged); and a
 * build without static files has no static route, so its prefix is a
 * plain 404 path the application may route itself. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "wisp.h"

static int listed(const char *features, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = features; p && *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && memcmp(p, name, n) == 0)
            return 1;
        p = end ? end + 1 : NULL;
    }
    return 0;
}

static void on_root(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_send(res, 200, "text/plain", "x", 1);
}

int main(void)
{
    static const struct {
        const char *name;
        int have;
    } rows[] = {
        {"websocket", WISP_HAVE_WEBSOCKET},
        {"pool", WISP_HAVE_POOL},
        {"static_files", WISP_HAVE_STATIC_FILES},
        {"access_log", WISP_HAVE_ACCESS_LOG},
        {"metrics", WISP_HAVE_METRICS},
    };
    const char *features = getenv("WISP_FEATURES");
    CHECK(features != NULL);
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        CHECK_MSG(rows[i].have == 0 || rows[i].have == 1, "%s: %d",
                  rows[i].name, rows[i].have);
        if (features)
            CHECK_MSG(rows[i].have == listed(features, rows[i].name),
                      "WISP_HAVE_ for %s is %d, the build says %s",
                      rows[i].name, rows[i].have, features);
    }
    /* Static files need the pool (meson refuses the other way). */
    CHECK(!WISP_HAVE_STATIC_FILES || WISP_HAVE_POOL);

    /* An access log to a hook: served, or refused at create. */
    static const wisp_access_log_format_t formats[] = {
        WISP_ACCESS_LOG_COMMON, WISP_ACCESS_LOG_COMBINED};
    for (size_t i = 0; i < 2; i++) {
        wisp_server_config_t cfg;
        wisp_server_config_init(&cfg);
        cfg.access_log_format = formats[i];
        errno = 0;
        wisp_server_t *srv = wisp_server_create(&cfg);
        if (WISP_HAVE_ACCESS_LOG) {
            CHECK(srv != NULL);
        } else {
            CHECK(srv == NULL);
            CHECK_EQ_INT(errno, ENOTSUP);
        }
        wisp_server_destroy(srv);
    }
    /* Without one asked for, every build creates the server, and a route
     * on the prefix a static route would take is the application's. */
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK(srv != NULL);
    if (srv) {
        CHECK_EQ_INT(wisp_server_route(srv, WISP_METHOD_GET, "/static/*path",
                                       on_root, NULL, NULL), 0);
        wisp_server_destroy(srv);
    }
    return t_done("features");
}
