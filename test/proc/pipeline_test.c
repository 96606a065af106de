/* A real pipeline through the loop: `espeak-ng --stdout "hello world"`
 * (a WAV stream) piped by the parent into `opusenc - -` (Ogg Opus out).
 * The parent moves the bytes itself, with backpressure both ways: when
 * opusenc's stdin queue passes a mark, espeak-ng's stdout is paused
 * until the queue drains. The result must be an Ogg stream ("OggS") and
 * both children must exit 0.
 *
 * Skipped (exit 77) when espeak-ng or opusenc is not installed
 * (.ci/run installs both). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "wisp.h"

#include "test.h"

static wisp_loop_t *loop;

static int in_path(const char *name)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    char buf[4096];
    while (*path) {
        size_t n = strcspn(path, ":");
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, name);
        if (access(buf, X_OK) == 0)
            return 1;
        path += n + (path[n] == ':');
    }
    return 0;
}

#define MARK (64u * 1024u)

typedef struct run {
    wisp_process_t *tts, *enc;
    size_t wav_bytes, enc_queued_max;
    char *ogg;
    size_t ogg_len, ogg_cap;
    int tts_paused, pauses, ended, errs;
    char err[4096];
    size_t err_len;
} run;

static void tts_out(wisp_process_t *p, int fd, const char *data, size_t len,
                    void *arg)
{
    run *r = arg;
    if (fd == 2) {
        if (data && r->err_len + len < sizeof r->err) {
            memcpy(r->err + r->err_len, data, len);
            r->err_len += len;
        }
        return;
    }
    if (!data) {
        /* The speech is complete: opusenc gets end of file after the
         * queued bytes. */
        wisp_process_close_stdin(r->enc);
        return;
    }
    r->wav_bytes += len;
    if (wisp_process_write(r->enc, data, len) != 0)
        r->errs++;
    size_t q = wisp_process_queued(r->enc);
    if (q > r->enc_queued_max)
        r->enc_queued_max = q;
    if (q > MARK && !r->tts_paused) {
        r->tts_paused = 1;
        r->pauses++;
        wisp_process_pause(p, 1);
    }
}

static void enc_drain(wisp_process_t *p, int err, void *arg)
{
    run *r = arg;
    (void)p;
    if (err)
        r->errs++;
    if (r->tts_paused) {
        r->tts_paused = 0;
        wisp_process_resume(r->tts, 1);
    }
}

static void enc_out(wisp_process_t *p, int fd, const char *data, size_t len,
                    void *arg)
{
    run *r = arg;
    (void)p;
    if (fd == 2) {
        if (data && r->err_len + len < sizeof r->err) {
            memcpy(r->err + r->err_len, data, len);
            r->err_len += len;
        }
        return;
    }
    if (!data) {
        r->ended = 1;
        wisp_loop_break(loop);
        return;
    }
    if (r->ogg_len + len > r->ogg_cap) {
        r->ogg_cap = (r->ogg_len + len) * 2;
        r->ogg = realloc(r->ogg, r->ogg_cap);
    }
    memcpy(r->ogg + r->ogg_len, data, len);
    r->ogg_len += len;
}

static int settled;

static void on_exit_cb(wisp_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    settled++;
    wisp_loop_break(loop);
}

static void on_watchdog(wisp_timer_t *t, void *arg)
{
    (void)t;
    (void)arg;
    CHECK(!"pipeline did not finish in 60 s");
    wisp_loop_break(loop);
}

int main(void)
{
    if (!in_path("espeak-ng") || !in_path("opusenc")) {
        printf("skipped: espeak-ng or opusenc not installed\n");
        return 77;
    }
    loop = wisp_loop_create();
    run r = {0};
    const char *tts_argv[] = {"espeak-ng", "--stdout", "hello world", NULL};
    const char *enc_argv[] = {"opusenc", "--quiet", "-", "-", NULL};
    wisp_process_opts_t enc = {
        .argv = enc_argv,
        .stdio = {WISP_STDIO_PIPE, WISP_STDIO_PIPE, WISP_STDIO_PIPE},
        .on_output = enc_out,
        .on_drain = enc_drain,
        .arg = &r,
        .timeout_ms = 60000,
    };
    wisp_process_opts_t tts = {
        .argv = tts_argv,
        .stdio = {WISP_STDIO_NULL, WISP_STDIO_PIPE, WISP_STDIO_PIPE},
        .on_output = tts_out,
        .arg = &r,
        .timeout_ms = 60000,
    };
    CHECK_EQ_INT(wisp_process_spawn(loop, &enc, &r.enc), 0);
    CHECK_EQ_INT(wisp_process_spawn(loop, &tts, &r.tts), 0);
    if (!r.enc || !r.tts)
        return t_done("proc_pipeline");
    wisp_future_then(wisp_process_exit(r.enc), on_exit_cb, NULL);
    wisp_future_then(wisp_process_exit(r.tts), on_exit_cb, NULL);
    wisp_timer_t wd;
    wisp_timer_init(loop, &wd);
    wisp_timer_start(&wd, 60000, on_watchdog, NULL);
    while (settled < 2 || !r.ended) {
        wisp_loop_run(loop);
        if (!wisp_timer_active(&wd))
            break;
    }
    wisp_timer_stop(&wd);
    CHECK_MSG(wisp_process_status(wisp_process_exit(r.tts)) == 0,
              "espeak-ng: %#x: %.*s",
              wisp_process_status(wisp_process_exit(r.tts)), (int)r.err_len,
              r.err);
    CHECK_MSG(wisp_process_status(wisp_process_exit(r.enc)) == 0,
              "opusenc: %#x: %.*s",
              wisp_process_status(wisp_process_exit(r.enc)), (int)r.err_len,
              r.err);
    CHECK_EQ_INT(r.errs, 0);
    /* "hello world" is about a second of 22 kHz 16-bit speech. */
    CHECK_MSG(r.wav_bytes > 20000, "wav %zu bytes", r.wav_bytes);
    CHECK_MSG(r.ogg_len > 200 && memcmp(r.ogg, "OggS", 4) == 0,
              "ogg %zu bytes", r.ogg_len);
    /* The Opus head and tags pages follow: the stream says what it is. */
    CHECK(r.ogg_len > 40 && memmem(r.ogg, r.ogg_len, "OpusHead", 8));
    /* Bounded: paused at the mark, so the queue never held the whole
     * speech at once. */
    CHECK_MSG(r.enc_queued_max <= MARK + 70 * 1024, "queued %zu",
              r.enc_queued_max);
    printf("wav %zu bytes -> ogg %zu bytes, %d pauses, queue max %zu\n",
           r.wav_bytes, r.ogg_len, r.pauses, r.enc_queued_max);
    wisp_process_release(r.tts);
    wisp_process_release(r.enc);
    free(r.ogg);
    wisp_loop_destroy(loop);
    CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
    return t_done("proc_pipeline");
}
