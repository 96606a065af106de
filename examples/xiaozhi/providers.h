/* xiaozhi-server — the voice pipeline as providers.
 *
 * A turn runs ASR (utterance → text), LLM (text → reply text and
 * emotion) and TTS (one sentence → Opus packets). Each provider is a
 * small table of functions whose calls return a wisp future owned by
 * the session's loop: a provider either resolves it later on that loop
 * (a network engine driven by the loop, a timer) or submits blocking
 * work to the shared pool (wisp_pool_submit resolves it back on the
 * loop). Nothing a provider does may block the loop.
 *
 * Every call goes through a gate (xz_gate_call): an async semaphore per
 * provider per loop caps the calls running at once (pipeline.
 * max_concurrent shared out over the loops) with a bounded FIFO of
 * waiters (pipeline.max_queue likewise); a call that finds the queue
 * full fails at once with -EAGAIN, and the session answers the device
 * with a spoken "busy" sentence and tts stop — never silence. Cancelling
 * the future the gate returned cancels the provider's own future (or
 * the wait for a permit), so an abort stops in-flight work. */
#ifndef XZ_PROVIDERS_H
#define XZ_PROVIDERS_H

#include <stddef.h>
#include <stdint.h>

#include <wisp.h>

/* A list of Opus packets in one buffer. */
typedef struct xz_pkts {
    uint8_t *buf;
    size_t used, bufcap;
    uint32_t *off;
    uint16_t *len;
    uint32_t n, cap;
    uint32_t frame_ms;   /* duration of each packet */
} xz_pkts_t;

xz_pkts_t *xz_pkts_new(uint32_t frame_ms);
/* Append one packet (at most 65535 bytes). Returns 0 or -ENOMEM. */
int xz_pkts_push(xz_pkts_t *p, const uint8_t *data, size_t len);
/* Drop the first `k` packets. */
void xz_pkts_drop_front(xz_pkts_t *p, uint32_t k);
void xz_pkts_clear(xz_pkts_t *p);
xz_pkts_t *xz_pkts_clone(const xz_pkts_t *p);
void xz_pkts_free(void *p);   /* a wisp_free_cb */
/* Read an .opk file (u16 big-endian length + packet, repeated). Returns
 * NULL with errno (ENOENT, EINVAL for a malformed file, ENOMEM).
 * Blocking: call at start-up or on the pool. */
xz_pkts_t *xz_pkts_load(const char *path, uint32_t frame_ms);

typedef enum xz_prov_kind {
    XZ_PROV_ASR = 0,
    XZ_PROV_LLM,
    XZ_PROV_TTS,
    XZ_PROV_VISION,
    XZ_PROV_COUNT
} xz_prov_kind_t;

const char *xz_prov_name(xz_prov_kind_t k);

/* The LLM's answer. */
typedef struct xz_reply {
    char *text;          /* the reply, split into sentences by the turn */
    char emotion[32];    /* from the vocabulary of PROTOCOL.md §3.7 */
} xz_reply_t;
void xz_reply_free(void *r);

/* What a provider call knows about its session. */
typedef struct xz_call_ctx {
    wisp_loop_t *loop;
    const char *device_id;
    const char *session_id;
    const xz_pkts_t *utterance;  /* the user's audio (ASR; echo TTS) */
} xz_call_ctx_t;

typedef struct xz_pipeline {
    const char *name;
    /* → char * (malloc'd, NUL-terminated; "" = nothing recognised) */
    wisp_future_t *(*asr)(const xz_call_ctx_t *c);
    /* → xz_reply_t * */
    wisp_future_t *(*llm)(const xz_call_ctx_t *c, const char *user_text);
    /* → xz_pkts_t * for one sentence (may hold no packet) */
    wisp_future_t *(*tts)(const xz_call_ctx_t *c, const char *sentence);
    /* Nonzero: the hello announces audio.downlink_sample_rate and
     * audio.downlink_frame_ms (what the TTS produces); 0: the device's own
     * uplink parameters (echo plays the device's packets back). */
    int configured_audio;
} xz_pipeline_t;

/* The two bundled pipelines (pipelines.c). */
const xz_pipeline_t *xz_pipeline_echo(void);
const xz_pipeline_t *xz_pipeline_scripted(void);

/* The vision provider: answer `question` about an image. → char *. */
typedef struct xz_vision_provider {
    const char *name;
    wisp_future_t *(*explain)(wisp_loop_t *loop, const char *device_id,
                              const char *question, const uint8_t *image,
                              size_t len, const char *image_type);
} xz_vision_provider_t;
const xz_vision_provider_t *xz_vision_test_provider(void);

/* A future of `loop` resolved with (value, destroy) after `ms` (at once
 * when 0) by a loop timer; cancelling it stops the timer and destroys
 * the value. Returns NULL on ENOMEM (then value is destroyed). */
wisp_future_t *xz_resolve_later(wisp_loop_t *loop, uint64_t ms, void *value,
                                wisp_free_cb destroy);

/* ---- the gate: per-loop semaphores around provider calls */

/* Start the provider call `start(arg)` once a permit for provider `kind`
 * is free on `loop`. Returns a future of `loop` (one reference, the
 * caller's) that settles as the provider's future does (value moved), or
 * fails with -EAGAIN (queue full), or -ECANCELED when cancelled. `arg`
 * must stay valid until the returned future settles; `start` runs on the
 * loop, maybe inside this call. Returns NULL on ENOMEM. */
typedef wisp_future_t *(*xz_start_fn)(void *arg);
wisp_future_t *xz_gate_call(wisp_loop_t *loop, xz_prov_kind_t kind,
                            xz_start_fn start, void *arg);

/* Free every loop's gate (at exit, after the loops stopped). */
void xz_gates_destroy(void);

#endif
