// The errno rules of the C API (src/api/c_api.cc), one test per rule, as
// listed in include/uhoma/uhoma_c.h and spec 8.3.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include <climits>
#include <thread>

#include "capi_helpers.h"

namespace uhoma::capi_test {
namespace {

// Expects `call` to return -1 with errno `error`.
#define EXPECT_ERRNO(call, error)                          \
    do {                                                   \
        errno = 0;                                         \
        const auto result_ = (call);                       \
        EXPECT_EQ(result_, -1) << #call;                   \
        EXPECT_EQ(errno, error) << #call << ": " << errno; \
    } while (0)

// ---------------------------------------------------------------------------
// socket

TEST(CApiErrno, uhoma_socket__unknown_family_is_EAFNOSUPPORT) {
    EXPECT_ERRNO(uhoma_socket(AF_UNIX, SOCK_DGRAM, IPPROTO_HOMA), EAFNOSUPPORT);
    EXPECT_ERRNO(uhoma_socket(AF_PACKET, SOCK_DGRAM, IPPROTO_HOMA), EAFNOSUPPORT);
}

TEST(CApiErrno, uhoma_socket__other_protocol_or_type_is_EPROTONOSUPPORT) {
    EXPECT_ERRNO(uhoma_socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP), EPROTONOSUPPORT);
    EXPECT_ERRNO(uhoma_socket(AF_INET, SOCK_STREAM, IPPROTO_HOMA), EPROTONOSUPPORT);
}

TEST(CApiErrno, uhoma_socket__unknown_type_flags_are_EINVAL) {
    EXPECT_ERRNO(uhoma_socket(AF_INET, SOCK_DGRAM | 0x100, IPPROTO_HOMA), EINVAL);
}

// ---------------------------------------------------------------------------
// bind

TEST(CApiErrno, uhoma_bind__port_0_does_nothing) {
    TestSocket s;
    EXPECT_EQ(bind_port(s.fd, 0), 0);
    int server = -1;
    socklen_t len = sizeof(server);
    ASSERT_EQ(uhoma_getsockopt(s.fd, IPPROTO_HOMA, SO_HOMA_SERVER, &server, &len), 0);
    EXPECT_EQ(server, 0) << "still a client";
}

TEST(CApiErrno, uhoma_bind__server_port_makes_a_server) {
    TestSocket s(test_port(20));
    ASSERT_NE(s.port, 0);
    int server = 0;
    socklen_t len = sizeof(server);
    ASSERT_EQ(uhoma_getsockopt(s.fd, IPPROTO_HOMA, SO_HOMA_SERVER, &server, &len), 0);
    EXPECT_EQ(server, 1);
    EXPECT_EQ(len, sizeof(int));
    EXPECT_EQ(bind_port(s.fd, s.port), 0) << "binding its own port again";
}

TEST(CApiErrno, uhoma_bind__port_from_0x8000_is_EINVAL) {
    TestSocket s;
    EXPECT_ERRNO(bind_port(s.fd, HOMA_MIN_DEFAULT_PORT), EINVAL);
    EXPECT_ERRNO(bind_port(s.fd, 65535), EINVAL);
}

TEST(CApiErrno, uhoma_bind__short_address_is_EINVAL) {
    TestSocket s;
    const sockaddr_in a = loopback4(test_port(21));
    EXPECT_ERRNO(uhoma_bind(s.fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a) - 1), EINVAL);
    EXPECT_ERRNO(uhoma_bind(s.fd, reinterpret_cast<const sockaddr*>(&a), 1000), EINVAL);
}

TEST(CApiErrno, uhoma_bind__other_family_is_EAFNOSUPPORT) {
    TestSocket s;
    const sockaddr_in6 a = loopback6(test_port(22));
    EXPECT_ERRNO(uhoma_bind(s.fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)), EAFNOSUPPORT);
}

TEST(CApiErrno, uhoma_bind__taken_port_is_EADDRINUSE) {
    TestSocket first(test_port(23));
    TestSocket second;
    EXPECT_ERRNO(bind_port(second.fd, first.port), EADDRINUSE);
}

