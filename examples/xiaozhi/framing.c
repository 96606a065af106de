/* xiaozhi-server — binary framing v1/v2/v3. */
#include "framing.h"

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
           (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

size_t xz_frame_header_len(int version)
{
    return version == 2 ? 16 : version == 3 ? 4 : 0;
}

int xz_frame_decode(int version, const uint8_t *data, size_t len,
                    const uint8_t **payload, size_t *plen,
                    uint32_t *timestamp)
{
    *timestamp = 0;
    switch (version) {
    case 1:
        *payload = data;
        *plen = len;
        return 0;
    case 2: {
        if (len < 16)
            return -1;
        unsigned ver = (unsigned)data[0] << 8 | data[1];
        unsigned type = (unsigned)data[2] << 8 | data[3];
        uint32_t size = be32(data + 12);
        if (ver != 2 || type != 0 || (uint64_t)size != (uint64_t)(len - 16))
            return -1;
        *timestamp = be32(data + 8);
        *payload = data + 16;
        *plen = size;
        return 0;
    }
    case 3: {
        if (len < 4)
            return -1;
        size_t size = (size_t)data[2] << 8 | data[3];
        if (data[0] != 0 || size != len - 4)
            return -1;
        *payload = data + 4;
        *plen = size;
        return 0;
    }
    default:
        return -1;
    }
}

int xz_frame_encode_header(int version, uint32_t timestamp, size_t plen,
                           uint8_t hdr[XZ_FRAME_MAX_HEADER])
{
    switch (version) {
    case 1:
        return 0;
    case 2:
        if (plen > UINT32_MAX)
            return -1;
        hdr[0] = 0;
        hdr[1] = 2;
        hdr[2] = 0;
        hdr[3] = 0;
        put32(hdr + 4, 0);
        put32(hdr + 8, timestamp);
        put32(hdr + 12, (uint32_t)plen);
        return 16;
    case 3:
        if (plen > 0xffff)
            return -1;
        hdr[0] = 0;
        hdr[1] = 0;
        hdr[2] = (uint8_t)(plen >> 8);
        hdr[3] = (uint8_t)plen;
        return 4;
    default:
        return -1;
    }
}
