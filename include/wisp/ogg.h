/* wisp — Ogg (RFC 3533) pages: a writer and an incremental reader.
 *
 * An Ogg stream is a sequence of pages. A page is a 27-byte header
 * ("OggS", version 0, flags, 64-bit granule position, serial number, page
 * sequence number, CRC, segment count), a table of lacing values (one
 * byte per segment, at most 255) and the body. A packet is a run of
 * segments ending with a lacing value below 255; a page whose last
 * lacing value is 255 leaves its last packet to be continued on the next
 * page (which then has the "continued" flag). The CRC is the 32-bit CRC
 * with polynomial 0x04C11DB7, not reflected, initial value 0, no final
 * xor, over the whole page with the CRC field taken as zero; it is not
 * zlib's CRC-32.
 *
 * The writer packs packets into pages and hands each finished page to a
 * callback. The reader takes the bytes of one physical stream in slices
 * of any size (an HTTP body as it arrives, down to one byte at a time)
 * and returns the packets of one logical stream, each checked against the
 * page CRC before it is handed out.
 *
 * Reader rules (the "documented rule" for garbage and loss):
 * - Strict (the default): the input must start with a page and each page
 *   must follow the previous one directly. Bytes that are not "OggS" where
 *   a page must start are WISP_EOGG_CAPTURE; a version other than 0 is
 *   WISP_EOGG_VERSION; a CRC mismatch is WISP_EOGG_CRC; a page sequence
 *   number that is not the previous one plus one, a page marked continued
 *   with no packet to continue, or a packet left unfinished by a page that
 *   is not marked continued is WISP_EOGG_SEQUENCE.
 * - Resync (limits.resync): where a page must start, the reader skips
 *   bytes up to the next "OggS" whose page passes the CRC, at most
 *   limits.max_skip_bytes of them in one run (more: WISP_EOGG_CAPTURE). A
 *   sequence gap or a continuation mismatch drops the packet that was
 *   being assembled (and the continued head of the page, which has no
 *   beginning), and reading goes on. Lost packets are never invented and
 *   a packet is never glued from pieces of two different packets.
 * - The reader follows one logical stream: the serial number of the first
 *   page it accepts. Pages of other serial numbers (a multiplexed stream)
 *   are checked and skipped. After a page with the end-of-stream flag, a
 *   page with the beginning-of-stream flag starts a new stream (chaining)
 *   and the reader follows its serial number.
 * - Limits: a page larger than limits.max_page_bytes is WISP_EOGG_PAGE_SIZE
 *   (seen from the header, before its body is read); a packet larger than
 *   limits.max_packet_bytes is WISP_EOGG_PACKET_SIZE. Memory: one page
 *   buffer (max_page_bytes) and one packet buffer (grown up to
 *   max_packet_bytes, only for packets that cross pages).
 * - wisp_ogg_reader_finish reports input that ended inside a page or
 *   inside a packet as WISP_EOGG_TRUNCATED.
 * Errors other than WISP_EOGG_TRUNCATED are sticky: every later call
 * returns the same error.
 *
 * Thread: a writer or reader is used by one thread at a time; distinct
 * objects are independent. wisp_ogg_crc is pure. */
#ifndef WISP_OGG_H
#define WISP_OGG_H

#include <stdbool.h>

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* wisp's Ogg error codes (in the WISP_E range, see common.h). */
enum {
    WISP_EOGG_CAPTURE = -4070,     /* no "OggS" where a page must start */
    WISP_EOGG_VERSION = -4071,     /* page version is not 0 */
    WISP_EOGG_CRC = -4072,         /* page CRC does not match */
    WISP_EOGG_SEQUENCE = -4073,    /* page lost or continuation broken */
    WISP_EOGG_PAGE_SIZE = -4074,   /* page over max_page_bytes */
    WISP_EOGG_PACKET_SIZE = -4075, /* packet over max_packet_bytes */
    WISP_EOGG_TRUNCATED = -4076,   /* input ended inside a page/packet */
};

/* Page header flags (RFC 3533 §6). */
#define WISP_OGG_CONTINUED 0x01
#define WISP_OGG_BOS 0x02
#define WISP_OGG_EOS 0x04

/* The largest page: 27 header bytes, 255 lacing values, 255 * 255 body. */
#define WISP_OGG_MAX_PAGE 65307

/* The Ogg CRC of `len` bytes at `data`, continuing from `crc` (0 to
 * start). Table-driven. `data` may be NULL when len is 0. Thread: any. */
WISP_API uint32_t wisp_ogg_crc(uint32_t crc, const void *data, size_t len);

/* ---- writer */

typedef struct wisp_ogg_writer wisp_ogg_writer_t;

/* Receives one finished page (`len` bytes at `page`, valid only during
 * the call). Return 0, or a negative code that the writer call that
 * produced the page returns (the page counts as written). */
typedef int (*wisp_ogg_page_cb)(void *arg, const uint8_t *page, size_t len);

/* Create a writer for one logical stream with serial number `serial`,
 * handing pages to `cb(arg, ...)`. A page is finished when a packet
 * completed on it brings its body to `page_bytes` or more (0 means 4096),
 * when it reaches 255 lacing values (a longer packet continues on the
 * next page), or on wisp_ogg_writer_flush and WISP_OGG_WRITE_FLUSH/_EOS.
 * The first page has the BOS flag.
 *
 * Ownership: the caller owns the writer (free it with
 * wisp_ogg_writer_destroy) and `arg`. Holds one page buffer (64 KiB).
 * Returns the writer, or NULL with errno EINVAL (`cb` NULL) or ENOMEM. */
