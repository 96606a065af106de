/* xiaozhi-server — streamed LLM text: chat-completion chunks, <think>
 * removal, sentence splitting (llm_stream.h). */
#include "llm_stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <wisp.h>

#define DEFAULT_MAX (64u * 1024)
/* A chunk of Ollama or OpenAI has some 20 to 40 values; a delta with a
 * few tool calls stays far below this. */
#define MAX_TOKENS 512

/* ------------------------------------------------ chat-completion chunks */

void xz_llm_init(xz_llm_t *l, size_t max_bytes)
{
    memset(l, 0, sizeof *l);
    l->max_bytes = max_bytes ? max_bytes : DEFAULT_MAX;
}

void xz_llm_free(xz_llm_t *l)
{
    free(l->text);
    for (int i = 0; i < XZ_LLM_MAX_TOOL_CALLS; i++)
        free(l->calls[i].args);
    memset(l, 0, sizeof *l);
}

static int grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 128;
    while (c < need)
        c *= 2;
    char *n = realloc(*p, c);
    if (!n)
        return -ENOMEM;
    *p = n;
    *cap = c;
    return 0;
}

/* Decode string `i` into a fixed field, truncated (at a character
 * boundary) when it does not fit. */
static void copy_small(const wisp_json_doc_t *d, int i, char *out, size_t cap)
{
    char tmp[512];
    ssize_t n = wisp_json_str(d, i, tmp, sizeof tmp);
    if (n < 0) {
        /* Too long even for tmp: keep the raw start. */
        wisp_str_t r = wisp_json_raw(d, i);
        n = (ssize_t)(r.len < sizeof tmp - 1 ? r.len : sizeof tmp - 1);
        memcpy(tmp, r.ptr, (size_t)n);
    }
    size_t len = (size_t)n < cap - 1 ? (size_t)n : cap - 1;
    while (len > 0 && len < (size_t)n &&
           ((unsigned char)tmp[len] & 0xC0) == 0x80)
        len--;
    memcpy(out, tmp, len);
    out[len] = 0;
}

/* Append decoded string `i` to buf, bounded by max. */
static int append_str(const wisp_json_doc_t *d, int i, char **buf,
                      size_t *len, size_t *cap, size_t max)
{
    wisp_str_t raw = wisp_json_raw(d, i);
    /* The decoded string is never longer than its raw form. */
    if (*len + raw.len > max)
        return -EMSGSIZE;
    if (grow(buf, cap, *len + raw.len + 1) < 0)
        return -ENOMEM;
    ssize_t n = wisp_json_str(d, i, *buf + *len, *cap - *len);
    if (n < 0)
        return -EPROTO;
    *len += (size_t)n;
    (*buf)[*len] = 0;
    return 0;
}

static int tool_call(xz_llm_t *l, const wisp_json_doc_t *d, int tc,
                     uint32_t pos)
{
    if (wisp_json_type(d, tc) != WISP_JSON_OBJECT)
        return -EPROTO;
    int64_t idx = pos;
    int k = wisp_json_get(d, tc, "index");
    if (k >= 0 && wisp_json_int64(d, k, &idx) < 0)
        return -EPROTO;
    if (idx < 0)
        return -EPROTO;
    if (idx >= XZ_LLM_MAX_TOOL_CALLS)
        return -E2BIG;
    xz_llm_tool_call_t *c = &l->calls[idx];
    if (idx >= l->ncalls)
        l->ncalls = (int)idx + 1;
    k = wisp_json_get(d, tc, "id");
    if (wisp_json_type(d, k) == WISP_JSON_STRING && wisp_json_raw(d, k).len)
        copy_small(d, k, c->id, sizeof c->id);
    int fn = wisp_json_get(d, tc, "function");
    if (fn < 0)
        return 0;
    if (wisp_json_type(d, fn) != WISP_JSON_OBJECT)
        return -EPROTO;
    k = wisp_json_get(d, fn, "name");
    if (wisp_json_type(d, k) == WISP_JSON_STRING && wisp_json_raw(d, k).len)
        copy_small(d, k, c->name, sizeof c->name);
    k = wisp_json_get(d, fn, "arguments");
    if (k < 0 || wisp_json_type(d, k) == WISP_JSON_NULL)
        return 0;
    if (wisp_json_type(d, k) != WISP_JSON_STRING)
        return -EPROTO;
    return append_str(d, k, &c->args, &c->args_len, &c->args_cap,
                      l->max_bytes);
}

