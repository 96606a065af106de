/* Incremental multipart/form-data parser (RFC 7578 over RFC 2046 §5.1).
 *
 *   multipart-body := [preamble CRLF] dash-boundary transport-padding CRLF
 *                     body-part *encapsulation close-delimiter
 *                     transport-padding [CRLF epilogue]
 *   delimiter      := CRLF dash-boundary
 *
 * The body is walked through an explicit state so that it may be cut
 * anywhere. Inside a part the parser looks for the delimiter CRLF "--"
 * boundary. Because the boundary's characters (bchars) never include CR,
 * CR occurs in the delimiter only as its first byte: when a partial match
 * fails, the held bytes are content and only the failing byte can start a
 * new match, so one counter (`match`) suffices and no content is copied.
 * Content is gathered into one span per slice and handed to the
 * application at a delimiter or at the end of the slice; bytes held back
 * across slices (a delimiter prefix) are replayed from `delim`. */
#include <string.h>
#include <strings.h>

#include "wisp/multipart.h"

enum state {
    S_PREAMBLE = 0, /* before the first delimiter: bytes dropped */
    S_AFTER_DELIM,  /* a delimiter matched: "--", padding or CRLF next */
    S_PADDING,      /* transport padding (SP / HT) before the CRLF */
    S_DELIM_CR,     /* CR seen after the delimiter: LF next */
    S_CLOSE_DASH,   /* one '-' after the delimiter: the second next */
    S_HEADER,       /* collecting a part's header block */
    S_DATA,         /* a part's content */
    S_EPILOGUE,     /* after the close delimiter: bytes dropped */
};

/* Bits of cls[]. */
#define C_TCHAR 1 /* token character (RFC 9110 §5.6.2) */
#define C_BCHAR 2 /* bcharsnospace (RFC 2046 §5.1.1) */

