#include "runtime/channel.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>
#include <vector>

namespace uhoma::runtime {
namespace {

using engine::Address;
using engine::Endpoint;
using engine::Transmit;

#define REQUIRE_ROOT()                                                                 \
    do {                                                                               \
        if (geteuid() != 0) GTEST_SKIP() << "raw IP sockets need CAP_NET_RAW (root)"; \
    } while (false)

ChannelOptions udp_options() { return ChannelOptions{}; }
ChannelOptions raw_options(bool ipv6 = false) {
    ChannelOptions o;
    o.driver = DriverKind::raw;
    o.ipv6 = ipv6;
    return o;
}

// A Homa-shaped packet: sport, dport (big-endian) then a marker byte and
// this process's pid, so packets of a concurrent copy of the test are not
// mistaken for ours (raw sockets see every Homa packet on the host).
std::vector<std::byte> packet(std::uint16_t sport, std::uint16_t dport, std::uint8_t marker) {
    std::vector<std::byte> bytes(40, std::byte{0});
    bytes[0] = static_cast<std::byte>(sport >> 8);
    bytes[1] = static_cast<std::byte>(sport);
    bytes[2] = static_cast<std::byte>(dport >> 8);
    bytes[3] = static_cast<std::byte>(dport);
    bytes[4] = std::byte{marker};
    const auto pid = static_cast<std::uint32_t>(::getpid());
    for (int i = 0; i < 4; ++i) bytes[5 + static_cast<std::size_t>(i)] = static_cast<std::byte>(pid >> (8 * i));
    return bytes;
}

bool ours(std::span<const std::byte> bytes) {
    if (bytes.size() < 9) return false;
    std::uint32_t pid = 0;
    for (int i = 0; i < 4; ++i) pid |= std::to_integer<std::uint32_t>(bytes[5 + static_cast<std::size_t>(i)]) << (8 * i);
    return pid == static_cast<std::uint32_t>(::getpid());
}

// Markers of our packets that arrive on `channel` within about a second.
std::vector<std::uint8_t> receive_markers(Channel& channel, std::size_t expected) {
    std::vector<std::uint8_t> markers;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (markers.size() < expected && std::chrono::steady_clock::now() < end) {
        auto got = channel.receive([&](const driver::ReceivedPacket& p) {
            if (ours(p.bytes)) markers.push_back(std::to_integer<std::uint8_t>(p.bytes[4]));
        });
        EXPECT_TRUE(got.has_value());
        if (got && *got == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return markers;
}

Endpoint endpoint(const Address& address, std::uint16_t port) {
    Endpoint e;
    e.address = address;
    e.port = port;
    return e;
}

// `bytes` handed over as the engine hands over DATA: a header part and a
// payload part, which the driver must gather into one datagram. The default
// split falls inside the pid, so a packet whose parts were not joined (or
// joined out of order) is not recognised as ours.
Transmit split(const Endpoint& to, std::uint8_t priority, std::span<const std::byte> bytes,
               std::size_t header = 7) {
    return Transmit{to, priority, bytes.first(header), bytes.subspan(header), nullptr};
}

// Bytes of our packets that arrive on `channel` within about a second.
std::vector<std::vector<std::byte>> receive_packets(Channel& channel, std::size_t expected) {
    std::vector<std::vector<std::byte>> packets;
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (packets.size() < expected && std::chrono::steady_clock::now() < end) {
        auto got = channel.receive([&](const driver::ReceivedPacket& p) {
            if (ours(p.bytes)) packets.emplace_back(p.bytes.begin(), p.bytes.end());
        });
        EXPECT_TRUE(got.has_value());
        if (got && *got == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return packets;
}

// A 1,000-byte packet: packet() followed by a counting pattern.
std::vector<std::byte> long_packet(std::uint16_t sport, std::uint16_t dport, std::uint8_t marker) {
    std::vector<std::byte> bytes = packet(sport, dport, marker);
    while (bytes.size() < 1000) bytes.push_back(static_cast<std::byte>(bytes.size() * 7));
    return bytes;
}

Address loopback6() {
    Address a;
    a.bytes[15] = 1;
    return a;
}

TEST(Channel, open__udp_client_gets_an_ephemeral_port) {
    auto channel = Channel::open(0, udp_options());
    ASSERT_TRUE(channel.has_value()) << channel.error();
    EXPECT_NE((*channel)->port(), 0);
    EXPECT_EQ((*channel)->fds().size(), 1u);
}

TEST(Channel, open__udp_server_port_taken_is_eaddrinuse) {
    auto first = Channel::open(0, udp_options());
    ASSERT_TRUE(first.has_value());
    // A client port is as taken as a server port.
    auto second = Channel::open((*first)->port(), udp_options());
    ASSERT_FALSE(second.has_value());
    EXPECT_EQ(second.error(), EADDRINUSE);
}

TEST(Channel, send_receive__udp_loopback) {
    auto a = Channel::open(0, udp_options());
    auto b = Channel::open(0, udp_options());
    ASSERT_TRUE(a && b);
    const auto bytes = packet((*a)->port(), (*b)->port(), 7);
    const Transmit tx = split(endpoint(Address::ipv4(127, 0, 0, 1), (*b)->port()), 3, bytes);
    auto sent = (*a)->send(std::span(&tx, 1));
    ASSERT_TRUE(sent.has_value());
    EXPECT_EQ(*sent, 1u);
    EXPECT_EQ(receive_markers(**b, 1), std::vector<std::uint8_t>{7});
}

TEST(Channel, send__udp_gathers_header_and_payload_into_one_datagram) {
    auto a = Channel::open(0, udp_options());
    auto b = Channel::open(0, udp_options());
    ASSERT_TRUE(a && b);
    const Endpoint to_b = endpoint(Address::ipv4(127, 0, 0, 1), (*b)->port());
    const auto first = long_packet((*a)->port(), (*b)->port(), 1);
    const auto second = long_packet((*a)->port(), (*b)->port(), 2);
    const auto control = packet((*a)->port(), (*b)->port(), 3);
    const Transmit txs[] = {split(to_b, 0, first, 56), split(to_b, 0, second, 56),
                            split(to_b, 0, control, control.size())};
    auto sent = (*a)->send(txs);
    ASSERT_TRUE(sent.has_value());
    EXPECT_EQ(*sent, 3u);
    EXPECT_EQ(receive_packets(**b, 3),
              (std::vector<std::vector<std::byte>>{first, second, control}));
}

TEST(Channel, open__raw_reserves_its_port_against_udp_and_raw) {
    REQUIRE_ROOT();
    auto raw = Channel::open(0, raw_options());
    ASSERT_TRUE(raw.has_value()) << raw.error();
    const std::uint16_t port = (*raw)->port();
    EXPECT_GE(port, 1024);
    auto again = Channel::open(port, raw_options());
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error(), EADDRINUSE);
    auto udp = Channel::open(port, udp_options());
    ASSERT_FALSE(udp.has_value());
    EXPECT_EQ(udp.error(), EADDRINUSE);
    raw->reset();  // closing releases the reservation
    auto after = Channel::open(port, raw_options());
    EXPECT_TRUE(after.has_value()) << after.error();
}

TEST(Channel, receive__raw_delivers_only_packets_for_its_port) {
    REQUIRE_ROOT();
    auto a = Channel::open(0, raw_options());
    auto b = Channel::open(0, raw_options());
    ASSERT_TRUE(a && b);
    const auto to_b = packet((*a)->port(), (*b)->port(), 1);
    const auto to_a = packet((*b)->port(), (*a)->port(), 2);
    const Transmit txs[] = {split(endpoint(Address::ipv4(127, 0, 0, 1), 0), 0, to_b),
                            split(endpoint(Address::ipv4(127, 0, 0, 1), 0), 7, to_a)};
    auto sent = (*a)->send(txs);
    ASSERT_TRUE(sent.has_value());
    EXPECT_EQ(*sent, 2u);
    EXPECT_EQ(receive_markers(**b, 1), std::vector<std::uint8_t>{1});
    EXPECT_EQ(receive_markers(**a, 1), std::vector<std::uint8_t>{2});
    // Nothing else arrived for either (no copy of the other's packet).
    EXPECT_TRUE(receive_markers(**b, 1).empty());
    EXPECT_EQ((*b)->stats().packets_refused, 0u);
}

TEST(Channel, send__raw_dual_stack_routes_each_family_to_its_socket) {
    REQUIRE_ROOT();
    auto a = Channel::open(0, raw_options(true));
    auto b = Channel::open(0, raw_options(true));
    ASSERT_TRUE(a && b);
    EXPECT_EQ((*a)->fds().size(), 2u);
    const auto p4 = packet((*a)->port(), (*b)->port(), 4);
    const auto p6 = packet((*a)->port(), (*b)->port(), 6);
    const Transmit txs[] = {split(endpoint(Address::ipv4(127, 0, 0, 1), 0), 0, p4),
                            split(endpoint(loopback6(), 0), 0, p6)};
    auto sent = (*a)->send(txs);
    ASSERT_TRUE(sent.has_value());
    EXPECT_EQ(*sent, 2u);
    auto markers = receive_markers(**b, 2);
    std::sort(markers.begin(), markers.end());
    EXPECT_EQ(markers, (std::vector<std::uint8_t>{4, 6}));
    EXPECT_EQ((*a)->stats().packets_refused, 0u);
}

TEST(Channel, send__raw_ipv4_only_refuses_ipv6_destinations) {
    REQUIRE_ROOT();
    auto a = Channel::open(0, raw_options(false));
    ASSERT_TRUE(a.has_value());
    const auto p6 = packet((*a)->port(), 1, 6);
    const Transmit tx = split(endpoint(loopback6(), 0), 0, p6);
    auto sent = (*a)->send(std::span(&tx, 1));
    ASSERT_TRUE(sent.has_value());
    EXPECT_EQ(*sent, 1u);  // consumed: refused for good and counted
    EXPECT_EQ((*a)->stats().packets_refused, 1u);
    EXPECT_EQ((*a)->stats().last_send_error, EAFNOSUPPORT);
}

TEST(Channel, send__raw_gathers_header_and_payload_into_one_datagram) {
    REQUIRE_ROOT();
    for (const bool ipv6 : {false, true}) {
        SCOPED_TRACE(ipv6 ? "IPv6" : "IPv4");
        auto a = Channel::open(0, raw_options(true));
        auto b = Channel::open(0, raw_options(true));
        ASSERT_TRUE(a && b);
        const Endpoint to_b = endpoint(ipv6 ? loopback6() : Address::ipv4(127, 0, 0, 1), 0);
        const auto data = long_packet((*a)->port(), (*b)->port(), 1);
        const auto control = packet((*a)->port(), (*b)->port(), 2);
        const Transmit txs[] = {split(to_b, 2, data, 56), split(to_b, 7, control, control.size())};
        auto sent = (*a)->send(txs);
        ASSERT_TRUE(sent.has_value());
        EXPECT_EQ(*sent, 2u);
        EXPECT_EQ(receive_packets(**b, 2), (std::vector<std::vector<std::byte>>{data, control}));
        EXPECT_EQ((*a)->stats().packets_refused, 0u);
    }
}

}  // namespace
}  // namespace uhoma::runtime
