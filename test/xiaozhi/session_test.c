/* xiaozhi-server session state machine: every transition, row by row. */
#include "../test.h"
#include "session.h"

#define A XZ_MODE_AUTO
#define M XZ_MODE_MANUAL
#define RT XZ_MODE_REALTIME
#define NO XZ_S_NONE

typedef struct row {
    xz_state_t from;
    xz_event_t ev;
    xz_listen_mode_t mode;
    xz_state_t to;
    const char *why;
} row;

static const row rows[] = {
    /* connected: only the hello (or its timeout, or a close) counts */
    {XZ_S_CONNECTED, XZ_E_HELLO, A, XZ_S_GREETED, "hello answered"},
    {XZ_S_CONNECTED, XZ_E_HELLO_TIMEOUT, A, XZ_S_CLOSING, "hello timeout closes"},
    {XZ_S_CONNECTED, XZ_E_LISTEN_START, A, NO, "listen before hello ignored"},
    {XZ_S_CONNECTED, XZ_E_UTTERANCE, A, NO, "audio before hello ignored"},
    {XZ_S_CONNECTED, XZ_E_CLOSE, A, XZ_S_CLOSED, "close"},
    {XZ_S_CONNECTED, XZ_E_IDLE_LIMIT, A, XZ_S_CLOSING, "idle limit"},
    /* greeted: never a reply before the first listen (§3.8) */
    {XZ_S_GREETED, XZ_E_UTTERANCE, A, NO, "no reply before first listen"},
    {XZ_S_GREETED, XZ_E_TTS_START, A, NO, "no tts before first listen"},
    {XZ_S_GREETED, XZ_E_LISTEN_START, A, XZ_S_LISTENING, "listen start"},
    {XZ_S_GREETED, XZ_E_DETECT_WAKE, A, XZ_S_LISTENING, "wake word"},
    {XZ_S_GREETED, XZ_E_DETECT_TEXT, A, XZ_S_THINKING, "text utterance"},
    {XZ_S_GREETED, XZ_E_LISTEN_STOP, M, XZ_S_IDLE, "stop without start"},
    {XZ_S_GREETED, XZ_E_HELLO, A, XZ_S_GREETED, "second hello answered"},
    {XZ_S_GREETED, XZ_E_NO_VOICE, A, XZ_S_CLOSING, "no voice: close, no farewell"},
    {XZ_S_GREETED, XZ_E_ABORT, A, NO, "abort before listen: no state change"},
    /* listening */
    {XZ_S_LISTENING, XZ_E_UTTERANCE, A, XZ_S_THINKING, "VAD end"},
    {XZ_S_LISTENING, XZ_E_LISTEN_STOP, M, XZ_S_THINKING, "manual stop"},
    {XZ_S_LISTENING, XZ_E_LISTEN_START, A, XZ_S_LISTENING, "restart clears"},
    {XZ_S_LISTENING, XZ_E_DETECT_WAKE, A, XZ_S_LISTENING, "wake word again"},
    {XZ_S_LISTENING, XZ_E_DETECT_TEXT, A, XZ_S_THINKING, "text"},
    {XZ_S_LISTENING, XZ_E_EMPTY, A, XZ_S_LISTENING, "nothing (auto)"},
    {XZ_S_LISTENING, XZ_E_EMPTY, M, XZ_S_IDLE, "nothing (manual)"},
    {XZ_S_LISTENING, XZ_E_ABORT, A, XZ_S_LISTENING, "abort while listening"},
    {XZ_S_LISTENING, XZ_E_NO_VOICE, A, XZ_S_FAREWELL, "no voice: farewell"},
    {XZ_S_LISTENING, XZ_E_TTS_START, A, NO, "tts start needs a turn"},
    {XZ_S_LISTENING, XZ_E_REPLY_DONE, A, NO, "no reply to finish"},
    {XZ_S_LISTENING, XZ_E_BARGE_IN, RT, NO, "nothing to barge into"},
    {XZ_S_LISTENING, XZ_E_IDLE_LIMIT, A, XZ_S_CLOSING, "hard idle close"},
    {XZ_S_LISTENING, XZ_E_HELLO, A, XZ_S_LISTENING, "hello again"},
    {XZ_S_LISTENING, XZ_E_CLOSE, A, XZ_S_CLOSED, "close"},
    /* idle (manual between turns) */
    {XZ_S_IDLE, XZ_E_LISTEN_START, M, XZ_S_LISTENING, "button pressed"},
    {XZ_S_IDLE, XZ_E_UTTERANCE, M, NO, "no utterance while idle"},
    {XZ_S_IDLE, XZ_E_LISTEN_STOP, M, NO, "stop while idle"},
    {XZ_S_IDLE, XZ_E_DETECT_TEXT, M, XZ_S_THINKING, "text while idle"},
    {XZ_S_IDLE, XZ_E_NO_VOICE, M, XZ_S_FAREWELL, "farewell from idle"},
    {XZ_S_IDLE, XZ_E_ABORT, M, XZ_S_IDLE, "abort while idle"},
    /* thinking */
    {XZ_S_THINKING, XZ_E_TTS_START, A, XZ_S_SPEAKING, "reply starts"},
    {XZ_S_THINKING, XZ_E_EMPTY, A, XZ_S_LISTENING, "nothing recognised"},
    {XZ_S_THINKING, XZ_E_EMPTY, M, XZ_S_IDLE, "nothing (manual)"},
    {XZ_S_THINKING, XZ_E_ABORT, A, XZ_S_LISTENING, "abort while thinking"},
    {XZ_S_THINKING, XZ_E_ABORT, M, XZ_S_IDLE, "abort (manual)"},
    {XZ_S_THINKING, XZ_E_LISTEN_START, A, XZ_S_LISTENING, "new listen cancels"},
    {XZ_S_THINKING, XZ_E_DETECT_TEXT, A, XZ_S_THINKING, "new text replaces"},
    {XZ_S_THINKING, XZ_E_UTTERANCE, A, NO, "audio while thinking dropped"},
    {XZ_S_THINKING, XZ_E_NO_VOICE, A, NO, "no farewell mid-turn"},
    {XZ_S_THINKING, XZ_E_REPLY_DONE, A, NO, "no reply yet"},
    {XZ_S_THINKING, XZ_E_IDLE_LIMIT, A, XZ_S_CLOSING, "hard idle close"},
    /* speaking */
    {XZ_S_SPEAKING, XZ_E_REPLY_DONE, A, XZ_S_LISTENING, "auto: back to listening"},
    {XZ_S_SPEAKING, XZ_E_REPLY_DONE, RT, XZ_S_LISTENING, "realtime: listening"},
    {XZ_S_SPEAKING, XZ_E_REPLY_DONE, M, XZ_S_IDLE, "manual: idle"},
    {XZ_S_SPEAKING, XZ_E_ABORT, A, XZ_S_LISTENING, "abort"},
    {XZ_S_SPEAKING, XZ_E_ABORT, M, XZ_S_IDLE, "abort (manual)"},
    {XZ_S_SPEAKING, XZ_E_BARGE_IN, RT, XZ_S_LISTENING, "realtime barge-in"},
    {XZ_S_SPEAKING, XZ_E_BARGE_IN, A, NO, "no barge-in in auto mode"},
    {XZ_S_SPEAKING, XZ_E_LISTEN_START, A, XZ_S_LISTENING, "listen cancels reply"},
    {XZ_S_SPEAKING, XZ_E_DETECT_WAKE, A, XZ_S_LISTENING, "wake word cancels"},
    {XZ_S_SPEAKING, XZ_E_DETECT_TEXT, A, XZ_S_THINKING, "text cancels, new turn"},
    {XZ_S_SPEAKING, XZ_E_UTTERANCE, A, NO, "no utterance while speaking"},
    {XZ_S_SPEAKING, XZ_E_NO_VOICE, A, NO, "no farewell while speaking"},
    {XZ_S_SPEAKING, XZ_E_TTS_START, A, NO, "one tts start per reply"},
    {XZ_S_SPEAKING, XZ_E_CLOSE, A, XZ_S_CLOSED, "close mid-reply"},
    /* farewell */
    {XZ_S_FAREWELL, XZ_E_TTS_START, A, XZ_S_FAREWELL, "farewell speaks"},
    {XZ_S_FAREWELL, XZ_E_REPLY_DONE, A, XZ_S_CLOSING, "then closes"},
    {XZ_S_FAREWELL, XZ_E_ABORT, A, XZ_S_CLOSING, "abort farewell: close"},
    {XZ_S_FAREWELL, XZ_E_EMPTY, A, XZ_S_CLOSING, "failed farewell: close"},
    {XZ_S_FAREWELL, XZ_E_LISTEN_START, A, NO, "listen during farewell"},
    {XZ_S_FAREWELL, XZ_E_CLOSE, A, XZ_S_CLOSED, "close"},
    /* closing and closed absorb everything */
    {XZ_S_CLOSING, XZ_E_LISTEN_START, A, NO, "closing ignores listen"},
    {XZ_S_CLOSING, XZ_E_HELLO, A, NO, "closing ignores hello"},
    {XZ_S_CLOSING, XZ_E_IDLE_LIMIT, A, NO, "closing: no second close"},
    {XZ_S_CLOSING, XZ_E_CLOSE, A, XZ_S_CLOSED, "closed"},
    {XZ_S_CLOSED, XZ_E_CLOSE, A, NO, "closed once"},
    {XZ_S_CLOSED, XZ_E_HELLO, A, NO, "nothing after close"},
};

