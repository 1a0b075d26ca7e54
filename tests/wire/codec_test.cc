// Tests of src/wire/codec.cc: golden packets, round trips, rejection rules.
//
// Golden bytes are assembled by hand from spec/protocol.md tables 1.2
// (common header) and 1.4 (type-specific fields), one field per line with
// its offset, never produced by the encoder. Multi-byte fields use values
// whose bytes are all different (most with the top bit set) so that any
// byte-order or offset mistake shows. Realistic roles: the client uses port
// 0xC3A5 and id 0x0123456789ABCDEE, the server port 0x7E9B and id ...EF.
#include "wire/codec.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "support/bytes.h"
#include "support/packets.h"
#include "support/random.h"
#include "wire/errors.h"
#include "wire/packet.h"

namespace {

using namespace uhoma::wire;
using uhoma::test::bytes_equal;
using uhoma::test::bytes_from_hex;
using uhoma::test::ByteVector;
using uhoma::test::describe;
using uhoma::test::encode_to_vector;
using uhoma::test::error_of;
using uhoma::test::exact_copy;
using uhoma::test::packets_equal;
using uhoma::test::put_be;
using uhoma::test::Rng;

constexpr std::uint16_t client_port = 0xC3A5;
constexpr std::uint16_t server_port = 0x7E9B;
constexpr std::uint64_t client_rpc = 0x0123'4567'89AB'CDEE;
constexpr std::uint64_t server_rpc = 0x0123'4567'89AB'CDEF;

// Field offsets from spec table 1.2, for patching golden bytes.
constexpr std::size_t at_sport = 0;
constexpr std::size_t at_dport = 2;
constexpr std::size_t at_sequence = 4;
constexpr std::size_t at_tcp_ack = 8;
constexpr std::size_t at_type = 11;
constexpr std::size_t at_doff = 12;
constexpr std::size_t at_flags = 13;
constexpr std::size_t at_window = 14;
constexpr std::size_t at_checksum = 16;
constexpr std::size_t at_urgent = 18;
constexpr std::size_t at_sender_id = 20;
// Table 1.4.1 (DATA).
constexpr std::size_t at_message_length = 28;
constexpr std::size_t at_data_ack_id = 36;
constexpr std::size_t at_data_ack_port = 44;
constexpr std::size_t at_retransmit = 48;
constexpr std::size_t at_seg_offset = 52;
// 1.4.2 / 1.4.3 (GRANT, RESEND).
constexpr std::size_t at_grant_offset = 28;
constexpr std::size_t at_grant_priority = 32;
constexpr std::size_t at_resend_offset = 28;
constexpr std::size_t at_resend_length = 32;
constexpr std::size_t at_resend_priority = 36;
// 1.4.6 (ACK).
constexpr std::size_t at_num_acks = 28;
constexpr std::size_t at_acks = 30;

// ===========================================================================
// Golden packets
// ===========================================================================

// DATA, a client's request bytes, single segment, no piggy-backed ack.
ByteVector data_golden() {
    return bytes_from_hex(
        // Common header (1.2)
        "C3A5"              // @0  sport
        "7E9B"              // @2  dport
        "000A8B9C"          // @4  sequence = offset (691100) for DATA
        "000000"            // @8  ack[3], unused
        "10"                // @11 type DATA
        "E0"                // @12 doff 0xE0: 56-byte header
        "06"                // @13 flags SYN|RST (hijack marker)
        "0000"              // @14 window
        "0000"              // @16 checksum, senders write 0
        "B97D"              // @18 urgent (hijack marker)
        "0123456789ABCDEE"  // @20 sender_id: the client's id
        // DATA (1.4.1)
        "000ABCDE"          // @28 message_length = 703710
        "0009F1E2"          // @32 incoming = 651746
        "0000000000000000"  // @36 ack.client_id = 0: no ack
        "0000"              // @44 ack.server_port
        "A5B6"              // @46 cutoff_version
        "00"                // @48 retransmit
        "000000"            // @49 pad
        "000A8B9C"          // @52 seg.offset = offset
        "DEADBEEF");        // @56 payload
}

DataPacket data_value() {
    static const ByteVector payload = bytes_from_hex("DEADBEEF");
    DataPacket d;
    d.header = {client_port, server_port, client_rpc};
    d.message_length = 703'710;
    d.incoming = 651'746;
    d.cutoff_version = 0xA5B6;
    d.offset = 691'100;
    d.payload = payload;
    return d;
}

// DATA, a retransmitted request segment that also acknowledges an earlier
// RPC, ending exactly at the largest legal message length.
ByteVector data_ack_retransmit_golden() {
    return bytes_from_hex(
        // Common header (1.2)
        "C3A5"              // @0  sport
        "7E9B"              // @2  dport
        "000F423C"          // @4  sequence = offset (999996)
        "000000"            // @8  ack[3]
        "10"                // @11 type DATA
        "E0"                // @12 doff
        "06"                // @13 flags
        "0000"              // @14 window
        "0000"              // @16 checksum
        "B97D"              // @18 urgent
        "F0E1D2C3B4A59686"  // @20 sender_id (even: client)
        // DATA (1.4.1)
        "000F4240"          // @28 message_length = 1,000,000 (the maximum)
        "000F4240"          // @32 incoming: the end of the resent range
        "0123456789ABCDEE"  // @36 ack.client_id (homa_ack @0)
        "7E9B"              // @44 ack.server_port (homa_ack @8)
        "FFFE"              // @46 cutoff_version
        "01"                // @48 retransmit = 1
        "000000"            // @49 pad
        "000F423C"          // @52 seg.offset
        "C0FFEE99");        // @56 payload: the message's last 4 bytes
}

DataPacket data_ack_retransmit_value() {
    static const ByteVector payload = bytes_from_hex("C0FFEE99");
    DataPacket d;
    d.header = {client_port, server_port, 0xF0E1'D2C3'B4A5'9686};
    d.message_length = 1'000'000;
    d.incoming = 1'000'000;
    d.ack = {client_rpc, server_port};
    d.cutoff_version = 0xFFFE;
    d.retransmit = true;
    d.offset = 999'996;
    d.payload = payload;
    return d;
}

// DATA as the kernel sends it for a single segment: seg.offset = -1, so the
// offset is in `sequence`. Decode only (uhoma writes the offset in both).
ByteVector data_offset_in_sequence_golden() {
    return bytes_from_hex(
        "7E9B"                // @0  sport (a response: server to client)
        "C3A5"                // @2  dport
        "0001E240"            // @4  sequence: offset 123456
        "000000"              // @8  ack[3]
        "10"                  // @11 type DATA
        "E0"                  // @12 doff
        "06"                  // @13 flags
        "0000"                // @14 window
        "ABCD"                // @16 checksum (ignored)
        "B97D"                // @18 urgent
        "0123456789ABCDEF"    // @20 sender_id: the server's id
        "0001E248"            // @28 message_length = 123464
        "0001E248"            // @32 incoming
        "0000000000000000"    // @36 ack.client_id
        "0000"                // @44 ack.server_port
        "0000"                // @46 cutoff_version
        "00"                  // @48 retransmit
        "000000"              // @49 pad
        "FFFFFFFF"            // @52 seg.offset = -1: look in sequence
        "0102030405060708");  // @56 payload, 8 bytes
}

ByteVector grant_golden() {
    return bytes_from_hex(
        // Common header (1.2)
        "7E9B"              // @0  sport (server grants to a client's request)
        "C3A5"              // @2  dport
        "00000000"          // @4  sequence: 0 for non-DATA
        "000000"            // @8  ack[3]
        "11"                // @11 type GRANT
        "50"                // @12 doff 0x50: control packet
        "06"                // @13 flags
        "0000"              // @14 window
        "0000"              // @16 checksum
        "B97D"              // @18 urgent
        "0123456789ABCDEF"  // @20 sender_id: the server's id
        // GRANT (1.4.2)
        "000E8A9B"  // @28 offset = 952987
        "05");      // @32 priority
}

GrantPacket grant_value() {
    return {{server_port, client_port, server_rpc}, 952'987, 5};
}

ByteVector resend_golden() {
    return bytes_from_hex(
        // Common header (1.2)
        "C3A5"              // @0  sport (client asks for response bytes)
        "7E9B"              // @2  dport
        "00000000"          // @4  sequence
        "000000"            // @8  ack[3]
        "12"                // @11 type RESEND
        "50"                // @12 doff
        "06"                // @13 flags
        "0000"              // @14 window
        "0000"              // @16 checksum
        "B97D"              // @18 urgent
        "0123456789ABCDEE"  // @20 sender_id
        // RESEND (1.4.3)
        "0001E2F3"  // @28 offset = 123635
        "0008A4B5"  // @32 length = 566453
        "06");      // @36 priority
}

ResendPacket resend_value() {
    return {{client_port, server_port, client_rpc}, 123'635, 566'453, 6};
}

// RESEND with length -1: "nothing received yet, resend everything".
ByteVector resend_everything_golden() {
    return bytes_from_hex(
        "7E9B"              // @0  sport
        "C3A5"              // @2  dport
        "00000000"          // @4  sequence
        "000000"            // @8  ack[3]
        "12"                // @11 type RESEND
        "50"                // @12 doff
        "06"                // @13 flags
        "0000"              // @14 window
        "0000"              // @16 checksum
        "B97D"              // @18 urgent
        "0123456789ABCDEF"  // @20 sender_id
        "00000000"          // @28 offset
        "FFFFFFFF"          // @32 length = -1
        "07");              // @36 priority
}

ResendPacket resend_everything_value() {
    return {{server_port, client_port, server_rpc}, 0, resend_everything, 7};
}

ByteVector rpc_unknown_golden() {
    return bytes_from_hex(
        "7E9B"                // @0  sport
        "C3A5"                // @2  dport
        "00000000"            // @4  sequence
        "000000"              // @8  ack[3]
        "13"                  // @11 type RPC_UNKNOWN
        "50"                  // @12 doff
        "06"                  // @13 flags
        "0000"                // @14 window
        "0000"                // @16 checksum
        "B97D"                // @18 urgent
        "FEDCBA9876543211");  // @20 sender_id; no type-specific fields (1.4.4)
}

RpcUnknownPacket rpc_unknown_value() {
    return {{server_port, client_port, 0xFEDC'BA98'7654'3211}};
}

ByteVector busy_golden() {
    return bytes_from_hex(
        "7E9B"                // @0  sport
        "C3A5"                // @2  dport
        "00000000"            // @4  sequence
        "000000"              // @8  ack[3]
        "14"                  // @11 type BUSY
        "50"                  // @12 doff
        "06"                  // @13 flags
        "0000"                // @14 window
        "0000"                // @16 checksum
        "B97D"                // @18 urgent
        "8877665544332211");  // @20 sender_id
}

BusyPacket busy_value() {
    return {{server_port, client_port, 0x8877'6655'4433'2211}};
}

ByteVector cutoffs_golden() {
    return bytes_from_hex(
        // Common header (1.2)
        "7E9B"              // @0  sport
        "C3A5"              // @2  dport
        "00000000"          // @4  sequence
        "000000"            // @8  ack[3]
        "15"                // @11 type CUTOFFS
        "50"                // @12 doff
        "06"                // @13 flags
        "0000"              // @14 window
        "0000"              // @16 checksum
        "B97D"              // @18 urgent
        "0123456789ABCDEF"  // @20 sender_id
        // CUTOFFS (1.4.5): unsched_cutoffs[8], all distinct
        "F1E2D3C4"  // @28 unsched_cutoffs[0]
        "B5A69788"  // @32 unsched_cutoffs[1]
        "796A5B4C"  // @36 unsched_cutoffs[2]
        "3D2E1F10"  // @40 unsched_cutoffs[3]
        "01234567"  // @44 unsched_cutoffs[4]
        "89ABCDEF"  // @48 unsched_cutoffs[5]
        "0F1E2D3C"  // @52 unsched_cutoffs[6]
        "C3B4A596"  // @56 unsched_cutoffs[7]
        "9E8F");    // @60 cutoff_version
}

CutoffsPacket cutoffs_value() {
    CutoffsPacket c;
    c.header = {server_port, client_port, server_rpc};
    c.unsched_cutoffs = {0xF1E2D3C4, 0xB5A69788, 0x796A5B4C, 0x3D2E1F10,
                         0x01234567, 0x89ABCDEF, 0x0F1E2D3C, 0xC3B4A596};
    c.cutoff_version = 0x9E8F;
    return c;
}

ByteVector freeze_golden() {
    return bytes_from_hex(
        "C3A5"                // @0  sport
        "7E9B"                // @2  dport
        "00000000"            // @4  sequence
        "000000"              // @8  ack[3]
        "16"                  // @11 type FREEZE
        "50"                  // @12 doff
        "06"                  // @13 flags
        "0000"                // @14 window
        "0000"                // @16 checksum
        "B97D"                // @18 urgent
        "CAFEF00DDEADBEEE");  // @20 sender_id
}

FreezePacket freeze_value() {
    return {{client_port, server_port, 0xCAFE'F00D'DEAD'BEEE}};
}

ByteVector need_ack_golden() {
    return bytes_from_hex(
        "7E9B"                // @0  sport (only servers send NEED_ACK)
        "C3A5"                // @2  dport
        "00000000"            // @4  sequence
        "000000"              // @8  ack[3]
        "17"                  // @11 type NEED_ACK
        "50"                  // @12 doff
        "06"                  // @13 flags
        "0000"                // @14 window
        "0000"                // @16 checksum
        "B97D"                // @18 urgent
        "0123456789ABCDEF");  // @20 sender_id: odd, the server's id
}

NeedAckPacket need_ack_value() {
    return {{server_port, client_port, server_rpc}};
}

// ACK listing 3 RPCs; the 2 unused slots go out as zeros.
ByteVector ack3_golden() {
    return bytes_from_hex(
        // Common header (1.2)
        "C3A5"              // @0  sport (only clients send ACK)
        "7E9B"              // @2  dport
        "00000000"          // @4  sequence
        "000000"            // @8  ack[3]
        "18"                // @11 type ACK
        "50"                // @12 doff
        "06"                // @13 flags
        "0000"              // @14 window
        "0000"              // @16 checksum
        "B97D"              // @18 urgent
        "0123456789ABCDEE"  // @20 sender_id: even, acknowledged too
        // ACK (1.4.6)
        "0003"              // @28 num_acks
        "0123456789ABCDEC"  // @30 acks[0].client_id
        "7E9B"              // @38 acks[0].server_port
        "FEDCBA9876543210"  // @40 acks[1].client_id
        "4C8D"              // @48 acks[1].server_port
        "8000000000000002"  // @50 acks[2].client_id
        "0001"              // @58 acks[2].server_port
        "0000000000000000"  // @60 acks[3].client_id (unused)
        "0000"              // @68 acks[3].server_port
        "0000000000000000"  // @70 acks[4].client_id (unused)
        "0000");            // @78 acks[4].server_port
}

AckPacket ack3_value() {
    AckPacket a;
    a.header = {client_port, server_port, client_rpc};
    a.num_acks = 3;
    a.acks[0] = {0x0123'4567'89AB'CDEC, 0x7E9B};
    a.acks[1] = {0xFEDC'BA98'7654'3210, 0x4C8D};
    a.acks[2] = {0x8000'0000'0000'0002, 0x0001};
    return a;
}

// ACK with all 5 slots used.
ByteVector ack5_golden() {
    return bytes_from_hex(
        "C3A5"              // @0  sport
        "7E9B"              // @2  dport
        "00000000"          // @4  sequence
        "000000"            // @8  ack[3]
        "18"                // @11 type ACK
        "50"                // @12 doff
        "06"                // @13 flags
        "0000"              // @14 window
        "0000"              // @16 checksum
        "B97D"              // @18 urgent
        "FEDCBA9876543210"  // @20 sender_id
        "0005"              // @28 num_acks
        "1122334455667788"  // @30 acks[0].client_id
        "7E9B"              // @38 acks[0].server_port
        "99AABBCCDDEEFF00"  // @40 acks[1].client_id
        "4C8D"              // @48 acks[1].server_port
        "0000000000000002"  // @50 acks[2].client_id
        "0001"              // @58 acks[2].server_port
        "FFFFFFFFFFFFFFFE"  // @60 acks[3].client_id
        "7FFF"              // @68 acks[3].server_port
        "0123456789ABCDEC"  // @70 acks[4].client_id
        "5A6B");            // @78 acks[4].server_port
}

AckPacket ack5_value() {
    AckPacket a;
    a.header = {client_port, server_port, 0xFEDC'BA98'7654'3210};
    a.num_acks = 5;
    a.acks[0] = {0x1122'3344'5566'7788, 0x7E9B};
    a.acks[1] = {0x99AA'BBCC'DDEE'FF00, 0x4C8D};
    a.acks[2] = {0x0000'0000'0000'0002, 0x0001};
    a.acks[3] = {0xFFFF'FFFF'FFFF'FFFE, 0x7FFF};
    a.acks[4] = {0x0123'4567'89AB'CDEC, 0x5A6B};
    return a;
}

struct Golden {
    const char* name;
    ByteVector bytes;
    Packet value;
};

// Every golden the encoder must reproduce.
std::vector<Golden> encodable_goldens() {
    return {
        {"DATA", data_golden(), data_value()},
        {"DATA ack+retransmit", data_ack_retransmit_golden(), data_ack_retransmit_value()},
        {"GRANT", grant_golden(), grant_value()},
        {"RESEND", resend_golden(), resend_value()},
        {"RESEND everything", resend_everything_golden(), resend_everything_value()},
        {"RPC_UNKNOWN", rpc_unknown_golden(), rpc_unknown_value()},
        {"BUSY", busy_golden(), busy_value()},
        {"CUTOFFS", cutoffs_golden(), cutoffs_value()},
        {"FREEZE", freeze_golden(), freeze_value()},
        {"NEED_ACK", need_ack_golden(), need_ack_value()},
        {"ACK 3", ack3_golden(), ack3_value()},
        {"ACK 5", ack5_golden(), ack5_value()},
    };
}

std::vector<ByteVector> all_golden_bytes() {
    std::vector<ByteVector> all;
    for (auto& g : encodable_goldens()) all.push_back(g.bytes);
    all.push_back(data_offset_in_sequence_golden());
    return all;
}

// Encodes `packet` into a buffer larger than needed and pre-filled with
// 0xAA, so that fields the encoder fails to write (pad, window, unused ack
// slots) show up, and so does any write past the packet.
void expect_encodes_to(const Packet& packet, const ByteVector& golden) {
    SCOPED_TRACE(describe(packet));
    EXPECT_EQ(encoded_size(packet), golden.size());
    ByteVector out(golden.size() + 16, std::byte{0xAA});
    auto written = encode(packet, out);
    ASSERT_TRUE(written.has_value()) << error_name(written.error());
    ASSERT_EQ(*written, golden.size());
    EXPECT_TRUE(bytes_equal(std::span(out).first(*written), golden));
    for (std::size_t i = golden.size(); i < out.size(); ++i) {
        ASSERT_EQ(out[i], std::byte{0xAA}) << "encode wrote past the packet at " << i;
    }
}

template <typename T>
std::optional<T> decode_as(Bytes bytes) {
    auto decoded = decode(bytes);
    if (!decoded) {
        ADD_FAILURE() << "decode failed: " << error_name(decoded.error());
        return std::nullopt;
    }
    if (const T* p = std::get_if<T>(&*decoded)) return *p;
    ADD_FAILURE() << "decoded as the wrong type: " << describe(*decoded);
    return std::nullopt;
}

std::optional<Error> decode_error(Bytes bytes) {
    return error_of(decode(bytes));
}

// ===========================================================================
// Golden tests: encode
// ===========================================================================

TEST(codec, encode__data_golden) {
    expect_encodes_to(data_value(), data_golden());
}

TEST(codec, encode__data_ack_retransmit_golden) {
    expect_encodes_to(data_ack_retransmit_value(), data_ack_retransmit_golden());
}

TEST(codec, encode__grant_golden) {
    expect_encodes_to(grant_value(), grant_golden());
}

TEST(codec, encode__resend_golden) {
    expect_encodes_to(resend_value(), resend_golden());
}

TEST(codec, encode__resend_everything_golden) {
    expect_encodes_to(resend_everything_value(), resend_everything_golden());
}

TEST(codec, encode__rpc_unknown_golden) {
    expect_encodes_to(rpc_unknown_value(), rpc_unknown_golden());
}

TEST(codec, encode__busy_golden) {
    expect_encodes_to(busy_value(), busy_golden());
}

TEST(codec, encode__cutoffs_golden) {
    expect_encodes_to(cutoffs_value(), cutoffs_golden());
}

TEST(codec, encode__freeze_golden) {
    expect_encodes_to(freeze_value(), freeze_golden());
}

TEST(codec, encode__need_ack_golden) {
    expect_encodes_to(need_ack_value(), need_ack_golden());
}

TEST(codec, encode__ack3_golden) {
    expect_encodes_to(ack3_value(), ack3_golden());
}

TEST(codec, encode__ack5_golden) {
    expect_encodes_to(ack5_value(), ack5_golden());
}

TEST(codec, encode__ack_unused_slots_written_as_zeros) {
    // Slots past num_acks hold garbage in the value; the wire gets zeros.
    AckPacket a = ack3_value();
    a.acks[3] = {0x1111'1111'1111'1110, 0x2222};
    a.acks[4] = {0x3333'3333'3333'3333, 0};  // would be invalid if counted
    expect_encodes_to(a, ack3_golden());
}

TEST(codec, encode__data_retransmit_nonzero_writes_one) {
    // retransmit is a bool; the wire byte is exactly 1.
    DataPacket d = data_value();
    d.retransmit = true;
    auto bytes = encode_to_vector(d);
    ASSERT_TRUE(bytes.has_value());
    EXPECT_EQ((*bytes)[at_retransmit], std::byte{0x01});
}

// ===========================================================================
// Golden tests: decode (every field checked against the hand-written bytes)
// ===========================================================================

TEST(codec, decode__data_golden) {
    const ByteVector bytes = data_golden();
    auto d = decode_as<DataPacket>(bytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->header.sport, 0xC3A5u);
    EXPECT_EQ(d->header.dport, 0x7E9Bu);
    EXPECT_EQ(d->header.sender_id, 0x0123'4567'89AB'CDEEu);
    EXPECT_EQ(d->message_length, 703'710u);
    EXPECT_EQ(d->incoming, 651'746u);
    EXPECT_TRUE(d->ack.empty());
    EXPECT_EQ(d->ack, Ack{});
    EXPECT_EQ(d->cutoff_version, 0xA5B6u);
    EXPECT_FALSE(d->retransmit);
    EXPECT_EQ(d->offset, 691'100u);
    // The payload is a view of the input, not a copy.
    EXPECT_EQ(d->payload.data(), bytes.data() + 56);
    EXPECT_TRUE(bytes_equal(d->payload, bytes_from_hex("DEADBEEF")));
}

TEST(codec, decode__data_ack_retransmit_golden) {
    const ByteVector bytes = data_ack_retransmit_golden();
    auto d = decode_as<DataPacket>(bytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->header.sport, 0xC3A5u);
    EXPECT_EQ(d->header.dport, 0x7E9Bu);
    EXPECT_EQ(d->header.sender_id, 0xF0E1'D2C3'B4A5'9686u);
    EXPECT_EQ(d->message_length, 1'000'000u);
    EXPECT_EQ(d->incoming, 1'000'000u);
    EXPECT_FALSE(d->ack.empty());
    EXPECT_EQ(d->ack.client_id, 0x0123'4567'89AB'CDEEu);
    EXPECT_EQ(d->ack.server_port, 0x7E9Bu);
    EXPECT_EQ(d->cutoff_version, 0xFFFEu);
    EXPECT_TRUE(d->retransmit);
    EXPECT_EQ(d->offset, 999'996u);
    EXPECT_TRUE(bytes_equal(d->payload, bytes_from_hex("C0FFEE99")));
}

TEST(codec, decode__data_offset_from_sequence_when_seg_offset_is_minus_one) {
    const ByteVector bytes = data_offset_in_sequence_golden();
    auto d = decode_as<DataPacket>(bytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->header.sport, 0x7E9Bu);
    EXPECT_EQ(d->header.dport, 0xC3A5u);
    EXPECT_EQ(d->header.sender_id, 0x0123'4567'89AB'CDEFu);
    EXPECT_EQ(d->message_length, 123'464u);
    EXPECT_EQ(d->incoming, 123'464u);
    EXPECT_TRUE(d->ack.empty());
    EXPECT_EQ(d->cutoff_version, 0u);
    EXPECT_FALSE(d->retransmit);
    EXPECT_EQ(d->offset, 123'456u);
    EXPECT_TRUE(bytes_equal(d->payload, bytes_from_hex("0102030405060708")));
}

TEST(codec, decode__data_seg_offset_wins_over_sequence) {
    // seg.offset != -1: it is the offset, whatever `sequence` says (a TSO NIC
    // rewrites sequence; spec 1.4.1).
    ByteVector bytes = data_golden();
    put_be(bytes, at_sequence, 0x1234'5678, 4);
    auto d = decode_as<DataPacket>(bytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->offset, 691'100u);
}

TEST(codec, decode__data_retransmit_any_nonzero_byte_is_true) {
    ByteVector bytes = data_golden();
    put_be(bytes, at_retransmit, 0x80, 1);
    auto d = decode_as<DataPacket>(bytes);
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->retransmit);
}

TEST(codec, decode__grant_golden) {
    auto g = decode_as<GrantPacket>(grant_golden());
    ASSERT_TRUE(g);
    EXPECT_EQ(g->header.sport, 0x7E9Bu);
    EXPECT_EQ(g->header.dport, 0xC3A5u);
    EXPECT_EQ(g->header.sender_id, 0x0123'4567'89AB'CDEFu);
    EXPECT_EQ(g->offset, 952'987u);
    EXPECT_EQ(g->priority, 5u);
}

TEST(codec, decode__resend_golden) {
    auto r = decode_as<ResendPacket>(resend_golden());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header.sport, 0xC3A5u);
    EXPECT_EQ(r->header.dport, 0x7E9Bu);
    EXPECT_EQ(r->header.sender_id, 0x0123'4567'89AB'CDEEu);
    EXPECT_EQ(r->offset, 123'635u);
    EXPECT_EQ(r->length, 566'453u);
    EXPECT_EQ(r->priority, 6u);
}

TEST(codec, decode__resend_everything_golden) {
    auto r = decode_as<ResendPacket>(resend_everything_golden());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->header.sport, 0x7E9Bu);
    EXPECT_EQ(r->header.dport, 0xC3A5u);
    EXPECT_EQ(r->header.sender_id, 0x0123'4567'89AB'CDEFu);
    EXPECT_EQ(r->offset, 0u);
    EXPECT_EQ(r->length, 0xFFFF'FFFFu);
    EXPECT_EQ(r->priority, 7u);
}

TEST(codec, decode__rpc_unknown_golden) {
    auto p = decode_as<RpcUnknownPacket>(rpc_unknown_golden());
    ASSERT_TRUE(p);
    EXPECT_EQ(p->header.sport, 0x7E9Bu);
    EXPECT_EQ(p->header.dport, 0xC3A5u);
    EXPECT_EQ(p->header.sender_id, 0xFEDC'BA98'7654'3211u);
}

TEST(codec, decode__busy_golden) {
    auto p = decode_as<BusyPacket>(busy_golden());
    ASSERT_TRUE(p);
    EXPECT_EQ(p->header.sport, 0x7E9Bu);
    EXPECT_EQ(p->header.dport, 0xC3A5u);
    EXPECT_EQ(p->header.sender_id, 0x8877'6655'4433'2211u);
}

TEST(codec, decode__cutoffs_golden) {
    auto c = decode_as<CutoffsPacket>(cutoffs_golden());
    ASSERT_TRUE(c);
    EXPECT_EQ(c->header.sport, 0x7E9Bu);
    EXPECT_EQ(c->header.dport, 0xC3A5u);
    EXPECT_EQ(c->header.sender_id, 0x0123'4567'89AB'CDEFu);
    EXPECT_EQ(c->unsched_cutoffs[0], 0xF1E2'D3C4u);
    EXPECT_EQ(c->unsched_cutoffs[1], 0xB5A6'9788u);
    EXPECT_EQ(c->unsched_cutoffs[2], 0x796A'5B4Cu);
    EXPECT_EQ(c->unsched_cutoffs[3], 0x3D2E'1F10u);
    EXPECT_EQ(c->unsched_cutoffs[4], 0x0123'4567u);
    EXPECT_EQ(c->unsched_cutoffs[5], 0x89AB'CDEFu);
    EXPECT_EQ(c->unsched_cutoffs[6], 0x0F1E'2D3Cu);
    EXPECT_EQ(c->unsched_cutoffs[7], 0xC3B4'A596u);
    EXPECT_EQ(c->cutoff_version, 0x9E8Fu);
}

TEST(codec, decode__freeze_golden) {
    auto p = decode_as<FreezePacket>(freeze_golden());
    ASSERT_TRUE(p);
    EXPECT_EQ(p->header.sport, 0xC3A5u);
    EXPECT_EQ(p->header.dport, 0x7E9Bu);
    EXPECT_EQ(p->header.sender_id, 0xCAFE'F00D'DEAD'BEEEu);
}

TEST(codec, decode__need_ack_golden) {
    auto p = decode_as<NeedAckPacket>(need_ack_golden());
    ASSERT_TRUE(p);
    EXPECT_EQ(p->header.sport, 0x7E9Bu);
    EXPECT_EQ(p->header.dport, 0xC3A5u);
    EXPECT_EQ(p->header.sender_id, 0x0123'4567'89AB'CDEFu);
}

TEST(codec, decode__ack3_golden) {
    auto a = decode_as<AckPacket>(ack3_golden());
    ASSERT_TRUE(a);
    EXPECT_EQ(a->header.sport, 0xC3A5u);
    EXPECT_EQ(a->header.dport, 0x7E9Bu);
    EXPECT_EQ(a->header.sender_id, 0x0123'4567'89AB'CDEEu);
    ASSERT_EQ(a->num_acks, 3u);
    EXPECT_EQ(a->acks[0].client_id, 0x0123'4567'89AB'CDECu);
    EXPECT_EQ(a->acks[0].server_port, 0x7E9Bu);
    EXPECT_EQ(a->acks[1].client_id, 0xFEDC'BA98'7654'3210u);
    EXPECT_EQ(a->acks[1].server_port, 0x4C8Du);
    EXPECT_EQ(a->acks[2].client_id, 0x8000'0000'0000'0002u);
    EXPECT_EQ(a->acks[2].server_port, 0x0001u);
    EXPECT_EQ(a->acks[3], Ack{});
    EXPECT_EQ(a->acks[4], Ack{});
}

TEST(codec, decode__ack5_golden) {
    auto a = decode_as<AckPacket>(ack5_golden());
    ASSERT_TRUE(a);
    EXPECT_EQ(a->header.sport, 0xC3A5u);
    EXPECT_EQ(a->header.dport, 0x7E9Bu);
    EXPECT_EQ(a->header.sender_id, 0xFEDC'BA98'7654'3210u);
    ASSERT_EQ(a->num_acks, 5u);
    EXPECT_EQ(a->acks[0], (Ack{0x1122'3344'5566'7788, 0x7E9B}));
    EXPECT_EQ(a->acks[1], (Ack{0x99AA'BBCC'DDEE'FF00, 0x4C8D}));
    EXPECT_EQ(a->acks[2], (Ack{0x0000'0000'0000'0002, 0x0001}));
    EXPECT_EQ(a->acks[3], (Ack{0xFFFF'FFFF'FFFF'FFFE, 0x7FFF}));
    EXPECT_EQ(a->acks[4], (Ack{0x0123'4567'89AB'CDEC, 0x5A6B}));
}

TEST(codec, decode__every_golden_matches_its_value) {
    for (const Golden& g : encodable_goldens()) {
        SCOPED_TRACE(g.name);
        auto decoded = decode(g.bytes);
        ASSERT_TRUE(decoded.has_value()) << error_name(decoded.error());
        EXPECT_TRUE(packets_equal(*decoded, g.value));
    }
}

// ===========================================================================
// Never reading out of bounds: every prefix of every golden, each in its own
// exactly-sized heap block (ASan reports an overread).
// ===========================================================================

std::size_t type_header_size(std::uint8_t type) {
    switch (type) {
        case 0x10:
            return 56;
        case 0x11:
            return 33;
        case 0x12:
            return 37;
        case 0x15:
            return 62;
        case 0x18:
            return 80;
        default:
            return 28;
    }
}

TEST(codec, decode__every_prefix_of_every_golden) {
    for (const ByteVector& golden : all_golden_bytes()) {
        const auto type = std::to_integer<std::uint8_t>(golden[at_type]);
        const std::size_t header = type_header_size(type);
        SCOPED_TRACE("type " + std::to_string(type));
        for (std::size_t n = 0; n <= golden.size(); ++n) {
            SCOPED_TRACE("prefix " + std::to_string(n));
            const ByteVector prefix = exact_copy(std::span(golden).first(n));
            auto decoded = decode(prefix);
            if (n < header) {
                EXPECT_EQ(error_of(decoded), Error::truncated);
            } else if (type == 0x10 && n == header) {
                EXPECT_EQ(error_of(decoded), Error::empty_segment);
            } else {
                ASSERT_TRUE(decoded.has_value()) << error_name(decoded.error());
                if (type == 0x10) {
                    EXPECT_EQ(std::get<DataPacket>(*decoded).payload.size(), n - 56);
                }
            }
        }
    }
}

TEST(codec, peek_common_header__every_prefix) {
    const ByteVector golden = grant_golden();
    for (std::size_t n = 0; n <= golden.size(); ++n) {
        const ByteVector prefix = exact_copy(std::span(golden).first(n));
        auto raw = peek_common_header(prefix);
        if (n < 28) {
            EXPECT_EQ(error_of(raw), Error::truncated) << n;
        } else {
            EXPECT_TRUE(raw.has_value()) << n;
        }
    }
}

// ===========================================================================
// Property tests: seeded random round trips
// ===========================================================================

constexpr int iterations = 3000;

// encode -> decode gives the value back, and re-encoding the decoded value
// gives the same bytes.
void expect_round_trip(const Packet& packet, int iteration) {
    auto bytes = encode_to_vector(packet);
    ASSERT_TRUE(bytes.has_value()) << "iteration " << iteration << ": " << error_name(bytes.error())
                                   << " for " << describe(packet);
    ASSERT_EQ(bytes->size(), encoded_size(packet));
    auto decoded = decode(*bytes);
    ASSERT_TRUE(decoded.has_value()) << "iteration " << iteration << ": "
                                     << error_name(decoded.error()) << " for " << describe(packet);
    ASSERT_TRUE(packets_equal(*decoded, packet)) << "iteration " << iteration;
    auto again = encode_to_vector(*decoded);
    ASSERT_TRUE(again.has_value()) << "iteration " << iteration;
    ASSERT_TRUE(bytes_equal(*again, *bytes)) << "iteration " << iteration;
}

TEST(codec, round_trip__random_data) {
    Rng rng(1);
    ByteVector payload;
    for (int i = 0; i < iterations; ++i) {
        expect_round_trip(uhoma::test::random_data(rng, payload), i);
        if (HasFatalFailure()) return;
    }
}

TEST(codec, round_trip__random_grant) {
    Rng rng(2);
    for (int i = 0; i < iterations; ++i) {
        expect_round_trip(uhoma::test::random_grant(rng), i);
        if (HasFatalFailure()) return;
    }
}

TEST(codec, round_trip__random_resend) {
    Rng rng(3);
    for (int i = 0; i < iterations; ++i) {
        expect_round_trip(uhoma::test::random_resend(rng), i);
        if (HasFatalFailure()) return;
    }
}

TEST(codec, round_trip__random_rpc_unknown) {
    Rng rng(4);
    for (int i = 0; i < iterations; ++i) {
        expect_round_trip(uhoma::test::random_rpc_unknown(rng), i);
        if (HasFatalFailure()) return;
    }
}

TEST(codec, round_trip__random_busy) {
    Rng rng(5);
    for (int i = 0; i < iterations; ++i) {
        expect_round_trip(uhoma::test::random_busy(rng), i);
        if (HasFatalFailure()) return;
    }
}

TEST(codec, round_trip__random_cutoffs) {
    Rng rng(6);
    for (int i = 0; i < iterations; ++i) {
        expect_round_trip(uhoma::test::random_cutoffs(rng), i);
        if (HasFatalFailure()) return;
    }
}

TEST(codec, round_trip__random_freeze) {
    Rng rng(7);
    for (int i = 0; i < iterations; ++i) {
        expect_round_trip(uhoma::test::random_freeze(rng), i);
        if (HasFatalFailure()) return;
    }
}

TEST(codec, round_trip__random_need_ack) {
    Rng rng(8);
    for (int i = 0; i < iterations; ++i) {
        expect_round_trip(uhoma::test::random_need_ack(rng), i);
        if (HasFatalFailure()) return;
    }
}

TEST(codec, round_trip__random_ack) {
    Rng rng(9);
    for (int i = 0; i < iterations; ++i) {
        expect_round_trip(uhoma::test::random_ack_packet(rng), i);
        if (HasFatalFailure()) return;
    }
}

// Random byte edits and truncations of the goldens: whatever decode accepts
// must re-encode and decode to the same packet (encoder and decoder agree on
// validity and on every field).
TEST(codec, decode__mutated_goldens_round_trip_when_accepted) {
    Rng rng(10);
    const std::vector<ByteVector> goldens = all_golden_bytes();
    int accepted = 0;
    int rejected = 0;
    for (int i = 0; i < 20'000; ++i) {
        ByteVector bytes = goldens[rng.uniform<std::size_t>(0, goldens.size() - 1)];
        const unsigned edits = rng.uniform<unsigned>(1, 3);
        for (unsigned e = 0; e < edits; ++e) {
            bytes[rng.uniform<std::size_t>(0, bytes.size() - 1)] =
                static_cast<std::byte>(rng.uniform<unsigned>(0, 255));
        }
        if (rng.one_in(4)) bytes.resize(rng.uniform<std::size_t>(0, bytes.size()));
        bytes = exact_copy(bytes);
        auto decoded = decode(bytes);
        if (!decoded) {
            ++rejected;
            continue;
        }
        ++accepted;
        auto again = encode_to_vector(*decoded);
        ASSERT_TRUE(again.has_value()) << "iteration " << i << ": " << describe(*decoded);
        auto redecoded = decode(*again);
        ASSERT_TRUE(redecoded.has_value()) << "iteration " << i;
        ASSERT_TRUE(packets_equal(*redecoded, *decoded)) << "iteration " << i;
    }
    // Both outcomes must actually be exercised.
    EXPECT_GT(accepted, 1000);
    EXPECT_GT(rejected, 1000);
}

// ===========================================================================
// Rejection rules, each asserting the exact error
// ===========================================================================

TEST(codec, decode__truncated_below_common_header) {
    const ByteVector golden = grant_golden();
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{11}, std::size_t{12},
                          std::size_t{26}, std::size_t{27}}) {
        const ByteVector prefix = exact_copy(std::span(golden).first(n));
        EXPECT_EQ(decode_error(prefix), Error::truncated) << n;
    }
}

TEST(codec, decode__truncated_below_common_header_even_with_bad_type) {
    ByteVector bytes = busy_golden();
    put_be(bytes, at_type, 0xFF, 1);
    bytes.resize(27);
    EXPECT_EQ(decode_error(bytes), Error::truncated);
}

void expect_truncated_one_short(ByteVector bytes, std::size_t header) {
    bytes.resize(header - 1);
    EXPECT_EQ(decode_error(exact_copy(bytes)), Error::truncated);
}

TEST(codec, decode__truncated_data) {
    expect_truncated_one_short(data_golden(), 56);
}
TEST(codec, decode__truncated_grant) {
    expect_truncated_one_short(grant_golden(), 33);
}
TEST(codec, decode__truncated_resend) {
    expect_truncated_one_short(resend_golden(), 37);
}
TEST(codec, decode__truncated_cutoffs) {
    expect_truncated_one_short(cutoffs_golden(), 62);
}
TEST(codec, decode__truncated_ack) {
    expect_truncated_one_short(ack3_golden(), 80);
}

TEST(codec, decode__common_header_only_types_need_only_28_bytes) {
    for (const ByteVector& bytes :
         {rpc_unknown_golden(), busy_golden(), freeze_golden(), need_ack_golden()}) {
        ASSERT_EQ(bytes.size(), 28u);
        EXPECT_TRUE(decode(exact_copy(bytes)).has_value());
    }
}

TEST(codec, decode__unknown_type) {
    for (const std::uint8_t type : std::array<std::uint8_t, 4>{0x0F, 0x19, 0x00, 0xFF}) {
        ByteVector bytes = grant_golden();
        put_be(bytes, at_type, type, 1);
        EXPECT_EQ(decode_error(bytes), Error::unknown_type) << unsigned{type};
        // Checked before the type's length: a 28-byte packet is not truncated.
        bytes.resize(28);
        EXPECT_EQ(decode_error(bytes), Error::unknown_type) << unsigned{type};
    }
}

TEST(codec, decode__every_type_code_0x10_to_0x18_is_known) {
    // Each code decodes as its own type when given a suitable body.
    const std::vector<ByteVector> cases = {
        data_golden(),    grant_golden(),  resend_golden(),   rpc_unknown_golden(), busy_golden(),
        cutoffs_golden(), freeze_golden(), need_ack_golden(), ack3_golden(),
    };
    unsigned code = 0x10;
    for (const ByteVector& bytes : cases) {
        ASSERT_EQ(std::to_integer<unsigned>(bytes[at_type]), code);
        auto decoded = decode(bytes);
        ASSERT_TRUE(decoded.has_value()) << code;
        EXPECT_EQ(static_cast<unsigned>(packet_type(*decoded)), code);
        ++code;
    }
    EXPECT_EQ(code, 0x19u);
}

TEST(codec, decode__bad_port_sport_zero) {
    for (ByteVector bytes : all_golden_bytes()) {
        put_be(bytes, at_sport, 0, 2);
        EXPECT_EQ(decode_error(bytes), Error::bad_port);
    }
}

TEST(codec, decode__bad_port_dport_zero) {
    for (ByteVector bytes : all_golden_bytes()) {
        put_be(bytes, at_dport, 0, 2);
        EXPECT_EQ(decode_error(bytes), Error::bad_port);
    }
}

TEST(codec, decode__bad_rpc_id_zero_or_one_on_data) {
    for (const std::uint64_t id : {0u, 1u}) {
        ByteVector bytes = data_golden();
        put_be(bytes, at_sender_id, id, 8);
        EXPECT_EQ(decode_error(bytes), Error::bad_rpc_id) << id;
    }
    ByteVector bytes = data_golden();
    put_be(bytes, at_sender_id, 2, 8);
    EXPECT_TRUE(decode(bytes).has_value());
    put_be(bytes, at_sender_id, 3, 8);  // a server's DATA (response)
    EXPECT_TRUE(decode(bytes).has_value());
}

TEST(codec, decode__bad_rpc_id_zero_or_one_on_rpc_types) {
    for (ByteVector bytes :
         {grant_golden(), resend_golden(), rpc_unknown_golden(), busy_golden()}) {
        for (const std::uint64_t id : {0u, 1u}) {
            put_be(bytes, at_sender_id, id, 8);
            EXPECT_EQ(decode_error(bytes), Error::bad_rpc_id) << id;
        }
        // Either parity is fine otherwise.
        put_be(bytes, at_sender_id, 2, 8);
        EXPECT_TRUE(decode(bytes).has_value());
        put_be(bytes, at_sender_id, 3, 8);
        EXPECT_TRUE(decode(bytes).has_value());
    }
}

TEST(codec, decode__bad_rpc_id_ack_with_odd_sender_id) {
    ByteVector bytes = ack3_golden();
    put_be(bytes, at_sender_id, server_rpc, 8);
    EXPECT_EQ(decode_error(bytes), Error::bad_rpc_id);
    put_be(bytes, at_sender_id, 0, 8);
    EXPECT_EQ(decode_error(bytes), Error::bad_rpc_id);
}

TEST(codec, decode__bad_rpc_id_need_ack_with_even_sender_id) {
    ByteVector bytes = need_ack_golden();
    put_be(bytes, at_sender_id, client_rpc, 8);
    EXPECT_EQ(decode_error(bytes), Error::bad_rpc_id);
    put_be(bytes, at_sender_id, 1, 8);  // odd, but names no RPC
    EXPECT_EQ(decode_error(bytes), Error::bad_rpc_id);
}

TEST(codec, decode__cutoffs_and_freeze_accept_any_id) {
    for (ByteVector bytes : {cutoffs_golden(), freeze_golden()}) {
        for (const std::uint64_t id : {0u, 1u}) {
            put_be(bytes, at_sender_id, id, 8);
            auto decoded = decode(bytes);
            ASSERT_TRUE(decoded.has_value()) << id;
            EXPECT_EQ(packet_header(*decoded).sender_id, id);
        }
    }
}

TEST(codec, decode__message_too_long) {
    ByteVector bytes = data_golden();
    put_be(bytes, at_message_length, 1'000'001, 4);
    EXPECT_EQ(decode_error(bytes), Error::message_too_long);
    put_be(bytes, at_message_length, 0xFFFF'FFFF, 4);
    EXPECT_EQ(decode_error(bytes), Error::message_too_long);
}

TEST(codec, decode__message_length_one_million_accepted) {
    ByteVector bytes = data_golden();
    put_be(bytes, at_message_length, 1'000'000, 4);
    auto d = decode_as<DataPacket>(bytes);
    ASSERT_TRUE(d);
    EXPECT_EQ(d->message_length, 1'000'000u);
}

TEST(codec, decode__zero_length_message) {
    ByteVector bytes = data_golden();
    put_be(bytes, at_message_length, 0, 4);
    EXPECT_EQ(decode_error(bytes), Error::zero_length_message);
}

TEST(codec, decode__empty_segment) {
    ByteVector bytes = data_golden();
    bytes.resize(56);
    EXPECT_EQ(decode_error(exact_copy(bytes)), Error::empty_segment);
}

TEST(codec, decode__data_past_end) {
    // 4 bytes at 691100 end at 691104; a message one byte shorter fails.
    ByteVector bytes = data_golden();
    put_be(bytes, at_message_length, 691'103, 4);
    EXPECT_EQ(decode_error(bytes), Error::data_past_end);
    put_be(bytes, at_message_length, 691'104, 4);  // ends exactly at the end
    EXPECT_TRUE(decode(bytes).has_value());
}

TEST(codec, decode__data_past_end_offset_near_2_pow_32) {
    // offset + length wraps in 32 bits to 0 or a small number; the check
    // must not be fooled.
    for (const std::uint32_t offset : {0xFFFF'FFFCu, 0xFFFF'FFFEu, 0x8000'0000u}) {
        ByteVector bytes = data_golden();
        put_be(bytes, at_sequence, offset, 4);
        put_be(bytes, at_seg_offset, offset, 4);
        EXPECT_EQ(decode_error(bytes), Error::data_past_end) << offset;
    }
}

TEST(codec, decode__data_past_end_offset_from_sequence_near_2_pow_32) {
    ByteVector bytes = data_offset_in_sequence_golden();
    put_be(bytes, at_sequence, 0xFFFF'FFF8, 4);  // + 8 bytes wraps to 0
    EXPECT_EQ(decode_error(bytes), Error::data_past_end);
}

TEST(codec, decode__bad_priority_grant) {
    for (const std::uint8_t priority : std::array<std::uint8_t, 2>{8, 255}) {
        ByteVector bytes = grant_golden();
        put_be(bytes, at_grant_priority, priority, 1);
        EXPECT_EQ(decode_error(bytes), Error::bad_priority) << unsigned{priority};
    }
    ByteVector bytes = grant_golden();
    put_be(bytes, at_grant_priority, 7, 1);
    auto g = decode_as<GrantPacket>(bytes);
    ASSERT_TRUE(g);
    EXPECT_EQ(g->priority, 7u);
}

TEST(codec, decode__bad_priority_resend) {
    for (const std::uint8_t priority : std::array<std::uint8_t, 2>{8, 255}) {
        ByteVector bytes = resend_golden();
        put_be(bytes, at_resend_priority, priority, 1);
        EXPECT_EQ(decode_error(bytes), Error::bad_priority) << unsigned{priority};
    }
    ByteVector bytes = resend_golden();
    put_be(bytes, at_resend_priority, 7, 1);
    auto r = decode_as<ResendPacket>(bytes);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->priority, 7u);
}

TEST(codec, decode__bad_ack_odd_client_id_in_data) {
    ByteVector bytes = data_ack_retransmit_golden();
    put_be(bytes, at_data_ack_id, server_rpc, 8);
    EXPECT_EQ(decode_error(bytes), Error::bad_ack);
}

TEST(codec, decode__bad_ack_zero_server_port_in_data) {
    ByteVector bytes = data_ack_retransmit_golden();
    put_be(bytes, at_data_ack_port, 0, 2);
    EXPECT_EQ(decode_error(bytes), Error::bad_ack);
}

TEST(codec, decode__data_empty_ack_ignores_its_port) {
    // client_id 0 means "no ack"; the port is then meaningless.
    ByteVector bytes = data_golden();
    put_be(bytes, at_data_ack_port, 0x1234, 2);
    auto d = decode_as<DataPacket>(bytes);
    ASSERT_TRUE(d);
    EXPECT_TRUE(d->ack.empty());
}

TEST(codec, decode__bad_ack_odd_client_id_in_ack_list) {
    for (std::size_t slot = 0; slot < 5; ++slot) {
        ByteVector bytes = ack5_golden();
        put_be(bytes, at_acks + 10 * slot, 0x0123'4567'89AB'CDED, 8);
        EXPECT_EQ(decode_error(bytes), Error::bad_ack) << slot;
    }
}

TEST(codec, decode__bad_ack_zero_server_port_in_ack_list) {
    for (std::size_t slot = 0; slot < 5; ++slot) {
        ByteVector bytes = ack5_golden();
        put_be(bytes, at_acks + 10 * slot + 8, 0, 2);
        EXPECT_EQ(decode_error(bytes), Error::bad_ack) << slot;
    }
}

TEST(codec, decode__ack_slots_past_num_acks_are_ignored) {
    // Only num_acks entries are read; garbage after them does not matter.
    ByteVector bytes = ack3_golden();
    put_be(bytes, at_acks + 30, 0x0123'4567'89AB'CDED, 8);  // odd id in slot 3
    put_be(bytes, at_acks + 48, 0, 2);
    auto a = decode_as<AckPacket>(bytes);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->num_acks, 3u);
    EXPECT_EQ(a->acks[3], Ack{});
}

TEST(codec, decode__bad_resend_range) {
    ByteVector bytes = resend_golden();
    put_be(bytes, at_resend_offset, 400'000, 4);
    put_be(bytes, at_resend_length, 600'001, 4);
    EXPECT_EQ(decode_error(bytes), Error::bad_resend_range);
    put_be(bytes, at_resend_length, 600'000, 4);  // ends exactly at 1,000,000
    EXPECT_TRUE(decode(bytes).has_value());
}

TEST(codec, decode__bad_resend_range_does_not_wrap) {
    ByteVector bytes = resend_golden();
    put_be(bytes, at_resend_offset, 0xFFFF'FFF0, 4);
    put_be(bytes, at_resend_length, 0x20, 4);  // wraps to 0x10 in 32 bits
    EXPECT_EQ(decode_error(bytes), Error::bad_resend_range);
}

TEST(codec, decode__resend_everything_accepted_up_to_max_offset) {
    ByteVector bytes = resend_everything_golden();
    put_be(bytes, at_resend_offset, 1'000'000, 4);
    auto r = decode_as<ResendPacket>(bytes);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->length, resend_everything);
    put_be(bytes, at_resend_offset, 1'000'001, 4);
    EXPECT_EQ(decode_error(bytes), Error::bad_resend_range);
}

// ===========================================================================
// Liberal rules
// ===========================================================================

TEST(codec, decode__trailing_bytes_after_control_header_ignored) {
    for (const Golden& g : encodable_goldens()) {
        if (std::holds_alternative<DataPacket>(g.value)) continue;
        SCOPED_TRACE(g.name);
        ByteVector bytes = g.bytes;
        for (int i = 0; i < 13; ++i) bytes.push_back(std::byte{0xEE});
        auto decoded = decode(bytes);
        ASSERT_TRUE(decoded.has_value()) << error_name(decoded.error());
        EXPECT_TRUE(packets_equal(*decoded, g.value));
    }
}

TEST(codec, decode__ack_num_acks_clamped_to_five) {
    for (const std::uint16_t n : std::array<std::uint16_t, 3>{6, 9, 0xFFFF}) {
        ByteVector bytes = ack5_golden();
        put_be(bytes, at_num_acks, n, 2);
        auto a = decode_as<AckPacket>(bytes);
        ASSERT_TRUE(a) << n;
        EXPECT_EQ(a->num_acks, 5u);
        EXPECT_TRUE(packets_equal(*a, ack5_value()));
    }
}

TEST(codec, decode__ack_num_acks_zero) {
    ByteVector bytes = ack3_golden();
    put_be(bytes, at_num_acks, 0, 2);
    auto a = decode_as<AckPacket>(bytes);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->num_acks, 0u);
    EXPECT_EQ(a->acks[0], Ack{});
}

TEST(codec, decode__tcp_mimicking_fields_ignored) {
    for (const Golden& g : encodable_goldens()) {
        SCOPED_TRACE(g.name);
        ByteVector bytes = g.bytes;
        put_be(bytes, at_tcp_ack, 0xABCDEF, 3);
        put_be(bytes, at_doff, 0x70, 1);
        put_be(bytes, at_flags, 0x12, 1);
        put_be(bytes, at_window, 0xFFFF, 2);
        put_be(bytes, at_checksum, 0x1D2E, 2);
        put_be(bytes, at_urgent, 0, 2);
        if (!std::holds_alternative<DataPacket>(g.value)) {
            put_be(bytes, at_sequence, 0x9876'5432, 4);  // meaningless for control
        }
        auto decoded = decode(bytes);
        ASSERT_TRUE(decoded.has_value()) << error_name(decoded.error());
        EXPECT_TRUE(packets_equal(*decoded, g.value));
    }
}

TEST(codec, decode__data_pad_ignored) {
    ByteVector bytes = data_golden();
    put_be(bytes, 49, 0xFFFFFF, 3);
    auto decoded = decode(bytes);
    ASSERT_TRUE(decoded.has_value());
    EXPECT_TRUE(packets_equal(*decoded, data_value()));
}

// ===========================================================================
// Encode refuses what decode rejects; buffer_too_small
// ===========================================================================

// The encoder fails with `expected` and writes nothing.
void expect_encode_refuses(const Packet& packet, Error expected) {
    SCOPED_TRACE(describe(packet));
    EXPECT_EQ(error_of(validate(packet)), expected);
    ByteVector out(200, std::byte{0xAA});
    EXPECT_EQ(error_of(encode(packet, out)), expected);
    for (std::size_t i = 0; i < out.size(); ++i) {
        ASSERT_EQ(out[i], std::byte{0xAA}) << "refused encode wrote byte " << i;
    }
}

TEST(codec, encode__refuses_bad_port) {
    for (const Golden& g : encodable_goldens()) {
        Packet p = g.value;
        std::visit([](auto& x) { x.header.sport = 0; }, p);
        expect_encode_refuses(p, Error::bad_port);
        p = g.value;
        std::visit([](auto& x) { x.header.dport = 0; }, p);
        expect_encode_refuses(p, Error::bad_port);
    }
}

TEST(codec, encode__refuses_bad_rpc_id) {
    for (const std::uint64_t id : {0u, 1u}) {
        DataPacket d = data_value();
        d.header.sender_id = id;
        expect_encode_refuses(d, Error::bad_rpc_id);
        GrantPacket g = grant_value();
        g.header.sender_id = id;
        expect_encode_refuses(g, Error::bad_rpc_id);
    }
    AckPacket a = ack3_value();
    a.header.sender_id = server_rpc;
    expect_encode_refuses(a, Error::bad_rpc_id);
    NeedAckPacket n = need_ack_value();
    n.header.sender_id = client_rpc;
    expect_encode_refuses(n, Error::bad_rpc_id);
}

TEST(codec, encode__cutoffs_and_freeze_with_id_zero) {
    CutoffsPacket c = cutoffs_value();
    c.header.sender_id = 0;
    auto bytes = encode_to_vector(c);
    ASSERT_TRUE(bytes.has_value());
    EXPECT_TRUE(bytes_equal(std::span(*bytes).subspan(at_sender_id, 8),
                            bytes_from_hex("0000000000000000")));
    FreezePacket f = freeze_value();
    f.header.sender_id = 0;
    EXPECT_TRUE(encode_to_vector(f).has_value());
}

TEST(codec, encode__refuses_data_field_errors) {
    DataPacket d = data_value();
    d.message_length = 1'000'001;
    expect_encode_refuses(d, Error::message_too_long);
    d = data_value();
    d.message_length = 0;
    expect_encode_refuses(d, Error::zero_length_message);
    d = data_value();
    d.payload = {};
    expect_encode_refuses(d, Error::empty_segment);
    d = data_value();
    d.offset = d.message_length - 3;  // 4 bytes, one past the end
    expect_encode_refuses(d, Error::data_past_end);
    d.offset = 0xFFFF'FFFE;
    expect_encode_refuses(d, Error::data_past_end);
    d = data_value();
    d.ack = {server_rpc, server_port};
    expect_encode_refuses(d, Error::bad_ack);
    d.ack = {client_rpc, 0};
    expect_encode_refuses(d, Error::bad_ack);
}

TEST(codec, encode__accepts_message_length_one_million) {
    DataPacket d = data_value();
    d.message_length = 1'000'000;
    auto bytes = encode_to_vector(d);
    ASSERT_TRUE(bytes.has_value());
    EXPECT_TRUE(
        bytes_equal(std::span(*bytes).subspan(at_message_length, 4), bytes_from_hex("000F4240")));
}

TEST(codec, encode__refuses_bad_priority) {
    for (const std::uint8_t priority : std::array<std::uint8_t, 2>{8, 255}) {
        GrantPacket g = grant_value();
        g.priority = priority;
        expect_encode_refuses(g, Error::bad_priority);
        ResendPacket r = resend_value();
        r.priority = priority;
        expect_encode_refuses(r, Error::bad_priority);
    }
}

TEST(codec, encode__refuses_bad_resend_range) {
    ResendPacket r = resend_value();
    r.offset = 1;
    r.length = 1'000'000;
    expect_encode_refuses(r, Error::bad_resend_range);
    r.offset = 1'000'001;
    r.length = resend_everything;
    expect_encode_refuses(r, Error::bad_resend_range);
}

TEST(codec, encode__refuses_bad_ack_list) {
    AckPacket a = ack3_value();
    a.acks[1].client_id |= 1;
    expect_encode_refuses(a, Error::bad_ack);
    a = ack3_value();
    a.acks[2].server_port = 0;
    expect_encode_refuses(a, Error::bad_ack);
    // More than fit in the packet: the wire can carry only 5.
    a = ack5_value();
    a.num_acks = 6;
    expect_encode_refuses(a, Error::bad_ack);
}

TEST(codec, validate__accepts_every_golden_value) {
    for (const Golden& g : encodable_goldens()) {
        EXPECT_TRUE(validate(g.value).has_value()) << g.name;
    }
}

TEST(codec, encode__buffer_too_small_by_one_byte) {
    for (const Golden& g : encodable_goldens()) {
        SCOPED_TRACE(g.name);
        ByteVector out(g.bytes.size() - 1, std::byte{0xAA});
        EXPECT_EQ(error_of(encode(g.value, out)), Error::buffer_too_small);
        for (const std::byte b : out) ASSERT_EQ(b, std::byte{0xAA}) << "wrote before failing";
        ByteVector exact(g.bytes.size());
        auto written = encode(g.value, exact);
        ASSERT_TRUE(written.has_value());
        EXPECT_EQ(*written, g.bytes.size());
    }
}

TEST(codec, encode__empty_buffer) {
    EXPECT_EQ(error_of(encode(busy_value(), MutableBytes{})), Error::buffer_too_small);
}

// ===========================================================================
// encode_data_header
// ===========================================================================

TEST(codec, encode_data_header__matches_encode_header_part) {
    for (const DataPacket& d : {data_value(), data_ack_retransmit_value()}) {
        auto full = encode_to_vector(d);
        ASSERT_TRUE(full.has_value());
        ByteVector header(56 + 8, std::byte{0xAA});
        DataPacket no_payload = d;
        no_payload.payload = {};  // ignored: the length comes from the argument
        auto written = encode_data_header(no_payload, d.payload.size(), header);
        ASSERT_TRUE(written.has_value()) << error_name(written.error());
        EXPECT_EQ(*written, 56u);
        EXPECT_TRUE(bytes_equal(std::span(header).first(56), std::span(*full).first(56)));
        for (std::size_t i = 56; i < header.size(); ++i) {
            EXPECT_EQ(header[i], std::byte{0xAA}) << "wrote past the header at " << i;
        }
    }
}

TEST(codec, encode_data_header__golden) {
    ByteVector out(56);
    auto written = encode_data_header(data_value(), 4, out);
    ASSERT_TRUE(written.has_value());
    const ByteVector golden = data_golden();
    EXPECT_TRUE(bytes_equal(out, std::span(golden).first(56)));
}

TEST(codec, encode_data_header__validates_with_payload_length) {
    ByteVector out(56);
    const DataPacket d = data_value();  // offset 691100 of 703710
    EXPECT_EQ(error_of(encode_data_header(d, 0, out)), Error::empty_segment);
    EXPECT_EQ(error_of(encode_data_header(d, 703'710 - 691'100 + 1, out)), Error::data_past_end);
    EXPECT_TRUE(encode_data_header(d, 703'710 - 691'100, out).has_value());
    DataPacket bad = d;
    bad.header.dport = 0;
    EXPECT_EQ(error_of(encode_data_header(bad, 4, out)), Error::bad_port);
    bad = d;
    bad.header.sender_id = 1;
    EXPECT_EQ(error_of(encode_data_header(bad, 4, out)), Error::bad_rpc_id);
    bad = d;
    bad.message_length = 1'000'001;
    EXPECT_EQ(error_of(encode_data_header(bad, 4, out)), Error::message_too_long);
    bad = d;
    bad.ack = {3, 1};
    EXPECT_EQ(error_of(encode_data_header(bad, 4, out)), Error::bad_ack);
}

TEST(codec, encode_data_header__buffer_too_small) {
    ByteVector out(55);
    EXPECT_EQ(error_of(encode_data_header(data_value(), 4, out)), Error::buffer_too_small);
}

// ===========================================================================
// Small functions
// ===========================================================================

TEST(codec, encoded_size__per_type) {
    EXPECT_EQ(encoded_size(data_value()), 60u);
    EXPECT_EQ(encoded_size(grant_value()), 33u);
    EXPECT_EQ(encoded_size(resend_value()), 37u);
    EXPECT_EQ(encoded_size(rpc_unknown_value()), 28u);
    EXPECT_EQ(encoded_size(busy_value()), 28u);
    EXPECT_EQ(encoded_size(cutoffs_value()), 62u);
    EXPECT_EQ(encoded_size(freeze_value()), 28u);
    EXPECT_EQ(encoded_size(need_ack_value()), 28u);
    EXPECT_EQ(encoded_size(ack3_value()), 80u);
    DataPacket big = data_value();
    const ByteVector payload(1424);
    big.offset = 0;
    big.payload = payload;
    EXPECT_EQ(encoded_size(big), 56u + 1424u);
}

TEST(codec, packet_type__per_alternative) {
    EXPECT_EQ(packet_type(data_value()), PacketType::data);
    EXPECT_EQ(packet_type(grant_value()), PacketType::grant);
    EXPECT_EQ(packet_type(resend_value()), PacketType::resend);
    EXPECT_EQ(packet_type(rpc_unknown_value()), PacketType::rpc_unknown);
    EXPECT_EQ(packet_type(busy_value()), PacketType::busy);
    EXPECT_EQ(packet_type(cutoffs_value()), PacketType::cutoffs);
    EXPECT_EQ(packet_type(freeze_value()), PacketType::freeze);
    EXPECT_EQ(packet_type(need_ack_value()), PacketType::need_ack);
    EXPECT_EQ(packet_type(ack3_value()), PacketType::ack);
}

TEST(codec, packet_header__returns_the_header) {
    for (const Golden& g : encodable_goldens()) {
        const Packet& p = g.value;
        const Header& h = packet_header(p);
        std::visit([&h](const auto& x) { EXPECT_EQ(&h, &x.header); }, p);
    }
}

TEST(codec, packet_type_name__every_type) {
    EXPECT_STREQ(packet_type_name(PacketType::data), "DATA");
    EXPECT_STREQ(packet_type_name(PacketType::grant), "GRANT");
    EXPECT_STREQ(packet_type_name(PacketType::resend), "RESEND");
    EXPECT_STREQ(packet_type_name(PacketType::rpc_unknown), "RPC_UNKNOWN");
    EXPECT_STREQ(packet_type_name(PacketType::busy), "BUSY");
    EXPECT_STREQ(packet_type_name(PacketType::cutoffs), "CUTOFFS");
    EXPECT_STREQ(packet_type_name(PacketType::freeze), "FREEZE");
    EXPECT_STREQ(packet_type_name(PacketType::need_ack), "NEED_ACK");
    EXPECT_STREQ(packet_type_name(PacketType::ack), "ACK");
    EXPECT_STREQ(packet_type_name(static_cast<PacketType>(0x19)), "UNKNOWN");
}

TEST(codec, peek_common_header__reads_every_raw_field) {
    const ByteVector bytes = bytes_from_hex(
        "8123"              // @0  sport
        "9456"              // @2  dport
        "A1B2C3D4"          // @4  sequence
        "E5F607"            // @8  ack[3] (not reported)
        "FE"                // @11 type: not a Homa type, peek does not care
        "D0"                // @12 doff
        "3F"                // @13 flags
        "8899"              // @14 window
        "AABB"              // @16 checksum
        "CCDD"              // @18 urgent
        "0000000000000000"  // @20 sender_id: 0, not validated
        "FFFF");            // trailing bytes
    auto raw = peek_common_header(bytes);
    ASSERT_TRUE(raw.has_value());
    EXPECT_EQ(raw->sport, 0x8123u);
    EXPECT_EQ(raw->dport, 0x9456u);
    EXPECT_EQ(raw->sequence, 0xA1B2'C3D4u);
    EXPECT_EQ(raw->type, 0xFEu);
    EXPECT_EQ(raw->doff, 0xD0u);
    EXPECT_EQ(raw->flags, 0x3Fu);
    EXPECT_EQ(raw->window, 0x8899u);
    EXPECT_EQ(raw->checksum, 0xAABBu);
    EXPECT_EQ(raw->urgent, 0xCCDDu);
    EXPECT_EQ(raw->sender_id, 0u);
}

TEST(codec, peek_common_header__data_golden) {
    auto raw = peek_common_header(data_golden());
    ASSERT_TRUE(raw.has_value());
    EXPECT_EQ(raw->sport, 0xC3A5u);
    EXPECT_EQ(raw->dport, 0x7E9Bu);
    EXPECT_EQ(raw->sequence, 691'100u);
    EXPECT_EQ(raw->type, 0x10u);
    EXPECT_EQ(raw->doff, 0xE0u);
    EXPECT_EQ(raw->flags, 0x06u);
    EXPECT_EQ(raw->window, 0u);
    EXPECT_EQ(raw->checksum, 0u);
    EXPECT_EQ(raw->urgent, 0xB97Du);
    EXPECT_EQ(raw->sender_id, client_rpc);
}

}  // namespace