int xz_llm_feed(xz_llm_t *l, const char *data, size_t len)
{
    if (l->done)
        return WISP_ESTATE;
    l->text_len = 0;
    if (l->text)
        l->text[0] = 0;
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        l->done = 1;
        return 1;
    }
    wisp_json_tok_t toks[MAX_TOKENS];
    wisp_json_doc_t d;
    int r = wisp_json_parse(&d, data, len, toks, MAX_TOKENS, NULL);
    if (r == -ENOBUFS)
        return -EMSGSIZE;
    if (r < 0)
        return r;
    if (wisp_json_type(&d, 0) != WISP_JSON_OBJECT)
        return -EPROTO;
    int err = wisp_json_get(&d, 0, "error");
    if (err >= 0) {
        int m = wisp_json_get(&d, err, "message");
        if (wisp_json_type(&d, m) == WISP_JSON_STRING)
            copy_small(&d, m, l->error, sizeof l->error);
        else if (wisp_json_type(&d, err) == WISP_JSON_STRING)
            copy_small(&d, err, l->error, sizeof l->error);
        else
            strcpy(l->error, "error");
        return -EPROTO;
    }
    int choices = wisp_json_get(&d, 0, "choices");
    if (choices < 0 || wisp_json_type(&d, choices) == WISP_JSON_NULL)
        return 0;
    if (wisp_json_type(&d, choices) != WISP_JSON_ARRAY)
        return -EPROTO;
    int ch = wisp_json_at(&d, choices, 0);
    if (ch < 0)
        return 0;
    if (wisp_json_type(&d, ch) != WISP_JSON_OBJECT)
        return -EPROTO;
    int fin = wisp_json_get(&d, ch, "finish_reason");
    if (wisp_json_type(&d, fin) == WISP_JSON_STRING)
        copy_small(&d, fin, l->finish, sizeof l->finish);
    else if (fin >= 0 && wisp_json_type(&d, fin) != WISP_JSON_NULL)
        return -EPROTO;
    int delta = wisp_json_get(&d, ch, "delta");
    if (delta < 0 || wisp_json_type(&d, delta) == WISP_JSON_NULL)
        return 0;
    if (wisp_json_type(&d, delta) != WISP_JSON_OBJECT)
        return -EPROTO;
    int content = wisp_json_get(&d, delta, "content");
    if (wisp_json_type(&d, content) == WISP_JSON_STRING) {
        r = append_str(&d, content, &l->text, &l->text_len, &l->text_cap,
                       l->max_bytes);
        if (r < 0)
            return r;
    } else if (content >= 0 && wisp_json_type(&d, content) != WISP_JSON_NULL) {
        return -EPROTO;
    }
    int calls = wisp_json_get(&d, delta, "tool_calls");
    if (calls < 0 || wisp_json_type(&d, calls) == WISP_JSON_NULL)
        return 0;
    if (wisp_json_type(&d, calls) != WISP_JSON_ARRAY)
        return -EPROTO;
    uint32_t pos = 0;
    for (int tc = wisp_json_first(&d, calls); tc >= 0;
         tc = wisp_json_next(&d, tc), pos++) {
        r = tool_call(l, &d, tc, pos);
        if (r < 0)
            return r;
    }
    return 0;
}

/* ------------------------------------------------------ <think> removal */

static const char open_tag[] = "<think>";
static const char close_tag[] = "</think>";

void xz_think_init(xz_think_t *t)
{
    t->in = 0;
    t->matched = 0;
}

size_t xz_think_feed(xz_think_t *t, const char *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        const char *tag = t->in ? close_tag : open_tag;
        size_t tl = t->in ? sizeof close_tag - 1 : sizeof open_tag - 1;
        if (c == tag[t->matched]) {
            if (++t->matched == tl) {
                t->in = !t->in;
                t->matched = 0;
            }
            continue;
        }
        if (t->matched) {
            /* Not the tag after all: outside a block its start was
             * text. '<' occurs only first in a tag, so matching starts
             * again at this byte. */
            if (!t->in) {
                memcpy(out + o, tag, t->matched);
                o += t->matched;
            }
            t->matched = 0;
            if (c == tag[0]) {
                t->matched = 1;
                continue;
            }
        }
        if (!t->in)
            out[o++] = c;
    }
    return o;
}

