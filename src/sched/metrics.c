/* The metrics registry: families of sharded series and callbacks, and
 * their updates (the exposition text is metrics_text.c; the layout,
 * metrics_types.h).
 *
 * Updates. A series keeps WISP_METRICS_SHARDS shards, each alone on its
 * cache line. A thread takes a shard id once (round robin, thread-local)
 * and always updates that shard with one relaxed atomic read-modify-write:
 * threads on different cores write different lines, and threads that end
 * up sharing a shard are still counted exactly. Relaxed order suffices:
 * a series is a sum, and no other memory is published through it. The
 * renderer sums the shards. A gauge also has a base, which `set` moves so
 * that base + shards = the value set.
 *
 * Registry. Families live in an array sorted by name, series in an array
 * per family sorted by label value: lookups are binary searches under the
 * registry's mutex, and rendering walks both in order, which makes the
 * output deterministic. Only registration, removal and rendering take the
 * mutex; the update path never does. */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/metrics_int.h"
#include "sched/metrics_types.h"
#include "util/utf8.h"
#include "wisp/metrics.h"

/* ------------------------------------------------------------- shards */

static _Atomic unsigned next_shard;
static __thread unsigned tls_shard; /* shard + 1; 0: not chosen yet */

static inline unsigned my_shard(void)
{
    unsigned s = tls_shard;
    if (__builtin_expect(s == 0, 0)) {
        s = (atomic_fetch_add_explicit(&next_shard, 1,
                                       memory_order_relaxed) &
             (SHARDS - 1)) + 1;
        tls_shard = s;
    }
    return s - 1;
}

static void *alloc_lines(size_t size)
{
    size = (size + LINE - 1) / LINE * LINE;
    void *p = aligned_alloc(LINE, size);
    if (p)
        memset(p, 0, size);
    return p;
}

/* ----------------------------------------------------------- updates */

void wisp_counter_add(wisp_counter_t *c, uint64_t n)
{
    if (c)
        atomic_fetch_add_explicit(&c->shard[my_shard()].v, n,
                                  memory_order_relaxed);
}

void wisp_counter_inc(wisp_counter_t *c)
{
    wisp_counter_add(c, 1);
}

static uint64_t sum_shards(const shard64 *sh)
{
    uint64_t t = 0;
    for (unsigned i = 0; i < SHARDS; i++)
        t += atomic_load_explicit(&sh[i].v, memory_order_relaxed);
    return t;
}

uint64_t wisp_counter_value(const wisp_counter_t *c)
{
    return c ? sum_shards(c->shard) : 0;
}

/* Gauges add in uint64_t (wrapping, no overflow UB) and read as int64. */
void wisp_gauge_add(wisp_gauge_t *g, int64_t delta)
{
    if (g)
        atomic_fetch_add_explicit(&g->shard[my_shard()].v,
                                  (uint64_t)delta, memory_order_relaxed);
}

void wisp_gauge_inc(wisp_gauge_t *g)
{
    wisp_gauge_add(g, 1);
}

void wisp_gauge_dec(wisp_gauge_t *g)
{
    wisp_gauge_add(g, -1);
}

/* base = v - (shards now): an add that lands in a shard after that
 * shard was read counts on top of v (applied after the set), one before
 * is absorbed (applied before). */
void wisp_gauge_set(wisp_gauge_t *g, int64_t v)
{
    if (!g)
        return;
    atomic_store_explicit(&g->base, (uint64_t)v - sum_shards(g->shard),
                          memory_order_relaxed);
    atomic_store_explicit(&g->fbits, 0, memory_order_relaxed);
}

static int64_t to_i64(uint64_t u)
{
    /* Two's complement without implementation-defined conversion. */
    return u <= INT64_MAX ? (int64_t)u
                          : -(int64_t)(~u) - 1;
}

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

int64_t wisp_gauge_value(const wisp_gauge_t *g)
{
    if (!g)
        return 0;
    int64_t i = to_i64(atomic_load_explicit(&((wisp_gauge_t *)g)->base,
                                            memory_order_relaxed) +
                       sum_shards(g->shard));
    double f = gauge_fpart(g);
    /* Drop the fraction (towards zero), where the sum stays in range. */
    if (f != 0 && f > -9.2e18 && f < 9.2e18) {
        double t = (double)i + f;
        if (t > -9.2e18 && t < 9.2e18)
            return (int64_t)t;
    }
    return i;
}

