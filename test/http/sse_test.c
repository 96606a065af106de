/* The event-stream reader (src/http/sse_read.c) against the WHATWG HTML
 * standard, "Interpreting an event stream" (§9.2.6): one row per rule,
 * each fed whole, cut in two at every point, and one byte at a time,
 * from a copy that ends just before an unreadable page, so a read past
 * a piece faults. Then the memory bound, the callback's stop, the
 * reset for a new stream, and the constructor's errors. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <wisp/sse.h>

#include "test.h"

#define S(lit) lit, sizeof(lit) - 1

typedef struct ev {
    const char *type, *id, *data;
    size_t data_len; /* 0: strlen(data) */
} ev;

typedef struct row {
    const char *name;
    const char *in;
    size_t len;
    ev want[4];
    int nwant;
    int end;          /* wisp_sse_reader_end's answer */
    const char *last; /* last event ID afterwards */
    int64_t retry;
} row;

static const row rows[] = {
    {"one data line dispatches on a blank line", S("data: hello\n\n"),
     {{"message", "", "hello", 0}}, 1, 0, "", -1},
    {"no space after the colon", S("data:hello\n\n"),
     {{"message", "", "hello", 0}}, 1, 0, "", -1},
    {"only one leading space is removed", S("data:  two\n\n"),
     {{"message", "", " two", 0}}, 1, 0, "", -1},
    {"data lines are joined with LF", S("data: a\ndata: b\n\n"),
     {{"message", "", "a\nb", 0}}, 1, 0, "", -1},
    {"CRLF line ends", S("data: a\r\ndata: b\r\n\r\n"),
     {{"message", "", "a\nb", 0}}, 1, 0, "", -1},
    {"CR line ends", S("data: a\rdata: b\r\r"),
     {{"message", "", "a\nb", 0}}, 1, 0, "", -1},
    {"CR, LF and CRLF mixed", S("data: a\r\n\rdata: b\n\r\n"),
     {{"message", "", "a", 0}, {"message", "", "b", 0}}, 2, 0, "", -1},
    {"LF CR is two line ends", S("data: a\n\rdata: b\n\n"),
     {{"message", "", "a", 0}, {"message", "", "b", 0}}, 2, 0, "", -1},
    {"a comment line is ignored", S(": hi\ndata: x\n:\n\n"),
     {{"message", "", "x", 0}}, 1, 0, "", -1},
    {"the event field sets the type", S("event: add\ndata: 1\n\n"),
     {{"add", "", "1", 0}}, 1, 0, "", -1},
    {"the type is reset after a dispatch",
     S("event: add\ndata: 1\n\ndata: 2\n\n"),
     {{"add", "", "1", 0}, {"message", "", "2", 0}}, 2, 0, "", -1},
    {"an event without data is not dispatched and loses its type",
     S("event: a\n\ndata: x\n\n"), {{"message", "", "x", 0}}, 1, 0, "", -1},
    {"an empty event field means message", S("event:\ndata: x\n\n"),
     {{"message", "", "x", 0}}, 1, 0, "", -1},
    {"a field with no colon has an empty value", S("data\n\n"),
     {{"message", "", "", 0}}, 1, 0, "", -1},
    {"two empty data lines give one LF", S("data\ndata\n\n"),
     {{"message", "", "\n", 0}}, 1, 0, "", -1},
    {"an empty data value", S("data:\n\n"), {{"message", "", "", 0}}, 1, 0,
     "", -1},
    {"a colon in the value stays", S("data: a:b\n\n"),
     {{"message", "", "a:b", 0}}, 1, 0, "", -1},
    {"field names are case-sensitive", S("DATA: x\n\nData: y\n\n"), {{0}}, 0,
     0, "", -1},
    {"a space before the colon makes another field", S("data : x\n\n"),
     {{0}}, 0, 0, "", -1},
    {"unknown fields are ignored", S("foo: bar\ndata: x\nbar\n\n"),
     {{"message", "", "x", 0}}, 1, 0, "", -1},
    {"the id persists across events", S("id: 1\ndata: a\n\ndata: b\n\n"),
     {{"message", "1", "a", 0}, {"message", "1", "b", 0}}, 2, 0, "1", -1},
    {"an empty id clears it", S("id: 1\ndata: a\n\nid\ndata: b\n\n"),
     {{"message", "1", "a", 0}, {"message", "", "b", 0}}, 2, 0, "", -1},
    {"an id containing NUL is ignored",
     S("id: 1\ndata: a\n\nid: 2\0003\ndata: b\n\n"),
     {{"message", "1", "a", 0}, {"message", "1", "b", 0}}, 2, 0, "1", -1},
    {"an id alone sets the last event ID without an event", S("id: 7\n\n"),
     {{0}}, 0, 0, "7", -1},
    {"an id line without its blank line is pending at the end",
     S("id: 7\n"), {{0}}, 0, 1, "", -1},
    {"retry with digits sets the reconnection time",
     S("retry: 1500\ndata: x\n\n"), {{"message", "", "x", 0}}, 1, 0, "", 1500},
    {"retry with a non-digit is ignored", S("retry: 15x\nretry: -1\n"), {{0}},
     0, 0, "", -1},
    {"retry with two spaces is ignored", S("retry:  10\n"), {{0}}, 0, 0, "",
     -1},
    {"an empty retry is ignored", S("retry\nretry:\n"), {{0}}, 0, 0, "", -1},
    {"retry applies without a blank line", S("retry: 0\n"), {{0}}, 0, 0, "",
     0},
    {"a huge retry is clamped", S("retry: 99999999999999999999999\n"),
     {{0}}, 0, 0, "", INT64_MAX},
    {"a leading BOM is dropped", S("\xEF\xBB\xBF" "data: x\n\n"),
     {{"message", "", "x", 0}}, 1, 0, "", -1},
    {"a second BOM is part of the field name",
     S("\xEF\xBB\xBF\xEF\xBB\xBF" "data: x\n\n"), {{0}}, 0, 0, "", -1},
    {"a BOM after the first line is kept",
     S("data: a\n\n\xEF\xBB\xBF" "data: b\n\n"),
     {{"message", "", "a", 0}}, 1, 0, "", -1},
    {"a BOM on its own first line", S("\xEF\xBB\xBF\ndata: x\n\n"),
     {{"message", "", "x", 0}}, 1, 0, "", -1},
    {"an event not finished by a blank line is not dispatched",
     S("data: x\n"), {{0}}, 0, 1, "", -1},
    {"a last line without its end is discarded", S("data: x\n\ndata: y"),
     {{"message", "", "x", 0}}, 1, 1, "", -1},
    {"a CR at the end finishes the line", S("data: x\r\r"),
     {{"message", "", "x", 0}}, 1, 0, "", -1},
    {"blank lines alone dispatch nothing", S("\n\r\n\r:\n\n"), {{0}}, 0, 0,
     "", -1},
    {"NUL in data is kept", S("data: a\000b\n\n"),
     {{"message", "", "a\000b", 3}}, 1, 0, "", -1},
    {"an invalid byte becomes U+FFFD", S("data: \xFF!\n\n"),
     {{"message", "", "\xEF\xBF\xBD!", 0}}, 1, 0, "", -1},
    {"a truncated sequence is one U+FFFD", S("data: \xE2\x82\n\n"),
     {{"message", "", "\xEF\xBF\xBD", 0}}, 1, 0, "", -1},
    {"a valid sequence is kept", S("data: \xE2\x82\xAC \xF0\x9F\x98\x80\n\n"),
     {{"message", "", "\xE2\x82\xAC \xF0\x9F\x98\x80", 0}}, 1, 0, "", -1},
    {"an overlong NUL is two U+FFFD", S("data: \xC0\x80\n\n"),
     {{"message", "", "\xEF\xBF\xBD\xEF\xBF\xBD", 0}}, 1, 0, "", -1},
    {"a surrogate is three U+FFFD", S("data: \xED\xA0\x80\n\n"),
     {{"message", "", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD", 0}}, 1, 0, "",
     -1},
    {"a sequence cut by a line end", S("data: \xF0\x9F\x98\ndata: x\n\n"),
     {{"message", "", "\xEF\xBF\xBD\nx", 0}}, 1, 0, "", -1},
    {"invalid UTF-8 in the type", S("event: a\x80\ndata: x\n\n"),
     {{"a\xEF\xBF\xBD", "", "x", 0}}, 1, 0, "", -1},
    {"an OpenAI-style stream", S("data: {\"a\":1}\n\ndata: [DONE]\n\n"),
     {{"message", "", "{\"a\":1}", 0}, {"message", "", "[DONE]", 0}}, 2, 0,
     "", -1},
};

typedef struct got {
    ev evs[8];
    char store[8][256];
    char types[8][32];
    char ids[8][32];
    int n;
    int stop_at; /* return -1234 on this event (1-based), 0: never */
} got;

static int on_event(const wisp_sse_event_t *e, void *arg)
{
    got *g = arg;
    if (g->n < 8) {
        CHECK(e->data.len < 256 && e->type.len < 32 && e->id.len < 32);
        CHECK(e->data.ptr[e->data.len] == 0);
        memcpy(g->store[g->n], e->data.ptr, e->data.len);
        memcpy(g->types[g->n], e->type.ptr, e->type.len);
        g->types[g->n][e->type.len] = 0;
        memcpy(g->ids[g->n], e->id.ptr, e->id.len);
        g->ids[g->n][e->id.len] = 0;
        g->evs[g->n].data = g->store[g->n];
        g->evs[g->n].data_len = e->data.len;
        g->evs[g->n].type = g->types[g->n];
        g->evs[g->n].id = g->ids[g->n];
    }
    g->n++;
    if (g->stop_at && g->n == g->stop_at)
        return -1234;
    return 0;
}

/* Feed `len` bytes in pieces that end at each offset in cuts (then at
 * len), each piece from its own guarded copy. */
static int feed_cut(wisp_sse_reader_t *r, const char *in, size_t len,
                    const size_t *cuts, size_t ncut)
{
    size_t at = 0;
    for (size_t c = 0; c <= ncut; c++) {
        size_t end = c < ncut ? cuts[c] : len;
        t_guard g = t_guard_copy(in + at, end - at);
        int e = wisp_sse_reader_feed(r, g.data, end - at);
        t_guard_free(&g);
        if (e)
            return e;
        at = end;
    }
    return 0;
}

static void check_row(const row *w, const size_t *cuts, size_t ncut,
                      const char *how)
{
    got g = {0};
    wisp_sse_reader_t *r = wisp_sse_reader_create(0, on_event, &g);
    CHECK(r != NULL);
    int e = feed_cut(r, w->in, w->len, cuts, ncut);
    CHECK_MSG(e == 0, "%s (%s): feed %d", w->name, how, e);
    CHECK_MSG(g.n == w->nwant, "%s (%s): %d events, want %d", w->name, how,
              g.n, w->nwant);
    for (int i = 0; i < g.n && i < w->nwant; i++) {
        const ev *x = &w->want[i];
        size_t dl = x->data_len ? x->data_len : strlen(x->data);
        CHECK_MSG(g.evs[i].data_len == dl &&
                      memcmp(g.evs[i].data, x->data, dl) == 0,
                  "%s (%s): event %d data \"%.*s\"", w->name, how, i,
                  (int)g.evs[i].data_len, g.evs[i].data);
        CHECK_MSG(strcmp(g.evs[i].type, x->type) == 0,
                  "%s (%s): event %d type \"%s\"", w->name, how, i,
                  g.evs[i].type);
        CHECK_MSG(strcmp(g.evs[i].id, x->id) == 0,
                  "%s (%s): event %d id \"%s\"", w->name, how, i, g.evs[i].id);
    }
    wisp_str_t last = wisp_sse_reader_last_id(r);
    CHECK_MSG(last.len == strlen(w->last) &&
                  memcmp(last.ptr, w->last, last.len) == 0,
              "%s (%s): last id \"%.*s\"", w->name, how, (int)last.len,
              last.ptr);
    CHECK_MSG(wisp_sse_reader_retry(r) == w->retry, "%s (%s): retry %lld",
              w->name, how, (long long)wisp_sse_reader_retry(r));
    int end = wisp_sse_reader_end(r);
    CHECK_MSG(end == w->end, "%s (%s): end %d", w->name, how, end);
    wisp_sse_reader_destroy(r);
}

static void test_table(void)
{
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        const row *w = &rows[k];
        check_row(w, NULL, 0, "whole");
        for (size_t c = 0; c <= w->len; c++)
            check_row(w, &c, 1, "cut in two");
        size_t every[256];
        CHECK(w->len <= 256);
        for (size_t c = 0; c < w->len; c++)
            every[c] = c;
        check_row(w, every, w->len, "byte by byte");
    }
}

/* The bound: a line or an event past max_bytes fails the stream with
 * -EMSGSIZE, after the events before it; the error is sticky until
 * end, which clears it. */
static void test_limit(void)
{
    char big[200];
    memset(big, 'x', sizeof big);
    memcpy(big, "data: ", 6);
    big[sizeof big - 2] = '\n';
    big[sizeof big - 1] = '\n';
    for (size_t split = 1; split <= sizeof big; split++) {
        got g = {0};
        wisp_sse_reader_t *r = wisp_sse_reader_create(64, on_event, &g);
        CHECK(wisp_sse_reader_feed(r, S("data: ok\n\n")) == 0);
        CHECK_EQ_INT(g.n, 1);
        int e = 0;
        for (size_t at = 0; at < sizeof big && !e; at += split) {
            size_t n = sizeof big - at < split ? sizeof big - at : split;
            e = wisp_sse_reader_feed(r, big + at, n);
        }
        CHECK_EQ_INT(e, -EMSGSIZE);
        CHECK_EQ_INT(g.n, 1);
        CHECK_EQ_INT(wisp_sse_reader_feed(r, S("data: y\n\n")), -EMSGSIZE);
        CHECK_EQ_INT(g.n, 1);
        CHECK_EQ_INT(wisp_sse_reader_end(r), -EMSGSIZE);
        /* A new stream is read again. */
        CHECK_EQ_INT(wisp_sse_reader_feed(r, S("data: z\n\n")), 0);
        CHECK_EQ_INT(g.n, 2);
        CHECK_EQ_INT(wisp_sse_reader_end(r), 0);
        wisp_sse_reader_destroy(r);
    }
    /* Many short data lines: the event, not the line, crosses the bound. */
    got g = {0};
    wisp_sse_reader_t *r = wisp_sse_reader_create(64, on_event, &g);
    int e = 0;
    for (int i = 0; i < 40 && !e; i++)
        e = wisp_sse_reader_feed(r, S("data: abc\n"));
    CHECK_EQ_INT(e, -EMSGSIZE);
    CHECK_EQ_INT(g.n, 0);
    wisp_sse_reader_destroy(r);
    /* Exactly at the bound is fine: a 20-byte line ("data: " and 14
     * bytes) is counted with its 15 stored bytes: 35. */
    r = wisp_sse_reader_create(35, on_event, &g);
    CHECK_EQ_INT(wisp_sse_reader_feed(r, S("data: 0123456789abcd\n\n")), 0);
    CHECK_EQ_INT(g.n, 1);
    wisp_sse_reader_destroy(r);
    r = wisp_sse_reader_create(34, on_event, &g);
    CHECK_EQ_INT(wisp_sse_reader_feed(r, S("data: 0123456789abcd\n\n")),
                 -EMSGSIZE);
    CHECK_EQ_INT(g.n, 1);
    wisp_sse_reader_destroy(r);
}

/* A negative return from the callback stops the stream at once. */
static void test_stop(void)
{
    got g = {0};
    g.stop_at = 1;
    wisp_sse_reader_t *r = wisp_sse_reader_create(0, on_event, &g);
    CHECK_EQ_INT(wisp_sse_reader_feed(r, S("data: a\n\ndata: b\n\n")), -1234);
    CHECK_EQ_INT(g.n, 1);
    CHECK_EQ_INT(wisp_sse_reader_feed(r, S("data: c\n\n")), -1234);
    CHECK_EQ_INT(g.n, 1);
    CHECK_EQ_INT(wisp_sse_reader_end(r), -1234);
    wisp_sse_reader_destroy(r);
}

/* After end, a new stream: its BOM is dropped again, the id carries
 * over, a CR that ended the old stream does not eat the new LF. */
static void test_reconnect(void)
{
    got g = {0};
    wisp_sse_reader_t *r = wisp_sse_reader_create(0, on_event, &g);
    CHECK_EQ_INT(wisp_sse_reader_feed(r, S("id: 42\nretry: 7\ndata: a\n\r")),
                 0);
    CHECK_EQ_INT(g.n, 1);
    CHECK_EQ_INT(wisp_sse_reader_end(r), 0);
    CHECK_EQ_INT(wisp_sse_reader_feed(r, S("\n\xEF\xBB\xBF" "data: b\n\n")),
                 0);
    CHECK_EQ_INT(g.n, 1); /* "\n" is a blank line; then the BOM is data */
    CHECK_EQ_INT(wisp_sse_reader_end(r), 0);
    CHECK_EQ_INT(wisp_sse_reader_feed(r, S("\xEF\xBB\xBF" "data: c\n\n")), 0);
    CHECK_EQ_INT(g.n, 2);
    CHECK(strcmp(g.ids[1], "42") == 0);
    CHECK_EQ_INT(wisp_sse_reader_retry(r), 7);
    /* An unfinished event is reported by end and not dispatched. */
    CHECK_EQ_INT(wisp_sse_reader_feed(r, S("event: x\n")), 0);
    CHECK_EQ_INT(wisp_sse_reader_end(r), 1);
    CHECK_EQ_INT(wisp_sse_reader_feed(r, S("data: d\n\n")), 0);
    CHECK_EQ_INT(g.n, 3);
    CHECK(strcmp(g.types[2], "message") == 0);
    CHECK_EQ_INT(wisp_sse_reader_feed(r, NULL, 0), 0);
    wisp_sse_reader_destroy(r);
    wisp_sse_reader_destroy(NULL);
}

static void test_create(void)
{
    errno = 0;
    CHECK(wisp_sse_reader_create(0, NULL, NULL) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
}

int main(void)
{
    test_table();
    test_limit();
    test_stop();
    test_reconnect();
    test_create();
    return t_done("http_sse");
}
