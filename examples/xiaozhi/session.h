/* xiaozhi-server — the per-session state machine, in one place.
 *
 *   CONNECTED --hello--> GREETED --listen start/detect--> LISTENING
 *   LISTENING --end of utterance / listen stop / text--> THINKING
 *   THINKING  --tts start--> SPEAKING --reply done--> LISTENING (auto,
 *             realtime) or IDLE (manual)
 *   abort, a new listen start or a barge-in end a reply early;
 *   no voice for no_voice_close_s --> FAREWELL (a spoken goodbye) -->
 *   CLOSING; the hard idle limit, a hello timeout or a close --> CLOSING
 *   or CLOSED.
 *
 * xz_session_next() is the only function that decides a new state: the
 * WebSocket driver (device.c) feeds it every event and acts on the
 * answer. It is pure, so every transition is tested row by row
 * (test/xiaozhi/session_test.c). */
#ifndef XZ_SESSION_H
#define XZ_SESSION_H

typedef enum xz_state {
    XZ_S_CONNECTED = 0, /* upgraded, waiting for the device hello */
    XZ_S_GREETED,       /* hello answered, no listen yet: never reply */
    XZ_S_LISTENING,     /* collecting an utterance */
    XZ_S_THINKING,      /* recognising / waiting for the reply */
    XZ_S_SPEAKING,      /* tts start sent, audio flowing */
    XZ_S_IDLE,          /* manual mode between turns */
    XZ_S_FAREWELL,      /* speaking the no-voice goodbye */
    XZ_S_CLOSING,       /* close sent (or being sent): ignore input */
    XZ_S_CLOSED,
    XZ_S_COUNT,
    XZ_S_NONE = -1      /* the event does not apply in this state */
} xz_state_t;

typedef enum xz_event {
    XZ_E_HELLO = 0,
    XZ_E_LISTEN_START,
    XZ_E_LISTEN_STOP,   /* manual: recognise what was buffered */
    XZ_E_DETECT_WAKE,   /* listen detect with a wake phrase */
    XZ_E_DETECT_TEXT,   /* listen detect with other text: an utterance */
    XZ_E_UTTERANCE,     /* VAD end of utterance, or end-of-recording */
    XZ_E_EMPTY,         /* nothing recognised / nothing buffered */
    XZ_E_TTS_START,     /* the reply starts speaking */
    XZ_E_REPLY_DONE,    /* tts stop sent after the last packet + drain */
    XZ_E_ABORT,
    XZ_E_BARGE_IN,      /* realtime: the user spoke over the reply */
    XZ_E_NO_VOICE,      /* no_voice_close_s without voice */
    XZ_E_IDLE_LIMIT,    /* idle_close_s: hard close */
    XZ_E_HELLO_TIMEOUT,
    XZ_E_CLOSE,         /* the connection closed */
    XZ_E_COUNT
} xz_event_t;

typedef enum xz_listen_mode {
    XZ_MODE_AUTO = 0,
    XZ_MODE_MANUAL,
    XZ_MODE_REALTIME,
} xz_listen_mode_t;

/* The state after `e` in state `s` with listening mode `mode`, or
 * XZ_S_NONE when the event is ignored in that state. */
xz_state_t xz_session_next(xz_state_t s, xz_event_t e, xz_listen_mode_t mode);

const char *xz_state_name(xz_state_t s);
const char *xz_event_name(xz_event_t e);

#endif
