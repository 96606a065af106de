/* Tests of the JSON reader and writer (src/util/json_parse.c,
 * json_read.c, json_write.c).
 *
 * Parsing rows name the RFC 8259 rule they exercise. Each row is parsed
 * with its last byte right before a PROT_NONE page, so any read past the
 * end faults, and every proper prefix of a valid row is parsed the same
 * way and must be refused (when no prefix can itself be a document).
 * Numbers, strings, navigation, limits and the writer have their own
 * tables. Then JSONTestSuite (test/data/JSONTestSuite, MIT; its directory
 * is argv[1]): every y_ file accepted, every n_ file refused, and every
 * i_ file given the decision documented in docs/guide.md ("JSON"). */
#include <dirent.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>

#include "wisp/json.h"

#include "../test.h"

#define IN(s) .in = (s), .in_len = sizeof(s) - 1
#define NTOK 256

static wisp_json_tok_t toks[NTOK];

/* ------------------------------------------------------------- parsing */

typedef struct prow {
    const char *name;
    const char *ref;
    const char *in;
    size_t in_len;
    int want;       /* token count, or the error */
    int prefix_ok;  /* some proper prefix is itself a document (numbers) */
    size_t err_at;  /* for WISP_EJSON_SYNTAX: the reported offset */
} prow;

#define SYN(at) WISP_EJSON_SYNTAX, 0, (at)

static const prow prows[] = {
    /* §2 structure and whitespace */
    {"a scalar is a document", "RFC 8259 §2", IN("true"), 1},
    {"whitespace around the value", "RFC 8259 §2", IN(" \t\r\n[ ] \n"), 1},
    {"empty input is refused", "RFC 8259 §2", IN(""), SYN(0)},
    {"only whitespace is refused", "RFC 8259 §2", IN("  \n"), SYN(3)},
    {"two top-level values are refused", "RFC 8259 §2", IN("1 2"), SYN(2)},
    {"trailing garbage is refused", "RFC 8259 §2", IN("{}x"), SYN(2)},
    {"trailing NUL is refused", "RFC 8259 §2", IN("[]\0"), SYN(2)},
    {"form feed is not whitespace", "RFC 8259 §2", IN("\f[]"), SYN(0)},
    {"vertical tab is not whitespace", "RFC 8259 §2", IN("[\v]"), SYN(1)},
    {"U+00A0 is not whitespace", "RFC 8259 §2", IN("[\xc2\xa0]"), SYN(1)},
    {"a byte order mark is refused", "RFC 8259 §8.1",
     IN("\xef\xbb\xbf{}"), SYN(0)},
    {"a comment is refused", "RFC 8259 §2", IN("[1 /* c */]"), SYN(3)},
    /* §3 literals */
    {"literals", "RFC 8259 §3", IN("[true,false,null]"), 4},
    {"capitalised literal is refused", "RFC 8259 §3", IN("True"), SYN(0)},
    {"literal cut short is refused", "RFC 8259 §3", IN("[nul]"), SYN(1)},
    {"literal with a tail is refused", "RFC 8259 §3", IN("nulls"), SYN(4)},
    {"NaN is refused", "RFC 8259 §6", IN("NaN"), SYN(0)},
    {"Infinity is refused", "RFC 8259 §6", IN("[-Infinity]"), SYN(2)},
    /* §4 objects */
    {"empty object", "RFC 8259 §4", IN("{}"), 1},
    {"object with members", "RFC 8259 §4", IN("{\"a\":1,\"b\":[2]}"), 6},
    {"duplicate keys are accepted", "RFC 8259 §4", IN("{\"a\":1,\"a\":2}"),
     5},
    {"non-string key is refused", "RFC 8259 §4", IN("{1:2}"), SYN(1)},
    {"missing colon is refused", "RFC 8259 §4", IN("{\"a\" 1}"), SYN(5)},
    {"missing value is refused", "RFC 8259 §4", IN("{\"a\":}"), SYN(5)},
    {"trailing comma in object is refused", "RFC 8259 §4",
     IN("{\"a\":1,}"), SYN(7)},
    {"single-quoted key is refused", "RFC 8259 §4", IN("{'a':1}"), SYN(1)},
    {"object closed by ] is refused", "RFC 8259 §4", IN("{\"a\":1]"),
     SYN(6)},
    {"comma instead of colon is refused", "RFC 8259 §4", IN("{\"a\",1}"),
     SYN(4)},
    /* §5 arrays */
    {"empty array", "RFC 8259 §5", IN("[]"), 1},
    {"nested arrays", "RFC 8259 §5", IN("[[[]],[]]"), 4},
    {"trailing comma in array is refused", "RFC 8259 §5", IN("[1,]"),
     SYN(3)},
    {"leading comma is refused", "RFC 8259 §5", IN("[,1]"), SYN(1)},
    {"missing comma is refused", "RFC 8259 §5", IN("[1 2]"), SYN(3)},
    {"array closed by } is refused", "RFC 8259 §5", IN("[1}"), SYN(2)},
    {"unclosed array is refused", "RFC 8259 §5", IN("[1,2"), SYN(4)},
    {"stray close is refused", "RFC 8259 §5", IN("]"), SYN(0)},
    /* §6 numbers */
    {"zero", "RFC 8259 §6", IN("0"), 1, 1},
    {"minus zero", "RFC 8259 §6", IN("-0"), 1, 1},
    {"number forms", "RFC 8259 §6",
     IN("[0,-1,1.5,-0.0e0,1E2,1e+2,1e-2,123456789]"), 9},
    {"leading zero is refused", "RFC 8259 §6", IN("[01]"), SYN(2)},
    {"minus leading zero is refused", "RFC 8259 §6", IN("-01"), SYN(2)},
    {"plus sign is refused", "RFC 8259 §6", IN("+1"), SYN(0)},
    {"lone minus is refused", "RFC 8259 §6", IN("[-]"), SYN(2)},
    {"leading dot is refused", "RFC 8259 §6", IN(".5"), SYN(0)},
    {"trailing dot is refused", "RFC 8259 §6", IN("[1.]"), SYN(3)},
    {"empty exponent is refused", "RFC 8259 §6", IN("[1e]"), SYN(3)},
    {"signed empty exponent is refused", "RFC 8259 §6", IN("[1e+]"),
     SYN(4)},
    {"hex is refused", "RFC 8259 §6", IN("0x10"), SYN(1)},
    {"minus space digit is refused", "RFC 8259 §6", IN("- 1"), SYN(1)},
    {"huge exponent is grammatical", "RFC 8259 §6", IN("[1e99999999999]"),
     2},
    {"number ended by a letter is refused", "RFC 8259 §6", IN("[1a]"),
     SYN(2)},
    /* §7 strings */
    {"empty string", "RFC 8259 §7", IN("\"\""), 1},
    {"every short escape", "RFC 8259 §7", IN("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\""),
     1},
    {"\\u escapes, upper and lower hex", "RFC 8259 §7",
     IN("\"\\u00e9\\u00E9\\u0000\""), 1},
    {"surrogate pair escape", "RFC 8259 §7", IN("\"\\ud83d\\ude00\""), 1},
    {"lone high surrogate is refused", "RFC 8259 §7 / RFC 3629 §3",
     IN("\"\\ud83d\""), SYN(1)},
    {"lone low surrogate is refused", "RFC 8259 §7 / RFC 3629 §3",
     IN("\"\\ude00\""), SYN(1)},
    {"high surrogate then a non-low escape is refused", "RFC 8259 §7",
     IN("\"\\ud83d\\u0041\""), SYN(1)},
    {"high surrogate then text is refused", "RFC 8259 §7",
     IN("\"\\ud83dabcdef\""), SYN(1)},
    {"two high surrogates are refused", "RFC 8259 §7",
     IN("\"\\ud83d\\ud83d\""), SYN(1)},
    {"inverted pair is refused", "RFC 8259 §7", IN("\"\\ude00\\ud83d\""),
     SYN(1)},
    {"unknown escape is refused", "RFC 8259 §7", IN("\"\\x41\""), SYN(2)},
    {"short \\u escape is refused", "RFC 8259 §7", IN("\"\\u12\""), SYN(1)},
    {"non-hex \\u escape is refused", "RFC 8259 §7", IN("\"\\u12g4\""),
     SYN(1)},
    {"escaped newline is refused", "RFC 8259 §7", IN("\"\\\n\""), SYN(2)},
    {"raw tab is refused", "RFC 8259 §7", IN("\"a\tb\""), SYN(2)},
    {"raw newline is refused", "RFC 8259 §7", IN("\"a\nb\""), SYN(2)},
    {"raw NUL is refused", "RFC 8259 §7", IN("\"a\0b\""), SYN(2)},
    {"raw U+001F is refused", "RFC 8259 §7", IN("\"\x1f\""), SYN(1)},
    {"raw DEL is accepted", "RFC 8259 §7", IN("\"\x7f\""), 1},
    {"unterminated string is refused", "RFC 8259 §7", IN("\"abc"), SYN(4)},
    {"single quotes are refused", "RFC 8259 §7", IN("'a'"), SYN(0)},
    /* §8.1 UTF-8 (RFC 3629) */
    {"2-, 3- and 4-byte characters", "RFC 3629 §3",
     IN("\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80"
        "\xf4\x8f\xbf\xbf\""),
     1},
    {"U+D7FF and U+E000 around the surrogates", "RFC 3629 §3",
     IN("\"\xed\x9f\xbf\xee\x80\x80\""), 1},
    {"overlong 2-byte (C0 80) is refused", "RFC 3629 §3", IN("\"\xc0\x80\""),
     SYN(1)},
    {"overlong 2-byte (C1 BF) is refused", "RFC 3629 §3", IN("\"\xc1\xbf\""),
     SYN(1)},
    {"overlong 3-byte (E0 9F BF) is refused", "RFC 3629 §3",
     IN("\"\xe0\x9f\xbf\""), SYN(1)},
    {"overlong 4-byte (F0 8F BF BF) is refused", "RFC 3629 §3",
     IN("\"\xf0\x8f\xbf\xbf\""), SYN(1)},
    {"UTF-8 surrogate (ED A0 80) is refused", "RFC 3629 §3",
     IN("\"\xed\xa0\x80\""), SYN(1)},
    {"UTF-8 surrogate (ED BF BF) is refused", "RFC 3629 §3",
     IN("\"\xed\xbf\xbf\""), SYN(1)},
    {"above U+10FFFF (F4 90 80 80) is refused", "RFC 3629 §3",
     IN("\"\xf4\x90\x80\x80\""), SYN(1)},
    {"F5 lead is refused", "RFC 3629 §3", IN("\"\xf5\x80\x80\x80\""),
     SYN(1)},
    {"FF byte is refused", "RFC 3629 §3", IN("\"\xff\""), SYN(1)},
    {"stray continuation byte is refused", "RFC 3629 §3", IN("\"\x80\""),
     SYN(1)},
    {"truncated 3-byte sequence is refused", "RFC 3629 §3",
     IN("\"\xe2\x82\""), SYN(1)},
    {"truncated 4-byte sequence at the end of input is refused",
     "RFC 3629 §3", IN("\"\xf0\x9f\x98"), SYN(1)},
    {"5-byte form is refused", "RFC 3629 §3", IN("\"\xf8\x88\x80\x80\x80\""),
     SYN(1)},
    {"Latin-1 byte is refused", "RFC 8259 §8.1", IN("\"caf\xe9\""), SYN(4)},
    {"non-ASCII outside a string is refused", "RFC 8259 §2",
     IN("[\xc3\xa9]"), SYN(1)},
};

