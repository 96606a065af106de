/* xiaozhi-server — packet lists, delayed results and the provider gate. */
#include "providers.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"

/* ------------------------------------------------------------ packets */

xz_pkts_t *xz_pkts_new(uint32_t frame_ms)
{
    xz_pkts_t *p = calloc(1, sizeof *p);
    if (p)
        p->frame_ms = frame_ms;
    return p;
}

int xz_pkts_push(xz_pkts_t *p, const uint8_t *data, size_t len)
{
    if (len > 0xffff)
        return -EINVAL;
    if (p->n == p->cap) {
        uint32_t cap = p->cap ? p->cap * 2 : 32;
        uint32_t *off = realloc(p->off, cap * sizeof *off);
        if (!off)
            return -ENOMEM;
        p->off = off;
        uint16_t *l = realloc(p->len, cap * sizeof *l);
        if (!l)
            return -ENOMEM;
        p->len = l;
        p->cap = cap;
    }
    if (p->used + len > p->bufcap) {
        size_t cap = p->bufcap ? p->bufcap * 2 : 4096;
        while (cap < p->used + len)
            cap *= 2;
        uint8_t *b = realloc(p->buf, cap);
        if (!b)
            return -ENOMEM;
        p->buf = b;
        p->bufcap = cap;
    }
    if (len)
        memcpy(p->buf + p->used, data, len);
    p->off[p->n] = (uint32_t)p->used;
    p->len[p->n] = (uint16_t)len;
    p->used += len;
    p->n++;
    return 0;
}

void xz_pkts_drop_front(xz_pkts_t *p, uint32_t k)
{
    if (k >= p->n) {
        xz_pkts_clear(p);
        return;
    }
    size_t cut = p->off[k];
    memmove(p->buf, p->buf + cut, p->used - cut);
    p->used -= cut;
    for (uint32_t i = k; i < p->n; i++) {
        p->off[i - k] = p->off[i] - (uint32_t)cut;
        p->len[i - k] = p->len[i];
    }
    p->n -= k;
}

void xz_pkts_clear(xz_pkts_t *p)
{
    p->n = 0;
    p->used = 0;
}

xz_pkts_t *xz_pkts_clone(const xz_pkts_t *p)
{
    xz_pkts_t *c = xz_pkts_new(p->frame_ms);
    if (!c)
        return NULL;
    for (uint32_t i = 0; i < p->n; i++)
        if (xz_pkts_push(c, p->buf + p->off[i], p->len[i]) < 0) {
            xz_pkts_free(c);
            return NULL;
        }
    return c;
}

void xz_pkts_free(void *v)
{
    xz_pkts_t *p = v;
    if (!p)
        return;
    free(p->buf);
    free(p->off);
    free(p->len);
    free(p);
}

xz_pkts_t *xz_pkts_load(const char *path, uint32_t frame_ms)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size > (64 << 20)) {
        close(fd);
        errno = EINVAL;
        return NULL;
    }
    size_t len = (size_t)st.st_size, got = 0;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    while (got < len) {
        ssize_t r = read(fd, buf + got, len - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR)
                continue;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    xz_pkts_t *p = xz_pkts_new(frame_ms);
    size_t i = 0;
    while (p && i < got) {
        if (got - i < 2)
            break;
        size_t n = (size_t)buf[i] << 8 | buf[i + 1];
        if (got - i - 2 < n)
            break;
        if (xz_pkts_push(p, buf + i + 2, n) < 0) {
            xz_pkts_free(p);
            p = NULL;
            errno = ENOMEM;
        }
        i += 2 + n;
    }
    free(buf);
    if (p && i != got) {
        xz_pkts_free(p);
        errno = EINVAL;
        return NULL;
    }
    return p;
}

void xz_reply_free(void *v)
{
    xz_reply_t *r = v;
    if (r) {
        free(r->text);
        free(r);
    }
}

const char *xz_prov_name(xz_prov_kind_t k)
{
    static const char *n[XZ_PROV_COUNT] = {"asr", "llm", "tts", "vision"};
    return k < XZ_PROV_COUNT ? n[k] : "?";
}

/* --------------------------------------------------- delayed results */

typedef struct later {
    wisp_timer_t timer;
    wisp_future_t *f;
    void *value;
    wisp_free_cb destroy;
    int fired;
} later;

static void later_fire(wisp_timer_t *t, void *arg)
{
    (void)t;
    later *l = arg;
    l->fired = 1;
    void *v = l->value;
    l->value = NULL;
    wisp_future_resolve(l->f, v, l->destroy);
}

