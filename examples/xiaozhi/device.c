/* xiaozhi-server — a device's WebSocket session. See device.h. */
#include "device.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "auth.h"
#include "framing.h"
#include "save.h"
#include "voice.h"

wisp_ws_opts_t xz_ws_opts;

#define LOGD(d, lvl, ...) xz_log(lvl, (d)->device_id, (d)->session_id, \
                                 __VA_ARGS__)

static void enter(xz_dev_t *d, xz_event_t e);
static void reply_cancel(xz_dev_t *d, int send_stop);
static void pace(xz_dev_t *d);
static void house_arm(xz_dev_t *d);
static void tts_next(xz_dev_t *d);
static void dev_close(xz_dev_t *d, int code, const char *why);

/* ------------------------------------------------------------- helpers */

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

void xz_dev_ref(xz_dev_t *d)
{
    d->refs++;
}

void xz_dev_unref(xz_dev_t *d)
{
    if (--d->refs)
        return;
    xz_pkts_free(d->utt);
    xz_pkts_free(d->turn_utt);
    free(d->user_text);
    free(d->reply_text);
    free(d->sentences);
    free(d->dialogue);
    free(d);
}

int xz_dev_send(xz_dev_t *d, wisp_json_writer_t *w)
{
    char *out;
    size_t len;
    int r = wisp_json_finish(w, &out, &len);
    if (r < 0) {
        wisp_json_writer_free(w);
        return r;
    }
    r = d->closed ? WISP_ECLOSED : wisp_ws_send_text(d->ws, out, len);
    free(out);
    return r;
}

/* {"session_id":…,"type":type, then the caller's members…} */
static void msg_begin(xz_dev_t *d, wisp_json_writer_t *w, const char *type)
{
    wisp_json_writer_init_dyn(w);
    wisp_json_obj_begin(w);
    wisp_json_kv_str(w, "session_id", d->session_id);
    wisp_json_kv_str(w, "type", type);
}

static void send_simple(xz_dev_t *d, const char *type, const char *k1,
                        const char *v1, const char *k2, const char *v2)
{
    wisp_json_writer_t w;
    msg_begin(d, &w, type);
    if (k1)
        wisp_json_kv_str(&w, k1, v1);
    if (k2)
        wisp_json_kv_str(&w, k2, v2);
    wisp_json_obj_end(&w);
    xz_dev_send(d, &w);
}

static void send_tts(xz_dev_t *d, const char *state, const char *text)
{
    send_simple(d, "tts", "state", state, text ? "text" : NULL, text);
}

/* Every state change goes through here: the transition function decides,
 * this applies it and keeps the per-state gauges. Returns 1 when the
 * event applied. */
static int step(xz_dev_t *d, xz_event_t e)
{
    xz_state_t n = xz_session_next(d->state, e, d->mode);
    if (n == XZ_S_NONE) {
        LOGD(d, WISP_LOG_DEBUG, "event=ignored ev=%s state=%s",
             xz_event_name(e), xz_state_name(d->state));
        return 0;
    }
    if (n != d->state) {
        LOGD(d, WISP_LOG_DEBUG, "event=state from=%s to=%s ev=%s",
             xz_state_name(d->state), xz_state_name(n), xz_event_name(e));
        wisp_gauge_dec(xz_app->m.sessions[d->state]);
        wisp_gauge_inc(xz_app->m.sessions[n]);
        d->state = n;
    }
    enter(d, e);
    return 1;
}

/* ------------------------------------------------------------- uplink */

static void utt_reset(xz_dev_t *d)
{
    xz_pkts_clear(d->utt);
    d->vad->reset(&d->vad_state, &(xz_vad_params_t){
        .silence_ms = xz_app->cfg.vad_silence_ms,
        .min_speech_ms = xz_app->cfg.vad_min_speech_ms,
        .default_frame_ms = d->up_frame_ms});
}

static int utt_push(xz_dev_t *d, const uint8_t *p, size_t len)
{
    if ((uint64_t)(d->utt->n + 1) * d->up_frame_ms > XZ_MAX_UTTERANCE_MS ||
        d->utt->used + len > XZ_MAX_UTTERANCE_BYTES) {
        wisp_counter_inc(xz_app->m.frames_dropped_full);
        return -1;
    }
    if (xz_pkts_push(d->utt, p, len) < 0) {
        wisp_counter_inc(xz_app->m.frames_dropped_full);
        return -1;
    }
    return 0;
}

/* The utterance in d->utt is complete: hand it to the turn. */
static void utterance_end(xz_dev_t *d)
{
    if (d->utt->n == 0) {
        utt_reset(d);
        return;
    }
    step(d, XZ_E_UTTERANCE);
}

static void on_audio(xz_dev_t *d, const uint8_t *data, size_t len)
{
    uint64_t now = wisp_loop_now(d->loop);
    const uint8_t *pkt;
    size_t plen;
    uint32_t ts;
    if (len == 0) {
        /* The browser client's end of recording (§10.6). */
        if (d->state == XZ_S_LISTENING && d->mode != XZ_MODE_MANUAL)
            utterance_end(d);
        return;
    }
    if (xz_frame_decode(d->framing, data, len, &pkt, &plen, &ts) < 0) {
        wisp_counter_inc(xz_app->m.frames_dropped_bad);
        return;
    }
    int realtime_speaking = d->state == XZ_S_SPEAKING &&
                            d->mode == XZ_MODE_REALTIME;
    if (d->state != XZ_S_LISTENING && !realtime_speaking)
        return;  /* not listening: the device's tail of audio, dropped */
    if (utt_push(d, pkt, plen) < 0)
        return;
    if (d->mode == XZ_MODE_MANUAL) {
        d->last_voice = now; /* push-to-talk: the button says it's voice */
        return;
    }
    xz_vad_event_t ev = d->vad->feed(&d->vad_state, pkt, plen, now);
    switch (ev) {
    case XZ_VAD_START:
        d->last_voice = now;
        if (realtime_speaking)
            step(d, XZ_E_BARGE_IN);
        break;
    case XZ_VAD_END:
        d->last_voice = now;
        utterance_end(d);
        return;
    case XZ_VAD_DISCARD:
        xz_pkts_clear(d->utt);
        break;
    case XZ_VAD_NONE:
        break;
    }
    if (d->vad->active(&d->vad_state)) {
        d->last_voice = now;
        house_arm(d);
    } else if (d->utt->n > XZ_PREROLL_PACKETS) {
        xz_pkts_drop_front(d->utt, d->utt->n - XZ_PREROLL_PACKETS);
    }
}

