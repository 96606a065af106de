/* The strict JSON reader (RFC 8259): wisp_json_parse.
 *
 * One pass over the input, one token per value, no recursion and no stack:
 * while a container is open its token's `next` field holds the index of
 * the container around it (NONE at the top level), so closing a container
 * pops back to its parent in O(1) and nesting depth costs no memory. When
 * the container closes, `next` takes its final meaning (the first token
 * after the subtree) and its last child is marked WISP_JSON_F_LAST, found
 * by hopping over the children's subtrees. Every child is hopped over once,
 * by its own parent, so the whole parse stays linear in the input.
 *
 * The grammar is RFC 8259 §2 (structure and whitespace), §4 (objects),
 * §5 (arrays), §6 (numbers), §7 (strings) and §8.1 (UTF-8, no byte order
 * mark). Each scanner reads only below `end`: the input need not be
 * terminated, and the tests place it right before an unreadable page. */
#include <string.h>

#include "util/json_int.h"
#include "wisp/json.h"

#define NONE UINT32_MAX
#define DEFAULT_MAX_DEPTH 64

/* What the parser expects next, apart from whitespace. */
enum state {
    S_VALUE,          /* at the start, after ':' or after ',' in an array */
    S_VALUE_OR_CLOSE, /* after '[' */
    S_KEY,            /* after ',' in an object */
    S_KEY_OR_CLOSE,   /* after '{' */
    S_COLON,          /* after a key */
    S_COMMA_OR_CLOSE, /* after a value inside a container */
    S_DONE,           /* after the top-level value: only whitespace */
};

typedef struct parser {
    const uint8_t *src, *end;
    wisp_json_tok_t *toks;
    uint32_t n, cap;
    uint32_t open;  /* innermost open container, or NONE */
    uint32_t depth, max_depth;
    enum state state;
    const uint8_t *err_at; /* where a syntax error was seen */
} parser;

static int syntax(parser *ps, const uint8_t *at)
{
    ps->err_at = at;
    return WISP_EJSON_SYNTAX;
}

static int is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* RFC 8259 §2: ws = *( %x20 / %x09 / %x0A / %x0D ) */
static const uint8_t *skip_ws(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The 4 hex digits at p (p + 4 <= end checked by the caller), or -1. */
static long hex4(const uint8_t *p)
{
    long v = 0;
    for (int k = 0; k < 4; k++) {
        int h = hexval(p[k]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

/* An escape at p ('\\'). RFC 8259 §7 lists the escapes; a \u escape of a
 * UTF-16 surrogate must be a high one (D800..DBFF) followed at once by a
 * \u escape of a low one (DC00..DFFF): anything else would decode to a
 * lone surrogate, which is not a Unicode scalar value and has no UTF-8
 * form (RFC 3629 §3). Returns the byte after the escape, or NULL. */
static const uint8_t *scan_escape(parser *ps, const uint8_t *p)
{
    const uint8_t *end = ps->end;
    long cp, lo;

    if (end - p < 2) {
        syntax(ps, end);
        return NULL;
    }
    switch (p[1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r':
    case 't':
        return p + 2;
    case 'u':
        break;
    default:
        syntax(ps, p + 1);
        return NULL;
    }
    if (end - p < 6 || (cp = hex4(p + 2)) < 0) {
        syntax(ps, p);
        return NULL;
    }
    if (cp < 0xD800 || cp > 0xDFFF)
        return p + 6;
    if (cp >= 0xDC00) { /* a low surrogate with no high one before it */
        syntax(ps, p);
        return NULL;
    }
    if (end - p < 12 || p[6] != '\\' || p[7] != 'u' ||
        (lo = hex4(p + 8)) < 0xDC00 || lo > 0xDFFF) {
        syntax(ps, p);
        return NULL;
    }
    return p + 12;
}

/* A string's body from p (after the opening quote). Returns the closing
 * quote, or NULL. RFC 8259 §7: unescaped = %x20-21 / %x23-5B / %x5D-10FFFF,
 * in UTF-8 (§8.1). */
static const uint8_t *scan_string(parser *ps, const uint8_t *p,
                                  uint8_t *flags)
{
    const uint8_t *end = ps->end;

    while (p < end) {
        uint8_t c = *p;
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            p++;
        } else if (c == '"') {
            return p;
        } else if (c == '\\') {
            *flags |= WISP_JSON_F_ESCAPED;
            p = scan_escape(ps, p);
            if (!p)
                return NULL;
        } else if (c < 0x20) {
            syntax(ps, p);
            return NULL;
        } else {
            size_t n = wisp__json_utf8_seq(p, end);
            if (!n) {
                syntax(ps, p);
                return NULL;
            }
            p += n;
        }
    }
    syntax(ps, end); /* unterminated */
    return NULL;
}

/* RFC 8259 §6: number = [ minus ] int [ frac ] [ exp ]
 *   int = zero / ( digit1-9 *DIGIT ); frac = "." 1*DIGIT;
 *   exp = ("e" / "E") [ "-" / "+" ] 1*DIGIT
 * Returns the byte after the number, or NULL. What follows is the
 * caller's business: "01" stops after "0" and the '1' is then refused. */
static const uint8_t *scan_number(parser *ps, const uint8_t *p,
                                  uint8_t *flags)
{
    const uint8_t *end = ps->end;
    int integer = 1;

    if (*p == '-')
        p++;
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && is_digit(*p))
            p++;
    } else {
        syntax(ps, p);
        return NULL;
    }
    if (p < end && *p == '.') {
        p++;
        if (p == end || !is_digit(*p)) {
            syntax(ps, p);
            return NULL;
        }
        while (p < end && is_digit(*p))
            p++;
        integer = 0;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p)) {
            syntax(ps, p);
            return NULL;
        }
        while (p < end && is_digit(*p))
            p++;
        integer = 0;
    }
    if (integer)
        *flags |= WISP_JSON_F_INTEGER;
    return p;
}

