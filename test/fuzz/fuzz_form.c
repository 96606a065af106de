/* libFuzzer target for src/http/form.c.
 *
 *   clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
 *       -D_GNU_SOURCE -Iinclude -Isrc src/http/form.c \
 *       test/fuzz/fuzz_form.c -o fuzz_form
 *
 * The input is a form buffer (a heap copy of exactly its size). Properties,
 * trapping when one fails:
 *   - the pairs cover the input: joined with '&' (and '=' where the pair
 *     had one) they give the input with its empty pairs removed;
 *   - decoding succeeds exactly when a reference decoder (written
 *     independently below) does, with the same bytes, never longer than
 *     the input, and in place too;
 *   - wisp_form_get finds, for each pair's decoded key, the value of the
 *     first pair with that decoded key. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wisp/form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                          \
    do {                                                                    \
        if (!(c))                                                           \
            __builtin_trap();                                               \
    } while (0)

/* The reference: a straightforward loop over the rules of form.h. */
static ssize_t ref_decode(const char *s, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef0123456789ABCDEF";
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[w++] = ' ';
        } else if (s[i] != '%') {
            out[w++] = s[i];
        } else {
            if (i + 2 >= n)
                return WISP_EPARSE;
            const char *a = s[i + 1] ? memchr(hex, s[i + 1], 32) : NULL;
            const char *b = s[i + 2] ? memchr(hex, s[i + 2], 32) : NULL;
            if (!a || !b)
                return WISP_EPARSE;
            int v = (int)((a - hex) % 16) * 16 + (int)((b - hex) % 16);
            if (v == 0)
                return WISP_EPARSE;
            out[w++] = (char)v;
            i += 2;
        }
    }
    return (ssize_t)w;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size ? size : 1);
    char *a = malloc(size + 1), *b = malloc(size + 1), *c = malloc(size + 1);
    char *joined = malloc(size + 1), *compact = malloc(size + 1);
    REQUIRE(in && a && b && c && joined && compact);
    memcpy(in, data, size);
    wisp_str_t src = {in, size};

    /* Decoding the whole buffer. */
    ssize_t want = ref_decode(in, size, a);
    ssize_t got = wisp_form_decode(src, b, size + 1);
    REQUIRE(got == want);
    REQUIRE(wisp_form_decoded_len(src) == want);
    if (got >= 0) {
        REQUIRE((size_t)got <= size && memcmp(a, b, (size_t)got) == 0 &&
                b[got] == 0);
        memcpy(c, in, size);
        wisp_str_t self = {c, size};
        REQUIRE(wisp_form_decode(self, c, size + 1) == got &&
                memcmp(c, a, (size_t)got) == 0);
    }

    /* Iteration covers the input. */
    size_t jl = 0, cl = 0;
    for (size_t i = 0, s = 0; i <= size; i++) {
        if (i == size || in[i] == '&') {
            if (i > s) {
                if (cl)
                    compact[cl++] = '&';
                memcpy(compact + cl, in + s, i - s);
                cl += i - s;
            }
            s = i + 1;
        }
    }
    wisp_form_iter_t it;
    wisp_str_t k, v;
    wisp_form_iter_init(&it, src);
    while (wisp_form_next(&it, &k, &v)) {
        REQUIRE(k.ptr >= in && v.ptr + v.len <= in + size);
        if (jl)
            joined[jl++] = '&';
        memcpy(joined + jl, k.ptr, k.len);
        jl += k.len;
        if (v.ptr > k.ptr + k.len) { /* the pair had '=' */
            joined[jl++] = '=';
            memcpy(joined + jl, v.ptr, v.len);
            jl += v.len;
        }
        REQUIRE(jl <= size);

        /* Lookup by this pair's decoded key. */
        ssize_t kl = ref_decode(k.ptr, k.len, a);
        if (kl < 0)
            continue;
        a[kl] = 0;
        if (memchr(a, 0, (size_t)kl))
            continue;
        ssize_t r = wisp_form_get(src, a, b, size + 1);
        /* The first pair with this key: search it by hand. */
        wisp_form_iter_t it2;
        wisp_str_t k2, v2;
        wisp_form_iter_init(&it2, src);
        while (wisp_form_next(&it2, &k2, &v2)) {
            ssize_t l2 = ref_decode(k2.ptr, k2.len, c);
            if (l2 == kl && memcmp(c, a, (size_t)kl) == 0)
                break;
        }
        ssize_t vl = ref_decode(v2.ptr, v2.len, c);
        REQUIRE(r == vl);
        if (vl >= 0)
            REQUIRE(memcmp(b, c, (size_t)vl) == 0);
    }
    REQUIRE(jl == cl && memcmp(joined, compact, jl) == 0);

    free(in);
    free(a);
    free(b);
    free(c);
    free(joined);
    free(compact);
    return 0;
}