/* ------------------------------------------------------------ the turn */

static void q_free(xz_dev_t *d)
{
    xz_segment_t *s = d->q_head;
    while (s) {
        xz_segment_t *n = s->next;
        free(s->sentence);
        xz_pkts_free(s->pkts);
        free(s);
        s = n;
    }
    d->q_head = d->q_tail = NULL;
}

static void q_push(xz_dev_t *d, char *sentence, xz_pkts_t *pkts)
{
    xz_segment_t *s = calloc(1, sizeof *s);
    if (!s) {
        free(sentence);
        xz_pkts_free(pkts);
        return;
    }
    s->sentence = sentence;
    s->pkts = pkts;
    if (d->q_tail)
        d->q_tail->next = s;
    else
        d->q_head = s;
    d->q_tail = s;
}

static void turn_clear(xz_dev_t *d)
{
    if (d->pending) {
        wisp_future_cancel(d->pending);
        wisp_future_unref(d->pending);
        d->pending = NULL;
    }
    q_free(d);
    wisp_timer_stop(&d->t_pace);
    d->draining = 0;
    free(d->user_text);
    free(d->reply_text);
    free(d->sentences);
    d->user_text = d->reply_text = d->sentences = NULL;
    d->sent_pos = d->sent_len = 0;
    xz_pkts_free(d->turn_utt);
    d->turn_utt = NULL;
    d->tts_done = 0;
    d->tts_started = 0;
    d->gen++;
}

/* Cancel the reply in progress: providers cancelled, queue dropped, and
 * (if asked) tts stop at once. */
static void reply_cancel(xz_dev_t *d, int send_stop)
{
    int started = d->tts_started;
    turn_clear(d);
    if (send_stop || started)
        send_tts(d, "stop", NULL);
}

/* Append one finished turn to the dialogue kept for the save hook. */
static void dialogue_add(xz_dev_t *d)
{
    if (!xz_app->cfg.save_dir[0] || !d->user_text)
        return;
    wisp_json_writer_t w;
    wisp_json_writer_init_dyn(&w);
    wisp_json_obj_begin(&w);
    wisp_json_kv_str(&w, "session_id", d->session_id);
    wisp_json_kv_str(&w, "device_id", d->device_id);
    wisp_json_kv_int(&w, "ts", xz_unix_ms());
    wisp_json_kv_str(&w, "user", d->user_text);
    wisp_json_kv_str(&w, "assistant", d->reply_text ? d->reply_text : "");
    wisp_json_obj_end(&w);
    char *line;
    size_t len;
    if (wisp_json_finish(&w, &line, &len) < 0) {
        wisp_json_writer_free(&w);
        return;
    }
    if (d->dialogue_len + len + 1 <= XZ_MAX_DIALOGUE_BYTES) {
        char *n = realloc(d->dialogue, d->dialogue_len + len + 1);
        if (n) {
            memcpy(n + d->dialogue_len, line, len);
            n[d->dialogue_len + len] = '\n';
            d->dialogue = n;
            d->dialogue_len += len + 1;
        }
    }
    free(line);
}

/* The reply's audio is all out and drained: tts stop. */
static void reply_done(xz_dev_t *d)
{
    send_tts(d, "stop", NULL);
    /* The server's own view of the reply's pacing, for operators (and
     * for telling server lag from client lag in load tests). */
    LOGD(d, WISP_LOG_INFO, "event=reply_done packets=%u span_ms=%llu "
         "max_late_ms=%llu", d->sent_pkts,
         (unsigned long long)(d->sent_pkts ? d->last_sent - d->first_sent
                                           : 0),
         (unsigned long long)d->max_late);
    wisp_counter_inc(xz_app->m.turns);
    dialogue_add(d);
    d->tts_started = 0;
    turn_clear(d);
    step(d, XZ_E_REPLY_DONE);
}

static void pace_timer(wisp_timer_t *t, void *arg)
{
    (void)t;
    xz_dev_t *d = arg;
    if (d->draining) {
        d->draining = 0;
        reply_done(d);
        return;
    }
    pace(d);
}

static void send_packet(xz_dev_t *d, const uint8_t *p, size_t len)
{
    static __thread uint8_t frame[XZ_FRAME_MAX_HEADER + 65536];
    int h = xz_frame_encode_header(d->framing, d->down_ts, len, frame);
    if (h < 0)
        return;
    memcpy(frame + h, p, len);
    d->down_ts += d->down_frame_ms;
    if (wisp_ws_send(d->ws, 1, frame, (size_t)h + len) == 0)
        wisp_counter_inc(xz_app->m.frames_out);
}

/* Send what is due: sentence_start messages as they are reached, audio
 * packets at the pacer's times. One timer per session, armed only while
 * a reply speaks. wisp timers live in the loop's in-process heap (O(log
 * n) start/stop, no syscall; the loop sleeps until the earliest of all
 * of them with one epoll_wait timeout), so a timer per session already
 * is one timer structure per loop for all its sessions. */
