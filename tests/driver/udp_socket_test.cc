#include "driver/udp_socket.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "wire/priority.h"

// --- Fault injection ---------------------------------------------------------
// On loopback the kernel never makes a UDP sender wait (packets leave the
// send buffer as soon as they are handed to lo, and a full receiver drops
// them), so EAGAIN, ENOBUFS and socket-level failures cannot be provoked
// for real. This test binary interposes sendmmsg: unarmed it forwards to
// the real one; armed, it lets `allowance` more messages through and then
// fails with `error`.
namespace {
struct SendFault {
    bool armed = false;
    unsigned allowance = 0;
    int error = 0;
};
SendFault send_fault;

using SendmmsgFn = int (*)(int, mmsghdr*, unsigned, int);
SendmmsgFn real_sendmmsg() {
    static const auto real = reinterpret_cast<SendmmsgFn>(dlsym(RTLD_NEXT, "sendmmsg"));
    return real;
}
}  // namespace

extern "C" int sendmmsg(int fd, mmsghdr* messages, unsigned count, int flags) {
    if (!send_fault.armed) return real_sendmmsg()(fd, messages, count, flags);
    if (send_fault.allowance == 0) {
        errno = send_fault.error;
        return -1;
    }
    const unsigned allowed = count < send_fault.allowance ? count : send_fault.allowance;
    const int result = real_sendmmsg()(fd, messages, allowed, flags);
    if (result > 0) send_fault.allowance -= static_cast<unsigned>(result);
    return result;
}

