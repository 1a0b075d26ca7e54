// The Linux-compatible C API (include/uhoma/uhoma_c.h) over runtime::Runtime.
//
// Design notes
// ------------
// One Runtime per process, created by the first uhoma_socket() with the
// parameters of the environment (UHOMA_CONFIG, UHOMA_<NAME>; api/options.h),
// and never destroyed: a C program has no point where it could be torn down
// safely (threads may still be inside a call while exit() runs), and a
// runtime without sockets costs one sleeping thread. It is dual-stack ([::])
// when the host has IPv6 (UHOMA_IPV6=0 or 1 overrides the probe), so both
// AF_INET and AF_INET6 Homa sockets work; on an IPv4-only runtime,
// socket(AF_INET6, ...) fails with EAFNOSUPPORT, as on a kernel without IPv6.
//
// Descriptors. A Homa socket must be a real descriptor so that poll, select,
// epoll and close work on it unchanged. It is a dup (F_DUPFD_CLOEXEC) of the
// runtime's per-socket eventfd, which is readable exactly while a shared
// message is ready (spec 8.3 poll: EPOLLIN), and, being an eventfd, always
// writable (EPOLLOUT: uhoma never blocks a sender for long; see sendmsg). The
// dup keeps the eventfd open after the runtime closes its own copy, so the
// descriptor stays valid until uhoma_close(); uhoma_shutdown() writes to it so
// a shut-down socket polls readable, as on Linux. A table maps descriptors to
// sockets (a shared_mutex: lookups from many threads, inserts only in
// socket/close). Operations on the descriptor itself use raw syscalls, so
// the LD_PRELOAD shim, which interposes close() and fcntl(), never sees its
// own calls.
//
// O_NONBLOCK. The eventfd's file description is shared with the runtime and
// must stay non-blocking, so uhoma keeps the socket's O_NONBLOCK flag itself:
// SOCK_NONBLOCK at socket(), ioctl(FIONBIO), and (through the shim)
// fcntl(F_SETFL). MSG_DONTWAIT or that flag make sendmsg/recvmsg return
// EAGAIN instead of waiting. Descriptors are always close-on-exec: a Homa
// socket means nothing in another program.
//
// fork(). The child has a copy of the runtime's memory but none of its
// threads, and its mutexes may have been held at the fork, so the child
// abandons it (kept reachable, never used or freed). The child's inherited
// Homa descriptors stay open but every call on them fails with EBADF, except
// close(), which releases them; the child's first new socket creates a fresh
// runtime (with its own range of RPC ids). The parent keeps working
// unchanged. (pthread_atfork holds the table and runtime locks across the
// fork, so no other thread is inside them, and the child re-initializes
// them.)
//
// Copies from and to the caller. The kernel returns EFAULT for a bad
// pointer; a library cannot without risking SIGSEGV. On the rare calls
// (bind, setsockopt, getsockopt, ioctl) uhoma copies through a pipe, so the
// kernel checks the pointer and a bad one gives EFAULT as on Linux. On the
// hot path (sendmsg, recvmsg) only NULL pointers give EFAULT; any other bad
// pointer is the caller's crash.
#include "uhoma/uhoma_c.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "api/c_api_internal.h"
#include "api/observability.h"
#include "trace/timetrace.h"
#include "api/options.h"
#include "runtime/runtime.h"

namespace uhoma::capi {

namespace {

using runtime::Runtime;

struct CSocket {
    Runtime* runtime = nullptr;
    engine::SocketId id = 0;
    int fd = -1;
    int family = AF_INET;
    std::atomic<bool> nonblocking{false};
    std::atomic<bool> shut_down{false};
    std::atomic<bool> forked{false};  // inherited through fork(): unusable

    std::atomic<bool> region_set{false};  // written under `mutex`

