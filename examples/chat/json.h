/* chat — the little JSON the protocol needs, and nothing more.
 *
 * Reading: json_read_object() accepts exactly one flat object whose values
 * are strings, e.g. {"type":"join","room":"lobby","nick":"alice"}, under
 * the strict grammar of RFC 8259: no trailing commas, no comments, no
 * single quotes, no raw control characters inside strings, no lone
 * surrogates in \u escapes, nothing but whitespace after the object. Input
 * that is JSON but not such an object is told apart from input that is
 * not JSON at all, so that the client gets a precise error.
 *
 * Writing: jbuf is a growable byte buffer with appenders for literals,
 * numbers and escaped strings.
 *
 * Both sides assume UTF-8 that is already valid: wisp checks every text
 * message before on_message sees it, and everything the chat writes comes
 * from such messages or from ASCII literals. Included by main.c only. */
#ifndef CHAT_JSON_H
#define CHAT_JSON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- reading */

enum {
    JSON_EBAD = -1,       /* not JSON (syntax error, or too deeply nested) */
    JSON_ENOTOBJECT = -2, /* valid JSON, but the top level is no object */
    JSON_EVALUE = -3,     /* an object, but a value is not a string */
    JSON_EDUP = -4,       /* an object with the same key twice */
    JSON_ETOOMANY = -5,   /* an object with more fields than room for */
};

/* Arrays and objects nested deeper than this are refused as JSON_EBAD, so
 * skipping a value cannot exhaust the stack. */
#define JSON_MAX_DEPTH 16

/* One field of the object: key and value, decoded (escapes resolved), not
 * NUL-terminated, pointing into the caller's scratch buffer. */
typedef struct json_field {
    const char *key;
    size_t key_len;
    const char *val;
    size_t val_len;
} json_field;

typedef struct json_in {
    const unsigned char *p;
    const unsigned char *end;
    char *out; /* decoded strings go here */
} json_in;

static void json_ws(json_in *in)
{
    while (in->p < in->end && (*in->p == ' ' || *in->p == '\t' ||
                               *in->p == '\n' || *in->p == '\r'))
        in->p++;
}

static int json_hex4(json_in *in, uint32_t *cp)
{
    if (in->end - in->p < 4)
        return JSON_EBAD;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = in->p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return JSON_EBAD;
    }
    in->p += 4;
    *cp = v;
    return 0;
}

static char *json_put_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    return o;
}

/* A string starting at the opening quote. Its decoded bytes are written at
 * in->out, which never overtakes the input: an escape is never shorter
 * than what it decodes to (\uXXXX is 6 bytes for at most 3, a surrogate
 * pair 12 for 4), so a scratch buffer as long as the input is enough. */
static int json_string(json_in *in, const char **s, size_t *n)
{
    char *o = in->out;
    *s = o;
    in->p++; /* the opening quote */
    for (;;) {
        if (in->p >= in->end)
            return JSON_EBAD;
        unsigned c = *in->p++;
        if (c == '"')
            break;
        if (c < 0x20)
            return JSON_EBAD; /* raw control characters must be escaped */
        if (c != '\\') {
            *o++ = (char)c;
            continue;
        }
        if (in->p >= in->end)
            return JSON_EBAD;
        c = *in->p++;
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (json_hex4(in, &cp) < 0)
                return JSON_EBAD;
            if (cp >= 0xDC00 && cp <= 0xDFFF)
                return JSON_EBAD; /* a low surrogate alone */
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                /* A high surrogate needs its low half right after, or the
                 * result would not be UTF-8 at all. */
                if (in->end - in->p < 2 || in->p[0] != '\\' ||
                    in->p[1] != 'u')
                    return JSON_EBAD;
                in->p += 2;
                if (json_hex4(in, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
                    return JSON_EBAD;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            o = json_put_utf8(o, cp);
            break;
        }
        default:
            return JSON_EBAD;
        }
    }
    *n = (size_t)(o - *s);
    in->out = o;
    return 0;
}

static int json_digits(json_in *in)
{
    const unsigned char *start = in->p;
    while (in->p < in->end && *in->p >= '0' && *in->p <= '9')
        in->p++;
    return in->p > start ? 0 : JSON_EBAD;
}

static int json_number(json_in *in)
{
    if (*in->p == '-')
        in->p++;
    if (in->p < in->end && *in->p == '0')
        in->p++; /* no leading zeros: "01" is two tokens, refused below */
    else if (json_digits(in) < 0)
        return JSON_EBAD;
    if (in->p < in->end && *in->p == '.') {
        in->p++;
        if (json_digits(in) < 0)
            return JSON_EBAD;
    }
    if (in->p < in->end && (*in->p == 'e' || *in->p == 'E')) {
        in->p++;
        if (in->p < in->end && (*in->p == '+' || *in->p == '-'))
            in->p++;
        if (json_digits(in) < 0)
            return JSON_EBAD;
    }
    return 0;
}

static int json_literal(json_in *in, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(in->end - in->p) < n || memcmp(in->p, word, n) != 0)
        return JSON_EBAD;
    in->p += n;
    return 0;
}

/* Check (and step over) any one JSON value. Used only to tell "not JSON"
 * from "JSON of the wrong shape"; strings met on the way are decoded into
 * the scratch buffer like any other, which is harmless. */
