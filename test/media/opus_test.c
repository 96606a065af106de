/* Tests for src/media/opus_packet.c, opus_head.c and opus_mux.c: the TOC
 * table (RFC 6716 §3.1), the framing rules R1–R7 (§3.2), the
 * repacketizer (§3.2.5), OpusHead/OpusTags (RFC 7845 §5), and the muxer
 * and demuxer (RFC 7845 §3–§4), with every error code. */
#include "test.h"
#include "wisp/opus.h"

/* ---- TOC */

static const struct toc_row {
    uint8_t config;
    uint8_t mode, bw;
    uint16_t samples;
} toc_rows[] = {
    {0, WISP_OPUS_SILK, WISP_OPUS_NB, 480},
    {1, WISP_OPUS_SILK, WISP_OPUS_NB, 960},
    {2, WISP_OPUS_SILK, WISP_OPUS_NB, 1920},
    {3, WISP_OPUS_SILK, WISP_OPUS_NB, 2880},
    {5, WISP_OPUS_SILK, WISP_OPUS_MB, 960},
    {9, WISP_OPUS_SILK, WISP_OPUS_WB, 960},
    {11, WISP_OPUS_SILK, WISP_OPUS_WB, 2880},
    {12, WISP_OPUS_HYBRID, WISP_OPUS_SWB, 480},
    {13, WISP_OPUS_HYBRID, WISP_OPUS_SWB, 960},
    {14, WISP_OPUS_HYBRID, WISP_OPUS_FB, 480},
    {15, WISP_OPUS_HYBRID, WISP_OPUS_FB, 960},
    {16, WISP_OPUS_CELT, WISP_OPUS_NB, 120},
    {19, WISP_OPUS_CELT, WISP_OPUS_NB, 960},
    {20, WISP_OPUS_CELT, WISP_OPUS_WB, 120},
    {22, WISP_OPUS_CELT, WISP_OPUS_WB, 480},
    {24, WISP_OPUS_CELT, WISP_OPUS_SWB, 120},
    {27, WISP_OPUS_CELT, WISP_OPUS_SWB, 960},
    {28, WISP_OPUS_CELT, WISP_OPUS_FB, 120},
    {29, WISP_OPUS_CELT, WISP_OPUS_FB, 240},
    {31, WISP_OPUS_CELT, WISP_OPUS_FB, 960},
};

static void test_toc(void)
{
    for (size_t i = 0; i < sizeof toc_rows / sizeof toc_rows[0]; i++) {
        const struct toc_row *r = &toc_rows[i];
        for (int s = 0; s < 2; s++) {
            for (int c = 0; c < 4; c++) {
                wisp_opus_toc_t t = wisp_opus_toc(
                    (uint8_t)(r->config << 3 | s << 2 | c));
                CHECK_EQ_INT(t.config, r->config);
                CHECK_EQ_INT(t.mode, r->mode);
                CHECK_EQ_INT(t.bandwidth, r->bw);
                CHECK_EQ_INT(t.frame_samples, r->samples);
                CHECK_EQ_INT(t.stereo, s);
                CHECK_EQ_INT(t.code, c);
            }
        }
    }
}

/* ---- packet framing */

