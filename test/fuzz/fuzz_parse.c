/* libFuzzer target for src/http/parse.c and src/http/chunked.c.
 * Built by test/fuzz/meson.build; docs/fuzzing.md has the commands.
 *
 * Besides crashes and sanitizer reports it checks properties, trapping
 * when one fails:
 *   - the request parser gives the same answer and the same fields
 *     whether the input comes whole or one byte at a time (each prefix
 *     ending at a poisoned byte, so reading ahead is an ASan report);
 *   - so does the chunked decoder, fed whole or one byte per call, for
 *     the result, the decoded data and the bytes left over;
 *   - decoders never grow their input;
 *   - the parser's SSE2/SWAR fast paths answer exactly as its portable
 *     byte loops do (parse_ref.c: the same source without them).
 * Each input is parsed with fixed limits, then with limits taken from
 * its first bytes so that small limits get explored too. A crash found
 * here becomes a row in test/http/parse_test.c or chunked_test.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/chunked.h"
#include "http/parse.h"
#include "wisp/http.h"

#if defined(__has_include)
#if __has_include(<sanitizer/asan_interface.h>)
#include <sanitizer/asan_interface.h>
#endif
#endif
#ifndef ASAN_POISON_MEMORY_REGION
#define ASAN_POISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#define ASAN_UNPOISON_MEMORY_REGION(p, n) ((void)(p), (void)(n))
#endif

#define MAX_FIELDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* parse_ref.c */
ssize_t wisp__parse_request_ref(const char *buf, size_t len, size_t *scan,
                                wisp__req_head *rh,
                                const wisp__parse_limits *lim);

#define REQUIRE(c)                                                          \
    do {                                                                    \
        if (!(c))                                                           \
            __builtin_trap();                                               \
    } while (0)

static int known_result(ssize_t r)
{
    return r >= 0 || r == -EAGAIN || r == WISP_EPARSE ||
           r == WISP_ETOOLONG_LINE || r == WISP_ETOOLONG_HEAD ||
           r == WISP_ETOOMANY_HEADERS || r == WISP_EMETHOD ||
           r == WISP_EVERSION || r == WISP_EEXPECT || r == WISP_ECODING;
}

static void within(const char *p, size_t n, const char *buf, size_t len)
{
    REQUIRE(p >= buf && p + n <= buf + len);
}

static void same_head(const wisp__req_head *a, const wisp__req_head *b)
{
    REQUIRE(a->method == b->method && a->minor == b->minor &&
            a->flags == b->flags && a->target == b->target &&
            a->target_len == b->target_len && a->path == b->path &&
            a->path_len == b->path_len && a->query == b->query &&
            a->query_len == b->query_len && a->host == b->host &&
            a->host_len == b->host_len &&
            a->content_length == b->content_length &&
            a->num_headers == b->num_headers);
    for (uint32_t i = 0; i < a->num_headers; i++)
        REQUIRE(memcmp(&a->headers[i], &b->headers[i],
                       sizeof a->headers[i]) == 0);
}

/* Decode a copy of p[0..n) both ways; results must agree where they
 * can, and never grow. */
static void fuzz_pct(const char *p, size_t n)
{
    char *a = malloc(n + 1), *b = malloc(n + 1), *c = malloc(n + 1);
    memcpy(a, p, n);
    memcpy(b, p, n);
    ssize_t rp = wisp__pct_decode_path(a, n);
    ssize_t rq = wisp__pct_decode_query(b, b, n);
    ssize_t rc = wisp__pct_decode_query(c, p, n);
    REQUIRE(rp == WISP_EPARSE || (rp >= 0 && (size_t)rp <= n));
    REQUIRE(rq == rc && (rq == WISP_EPARSE || (size_t)rq <= n));
    REQUIRE((rp < 0) == (rq < 0));
    if (rq >= 0) {
        REQUIRE(memcmp(b, c, (size_t)rq) == 0);
        /* No escape decodes to NUL (raw NUL is not our business: the
         * parser never lets one into a target). */
        if (!memchr(p, '\0', n))
            REQUIRE(!memchr(a, '\0', (size_t)rp) &&
                    !memchr(b, '\0', (size_t)rq));
        if (!memchr(p, '+', n))
            REQUIRE(rp == rq && memcmp(a, b, (size_t)rq) == 0);
    }
    free(a);
    free(b);
    free(c);
}

