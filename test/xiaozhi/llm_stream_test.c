/* xiaozhi-server streamed LLM text (examples/xiaozhi/llm_stream.c): the
 * chat-completion chunks of a real Ollama stream read through wisp's
 * event-stream reader at every split of the wire bytes, <think> removal
 * with the tags cut anywhere, tool calls accumulated by index, sentence
 * splitting (Chinese and English marks, numbers kept whole, minimum
 * length, forced cuts, the flush), and the bad inputs of each part. */
#include <string.h>

#include <wisp.h>

#include "../test.h"
#include "llm_stream.h"

#define S(lit) lit, sizeof(lit) - 1

/* The wire format of Ollama's OpenAI-compatible endpoint,
 * POST /v1/chat/completions with "stream": true. Source: ollama/ollama,
 * middleware/openai.go (ChatWriter.writeResponse writes each chunk as
 * "data: " + compact JSON + "\n\n" and ends with "data: [DONE]\n\n")
 * and openai/openai.go (ChatCompletionChunk: id "chatcmpl-N", object
 * "chat.completion.chunk", created, model, system_fingerprint
 * "fp_ollama", choices[{index, delta{role, content}, finish_reason}]);
 * a captured chunk of the same shape is quoted in
 * mjt-services/api-service-2025, src/type/OpenAiChunk.ts:
 * {"id":"chatcmpl-86","object":"chat.completion.chunk","created":1743277352,
 *  "model":"gemma3:4b","system_fingerprint":"fp_ollama","choices":[{"index":0,
 *  "delta":{"role":"assistant","content":" you"},"finish_reason":null}]}
 * The content pieces below are a thinking model's answer (qwen3 writes
 * its reasoning between <think> tags in the content). */
#define CHUNK(content, finish)                                              \
    "data: {\"id\":\"chatcmpl-86\",\"object\":\"chat.completion.chunk\","  \
    "\"created\":1743277352,\"model\":\"qwen3:0.6b\",\"system_fingerprint\"" \
    ":\"fp_ollama\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"         \
    "\"assistant\",\"content\":\"" content "\"},\"finish_reason\":" finish  \
    "}]}\n\n"

static const char ollama_stream[] =
    CHUNK("<think>", "null")
    CHUNK("\\nThe user asks", "null")
    CHUNK(" about pi.\\n</thi", "null")
    CHUNK("nk>\\n\\n", "null")
    CHUNK("Pi is about 3", "null")
    CHUNK(".", "null")
    CHUNK("14", "null")
    CHUNK(". It never", "null")
    CHUNK(" ends! \\u4f60\\u597d", "null")
    CHUNK("，世界。", "null")
    CHUNK("\\\"Bye\\\"", "null")
    CHUNK("", "\"stop\"")
    "data: [DONE]\n\n";

static const char *const ollama_sentences[] = {
    "Pi is about 3.14.", "It never ends!", "你好，世界。", "\"Bye\"",
};

/* A tool call as Ollama streams it: whole in one chunk (from
 * ollama/ollama openai.go ToToolCalls: id, index, type, function{name,
 * arguments as a JSON string}), then finish_reason "tool_calls". */
static const char ollama_tool_stream[] =
    "data: {\"id\":\"chatcmpl-838\",\"object\":\"chat.completion.chunk\","
    "\"created\":1744438886,\"model\":\"qwen3:0.6b\",\"system_fingerprint\":"
    "\"fp_ollama\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
    "\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"call_hk81qg8b\","
    "\"index\":0,\"type\":\"function\",\"function\":{\"name\":"
    "\"self.audio_speaker.set_volume\",\"arguments\":\"{\\\"volume\\\":30}\"}}]},"
    "\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"chatcmpl-838\",\"object\":\"chat.completion.chunk\","
    "\"created\":1744438886,\"model\":\"qwen3:0.6b\",\"system_fingerprint\":"
    "\"fp_ollama\",\"choices\":[{\"index\":0,\"delta\":{\"role\":"
    "\"assistant\",\"content\":\"\"},\"finish_reason\":\"tool_calls\"}]}\n\n"
    "data: [DONE]\n\n";

/* OpenAI's own style: two calls, name in the first delta of each, the
 * arguments in pieces, CRLF line ends, a usage-only chunk at the end. */
