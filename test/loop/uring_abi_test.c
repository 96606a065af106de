/* uring_abi.h against the kernel's <linux/io_uring.h>: every layout and
 * number the backend uses. The checks are static: a mismatch fails the
 * build of this test. Built only where the kernel header exists (not
 * under musl). */
#include <stddef.h>
#include <linux/io_uring.h>
#include "loop/uring_abi.h"
#define SAME(a,b) _Static_assert(sizeof(struct a)==sizeof(struct b), #a)
SAME(wu_sqe, io_uring_sqe); SAME(wu_cqe, io_uring_cqe); SAME(wu_params, io_uring_params);
SAME(wu_buf, io_uring_buf); SAME(wu_buf_reg, io_uring_buf_reg); SAME(wu_getevents_arg, io_uring_getevents_arg);
#define OFF(f,g) _Static_assert(offsetof(struct wu_sqe,f)==offsetof(struct io_uring_sqe,g), #f)
OFF(fd,fd); OFF(off,off); OFF(addr,addr); OFF(len,len); OFF(op_flags,msg_flags); OFF(user_data,user_data); OFF(buf_group,buf_group); OFF(file_index,file_index); OFF(addr3,addr3); OFF(ioprio,ioprio);
_Static_assert(offsetof(struct wu_params,sq_off)==offsetof(struct io_uring_params,sq_off),"p");
_Static_assert(WU_OP_RECV==IORING_OP_RECV && WU_OP_POLL_ADD==IORING_OP_POLL_ADD && WU_OP_POLL_REMOVE==IORING_OP_POLL_REMOVE && WU_OP_ASYNC_CANCEL==IORING_OP_ASYNC_CANCEL && WU_OP_SHUTDOWN==IORING_OP_SHUTDOWN && WU_OP_CLOSE==IORING_OP_CLOSE && WU_OP_READ==IORING_OP_READ && WU_OP_SEND==IORING_OP_SEND && WU_OP_ACCEPT==IORING_OP_ACCEPT && WU_OP_CONNECT==IORING_OP_CONNECT,"ops");
_Static_assert(WU_SETUP_COOP_TASKRUN==IORING_SETUP_COOP_TASKRUN && WU_SETUP_SUBMIT_ALL==IORING_SETUP_SUBMIT_ALL && WU_SETUP_CQSIZE==IORING_SETUP_CQSIZE && WU_SQE_BUFFER_SELECT==IOSQE_BUFFER_SELECT && WU_RECV_MULTISHOT==IORING_RECV_MULTISHOT && WU_REGISTER_PBUF_RING==IORING_REGISTER_PBUF_RING && WU_ENTER_EXT_ARG==IORING_ENTER_EXT_ARG && WU_FEAT_EXT_ARG==IORING_FEAT_EXT_ARG && (1u<<12)==IORING_FEAT_LINKED_FILE && WU_OFF_SQES==IORING_OFF_SQES && WU_SQ_TASKRUN==IORING_SQ_TASKRUN && WU_CQE_F_MORE==IORING_CQE_F_MORE,"consts");
#include <stdio.h>
int main(void)
{
    printf("uring_abi: layouts match <linux/io_uring.h>\n");
    return 0;
}
