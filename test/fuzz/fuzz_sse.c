/* libFuzzer target for src/http/sse_read.c, the text/event-stream reader.
 * Built by test/fuzz/meson.build; docs/fuzzing.md has the commands.
 *
 * Input: byte 0 picks the memory bound (0: the default; otherwise
 * 8 * byte 0), bytes 1 and 2 pick two cut points; the stream starts at
 * byte 3. Besides crashes and sanitizer reports it checks, trapping when
 * one fails:
 *   - fed whole, in three pieces cut at the picked points, and one byte
 *     per call (each piece from an exact heap copy, so reading outside
 *     it is an ASan report), the reader dispatches the same events (type,
 *     data, id) and ends with the same answer, the same last event ID
 *     and the same reconnection time;
 *   - with the default bound (never reached by 4 KiB of input), the
 *     events are those of a slow reference written here from the WHATWG
 *     HTML standard, which decodes UTF-8 by Unicode's "maximal subpart"
 *     rule (Unicode §3.9, Table 3-7) rather than the reader's state
 *     machine;
 *   - every event's data, type and id is valid UTF-8 and never longer
 *     than three times the input.
 * A crash found here becomes a row in test/http/sse_test.c. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "wisp/sse.h"

typedef struct log {
    unsigned char *p;
    size_t len, cap;
    size_t in_len;
} log_t;

static void put(log_t *l, const void *d, size_t n)
{
    if (l->len + n > l->cap) {
        size_t cap = l->cap ? l->cap : 256;
        while (cap < l->len + n)
            cap *= 2;
        l->p = realloc(l->p, cap);
        REQUIRE(l->p);
        l->cap = cap;
    }
    if (n)
        memcpy(l->p + l->len, d, n);
    l->len += n;
}

static void put_str(log_t *l, const char *s, size_t n)
{
    uint32_t n32 = (uint32_t)n;
    put(l, &n32, 4);
    put(l, s, n);
}

/* Strict RFC 3629 check, written plainly. */
static int valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            k = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            k = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= n || (s[i + j] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) ||
            (k == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += k + 1;
    }
    return 1;
}

static int on_event(const wisp_sse_event_t *e, void *arg)
{
    log_t *l = arg;
    REQUIRE(e->type.len > 0);
    REQUIRE(valid_utf8((const unsigned char *)e->type.ptr, e->type.len));
    REQUIRE(valid_utf8((const unsigned char *)e->data.ptr, e->data.len));
    REQUIRE(valid_utf8((const unsigned char *)e->id.ptr, e->id.len));
    REQUIRE(e->data.len <= 3 * l->in_len);
    REQUIRE(memchr(e->id.ptr, 0, e->id.len) == NULL);
    put_str(l, e->type.ptr, e->type.len);
    put_str(l, e->id.ptr, e->id.len);
    put_str(l, e->data.ptr, e->data.len);
    return 0;
}

typedef struct outcome {
    log_t log;
    int err;     /* the first error of a feed, 0 when none */
    int end;     /* wisp_sse_reader_end's answer */
    char last[4096 * 3 + 1];
    size_t last_len;
    int64_t retry;
} outcome;

static void feed(outcome *o, const uint8_t *in, size_t n, size_t max,
                 const size_t *cuts, size_t ncut)
{
    memset(o, 0, sizeof *o);
    o->log.in_len = n;
    wisp_sse_reader_t *r = wisp_sse_reader_create(max, on_event, &o->log);
    REQUIRE(r);
    size_t at = 0;
    for (size_t c = 0; c <= ncut && !o->err; c++) {
        size_t end = c < ncut ? cuts[c] : n;
        if (end < at)
            continue;
        char *piece = malloc(end - at ? end - at : 1);
        REQUIRE(piece);
        memcpy(piece, in + at, end - at);
        o->err = wisp_sse_reader_feed(r, piece, end - at);
        REQUIRE(o->err == 0 || o->err == -EMSGSIZE);
        free(piece);
        at = end;
    }
    wisp_str_t last = wisp_sse_reader_last_id(r);
    REQUIRE(last.len <= sizeof o->last);
    memcpy(o->last, last.ptr, last.len);
    o->last_len = last.len;
    o->retry = wisp_sse_reader_retry(r);
    o->end = wisp_sse_reader_end(r);
    REQUIRE(o->end == (o->err ? o->err : o->end));
    REQUIRE(o->err || o->end == 0 || o->end == 1);
    wisp_sse_reader_destroy(r);
}

/* ------------------------------------------------------------ reference */

/* Length of the maximal subpart at s[0..n) (Unicode Table 3-7): the
 * longest prefix of a well-formed sequence; *whole set when it is a
 * complete sequence. */