static void pace(xz_dev_t *d)
{
    if (d->closed)
        return;
    for (;;) {
        xz_segment_t *s = d->q_head;
        if (!s) {
            if (d->tts_done) {
                /* Last packet out: tts stop after the drain delay, so
                 * the device plays what it buffered (§4.2). */
                d->draining = 1;
                uint64_t ahead = xz_pacer_ahead(&d->pacer,
                                                wisp_loop_now(d->loop));
                uint64_t wait = xz_app->cfg.drain_ms > ahead
                                    ? xz_app->cfg.drain_ms : ahead;
                if (!d->pacer.anchored)
                    wait = 0;  /* nothing was played */
                wisp_timer_start(&d->t_pace, wait, pace_timer, d);
            } else {
                xz_pacer_dry(&d->pacer);
            }
            return;
        }
        if (!s->announced) {
            s->announced = 1;
            if (s->sentence)
                send_tts(d, "sentence_start", s->sentence);
        }
        if (!s->pkts || s->next_pkt >= s->pkts->n) {
            d->q_head = s->next;
            if (!d->q_head)
                d->q_tail = NULL;
            free(s->sentence);
            xz_pkts_free(s->pkts);
            free(s);
            continue;
        }
        uint64_t now = wisp_loop_now(d->loop);
        uint64_t wait = xz_pacer_wait(&d->pacer, now);
        if (wait) {
            wisp_timer_start(&d->t_pace, wait, pace_timer, d);
            return;
        }
        uint32_t i = s->next_pkt++;
        uint64_t late = xz_pacer_sent(&d->pacer, now);
        if (late > 20)
            wisp_counter_inc(xz_app->m.frames_late);
        if (late > d->max_late)
            d->max_late = late;
        if (!d->sent_pkts++)
            d->first_sent = now;
        d->last_sent = now;
        send_packet(d, s->pkts->buf + s->pkts->off[i], s->pkts->len[i]);
        d->last_voice = now; /* audio sent counts as activity (§4.4) */
    }
}

static void ensure_tts_start(xz_dev_t *d)
{
    if (d->tts_started)
        return;
    d->tts_started = 1;
    d->sent_pkts = 0;
    d->max_late = 0;
    xz_pacer_init(&d->pacer, d->down_frame_ms, xz_app->cfg.prebuffer_frames);
    send_tts(d, "start", NULL);
    step(d, XZ_E_TTS_START);
}

/* A provider failed: a spoken sentence saying so, then tts stop — the
 * device never waits in silence. */
static void reply_error(xz_dev_t *d, int err)
{
    const char *text = err == -EAGAIN
        ? "Sorry, the server is busy right now. Please try again."
        : "Sorry, something went wrong. Please try again.";
    LOGD(d, WISP_LOG_WARN, "event=provider_error err=%s", wisp_strerror(err));
    if (d->pending) {
        wisp_future_unref(d->pending);
        d->pending = NULL;
    }
    ensure_tts_start(d);
    q_free(d);
    q_push(d, dupn(text, strlen(text)), NULL);
    d->tts_done = 1;
    pace(d);
}

/* A continuation's context: the session and the turn it belongs to. */
typedef struct cont {
    xz_dev_t *d;
    uint32_t gen;
} cont;

static cont *cont_new(xz_dev_t *d)
{
    cont *c = malloc(sizeof *c);
    if (c) {
        c->d = d;
        c->gen = d->gen;
        xz_dev_ref(d);
    }
    return c;
}

/* Returns the session when the continuation still belongs to the live
 * turn, else NULL; frees the context either way. The caller unrefs d. */
static xz_dev_t *cont_take(cont *c)
{
    xz_dev_t *d = c->d;
    int live = !d->closed && c->gen == d->gen;
    free(c);
    return live ? d : NULL;
}

/* The start every provider continuation shares: the session if the turn
 * that awaited `f` is still the current one (else the reference taken in
 * await() is dropped and NULL returned), with its pending future
 * released. With `need_value`, a failed or cancelled `f` is answered here
 * (reply_error ends the reply cleanly) and NULL returned as well. */
static xz_dev_t *cont_done(wisp_future_t *f, void *arg, int need_value)
{
    xz_dev_t *owner = ((cont *)arg)->d, *d = cont_take(arg);
    if (!d) {
        xz_dev_unref(owner);
        return NULL;
    }
    wisp_future_unref(d->pending);
    d->pending = NULL;
    if (need_value && wisp_future_state(f) != WISP_FUTURE_RESOLVED) {
        reply_error(d, wisp_future_error(f));
        xz_dev_unref(d);
        return NULL;
    }
    return d;
}

static int await(xz_dev_t *d, wisp_future_t *f, wisp_future_cb cb)
{
    cont *c = f ? cont_new(d) : NULL;
    if (!c || wisp_future_then(f, cb, c) < 0) {
        if (c) {
            xz_dev_unref(d);
            free(c);
        }
        if (f) {
            wisp_future_cancel(f);
            wisp_future_unref(f);
        }
        reply_error(d, -ENOMEM);
        return -1;
    }
    d->pending = f;
    return 0;
}

static xz_call_ctx_t call_ctx(xz_dev_t *d)
{
    return (xz_call_ctx_t){.loop = d->loop, .device_id = d->device_id,
                           .session_id = d->session_id,
                           .utterance = d->turn_utt};
}

static const xz_pipeline_t *pipe_of(void)
{
    switch (xz_app->cfg.pipeline_mode) {
    case XZ_PIPE_SCRIPTED: return xz_pipeline_scripted();
    case XZ_PIPE_VOICE: return xz_pipeline_voice();
    default: return xz_pipeline_echo();
    }
}

