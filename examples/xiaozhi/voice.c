/* xiaozhi-server — the command providers and the voice pipeline.
 *
 * TTS: `sh -c` runs the synthesizer (espeak-ng --stdout: a WAV stream)
 * piped into the encoder (opusenc: Ogg Opus on stdout) as a child of the
 * session's loop (wisp_process: no thread blocks). The Ogg bytes are
 * demuxed as they arrive and repacketized to the device's frame duration.
 *
 * ASR: the utterance's Opus packets are muxed into Ogg Opus (no
 * decoding) and written to the stdin of a shell that decodes them with
 * opusdec into a temporary WAV file and runs the recognizer command on it
 * ($1 = the file); its stdout, trimmed, is the transcript.
 *
 * Every outside argument (text, voice, program names) reaches the shell
 * as a positional parameter, never spliced into the script. Failures
 * (program missing, non-zero exit, timeout, no audio) fail the future:
 * the session then speaks its error sentence and sends tts stop.
 *
 * The shell runs under setsid(1): spawned by the server, it is not a
 * group leader, so setsid does not fork and the shell (wisp's child)
 * leads a new process group. A timeout or a cancel signals the whole
 * group, so no synthesizer or recognizer outlives its call. */
#include "voice.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"

#define ASR_OUT_MAX 65536

typedef struct job {
    int asr;
    wisp_future_t *f;       /* the result (one reference, the job's) */
    wisp_future_t *exit;    /* the process's exit future (a reference) */
    wisp_process_t *p;
    int refs;               /* the continuations on f and on exit */
    int exited, out_done, status;
    int err;                /* first error while reading the output */
    /* TTS */
    wisp_opus_demux_t *dm;
    wisp_opus_repack_t *rp;
    xz_pkts_t *pk;
    /* ASR */
    char *out;
    size_t olen;
    uint8_t *ogg;
    size_t ogglen, oggcap;
} job;

static void job_unref(job *j)
{
    if (--j->refs > 0)
        return;
    wisp_process_release(j->p);
    if (j->exit)
        wisp_future_unref(j->exit);
    wisp_future_unref(j->f);
    wisp_opus_demux_destroy(j->dm);
    wisp_opus_repack_destroy(j->rp);
    xz_pkts_free(j->pk);
    free(j->out);
    free(j->ogg);
    free(j);
}

static void trim_text(char *s)
{
    size_t n = strlen(s), a = 0;
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' ||
                 s[n - 1] == '\t'))
        s[--n] = 0;
    while (s[a] == ' ' || s[a] == '\t' || s[a] == '\n' || s[a] == '\r')
        a++;
    memmove(s, s + a, n - a + 1);
    /* Lines become spaces: one transcript line. */
    for (char *c = s; *c; c++)
        if (*c == '\n' || *c == '\r')
            *c = ' ';
}

static void maybe_finish(job *j)
{
    if (!j->exited || !j->out_done ||
        wisp_future_state(j->f) != WISP_FUTURE_PENDING)
        return;
    if (j->status != 0) {
        /* 127: the shell did not find a program. */
        wisp_future_fail(j->f, j->status == 127 ? -ENOENT : -EIO);
        return;
    }
    if (j->err) {
        wisp_future_fail(j->f, j->err);
        return;
    }
    if (j->asr) {
        char *t = j->out ? j->out : calloc(1, 1);
        j->out = NULL;
        if (!t) {
            wisp_future_fail(j->f, -ENOMEM);
            return;
        }
        trim_text(t);
        wisp_future_resolve(j->f, t, free);
        return;
    }
    if (j->olen == 0) {
        wisp_future_fail(j->f, -ENODATA);   /* the encoder wrote nothing */
        return;
    }
    int r = wisp_opus_repack_flush(j->rp);
    if (r == 0)
        r = wisp_opus_demux_finish(j->dm);
    if (r == 0 && j->pk->n == 0)
        r = -ENODATA;   /* headers but no audio */
    if (r < 0) {
        wisp_future_fail(j->f, r);
        return;
    }
    xz_pkts_t *pk = j->pk;
    j->pk = NULL;
    wisp_future_resolve(j->f, pk, xz_pkts_free);
}

static int on_repacked(void *arg, const uint8_t *pkt, size_t len,
                       uint32_t samples)
{
    (void)samples;
    job *j = arg;
    return xz_pkts_push(j->pk, pkt, len);
}

static void tts_bytes(job *j, const char *data, size_t len)
{
    while (!j->err) {
        size_t used = 0;
        wisp_opus_demux_packet_t pkt;
        int r = wisp_opus_demux_read(j->dm, data, len, &used, &pkt);
        data += used;
        len -= used;
        if (r < 0) {
            j->err = r;
            return;
        }
        if (r == 0) {
            if (len == 0)
                return;
            continue;
        }
        r = wisp_opus_repack_push(j->rp, pkt.data, pkt.len);
        if (r < 0)
            j->err = r;
    }
}

