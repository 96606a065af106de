/* xiaozhi-server — the command providers (TTS: espeak-ng | opusenc;
 * ASR: opusdec + a recognizer such as pocketsphinx) and the `voice`
 * pipeline that uses them (docs/xiaozhi.md, "Providers"). */
#ifndef XZ_VOICE_H
#define XZ_VOICE_H

#include "config.h"
#include "providers.h"

/* Speak `text` with cfg's tts.command | tts.encoder as a child of `loop`.
 * Returns a future of `loop` (the caller's reference) resolved with an
 * xz_pkts_t of `frame_ms` packets, or failed: -ENOENT (a program is
 * missing), -EIO (non-zero exit), -ETIMEDOUT (tts.timeout_ms), -ENODATA
 * (no audio), a WISP_EOGG_* / WISP_EOPUS_* code (the encoder's output
 * does not parse). Cancelling it stops the child. NULL on ENOMEM. */
wisp_future_t *xz_cmd_tts(wisp_loop_t *loop, const xz_config_t *cfg,
                          const char *text, uint32_t frame_ms);

/* Recognise `utterance` (mono Opus packets) with cfg's asr.decoder and
 * asr.command. Returns a future of `loop` resolved with the transcript
 * (char *, malloc'd, trimmed, "" when nothing was recognised), or failed
 * as xz_cmd_tts's (-EMSGSIZE: over 64 KiB of output). NULL on ENOMEM. */
wisp_future_t *xz_cmd_asr(wisp_loop_t *loop, const xz_config_t *cfg,
                          const xz_pkts_t *utterance);

/* Mux `u`'s packets into an Ogg Opus file in memory (*out malloc'd).
 * Packets that are not valid Opus are skipped. Returns 0 or a negative
 * code. */
int xz_ogg_from_pkts(const xz_pkts_t *u, uint8_t **out, size_t *len);

const xz_pipeline_t *xz_pipeline_voice(void);

#endif
