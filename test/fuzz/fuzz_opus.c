/* libFuzzer target for src/media/ (the Ogg reader, the Ogg Opus demuxer,
 * the Opus packet parser and the repacketizer). Built by
 * test/fuzz/meson.build; docs/fuzzing.md has the commands.
 *
 * Input: byte 0 flags (bit 0: rewrite the CRC of each page found in
 * sequence, so the fuzzer reaches past the checksum; bit 1: the Ogg
 * reader in resync mode; bit 2: small limits; bit 3: also write packets
 * and read them back), bytes 1-2 two cut points,
 * then the data. Besides crashes and sanitizer reports it checks,
 * trapping when one fails:
 *   - the demuxer gives the same packets, durations, granules and result
 *     fed whole, in three slices at the cut points, and one byte at a
 *     time; each packet it returns is a valid Opus packet whose duration
 *     is what it reported; the same holds for the plain Ogg reader in
 *     the chosen mode;
 *   - those packets through the streaming repacketizer (60 ms) come out
 *     as valid packets of the duration reported, as many samples in all;
 *   - (bit 3) packets whose lengths come from the data, written by the
 *     Ogg writer and read back in three slices, come back the same, with
 *     their granules, BOS and EOS;
 *   - the packet parser, run on the data as one packet, agrees with a
 *     slow reference written here from RFC 6716 §3.2 (validity, frame
 *     count, each frame's offset and length), and reads nothing outside
 *     the packet (an exact heap block);
 *   - a valid packet split into code-0 packets and joined again gives a
 *     valid code-3 packet with the same frames; two copies joined are
 *     refused exactly when they exceed 120 ms.
 * A crash found here becomes a row in test/media/opus_test.c or
 * ogg_test.c. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "wisp/opus.h"

/* ---- reference packet parser (RFC 6716 §3.2), deliberately plain */

typedef struct ref {
    int ok;
    int frames;
    size_t off[48], len[48];
    int samples;
} ref_t;

static int ref_len(const uint8_t *p, size_t n, size_t i, size_t *len,
                   size_t *used)
{
    if (i >= n)
        return 0;
    if (p[i] < 252) {
        *len = p[i];
        *used = 1;
        return 1;
    }
    if (i + 1 >= n)
        return 0;
    *len = p[i] + 4 * (size_t)p[i + 1];
    *used = 2;
    return 1;
}

static void reference(const uint8_t *p, size_t n, ref_t *r)
{
    memset(r, 0, sizeof *r);
    if (n == 0)
        return;
    int cfg = p[0] >> 3;
    int fs;
    if (cfg < 12)
        fs = cfg % 4 == 0 ? 480 : cfg % 4 == 1 ? 960 : cfg % 4 == 2 ? 1920 : 2880;
    else if (cfg < 16)
        fs = cfg % 2 ? 960 : 480;
    else
        fs = 120 << (cfg % 4);
    int code = p[0] & 3;
    size_t i = 1, used, l;
    if (code == 0) {
        r->frames = 1;
        r->off[0] = 1;
        r->len[0] = n - 1;
    } else if (code == 1) {
        if ((n - 1) % 2)
            return;
        r->frames = 2;
        r->off[0] = 1;
        r->len[0] = r->len[1] = (n - 1) / 2;
        r->off[1] = 1 + r->len[0];
    } else if (code == 2) {
        if (!ref_len(p, n, 1, &l, &used) || 1 + used + l > n)
            return;
        r->frames = 2;
        r->off[0] = 1 + used;
        r->len[0] = l;
        r->off[1] = 1 + used + l;
        r->len[1] = n - r->off[1];
    } else {
        if (n < 2)
            return;
        int m = p[1] & 63, vbr = p[1] >> 7, pad = (p[1] >> 6) & 1;
        if (m < 1 || m * fs > 5760)
            return;
        i = 2;
        size_t padding = 0;
        while (pad) {
            if (i >= n)
                return;
            int b = p[i++];
            padding += b == 255 ? 254 : (size_t)b;
            pad = b == 255;
        }
        if (i + padding > n)
            return;
        size_t end = n - padding;
        r->frames = m;
        if (!vbr) {
            if ((end - i) % (size_t)m)
                return;
            for (int k = 0; k < m; k++) {
                r->len[k] = (end - i) / (size_t)m;
                r->off[k] = i + (size_t)k * r->len[k];
            }
        } else {
            for (int k = 0; k < m - 1; k++) {
                if (i >= end || !ref_len(p, end, i, &r->len[k], &used))
                    return;
                i += used;
            }
            size_t o = i;
            for (int k = 0; k < m - 1; k++) {
                r->off[k] = o;
                o += r->len[k];
                if (o > end)
                    return;
            }
            r->off[m - 1] = o;
            r->len[m - 1] = end - o;
        }
    }
    for (int k = 0; k < r->frames; k++)
        if (r->len[k] > 1275)
            return;
    r->ok = 1;
    r->samples = r->frames * fs;
}

