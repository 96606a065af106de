/* Shared by src/media/opus_packet.c and opus_repack.c. */
#ifndef WISP_MEDIA_OPUS_INT_H
#define WISP_MEDIA_OPUS_INT_H

#include "wisp/opus.h"

/* Write frames `frame[0..m)` (lengths `flen`, each <= 1275, together at
 * most 120 ms, m >= 1) under TOC configuration and stereo flag `toc` as
 * one packet: code 0 when m is 1 and !code3, else code 3 (CBR when all
 * lengths are equal, else VBR), without padding. Returns its length or
 * -ENOBUFS. */
ssize_t wisp__opus_build(uint8_t toc, const uint8_t *const *frame,
                         const size_t *flen, size_t m, bool code3,
                         uint8_t *out, size_t cap);

#endif
