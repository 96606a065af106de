/* The HTTP/1.1 request-head parser (RFC 9112 §2-§5, RFC 9110 §5, §7.2,
 * §7.6.1, §8.6, §10.1.1) and the percent-decoders of paths and queries.
 *
 * parse_head validates a head and fills the caller's struct in one pass
 * over the bytes; every loop in it is bounded by the end of the buffer.
 * When a whole head arrives in the first call, that pass is all the work
 * (the common case, and the one to keep fast). Otherwise, and whenever
 * parse_head fails, find_end decides: it looks for the empty line that
 * ends the head, visiting each LF once across calls through `*scan`,
 * enforces the size limits while the head is still incomplete and
 * rejects a bare LF as soon as it arrives. Only once it has found the end
 * does parse_head run again, on exactly the head. So the answer for a
 * given input is the same however the input is cut into calls, and the
 * fast path never has to get an error right: it only has to be sure of
 * success. */
#include "http/parse.h"

#include <string.h>

#include "http/token.h"
#include "wisp/http.h"


/* `*scan` packs the resumable state of find_end into two halves of a
 * size_t (32 bits each on LP64, 16 on 32-bit targets):
 *   low half:  pos, the offset below which every LF has been examined;
 *   high half: the offset where the request line starts while its end
 *              has not been seen (0 initially, then moved past each
 *              skipped empty line), or RL_DONE once it has.
 * Both offsets stay below max_head, which is clamped to HALF_MAX - 1 so
 * that they fit (64 KiB on 32-bit targets, no real limit on LP64). */
#define HALF_BITS (sizeof(size_t) * 4)
#define HALF_MAX (((size_t)1 << HALF_BITS) - 1)
#define RL_DONE HALF_MAX

static inline uint64_t load64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint16_t load16(const char *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static inline uint32_t load32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* True when p[0..n) equals the lowercase literal `lit` ignoring ASCII
 * case. Folding with `| 0x20` is exact for the bytes we compare: it maps
 * a letter to its lowercase form, leaves digits, '-', ':' and '/' alone,
 * and the only other bytes it could map onto them are CTLs, which no
 * caller lets through (names are tokens, values and targets exclude
 * CTLs). Compares 8 or 4 bytes at a time, the last load overlapping the
 * previous one; with `lit` and `n` constant the literal's words fold to
 * constants. */
static inline int ci_eq(const char *p, const char *lit, size_t n)
{
    const uint64_t f8 = 0x2020202020202020u;
    const uint32_t f4 = 0x20202020u;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8)
            if ((load64(p + i) | f8) != load64(lit + i))
                return 0;
        return (load64(p + n - 8) | f8) == load64(lit + n - 8);
    }
    if (n >= 4)
        return (load32(p) | f4) == load32(lit) &&
               (load32(p + n - 4) | f4) == load32(lit + n - 4);
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)p[i] | 0x20) != (unsigned char)lit[i])
            return 0;
    return 1;
}

/* SWAR scanning, 8 bytes per step (little-endian GCC/Clang only; other
 * targets, and builds with -DWISP_NO_SWAR, use the byte loops that
 * follow each fast path and keep its contract). For a word x,
 * below(x, n) flags the bytes < n (n <= 128) in their high bit; borrows
 * may also flag bytes above a true match, but never below one, so the
 * lowest flag, found with ctz, is exact. */
#if !defined(WISP_NO_SWAR) && defined(__GNUC__) && \
    defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SWAR 1
#define ONES 0x0101010101010101u
#define HIGHS 0x8080808080808080u

static inline uint64_t below(uint64_t x, unsigned n)
{
    return (x - ONES * n) & ~x & HIGHS;
}

static inline uint64_t equal(uint64_t x, unsigned char c)
{
    return below(x ^ (ONES * c), 1);
}

static inline size_t first_flag(uint64_t m)
{
    return (size_t)__builtin_ctzll(m) >> 3;
}
#endif

/* SSE2 scanning, 16 bytes per step (x86-64 always has it; builds with
 * -DWISP_NO_SIMD, and other targets, use the SWAR or byte loops, which
 * keep the same contract). Each helper answers exactly for every one of
 * the 16 bytes, so the first flag is the first byte of interest. */
#if !defined(WISP_NO_SIMD) && defined(__SSE2__)
#include <emmintrin.h>
#define SSE2 1

static inline __m128i load128(const char *p)
{
    return _mm_loadu_si128((const __m128i *)(const void *)p);
}

static inline __m128i splat(unsigned char c)
{
    return _mm_set1_epi8((char)c);
}

/* 0xff in the bytes of x in [lo, hi] (unsigned; hi - lo < 127): the
 * shift by 0x80 - lo moves [lo, hi] to the bottom of the signed range
 * and everything else above it. */
static inline __m128i in_range(__m128i x, unsigned char lo, unsigned char hi)
{
    return _mm_cmplt_epi8(_mm_add_epi8(x, splat((unsigned char)(0x80 - lo))),
                          splat((unsigned char)(0x80 + (hi - lo) + 1)));
}

/* 0xff in the bytes of x that are ALPHA (either case; x | 0x20 maps
 * exactly the two cases of a letter onto the lowercase range). */
static inline __m128i is_alpha16(__m128i x)
{
    return in_range(_mm_or_si128(x, splat(0x20)), 'a', 'z');
}

static inline unsigned mask16(__m128i m)
{
    return (unsigned)_mm_movemask_epi8(m);
}

#endif

/* Skip token bytes; stops at the first other byte or at `end`. Names
 * and methods are short and the token set has no word-wise test, so
 * this is a table loop, unrolled to check the bound once per 8 bytes
 * (measured: a vector step over letters, digits and '-' costs more
 * instructions than it saves on names of typical length). */
