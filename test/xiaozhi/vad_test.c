/* xiaozhi-server VAD: TOC parsing (RFC 6716 §3.1-3.2) and end of
 * utterance on packet sequences: real espeak-ng speech encoded like the
 * firmware does (fixtures from gen_vad_fixtures.py), synthetic DTX,
 * 20 ms packets, clients that stop sending, short blips. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"
#include "providers.h"
#include "vad.h"

typedef struct trow {
    const char *name;
    const char *pkt;
    size_t len;
    int ok;
    int frames;
    uint32_t duration_us;
} trow;

#define T(n, s, ok, f, d) {n, s, sizeof(s) - 1, ok, f, d}

static const trow tocs[] = {
    T("SILK WB 60 ms code 0", "\x58\x11", 1, 1, 60000),
    T("SILK NB 10 ms code 0", "\x00\x11", 1, 1, 10000),
    T("SILK WB 20 ms code 1, even payload", "\x49\x01\x02", 1, 2, 40000),
    T("code 1 with odd payload is malformed", "\x49\x01", 0, 0, 0),
    T("code 2 needs a length byte", "\x4a", 0, 0, 0),
    T("code 2 two frames", "\x4a\x01\x02\x03", 1, 2, 40000),
    T("CELT 20 ms code 3, three frames (a 60 ms packet)", "\xfb\x03\x00", 1,
      3, 60000),
    T("code 3 without the count byte", "\xfb", 0, 0, 0),
    T("code 3 with zero frames", "\xfb\x00", 0, 0, 0),
    T("code 3 over 120 ms", "\xfb\x07", 0, 0, 0),
    T("hybrid FB 20 ms", "\x78", 1, 1, 20000),
    T("CELT 2.5 ms x 48 = 120 ms", "\x83\x30", 1, 48, 120000),
    T("empty packet", "", 0, 0, 0),
    T("TOC-only packet (DTX)", "\x58", 1, 1, 60000),
};

static xz_pkts_t *fixture(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", XZ_TEST_DATA, name);
    xz_pkts_t *p = xz_pkts_load(path, 60);
    if (!p) {
        fprintf(stderr, "cannot load %s\n", path);
        exit(1);
    }
    return p;
}

static const xz_vad_params_t params = {.silence_ms = 700,
                                       .min_speech_ms = 300,
                                       .default_frame_ms = 60};

/* Replay packets at 60 ms each; record when END/START/DISCARD happen. */
typedef struct ev {
    xz_vad_event_t e;
    uint64_t t;
} ev;

static int replay(const xz_pkts_t *p, ev *out, int max)
{
    xz_opus_vad_t v;
    xz_vad_opus.reset(&v, &params);
    int n = 0;
    for (uint32_t i = 0; i < p->n; i++) {
        uint64_t t = (uint64_t)i * 60 + 60;  /* arrival: end of its frame */
        xz_vad_event_t e = xz_vad_opus.feed(&v, p->buf + p->off[i],
                                            p->len[i], t);
        if (e != XZ_VAD_NONE && n < max)
            out[n++] = (ev){e, t};
    }
    return n;
}

/* The timelines printed by gen_vad_fixtures.py: speech at
 * [1000, 3202) and [4702, 10133) ms. The encoder's own hangover keeps
 * packets large for up to ~1 s after speech (measured in the fixture),
 * so an end is expected between 700 ms and 2 s after each speech end,
 * and never inside speech. */
