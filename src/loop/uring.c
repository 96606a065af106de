/* The io_uring backend: the socket operations of loop_int.h on one ring
 * per loop, driven by one io_uring_enter per loop iteration (all
 * submissions, then the wait for completions, bounded by the next timer).
 *
 * - A stream socket (io->edge) receives with a multishot recv from a
 *   provided-buffer ring: the kernel picks a buffer only when bytes
 *   arrive, so an idle connection holds none. Completed buffers queue on
 *   the io in arrival order; wisp__ur_recv hands out the first, which
 *   goes back to the ring at the next receive or wait of the loop.
 * - Readiness (a stream's send and hang-up, and everything about other
 *   fds: listeners, eventfds, signalfds, pidfds) is a one-shot POLL_ADD,
 *   armed again after its callback while still wanted: level-triggered
 *   like epoll's default, since a poll checks the fd when armed.
 * - Each registered io owns a slot in a per-loop table; a request's
 *   user_data names the slot and the operation. wisp__ur_del cancels
 *   what the slot has in the kernel and detaches the io; the slot is
 *   reused only after its last request completed, so a completion never
 *   reaches a freed io (its buffers go straight back to the ring).
 * - A multishot recv that ends (the kernel's choice, no buffer left:
 *   ENOBUFS, or a cancel because the owner paused reading) is armed
 *   again when wanted; an io starved of buffers waits on a list that is
 *   served as buffers return. Nothing is lost: the bytes stay in the
 *   socket until a buffer takes them.
 * - Sends, accepts, connects and shutdowns are the plain non-blocking
 *   syscalls of epoll.c: the net layer needs their result at once.
 *
 * The ring ABI comes from uring_abi.h, not from liburing or the kernel
 * headers, so the backend builds with nothing but a C library (musl
 * too); docs/architecture.md explains the choice. */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "loop/loop_int.h"
#include "loop/uring_abi.h"

#define SQ_ENTRIES 1024u
#define CQ_ENTRIES 8192u
#define BGID 0

/* Buffer ring defaults; WISP_URING_BUFS / WISP_URING_BUF_SIZE override
 * them (tests use a handful of small buffers to exhaust the ring). */
#define NBUFS_DEFAULT 256u
#define BUF_SIZE_DEFAULT (16u * 1024u)

enum { OP_NONE = 0, OP_RECV = 1, OP_POLL = 2 };

enum {
    S_RECV = 1u << 0,     /* a multishot recv is in the kernel */
    S_RECV_CANCEL = 1u << 1,
    S_POLL = 1u << 2,     /* a poll is in the kernel */
    S_POLL_REMOVE = 1u << 3,
    S_ENDED = 1u << 4,    /* end of stream or error queued (res) */
    S_STARVED = 1u << 5,  /* recv ended for want of buffers */
    S_LISTED = 1u << 6,   /* on the retry list */
    S_READY = 1u << 7,    /* on the ready list */
};

#define NO_BUF 0xffffu

typedef struct slot {
    wisp__io *io;          /* NULL: detached (or free) */
    uint32_t next;         /* free list */
    uint32_t retry_next;   /* retry list */
    uint32_t ready_next;   /* ready list */
    uint32_t poll_mask;    /* what the armed poll waits for */
    int32_t res;           /* the end result when S_ENDED */
    uint16_t qhead, qtail; /* queued buffers */
    uint8_t flags;
    uint8_t inflight;      /* requests in the kernel */
} slot;

struct wisp__uring {
    int fd;
    /* Submission ring. */
    void *sq_map;
    size_t sq_map_len;
    struct wu_sqe *sqes;
    size_t sqes_len;
    _Atomic uint32_t *sq_khead;
    _Atomic uint32_t *sq_ktail;
    _Atomic uint32_t *sq_kflags;
    uint32_t sq_mask;
    uint32_t sq_entries;
    uint32_t sq_tail; /* ours, published at submit */
    /* Completion ring (same mapping: IORING_FEAT_SINGLE_MMAP). */
    _Atomic uint32_t *cq_khead;
    _Atomic uint32_t *cq_ktail;
    uint32_t cq_mask;
    struct wu_cqe *cqes;