static inline const char *skip_token(const char *p, const char *end)
{
#define T(i) wisp__is_tchar((unsigned char)p[i])
    for (; end - p >= 8; p += 8) {
        if (!T(0))
            return p;
        if (!T(1))
            return p + 1;
        if (!T(2))
            return p + 2;
        if (!T(3))
            return p + 3;
        if (!T(4))
            return p + 4;
        if (!T(5))
            return p + 5;
        if (!T(6))
            return p + 6;
        if (!T(7))
            return p + 7;
    }
    while (p < end && T(0))
        p++;
    return p;
#undef T
}

/* Skip field-value bytes (HTAB, SP, VCHAR, obs-text); stops at the first
 * other byte (the line's CR in a valid line) or at `end`. */
static inline const char *skip_value(const char *p, const char *end)
{
#ifdef SSE2
    while (end - p >= 16) {
        __m128i x = load128(p);
        /* CTLs (x <= 0x1f, unsigned: min(x, 0x1f) == x) and DEL */
        __m128i bad = _mm_or_si128(
            _mm_cmpeq_epi8(_mm_min_epu8(x, splat(0x1f)), x),
            _mm_cmpeq_epi8(x, splat(0x7f)));
        unsigned m = mask16(bad);
        if (!m) {
            p += 16;
            continue;
        }
        p += __builtin_ctz(m);
        if (*p != '\t')
            return p;
        p++;
    }
#endif
#ifdef SWAR
    while (end - p >= 8) {
        uint64_t x = load64(p);
        uint64_t m = below(x, 0x20) | equal(x, 0x7f);
        if (!m) {
            p += 8;
            continue;
        }
        p += first_flag(m);
        if (*p != '\t')
            return p;
        p++;
    }
#endif
    while (p < end &&
           (wisp__http_chars[(unsigned char)*p] & WISP__HC_VALUE))
        p++;
    return p;
}

/* Skip request-target bytes (0x21-0x7e); stops at the first other byte
 * (the SP before the version in a valid line) or at `end`. */
static inline const char *skip_target(const char *p, const char *end)
{
#ifdef SWAR
    for (; end - p >= 8; p += 8) {
        uint64_t x = load64(p);
        uint64_t m = below(x, 0x21) | equal(x, 0x7f) | (x & HIGHS);
        if (m)
            return p + first_flag(m);
    }
#endif
    while (p < end &&
           (wisp__http_chars[(unsigned char)*p] & WISP__HC_TARGET))
        p++;
    return p;
}

/* The first byte c in [p, end), or NULL: memchr for the short spans of
 * one target or value, without the call. */
static inline const char *find_byte(const char *p, const char *end,
                                    unsigned char c)
{
#ifdef SWAR
    for (; end - p >= 8; p += 8) {
        uint64_t m = equal(load64(p), c);
        if (m)
            return p + first_flag(m);
    }
#endif
    for (; p < end; p++)
        if ((unsigned char)*p == c)
            return p;
    return NULL;
}

static inline unsigned hexval(unsigned char c)
{
    return c <= '9' ? c - (unsigned)'0' : (c | 0x20u) - 'a' + 10;
}

/* Look for the end of the head in buf[0..len), resuming at `*scan`.
 * Returns the head length, -EAGAIN, or an error. Cost is O(new bytes) per
 * call: the search resumes at pos and every LF is visited once. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static ssize_t find_end(const char *buf, size_t len, size_t *scan,
                        size_t max_line, size_t max_head)
{
    size_t pos = *scan & HALF_MAX;
    size_t rl = *scan >> HALF_BITS;
    size_t end, cr = 0;

    for (;;) {
        end = len < max_head ? len : max_head;
        /* A request line of max_line bytes has its CR at `cr` and its LF
         * right after: there is no need to look further, nor past `cr`
         * if that byte is not CR. This also makes the answer the same
         * however the input is cut. */
        if (rl != RL_DONE) {
            cr = rl + max_line;
            if (end > cr && buf[cr] != '\r')
                end = cr + 1;
            else if (end > cr + 2)
                end = cr + 2;
        }
        const char *nl = pos < end ? memchr(buf + pos, '\n', end - pos)
                                   : NULL;
        if (!nl)
            break;
        size_t i = (size_t)(nl - buf);
        /* RFC 9112 §2.2: a bare LF is not a line terminator here. Saying
         * so at once lets a client that sends LF-only lines get its 400
         * without waiting for a timeout. */
        if (i == 0 || buf[i - 1] != '\r')
            return WISP_EPARSE;
        pos = i + 1;
        if (rl != RL_DONE) {
            /* An empty line before the request line is skipped (§2.2);
             * any other line is the request line, within max_line by
             * the choice of `end` above. */
            rl = i - 1 == rl ? pos : RL_DONE;
        } else if (buf[i - 2] == '\n') {
            /* i >= 3 here: a non-empty request line and its CRLF come
             * first. LF CR LF is the empty line that ends the head. */
            *scan = pos | (RL_DONE << HALF_BITS);
            return (ssize_t)pos;
        }
    }

    /* No LF below `end`. The request line's CR must sit at or below
     * `cr`: if that byte has arrived and is not CR, or the byte after it
     * has arrived and is not LF, the line is too long. */
    if (rl != RL_DONE && end > cr && (buf[cr] != '\r' || end > cr + 1))
        return WISP_ETOOLONG_LINE;
    /* The head's last LF must sit below max_head. */
    if (len >= max_head)
        return WISP_ETOOLONG_HEAD;
    if (end > pos)
        pos = end;
    *scan = pos | (rl << HALF_BITS);
    return -EAGAIN;
}