/* Runs once the future settled: by the timer, or by a cancel (then the
 * timer is still armed and the value still ours). */
static void later_done(wisp_future_t *f, void *arg)
{
    (void)f;
    later *l = arg;
    if (!l->fired) {
        wisp_timer_stop(&l->timer);
        if (l->destroy && l->value)
            l->destroy(l->value);
    }
    wisp_future_unref(l->f);
    free(l);
}

wisp_future_t *xz_resolve_later(wisp_loop_t *loop, uint64_t ms, void *value,
                                wisp_free_cb destroy)
{
    wisp_future_t *f = wisp_future_create(loop);
    later *l = f ? calloc(1, sizeof *l) : NULL;
    if (!l) {
        wisp_future_unref(f);
        if (destroy && value)
            destroy(value);
        return NULL;
    }
    if (ms == 0) {
        free(l);
        wisp_future_resolve(f, value, destroy);
        return f;
    }
    l->f = f;
    wisp_future_ref(f);
    l->value = value;
    l->destroy = destroy;
    wisp_timer_init(loop, &l->timer);
    if (wisp_future_then(f, later_done, l) < 0) {
        wisp_future_unref(f);
        free(l);
        wisp_future_resolve(f, value, destroy);
        return f;
    }
    wisp_timer_start(&l->timer, ms, later_fire, l);
    return f;
}

/* ------------------------------------------------------------ the gate */

/* One per loop (any loop that calls a provider: the main server's and
 * the second HTTP port's), created on first use on that loop's thread
 * and found again through a thread-local pointer: no lookup. */
typedef struct gate_loop {
    wisp_loop_t *loop;
    wisp_sem_t *sem[XZ_PROV_COUNT];
    struct gate_loop *next;
} gate_loop;

static pthread_mutex_t gates_lock = PTHREAD_MUTEX_INITIALIZER;
static gate_loop *gates;
static __thread gate_loop *tls_gate;

static gate_loop *gate_for(wisp_loop_t *loop)
{
    if (tls_gate && tls_gate->loop == loop)
        return tls_gate;
    gate_loop *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->loop = loop;
    /* The caps are process-wide figures shared out over the loops: each
     * loop gets its part (at least 1), so N loops allow about the
     * configured total. */
    unsigned n = xz_app->nloops ? xz_app->nloops : 1;
    uint32_t permits = xz_app->cfg.max_concurrent / n;
    uint32_t waiters = xz_app->cfg.max_queue / n;
    if (!permits)
        permits = 1;
    for (int k = 0; k < XZ_PROV_COUNT; k++) {
        /* max_waiters 0 means 65536 to wisp_sem: a queue of 0 is
         * enforced by the gate itself (below). */
        g->sem[k] = wisp_sem_create(loop, permits, waiters ? waiters : 1);
        if (!g->sem[k]) {
            for (int j = 0; j < k; j++)
                wisp_sem_destroy(g->sem[j]);
            free(g);
            return NULL;
        }
    }
    pthread_mutex_lock(&gates_lock);
    g->next = gates;
    gates = g;
    pthread_mutex_unlock(&gates_lock);
    tls_gate = g;
    return g;
}

void xz_gates_destroy(void)
{
    pthread_mutex_lock(&gates_lock);
    gate_loop *g = gates;
    gates = NULL;
    pthread_mutex_unlock(&gates_lock);
    tls_gate = NULL; /* the caller's cache must not outlive its gate */
    while (g) {
        gate_loop *next = g->next;
        for (int k = 0; k < XZ_PROV_COUNT; k++)
            wisp_sem_destroy(g->sem[k]);
        free(g);
        g = next;
    }
}

typedef struct gcall {
    wisp_future_t *out;    /* what the caller holds */
    wisp_future_t *acq;    /* the wait for a permit */
    wisp_future_t *pf;     /* the provider's future */
    xz_prov_kind_t kind;
    xz_start_fn start;
    void *arg;
    uint64_t t0;
    int queued;
    int refs;              /* continuations still to run */
} gcall;

static void gcall_unref(gcall *c)
{
    if (--c->refs)
        return;
    /* Dropping acq's last reference gives the permit back. */
    wisp_future_unref(c->acq);
    wisp_future_unref(c->pf);
    wisp_future_unref(c->out);
    free(c);
}

