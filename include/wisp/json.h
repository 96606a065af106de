/* wisp — JSON (RFC 8259): a strict reader and a writer.
 *
 * Reading parses a whole document in place into a caller-supplied array of
 * tokens: no allocation, no copy of the input. Tokens point into the input
 * by offset, so the input must stay unchanged while the tokens are used.
 * Every value is one token; an object's members are laid out as key token
 * (a string) followed by the value's tokens; each token knows where the
 * tokens of its value end (`next`), so skipping a value is O(1).
 *
 * The reader is strict: exactly the grammar of RFC 8259 §2–§8 and nothing
 * else. No comments, no trailing commas, no single quotes, no NaN or
 * Infinity, no leading zeros, no raw control characters (U+0000–U+001F) in
 * strings, no byte sequence that is not UTF-8 (RFC 3629: no overlongs, no
 * surrogates encoded in UTF-8, nothing above U+10FFFF), no \u escape that
 * leaves a lone or misordered surrogate, nothing but whitespace after the
 * top-level value. Duplicate keys are accepted (RFC 8259 §4 allows them);
 * wisp_json_get returns the first. A UTF-8 byte order mark is refused
 * (RFC 8259 §8.1: "MUST NOT add").
 *
 * Numbers are checked against the grammar at parse time and converted on
 * demand: wisp_json_int64 / wisp_json_uint64 are exact (a value with a
 * fraction or exponent is accepted only when it denotes an integer in
 * range, e.g. 1.0 or 1e2); wisp_json_double rounds correctly and does not
 * depend on the locale.
 *
 * Writing appends to a caller buffer (fixed, or grown with realloc),
 * inserts commas and colons itself, escapes strings (control characters,
 * quote and backslash; "/" is left alone; invalid UTF-8 is an error, never
 * passed through), prints numbers without locale, and refuses NaN and
 * infinities. Errors are sticky: check once at the end.
 *
 * Thread: every function here is pure over its arguments; any thread may
 * use its own documents and writers. */
#ifndef WISP_JSON_H
#define WISP_JSON_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* wisp's JSON error codes (in the WISP_E range, see common.h). */
enum {
    WISP_EJSON_SYNTAX = -4020, /* not JSON under RFC 8259 */
    WISP_EJSON_DEPTH = -4021,  /* nested deeper than max_depth */
    WISP_EJSON_TYPE = -4022,   /* value is of another type than asked */
};

typedef enum wisp_json_type {
    WISP_JSON_INVALID = 0, /* no such token (index out of range, -1) */
    WISP_JSON_NULL,
    WISP_JSON_FALSE,
    WISP_JSON_TRUE,
    WISP_JSON_NUMBER,
    WISP_JSON_STRING,
    WISP_JSON_ARRAY,
    WISP_JSON_OBJECT,
} wisp_json_type_t;

/* Token flags. */
#define WISP_JSON_F_ESCAPED 0x01 /* string: contains escapes (decode it) */
#define WISP_JSON_F_INTEGER 0x02 /* number: no fraction, no exponent */
#define WISP_JSON_F_KEY 0x04     /* string: an object member's key */
#define WISP_JSON_F_LAST 0x08    /* last element or member of its container
                                    (on a member: both key and value); also
                                    set on the top-level value */

/* One value. Treat as read-only; the layout is public so that tokens can
 * live in arrays the caller owns (stack, arena). 16 bytes. */
typedef struct wisp_json_tok {
    uint8_t type;   /* wisp_json_type_t */
    uint8_t flags;  /* WISP_JSON_F_* */
    uint16_t _pad;
    uint32_t start; /* byte offset of the value in the input; for strings,
                       of the first byte after the opening quote */
    uint32_t len;   /* bytes of the value; strings: between the quotes;
                       arrays and objects: from '[' or '{' to the matching
                       bracket inclusive */
    uint32_t next;  /* index of the first token after this value (its
                       subtree skipped); for an array or object, the
                       number of elements or members is wisp_json_count */
} wisp_json_tok_t;

typedef struct wisp_json_doc {
    const char *src;        /* the input (not copied) */
    size_t len;
    wisp_json_tok_t *toks;  /* the caller's array */
    uint32_t ntoks;         /* tokens used; token 0 is the top-level value */
    uint32_t cap;
    size_t err_offset;      /* after a syntax error: byte where it was seen */
} wisp_json_doc_t;

typedef struct wisp_json_limits {
    uint32_t max_depth; /* arrays/objects nested deeper: WISP_EJSON_DEPTH.
                           0 means the default, 64 */
    size_t max_bytes;   /* longer input: -EMSGSIZE. 0 means no limit beyond
                           the token offsets' range (4 GiB - 1) */
} wisp_json_limits_t;

