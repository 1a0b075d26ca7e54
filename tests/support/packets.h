// Test helpers for wire packets: printing, comparison, encoding to a vector.
//
// DataPacket holds a span, so it has no operator==; same_data() compares its
// payload by content. The PrintTo overloads make gtest print packets and
// errors readably ("bad_port" rather than a raw byte).
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <ostream>
#include <string>

#include "support/bytes.h"
#include "uhoma/expected.h"
#include "wire/codec.h"
#include "wire/errors.h"
#include "wire/packet.h"

namespace uhoma::wire {

// Found by ADL from gtest's printers.
void PrintTo(Error error, std::ostream* os);
void PrintTo(PacketType type, std::ostream* os);
void PrintTo(const Header& header, std::ostream* os);
void PrintTo(const Ack& ack, std::ostream* os);
void PrintTo(const DataPacket& packet, std::ostream* os);
void PrintTo(const GrantPacket& packet, std::ostream* os);
void PrintTo(const ResendPacket& packet, std::ostream* os);
void PrintTo(const RpcUnknownPacket& packet, std::ostream* os);
void PrintTo(const BusyPacket& packet, std::ostream* os);
void PrintTo(const CutoffsPacket& packet, std::ostream* os);
void PrintTo(const FreezePacket& packet, std::ostream* os);
void PrintTo(const NeedAckPacket& packet, std::ostream* os);
void PrintTo(const AckPacket& packet, std::ostream* os);
void PrintTo(const Packet& packet, std::ostream* os);

}  // namespace uhoma::wire

namespace uhoma::test {

std::string describe(const wire::Packet& packet);

// Every field equal, DATA payloads compared by content.
bool same_data(const wire::DataPacket& a, const wire::DataPacket& b);
bool same_packet(const wire::Packet& a, const wire::Packet& b);

// EXPECT_TRUE(packets_equal(actual, expected)), printing both on failure.
::testing::AssertionResult packets_equal(const wire::Packet& actual, const wire::Packet& expected);

// The error of a failed call, or nullopt on success:
//   EXPECT_EQ(error_of(wire::decode(bytes)), wire::Error::bad_port);
template <typename T>
std::optional<wire::Error> error_of(const Expected<T, wire::Error>& result) {
    if (result.has_value()) return std::nullopt;
    return result.error();
}

// wire::encode() into a vector of exactly encoded_size() bytes.
Expected<ByteVector, wire::Error> encode_to_vector(const wire::Packet& packet);

// A copy of `bytes` in a fresh heap block of exactly that size, so that
// AddressSanitizer reports any read past its end.
ByteVector exact_copy(std::span<const std::byte> bytes);

}  // namespace uhoma::test