static const char openai_tool_stream[] =
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
    "\"content\":null,\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":"
    "\"function\",\"function\":{\"name\":\"self.get_device_status\","
    "\"arguments\":\"\"}}]},\"finish_reason\":null}]}\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
    "\"function\":{\"arguments\":\"{}\"}}]},\"finish_reason\":null}]}\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,"
    "\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":"
    "\"self.audio_speaker.set_volume\",\"arguments\":\"{\\\"vol\"}}]},"
    "\"finish_reason\":null}]}\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,"
    "\"function\":{\"arguments\":\"ume\\\": 30}\"}}]},\"finish_reason\":null}]}"
    "\r\n\r\n"
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":"
    "\"tool_calls\"}]}\r\n\r\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
    "\"completion_tokens\":12,\"total_tokens\":21}}\r\n\r\n"
    "data: [DONE]\r\n\r\n";

/* ----------------------------------------------------- the whole chain */

typedef struct chain {
    xz_llm_t llm;
    xz_think_t think;
    xz_splitter_t sp;
    char text[1024]; /* all content after <think> removal */
    size_t text_len;
    char sent[16][64];
    int nsent;
    int dones, errors;
} chain;

static void on_sentence(const char *s, size_t len, void *arg)
{
    chain *c = arg;
    if (c->nsent < 16)
        snprintf(c->sent[c->nsent], 64, "%.*s", (int)len, s);
    c->nsent++;
}

static void pass_text(chain *c, const char *t, size_t n)
{
    CHECK(c->text_len + n < sizeof c->text);
    memcpy(c->text + c->text_len, t, n);
    c->text_len += n;
    CHECK_EQ_INT(xz_splitter_feed(&c->sp, t, n), 0);
}

static int on_event(const wisp_sse_event_t *ev, void *arg)
{
    chain *c = arg;
    int r = xz_llm_feed(&c->llm, ev->data.ptr, ev->data.len);
    if (r == 1) {
        char out[8];
        pass_text(c, out, xz_think_end(&c->think, out));
        xz_splitter_flush(&c->sp);
        c->dones++;
        return 0;
    }
    if (r < 0) {
        c->errors++;
        return r;
    }
    char out[512];
    CHECK(c->llm.text_len + 8 <= sizeof out);
    pass_text(c, out,
              xz_think_feed(&c->think, c->llm.text, c->llm.text_len, out));
    return 0;
}

static void chain_run(chain *c, const char *wire, size_t len, size_t cut)
{
    memset(c, 0, sizeof *c);
    xz_llm_init(&c->llm, 0);
    xz_think_init(&c->think);
    xz_splitter_init(&c->sp, 4, 0, on_sentence, c);
    wisp_sse_reader_t *r = wisp_sse_reader_create(0, on_event, c);
    CHECK(r != NULL);
    CHECK_EQ_INT(wisp_sse_reader_feed(r, wire, cut), 0);
    CHECK_EQ_INT(wisp_sse_reader_feed(r, wire + cut, len - cut), 0);
    CHECK_EQ_INT(wisp_sse_reader_end(r), 0);
    wisp_sse_reader_destroy(r);
    xz_splitter_free(&c->sp);
}

static void test_ollama_stream(void)
{
    static const char want_text[] =
        "\n\nPi is about 3.14. It never ends! 你好，世界。\"Bye\"";
    for (size_t cut = 0; cut <= sizeof ollama_stream - 1; cut++) {
        chain c;
        chain_run(&c, ollama_stream, sizeof ollama_stream - 1, cut);
        CHECK_EQ_INT(c.dones, 1);
        CHECK_EQ_INT(c.errors, 0);
        CHECK_STRN(c.text, c.text_len, want_text);
        CHECK_EQ_INT(c.nsent, 4);
        for (int i = 0; i < 4 && i < c.nsent; i++)
            CHECK_MSG(strcmp(c.sent[i], ollama_sentences[i]) == 0,
                      "cut %zu: sentence %d \"%s\"", cut, i, c.sent[i]);
        CHECK(strcmp(c.llm.finish, "stop") == 0);
        CHECK_EQ_INT(c.llm.ncalls, 0);
        xz_llm_free(&c.llm);
    }
}

