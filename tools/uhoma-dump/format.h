// The text uhoma-dump prints: one line per Homa packet, a hex dump, a summary.
//
// Design notes
// ------------
// Lines are tcpdump-like and meant for grep and diff: fixed field order,
// "name value" pairs, no alignment padding, every number in decimal except
// the raw type byte of a malformed packet. A line is
//
//   TIME SRC.PORT > DST.PORT ENCAP prio P TYPE id N [client|server] FIELDS...
//
//   1700000000.000123 10.0.0.1.40000 > 10.0.0.2.99 ip146 prio 6 DATA id 2 client
//       offset 0 len 1424 msg 100000 incoming 40000 cv 0 [retx] [ack 4:99]
//
// (one line in reality). IPv6 addresses are bracketed: [fd00::1].40000.
// ENCAP is ip146, udp or tcp (hijacked). `prio` is the priority the IP
// header carries (TOS >> 5), i.e. what switches see; GRANT and RESEND carry
// a priority of their own, printed as grant_prio and resend_prio so that a
// grep for "prio 7" finds only the former. `client`/`server` is the side
// that sent the packet (the id's low bit, spec 1.6); it is left out for ids
// 0 and 1, which name no RPC. RESEND length -1 prints as "all"; an ACK
// entry as CLIENT_ID:SERVER_PORT.
//
// A multi-segment (TSO) DATA packet prints one line per wire segment, each
// ending in "tso I/N". A UDP GSO train (gso.h) prints one line per packet,
// each ending in "gso I/N", with that packet's own Homa ports. Homa bytes
// the codec rejects print as "MALFORMED <error_name> len L" plus, when the
// 28-byte common header is there, "type 0xTT id N" (and the ports in the
// address part). A packet whose capture stopped short prints
// "TRUNCATED captured C of L".
//
// Everything here is a pure function of its arguments, so the exact text
// is unit-tested.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "pcap/frame.h"
#include "pcap/timestamp.h"
#include "wire/errors.h"
#include "wire/packet.h"

namespace uhoma::dump {

// "TIME SRC > DST ENCAP prio P", without a trailing space.
std::string format_prefix(pcap::Timestamp time, const pcap::HomaFrame& frame);

// The packet part: "DATA id 2 client offset 0 len 1424 ...".
std::string describe_packet(const wire::Packet& packet);

// A whole line for a decoded packet, with a newline.
std::string format_packet_line(pcap::Timestamp time, const pcap::HomaFrame& frame,
                               const wire::Packet& packet);

// A line for segment `index` (0-based) of `count` of a multi-segment DATA
// packet, with a newline; it ends in "tso index+1/count".
std::string format_segment_line(pcap::Timestamp time, const pcap::HomaFrame& frame,
                                const wire::DataPacket& segment, std::size_t index,
                                std::size_t count);

// A line for packet `index` (0-based) of `count` of a UDP GSO train, with a
// newline; it ends in "gso index+1/count". `frame` should describe the
// packet itself (its Homa ports), as Dumper's per-packet frames do.
std::string format_gso_line(pcap::Timestamp time, const pcap::HomaFrame& frame,
                            const wire::Packet& packet, std::size_t index, std::size_t count);

// A line for Homa bytes the codec rejected with `error`, with a newline.
std::string format_malformed_line(pcap::Timestamp time, const pcap::HomaFrame& frame,
                                  wire::Error error);

// A line for a frame whose capture is shorter than its IP length.
std::string format_truncated_line(pcap::Timestamp time, const pcap::HomaFrame& frame);

// tcpdump -x style: "\t0x0000:  0011 2233 ...", 16 bytes a line, each line
// ending in a newline. Empty for no bytes.
std::string format_hex(wire::Bytes bytes);

// What uhoma-dump saw; the summary is printed from this.
struct Counters {
    // Decoded, by type - 0x10. A TSO packet counts once (it is one IP packet
    // in the capture), each packet of a GSO train once.
    std::array<std::uint64_t, wire::num_packet_types> by_type{};
    std::uint64_t malformed = 0;    // Homa frames the codec rejected
    std::uint64_t truncated = 0;    // Homa frames captured short
    std::uint64_t not_homa = 0;     // frames skipped: not Homa
    std::uint64_t unreadable = 0;   // frames skipped: broken or cut-off link/IP/UDP headers
    std::optional<std::uint64_t> kernel_drops;  // live captures only

    std::uint64_t decoded() const;
    // Every Homa packet printed: decoded + malformed + truncated.
    std::uint64_t homa_packets() const { return decoded() + malformed + truncated; }
};

// "uhoma-dump: 12 Homa packets (DATA 5, GRANT 1, ..., ACK 1), 2 malformed,
// 1 truncated; skipped 2 not Homa, 0 unreadable", with a newline. Every
// type is listed, zeros included, in type order. Live captures add
// "; kernel dropped N".
std::string format_summary(const Counters& counters);

}  // namespace uhoma::dump
