/* Ogg (RFC 3533): the incremental page reader and packet assembler.
 *
 * Bytes are copied into one page buffer until a whole page is there (the
 * capture pattern and version after 4 and 27 bytes, the size after the
 * lacing table, so an oversized page is refused before its body is read),
 * then its CRC is checked and its packets are handed out: straight from
 * the page buffer when a packet lies within the page, from the packet
 * buffer when it crosses pages. The rules for garbage, loss and limits are
 * in include/wisp/ogg.h. */
#include <stdlib.h>
#include <string.h>

#include "media/ogg_int.h"
#include "wisp/ogg.h"

enum stage {
    ST_CAPTURE, /* want 4 bytes: "OggS" */
    ST_HEADER,  /* want 27 bytes: the fixed header */
    ST_LACING,  /* want 27 + nseg bytes: the lacing table */
    ST_BODY,    /* want the whole page */
    ST_DELIVER, /* page accepted: handing out its packets */
};

struct wisp_ogg_reader {
    size_t max_page;
    size_t max_packet;
    size_t max_skip;
    bool resync;
    int err;               /* sticky error, 0 when none */
    enum stage stage;
    size_t have;           /* bytes in page[] */
    size_t need;           /* bytes the current stage wants */
    size_t total;          /* page size, from ST_BODY on */
    size_t skip_run;       /* bytes skipped since the last good page */
    uint64_t skipped_bytes;
    uint64_t skipped_pages;

    /* The logical stream followed. */
    bool following;        /* a serial number is chosen */
    bool ended;            /* its EOS page was read */
    bool seq_known;
    bool stream_bos;       /* its first page had the BOS flag */
    uint32_t serial;
    uint32_t next_seq;
    uint32_t packet_no;

    /* The page being delivered. */
    uint8_t flags;
    uint8_t nseg;
    int last_end;          /* index of its last lacing value < 255, or -1 */
    int seg_i;             /* next lacing value to read */
    size_t body_off;       /* offset of that segment in the body */
    bool skip_head;        /* drop the continued head (lost beginning) */
    bool open_tail;        /* the page ends inside a packet */
    int64_t granule;
    uint32_t page_seq;

    /* A packet crossing pages. */
    bool pending;
    uint8_t *pkt;
    size_t pkt_len, pkt_cap;

    uint8_t *page;         /* max_page bytes */
};

wisp_ogg_reader_t *wisp_ogg_reader_create(const wisp_ogg_limits_t *lim)
{
    wisp_ogg_limits_t d = {0};
    if (!lim)
        lim = &d;
    size_t max_page = lim->max_page_bytes ? lim->max_page_bytes
                                          : WISP_OGG_MAX_PAGE;
    if (max_page < 27 + 255) {
        errno = EINVAL;
        return NULL;
    }
    if (max_page > WISP_OGG_MAX_PAGE)
        max_page = WISP_OGG_MAX_PAGE;
    wisp_ogg_reader_t *r = calloc(1, sizeof *r);
    if (!r) {
        errno = ENOMEM;
        return NULL;
    }
    r->page = malloc(max_page);
    if (!r->page) {
        free(r);
        errno = ENOMEM;
        return NULL;
    }
    r->max_page = max_page;
    r->max_packet = lim->max_packet_bytes ? lim->max_packet_bytes
                                          : (size_t)1 << 20;
    r->resync = lim->resync;
    r->max_skip = lim->max_skip_bytes ? lim->max_skip_bytes
                                      : (size_t)64 << 10;
    r->stage = ST_CAPTURE;
    r->need = 4;
    return r;
}

void wisp_ogg_reader_destroy(wisp_ogg_reader_t *r)
{
    if (!r)
        return;
    free(r->page);
    free(r->pkt);
    free(r);
}

uint64_t wisp_ogg_reader_skipped_bytes(const wisp_ogg_reader_t *r)
{
    return r->skipped_bytes;
}

uint64_t wisp_ogg_reader_skipped_pages(const wisp_ogg_reader_t *r)
{
    return r->skipped_pages;
}

static void to_capture(wisp_ogg_reader_t *r)
{
    r->stage = ST_CAPTURE;
    r->need = 4;
}

/* Resync: drop `n` leading bytes of the buffer, counting them against
 * the skip limit. */
static int drop(wisp_ogg_reader_t *r, size_t n)
{
    memmove(r->page, r->page + n, r->have - n);
    r->have -= n;
    r->skipped_bytes += n;
    r->skip_run += n;
    to_capture(r);
    return r->skip_run > r->max_skip ? WISP_EOGG_CAPTURE : 0;
}