static void test_tool_streams(void)
{
    for (size_t cut = 0; cut <= sizeof ollama_tool_stream - 1; cut += 7) {
        chain c;
        chain_run(&c, ollama_tool_stream, sizeof ollama_tool_stream - 1, cut);
        CHECK_EQ_INT(c.dones, 1);
        CHECK_EQ_INT(c.nsent, 0);
        CHECK_EQ_INT(c.llm.ncalls, 1);
        CHECK(strcmp(c.llm.calls[0].id, "call_hk81qg8b") == 0);
        CHECK(strcmp(c.llm.calls[0].name, "self.audio_speaker.set_volume") ==
              0);
        CHECK_STRN(c.llm.calls[0].args, c.llm.calls[0].args_len,
                   "{\"volume\":30}");
        CHECK(strcmp(c.llm.finish, "tool_calls") == 0);
        xz_llm_free(&c.llm);
    }
    for (size_t cut = 0; cut <= sizeof openai_tool_stream - 1; cut += 5) {
        chain c;
        chain_run(&c, openai_tool_stream, sizeof openai_tool_stream - 1, cut);
        CHECK_EQ_INT(c.dones, 1);
        CHECK_EQ_INT(c.llm.ncalls, 2);
        CHECK(strcmp(c.llm.calls[0].id, "call_a") == 0);
        CHECK(strcmp(c.llm.calls[0].name, "self.get_device_status") == 0);
        CHECK_STRN(c.llm.calls[0].args, c.llm.calls[0].args_len, "{}");
        CHECK(strcmp(c.llm.calls[1].id, "call_b") == 0);
        CHECK(strcmp(c.llm.calls[1].name, "self.audio_speaker.set_volume") ==
              0);
        CHECK_STRN(c.llm.calls[1].args, c.llm.calls[1].args_len,
                   "{\"volume\": 30}");
        CHECK(strcmp(c.llm.finish, "tool_calls") == 0);
        xz_llm_free(&c.llm);
    }
}

/* ------------------------------------------------------ bad chunks */

static void test_llm_bad(void)
{
    xz_llm_t l;
    xz_llm_init(&l, 64);
    CHECK_EQ_INT(xz_llm_feed(&l, S("not json")), WISP_EJSON_SYNTAX);
    CHECK_EQ_INT(xz_llm_feed(&l, S("[1]")), -EPROTO);
    CHECK_EQ_INT(xz_llm_feed(&l, S("{\"choices\":{}}")), -EPROTO);
    CHECK_EQ_INT(xz_llm_feed(&l, S("{\"choices\":[1]}")), -EPROTO);
    CHECK_EQ_INT(xz_llm_feed(&l, S("{\"choices\":[{\"delta\":[]}]}")),
                 -EPROTO);
    CHECK_EQ_INT(
        xz_llm_feed(&l, S("{\"choices\":[{\"delta\":{\"content\":5}}]}")),
        -EPROTO);
    CHECK_EQ_INT(xz_llm_feed(&l, S("{\"choices\":[{\"delta\":{\"tool_calls\":"
                                   "[{\"index\":8}]}}]}")),
                 -E2BIG);
    CHECK_EQ_INT(xz_llm_feed(&l, S("{\"choices\":[{\"delta\":{\"tool_calls\":"
                                   "[{\"index\":-1}]}}]}")),
                 -EPROTO);
    CHECK_EQ_INT(xz_llm_feed(&l, S("{\"choices\":[{\"delta\":{\"tool_calls\":"
                                   "[{\"index\":0,\"function\":7}]}}]}")),
                 -EPROTO);
    /* Content over the bound (64 bytes). */
    CHECK_EQ_INT(
        xz_llm_feed(&l, S("{\"choices\":[{\"delta\":{\"content\":\""
                          "0123456789012345678901234567890123456789"
                          "0123456789012345678901234567890123456789\"}}]}")),
        -EMSGSIZE);
    /* Arguments accumulate up to the bound, then fail. */
    int r = 0;
    for (int i = 0; i < 10 && r == 0; i++)
        r = xz_llm_feed(&l, S("{\"choices\":[{\"delta\":{\"tool_calls\":[{"
                              "\"index\":2,\"function\":{\"arguments\":"
                              "\"0123456789\"}}]}}]}"));
    CHECK_EQ_INT(r, -EMSGSIZE);
    CHECK(l.calls[2].args_len <= 64);
    /* An error object: its message is kept. */
    CHECK_EQ_INT(xz_llm_feed(&l, S("{\"error\":{\"message\":\"model "
                                   "\\\"x\\\" not found\",\"type\":"
                                   "\"api_error\"}}")),
                 -EPROTO);
    CHECK(strcmp(l.error, "model \"x\" not found") == 0);
    /* Fine: null content, no choices, empty choices, no delta. */
    CHECK_EQ_INT(
        xz_llm_feed(&l, S("{\"choices\":[{\"delta\":{\"content\":null}}]}")),
        0);
    CHECK_EQ_INT(l.text_len, 0);
    CHECK_EQ_INT(xz_llm_feed(&l, S("{\"usage\":{}}")), 0);
    CHECK_EQ_INT(xz_llm_feed(&l, S("{\"choices\":[]}")), 0);
    CHECK_EQ_INT(xz_llm_feed(&l, S("{\"choices\":[{\"finish_reason\":"
                                   "\"length\"}]}")),
                 0);
    CHECK(strcmp(l.finish, "length") == 0);
    CHECK_EQ_INT(xz_llm_feed(&l, S("[DONE]")), 1);
    CHECK_EQ_INT(xz_llm_feed(&l, S("{}")), WISP_ESTATE);
    xz_llm_free(&l);
}

