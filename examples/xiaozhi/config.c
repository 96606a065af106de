/* xiaozhi-server — configuration keys, INI parsing, overrides. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wisp.h>

typedef enum { K_STR, K_U32, K_I32, K_BOOL, K_PIPE, K_LEVEL } kind_t;

typedef struct key_def {
    const char *name; /* "section.key" */
    kind_t kind;
    size_t off;
    size_t size;      /* K_STR: buffer size */
    long long min, max;
} key_def;

#define S(n, f) {n, K_STR, offsetof(xz_config_t, f), \
                 sizeof(((xz_config_t *)0)->f), 0, 0}
#define U(n, f, lo, hi) {n, K_U32, offsetof(xz_config_t, f), 4, lo, hi}
#define I(n, f, lo, hi) {n, K_I32, offsetof(xz_config_t, f), 4, lo, hi}
#define B(n, f) {n, K_BOOL, offsetof(xz_config_t, f), sizeof(int), 0, 1}

static const key_def keys[] = {
    S("server.host", host),
    U("server.port", port, 0, 65535),
    U("server.http_port", http_port, 0, 65535),
    U("server.threads", threads, 0, 1024),
    S("server.public_ws_url", public_ws_url),
    S("server.public_http_url", public_http_url),
    S("server.www", www),
    U("server.max_sessions", max_sessions, 1, 10000000),
    I("ota.timezone_offset", timezone_offset, -1440, 1440),
    U("ota.websocket_version", websocket_version, 1, 3),
    S("ota.firmware_dir", firmware_dir),
    B("activation.enabled", activation_enabled),
    U("activation.code_ttl_s", activation_code_ttl_s, 10, 86400 * 30),
    U("activation.max_devices", activation_max_devices, 1, 65536),
    B("auth.enabled", auth_enabled),
    S("auth.secret", auth_secret),
    S("auth.allowed_devices", auth_allowed_devices),
    U("auth.expire_seconds", auth_expire_seconds, 1, 86400u * 3650),
    U("session.hello_timeout_ms", hello_timeout_ms, 100, 600000),
    U("session.no_voice_close_s", no_voice_close_s, 1, 86400),
    U("session.idle_close_s", idle_close_s, 1, 86400),
    U("session.ping_interval_s", ping_interval_s, 0, 3600),
    U("session.max_frame_bytes", max_frame_bytes, 256, 16u << 20),
    U("audio.downlink_sample_rate", downlink_sample_rate, 8000, 48000),
    U("audio.downlink_frame_ms", downlink_frame_ms, 10, 120),
    U("audio.prebuffer_frames", prebuffer_frames, 0, 20),
    U("audio.drain_ms", drain_ms, 0, 5000),
    U("vad.silence_ms", vad_silence_ms, 100, 10000),
    U("vad.min_speech_ms", vad_min_speech_ms, 0, 10000),
    {"pipeline.mode", K_PIPE, offsetof(xz_config_t, pipeline_mode),
     sizeof(int), 0, 2},
    U("pipeline.max_concurrent", max_concurrent, 1, 100000),
    U("pipeline.max_queue", max_queue, 0, 1000000),
    S("scripted.stt_text", stt_text),
    S("scripted.llm_text", llm_text),
    S("scripted.tts_file", tts_file),
    U("scripted.delay_ms", delay_ms, 0, 600000),
    S("scripted.emotion", emotion),
    S("scripted.tool_call", tool_call),
    S("scripted.tool_args", tool_args),
    S("tts.command", tts_command),
    S("tts.voice", tts_voice),
    U("tts.rate", tts_rate, 80, 450),
    S("tts.encoder", tts_encoder),
    U("tts.timeout_ms", tts_timeout_ms, 100, 600000),
    S("asr.decoder", asr_decoder),
    S("asr.command", asr_command),
    U("asr.timeout_ms", asr_timeout_ms, 100, 600000),
    S("voice.reply", voice_reply),
    S("save.dir", save_dir),
    U("vision.max_image_bytes", max_image_bytes, 1, 64u << 20),
    U("mcp.call_timeout_ms", call_timeout_ms, 100, 600000),
    {"log.level", K_LEVEL, offsetof(xz_config_t, log_level), sizeof(int),
     0, 4},
    S("log.access_log", access_log),
};