TEST(CApiErrno, uhoma_bind__unreadable_address_is_EFAULT) {
    TestSocket s;
    EXPECT_ERRNO(uhoma_bind(s.fd, nullptr, sizeof(sockaddr_in)), EFAULT);
}

// ---------------------------------------------------------------------------
// setsockopt / getsockopt

TEST(CApiErrno, uhoma_setsockopt__rcvbuf_length_not_16_is_EINVAL) {
    const int fd = uhoma_socket(AF_INET, SOCK_DGRAM, IPPROTO_HOMA);
    Region region;
    homa_rcvbuf_args args{reinterpret_cast<std::uintptr_t>(region.base), region.bytes};
    EXPECT_ERRNO(uhoma_setsockopt(fd, IPPROTO_HOMA, SO_HOMA_RCVBUF, &args, 15), EINVAL);
    EXPECT_ERRNO(uhoma_setsockopt(fd, IPPROTO_HOMA, SO_HOMA_RCVBUF, &args, 17), EINVAL);
    uhoma_close(fd);
}

TEST(CApiErrno, uhoma_setsockopt__rcvbuf_unaligned_is_EINVAL) {
    const int fd = uhoma_socket(AF_INET, SOCK_DGRAM, IPPROTO_HOMA);
    Region region;
    homa_rcvbuf_args args{reinterpret_cast<std::uintptr_t>(region.base) + 64, region.bytes - 4096};
    EXPECT_ERRNO(uhoma_setsockopt(fd, IPPROTO_HOMA, SO_HOMA_RCVBUF, &args, sizeof(args)), EINVAL);
    uhoma_close(fd);
}

TEST(CApiErrno, uhoma_setsockopt__rcvbuf_too_small_or_over_4_GiB_is_EINVAL) {
    const int fd = uhoma_socket(AF_INET, SOCK_DGRAM, IPPROTO_HOMA);
    Region region;
    const long cpus = ::sysconf(_SC_NPROCESSORS_CONF);
    const std::uint64_t minimum = static_cast<std::uint64_t>(cpus) * HOMA_BPAGE_SIZE + 2000000;
    homa_rcvbuf_args args{reinterpret_cast<std::uintptr_t>(region.base), minimum - 1};
    EXPECT_ERRNO(uhoma_setsockopt(fd, IPPROTO_HOMA, SO_HOMA_RCVBUF, &args, sizeof(args)), EINVAL);
    args.length = (1ull << 32) + HOMA_BPAGE_SIZE;
    EXPECT_ERRNO(uhoma_setsockopt(fd, IPPROTO_HOMA, SO_HOMA_RCVBUF, &args, sizeof(args)), EINVAL);
    args.length = minimum;
    EXPECT_EQ(uhoma_setsockopt(fd, IPPROTO_HOMA, SO_HOMA_RCVBUF, &args, sizeof(args)), 0)
        << "exactly the minimum: " << errno;
    uhoma_close(fd);
}

TEST(CApiErrno, uhoma_setsockopt__rcvbuf_already_set_is_EINVAL) {
    TestSocket s;
    Region other;
    EXPECT_ERRNO(set_region(s.fd, other), EINVAL);
}

TEST(CApiErrno, uhoma_setsockopt__rcvbuf_not_writable_is_EFAULT) {
    const int fd = uhoma_socket(AF_INET, SOCK_DGRAM, IPPROTO_HOMA);
    Region read_only(region_bytes(), PROT_READ);
    EXPECT_ERRNO(set_region(fd, read_only), EFAULT);
    uhoma_close(fd);
}

TEST(CApiErrno, uhoma_setsockopt__unreadable_optval_is_EFAULT) {
    TestSocket s;
    EXPECT_ERRNO(uhoma_setsockopt(s.fd, IPPROTO_HOMA, SO_HOMA_RCVBUF, nullptr, 16), EFAULT);
    EXPECT_ERRNO(uhoma_setsockopt(s.fd, IPPROTO_HOMA, SO_HOMA_SERVER, nullptr, sizeof(int)), EFAULT);
}