static void on_provider(wisp_future_t *f, void *arg)
{
    gcall *c = arg;
    xz_metrics_t *m = &xz_app->m;
    wisp_gauge_dec(m->provider_running[c->kind]);
    if (wisp_future_state(f) == WISP_FUTURE_RESOLVED) {
        wisp_free_cb d = NULL;
        void *v = wisp_future_take(f, &d);
        wisp_future_resolve(c->out, v, d);
        uint64_t now = wisp_loop_now(wisp_future_loop(f));
        wisp_histogram_observe(m->provider_latency[c->kind],
                               (double)(now - c->t0) / 1000.0);
    } else {
        int e = wisp_future_error(f);
        if (e != -ECANCELED)
            wisp_counter_inc(m->provider_errors[c->kind]);
        wisp_future_fail(c->out, e);
    }
    /* The permit goes back now: release acq before the gcall's end. */
    wisp_future_unref(c->acq);
    c->acq = NULL;
    gcall_unref(c);
}

static void on_permit(wisp_future_t *f, void *arg)
{
    gcall *c = arg;
    xz_metrics_t *m = &xz_app->m;
    if (c->queued)
        wisp_gauge_dec(m->provider_queued[c->kind]);
    c->queued = 0;
    int e = wisp_future_error(f);
    if (e == 0 && wisp_future_state(c->out) != WISP_FUTURE_PENDING)
        e = -ECANCELED;  /* cancelled while waiting for the permit */
    if (e == 0) {
        wisp_gauge_inc(m->provider_running[c->kind]);
        c->t0 = wisp_loop_now(wisp_future_loop(f));
        c->pf = c->start(c->arg);
        if (!c->pf) {
            wisp_gauge_dec(m->provider_running[c->kind]);
            e = -ENOMEM;
        } else {
            c->refs++;
            if (wisp_future_then(c->pf, on_provider, c) < 0) {
                c->refs--;
                wisp_future_cancel(c->pf);
                wisp_gauge_dec(m->provider_running[c->kind]);
                e = -ENOMEM;
            }
        }
    }
    if (e) {
        if (e == -EAGAIN)
            wisp_counter_inc(m->provider_busy[c->kind]);
        wisp_future_fail(c->out, e);
    }
    gcall_unref(c);
}

/* The caller cancelled (or the call ended): pass a cancel on to the
 * provider's future or the permit wait. */
static void on_out(wisp_future_t *f, void *arg)
{
    gcall *c = arg;
    if (wisp_future_error(f) == -ECANCELED) {
        if (c->pf)
            wisp_future_cancel(c->pf);
        else if (c->acq)
            wisp_future_cancel(c->acq);
    }
    gcall_unref(c);
}

wisp_future_t *xz_gate_call(wisp_loop_t *loop, xz_prov_kind_t kind,
                            xz_start_fn start, void *arg)
{
    gate_loop *g = gate_for(loop);
    gcall *c = g ? calloc(1, sizeof *c) : NULL;
    if (!c)
        return NULL;
    c->kind = kind;
    c->start = start;
    c->arg = arg;
    c->out = wisp_future_create(loop);
    if (!c->out) {
        free(c);
        return NULL;
    }
    wisp_future_t *ret = c->out;
    wisp_future_ref(ret);
    if (xz_app->cfg.max_queue == 0 &&
        wisp_sem_available(g->sem[kind]) == 0) {
        wisp_counter_inc(xz_app->m.provider_busy[kind]);
        wisp_future_fail(ret, -EAGAIN);
        wisp_future_unref(c->out);
        free(c);
        return ret;
    }
    c->acq = wisp_sem_acquire(g->sem[kind], 0);
    if (!c->acq) {
        wisp_future_fail(ret, -ENOMEM);
        wisp_future_unref(c->out);
        free(c);
        return ret;
    }
    if (wisp_future_state(c->acq) == WISP_FUTURE_PENDING) {
        c->queued = 1;
        wisp_gauge_inc(xz_app->m.provider_queued[kind]);
    }
    c->refs = 2;
    int r1 = wisp_future_then(c->acq, on_permit, c);
    int r2 = wisp_future_then(c->out, on_out, c);
    if (r1 < 0 || r2 < 0) {
        /* Out of memory registering continuations: fail the call; the
         * registered ones (if any) still run and release. */
        if (c->queued)
            wisp_gauge_dec(xz_app->m.provider_queued[kind]);
        c->queued = 0;
        c->refs -= (r1 < 0) + (r2 < 0);
        wisp_future_cancel(c->acq);
        wisp_future_fail(c->out, -ENOMEM);
        if (c->refs == 0) {
            wisp_future_unref(c->acq);
            wisp_future_unref(c->out);
            free(c);
        }
    }
    return ret;
}
