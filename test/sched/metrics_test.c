/* Metrics registry (src/sched/metrics.c) and the server's and pools'
 * metrics (src/server_metrics.c): exact exposition text for each type,
 * escaping, number forms, deterministic order; every refused name, label
 * and bound; histogram bucket edges; exact sums from 8 threads updating
 * while another renders; gauge set against adds; callbacks and their
 * removal; the limits; pool and server registration and rollback. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "test.h"
#include "wisp.h"
#include "ws/ws_client.h"

static char *render(wisp_metrics_t *reg)
{
    char *t = NULL;
    size_t len = 0;
    int r = wisp_metrics_render(reg, &t, &len);
    CHECK_EQ_INT(r, 0);
    CHECK_EQ_INT(len, t ? strlen(t) : 0);
    return t;
}

#define CHECK_TEXT(reg, want)                                               \
    do {                                                                    \
        char *got_ = render(reg);                                           \
        CHECK_MSG(got_ && strcmp(got_, (want)) == 0,                        \
                  "got:\n%s\nwant:\n%s", got_ ? got_ : "(null)", (want));   \
        free(got_);                                                         \
    } while (0)

/* ------------------------------------------------------ exposition */

static void test_counter_text(void)
{
    wisp_metrics_t *reg = wisp_metrics_create();
    CHECK_TEXT(reg, "");
    /* Registered out of order: rendered by name, then by label value. */
    wisp_counter_t *c5 = wisp_metrics_counter(reg, "http_requests_total",
                                              "Requests.", "class", "5xx");
    wisp_counter_t *c2 = wisp_metrics_counter(reg, "http_requests_total",
                                              NULL, "class", "2xx");
    wisp_counter_t *a = wisp_metrics_counter(reg, "aaa_total", "First.",
                                             NULL, NULL);
    CHECK(c5 && c2 && a);
    /* Same value again: the same handle. */
    CHECK(wisp_metrics_counter(reg, "http_requests_total", "Requests.",
                               "class", "2xx") == c2);
    CHECK(wisp_metrics_counter(reg, "aaa_total", NULL, NULL, NULL) == a);
    wisp_counter_add(c2, 41);
    wisp_counter_inc(c2);
    wisp_counter_add(a, UINT64_MAX);
    CHECK_EQ_INT(wisp_counter_value(c2), 42);
    CHECK_EQ_INT(wisp_counter_value(c5), 0);
    CHECK_TEXT(reg, "# HELP aaa_total First.\n"
                    "# TYPE aaa_total counter\n"
                    "aaa_total 18446744073709551615\n"
                    "# HELP http_requests_total Requests.\n"
                    "# TYPE http_requests_total counter\n"
                    "http_requests_total{class=\"2xx\"} 42\n"
                    "http_requests_total{class=\"5xx\"} 0\n");
    /* NULL handles are no-ops. */
    wisp_counter_inc(NULL);
    wisp_counter_add(NULL, 3);
    CHECK_EQ_INT(wisp_counter_value(NULL), 0);
    wisp_metrics_destroy(reg);
    wisp_metrics_destroy(NULL);
}

static void test_gauge_text(void)
{
    wisp_metrics_t *reg = wisp_metrics_create();
    wisp_gauge_t *g = wisp_metrics_gauge(reg, "sessions", "Sessions.",
                                         "state", "listening");
    wisp_gauge_t *h = wisp_metrics_gauge(reg, "sessions", NULL, "state",
                                         "idle");
    CHECK(g && h);
    wisp_gauge_inc(g);
    wisp_gauge_inc(g);
    wisp_gauge_dec(g);
    wisp_gauge_add(h, -5);
    CHECK_EQ_INT(wisp_gauge_value(g), 1);
    CHECK_EQ_INT(wisp_gauge_value(h), -5);
    CHECK_TEXT(reg, "# HELP sessions Sessions.\n"
                    "# TYPE sessions gauge\n"
                    "sessions{state=\"idle\"} -5\n"
                    "sessions{state=\"listening\"} 1\n");
    /* set wins over what was added before; adds after it count on top. */
    wisp_gauge_set(h, 100);
    CHECK_EQ_INT(wisp_gauge_value(h), 100);
    wisp_gauge_add(h, 7);
    CHECK_EQ_INT(wisp_gauge_value(h), 107);
    wisp_gauge_set(h, INT64_MIN);
    CHECK(wisp_gauge_value(h) == INT64_MIN);
    wisp_gauge_set(h, INT64_MAX);
    CHECK(wisp_gauge_value(h) == INT64_MAX);
    wisp_gauge_set(h, 0);
    CHECK_EQ_INT(wisp_gauge_value(h), 0);
    wisp_gauge_set(NULL, 1);
    CHECK_EQ_INT(wisp_gauge_value(NULL), 0);

    /* Double values: set, add, the integer part beside them, and back to
     * an integer with wisp_gauge_set. */
    wisp_gauge_t *r = wisp_metrics_gauge(reg, "ratio", "Ratio.", NULL, NULL);
    wisp_gauge_add(r, 5);
    wisp_gauge_set_double(r, 0.25);
    CHECK(wisp_gauge_value_double(r) == 0.25);
    CHECK_EQ_INT(wisp_gauge_value(r), 0);
    wisp_gauge_add_double(r, 2.5);
    wisp_gauge_add(r, 1);
    CHECK(wisp_gauge_value_double(r) == 3.75);
    CHECK_EQ_INT(wisp_gauge_value(r), 3);
    wisp_gauge_add(r, -10);
    CHECK(wisp_gauge_value_double(r) == -6.25);
    CHECK_EQ_INT(wisp_gauge_value(r), -6);
    char *t = render(reg);
    CHECK_MSG(t && strstr(t, "\nratio -6.25\n"), "%s", t);
    free(t);
    wisp_gauge_set(r, 4);
    CHECK(wisp_gauge_value_double(r) == 4);
    t = render(reg);
    CHECK(t && strstr(t, "\nratio 4\n"));
    free(t);
    wisp_gauge_set_double(r, 1e300); /* beyond int64: value keeps 0 */
    CHECK_EQ_INT(wisp_gauge_value(r), 0);
    CHECK(wisp_gauge_value_double(r) == 1e300);
    wisp_gauge_set_double(NULL, 1);
    wisp_gauge_add_double(NULL, 1);
    CHECK(wisp_gauge_value_double(NULL) == 0);
    wisp_metrics_destroy(reg);
}

