/* The metrics registry: families of sharded series, callbacks, and the
 * Prometheus text exposition format 0.0.4.
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
#include "util/utf8.h"
#include "wisp/metrics.h"

#define LINE 64
#define SHARDS WISP_METRICS_SHARDS

static_assert((SHARDS & (SHARDS - 1)) == 0, "shard count: a power of two");

enum { T_COUNTER, T_GAUGE, T_HISTOGRAM };
static const char *const type_names[] = {"counter", "gauge", "histogram"};

typedef struct family family;

/* What every series starts with. */
typedef struct series {
    family *fam;
    char *value;          /* label value, NULL without a label */
    wisp_metrics_fn fn;   /* callback series */
    void *arg;
} series;

typedef struct shard64 {
    alignas(LINE) _Atomic uint64_t v;
} shard64;

struct wisp_counter {
    series s;
    shard64 shard[SHARDS];
};

struct wisp_gauge {
    series s;
    _Atomic uint64_t base; /* int64 in two's complement */
    shard64 shard[SHARDS];
};

/* A histogram shard: nb + 1 bucket counts (not cumulative; the last is
 * +Inf), then the sum's bits, padded to whole lines. */
struct wisp_histogram {
    series s;
    size_t stride;         /* words per shard */
    _Atomic uint64_t *w;   /* SHARDS * stride words, line-aligned */
};

struct family {
    char *name;
    char *help;
    char *label;
    int type;
    int is_fn;
    double *bounds;
    size_t nb;
    series **ser;         /* sorted by value */
    uint32_t n, cap;
};

struct wisp_metrics {
    pthread_mutex_t mu;
    family **fam;         /* sorted by name */
    uint32_t n, cap;
};

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
    if (g)
        atomic_store_explicit(&g->base, (uint64_t)v - sum_shards(g->shard),
                              memory_order_relaxed);
}

static int64_t to_i64(uint64_t u)
{
    /* Two's complement without implementation-defined conversion. */
    return u <= INT64_MAX ? (int64_t)u
                          : -(int64_t)(~u) - 1;
}