static void check_packet(const uint8_t *data, size_t size)
{
    uint8_t *p = malloc(size ? size : 1);
    REQUIRE(p);
    if (size)
        memcpy(p, data, size);
    wisp_opus_packet_t pk;
    int rc = wisp_opus_packet_parse(size ? p : NULL, size, &pk);
    ref_t r;
    reference(data, size, &r);
    REQUIRE((rc > 0) == (r.ok == 1));
    if (rc > 0) {
        REQUIRE(rc == r.samples && pk.frames == r.frames);
        for (int k = 0; k < r.frames; k++)
            REQUIRE(pk.frame[k] == p + r.off[k] && pk.frame_len[k] == r.len[k]);

        /* split, then join the pieces: the same frames, one packet. */
        size_t cap = size + 48, lens[48];
        uint8_t *s = malloc(cap), *j = malloc(size + 2 + 2 * 48);
        REQUIRE(s && j);
        int n = wisp_opus_split(p, size, s, cap, lens);
        REQUIRE(n == pk.frames);
        const uint8_t *pieces[48];
        const uint8_t *q = s;
        for (int k = 0; k < n; k++) {
            REQUIRE(wisp_opus_packet_parse(q, lens[k], NULL) ==
                    (int)pk.toc.frame_samples);
            pieces[k] = q;
            q += lens[k];
        }
        ssize_t jl = wisp_opus_join(pieces, lens, (size_t)n, j,
                                    size + 2 + 2 * 48);
        REQUIRE(jl > 0);
        wisp_opus_packet_t jp;
        REQUIRE(wisp_opus_packet_parse(j, (size_t)jl, &jp) == rc);
        REQUIRE(jp.frames == pk.frames && jp.padding == 0);
        for (int k = 0; k < n; k++)
            REQUIRE(jp.frame_len[k] == pk.frame_len[k] &&
                    memcmp(jp.frame[k], pk.frame[k], pk.frame_len[k]) == 0);
        /* Two copies: refused exactly when over 120 ms. */
        const uint8_t *two[2] = {p, p};
        size_t tl[2] = {size, size};
        uint8_t *j2 = malloc(2 * size + 2 + 2 * 96);
        REQUIRE(j2);
        ssize_t r2 = wisp_opus_join(two, tl, 2, j2, 2 * size + 2 + 2 * 96);
        REQUIRE(2 * rc > 5760 ? r2 == WISP_EOPUS_DURATION : r2 > 0);
        free(j2);
        free(s);
        free(j);
    }
    free(p);
}

/* ---- the streaming repacketizer: what goes in comes out, as valid
 * packets within the target (or a single packet longer than it) */

typedef struct rp_sum {
    uint64_t in, out;
    uint32_t target;
} rp_sum_t;

static int rp_out(void *arg, const uint8_t *pkt, size_t len, uint32_t samples)
{
    rp_sum_t *s = arg;
    REQUIRE(wisp_opus_packet_parse(pkt, len, NULL) == (int)samples);
    s->out += samples;
    return 0;
}

/* ---- demuxer and reader under three ways of feeding */

typedef struct trace {
    uint64_t h;   /* hash of everything returned */
    size_t n;
    int rc, fin;
} trace_t;

static uint64_t mix(uint64_t h, uint64_t v)
{
    return (h ^ v) * 0x100000001b3ull;
}

