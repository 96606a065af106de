/* application/x-www-form-urlencoded (WHATWG URL Standard §5.1): an
 * iterator over the '&'-separated pairs of a buffer and a strict
 * percent-decoder ('+' is a space; a bad escape or %00 is refused). */
#include <string.h>

#include "wisp/form.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* The byte at s[i] decoded, advancing *i; -1 for a bad escape or %00. */
static int next_byte(const char *s, size_t n, size_t *i)
{
    unsigned char c = (unsigned char)s[*i];
    if (c == '+') {
        (*i)++;
        return ' ';
    }
    if (c != '%') {
        (*i)++;
        return c;
    }
    if (n - *i < 3)
        return -1;
    int hi = hexval((unsigned char)s[*i + 1]);
    int lo = hexval((unsigned char)s[*i + 2]);
    if (hi < 0 || lo < 0 || (hi | lo) == 0)
        return -1;
    *i += 3;
    return hi << 4 | lo;
}

void wisp_form_iter_init(wisp_form_iter_t *it, wisp_str_t src)
{
    it->p = src.ptr;
    it->end = src.ptr ? src.ptr + src.len : NULL;
}

int wisp_form_next(wisp_form_iter_t *it, wisp_str_t *key, wisp_str_t *value)
{
    wisp_str_t k = {NULL, 0}, v = {NULL, 0};
    int found = 0;
    while (it->p && it->p < it->end) {
        const char *s = it->p;
        const char *amp = memchr(s, '&', (size_t)(it->end - s));
        const char *e = amp ? amp : it->end;
        it->p = amp ? amp + 1 : it->end;
        if (e == s)
            continue; /* empty pair */
        const char *eq = memchr(s, '=', (size_t)(e - s));
        k.ptr = s;
        k.len = (size_t)((eq ? eq : e) - s);
        v.ptr = eq ? eq + 1 : e;
        v.len = (size_t)(e - v.ptr);
        found = 1;
        break;
    }
    if (key)
        *key = k;
    if (value)
        *value = v;
    return found;
}

ssize_t wisp_form_decoded_len(wisp_str_t in)
{
    size_t n = 0;
    for (size_t i = 0; i < in.len; n++) {
        if (next_byte(in.ptr, in.len, &i) < 0)
            return WISP_EPARSE;
    }
    return (ssize_t)n;
}

ssize_t wisp_form_decode(wisp_str_t in, char *out, size_t cap)
{
    if (!out && cap)
        return -EINVAL;
    ssize_t n = wisp_form_decoded_len(in);
    if (n < 0)
        return n;
    if ((size_t)n >= cap)
        return -ENOBUFS;
    /* Writing never overtakes reading (each output byte consumes at
     * least one input byte), so out may alias in.ptr. */
    size_t w = 0;
    for (size_t i = 0; i < in.len;)
        out[w++] = (char)next_byte(in.ptr, in.len, &i);
    out[w] = '\0';
    return n;
}

/* Does the encoded key `k` decode to exactly key[0..klen)? */
static int key_is(wisp_str_t k, const char *key, size_t klen)
{
    size_t i = 0, j = 0;
    while (i < k.len) {
        int c = next_byte(k.ptr, k.len, &i);
        if (c < 0 || j == klen || (unsigned char)key[j] != c)
            return 0;
        j++;
    }
    return j == klen;
}

ssize_t wisp_form_get(wisp_str_t src, const char *key, char *out,
                      size_t cap)
{
    if (!key || (!out && cap))
        return -EINVAL;
    size_t klen = strlen(key);
    wisp_form_iter_t it;
    wisp_str_t k, v;
    wisp_form_iter_init(&it, src);
    while (wisp_form_next(&it, &k, &v)) {
        if (key_is(k, key, klen))
            return wisp_form_decode(v, out, cap);
    }
    return -ENOENT;
}

ssize_t wisp_form_get_nth(wisp_str_t src, const char *key, size_t n,
                          char *out, size_t cap)
{
    if (!key || (!out && cap))
        return -EINVAL;
    size_t klen = strlen(key);
    wisp_form_iter_t it;
    wisp_str_t k, v;
    wisp_form_iter_init(&it, src);
    while (wisp_form_next(&it, &k, &v)) {
        if (key_is(k, key, klen) && n-- == 0)
            return wisp_form_decode(v, out, cap);
    }
    return -ENOENT;
}

size_t wisp_form_count(wisp_str_t src, const char *key)
{
    if (!key)
        return 0;
    size_t klen = strlen(key), n = 0;
    wisp_form_iter_t it;
    wisp_str_t k;
    wisp_form_iter_init(&it, src);
    while (wisp_form_next(&it, &k, NULL))
        n += (size_t)key_is(k, key, klen);
    return n;
}