    std::mutex mutex;  // guards the fields below
    std::uint64_t region_start = 0;
    std::uint64_t region_bytes = 0;  // whole bpages
    bool is_server = false;
};

struct Table {
    std::shared_mutex mutex;
    std::unordered_map<int, std::shared_ptr<CSocket>> sockets;
    std::atomic<int> count{0};  // sockets.size(), readable without the lock
};

struct Global {
    std::mutex mutex;            // guards creation of the runtime
    Runtime* runtime = nullptr;  // never destroyed (see design notes)
    bool ipv6 = false;
    std::vector<Runtime*> abandoned;  // the parent's runtimes, in a forked child
    bool atfork_registered = false;
    std::shared_ptr<void> control;  // observability: control socket registration
};

// Heap objects that are never destroyed: calls may still run while exit()
// destroys statics.
Table& table() {
    static Table* t = new Table;
    return *t;
}

Global& global() {
    static Global* g = new Global;
    return *g;
}

int fail(int error) {
    errno = error;
    return -1;
}

int sys_close(int fd) { return static_cast<int>(::syscall(SYS_close, fd)); }

int sys_dup_cloexec(int fd) { return static_cast<int>(::syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, 0)); }

int sys_fcntl(int fd, int cmd, long arg) { return static_cast<int>(::syscall(SYS_fcntl, fd, cmd, arg)); }

std::uint16_t byte_swap(std::uint16_t v) {
    return static_cast<std::uint16_t>((v >> 8) | (v << 8));
}

// Copies n (<= PIPE_BUF) bytes from src to dst through a pipe, so that the
// kernel checks both pointers: EFAULT instead of a crash for a bad one.
// Returns 0 or an errno (EFAULT; EMFILE/ENFILE if no pipe can be made).
int checked_copy(void* dst, const void* src, std::size_t n) {
    if (n == 0) return 0;
    if (dst == nullptr || src == nullptr) return EFAULT;
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return errno;
    int error = 0;
    if (::write(p[1], src, n) != static_cast<ssize_t>(n)) {
        error = errno != 0 ? errno : EFAULT;
    } else if (::read(p[0], dst, n) != static_cast<ssize_t>(n)) {
        error = errno != 0 ? errno : EFAULT;
    }
    sys_close(p[0]);
    sys_close(p[1]);
    return error;
}

void before_fork() {
    global().mutex.lock();
    table().mutex.lock();
}

void after_fork_in_parent() {
    table().mutex.unlock();
    global().mutex.unlock();
}

// The child cannot unlock what the parent's thread locked: glibc's rwlock
// checks the writer's thread id, which the child does not share. Its locks
// hold no resources, so the child starts over with fresh, unlocked ones.
void after_fork_in_child() {
    Table& t = table();
    for (auto& [fd, socket] : t.sockets) socket->forked = true;
    Global& g = global();
    if (g.runtime != nullptr) {
        g.abandoned.push_back(g.runtime);
        g.runtime = nullptr;
    }
    new (&t.mutex) std::shared_mutex;
    new (&g.mutex) std::mutex;
}

// UHOMA_IPV6 (0/1) if set, else whether a dual-stack UDP socket can be bound.
bool want_ipv6() {
    if (const char* v = std::getenv("UHOMA_IPV6")) {
        const std::string s(v);
        return !(s == "0" || s == "false" || s == "no" || s == "off");
    }
    const int fd = ::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
    if (fd < 0) return false;
    const int off = 0;
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
    sockaddr_in6 any{};
    any.sin6_family = AF_INET6;
    const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&any), sizeof(any)) == 0;
    ::close(fd);
    return ok;
}

// The process's runtime, created on first use. Errors: EINVAL (a bad
// UHOMA_ parameter), ENOMEM (the runtime could not be created); both are
// explained on stderr, since socket() has no other way to say why.
Expected<Runtime*, int> get_runtime(bool& ipv6) {
    Global& g = global();
    std::lock_guard lock(g.mutex);
    if (g.runtime == nullptr) {
        if (!g.atfork_registered) {
            ::pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
            g.atfork_registered = true;
        }
        auto options = api::runtime_options_from_environment();
        if (!options) {
            std::fprintf(stderr, "uhoma: %s\n", options.error().c_str());
            return Unexpected{EINVAL};
        }
        options->ipv6 = want_ipv6();
        auto rt = Runtime::create(*options);
        if (!rt) {
            std::fprintf(stderr, "uhoma: %s\n", rt.error().c_str());
            return Unexpected{ENOMEM};
        }
        g.runtime = rt->release();
        g.control = api::attach_control(*g.runtime);  // observability
        g.ipv6 = options->ipv6;
    }
    ipv6 = g.ipv6;
    return g.runtime;
}

