// Byte-buffer helpers for tests: hand-written hex to bytes and back.
//
// Golden packets in the tests are written as hex, field by field:
//
//     bytes_from_hex("C3A5"     // @0  sport
//                    "9B17"     // @2  dport
//                    ...);
//
// bytes_from_hex() skips whitespace and the separators '_', ':' and '|', so
// long fields can be grouped for reading; anything else (or an odd number of
// digits) is a bug in the test and throws std::invalid_argument.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace uhoma::test {

using ByteVector = std::vector<std::byte>;

ByteVector bytes_from_hex(std::string_view hex);

// Lower-case hex, a space between bytes, a newline every 16 bytes. For
// failure messages.
std::string hex_from_bytes(std::span<const std::byte> bytes);

// The bytes of `text` (no terminator), e.g. for a recognisable payload.
ByteVector bytes_from_string(std::string_view text);

// `count` bytes first, first+1, ... (mod 256).
ByteVector counting_bytes(std::size_t count, unsigned first = 0);

// `count` pseudo-random bytes from std::mt19937_64 seeded with `seed` (one
// byte per draw): a payload whose every byte matters.
ByteVector random_bytes(std::size_t count, std::uint64_t seed);

// Concatenation, for building packets from parts.
ByteVector concat(std::initializer_list<std::span<const std::byte>> parts);

// Overwrites `width` bytes at `offset` with `value`, big-endian, to patch a
// golden packet (e.g. put_be(bytes, 28, 0, 4) zeroes a u32 field).
void put_be(ByteVector& bytes, std::size_t offset, std::uint64_t value, std::size_t width);

bool same_bytes(std::span<const std::byte> a, std::span<const std::byte> b);

// EXPECT_TRUE(bytes_equal(actual, expected)): on failure prints the first
// differing offset and both buffers in hex.
::testing::AssertionResult bytes_equal(std::span<const std::byte> actual,
                                       std::span<const std::byte> expected);

}  // namespace uhoma::test
