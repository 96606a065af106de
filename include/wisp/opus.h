/* wisp — Opus at the packet and container level, without a codec.
 *
 * - Packets (RFC 6716 §3): the TOC byte (configuration → mode, bandwidth,
 *   frame duration; stereo flag; frame count code), the frame layout of
 *   codes 0–3, and the framing rules R1–R7 of §3.2, so malformed packets
 *   are refused before they reach a decoder or a device.
 * - A repacketizer (§3.2.5): consecutive packets with the same
 *   configuration and stereo flag are joined into one code-3 packet (three
 *   20 ms packets make one 60 ms packet), and a packet is split back into
 *   one code-0 packet per frame. Frames are copied, never decoded.
 * - Ogg Opus (RFC 7845): the identification header (OpusHead) and comment
 *   header (OpusTags), a muxer that turns packets into Ogg pages, and a
 *   demuxer that turns Ogg bytes (in any split) into packets with their
 *   durations. Granule positions count 48 kHz samples.
 *
 * Durations are in samples at 48 kHz (960 = 20 ms), whatever the
 * bandwidth, as RFC 7845 §4 counts them.
 *
 * Thread: the packet and header functions are pure; a muxer or demuxer is
 * used by one thread at a time. */
#ifndef WISP_OPUS_H
#define WISP_OPUS_H

#include "common.h"
#include "ogg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* wisp's Opus error codes (in the WISP_E range, see common.h). */
enum {
    WISP_EOPUS_PACKET = -4080,   /* packet breaks RFC 6716 §3.2 (R1–R7) */
    WISP_EOPUS_MISMATCH = -4081, /* packets to join differ in TOC config
                                    or stereo flag */
    WISP_EOPUS_DURATION = -4082, /* more than 120 ms in one packet */
    WISP_EOPUS_HEAD = -4083,     /* missing or malformed OpusHead */
    WISP_EOPUS_TAGS = -4084,     /* missing or malformed OpusTags */
    WISP_EOPUS_GRANULE = -4085,  /* granule positions break RFC 7845 §4 */
};

typedef enum wisp_opus_mode {
    WISP_OPUS_SILK = 0,
    WISP_OPUS_HYBRID,
    WISP_OPUS_CELT,
} wisp_opus_mode_t;

typedef enum wisp_opus_bandwidth {
    WISP_OPUS_NB = 0, /* narrowband, 4 kHz */
    WISP_OPUS_MB,     /* medium-band, 6 kHz */
    WISP_OPUS_WB,     /* wideband, 8 kHz */
    WISP_OPUS_SWB,    /* super-wideband, 12 kHz */
    WISP_OPUS_FB,     /* fullband, 20 kHz */
} wisp_opus_bandwidth_t;

/* The most frames one packet can hold: 120 ms of 2.5 ms frames. */
#define WISP_OPUS_MAX_FRAMES 48
/* The largest frame (R2). */
#define WISP_OPUS_MAX_FRAME_BYTES 1275
/* The longest packet: 120 ms. */
#define WISP_OPUS_MAX_PACKET_SAMPLES 5760

/* What the TOC byte says (RFC 6716 §3.1). */
typedef struct wisp_opus_toc {
    uint8_t config;            /* 0..31 */
    uint8_t stereo;            /* 0 or 1 */
    uint8_t code;              /* frame count code, 0..3 */
    uint8_t mode;              /* wisp_opus_mode_t */
    uint8_t bandwidth;         /* wisp_opus_bandwidth_t */
    uint16_t frame_samples;    /* 120, 240, 480, 960, 1920 or 2880 */
} wisp_opus_toc_t;

/* Decode a TOC byte. Every byte is a valid TOC. Thread: any. */
WISP_API wisp_opus_toc_t wisp_opus_toc(uint8_t toc);

/* A parsed packet: frames point into the packet. */
typedef struct wisp_opus_packet {
    wisp_opus_toc_t toc;
    uint8_t vbr;        /* code 3: VBR flag; code 2: 1; else 0 */
    uint8_t frames;     /* 1..48 */
    uint32_t samples;   /* frames * toc.frame_samples, at most 5760 */
    size_t padding;     /* code 3 padding bytes (the length bytes too) */
    const uint8_t *frame[WISP_OPUS_MAX_FRAMES];
    uint16_t frame_len[WISP_OPUS_MAX_FRAMES]; /* each 0..1275 */
} wisp_opus_packet_t;

