/* Tests of src/util/sha1.c: the RFC 3174 §7.3 test vectors, fed whole,
 * byte by byte and in two pieces cut at every offset (and one million
 * 'a' in pieces of varying sizes), inputs ending right before a PROT_NONE
 * page; the block-boundary lengths around the padding; and the
 * Sec-WebSocket-Accept example of RFC 6455 §1.3. */
#include "util/sha1.h"

#include "../test.h"
#include "util/base64.h"

typedef struct row {
    const char *name;
    const char *rfc;
    const char *in;
    size_t repeat; /* the input is `in` repeated this many times; 0: 1 */
    const char *hex;
} row;

static const row rows[] = {
    {"empty message", "FIPS 180-2 / RFC 3174 §7.3", "", 0,
     "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
    {"\"abc\" (TEST1)", "RFC 3174 §7.3", "abc", 0,
     "a9993e364706816aba3e25717850c26c9cd0d89d"},
    {"448-bit message, two blocks of padding (TEST2)", "RFC 3174 §7.3",
     "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 0,
     "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
    {"one million 'a' (TEST3)", "RFC 3174 §7.3", "a", 1000000,
     "34aa973cd4c4daa4f61eeb2bdbad27316534016f"},
    {"640 bytes of a 64-byte pattern (TEST4)", "RFC 3174 §7.3",
     "0123456701234567012345670123456701234567012345670123456701234567",
     10, "dea356a2cddd90c7a7ecedc5ebb563934f460452"},
    {"55 bytes: padding fits in one block", "RFC 3174 §4",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0,
     "c1c8bbdc22796e28c0e15163d20899b65621d65a"},
    {"56 bytes: the length spills into a second block", "RFC 3174 §4",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0,
     "c2db330f6083854c99d4b5bfb6e8f29f201be699"},
    {"64 bytes: exactly one block", "RFC 3174 §4",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0,
     "0098ba824b5c16427bd7a1122a5a442a25ec644d"},
    {"The quick brown fox", "FIPS 180 example",
     "The quick brown fox jumps over the lazy dog", 0,
     "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"},
};

static void hex(const uint8_t d[20], char out[41])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 20; i++) {
        out[2 * i] = digits[d[i] >> 4];
        out[2 * i + 1] = digits[d[i] & 15];
    }
    out[40] = 0;
}

/* Build the row's whole input in a malloc'd buffer. */
static char *input(const row *r, size_t *len)
{
    size_t n = strlen(r->in), rep = r->repeat ? r->repeat : 1;
    char *buf = malloc(n * rep + 1);
    for (size_t i = 0; i < rep; i++)
        memcpy(buf + i * n, r->in, n);
    *len = n * rep;
    return buf;
}

static void check_digest(const row *r, const char *how, const uint8_t d[20])
{
    char got[41];
    hex(d, got);
    CHECK_MSG(strcmp(got, r->hex) == 0, "%s (%s, %s): got %s, want %s",
              r->name, r->rfc, how, got, r->hex);
}

static void test_row(const row *r)
{
    size_t len;
    char *buf = input(r, &len);
    uint8_t d[20];
    wisp__sha1 s;

    /* Whole, one-shot and via init/update/final, before a guard page. */
    t_guard g = t_guard_copy(buf, len);
    wisp__sha1_digest(g.data, len, d);
    check_digest(r, "one-shot", d);
    wisp__sha1_init(&s);
    wisp__sha1_update(&s, g.data, len);
    wisp__sha1_final(&s, d);
    check_digest(r, "whole", d);

    /* Pieces of varying sizes 0, 1, 2, ... 130, 0, 1, ... (crossing the
     * block boundary at every offset). */
    wisp__sha1_init(&s);
    for (size_t off = 0, step = 0; off < len; step = (step + 1) % 131) {
        size_t n = step < len - off ? step : len - off;
        wisp__sha1_update(&s, g.data + off, n);
        off += n;
    }
    wisp__sha1_final(&s, d);
    check_digest(r, "varying pieces", d);
    t_guard_free(&g);

    if (len > 1000) {
        free(buf);
        return;
    }
    /* Byte by byte, each byte right before a guard page. */
    wisp__sha1_init(&s);
    for (size_t i = 0; i < len; i++) {
        t_guard b = t_guard_copy(buf + i, 1);
        wisp__sha1_update(&s, b.data, 1);
        t_guard_free(&b);
    }
    wisp__sha1_final(&s, d);
    check_digest(r, "byte by byte", d);

    /* Two pieces cut at every offset. */
    for (size_t cut = 0; cut <= len; cut++) {
        wisp__sha1_init(&s);
        wisp__sha1_update(&s, buf, cut);
        wisp__sha1_update(&s, buf + cut, len - cut);
        wisp__sha1_final(&s, d);
        char how[32];
        snprintf(how, sizeof how, "cut at %zu", cut);
        check_digest(r, how, d);
    }
    free(buf);
}

/* RFC 6455 §1.3: the server appends the GUID to Sec-WebSocket-Key, and
 * Sec-WebSocket-Accept is the base64 of the SHA-1 of that. */
static void test_websocket_accept(void)
{
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    const char *guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    uint8_t d[20];
    char accept[WISP__BASE64_LEN(20)];
    wisp__sha1 s;

    wisp__sha1_init(&s);
    wisp__sha1_update(&s, key, strlen(key));
    wisp__sha1_update(&s, guid, strlen(guid));
    wisp__sha1_final(&s, d);
    size_t n = wisp__base64_encode(d, sizeof d, accept);
    CHECK_EQ_INT(n, sizeof accept);
    CHECK_STRN(accept, n, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

int main(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        test_row(&rows[i]);
    test_websocket_accept();
    return t_done("sha1");
}
