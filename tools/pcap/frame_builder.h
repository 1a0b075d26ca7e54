// Building captured-looking frames around Homa bytes, for tests and for
// uhoma-trace.
//
// The inverse of frame.h for the two wrappings uhoma puts on the wire: raw IP
// protocol 146 and UDP (plus hijacked TCP, protocol 6, which carries the Homa
// bytes unchanged since the common header already looks like a TCP header).
// Headers are complete and valid so that tcpdump and Wireshark accept the
// frames too: IPv4 header checksum, UDP checksum (compulsory on IPv6;
// computed on IPv4 as well, where 0 would also be legal), TTL/hop limit 64,
// IPv4 DF set. The priority goes into the TOS / Traffic Class byte exactly as
// Homa senders put it there (wire::tos_for_priority). MAC addresses are
// locally administered, 02:00:00:00:00:<last address byte>, so frames from one
// host share a MAC.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "pcap/frame.h"
#include "pcap/ip_address.h"
#include "uhoma/expected.h"
#include "wire/packet.h"

namespace uhoma::pcap {

struct FrameSpec {
    IpAddress source;
    IpAddress destination;
    Encapsulation encapsulation = Encapsulation::ip;
    std::uint16_t udp_source_port = 0;  // UDP only
    std::uint16_t udp_destination_port = 0;
    std::uint8_t priority = 0;  // Homa level 0..7 (clamped to 7)
    // Ethernet only: 802.1Q/802.1ad VLAN ids, outermost first. With two tags
    // the outer one is 802.1ad (0x88A8).
    std::vector<std::uint16_t> vlan_ids;
};

enum class BuildError : std::uint8_t {
    mixed_families,  // one address IPv4, the other IPv6
    too_long,        // the IP (or UDP) length field cannot hold the packet
    too_many_tags,   // more than two VLAN tags
    bad_vlan_id,     // a VLAN id above 4095
};

const char* build_error_name(BuildError error);

// An IPv4 or IPv6 packet (no link header) holding `homa`, as DLT_RAW has it.
// Errors: mixed_families, too_long.
Expected<std::vector<std::byte>, BuildError> build_ip_packet(const FrameSpec& spec,
                                                             wire::Bytes homa);

// An Ethernet II frame (with the spec's VLAN tags) holding build_ip_packet().
// No padding to 60 bytes and no FCS, as captures on the sending host show.
// Errors: mixed_families, too_long, too_many_tags, bad_vlan_id.
Expected<std::vector<std::byte>, BuildError> build_ethernet_frame(const FrameSpec& spec,
                                                                  wire::Bytes homa);

}  // namespace uhoma::pcap
