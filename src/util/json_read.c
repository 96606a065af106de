/* Reading a parsed JSON document: navigation over the tokens, string
 * decoding and number conversion. The tokens come from wisp_json_parse
 * (json_parse.c), so the text under each token is known to follow the
 * grammar: the decoders here do not re-validate it. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wisp/json.h"

static const wisp_json_tok_t *tok(const wisp_json_doc_t *doc, int i)
{
    if (!doc || i < 0 || (uint32_t)i >= doc->ntoks)
        return NULL;
    return &doc->toks[i];
}

wisp_json_type_t wisp_json_type(const wisp_json_doc_t *doc, int i)
{
    const wisp_json_tok_t *t = tok(doc, i);
    return t ? (wisp_json_type_t)t->type : WISP_JSON_INVALID;
}

int wisp_json_first(const wisp_json_doc_t *doc, int i)
{
    const wisp_json_tok_t *t = tok(doc, i);
    if (!t || (t->type != WISP_JSON_ARRAY && t->type != WISP_JSON_OBJECT))
        return -1;
    return t->next > (uint32_t)i + 1 ? i + 1 : -1;
}

int wisp_json_next(const wisp_json_doc_t *doc, int i)
{
    const wisp_json_tok_t *t = tok(doc, i);
    if (!t || (t->flags & WISP_JSON_F_LAST))
        return -1;
    uint32_t n = t->flags & WISP_JSON_F_KEY ? doc->toks[i + 1].next : t->next;
    return n < doc->ntoks ? (int)n : -1;
}

uint32_t wisp_json_count(const wisp_json_doc_t *doc, int i)
{
    uint32_t n = 0;
    for (int j = wisp_json_first(doc, i); j >= 0; j = wisp_json_next(doc, j))
        n++;
    return n;
}

int wisp_json_at(const wisp_json_doc_t *doc, int arr, uint32_t n)
{
    if (wisp_json_type(doc, arr) != WISP_JSON_ARRAY)
        return -1;
    int j = wisp_json_first(doc, arr);
    while (j >= 0 && n > 0) {
        j = wisp_json_next(doc, j);
        n--;
    }
    return j;
}

int wisp_json_get(const wisp_json_doc_t *doc, int obj, const char *key)
{
    if (!key || wisp_json_type(doc, obj) != WISP_JSON_OBJECT)
        return -1;
    for (int k = wisp_json_first(doc, obj); k >= 0;
         k = wisp_json_next(doc, k))
        if (wisp_json_str_eq(doc, k, key))
            return k + 1;
    return -1;
}

wisp_str_t wisp_json_raw(const wisp_json_doc_t *doc, int i)
{
    const wisp_json_tok_t *t = tok(doc, i);
    wisp_str_t s = {NULL, 0};
    if (t) {
        s.ptr = doc->src + t->start;
        s.len = t->len;
    }
    return s;
}

/* ------------------------------------------------------------- strings */

static unsigned hex4(const uint8_t *p)
{
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        uint8_t c = p[k];
        v <<= 4;
        if (c <= '9')
            v |= (unsigned)(c - '0');
        else
            v |= (unsigned)((c | 0x20) - 'a' + 10);
    }
    return v;
}

static size_t utf8_put(uint32_t cp, uint8_t *out)
{
    if (cp < 0x80) {
        out[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6);
        out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12);
        out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18);
    out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decode one unit of a parsed string body at *pp: a raw byte, or a whole
 * escape (a surrogate pair counts as one). Writes 1..4 bytes to `out`. */
static size_t decode_one(const uint8_t **pp, uint8_t out[4])
{
    const uint8_t *p = *pp;
    uint8_t c = p[0];

    if (c != '\\') {
        *pp = p + 1;
        out[0] = c;
        return 1;
    }
    *pp = p + 2;
    switch (p[1]) {
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u': {
        uint32_t cp = hex4(p + 2);
        *pp = p + 6;
        if (cp >= 0xD800 && cp <= 0xDBFF) { /* the parser saw the pair */
            uint32_t lo = hex4(p + 8);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            *pp = p + 12;
        }
        return utf8_put(cp, out);
    }
    default: c = p[1]; break; /* '"', '\\', '/' */
    }
    out[0] = c;
    return 1;
}

