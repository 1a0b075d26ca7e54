// Helpers for the C API tests: sockets with receive regions, requests and
// receives through the real homa_*_args structures, loopback addresses.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "uhoma/uhoma_c.h"

namespace uhoma::capi_test {

// Server ports for this test process: CTest runs each test in its own
// process, so ports derived from the pid rarely collide.
inline std::uint16_t test_port(int offset = 0) {
    return static_cast<std::uint16_t>(1000 + (::getpid() * 7 + offset) % 30000);
}

// Linux Homa's minimum receive region: ncpus * 64 KiB + 2 MB (we use more).
inline std::size_t region_bytes() {
    const long cpus = ::sysconf(_SC_NPROCESSORS_CONF);
    return static_cast<std::size_t>(cpus + 64) * HOMA_BPAGE_SIZE + 2 * HOMA_MAX_MESSAGE_LENGTH;
}

struct Region {
    explicit Region(std::size_t n = region_bytes(), int prot = PROT_READ | PROT_WRITE) : bytes(n) {
        void* p = ::mmap(nullptr, n, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        base = p == MAP_FAILED ? nullptr : static_cast<char*>(p);
    }
    ~Region() {
        if (base != nullptr) ::munmap(base, bytes);
    }
    Region(const Region&) = delete;
    Region& operator=(const Region&) = delete;
    char* base = nullptr;
    std::size_t bytes = 0;
};

inline sockaddr_in loopback4(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

inline sockaddr_in6 loopback6(std::uint16_t port) {
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_port = htons(port);
    a.sin6_addr = in6addr_loopback;
    return a;
}

inline int set_region(int fd, const Region& region) {
    homa_rcvbuf_args args{reinterpret_cast<std::uintptr_t>(region.base), region.bytes};
    return uhoma_setsockopt(fd, IPPROTO_HOMA, SO_HOMA_RCVBUF, &args, sizeof(args));
}

inline int bind_port(int fd, std::uint16_t port) {
    const sockaddr_in a = loopback4(port);
    return uhoma_bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a));
}

// A Homa socket with its own receive region; closed on destruction. With a
// nonzero `server_port` it binds the first free port from there (other test
// processes may hold some), which is then `port`.
struct TestSocket {
    explicit TestSocket(std::uint16_t server_port = 0, int family = AF_INET, int type_flags = 0)
        : fd(uhoma_socket(family, SOCK_DGRAM | type_flags, IPPROTO_HOMA)) {
        if (fd < 0) return;
        if (set_region(fd, region) != 0) ADD_FAILURE() << "SO_HOMA_RCVBUF: " << errno;
        for (int attempt = 0; server_port != 0 && attempt < 200; ++attempt) {
            const auto candidate = static_cast<std::uint16_t>(1 + (server_port - 1 + attempt) % 32767);
            int r = 0;
            if (family == AF_INET6) {
                const sockaddr_in6 a = loopback6(candidate);
                r = uhoma_bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a));
            } else {
                r = bind_port(fd, candidate);
            }
            if (r == 0) {
                port = candidate;
                break;
            }
            if (errno != EADDRINUSE) {
                ADD_FAILURE() << "bind " << candidate << ": errno " << errno;
                break;
            }
        }
        if (server_port != 0 && port == 0) ADD_FAILURE() << "no free server port";
    }
    ~TestSocket() {
        if (fd >= 0) uhoma_close(fd);
    }
    TestSocket(const TestSocket&) = delete;
    TestSocket& operator=(const TestSocket&) = delete;

    Region region;
    int fd = -1;
    std::uint16_t port = 0;  // the server port, if bound
};

// A kernel UDP socket on 127.0.0.1 that never reads: requests sent to its
// port stay unanswered, and no other test's server can receive them.
struct BlackHole {
    BlackHole() : fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
        sockaddr_in a = loopback4(0);
        socklen_t len = sizeof(a);
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
            ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
            ADD_FAILURE() << "black hole: errno " << errno;
            return;
        }
        port = ntohs(a.sin_port);
    }
    ~BlackHole() {
        if (fd >= 0) ::close(fd);
    }
    BlackHole(const BlackHole&) = delete;
    BlackHole& operator=(const BlackHole&) = delete;
    int fd = -1;
    std::uint16_t port = 0;
};

