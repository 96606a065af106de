/* The text/event-stream reader (include/wisp/sse.h), after the WHATWG
 * HTML standard, "Interpreting an event stream".
 *
 * Lines are cut on the raw bytes: CR and LF are ASCII, so they never
 * occur inside a UTF-8 sequence, and the standard's UTF-8 decoder, on an
 * unfinished sequence followed by CR or LF, emits one U+FFFD and then
 * processes the CR or LF. Decoding each line on its own therefore gives
 * the same text as decoding the stream first; it happens when a field's
 * value is stored (names are compared as bytes: an invalid byte never
 * matches "data"). A line found whole inside a piece is parsed where it
 * lies; only a line cut by the end of a piece is copied.
 *
 * The memory bound counts the bytes of the current line (before
 * decoding) and the stored buffers. It is checked as bytes are taken and
 * values stored, so where a stream fails depends on the stream, not on
 * how it was split: the events dispatched before the failure are the
 * same for every split. */
#include <stdlib.h>
#include <string.h>

#include "wisp/sse.h"

#define DEFAULT_MAX (1u << 20)

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

struct wisp_sse_reader {
    wisp_sse_event_cb cb;
    void *arg;
    size_t max;
    int err;            /* sticky error, 0 when none */
    unsigned char first_line; /* the next line is the stream's first */
    unsigned char after_cr;   /* the last byte was a CR ending a line */
    int64_t retry;
    sbuf line;  /* the current line, when cut by the end of a piece */
    sbuf data;  /* data buffer */
    sbuf type;  /* event type buffer */
    sbuf idbuf; /* last event ID buffer */
    sbuf lastid; /* last event ID string, set at dispatch */
};

static size_t used(const wisp_sse_reader_t *r)
{
    return r->line.len + r->data.len + r->type.len + r->idbuf.len +
           r->lastid.len;
}

/* Make room for `n` more bytes plus a NUL. The caller has checked the
 * memory bound. */
static int reserve(sbuf *b, size_t n)
{
    if (b->len + n + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        return -ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* The WHATWG UTF-8 decoder over s[0..n), re-encoded: valid sequences
 * are copied, each maximal invalid subpart becomes EF BF BD. Writes to
 * `out` when not NULL; returns the output length. */
static size_t utf8_fix(const unsigned char *s, size_t n, char *out)
{
    size_t o = 0, start = 0;
    unsigned need = 0, seen = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    for (size_t i = 0; i < n; i++) {
        unsigned char b = s[i];
        if (need == 0) {
            start = i;
            if (b < 0x80) {
                if (out)
                    out[o] = (char)b;
                o++;
                continue;
            }
            if (b >= 0xC2 && b <= 0xDF) {
                need = 1;
            } else if (b >= 0xE0 && b <= 0xEF) {
                if (b == 0xE0)
                    lo = 0xA0;
                if (b == 0xED)
                    hi = 0x9F;
                need = 2;
            } else if (b >= 0xF0 && b <= 0xF4) {
                if (b == 0xF0)
                    lo = 0x90;
                if (b == 0xF4)
                    hi = 0x8F;
                need = 3;
            } else {
                goto bad;
            }
            continue;
        }
        if (b < lo || b > hi) {
            /* The sequence so far is one error; the byte starts anew. */
            need = seen = 0;
            lo = 0x80;
            hi = 0xBF;
            i--;
            goto bad;
        }
        lo = 0x80;
        hi = 0xBF;
        if (++seen == need) {
            if (out)
                memcpy(out + o, s + start, need + 1);
            o += need + 1;
            need = seen = 0;
        }
        continue;
bad:
        if (out)
            memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3;
    }
    if (need) {
        if (out)
            memcpy(out + o, "\xEF\xBF\xBD", 3);
        o += 3;
    }
    return o;
}

/* Store the decoded value v[0..n) into `b` (replacing or appending),
 * then `tail` (0 or 1 byte). */
static int store(wisp_sse_reader_t *r, sbuf *b, int append, const char *v,
                 size_t n, const char *tail)
{
    size_t dec = utf8_fix((const unsigned char *)v, n, NULL);
    size_t t = tail ? 1 : 0;
    size_t keep = append ? b->len : 0;
    /* used() still counts the line being parsed, and `b` as it is. */
    if (used(r) - b->len + keep + dec + t > r->max)
        return -EMSGSIZE;
    b->len = keep;
    if (reserve(b, dec + t) < 0)
        return -ENOMEM;
    utf8_fix((const unsigned char *)v, n, b->p + b->len);
    b->len += dec;
    if (tail)
        b->p[b->len++] = *tail;
    b->p[b->len] = 0;
    return 0;
}

static int copy_buf(wisp_sse_reader_t *r, sbuf *dst, const sbuf *src)
{
    if (used(r) - dst->len + src->len > r->max)
        return -EMSGSIZE;
    if (reserve(dst, src->len) < 0)
        return -ENOMEM;
    if (src->len)
        memcpy(dst->p, src->p, src->len);
    dst->len = src->len;
    dst->p[dst->len] = 0;
    return 0;
}

static int dispatch(wisp_sse_reader_t *r)
{
    /* 1. The last event ID string takes the buffer's value. */
    int e = copy_buf(r, &r->lastid, &r->idbuf);
    if (e < 0)
        return e;
    /* 2. No data: reset the buffers, dispatch nothing. */
    if (r->data.len == 0) {
        r->type.len = 0;
        return 0;
    }
    /* 3. Remove the data's final LF (there always is one). */
    r->data.len--;
    r->data.p[r->data.len] = 0;
    wisp_sse_event_t ev;
    if (r->type.len) {
        ev.type.ptr = r->type.p;
        ev.type.len = r->type.len;
    } else {
        ev.type.ptr = "message";
        ev.type.len = 7;
    }
    ev.data.ptr = r->data.p;
    ev.data.len = r->data.len;
    ev.id.ptr = r->lastid.len ? r->lastid.p : "";
    ev.id.len = r->lastid.len;
    int rc = r->cb(&ev, r->arg);
    r->data.len = 0;
    r->type.len = 0;
    return rc < 0 ? rc : 0;
}

static int is_field(const char *f, size_t n, const char *name)
{
    size_t l = strlen(name);
    return n == l && memcmp(f, name, l) == 0;
}

static int retry_field(wisp_sse_reader_t *r, const char *v, size_t n)
{
    if (n == 0)
        return 0;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return 0; /* ignored */
    }
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned)(v[i] - '0');
        if (x > ((uint64_t)INT64_MAX - d) / 10) {
            x = INT64_MAX;
            break;
        }
        x = x * 10 + d;
    }
    r->retry = (int64_t)x;
    return 0;
}

