/* uhoma_c.h: uhoma's C entry points, one per Linux Homa socket call.
 *
 * Design notes
 * ------------
 * Each function takes the same arguments, and uses the same structures
 * (<uhoma/homa.h>), return values and errnos, as the corresponding system call
 * on a Linux Homa socket (spec section 8.3), so that a program written for the
 * kernel module runs on uhoma by renaming calls (or through the LD_PRELOAD
 * shim, which forwards to these). Like the system calls they return -1 and
 * set errno on failure. The comments below are the contract the runtime
 * implements; errnos marked "(spec)" are those spec 8.3 / 2.6 lists, and
 * those marked "(generic)" are what any Linux socket call returns in that
 * case. The descriptors these functions use are the ones uhoma_socket
 * returns; any other descriptor gives EBADF (generic).
 *
 * poll: Linux Homa reports EPOLLIN when a shared RPC is ready or the socket
 * is shut down, and EPOLLOUT when send memory is available. A uhoma
 * descriptor is an eventfd that is readable exactly then, and always
 * writable (sendmsg never waits long for send memory).
 *
 * Declared here, implemented by the runtime (src/api).
 */
#ifndef UHOMA_UHOMA_C_H
#define UHOMA_UHOMA_C_H

#include <sys/socket.h>
#include <sys/types.h>

#include "homa.h"