/* Split the reply into sentences at . ! ? and CJK 。！？ (the mark stays
 * with its sentence), NUL-separated in d->sentences. */
static void split_sentences(xz_dev_t *d, const char *text)
{
    size_t n = strlen(text);
    d->sentences = malloc(n + 1);
    d->sent_pos = 0;
    d->sent_len = 0;
    if (!d->sentences)
        return;
    size_t o = 0, i = 0;
    while (i < n) {
        while (i < n && (text[i] == ' ' || text[i] == '\n'))
            i++;
        size_t start = o;
        while (i < n) {
            unsigned char c = (unsigned char)text[i];
            int end = 0;
            size_t w = 1;
            if (c == '.' || c == '!' || c == '?')
                end = 1;
            else if (c == 0xE3 && i + 2 < n &&
                     (unsigned char)text[i + 1] == 0x80 &&
                     (unsigned char)text[i + 2] == 0x82)
                end = 1, w = 3;  /* 。 */
            else if (c == 0xEF && i + 2 < n &&
                     (unsigned char)text[i + 1] == 0xBC &&
                     ((unsigned char)text[i + 2] == 0x81 ||
                      (unsigned char)text[i + 2] == 0x9F))
                end = 1, w = 3;  /* ！ ？ */
            memcpy(d->sentences + o, text + i, w);
            o += w;
            i += w;
            if (end)
                break;
        }
        if (o > start)
            d->sentences[o++] = 0;
    }
    d->sent_len = o;
}

static wisp_future_t *start_tts(void *arg)
{
    xz_dev_t *d = arg;
    xz_call_ctx_t c = call_ctx(d);
    return pipe_of()->tts(&c, d->sentences + d->sent_pos);
}

static void on_tts(wisp_future_t *f, void *arg)
{
    xz_dev_t *d = cont_done(f, arg, 1);
    if (!d)
        return;
    wisp_free_cb destroy;
    xz_pkts_t *p = wisp_future_take(f, &destroy);
    const char *s = d->sentences + d->sent_pos;
    q_push(d, dupn(s, strlen(s)), p);
    d->sent_pos += strlen(s) + 1;
    tts_next(d);
    pace(d);
    xz_dev_unref(d);
}

static void tts_next(xz_dev_t *d)
{
    if (!d->sentences || d->sent_pos >= d->sent_len) {
        d->tts_done = 1;
        return;
    }
    await(d, xz_gate_call(d->loop, XZ_PROV_TTS, start_tts, d), on_tts);
}

/* Speak `text` as a reply (after the LLM, for the farewell, the intent
 * hook's answers). */
static void speak(xz_dev_t *d, const char *text)
{
    ensure_tts_start(d);
    free(d->reply_text);
    d->reply_text = dupn(text, strlen(text));
    free(d->sentences);
    split_sentences(d, text);
    tts_next(d);
    pace(d);
}

static void on_llm(wisp_future_t *f, void *arg)
{
    xz_dev_t *d = cont_done(f, arg, 1);
    if (!d)
        return;
    xz_reply_t *r = wisp_future_value(f);
    if (r && r->text) {
        const char *emo = r->emotion[0] ? r->emotion : "happy";
        send_simple(d, "llm", "text", "🙂", "emotion", emo);
        speak(d, r->text);
    } else {
        reply_error(d, -EIO);
    }
    xz_dev_unref(d);
}

static wisp_future_t *start_llm(void *arg)
{
    xz_dev_t *d = arg;
    xz_call_ctx_t c = call_ctx(d);
    return pipe_of()->llm(&c, d->user_text);
}

/* The answer of a tool call made for a turn (the "mcp:" intent hook or
 * scripted.tool_call) becomes the reply. */
static void on_tool_reply(wisp_future_t *f, void *arg)
{
    xz_dev_t *d = cont_done(f, arg, 0);
    if (!d)
        return;
    char buf[1024];
    if (wisp_future_state(f) == WISP_FUTURE_RESOLVED) {
        xz_mcp_result_t *r = wisp_future_value(f);
        const char *t = r->content_text ? r->content_text
                        : r->text ? r->text : "";
        if (r->is_error)
            snprintf(buf, sizeof buf, "tool error: %.900s", t);
        else
            snprintf(buf, sizeof buf, "%.1000s", t);
    } else {
        int e = wisp_future_error(f);
        snprintf(buf, sizeof buf, "tool error: %s",
                 e == -ETIMEDOUT ? "timeout" : wisp_strerror(e));
    }
    speak(d, buf[0] ? buf : "(empty)");
    xz_dev_unref(d);
}

static void call_tool(xz_dev_t *d, const char *tool, const char *args)
{
    if (!xz_mcp_has_tool(&d->mcp, tool)) {
        speak(d, "tool error: unknown tool");
        return;
    }
    await(d, xz_mcp_call(d, tool, args), on_tool_reply);
}

/* The user's words are known: stt, tts start, then the intent hook or
 * the LLM. */
static void on_text(xz_dev_t *d)
{
    send_simple(d, "stt", "text", d->user_text, NULL, NULL);
    ensure_tts_start(d);
    /* Intent hook: "mcp:TOOL {json}" calls the device's tool and speaks
     * the result — a way to exercise xz_mcp_call from any client. */
    if (!strncmp(d->user_text, "mcp:", 4)) {
        char tool[128];
        const char *p = d->user_text + 4, *sp = strchr(p, ' ');
        size_t n = sp ? (size_t)(sp - p) : strlen(p);
        if (n >= sizeof tool)
            n = sizeof tool - 1;
        memcpy(tool, p, n);
        tool[n] = 0;
        call_tool(d, tool, sp ? sp + 1 : NULL);
        return;
    }
    /* Scripted pipeline with scripted.tool_call: each turn calls that
     * device tool and speaks its result (tests of tools/call). */
    if (xz_app->cfg.pipeline_mode == XZ_PIPE_SCRIPTED &&
        xz_app->cfg.tool_call[0]) {
        call_tool(d, xz_app->cfg.tool_call, xz_app->cfg.tool_args);
        return;
    }
    await(d, xz_gate_call(d->loop, XZ_PROV_LLM, start_llm, d), on_llm);
}

