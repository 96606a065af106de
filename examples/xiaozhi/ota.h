/* xiaozhi-server — OTA / configuration endpoint (PROTOCOL.md §2): the
 * clock, the WebSocket URL + token + framing version, firmware offers
 * from a directory, the optional activation flow, firmware download,
 * and the CORS headers browsers need. */
#ifndef XZ_OTA_H
#define XZ_OTA_H

#include <stddef.h>

#include <wisp.h>

/* Route arguments: which listener a request came through. */
typedef struct xz_ota_site {
    int second_port;   /* the server.http_port listener */
} xz_ota_site_t;

/* Compare dot-separated integer versions ("2.4.10" > "2.4.9"; when all
 * shared components are equal the longer is newer, §2.2). A component
 * that is not a decimal number makes the version invalid. Returns -1,
 * 0, 1, or -2 when either is invalid. */
int xz_version_cmp(const char *a, const char *b);

/* Add the CORS headers of §2.3 (and the method list for OPTIONS). */
void xz_cors(wisp_res_t *res, int preflight);

/* The WebSocket URL handed out for a request (public_ws_url, else
 * ws://<Host>/xiaozhi/v1/ with the main port when the request came
 * through the second port). */
void xz_ota_ws_url(wisp_req_t *req, const xz_ota_site_t *site, char *out,
                   size_t cap);

/* Handlers; `arg` is an xz_ota_site_t. */
void xz_ota_route(wisp_req_t *req, wisp_res_t *res, void *arg);
void xz_ota_activate_route(wisp_req_t *req, wisp_res_t *res, void *arg);
void xz_ota_bind_route(wisp_req_t *req, wisp_res_t *res, void *arg);
void xz_ota_download_route(wisp_req_t *req, wisp_res_t *res, void *arg);

/* Free the activation table (at exit). */
void xz_ota_cleanup(void);

#endif
