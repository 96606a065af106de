/* The JSON writer: appends RFC 8259 text to a fixed or growing buffer.
 *
 * Structure is tracked with one bit per level (is it an object?) and a
 * flag for whether the current level already holds an item, so commas
 * and colons come out right and misuse (a value where a key is due, an
 * end that does not match its begin) is caught. The first error sticks:
 * every later call does nothing and wisp_json_finish reports it. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json_int.h"
#include "wisp/json.h"

_Static_assert(WISP_JSON_WRITER_MAX_DEPTH <= 64,
               "in_object and has_items hold one bit per level");

static void fail(wisp_json_writer_t *w, int err)
{
    if (!w->err)
        w->err = err;
}

/* Room for `n` more bytes, or a sticky error and 0. */
static int reserve(wisp_json_writer_t *w, size_t n)
{
    if (w->err)
        return 0;
    if (w->cap - w->len >= n)
        return 1;
    if (!w->growable) {
        fail(w, -ENOBUFS);
        return 0;
    }
    size_t want = w->len + n, cap = w->cap ? w->cap : 256;
    if (want < w->len) {
        fail(w, -ENOMEM);
        return 0;
    }
    while (cap < want) {
        if (cap > SIZE_MAX / 2) {
            cap = want;
            break;
        }
        cap *= 2;
    }
    char *nb = realloc(w->buf, cap);
    if (!nb) {
        fail(w, -ENOMEM);
        return 0;
    }
    w->buf = nb;
    w->cap = cap;
    return 1;
}

static void put(wisp_json_writer_t *w, const void *p, size_t n)
{
    if (reserve(w, n)) {
        memcpy(w->buf + w->len, p, n);
        w->len += n;
    }
}

static void putc_(wisp_json_writer_t *w, char c)
{
    if (reserve(w, 1))
        w->buf[w->len++] = c;
}

void wisp_json_writer_init(wisp_json_writer_t *w, char *buf, size_t cap)
{
    memset(w, 0, sizeof(*w));
    w->buf = buf;
    w->cap = buf ? cap : 0;
}

void wisp_json_writer_init_dyn(wisp_json_writer_t *w)
{
    memset(w, 0, sizeof(*w));
    w->growable = 1;
}

void wisp_json_writer_free(wisp_json_writer_t *w)
{
    if (w->growable)
        free(w->buf);
    wisp_json_writer_init_dyn(w);
}

void wisp_json_writer_reset(wisp_json_writer_t *w)
{
    w->len = 0;
    w->err = 0;
    w->depth = 0;
    w->need_comma = 0;
    w->after_key = 0;
    w->in_object = 0;
    w->has_items = 0;
}

static int level_is_object(const wisp_json_writer_t *w)
{
    return w->depth > 0 && (w->in_object >> (w->depth - 1) & 1);
}

/* Before any value: is one allowed here? Writes the comma in an array. */
static int begin_value(wisp_json_writer_t *w)
{
    if (w->err)
        return 0;
    if (w->depth == 0) {
        if (w->need_comma) { /* a second top-level value */
            fail(w, WISP_ESTATE);
            return 0;
        }
    } else if (level_is_object(w)) {
        if (!w->after_key) {
            fail(w, WISP_ESTATE);
            return 0;
        }
    } else if (w->need_comma) {
        putc_(w, ',');
    }
    return !w->err;
}

/* After a complete value (a scalar, or a container's end). */
static void end_value(wisp_json_writer_t *w)
{
    w->after_key = 0;
    w->need_comma = 1;
    if (w->depth > 0)
        w->has_items |= 1ull << (w->depth - 1);
}

/* ------------------------------------------------------------- strings */

static const char hexdig[] = "0123456789abcdef";

/* `s` quoted and escaped. RFC 8259 §7: quote, backslash and U+0000..001F
 * must be escaped; the short forms are used where they exist. */
static void put_string(wisp_json_writer_t *w, const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s, *end = p + len, *run = p;

    putc_(w, '"');
    while (p < end && !w->err) {
        uint8_t c = *p;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            p++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = wisp__json_utf8_seq(p, end);
            if (!n) {
                fail(w, -EINVAL);
                return;
            }
            p += n;
            continue;
        }
        put(w, run, (size_t)(p - run));
        char esc[6] = {'\\', 0, '0', '0', 0, 0};
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u';
            esc[4] = hexdig[c >> 4];
            esc[5] = hexdig[c & 15];
            n = 6;
            break;
        }
        put(w, esc, n);
        run = ++p;
    }
    put(w, run, (size_t)(p - run));
    putc_(w, '"');
}