/* ---------------------------------------------------------- <think> */

typedef struct think_row {
    const char *name, *in, *out;
} think_row;

static const think_row think_rows[] = {
    {"a block is removed", "a<think>b</think>c", "ac"},
    {"two blocks", "<think>x</think>1<think>y</think>2", "12"},
    {"an unfinished block is dropped", "a<think>never closed", "a"},
    {"an unfinished open tag is text", "a<thin", "a<thin"},
    {"a near-tag is text", "a<thinking>b", "a<thinking>b"},
    {"a '<' before the tag", "<<think>x</think>y", "<y"},
    {"a close tag outside a block is text", "x</think>y", "x</think>y"},
    {"an open tag inside a block is content", "<think>a<think>b</think>c",
     "c"},
    {"a near close tag inside stays inside", "<think>a</thinx</think>b", "b"},
    {"UTF-8 passes", "你<think>想</think>好", "你好"},
    {"no tags", "plain text", "plain text"},
};

static void test_think(void)
{
    for (size_t k = 0; k < sizeof think_rows / sizeof think_rows[0]; k++) {
        const think_row *w = &think_rows[k];
        size_t n = strlen(w->in);
        /* Whole, cut in two anywhere, and one byte at a time. */
        for (size_t cut = 0; cut <= n + 1; cut++) {
            xz_think_t t;
            char out[256];
            size_t o = 0;
            xz_think_init(&t);
            if (cut <= n) {
                o += xz_think_feed(&t, w->in, cut, out + o);
                o += xz_think_feed(&t, w->in + cut, n - cut, out + o);
            } else {
                for (size_t i = 0; i < n; i++)
                    o += xz_think_feed(&t, w->in + i, 1, out + o);
            }
            o += xz_think_end(&t, out + o);
            CHECK_MSG(o == strlen(w->out) && memcmp(out, w->out, o) == 0,
                      "%s (cut %zu): \"%.*s\"", w->name, cut, (int)o, out);
        }
    }
}

/* -------------------------------------------------------- sentences */

typedef struct split_row {
    const char *name;
    const char *in;
    size_t min_chars, max_bytes;
    const char *want[8];
    int nwant;
} split_row;

