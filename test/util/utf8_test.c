/* Tests of src/util/utf8.c, the incremental fail-fast UTF-8 validator.
 *
 * The rows follow the Autobahn TestSuite's case 6 (UTF-8 handling), which
 * itself follows Markus Kuhn's UTF-8 decoder stress test. Each row gives
 * the index of the byte at which the input becomes impossible (NEVER for
 * valid input) and whether valid input ends inside a code point. Each row
 * is fed whole, byte by byte, and in two pieces cut at every offset, each
 * piece ending right before a PROT_NONE page; BAD must appear exactly at
 * the expected byte, and stay. A reference validator written straight
 * from RFC 3629's definition then checks every 1-, 2- and 3-byte input and
 * a large sample of 4-byte ones, and the ASCII fast path is checked with
 * the bad byte at every offset of a long ASCII run. */
#include "util/utf8.h"

#include <stdint.h>

#include "../test.h"

#define IN(s) .in = (s), .in_len = sizeof(s) - 1
#define NEVER (-1)

typedef struct row {
    const char *name;
    const char *ref; /* the Autobahn case, or the RFC section */
    const char *in;
    size_t in_len;
    int bad_at;  /* index of the byte that makes it invalid, or NEVER */
    int partial; /* valid so far but ends inside a code point */
} row;