static inline int method_lookup(const char *p, size_t len)
{
    switch (len) {
    case 3:
        if (memcmp(p, "GET", 3) == 0)
            return WISP_METHOD_GET;
        if (memcmp(p, "PUT", 3) == 0)
            return WISP_METHOD_PUT;
        break;
    case 4:
        if (memcmp(p, "POST", 4) == 0)
            return WISP_METHOD_POST;
        if (memcmp(p, "HEAD", 4) == 0)
            return WISP_METHOD_HEAD;
        break;
    case 5:
        if (memcmp(p, "PATCH", 5) == 0)
            return WISP_METHOD_PATCH;
        if (memcmp(p, "TRACE", 5) == 0)
            return WISP_METHOD_TRACE;
        break;
    case 6:
        if (memcmp(p, "DELETE", 6) == 0)
            return WISP_METHOD_DELETE;
        break;
    case 7:
        if (memcmp(p, "OPTIONS", 7) == 0)
            return WISP_METHOD_OPTIONS;
        if (memcmp(p, "CONNECT", 7) == 0)
            return WISP_METHOD_CONNECT;
        break;
    }
    return -1;
}

int wisp__method_lookup(const char *p, size_t len)
{
    return method_lookup(p, len);
}

static inline int is_digit(unsigned char c)
{
    return (unsigned char)(c - '0') <= 9;
}

static inline int is_hex(unsigned char c)
{
    return wisp__http_chars[c] & WISP__HC_HEX;
}

/* Skip bytes of class `bit`; stops at the first other byte or at `end`.
 * Four table lookups are ANDed per step, so a target or a Host costs one
 * branch per four bytes. */
static inline const char *skip_class(const char *p, const char *end,
                                     unsigned bit)
{
#define C(i) wisp__http_chars[(unsigned char)p[i]]
    for (; end - p >= 4; p += 4)
        if (!(C(0) & C(1) & C(2) & C(3) & bit))
            break;
    while (p < end && (C(0) & bit))
        p++;
    return p;
#undef C
}

/* Skip bytes of class `bit` (WISP__HC_URI or _REG) and pct-encoded
 * triplets ("%" HEXDIG HEXDIG, RFC 3986 §2.1); stops at the first other
 * byte (a '%' without its two HEXDIG included) or at `end`. */
static inline const char *skip_pct(const char *p, const char *end,
                                   unsigned bit)
{
    for (;;) {
        p = skip_class(p, end, bit);
        if (end - p < 3 || *p != '%' || !is_hex((unsigned char)p[1]) ||
            !is_hex((unsigned char)p[2]))
            return p;
        p += 3;
    }
}

static inline int valid_uri_bytes(const char *p, size_t n, unsigned bit)
{
    return skip_pct(p, p + n, bit) == p + n;
}

/* IPv4address = dec-octet "." dec-octet "." dec-octet "." dec-octet,
 * dec-octet a decimal 0-255 without leading zeros (RFC 3986 §3.2.2). */
static int valid_ipv4(const char *p, const char *e)
{
    for (int k = 0; k < 4; k++) {
        if (k) {
            if (p == e || *p != '.')
                return 0;
            p++;
        }
        const char *s = p;
        unsigned v = 0;
        while (p < e && p - s < 3 && is_digit((unsigned char)*p))
            v = v * 10 + (unsigned)(*p++ - '0');
        if (p == s || (p - s > 1 && *s == '0') || v > 255)
            return 0;
    }
    return p == e;
}

/* IPv6address (RFC 3986 §3.2.2): eight h16 (1-4 HEXDIG) pieces separated
 * by ':', the last two of which may be an IPv4address; one "::" may
 * stand for one or more zero pieces, so with it at most seven are
 * written. */
static int valid_ipv6(const char *p, const char *e)
{
    int pieces = 0, gap = 0;
    if (e - p >= 2 && p[0] == ':' && p[1] == ':') {
        gap = 1;
        p += 2;
        if (p == e)
            return 1;
    }
    for (;;) {
        const char *g = p;
        while (p < e && p - g < 5 && is_hex((unsigned char)*p))
            p++;
        if (p < e && *p == '.') {
            /* ls32 as an IPv4address: the last thing. */
            if (!valid_ipv4(g, e))
                return 0;
            pieces += 2;
            break;
        }
        if (p == g || p - g > 4)
            return 0;
        pieces++;
        if (p == e)
            break;
        if (*p++ != ':' || p == e)
            return 0;
        if (*p == ':') {
            if (gap)
                return 0;
            gap = 1;
            if (++p == e)
                break;
        }
    }
    return gap ? pieces <= 7 : pieces == 8;
}

/* IP-literal = "[" ( IPv6address / IPvFuture ) "]", IPvFuture = "v"
 * 1*HEXDIG "." 1*( unreserved / sub-delims / ":" ) (RFC 3986 §3.2.2). */
static int valid_ip_literal(const char *p, const char *e)
{
    if (p < e && (*p | 0x20) == 'v') {
        const char *h = ++p;
        while (p < e && is_hex((unsigned char)*p))
            p++;
        if (p == h || p == e || *p++ != '.' || p == e)
            return 0;
        for (; p < e; p++) {
            unsigned char c = (unsigned char)*p;
            if (c != ':' && !(wisp__http_chars[c] & WISP__HC_REG))
                return 0;
        }
        return 1;
    }
    return valid_ipv6(p, e);
}

/* Host = uri-host [ ":" port ] (RFC 9110 §7.2), uri-host = IP-literal /
 * IPv4address / reg-name (RFC 3986 §3.2.2; an IPv4address is also a
 * reg-name), port = *DIGIT (§3.2.3). An empty value is valid (§7.2).
 * The exact check, out of line; valid_host tries a shortcut first. */