void xz_config_defaults(xz_config_t *c, const char *www)
{
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "0.0.0.0");
    c->port = 8000;
    snprintf(c->www, sizeof c->www, "%s", www ? www : "");
    c->max_sessions = 10000;
    c->websocket_version = 1;
    c->activation_code_ttl_s = 600;
    c->activation_max_devices = 4096;
    c->auth_expire_seconds = 2592000;
    c->hello_timeout_ms = 10000;
    c->no_voice_close_s = 120;
    c->idle_close_s = 180;
    c->ping_interval_s = 20;
    c->max_frame_bytes = 65536;
    c->downlink_sample_rate = 24000;
    c->downlink_frame_ms = 60;
    c->prebuffer_frames = 5;
    c->drain_ms = 420;
    c->vad_silence_ms = 700;
    c->vad_min_speech_ms = 300;
    c->pipeline_mode = XZ_PIPE_ECHO;
    c->max_concurrent = 16;
    c->max_queue = 64;
    snprintf(c->stt_text, sizeof c->stt_text, "hello");
    snprintf(c->llm_text, sizeof c->llm_text, "Hi there. How can I help?");
    snprintf(c->emotion, sizeof c->emotion, "happy");
    snprintf(c->tool_args, sizeof c->tool_args, "{}");
    snprintf(c->tts_command, sizeof c->tts_command, "espeak-ng");
    snprintf(c->tts_voice, sizeof c->tts_voice, "en-us");
    c->tts_rate = 150;
    snprintf(c->tts_encoder, sizeof c->tts_encoder, "opusenc");
    c->tts_timeout_ms = 20000;
    snprintf(c->asr_decoder, sizeof c->asr_decoder, "opusdec");
    snprintf(c->asr_command, sizeof c->asr_command,
             "pocketsphinx_continuous -infile \"$1\" -logfn /dev/null");
    c->asr_timeout_ms = 30000;
    c->max_image_bytes = 5242880;
    c->call_timeout_ms = 30000;
    c->log_level = WISP_LOG_INFO;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    WISP_PRINTF(3, 4);
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Downlink frame durations the firmware's decoder accepts (§3.5). */
static int frame_ms_ok(uint32_t ms)
{
    static const uint32_t ok[] = {10, 20, 40, 60, 80, 100, 120};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (ok[i] == ms)
            return 1;
    return 0;
}

