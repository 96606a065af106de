/* The table of HTTP byte classes; test/http/token_test.c checks every
 * entry against the ABNF of the RFCs named in token.h. */
#include "http/token.h"

/* T: tchar, V: value byte, G: target byte, X: HEXDIG. */
#define T WISP__HC_TCHAR
#define V WISP__HC_VALUE
#define G WISP__HC_TARGET
#define X WISP__HC_HEX
#define TOK (T | V | G)     /* a tchar: also a value and a target byte */
#define DLM (V | G)         /* a visible delimiter, not a tchar */
#define HEX (T | V | G | X) /* a hex digit */

const uint8_t wisp__http_chars[256] = {
    /* 00-1f: CTLs; HTAB is a value byte */
    0, 0, 0, 0, 0, 0, 0, 0, 0, V, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 20-2f:  SP  !    "    #    $    %    &    '
     *         (    )    *    +    ,    -    .    / */
    V,   TOK, DLM, TOK, TOK, TOK, TOK, TOK,
    DLM, DLM, TOK, TOK, DLM, TOK, TOK, DLM,
    /* 30-3f: 0-9, then : ; < = > ? */
    HEX, HEX, HEX, HEX, HEX, HEX, HEX, HEX, HEX, HEX,
    DLM, DLM, DLM, DLM, DLM, DLM,
    /* 40-4f: @ A-F G-O */
    DLM, HEX, HEX, HEX, HEX, HEX, HEX, TOK, TOK, TOK, TOK, TOK, TOK, TOK,
    TOK, TOK,
    /* 50-5f: P-Z [ \ ] ^ _ */
    TOK, TOK, TOK, TOK, TOK, TOK, TOK, TOK, TOK, TOK, TOK,
    DLM, DLM, DLM, TOK, TOK,
    /* 60-6f: ` a-f g-o */
    TOK, HEX, HEX, HEX, HEX, HEX, HEX, TOK, TOK, TOK, TOK, TOK, TOK, TOK,
    TOK, TOK,
    /* 70-7f: p-z { | } ~ DEL */
    TOK, TOK, TOK, TOK, TOK, TOK, TOK, TOK, TOK, TOK, TOK,
    DLM, TOK, DLM, TOK, 0,
    /* 80-ff: obs-text, value bytes only */
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
    V, V, V, V, V, V, V, V, V, V, V, V, V, V, V, V,
};
