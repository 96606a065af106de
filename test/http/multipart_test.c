/* Tests of src/http/multipart.c, the incremental multipart/form-data
 * parser, and of wisp_multipart_boundary.
 *
 * Every body row is fed whole (ending right before a PROT_NONE page), one
 * byte at a time (each byte the last readable byte before a PROT_NONE
 * page), and in two pieces cut at every offset (each piece guarded). Each
 * feed must give the row's result and, for bodies that parse, the same
 * trace of callbacks: "{name|filename|content-type}" at a part's begin
 * ("-" for an absent filename or type), its content (a NUL byte written
 * "<0>"), "{/}" at its end. */
#include "../test.h"
#include "wisp/multipart.h"

#define IN(s) .in = (s), .in_len = sizeof(s) - 1

typedef struct row {
    const char *name; /* a line of the spec */
    const char *rfc;
    const char *boundary;
    const char *in;
    size_t in_len;
    int want;          /* result of feed + finish */
    const char *trace; /* the callbacks (checked when want is 0) */
    uint32_t max_parts;
    uint64_t max_part_bytes;
    uint64_t max_total_bytes;
    size_t header_buf_size; /* 0: 1024 */
} row;

#define B "b0undary"
#define D "--" B
#define CD "Content-Disposition: form-data; "

#define ESP_B "----ESP32_CAMERA_BOUNDARY"
#define JPEG "\xff\xd8\xff\xe0\x00\x10JFIF\x00\r\n\r\n--\r\n-\xff\xd9"
/* The JPEG as traces show it (NUL bytes are written "<0>"). */
#define JPEG_T "\xff\xd8\xff\xe0<0>\x10JFIF<0>\r\n\r\n--\r\n-\xff\xd9"
#define ESP_BODY                                                          \
    "--" ESP_B "\r\n"                                                     \
    "Content-Disposition: form-data; name=\"question\"\r\n"               \
    "\r\n"                                                                \
    "What is on the table?\r\n"                                           \
    "--" ESP_B "\r\n"                                                     \
    "Content-Disposition: form-data; name=\"file\"; "                     \
    "filename=\"camera.jpg\"\r\n"                                         \
    "Content-Type: image/jpeg\r\n"                                        \
    "\r\n" JPEG "\r\n"                                                    \
    "--" ESP_B "--"
#define ESP_TRACE                                                         \
    "{question|-|-}What is on the table?{/}"                              \
    "{file|camera.jpg|image/jpeg}" JPEG_T "{/}"

#define WK_B "----WebKitFormBoundaryx7mC3Yq2AZ9lkTzD"
#define WK_BODY                                                           \
    "--" WK_B "\r\n"                                                      \
    "Content-Disposition: form-data; name=\"question\"\r\n"               \
    "\r\n"                                                                \
    "\xe6\xa1\x8c\xe4\xb8\x8a\xe6\x9c\x89\xe4\xbb\x80\xe4\xb9\x88\xef\xbc\x9f\r\n" \
    "--" WK_B "\r\n"                                                      \
    "Content-Disposition: form-data; name=\"image\"; "                    \
    "filename=\"photo.jpg\"\r\n"                                          \
    "Content-Type: image/jpeg\r\n"                                        \
    "\r\n" JPEG "\r\n"                                                    \
    "--" WK_B "--\r\n"