/* The emotions the stock displays understand (PROTOCOL.md §3.7). */
static int emotion_ok(const char *e)
{
    static const char *const v[] = {"neutral", "happy", "laughing",
        "funny", "sad", "angry", "crying", "loving", "embarrassed",
        "surprised", "shocked", "thinking", "winking", "cool", "relaxed",
        "delicious", "kissy", "confident", "sleepy", "silly", "confused"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (!strcmp(v[i], e))
            return 1;
    return 0;
}

static int rate_ok(uint32_t hz)
{
    return hz == 8000 || hz == 12000 || hz == 16000 || hz == 24000 ||
           hz == 48000;
}

int xz_config_set(xz_config_t *c, const char *key, const char *value,
                  char *err, size_t errlen)
{
    const key_def *k = NULL;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(keys[i].name, key) == 0)
            k = &keys[i];
    if (!k) {
        seterr(err, errlen, "unknown key '%s'", key);
        return -1;
    }
    char *dst = (char *)c + k->off;
    switch (k->kind) {
    case K_STR: {
        size_t n = strlen(value);
        if (strcmp(key, "scripted.emotion") == 0 && !emotion_ok(value)) {
            seterr(err, errlen, "%s: '%s' is not an emotion the device "
                   "shows (neutral happy laughing funny sad angry crying "
                   "loving embarrassed surprised shocked thinking winking "
                   "cool relaxed delicious kissy confident sleepy silly "
                   "confused)", key, value);
            return -1;
        }
        if (n >= k->size) {
            seterr(err, errlen, "%s: value longer than %zu bytes", key,
                   k->size - 1);
            return -1;
        }
        memcpy(dst, value, n + 1);
        return 0;
    }
    case K_U32:
    case K_I32: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (!*value || *end || errno) {
            seterr(err, errlen, "%s: '%s' is not a whole number", key,
                   value);
            return -1;
        }
        if (v < k->min || v > k->max) {
            seterr(err, errlen, "%s: %lld is out of range %lld..%lld", key,
                   v, k->min, k->max);
            return -1;
        }
        if (k->kind == K_U32) {
            uint32_t u = (uint32_t)v;
            if (strcmp(key, "audio.downlink_frame_ms") == 0 &&
                !frame_ms_ok(u)) {
                seterr(err, errlen, "%s: %u ms is not an Opus frame the "
                       "device accepts (10 20 40 60 80 100 120)", key, u);
                return -1;
            }
            if (strcmp(key, "audio.downlink_sample_rate") == 0 &&
                !rate_ok(u)) {
                seterr(err, errlen, "%s: %u is not an Opus rate (8000 "
                       "12000 16000 24000 48000)", key, u);
                return -1;
            }
            memcpy(dst, &u, 4);
        } else {
            int32_t s = (int32_t)v;
            memcpy(dst, &s, 4);
        }
        return 0;
    }
    case K_BOOL: {
        int b;
        if (!strcasecmp(value, "true") || !strcmp(value, "1") ||
            !strcasecmp(value, "yes") || !strcasecmp(value, "on"))
            b = 1;
        else if (!strcasecmp(value, "false") || !strcmp(value, "0") ||
                 !strcasecmp(value, "no") || !strcasecmp(value, "off"))
            b = 0;
        else {
            seterr(err, errlen, "%s: '%s' is not true or false", key,
                   value);
            return -1;
        }
        memcpy(dst, &b, sizeof b);
        return 0;
    }
    case K_PIPE: {
        int m;
        if (!strcmp(value, "echo"))
            m = XZ_PIPE_ECHO;
        else if (!strcmp(value, "scripted"))
            m = XZ_PIPE_SCRIPTED;
        else if (!strcmp(value, "voice"))
            m = XZ_PIPE_VOICE;
        else {
            seterr(err, errlen, "%s: '%s' is not echo, scripted or voice",
                   key,
                   value);
            return -1;
        }
        memcpy(dst, &m, sizeof m);
        return 0;
    }
    case K_LEVEL: {
        static const char *names[] = {"debug", "info", "warn", "error",
                                      "off"};
        for (int i = 0; i < 5; i++)
            if (!strcasecmp(value, names[i])) {
                memcpy(dst, &i, sizeof i);
                return 0;
            }
        seterr(err, errlen, "%s: '%s' is not debug, info, warn, error or "
               "off", key, value);
        return -1;
    }
    }
    return -1;
}

static const char *trim(char *s, char **end)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        *--e = 0;
    if (end)
        *end = e;
    return s;
}

/* One line, NUL-terminated and writable. `section` is updated by headers.
 * Returns 0 or -1 with the reason in err. */