static void demux(const uint8_t *d, size_t n, const size_t *cuts,
                  size_t ncuts, const wisp_ogg_limits_t *lim, trace_t *t)
{
    memset(t, 0, sizeof *t);
    t->h = 0xcbf29ce484222325ull;
    wisp_opus_demux_t *dm = wisp_opus_demux_create(lim);
    REQUIRE(dm);
    rp_sum_t sum = {0, 0, 0};
    wisp_opus_repack_t *rp = wisp_opus_repack_create(2880, rp_out, &sum);
    REQUIRE(rp);
    size_t start = 0;
    for (size_t c = 0; c <= ncuts && t->rc == 0; c++) {
        size_t end = c < ncuts ? cuts[c] : n;
        uint8_t *slice = malloc(end - start + 1);
        REQUIRE(slice);
        memcpy(slice, d + start, end - start);
        size_t off = 0;
        for (;;) {
            wisp_opus_demux_packet_t p;
            size_t used;
            int rc = wisp_opus_demux_read(dm, slice + off, end - start - off,
                                          &used, &p);
            REQUIRE(used <= end - start - off);
            off += used;
            if (rc < 0) {
                t->rc = rc;
                break;
            }
            if (rc == 0) {
                REQUIRE(off == end - start);
                break;
            }
            REQUIRE(wisp_opus_packet_parse(p.data, p.len, NULL) ==
                    (int)p.samples);
            REQUIRE(wisp_opus_repack_push(rp, p.data, p.len) == 0);
            sum.in += p.samples;
            t->n++;
            t->h = mix(t->h, p.len);
            t->h = mix(t->h, p.samples);
            t->h = mix(t->h, (uint64_t)p.granule);
            for (size_t i = 0; i < p.len; i++)
                t->h = mix(t->h, p.data[i]);
        }
        free(slice);
        start = end;
    }
    t->fin = wisp_opus_demux_finish(dm);
    wisp_opus_demux_destroy(dm);
    REQUIRE(wisp_opus_repack_flush(rp) == 0);
    REQUIRE(sum.in == sum.out);
    wisp_opus_repack_destroy(rp);
}

static void ogg(const uint8_t *d, size_t n, const size_t *cuts, size_t ncuts,
                const wisp_ogg_limits_t *lim, trace_t *t)
{
    memset(t, 0, sizeof *t);
    t->h = 0xcbf29ce484222325ull;
    wisp_ogg_reader_t *r = wisp_ogg_reader_create(lim);
    REQUIRE(r);
    size_t start = 0;
    for (size_t c = 0; c <= ncuts && t->rc == 0; c++) {
        size_t end = c < ncuts ? cuts[c] : n;
        uint8_t *slice = malloc(end - start + 1);
        REQUIRE(slice);
        memcpy(slice, d + start, end - start);
        size_t off = 0;
        for (;;) {
            wisp_ogg_packet_t p;
            size_t used;
            int rc = wisp_ogg_reader_read(r, slice + off, end - start - off,
                                          &used, &p);
            off += used;
            if (rc < 0) {
                t->rc = rc;
                break;
            }
            if (rc == 0)
                break;
            REQUIRE(p.len <= (lim->max_packet_bytes ? lim->max_packet_bytes
                                                    : (size_t)1 << 20));
            t->n++;
            t->h = mix(t->h, p.len);
            t->h = mix(t->h, (uint64_t)p.granule);
            t->h = mix(t->h, p.serial);
            t->h = mix(t->h, (uint64_t)p.bos << 1 | p.eos);
            for (size_t i = 0; i < p.len; i++)
                t->h = mix(t->h, p.data[i]);
        }
        free(slice);
        start = end;
    }
    t->fin = wisp_ogg_reader_finish(r);
    wisp_ogg_reader_destroy(r);
}

static bool same(const trace_t *a, const trace_t *b)
{
    return a->h == b->h && a->n == b->n && a->rc == b->rc && a->fin == b->fin;
}

/* ---- writer then reader: the packets come back */

typedef struct wbuf {
    uint8_t *p;
    size_t len, cap;
} wbuf_t;

static int wput(void *arg, const uint8_t *page, size_t len)
{
    wbuf_t *b = arg;
    if (b->len + len > b->cap) {
        b->cap = (b->len + len) * 2;
        b->p = realloc(b->p, b->cap);
        REQUIRE(b->p);
    }
    memcpy(b->p + b->len, page, len);
    b->len += len;
    return 0;
}