/* ----------------------------------------------------------- structure */

static void begin(wisp_json_writer_t *w, int object)
{
    if (!begin_value(w))
        return;
    if (w->depth == WISP_JSON_WRITER_MAX_DEPTH) {
        fail(w, WISP_EJSON_DEPTH);
        return;
    }
    putc_(w, object ? '{' : '[');
    uint64_t bit = 1ull << w->depth;
    if (object)
        w->in_object |= bit;
    else
        w->in_object &= ~bit;
    w->has_items &= ~bit;
    w->depth++;
    w->need_comma = 0;
    w->after_key = 0;
}

static void end(wisp_json_writer_t *w, int object)
{
    if (w->err)
        return;
    if (w->depth == 0 || level_is_object(w) != object || w->after_key) {
        fail(w, WISP_ESTATE);
        return;
    }
    putc_(w, object ? '}' : ']');
    w->depth--;
    end_value(w);
}

void wisp_json_obj_begin(wisp_json_writer_t *w)
{
    begin(w, 1);
}

void wisp_json_obj_end(wisp_json_writer_t *w)
{
    end(w, 1);
}

void wisp_json_arr_begin(wisp_json_writer_t *w)
{
    begin(w, 0);
}

void wisp_json_arr_end(wisp_json_writer_t *w)
{
    end(w, 0);
}

void wisp_json_key_n(wisp_json_writer_t *w, const char *key, size_t len)
{
    if (w->err)
        return;
    if (!level_is_object(w) || w->after_key) {
        fail(w, WISP_ESTATE);
        return;
    }
    if (!key && len > 0) {
        fail(w, -EINVAL);
        return;
    }
    if (w->need_comma)
        putc_(w, ',');
    put_string(w, key ? key : "", len);
    putc_(w, ':');
    w->after_key = 1;
}

void wisp_json_key(wisp_json_writer_t *w, const char *key)
{
    if (!key) {
        fail(w, -EINVAL);
        return;
    }
    wisp_json_key_n(w, key, strlen(key));
}

/* -------------------------------------------------------------- values */

void wisp_json_str_val_n(wisp_json_writer_t *w, const char *s, size_t len)
{
    if (!s) {
        wisp_json_null_val(w);
        return;
    }
    if (!begin_value(w))
        return;
    put_string(w, s, len);
    end_value(w);
}

void wisp_json_str_val(wisp_json_writer_t *w, const char *s)
{
    wisp_json_str_val_n(w, s, s ? strlen(s) : 0);
}

