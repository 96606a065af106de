/* Tests of src/http/form.c: iterating over x-www-form-urlencoded pairs,
 * percent-decoding, and looking a key up. Every input is placed to end
 * right before a PROT_NONE page, so that a read past its end faults. */
#include "../test.h"
#include "wisp/form.h"

/* ------------------------------------------------------------ iteration */

typedef struct irow {
    const char *name; /* a line of the spec */
    const char *in;
    const char *pairs; /* raw pairs as "key=value;" each */
} irow;

static const irow irows[] = {
    {"empty input has no pairs", "", ""},
    {"one pair", "a=1", "a=1;"},
    {"pairs are separated by &", "a=1&b=2&c=3", "a=1;b=2;c=3;"},
    {"a key without = has an empty value", "flag&a=1", "flag=;a=1;"},
    {"a key with = and nothing after has an empty value", "a=&b=", "a=;b=;"},
    {"empty pairs are skipped", "&&a=1&&&b=2&", "a=1;b=2;"},
    {"an empty key is a pair", "=v&=", "=v;=;"},
    {"only the first = splits", "a=b=c", "a=b=c;"},
    {"; is not a separator", "a=1;b=2", "a=1;b=2;"},
    {"pairs stay encoded", "a%20b=c+d%26", "a%20b=c+d%26;"},
    {"only & separators", "&&&", ""},
};

static void test_iter(void)
{
    for (size_t i = 0; i < sizeof irows / sizeof irows[0]; i++) {
        const irow *r = &irows[i];
        size_t n = strlen(r->in);
        t_guard g = t_guard_copy(r->in, n);
        wisp_str_t src = {g.data, n}, k, v;
        wisp_form_iter_t it;
        wisp_form_iter_init(&it, src);
        char got[256] = "";
        size_t gl = 0;
        while (wisp_form_next(&it, &k, &v)) {
            CHECK_MSG(k.ptr && v.ptr && k.ptr >= g.data &&
                          v.ptr + v.len <= g.data + n,
                      "%s: pair outside the input", r->name);
            gl += (size_t)snprintf(got + gl, sizeof got - gl, "%.*s=%.*s;",
                                   (int)k.len, k.ptr, (int)v.len, v.ptr);
        }
        CHECK_MSG(k.ptr == NULL && v.ptr == NULL && k.len == 0,
                  "%s: end not {NULL,0}", r->name);
        CHECK_MSG(strcmp(got, r->pairs) == 0, "%s: got \"%s\"", r->name,
                  got);
        /* Once at the end, it stays there. */
        CHECK(wisp_form_next(&it, NULL, NULL) == 0);
        t_guard_free(&g);
    }
    wisp_str_t none = {NULL, 0};
    wisp_form_iter_t it;
    wisp_form_iter_init(&it, none);
    CHECK(wisp_form_next(&it, NULL, NULL) == 0);
}

/* ------------------------------------------------------------- decoding */

typedef struct drow {
    const char *name;
    const char *in;
    ssize_t want;    /* decoded length or an error */
    const char *out; /* when want >= 0 */
} drow;

static const drow drows[] = {
    {"plain text is unchanged", "hello", 5, "hello"},
    {"empty stays empty", "", 0, ""},
    {"+ is a space", "a+b++", 5, "a b  "},
    {"%20 is a space", "a%20b", 3, "a b"},
    {"%2B is a plus sign", "1%2B1", 3, "1+1"},
    {"hex digits in either case", "%e4%B8%ad", 3, "\xe4\xb8\xad"},
    {"%25 gives a percent sign, not decoded twice", "%2541", 3, "%41"},
    {"every byte value but 0", "%01%7f%80%ff", 4, "\x01\x7f\x80\xff"},
    {"%26 and %3D are data", "a%26b%3Dc", 5, "a&b=c"},
    {"a % at the end is refused", "abc%", WISP_EPARSE, NULL},
    {"a % with one digit at the end is refused", "abc%4", WISP_EPARSE, NULL},
    {"a % with non-hex digits is refused", "%zz", WISP_EPARSE, NULL},
    {"a % with one non-hex digit is refused", "%4g", WISP_EPARSE, NULL},
    {"a %+ is refused", "%+1", WISP_EPARSE, NULL},
    {"%00 is refused", "a%00b", WISP_EPARSE, NULL},
    {"a lone % is refused", "%", WISP_EPARSE, NULL},
};

static void test_decode(void)
{
    for (size_t i = 0; i < sizeof drows / sizeof drows[0]; i++) {
        const drow *r = &drows[i];
        size_t n = strlen(r->in);
        t_guard g = t_guard_copy(r->in, n);
        wisp_str_t in = {g.data, n};
        char out[64];
        ssize_t got = wisp_form_decode(in, out, sizeof out);
        CHECK_MSG(got == r->want, "%s: got %zd, want %zd", r->name, got,
                  r->want);
        CHECK_MSG(wisp_form_decoded_len(in) == r->want, "%s: decoded_len",
                  r->name);
        if (r->want >= 0 && got == r->want) {
            CHECK_MSG(memcmp(out, r->out, (size_t)got) == 0 &&
                          out[got] == '\0',
                      "%s: got \"%.*s\"", r->name, (int)got, out);
            /* Exactly enough room (length + NUL) works; one byte less is
             * -ENOBUFS. */
            CHECK_EQ_INT(wisp_form_decode(in, out, (size_t)got + 1), got);
            CHECK_EQ_INT(wisp_form_decode(in, out, (size_t)got), -ENOBUFS);
            /* In place. */
            char buf[64];
            memcpy(buf, r->in, n);
            wisp_str_t self = {buf, n};
            if (n + 1 <= sizeof buf) {
                CHECK_EQ_INT(wisp_form_decode(self, buf, n + 1), got);
                CHECK(memcmp(buf, r->out, (size_t)got) == 0);
            }
        }
        t_guard_free(&g);
    }
    wisp_str_t in = {"abc", 3};
    CHECK_EQ_INT(wisp_form_decode(in, NULL, 4), -EINVAL);
    CHECK_EQ_INT(wisp_form_decode(in, NULL, 0), -ENOBUFS);
}

