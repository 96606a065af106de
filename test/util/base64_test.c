/* Tests of src/util/base64.c: the RFC 4648 §10 vectors both ways, the
 * strict decoder's rejections (length, alphabet, padding placement,
 * non-zero pad bits), and random 16-byte round trips (the size of a
 * Sec-WebSocket-Key nonce). Every input to the decoder ends right before
 * a PROT_NONE page, so any over-read faults. */
#include "util/base64.h"

#include <stdint.h>

#include "../test.h"

#define IN(s) .in = (s), .in_len = sizeof(s) - 1
#define OUT(s) .out = (s), .out_len = sizeof(s) - 1

typedef struct row {
    const char *name;
    const char *rfc;
    const char *in; /* base64 text */
    size_t in_len;
    int ok;          /* 1: decodes to `out`; 0: rejected */
    const char *out; /* the bytes (and, when ok, what encodes to `in`) */
    size_t out_len;
} row;

static const row rows[] = {
    /* RFC 4648 §10 test vectors: decoded and encoded. */
    {"BASE64(\"\") = \"\"", "RFC 4648 §10", IN(""), 1, OUT("")},
    {"BASE64(\"f\") = \"Zg==\"", "RFC 4648 §10", IN("Zg=="), 1, OUT("f")},
    {"BASE64(\"fo\") = \"Zm8=\"", "RFC 4648 §10", IN("Zm8="), 1, OUT("fo")},
    {"BASE64(\"foo\") = \"Zm9v\"", "RFC 4648 §10", IN("Zm9v"), 1,
     OUT("foo")},
    {"BASE64(\"foob\") = \"Zm9vYg==\"", "RFC 4648 §10", IN("Zm9vYg=="), 1,
     OUT("foob")},
    {"BASE64(\"fooba\") = \"Zm9vYmE=\"", "RFC 4648 §10", IN("Zm9vYmE="), 1,
     OUT("fooba")},
    {"BASE64(\"foobar\") = \"Zm9vYmFy\"", "RFC 4648 §10", IN("Zm9vYmFy"), 1,
     OUT("foobar")},
    {"the RFC 6455 sample nonce decodes to 16 bytes", "RFC 6455 §1.3",
     IN("dGhlIHNhbXBsZSBub25jZQ=="), 1, OUT("the sample nonce")},
    {"'+' and '/' are the last two alphabet characters", "RFC 4648 §4",
     IN("+/+/"), 1, OUT("\xfb\xff\xbf")},
    {"all-zero bytes encode as 'A'", "RFC 4648 §4", IN("AAAA"), 1,
     OUT("\0\0\0")},
    {"all-one bytes encode as '/'", "RFC 4648 §4", IN("////"), 1,
     OUT("\xff\xff\xff")},

    /* Random 16-byte nonces (os.urandom), encoded by Python's
     * base64.b64encode: the shape of every Sec-WebSocket-Key. */
    {"random nonce 1 round-trips", "RFC 6455 §4.1",
     IN("9z8wVuL3FNBu32Q1+9dB8A=="), 1,
     OUT("\xf7\x3f\x30\x56\xe2\xf7\x14\xd0\x6e\xdf\x64\x35\xfb\xd7\x41\xf0")},
    {"random nonce 2 round-trips", "RFC 6455 §4.1",
     IN("5hpqvBbVy70MXaEJZtaPHg=="), 1,
     OUT("\xe6\x1a\x6a\xbc\x16\xd5\xcb\xbd\x0c\x5d\xa1\x09\x66\xd6\x8f\x1e")},
    {"random nonce 3 round-trips", "RFC 6455 §4.1",
     IN("7epCl4p5+FsEY9ZMwBHdEQ=="), 1,
     OUT("\xed\xea\x42\x97\x8a\x79\xf8\x5b\x04\x63\xd6\x4c\xc0\x11\xdd\x11")},
    {"random nonce 4 round-trips", "RFC 6455 §4.1",
     IN("KlVb3Q96ssrxTnrrL6z5uw=="), 1,
     OUT("\x2a\x55\x5b\xdd\x0f\x7a\xb2\xca\xf1\x4e\x7a\xeb\x2f\xac\xf9\xbb")},
    {"random nonce 5 round-trips", "RFC 6455 §4.1",
     IN("ujGhMaEIKlnHMF82q2BA9g=="), 1,
     OUT("\xba\x31\xa1\x31\xa1\x08\x2a\x59\xc7\x30\x5f\x36\xab\x60\x40\xf6")},
    {"random nonce 6 round-trips", "RFC 6455 §4.1",
     IN("/YkbTS4kUOSA6bZ75PAVuw=="), 1,
     OUT("\xfd\x89\x1b\x4d\x2e\x24\x50\xe4\x80\xe9\xb6\x7b\xe4\xf0\x15\xbb")},
    {"a nonce with a non-canonical last character is rejected",
     "RFC 4648 §3.5", IN("/YkbTS4kUOSA6bZ75PAVux=="), 0},

    /* Length: padding is required, so only multiples of 4 are valid. */
    {"one character is rejected", "RFC 4648 §3.2", IN("Z"), 0},
    {"two characters without padding are rejected", "RFC 4648 §3.2",
     IN("Zg"), 0},
    {"three characters without padding are rejected", "RFC 4648 §3.2",
     IN("Zm8"), 0},
    {"five characters are rejected", "RFC 4648 §3.2", IN("Zm9vY"), 0},
    {"a missing '=' is rejected", "RFC 4648 §3.2", IN("Zg="), 0},
    {"an extra '=' is rejected", "RFC 4648 §3.2", IN("Zg==="), 0},

    /* Alphabet. */
    {"'-' (base64url) is rejected", "RFC 4648 §3.3", IN("ab-d"), 0},
    {"'_' (base64url) is rejected", "RFC 4648 §3.3", IN("ab_d"), 0},
    {"a space is rejected", "RFC 4648 §3.3", IN("Zm9 "), 0},
    {"a line break is rejected", "RFC 4648 §3.3", IN("Zm9v\r\nYmFy"), 0},
    {"a NUL is rejected", "RFC 4648 §3.3", IN("Zm\0v"), 0},
    {"a high-bit byte is rejected", "RFC 4648 §3.3", IN("Zm9\xc3"), 0},
    {"'.' is rejected", "RFC 4648 §3.3", IN("Zm9."), 0},
    {"a bad character in the last quantum before padding is rejected",
     "RFC 4648 §3.3", IN("Zm9vY*=="), 0},
    {"a bad character in the third position before '=' is rejected",
     "RFC 4648 §3.3", IN("Zm*="), 0},

    /* Padding placement. */
    {"'=' in the first position is rejected", "RFC 4648 §3.2", IN("=Zg="),
     0},
    {"'=' in the second position is rejected", "RFC 4648 §3.2",
     IN("Z==="), 0},
    {"four '=' are rejected", "RFC 4648 §3.2", IN("===="), 0},
    {"'=' followed by data in the quantum is rejected", "RFC 4648 §3.2",
     IN("Zg=g"), 0},
    {"padding in a quantum that is not the last is rejected",
     "RFC 4648 §3.2", IN("Zg==Zg=="), 0},
    {"padding then a full quantum is rejected", "RFC 4648 §3.2",
     IN("Zm8=Zm9v"), 0},

    /* Canonical encoding: the bits the padding stands for must be zero
     * (RFC 4648 §3.5 lets a decoder reject other encodings). */
    {"\"Zg==\" with zero pad bits is accepted", "RFC 4648 §3.5", IN("Zg=="),
     1, OUT("f")},
    {"\"Zh==\" with non-zero pad bits is rejected", "RFC 4648 §3.5",
     IN("Zh=="), 0},
    {"\"Zv==\" (low bit of 4 set) is rejected", "RFC 4648 §3.5", IN("Zv=="),
     0},
    {"\"Zm9=\" with non-zero pad bits is rejected", "RFC 4648 §3.5",
     IN("Zm9="), 0},
    {"\"Zm+=\" (low bits of 2 set) is rejected", "RFC 4648 §3.5",
     IN("Zm+="), 0},
    {"\"Zm8=\" with zero pad bits is accepted", "RFC 4648 §3.5", IN("Zm8="),
     1, OUT("fo")},
};