static void check_fixture(const char *name)
{
    xz_pkts_t *p = fixture(name);
    ev evs[16];
    int n = replay(p, evs, 16);
    int ends = 0;
    uint64_t end_t[4] = {0};
    for (int i = 0; i < n; i++) {
        if (evs[i].e == XZ_VAD_END && ends < 4)
            end_t[ends++] = evs[i].t;
        /* A discard (a blip under min_speech_ms) may happen in the
         * silences (the fixture has one 97-byte packet in its tail),
         * never inside speech. */
        uint64_t et = evs[i].t;
        CHECK_MSG(evs[i].e != XZ_VAD_DISCARD ||
                  !((et >= 1000 && et <= 3202) || (et >= 4702 && et <= 10133)),
                  "%s: discard at %llu", name, (unsigned long long)et);
    }
    CHECK_MSG(ends == 2, "%s: %d ends", name, ends);
    CHECK_MSG(end_t[0] >= 3202 + 700 && end_t[0] < 3202 + 2000 &&
              end_t[0] < 4702, "%s: first end at %llu", name,
              (unsigned long long)end_t[0]);
    CHECK_MSG(end_t[1] >= 10133 + 700 && end_t[1] < 10133 + 2000,
              "%s: second end at %llu", name,
              (unsigned long long)end_t[1]);
    xz_pkts_free(p);
}