static const row rows[] = {
    /* 6.1, 6.2: empty and plain payloads. */
    {"empty payload", "Autobahn 6.1.1", IN(""), NEVER},
    {"ASCII text", "Autobahn 6.2", IN("Hello-\x7f-world \x01\t\r\n"), NEVER},
    {"NUL bytes are valid", "RFC 3629 §4", IN("a\0b\0"), NEVER},

    /* 6.3, 6.4: the Greek word "kosme" and fail-fast inside a message. */
    {"\"κόσμε\"", "Autobahn 6.3.1",
     IN("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"), NEVER},
    {"\"κόσμε\" then a surrogate, fails at ED A0", "Autobahn 6.3.2",
     IN("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
        "edited"),
     12},
    {"\"κόσμε\" then F4 90, fails at 90 though more follows",
     "Autobahn 6.4.1",
     IN("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80"
        "edited"),
     12},
    {"\"κόσμε\" then F4 90 80 80 split mid-sequence", "Autobahn 6.4.2",
     IN("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90"), 12},
    {"\"κόσμε\" then a 5-byte form, fails at its lead", "Autobahn 6.4.3",
     IN("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf8\x88\x80\x80\x80"),
     11},

    /* 6.5, 6.6: single characters and prefixes of "κόσμε". */
    {"2-byte character", "Autobahn 6.5.1", IN("\xce\xba"), NEVER},
    {"3-byte character", "Autobahn 6.5.1", IN("\xe1\xbd\xb9"), NEVER},
    {"4-byte character (U+1F600)", "RFC 3629 §3", IN("\xf0\x9f\x98\x80"),
     NEVER},
    {"prefix: lead of a 2-byte character only", "Autobahn 6.6.1",
     IN("\xce"), NEVER, 1},
    {"prefix: 2 of 3 bytes", "Autobahn 6.6.3", IN("\xce\xba\xe1\xbd"),
     NEVER, 1},
    {"prefix: lead of a 3-byte character only", "Autobahn 6.6.2",
     IN("\xce\xba\xe1"), NEVER, 1},
    {"prefix: 3 of 4 bytes", "RFC 3629 §3", IN("\xf0\x9f\x98"), NEVER, 1},
    {"prefix: F4 8F BF", "RFC 3629 §3", IN("\xf4\x8f\xbf"), NEVER, 1},

    /* 6.7: first possible sequence of each length. */
    {"U+0000", "Autobahn 6.7.1", IN("\0"), NEVER},
    {"U+0080", "Autobahn 6.7.2", IN("\xc2\x80"), NEVER},
    {"U+0800", "Autobahn 6.7.3", IN("\xe0\xa0\x80"), NEVER},
    {"U+10000", "Autobahn 6.7.4", IN("\xf0\x90\x80\x80"), NEVER},

    /* 6.8: first 5- and 6-byte forms, outside RFC 3629. */
    {"5-byte form F8 88 80 80 80 fails at its lead", "Autobahn 6.8.1",
     IN("\xf8\x88\x80\x80\x80"), 0},
    {"6-byte form FC 84 80 80 80 80 fails at its lead", "Autobahn 6.8.2",
     IN("\xfc\x84\x80\x80\x80\x80"), 0},

    /* 6.9: last possible sequence of each length. */
    {"U+007F", "Autobahn 6.9.1", IN("\x7f"), NEVER},
    {"U+07FF", "Autobahn 6.9.2", IN("\xdf\xbf"), NEVER},
    {"U+FFFF", "Autobahn 6.9.3", IN("\xef\xbf\xbf"), NEVER},
    {"U+10FFFF", "Autobahn 6.9.4", IN("\xf4\x8f\xbf\xbf"), NEVER},

    /* 6.10: last 4-, 5-, 6-byte forms of the old encoding. */
    {"F7 BF BF BF (U+1FFFFF) fails at its lead", "Autobahn 6.10.1",
     IN("\xf7\xbf\xbf\xbf"), 0},
    {"FB BF BF BF BF fails at its lead", "Autobahn 6.10.2",
     IN("\xfb\xbf\xbf\xbf\xbf"), 0},
    {"FD BF BF BF BF BF fails at its lead", "Autobahn 6.10.3",
     IN("\xfd\xbf\xbf\xbf\xbf\xbf"), 0},

    /* 6.11: other boundary conditions. */
    {"U+D7FF, last before the surrogates", "Autobahn 6.11.1",
     IN("\xed\x9f\xbf"), NEVER},
    {"U+E000, first after the surrogates", "Autobahn 6.11.2",
     IN("\xee\x80\x80"), NEVER},
    {"U+FFFD", "Autobahn 6.11.3", IN("\xef\xbf\xbd"), NEVER},
    {"U+10FFFF again", "Autobahn 6.11.4", IN("\xf4\x8f\xbf\xbf"), NEVER},
    {"U+110000 (F4 90 80 80) fails at 90", "Autobahn 6.11.5",
     IN("\xf4\x90\x80\x80"), 1},
    {"F4 BF BF BF fails at BF", "RFC 3629 §4", IN("\xf4\xbf\xbf\xbf"), 1},
    {"F5 (above U+10FFFF) fails at once", "RFC 3629 §4",
     IN("\xf5\x80\x80\x80"), 0},
    {"F6 fails at once", "RFC 3629 §4", IN("\xf6"), 0},

    /* 6.12: unexpected continuation bytes. */
    {"lone 80", "Autobahn 6.12.1", IN("\x80"), 0},
    {"lone BF", "Autobahn 6.12.2", IN("\xbf"), 0},
    {"80 BF", "Autobahn 6.12.3", IN("\x80\xbf"), 0},
    {"80 BF 80", "Autobahn 6.12.4", IN("\x80\xbf\x80"), 0},
    {"continuation after ASCII", "Autobahn 6.12.1", IN("abc\x80"), 3},
    {"continuation after a complete 2-byte character", "Autobahn 6.12.5",
     IN("\xc2\x80\x80"), 2},
    {"continuation after a complete 4-byte character", "Autobahn 6.12.6",
     IN("\xf0\x90\x80\x80\xbf"), 4},
    {"all 64 continuation bytes", "Autobahn 6.12.8",
     IN("\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f"
        "\x90\x91\x92\x93\x94\x95\x96\x97\x98\x99\x9a\x9b\x9c\x9d\x9e\x9f"
        "\xa0\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9\xaa\xab\xac\xad\xae\xaf"
        "\xb0\xb1\xb2\xb3\xb4\xb5\xb6\xb7\xb8\xb9\xba\xbb\xbc\xbd\xbe\xbf"),
     0},

    /* 6.13: lonely start characters followed by a space. */
    {"C2 then a space fails at the space", "Autobahn 6.13.1",
     IN("\xc2\x20"), 1},
    {"DF then a space fails at the space", "Autobahn 6.13.1",
     IN("\xdf\x20"), 1},
    {"E1 then a space fails at the space", "Autobahn 6.13.2",
     IN("\xe1\x20"), 1},
    {"E0 then a space fails at the space", "Autobahn 6.13.2",
     IN("\xe0\x20"), 1},
    {"F1 then a space fails at the space", "Autobahn 6.13.3",
     IN("\xf1\x20"), 1},
    {"F0 then a space fails at the space", "Autobahn 6.13.3",
     IN("\xf0\x20"), 1},
    {"F8 then a space fails at F8", "Autobahn 6.13.4", IN("\xf8\x20"), 0},
    {"FC then a space fails at FC", "Autobahn 6.13.5", IN("\xfc\x20"), 0},

    /* 6.14, 6.15: sequences with the last continuation byte missing. */
    {"truncated 2-byte at the end is incomplete", "Autobahn 6.14.2",
     IN("\xdf"), NEVER, 1},
    {"truncated 3-byte at the end is incomplete", "Autobahn 6.14.3",
     IN("\xef\xbf"), NEVER, 1},
    {"truncated 4-byte at the end is incomplete", "Autobahn 6.14.4",
     IN("\xf3\xbf\xbf"), NEVER, 1},
    {"truncated 2-byte then ASCII fails at the ASCII", "Autobahn 6.14",
     IN("\xc2\x41"), 1},
    {"truncated 3-byte then ASCII fails at the ASCII", "Autobahn 6.14",
     IN("\xe1\x80\x41"), 2},
    {"truncated 4-byte then ASCII fails at the ASCII", "Autobahn 6.14",
     IN("\xf1\x80\x80\x41"), 3},
    {"truncated 3-byte then a new lead fails at the lead", "Autobahn 6.15.1",
     IN("\xe1\x80\xc2\x80"), 2},
    {"truncated 2-byte then a new lead fails at the lead", "Autobahn 6.15.1",
     IN("\xdf\xef\xbf"), 1},
    {"overlong C0 (truncated) fails at once", "Autobahn 6.14.1", IN("\xc0"),
     0},
    {"E0 80 (truncated overlong) fails at 80", "Autobahn 6.14.2",
     IN("\xe0\x80"), 1},
    {"F0 80 80 (truncated overlong) fails at the first 80",
     "Autobahn 6.14.3", IN("\xf0\x80\x80"), 1},
    {"F7 BF BF (truncated) fails at its lead", "Autobahn 6.14.9",
     IN("\xf7\xbf\xbf"), 0},
    {"concatenated incomplete sequences fail at the second lead",
     "Autobahn 6.15.1",
     IN("\xc0\xe0\x80\xf0\x80\x80\xf8\x80\x80\x80\xfc\x80\x80\x80\x80\xdf"
        "\xef\xbf\xf7\xbf\xbf\xfb\xbf\xbf\xbf\xfd\xbf\xbf\xbf\xbf"),
     0},

    /* 6.16: bytes that never appear. */
    {"FE", "Autobahn 6.16.1", IN("\xfe"), 0},
    {"FF", "Autobahn 6.16.2", IN("\xff"), 0},
    {"FE FE FF FF", "Autobahn 6.16.3", IN("\xfe\xfe\xff\xff"), 0},
    {"FF after valid text", "Autobahn 6.16", IN("ok \xce\xba \xff"), 6},

    /* 6.17: overlong forms of '/'. */
    {"overlong '/' C0 AF fails at C0", "Autobahn 6.17.1", IN("\xc0\xaf"), 0},
    {"overlong '/' E0 80 AF fails at 80", "Autobahn 6.17.2",
     IN("\xe0\x80\xaf"), 1},
    {"overlong '/' F0 80 80 AF fails at 80", "Autobahn 6.17.3",
     IN("\xf0\x80\x80\xaf"), 1},
    {"overlong '/' F8 80 80 80 AF fails at F8", "Autobahn 6.17.4",
     IN("\xf8\x80\x80\x80\xaf"), 0},
    {"overlong '/' FC 80 80 80 80 AF fails at FC", "Autobahn 6.17.5",
     IN("\xfc\x80\x80\x80\x80\xaf"), 0},

    /* 6.18: maximum overlong sequences. */
    {"overlong U+007F C1 BF fails at C1", "Autobahn 6.18.1", IN("\xc1\xbf"),
     0},
    {"overlong U+07FF E0 9F BF fails at 9F", "Autobahn 6.18.2",
     IN("\xe0\x9f\xbf"), 1},
    {"overlong U+FFFF F0 8F BF BF fails at 8F", "Autobahn 6.18.3",
     IN("\xf0\x8f\xbf\xbf"), 1},
    {"overlong F8 87 BF BF BF fails at F8", "Autobahn 6.18.4",
     IN("\xf8\x87\xbf\xbf\xbf"), 0},
    {"overlong FC 83 BF BF BF BF fails at FC", "Autobahn 6.18.5",
     IN("\xfc\x83\xbf\xbf\xbf\xbf"), 0},

    /* 6.19: overlong NUL. */
    {"overlong NUL C0 80 fails at C0", "Autobahn 6.19.1", IN("\xc0\x80"), 0},
    {"overlong NUL E0 80 80 fails at 80", "Autobahn 6.19.2",
     IN("\xe0\x80\x80"), 1},
    {"overlong NUL F0 80 80 80 fails at 80", "Autobahn 6.19.3",
     IN("\xf0\x80\x80\x80"), 1},
    {"overlong NUL F8 80 80 80 80 fails at F8", "Autobahn 6.19.4",
     IN("\xf8\x80\x80\x80\x80"), 0},
    {"overlong NUL FC 80 80 80 80 80 fails at FC", "Autobahn 6.19.5",
     IN("\xfc\x80\x80\x80\x80\x80"), 0},

    /* 6.20, 6.21: UTF-16 surrogates, single and paired. */
    {"U+D800 (ED A0 80) fails at A0", "Autobahn 6.20.1", IN("\xed\xa0\x80"),
     1},
    {"U+DB7F (ED AD BF) fails at AD", "Autobahn 6.20.2", IN("\xed\xad\xbf"),
     1},
    {"U+DB80 (ED AE 80) fails at AE", "Autobahn 6.20.3", IN("\xed\xae\x80"),
     1},
    {"U+DBFF (ED AF BF) fails at AF", "Autobahn 6.20.4", IN("\xed\xaf\xbf"),
     1},
    {"U+DC00 (ED B0 80) fails at B0", "Autobahn 6.20.5", IN("\xed\xb0\x80"),
     1},
    {"U+DF80 (ED BE 80) fails at BE", "Autobahn 6.20.6", IN("\xed\xbe\x80"),
     1},
    {"U+DFFF (ED BF BF) fails at BF", "Autobahn 6.20.7", IN("\xed\xbf\xbf"),
     1},
    {"ED A0 alone fails at A0", "RFC 3629 §3", IN("\xed\xa0"), 1},
    {"paired surrogates U+D800 U+DC00 fail at the first A0",
     "Autobahn 6.21.1", IN("\xed\xa0\x80\xed\xb0\x80"), 1},
    {"paired surrogates U+DBFF U+DFFF fail at the first AF",
     "Autobahn 6.21.8", IN("\xed\xaf\xbf\xed\xbf\xbf"), 1},

    /* 6.22: noncharacters are valid UTF-8. */
    {"U+FFFE", "Autobahn 6.22.1", IN("\xef\xbf\xbe"), NEVER},
    {"U+FFFF", "Autobahn 6.22.2", IN("\xef\xbf\xbf"), NEVER},
    {"U+1FFFE", "Autobahn 6.22.3", IN("\xf0\x9f\xbf\xbe"), NEVER},
    {"U+10FFFE", "Autobahn 6.22.33", IN("\xf4\x8f\xbf\xbe"), NEVER},
    {"U+FDD0", "Autobahn 6.22.34", IN("\xef\xb7\x90"), NEVER},

    /* 6.23: special characters. */
    {"U+FFFD replacement character", "Autobahn 6.23.1", IN("\xef\xbf\xbd"),
     NEVER},
    {"U+FEFF byte order mark", "Autobahn 6.23.2", IN("\xef\xbb\xbf"),
     NEVER},
    {"U+FEFF then text", "Autobahn 6.23.3", IN("\xef\xbb\xbf" "abc"), NEVER},

    /* Fast path: the bad byte after whole 8-byte ASCII words. */
    {"bad byte after 8 ASCII bytes", "RFC 3629 §4", IN("12345678\xff"), 8},
    {"bad byte after 15 ASCII bytes", "RFC 3629 §4",
     IN("123456789abcdef\x80xyz"), 15},
    {"bad byte after 16 ASCII bytes then more ASCII", "RFC 3629 §4",
     IN("0123456789abcdef\xc0" "0123456789abcdef"), 16},
    {"valid characters between ASCII words", "RFC 3629 §4",
     IN("0123456789\xc2\xa9" "0123456789abcdef\xe2\x82\xac" "01234567"
        "\xf0\x9f\x98\x80" "0123456789abcdefg"),
     NEVER},
    {"sequence truncated by ASCII after a long run", "RFC 3629 §4",
     IN("0123456789abcdef\xe2\x82" "0123456789abcdef"), 18},
};

