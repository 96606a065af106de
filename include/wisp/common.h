/* wisp — common definitions: export macro, error codes, version.
 *
 * How wisp functions fail, one rule with two forms:
 *   - A function that returns a pointer to something it creates or hands
 *     out (wisp_*_create, wisp_future_chain/_all/_any, wisp_pool_submit,
 *     wisp_metrics_counter, ...) returns NULL on failure and sets errno
 *     to a positive errno value (ENOMEM, EINVAL, ...), which its header
 *     lists.
 *   - Every other function that can fail returns 0 (or a non-negative
 *     count) on success and a negative code on failure: a negated errno
 *     value (-ENOMEM, -EINVAL, ...) or one of the WISP_E* codes below,
 *     which sit in a range errno never reaches.
 * Lookups that return a pointer (wisp_req_loop, wisp_loop_get_data,
 * wisp_server_loop, ...) do not fail: NULL there means "none".
 * wisp_strerror() names every negative code (pass -errno for the
 * first form). */
#ifndef WISP_COMMON_H
#define WISP_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "wisp/features.h" /* generated: the build's WISP_HAVE_* */

#ifdef __cplusplus
extern "C" {
#endif

#if defined(WISP_BUILDING) && defined(__GNUC__)
#define WISP_API __attribute__((visibility("default")))
#else
#define WISP_API
#endif

#if defined(__GNUC__)
#define WISP_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define WISP_PRINTF(f, a)
#endif

#define WISP_VERSION_MAJOR 0
#define WISP_VERSION_MINOR 1
#define WISP_VERSION_PATCH 0

/* wisp's own error conditions. They are negative and below -4000, where no
 * errno value lives. */
enum {
    WISP_EBASE = -4000,
    WISP_EPARSE = -4001,          /* malformed HTTP message (400) */
    WISP_ETOOLONG_LINE = -4002,   /* request line over its limit (414) */
    WISP_ETOOLONG_HEAD = -4003,   /* header section over its limit (431) */
    WISP_ETOOMANY_HEADERS = -4004,/* more header fields than allowed (431) */
    WISP_EMETHOD = -4005,         /* method not implemented (501) */
    WISP_EVERSION = -4006,        /* HTTP version not supported (505) */
    WISP_EBODY_TOO_LARGE = -4007, /* body over the route's limit (413) */
    WISP_ECLOSED = -4008,         /* the connection is closed or closing */
    WISP_ESTATE = -4009,          /* call not valid in the object's state */
    WISP_EEXPECT = -4010,         /* unsupported Expect (417) */
    WISP_ECODING = -4011,         /* transfer coding not implemented (501) */
};

/* A byte string that is not NUL-terminated. `ptr` is NULL when absent. */
typedef struct wisp_str {
    const char *ptr;
    size_t len;
} wisp_str_t;

/* Releases what a caller handed over (a buffer, an argument): called
 * exactly once, as each function taking one documents. */
typedef void (*wisp_free_cb)(void *arg);

/* Name of an error code returned by any wisp function: a static string,
 * never NULL, for every negative errno value and every WISP_E* code.
 * Thread: any. */
WISP_API const char *wisp_strerror(int err);

/* The library's version as "MAJOR.MINOR.PATCH": a static string. */
WISP_API const char *wisp_version(void);

#ifdef __cplusplus
}
#endif
#endif
