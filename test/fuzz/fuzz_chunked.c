/* libFuzzer target for src/http/chunked.c, the chunked-body decoder.
 * Built by test/fuzz/meson.build; docs/fuzzing.md has the commands.
 *
 * Input: byte 0 picks max_trailer (0-63, or 4096 when its high bit is
 * set), bytes 1 and 2 pick two cut points; the body starts at byte 3.
 * Besides crashes and sanitizer reports it checks, trapping when one
 * fails:
 *   - fed whole, in three pieces cut at the picked points, and one byte
 *     per call (all but the piece of the call poisoned, so reading or
 *     writing outside it is an ASan report), the decoder gives the same
 *     result, the same decoded data and the same bytes left over;
 *   - when it accepts a body, a slow reference decoder written from
 *     RFC 9112 §7.1 (lenient: it trusts the decoder's verdict on syntax
 *     and recomputes only the framing) finds the same data and the same
 *     end of the body;
 *   - the output never grows. A crash found here becomes a row in
 *     test/http/chunked_test.c. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "http/chunked.h"
#include "wisp/common.h"

typedef struct outcome {
    ssize_t r;    /* the final answer */
    char *out;    /* decoded data */
    size_t olen;
    size_t used;  /* input bytes consumed when the body ended */
} outcome;

/* Feed in[0..n) in pieces ending at the offsets cuts[0..ncut) (then n),
 * from an exact heap copy in which all but the piece being decoded is
 * poisoned, so a read or write outside it is an ASan report. */
static outcome feed(const uint8_t *in, size_t n, uint32_t mt,
                    const size_t *cuts, size_t ncut)
{
    outcome o = {-EAGAIN, malloc(n + 1), 0, 0};
    wisp__chunked d;
    size_t at = 0;
    char *copy = malloc(n ? n : 1);
    REQUIRE(o.out && copy);
    memcpy(copy, in, n);
    ASAN_POISON_MEMORY_REGION(copy, n);
    wisp__chunked_init(&d, mt);
    for (size_t c = 0; c <= ncut && o.r == -EAGAIN; c++) {
        size_t end = c < ncut ? cuts[c] : n;
        if (end < at)
            continue;
        size_t len = end - at, orig = len;
        char *piece = copy + at;
        ASAN_UNPOISON_MEMORY_REGION(piece, len);
        o.r = wisp__chunked_decode(&d, piece, &len);
        REQUIRE(o.r == -EAGAIN || o.r == WISP_EPARSE ||
                (o.r >= 0 && (size_t)o.r <= orig));
        REQUIRE(len <= orig && (o.r < 0 || len + (size_t)o.r <= orig));
        memcpy(o.out + o.olen, piece, len);
        o.olen += len;
        if (o.r >= 0) {
            /* The left-over bytes follow the data, unchanged. */
            REQUIRE(memcmp(piece + len, in + end - (size_t)o.r,
                           (size_t)o.r) == 0);
            o.used = end - (size_t)o.r;
            o.r = (ssize_t)(n - o.used);
        }
        ASAN_POISON_MEMORY_REGION(piece, orig);
        at = end;
    }
    ASAN_UNPOISON_MEMORY_REGION(copy, n);
    free(copy);
    return o;
}

static int hexdig(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The reference: chunk-size (hex), anything up to LF, data, CRLF; after
 * the last chunk, lines up to an empty one. Returns the bytes of the
 * body, or 0 when it does not see a whole body (which the decoder then
 * must not have accepted). */
static size_t reference(const uint8_t *in, size_t n, char *out, size_t *olen)
{
    size_t i = 0;
    *olen = 0;
    for (;;) {
        uint64_t size = 0;
        int digits = 0, v;
        while (i < n && (v = hexdig(in[i])) >= 0) {
            if (size >> 59)
                return 0;
            size = size << 4 | (uint64_t)v;
            i++;
            digits++;
        }
        if (!digits)
            return 0;
        while (i < n && in[i] != '\n')
            i++;
        if (i++ >= n)
            return 0;
        if (size == 0)
            break;
        if (size > n - i || n - i - size < 2)
            return 0;
        memcpy(out + *olen, in + i, size);
        *olen += size;
        i += size;
        if (in[i] != '\r' || in[i + 1] != '\n')
            return 0;
        i += 2;
    }
    /* trailer-section CRLF: lines until an empty one. */
    for (;;) {
        if (n - i >= 2 && in[i] == '\r' && in[i + 1] == '\n')
            return i + 2;
        while (i < n && in[i] != '\n')
            i++;
        if (i++ >= n)
            return 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > 65536)
        return 0;
    uint32_t mt = data[0] & 0x80 ? 4096 : data[0] & 63u;
    const uint8_t *in = data + 3;
    size_t n = size - 3;
    size_t cuts[2] = {data[1] % (n + 1), data[2] % (n + 1)};
    if (cuts[0] > cuts[1]) {
        size_t t = cuts[0];
        cuts[0] = cuts[1];
        cuts[1] = t;
    }

    outcome whole = feed(in, n, mt, NULL, 0);
    outcome three = feed(in, n, mt, cuts, 2);
    size_t every[4096];
    size_t ne = n < 4096 ? n : 4096;
    for (size_t k = 0; k < ne; k++)
        every[k] = k + 1;
    outcome bytes = feed(in, n, mt, every, ne);

    const outcome *o[2] = {&three, &bytes};
    for (int k = 0; k < 2; k++) {
        REQUIRE(o[k]->r == whole.r);
        /* After an error the data decoded so far depends on where the
         * input was cut; otherwise it may not. */
        if (whole.r != WISP_EPARSE)
            REQUIRE(o[k]->olen == whole.olen &&
                    memcmp(o[k]->out, whole.out, whole.olen) == 0);
    }
    REQUIRE(whole.olen <= n);

    if (whole.r >= 0) {
        char *ref = malloc(n + 1);
        size_t rlen;
        REQUIRE(ref);
        size_t end = reference(in, n, ref, &rlen);
        REQUIRE(end == whole.used);
        REQUIRE(rlen == whole.olen && memcmp(ref, whole.out, rlen) == 0);
        free(ref);
    }
    free(whole.out);
    free(three.out);
    free(bytes.out);
    return 0;
}