/* Whether `in` ends with whitespace-only tail: prefixes that drop only
 * that tail are themselves documents. */
static size_t trimmed_len(const char *in, size_t len)
{
    while (len > 0 && (in[len - 1] == ' ' || in[len - 1] == '\n' ||
                       in[len - 1] == '\t' || in[len - 1] == '\r'))
        len--;
    return len;
}

static int parse_guarded(const char *in, size_t len, wisp_json_doc_t *doc,
                         const wisp_json_limits_t *lim)
{
    t_guard g = t_guard_copy(in, len);
    int rc = wisp_json_parse(doc, g.data, len, toks, NTOK, lim);
    t_guard_free(&g);
    return rc;
}

static void test_parse_rows(void)
{
    for (size_t i = 0; i < sizeof(prows) / sizeof(prows[0]); i++) {
        const prow *r = &prows[i];
        wisp_json_doc_t doc;
        int rc = parse_guarded(r->in, r->in_len, &doc, NULL);
        CHECK_MSG(rc == r->want, "%s (%s): got %d, want %d", r->name, r->ref,
                  rc, r->want);
        if (rc < 0) {
            CHECK_MSG(doc.ntoks == 0, "%s: tokens left after error", r->name);
            if (r->want == WISP_EJSON_SYNTAX)
                CHECK_MSG(doc.err_offset == r->err_at,
                          "%s: error at %zu, want %zu", r->name,
                          doc.err_offset, r->err_at);
            continue;
        }
        CHECK_EQ_INT(doc.ntoks, (uint32_t)rc);
        CHECK(doc.toks[0].next == (uint32_t)rc);
        /* Every proper prefix, guarded: refused, never an over-read. */
        size_t full = trimmed_len(r->in, r->in_len);
        for (size_t n = 0; n < r->in_len; n++) {
            int prc = parse_guarded(r->in, n, &doc, NULL);
            if (n >= full)
                CHECK_MSG(prc == rc, "%s: prefix %zu (only whitespace cut) "
                          "gave %d", r->name, n, prc);
            else if (!r->prefix_ok)
                CHECK_MSG(prc == WISP_EJSON_SYNTAX,
                          "%s: prefix of %zu bytes gave %d", r->name, n, prc);
        }
    }
}

/* ------------------------------------------------- token layout, spans */

static void test_layout(void)
{
    static const char in[] = " {\"a\" : [1, {\"b\":null}], \"c\\n\":\"x\"} ";
    wisp_json_doc_t doc;
    /* 0 {  1 "a"  2 [  3 1  4 {  5 "b"  6 null  7 "c\n"  8 "x" */
    int n = wisp_json_parse(&doc, in, sizeof(in) - 1, toks, NTOK, NULL);
    CHECK_EQ_INT(n, 9);
    CHECK_EQ_INT(toks[0].type, WISP_JSON_OBJECT);
    CHECK_EQ_INT(toks[0].start, 1);
    CHECK_EQ_INT(toks[0].len, sizeof(in) - 3);
    CHECK_EQ_INT(toks[0].next, 9);
    CHECK_EQ_INT(toks[1].type, WISP_JSON_STRING);
    CHECK(toks[1].flags & WISP_JSON_F_KEY);
    CHECK_EQ_INT(toks[1].start, 3);
    CHECK_EQ_INT(toks[1].len, 1);
    CHECK_EQ_INT(toks[2].type, WISP_JSON_ARRAY);
    CHECK_EQ_INT(toks[2].next, 7);
    CHECK_STRN(in + toks[2].start, toks[2].len, "[1, {\"b\":null}]");
    CHECK(toks[3].flags & WISP_JSON_F_INTEGER);
    CHECK(!(toks[3].flags & WISP_JSON_F_LAST));
    CHECK(toks[4].flags & WISP_JSON_F_LAST);
    CHECK_EQ_INT(toks[4].next, 7);
    CHECK(toks[5].flags & WISP_JSON_F_KEY);
    CHECK(toks[6].flags & WISP_JSON_F_LAST);
    CHECK(toks[7].flags & WISP_JSON_F_ESCAPED);
    CHECK(toks[7].flags & WISP_JSON_F_KEY);
    CHECK(toks[7].flags & WISP_JSON_F_LAST);
    CHECK(toks[8].flags & WISP_JSON_F_LAST);
    CHECK_STRN(in + toks[8].start, toks[8].len, "x");
}

