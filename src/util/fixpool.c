/* Fixed-size object pool: see fixpool.h. */
#include <stdlib.h>

#include "util/fixpool.h"

void wisp__fixpool_init(wisp__fixpool *p, size_t size, uint32_t per_slab)
{
    p->free = NULL;
    p->slabs = NULL;
    p->nslabs = p->slab_cap = 0;
    if (size < sizeof(void *))
        size = sizeof(void *);
    p->size = (uint32_t)((size + 7) & ~(size_t)7);
    p->per_slab = per_slab ? per_slab : 64;
}

int wisp__fixpool_grow(wisp__fixpool *p)
{
    if (p->nslabs == p->slab_cap) {
        uint32_t cap = p->slab_cap ? p->slab_cap * 2 : 16;
        void **s = realloc(p->slabs, cap * sizeof *s);
        if (!s)
            return -1;
        p->slabs = s;
        p->slab_cap = cap;
    }
    char *slab = malloc((size_t)p->size * p->per_slab);
    if (!slab)
        return -1;
    p->slabs[p->nslabs++] = slab;
    for (uint32_t i = p->per_slab; i-- > 0;)
        wisp__fixpool_put(p, slab + (size_t)i * p->size);
    return 0;
}

void wisp__fixpool_destroy(wisp__fixpool *p)
{
    for (uint32_t i = 0; i < p->nslabs; i++)
        free(p->slabs[i]);
    free(p->slabs);
    p->slabs = NULL;
    p->nslabs = p->slab_cap = 0;
    p->free = NULL;
}