/* Parse and validate the `len` bytes at `data` as one Opus packet
 * (RFC 6716 §3.2: R1 at least one byte; R2 no frame over 1275 bytes; R3
 * code 1 has an odd length; R4 code 2's first length fits; R5 code 3 has
 * at least one frame and at most 120 ms; R6 CBR code 3 splits evenly
 * after padding; R7 VBR code 3's lengths and padding fit). `out` may be
 * NULL to only validate. Reads nothing outside [data, data + len).
 * Returns the packet's duration in 48 kHz samples (120..5760), or
 * WISP_EOPUS_PACKET (any rule broken), -EINVAL (`data` NULL with len >
 * 0). Thread: any. */
WISP_API int wisp_opus_packet_parse(const uint8_t *data, size_t len,
                                    wisp_opus_packet_t *out);

/* Join `n` packets (`pkts[i]`, `lens[i]` bytes each) into one code-3
 * packet at `out` (`cap` bytes): every frame of every input, in order,
 * under the first packet's TOC configuration and stereo flag. The result
 * is CBR when all frames have the same length, VBR otherwise, without
 * padding. The inputs may use any code (their padding is dropped).
 *
 * Returns the length written, or WISP_EOPUS_PACKET (an input is
 * malformed), WISP_EOPUS_MISMATCH (configuration or stereo flag differ),
 * WISP_EOPUS_DURATION (over 120 ms together), -ENOBUFS (`cap` too small;
 * 2 + total input bytes + 2 per frame always suffices), -EINVAL (n == 0
 * or a NULL array). Thread: any. */
WISP_API ssize_t wisp_opus_join(const uint8_t *const *pkts,
                                const size_t *lens, size_t n, uint8_t *out,
                                size_t cap);

/* Split one packet into one code-0 packet per frame, written one after
 * the other at `out` (`cap` bytes; len + frames always suffices), their
 * lengths into `lens` (room for WISP_OPUS_MAX_FRAMES). Padding is
 * dropped. Returns the number of packets (1..48), or WISP_EOPUS_PACKET,
 * -ENOBUFS, -EINVAL (a NULL pointer). Thread: any. */
WISP_API int wisp_opus_split(const uint8_t *pkt, size_t len, uint8_t *out,
                             size_t cap, size_t *lens);

/* A streaming repacketizer: packets go in as they come (e.g. a TTS
 * engine's 20 ms packets), joined packets of a target duration come out
 * (e.g. the 60 ms packets a device expects) as soon as they are whole.
 * Consecutive packets are held while they share the TOC configuration
 * and stereo flag and stay within the target; the held frames go out as
 * one packet when they reach the target, when the next packet does not
 * fit (another configuration, or over the target), or on flush. One held
 * frame goes out as a code-0 packet, more as one code-3 packet (CBR when
 * the frames are the same size, else VBR). A packet already at or over
 * the target passes through as a copy of its frames. Memory: the held
 * frames (at most 120 ms, 61 KiB), allocated at create. */
typedef struct wisp_opus_repack wisp_opus_repack_t;

/* Receives one output packet (valid only during the call) and its
 * duration. Return 0, or a negative code that the repack call returns. */
typedef int (*wisp_opus_packet_cb)(void *arg, const uint8_t *pkt, size_t len,
                                   uint32_t samples);

/* Create a repacketizer for `target_samples` at 48 kHz (2880 = 60 ms;
 * at most 5760) handing packets to `cb(arg, ...)`.
 * Returns it, or NULL with errno EINVAL (`cb` NULL, target 0 or over
 * 5760) or ENOMEM. Free it with wisp_opus_repack_destroy. */
WISP_API wisp_opus_repack_t *wisp_opus_repack_create(uint32_t target_samples,
                                                     wisp_opus_packet_cb cb,
                                                     void *arg);

/* Free `r` without emitting what it holds. NULL is ignored. */
WISP_API void wisp_opus_repack_destroy(wisp_opus_repack_t *r);

/* Add one packet (validated; `cb` may run inside, at most twice). Returns
 * 0, WISP_EOPUS_PACKET (refused; what was held is still held), -EINVAL
 * (`pkt` NULL), or the first negative value `cb` returned. */
WISP_API int wisp_opus_repack_push(wisp_opus_repack_t *r, const uint8_t *pkt,
                                   size_t len);

/* Emit what is held now, if anything (at the end of a stream, or when the
 * producer pauses). Returns 0 or the negative value `cb` returned. */
WISP_API int wisp_opus_repack_flush(wisp_opus_repack_t *r);

/* ---- Ogg Opus headers (RFC 7845 §5) */

typedef struct wisp_opus_head {
    uint8_t version;           /* 1 when written; parsing accepts 0..15 */
    uint8_t channels;          /* 1..255 */
    uint16_t pre_skip;         /* samples at 48 kHz to drop at the start */
    uint32_t input_sample_rate;/* informational; 0 means unknown */
    int16_t output_gain;       /* Q7.8 dB */
    uint8_t mapping_family;    /* 0, 1, or other (255...) */
    uint8_t stream_count;      /* family 0: 1 */
    uint8_t coupled_count;     /* family 0: channels - 1 */
    uint8_t mapping[255];      /* family 0: 0, 1 */
} wisp_opus_head_t;