#define MAXP 3000
static const struct pkt_row {
    const char *name; /* RFC 6716 §3.2 */
    uint8_t head[8];  /* first bytes */
    size_t nhead;
    size_t len;       /* total length; bytes after head are 0xAA */
    int want;         /* samples, or an error */
    int frames;
    int flen[3];      /* first frame lengths */
    size_t padding;
} pkt_rows[] = {
    {"R1: an empty packet is refused", {0}, 0, 0, WISP_EOPUS_PACKET, 0, {0}, 0},
    {"code 0: TOC alone is one empty frame", {0x08}, 1, 1, 960, 1, {0}, 0},
    {"R2: code 0 frame of 1275 bytes", {0x08}, 1, 1276, 960, 1, {1275}, 0},
    {"R2: code 0 frame of 1276 bytes is refused", {0x08}, 1, 1277,
     WISP_EOPUS_PACKET, 0, {0}, 0},
    {"code 1: two equal frames", {0x09}, 1, 5, 1920, 2, {2, 2}, 0},
    {"R3: code 1 with an odd payload is refused", {0x09}, 1, 4,
     WISP_EOPUS_PACKET, 0, {0}, 0},
    {"R3: code 1 frames of 1276 bytes are refused", {0x09}, 1, 2553,
     WISP_EOPUS_PACKET, 0, {0}, 0},
    {"code 1: TOC alone is two empty frames", {0x09}, 1, 1, 1920, 2, {0, 0}, 0},
    {"code 2: one-byte first length", {0x0a, 3}, 2, 7, 1920, 2, {3, 2}, 0},
    {"code 2: two-byte first length (252 + 4 * 1 = 256)", {0x0a, 252, 1}, 3,
     3 + 256 + 10, 1920, 2, {256, 10}, 0},
    {"R4: code 2 without a length byte is refused", {0x0a}, 1, 1,
     WISP_EOPUS_PACKET, 0, {0}, 0},
    {"R4: code 2 with half a two-byte length is refused", {0x0a, 252}, 2, 2,
     WISP_EOPUS_PACKET, 0, {0}, 0},
    {"R4: code 2 first length past the end is refused", {0x0a, 9}, 2, 10,
     WISP_EOPUS_PACKET, 0, {0}, 0},
    {"R4: code 2 first length exactly the rest", {0x0a, 8}, 2, 10, 1920, 2,
     {8, 0}, 0},
    {"R2: code 2 second frame over 1275 is refused", {0x0a, 0}, 2, 2 + 1276,
     WISP_EOPUS_PACKET, 0, {0}, 0},
    {"R5: code 3 without the count byte is refused", {0x0b}, 1, 1,
     WISP_EOPUS_PACKET, 0, {0}, 0},
    {"R5: code 3 with zero frames is refused", {0x0b, 0x00}, 2, 2,
     WISP_EOPUS_PACKET, 0, {0}, 0},
    {"R5: code 3 CBR, three 20 ms frames", {0x0b, 0x03}, 2, 8, 2880, 3,
     {2, 2, 2}, 0},
    {"R5: 2 x 60 ms = 120 ms is allowed", {0x1b, 0x02}, 2, 2, 5760, 2,
     {0, 0}, 0},
    {"R5: 3 x 60 ms = 180 ms is refused", {0x1b, 0x03}, 2, 2,
     WISP_EOPUS_PACKET, 0, {0}, 0},
    {"R5: 48 x 2.5 ms = 120 ms is allowed", {0x83, 48}, 2, 2, 5760, 48,
     {0, 0, 0}, 0},
    {"R5: 49 x 2.5 ms is refused", {0x83, 49}, 2, 2, WISP_EOPUS_PACKET, 0,
     {0}, 0},
    {"R6: CBR payload not a multiple of M is refused", {0x0b, 0x03}, 2, 9,
     WISP_EOPUS_PACKET, 0, {0}, 0},
    {"R6: CBR frames over 1275 are refused", {0x0b, 0x01}, 2, 2 + 1276,
     WISP_EOPUS_PACKET, 0, {0}, 0},
    {"code 3 padding: 2 bytes", {0x0b, 0x43, 2}, 3, 3 + 6 + 2, 2880, 3,
     {2, 2, 2}, 3},
    {"code 3 padding: 255 then 0 is 254 bytes", {0x0b, 0x41, 255, 0}, 4,
     4 + 254 + 5, 960, 1, {5}, 256},
    {"R6/R7: padding longer than the packet is refused", {0x0b, 0x41, 20}, 3,
     3 + 10, WISP_EOPUS_PACKET, 0, {0}, 0},
    {"code 3 padding length bytes running off the end are refused",
     {0x0b, 0x41, 255}, 3, 3, WISP_EOPUS_PACKET, 0, {0}, 0},
    {"R7: VBR lengths 1 and 2, last frame the rest", {0x0b, 0x83, 1, 2}, 4,
     4 + 6, 2880, 3, {1, 2, 3}, 0},
    {"R7: VBR lengths past the end are refused", {0x0b, 0x83, 5, 5}, 4, 4 + 9,
     WISP_EOPUS_PACKET, 0, {0}, 0},
    {"R7: VBR with a missing length byte is refused", {0x0b, 0x83, 1}, 3, 3,
     WISP_EOPUS_PACKET, 0, {0}, 0},
    {"R7: VBR last frame over 1275 is refused", {0x0b, 0x82, 0}, 3, 3 + 1276,
     WISP_EOPUS_PACKET, 0, {0}, 0},
    {"R7: VBR with padding", {0x0b, 0xc2, 1, 1}, 4, 4 + 1 + 4 + 1, 1920, 2,
     {1, 4}, 2},
};

static void test_packets(void)
{
    static uint8_t buf[MAXP];
    for (size_t i = 0; i < sizeof pkt_rows / sizeof pkt_rows[0]; i++) {
        const struct pkt_row *r = &pkt_rows[i];
        memset(buf, 0xAA, sizeof buf);
        memcpy(buf, r->head, r->nhead);
        t_guard g = t_guard_copy(buf, r->len);
        wisp_opus_packet_t p;
        int rc = wisp_opus_packet_parse((const uint8_t *)g.data, r->len, &p);
        CHECK_MSG(rc == r->want, "%s: got %d want %d", r->name, rc, r->want);
        CHECK_EQ_INT(wisp_opus_packet_parse((const uint8_t *)g.data, r->len,
                                            NULL),
                     r->want);
        if (rc > 0) {
            CHECK_MSG(p.frames == r->frames, "%s: frames %d", r->name,
                      p.frames);
            for (int k = 0; k < 3 && k < r->frames; k++)
                CHECK_MSG(p.frame_len[k] == r->flen[k], "%s: frame %d len %d",
                          r->name, k, p.frame_len[k]);
            CHECK_MSG(p.padding == r->padding, "%s: padding %zu", r->name,
                      p.padding);
            /* Frames lie inside the packet, in order, without overlap. */
            const uint8_t *end = (const uint8_t *)g.data + r->len;
            for (int k = 0; k < p.frames; k++) {
                CHECK(p.frame[k] >= (const uint8_t *)g.data + 1);
                CHECK(p.frame[k] + p.frame_len[k] <= end);
                if (k)
                    CHECK(p.frame[k] == p.frame[k - 1] + p.frame_len[k - 1]);
            }
        }
        t_guard_free(&g);
    }
    CHECK_EQ_INT(wisp_opus_packet_parse(NULL, 3, NULL), -EINVAL);
    CHECK_EQ_INT(wisp_opus_packet_parse(NULL, 0, NULL), WISP_EOPUS_PACKET);
}

/* ---- repacketizer */

static void mk(uint8_t *p, uint8_t toc, size_t len, uint8_t fill)
{
    p[0] = toc;
    memset(p + 1, fill, len - 1);
}

