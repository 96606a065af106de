/* xiaozhi-server — Opus packet VAD. */
#include "vad.h"

#include <string.h>

int xz_opus_parse(const uint8_t *p, size_t len, xz_opus_info_t *out)
{
    if (len < 1)
        return -1;
    int config = p[0] >> 3;
    uint32_t us;
    if (config < 12) {          /* SILK-only: 10, 20, 40, 60 ms */
        static const uint32_t silk[4] = {10000, 20000, 40000, 60000};
        us = silk[config & 3];
    } else if (config < 16) {   /* hybrid: 10, 20 ms */
        us = (config & 1) ? 20000 : 10000;
    } else {                    /* CELT-only: 2.5, 5, 10, 20 ms */
        static const uint32_t celt[4] = {2500, 5000, 10000, 20000};
        us = celt[config & 3];
    }
    int code = p[0] & 3, frames;
    switch (code) {
    case 0:
        frames = 1;
        break;
    case 1:
        if ((len - 1) % 2)
            return -1;  /* two frames of equal size (R3) */
        frames = 2;
        break;
    case 2:
        if (len < 2)
            return -1;  /* R4: the first frame's length is coded */
        frames = 2;
        break;
    default:
        if (len < 2)
            return -1;
        frames = p[1] & 0x3f;
        if (frames == 0)
            return -1;  /* R5 */
        break;
    }
    if ((uint64_t)us * (uint64_t)frames > 120000)
        return -1;      /* R5: at most 120 ms */
    out->config = config;
    out->stereo = (p[0] >> 2) & 1;
    out->code = code;
    out->frames = frames;
    out->frame_us = us;
    out->duration_us = us * (uint32_t)frames;
    return 0;
}

static void opus_reset(void *st, const xz_vad_params_t *p)
{
    xz_opus_vad_t *v = st;
    memset(v, 0, sizeof *v);
    v->p = *p;
    if (!v->p.default_frame_ms)
        v->p.default_frame_ms = 60;
}

/* End the utterance (or discard a blip) once enough silence has run. */
static xz_vad_event_t settle(xz_opus_vad_t *v)
{
    if (!v->in_utt || v->silence_ms < v->p.silence_ms)
        return XZ_VAD_NONE;
    xz_vad_event_t e =
        v->speech_ms >= v->p.min_speech_ms ? XZ_VAD_END : XZ_VAD_DISCARD;
    v->in_utt = 0;
    v->started = 0;
    v->speech_ms = 0;
    v->silence_ms = 0;
    v->speaking = 0;
    return e;
}

static xz_vad_event_t opus_feed(void *st, const uint8_t *pkt, size_t len,
                                uint64_t now_ms)
{
    xz_opus_vad_t *v = st;
    xz_opus_info_t info;
    uint32_t ms;
    if (xz_opus_parse(pkt, len, &info) < 0) {
        v->malformed++;
        ms = v->p.default_frame_ms;
        len = 0;  /* unreadable: counts as silence for its duration */
    } else {
        ms = (info.duration_us + 500) / 1000;
        if (!ms)
            ms = 1;
    }
    v->last_ms = now_ms;
    uint64_t bps = (uint64_t)len * 1000 / ms;
    /* During DTX the encoder still sends a comfort-noise update about
     * every 400 ms (one 40-100 byte packet among the 1-byte ones): a
     * single large packet right after a DTX packet is not speech yet;
     * the next one decides. */
    int after_dtx = v->prev_dtx;
    v->prev_dtx = len <= XZ_VAD_DTX_BYTES;
    if (bps >= XZ_VAD_HI_BPS && !after_dtx)
        v->speaking = 1;
    else if (bps < XZ_VAD_LO_BPS)
        v->speaking = 0;
    if (v->speaking) {
        v->in_utt = 1;
        v->silence_ms = 0;
        v->speech_ms += ms;
        if (!v->started && v->speech_ms >= v->p.min_speech_ms) {
            v->started = 1;
            return XZ_VAD_START;
        }
        return XZ_VAD_NONE;
    }
    if (v->in_utt)
        v->silence_ms += ms;
    return settle(v);
}

static xz_vad_event_t opus_tick(void *st, uint64_t now_ms)
{
    xz_opus_vad_t *v = st;
    if (!v->in_utt || now_ms <= v->last_ms)
        return XZ_VAD_NONE;
    /* No packet at all for a while counts as silence: a client that
     * simply stops sending has stopped speaking. The gap after the last
     * packet's own duration is what is missing. */
    uint64_t gap = now_ms - v->last_ms;
    if (gap >= v->p.silence_ms + v->p.default_frame_ms) {
        v->silence_ms = v->p.silence_ms;
        return settle(v);
    }
    return XZ_VAD_NONE;
}

static int opus_active(const void *st)
{
    return ((const xz_opus_vad_t *)st)->in_utt;
}

const xz_vad_ops_t xz_vad_opus = {
    .name = "opus-packet",
    .state_size = sizeof(xz_opus_vad_t),
    .reset = opus_reset,
    .feed = opus_feed,
    .tick = opus_tick,
    .active = opus_active,
};
