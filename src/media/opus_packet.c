/* Opus packets (RFC 6716 §3): the TOC byte, frame layouts and their
 * validation (R1–R7 of §3.2), and the repacketizer (§3.2.5). No frame is
 * ever decoded: frames are opaque bytes that are located and copied. */
#include <string.h>

#include "media/opus_int.h"
#include "wisp/opus.h"

wisp_opus_toc_t wisp_opus_toc(uint8_t toc)
{
    /* §3.1, Table 2. SILK-only configs 0..11 have 10/20/40/60 ms frames,
     * hybrid 12..15 have 10/20 ms, CELT-only 16..31 have 2.5/5/10/20 ms;
     * in each group the duration is the low bits of the config. */
    static const uint16_t silk[4] = {480, 960, 1920, 2880};
    static const uint16_t celt[4] = {120, 240, 480, 960};
    wisp_opus_toc_t t;
    t.config = toc >> 3;
    t.stereo = (toc >> 2) & 1;
    t.code = toc & 3;
    if (t.config < 12) {
        t.mode = WISP_OPUS_SILK;
        t.bandwidth = (uint8_t)(WISP_OPUS_NB + t.config / 4);
        t.frame_samples = silk[t.config & 3];
    } else if (t.config < 16) {
        t.mode = WISP_OPUS_HYBRID;
        t.bandwidth = t.config < 14 ? WISP_OPUS_SWB : WISP_OPUS_FB;
        t.frame_samples = (t.config & 1) ? 960 : 480;
    } else {
        t.mode = WISP_OPUS_CELT;
        static const uint8_t bw[4] = {WISP_OPUS_NB, WISP_OPUS_WB,
                                      WISP_OPUS_SWB, WISP_OPUS_FB};
        t.bandwidth = bw[(t.config - 16) / 4];
        t.frame_samples = celt[t.config & 3];
    }
    return t;
}

/* §3.2.1: a frame length in one byte (0..251) or two (252..1275). Reads
 * from p[0..left). Returns the bytes used (1 or 2), or 0 when the second
 * byte is missing. */
static size_t frame_length(const uint8_t *p, size_t left, size_t *len)
{
    if (left < 1)
        return 0;
    if (p[0] < 252) {
        *len = p[0];
        return 1;
    }
    if (left < 2)
        return 0;
    *len = (size_t)p[1] * 4 + p[0];
    return 2;
}

int wisp_opus_packet_parse(const uint8_t *data, size_t len,
                           wisp_opus_packet_t *out)
{
    wisp_opus_packet_t tmp;
    if (!data && len)
        return -EINVAL;
    if (!out)
        out = &tmp;
    if (len < 1) /* R1 */
        return WISP_EOPUS_PACKET;
    out->toc = wisp_opus_toc(data[0]);
    out->vbr = 0;
    out->padding = 0;
    const uint8_t *p = data + 1;
    size_t left = len - 1;
    size_t lens[WISP_OPUS_MAX_FRAMES];
    size_t m;
    switch (out->toc.code) {
    case 0:
        m = 1;
        lens[0] = left;
        break;
    case 1: /* R3 */
        if (left % 2)
            return WISP_EOPUS_PACKET;
        m = 2;
        lens[0] = lens[1] = left / 2;
        break;
    case 2: { /* R4 */
        size_t n = frame_length(p, left, &lens[0]);
        if (n == 0 || lens[0] > left - n)
            return WISP_EOPUS_PACKET;
        p += n;
        left -= n;
        m = 2;
        lens[1] = left - lens[0];
        out->vbr = 1;
        break;
    }
    default: { /* code 3: R5, R6, R7 */
        if (left < 1)
            return WISP_EOPUS_PACKET;
        uint8_t fc = *p++;
        left--;
        m = fc & 0x3f;
        if (m == 0 || m * out->toc.frame_samples > WISP_OPUS_MAX_PACKET_SAMPLES)
            return WISP_EOPUS_PACKET;
        out->vbr = (fc & 0x80) != 0;
        if (fc & 0x40) {
            /* Padding length: 255 means 254 bytes and another length
             * byte follows; the padding bytes sit at the packet's end. */
            size_t pad = 0;
            for (;;) {
                if (left < 1)
                    return WISP_EOPUS_PACKET;
                uint8_t b = *p++;
                left--;
                out->padding++;
                pad += b == 255 ? 254 : b;
                if (b != 255)
                    break;
            }
            if (pad > left)
                return WISP_EOPUS_PACKET;
            left -= pad;
            out->padding += pad;
        }
        if (!out->vbr) { /* R6 */
            if (left % m)
                return WISP_EOPUS_PACKET;
            for (size_t i = 0; i < m; i++)
                lens[i] = left / m;
        } else { /* R7 */
            size_t sum = 0;
            for (size_t i = 0; i + 1 < m; i++) {
                size_t n = frame_length(p, left, &lens[i]);
                if (n == 0)
                    return WISP_EOPUS_PACKET;
                p += n;
                left -= n;
                sum += lens[i];
            }
            if (sum > left)
                return WISP_EOPUS_PACKET;
            lens[m - 1] = left - sum;
        }
        break;
    }
    }
    out->frames = (uint8_t)m;
    out->samples = (uint32_t)m * out->toc.frame_samples;
    for (size_t i = 0; i < m; i++) {
        if (lens[i] > WISP_OPUS_MAX_FRAME_BYTES) /* R2 and the like */
            return WISP_EOPUS_PACKET;
        out->frame[i] = p;
        out->frame_len[i] = (uint16_t)lens[i];
        p += lens[i];
    }
    return (int)out->samples;
}