    /* Provided buffers. */
    struct wu_buf *br;
    size_t br_len;
    char *bufs;
    uint32_t nbufs;
    uint32_t buf_size;
    uint16_t br_tail;
    uint32_t bufs_out;   /* buffers not in the ring */
    uint16_t *bnext;     /* queue links */
    uint32_t *blen;      /* bytes in each queued buffer */
    uint32_t *boff;      /* bytes already taken from it */
    uint32_t handed;     /* buffer handed out by recv, or NO_BUF */

    /* Slots; 0 is never used. */
    slot *slots;
    uint32_t nslots;
    uint32_t free_head;
    uint32_t retry_head;
    uint32_t ready_head;
};

static inline uint64_t ud(uint32_t idx, unsigned op)
{
    return ((uint64_t)idx << 8) | op;
}

/* ------------------------------------------------------------ buffers */

static void buf_give(struct wisp__uring *u, uint32_t bid)
{
    struct wu_buf *b = &u->br[u->br_tail & (u->nbufs - 1)];
    b->addr = (uint64_t)(uintptr_t)(u->bufs + (size_t)bid * u->buf_size);
    b->len = u->buf_size;
    b->bid = (uint16_t)bid;
    u->br_tail++;
    /* The tail overlays entry 0's last field; the kernel reads it with
     * acquire semantics. */
    _Atomic uint16_t *tail = (_Atomic uint16_t *)&u->br[0].resv;
    atomic_store_explicit(tail, u->br_tail, memory_order_release);
    u->bufs_out--;
}

static void recycle_handed(struct wisp__uring *u)
{
    if (u->handed != NO_BUF) {
        buf_give(u, u->handed);
        u->handed = NO_BUF;
    }
}

static void queue_clear(struct wisp__uring *u, slot *s)
{
    uint16_t b = s->qhead;
    while (b != NO_BUF) {
        uint16_t n = u->bnext[b];
        buf_give(u, b);
        b = n;
    }
    s->qhead = s->qtail = NO_BUF;
}

/* ------------------------------------------------------------ rings */

static int sys_enter(int fd, unsigned submit, unsigned min, unsigned flags,
                     void *arg, size_t argsz)
{
    long r = syscall(SYS_io_uring_enter, (long)fd, (long)submit, (long)min,
                     (long)flags, arg, (long)argsz);
    return r < 0 ? -errno : (int)r;
}

static uint32_t sq_pending(struct wisp__uring *u)
{
    return u->sq_tail -
           atomic_load_explicit(u->sq_khead, memory_order_acquire);
}

/* Publish the tail: the kernel takes entries up to it. */
static void sq_publish(struct wisp__uring *u)
{
    atomic_store_explicit(u->sq_ktail, u->sq_tail, memory_order_release);
}

/* A zeroed submission entry, or NULL when the ring is full and even
 * submitting now did not make room. */
static struct wu_sqe *sqe_get(struct wisp__uring *u)
{
    if (sq_pending(u) >= u->sq_entries) {
        sq_publish(u);
        sys_enter(u->fd, sq_pending(u), 0, 0, NULL, 0);
        if (sq_pending(u) >= u->sq_entries)
            return NULL;
    }
    struct wu_sqe *e = &u->sqes[u->sq_tail & u->sq_mask];
    memset(e, 0, sizeof *e);
    u->sq_tail++;
    return e;
}

/* ------------------------------------------------------------ slots */

static uint32_t slot_alloc(struct wisp__uring *u)
{
    if (u->free_head) {
        uint32_t i = u->free_head;
        u->free_head = u->slots[i].next;
        return i;
    }
    uint32_t n = u->nslots ? u->nslots * 2 : 64;
    if (n > (1u << 24))
        return 0; /* io->slot has 24 bits */
    slot *t = realloc(u->slots, (size_t)n * sizeof *t);
    if (!t)
        return 0;
    /* Keep the flags of list membership of old entries; new entries
     * start clear. */
    memset(t + u->nslots, 0, (size_t)(n - u->nslots) * sizeof *t);
    u->slots = t;
    uint32_t first = u->nslots ? u->nslots : 1;
    for (uint32_t i = n - 1; i > first; i--) {
        t[i].next = u->free_head;
        u->free_head = i;
    }
    u->nslots = n;
    return first;
}

static void slot_release_if_done(struct wisp__uring *u, uint32_t idx)
{
    slot *s = &u->slots[idx];
    if (s->io || s->inflight)
        return;
    s->next = u->free_head;
    u->free_head = idx;
}

