/* opus_tool: wisp's Ogg Opus demuxer, muxer and repacketizer on files,
 * for test/integration/opus_tools_test.py (which compares them with
 * opusenc, opusinfo, opusdec and a reading of its own).
 *
 *   opus_tool dump IN [SEED]
 *       Demux IN, fed whole (SEED 0, the default), one byte at a time
 *       (SEED 1) or in pseudo-random slices of 1..SEED bytes, and print
 *         H channels pre_skip input_rate gain family
 *         T vendor comment_count
 *         P len samples granule fnv1a64     (one line per audio packet)
 *         E read_rc finish_rc samples last_granule
 *   opus_tool remux IN OUT [join N | split]
 *       Demux IN and mux its packets into OUT with the same OpusHead,
 *       the same end trim and 100 ms pages; with "join N", runs of up to
 *       N consecutive packets with the same TOC configuration and at most
 *       120 ms together become one code-3 packet; with "split", every
 *       packet becomes one code-0 packet per frame; with "repack MS", the
 *       packets go through the streaming repacketizer with a target of
 *       MS milliseconds.
 * Exit status 0, or 1 with a message on stderr. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wisp/opus.h"

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    uint8_t *b = malloc(cap);
    for (;;) {
        if (n == cap)
            b = realloc(b, cap *= 2);
        size_t r = fread(b + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    *len = n;
    return b;
}

typedef struct pkts {
    size_t n, cap;
    uint8_t **data;
    size_t *len;
    uint32_t *samples;
    int64_t *granule;
} pkts_t;

static void pkts_free(pkts_t *p)
{
    for (size_t i = 0; i < p->n; i++)
        free(p->data[i]);
    free(p->data);
    free(p->len);
    free(p->samples);
    free(p->granule);
}

static void push(pkts_t *p, const uint8_t *d, size_t len, uint32_t samples,
                 int64_t granule)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 256;
        p->data = realloc(p->data, p->cap * sizeof *p->data);
        p->len = realloc(p->len, p->cap * sizeof *p->len);
        p->samples = realloc(p->samples, p->cap * sizeof *p->samples);
        p->granule = realloc(p->granule, p->cap * sizeof *p->granule);
    }
    p->data[p->n] = malloc(len ? len : 1);
    memcpy(p->data[p->n], d, len);
    p->len[p->n] = len;
    p->samples[p->n] = samples;
    p->granule[p->n] = granule;
    p->n++;
}

typedef struct demuxed {
    pkts_t pk;
    wisp_opus_head_t head;
    char vendor[256];
    uint32_t ncomments;
    int rc, finish;
    uint64_t samples;
    int64_t granule;
} demuxed_t;

static void demux(const uint8_t *in, size_t len, unsigned seed, demuxed_t *o)
{
    memset(o, 0, sizeof *o);
    wisp_opus_demux_t *d = wisp_opus_demux_create(NULL);
    size_t off = 0;
    uint32_t rnd = seed;
    while (off < len || len == 0) {
        size_t n = len - off;
        if (seed == 1) {
            n = n ? 1 : 0;
        } else if (seed > 1) {
            rnd = rnd * 1103515245u + 12345u;
            size_t s = 1 + (rnd >> 8) % seed;
            if (s < n)
                n = s;
        }
        size_t pos = 0;
        for (;;) {
            wisp_opus_demux_packet_t p;
            size_t used;
            int rc = wisp_opus_demux_read(d, in + off + pos, n - pos, &used,
                                          &p);
            pos += used;
            if (rc < 0) {
                o->rc = rc;
                goto out;
            }
            if (rc == 0)
                break;
            push(&o->pk, p.data, p.len, p.samples, p.granule);
        }
        off += n;
        if (len == 0)
            break;
    }
out:
    o->finish = wisp_opus_demux_finish(d);
    o->samples = wisp_opus_demux_samples(d);
    o->granule = wisp_opus_demux_granule(d);
    if (wisp_opus_demux_head(d))
        o->head = *wisp_opus_demux_head(d);
    const wisp_opus_tags_t *t = wisp_opus_demux_tags(d);
    if (t) {
        snprintf(o->vendor, sizeof o->vendor, "%.*s", (int)t->vendor.len,
                 t->vendor.ptr);
        o->ncomments = t->count;
    }
    wisp_opus_demux_destroy(d);
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static int page_out(void *arg, const uint8_t *page, size_t len)
{
    return fwrite(page, 1, len, arg) == len ? 0 : -EIO;
}

static int to_mux(void *arg, const uint8_t *pkt, size_t len, uint32_t samples)
{
    (void)samples;
    return wisp_opus_mux_packet(arg, pkt, len);
}

static int remux(const demuxed_t *in, const char *path, const char *mode,
                 size_t join_n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return 1;
    const char *cm[] = {"ENCODER=wisp opus_tool"};
    wisp_opus_mux_opts_t o = {.head = &in->head, .serial = 0x5157,
                              .vendor = in->vendor, .comments = cm,
                              .ncomments = 1};
    wisp_opus_mux_t *m = wisp_opus_mux_create(&o, page_out, f);
    if (!m) {
        fclose(f);
        return 1;
    }
    static uint8_t buf[WISP_OPUS_MAX_FRAMES * (WISP_OPUS_MAX_FRAME_BYTES + 3)];
    size_t i = 0;
    int rc = 0;
    wisp_opus_repack_t *rp = NULL;
    if (mode && strcmp(mode, "repack") == 0) {
        rp = wisp_opus_repack_create((uint32_t)join_n * 48, to_mux, m);
        if (!rp)
            rc = -errno;
    }
    while (i < in->pk.n && rc == 0) {
        if (rp) {
            rc = wisp_opus_repack_push(rp, in->pk.data[i], in->pk.len[i]);
            i++;
        } else if (!mode) {
            rc = wisp_opus_mux_packet(m, in->pk.data[i], in->pk.len[i]);
            i++;
        } else if (strcmp(mode, "split") == 0) {
            size_t lens[WISP_OPUS_MAX_FRAMES];
            int k = wisp_opus_split(in->pk.data[i], in->pk.len[i], buf,
                                    sizeof buf, lens);
            if (k < 0)
                rc = k;
            const uint8_t *p = buf;
            for (int j = 0; j < k && rc == 0; j++) {
                rc = wisp_opus_mux_packet(m, p, lens[j]);
                p += lens[j];
            }
            i++;
        } else {
            /* A run: same TOC config and stereo flag, up to join_n
             * packets, at most 120 ms. */
            size_t j = i + 1, samples = in->pk.samples[i];
            while (j < in->pk.n && j - i < join_n &&
                   (in->pk.data[j][0] & 0xfc) == (in->pk.data[i][0] & 0xfc) &&
                   samples + in->pk.samples[j] <= WISP_OPUS_MAX_PACKET_SAMPLES)
                samples += in->pk.samples[j++];
            ssize_t n = wisp_opus_join((const uint8_t *const *)in->pk.data + i,
                                       in->pk.len + i, j - i, buf, sizeof buf);
            if (n < 0)
                rc = (int)n;
            else
                rc = wisp_opus_mux_packet(m, buf, (size_t)n);
            i = j;
        }
    }
    if (rp) {
        if (rc == 0)
            rc = wisp_opus_repack_flush(rp);
        wisp_opus_repack_destroy(rp);
    }
    /* The same end trim as the input (its stream starts at 0). */
    uint64_t total = wisp_opus_mux_samples(m);
    uint32_t trim = in->granule >= 0 && (uint64_t)in->granule < total
                        ? (uint32_t)(total - (uint64_t)in->granule)
                        : 0;
    if (rc == 0)
        rc = wisp_opus_mux_finish(m, trim);
    wisp_opus_mux_destroy(m);
    if (fclose(f) != 0 && rc == 0)
        rc = -EIO;
    if (rc < 0)
        fprintf(stderr, "remux: %s\n", wisp_strerror(rc));
    return rc < 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: opus_tool dump IN [SEED] | "
                        "remux IN OUT [join N | split]\n");
        return 1;
    }
    size_t len;
    uint8_t *in = slurp(argv[2], &len);
    if (!in) {
        perror(argv[2]);
        return 1;
    }
    demuxed_t d;
    if (strcmp(argv[1], "dump") == 0) {
        demux(in, len, argc > 3 ? (unsigned)atoi(argv[3]) : 0, &d);
        printf("H %u %u %" PRIu32 " %d %u\n", d.head.channels,
               d.head.pre_skip, d.head.input_sample_rate, d.head.output_gain,
               d.head.mapping_family);
        printf("T %s %" PRIu32 "\n", d.vendor, d.ncomments);
        for (size_t i = 0; i < d.pk.n; i++)
            printf("P %zu %" PRIu32 " %" PRId64 " %016" PRIx64 "\n",
                   d.pk.len[i], d.pk.samples[i], d.pk.granule[i],
                   fnv(d.pk.data[i], d.pk.len[i]));
        printf("E %d %d %" PRIu64 " %" PRId64 "\n", d.rc, d.finish, d.samples,
               d.granule);
        pkts_free(&d.pk);
        free(in);
        return 0;
    }
    if (strcmp(argv[1], "remux") == 0 && argc >= 4) {
        demux(in, len, 0, &d);
        free(in);
        int rc = 1;
        if (d.rc < 0 || d.finish < 0) {
            fprintf(stderr, "demux: %s\n",
                    wisp_strerror(d.rc < 0 ? d.rc : d.finish));
        } else {
            const char *mode = argc > 4 ? argv[4] : NULL;
            size_t n = mode && (strcmp(mode, "join") == 0 ||
                                strcmp(mode, "repack") == 0) && argc > 5
                           ? (size_t)atoi(argv[5])
                           : 0;
            if (mode && strcmp(mode, "split") != 0 && n == 0)
                fprintf(stderr, "bad mode\n");
            else
                rc = remux(&d, argv[3], mode, n);
        }
        pkts_free(&d.pk);
        return rc;
    }
    free(in);
    fprintf(stderr, "unknown command\n");
    return 1;
}