/* ------------------------------------------------------------- numbers */

enum { NA = 1 }; /* "the value is not checked" for the rows below */

typedef struct nrow {
    const char *name;
    const char *in;
    int i64_rc;
    int64_t i64;
    int u64_rc;
    uint64_t u64;
    int d_rc;
    double d;
} nrow;

/* 2^1024 - 2^970, all 309 digits, and the same minus one. */
#define MAXHALF_HEAD                                                        \
    "17976931348623158079372897140530341507993413271003782693617377898044" \
    "49682927647509466490179775872070963302864166928879109465555478519404" \
    "02630657488671505820681908902000708383676273854845817711531764475730" \
    "27006985557136695962284291481986083493647529271907416844436551070434" \
    "271155969950809304288017790417449779"
#define MAXHALF MAXHALF_HEAD "2"
#define MAXHALF_BELOW MAXHALF_HEAD "1"

static const nrow nrows[] = {
    {"zero", "0", 0, 0, 0, 0, 0, 0.0},
    {"minus zero is the integer 0", "-0", 0, 0, 0, 0, 0, -0.0},
    {"1.0 is an integer", "1.0", 0, 1, 0, 1, 0, 1.0},
    {"1e2 is an integer", "1e2", 0, 100, 0, 100, 0, 100.0},
    {"100e-2 is an integer", "100e-2", 0, 1, 0, 1, 0, 1.0},
    {"0.000e999 is zero", "0.000e999", 0, 0, 0, 0, 0, 0.0},
    {"1.5 is not an integer", "1.5", -ERANGE, 0, -ERANGE, 0, 0, 1.5},
    {"1e-1 is not an integer", "1e-1", -ERANGE, 0, -ERANGE, 0, 0, 0.1},
    {"negative is not a uint64", "-1", 0, -1, -ERANGE, 0, 0, -1.0},
    {"INT64_MAX", "9223372036854775807", 0, INT64_MAX, 0,
     (uint64_t)INT64_MAX, 0, 9223372036854775807.0},
    {"INT64_MAX + 1 overflows int64", "9223372036854775808", -ERANGE, 0, 0,
     (uint64_t)INT64_MAX + 1, 0, 9223372036854775808.0},
    {"INT64_MIN", "-9223372036854775808", 0, INT64_MIN, -ERANGE, 0, 0,
     -9223372036854775808.0},
    {"INT64_MIN - 1 overflows", "-9223372036854775809", -ERANGE, 0, -ERANGE,
     0, 0, -9223372036854775808.0},
    {"UINT64_MAX", "18446744073709551615", -ERANGE, 0, 0, UINT64_MAX, 0,
     18446744073709551615.0},
    {"UINT64_MAX + 1 overflows", "18446744073709551616", -ERANGE, 0,
     -ERANGE, 0, 0, 18446744073709551616.0},
    {"UINT64_MAX as 1.8446744073709551615e19",
     "1.8446744073709551615e19", -ERANGE, 0, 0, UINT64_MAX, 0,
     18446744073709551615.0},
    {"leading zeros of a fraction", "0.00000000000000000001e20", 0, 1, 0, 1,
     0, 1.0},
    {"huge integer", "123456789012345678901234567890", -ERANGE, 0, -ERANGE,
     0, 0, 1.2345678901234568e29},
    {"1E400 overflows a double", "1E400", -ERANGE, 0, -ERANGE, 0, -ERANGE,
     0},
    {"-1E400 overflows a double", "-1E400", -ERANGE, 0, -ERANGE, 0, -ERANGE,
     0},
    {"1e-400 underflows to 0", "1e-400", -ERANGE, 0, -ERANGE, 0, 0, 0.0},
    {"huge exponent", "1e99999999999999999999", -ERANGE, 0, -ERANGE, 0,
     -ERANGE, 0},
    {"huge negative exponent", "-1e-99999999999999999999", -ERANGE, 0,
     -ERANGE, 0, 0, -0.0},
    {"0.1", "0.1", -ERANGE, 0, -ERANGE, 0, 0, 0.1},
    {"DBL_MAX", "1.7976931348623157e308", -ERANGE, 0, -ERANGE, 0, 0,
     DBL_MAX},
    {"just below the overflow threshold rounds to DBL_MAX",
     "1.7976931348623158e308", -ERANGE, 0, -ERANGE, 0, 0, DBL_MAX},
    /* DBL_MAX + half an ulp (2^1024 - 2^970) rounds to even, which is
     * the infinity above DBL_MAX (its last bit is odd); a hair below it
     * rounds to DBL_MAX. 309 digits: strtod's path, sticky digit. */
    {"the overflow threshold itself overflows", MAXHALF, -ERANGE, 0,
     -ERANGE, 0, -ERANGE, 0},
    {"a hair below the overflow threshold is DBL_MAX",
     "0." MAXHALF_BELOW "e309", -ERANGE, 0, -ERANGE, 0, 0, DBL_MAX},
    {"smallest subnormal", "4.9406564584124654e-324", -ERANGE, 0, -ERANGE,
     0, 0, 4.9406564584124654e-324},
    {"half the smallest subnormal rounds to even (0)",
     "2.4703282292062327e-324", -ERANGE, 0, -ERANGE, 0, 0, 0.0},
    {"just above half the smallest subnormal rounds up",
     "2.4703282292062328e-324", -ERANGE, 0, -ERANGE, 0, 0,
     4.9406564584124654e-324},
    {"DBL_MIN", "2.2250738585072014e-308", -ERANGE, 0, -ERANGE, 0, 0,
     DBL_MIN},
    {"2^53 + 1 rounds to even", "9007199254740993", 0, 9007199254740993,
     0, 9007199254740993u, 0, 9007199254740992.0},
    {"2^53 + 1 and a tiny bit rounds up",
     "9007199254740993.0000000000000000000000000000000000001", -ERANGE, 0,
     -ERANGE, 0, 0, 9007199254740994.0},
};

static void check_number(const nrow *r)
{
    wisp_json_doc_t doc;
    char in[512];
    snprintf(in, sizeof(in), "[%s]", r->in);
    int n = wisp_json_parse(&doc, in, strlen(in), toks, NTOK, NULL);
    CHECK_MSG(n == 2, "%s: parse %d", r->name, n);
    if (n != 2)
        return;
    int64_t i64 = 42;
    uint64_t u64 = 42;
    double d = 42;
    int rc = wisp_json_int64(&doc, 1, &i64);
    CHECK_MSG(rc == r->i64_rc && (rc < 0 ? i64 == 42 : i64 == r->i64),
              "%s: int64 %d %lld", r->name, rc, (long long)i64);
    rc = wisp_json_uint64(&doc, 1, &u64);
    CHECK_MSG(rc == r->u64_rc && (rc < 0 ? u64 == 42 : u64 == r->u64),
              "%s: uint64 %d %llu", r->name, rc, (unsigned long long)u64);
    rc = wisp_json_double(&doc, 1, &d);
    CHECK_MSG(rc == r->d_rc &&
                  (rc < 0 ? d == 42
                          : memcmp(&d, &r->d, sizeof(d)) == 0),
              "%s: double %d %.17g", r->name, rc, d);
}