static size_t put_length(uint8_t *p, size_t len)
{
    if (len < 252) {
        p[0] = (uint8_t)len;
        return 1;
    }
    p[0] = (uint8_t)(252 + ((len - 252) & 3));
    p[1] = (uint8_t)((len - p[0]) / 4);
    return 2;
}

ssize_t wisp__opus_build(uint8_t toc, const uint8_t *const *frame,
                         const size_t *flen, size_t m, bool code3,
                         uint8_t *out, size_t cap)
{
    toc &= 0xfc;
    if (m == 1 && !code3) {
        if (1 + flen[0] > cap)
            return -ENOBUFS;
        out[0] = toc;
        if (flen[0])
            memcpy(out + 1, frame[0], flen[0]);
        return (ssize_t)(1 + flen[0]);
    }
    bool cbr = true;
    size_t bytes = 0;
    for (size_t k = 0; k < m; k++) {
        bytes += flen[k];
        if (flen[k] != flen[0])
            cbr = false;
    }
    size_t hdr = 2;
    if (!cbr)
        for (size_t k = 0; k + 1 < m; k++)
            hdr += flen[k] < 252 ? 1 : 2;
    if (hdr + bytes > cap)
        return -ENOBUFS;
    uint8_t *p = out;
    *p++ = (uint8_t)(toc | 3);
    *p++ = (uint8_t)((cbr ? 0 : 0x80) | m);
    if (!cbr)
        for (size_t k = 0; k + 1 < m; k++)
            p += put_length(p, flen[k]);
    for (size_t k = 0; k < m; k++) {
        if (flen[k])
            memcpy(p, frame[k], flen[k]);
        p += flen[k];
    }
    return (ssize_t)(p - out);
}

ssize_t wisp_opus_join(const uint8_t *const *pkts, const size_t *lens,
                       size_t n, uint8_t *out, size_t cap)
{
    if (!pkts || !lens || n == 0 || (!out && cap))
        return -EINVAL;
    const uint8_t *frame[WISP_OPUS_MAX_FRAMES];
    size_t flen[WISP_OPUS_MAX_FRAMES];
    size_t m = 0, samples = 0;
    uint8_t toc0 = 0;
    for (size_t i = 0; i < n; i++) {
        wisp_opus_packet_t pk;
        int rc = wisp_opus_packet_parse(pkts[i], lens[i], &pk);
        if (rc < 0)
            return rc;
        if (i == 0)
            toc0 = pkts[0][0] & 0xfc;
        else if ((pkts[i][0] & 0xfc) != toc0)
            return WISP_EOPUS_MISMATCH;
        samples += pk.samples;
        if (samples > WISP_OPUS_MAX_PACKET_SAMPLES)
            return WISP_EOPUS_DURATION;
        for (size_t k = 0; k < pk.frames; k++) {
            frame[m] = pk.frame[k];
            flen[m] = pk.frame_len[k];
            m++;
        }
    }
    return wisp__opus_build(toc0, frame, flen, m, true, out, cap);
}

int wisp_opus_split(const uint8_t *pkt, size_t len, uint8_t *out, size_t cap,
                    size_t *lens)
{
    if (!pkt || !lens || (!out && cap))
        return -EINVAL;
    wisp_opus_packet_t pk;
    int rc = wisp_opus_packet_parse(pkt, len, &pk);
    if (rc < 0)
        return rc;
    size_t need = 0;
    for (size_t k = 0; k < pk.frames; k++)
        need += 1 + (size_t)pk.frame_len[k];
    if (need > cap)
        return -ENOBUFS;
    uint8_t *p = out;
    for (size_t k = 0; k < pk.frames; k++) {
        *p++ = (uint8_t)(pkt[0] & 0xfc); /* same config and stereo, code 0 */
        if (pk.frame_len[k])
            memcpy(p, pk.frame[k], pk.frame_len[k]);
        p += pk.frame_len[k];
        lens[k] = 1 + (size_t)pk.frame_len[k];
    }
    return pk.frames;
}