static void retry_later(struct wisp__uring *u, uint32_t idx)
{
    slot *s = &u->slots[idx];
    if (s->flags & S_LISTED)
        return;
    s->flags |= S_LISTED;
    s->retry_next = u->retry_head;
    u->retry_head = idx;
}

static void ready_later(struct wisp__uring *u, uint32_t idx)
{
    slot *s = &u->slots[idx];
    if (s->flags & S_READY)
        return;
    s->flags |= S_READY;
    s->ready_next = u->ready_head;
    u->ready_head = idx;
}

/* What the io's poll should wait for. */
static uint32_t poll_mask_of(const wisp__io *io)
{
    uint32_t m = 0;
    if (!io->edge && (io->want & WISP__IO_RECV))
        m |= POLLIN | POLLRDHUP;
    if (io->want & WISP__IO_SEND)
        m |= POLLOUT;
    if ((io->want & WISP__IO_HUP) && !(io->want & WISP__IO_RECV))
        m |= POLLRDHUP;
    return m;
}

/* Bring what the kernel has for the slot in line with io->want. */
static void sync_slot(struct wisp__uring *u, uint32_t idx)
{
    slot *s = &u->slots[idx];
    wisp__io *io = s->io;
    if (!io)
        return;
    struct wu_sqe *e;
    if (io->edge) {
        int want_recv = (io->want & WISP__IO_RECV) != 0;
        if (want_recv && !(s->flags & (S_RECV | S_ENDED))) {
            if (u->bufs_out >= u->nbufs) {
                /* Nothing to receive into: wait for a buffer. */
                s->flags |= S_STARVED;
                retry_later(u, idx);
            } else if ((e = sqe_get(u)) != NULL) {
                e->opcode = WU_OP_RECV;
                e->fd = io->fd;
                e->ioprio = WU_RECV_MULTISHOT;
                e->flags = WU_SQE_BUFFER_SELECT;
                e->buf_group = BGID;
                e->user_data = ud(idx, OP_RECV);
                s->flags = (uint8_t)((s->flags | S_RECV) & ~S_STARVED);
                s->inflight++;
            } else {
                retry_later(u, idx);
            }
        } else if (!want_recv && (s->flags & S_RECV) &&
                   !(s->flags & S_RECV_CANCEL)) {
            /* Paused: stop taking buffers, leave the bytes in the
             * socket (its window closes). */
            if ((e = sqe_get(u)) != NULL) {
                e->opcode = WU_OP_ASYNC_CANCEL;
                e->fd = -1;
                e->addr = ud(idx, OP_RECV);
                e->user_data = ud(0, OP_NONE);
                s->flags |= S_RECV_CANCEL;
            } else {
                retry_later(u, idx);
            }
        }
        if (want_recv && (s->qhead != NO_BUF || (s->flags & S_ENDED)))
            ready_later(u, idx);
    }
    uint32_t mask = poll_mask_of(io);
    if (s->flags & S_POLL) {
        if ((mask & ~s->poll_mask) && !(s->flags & S_POLL_REMOVE)) {
            /* It waits for less than wanted now: remove it; its
             * completion arms the new one. */
            if ((e = sqe_get(u)) != NULL) {
                e->opcode = WU_OP_POLL_REMOVE;
                e->fd = -1;
                e->addr = ud(idx, OP_POLL);
                e->user_data = ud(0, OP_NONE);
                s->flags |= S_POLL_REMOVE;
            } else {
                retry_later(u, idx);
            }
        }
    } else if (mask) {
        if ((e = sqe_get(u)) != NULL) {
            e->opcode = WU_OP_POLL_ADD;
            e->fd = io->fd;
            e->op_flags = mask;
            e->user_data = ud(idx, OP_POLL);
            s->poll_mask = mask;
            s->flags |= S_POLL;
            s->inflight++;
        } else {
            retry_later(u, idx);
        }
    }
}

/* ------------------------------------------------------------ setup */

static unsigned env_uint(const char *name, unsigned dflt, unsigned lo,
                         unsigned hi)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (*end || n < lo || n > hi)
        return dflt;
    return (unsigned)n;
}

/* Test hook: WISP_URING_REFUSE=EPERM (or ENOSYS, ENOMEM, or a number)
 * makes setup fail as a kernel that refuses io_uring would. */