/* Resync: the candidate at the start of the buffer is not a page; go on
 * from the next 'O' after its first byte. */
static int rescan(wisp_ogg_reader_t *r)
{
    const uint8_t *o = r->have > 1 ? memchr(r->page + 1, 'O', r->have - 1)
                                   : NULL;
    return drop(r, o ? (size_t)(o - r->page) : r->have);
}

static int append(wisp_ogg_reader_t *r, const uint8_t *p, size_t n)
{
    if (r->pkt_len + n > r->max_packet)
        return WISP_EOGG_PACKET_SIZE;
    if (r->pkt_len + n > r->pkt_cap) {
        size_t cap = r->pkt_cap ? r->pkt_cap : 4096;
        while (cap < r->pkt_len + n)
            cap *= 2;
        if (cap > r->max_packet)
            cap = r->max_packet;
        uint8_t *np = realloc(r->pkt, cap);
        if (!np)
            return -ENOMEM;
        r->pkt = np;
        r->pkt_cap = cap;
    }
    memcpy(r->pkt + r->pkt_len, p, n);
    r->pkt_len += n;
    return 0;
}

/* A page passed its CRC: decide whether it belongs to the stream we
 * follow and whether it continues what we hold. */
static int accept_page(wisp_ogg_reader_t *r)
{
    const uint8_t *h = r->page;
    uint8_t flags = h[5];
    uint32_t serial = wisp__ogg_get32(h + 14);
    uint32_t seq = wisp__ogg_get32(h + 18);
    r->skip_run = 0;
    if (!r->following || (r->ended && (flags & WISP_OGG_BOS))) {
        r->following = true;
        r->ended = false;
        r->seq_known = false;
        r->serial = serial;
        r->stream_bos = flags & WISP_OGG_BOS;
        r->packet_no = 0;
        r->pending = false;
        r->pkt_len = 0;
    }
    if (serial != r->serial || r->ended) {
        r->skipped_pages++;
        return 1; /* not ours: skip it */
    }
    bool lost = r->seq_known && seq != r->next_seq;
    r->seq_known = true;
    r->next_seq = seq + 1;
    if (lost) {
        if (!r->resync)
            return WISP_EOGG_SEQUENCE;
        r->pending = false;
        r->pkt_len = 0;
    }
    bool cont = flags & WISP_OGG_CONTINUED;
    r->skip_head = false;
    if (cont && !r->pending) {
        /* The head of this page finishes a packet we never saw begin:
         * an error unless resyncing (or the stream was joined midway). */
        if (!r->resync)
            return WISP_EOGG_SEQUENCE;
        r->skip_head = true;
    } else if (!cont && r->pending) {
        if (!r->resync)
            return WISP_EOGG_SEQUENCE;
        r->pending = false;
        r->pkt_len = 0;
    }
    r->flags = flags;
    r->nseg = h[26];
    r->granule = (int64_t)wisp__ogg_get64(h + 6);
    r->page_seq = seq;
    r->seg_i = 0;
    r->body_off = 0;
    r->last_end = -1;
    for (int i = r->nseg - 1; i >= 0; i--) {
        if (h[27 + i] < 255) {
            r->last_end = i;
            break;
        }
    }
    r->open_tail = r->nseg ? h[27 + r->nseg - 1] == 255 : r->pending;
    if (flags & WISP_OGG_EOS)
        r->ended = true;
    return 0;
}

/* The current stage has the bytes it wants: check them. */
static int step(wisp_ogg_reader_t *r)
{
    uint8_t *h = r->page;
    switch (r->stage) {
    case ST_CAPTURE:
        if (memcmp(h, "OggS", 4) != 0)
            return r->resync ? rescan(r) : WISP_EOGG_CAPTURE;
        r->stage = ST_HEADER;
        r->need = 27;
        return 0;
    case ST_HEADER:
        if (h[4] != 0)
            return r->resync ? rescan(r) : WISP_EOGG_VERSION;
        r->stage = ST_LACING;
        r->need = 27 + (size_t)h[26];
        return 0;
    case ST_LACING: {
        size_t body = 0;
        for (size_t i = 0; i < h[26]; i++)
            body += h[27 + i];
        r->total = 27 + (size_t)h[26] + body;
        if (r->total > r->max_page)
            return WISP_EOGG_PAGE_SIZE;
        r->stage = ST_BODY;
        r->need = r->total;
        return 0;
    }
    case ST_BODY: {
        uint32_t want = wisp__ogg_get32(h + 22);
        uint32_t crc = wisp_ogg_crc(0, h, 22);
        static const uint8_t zero[4];
        crc = wisp_ogg_crc(crc, zero, 4);
        crc = wisp_ogg_crc(crc, h + 26, r->total - 26);
        if (crc != want)
            return r->resync ? rescan(r) : WISP_EOGG_CRC;
        int rc = accept_page(r);
        if (rc < 0)
            return rc;
        r->stage = ST_DELIVER;
        if (rc == 1) { /* another stream's page: deliver nothing */
            r->nseg = 0;
            r->seg_i = 0;
            r->open_tail = r->pending;
        }
        return 0;
    }
    case ST_DELIVER:
        break;
    }
    return 0;
}

