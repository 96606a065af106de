/* Router: one radix tree over request paths, shared by every method.
 *
 * Static pattern text is stored as compressed edges: each node owns a
 * label, and an insert that diverges inside a label splits that node in
 * two. A node has at most one static child per first byte (a small sorted
 * array searched with memchr), one parameter child (":name", one
 * non-empty segment), one wildcard child ("*name", the rest of the path,
 * always a leaf), one route slot per method and one for WISP_METHOD_ANY.
 *
 * ':' and '*' are special only at the start of a segment, right after a
 * '/'; elsewhere they are literal bytes ("/v1/items:batchGet" is static).
 * So a parameter or wildcard child only hangs below a node whose label
 * ends in '/', and splitting a label never moves children upwards.
 *
 * Matching walks the tree depth first in priority order static >
 * parameter > wildcard. It backtracks through parent pointers instead of a
 * stack: when a child fails, the position in the path is recovered from
 * what the child consumed (its label length, or the length of the value
 * it captured, still in m->params), so the search needs no memory beyond
 * the caller's wisp__match and never recurses. A node's position in the
 * path is fixed by its branch from the root, so a match enters each node
 * at most once and costs at most one visit per node on candidate
 * branches, plus one memchr per parameter.
 *
 * Thread: wisp__router_add and wisp__router_destroy need exclusive
 * access; wisp__router_match only reads, so any number of threads may
 * match at once while nobody adds. */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "http/router.h"
#include "wisp/http.h"

enum kind { K_STATIC, K_PARAM, K_WILD };

#define ANY_BIT (1u << WISP_METHOD_COUNT)
#define ALL_METHODS ((1u << WISP_METHOD_COUNT) - 1)

typedef struct node node;
struct node {
    /* Static: the edge bytes (never empty below the root). Parameter,
     * wildcard: the name without ':' or '*', NUL-terminated; matched
     * params point here. */
    char *label;
    uint32_t label_len;
    uint8_t kind;
    uint16_t nstatic;
    uint16_t static_cap;
    uint16_t set;         /* bit m: routes[m] registered; ANY_BIT: any */
    uint32_t allow_mask;  /* reported on 405: GET implies HEAD, ANY all */
    unsigned char *keys;  /* first label byte of each static child, sorted */
    node **statics;
    node *param;
    node *wild;
    node *parent;
    void *any;
    void *routes[WISP_METHOD_COUNT];
};

struct wisp__router {
    node root; /* empty label; every pattern starts with a static '/' */
};

/* ------------------------------------------------------------ patterns */

typedef struct seg {
    uint8_t kind;
    uint32_t len;
    const char *s; /* static bytes, or the name after ':' or '*' */
} seg;

/* Static runs alternate with parameters and end with at most one
 * wildcard: WISP__MAX_PARAMS captures need at most 2 * that + 1 pieces. */
#define MAX_SEGS (2 * WISP__MAX_PARAMS + 1)

/* Split `p` into static runs, parameters and a final wildcard. Returns
 * the number of pieces, or -EINVAL for a pattern the header rules out. */
static int parse(const char *p, seg *segs)
{
    size_t len = strlen(p);
    /* Over 32 bits: a shift, as a comparison with UINT32_MAX is always
     * false (and warned about) where size_t has 32 bits. */
    if (len == 0 || p[0] != '/' || (uint64_t)len >> 32 != 0)
        return -EINVAL;
    int n = 0, ncap = 0;
    size_t run = 0; /* start of the pending static run */
    size_t i = 1;
    while (i < len) {
        char c = p[i];
        if (p[i - 1] != '/' || (c != ':' && c != '*')) {
            i++;
            continue;
        }
        size_t end = i + 1;
        if (c == ':') {
            while (end < len && p[end] != '/')
                end++;
            if (end == i + 1)
                return -EINVAL; /* empty parameter name */
        } else {
            end = len;
            if (memchr(p + i + 1, '/', len - i - 1))
                return -EINVAL; /* wildcard not last */
        }
        if (++ncap > WISP__MAX_PARAMS)
            return -EINVAL;
        const char *name = p + i + 1;
        uint32_t nlen = (uint32_t)(end - i - 1);
        for (int k = 0; k < n && nlen; k++) {
            if (segs[k].kind != K_STATIC && segs[k].len == nlen &&
                memcmp(segs[k].s, name, nlen) == 0)
                return -EINVAL; /* duplicate name */
        }
        /* p[i - 1] is '/', so the run before a capture is never empty. */
        segs[n++] = (seg){K_STATIC, (uint32_t)(i - run), p + run};
        segs[n++] = (seg){c == ':' ? K_PARAM : K_WILD, nlen, name};
        run = i = end;
    }
    if (run < len)
        segs[n++] = (seg){K_STATIC, (uint32_t)(len - run), p + run};
    return n;
}