static void on_output(wisp_process_t *p, int fd, const char *data,
                      size_t len, void *arg)
{
    (void)p;
    job *j = arg;
    if (fd != 1 || wisp_future_state(j->f) != WISP_FUTURE_PENDING)
        return;
    if (!data) {
        j->out_done = 1;
        maybe_finish(j);
        return;
    }
    if (!j->asr) {
        j->olen += len;
        tts_bytes(j, data, len);
        return;
    }
    if (j->olen + len > ASR_OUT_MAX) {
        j->err = -EMSGSIZE;
        return;
    }
    char *o = realloc(j->out, j->olen + len + 1);
    if (!o) {
        j->err = -ENOMEM;
        return;
    }
    memcpy(o + j->olen, data, len);
    j->olen += len;
    o[j->olen] = 0;
    j->out = o;
}

static void job_exited(wisp_future_t *f, void *arg)
{
    job *j = arg;
    j->exited = 1;
    j->status = wisp_process_status(f);
    maybe_finish(j);
    job_unref(j);
}

/* The result settled: resolved by maybe_finish, or failed by a cancel or
 * the timeout. A child still running is stopped with its whole process
 * group (the shell's pipeline: `setsid` made the shell a group leader),
 * SIGKILL for the shell after the grace period. */
static void on_settled(wisp_future_t *f, void *arg)
{
    (void)f;
    job *j = arg;
    if (!j->exited && j->p) {
        /* Not reaped yet: the pid is still the shell's. */
        pid_t pid = wisp_process_pid(j->p);
        if (pid > 0)
            kill(-pid, SIGTERM);
        wisp_process_terminate(j->p);
    }
    wisp_process_release(j->p);
    j->p = NULL;
    job_unref(j);
}

/* Spawn `argv` for `j` (stdin a pipe when `with_stdin`). Returns the
 * result future or NULL (then `j` is freed). Errors fail the future. */
static wisp_future_t *job_start(job *j, wisp_loop_t *loop,
                                const char *const *argv, uint32_t timeout_ms,
                                int with_stdin)
{
    j->f = wisp_future_create(loop);
    if (!j->f) {
        job_unref(j);
        return NULL;
    }
    wisp_process_opts_t o = {
        .argv = argv,
        .stdio = {with_stdin ? WISP_STDIO_PIPE : WISP_STDIO_NULL,
                  WISP_STDIO_PIPE, WISP_STDIO_NULL},
        .on_output = on_output,
        .arg = j,
        .kill_grace_ms = 500,
    };
    wisp_future_t *res = j->f;
    wisp_future_ref(res);           /* the caller's */
    int r = wisp_process_spawn(loop, &o, &j->p);
    if (r < 0) {
        wisp_future_fail(res, r);
        job_unref(j);
        return res;
    }
    j->exit = wisp_process_exit(j->p);
    wisp_future_ref(j->exit);
    if (wisp_future_then(j->exit, job_exited, j) == 0)
        j->refs++;
    else
        j->exited = 1;              /* ENOMEM: do not wait for it */
    if (wisp_future_then(res, on_settled, j) == 0) {
        j->refs++;
    } else {
        wisp_process_kill(j->p, 9);
        wisp_future_fail(res, -ENOMEM);
    }
    wisp_future_set_timeout(res, timeout_ms);
    j->refs--;                      /* the creation reference */
    if (j->refs == 0) {
        j->refs = 1;
        job_unref(j);
    }
    return res;
}

/* ------------------------------------------------------------------ TTS */

/* Synthesizer | encoder. $1 synthesizer, $2 voice, $3 rate, $4 text,
 * $5 encoder, $6 frame size in ms. */
static const char tts_script[] =
    "\"$1\" -v \"$2\" -s \"$3\" --stdout -- \"$4\" | "
    "\"$5\" --quiet --framesize \"$6\" --bitrate 32 - -";

wisp_future_t *xz_cmd_tts(wisp_loop_t *loop, const xz_config_t *cfg,
                          const char *text, uint32_t frame_ms)
{
    job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->refs = 1;
    uint32_t enc_ms = frame_ms >= 60 ? 60 : frame_ms >= 40 ? 40
                    : frame_ms >= 20 ? 20 : 10;
    j->dm = wisp_opus_demux_create(NULL);
    j->rp = wisp_opus_repack_create(frame_ms * 48, on_repacked, j);
    j->pk = xz_pkts_new(frame_ms);
    if (!j->dm || !j->rp || !j->pk) {
        job_unref(j);
        return NULL;
    }
    char rate[16], fms[16];
    snprintf(rate, sizeof rate, "%u", (unsigned)cfg->tts_rate);
    snprintf(fms, sizeof fms, "%u", (unsigned)enc_ms);
    const char *argv[] = {"setsid", "sh", "-c", tts_script, "xz-tts",
                          cfg->tts_command, cfg->tts_voice, rate, text,
                          cfg->tts_encoder, fms, NULL};
    return job_start(j, loop, argv, cfg->tts_timeout_ms, 0);
}