/* Parse `len` bytes at `src` (not NUL-terminated; NUL bytes are refused
 * like any other invalid byte) into `toks[0..cap)`. `limits` may be NULL
 * for the defaults. The parser uses no recursion and no allocation.
 *
 * Ownership: `src` and `toks` stay the caller's; `doc` refers to both, so
 * both must outlive every use of `doc`.
 * Returns the number of tokens used (>= 1), or WISP_EJSON_SYNTAX (with
 * doc->err_offset set), WISP_EJSON_DEPTH, -ENOBUFS (more values than `cap`
 * tokens), -EMSGSIZE (over max_bytes), -EINVAL (`doc` or `src` NULL with
 * len > 0, or `toks` NULL with cap > 0). On error `doc` holds no tokens. */
WISP_API int wisp_json_parse(wisp_json_doc_t *doc, const char *src,
                             size_t len, wisp_json_tok_t *toks, uint32_t cap,
                             const wisp_json_limits_t *limits);

/* Navigation. Values are named by token index; -1 means "none" and every
 * function accepts it (returning -1, WISP_JSON_INVALID, 0 or an error). */

/* The type of token `i`; WISP_JSON_INVALID when `i` is out of range. */
WISP_API wisp_json_type_t wisp_json_type(const wisp_json_doc_t *doc, int i);

/* Members of object `i` / elements of array `i`; 0 for other types. */
WISP_API uint32_t wisp_json_count(const wisp_json_doc_t *doc, int i);

/* The value of member `key` (NUL-terminated, compared with the decoded
 * key, so "\u0061" matches "a") of object `obj`: the first such member.
 * Returns its token index, or -1 when `obj` is not an object or has no such
 * member. Linear in the number of members. */
WISP_API int wisp_json_get(const wisp_json_doc_t *doc, int obj,
                           const char *key);

/* Element `n` (0-based) of array `arr`, or -1. Linear in n. */
WISP_API int wisp_json_at(const wisp_json_doc_t *doc, int arr, uint32_t n);

/* Iteration. For an array: wisp_json_first gives the first element, and
 * wisp_json_next the element after `i`. For an object: wisp_json_first
 * gives the first member's KEY token, the value is key + 1, and
 * wisp_json_next(doc, key) gives the next member's key. Both return -1 at
 * the end (or for an empty container). wisp_json_next works on any token
 * inside a container; it must not be called on the top-level token. */
WISP_API int wisp_json_first(const wisp_json_doc_t *doc, int i);
WISP_API int wisp_json_next(const wisp_json_doc_t *doc, int i);

/* The raw bytes of token `i` in the input (strings without their quotes and
 * undecoded: use them directly only when the token lacks
 * WISP_JSON_F_ESCAPED). ptr is NULL for -1. */
WISP_API wisp_str_t wisp_json_raw(const wisp_json_doc_t *doc, int i);

/* Decode string `i` (escapes resolved, surrogate pairs joined, UTF-8
 * output) into `out`, which receives a terminating NUL when there is room
 * (cap > returned length). Returns the decoded length, WISP_EJSON_TYPE when
 * `i` is not a string, or -ENOBUFS when `cap` is smaller than the decoded
 * length plus one (nothing useful is in `out` then). The decoded string
 * may contain NUL bytes (from \u0000): use the length. */
WISP_API ssize_t wisp_json_str(const wisp_json_doc_t *doc, int i, char *out,
                               size_t cap);

/* 1 when string `i` decodes to exactly the NUL-terminated `s`, else 0
 * (also when `i` is not a string). No buffer needed. */
WISP_API int wisp_json_str_eq(const wisp_json_doc_t *doc, int i,
                              const char *s);

/* Number `i` as an exact integer: 0, WISP_EJSON_TYPE (not a number),
 * -ERANGE (not an integer, or outside the type's range). `out` is written
 * only on success. */
WISP_API int wisp_json_int64(const wisp_json_doc_t *doc, int i,
                             int64_t *out);
WISP_API int wisp_json_uint64(const wisp_json_doc_t *doc, int i,
                              uint64_t *out);

/* Number `i` as the nearest double (correctly rounded, locale-free):
 * 0, WISP_EJSON_TYPE, or -ERANGE when the magnitude overflows a double
 * (underflow to 0 or a subnormal is not an error). */
WISP_API int wisp_json_double(const wisp_json_doc_t *doc, int i, double *out);

/* true/false `i` as 1/0: 0, or WISP_EJSON_TYPE. */
WISP_API int wisp_json_bool(const wisp_json_doc_t *doc, int i, int *out);

