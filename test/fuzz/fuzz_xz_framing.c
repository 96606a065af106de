/* libFuzzer target for examples/xiaozhi/framing.c and the Opus TOC parser
 * and packet VAD of vad.c.
 *
 * Byte 0 picks the framing version (1..4: 4 is unknown); the rest is one
 * binary WebSocket message. Properties checked, trapping when one fails:
 *   - decode accepts only what its contract allows: the payload lies
 *     inside the message, and its size is the message minus the header;
 *   - an accepted payload re-encoded with the same version and timestamp
 *     gives back the same message bytes (reserved bytes aside);
 *   - the TOC parser answers within R1-R5 (1..48 frames, at most 120 ms),
 *     and the VAD, fed the payload repeatedly, only ever reports its four
 *     events. Inputs live in a malloc'd copy of exactly their size, so an
 *     over-read is an ASan report. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "framing.h"
#include "vad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int version = 1 + data[0] % 4;
    size_t len = size - 1;
    uint8_t *msg = malloc(len ? len : 1);
    if (!msg)
        return 0;
    memcpy(msg, data + 1, len);
    const uint8_t *p;
    size_t plen;
    uint32_t ts;
    if (xz_frame_decode(version, msg, len, &p, &plen, &ts) == 0) {
        size_t h = xz_frame_header_len(version);
        if (version == 4 || p != msg + h || plen != len - h)
            __builtin_trap();
        uint8_t hdr[XZ_FRAME_MAX_HEADER];
        int hl = xz_frame_encode_header(version, ts, plen, hdr);
        if (hl != (int)h)
            __builtin_trap();
        /* reserved bytes are not checked on input (v3 byte 1, v2 4-7) */
        if (version == 3 && (hdr[0] != msg[0] || memcmp(hdr + 2, msg + 2, 2)))
            __builtin_trap();
        if (version == 2 && (memcmp(hdr, msg, 4) || memcmp(hdr + 8, msg + 8, 8)))
            __builtin_trap();
        xz_opus_info_t info;
        if (xz_opus_parse(p, plen, &info) == 0 &&
            (info.frames < 1 || info.frames > 48 ||
             info.duration_us > 120000 || info.config > 31))
            __builtin_trap();
        xz_opus_vad_t v;
        xz_vad_params_t prm = {.silence_ms = 200, .min_speech_ms = 60,
                               .default_frame_ms = 60};
        xz_vad_opus.reset(&v, &prm);
        for (int i = 0; i < 8; i++) {
            xz_vad_event_t e = xz_vad_opus.feed(&v, p, plen,
                                                (uint64_t)i * 60);
            if (e < XZ_VAD_NONE || e > XZ_VAD_DISCARD)
                __builtin_trap();
        }
        if (xz_vad_opus.tick(&v, 100000) > XZ_VAD_DISCARD)
            __builtin_trap();
    } else if (version == 1) {
        __builtin_trap();  /* v1 accepts every message */
    }
    free(msg);
    return 0;
}
