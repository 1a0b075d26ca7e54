/* homa.h: Linux Homa's application interface (its uapi header), for uhoma.
 *
 * Design notes
 * ------------
 * An application written for the Linux Homa module must build unchanged
 * against uhoma, so this header has exactly Linux Homa's constants, ioctl
 * numbers and struct layouts (spec section 8.1/8.2): same names, same field
 * types (__u64/__u32 from <linux/types.h>, as the kernel's uapi uses), same
 * offsets and sizes. It is a C header that must compile as C11 and as C++20;
 * it holds no uhoma C++ types and no functions. uhoma's own C entry points
 * that accept these structures are declared in <uhoma/uhoma_c.h>.
 *
 * Every size and every field offset the spec gives is checked at compile time
 * below (x86-64 / LP64 layout, host byte order), so a change that would break
 * binary compatibility with Linux Homa does not build.
 *
 * Two places where the man pages disagree with the uapi (spec 12): the man
 * pages show `homa_info.rpc_info` as a pointer and `rpc_info_length` as a
 * size_t; the uapi, and this header, use __u64 for both (same size and offset
 * on 64-bit hosts). Store a pointer with (__u64)(uintptr_t)ptr.
 */
#ifndef UHOMA_HOMA_H
#define UHOMA_HOMA_H

#include <linux/types.h>
#include <netinet/in.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

/* IANA-assigned IP protocol number for Homa. */
#ifndef IPPROTO_HOMA
#define IPPROTO_HOMA 146
#endif

/* Largest request or response payload, in bytes. */
#define HOMA_MAX_MESSAGE_LENGTH 1000000

/* Receive buffers are carved into bpages of 2^HOMA_BPAGE_SHIFT bytes. */
#define HOMA_BPAGE_SHIFT 16
#define HOMA_BPAGE_SIZE (1 << HOMA_BPAGE_SHIFT)

/* Most bpages one message can occupy: ceil(HOMA_MAX_MESSAGE_LENGTH /
 * HOMA_BPAGE_SIZE). Also the length of homa_recvmsg_args.bpage_offsets.
 */
#define HOMA_MAX_BPAGES 16

/* Ports 1..32767 are server ports chosen with bind(); ports from
 * HOMA_MIN_DEFAULT_PORT up are assigned automatically to new sockets.
 */
#define HOMA_MIN_DEFAULT_PORT 0x8000

/* Bits of homa_sendmsg_args.flags. HOMA_SENDMSG_PRIVATE: the response to this
 * request is delivered only to a recvmsg that names its id (ignored when
 * sending a response, i.e. when id != 0).
 */
#define HOMA_SENDMSG_PRIVATE 0x01
#define HOMA_SENDMSG_VALID_FLAGS 0x01

/* Socket options, at level IPPROTO_HOMA. SO_HOMA_RCVBUF takes a
 * struct homa_rcvbuf_args; SO_HOMA_SERVER takes an int (nonzero = server).
 */
#define SO_HOMA_RCVBUF 10
#define SO_HOMA_SERVER 11

/* Bit of the module-wide `flags` parameter: never throttle output. */
#define HOMA_FLAG_DONT_THROTTLE 2

/* Bits of homa_rpc_info.flags. */
#define HOMA_RPC_BUF_STALL 1 /* incoming message waits for buffer space */
#define HOMA_RPC_PRIVATE 2   /* client RPC sent with HOMA_SENDMSG_PRIVATE */
#define HOMA_RPC_RX_READY 4  /* incoming message complete and queued for recvmsg */
#define HOMA_RPC_RX_COPY 8   /* some received packets not yet copied to the buffer */

/* Size of homa_info.error_msg, including the terminating NUL. */
#define HOMA_ERROR_MSG_SIZE 104

/* struct homa_sendmsg_args: what sendmsg's msg_control points to. */
struct homa_sendmsg_args {
    /* In: 0 to send a request, else the id of the server RPC to respond to.
     * Out: for a request, the id of the new RPC.
     */
    __u64 id;
    /* In: returned by recvmsg with the response (requests only; must be 0
     * for a response).
     */
    __u64 completion_cookie;
    /* In: HOMA_SENDMSG_* bits. */
    __u32 flags;
    /* Must be 0. */
    __u32 reserved;
};