/* --------------------------------------------------------------- nodes */

static node *find_static(const node *n, unsigned char byte)
{
    /* Most nodes have a few children: a loop over the sorted keys, which
     * stops at the first larger one, costs less than a call to memchr. */
    if (n->nstatic <= 16) {
        for (size_t i = 0; i < n->nstatic && n->keys[i] <= byte; i++)
            if (n->keys[i] == byte)
                return n->statics[i];
        return NULL;
    }
    const unsigned char *k = memchr(n->keys, byte, n->nstatic);
    return k ? n->statics[k - n->keys] : NULL;
}

static size_t common_prefix(const char *a, size_t alen, const char *b,
                            size_t blen)
{
    size_t i = 0, lim = alen < blen ? alen : blen;
    while (i < lim && a[i] == b[i])
        i++;
    return i;
}

static node *node_new(uint8_t kind, const char *label, uint32_t len,
                      node *parent)
{
    node *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->label = malloc((size_t)len + 1);
    if (!n->label) {
        free(n);
        return NULL;
    }
    memcpy(n->label, label, len);
    n->label[len] = '\0';
    n->label_len = len;
    n->kind = kind;
    n->parent = parent;
    return n;
}

static void node_free(node *n)
{
    if (!n)
        return;
    free(n->label);
    free(n->keys);
    free(n->statics);
    free(n);
}

static int add_static(node *n, node *c)
{
    if (n->nstatic == n->static_cap) {
        /* At most 256 children (distinct first bytes), so 256 is the
         * largest capacity ever needed and uint16_t holds it. */
        uint16_t cap = n->static_cap ? (uint16_t)(n->static_cap * 2) : 2;
        unsigned char *keys = realloc(n->keys, cap);
        if (!keys)
            return -ENOMEM;
        n->keys = keys;
        node **st = realloc(n->statics, cap * sizeof *st);
        if (!st)
            return -ENOMEM;
        n->statics = st;
        n->static_cap = cap;
    }
    unsigned char key = (unsigned char)c->label[0];
    uint16_t pos = 0;
    while (pos < n->nstatic && n->keys[pos] < key)
        pos++;
    memmove(n->keys + pos + 1, n->keys + pos, n->nstatic - pos);
    memmove(n->statics + pos + 1, n->statics + pos,
            (n->nstatic - pos) * sizeof *n->statics);
    n->keys[pos] = key;
    n->statics[pos] = c;
    n->nstatic++;
    return 0;
}

/* Split the static child c of n after `l` bytes of its label (0 < l <
 * label_len): a new node takes the first l bytes and c keeps the rest,
 * with its routes and children. Returns the new node, or NULL with the
 * tree unchanged when out of memory. */
static node *split(node *n, node *c, size_t l)
{
    node *mid = node_new(K_STATIC, c->label, (uint32_t)l, n);
    if (!mid)
        return NULL;
    mid->keys = malloc(2);
    mid->statics = malloc(2 * sizeof *mid->statics);
    if (!mid->keys || !mid->statics) {
        node_free(mid);
        return NULL;
    }
    mid->static_cap = 2;
    mid->nstatic = 1;
    mid->keys[0] = (unsigned char)c->label[l];
    mid->statics[0] = c;
    c->label_len -= (uint32_t)l;
    memmove(c->label, c->label + l, c->label_len);
    c->label[c->label_len] = '\0';
    c->parent = mid;
    /* Same first byte, so mid takes c's key and position in n. */
    uint16_t k = 0;
    while (n->statics[k] != c)
        k++;
    n->statics[k] = mid;
    return mid;
}

static void detach(node *p, node *c)
{
    if (p->param == c) {
        p->param = NULL;
    } else if (p->wild == c) {
        p->wild = NULL;
    } else {
        uint16_t i = 0;
        while (p->statics[i] != c)
            i++;
        p->nstatic--;
        memmove(p->keys + i, p->keys + i + 1, p->nstatic - i);
        memmove(p->statics + i, p->statics + i + 1,
                (p->nstatic - i) * sizeof *p->statics);
    }
}