static int feed(wisp__utf8 *u, const char *p, size_t len)
{
    t_guard g = t_guard_copy(p, len);
    int rc = wisp__utf8_feed(u, g.data, len);
    t_guard_free(&g);
    return rc;
}

static void test_row(const row *r)
{
    int want = r->bad_at == NEVER ? WISP__UTF8_OK : WISP__UTF8_BAD;
    int complete = r->bad_at == NEVER && !r->partial;
    wisp__utf8 u;

    /* Whole. */
    wisp__utf8_init(&u);
    int rc = feed(&u, r->in, r->in_len);
    CHECK_MSG(rc == want && wisp__utf8_complete(&u) == complete,
              "%s (%s): whole: rc %d complete %d", r->name, r->ref, rc,
              wisp__utf8_complete(&u));

    /* Byte by byte: the first BAD is at bad_at, and BAD stays. */
    wisp__utf8_init(&u);
    int first_bad = NEVER;
    for (size_t i = 0; i < r->in_len; i++) {
        rc = feed(&u, r->in + i, 1);
        if (rc == WISP__UTF8_BAD && first_bad == NEVER)
            first_bad = (int)i;
        if (first_bad != NEVER && rc != WISP__UTF8_BAD)
            first_bad = -2; /* BAD did not stay */
    }
    CHECK_MSG(first_bad == r->bad_at && wisp__utf8_complete(&u) == complete,
              "%s (%s): byte by byte: BAD at %d, want %d", r->name, r->ref,
              first_bad, r->bad_at);
    if (r->bad_at != NEVER)
        CHECK_EQ_INT(wisp__utf8_feed(&u, "a", 1), WISP__UTF8_BAD);

    /* Two pieces cut at every offset: the first piece is BAD exactly when
     * it contains the bad byte; an empty piece changes nothing. */
    int cut_errors = 0;
    for (size_t cut = 0; cut <= r->in_len; cut++) {
        int want1 = r->bad_at != NEVER && (size_t)r->bad_at < cut
                        ? WISP__UTF8_BAD
                        : WISP__UTF8_OK;
        wisp__utf8_init(&u);
        int rc1 = feed(&u, r->in, cut);
        int rc2 = feed(&u, r->in + cut, r->in_len - cut);
        if (rc1 != want1 || rc2 != want ||
            wisp__utf8_complete(&u) != complete) {
            cut_errors++;
            fprintf(stderr, "%s: cut at %zu: rc %d, %d\n", r->name, cut,
                    rc1, rc2);
        }
    }
    CHECK_MSG(cut_errors == 0, "%s (%s): cuts", r->name, r->ref);
}

