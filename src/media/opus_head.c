/* Ogg Opus headers (RFC 7845 §5): OpusHead and OpusTags, parsed and
 * written. All fields are little-endian. */
#include <string.h>

#include "media/ogg_int.h"
#include "wisp/opus.h"

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

int wisp_opus_head_parse(const uint8_t *d, size_t len, wisp_opus_head_t *h)
{
    if ((!d && len) || !h)
        return -EINVAL;
    if (len < 19 || memcmp(d, "OpusHead", 8) != 0)
        return WISP_EOPUS_HEAD;
    /* §5.1: the upper four bits of the version are the major version; a
     * reader of version 1 accepts 0..15 and refuses the rest. */
    if (d[8] & 0xf0)
        return WISP_EOPUS_HEAD;
    memset(h, 0, sizeof *h);
    h->version = d[8];
    h->channels = d[9];
    h->pre_skip = get16(d + 10);
    h->input_sample_rate = wisp__ogg_get32(d + 12);
    h->output_gain = (int16_t)get16(d + 16);
    h->mapping_family = d[18];
    if (h->channels == 0)
        return WISP_EOPUS_HEAD;
    if (h->mapping_family == 0) {
        if (h->channels > 2)
            return WISP_EOPUS_HEAD;
        h->stream_count = 1;
        h->coupled_count = (uint8_t)(h->channels - 1);
        h->mapping[0] = 0;
        h->mapping[1] = 1;
        return 0;
    }
    if (h->mapping_family == 1 && h->channels > 8)
        return WISP_EOPUS_HEAD;
    if (len < 21 + (size_t)h->channels)
        return WISP_EOPUS_HEAD;
    h->stream_count = d[19];
    h->coupled_count = d[20];
    unsigned total = (unsigned)h->stream_count + h->coupled_count;
    if (h->stream_count == 0 || h->coupled_count > h->stream_count ||
        total > 255)
        return WISP_EOPUS_HEAD;
    for (unsigned i = 0; i < h->channels; i++) {
        h->mapping[i] = d[21 + i];
        if (h->mapping[i] != 255 && h->mapping[i] >= total)
            return WISP_EOPUS_HEAD;
    }
    return 0;
}

ssize_t wisp_opus_head_write(const wisp_opus_head_t *h, uint8_t *out,
                             size_t cap)
{
    if (!h || (!out && cap))
        return -EINVAL;
    size_t len = h->mapping_family == 0 ? 19 : 21 + (size_t)h->channels;
    if (len > cap)
        return -ENOBUFS;
    memcpy(out, "OpusHead", 8);
    out[8] = 1;
    out[9] = h->channels;
    out[10] = (uint8_t)h->pre_skip;
    out[11] = (uint8_t)(h->pre_skip >> 8);
    wisp__ogg_put32(out + 12, h->input_sample_rate);
    out[16] = (uint8_t)(uint16_t)h->output_gain;
    out[17] = (uint8_t)((uint16_t)h->output_gain >> 8);
    out[18] = h->mapping_family;
    if (h->mapping_family != 0) {
        out[19] = h->stream_count;
        out[20] = h->coupled_count;
        memcpy(out + 21, h->mapping, h->channels);
    }
    wisp_opus_head_t back;
    if (wisp_opus_head_parse(out, len, &back) != 0)
        return WISP_EOPUS_HEAD;
    return (ssize_t)len;
}

int wisp_opus_tags_parse(const uint8_t *d, size_t len, wisp_opus_tags_t *t)
{
    if ((!d && len) || !t)
        return -EINVAL;
    if (len < 16 || memcmp(d, "OpusTags", 8) != 0)
        return WISP_EOPUS_TAGS;
    size_t off = 8;
    uint32_t vlen = wisp__ogg_get32(d + off);
    off += 4;
    if (vlen > len - off || len - off - vlen < 4)
        return WISP_EOPUS_TAGS;
    t->vendor.ptr = (const char *)d + off;
    t->vendor.len = vlen;
    off += vlen;
    t->count = wisp__ogg_get32(d + off);
    off += 4;
    t->comments = d + off;
    /* Each comment is a 4-byte length and that many bytes: the count is
     * checked against the bytes, so a huge count cannot make us loop
     * beyond the packet. */
    if (t->count > (len - off) / 4)
        return WISP_EOPUS_TAGS;
    for (uint32_t i = 0; i < t->count; i++) {
        if (len - off < 4)
            return WISP_EOPUS_TAGS;
        uint32_t clen = wisp__ogg_get32(d + off);
        off += 4;
        if (clen > len - off)
            return WISP_EOPUS_TAGS;
        off += clen;
    }
    t->comments_len = (size_t)(d + off - t->comments);
    return 0;
}

int wisp_opus_tags_get(const wisp_opus_tags_t *t, uint32_t i, wisp_str_t *out)
{
    if (!t || !out || i >= t->count)
        return -ENOENT;
    const uint8_t *p = t->comments;
    for (uint32_t k = 0;; k++) {
        uint32_t clen = wisp__ogg_get32(p);
        if (k == i) {
            out->ptr = (const char *)p + 4;
            out->len = clen;
            return 0;
        }
        p += 4 + (size_t)clen;
    }
}

ssize_t wisp_opus_tags_write(const char *vendor, const char *const *comments,
                             size_t n, uint8_t *out, size_t cap)
{
    if ((!out && cap) || (!comments && n) || n > UINT32_MAX)
        return -EINVAL;
    if (!vendor)
        vendor = "wisp";
    size_t vlen = strlen(vendor);
    size_t len = 8 + 4 + vlen + 4;
    for (size_t i = 0; i < n; i++) {
        if (!comments[i] || !strchr(comments[i], '='))
            return -EINVAL;
        len += 4 + strlen(comments[i]);
    }
    if (len > cap || vlen > UINT32_MAX)
        return -ENOBUFS;
    uint8_t *p = out;
    memcpy(p, "OpusTags", 8);
    p += 8;
    wisp__ogg_put32(p, (uint32_t)vlen);
    memcpy(p + 4, vendor, vlen);
    p += 4 + vlen;
    wisp__ogg_put32(p, (uint32_t)n);
    p += 4;
    for (size_t i = 0; i < n; i++) {
        size_t cl = strlen(comments[i]);
        wisp__ogg_put32(p, (uint32_t)cl);
        memcpy(p + 4, comments[i], cl);
        p += 4 + cl;
    }
    return (ssize_t)len;
}
