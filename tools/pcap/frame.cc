// Link layer -> IP -> Homa, one small function per layer. Each function gets
// exactly the bytes of its layer that were captured and checks every length
// against that span before reading; lengths announced by headers are checked
// against each other separately, so "the header lies" (malformed) and "the
// capture stopped early" (truncated_capture, or truncated()) stay distinct.
#include "pcap/frame.h"

#include <algorithm>
#include <array>

#include "pcap/net_bytes.h"
#include "wire/codec.h"

namespace uhoma::pcap {

namespace {

using net::load16;
using net::load32;
using net::load8;

constexpr std::uint16_t ethertype_ipv4 = 0x0800;
constexpr std::uint16_t ethertype_ipv6 = 0x86DD;
constexpr std::uint16_t ethertype_vlan = 0x8100;    // 802.1Q
constexpr std::uint16_t ethertype_qinq = 0x88A8;    // 802.1ad
constexpr std::uint16_t ethertype_qinq_old = 0x9100;
constexpr std::size_t max_vlan_tags = 2;

constexpr std::uint8_t proto_hop_by_hop = 0;
constexpr std::uint8_t proto_tcp = 6;
constexpr std::uint8_t proto_udp = 17;
constexpr std::uint8_t proto_routing = 43;
constexpr std::uint8_t proto_fragment = 44;
constexpr std::uint8_t proto_dest_options = 60;

constexpr std::size_t ipv4_min_header = 20;
constexpr std::size_t ipv6_header = 40;
constexpr std::size_t udp_header = 8;
constexpr std::size_t tcp_header = 20;
constexpr std::size_t tcp_flags_at = 13;
constexpr std::size_t tcp_urgent_at = 18;

using Result = Expected<HomaFrame, FrameError>;

Result fail(FrameError e) { return Unexpected{e}; }

// The IP-level facts a transport needs: addresses and TOS are filled in
// `frame`; `payload` is the captured part of the IP payload and `length` the
// payload length the IP header announces.
Result from_transport(HomaFrame frame, std::uint8_t protocol, wire::Bytes payload,
                      std::size_t length, const PortSet& udp_ports) {
    if (protocol == wire::ip_protocol_homa) {
        frame.encapsulation = Encapsulation::ip;
        frame.homa = payload;
        frame.homa_length = length;
    } else if (protocol == proto_udp) {
        if (length < udp_header) return fail(FrameError::malformed);
        if (payload.size() < udp_header) return fail(FrameError::truncated_capture);
        const std::uint16_t sport = load16(payload, 0);
        const std::uint16_t dport = load16(payload, 2);
        if (!udp_ports.contains(sport) && !udp_ports.contains(dport)) {
            return fail(FrameError::not_homa);
        }
        const std::size_t udp_length = load16(payload, 4);
        if (udp_length < udp_header || udp_length > length) return fail(FrameError::malformed);
        frame.encapsulation = Encapsulation::udp;
        frame.udp_source_port = sport;
        frame.udp_destination_port = dport;
        frame.homa = payload.first(std::min(payload.size(), udp_length)).subspan(udp_header);
        frame.homa_length = udp_length - udp_header;
    } else if (protocol == proto_tcp) {
        // A TCP header cut short by the snaplen is almost surely plain TCP;
        // without the markers nothing says it is Homa.
        if (payload.size() < tcp_header) return fail(FrameError::not_homa);
        if (load8(payload, tcp_flags_at) != wire::hijack_flags ||
            load16(payload, tcp_urgent_at) != wire::hijack_urgent) {
            return fail(FrameError::not_homa);
        }
        frame.encapsulation = Encapsulation::tcp;
        frame.homa = payload;
        frame.homa_length = length;
    } else {
        return fail(FrameError::not_homa);
    }
    auto common = wire::peek_common_header(frame.homa);
    if (common) frame.homa_ports = HomaPorts{common->sport, common->dport};
    return frame;
}

Result from_ipv4(wire::Bytes ip, const PortSet& udp_ports) {
    if (ip.size() < ipv4_min_header) return fail(FrameError::truncated_capture);
    const std::uint8_t version_ihl = load8(ip, 0);
    if ((version_ihl >> 4) != 4) return fail(FrameError::malformed);
    const std::size_t header_length = std::size_t{version_ihl & 0x0Fu} * 4;
    if (header_length < ipv4_min_header) return fail(FrameError::malformed);
    std::size_t total_length = load16(ip, 2);
    if (total_length != 0 && total_length < header_length) return fail(FrameError::malformed);
    if (ip.size() < header_length) return fail(FrameError::truncated_capture);
    // Linux writes 0 for GSO packets above 64 KiB; the capture is the packet.
    if (total_length == 0) total_length = ip.size();
    const std::uint16_t fragment_offset = load16(ip, 6) & 0x1FFF;
    if (fragment_offset != 0) return fail(FrameError::not_homa);

    HomaFrame frame;
    frame.tos = load8(ip, 1);
    frame.source = IpAddress::v4_from({load8(ip, 12), load8(ip, 13), load8(ip, 14), load8(ip, 15)});
    frame.destination =
        IpAddress::v4_from({load8(ip, 16), load8(ip, 17), load8(ip, 18), load8(ip, 19)});
    const wire::Bytes payload = ip.first(std::min(ip.size(), total_length)).subspan(header_length);
    return from_transport(frame, load8(ip, 9), payload, total_length - header_length, udp_ports);
}

IpAddress ipv6_address_at(wire::Bytes ip, std::size_t at) {
    std::array<std::uint8_t, 16> octets{};
    for (std::size_t i = 0; i < octets.size(); ++i) octets[i] = load8(ip, at + i);
    return IpAddress::v6_from(octets);
}

Result from_ipv6(wire::Bytes ip, const PortSet& udp_ports) {
    if (ip.size() < ipv6_header) return fail(FrameError::truncated_capture);
    if ((load8(ip, 0) >> 4) != 6) return fail(FrameError::malformed);
    std::size_t length = load16(ip, 4);
    // 0 announces a jumbogram (or a Linux BIG TCP packet): the capture is the packet.
    if (length == 0) length = ip.size() - ipv6_header;

    HomaFrame frame;
    frame.tos = static_cast<std::uint8_t>(((load8(ip, 0) & 0x0Fu) << 4) | (load8(ip, 1) >> 4));
    frame.source = ipv6_address_at(ip, 8);
    frame.destination = ipv6_address_at(ip, 24);
    wire::Bytes payload = ip.subspan(ipv6_header);
    payload = payload.first(std::min(payload.size(), length));

    std::uint8_t next = load8(ip, 6);
    while (next == proto_hop_by_hop || next == proto_routing || next == proto_dest_options ||
           next == proto_fragment) {
        // Both the announced and the captured bytes must hold each header.
        if (length < 2) return fail(FrameError::malformed);
        if (payload.size() < 2) return fail(FrameError::truncated_capture);
        const std::size_t header_length =
            next == proto_fragment ? 8 : (std::size_t{load8(payload, 1)} + 1) * 8;
        if (length < header_length) return fail(FrameError::malformed);
        if (payload.size() < header_length) return fail(FrameError::truncated_capture);
        if (next == proto_fragment && (load16(payload, 2) >> 3) != 0) {
            return fail(FrameError::not_homa);  // only the first fragment has the header
        }
        next = load8(payload, 0);
        payload = payload.subspan(header_length);
        length -= header_length;
    }
    return from_transport(frame, next, payload, length, udp_ports);
}

Result from_ip(wire::Bytes ip, const PortSet& udp_ports) {
    if (ip.empty()) return fail(FrameError::truncated_capture);
    switch (load8(ip, 0) >> 4) {
        case 4: return from_ipv4(ip, udp_ports);
        case 6: return from_ipv6(ip, udp_ports);
        default: return fail(FrameError::malformed);
    }
}

// `rest` starts right after the two-byte EtherType `type`.
Result from_ethertype(std::uint16_t type, wire::Bytes rest, const PortSet& udp_ports) {
    for (std::size_t tags = 0;; ++tags) {
        if (type == ethertype_ipv4) return from_ipv4(rest, udp_ports);
        if (type == ethertype_ipv6) return from_ipv6(rest, udp_ports);
        if (type != ethertype_vlan && type != ethertype_qinq && type != ethertype_qinq_old) {
            return fail(FrameError::not_homa);
        }
        if (tags == max_vlan_tags) return fail(FrameError::not_homa);
        if (rest.size() < 4) return fail(FrameError::truncated_capture);
        type = load16(rest, 2);  // after the 2-byte tag control information
        rest = rest.subspan(4);
    }
}

// BSD address families for IPv6 differ per system.
Result from_address_family(std::uint32_t family, wire::Bytes rest, const PortSet& udp_ports) {
    switch (family) {
        case 2: return from_ipv4(rest, udp_ports);  // AF_INET everywhere
        case 10:                                     // Linux
        case 24:                                     // NetBSD, OpenBSD
        case 28:                                     // FreeBSD
        case 30:                                     // macOS
            return from_ipv6(rest, udp_ports);
        default: return fail(FrameError::not_homa);
    }
}

std::uint32_t load32_little(wire::Bytes b) {
    return std::uint32_t{load8(b, 0)} | std::uint32_t{load8(b, 1)} << 8 |
           std::uint32_t{load8(b, 2)} << 16 | std::uint32_t{load8(b, 3)} << 24;
}

}  // namespace

std::optional<LinkType> link_type_from_dlt(int dlt) {
    switch (dlt) {
        case 0: return LinkType::null;          // DLT_NULL
        case 1: return LinkType::ethernet;      // DLT_EN10MB
        case 12:                                // DLT_RAW (most systems)
        case 14:                                // DLT_RAW (OpenBSD)
        case 101:                               // LINKTYPE_RAW
        case 228:                               // LINKTYPE_IPV4
        case 229:                               // LINKTYPE_IPV6
            return LinkType::raw_ip;
        case 108: return LinkType::loop;        // DLT_LOOP
        case 113: return LinkType::linux_sll;   // DLT_LINUX_SLL
        case 276: return LinkType::linux_sll2;  // DLT_LINUX_SLL2
        default: return std::nullopt;
    }
}

const char* encapsulation_name(Encapsulation encapsulation) {
    switch (encapsulation) {
        case Encapsulation::ip: return "ip146";
        case Encapsulation::udp: return "udp";
        case Encapsulation::tcp: return "tcp";
    }
    return "?";
}

const char* frame_error_name(FrameError error) {
    switch (error) {
        case FrameError::not_homa: return "not_homa";
        case FrameError::truncated_capture: return "truncated_capture";
        case FrameError::malformed: return "malformed";
    }
    return "?";
}

Expected<HomaFrame, FrameError> decapsulate(LinkType link, wire::Bytes frame,
                                            const PortSet& udp_ports) {
    switch (link) {
        case LinkType::ethernet:
            if (frame.size() < 14) return fail(FrameError::truncated_capture);
            return from_ethertype(load16(frame, 12), frame.subspan(14), udp_ports);
        case LinkType::raw_ip: return from_ip(frame, udp_ports);
        case LinkType::linux_sll:
            if (frame.size() < 16) return fail(FrameError::truncated_capture);
            return from_ethertype(load16(frame, 14), frame.subspan(16), udp_ports);
        case LinkType::linux_sll2:
            if (frame.size() < 20) return fail(FrameError::truncated_capture);
            return from_ethertype(load16(frame, 0), frame.subspan(20), udp_ports);
        case LinkType::null: {
            if (frame.size() < 4) return fail(FrameError::truncated_capture);
            // Written in the capturing host's byte order: a family is small,
            // so whichever reading fits in 16 bits is the right one.
            const std::uint32_t little = load32_little(frame);
            const std::uint32_t family = little <= 0xFFFF ? little : load32(frame, 0);
            return from_address_family(family, frame.subspan(4), udp_ports);
        }
        case LinkType::loop:
            if (frame.size() < 4) return fail(FrameError::truncated_capture);
            return from_address_family(load32(frame, 0), frame.subspan(4), udp_ports);
    }
    return fail(FrameError::not_homa);
}

}  // namespace uhoma::pcap