TEST(CApiErrno, uhoma_setsockopt__other_level_or_option_is_ENOPROTOOPT) {
    TestSocket s;
    int one = 1;
    EXPECT_ERRNO(uhoma_setsockopt(s.fd, SOL_SOCKET, SO_HOMA_SERVER, &one, sizeof(one)), ENOPROTOOPT);
    EXPECT_ERRNO(uhoma_setsockopt(s.fd, IPPROTO_HOMA, 12, &one, sizeof(one)), ENOPROTOOPT);
}

TEST(CApiErrno, uhoma_setsockopt__server_option_takes_an_int) {
    TestSocket s;
    long big = 1;
    EXPECT_ERRNO(uhoma_setsockopt(s.fd, IPPROTO_HOMA, SO_HOMA_SERVER, &big, sizeof(big)), EINVAL);
    int on = 7;
    ASSERT_EQ(uhoma_setsockopt(s.fd, IPPROTO_HOMA, SO_HOMA_SERVER, &on, sizeof(on)), 0);
    int value = 0;
    socklen_t len = sizeof(value);
    ASSERT_EQ(uhoma_getsockopt(s.fd, IPPROTO_HOMA, SO_HOMA_SERVER, &value, &len), 0);
    EXPECT_EQ(value, 1);
    on = 0;
    ASSERT_EQ(uhoma_setsockopt(s.fd, IPPROTO_HOMA, SO_HOMA_SERVER, &on, sizeof(on)), 0);
    ASSERT_EQ(uhoma_getsockopt(s.fd, IPPROTO_HOMA, SO_HOMA_SERVER, &value, &len), 0);
    EXPECT_EQ(value, 0);
}

TEST(CApiErrno, uhoma_getsockopt__rcvbuf_reads_back_start_and_whole_bpages) {
    const int fd = uhoma_socket(AF_INET, SOCK_DGRAM, IPPROTO_HOMA);
    homa_rcvbuf_args got{1, 1};
    socklen_t len = 100;
    ASSERT_EQ(uhoma_getsockopt(fd, IPPROTO_HOMA, SO_HOMA_RCVBUF, &got, &len), 0);
    EXPECT_EQ(got.start, 0u) << "none set yet";
    EXPECT_EQ(got.length, 0u);
    EXPECT_EQ(len, 16u);
    Region region;
    homa_rcvbuf_args args{reinterpret_cast<std::uintptr_t>(region.base), region.bytes - 1000};
    ASSERT_EQ(uhoma_setsockopt(fd, IPPROTO_HOMA, SO_HOMA_RCVBUF, &args, sizeof(args)), 0);
    ASSERT_EQ(uhoma_getsockopt(fd, IPPROTO_HOMA, SO_HOMA_RCVBUF, &got, &len), 0);
    EXPECT_EQ(got.start, args.start);
    EXPECT_EQ(got.length, (args.length >> 16) << 16);
    uhoma_close(fd);
}

TEST(CApiErrno, uhoma_getsockopt__short_optlen_is_EINVAL) {
    TestSocket s;
    homa_rcvbuf_args got{};
    socklen_t len = 15;
    EXPECT_ERRNO(uhoma_getsockopt(s.fd, IPPROTO_HOMA, SO_HOMA_RCVBUF, &got, &len), EINVAL);
    len = 3;
    EXPECT_ERRNO(uhoma_getsockopt(s.fd, IPPROTO_HOMA, SO_HOMA_SERVER, &got, &len), EINVAL);
}

TEST(CApiErrno, uhoma_getsockopt__other_level_or_option_is_ENOPROTOOPT) {
    TestSocket s;
    int value = 0;
    socklen_t len = sizeof(value);
    EXPECT_ERRNO(uhoma_getsockopt(s.fd, SOL_SOCKET, SO_TYPE, &value, &len), ENOPROTOOPT);
    EXPECT_ERRNO(uhoma_getsockopt(s.fd, IPPROTO_HOMA, 99, &value, &len), ENOPROTOOPT);
}

TEST(CApiErrno, uhoma_getsockopt__unwritable_arguments_are_EFAULT) {
    TestSocket s;
    socklen_t len = sizeof(int);
    EXPECT_ERRNO(uhoma_getsockopt(s.fd, IPPROTO_HOMA, SO_HOMA_SERVER, nullptr, &len), EFAULT);
    int value = 0;
    EXPECT_ERRNO(uhoma_getsockopt(s.fd, IPPROTO_HOMA, SO_HOMA_SERVER, &value, nullptr), EFAULT);
}

