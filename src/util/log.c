/* Logging: a level filter, a process-wide sink, a default stderr sink. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "wisp/log.h"

static _Atomic int g_level = WISP_LOG_INFO;
static wisp_log_hook g_hook;
static void *g_hook_arg;

const char *wisp_log_level_name(wisp_log_level_t level)
{
    switch (level) {
    case WISP_LOG_DEBUG: return "DEBUG";
    case WISP_LOG_INFO: return "INFO";
    case WISP_LOG_WARN: return "WARN";
    case WISP_LOG_ERROR: return "ERROR";
    default: return "OFF";
    }
}

void wisp_log_set_level(wisp_log_level_t level)
{
    atomic_store_explicit(&g_level, (int)level, memory_order_relaxed);
}

wisp_log_level_t wisp_log_get_level(void)
{
    return (wisp_log_level_t)atomic_load_explicit(&g_level,
                                                  memory_order_relaxed);
}

void wisp_log_set_hook(wisp_log_hook hook, void *arg)
{
    g_hook_arg = arg;
    g_hook = hook;
}

static void default_sink(wisp_log_level_t level, const char *msg)
{
    char line[1100];
    int n = snprintf(line, sizeof line, "%s %s\n", wisp_log_level_name(level),
                     msg);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = sizeof line - 1;
    /* One write(2) so lines from several threads do not interleave. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void wisp_logv(wisp_log_level_t level, const char *fmt, va_list ap)
{
    if ((int)level < atomic_load_explicit(&g_level, memory_order_relaxed) ||
        level >= WISP_LOG_OFF)
        return;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    wisp_log_hook hook = g_hook;
    if (hook)
        hook(level, msg, g_hook_arg);
    else
        default_sink(level, msg);
}

void wisp_log(wisp_log_level_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    wisp_logv(level, fmt, ap);
    va_end(ap);
}
