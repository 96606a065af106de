/* In-process server test of a streaming multipart upload, the way the
 * xiaozhi vision endpoint receives it (PROTOCOL.md §5.7): a route with
 * stream_body feeds wisp_req_on_body's slices to a wisp_multipart_t.
 * Bodies: the ESP32's chunked body (1 MiB image, chunk sizes and socket
 * writes cut at random), the browser's Content-Length body with field
 * `image`, an image over the 5 MB part limit, a body that ends before its
 * close delimiter, a Content-Type without boundary; each answered, and
 * the server still serving afterwards. */
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <wisp.h>

#include "test.h"

#define IMAGE_MAX (5u * 1000 * 1000)

/* ------------------------------------------------------------ the route */

typedef struct upload {
    wisp_multipart_t mp;
    char hdr[2048];
    wisp_res_t *res;
    char question[256];
    size_t qlen;
    int in_question, in_image;
    uint64_t image_bytes;
    uint32_t image_sum; /* adler-like checksum of the image */
    uint32_t a, b;
    int err;
} upload;

static int part_begin(const wisp_multipart_part_t *p, void *arg)
{
    upload *u = arg;
    u->in_question = p->name.len == 8 && !memcmp(p->name.ptr, "question", 8);
    u->in_image = (p->name.len == 4 && !memcmp(p->name.ptr, "file", 4)) ||
                  (p->name.len == 5 && !memcmp(p->name.ptr, "image", 5));
    return 0;
}

static int part_data(const wisp_multipart_part_t *p, const void *d, size_t n,
                     void *arg)
{
    upload *u = arg;
    (void)p;
    if (u->in_question) {
        if (u->qlen + n >= sizeof u->question)
            return -E2BIG;
        memcpy(u->question + u->qlen, d, n);
        u->qlen += n;
    } else if (u->in_image) {
        const unsigned char *b = d;
        for (size_t i = 0; i < n; i++) {
            u->a = (u->a + b[i]) % 65521;
            u->b = (u->b + u->a) % 65521;
        }
        u->image_bytes += n;
    }
    return 0;
}

static void body_data(wisp_req_t *req, const void *data, size_t len,
                      void *arg)
{
    upload *u = arg;
    (void)req;
    if (!u->err)
        u->err = wisp_multipart_feed(&u->mp, data, len);
}

static void body_end(wisp_req_t *req, int status, void *arg)
{
    upload *u = arg;
    (void)req;
    if (status == 0) {
        if (!u->err)
            u->err = wisp_multipart_finish(&u->mp);
        char out[512];
        int n;
        if (u->err)
            n = snprintf(out, sizeof out,
                         "{\"success\":false,\"message\":\"%s\"}",
                         wisp_strerror(u->err));
        else
            n = snprintf(out, sizeof out,
                         "{\"success\":true,\"question\":\"%.*s\","
                         "\"bytes\":%llu,\"sum\":%u}",
                         (int)u->qlen, u->question,
                         (unsigned long long)u->image_bytes,
                         (unsigned)(u->b << 16 | u->a));
        wisp_res_send(u->res, 200, "application/json", out, (size_t)n);
    }
    /* On an error status wisp answers and owns the exchange again. */
    free(u);
}

static void on_explain(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_str_t boundary;
    if (wisp_multipart_boundary(wisp_req_header(req, "Content-Type"),
                                &boundary) < 0) {
        wisp_res_send(res, 400, "text/plain", "multipart expected\n", 19);
        return;
    }
    upload *u = calloc(1, sizeof *u);
    if (!u) {
        wisp_res_send(res, 500, NULL, NULL, 0);
        return;
    }
    u->res = res;
    u->a = 1;
    wisp_multipart_config_t mc = {0};
    mc.on_part_begin = part_begin;
    mc.on_part_data = part_data;
    mc.arg = u;
    mc.header_buf = u->hdr;
    mc.header_buf_size = sizeof u->hdr;
    mc.max_parts = 4;
    mc.max_part_bytes = IMAGE_MAX;
    int rc = wisp_multipart_init(&u->mp, boundary, &mc);
    if (rc == 0)
        rc = wisp_req_on_body(req, body_data, body_end, u);
    if (rc < 0) {
        free(u);
        wisp_res_send(res, 500, NULL, NULL, 0);
    }
}

static void on_hello(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    (void)arg;
    wisp_res_send(res, 200, "text/plain", "hi", 2);
}

/* ------------------------------------------------------------- clients */