namespace uhoma::driver {
namespace {

using engine::Address;
using engine::Endpoint;
using engine::Transmit;

const Address loopback4 = Address::ipv4(127, 0, 0, 1);
Address loopback6() {
    Address a;
    a.bytes[15] = 1;
    return a;
}
const Address any6{};  // ::

// A recognisable packet: bytes 0-3 a serial number, the rest from a
// generator seeded by it, so any corruption or mix-up shows.
std::vector<std::byte> make_packet(std::uint32_t serial, std::size_t size) {
    std::vector<std::byte> bytes(size);
    std::mt19937 random(serial);
    for (std::size_t i = 0; i < size; ++i) {
        bytes[i] = static_cast<std::byte>(i < 4 ? serial >> (8 * (3 - i)) : random());
    }
    return bytes;
}

struct Got {
    Address source;
    std::uint16_t source_port = 0;
    std::uint8_t tos = 0;
    std::vector<std::byte> bytes;
};

// Receives until `expected` packets arrived (or 5 s passed: loopback
// delivery normally completes inside the sender's syscall, but may be
// deferred to ksoftirqd under load).
std::vector<Got> receive_count(UdpSocket& socket, std::size_t expected,
                               std::size_t max_packets = 256) {
    std::vector<Got> got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got.size() < expected && std::chrono::steady_clock::now() < deadline) {
        const Expected<std::size_t, int> n = socket.receive(
            [&](const ReceivedPacket& p) {
                got.push_back({p.source, p.source_port, p.tos, {p.bytes.begin(), p.bytes.end()}});
            },
            max_packets);
        EXPECT_TRUE(n.has_value());
        if (!n) break;
        if (n.value() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return got;
}

std::size_t receive_nothing_more(UdpSocket& socket) {
    std::size_t extra = 0;
    const Expected<std::size_t, int> n = socket.receive([&](const ReceivedPacket&) { ++extra; });
    EXPECT_TRUE(n.has_value());
    return extra;
}

UdpSocket open_or_die(const Address& local, const UdpSocket::Options& options = {}) {
    Expected<UdpSocket, int> socket = UdpSocket::open(local, 0, options);
    if (!socket) {
        ADD_FAILURE() << "UdpSocket::open: " << std::strerror(socket.error());
        std::abort();
    }
    return std::move(socket).value();
}

UdpSocket::Options big_buffers(UdpSocket::Options options = {}) {
    options.receive_buffer = 1 << 20;
    return options;
}

// Owns the bytes behind a list of Transmits. Each packet is handed over in
// two parts, as the engine does: the first `header_size` bytes (56, a DATA
// header, by default; all of a shorter packet) as the header, the rest as
// the payload.
struct Batch {
    std::vector<std::vector<std::byte>> buffers;
    std::vector<Transmit> packets;
    std::vector<std::uint32_t> serials;
    std::vector<std::size_t> header_sizes;

    void add(const Endpoint& destination, std::uint8_t priority, std::size_t size,
             std::size_t header_size = 56) {
        const auto serial = static_cast<std::uint32_t>(serials.size() + 1000);
        buffers.push_back(make_packet(serial, size));
        serials.push_back(serial);
        header_sizes.push_back(header_size);
        packets.push_back(Transmit{destination, priority, {}, {}, nullptr});
    }
    std::span<const Transmit> span() {
        for (std::size_t i = 0; i < packets.size(); ++i) {
            const std::span<const std::byte> bytes = buffers[i];
            const std::size_t split = std::min(header_sizes[i], bytes.size());
            packets[i].header = bytes.first(split);
            packets[i].payload = bytes.subspan(split);
        }
        return packets;
    }
};

// 100 packets to two receivers: a GSO train (40 x 1456 B at priority 3
// plus a 700 B tail) to `b`, then 59 packets of seeded sizes (26..1456 B),
// priorities and destinations, with some equal-size runs.
Batch varied_batch(const Endpoint& b, const Endpoint& c) {
    Batch batch;
    for (int i = 0; i < 40; ++i) batch.add(b, 3, 1456);
    batch.add(b, 3, 700);
    std::mt19937 random(42);
    while (batch.packets.size() < 100) {
        const Endpoint& to = random() % 2 == 0 ? b : c;
        const auto priority = static_cast<std::uint8_t>(random() % 8);
        const std::size_t size = 26 + random() % (1456 - 26 + 1);
        const std::size_t run = 1 + random() % 4;
        for (std::size_t i = 0; i < run && batch.packets.size() < 100; ++i) {
            batch.add(to, priority, size);
        }
    }
    return batch;
}

// Sends the varied batch from `a` to `b` and `c` and checks every packet:
// bytes, per-destination order, source address and port, TOS.
void check_varied_batch(const Address& local, const UdpSocket::Options& sender_options,
                        const UdpSocket::Options& receiver_options) {
    UdpSocket a = open_or_die(local, sender_options);
    UdpSocket b = open_or_die(local, big_buffers(receiver_options));
    UdpSocket c = open_or_die(local, big_buffers(receiver_options));
    Batch batch = varied_batch({local, b.port()}, {local, c.port()});

    const Expected<std::size_t, int> sent = a.send(batch.span());
    ASSERT_TRUE(sent.has_value()) << std::strerror(sent.error());
    EXPECT_EQ(sent.value(), 100u);
    EXPECT_EQ(a.stats().packets_sent, 100u);
    EXPECT_EQ(a.stats().packets_refused, 0u);

    std::map<std::uint16_t, std::vector<std::size_t>> expected;  // port -> packet indices
    for (std::size_t i = 0; i < batch.packets.size(); ++i) {
        expected[batch.packets[i].destination.port].push_back(i);
    }
    for (UdpSocket* receiver : {&b, &c}) {
        const std::vector<std::size_t>& indices = expected[receiver->port()];
        const std::vector<Got> got = receive_count(*receiver, indices.size());
        ASSERT_EQ(got.size(), indices.size());
        for (std::size_t k = 0; k < got.size(); ++k) {
            const std::size_t i = indices[k];
            EXPECT_EQ(got[k].bytes, batch.buffers[i]) << "packet " << i;
            EXPECT_EQ(got[k].source, local);
            EXPECT_EQ(got[k].source_port, a.port());
            EXPECT_EQ(got[k].tos, wire::tos_for_priority(batch.packets[i].priority))
                << "packet " << i;
        }
        EXPECT_EQ(receive_nothing_more(*receiver), 0u);
    }

    if (a.gso()) {
        // The 41-packet train went as one message; equal-size runs in the
        // rest may have formed more trains.
        EXPECT_GE(a.stats().gso_messages, 1u);
        EXPECT_LT(a.stats().messages_sent, 100u - 40u);
    } else {
        EXPECT_EQ(a.stats().gso_messages, 0u);
        EXPECT_EQ(a.stats().messages_sent, 100u);
    }
    EXPECT_EQ(a.stats().send_syscalls, (a.stats().messages_sent + 63) / 64);
    if (a.gso() && b.gro()) {
        EXPECT_GE(b.stats().gro_datagrams, 1u);  // the train arrived as one buffer
    } else {
        EXPECT_EQ(b.stats().gro_datagrams, 0u);
    }
}

// --- open -------------------------------------------------------------------

TEST(UdpSocket, open__binds_a_kernel_chosen_port) {
    UdpSocket socket = open_or_die(loopback4);
    EXPECT_NE(socket.port(), 0);
    EXPECT_GE(socket.fd(), 0);
    EXPECT_EQ(socket.local_address(), loopback4);
    EXPECT_TRUE(socket.gso());  // kernel 4.18+ / 5.0+
    EXPECT_TRUE(socket.gro());
}

TEST(UdpSocket, open__taken_port_is_eaddrinuse) {
    UdpSocket first = open_or_die(loopback4);
    const Expected<UdpSocket, int> second = UdpSocket::open(loopback4, first.port());
    ASSERT_FALSE(second.has_value());
    EXPECT_EQ(second.error(), EADDRINUSE);
    // :: with IPV6_V6ONLY off also covers IPv4, so it collides too.
    const Expected<UdpSocket, int> dual = UdpSocket::open(any6, first.port());
    ASSERT_FALSE(dual.has_value());
    EXPECT_EQ(dual.error(), EADDRINUSE);
}

TEST(UdpSocket, open__address_not_on_this_host_is_eaddrnotavail) {
    const Expected<UdpSocket, int> socket = UdpSocket::open(Address::ipv4(192, 0, 2, 1), 0);
    ASSERT_FALSE(socket.has_value());
    EXPECT_EQ(socket.error(), EADDRNOTAVAIL);
}

TEST(UdpSocket, open__invalid_options_are_einval) {
    UdpSocket::Options options;
    options.batch = 0;
    Expected<UdpSocket, int> socket = UdpSocket::open(loopback4, 0, options);
    ASSERT_FALSE(socket.has_value());
    EXPECT_EQ(socket.error(), EINVAL);
    options = {};
    options.max_packet = 70'000;
    socket = UdpSocket::open(loopback4, 0, options);
    ASSERT_FALSE(socket.has_value());
    EXPECT_EQ(socket.error(), EINVAL);
}

// --- send and receive ---------------------------------------------------------

TEST(UdpSocket, send__varied_batch_with_gso_and_gro) {
    check_varied_batch(loopback4, {}, {});
}

TEST(UdpSocket, send__varied_batch_without_gso) {
    UdpSocket::Options options;
    options.gso = false;
    check_varied_batch(loopback4, options, options);
}

TEST(UdpSocket, send__varied_batch_without_gro) {
    UdpSocket::Options options;
    options.gro = false;
    check_varied_batch(loopback4, options, options);
}

TEST(UdpSocket, send__varied_batch_without_gso_or_gro) {
    UdpSocket::Options options;
    options.gso = false;
    options.gro = false;
    check_varied_batch(loopback4, options, options);
}

TEST(UdpSocket, send__varied_batch_over_ipv6_loopback) {
    check_varied_batch(loopback6(), {}, {});
}

TEST(UdpSocket, send__varied_batch_over_ipv6_without_gso_or_gro) {
    UdpSocket::Options options;
    options.gso = false;
    options.gro = false;
    check_varied_batch(loopback6(), options, options);
}

TEST(UdpSocket, send__gso_train_is_one_syscall_and_one_datagram) {
    UdpSocket a = open_or_die(loopback4);
    UdpSocket b = open_or_die(loopback4, big_buffers());
    Batch batch;
    for (int i = 0; i < 40; ++i) batch.add({loopback4, b.port()}, 5, 1456);
    batch.add({loopback4, b.port()}, 5, 300);

    const Expected<std::size_t, int> sent = a.send(batch.span());
    ASSERT_TRUE(sent.has_value());
    EXPECT_EQ(sent.value(), 41u);
    EXPECT_EQ(a.stats().send_calls, 1u);
    EXPECT_EQ(a.stats().send_syscalls, 1u);
    EXPECT_EQ(a.stats().messages_sent, 1u);
    EXPECT_EQ(a.stats().gso_messages, 1u);
    EXPECT_EQ(a.stats().packets_sent, 41u);

    const std::vector<Got> got = receive_count(b, 41);
    ASSERT_EQ(got.size(), 41u);
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].bytes, batch.buffers[i]);
        EXPECT_EQ(got[i].tos, 5u << 5);
    }
    // Loopback hands a GSO train to a GRO socket whole: one recvmmsg, one
    // buffer, split into 41 packets by the driver.
    EXPECT_EQ(b.stats().receive_syscalls, 1u);
    EXPECT_EQ(b.stats().datagrams_received, 1u);
    EXPECT_EQ(b.stats().gro_datagrams, 1u);
    EXPECT_EQ(b.stats().packets_received, 41u);
}