size_t xz_think_end(xz_think_t *t, char *out)
{
    size_t o = 0;
    if (!t->in && t->matched) {
        memcpy(out, open_tag, t->matched);
        o = t->matched;
    }
    xz_think_init(t);
    return o;
}

/* ------------------------------------------------------------ sentences */

void xz_splitter_init(xz_splitter_t *sp, size_t min_chars, size_t max_bytes,
                      xz_sentence_cb cb, void *arg)
{
    memset(sp, 0, sizeof *sp);
    sp->min_chars = min_chars ? min_chars : 1;
    sp->max_bytes = max_bytes ? (max_bytes < 16 ? 16 : max_bytes) : 512;
    sp->cb = cb;
    sp->arg = arg;
}

void xz_splitter_free(xz_splitter_t *sp)
{
    free(sp->buf);
    sp->buf = NULL;
    sp->len = sp->cap = sp->scan = 0;
}

/* Byte length of the character at s[0..n): 0 when it is cut by the end
 * of the buffer; an invalid byte counts as one character. */
static size_t char_len(const unsigned char *s, size_t n)
{
    size_t k = s[0] < 0x80 ? 1 : s[0] >= 0xF0 ? 4 : s[0] >= 0xE0 ? 3
             : s[0] >= 0xC0 ? 2 : 1;
    if (k > n)
        return 0;
    for (size_t j = 1; j < k; j++) {
        if ((s[j] & 0xC0) != 0x80)
            return 1;
    }
    return k;
}

/* Sentence marks: 2 for CJK marks (a cut right after them), 1 for ASCII
 * ones (a cut only before whitespace), 0 otherwise. */
static int mark(const unsigned char *s, size_t k)
{
    if (k == 1)
        return (s[0] == '.' || s[0] == '!' || s[0] == '?' || s[0] == ';')
                   ? 1 : 0;
    static const char *const cjk[] = {
        "\xE3\x80\x82", /* 。 */
        "\xEF\xBC\x81", /* ！ */
        "\xEF\xBC\x9F", /* ？ */
        "\xEF\xBC\x9B", /* ； */
        "\xE2\x80\xA6", /* … */
        "\xEF\xBD\xA1", /* ｡ */
    };
    for (size_t i = 0; i < sizeof cjk / sizeof cjk[0]; i++) {
        if (k == 3 && memcmp(s, cjk[i], 3) == 0)
            return 2;
    }
    return 0;
}

