/* The streaming repacketizer (RFC 6716 §3.2.5): consecutive packets with
 * the same configuration are held, as frames, until they make the target
 * duration, then leave as one packet. Frames are copied, never decoded,
 * so the output decodes to exactly the samples of the input. */
#include <stdlib.h>
#include <string.h>

#include "media/opus_int.h"
#include "wisp/opus.h"

struct wisp_opus_repack {
    wisp_opus_packet_cb cb;
    void *arg;
    uint32_t target;     /* samples */
    uint32_t held;       /* samples held */
    uint8_t toc;         /* config and stereo of what is held */
    size_t m;            /* frames held */
    size_t flen[WISP_OPUS_MAX_FRAMES];
    size_t bytes;        /* frame bytes held */
    uint8_t *frames;     /* the held frames, back to back */
    uint8_t *out;        /* the packet being emitted */
};

/* Frames of at most 1275 bytes, at most 48 of them, plus the TOC, count
 * byte and two length bytes per frame of a VBR code-3 packet. */
#define FRAMES_CAP ((size_t)WISP_OPUS_MAX_FRAMES * WISP_OPUS_MAX_FRAME_BYTES)
#define OUT_CAP (FRAMES_CAP + 2 + 2 * WISP_OPUS_MAX_FRAMES)

wisp_opus_repack_t *wisp_opus_repack_create(uint32_t target,
                                            wisp_opus_packet_cb cb, void *arg)
{
    if (!cb || target == 0 || target > WISP_OPUS_MAX_PACKET_SAMPLES) {
        errno = EINVAL;
        return NULL;
    }
    wisp_opus_repack_t *r = calloc(1, sizeof *r);
    if (r) {
        r->frames = malloc(FRAMES_CAP);
        r->out = malloc(OUT_CAP);
    }
    if (!r || !r->frames || !r->out) {
        wisp_opus_repack_destroy(r);
        errno = ENOMEM;
        return NULL;
    }
    r->cb = cb;
    r->arg = arg;
    r->target = target;
    return r;
}

void wisp_opus_repack_destroy(wisp_opus_repack_t *r)
{
    if (!r)
        return;
    free(r->frames);
    free(r->out);
    free(r);
}

int wisp_opus_repack_flush(wisp_opus_repack_t *r)
{
    if (r->m == 0)
        return 0;
    const uint8_t *frame[WISP_OPUS_MAX_FRAMES];
    const uint8_t *p = r->frames;
    for (size_t k = 0; k < r->m; k++) {
        frame[k] = p;
        p += r->flen[k];
    }
    ssize_t n = wisp__opus_build(r->toc, frame, r->flen, r->m, false, r->out,
                                 OUT_CAP);
    uint32_t samples = r->held;
    r->m = 0;
    r->bytes = 0;
    r->held = 0;
    if (n < 0) /* cannot happen: OUT_CAP fits 120 ms of frames */
        return (int)n;
    return r->cb(r->arg, r->out, (size_t)n, samples);
}

int wisp_opus_repack_push(wisp_opus_repack_t *r, const uint8_t *pkt,
                          size_t len)
{
    if (!pkt)
        return -EINVAL;
    wisp_opus_packet_t pk;
    int samples = wisp_opus_packet_parse(pkt, len, &pk);
    if (samples < 0)
        return WISP_EOPUS_PACKET;
    int rc = 0;
    if (r->m && ((pkt[0] & 0xfc) != r->toc ||
                 r->held + (uint32_t)samples > r->target))
        rc = wisp_opus_repack_flush(r);
    r->toc = pkt[0] & 0xfc;
    for (size_t k = 0; k < pk.frames; k++) {
        if (pk.frame_len[k])
            memcpy(r->frames + r->bytes, pk.frame[k], pk.frame_len[k]);
        r->bytes += pk.frame_len[k];
        r->flen[r->m++] = pk.frame_len[k];
    }
    r->held += (uint32_t)samples;
    if (r->held >= r->target) {
        int r2 = wisp_opus_repack_flush(r);
        if (rc == 0)
            rc = r2;
    }
    return rc;
}
