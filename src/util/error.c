/* wisp_strerror: names of errno values and wisp's own WISP_E* codes. */
#include <string.h>

#include "wisp/common.h"
#include "wisp/json.h"
#include "wisp/multipart.h"
#include "wisp/ogg.h"
#include "wisp/opus.h"

const char *wisp_strerror(int err)
{
    switch (err) {
    case 0: return "success";
    case WISP_EPARSE: return "malformed HTTP message";
    case WISP_ETOOLONG_LINE: return "request line too long";
    case WISP_ETOOLONG_HEAD: return "header section too large";
    case WISP_ETOOMANY_HEADERS: return "too many header fields";
    case WISP_EMETHOD: return "method not implemented";
    case WISP_EVERSION: return "HTTP version not supported";
    case WISP_EBODY_TOO_LARGE: return "request body too large";
    case WISP_ECLOSED: return "connection closed";
    case WISP_ESTATE: return "operation not valid in this state";
    case WISP_EEXPECT: return "expectation not supported";
    case WISP_ECODING: return "transfer coding not implemented";
    case WISP_EJSON_SYNTAX: return "malformed JSON";
    case WISP_EJSON_DEPTH: return "JSON nested too deeply";
    case WISP_EJSON_TYPE: return "JSON value of another type";
    case WISP_EMULTIPART_SYNTAX: return "malformed multipart body";
    case WISP_EMULTIPART_TRUNCATED:
        return "multipart body ends before its close delimiter";
    case WISP_EMULTIPART_PARTS: return "too many multipart parts";
    case WISP_EMULTIPART_HEADER: return "multipart part header too large";
    case WISP_EMULTIPART_PART_SIZE: return "multipart part too large";
    case WISP_EMULTIPART_TOTAL: return "multipart body too large";
    case WISP_EMULTIPART_BOUNDARY:
        return "not multipart/form-data with a valid boundary";
    case WISP_EOGG_CAPTURE: return "no Ogg page where one must start";
    case WISP_EOGG_VERSION: return "unknown Ogg page version";
    case WISP_EOGG_CRC: return "Ogg page CRC mismatch";
    case WISP_EOGG_SEQUENCE: return "Ogg page lost or continuation broken";
    case WISP_EOGG_PAGE_SIZE: return "Ogg page too large";
    case WISP_EOGG_PACKET_SIZE: return "Ogg packet too large";
    case WISP_EOGG_TRUNCATED: return "Ogg stream ends inside a page or packet";
    case WISP_EOPUS_PACKET: return "malformed Opus packet";
    case WISP_EOPUS_MISMATCH:
        return "Opus packets differ in configuration or channels";
    case WISP_EOPUS_DURATION: return "Opus packet over 120 ms";
    case WISP_EOPUS_HEAD: return "missing or malformed OpusHead";
    case WISP_EOPUS_TAGS: return "missing or malformed OpusTags";
    case WISP_EOPUS_GRANULE: return "invalid Ogg Opus granule position";
    default: break;
    }
    if (err < 0 && err > WISP_EBASE) {
        /* strerror returns static strings for known codes in glibc and
         * musl; unknown codes share a buffer, acceptable for a name. */
        return strerror(-err);
    }
    return "unknown error";
}

const char *wisp_version(void)
{
    return "0.1.0";
}