int64_t wisp_gauge_value(const wisp_gauge_t *g)
{
    if (!g)
        return 0;
    return to_i64(atomic_load_explicit(&g->base, memory_order_relaxed) +
                  sum_shards(g->shard));
}

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bitsd(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
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

/* Bucket i's count over all shards (not cumulative). */
static uint64_t hist_bucket(const wisp_histogram_t *h, size_t i)
{
    uint64_t t = 0;
    for (unsigned s = 0; s < SHARDS; s++)
        t += atomic_load_explicit(&h->w[s * h->stride + i],
                                  memory_order_relaxed);
    return t;
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

/* --------------------------------------------------------- rendering */

typedef struct buf {
    char *p;
    size_t len, cap;
    int oom;
} buf;

static void b_need(buf *b, size_t n)
{
    if (b->oom || b->len + n + 1 <= b->cap)
        return;
    size_t nc = b->cap ? b->cap : 1024;
    while (nc < b->len + n + 1)
        nc *= 2;
    char *p = realloc(b->p, nc);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = nc;
}

static void b_put(buf *b, const char *s, size_t n)
{
    b_need(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void b_str(buf *b, const char *s)
{
    b_put(b, s, strlen(s));
}

/* Help text escapes backslash and newline; label values also '"'. */
static void b_escaped(buf *b, const char *s, int quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *rep = NULL;
        if (*s == '\\')
            rep = "\\\\";
        else if (*s == '\n')
            rep = "\\n";
        else if (quote && *s == '"')
            rep = "\\\"";
        if (rep) {
            b_put(b, run, (size_t)(s - run));
            b_str(b, rep);
            run = s + 1;
        }
    }
    b_put(b, run, (size_t)(s - run));
}

/* A double in the fewest digits that read back exactly: integers below
 * 2^53 in plain decimal ("42", "2400000"); others as Go's
 * strconv.FormatFloat(v, 'g', -1, 64) writes them, which is what
 * Prometheus' own clients emit ("0.25", "1e-06", "1.5e+21"); +Inf, -Inf
 * and NaN as the format spells them. */
static void b_double(buf *b, double v)
{
    char tmp[48];
    if (isnan(v)) {
        b_str(b, "NaN");
    } else if (isinf(v)) {
        b_str(b, v > 0 ? "+Inf" : "-Inf");
    } else if (v == 0) {
        b_str(b, "0");
    } else if (v == trunc(v) && fabs(v) < 9007199254740992.0) {
        snprintf(tmp, sizeof tmp, "%.0f", v);
        b_str(b, tmp);
    } else {
        int prec = 1;
        for (; prec < 17; prec++) {
            snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
            if (strtod(tmp, NULL) == v)
                break;
        }
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
        int exp = atoi(strchr(tmp, 'e') + 1);
        if (exp >= -4 && exp < 6) {
            int dec = prec - 1 - exp;
            snprintf(tmp, sizeof tmp, "%.*f", dec > 0 ? dec : 0, v);
        }
        b_str(b, tmp);
    }
}

static void b_u64(buf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    b_put(b, tmp, (size_t)n);
}

static void b_i64(buf *b, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%lld", (long long)v);
    b_put(b, tmp, (size_t)n);
}

/* name[suffix]{label="value"[,le="bound"]} and a space. */
static void b_series_head(buf *b, const family *f, const series *s,
                          const char *suffix, const double *le)
{
    b_str(b, f->name);
    if (suffix)
        b_str(b, suffix);
    if (f->label || le) {
        b_str(b, "{");
        if (f->label) {
            b_str(b, f->label);
            b_str(b, "=\"");
            b_escaped(b, s->value, 1);
            b_str(b, "\"");
        }
        if (le) {
            b_str(b, f->label ? ",le=\"" : "le=\"");
            b_double(b, *le);
            b_str(b, "\"");
        }
        b_str(b, "}");
    }
    b_str(b, " ");
}

static void render_series(buf *b, const family *f, const series *s)
{
    if (f->is_fn) {
        b_series_head(b, f, s, NULL, NULL);
        b_double(b, s->fn(s->arg));
    } else if (f->type == T_COUNTER) {
        b_series_head(b, f, s, NULL, NULL);
        b_u64(b, wisp_counter_value((const wisp_counter_t *)s));
    } else if (f->type == T_GAUGE) {
        b_series_head(b, f, s, NULL, NULL);
        b_i64(b, wisp_gauge_value((const wisp_gauge_t *)s));
    } else {
        const wisp_histogram_t *h = (const wisp_histogram_t *)s;
        uint64_t cum = 0;
        for (size_t i = 0; i <= f->nb; i++) {
            cum += hist_bucket(h, i);
            double le = i < f->nb ? f->bounds[i] : INFINITY;
            b_series_head(b, f, s, "_bucket", &le);
            b_u64(b, cum);
            b_str(b, "\n");
        }
        b_series_head(b, f, s, "_sum", NULL);
        b_double(b, wisp_histogram_sum(h));
        b_str(b, "\n");
        b_series_head(b, f, s, "_count", NULL);
        b_u64(b, cum);
    }
    b_str(b, "\n");
}

int wisp_metrics_render(wisp_metrics_t *reg, char **text, size_t *len)
{
    if (!reg || !text)
        return -EINVAL;
    buf b = {0};
    b_need(&b, 0);
    pthread_mutex_lock(&reg->mu);
    for (uint32_t i = 0; i < reg->n && !b.oom; i++) {
        const family *f = reg->fam[i];
        b_str(&b, "# HELP ");
        b_str(&b, f->name);
        b_str(&b, " ");
        b_escaped(&b, f->help, 0);
        b_str(&b, "\n# TYPE ");
        b_str(&b, f->name);
        b_str(&b, " ");
        b_str(&b, type_names[f->type]);
        b_str(&b, "\n");
        for (uint32_t j = 0; j < f->n; j++)
            render_series(&b, f, f->ser[j]);
    }
    pthread_mutex_unlock(&reg->mu);
    if (b.oom) {
        free(b.p);
        *text = NULL;
        return -ENOMEM;
    }
    *text = b.p;
    if (len)
        *len = b.len;
    return 0;
}

/* ------------------------------------------------------------- route */

static void free_text(void *p)
{
    free(p);
}

void wisp_metrics_handler(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)req;
    char *text;
    size_t len;
    if (wisp_metrics_render(arg, &text, &len) < 0) {
        wisp_res_send(res, 500, "text/plain", "out of memory\n", 14);
        return;
    }
    wisp_res_header(res, "Cache-Control", "no-store");
    wisp_res_send_ref(res, 200, WISP_METRICS_CONTENT_TYPE, text, len,
                      free_text, text);
}

int wisp_metrics_route(wisp_server_t *srv, const char *path,
                       wisp_metrics_t *reg)
{
    if (!srv || !reg)
        return -EINVAL;
    return wisp_server_route(srv, WISP_METHOD_GET, path, wisp_metrics_handler,
                             reg, NULL);
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
