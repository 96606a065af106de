/* xiaozhi-server — dialogue saves on the pool. */
#include "save.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"

typedef struct save_job {
    char path[1024];
    char *text;
    size_t len;
} save_job;

void xz_save_name(const char *device_id, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = device_id; *p && o + 7 < cap; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '-' || c == '.';
        out[o] = ok && !(o == 0 && c == '.') ? c : '_';
        o++;
    }
    snprintf(out + o, cap - o, ".jsonl");
}

/* On a pool thread: one O_APPEND write, so lines of two sessions of the
 * same device never interleave. */
static int save_run(void *arg, void **value, wisp_free_cb *destroy)
{
    (void)value;
    (void)destroy;
    save_job *j = arg;
    int rc = 0;
    int fd = open(j->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
    } else {
        size_t off = 0;
        while (off < j->len) {
            ssize_t w = write(fd, j->text + off, j->len - off);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                rc = -errno;
                break;
            }
            off += (size_t)w;
        }
        if (close(fd) < 0 && !rc)
            rc = -errno;
    }
    if (rc < 0) {
        wisp_counter_inc(xz_app->m.save_failures);
        xz_log(WISP_LOG_ERROR, "-", "-", "event=save_failed path=%s err=%s",
               j->path, strerror(-rc));
    } else {
        wisp_counter_inc(xz_app->m.saves);
    }
    free(j->text);
    free(j);
    atomic_fetch_sub(&xz_app->saves_pending, 1);
    /* Always 0: a failure is logged and counted above, and a failed
     * future must mean "refused at submit, fn never ran" to the
     * submitter (who then frees the job). */
    return 0;
}

void xz_save_dialogue(wisp_loop_t *loop, const char *device_id, char *text,
                      size_t len)
{
    save_job *j = calloc(1, sizeof *j);
    if (!j) {
        free(text);
        wisp_counter_inc(xz_app->m.save_failures);
        return;
    }
    char name[200];
    xz_save_name(device_id, name, sizeof name);
    snprintf(j->path, sizeof j->path, "%s/%s", xz_app->cfg.save_dir, name);
    j->text = text;
    j->len = len;
    atomic_fetch_add(&xz_app->saves_pending, 1);
    /* LOW priority: saves may wait behind provider work, never the
     * other way round. The pool keeps its own reference to the future,
     * so dropping ours is fine. */
    wisp_future_t *f = wisp_pool_submit(xz_app->pool, WISP_PRIO_LOW, loop,
                                        save_run, j);
    int err = f ? wisp_future_error(f) : -ENOMEM;
    if (err != -EINPROGRESS && err != 0) {
        /* Refused (queue full, shutting down): fn never runs. */
        free(j->text);
        free(j);
        atomic_fetch_sub(&xz_app->saves_pending, 1);
        wisp_counter_inc(xz_app->m.save_failures);
        xz_log(WISP_LOG_ERROR, device_id, "-", "event=save_refused err=%s",
               wisp_strerror(err));
    }
    wisp_future_unref(f);
}
