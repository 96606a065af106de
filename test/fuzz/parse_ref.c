/* src/http/parse.c compiled a second time, without its SSE2 and SWAR
 * fast paths and under other names, so that fuzz_parse can check that
 * the fast paths give exactly the answers of the portable byte loops. */
#define WISP_NO_SIMD 1
#define WISP_NO_SWAR 1
#define wisp__parse_request wisp__parse_request_ref
#define wisp__pct_decode_path wisp__pct_decode_path_ref
#define wisp__pct_decode_query wisp__pct_decode_query_ref
#define wisp__method_lookup wisp__method_lookup_ref
#define wisp__parse_response wisp__parse_response_ref
#include "../../src/http/parse.c"
