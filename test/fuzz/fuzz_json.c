/* libFuzzer target for the JSON reader and writer (src/util/json_*.c).
 *
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -D_GNU_SOURCE -Iinclude -Isrc src/util/json_parse.c \
 *       src/util/json_read.c src/util/json_write.c \
 *       test/fuzz/fuzz_json.c -o fuzz_json -lm
 *   ./fuzz_json -max_total_time=60 corpus/
 *
 * Besides crashes and sanitizer reports it checks properties, trapping
 * when one fails:
 *   - a parsed document's tokens are well formed: every span lies inside
 *     the input, strings sit between quotes, containers between matching
 *     brackets, `next` moves forward and stays inside the parent, counts
 *     agree with iteration;
 *   - with fewer tokens than needed the answer is -ENOBUFS, with exactly
 *     enough the same document;
 *   - every navigation and conversion call on every token returns one of
 *     its documented answers; an integer that converts also converts to
 *     the double nearest to it;
 *   - writing the document back through the writer (decoded strings,
 *     number text as is) gives text that parses to the same structure,
 *     the same decoded strings and the same numbers;
 *   - a number's double written by the writer reads back bit for bit.
 * A crash found here becomes a row in test/util/json_test.c. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wisp/json.h"

#define MAX_TOKS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static wisp_json_tok_t toks[MAX_TOKS], toks2[MAX_TOKS];
static char dec[1 << 17], dec2[1 << 17];

#define REQUIRE(c)                                                          \
    do {                                                                    \
        if (!(c))                                                           \
            __builtin_trap();                                               \
    } while (0)

static void check_spans(const wisp_json_doc_t *doc)
{
    const char *s = doc->src;
    for (uint32_t i = 0; i < doc->ntoks; i++) {
        const wisp_json_tok_t *t = &doc->toks[i];
        REQUIRE(t->type >= WISP_JSON_NULL && t->type <= WISP_JSON_OBJECT);
        REQUIRE((size_t)t->start + t->len <= doc->len);
        REQUIRE(t->next > i && t->next <= doc->ntoks);
        switch (t->type) {
        case WISP_JSON_STRING:
            REQUIRE(t->start >= 1 && s[t->start - 1] == '"');
            REQUIRE((size_t)t->start + t->len < doc->len &&
                    s[t->start + t->len] == '"');
            REQUIRE(t->next == i + 1);
            break;
        case WISP_JSON_ARRAY:
        case WISP_JSON_OBJECT:
            REQUIRE(t->len >= 2);
            REQUIRE(s[t->start] == (t->type == WISP_JSON_ARRAY ? '[' : '{'));
            REQUIRE(s[t->start + t->len - 1] ==
                    (t->type == WISP_JSON_ARRAY ? ']' : '}'));
            /* Children stay inside: their spans and their subtrees. */
            for (int c = wisp_json_first(doc, (int)i); c >= 0;
                 c = wisp_json_next(doc, c)) {
                REQUIRE((uint32_t)c > i && (uint32_t)c < t->next);
                const wisp_json_tok_t *ct = &doc->toks[c];
                REQUIRE(ct->start > t->start &&
                        ct->start + ct->len < t->start + t->len);
                if (t->type == WISP_JSON_OBJECT) {
                    REQUIRE(ct->type == WISP_JSON_STRING &&
                            (ct->flags & WISP_JSON_F_KEY));
                    REQUIRE(doc->toks[c + 1].next <= t->next);
                } else {
                    REQUIRE(ct->next <= t->next);
                }
            }
            break;
        default:
            REQUIRE(t->len >= 1 && t->next == i + 1);
            break;
        }
    }
    REQUIRE(doc->toks[0].next == doc->ntoks);
}

