/* The Prometheus text exposition format (0.0.4) of a metrics registry,
 * and the route that serves it. Families come out in name order, series
 * in label-value order (both arrays are kept sorted, metrics.c), so the
 * output is deterministic. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/metrics_types.h"

static const char *const type_names[] = {"counter", "gauge", "histogram"};

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
    } else if (v > -9007199254740992.0 && v < 9007199254740992.0 &&
               v == (double)(int64_t)v) { /* no libm: wisp links libc only */
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
        const wisp_gauge_t *g = (const wisp_gauge_t *)s;
        b_series_head(b, f, s, NULL, NULL);
        if (gauge_fpart(g) != 0)
            b_double(b, wisp_gauge_value_double(g));
        else
            b_i64(b, wisp_gauge_value(g));
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
    if (!b.oom)
        b.p[0] = 0; /* an empty registry renders as "" */
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
