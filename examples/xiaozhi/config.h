/* xiaozhi-server — configuration: one struct with every key, an INI file
 * reader with FILE:LINE errors, environment overrides and --set.
 *
 * Keys are addressed as "section.key" (e.g. "session.idle_close_s"); the
 * table in config.c is the single list of keys, their types, defaults and
 * ranges, and docs/xiaozhi.md and xiaozhi.ini document the same list. */
#ifndef XZ_CONFIG_H
#define XZ_CONFIG_H

#include <stddef.h>
#include <stdint.h>

enum { XZ_PIPE_ECHO = 0, XZ_PIPE_SCRIPTED = 1, XZ_PIPE_VOICE = 2 };

#define XZ_STR_SHORT 128
#define XZ_STR_LONG 512

typedef struct xz_config {
    /* [server] */
    char host[XZ_STR_SHORT];
    uint32_t port;
    uint32_t http_port;
    uint32_t threads;
    char public_ws_url[XZ_STR_LONG];
    char public_http_url[XZ_STR_LONG];
    char www[XZ_STR_LONG];
    uint32_t max_sessions;
    /* [ota] */
    int32_t timezone_offset;
    uint32_t websocket_version;
    char firmware_dir[XZ_STR_LONG];
    /* [activation] */
    int activation_enabled;
    uint32_t activation_code_ttl_s;
    uint32_t activation_max_devices; /* unbound devices tracked at once */
    /* [auth] */
    int auth_enabled;
    char auth_secret[XZ_STR_SHORT];
    char auth_allowed_devices[XZ_STR_LONG * 4];
    uint32_t auth_expire_seconds;
    /* [session] */
    uint32_t hello_timeout_ms;
    uint32_t no_voice_close_s;
    uint32_t idle_close_s;
    uint32_t ping_interval_s;
    uint32_t max_frame_bytes;
    /* [audio] */
    uint32_t downlink_sample_rate;
    uint32_t downlink_frame_ms;
    uint32_t prebuffer_frames;
    uint32_t drain_ms;
    /* [vad] */
    uint32_t vad_silence_ms;
    uint32_t vad_min_speech_ms;
    /* [pipeline] */
    int pipeline_mode;
    uint32_t max_concurrent;
    uint32_t max_queue;
    /* [scripted] */
    char stt_text[XZ_STR_LONG];
    char llm_text[XZ_STR_LONG * 4];
    char tts_file[XZ_STR_LONG];
    uint32_t delay_ms;
    char emotion[32];
    char tool_call[XZ_STR_SHORT];   /* device tool called each turn */
    char tool_args[XZ_STR_LONG];    /* its arguments (a JSON object) */
    /* [save] */
    /* [tts] the command provider (pipeline.mode = voice) */
    char tts_command[XZ_STR_LONG];  /* the synthesizer (espeak-ng) */
    char tts_voice[XZ_STR_SHORT];
    uint32_t tts_rate;              /* words per minute */
    char tts_encoder[XZ_STR_LONG];  /* opusenc */
    uint32_t tts_timeout_ms;
    /* [asr] the command provider */
    char asr_decoder[XZ_STR_LONG];  /* opusdec */
    char asr_command[XZ_STR_LONG];  /* sh command, $1 = the raw file */
    uint32_t asr_timeout_ms;
    /* [voice] */
    char voice_reply[XZ_STR_LONG * 4]; /* fixed reply; "" = the transcript */
    char save_dir[XZ_STR_LONG];
    /* [vision] */
    uint32_t max_image_bytes;
    /* [mcp] */
    uint32_t call_timeout_ms;
    /* [log] */
    int log_level; /* wisp_log_level_t */
    char access_log[XZ_STR_LONG];
} xz_config_t;

/* Fill `c` with the defaults; `www` is the compiled-in page directory. */
void xz_config_defaults(xz_config_t *c, const char *www);

/* Set "section.key" to `value` (text as in the file). Returns 0, or -1
 * with a reason ("unknown key", "not a number", "out of range 1..65535",
 * ...) written to `err` (NUL-terminated, truncated to `errlen`). */
int xz_config_set(xz_config_t *c, const char *key, const char *value,
                  char *err, size_t errlen);

/* Parse INI text (`len` bytes, need not be NUL-terminated) named `name`
 * in messages. Returns 0, or -1 with "NAME:LINE: reason" in `err`. */
int xz_config_parse(xz_config_t *c, const char *name, const char *text,
                    size_t len, char *err, size_t errlen);

/* Read and parse the file at `path`. Returns 0 or -1 ("PATH: No such
 * file or directory", or a parse error as above). */
int xz_config_load(xz_config_t *c, const char *path, char *err,
                   size_t errlen);

/* Apply XIAOZHI_PORT, XIAOZHI_HTTP_PORT, XIAOZHI_AUTH_SECRET and
 * XIAOZHI_PUBLIC_URL from the environment. Returns 0, or -1 with
 * "XIAOZHI_PORT: reason". */
int xz_config_env(xz_config_t *c, char *err, size_t errlen);

/* Nonzero when `device_id` is in auth.allowed_devices (a comma list,
 * compared case-insensitively, spaces around items ignored). */
int xz_config_device_allowed(const xz_config_t *c, const char *device_id);

#endif
