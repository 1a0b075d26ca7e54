#include "support/bytes.h"

#include <algorithm>
#include <random>
#include <cstring>
#include <stdexcept>

namespace uhoma::test {

namespace {

int nibble(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool is_separator(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '_' || c == ':' || c == '|';
}

}  // namespace

ByteVector bytes_from_hex(std::string_view hex) {
    ByteVector out;
    out.reserve(hex.size() / 2);
    int high = -1;
    for (const char c : hex) {
        if (is_separator(c)) continue;
        const int v = nibble(c);
        if (v < 0) {
            throw std::invalid_argument("bytes_from_hex: bad character '" + std::string(1, c) +
                                        "' in \"" + std::string(hex) + "\"");
        }
        if (high < 0) {
            high = v;
        } else {
            out.push_back(static_cast<std::byte>((high << 4) | v));
            high = -1;
        }
    }
    if (high >= 0) {
        throw std::invalid_argument("bytes_from_hex: odd number of digits in \"" +
                                    std::string(hex) + "\"");
    }
    return out;
}

std::string hex_from_bytes(std::span<const std::byte> bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        if (i != 0) out += (i % 16 == 0) ? '\n' : ' ';
        const auto b = std::to_integer<unsigned>(bytes[i]);
        out += digits[b >> 4];
        out += digits[b & 0xF];
    }
    return out;
}

ByteVector bytes_from_string(std::string_view text) {
    ByteVector out(text.size());
    if (!text.empty()) std::memcpy(out.data(), text.data(), text.size());
    return out;
}

ByteVector random_bytes(std::size_t count, std::uint64_t seed) {
    ByteVector v(count);
    std::mt19937_64 rng(seed);
    for (auto& b : v) b = static_cast<std::byte>(rng());
    return v;
}

ByteVector counting_bytes(std::size_t count, unsigned first) {
    ByteVector out(count);
    for (std::size_t i = 0; i < count; ++i) {
        out[i] = static_cast<std::byte>((first + i) & 0xFF);
    }
    return out;
}

ByteVector concat(std::initializer_list<std::span<const std::byte>> parts) {
    ByteVector out;
    for (const auto& part : parts) out.insert(out.end(), part.begin(), part.end());
    return out;
}

void put_be(ByteVector& bytes, std::size_t offset, std::uint64_t value, std::size_t width) {
    if (width > 8 || offset + width > bytes.size()) {
        throw std::out_of_range("put_be: field outside the buffer");
    }
    for (std::size_t i = 0; i < width; ++i) {
        bytes[offset + width - 1 - i] = static_cast<std::byte>((value >> (8 * i)) & 0xFF);
    }
}

bool same_bytes(std::span<const std::byte> a, std::span<const std::byte> b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end());
}

::testing::AssertionResult bytes_equal(std::span<const std::byte> actual,
                                       std::span<const std::byte> expected) {
    if (same_bytes(actual, expected)) return ::testing::AssertionSuccess();
    const auto mismatch =
        std::mismatch(actual.begin(), actual.end(), expected.begin(), expected.end());
    const auto at = mismatch.first - actual.begin();
    return ::testing::AssertionFailure()
           << "bytes differ at offset " << at << " (actual " << actual.size() << " bytes, expected "
           << expected.size() << ")\nactual:\n"
           << hex_from_bytes(actual) << "\nexpected:\n"
           << hex_from_bytes(expected);
}

}  // namespace uhoma::test