static void test_row(const row *r)
{
    t_guard g = t_guard_copy(r->in, r->in_len);
    uint8_t out[64];
    ssize_t n = wisp__base64_decode(g.data, r->in_len, out);
    t_guard_free(&g);

    if (!r->ok) {
        CHECK_MSG(n == -1, "%s (%s): decoded %zd bytes, want -1", r->name,
                  r->rfc, n);
        return;
    }
    CHECK_MSG(n == (ssize_t)r->out_len &&
                  memcmp(out, r->out, r->out_len) == 0,
              "%s (%s): decoded %zd bytes, want %zu", r->name, r->rfc, n,
              r->out_len);

    /* Encoding: exactly WISP__BASE64_LEN bytes, none beyond. */
    char enc[64 + 1];
    memset(enc, '#', sizeof enc);
    g = t_guard_copy(r->out, r->out_len);
    size_t m = wisp__base64_encode(g.data, r->out_len, enc);
    t_guard_free(&g);
    CHECK_EQ_INT(m, WISP__BASE64_LEN(r->out_len));
    CHECK_MSG(m == r->in_len && memcmp(enc, r->in, m) == 0,
              "%s (%s): encoded \"%.*s\"", r->name, r->rfc, (int)m, enc);
    CHECK(enc[m] == '#');
}

/* Random 16-byte nonces (a fixed xorshift seed, so failures reproduce):
 * each encodes to 24 characters ending in "==" and decodes back. */
static void test_round_trip(void)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 256; i++) {
        uint8_t in[16], back[18];
        char enc[WISP__BASE64_LEN(16)];
        for (size_t j = 0; j < sizeof in; j++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            in[j] = (uint8_t)(x >> 32);
        }
        size_t m = wisp__base64_encode(in, sizeof in, enc);
        CHECK_EQ_INT(m, 24);
        CHECK(enc[22] == '=' && enc[23] == '=');
        t_guard g = t_guard_copy(enc, m);
        ssize_t n = wisp__base64_decode(g.data, m, back);
        t_guard_free(&g);
        CHECK_EQ_INT(n, 16);
        CHECK(memcmp(in, back, sizeof in) == 0);
    }
}

/* Every length from 0 to 48 (all three remainders, several quanta)
 * round-trips, and flipping any character of the encoding to one outside
 * the alphabet is rejected. */
static void test_lengths(void)
{
    uint8_t in[48], back[48];
    char enc[WISP__BASE64_LEN(48)];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 37 + 11);
    for (size_t len = 0; len <= sizeof in; len++) {
        size_t m = wisp__base64_encode(in, len, enc);
        CHECK_EQ_INT(m, WISP__BASE64_LEN(len));
        CHECK_EQ_INT(wisp__base64_decode(enc, m, back), len);
        CHECK(memcmp(in, back, len) == 0);
        int bad = 0;
        for (size_t k = 0; k < m; k++) {
            char save = enc[k];
            enc[k] = '!';
            bad += wisp__base64_decode(enc, m, back) != -1;
            enc[k] = save;
        }
        CHECK_EQ_INT(bad, 0);
    }
}

int main(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        test_row(&rows[i]);
    test_round_trip();
    test_lengths();
    return t_done("base64");
}
