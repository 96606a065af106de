/* multipart_dump: parse a multipart/form-data body read from stdin with
 * wisp's parser and print what it found, for the reference test
 * (test/integration/multipart_ref_test.py compares it with Python's email
 * package).
 *
 *   multipart_dump CONTENT-TYPE SEED < body
 *
 * The boundary comes from CONTENT-TYPE through wisp_multipart_boundary.
 * The body is fed in random slices (1..SEED-driven sizes; SEED 0 feeds
 * it whole). Output: one line per part,
 *   P <name> <filename or -> <content-type or -> <content>
 * each field in hex ("-" when absent, "" hex for empty is "="), then
 *   RC <result of feed/finish>
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wisp/multipart.h"

static char content[1 << 22];
static size_t content_len;

static void hex(wisp_str_t s)
{
    putchar(' ');
    if (!s.ptr) {
        putchar('-');
        return;
    }
    if (!s.len)
        putchar('=');
    for (size_t i = 0; i < s.len; i++)
        printf("%02x", (unsigned char)s.ptr[i]);
}

static int begin(const wisp_multipart_part_t *p, void *arg)
{
    (void)p;
    (void)arg;
    content_len = 0;
    return 0;
}

static int data(const wisp_multipart_part_t *p, const void *d, size_t n,
                void *arg)
{
    (void)p;
    (void)arg;
    if (content_len + n > sizeof content)
        return -ENOBUFS;
    memcpy(content + content_len, d, n);
    content_len += n;
    return 0;
}

static int end(const wisp_multipart_part_t *p, void *arg)
{
    (void)arg;
    wisp_str_t c = {content, content_len};
    fputs("P", stdout);
    hex(p->name);
    hex(p->filename);
    hex(p->content_type);
    hex(c);
    putchar('\n');
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s CONTENT-TYPE SEED < body\n", argv[0]);
        return 2;
    }
    static char body[1 << 23];
    size_t n = fread(body, 1, sizeof body, stdin);
    unsigned seed = (unsigned)strtoul(argv[2], NULL, 10);
    srand(seed);
    static char hbuf[4096];
    wisp_multipart_config_t cfg = {0};
    cfg.on_part_begin = begin;
    cfg.on_part_data = data;
    cfg.on_part_end = end;
    cfg.header_buf = hbuf;
    cfg.header_buf_size = sizeof hbuf;
    wisp_multipart_t mp;
    wisp_str_t ct = {argv[1], strlen(argv[1])}, b;
    int rc = wisp_multipart_boundary(ct, &b);
    if (rc == 0)
        rc = wisp_multipart_init(&mp, b, &cfg);
    size_t off = 0;
    while (rc == 0 && off < n) {
        size_t k = seed ? 1 + (size_t)rand() % (rand() % 2 ? 7 : 300)
                        : n - off;
        if (k > n - off)
            k = n - off;
        /* A fresh copy, so the parser cannot rely on earlier slices. */
        char *slice = malloc(k);
        if (!slice)
            return 2;
        memcpy(slice, body + off, k);
        rc = wisp_multipart_feed(&mp, slice, k);
        free(slice);
        off += k;
    }
    if (rc == 0)
        rc = wisp_multipart_finish(&mp);
    printf("RC %d\n", rc);
    return 0;
}