static const row rows[] = {
    /* The bodies devices and browsers send. */
    {"ESP32 camera upload of PROTOCOL.md 5.7", "RFC 7578 §4", ESP_B,
     IN(ESP_BODY), 0, ESP_TRACE},
    {"ESP32 camera upload with a CRLF after the close delimiter",
     "RFC 2046 §5.1.1", ESP_B, IN(ESP_BODY "\r\n"), 0, ESP_TRACE},
    {"browser upload with field image (non-chunked)", "RFC 7578 §4", WK_B,
     IN(WK_BODY), 0,
     "{question|-|-}\xe6\xa1\x8c\xe4\xb8\x8a\xe6\x9c\x89\xe4\xbb\x80\xe4\xb9"
     "\x88\xef\xbc\x9f{/}{image|photo.jpg|image/jpeg}" JPEG_T "{/}"},

    /* Framing (RFC 2046 §5.1.1). */
    {"one field", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=\"a\"\r\n\r\nhello\r\n" D "--"), 0,
     "{a|-|-}hello{/}"},
    {"empty content gives no data callback", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=\"a\"\r\n\r\n\r\n" D "--"), 0, "{a|-|-}{/}"},
    {"content that is only CRLF", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\r\n\r\n\r\n\r\n" D "--"), 0, "{a|-|-}\r\n{/}"},
    {"preamble is ignored", "RFC 2046 §5.1.1", B,
     IN("This is a preamble\r\nwith " D "X lines\r\n" D "\r\n" CD
        "name=a\r\n\r\nx\r\n" D "--"),
     0, "{a|-|-}x{/}"},
    {"preamble of CRs and partial delimiters is ignored", "RFC 2046 §5.1.1",
     B, IN("\r\r\n-\r\n--b0und\r\n" D "\r\n" CD "name=a\r\n\r\nx\r\n" D "--"),
     0, "{a|-|-}x{/}"},
    {"epilogue is ignored, even a delimiter in it", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\r\n\r\nx\r\n" D "--\r\nepilogue\r\n" D
        "\r\nnonsense"),
     0, "{a|-|-}x{/}"},
    {"transport padding after a delimiter", "RFC 2046 §5.1.1", B,
     IN(D " \t \r\n" CD "name=a\r\n\r\nx\r\n" D "\t\r\n" CD
        "name=b\r\n\r\ny\r\n" D "--"),
     0, "{a|-|-}x{/}{b|-|-}y{/}"},
    {"transport padding after the close delimiter", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\r\n\r\nx\r\n" D "--  \r\n"), 0, "{a|-|-}x{/}"},
    {"no parts: only the close delimiter (empty browser form)",
     "RFC 2046 §5.1.1", B, IN(D "--\r\n"), 0, ""},
    {"three parts, file content types kept", "RFC 7578 §4.4", B,
     IN(D "\r\n" CD "name=\"a\"\r\n\r\n1\r\n" D "\r\n" CD
        "name=\"f\"; filename=\"x.bin\"\r\nContent-Type: "
        "application/octet-stream\r\n\r\n\x00\x01\r\n" D "\r\n" CD
        "name=\"t\"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "t\r\n" D "--"),
     0,
     "{a|-|-}1{/}{f|x.bin|application/octet-stream}<0>\x01{/}"
     "{t|-|text/plain; charset=utf-8}t{/}"},

    /* Look-alikes of the delimiter inside content. */
    {"CRLF-- and a prefix of the boundary is content", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\r\n\r\nx\r\n--b0und\r\n" D "--"), 0,
     "{a|-|-}x\r\n--b0und{/}"},
    {"boundary without the CRLF before it is content", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\r\n\r\nx" D "y\r\n" D "--"), 0,
     "{a|-|-}x" D "y{/}"},
    {"boundary after a bare LF is content", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\r\n\r\nx\n" D "\r\n" D "--"), 0,
     "{a|-|-}x\n" D "{/}"},
    {"CR CR LF -- boundary: the second CR starts the delimiter",
     "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\r\n\r\nx\r\r\n" D "--"), 0, "{a|-|-}x\r{/}"},
    {"CRLF CRLF -- boundary: content ends with CRLF", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\r\n\r\nx\r\n\r\n" D "--"), 0,
     "{a|-|-}x\r\n{/}"},
    {"CRLF-CRLF and CRLF--CR are content", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\r\n\r\n\r\n-\r\n--\r\r\n" D "--"), 0,
     "{a|-|-}\r\n-\r\n--\r{/}"},
    {"boundary missing its last character is content", "RFC 2046 §5.1.1",
     B, IN(D "\r\n" CD "name=a\r\n\r\n\r\n--b0undar\r\n" D "--"), 0,
     "{a|-|-}\r\n--b0undar{/}"},
    {"the full delimiter followed by other bytes is refused",
     "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\r\n\r\nx\r\n" D "X\r\n" D "--"),
     WISP_EMULTIPART_SYNTAX},
    {"delimiter then a single dash and CRLF is refused", "RFC 2046 §5.1.1",
     B, IN(D "\r\n" CD "name=a\r\n\r\nx\r\n" D "-\r\n"),
     WISP_EMULTIPART_SYNTAX},
    {"padding then other bytes is refused", "RFC 2046 §5.1.1", B,
     IN(D "  x\r\n" CD "name=a\r\n\r\nx\r\n" D "--"), WISP_EMULTIPART_SYNTAX},
    {"delimiter then CR without LF is refused", "RFC 2046 §5.1.1", B,
     IN(D "\rX" CD "name=a\r\n\r\nx\r\n" D "--"), WISP_EMULTIPART_SYNTAX},
    {"delimiter then bare LF is refused", "RFC 2046 §5.1.1", B,
     IN(D "\n" CD "name=a\r\n\r\nx\r\n" D "--"), WISP_EMULTIPART_SYNTAX},
    {"a boundary that is a prefix of another works", "RFC 2046 §5.1.1", "a",
     IN("--a\r\n" CD "name=x\r\n\r\n\r\n--\r\n-a\r\n--a--"), 0,
     "{x|-|-}\r\n--\r\n-a{/}"},
    {"boundary with spaces and specials", "RFC 2046 §5.1.1", "'()+_,-./:=? x",
     IN("--'()+_,-./:=? x\r\n" CD "name=x\r\n\r\nv\r\n--'()+_,-./:=? x--"),
     0, "{x|-|-}v{/}"},

    /* Truncation. */
    {"empty body is truncated", "RFC 2046 §5.1.1", B, IN(""),
     WISP_EMULTIPART_TRUNCATED},
    {"preamble only is truncated", "RFC 2046 §5.1.1", B, IN("hello\r\n"),
     WISP_EMULTIPART_TRUNCATED},
    {"body ends inside the headers", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\r\n"), WISP_EMULTIPART_TRUNCATED},
    {"body ends inside content", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\r\n\r\nhello"), WISP_EMULTIPART_TRUNCATED},
    {"body ends inside the closing delimiter", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\r\n\r\nhello\r\n--b0und"),
     WISP_EMULTIPART_TRUNCATED},
    {"body ends after a delimiter without --", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\r\n\r\nhello\r\n" D),
     WISP_EMULTIPART_TRUNCATED},
    {"body ends after one dash of the close delimiter", "RFC 2046 §5.1.1",
     B, IN(D "\r\n" CD "name=a\r\n\r\nhello\r\n" D "-"),
     WISP_EMULTIPART_TRUNCATED},
    {"body ends after the delimiter line", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\r\n\r\nhello\r\n" D "\r\n"),
     WISP_EMULTIPART_TRUNCATED},

    /* Part headers (RFC 7578 §4.2, §4.4, §4.8). */
    {"unquoted name", "RFC 7578 §4.2", B,
     IN(D "\r\n" CD "name=abc\r\n\r\nv\r\n" D "--"), 0, "{abc|-|-}v{/}"},
    {"empty quoted name is accepted", "RFC 7578 §4.2", B,
     IN(D "\r\n" CD "name=\"\"\r\n\r\nv\r\n" D "--"), 0, "{|-|-}v{/}"},
    {"header names and disposition type are case-insensitive",
     "RFC 7578 §4.2", B,
     IN(D "\r\ncontent-DISPOSITION: Form-Data; NAME=\"a\"; FileName=\"f\""
          "\r\nCONTENT-type: text/x\r\n\r\nv\r\n" D "--"),
     0, "{a|f|text/x}v{/}"},
    {"whitespace around ; and = and the value", "RFC 7578 §4.2", B,
     IN(D "\r\nContent-Disposition:   form-data ;name = \"a\" ;  "
          "filename=\"f\"  \r\nContent-Type:\t text/plain \t\r\n\r\nv\r\n" D
          "--"),
     0, "{a|f|text/plain}v{/}"},
    {"quoted-pairs in name and filename are resolved", "RFC 7578 §4.2", B,
     IN(D "\r\n" CD "name=\"a\\\"b\\\\c\"; filename=\"x;y\\\".txt\"\r\n\r\n"
          "v\r\n" D "--"),
     0, "{a\"b\\c|x;y\".txt|-}v{/}"},
    {"other backslashes in a filename stay", "RFC 7578 §4.2", B,
     IN(D "\r\n" CD "name=\"f\"; filename=\"C:\\dir\\a.jpg\"\r\n\r\nv\r\n" D
          "--"),
     0, "{f|C:\\dir\\a.jpg|-}v{/}"},
    {"filename* is ignored", "RFC 7578 §4.2", B,
     IN(D "\r\n" CD "name=f; filename*=utf-8''a%20b\r\n\r\nv\r\n" D "--"),
     0, "{f|-|-}v{/}"},
    {"empty filename is present, not absent", "RFC 7578 §4.2", B,
     IN(D "\r\n" CD "name=f; filename=\"\"\r\n\r\n\r\n" D "--"), 0,
     "{f||-}{/}"},
    {"first name and first Content-Type win", "RFC 7578 §4.2", B,
     IN(D "\r\n" CD "name=a; name=b\r\nContent-Type: x/1\r\n"
          "Content-Type: x/2\r\n" CD "name=c\r\n\r\nv\r\n" D "--"),
     0, "{a|-|x/1}v{/}"},
    {"other header fields are kept in the raw block", "RFC 7578 §4.8", B,
     IN(D "\r\nX-Extra: 1\r\n" CD "name=a\r\n\r\nv\r\n" D "--"), 0,
     "{a|-|-}v{/}"},
    {"a part without Content-Disposition is refused", "RFC 7578 §4.2", B,
     IN(D "\r\nContent-Type: text/plain\r\n\r\nv\r\n" D "--"),
     WISP_EMULTIPART_SYNTAX},
    {"a part with no header at all is refused", "RFC 7578 §4.2", B,
     IN(D "\r\n\r\nv\r\n" D "--"), WISP_EMULTIPART_SYNTAX},
    {"disposition other than form-data is refused", "RFC 7578 §4.2", B,
     IN(D "\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n" D "--"),
     WISP_EMULTIPART_SYNTAX},
    {"form-data without a name is refused", "RFC 7578 §4.2", B,
     IN(D "\r\nContent-Disposition: form-data; filename=a\r\n\r\nv\r\n" D
          "--"),
     WISP_EMULTIPART_SYNTAX},
    {"a parameter without = is refused", "RFC 7578 §4.2", B,
     IN(D "\r\n" CD "name\r\n\r\nv\r\n" D "--"), WISP_EMULTIPART_SYNTAX},
    {"a parameter with an empty value is refused", "RFC 7578 §4.2", B,
     IN(D "\r\n" CD "name=\r\n\r\nv\r\n" D "--"), WISP_EMULTIPART_SYNTAX},
    {"an unterminated quoted string is refused", "RFC 7578 §4.2", B,
     IN(D "\r\n" CD "name=\"a\r\n\r\nv\r\n" D "--"), WISP_EMULTIPART_SYNTAX},
    {"parameters without ; between them are refused", "RFC 7578 §4.2", B,
     IN(D "\r\n" CD "name=\"a\" filename=\"b\"\r\n\r\nv\r\n" D "--"),
     WISP_EMULTIPART_SYNTAX},
    {"a folded header line is refused", "RFC 7578 §4.8", B,
     IN(D "\r\n" CD "name=a\r\n x\r\n\r\nv\r\n" D "--"),
     WISP_EMULTIPART_SYNTAX},
    {"a header line without a colon is refused", "RFC 7578 §4.8", B,
     IN(D "\r\n" CD "name=a\r\nbogus\r\n\r\nv\r\n" D "--"),
     WISP_EMULTIPART_SYNTAX},
    {"space before the colon is refused", "RFC 9112 §5.1", B,
     IN(D "\r\nContent-Disposition : form-data; name=a\r\n\r\nv\r\n" D "--"),
     WISP_EMULTIPART_SYNTAX},
    {"a bare LF inside the header block is refused", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\nX: y\r\n\r\nv\r\n" D "--"),
     WISP_EMULTIPART_SYNTAX},
    {"a bare CR inside the header block is refused", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\rX: y\r\n\r\nv\r\n" D "--"),
     WISP_EMULTIPART_SYNTAX},
    {"a NUL inside the header block is refused", "RFC 2046 §5.1.1", B,
     IN(D "\r\n" CD "name=a\0\r\n\r\nv\r\n" D "--"), WISP_EMULTIPART_SYNTAX},

    /* Limits. */
    {"max_parts parts are accepted", "limit", B,
     IN(D "\r\n" CD "name=a\r\n\r\n1\r\n" D "\r\n" CD "name=b\r\n\r\n2\r\n" D
          "--"),
     0, "{a|-|-}1{/}{b|-|-}2{/}", .max_parts = 2},
    {"one part more than max_parts is refused", "limit", B,
     IN(D "\r\n" CD "name=a\r\n\r\n1\r\n" D "\r\n" CD "name=b\r\n\r\n2\r\n" D
          "--"),
     WISP_EMULTIPART_PARTS, .max_parts = 1},
    {"content of exactly max_part_bytes is accepted", "limit", B,
     IN(D "\r\n" CD "name=a\r\n\r\n12345\r\n" D "--"), 0, "{a|-|-}12345{/}",
     .max_part_bytes = 5},
    {"content one byte over max_part_bytes is refused", "limit", B,
     IN(D "\r\n" CD "name=a\r\n\r\n123456\r\n" D "--"),
     WISP_EMULTIPART_PART_SIZE, .max_part_bytes = 5},
    {"a delimiter look-alike counts towards max_part_bytes", "limit", B,
     IN(D "\r\n" CD "name=a\r\n\r\n1\r\n--b\r\n" D "--"),
     WISP_EMULTIPART_PART_SIZE, .max_part_bytes = 5},
    {"max_part_bytes applies to each part, not the sum", "limit", B,
     IN(D "\r\n" CD "name=a\r\n\r\n12345\r\n" D "\r\n" CD
        "name=b\r\n\r\n12345\r\n" D "--"),
     0, "{a|-|-}12345{/}{b|-|-}12345{/}", .max_part_bytes = 5},
    {"a body of exactly max_total_bytes is accepted", "limit", B,
     IN(D "\r\n" CD "name=a\r\n\r\nv\r\n" D "--\r\n"), 0, "{a|-|-}v{/}",
     .max_total_bytes = 71},
    {"a body one byte over max_total_bytes is refused", "limit", B,
     IN(D "\r\n" CD "name=a\r\n\r\nv\r\n" D "--\r\nX"),
     WISP_EMULTIPART_TOTAL, .max_total_bytes = 71},
    {"a header block that fills the buffer is accepted", "limit", B,
     IN(D "\r\n" CD "name=a\r\nX-Pad: 0123456789012\r\n\r\nv\r\n" D "--"),
     0, "{a|-|-}v{/}", .header_buf_size = 64},
    {"a header block one byte over the buffer is refused", "limit", B,
     IN(D "\r\n" CD "name=a\r\nX-Pad: 01234567890123\r\n\r\nv\r\n" D
          "--"),
     WISP_EMULTIPART_HEADER, .header_buf_size = 64},
    {"a header block without an end is stopped at the buffer size",
     "limit", B,
     IN(D "\r\n" CD "name=a\r\nX: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
     WISP_EMULTIPART_HEADER, .header_buf_size = 64},
    {"a quoted-pair is resolved in the room after the block", "limit", B,
     IN(D "\r\n" CD "name=\"a\\\\b\"\r\n\r\nv\r\n" D "--"), 0,
     "{a\\b|-|-}v{/}", .header_buf_size = 64},
    {"a quoted-pair needs room after the block", "limit", B,
     IN(D "\r\n" CD "name=\"a\\\\b\"\r\nX-Pad: 01234567\r\n\r\nv\r\n" D
          "--"),
     WISP_EMULTIPART_HEADER, .header_buf_size = 64},
    {"a callback's error stops the parse", "callback", B,
     IN(D "\r\n" CD "name=ok\r\n\r\nv\r\n" D "\r\n" CD
        "name=reject\r\n\r\nv\r\n" D "--"),
     -EPERM},
};

/* ------------------------------------------------------------ collector */

typedef struct trace {
    char buf[8192];
    size_t len;
    int bad;        /* a callback saw something it should not */
    int in_part;
    unsigned calls; /* on_part_data calls in the current part */
    unsigned max_calls;
    int after_error;
} trace;

static void put(trace *t, const void *p, size_t n)
{
    if (t->len + n > sizeof t->buf) {
        t->bad = 1;
        return;
    }
    memcpy(t->buf + t->len, p, n);
    t->len += n;
}

static void puts_(trace *t, const char *s)
{
    put(t, s, strlen(s));
}

static int on_begin(const wisp_multipart_part_t *p, void *arg)
{
    trace *t = arg;
    if (t->in_part || t->after_error || !p->name.ptr)
        t->bad = 1;
    t->in_part = 1;
    t->calls = 0;
    puts_(t, "{");
    put(t, p->name.ptr, p->name.len);
    puts_(t, "|");
    if (p->filename.ptr)
        put(t, p->filename.ptr, p->filename.len);
    else
        puts_(t, "-");
    puts_(t, "|");
    if (p->content_type.ptr)
        put(t, p->content_type.ptr, p->content_type.len);
    else
        puts_(t, "-");
    puts_(t, "}");
    if (p->name.len == 6 && memcmp(p->name.ptr, "reject", 6) == 0)
        return -EPERM;
    return 0;
}

static int on_data(const wisp_multipart_part_t *p, const void *d, size_t n,
                   void *arg)
{
    trace *t = arg;
    (void)p;
    if (!t->in_part || n == 0 || t->after_error)
        t->bad = 1;
    if (++t->calls > t->max_calls)
        t->max_calls = t->calls;
    const char *b = d;
    for (size_t i = 0; i < n; i++) {
        if (b[i])
            put(t, b + i, 1);
        else
            puts_(t, "<0>");
    }
    return 0;
}

static int on_end(const wisp_multipart_part_t *p, void *arg)
{
    trace *t = arg;
    (void)p;
    if (!t->in_part || t->after_error)
        t->bad = 1;
    t->in_part = 0;
    puts_(t, "{/}");
    return 0;
}

static char hbuf[4096];

static wisp_multipart_config_t config(const row *r, trace *t)
{
    wisp_multipart_config_t c = {0};
    c.on_part_begin = on_begin;
    c.on_part_data = on_data;
    c.on_part_end = on_end;
    c.arg = t;
    c.header_buf = hbuf;
    c.header_buf_size = r->header_buf_size ? r->header_buf_size : 1024;
    c.max_parts = r->max_parts;
    c.max_part_bytes = r->max_part_bytes;
    c.max_total_bytes = r->max_total_bytes;
    return c;
}

static wisp_str_t S(const char *s)
{
    wisp_str_t r = {s, strlen(s)};
    return r;
}

/* Feed `r` in pieces ending at cuts[0..ncut) (the last is in_len), each
 * piece guarded. Returns the result and fills *t. */
static int run(const row *r, const size_t *cuts, size_t ncut, trace *t)
{
    memset(t, 0, sizeof *t);
    wisp_multipart_config_t c = config(r, t);
    wisp_multipart_t mp;
    int rc = wisp_multipart_init(&mp, S(r->boundary), &c);
    if (rc < 0)
        return rc;
    size_t off = 0;
    for (size_t k = 0; k < ncut && rc == 0; k++) {
        size_t n = cuts[k] - off;
        t_guard g = t_guard_copy(r->in + off, n);
        rc = wisp_multipart_feed(&mp, g.data, n);
        t_guard_free(&g);
        off = cuts[k];
    }
    if (rc == 0)
        rc = wisp_multipart_finish(&mp);
    else {
        /* Errors are sticky and no callback runs after one. */
        t->after_error = 1;
        CHECK_EQ_INT(wisp_multipart_feed(&mp, "\r\n--", 4), rc);
        CHECK_EQ_INT(wisp_multipart_finish(&mp), rc);
    }
    return rc;
}

static void check_trace(const row *r, const trace *t, const char *how)
{
    CHECK_MSG(!t->bad, "%s (%s): callbacks out of order", r->name, how);
    if (r->want != 0)
        return;
    CHECK_MSG(!t->in_part, "%s (%s): part left open", r->name, how);
    CHECK_MSG(t->len == strlen(r->trace) &&
                  memcmp(t->buf, r->trace, t->len) == 0,
              "%s (%s): trace \"%.*s\"", r->name, how, (int)t->len,
              t->buf);
}

static void test_rows(void)
{
    static size_t cuts[8192];
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const row *r = &rows[i];
        trace t;
        /* Whole. */
        cuts[0] = r->in_len;
        int rc = run(r, cuts, 1, &t);
        CHECK_MSG(rc == r->want, "%s (whole): got %d (%s), want %d",
                  r->name, rc, wisp_strerror(rc), r->want);
        check_trace(r, &t, "whole");
        if (r->want == 0) {
            CHECK_MSG(t.max_calls <= 1,
                      "%s (whole): content came in %u slices", r->name,
                      t.max_calls);
        }
        trace whole = t;
        /* Byte by byte. */
        for (size_t k = 0; k < r->in_len; k++)
            cuts[k] = k + 1;
        rc = run(r, cuts, r->in_len, &t);
        CHECK_MSG(rc == r->want, "%s (bytes): got %d (%s), want %d",
                  r->name, rc, wisp_strerror(rc), r->want);
        check_trace(r, &t, "bytes");
        if (r->want == 0)
            CHECK_MSG(t.len == whole.len &&
                          memcmp(t.buf, whole.buf, t.len) == 0,
                      "%s (bytes): trace differs", r->name);
        /* Two pieces at every split (an empty first piece included). */
        for (size_t s = 0; s <= r->in_len; s++) {
            cuts[0] = s;
            cuts[1] = r->in_len;
            rc = run(r, cuts, 2, &t);
            CHECK_MSG(rc == r->want, "%s (split %zu): got %d, want %d",
                      r->name, s, rc, r->want);
            check_trace(r, &t, "split");
            if (r->want == 0)
                CHECK_MSG(t.len == whole.len &&
                              memcmp(t.buf, whole.buf, t.len) == 0,
                          "%s (split %zu): trace differs", r->name, s);
        }
    }
}


/* ------------------------------------------------------------ boundary */

typedef struct brow {
    const char *name;
    const char *ct;
    int want;
    const char *boundary; /* when want is 0 */
} brow;

static const brow brows[] = {
    {"ESP32 Content-Type", "multipart/form-data; boundary=" ESP_B, 0, ESP_B},
    {"browser Content-Type", "multipart/form-data; boundary=" WK_B, 0, WK_B},
    {"quoted boundary", "multipart/form-data; boundary=\"abc\"", 0, "abc"},
    {"quoted boundary with a space", "multipart/form-data; boundary=\"a b\"",
     0, "a b"},
    {"quoted boundary with every special bchar",
     "multipart/form-data; boundary=\"'()+_,-./:=?\"", 0, "'()+_,-./:=?"},
    {"unquoted boundary with specials",
     "multipart/form-data; boundary=a'()+_,-./:=?", 0, "a'()+_,-./:=?"},
    {"case-insensitive type and parameter name",
     "Multipart/Form-Data; BOUNDARY=xyz", 0, "xyz"},
    {"whitespace around ; and =",
     "  multipart/form-data ;  charset=utf-8 ;boundary = xyz  ", 0, "xyz"},
    {"boundary after another parameter with a quoted ;",
     "multipart/form-data; x=\"a;boundary=no\"; boundary=yes", 0, "yes"},
    {"first boundary parameter wins",
     "multipart/form-data; boundary=one; boundary=two", 0, "one"},
    {"70 characters", "multipart/form-data; boundary="
     "0123456789012345678901234567890123456789012345678901234567890123456789",
     0, "0123456789012345678901234567890123456789012345678901234567890123456789"},
    {"71 characters are refused", "multipart/form-data; boundary="
     "01234567890123456789012345678901234567890123456789012345678901234567890",
     WISP_EMULTIPART_BOUNDARY, NULL},
    {"empty boundary is refused", "multipart/form-data; boundary=",
     WISP_EMULTIPART_BOUNDARY, NULL},
    {"empty quoted boundary is refused", "multipart/form-data; boundary=\"\"",
     WISP_EMULTIPART_BOUNDARY, NULL},
    {"a boundary ending in a space is refused",
     "multipart/form-data; boundary=\"ab \"", WISP_EMULTIPART_BOUNDARY, NULL},
    {"a non-bchar is refused", "multipart/form-data; boundary=a*b",
     WISP_EMULTIPART_BOUNDARY, NULL},
    {"a quoted-pair in the boundary is refused",
     "multipart/form-data; boundary=\"a\\\"b\"", WISP_EMULTIPART_BOUNDARY, NULL},
    {"an unterminated quoted boundary is refused",
     "multipart/form-data; boundary=\"abc", WISP_EMULTIPART_BOUNDARY, NULL},
    {"no boundary parameter", "multipart/form-data",
     WISP_EMULTIPART_BOUNDARY, NULL},
    {"no boundary among parameters", "multipart/form-data; charset=utf-8",
     WISP_EMULTIPART_BOUNDARY, NULL},
    {"multipart/mixed is refused", "multipart/mixed; boundary=abc",
     WISP_EMULTIPART_BOUNDARY, NULL},
    {"a longer subtype is refused", "multipart/form-datax; boundary=abc",
     WISP_EMULTIPART_BOUNDARY, NULL},
    {"urlencoded is refused", "application/x-www-form-urlencoded",
     WISP_EMULTIPART_BOUNDARY, NULL},
    {"empty value is refused", "", WISP_EMULTIPART_BOUNDARY, NULL},
    {"garbage between parameters is refused",
     "multipart/form-data; boundary=abc x", WISP_EMULTIPART_BOUNDARY, NULL},
    {"a parameter without = is refused",
     "multipart/form-data; charset; boundary=abc", WISP_EMULTIPART_BOUNDARY, NULL},
};

static void test_boundary(void)
{
    for (size_t i = 0; i < sizeof brows / sizeof brows[0]; i++) {
        const brow *r = &brows[i];
        size_t n = strlen(r->ct);
        t_guard g = t_guard_copy(r->ct, n);
        wisp_str_t ct = {g.data, n}, b;
        int rc = wisp_multipart_boundary(ct, &b);
        CHECK_MSG(rc == r->want, "%s: got %d, want %d", r->name, rc,
                  r->want);
        if (rc == 0 && r->want == 0) {
            CHECK_MSG(b.len == strlen(r->boundary) &&
                          memcmp(b.ptr, r->boundary, b.len) == 0 &&
                          b.ptr >= g.data && b.ptr + b.len <= g.data + n,
                      "%s: got \"%.*s\"", r->name, (int)b.len, b.ptr);
        } else {
            CHECK_MSG(b.ptr == NULL, "%s: boundary set on error", r->name);
        }
        t_guard_free(&g);
    }
    wisp_str_t none = {NULL, 0}, b;
    CHECK_EQ_INT(wisp_multipart_boundary(none, &b), WISP_EMULTIPART_BOUNDARY);
    CHECK_EQ_INT(wisp_multipart_boundary(S("multipart/form-data; boundary=a"),
                                         NULL),
                 -EINVAL);
}

/* ------------------------------------------------------------ API edges */

static void test_init(void)
{
    trace t;
    row r = {0};
    wisp_multipart_config_t c = config(&r, &t);
    wisp_multipart_t mp;
    CHECK_EQ_INT(wisp_multipart_init(NULL, S("b"), &c), -EINVAL);
    CHECK_EQ_INT(wisp_multipart_init(&mp, S("b"), NULL), -EINVAL);
    c.header_buf_size = 63;
    CHECK_EQ_INT(wisp_multipart_init(&mp, S("b"), &c), -EINVAL);
    c.header_buf_size = 64;
    c.header_buf = NULL;
    CHECK_EQ_INT(wisp_multipart_init(&mp, S("b"), &c), -EINVAL);
    c.header_buf = hbuf;
    wisp_str_t none = {NULL, 0};
    CHECK_EQ_INT(wisp_multipart_init(&mp, none, &c),
                 WISP_EMULTIPART_BOUNDARY);
    CHECK_EQ_INT(wisp_multipart_init(&mp, S(""), &c),
                 WISP_EMULTIPART_BOUNDARY);
    CHECK_EQ_INT(wisp_multipart_init(&mp, S("a\rb"), &c),
                 WISP_EMULTIPART_BOUNDARY);
    CHECK_EQ_INT(wisp_multipart_init(&mp, S("ab "), &c),
                 WISP_EMULTIPART_BOUNDARY);
    CHECK_EQ_INT(wisp_multipart_init(&mp, S("0123456789012345678901234567890"
                                            "123456789012345678901234567890"
                                            "1234567890"),
                                     &c),
                 WISP_EMULTIPART_BOUNDARY);
    CHECK_EQ_INT(wisp_multipart_init(&mp, S("b"), &c), 0);
    CHECK_EQ_INT(wisp_multipart_feed(&mp, NULL, 1), -EINVAL);
    CHECK_EQ_INT(wisp_multipart_feed(&mp, NULL, 0), 0);
    CHECK_EQ_INT(wisp_multipart_feed(NULL, "x", 1), -EINVAL);
    CHECK_EQ_INT(wisp_multipart_finish(NULL), -EINVAL);

    /* No callbacks at all: the body is still checked. */
    wisp_multipart_config_t bare = {0};
    bare.header_buf = hbuf;
    bare.header_buf_size = sizeof hbuf;
    static const char body[] = ESP_BODY;
    CHECK_EQ_INT(wisp_multipart_parse(S(ESP_B), body, sizeof body - 1, &bare),
                 0);
    CHECK_EQ_INT(wisp_multipart_parse(S(ESP_B), body, sizeof body - 2, &bare),
                 WISP_EMULTIPART_TRUNCATED);
    CHECK(strcmp(wisp_strerror(WISP_EMULTIPART_TRUNCATED),
                 "unknown error") != 0);
    for (int e = WISP_EMULTIPART_BOUNDARY; e <= WISP_EMULTIPART_SYNTAX; e++)
        CHECK(strcmp(wisp_strerror(e), "unknown error") != 0);
}

/* wisp_multipart_parse hands each part's content over in one slice that
 * points into the body, and wisp_multipart_header finds any field. */
typedef struct whole_ctx {
    const char *body;
    size_t len;
    int slices;
    int ok;
} whole_ctx;

static int w_begin(const wisp_multipart_part_t *p, void *arg)
{
    whole_ctx *w = arg;
    wisp_str_t cd = wisp_multipart_header(p, "content-disposition");
    wisp_str_t x = wisp_multipart_header(p, "X-Extra");
    wisp_str_t none = wisp_multipart_header(p, "Content-Length");
    if (p->index == 0)
        w->ok += cd.ptr && cd.len == 26 && !memcmp(cd.ptr, "form-data; "
                                                   "name=\"question\"", 26) &&
                 x.ptr && x.len == 3 && !memcmp(x.ptr, "y z", 3) && !none.ptr;
    return 0;
}

static int w_data(const wisp_multipart_part_t *p, const void *d, size_t n,
                  void *arg)
{
    whole_ctx *w = arg;
    (void)p;
    w->slices++;
    if ((const char *)d < w->body || (const char *)d + n > w->body + w->len)
        w->ok = -100;
    return 0;
}

static void test_whole(void)
{
    static const char body[] =
        "--" ESP_B "\r\n"
        "Content-Disposition: form-data; name=\"question\"\r\n"
        "X-Extra:   y z \t\r\n"
        "\r\n"
        "What\r\n--\r\n--" ESP_B "x\r\n"
        "--" ESP_B "\r\n"
        "Content-Disposition: form-data; name=\"file\"; "
        "filename=\"camera.jpg\"\r\n"
        "\r\n" JPEG "\r\n"
        "--" ESP_B "--";
    whole_ctx w = {body, sizeof body - 1, 0, 0};
    wisp_multipart_config_t c = {0};
    c.on_part_begin = w_begin;
    c.on_part_data = w_data;
    c.arg = &w;
    c.header_buf = hbuf;
    c.header_buf_size = sizeof hbuf;
    CHECK_EQ_INT(wisp_multipart_parse(S(ESP_B), body, sizeof body - 1, &c),
                 -4030 /* "--B" + "x": a full delimiter then junk */);
    static const char body2[] =
        "--" ESP_B "\r\n"
        "Content-Disposition: form-data; name=\"question\"\r\n"
        "X-Extra:   y z \t\r\n"
        "\r\n"
        "What\r\n--\r\n--" ESP_B "\r\n"
        "Content-Disposition: form-data; name=\"file\"; "
        "filename=\"camera.jpg\"\r\n"
        "\r\n" JPEG "\r\n"
        "--" ESP_B "--";
    w = (whole_ctx){body2, sizeof body2 - 1, 0, 0};
    CHECK_EQ_INT(wisp_multipart_parse(S(ESP_B), body2, sizeof body2 - 1, &c),
                 0);
    CHECK_EQ_INT(w.slices, 2);
    CHECK_EQ_INT(w.ok, 1);
}

/* The default max_parts is 64: 64 parts pass, the 65th is refused. */
static void test_default_max_parts(void)
{
    static char body[65 * 64 + 16];
    for (int parts = 64; parts <= 65; parts++) {
        size_t n = 0;
        for (int i = 0; i < parts; i++)
            n += (size_t)snprintf(body + n, sizeof body - n,
                                  "--b\r\n" CD "name=p%d\r\n\r\n%d\r\n", i, i);
        n += (size_t)snprintf(body + n, sizeof body - n, "--b--");
        row r = {0};
        trace t;
        memset(&t, 0, sizeof t);
        wisp_multipart_config_t c = config(&r, &t);
        int rc = wisp_multipart_parse(S("b"), body, n, &c);
        CHECK_EQ_INT(rc, parts == 64 ? 0 : WISP_EMULTIPART_PARTS);
    }
}

/* ------------------------------------------------- generated bodies */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* Content built from pieces that resemble the delimiter, so that partial
 * matches are everywhere; the full delimiter never occurs. */
static size_t gen_content(char *out, size_t cap, const char *bnd)
{
    static const char *pieces[] = {"\r", "\n", "\r\n", "-", "--", "\r\n-",
                                   "\r\n--", "x", "\0", "\xff"};
    size_t n = 0, want = rnd() % 400;
    size_t bl = strlen(bnd);
    while (n < want && n + 4 + bl < cap) {
        uint32_t k = rnd() % 12;
        if (k < 10) {
            const char *p = pieces[k];
            size_t l = k == 8 ? 1 : strlen(p);
            memcpy(out + n, p, l);
            n += l;
        } else {
            /* "\r\n--" and a proper prefix of the boundary, then a byte
             * that breaks the match. */
            size_t l = rnd() % bl;
            memcpy(out + n, "\r\n--", 4);
            memcpy(out + n + 4, bnd, l);
            n += 4 + l;
            out[n++] = 'Q';
        }
    }
    return n;
}

static void test_generated(void)
{
    static char body[1 << 16];
    static char want[1 << 17];
    static const char bnd[] = "gEn-b0und";
    static size_t cuts[1 << 16];
    for (int iter = 0; iter < 300; iter++) {
        size_t n = 0, wn = 0;
        int parts = 1 + (int)(rnd() % 4);
        if (rnd() % 2)
            n += (size_t)snprintf(body, sizeof body, "preamble\r\n--gEn\r\n");
        for (int i = 0; i < parts; i++) {
            n += (size_t)snprintf(body + n, sizeof body - n,
                                  "%s--%s%s\r\n" CD "name=\"f%d\"\r\n\r\n",
                                  i ? "\r\n" : "", bnd,
                                  rnd() % 3 ? "" : " \t", i);
            char content[2048];
            size_t cl = gen_content(content, sizeof content, bnd);
            memcpy(body + n, content, cl);
            n += cl;
            wn += (size_t)snprintf(want + wn, sizeof want - wn,
                                   "{f%d|-|-}", i);
            for (size_t k = 0; k < cl; k++) {
                if (content[k]) {
                    want[wn++] = content[k];
                } else {
                    memcpy(want + wn, "<0>", 3);
                    wn += 3;
                }
            }
            memcpy(want + wn, "{/}", 4);
            wn += 3;
        }
        n += (size_t)snprintf(body + n, sizeof body - n, "\r\n--%s--\r\n",
                              bnd);
        want[wn] = 0;
        row r = {0};
        r.name = "generated body";
        r.boundary = bnd;
        r.in = body;
        r.in_len = n;
        r.trace = want;
        /* Random splits. */
        size_t nc = 0, off = 0;
        while (off < n) {
            off += 1 + rnd() % (rnd() % 2 ? 3 : 200);
            if (off > n)
                off = n;
            cuts[nc++] = off;
        }
        trace t;
        int rc = run(&r, cuts, nc, &t);
        CHECK_MSG(rc == 0, "generated %d: %d", iter, rc);
        check_trace(&r, &t, "random splits");
    }
}

int main(void)
{
    test_rows();
    test_boundary();
    test_init();
    test_whole();
    test_default_max_parts();
    test_generated();
    return t_done("http_multipart");
}
