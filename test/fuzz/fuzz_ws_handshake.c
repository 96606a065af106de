/* libFuzzer target for src/ws/handshake.c, the server side of the
 * WebSocket opening handshake, driven through the request parser as the
 * server drives it. Built by test/fuzz/meson.build; docs/fuzzing.md has
 * the commands.
 *
 * The input is a request head. When src/http/parse.c accepts it, its
 * fields go to wisp__ws_check_request, as wisp_ws_upgrade does. Besides
 * crashes and sanitizer reports it checks, trapping when one fails,
 * against a reference written here from RFC 6455 §4.2.1 and §11.3:
 *   - the answer is 0, 400 or 426, and the reference's: GET in HTTP/1.1,
 *     some Upgrade line holding the token "websocket" and some
 *     Connection line the token "upgrade" (comma lists, OWS, ASCII
 *     case-insensitive; lines of one name are one list), at most one
 *     version and one key field, the version exactly "13" (else 426), a
 *     key of 24 characters that is the canonical base64 of 16 bytes (22
 *     alphabet characters, the last of them one of "AQgw", then "==");
 *   - wisp__ws_has_token agrees with the reference on every field value;
 *   - an accepted key gets a 28-character accept value (base64 of 20
 *     bytes); the RFC 6455 §1.3 sample key gets the RFC's answer.
 * A crash found here becomes a row in test/http/upgrade_test.c. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "http/parse.h"
#include "util/base64.h"
#include "wisp/http.h"
#include "ws/handshake.h"

#define MAX_FIELDS 32

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int ci_equal(const char *a, size_t n, const char *lit)
{
    if (strlen(lit) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)lit[i]))
            return 0;
    return 1;
}

/* 1#element with OWS (RFC 9110 §5.6.1), empty elements allowed. */
static int ref_has_token(wisp_str_t v, const char *tok)
{
    if (!v.ptr)
        return 0;
    size_t i = 0;
    while (i <= v.len) {
        size_t j = i;
        while (j < v.len && v.ptr[j] != ',')
            j++;
        size_t s = i, e = j;
        while (s < e && (v.ptr[s] == ' ' || v.ptr[s] == '\t'))
            s++;
        while (e > s && (v.ptr[e - 1] == ' ' || v.ptr[e - 1] == '\t'))
            e--;
        if (ci_equal(v.ptr + s, e - s, tok))
            return 1;
        i = j + 1;
    }
    return 0;
}

static int b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

static int ref_key(wisp_str_t k)
{
    if (!k.ptr || k.len != 24 || k.ptr[22] != '=' || k.ptr[23] != '=')
        return 0;
    for (int i = 0; i < 22; i++)
        if (!b64_char(k.ptr[i]))
            return 0;
    return memchr("AQgw", k.ptr[21], 4) != NULL;
}

/* The first field named `name` and how many there are. */
static wisp_str_t field(const wisp__req_head *rh, const char *name, int *n)
{
    wisp_str_t v = {NULL, 0};
    *n = 0;
    for (uint32_t i = 0; i < rh->num_headers; i++)
        if (ci_equal(rh->headers[i].name, rh->headers[i].name_len, name) &&
            !(*n)++)
            v = (wisp_str_t){rh->headers[i].value, rh->headers[i].value_len};
    return v;
}

/* Some line named `name` holds `tok`. */
static int any_has(const wisp__req_head *rh, const char *name,
                   const char *tok)
{
    for (uint32_t i = 0; i < rh->num_headers; i++)
        if (ci_equal(rh->headers[i].name, rh->headers[i].name_len, name) &&
            ref_has_token((wisp_str_t){rh->headers[i].value,
                                       rh->headers[i].value_len}, tok))
            return 1;
    return 0;
}

static int reference(const wisp__req_head *rh, wisp_str_t *key)
{
    int nv, nk;
    if (rh->method != WISP_METHOD_GET || rh->minor < 1 ||
        !any_has(rh, "upgrade", "websocket") ||
        !any_has(rh, "connection", "upgrade"))
        return 400;
    wisp_str_t ver = field(rh, "sec-websocket-version", &nv);
    *key = field(rh, "sec-websocket-key", &nk);
    if (nv > 1 || nk > 1)
        return 400;
    if (!ver.ptr || ver.len != 2 || memcmp(ver.ptr, "13", 2) != 0)
        return 426;
    return ref_key(*key) ? 0 : 400;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int checked_sample;
    if (!checked_sample) {
        char acc[WISP__WS_ACCEPT_LEN + 1];
        wisp__ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, acc);
        REQUIRE(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
        checked_sample = 1;
    }
    if (size > 16384)
        return 0;
    static const wisp__parse_limits lim = {
        .max_request_line = 1024, .max_head = 16384,
        .max_headers = MAX_FIELDS};
    wisp__header hs[MAX_FIELDS];
    wisp__req_head rh;
    memset(&rh, 0, sizeof rh);
    rh.headers = hs;
    rh.max_headers = MAX_FIELDS;
    char *buf = malloc(size ? size : 1);
    REQUIRE(buf);
    memcpy(buf, data, size);
    size_t scan = 0;
    ssize_t n = wisp__parse_request(buf, size, &scan, &rh, &lim);
    if (n < 0) {
        free(buf);
        return 0;
    }

    for (uint32_t i = 0; i < rh.num_headers; i++) {
        wisp_str_t v = {rh.headers[i].value, rh.headers[i].value_len};
        REQUIRE(wisp__ws_has_token(v, "upgrade") ==
                ref_has_token(v, "upgrade"));
        REQUIRE(wisp__ws_has_token(v, "websocket") ==
                ref_has_token(v, "websocket"));
    }
    wisp_str_t key, rkey;
    int st = wisp__ws_check_request(rh.method, rh.minor, rh.headers,
                                    rh.num_headers, &key);
    REQUIRE(st == 0 || st == 400 || st == 426);
    REQUIRE(st == reference(&rh, &rkey));
    REQUIRE(st != 0 ? !key.ptr && !key.len
                    : key.ptr == rkey.ptr && key.len == rkey.len);
    REQUIRE(wisp__ws_fields_have(rh.headers, rh.num_headers, "connection",
                                 "upgrade") ==
            any_has(&rh, "connection", "upgrade"));
    if (st == 0) {
        char acc[WISP__WS_ACCEPT_LEN + 1], again[WISP__WS_ACCEPT_LEN + 1];
        uint8_t digest[21];
        wisp__ws_accept_key(key.ptr, key.len, acc);
        wisp__ws_accept_key(key.ptr, key.len, again);
        REQUIRE(strlen(acc) == WISP__WS_ACCEPT_LEN && acc[27] == '=');
        REQUIRE(strcmp(acc, again) == 0);
        REQUIRE(wisp__base64_decode(acc, WISP__WS_ACCEPT_LEN, digest) == 20);
    }
    free(buf);
    return 0;
}