/* Parse an OpusHead packet. Family 0 needs 1 or 2 channels and exactly
 * 19 bytes are read (extra bytes are allowed, RFC 7845 §5.1); any other
 * family needs a mapping table: stream count >= 1, coupled count <=
 * stream count, stream + coupled <= 255, and every mapping entry below
 * stream + coupled or 255 (silence); family 1 also needs 1..8 channels.
 * A version with a major part (upper 4 bits) other than 0 is refused.
 * Returns 0, WISP_EOPUS_HEAD, or -EINVAL (NULL). Thread: any. */
WISP_API int wisp_opus_head_parse(const uint8_t *data, size_t len,
                                  wisp_opus_head_t *head);

/* Write `head` as an OpusHead packet (version 1) into `out` (`cap`
 * bytes). Returns its length (19 for family 0, 21 + channels otherwise),
 * WISP_EOPUS_HEAD (`head` does not parse back), -ENOBUFS, -EINVAL. */
WISP_API ssize_t wisp_opus_head_write(const wisp_opus_head_t *head,
                                      uint8_t *out, size_t cap);

/* A parsed OpusTags packet: the vendor string and the comments, which
 * point into the packet. */
typedef struct wisp_opus_tags {
    wisp_str_t vendor;
    uint32_t count;          /* user comments */
    const uint8_t *comments; /* the comment list, after the count */
    size_t comments_len;
} wisp_opus_tags_t;

/* Parse an OpusTags packet (magic, vendor length and string, comment
 * count, each comment's length and bytes; anything after is padding or
 * binary data, allowed). Each length must fit what is left. Returns 0,
 * WISP_EOPUS_TAGS, or -EINVAL (NULL). Thread: any. */
WISP_API int wisp_opus_tags_parse(const uint8_t *data, size_t len,
                                  wisp_opus_tags_t *tags);

/* Comment `i` (0-based, "NAME=value" as stored) of parsed `tags`.
 * Returns 0 with *out set, or -ENOENT (i >= count). O(i). */
WISP_API int wisp_opus_tags_get(const wisp_opus_tags_t *tags, uint32_t i,
                                wisp_str_t *out);

/* Write an OpusTags packet with `vendor` (NUL-terminated; NULL means
 * "wisp") and `n` comments (NUL-terminated "NAME=value" strings) into
 * `out` (`cap` bytes). Returns its length, -ENOBUFS, or -EINVAL (`out`
 * NULL, `comments` NULL with n > 0, a comment without '='). */
WISP_API ssize_t wisp_opus_tags_write(const char *vendor,
                                      const char *const *comments, size_t n,
                                      uint8_t *out, size_t cap);

/* ---- muxer: Opus packets in, Ogg Opus pages out */

typedef struct wisp_opus_mux wisp_opus_mux_t;

typedef struct wisp_opus_mux_opts {
    const wisp_opus_head_t *head; /* required: channels, pre-skip, ... */
    uint32_t serial;              /* the Ogg serial number */
    const char *vendor;           /* OpusTags vendor; NULL: "wisp" */
    const char *const *comments;  /* OpusTags comments, "NAME=value" */
    size_t ncomments;
    uint32_t page_ms;             /* page duration, 0 means 100 ms (at
                                     most 60000) */
} wisp_opus_mux_opts_t;

/* Create a muxer that writes the headers at once (OpusHead on its own
 * page, then OpusTags ending its page; `cb` runs inside this call), then
 * audio pages. Flush policy: a page is finished when it holds at least
 * `page_ms` of audio and another packet arrives, or on
 * wisp_opus_mux_flush / wisp_opus_mux_finish. A streaming producer that
 * pauses calls wisp_opus_mux_flush, so no packet waits for the next one.
 *
 * Ownership: the caller owns the muxer and `arg`; `opts` and its strings
 * are read during the call only.
 * Returns the muxer, or NULL with errno EINVAL (`opts`, `opts->head` or
 * `cb` NULL, a head that does not write, a comment without '=', tags
 * over 64 KiB), ENOMEM, or EIO (`cb` failed on a header page). */
WISP_API wisp_opus_mux_t *wisp_opus_mux_create(const wisp_opus_mux_opts_t *o,
                                               wisp_ogg_page_cb cb,
                                               void *arg);

/* Free `m` without writing anything more. NULL is ignored. */
WISP_API void wisp_opus_mux_destroy(wisp_opus_mux_t *m);

