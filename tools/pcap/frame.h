// Decapsulation: from a captured link-layer frame to the Homa bytes inside.
//
// Design notes
// ------------
// Homa reaches a capture in three wrappings (spec 1.1): directly on IP as
// protocol 146, inside UDP on a port the user names (uhoma's UDP driver), or
// "hijacked" as IP protocol 6 whose TCP flags byte is 0x06 and urgent field
// 0xB97D. This module peels the link layer and the IP header (with IPv6
// extension headers) and answers one question: is this Homa, and if so,
// which bytes? It parses no Homa field itself; the codec (wire::decode,
// wire::peek_common_header) does that.
//
// Captured bytes are untrusted, like wire bytes. Every length is checked
// before use, and the Homa span is bounded by the IP/UDP length fields, not
// by the capture length: Ethernet pads short frames to 60 bytes, and those
// pad bytes are not Homa. A frame whose capture stops before the end its IP
// header announces (a short snaplen) is still reported as Homa, with
// truncated() true, so the tool can say so instead of decoding a stub.
//
// Three outcomes besides a HomaFrame: not_homa (other protocols, other UDP
// ports, ARP, non-first fragments: the tool skips these silently and counts
// them), truncated_capture (the capture ends inside a header needed to
// classify the frame) and malformed (a header contradicts itself).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "pcap/ip_address.h"
#include "pcap/port_set.h"
#include "uhoma/expected.h"
#include "wire/packet.h"
#include "wire/priority.h"

namespace uhoma::pcap {

// The link layers uhoma-dump reads. See link_type_from_dlt().
enum class LinkType : std::uint8_t {
    ethernet,    // DLT_EN10MB, with up to two 802.1Q / 802.1ad tags
    raw_ip,      // DLT_RAW (12 or 14), LINKTYPE_RAW (101), LINKTYPE_IPV4/IPV6
    linux_sll,   // DLT_LINUX_SLL ("any" device, 16-byte header)
    linux_sll2,  // DLT_LINUX_SLL2 (20-byte header)
    null,        // DLT_NULL: 4-byte address family in the writer's byte order
    loop,        // DLT_LOOP: 4-byte address family, big-endian
};

// Maps a libpcap link-layer type (pcap_datalink()) to a LinkType; nullopt
// for link types this module cannot decode.
std::optional<LinkType> link_type_from_dlt(int dlt);

enum class Encapsulation : std::uint8_t {
    ip,   // IP protocol 146
    udp,  // UDP on one of the configured ports
    tcp,  // IP protocol 6 carrying the hijack markers
};

// "ip146", "udp" or "tcp".
const char* encapsulation_name(Encapsulation encapsulation);

struct HomaPorts {
    std::uint16_t source = 0;
    std::uint16_t destination = 0;
    friend bool operator==(const HomaPorts&, const HomaPorts&) = default;
};

// A captured Homa packet. `homa` points into the frame passed to
// decapsulate(): the value is valid only as long as those bytes are.
struct HomaFrame {
    IpAddress source;
    IpAddress destination;
    Encapsulation encapsulation = Encapsulation::ip;
    std::uint8_t tos = 0;  // IPv4 TOS or IPv6 Traffic Class
    std::uint16_t udp_source_port = 0;  // UDP only
    std::uint16_t udp_destination_port = 0;
    // The Homa ports, read with wire::peek_common_header; nullopt when fewer
    // than 28 Homa bytes were captured.
    std::optional<HomaPorts> homa_ports;
    wire::Bytes homa;              // the captured Homa bytes
    std::size_t homa_length = 0;   // the Homa byte count the IP/UDP headers announce

    bool truncated() const { return homa.size() < homa_length; }
    std::uint8_t priority() const { return wire::priority_from_tos(tos); }
};

enum class FrameError : std::uint8_t {
    not_homa,           // not IP, not Homa's protocol, not a Homa UDP port, a later fragment
    truncated_capture,  // the capture ends inside a link, IP, extension or UDP header
    malformed,          // a header's version or lengths are inconsistent
};

// "not_homa", "truncated_capture" or "malformed".
const char* frame_error_name(FrameError error);

// Finds the Homa packet in a captured frame. UDP datagrams are Homa when
// their source or destination port is in `udp_ports`.
// Errors: not_homa, truncated_capture, malformed.
Expected<HomaFrame, FrameError> decapsulate(LinkType link, wire::Bytes frame,
                                            const PortSet& udp_ports);

}  // namespace uhoma::pcap