// GSO cuts the gathered bytes by count, so a train whose packets split
// header and payload at different points (a whole packet in the header, an
// empty header, a 1-byte header, ...) must still arrive as exactly its
// datagrams, as long as each packet has the train's size.
TEST(UdpSocket, send__gso_train_of_header_payload_pairs_arrives_as_exact_datagrams) {
    for (const bool gro : {true, false}) {
        SCOPED_TRACE(gro ? "receiver with GRO" : "receiver without GRO");
        UdpSocket a = open_or_die(loopback4);
        UdpSocket::Options options;
        options.gro = gro;
        UdpSocket b = open_or_die(loopback4, big_buffers(options));
        if (!a.gso()) GTEST_SKIP() << "kernel without UDP_SEGMENT";
        const Endpoint to_b{loopback4, b.port()};
        const std::size_t splits[] = {56, 0, 1, 1456, 700, 1455, 28};
        Batch batch;
        for (std::size_t i = 0; i < 30; ++i) batch.add(to_b, 4, 1456, splits[i % std::size(splits)]);
        batch.add(to_b, 4, 90, 90);  // a header-only tail (a control packet's shape)

        const std::span<const Transmit> packets = batch.span();
        EXPECT_TRUE(packets[1].header.empty());
        EXPECT_TRUE(packets[3].payload.empty());
        const Expected<std::size_t, int> sent = a.send(packets);
        ASSERT_TRUE(sent.has_value());
        EXPECT_EQ(sent.value(), 31u);
        EXPECT_EQ(a.stats().send_syscalls, 1u);
        EXPECT_EQ(a.stats().messages_sent, 1u);
        EXPECT_EQ(a.stats().gso_messages, 1u);

        const std::vector<Got> got = receive_count(b, 31);
        ASSERT_EQ(got.size(), 31u);
        for (std::size_t i = 0; i < got.size(); ++i) {
            EXPECT_EQ(got[i].bytes, batch.buffers[i]) << "packet " << i;
            EXPECT_EQ(got[i].tos, 4u << 5);
        }
        EXPECT_EQ(receive_nothing_more(b), 0u);
    }
}

