/* xiaozhi-server — binary audio framing versions 1, 2 and 3
 * (PROTOCOL.md §3.4), both directions.
 *
 *   v1: the WebSocket payload is one Opus packet, no header.
 *   v2: 16 bytes, big-endian: u16 version (2), u16 type (0 = audio),
 *       u32 reserved, u32 timestamp (ms), u32 payload_size.
 *   v3: 4 bytes: u8 type (0), u8 reserved, u16 payload_size (big-endian).
 *
 * The device trusts payload_size, so the encoder writes it exactly; the
 * decoder drops frames whose length is not header + payload_size, or
 * whose type is not audio. Pure functions; any thread. */
#ifndef XZ_FRAMING_H
#define XZ_FRAMING_H

#include <stddef.h>
#include <stdint.h>

#define XZ_FRAME_MAX_HEADER 16

/* Header bytes of framing `version` (1, 2, 3); 0 for v1 and for an
 * unknown version. */
size_t xz_frame_header_len(int version);

/* Decode one binary WebSocket message. On success sets *payload and *plen to
 * the Opus packet inside `data` (no copy) and *timestamp (v2; else 0) and
 * returns 0. Returns -1 for a frame to drop: shorter than the header,
 * payload_size not matching the length, a type other than audio, a v2
 * version field other than 2, or an unknown framing version. A v1 frame
 * of length 0 decodes to an empty packet (the browser client's end of
 * recording, §10.6). */
int xz_frame_decode(int version, const uint8_t *data, size_t len,
                    const uint8_t **payload, size_t *plen,
                    uint32_t *timestamp);

/* Write the header of a downlink frame for a `plen`-byte packet into
 * `hdr` (XZ_FRAME_MAX_HEADER bytes). Returns the header length (0 for
 * v1), or -1 when `plen` does not fit the version's size field or the
 * version is unknown. */
int xz_frame_encode_header(int version, uint32_t timestamp, size_t plen,
                           uint8_t hdr[XZ_FRAME_MAX_HEADER]);

#endif