static size_t subpart(const unsigned char *s, size_t n, int *whole)
{
    unsigned c = s[0];
    unsigned lo = 0x80, hi = 0xBF;
    size_t len;
    *whole = 0;
    if (c < 0x80) {
        *whole = 1;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 1;
    if (c == 0xE0)
        lo = 0xA0;
    else if (c == 0xED)
        hi = 0x9F;
    else if (c == 0xF0)
        lo = 0x90;
    else if (c == 0xF4)
        hi = 0x8F;
    size_t i = 1;
    if (i < n && s[i] >= lo && s[i] <= hi) {
        i++;
        while (i < len && i < n && s[i] >= 0x80 && s[i] <= 0xBF)
            i++;
    }
    if (i == len)
        *whole = 1;
    return i;
}

static size_t decode(const unsigned char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        int whole;
        size_t k = subpart(s + i, n - i, &whole);
        if (whole) {
            memcpy(out + o, s + i, k);
            o += k;
        } else {
            memcpy(out + o, "\xEF\xBF\xBD", 3);
            o += 3;
        }
        i += k;
    }
    return o;
}

static void reference(const uint8_t *in, size_t n, log_t *l, char *last,
                      size_t *last_len, int64_t *retry)
{
    size_t cap = 3 * n + 16;
    char *data = malloc(cap), *type = malloc(cap), *id = malloc(cap);
    char *val = malloc(cap);
    REQUIRE(data && type && id && val);
    size_t dl = 0, tl = 0, il = 0;
    int has_data = 0;
    *last_len = 0;
    *retry = -1;
    size_t i = 0;
    if (n >= 3 && memcmp(in, "\xEF\xBB\xBF", 3) == 0)
        i = 3;
    for (;;) {
        size_t j = i;
        while (j < n && in[j] != '\r' && in[j] != '\n')
            j++;
        if (j == n)
            break; /* an unfinished line is discarded */
        const uint8_t *ln = in + i;
        size_t len = j - i;
        i = j + 1;
        if (in[j] == '\r' && i < n && in[i] == '\n')
            i++;
        if (len == 0) {
            memcpy(last, id, il);
            *last_len = il;
            if (has_data) {
                put_str(l, tl ? type : "message", tl ? tl : 7);
                put_str(l, last, il);
                put_str(l, data, dl - 1);
            }
            dl = tl = 0;
            has_data = 0;
            continue;
        }
        if (ln[0] == ':')
            continue;
        size_t f = 0;
        while (f < len && ln[f] != ':')
            f++;
        const uint8_t *v = ln + f;
        size_t vl = 0;
        if (f < len) {
            v = ln + f + 1;
            vl = len - f - 1;
            if (vl && v[0] == ' ') {
                v++;
                vl--;
            }
        }
        size_t dv = decode(v, vl, val);
        if (f == 4 && memcmp(ln, "data", 4) == 0) {
            memcpy(data + dl, val, dv);
            dl += dv;
            data[dl++] = '\n';
            has_data = 1;
        } else if (f == 5 && memcmp(ln, "event", 5) == 0) {
            memcpy(type, val, dv);
            tl = dv;
        } else if (f == 2 && memcmp(ln, "id", 2) == 0) {
            if (!memchr(v, 0, vl)) {
                memcpy(id, val, dv);
                il = dv;
            }
        } else if (f == 5 && memcmp(ln, "retry", 5) == 0 && vl) {
            size_t k = 0;
            while (k < vl && v[k] >= '0' && v[k] <= '9')
                k++;
            if (k == vl) {
                uint64_t x = 0;
                for (k = 0; k < vl; k++) {
                    x = x * 10 + (uint64_t)(v[k] - '0');
                    if (x > (uint64_t)INT64_MAX) {
                        x = INT64_MAX;
                        break;
                    }
                }
                *retry = (int64_t)x;
            }
        }
    }
    free(data);
    free(type);
    free(id);
    free(val);
}

static int same(const outcome *a, const outcome *b)
{
    return a->err == b->err && a->end == b->end &&
           a->log.len == b->log.len &&
           (a->log.len == 0 || memcmp(a->log.p, b->log.p, a->log.len) == 0) &&
           a->last_len == b->last_len &&
           memcmp(a->last, b->last, a->last_len) == 0 && a->retry == b->retry;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3 || size > 4096 + 3)
        return 0;
    size_t max = (size_t)data[0] * 8;
    const uint8_t *in = data + 3;
    size_t n = size - 3;
    size_t cuts[2] = {data[1] % (n + 1), data[2] % (n + 1)};
    if (cuts[0] > cuts[1]) {
        size_t t = cuts[0];
        cuts[0] = cuts[1];
        cuts[1] = t;
    }
    static outcome whole, three, bytes;
    static size_t every[4096];
    feed(&whole, in, n, max, NULL, 0);
    feed(&three, in, n, max, cuts, 2);
    for (size_t k = 0; k < n; k++)
        every[k] = k + 1;
    feed(&bytes, in, n, max, every, n);
    REQUIRE(same(&whole, &three));
    REQUIRE(same(&whole, &bytes));

    if (max == 0) {
        log_t ref = {0};
        static char last[4096 * 3 + 1];
        size_t last_len;
        int64_t retry;
        reference(in, n, &ref, last, &last_len, &retry);
        REQUIRE(whole.err == 0);
        REQUIRE(ref.len == whole.log.len &&
                (ref.len == 0 || memcmp(ref.p, whole.log.p, ref.len) == 0));
        REQUIRE(last_len == whole.last_len &&
                memcmp(last, whole.last, last_len) == 0);
        REQUIRE(retry == whole.retry);
        free(ref.p);
    }
    free(whole.log.p);
    free(three.log.p);
    free(bytes.log.p);
    return 0;
}