// ---------------------------------------------------------------------------
// sendmsg

struct SendFixture {
    TestSocket client;
    BlackHole nobody;
    sockaddr_in to = loopback4(nobody.port);
    std::vector<unsigned char> data = pattern(100, 1);
    iovec iov{data.data(), data.size()};
    homa_sendmsg_args args{};
    msghdr hdr{};
    SendFixture() {
        hdr.msg_name = &to;
        hdr.msg_namelen = sizeof(to);
        hdr.msg_iov = &iov;
        hdr.msg_iovlen = 1;
        hdr.msg_control = &args;
    }
    ssize_t send(int flags = 0) { return uhoma_sendmsg(client.fd, &hdr, flags); }
};

TEST(CApiErrno, uhoma_sendmsg__request_returns_0_and_writes_the_id) {
    SendFixture f;
    ASSERT_EQ(f.send(), 0);
    EXPECT_NE(f.args.id, 0u);
    const std::uint64_t first = f.args.id;
    f.args.id = 0;
    ASSERT_EQ(f.send(), 0);
    EXPECT_GT(f.args.id, first) << "ids grow";
}

TEST(CApiErrno, uhoma_sendmsg__unknown_flags_or_reserved_is_EINVAL) {
    SendFixture f;
    f.args.flags = 2;
    EXPECT_ERRNO(f.send(), EINVAL);
    f.args.flags = 0;
    f.args.reserved = 1;
    EXPECT_ERRNO(f.send(), EINVAL);
}

TEST(CApiErrno, uhoma_sendmsg__nonzero_controllen_is_EINVAL) {
    SendFixture f;
    f.hdr.msg_controllen = sizeof(f.args);
    EXPECT_ERRNO(f.send(), EINVAL);
}

TEST(CApiErrno, uhoma_sendmsg__control_data_is_checked_by_the_kernel_first) {
    // The kernel copies msg_control in when msg_controllen > 0, before Homa
    // sees the call (and refuses it with EINVAL): these errors come first,
    // even without a destination.
    SendFixture f;
    f.hdr.msg_name = nullptr;
    f.hdr.msg_controllen = static_cast<std::size_t>(INT_MAX) + 1;
    EXPECT_ERRNO(f.send(), ENOBUFS);
    f.hdr.msg_controllen = sizeof(f.args);
    f.hdr.msg_control = nullptr;
    EXPECT_ERRNO(f.send(), EFAULT);
    f.hdr.msg_control = &f.args;
    EXPECT_ERRNO(f.send(), EINVAL);
}

TEST(CApiErrno, uhoma_sendmsg__missing_or_short_name_is_EINVAL) {
    SendFixture f;
    f.hdr.msg_namelen = sizeof(sockaddr_in) - 1;
    EXPECT_ERRNO(f.send(), EINVAL);
    f.hdr.msg_namelen = 0;
    EXPECT_ERRNO(f.send(), EINVAL);
    f.hdr.msg_name = nullptr;
    f.hdr.msg_namelen = sizeof(f.to);
    EXPECT_ERRNO(f.send(), EINVAL);
}

TEST(CApiErrno, uhoma_sendmsg__other_family_is_EAFNOSUPPORT) {
    SendFixture f;
    sockaddr_in6 to6 = loopback6(f.nobody.port);
    f.hdr.msg_name = &to6;
    f.hdr.msg_namelen = sizeof(to6);
    EXPECT_ERRNO(f.send(), EAFNOSUPPORT);
}

TEST(CApiErrno, uhoma_sendmsg__empty_or_oversized_message_is_EINVAL) {
    SendFixture f;
    f.iov.iov_len = 0;
    EXPECT_ERRNO(f.send(), EINVAL);
    f.hdr.msg_iovlen = 0;
    EXPECT_ERRNO(f.send(), EINVAL);
    std::vector<unsigned char> big(HOMA_MAX_MESSAGE_LENGTH + 1);
    f.iov = iovec{big.data(), big.size()};
    f.hdr.msg_iovlen = 1;
    EXPECT_ERRNO(f.send(), EINVAL);
    f.iov.iov_len = HOMA_MAX_MESSAGE_LENGTH;
    EXPECT_EQ(f.send(), 0) << "the maximum itself is fine";
}