static void on_asr(wisp_future_t *f, void *arg)
{
    xz_dev_t *d = cont_done(f, arg, 1);
    if (!d)
        return;
    wisp_free_cb destroy;
    char *text = wisp_future_take(f, &destroy);
    if (!text || !*text) {
        /* Nothing recognised: no message, keep listening (§4.1). */
        free(text);
        turn_clear(d);
        step(d, XZ_E_EMPTY);
        xz_dev_unref(d);
        return;
    }
    d->user_text = text;
    on_text(d);
    xz_dev_unref(d);
}

static wisp_future_t *start_asr(void *arg)
{
    xz_dev_t *d = arg;
    xz_call_ctx_t c = call_ctx(d);
    return pipe_of()->asr(&c);
}

void xz_dev_text_turn(xz_dev_t *d, const char *text)
{
    d->user_text = dupn(text, strlen(text));
    if (!d->user_text) {
        reply_error(d, -ENOMEM);
        return;
    }
    on_text(d);
}

/* --------------------------------------------------- state entry actions */

static __thread char *pending_text;  /* DETECT_TEXT's text, set just before step */

static void enter(xz_dev_t *d, xz_event_t e)
{
    switch (d->state) {
    case XZ_S_LISTENING:
        if (e == XZ_E_LISTEN_START || e == XZ_E_DETECT_WAKE) {
            /* A new listen clears the buffer and the VAD (§4.1), and
             * ends a reply still in progress. */
            if (d->tts_started || d->pending)
                reply_cancel(d, 0);
            utt_reset(d);
        } else if (e == XZ_E_BARGE_IN) {
            /* Realtime: the user talks over the reply; keep the audio. */
            reply_cancel(d, 0);
            wisp_counter_inc(xz_app->m.aborts);
        } else if (e == XZ_E_ABORT) {
            reply_cancel(d, 0);
        }
        break;
    case XZ_S_IDLE:
        if (e == XZ_E_ABORT)
            reply_cancel(d, 0);
        utt_reset(d);
        break;
    case XZ_S_THINKING:
        if (e == XZ_E_DETECT_TEXT) {
            reply_cancel(d, 0);
            utt_reset(d);
            xz_dev_text_turn(d, pending_text);
        } else if (e == XZ_E_UTTERANCE || e == XZ_E_LISTEN_STOP) {
            turn_clear(d);
            d->turn_utt = d->utt;
            d->utt = xz_pkts_new(d->up_frame_ms);
            if (!d->utt) {
                d->utt = d->turn_utt;
                d->turn_utt = NULL;
                reply_error(d, -ENOMEM);
                break;
            }
            utt_reset(d);
            await(d, xz_gate_call(d->loop, XZ_PROV_ASR, start_asr, d),
                  on_asr);
        }
        break;
    case XZ_S_FAREWELL:
        if (e == XZ_E_NO_VOICE) {
            LOGD(d, WISP_LOG_INFO, "event=no_voice_farewell");
            d->farewell = 1;
            speak(d, "No voice for a while. Goodbye.");
        }
        break;
    case XZ_S_CLOSING:
        reply_cancel(d, 0);
        dev_close(d, 1000, e == XZ_E_HELLO_TIMEOUT ? "hello timeout"
                           : e == XZ_E_IDLE_LIMIT ? "idle" : "goodbye");
        break;
    default:
        break;
    }
}

/* ------------------------------------------------------------- timers */

static void house_fire(wisp_timer_t *t, void *arg);

static uint64_t house_next(xz_dev_t *d)
{
    const xz_config_t *c = &xz_app->cfg;
    uint64_t due = d->last_activity + (uint64_t)c->idle_close_s * 1000;
    if (d->state == XZ_S_CONNECTED) {
        uint64_t h = d->t_open + c->hello_timeout_ms;
        if (h < due)
            due = h;
    }
    uint64_t nv = d->last_voice + (uint64_t)c->no_voice_close_s * 1000;
    if (nv < due)
        due = nv;
    if (d->vad->active(&d->vad_state)) {
        uint64_t v = d->vad_state.last_ms + c->vad_silence_ms +
                     d->up_frame_ms;
        if (v < due)
            due = v;
    }
    return due;
}

static void house_arm(xz_dev_t *d)
{
    if (d->closed)
        return;
    uint64_t due = house_next(d);
    if (wisp_timer_active(&d->t_house) && d->house_due <= due)
        return;
    uint64_t now = wisp_loop_now(d->loop);
    d->house_due = due;
    wisp_timer_start(&d->t_house, due > now ? due - now : 0, house_fire, d);
}

static void house_fire(wisp_timer_t *t, void *arg)
{
    (void)t;
    xz_dev_t *d = arg;
    const xz_config_t *c = &xz_app->cfg;
    uint64_t now = wisp_loop_now(d->loop);
    if (d->closed)
        return;
    if (d->state == XZ_S_CONNECTED && now >= d->t_open + c->hello_timeout_ms) {
        LOGD(d, WISP_LOG_INFO, "event=hello_timeout");
        step(d, XZ_E_HELLO_TIMEOUT);
        return;
    }
    if (now >= d->last_activity + (uint64_t)c->idle_close_s * 1000) {
        LOGD(d, WISP_LOG_INFO, "event=idle_close");
        step(d, XZ_E_IDLE_LIMIT);
        return;
    }
    if (d->vad->active(&d->vad_state)) {
        xz_vad_event_t ev = d->vad->tick(&d->vad_state, now);
        if (ev == XZ_VAD_END && d->state == XZ_S_LISTENING)
            utterance_end(d);
        else if (ev == XZ_VAD_DISCARD)
            xz_pkts_clear(d->utt);
    }
    if (now >= d->last_voice + (uint64_t)c->no_voice_close_s * 1000) {
        /* Not while a reply speaks or is being prepared: only idle
         * listening counts as "no voice". */
        if (d->state == XZ_S_THINKING || d->state == XZ_S_SPEAKING ||
            d->state == XZ_S_FAREWELL)
            d->last_voice = now;
        else if (step(d, XZ_E_NO_VOICE))
            return;
        else
            d->last_voice = now;
    }
    if (!d->closed)
        house_arm(d);
}