WISP_API wisp_ogg_writer_t *wisp_ogg_writer_create(uint32_t serial,
                                                   size_t page_bytes,
                                                   wisp_ogg_page_cb cb,
                                                   void *arg);

/* Free `w` without writing what it holds (call wisp_ogg_writer_flush or
 * end the stream first). NULL is ignored. */
WISP_API void wisp_ogg_writer_destroy(wisp_ogg_writer_t *w);

#define WISP_OGG_WRITE_FLUSH 0x1 /* finish the page after this packet */
#define WISP_OGG_WRITE_EOS 0x2   /* last packet: finish with EOS flag */

/* Add one packet of `len` bytes (0 allowed) whose end has granule
 * position `granule` (the page on which it ends carries the granule of
 * the last packet ending on it; a page on which no packet ends carries
 * -1). `flags` is 0 or WISP_OGG_WRITE_FLUSH and/or WISP_OGG_WRITE_EOS.
 * The data is copied; `cb` runs inside this call for each page finished.
 * Returns 0; -EINVAL when `data` is NULL with len > 0 or flags has other
 * bits; WISP_ESTATE after the EOS packet; -EMSGSIZE for a packet longer
 * than 16 MiB; or the first negative value `cb` returned. */
WISP_API int wisp_ogg_writer_packet(wisp_ogg_writer_t *w, const void *data,
                                    size_t len, int64_t granule,
                                    unsigned flags);

/* Finish the current page now if it holds any segment (`cb` runs inside
 * this call). Returns 0 (also when there was nothing to write), or the
 * negative value `cb` returned. */
WISP_API int wisp_ogg_writer_flush(wisp_ogg_writer_t *w);

/* Pages finished so far. */
WISP_API uint32_t wisp_ogg_writer_pages(const wisp_ogg_writer_t *w);

/* ---- reader */

typedef struct wisp_ogg_reader wisp_ogg_reader_t;

typedef struct wisp_ogg_limits {
    size_t max_page_bytes;   /* 0: WISP_OGG_MAX_PAGE (64 KiB, any page);
                                smaller values refuse larger pages */
    size_t max_packet_bytes; /* 0: 1 MiB */
    bool resync;             /* skip garbage and survive lost pages */
    size_t max_skip_bytes;   /* resync only: 0 means 64 KiB */
} wisp_ogg_limits_t;

/* One packet. `data` points into the reader and is valid until the next
 * call on it. */
typedef struct wisp_ogg_packet {
    const uint8_t *data;
    size_t len;
    int64_t granule;    /* the page's granule position when this packet
                           is the last one ending on its page, else -1 */
    uint32_t serial;    /* logical stream */
    uint32_t page_seq;  /* sequence number of the page it ends on */
    uint32_t packet_no; /* 0 for the first packet of the stream */
    bool bos;           /* first packet of a stream whose first page has
                           the BOS flag */
    bool eos;           /* last packet of an EOS page */
    bool page_end;      /* last packet ending on its page */
} wisp_ogg_packet_t;

/* Create a reader with `limits` (NULL for the defaults).
 * Ownership: the caller frees it with wisp_ogg_reader_destroy.
 * Returns the reader, or NULL with errno EINVAL (max_page_bytes under 282,
 * which no page with a full lacing table fits) or ENOMEM. */
WISP_API wisp_ogg_reader_t *wisp_ogg_reader_create(
    const wisp_ogg_limits_t *limits);

/* Free `r`. NULL is ignored. */
WISP_API void wisp_ogg_reader_destroy(wisp_ogg_reader_t *r);

/* Read from `len` bytes at `buf` (any split of the stream; len 0 asks for
 * a packet already buffered). Sets *used to the bytes taken (all of them
 * unless a packet is returned). Call it again with the rest, and with
 * len 0 until it returns 0, to drain packets of a page already read.
 *
 * Returns 1 with *pkt set (its data valid until the next call on `r`); 0
 * when every byte was taken and no packet is ready; or a negative code:
 * WISP_EOGG_CAPTURE, _VERSION, _CRC, _SEQUENCE, _PAGE_SIZE, _PACKET_SIZE
 * (see the rules above; sticky), -ENOMEM (the packet buffer could not
 * grow; sticky), or -EINVAL (`r`, `used` or `pkt` NULL, or `buf` NULL
 * with len > 0). */
WISP_API int wisp_ogg_reader_read(wisp_ogg_reader_t *r, const void *buf,
                                  size_t len, size_t *used,
                                  wisp_ogg_packet_t *pkt);

/* The input has ended. Returns 0 when it ended between pages with no
 * packet left unfinished (packets still buffered do not count: drain them
 * first), WISP_EOGG_TRUNCATED otherwise, or the sticky error. */
WISP_API int wisp_ogg_reader_finish(const wisp_ogg_reader_t *r);

/* Bytes skipped in resync mode, and pages of other logical streams
 * skipped, since the reader was created. */
WISP_API uint64_t wisp_ogg_reader_skipped_bytes(const wisp_ogg_reader_t *r);
WISP_API uint64_t wisp_ogg_reader_skipped_pages(const wisp_ogg_reader_t *r);

#ifdef __cplusplus
}
#endif
#endif