/* Add one audio packet (validated with wisp_opus_packet_parse; its
 * duration advances the granule position). `cb` may run inside. Returns
 * 0, WISP_EOPUS_PACKET (refused, nothing written), WISP_ESTATE (after
 * finish), or the negative value `cb` returned. */
WISP_API int wisp_opus_mux_packet(wisp_opus_mux_t *m, const uint8_t *pkt,
                                  size_t len);

/* Finish the current page now if it holds packets. Returns 0 or the
 * negative value `cb` returned. */
WISP_API int wisp_opus_mux_flush(wisp_opus_mux_t *m);

/* End the stream: the held packets go out on a last page with the EOS
 * flag whose granule position is `end_trim` samples less than the
 * samples muxed (RFC 7845 §4.4: the decoder drops that many samples at
 * the end). With no packet held, an empty EOS page is written (only
 * possible with end_trim 0). Returns 0; -EINVAL when end_trim exceeds
 * the duration of the packets held for the last page; WISP_ESTATE when
 * already finished; or the negative value `cb` returned. */
WISP_API int wisp_opus_mux_finish(wisp_opus_mux_t *m, uint32_t end_trim);

/* Samples muxed so far (the granule position before end trimming,
 * without pre-skip subtracted). */
WISP_API uint64_t wisp_opus_mux_samples(const wisp_opus_mux_t *m);

/* ---- demuxer: Ogg Opus bytes in, Opus packets out */

typedef struct wisp_opus_demux wisp_opus_demux_t;

/* One audio packet. `data` is valid until the next call on the demuxer. */
typedef struct wisp_opus_demux_packet {
    const uint8_t *data;
    size_t len;
    uint32_t samples;   /* its duration at 48 kHz */
    int64_t granule;    /* its page's granule position when it is the
                           last packet ending on the page, else -1 */
    bool eos;           /* the last packet of the stream */
} wisp_opus_demux_packet_t;

/* Create a demuxer over an Ogg reader with `limits` (NULL: defaults).
 * Returns it, or NULL with errno EINVAL or ENOMEM. */
WISP_API wisp_opus_demux_t *wisp_opus_demux_create(
    const wisp_ogg_limits_t *limits);

/* Free `d`. NULL is ignored. */
WISP_API void wisp_opus_demux_destroy(wisp_opus_demux_t *d);

/* Read from `len` bytes at `buf`, exactly as wisp_ogg_reader_read does
 * (any split; *used set to the bytes taken; call again with the rest, or
 * with len 0, until it returns 0). The first packet must be OpusHead
 * (WISP_EOPUS_HEAD otherwise), the second OpusTags and it must end its
 * page (WISP_EOPUS_TAGS otherwise); both are kept (wisp_opus_demux_head,
 * wisp_opus_demux_tags). Every later packet is validated as an Opus
 * packet (WISP_EOPUS_PACKET). The first page with a granule position
 * must not put the stream start before zero unless it is the last page
 * (RFC 7845 §4.5: WISP_EOPUS_GRANULE). After the stream's end of stream,
 * everything further is ignored (returns 0).
 *
 * Returns 1 with *pkt set, 0 when more input is needed, or a negative
 * code: the reader's WISP_EOGG_* codes, the WISP_EOPUS_* codes above,
 * -EINVAL. Every error is sticky. */
WISP_API int wisp_opus_demux_read(wisp_opus_demux_t *d, const void *buf,
                                  size_t len, size_t *used,
                                  wisp_opus_demux_packet_t *pkt);

/* The input has ended: 0 when it ended cleanly (an EOS page was read, or
 * the input stopped between pages after the headers), else
 * WISP_EOGG_TRUNCATED (inside a page or packet), WISP_EOPUS_HEAD (no
 * OpusHead yet), WISP_EOPUS_TAGS (no OpusTags yet) or the sticky error. */
WISP_API int wisp_opus_demux_finish(const wisp_opus_demux_t *d);

/* The parsed OpusHead, or NULL before it was read. Valid while `d`. */
WISP_API const wisp_opus_head_t *wisp_opus_demux_head(
    const wisp_opus_demux_t *d);

/* The parsed OpusTags (pointing into the demuxer's copy), or NULL before
 * it was read. Valid while `d`. */
WISP_API const wisp_opus_tags_t *wisp_opus_demux_tags(
    const wisp_opus_demux_t *d);

/* Samples of the audio packets returned so far. */
WISP_API uint64_t wisp_opus_demux_samples(const wisp_opus_demux_t *d);

/* The granule position of the last page read (-1 before any), so that
 * a file's decoded length is last granule - pre_skip. */
WISP_API int64_t wisp_opus_demux_granule(const wisp_opus_demux_t *d);

#ifdef __cplusplus
}
#endif
#endif
