/* Content negotiation (src/http/negotiate.c): Accept with q-values and
 * specificity (RFC 9110 §12.5.1), Accept-Encoding weights (§12.5.3),
 * malformed elements skipped. Each row is fed whole and from a guarded
 * copy so that a read past the end faults. */
#include <string.h>

#include <wisp.h>

#include "test.h"

static const char *const offers[] = {"application/json", "text/html",
                                     "text/plain", NULL};

static const struct {
    const char *name;
    const char *accept; /* NULL: no header */
    int want;
} accept_rows[] = {
    {"no Accept accepts the first offer (§12.5.1)", NULL, 0},
    {"empty Accept accepts everything", "", 0},
    {"exact type wins", "text/html", 1},
    {"highest q wins", "text/html;q=0.5, text/plain;q=0.9", 2},
    {"ties go to the server's order", "text/plain, text/html", 1},
    {"type/* matches", "text/*", 1},
    {"*/* matches the first offer", "*/*", 0},
    {"more specific range overrides a wildcard's q",
     "text/*;q=0.1, text/plain, application/json;q=0.2", 2},
    {"q=0 refuses: not acceptable", "application/json;q=0", -ENOENT},
    {"q=0 on the exact type beats the wildcard",
     "*/*;q=0.8, application/json;q=0", 1},
    {"none acceptable", "image/png", -ENOENT},
    {"case-insensitive", "TEXT/HTML", 1},
    {"parameters other than q are ignored", "text/plain;charset=utf-8", 2},
    {"bad q (1.5) skips the element", "text/html;q=1.5, text/plain", 2},
    {"bad q (0.1234) skips the element", "text/html;q=0.1234, text/plain",
     2},
    {"q with spaces around ';'", "text/html ; q=0.2 , text/plain ; q=0.3",
     2},
    {"only malformed elements: accept all", "garbage, ;;;, ,", 0},
    {"a trailing ';' is harmless", "text/plain;", 2},
    {"empty list elements are skipped", ",,text/html,,", 1},
    {"q=1.000 is allowed", "text/html;q=1.000", 1},
    {"q=0.001 is still acceptable", "text/plain;q=0.001", 2},
};

static const struct {
    const char *name;
    const char *header; /* NULL: none */
    const char *coding;
    int want;
} enc_rows[] = {
    {"absent header: identity only", NULL, "identity", 1000},
    {"absent header: no gzip sent unasked", NULL, "gzip", 0},
    {"listed coding", "gzip, br", "br", 1000},
    {"weighted coding", "gzip;q=0.5, br;q=0.8", "gzip", 500},
    {"unlisted coding", "gzip", "br", 0},
    {"star covers the rest", "*;q=0.3", "br", 300},
    {"own entry beats the star", "*;q=0.3, br;q=0", "br", 0},
    {"identity acceptable when unlisted", "gzip", "identity", 1000},
    {"identity refused explicitly", "identity;q=0, *;q=0", "identity", 0},
    {"case-insensitive", "GZIP", "gzip", 1000},
    {"a bad q is skipped", "gzip;q=x", "gzip", 0},
    {"empty header: identity", "", "identity", 1000},
};

static const struct {
    const char *name;
    const char *header;
    const char *etag;
    int want;
} etag_rows[] = {
    {"strong equal", "\"abc\"", "\"abc\"", 1},
    {"weak comparison ignores W/ (§8.8.3.2)", "W/\"abc\"", "\"abc\"", 1},
    {"weak on our side too", "\"abc\"", "W/\"abc\"", 1},
    {"different tag", "\"abd\"", "\"abc\"", 0},
    {"list with a match", "\"x\", W/\"abc\" ,\"y\"", "\"abc\"", 1},
    {"star matches any", " * ", "\"abc\"", 1},
    {"comma inside an opaque tag", "\"a,b\"", "\"a,b\"", 1},
    {"unquoted tag is malformed", "abc", "\"abc\"", WISP_EPARSE},
    {"unterminated quote", "\"abc", "\"abc\"", WISP_EPARSE},
    {"junk after a tag", "\"abc\" x", "\"abc\"", WISP_EPARSE},
    {"lower-case w/ is not weak", "w/\"abc\"", "\"abc\"", WISP_EPARSE},
    {"empty header", "", "\"abc\"", WISP_EPARSE},
    {"control byte inside", "\"a\x01\"", "\"a\x01\"", WISP_EPARSE},
    {"our etag malformed", "\"abc\"", "abc", WISP_EPARSE},
};

int main(void)
{
    for (size_t i = 0; i < sizeof accept_rows / sizeof accept_rows[0];
         i++) {
        const char *a = accept_rows[i].accept;
        wisp_str_t h = {a, a ? strlen(a) : 0};
        int got = wisp_accept_choose(h, offers);
        CHECK_MSG(got == accept_rows[i].want, "%s: got %d",
                  accept_rows[i].name, got);
        if (a) {
            t_guard g = t_guard_copy(a, h.len);
            wisp_str_t gh = {g.data, h.len};
            CHECK_EQ_INT(wisp_accept_choose(gh, offers), got);
            t_guard_free(&g);
        }
    }
    static const char *const none[] = {NULL};
    CHECK_EQ_INT(wisp_accept_choose((wisp_str_t){"*/*", 3}, none), -EINVAL);
    CHECK_EQ_INT(wisp_accept_choose((wisp_str_t){"*/*", 3}, NULL), -EINVAL);

    for (size_t i = 0; i < sizeof enc_rows / sizeof enc_rows[0]; i++) {
        const char *a = enc_rows[i].header;
        wisp_str_t h = {a, a ? strlen(a) : 0};
        int got = wisp_accept_encoding_q(h, enc_rows[i].coding);
        CHECK_MSG(got == enc_rows[i].want, "%s: got %d", enc_rows[i].name,
                  got);
        if (a) {
            t_guard g = t_guard_copy(a, h.len);
            wisp_str_t gh = {g.data, h.len};
            CHECK_EQ_INT(wisp_accept_encoding_q(gh, enc_rows[i].coding),
                         got);
            t_guard_free(&g);
        }
    }
    CHECK_EQ_INT(wisp_accept_encoding_q((wisp_str_t){"gzip", 4}, NULL), 0);

    for (size_t i = 0; i < sizeof etag_rows / sizeof etag_rows[0]; i++) {
        const char *a = etag_rows[i].header;
        wisp_str_t h = {a, strlen(a)};
        int got = wisp_etag_match(h, etag_rows[i].etag);
        CHECK_MSG(got == etag_rows[i].want, "%s: got %d", etag_rows[i].name,
                  got);
        t_guard g = t_guard_copy(a, h.len);
        wisp_str_t gh = {g.data, h.len};
        CHECK_EQ_INT(wisp_etag_match(gh, etag_rows[i].etag), got);
        t_guard_free(&g);
    }
    CHECK_EQ_INT(wisp_etag_match((wisp_str_t){NULL, 0}, "\"a\""),
                 WISP_EPARSE);
    CHECK_EQ_INT(wisp_etag_match((wisp_str_t){"*", 1}, NULL), WISP_EPARSE);
    char e1[20], e2[20], e3[20];
    wisp_etag_of("hello", 5, e1);
    wisp_etag_of("hello", 5, e2);
    wisp_etag_of("hellp", 5, e3);
    CHECK(strcmp(e1, e2) == 0 && strcmp(e1, e3) != 0);
    CHECK_EQ_INT(strlen(e1), 18);
    CHECK_EQ_INT(wisp_etag_match((wisp_str_t){e1, strlen(e1)}, e2), 1);
    return t_done("http_negotiate");
}
