/* The WebSocket opening handshake's checks and accept key (RFC 6455
 * §4.2.1, §4.2.2). */
#include "ws/handshake.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "util/base64.h"
#include "util/sha1.h"
#include "wisp/http.h"

int wisp__ws_has_token(wisp_str_t h, const char *token)
{
    /* An absent field is {NULL, 0}: no pointer arithmetic on it (NULL + 0
     * is undefined behaviour in C; fuzz_ws_handshake found it). */
    if (!h.ptr)
        return 0;
    size_t tl = strlen(token);
    const char *p = h.ptr, *end = h.ptr + h.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0)
            return 1;
    }
    return 0;
}

int wisp__ws_fields_have(const wisp__header *h, uint32_t n, const char *name,
                         const char *token)
{
    size_t nl = strlen(name);
    for (uint32_t i = 0; i < n; i++)
        if (h[i].name_len == nl && strncasecmp(h[i].name, name, nl) == 0 &&
            wisp__ws_has_token((wisp_str_t){h[i].value, h[i].value_len},
                               token))
            return 1;
    return 0;
}

/* The value of the first field named `name` ({NULL, 0} when there is
 * none); *count is set to the number of such fields. */
static wisp_str_t field(const wisp__header *h, uint32_t n, const char *name,
                        int *count)
{
    wisp_str_t v = {NULL, 0};
    size_t nl = strlen(name);
    *count = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (h[i].name_len != nl || strncasecmp(h[i].name, name, nl) != 0)
            continue;
        if (!(*count)++)
            v = (wisp_str_t){h[i].value, h[i].value_len};
    }
    return v;
}

int wisp__ws_check_request(int method, int minor, const wisp__header *h,
                           uint32_t n, wisp_str_t *key)
{
    int nver, nkey;
    *key = (wisp_str_t){NULL, 0};
    if (method != WISP_METHOD_GET || minor < 1)
        return 400;
    if (!wisp__ws_fields_have(h, n, "upgrade", "websocket") ||
        !wisp__ws_fields_have(h, n, "connection", "upgrade"))
        return 400;
    /* Each of these fields appears at most once (RFC 6455 §11.3.1,
     * §11.3.5). */
    wisp_str_t version = field(h, n, "sec-websocket-version", &nver);
    wisp_str_t k = field(h, n, "sec-websocket-key", &nkey);
    if (nver > 1 || nkey > 1)
        return 400;
    if (!version.ptr || version.len != 2 ||
        memcmp(version.ptr, "13", 2) != 0)
        return 426;
    uint8_t raw[24];
    if (!k.ptr || k.len != 24 || wisp__base64_decode(k.ptr, k.len, raw) != 16)
        return 400;
    *key = k;
    return 0;
}

void wisp__ws_accept_key(const char *key, size_t len,
                         char out[WISP__WS_ACCEPT_LEN + 1])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    wisp__sha1 s;
    uint8_t digest[20];
    wisp__sha1_init(&s);
    wisp__sha1_update(&s, key, len);
    wisp__sha1_update(&s, guid, sizeof guid - 1);
    wisp__sha1_final(&s, digest);
    size_t n = wisp__base64_encode(digest, sizeof digest, out);
    out[n] = 0;
}