/* After a failed insert, remove the route-less leaves it left from `n`
 * upwards, so that a parameter name it introduced cannot make later adds
 * conflict. Edges it split stay split, which changes no match. */
static void prune(node *n)
{
    while (n->parent && !n->set && !n->nstatic && !n->param && !n->wild) {
        node *p = n->parent;
        detach(p, n);
        node_free(n);
        n = p;
    }
}

/* ------------------------------------------------------------- insert */

/* Follow `segs` from the root without changing the tree. Returns -EINVAL
 * when a parameter or wildcard name differs from the one already at its
 * place, -EEXIST when the pattern's node already has a route in `bit`,
 * else 0 (the insert can then fail only for memory). */
static int check(const node *n, const seg *segs, int nsegs, unsigned bit)
{
    for (int k = 0; k < nsegs; k++) {
        const seg *sg = &segs[k];
        if (sg->kind == K_STATIC) {
            const char *s = sg->s;
            size_t left = sg->len;
            while (left) {
                const node *c = find_static(n, (unsigned char)*s);
                if (!c)
                    return 0; /* the rest will be new nodes */
                size_t l = common_prefix(c->label, c->label_len, s, left);
                if (l < c->label_len)
                    return 0; /* the insert splits c: below is new */
                n = c;
                s += l;
                left -= l;
            }
        } else {
            const node *c = sg->kind == K_PARAM ? n->param : n->wild;
            if (!c)
                return 0;
            if (c->label_len != sg->len || memcmp(c->label, sg->s, sg->len))
                return -EINVAL;
            n = c;
        }
    }
    return (n->set & bit) ? -EEXIST : 0;
}

/* Build the branch for `segs`, reusing and splitting what exists.
 * Returns 0 with *out the pattern's node, or -ENOMEM after pruning what
 * this call added. */
static int insert(node *root, const seg *segs, int nsegs, node **out)
{
    node *n = root;
    for (int k = 0; k < nsegs; k++) {
        const seg *sg = &segs[k];
        if (sg->kind == K_STATIC) {
            const char *s = sg->s;
            size_t left = sg->len;
            while (left) {
                node *c = find_static(n, (unsigned char)*s);
                if (!c) {
                    c = node_new(K_STATIC, s, (uint32_t)left, n);
                    if (!c || add_static(n, c) != 0) {
                        node_free(c);
                        goto nomem;
                    }
                    n = c;
                    break;
                }
                size_t l = common_prefix(c->label, c->label_len, s, left);
                if (l < c->label_len && !(c = split(n, c, l)))
                    goto nomem;
                n = c;
                s += l;
                left -= l;
            }
        } else {
            node **slot = sg->kind == K_PARAM ? &n->param : &n->wild;
            if (!*slot && !(*slot = node_new(sg->kind, sg->s, sg->len, n)))
                goto nomem;
            n = *slot;
        }
    }
    *out = n;
    return 0;
nomem:
    prune(n);
    return -ENOMEM;
}

/* -------------------------------------------------------------- public */

wisp__router *wisp__router_create(void)
{
    wisp__router *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->root.label = calloc(1, 1);
    if (!r->root.label) {
        free(r);
        return NULL;
    }
    return r;
}

void wisp__router_destroy(wisp__router *r)
{
    if (!r)
        return;
    /* Post-order walk through parent pointers: deep trees (one node per
     * byte of a long pattern) cost no stack. */
    node *root = &r->root, *n = root;
    for (;;) {
        node *c;
        if (n->nstatic) {
            c = n->statics[--n->nstatic];
        } else if (n->param) {
            c = n->param;
            n->param = NULL;
        } else if (n->wild) {
            c = n->wild;
            n->wild = NULL;
        } else if (n == root) {
            break;
        } else {
            c = n->parent;
            node_free(n);
        }
        n = c;
    }
    free(root->label);
    free(root->keys);
    free(root->statics);
    free(r);
}