static void fuzz_request(const uint8_t *data, size_t size,
                         const wisp__parse_limits *lim, uint32_t cap)
{
    wisp__header h1[MAX_FIELDS], h2[MAX_FIELDS];
    wisp__req_head a, b;
    size_t scan;
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);

    memset(&a, 0, sizeof a);
    a.headers = h1;
    a.max_headers = cap;
    b = a;
    b.headers = h2;

    scan = 0;
    ssize_t whole = wisp__parse_request(buf, size, &scan, &a, lim);
    REQUIRE(known_result(whole));
    REQUIRE(whole < 0 || (size_t)whole <= size);

    /* The portable byte loops give the same answer and fields. */
    {
        wisp__header h3[MAX_FIELDS];
        wisp__req_head c = a;
        c.headers = h3;
        scan = 0;
        ssize_t ref = wisp__parse_request_ref(buf, size, &scan, &c, lim);
        REQUIRE(ref == whole);
        if (whole >= 0) {
            /* An absolute-form target without a path has the literal
             * "/" as its path: one per copy of the parser. */
            if (c.path != a.path) {
                REQUIRE((a.flags & WISP__RH_ABSOLUTE) && a.path_len == 1 &&
                        c.path_len == 1 && a.path[0] == '/' &&
                        c.path[0] == '/');
                c.path = a.path;
            }
            same_head(&a, &c);
        }
    }

    /* Byte by byte: the bytes past the prefix are poisoned. */
    ASAN_POISON_MEMORY_REGION(buf, size);
    size_t k = 0;
    ssize_t bytes;
    scan = 0;
    for (;;) {
        ASAN_UNPOISON_MEMORY_REGION(buf, k);
        bytes = wisp__parse_request(buf, k, &scan, &b, lim);
        if (bytes != -EAGAIN || k == size)
            break;
        k++;
    }
    ASAN_UNPOISON_MEMORY_REGION(buf, size);
    REQUIRE(bytes == whole);

    if (whole >= 0) {
        REQUIRE((size_t)whole == k);
        same_head(&a, &b);
        REQUIRE(a.method >= 0 && a.method < WISP_METHOD_COUNT &&
                a.method != WISP_METHOD_CONNECT);
        REQUIRE(a.minor == 0 || a.minor == 1);
        REQUIRE(a.num_headers <= cap && a.num_headers <= lim->max_headers);
        within(a.target, a.target_len, buf, (size_t)whole);
        /* Only an absolute-form target without a path has a path that
         * is not in the buffer: the literal "/". */
        if (a.path < buf || a.path >= buf + whole)
            REQUIRE((a.flags & WISP__RH_ABSOLUTE) && a.path_len == 1 &&
                    a.path[0] == '/');
        else
            within(a.path, a.path_len, buf, (size_t)whole);
        if (a.query)
            within(a.query, a.query_len, buf, (size_t)whole);
        if (a.host)
            within(a.host, a.host_len, buf, (size_t)whole);
        for (uint32_t i = 0; i < a.num_headers; i++) {
            within(a.headers[i].name, a.headers[i].name_len, buf,
                   (size_t)whole);
            within(a.headers[i].value, a.headers[i].value_len, buf,
                   (size_t)whole);
        }
        fuzz_pct(a.path, a.path_len);
        if (a.query)
            fuzz_pct(a.query, a.query_len);
    }
    free(buf);
}

static void fuzz_chunked(const uint8_t *data, size_t size, uint32_t mt)
{
    wisp__chunked d;
    char *whole = malloc(size ? size : 1);
    char *out = malloc(size + 1);
    size_t wlen = size, olen = 0, k = 0;
    memcpy(whole, data, size);

    wisp__chunked_init(&d, mt);
    ssize_t rw = wisp__chunked_decode(&d, whole, &wlen);
    REQUIRE(rw == -EAGAIN || rw == WISP_EPARSE || rw >= 0);
    REQUIRE(wlen <= size);
    REQUIRE(rw < 0 || wlen + (size_t)rw <= size);

    /* One byte per call, each in its own heap byte. */
    ssize_t rb = -EAGAIN;
    wisp__chunked_init(&d, mt);
    while (rb == -EAGAIN && k < size) {
        char *one = malloc(1);
        size_t len = 1;
        one[0] = (char)data[k++];
        rb = wisp__chunked_decode(&d, one, &len);
        REQUIRE(len <= 1);
        if (len)
            out[olen++] = one[0];
        REQUIRE(rb < 0 || (rb == 0 && len == 0)); /* ends on its LF */
        free(one);
    }
    if (rb >= 0)
        rb = (ssize_t)(size - k); /* the rest of the input is left over */
    REQUIRE(rb == rw);
    if (rw != WISP_EPARSE)
        REQUIRE(olen == wlen && memcmp(out, whole, wlen) == 0);
    if (rw >= 0)
        REQUIRE(memcmp(whole + wlen, data + size - (size_t)rw,
                       (size_t)rw) == 0);
    free(whole);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const wisp__parse_limits lim = {
        .max_request_line = 1024, .max_head = 8192, .max_headers = 32};

    if (size > 65536)
        return 0;
    fuzz_request(data, size, &lim, MAX_FIELDS);
    fuzz_chunked(data, size, 64);
    fuzz_pct((const char *)data, size);

    if (size >= 3) {
        wisp__parse_limits small = {
            .max_request_line = data[0] % 64u,
            .max_head = (uint32_t)data[1] * 2u,
            .max_headers = data[2] % 8u,
        };
        fuzz_request(data + 3, size - 3, &small, data[2] % 5u);
        fuzz_chunked(data + 3, size - 3, data[0] % 32u);
    }
    return 0;
}