std::shared_ptr<CSocket> find(int fd) {
    Table& t = table();
    if (t.count.load(std::memory_order_acquire) == 0) return nullptr;
    std::shared_lock lock(t.mutex);
    auto it = t.sockets.find(fd);
    return it == t.sockets.end() ? nullptr : it->second;
}

// The socket of fd, or nullptr with errno = EBADF (not a uhoma socket, or
// one inherited through fork()).
std::shared_ptr<CSocket> usable(int fd) {
    auto s = find(fd);
    if (!s || s->forked) {
        errno = EBADF;
        return nullptr;
    }
    return s;
}

// sockaddr of the socket's family for a peer (IPv4-mapped peers become
// sockaddr_in on an AF_INET socket, as Linux does). Returns its length.
socklen_t to_sockaddr(int family, const engine::Endpoint& peer, sockaddr_storage& out) {
    std::memset(&out, 0, sizeof(out));
    if (family == AF_INET6) {
        sockaddr_in6 a{};
        a.sin6_family = AF_INET6;
        a.sin6_port = byte_swap(peer.port);
        std::memcpy(&a.sin6_addr, peer.address.bytes.data(), 16);
        std::memcpy(&out, &a, sizeof(a));
        return sizeof(a);
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = byte_swap(peer.port);
    std::memcpy(&a.sin_addr, peer.address.bytes.data() + 12, 4);
    std::memcpy(&out, &a, sizeof(a));
    return sizeof(a);
}

engine::Endpoint from_sockaddr(const sockaddr_storage& in) {
    engine::Endpoint e;
    if (in.ss_family == AF_INET6) {
        sockaddr_in6 a;
        std::memcpy(&a, &in, sizeof(a));
        std::memcpy(e.address.bytes.data(), &a.sin6_addr, 16);
        e.port = byte_swap(a.sin6_port);
    } else {
        sockaddr_in a;
        std::memcpy(&a, &in, sizeof(a));
        e.address = engine::Address::ipv4(0, 0, 0, 0);
        std::memcpy(e.address.bytes.data() + 12, &a.sin_addr, 4);
        e.port = byte_swap(a.sin_port);
    }
    return e;
}

// Per-thread gather buffer for multi-iovec messages; grows to the largest
// message sent, once.
thread_local std::vector<std::byte> gather_buffer;

std::uint64_t minimum_region_bytes() {
    long cpus = ::sysconf(_SC_NPROCESSORS_CONF);
    if (cpus < 1) cpus = 1;
    return static_cast<std::uint64_t>(cpus) * HOMA_BPAGE_SIZE + 2ull * HOMA_MAX_MESSAGE_LENGTH;
}

constexpr std::uint64_t max_region_bytes = 1ull << 32;

}  // namespace

bool owns(int fd) { return find(fd) != nullptr; }

int nonblocking(int fd) {
    auto s = find(fd);
    if (!s) return -1;
    return s->nonblocking ? 1 : 0;
}

bool set_nonblocking(int fd, bool on) {
    auto s = find(fd);
    if (!s) return false;
    s->nonblocking = on;
    return true;
}

}  // namespace uhoma::capi

using namespace uhoma;
using namespace uhoma::capi;

