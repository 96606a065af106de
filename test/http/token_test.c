/* Tests of src/http/token.c: every one of the 256 entries of the byte
 * class table against the ABNF it stands for, written out here from the
 * RFCs' own definitions (not from the table):
 *
 *   RFC 9110 §5.6.2  tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*"
 *                          / "+" / "-" / "." / "^" / "_" / "`" / "|"
 *                          / "~" / DIGIT / ALPHA
 *   RFC 9110 §5.5    field-value bytes: field-vchar = VCHAR / obs-text,
 *                    SP and HTAB between them (OWS, inner whitespace)
 *                    obs-text = %x80-FF
 *   RFC 9112 §3.2    request-target: the URI forms of RFC 3986, all
 *                    made of visible ASCII (VCHAR = %x21-7E)
 *   RFC 3986 §2-3    unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
 *                    sub-delims = "!" / "$" / "&" / "'" / "(" / ")"
 *                               / "*" / "+" / "," / ";" / "="
 *                    pct-encoded = "%" HEXDIG HEXDIG
 *                    pchar = unreserved / pct-encoded / sub-delims
 *                          / ":" / "@"
 *                    path and query bytes: pchar / "/" / "?"
 *                    (the path of an origin-form target ends at '?')
 *                    (the table's URI and reg-name classes leave out the
 *                    '%' of pct-encoded: the parser reads the triplet)
 *                    reg-name = *( unreserved / pct-encoded / sub-delims )
 *   RFC 5234 B.1     DIGIT = %x30-39, ALPHA = %x41-5A / %x61-7A,
 *                    HEXDIG = DIGIT / "A"-"F" (case-insensitive in ABNF
 *                    strings, so "a"-"f" too), VCHAR = %x21-7E,
 *                    SP = %x20, HTAB = %x09 */
#include "http/token.h"

#include "../test.h"

static int abnf_digit(int c) { return c >= 0x30 && c <= 0x39; }
static int abnf_alpha(int c)
{
    return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}
static int abnf_vchar(int c) { return c >= 0x21 && c <= 0x7e; }
static int abnf_obs_text(int c) { return c >= 0x80 && c <= 0xff; }

static int abnf_tchar(int c)
{
    static const char specials[] = "!#$%&'*+-.^_`|~";
    if (abnf_digit(c) || abnf_alpha(c))
        return 1;
    for (const char *s = specials; *s; s++)
        if ((unsigned char)*s == c)
            return 1;
    return 0;
}

static int abnf_value_byte(int c)
{
    return abnf_vchar(c) || abnf_obs_text(c) || c == 0x20 || c == 0x09;
}

static int in(const char *set, int c)
{
    return c && strchr(set, c) != NULL;
}

/* reg-name bytes other than the '%' of pct-encoded, which the table
 * leaves to the parser (token.h). */
static int abnf_reg_name(int c)
{
    return abnf_alpha(c) || abnf_digit(c) || in("-._~", c) ||
           in("!$&'()*+,;=", c);
}

static int abnf_uri(int c)
{
    return abnf_reg_name(c) || in(":@/?", c);
}

static int abnf_hexdig(int c)
{
    return abnf_digit(c) || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

int main(void)
{
    int tchars = 0;
    for (int c = 0; c < 256; c++) {
        uint8_t v = wisp__http_chars[c];
        CHECK_MSG(!(v & WISP__HC_TCHAR) == !abnf_tchar(c), "tchar 0x%02x", c);
        CHECK_MSG(!wisp__is_tchar((unsigned char)c) == !abnf_tchar(c),
                  "wisp__is_tchar 0x%02x", c);
        CHECK_MSG(!(v & WISP__HC_VALUE) == !abnf_value_byte(c),
                  "value byte 0x%02x", c);
        CHECK_MSG(!(v & WISP__HC_TARGET) == !abnf_vchar(c),
                  "target byte 0x%02x", c);
        CHECK_MSG(!(v & WISP__HC_HEX) == !abnf_hexdig(c), "HEXDIG 0x%02x", c);
        CHECK_MSG(!(v & WISP__HC_URI) == !abnf_uri(c), "URI byte 0x%02x", c);
        CHECK_MSG(!(v & WISP__HC_REG) == !abnf_reg_name(c),
                  "reg-name byte 0x%02x", c);
        CHECK_MSG(!(v & WISP__HC_PATH) == !(abnf_uri(c) && c != '?'),
                  "path byte 0x%02x", c);
        CHECK_MSG(!(v & ~(WISP__HC_TCHAR | WISP__HC_VALUE | WISP__HC_TARGET |
                          WISP__HC_HEX | WISP__HC_URI | WISP__HC_REG |
                          WISP__HC_PATH)),
                  "unknown bit at 0x%02x", c);
        tchars += abnf_tchar(c);
    }
    /* 10 digits, 52 letters and the 15 specials. */
    CHECK_EQ_INT(tchars, 77);
    /* The delimiters of RFC 9110 §5.6.2 are not tchars, and nor are the
     * bytes that end a field name or a line. */
    static const char delims[] = "\"(),/:;<=>?@[\\]{} \t\r\n";
    for (const char *s = delims; *s; s++)
        CHECK_MSG(!wisp__is_tchar((unsigned char)*s), "delimiter '%c'", *s);
    CHECK(!(wisp__http_chars[0] & WISP__HC_VALUE));
    CHECK(!(wisp__http_chars['\r'] & WISP__HC_VALUE));
    CHECK(!(wisp__http_chars['\n'] & WISP__HC_VALUE));
    CHECK(!(wisp__http_chars[0x7f] & WISP__HC_VALUE));
    /* The bytes RFC 3986 leaves out of URIs altogether (§2, Appendix C)
     * and the gen-delims that cannot appear in a path or query. */
    static const char outside[] = "\"<>\\^`{|}#[] %";
    for (const char *s = outside; *s; s++)
        CHECK_MSG(!(wisp__http_chars[(unsigned char)*s] &
                    (WISP__HC_URI | WISP__HC_REG)),
                  "'%c' is no URI byte", *s);
    return t_done("http_token");
}