static void roundtrip(const uint8_t *d, size_t n, size_t page_bytes)
{
    enum { MAXP = 8 };
    size_t lens[MAXP], np = 0;
    for (size_t i = 0; i + 1 < n && np < MAXP; i += 2)
        lens[np++] = ((size_t)d[i] * 300 + d[i + 1]) % 70001;
    if (np == 0)
        return;
    static uint8_t src[70000];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(i * 7 + (i >> 8));
    wbuf_t b = {0};
    wisp_ogg_writer_t *w = wisp_ogg_writer_create(99, page_bytes, wput, &b);
    REQUIRE(w);
    for (size_t i = 0; i < np; i++)
        REQUIRE(wisp_ogg_writer_packet(w, src + (lens[i] ? i % 7 : 0),
                                       lens[i] > 69990 ? 69990 : lens[i],
                                       (int64_t)i,
                                       i + 1 == np ? WISP_OGG_WRITE_EOS
                                                   : (d[0] & 1 ? WISP_OGG_WRITE_FLUSH : 0)) == 0);
    wisp_ogg_writer_destroy(w);
    /* Read back, cut at two places from the input. */
    size_t cuts[2] = {b.len / 3, b.len / 3 + d[1] % (b.len - b.len / 3 + 1)};
    wisp_ogg_reader_t *r = wisp_ogg_reader_create(NULL);
    REQUIRE(r);
    size_t k = 0, start = 0;
    for (int c = 0; c < 3; c++) {
        size_t end = c < 2 ? cuts[c] : b.len, off = start;
        for (;;) {
            wisp_ogg_packet_t p;
            size_t used;
            int rc = wisp_ogg_reader_read(r, b.p + off, end - off, &used, &p);
            REQUIRE(rc >= 0);
            off += used;
            if (rc == 0)
                break;
            REQUIRE(k < np);
            size_t want = lens[k] > 69990 ? 69990 : lens[k];
            REQUIRE(p.len == want && p.serial == 99);
            REQUIRE(memcmp(p.data, src + (lens[k] ? k % 7 : 0), want) == 0);
            REQUIRE(p.granule == -1 || p.granule == (int64_t)k);
            REQUIRE(p.eos == (k + 1 == np) && p.bos == (k == 0));
            k++;
        }
        start = end;
    }
    REQUIRE(k == np);
    REQUIRE(wisp_ogg_reader_finish(r) == 0);
    wisp_ogg_reader_destroy(r);
    free(b.p);
}

/* Give each page found in sequence its right CRC. */
static void repair(uint8_t *d, size_t n)
{
    size_t pos = 0;
    while (pos + 27 <= n && memcmp(d + pos, "OggS", 4) == 0) {
        size_t nseg = d[pos + 26];
        if (pos + 27 + nseg > n)
            return;
        size_t size = 27 + nseg;
        for (size_t i = 0; i < nseg; i++)
            size += d[pos + 27 + i];
        if (pos + size > n)
            return;
        memset(d + pos + 22, 0, 4);
        uint32_t c = wisp_ogg_crc(0, d + pos, size);
        for (int i = 0; i < 4; i++)
            d[pos + 22 + i] = (uint8_t)(c >> (8 * i));
        pos += size;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    uint8_t flags = data[0];
    size_t n = size - 3;
    uint8_t *d = malloc(n + 1);
    REQUIRE(d);
    memcpy(d, data + 3, n);
    if (flags & 1)
        repair(d, n);
    size_t c1 = n ? data[1] % (n + 1) : 0, c2 = n ? data[2] * 16 % (n + 1) : 0;
    size_t cuts[2] = {c1 < c2 ? c1 : c2, c1 < c2 ? c2 : c1};
    wisp_ogg_limits_t lim = {0};
    lim.resync = flags & 2;
    if (flags & 4) {
        lim.max_page_bytes = 300 + (size_t)data[1] * 8;
        lim.max_packet_bytes = 1 + (size_t)data[2] * 4;
        lim.max_skip_bytes = 1 + data[2];
    }

    trace_t whole, three, bytes;
    demux(d, n, NULL, 0, &lim, &whole);
    demux(d, n, cuts, 2, &lim, &three);
    REQUIRE(same(&whole, &three));
    if (n <= 1024) {
        size_t *all = malloc((n + 1) * sizeof *all);
        REQUIRE(all);
        for (size_t i = 0; i < n; i++)
            all[i] = i + 1;
        demux(d, n, all, n ? n - 1 : 0, &lim, &bytes);
        REQUIRE(same(&whole, &bytes));
        free(all);
    }
    ogg(d, n, NULL, 0, &lim, &whole);
    ogg(d, n, cuts, 2, &lim, &three);
    REQUIRE(same(&whole, &three));

    check_packet(d, n);
    if (flags & 8)
        roundtrip(d, n, 1 + (size_t)data[2] * 64);
    free(d);
    return 0;
}