/* A new token of `type` starting at `at`; its `next` is the token after
 * it, which stays true for scalars. */
static int new_tok(parser *ps, uint8_t type, const uint8_t *at, uint32_t *idx)
{
    if (ps->n == ps->cap)
        return -ENOBUFS;
    wisp_json_tok_t *t = &ps->toks[ps->n];
    t->type = type;
    t->flags = 0;
    t->_pad = 0;
    t->start = (uint32_t)(at - ps->src);
    t->len = 0;
    t->next = ps->n + 1;
    *idx = ps->n++;
    return 0;
}

static void after_value(parser *ps)
{
    ps->state = ps->open == NONE ? S_DONE : S_COMMA_OR_CLOSE;
}

/* A string token (a value, or a key when `key`) whose quote is at *pp. */
static int string_tok(parser *ps, const uint8_t **pp, int key)
{
    uint32_t i;
    int rc = new_tok(ps, WISP_JSON_STRING, *pp + 1, &i);
    if (rc < 0)
        return rc;
    uint8_t flags = key ? WISP_JSON_F_KEY : 0;
    const uint8_t *q = scan_string(ps, *pp + 1, &flags);
    if (!q)
        return WISP_EJSON_SYNTAX;
    ps->toks[i].flags = flags;
    ps->toks[i].len = (uint32_t)(q - (*pp + 1));
    *pp = q + 1;
    return 0;
}

static int literal_tok(parser *ps, const uint8_t **pp, uint8_t type,
                       const char *word, size_t wlen)
{
    const uint8_t *p = *pp;
    uint32_t i;

    if ((size_t)(ps->end - p) < wlen || memcmp(p, word, wlen) != 0)
        return syntax(ps, p);
    int rc = new_tok(ps, type, p, &i);
    if (rc < 0)
        return rc;
    ps->toks[i].len = (uint32_t)wlen;
    *pp = p + wlen;
    return 0;
}

static int open_container(parser *ps, const uint8_t **pp, uint8_t type)
{
    uint32_t i;

    if (ps->depth == ps->max_depth)
        return WISP_EJSON_DEPTH;
    int rc = new_tok(ps, type, *pp, &i);
    if (rc < 0)
        return rc;
    ps->toks[i].next = ps->open; /* the parent, until this one closes */
    ps->open = i;
    ps->depth++;
    ps->state = type == WISP_JSON_OBJECT ? S_KEY_OR_CLOSE : S_VALUE_OR_CLOSE;
    (*pp)++;
    return 0;
}

/* Close the innermost container with the bracket at *pp, which the caller
 * has checked to be ']' or '}'. */
static int close_container(parser *ps, const uint8_t **pp)
{
    wisp_json_tok_t *toks = ps->toks;
    uint32_t c = ps->open;
    uint8_t want = toks[c].type == WISP_JSON_OBJECT ? '}' : ']';

    if (**pp != want)
        return syntax(ps, *pp);
    uint32_t parent = toks[c].next;
    toks[c].len = (uint32_t)(*pp + 1 - ps->src) - toks[c].start;
    toks[c].next = ps->n;
    /* Mark the last child: hop from child to child over their subtrees
     * (all complete by now). */
    uint32_t j = c + 1, last = NONE;
    if (toks[c].type == WISP_JSON_OBJECT) {
        while (j < ps->n) {
            last = j;
            j = toks[j + 1].next;
        }
        if (last != NONE) {
            toks[last].flags |= WISP_JSON_F_LAST;
            toks[last + 1].flags |= WISP_JSON_F_LAST;
        }
    } else {
        while (j < ps->n) {
            last = j;
            j = toks[j].next;
        }
        if (last != NONE)
            toks[last].flags |= WISP_JSON_F_LAST;
    }
    ps->open = parent;
    ps->depth--;
    (*pp)++;
    after_value(ps);
    return 0;
}