/* Hand out the next packet of the accepted page: 1 with *pkt set, 0 when
 * the page has no more, or an error. */
static int deliver(wisp_ogg_reader_t *r, wisp_ogg_packet_t *pkt)
{
    const uint8_t *lacing = r->page + 27;
    const uint8_t *body = lacing + r->nseg;
    while (r->seg_i < r->nseg) {
        int k = r->seg_i;
        size_t plen = 0;
        while (k < r->nseg && lacing[k] == 255)
            plen += 255, k++;
        bool ends = k < r->nseg;
        if (ends)
            plen += lacing[k];
        const uint8_t *start = body + r->body_off;
        r->body_off += plen;
        r->seg_i = ends ? k + 1 : k;
        if (r->skip_head) {
            if (ends)
                r->skip_head = false;
            continue;
        }
        const uint8_t *data;
        size_t len;
        if (r->pending || !ends) {
            int rc = append(r, start, plen);
            if (rc < 0)
                return rc;
            r->pending = !ends;
            if (!ends)
                return 0;
            data = r->pkt;
            len = r->pkt_len;
            r->pkt_len = 0;
        } else {
            if (plen > r->max_packet)
                return WISP_EOGG_PACKET_SIZE;
            data = start;
            len = plen;
        }
        bool last = k == r->last_end;
        pkt->data = data;
        pkt->len = len;
        pkt->granule = last ? r->granule : -1;
        pkt->serial = r->serial;
        pkt->page_seq = r->page_seq;
        pkt->packet_no = r->packet_no++;
        /* The first packet can end on a later page than the BOS one. */
        pkt->bos = pkt->packet_no == 0 && r->stream_bos;
        pkt->eos = last && (r->flags & WISP_OGG_EOS);
        pkt->page_end = last;
        return 1;
    }
    return 0;
}

int wisp_ogg_reader_read(wisp_ogg_reader_t *r, const void *buf, size_t len,
                         size_t *used, wisp_ogg_packet_t *pkt)
{
    if (!r || !used || !pkt || (!buf && len))
        return -EINVAL;
    *used = 0;
    if (r->err)
        return r->err;
    const uint8_t *in = buf;
    for (;;) {
        if (r->stage == ST_DELIVER) {
            int rc = deliver(r, pkt);
            if (rc != 0) {
                if (rc < 0)
                    r->err = rc;
                return rc;
            }
            /* Keep what follows the page (after a rescan the buffer can
             * hold more than one page). */
            memmove(r->page, r->page + r->total, r->have - r->total);
            r->have -= r->total;
            to_capture(r);
            continue;
        }
        if (r->have < r->need) {
            if (*used == len)
                return 0;
            if (r->resync && r->have == 0) {
                /* Garbage between pages: skip to the next 'O' at once. */
                const uint8_t *o = memchr(in + *used, 'O', len - *used);
                size_t n = o ? (size_t)(o - (in + *used)) : len - *used;
                r->skipped_bytes += n;
                r->skip_run += n;
                *used += n;
                if (r->skip_run > r->max_skip)
                    return r->err = WISP_EOGG_CAPTURE;
                if (*used == len)
                    return 0;
            }
            size_t take = r->need - r->have;
            if (take > len - *used)
                take = len - *used;
            memcpy(r->page + r->have, in + *used, take);
            r->have += take;
            *used += take;
            if (r->have < r->need)
                return 0;
        }
        int rc = step(r);
        if (rc < 0)
            return r->err = rc;
    }
}

int wisp_ogg_reader_finish(const wisp_ogg_reader_t *r)
{
    if (r->err)
        return r->err;
    if (r->stage == ST_DELIVER) {
        if (r->have > r->total)
            return WISP_EOGG_TRUNCATED;
        return r->open_tail || (r->pending && r->seg_i >= r->nseg)
                   ? WISP_EOGG_TRUNCATED
                   : 0;
    }
    if (r->have > 0 || r->pending)
        return WISP_EOGG_TRUNCATED;
    return 0;
}