#if defined(__GNUC__)
__attribute__((noinline))
#endif
static int valid_host_exact(const char *p, size_t n)
{
    const char *e = p + n, *h;
    if (n && *p == '[') {
        const char *close = find_byte(p, e, ']');
        if (!close || !valid_ip_literal(p + 1, close))
            return 0;
        h = close + 1;
    } else {
        /* ':' is no reg-name byte: the reg-name ends at the port. */
        h = skip_pct(p, e, WISP__HC_REG);
    }
    if (h == e)
        return 1;
    if (*h++ != ':')
        return 0;
    for (; h < e; h++)
        if (!is_digit((unsigned char)*h))
            return 0;
    return 1;
}

/* valid_host_exact's answer for p[0..n); `lim` ends the readable bytes
 * (at least p + n). */
static inline int valid_host(const char *p, size_t n, const char *lim)
{
#ifdef SSE2
    /* The usual Host, a name or IPv4 address of letters, digits, '.'
     * and '-' with an optional port, in one vector step when the 16
     * bytes from p are readable: accepted here only when it is valid,
     * left to the exact loops otherwise. */
    if (n <= 16 && lim - p >= 16) {
        __m128i x = load128(p);
        unsigned digit = mask16(in_range(x, '0', '9'));
        unsigned reg = digit | mask16(_mm_or_si128(
                                   is_alpha16(x),
                                   _mm_or_si128(_mm_cmpeq_epi8(x, splat('.')),
                                                _mm_cmpeq_epi8(x, splat('-')))));
        unsigned in = (1u << n) - 1;
        unsigned other = in & ~reg;
        if (!other)
            return 1;
        unsigned k = (unsigned)__builtin_ctz(other);
        if (p[k] == ':' && !(in & ~digit & ~((2u << k) - 1)))
            return 1;
    }
#else
    (void)lim;
#endif
    return valid_host_exact(p, n);
}

/* Split p[0..n) at its first '?' into path and query, and note in
 * WISP__RH_PCT whether the path holds a '%', in the same pass: the
 * exchange then decodes only such paths without searching them again. */
static void split_query(wisp__req_head *rh, const char *p, size_t n)
{
    const char *q = NULL, *s = p, *e = p + n;
#ifdef SWAR
    for (; e - s >= 8; s += 8) {
        uint64_t x = load64(s);
        uint64_t mq = equal(x, '?'), mp = equal(x, '%');
        /* The lowest flag of each mask is a true match (see below()). */
        if (mq) {
            q = s + first_flag(mq);
            if (mp && first_flag(mp) < first_flag(mq))
                rh->flags |= WISP__RH_PCT;
            break;
        }
        if (mp)
            rh->flags |= WISP__RH_PCT;
    }
#endif
    for (; !q && s < e; s++) {
        if (*s == '?')
            q = s;
        else if (*s == '%')
            rh->flags |= WISP__RH_PCT;
    }
    rh->path = p;
    if (!q) {
        rh->path_len = (uint32_t)n;
        return;
    }
    rh->path_len = (uint32_t)(q - p);
    rh->query = q + 1;
    rh->query_len = (uint32_t)(n - rh->path_len - 1);
}

/* absolute-form = "http" / "https" "://" authority [path-abempty]
 * ["?" query] (RFC 9112 §3.2.2, RFC 9110 §4.2). The authority ends at the
 * first '/' or '?' and must be a valid host and port (RFC 3986 §3.2.2);
 * an empty host is invalid (RFC 9110 §4.2.1), and so is userinfo, which
 * we treat as an error as §4.2.4 recommends. */
static int parse_absolute(wisp__req_head *rh, const char *t, size_t n)
{
    size_t s;
    if (n >= 7 && ci_eq(t, "http://", 7))
        s = 7;
    else if (n >= 8 && ci_eq(t, "https://", 8))
        s = 8;
    else
        return WISP_EPARSE;

    const char *a = t + s, *e = t + n, *q = a;
    while (q < e && *q != '/' && *q != '?')
        q++;
    if (q == a || *a == ':' || !valid_host(a, (size_t)(q - a), e) ||
        !valid_uri_bytes(q, (size_t)(e - q), WISP__HC_URI))
        return WISP_EPARSE;
    rh->host = a;
    rh->host_len = (uint32_t)(q - a);
    rh->flags |= WISP__RH_HOST | WISP__RH_ABSOLUTE;
    if (q < e && *q == '/') {
        split_query(rh, q, (size_t)(e - q));
        return 0;
    }
    /* No path: the path is "/" (RFC 9110 §4.2.3), which is not in the
     * buffer; a literal will do since the path is only read. */
    rh->path = "/";
    rh->path_len = 1;
    if (q < e) {
        rh->query = q + 1;
        rh->query_len = (uint32_t)(e - q - 1);
    }
    return 0;
}

/* Skip path bytes of an origin-form target (WISP__HC_PATH) and
 * pct-encoded triplets, noting in WISP__RH_PCT that there was one (so
 * the exchange decodes only such paths, without searching them again);
 * stops at the first other byte ('?' ends the path) or at `end`. */
static inline const char *skip_path(wisp__req_head *rh, const char *p,
                                    const char *end)
{
    for (;;) {
        p = skip_class(p, end, WISP__HC_PATH);
        if (end - p < 3 || *p != '%' || !is_hex((unsigned char)p[1]) ||
            !is_hex((unsigned char)p[2]))
            return p;
        rh->flags |= WISP__RH_PCT;
        p += 3;
    }
}