// A full train of 64 segments gathers 128 iovecs; trains of tiny packets
// at the segment cap (every header and payload non-empty) must all arrive.
TEST(UdpSocket, send__full_trains_of_split_packets_use_two_iovecs_per_packet) {
    UdpSocket a = open_or_die(loopback4);
    UdpSocket b = open_or_die(loopback4, big_buffers());
    Batch batch;
    for (int i = 0; i < 64 * 3; ++i) batch.add({loopback4, b.port()}, 2, 100, 40);
    ASSERT_EQ(a.send(batch.span()).value(), 192u);
    if (a.gso()) {
        EXPECT_EQ(a.stats().messages_sent, 3u);
    }
    const std::vector<Got> got = receive_count(b, 192);
    ASSERT_EQ(got.size(), 192u);
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].bytes, batch.buffers[i]);
}

TEST(UdpSocket, send__without_gso_train_is_one_sendmmsg_of_41_datagrams) {
    UdpSocket::Options options;
    options.gso = false;
    options.gro = false;
    UdpSocket a = open_or_die(loopback4, options);
    UdpSocket b = open_or_die(loopback4, big_buffers(options));
    Batch batch;
    for (int i = 0; i < 40; ++i) batch.add({loopback4, b.port()}, 5, 1456);
    batch.add({loopback4, b.port()}, 5, 300);

    const Expected<std::size_t, int> sent = a.send(batch.span());
    ASSERT_TRUE(sent.has_value());
    EXPECT_EQ(sent.value(), 41u);
    EXPECT_EQ(a.stats().send_syscalls, 1u);
    EXPECT_EQ(a.stats().messages_sent, 41u);
    EXPECT_EQ(a.stats().gso_messages, 0u);

    const std::vector<Got> got = receive_count(b, 41);
    ASSERT_EQ(got.size(), 41u);
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].bytes, batch.buffers[i]);
    EXPECT_EQ(b.stats().datagrams_received, 41u);
    EXPECT_EQ(b.stats().gro_datagrams, 0u);
}

TEST(UdpSocket, send__gso_train_to_a_socket_without_gro_is_split_by_the_kernel) {
    UdpSocket a = open_or_die(loopback4);
    UdpSocket::Options options;
    options.gro = false;
    UdpSocket b = open_or_die(loopback4, big_buffers(options));
    Batch batch;
    for (int i = 0; i < 40; ++i) batch.add({loopback4, b.port()}, 1, 1456);
    ASSERT_EQ(a.send(batch.span()).value(), 40u);
    EXPECT_EQ(a.stats().gso_messages, 1u);
    const std::vector<Got> got = receive_count(b, 40);
    ASSERT_EQ(got.size(), 40u);
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].bytes, batch.buffers[i]);
    EXPECT_EQ(b.stats().datagrams_received, 40u);
}