/* Any value at *pp (not whitespace). */
static int value(parser *ps, const uint8_t **pp)
{
    const uint8_t *p = *pp;
    uint32_t i;
    int rc;

    switch (*p) {
    case '{':
        return open_container(ps, pp, WISP_JSON_OBJECT);
    case '[':
        return open_container(ps, pp, WISP_JSON_ARRAY);
    case '"':
        rc = string_tok(ps, pp, 0);
        break;
    case 't':
        rc = literal_tok(ps, pp, WISP_JSON_TRUE, "true", 4);
        break;
    case 'f':
        rc = literal_tok(ps, pp, WISP_JSON_FALSE, "false", 5);
        break;
    case 'n':
        rc = literal_tok(ps, pp, WISP_JSON_NULL, "null", 4);
        break;
    case '-': case '0': case '1': case '2': case '3': case '4': case '5':
    case '6': case '7': case '8': case '9': {
        uint8_t flags = 0;
        const uint8_t *q = scan_number(ps, p, &flags);
        if (!q)
            return WISP_EJSON_SYNTAX;
        rc = new_tok(ps, WISP_JSON_NUMBER, p, &i);
        if (rc < 0)
            return rc;
        ps->toks[i].flags = flags;
        ps->toks[i].len = (uint32_t)(q - p);
        *pp = q;
        break;
    }
    default:
        return syntax(ps, p);
    }
    if (rc == 0)
        after_value(ps);
    return rc;
}

/* One step at the non-whitespace byte *pp. */
static int step(parser *ps, const uint8_t **pp)
{
    uint8_t c = **pp;

    switch (ps->state) {
    case S_DONE:
        return syntax(ps, *pp); /* trailing garbage */
    case S_COLON:
        if (c != ':')
            return syntax(ps, *pp);
        (*pp)++;
        ps->state = S_VALUE;
        return 0;
    case S_COMMA_OR_CLOSE:
        if (c == ',') {
            (*pp)++;
            ps->state = ps->toks[ps->open].type == WISP_JSON_OBJECT ? S_KEY
                                                                    : S_VALUE;
            return 0;
        }
        if (c == ']' || c == '}')
            return close_container(ps, pp);
        return syntax(ps, *pp);
    case S_KEY_OR_CLOSE:
        if (c == '}')
            return close_container(ps, pp);
        /* fall through */
    case S_KEY:
        if (c != '"')
            return syntax(ps, *pp);
        ps->state = S_COLON;
        return string_tok(ps, pp, 1);
    case S_VALUE_OR_CLOSE:
        if (c == ']')
            return close_container(ps, pp);
        /* fall through */
    case S_VALUE:
        return value(ps, pp);
    }
    return syntax(ps, *pp);
}

int wisp_json_parse(wisp_json_doc_t *doc, const char *src, size_t len,
                    wisp_json_tok_t *toks, uint32_t cap,
                    const wisp_json_limits_t *limits)
{
    if (!doc)
        return -EINVAL;
    doc->src = src;
    doc->len = len;
    doc->toks = toks;
    doc->ntoks = 0;
    doc->cap = cap;
    doc->err_offset = 0;
    if ((!src && len > 0) || (!toks && cap > 0))
        return -EINVAL;
    if (len > UINT32_MAX ||
        (limits && limits->max_bytes && len > limits->max_bytes))
        return -EMSGSIZE;

    if (len == 0)
        return WISP_EJSON_SYNTAX; /* no value; err_offset 0 */

    parser ps = {
        .src = (const uint8_t *)src,
        .end = (const uint8_t *)src + len,
        .toks = toks,
        .cap = cap > INT32_MAX ? INT32_MAX : cap, /* the count is an int */
        .open = NONE,
        .max_depth = limits && limits->max_depth ? limits->max_depth
                                                 : DEFAULT_MAX_DEPTH,
        .state = S_VALUE,
    };
    const uint8_t *p = ps.src;
    int rc = 0;

    for (;;) {
        p = skip_ws(p, ps.end);
        if (p == ps.end)
            break;
        rc = step(&ps, &p);
        if (rc < 0)
            break;
    }
    if (rc == 0 && ps.state != S_DONE)
        rc = syntax(&ps, ps.end); /* empty, or cut short */
    if (rc < 0) {
        if (rc == WISP_EJSON_SYNTAX)
            doc->err_offset = (size_t)(ps.err_at - ps.src);
        return rc;
    }
    toks[0].flags |= WISP_JSON_F_LAST;
    doc->ntoks = ps.n;
    return (int)ps.n;
}
