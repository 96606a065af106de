/* wisp inside a GLib main loop (Debian's libglib2.0-dev, a test-only
 * dependency): the embedded server (embed_app.h) is a GSource of its
 * own — prepare asks wisp_server_timeout, the source polls
 * wisp_server_fd, dispatch steps — next to an ordinary GLib fd watch
 * that the client pokes while it is served. */
#include <glib-unix.h>
#include <glib.h>

#include "embed_app.h"

typedef struct wisp_gsource {
    GSource base;
    gpointer tag;
    gint64 due; /* monotonic µs, or -1 */
} wisp_gsource;

static GMainLoop *main_loop;
static int last_step = 0;

static gboolean w_prepare(GSource *s, gint *timeout)
{
    wisp_gsource *w = (wisp_gsource *)s;
    int t = wisp_server_timeout(srv);
    *timeout = t;
    w->due = t < 0 ? -1 : g_source_get_time(s) + (gint64)t * 1000;
    return t == 0;
}

static gboolean w_check(GSource *s)
{
    wisp_gsource *w = (wisp_gsource *)s;
    if (g_source_query_unix_fd(s, w->tag) & G_IO_IN)
        return TRUE;
    return w->due >= 0 && g_source_get_time(s) >= w->due;
}

static gboolean w_dispatch(GSource *s, GSourceFunc cb, gpointer data)
{
    (void)s, (void)cb, (void)data;
    last_step = wisp_server_step(srv);
    if (last_step != 0) {
        g_main_loop_quit(main_loop);
        return G_SOURCE_REMOVE;
    }
    return G_SOURCE_CONTINUE;
}

static GSourceFuncs wisp_funcs = {
    .prepare = w_prepare,
    .check = w_check,
    .dispatch = w_dispatch,
};

static gboolean on_poke(gint fd, GIOCondition cond, gpointer data)
{
    (void)fd, (void)cond, (void)data;
    embed_host_poked();
    return G_SOURCE_CONTINUE;
}

int main(void)
{
    embed_start();
    main_loop = g_main_loop_new(NULL, FALSE);
    GSource *s = g_source_new(&wisp_funcs, sizeof(wisp_gsource));
    ((wisp_gsource *)s)->tag =
        g_source_add_unix_fd(s, wisp_server_fd(srv), G_IO_IN);
    g_source_attach(s, NULL);
    guint poke = g_unix_fd_add(embed_host_rd, G_IO_IN, on_poke, NULL);
    g_main_loop_run(main_loop);
    CHECK_EQ_INT(last_step, 1);
    g_source_remove(poke);
    g_source_destroy(s);
    g_source_unref(s);
    g_main_loop_unref(main_loop);
    embed_finish("embed_glib");
    return t_done("embed_glib");
}
