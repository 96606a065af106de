/* Internal: the part of the io_uring kernel ABI the io_uring backend
 * uses, written out here so that the backend builds with nothing but a C
 * library: musl's include tree has no <linux/io_uring.h>, and liburing
 * stays optional (docs/architecture.md says why). Layouts and numbers are
 * the kernel's stable ABI (include/uapi/linux/io_uring.h); a unit test
 * (test/loop/uring_abi_test.c) checks them against the kernel header when
 * the build has one. Names carry a WU_ prefix so that this header and
 * the kernel's can meet in one file. */
#ifndef WISP_URING_ABI_H
#define WISP_URING_ABI_H

#include <stdint.h>

struct wu_sqe {
    uint8_t opcode;
    uint8_t flags;
    uint16_t ioprio;
    int32_t fd;
    uint64_t off;       /* also addr2 */
    uint64_t addr;
    uint32_t len;
    uint32_t op_flags;  /* msg_flags, poll32_events, cancel_flags, ... */
    uint64_t user_data;
    uint16_t buf_group; /* buf_index */
    uint16_t personality;
    int32_t file_index; /* splice_fd_in */
    uint64_t addr3;
    uint64_t pad2;
};

struct wu_cqe {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
};

struct wu_sq_offsets {
    uint32_t head, tail, ring_mask, ring_entries, flags, dropped, array,
        resv1;
    uint64_t resv2;
};

struct wu_cq_offsets {
    uint32_t head, tail, ring_mask, ring_entries, overflow, cqes, flags,
        resv1;
    uint64_t resv2;
};

struct wu_params {
    uint32_t sq_entries;
    uint32_t cq_entries;
    uint32_t flags;
    uint32_t sq_thread_cpu;
    uint32_t sq_thread_idle;
    uint32_t features;
    uint32_t wq_fd;
    uint32_t resv[3];
    struct wu_sq_offsets sq_off;
    struct wu_cq_offsets cq_off;
};

/* One entry of a provided-buffer ring; the ring's tail overlays the
 * `resv` field of entry 0. */
struct wu_buf {
    uint64_t addr;
    uint32_t len;
    uint16_t bid;
    uint16_t resv;
};

struct wu_buf_reg {
    uint64_t ring_addr;
    uint32_t ring_entries;
    uint16_t bgid;
    uint16_t pad;
    uint64_t resv[3];
};

struct wu_getevents_arg {
    uint64_t sigmask;
    uint32_t sigmask_sz;
    uint32_t pad;
    uint64_t ts;
};

struct wu_timespec {
    int64_t tv_sec;
    long long tv_nsec;
};

/* Opcodes. */
#define WU_OP_NOP 0
#define WU_OP_POLL_ADD 6
#define WU_OP_POLL_REMOVE 7
#define WU_OP_ACCEPT 13
#define WU_OP_ASYNC_CANCEL 14
#define WU_OP_CONNECT 16
#define WU_OP_CLOSE 19
#define WU_OP_READ 22
#define WU_OP_SEND 26
#define WU_OP_RECV 27
#define WU_OP_SHUTDOWN 34

/* sqe->flags */
#define WU_SQE_BUFFER_SELECT (1u << 5)
#define WU_SQE_CQE_SKIP_SUCCESS (1u << 6)

/* Setup flags. */
#define WU_SETUP_SQPOLL (1u << 1)
#define WU_SETUP_CQSIZE (1u << 3)
#define WU_SETUP_CLAMP (1u << 4)
#define WU_SETUP_SUBMIT_ALL (1u << 7)
#define WU_SETUP_COOP_TASKRUN (1u << 8)

/* Op flags. */
#define WU_POLL_ADD_MULTI (1u << 0)
#define WU_ASYNC_CANCEL_ALL (1u << 0)
#define WU_RECV_MULTISHOT (1u << 1) /* in sqe->ioprio */
#define WU_ACCEPT_MULTISHOT (1u << 0) /* in sqe->ioprio */

/* cqe->flags */
#define WU_CQE_F_BUFFER (1u << 0)
#define WU_CQE_F_MORE (1u << 1)
#define WU_CQE_BUFFER_SHIFT 16

/* mmap offsets */
#define WU_OFF_SQ_RING 0ULL
#define WU_OFF_CQ_RING 0x8000000ULL
#define WU_OFF_SQES 0x10000000ULL

/* sq flags */
#define WU_SQ_NEED_WAKEUP (1u << 0)
#define WU_SQ_CQ_OVERFLOW (1u << 1)
#define WU_SQ_TASKRUN (1u << 2)

/* Enter flags. */
#define WU_ENTER_GETEVENTS (1u << 0)
#define WU_ENTER_SQ_WAKEUP (1u << 1)
#define WU_ENTER_EXT_ARG (1u << 3)

/* Features. */
#define WU_FEAT_SINGLE_MMAP (1u << 0)
#define WU_FEAT_NODROP (1u << 1)
#define WU_FEAT_FAST_POLL (1u << 5)
#define WU_FEAT_EXT_ARG (1u << 8)

/* Register opcodes. */
#define WU_REGISTER_PROBE 8
#define WU_REGISTER_PBUF_RING 22

/* Syscall numbers: one table for every architecture but alpha since
 * Linux 5.1 (musl and glibc name them too when new enough). */
#ifndef SYS_io_uring_setup
#define SYS_io_uring_setup 425
#endif
#ifndef SYS_io_uring_enter
#define SYS_io_uring_enter 426
#endif
#ifndef SYS_io_uring_register
#define SYS_io_uring_register 427
#endif

#endif