inline std::vector<unsigned char> pattern(std::size_t n, unsigned seed) {
    std::vector<unsigned char> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<unsigned char>((i * 31 + seed * 17 + 5) & 0xff);
    return v;
}

// sendmsg with one iovec. Returns sendmsg's result; args.id is the new id.
inline ssize_t send_to(int fd, const void* name, socklen_t namelen, const void* data,
                       std::size_t length, homa_sendmsg_args& args, int flags = 0) {
    iovec iov{const_cast<void*>(data), length};
    msghdr hdr{};
    hdr.msg_name = const_cast<void*>(name);
    hdr.msg_namelen = namelen;
    hdr.msg_iov = &iov;
    hdr.msg_iovlen = 1;
    hdr.msg_control = &args;
    hdr.msg_controllen = 0;
    return uhoma_sendmsg(fd, &hdr, flags);
}

// Sends a request to 127.0.0.1:port; returns its id (0 on failure).
inline std::uint64_t send_request(int fd, std::uint16_t port, const std::vector<unsigned char>& data,
                                  std::uint64_t cookie = 0, std::uint32_t flags = 0) {
    const sockaddr_in to = loopback4(port);
    homa_sendmsg_args args{0, cookie, flags, 0};
    if (send_to(fd, &to, sizeof(to), data.data(), data.size(), args) != 0) return 0;
    return args.id;
}

// One recvmsg: what it returned, its errno, the arguments and the sender.
struct Received {
    ssize_t result = -1;
    int error = 0;
    homa_recvmsg_args args{};
    sockaddr_storage from{};
    socklen_t from_len = 0;
    socklen_t controllen_after = 0;
};

inline Received receive(int fd, std::uint64_t id, int flags = 0,
                        const std::vector<std::uint32_t>& give_back = {}) {
    Received r;
    r.args.id = id;
    r.args.num_bpages = static_cast<std::uint32_t>(give_back.size());
    for (std::size_t i = 0; i < give_back.size() && i < HOMA_MAX_BPAGES; ++i)
        r.args.bpage_offsets[i] = give_back[i];
    msghdr hdr{};
    hdr.msg_name = &r.from;
    hdr.msg_namelen = sizeof(r.from);
    hdr.msg_control = &r.args;
    hdr.msg_controllen = sizeof(r.args);
    errno = 0;
    r.result = uhoma_recvmsg(fd, &hdr, flags);
    r.error = r.result < 0 ? errno : 0;
    r.from_len = hdr.msg_namelen;
    r.controllen_after = static_cast<socklen_t>(hdr.msg_controllen);
    return r;
}

inline std::vector<std::uint32_t> bpages_of(const Received& r) {
    return std::vector<std::uint32_t>(r.args.bpage_offsets, r.args.bpage_offsets + r.args.num_bpages);
}

// The message bytes of a successful receive, read from the region.
inline std::vector<unsigned char> contents(const Region& region, const Received& r) {
    std::vector<unsigned char> out(static_cast<std::size_t>(r.result));
    for (std::size_t x = 0; x < out.size(); ++x) {
        out[x] = static_cast<unsigned char>(
            region.base[r.args.bpage_offsets[x >> HOMA_BPAGE_SHIFT] + (x & (HOMA_BPAGE_SIZE - 1))]);
    }
    return out;
}

// Replies to a received request with `data`. Returns sendmsg's result.
inline ssize_t reply(int fd, const Received& request, const std::vector<unsigned char>& data) {
    homa_sendmsg_args args{request.args.id, 0, 0, 0};
    return send_to(fd, &request.from, request.from_len, data.data(), data.size(), args);
}

}  // namespace uhoma::capi_test
