/* libFuzzer target for src/util/base64.c (the strict decoder of
 * Sec-WebSocket-Key, and the encoder). Built by test/fuzz/meson.build;
 * docs/fuzzing.md has the commands.
 *
 * The whole input is decoded as base64 text, and encoded as bytes.
 * Besides crashes and sanitizer reports it checks, trapping when one
 * fails:
 *   - the decoder accepts exactly what a slow reference written here from
 *     RFC 4648 §4 accepts in canonical form (length a multiple of 4, the
 *     alphabet, at most two '=' only at the end, zero pad bits), and
 *     decodes it to the same bytes; it reads no byte past the input and
 *     writes none past len / 4 * 3 (exact heap blocks);
 *   - what it accepts encodes back to the same text;
 *   - encoding the input and decoding the result gives the input back.
 * A crash found here becomes a row in test/util/base64_test.c. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "util/base64.h"

static int sextet(uint8_t c)
{
    static const char abc[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; i++)
        if ((uint8_t)abc[i] == c)
            return i;
    return -1;
}

/* Returns the decoded length or -1. */
static ssize_t reference(const uint8_t *in, size_t len, uint8_t *out)
{
    if (len % 4)
        return -1;
    size_t pad = 0;
    if (len >= 4 && in[len - 1] == '=')
        pad = in[len - 2] == '=' ? 2 : 1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t v = 0;
        size_t here = i + 4 == len ? pad : 0;
        for (size_t k = 0; k < 4; k++) {
            int s = k < 4 - here ? sextet(in[i + k]) : 0;
            if (s < 0)
                return -1;
            v = v << 6 | (uint32_t)s;
        }
        out[o++] = (uint8_t)(v >> 16);
        if (here < 2)
            out[o++] = (uint8_t)(v >> 8);
        if (here < 1)
            out[o++] = (uint8_t)v;
        /* Canonical: the bits the padding drops are zero. */
        if ((here == 1 && (v & 0xff)) || (here == 2 && (v & 0xffff)))
            return -1;
    }
    return (ssize_t)o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t cap = size / 4 * 3;
    char *in = malloc(size ? size : 1);
    uint8_t *out = malloc(cap ? cap : 1);
    uint8_t *ref = malloc(cap + 3);
    REQUIRE(in && out && ref);
    memcpy(in, data, size);

    ssize_t n = wisp__base64_decode(in, size, out);
    ssize_t rn = reference(data, size, ref);
    REQUIRE(n == rn);
    if (n >= 0) {
        REQUIRE(memcmp(out, ref, (size_t)n) == 0);
        char *back = malloc(WISP__BASE64_LEN((size_t)n) + 1);
        REQUIRE(back);
        size_t bl = wisp__base64_encode(out, (size_t)n, back);
        REQUIRE(bl == size && memcmp(back, data, size) == 0);
        free(back);
    }

    /* The input as bytes: encode, then decode back. */
    size_t el = WISP__BASE64_LEN(size);
    char *enc = malloc(el ? el : 1);
    uint8_t *dec = malloc(el / 4 * 3 + 1);
    REQUIRE(enc && dec);
    REQUIRE(wisp__base64_encode(data, size, enc) == el);
    for (size_t i = 0; i < el; i++)
        REQUIRE(sextet((uint8_t)enc[i]) >= 0 ||
                (enc[i] == '=' && i + 2 >= el));
    REQUIRE(wisp__base64_decode(enc, el, dec) == (ssize_t)size);
    REQUIRE(memcmp(dec, data, size) == 0);
    free(enc);
    free(dec);
    free(in);
    free(out);
    free(ref);
    return 0;
}