#ifdef __cplusplus
extern "C" {
#endif

/* socket(AF_INET or AF_INET6, SOCK_DGRAM, IPPROTO_HOMA): creates a Homa
 * socket. SOCK_NONBLOCK and SOCK_CLOEXEC may be or'ed into type. The socket
 * gets an automatic port >= HOMA_MIN_DEFAULT_PORT and is client-only until
 * bind() gives it a server port or SO_HOMA_SERVER is set. Before it can
 * receive anything it needs a receive region (SO_HOMA_RCVBUF).
 * Returns a descriptor, or -1 with errno:
 *   EAFNOSUPPORT     domain is neither AF_INET nor AF_INET6 (generic)
 *   EPROTONOSUPPORT  protocol is not IPPROTO_HOMA, or type is not SOCK_DGRAM
 *                    (generic)
 *   EINVAL           unknown bits in type (generic)
 *   EMFILE, ENFILE, ENOMEM, ENOBUFS  out of descriptors or memory (generic)
 */
int uhoma_socket(int domain, int type, int protocol);

/* bind(): sets the socket's port. Port 0 does nothing (returns 0). A port in
 * 1..32767 binds the socket to it and makes it a server (it receives
 * requests). Only the port of addr is used. Do not bind once the socket has
 * sent or received anything.
 * Returns 0, or -1 with errno:
 *   EINVAL        port >= HOMA_MIN_DEFAULT_PORT (0x8000) (spec)
 *   EINVAL        addrlen too short for the address family (spec)
 *   EADDRINUSE    another socket has that port (spec)
 *   EAFNOSUPPORT  addr's family is not the socket's (spec)
 *   EBADF         fd is not a uhoma socket (generic)
 *   EFAULT        addr not readable (generic)
 */
int uhoma_bind(int fd, const struct sockaddr* addr, socklen_t addrlen);

/* setsockopt() at level IPPROTO_HOMA.
 * SO_HOMA_RCVBUF: optval is a struct homa_rcvbuf_args describing the
 *   receive region, memory of the caller where incoming messages are placed,
 *   in bpages of HOMA_BPAGE_SIZE bytes. It can be set once per socket.
 * SO_HOMA_SERVER: optval is an int; nonzero makes the socket a server (it
 *   receives requests), 0 makes it client-only.
 * Returns 0, or -1 with errno:
 *   EINVAL       SO_HOMA_RCVBUF with optlen != sizeof(struct homa_rcvbuf_args)
 *                (16), a start that is not page aligned, a region smaller
 *                than ncpus * 64 KiB + 2 * HOMA_MAX_MESSAGE_LENGTH bytes or
 *                larger than 4 GiB, or a region already set (spec 7, 8.3)
 *   EFAULT       the SO_HOMA_RCVBUF region is not writable, or optval not
 *                readable (spec)
 *   EINVAL       SO_HOMA_SERVER with optlen != sizeof(int) (generic)
 *   ENOPROTOOPT  level is not IPPROTO_HOMA, or optname is neither of the
 *                above (spec)
 *   EBADF        fd is not a uhoma socket (generic)
 */
int uhoma_setsockopt(int fd, int level, int optname, const void* optval, socklen_t optlen);

/* getsockopt() at level IPPROTO_HOMA.
 * SO_HOMA_RCVBUF: writes a struct homa_rcvbuf_args {start, num_bpages << 16}
 *   (the usable length, whole bpages only; {0, 0} if none is set) and sets
 *   *optlen to 16.
 * SO_HOMA_SERVER: writes an int (1 if the socket is a server, else 0) and
 *   sets *optlen to sizeof(int).
 * Returns 0, or -1 with errno:
 *   EINVAL       *optlen smaller than the option's size (generic)
 *   EFAULT       optval or optlen not writable (spec)
 *   ENOPROTOOPT  level is not IPPROTO_HOMA, or optname is neither of the
 *                above (spec)
 *   EBADF        fd is not a uhoma socket (generic)
 */
int uhoma_getsockopt(int fd, int level, int optname, void* optval, socklen_t* optlen);

/* sendmsg(): sends a request or a response.
 * msg->msg_name is the destination (its family must be the socket's,
 * msg_namelen large enough for it); msg->msg_iov/msg_iovlen is the message;
 * msg->msg_control points to a struct homa_sendmsg_args (man/sendmsg.2:
 * msg_controllen must be 0, since it is not cmsg data).
 *   args.id == 0 sends a request: the new RPC's id is written back to
 *     args.id; args.completion_cookie is returned with the response, and
 *     HOMA_SENDMSG_PRIVATE in args.flags makes the response private (only a
 *     recvmsg naming the id receives it).
 *   args.id != 0 sends the response to the server RPC with that id, from the
 *     peer in msg_name; completion_cookie must be 0 and flags are ignored. An
 *     unknown RPC (e.g. already failed and discarded) returns 0 and sends
 *     nothing.
 * Blocks while send memory (wmem_max, 100 MB) is full, unless flags has
 * MSG_DONTWAIT or the socket is O_NONBLOCK.
 * Returns 0 on success (not a byte count), or -1 with errno:
 *   EINVAL        message length 0 or > HOMA_MAX_MESSAGE_LENGTH, args.flags
 *                 bits outside HOMA_SENDMSG_VALID_FLAGS, args.reserved != 0,
 *                 a nonzero completion_cookie on a response, a response to an
 *                 RPC that is not waiting for one (not IN_SERVICE), or
 *                 msg_namelen too short (spec)
 *   EAFNOSUPPORT  msg_name's family is not the socket's (generic)
 *   EAGAIN        send memory full with MSG_DONTWAIT / O_NONBLOCK (spec)
 *   ENOMEM        out of memory (spec)
 *   EFAULT        msg_control, msg_name or the iovecs not readable, or args
 *                 not writable (spec); msg_control NULL with a nonzero
 *                 msg_controllen (generic: the kernel copies it in first)
 *   ENOBUFS       msg_controllen > INT_MAX (generic)
 *   EMSGSIZE      msg_iovlen > IOV_MAX (generic)
 *   EINVAL        a negative msg_namelen, or an iovec longer than SSIZE_MAX
 *                 (generic)
 *   ESHUTDOWN     the socket was shut down (spec)
 *   (an RPC's own error) a response to a server RPC that failed returns
 *                 that RPC's errno (spec)
 *   EINTR         a signal interrupted the wait for send memory (generic)
 *   EBADF         fd is not a uhoma socket (generic)
 */
ssize_t uhoma_sendmsg(int fd, const struct msghdr* msg, int flags);

/* recvmsg(): receives a request or a response.
 * msg->msg_control points to a struct homa_recvmsg_args and msg_controllen
 * must be sizeof(struct homa_recvmsg_args) (88). msg_iov is not used: the
 * message is in the socket's receive region (SO_HOMA_RCVBUF).
 * First it gives back the args.num_bpages bpages listed in
 * args.bpage_offsets (from earlier messages). Then:
 *   args.id != 0 waits for the response of that private client RPC;
 *   args.id == 0 waits for any shared message (a request, on a server
 *     socket, or the response to a non-private request).
 * On success it returns the message length and sets args.id (odd: a
 * request, even: a response), args.completion_cookie (responses),
 * args.num_bpages and args.bpage_offsets (where the message lies, in order)
 * and msg_name/msg_namelen (the sender). The application must reply to every
 * request it receives and must give back every bpage.
 * When a client RPC failed it returns -1 with that RPC's errno and sets
 * args.id to its id and completion_cookie to its cookie: ETIMEDOUT,
 * ENOTCONN, EHOSTUNREACH, EPROTONOSUPPORT, ENOMEM, EFAULT, or the errno given
 * to HOMAIOCABORT (spec 2.6). When it returns -1 with args.id == 0, nothing
 * was received and errno describes the call itself:
 *   EINVAL     msg_controllen != 88, args.num_bpages > HOMA_MAX_BPAGES,
 *              args.reserved != 0, no receive region set, a bpage offset to
 *              give back whose bpage is already free (spec 7), or
 *              args.id != 0 naming an unknown or non-private RPC (spec)
 *   EAGAIN     nothing ready and MSG_DONTWAIT / O_NONBLOCK (spec)
 *   EINTR      a signal interrupted the wait (spec)
 *   ESHUTDOWN  the socket was shut down (spec)
 *   EFAULT     msg_control not readable or writable, or msg_name not
 *              writable (spec); msg_iov NULL with msg_iovlen > 0 (generic)
 *   EINVAL     msg_control NULL (spec); a negative msg_namelen with a
 *              msg_name, or an iovec longer than SSIZE_MAX (generic: the
 *              kernel checks the iovecs although Homa does not use them)
 *   EMSGSIZE   msg_iovlen > IOV_MAX (generic)
 *   EBADF      fd is not a uhoma socket (generic)
 * When the receive region is full an incoming message waits for space (and
 * is reported as HOMA_RPC_BUF_STALL); recvmsg does not fail with ENOMEM.
 * If giving back bpages fails part way, the entries before the bad one are
 * already given back and args.num_bpages comes back 0.
 */
ssize_t uhoma_recvmsg(int fd, struct msghdr* msg, int flags);

/* ioctl() on a Homa socket.
 * HOMAIOCINFO (arg: struct homa_info*): reports the free bytes of the
 *   receive pool (whole free bpages), the port, the number of live RPCs
 *   and up to rpc_info_length / sizeof(struct homa_rpc_info) records at
 *   rpc_info: client RPCs in id order, then server RPCs. error_msg is
 *   always empty (uhoma keeps no error text; errno says it all), and
 *   HOMA_RPC_RX_COPY is never set (packets are copied as they arrive).
 * HOMAIOCABORT (arg: struct homa_abort_args*): aborts the client RPC with
 *   that id, or every client RPC of the socket when id is 0. With error 0 the
 *   RPC is freed silently; otherwise it completes and recvmsg returns it with
 *   errno = error. The server is not told.
 * HOMAIOCFREEZE (arg unused): Linux freezes its timetrace (a debugging aid);
 *   uhoma does the same for its trace, if any, and returns 0.
 * Returns 0, or -1 with errno:
 *   EINVAL  HOMAIOCABORT with an id that names no client RPC of the socket
 *           (the code; man/homa.7 calls it a no-op), or nonzero _pad1/_pad2
 *           (spec)
 *   EFAULT  arg (or, for HOMAIOCINFO, the rpc_info array) not readable or
 *           writable (generic)
 *   EINVAL  unknown request (what Linux's homa_ioctl returns)
 *   EBADF   fd is not a uhoma socket (generic)
 */
int uhoma_ioctl(int fd, unsigned long request, void* arg);

/* close(): shuts the socket down (see uhoma_shutdown) and releases it and
 * its descriptor. Messages not yet received are discarded; the receive
 * region belongs to the caller and stays mapped.
 * Returns 0, or -1 with errno:
 *   EBADF  fd is not a uhoma socket (generic)
 */
int uhoma_close(int fd);

/* shutdown(): ends every RPC of the socket and wakes every thread waiting in
 * sendmsg or recvmsg, which then fail with ESHUTDOWN, as do later calls;
 * poll reports the socket readable. `how` is ignored. The descriptor stays
 * valid until uhoma_close.
 * Returns 0, or -1 with errno:
 *   EBADF  fd is not a uhoma socket (generic)
 */
int uhoma_shutdown(int fd, int how);

#ifdef __cplusplus
}
#endif

#endif /* UHOMA_UHOMA_C_H */
