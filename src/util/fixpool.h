/* Internal: a pool of fixed-size objects carved from slabs, for objects
 * every connection (or session) of a loop has: no malloc header per
 * object, no malloc call on the hot path, and one thread only (the
 * loop's), so no locking. Slabs are freed when the pool is destroyed. */
#ifndef WISP_UTIL_FIXPOOL_H
#define WISP_UTIL_FIXPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct wisp__fixpool {
    void *free;          /* free objects, linked through their first word */
    void **slabs;
    uint32_t nslabs;
    uint32_t slab_cap;
    uint32_t size;       /* object size, a multiple of 8 */
    uint32_t per_slab;
} wisp__fixpool;

/* Objects of `size` bytes (rounded up to 8), `per_slab` to a slab. */
void wisp__fixpool_init(wisp__fixpool *p, size_t size, uint32_t per_slab);
/* Free every slab (outstanding objects become invalid). */
void wisp__fixpool_destroy(wisp__fixpool *p);
int wisp__fixpool_grow(wisp__fixpool *p);

/* An object (contents undefined), or NULL when out of memory. */
static inline void *wisp__fixpool_get(wisp__fixpool *p)
{
    if (!p->free && wisp__fixpool_grow(p) < 0)
        return NULL;
    void *o = p->free;
    p->free = *(void **)o;
    return o;
}

static inline void wisp__fixpool_put(wisp__fixpool *p, void *o)
{
    *(void **)o = p->free;
    p->free = o;
}

#endif