TEST(CApiErrno, uhoma_sendmsg__response_with_cookie_is_EINVAL) {
    SendFixture f;
    f.args.id = 3;
    f.args.completion_cookie = 1;
    EXPECT_ERRNO(f.send(), EINVAL);
}

TEST(CApiErrno, uhoma_sendmsg__response_to_unknown_rpc_returns_0) {
    SendFixture f;
    f.args.id = 12345;  // odd ids are server RPCs; this one does not exist
    f.args.id |= 1;
    EXPECT_EQ(f.send(), 0);
}

TEST(CApiErrno, uhoma_sendmsg__second_response_is_EINVAL) {
    // After its response the RPC is no longer IN_SERVICE. The client is gone
    // before the response, so the RPC stays (unacknowledged) meanwhile.
    TestSocket server(test_port(31));
    const std::uint16_t port = server.port;
    Received in;
    {
        TestSocket client;
        ASSERT_NE(send_request(client.fd, port, pattern(10, 1)), 0u);
        in = receive(server.fd, 0);
        ASSERT_EQ(in.result, 10);
    }
    ASSERT_EQ(reply(server.fd, in, pattern(10, 2)), 0);
    EXPECT_ERRNO(reply(server.fd, in, pattern(10, 3)), EINVAL);
}

TEST(CApiErrno, uhoma_sendmsg__missing_control_or_iovecs_is_EFAULT) {
    SendFixture f;
    f.hdr.msg_control = nullptr;
    EXPECT_ERRNO(f.send(), EFAULT);
    f.hdr.msg_control = &f.args;
    f.hdr.msg_iov = nullptr;
    EXPECT_ERRNO(f.send(), EFAULT);
    EXPECT_ERRNO(uhoma_sendmsg(f.client.fd, nullptr, 0), EFAULT);
}

TEST(CApiErrno, uhoma_sendmsg__too_many_iovecs_is_EMSGSIZE) {
    SendFixture f;
    std::vector<iovec> many(1025, iovec{f.data.data(), 1});
    f.hdr.msg_iov = many.data();
    f.hdr.msg_iovlen = many.size();
    EXPECT_ERRNO(f.send(), EMSGSIZE);
}

// ---------------------------------------------------------------------------
// recvmsg

TEST(CApiErrno, uhoma_recvmsg__controllen_not_88_is_EINVAL) {
    TestSocket s;
    homa_recvmsg_args args{};
    msghdr hdr{};
    hdr.msg_control = &args;
    hdr.msg_controllen = sizeof(args) - 1;
    EXPECT_ERRNO(uhoma_recvmsg(s.fd, &hdr, MSG_DONTWAIT), EINVAL);
    hdr.msg_controllen = 0;
    EXPECT_ERRNO(uhoma_recvmsg(s.fd, &hdr, MSG_DONTWAIT), EINVAL);
    hdr.msg_control = nullptr;
    hdr.msg_controllen = sizeof(args);
    EXPECT_ERRNO(uhoma_recvmsg(s.fd, &hdr, MSG_DONTWAIT), EINVAL);
}

