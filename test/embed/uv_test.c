/* wisp inside a libuv loop (Debian's libuv1-dev, a test-only
 * dependency): the embedded server (embed_app.h) is a uv_poll_t on
 * wisp_server_fd plus a uv_timer_t re-armed from wisp_server_timeout
 * after every step, next to an ordinary uv_poll_t that the client pokes
 * while it is served. */
#include <uv.h>

#include "embed_app.h"

static uv_loop_t uvl;
static uv_poll_t wisp_poll, poke_poll;
static uv_timer_t wisp_timer;
static int last_step = 0;

static void on_timer(uv_timer_t *t);

static void step(void)
{
    last_step = wisp_server_step(srv);
    if (last_step != 0) {
        uv_poll_stop(&wisp_poll);
        uv_timer_stop(&wisp_timer);
        uv_poll_stop(&poke_poll);
        uv_close((uv_handle_t *)&wisp_poll, NULL);
        uv_close((uv_handle_t *)&wisp_timer, NULL);
        uv_close((uv_handle_t *)&poke_poll, NULL);
        return;
    }
    int t = wisp_server_timeout(srv);
    if (t < 0)
        uv_timer_stop(&wisp_timer);
    else
        uv_timer_start(&wisp_timer, on_timer, (uint64_t)t, 0);
}

static void on_timer(uv_timer_t *t)
{
    (void)t;
    step();
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    (void)h, (void)status, (void)events;
    step();
}

static void on_poke(uv_poll_t *h, int status, int events)
{
    (void)h, (void)status, (void)events;
    embed_host_poked();
}

int main(void)
{
    embed_start();
    CHECK(uv_loop_init(&uvl) == 0);
    uv_poll_init(&uvl, &wisp_poll, wisp_server_fd(srv));
    uv_timer_init(&uvl, &wisp_timer);
    uv_poll_init(&uvl, &poke_poll, embed_host_rd);
    uv_poll_start(&wisp_poll, UV_READABLE, on_readable);
    uv_poll_start(&poke_poll, UV_READABLE, on_poke);
    step(); /* arms the timer from the first step's timeout */
    uv_run(&uvl, UV_RUN_DEFAULT);
    CHECK_EQ_INT(last_step, 1);
    CHECK(uv_loop_close(&uvl) == 0);
    embed_finish("embed_uv");
    return t_done("embed_uv");
}
