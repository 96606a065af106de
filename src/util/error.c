/* wisp_strerror: names of errno values and wisp's own WISP_E* codes. */
#include <string.h>

#include "wisp/common.h"
#include "wisp/json.h"
#include "wisp/multipart.h"

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
