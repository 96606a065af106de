/* xiaozhi-server — downlink pacing (PROTOCOL.md §4.2), as a pure clock.
 *
 * The first `prebuffer` packets of a reply go out at once; packet k after
 * them is due at anchor + (k - prebuffer + 1) × frame_ms, counted from an
 * anchor taken when the first packet went out, so rounding never
 * accumulates. When the queue ran dry and the next packet arrives more
 * than one frame after it was due, the clock is re-anchored (the device
 * has played its buffer out; bursting the backlog would overrun it).
 * A timer that fires late does not re-anchor: the packets already due go
 * out together, still never ahead of the anchored schedule.
 *
 * Bound: a packet is never sent before its due time, so the audio sent
 * ahead of real time is at most prebuffer × frame_ms; xz_pacer_init
 * clamps prebuffer so that this stays under the device's 2.4 s queue
 * (40 packets whatever their duration, §3.5). */
#ifndef XZ_PACING_H
#define XZ_PACING_H

#include <stdint.h>

/* The device's decode queue: 40 packets. */
#define XZ_DEVICE_QUEUE_PACKETS 40

typedef struct xz_pacer {
    uint32_t frame_ms;
    uint32_t prebuffer;
    uint64_t anchor_ms;
    uint32_t idx;       /* packets sent since the anchor */
    uint8_t anchored;
    uint8_t dry;        /* the queue emptied after the last send */
} xz_pacer_t;

/* prebuffer is clamped to [0, XZ_DEVICE_QUEUE_PACKETS - 2] and to
 * (2400 / frame_ms) - 1 so that prebuffer × frame_ms < 2400. */
void xz_pacer_init(xz_pacer_t *p, uint32_t frame_ms, uint32_t prebuffer);

/* A new reply: the next packet takes a fresh anchor. */
void xz_pacer_reset(xz_pacer_t *p);

/* The queue has run dry (no packet to send now). */
void xz_pacer_dry(xz_pacer_t *p);

/* With a packet ready at `now`: 0 when it may go now, else the
 * milliseconds to wait. May take or move the anchor. */
uint64_t xz_pacer_wait(xz_pacer_t *p, uint64_t now);

/* The packet went out: returns how late it was against its due time
 * (ms, 0 when on time) and advances the index. */
uint64_t xz_pacer_sent(xz_pacer_t *p, uint64_t now);

/* Audio sent ahead of real time at `now` (ms; 0 when behind). */
uint64_t xz_pacer_ahead(const xz_pacer_t *p, uint64_t now);

#endif