TEST(CApiErrno, uhoma_recvmsg__msghdr_fields_are_checked_by_the_kernel_first) {
    // The kernel validates msg_namelen and imports the iovecs before Homa
    // looks at msg_control (Homa then ignores the iovecs).
    TestSocket s;
    homa_recvmsg_args args{};
    sockaddr_storage from{};
    msghdr hdr{};
    hdr.msg_control = nullptr;  // Homa would say EINVAL; these come first
    hdr.msg_name = &from;
    hdr.msg_namelen = static_cast<socklen_t>(-1);
    EXPECT_ERRNO(uhoma_recvmsg(s.fd, &hdr, MSG_DONTWAIT), EINVAL);
    hdr.msg_namelen = sizeof(from);
    hdr.msg_iovlen = IOV_MAX + 1;
    EXPECT_ERRNO(uhoma_recvmsg(s.fd, &hdr, MSG_DONTWAIT), EMSGSIZE);
    hdr.msg_iovlen = 1;
    EXPECT_ERRNO(uhoma_recvmsg(s.fd, &hdr, MSG_DONTWAIT), EFAULT);
    char byte = 0;
    iovec iov{&byte, static_cast<std::size_t>(SSIZE_MAX) + 1};
    hdr.msg_iov = &iov;
    EXPECT_ERRNO(uhoma_recvmsg(s.fd, &hdr, MSG_DONTWAIT), EINVAL);
    // Valid iovecs are accepted (and ignored).
    iov.iov_len = 1;
    hdr.msg_control = &args;
    hdr.msg_controllen = sizeof(args);
    EXPECT_ERRNO(uhoma_recvmsg(s.fd, &hdr, MSG_DONTWAIT), EAGAIN);
    // Without a name, msg_namelen is not looked at.
    hdr.msg_name = nullptr;
    hdr.msg_namelen = static_cast<socklen_t>(-1);
    EXPECT_ERRNO(uhoma_recvmsg(s.fd, &hdr, MSG_DONTWAIT), EAGAIN);
}

TEST(CApiErrno, uhoma_recvmsg__more_than_16_bpages_or_reserved_is_EINVAL) {
    TestSocket s;
    Received r = receive(s.fd, 0, MSG_DONTWAIT, std::vector<std::uint32_t>(16, 0));
    EXPECT_EQ(r.error, EINVAL) << "16 offsets of free bpages";
    homa_recvmsg_args args{};
    args.num_bpages = 17;
    msghdr hdr{};
    hdr.msg_control = &args;
    hdr.msg_controllen = sizeof(args);
    EXPECT_ERRNO(uhoma_recvmsg(s.fd, &hdr, MSG_DONTWAIT), EINVAL);
    args.num_bpages = 0;
    args.reserved = 1;
    EXPECT_ERRNO(uhoma_recvmsg(s.fd, &hdr, MSG_DONTWAIT), EINVAL);
}

TEST(CApiErrno, uhoma_recvmsg__no_receive_region_is_EINVAL) {
    const int fd = uhoma_socket(AF_INET, SOCK_DGRAM, IPPROTO_HOMA);
    EXPECT_EQ(receive(fd, 0, MSG_DONTWAIT).error, EINVAL);
    uhoma_close(fd);
}

TEST(CApiErrno, uhoma_recvmsg__unknown_or_shared_rpc_id_is_EINVAL) {
    TestSocket client;
    Received unknown = receive(client.fd, 1000, MSG_DONTWAIT);
    EXPECT_EQ(unknown.error, EINVAL);
    EXPECT_EQ(unknown.args.id, 1000u) << "Linux leaves the id as given";
    BlackHole nobody;
    const std::uint64_t shared = send_request(client.fd, nobody.port, pattern(10, 1));
    ASSERT_NE(shared, 0u);
    EXPECT_EQ(receive(client.fd, shared, MSG_DONTWAIT).error, EINVAL) << "not private";
}

TEST(CApiErrno, uhoma_recvmsg__nothing_ready_with_MSG_DONTWAIT_is_EAGAIN) {
    TestSocket s(test_port(33));
    Received r = receive(s.fd, 0, MSG_DONTWAIT);
    EXPECT_EQ(r.result, -1);
    EXPECT_EQ(r.error, EAGAIN);
    EXPECT_EQ(r.args.id, 0u) << "nothing received";
    TestSocket client;
    BlackHole nobody;
    const std::uint64_t id = send_request(client.fd, nobody.port, pattern(10, 1), 0, HOMA_SENDMSG_PRIVATE);
    Received p = receive(client.fd, id, MSG_DONTWAIT);
    EXPECT_EQ(p.error, EAGAIN);
    EXPECT_EQ(p.args.id, 0u) << "Linux clears the id when the wait fails";
}

