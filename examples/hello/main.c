/* hello — the smallest useful wisp server. Read it first.
 *
 *   GET  /              "Hello, World!"
 *   GET  /hello/:name   a route parameter: "Hello, NAME!"
 *   POST /echo          the request body back (up to 64 KiB)
 *   GET  /files/...     the files under ./public (or the directory given
 *                       as the second argument)
 *
 *   usage: hello [PORT [DIR]]     (PORT 0 picks a free one)
 *
 * Ctrl-C (SIGINT) or SIGTERM stops it gracefully: requests in flight
 * finish, then wisp_server_wait returns. The servers the tests and the
 * benchmarks drive are in test/server/ (wisp-testserver). */
#include <stdio.h>
#include <stdlib.h>

#include <wisp.h>

/* A handler runs on one of the server's I/O threads: it must not block.
 * It answers with exactly one wisp_res_send (or a streamed response). */
static void on_root(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_send(res, 200, "text/plain", "Hello, World!\n", 14);
}

static void on_greet(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    /* Parameters point into wisp's buffer: {ptr, len}, not NUL-ended. */
    wisp_str_t name = wisp_req_param(req, "name");
    char out[256];
    int n = snprintf(out, sizeof out, "Hello, %.*s!\n", (int)name.len,
                     name.ptr);
    if (n >= (int)sizeof out)
        n = (int)sizeof out - 1; /* a long name is cut, not overrun */
    wisp_res_send(res, 200, "text/plain", out, (size_t)n);
}

static void on_echo(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    /* The whole body was read before the handler runs; a larger one was
     * refused with 413 by wisp (max_body_bytes below). */
    wisp_str_t body = wisp_req_body(req);
    wisp_res_send(res, 200, "application/octet-stream", body.ptr, body.len);
}

int main(int argc, char **argv)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg); /* one loop per CPU, sane limits */
    cfg.host = "127.0.0.1";
    cfg.port = (uint16_t)(argc > 1 ? atoi(argv[1]) : 8080);
    const char *dir = argc > 2 ? argv[2] : "public";

    wisp_server_t *srv = wisp_server_create(&cfg);
    if (!srv) {
        perror("hello");
        return 1;
    }
    wisp_route_opts_t small = {.max_body_bytes = 64 * 1024};
    wisp_server_route(srv, WISP_METHOD_GET, "/", on_root, NULL, NULL);
    wisp_server_route(srv, WISP_METHOD_GET, "/hello/:name", on_greet, NULL,
                      NULL);
    wisp_server_route(srv, WISP_METHOD_POST, "/echo", on_echo, NULL, &small);
#if WISP_HAVE_STATIC_FILES /* absent from a -Dstatic_files=false build */
    if (wisp_server_static(srv, "/files", dir, NULL) < 0)
        fprintf(stderr, "hello: %s is not a directory; /files is off\n", dir);
#else
    (void)dir;
#endif

    /* listen (bind), start (I/O threads), then wait on this thread. */
    int r = wisp_server_listen(srv);
    if (r == 0)
        r = wisp_server_start(srv);
    if (r < 0) {
        fprintf(stderr, "hello: %s\n", wisp_strerror(r));
        wisp_server_destroy(srv);
        return 1;
    }
    printf("listening on http://%s:%u/\n", cfg.host, wisp_server_port(srv));
    fflush(stdout);
    wisp_server_wait(srv);
    wisp_server_destroy(srv);
    return 0;
}
