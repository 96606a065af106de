/* The loop: one thread's reactor. Each iteration: wait for I/O (bounded
 * by the next timer, zero when tasks are pending), refresh the cached
 * clock, run due timers, run the deferred tasks queued before this
 * iteration, then the end-of-iteration hook (the net layer's cork flush
 * and deferred frees). */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "loop/loop_int.h"
#include "wisp/log.h"

static __thread wisp_loop_t *tls_loop;

/* Per-loop data keys: how many were handed out, and their destructors. */
static _Atomic unsigned key_count;
static _Atomic(wisp_task_cb) key_dtor[WISP_LOOP_KEYS_MAX];

uint64_t wisp__clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

#ifdef WISP_OWNERSHIP_CHECKS
void wisp__owner_fail(const char *fn, const wisp_loop_t *loop)
{
    fprintf(stderr,
            "wisp: %s called on thread %#lx, but its loop %p is owned by "
            "thread %#lx\n",
            fn, (unsigned long)pthread_self(), (const void *)loop,
            (unsigned long)loop->owner);
    abort();
}
#endif

static void on_wake(wisp__io *io, unsigned events)
{
    wisp_loop_t *loop = (wisp_loop_t *)((char *)io -
                                        offsetof(wisp_loop_t, wake_io));
    (void)events;
    wisp__be_wake_ack(loop);
    wisp__inbox_drain(loop);
}

/* The backend a loop asked for with WISP_LOOP_BACKEND_DEFAULT: the
 * environment's WISP_BACKEND ("epoll", "io_uring"), else epoll. */
static wisp_loop_backend_t default_backend(void)
{
    const char *e = getenv("WISP_BACKEND");
    if (e && (strcmp(e, "io_uring") == 0 || strcmp(e, "uring") == 0))
        return WISP_LOOP_BACKEND_IO_URING;
    return WISP_LOOP_BACKEND_EPOLL;
}

/* The fallback is said once per process, not once per loop. */
static atomic_int fallback_logged;

static int backend_init(wisp_loop_t *loop, wisp_loop_backend_t want)
{
    if (want == WISP_LOOP_BACKEND_DEFAULT)
        want = default_backend();
    if (want == WISP_LOOP_BACKEND_IO_URING) {
#ifdef WISP_HAVE_URING
        loop->backend = WISP__BE_URING;
        int err = wisp__ur_init(loop);
        if (err == 0)
            return 0;
        wisp__ur_fini(loop);
        if (!atomic_exchange(&fallback_logged, 1))
            wisp_log(WISP_LOG_WARN, "io_uring unavailable (%s); using epoll",
                     strerror(-err));
#else
        if (!atomic_exchange(&fallback_logged, 1))
            wisp_log(WISP_LOG_WARN,
                     "io_uring not built in (-Dio_uring); using epoll");
#endif
    }
    loop->backend = WISP__BE_EPOLL;
    loop->backend_fd = -1;
    loop->wake_fd = -1;
    return wisp__ep_init(loop);
}

const char *wisp_loop_backend(const wisp_loop_t *loop)
{
    return loop->backend == WISP__BE_URING ? "io_uring" : "epoll";
}

wisp_loop_t *wisp_loop_create(void)
{
    return wisp_loop_create_backend(WISP_LOOP_BACKEND_DEFAULT);
}

wisp_loop_t *wisp_loop_create_backend(wisp_loop_backend_t backend)
{
    if (backend != WISP_LOOP_BACKEND_DEFAULT &&
        backend != WISP_LOOP_BACKEND_EPOLL &&
        backend != WISP_LOOP_BACKEND_IO_URING) {
        errno = EINVAL;
        return NULL;
    }
    /* Aligned, so the inbox's groups really sit on separate lines. */
    wisp_loop_t *loop = aligned_alloc(_Alignof(wisp_loop_t), sizeof *loop);
    if (!loop) {
        errno = ENOMEM;
        return NULL;
    }
    memset(loop, 0, sizeof *loop);
    loop->backend_fd = -1;
    loop->wake_fd = -1;
    atomic_init(&loop->stop, 0);
    wisp__inbox_init(loop);
    loop->now_ms = wisp__clock_ms();
    loop->rbuf_cap = WISP__RBUF_SIZE;
    loop->rbuf = malloc(loop->rbuf_cap + 16);
    int err = loop->rbuf ? backend_init(loop, backend) : -ENOMEM;
    if (err < 0) {
        wisp__be_fini(loop);
        free(loop->rbuf);
        free(loop);
        errno = -err;
        return NULL;
    }
    loop->wake_io.cb = on_wake;
    return loop;
}