static uint8_t cls(unsigned char c)
{
    static const char tspecials[] = "!#$%&'*+-.^_`|~";
    static const char bspecials[] = "'()+_,-./:=?";
    uint8_t r = 0;
    int alnum = (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' &&
                                          (c | 0x20) <= 'z');
    if (alnum || (c && strchr(tspecials, c)))
        r |= C_TCHAR;
    if (alnum || (c && strchr(bspecials, c)))
        r |= C_BCHAR;
    return r;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static wisp_str_t mkstr(const char *p, size_t n)
{
    wisp_str_t s = {p, n};
    return s;
}

/* ------------------------------------------------------------- boundary */

static int valid_boundary(const char *p, size_t n)
{
    if (n < 1 || n > WISP_MULTIPART_MAX_BOUNDARY || p[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != ' ' && !(cls((unsigned char)p[i]) & C_BCHAR))
            return 0;
    }
    return 1;
}

/* A parameter value at s[*i..n): a token or a quoted string. Sets *v to
 * the bytes (between the quotes, escapes unresolved) and *quoted. */
static int param_value(const char *s, size_t n, size_t *i, wisp_str_t *v,
                       int *quoted)
{
    size_t j = *i;
    if (j < n && s[j] == '"') {
        size_t start = ++j;
        while (j < n && s[j] != '"') {
            if (s[j] == '\\' && j + 1 < n)
                j++;
            j++;
        }
        if (j >= n)
            return -1;
        *v = mkstr(s + start, j - start);
        *quoted = 1;
        *i = j + 1;
        return 0;
    }
    size_t start = j;
    while (j < n && s[j] != ';' && !is_ows(s[j]) && s[j] != '"')
        j++;
    if (j == start)
        return -1;
    *v = mkstr(s + start, j - start);
    *quoted = 0;
    *i = j;
    return 0;
}

/* Walk `; name=value` parameters in s[i..n). For each, call fn. Returns 0
 * or -1 on a syntax error (or when fn returns nonzero). */
typedef int (*param_fn)(wisp_str_t name, wisp_str_t value, int quoted,
                        void *ctx);

static int walk_params(const char *s, size_t n, size_t i, param_fn fn,
                       void *ctx)
{
    for (;;) {
        while (i < n && is_ows(s[i]))
            i++;
        if (i == n)
            return 0;
        if (s[i++] != ';')
            return -1;
        while (i < n && is_ows(s[i]))
            i++;
        if (i == n)
            return 0; /* a trailing ';' is tolerated */
        size_t ns = i;
        while (i < n && (cls((unsigned char)s[i]) & C_TCHAR))
            i++;
        if (i == ns)
            return -1;
        wisp_str_t name = mkstr(s + ns, i - ns);
        while (i < n && is_ows(s[i]))
            i++;
        if (i == n || s[i++] != '=')
            return -1;
        while (i < n && is_ows(s[i]))
            i++;
        wisp_str_t v;
        int quoted;
        if (param_value(s, n, &i, &v, &quoted) < 0)
            return -1;
        if (fn(name, v, quoted, ctx))
            return -1;
    }
}

static int eq_ci(wisp_str_t a, const char *b)
{
    size_t l = strlen(b);
    return a.len == l && strncasecmp(a.ptr, b, l) == 0;
}

struct bctx {
    wisp_str_t b;
    int bad;
};

static int boundary_param(wisp_str_t name, wisp_str_t v, int quoted,
                          void *ctx)
{
    struct bctx *c = ctx;
    if (!eq_ci(name, "boundary") || c->b.ptr)
        return 0;
    /* Inside quotes a backslash is never a bchar, so an escaped boundary
     * is refused by valid_boundary; unquoted, a space cannot occur. */
    if (!valid_boundary(v.ptr, v.len) ||
        (!quoted && memchr(v.ptr, ' ', v.len)))
        c->bad = 1;
    c->b = v;
    return 0;
}

int wisp_multipart_boundary(wisp_str_t ct, wisp_str_t *boundary)
{
    if (!boundary)
        return -EINVAL;
    *boundary = mkstr(NULL, 0);
    if (!ct.ptr)
        return WISP_EMULTIPART_BOUNDARY;
    size_t i = 0, n = ct.len;
    while (i < n && is_ows(ct.ptr[i]))
        i++;
    static const char mt[] = "multipart/form-data";
    if (n - i < sizeof mt - 1 || strncasecmp(ct.ptr + i, mt, sizeof mt - 1))
        return WISP_EMULTIPART_BOUNDARY;
    i += sizeof mt - 1;
    if (i < n && !is_ows(ct.ptr[i]) && ct.ptr[i] != ';')
        return WISP_EMULTIPART_BOUNDARY; /* e.g. multipart/form-dataX */
    struct bctx c = {{NULL, 0}, 0};
    if (walk_params(ct.ptr, n, i, boundary_param, &c) < 0 || !c.b.ptr ||
        c.bad)
        return WISP_EMULTIPART_BOUNDARY;
    *boundary = c.b;
    return 0;
}

/* --------------------------------------------------------------- set-up */

int wisp_multipart_init(wisp_multipart_t *mp, wisp_str_t boundary,
                        const wisp_multipart_config_t *cfg)
{
    if (!mp || !cfg || !cfg->header_buf || cfg->header_buf_size < 64)
        return -EINVAL;
    if (!boundary.ptr || !valid_boundary(boundary.ptr, boundary.len))
        return WISP_EMULTIPART_BOUNDARY;
    memset(mp, 0, sizeof *mp);
    mp->cfg = *cfg;
    if (!mp->cfg.max_parts)
        mp->cfg.max_parts = WISP_MULTIPART_DEFAULT_MAX_PARTS;
    memcpy(mp->delim, "\r\n--", 4);
    memcpy(mp->delim + 4, boundary.ptr, boundary.len);
    mp->delim_len = (uint8_t)(4 + boundary.len);
    mp->state = S_PREAMBLE;
    /* The first delimiter may open the body without its CRLF: start as if
     * the CRLF had been seen. */
    mp->match = 2;
    return 0;
}

static int fail(wisp_multipart_t *mp, int err)
{
    mp->err = err;
    return err;
}

/* ------------------------------------------------------------- headers */

/* Resolve the quoted-pairs \" and \\ of a quoted parameter value into
 * the unused end of the header buffer (the raw block stays intact for
 * part->headers). Other backslashes stay, as browsers send paths like
 * a\b.txt unescaped. Returns 0 or -1 when the buffer has no room. */
static int unescape(wisp_multipart_t *mp, wisp_str_t *v)
{
    if (!memchr(v->ptr, '\\', v->len))
        return 0;
    char *out = mp->cfg.header_buf + mp->hdr_len;
    size_t room = mp->cfg.header_buf_size - mp->hdr_len, o = 0;
    for (size_t i = 0; i < v->len; i++) {
        char c = v->ptr[i];
        if (c == '\\' && i + 1 < v->len &&
            (v->ptr[i + 1] == '"' || v->ptr[i + 1] == '\\'))
            c = v->ptr[++i];
        if (o == room)
            return -1;
        out[o++] = c;
    }
    mp->hdr_len += o;
    *v = mkstr(out, o);
    return 0;
}

struct dctx {
    wisp_multipart_t *mp;
    int have_name, have_filename, err;
};

static int disposition_param(wisp_str_t name, wisp_str_t v, int quoted,
                             void *ctx)
{
    struct dctx *c = ctx;
    wisp_str_t *dst = NULL;
    int *have = NULL;
    if (eq_ci(name, "name")) {
        dst = &c->mp->part.name;
        have = &c->have_name;
    } else if (eq_ci(name, "filename")) {
        dst = &c->mp->part.filename;
        have = &c->have_filename;
    }
    if (!dst || *have)
        return 0;
    if (quoted && unescape(c->mp, &v) < 0) {
        c->err = WISP_EMULTIPART_HEADER;
        return 1;
    }
    *dst = v;
    *have = 1;
    return 0;
}

static int parse_disposition(wisp_multipart_t *mp, const char *s, size_t n)
{
    static const char fd[] = "form-data";
    size_t i = 0;
    while (i < n && (cls((unsigned char)s[i]) & C_TCHAR))
        i++;
    if (!eq_ci(mkstr(s, i), fd))
        return WISP_EMULTIPART_SYNTAX;
    struct dctx c = {mp, 0, 0, 0};
    if (walk_params(s, n, i, disposition_param, &c) < 0)
        return c.err ? c.err : WISP_EMULTIPART_SYNTAX;
    if (!c.have_name)
        return WISP_EMULTIPART_SYNTAX;
    if (!mp->part.name.ptr) /* name="" : keep a non-NULL pointer */
        mp->part.name.ptr = s;
    return 0;
}

/* Check the header block buf[0..len) (lines each ending in CRLF, the
 * final empty line excluded) and fill mp->part. */
static int parse_head(wisp_multipart_t *mp, const char *buf, size_t len)
{
    wisp_multipart_part_t *p = &mp->part;
    const char *cd = NULL, *ct = NULL;
    size_t cd_len = 0, ct_len = 0;
    size_t i = 0;
    while (i < len) {
        size_t ls = i;
        while (buf[i] != '\r' && buf[i] != '\n' && buf[i] != '\0')
            i++;
        /* Every line ends in CRLF (the block does), so buf[i] exists. */
        if (buf[i] != '\r' || buf[i + 1] != '\n')
            return WISP_EMULTIPART_SYNTAX;
        size_t le = i;
        i += 2;
        size_t j = ls;
        while (j < le && (cls((unsigned char)buf[j]) & C_TCHAR))
            j++;
        if (j == ls || j == le || buf[j] != ':')
            return WISP_EMULTIPART_SYNTAX; /* no name, fold, or no ':' */
        wisp_str_t name = mkstr(buf + ls, j - ls);
        j++;
        size_t ve = le;
        while (j < ve && is_ows(buf[j]))
            j++;
        while (ve > j && is_ows(buf[ve - 1]))
            ve--;
        if (!cd && eq_ci(name, "content-disposition")) {
            cd = buf + j;
            cd_len = ve - j;
        } else if (!ct && eq_ci(name, "content-type")) {
            ct = buf + j;
            ct_len = ve - j;
        }
    }
    if (!cd)
        return WISP_EMULTIPART_SYNTAX;
    p->content_type = mkstr(ct, ct_len);
    return parse_disposition(mp, cd, cd_len);
}

/* Collect header bytes; at the empty line, parse and begin the part. */
static ssize_t header_bytes(wisp_multipart_t *mp, const char *p, size_t n)
{
    const char *lf = memchr(p, '\n', n);
    size_t take = lf ? (size_t)(lf - p) + 1 : n;
    if (take > mp->cfg.header_buf_size - mp->hdr_len)
        return fail(mp, WISP_EMULTIPART_HEADER);
    char *buf = mp->cfg.header_buf;
    memcpy(buf + mp->hdr_len, p, take);
    mp->hdr_len += take;
    size_t l = mp->hdr_len;
    if (!lf)
        return (ssize_t)take;
    /* The block ends at an empty line: CRLF at its start, or CRLFCRLF. */
    int end = (l == 2 && buf[0] == '\r') ||
              (l >= 4 && memcmp(buf + l - 4, "\r\n\r\n", 4) == 0);
    if (!end)
        return (ssize_t)take;
    size_t block = l - 2;
    mp->part.headers = mkstr(buf, block);
    int rc = parse_head(mp, buf, block);
    if (rc < 0)
        return fail(mp, rc);
    mp->state = S_DATA;
    mp->match = 0;
    mp->part_bytes = 0;
    if (mp->cfg.on_part_begin) {
        rc = mp->cfg.on_part_begin(&mp->part, mp->cfg.arg);
        if (rc < 0)
            return fail(mp, rc);
    }
    return (ssize_t)take;
}

/* --------------------------------------------------------------- content */

static int emit(wisp_multipart_t *mp, const char *p, size_t n)
{
    if (!n)
        return 0;
    uint64_t max = mp->cfg.max_part_bytes;
    if (max && (mp->part_bytes + n > max || mp->part_bytes + n < n))
        return fail(mp, WISP_EMULTIPART_PART_SIZE);
    mp->part_bytes += n;
    if (mp->cfg.on_part_data) {
        int rc = mp->cfg.on_part_data(&mp->part, p, n, mp->cfg.arg);
        if (rc < 0)
            return fail(mp, rc);
    }
    return 0;
}

/* Look for the delimiter in p[0..n). In S_DATA the bytes that are not part
 * of it are content, in S_PREAMBLE they are dropped. Returns the bytes
 * consumed (all of them, or up to the end of the delimiter, after which
 * the state is S_AFTER_DELIM), or an error. */
static ssize_t scan(wisp_multipart_t *mp, const char *p, size_t n)
{
    int content = mp->state == S_DATA;
    size_t held = mp->match; /* delimiter bytes matched in earlier slices */
    size_t span = 0;         /* start of the content not yet emitted */
    size_t cand = 0;         /* where the current match began in p, when
                                held == 0 */
    size_t i = 0;
    int rc;
    while (i < n) {
        if (mp->match == 0) {
            const char *cr = memchr(p + i, '\r', n - i);
            if (!cr) {
                i = n;
                break;
            }
            i = (size_t)(cr - p);
            cand = i++;
            mp->match = 1;
            continue;
        }
        if (p[i] == mp->delim[mp->match]) {
            i++;
            if (++mp->match < mp->delim_len)
                continue;
            /* The delimiter is complete: what precedes it is content. */
            if (content) {
                if ((rc = emit(mp, p + span, held ? 0 : cand - span)) < 0)
                    return rc;
                if (mp->cfg.on_part_end &&
                    (rc = mp->cfg.on_part_end(&mp->part, mp->cfg.arg)) < 0)
                    return fail(mp, rc);
            }
            mp->match = 0;
            mp->state = S_AFTER_DELIM;
            return (ssize_t)i;
        }
        /* Mismatch: the matched bytes were content after all, and p[i]
         * is looked at again (it may be a CR that starts a new match). */
        if (held) {
            /* The match began in an earlier slice: those bytes are not in
             * p, replay them from the delimiter. p[0..i) stays in the
             * span that starts at 0. */
            if (content && (rc = emit(mp, mp->delim, held)) < 0)
                return rc;
            held = 0;
        }
        mp->match = 0;
    }
    if (content) {
        size_t end = mp->match ? (held ? 0 : cand) : n;
        if ((rc = emit(mp, p + span, end - span)) < 0)
            return rc;
    }
    return (ssize_t)n;
}

/* --------------------------------------------------------------- driver */

/* One byte of the delimiter line's tail. */
static int delim_tail(wisp_multipart_t *mp, char c)
{
    switch (mp->state) {
    case S_AFTER_DELIM:
        if (c == '-') {
            mp->state = S_CLOSE_DASH;
            return 0;
        }
        /* fall through */
    case S_PADDING:
        if (is_ows(c)) {
            mp->state = S_PADDING;
            return 0;
        }
        if (c == '\r') {
            mp->state = S_DELIM_CR;
            return 0;
        }
        return fail(mp, WISP_EMULTIPART_SYNTAX);
    case S_CLOSE_DASH:
        if (c != '-')
            return fail(mp, WISP_EMULTIPART_SYNTAX);
        mp->state = S_EPILOGUE;
        return 0;
    case S_DELIM_CR:
        if (c != '\n')
            return fail(mp, WISP_EMULTIPART_SYNTAX);
        if (mp->parts >= mp->cfg.max_parts)
            return fail(mp, WISP_EMULTIPART_PARTS);
        memset(&mp->part, 0, sizeof mp->part);
        mp->part.index = mp->parts++;
        mp->hdr_len = 0;
        mp->state = S_HEADER;
        return 0;
    default:
        return fail(mp, WISP_EMULTIPART_SYNTAX);
    }
}

int wisp_multipart_feed(wisp_multipart_t *mp, const void *data, size_t len)
{
    if (!mp || (!data && len))
        return -EINVAL;
    if (mp->err)
        return mp->err;
    uint64_t max = mp->cfg.max_total_bytes;
    mp->total_bytes += len;
    if (max && mp->total_bytes > max)
        return fail(mp, WISP_EMULTIPART_TOTAL);
    const char *p = data;
    size_t i = 0;
    while (i < len && mp->state != S_EPILOGUE) {
        ssize_t used;
        switch (mp->state) {
        case S_PREAMBLE:
        case S_DATA:
            used = scan(mp, p + i, len - i);
            break;
        case S_HEADER:
            used = header_bytes(mp, p + i, len - i);
            break;
        default:
            used = delim_tail(mp, p[i]);
            if (used == 0)
                used = 1;
            break;
        }
        if (used < 0)
            return (int)used;
        i += (size_t)used;
    }
    return 0;
}

int wisp_multipart_finish(wisp_multipart_t *mp)
{
    if (!mp)
        return -EINVAL;
    if (mp->err)
        return mp->err;
    if (mp->state != S_EPILOGUE)
        return fail(mp, WISP_EMULTIPART_TRUNCATED);
    return 0;
}

int wisp_multipart_parse(wisp_str_t boundary, const void *body, size_t len,
                         const wisp_multipart_config_t *cfg)
{
    wisp_multipart_t mp;
    int rc = wisp_multipart_init(&mp, boundary, cfg);
    if (rc < 0)
        return rc;
    rc = wisp_multipart_feed(&mp, body, len);
    if (rc < 0)
        return rc;
    return wisp_multipart_finish(&mp);
}

wisp_str_t wisp_multipart_header(const wisp_multipart_part_t *part,
                                 const char *name)
{
    if (!part || !name || !part->headers.ptr)
        return mkstr(NULL, 0);
    const char *b = part->headers.ptr, *end = b + part->headers.len;
    size_t nl = strlen(name);
    while (b < end) {
        /* parse_head checked the block: every line ends in CRLF and has a
         * ':' after a token name. */
        const char *eol = memchr(b, '\r', (size_t)(end - b));
        const char *colon = memchr(b, ':', (size_t)(eol - b));
        if ((size_t)(colon - b) == nl && strncasecmp(b, name, nl) == 0) {
            const char *v = colon + 1, *ve = eol;
            while (v < ve && is_ows(*v))
                v++;
            while (ve > v && is_ows(ve[-1]))
                ve--;
            return mkstr(v, (size_t)(ve - v));
        }
        b = eol + 2;
    }
    return mkstr(NULL, 0);
}
