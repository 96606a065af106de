/* xiaozhi-server — the session state machine's transition function. */
#include "session.h"

/* Where a finished or cancelled reply leaves the device: manual mode
 * goes idle (the button was released), the others keep listening
 * (PROTOCOL.md §3.7, tts stop). */
static xz_state_t after_reply(xz_listen_mode_t mode)
{
    return mode == XZ_MODE_MANUAL ? XZ_S_IDLE : XZ_S_LISTENING;
}

xz_state_t xz_session_next(xz_state_t s, xz_event_t e, xz_listen_mode_t mode)
{
    /* Events that act the same in every live state. */
    if (s == XZ_S_CLOSED)
        return XZ_S_NONE;
    if (e == XZ_E_CLOSE)
        return XZ_S_CLOSED;
    if (s == XZ_S_CLOSING)
        return XZ_S_NONE;
    if (e == XZ_E_IDLE_LIMIT)
        return XZ_S_CLOSING;
    if (e == XZ_E_HELLO)  /* a later hello is simply answered again */
        return s == XZ_S_CONNECTED ? XZ_S_GREETED : s;

    switch (s) {
    case XZ_S_CONNECTED:
        return e == XZ_E_HELLO_TIMEOUT ? XZ_S_CLOSING : XZ_S_NONE;

    case XZ_S_GREETED:
        switch (e) {
        case XZ_E_LISTEN_START:
        case XZ_E_DETECT_WAKE:
            return XZ_S_LISTENING;
        case XZ_E_DETECT_TEXT:
            return XZ_S_THINKING;
        case XZ_E_LISTEN_STOP:
            return XZ_S_IDLE;
        case XZ_E_NO_VOICE: /* no reply before the first listen: just go */
            return XZ_S_CLOSING;
        default:
            return XZ_S_NONE;
        }

    case XZ_S_LISTENING:
    case XZ_S_IDLE:
        switch (e) {
        case XZ_E_LISTEN_START:
        case XZ_E_DETECT_WAKE:
            return XZ_S_LISTENING;
        case XZ_E_DETECT_TEXT:
            return XZ_S_THINKING;
        case XZ_E_UTTERANCE:
        case XZ_E_LISTEN_STOP:
            return s == XZ_S_LISTENING ? XZ_S_THINKING : XZ_S_NONE;
        case XZ_E_EMPTY:
            return after_reply(mode);
        case XZ_E_ABORT:
            return s;
        case XZ_E_NO_VOICE:
            return XZ_S_FAREWELL;
        default:
            return XZ_S_NONE;
        }

    case XZ_S_THINKING:
        switch (e) {
        case XZ_E_TTS_START:
            return XZ_S_SPEAKING;
        case XZ_E_EMPTY:
        case XZ_E_ABORT:
            return after_reply(mode);
        case XZ_E_LISTEN_START:
        case XZ_E_DETECT_WAKE:
            return XZ_S_LISTENING;
        case XZ_E_DETECT_TEXT:
            return XZ_S_THINKING;
        default:
            return XZ_S_NONE;
        }

    case XZ_S_SPEAKING:
        switch (e) {
        case XZ_E_REPLY_DONE:
        case XZ_E_ABORT:
            return after_reply(mode);
        case XZ_E_LISTEN_START:
        case XZ_E_DETECT_WAKE:
            return XZ_S_LISTENING;
        case XZ_E_DETECT_TEXT:
            return XZ_S_THINKING;
        case XZ_E_BARGE_IN:
            return mode == XZ_MODE_REALTIME ? XZ_S_LISTENING : XZ_S_NONE;
        default:
            return XZ_S_NONE;
        }

    case XZ_S_FAREWELL:
        switch (e) {
        case XZ_E_TTS_START:
            return XZ_S_FAREWELL;
        case XZ_E_REPLY_DONE:
        case XZ_E_ABORT:
        case XZ_E_EMPTY:
            return XZ_S_CLOSING;
        default:
            return XZ_S_NONE;
        }

    default:
        return XZ_S_NONE;
    }
}

const char *xz_state_name(xz_state_t s)
{
    static const char *n[XZ_S_COUNT] = {"connected", "greeted", "listening",
        "thinking", "speaking", "idle", "farewell", "closing", "closed"};
    return s >= 0 && s < XZ_S_COUNT ? n[s] : "none";
}

const char *xz_event_name(xz_event_t e)
{
    static const char *n[XZ_E_COUNT] = {"hello", "listen_start",
        "listen_stop", "detect_wake", "detect_text", "utterance", "empty",
        "tts_start", "reply_done", "abort", "barge_in", "no_voice",
        "idle_limit", "hello_timeout", "close"};
    return e >= 0 && e < XZ_E_COUNT ? n[e] : "?";
}
