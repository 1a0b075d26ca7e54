#include "driver/raw_socket.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "wire/priority.h"

namespace uhoma::driver {
namespace {

using engine::Address;
using engine::Endpoint;
using engine::Transmit;

// Raw protocol-146 sockets see every Homa packet in the network namespace,
// so each test uses its own port numbers (CTest may run tests in parallel),
// and every packet carries this process's id: packets of another copy of
// this binary running at the same time (another build directory) are
// ignored.
std::uint32_t nonce() {
    return static_cast<std::uint32_t>(getpid());
}

const Address loopback4 = Address::ipv4(127, 0, 0, 1);
Address loopback6() {
    Address a;
    a.bytes[15] = 1;
    return a;
}

#define REQUIRE_ROOT()                                                                   \
    do {                                                                                 \
        if (geteuid() != 0) {                                                            \
            GTEST_SKIP() << "raw IP sockets need CAP_NET_RAW; run the tests as root to " \
                            "cover RawSocket";                                           \
        }                                                                                \
    } while (false)

// A Homa-shaped packet: sport, dport (big-endian, offsets 0 and 2), a
// serial number, the nonce, then seeded bytes. The driver reads only the
// dport.
std::vector<std::byte> make_packet(std::uint16_t dport, std::uint32_t serial, std::size_t size) {
    std::vector<std::byte> bytes(size);
    std::mt19937 random(serial);
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<std::byte>(random());
    if (size >= 4) {
        bytes[0] = std::byte{0x9c};
        bytes[1] = std::byte{0x40};
        bytes[2] = static_cast<std::byte>(dport >> 8);
        bytes[3] = static_cast<std::byte>(dport);
    }
    for (std::size_t i = 4; i < 8 && i < size; ++i) {
        bytes[i] = static_cast<std::byte>(serial >> (8 * (7 - i)));
    }
    for (std::size_t i = 8; i < 12 && i < size; ++i) {
        bytes[i] = static_cast<std::byte>(nonce() >> (8 * (11 - i)));
    }
    return bytes;
}

bool is_ours(std::span<const std::byte> bytes) {
    if (bytes.size() < 12) return true;  // too short to tell: count it
    std::uint32_t value = 0;
    for (std::size_t i = 8; i < 12; ++i) value = value << 8 | static_cast<std::uint32_t>(bytes[i]);
    return value == nonce();
}

struct Got {
    Address source;
    std::uint16_t source_port = 0;
    std::uint8_t tos = 0;
    std::vector<std::byte> bytes;
};

// Owns the bytes behind a list of Transmits, each handed over as the
// engine does: a header (the first 56 bytes, or all of a shorter packet)
// and a payload (the rest), which the driver gathers into one datagram.
struct Batch {
    std::vector<std::vector<std::byte>> buffers;
    std::vector<Transmit> packets;