static void test_join_split(void)
{
    static uint8_t a[400], b[400], c[400], out[2000], back[2000];
    const uint8_t *pk[8];
    size_t ln[8], sl[WISP_OPUS_MAX_FRAMES];

    /* Three 20 ms packets of equal size: CBR code 3, 60 ms. */
    mk(a, 0x08, 11, 1);
    mk(b, 0x08, 11, 2);
    mk(c, 0x08, 11, 3);
    pk[0] = a, pk[1] = b, pk[2] = c;
    ln[0] = ln[1] = ln[2] = 11;
    ssize_t n = wisp_opus_join(pk, ln, 3, out, sizeof out);
    CHECK_EQ_INT(n, 2 + 30);
    CHECK_EQ_INT(out[0], 0x0b);
    CHECK_EQ_INT(out[1], 0x03);
    CHECK(out[2] == 1 && out[12] == 2 && out[22] == 3);
    CHECK_EQ_INT(wisp_opus_packet_parse(out, (size_t)n, NULL), 2880);
    int k = wisp_opus_split(out, (size_t)n, back, sizeof back, sl);
    CHECK_EQ_INT(k, 3);
    CHECK(sl[0] == 11 && sl[1] == 11 && sl[2] == 11);
    CHECK(memcmp(back, a, 11) == 0 && memcmp(back + 11, b, 11) == 0 &&
          memcmp(back + 22, c, 11) == 0);
    CHECK_EQ_INT(wisp_opus_join(pk, ln, 3, out, 31), -ENOBUFS);
    CHECK_EQ_INT(wisp_opus_join(pk, ln, 3, out, 32), 32);

    /* Stereo, different sizes (one over 251): VBR with a two-byte length. */
    mk(a, 0x0c, 301, 4);
    mk(b, 0x0c, 11, 5);
    mk(c, 0x0c, 1, 0); /* an empty frame (DTX) */
    ln[0] = 301, ln[1] = 11, ln[2] = 1;
    n = wisp_opus_join(pk, ln, 3, out, sizeof out);
    CHECK_EQ_INT(n, 2 + 2 + 1 + 300 + 10);
    CHECK_EQ_INT(out[0], 0x0f);
    CHECK_EQ_INT(out[1], 0x83);
    CHECK_EQ_INT(out[2] + 4 * out[3], 300);
    CHECK_EQ_INT(out[4], 10);
    wisp_opus_packet_t p;
    CHECK_EQ_INT(wisp_opus_packet_parse(out, (size_t)n, &p), 2880);
    CHECK(p.toc.stereo && p.vbr && p.frame_len[0] == 300 &&
          p.frame_len[1] == 10 && p.frame_len[2] == 0);
    k = wisp_opus_split(out, (size_t)n, back, sizeof back, sl);
    CHECK_EQ_INT(k, 3);
    CHECK(sl[0] == 301 && sl[1] == 11 && sl[2] == 1);
    CHECK(memcmp(back, a, 301) == 0 && memcmp(back + 301, b, 11) == 0 &&
          back[312] == 0x0c);
    CHECK_EQ_INT(wisp_opus_split(out, (size_t)n, back, 312, sl), -ENOBUFS);

    /* Inputs of codes 1, 2, 3 (with padding) are flattened. */
    uint8_t c1[] = {0x09, 7, 7}, c2[] = {0x0a, 1, 8, 9, 9},
            c3[] = {0x0b, 0x41, 1, 6, 0};
    pk[0] = c1, pk[1] = c2, pk[2] = c3;
    ln[0] = sizeof c1, ln[1] = sizeof c2, ln[2] = sizeof c3;
    n = wisp_opus_join(pk, ln, 3, out, sizeof out);
    CHECK_EQ_INT(wisp_opus_packet_parse(out, (size_t)n, &p), 5 * 960);
    CHECK(p.frames == 5 && p.vbr && p.padding == 0);
    CHECK(p.frame_len[0] == 1 && p.frame[0][0] == 7 && p.frame_len[2] == 1 &&
          p.frame[2][0] == 8 && p.frame_len[3] == 2 && p.frame_len[4] == 1 &&
          p.frame[4][0] == 6);

    /* Refusals. */
    uint8_t x[] = {0x08, 1}, y[] = {0x10, 1}, st[] = {0x0c, 1}, bad[] = {0x09, 1};
    pk[0] = x, pk[1] = y;
    ln[0] = ln[1] = 2;
    CHECK_EQ_INT(wisp_opus_join(pk, ln, 2, out, sizeof out), WISP_EOPUS_MISMATCH);
    pk[1] = st;
    CHECK_EQ_INT(wisp_opus_join(pk, ln, 2, out, sizeof out), WISP_EOPUS_MISMATCH);
    pk[1] = bad;
    CHECK_EQ_INT(wisp_opus_join(pk, ln, 2, out, sizeof out), WISP_EOPUS_PACKET);
    for (int i = 0; i < 7; i++)
        pk[i] = x, ln[i] = 2;
    CHECK_EQ_INT(wisp_opus_join(pk, ln, 6, out, sizeof out), 2 + 6);
    CHECK_EQ_INT(wisp_opus_join(pk, ln, 7, out, sizeof out), WISP_EOPUS_DURATION);
    CHECK_EQ_INT(wisp_opus_join(pk, ln, 0, out, sizeof out), -EINVAL);
    CHECK_EQ_INT(wisp_opus_join(NULL, ln, 1, out, sizeof out), -EINVAL);
    CHECK_EQ_INT(wisp_opus_split(bad, 2, out, sizeof out, sl), WISP_EOPUS_PACKET);
    CHECK_EQ_INT(wisp_opus_split(NULL, 2, out, sizeof out, sl), -EINVAL);
}