/* request-target (RFC 9112 §3.2): origin-form, absolute-form, or "*"
 * with OPTIONS; authority-form belongs to CONNECT, rejected earlier.
 * origin-form = absolute-path [ "?" query ] has been checked and split
 * at `q` (its first '?', or its end) while parse_request_line scanned
 * it: a byte RFC 3986 does not allow there makes the request-line
 * invalid, which §3 answers with a 400. */
static int parse_target(wisp__req_head *rh, const char *t, size_t n,
                        const char *q)
{
    rh->target = t;
    rh->target_len = (uint32_t)n;
    if (t[0] == '/') {
        rh->path = t;
        rh->path_len = (uint32_t)(q - t);
        if (q < t + n) {
            rh->query = q + 1;
            rh->query_len = (uint32_t)(n - rh->path_len - 1);
        }
        return 0;
    }
    if (n == 1 && t[0] == '*') {
        if (rh->method != WISP_METHOD_OPTIONS)
            return WISP_EPARSE;
        rh->path = t;
        rh->path_len = 1;
        rh->flags |= WISP__RH_ASTERISK;
        return 0;
    }
    return parse_absolute(rh, t, n);
}

/* request-line = method SP request-target SP HTTP-version CRLF
 * (RFC 9112 §3), with exactly one SP at each place. The whole line's
 * syntax is checked before its meaning: a malformed line is a 400 even
 * when its method or version is also unsupported. On success *pp points
 * past the CRLF. */
static int parse_request_line(wisp__req_head *rh, const char **pp,
                              const char *end)
{
    const char *p = *pp, *m = p, *q = NULL;
    int method = -1;

    /* GET, the usual method, in one word compare; the others through
     * the token scan and method_lookup. */
    if (end - p >= 4 && load32(p) == load32("GET ")) {
        method = WISP_METHOD_GET;
        p += 3;
    } else {
        p = skip_token(p, end);
        if (p == m || p == end || *p != ' ')
            return WISP_EPARSE;
    }
    size_t mlen = (size_t)(p - m);

    /* origin-form, the usual one, is checked while it is scanned: pchar,
     * '/', '?' and pct-encoded triplets only (RFC 3986 §3.3, §3.4),
     * split at its first '?'; other forms are scanned to the SP and
     * checked by parse_target. */
    const char *t = ++p;
    if (p < end && *p == '/') {
        p = q = skip_path(rh, p, end);
        if (p < end && *p == '?')
            p = skip_pct(p + 1, end, WISP__HC_URI);
    } else {
        p = skip_target(p, end);
    }
    if (p == t || p == end || *p != ' ')
        return WISP_EPARSE;
    size_t tlen = (size_t)(p - t);
    p++;

    /* HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive (§2.3),
     * then CRLF. One word compare settles the usual HTTP/1.1. */
    if (end - p < 10 || p[8] != '\r' || p[9] != '\n')
        return WISP_EPARSE;
    if (load64(p) == load64("HTTP/1.1")) {
        rh->minor = 1;
    } else if (load64(p) == load64("HTTP/1.0")) {
        rh->minor = 0;
    } else {
        if (memcmp(p, "HTTP/", 5) != 0 || !is_digit((unsigned char)p[5]) ||
            p[6] != '.' || !is_digit((unsigned char)p[7]))
            return WISP_EPARSE;
        /* RFC 9110 §2.5: a higher minor version of a major version we
         * implement (HTTP/1.2 .. HTTP/1.9) is processed as the highest
         * minor version we conform to, 1.1. */
        if (p[5] != '1')
            return WISP_EVERSION;
        rh->minor = 1;
    }
    *pp = p + 10;

    /* We do not proxy, so CONNECT is not implemented (RFC 9110 §9.3.6). */
    rh->method = method < 0 ? method_lookup(m, mlen) : method;
    if (rh->method < 0 || rh->method == WISP_METHOD_CONNECT)
        return WISP_EMETHOD;
    return parse_target(rh, t, tlen, q);
}

/* Content-Length = 1*DIGIT (RFC 9110 §8.6), at most INT64_MAX. */
static int parse_content_length(const char *v, size_t n, int64_t *out)
{
    uint64_t x = 0;
    if (n == 0)
        return WISP_EPARSE;
    for (size_t i = 0; i < n; i++) {
        unsigned d = (unsigned char)v[i] - (unsigned)'0';
        if (d > 9 || x > ((uint64_t)INT64_MAX - d) / 10)
            return WISP_EPARSE;
        x = x * 10 + d;
    }
    *out = (int64_t)x;
    return 0;
}

/* Connection = #connection-option (RFC 9110 §7.6.1): the options we act
 * on, case-insensitively; others and empty list elements are ignored. */
static uint32_t connection_flags(const char *v, size_t n)
{
    uint32_t f = 0;
    const char *e = v + n;
    for (;;) {
        const char *c = find_byte(v, e, ',');
        const char *s = v, *t = c ? c : e;
        while (s < t && (*s == ' ' || *s == '\t'))
            s++;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        switch (t - s) {
        case 5:
            if (ci_eq(s, "close", 5))
                f |= WISP__RH_CLOSE;
            break;
        case 7:
            if (ci_eq(s, "upgrade", 7))
                f |= WISP__RH_UPGRADE;
            break;
        case 10:
            if (ci_eq(s, "keep-alive", 10))
                f |= WISP__RH_KEEPALIVE;
            break;
        }
        if (!c)
            return f;
        v = c + 1;
    }
}

/* Facts gathered over the fields that are only judged at the end, as
 * bits of one word (one register, one test at the end when there is
 * nothing to judge). */