void wisp_loop_destroy(wisp_loop_t *loop)
{
    if (!loop)
        return;
    atomic_store(&loop->closing, 1);
    /* Timers first: dropping a queued future notification below may free
     * a future whose (now disarmed) timer sits in the heap. */
    wisp__timers_clear(loop);
    wisp__inbox_discard(loop);
    wisp__task *t = loop->defer_head;
    while (t) {
        wisp__task *n = t->next;
        wisp_task_cb drop = t->drop;
        void *arg = t->arg;
        if (!t->intrusive)
            free(t);
        if (drop) /* may free an intrusive node's owner, t with it */
            drop(arg);
        t = n;
    }
    t = loop->task_free;
    while (t) {
        wisp__task *n = t->next;
        free(t);
        t = n;
    }
    /* Per-loop data now: nothing of the loop can run any more, and the
     * backend is still there for a layer that closes its sockets (the
     * transport of outgoing connections on a bare loop). */
    unsigned nkeys = atomic_load_explicit(&key_count, memory_order_acquire);
    if (nkeys > WISP_LOOP_KEYS_MAX)
        nkeys = WISP_LOOP_KEYS_MAX;
    for (unsigned k = nkeys; k-- > 0;) {
        void *d = loop->data[k];
        wisp_task_cb dtor = atomic_load_explicit(&key_dtor[k],
                                                 memory_order_acquire);
        loop->data[k] = NULL;
        if (d && dtor)
            dtor(d);
    }
    wisp__be_fini(loop);
    free(loop->rbuf);
    free(loop);
}

int wisp_loop_key_create(wisp_task_cb dtor)
{
    unsigned k = atomic_fetch_add(&key_count, 1);
    if (k >= WISP_LOOP_KEYS_MAX) {
        /* Leave the counter saturated well below overflow. */
        atomic_store(&key_count, WISP_LOOP_KEYS_MAX + 1);
        return -ENOSPC;
    }
    atomic_store_explicit(&key_dtor[k], dtor, memory_order_release);
    return (int)k;
}

static int key_valid(int key)
{
    return key >= 0 && key < WISP_LOOP_KEYS_MAX &&
           (unsigned)key < atomic_load_explicit(&key_count,
                                                memory_order_relaxed);
}

int wisp_loop_set_data(wisp_loop_t *loop, int key, void *data)
{
    WISP__ASSERT_OWNER(loop);
    if (!key_valid(key))
        return -EINVAL;
    loop->data[key] = data;
    return 0;
}

void *wisp_loop_get_data(const wisp_loop_t *loop, int key)
{
    WISP__ASSERT_OWNER(loop);
    if (!key_valid(key))
        return NULL;
    return loop->data[key];
}

void wisp__loop_set_hook(wisp_loop_t *loop, wisp__loop_hook hook, void *arg)
{
    loop->hook = hook;
    loop->hook_arg = arg;
}

uint64_t wisp_loop_now(const wisp_loop_t *loop)
{
    return loop->now_ms;
}

wisp_loop_t *wisp_loop_current(void)
{
    return tls_loop;
}

void wisp_loop_break(wisp_loop_t *loop)
{
    atomic_store_explicit(&loop->stop, 1, memory_order_release);
    if (tls_loop != loop)
        wisp__be_wake(loop);
}

int wisp_loop_defer(wisp_loop_t *loop, wisp_task_cb cb, void *arg)
{
    WISP__ASSERT_OWNER(loop);
    if (!cb)
        return -EINVAL;
    wisp__task *t = loop->task_free;
    if (t) {
        loop->task_free = t->next;
        loop->task_free_len--;
    } else {
        t = malloc(sizeof *t);
        if (!t)
            return -ENOMEM;
    }
    t->cb = cb;
    t->arg = arg;
    t->intrusive = 0;
    t->drop = NULL;
    t->next = NULL;
    if (loop->defer_tail)
        loop->defer_tail->next = t;
    else
        loop->defer_head = t;
    loop->defer_tail = t;
    return 0;
}

void wisp__loop_defer_node(wisp_loop_t *loop, wisp__task *node)
{
    WISP__ASSERT_OWNER(loop);
    node->intrusive = 1;
    node->next = NULL;
    if (loop->defer_tail)
        loop->defer_tail->next = node;
    else
        loop->defer_head = node;
    loop->defer_tail = node;
}

static void run_deferred(wisp_loop_t *loop)
{
    /* Take the list: tasks deferred while running go to the next pass. */
    wisp__task *t = loop->defer_head;
    loop->defer_head = loop->defer_tail = NULL;
    while (t) {
        wisp__task *next = t->next;
        wisp_task_cb cb = t->cb;
        void *arg = t->arg;
        if (t->intrusive) {
            /* owned by its embedder */
        } else if (loop->task_free_len < 1024) {
            t->next = loop->task_free;
            loop->task_free = t;
            loop->task_free_len++;
        } else {
            free(t);
        }
        cb(arg);
        t = next;
    }
}