/* Random decimal strings against strtod (the C library rounds correctly;
 * the program runs in the "C" locale). */
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_double_random(void)
{
    char in[96];
    wisp_json_doc_t doc;
    int bad = 0;

    for (int k = 0; k < 20000; k++) {
        int nd = 1 + (int)(next_rand() % 25), point = (int)(next_rand() % 26);
        int e = (int)(next_rand() % 700) - 350;
        size_t p = 0;
        if (next_rand() & 1)
            in[p++] = '-';
        for (int j = 0; j < nd; j++) {
            if (j == point && j > 0)
                in[p++] = '.';
            char c = (char)('0' + next_rand() % 10);
            if (j == 0 && c == '0')
                c = '1';
            in[p++] = c;
        }
        p += (size_t)snprintf(in + p, sizeof(in) - p, "e%d", e);
        if (wisp_json_parse(&doc, in, p, toks, NTOK, NULL) != 1) {
            bad++;
            continue;
        }
        double got, want = strtod(in, NULL);
        int rc = wisp_json_double(&doc, 0, &got);
        if (isinf(want))
            bad += rc != -ERANGE;
        else
            bad += rc != 0 || memcmp(&got, &want, sizeof(got)) != 0;
    }
    CHECK_EQ_INT(bad, 0);
}

/* ------------------------------------------------------------- strings */

typedef struct srow {
    const char *name;
    const char *in; /* a JSON string, quotes included */
    const char *out;
    size_t out_len;
} srow;

#define OUT(s) .out = (s), .out_len = sizeof(s) - 1

static const srow srows[] = {
    {"plain", "\"abc\"", OUT("abc")},
    {"short escapes", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", OUT("\"\\/\b\f\n\r\t")},
    {"\\u0000 decodes to a NUL byte", "\"a\\u0000b\"", OUT("a\0b")},
    {"\\u007f, 1 byte", "\"\\u007F\"", OUT("\x7f")},
    {"\\u0080, 2 bytes", "\"\\u0080\"", OUT("\xc2\x80")},
    {"\\u07ff, 2 bytes", "\"\\u07ff\"", OUT("\xdf\xbf")},
    {"\\u0800, 3 bytes", "\"\\u0800\"", OUT("\xe0\xa0\x80")},
    {"\\uffff, 3 bytes", "\"\\uFFFF\"", OUT("\xef\xbf\xbf")},
    {"\\ud800\\udc00 is U+10000", "\"\\ud800\\udc00\"",
     OUT("\xf0\x90\x80\x80")},
    {"\\udbff\\udfff is U+10FFFF", "\"\\uDBFF\\uDFFF\"",
     OUT("\xf4\x8f\xbf\xbf")},
    {"raw UTF-8 passes through", "\"\xc3\xa9\\u00e9\"",
     OUT("\xc3\xa9\xc3\xa9")},
};

static void test_strings(void)
{
    for (size_t i = 0; i < sizeof(srows) / sizeof(srows[0]); i++) {
        const srow *r = &srows[i];
        wisp_json_doc_t doc;
        char out[64];
        int n = wisp_json_parse(&doc, r->in, strlen(r->in), toks, NTOK, NULL);
        CHECK_MSG(n == 1, "%s: parse %d", r->name, n);
        ssize_t len = wisp_json_str(&doc, 0, out, sizeof(out));
        CHECK_MSG(len == (ssize_t)r->out_len &&
                      memcmp(out, r->out, r->out_len) == 0 &&
                      out[len] == '\0',
                  "%s: decoded %zd", r->name, len);
        /* Exactly enough room, and one byte short. */
        CHECK_EQ_INT(wisp_json_str(&doc, 0, out, r->out_len + 1),
                     (ssize_t)r->out_len);
        CHECK_EQ_INT(wisp_json_str(&doc, 0, out, r->out_len), -ENOBUFS);
        if (!memchr(r->out, '\0', r->out_len)) {
            char s[64];
            memcpy(s, r->out, r->out_len);
            s[r->out_len] = '\0';
            CHECK_MSG(wisp_json_str_eq(&doc, 0, s), "%s: str_eq", r->name);
            s[r->out_len - 1] ^= 1;
            CHECK(!wisp_json_str_eq(&doc, 0, s));
            s[r->out_len - 1] = '\0';
            CHECK(!wisp_json_str_eq(&doc, 0, s)); /* shorter */
        } else {
            /* "a\0b" is not "a": the decoded NUL is a byte, not the end. */
            CHECK(!wisp_json_str_eq(&doc, 0, "a"));
        }
        CHECK(!wisp_json_str_eq(&doc, 0, "abcdefghijklmnopqrstuvwxyz"));
    }
    /* Empty string, zero-capacity buffer. */
    wisp_json_doc_t doc;
    char one[1];
    wisp_json_parse(&doc, "\"\"", 2, toks, NTOK, NULL);
    CHECK_EQ_INT(wisp_json_str(&doc, 0, NULL, 0), -ENOBUFS);
    CHECK_EQ_INT(wisp_json_str(&doc, 0, one, 1), 0);
    CHECK(one[0] == '\0');
    CHECK(wisp_json_str_eq(&doc, 0, ""));
}

/* ---------------------------------------------------------- navigation */