TEST(UdpSocket, send__trains_break_on_destination_priority_and_larger_size) {
    UdpSocket a = open_or_die(loopback4);
    UdpSocket b = open_or_die(loopback4, big_buffers());
    UdpSocket c = open_or_die(loopback4, big_buffers());
    const Endpoint to_b{loopback4, b.port()};
    const Endpoint to_c{loopback4, c.port()};
    Batch batch;
    batch.add(to_b, 0, 1000);  // train 1: 3 packets
    batch.add(to_b, 0, 1000);
    batch.add(to_b, 0, 1000);
    batch.add(to_c, 0, 1000);  // train 2: other destination, 2 packets
    batch.add(to_c, 0, 1000);
    batch.add(to_c, 1, 1000);  // 3: other priority, alone (next is larger)
    batch.add(to_c, 1, 1200);  // 4: larger, starts a train with a shorter tail
    batch.add(to_c, 1, 500);   //    the tail ends it
    batch.add(to_c, 1, 500);   // 5: alone
    ASSERT_EQ(a.send(batch.span()).value(), 9u);
    EXPECT_EQ(a.stats().messages_sent, 5u);
    EXPECT_EQ(a.stats().gso_messages, 3u);
    EXPECT_EQ(receive_count(b, 3).size(), 3u);
    const std::vector<Got> got = receive_count(c, 6);
    ASSERT_EQ(got.size(), 6u);
    for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(got[i].bytes, batch.buffers[3 + i]);
}

TEST(UdpSocket, send__trains_are_capped_at_64_segments_and_65507_bytes) {
    UdpSocket a = open_or_die(loopback4);
    UdpSocket b = open_or_die(loopback4, big_buffers());
    Batch small;
    for (int i = 0; i < 100; ++i) small.add({loopback4, b.port()}, 2, 200);
    ASSERT_EQ(a.send(small.span()).value(), 100u);
    EXPECT_EQ(a.stats().messages_sent, 2u);  // 64 + 36
    EXPECT_EQ(receive_count(b, 100).size(), 100u);

    Batch large;
    for (int i = 0; i < 50; ++i) large.add({loopback4, b.port()}, 2, 1456);
    ASSERT_EQ(a.send(large.span()).value(), 50u);
    EXPECT_EQ(a.stats().messages_sent, 4u);  // 44 (64,064 B) + 6
    const std::vector<Got> got = receive_count(b, 50);
    ASSERT_EQ(got.size(), 50u);
    for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].bytes, large.buffers[i]);
}

TEST(UdpSocket, send__batch_limit_splits_sendmmsg_calls) {
    UdpSocket::Options options;
    options.batch = 8;
    options.gso = false;
    UdpSocket a = open_or_die(loopback4, options);
    UdpSocket b = open_or_die(loopback4, big_buffers(options));
    Batch batch;
    for (int i = 0; i < 20; ++i) batch.add({loopback4, b.port()}, 0, 100);
    ASSERT_EQ(a.send(batch.span()).value(), 20u);
    EXPECT_EQ(a.stats().send_syscalls, 3u);  // 8 + 8 + 4
    const std::vector<Got> got = receive_count(b, 20);
    ASSERT_EQ(got.size(), 20u);
    EXPECT_EQ(b.stats().receive_syscalls, 3u);  // recvmmsg takes up to 8 too
}

TEST(UdpSocket, send__empty_span_makes_no_syscall) {
    UdpSocket a = open_or_die(loopback4);
    const Expected<std::size_t, int> sent = a.send({});
    ASSERT_TRUE(sent.has_value());
    EXPECT_EQ(sent.value(), 0u);
    EXPECT_EQ(a.stats().send_syscalls, 0u);
}

TEST(UdpSocket, send__ipv4_mapped_peers_on_a_dual_stack_socket) {
    UdpSocket dual = open_or_die(any6, big_buffers());
    UdpSocket v4 = open_or_die(loopback4, big_buffers());
    EXPECT_EQ(dual.local_address(), any6);

    // IPv4 socket -> dual-stack socket: the source shows up IPv4-mapped.
    Batch to_dual;
    for (int i = 0; i < 5; ++i) to_dual.add({loopback4, dual.port()}, 6, 1200);
    to_dual.add({loopback4, dual.port()}, 2, 90);
    ASSERT_EQ(v4.send(to_dual.span()).value(), 6u);
    std::vector<Got> got = receive_count(dual, 6);
    ASSERT_EQ(got.size(), 6u);
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].bytes, to_dual.buffers[i]);
        EXPECT_EQ(got[i].source, loopback4);
        EXPECT_EQ(got[i].source_port, v4.port());
        EXPECT_EQ(got[i].tos, i < 5 ? 6u << 5 : 2u << 5);
    }
    EXPECT_EQ(dual.stats().gro_datagrams, 1u);

    // Dual-stack socket -> IPv4-mapped destination: IP_TOS and GSO still apply.
    Batch to_v4;
    for (int i = 0; i < 5; ++i) to_v4.add({loopback4, v4.port()}, 7, 1200);
    ASSERT_EQ(dual.send(to_v4.span()).value(), 5u);
    EXPECT_EQ(dual.stats().gso_messages, 1u);
    got = receive_count(v4, 5);
    ASSERT_EQ(got.size(), 5u);
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i].bytes, to_v4.buffers[i]);
        EXPECT_EQ(got[i].source, loopback4);
        EXPECT_EQ(got[i].source_port, dual.port());
        EXPECT_EQ(got[i].tos, 7u << 5);
    }

    // The dual-stack socket reaches IPv6 peers too.
    UdpSocket v6 = open_or_die(loopback6());
    Batch to_v6;
    to_v6.add({loopback6(), v6.port()}, 4, 500);
    ASSERT_EQ(dual.send(to_v6.span()).value(), 1u);
    got = receive_count(v6, 1);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].source, loopback6());
    EXPECT_EQ(got[0].tos, 4u << 5);
}