static void check_values(const wisp_json_doc_t *doc)
{
    for (int i = 0; i < (int)doc->ntoks; i++) {
        const wisp_json_tok_t *t = &doc->toks[i];
        wisp_str_t raw = wisp_json_raw(doc, i);
        REQUIRE(raw.ptr == doc->src + t->start && raw.len == t->len);
        uint32_t n = wisp_json_count(doc, i);
        if (t->type == WISP_JSON_ARRAY) {
            REQUIRE(n == 0 || wisp_json_at(doc, i, n - 1) >= 0);
            REQUIRE(wisp_json_at(doc, i, n) == -1);
        }
        if (t->type == WISP_JSON_STRING) {
            ssize_t len = wisp_json_str(doc, i, dec, sizeof(dec));
            REQUIRE(len >= 0 && (size_t)len <= t->len);
            REQUIRE(dec[len] == '\0');
            if (!(t->flags & WISP_JSON_F_ESCAPED))
                REQUIRE((size_t)len == t->len &&
                        memcmp(dec, raw.ptr, t->len) == 0);
            if (len > 0)
                REQUIRE(wisp_json_str(doc, i, dec2, (size_t)len) == -ENOBUFS);
            if (!memchr(dec, '\0', (size_t)len))
                REQUIRE(wisp_json_str_eq(doc, i, dec));
        } else {
            REQUIRE(wisp_json_str(doc, i, dec, sizeof(dec)) ==
                    WISP_EJSON_TYPE);
        }
        int64_t v;
        uint64_t u;
        double d;
        int b;
        int ri = wisp_json_int64(doc, i, &v);
        int ru = wisp_json_uint64(doc, i, &u);
        int rd = wisp_json_double(doc, i, &d);
        int rb = wisp_json_bool(doc, i, &b);
        if (t->type != WISP_JSON_NUMBER) {
            REQUIRE(ri == WISP_EJSON_TYPE && ru == WISP_EJSON_TYPE &&
                    rd == WISP_EJSON_TYPE);
        } else {
            REQUIRE(ri == 0 || ri == -ERANGE);
            REQUIRE(ru == 0 || ru == -ERANGE);
            REQUIRE(rd == 0 || rd == -ERANGE);
            if (ri == 0) /* (double)v rounds the exact value once */
                REQUIRE(rd == 0 && d == (double)v);
            if (ru == 0)
                REQUIRE(rd == 0 && d == (double)u);
            if (ri == 0 && v >= 0)
                REQUIRE(ru == 0 && u == (uint64_t)v);
            if (rd == 0 && !isnan(d)) {
                /* The writer's shortest form reads back bit for bit. */
                char buf[64], *out;
                size_t len;
                wisp_json_writer_t w;
                wisp_json_doc_t d2;
                double back;
                wisp_json_writer_init(&w, buf, sizeof(buf));
                wisp_json_double_val(&w, d);
                REQUIRE(wisp_json_finish(&w, &out, &len) == 0);
                REQUIRE(wisp_json_parse(&d2, out, len, toks2, 1, NULL) == 1);
                REQUIRE(wisp_json_double(&d2, 0, &back) == 0);
                REQUIRE(memcmp(&back, &d, sizeof(d)) == 0);
            }
        }
        if (t->type == WISP_JSON_TRUE || t->type == WISP_JSON_FALSE)
            REQUIRE(rb == 0 && b == (t->type == WISP_JSON_TRUE));
        else
            REQUIRE(rb == WISP_EJSON_TYPE);
    }
}

/* Write the document again, token by token in document order, closing
 * containers when the walk passes their end. */