/* --------------------------------------------------------- messages */

static __thread wisp_json_tok_t toks[2048];

static int str_member(const wisp_json_doc_t *doc, int obj, const char *key,
                      char *out, size_t cap)
{
    int i = wisp_json_get(doc, obj, key);
    if (wisp_json_type(doc, i) != WISP_JSON_STRING)
        return -1;
    return wisp_json_str(doc, i, out, cap) < 0 ? -1 : 0;
}

static uint32_t uint_member(const wisp_json_doc_t *doc, int obj,
                            const char *key, uint32_t dflt)
{
    uint64_t v;
    int i = wisp_json_get(doc, obj, key);
    if (i < 0 || wisp_json_uint64(doc, i, &v) < 0 || v > UINT32_MAX)
        return dflt;
    return (uint32_t)v;
}

static int bool_member(const wisp_json_doc_t *doc, int obj, const char *key)
{
    int b = 0;
    return wisp_json_bool(doc, wisp_json_get(doc, obj, key), &b) == 0 && b;
}

static void on_hello(xz_dev_t *d, const wisp_json_doc_t *doc)
{
    int ap = wisp_json_get(doc, 0, "audio_params");
    if (ap < 0)
        ap = wisp_json_get(doc, 0, "audioParams");
    uint32_t rate = uint_member(doc, ap, "sample_rate", 16000);
    uint32_t fms = uint_member(doc, ap, "frame_duration", 60);
    if (rate != 8000 && rate != 12000 && rate != 16000 && rate != 24000 &&
        rate != 48000)
        rate = 16000;
    if (fms != 10 && fms != 20 && fms != 40 && fms != 60 && fms != 80 &&
        fms != 100 && fms != 120)
        fms = 60;
    d->up_rate = rate;
    d->up_frame_ms = fms;
    d->utt->frame_ms = fms;
    int feats = wisp_json_get(doc, 0, "features");
    d->feat_mcp = bool_member(doc, feats, "mcp");
    d->feat_aec = bool_member(doc, feats, "aec");
    const xz_pipeline_t *p = pipe_of();
    d->down_rate = p->configured_audio ? xz_app->cfg.downlink_sample_rate
                                       : rate;
    d->down_frame_ms = p->configured_audio ? xz_app->cfg.downlink_frame_ms
                                           : fms;
    int first = d->state == XZ_S_CONNECTED;
    step(d, XZ_E_HELLO);
    if (first)
        utt_reset(d);

    wisp_json_writer_t w;
    msg_begin(d, &w, "hello");
    wisp_json_kv_str(&w, "transport", "websocket");
    wisp_json_kv_int(&w, "version", d->framing);
    wisp_json_key(&w, "audio_params");
    wisp_json_obj_begin(&w);
    wisp_json_kv_str(&w, "format", "opus");
    wisp_json_kv_int(&w, "sample_rate", d->down_rate);
    wisp_json_kv_int(&w, "channels", 1);
    wisp_json_kv_int(&w, "frame_duration", d->down_frame_ms);
    wisp_json_obj_end(&w);
    wisp_json_obj_end(&w);
    xz_dev_send(d, &w);
    LOGD(d, WISP_LOG_INFO, "event=hello framing=%d up=%u/%u down=%u/%u "
         "mcp=%d", d->framing, rate, fms, d->down_rate, d->down_frame_ms,
         d->feat_mcp);
    if (first && d->feat_mcp)
        xz_mcp_start(d);
    house_arm(d);
}

/* Wake phrases: a detect with one of these only starts listening. */
static int is_wake_phrase(const char *t)
{
    static const char *const w[] = {"你好小智", "你好小志", "小爱同学",
        "你好小鑫", "你好小美", "嗨小智", "hi esp", "hey esp", "hi xiaozhi",
        "hey xiaozhi", "hello xiaozhi", "小智"};
    char clean[256];
    size_t o = 0;
    for (const char *p = t; *p && o + 1 < sizeof clean; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == ',' || c == '.' || c == '!' || c == '?' || c == ' ')
            continue;
        clean[o++] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
    }
    clean[o] = 0;
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++) {
        char cw[64];
        size_t k = 0;
        for (const char *p = w[i]; *p; p++)
            if (*p != ' ')
                cw[k++] = *p;
        cw[k] = 0;
        if (!strcmp(clean, cw))
            return 1;
    }
    return 0;
}