TEST(UdpSocket, send__ipv6_destination_on_an_ipv4_socket_is_refused) {
    UdpSocket a = open_or_die(loopback4);
    UdpSocket b = open_or_die(loopback4, big_buffers());
    Batch batch;
    batch.add({loopback4, b.port()}, 0, 100);
    batch.add({loopback6(), b.port()}, 0, 100);  // refused without a syscall
    batch.add({loopback4, b.port()}, 0, 100);
    ASSERT_EQ(a.send(batch.span()).value(), 3u);
    EXPECT_EQ(a.stats().packets_sent, 2u);
    EXPECT_EQ(a.stats().packets_refused, 1u);
    EXPECT_EQ(a.stats().last_send_error, EAFNOSUPPORT);
    const std::vector<Got> got = receive_count(b, 2);
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].bytes, batch.buffers[0]);
    EXPECT_EQ(got[1].bytes, batch.buffers[2]);
}

TEST(UdpSocket, send__packet_the_kernel_refuses_is_dropped_and_the_rest_sent) {
    for (const bool gso : {true, false}) {
        SCOPED_TRACE(gso ? "gso" : "no gso");
        UdpSocket::Options options;
        options.gso = gso;
        UdpSocket a = open_or_die(loopback4, options);
        UdpSocket b = open_or_die(loopback4, big_buffers());
        Batch batch;
        for (int i = 0; i < 3; ++i) batch.add({loopback4, b.port()}, 0, 1000);
        batch.add({loopback4, b.port()}, 0, 70'000);  // larger than any UDP datagram
        for (int i = 0; i < 3; ++i) batch.add({loopback4, b.port()}, 0, 1000);
        const Expected<std::size_t, int> sent = a.send(batch.span());
        ASSERT_TRUE(sent.has_value());
        EXPECT_EQ(sent.value(), 7u);
        EXPECT_EQ(a.stats().packets_sent, 6u);
        EXPECT_EQ(a.stats().packets_refused, 1u);
        EXPECT_EQ(a.stats().last_send_error, EMSGSIZE);
        const std::vector<Got> got = receive_count(b, 6);
        ASSERT_EQ(got.size(), 6u);
        for (std::size_t i = 0; i < 6; ++i) {
            EXPECT_EQ(got[i].bytes, batch.buffers[i < 3 ? i : i + 1]);
        }
    }
}

TEST(UdpSocket, send__stops_early_when_the_socket_buffer_is_full) {
    for (const int error : {EAGAIN, ENOBUFS}) {
        SCOPED_TRACE(error);
        UdpSocket a = open_or_die(loopback4);
        UdpSocket b = open_or_die(loopback4, big_buffers());
        Batch batch = varied_batch({loopback4, b.port()}, {loopback4, b.port()});
        const std::span<const Transmit> packets = batch.span();

        // The kernel takes the 41-packet train and 9 more messages, then
        // reports a full buffer.
        send_fault = {true, 10, error};
        const Expected<std::size_t, int> first = a.send(packets);
        send_fault = {};
        ASSERT_TRUE(first.has_value());
        EXPECT_GT(first.value(), 41u + 9u - 1u);
        EXPECT_LT(first.value(), 100u);
        EXPECT_EQ(a.stats().messages_sent, 10u);
        EXPECT_EQ(a.stats().packets_sent, first.value());
        EXPECT_EQ(a.stats().send_stalls, 1u);
        EXPECT_EQ(a.stats().packets_refused, 0u);

        // Nothing sent yet is consumed twice: the caller resends the rest.
        send_fault = {true, 0, error};
        const Expected<std::size_t, int> stalled = a.send(packets.subspan(first.value()));
        send_fault = {};
        ASSERT_TRUE(stalled.has_value());
        EXPECT_EQ(stalled.value(), 0u);

        const Expected<std::size_t, int> rest = a.send(packets.subspan(first.value()));
        ASSERT_TRUE(rest.has_value());
        EXPECT_EQ(first.value() + rest.value(), 100u);

        const std::vector<Got> got = receive_count(b, 100);
        ASSERT_EQ(got.size(), 100u);
        for (std::size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i].bytes, batch.buffers[i]);
        EXPECT_EQ(receive_nothing_more(b), 0u);
    }
}

