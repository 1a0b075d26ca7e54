// Tests of tools/pcap/frame: decapsulation of every link type, IPv4 options
// and fragments, IPv6 extension headers, UDP port matching, hijacked TCP,
// truncation and malformed headers, and robustness on mangled input.
#include "pcap/frame.h"

#include <gtest/gtest.h>

#include <random>

#include "pcap/frame_builder.h"
#include "tools_support.h"
#include "wire/codec.h"

namespace uhoma::pcap {
namespace {

using tools_test::ByteVector;
using tools_test::bytes;
using tools_test::concat;
using tools_test::encode;

const IpAddress client4 = IpAddress::v4_from({10, 0, 0, 1});
const IpAddress server4 = IpAddress::v4_from({10, 0, 0, 2});
const IpAddress client6 = *parse_ip_address("fd00::1");
const IpAddress server6 = *parse_ip_address("fd00::2");

PortSet udp_4000() { return *parse_port_list("4000"); }

ByteVector grant_bytes() {
    return encode(wire::GrantPacket{wire::Header{40000, 99, 1235}, 60000, 2});
}

FrameSpec spec(bool v6, Encapsulation e = Encapsulation::ip, std::uint8_t priority = 5) {
    FrameSpec s;
    s.source = v6 ? client6 : client4;
    s.destination = v6 ? server6 : server4;
    s.encapsulation = e;
    s.priority = priority;
    if (e == Encapsulation::udp) {
        s.udp_source_port = 33000;
        s.udp_destination_port = 4000;
    }
    return s;
}

ByteVector ip_packet(const FrameSpec& s, const ByteVector& homa) {
    auto built = build_ip_packet(s, homa);
    EXPECT_TRUE(built);
    return built ? *built : ByteVector{};
}

ByteVector ethernet(const FrameSpec& s, const ByteVector& homa) {
    auto built = build_ethernet_frame(s, homa);
    EXPECT_TRUE(built);
    return built ? *built : ByteVector{};
}

// Checks that `frame` decapsulates to `homa` with the spec's addresses.
void expect_homa(LinkType link, const ByteVector& frame, const FrameSpec& s,
                 const ByteVector& homa) {
    auto got = decapsulate(link, frame, udp_4000());
    ASSERT_TRUE(got) << frame_error_name(got.error());
    EXPECT_EQ(got->source, s.source);
    EXPECT_EQ(got->destination, s.destination);
    EXPECT_EQ(got->encapsulation, s.encapsulation);
    EXPECT_EQ(got->priority(), s.priority);
    EXPECT_EQ(got->homa_length, homa.size());
    EXPECT_FALSE(got->truncated());
    EXPECT_TRUE(std::equal(got->homa.begin(), got->homa.end(), homa.begin(), homa.end()));
    ASSERT_TRUE(got->homa_ports);
    EXPECT_EQ(got->homa_ports->source, 40000);
    EXPECT_EQ(got->homa_ports->destination, 99);
}

std::optional<FrameError> error_of(LinkType link, const ByteVector& frame,
                                   const PortSet& ports = udp_4000()) {
    auto got = decapsulate(link, frame, ports);
    if (got) return std::nullopt;
    return got.error();
}

// --- Link types -------------------------------------------------------------

TEST(frame, link_type_from_dlt__maps_supported_types) {
    EXPECT_EQ(link_type_from_dlt(1), LinkType::ethernet);
    EXPECT_EQ(link_type_from_dlt(12), LinkType::raw_ip);
    EXPECT_EQ(link_type_from_dlt(14), LinkType::raw_ip);
    EXPECT_EQ(link_type_from_dlt(101), LinkType::raw_ip);
    EXPECT_EQ(link_type_from_dlt(113), LinkType::linux_sll);
    EXPECT_EQ(link_type_from_dlt(276), LinkType::linux_sll2);
    EXPECT_EQ(link_type_from_dlt(0), LinkType::null);
    EXPECT_EQ(link_type_from_dlt(108), LinkType::loop);
    EXPECT_EQ(link_type_from_dlt(105), std::nullopt);  // 802.11
    EXPECT_EQ(link_type_from_dlt(-1), std::nullopt);
}

TEST(frame, decapsulate__ethernet_raw_ipv4_and_ipv6) {
    const ByteVector homa = grant_bytes();
    for (bool v6 : {false, true}) {
        SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
        expect_homa(LinkType::ethernet, ethernet(spec(v6), homa), spec(v6), homa);
    }
}

TEST(frame, decapsulate__ethernet_udp_ipv4_and_ipv6) {
    const ByteVector homa = grant_bytes();
    for (bool v6 : {false, true}) {
        SCOPED_TRACE(v6 ? "IPv6" : "IPv4");
        const FrameSpec s = spec(v6, Encapsulation::udp);
        auto got = decapsulate(LinkType::ethernet, ethernet(s, homa), udp_4000());
        ASSERT_TRUE(got);
        EXPECT_EQ(got->udp_source_port, 33000);
        EXPECT_EQ(got->udp_destination_port, 4000);
        expect_homa(LinkType::ethernet, ethernet(s, homa), s, homa);
    }
}

TEST(frame, decapsulate__udp_matches_source_or_destination_port) {
    const ByteVector homa = grant_bytes();
    FrameSpec s = spec(false, Encapsulation::udp);
    s.udp_source_port = 4000;
    s.udp_destination_port = 50000;
    EXPECT_TRUE(decapsulate(LinkType::ethernet, ethernet(s, homa), udp_4000()));
    s.udp_source_port = 50000;
    EXPECT_EQ(error_of(LinkType::ethernet, ethernet(s, homa)), FrameError::not_homa);
    // Port ranges.
    EXPECT_TRUE(decapsulate(LinkType::ethernet, ethernet(s, homa), *parse_port_list("1-10,49000-51000")));
    // No UDP ports configured: UDP is never Homa.
    EXPECT_EQ(error_of(LinkType::ethernet, ethernet(s, homa), PortSet{}), FrameError::not_homa);
}

TEST(frame, decapsulate__hijacked_tcp) {
    const ByteVector homa = grant_bytes();  // carries flags 0x06 and urgent 0xB97D
    for (bool v6 : {false, true}) {
        const FrameSpec s = spec(v6, Encapsulation::tcp);
        expect_homa(LinkType::ethernet, ethernet(s, homa), s, homa);
    }
}

TEST(frame, decapsulate__plain_tcp_is_not_homa) {
    ByteVector homa = grant_bytes();
    const FrameSpec s = spec(false, Encapsulation::tcp);
    ByteVector flags = homa;
    flags[13] = std::byte{0x10};  // ACK
    EXPECT_EQ(error_of(LinkType::ethernet, ethernet(s, flags)), FrameError::not_homa);
    ByteVector urgent = homa;
    urgent[19] = std::byte{0x00};
    EXPECT_EQ(error_of(LinkType::ethernet, ethernet(s, urgent)), FrameError::not_homa);
    // A TCP header shorter than 20 bytes cannot carry the markers.
    EXPECT_EQ(error_of(LinkType::ethernet, ethernet(s, ByteVector(homa.begin(), homa.begin() + 19))),
              FrameError::not_homa);
}

TEST(frame, decapsulate__vlan_tags) {
    const ByteVector homa = grant_bytes();
    for (const std::vector<std::uint16_t>& tags :
         {std::vector<std::uint16_t>{100}, std::vector<std::uint16_t>{100, 200}}) {
        for (bool v6 : {false, true}) {
            FrameSpec s = spec(v6, Encapsulation::udp);
            s.vlan_ids = tags;
            const ByteVector frame = ethernet(s, homa);
            EXPECT_EQ(frame.size(), 14 + 4 * tags.size() + (v6 ? 40 : 20) + 8 + homa.size());
            expect_homa(LinkType::ethernet, frame, s, homa);
        }
    }
}

TEST(frame, decapsulate__three_vlan_tags_are_not_supported) {
    FrameSpec s = spec(false);
    s.vlan_ids = {100, 200};
    ByteVector frame = ethernet(s, grant_bytes());
    // Add a third 802.1Q tag after the two.
    const ByteVector tag = bytes({0x81, 0x00, 0x01, 0x2C});
    frame.insert(frame.begin() + 20, tag.begin(), tag.end());
    EXPECT_EQ(error_of(LinkType::ethernet, frame), FrameError::not_homa);
}

TEST(frame, decapsulate__ethernet_padding_is_not_homa_bytes) {
    const ByteVector homa = encode(wire::BusyPacket{wire::Header{40000, 99, 1235}});
    ByteVector frame = ethernet(spec(false), homa);
    frame.resize(frame.size() + 18);  // padding and a stray FCS
    expect_homa(LinkType::ethernet, frame, spec(false), homa);
    FrameSpec u = spec(true, Encapsulation::udp);
    ByteVector frame6 = ethernet(u, homa);
    frame6.resize(frame6.size() + 7);
    expect_homa(LinkType::ethernet, frame6, u, homa);
}

TEST(frame, decapsulate__raw_ip) {
    const ByteVector homa = grant_bytes();
    for (bool v6 : {false, true}) {
        expect_homa(LinkType::raw_ip, ip_packet(spec(v6), homa), spec(v6), homa);
    }
    EXPECT_EQ(error_of(LinkType::raw_ip, bytes({0x50, 0, 0, 0})), FrameError::malformed);
    EXPECT_EQ(error_of(LinkType::raw_ip, ByteVector{}), FrameError::truncated_capture);
}

TEST(frame, decapsulate__linux_sll) {
    const ByteVector homa = grant_bytes();
    for (bool v6 : {false, true}) {
        const ByteVector header =
            bytes({0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, v6 ? 0x86u : 0x08u, v6 ? 0xDDu : 0x00u});
        expect_homa(LinkType::linux_sll, concat(header, ip_packet(spec(v6), homa)), spec(v6), homa);
    }
    const ByteVector arp = bytes({0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0, 0x08, 0x06, 0, 1});
    EXPECT_EQ(error_of(LinkType::linux_sll, arp), FrameError::not_homa);
    EXPECT_EQ(error_of(LinkType::linux_sll, bytes({0, 0, 0})), FrameError::truncated_capture);
}

TEST(frame, decapsulate__linux_sll2) {
    const ByteVector homa = grant_bytes();
    for (bool v6 : {false, true}) {
        const ByteVector header = bytes({v6 ? 0x86u : 0x08u, v6 ? 0xDDu : 0x00u, 0, 0, 0, 0, 0, 1,
                                         0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0});
        expect_homa(LinkType::linux_sll2, concat(header, ip_packet(spec(v6), homa)), spec(v6),
                    homa);
    }
    EXPECT_EQ(error_of(LinkType::linux_sll2, ByteVector(19)), FrameError::truncated_capture);
}

TEST(frame, decapsulate__null_in_either_byte_order_and_loop) {
    const ByteVector homa = grant_bytes();
    const ByteVector v4 = ip_packet(spec(false), homa);
    const ByteVector v6 = ip_packet(spec(true), homa);
    expect_homa(LinkType::null, concat(bytes({2, 0, 0, 0}), v4), spec(false), homa);
    expect_homa(LinkType::null, concat(bytes({0, 0, 0, 2}), v4), spec(false), homa);
    for (unsigned family : {10u, 24u, 28u, 30u}) {
        expect_homa(LinkType::null, concat(bytes({family, 0, 0, 0}), v6), spec(true), homa);
        expect_homa(LinkType::loop, concat(bytes({0, 0, 0, family}), v6), spec(true), homa);
    }
    expect_homa(LinkType::loop, concat(bytes({0, 0, 0, 2}), v4), spec(false), homa);
    EXPECT_EQ(error_of(LinkType::null, concat(bytes({7, 0, 0, 0}), v4)), FrameError::not_homa);
    EXPECT_EQ(error_of(LinkType::loop, bytes({0, 0})), FrameError::truncated_capture);
}

TEST(frame, decapsulate__arp_and_other_ethertypes_are_not_homa) {
    ByteVector arp = ethernet(spec(false), grant_bytes());
    arp[12] = std::byte{0x08};
    arp[13] = std::byte{0x06};
    EXPECT_EQ(error_of(LinkType::ethernet, arp), FrameError::not_homa);
    ByteVector llc = arp;
    llc[12] = std::byte{0x00};  // an 802.3 length field
    llc[13] = std::byte{0x40};
    EXPECT_EQ(error_of(LinkType::ethernet, llc), FrameError::not_homa);
}

TEST(frame, decapsulate__other_ip_protocols_are_not_homa) {
    ByteVector icmp = ip_packet(spec(false), grant_bytes());
    icmp[9] = std::byte{1};
    EXPECT_EQ(error_of(LinkType::raw_ip, icmp), FrameError::not_homa);
    ByteVector v6 = ip_packet(spec(true), grant_bytes());
    v6[6] = std::byte{59};  // no next header
    EXPECT_EQ(error_of(LinkType::raw_ip, v6), FrameError::not_homa);
}

// --- IPv4 details -------------------------------------------------------------

// Adds `options` (a multiple of 4 bytes) to an IPv4 packet's header.
ByteVector with_ipv4_options(ByteVector ip, const ByteVector& options) {
    ip.insert(ip.begin() + 20, options.begin(), options.end());
    ip[0] = static_cast<std::byte>(0x40 | ((20 + options.size()) / 4));
    const std::size_t total = ip.size();
    ip[2] = static_cast<std::byte>(total >> 8);
    ip[3] = static_cast<std::byte>(total);
    return ip;
}

TEST(frame, decapsulate__ipv4_options_are_skipped) {
    const ByteVector homa = grant_bytes();
    const ByteVector ip = with_ipv4_options(ip_packet(spec(false), homa), bytes({1, 1, 1, 0}));
    expect_homa(LinkType::raw_ip, ip, spec(false), homa);
    const ByteVector big = with_ipv4_options(ip_packet(spec(false, Encapsulation::udp), homa),
                                             ByteVector(40, std::byte{1}));
    expect_homa(LinkType::raw_ip, big, spec(false, Encapsulation::udp), homa);
}

TEST(frame, decapsulate__ipv4_fragments) {
    const ByteVector homa = grant_bytes();
    ByteVector first = ip_packet(spec(false), homa);
    first[6] = std::byte{0x20};  // MF, offset 0: the first fragment has the header
    first[7] = std::byte{0x00};
    EXPECT_TRUE(decapsulate(LinkType::raw_ip, first, udp_4000()));
    ByteVector later = first;
    later[7] = std::byte{0xB9};  // offset 185 * 8
    EXPECT_EQ(error_of(LinkType::raw_ip, later), FrameError::not_homa);
    ByteVector last = later;
    last[6] = std::byte{0x00};
    EXPECT_EQ(error_of(LinkType::raw_ip, last), FrameError::not_homa);
}

TEST(frame, decapsulate__ipv4_bad_headers_are_malformed) {
    const ByteVector ip = ip_packet(spec(false), grant_bytes());
    ByteVector ihl = ip;
    ihl[0] = std::byte{0x44};  // IHL 4 words
    EXPECT_EQ(error_of(LinkType::raw_ip, ihl), FrameError::malformed);
    ByteVector total = ip;
    total[2] = std::byte{0};
    total[3] = std::byte{19};  // shorter than the header
    EXPECT_EQ(error_of(LinkType::raw_ip, total), FrameError::malformed);
    ByteVector version = ethernet(spec(false), grant_bytes());
    version[14] = std::byte{0x65};  // EtherType IPv4, version 6
    EXPECT_EQ(error_of(LinkType::ethernet, version), FrameError::malformed);
}

TEST(frame, decapsulate__ipv4_total_length_zero_means_the_capture) {
    // Linux shows GSO packets above 64 KiB with total length 0.
    const ByteVector homa = grant_bytes();
    ByteVector ip = ip_packet(spec(false), homa);
    ip[2] = std::byte{0};
    ip[3] = std::byte{0};
    expect_homa(LinkType::raw_ip, ip, spec(false), homa);
}

TEST(frame, decapsulate__udp_bad_lengths_are_malformed) {
    const ByteVector ip = ip_packet(spec(false, Encapsulation::udp), grant_bytes());
    ByteVector short_len = ip;
    short_len[20 + 4] = std::byte{0};
    short_len[20 + 5] = std::byte{7};
    EXPECT_EQ(error_of(LinkType::raw_ip, short_len), FrameError::malformed);
    ByteVector long_len = ip;
    long_len[20 + 5] = static_cast<std::byte>(static_cast<unsigned>(long_len[20 + 5]) + 1);
    EXPECT_EQ(error_of(LinkType::raw_ip, long_len), FrameError::malformed);
}

TEST(frame, decapsulate__udp_length_shorter_than_ip_payload_bounds_homa) {
    const ByteVector homa = grant_bytes();
    ByteVector ip = ip_packet(spec(false, Encapsulation::udp), homa);
    ip[20 + 5] = static_cast<std::byte>(static_cast<unsigned>(ip[20 + 5]) - 3);
    auto got = decapsulate(LinkType::raw_ip, ip, udp_4000());
    ASSERT_TRUE(got);
    EXPECT_EQ(got->homa.size(), homa.size() - 3);
    EXPECT_EQ(got->homa_length, homa.size() - 3);
}

// --- IPv6 extension headers ---------------------------------------------------

// Puts an extension header of type `type` (body without the next-header
// byte, which is filled in) first in the chain.
ByteVector with_ipv6_extension(ByteVector ip, std::uint8_t type, ByteVector header) {
    header.insert(header.begin(), ip[6]);
    ip[6] = static_cast<std::byte>(type);
    ip.insert(ip.begin() + 40, header.begin(), header.end());
    const std::size_t payload = ip.size() - 40;
    ip[4] = static_cast<std::byte>(payload >> 8);
    ip[5] = static_cast<std::byte>(payload);
    return ip;
}

const ByteVector pad8 = bytes({0, 1, 4, 0, 0, 0, 0});  // hdr ext len 0, PadN(4)... 7 bytes
const ByteVector pad16 = bytes({1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0});  // len 1

TEST(frame, decapsulate__ipv6_extension_headers_are_walked) {
    const ByteVector homa = grant_bytes();
    for (Encapsulation e : {Encapsulation::ip, Encapsulation::udp}) {
        ByteVector ip = ip_packet(spec(true, e), homa);
        ip = with_ipv6_extension(ip, 60, pad8);   // destination options
        ip = with_ipv6_extension(ip, 43, pad16);  // routing
        ip = with_ipv6_extension(ip, 0, pad8);    // hop-by-hop
        expect_homa(LinkType::raw_ip, ip, spec(true, e), homa);
    }
}

TEST(frame, decapsulate__ipv6_fragments) {
    const ByteVector homa = grant_bytes();
    const ByteVector ip = ip_packet(spec(true), homa);
    // Offset 0, M=1: the first fragment has the headers.
    const ByteVector first = with_ipv6_extension(ip, 44, bytes({0, 0x00, 0x01, 0, 0, 0, 42}));
    expect_homa(LinkType::raw_ip, first, spec(true), homa);
    const ByteVector later = with_ipv6_extension(ip, 44, bytes({0, 0x05, 0x68, 0, 0, 0, 42}));
    EXPECT_EQ(error_of(LinkType::raw_ip, later), FrameError::not_homa);
}

TEST(frame, decapsulate__ipv6_extension_past_payload_is_malformed) {
    ByteVector ip = with_ipv6_extension(ip_packet(spec(true), grant_bytes()), 0, pad8);
    ip[41 + 0] = std::byte{200};  // hdr ext len: 1608 bytes
    EXPECT_EQ(error_of(LinkType::raw_ip, ip), FrameError::malformed);
}

TEST(frame, decapsulate__ipv6_extension_cut_by_capture_is_truncated) {
    ByteVector ip = with_ipv6_extension(ip_packet(spec(true), grant_bytes()), 0, pad16);
    ip.resize(40 + 10);
    EXPECT_EQ(error_of(LinkType::raw_ip, ip), FrameError::truncated_capture);
    ip.resize(40 + 1);
    EXPECT_EQ(error_of(LinkType::raw_ip, ip), FrameError::truncated_capture);
}

TEST(frame, decapsulate__ipv6_traffic_class_gives_priority) {
    for (std::uint8_t p = 0; p < 8; ++p) {
        auto got = decapsulate(LinkType::raw_ip, ip_packet(spec(true, Encapsulation::ip, p),
                                                           grant_bytes()), udp_4000());
        ASSERT_TRUE(got);
        EXPECT_EQ(got->tos, p << 5);
        EXPECT_EQ(got->priority(), p);
    }
}

// --- Truncated captures ----------------------------------------------------------

TEST(frame, decapsulate__capture_shorter_than_ip_length_is_truncated) {
    const ByteVector homa = grant_bytes();
    for (Encapsulation e : {Encapsulation::ip, Encapsulation::udp}) {
        ByteVector frame = ethernet(spec(false, e), homa);
        const std::size_t headers = frame.size() - homa.size();
        frame.resize(headers + 30);
        auto got = decapsulate(LinkType::ethernet, frame, udp_4000());
        ASSERT_TRUE(got);
        EXPECT_TRUE(got->truncated());
        EXPECT_EQ(got->homa.size(), 30u);
        EXPECT_EQ(got->homa_length, homa.size());
        ASSERT_TRUE(got->homa_ports);  // 28 bytes are enough for the ports
        frame.resize(headers + 10);
        got = decapsulate(LinkType::ethernet, frame, udp_4000());
        ASSERT_TRUE(got);
        EXPECT_TRUE(got->truncated());
        EXPECT_FALSE(got->homa_ports);
    }
}

TEST(frame, decapsulate__capture_ending_in_a_header_is_truncated_capture) {
    const ByteVector frame = ethernet(spec(false, Encapsulation::udp), grant_bytes());
    for (std::ptrdiff_t cut : {0, 13, 14, 33, 34, 41}) {
        SCOPED_TRACE(cut);
        EXPECT_EQ(error_of(LinkType::ethernet, ByteVector(frame.begin(), frame.begin() + cut)),
                  FrameError::truncated_capture);
    }
    FrameSpec tagged = spec(false);
    tagged.vlan_ids = {7};
    const ByteVector vlan = ethernet(tagged, grant_bytes());
    EXPECT_EQ(error_of(LinkType::ethernet, ByteVector(vlan.begin(), vlan.begin() + 16)),
              FrameError::truncated_capture);
    const ByteVector v6 = ethernet(spec(true), grant_bytes());
    EXPECT_EQ(error_of(LinkType::ethernet, ByteVector(v6.begin(), v6.begin() + 50)),
              FrameError::truncated_capture);
}

// --- Robustness -------------------------------------------------------------------

// Every prefix and many random mutations of valid frames: decapsulate must
// not read out of bounds (AddressSanitizer watches), and any Homa span it
// returns lies inside the input.
TEST(frame, decapsulate__never_reads_outside_mangled_frames) {
    std::vector<std::pair<LinkType, ByteVector>> seeds;
    const ByteVector homa = grant_bytes();
    for (bool v6 : {false, true}) {
        for (Encapsulation e : {Encapsulation::ip, Encapsulation::udp, Encapsulation::tcp}) {
            FrameSpec s = spec(v6, e);
            seeds.emplace_back(LinkType::ethernet, ethernet(s, homa));
            s.vlan_ids = {1, 2};
            seeds.emplace_back(LinkType::ethernet, ethernet(s, homa));
            ByteVector ip = ip_packet(spec(v6, e), homa);
            if (v6) ip = with_ipv6_extension(with_ipv6_extension(ip, 44, bytes({0, 0, 1, 0, 0, 0, 1})), 0, pad16);
            seeds.emplace_back(LinkType::raw_ip, ip);
            seeds.emplace_back(LinkType::null, concat(bytes({v6 ? 10u : 2u, 0, 0, 0}), ip));
        }
    }
    std::mt19937 rng(20240611);
    const PortSet ports = *parse_port_list("4000,33000");
    auto check = [&](LinkType link, const ByteVector& original) {
        // An exact-size heap copy, so any read past the end is caught.
        const auto copy = std::make_unique<std::byte[]>(original.size());
        std::copy(original.begin(), original.end(), copy.get());
        const wire::Bytes frame{copy.get(), original.size()};
        auto got = decapsulate(link, frame, ports);
        if (got && !got->homa.empty()) {
            EXPECT_GE(got->homa.data(), frame.data());
            EXPECT_LE(got->homa.data() + got->homa.size(), frame.data() + frame.size());
        }
    };
    for (const auto& [link, frame] : seeds) {
        for (std::size_t n = 0; n <= frame.size(); ++n) {
            check(link, ByteVector(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(n)));
        }
        for (int i = 0; i < 2000; ++i) {
            ByteVector mutated = frame;
            const int flips = 1 + static_cast<int>(rng() % 4);
            for (int f = 0; f < flips; ++f) {
                // Mostly header bytes, where the lengths live.
                const std::size_t at = rng() % std::min<std::size_t>(mutated.size(), 100);
                mutated[at] = static_cast<std::byte>(rng() & 0xFF);
            }
            if (rng() % 4 == 0) mutated.resize(rng() % (mutated.size() + 1));
            check(link, mutated);
        }
    }
}

}  // namespace
}  // namespace uhoma::pcap
