/* xiaozhi-server framing: v1/v2/v3 both directions (PROTOCOL.md §3.4),
 * each decode case run at a guard page so an over-read faults. */
#include <string.h>

#include "../test.h"
#include "framing.h"

typedef struct row {
    const char *name;
    int version;
    const char *in;
    size_t len;
    int ok;
    size_t off, plen;   /* payload position and size when ok */
    uint32_t ts;
} row;

#define R(n, v, s, ok, off, pl, ts) {n, v, s, sizeof(s) - 1, ok, off, pl, ts}

static const row rows[] = {
    R("v1: the frame is the packet", 1, "\x58\x01\x02", 1, 0, 3, 0),
    R("v1: empty frame (browser end of recording)", 1, "", 1, 0, 0, 0),
    R("v2: 16-byte header, exact size", 2,
      "\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x13\x88\x00\x00\x00\x02"
      "\xAA\xBB", 1, 16, 2, 5000),
    R("v2: empty payload", 2,
      "\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
      1, 16, 0, 0),
    R("v2: payload_size larger than the frame is dropped", 2,
      "\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03"
      "\xAA\xBB", 0, 0, 0, 0),
    R("v2: payload_size smaller than the frame is dropped", 2,
      "\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
      "\xAA\xBB", 0, 0, 0, 0),
    R("v2: type 1 (JSON) is not audio", 2,
      "\x00\x02\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
      "\xAA", 0, 0, 0, 0),
    R("v2: version field 3 is refused", 2,
      "\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"
      "\xAA", 0, 0, 0, 0),
    R("v2: shorter than the header", 2, "\x00\x02\x00\x00\x00", 0, 0, 0, 0),
    R("v2: empty frame", 2, "", 0, 0, 0, 0),
    R("v2: huge payload_size", 2,
      "\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff"
      "\xAA", 0, 0, 0, 0),
    R("v3: 4-byte header", 3, "\x00\x00\x00\x03\x01\x02\x03", 1, 4, 3, 0),
    R("v3: empty payload", 3, "\x00\x00\x00\x00", 1, 4, 0, 0),
    R("v3: reserved byte is not checked (fuzzer find)", 3,
      "\x00\x80\x00\x00", 1, 4, 0, 0),
    R("v3: size mismatch", 3, "\x00\x00\x00\x04\x01\x02\x03", 0, 0, 0, 0),
    R("v3: type 1 refused", 3, "\x01\x00\x00\x01\x01", 0, 0, 0, 0),
    R("v3: shorter than the header", 3, "\x00\x00\x00", 0, 0, 0, 0),
    R("unknown version 4", 4, "\x00\x00\x00\x00", 0, 0, 0, 0),
};

int main(void)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row *r = &rows[i];
        t_guard g = t_guard_copy(r->in, r->len);
        const uint8_t *p = NULL;
        size_t pl = 99;
        uint32_t ts = 7;
        int rc = xz_frame_decode(r->version, (const uint8_t *)g.data, r->len,
                                 &p, &pl, &ts);
        CHECK_MSG((rc == 0) == r->ok, "%s: rc %d", r->name, rc);
        if (r->ok && rc == 0) {
            CHECK_MSG(p == (const uint8_t *)g.data + r->off, "%s: offset",
                      r->name);
            CHECK_MSG(pl == r->plen, "%s: size %zu", r->name, pl);
            CHECK_MSG(ts == r->ts, "%s: ts %u", r->name, ts);
        }
        t_guard_free(&g);
    }

    /* encode → decode round trip, exact payload_size, every version */
    uint8_t pkt[300], frame[XZ_FRAME_MAX_HEADER + 300];
    for (size_t i = 0; i < sizeof pkt; i++)
        pkt[i] = (uint8_t)(i * 7);
    for (int v = 1; v <= 3; v++) {
        for (size_t n = 0; n <= sizeof pkt; n += 37) {
            int h = xz_frame_encode_header(v, 123456, n, frame);
            CHECK_EQ_INT(h, (int)xz_frame_header_len(v));
            memcpy(frame + h, pkt, n);
            const uint8_t *p;
            size_t pl;
            uint32_t ts;
            CHECK_EQ_INT(xz_frame_decode(v, frame, (size_t)h + n, &p, &pl,
                                         &ts), 0);
            CHECK(pl == n && !memcmp(p, pkt, n));
            CHECK_EQ_INT(ts, v == 2 ? 123456 : 0);
        }
    }
    /* the spec's examples */
    CHECK_EQ_INT(xz_frame_encode_header(2, 5000, 180, frame), 16);
    CHECK(!memcmp(frame, "\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x13\x88"
                         "\x00\x00\x00\xB4", 16));
    CHECK_EQ_INT(xz_frame_encode_header(3, 5000, 180, frame), 4);
    CHECK(!memcmp(frame, "\x00\x00\x00\xB4", 4));
    CHECK_EQ_INT(xz_frame_encode_header(3, 0, 65536, frame), -1);
    CHECK_EQ_INT(xz_frame_encode_header(3, 0, 65535, frame), 4);
    CHECK_EQ_INT(xz_frame_encode_header(9, 0, 1, frame), -1);
    CHECK_EQ_INT(xz_frame_encode_header(1, 0, 1, frame), 0);
    return t_done("xz_framing");
}