/* --------------------------------------------------------------- lookup */

typedef struct grow {
    const char *name;
    const char *src;
    const char *key;
    ssize_t want;
    const char *out;
} grow;

static const grow grows[] = {
    {"a key is found", "a=1&question=What+is+it%3F", "question", 11,
     "What is it?"},
    {"the first of repeated keys wins", "a=1&a=2", "a", 1, "1"},
    {"keys are compared decoded", "device%2Did=x&device-id=y", "device-id",
     1, "x"},
    {"a + in a key is a space", "my+key=v", "my key", 1, "v"},
    {"a key without = has an empty value", "flag", "flag", 0, ""},
    {"an absent key is -ENOENT", "a=1&b=2", "c", -ENOENT, NULL},
    {"a prefix of a key does not match", "abc=1", "ab", -ENOENT, NULL},
    {"a longer key does not match", "ab=1", "abc", -ENOENT, NULL},
    {"matching is case-sensitive", "Key=1", "key", -ENOENT, NULL},
    {"a key with a bad escape matches nothing", "k%zz=1&k=2", "k", 1, "2"},
    {"a bad escape in the value is refused", "k=%zz", "k", WISP_EPARSE,
     NULL},
    {"the empty key", "=v&a=1", "", 1, "v"},
    {"empty source", "", "a", -ENOENT, NULL},
};

static void test_get(void)
{
    for (size_t i = 0; i < sizeof grows / sizeof grows[0]; i++) {
        const grow *r = &grows[i];
        size_t n = strlen(r->src);
        t_guard g = t_guard_copy(r->src, n);
        wisp_str_t src = {g.data, n};
        char out[64];
        ssize_t got = wisp_form_get(src, r->key, out, sizeof out);
        CHECK_MSG(got == r->want, "%s: got %zd, want %zd", r->name, got,
                  r->want);
        if (r->want >= 0 && got == r->want)
            CHECK_MSG(strcmp(out, r->out) == 0, "%s: got \"%s\"", r->name,
                      out);
        t_guard_free(&g);
    }
    wisp_str_t src = {"a=12345", 7};
    char out[8];
    CHECK_EQ_INT(wisp_form_get(src, "a", out, 5), -ENOBUFS);
    CHECK_EQ_INT(wisp_form_get(src, NULL, out, 5), -EINVAL);
    CHECK_EQ_INT(wisp_form_get(src, "a", NULL, 5), -EINVAL);
}

/* Repeated keys: each value in order, the count, a bad escape in one
 * value does not hide the others, and an encoded key matches decoded. */
static void test_repeated(void)
{
    const char *q = "tag=a&x=1&tag=b%20c&t%61g=d&tag=%zz&tag";
    wisp_str_t src = {q, strlen(q)};
    char out[16];
    CHECK_EQ_INT(wisp_form_count(src, "tag"), 5);
    CHECK_EQ_INT(wisp_form_count(src, "x"), 1);
    CHECK_EQ_INT(wisp_form_count(src, "none"), 0);
    CHECK_EQ_INT(wisp_form_count(src, NULL), 0);
    CHECK_EQ_INT(wisp_form_get_nth(src, "tag", 0, out, sizeof out), 1);
    CHECK(strcmp(out, "a") == 0);
    CHECK_EQ_INT(wisp_form_get_nth(src, "tag", 1, out, sizeof out), 3);
    CHECK(strcmp(out, "b c") == 0);
    CHECK_EQ_INT(wisp_form_get_nth(src, "tag", 2, out, sizeof out), 1);
    CHECK(strcmp(out, "d") == 0);
    CHECK_EQ_INT(wisp_form_get_nth(src, "tag", 3, out, sizeof out),
                 WISP_EPARSE);
    CHECK_EQ_INT(wisp_form_get_nth(src, "tag", 4, out, sizeof out), 0);
    CHECK(strcmp(out, "") == 0);
    CHECK_EQ_INT(wisp_form_get_nth(src, "tag", 5, out, sizeof out),
                 -ENOENT);
    CHECK_EQ_INT(wisp_form_get_nth(src, "tag", 1, out, 2), -ENOBUFS);
    CHECK_EQ_INT(wisp_form_get_nth(src, NULL, 0, out, 2), -EINVAL);
    CHECK_EQ_INT(wisp_form_get_nth(src, "tag", 0, NULL, 2), -EINVAL);
}

int main(void)
{
    test_iter();
    test_decode();
    test_get();
    test_repeated();
    return t_done("http_form");
}