TEST(UdpSocket, send__socket_failure_is_an_error_only_when_nothing_was_consumed) {
    UdpSocket a = open_or_die(loopback4);
    UdpSocket b = open_or_die(loopback4, big_buffers());
    Batch batch;
    for (int i = 0; i < 4; ++i)
        batch.add({loopback4, b.port()}, 0, 100 + static_cast<std::size_t>(i));

    send_fault = {true, 0, EBADF};
    const Expected<std::size_t, int> failed = a.send(batch.span());
    send_fault = {};
    ASSERT_FALSE(failed.has_value());
    EXPECT_EQ(failed.error(), EBADF);

    send_fault = {true, 2, EBADF};
    const Expected<std::size_t, int> partial = a.send(batch.span());
    send_fault = {};
    ASSERT_TRUE(partial.has_value());
    EXPECT_EQ(partial.value(), 2u);
    EXPECT_EQ(a.stats().packets_refused, 0u);
    EXPECT_EQ(receive_count(b, 2).size(), 2u);
}

TEST(UdpSocket, send__tiny_receive_buffer_drops_whole_packets_but_never_corrupts) {
    UdpSocket::Options options;
    options.gso = false;  // a GSO train would be accepted or dropped as one
    options.gro = false;
    UdpSocket a = open_or_die(loopback4, options);
    options.receive_buffer = 1;  // the kernel rounds up to its minimum (~2 KiB)
    UdpSocket b = open_or_die(loopback4, options);
    Batch batch;
    for (int i = 0; i < 500; ++i) batch.add({loopback4, b.port()}, 1, 1000);
    const std::span<const Transmit> packets = batch.span();

    // On loopback a full receiver drops; the sender is never told, so every
    // call consumes everything. Any early return must still add up.
    std::size_t consumed = 0;
    std::vector<Got> got;
    while (consumed < packets.size()) {
        const Expected<std::size_t, int> sent = a.send(packets.subspan(consumed, 50));
        ASSERT_TRUE(sent.has_value()) << std::strerror(sent.error());
        consumed += sent.value();
        const Expected<std::size_t, int> n = b.receive([&](const ReceivedPacket& p) {
            got.push_back({p.source, p.source_port, p.tos, {p.bytes.begin(), p.bytes.end()}});
        });
        ASSERT_TRUE(n.has_value());
    }
    EXPECT_EQ(consumed, 500u);
    EXPECT_EQ(a.stats().packets_sent, 500u);
    // Whatever is still queued (no waiting: some packets were dropped, so
    // there is no count to wait for).
    for (int calls = 0; calls < 1000; ++calls) {
        const Expected<std::size_t, int> n = b.receive([&](const ReceivedPacket& p) {
            got.push_back({p.source, p.source_port, p.tos, {p.bytes.begin(), p.bytes.end()}});
        });
        ASSERT_TRUE(n.has_value());
        if (n.value() == 0) break;
    }

    ASSERT_GT(got.size(), 0u);
    EXPECT_LT(got.size(), 500u);  // the tiny buffer did drop packets
    // What arrived is an in-order subsequence of what was sent, intact.
    std::size_t next = 0;
    for (const Got& packet : got) {
        while (next < batch.buffers.size() && batch.buffers[next] != packet.bytes) ++next;
        ASSERT_LT(next, batch.buffers.size()) << "corrupted, duplicated or reordered packet";
        ++next;
        EXPECT_EQ(packet.tos, 1u << 5);
    }
}

// --- receive --------------------------------------------------------------------

TEST(UdpSocket, receive__nothing_queued_returns_zero) {
    UdpSocket a = open_or_die(loopback4);
    const Expected<std::size_t, int> n = a.receive([](const ReceivedPacket&) { FAIL(); });
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(n.value(), 0u);
    EXPECT_EQ(a.receive([](const ReceivedPacket&) {}, 0).value(), 0u);
}

