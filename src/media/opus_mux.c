/* Ogg Opus (RFC 7845): the muxer (packets → pages) and the demuxer
 * (bytes → packets with durations). Granule positions count 48 kHz
 * samples including the pre-skip (§4). */
#include <stdlib.h>
#include <string.h>

#include "media/ogg_int.h"
#include "wisp/opus.h"

/* ---- muxer */

struct wisp_opus_mux {
    wisp_ogg_writer_t *w;
    uint64_t granule;      /* samples muxed */
    uint32_t page_samples; /* a page this long is finished at the next packet */
    uint32_t held;         /* samples of the packets ending on the open page */
    bool finished;
};

wisp_opus_mux_t *wisp_opus_mux_create(const wisp_opus_mux_opts_t *o,
                                      wisp_ogg_page_cb cb, void *arg)
{
    if (!o || !o->head || !cb || (!o->comments && o->ncomments)) {
        errno = EINVAL;
        return NULL;
    }
    uint8_t head[21 + 255];
    ssize_t hl = wisp_opus_head_write(o->head, head, sizeof head);
    if (hl < 0) {
        errno = EINVAL;
        return NULL;
    }
    size_t tl = 16 + strlen(o->vendor ? o->vendor : "wisp");
    for (size_t i = 0; i < o->ncomments; i++) {
        if (!o->comments[i]) {
            errno = EINVAL;
            return NULL;
        }
        tl += 4 + strlen(o->comments[i]);
    }
    if (tl > (64 << 10)) {
        errno = EINVAL;
        return NULL;
    }
    uint8_t *tags = malloc(tl);
    wisp_opus_mux_t *m = calloc(1, sizeof *m);
    if (!tags || !m) {
        free(tags);
        free(m);
        errno = ENOMEM;
        return NULL;
    }
    ssize_t n = wisp_opus_tags_write(o->vendor, o->comments, o->ncomments,
                                     tags, tl);
    if (n < 0) {
        free(tags);
        free(m);
        errno = EINVAL;
        return NULL;
    }
    /* Pages are finished by duration, not by size: the writer's size
     * threshold is out of reach (255 lacing values still end a page). */
    m->w = wisp_ogg_writer_create(o->serial, SIZE_MAX, cb, arg);
    if (!m->w) {
        free(tags);
        free(m);
        errno = ENOMEM;
        return NULL;
    }
    uint32_t ms = o->page_ms ? o->page_ms : 100;
    m->page_samples = (ms < 60000 ? ms : 60000) * 48;
    /* §3: OpusHead alone on the first page, OpusTags ending its page(s),
     * both with granule position 0. */
    int rc = wisp_ogg_writer_packet(m->w, head, (size_t)hl, 0,
                                    WISP_OGG_WRITE_FLUSH);
    if (rc == 0)
        rc = wisp_ogg_writer_packet(m->w, tags, (size_t)n, 0,
                                    WISP_OGG_WRITE_FLUSH);
    free(tags);
    if (rc < 0) {
        wisp_opus_mux_destroy(m);
        errno = EIO;
        return NULL;
    }
    return m;
}

void wisp_opus_mux_destroy(wisp_opus_mux_t *m)
{
    if (!m)
        return;
    wisp_ogg_writer_destroy(m->w);
    free(m);
}

uint64_t wisp_opus_mux_samples(const wisp_opus_mux_t *m)
{
    return m->granule;
}

int wisp_opus_mux_flush(wisp_opus_mux_t *m)
{
    if (m->finished)
        return 0;
    m->held = 0;
    return wisp_ogg_writer_flush(m->w);
}

int wisp_opus_mux_packet(wisp_opus_mux_t *m, const uint8_t *pkt, size_t len)
{
    if (m->finished)
        return WISP_ESTATE;
    int samples = wisp_opus_packet_parse(pkt, len, NULL);
    if (samples < 0)
        return samples == -EINVAL ? -EINVAL : WISP_EOPUS_PACKET;
    int rc = 0;
    if (m->held >= m->page_samples) {
        rc = wisp_opus_mux_flush(m);
        if (rc < 0)
            return rc;
    }
    uint32_t before = wisp_ogg_writer_pages(m->w);
    m->granule += (uint32_t)samples;
    rc = wisp_ogg_writer_packet(m->w, pkt, len, (int64_t)m->granule, 0);
    if (wisp_ogg_writer_pages(m->w) != before)
        m->held = wisp__ogg_writer_held(m->w) ? (uint32_t)samples : 0;
    else
        m->held += (uint32_t)samples;
    return rc;
}

int wisp_opus_mux_finish(wisp_opus_mux_t *m, uint32_t end_trim)
{
    if (m->finished)
        return WISP_ESTATE;
    /* §4.4: end trimming shortens the last page only; its granule
     * position must not fall before the end of the previous page. */
    if (end_trim > m->held)
        return -EINVAL;
    m->finished = true;
    return wisp__ogg_writer_end(m->w, (int64_t)(m->granule - end_trim));
}

/* ---- demuxer */

enum dstate { D_HEAD, D_TAGS, D_AUDIO, D_ENDED };

