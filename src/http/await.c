/* wisp_res_await: finish a response when a future settles, and cancel the
 * future when the client goes away first. */
#include <stdlib.h>

#include "http/http_int.h"
#include "wisp/future.h"

typedef struct await_ctx {
    wisp_res_t *res;
    wisp_future_t *f;
    wisp_res_future_cb done;
    wisp_free_cb cancelled;
    void *arg;
    int aborted;
} await_ctx;

static void await_settled(wisp_future_t *f, void *arg)
{
    await_ctx *a = arg;
    if (!a->aborted) {
        wisp_res_on_abort(a->res, NULL, NULL);
        a->done(a->res, f, a->arg);
    }
    wisp_future_unref(a->f);
    free(a);
}

static void await_abort(wisp_res_t *res, void *arg)
{
    await_ctx *a = arg;
    (void)res;
    a->aborted = 1;
    /* The continuation still runs (and frees `a`) once the cancel has
     * settled the future; a result that arrives later is destroyed. */
    wisp_future_cancel(a->f);
    if (a->cancelled)
        a->cancelled(a->arg);
}

int wisp_res_await(wisp_res_t *res, wisp_future_t *f, wisp_res_future_cb done,
                   wisp_free_cb cancelled, void *arg)
{
    wisp__exchange *ex = wisp__ex_of_res(res);
    WISP__ASSERT_OWNER(ex->w->loop);
    if (!f || !done)
        return -EINVAL;
    if (!ex->conn || ex->state != WISP__X_ACTIVE)
        return WISP_ECLOSED;
    if (wisp_future_loop(f) != ex->w->loop)
        return -EXDEV;
    await_ctx *a = calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    a->res = res;
    a->f = f;
    a->done = done;
    a->cancelled = cancelled;
    a->arg = arg;
    wisp_future_ref(f);
    if (wisp_future_then(f, await_settled, a) < 0) {
        wisp_future_unref(f);
        free(a);
        return -ENOMEM;
    }
    wisp_res_on_abort(res, await_abort, a);
    return 0;
}
