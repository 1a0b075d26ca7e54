/* Compile check: <uhoma/homa.h> and <uhoma/uhoma_c.h> are valid C11.
 *
 * Built as an object library with C_STANDARD 11 and -Wall -Wextra -Werror
 * -pedantic; nothing links it. The headers' own _Static_asserts check the
 * layouts; this file adds checks that only make sense from C (field types
 * usable as C expects) and references every declared entry point's type.
 */
#include <stddef.h>
#include <string.h>

#include "uhoma/homa.h"
#include "uhoma/uhoma_c.h"

_Static_assert(IPPROTO_HOMA == 146, "IPPROTO_HOMA");
_Static_assert(sizeof(struct homa_info) == 136, "homa_info size");
_Static_assert(sizeof(((struct homa_recvmsg_args*)0)->bpage_offsets) == 4 * HOMA_MAX_BPAGES,
               "bpage_offsets length");

/* The entry points have the signatures the Linux calls have. */
static int (*const socket_fn)(int, int, int) = uhoma_socket;
static int (*const bind_fn)(int, const struct sockaddr*, socklen_t) = uhoma_bind;
static int (*const setsockopt_fn)(int, int, int, const void*, socklen_t) = uhoma_setsockopt;
static int (*const getsockopt_fn)(int, int, int, void*, socklen_t*) = uhoma_getsockopt;
static ssize_t (*const sendmsg_fn)(int, const struct msghdr*, int) = uhoma_sendmsg;
static ssize_t (*const recvmsg_fn)(int, struct msghdr*, int) = uhoma_recvmsg;
static int (*const ioctl_fn)(int, unsigned long, void*) = uhoma_ioctl;
static int (*const close_fn)(int) = uhoma_close;
static int (*const shutdown_fn)(int, int) = uhoma_shutdown;

size_t uhoma_homa_h_c_check(void);

/* Uses every structure the way a C application does. */
size_t uhoma_homa_h_c_check(void) {
    struct homa_sendmsg_args send_args;
    struct homa_recvmsg_args recv_args;
    struct homa_abort_args abort_args;
    struct homa_rcvbuf_args rcvbuf_args;
    struct homa_rpc_info rpc_info;
    struct homa_info info;
    memset(&send_args, 0, sizeof send_args);
    memset(&recv_args, 0, sizeof recv_args);
    memset(&abort_args, 0, sizeof abort_args);
    memset(&rcvbuf_args, 0, sizeof rcvbuf_args);
    memset(&rpc_info, 0, sizeof rpc_info);
    memset(&info, 0, sizeof info);
    send_args.flags = HOMA_SENDMSG_PRIVATE;
    recv_args.bpage_offsets[HOMA_MAX_BPAGES - 1] = HOMA_BPAGE_SIZE;
    abort_args.error = 110;
    rcvbuf_args.length = (__u64)HOMA_BPAGE_SIZE * HOMA_MAX_BPAGES;
    rpc_info.peer.in4.sin_family = AF_INET;
    rpc_info.peer.in6.sin6_port = 0;
    rpc_info.flags = HOMA_RPC_BUF_STALL | HOMA_RPC_PRIVATE | HOMA_RPC_RX_READY | HOMA_RPC_RX_COPY;
    info.rpc_info = (__u64)(size_t)&rpc_info;
    info.rpc_info_length = sizeof rpc_info;
    info.error_msg[HOMA_ERROR_MSG_SIZE - 1] = '\0';
    return send_args.flags + recv_args.bpage_offsets[HOMA_MAX_BPAGES - 1] + abort_args.error +
           rcvbuf_args.length + rpc_info.flags + info.rpc_info_length + (socket_fn != NULL) +
           (bind_fn != NULL) + (setsockopt_fn != NULL) + (getsockopt_fn != NULL) +
           (sendmsg_fn != NULL) + (recvmsg_fn != NULL) + (ioctl_fn != NULL) + (close_fn != NULL) +
           (shutdown_fn != NULL) + (size_t)HOMAIOCINFO + (size_t)HOMAIOCABORT +
           (size_t)HOMAIOCFREEZE;
}
