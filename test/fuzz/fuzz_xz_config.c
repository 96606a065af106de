/* libFuzzer target for the INI parser of examples/xiaozhi/config.c.
 *
 * The input is a config file. Properties: the parser returns 0 or -1;
 * an error message is NUL-terminated, starts with the file name and a
 * line number no larger than the number of lines, and every string key
 * of the result stays NUL-terminated within its buffer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    xz_config_t c;
    xz_config_defaults(&c, "/www");
    char err[600];
    memset(err, 'x', sizeof err);
    int r = xz_config_parse(&c, "f.ini", text, size, err, sizeof err);
    if (r != 0 && r != -1)
        __builtin_trap();
    if (r < 0) {
        if (!memchr(err, 0, sizeof err) || strncmp(err, "f.ini:", 6))
            __builtin_trap();
        unsigned long line = strtoul(err + 6, NULL, 10);
        size_t lines = 1;
        for (size_t i = 0; i < size; i++)
            lines += text[i] == '\n';
        if (line < 1 || line > lines)
            __builtin_trap();
    }
    if (!memchr(c.host, 0, sizeof c.host) ||
        !memchr(c.llm_text, 0, sizeof c.llm_text) ||
        !memchr(c.public_ws_url, 0, sizeof c.public_ws_url) ||
        !memchr(c.emotion, 0, sizeof c.emotion))
        __builtin_trap();
    free(text);
    return 0;
}