double wisp_gauge_value_double(const wisp_gauge_t *g)
{
    if (!g)
        return 0;
    int64_t i = to_i64(atomic_load_explicit(&((wisp_gauge_t *)g)->base,
                                            memory_order_relaxed) +
                       sum_shards(g->shard));
    return (double)i + gauge_fpart(g);
}

void wisp_gauge_set_double(wisp_gauge_t *g, double v)
{
    if (!g)
        return;
    atomic_store_explicit(&g->base, (uint64_t)0 - sum_shards(g->shard),
                          memory_order_relaxed);
    atomic_store_explicit(&g->fbits, dbits(v), memory_order_relaxed);
}

void wisp_gauge_add_double(wisp_gauge_t *g, double delta)
{
    if (!g)
        return;
    uint64_t old = atomic_load_explicit(&g->fbits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(
        &g->fbits, &old, dbits(bitsd(old) + delta), memory_order_relaxed,
        memory_order_relaxed))
        ;
}

/* The first bucket whose bound is >= v (nb: +Inf). */
static size_t bucket_of(const family *f, double v)
{
    size_t lo = 0, hi = f->nb;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (f->bounds[mid] >= v)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

void wisp_histogram_observe(wisp_histogram_t *h, double v)
{
    if (!h || isnan(v))
        return;
    const family *f = h->s.fam;
    _Atomic uint64_t *w = h->w + (size_t)my_shard() * h->stride;
    atomic_fetch_add_explicit(&w[bucket_of(f, v)], 1, memory_order_relaxed);
    /* The sum: a CAS on the shard's own line, which other threads touch
     * only when more threads than shards run. */
    _Atomic uint64_t *sum = &w[f->nb + 1];
    uint64_t old = atomic_load_explicit(sum, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(
        sum, &old, dbits(bitsd(old) + v), memory_order_relaxed,
        memory_order_relaxed))
        ;
}

uint64_t wisp_histogram_count(const wisp_histogram_t *h)
{
    if (!h)
        return 0;
    uint64_t t = 0;
    for (size_t i = 0; i <= h->s.fam->nb; i++)
        t += hist_bucket(h, i);
    return t;
}

double wisp_histogram_sum(const wisp_histogram_t *h)
{
    if (!h)
        return 0;
    double t = 0;
    for (unsigned s = 0; s < SHARDS; s++)
        t += bitsd(atomic_load_explicit(
            &h->w[s * h->stride + h->s.fam->nb + 1], memory_order_relaxed));
    return t;
}

/* -------------------------------------------------------- validation */

static int valid_name(const char *s, int colon)
{
    size_t n = strlen(s);
    if (n == 0 || n > WISP_METRICS_MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 c == '_' || (colon && c == ':') ||
                 (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return 0;
    }
    return 1;
}

static int valid_utf8(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        return 0;
    wisp__utf8 u;
    wisp__utf8_init(&u);
    return wisp__utf8_feed(&u, s, n) == WISP__UTF8_OK &&
           wisp__utf8_complete(&u);
}

static int valid_label(const char *label, int type)
{
    if (!valid_name(label, 0) || strncmp(label, "__", 2) == 0)
        return 0;
    return !(type == T_HISTOGRAM && strcmp(label, "le") == 0);
}

static int valid_bounds(const double *b, size_t n)
{
    if (!b || n == 0 || n > WISP_METRICS_MAX_BUCKETS)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(b[i]) || (i > 0 && !(b[i] > b[i - 1])))
            return 0;
    }
    return 1;
}

/* ----------------------------------------------------------- lookups */

