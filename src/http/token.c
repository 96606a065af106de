/* The table of HTTP byte classes; test/http/token_test.c checks every
 * entry against the ABNF of the RFCs named in token.h. */
#include "http/token.h"

#define T WISP__HC_TCHAR
#define V WISP__HC_VALUE
#define G WISP__HC_TARGET
#define X WISP__HC_HEX
#define U WISP__HC_URI
#define R WISP__HC_REG
#define P WISP__HC_PATH
/* Every visible byte is a value and a target byte; then by kind: */
#define TU (T | V | G | U | R | P) /* tchar, also in URIs: unreserved
                                      and the sub-delims ! $ & ' * + */
#define TN (T | V | G)         /* tchar, no URI byte of its own: # ^ ` |
                                  and '%' (it opens a triplet) */
#define HX (TU | X)            /* hex digit */
#define DU (V | G | U | R | P) /* delimiter, sub-delim: ( ) , ; = */
#define DP (V | G | U | P)     /* delimiter, path/query only: : @ / */
#define DQ (V | G | U)         /* '?': ends the path, starts the query */
#define DN (V | G)             /* delimiter, no URI byte: " < > [ \ ] { } */

const uint8_t wisp__http_chars[256] = {
    /* 00-1f: CTLs; HTAB is a value byte */
    0, 0, 0, 0, 0, 0, 0, 0, 0, V, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    /* 20-2f:  SP  !   "   #   $   %   &   '   (   )   *   +   ,   -   .   / */
    V,   TU, DN, TN, TU, TN, TU, TU, DU, DU, TU, TU, DU, TU, TU, DP,
    /* 30-3f: 0-9, then : ; < = > ? */
    HX, HX, HX, HX, HX, HX, HX, HX, HX, HX, DP, DU, DN, DU, DN, DQ,
    /* 40-4f: @ A-F G-O */
    DP, HX, HX, HX, HX, HX, HX, TU, TU, TU, TU, TU, TU, TU, TU, TU,
    /* 50-5f: P-Z [ \ ] ^ _ */
    TU, TU, TU, TU, TU, TU, TU, TU, TU, TU, TU, DN, DN, DN, TN, TU,
    /* 60-6f: ` a-f g-o */
    TN, HX, HX, HX, HX, HX, HX, TU, TU, TU, TU, TU, TU, TU, TU, TU,
    /* 70-7f: p-z { | } ~ DEL */
    TU, TU, TU, TU, TU, TU, TU, TU, TU, TU, TU, DN, TN, DN, TU, 0,
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