/* Before an iteration: the loop becomes the calling thread's, the wake
 * descriptor is watched. */
static int loop_enter(wisp_loop_t *loop)
{
    tls_loop = loop;
    loop->owner = pthread_self();
    loop->has_owner = 1;
    loop->running = 1;
    if (!loop->wake_io.added) {
        loop->wake_io.fd = loop->wake_fd;
        loop->wake_io.want = WISP__IO_RECV;
        int err = wisp__be_add(loop, &loop->wake_io);
        if (err < 0)
            return err;
    }
    return 0;
}

/* How long the loop may sleep: 0 when work is waiting. Going idle, a
 * burst of posts is over: give back its spare nodes (a step per
 * iteration, not asleep until done). Then raise the inbox's flag so
 * that the next post wakes the loop; posts already waiting (or on their
 * way) keep it awake. The caller lowers the flag after its sleep
 * (wisp__inbox_awake) whenever this returned non-zero. */
static int loop_idle_timeout(wisp_loop_t *loop)
{
    int timeout = loop->defer_head || loop->keep_awake
                      ? 0 : wisp__timers_timeout(loop);
    loop->keep_awake = 0;
    if (timeout != 0 &&
        (wisp__inbox_idle(loop) || !wisp__inbox_sleep(loop)))
        timeout = 0;
    return timeout;
}

/* The work of an iteration after the wait. */
static void loop_work(wisp_loop_t *loop)
{
    /* Posts that arrived while the loop was awake woke nobody: take
     * them now, and keep taking while producers keep posting (a few
     * passes, so I/O is polled again soon) rather than paying an
     * epoll_wait per small batch. */
    for (int pass = 0; pass < 16 && wisp__inbox_pending(loop); pass++)
        wisp__inbox_drain(loop);
    wisp__timers_run(loop);
    run_deferred(loop);
    if (loop->hook)
        loop->hook(loop, loop->hook_arg);
}

int wisp_loop_run(wisp_loop_t *loop)
{
    if (loop->stepped)
        return -EBUSY;
    wisp_loop_t *prev = tls_loop;
    int err = loop_enter(loop);
    loop->now_ms = wisp__clock_ms();
    while (err == 0 &&
           !atomic_load_explicit(&loop->stop, memory_order_acquire)) {
        int timeout = loop_idle_timeout(loop);
        err = wisp__be_wait(loop, timeout); /* updates now_ms */
        if (timeout != 0)
            wisp__inbox_awake(loop);
        if (err < 0)
            break;
        loop_work(loop);
    }
    atomic_store(&loop->stop, 0);
    loop->running = 0;
    loop->has_owner = 0;
    tls_loop = prev;
    return err;
}

int wisp_loop_fd(const wisp_loop_t *loop)
{
    return wisp__be_fd(loop);
}

int wisp_loop_step(wisp_loop_t *loop)
{
    if (loop->running)
        return -EBUSY; /* inside wisp_loop_run, or inside this step */
    int fd = wisp__be_fd(loop);
    if (fd < 0)
        return fd; /* not a backend a host can poll */
    if (loop->stepped)
        WISP__ASSERT_OWNER(loop);
    wisp_loop_t *prev = tls_loop;
    int err = loop_enter(loop);
    if (!loop->stepped) {
        loop->stepped = 1;
        loop->now_ms = wisp__clock_ms();
    }
    if (loop->asleep) {
        wisp__inbox_awake(loop);
        loop->asleep = 0;
    }
    int stopped = atomic_load_explicit(&loop->stop, memory_order_acquire);
    if (err == 0 && !stopped) {
        err = wisp__be_wait(loop, 0); /* updates now_ms */
        if (err >= 0) {
            loop_work(loop);
            stopped = atomic_load_explicit(&loop->stop,
                                           memory_order_acquire);
        }
    }
    loop->running = 0;
    tls_loop = prev;
    if (err < 0 || stopped) {
        /* Left as wisp_loop_run leaves it: the next step (or run)
         * starts afresh, on any thread. */
        atomic_store(&loop->stop, 0);
        loop->stepped = 0;
        loop->has_owner = 0;
        loop->idle_ms = -1;
        return err < 0 ? err : 1;
    }
    loop->idle_ms = loop_idle_timeout(loop);
    loop->asleep = loop->idle_ms != 0;
    return 0;
}

int wisp_loop_timeout(const wisp_loop_t *loop)
{
    WISP__ASSERT_OWNER(loop);
    return loop->stepped ? loop->idle_ms : 0;
}