ssize_t wisp_json_str(const wisp_json_doc_t *doc, int i, char *out,
                      size_t cap)
{
    const wisp_json_tok_t *t = tok(doc, i);
    if (!t || t->type != WISP_JSON_STRING)
        return WISP_EJSON_TYPE;
    const uint8_t *p = (const uint8_t *)doc->src + t->start;
    const uint8_t *end = p + t->len;

    if (!(t->flags & WISP_JSON_F_ESCAPED)) {
        if (cap < (size_t)t->len + 1)
            return -ENOBUFS;
        memcpy(out, p, t->len);
        out[t->len] = '\0';
        return (ssize_t)t->len;
    }
    size_t n = 0;
    while (p < end) {
        uint8_t u[4];
        size_t k = decode_one(&p, u);
        if (n + k < cap)
            memcpy(out + n, u, k);
        n += k;
    }
    if (cap < n + 1)
        return -ENOBUFS;
    out[n] = '\0';
    return (ssize_t)n;
}

int wisp_json_str_eq(const wisp_json_doc_t *doc, int i, const char *s)
{
    const wisp_json_tok_t *t = tok(doc, i);
    if (!t || t->type != WISP_JSON_STRING || !s)
        return 0;
    const uint8_t *p = (const uint8_t *)doc->src + t->start;
    const uint8_t *end = p + t->len;

    /* The body holds no NUL byte (the parser refuses control
     * characters), so when strncmp matches, s is at least len long. */
    if (!(t->flags & WISP_JSON_F_ESCAPED))
        return strncmp(s, (const char *)p, t->len) == 0 && s[t->len] == '\0';
    size_t m = 0;
    while (p < end) {
        uint8_t u[4];
        size_t k = decode_one(&p, u);
        for (size_t j = 0; j < k; j++, m++)
            if (s[m] == '\0' || (uint8_t)s[m] != u[j])
                return 0; /* s ended first, or differs */
    }
    return s[m] == '\0';
}

/* ------------------------------------------------------------- numbers */

/* A number token's parts. The value is
 *   (-1 if neg) * D * 10^exp10
 * where D is the integer spelled by digits[first..last] (the significant
 * digits of integer and fraction part joined, leading and trailing zeros
 * dropped); `nsig` is 0 for a zero value. */
typedef struct num {
    int neg;
    const char *ip, *fp; /* integer and fraction digits */
    size_t ilen, flen;
    size_t first, last, nsig; /* indices into ip ++ fp */
    int64_t exp10;
} num;

static char digit_at(const num *n, size_t k)
{
    return k < n->ilen ? n->ip[k] : n->fp[k - n->ilen];
}

/* Exponents beyond this are clamped: every decision about a double or a
 * 64-bit integer is made long before, and the clamp keeps the sums below
 * from overflowing (a token has at most 4 GiB of digits). */
#define EXP_CLAMP 1000000000000ll

static int num_parts(const wisp_json_doc_t *doc, int i, num *n)
{
    const wisp_json_tok_t *t = tok(doc, i);
    if (!t || t->type != WISP_JSON_NUMBER)
        return WISP_EJSON_TYPE;
    const char *p = doc->src + t->start, *end = p + t->len;
    int64_t e = 0;
    int eneg = 0;

    memset(n, 0, sizeof(*n));
    if (*p == '-') {
        n->neg = 1;
        p++;
    }
    n->ip = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    n->ilen = (size_t)(p - n->ip);
    n->fp = p;
    if (p < end && *p == '.') {
        n->fp = ++p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        n->flen = (size_t)(p - n->fp);
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (*p == '-' || *p == '+')
            eneg = *p++ == '-';
        for (; p < end; p++)
            if (e < EXP_CLAMP)
                e = e * 10 + (*p - '0');
        if (eneg)
            e = -e;
    }
    size_t total = n->ilen + n->flen, a = 0, b = total;
    while (a < total && digit_at(n, a) == '0')
        a++;
    if (a == total)
        return 0; /* zero: nsig 0 */
    while (digit_at(n, b - 1) == '0')
        b--;
    n->first = a;
    n->last = b - 1;
    n->nsig = b - a;
    /* D's last digit sits (total - b) places above the units of the
     * joined digits, which are 10^-flen. */
    n->exp10 = e - (int64_t)n->flen + (int64_t)(total - b);
    return 0;
}

/* The magnitude as an integer, or -ERANGE when it is not an integer or
 * does not fit in 64 bits. */
