/* xiaozhi-server — the bundled providers: echo (the default: the device
 * hears its own utterance back, a real end-to-end check of its audio
 * path), scripted (fixed texts and packets, for tests), and the
 * deterministic vision test provider. None needs an outside service. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "providers.h"

static char *dupstr(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

/* ---------------------------------------------------------------- echo */

static wisp_future_t *echo_asr(const xz_call_ctx_t *c)
{
    char buf[64];
    uint64_t ms = c->utterance
        ? (uint64_t)c->utterance->n * c->utterance->frame_ms : 0;
    snprintf(buf, sizeof buf, "(echo %llu ms)", (unsigned long long)ms);
    return xz_resolve_later(c->loop, 0, dupstr(buf), free);
}

static wisp_future_t *echo_llm(const xz_call_ctx_t *c, const char *text)
{
    xz_reply_t *r = calloc(1, sizeof *r);
    if (r) {
        r->text = dupstr(text);
        snprintf(r->emotion, sizeof r->emotion, "neutral");
    }
    return xz_resolve_later(c->loop, 0, r, xz_reply_free);
}

static wisp_future_t *echo_tts(const xz_call_ctx_t *c, const char *sentence)
{
    (void)sentence;
    xz_pkts_t *p = c->utterance ? xz_pkts_clone(c->utterance)
                                : xz_pkts_new(60);
    return xz_resolve_later(c->loop, 0, p, xz_pkts_free);
}

static const xz_pipeline_t echo_pipe = {
    .name = "echo",
    .asr = echo_asr,
    .llm = echo_llm,
    .tts = echo_tts,
    .configured_audio = 0,
};

const xz_pipeline_t *xz_pipeline_echo(void)
{
    return &echo_pipe;
}

/* ------------------------------------------------------------ scripted */

static wisp_future_t *scr_asr(const xz_call_ctx_t *c)
{
    return xz_resolve_later(c->loop, xz_app->cfg.delay_ms,
                            dupstr(xz_app->cfg.stt_text), free);
}

static wisp_future_t *scr_llm(const xz_call_ctx_t *c, const char *text)
{
    (void)text;
    xz_reply_t *r = calloc(1, sizeof *r);
    if (r) {
        r->text = dupstr(xz_app->cfg.llm_text);
        snprintf(r->emotion, sizeof r->emotion, "%s",
                 xz_app->cfg.emotion);
    }
    return xz_resolve_later(c->loop, xz_app->cfg.delay_ms, r,
                            xz_reply_free);
}

/* With no tts_file: 25 packets per sentence. Each is one SILK-only
 * wideband TOC byte for the frame duration with code 0 and no frame
 * data: a valid Opus packet that decodes as one frame of concealment
 * (silence) — RFC 6716 §3.2.1 allows a zero-length frame. */
static uint8_t silent_toc(uint32_t frame_ms)
{
    switch (frame_ms) {
    case 10: return 8 << 3;
    case 20: return 9 << 3;
    case 40: return 10 << 3;
    default: return 11 << 3; /* 60 ms; longer frames are not generated */
    }
}

static wisp_future_t *scr_tts(const xz_call_ctx_t *c, const char *sentence)
{
    (void)sentence;
    uint32_t fms = xz_app->cfg.downlink_frame_ms;
    xz_pkts_t *p;
    if (xz_app->tts_packets) {
        p = xz_pkts_clone(xz_app->tts_packets);
    } else {
        p = xz_pkts_new(fms);
        uint8_t toc = silent_toc(fms);
        /* Frames longer than 60 ms: a code-3 packet of 20 ms frames. */
        uint8_t pkt[2] = {(uint8_t)((9 << 3) | 3), (uint8_t)(fms / 20)};
        for (int i = 0; p && i < 25; i++) {
            int r = fms > 60 ? xz_pkts_push(p, pkt, 2)
                             : xz_pkts_push(p, &toc, 1);
            if (r < 0) {
                xz_pkts_free(p);
                p = NULL;
            }
        }
    }
    return xz_resolve_later(c->loop, xz_app->cfg.delay_ms, p, xz_pkts_free);
}

static const xz_pipeline_t scripted_pipe = {
    .name = "scripted",
    .asr = scr_asr,
    .llm = scr_llm,
    .tts = scr_tts,
    .configured_audio = 1,
};

const xz_pipeline_t *xz_pipeline_scripted(void)
{
    return &scripted_pipe;
}

/* -------------------------------------------------------------- vision */

static wisp_future_t *test_explain(wisp_loop_t *loop, const char *device_id,
                                   const char *question,
                                   const uint8_t *image, size_t len,
                                   const char *image_type)
{
    (void)device_id;
    (void)image;
    char *out = malloc(strlen(question) + 128);
    if (out)
        sprintf(out, "A %s image of %zu bytes. You asked: %s", image_type,
                len, question);
    return xz_resolve_later(loop, xz_app->cfg.delay_ms, out, free);
}

static const xz_vision_provider_t test_vision = {
    .name = "test",
    .explain = test_explain,
};

const xz_vision_provider_t *xz_vision_test_provider(void)
{
    return &test_vision;
}
