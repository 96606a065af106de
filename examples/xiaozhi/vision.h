/* xiaozhi-server — the vision endpoint /mcp/vision/explain. See vision.c
 * for the answers it gives. */
#ifndef XZ_VISION_H
#define XZ_VISION_H

#include <stddef.h>
#include <stdint.h>

#include <wisp.h>

/* "jpeg", "png", "gif", "bmp", "tiff", "webp" from the file signature,
 * or NULL. */
const char *xz_image_type(const uint8_t *p, size_t n);

/* The route handler (POST streams the body; GET and OPTIONS answer at
 * once). Register it with stream_body and a max_body_bytes above
 * vision.max_image_bytes. */
void xz_vision_route(wisp_req_t *req, wisp_res_t *res, void *arg);

/* The body limit of the route (and of the multipart parser). */
uint64_t xz_vision_max_body(void);

#endif
