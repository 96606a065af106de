/* Content-Type by file extension: a small table of the types a web
 * server meets most, searched case-insensitively. */
#include <strings.h>
#include <string.h>

#include "http/http_int.h"

static const struct {
    const char *ext;
    const char *type;
} types[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"xml", "application/xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"opus", "audio/opus"},
    {"wav", "audio/wav"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"bin", "application/octet-stream"},
};

const char *wisp__mime_type(const char *path, size_t len)
{
    const char *dot = NULL;
    for (size_t i = len; i > 0; i--) {
        char ch = path[i - 1];
        if (ch == '.') {
            dot = path + i;
            break;
        }
        if (ch == '/')
            break;
    }
    if (dot) {
        size_t el = len - (size_t)(dot - path);
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strlen(types[i].ext) == el &&
                strncasecmp(types[i].ext, dot, el) == 0)
                return types[i].type;
    }
    return "application/octet-stream";
}