typedef uint32_t fields;
enum {
    FS_HOST = 1u << 0,       /* a Host field seen */
    FS_CL = 1u << 1,         /* a Content-Length field seen */
    FS_TE = 1u << 2,         /* a Transfer-Encoding field seen */
    FS_BAD_EXPECT = 1u << 3, /* an Expect other than 100-continue */
    FS_CHUNKED = 1u << 4,    /* "chunked" listed in Transfer-Encoding */
    FS_CHUNKED2 = 1u << 5,   /* ... more than once */
    FS_LAST_CHUNKED = 1u << 6, /* the last coding listed is chunked */
    FS_UNKNOWN = 1u << 7,    /* a coding other than chunked (501) */
};

/* Transfer-Encoding = #transfer-coding, transfer-coding = token *( OWS
 * ";" OWS transfer-parameter ) (RFC 9112 §6.1, §7; RFC 9110 §10.1.4).
 * The list of every field is one list (RFC 9110 §5.3); empty elements
 * are ignored (§5.6.1). We implement chunked only, which has no
 * parameters: "chunked" with one is malformed; another coding, with or
 * without parameters, is noted as unknown. The verdict on the whole list
 * waits for the end of the head (parse_head). */
static int transfer_codings(fields *f, const char *v, size_t n)
{
    const char *e = v + n;
    for (;;) {
        const char *c = find_byte(v, e, ',');
        const char *s = v, *t = c ? c : e;
        while (s < t && (*s == ' ' || *s == '\t'))
            s++;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if (s < t) {
            const char *k = skip_token(s, t);
            if (k == s)
                return WISP_EPARSE;
            const char *r = k;
            while (r < t && (*r == ' ' || *r == '\t'))
                r++;
            if (r < t && *r != ';')
                return WISP_EPARSE; /* "chunked junk" */
            if (k - s == 7 && ci_eq(s, "chunked", 7)) {
                if (r < t)
                    return WISP_EPARSE;
                *f |= (*f & FS_CHUNKED ? FS_CHUNKED2 : 0) | FS_CHUNKED |
                      FS_LAST_CHUNKED;
            } else {
                *f = (*f | FS_UNKNOWN) & ~(fields)FS_LAST_CHUNKED;
            }
        }
        if (!c)
            return 0;
        v = c + 1;
    }
}

/* Act on one field whose name and value are syntactically valid (`lim`
 * ends the readable buffer, for valid_host's vector step). The switch
 * on the name's length keeps the common case (a field we do not
 * interpret) to one jump and at most one word compare. */
static inline int apply_field(wisp__req_head *rh, fields *f,
                              const char *name, size_t nn,
                              const char *v, size_t vn, const char *lim)
{
    switch (nn) {
    case 4:
        if (!ci_eq(name, "host", 4))
            break;
        /* RFC 9112 §3.2: more than one Host, or one whose value is not
         * uri-host [ ":" port ], is a 400, with absolute-form too; then
         * the target's authority wins (§3.2.2). */
        if ((*f & FS_HOST) || !valid_host(v, vn, lim))
            return WISP_EPARSE;
        *f |= FS_HOST;
        if (!(rh->flags & WISP__RH_ABSOLUTE)) {
            rh->host = v;
            rh->host_len = (uint32_t)vn;
            rh->flags |= WISP__RH_HOST;
        }
        break;
    case 6:
        if (!ci_eq(name, "expect", 6))
            break;
        /* RFC 9110 §10.1.1: 100-continue is the only expectation; any
         * other is a 417, reported once the rest of the head is valid. */
        if (vn == 12 && ci_eq(v, "100-continue", 12))
            rh->flags |= WISP__RH_CONTINUE;
        else
            *f |= FS_BAD_EXPECT;
        break;
    case 10:
        if (ci_eq(name, "connection", 10))
            rh->flags |= connection_flags(v, vn);
        break;
    case 14:
        if (!ci_eq(name, "content-length", 14))
            break;
        /* RFC 9112 §6.3 allows merging equal repeated values; we reject
         * every repetition and list, the safe reading against request
         * smuggling. */
        if (*f & FS_CL)
            return WISP_EPARSE;
        *f |= FS_CL;
        return parse_content_length(v, vn, &rh->content_length);
    case 17:
        if (!ci_eq(name, "transfer-encoding", 17))
            break;
        *f |= FS_TE;
        return transfer_codings(f, v, vn);
    }
    return 0;
}

/* Parse the head at the start of buf[0..len) and fill `rh`. Returns its
 * length or an error; on a complete head (as find_end found it) the
 * error is the answer, otherwise any failure may only mean that bytes
 * are missing. */