TEST(CApiErrno, uhoma_recvmsg__returning_a_free_bpage_is_EINVAL) {
    TestSocket server(test_port(35));
    const std::uint16_t port = server.port;
    TestSocket client;
    ASSERT_NE(send_request(client.fd, port, pattern(10, 1)), 0u);
    Received in = receive(server.fd, 0);
    ASSERT_EQ(in.result, 10);
    EXPECT_EQ(receive(server.fd, 0, MSG_DONTWAIT, bpages_of(in)).error, EAGAIN) << "first: fine";
    Received again = receive(server.fd, 0, MSG_DONTWAIT, bpages_of(in));
    EXPECT_EQ(again.error, EINVAL) << "second: already free";
    EXPECT_EQ(again.args.num_bpages, 0u);
}

// ---------------------------------------------------------------------------
// ioctl

TEST(CApiErrno, uhoma_ioctl__abort_with_nonzero_pads_is_EINVAL) {
    TestSocket s;
    homa_abort_args args{};
    args._pad1 = 1;
    EXPECT_ERRNO(uhoma_ioctl(s.fd, HOMAIOCABORT, &args), EINVAL);
    args._pad1 = 0;
    args._pad2[1] = 1;
    EXPECT_ERRNO(uhoma_ioctl(s.fd, HOMAIOCABORT, &args), EINVAL);
}

TEST(CApiErrno, uhoma_ioctl__abort_of_unknown_id_is_EINVAL) {
    TestSocket s;
    homa_abort_args args{};
    args.id = 2;
    EXPECT_ERRNO(uhoma_ioctl(s.fd, HOMAIOCABORT, &args), EINVAL);
    args.id = 0;
    EXPECT_EQ(uhoma_ioctl(s.fd, HOMAIOCABORT, &args), 0) << "id 0 with no RPCs: nothing to do";
}

TEST(CApiErrno, uhoma_ioctl__unreadable_argument_is_EFAULT) {
    TestSocket s;
    EXPECT_ERRNO(uhoma_ioctl(s.fd, HOMAIOCABORT, nullptr), EFAULT);
}

TEST(CApiErrno, uhoma_ioctl__freeze_returns_0) {
    TestSocket s;
    EXPECT_EQ(uhoma_ioctl(s.fd, HOMAIOCFREEZE, nullptr), 0);
}

TEST(CApiErrno, uhoma_ioctl__info_with_records_but_no_array_is_EFAULT) {
    TestSocket s;
    homa_info info{};
    info.rpc_info = 0;
    info.rpc_info_length = sizeof(homa_rpc_info);
    EXPECT_ERRNO(uhoma_ioctl(s.fd, HOMAIOCINFO, &info), EFAULT);
    EXPECT_ERRNO(uhoma_ioctl(s.fd, HOMAIOCINFO, nullptr), EFAULT);
}

TEST(CApiErrno, uhoma_ioctl__unknown_request_is_EINVAL) {
    TestSocket s;
    int value = 0;
    EXPECT_ERRNO(uhoma_ioctl(s.fd, FIONREAD, &value), EINVAL);
}

// ---------------------------------------------------------------------------
// Descriptors that are not uhoma sockets

TEST(CApiErrno, all_calls__unknown_descriptor_is_EBADF) {
    const int fd = 1000000;
    sockaddr_in a = loopback4(1);
    int value = 0;
    socklen_t len = sizeof(value);
    msghdr hdr{};
    EXPECT_ERRNO(uhoma_bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), EBADF);
    EXPECT_ERRNO(uhoma_setsockopt(fd, IPPROTO_HOMA, SO_HOMA_SERVER, &value, len), EBADF);
    EXPECT_ERRNO(uhoma_getsockopt(fd, IPPROTO_HOMA, SO_HOMA_SERVER, &value, &len), EBADF);
    EXPECT_ERRNO(uhoma_sendmsg(fd, &hdr, 0), EBADF);
    EXPECT_ERRNO(uhoma_recvmsg(fd, &hdr, 0), EBADF);
    EXPECT_ERRNO(uhoma_ioctl(fd, HOMAIOCFREEZE, nullptr), EBADF);
    EXPECT_ERRNO(uhoma_shutdown(fd, SHUT_RDWR), EBADF);
    EXPECT_ERRNO(uhoma_close(fd), EBADF);
    // An ordinary descriptor is not a uhoma socket either.
    EXPECT_ERRNO(uhoma_ioctl(0, HOMAIOCFREEZE, nullptr), EBADF);
}

}  // namespace
}  // namespace uhoma::capi_test