/* A reference written straight from RFC 3629 §3-4, for the exhaustive
 * comparison: the index of the first byte after which no continuation
 * can give a valid sequence (NEVER if none), and in *partial whether the
 * valid input ends inside a code point. A prefix is viable when the code
 * points it can still complete to, an interval [lo, hi], include one that
 * is in range for its length and not a surrogate. */
static int ref_check(const uint8_t *s, size_t len, int *partial)
{
    size_t i = 0;
    *partial = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t lo, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC0 && c < 0xE0) {
            n = 2, lo = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c < 0xF0) {
            n = 3, lo = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c < 0xF8) {
            n = 4, lo = c & 0x07, min = 0x10000;
        } else {
            return (int)i; /* a continuation byte, or F8..FF */
        }
        for (size_t k = 0; k < n; k++) {
            if (k > 0) {
                if (i + k == len) {
                    *partial = 1;
                    return NEVER;
                }
                if ((s[i + k] & 0xC0) != 0x80)
                    return (int)(i + k);
                lo = lo << 6 | (s[i + k] & 0x3F);
            }
            unsigned rest = 6 * (unsigned)(n - 1 - k);
            uint32_t from = lo << rest, to = from | ((1u << rest) - 1);
            if (from < min)
                from = min;
            if (to > 0x10FFFF)
                to = 0x10FFFF;
            int viable = from <= to && !(from >= 0xD800 && to <= 0xDFFF);
            if (!viable)
                return (int)(i + k);
        }
        i += n;
    }
    return NEVER;
}