/* ---- streaming repacketizer */

typedef struct emitted {
    size_t n;
    uint8_t pkt[16][4000];
    size_t len[16];
    uint32_t samples[16];
    int fail; /* return this from the callback */
} emitted_t;

static int emit_cb(void *arg, const uint8_t *pkt, size_t len, uint32_t samples)
{
    emitted_t *e = arg;
    if (e->n < 16) {
        memcpy(e->pkt[e->n], pkt, len);
        e->len[e->n] = len;
        e->samples[e->n] = samples;
        e->n++;
    }
    return e->fail;
}

static void test_repack(void)
{
    static emitted_t e;
    memset(&e, 0, sizeof e);
    wisp_opus_repack_t *r = wisp_opus_repack_create(2880, emit_cb, &e);
    CHECK(r != NULL);
    uint8_t p[400];
    /* 20 ms packets: out as one 60 ms packet when the third arrives. */
    mk(p, 0x08, 11, 1);
    CHECK_EQ_INT(wisp_opus_repack_push(r, p, 11), 0);
    mk(p, 0x08, 11, 2);
    CHECK_EQ_INT(wisp_opus_repack_push(r, p, 11), 0);
    CHECK_EQ_INT(e.n, 0);
    mk(p, 0x08, 11, 3);
    CHECK_EQ_INT(wisp_opus_repack_push(r, p, 11), 0);
    CHECK_EQ_INT(e.n, 1);
    CHECK_EQ_INT(e.len[0], 32);
    CHECK(e.pkt[0][0] == 0x0b && e.pkt[0][1] == 3 && e.pkt[0][2] == 1 &&
          e.pkt[0][22] == 3);
    CHECK_EQ_INT(e.samples[0], 2880);
    /* A change of configuration sends what is held at once. */
    mk(p, 0x08, 5, 4);
    CHECK_EQ_INT(wisp_opus_repack_push(r, p, 5), 0);
    mk(p, 0x0c, 7, 5); /* stereo now */
    CHECK_EQ_INT(wisp_opus_repack_push(r, p, 7), 0);
    CHECK_EQ_INT(e.n, 2);
    CHECK(e.len[1] == 5 && e.pkt[1][0] == 0x08 && e.samples[1] == 960);
    /* 20 + 40 ms make the target: out at once (VBR, frames 6, 1, 1). */
    uint8_t c1[] = {0x0d, 9, 9}, c1b[] = {0x0d, 8, 8};
    CHECK_EQ_INT(wisp_opus_repack_push(r, c1, 3), 0);
    CHECK_EQ_INT(e.n, 3);
    CHECK(e.pkt[2][0] == 0x0f && e.pkt[2][1] == 0x83 && e.pkt[2][2] == 6 &&
          e.pkt[2][3] == 1 && e.len[2] == 4 + 8 && e.samples[2] == 2880);
    /* 40 ms held, another 40 ms does not fit: the first goes alone. */
    CHECK_EQ_INT(wisp_opus_repack_push(r, c1b, 3), 0);
    CHECK_EQ_INT(e.n, 3);
    CHECK_EQ_INT(wisp_opus_repack_push(r, c1, 3), 0);
    CHECK_EQ_INT(e.n, 4);
    CHECK(e.pkt[3][0] == 0x0f && e.pkt[3][1] == 2 && e.pkt[3][2] == 8 &&
          e.len[3] == 4 && e.samples[3] == 1920);
    CHECK_EQ_INT(wisp_opus_repack_flush(r), 0);
    CHECK_EQ_INT(e.n, 5);
    CHECK(e.pkt[4][2] == 9 && e.samples[4] == 1920);
    CHECK_EQ_INT(wisp_opus_repack_flush(r), 0); /* nothing held */
    CHECK_EQ_INT(e.n, 5);
    /* A bad packet is refused and changes nothing. */
    mk(p, 0x08, 11, 6);
    CHECK_EQ_INT(wisp_opus_repack_push(r, p, 11), 0);
    uint8_t bad[] = {0x09, 1, 2, 3};
    CHECK_EQ_INT(wisp_opus_repack_push(r, bad, 4), WISP_EOPUS_PACKET);
    CHECK_EQ_INT(wisp_opus_repack_push(r, NULL, 4), -EINVAL);
    /* The callback's error comes back. */
    e.fail = -EPIPE;
    CHECK_EQ_INT(wisp_opus_repack_flush(r), -EPIPE);
    CHECK_EQ_INT(e.n, 6);
    CHECK(e.len[5] == 11 && e.pkt[5][0] == 0x08 && e.pkt[5][1] == 6);
    wisp_opus_repack_destroy(r);
    wisp_opus_repack_destroy(NULL);
    errno = 0;
    CHECK(wisp_opus_repack_create(0, emit_cb, &e) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    CHECK(wisp_opus_repack_create(5761, emit_cb, &e) == NULL);
    CHECK(wisp_opus_repack_create(2880, NULL, &e) == NULL);
}

/* ---- headers */

static void test_head(void)
{
    /* What opusenc writes for mono 16 kHz input: pre-skip 312. */
    static const uint8_t mono[19] = {'O', 'p', 'u', 's', 'H', 'e', 'a', 'd',
                                     1, 1, 0x38, 0x01, 0x80, 0x3e, 0, 0,
                                     0, 0, 0};
    wisp_opus_head_t h;
    CHECK_EQ_INT(wisp_opus_head_parse(mono, 19, &h), 0);
    CHECK(h.version == 1 && h.channels == 1 && h.pre_skip == 312 &&
          h.input_sample_rate == 16000 && h.output_gain == 0 &&
          h.mapping_family == 0 && h.stream_count == 1 &&
          h.coupled_count == 0);
    uint8_t out[300];
    CHECK_EQ_INT(wisp_opus_head_write(&h, out, sizeof out), 19);
    CHECK(memcmp(out, mono, 19) == 0);
    CHECK_EQ_INT(wisp_opus_head_write(&h, out, 18), -ENOBUFS);

    uint8_t t[64];
    memcpy(t, mono, 19);
    t[8] = 15; /* minor versions are compatible */
    CHECK_EQ_INT(wisp_opus_head_parse(t, 19, &h), 0);
    t[8] = 16;
    CHECK_EQ_INT(wisp_opus_head_parse(t, 19, &h), WISP_EOPUS_HEAD);
    memcpy(t, mono, 19);
    t[16] = 0x00, t[17] = 0xff; /* gain -1 dB in Q7.8 */
    CHECK_EQ_INT(wisp_opus_head_parse(t, 19, &h), 0);
    CHECK_EQ_INT(h.output_gain, -256);
    CHECK_EQ_INT(wisp_opus_head_parse(mono, 18, &h), WISP_EOPUS_HEAD);
    memcpy(t, mono, 19);
    t[0] = 'o';
    CHECK_EQ_INT(wisp_opus_head_parse(t, 19, &h), WISP_EOPUS_HEAD);
    memcpy(t, mono, 19);
    t[9] = 0; /* no channel */
    CHECK_EQ_INT(wisp_opus_head_parse(t, 19, &h), WISP_EOPUS_HEAD);
    t[9] = 3; /* family 0 is mono or stereo */
    CHECK_EQ_INT(wisp_opus_head_parse(t, 19, &h), WISP_EOPUS_HEAD);

    /* Family 1, 5.1: 4 streams, 2 coupled, Vorbis order. */
    uint8_t s51[27];
    memcpy(s51, mono, 19);
    s51[9] = 6, s51[18] = 1, s51[19] = 4, s51[20] = 2;
    const uint8_t map[6] = {0, 4, 1, 2, 3, 5};
    memcpy(s51 + 21, map, 6);
    CHECK_EQ_INT(wisp_opus_head_parse(s51, 27, &h), 0);
    CHECK(h.channels == 6 && h.stream_count == 4 && h.coupled_count == 2 &&
          memcmp(h.mapping, map, 6) == 0);
    CHECK_EQ_INT(wisp_opus_head_write(&h, out, sizeof out), 27);
    CHECK(memcmp(out, s51, 27) == 0);
    CHECK_EQ_INT(wisp_opus_head_parse(s51, 26, &h), WISP_EOPUS_HEAD);
    s51[26] = 6; /* >= streams + coupled */
    CHECK_EQ_INT(wisp_opus_head_parse(s51, 27, &h), WISP_EOPUS_HEAD);
    s51[26] = 255; /* silence */
    CHECK_EQ_INT(wisp_opus_head_parse(s51, 27, &h), 0);
    s51[20] = 5; /* coupled > streams */
    CHECK_EQ_INT(wisp_opus_head_parse(s51, 27, &h), WISP_EOPUS_HEAD);
    s51[20] = 2, s51[19] = 0; /* no stream */
    CHECK_EQ_INT(wisp_opus_head_parse(s51, 27, &h), WISP_EOPUS_HEAD);
    s51[19] = 4, s51[9] = 9; /* family 1 is 1..8 channels */
    CHECK_EQ_INT(wisp_opus_head_parse(s51, 30, &h), WISP_EOPUS_HEAD);
    CHECK_EQ_INT(wisp_opus_head_parse(NULL, 19, &h), -EINVAL);
    h.mapping_family = 0, h.channels = 3;
    CHECK_EQ_INT(wisp_opus_head_write(&h, out, sizeof out), WISP_EOPUS_HEAD);

    /* Tags. */
    const char *cm[] = {"TITLE=hello", "ARTIST=wisp"};
    ssize_t n = wisp_opus_tags_write("vend", cm, 2, out, sizeof out);
    CHECK_EQ_INT(n, 8 + 4 + 4 + 4 + 4 + 11 + 4 + 11);
    wisp_opus_tags_t tg;
    CHECK_EQ_INT(wisp_opus_tags_parse(out, (size_t)n, &tg), 0);
    CHECK_STRN(tg.vendor.ptr, tg.vendor.len, "vend");
    CHECK_EQ_INT(tg.count, 2);
    wisp_str_t s;
    CHECK_EQ_INT(wisp_opus_tags_get(&tg, 1, &s), 0);
    CHECK_STRN(s.ptr, s.len, "ARTIST=wisp");
    CHECK_EQ_INT(wisp_opus_tags_get(&tg, 0, &s), 0);
    CHECK_STRN(s.ptr, s.len, "TITLE=hello");
    CHECK_EQ_INT(wisp_opus_tags_get(&tg, 2, &s), -ENOENT);
    CHECK_EQ_INT(wisp_opus_tags_parse(out, (size_t)n - 1, &tg), WISP_EOPUS_TAGS);
    out[8] = 200; /* vendor length past the end */
    CHECK_EQ_INT(wisp_opus_tags_parse(out, (size_t)n, &tg), WISP_EOPUS_TAGS);
    n = wisp_opus_tags_write(NULL, NULL, 0, out, sizeof out);
    CHECK_EQ_INT(n, 20);
    CHECK_EQ_INT(wisp_opus_tags_parse(out, (size_t)n, &tg), 0);
    CHECK_STRN(tg.vendor.ptr, tg.vendor.len, "wisp");
    out[16] = 0xff, out[17] = 0xff, out[18] = 0xff, out[19] = 0x7f;
    CHECK_EQ_INT(wisp_opus_tags_parse(out, (size_t)n, &tg), WISP_EOPUS_TAGS);
    const char *nocolon[] = {"TITLE"};
    CHECK_EQ_INT(wisp_opus_tags_write(NULL, nocolon, 1, out, sizeof out),
                 -EINVAL);
    CHECK_EQ_INT(wisp_opus_tags_write(NULL, cm, 2, out, 20), -ENOBUFS);
}

/* ---- muxer and demuxer */

typedef struct sink {
    uint8_t buf[1 << 18];
    size_t len;
    size_t starts[256];
    size_t npages;
} sink_t;

static int sink_cb(void *arg, const uint8_t *page, size_t len)
{
    sink_t *s = arg;
    if (s->len + len > sizeof s->buf || s->npages == 256)
        return -ENOSPC;
    s->starts[s->npages++] = s->len;
    memcpy(s->buf + s->len, page, len);
    s->len += len;
    return 0;
}

static int64_t page_granule(const sink_t *s, size_t i)
{
    const uint8_t *p = s->buf + s->starts[i] + 6;
    uint64_t g = 0;
    for (int k = 7; k >= 0; k--)
        g = g << 8 | p[k];
    return (int64_t)g;
}

typedef struct dgot {
    size_t n;
    size_t len[128];
    uint32_t samples[128];
    int64_t granule[128];
    uint8_t first[128];
    int rc, finish;
    int64_t last_granule;
    uint16_t pre_skip;
} dgot_t;

static void demux_all(const uint8_t *in, size_t len, size_t slice, dgot_t *g)
{
    memset(g, 0, sizeof *g);
    wisp_opus_demux_t *d = wisp_opus_demux_create(NULL);
    size_t off = 0;
    for (;;) {
        size_t n = len - off;
        if (slice && slice < n)
            n = slice;
        size_t pos = 0;
        for (;;) {
            wisp_opus_demux_packet_t p;
            size_t used;
            int rc = wisp_opus_demux_read(d, in + off + pos, n - pos, &used, &p);
            pos += used;
            if (rc < 0) {
                g->rc = rc;
                goto out;
            }
            if (rc == 0)
                break;
            if (g->n < 128) {
                g->len[g->n] = p.len;
                g->samples[g->n] = p.samples;
                g->granule[g->n] = p.granule;
                g->first[g->n] = p.len > 1 ? p.data[1] : 0;
                g->n++;
            }
        }
        off += n;
        if (off == len)
            break;
    }
out:
    g->finish = wisp_opus_demux_finish(d);
    g->last_granule = wisp_opus_demux_granule(d);
    const wisp_opus_head_t *h = wisp_opus_demux_head(d);
    g->pre_skip = h ? h->pre_skip : 0xffff;
    wisp_opus_demux_destroy(d);
}

static const wisp_opus_head_t mono_head = {
    .version = 1, .channels = 1, .pre_skip = 312,
    .input_sample_rate = 16000, .mapping_family = 0,
};

static void test_mux_demux(void)
{
    static sink_t s;
    memset(&s, 0, sizeof s);
    const char *cm[] = {"ENCODER=test"};
    wisp_opus_mux_opts_t o = {.head = &mono_head, .serial = 42,
                              .comments = cm, .ncomments = 1, .page_ms = 60};
    wisp_opus_mux_t *m = wisp_opus_mux_create(&o, sink_cb, &s);
    CHECK(m != NULL);
    CHECK_EQ_INT(s.npages, 2); /* OpusHead page, OpusTags page */
    uint8_t pk[200];
    for (int i = 0; i < 30; i++) {
        mk(pk, 0x08, 20 + (size_t)i, (uint8_t)i);
        CHECK_EQ_INT(wisp_opus_mux_packet(m, pk, 20 + (size_t)i), 0);
    }
    /* 60 ms pages, each finished when the next packet comes: 9 out. */
    CHECK_EQ_INT(s.npages, 2 + 9);
    uint8_t bad[] = {0x09, 1, 2, 3};
    CHECK_EQ_INT(wisp_opus_mux_packet(m, bad, sizeof bad), WISP_EOPUS_PACKET);
    CHECK_EQ_INT(wisp_opus_mux_samples(m), 30 * 960);
    CHECK_EQ_INT(wisp_opus_mux_finish(m, 2881), -EINVAL); /* > last page */
    CHECK_EQ_INT(wisp_opus_mux_finish(m, 500), 0);
    CHECK_EQ_INT(wisp_opus_mux_finish(m, 0), WISP_ESTATE);
    CHECK_EQ_INT(wisp_opus_mux_packet(m, pk, 20), WISP_ESTATE);
    wisp_opus_mux_destroy(m);
    CHECK_EQ_INT(s.npages, 12);
    CHECK_EQ_INT(page_granule(&s, 0), 0);
    CHECK_EQ_INT(page_granule(&s, 1), 0);
    CHECK_EQ_INT(page_granule(&s, 2), 3 * 960);
    CHECK_EQ_INT(page_granule(&s, 10), 27 * 960);
    CHECK_EQ_INT(page_granule(&s, 11), 30 * 960 - 500);
    CHECK_EQ_INT(s.buf[s.starts[11] + 5], WISP_OGG_EOS);

    dgot_t whole, g;
    demux_all(s.buf, s.len, 0, &whole);
    CHECK_EQ_INT(whole.rc, 0);
    CHECK_EQ_INT(whole.finish, 0);
    CHECK_EQ_INT(whole.n, 30);
    CHECK_EQ_INT(whole.pre_skip, 312);
    CHECK_EQ_INT(whole.last_granule, 30 * 960 - 500);
    for (size_t i = 0; i < whole.n; i++) {
        CHECK_EQ_INT(whole.len[i], 20 + i);
        CHECK_EQ_INT(whole.samples[i], 960);
        CHECK_EQ_INT(whole.first[i], i);
        int64_t want = i == 29       ? 30 * 960 - 500
                       : i % 3 == 2  ? (int64_t)(i + 1) * 960
                                     : -1;
        CHECK_EQ_INT(whole.granule[i], want);
    }
    for (size_t sl = 1; sl < 200; sl += 13) {
        demux_all(s.buf, s.len, sl, &g);
        CHECK_MSG(g.n == whole.n && g.rc == 0 && g.finish == 0 &&
                      memcmp(g.len, whole.len, sizeof g.len) == 0 &&
                      memcmp(g.granule, whole.granule, sizeof g.granule) == 0,
                  "demux slice %zu", sl);
    }
    /* Cut before the end: truncated inside a page, clean between pages. */
    demux_all(s.buf, s.starts[11] + 30, 7, &g);
    CHECK_EQ_INT(g.finish, WISP_EOGG_TRUNCATED);
    demux_all(s.buf, s.starts[11], 7, &g);
    CHECK_EQ_INT(g.finish, 0);
    CHECK_EQ_INT(g.n, 27);
    demux_all(s.buf, s.starts[1], 7, &g);
    CHECK_EQ_INT(g.finish, WISP_EOPUS_TAGS);
    demux_all(s.buf, 0, 7, &g);
    CHECK_EQ_INT(g.finish, WISP_EOPUS_HEAD);

    /* Streaming: flush hands out what is held at once. */
    memset(&s, 0, sizeof s);
    o.page_ms = 0;
    m = wisp_opus_mux_create(&o, sink_cb, &s);
    mk(pk, 0x08, 30, 1);
    CHECK_EQ_INT(wisp_opus_mux_packet(m, pk, 30), 0);
    CHECK_EQ_INT(s.npages, 2);
    CHECK_EQ_INT(wisp_opus_mux_flush(m), 0);
    CHECK_EQ_INT(s.npages, 3);
    CHECK_EQ_INT(wisp_opus_mux_flush(m), 0);
    CHECK_EQ_INT(s.npages, 3);
    CHECK_EQ_INT(wisp_opus_mux_finish(m, 1), -EINVAL); /* nothing held */
    CHECK_EQ_INT(wisp_opus_mux_finish(m, 0), 0); /* empty EOS page */
    wisp_opus_mux_destroy(m);
    CHECK_EQ_INT(s.npages, 4);
    demux_all(s.buf, s.len, 1, &g);
    CHECK(g.rc == 0 && g.finish == 0 && g.n == 1 && g.last_granule == 960);

    errno = 0;
    CHECK(wisp_opus_mux_create(NULL, sink_cb, &s) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    wisp_opus_head_t bh = mono_head;
    bh.channels = 0;
    o.head = &bh;
    CHECK(wisp_opus_mux_create(&o, sink_cb, &s) == NULL);
    o.head = &mono_head;
    const char *nc[] = {"nocolon"};
    o.comments = nc;
    CHECK(wisp_opus_mux_create(&o, sink_cb, &s) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
}

/* Streams built page by page with the Ogg writer, to break the rules. */
static sink_t raw;
static wisp_ogg_writer_t *rw;

static void raw_begin(void)
{
    memset(&raw, 0, sizeof raw);
    rw = wisp_ogg_writer_create(7, 0, sink_cb, &raw);
}

static void raw_pkt(const void *d, size_t n, int64_t gr, unsigned fl)
{
    CHECK_EQ_INT(wisp_ogg_writer_packet(rw, d, n, gr, fl), 0);
}

static void raw_end(void)
{
    wisp_ogg_writer_destroy(rw);
}

static void test_demux_errors(void)
{
    uint8_t head[19], tags[32], audio[] = {0x08, 1, 2, 3};
    wisp_opus_head_write(&mono_head, head, sizeof head);
    size_t tl = (size_t)wisp_opus_tags_write(NULL, NULL, 0, tags, sizeof tags);
    dgot_t g;

    /* The first packet is not OpusHead. */
    raw_begin();
    raw_pkt(tags, tl, 0, WISP_OGG_WRITE_FLUSH);
    raw_end();
    demux_all(raw.buf, raw.len, 0, &g);
    CHECK_EQ_INT(g.rc, WISP_EOPUS_HEAD);
    CHECK_EQ_INT(g.finish, WISP_EOPUS_HEAD);

    /* OpusHead sharing its page with OpusTags. */
    raw_begin();
    raw_pkt(head, 19, 0, 0);
    raw_pkt(tags, tl, 0, WISP_OGG_WRITE_FLUSH);
    raw_end();
    demux_all(raw.buf, raw.len, 0, &g);
    CHECK_EQ_INT(g.rc, WISP_EOPUS_HEAD);

    /* A bad OpusHead (major version 1). */
    uint8_t h2[19];
    memcpy(h2, head, 19);
    h2[8] = 0x10;
    raw_begin();
    raw_pkt(h2, 19, 0, WISP_OGG_WRITE_FLUSH);
    raw_end();
    demux_all(raw.buf, raw.len, 0, &g);
    CHECK_EQ_INT(g.rc, WISP_EOPUS_HEAD);

    /* OpusTags not ending its page (audio right after it). */
    raw_begin();
    raw_pkt(head, 19, 0, WISP_OGG_WRITE_FLUSH);
    raw_pkt(tags, tl, 0, 0);
    raw_pkt(audio, sizeof audio, 960, WISP_OGG_WRITE_EOS);
    raw_end();
    demux_all(raw.buf, raw.len, 0, &g);
    CHECK_EQ_INT(g.rc, WISP_EOPUS_TAGS);

    /* A malformed OpusTags. */
    raw_begin();
    raw_pkt(head, 19, 0, WISP_OGG_WRITE_FLUSH);
    raw_pkt(tags, 10, 0, WISP_OGG_WRITE_FLUSH);
    raw_end();
    demux_all(raw.buf, raw.len, 0, &g);
    CHECK_EQ_INT(g.rc, WISP_EOPUS_TAGS);

    /* A malformed audio packet (code 1, odd payload). */
    uint8_t odd[] = {0x09, 1, 2, 3};
    raw_begin();
    raw_pkt(head, 19, 0, WISP_OGG_WRITE_FLUSH);
    raw_pkt(tags, tl, 0, WISP_OGG_WRITE_FLUSH);
    raw_pkt(audio, sizeof audio, 960, 0);
    raw_pkt(odd, sizeof odd, 1920, WISP_OGG_WRITE_EOS);
    raw_end();
    demux_all(raw.buf, raw.len, 0, &g);
    CHECK_EQ_INT(g.n, 1);
    CHECK_EQ_INT(g.rc, WISP_EOPUS_PACKET);
    CHECK_EQ_INT(g.finish, WISP_EOPUS_PACKET);

    /* The first granule position puts the start before zero (two 20 ms
     * packets ending at 1000): refused, unless on the last page. */
    raw_begin();
    raw_pkt(head, 19, 0, WISP_OGG_WRITE_FLUSH);
    raw_pkt(tags, tl, 0, WISP_OGG_WRITE_FLUSH);
    raw_pkt(audio, sizeof audio, 960, 0);
    raw_pkt(audio, sizeof audio, 1000, WISP_OGG_WRITE_FLUSH);
    raw_pkt(audio, sizeof audio, 1960, WISP_OGG_WRITE_EOS);
    raw_end();
    demux_all(raw.buf, raw.len, 0, &g);
    CHECK_EQ_INT(g.rc, WISP_EOPUS_GRANULE);
    raw_begin();
    raw_pkt(head, 19, 0, WISP_OGG_WRITE_FLUSH);
    raw_pkt(tags, tl, 0, WISP_OGG_WRITE_FLUSH);
    raw_pkt(audio, sizeof audio, 960, 0);
    raw_pkt(audio, sizeof audio, 1000, WISP_OGG_WRITE_EOS);
    raw_end();
    demux_all(raw.buf, raw.len, 0, &g);
    CHECK_EQ_INT(g.rc, 0);
    CHECK_EQ_INT(g.n, 2);
    CHECK_EQ_INT(g.last_granule, 1000);

    /* Ogg errors come through: a flipped byte. */
    raw_begin();
    raw_pkt(head, 19, 0, WISP_OGG_WRITE_FLUSH);
    raw_end();
    raw.buf[30] ^= 4;
    demux_all(raw.buf, raw.len, 0, &g);
    CHECK_EQ_INT(g.rc, WISP_EOGG_CRC);

    /* Bytes after the end of stream are ignored. */
    raw_begin();
    raw_pkt(head, 19, 0, WISP_OGG_WRITE_FLUSH);
    raw_pkt(tags, tl, 0, WISP_OGG_WRITE_FLUSH);
    raw_pkt(audio, sizeof audio, 960, WISP_OGG_WRITE_EOS);
    raw_end();
    memcpy(raw.buf + raw.len, "trailing junk", 13);
    demux_all(raw.buf, raw.len + 13, 5, &g);
    CHECK(g.rc == 0 && g.finish == 0 && g.n == 1);

    wisp_opus_demux_t *d = wisp_opus_demux_create(NULL);
    CHECK(wisp_opus_demux_head(d) == NULL && wisp_opus_demux_tags(d) == NULL);
    wisp_opus_demux_packet_t p;
    size_t used;
    CHECK_EQ_INT(wisp_opus_demux_read(d, NULL, 1, &used, &p), -EINVAL);
    CHECK_EQ_INT(wisp_opus_demux_read(d, NULL, 0, &used, &p), 0);
    wisp_opus_demux_destroy(d);
    wisp_opus_demux_destroy(NULL);
    wisp_opus_mux_destroy(NULL);
    CHECK(strcmp(wisp_strerror(WISP_EOPUS_PACKET), "malformed Opus packet") == 0);
}

int main(void)
{
    test_toc();
    test_packets();
    test_join_split();
    test_repack();
    test_head();
    test_mux_demux();
    test_demux_errors();
    return t_done("media_opus");
}
