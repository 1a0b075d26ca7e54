// Tests of tools/pcap/frame_builder and checksum: header fields, checksums
// (verified independently), priorities, VLAN tags and errors.
#include "pcap/frame_builder.h"

#include <gtest/gtest.h>

#include "pcap/checksum.h"
#include "tools_support.h"
#include "wire/priority.h"

namespace uhoma::pcap {
namespace {

using tools_test::ByteVector;
using tools_test::bytes;
using tools_test::encode;

unsigned at(const ByteVector& b, std::size_t i) { return static_cast<unsigned>(b[i]); }
unsigned at16(const ByteVector& b, std::size_t i) { return at(b, i) << 8 | at(b, i + 1); }

// The one's-complement sum of a correct header or datagram (with its
// checksum in place) is 0xFFFF, so the checksum of it comes out 0.
std::uint16_t checksum_of(std::initializer_list<wire::Bytes> parts) {
    InternetChecksum sum;
    for (wire::Bytes p : parts) sum.add(p);
    return sum.value();
}

FrameSpec udp_spec(bool v6) {
    FrameSpec s;
    s.source = v6 ? *parse_ip_address("fd00::1") : IpAddress::v4_from({192, 168, 1, 10});
    s.destination = v6 ? *parse_ip_address("fd00::2") : IpAddress::v4_from({192, 168, 1, 20});
    s.encapsulation = Encapsulation::udp;
    s.udp_source_port = 4000;
    s.udp_destination_port = 4001;
    s.priority = 6;
    return s;
}

const ByteVector homa = encode(wire::GrantPacket{wire::Header{40000, 99, 1235}, 60000, 2});

TEST(frame_builder, InternetChecksum__rfc1071_example) {
    // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
    InternetChecksum sum;
    sum.add(bytes({0x00, 0x01, 0xf2}));  // an odd split continues the word
    sum.add(bytes({0x03, 0xf4, 0xf5, 0xf6, 0xf7}));
    EXPECT_EQ(sum.value(), 0xFFFF - 0xddf2);
}

TEST(frame_builder, build_ip_packet__ipv4_header) {
    FrameSpec s = udp_spec(false);
    s.encapsulation = Encapsulation::ip;
    auto ip = build_ip_packet(s, homa);
    ASSERT_TRUE(ip);
    ASSERT_EQ(ip->size(), 20 + homa.size());
    EXPECT_EQ(at(*ip, 0), 0x45u);
    EXPECT_EQ(at(*ip, 1), wire::tos_for_priority(6));
    EXPECT_EQ(at(*ip, 1), 0xC0u);
    EXPECT_EQ(at16(*ip, 2), ip->size());
    EXPECT_EQ(at16(*ip, 6), 0x4000u);  // DF
    EXPECT_EQ(at(*ip, 8), 64u);
    EXPECT_EQ(at(*ip, 9), 146u);
    EXPECT_EQ(checksum_of({wire::Bytes(*ip).first(20)}), 0);
    EXPECT_NE(at16(*ip, 10), 0u);
    EXPECT_EQ(at(*ip, 12), 192u);
    EXPECT_EQ(at(*ip, 19), 20u);
    EXPECT_TRUE(std::equal(ip->begin() + 20, ip->end(), homa.begin(), homa.end()));
}

TEST(frame_builder, build_ip_packet__ipv4_udp_checksum) {
    const FrameSpec s = udp_spec(false);
    auto ip = build_ip_packet(s, homa);
    ASSERT_TRUE(ip);
    EXPECT_EQ(at(*ip, 9), 17u);
    EXPECT_EQ(at16(*ip, 20), 4000u);
    EXPECT_EQ(at16(*ip, 22), 4001u);
    EXPECT_EQ(at16(*ip, 24), 8 + homa.size());
    const wire::Bytes datagram = wire::Bytes(*ip).subspan(20);
    const ByteVector pseudo = bytes({192, 168, 1, 10, 192, 168, 1, 20, 0, 17, 0,
                                     static_cast<unsigned>(datagram.size())});
    EXPECT_EQ(checksum_of({pseudo, datagram}), 0);
}

TEST(frame_builder, build_ip_packet__ipv6_udp_checksum_is_computed) {
    const FrameSpec s = udp_spec(true);
    auto ip = build_ip_packet(s, homa);
    ASSERT_TRUE(ip);
    ASSERT_EQ(ip->size(), 40 + 8 + homa.size());
    EXPECT_EQ(at(*ip, 0) >> 4, 6u);
    // Traffic class straddles bytes 0 and 1.
    EXPECT_EQ(((at(*ip, 0) & 0xF) << 4) | (at(*ip, 1) >> 4), wire::tos_for_priority(6));
    EXPECT_EQ(at16(*ip, 4), 8 + homa.size());
    EXPECT_EQ(at(*ip, 6), 17u);
    EXPECT_EQ(at(*ip, 7), 64u);
    EXPECT_NE(at16(*ip, 46), 0u);
    ByteVector pseudo(ip->begin() + 8, ip->begin() + 40);  // both addresses
    const ByteVector tail = bytes({0, 0, 0, static_cast<unsigned>(8 + homa.size()), 0, 0, 0, 17});
    pseudo.insert(pseudo.end(), tail.begin(), tail.end());
    EXPECT_EQ(checksum_of({pseudo, wire::Bytes(*ip).subspan(40)}), 0);
}

TEST(frame_builder, build_ip_packet__hijacked_tcp_carries_homa_unchanged) {
    FrameSpec s = udp_spec(false);
    s.encapsulation = Encapsulation::tcp;
    auto ip = build_ip_packet(s, homa);
    ASSERT_TRUE(ip);
    EXPECT_EQ(at(*ip, 9), 6u);
    EXPECT_EQ(at(*ip, 20 + 13), 0x06u);
    EXPECT_EQ(at16(*ip, 20 + 18), 0xB97Du);
}

TEST(frame_builder, build_ip_packet__every_priority_lands_in_the_top_three_bits) {
    for (std::uint8_t p = 0; p < 8; ++p) {
        FrameSpec s = udp_spec(false);
        s.priority = p;
        auto ip = build_ip_packet(s, homa);
        ASSERT_TRUE(ip);
        EXPECT_EQ(at(*ip, 1), p * 32u);
    }
}

TEST(frame_builder, build_ip_packet__errors) {
    FrameSpec mixed = udp_spec(false);
    mixed.destination = *parse_ip_address("fd00::2");
    EXPECT_EQ(build_ip_packet(mixed, homa).error(), BuildError::mixed_families);
    const ByteVector huge(65535 - 20 - 8 + 1);
    EXPECT_EQ(build_ip_packet(udp_spec(false), huge).error(), BuildError::too_long);
    EXPECT_TRUE(build_ip_packet(udp_spec(false), ByteVector(65535 - 20 - 8)));
    // IPv6's payload length leaves the 40-byte header out.
    EXPECT_TRUE(build_ip_packet(udp_spec(true), huge));
    EXPECT_EQ(build_ip_packet(udp_spec(true), ByteVector(65535 - 8 + 1)).error(),
              BuildError::too_long);
    EXPECT_TRUE(build_ip_packet(udp_spec(true), ByteVector(65535 - 8)));
    EXPECT_STREQ(build_error_name(BuildError::too_long), "too_long");
}

TEST(frame_builder, build_ethernet_frame__header_and_vlan_tags) {
    FrameSpec s = udp_spec(false);
    auto plain = build_ethernet_frame(s, homa);
    ASSERT_TRUE(plain);
    EXPECT_EQ(at16(*plain, 12), 0x0800u);
    EXPECT_EQ(at(*plain, 5), 20u);   // destination MAC ends in the address's last byte
    EXPECT_EQ(at(*plain, 11), 10u);  // source MAC
    s.vlan_ids = {100};
    auto one = build_ethernet_frame(s, homa);
    ASSERT_TRUE(one);
    EXPECT_EQ(at16(*one, 12), 0x8100u);
    EXPECT_EQ(at16(*one, 14), 100u);
    EXPECT_EQ(at16(*one, 16), 0x0800u);
    s.vlan_ids = {100, 200};
    auto two = build_ethernet_frame(s, homa);
    ASSERT_TRUE(two);
    EXPECT_EQ(at16(*two, 12), 0x88A8u);
    EXPECT_EQ(at16(*two, 16), 0x8100u);
    EXPECT_EQ(at16(*two, 18), 200u);
    EXPECT_EQ(at16(*two, 20), 0x0800u);
    s.vlan_ids = {1, 2, 3};
    EXPECT_EQ(build_ethernet_frame(s, homa).error(), BuildError::too_many_tags);
    s.vlan_ids = {4096};
    EXPECT_EQ(build_ethernet_frame(s, homa).error(), BuildError::bad_vlan_id);
    FrameSpec v6 = udp_spec(true);
    auto six = build_ethernet_frame(v6, homa);
    ASSERT_TRUE(six);
    EXPECT_EQ(at16(*six, 12), 0x86DDu);
}

}  // namespace
}  // namespace uhoma::pcap
