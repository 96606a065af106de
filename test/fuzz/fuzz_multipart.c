/* libFuzzer target for src/http/multipart.c.
 *
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -D_GNU_SOURCE -Iinclude -Isrc src/http/multipart.c \
 *       test/fuzz/fuzz_multipart.c -o fuzz_multipart
 *   ./fuzz_multipart -max_total_time=60 corpus/
 *
 * Input layout: byte 0 picks the boundary (low 2 bits), whether an opening
 * delimiter line is prepended (bit 2, so that mutations start inside a
 * part more often), a small max_part_bytes (bit 3) and a small header
 * buffer (bit 4); bytes 1-4 seed the split points; the body follows. Each
 * slice is a fresh heap copy of exactly its size, so ASan reports any read
 * outside it. Properties, trapping when one fails:
 *   - callbacks come in order (begin, data of len >= 1, end), with a name;
 *   - feeding the body in random slices gives the same result and, when
 *     it parses, the same parts (names, filenames, types, content) as
 *     feeding it whole; errors are sticky;
 *   - the whole input read as a Content-Type either gives a boundary
 *     inside it that wisp_multipart_init accepts, or
 *     WISP_EMULTIPART_BOUNDARY.
 * A crash found here becomes a row in test/http/multipart_test.c. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wisp/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                          \
    do {                                                                    \
        if (!(c))                                                           \
            __builtin_trap();                                               \
    } while (0)

#define TRACE_CAP (1 << 16)

typedef struct trace {
    uint8_t buf[TRACE_CAP];
    size_t len;
    int overflow;
    int in_part;
} trace;

static void put(trace *t, const void *p, size_t n)
{
    if (t->len + n > TRACE_CAP) {
        t->overflow = 1;
        return;
    }
    memcpy(t->buf + t->len, p, n);
    t->len += n;
}

static void put_str(trace *t, wisp_str_t s)
{
    uint32_t n = s.ptr ? (uint32_t)s.len : UINT32_MAX;
    put(t, &n, sizeof n);
    if (s.ptr)
        put(t, s.ptr, s.len);
}

static int on_begin(const wisp_multipart_part_t *p, void *arg)
{
    trace *t = arg;
    REQUIRE(!t->in_part && p->name.ptr);
    t->in_part = 1;
    put(t, "B", 1);
    put_str(t, p->name);
    put_str(t, p->filename);
    put_str(t, p->content_type);
    put_str(t, p->headers);
    return 0;
}

static int on_data(const wisp_multipart_part_t *p, const void *d, size_t n,
                   void *arg)
{
    trace *t = arg;
    (void)p;
    REQUIRE(t->in_part && n >= 1 && d);
    put(t, d, n);
    return 0;
}

static int on_end(const wisp_multipart_part_t *p, void *arg)
{
    trace *t = arg;
    (void)p;
    REQUIRE(t->in_part);
    t->in_part = 0;
    put(t, "E", 1);
    return 0;
}

static const char *const boundaries[] = {"b", "AaB", "--x-", "a b'()+_,-./:=?"};

static int run(const wisp_multipart_config_t *cfg0, wisp_str_t b,
               const uint8_t *body, size_t len, uint32_t seed, trace *t)
{
    static char hbuf[1024];
    wisp_multipart_config_t cfg = *cfg0;
    cfg.arg = t;
    cfg.header_buf = hbuf;
    memset(t, 0, sizeof *t);
    wisp_multipart_t mp;
    REQUIRE(wisp_multipart_init(&mp, b, &cfg) == 0);
    int rc = 0;
    size_t off = 0;
    while (off < len && rc == 0) {
        size_t k = len - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            k = 1 + (seed >> 16) % ((seed & 1) ? 4 : 64);
            if (k > len - off)
                k = len - off;
        }
        uint8_t *slice = malloc(k);
        REQUIRE(slice);
        memcpy(slice, body + off, k);
        rc = wisp_multipart_feed(&mp, slice, k);
        free(slice);
        off += k;
    }
    if (rc == 0)
        rc = wisp_multipart_finish(&mp);
    else
        REQUIRE(wisp_multipart_feed(&mp, "x", 1) == rc &&
                wisp_multipart_finish(&mp) == rc);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static trace whole, split;

    /* The input as a Content-Type value. */
    wisp_str_t ct = {(const char *)data, size}, got;
    int brc = wisp_multipart_boundary(ct, &got);
    REQUIRE(brc == 0 || brc == WISP_EMULTIPART_BOUNDARY);
    if (brc == 0) {
        REQUIRE(got.ptr >= ct.ptr && got.ptr + got.len <= ct.ptr + size &&
                got.len >= 1 && got.len <= WISP_MULTIPART_MAX_BOUNDARY);
        static char hb[64];
        wisp_multipart_config_t c = {0};
        c.header_buf = hb;
        c.header_buf_size = sizeof hb;
        wisp_multipart_t mp;
        REQUIRE(wisp_multipart_init(&mp, got, &c) == 0);
    }

    if (size < 5)
        return 0;
    uint8_t mode = data[0];
    uint32_t seed = (uint32_t)data[1] | (uint32_t)data[2] << 8 |
                    (uint32_t)data[3] << 16 | (uint32_t)data[4] << 24;
    seed |= 1; /* nonzero: split */
    const char *bs = boundaries[mode & 3];
    wisp_str_t b = {bs, strlen(bs)};

    /* The body, maybe behind an opening delimiter line. */
    size_t blen = size - 5;
    uint8_t *body = malloc(blen + 80);
    REQUIRE(body);
    size_t off = 0;
    if (mode & 4) {
        memcpy(body, "--", 2);
        memcpy(body + 2, bs, b.len);
        memcpy(body + 2 + b.len, "\r\n", 2);
        off = 4 + b.len;
    }
    memcpy(body + off, data + 5, blen);
    blen += off;

    wisp_multipart_config_t cfg = {0};
    cfg.on_part_begin = on_begin;
    cfg.on_part_data = on_data;
    cfg.on_part_end = on_end;
    cfg.header_buf_size = (mode & 16) ? 64 : 1024;
    cfg.max_part_bytes = (mode & 8) ? 7 : 0;
    cfg.max_parts = 8;

    int rw = run(&cfg, b, body, blen, 0, &whole);
    int rs = run(&cfg, b, body, blen, seed, &split);
    REQUIRE(rw == rs);
    if (rw == 0 && !whole.overflow && !split.overflow)
        REQUIRE(whole.len == split.len &&
                memcmp(whole.buf, split.buf, whole.len) == 0);
    if (rw == 0)
        REQUIRE(!whole.in_part);
    free(body);
    return 0;
}