static void on_listen(xz_dev_t *d, const wisp_json_doc_t *doc)
{
    char state[16], mode[16];
    if (str_member(doc, 0, "state", state, sizeof state) < 0)
        return;
    if (str_member(doc, 0, "mode", mode, sizeof mode) == 0) {
        if (!strcmp(mode, "manual"))
            d->mode = XZ_MODE_MANUAL;
        else if (!strcmp(mode, "realtime"))
            d->mode = XZ_MODE_REALTIME;
        else if (!strcmp(mode, "auto"))
            d->mode = XZ_MODE_AUTO;
    }
    uint64_t now = wisp_loop_now(d->loop);
    if (!strcmp(state, "start")) {
        step(d, XZ_E_LISTEN_START);
    } else if (!strcmp(state, "stop")) {
        if (d->state == XZ_S_LISTENING && d->utt->n == 0) {
            /* Nothing recorded: nothing to answer; the device idles. */
            step(d, XZ_E_EMPTY);
            return;
        }
        step(d, XZ_E_LISTEN_STOP);
    } else if (!strcmp(state, "detect")) {
        char text[1024];
        if (str_member(doc, 0, "text", text, sizeof text) < 0 || !text[0] ||
            is_wake_phrase(text)) {
            step(d, XZ_E_DETECT_WAKE);
            return;
        }
        d->last_voice = now;
        pending_text = text;
        step(d, XZ_E_DETECT_TEXT);
        pending_text = NULL;
    }
}

static void on_text_msg(xz_dev_t *d, const char *data, size_t len)
{
    wisp_json_doc_t doc;
    if (wisp_json_parse(&doc, data, len, toks, 2048, NULL) < 0 ||
        wisp_json_type(&doc, 0) != WISP_JSON_OBJECT) {
        LOGD(d, WISP_LOG_DEBUG, "event=ignored reason=not_json_object");
        return;
    }
    char type[32];
    if (str_member(&doc, 0, "type", type, sizeof type) < 0) {
        LOGD(d, WISP_LOG_DEBUG, "event=ignored reason=no_type");
        return;
    }
    if (!strcmp(type, "hello")) {
        on_hello(d, &doc);
        return;
    }
    if (d->state == XZ_S_CONNECTED) {
        LOGD(d, WISP_LOG_DEBUG, "event=ignored reason=before_hello "
             "type=%s", type);
        return;
    }
    if (!strcmp(type, "listen")) {
        on_listen(d, &doc);
    } else if (!strcmp(type, "abort")) {
        LOGD(d, WISP_LOG_INFO, "event=abort state=%s",
             xz_state_name(d->state));
        wisp_counter_inc(xz_app->m.aborts);
        /* The entry action of the new state cancels the reply (provider
         * futures, queued audio) and sends tts stop at once when a reply
         * had started (§4.3); with nothing playing, abort is a no-op. */
        step(d, XZ_E_ABORT);
    } else if (!strcmp(type, "mcp")) {
        int p = wisp_json_get(&doc, 0, "payload");
        if (wisp_json_type(&doc, p) == WISP_JSON_OBJECT)
            xz_mcp_on_message(d, &doc, p);
    } else {
        /* goodbye is MQTT-only (§3.6): over WebSocket a device ends a
         * session by closing the connection. */
        /* iot, ping and unknown types: ignored (§4.5). */
        LOGD(d, WISP_LOG_DEBUG, "event=ignored type=%s", type);
    }
}

/* ------------------------------------------------------ ws callbacks */

static void ws_message(wisp_ws_t *ws, int binary, const void *data,
                       size_t len, void *arg)
{
    (void)ws;
    xz_dev_t *d = arg;
    if (d->closed || d->state == XZ_S_CLOSING)
        return;
    d->last_activity = wisp_loop_now(d->loop);
    xz_dev_ref(d);
    if (binary) {
        wisp_counter_inc(xz_app->m.frames_in);
        if (d->state != XZ_S_CONNECTED)
            on_audio(d, data, len);
    } else {
        on_text_msg(d, data, len);
    }
    xz_dev_unref(d);
}

static void dev_close(xz_dev_t *d, int code, const char *why)
{
    if (d->closed)
        return;
    LOGD(d, WISP_LOG_INFO, "event=close code=%d reason=%s", code, why);
    wisp_ws_close(d->ws, code, why);
}

static void ws_close(wisp_ws_t *ws, int code, const char *reason,
                     size_t rlen, void *arg)
{
    (void)ws;
    xz_dev_t *d = arg;
    LOGD(d, WISP_LOG_INFO, "event=closed code=%d reason=%.*s state=%s",
         code, (int)rlen, reason, xz_state_name(d->state));
    turn_clear(d);
    step(d, XZ_E_CLOSE);
    d->closed = 1;
    wisp_timer_stop(&d->t_house);
    wisp_timer_stop(&d->t_pace);
    xz_mcp_close(&d->mcp);
    wisp_gauge_dec(xz_app->m.sessions[d->state]);
    atomic_fetch_sub(&xz_app->sessions, 1);
    if (d->dialogue_len) {
        xz_save_dialogue(d->loop, d->device_id, d->dialogue,
                         d->dialogue_len);
        d->dialogue = NULL;  /* the save job owns it now */
        d->dialogue_len = 0;
    }
    xz_dev_unref(d);
}

static void ws_open(wisp_ws_t *ws, void *arg)
{
    ((xz_dev_t *)arg)->ws = ws;
}

static const wisp_ws_handlers_t handlers = {
    .on_open = ws_open,
    .on_message = ws_message,
    .on_close = ws_close,
};

/* ----------------------------------------------------------- upgrade */

/* A header, or else the query parameter of the same meaning (§3.1:
 * browsers cannot set headers). Returns the length or -1. */
static ssize_t id_of(wisp_req_t *req, const char *header, const char *query,
                     char *out, size_t cap)
{
    wisp_str_t h = wisp_req_header(req, header);
    if (h.ptr && h.len) {
        if (h.len >= cap)
            return -1;
        memcpy(out, h.ptr, h.len);
        out[h.len] = 0;
        return (ssize_t)h.len;
    }
    ssize_t n = wisp_req_query_get(req, query, out, cap);
    if (n <= 0 || (size_t)n >= cap)
        return -1;
    return n;
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s + 32);
}