/* Compare with the reference: whole, and byte by byte for the index. */
static int compare(const uint8_t *s, size_t len)
{
    int partial;
    int bad_at = ref_check(s, len, &partial);
    wisp__utf8 u;
    wisp__utf8_init(&u);
    int rc = wisp__utf8_feed(&u, s, len);
    if (rc != (bad_at == NEVER ? WISP__UTF8_OK : WISP__UTF8_BAD))
        return 1;
    if (bad_at == NEVER && wisp__utf8_complete(&u) != !partial)
        return 1;
    wisp__utf8_init(&u);
    for (size_t i = 0; i < len; i++) {
        rc = wisp__utf8_feed(&u, s + i, 1);
        if ((rc == WISP__UTF8_BAD) != (bad_at != NEVER && (int)i >= bad_at))
            return 1;
    }
    return 0;
}

static void test_exhaustive(void)
{
    static const uint8_t tails[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90,
                                    0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xE0,
                                    0xED, 0xF0, 0xF4, 0xFF};
    uint8_t s[4];
    int mismatches = 0;
    for (unsigned a = 0; a < 256; a++) {
        s[0] = (uint8_t)a;
        mismatches += compare(s, 1);
        for (unsigned b = 0; b < 256; b++) {
            s[1] = (uint8_t)b;
            mismatches += compare(s, 2);
            for (unsigned c = 0; c < 256; c++) {
                s[2] = (uint8_t)c;
                mismatches += compare(s, 3);
                if (a < 0xF0 || a > 0xF8)
                    continue;
                /* 4-byte leads: every second and third byte, a sample of
                 * fourth bytes. */
                for (size_t d = 0; d < sizeof tails; d++) {
                    s[3] = tails[d];
                    mismatches += compare(s, 4);
                }
            }
        }
    }
    CHECK_EQ_INT(mismatches, 0);
}