static const split_row split_rows[] = {
    {"English sentences", "Hello there. How are you? Fine!", 4, 0,
     {"Hello there.", "How are you?", "Fine!"}, 3},
    {"a number is not cut", "Pi is 3.14 and e is 2.72. Done.", 4, 0,
     {"Pi is 3.14 and e is 2.72.", "Done."}, 2},
    {"a dot inside a word is not a cut", "Go to example.com now. Ok", 4, 0,
     {"Go to example.com now.", "Ok"}, 2},
    {"Chinese marks cut at once", "你好！我是小智。今天天气很好？", 2, 0,
     {"你好！", "我是小智。", "今天天气很好？"}, 3},
    {"Chinese semicolon and ellipsis", "第一句；第二句……第三句", 2, 0,
     {"第一句；", "第二句……", "第三句"}, 3},
    {"closing quotes stay with the mark", "他说：“好。”然后走了。", 2, 0,
     {"他说：“好。”", "然后走了。"}, 2},
    {"English quote after the mark", "He said \"stop.\" Then left.", 4, 0,
     {"He said \"stop.\"", "Then left."}, 2},
    {"short sentences run on", "Hi. Yes. This is long enough. Ok.", 10, 0,
     {"Hi. Yes. This is long enough.", "Ok."}, 2},
    {"the minimum counts characters, not bytes", "你好。再见。", 4, 0,
     {"你好。再见。"}, 1},
    {"a line break cuts", "line one\nline two", 4, 0,
     {"line one", "line two"}, 2},
    {"mixed marks run together", "Really?! Yes.", 4, 0,
     {"Really?!", "Yes."}, 2},
    {"spaces are trimmed, empty is dropped", "  One.   \n\n  Two.  ", 2, 0,
     {"One.", "Two."}, 2},
    {"a long text is cut at a comma", "aaaa，bbbbbbbbbbbbbbbbbbbbbbbbbbb", 1,
     16, {"aaaa，", "bbbbbbbbbbbbbbbb", "bbbbbbbbbbb"}, 3},
    {"a long text is cut at a space", "aaaa bbbbbbbbbbbbbbbb cc", 1, 16,
     {"aaaa", "bbbbbbbbbbbbbbbb", "cc"}, 3},
    {"a forced cut keeps characters whole", "一二三四五六七八九十", 1, 16,
     {"一二三四五", "六七八九十"}, 2},
    {"a trailing dot waits for the flush", "The end.", 4, 0, {"The end."}, 1},
};

typedef struct sents {
    char s[8][64];
    int n;
} sents;

static void collect(const char *s, size_t len, void *arg)
{
    sents *g = arg;
    CHECK(len > 0);
    if (g->n < 8)
        snprintf(g->s[g->n], 64, "%.*s", (int)len, s);
    g->n++;
}

static void test_split(void)
{
    for (size_t k = 0; k < sizeof split_rows / sizeof split_rows[0]; k++) {
        const split_row *w = &split_rows[k];
        size_t n = strlen(w->in);
        for (size_t cut = 0; cut <= n + 1; cut++) {
            sents g = {0};
            xz_splitter_t sp;
            xz_splitter_init(&sp, w->min_chars, w->max_bytes, collect, &g);
            if (cut <= n) {
                CHECK_EQ_INT(xz_splitter_feed(&sp, w->in, cut), 0);
                CHECK_EQ_INT(xz_splitter_feed(&sp, w->in + cut, n - cut), 0);
            } else {
                for (size_t i = 0; i < n; i++)
                    CHECK_EQ_INT(xz_splitter_feed(&sp, w->in + i, 1), 0);
            }
            xz_splitter_flush(&sp);
            CHECK_MSG(g.n == w->nwant, "%s (cut %zu): %d sentences", w->name,
                      cut, g.n);
            for (int i = 0; i < g.n && i < w->nwant; i++)
                CHECK_MSG(strcmp(g.s[i], w->want[i]) == 0,
                          "%s (cut %zu): %d: \"%s\"", w->name, cut, i,
                          g.s[i]);
            /* Reusable after the flush. */
            CHECK_EQ_INT(xz_splitter_feed(&sp, "Again.", 6), 0);
            xz_splitter_flush(&sp);
            CHECK_EQ_INT(g.n, w->nwant + 1);
            xz_splitter_free(&sp);
        }
    }
    /* The first sentence goes out before the answer ends. */
    sents g = {0};
    xz_splitter_t sp;
    xz_splitter_init(&sp, 4, 0, collect, &g);
    xz_splitter_feed(&sp, "你好，我是小智。很高", strlen("你好，我是小智。很高"));
    CHECK_EQ_INT(g.n, 1);
    CHECK(strcmp(g.s[0], "你好，我是小智。") == 0);
    xz_splitter_flush(&sp);
    CHECK_EQ_INT(g.n, 2);
    CHECK(strcmp(g.s[1], "很高") == 0);
    xz_splitter_free(&sp);
}

int main(void)
{
    test_ollama_stream();
    test_tool_streams();
    test_llm_bad();
    test_think();
    test_split();
    return t_done("xz_llm_stream");
}