/* ------------------------------------------------------------------ ASR */

/* $1 decoder, $2 recognizer command (run with $1 = the WAV file). */
static const char asr_script[] =
    "d=$(mktemp -d) || exit 1\n"
    "trap 'rm -rf \"$d\"' EXIT\n"
    "trap 'exit 143' TERM\n"
    "\"$1\" --quiet --rate 16000 - \"$d/in.wav\" || exit 1\n"
    "c=$2\n"
    "set -- \"$d/in.wav\"\n"
    "eval \"$c\"\n";

static int on_page(void *arg, const uint8_t *page, size_t len)
{
    job *j = arg;
    if (j->ogglen + len > j->oggcap) {
        size_t cap = j->oggcap ? j->oggcap * 2 : 16384;
        while (cap < j->ogglen + len)
            cap *= 2;
        uint8_t *b = realloc(j->ogg, cap);
        if (!b)
            return -ENOMEM;
        j->ogg = b;
        j->oggcap = cap;
    }
    memcpy(j->ogg + j->ogglen, page, len);
    j->ogglen += len;
    return 0;
}

int xz_ogg_from_pkts(const xz_pkts_t *u, uint8_t **out, size_t *len)
{
    job j = {0};
    wisp_opus_head_t head = {
        .version = 1, .channels = 1, .input_sample_rate = 16000,
        .stream_count = 1,
    };
    wisp_opus_mux_opts_t mo = {.head = &head, .serial = 0x78697a68u};
    wisp_opus_mux_t *m = wisp_opus_mux_create(&mo, on_page, &j);
    int r = m ? 0 : -errno;
    for (uint32_t i = 0; r == 0 && u && i < u->n; i++) {
        r = wisp_opus_mux_packet(m, u->buf + u->off[i], u->len[i]);
        if (r == WISP_EOPUS_PACKET)
            r = 0;      /* a packet the device got wrong: skip it */
    }
    if (r == 0)
        r = wisp_opus_mux_finish(m, 0);
    wisp_opus_mux_destroy(m);
    if (r < 0) {
        free(j.ogg);
        return r;
    }
    *out = j.ogg;
    *len = j.ogglen;
    return 0;
}

wisp_future_t *xz_cmd_asr(wisp_loop_t *loop, const xz_config_t *cfg,
                          const xz_pkts_t *utterance)
{
    job *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->refs = 1;
    j->asr = 1;
    uint8_t *ogg;
    size_t len;
    int r = xz_ogg_from_pkts(utterance, &ogg, &len);
    if (r < 0) {
        free(j);
        wisp_future_t *f = wisp_future_create(loop);
        if (f)
            wisp_future_fail(f, r);
        return f;
    }
    const char *argv[] = {"setsid", "sh", "-c", asr_script, "xz-asr",
                          cfg->asr_decoder, cfg->asr_command, NULL};
    wisp_future_t *f = job_start(j, loop, argv, cfg->asr_timeout_ms, 1);
    if (f && j->p && wisp_future_state(f) == WISP_FUTURE_PENDING) {
        /* The queue takes it all (bounded by the utterance's size). */
        wisp_process_write(j->p, ogg, len);
        wisp_process_close_stdin(j->p);
    }
    free(ogg);
    return f;
}

/* -------------------------------------------------------- the pipeline */

static char *dupstr(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

static wisp_future_t *voice_asr(const xz_call_ctx_t *c)
{
    return xz_cmd_asr(c->loop, &xz_app->cfg, c->utterance);
}

/* Without an LLM: the configured fixed reply, or the transcript. */
static wisp_future_t *voice_llm(const xz_call_ctx_t *c, const char *text)
{
    xz_reply_t *r = calloc(1, sizeof *r);
    if (r) {
        const char *t = xz_app->cfg.voice_reply[0] ? xz_app->cfg.voice_reply
                        : text[0] ? text : "I did not catch that.";
        r->text = dupstr(t);
        snprintf(r->emotion, sizeof r->emotion, "neutral");
        if (!r->text) {
            free(r);
            r = NULL;
        }
    }
    return xz_resolve_later(c->loop, 0, r, xz_reply_free);
}

static wisp_future_t *voice_tts(const xz_call_ctx_t *c, const char *sentence)
{
    return xz_cmd_tts(c->loop, &xz_app->cfg, sentence,
                      xz_app->cfg.downlink_frame_ms);
}

static const xz_pipeline_t voice_pipe = {
    .name = "voice",
    .asr = voice_asr,
    .llm = voice_llm,
    .tts = voice_tts,
    .configured_audio = 1,
};

const xz_pipeline_t *xz_pipeline_voice(void)
{
    return &voice_pipe;
}
