// libuhoma_preload.so: runs an unmodified Linux Homa program on uhoma.
//
//   LD_PRELOAD=/path/to/libuhoma_preload.so ./homa_program
//
// Design notes
// ------------
// The shim defines the socket calls a Homa program makes (socket, bind,
// setsockopt, getsockopt, sendmsg, recvmsg, ioctl, shutdown, close) and
// fcntl. socket(AF_INET or AF_INET6, SOCK_DGRAM[|flags], IPPROTO_HOMA) goes
// to uhoma_socket(); every other call goes to uhoma when its descriptor is a
// uhoma socket, else to the next definition (libc's, or a sanitizer's
// interceptor), found with dlsym(RTLD_NEXT). poll, select and epoll need no
// shim: a uhoma socket is a real eventfd that is readable when a message is
// ready (c_api.cc).
//
// No recursion: the runtime's own sockets are UDP (protocol 0 or
// IPPROTO_UDP; raw sockets are SOCK_RAW), so they never look like Homa, and
// its descriptors are not in the socket table, so their calls pass through;
// the C API works on its own descriptors with raw syscalls. While the
// process has no uhoma socket, the check on each call is one atomic load.
//
// fcntl: uhoma keeps each socket's O_NONBLOCK itself (the eventfd under it
// is shared with the runtime and must stay non-blocking), so F_GETFL and
// F_SETFL on a uhoma socket read and set that flag; other flags and commands
// reach the descriptor. fcntl64 is the same call under the name glibc uses
// for programs built with _FILE_OFFSET_BITS=64.
//
// fork and exec: see c_api.cc (the child's inherited Homa descriptors give
// EBADF and a new socket starts a fresh runtime; descriptors are
// close-on-exec).
//
// Sanitizer builds: this library then depends on libasan, which must come
// first in the process's library list. A program built with
// -fsanitize=address has it first already, provided libasan is also named
// first in LD_PRELOAD:
//   LD_PRELOAD="$(gcc -print-file-name=libasan.so) libuhoma_preload.so"
// (or ASAN_OPTIONS=verify_asan_link_order=0). Release builds have no such
// constraint.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "api/c_api_internal.h"
#include "uhoma/uhoma_c.h"

namespace {

// The next definition of `name` after this library (libc, or an
// interceptor in front of it). Aborts if there is none: nothing sensible can
// be done then.
template <typename F>
F next_definition(const char* name) {
    void* p = ::dlsym(RTLD_NEXT, name);
    if (p == nullptr) {
        std::fprintf(stderr, "libuhoma_preload: no definition of %s after the shim\n", name);
        std::abort();
    }
    return reinterpret_cast<F>(p);
}

using FcntlFn = int (*)(int, int, ...);

bool is_homa_socket_call(int domain, int type, int protocol) {
    return protocol == IPPROTO_HOMA && (domain == AF_INET || domain == AF_INET6) &&
           (type & 0xf) == SOCK_DGRAM;
}

int homa_fcntl(FcntlFn real, int fd, int cmd, void* arg) {
    if (cmd == F_GETFL || cmd == F_SETFL) {
        const int nonblocking = uhoma::capi::nonblocking(fd);
        if (nonblocking >= 0) {
            if (cmd == F_GETFL) {
                const int flags = real(fd, F_GETFL);
                if (flags < 0) return flags;
                return (flags & ~O_NONBLOCK) | (nonblocking != 0 ? O_NONBLOCK : 0);
            }
            const int flags = static_cast<int>(reinterpret_cast<std::intptr_t>(arg));
            const int r = real(fd, F_SETFL, flags | O_NONBLOCK);
            if (r == 0) uhoma::capi::set_nonblocking(fd, (flags & O_NONBLOCK) != 0);
            return r;
        }
    }
    return real(fd, cmd, arg);
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int socket(int domain, int type, int protocol) noexcept {
    static const auto real = next_definition<int (*)(int, int, int)>("socket");
    if (is_homa_socket_call(domain, type, protocol)) return uhoma_socket(domain, type, protocol);
    return real(domain, type, protocol);
}

__attribute__((visibility("default"))) int bind(int fd, const struct sockaddr* addr,
                                                socklen_t len) noexcept {
    static const auto real = next_definition<int (*)(int, const sockaddr*, socklen_t)>("bind");
    if (uhoma::capi::owns(fd)) return uhoma_bind(fd, addr, len);
    return real(fd, addr, len);
}

__attribute__((visibility("default"))) int setsockopt(int fd, int level, int optname,
                                                      const void* optval,
                                                      socklen_t optlen) noexcept {
    static const auto real =
        next_definition<int (*)(int, int, int, const void*, socklen_t)>("setsockopt");
    if (uhoma::capi::owns(fd)) return uhoma_setsockopt(fd, level, optname, optval, optlen);
    return real(fd, level, optname, optval, optlen);
}

__attribute__((visibility("default"))) int getsockopt(int fd, int level, int optname,
                                                      void* __restrict optval,
                                                      socklen_t* __restrict optlen) noexcept {
    static const auto real =
        next_definition<int (*)(int, int, int, void*, socklen_t*)>("getsockopt");
    if (uhoma::capi::owns(fd)) return uhoma_getsockopt(fd, level, optname, optval, optlen);
    return real(fd, level, optname, optval, optlen);
}

__attribute__((visibility("default"))) ssize_t sendmsg(int fd, const struct msghdr* msg,
                                                       int flags) {
    static const auto real = next_definition<ssize_t (*)(int, const msghdr*, int)>("sendmsg");
    if (uhoma::capi::owns(fd)) return uhoma_sendmsg(fd, msg, flags);
    return real(fd, msg, flags);
}

__attribute__((visibility("default"))) ssize_t recvmsg(int fd, struct msghdr* msg, int flags) {
    static const auto real = next_definition<ssize_t (*)(int, msghdr*, int)>("recvmsg");
    if (uhoma::capi::owns(fd)) return uhoma_recvmsg(fd, msg, flags);
    return real(fd, msg, flags);
}

__attribute__((visibility("default"))) int ioctl(int fd, unsigned long request, ...) noexcept {
    static const auto real = next_definition<int (*)(int, unsigned long, ...)>("ioctl");
    va_list ap;
    va_start(ap, request);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    if (uhoma::capi::owns(fd)) return uhoma_ioctl(fd, request, arg);
    return real(fd, request, arg);
}

__attribute__((visibility("default"))) int shutdown(int fd, int how) noexcept {
    static const auto real = next_definition<int (*)(int, int)>("shutdown");
    if (uhoma::capi::owns(fd)) return uhoma_shutdown(fd, how);
    return real(fd, how);
}

__attribute__((visibility("default"))) int close(int fd) {
    static const auto real = next_definition<int (*)(int)>("close");
    if (uhoma::capi::owns(fd)) return uhoma_close(fd);
    return real(fd);
}

__attribute__((visibility("default"))) int fcntl(int fd, int cmd, ...) {
    static const auto real = next_definition<FcntlFn>("fcntl");
    va_list ap;
    va_start(ap, cmd);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    return homa_fcntl(real, fd, cmd, arg);
}

__attribute__((visibility("default"))) int fcntl64(int fd, int cmd, ...) {
    static const auto real = next_definition<FcntlFn>("fcntl64");
    va_list ap;
    va_start(ap, cmd);
    void* arg = va_arg(ap, void*);
    va_end(ap);
    return homa_fcntl(real, fd, cmd, arg);
}

}  // extern "C"