    void add(const Address& to, std::uint16_t dport, std::uint8_t priority, std::size_t size) {
        buffers.push_back(make_packet(dport, static_cast<std::uint32_t>(buffers.size()), size));
        packets.push_back(Transmit{{to, dport}, priority, {}, {}, nullptr});
    }
    std::span<const Transmit> span() {
        for (std::size_t i = 0; i < packets.size(); ++i) {
            const std::span<const std::byte> bytes = buffers[i];
            const std::size_t split = std::min<std::size_t>(56, bytes.size());
            packets[i].header = bytes.first(split);
            packets[i].payload = bytes.subspan(split);
        }
        return packets;
    }
};

// Receives until a packet equal to `sentinel` arrives (everything sent
// before it on loopback has then been filtered), or 5 s pass.
std::vector<Got> receive_through(RawSocket& socket, const std::vector<std::byte>& sentinel) {
    std::vector<Got> got;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while ((got.empty() || got.back().bytes != sentinel) &&
           std::chrono::steady_clock::now() < deadline) {
        const Expected<std::size_t, int> n = socket.receive([&](const ReceivedPacket& p) {
            if (!is_ours(p.bytes)) return;
            got.push_back({p.source, p.source_port, p.tos, {p.bytes.begin(), p.bytes.end()}});
        });
        EXPECT_TRUE(n.has_value());
        if (!n) break;
        if (n.value() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return got;
}

RawSocket open_or_die(const Address& local, std::vector<std::uint16_t> ports) {
    Expected<RawSocket, int> socket = RawSocket::open(local, ports);
    if (!socket) {
        ADD_FAILURE() << "RawSocket::open: " << std::strerror(socket.error());
        std::abort();
    }
    return std::move(socket).value();
}

// Two receivers with different port sets and a sender that listens to no
// port: each receiver gets exactly its own packets, intact, with their TOS.
void check_filter(const Address& local, std::uint16_t base) {
    const std::uint16_t b1 = base, b2 = static_cast<std::uint16_t>(base + 1);
    const std::uint16_t c1 = static_cast<std::uint16_t>(base + 2);
    const std::uint16_t nobody = static_cast<std::uint16_t>(base + 3);
    RawSocket a = open_or_die(local, {});
    RawSocket b = open_or_die(local, {b1, b2});
    RawSocket c = open_or_die(local, {c1});

    Batch batch;
    std::mt19937 random(7);
    const std::uint16_t ports[] = {b1, b2, c1, nobody};
    for (int i = 0; i < 60; ++i) {
        batch.add(local, ports[random() % 4], static_cast<std::uint8_t>(random() % 8),
                  28 + random() % 1400);
    }
    batch.add(local, b1, 7, 100);  // sentinels
    batch.add(local, c1, 0, 100);
    const Expected<std::size_t, int> sent = a.send(batch.span());
    ASSERT_TRUE(sent.has_value()) << std::strerror(sent.error());
    EXPECT_EQ(sent.value(), batch.packets.size());
    EXPECT_EQ(a.stats().send_syscalls, 1u);
    EXPECT_EQ(a.stats().packets_sent, batch.packets.size());

    for (RawSocket* receiver : {&b, &c}) {
        std::vector<std::size_t> expected;
        for (std::size_t i = 0; i < batch.packets.size(); ++i) {
            const std::uint16_t port = batch.packets[i].destination.port;
            for (const std::uint16_t own : receiver->ports()) {
                if (port == own) expected.push_back(i);
            }
        }
        const std::vector<Got> got = receive_through(*receiver, batch.buffers[expected.back()]);
        ASSERT_EQ(got.size(), expected.size());
        for (std::size_t k = 0; k < got.size(); ++k) {
            const std::size_t i = expected[k];
            EXPECT_EQ(got[k].bytes, batch.buffers[i]) << "packet " << i;
            EXPECT_EQ(got[k].source, local);
            EXPECT_EQ(got[k].source_port, 0);
            EXPECT_EQ(got[k].tos, wire::tos_for_priority(batch.packets[i].priority));
        }
        EXPECT_EQ(receiver->stats().datagrams_dropped, 0u);
    }
    // The sender's own socket (no ports) saw none of it.
    std::size_t stray = 0;
    ASSERT_TRUE(a.receive([&](const ReceivedPacket&) { ++stray; }).has_value());  // any process's
    EXPECT_EQ(stray, 0u);
}

TEST(RawSocket, open__without_cap_net_raw_is_eperm) {
    // Root or not: the child drops every capability before it tries.
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        // Drop every capability, then try.
        __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[2] = {};
        if (syscall(SYS_capset, &header, data) != 0) _exit(2);
        const Expected<RawSocket, int> socket = RawSocket::open(loopback4, {});
        _exit(!socket.has_value() && socket.error() == EPERM ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(RawSocket, open__invalid_options_are_einval) {
    // Checked before the socket is made: no privileges needed.
    const std::vector<std::uint16_t> ports(RawSocket::max_ports + 1, 80);
    Expected<RawSocket, int> socket = RawSocket::open(loopback4, ports);
    ASSERT_FALSE(socket.has_value());
    EXPECT_EQ(socket.error(), EINVAL);
    RawSocket::Options options;
    options.batch = 0;
    socket = RawSocket::open(loopback4, {}, options);
    ASSERT_FALSE(socket.has_value());
    EXPECT_EQ(socket.error(), EINVAL);
}

TEST(RawSocket, receive__filter_delivers_only_own_ports_ipv4) {
    REQUIRE_ROOT();
    check_filter(loopback4, 41000);
}

TEST(RawSocket, receive__filter_delivers_only_own_ports_ipv6) {
    REQUIRE_ROOT();
    check_filter(loopback6(), 41100);
}

TEST(RawSocket, set_ports__replaces_the_filter) {
    REQUIRE_ROOT();
    RawSocket a = open_or_die(loopback4, {});
    RawSocket b = open_or_die(loopback4, {41200});
    Batch first;
    first.add(loopback4, 41201, 1, 200);  // not b's (yet)
    first.add(loopback4, 41200, 1, 200);
    ASSERT_EQ(a.send(first.span()).value(), 2u);
    std::vector<Got> got = receive_through(b, first.buffers[1]);
    ASSERT_EQ(got.size(), 1u);

    const std::vector<std::uint16_t> ports{41201};
    ASSERT_TRUE(b.set_ports(ports).has_value());
    EXPECT_EQ(std::vector<std::uint16_t>(b.ports().begin(), b.ports().end()), ports);
    Batch second;
    second.add(loopback4, 41200, 1, 200);  // no longer b's
    second.add(loopback4, 41201, 1, 200);
    ASSERT_EQ(a.send(second.span()).value(), 2u);
    got = receive_through(b, second.buffers[1]);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].bytes, second.buffers[1]);

    const std::vector<std::uint16_t> too_many(RawSocket::max_ports + 1, 1);
    const Expected<bool, int> rejected = b.set_ports(too_many);
    ASSERT_FALSE(rejected.has_value());
    EXPECT_EQ(rejected.error(), EINVAL);
    EXPECT_EQ(b.ports().size(), 1u);  // unchanged
}

TEST(RawSocket, receive__packets_too_short_for_a_port_are_filtered) {
    REQUIRE_ROOT();
    RawSocket a = open_or_die(loopback4, {});
    // Listening to port 0 too: a load past the end must drop, not read 0.
    RawSocket b = open_or_die(loopback4, {0, 41300});
    Batch batch;
    batch.add(loopback4, 41300, 0, 3);  // too short to hold a dport at all
    batch.add(loopback4, 41300, 0, 1);
    batch.add(loopback4, 41300, 0, 40);
    ASSERT_EQ(a.send(batch.span()).value(), 3u);
    const std::vector<Got> got = receive_through(b, batch.buffers[2]);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].bytes, batch.buffers[2]);
}

TEST(RawSocket, send__destination_of_the_other_family_is_refused) {
    REQUIRE_ROOT();
    RawSocket a = open_or_die(loopback6(), {});
    RawSocket b = open_or_die(loopback6(), {41400});
    Batch batch;
    batch.add(loopback4, 41400, 0, 100);  // IPv4 peer on an IPv6 raw socket
    batch.add(loopback6(), 41400, 0, 100);
    const Expected<std::size_t, int> sent = a.send(batch.span());
    ASSERT_TRUE(sent.has_value());
    EXPECT_EQ(sent.value(), 2u);
    EXPECT_EQ(a.stats().packets_sent, 1u);
    EXPECT_EQ(a.stats().packets_refused, 1u);
    const std::vector<Got> got = receive_through(b, batch.buffers[1]);
    ASSERT_EQ(got.size(), 1u);
}

}  // namespace
}  // namespace uhoma::driver
