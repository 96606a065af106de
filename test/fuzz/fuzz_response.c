/* libFuzzer target for the client's response side: wisp__parse_response
 * (src/http/parse.c) and the body framing the client applies after it
 * (src/http/chunked.c, or a Content-Length). Built by
 * test/fuzz/meson.build; docs/fuzzing.md has the commands.
 *
 * Input: byte 0 picks the limits (small ones too), the response starts
 * at byte 1. Besides crashes and sanitizer reports it checks, trapping
 * when one fails:
 *   - the head parser gives the same answer, status, flags, length and
 *     fields whether the input comes whole or one byte more per call
 *     (resuming with its scan state; each prefix ends at a poisoned
 *     byte, so reading ahead is an ASan report);
 *   - an accepted head has a status in 100..599, fields that are slices
 *     of the input with no CR or LF, never both chunked and a length,
 *     and a length of -1 or more;
 *   - after a chunked head, the body decoded whole and one byte per call
 *     gives the same result, data and leftover, never growing.
 * A crash found here becomes a row in test/http/parse_test.c or
 * test/client/client_test.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "http/chunked.h"
#include "http/parse.h"
#include "wisp/common.h"

#define MAX_FIELDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct head {
    ssize_t r;
    wisp__resp_head rh;
    wisp__header hs[MAX_FIELDS];
} head;

static void parse_whole(const char *buf, size_t n, head *h,
                        const wisp__parse_limits *lim)
{
    size_t scan = 0;
    memset(&h->rh, 0, sizeof h->rh);
    h->rh.headers = h->hs;
    h->rh.max_headers = MAX_FIELDS;
    h->r = wisp__parse_response(buf, n, &scan, &h->rh, lim);
}

static void parse_bytes(const char *buf, size_t n, head *h,
                        const wisp__parse_limits *lim)
{
    size_t scan = 0;
    memset(&h->rh, 0, sizeof h->rh);
    h->rh.headers = h->hs;
    h->rh.max_headers = MAX_FIELDS;
    h->r = -EAGAIN;
    for (size_t k = 1; k <= n && h->r == -EAGAIN; k++) {
        ASAN_UNPOISON_MEMORY_REGION(buf + k - 1, 1);
        h->r = wisp__parse_response(buf, k, &scan, &h->rh, lim);
    }
}

static int in_buf(const char *p, size_t len, const char *buf, size_t n)
{
    return p >= buf && p + len <= buf + n;
}

static void same_head(const head *a, const head *b)
{
    REQUIRE(a->r == b->r);
    if (a->r < 0)
        return;
    REQUIRE(a->rh.status == b->rh.status && a->rh.minor == b->rh.minor &&
            a->rh.flags == b->rh.flags &&
            a->rh.content_length == b->rh.content_length &&
            a->rh.num_headers == b->rh.num_headers);
}

static void check_head(const head *h, const char *buf, size_t n)
{
    if (h->r < 0)
        return;
    REQUIRE((size_t)h->r <= n);
    REQUIRE(h->rh.status >= 100 && h->rh.status <= 599);
    REQUIRE(h->rh.content_length >= -1);
    REQUIRE(!((h->rh.flags & WISP__RH_CHUNKED) &&
              h->rh.content_length >= 0));
    for (uint32_t i = 0; i < h->rh.num_headers; i++) {
        const wisp__header *f = &h->rh.headers[i];
        REQUIRE(f->name_len > 0 && in_buf(f->name, f->name_len, buf, n));
        REQUIRE(in_buf(f->value, f->value_len, buf, n));
        REQUIRE(!memchr(f->value, '\r', f->value_len) &&
                !memchr(f->value, '\n', f->value_len));
    }
}

static void check_chunked(const char *body, size_t n)
{
    char *a = malloc(n ? n : 1), *b = malloc(n ? n : 1);
    REQUIRE(a && b);
    memcpy(a, body, n);
    memcpy(b, body, n);
    wisp__chunked d;
    wisp__chunked_init(&d, 256);
    size_t alen = n;
    ssize_t ra = wisp__chunked_decode(&d, a, &alen);
    REQUIRE(alen <= n);
    /* One byte per call: the decoded bytes gather at the front. */
    wisp__chunked_init(&d, 256);
    size_t out = 0, at = 0;
    ssize_t rb = -EAGAIN;
    while (at < n && rb == -EAGAIN) {
        size_t one = 1;
        char c = b[at];
        rb = wisp__chunked_decode(&d, &c, &one);
        REQUIRE(one <= 1);
        if (one)
            b[out++] = c;
        at++;
    }
    REQUIRE(ra == rb || (ra >= 0 && rb >= 0));
    if (ra >= 0 && rb >= 0) {
        /* Whole: `ra` bytes followed the body; byte by byte the body
         * ended at `at` (the byte that ended it left nothing over). */
        REQUIRE(alen == out && memcmp(a, b, out) == 0);
        REQUIRE((size_t)ra == n - at);
    }
    free(a);
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    wisp__parse_limits lim = {8192, 65536, 100};
    if (sel & 0x80) {
        lim.max_request_line = 16u + (sel & 0x1f);
        lim.max_head = 64u + (unsigned)(sel & 0x3f) * 8u;
        lim.max_headers = 1u + (sel & 0x07);
    }
    char *copy = malloc(n ? n : 1);
    REQUIRE(copy);
    memcpy(copy, in, n);

    static head whole, bytes;
    parse_whole(copy, n, &whole, &lim);
    check_head(&whole, copy, n);
    ASAN_POISON_MEMORY_REGION(copy, n);
    parse_bytes(copy, n, &bytes, &lim);
    ASAN_UNPOISON_MEMORY_REGION(copy, n);
    same_head(&whole, &bytes);

    if (whole.r >= 0 && (whole.rh.flags & WISP__RH_CHUNKED))
        check_chunked(copy + whole.r, n - (size_t)whole.r);
    free(copy);
    return 0;
}