static int refused(void)
{
    const char *v = getenv("WISP_URING_REFUSE");
    if (!v || !*v)
        return 0;
    if (strcmp(v, "EPERM") == 0)
        return -EPERM;
    if (strcmp(v, "ENOSYS") == 0)
        return -ENOSYS;
    if (strcmp(v, "ENOMEM") == 0)
        return -ENOMEM;
    int n = atoi(v);
    return n > 0 ? -n : -EPERM;
}

int wisp__ur_init(wisp_loop_t *loop)
{
    loop->backend_fd = -1;
    loop->wake_fd = -1;
    struct wisp__uring *u = calloc(1, sizeof *u);
    if (!u)
        return -ENOMEM;
    u->fd = -1;
    u->handed = NO_BUF;
    loop->ur = u;
    int err = refused();
    if (err)
        return err;

    struct wu_params p;
    memset(&p, 0, sizeof p);
    p.flags = WU_SETUP_CQSIZE | WU_SETUP_CLAMP | WU_SETUP_SUBMIT_ALL |
              WU_SETUP_COOP_TASKRUN;
    p.cq_entries = CQ_ENTRIES;
    long fd = syscall(SYS_io_uring_setup, (long)SQ_ENTRIES, &p);
    if (fd < 0)
        return -errno;
    u->fd = (int)fd;
    loop->backend_fd = u->fd;
    /* Needed: one mapping for both rings, no dropped completions, the
     * wait timeout in the enter call, and the multishot recv of 6.0
     * (whose release brought IORING_FEAT_LINKED_FILE, bit 12). */
    uint32_t need = WU_FEAT_SINGLE_MMAP | WU_FEAT_NODROP | WU_FEAT_EXT_ARG |
                    (1u << 12);
    if ((p.features & need) != need)
        return -ENOSYS;

    size_t sq_len = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
    size_t cq_len = p.cq_off.cqes + p.cq_entries * sizeof(struct wu_cqe);
    u->sq_map_len = sq_len > cq_len ? sq_len : cq_len;
    void *m = mmap(NULL, u->sq_map_len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, u->fd, WU_OFF_SQ_RING);
    if (m == MAP_FAILED)
        return -errno;
    u->sq_map = m;
    u->sqes_len = p.sq_entries * sizeof(struct wu_sqe);
    void *q = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_POPULATE, u->fd, WU_OFF_SQES);
    if (q == MAP_FAILED) {
        u->sqes = NULL;
        return -errno;
    }
    u->sqes = q;
    char *b = m;
    u->sq_khead = (_Atomic uint32_t *)(b + p.sq_off.head);
    u->sq_ktail = (_Atomic uint32_t *)(b + p.sq_off.tail);
    u->sq_kflags = (_Atomic uint32_t *)(b + p.sq_off.flags);
    u->sq_mask = *(uint32_t *)(b + p.sq_off.ring_mask);
    u->sq_entries = p.sq_entries;
    uint32_t *array = (uint32_t *)(b + p.sq_off.array);
    for (uint32_t i = 0; i < p.sq_entries; i++)
        array[i] = i;
    u->sq_tail = atomic_load_explicit(u->sq_ktail, memory_order_relaxed);
    u->cq_khead = (_Atomic uint32_t *)(b + p.cq_off.head);
    u->cq_ktail = (_Atomic uint32_t *)(b + p.cq_off.tail);
    u->cq_mask = *(uint32_t *)(b + p.cq_off.ring_mask);
    u->cqes = (struct wu_cqe *)(b + p.cq_off.cqes);

    /* The provided-buffer ring. */
    unsigned nb = env_uint("WISP_URING_BUFS", NBUFS_DEFAULT, 1, 32768);
    uint32_t pow = 1;
    while (pow < nb)
        pow <<= 1;
    u->nbufs = pow;
    u->buf_size = env_uint("WISP_URING_BUF_SIZE", BUF_SIZE_DEFAULT, 16,
                           1u << 20);
    u->br_len = (size_t)u->nbufs * sizeof(struct wu_buf);
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0)
        page = 4096;
    u->br_len = (u->br_len + (size_t)page - 1) & ~((size_t)page - 1);
    void *r = mmap(NULL, u->br_len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED)
        return -errno;
    u->br = r;
    u->bufs = malloc((size_t)u->nbufs * u->buf_size);
    u->bnext = malloc(u->nbufs * sizeof *u->bnext);
    u->blen = malloc(u->nbufs * sizeof *u->blen);
    u->boff = malloc(u->nbufs * sizeof *u->boff);
    if (!u->bufs || !u->bnext || !u->blen || !u->boff)
        return -ENOMEM;
    struct wu_buf_reg reg;
    memset(&reg, 0, sizeof reg);
    reg.ring_addr = (uint64_t)(uintptr_t)u->br;
    reg.ring_entries = u->nbufs;
    reg.bgid = BGID;
    if (syscall(SYS_io_uring_register, (long)u->fd,
                (long)WU_REGISTER_PBUF_RING, &reg, 1L) < 0)
        return -errno;
    u->bufs_out = u->nbufs;
    for (uint32_t i = 0; i < u->nbufs; i++)
        buf_give(u, i);

    loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (loop->wake_fd < 0)
        return -errno;
    return 0;
}