static void put_u64(wisp_json_writer_t *w, int neg, uint64_t v)
{
    char tmp[24];
    size_t k = sizeof(tmp);
    do {
        tmp[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (neg)
        tmp[--k] = '-';
    put(w, tmp + k, sizeof(tmp) - k);
}

void wisp_json_int_val(wisp_json_writer_t *w, int64_t v)
{
    if (!begin_value(w))
        return;
    /* The magnitude of INT64_MIN only fits unsigned. */
    put_u64(w, v < 0, v < 0 ? 0 - (uint64_t)v : (uint64_t)v);
    end_value(w);
}

void wisp_json_uint_val(wisp_json_writer_t *w, uint64_t v)
{
    if (!begin_value(w))
        return;
    put_u64(w, 0, v);
    end_value(w);
}

/* The significant digits of `a` (finite, > 0) rounded to `prec` digits,
 * trailing zeros dropped, and the decimal exponent of the first digit.
 * printf's %e does the correct rounding; the digits are picked out of its
 * output so that whatever decimal point the locale uses is skipped. */
static size_t digits_of(double a, int prec, char *dig, int *e10)
{
    char tmp[48];
    size_t nd = 0;
    const char *p = tmp;

    snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, a);
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            dig[nd++] = *p;
    int e = 0, eneg = 0;
    if (*p == 'e') {
        p++;
        if (*p == '-' || *p == '+')
            eneg = *p++ == '-';
        for (; *p >= '0' && *p <= '9'; p++)
            e = e * 10 + (*p - '0');
    }
    *e10 = eneg ? -e : e;
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    return nd;
}

/* Does D * 10^(e10 - nd + 1) read back as `a`? Built as "DIGITSeEXP",
 * which strtod reads the same in every locale. */
static int reads_back(const char *dig, size_t nd, int e10, double a)
{
    char tmp[48];
    memcpy(tmp, dig, nd);
    snprintf(tmp + nd, sizeof(tmp) - nd, "e%d", e10 - (int)nd + 1);
    return strtod(tmp, NULL) == a;
}

void wisp_json_double_val(wisp_json_writer_t *w, double v)
{
    if (w->err)
        return;
    if (!isfinite(v)) {
        fail(w, -EINVAL);
        return;
    }
    if (!begin_value(w))
        return;
    if (v == 0) {
        put(w, signbit(v) ? "-0" : "0", signbit(v) ? 2 : 1);
        end_value(w);
        return;
    }
    /* Shortest round trip: 17 significant digits tell every double
     * apart. A normal double is also recovered from any decimal of 15 or
     * fewer digits that reads as it (DBL_DIG), so when 15 digits read back
     * their trailing zeros drop to the shortest form; when they do not,
     * the nearest 16-digit decimal is the best 16-digit candidate. A
     * subnormal has fewer significant bits, so it tries every length. */
    char dig[24], out[48];
    size_t nd = 0, k = 0;
    int e10 = 0, saved = errno;
    double a = fabs(v);
    for (int prec = a < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        nd = digits_of(a, prec, dig, &e10);
        if (reads_back(dig, nd, e10, a))
            break;
    }
    errno = saved;
    if (signbit(v))
        out[k++] = '-';
    if (e10 >= 0 && e10 < 21) { /* 123, 1.25, 120000 */
        size_t ip = (size_t)e10 + 1;
        for (size_t j = 0; j < ip; j++)
            out[k++] = j < nd ? dig[j] : '0';
        if (nd > ip) {
            out[k++] = '.';
            for (size_t j = ip; j < nd; j++)
                out[k++] = dig[j];
        }
    } else if (e10 < 0 && e10 > -7) { /* 0.001 */
        out[k++] = '0';
        out[k++] = '.';
        for (int j = -1; j > e10; j--)
            out[k++] = '0';
        for (size_t j = 0; j < nd; j++)
            out[k++] = dig[j];
    } else { /* 1e+300 as 1e300, 2.5e-8 */
        out[k++] = dig[0];
        if (nd > 1) {
            out[k++] = '.';
            for (size_t j = 1; j < nd; j++)
                out[k++] = dig[j];
        }
        k += (size_t)snprintf(out + k, sizeof(out) - k, "e%d", e10);
    }
    put(w, out, k);
    end_value(w);
}

void wisp_json_bool_val(wisp_json_writer_t *w, int v)
{
    if (!begin_value(w))
        return;
    if (v)
        put(w, "true", 4);
    else
        put(w, "false", 5);
    end_value(w);
}

void wisp_json_null_val(wisp_json_writer_t *w)
{
    if (!begin_value(w))
        return;
    put(w, "null", 4);
    end_value(w);
}

void wisp_json_raw_val(wisp_json_writer_t *w, const char *json, size_t len)
{
    if (!json && len > 0) {
        fail(w, -EINVAL);
        return;
    }
    if (!begin_value(w))
        return;
    put(w, json, len);
    end_value(w);
}

void wisp_json_kv_str(wisp_json_writer_t *w, const char *key, const char *s)
{
    wisp_json_key(w, key);
    wisp_json_str_val(w, s);
}

void wisp_json_kv_int(wisp_json_writer_t *w, const char *key, int64_t v)
{
    wisp_json_key(w, key);
    wisp_json_int_val(w, v);
}

void wisp_json_kv_bool(wisp_json_writer_t *w, const char *key, int v)
{
    wisp_json_key(w, key);
    wisp_json_bool_val(w, v);
}

int wisp_json_finish(wisp_json_writer_t *w, char **out, size_t *len)
{
    if (!w->err && (w->depth != 0 || !w->need_comma))
        fail(w, WISP_ESTATE); /* nothing written, or left open */
    if (!w->err && reserve(w, 1))
        w->buf[w->len] = '\0'; /* not counted */
    if (w->err)
        return w->err;
    if (out)
        *out = w->buf;
    if (len)
        *len = w->len;
    if (w->growable && out) /* the buffer is the caller's now */
        wisp_json_writer_init_dyn(w);
    return 0;
}
