// The Homa packet formats, as plain values (spec/protocol.md section 1).
//
// Design notes
// ------------
// uhoma must put on the wire exactly the bytes Linux Homa does, so this file
// mirrors the kernel's `homa_wire.h` offset tables, but as decoded values
// rather than packed structs: a packed struct cast over received bytes is
// undefined behaviour in C++ (alignment, aliasing) and ties the in-memory
// layout to the wire. Instead, codec.cc reads and writes each field at its
// offset, big-endian, with explicit loads and stores, so the code is correct
// on any host byte order and any buffer alignment.
//
// A decoded packet is a small value (no allocation). DATA payloads are spans
// into the caller's buffer: the decoded packet is valid only as long as the
// bytes it was decoded from.
//
// The first 20 bytes of the common header copy the TCP header layout so NICs
// can apply TSO. Only `sport`, `dport`, `type`, `sender_id` and, for DATA,
// `sequence` carry Homa meaning; the other TCP-mimicking fields are written
// with the kernel's values (doff, the 0x06 flags and 0xB97D urgent hijack
// markers) and ignored on receipt, as Linux Homa ignores them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>

namespace uhoma::wire {

using Bytes = std::span<const std::byte>;
using MutableBytes = std::span<std::byte>;

enum class PacketType : std::uint8_t {
    data = 0x10,
    grant = 0x11,
    resend = 0x12,
    rpc_unknown = 0x13,
    busy = 0x14,
    cutoffs = 0x15,
    freeze = 0x16,
    need_ack = 0x17,
    ack = 0x18,
};
inline constexpr std::uint8_t min_packet_type = 0x10;
inline constexpr std::uint8_t max_packet_type = 0x18;  // MAX_OP
inline constexpr std::size_t num_packet_types = 9;

// Upper-case name as Homa's metrics and tools spell it ("DATA", "RPC_UNKNOWN").
const char* packet_type_name(PacketType type);

// --- Sizes and constants (spec 1.1-1.7) -----------------------------------
inline constexpr std::size_t common_header_size = 28;
inline constexpr std::size_t data_header_size = 56;  // incl. the first seg.offset
inline constexpr std::size_t tso_header_size = 52;   // DATA header before seg.offset
inline constexpr std::size_t seg_header_size = 4;    // homa_seg_hdr{offset}
inline constexpr std::size_t grant_size = 33;
inline constexpr std::size_t resend_size = 37;
inline constexpr std::size_t rpc_unknown_size = 28;
inline constexpr std::size_t busy_size = 28;
inline constexpr std::size_t cutoffs_size = 62;
inline constexpr std::size_t freeze_size = 28;
inline constexpr std::size_t need_ack_size = 28;
inline constexpr std::size_t ack_packet_size = 80;
inline constexpr std::size_t ack_entry_size = 10;
inline constexpr std::size_t min_packet_length = 26;  // HOMA_MIN_PKT_LENGTH
inline constexpr std::size_t max_header_size = 90;    // HOMA_MAX_HEADER

inline constexpr std::uint32_t max_message_length = 1'000'000;  // HOMA_MAX_MESSAGE_LENGTH
inline constexpr std::size_t max_acks_per_packet = 5;            // HOMA_MAX_ACKS_PER_PKT
inline constexpr std::size_t num_priorities = 8;
inline constexpr std::uint32_t seg_offset_in_sequence = 0xFFFF'FFFF;  // seg.offset = -1
inline constexpr std::uint32_t resend_everything = 0xFFFF'FFFF;       // RESEND length = -1

inline constexpr std::uint8_t doff_control = 0x50;  // 20-byte "TCP header"
inline constexpr std::uint8_t doff_data = 0xE0;     // 56 B: single segment or hijacked TSO
inline constexpr std::uint8_t doff_tso = 0xD0;      // 52 B: multi-segment TSO, no hijack
inline constexpr std::uint8_t hijack_flags = 0x06;  // SYN|RST
inline constexpr std::uint16_t hijack_urgent = 0xB97D;

inline constexpr std::uint8_t ip_protocol_homa = 146;  // IPPROTO_HOMA
inline constexpr std::uint8_t ip_protocol_tcp = 6;     // used when hijacking TCP

// Data bytes per MTU-sized packet: MTU - IP header - 56 (spec 1.7).
constexpr std::size_t max_seg_data(std::size_t mtu, bool ipv6) {
    const std::size_t ip_header = ipv6 ? 40 : 20;
    return mtu > ip_header + data_header_size ? mtu - ip_header - data_header_size : 0;
}

// --- Packet values --------------------------------------------------------

// The common-header fields that carry meaning. `sender_id` is the RPC id as
// the *sender* of the packet sees it (see ids.h).
struct Header {
    std::uint16_t sport = 0;
    std::uint16_t dport = 0;
    std::uint64_t sender_id = 0;
    friend bool operator==(const Header&, const Header&) = default;
};

// homa_ack: "the client with this id has its whole response; end the RPC".
struct Ack {
    std::uint64_t client_id = 0;  // the client's (even) id; 0 = empty slot
    std::uint16_t server_port = 0;
    bool empty() const { return client_id == 0; }
    friend bool operator==(const Ack&, const Ack&) = default;
};

struct DataPacket {
    static constexpr PacketType type = PacketType::data;
    Header header;
    std::uint32_t message_length = 0;
    std::uint32_t incoming = 0;
    Ack ack;  // piggy-backed; empty() when none
    std::uint16_t cutoff_version = 0;
    bool retransmit = false;
    std::uint32_t offset = 0;  // of payload[0] within the message
    std::span<const std::byte> payload;
};

struct GrantPacket {
    static constexpr PacketType type = PacketType::grant;
    Header header;
    std::uint32_t offset = 0;  // absolute: the sender may send everything below it
    std::uint8_t priority = 0;
    friend bool operator==(const GrantPacket&, const GrantPacket&) = default;
};

struct ResendPacket {
    static constexpr PacketType type = PacketType::resend;
    Header header;
    std::uint32_t offset = 0;
    std::uint32_t length = 0;  // resend_everything: "resend all you have sent"
    std::uint8_t priority = 0;
    friend bool operator==(const ResendPacket&, const ResendPacket&) = default;
};

struct RpcUnknownPacket {
    static constexpr PacketType type = PacketType::rpc_unknown;
    Header header;
    friend bool operator==(const RpcUnknownPacket&, const RpcUnknownPacket&) = default;
};

struct BusyPacket {
    static constexpr PacketType type = PacketType::busy;
    Header header;
    friend bool operator==(const BusyPacket&, const BusyPacket&) = default;
};

struct CutoffsPacket {
    static constexpr PacketType type = PacketType::cutoffs;
    Header header;
    // Entry i: the largest message length that may use level i for
    // unscheduled bytes sent to the sender of this packet.
    std::array<std::uint32_t, num_priorities> unsched_cutoffs{};
    std::uint16_t cutoff_version = 0;
    friend bool operator==(const CutoffsPacket&, const CutoffsPacket&) = default;
};

struct FreezePacket {
    static constexpr PacketType type = PacketType::freeze;
    Header header;
    friend bool operator==(const FreezePacket&, const FreezePacket&) = default;
};

struct NeedAckPacket {
    static constexpr PacketType type = PacketType::need_ack;
    Header header;
    friend bool operator==(const NeedAckPacket&, const NeedAckPacket&) = default;
};

struct AckPacket {
    static constexpr PacketType type = PacketType::ack;
    Header header;  // sender_id: an RPC that is acknowledged too
    std::uint16_t num_acks = 0;  // as decoded, already clamped to 5
    std::array<Ack, max_acks_per_packet> acks{};
    friend bool operator==(const AckPacket&, const AckPacket&) = default;
};

using Packet = std::variant<DataPacket, GrantPacket, ResendPacket, RpcUnknownPacket, BusyPacket,
                            CutoffsPacket, FreezePacket, NeedAckPacket, AckPacket>;

PacketType packet_type(const Packet& packet);
const Header& packet_header(const Packet& packet);

// The raw common header, every field as it sits on the wire. For diagnostics
// (uhoma-dump prints what it can of malformed packets); the protocol itself
// uses Header.
struct RawCommonHeader {
    std::uint16_t sport = 0;
    std::uint16_t dport = 0;
    std::uint32_t sequence = 0;
    std::uint8_t type = 0;
    std::uint8_t doff = 0;
    std::uint8_t flags = 0;
    std::uint16_t window = 0;
    std::uint16_t checksum = 0;
    std::uint16_t urgent = 0;
    std::uint64_t sender_id = 0;
};

}  // namespace uhoma::wire
