/* Tests of src/ws/handshake.c: the opening handshake's request checks
 * (RFC 6455 §4.2.1), the token lists they read (RFC 9110 §5.6.1) and the
 * accept key (§4.2.2). Field values are copied to the end of a page
 * before a PROT_NONE one, so reading past a value faults. */
#include "ws/handshake.h"

#include "../test.h"
#include "wisp/http.h"

#define GET WISP_METHOD_GET
#define KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define ABSENT NULL

typedef struct row {
    const char *name;
    const char *ref;
    int method, minor;
    const char *upgrade, *connection, *version, *key; /* NULL: absent */
    int want;
} row;

static const row rows[] = {
    {"the RFC's sample request is accepted", "RFC 6455 §1.3", GET, 1,
     "websocket", "Upgrade", "13", KEY, 0},
    {"token lists: websocket among others, any case", "RFC 9110 §5.6.1",
     GET, 1, "h2c, WebSocket", "keep-alive,  UPGRADE ", "13", KEY, 0},
    {"empty list elements are skipped", "RFC 9110 §5.6.1", GET, 1,
     ", ,websocket,", ",upgrade", "13", KEY, 0},
    {"POST is refused", "RFC 6455 §4.1", WISP_METHOD_POST, 1, "websocket",
     "Upgrade", "13", KEY, 400},
    {"HTTP/1.0 is refused", "RFC 6455 §4.1", GET, 0, "websocket",
     "Upgrade", "13", KEY, 400},
    /* fuzz_ws_handshake: an absent field is {NULL, 0}, and walking it
     * did NULL + 0 (undefined behaviour). The answer was right all the
     * same; clang's UBSan (pointer-overflow) reports it, GCC's does not,
     * so these rows fail under a clang -fsanitize=undefined build, and
     * the fuzz target's seeds (requests without these fields) catch it
     * in every clang build with -Dfuzz. */
    {"absent Upgrade is a 400, without UB", "RFC 6455 §4.2.1", GET, 1,
     ABSENT, "Upgrade", "13", KEY, 400},
    {"absent Connection is a 400, without UB", "RFC 6455 §4.2.1", GET, 1,
     "websocket", ABSENT, "13", KEY, 400},
    {"everything absent is a 400", "RFC 6455 §4.2.1", GET, 1, ABSENT,
     ABSENT, ABSENT, ABSENT, 400},
    {"Upgrade without websocket", "RFC 6455 §4.2.1", GET, 1, "h2c",
     "Upgrade", "13", KEY, 400},
    {"websocket as a prefix is not the token", "RFC 9110 §5.6.1", GET, 1,
     "websockets", "Upgrade", "13", KEY, 400},
    {"Connection without upgrade", "RFC 6455 §4.2.1", GET, 1, "websocket",
     "keep-alive", "13", KEY, 400},
    {"version 8 asks for 13 (426)", "RFC 6455 §4.4", GET, 1, "websocket",
     "Upgrade", "8", KEY, 426},
    {"absent version is a 426", "RFC 6455 §4.4", GET, 1, "websocket",
     "Upgrade", ABSENT, KEY, 426},
    {"version 013 is not 13", "RFC 6455 §4.4", GET, 1, "websocket",
     "Upgrade", "013", KEY, 426},
    {"absent key", "RFC 6455 §4.2.1", GET, 1, "websocket", "Upgrade", "13",
     ABSENT, 400},
    {"key of 15 bytes", "RFC 6455 §4.2.1", GET, 1, "websocket", "Upgrade",
     "13", "dGhlIHNhbXBsZSBub25jZQ=", 400},
    {"key with non-zero pad bits", "RFC 4648 §3.5", GET, 1, "websocket",
     "Upgrade", "13", "dGhlIHNhbXBsZSBub25jZR==", 400},
    {"key of 18 bytes (24 characters, no padding)", "RFC 6455 §4.2.1", GET,
     1, "websocket", "Upgrade", "13", "AAAAAAAAAAAAAAAAAAAAAAAA", 400},
};

/* Up to four guarded copies live at once, one per field. */
static t_guard guards[4];
static int nguards;

static wisp_str_t at_edge(const char *s)
{
    if (!s)
        return (wisp_str_t){NULL, 0};
    guards[nguards] = t_guard_copy(s, strlen(s));
    return (wisp_str_t){guards[nguards++].data, strlen(s)};
}

int main(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row *r = &rows[i];
        int got = wisp__ws_check_request(
            r->method, r->minor, at_edge(r->upgrade), at_edge(r->connection),
            at_edge(r->version), at_edge(r->key));
        CHECK_MSG(got == r->want, "%s (%s): got %d, want %d", r->name,
                  r->ref, got, r->want);
        while (nguards)
            t_guard_free(&guards[--nguards]);
    }
    char acc[WISP__WS_ACCEPT_LEN + 1];
    wisp__ws_accept_key(KEY, 24, acc);
    CHECK(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
    return t_done("ws_handshake");
}