void wisp__ur_fini(wisp_loop_t *loop)
{
    struct wisp__uring *u = loop->ur;
    if (loop->wake_fd >= 0)
        close(loop->wake_fd);
    loop->wake_fd = -1;
    if (!u)
        return;
    /* Closing the ring cancels whatever it still has in the kernel. */
    if (u->fd >= 0)
        close(u->fd);
    loop->backend_fd = -1;
    if (u->sqes)
        munmap(u->sqes, u->sqes_len);
    if (u->sq_map)
        munmap(u->sq_map, u->sq_map_len);
    if (u->br)
        munmap(u->br, u->br_len);
    free(u->bufs);
    free(u->bnext);
    free(u->blen);
    free(u->boff);
    free(u->slots);
    free(u);
    loop->ur = NULL;
}

/* ------------------------------------------------------------ ios */

int wisp__ur_add(wisp_loop_t *loop, wisp__io *io)
{
    struct wisp__uring *u = loop->ur;
    uint32_t idx = slot_alloc(u);
    if (!idx)
        return -ENOMEM;
    slot *s = &u->slots[idx];
    s->io = io;
    s->res = 0;
    s->qhead = s->qtail = NO_BUF;
    s->poll_mask = 0;
    s->inflight = 0;
    s->flags &= S_LISTED | S_READY; /* list membership outlives a use */
    io->slot = idx;
    io->added = 1;
    io->armed = io->want;
    sync_slot(u, idx);
    return 0;
}

int wisp__ur_update(wisp_loop_t *loop, wisp__io *io)
{
    if (!io->added)
        return 0;
    io->armed = io->want;
    sync_slot(loop->ur, io->slot);
    return 0;
}

void wisp__ur_del(wisp_loop_t *loop, wisp__io *io)
{
    if (!io->added)
        return;
    struct wisp__uring *u = loop->ur;
    uint32_t idx = io->slot;
    slot *s = &u->slots[idx];
    struct wu_sqe *e;
    /* Cancel what is in the kernel; its completions find the slot
     * detached. A cancel that finds no room in the ring is not needed
     * for safety (the slot stays reserved until every request ends, and
     * closing the fd ends a poll), only for promptness. */
    if ((s->flags & S_RECV) && !(s->flags & S_RECV_CANCEL) &&
        (e = sqe_get(u)) != NULL) {
        e->opcode = WU_OP_ASYNC_CANCEL;
        e->fd = -1;
        e->addr = ud(idx, OP_RECV);
        s->flags |= S_RECV_CANCEL;
    }
    if ((s->flags & S_POLL) && !(s->flags & S_POLL_REMOVE) &&
        (e = sqe_get(u)) != NULL) {
        e->opcode = WU_OP_POLL_REMOVE;
        e->fd = -1;
        e->addr = ud(idx, OP_POLL);
        s->flags |= S_POLL_REMOVE;
    }
    queue_clear(u, s);
    s->flags &= (uint8_t)~(S_ENDED | S_STARVED);
    s->io = NULL;
    io->slot = 0;
    io->added = 0;
    io->armed = 0;
    slot_release_if_done(u, idx);
}

void wisp__ur_close(wisp_loop_t *loop, wisp__io *io)
{
    if (io->fd < 0)
        return;
    wisp__ur_del(loop, io);
    close(io->fd);
    io->fd = -1;
}

/* ------------------------------------------------------------ receive */