extern "C" {

int uhoma_socket(int domain, int type, int protocol) {
    constexpr int type_mask = 0xf;  // the kernel's SOCK_TYPE_MASK
    if ((type & ~type_mask & ~(SOCK_NONBLOCK | SOCK_CLOEXEC)) != 0) return fail(EINVAL);
    if (domain != AF_INET && domain != AF_INET6) return fail(EAFNOSUPPORT);
    if ((type & type_mask) != SOCK_DGRAM || protocol != IPPROTO_HOMA) return fail(EPROTONOSUPPORT);
    bool ipv6 = false;
    auto rt = get_runtime(ipv6);
    if (!rt) return fail(rt.error());
    if (domain == AF_INET6 && !ipv6) return fail(EAFNOSUPPORT);
    Runtime& runtime = **rt;
    auto id = runtime.open_socket();
    if (!id) return fail(id.error());
    auto ready = runtime.ready_fd(*id);
    const int fd = ready ? sys_dup_cloexec(*ready) : -1;
    if (fd < 0) {
        const int error = ready ? errno : ready.error();
        runtime.close_socket(*id);
        return fail(error);
    }
    auto s = std::make_shared<CSocket>();
    s->runtime = &runtime;
    s->id = *id;
    s->fd = fd;
    s->family = domain;
    s->nonblocking = (type & SOCK_NONBLOCK) != 0;
    std::shared_ptr<CSocket> stale;
    {
        Table& t = table();
        std::unique_lock lock(t.mutex);
        auto& slot = t.sockets[fd];
        // A stale entry: its descriptor was closed behind uhoma's back
        // (dup2 over it, close_range, a raw syscall).
        stale = std::move(slot);
        slot = s;
        if (!stale) t.count.fetch_add(1, std::memory_order_release);
    }
    if (stale && !stale->forked) stale->runtime->close_socket(stale->id);
    return fd;
}

int uhoma_bind(int fd, const struct sockaddr* addr, socklen_t addrlen) {
    auto s = usable(fd);
    if (!s) return -1;
    sockaddr_storage a{};
    if (static_cast<int>(addrlen) < 0 || addrlen > sizeof(a)) return fail(EINVAL);
    if (int e = checked_copy(&a, addr, addrlen); e != 0) return fail(e);
    if (a.ss_family != s->family) return fail(EAFNOSUPPORT);
    std::uint16_t port = 0;
    if (s->family == AF_INET6) {
        if (addrlen < sizeof(sockaddr_in6)) return fail(EINVAL);
        sockaddr_in6 in6;
        std::memcpy(&in6, &a, sizeof(in6));
        port = byte_swap(in6.sin6_port);
    } else {
        if (addrlen < sizeof(sockaddr_in)) return fail(EINVAL);
        sockaddr_in in4;
        std::memcpy(&in4, &a, sizeof(in4));
        port = byte_swap(in4.sin_port);
    }
    if (port == 0) return 0;
    if (port >= HOMA_MIN_DEFAULT_PORT) return fail(EINVAL);
    if (s->shut_down) return fail(ESHUTDOWN);
    std::lock_guard lock(s->mutex);
    if (s->runtime->port(s->id) != port) {
        auto r = s->runtime->bind(s->id, port);
        if (!r) return fail(s->shut_down ? ESHUTDOWN : r.error());
    }
    s->is_server = true;
    return 0;
}

int uhoma_setsockopt(int fd, int level, int optname, const void* optval, socklen_t optlen) {
    auto s = usable(fd);
    if (!s) return -1;
    if (level != IPPROTO_HOMA) return fail(ENOPROTOOPT);
    if (optname == SO_HOMA_RCVBUF) {
        homa_rcvbuf_args args;
        if (optlen != sizeof(args)) return fail(EINVAL);
        if (int e = checked_copy(&args, optval, sizeof(args)); e != 0) return fail(e);
        // As Linux: write the arguments to the start of the region, a cheap
        // check that it is writable.
        void* start = reinterpret_cast<void*>(static_cast<std::uintptr_t>(args.start));
        if (int e = checked_copy(start, &args, sizeof(args)); e != 0) return fail(e);
        const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
        if (args.start % page != 0) return fail(EINVAL);
        if (args.length < minimum_region_bytes() || args.length > max_region_bytes) {
            return fail(EINVAL);
        }
        std::lock_guard lock(s->mutex);
        if (s->region_set) return fail(EINVAL);
        auto r = s->runtime->set_receive_buffer(
            s->id, std::span<std::byte>(static_cast<std::byte*>(start),
                                        static_cast<std::size_t>(args.length)));
        if (!r) return fail(r.error());
        s->region_start = args.start;
        s->region_bytes = args.length >> HOMA_BPAGE_SHIFT << HOMA_BPAGE_SHIFT;
        s->region_set.store(true, std::memory_order_release);
        return 0;
    }
    if (optname == SO_HOMA_SERVER) {
        int value = 0;
        if (optlen != sizeof(value)) return fail(EINVAL);
        if (int e = checked_copy(&value, optval, sizeof(value)); e != 0) return fail(e);
        std::lock_guard lock(s->mutex);
        auto r = s->runtime->set_server(s->id, value != 0);
        if (!r && !s->shut_down) return fail(r.error());
        s->is_server = value != 0;
        return 0;
    }
    return fail(ENOPROTOOPT);
}

int uhoma_getsockopt(int fd, int level, int optname, void* optval, socklen_t* optlen) {
    auto s = usable(fd);
    if (!s) return -1;
    int len = 0;
    if (int e = checked_copy(&len, optlen, sizeof(len)); e != 0) return fail(e);
    if (level != IPPROTO_HOMA) return fail(ENOPROTOOPT);
    homa_rcvbuf_args rcvbuf{};
    int is_server = 0;
    const void* result = nullptr;
    // Linux compares the int length with a size_t: a negative one passes.
    if (optname == SO_HOMA_RCVBUF) {
        if (static_cast<std::size_t>(static_cast<long>(len)) < sizeof(rcvbuf)) return fail(EINVAL);
        std::lock_guard lock(s->mutex);
        rcvbuf.start = s->region_start;
        rcvbuf.length = s->region_bytes;
        len = sizeof(rcvbuf);
        result = &rcvbuf;
    } else if (optname == SO_HOMA_SERVER) {
        if (static_cast<std::size_t>(static_cast<long>(len)) < sizeof(is_server)) return fail(EINVAL);
        std::lock_guard lock(s->mutex);
        is_server = s->is_server ? 1 : 0;
        len = sizeof(is_server);
        result = &is_server;
    } else {
        return fail(ENOPROTOOPT);
    }
    if (int e = checked_copy(optlen, &len, sizeof(len)); e != 0) return fail(e);
    if (int e = checked_copy(optval, result, static_cast<std::size_t>(len)); e != 0) return fail(e);
    return 0;
}

ssize_t uhoma_sendmsg(int fd, const struct msghdr* msg, int flags) {
    auto s = usable(fd);
    if (!s) return -1;
    if (msg == nullptr) return fail(EFAULT);
    // What the kernel checks before Homa sees the call.
    if (msg->msg_iovlen > IOV_MAX) return fail(EMSGSIZE);
    if (msg->msg_iovlen > 0 && msg->msg_iov == nullptr) return fail(EFAULT);
    std::size_t length = 0;
    for (std::size_t i = 0; i < msg->msg_iovlen; ++i) {
        const iovec& v = msg->msg_iov[i];
        if (v.iov_len > static_cast<std::size_t>(SSIZE_MAX)) return fail(EINVAL);
        if (v.iov_len > 0 && v.iov_base == nullptr) return fail(EFAULT);
        length += std::min<std::size_t>(v.iov_len, static_cast<std::size_t>(INT_MAX));
        if (length > static_cast<std::size_t>(INT_MAX)) length = INT_MAX;
    }
    socklen_t namelen = msg->msg_name == nullptr ? 0 : msg->msg_namelen;
    if (static_cast<int>(namelen) < 0) return fail(EINVAL);
    if (namelen > sizeof(sockaddr_storage)) namelen = sizeof(sockaddr_storage);
    // Control data (msg_controllen > 0) is copied into the kernel before
    // Homa sees it: over INT_MAX bytes is ENOBUFS, an unreadable buffer EFAULT.
    if (msg->msg_controllen > static_cast<std::size_t>(INT_MAX)) return fail(ENOBUFS);
    if (msg->msg_controllen != 0 && msg->msg_control == nullptr) return fail(EFAULT);
    // Homa's own checks, in Linux's order.
    if (namelen == 0) return fail(EINVAL);
    if (msg->msg_controllen != 0) return fail(EINVAL);  // not user memory: cmsg data
    if (msg->msg_control == nullptr) return fail(EFAULT);
    homa_sendmsg_args args;
    std::memcpy(&args, msg->msg_control, sizeof(args));
    if ((args.flags & ~static_cast<__u32>(HOMA_SENDMSG_VALID_FLAGS)) != 0 || args.reserved != 0) {
        return fail(EINVAL);
    }
    const bool dont_wait = (flags & MSG_DONTWAIT) != 0 || s->nonblocking;
    sockaddr_storage name{};
    std::memcpy(&name, msg->msg_name, namelen);
    if (name.ss_family != s->family) return fail(EAFNOSUPPORT);
    if (namelen < sizeof(sockaddr_in) ||
        (name.ss_family == AF_INET6 && namelen < sizeof(sockaddr_in6))) {
        return fail(EINVAL);
    }
    const engine::Endpoint peer = from_sockaddr(name);
    if (args.id != 0 && args.completion_cookie != 0) return fail(EINVAL);
    if (s->shut_down) {
        // A response finds no RPC (all ended): a silent no-op, as on Linux.
        return args.id != 0 ? 0 : fail(ESHUTDOWN);
    }
    if (length == 0 || length > HOMA_MAX_MESSAGE_LENGTH) return fail(EINVAL);

    std::span<const std::byte> message;
    if (msg->msg_iovlen == 1) {
        message = std::span(static_cast<const std::byte*>(msg->msg_iov[0].iov_base), length);
    } else {
        gather_buffer.resize(length);
        std::size_t at = 0;
        for (std::size_t i = 0; i < msg->msg_iovlen; ++i) {
            const iovec& v = msg->msg_iov[i];
            if (v.iov_len == 0) continue;
            std::memcpy(gather_buffer.data() + at, v.iov_base, v.iov_len);
            at += v.iov_len;
        }
        message = std::span<const std::byte>(gather_buffer.data(), length);
    }

    // The engine refuses (EAGAIN) while send memory is above wmem_max; Linux
    // blocks the sender until the reaper frees some. The runtime has no such
    // wait yet, so a blocking sender retries.
    for (;;) {
        int error = 0;
        if (args.id == 0) {
            auto id = s->runtime->send_request(s->id, peer, message, args.completion_cookie,
                                               (args.flags & HOMA_SENDMSG_PRIVATE) != 0);
            if (id) {
                args.id = *id;
                std::memcpy(msg->msg_control, &args, sizeof(args));
                return 0;
            }
            error = id.error();
        } else {
            auto r = s->runtime->send_reply(s->id, peer, args.id, message);
            if (r) return 0;
            error = r.error();
        }
        if (s->shut_down) return args.id != 0 ? 0 : fail(ESHUTDOWN);
        if (error != EAGAIN || dont_wait) return fail(error);
        // Send memory frees as RPCs end; poll for it. nanosleep reports a
        // signal (EINTR), as Linux's blocked sendmsg does.
        const timespec pause{0, 20'000};
        if (::nanosleep(&pause, nullptr) != 0 && errno == EINTR) return fail(EINTR);
    }
}

ssize_t uhoma_recvmsg(int fd, struct msghdr* msg, int flags) {
    auto s = usable(fd);
    if (!s) return -1;
    if (msg == nullptr) return fail(EFAULT);
    // What the kernel checks before Homa sees the call (it imports the
    // iovecs, which Homa then ignores).
    if (msg->msg_name != nullptr && static_cast<int>(msg->msg_namelen) < 0) return fail(EINVAL);
    if (msg->msg_iovlen > IOV_MAX) return fail(EMSGSIZE);
    if (msg->msg_iovlen > 0 && msg->msg_iov == nullptr) return fail(EFAULT);
    for (std::size_t i = 0; i < msg->msg_iovlen; ++i) {
        if (msg->msg_iov[i].iov_len > static_cast<std::size_t>(SSIZE_MAX)) return fail(EINVAL);
    }
    // Homa's own checks, in Linux's order.
    if (msg->msg_control == nullptr) return fail(EINVAL);
    if (msg->msg_controllen != sizeof(homa_recvmsg_args)) return fail(EINVAL);
    homa_recvmsg_args args;
    std::memcpy(&args, msg->msg_control, sizeof(args));
    args.completion_cookie = 0;
    // Linux copies the arguments back on every path once it has read them.
    auto done = [&](int error) -> ssize_t {
        std::memcpy(msg->msg_control, &args, sizeof(args));
        return fail(error);
    };
    if (args.num_bpages > HOMA_MAX_BPAGES || args.reserved != 0) return done(EINVAL);
    if (s->shut_down) {
        args.num_bpages = 0;
        return done(ESHUTDOWN);
    }
    if (!s->region_set.load(std::memory_order_acquire)) return done(EINVAL);
    if (args.num_bpages > 0) {
        auto r = s->runtime->release_bpages(
            s->id, std::span<const std::uint32_t>(args.bpage_offsets, args.num_bpages));
        args.num_bpages = 0;
        if (!r) return done(s->shut_down ? ESHUTDOWN : r.error());
    }
    const bool dont_wait = (flags & MSG_DONTWAIT) != 0 || s->nonblocking;
    auto got = s->runtime->receive(
        s->id, args.id,
        dont_wait ? std::optional<engine::Duration>(engine::Duration::zero()) : std::nullopt,
        /*interruptible=*/true);  // a signal ends the wait with EINTR, as on Linux
    if (!got) {
        int error = got.error();
        if (s->shut_down && error == EINVAL) error = ESHUTDOWN;
        // Linux keeps the id when it names no private RPC (EINVAL), and
        // clears it when waiting for it failed.
        if (error != EINVAL) args.id = 0;
        return done(error);
    }
    const engine::ReceivedMessage& m = *got;
    args.id = m.id;
    args.completion_cookie = m.completion_cookie;
    if (m.error == 0) {  // as Linux: a failed RPC leaves the offsets as they were
        args.num_bpages = m.num_bpages;
        std::memset(args.bpage_offsets, 0, sizeof(args.bpage_offsets));
        std::copy_n(m.bpage_offsets.begin(),
                    std::min<std::size_t>(m.num_bpages, HOMA_MAX_BPAGES), args.bpage_offsets);
    }
    std::memcpy(msg->msg_control, &args, sizeof(args));
    if (m.error != 0) return fail(m.error);  // the kernel copies no address on errors
    if (msg->msg_name != nullptr) {
        sockaddr_storage name;
        const socklen_t n = to_sockaddr(s->family, m.peer, name);
        std::memcpy(msg->msg_name, &name, std::min(n, msg->msg_namelen));
        msg->msg_namelen = n;
    }
    msg->msg_flags = 0;
    // The kernel reports the control bytes it produced (none): callers reset
    // msg_controllen before each recvmsg, as Linux Homa's own code does.
    msg->msg_controllen = 0;
    return static_cast<ssize_t>(m.length);
}

int uhoma_ioctl(int fd, unsigned long request, void* arg) {
    auto s = usable(fd);
    if (!s) return -1;
    switch (request) {
    case HOMAIOCABORT: {
        homa_abort_args args;
        if (int e = checked_copy(&args, arg, sizeof(args)); e != 0) return fail(e);
        if (args._pad1 != 0 || args._pad2[0] != 0 || args._pad2[1] != 0) return fail(EINVAL);
        if (s->shut_down) return args.id == 0 ? 0 : fail(EINVAL);
        auto r = s->runtime->abort(s->id, args.id, static_cast<int>(args.error));
        if (!r) return fail(r.error());
        return 0;
    }
    case HOMAIOCFREEZE:
        trace::freeze();  // as Linux: keep the timetrace's recent events for a dump
        return 0;
    case HOMAIOCINFO: {
        homa_info info;
        if (int e = checked_copy(&info, arg, sizeof(info)); e != 0) return fail(e);
        const std::size_t capacity = info.rpc_info_length / sizeof(homa_rpc_info);
        if (capacity > 0 && info.rpc_info == 0) return fail(EFAULT);
        auto socket_info = s->runtime->socket_info(s->id, capacity);
        if (!socket_info) return fail(s->shut_down ? ESHUTDOWN : socket_info.error());
        auto* records = reinterpret_cast<homa_rpc_info*>(static_cast<std::uintptr_t>(info.rpc_info));
        for (std::size_t i = 0; i < socket_info->rpcs.size(); ++i) {
            const engine::RpcInfo& r = socket_info->rpcs[i];
            homa_rpc_info out;
            std::memset(&out, 0, sizeof(out));
            out.id = r.id;
            sockaddr_storage peer{};
            to_sockaddr(s->family, r.peer, peer);
            std::memcpy(&out.peer, &peer, sizeof(out.peer));
            out.completion_cookie = r.completion_cookie;
            out.tx_length = r.tx_length;
            out.tx_sent = r.tx_sent;
            out.tx_granted = r.tx_granted;
            out.tx_prio = r.tx_prio;
            out.rx_length = r.rx_length;
            out.rx_remaining = r.rx_remaining;
            out.rx_gaps = r.rx_gaps;
            out.rx_gap_bytes = r.rx_gap_bytes;
            out.rx_granted = r.rx_granted;
            // Packets are copied as they arrive, so RX_COPY is never set.
            out.flags = static_cast<__u16>((r.buf_stall ? HOMA_RPC_BUF_STALL : 0) |
                                           (r.private_rpc ? HOMA_RPC_PRIVATE : 0) |
                                           (r.rx_ready ? HOMA_RPC_RX_READY : 0));
            if (int e = checked_copy(records + i, &out, sizeof(out)); e != 0) return fail(e);
        }
        info.bpool_avail_bytes = socket_info->bpool_avail_bytes;
        info.port = socket_info->port;
        info.num_rpcs = socket_info->num_rpcs;
        // uhoma keeps no per-socket error text (errno says it all): empty.
        std::memset(info.error_msg, 0, sizeof(info.error_msg));
        if (int e = checked_copy(arg, &info, sizeof(info)); e != 0) return fail(e);
        return 0;
    }
    // What the VFS does for every descriptor before a socket sees the call.
    case FIONBIO: {
        int on = 0;
        if (int e = checked_copy(&on, arg, sizeof(on)); e != 0) return fail(e);
        s->nonblocking = on != 0;
        return 0;
    }
    case FIOCLEX:
        return sys_fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 ? 0 : -1;
    case FIONCLEX:
        return sys_fcntl(fd, F_SETFD, 0) == 0 ? 0 : -1;
    default:
        return fail(EINVAL);  // homa_ioctl's answer to any other request
    }
}

int uhoma_close(int fd) {
    std::shared_ptr<CSocket> s;
    {
        Table& t = table();
        std::unique_lock lock(t.mutex);
        auto it = t.sockets.find(fd);
        if (it == t.sockets.end()) return fail(EBADF);
        s = std::move(it->second);
        t.sockets.erase(it);
        t.count.fetch_sub(1, std::memory_order_release);
    }
    if (!s->forked) {
        s->shut_down = true;
        s->runtime->close_socket(s->id);
    }
    sys_close(fd);
    return 0;
}

int uhoma_shutdown(int fd, int how) {
    (void)how;  // Homa shuts everything down
    auto s = usable(fd);
    if (!s) return -1;
    if (!s->shut_down.exchange(true)) {
        s->runtime->close_socket(s->id);
        // The runtime no longer touches its eventfd; make it readable for
        // good so poll reports the shut-down socket (spec 8.3).
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(fd, &one, sizeof(one));
    }
    return 0;
}

}  // extern "C"