static void test_navigation(void)
{
    static const char in[] =
        "{\"type\":\"hello\",\"n\":3,\"list\":[10,[20,21],{\"x\":1},30],"
        "\"obj\":{},\"arr\":[],\"\\u0061\":\"esc\",\"type\":\"dup\","
        "\"t\":true,\"f\":false,\"z\":null}";
    wisp_json_doc_t doc;
    char buf[32];
    int64_t v;
    int b;
    int n = wisp_json_parse(&doc, in, sizeof(in) - 1, toks, NTOK, NULL);
    CHECK(n > 0);

    CHECK_EQ_INT(wisp_json_type(&doc, 0), WISP_JSON_OBJECT);
    CHECK_EQ_INT(wisp_json_count(&doc, 0), 10);
    int t = wisp_json_get(&doc, 0, "type");
    CHECK(wisp_json_str_eq(&doc, t, "hello")); /* the first of two */
    CHECK_EQ_INT(wisp_json_str(&doc, t, buf, sizeof(buf)), 5);
    wisp_str_t raw = wisp_json_raw(&doc, t);
    CHECK_STRN(raw.ptr, raw.len, "hello");
    CHECK(wisp_json_str_eq(&doc, wisp_json_get(&doc, 0, "a"), "esc"));
    CHECK_EQ_INT(wisp_json_get(&doc, 0, "missing"), -1);
    CHECK_EQ_INT(wisp_json_get(&doc, 0, "typ"), -1);
    CHECK_EQ_INT(wisp_json_get(&doc, 0, NULL), -1);
    CHECK_EQ_INT(wisp_json_int64(&doc, wisp_json_get(&doc, 0, "n"), &v), 0);
    CHECK_EQ_INT(v, 3);

    int list = wisp_json_get(&doc, 0, "list");
    CHECK_EQ_INT(wisp_json_type(&doc, list), WISP_JSON_ARRAY);
    CHECK_EQ_INT(wisp_json_count(&doc, list), 4);
    raw = wisp_json_raw(&doc, list);
    CHECK_STRN(raw.ptr, raw.len, "[10,[20,21],{\"x\":1},30]");
    int64_t want[] = {10, -1, -1, 30};
    int k = 0;
    for (int e = wisp_json_first(&doc, list); e >= 0;
         e = wisp_json_next(&doc, e), k++)
        if (want[k] >= 0) {
            CHECK_EQ_INT(wisp_json_int64(&doc, e, &v), 0);
            CHECK_EQ_INT(v, want[k]);
        }
    CHECK_EQ_INT(k, 4);
    int inner = wisp_json_at(&doc, list, 1);
    CHECK_EQ_INT(wisp_json_count(&doc, inner), 2);
    CHECK_EQ_INT(wisp_json_int64(&doc, wisp_json_at(&doc, inner, 1), &v), 0);
    CHECK_EQ_INT(v, 21);
    CHECK_EQ_INT(wisp_json_at(&doc, inner, 2), -1);
    CHECK_EQ_INT(wisp_json_next(&doc, wisp_json_at(&doc, inner, 1)), -1);
    int x = wisp_json_get(&doc, wisp_json_at(&doc, list, 2), "x");
    CHECK_EQ_INT(wisp_json_int64(&doc, x, &v), 0);
    CHECK_EQ_INT(v, 1);
    CHECK_EQ_INT(wisp_json_at(&doc, list, 4), -1);
    CHECK_EQ_INT(wisp_json_at(&doc, 0, 0), -1); /* not an array */

    int obj = wisp_json_get(&doc, 0, "obj");
    CHECK_EQ_INT(wisp_json_count(&doc, obj), 0);
    CHECK_EQ_INT(wisp_json_first(&doc, obj), -1);
    int arr = wisp_json_get(&doc, 0, "arr");
    CHECK_EQ_INT(wisp_json_first(&doc, arr), -1);
    CHECK_EQ_INT(wisp_json_count(&doc, arr), 0);

    /* Iterating the members: keys in order; next on a value also moves
     * to the next key; the last member ends the walk. */
    const char *keys[] = {"type", "n", "list", "obj", "arr", "a", "type",
                          "t", "f", "z"};
    k = 0;
    for (int key = wisp_json_first(&doc, 0); key >= 0;
         key = wisp_json_next(&doc, key), k++) {
        CHECK_MSG(wisp_json_str_eq(&doc, key, keys[k]), "key %d", k);
        CHECK_EQ_INT(wisp_json_next(&doc, key + 1), wisp_json_next(&doc, key));
    }
    CHECK_EQ_INT(k, 10);

    CHECK_EQ_INT(wisp_json_bool(&doc, wisp_json_get(&doc, 0, "t"), &b), 0);
    CHECK_EQ_INT(b, 1);
    CHECK_EQ_INT(wisp_json_bool(&doc, wisp_json_get(&doc, 0, "f"), &b), 0);
    CHECK_EQ_INT(b, 0);
    CHECK_EQ_INT(wisp_json_type(&doc, wisp_json_get(&doc, 0, "z")),
                 WISP_JSON_NULL);

    /* Wrong types and "none" (-1, out of range) everywhere. */
    double d;
    uint64_t u;
    CHECK_EQ_INT(wisp_json_bool(&doc, t, &b), WISP_EJSON_TYPE);
    CHECK_EQ_INT(wisp_json_int64(&doc, t, &v), WISP_EJSON_TYPE);
    CHECK_EQ_INT(wisp_json_uint64(&doc, -1, &u), WISP_EJSON_TYPE);
    CHECK_EQ_INT(wisp_json_double(&doc, 0, &d), WISP_EJSON_TYPE);
    CHECK_EQ_INT(wisp_json_str(&doc, list, buf, sizeof(buf)),
                 WISP_EJSON_TYPE);
    CHECK_EQ_INT(wisp_json_str(&doc, -1, buf, sizeof(buf)), WISP_EJSON_TYPE);
    CHECK(!wisp_json_str_eq(&doc, list, "x"));
    CHECK(!wisp_json_str_eq(&doc, -1, "x"));
    CHECK_EQ_INT(wisp_json_type(&doc, -1), WISP_JSON_INVALID);
    CHECK_EQ_INT(wisp_json_type(&doc, n), WISP_JSON_INVALID);
    CHECK_EQ_INT(wisp_json_type(NULL, 0), WISP_JSON_INVALID);
    CHECK_EQ_INT(wisp_json_count(&doc, -1), 0);
    CHECK_EQ_INT(wisp_json_count(&doc, t), 0);
    CHECK_EQ_INT(wisp_json_first(&doc, -1), -1);
    CHECK_EQ_INT(wisp_json_first(&doc, t), -1);
    CHECK_EQ_INT(wisp_json_next(&doc, -1), -1);
    CHECK_EQ_INT(wisp_json_next(&doc, 0), -1);
    CHECK_EQ_INT(wisp_json_next(&doc, n), -1);
    CHECK_EQ_INT(wisp_json_get(&doc, -1, "type"), -1);
    CHECK_EQ_INT(wisp_json_get(&doc, list, "type"), -1);
    CHECK_EQ_INT(wisp_json_at(&doc, -1, 0), -1);
    raw = wisp_json_raw(&doc, -1);
    CHECK(raw.ptr == NULL && raw.len == 0);
}

/* -------------------------------------------------------------- limits */