/* One complete line, without its end. */
static int line(wisp_sse_reader_t *r, const char *s, size_t n)
{
    if (r->first_line) {
        r->first_line = 0;
        if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
            s += 3;
            n -= 3;
        }
    }
    if (n == 0)
        return dispatch(r);
    if (s[0] == ':')
        return 0; /* a comment */
    const char *colon = memchr(s, ':', n);
    size_t fl = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vl = colon ? n - fl - 1 : 0;
    if (vl && v[0] == ' ') {
        v++;
        vl--;
    }
    if (is_field(s, fl, "event"))
        return store(r, &r->type, 0, v, vl, NULL);
    if (is_field(s, fl, "data"))
        return store(r, &r->data, 1, v, vl, "\n");
    if (is_field(s, fl, "id")) {
        if (memchr(v, 0, vl))
            return 0;
        return store(r, &r->idbuf, 0, v, vl, NULL);
    }
    if (is_field(s, fl, "retry"))
        return retry_field(r, v, vl);
    return 0; /* any other field is ignored */
}

wisp_sse_reader_t *wisp_sse_reader_create(size_t max_bytes,
                                          wisp_sse_event_cb cb, void *arg)
{
    if (!cb) {
        errno = EINVAL;
        return NULL;
    }
    wisp_sse_reader_t *r = calloc(1, sizeof *r);
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    r->cb = cb;
    r->arg = arg;
    r->max = max_bytes ? max_bytes : DEFAULT_MAX;
    r->first_line = 1;
    r->retry = -1;
    return r;
}

void wisp_sse_reader_destroy(wisp_sse_reader_t *r)
{
    if (!r)
        return;
    free(r->line.p);
    free(r->data.p);
    free(r->type.p);
    free(r->idbuf.p);
    free(r->lastid.p);
    free(r);
}

static int feed(wisp_sse_reader_t *r, const char *p, size_t len)
{
    size_t i = 0;
    if (r->after_cr && len) {
        r->after_cr = 0;
        if (p[0] == '\n')
            i = 1;
    }
    while (i < len) {
        /* Find the end of the line in this piece. */
        size_t j = i;
        while (j < len && p[j] != '\n' && p[j] != '\r')
            j++;
        size_t n = j - i;
        if (used(r) + n > r->max)
            return -EMSGSIZE;
        if (j == len) {
            /* The line goes on in the next piece. */
            if (reserve(&r->line, n) < 0)
                return -ENOMEM;
            memcpy(r->line.p + r->line.len, p + i, n);
            r->line.len += n;
            return 0;
        }
        int e;
        if (r->line.len) {
            if (reserve(&r->line, n) < 0)
                return -ENOMEM;
            memcpy(r->line.p + r->line.len, p + i, n);
            r->line.len += n;
            /* The line's bytes stay counted while it is parsed. */
            e = line(r, r->line.p, r->line.len);
            r->line.len = 0;
        } else {
            /* Count the line in place while it is parsed. */
            r->line.len = n;
            e = line(r, p + i, n);
            r->line.len = 0;
        }
        if (e < 0)
            return e;
        i = j + 1;
        if (p[j] == '\r') {
            if (i == len)
                r->after_cr = 1;
            else if (p[i] == '\n')
                i++;
        }
    }
    return 0;
}

int wisp_sse_reader_feed(wisp_sse_reader_t *r, const void *data, size_t len)
{
    if (r->err)
        return r->err;
    if (len == 0)
        return 0;
    int e = feed(r, data, len);
    if (e < 0) {
        r->line.len = 0;
        r->err = e;
    }
    return e;
}

int wisp_sse_reader_end(wisp_sse_reader_t *r)
{
    int ret = r->err;
    int id_changed = r->idbuf.len != r->lastid.len ||
                     (r->idbuf.len &&
                      memcmp(r->idbuf.p, r->lastid.p, r->idbuf.len) != 0);
    if (!ret && (r->line.len || r->data.len || r->type.len || id_changed))
        ret = 1;
    r->err = 0;
    r->line.len = 0;
    r->data.len = 0;
    r->type.len = 0;
    r->after_cr = 0;
    r->first_line = 1;
    /* The next stream starts from the last event ID string. */
    if (copy_buf(r, &r->idbuf, &r->lastid) < 0)
        r->idbuf.len = 0;
    return ret;
}

wisp_str_t wisp_sse_reader_last_id(const wisp_sse_reader_t *r)
{
    wisp_str_t s = {r->lastid.len ? r->lastid.p : "", r->lastid.len};
    return s;
}

int64_t wisp_sse_reader_retry(const wisp_sse_reader_t *r)
{
    return r->retry;
}