static int json_skip_value(json_in *in, int depth)
{
    const char *s;
    size_t n;
    if (in->p >= in->end)
        return JSON_EBAD;
    switch (*in->p) {
    case '"':
        return json_string(in, &s, &n);
    case 't':
        return json_literal(in, "true");
    case 'f':
        return json_literal(in, "false");
    case 'n':
        return json_literal(in, "null");
    case '[':
    case '{': {
        int object = *in->p == '{';
        unsigned char close = object ? '}' : ']';
        if (depth >= JSON_MAX_DEPTH)
            return JSON_EBAD;
        in->p++;
        json_ws(in);
        if (in->p < in->end && *in->p == close) {
            in->p++;
            return 0;
        }
        for (;;) {
            if (object) {
                if (in->p >= in->end || *in->p != '"' ||
                    json_string(in, &s, &n) < 0)
                    return JSON_EBAD;
                json_ws(in);
                if (in->p >= in->end || *in->p != ':')
                    return JSON_EBAD;
                in->p++;
                json_ws(in);
            }
            if (json_skip_value(in, depth + 1) < 0)
                return JSON_EBAD;
            json_ws(in);
            if (in->p < in->end && *in->p == ',') {
                in->p++;
                json_ws(in);
                continue;
            }
            if (in->p < in->end && *in->p == close) {
                in->p++;
                return 0;
            }
            return JSON_EBAD;
        }
    }
    default:
        if (*in->p == '-' || (*in->p >= '0' && *in->p <= '9'))
            return json_number(in);
        return JSON_EBAD;
    }
}

/* Parse `len` bytes at `data` as one flat object of string values. Keys
 * and values are decoded into `scratch` (at least `len` bytes) and
 * described in `f` (room for `max` fields). Returns the number of fields,
 * or a JSON_E* code; syntax errors win over shape errors (a document that
 * is broken anywhere is JSON_EBAD). */
static int json_read_object(const char *data, size_t len, char *scratch,
                            json_field *f, int max)
{
    json_in in = {(const unsigned char *)data,
                  (const unsigned char *)data + len, scratch};
    json_ws(&in);
    if (in.p >= in.end)
        return JSON_EBAD;
    if (*in.p != '{') {
        int r = json_skip_value(&in, 0);
        json_ws(&in);
        return r == 0 && in.p == in.end ? JSON_ENOTOBJECT : JSON_EBAD;
    }
    in.p++;
    json_ws(&in);
    int n = 0, shape = 0;
    if (in.p < in.end && *in.p == '}') {
        in.p++;
    } else {
        for (;;) {
            json_field fl;
            if (in.p >= in.end || *in.p != '"' ||
                json_string(&in, &fl.key, &fl.key_len) < 0)
                return JSON_EBAD;
            json_ws(&in);
            if (in.p >= in.end || *in.p != ':')
                return JSON_EBAD;
            in.p++;
            json_ws(&in);
            if (in.p < in.end && *in.p == '"') {
                if (json_string(&in, &fl.val, &fl.val_len) < 0)
                    return JSON_EBAD;
                for (int i = 0; i < n && !shape; i++)
                    if (f[i].key_len == fl.key_len &&
                        memcmp(f[i].key, fl.key, fl.key_len) == 0)
                        shape = JSON_EDUP;
                if (n < max)
                    f[n++] = fl;
                else if (!shape)
                    shape = JSON_ETOOMANY;
            } else {
                if (json_skip_value(&in, 1) < 0)
                    return JSON_EBAD;
                if (!shape)
                    shape = JSON_EVALUE;
            }
            json_ws(&in);
            if (in.p < in.end && *in.p == ',') {
                in.p++;
                json_ws(&in);
                continue;
            }
            if (in.p < in.end && *in.p == '}') {
                in.p++;
                break;
            }
            return JSON_EBAD;
        }
    }
    json_ws(&in);
    if (in.p != in.end)
        return JSON_EBAD;
    return shape ? shape : n;
}

/* The value of `key` among `n` fields, or NULL (then *len is 0). */
static const char *json_get(const json_field *f, int n, const char *key,
                            size_t *len)
{
    size_t kl = strlen(key);
    for (int i = 0; i < n; i++)
        if (f[i].key_len == kl && memcmp(f[i].key, key, kl) == 0) {
            *len = f[i].val_len;
            return f[i].val;
        }
    *len = 0;
    return NULL;
}

/* ---------------------------------------------------------------- writing */

/* A growable buffer. After an allocation failure `oom` is set and every
 * later append is a no-op, so a writer checks once at the end. */
typedef struct jbuf {
    char *p;
    size_t len;
    size_t cap;
    int oom;
} jbuf;

/* Empty the buffer for reuse, keeping its memory. */
static void jb_reset(jbuf *b)
{
    b->len = 0;
    b->oom = 0;
}

static int jb_reserve(jbuf *b, size_t more)
{
    if (b->oom)
        return -1;
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static void jb_raw(jbuf *b, const char *s, size_t n)
{
    if (jb_reserve(b, n) < 0)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static void jb_lit(jbuf *b, const char *s)
{
    jb_raw(b, s, strlen(s));
}

static void jb_u64(jbuf *b, uint64_t v)
{
    char tmp[20];
    size_t i = sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jb_raw(b, tmp + i, sizeof tmp - i);
}

/* `s` as a JSON string, quotes included. Control characters and DEL are
 * escaped; other bytes (valid UTF-8) go out as they are. */
static void jb_str(jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (jb_reserve(b, n * 6 + 2) < 0) /* the worst case: all \u00XX */
        return;
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7F) {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
}

static void jb_free(jbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

#endif