/* Index of `name` in the registry, or -(insertion point) - 1. */
static long find_family(const wisp_metrics_t *reg, const char *name)
{
    size_t lo = 0, hi = reg->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(reg->fam[mid]->name, name);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

static long find_series(const family *f, const char *value)
{
    size_t lo = 0, hi = f->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = f->ser[mid]->value ? strcmp(f->ser[mid]->value, value) : 0;
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -(long)lo - 1;
}

static const char *const hist_suffix[] = {"_bucket", "_sum", "_count"};

/* Whether `name` collides with a histogram's derived names: it is
 * stem + suffix of a histogram, or (for a new histogram) one of its own
 * derived names is taken. */
static int derived_clash(const wisp_metrics_t *reg, const char *name,
                         int type)
{
    size_t n = strlen(name);
    char buf[WISP_METRICS_MAX_NAME + 8];
    for (size_t i = 0; i < 3; i++) {
        size_t sl = strlen(hist_suffix[i]);
        if (n > sl && strcmp(name + n - sl, hist_suffix[i]) == 0) {
            memcpy(buf, name, n - sl);
            buf[n - sl] = 0;
            long k = find_family(reg, buf);
            if (k >= 0 && reg->fam[k]->type == T_HISTOGRAM)
                return 1;
        }
        if (type == T_HISTOGRAM) {
            memcpy(buf, name, n);
            memcpy(buf + n, hist_suffix[i], sl + 1);
            if (find_family(reg, buf) >= 0)
                return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------ registration */

wisp_metrics_t *wisp_metrics_create(void)
{
    wisp_metrics_t *reg = calloc(1, sizeof *reg);
    if (!reg) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&reg->mu, NULL);
    return reg;
}

static void series_free(series *s)
{
    if (!s)
        return;
    free(s->value);
    if (s->fam && s->fam->type == T_HISTOGRAM && !s->fam->is_fn)
        free(((wisp_histogram_t *)s)->w);
    free(s);
}

static void family_free(family *f)
{
    for (uint32_t i = 0; i < f->n; i++)
        series_free(f->ser[i]);
    free(f->ser);
    free(f->name);
    free(f->help);
    free(f->label);
    free(f->bounds);
    free(f);
}

void wisp_metrics_destroy(wisp_metrics_t *reg)
{
    if (!reg)
        return;
    for (uint32_t i = 0; i < reg->n; i++)
        family_free(reg->fam[i]);
    free(reg->fam);
    pthread_mutex_destroy(&reg->mu);
    free(reg);
}

typedef struct want {
    int type;
    int is_fn;
    const char *name, *help, *label, *value;
    const double *bounds;
    size_t nb;
    wisp_metrics_fn fn;
    void *arg;
} want;

/* Check what can be checked without the registry. Returns 0 or -EINVAL. */
static int check_want(const want *w)
{
    if (!w->name || !valid_name(w->name, 1))
        return -EINVAL;
    if (w->help && !valid_utf8(w->help, WISP_METRICS_MAX_HELP))
        return -EINVAL;
    if (!w->label != !w->value)
        return -EINVAL;
    if (w->label && (!valid_label(w->label, w->type) ||
                     !valid_utf8(w->value, WISP_METRICS_MAX_VALUE)))
        return -EINVAL;
    if (w->type == T_HISTOGRAM && w->bounds && !valid_bounds(w->bounds, w->nb))
        return -EINVAL;
    if (w->is_fn && !w->fn)
        return -EINVAL;
    return 0;
}

/* Does family `f` accept the request `w`? 0 or -EEXIST (-EINVAL for bad
 * bounds). */
static int family_matches(const family *f, const want *w)
{
    if (f->type != w->type || f->is_fn != w->is_fn)
        return -EEXIST;
    if (!f->label != !w->label || (f->label && strcmp(f->label, w->label)))
        return -EEXIST;
    if (w->help && strcmp(f->help, w->help))
        return -EEXIST;
    if (w->type == T_HISTOGRAM && w->bounds &&
        (w->nb != f->nb ||
         memcmp(w->bounds, f->bounds, f->nb * sizeof *f->bounds)))
        return -EEXIST;
    return 0;
}

static family *family_new(const want *w)
{
    family *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->type = w->type;
    f->is_fn = w->is_fn;
    f->name = strdup(w->name);
    f->help = strdup(w->help);
    f->label = w->label ? strdup(w->label) : NULL;
    if (w->type == T_HISTOGRAM) {
        f->nb = w->nb;
        f->bounds = malloc(w->nb * sizeof *f->bounds);
        if (f->bounds)
            memcpy(f->bounds, w->bounds, w->nb * sizeof *f->bounds);
    }
    if (!f->name || !f->help || (w->label && !f->label) ||
        (w->type == T_HISTOGRAM && !f->bounds)) {
        family_free(f);
        return NULL;
    }
    return f;
}

static series *series_new(family *f, const want *w)
{
    series *s;
    if (f->is_fn) {
        s = calloc(1, sizeof *s);
    } else if (f->type == T_COUNTER) {
        s = alloc_lines(sizeof(wisp_counter_t));
    } else if (f->type == T_GAUGE) {
        s = alloc_lines(sizeof(wisp_gauge_t));
    } else {
        wisp_histogram_t *h = calloc(1, sizeof *h);
        s = &h->s;
        if (h) {
            /* nb + 1 counts and the sum, in whole lines per shard. */
            size_t words = f->nb + 2;
            h->stride = (words * 8 + LINE - 1) / LINE * (LINE / 8);
            h->w = alloc_lines(SHARDS * h->stride * 8);
            if (!h->w) {
                free(h);
                s = NULL;
            }
        }
    }
    if (!s)
        return NULL;
    s->fam = f;
    s->fn = w->fn;
    s->arg = w->arg;
    if (w->value && !(s->value = strdup(w->value))) {
        series_free(s);
        return NULL;
    }
    return s;
}

static int insert_ptr(void ***arr, uint32_t *n, uint32_t *cap, size_t at,
                      void *p)
{
    if (*n == *cap) {
        uint32_t nc = *cap ? *cap * 2 : 8;
        void **a = realloc(*arr, nc * sizeof *a);
        if (!a)
            return -ENOMEM;
        *arr = a;
        *cap = nc;
    }
    memmove(*arr + at + 1, *arr + at, (*n - at) * sizeof **arr);
    (*arr)[at] = p;
    (*n)++;
    return 0;
}

static void remove_ptr(void **arr, uint32_t *n, size_t at)
{
    memmove(arr + at, arr + at + 1, (*n - at - 1) * sizeof *arr);
    (*n)--;
}

/* Get or create the series `w` asks for. Returns it, or NULL with *err. */
static series *get_series(wisp_metrics_t *reg, const want *w, int *err)
{
    *err = reg ? check_want(w) : -EINVAL;
    if (*err)
        return NULL;
    pthread_mutex_lock(&reg->mu);
    series *s = NULL;
    family *f = NULL;
    int created = 0;
    long k = find_family(reg, w->name);
    if (k >= 0) {
        f = reg->fam[k];
        *err = family_matches(f, w);
    } else if (!w->help || (w->type == T_HISTOGRAM && !w->bounds)) {
        *err = -EINVAL;
    } else if (derived_clash(reg, w->name, w->type)) {
        *err = -EEXIST;
    } else if (reg->n >= WISP_METRICS_MAX_FAMILIES) {
        *err = -ENOSPC;
    } else if (!(f = family_new(w))) {
        *err = -ENOMEM;
    } else {
        created = 1;
    }
    if (*err)
        goto out;
    long j = w->value ? find_series(f, w->value) : (f->n ? 0 : -1);
    if (j >= 0) {
        if (f->is_fn)
            *err = -EEXIST;
        else
            s = f->ser[j];
        goto out;
    }
    if (f->n >= WISP_METRICS_MAX_SERIES) {
        *err = -ENOSPC;
        goto out;
    }
    s = series_new(f, w);
    if (!s || insert_ptr((void ***)&f->ser, &f->n, &f->cap,
                         (size_t)(-j - 1), s) < 0) {
        series_free(s);
        s = NULL;
        *err = -ENOMEM;
        goto out;
    }
    if (created && insert_ptr((void ***)&reg->fam, &reg->n, &reg->cap,
                              (size_t)(-k - 1), f) < 0) {
        *err = -ENOMEM; /* family_free below frees s too */
        s = NULL;
        goto out;
    }
    created = 0;
out:
    if (created)
        family_free(f);
    pthread_mutex_unlock(&reg->mu);
    return s;
}

static void *get_or_errno(wisp_metrics_t *reg, const want *w)
{
    int err;
    series *s = get_series(reg, w, &err);
    if (!s)
        errno = -err;
    return s;
}

wisp_counter_t *wisp_metrics_counter(wisp_metrics_t *reg, const char *name,
                                     const char *help, const char *label,
                                     const char *value)
{
    want w = {T_COUNTER, 0, name, help, label, value, NULL, 0, NULL, NULL};
    return get_or_errno(reg, &w);
}

wisp_gauge_t *wisp_metrics_gauge(wisp_metrics_t *reg, const char *name,
                                 const char *help, const char *label,
                                 const char *value)
{
    want w = {T_GAUGE, 0, name, help, label, value, NULL, 0, NULL, NULL};
    return get_or_errno(reg, &w);
}

wisp_histogram_t *wisp_metrics_histogram(wisp_metrics_t *reg,
                                         const char *name, const char *help,
                                         const char *label, const char *value,
                                         const double *bounds, size_t nbounds)
{
    want w = {T_HISTOGRAM, 0, name, help, label, value, bounds, nbounds,
              NULL, NULL};
    return get_or_errno(reg, &w);
}

static int add_fn(wisp_metrics_t *reg, int type, const char *name,
                  const char *help, const char *label, const char *value,
                  wisp_metrics_fn fn, void *arg)
{
    want w = {type, 1, name, help, label, value, NULL, 0, fn, arg};
    int err;
    return get_series(reg, &w, &err) ? 0 : err;
}

int wisp_metrics_gauge_fn(wisp_metrics_t *reg, const char *name,
                          const char *help, const char *label,
                          const char *value, wisp_metrics_fn fn, void *arg)
{
    return add_fn(reg, T_GAUGE, name, help, label, value, fn, arg);
}

int wisp_metrics_counter_fn(wisp_metrics_t *reg, const char *name,
                            const char *help, const char *label,
                            const char *value, wisp_metrics_fn fn, void *arg)
{
    return add_fn(reg, T_COUNTER, name, help, label, value, fn, arg);
}

int wisp_metrics_remove_fn(wisp_metrics_t *reg, const void *arg)
{
    if (!reg)
        return -EINVAL;
    int removed = 0;
    pthread_mutex_lock(&reg->mu);
    for (uint32_t i = 0; i < reg->n;) {
        family *f = reg->fam[i];
        if (f->is_fn) {
            for (uint32_t j = 0; j < f->n;) {
                if (f->ser[j]->arg == arg) {
                    series_free(f->ser[j]);
                    remove_ptr((void **)f->ser, &f->n, j);
                    removed++;
                } else {
                    j++;
                }
            }
        }
        if (f->n == 0) {
            family_free(f);
            remove_ptr((void **)reg->fam, &reg->n, i);
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&reg->mu);
    return removed;
}

/* ---------------------------------------------------- internal helpers */

int wisp__metrics_remove_one(wisp_metrics_t *reg, const char *name,
                             const char *value, const void *arg)
{
    int removed = 0;
    pthread_mutex_lock(&reg->mu);
    long k = find_family(reg, name);
    if (k >= 0 && reg->fam[k]->is_fn) {
        family *f = reg->fam[k];
        long j = value ? find_series(f, value) : (f->n ? 0 : -1);
        if (j >= 0 && f->ser[j]->arg == arg) {
            series_free(f->ser[j]);
            remove_ptr((void **)f->ser, &f->n, (size_t)j);
            removed = 1;
            if (f->n == 0) {
                family_free(f);
                remove_ptr((void **)reg->fam, &reg->n, (size_t)k);
            }
        }
    }
    pthread_mutex_unlock(&reg->mu);
    return removed;
}

int wisp__metrics_add_fns(wisp_metrics_t *reg, const wisp__metric_fn *d,
                          size_t n, const char *label, const char *value,
                          void *arg)
{
    for (size_t i = 0; i < n; i++) {
        int r = add_fn(reg, d[i].counter ? T_COUNTER : T_GAUGE, d[i].name,
                       d[i].help, label, value, d[i].fn, arg);
        if (r < 0) {
            while (i--)
                wisp__metrics_remove_one(reg, d[i].name, value, arg);
            return r;
        }
    }
    return 0;
}