static ssize_t parse_head(const char *buf, size_t len, wisp__req_head *rh,
                          const wisp__parse_limits *lim, size_t max_line)
{
    const char *p = buf, *end = buf + len, *rl;
    uint32_t cap = lim->max_headers < rh->max_headers ? lim->max_headers
                                                      : rh->max_headers;
    fields f = 0;
    int err;

    rh->flags = 0;
    rh->query = NULL;
    rh->query_len = 0;
    rh->host = NULL;
    rh->host_len = 0;
    rh->content_length = -1;
    rh->num_headers = 0;

    while (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
        p += 2;
    rl = p;
    if ((err = parse_request_line(rh, &p, end)) != 0)
        return err;
    if ((size_t)(p - rl) - 2 > max_line)
        return WISP_ETOOLONG_LINE;

    /* field-line = field-name ":" OWS field-value OWS CRLF (RFC 9112
     * §5). No whitespace between name and colon (§5.1), no obs-fold
     * (§5.2: a line starting with SP or HTAB has an empty name here), no
     * CTL but HTAB in the value (RFC 9110 §5.5). */
    wisp__header *hdrs = rh->headers;
    uint32_t nh = 0;
    for (;;) {
        if (end - p < 2) {
            err = -EAGAIN;
            goto fail;
        }
        if (load16(p) == load16("\r\n"))
            break;
        if (nh == cap) {
            err = WISP_ETOOMANY_HEADERS;
            goto fail;
        }
        const char *name = p;
        p = skip_token(p, end);
        if (p == name || p == end || *p != ':') {
            err = WISP_EPARSE;
            goto fail;
        }
        size_t nn = (size_t)(p - name);
        /* The value with its OWS: every byte of v..p is a value byte
         * (VCHAR, obs-text, SP, HTAB), so one compare tells OWS. */
        const char *v = ++p;
        p = skip_value(p, end);
        if (end - p < 2 || load16(p) != load16("\r\n")) {
            err = WISP_EPARSE;
            goto fail;
        }
        const char *e = p;
        while (v < e && (unsigned char)*v <= ' ')
            v++;
        while (e > v && (unsigned char)e[-1] <= ' ')
            e--;
        p += 2;
        wisp__header *h = &hdrs[nh++];
        h->name = name;
        h->name_len = (uint32_t)nn;
        h->value = v;
        h->value_len = (uint32_t)(e - v);
        if ((err = apply_field(rh, &f, name, nn, v, (size_t)(e - v), end)) != 0)
            goto fail;
    }
    rh->num_headers = nh;

    if (f & FS_TE) {
        /* RFC 9112 §6.1: a request with both Content-Length and
         * Transfer-Encoding is a smuggling attempt or broken; we do not
         * try to pick one. In HTTP/1.0 the framing is faulty (§6.1).
         * Unless chunked is the final coding, applied once (§7.1), the
         * length cannot be known: 400 (§6.3). */
        if ((f & FS_CL) || rh->minor == 0 || !(f & FS_LAST_CHUNKED) ||
            (f & FS_CHUNKED2))
            return WISP_EPARSE;
        rh->flags |= WISP__RH_CHUNKED;
    }
    /* RFC 9112 §3.2: HTTP/1.1 requires Host; the authority of an
     * absolute-form target stands in for it. */
    if (rh->minor == 1 && !(rh->flags & WISP__RH_HOST))
        return WISP_EPARSE;
    /* RFC 9112 §6.1: another coding before the final chunked is one we
     * do not understand: 501. */
    if (f & FS_UNKNOWN)
        return WISP_ECODING;
    if (f & FS_BAD_EXPECT)
        return WISP_EEXPECT;
    return p + 2 - buf;
fail:
    rh->num_headers = nh;
    return err;
}

ssize_t wisp__parse_request(const char *buf, size_t len, size_t *scan,
                            wisp__req_head *rh,
                            const wisp__parse_limits *lim)
{
    size_t max_head = lim->max_head < HALF_MAX - 1 ? lim->max_head
                                                   : HALF_MAX - 1;
    size_t max_line = lim->max_request_line < max_head
                          ? lim->max_request_line : max_head;
    ssize_t n;

    /* Fast path: the first call holds a whole, valid head. Success here
     * is what find_end and parse_head would answer too: every line ended
     * in CRLF (so there was no bare LF), the request line fit max_line,
     * and the head fit max_head since nothing past it was read. */
    if (*scan == 0) {
        n = parse_head(buf, len < max_head ? len : max_head, rh, lim,
                       max_line);
        if (n > 0) {
            *scan = (size_t)n | (RL_DONE << HALF_BITS);
            return n;
        }
    }
    n = find_end(buf, len, scan, max_line, max_head);
    if (n < 0)
        return n;
    return parse_head(buf, (size_t)n, rh, lim, max_line);
}

/* Decode %XX at p[0..3) when p[0] == '%' and three bytes are left;
 * returns the byte or -1 for a bad escape or one that gives NUL. */
static inline int pct_byte(const char *p, size_t left)
{
    unsigned char a, b;
    if (left < 3)
        return -1;
    a = (unsigned char)p[1];
    b = (unsigned char)p[2];
    if (!(wisp__http_chars[a] & wisp__http_chars[b] & WISP__HC_HEX))
        return -1;
    unsigned c = hexval(a) << 4 | hexval(b);
    return c ? (int)c : -1;
}

ssize_t wisp__pct_decode_path(char *p, size_t len)
{
    char *pct = len ? memchr(p, '%', len) : NULL;
    if (!pct)
        return (ssize_t)len;
    /* Copy each run between escapes with one memmove. */
    char *w = pct;
    const char *r = pct, *e = p + len;
    while (r < e) {
        int c = pct_byte(r, (size_t)(e - r));
        if (c < 0)
            return WISP_EPARSE;
        *w++ = (char)c;
        r += 3;
        const char *next = memchr(r, '%', (size_t)(e - r));
        size_t run = (size_t)((next ? next : e) - r);
        memmove(w, r, run);
        w += run;
        r += run;
    }
    return w - p;
}

ssize_t wisp__pct_decode_query(char *dst, const char *src, size_t len)
{
    size_t w = 0;
    for (size_t r = 0; r < len; w++) {
        char c = src[r];
        if (c == '%') {
            int d = pct_byte(src + r, len - r);
            if (d < 0)
                return WISP_EPARSE;
            dst[w] = (char)d;
            r += 3;
        } else {
            dst[w] = c == '+' ? ' ' : c;
            r++;
        }
    }
    return (ssize_t)w;
}

/* ------------------------------------------------------------ responses */

/* status-line = HTTP-version SP status-code SP [ reason-phrase ] CRLF
 * (RFC 9112 §4). The SP before an empty reason is required by the
 * grammar; a status line that ends right after the code is accepted too
 * (§4 asks recipients to be lenient there, and nothing else is lost). */
static int parse_status_line(wisp__resp_head *rh, const char **pp,
                             const char *end)
{
    const char *p = *pp;
    if (end - p < 12)
        return -EAGAIN;
    if (memcmp(p, "HTTP/", 5) != 0 || !is_digit((unsigned char)p[5]) ||
        p[6] != '.' || !is_digit((unsigned char)p[7]) || p[8] != ' ')
        return WISP_EPARSE;
    if (p[5] != '1')
        return WISP_EVERSION;
    rh->minor = p[7] == '0' ? 0 : 1;
    int st = 0;
    for (int i = 9; i < 12; i++) {
        if (!is_digit((unsigned char)p[i]))
            return WISP_EPARSE;
        st = st * 10 + (p[i] - '0');
    }
    /* RFC 9110 §15: three digits, the first 1 to 5. */
    if (st < 100 || st > 599)
        return WISP_EPARSE;
    rh->status = st;
    p += 12;
    const char *r = p;
    if (p < end && *p == ' ') {
        r = ++p;
        /* reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ) */
        p = skip_value(p, end);
    }
    if (end - p < 2)
        return -EAGAIN;
    if (p[0] != '\r' || p[1] != '\n')
        return WISP_EPARSE;
    rh->reason = r;
    rh->reason_len = (uint32_t)(p - r);
    *pp = p + 2;
    return 0;
}

/* One field line of a response head (the request side has its own,
 * faster loop in parse_head): name, value without its OWS, CRLF. */
static int parse_field(wisp__header *h, const char **pp, const char *end)
{
    const char *p = *pp, *name = p;
    p = skip_token(p, end);
    if (p == name || p == end || *p != ':')
        return WISP_EPARSE;
    h->name = name;
    h->name_len = (uint32_t)(p - name);
    p++;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    const char *v = p;
    p = skip_value(p, end);
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
        return WISP_EPARSE;
    const char *e = p;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    h->value = v;
    h->value_len = (uint32_t)(e - v);
    *pp = p + 2;
    return 0;
}

static int apply_resp_field(wisp__resp_head *rh, fields *f,
                            const wisp__header *h)
{
    const char *v = h->value;
    size_t vn = h->value_len;
    switch (h->name_len) {
    case 10:
        if (ci_eq(h->name, "connection", 10))
            rh->flags |= connection_flags(v, vn);
        break;
    case 14:
        if (!ci_eq(h->name, "content-length", 14))
            break;
        /* Repeated Content-Length, equal or not, is refused as on the
         * request side: a response we would frame differently from a
         * proxy in front of us is a smuggling risk (RFC 9112 §6.3). */
        if (*f & FS_CL)
            return WISP_EPARSE;
        *f |= FS_CL;
        return parse_content_length(v, vn, &rh->content_length);
    case 17:
        if (!ci_eq(h->name, "transfer-encoding", 17))
            break;
        *f |= FS_TE;
        return transfer_codings(f, v, vn);
    }
    return 0;
}

static ssize_t parse_resp_head(const char *buf, size_t len,
                               wisp__resp_head *rh,
                               const wisp__parse_limits *lim)
{
    const char *p = buf, *end = buf + len;
    uint32_t cap = lim->max_headers < rh->max_headers ? lim->max_headers
                                                      : rh->max_headers;
    fields f = 0;
    int err;

    rh->flags = 0;
    rh->content_length = -1;
    rh->num_headers = 0;
    while (end - p >= 2 && p[0] == '\r' && p[1] == '\n')
        p += 2;
    if ((err = parse_status_line(rh, &p, end)) != 0)
        return err;
    for (;;) {
        if (end - p < 2)
            return -EAGAIN;
        if (p[0] == '\r' && p[1] == '\n')
            break;
        if (rh->num_headers == cap)
            return WISP_ETOOMANY_HEADERS;
        wisp__header *h = &rh->headers[rh->num_headers++];
        if ((err = parse_field(h, &p, end)) != 0)
            return err;
        if ((err = apply_resp_field(rh, &f, h)) != 0)
            return err;
    }
    if (f & FS_TE) {
        /* Both framings, chunked not final or twice, or chunked in
         * HTTP/1.0: refused (RFC 9112 §6.1, §6.3 would read some of these
         * as close-delimited; a strict client does not guess). Another
         * coding (gzip) is one we do not decode. */
        if ((f & FS_CL) || rh->minor == 0)
            return WISP_EPARSE;
        if (f & FS_UNKNOWN)
            return WISP_ECODING;
        if ((f & (FS_LAST_CHUNKED | FS_CHUNKED | FS_CHUNKED2)) !=
            (FS_LAST_CHUNKED | FS_CHUNKED))
            return WISP_EPARSE;
        rh->flags |= WISP__RH_CHUNKED;
    }
    return p + 2 - buf;
}

ssize_t wisp__parse_response(const char *buf, size_t len, size_t *scan,
                             wisp__resp_head *rh,
                             const wisp__parse_limits *lim)
{
    size_t max_head = lim->max_head < HALF_MAX - 1 ? lim->max_head
                                                   : HALF_MAX - 1;
    size_t max_line = lim->max_request_line < max_head
                          ? lim->max_request_line : max_head;
    ssize_t n = find_end(buf, len, scan, max_line, max_head);
    if (n < 0)
        return n;
    n = parse_resp_head(buf, (size_t)n, rh, lim);
    /* The head is complete: a part "missing" is a malformed line. */
    return n == -EAGAIN ? WISP_EPARSE : n;
}
