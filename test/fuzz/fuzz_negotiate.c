/* libFuzzer target for src/http/negotiate.c and the entity-tag list
 * parser of src/http/reply.c (If-None-Match).
 *
 * The input is a header value (a heap copy of exactly its size, so ASan
 * sees any read past it). Properties, trapping when one fails:
 *   - wisp_accept_choose returns an offer's index or -ENOENT, and the
 *     same for a list and for that list with an offer the input cannot
 *     name appended after it (a later offer never displaces an earlier
 *     choice unless it weighs more);
 *   - wisp_accept_encoding_q is within 0..1000;
 *   - wisp_etag_match is 1, 0 or WISP_EPARSE, and a valid entity-tag
 *     always matches a header that is exactly itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wisp/negotiate.h"
#include "wisp/reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                          \
    do {                                                                    \
        if (!(c))                                                           \
            __builtin_trap();                                               \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    wisp_str_t h = {buf, size};
    static const char *const offers[] = {"application/json", "text/html",
                                         "text/plain", NULL};
    static const char *const more[] = {"application/json", "text/html",
                                       "text/plain", "x-\x01/\x01", NULL};
    int a = wisp_accept_choose(h, offers);
    REQUIRE(a == -ENOENT || (a >= 0 && a < 3));
    int b = wisp_accept_choose(h, more);
    REQUIRE(a == b || (a == -ENOENT && b == 3) || b == 3);
    static const char *const codings[] = {"gzip", "br", "identity", "*"};
    for (int i = 0; i < 4; i++) {
        int q = wisp_accept_encoding_q(h, codings[i]);
        REQUIRE(q >= 0 && q <= 1000);
    }
    int m = wisp_etag_match(h, "\"abc\"");
    REQUIRE(m == 1 || m == 0 || m == WISP_EPARSE);
    /* The input as an entity-tag of its own (when it is one). */
    char *tag = malloc(size + 1);
    if (tag) {
        memcpy(tag, data, size);
        tag[size] = 0;
        if (strlen(tag) == size) {
            int self = wisp_etag_match(h, tag);
            int valid = size >= 2 && tag[size - 1] == '"' &&
                        (tag[0] == '"' ||
                         (size >= 4 && tag[0] == 'W' && tag[1] == '/' &&
                          tag[2] == '"'));
            for (size_t i = (tag[0] == 'W' ? 3 : 1); valid && i + 1 < size;
                 i++) {
                unsigned char c = (unsigned char)tag[i];
                valid = c == 0x21 || (c >= 0x23 && c != 0x7f);
            }
            if (valid)
                REQUIRE(self == 1);
        }
        free(tag);
    }
    free(buf);
    return 0;
}