static int dial(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

typedef struct sender {
    int fd;
    const char *buf;
    size_t len;
    unsigned seed;
} sender;

/* Write in pieces of random sizes (so the server sees many splits). */
static void *send_thread(void *arg)
{
    sender *s = arg;
    size_t off = 0;
    while (off < s->len) {
        size_t k = 1 + (size_t)rand_r(&s->seed) % 9000;
        if (k > s->len - off)
            k = s->len - off;
        ssize_t w = send(s->fd, s->buf + off, k, MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    return NULL;
}

static char answer[4096];

/* Send `len` bytes from a thread and read the answer until EOF. */
static const char *exchange(uint16_t port, const char *buf, size_t len,
                            unsigned seed)
{
    answer[0] = 0;
    int fd = dial(port);
    if (fd < 0)
        return answer;
    sender s = {fd, buf, len, seed};
    pthread_t t;
    pthread_create(&t, NULL, send_thread, &s);
    size_t n = 0;
    while (n + 1 < sizeof answer) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 60000) <= 0)
            break;
        ssize_t r = read(fd, answer + n, sizeof answer - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    answer[n] = 0;
    shutdown(fd, SHUT_RDWR);
    pthread_join(t, NULL);
    close(fd);
    return answer;
}

/* A growing buffer for building requests. */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void put(buf *b, const void *d, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            exit(2);
    }
    memcpy(b->p + b->len, d, n);
    b->len += n;
}

static void puts_(buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/* The image: JPEG markers around pseudo-random bytes full of CR, LF and
 * dashes, and proper prefixes of the delimiter. */
static void make_image(buf *img, size_t n, const char *boundary,
                       uint32_t *sum)
{
    unsigned seed = 7;
    puts_(img, "\xff\xd8\xff\xe0");
    while (img->len < n - 2) {
        int k = rand_r(&seed) % 16;
        if (k == 0) {
            char d[80];
            /* A proper prefix, then 'Q' (in neither boundary) so that
             * the random byte after it cannot complete the delimiter. */
            int l = snprintf(d, sizeof d, "\r\n--%.*sQ",
                             rand_r(&seed) % (int)strlen(boundary),
                             boundary);
            put(img, d, (size_t)l);
        } else if (k < 3) {
            puts_(img, "\r\n-");
        } else {
            char c = (char)rand_r(&seed);
            put(img, &c, 1);
        }
    }
    img->len = n - 2;
    puts_(img, "\xff\xd9");
    uint32_t a = 1, s2 = 0;
    for (size_t i = 0; i < img->len; i++) {
        a = (a + (unsigned char)img->p[i]) % 65521;
        s2 = (s2 + a) % 65521;
    }
    *sum = s2 << 16 | a;
}

#define ESP_B "----ESP32_CAMERA_BOUNDARY"

static void esp_body(buf *body, const buf *img, const char *question)
{
    puts_(body, "--" ESP_B "\r\n"
                "Content-Disposition: form-data; name=\"question\"\r\n\r\n");
    puts_(body, question);
    puts_(body, "\r\n--" ESP_B "\r\n"
                "Content-Disposition: form-data; name=\"file\"; "
                "filename=\"camera.jpg\"\r\n"
                "Content-Type: image/jpeg\r\n\r\n");
    put(body, img->p, img->len);
    puts_(body, "\r\n--" ESP_B "--\r\n");
}

/* The request with a chunked body, chunk sizes at random. */
static void chunked_request(buf *req, const buf *body, unsigned seed)
{
    puts_(req, "POST /mcp/vision/explain HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Device-Id: a4:cf:12:34:56:78\r\n"
               "Content-Type: multipart/form-data; boundary=" ESP_B "\r\n"
               "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
    size_t off = 0;
    while (off < body->len) {
        size_t k = 1 + (size_t)rand_r(&seed) % 5000;
        if (k > body->len - off)
            k = body->len - off;
        char h[32];
        snprintf(h, sizeof h, "%zx\r\n", k);
        puts_(req, h);
        put(req, body->p + off, k);
        puts_(req, "\r\n");
        off += k;
    }
    puts_(req, "0\r\n\r\n");
}

static int served(uint16_t port)
{
    static const char get[] = "GET /hi HTTP/1.1\r\nHost: x\r\n"
                              "Connection: close\r\n\r\n";
    const char *a = exchange(port, get, sizeof get - 1, 1);
    return strncmp(a, "HTTP/1.1 200", 12) == 0 && strstr(a, "\r\n\r\nhi");
}

int main(void)
{
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.threads = 2;
    cfg.handle_signals = 0;
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK(srv != NULL);
    wisp_route_opts_t ro = {0};
    ro.stream_body = 1;
    ro.max_body_bytes = 6u * 1024 * 1024;
    CHECK_EQ_INT(wisp_server_route(srv, WISP_METHOD_POST,
                                   "/mcp/vision/explain", on_explain, NULL,
                                   &ro),
                 0);
    wisp_server_route(srv, WISP_METHOD_GET, "/hi", on_hello, NULL, NULL);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    uint16_t port = wisp_server_port(srv);
    CHECK_EQ_INT(wisp_server_start(srv), 0);

    buf img = {0}, body = {0}, req = {0};
    uint32_t sum;
    char want[256];
    const char *a;

    /* 1. The ESP32 upload: chunked, 1 MiB image. */
    make_image(&img, 1 << 20, ESP_B, &sum);
    esp_body(&body, &img, "What is on the table?");
    for (unsigned seed = 1; seed <= 3; seed++) {
        req.len = 0;
        chunked_request(&req, &body, seed);
        a = exchange(port, req.p, req.len, seed);
        snprintf(want, sizeof want,
                 "{\"success\":true,\"question\":\"What is on the table?\","
                 "\"bytes\":%u,\"sum\":%u}",
                 1u << 20, (unsigned)sum);
        CHECK_MSG(strncmp(a, "HTTP/1.1 200", 12) == 0 && strstr(a, want),
                  "ESP32 upload %u:\n%s", seed, a);
    }

    /* 2. The browser: Content-Length, the image field named `image`. */
    static const char wk[] = "----WebKitFormBoundaryx7mC3Yq2AZ9lkTzD";
    body.len = 0;
    puts_(&body, "--");
    puts_(&body, wk);
    puts_(&body, "\r\nContent-Disposition: form-data; name=\"question\"\r\n"
                 "\r\nwhat?\r\n--");
    puts_(&body, wk);
    puts_(&body, "\r\nContent-Disposition: form-data; name=\"image\"; "
                 "filename=\"photo.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n");
    put(&body, img.p, img.len);
    puts_(&body, "\r\n--");
    puts_(&body, wk);
    puts_(&body, "--\r\n");
    req.len = 0;
    char head[512];
    snprintf(head, sizeof head,
             "POST /mcp/vision/explain HTTP/1.1\r\nHost: x\r\n"
             "Content-Type: multipart/form-data; boundary=%s\r\n"
             "Content-Length: %zu\r\nConnection: close\r\n\r\n",
             wk, body.len);
    puts_(&req, head);
    put(&req, body.p, body.len);
    a = exchange(port, req.p, req.len, 9);
    snprintf(want, sizeof want,
             "{\"success\":true,\"question\":\"what?\",\"bytes\":%u,"
             "\"sum\":%u}",
             1u << 20, (unsigned)sum);
    CHECK_MSG(strstr(a, want) != NULL, "browser upload:\n%s", a);

    /* 3. An image one byte over 5 MB: refused by the part limit. */
    buf big = {0};
    uint32_t big_sum;
    make_image(&big, IMAGE_MAX + 1, ESP_B, &big_sum);
    body.len = 0;
    esp_body(&body, &big, "big?");
    req.len = 0;
    chunked_request(&req, &body, 4);
    a = exchange(port, req.p, req.len, 4);
    CHECK_MSG(strstr(a, "{\"success\":false,\"message\":\"multipart part "
                        "too large\"}") != NULL,
              "big image:\n%s", a);
    /* Exactly 5 MB passes. */
    big.len = 0;
    make_image(&big, IMAGE_MAX, ESP_B, &big_sum);
    body.len = 0;
    esp_body(&body, &big, "edge");
    req.len = 0;
    chunked_request(&req, &body, 5);
    a = exchange(port, req.p, req.len, 5);
    snprintf(want, sizeof want, "\"bytes\":%u,\"sum\":%u}", IMAGE_MAX,
             (unsigned)big_sum);
    CHECK_MSG(strstr(a, want) != NULL, "5 MB image:\n%s", a);
    CHECK(served(port));

    /* 4. The body ends before the close delimiter. */
    body.len = 0;
    esp_body(&body, &img, "cut");
    body.len -= strlen("\r\n--" ESP_B "--\r\n");
    req.len = 0;
    chunked_request(&req, &body, 6);
    a = exchange(port, req.p, req.len, 6);
    CHECK_MSG(strstr(a, "{\"success\":false,\"message\":\"multipart body "
                        "ends before its close delimiter\"}") != NULL,
              "truncated:\n%s", a);

    /* 5. No boundary in the Content-Type. */
    static const char nob[] =
        "POST /mcp/vision/explain HTTP/1.1\r\nHost: x\r\n"
        "Content-Type: multipart/form-data\r\nContent-Length: 3\r\n"
        "Connection: close\r\n\r\nabc";
    a = exchange(port, nob, sizeof nob - 1, 7);
    CHECK_MSG(strncmp(a, "HTTP/1.1 400", 12) == 0, "no boundary:\n%s", a);
    CHECK(served(port));

    free(img.p);
    free(big.p);
    free(body.p);
    free(req.p);
    wisp_server_stop(srv);
    CHECK_EQ_INT(wisp_server_wait(srv), 0);
    wisp_server_destroy(srv);
    return t_done("http_upload");
}