/* struct homa_recvmsg_args: what recvmsg's msg_control points to
 * (msg_controllen must be sizeof(struct homa_recvmsg_args)).
 */
struct homa_recvmsg_args {
    /* In: 0 for any shared message, else the id of a private client RPC.
     * Out: the id of the message received (odd: request, even: response).
     */
    __u64 id;
    /* Out: the cookie given when the request was sent (responses only). */
    __u64 completion_cookie;
    /* In: number of bpages in bpage_offsets to return to the pool.
     * Out: number of bpages holding the message received.
     */
    __u32 num_bpages;
    /* Must be 0. */
    __u32 reserved;
    /* In: offsets (in the receive region) of bpages to give back.
     * Out: offsets of the bpages holding the message, in order.
     */
    __u32 bpage_offsets[HOMA_MAX_BPAGES];
};

/* struct homa_abort_args: argument of HOMAIOCABORT. */
struct homa_abort_args {
    /* Id of the client RPC to abort; 0 aborts every client RPC of the socket. */
    __u64 id;
    /* 0: free the RPC silently; else complete it with this errno. */
    __u32 error;
    /* Must be 0. */
    __u32 _pad1;
    /* Must be 0. */
    __u64 _pad2[2];
};

/* struct homa_rcvbuf_args: value of the SO_HOMA_RCVBUF socket option. */
struct homa_rcvbuf_args {
    /* Address of the receive region (page aligned) in the caller's memory. */
    __u64 start;
    /* Length of the region in bytes (reads back as num_bpages << 16). */
    __u64 length;
};

/* struct homa_rpc_info: one RPC's state, as reported by HOMAIOCINFO. */
struct homa_rpc_info {
    /* RPC id (odd: server RPC, even: client RPC). */
    __u64 id;
    /* Address of the peer. */
    union {
        struct sockaddr_storage storage;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } peer;
    /* Cookie given with the request (client RPCs). */
    __u64 completion_cookie;
    /* Length of the outgoing message; -1 if none yet. */
    __s32 tx_length;
    /* Outgoing bytes transmitted at least once. */
    __u32 tx_sent;
    /* Outgoing bytes the receiver allows us to send (unscheduled included). */
    __u32 tx_granted;
    /* Priority of the last outgoing DATA packet. */
    __u32 tx_prio;
    /* Length of the incoming message; -1 if unknown. */
    __s32 rx_length;
    /* Incoming bytes not yet received. */
    __u32 rx_remaining;
    /* Number of gaps (missing ranges) in the incoming message. */
    __u32 rx_gaps;
    /* Total bytes in those gaps. */
    __u32 rx_gap_bytes;
    /* Incoming bytes granted so far (unscheduled included). */
    __u32 rx_granted;
    /* HOMA_RPC_* bits. */
    __u16 flags;
};

/* struct homa_info: argument of HOMAIOCINFO. */
struct homa_info {
    /* In: user address of an array of struct homa_rpc_info to fill (a
     * pointer in the man page, __u64 in the uapi).
     */
    __u64 rpc_info;
    /* In: size of that array in bytes; up to rpc_info_length /
     * sizeof(struct homa_rpc_info) records are written.
     */
    __u64 rpc_info_length;
    /* Out: free bytes in the socket's receive buffer pool. */
    __u64 bpool_avail_bytes;
    /* Out: the socket's port. */
    __u32 port;
    /* Out: number of RPCs the socket has (may exceed the records written). */
    __u32 num_rpcs;
    /* Out: text of the socket's last error, NUL-terminated. */
    char error_msg[HOMA_ERROR_MSG_SIZE];
};

/* I/O control requests on Homa sockets. */
#define HOMAIOCINFO _IOWR('h', 0x90, struct homa_info)
#define HOMAIOCABORT _IOWR('h', 0x91, struct homa_abort_args)
#define HOMAIOCFREEZE _IO('h', 0x92)

/* Compile-time checks of the Linux Homa ABI (spec 8.1 and 8.2). */
#ifdef __cplusplus
#define UHOMA_HOMA_H_ASSERT(cond, msg) static_assert(cond, msg)
#else
#define UHOMA_HOMA_H_ASSERT(cond, msg) _Static_assert(cond, msg)
#endif

