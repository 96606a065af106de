/* Tests for src/media/ogg_write.c and ogg_read.c (RFC 3533): the page
 * CRC, the writer's page layout, the reader under every split of its
 * input, and every limit and malformed input with its error code. */
#include "test.h"
#include "wisp/ogg.h"

/* ---- helpers */

typedef struct out {
    uint8_t buf[1 << 20];
    size_t len;
    size_t starts[512]; /* offset of each page */
    size_t npages;
    int fail_at;        /* page number whose callback fails, or -1 */
} out_t;

static int collect(void *arg, const uint8_t *page, size_t len)
{
    out_t *o = arg;
    if (o->len + len > sizeof o->buf || o->npages == 512)
        return -ENOSPC;
    o->starts[o->npages++] = o->len;
    memcpy(o->buf + o->len, page, len);
    o->len += len;
    if (o->fail_at >= 0 && (size_t)o->fail_at + 1 == o->npages)
        return -EPIPE;
    return 0;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static int64_t get64(const uint8_t *p)
{
    return (int64_t)((uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32);
}

/* Bit by bit, straight from RFC 3533 §6 / libogg's description: no
 * table, so it checks the table-driven code independently. */
static uint32_t crc_ref(const uint8_t *p, size_t n)
{
    uint32_t c = 0;
    for (size_t i = 0; i < n; i++) {
        c ^= (uint32_t)p[i] << 24;
        for (int b = 0; b < 8; b++)
            c = (c & 0x80000000u) ? (c << 1) ^ 0x04C11DB7u : c << 1;
    }
    return c;
}

/* Write one page by hand (for malformed streams): `nseg` lacing values,
 * body taken from `body` (their sum). Returns its length. */
static size_t mkpage(uint8_t *dst, uint8_t flags, int64_t granule,
                     uint32_t serial, uint32_t seq, const uint8_t *lacing,
                     size_t nseg, const uint8_t *body)
{
    size_t blen = 0;
    for (size_t i = 0; i < nseg; i++)
        blen += lacing[i];
    memcpy(dst, "OggS", 4);
    dst[4] = 0;
    dst[5] = flags;
    for (int i = 0; i < 8; i++)
        dst[6 + i] = (uint8_t)((uint64_t)granule >> (8 * i));
    for (int i = 0; i < 4; i++) {
        dst[14 + i] = (uint8_t)(serial >> (8 * i));
        dst[18 + i] = (uint8_t)(seq >> (8 * i));
        dst[22 + i] = 0;
    }
    dst[26] = (uint8_t)nseg;
    memcpy(dst + 27, lacing, nseg);
    memcpy(dst + 27 + nseg, body, blen);
    uint32_t c = crc_ref(dst, 27 + nseg + blen);
    for (int i = 0; i < 4; i++)
        dst[22 + i] = (uint8_t)(c >> (8 * i));
    return 27 + nseg + blen;
}

typedef struct got {
    size_t n;
    uint8_t *data[64];
    size_t len[64];
    int64_t granule[64];
    uint32_t serial[64];
    bool bos[64], eos[64];
    int rc;     /* last error, 0 if none */
    int finish; /* wisp_ogg_reader_finish at the end */
} got_t;

static void got_free(got_t *g)
{
    for (size_t i = 0; i < g->n; i++)
        free(g->data[i]);
    memset(g, 0, sizeof *g);
}

static void gfree(t_guard *g)
{
    if (g->map)
        t_guard_free(g);
    else
        free(g->data);
}

/* Feed `in` in slices given by `cut(i)` (sizes), collecting packets. */
static void read_all(const uint8_t *in, size_t len, size_t slice,
                     const wisp_ogg_limits_t *lim, got_t *g)
{
    memset(g, 0, sizeof *g);
    wisp_ogg_reader_t *r = wisp_ogg_reader_create(lim);
    CHECK(r != NULL);
    size_t off = 0;
    unsigned seed = (unsigned)slice;
    for (;;) {
        size_t n = len - off;
        if (slice == 0) {
            /* pseudo-random slices 0..40 */
            seed = seed * 1103515245u + 12345u;
            size_t s = (seed >> 16) % 41;
            if (s < n)
                n = s;
        } else if (slice < n) {
            n = slice;
        }
        /* Each slice is its own copy ending at a PROT_NONE page (small
         * slices: an exact heap block, which ASan builds guard), so
         * reading past it faults. */
        t_guard gd = {0};
        if (n >= 256) {
            gd = t_guard_copy(in + off, n);
        } else {
            gd.data = malloc(n ? n : 1);
            memcpy(gd.data, in + off, n);
        }
        size_t pos = 0;
        for (;;) {
            wisp_ogg_packet_t p;
            size_t used;
            int rc = wisp_ogg_reader_read(r, gd.data + pos, n - pos, &used,
                                          &p);
            pos += used;
            if (rc < 0) {
                g->rc = rc;
                gfree(&gd);
                goto out;
            }
            if (rc == 0)
                break;
            if (g->n < 64) {
                g->data[g->n] = malloc(p.len + 1);
                memcpy(g->data[g->n], p.data, p.len);
                g->len[g->n] = p.len;
                g->granule[g->n] = p.granule;
                g->serial[g->n] = p.serial;
                g->bos[g->n] = p.bos;
                g->eos[g->n] = p.eos;
                g->n++;
            }
        }
        CHECK_EQ_INT(pos, n);
        gfree(&gd);
        off += n;
        if (off == len)
            break;
    }
out:
    g->finish = wisp_ogg_reader_finish(r);
    wisp_ogg_reader_destroy(r);
}

static bool same(const got_t *a, const got_t *b)
{
    if (a->n != b->n || a->rc != b->rc || a->finish != b->finish)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (a->len[i] != b->len[i] || a->granule[i] != b->granule[i] ||
            a->bos[i] != b->bos[i] || a->eos[i] != b->eos[i] ||
            memcmp(a->data[i], b->data[i], a->len[i]) != 0)
            return false;
    return true;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        p[i] = (uint8_t)(seed >> 24);
    }
}

/* ---- CRC */

static void test_crc(void)
{
    /* The CRC-32 with polynomial 0x04C11DB7, MSB first, init 0, no final
     * xor: "123456789" gives 0x89A1897F (the CRC-32/CKSUM check value
     * 0x765E7680 without its final inversion; zlib's CRC-32 would give
     * 0xCBF43926). */
    CHECK_EQ_INT(wisp_ogg_crc(0, "123456789", 9), 0x89A1897Fu);
    CHECK_EQ_INT(wisp_ogg_crc(0, NULL, 0), 0);
    CHECK_EQ_INT(wisp_ogg_crc(0, "\x01", 1), 0x04C11DB7u);
    CHECK_EQ_INT(wisp_ogg_crc(0, "\x80", 1), 0x690CE0EEu);
    /* A page header of libogg's own test suite layout: the CRC over the
     * page with the CRC field zeroed equals what the reference gives. */
    uint8_t buf[4096];
    fill(buf, sizeof buf, 7);
    CHECK_EQ_INT(wisp_ogg_crc(0, buf, sizeof buf), crc_ref(buf, sizeof buf));
    for (size_t cut = 0; cut <= 100; cut += 7) {
        uint32_t c = wisp_ogg_crc(0, buf, cut);
        c = wisp_ogg_crc(c, buf + cut, sizeof buf - cut);
        CHECK_EQ_INT(c, crc_ref(buf, sizeof buf));
    }
}

/* ---- writer layout */

static void test_writer_layout(void)
{
    static out_t o;
    memset(&o, 0, sizeof o);
    o.fail_at = -1;
    wisp_ogg_writer_t *w = wisp_ogg_writer_create(0x1234, 100, collect, &o);
    CHECK(w != NULL);
    static uint8_t big[80000];
    fill(big, sizeof big, 3);
    /* p0: 10 bytes, ends page 0 by FLUSH. */
    CHECK_EQ_INT(wisp_ogg_writer_packet(w, big, 10, 0, WISP_OGG_WRITE_FLUSH), 0);
    CHECK_EQ_INT(o.npages, 1);
    /* p1: 50 bytes, p2: 60 bytes: page ends after p2 (110 >= 100). */
    CHECK_EQ_INT(wisp_ogg_writer_packet(w, big, 50, 100, 0), 0);
    CHECK_EQ_INT(o.npages, 1);
    CHECK_EQ_INT(wisp_ogg_writer_packet(w, big, 60, 200, 0), 0);
    CHECK_EQ_INT(o.npages, 2);
    /* p3: 255 * 300 bytes: 300 segments + a 0 terminator, two pages at
     * least; the first has no packet ending: granule -1. */
    CHECK_EQ_INT(wisp_ogg_writer_packet(w, big, 255 * 300, 300, 0), 0);
    /* p4: empty packet with EOS. */
    CHECK_EQ_INT(wisp_ogg_writer_packet(w, NULL, 0, 400, WISP_OGG_WRITE_EOS), 0);
    CHECK_EQ_INT(wisp_ogg_writer_packet(w, big, 1, 500, 0), WISP_ESTATE);
    CHECK_EQ_INT(wisp_ogg_writer_pages(w), o.npages);
    wisp_ogg_writer_destroy(w);

    CHECK_EQ_INT(o.npages, 5);
    for (size_t i = 0; i < o.npages; i++) {
        const uint8_t *h = o.buf + o.starts[i];
        size_t end = i + 1 < o.npages ? o.starts[i + 1] : o.len;
        CHECK(memcmp(h, "OggS", 4) == 0);
        CHECK_EQ_INT(h[4], 0);
        CHECK_EQ_INT(get32(h + 14), 0x1234);
        CHECK_EQ_INT(get32(h + 18), i);
        uint8_t tmp[WISP_OGG_MAX_PAGE];
        memcpy(tmp, h, end - o.starts[i]);
        memset(tmp + 22, 0, 4);
        CHECK_EQ_INT(get32(h + 22), crc_ref(tmp, end - o.starts[i]));
        size_t body = 0;
        for (size_t k = 0; k < h[26]; k++)
            body += h[27 + k];
        CHECK_EQ_INT(27 + h[26] + body, end - o.starts[i]);
    }
    const uint8_t *p0 = o.buf + o.starts[0], *p2 = o.buf + o.starts[2],
                  *p3 = o.buf + o.starts[3], *p4 = o.buf + o.starts[4];
    CHECK_EQ_INT(p0[5], WISP_OGG_BOS);
    CHECK_EQ_INT(get64(p0 + 6), 0);
    CHECK_EQ_INT(get64(o.buf + o.starts[1] + 6), 200);
    CHECK_EQ_INT(p2[5], 0);
    CHECK_EQ_INT(p2[26], 255);
    CHECK_EQ_INT(get64(p2 + 6), -1);    /* no packet ends here */
    CHECK_EQ_INT(p3[5], WISP_OGG_CONTINUED);
    CHECK_EQ_INT(p3[26], 46);           /* 45 * 255 + the 0 */
    CHECK_EQ_INT(p3[27 + 45], 0);
    CHECK_EQ_INT(get64(p3 + 6), 300);
    CHECK_EQ_INT(p4[5], WISP_OGG_EOS);
    CHECK_EQ_INT(p4[26], 1);
    CHECK_EQ_INT(p4[27], 0);
    CHECK_EQ_INT(get64(p4 + 6), 400);

    /* A callback's error comes back from the call that finished the
     * page; the writer goes on. */
    memset(&o, 0, sizeof o);
    o.fail_at = 0;
    w = wisp_ogg_writer_create(1, 0, collect, &o);
    CHECK_EQ_INT(wisp_ogg_writer_packet(w, big, 5, 0, WISP_OGG_WRITE_FLUSH),
                 -EPIPE);
    CHECK_EQ_INT(wisp_ogg_writer_packet(w, big, 5, 0, 0), 0);
    CHECK_EQ_INT(wisp_ogg_writer_flush(w), 0);
    CHECK_EQ_INT(wisp_ogg_writer_flush(w), 0); /* nothing held */
    CHECK_EQ_INT(o.npages, 2);
    CHECK_EQ_INT(wisp_ogg_writer_packet(w, NULL, 3, 0, 0), -EINVAL);
    CHECK_EQ_INT(wisp_ogg_writer_packet(w, big, 3, 0, 0x10), -EINVAL);
    wisp_ogg_writer_destroy(w);
    errno = 0;
    CHECK(wisp_ogg_writer_create(1, 0, NULL, NULL) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    wisp_ogg_writer_destroy(NULL);
}

/* ---- round trip under every split */

static size_t sizes[] = {0, 1, 254, 255, 256, 510, 1000, 65025, 65026,
                         70000, 3, 0, 4000};

static void write_stream(out_t *o, uint32_t serial, size_t page_bytes)
{
    static uint8_t big[80000];
    fill(big, sizeof big, 11);
    memset(o, 0, sizeof *o);
    o->fail_at = -1;
    wisp_ogg_writer_t *w = wisp_ogg_writer_create(serial, page_bytes,
                                                  collect, o);
    size_t n = sizeof sizes / sizeof sizes[0];
    for (size_t i = 0; i < n; i++)
        CHECK_EQ_INT(wisp_ogg_writer_packet(w, big + i, sizes[i],
                                            (int64_t)(i * 1000),
                                            i + 1 == n ? WISP_OGG_WRITE_EOS
                                                       : 0),
                     0);
    wisp_ogg_writer_destroy(w);
}

static void test_roundtrip(void)
{
    static out_t o;
    write_stream(&o, 77, 300);
    size_t n = sizeof sizes / sizeof sizes[0];
    got_t whole, g;
    read_all(o.buf, o.len, o.len, NULL, &whole);
    CHECK_EQ_INT(whole.rc, 0);
    CHECK_EQ_INT(whole.finish, 0);
    CHECK_EQ_INT(whole.n, n);
    static uint8_t big[80000];
    fill(big, sizeof big, 11);
    for (size_t i = 0; i < whole.n && i < n; i++) {
        CHECK_EQ_INT(whole.len[i], sizes[i]);
        CHECK(memcmp(whole.data[i], big + i, sizes[i]) == 0);
        CHECK_EQ_INT(whole.serial[i], 77);
        CHECK_EQ_INT(whole.bos[i], i == 0);
        CHECK_EQ_INT(whole.eos[i], i + 1 == n);
    }
    /* A packet's granule is its page's when it is the last one ending
     * there: the last packet always is. */
    CHECK_EQ_INT(whole.granule[n - 1], (int64_t)((n - 1) * 1000));
    size_t slices[] = {1, 2, 3, 7, 26, 27, 28, 255, 4096, 0};
    for (size_t s = 0; s < sizeof slices / sizeof slices[0]; s++) {
        read_all(o.buf, o.len, slices[s], NULL, &g);
        CHECK_MSG(same(&whole, &g), "slice %zu", slices[s]);
        got_free(&g);
    }
    got_free(&whole);

    /* Found by fuzz_opus: a first packet that ends on the second page is
     * still the stream's BOS packet. */
    memset(&o, 0, sizeof o);
    o.fail_at = -1;
    wisp_ogg_writer_t *w = wisp_ogg_writer_create(3, 0, collect, &o);
    CHECK_EQ_INT(wisp_ogg_writer_packet(w, big, 66000, 5, 0), 0);
    CHECK_EQ_INT(wisp_ogg_writer_packet(w, big, 10, 6, WISP_OGG_WRITE_EOS), 0);
    wisp_ogg_writer_destroy(w);
    CHECK_EQ_INT(o.npages, 2);
    read_all(o.buf, o.len, 1000, NULL, &g);
    CHECK(g.rc == 0 && g.finish == 0 && g.n == 2);
    CHECK(g.bos[0] && !g.bos[1] && !g.eos[0] && g.eos[1]);
    CHECK(g.len[0] == 66000 && memcmp(g.data[0], big, 66000) == 0);
    CHECK(g.granule[0] == -1 && g.granule[1] == 6);
    got_free(&g);

    /* A short stream cut at every position into two and three slices. */
    write_stream(&o, 5, 100);
    o.len = o.starts[3]; /* the first three pages: packets 0..4 */
    got_t ref;
    read_all(o.buf, o.len, o.len, NULL, &ref);
    CHECK_EQ_INT(ref.rc, 0);
    CHECK_EQ_INT(ref.finish, 0);
    CHECK_EQ_INT(ref.n, 5);
    wisp_ogg_reader_t *r;
    int bad = 0;
    for (size_t a = 0; a <= o.len; a++) {
        for (size_t b = a; b <= o.len; b += (a % 37 == 0) ? 1 : 97) {
            size_t cuts[4] = {0, a, b, o.len};
            r = wisp_ogg_reader_create(NULL);
            size_t k = 0;
            int rc = 0;
            for (int c = 0; c < 3 && rc >= 0; c++) {
                size_t off = cuts[c], end = cuts[c + 1];
                for (;;) {
                    wisp_ogg_packet_t p;
                    size_t used;
                    rc = wisp_ogg_reader_read(r, o.buf + off, end - off,
                                              &used, &p);
                    off += used;
                    if (rc <= 0)
                        break;
                    if (k >= ref.n || p.len != ref.len[k] ||
                        memcmp(p.data, ref.data[k], p.len) != 0 ||
                        p.granule != ref.granule[k])
                        bad++;
                    k++;
                }
            }
            if (rc < 0 || k != ref.n ||
                wisp_ogg_reader_finish(r) != 0)
                bad++;
            wisp_ogg_reader_destroy(r);
        }
    }
    CHECK_EQ_INT(bad, 0);
    got_free(&ref);
}

/* ---- malformed input and limits */

static void test_errors(void)
{
    static uint8_t s[8192], body[2048];
    fill(body, sizeof body, 9);
    uint8_t lac1[] = {100}, lac2[] = {255, 10}, lac_open[] = {255};
    got_t g;
    size_t n;

    /* Bad CRC: one body byte flipped. */
    n = mkpage(s, WISP_OGG_BOS, 0, 1, 0, lac1, 1, body);
    s[40] ^= 1;
    read_all(s, n, n, NULL, &g);
    CHECK_EQ_INT(g.rc, WISP_EOGG_CRC);
    CHECK_EQ_INT(g.n, 0);
    CHECK_EQ_INT(g.finish, WISP_EOGG_CRC); /* sticky */
    got_free(&g);

    /* Garbage where a page must start. */
    memcpy(s, "GET / HTTP/1.1\r\n\r\n", 18);
    read_all(s, 18, 18, NULL, &g);
    CHECK_EQ_INT(g.rc, WISP_EOGG_CAPTURE);
    got_free(&g);

    /* Version 1. */
    n = mkpage(s, WISP_OGG_BOS, 0, 1, 0, lac1, 1, body);
    s[4] = 1;
    read_all(s, n, 1, NULL, &g);
    CHECK_EQ_INT(g.rc, WISP_EOGG_VERSION);
    got_free(&g);

    /* Truncated page: the header and half the body. */
    n = mkpage(s, WISP_OGG_BOS, 0, 1, 0, lac1, 1, body);
    read_all(s, n - 50, 3, NULL, &g);
    CHECK_EQ_INT(g.rc, 0);
    CHECK_EQ_INT(g.n, 0);
    CHECK_EQ_INT(g.finish, WISP_EOGG_TRUNCATED);
    got_free(&g);
    read_all(s, 10, 3, NULL, &g); /* inside the header */
    CHECK_EQ_INT(g.finish, WISP_EOGG_TRUNCATED);
    got_free(&g);
    read_all(s, 0, 3, NULL, &g); /* nothing at all is a clean end */
    CHECK_EQ_INT(g.finish, 0);
    got_free(&g);

    /* Truncated packet: a page ending in 255 and then the end. */
    n = mkpage(s, WISP_OGG_BOS, -1, 1, 0, lac_open, 1, body);
    read_all(s, n, n, NULL, &g);
    CHECK_EQ_INT(g.rc, 0);
    CHECK_EQ_INT(g.n, 0);
    CHECK_EQ_INT(g.finish, WISP_EOGG_TRUNCATED);
    got_free(&g);

    /* Sequence gap (page 0 then page 2). */
    n = mkpage(s, WISP_OGG_BOS, 0, 1, 0, lac1, 1, body);
    n += mkpage(s + n, 0, 0, 1, 2, lac1, 1, body);
    read_all(s, n, n, NULL, &g);
    CHECK_EQ_INT(g.n, 1);
    CHECK_EQ_INT(g.rc, WISP_EOGG_SEQUENCE);
    got_free(&g);

    /* Continued page with nothing to continue. */
    n = mkpage(s, WISP_OGG_CONTINUED, 0, 1, 0, lac1, 1, body);
    read_all(s, n, n, NULL, &g);
    CHECK_EQ_INT(g.rc, WISP_EOGG_SEQUENCE);
    got_free(&g);

    /* Unfinished packet followed by a page not marked continued. */
    n = mkpage(s, WISP_OGG_BOS, -1, 1, 0, lac_open, 1, body);
    n += mkpage(s + n, 0, 0, 1, 1, lac1, 1, body);
    read_all(s, n, 5, NULL, &g);
    CHECK_EQ_INT(g.rc, WISP_EOGG_SEQUENCE);
    got_free(&g);

    /* Huge lacing: a page of 255 segments of 255 bytes is refused from
     * its header by a 4 KiB page limit, before the body is read. */
    uint8_t lac_huge[255];
    memset(lac_huge, 255, sizeof lac_huge);
    memcpy(s, "OggS", 4);
    s[4] = 0;
    s[5] = WISP_OGG_BOS;
    memset(s + 6, 0, 20);
    s[26] = 255;
    memcpy(s + 27, lac_huge, 255);
    wisp_ogg_limits_t lim = {.max_page_bytes = 4096};
    read_all(s, 27 + 255, 1, &lim, &g);
    CHECK_EQ_INT(g.rc, WISP_EOGG_PAGE_SIZE);
    got_free(&g);

    /* A packet crossing pages over max_packet_bytes. */
    n = mkpage(s, WISP_OGG_BOS, -1, 1, 0, lac2, 1, body); /* 255 open */
    n += mkpage(s + n, WISP_OGG_CONTINUED, -1, 1, 1, lac2, 1, body);
    n += mkpage(s + n, WISP_OGG_CONTINUED, 0, 1, 2, lac2, 2, body);
    lim = (wisp_ogg_limits_t){.max_packet_bytes = 600};
    read_all(s, n, n, &lim, &g);
    CHECK_EQ_INT(g.rc, WISP_EOGG_PACKET_SIZE);
    got_free(&g);
    lim.max_packet_bytes = 775; /* exactly 255 + 255 + 265 fits */
    read_all(s, n, 1, &lim, &g);
    CHECK_EQ_INT(g.rc, 0);
    CHECK_EQ_INT(g.n, 1);
    CHECK_EQ_INT(g.len[0], 775);
    got_free(&g);
    /* ... and within one page too. */
    n = mkpage(s, WISP_OGG_BOS, 0, 1, 0, lac1, 1, body);
    lim.max_packet_bytes = 99;
    read_all(s, n, n, &lim, &g);
    CHECK_EQ_INT(g.rc, WISP_EOGG_PACKET_SIZE);
    got_free(&g);

    /* Bad arguments. */
    lim = (wisp_ogg_limits_t){.max_page_bytes = 100};
    errno = 0;
    CHECK(wisp_ogg_reader_create(&lim) == NULL);
    CHECK_EQ_INT(errno, EINVAL);
    wisp_ogg_reader_t *r = wisp_ogg_reader_create(NULL);
    wisp_ogg_packet_t p;
    size_t used;
    CHECK_EQ_INT(wisp_ogg_reader_read(r, NULL, 5, &used, &p), -EINVAL);
    CHECK_EQ_INT(wisp_ogg_reader_read(r, NULL, 0, &used, &p), 0);
    wisp_ogg_reader_destroy(r);
    wisp_ogg_reader_destroy(NULL);
    CHECK(strcmp(wisp_strerror(WISP_EOGG_CRC), "Ogg page CRC mismatch") == 0);
}

/* ---- resync, multiplexing, chaining */

static void test_resync(void)
{
    static uint8_t s[16384], body[2048];
    fill(body, sizeof body, 13);
    uint8_t lac1[] = {100}, lac_open[] = {255}, lac_close[] = {20, 30};
    size_t n = 0;
    wisp_ogg_limits_t lim = {.resync = true};
    got_t g;

    /* Garbage first and between pages, a corrupt page, a false "OggS". */
    memcpy(s, "junkOgjunkOggSx", 15);
    n = 15;
    n += mkpage(s + n, WISP_OGG_BOS, 0, 9, 0, lac1, 1, body);       /* A */
    memcpy(s + n, "xxOggS\0\0", 8);
    n += 8;
    size_t bad = n;
    n += mkpage(s + n, 0, -1, 9, 1, lac_open, 1, body + 1);         /* lost */
    s[bad + 30] ^= 0x55;
    n += mkpage(s + n, WISP_OGG_CONTINUED, 5, 9, 2, lac_close, 2,
                body + 2); /* head of the lost packet, then one of 30 */
    n += mkpage(s + n, WISP_OGG_EOS, 6, 9, 3, lac1, 1, body + 3);   /* C */
    got_t whole;
    read_all(s, n, n, &lim, &whole);
    CHECK_EQ_INT(whole.rc, 0);
    CHECK_EQ_INT(whole.finish, 0);
    CHECK_EQ_INT(whole.n, 3);
    CHECK_EQ_INT(whole.len[0], 100);
    CHECK_EQ_INT(whole.len[1], 30); /* the 20-byte head is dropped */
    CHECK(memcmp(whole.data[1], body + 2 + 20, 30) == 0);
    CHECK_EQ_INT(whole.len[2], 100);
    CHECK(whole.eos[2]);
    for (size_t sl = 0; sl < 30; sl += 3) {
        read_all(s, n, sl, &lim, &g);
        CHECK_MSG(same(&whole, &g), "resync slice %zu", sl);
        got_free(&g);
    }
    got_free(&whole);
    wisp_ogg_reader_t *r = wisp_ogg_reader_create(&lim);
    wisp_ogg_packet_t p;
    size_t used, off = 0;
    int k;
    while ((k = wisp_ogg_reader_read(r, s + off, n - off, &used, &p)) > 0)
        off += used;
    CHECK_EQ_INT(k, 0);
    CHECK(wisp_ogg_reader_skipped_bytes(r) > 15 + 8);
    wisp_ogg_reader_destroy(r);

    /* The same in strict mode: the junk is refused at once. */
    read_all(s, n, n, NULL, &g);
    CHECK_EQ_INT(g.rc, WISP_EOGG_CAPTURE);
    got_free(&g);

    /* More garbage than max_skip_bytes. */
    memset(s, 'O', 3000);
    lim.max_skip_bytes = 2000;
    read_all(s, 3000, 0, &lim, &g);
    CHECK_EQ_INT(g.rc, WISP_EOGG_CAPTURE);
    got_free(&g);
    memset(s, 'x', 3000);
    read_all(s, 3000, 1000, &lim, &g);
    CHECK_EQ_INT(g.rc, WISP_EOGG_CAPTURE);
    got_free(&g);

    /* Two streams interleaved: the first is followed, the other's pages
     * are skipped; after EOS a new BOS (chaining) is followed. */
    n = 0;
    n += mkpage(s + n, WISP_OGG_BOS, 0, 1, 0, lac1, 1, body);
    n += mkpage(s + n, WISP_OGG_BOS, 0, 2, 0, lac1, 1, body + 5);
    n += mkpage(s + n, 0, 0, 2, 1, lac1, 1, body + 6);
    n += mkpage(s + n, WISP_OGG_EOS, 7, 1, 1, lac1, 1, body + 1);
    n += mkpage(s + n, 0, 0, 2, 2, lac1, 1, body + 7);
    n += mkpage(s + n, WISP_OGG_BOS | WISP_OGG_EOS, 9, 3, 0, lac1, 1,
                body + 3);
    read_all(s, n, 11, NULL, &g);
    CHECK_EQ_INT(g.rc, 0);
    CHECK_EQ_INT(g.finish, 0);
    CHECK_EQ_INT(g.n, 3);
    CHECK_EQ_INT(g.serial[0], 1);
    CHECK_EQ_INT(g.serial[1], 1);
    CHECK(g.eos[1]);
    CHECK_EQ_INT(g.serial[2], 3);
    CHECK(g.bos[2] && g.eos[2]);
    CHECK_EQ_INT(g.granule[2], 9);
    CHECK(memcmp(g.data[2], body + 3, 100) == 0);
    got_free(&g);
}

int main(void)
{
    test_crc();
    test_writer_layout();
    test_roundtrip();
    test_errors();
    test_resync();
    return t_done("media_ogg");
}