/* The ASCII fast path must not skip a bad byte or a lead byte at any
 * offset or alignment: a 68-byte ASCII run, at each start alignment, with
 * a sequence written over it at each offset up to 64. */
static void test_fast_path(void)
{
    static const struct {
        const char *bytes;
        size_t len;
        int bad_off; /* offset of the bad byte from the insert, or NEVER */
    } inserts[] = {
        {"\x80", 1, 0},           {"\xff", 1, 0},
        {"\xc2\xa9", 2, NEVER},   {"\xe2\x82\xac", 3, NEVER},
        {"\xf0\x9f\x98\x80", 4, NEVER}, {"\xe2\x82", 2, 2},
        {"\xed\xa0\x80", 3, 1},
    };
    int errors = 0;
    for (size_t k = 0; k < sizeof inserts / sizeof inserts[0]; k++) {
        for (size_t off = 0; off <= 64; off++) {
            for (size_t start = 0; start < 8; start++) {
                char buf[8 + 68];
                memset(buf, 'a', sizeof buf);
                memcpy(buf + start + off, inserts[k].bytes, inserts[k].len);
                size_t len = 68;
                const char *p = buf + start;
                int want = inserts[k].bad_off == NEVER
                               ? NEVER
                               : (int)off + inserts[k].bad_off;
                int got = NEVER;
                wisp__utf8 u;
                wisp__utf8_init(&u);
                t_guard g = t_guard_copy(p, len);
                if (wisp__utf8_feed(&u, g.data, len) != WISP__UTF8_OK)
                    got = -2;
                t_guard_free(&g);
                /* Find the index by growing prefixes. */
                for (size_t n = 1; n <= len && got != NEVER; n++) {
                    wisp__utf8_init(&u);
                    if (wisp__utf8_feed(&u, p, n) == WISP__UTF8_BAD) {
                        got = (int)n - 1;
                        break;
                    }
                }
                if (got != want ||
                    (want == NEVER && !wisp__utf8_complete(&u)))
                    errors++;
            }
        }
    }
    CHECK_EQ_INT(errors, 0);
}

