// Encoding and decoding of single Homa packets (spec/protocol.md section 1).
//
// Design notes
// ------------
// Every byte off the wire is untrusted. decode() validates each length and
// each field the spec constrains and returns a typed Error instead of
// asserting; callers drop the packet and count it (short_packets,
// unknown_packet_types, ...). It never reads outside the given span.
//
// Validation is one predicate, validate(), shared by both directions: the
// encoder refuses to produce anything the decoder would reject, so a bug in
// the engine shows up as an encode error at the sender rather than as a
// silent drop at the receiver.
//
// Decoding is liberal where Linux Homa is liberal: trailing bytes after a
// control packet's header are ignored, num_acks above 5 is clamped, and the
// checksum, window, flags, urgent and doff fields are not checked (no Linux
// receiver checks them). It is strict where accepting would hand the engine
// nonsense: zero ports, ids that name no RPC, DATA outside the message.
//
// Encoding writes into a caller-provided buffer and allocates nothing. It
// fills the TCP-mimicking fields as the kernel does: doff 0x50 for control
// packets and 0xE0 for DATA, flags 0x06, urgent 0xB97D, checksum 0, and for
// DATA the offset in both `sequence` and `seg.offset`.
#pragma once

#include <cstddef>

#include "uhoma/expected.h"
#include "wire/errors.h"
#include "wire/packet.h"

namespace uhoma::wire {

// Parses one wire packet (one segment; see tso.h for the pre-TSO layout).
// DataPacket::payload points into `packet`.
// Errors: truncated, unknown_type, bad_port, bad_rpc_id, message_too_long,
// zero_length_message, empty_segment, data_past_end, bad_priority, bad_ack,
// bad_resend_range.
Expected<Packet, Error> decode(Bytes packet);

// Reads the 28-byte common header without validating anything else.
// Errors: truncated.
Expected<RawCommonHeader, Error> peek_common_header(Bytes packet);

// Checks a packet value against the rules decode() enforces.
// Errors: as decode(), except truncated and unknown_type.
Expected<std::monostate, Error> validate(const Packet& packet);

// Size of `packet` on the wire (DATA: 56 + payload).
std::size_t encoded_size(const Packet& packet);

// Writes `packet` to the front of `out`; returns the bytes written.
// Errors: buffer_too_small, or what validate() returns.
Expected<std::size_t, Error> encode(const Packet& packet, MutableBytes out);

// Writes only the 56-byte DATA header for a payload of `payload_length`
// bytes that the caller places right after it (e.g. with a second iovec);
// `data.payload` is ignored. Returns data_header_size.
// Errors: buffer_too_small, or what validate() returns for such a packet.
Expected<std::size_t, Error> encode_data_header(const DataPacket& data,
                                                std::size_t payload_length, MutableBytes out);

}  // namespace uhoma::wire
