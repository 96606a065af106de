/* xiaozhi-server auth: SHA-256 (FIPS 180-4 examples), HMAC-SHA256
 * (RFC 4231 test cases 1-7), base64url, device and vision tokens. */
#include <stdio.h>
#include <string.h>

#include "../test.h"
#include "auth.h"

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static void sha(const void *m, size_t n, char out[65])
{
    xz_sha256_t s;
    uint8_t d[32];
    xz_sha256_init(&s);
    xz_sha256_update(&s, m, n);
    xz_sha256_final(&s, d);
    hex(d, 32, out);
}

typedef struct hrow {
    const char *name;
    uint8_t key[131];
    size_t klen;
    const char *msg;
    size_t mlen;
    const char *want;
    size_t want_hex; /* compare this many hex chars (case 5 is truncated) */
} hrow;

int main(void)
{
    char out[65];
    sha("", 0, out);
    CHECK(!strcmp(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    sha("abc", 3, out);
    CHECK(!strcmp(out, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *m2 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha(m2, strlen(m2), out);
    CHECK(!strcmp(out, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
    /* a million 'a', fed in odd slices */
    xz_sha256_t s;
    uint8_t d[32];
    char a[997];
    memset(a, 'a', sizeof a);
    xz_sha256_init(&s);
    size_t left = 1000000;
    while (left) {
        size_t n = left < sizeof a ? left : sizeof a;
        xz_sha256_update(&s, a, n);
        left -= n;
    }
    xz_sha256_final(&s, d);
    hex(d, 32, out);
    CHECK(!strcmp(out, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"));

    static hrow rows[7];
    memset(rows, 0, sizeof rows);
    rows[0] = (hrow){"RFC 4231 case 1", {0}, 20, "Hi There", 8,
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7", 64};
    memset(rows[0].key, 0x0b, 20);
    rows[1] = (hrow){"case 2", "Jefe", 4, "what do ya want for nothing?", 28,
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", 64};
    rows[2] = (hrow){"case 3", {0}, 20, NULL, 50,
        "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe", 64};
    memset(rows[2].key, 0xaa, 20);
    rows[3] = (hrow){"case 4", {0}, 25, NULL, 50,
        "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b", 64};
    for (int i = 0; i < 25; i++)
        rows[3].key[i] = (uint8_t)(i + 1);
    rows[4] = (hrow){"case 5 (truncated to 128 bits)", {0}, 20,
        "Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b", 32};
    memset(rows[4].key, 0x0c, 20);
    rows[5] = (hrow){"case 6 (key longer than a block)", {0}, 131,
        "Test Using Larger Than Block-Size Key - Hash Key First", 54,
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54", 64};
    memset(rows[5].key, 0xaa, 131);
    rows[6] = (hrow){"case 7", {0}, 131,
        "This is a test using a larger than block-size key and a larger "
        "than block-size data. The key needs to be hashed before being "
        "used by the HMAC algorithm.", 152,
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2", 64};
    memset(rows[6].key, 0xaa, 131);
    uint8_t m50[50];
    for (int i = 0; i < 7; i++) {
        const void *msg = rows[i].msg;
        if (!msg) {
            memset(m50, i == 2 ? 0xdd : 0xcd, 50);
            msg = m50;
        }
        uint8_t mac[32];
        char hx[65];
        xz_hmac_sha256(rows[i].key, rows[i].klen, msg, rows[i].mlen, mac);
        hex(mac, 32, hx);
        CHECK_MSG(!strncmp(hx, rows[i].want, rows[i].want_hex), "%s: %s",
                  rows[i].name, hx);
    }

    /* base64url: RFC 4648 §10 vectors, '-' '_' alphabet, no padding */
    char b[16];
    CHECK_EQ_INT(xz_b64url((const uint8_t *)"f", 1, b), 2);
    CHECK(!strcmp(b, "Zg"));
    xz_b64url((const uint8_t *)"foob", 4, b);
    CHECK(!strcmp(b, "Zm9vYg"));
    xz_b64url((const uint8_t *)"foobar", 6, b);
    CHECK(!strcmp(b, "Zm9vYmFy"));
    xz_b64url((const uint8_t *)"\xfb\xff", 2, b);
    CHECK(!strcmp(b, "-_8"));

    /* device token */
    char tok[XZ_TOKEN_MAX], bearer[XZ_TOKEN_MAX + 8];
    xz_token_make("k", "cid", "aa:bb", 1000000, tok);
    CHECK(strchr(tok, '.') && !strcmp(strchr(tok, '.'), ".1000000"));
    CHECK_EQ_INT(xz_token_check("k", "cid", "aa:bb", tok, strlen(tok),
                                1000010, 60), 0);
    snprintf(bearer, sizeof bearer, "Bearer %s", tok);
    CHECK_EQ_INT(xz_token_check("k", "cid", "aa:bb", bearer, strlen(bearer),
                                1000010, 60), 0);
    CHECK(xz_token_check("k", "cid", "aa:bc", tok, strlen(tok), 1000010,
                         60) < 0);  /* other device */
    CHECK(xz_token_check("k", "cie", "aa:bb", tok, strlen(tok), 1000010,
                         60) < 0);  /* other client */
    CHECK(xz_token_check("j", "cid", "aa:bb", tok, strlen(tok), 1000010,
                         60) < 0);  /* other secret */
    CHECK(xz_token_check("k", "cid", "aa:bb", tok, strlen(tok), 1000061,
                         60) < 0);  /* expired */
    CHECK(xz_token_check("k", "cid", "aa:bb", tok, strlen(tok), 999000,
                         60) < 0);  /* from the future */
    CHECK(xz_token_check("k", "cid", "aa:bb", tok, strlen(tok) - 1, 1000010,
                         60) < 0);  /* truncated */
    CHECK(xz_token_check("k", "cid", "aa:bb", "", 0, 1, 60) < 0);
    CHECK(xz_token_check("k", "cid", "aa:bb", ".5", 2, 5, 60) < 0);
    CHECK(xz_token_check("k", "cid", "aa:bb", "x.5a", 4, 5, 60) < 0);
    char bad[XZ_TOKEN_MAX];
    memcpy(bad, tok, sizeof bad);
    bad[3] ^= 1;
    CHECK(xz_token_check("k", "cid", "aa:bb", bad, strlen(bad), 1000010,
                         60) < 0);  /* one bit flipped */

    /* vision token */
    xz_vision_token_make("k", "aa:bb", 5000, tok);
    CHECK_EQ_INT(xz_vision_token_check("k", "aa:bb", tok, strlen(tok), 4999),
                 0);
    snprintf(bearer, sizeof bearer, "Bearer %s", tok);
    CHECK_EQ_INT(xz_vision_token_check("k", "aa:bb", bearer, strlen(bearer),
                                       5000), 0);
    CHECK_EQ_INT(xz_vision_token_check("k", "aa:bb", tok, strlen(tok), 5001),
                 -2);
    CHECK_EQ_INT(xz_vision_token_check("k", "aa:bc", tok, strlen(tok), 1),
                 -1);
    CHECK_EQ_INT(xz_vision_token_check("k", "aa:bb", "junk", 4, 1), -1);
    /* a device token is not a vision token */
    xz_token_make("k", "vision", "aa:bb", 5000, tok);
    CHECK_EQ_INT(xz_vision_token_check("k", "aa:bb", tok, strlen(tok), 1),
                 -1);
    return t_done("xz_auth");
}
