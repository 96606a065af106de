/* xiaozhi-server — the save-on-close hook: a session's dialogue (JSON
 * lines, one per finished turn) is appended to save.dir/<device>.jsonl
 * on the shared pool, never on a loop. xz_app->saves_pending counts jobs
 * not yet written; main's graceful stop drains the pool so every save
 * finishes before the process exits. */
#ifndef XZ_SAVE_H
#define XZ_SAVE_H

#include <stddef.h>

#include <wisp.h>

/* Take ownership of `text` (malloc'd, `len` bytes) and queue its append
 * for `device_id` (':' and '/' become '_' in the file name). On a full
 * pool queue the save is counted as failed and logged. */
void xz_save_dialogue(wisp_loop_t *loop, const char *device_id, char *text,
                      size_t len);

/* The file name for a device id, in `out`. */
void xz_save_name(const char *device_id, char *out, size_t cap);

#endif
