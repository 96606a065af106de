/* A program built against wisp pulled in as a meson subproject: it
 * creates a server with one route, binds an ephemeral port and exits. */
#include <stdio.h>

#include <wisp.h>

static void hello(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_send(res, 200, "text/plain", "hi", 2);
}

int main(void)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 1;
    wisp_server_t *srv = wisp_server_create(&cfg);
    if (!srv || wisp_server_route(srv, WISP_METHOD_GET, "/", hello, NULL,
                                  NULL) != 0)
        return 1;
    int r = wisp_server_listen(srv);
    printf("wisp %s, listen: %s, port %u\n", wisp_version(),
           wisp_strerror(r), wisp_server_port(srv));
    wisp_server_destroy(srv);
    return r == 0 ? 0 : 1;
}
