/* wisp — content negotiation basics (RFC 9110 §12.4, §12.5.1, §12.5.3).
 *
 * A server offers a few representations and picks the one the client
 * prefers: the media range that matches an offer most specifically
 * (type/subtype over type/[*] over [*]/[*]) gives its weight (q, 0..1,
 * at most three decimals; q=0 means "not acceptable"); the offer with
 * the highest weight wins, ties going to the earlier offer (the server's
 * own preference). Malformed elements (no '/', a bad q) are skipped
 * rather than failing the request. Media type parameters other than q
 * are ignored for matching.
 *
 * Thread: pure functions over their arguments, any thread (the _req_
 * forms read the request: its loop). */
#ifndef WISP_NEGOTIATE_H
#define WISP_NEGOTIATE_H

#include "common.h"
#include "http.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Choose among `offers` (a NULL-terminated list of "type/subtype") by
 * the Accept field value `accept`. Returns the index of the chosen
 * offer, or -ENOENT when none is acceptable (answer 406, or send the
 * first anyway). An absent header (accept.ptr NULL) or one with no
 * usable element accepts everything: 0. -EINVAL when offers is NULL or
 * empty. */
WISP_API int wisp_accept_choose(wisp_str_t accept,
                                const char *const *offers);

/* The same for the request's Accept header. */
WISP_API int wisp_req_accepts(const wisp_req_t *req,
                              const char *const *offers);

/* The weight, in thousandths (0..1000), that the Accept-Encoding value
 * `header` gives content coding `coding` ("gzip", "br", "identity"):
 * its own entry, else "*"; "identity" is acceptable (1000) unless named
 * or matched by "*" with q=0. An absent header (ptr NULL) accepts only
 * identity: wisp does not send a coding nobody asked for. Returns 0 for
 * coding NULL. */
WISP_API int wisp_accept_encoding_q(wisp_str_t header, const char *coding);

#ifdef __cplusplus
}
#endif
#endif