/* A long text mixing scripts, ASCII runs of every length and 4-byte
 * characters, fed whole and in pieces of varying sizes; the same text
 * with a surrogate inserted fails exactly there. */
static void test_long_text(void)
{
    static const char *parts[] = {
        "Hello, world! ", "κόσμε ", "Здравствуй, мир. ", "こんにちは世界 ",
        "😀🚀 ", "\xf4\x8f\xbf\xbf", "a", "ab", "abcdefghijklmnopqrstuvw",
        "\xef\xbb\xbf", "Ünïcödé ", "\xc2\x80\xdf\xbf\xe0\xa0\x80", "\n",
    };
    size_t n = sizeof parts / sizeof parts[0];
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (size_t i = 0; len + 64 < cap; i++) {
        const char *s = parts[(i * 7) % n];
        memcpy(buf + len, s, strlen(s));
        len += strlen(s);
    }

    wisp__utf8 u;
    wisp__utf8_init(&u);
    t_guard g = t_guard_copy(buf, len);
    CHECK_EQ_INT(wisp__utf8_feed(&u, g.data, len), WISP__UTF8_OK);
    CHECK(wisp__utf8_complete(&u));
    t_guard_free(&g);

    wisp__utf8_init(&u);
    int rc = WISP__UTF8_OK;
    for (size_t off = 0, step = 1; off < len; step = step % 37 + 1) {
        size_t m = step < len - off ? step : len - off;
        rc |= wisp__utf8_feed(&u, buf + off, m);
        off += m;
    }
    CHECK_EQ_INT(rc, WISP__UTF8_OK);
    CHECK(wisp__utf8_complete(&u));

    /* Put ED A0 80 right after the first code point boundary past the
     * middle; it must fail at the A0. */
    size_t at = len / 2;
    while (((unsigned char)buf[at] & 0xC0) == 0x80)
        at++;
    memcpy(buf + at, "\xed\xa0\x80", 3);
    int got = NEVER;
    wisp__utf8_init(&u);
    for (size_t i = 0; i < len && got == NEVER; i++)
        if (wisp__utf8_feed(&u, buf + i, 1) == WISP__UTF8_BAD)
            got = (int)i;
    CHECK_EQ_INT(got, at + 1);
    wisp__utf8_init(&u);
    CHECK_EQ_INT(wisp__utf8_feed(&u, buf, at + 1), WISP__UTF8_OK);
    CHECK_EQ_INT(wisp__utf8_feed(&u, buf + at + 1, 1), WISP__UTF8_BAD);
    free(buf);
}

int main(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        test_row(&rows[i]);
    test_exhaustive();
    test_fast_path();
    test_long_text();
    return t_done("utf8");
}