ssize_t wisp__ur_recv(wisp_loop_t *loop, wisp__io *io, char **data)
{
    struct wisp__uring *u = loop->ur;
    recycle_handed(u);
    if (!io->added)
        return -EAGAIN;
    slot *s = &u->slots[io->slot];
    uint16_t b = s->qhead;
    if (b == NO_BUF)
        return (s->flags & S_ENDED) ? s->res : -EAGAIN;
    s->qhead = u->bnext[b];
    if (s->qhead == NO_BUF)
        s->qtail = NO_BUF;
    u->handed = b;
    *data = u->bufs + (size_t)b * u->buf_size + u->boff[b];
    return (ssize_t)(u->blen[b] - u->boff[b]);
}

ssize_t wisp__ur_recv_into(wisp_loop_t *loop, wisp__io *io, char *buf,
                           size_t cap)
{
    struct wisp__uring *u = loop->ur;
    recycle_handed(u);
    if (!io->added)
        return -EAGAIN;
    slot *s = &u->slots[io->slot];
    size_t got = 0;
    while (got < cap && s->qhead != NO_BUF) {
        uint16_t b = s->qhead;
        size_t avail = u->blen[b] - u->boff[b];
        size_t n = avail < cap - got ? avail : cap - got;
        memcpy(buf + got, u->bufs + (size_t)b * u->buf_size + u->boff[b],
               n);
        got += n;
        u->boff[b] += (uint32_t)n;
        if (u->boff[b] == u->blen[b]) {
            s->qhead = u->bnext[b];
            if (s->qhead == NO_BUF)
                s->qtail = NO_BUF;
            buf_give(u, b);
        }
    }
    if (got)
        return (ssize_t)got;
    return (s->flags & S_ENDED) ? s->res : -EAGAIN;
}

/* ------------------------------------------------------------ wait */

static unsigned poll_events(const wisp__io *io, uint32_t rev)
{
    unsigned out = 0;
    if ((rev & POLLIN) && (io->want & WISP__IO_RECV))
        out |= WISP__EV_RECV;
    if (rev & POLLRDHUP)
        out |= (io->want & WISP__IO_RECV) ? WISP__EV_RECV | WISP__EV_HUP
                                          : WISP__EV_HUP;
    if ((rev & POLLOUT) && (io->want & WISP__IO_SEND))
        out |= WISP__EV_SEND;
    if (rev & (POLLERR | POLLHUP))
        out |= WISP__EV_HUP | WISP__EV_RECV;
    return out;
}

static void on_recv_cqe(struct wisp__uring *u, uint32_t idx,
                        const struct wu_cqe *c)
{
    slot *s = &u->slots[idx];
    int more = (c->flags & WU_CQE_F_MORE) != 0;
    if (!more) {
        s->flags &= (uint8_t)~(S_RECV | S_RECV_CANCEL);
        s->inflight--;
    }
    if (c->flags & WU_CQE_F_BUFFER) {
        uint16_t b = (uint16_t)(c->flags >> WU_CQE_BUFFER_SHIFT);
        u->bufs_out++;
        if (!s->io || c->res <= 0) {
            buf_give(u, b);
        } else {
            u->blen[b] = (uint32_t)c->res;
            u->boff[b] = 0;
            u->bnext[b] = NO_BUF;
            if (s->qtail != NO_BUF)
                u->bnext[s->qtail] = b;
            else
                s->qhead = b;
            s->qtail = b;
        }
    }
    if (!s->io) {
        slot_release_if_done(u, idx);
        return;
    }
    if (c->res == 0 && !(c->flags & WU_CQE_F_BUFFER)) {
        s->flags |= S_ENDED;
        s->res = 0;
    } else if (c->res == -ENOBUFS) {
        s->flags |= S_STARVED;
        retry_later(u, idx);
    } else if (c->res < 0 && c->res != -ECANCELED) {
        s->flags |= S_ENDED;
        s->res = c->res;
    }
    wisp__io *io = s->io;
    if (!more)
        sync_slot(u, idx); /* arms again if still wanted */
    s = &u->slots[idx];
    if (s->io == io && (io->want & WISP__IO_RECV) &&
        (s->qhead != NO_BUF || (s->flags & S_ENDED)))
        io->cb(io, WISP__EV_RECV);
}

