/* xiaozhi-server — voice activity on Opus packets, without a codec.
 *
 * wisp has no Opus decoder, so the default VAD reads what the device's
 * encoder already decided. The firmware encodes with DTX on (PROTOCOL.md
 * §10.3): SILK's own PCM voice detector drives DTX, and after its
 * hangover every silent 60 ms frame comes out as a 1–2 byte packet. So
 * the bitrate of each packet (bytes per millisecond, the duration taken
 * from the TOC byte, RFC 6716 §3.1) is a reliable speech/silence signal:
 * speech at the device's ~16 kbit/s is 80–150 bytes per 60 ms, DTX
 * silence 1–2 bytes. Two thresholds give hysteresis (a packet between
 * them keeps the previous decision; so does a large packet right after a
 * DTX packet, which is the encoder's periodic comfort-noise update, not
 * speech), and time gives the rest: an
 * utterance ends after vad.silence_ms of silence (or of no packets at
 * all: a client that stops sending), and is kept only if it held at
 * least vad.min_speech_ms of speech.
 *
 * The VAD is a provider (xz_vad_ops_t): a PCM-based detector can replace
 * it by implementing the same four calls. Pure functions; any thread. */
#ifndef XZ_VAD_H
#define XZ_VAD_H

#include <stddef.h>
#include <stdint.h>

/* The TOC byte and frame count of an Opus packet (RFC 6716 §3.1–3.2). */
typedef struct xz_opus_info {
    int config;          /* 0..31 */
    int stereo;
    int code;            /* 0..3 */
    int frames;          /* 1..48 */
    uint32_t frame_us;   /* duration of one frame */
    uint32_t duration_us;/* of the packet, at most 120 ms */
} xz_opus_info_t;

/* Parse the TOC (and, for code 3, the frame-count byte). Returns 0, or -1
 * for a malformed packet: empty, code 1 with an odd payload, code 2
 * without its length byte, code 3 without its count byte or with 0
 * frames, or over 120 ms (R5). */
int xz_opus_parse(const uint8_t *p, size_t len, xz_opus_info_t *out);

typedef enum xz_vad_event {
    XZ_VAD_NONE = 0,
    XZ_VAD_START,    /* speech confirmed (min_speech_ms reached) */
    XZ_VAD_END,      /* end of an utterance with enough speech */
    XZ_VAD_DISCARD,  /* silence after too little speech: drop it */
} xz_vad_event_t;

typedef struct xz_vad_params {
    uint32_t silence_ms;     /* end of utterance after this much silence */
    uint32_t min_speech_ms;  /* shorter utterances are discarded */
    uint32_t default_frame_ms; /* for packets whose TOC is unreadable */
} xz_vad_params_t;

/* A VAD provider. `state` is state_size bytes owned by the session. */
typedef struct xz_vad_ops {
    const char *name;
    size_t state_size;
    void (*reset)(void *state, const xz_vad_params_t *p);
    /* One uplink packet at time now_ms. */
    xz_vad_event_t (*feed)(void *state, const uint8_t *pkt, size_t len,
                           uint64_t now_ms);
    /* Time passes with no packet (call from a timer). */
    xz_vad_event_t (*tick)(void *state, uint64_t now_ms);
    /* Nonzero inside an utterance (speech seen, end not yet reached). */
    int (*active)(const void *state);
} xz_vad_ops_t;

/* The packet-rate VAD described above. */
extern const xz_vad_ops_t xz_vad_opus;

/* Its state (public so tests and sessions can hold it inline). */
typedef struct xz_opus_vad {
    xz_vad_params_t p;
    int speaking;          /* last packet decision */
    int in_utt;            /* speech seen in this utterance */
    int started;           /* XZ_VAD_START reported */
    uint32_t speech_ms;    /* speech in this utterance */
    uint32_t silence_ms;   /* current run of silence */
    uint64_t last_ms;      /* arrival of the last packet */
    uint64_t malformed;    /* packets whose TOC could not be read */
    int prev_dtx;          /* the last packet was a DTX packet */
} xz_opus_vad_t;

/* Thresholds in bytes per second of audio (= bit rate / 8): a packet at
 * or above HI is speech, below LO silence, between keeps the last
 * decision. 500 B/s = 4 kbit/s: 30 bytes per 60 ms; 250 B/s: 15 bytes.
 * Measured on the fixtures of test/xiaozhi/gen_vad_fixtures.py (espeak-ng
 * speech through opusenc with the firmware's settings): speech packets
 * 77–150 bytes per 60 ms, DTX silence 1–2 bytes. */
#define XZ_VAD_HI_BPS 500
/* A DTX packet: at most this many bytes (TOC and at most two more). */
#define XZ_VAD_DTX_BYTES 3
#define XZ_VAD_LO_BPS 250

#endif
