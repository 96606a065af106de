/* libFuzzer target for src/util/utf8.c, the incremental fail-fast UTF-8
 * validator. Built by test/fuzz/meson.build; docs/fuzzing.md has the
 * commands.
 *
 * The whole input is the text. Besides crashes and sanitizer reports it
 * checks, trapping when one fails, against a slow reference written here
 * from RFC 3629 §4 (the UTF8-octets ABNF) that decodes each code point:
 *   - fed byte by byte (the other bytes poisoned for ASan), the
 *     validator first says BAD exactly at the byte where the reference
 *     finds that no valid text starts with the bytes so far, and stays
 *     BAD;
 *   - fed whole, and in two pieces cut where byte 0 says, it agrees;
 *   - at the end, "complete" holds exactly when the reference decoded
 *     the whole input into code points (no partial one at the end).
 * A crash found here becomes a row in test/util/utf8_test.c. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "util/utf8.h"

/* RFC 3629 §4:
 *   UTF8-1 = %x00-7F
 *   UTF8-2 = %xC2-DF UTF8-tail
 *   UTF8-3 = %xE0 %xA0-BF UTF8-tail / %xE1-EC 2( UTF8-tail ) /
 *            %xED %x80-9F UTF8-tail / %xEE-EF 2( UTF8-tail )
 *   UTF8-4 = %xF0 %x90-BF 2( UTF8-tail ) / %xF1-F3 3( UTF8-tail ) /
 *            %xF4 %x80-8F 2( UTF8-tail )
 *   UTF8-tail = %x80-BF
 * Returns the index of the first byte that makes p[0..n) impossible as
 * the start of valid text, or n when none does; *partial says whether a
 * code point is left unfinished at the end. */
static size_t reference(const uint8_t *p, size_t n, int *partial)
{
    size_t i = 0;
    *partial = 0;
    while (i < n) {
        uint8_t b = p[i];
        size_t need;
        uint8_t lo = 0x80, hi = 0xbf; /* range of the second byte */
        if (b <= 0x7f) {
            i++;
            continue;
        } else if (b >= 0xc2 && b <= 0xdf) {
            need = 1;
        } else if (b >= 0xe0 && b <= 0xef) {
            need = 2;
            if (b == 0xe0)
                lo = 0xa0;
            else if (b == 0xed)
                hi = 0x9f;
        } else if (b >= 0xf0 && b <= 0xf4) {
            need = 3;
            if (b == 0xf0)
                lo = 0x90;
            else if (b == 0xf4)
                hi = 0x8f;
        } else {
            return i;
        }
        for (size_t k = 1; k <= need; k++) {
            if (i + k == n) {
                *partial = 1;
                return n;
            }
            uint8_t c = p[i + k];
            uint8_t l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xbf;
            if (c < l || c > h)
                return i + k;
        }
        i += need + 1;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int partial;
    size_t bad = reference(data, size, &partial);
    int valid = bad == size;

    /* Whole, from an exact heap copy. */
    uint8_t *copy = malloc(size ? size : 1);
    REQUIRE(copy);
    memcpy(copy, data, size);

    /* Byte by byte, every byte but the one fed poisoned, so a read
     * before or after it is an ASan report. */
    wisp__utf8 u;
    wisp__utf8_init(&u);
    ASAN_POISON_MEMORY_REGION(copy, size);
    for (size_t i = 0; i < size; i++) {
        ASAN_UNPOISON_MEMORY_REGION(copy + i, 1);
        int r = wisp__utf8_feed(&u, copy + i, 1);
        ASAN_POISON_MEMORY_REGION(copy + i, 1);
        REQUIRE(r == (i >= bad ? WISP__UTF8_BAD : WISP__UTF8_OK));
    }
    ASAN_UNPOISON_MEMORY_REGION(copy, size);
    if (valid)
        REQUIRE((wisp__utf8_complete(&u) == 0) == partial);

    wisp__utf8_init(&u);
    int r = wisp__utf8_feed(&u, copy, size);
    REQUIRE(r == (valid ? WISP__UTF8_OK : WISP__UTF8_BAD));
    if (valid)
        REQUIRE((wisp__utf8_complete(&u) == 0) == partial);

    /* Two pieces, cut where the first byte says. */
    size_t cut = size ? data[0] % (size + 1) : 0;
    wisp__utf8_init(&u);
    int r1 = wisp__utf8_feed(&u, copy, cut);
    REQUIRE(r1 == (bad < cut ? WISP__UTF8_BAD : WISP__UTF8_OK));
    int r2 = wisp__utf8_feed(&u, copy + cut, size - cut);
    REQUIRE(r2 == r);
    if (valid)
        REQUIRE((wisp__utf8_complete(&u) == 0) == partial);
    free(copy);
    return 0;
}