/* ------------------------------------------------------------- writing */

#define WISP_JSON_WRITER_MAX_DEPTH 64

typedef struct wisp_json_writer {
    char *buf;
    size_t len;
    size_t cap;
    int err;          /* sticky: 0, -ENOBUFS, -ENOMEM, -EINVAL,
                         WISP_EJSON_DEPTH, WISP_ESTATE */
    uint8_t growable; /* buf is the writer's own (realloc) */
    uint8_t depth;
    uint8_t need_comma;
    uint8_t after_key;
    uint64_t in_object; /* bit d set: level d is an object */
    uint64_t has_items; /* bit d set: level d has a member/element */
} wisp_json_writer_t;

/* Write into the caller's `buf` of `cap` bytes; running out of room sets
 * -ENOBUFS. The output is not NUL-terminated unless wisp_json_finish is
 * called with room left. */
WISP_API void wisp_json_writer_init(wisp_json_writer_t *w, char *buf,
                                    size_t cap);
/* Write into a buffer the writer allocates and grows (realloc); failure to
 * grow sets -ENOMEM. Take the buffer with wisp_json_finish and free() it,
 * or release it with wisp_json_writer_free. */
WISP_API void wisp_json_writer_init_dyn(wisp_json_writer_t *w);
WISP_API void wisp_json_writer_free(wisp_json_writer_t *w);

/* Structure. A key is required before each value inside an object and
 * forbidden elsewhere; a misplaced key or value, or an end that does not
 * match its begin, sets WISP_ESTATE. Nesting beyond
 * WISP_JSON_WRITER_MAX_DEPTH sets WISP_EJSON_DEPTH. */
WISP_API void wisp_json_obj_begin(wisp_json_writer_t *w);
WISP_API void wisp_json_obj_end(wisp_json_writer_t *w);
WISP_API void wisp_json_arr_begin(wisp_json_writer_t *w);
WISP_API void wisp_json_arr_end(wisp_json_writer_t *w);
WISP_API void wisp_json_key(wisp_json_writer_t *w, const char *key);
WISP_API void wisp_json_key_n(wisp_json_writer_t *w, const char *key,
                              size_t len);

/* Values. Strings must be valid UTF-8 (else -EINVAL); NULL `s` writes
 * null. Doubles that are NaN or infinite set -EINVAL; finite doubles are
 * printed in the shortest form that reads back to the same value. */
WISP_API void wisp_json_str_val(wisp_json_writer_t *w, const char *s);
WISP_API void wisp_json_str_val_n(wisp_json_writer_t *w, const char *s,
                                  size_t len);
WISP_API void wisp_json_int_val(wisp_json_writer_t *w, int64_t v);
WISP_API void wisp_json_uint_val(wisp_json_writer_t *w, uint64_t v);
WISP_API void wisp_json_double_val(wisp_json_writer_t *w, double v);
WISP_API void wisp_json_bool_val(wisp_json_writer_t *w, int v);
WISP_API void wisp_json_null_val(wisp_json_writer_t *w);
/* Insert `len` bytes of already-encoded JSON as one value (the caller
 * vouches for it; it is not checked). */
WISP_API void wisp_json_raw_val(wisp_json_writer_t *w, const char *json,
                                size_t len);

/* Shorthands for a member inside an object: key then value. */
WISP_API void wisp_json_kv_str(wisp_json_writer_t *w, const char *key,
                               const char *s);
WISP_API void wisp_json_kv_int(wisp_json_writer_t *w, const char *key,
                               int64_t v);
WISP_API void wisp_json_kv_bool(wisp_json_writer_t *w, const char *key,
                                int v);

/* Finish: checks that exactly one complete top-level value was written and
 * every container is closed (else WISP_ESTATE), appends a NUL that is not
 * counted (when there is room; for a fixed buffer without room this is
 * -ENOBUFS), and returns 0 or the sticky error. On success *out / *len
 * (either may be NULL) give the text; for a growable writer with `out`
 * non-NULL the buffer then belongs to the caller (free()) and the writer
 * is reset to empty (no buffer); with `out` NULL the writer keeps it (read
 * w->buf, then wisp_json_writer_free). After an error a growable writer
 * still owns its buffer: wisp_json_writer_free releases it. */
WISP_API int wisp_json_finish(wisp_json_writer_t *w, char **out,
                              size_t *len);

/* Reset a writer to empty, keeping its buffer (growable or not) and
 * clearing the error, to build another document. */
WISP_API void wisp_json_writer_reset(wisp_json_writer_t *w);

#ifdef __cplusplus
}
#endif
#endif
