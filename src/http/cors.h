/* Internal: CORS, a built-in middleware (src/http/cors.c). */
#ifndef WISP_HTTP_CORS_H
#define WISP_HTTP_CORS_H

#include "http/http_int.h"

typedef struct wisp__cors wisp__cors;

void wisp__cors_free(wisp__cors *list);

#endif