UHOMA_HOMA_H_ASSERT(HOMA_BPAGE_SIZE == 65536, "HOMA_BPAGE_SIZE");
UHOMA_HOMA_H_ASSERT(HOMAIOCINFO == 0xC0886890u, "HOMAIOCINFO");
UHOMA_HOMA_H_ASSERT(HOMAIOCABORT == 0xC0206891u, "HOMAIOCABORT");
UHOMA_HOMA_H_ASSERT(HOMAIOCFREEZE == 0x6892u, "HOMAIOCFREEZE");

UHOMA_HOMA_H_ASSERT(sizeof(struct homa_sendmsg_args) == 24, "homa_sendmsg_args size");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_sendmsg_args, id) == 0, "homa_sendmsg_args.id");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_sendmsg_args, completion_cookie) == 8,
                    "homa_sendmsg_args.completion_cookie");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_sendmsg_args, flags) == 16, "homa_sendmsg_args.flags");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_sendmsg_args, reserved) == 20,
                    "homa_sendmsg_args.reserved");

UHOMA_HOMA_H_ASSERT(sizeof(struct homa_recvmsg_args) == 88, "homa_recvmsg_args size");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_recvmsg_args, id) == 0, "homa_recvmsg_args.id");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_recvmsg_args, completion_cookie) == 8,
                    "homa_recvmsg_args.completion_cookie");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_recvmsg_args, num_bpages) == 16,
                    "homa_recvmsg_args.num_bpages");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_recvmsg_args, reserved) == 20,
                    "homa_recvmsg_args.reserved");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_recvmsg_args, bpage_offsets) == 24,
                    "homa_recvmsg_args.bpage_offsets");

UHOMA_HOMA_H_ASSERT(sizeof(struct homa_abort_args) == 32, "homa_abort_args size");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_abort_args, id) == 0, "homa_abort_args.id");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_abort_args, error) == 8, "homa_abort_args.error");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_abort_args, _pad1) == 12, "homa_abort_args._pad1");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_abort_args, _pad2) == 16, "homa_abort_args._pad2");

UHOMA_HOMA_H_ASSERT(sizeof(struct homa_rcvbuf_args) == 16, "homa_rcvbuf_args size");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_rcvbuf_args, start) == 0, "homa_rcvbuf_args.start");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_rcvbuf_args, length) == 8, "homa_rcvbuf_args.length");

UHOMA_HOMA_H_ASSERT(sizeof(struct homa_rpc_info) == 184, "homa_rpc_info size");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_rpc_info, id) == 0, "homa_rpc_info.id");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_rpc_info, peer) == 8, "homa_rpc_info.peer");
UHOMA_HOMA_H_ASSERT(sizeof(struct sockaddr_storage) == 128, "homa_rpc_info.peer size");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_rpc_info, completion_cookie) == 136,
                    "homa_rpc_info.completion_cookie");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_rpc_info, tx_length) == 144, "homa_rpc_info.tx_length");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_rpc_info, tx_sent) == 148, "homa_rpc_info.tx_sent");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_rpc_info, tx_granted) == 152, "homa_rpc_info.tx_granted");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_rpc_info, tx_prio) == 156, "homa_rpc_info.tx_prio");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_rpc_info, rx_length) == 160, "homa_rpc_info.rx_length");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_rpc_info, rx_remaining) == 164,
                    "homa_rpc_info.rx_remaining");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_rpc_info, rx_gaps) == 168, "homa_rpc_info.rx_gaps");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_rpc_info, rx_gap_bytes) == 172,
                    "homa_rpc_info.rx_gap_bytes");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_rpc_info, rx_granted) == 176, "homa_rpc_info.rx_granted");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_rpc_info, flags) == 180, "homa_rpc_info.flags");

UHOMA_HOMA_H_ASSERT(sizeof(struct homa_info) == 136, "homa_info size");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_info, rpc_info) == 0, "homa_info.rpc_info");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_info, rpc_info_length) == 8, "homa_info.rpc_info_length");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_info, bpool_avail_bytes) == 16,
                    "homa_info.bpool_avail_bytes");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_info, port) == 24, "homa_info.port");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_info, num_rpcs) == 28, "homa_info.num_rpcs");
UHOMA_HOMA_H_ASSERT(offsetof(struct homa_info, error_msg) == 32, "homa_info.error_msg");

#undef UHOMA_HOMA_H_ASSERT

#endif /* UHOMA_HOMA_H */
