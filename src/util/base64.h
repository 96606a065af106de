/* Internal: base64 (RFC 4648 §4, with padding). */
#ifndef WISP_UTIL_BASE64_H
#define WISP_UTIL_BASE64_H

#include <stddef.h>
#include <sys/types.h>

/* Bytes needed to encode `len` bytes (without a NUL). */
#define WISP__BASE64_LEN(len) ((((len) + 2) / 3) * 4)

/* Encode `len` bytes into `out` (WISP__BASE64_LEN(len) bytes, no NUL
 * written). Returns the number of characters written. */
size_t wisp__base64_encode(const void *in, size_t len, char *out);

/* Decode `len` characters (padding required, no whitespace) into `out`
 * (room for len / 4 * 3 bytes). Returns the decoded length, or -1 when
 * the input is not canonical base64 (bad length, character, padding, or
 * non-zero bits in the last character before padding). After -1, `out`
 * may hold part of the output. Never reads past in[len - 1]. */
ssize_t wisp__base64_decode(const char *in, size_t len, void *out);

#endif