TEST(UdpSocket, receive__max_packets_splits_a_gro_train_across_calls) {
    UdpSocket a = open_or_die(loopback4);
    UdpSocket b = open_or_die(loopback4, big_buffers());
    Batch batch;
    for (int i = 0; i < 40; ++i) batch.add({loopback4, b.port()}, 0, 1456);
    batch.add({loopback4, b.port()}, 0, 20);
    batch.add({loopback4, b.port()}, 3, 64);  // a second datagram
    ASSERT_EQ(a.send(batch.span()).value(), 42u);

    // Wait until both datagrams are queued, then take 10 at a time.
    std::size_t index = 0;
    std::vector<std::span<const std::byte>> previous;
    std::vector<std::size_t> counts;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (index < 42 && std::chrono::steady_clock::now() < deadline) {
        // Packets of the previous call are still intact at the start of this one.
        for (std::size_t k = 0; k < previous.size(); ++k) {
            const std::vector<std::byte>& want = batch.buffers[index - previous.size() + k];
            ASSERT_TRUE(
                std::equal(previous[k].begin(), previous[k].end(), want.begin(), want.end()));
        }
        previous.clear();
        const Expected<std::size_t, int> n = b.receive(
            [&](const ReceivedPacket& p) {
                EXPECT_TRUE(std::equal(p.bytes.begin(), p.bytes.end(), batch.buffers[index].begin(),
                                       batch.buffers[index].end()))
                    << index;
                previous.push_back(p.bytes);
                ++index;
            },
            10);
        ASSERT_TRUE(n.has_value());
        if (n.value() > 0) counts.push_back(n.value());
    }
    EXPECT_EQ(index, 42u);
    // 41 segments of the train in 10+10+10+10+1, then the separate datagram.
    const std::vector<std::size_t> want_counts{10, 10, 10, 10, 1, 1};
    if (b.stats().receive_syscalls == 1) {
        // Both datagrams came with the first recvmmsg: no refill in between.
        EXPECT_EQ(counts, (std::vector<std::size_t>{10, 10, 10, 10, 2}));
    } else {
        EXPECT_EQ(counts, want_counts);
    }
    EXPECT_EQ(b.stats().gro_datagrams, 1u);
}

TEST(UdpSocket, receive__truncated_or_empty_datagrams_are_dropped_and_counted) {
    UdpSocket::Options options;
    options.gro = false;
    options.max_packet = 100;
    options.batch = 1;  // so the dropped datagrams fill whole recvmmsg calls
    UdpSocket b = open_or_die(loopback4, options);
    UdpSocket a = open_or_die(loopback4);
    Batch batch;
    batch.add({loopback4, b.port()}, 0, 101);  // truncated
    batch.add({loopback4, b.port()}, 0, 0);    // empty
    batch.add({loopback4, b.port()}, 0, 100);  // fits exactly
    ASSERT_EQ(a.send(batch.span()).value(), 3u);

    std::vector<Got> got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (got.empty() && std::chrono::steady_clock::now() < deadline) {
        const Expected<std::size_t, int> n = b.receive([&](const ReceivedPacket& p) {
            got.push_back({p.source, p.source_port, p.tos, {p.bytes.begin(), p.bytes.end()}});
        });
        ASSERT_TRUE(n.has_value());
    }
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].bytes, batch.buffers[2]);
    EXPECT_EQ(b.stats().datagrams_dropped, 2u);
    EXPECT_EQ(b.stats().datagrams_received, 3u);
}

TEST(UdpSocket, move__moved_socket_keeps_working) {
    UdpSocket a = open_or_die(loopback4);
    UdpSocket b = open_or_die(loopback4, big_buffers());
    UdpSocket moved(std::move(b));
    UdpSocket assigned = open_or_die(loopback4);
    assigned = std::move(moved);
    Batch batch;
    for (int i = 0; i < 3; ++i) batch.add({loopback4, assigned.port()}, 0, 1000);
    ASSERT_EQ(a.send(batch.span()).value(), 3u);
    const std::vector<Got> got = receive_count(assigned, 3);
    ASSERT_EQ(got.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(got[i].bytes, batch.buffers[i]);

    // A moved-from socket owns nothing and says so.
    EXPECT_EQ(b.fd(), -1);  // NOLINT(bugprone-use-after-move)
    const Expected<std::size_t, int> sent = b.send(batch.span());
    ASSERT_FALSE(sent.has_value());
    EXPECT_EQ(sent.error(), EBADF);
    const Expected<std::size_t, int> received = b.receive([](const ReceivedPacket&) {});
    ASSERT_FALSE(received.has_value());
    EXPECT_EQ(received.error(), EBADF);
}

}  // namespace
}  // namespace uhoma::driver
