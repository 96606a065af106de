/* xiaozhi-server pacing: pre-buffer, anchored schedule without drift,
 * re-anchor after a dry queue only, never more than 2.4 s ahead. */
#include "../test.h"
#include "pacing.h"

/* Simulate a reply: `n` packets all ready at t0, a timer that fires
 * `late` ms after it was asked to. Returns the largest audio-ahead
 * seen and checks the schedule. */
static uint64_t run(xz_pacer_t *p, uint64_t t0, int n, uint64_t late,
                    uint64_t *send_times)
{
    uint64_t now = t0, max_ahead = 0;
    for (int i = 0; i < n; i++) {
        uint64_t w;
        while ((w = xz_pacer_wait(p, now)) != 0)
            now += w + late;
        xz_pacer_sent(p, now);
        send_times[i] = now;
        uint64_t a = xz_pacer_ahead(p, now);
        if (a > max_ahead)
            max_ahead = a;
    }
    return max_ahead;
}

int main(void)
{
    xz_pacer_t p;
    uint64_t t[400];

    /* 5 packets at once, then one per 60 ms from the anchor */
    xz_pacer_init(&p, 60, 5);
    uint64_t ahead = run(&p, 1000, 100, 0, t);
    for (int i = 0; i < 5; i++)
        CHECK_EQ_INT(t[i], 1000);
    for (int i = 5; i < 100; i++)
        CHECK_EQ_INT(t[i], 1000 + (uint64_t)(i - 4) * 60);
    CHECK_EQ_INT(ahead, 300);  /* the pre-buffer, never more */
    /* average interval after the pre-buffer is exactly the frame */
    CHECK_EQ_INT((t[99] - t[5]) / 94, 60);

    /* a timer that always fires 7 ms late: no drift accumulates (the due
     * times come from the anchor, not from the previous send) */
    xz_pacer_init(&p, 60, 5);
    run(&p, 0, 200, 7, t);
    for (int i = 5; i < 200; i++)
        CHECK_MSG(t[i] - (uint64_t)(i - 4) * 60 <= 7, "packet %d at %llu",
                  i, (unsigned long long)t[i]);

    /* a stall of 1 s: the backlog goes out at once but never ahead of the
     * anchored schedule (ahead stays <= prebuffer + 1 frames) */
    xz_pacer_init(&p, 60, 5);
    uint64_t now = 0;
    for (int i = 0; i < 20; i++) {
        uint64_t w;
        while ((w = xz_pacer_wait(&p, now)) != 0)
            now += w;
        xz_pacer_sent(&p, now);
    }
    now += 1000;
    uint64_t lateness = 0;
    for (int i = 0; i < 40; i++) {
        uint64_t w;
        while ((w = xz_pacer_wait(&p, now)) != 0)
            now += w;
        uint64_t l = xz_pacer_sent(&p, now);
        if (l > lateness)
            lateness = l;
        CHECK(xz_pacer_ahead(&p, now) <= 360);
    }
    CHECK(lateness >= 900);  /* the stall is reported as lateness */

    /* dry queue refilled later than one frame: re-anchor (pre-buffer
     * again), so the backlog is not burst out */
    xz_pacer_init(&p, 60, 5);
    now = 0;
    for (int i = 0; i < 10; i++) {
        uint64_t w;
        while ((w = xz_pacer_wait(&p, now)) != 0)
            now += w;
        xz_pacer_sent(&p, now);
    }
    xz_pacer_dry(&p);
    now += 2000;                          /* next sentence 2 s later */
    CHECK_EQ_INT(xz_pacer_wait(&p, now), 0);
    CHECK_EQ_INT(p.anchor_ms, now);
    CHECK_EQ_INT(p.idx, 0);
    /* dry but refilled in time: no re-anchor */
    xz_pacer_init(&p, 60, 5);
    now = 0;
    for (int i = 0; i < 10; i++) {
        uint64_t w;
        while ((w = xz_pacer_wait(&p, now)) != 0)
            now += w;
        xz_pacer_sent(&p, now);
    }
    xz_pacer_dry(&p);
    now += 30;
    xz_pacer_wait(&p, now);
    CHECK_EQ_INT(p.anchor_ms, 0);
    CHECK_EQ_INT(p.idx, 10);

    /* the 2.4 s bound: prebuffer is clamped so prebuffer x frame < 2.4 s */
    xz_pacer_init(&p, 120, 40);
    CHECK_EQ_INT(p.prebuffer, 19);
    CHECK(run(&p, 0, 100, 0, t) < 2400 + 120);
    xz_pacer_init(&p, 20, 100);
    CHECK_EQ_INT(p.prebuffer, 38);   /* the device queue: 40 packets */
    xz_pacer_init(&p, 60, 0);
    run(&p, 0, 3, 0, t);
    CHECK_EQ_INT(t[0], 60);          /* no pre-buffer: paced from the start */
    xz_pacer_init(&p, 0, 5);
    CHECK_EQ_INT(p.frame_ms, 60);
    return t_done("xz_pacing");
}