static void test_limits(void)
{
    wisp_json_doc_t doc;
    wisp_json_limits_t lim = {0, 0};
    char buf[300];

    /* Depth: 64 nested arrays by default, 65 is too deep; a custom
     * limit is exact too. */
    for (int d = 60; d <= 70; d++) {
        memset(buf, '[', (size_t)d);
        memset(buf + d, ']', (size_t)d);
        int rc = parse_guarded(buf, 2 * (size_t)d, &doc, NULL);
        CHECK_MSG(d <= 64 ? rc == d : rc == WISP_EJSON_DEPTH,
                  "depth %d: %d", d, rc);
    }
    lim.max_depth = 3;
    CHECK_EQ_INT(parse_guarded("[{\"a\":[1]}]", 11, &doc, &lim), 5);
    CHECK_EQ_INT(parse_guarded("[{\"a\":[[]]}]", 12, &doc, &lim),
                 WISP_EJSON_DEPTH);
    CHECK_EQ_INT(doc.ntoks, 0);
    /* Deep but within a huge limit: no recursion, no stack. */
    size_t deep = 100000;
    char *big = malloc(2 * deep);
    wisp_json_tok_t *many = malloc(deep * sizeof(*many));
    memset(big, '[', deep);
    memset(big + deep, ']', deep);
    lim.max_depth = (uint32_t)deep;
    CHECK_EQ_INT(wisp_json_parse(&doc, big, 2 * deep, many, (uint32_t)deep,
                                 &lim),
                 (int)deep);
    CHECK_EQ_INT(wisp_json_count(&doc, 0), 1);
    CHECK_EQ_INT(many[0].next, deep);
    CHECK_EQ_INT(many[deep - 1].len, 2);
    /* 100000 '[' unclosed: the depth limit, or a syntax error at the end
     * when the limit allows it. */
    t_guard g = t_guard_copy(big, deep);
    CHECK_EQ_INT(wisp_json_parse(&doc, g.data, deep, many, (uint32_t)deep,
                                 NULL),
                 WISP_EJSON_DEPTH);
    CHECK_EQ_INT(wisp_json_parse(&doc, g.data, deep, many, (uint32_t)deep,
                                 &lim),
                 WISP_EJSON_SYNTAX);
    CHECK_EQ_INT(doc.err_offset, deep);
    t_guard_free(&g);
    free(big);
    free(many);

    /* Tokens: exactly enough, one short. */
    static const char three[] = "[1,{\"a\":2}]"; /* 5 tokens */
    CHECK_EQ_INT(wisp_json_parse(&doc, three, 11, toks, 5, NULL), 5);
    CHECK_EQ_INT(wisp_json_parse(&doc, three, 11, toks, 4, NULL), -ENOBUFS);
    CHECK_EQ_INT(doc.ntoks, 0);
    CHECK_EQ_INT(wisp_json_parse(&doc, three, 11, NULL, 0, NULL), -ENOBUFS);

    /* Bytes: exactly max_bytes is fine, one more is -EMSGSIZE. */
    lim.max_depth = 0;
    lim.max_bytes = 11;
    CHECK_EQ_INT(wisp_json_parse(&doc, three, 11, toks, NTOK, &lim), 5);
    lim.max_bytes = 10;
    CHECK_EQ_INT(wisp_json_parse(&doc, three, 11, toks, NTOK, &lim),
                 -EMSGSIZE);

    /* Bad arguments. */
    CHECK_EQ_INT(wisp_json_parse(NULL, three, 11, toks, NTOK, NULL), -EINVAL);
    CHECK_EQ_INT(wisp_json_parse(&doc, NULL, 11, toks, NTOK, NULL), -EINVAL);
    CHECK_EQ_INT(wisp_json_parse(&doc, three, 11, NULL, 4, NULL), -EINVAL);
    CHECK_EQ_INT(wisp_json_parse(&doc, NULL, 0, toks, NTOK, NULL),
                 WISP_EJSON_SYNTAX);

    /* Huge numbers are grammar, not errors, until converted. */
    size_t hl = 5000;
    char *huge = malloc(hl);
    memset(huge, '9', hl);
    g = t_guard_copy(huge, hl);
    CHECK_EQ_INT(wisp_json_parse(&doc, g.data, hl, toks, NTOK, NULL), 1);
    double d;
    int64_t v;
    CHECK_EQ_INT(wisp_json_double(&doc, 0, &d), -ERANGE);
    CHECK_EQ_INT(wisp_json_int64(&doc, 0, &v), -ERANGE);
    t_guard_free(&g);
    huge[0] = '0';
    huge[1] = '.';
    g = t_guard_copy(huge, hl); /* 0.999...9 (4998 nines) rounds to 1 */
    CHECK_EQ_INT(wisp_json_parse(&doc, g.data, hl, toks, NTOK, NULL), 1);
    CHECK_EQ_INT(wisp_json_double(&doc, 0, &d), 0);
    CHECK(d == 1.0);
    t_guard_free(&g);
    free(huge);

    CHECK(strcmp(wisp_strerror(WISP_EJSON_SYNTAX), "malformed JSON") == 0);
    CHECK(strcmp(wisp_strerror(WISP_EJSON_DEPTH), "JSON nested too deeply") ==
          0);
    CHECK(strcmp(wisp_strerror(WISP_EJSON_TYPE), "JSON value of another type") ==
          0);
}

/* -------------------------------------------------------------- writer */

static void check_written(wisp_json_writer_t *w, const char *want)
{
    char *out = NULL;
    size_t len = 0;
    int rc = wisp_json_finish(w, &out, &len);
    CHECK_MSG(rc == 0 && out && len == strlen(want) &&
                  memcmp(out, want, len) == 0 && out[len] == '\0',
              "finish %d: got \"%.*s\", want \"%s\"", rc, (int)len,
              out ? out : "", want);
    if (w->growable || (out && w->buf != out))
        free(out);
}

static void test_writer_basic(void)
{
    wisp_json_writer_t w;
    wisp_json_writer_init_dyn(&w);
    wisp_json_obj_begin(&w);
    wisp_json_kv_str(&w, "type", "hello");
    wisp_json_kv_int(&w, "n", -42);
    wisp_json_kv_bool(&w, "ok", 1);
    wisp_json_key(&w, "list");
    wisp_json_arr_begin(&w);
    wisp_json_uint_val(&w, UINT64_MAX);
    wisp_json_int_val(&w, INT64_MIN);
    wisp_json_null_val(&w);
    wisp_json_bool_val(&w, 0);
    wisp_json_str_val(&w, NULL);
    wisp_json_raw_val(&w, "{\"r\":1}", 7);
    wisp_json_arr_begin(&w);
    wisp_json_arr_end(&w);
    wisp_json_obj_begin(&w);
    wisp_json_obj_end(&w);
    wisp_json_arr_end(&w);
    wisp_json_key_n(&w, "k\0z", 3);
    wisp_json_str_val_n(&w, "a\0b", 3);
    wisp_json_obj_end(&w);
    check_written(&w,
                  "{\"type\":\"hello\",\"n\":-42,\"ok\":true,\"list\":["
                  "18446744073709551615,-9223372036854775808,null,false,"
                  "null,{\"r\":1},[],{}],\"k\\u0000z\":\"a\\u0000b\"}");
    CHECK(w.buf == NULL && w.len == 0); /* handed over, writer reset */

    /* Escapes: the short forms, \u00XX for the other controls, "/" and
     * DEL and valid UTF-8 left alone. */
    wisp_json_writer_init_dyn(&w);
    wisp_json_str_val(&w, "\"\\/\b\f\n\r\t\x01\x1f\x7f\xc3\xa9\xf0\x9f\x98\x80");
    check_written(&w, "\"\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\xc3\xa9"
                      "\xf0\x9f\x98\x80\"");

    /* Scalars at the top level. */
    wisp_json_writer_init_dyn(&w);
    wisp_json_int_val(&w, 0);
    check_written(&w, "0");
}

typedef struct drow {
    double v;
    const char *out;
} drow;

static const drow drows[] = {
    {0.0, "0"},
    {-0.0, "-0"},
    {1.0, "1"},
    {-2.5, "-2.5"},
    {0.1, "0.1"},
    {1.0 / 3, "0.3333333333333333"},
    {100, "100"},
    {1e20, "100000000000000000000"},
    {1e21, "1e21"},
    {0.000001, "0.000001"},
    {1e-7, "1e-7"},
    {123456789012345678.0, "123456789012345680"},
    {5e-324, "5e-324"},
    {DBL_MAX, "1.7976931348623157e308"},
    {DBL_MIN, "2.2250738585072014e-308"},
    {9007199254740993.0, "9007199254740992"},
    {0.30000000000000004, "0.30000000000000004"},
};

