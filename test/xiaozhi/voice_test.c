/* xiaozhi-server command providers (examples/xiaozhi/voice.c): the
 * transcript taken from a recognizer's stdout (trimmed, lines joined),
 * every failure as a clear error (missing program, non-zero exit, empty
 * or malformed encoder output, timeout with the whole process group
 * stopped, cancel), the utterance muxed to Ogg Opus, and — when
 * espeak-ng and opusenc are installed — real speech repacketized to the
 * device's 60 and 120 ms packets. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <wisp.h>

#include "../test.h"
#include "config.h"
#include "voice.h"

static wisp_loop_t *loop;

static void settled(wisp_future_t *f, void *arg)
{
    (void)f;
    (void)arg;
    wisp_loop_break(loop);
}

/* Run the loop until `f` settles (a 30 s bound only for a broken run). */
static int wait_settled(wisp_future_t *f)
{
    CHECK(f != NULL);
    if (!f)
        return -ENOMEM;
    wisp_future_t *guard = wisp_future_create(loop);
    wisp_future_set_timeout(guard, 30000);
    wisp_future_then(guard, settled, NULL);
    wisp_future_then(f, settled, NULL);
    while (wisp_future_state(f) == WISP_FUTURE_PENDING &&
           wisp_future_state(guard) == WISP_FUTURE_PENDING)
        wisp_loop_run(loop);
    CHECK_MSG(wisp_future_state(f) != WISP_FUTURE_PENDING, "settled");
    wisp_future_cancel(guard);
    wisp_future_unref(guard);
    return wisp_future_error(f);
}

/* Alive and not a zombie (an orphan may wait for a reaper). */
static int sleeper_alive(int pid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    const char *e = strrchr(buf, ')');
    return e && e[1] == ' ' && e[2] != 'Z' && e[2] != 'X';
}

static int have(const char *prog)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", prog);
    return system(cmd) == 0;
}

/* A tiny uplink: a few valid SILK 60 ms packets (TOC 0x58). */
static xz_pkts_t *small_utterance(void)
{
    xz_pkts_t *u = xz_pkts_new(60);
    const uint8_t pkt[3] = {0x58, 0xff, 0xfe};
    for (int i = 0; i < 5; i++)
        xz_pkts_push(u, pkt, sizeof pkt);
    return u;
}

static void test_asr(xz_config_t *c)
{
    xz_pkts_t *u = small_utterance();
    /* A decoder that writes nothing and a recognizer that prints. */
    snprintf(c->asr_decoder, sizeof c->asr_decoder, "true");
    snprintf(c->asr_command, sizeof c->asr_command,
             "printf '  hello\\n world \\n\\n'");
    wisp_future_t *f = xz_cmd_asr(loop, c, u);
    CHECK_EQ_INT(wait_settled(f), 0);
    const char *t = wisp_future_value(f);
    CHECK_MSG(t && strcmp(t, "hello  world") == 0, "transcript '%s'",
              t ? t : "(null)");
    wisp_future_unref(f);

    /* A decoder that fails (`false`): -EIO, the recognizer never runs. */
    snprintf(c->asr_decoder, sizeof c->asr_decoder, "false");
    snprintf(c->asr_command, sizeof c->asr_command, "echo ran");
    f = xz_cmd_asr(loop, c, u);
    CHECK_EQ_INT(wait_settled(f), -EIO);
    wisp_future_unref(f);

    /* Nothing recognised: "". */
    snprintf(c->asr_decoder, sizeof c->asr_decoder, "true");
    snprintf(c->asr_command, sizeof c->asr_command, "true");
    f = xz_cmd_asr(loop, c, u);
    CHECK_EQ_INT(wait_settled(f), 0);
    t = wisp_future_value(f);
    CHECK(t && t[0] == 0);
    wisp_future_unref(f);

    /* Non-zero exit; a missing recognizer; a missing decoder. */
    snprintf(c->asr_command, sizeof c->asr_command, "exit 3");
    f = xz_cmd_asr(loop, c, u);
    CHECK_EQ_INT(wait_settled(f), -EIO);
    wisp_future_unref(f);
    snprintf(c->asr_command, sizeof c->asr_command, "no-such-recognizer-x");
    f = xz_cmd_asr(loop, c, u);
    CHECK_EQ_INT(wait_settled(f), -ENOENT);
    wisp_future_unref(f);
    snprintf(c->asr_decoder, sizeof c->asr_decoder, "/nonexistent/opusdec");
    snprintf(c->asr_command, sizeof c->asr_command, "echo never");
    f = xz_cmd_asr(loop, c, u);
    CHECK(wait_settled(f) < 0);
    wisp_future_unref(f);

    /* Over 64 KiB of output. */
    snprintf(c->asr_decoder, sizeof c->asr_decoder, "true");
    snprintf(c->asr_command, sizeof c->asr_command,
             "head -c 70000 /dev/zero | tr '\\\\0' a");
    f = xz_cmd_asr(loop, c, u);
    CHECK_EQ_INT(wait_settled(f), -EMSGSIZE);
    wisp_future_unref(f);

    /* Timeout: the recognizer's whole process group is stopped: the
     * sleeper it started (its pid written to a file) goes too. */
    char pidf[64];
    snprintf(pidf, sizeof pidf, "/tmp/xz_voice_test_%d", (int)getpid());
    unlink(pidf);
    c->asr_timeout_ms = 300;
    snprintf(c->asr_command, sizeof c->asr_command,
             "sleep 30 & echo $! > %s; wait", pidf);
    f = xz_cmd_asr(loop, c, u);
    CHECK_EQ_INT(wait_settled(f), -ETIMEDOUT);
    wisp_future_unref(f);
    int sleeper = 0;
    FILE *pf = fopen(pidf, "r");
    CHECK(pf && fscanf(pf, "%d", &sleeper) == 1 && sleeper > 0);
    if (pf)
        fclose(pf);
    unlink(pidf);
    int gone = 0;
    for (int i = 0; i < 1000 && sleeper > 0 && !gone; i++) {
        gone = !sleeper_alive(sleeper);
        if (!gone)
            usleep(10000);  /* poll: the bound is 10 s */
    }
    CHECK_MSG(gone, "the recognizer's child %d outlived the timeout",
              sleeper);
    c->asr_timeout_ms = 30000;

    /* Cancel: settles at once with -ECANCELED. */
    snprintf(c->asr_command, sizeof c->asr_command, "sleep 5");
    f = xz_cmd_asr(loop, c, u);
    wisp_future_cancel(f);
    CHECK_EQ_INT(wait_settled(f), -ECANCELED);
    wisp_future_unref(f);

    /* The muxed utterance is an Ogg Opus stream that demuxes back. */
    uint8_t *ogg;
    size_t len;
    CHECK_EQ_INT(xz_ogg_from_pkts(u, &ogg, &len), 0);
    CHECK(len > 4 && memcmp(ogg, "OggS", 4) == 0);
    wisp_opus_demux_t *d = wisp_opus_demux_create(NULL);
    size_t off = 0, used;
    int n = 0, r;
    wisp_opus_demux_packet_t p;
    while ((r = wisp_opus_demux_read(d, ogg + off, len - off, &used,
                                     &p)) >= 0) {
        off += used;
        if (r == 1) {
            CHECK_EQ_INT((int)p.len, 3);
            n++;
        } else if (off == len) {
            break;
        }
    }
    CHECK_EQ_INT(r >= 0, 1);
    CHECK_EQ_INT(n, 5);
    CHECK_EQ_INT(wisp_opus_demux_finish(d), 0);
    wisp_opus_demux_destroy(d);
    free(ogg);
    xz_pkts_free(u);
}