static int parse_line(xz_config_t *c, char *line, char *section,
                      size_t seclen, char *err, size_t errlen)
{
    char *end;
    char *s = (char *)trim(line, &end);
    if (!*s || *s == '#' || *s == ';')
        return 0;
    if (*s == '[') {
        if (end[-1] != ']') {
            seterr(err, errlen, "section header without ']'");
            return -1;
        }
        end[-1] = 0;
        const char *name = trim(s + 1, NULL);
        if (!*name || strlen(name) >= seclen) {
            seterr(err, errlen, "bad section name");
            return -1;
        }
        static const char *sections[] = {"server", "ota", "activation",
            "auth", "session", "audio", "vad", "pipeline", "scripted",
            "tts", "asr", "voice",
            "save", "vision", "mcp", "log"};
        int known = 0;
        for (size_t i = 0; i < sizeof sections / sizeof sections[0]; i++)
            known |= !strcmp(sections[i], name);
        if (!known) {
            seterr(err, errlen, "unknown section [%s]", name);
            return -1;
        }
        snprintf(section, seclen, "%s", name);
        return 0;
    }
    char *eq = strchr(s, '=');
    if (!eq) {
        seterr(err, errlen, "expected 'key = value'");
        return -1;
    }
    *eq = 0;
    const char *k = trim(s, NULL);
    char *vend;
    char *v = (char *)trim(eq + 1, &vend);
    if (!*k) {
        seterr(err, errlen, "empty key");
        return -1;
    }
    if (!*section) {
        seterr(err, errlen, "key '%s' before any [section]", k);
        return -1;
    }
    if (*v == '"') {
        if (vend - v < 2 || vend[-1] != '"') {
            seterr(err, errlen, "unterminated quoted value");
            return -1;
        }
        vend[-1] = 0;
        v++;
    } else {
        /* An unquoted value ends at a comment that follows whitespace. */
        for (char *p = v; *p; p++)
            if ((*p == '#' || *p == ';') && p > v &&
                (p[-1] == ' ' || p[-1] == '\t')) {
                *p = 0;
                trim(v, NULL);
                break;
            }
    }
    char full[160];
    if ((size_t)snprintf(full, sizeof full, "%s.%s", section, k) >=
        sizeof full) {
        seterr(err, errlen, "key too long");
        return -1;
    }
    return xz_config_set(c, full, v, err, errlen);
}

int xz_config_parse(xz_config_t *c, const char *name, const char *text,
                    size_t len, char *err, size_t errlen)
{
    char section[32] = "";
    char line[8192];
    size_t lineno = 0, i = 0;
    while (i < len) {
        lineno++;
        size_t j = i;
        while (j < len && text[j] != '\n')
            j++;
        size_t n = j - i;
        char why[512];
        if (n >= sizeof line) {
            seterr(err, errlen, "%s:%zu: line longer than %zu bytes", name,
                   lineno, sizeof line - 1);
            return -1;
        }
        memcpy(line, text + i, n);
        line[n] = 0;
        if (memchr(line, 0, n)) {
            seterr(err, errlen, "%s:%zu: NUL byte in line", name, lineno);
            return -1;
        }
        if (parse_line(c, line, section, sizeof section, why,
                       sizeof why) < 0) {
            seterr(err, errlen, "%s:%zu: %s", name, lineno, why);
            return -1;
        }
        i = j + 1;
    }
    return 0;
}

int xz_config_load(xz_config_t *c, const char *path, char *err,
                   size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        seterr(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_size > (1 << 20)) {
        seterr(err, errlen, "%s: not a regular file under 1 MiB", path);
        close(fd);
        return -1;
    }
    size_t len = (size_t)st.st_size;
    char *buf = malloc(len + 1);
    if (!buf) {
        close(fd);
        seterr(err, errlen, "%s: out of memory", path);
        return -1;
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    int rc = xz_config_parse(c, path, buf, got, err, errlen);
    free(buf);
    return rc;
}

int xz_config_env(xz_config_t *c, char *err, size_t errlen)
{
    static const char *const map[][2] = {
        {"XIAOZHI_PORT", "server.port"},
        {"XIAOZHI_HTTP_PORT", "server.http_port"},
        {"XIAOZHI_AUTH_SECRET", "auth.secret"},
        {"XIAOZHI_PUBLIC_URL", "server.public_ws_url"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        const char *v = getenv(map[i][0]);
        if (!v)
            continue;
        char why[512];
        if (xz_config_set(c, map[i][1], v, why, sizeof why) < 0) {
            seterr(err, errlen, "%s: %s", map[i][0], why);
            return -1;
        }
    }
    return 0;
}

int xz_config_device_allowed(const xz_config_t *c, const char *device_id)
{
    const char *p = c->auth_allowed_devices;
    size_t dl = strlen(device_id);
    while (*p) {
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        const char *e = p;
        while (*e && *e != ',')
            e++;
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if ((size_t)(t - p) == dl && dl && !strncasecmp(p, device_id, dl))
            return 1;
        p = e;
    }
    return 0;
}
