/* xiaozhi-server — the text side of a streamed LLM answer, as pure
 * functions (no I/O): the OpenAI-compatible chat-completions stream
 * (Ollama, llama.cpp's server, vLLM, LM Studio), <think> blocks removed,
 * and the text cut into sentences so that TTS can start on the first one
 * while the model is still writing.
 *
 * The pieces chain: an event-stream reader (wisp/sse.h) hands each
 * event's data to xz_llm_feed, whose content delta goes through
 * xz_think_feed into xz_splitter_feed, which calls back once per
 * sentence. Every buffer is bounded; each function says what happens at
 * its bound. */
#ifndef XZ_LLM_STREAM_H
#define XZ_LLM_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------ chat-completion chunks */

#define XZ_LLM_MAX_TOOL_CALLS 8

typedef struct xz_llm_tool_call {
    char id[64];    /* "call_..." (truncated past 63 bytes) */
    char name[128]; /* the function's name: an MCP tool name */
    char *args;     /* the arguments' JSON text, accumulated; NUL-ended */
    size_t args_len, args_cap;
} xz_llm_tool_call_t;

typedef struct xz_llm {
    size_t max_bytes;  /* bound on the content of one delta and on each
                          call's accumulated arguments */
    char *text;        /* the last delta's content, NUL-ended */
    size_t text_len, text_cap;
    xz_llm_tool_call_t calls[XZ_LLM_MAX_TOOL_CALLS];
    int ncalls;        /* calls seen (indices 0..ncalls-1) */
    char finish[32];   /* finish_reason once given ("stop", "length",
                          "tool_calls"); "" before */
    char error[160];   /* the message of an error object, if one came */
    int done;          /* "[DONE]" seen */
} xz_llm_t;

/* Start a stream. `max_bytes` 0 means 64 KiB. */
void xz_llm_init(xz_llm_t *l, size_t max_bytes);
/* Free the buffers (the struct stays the caller's). */
void xz_llm_free(xz_llm_t *l);

/* One event's data: a chunk object, or "[DONE]". On a chunk, the content
 * delta of choices[0] (decoded, possibly empty) is in l->text /
 * l->text_len until the next call; tool-call deltas are merged by their
 * "index" (id, name and type set by the first delta that has them, the
 * "arguments" pieces appended); finish_reason is kept when not null. A
 * chunk without choices (a usage-only chunk) is fine.
 * Returns 0, 1 for "[DONE]" (later calls return WISP_ESTATE),
 * WISP_EJSON_* when the data is not JSON, -EPROTO when it is JSON of
 * another shape (not an object; choices, delta or a tool call of the
 * wrong type) or an error object ({"error": {"message": ...}}, message
 * kept in l->error), -E2BIG for a tool-call index at or past
 * XZ_LLM_MAX_TOOL_CALLS, -EMSGSIZE past max_bytes, -ENOMEM. */
int xz_llm_feed(xz_llm_t *l, const char *data, size_t len);

/* ------------------------------------------------------ <think> removal */

/* Removes every "<think>" ... "</think>" block from a text that arrives
 * in pieces, the tags possibly cut anywhere; an unfinished block at the
 * end is dropped, an unfinished tag outside one is text. */
typedef struct xz_think {
    uint8_t in;      /* inside a block */
    uint8_t matched; /* bytes of the tag matched so far */
} xz_think_t;

void xz_think_init(xz_think_t *t);
/* Filter `n` bytes into `out`, which needs room for n + 8 bytes.
 * Returns the bytes written. */
size_t xz_think_feed(xz_think_t *t, const char *in, size_t n, char *out);
/* End of the text: writes at most 7 bytes (a partial tag that turned out
 * to be text) into `out`; returns their count. */
size_t xz_think_end(xz_think_t *t, char *out);

/* ------------------------------------------------------------ sentences */

typedef void (*xz_sentence_cb)(const char *s, size_t len, void *arg);

/* Cuts text into sentences: after 。！？；… and after . ! ? ; when a space
 * or the end follows (so "3.14" and "e.g.x" stay whole), and at line
 * breaks; closing quotes and brackets after the mark stay with it. A cut
 * is made only when the sentence has at least `min_chars` characters
 * (code points, spaces trimmed), else the text runs on to the next mark.
 * A sentence that grows past `max_bytes` (from its first non-space byte) without a
 * mark is cut within its first `max_bytes` at its last
 * comma (，、,：:), else its last space, else at a character boundary.
 * Sentences are handed out trimmed, never empty. */
typedef struct xz_splitter {
    char *buf;
    size_t len, cap;
    size_t scan;       /* bytes before this are known to hold no cut */
    size_t min_chars, max_bytes;
    xz_sentence_cb cb;
    void *arg;
} xz_splitter_t;

/* `min_chars` 0 means 1; `max_bytes` 0 means 512 (at least 16). */
void xz_splitter_init(xz_splitter_t *sp, size_t min_chars, size_t max_bytes,
                      xz_sentence_cb cb, void *arg);
void xz_splitter_free(xz_splitter_t *sp);
/* Add text; complete sentences are handed to the callback inside the
 * call. Returns 0 or -ENOMEM (then the text was not taken). */
int xz_splitter_feed(xz_splitter_t *sp, const char *text, size_t n);
/* End of the answer: the rest, if any, goes out as the last sentence
 * (whatever its length). The splitter is ready for a new answer. */
void xz_splitter_flush(xz_splitter_t *sp);

#endif