static void test_histogram_text(void)
{
    wisp_metrics_t *reg = wisp_metrics_create();
    static const double b[] = {0.005, 0.1, 1, 2.5};
    wisp_histogram_t *h = wisp_metrics_histogram(
        reg, "latency_seconds", "Latency.", "provider", "asr", b, 4);
    /* A second child takes the family's bounds with NULL. */
    wisp_histogram_t *t = wisp_metrics_histogram(
        reg, "latency_seconds", NULL, "provider", "tts", NULL, 0);
    CHECK(h && t);
    wisp_histogram_observe(h, 0.1);   /* == bound: in le="0.1" */
    wisp_histogram_observe(h, 0.5);
    wisp_histogram_observe(h, 3);     /* +Inf */
    wisp_histogram_observe(h, NAN);   /* ignored */
    CHECK_EQ_INT(wisp_histogram_count(h), 3);
    CHECK(wisp_histogram_sum(h) == 3.6);
    CHECK_TEXT(reg,
               "# HELP latency_seconds Latency.\n"
               "# TYPE latency_seconds histogram\n"
               "latency_seconds_bucket{provider=\"asr\",le=\"0.005\"} 0\n"
               "latency_seconds_bucket{provider=\"asr\",le=\"0.1\"} 1\n"
               "latency_seconds_bucket{provider=\"asr\",le=\"1\"} 2\n"
               "latency_seconds_bucket{provider=\"asr\",le=\"2.5\"} 2\n"
               "latency_seconds_bucket{provider=\"asr\",le=\"+Inf\"} 3\n"
               "latency_seconds_sum{provider=\"asr\"} 3.6\n"
               "latency_seconds_count{provider=\"asr\"} 3\n"
               "latency_seconds_bucket{provider=\"tts\",le=\"0.005\"} 0\n"
               "latency_seconds_bucket{provider=\"tts\",le=\"0.1\"} 0\n"
               "latency_seconds_bucket{provider=\"tts\",le=\"1\"} 0\n"
               "latency_seconds_bucket{provider=\"tts\",le=\"2.5\"} 0\n"
               "latency_seconds_bucket{provider=\"tts\",le=\"+Inf\"} 0\n"
               "latency_seconds_sum{provider=\"tts\"} 0\n"
               "latency_seconds_count{provider=\"tts\"} 0\n");
    CHECK_EQ_INT(wisp_histogram_count(NULL), 0);
    wisp_histogram_observe(NULL, 1);
    /* The ready-made latency bounds are valid bounds. */
    static const double lat[] = WISP_METRICS_LATENCY_SECONDS;
    wisp_histogram_t *l = wisp_metrics_histogram(
        reg, "req_seconds", "Req.", NULL, NULL, lat, sizeof lat / sizeof *lat);
    CHECK(l);
    wisp_histogram_observe(l, 0.0025);
    char *txt = render(reg);
    CHECK(txt && strstr(txt, "req_seconds_bucket{le=\"0.001\"} 0\n"
                         "req_seconds_bucket{le=\"0.0025\"} 1\n"));
    CHECK(txt && strstr(txt, "req_seconds_bucket{le=\"10\"} 1\n"
                         "req_seconds_bucket{le=\"+Inf\"} 1\n"));
    free(txt);
    wisp_metrics_destroy(reg);
}

/* The next double after `x` towards +Inf (`x` finite, not -0), without
 * libm's nextafter. */
