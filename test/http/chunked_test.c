/* Tests of src/http/chunked.c, the in-place chunked-body decoder.
 *
 * Every row is fed whole (in a heap buffer of exactly its size, and
 * ending right before a PROT_NONE page), byte by byte (each call a fresh
 * one-byte buffer before a PROT_NONE page, collecting the data each call
 * decodes), and in two pieces cut at every offset. Each feed must give
 * the row's result, the same decoded data, and the same bytes left over
 * after the body. */
#include "http/chunked.h"

#include "../test.h"
#include "wisp/common.h"

#define IN(s) .in = (s), .in_len = sizeof(s) - 1
#define MAX_TRAILER 64
#define MT_0 UINT32_MAX

typedef struct row {
    const char *name; /* a line of the spec */
    const char *rfc;
    const char *in;
    size_t in_len;
    ssize_t want;     /* bytes left after the body, -EAGAIN or WISP_E* */
    const char *out;  /* decoded data (unless an error); NULL: "" */
    const char *left; /* the bytes left after the body; NULL: "" */
    uint32_t mt;      /* max_trailer; 0: MAX_TRAILER, MT_0: 0 */
} row;

static const row rows[] = {
    /* Chunks (RFC 9112 §7.1). */
    {"single chunk", "RFC 9112 §7.1", IN("5\r\nhello\r\n0\r\n\r\n"), 0,
     "hello"},
    {"no chunks: only the last chunk", "RFC 9112 §7.1", IN("0\r\n\r\n"), 0},
    {"several chunks are joined", "RFC 9112 §7.1",
     IN("5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"), 0,
     "hello world"},
    {"chunk data may hold CR and LF", "RFC 9112 §7.1",
     IN("6\r\n\r\nab\r\n\r\n0\r\n\r\n"), 0, "\r\nab\r\n"},
    {"uppercase hex size", "RFC 9112 §7.1",
     IN("A\r\n0123456789\r\n0\r\n\r\n"), 0, "0123456789"},
    {"lowercase hex size", "RFC 9112 §7.1",
     IN("a\r\n0123456789\r\n0\r\n\r\n"), 0, "0123456789"},
    {"multi-digit size", "RFC 9112 §7.1",
     IN("1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n"), 0,
     "abcdefghijklmnopqrstuvwxyz"},
    {"leading zeros in the size are fine", "RFC 9112 §7.1",
     IN("0005\r\nhello\r\n000\r\n\r\n"), 0, "hello"},
    {"16 size digits are fine", "RFC 9112 §7.1",
     IN("0000000000000005\r\nhello\r\n0\r\n\r\n"), 0, "hello"},
    {"17 size digits are rejected", "RFC 9112 §7.1",
     IN("00000000000000005\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"size of 2^63-1 is accepted", "RFC 9112 §7.1",
     IN("7fffffffffffffff\r\nabc"), -EAGAIN, "abc"},
    {"size of 2^63 overflows", "RFC 9112 §7.1",
     IN("8000000000000000\r\nabc"), WISP_EPARSE},
    {"size of 2^64-1 overflows", "RFC 9112 §7.1",
     IN("ffffffffffffffff\r\nabc"), WISP_EPARSE},
    {"size of 2^64 overflows", "RFC 9112 §7.1",
     IN("10000000000000000\r\nabc"), WISP_EPARSE},
    {"empty size is rejected", "RFC 9112 §7.1", IN("\r\nhello\r\n"),
     WISP_EPARSE},
    {"non-hex size is rejected", "RFC 9112 §7.1", IN("g\r\n"), WISP_EPARSE},
    {"negative size is rejected", "RFC 9112 §7.1", IN("-1\r\n"),
     WISP_EPARSE},
    {"0x prefix is rejected", "RFC 9112 §7.1", IN("0x5\r\nhello\r\n"),
     WISP_EPARSE},
    {"size then bare LF is rejected", "RFC 9112 §7.1",
     IN("5\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"size then bare CR is rejected", "RFC 9112 §7.1",
     IN("5\rhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"data without its CRLF is rejected", "RFC 9112 §7.1",
     IN("5\r\nhelloX\r\n0\r\n\r\n"), WISP_EPARSE},
    {"data then bare LF is rejected", "RFC 9112 §7.1",
     IN("5\r\nhello\n0\r\n\r\n"), WISP_EPARSE},
    {"data then CR without LF is rejected", "RFC 9112 §7.1",
     IN("5\r\nhello\rX0\r\n\r\n"), WISP_EPARSE},
    {"chunk longer than its size is rejected", "RFC 9112 §7.1",
     IN("3\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"incomplete chunk data is decoded so far", "RFC 9112 §7.1",
     IN("5\r\nhel"), -EAGAIN, "hel"},
    {"no input is incomplete", "RFC 9112 §7.1", IN(""), -EAGAIN},
    {"missing last chunk is incomplete", "RFC 9112 §7.1",
     IN("5\r\nhello\r\n"), -EAGAIN, "hello"},
    {"missing final CRLF is incomplete", "RFC 9112 §7.1",
     IN("5\r\nhello\r\n0\r\n"), -EAGAIN, "hello"},
    {"final CR without LF is incomplete", "RFC 9112 §7.1",
     IN("0\r\n\r"), -EAGAIN},
    {"final CR then another byte is rejected", "RFC 9112 §7.1",
     IN("0\r\n\rX"), WISP_EPARSE},
    {"final bare LF is rejected", "RFC 9112 §7.1", IN("0\r\n\n"),
     WISP_EPARSE},
    {"bytes after the body are left for the next request",
     "RFC 9112 §9.3.2",
     IN("3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n"), 16, "abc",
     "GET / HTTP/1.1\r\n"},
    {"extension, trailer and leftover in one body (fuzz)",
     "RFC 9112 §7.1",
     IN("5;ext=\"v\"\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: v\r\n\r\nGET"),
     3, "hello0123456789", "GET"},
    {"a whole pipelined request is left over", "RFC 9112 §9.3.2",
     IN("1\r\nx\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 27, "x",
     "GET / HTTP/1.1\r\nHost: a\r\n\r\n"},

    /* Extensions (RFC 9112 §7.1.1). */
    {"extensions are skipped", "RFC 9112 §7.1.1",
     IN("5;name=value\r\nhello\r\n0;last\r\n\r\n"), 0, "hello"},
    {"extension with a quoted value is skipped", "RFC 9112 §7.1.1",
     IN("5;a=\"b;c\\\"d\";e\r\nhello\r\n0\r\n\r\n"), 0, "hello"},
    {"BWS before ';' is allowed", "RFC 9112 §7.1.1",
     IN("5 \t;a = b\r\nhello\r\n0\r\n\r\n"), 0, "hello"},
    {"whitespace after the size without ';' is rejected",
     "RFC 9112 §7.1.1", IN("5 \r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"junk after the size is rejected", "RFC 9112 §7.1.1",
     IN("5 x\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"hex digit after BWS is rejected", "RFC 9112 §7.1.1",
     IN("5 5\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    /* chunk-ext grammar (conformance audit: before, any field-value
     * bytes up to CR were accepted, so the rows marked "was accepted"
     * passed). */
    {"extension list with token, quoted and bare members",
     "RFC 9112 §7.1.1",
     IN("5;a=b;c=\"d\" ; e ;f= \"\"\r\nhello\r\n0;z=\"\xc3\xa9\\\"\"\r\n\r\n"),
     0, "hello"},
    {"empty extension name is rejected (was accepted)", "RFC 9112 §7.1.1",
     IN("5;\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"extension without a name is rejected (was accepted)",
     "RFC 9112 §7.1.1", IN("5;=v\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"two names without ';' are rejected (was accepted)", "RFC 9112 §7.1.1",
     IN("5;a b\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"whitespace after a name before CRLF is rejected (was accepted)",
     "RFC 9112 §7.1.1", IN("5;a \r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"'=' without a value is rejected (was accepted)", "RFC 9112 §7.1.1",
     IN("5;a=\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"two values are rejected (was accepted)", "RFC 9112 §7.1.1",
     IN("5;a=b c\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"'=' inside a token value is rejected (was accepted)",
     "RFC 9112 §7.1.1", IN("5;a=b=c\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"unterminated quoted value is rejected (was accepted)",
     "RFC 9110 §5.6.4", IN("5;a=\"b\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"bytes after a closing quote are rejected (was accepted)",
     "RFC 9110 §5.6.4", IN("5;a=\"b\"c\r\nhello\r\n0\r\n\r\n"),
     WISP_EPARSE},
    {"a CTL in a quoted-pair is rejected", "RFC 9110 §5.6.4",
     IN("5;a=\"\\\x01\"\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"obs-text in an extension name is rejected (was accepted)",
     "RFC 9110 §5.6.2", IN("5;\xc3\xa9\r\nhello\r\n0\r\n\r\n"),
     WISP_EPARSE},
    {"a '\"' in a token value is rejected (was accepted)", "RFC 9110 §5.6.2",
     IN("5;a=b\"\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"CTL in an extension is rejected", "RFC 9110 §5.5",
     IN("5;a\x01\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"NUL in an extension is rejected", "RFC 9110 §5.5",
     IN("5;a\0\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"bare LF in an extension is rejected", "RFC 9112 §7.1.1",
     IN("5;a\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"bare CR in an extension is rejected", "RFC 9112 §7.1.1",
     IN("5;a\rb\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE},
    {"extension of exactly max_trailer bytes is accepted",
     "RFC 9112 §7.1.1", IN("5;abcdefg\r\nhello\r\n0\r\n\r\n"), 0, "hello",
     .mt = 8},
    {"extension over max_trailer bytes is rejected", "RFC 9112 §7.1.1",
     IN("5;abcdefgh\r\nhello\r\n0\r\n\r\n"), WISP_EPARSE, .mt = 8},
    {"the extension limit applies to each chunk line", "RFC 9112 §7.1.1",
     IN("1;abcdefg\r\na\r\n1;abcdefg\r\nb\r\n0;abcdefg\r\n\r\n"), 0, "ab",
     .mt = 8},

    /* Trailer fields (RFC 9112 §7.1.2). */
    {"trailer fields are checked and dropped", "RFC 9112 §7.1.2",
     IN("5\r\nhello\r\n0\r\nX-Sum: abc\r\nY:1\r\n\r\n"), 0, "hello"},
    {"trailer with an empty value is fine", "RFC 9112 §7.1.2",
     IN("0\r\nX:\r\n\r\n"), 0},
    {"trailer values may hold HTAB and obs-text", "RFC 9110 §5.5",
     IN("0\r\nX: a\tb\xc3\xa9\r\n\r\n"), 0},
    {"trailer and leftover bytes", "RFC 9112 §7.1.2",
     IN("0\r\nX: 1\r\n\r\nNEXT"), 4, "", "NEXT"},
    {"obs-fold in a trailer is rejected", "RFC 9112 §5.2",
     IN("0\r\nX: a\r\n b\r\n\r\n"), WISP_EPARSE},
    {"trailer line without a colon is rejected", "RFC 9112 §5",
     IN("0\r\nX\r\n\r\n"), WISP_EPARSE},
    {"space before the colon in a trailer is rejected", "RFC 9112 §5.1",
     IN("0\r\nX : a\r\n\r\n"), WISP_EPARSE},
    {"empty trailer name is rejected", "RFC 9110 §5.1",
     IN("0\r\n: a\r\n\r\n"), WISP_EPARSE},
    {"CTL in a trailer value is rejected", "RFC 9110 §5.5",
     IN("0\r\nX: a\x01\r\n\r\n"), WISP_EPARSE},
    {"NUL in a trailer name is rejected", "RFC 9110 §5.1",
     IN("0\r\nX\0: a\r\n\r\n"), WISP_EPARSE},
    {"bare LF in a trailer is rejected", "RFC 9112 §2.2",
     IN("0\r\nX: a\n\r\n"), WISP_EPARSE},
    {"bare CR in a trailer is rejected", "RFC 9112 §2.2",
     IN("0\r\nX: a\rb\r\n\r\n"), WISP_EPARSE},
    {"trailer section of exactly max_trailer bytes is accepted",
     "RFC 9112 §7.1.2", IN("0\r\nAB: 123\r\n\r\n"), 0, .mt = 9},
    {"trailer section over max_trailer bytes is rejected",
     "RFC 9112 §7.1.2", IN("0\r\nAB: 1234\r\n\r\n"), WISP_EPARSE, .mt = 9},
    {"max_trailer 0 still admits a body without trailers",
     "RFC 9112 §7.1.2", IN("2\r\nhi\r\n0\r\n\r\n"), 0, "hi", .mt = MT_0},
};

static int same(const char *p, size_t n, const char *want)
{
    if (!want)
        want = "";
    return n == strlen(want) && memcmp(p, want, n) == 0;
}

static void grow(char **p, size_t *n, const void *add, size_t len)
{
    *p = realloc(*p, *n + len + 1);
    if (len)
        memcpy(*p + *n, add, len);
    *n += len;
}

/* Feed r->in as pieces: `first` bytes, then `step` bytes at a time, each
 * piece in a fresh buffer ending right before an unreadable page. Checks
 * the result, the decoded data and the leftover bytes. */
static void feed(const row *r, const char *mode, size_t first, size_t step,
                 uint32_t mt)
{
    wisp__chunked d;
    char *out = NULL, *left = NULL;
    size_t out_n = 0, left_n = 0, off = 0, piece = first;
    ssize_t got = -EAGAIN;

    wisp__chunked_init(&d, mt);
    do {
        if (piece > r->in_len - off)
            piece = r->in_len - off;
        t_guard g = t_guard_copy(r->in + off, piece);
        size_t len = piece;
        got = wisp__chunked_decode(&d, g.data, &len);
        off += piece;
        CHECK_MSG(len <= piece, "%s [%s]: len %zu > %zu", r->name, mode,
                  len, piece);
        grow(&out, &out_n, g.data, len);
        if (got >= 0) {
            CHECK_MSG((size_t)got <= piece - len,
                      "%s [%s]: %zd left of %zu", r->name, mode, got,
                      piece);
            grow(&left, &left_n, g.data + len, (size_t)got);
            grow(&left, &left_n, r->in + off, r->in_len - off);
        }
        t_guard_free(&g);
        piece = step;
    } while (got == -EAGAIN && off < r->in_len);

    /* A piece reports what was left of itself; the row counts what was
     * left of the whole input. */
    if (got >= 0)
        got = (ssize_t)left_n;
    CHECK_MSG(got == r->want, "%s [%s]: got %zd, want %zd", r->name, mode,
              got, r->want);
    if (got == r->want && got != WISP_EPARSE) {
        CHECK_MSG(same(out, out_n, r->out), "%s [%s]: data \"%.*s\"",
                  r->name, mode, (int)out_n, out ? out : "");
    }
    if (got == r->want && got >= 0) {
        CHECK_MSG(same(left, left_n, r->left), "%s [%s]: left \"%.*s\"",
                  r->name, mode, (int)left_n, left ? left : "");
        CHECK_MSG(d.state == WISP__CH_DONE, "%s [%s]: state %d", r->name,
                  mode, (int)d.state);
    }
    free(out);
    free(left);
}

static void run_row(const row *r)
{
    uint32_t mt = r->mt == MT_0 ? 0 : r->mt ? r->mt : MAX_TRAILER;

    /* Whole, in a heap buffer of exactly the input's size. */
    wisp__chunked d;
    wisp__chunked_init(&d, mt);
    char *heap = malloc(r->in_len ? r->in_len : 1);
    memcpy(heap, r->in, r->in_len);
    size_t len = r->in_len;
    ssize_t got = wisp__chunked_decode(&d, heap, &len);
    CHECK_MSG(got == r->want, "%s [heap]: got %zd, want %zd", r->name, got,
              r->want);
    if (got == r->want && got != WISP_EPARSE)
        CHECK_MSG(same(heap, len, r->out), "%s [heap]: data \"%.*s\"",
                  r->name, (int)len, heap);
    if (got == r->want && got >= 0)
        CHECK_MSG(same(heap + len, (size_t)got, r->left),
                  "%s [heap]: left \"%.*s\"", r->name, (int)got, heap + len);
    free(heap);

    feed(r, "whole", r->in_len, r->in_len, mt);
    feed(r, "bytes", 1, 1, mt);
    for (size_t k = 1; k < r->in_len; k++) {
        char mode[32];
        snprintf(mode, sizeof mode, "split at %zu", k);
        feed(r, mode, k, r->in_len, mt);
    }
}

/* A chunk bigger than any piece of the split feeds, and a second call
 * after the body ended, which leaves all its input. */
static void run_misc(void)
{
    static char in[3100], want[3000];
    memset(want, 'z', sizeof want);
    size_t n = (size_t)sprintf(in, "%zx\r\n", sizeof want);
    memcpy(in + n, want, sizeof want);
    n += sizeof want;
    n += (size_t)sprintf(in + n, "\r\n0\r\n\r\n");

    char *out = malloc(sizeof want + 1);
    memcpy(out, want, sizeof want);
    out[sizeof want] = '\0';
    row r = {"3000-byte chunk", "RFC 9112 §7.1", in, n, 0, out, NULL, 0};
    run_row(&r);
    free(out);

    wisp__chunked d;
    char buf[] = "0\r\n\r\nab";
    size_t len = 7;
    wisp__chunked_init(&d, 0);
    CHECK_EQ_INT(wisp__chunked_decode(&d, buf, &len), 2);
    CHECK_EQ_INT(len, 0);
    CHECK(memcmp(buf, "ab", 2) == 0);
    char more[] = "cd";
    len = 2;
    CHECK_EQ_INT(wisp__chunked_decode(&d, more, &len), 2);
    CHECK_EQ_INT(len, 0);
    CHECK(memcmp(more, "cd", 2) == 0);
}

int main(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        run_row(&rows[i]);
    run_misc();
    return t_done("chunked_test");
}