static int num_magnitude(const num *n, uint64_t *out)
{
    uint64_t m = 0;

    if (n->nsig == 0) {
        *out = 0;
        return 0;
    }
    if (n->exp10 < 0 || (int64_t)n->nsig + n->exp10 > 20)
        return -ERANGE;
    for (size_t k = n->first; k <= n->last; k++)
        if (__builtin_mul_overflow(m, 10, &m) ||
            __builtin_add_overflow(m, (uint64_t)(digit_at(n, k) - '0'), &m))
            return -ERANGE;
    for (int64_t k = 0; k < n->exp10; k++)
        if (__builtin_mul_overflow(m, 10, &m))
            return -ERANGE;
    *out = m;
    return 0;
}

int wisp_json_int64(const wisp_json_doc_t *doc, int i, int64_t *out)
{
    num n;
    uint64_t m;
    int rc = num_parts(doc, i, &n);
    if (rc < 0)
        return rc;
    if ((rc = num_magnitude(&n, &m)) < 0)
        return rc;
    if (n.neg) {
        if (m > (uint64_t)INT64_MAX + 1)
            return -ERANGE;
        *out = m == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)m;
    } else {
        if (m > (uint64_t)INT64_MAX)
            return -ERANGE;
        *out = (int64_t)m;
    }
    return 0;
}

int wisp_json_uint64(const wisp_json_doc_t *doc, int i, uint64_t *out)
{
    num n;
    uint64_t m;
    int rc = num_parts(doc, i, &n);
    if (rc < 0)
        return rc;
    if ((rc = num_magnitude(&n, &m)) < 0)
        return rc;
    if (n.neg && m != 0)
        return -ERANGE; /* -0 is 0, any other negative is out of range */
    *out = m;
    return 0;
}

/* Digits kept for strtod. A double's rounding boundaries (halfway between
 * two neighbours) have at most 767 significant decimal digits, so the
 * first 780 digits plus a final '1' standing for "more nonzero digits
 * follow" round exactly like the whole number. */
#define MAX_SIG 780

static const double pow10_exact[] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

int wisp_json_double(const wisp_json_doc_t *doc, int i, double *out)
{
    num n;
    int rc = num_parts(doc, i, &n);
    if (rc < 0)
        return rc;
    if (n.nsig == 0) {
        *out = n.neg ? -0.0 : 0.0;
        return 0;
    }
    double v;
#if FLT_EVAL_METHOD == 0
    /* Clinger's fast path: D below 2^53 and 10^|exp10| exact in a
     * double, so one IEEE multiplication or division rounds once,
     * correctly. */
    if (n.nsig <= 15 && n.exp10 >= -22 && n.exp10 <= 22) {
        uint64_t d = 0;
        for (size_t k = n.first; k <= n.last; k++)
            d = d * 10 + (uint64_t)(digit_at(&n, k) - '0');
        v = (double)d;
        v = n.exp10 < 0 ? v / pow10_exact[-n.exp10] : v * pow10_exact[n.exp10];
        *out = n.neg ? -v : v;
        return 0;
    }
#endif
    /* Otherwise the C library's strtod, which rounds correctly in glibc
     * and musl, fed "DIGITSeEXP": no sign, no decimal point, so the
     * locale's decimal point never matters. */
    char buf[MAX_SIG + 32];
    size_t k = 0, take = n.nsig > MAX_SIG ? MAX_SIG : n.nsig;
    for (; k < take; k++)
        buf[k] = digit_at(&n, n.first + k);
    int64_t e = n.exp10 + (int64_t)(n.nsig - take);
    if (take < n.nsig) {
        buf[k++] = '1'; /* sticky: nonzero digits were dropped */
        e--;
    }
    if (e > 100000)
        e = 100000;
    if (e < -100000)
        e = -100000;
    snprintf(buf + k, sizeof(buf) - k, "e%lld", (long long)e);
    int saved = errno;
    v = strtod(buf, NULL);
    errno = saved;
    if (isinf(v))
        return -ERANGE;
    *out = n.neg ? -v : v;
    return 0;
}

int wisp_json_bool(const wisp_json_doc_t *doc, int i, int *out)
{
    wisp_json_type_t t = wisp_json_type(doc, i);
    if (t != WISP_JSON_TRUE && t != WISP_JSON_FALSE)
        return WISP_EJSON_TYPE;
    *out = t == WISP_JSON_TRUE;
    return 0;
}