static void test_tts_errors(xz_config_t *c)
{
    /* A missing encoder: the shell's 127. */
    snprintf(c->tts_encoder, sizeof c->tts_encoder, "/nonexistent/enc");
    wisp_future_t *f = xz_cmd_tts(loop, c, "hello", 60);
    CHECK_EQ_INT(wait_settled(f), -ENOENT);
    wisp_future_unref(f);
    /* An encoder that writes nothing: no audio. */
    snprintf(c->tts_command, sizeof c->tts_command, "true");
    snprintf(c->tts_encoder, sizeof c->tts_encoder, "true");
    f = xz_cmd_tts(loop, c, "hello", 60);
    CHECK_EQ_INT(wait_settled(f), -ENODATA);
    wisp_future_unref(f);
    /* An encoder whose output is not Ogg ("echo" prints its arguments). */
    snprintf(c->tts_encoder, sizeof c->tts_encoder, "echo");
    f = xz_cmd_tts(loop, c, "hello", 60);
    CHECK(wait_settled(f) < 0);
    wisp_future_unref(f);
}

static void count_frames(const xz_pkts_t *p, uint32_t want_ms)
{
    CHECK(p && p->n > 3);
    for (uint32_t i = 0; p && i < p->n; i++) {
        wisp_opus_packet_t pk;
        CHECK(wisp_opus_packet_parse(p->buf + p->off[i], p->len[i],
                                     &pk) > 0);
        /* The last packet may be shorter (the sentence's end). */
        if (i + 1 < p->n)
            CHECK_EQ_INT((int)(pk.samples / 48), (int)want_ms);
    }
}

static void test_tts_real(xz_config_t *c)
{
    if (!have("espeak-ng") || !have("opusenc")) {
        printf("# espeak-ng or opusenc missing: real TTS not checked\n");
        return;
    }
    snprintf(c->tts_command, sizeof c->tts_command, "espeak-ng");
    snprintf(c->tts_encoder, sizeof c->tts_encoder, "opusenc");
    /* A text that looks like an option is spoken, not parsed. */
    wisp_future_t *f = xz_cmd_tts(loop, c, "-v two three; $(exit 1)", 60);
    CHECK_EQ_INT(wait_settled(f), 0);
    count_frames(wisp_future_value(f), 60);
    wisp_future_unref(f);
    f = xz_cmd_tts(loop, c, "one two three four five", 120);
    CHECK_EQ_INT(wait_settled(f), 0);
    count_frames(wisp_future_value(f), 120);
    wisp_future_unref(f);
    f = xz_cmd_tts(loop, c, "one two", 20);
    CHECK_EQ_INT(wait_settled(f), 0);
    count_frames(wisp_future_value(f), 20);
    wisp_future_unref(f);
}

int main(void)
{
    loop = wisp_loop_create();
    xz_config_t c;
    xz_config_defaults(&c, NULL);
    test_asr(&c);
    xz_config_defaults(&c, NULL);
    test_tts_errors(&c);
    xz_config_defaults(&c, NULL);
    test_tts_real(&c);
    wisp_loop_destroy(loop);
    return t_done("xz_voice");
}
