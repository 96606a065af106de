/* wisp — umbrella header: include this and nothing else. */
#ifndef WISP_H
#define WISP_H

#include "wisp/common.h"
#include "wisp/log.h"
#include "wisp/loop.h"
#include "wisp/conn.h"
#include "wisp/http.h"
#include "wisp/server.h"
#include "wisp/future.h"
#include "wisp/pool.h"
#include "wisp/sem.h"
#include "wisp/rate.h"
#include "wisp/shared.h"
#include "wisp/ws.h"
#include "wisp/json.h"
#include "wisp/metrics.h"
#include "wisp/multipart.h"
#include "wisp/form.h"
#include "wisp/cors.h"
#include "wisp/ogg.h"
#include "wisp/opus.h"
#include "wisp/process.h"
#include "wisp/sse.h"
#include "wisp/client.h"
#include "wisp/middleware.h"
#include "wisp/cookie.h"
#include "wisp/negotiate.h"
#include "wisp/reply.h"

#endif
