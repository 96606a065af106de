/* wisp — logging: levels, a process-wide sink, and a user hook.
 *
 * wisp itself logs only conditions an operator must know about (a failed
 * accept, a listener that cannot be bound). Applications may log through
 * the same sink. */
#ifndef WISP_LOG_H
#define WISP_LOG_H

#include <stdarg.h>
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum wisp_log_level {
    WISP_LOG_DEBUG = 0,
    WISP_LOG_INFO = 1,
    WISP_LOG_WARN = 2,
    WISP_LOG_ERROR = 3,
    WISP_LOG_OFF = 4,
} wisp_log_level_t;

/* A log sink. `msg` is one formatted line without a trailing newline,
 * valid only during the call. Called on whatever thread logged; a hook
 * must therefore be thread-safe. */
typedef void (*wisp_log_hook)(wisp_log_level_t level, const char *msg,
                              void *arg);

/* Messages below `level` are dropped before formatting. Default:
 * WISP_LOG_INFO. Thread: any (an atomic store). */
WISP_API void wisp_log_set_level(wisp_log_level_t level);

/* The current level. Thread: any. */
WISP_API wisp_log_level_t wisp_log_get_level(void);

/* Replace the sink. NULL restores the default sink, which writes
 * "LEVEL message\n" to stderr with one write(2). `arg` is passed to the
 * hook untouched. Thread: any, but set it before starting servers: a hook
 * being replaced may still be running on another thread. */
WISP_API void wisp_log_set_hook(wisp_log_hook hook, void *arg);

/* Format and emit one message at `level`. Lines longer than 1023 bytes are
 * truncated. Thread: any. */
WISP_API void wisp_log(wisp_log_level_t level, const char *fmt, ...)
    WISP_PRINTF(2, 3);

/* As wisp_log() with a va_list. */
WISP_API void wisp_logv(wisp_log_level_t level, const char *fmt, va_list ap);

/* "DEBUG", "INFO", "WARN", "ERROR" or "OFF". */
WISP_API const char *wisp_log_level_name(wisp_log_level_t level);

#ifdef __cplusplus
}
#endif
#endif
