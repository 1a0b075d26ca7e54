// Headers are written front to back into one vector sized up front; the UDP
// checksum is computed last, over the pseudo-header and the finished datagram.
#include "pcap/frame_builder.h"

#include <algorithm>
#include <array>
#include <cstring>

#include "pcap/checksum.h"
#include "pcap/net_bytes.h"
#include "wire/priority.h"

namespace uhoma::pcap {

namespace {

using net::store16;
using net::store32;
using net::store8;

constexpr std::size_t ipv4_header = 20;
constexpr std::size_t ipv6_header = 40;
constexpr std::size_t udp_header = 8;
constexpr std::size_t ethernet_header = 14;
constexpr std::size_t vlan_tag = 4;
constexpr std::uint8_t proto_udp = 17;
constexpr std::uint8_t hop_limit = 64;

std::uint8_t transport_protocol(Encapsulation e) {
    switch (e) {
        case Encapsulation::ip: return wire::ip_protocol_homa;
        case Encapsulation::udp: return proto_udp;
        case Encapsulation::tcp: return wire::ip_protocol_tcp;
    }
    return wire::ip_protocol_homa;
}

std::span<const std::byte> address_bytes(const IpAddress& a) {
    return std::as_bytes(std::span{a.bytes}).first(a.v6 ? 16 : 4);
}

void store_address(std::span<std::byte> out, std::size_t at, const IpAddress& a) {
    const auto bytes = address_bytes(a);
    std::copy(bytes.begin(), bytes.end(), out.begin() + static_cast<std::ptrdiff_t>(at));
}

std::uint16_t udp_checksum(const FrameSpec& spec, std::span<const std::byte> datagram) {
    InternetChecksum sum;
    sum.add(address_bytes(spec.source));
    sum.add(address_bytes(spec.destination));
    std::array<std::byte, 8> tail{};  // IPv4: zero, proto, length; IPv6: length(32), zeros, next
    if (spec.source.v6) {
        store32(tail, 0, static_cast<std::uint32_t>(datagram.size()));
        store8(tail, 7, proto_udp);
        sum.add(tail);
    } else {
        store8(tail, 1, proto_udp);
        store16(tail, 2, static_cast<std::uint16_t>(datagram.size()));
        sum.add(std::span{tail}.first(4));
    }
    sum.add(datagram);
    const std::uint16_t value = sum.value();
    return value == 0 ? 0xFFFF : value;  // 0 means "no checksum"
}

}  // namespace

const char* build_error_name(BuildError error) {
    switch (error) {
        case BuildError::mixed_families: return "mixed_families";
        case BuildError::too_long: return "too_long";
        case BuildError::too_many_tags: return "too_many_tags";
        case BuildError::bad_vlan_id: return "bad_vlan_id";
    }
    return "?";
}

Expected<std::vector<std::byte>, BuildError> build_ip_packet(const FrameSpec& spec,
                                                             wire::Bytes homa) {
    if (spec.source.v6 != spec.destination.v6) return Unexpected{BuildError::mixed_families};
    const bool v6 = spec.source.v6;
    const bool udp = spec.encapsulation == Encapsulation::udp;
    const std::size_t ip_header = v6 ? ipv6_header : ipv4_header;
    const std::size_t transport = homa.size() + (udp ? udp_header : 0);
    if (transport + (v6 ? 0 : ip_header) > 0xFFFF) return Unexpected{BuildError::too_long};

    std::vector<std::byte> packet(ip_header + transport);
    const std::span<std::byte> out{packet};
    const std::uint8_t tos = wire::tos_for_priority(spec.priority);
    const std::uint8_t protocol = transport_protocol(spec.encapsulation);
    if (v6) {
        store32(out, 0, (std::uint32_t{6} << 28) | (std::uint32_t{tos} << 20));
        store16(out, 4, static_cast<std::uint16_t>(transport));
        store8(out, 6, protocol);
        store8(out, 7, hop_limit);
        store_address(out, 8, spec.source);
        store_address(out, 24, spec.destination);
    } else {
        store8(out, 0, 0x45);
        store8(out, 1, tos);
        store16(out, 2, static_cast<std::uint16_t>(packet.size()));
        store16(out, 6, 0x4000);  // DF, offset 0
        store8(out, 8, hop_limit);
        store8(out, 9, protocol);
        store_address(out, 12, spec.source);
        store_address(out, 16, spec.destination);
        InternetChecksum sum;
        sum.add(out.first(ipv4_header));
        store16(out, 10, sum.value());
    }
    const std::span<std::byte> datagram = out.subspan(ip_header);
    const std::size_t homa_at = udp ? udp_header : 0;
    if (!homa.empty()) {
        std::memcpy(datagram.data() + homa_at, homa.data(), homa.size());
    }
    if (udp) {
        store16(datagram, 0, spec.udp_source_port);
        store16(datagram, 2, spec.udp_destination_port);
        store16(datagram, 4, static_cast<std::uint16_t>(transport));
        store16(datagram, 6, udp_checksum(spec, datagram));
    }
    return packet;
}

Expected<std::vector<std::byte>, BuildError> build_ethernet_frame(const FrameSpec& spec,
                                                                  wire::Bytes homa) {
    if (spec.vlan_ids.size() > 2) return Unexpected{BuildError::too_many_tags};
    for (const std::uint16_t id : spec.vlan_ids) {
        if (id > 0x0FFF) return Unexpected{BuildError::bad_vlan_id};
    }
    auto ip = build_ip_packet(spec, homa);
    if (!ip) return ip;

    // The link header is built in a fixed array, then the IP packet appended.
    std::array<std::byte, ethernet_header + 2 * vlan_tag> header{};
    const std::span<std::byte> out{header};
    // Destination MAC, then source MAC.
    store16(out, 0, 0x0200);
    store32(out, 2, spec.destination.bytes[spec.destination.v6 ? 15 : 3]);
    store16(out, 6, 0x0200);
    store32(out, 8, spec.source.bytes[spec.source.v6 ? 15 : 3]);
    std::size_t at = 12;
    for (std::size_t i = 0; i < spec.vlan_ids.size(); ++i) {
        const bool outer_of_two = spec.vlan_ids.size() == 2 && i == 0;
        store16(out, at, outer_of_two ? 0x88A8 : 0x8100);
        store16(out, at + 2, spec.vlan_ids[i]);
        at += vlan_tag;
    }
    store16(out, at, spec.source.v6 ? 0x86DD : 0x0800);
    std::vector<std::byte> frame(header.begin(), header.begin() + static_cast<std::ptrdiff_t>(at + 2));
    frame.insert(frame.end(), ip->begin(), ip->end());
    return frame;
}

}  // namespace uhoma::pcap