int wisp__router_add(wisp__router *r, int method, const char *pattern,
                     void *route)
{
    if (!r || !pattern)
        return -EINVAL;
    unsigned bit;
    uint32_t allow;
    if (method == WISP_METHOD_ANY) {
        bit = ANY_BIT;
        allow = ALL_METHODS;
    } else if (method >= 0 && method < WISP_METHOD_COUNT) {
        bit = 1u << method;
        allow = bit;
        if (method == WISP_METHOD_GET)
            allow |= 1u << WISP_METHOD_HEAD;
    } else {
        return -EINVAL;
    }

    seg segs[MAX_SEGS];
    int nsegs = parse(pattern, segs);
    if (nsegs < 0)
        return nsegs;
    int rc = check(&r->root, segs, nsegs, bit);
    if (rc)
        return rc;
    node *n;
    rc = insert(&r->root, segs, nsegs, &n);
    if (rc)
        return rc;
    if (method == WISP_METHOD_ANY)
        n->any = route;
    else
        n->routes[method] = route;
    n->set |= (uint16_t)bit;
    n->allow_mask |= allow;
    return 0;
}

/* The route at n for `method`: its own slot, HEAD falling back to GET,
 * then ANY. Slots are tracked in n->set so a NULL route is a route. */
static inline bool route_at(const node *n, int method, void **route)
{
    unsigned set = n->set;
    if ((unsigned)method < WISP_METHOD_COUNT) {
        if (set & (1u << method)) {
            *route = n->routes[method];
            return true;
        }
        if (method == WISP_METHOD_HEAD && (set & (1u << WISP_METHOD_GET))) {
            *route = n->routes[WISP_METHOD_GET];
            return true;
        }
    }
    if (set & ANY_BIT) {
        *route = n->any;
        return true;
    }
    return false;
}

int wisp__router_match(const wisp__router *r, int method, const char *path,
                       size_t len, wisp__match *m)
{
    const node *root = &r->root, *n = root;
    const node *denied = NULL; /* first node reached without our method */
    size_t i = 0;              /* bytes of path consumed down to n */
    uint32_t np = 0;
    enum { SELF, STATIC, PARAM, WILD, UP } step = SELF;

    m->route = NULL;
    /* Captured lengths are uint32_t and backtracking subtracts them, so
     * a longer path (far beyond any request limit) matches nothing. */
    if ((uint64_t)len >> 32 != 0) /* see parse() */
        goto miss;
    for (;;) {
        switch (step) {
        case SELF:
            if (i == len && n->set) {
                if (route_at(n, method, &m->route))
                    goto found;
                if (!denied)
                    denied = n;
            }
            /* fall through */
        case STATIC:
            if (i < len) {
                const node *c = find_static(n, (unsigned char)path[i]);
                /* The key already matched the first byte. */
                if (c && c->label_len <= len - i &&
                    (c->label_len == 1 ||
                     memcmp(c->label + 1, path + i + 1, c->label_len - 1) == 0)) {
                    n = c;
                    i += c->label_len;
                    step = SELF;
                    continue;
                }
            }
            /* fall through */
        case PARAM:
            if (n->param && i < len && path[i] != '/') {
                const char *v = path + i;
                const char *slash = memchr(v, '/', len - i);
                size_t vlen = slash ? (size_t)(slash - v) : len - i;
                /* Every branch holds at most WISP__MAX_PARAMS captures,
                 * checked by parse(). */
                assert(np < WISP__MAX_PARAMS);
                m->params[np++] = (wisp__param){
                    n->param->label, v, n->param->label_len, (uint32_t)vlen};
                n = n->param;
                i += vlen;
                step = SELF;
                continue;
            }
            /* fall through */
        case WILD:
            if (n->wild && n->wild->set) {
                const node *w = n->wild;
                if (route_at(w, method, &m->route)) {
                    assert(np < WISP__MAX_PARAMS);
                    m->params[np++] = (wisp__param){
                        w->label, path + i, w->label_len, (uint32_t)(len - i)};
                    n = w;
                    goto found;
                }
                if (!denied)
                    denied = w;
            }
            /* fall through */
        case UP:
            if (n == root)
                goto miss;
            if (n->kind == K_STATIC) {
                i -= n->label_len;
                step = PARAM;
            } else {
                i -= m->params[--np].value_len;
                step = WILD;
            }
            n = n->parent;
            continue;
        }
    }

found:
    /* Beyond the header's promise, a hit also reports its node's methods,
     * so the server can answer OPTIONS with an Allow list. */
    m->nparams = np;
    m->allow_mask = n->allow_mask;
    return 0;
miss:
    m->nparams = 0;
    m->route = NULL;
    if (denied) {
        m->allow_mask = denied->allow_mask;
        return -EPERM;
    }
    m->allow_mask = 0;
    return -ENOENT;
}