static void on_poll_cqe(struct wisp__uring *u, uint32_t idx,
                        const struct wu_cqe *c)
{
    slot *s = &u->slots[idx];
    s->flags &= (uint8_t)~(S_POLL | S_POLL_REMOVE);
    s->inflight--;
    wisp__io *io = s->io;
    if (!io) {
        slot_release_if_done(u, idx);
        return;
    }
    unsigned ev = c->res > 0 ? poll_events(io, (uint32_t)c->res) : 0;
    if (c->res < 0 && c->res != -ECANCELED)
        ev = WISP__EV_HUP | WISP__EV_RECV;
    if (ev)
        io->cb(io, ev);
    /* Armed again after the callback (if still wanted): armed before,
     * it would report what the callback is about to consume. */
    s = &u->slots[idx];
    if (s->io == io)
        sync_slot(u, idx);
}

static void run_lists(struct wisp__uring *u)
{
    /* Starved ios (and ios whose request found the ring full) try
     * again while buffers are there. */
    uint32_t idx = u->retry_head;
    u->retry_head = 0;
    while (idx) {
        slot *s = &u->slots[idx];
        uint32_t next = s->retry_next;
        s->flags &= (uint8_t)~S_LISTED;
        if (s->io) {
            if ((s->flags & S_STARVED) && u->bufs_out >= u->nbufs)
                retry_later(u, idx);
            else
                sync_slot(u, idx);
        }
        idx = next;
    }
}

static void run_ready(struct wisp__uring *u)
{
    uint32_t idx = u->ready_head;
    u->ready_head = 0;
    while (idx) {
        slot *s = &u->slots[idx];
        uint32_t next = s->ready_next;
        s->flags &= (uint8_t)~S_READY;
        wisp__io *io = s->io;
        if (io && (io->want & WISP__IO_RECV) &&
            (s->qhead != NO_BUF || (s->flags & S_ENDED)))
            io->cb(io, WISP__EV_RECV);
        idx = next;
    }
}

int wisp__ur_wait(wisp_loop_t *loop, int timeout_ms)
{
    struct wisp__uring *u = loop->ur;
    recycle_handed(u);
    if (u->retry_head)
        run_lists(u);
    if (u->ready_head)
        timeout_ms = 0;
    uint32_t head = atomic_load_explicit(u->cq_khead, memory_order_relaxed);
    uint32_t tail = atomic_load_explicit(u->cq_ktail, memory_order_acquire);
    sq_publish(u);
    uint32_t submit = sq_pending(u);
    if (head == tail || submit) {
        unsigned flags = WU_ENTER_GETEVENTS;
        unsigned min = 0;
        struct wu_timespec ts;
        struct wu_getevents_arg arg;
        memset(&arg, 0, sizeof arg);
        if (head == tail && timeout_ms != 0) {
            min = 1;
            if (timeout_ms > 0) {
                ts.tv_sec = timeout_ms / 1000;
                ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
                arg.ts = (uint64_t)(uintptr_t)&ts;
            }
        }
        flags |= WU_ENTER_EXT_ARG;
        int r = sys_enter(u->fd, submit, min, flags, &arg, sizeof arg);
        if (r < 0 && r != -EINTR && r != -ETIME && r != -EBUSY &&
            r != -EAGAIN)
            return r;
    }
    loop->now_ms = wisp__clock_ms();
    /* Take the completions there now; callbacks may add submissions,
     * which go with the next enter. */
    head = atomic_load_explicit(u->cq_khead, memory_order_relaxed);
    tail = atomic_load_explicit(u->cq_ktail, memory_order_acquire);
    while (head != tail) {
        struct wu_cqe c = u->cqes[head & u->cq_mask];
        head++;
        atomic_store_explicit(u->cq_khead, head, memory_order_release);
        uint32_t idx = (uint32_t)(c.user_data >> 8);
        switch ((unsigned)(c.user_data & 0xff)) {
        case OP_RECV:
            on_recv_cqe(u, idx, &c);
            break;
        case OP_POLL:
            on_poll_cqe(u, idx, &c);
            break;
        default:
            break;
        }
    }
    if (u->ready_head)
        run_ready(u);
    /* Completions the kernel holds back (the ring was full) or work it
     * waits to run: come back without sleeping. */
    if (atomic_load_explicit(u->sq_kflags, memory_order_relaxed) &
        (WU_SQ_CQ_OVERFLOW | WU_SQ_TASKRUN))
        wisp__loop_keep_awake(loop);
    if (u->retry_head && u->bufs_out < u->nbufs)
        wisp__loop_keep_awake(loop);
    return 0;
}