int main(void)
{
    int covered[XZ_S_COUNT][XZ_E_COUNT] = {{0}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row *r = &rows[i];
        xz_state_t got = xz_session_next(r->from, r->ev, r->mode);
        CHECK_MSG(got == r->to, "%s: %s --%s--> %s, want %s", r->why,
                  xz_state_name(r->from), xz_event_name(r->ev),
                  xz_state_name(got), xz_state_name(r->to));
        covered[r->from][r->ev] = 1;
    }
    /* Every (state, event) pair: the answer is a real state or NONE, and
     * from CLOSED nothing moves. */
    for (int s = 0; s < XZ_S_COUNT; s++)
        for (int e = 0; e < XZ_E_COUNT; e++)
            for (int m = 0; m < 3; m++) {
                xz_state_t n = xz_session_next(s, e, m);
                CHECK(n == XZ_S_NONE || (n >= 0 && n < XZ_S_COUNT));
                if (s == XZ_S_CLOSED)
                    CHECK(n == XZ_S_NONE);
                if (e == XZ_E_CLOSE && s != XZ_S_CLOSED)
                    CHECK(n == XZ_S_CLOSED);
                /* a reply (SPEAKING) is entered only by tts start */
                if (n == XZ_S_SPEAKING && s != XZ_S_SPEAKING)
                    CHECK(e == XZ_E_TTS_START);
            }
    CHECK(covered[XZ_S_SPEAKING][XZ_E_BARGE_IN]);
    CHECK(!strcmp(xz_state_name(XZ_S_SPEAKING), "speaking"));
    CHECK(!strcmp(xz_event_name(XZ_E_ABORT), "abort"));
    return t_done("xz_session");
}