/* Closing quotes and brackets that stay with the mark before them. */
static int closer(const unsigned char *s, size_t k)
{
    if (k == 1)
        return s[0] == '"' || s[0] == '\'' || s[0] == ')' || s[0] == ']';
    static const char *const cl[] = {
        "\xE2\x80\x9D", /* ” */
        "\xE2\x80\x99", /* ’ */
        "\xEF\xBC\x89", /* ） */
        "\xE3\x80\x8D", /* 」 */
        "\xE3\x80\x8F", /* 』 */
        "\xE3\x80\x91", /* 】 */
        "\xE3\x80\x8B", /* 》 */
    };
    for (size_t i = 0; i < sizeof cl / sizeof cl[0]; i++) {
        if (k == 3 && memcmp(s, cl[i], 3) == 0)
            return 1;
    }
    return 0;
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Hand out buf[0..cut) trimmed (when not empty, and when it has at
 * least `min` characters; else 0 and nothing happens), then drop it. */
static int emit(xz_splitter_t *sp, size_t cut, size_t min)
{
    const unsigned char *b = (const unsigned char *)sp->buf;
    size_t s = 0, e = cut;
    while (s < e && is_space(b[s]))
        s++;
    while (e > s && is_space(b[e - 1]))
        e--;
    size_t chars = 0;
    for (size_t i = s; i < e; i++)
        chars += (b[i] & 0xC0) != 0x80;
    if (chars < min)
        return 0;
    if (e > s)
        sp->cb(sp->buf + s, e - s, sp->arg);
    memmove(sp->buf, sp->buf + cut, sp->len - cut);
    sp->len -= cut;
    sp->scan = 0;
    return 1;
}

static size_t lead(const xz_splitter_t *sp)
{
    size_t i = 0;
    while (i < sp->len && is_space((unsigned char)sp->buf[i]))
        i++;
    return i;
}

/* Where to cut a sentence longer than max_bytes (counted from its first
 * non-space byte, `start`) that has no mark: the limit `lim` is a fixed
 * distance from `start` and lies inside the buffer, so the cut does not
 * depend on how the text arrived. */
static size_t forced_cut(const xz_splitter_t *sp, size_t start)
{
    const unsigned char *b = (const unsigned char *)sp->buf;
    size_t lim = start + sp->max_bytes; /* < sp->len */
    for (size_t i = lim; i-- > start;) {
        if (i + 3 <= lim && (memcmp(b + i, "\xEF\xBC\x8C", 3) == 0 ||
                             memcmp(b + i, "\xE3\x80\x81", 3) == 0 ||
                             memcmp(b + i, "\xEF\xBC\x9A", 3) == 0))
            return i + 3;
        if ((b[i] == ',' || b[i] == ':') && i + 1 < lim && b[i + 1] == ' ')
            return i + 1;
    }
    for (size_t i = lim; i-- > start + 1;) {
        if (b[i] == ' ')
            return i;
    }
    size_t i = lim;
    while (i > start + 1 && (b[i] & 0xC0) == 0x80)
        i--;
    return i;
}

/* Scan from sp->scan for a cut. Returns 1 when a sentence went out
 * (scan again from the start), 0 when the text holds no cut yet (scan
 * then marks where to resume). */
static int scan_once(xz_splitter_t *sp)
{
    const unsigned char *b = (const unsigned char *)sp->buf;
    size_t i = sp->scan;
    while (i < sp->len) {
        size_t k = char_len(b + i, sp->len - i);
        if (k == 0)
            break; /* a character cut by the end: wait for the rest */
        int m = b[i] == '\n' ? 3 : mark(b + i, k);
        if (!m) {
            i += k;
            continue;
        }
        /* The mark, and any marks and closers right after it. */
        size_t j = i + k;
        int undecided = 0;
        while (j < sp->len && m != 3) {
            size_t kk = char_len(b + j, sp->len - j);
            if (kk == 0 || !(mark(b + j, kk) || closer(b + j, kk)))
                break;
            /* An ASCII quote closes only before a space or the end; else
             * it opens the next sentence. */
            if (kk == 1 && (b[j] == '"' || b[j] == '\'')) {
                if (j + 1 == sp->len) {
                    undecided = 1;
                    break;
                }
                if (!is_space(b[j + 1]))
                    break;
            }
            j += kk;
        }
        if (m != 3 && (undecided || j == sp->len ||
                       char_len(b + j, sp->len - j) == 0))
            break; /* what follows decides: wait for it */
        if (m == 1 && !is_space(b[j])) {
            i = j; /* "3.14", "a.b": not the end of a sentence */
            continue;
        }
        if (emit(sp, j, sp->min_chars))
            return 1;
        i = j; /* too short: it runs on to the next mark */
    }
    sp->scan = i;
    return 0;
}

static void split(xz_splitter_t *sp)
{
    for (;;) {
        if (scan_once(sp))
            continue;
        size_t start = lead(sp);
        if (sp->len - start <= sp->max_bytes)
            return;
        emit(sp, forced_cut(sp, start), 0);
    }
}

int xz_splitter_feed(xz_splitter_t *sp, const char *text, size_t n)
{
    while (n) {
        size_t take = n < sp->max_bytes ? n : sp->max_bytes;
        if (grow(&sp->buf, &sp->cap, sp->len + take + 1) < 0)
            return -ENOMEM;
        memcpy(sp->buf + sp->len, text, take);
        sp->len += take;
        text += take;
        n -= take;
        split(sp);
    }
    return 0;
}

void xz_splitter_flush(xz_splitter_t *sp)
{
    if (sp->len)
        emit(sp, sp->len, 0);
    sp->len = 0;
    sp->scan = 0;
}
