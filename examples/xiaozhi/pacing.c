/* xiaozhi-server — downlink pacing clock. */
#include "pacing.h"

void xz_pacer_init(xz_pacer_t *p, uint32_t frame_ms, uint32_t prebuffer)
{
    if (!frame_ms)
        frame_ms = 60;
    uint32_t cap = 2400 / frame_ms;
    cap = cap > 1 ? cap - 1 : 0;
    if (cap > XZ_DEVICE_QUEUE_PACKETS - 2)
        cap = XZ_DEVICE_QUEUE_PACKETS - 2;
    p->frame_ms = frame_ms;
    p->prebuffer = prebuffer < cap ? prebuffer : cap;
    xz_pacer_reset(p);
}

void xz_pacer_reset(xz_pacer_t *p)
{
    p->anchor_ms = 0;
    p->idx = 0;
    p->anchored = 0;
    p->dry = 0;
}

void xz_pacer_dry(xz_pacer_t *p)
{
    p->dry = 1;
}

static uint64_t due(const xz_pacer_t *p, uint32_t idx)
{
    if (idx < p->prebuffer)
        return p->anchor_ms;
    return p->anchor_ms + (uint64_t)(idx - p->prebuffer + 1) * p->frame_ms;
}

uint64_t xz_pacer_wait(xz_pacer_t *p, uint64_t now)
{
    if (!p->anchored || (p->dry && now > due(p, p->idx) + p->frame_ms)) {
        p->anchor_ms = now;
        p->idx = 0;
        p->anchored = 1;
    }
    p->dry = 0;
    uint64_t d = due(p, p->idx);
    return now >= d ? 0 : d - now;
}

uint64_t xz_pacer_sent(xz_pacer_t *p, uint64_t now)
{
    uint64_t d = due(p, p->idx);
    p->idx++;
    return now > d ? now - d : 0;
}

uint64_t xz_pacer_ahead(const xz_pacer_t *p, uint64_t now)
{
    if (!p->anchored)
        return 0;
    uint64_t sent = (uint64_t)p->idx * p->frame_ms;
    uint64_t played = now - p->anchor_ms;
    return sent > played ? sent - played : 0;
}