static double next_up(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    if (x >= 0)
        u++;
    else
        u--;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* Bucket edges: a value equal to a bound goes in that bound's bucket, the
 * next double above it in the next one; infinities and negative bounds. */
static void test_histogram_edges(void)
{
    wisp_metrics_t *reg = wisp_metrics_create();
    static const double b[] = {-1, 0, 1, 2};
    wisp_histogram_t *h = wisp_metrics_histogram(reg, "h", "Edges.", NULL,
                                                 NULL, b, 4);
    CHECK(h);
    wisp_histogram_observe(h, -INFINITY); /* le=-1 */
    wisp_histogram_observe(h, -1);        /* le=-1 */
    wisp_histogram_observe(h, next_up(-1)); /* le=0 */
    wisp_histogram_observe(h, 0);         /* le=0 */
    wisp_histogram_observe(h, -0.0);      /* le=0 (-0 == 0) */
    wisp_histogram_observe(h, 1);         /* le=1 */
    wisp_histogram_observe(h, next_up(1)); /* le=2 */
    wisp_histogram_observe(h, 2);         /* le=2 */
    wisp_histogram_observe(h, next_up(2)); /* +Inf */
    wisp_histogram_observe(h, INFINITY);  /* +Inf */
    char *t = render(reg);
    const char *want_buckets =
        "h_bucket{le=\"-1\"} 2\n"
        "h_bucket{le=\"0\"} 5\n"
        "h_bucket{le=\"1\"} 6\n"
        "h_bucket{le=\"2\"} 8\n"
        "h_bucket{le=\"+Inf\"} 10\n";
    CHECK_MSG(t && strstr(t, want_buckets), "%s", t);
    CHECK(t && strstr(t, "h_count 10\n"));
    /* -Inf + Inf: the sum is NaN, rendered as the format spells it. */
    CHECK(t && strstr(t, "h_sum NaN\n"));
    free(t);
    wisp_metrics_destroy(reg);

    /* One bound; many bounds (binary search over 64). */
    reg = wisp_metrics_create();
    double one[] = {10};
    h = wisp_metrics_histogram(reg, "one", "One bound.", NULL, NULL, one, 1);
    wisp_histogram_observe(h, 10);
    wisp_histogram_observe(h, 11);
    double many[WISP_METRICS_MAX_BUCKETS];
    for (int i = 0; i < WISP_METRICS_MAX_BUCKETS; i++)
        many[i] = i;
    wisp_histogram_t *m = wisp_metrics_histogram(
        reg, "many", "Many.", NULL, NULL, many, WISP_METRICS_MAX_BUCKETS);
    CHECK(m);
    for (int i = 0; i < WISP_METRICS_MAX_BUCKETS; i++)
        wisp_histogram_observe(m, i); /* each on its own bound */
    t = render(reg);
    CHECK_MSG(t && strstr(t, "one_bucket{le=\"10\"} 1\none_bucket{le=\"+Inf\"} 2\n"), "%s", t);
    CHECK(t && strstr(t, "many_bucket{le=\"0\"} 1\n"));
    CHECK(t && strstr(t, "many_bucket{le=\"31\"} 32\n"));
    CHECK(t && strstr(t, "many_bucket{le=\"63\"} 64\nmany_bucket{le=\"+Inf\"} 64\n"));
    CHECK(t && strstr(t, "many_sum 2016\nmany_count 64\n"));
    free(t);
    wisp_metrics_destroy(reg);
}

static void test_escaping_and_numbers(void)
{
    wisp_metrics_t *reg = wisp_metrics_create();
    wisp_gauge_t *g = wisp_metrics_gauge(
        reg, "esc", "Back\\slash, new\nline, \"quotes\" stay.", "path",
        "C:\\dir\n\"x\" é");
    CHECK(g);
    static const double b[] = {1e-06, 0.25, 123456.5, 1234567.5, 1e+21,
                               1.5e+21};
    wisp_histogram_t *h = wisp_metrics_histogram(reg, "num", "Numbers.",
                                                 NULL, NULL, b, 6);
    wisp_histogram_observe(h, 0.1);
    wisp_histogram_observe(h, 0.2);
    CHECK_TEXT(reg,
               "# HELP esc Back\\\\slash, new\\nline, \"quotes\" stay.\n"
               "# TYPE esc gauge\n"
               "esc{path=\"C:\\\\dir\\n\\\"x\\\" é\"} 0\n"
               "# HELP num Numbers.\n"
               "# TYPE num histogram\n"
               "num_bucket{le=\"1e-06\"} 0\n"
               "num_bucket{le=\"0.25\"} 2\n"
               "num_bucket{le=\"123456.5\"} 2\n"
               "num_bucket{le=\"1.2345675e+06\"} 2\n"
               "num_bucket{le=\"1e+21\"} 2\n"
               "num_bucket{le=\"1.5e+21\"} 2\n"
               "num_bucket{le=\"+Inf\"} 2\n"
               "num_sum 0.30000000000000004\n"
               "num_count 2\n");
    /* Empty label value and empty help are allowed. */
    CHECK(wisp_metrics_counter(reg, "empty", "", "k", ""));
    char *t = render(reg);
    CHECK(t && strstr(t, "# HELP empty \n# TYPE empty counter\n"
                         "empty{k=\"\"} 0\n"));
    free(t);
    wisp_metrics_destroy(reg);
}

/* ---------------------------------------------------------- refusals */

typedef struct bad_case {
    const char *what;
    int type; /* 0 counter, 1 gauge, 2 histogram */
    const char *name, *help, *label, *value;
    const double *bounds;
    size_t nb;
    int err;
} bad_case;

static const double b_ok[] = {1, 2};
static const double b_dup[] = {1, 1};
static const double b_down[] = {2, 1};
static const double b_nan[] = {1, NAN};
static const double b_inf[] = {1, INFINITY};
static const double b_ok3[] = {1, 2, 3};
static double b_many[WISP_METRICS_MAX_BUCKETS + 1];

static const char long_name[] =
    "a234567890123456789012345678901234567890123456789012345678901234"
    "5678901234567890123456789012345678901234567890123456789012345678"
    "9";

static void *reg_one(wisp_metrics_t *reg, const bad_case *c)
{
    switch (c->type) {
    case 0:
        return wisp_metrics_counter(reg, c->name, c->help, c->label,
                                    c->value);
    case 1:
        return wisp_metrics_gauge(reg, c->name, c->help, c->label, c->value);
    default:
        return wisp_metrics_histogram(reg, c->name, c->help, c->label,
                                      c->value, c->bounds, c->nb);
    }
}

static void test_refused(void)
{
    for (size_t i = 0; i < sizeof b_many / sizeof *b_many; i++)
        b_many[i] = (double)i;
    char long_value[WISP_METRICS_MAX_VALUE + 2];
    memset(long_value, 'v', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = 0;
    char long_help[WISP_METRICS_MAX_HELP + 2];
    memset(long_help, 'h', sizeof long_help - 1);
    long_help[sizeof long_help - 1] = 0;

    const bad_case cases[] = {
        {"NULL name", 0, NULL, "h", NULL, NULL, NULL, 0, EINVAL},
        {"empty name", 0, "", "h", NULL, NULL, NULL, 0, EINVAL},
        {"name starting with a digit", 0, "1abc", "h", NULL, NULL, NULL, 0,
         EINVAL},
        {"name with a dash", 0, "a-b", "h", NULL, NULL, NULL, 0, EINVAL},
        {"name with a space", 0, "a b", "h", NULL, NULL, NULL, 0, EINVAL},
        {"name with a dot", 0, "a.b", "h", NULL, NULL, NULL, 0, EINVAL},
        {"name with non-ASCII", 0, "caf\xc3\xa9", "h", NULL, NULL, NULL, 0,
         EINVAL},
        {"name over 128 bytes", 0, long_name, "h", NULL, NULL, NULL, 0,
         EINVAL},
        {"help missing on first registration", 0, "x", NULL, NULL, NULL,
         NULL, 0, EINVAL},
        {"help with invalid UTF-8", 0, "x", "\xff", NULL, NULL, NULL, 0,
         EINVAL},
        {"help with a truncated code point", 0, "x", "caf\xc3", NULL, NULL,
         NULL, 0, EINVAL},
        {"help over 1024 bytes", 0, "x", long_help, NULL, NULL, NULL, 0,
         EINVAL},
        {"label without value", 0, "x", "h", "k", NULL, NULL, 0, EINVAL},
        {"value without label", 0, "x", "h", NULL, "v", NULL, 0, EINVAL},
        {"label starting with __ (reserved)", 0, "x", "h", "__k", "v", NULL,
         0, EINVAL},
        {"label with a colon", 0, "x", "h", "a:b", "v", NULL, 0, EINVAL},
        {"label starting with a digit", 0, "x", "h", "1k", "v", NULL, 0,
         EINVAL},
        {"empty label name", 0, "x", "h", "", "v", NULL, 0, EINVAL},
        {"value with invalid UTF-8", 1, "x", "h", "k", "\xc0\x80", NULL, 0,
         EINVAL},
        {"value over 256 bytes", 1, "x", "h", "k", long_value, NULL, 0,
         EINVAL},
        {"histogram label le", 2, "x", "h", "le", "v", b_ok, 2, EINVAL},
        {"histogram without bounds", 2, "x", "h", NULL, NULL, NULL, 0,
         EINVAL},
        {"histogram with 0 bounds", 2, "x", "h", NULL, NULL, b_ok, 0, EINVAL},
        {"histogram with equal bounds", 2, "x", "h", NULL, NULL, b_dup, 2,
         EINVAL},
        {"histogram with falling bounds", 2, "x", "h", NULL, NULL, b_down, 2,
         EINVAL},
        {"histogram with a NaN bound", 2, "x", "h", NULL, NULL, b_nan, 2,
         EINVAL},
        {"histogram with an infinite bound (+Inf is implied)", 2, "x", "h",
         NULL, NULL, b_inf, 2, EINVAL},
        {"histogram with 65 bounds", 2, "x", "h", NULL, NULL, b_many,
         WISP_METRICS_MAX_BUCKETS + 1, EINVAL},
        /* Against the families registered below. */
        {"counter name taken by a gauge", 0, "g", "G.", NULL, NULL, NULL, 0,
         EEXIST},
        {"same name, other label name", 1, "g", "G.", "other", "v", NULL, 0,
         EEXIST},
        {"same name, label where there was none", 0, "c", "C.", "k", "v",
         NULL, 0, EEXIST},
        {"same name, other help", 1, "g", "Other.", "k", "v", NULL, 0,
         EEXIST},
        {"histogram with other bounds", 2, "hist", NULL, NULL, NULL, b_ok3, 3,
         EEXIST},
        {"a histogram's _bucket name", 0, "hist_bucket", "B.", NULL, NULL,
         NULL, 0, EEXIST},
        {"a histogram's _sum name", 1, "hist_sum", "S.", NULL, NULL, NULL, 0,
         EEXIST},
        {"a histogram's _count name", 0, "hist_count", "C.", NULL, NULL,
         NULL, 0, EEXIST},
        {"histogram whose _count name is taken", 2, "k", "K.", NULL, NULL,
         b_ok, 2, EEXIST},
    };
    wisp_metrics_t *reg = wisp_metrics_create();
    CHECK(wisp_metrics_gauge(reg, "g", "G.", "k", "v"));
    CHECK(wisp_metrics_counter(reg, "c", "C.", NULL, NULL));
    CHECK(wisp_metrics_counter(reg, "k_count", "Count.", NULL, NULL));
    CHECK(wisp_metrics_histogram(reg, "hist", "H.", NULL, NULL, b_ok, 2));
    char *before = render(reg);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        errno = 0;
        void *h = reg_one(reg, &cases[i]);
        CHECK_MSG(!h && errno == cases[i].err, "%s: got %p errno %d",
                  cases[i].what, h, errno);
    }
    /* Nothing of the refused registrations shows. */
    char *after = render(reg);
    CHECK(before && after && strcmp(before, after) == 0);
    free(before);
    free(after);
    /* The longest valid name, value and help are taken. */
    char name128[WISP_METRICS_MAX_NAME + 1];
    memcpy(name128, long_name, WISP_METRICS_MAX_NAME);
    name128[WISP_METRICS_MAX_NAME] = 0;
    long_value[WISP_METRICS_MAX_VALUE] = 0;
    long_help[WISP_METRICS_MAX_HELP] = 0;
    CHECK(wisp_metrics_counter(reg, name128, long_help, "k", long_value));
    CHECK(wisp_metrics_counter(reg, "ns:sub_total", "Colons are fine.", NULL,
                               NULL));
    /* NULL registry. */
    errno = 0;
    CHECK(!wisp_metrics_counter(NULL, "x", "h", NULL, NULL) &&
          errno == EINVAL);
    char *t;
    CHECK_EQ_INT(wisp_metrics_render(NULL, &t, NULL), -EINVAL);
    CHECK_EQ_INT(wisp_metrics_render(reg, NULL, NULL), -EINVAL);
    wisp_metrics_destroy(reg);
}

static double zero_fn(void *arg)
{
    (void)arg;
    return 0;
}

static void test_limits(void)
{
    wisp_metrics_t *reg = wisp_metrics_create();
    char v[16];
    for (int i = 0; i < WISP_METRICS_MAX_SERIES; i++) {
        snprintf(v, sizeof v, "%d", i);
        CHECK(wisp_metrics_counter(reg, "many_total", "Many.", "i", v));
    }
    errno = 0;
    CHECK(!wisp_metrics_counter(reg, "many_total", "Many.", "i", "one more"));
    CHECK_EQ_INT(errno, ENOSPC);
    /* An existing value is still handed out. */
    CHECK(wisp_metrics_counter(reg, "many_total", NULL, "i", "7"));
    char name[32];
    for (int i = 1; i < WISP_METRICS_MAX_FAMILIES; i++) {
        snprintf(name, sizeof name, "f%d", i);
        CHECK(wisp_metrics_gauge(reg, name, "F.", NULL, NULL));
    }
    errno = 0;
    CHECK(!wisp_metrics_gauge(reg, "f_more", "F.", NULL, NULL));
    CHECK_EQ_INT(errno, ENOSPC);
    CHECK_EQ_INT(wisp_metrics_gauge_fn(reg, "f_fn", "F.", NULL, NULL,
                                       zero_fn, NULL),
                 -ENOSPC);
    wisp_metrics_destroy(reg);
}

/* ---------------------------------------------------------- callbacks */

static double read_double(void *arg)
{
    return *(double *)arg;
}

static int calls;
static double counting(void *arg)
{
    calls++;
    return (double)(intptr_t)arg;
}

static void test_callbacks(void)
{
    wisp_metrics_t *reg = wisp_metrics_create();
    double depth = 3;
    double ratio = 0.5;
    CHECK_EQ_INT(wisp_metrics_gauge_fn(reg, "queue_depth", "Depth.", "q",
                                       "main", read_double, &depth), 0);
    CHECK_EQ_INT(wisp_metrics_gauge_fn(reg, "queue_depth", NULL, "q", "aux",
                                       read_double, &ratio), 0);
    CHECK_EQ_INT(wisp_metrics_counter_fn(reg, "ticks_total", "Ticks.", NULL,
                                         NULL, counting, (void *)42), 0);
    CHECK_TEXT(reg, "# HELP queue_depth Depth.\n"
                    "# TYPE queue_depth gauge\n"
                    "queue_depth{q=\"aux\"} 0.5\n"
                    "queue_depth{q=\"main\"} 3\n"
                    "# HELP ticks_total Ticks.\n"
                    "# TYPE ticks_total counter\n"
                    "ticks_total 42\n");
    CHECK_EQ_INT(calls, 1);
    depth = 17;
    ratio = NAN;
    char *t = render(reg);
    CHECK(t && strstr(t, "queue_depth{q=\"main\"} 17\n"));
    CHECK(t && strstr(t, "queue_depth{q=\"aux\"} NaN\n"));
    free(t);
    CHECK_EQ_INT(calls, 2);
    /* Refusals: NULL fn, same value twice, mixing with updated series. */
    CHECK_EQ_INT(wisp_metrics_gauge_fn(reg, "x", "X.", NULL, NULL, NULL,
                                       NULL), -EINVAL);
    CHECK_EQ_INT(wisp_metrics_gauge_fn(reg, "queue_depth", NULL, "q", "main",
                                       read_double, &depth), -EEXIST);
    CHECK_EQ_INT(wisp_metrics_counter_fn(reg, "ticks_total", NULL, NULL,
                                         NULL, counting, NULL), -EEXIST);
    errno = 0;
    CHECK(!wisp_metrics_gauge(reg, "queue_depth", NULL, "q", "other"));
    CHECK_EQ_INT(errno, EEXIST);
    CHECK(wisp_metrics_gauge(reg, "plain", "Plain.", NULL, NULL));
    CHECK_EQ_INT(wisp_metrics_gauge_fn(reg, "plain", NULL, NULL, NULL,
                                       read_double, &depth), -EEXIST);
    CHECK_EQ_INT(wisp_metrics_gauge_fn(reg, "bad name", "X.", NULL, NULL,
                                       read_double, &depth), -EINVAL);
    CHECK_EQ_INT(wisp_metrics_gauge_fn(NULL, "x", "X.", NULL, NULL,
                                       read_double, &depth), -EINVAL);
    /* Removal by arg: only that series; the family stays while it has
     * others, goes with its last one; then its name is free again. */
    CHECK_EQ_INT(wisp_metrics_remove_fn(reg, &depth), 1);
    CHECK_EQ_INT(wisp_metrics_remove_fn(reg, &depth), 0);
    t = render(reg);
    CHECK(t && !strstr(t, "q=\"main\"") && strstr(t, "q=\"aux\""));
    free(t);
    CHECK_EQ_INT(wisp_metrics_remove_fn(reg, &ratio), 1);
    CHECK_EQ_INT(wisp_metrics_remove_fn(reg, (void *)42), 1);
    CHECK_TEXT(reg, "# HELP plain Plain.\n# TYPE plain gauge\nplain 0\n");
    CHECK_EQ_INT(wisp_metrics_counter_fn(reg, "queue_depth", "Now a counter.",
                                         NULL, NULL, counting, (void *)1), 0);
    CHECK_EQ_INT(wisp_metrics_remove_fn(NULL, NULL), -EINVAL);
    wisp_metrics_destroy(reg); /* frees the remaining callback series */
}

/* ---------------------------------------------------------- threads */

#define THREADS 8
#define ITERS 200000

typedef struct shared {
    wisp_counter_t *c;
    wisp_counter_t *byc[THREADS];
    wisp_gauge_t *g;
    wisp_gauge_t *fg;
    wisp_histogram_t *h;
    _Atomic int running;
} shared;

static void *updater(void *arg)
{
    shared *s = arg;
    static _Atomic int next_id;
    int id = atomic_fetch_add(&next_id, 1) % THREADS;
    for (int i = 0; i < ITERS; i++) {
        wisp_counter_inc(s->c);
        wisp_counter_add(s->byc[id], 2);
        wisp_gauge_add(s->g, (i & 1) ? -1 : 3);
        if (i % 16 == 0)
            wisp_gauge_add_double(s->fg, 0.5);
        wisp_histogram_observe(s->h, (double)(i % 4)); /* 0,1,2,3 */
    }
    atomic_fetch_sub(&s->running, 1);
    return NULL;
}

static void test_threads(void)
{
    wisp_metrics_t *reg = wisp_metrics_create();
    shared s;
    memset(&s, 0, sizeof s);
    s.c = wisp_metrics_counter(reg, "ops_total", "Ops.", NULL, NULL);
    for (int i = 0; i < THREADS; i++) {
        char v[8];
        snprintf(v, sizeof v, "t%d", i);
        s.byc[i] = wisp_metrics_counter(reg, "by_thread_total", "By thread.",
                                        "t", v);
    }
    s.g = wisp_metrics_gauge(reg, "level", "Level.", NULL, NULL);
    s.fg = wisp_metrics_gauge(reg, "flevel", "Fractional level.", NULL,
                              NULL);
    static const double b[] = {0.5, 1.5, 2.5};
    s.h = wisp_metrics_histogram(reg, "obs", "Obs.", NULL, NULL, b, 3);
    atomic_store(&s.running, THREADS);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ_INT(pthread_create(&th[i], NULL, updater, &s), 0);
    /* Render while they run: never a torn or falling counter. */
    uint64_t last = 0;
    int renders = 0;
    while (atomic_load(&s.running) > 0) {
        uint64_t now = wisp_counter_value(s.c);
        CHECK(now >= last && now <= (uint64_t)THREADS * ITERS);
        last = now;
        char *t = render(reg);
        CHECK(t && strstr(t, "# TYPE obs histogram\n"));
        free(t);
        renders++;
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    CHECK(renders > 0);
    CHECK_EQ_INT(wisp_counter_value(s.c), (uint64_t)THREADS * ITERS);
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ_INT(wisp_counter_value(s.byc[i]), 2 * ITERS);
    CHECK_EQ_INT(wisp_gauge_value(s.g), (int64_t)THREADS * ITERS);
    CHECK(wisp_gauge_value_double(s.fg) == THREADS * (ITERS / 16) * 0.5);
    CHECK_EQ_INT(wisp_histogram_count(s.h), (uint64_t)THREADS * ITERS);
    /* Sums of small integers are exact in doubles. */
    CHECK(wisp_histogram_sum(s.h) == (double)THREADS * ITERS / 4 * 6);
    char *t = render(reg);
    char want[256];
    snprintf(want, sizeof want,
             "obs_bucket{le=\"0.5\"} %d\nobs_bucket{le=\"1.5\"} %d\n"
             "obs_bucket{le=\"2.5\"} %d\nobs_bucket{le=\"+Inf\"} %d\n"
             "obs_sum %d\nobs_count %d\n",
             THREADS * ITERS / 4, THREADS * ITERS / 2,
             THREADS * ITERS / 4 * 3, THREADS * ITERS,
             THREADS * ITERS / 4 * 6, THREADS * ITERS);
    CHECK_MSG(t && strstr(t, want), "%s", t);
    snprintf(want, sizeof want, "ops_total %d\n", THREADS * ITERS);
    CHECK(t && strstr(t, want));
    free(t);
    wisp_metrics_destroy(reg);
}

/* Registration from many threads at once: every thread gets the same
 * handle for the same value, and the family ends up with one series per
 * value. */
static wisp_metrics_t *race_reg;
static void *registrar(void *arg)
{
    intptr_t id = (intptr_t)arg;
    for (int i = 0; i < 64; i++) {
        char v[8];
        snprintf(v, sizeof v, "%d", (int)((i + id) % 64));
        wisp_counter_t *c = wisp_metrics_counter(race_reg, "race_total",
                                                 "Race.", "v", v);
        wisp_counter_inc(c);
    }
    return NULL;
}

static void test_register_race(void)
{
    race_reg = wisp_metrics_create();
    pthread_t th[THREADS];
    for (intptr_t i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, registrar, (void *)i);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 64; i++) {
        char v[8];
        snprintf(v, sizeof v, "%d", i);
        CHECK_EQ_INT(wisp_counter_value(wisp_metrics_counter(
                         race_reg, "race_total", NULL, "v", v)),
                     THREADS);
    }
    char *t = render(race_reg);
    size_t lines = 0;
    for (char *p = t; p && *p; p++)
        lines += *p == '\n';
    CHECK_EQ_INT(lines, 2 + 64);
    free(t);
    wisp_metrics_destroy(race_reg);
}

/* --------------------------------------------------- pools and servers */

static void test_pool(void)
{
    wisp_metrics_t *reg = wisp_metrics_create();
    wisp_pool_config_t cfg;
    wisp_pool_config_init(&cfg);
    cfg.min_threads = 2;
    cfg.max_threads = 2;
    wisp_pool_t *pool = wisp_pool_create(&cfg);
    CHECK(pool);
    CHECK_EQ_INT(wisp_metrics_add_pool(reg, pool, "io"), 0);
    char *t = render(reg);
    CHECK(t && strstr(t, "# TYPE wisp_pool_threads gauge\n"
                         "wisp_pool_threads{pool=\"io\"} 2\n"));
    CHECK(t && strstr(t, "wisp_pool_submitted_total{pool=\"io\"} 0\n"));
    CHECK(t && strstr(t, "# TYPE wisp_pool_busy_seconds_total counter\n"));
    free(t);
    /* The same name again: refused, and the first stays whole. */
    CHECK_EQ_INT(wisp_metrics_add_pool(reg, pool, "io"), -EEXIST);
    t = render(reg);
    CHECK(t && strstr(t, "wisp_pool_queued{pool=\"io\"} 0\n"));
    free(t);
    /* Bad arguments; another pool name next to the first. */
    CHECK(wisp_metrics_gauge(reg, "other_total", "x", NULL, NULL));
    CHECK_EQ_INT(wisp_metrics_add_pool(reg, pool, "bad\xff"), -EINVAL);
    CHECK_EQ_INT(wisp_metrics_add_pool(reg, NULL, "x"), -EINVAL);
    CHECK_EQ_INT(wisp_metrics_add_pool(reg, pool, "cpu"), 0);
    /* A family of another type under one of the pool names: the batch
     * rolls back. */
    wisp_metrics_t *reg2 = wisp_metrics_create();
    CHECK(wisp_metrics_counter(reg2, "wisp_pool_failed_total", "x", "pool",
                               "io"));
    CHECK_EQ_INT(wisp_metrics_add_pool(reg2, pool, "io"), -EEXIST);
    CHECK_TEXT(reg2, "# HELP wisp_pool_failed_total x\n"
                     "# TYPE wisp_pool_failed_total counter\n"
                     "wisp_pool_failed_total{pool=\"io\"} 0\n");
    wisp_metrics_destroy(reg2);
    /* Remove both names before destroying the pool. */
    CHECK_EQ_INT(wisp_metrics_remove_fn(reg, pool), 18);
    wisp_pool_destroy(pool);
    CHECK_TEXT(reg, "# HELP other_total x\n# TYPE other_total gauge\n"
                    "other_total 0\n");
    wisp_metrics_destroy(reg);
}

static void test_server(void)
{
    wisp_metrics_t *reg = wisp_metrics_create();
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.threads = 2;
    cfg.handle_signals = 0;
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK(srv);
    CHECK_EQ_INT(wisp_server_metrics(srv, reg), WISP_ESTATE); /* no loops */
    CHECK_EQ_INT(wisp_server_metrics(NULL, reg), -EINVAL);
    CHECK_EQ_INT(wisp_metrics_route(srv, "/metrics", reg), 0);
    CHECK_EQ_INT(wisp_metrics_route(srv, "/metrics", reg), -EEXIST);
    CHECK_EQ_INT(wisp_metrics_route(srv, "metrics", reg), -EINVAL);
    CHECK_EQ_INT(wisp_server_health_route(srv, "/health"), 0);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    CHECK_EQ_INT(wisp_server_metrics(srv, reg), 0);
    CHECK_EQ_INT(wisp_server_metrics(srv, reg), WISP_ESTATE);
    CHECK(!wisp_server_draining(srv));
    char *t = render(reg);
    CHECK(t && strstr(t, "# TYPE wisp_connections_open gauge\n"
                         "wisp_connections_open 0\n"));
    CHECK(t && strstr(t, "wisp_http_requests_total{class=\"1xx\"} 0\n"
                         "wisp_http_requests_total{class=\"2xx\"} 0\n"));
    CHECK(t && strstr(t, "wisp_loop_inbox_depth{loop=\"0\"} 0\n"
                         "wisp_loop_inbox_depth{loop=\"1\"} 0\n"));
    CHECK(t && strstr(t, "wisp_server_draining 0\n"));
    free(t);
    CHECK_EQ_INT(wisp_server_start(srv), 0);
    wisp_server_stop(srv);
    CHECK(wisp_server_draining(srv));
    t = render(reg);
    CHECK(t && strstr(t, "wisp_server_draining 1\n"));
    free(t);
    CHECK_EQ_INT(wisp_server_wait(srv), 0);
    /* Destroying the server takes its series out of the registry. */
    CHECK(wisp_metrics_counter(reg, "app_total", "App.", NULL, NULL));
    wisp_server_destroy(srv);
    CHECK_TEXT(reg, "# HELP app_total App.\n# TYPE app_total counter\n"
                    "app_total 0\n");

    /* A name already taken: -EEXIST and nothing of the server's stays. */
    srv = wisp_server_create(&cfg);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    CHECK(wisp_metrics_gauge(reg, "wisp_loop_inbox_depth", "Mine.", NULL,
                             NULL));
    CHECK_EQ_INT(wisp_server_metrics(srv, reg), -EEXIST);
    t = render(reg);
    CHECK(t && !strstr(t, "wisp_connections_open"));
    CHECK(t && !strstr(t, "wisp_http_requests_total"));
    free(t);
    wisp_server_destroy(srv);
    wisp_metrics_destroy(reg);
}

/* A live server: a WebSocket session and a plain request move the
 * server's counters; the session's close brings the gauges back. */
static void ws_msg(wisp_ws_t *ws, int binary, const void *data, size_t len,
                   void *arg)
{
    (void)ws; (void)binary; (void)data; (void)len; (void)arg;
}

static const wisp_ws_handlers_t ws_h = {.on_message = ws_msg};

static void on_ws(wisp_req_t *req, wisp_res_t *res, void *arg)
{
    (void)arg;
    wisp_ws_upgrade(req, res, &ws_h, NULL, NULL);
}

static void *waiter(void *arg)
{
    wisp_server_wait(arg);
    return NULL;
}

static double metric(wisp_metrics_t *reg, const char *line_start)
{
    char *t = render(reg);
    double v = -1;
    char *p = t ? strstr(t, line_start) : NULL;
    if (p)
        v = strtod(p + strlen(line_start), NULL);
    free(t);
    return v;
}

/* Render until `line_start` shows `want` (10 s bound): the server
 * updates its counters on its own thread, after our socket call
 * returned. */
static double metric_becomes(wisp_metrics_t *reg, const char *line_start,
                             double want)
{
    double v = -1;
    for (int i = 0; i < 1000; i++) {
        v = metric(reg, line_start);
        if (v == want)
            break;
        usleep(10 * 1000);
    }
    return v;
}

/* The same for a value above `above`: a byte counter is bumped just
 * after the send returns, so the client may see the bytes first. */
static double metric_above(wisp_metrics_t *reg, const char *line_start,
                           double above)
{
    double v = -1;
    for (int i = 0; i < 1000; i++) {
        v = metric(reg, line_start);
        if (v > above)
            break;
        usleep(10 * 1000);
    }
    return v;
}

static void test_server_live(void)
{
    wisp_metrics_t *reg = wisp_metrics_create();
    wisp_server_config_t cfg;
    wisp_server_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.threads = 1;
    cfg.handle_signals = 0;
    wisp_server_t *srv = wisp_server_create(&cfg);
    CHECK_EQ_INT(wisp_server_route(srv, WISP_METHOD_GET, "/ws", on_ws, NULL,
                                   NULL), 0);
    CHECK_EQ_INT(wisp_server_listen(srv), 0);
    CHECK_EQ_INT(wisp_server_metrics(srv, reg), 0);
    CHECK_EQ_INT(wisp_server_start(srv), 0);
    pthread_t th;
    pthread_create(&th, NULL, waiter, srv);
    uint16_t port = wisp_server_port(srv);
    int fd = handshake(port);
    CHECK(fd >= 0);
    CHECK(metric_becomes(reg, "\nwisp_ws_sessions_open ", 1) == 1);
    CHECK(metric(reg, "\nwisp_connections_open ") == 1);
    CHECK(metric(reg, "\nwisp_connections_accepted_total ") == 1);
    CHECK(metric(reg, "wisp_http_requests_total{class=\"1xx\"} ") == 1);
    CHECK(metric(reg, "\nwisp_bytes_received_total ") > 100);
    CHECK(metric_above(reg, "\nwisp_bytes_sent_total ", 100) > 100);
    /* A request the router answers 404, on its own connection. */
    int g = dial(port);
    const char *req = "GET /none HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(write(g, req, strlen(req)) == (ssize_t)strlen(req));
    char buf[12];
    CHECK(read_exact(g, buf, sizeof buf) == 0 &&
          memcmp(buf, "HTTP/1.1 404", 12) == 0);
    CHECK(metric_becomes(reg, "wisp_http_requests_total{class=\"4xx\"} ",
                         1) == 1);
    CHECK(metric(reg, "\nwisp_connections_accepted_total ") == 2);
    close(g);
    close(fd);
    CHECK(metric_becomes(reg, "\nwisp_ws_sessions_open ", 0) == 0);
    CHECK(metric_becomes(reg, "\nwisp_connections_open ", 0) == 0);
    CHECK(metric(reg, "\nwisp_connections_accepted_total ") == 2);
    wisp_server_stop(srv);
    pthread_join(th, NULL);
    wisp_server_destroy(srv);
    CHECK_TEXT(reg, "");
    wisp_metrics_destroy(reg);
}

int main(void)
{
    test_counter_text();
    test_gauge_text();
    test_histogram_text();
    test_histogram_edges();
    test_escaping_and_numbers();
    test_refused();
    test_limits();
    test_callbacks();
    test_threads();
    test_register_race();
    test_pool();
    test_server();
    test_server_live();
    return t_done("metrics");
}