int main(void)
{
    for (size_t i = 0; i < sizeof tocs / sizeof tocs[0]; i++) {
        xz_opus_info_t info;
        int r = xz_opus_parse((const uint8_t *)tocs[i].pkt, tocs[i].len,
                              &info);
        CHECK_MSG((r == 0) == tocs[i].ok, "%s", tocs[i].name);
        if (r == 0 && tocs[i].ok) {
            CHECK_MSG(info.frames == tocs[i].frames, "%s: frames %d",
                      tocs[i].name, info.frames);
            CHECK_MSG(info.duration_us == tocs[i].duration_us,
                      "%s: %u us", tocs[i].name, info.duration_us);
        }
    }

    check_fixture("vad_quiet.opk");
    check_fixture("vad_noisy.opk");

    xz_opus_vad_t v;
    uint8_t speech[120], dtx[1] = {0x58};
    memset(speech, 0x55, sizeof speech);
    speech[0] = 0x58;  /* SILK WB 60 ms */

    /* speech 600 ms, then DTX: START after 300 ms of speech, END after
     * 700 ms of silence */
    xz_vad_opus.reset(&v, &params);
    uint64_t t = 0;
    int start_at = -1, end_at = -1;
    for (int i = 0; i < 10; i++) {
        t += 60;
        if (xz_vad_opus.feed(&v, speech, sizeof speech, t) == XZ_VAD_START)
            start_at = (int)t;
    }
    CHECK_EQ_INT(start_at, 300);
    CHECK(xz_vad_opus.active(&v));
    for (int i = 0; i < 20 && end_at < 0; i++) {
        t += 60;
        if (xz_vad_opus.feed(&v, dtx, 1, t) == XZ_VAD_END)
            end_at = (int)t;
    }
    CHECK_EQ_INT(end_at, 600 + 720);  /* 12 silent packets = 720 >= 700 */
    CHECK(!xz_vad_opus.active(&v));

    /* pauses shorter than silence_ms do not end the utterance */
    xz_vad_opus.reset(&v, &params);
    t = 0;
    int ended = 0;
    for (int k = 0; k < 5; k++) {
        for (int i = 0; i < 8; i++)
            ended |= xz_vad_opus.feed(&v, speech, sizeof speech, t += 60) ==
                     XZ_VAD_END;
        for (int i = 0; i < 10; i++)  /* 600 ms pause */
            ended |= xz_vad_opus.feed(&v, dtx, 1, t += 60) == XZ_VAD_END;
    }
    CHECK(!ended);

    /* hysteresis: packets between the thresholds keep the decision */
    uint8_t mid[24];  /* 24 B / 60 ms = 400 B/s: between LO and HI */
    memset(mid, 0x11, sizeof mid);
    mid[0] = 0x58;
    xz_vad_opus.reset(&v, &params);
    t = 0;
    ended = 0;
    for (int i = 0; i < 6; i++)
        xz_vad_opus.feed(&v, speech, sizeof speech, t += 60);
    for (int i = 0; i < 30; i++)
        ended |= xz_vad_opus.feed(&v, mid, sizeof mid, t += 60) ==
                 XZ_VAD_END;
    CHECK(!ended);             /* still speech */
    xz_vad_opus.reset(&v, &params);
    t = 0;
    int started = 0;
    for (int i = 0; i < 30; i++)
        started |= xz_vad_opus.feed(&v, mid, sizeof mid, t += 60) !=
                    XZ_VAD_NONE;
    CHECK(!started);           /* never became speech from silence */

    /* a blip shorter than min_speech_ms is discarded, not an utterance */
    xz_vad_opus.reset(&v, &params);
    t = 0;
    xz_vad_opus.feed(&v, speech, sizeof speech, t += 60);
    xz_vad_opus.feed(&v, speech, sizeof speech, t += 60);
    xz_vad_event_t last = XZ_VAD_NONE;
    for (int i = 0; i < 15 && last == XZ_VAD_NONE; i++)
        last = xz_vad_opus.feed(&v, dtx, 1, t += 60);
    CHECK_EQ_INT(last, XZ_VAD_DISCARD);

    /* 20 ms packets (desktop client): durations come from the TOC */
    uint8_t s20[40];
    memset(s20, 0x33, sizeof s20);
    s20[0] = 0x48;  /* SILK WB 20 ms: 40 B / 20 ms = 2000 B/s */
    uint8_t d20[1] = {0x48};
    xz_vad_opus.reset(&v, &params);
    t = 0;
    start_at = end_at = -1;
    for (int i = 0; i < 30; i++)
        if (xz_vad_opus.feed(&v, s20, sizeof s20, t += 20) == XZ_VAD_START)
            start_at = (int)t;
    for (int i = 0; i < 50 && end_at < 0; i++)
        if (xz_vad_opus.feed(&v, d20, 1, t += 20) == XZ_VAD_END)
            end_at = (int)t;
    CHECK_EQ_INT(start_at, 300);
    CHECK_EQ_INT(end_at, 600 + 700);

    /* a client that stops sending: tick ends the utterance */
    xz_vad_opus.reset(&v, &params);
    t = 0;
    for (int i = 0; i < 10; i++)
        xz_vad_opus.feed(&v, speech, sizeof speech, t += 60);
    CHECK_EQ_INT(xz_vad_opus.tick(&v, t + 500), XZ_VAD_NONE);
    CHECK_EQ_INT(xz_vad_opus.tick(&v, t + 760), XZ_VAD_END);
    CHECK_EQ_INT(xz_vad_opus.tick(&v, t + 2000), XZ_VAD_NONE);

    /* DTX with a comfort-noise packet every 7th (about every 420 ms, as
     * SILK sends them): silence, so the utterance still ends */
    xz_vad_opus.reset(&v, &params);
    t = 0;
    end_at = -1;
    for (int i = 0; i < 10; i++)
        xz_vad_opus.feed(&v, speech, sizeof speech, t += 60);
    for (int i = 0; i < 40 && end_at < 0; i++) {
        uint8_t cn[50];
        memset(cn, 0x22, sizeof cn);
        cn[0] = 0x58;
        int is_cn = i % 7 == 6;
        if (xz_vad_opus.feed(&v, is_cn ? cn : dtx, is_cn ? sizeof cn : 1,
                             t += 60) == XZ_VAD_END)
            end_at = (int)t;
    }
    CHECK_EQ_INT(end_at, 600 + 720);
    /* ... but two large packets after DTX are speech again */
    xz_vad_opus.reset(&v, &params);
    t = 0;
    for (int i = 0; i < 5; i++)
        xz_vad_opus.feed(&v, dtx, 1, t += 60);
    xz_vad_opus.feed(&v, speech, sizeof speech, t += 60);
    CHECK(!xz_vad_opus.active(&v));
    xz_vad_opus.feed(&v, speech, sizeof speech, t += 60);
    CHECK(xz_vad_opus.active(&v));

    /* malformed packets count as silence and are counted */
    xz_vad_opus.reset(&v, &params);
    xz_vad_opus.feed(&v, (const uint8_t *)"\xfb", 1, 60);
    CHECK_EQ_INT(v.malformed, 1);
    CHECK(!xz_vad_opus.active(&v));
    return t_done("xz_vad");
}