static void test_writer_doubles(void)
{
    for (size_t i = 0; i < sizeof(drows) / sizeof(drows[0]); i++) {
        wisp_json_writer_t w;
        wisp_json_writer_init_dyn(&w);
        wisp_json_double_val(&w, drows[i].v);
        check_written(&w, drows[i].out);
    }
    /* Random bit patterns: write, parse, same bits. */
    char buf[64];
    int bad = 0;
    for (int k = 0; k < 20000; k++) {
        uint64_t bits = next_rand();
        double v;
        memcpy(&v, &bits, sizeof(v));
        if (!isfinite(v))
            continue;
        wisp_json_writer_t w;
        wisp_json_writer_init(&w, buf, sizeof(buf));
        wisp_json_double_val(&w, v);
        size_t len;
        char *out;
        wisp_json_doc_t doc;
        double back;
        if (wisp_json_finish(&w, &out, &len) != 0 ||
            wisp_json_parse(&doc, out, len, toks, NTOK, NULL) != 1 ||
            wisp_json_double(&doc, 0, &back) != 0 ||
            memcmp(&back, &v, sizeof(v)) != 0 || len > 25) {
            bad++;
            fprintf(stderr, "double %a written as %.*s\n", v, (int)len, buf);
        }
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_writer_errors(void)
{
    wisp_json_writer_t w;
    char buf[16];
    char *out;

    /* A value where a key is due, a key outside an object, a key after a
     * key, an end that does not match, an end too many, nothing at all,
     * two top-level values, an unclosed container. */
    wisp_json_writer_init_dyn(&w);
    wisp_json_obj_begin(&w);
    wisp_json_int_val(&w, 1);
    CHECK_EQ_INT(wisp_json_finish(&w, &out, NULL), WISP_ESTATE);
    wisp_json_writer_free(&w);

    wisp_json_writer_init_dyn(&w);
    wisp_json_arr_begin(&w);
    wisp_json_key(&w, "a");
    CHECK_EQ_INT(w.err, WISP_ESTATE);
    wisp_json_writer_free(&w);

    wisp_json_writer_init_dyn(&w);
    wisp_json_key(&w, "a");
    CHECK_EQ_INT(w.err, WISP_ESTATE);
    wisp_json_writer_free(&w);

    wisp_json_writer_init_dyn(&w);
    wisp_json_obj_begin(&w);
    wisp_json_key(&w, "a");
    wisp_json_key(&w, "b");
    CHECK_EQ_INT(w.err, WISP_ESTATE);
    wisp_json_writer_free(&w);

    wisp_json_writer_init_dyn(&w);
    wisp_json_obj_begin(&w);
    wisp_json_key(&w, "a");
    wisp_json_obj_end(&w); /* a key without its value */
    CHECK_EQ_INT(w.err, WISP_ESTATE);
    wisp_json_writer_free(&w);

    wisp_json_writer_init_dyn(&w);
    wisp_json_arr_begin(&w);
    wisp_json_obj_end(&w);
    CHECK_EQ_INT(w.err, WISP_ESTATE);
    wisp_json_writer_free(&w);

    wisp_json_writer_init_dyn(&w);
    wisp_json_arr_begin(&w);
    wisp_json_arr_end(&w);
    wisp_json_arr_end(&w);
    CHECK_EQ_INT(wisp_json_finish(&w, &out, NULL), WISP_ESTATE);
    wisp_json_writer_free(&w);

    wisp_json_writer_init_dyn(&w);
    CHECK_EQ_INT(wisp_json_finish(&w, &out, NULL), WISP_ESTATE);

    wisp_json_writer_init_dyn(&w);
    wisp_json_int_val(&w, 1);
    wisp_json_int_val(&w, 2);
    CHECK_EQ_INT(wisp_json_finish(&w, &out, NULL), WISP_ESTATE);
    wisp_json_writer_free(&w);

    wisp_json_writer_init_dyn(&w);
    wisp_json_arr_begin(&w);
    CHECK_EQ_INT(wisp_json_finish(&w, &out, NULL), WISP_ESTATE);
    wisp_json_writer_free(&w);

    /* Depth: exactly the maximum, then one more. */
    wisp_json_writer_init_dyn(&w);
    for (int d = 0; d < WISP_JSON_WRITER_MAX_DEPTH; d++)
        wisp_json_arr_begin(&w);
    CHECK_EQ_INT(w.err, 0);
    for (int d = 0; d < WISP_JSON_WRITER_MAX_DEPTH; d++)
        wisp_json_arr_end(&w);
    size_t len;
    CHECK_EQ_INT(wisp_json_finish(&w, &out, &len), 0);
    CHECK_EQ_INT(len, 2 * WISP_JSON_WRITER_MAX_DEPTH);
    free(out);
    for (int d = 0; d <= WISP_JSON_WRITER_MAX_DEPTH; d++)
        wisp_json_arr_begin(&w);
    CHECK_EQ_INT(w.err, WISP_EJSON_DEPTH);
    wisp_json_int_val(&w, 1); /* sticky: nothing more happens */
    CHECK_EQ_INT(w.err, WISP_EJSON_DEPTH);
    CHECK_EQ_INT(wisp_json_finish(&w, &out, NULL), WISP_EJSON_DEPTH);
    wisp_json_writer_free(&w);

    /* NaN, infinities, invalid UTF-8 (in a value and in a key). */
    const double nonfinite[] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        wisp_json_writer_init_dyn(&w);
        wisp_json_double_val(&w, nonfinite[k]);
        CHECK_EQ_INT(wisp_json_finish(&w, &out, NULL), -EINVAL);
        wisp_json_writer_free(&w);
    }
    const char *bad_utf8[] = {"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                              "a\xe2\x82", "\x80", "\xff"};
    for (int k = 0; k < 6; k++) {
        wisp_json_writer_init_dyn(&w);
        wisp_json_str_val(&w, bad_utf8[k]);
        CHECK_MSG(wisp_json_finish(&w, &out, NULL) == -EINVAL, "utf8 %d", k);
        wisp_json_writer_free(&w);
        wisp_json_writer_init_dyn(&w);
        wisp_json_obj_begin(&w);
        wisp_json_key(&w, bad_utf8[k]);
        CHECK_EQ_INT(w.err, -EINVAL);
        wisp_json_writer_free(&w);
    }

    /* A fixed buffer: exactly enough (text and NUL), then one short
     * for the NUL, then short inside the text. */
    static const char want[] = "{\"abc\":12345}"; /* 13 bytes */
    for (size_t cap = 0; cap <= 15; cap++) {
        wisp_json_writer_init(&w, buf, cap);
        wisp_json_obj_begin(&w);
        wisp_json_kv_int(&w, "abc", 12345);
        wisp_json_obj_end(&w);
        int rc = wisp_json_finish(&w, &out, &len);
        if (cap >= 14) {
            CHECK_EQ_INT(rc, 0);
            CHECK(out == buf && len == 13 && strcmp(buf, want) == 0);
        } else {
            CHECK_MSG(rc == -ENOBUFS, "cap %zu: %d", cap, rc);
        }
    }
    /* Reset clears the error and reuses the buffer. */
    wisp_json_writer_init(&w, buf, 4);
    wisp_json_str_val(&w, "too long");
    CHECK_EQ_INT(w.err, -ENOBUFS);
    wisp_json_writer_reset(&w);
    wisp_json_int_val(&w, 7);
    CHECK_EQ_INT(wisp_json_finish(&w, &out, &len), 0);
    CHECK(out == buf && len == 1 && buf[0] == '7' && buf[1] == '\0');
}

/* Write a document, parse it back, compare the values. */
static void test_round_trip(void)
{
    wisp_json_writer_t w;
    char *out;
    size_t len;
    wisp_json_writer_init_dyn(&w);
    wisp_json_obj_begin(&w);
    wisp_json_kv_str(&w, "s", "line\nquote\" \xe2\x82\xac \xf0\x9f\x98\x80");
    wisp_json_kv_int(&w, "min", INT64_MIN);
    wisp_json_key(&w, "umax");
    wisp_json_uint_val(&w, UINT64_MAX);
    wisp_json_key(&w, "d");
    wisp_json_double_val(&w, 6.02214076e23);
    wisp_json_key(&w, "nested");
    wisp_json_arr_begin(&w);
    for (int k = 0; k < 10; k++) {
        wisp_json_obj_begin(&w);
        wisp_json_kv_int(&w, "k", k);
        wisp_json_obj_end(&w);
    }
    wisp_json_arr_end(&w);
    wisp_json_key_n(&w, "nul\0key", 7);
    wisp_json_bool_val(&w, 1);
    wisp_json_obj_end(&w);
    CHECK_EQ_INT(wisp_json_finish(&w, &out, &len), 0);

    wisp_json_doc_t doc;
    char s[64];
    int64_t v;
    uint64_t u;
    double d;
    CHECK(wisp_json_parse(&doc, out, len, toks, NTOK, NULL) > 0);
    CHECK_EQ_INT(wisp_json_str(&doc, wisp_json_get(&doc, 0, "s"), s,
                               sizeof(s)),
                 20);
    CHECK(strcmp(s, "line\nquote\" \xe2\x82\xac \xf0\x9f\x98\x80") == 0);
    CHECK_EQ_INT(wisp_json_int64(&doc, wisp_json_get(&doc, 0, "min"), &v), 0);
    CHECK(v == INT64_MIN);
    CHECK_EQ_INT(wisp_json_uint64(&doc, wisp_json_get(&doc, 0, "umax"), &u),
                 0);
    CHECK(u == UINT64_MAX);
    CHECK_EQ_INT(wisp_json_double(&doc, wisp_json_get(&doc, 0, "d"), &d), 0);
    CHECK(d == 6.02214076e23);
    int nested = wisp_json_get(&doc, 0, "nested");
    CHECK_EQ_INT(wisp_json_count(&doc, nested), 10);
    CHECK_EQ_INT(wisp_json_int64(&doc,
                                 wisp_json_get(&doc,
                                               wisp_json_at(&doc, nested, 9),
                                               "k"),
                                 &v),
                 0);
    CHECK_EQ_INT(v, 9);
    int key = wisp_json_next(&doc, nested - 1);
    CHECK_EQ_INT(wisp_json_str(&doc, key, s, sizeof(s)), 7);
    CHECK(memcmp(s, "nul\0key", 7) == 0);
    CHECK_EQ_INT(wisp_json_type(&doc, key + 1), WISP_JSON_TRUE);
    free(out);
}

/* ------------------------------------------------------ JSONTestSuite */

/* The i_ files ("implementation defined") and what wisp does with each:
 * 1 accepted, 0 refused. Numbers are grammar first (accepted; the
 * conversion reports -ERANGE); everything that is not UTF-8 or that
 * escapes a lone surrogate is refused; 500 nested arrays exceed the
 * default depth of 64. */
static const struct {
    const char *file;
    int accept;
} idecisions[] = {
    {"i_number_double_huge_neg_exp.json", 1},
    {"i_number_huge_exp.json", 1},
    {"i_number_neg_int_huge_exp.json", 1},
    {"i_number_pos_double_huge_exp.json", 1},
    {"i_number_real_neg_overflow.json", 1},
    {"i_number_real_pos_overflow.json", 1},
    {"i_number_real_underflow.json", 1},
    {"i_number_too_big_neg_int.json", 1},
    {"i_number_too_big_pos_int.json", 1},
    {"i_number_very_big_negative_int.json", 1},
    {"i_object_key_lone_2nd_surrogate.json", 0},
    {"i_string_1st_surrogate_but_2nd_missing.json", 0},
    {"i_string_1st_valid_surrogate_2nd_invalid.json", 0},
    {"i_string_UTF-16LE_with_BOM.json", 0},
    {"i_string_UTF-8_invalid_sequence.json", 0},
    {"i_string_UTF8_surrogate_U+D800.json", 0},
    {"i_string_incomplete_surrogate_and_escape_valid.json", 0},
    {"i_string_incomplete_surrogate_pair.json", 0},
    {"i_string_incomplete_surrogates_escape_valid.json", 0},
    {"i_string_invalid_lonely_surrogate.json", 0},
    {"i_string_invalid_surrogate.json", 0},
    {"i_string_invalid_utf-8.json", 0},
    {"i_string_inverted_surrogates_U+1D11E.json", 0},
    {"i_string_iso_latin_1.json", 0},
    {"i_string_lone_second_surrogate.json", 0},
    {"i_string_lone_utf8_continuation_byte.json", 0},
    {"i_string_not_in_unicode_range.json", 0},
    {"i_string_overlong_sequence_2_bytes.json", 0},
    {"i_string_overlong_sequence_6_bytes.json", 0},
    {"i_string_overlong_sequence_6_bytes_null.json", 0},
    {"i_string_truncated-utf-8.json", 0},
    {"i_string_utf16BE_no_BOM.json", 0},
    {"i_string_utf16LE_no_BOM.json", 0},
    {"i_structure_500_nested_arrays.json", 0},
    {"i_structure_UTF-8_BOM_empty_object.json", 0},
};

static void test_suite(const char *dir)
{
    static wisp_json_tok_t stoks[1 << 16];
    char path[4096];
    snprintf(path, sizeof(path), "%s/test_parsing", dir);
    DIR *d = opendir(path);
    CHECK_MSG(d != NULL, "cannot open %s", path);
    if (!d)
        return;
    int ny = 0, nn = 0, ni = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *name = e->d_name;
        if (strlen(name) < 7 || strcmp(name + strlen(name) - 5, ".json") != 0)
            continue;
        char fp[4400];
        snprintf(fp, sizeof(fp), "%s/%s", path, name);
        FILE *f = fopen(fp, "rb");
        CHECK_MSG(f != NULL, "open %s", fp);
        if (!f)
            continue;
        static char data[1 << 20];
        size_t len = fread(data, 1, sizeof(data), f);
        fclose(f);
        t_guard g = t_guard_copy(data, len);
        wisp_json_doc_t doc;
        int rc = wisp_json_parse(&doc, g.data, len, stoks,
                                 sizeof(stoks) / sizeof(stoks[0]), NULL);
        t_guard_free(&g);
        if (name[0] == 'y') {
            ny++;
            CHECK_MSG(rc > 0, "%s must be accepted, got %d", name, rc);
        } else if (name[0] == 'n') {
            nn++;
            CHECK_MSG(rc < 0, "%s must be refused", name);
        } else if (name[0] == 'i') {
            ni++;
            int found = 0;
            for (size_t k = 0; k < sizeof(idecisions) / sizeof(*idecisions);
                 k++)
                if (strcmp(idecisions[k].file, name) == 0) {
                    found = 1;
                    CHECK_MSG((rc > 0) == idecisions[k].accept,
                              "%s: got %d, decided %s", name, rc,
                              idecisions[k].accept ? "accept" : "refuse");
                }
            CHECK_MSG(found, "%s has no decision in the table", name);
        }
    }
    closedir(d);
    /* The suite as vendored: 95 y_, 188 n_, 35 i_. */
    CHECK_EQ_INT(ny, 95);
    CHECK_EQ_INT(nn, 188);
    CHECK_EQ_INT(ni, 35);
}

int main(int argc, char **argv)
{
    test_parse_rows();
    test_layout();
    for (size_t i = 0; i < sizeof(nrows) / sizeof(nrows[0]); i++)
        check_number(&nrows[i]);
    test_double_random();
    test_strings();
    test_navigation();
    test_limits();
    test_writer_basic();
    test_writer_doubles();
    test_writer_errors();
    test_round_trip();
    if (argc > 1)
        test_suite(argv[1]);
    else
        CHECK_MSG(0, "usage: %s JSONTestSuite-directory", argv[0]);
    /* Numbers and the writer do not depend on the locale: run them again
     * under one with a decimal comma when the system has one. */
    if (setlocale(LC_NUMERIC, "de_DE.UTF-8") ||
        setlocale(LC_NUMERIC, "fr_FR.UTF-8")) {
        if (localeconv()->decimal_point[0] == ',') {
            for (size_t i = 0; i < sizeof(nrows) / sizeof(nrows[0]); i++)
                check_number(&nrows[i]);
            test_writer_doubles();
        }
        setlocale(LC_NUMERIC, "C");
    }
    return t_done("util_json");
}