struct wisp_opus_demux {
    wisp_ogg_reader_t *r;
    enum dstate state;
    int err;
    bool start_checked;
    uint64_t samples;
    int64_t granule;
    wisp_opus_head_t head;
    wisp_opus_tags_t tags;
    uint8_t *tags_buf;
};

wisp_opus_demux_t *wisp_opus_demux_create(const wisp_ogg_limits_t *limits)
{
    wisp_opus_demux_t *d = calloc(1, sizeof *d);
    if (!d) {
        errno = ENOMEM;
        return NULL;
    }
    d->r = wisp_ogg_reader_create(limits);
    if (!d->r) {
        int e = errno;
        free(d);
        errno = e;
        return NULL;
    }
    d->granule = -1;
    return d;
}

void wisp_opus_demux_destroy(wisp_opus_demux_t *d)
{
    if (!d)
        return;
    wisp_ogg_reader_destroy(d->r);
    free(d->tags_buf);
    free(d);
}

const wisp_opus_head_t *wisp_opus_demux_head(const wisp_opus_demux_t *d)
{
    return d->state > D_HEAD ? &d->head : NULL;
}

const wisp_opus_tags_t *wisp_opus_demux_tags(const wisp_opus_demux_t *d)
{
    return d->state > D_TAGS ? &d->tags : NULL;
}

uint64_t wisp_opus_demux_samples(const wisp_opus_demux_t *d)
{
    return d->samples;
}

int64_t wisp_opus_demux_granule(const wisp_opus_demux_t *d)
{
    return d->granule;
}

/* One Ogg packet of the stream: 1 when it is audio for the caller, 0
 * when it was a header, or an error. */
static int take(wisp_opus_demux_t *d, const wisp_ogg_packet_t *op,
                wisp_opus_demux_packet_t *pkt)
{
    if (op->granule >= 0)
        d->granule = op->granule;
    switch (d->state) {
    case D_HEAD:
        /* §3: the identification header alone on the first page. */
        if (!op->bos || !op->page_end ||
            wisp_opus_head_parse(op->data, op->len, &d->head) != 0)
            return WISP_EOPUS_HEAD;
        d->state = D_TAGS;
        return 0;
    case D_TAGS: {
        /* §3: the comment header ends its page; audio starts a page. */
        wisp_opus_tags_t t;
        if (!op->page_end || wisp_opus_tags_parse(op->data, op->len, &t) != 0)
            return WISP_EOPUS_TAGS;
        d->tags_buf = malloc(op->len);
        if (!d->tags_buf)
            return -ENOMEM;
        memcpy(d->tags_buf, op->data, op->len);
        wisp_opus_tags_parse(d->tags_buf, op->len, &d->tags);
        d->state = D_AUDIO;
        return 0;
    }
    case D_AUDIO:
        break;
    case D_ENDED:
        return 0;
    }
    int samples = wisp_opus_packet_parse(op->data, op->len, NULL);
    if (samples < 0)
        return WISP_EOPUS_PACKET;
    d->samples += (uint32_t)samples;
    if (op->granule >= 0 && !d->start_checked) {
        /* §4.5: the first granule position minus the samples completed
         * up to it is where the stream starts: not before zero, except
         * on a stream's only (EOS) page. */
        d->start_checked = true;
        if ((uint64_t)op->granule < d->samples && !op->eos)
            return WISP_EOPUS_GRANULE;
    }
    pkt->data = op->data;
    pkt->len = op->len;
    pkt->samples = (uint32_t)samples;
    pkt->granule = op->granule;
    pkt->eos = op->eos;
    if (op->eos)
        d->state = D_ENDED;
    return 1;
}

int wisp_opus_demux_read(wisp_opus_demux_t *d, const void *buf, size_t len,
                         size_t *used, wisp_opus_demux_packet_t *pkt)
{
    if (!d || !used || !pkt || (!buf && len))
        return -EINVAL;
    *used = 0;
    if (d->err)
        return d->err;
    const uint8_t *in = buf;
    for (;;) {
        if (d->state == D_ENDED) {
            *used = len;
            return 0;
        }
        size_t u;
        wisp_ogg_packet_t op;
        int rc = wisp_ogg_reader_read(d->r, len ? in + *used : NULL,
                                      len - *used, &u, &op);
        *used += u;
        if (rc <= 0) {
            if (rc < 0)
                d->err = rc;
            return rc;
        }
        rc = take(d, &op, pkt);
        if (rc < 0)
            return d->err = rc;
        if (rc == 1)
            return 1;
        if (op.eos) /* a header page with EOS: no audio follows */
            d->state = D_ENDED;
    }
}

int wisp_opus_demux_finish(const wisp_opus_demux_t *d)
{
    if (d->err)
        return d->err;
    if (d->state == D_ENDED)
        return 0;
    int rc = wisp_ogg_reader_finish(d->r);
    if (rc < 0)
        return rc;
    if (d->state == D_HEAD)
        return WISP_EOPUS_HEAD;
    if (d->state == D_TAGS)
        return WISP_EOPUS_TAGS;
    return 0;
}
