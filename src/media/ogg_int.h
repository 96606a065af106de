/* Helpers shared by the files of src/media/: little-endian fields of Ogg
 * pages and Opus headers, and the writer's hooks for the Opus muxer. */
#ifndef WISP_MEDIA_OGG_INT_H
#define WISP_MEDIA_OGG_INT_H

#include <stdint.h>

#include "wisp/ogg.h"

void wisp__ogg_put32(uint8_t *p, uint32_t v);
void wisp__ogg_put64(uint8_t *p, uint64_t v);
uint32_t wisp__ogg_get32(const uint8_t *p);
uint64_t wisp__ogg_get64(const uint8_t *p);

/* Finish the page now with the EOS flag and granule position `granule`
 * (a page with no segment when it holds none). Returns 0, WISP_ESTATE, or
 * cb's error. */
int wisp__ogg_writer_end(wisp_ogg_writer_t *w, int64_t granule);

/* Lacing values on the page being filled. */
unsigned wisp__ogg_writer_held(const wisp_ogg_writer_t *w);

#endif
