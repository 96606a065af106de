/* xiaozhi-server — one device's WebSocket session: the upgrade (ids,
 * auth), the hello, listen/abort/mcp messages, uplink audio through the
 * VAD, the turn (ASR → LLM → TTS through the provider gate), the paced
 * downlink, the timers (hello, no-voice farewell, hard idle close) and
 * the save on close. States change only through xz_session_next
 * (session.c). Everything here runs on the session's loop. */
#ifndef XZ_DEVICE_H
#define XZ_DEVICE_H

#include <stdint.h>

#include <wisp.h>

#include "mcp.h"
#include "pacing.h"
#include "providers.h"
#include "session.h"
#include "vad.h"

/* Uplink audio kept for one utterance: 60 s, and a byte bound for
 * packets far above the device's bitrate. Frames beyond are dropped
 * and counted (xiaozhi_frames_dropped_total{reason="utterance_full"}). */
#define XZ_MAX_UTTERANCE_MS 60000
#define XZ_MAX_UTTERANCE_BYTES (512 * 1024)
/* Packets of pre-roll kept before speech starts (§4.1). */
#define XZ_PREROLL_PACKETS 10
/* Dialogue text kept per session for the save hook. */
#define XZ_MAX_DIALOGUE_BYTES (64 * 1024)

typedef struct xz_segment {
    struct xz_segment *next;
    char *sentence;       /* sent as tts sentence_start first (may be NULL) */
    xz_pkts_t *pkts;      /* then these packets, paced (may be NULL) */
    uint32_t next_pkt;
    int announced;
} xz_segment_t;

typedef struct xz_dev {
    wisp_ws_t *ws;
    wisp_loop_t *loop;
    int refs;             /* the session + each pending continuation */
    int closed;
    char device_id[64];
    char client_id[80];
    char session_id[40];
    char vision_base[256];/* http://host:port used in MCP initialize */
    int framing;          /* 1, 2, 3 */

    xz_state_t state;
    xz_listen_mode_t mode;
    int feat_mcp, feat_aec;
    uint32_t up_rate, up_frame_ms;
    uint32_t down_rate, down_frame_ms;

    /* uplink */
    xz_pkts_t *utt;
    uint64_t utt_bytes_dropped;
    const xz_vad_ops_t *vad;
    xz_opus_vad_t vad_state;

    /* the turn */
    uint32_t gen;                 /* bumps when a reply is cancelled */
    wisp_future_t *pending;       /* the provider call in flight */
    xz_pkts_t *turn_utt;
    char *user_text;
    char *reply_text;
    char *sentences;              /* reply text, split (NUL-separated) */
    size_t sent_pos, sent_len;
    int tts_done;                 /* every sentence has its packets */
    int tts_started;              /* tts start sent for this reply */
    int farewell;
    xz_segment_t *q_head, *q_tail;
    xz_pacer_t pacer;
    uint32_t down_ts;             /* v2 downlink timestamp, ms */
    uint32_t sent_pkts;           /* this reply: packets sent */
    uint64_t first_sent, last_sent, max_late; /* this reply: ms */
    wisp_timer_t t_pace;
    int draining;

    /* timers */
    wisp_timer_t t_house;
    uint64_t house_due;
    uint64_t t_open, last_voice, last_activity;

    xz_mcp_t mcp;

    /* dialogue for the save hook: JSON lines */
    char *dialogue;
    size_t dialogue_len;
} xz_dev_t;

/* The WebSocket route (GET /xiaozhi/v1/ and /xiaozhi/v1): a plain GET
 * gets 200 text; an upgrade is checked (Device-Id, auth) and becomes a
 * session. */
void xz_device_route(wisp_req_t *req, wisp_res_t *res, void *arg);

/* The WebSocket options every session uses (set by main). */
extern wisp_ws_opts_t xz_ws_opts;

/* Send one JSON text message built by `w` (finished here). Returns 0 or
 * a negative code. */
int xz_dev_send(xz_dev_t *d, wisp_json_writer_t *w);

/* Keep `d` alive across a continuation. */
void xz_dev_ref(xz_dev_t *d);
void xz_dev_unref(xz_dev_t *d);

/* Run a text utterance through the turn (the intent hook and tests). */
void xz_dev_text_turn(xz_dev_t *d, const char *text);

#endif
