/* Ogg (RFC 3533): the page CRC and the page writer. */
#include <stdlib.h>
#include <string.h>

#include "media/ogg_int.h"
#include "wisp/ogg.h"

/* The CRC of RFC 3533 §6 (and libogg's framing.c): MSB-first, polynomial
 * 0x04C11DB7, initial value 0, no final xor. The table is the CRC of each
 * byte value in the top byte, built once at compile time from the
 * polynomial (see crc_entry), so no run-time initialisation races. */
#define P 0x04C11DB7u
#define B1(c) (((c) << 1) ^ (((c) & 0x80000000u) ? P : 0u))
#define B8(c) B1(B1(B1(B1(B1(B1(B1(B1(c))))))))
#define E(i) B8((uint32_t)(i) << 24)
#define E4(i) E(i), E(i + 1), E(i + 2), E(i + 3)
#define E16(i) E4(i), E4(i + 4), E4(i + 8), E4(i + 12)
#define E64(i) E16(i), E16(i + 16), E16(i + 32), E16(i + 48)

static const uint32_t crc_table[256] = {
    E64(0), E64(64), E64(128), E64(192),
};

uint32_t wisp_ogg_crc(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++)
        crc = (crc << 8) ^ crc_table[(crc >> 24) ^ p[i]];
    return crc;
}

void wisp__ogg_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void wisp__ogg_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

uint32_t wisp__ogg_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

uint64_t wisp__ogg_get64(const uint8_t *p)
{
    return (uint64_t)wisp__ogg_get32(p) |
           (uint64_t)wisp__ogg_get32(p + 4) << 32;
}

/* ---- writer */

struct wisp_ogg_writer {
    wisp_ogg_page_cb cb;
    void *arg;
    uint32_t serial;
    uint32_t seq;          /* sequence number of the next page */
    size_t page_bytes;     /* body size that finishes a page */
    int64_t granule;       /* of the last packet ending on this page */
    uint8_t nseg;          /* lacing values used on this page */
    bool continued;        /* this page starts inside a packet */
    bool ended;            /* the EOS page is out */
    size_t body_len;
    uint8_t lacing[255];
    uint8_t page[WISP_OGG_MAX_PAGE];
};

wisp_ogg_writer_t *wisp_ogg_writer_create(uint32_t serial, size_t page_bytes,
                                          wisp_ogg_page_cb cb, void *arg)
{
    if (!cb) {
        errno = EINVAL;
        return NULL;
    }
    wisp_ogg_writer_t *w = malloc(sizeof *w);
    if (!w) {
        errno = ENOMEM;
        return NULL;
    }
    w->cb = cb;
    w->arg = arg;
    w->serial = serial;
    w->seq = 0;
    w->page_bytes = page_bytes ? page_bytes : 4096;
    w->granule = -1;
    w->nseg = 0;
    w->continued = false;
    w->ended = false;
    w->body_len = 0;
    return w;
}

void wisp_ogg_writer_destroy(wisp_ogg_writer_t *w)
{
    free(w);
}

uint32_t wisp_ogg_writer_pages(const wisp_ogg_writer_t *w)
{
    return w->seq;
}

/* Lay out the header and lacing table in front of the body, which sits
 * at a fixed offset (27 + 255) in `page`, so the page is contiguous from
 * page + 255 - nseg. */
static int emit(wisp_ogg_writer_t *w, bool eos, bool next_continued)
{
    uint8_t *body = w->page + 27 + 255;
    uint8_t *h = body - w->nseg - 27;
    memcpy(h, "OggS", 4);
    h[4] = 0;
    h[5] = (uint8_t)((w->continued ? WISP_OGG_CONTINUED : 0) |
                     (w->seq == 0 ? WISP_OGG_BOS : 0) |
                     (eos ? WISP_OGG_EOS : 0));
    wisp__ogg_put64(h + 6, (uint64_t)w->granule);
    wisp__ogg_put32(h + 14, w->serial);
    wisp__ogg_put32(h + 18, w->seq);
    memset(h + 22, 0, 4);
    h[26] = w->nseg;
    memcpy(h + 27, w->lacing, w->nseg);
    size_t len = 27 + (size_t)w->nseg + w->body_len;
    wisp__ogg_put32(h + 22, wisp_ogg_crc(0, h, len));
    w->seq++;
    w->nseg = 0;
    w->body_len = 0;
    w->granule = -1;
    w->continued = next_continued;
    if (eos)
        w->ended = true;
    return w->cb(w->arg, h, len);
}

int wisp_ogg_writer_flush(wisp_ogg_writer_t *w)
{
    if (w->nseg == 0)
        return 0;
    return emit(w, false, false);
}

int wisp_ogg_writer_packet(wisp_ogg_writer_t *w, const void *data,
                           size_t len, int64_t granule, unsigned flags)
{
    if ((!data && len) || (flags & ~(unsigned)(WISP_OGG_WRITE_FLUSH |
                                               WISP_OGG_WRITE_EOS)))
        return -EINVAL;
    if (w->ended)
        return WISP_ESTATE;
    if (len > ((size_t)16 << 20))
        return -EMSGSIZE;
    const uint8_t *p = data;
    size_t left = len;
    int rc = 0;
    /* A packet is len / 255 segments of 255 and one final segment of
     * len % 255 (0 when len is a multiple of 255, RFC 3533 §5). */
    for (;;) {
        if (w->nseg == 255) {
            int r = emit(w, false, true);
            if (r < 0 && rc == 0)
                rc = r;
        }
        size_t seg = left < 255 ? left : 255;
        if (seg) {
            memcpy(w->page + 27 + 255 + w->body_len, p, seg);
            p += seg;
        }
        w->body_len += seg;
        w->lacing[w->nseg++] = (uint8_t)seg;
        left -= seg;
        if (seg < 255)
            break;
    }
    w->granule = granule;
    bool eos = flags & WISP_OGG_WRITE_EOS;
    if (eos || (flags & WISP_OGG_WRITE_FLUSH) ||
        w->body_len >= w->page_bytes || w->nseg == 255) {
        int r = emit(w, eos, false);
        if (r < 0 && rc == 0)
            rc = r;
    }
    return rc;
}

int wisp__ogg_writer_end(wisp_ogg_writer_t *w, int64_t granule)
{
    if (w->ended)
        return WISP_ESTATE;
    w->granule = granule;
    return emit(w, true, false);
}

unsigned wisp__ogg_writer_held(const wisp_ogg_writer_t *w)
{
    return w->nseg;
}