static void json_error(wisp_res_t *res, int status, const char *msg)
{
    char body[256];
    int n = snprintf(body, sizeof body, "{\"error\":\"%s\"}", msg);
    wisp_res_send(res, status, "application/json", body, (size_t)n);
}

/* The URL base of the vision endpoint handed out in MCP initialize. */
static void vision_base(wisp_req_t *req, char *out, size_t cap)
{
    const xz_config_t *c = &xz_app->cfg;
    if (c->public_http_url[0]) {
        size_t n = strlen(c->public_http_url);
        while (n && c->public_http_url[n - 1] == '/')
            n--;
        snprintf(out, cap, "%.*s", (int)n, c->public_http_url);
        return;
    }
    wisp_str_t host = wisp_req_header(req, "Host");
    char h[200] = "localhost";
    if (host.ptr && host.len && host.len < sizeof h) {
        memcpy(h, host.ptr, host.len);
        h[host.len] = 0;
    }
    /* Strip a port: the firmware's Host has none (§3.1), so the port is
     * ours to add: the second HTTP port when it serves vision, else the
     * port this request reached. */
    char *colon = strrchr(h, ':');
    char *rb = strrchr(h, ']');
    int has_port = colon && (!rb || colon > rb) &&
                   (h[0] == '[' || strchr(h, ':') == colon);
    if (has_port)
        *colon = 0;
    unsigned port = c->http_port ? c->http_port : xz_app->ws_port;
    snprintf(out, cap, "http://%s:%u", h, port);
}

void xz_device_route(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    const xz_config_t *c = &xz_app->cfg;
    wisp_str_t up = wisp_req_header(req, "Upgrade");
    if (!up.ptr || up.len != 9 || strncasecmp(up.ptr, "websocket", 9)) {
        static const char msg[] = "Server is running (xiaozhi-server, "
                                  "WebSocket on this path)\n";
        wisp_res_send(res, 200, "text/plain", msg, sizeof msg - 1);
        return;
    }
    char dev[64], cli[80], authz[256];
    if (id_of(req, "Device-Id", "device-id", dev, sizeof dev) < 0) {
        json_error(res, 400, "Device-Id is required (header or device-id "
                   "query parameter)");
        return;
    }
    lower(dev);
    if (id_of(req, "Client-Id", "client-id", cli, sizeof cli) < 0)
        snprintf(cli, sizeof cli, "%s", dev);
    if (c->auth_enabled && !xz_config_device_allowed(c, dev)) {
        ssize_t n = id_of(req, "Authorization", "authorization", authz,
                          sizeof authz);
        if (n < 0 || xz_token_check(xz_app->secret, cli, dev, authz,
                                    (size_t)n, xz_unix_s(),
                                    c->auth_expire_seconds) < 0) {
            xz_log(WISP_LOG_INFO, dev, "-", "event=auth_failed peer=%s",
                   wisp_req_peer(req));
            wisp_res_header(res, "WWW-Authenticate", "Bearer");
            json_error(res, 401, "invalid or missing token");
            return;
        }
    }
    if (atomic_fetch_add(&xz_app->sessions, 1) >= (int)c->max_sessions) {
        atomic_fetch_sub(&xz_app->sessions, 1);
        wisp_counter_inc(xz_app->m.rejected_sessions);
        wisp_res_header(res, "Retry-After", "10");
        json_error(res, 503, "too many sessions");
        return;
    }
    xz_dev_t *d = calloc(1, sizeof *d);
    if (d)
        d->utt = xz_pkts_new(60);
    if (!d || !d->utt) {
        atomic_fetch_sub(&xz_app->sessions, 1);
        free(d);
        json_error(res, 500, "out of memory");
        return;
    }
    d->refs = 1;
    d->loop = wisp_req_loop(req);
    snprintf(d->device_id, sizeof d->device_id, "%s", dev);
    snprintf(d->client_id, sizeof d->client_id, "%s", cli);
    uint8_t r[16];
    xz_random(r, sizeof r);
    r[6] = (uint8_t)((r[6] & 0x0f) | 0x40);
    r[8] = (uint8_t)((r[8] & 0x3f) | 0x80);
    snprintf(d->session_id, sizeof d->session_id,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
             "%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4],
             r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13],
             r[14], r[15]);
    wisp_str_t pv = wisp_req_header(req, "Protocol-Version");
    d->framing = 1;
    if (pv.ptr && pv.len == 1 && pv.ptr[0] >= '1' && pv.ptr[0] <= '3')
        d->framing = pv.ptr[0] - '0';
    vision_base(req, d->vision_base, sizeof d->vision_base);
    d->up_rate = 16000;
    d->up_frame_ms = 60;
    d->down_rate = 16000;
    d->down_frame_ms = 60;
    d->vad = &xz_vad_opus;
    d->state = XZ_S_CONNECTED;
    d->mode = XZ_MODE_AUTO;
    xz_mcp_init(&d->mcp);
    wisp_timer_init(d->loop, &d->t_house);
    wisp_timer_init(d->loop, &d->t_pace);
    uint64_t now = wisp_loop_now(d->loop);
    d->t_open = d->last_voice = d->last_activity = now;
    utt_reset(d);
    char peer[64];
    snprintf(peer, sizeof peer, "%s", wisp_req_peer(req));
    int rc = wisp_ws_upgrade(req, res, &handlers, &xz_ws_opts, d);
    if (rc < 0) {
        atomic_fetch_sub(&xz_app->sessions, 1);
        xz_dev_unref(d);
        return;
    }
    wisp_counter_inc(xz_app->m.sessions_total);
    wisp_gauge_inc(xz_app->m.sessions[XZ_S_CONNECTED]);
    LOGD(d, WISP_LOG_INFO, "event=connected peer=%s framing=%d", peer,
         d->framing);
    house_arm(d);
}
