/* Tests of src/ws/handshake.c: the opening handshake's request checks
 * (RFC 6455 §4.2.1, §11.3), the token lists they read (RFC 9110 §5.3,
 * §5.6.1) and the accept key (§4.2.2). Every field value is copied to
 * the end of a page before a PROT_NONE one, so reading past a value
 * faults. */
#include "ws/handshake.h"

#include "../test.h"
#include "wisp/http.h"

#define GET WISP_METHOD_GET
#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define MAXF 6

typedef struct row {
    const char *name;
    const char *ref;
    int method, minor;
    const char *f[MAXF][2]; /* field lines: name, value */
    int want;
} row;

/* The fields of a valid request, for rows that change one thing. */
#define UP {"Upgrade", "websocket"}
#define CONN {"Connection", "Upgrade"}
#define VER {"Sec-WebSocket-Version", "13"}
#define K {"Sec-WebSocket-Key", KEY}

static const row rows[] = {
    {"the RFC's sample request is accepted", "RFC 6455 §1.3", GET, 1,
     {UP, CONN, VER, K}, 0},
    {"field names in any case", "RFC 9110 §5.1", GET, 1,
     {{"UPGRADE", "websocket"}, {"connection", "upgrade"},
      {"sec-websocket-version", "13"}, {"SEC-WEBSOCKET-KEY", KEY}}, 0},
    {"token lists: websocket among others, any case", "RFC 9110 §5.6.1",
     GET, 1,
     {{"Upgrade", "h2c, WebSocket"}, {"Connection", "keep-alive,  UPGRADE "},
      VER, K}, 0},
    {"empty list elements are skipped", "RFC 9110 §5.6.1", GET, 1,
     {{"Upgrade", ", ,websocket,"}, {"Connection", ",upgrade"}, VER, K}, 0},
    /* Conformance audit: only the first Connection field was read. */
    {"Connection split over two lines is one list", "RFC 9110 §5.3", GET, 1,
     {UP, {"Connection", "keep-alive"}, {"Connection", "Upgrade"}, VER, K},
     0},
    {"Upgrade split over two lines is one list", "RFC 9110 §5.3", GET, 1,
     {{"Upgrade", "h2c"}, {"Upgrade", "websocket"}, CONN, VER, K}, 0},
    {"POST is refused", "RFC 6455 §4.1", WISP_METHOD_POST, 1,
     {UP, CONN, VER, K}, 400},
    {"HTTP/1.0 is refused", "RFC 6455 §4.1", GET, 0, {UP, CONN, VER, K},
     400},
    {"absent Upgrade is a 400", "RFC 6455 §4.2.1", GET, 1, {CONN, VER, K},
     400},
    {"absent Connection is a 400", "RFC 6455 §4.2.1", GET, 1, {UP, VER, K},
     400},
    {"no fields at all is a 400", "RFC 6455 §4.2.1", GET, 1, {{NULL}}, 400},
    {"Upgrade without websocket", "RFC 6455 §4.2.1", GET, 1,
     {{"Upgrade", "h2c"}, CONN, VER, K}, 400},
    {"websocket as a prefix is not the token", "RFC 9110 §5.6.1", GET, 1,
     {{"Upgrade", "websockets"}, CONN, VER, K}, 400},
    {"Connection without upgrade", "RFC 6455 §4.2.1", GET, 1,
     {UP, {"Connection", "keep-alive"}, VER, K}, 400},
    {"version 8 asks for 13 (426)", "RFC 6455 §4.4", GET, 1,
     {UP, CONN, {"Sec-WebSocket-Version", "8"}, K}, 426},
    {"absent version is a 426", "RFC 6455 §4.4", GET, 1, {UP, CONN, K}, 426},
    {"version 013 is not 13", "RFC 6455 §4.4", GET, 1,
     {UP, CONN, {"Sec-WebSocket-Version", "013"}, K}, 426},
    {"two version fields are a 400", "RFC 6455 §11.3.5", GET, 1,
     {UP, CONN, VER, VER, K}, 400},
    {"absent key", "RFC 6455 §4.2.1", GET, 1, {UP, CONN, VER}, 400},
    {"two key fields are a 400", "RFC 6455 §11.3.1", GET, 1,
     {UP, CONN, VER, K, K}, 400},
    {"key of 15 bytes", "RFC 6455 §4.2.1", GET, 1,
     {UP, CONN, VER, {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ="}}, 400},
    {"key with non-zero pad bits", "RFC 4648 §3.5", GET, 1,
     {UP, CONN, VER, {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZR=="}}, 400},
    {"key of 18 bytes (24 characters, no padding)", "RFC 6455 §4.2.1", GET,
     1, {UP, CONN, VER, {"Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAAA"}},
     400},
};

int main(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row *r = &rows[i];
        wisp__header h[MAXF];
        t_guard g[2 * MAXF];
        uint32_t n = 0;
        for (; n < MAXF && r->f[n][0]; n++) {
            size_t nl = strlen(r->f[n][0]), vl = strlen(r->f[n][1]);
            g[2 * n] = t_guard_copy(r->f[n][0], nl);
            g[2 * n + 1] = t_guard_copy(r->f[n][1], vl);
            h[n] = (wisp__header){g[2 * n].data, g[2 * n + 1].data,
                                  (uint32_t)nl, (uint32_t)vl};
        }
        wisp_str_t key;
        int got = wisp__ws_check_request(r->method, r->minor, h, n, &key);
        CHECK_MSG(got == r->want, "%s (%s): got %d, want %d", r->name,
                  r->ref, got, r->want);
        if (got == 0)
            CHECK_STRN(key.ptr, key.len, KEY);
        else
            CHECK(key.ptr == NULL && key.len == 0);
        for (uint32_t k = 0; k < 2 * n; k++)
            t_guard_free(&g[k]);
    }

    /* An absent field is {NULL, 0}; walking it did NULL + 0 (undefined
     * behaviour, found by fuzz_ws_handshake). The answer was right all
     * the same; clang's UBSan (pointer-overflow) reports the old code,
     * GCC's does not, and the fuzz target's seeds (requests without
     * these fields) catch it in every clang build with -Dfuzz. */
    wisp_str_t absent = {NULL, 0};
    CHECK(!wisp__ws_has_token(absent, "upgrade"));

    char acc[WISP__WS_ACCEPT_LEN + 1];
    wisp__ws_accept_key(KEY, 24, acc);
    CHECK(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
    return t_done("ws_handshake");
}