static int rewrite(const wisp_json_doc_t *doc, wisp_json_writer_t *w)
{
    uint32_t ends[80];
    uint8_t types[80];
    int depth = 0;

    for (uint32_t i = 0; i <= doc->ntoks; i++) {
        while (depth > 0 && ends[depth - 1] <= i) {
            depth--;
            if (types[depth] == WISP_JSON_ARRAY)
                wisp_json_arr_end(w);
            else
                wisp_json_obj_end(w);
        }
        if (i == doc->ntoks)
            break;
        const wisp_json_tok_t *t = &doc->toks[i];
        wisp_str_t raw = wisp_json_raw(doc, (int)i);
        ssize_t len;
        switch (t->type) {
        case WISP_JSON_ARRAY:
        case WISP_JSON_OBJECT:
            REQUIRE(depth < 80);
            ends[depth] = t->next;
            types[depth++] = t->type;
            if (t->type == WISP_JSON_ARRAY)
                wisp_json_arr_begin(w);
            else
                wisp_json_obj_begin(w);
            break;
        case WISP_JSON_STRING:
            len = wisp_json_str(doc, (int)i, dec, sizeof(dec));
            REQUIRE(len >= 0);
            if (t->flags & WISP_JSON_F_KEY)
                wisp_json_key_n(w, dec, (size_t)len);
            else
                wisp_json_str_val_n(w, dec, (size_t)len);
            break;
        case WISP_JSON_NUMBER:
            wisp_json_raw_val(w, raw.ptr, raw.len);
            break;
        case WISP_JSON_TRUE:
        case WISP_JSON_FALSE:
            wisp_json_bool_val(w, t->type == WISP_JSON_TRUE);
            break;
        default:
            wisp_json_null_val(w);
            break;
        }
    }
    return wisp_json_finish(w, NULL, NULL);
}

static void check_same(const wisp_json_doc_t *a, const wisp_json_doc_t *b)
{
    REQUIRE(a->ntoks == b->ntoks);
    for (int i = 0; i < (int)a->ntoks; i++) {
        const wisp_json_tok_t *ta = &a->toks[i], *tb = &b->toks[i];
        REQUIRE(ta->type == tb->type && ta->next == tb->next);
        REQUIRE((ta->flags & ~WISP_JSON_F_ESCAPED) ==
                (tb->flags & ~WISP_JSON_F_ESCAPED));
        if (ta->type == WISP_JSON_STRING) {
            ssize_t la = wisp_json_str(a, i, dec, sizeof(dec));
            ssize_t lb = wisp_json_str(b, i, dec2, sizeof(dec2));
            REQUIRE(la == lb && memcmp(dec, dec2, (size_t)la) == 0);
        } else if (ta->type == WISP_JSON_NUMBER) {
            wisp_str_t ra = wisp_json_raw(a, i), rb = wisp_json_raw(b, i);
            REQUIRE(ra.len == rb.len && memcmp(ra.ptr, rb.ptr, ra.len) == 0);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wisp_json_doc_t doc, doc2;
    int n = wisp_json_parse(&doc, (const char *)data, size, toks, MAX_TOKS,
                            NULL);
    REQUIRE(n != 0 && n <= MAX_TOKS);
    if (n < 0) {
        REQUIRE(n == WISP_EJSON_SYNTAX || n == WISP_EJSON_DEPTH ||
                n == -ENOBUFS);
        REQUIRE(doc.ntoks == 0);
        if (n == WISP_EJSON_SYNTAX)
            REQUIRE(doc.err_offset <= size);
        return 0;
    }
    REQUIRE(doc.ntoks == (uint32_t)n);
    check_spans(&doc);
    check_values(&doc);

    /* Token capacity: one short, then exactly enough. */
    REQUIRE(wisp_json_parse(&doc2, (const char *)data, size, toks2,
                            (uint32_t)n - 1, NULL) == -ENOBUFS);
    REQUIRE(wisp_json_parse(&doc2, (const char *)data, size, toks2,
                            (uint32_t)n, NULL) == n);
    REQUIRE(memcmp(toks, toks2, (size_t)n * sizeof(*toks)) == 0);

    /* Through the writer and back. */
    wisp_json_writer_t w;
    wisp_json_writer_init_dyn(&w);
    REQUIRE(rewrite(&doc, &w) == 0);
    REQUIRE(wisp_json_parse(&doc2, w.buf, w.len, toks2, MAX_TOKS, NULL) == n);
    check_same(&doc, &doc2);
    wisp_json_writer_free(&w);
    return 0;
}
